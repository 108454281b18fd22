/* What a run recorded, for the evaluator and the journal: one time series
 * of samples per probe, and the actual times of the run's events.
 *
 * Clock.  Every time here is CLOCK_MONOTONIC nanoseconds as the runner read
 * it (uv_hrtime / rs_now_ns), the same clock for samples and events; the
 * evaluator only ever subtracts them, so tests may use offsets from 0.
 * FL_T_NONE marks an event that has not happened (yet).
 *
 * Series.  Samples are appended in time order (equal times allowed) by the
 * one thread that owns the run (the runner's loop thread); append is O(1)
 * amortised: the storage grows by doubling, and fl_series_reserve lets the
 * runner allocate what the plan needs up front so that sampling does not
 * allocate.  A sample is either ok (the probe answered, `value` is what it
 * yielded) or failed (the probe could not reach its endpoint, timed out, or
 * yielded no finite number); failed samples are kept so that reports can
 * show them, and the evaluator never lets them satisfy a predicate.
 *
 * Counters.  `counter` marks a series of cumulative counts (a counter read
 * as is: client.requests, client.attempts, a raw *_total): the increase of
 * such a series over a window is the sum of its rises between consecutive
 * ok samples, where a fall is a counter reset (the process restarted) and
 * the value after it is the rise (Prometheus' increase()).  For any other
 * series the increase is last - first.  The runner records client.requests,
 * client.attempts, client.successes, client.failures and client.timeouts as
 * cumulative counts from the start of the load (not per interval) and marks
 * them `counter`, so that ratios of their increases over any window are
 * exact (see harness/eval.h).
 *
 * Ownership: a series owns its sample array; a runlog owns its series and
 * action records.  Nothing here is thread-safe: one thread writes, and
 * readers (the evaluator, the journal) read after the run or on the same
 * thread.
 */
#ifndef FAULTLINE_SERIES_H
#define FAULTLINE_SERIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resilience/alloc.h"
#include "resilience/err.h"

/* "Has not happened": an event time that is not known. */
#define FL_T_NONE UINT64_MAX

/* At most this many samples in one series (16.7 M: 46 hours at the 10 ms
 * cadence, 400 MB); append refuses more with -E2BIG. */
#define FL_SERIES_MAX_SAMPLES (1u << 24)

struct fl_sample {
	uint64_t t_ns;
	double value; /* finite when ok; meaningless (0) when failed */
	bool ok;
};

/* Caller-embedded. */
struct fl_series {
	struct fl_sample *v; /* owned; n used of cap */
	size_t n, cap;
	bool counter;		      /* cumulative counts (see above); set by the runner */
	const struct rs_alloc *alloc; /* borrowed; NULL = libc */
};

/* An empty series; alloc NULL = libc (borrowed, must outlive the series). */
void fl_series_init(struct fl_series *s, const struct rs_alloc *alloc);

/* Makes room for n samples in total.  0, -ENOMEM, or -E2BIG when n is above
 * FL_SERIES_MAX_SAMPLES. */
int fl_series_reserve(struct fl_series *s, size_t n) RS_WUR;

/* Appends one sample.  A value that is not finite (NaN, an infinity: a
 * scrape of "NaN") is stored as a failed sample, since no predicate can be
 * decided on it.  Returns 0; -EINVAL when t_ns is before the last sample's
 * time (nothing is appended); -ENOMEM or -E2BIG when the series cannot
 * grow (nothing is appended). */
int fl_series_append(struct fl_series *s, uint64_t t_ns, double value, bool ok) RS_WUR;

/* Frees the samples; the series is empty and may be used again.  Accepts a
 * series that was only initialised (or released already). */
void fl_series_release(struct fl_series *s);

/* The index of the first sample with t >= t_ns (s->n when there is none).
 * O(log n). */
size_t fl_series_lower(const struct fl_series *s, uint64_t t_ns);

/* The index of the first sample with t > t_ns (s->n when there is none). */
size_t fl_series_upper(const struct fl_series *s, uint64_t t_ns);

/* The samples in the closed window [from_ns, until_ns] are s->v[*lo ..
 * *hi) (empty, *lo == *hi, when until_ns < from_ns or none fall in it). */
void fl_series_window(const struct fl_series *s, uint64_t from_ns, uint64_t until_ns, size_t *lo,
		      size_t *hi);

/* ---- the run's record ---------------------------------------------------- */

/* When one action of the method actually happened.  applied_ns: its (first)
 * apply returned success, the fault is in effect from then on; the event
 * "<action>.start" is this time, and a window `during` the action starts
 * here.  verified_ns: its (first) verify returned success.  reverted_ns:
 * revert returned (for families with nothing to revert: when the runner
 * handled the action's end); "<action>.end" is this time, and a `during`
 * window ends here.  An action whose model has no duration (start == end)
 * has ".end" == ".start" unless reverted_ns was recorded.  FL_T_NONE: not
 * (yet) done. */
struct fl_action_times {
	uint64_t applied_ns, verified_ns, reverted_ns;
};

/* Caller-embedded.  series[i] is probe i of the experiment
 * (fl_experiment.probes), actions[i] is action i (fl_experiment.actions).
 * The run's phase times, FL_T_NONE until they happen:
 *   start_ns       the load generator started: the event "start", time 0
 *                  of the plan;
 *   warmup_end_ns  warm-up over: the baseline window begins;
 *   steady_ns      the baseline check passed: the event "steady";
 *   final_ns       the final steady-state window begins;
 *   end_ns         the run ended (the plan's end, or when an abort or a
 *                  signal stopped it): the event "end", and the end of the
 *                  whole-run window. */
struct fl_runlog {
	struct fl_series *series; /* owned, nseries of them */
	size_t nseries;
	struct fl_action_times *actions; /* owned, nactions of them */
	size_t nactions;
	uint64_t start_ns, warmup_end_ns, steady_ns, final_ns, end_ns;
	const struct rs_alloc *alloc; /* borrowed; NULL = libc */
};

/* nseries empty series and nactions action records, every time FL_T_NONE.
 * Returns 0 or -ENOMEM (nothing to release then).  alloc may be NULL. */
int fl_runlog_init(struct fl_runlog *r, size_t nseries, size_t nactions,
		   const struct rs_alloc *alloc) RS_WUR;

/* Frees every series and the records; accepts a zeroed or released runlog. */
void fl_runlog_release(struct fl_runlog *r);

#endif
