/* TAP from verdicts (reports/tap.h). */
#include "reports/tap.h"

#include <errno.h>
#include <math.h>
#include <string.h>

/* Three significant digits, never an exponent: 96.9, 903, 1.25. */
static void fmt_sig(double v, const char *unit, char *buf, size_t size)
{
	double a = fabs(v);

	snprintf(buf, size, a >= 100 ? "%.0f%s" : a >= 10 ? "%.1f%s" : "%.2f%s", v, unit);
}

static char *fmt_seconds(double s, char *buf, size_t size)
{
	double a = fabs(s);

	if (a == 0)
		snprintf(buf, size, "0s");
	else if (a < 1e-6)
		fmt_sig(s * 1e9, "ns", buf, size);
	else if (a < 1e-3)
		fmt_sig(s * 1e6, "us", buf, size);
	else if (a < 0.9995)
		fmt_sig(s * 1e3, "ms", buf, size);
	else
		fmt_sig(s, "s", buf, size);
	return buf;
}

char *fl_tap_figure(double v, const char *unit, char *buf, size_t size)
{
	if (!isfinite(v)) {
		snprintf(buf, size, "n/a");
		return buf;
	}
	if (unit && strcmp(unit, "s") == 0)
		return fmt_seconds(v, buf, size);
	if (unit && strcmp(unit, "/s") == 0)
		snprintf(buf, size, "%.4g/s", v);
	else
		snprintf(buf, size, "%.4g", v);
	return buf;
}

char *fl_tap_describe(const struct fl_tap_point *p, char *buf, size_t size)
{
	char m[48], b[48], g[48];

	if (!isfinite(p->measured)) {
		if (!isfinite(p->bound) && p->detail)
			snprintf(buf, size, "%s", p->detail);
		else if (isfinite(p->bound))
			snprintf(buf, size, "no figure, bound %s%s%s", p->cmp ? p->cmp : "",
				 p->cmp ? " " : "", fl_tap_figure(p->bound, p->unit, b, sizeof(b)));
		else
			snprintf(buf, size, "no figure");
		return buf;
	}
	fl_tap_figure(p->measured, p->unit, m, sizeof(m));
	if (!isfinite(p->bound)) {
		snprintf(buf, size, "measured %s", m);
		return buf;
	}
	fl_tap_figure(p->bound, p->unit, b, sizeof(b));
	if (isfinite(p->margin))
		snprintf(buf, size, "measured %s, bound %s%s%s, margin %s", m, p->cmp ? p->cmp : "",
			 p->cmp ? " " : "", b, fl_tap_figure(p->margin, p->unit, g, sizeof(g)));
	else
		snprintf(buf, size, "measured %s, bound %s%s%s", m, p->cmp ? p->cmp : "",
			 p->cmp ? " " : "", b);
	return buf;
}

/* A TAP description may not contain '#' (a directive) or a newline. */
static void put_desc(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '#')
			fputs("\\#", f);
		else if (*s == '\n' || *s == '\r')
			fputc(' ', f);
		else
			fputc(*s, f);
	}
}

static void put_yaml_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void put_yaml_num(FILE *f, const char *key, double v)
{
	if (isfinite(v))
		fprintf(f, "    %s: %.10g\n", key, v);
	else
		fprintf(f, "    %s: ~\n", key);
}

int fl_tap_write(FILE *f, const struct fl_tap_point *pts, size_t n, const char *bail_out)
{
	char d[200];

	fprintf(f, "TAP version 13\n1..%zu\n", n);
	for (size_t i = 0; i < n; i++) {
		const struct fl_tap_point *p = &pts[i];

		fprintf(f, "%sok %zu - ", p->pass ? "" : "not ", i + 1);
		put_desc(f, p->name);
		fputs(": ", f);
		put_desc(f, fl_tap_describe(p, d, sizeof(d)));
		fputc('\n', f);
		if (p->pass)
			continue;
		fputs("  ---\n", f);
		fprintf(f, "    kind: %s\n", p->kind ? p->kind : "check");
		fprintf(f, "    evaluable: %s\n", p->evaluable ? "true" : "false");
		put_yaml_num(f, "measured", p->measured);
		put_yaml_num(f, "bound", p->bound);
		put_yaml_num(f, "margin", p->margin);
		if (p->cmp) {
			fputs("    compare: ", f);
			put_yaml_str(f, p->cmp);
			fputc('\n', f);
		}
		fputs("    unit: ", f);
		put_yaml_str(f, p->unit ? p->unit : "");
		fputc('\n', f);
		put_yaml_num(f, "at", p->at_s);
		fprintf(f, "    samples: %zu\n    failed_samples: %zu\n", p->samples, p->failed);
		if (p->detail) {
			fputs("    detail: ", f);
			put_yaml_str(f, p->detail);
			fputc('\n', f);
		}
		fputs("  ...\n", f);
	}
	if (bail_out) {
		fputs("Bail out! ", f);
		put_desc(f, bail_out);
		fputc('\n', f);
	}
	fflush(f);
	return ferror(f) ? -EIO : 0;
}
