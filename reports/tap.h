/* TAP (version 13) from verdicts: one test point per steady-state check,
 * expectation and stop condition, with the measured figure and its bound in
 * the description, and a YAML diagnostic block on failure, so `prove` or
 * any TAP consumer can gate a release on a run.
 *
 *   TAP version 13
 *   1..3
 *   ok 1 - baseline: client.error_rate <= 0.01: measured 0, bound <= 0.01, margin 0.01
 *   not ok 2 - retry amplification stays bounded: measured 1.31, bound <= 1.12, margin -0.19
 *     ---
 *     kind: holds
 *     measured: 1.31
 *     ...
 *     ...
 *
 * Reports depend on the journal's verdict format only: a point carries
 * what a verdict record carries, filled by the caller (the runner maps its
 * verdicts; `faultline report` will map journal records).
 *
 * Any thread; f is the caller's.
 */
#ifndef FAULTLINE_REPORTS_TAP_H
#define FAULTLINE_REPORTS_TAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "resilience/err.h"

struct fl_tap_point {
	const char *name; /* "baseline: p99 under 50ms", "breaker opens" (borrowed) */
	bool pass;
	bool evaluable;	    /* false: not enough data to decide (pass is false) */
	const char *kind;   /* "becomes", "holds", "steady", "abort", "run", ... */
	const char *cmp;    /* how measured compares with bound ("<=", ">", ...), or NULL */
	double measured;    /* NAN when there is no figure */
	double bound;	    /* NAN when none */
	double margin;	    /* NAN when none */
	const char *unit;   /* "s", "ratio", "/s", "" or NULL */
	double at_s;	    /* when the figure was observed, seconds from the run's start;
				NAN when none */
	size_t samples;	    /* ok samples behind the figure */
	size_t failed;	    /* failed samples in the same span */
	const char *detail; /* one line for people, or NULL */
};

/* A figure for people: "3.1ms", "2.5s" (unit "s"), "0.012" (ratio),
 * "1200/s", "42"; "n/a" for NAN.  Writes into buf; returns buf. */
char *fl_tap_figure(double v, const char *unit, char *buf, size_t size);

/* "measured 3.1ms, bound <= 50ms, margin 46.9ms" into buf; without a
 * figure or bound, the detail (or "no figure"); returns buf. */
char *fl_tap_describe(const struct fl_tap_point *p, char *buf, size_t size);

/* Writes the stream: version line, plan, one point each, a YAML block
 * under every failing point, then "Bail out! REASON" when bail_out is not
 * NULL (a run stopped by a stop condition or a signal).  Returns 0, or -EIO
 * when writing failed. */
int fl_tap_write(FILE *f, const struct fl_tap_point *pts, size_t n, const char *bail_out) RS_WUR;

#endif
