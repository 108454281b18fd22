/* Prometheus text exposition (format 0.0.4) into a caller buffer.
 *
 * Every object of the core exports itself through this writer with a
 * function of its own module, `rs_<module>_expo(struct rs_expo *, <objects>,
 * size_t n)`, which takes all instances of that kind at once because the
 * format wants each metric family written once, all its samples together.
 * Names and meanings are those of DESIGN.md section 6 (prefix
 * `resilience_`, label `name` for the instance).
 *
 *   char buf[16384];
 *   struct rs_expo e;
 *   rs_expo_init(&e, buf, sizeof(buf));
 *   rs_breaker_expo(&e, breakers, nbreakers, now_ns);
 *   rs_expo_family(&e, "app_requests_total", RS_EXPO_COUNTER, "requests served");
 *   rs_expo_sample(&e, "app_requests_total", (const char *[]){ "code", "200", NULL }, 12);
 *   if (rs_expo_finish(&e) < 0) ... buffer too small: e.len says how much was needed
 *
 * The writer never allocates; when the buffer is full it keeps counting the
 * bytes it would have written (e.len) and rs_expo_finish returns -ENOBUFS.
 * The buffer is always NUL-terminated when cap > 0.  Not thread-safe; the
 * objects being exported may be updated concurrently (values are read with
 * relaxed loads and may be a moment apart from each other).
 */
#ifndef RESILIENCE_EXPO_H
#define RESILIENCE_EXPO_H

#include <stddef.h>
#include <stdint.h>

#include "resilience/err.h"

enum rs_expo_type {
	RS_EXPO_GAUGE,
	RS_EXPO_COUNTER,
	RS_EXPO_HISTOGRAM,
};

struct rs_expo {
	char *buf;  /* borrowed, caller-owned */
	size_t cap; /* bytes available in buf */
	size_t len; /* bytes written, or needed once the buffer overflowed */
};

void rs_expo_init(struct rs_expo *e, char *buf, size_t cap);

/* Writes "# HELP name help" and "# TYPE name type".  Call once per family
 * before its samples.  `help` is escaped (backslash, newline). */
void rs_expo_family(struct rs_expo *e, const char *name, enum rs_expo_type type, const char *help);

/* Writes one sample line: name{k="v",...} value.  `labels` is a NULL-
 * terminated array of key, value pairs (or NULL for none); values are
 * escaped (backslash, double quote, newline).  Integral values print
 * without a decimal point; NaN and infinities as NaN, +Inf, -Inf. */
void rs_expo_sample(struct rs_expo *e, const char *name, const char *const *labels, double value);

/* Appends raw text (already in exposition syntax). */
void rs_expo_raw(struct rs_expo *e, const char *text);

/* 0 when everything fitted, -ENOBUFS when the buffer was too small (e->len
 * is then the size needed, without the NUL). */
int rs_expo_finish(const struct rs_expo *e) RS_WUR;

#endif
