/* A strict checker of Prometheus text exposition (format 0.0.4) for tests.
 *
 * promtext_check(text, why, whylen) parses the whole text line by line and
 * returns the number of samples, or -1 with the first problem (line number
 * and reason) in `why`.  It enforces what Prometheus's own parser enforces:
 * metric and label names match [a-zA-Z_:][a-zA-Z0-9_:]* (labels without
 * ':'), label values are quoted with only \\ \" \n escapes, values parse as
 * floats (or NaN, +Inf, -Inf), each family's HELP and TYPE come before its
 * samples and at most once, the type is one of counter, gauge, histogram,
 * summary, untyped, counters' samples end in _total (this project's rule),
 * a family's samples are contiguous, no series appears twice, and the text
 * ends with a newline.
 *
 * promtext_value(text, "name{a=\"x\"}", &v) finds one series by its exact
 * rendering (labels in written order) and returns 1 when found.
 */
#ifndef FAULTLINE_PROMTEXT_H
#define FAULTLINE_PROMTEXT_H

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROMTEXT_MAX_SERIES 4096

static inline int promtext__name(const char **p, int allow_colon)
{
	const char *s = *p;

	if (!(isalpha((unsigned char)*s) || *s == '_' || (allow_colon && *s == ':')))
		return 0;
	while (isalnum((unsigned char)*s) || *s == '_' || (allow_colon && *s == ':'))
		s++;
	*p = s;
	return 1;
}

static inline int promtext__family_of(const char *name, size_t n, const char *fam)
{
	size_t f = strlen(fam);
	static const char *const sfx[] = { "", "_bucket", "_sum", "_count", NULL };

	for (int i = 0; sfx[i]; i++)
		if (n == f + strlen(sfx[i]) && strncmp(name, fam, f) == 0 &&
		    strncmp(name + f, sfx[i], strlen(sfx[i])) == 0)
			return 1;
	return 0;
}

static inline int promtext_check(const char *text, char *why, size_t whylen)
{
	static char seen[PROMTEXT_MAX_SERIES][256];
	char fam[256] = "", type[32] = "";
	char done[256][256];
	int ndone = 0, nseen = 0, lineno = 0, samples = 0;
	int have_help = 0, have_type = 0;
	const char *line = text;

	if (!*text) {
		snprintf(why, whylen, "empty exposition");
		return -1;
	}
	if (text[strlen(text) - 1] != '\n') {
		snprintf(why, whylen, "text does not end with a newline");
		return -1;
	}
	while (*line) {
		const char *end = strchr(line, '\n'), *p = line, *n0;
		char series[256];
		size_t sl;

		lineno++;
		if (end == line) {
			line = end + 1;
			continue;
		}
		if (*p == '#') {
			char kw[8], nm[256];
			int k = 0;

			if (sscanf(p, "# %7s %255s %n", kw, nm, &k) < 2 || p + k > end + 1 ||
			    (strcmp(kw, "HELP") && strcmp(kw, "TYPE"))) {
				line = end + 1; /* a plain comment */
				continue;
			}
			if (strcmp(nm, fam) != 0) {
				for (int i = 0; i < ndone; i++)
					if (strcmp(done[i], nm) == 0) {
						snprintf(why, whylen,
							 "line %d: family %.100s appears twice",
							 lineno, nm);
						return -1;
					}
				if (fam[0] && ndone < 256)
					snprintf(done[ndone++], sizeof(done[0]), "%s", fam);
				snprintf(fam, sizeof(fam), "%s", nm);
				have_help = have_type = 0;
				type[0] = '\0';
			}
			if (kw[0] == 'H') {
				if (have_help++) {
					snprintf(why, whylen, "line %d: second HELP for %.100s",
						 lineno, nm);
					return -1;
				}
			} else {
				char t[32] = "";

				if (have_type++) {
					snprintf(why, whylen, "line %d: second TYPE for %.100s",
						 lineno, nm);
					return -1;
				}
				sscanf(p + k, "%31s", t);
				if (strcmp(t, "counter") && strcmp(t, "gauge") &&
				    strcmp(t, "histogram") && strcmp(t, "summary") &&
				    strcmp(t, "untyped")) {
					snprintf(why, whylen, "line %d: unknown type '%s'", lineno,
						 t);
					return -1;
				}
				if (strcmp(t, "counter") == 0 &&
				    (strlen(nm) < 6 || strcmp(nm + strlen(nm) - 6, "_total"))) {
					snprintf(why, whylen,
						 "line %d: counter %.100s does not end in _total",
						 lineno, nm);
					return -1;
				}
				snprintf(type, sizeof(type), "%s", t);
			}
			line = end + 1;
			continue;
		}
		n0 = p;
		if (!promtext__name(&p, 1)) {
			snprintf(why, whylen, "line %d: bad metric name", lineno);
			return -1;
		}
		if (!fam[0] || !promtext__family_of(n0, (size_t)(p - n0), fam)) {
			snprintf(why, whylen,
				 "line %d: sample %.*s outside its family (current %.100s)", lineno,
				 (int)(p - n0), n0, fam[0] ? fam : "none");
			return -1;
		}
		if (!have_type) {
			snprintf(why, whylen, "line %d: sample before TYPE of %.100s", lineno, fam);
			return -1;
		}
		if (*p == '{') {
			p++;
			while (*p != '}') {
				if (!promtext__name(&p, 0) || *p != '=' || p[1] != '"') {
					snprintf(why, whylen, "line %d: bad label", lineno);
					return -1;
				}
				p += 2;
				while (*p != '"') {
					if (*p == '\n' || !*p) {
						snprintf(why, whylen,
							 "line %d: unterminated label value",
							 lineno);
						return -1;
					}
					if (*p == '\\') {
						if (p[1] != '\\' && p[1] != '"' && p[1] != 'n') {
							snprintf(why, whylen,
								 "line %d: bad escape \\%c", lineno,
								 p[1]);
							return -1;
						}
						p++;
					}
					p++;
				}
				p++;
				if (*p == ',')
					p++;
				else if (*p != '}') {
					snprintf(why, whylen, "line %d: expected , or }", lineno);
					return -1;
				}
			}
			p++;
		}
		sl = (size_t)(p - n0);
		if (sl >= sizeof(series)) {
			snprintf(why, whylen, "line %d: series too long", lineno);
			return -1;
		}
		memcpy(series, n0, sl);
		series[sl] = '\0';
		for (int i = 0; i < nseen; i++)
			if (strcmp(seen[i], series) == 0) {
				snprintf(why, whylen, "line %d: duplicate series %.100s", lineno,
					 series);
				return -1;
			}
		if (nseen < PROMTEXT_MAX_SERIES)
			snprintf(seen[nseen++], sizeof(seen[0]), "%s", series);
		if (*p != ' ') {
			snprintf(why, whylen, "line %d: no space before the value", lineno);
			return -1;
		}
		p++;
		{
			char *vend;

			if (strncmp(p, "NaN", 3) == 0)
				vend = (char *)p + 3;
			else if (strncmp(p, "+Inf", 4) == 0 || strncmp(p, "-Inf", 4) == 0)
				vend = (char *)p + 4;
			else
				(void)strtod(p, &vend);
			if (vend == p) {
				snprintf(why, whylen, "line %d: value is not a number", lineno);
				return -1;
			}
			p = vend;
			if (*p == ' ') { /* optional timestamp */
				p++;
				(void)strtoll(p, &vend, 10);
				p = vend;
			}
			if (p != end) {
				snprintf(why, whylen, "line %d: trailing text after the value",
					 lineno);
				return -1;
			}
		}
		samples++;
		line = end + 1;
	}
	return samples;
}

static inline int promtext_value(const char *text, const char *series, double *v)
{
	size_t n = strlen(series);
	const char *p = text;

	while ((p = strstr(p, series))) {
		if ((p == text || p[-1] == '\n') && p[n] == ' ') {
			*v = strtod(p + n + 1, NULL);
			return 1;
		}
		p += n;
	}
	return 0;
}

#endif
