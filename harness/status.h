/* The live status line of `faultline run`, on stderr:
 *
 *   [method] 12.3s/30s  1987 req/s  p99 4.1ms  err 0.2%  faults: no-jitter  met 2/4
 *
 * On a TTY it is redrawn in place with '\r' (about 4 times a second) and
 * cleared before any other line is printed; elsewhere (a CI log) the same
 * text is printed as a plain line every 5 s; with --quiet, nothing.
 *
 * Threads: the runner's loop thread.  f is borrowed.
 */
#ifndef FAULTLINE_STATUS_H
#define FAULTLINE_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "resilience/err.h"

#define FL_STATUS_PLAIN_EVERY_NS (5ull * 1000000000ull)

struct fl_status_view {
	const char *phase;
	double elapsed_s, total_s;
	bool have_load; /* rps, p99 and error rate are known */
	double rps, p99_s, error_rate;
	const char *faults; /* active faults' names, "" for none */
	bool have_met;
	size_t met, nexpects;
};

struct fl_status {
	FILE *f;
	bool enabled;
	bool tty;
	size_t shown; /* characters of the line on screen (tty) */
	uint64_t last_plain_ns;
};

/* mode: 0 auto (tty when isatty(fileno(f))), 1 none, 2 plain lines. */
void fl_status_init(struct fl_status *s, FILE *f, int mode);

/* The line's text (no newline) into buf; returns its length. */
size_t fl_status_format(const struct fl_status_view *v, char *buf, size_t size);

/* Draws (tty) or, every FL_STATUS_PLAIN_EVERY_NS, prints the line. */
void fl_status_draw(struct fl_status *s, const struct fl_status_view *v, uint64_t now_ns);

/* Erases the line on a TTY so that another message can be printed. */
void fl_status_clear(struct fl_status *s);

#endif
