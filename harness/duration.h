/* Durations and percentages as experiments write them.
 *
 * A duration is a string: one or more <number><unit> parts with no spaces,
 * as Go's time.ParseDuration reads them ("250ms", "5s", "1.5s", "2m",
 * "1h30m").  Numbers are decimal (digits, optionally '.' and more digits; no
 * sign, no exponent).  Units: ns, us (or µs), ms, s, m, h.  A bare number
 * ("5") is an error, because a time field without a unit is a unit bug
 * waiting to happen; so is a negative one.  The result is whole nanoseconds
 * (a fraction finer than 1 ns is dropped) and at most FL_DURATION_MAX_NS.
 *
 * A percentage is a string "<number>%" ("40%", "12.5%"); it reads as the
 * fraction 0.40.  Range checks (0% .. 100% for most fields) belong to the
 * caller, which knows the field.
 *
 * Pure functions: no allocation, any thread.
 */
#ifndef FAULTLINE_DURATION_H
#define FAULTLINE_DURATION_H

#include <stddef.h>
#include <stdint.h>

#include "resilience/err.h"

/* 2^62 ns, about 146 years: far beyond any experiment, and sums of a few
 * durations still fit in a uint64_t. */
#define FL_DURATION_MAX_NS (1ull << 62)

/* Parses s (NUL-terminated).  Returns 0 with *ns set, or -EINVAL with a
 * reason in why (why_len bytes, may be 0) such as
 *   "'5' has no unit (write 5s, 5ms, ...)"
 *   "unknown unit 'sec' in '5sec' (units: ns, us, ms, s, m, h)"
 *   "negative duration '-5s'" */
int fl_duration_parse(const char *s, uint64_t *ns, char *why, size_t why_len) RS_WUR;

/* Writes the shortest exact text for ns ("250ms", "1.5s", "2m", "1h30m",
 * "0s") into buf (NUL-terminated, truncated to size); returns buf. */
char *fl_duration_format(uint64_t ns, char *buf, size_t size);

/* Parses "40%" into 0.40.  Returns 0 or -EINVAL with a reason in why. */
int fl_percent_parse(const char *s, double *fraction, char *why, size_t why_len) RS_WUR;

#endif
