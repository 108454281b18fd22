/* The live status line (status.h). */
#include "harness/status.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

void fl_status_init(struct fl_status *s, FILE *f, int mode)
{
	memset(s, 0, sizeof(*s));
	s->f = f;
	s->enabled = mode != 1;
	s->tty = mode == 0 && isatty(fileno(f));
}

static void fmt_latency(double sec, char *buf, size_t size)
{
	if (sec < 1e-3)
		snprintf(buf, size, "%.0fus", sec * 1e6);
	else if (sec < 1)
		snprintf(buf, size, "%.1fms", sec * 1e3);
	else
		snprintf(buf, size, "%.2fs", sec);
}

size_t fl_status_format(const struct fl_status_view *v, char *buf, size_t size)
{
	size_t n = 0;
	int k;

#define ADD(...)                                                                                   \
	do {                                                                                       \
		k = snprintf(buf + n, n < size ? size - n : 0, __VA_ARGS__);                       \
		if (k > 0)                                                                         \
			n += (size_t)k;                                                            \
	} while (0)

	if (!size)
		return 0;
	buf[0] = '\0';
	ADD("[%s] %.1fs/%.0fs", v->phase, v->elapsed_s, v->total_s);
	if (v->have_load) {
		char p99[32];

		fmt_latency(v->p99_s, p99, sizeof(p99));
		ADD("  %.0f req/s  p99 %s  err %.1f%%", v->rps, p99, v->error_rate * 100);
	}
	if (v->faults && v->faults[0])
		ADD("  faults: %s", v->faults);
	if (v->have_met)
		ADD("  met %zu/%zu", v->met, v->nexpects);
#undef ADD
	if (n >= size)
		n = size - 1;
	return n;
}

void fl_status_clear(struct fl_status *s)
{
	if (!s->enabled || !s->tty || !s->shown)
		return;
	fprintf(s->f, "\r%*s\r", (int)s->shown, "");
	fflush(s->f);
	s->shown = 0;
}

void fl_status_draw(struct fl_status *s, const struct fl_status_view *v, uint64_t now_ns)
{
	char line[256];
	size_t n;

	if (!s->enabled)
		return;
	n = fl_status_format(v, line, sizeof(line));
	if (s->tty) {
		fprintf(s->f, "\r%s", line);
		if (s->shown > n)
			fprintf(s->f, "%*s", (int)(s->shown - n), "");
		s->shown = n;
		fflush(s->f);
		return;
	}
	if (s->last_plain_ns && now_ns - s->last_plain_ns < FL_STATUS_PLAIN_EVERY_NS)
		return;
	s->last_plain_ns = now_ns;
	fprintf(s->f, "%s\n", line);
	fflush(s->f);
}
