/* The expectation evaluator: from what a run recorded (harness/series.h) to
 * one verdict per expectation and steady-state check, each with the
 * measured figure, its bound and the margin, never just a boolean.
 *
 * Pure: the functions read the experiment model and the runlog, allocate
 * only scratch memory they free before returning, and write nothing else.
 * Call them from one thread (the runner's, after the run or between
 * samples); the model and the runlog must not change during a call.
 *
 * ---- Times and events --------------------------------------------------
 * Every time is on the runlog's clock.  An event is the actual time it
 * happened in the run, not the plan's offset:
 *   start, steady, end       runlog start_ns, steady_ns, end_ns;
 *   <action>.start           the action's applied_ns;
 *   <action>.end             its reverted_ns (an action without duration:
 *                            applied_ns unless reverted_ns was recorded);
 *   <expectation>            the first transition of a becomes or recovers
 *                            expectation (below), whether or not it met its
 *                            bound.
 * An event that did not happen (FL_T_NONE) makes every expectation that
 * needs it fail as "not evaluable: event 'X' never happened".  Expectations
 * are evaluated in dependency order (an expectation after the ones whose
 * events it uses; file order otherwise); a cycle, which the validator
 * refuses, fails its members as not evaluable.
 *
 * ---- Windows ------------------------------------------------------------
 * A window is closed: [from, until], samples with from <= t <= until.
 *   during A                 [A.start, A.end];
 *   after E, for D           [E, E + D];
 *   after E (no for)         [E, end];
 *   neither                  the whole run [start, end].
 * Only ok samples count; failed samples (probe unreachable) are counted in
 * the detail and never satisfy a predicate.
 *
 * ---- Aggregates (holds, max, min; steady-state checks; aborts) ----------
 * Over the ok samples of the window, in time order:
 *   none     every sample must satisfy the predicate; the figure is the
 *            worst sample: the largest for le/lt, the smallest for ge/gt,
 *            the farthest from the bound for eq, one equal to the bound
 *            (else the closest) for ne; at_ns is its time (the first on ties).
 *   max, min, mean, last     as named (at_ns: the sample's time; mean: the
 *            last sample's);
 *   p50, p99 the nearest-rank percentile: sorted x[0..n-1], x[ceil(q n) - 1]
 *            (an observed value; p99 of 1..100 is 99, p50 of 1..4 is 2);
 *   delta    the increase from the first to the last sample (for a counter
 *            series: summed across resets, see series.h);
 *   rate     delta / (t_last - t_first) in seconds: per second.
 * A ratio value {"ratio": [num, den]} is delta(num) / delta(den) over the
 * window (attempts over requests: 1100 / 1000 = 1.1); both series are meant
 * to be cumulative counters (series.h says which client metrics the runner
 * records that way).
 * Needed samples: 2 for delta, rate and each side of a ratio (and t_last >
 * t_first for rate, a non-zero denominator increase for a ratio), 1 for the
 * others.  Fewer is a failure, never a silent pass: "not evaluable: N
 * samples in window [a s, b s] (rate needs 2)".
 *
 * ---- Kinds ----------------------------------------------------------------
 * becomes  E = the `after` event.  The first ok sample with t >= E whose
 *          value satisfies the predicate, searched to the end of the series;
 *          measured = t - E seconds; pass when t - E <= within (in ns: a
 *          bound of 2 s passes at 2.000000000 s and fails at 2.000000001 s).
 *          That sample's time is the expectation's event even when it is
 *          late.  Never satisfied: "did not become == 2 within 2 s (last
 *          value 1 at +11.9 s)"; no ok sample in [E, E + within] at all
 *          (and none later that satisfies it): not evaluable.
 * holds    the aggregate of the window satisfies the predicate; max: X is
 *          holds {le: X}, min: X is holds {ge: X}.
 * never    no ok sample of the window satisfies the predicate; on failure
 *          the figure is the first sample that does, and at_ns its time;
 *          on success the sample closest to satisfying it (the largest for
 *          ge/gt, the smallest for le/lt, the closest for eq, the farthest
 *          for ne).
 * recovers E = the `after` event, S = settle, C = the steady-state checks.
 *          T is the earliest time in {E} and the times of the ok samples of
 *          C's probes after E such that T + S <= end and every check of C
 *          holds over [T, T + S] (its aggregate, as above, satisfies its
 *          predicate; a check without enough samples there does not hold).
 *          measured = T - E; pass when T - E <= within.  A flap inside the
 *          settle window moves T past it.  T is the expectation's event.
 *          The search goes on past the bound so a late recovery is still
 *          measured.
 * order    [first, second]: pass when first's time < second's time (ties
 *          fail); measured = second - first seconds (negative when
 *          reversed), bound 0; either event missing: not evaluable.
 *
 * ---- Figures ----------------------------------------------------------------
 * measured and bound are in `unit`: "s" for the time kinds (becomes,
 * recovers, order); for values, the probe's unit when known ("s" for
 * latencies, "ratio" for error/shed rates and ratio values, "/s" for rates
 * and throughput, "" otherwise).  margin is how far the figure is inside
 * its bound (negative or zero when outside): bound - measured for le, lt
 * and the time kinds, measured - bound for ge and gt, -|measured - bound|
 * for eq, |measured - bound| for ne.  When there is no figure (not
 * evaluable, never happened) measured and margin are NAN.  detail is one
 * line for people, prefixed by the expectation's name.
 */
#ifndef FAULTLINE_EVAL_H
#define FAULTLINE_EVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness/experiment.h"
#include "harness/series.h"
#include "resilience/alloc.h"
#include "resilience/err.h"

#define FL_VERDICT_DETAIL 240

struct fl_verdict {
	size_t expect;	  /* the expectation's (or check's) index in the model */
	bool pass;	  /* met its bound */
	bool evaluable;	  /* false: the run did not give enough to decide (pass is false) */
	const char *kind; /* static: "becomes", "holds", "never", "recovers", "order",
			     "steady", "abort" */
	double measured;  /* the figure, in unit (NAN when none) */
	double bound;	  /* what it is compared with, in unit */
	double margin;	  /* inside the bound by this much (<= 0 outside; NAN when none) */
	const char *unit; /* static: "s", "ratio", "/s", "" */
	uint64_t at_ns;	  /* when the figure was observed (transition, worst sample,
			     violation), FL_T_NONE when not applicable */
	size_t samples;	  /* ok samples the figure was computed from */
	size_t failed;	  /* failed samples in the same span */
	char detail[FL_VERDICT_DETAIL];
};

/* Evaluates every expectation of x against the run r.  out has
 * x->nexpects entries, in the model's (file) order.  events_ns, when not
 * NULL, gets x->nexpects entries: the time of each expectation's event
 * (becomes, recovers), FL_T_NONE for the others and for transitions that
 * never happened.  alloc (NULL = libc; borrowed) provides scratch memory.
 * Returns 0; -EINVAL with a message when r does not belong to x (series or
 * action counts differ); -ENOMEM. */
int fl_eval_expects(const struct fl_experiment *x, const struct fl_runlog *r,
		    struct fl_verdict *out, uint64_t *events_ns, const struct rs_alloc *alloc,
		    struct rs_err *err) RS_WUR;

/* Evaluates the steady-state checks x->steady over the window [from_ns,
 * until_ns] (the baseline: [r->warmup_end_ns, r->steady_ns]; the final
 * check: [r->final_ns, r->end_ns]); out has x->nsteady entries, kind
 * "steady".  Same returns. */
int fl_eval_steady(const struct fl_experiment *x, const struct fl_runlog *r, uint64_t from_ns,
		   uint64_t until_ns, struct fl_verdict *out, const struct rs_alloc *alloc,
		   struct rs_err *err) RS_WUR;

/* ---- abort conditions, streaming ------------------------------------------
 * An abort (fl_experiment.aborts[i]) is a check whose predicate must hold;
 * it is met when the predicate has been false continuously for its for_ns.
 * Fed one sample of its probe at a time (in time order), as the runner
 * takes them:
 *   aggregate none: each ok sample that violates the predicate starts a
 *     streak (unless one is running) at its time t0; an ok sample that
 *     satisfies it ends the streak; the condition is met at the first
 *     violating sample t with t - t0 >= for_ns (for_ns 0: at the first
 *     violating sample).
 *   other aggregates: at each ok sample t, once samples reach back to
 *     t - for_ns, the aggregate over [t - for_ns, t] is computed; the
 *     condition is met when it violates the predicate.
 * Failed samples neither start nor end a streak.  Once met, it stays met;
 * met_ns is the time of the sample that met it.  A ratio value is not
 * supported for aborts (the validator allows only a probe). */
struct fl_eval_abort {
	const struct fl_experiment *x; /* borrowed */
	const struct fl_check *check;  /* borrowed: x->aborts[index] */
	size_t index;
	bool met;
	uint64_t met_ns;   /* when met */
	uint64_t since_ns; /* start of the current violation streak, FL_T_NONE when none */
	double value;	   /* the figure at met_ns (the sample, or the aggregate) */
	/* Private: the trailing window for aggregates (ring.v[head ..
	 * ring.n)), scratch for percentiles. */
	uint64_t first_ns, last_ns;
	struct fl_series ring;
	size_t head;
	struct fl_sample *scratch;
	size_t scratch_cap;
	const struct rs_alloc *alloc;
};

/* Prepares the state of abort `index` of x.  alloc NULL = libc (borrowed).
 * Returns 0, or -EINVAL with a message when index is out of range. */
int fl_eval_abort_init(struct fl_eval_abort *a, const struct fl_experiment *x, size_t index,
		       const struct rs_alloc *alloc, struct rs_err *err) RS_WUR;

/* Feeds the next sample of the abort's probe.  Returns 1 when the condition
 * is met (now or before), 0 when not, -EINVAL when the sample is older than
 * the previous one, -ENOMEM when the trailing window cannot grow (an
 * aggregate's window holds every sample of the last for_ns; growth doubles
 * and is rare). */
int fl_eval_abort_feed(struct fl_eval_abort *a, const struct fl_sample *s) RS_WUR;

/* A verdict for the abort (kind "abort", expect = its index): pass = not
 * met; when met, measured = the figure at met_ns, bound = the predicate's
 * value, at_ns = met_ns, and detail "client.error_rate <= 0.9: violated
 * for 5 s from +12 s, met at +17 s (value 0.95)".  origin_ns (the run's
 * start) is what times in the detail are offsets from. */
void fl_eval_abort_verdict(const struct fl_eval_abort *a, uint64_t origin_ns,
			   struct fl_verdict *out);

/* Frees the state's memory; accepts a released state. */
void fl_eval_abort_release(struct fl_eval_abort *a);

/* "==", "!=", "<", "<=", ">", ">=" */
const char *fl_cmp_symbol(enum fl_cmp op);

/* Whether value satisfies the predicate. */
bool fl_pred_holds(const struct fl_pred *p, double value);

#endif
