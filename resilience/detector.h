/* Metastability detection: is the system stuck in a bad state that outlives
 * whatever pushed it there?
 *
 * One detector implements one of three forms, chosen by opts.form, and is fed
 * one struct rs_detector_sample per evaluation period:
 *
 *  RS_DETECTOR_MULTI_SIGNAL  (a) Five signals against a baseline learned from
 *    healthy samples: latency above latency_factor x baseline and above
 *    latency_floor_ns; error rate above error_rate_threshold; throughput below
 *    throughput_fraction x baseline; CPU or memory above resource_threshold;
 *    queue depth above queue_min and above queue_factor x baseline.
 *    Metastable when at least k hold.  This form cannot tell plain overload
 *    from metastability: a load surge that saturates the service raises
 *    latency, CPU and queue depth and fires it (tests/test_detector.c shows
 *    it firing during a surge and clearing after the surge ends).
 *
 *  RS_DETECTOR_SIGNATURE  (b) The "less busy but worse" signature: offered
 *    load below low_load_fraction x baseline while latency (as in (a)), a
 *    cold cache (cache_hit_ratio below cache_hit_threshold) or queue depth
 *    (as in (a)) say the system is struggling.
 *
 *  RS_DETECTOR_TRIGGER_AWARE  (c) After Bronson et al. (HotOS'21) and Huang
 *    et al. (OSDI'22): a metastable failure is one whose sustaining effect
 *    outlives its trigger.  The caller says whether the known trigger (a
 *    fault, a load surge) is present.  The detector fires when the trigger
 *    has been gone for at least trigger_clear_ns while, at every evaluation
 *    since it went away, offered load stayed within +-load_band of baseline
 *    and goodput stayed below goodput_fraction x offered load or retry
 *    amplification stayed above 1 + retry_budget.  It never fires while the
 *    trigger is present (that is overload), nor when the symptoms clear
 *    before trigger_clear_ns (a normal recovery, counted in `recoveries`),
 *    nor before a trigger has been seen.  The window is measured from the
 *    first evaluation that saw the trigger gone, so the detector fires at
 *    the first evaluation at or after that time + trigger_clear_ns.
 *
 * Common behaviour:
 *  - Baseline: an exponential moving average (weight `alpha` for the new
 *    sample) of latency, throughput, offered load and queue depth, over
 *    healthy samples only, and never while metastable.  A sample is healthy
 *    when its form sees no symptom (for (a): no signal; for (b): no latency,
 *    cache or queue symptom; for (c): trigger absent, no trigger episode in
 *    progress, goodput and amplification fine).  Relative conditions
 *    (latency, throughput, queue, load against the baseline) cannot hold
 *    before the first healthy sample, so that sample seeds the baseline as
 *    long as no absolute condition (errors, CPU/memory, cold cache, goodput,
 *    amplification) holds: start a detector while the system is in its
 *    steady state.  Later samples are judged against the baseline so far.
 *    Nothing is declared until min_baseline_samples healthy samples have
 *    been absorbed.
 *  - Entering is immediate: the first evaluation that meets the form's
 *    condition declares the state (an RS_DETECTOR_ENTER event).
 *  - Exit has hysteresis: exit_periods consecutive calm evaluations are
 *    needed; one non-calm evaluation restarts the count.  For (a) an
 *    evaluation is calm when fewer than exit_k signals hold (exit_k <= k, so
 *    exit_k < k gives a lower exit count as well); for (b) when the signature
 *    does not hold; for (c) when goodput is at least goodput_fraction of
 *    offered load and amplification at most 1 + retry_budget.
 *  - Samples closer than period_ns / 2 to the previous evaluation (or going
 *    back in time) are dropped and counted, so sampling faster than the
 *    period cannot shorten the hysteresis, which counts evaluations.
 *  - A NaN field means "not measured": it makes no condition hold and never
 *    enters the baseline.
 *
 * The detector allocates once, in rs_detector_new; rs_detector_update never
 * allocates, locks or reads the clock.  Single-threaded by contract: one
 * thread (or one caller serialising access) updates, reports and exports a
 * given detector.
 */
#ifndef RESILIENCE_DETECTOR_H
#define RESILIENCE_DETECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resilience/alloc.h"
#include "resilience/err.h"
#include "resilience/expo.h"

#define RS_DETECTOR_NAME_MAX 48 /* including the terminating NUL */

enum rs_detector_form {
	RS_DETECTOR_MULTI_SIGNAL = 0,
	RS_DETECTOR_SIGNATURE = 1,
	RS_DETECTOR_TRIGGER_AWARE = 2,
};

/* Signal bits (rs_detector_report.signals, rs_detector_event.signals).  A
 * form sets only its own bits; resilience_detector_signals counts them. */
enum {
	/* (a) and (b) */
	RS_DETECTOR_SIG_LATENCY = 1u << 0,
	RS_DETECTOR_SIG_QUEUE = 1u << 1,
	/* (a) */
	RS_DETECTOR_SIG_ERRORS = 1u << 2,
	RS_DETECTOR_SIG_THROUGHPUT = 1u << 3,
	RS_DETECTOR_SIG_RESOURCES = 1u << 4,
	/* (b) */
	RS_DETECTOR_SIG_LOW_LOAD = 1u << 5,
	RS_DETECTOR_SIG_COLD_CACHE = 1u << 6,
	/* (c) */
	RS_DETECTOR_SIG_LOAD_STEADY = 1u << 7, /* offered load within the band */
	RS_DETECTOR_SIG_LOW_GOODPUT = 1u << 8, /* goodput < goodput_fraction x offered */
	RS_DETECTOR_SIG_AMPLIFIED = 1u << 9,   /* amplification > 1 + retry_budget */
	RS_DETECTOR_SIG_OUTLIVED = 1u << 10,   /* symptoms outlived the trigger by D */
};

/* One evaluation period's measurements.  Rates are per second; ratios in
 * [0, 1]; NaN (for doubles) means not measured. */
struct rs_detector_sample {
	uint64_t now_ns;	    /* CLOCK_MONOTONIC time of the sample */
	uint64_t latency_ns;	    /* a high quantile, e.g. p99 */
	double error_rate;	    /* failed / finished requests */
	double throughput;	    /* completed requests/s, successful or not */
	double offered_load;	    /* new requests/s arriving (not attempts) */
	double goodput;		    /* successful requests/s */
	double cpu;		    /* utilisation 0..1 */
	double memory;		    /* utilisation 0..1 */
	uint64_t queue_depth;	    /* requests waiting */
	double cache_hit_ratio;	    /* 0..1 */
	double retry_amplification; /* attempts / requests (1 = no retries) */
	bool trigger_active;	    /* the known trigger (e.g. a fault) is present */
};

enum rs_detector_event_kind {
	RS_DETECTOR_ENTER = 1, /* metastable declared ("fired") */
	RS_DETECTOR_EXIT = 2,  /* metastable cleared after the hysteresis */
};

struct rs_detector_event {
	enum rs_detector_event_kind kind;
	const char *name;     /* the detector's name; borrowed, valid during the call */
	uint64_t at_ns;	      /* the evaluation that changed the state */
	uint64_t since_ns;    /* start of the episode (== at_ns on ENTER) */
	uint64_t duration_ns; /* EXIT: at_ns - since_ns (includes the hysteresis); ENTER: 0 */
	uint64_t episode;     /* 1 for the first episode, 2 for the next... */
	unsigned signals;     /* signal bits at this evaluation */
	/* (c) only: when the trigger was first seen gone for this episode. */
	uint64_t trigger_end_ns;
};

struct rs_detector_opts {
	const struct rs_alloc *alloc; /* NULL = libc; borrowed, must outlive the detector */
	const char *name;	      /* 1..47 bytes; copied; the `name` label */
	enum rs_detector_form form;

	uint64_t period_ns;	       /* evaluation period, > 0 */
	double alpha;		       /* baseline EMA weight, (0, 1] */
	uint32_t min_baseline_samples; /* healthy samples before any verdict, >= 1 */
	uint32_t exit_periods;	       /* calm evaluations needed to exit, >= 1 */

	/* Called synchronously from rs_detector_update on the updating thread,
	 * once per ENTER/EXIT; may be NULL.  Must not call back into this
	 * detector's rs_detector_update. */
	void (*on_event)(void *ctx, const struct rs_detector_event *ev);
	void *on_event_ctx; /* borrowed, passed through */

	/* (a) multi-signal; latency and queue fields are also read by (b). */
	uint32_t k;		     /* signals needed to enter, 1..5 */
	uint32_t exit_k;	     /* calm when fewer than exit_k hold, 1..k */
	double latency_factor;	     /* >= 1 */
	uint64_t latency_floor_ns;   /* latency must also exceed this (0: no floor) */
	double error_rate_threshold; /* [0, 1) */
	double throughput_fraction;  /* (0, 1] */
	double resource_threshold;   /* (0, 1) */
	uint64_t queue_min;	     /* queue must exceed this ... */
	double queue_factor;	     /* ... and queue_factor x baseline, >= 1 */

	/* (b) signature */
	double low_load_fraction;   /* (0, 1] */
	double cache_hit_threshold; /* (0, 1] */

	/* (c) trigger-aware */
	uint64_t trigger_clear_ns; /* D: how long symptoms must outlive the trigger, > 0 */
	double load_band;	   /* offered load within +-band x baseline, (0, 1] */
	double goodput_fraction;   /* g, (0, 1] */
	double retry_budget;	   /* amplification above 1 + budget is a symptom, >= 0 */
};

struct rs_detector_report {
	enum rs_detector_form form;
	bool metastable;
	unsigned signals;	   /* bits at the last evaluation */
	unsigned nsignals;	   /* number of bits set */
	uint64_t since_ns;	   /* start of the current episode; 0 when not metastable */
	uint64_t entered;	   /* episodes entered ("fired") */
	uint64_t exited;	   /* episodes exited ("cleared") */
	uint64_t metastable_ns;	   /* total time metastable, the open episode up to the
				    * last evaluation included */
	uint64_t last_duration_ns; /* duration of the last closed episode; 0 if none */
	uint64_t evaluations;	   /* samples evaluated */
	uint64_t dropped;	   /* samples dropped (too early or back in time) */
	uint64_t last_eval_ns;	   /* time of the last evaluation; 0 if none */
	bool baseline_ready;	   /* min_baseline_samples absorbed */
	uint64_t baseline_samples; /* healthy samples absorbed */
	struct {
		double latency_ns, throughput, offered_load, queue_depth; /* NaN: none yet */
	} baseline;
	/* (c) only (zero otherwise). */
	bool trigger_active;	 /* as of the last evaluation */
	uint64_t triggers;	 /* trigger episodes seen (absent -> present) */
	uint64_t recoveries;	 /* trigger episodes whose symptoms cleared within D */
	uint64_t trigger_end_ns; /* when the trigger was last seen gone after an episode */
};

struct rs_detector;

/* Fills *opts with defaults for `form`: period 1 s, alpha 0.1, 5 baseline
 * samples, exit after 3 calm periods; (a) k 3, exit_k 3, latency 2x and
 * above 100 ms, error rate 0.05, throughput below 0.5x, CPU/memory above
 * 0.9, queue above 1000 and 5x; (b) load below 0.7x, cache hit ratio below
 * 0.5; (c) D 10 s, band 0.1, goodput fraction 0.9, retry budget 0.2.  The
 * name is left NULL: the caller must name the detector.  Any thread. */
void rs_detector_opts_default(struct rs_detector_opts *opts, enum rs_detector_form form);

/* Creates a detector.  Validates every field common to all forms and every
 * field that opts->form reads (others are ignored): -EINVAL with a message
 * naming the field and its value.  -ENOMEM when allocation fails (nothing
 * leaks).  On success *out is caller-frees with rs_detector_free.  `err` may
 * be NULL.  Any thread. */
int rs_detector_new(struct rs_detector **out, const struct rs_detector_opts *opts,
		    struct rs_err *err) RS_WUR;

/* Frees the detector; accepts NULL. */
void rs_detector_free(struct rs_detector *d);

/* Feeds one period's sample (borrowed for the call) and evaluates it.
 * Returns the events it caused as bits: RS_DETECTOR_ENTER, RS_DETECTOR_EXIT,
 * or 0 (also 0 for a dropped sample).  Never fails, allocates, locks or
 * reads the clock; the on_event callback runs before it returns.  Only the
 * detector's single updating thread. */
int rs_detector_update(struct rs_detector *d, const struct rs_detector_sample *s);

/* Whether the detector currently declares metastability.  Updating thread. */
bool rs_detector_metastable(const struct rs_detector *d);

/* Copies the detector's state into *out (caller storage).  Updating thread. */
void rs_detector_report(const struct rs_detector *d, struct rs_detector_report *out);

/* The detector's name (borrowed, valid until rs_detector_free). */
const char *rs_detector_name(const struct rs_detector *d);

/* Writes resilience_metastable{name} (gauge 0/1), resilience_detector_signals
 * {name} (gauge: signals holding at the last evaluation) and
 * resilience_metastable_episodes_total{name} (counter: episodes entered) for
 * the n detectors in objs (borrowed; none NULL), each family once.  Same
 * thread as the updates, or with updates serialised by the caller. */
void rs_detector_expo(struct rs_expo *e, const struct rs_detector *const *objs, size_t n);

#endif
