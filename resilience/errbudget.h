/* SLO error budget and multi-window burn-rate alerts (Google SRE workbook,
 * "Alerting on SLOs", approach 6).
 *
 * The owner records good and bad request counts with their time; the
 * budget tells how much of the window's allowance of bad requests,
 * (1 - slo) * requests, is used, and the rules say whether errors are
 * burning it too fast.  The burn rate over a window is
 *   (bad / (good + bad) in that window) / (1 - slo)
 * (0 without traffic), and a rule fires while the burn rate over BOTH its
 * long and its short window is strictly greater than its factor.  Default
 * rules: 14.4x over 1h and 5m, 6x over 6h and 30m, 1x over 3d and 6h.
 *
 * Windows are sliding and bucketed: each distinct window (the budget window
 * and every rule's long and short window) is a ring of `slots` buckets of
 * window_ns / slots ns (integer division), and a query at now_ns sums the
 * bucket holding now_ns and the slots - 1 before it.  With the default 3600
 * slots the 1h window moves in 1 s steps, 5m in 83 ms, 30d in 12 min; a
 * budget costs 16 bytes per slot per distinct window (346 KB by default).
 * 1 - slo is rounded to 15 decimal places, the precision of a double near 1,
 * so that slo 0.999 gives the budget 0.001 as written.
 *
 * Thread safety: none.  One thread, or the caller's lock, owns the budget
 * for every call including rs_errbudget_expo.  record does not allocate,
 * lock or read the clock.
 */
#ifndef RESILIENCE_ERRBUDGET_H
#define RESILIENCE_ERRBUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resilience/alloc.h"
#include "resilience/err.h"
#include "resilience/expo.h"

#define RS_ERRBUDGET_MAX_RULES 32 /* rs_errbudget_evaluate returns a 32-bit mask */

struct rs_errbudget_rule {
	/* The `rule` label, 1..47 bytes, copied; NULL: generated from the rule,
	 * "<factor>x_<long>_<short>" e.g. "14.4x_1h_5m".  Unique per budget. */
	const char *name;
	uint64_t long_ns;  /* long window, >= slots ns */
	uint64_t short_ns; /* short window, in [slots, long_ns] ns */
	double factor;	   /* burn-rate threshold, finite and > 0 */
};

struct rs_errbudget_opts {
	const char *name;   /* 1..47 bytes, copied; the `name` label */
	double slo;	    /* target ratio of good requests, in (0, 1), e.g. 0.999 */
	uint64_t window_ns; /* budget window, e.g. 30 days; >= slots ns */
	uint32_t slots;	    /* buckets per window; 0: 3600 */
	/* Alert rules (read, not kept).  NULL with nrules 0: the three defaults;
	 * non-NULL with nrules 0: no alerts; at most RS_ERRBUDGET_MAX_RULES. */
	const struct rs_errbudget_rule *rules;
	size_t nrules;
	const struct rs_alloc *alloc; /* NULL: libc; borrowed, must outlive the budget */
};

struct rs_errbudget_status {
	uint64_t good, bad; /* in the budget window */
	double consumed;    /* bad / ((1 - slo) * (good + bad)); 0 without traffic */
	double remaining;   /* 1 - consumed: the fraction of budget left, < 0 once overspent */
	bool exhausted;	    /* consumed >= 1 */
};

struct rs_errbudget;

/* Creates a budget.  *out is caller-frees (rs_errbudget_free).  0, -EINVAL
 * naming the field ("errbudget: slo must be in (0, 1), got 1"), or -ENOMEM
 * (nothing leaked).  Any thread. */
int rs_errbudget_new(struct rs_errbudget **out, const struct rs_errbudget_opts *opts,
		     struct rs_err *err) RS_WUR;

/* Frees the budget; accepts NULL. */
void rs_errbudget_free(struct rs_errbudget *eb);

/* Counts `good` and `bad` requests at now_ns.  A now_ns older than one
 * already recorded is credited to its own bucket in each window that still
 * holds that bucket, and to no window that has moved past it. */
void rs_errbudget_record(struct rs_errbudget *eb, uint64_t good, uint64_t bad, uint64_t now_ns);

/* The budget as of now_ns (does not change the budget). */
void rs_errbudget_status(const struct rs_errbudget *eb, uint64_t now_ns,
			 struct rs_errbudget_status *out);

/* Shorthand for status.remaining. */
double rs_errbudget_remaining(const struct rs_errbudget *eb, uint64_t now_ns);

/* The rules firing at now_ns: bit i set when rule i fires (rules in the
 * order given, or the three defaults in the order above).  Pure. */
uint32_t rs_errbudget_evaluate(const struct rs_errbudget *eb, uint64_t now_ns);

/* Burn rates of rule i over its long and short window at now_ns (either
 * pointer may be NULL).  0, or -EINVAL when i is out of range. */
int rs_errbudget_rule_burn(const struct rs_errbudget *eb, size_t i, uint64_t now_ns,
			   double *long_burn, double *short_burn) RS_WUR;

/* Number of rules, and rule i's label (borrowed, valid until free; NULL
 * when i is out of range). */
size_t rs_errbudget_nrules(const struct rs_errbudget *eb);
const char *rs_errbudget_rule_name(const struct rs_errbudget *eb, size_t i);

/* Writes, for the n budgets in objs (borrowed; NULL entries skipped), as of
 * now_ns:
 *   resilience_error_budget_remaining{name}        gauge (status.remaining)
 *   resilience_error_budget_burn_alert{name,rule}  gauge, 1 while the rule fires
 * each family once.  Same thread as the budgets. */
void rs_errbudget_expo(struct rs_expo *e, const struct rs_errbudget *const *objs, size_t n,
		       uint64_t now_ns);

#endif
