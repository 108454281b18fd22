#include "resilience/expo.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rs_expo_init(struct rs_expo *e, char *buf, size_t cap)
{
	e->buf = buf;
	e->cap = cap;
	e->len = 0;
	if (cap)
		buf[0] = '\0';
}

/* Appends n bytes; past the end of the buffer only counts them, so len ends
 * as the size the whole exposition needs. */
static void put(struct rs_expo *e, const char *s, size_t n)
{
	if (e->len < e->cap) {
		size_t room = e->cap - 1 - e->len; /* keep one byte for the NUL */
		size_t k = n < room ? n : room;

		memcpy(e->buf + e->len, s, k);
		e->buf[e->len + k] = '\0';
	}
	e->len += n;
}

static void puts_(struct rs_expo *e, const char *s)
{
	put(e, s, strlen(s));
}

/* Escapes per the text format: \\ and \n always, \" inside label values. */
static void put_escaped(struct rs_expo *e, const char *s, int quote)
{
	const char *run = s;

	for (; *s; s++) {
		const char *rep = NULL;

		if (*s == '\\')
			rep = "\\\\";
		else if (*s == '\n')
			rep = "\\n";
		else if (quote && *s == '"')
			rep = "\\\"";
		if (rep) {
			put(e, run, (size_t)(s - run));
			puts_(e, rep);
			run = s + 1;
		}
	}
	put(e, run, (size_t)(s - run));
}

static const char *type_name(enum rs_expo_type t)
{
	switch (t) {
	case RS_EXPO_COUNTER:
		return "counter";
	case RS_EXPO_HISTOGRAM:
		return "histogram";
	case RS_EXPO_GAUGE:
		break;
	}
	return "gauge";
}

void rs_expo_family(struct rs_expo *e, const char *name, enum rs_expo_type type, const char *help)
{
	puts_(e, "# HELP ");
	puts_(e, name);
	puts_(e, " ");
	put_escaped(e, help ? help : "", 0);
	puts_(e, "\n# TYPE ");
	puts_(e, name);
	puts_(e, " ");
	puts_(e, type_name(type));
	puts_(e, "\n");
}

static void put_value(struct rs_expo *e, double v)
{
	char num[40];

	if (isnan(v))
		snprintf(num, sizeof(num), "NaN");
	else if (isinf(v))
		snprintf(num, sizeof(num), "%s", v > 0 ? "+Inf" : "-Inf");
	else if (v == (double)(long long)v && fabs(v) < 9e15)
		snprintf(num, sizeof(num), "%lld", (long long)v);
	else {
		/* The shortest of %.15g..%.17g that reads back as the same double,
		 * so 0.7 prints as 0.7 and no precision is lost. */
		for (int prec = 15; prec <= 17; prec++) {
			snprintf(num, sizeof(num), "%.*g", prec, v);
			if (strtod(num, NULL) == v)
				break;
		}
	}
	puts_(e, num);
}

void rs_expo_sample(struct rs_expo *e, const char *name, const char *const *labels, double value)
{
	puts_(e, name);
	if (labels && labels[0]) {
		puts_(e, "{");
		for (size_t i = 0; labels[i] && labels[i + 1]; i += 2) {
			if (i)
				puts_(e, ",");
			puts_(e, labels[i]);
			puts_(e, "=\"");
			put_escaped(e, labels[i + 1], 1);
			puts_(e, "\"");
		}
		puts_(e, "}");
	}
	puts_(e, " ");
	put_value(e, value);
	puts_(e, "\n");
}

void rs_expo_raw(struct rs_expo *e, const char *text)
{
	puts_(e, text);
}

int rs_expo_finish(const struct rs_expo *e)
{
	return e->len < e->cap ? 0 : -ENOBUFS;
}
