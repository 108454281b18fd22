/* Load shedding: decide, per request, whether to drop it before doing work.
 *
 * One object, two policies chosen by opts.mode:
 *
 * RS_SHED_TIERED (server side).  The owner feeds a load score in [0, 1],
 * either directly (rs_shed_set_score) or from load signals
 * (rs_shed_set_load, see struct rs_shed_load).  Thresholds map the score to
 * a tier, each tier has a shed fraction (defaults: below 0.5 green 0%, from
 * 0.5 yellow 10%, from 0.7 red 30%, from 0.85 emergency 70%).
 * The fraction is taken from the lowest priority classes first ("waterfall"):
 * with f the tier's fraction and share(c) the share of recent decisions
 * that were of class c, class LOW is dropped with probability
 * min(1, f / share(LOW)); what LOW cannot cover, f - share(LOW), falls to
 * MEDIUM the same way, then HIGH, then CRITICAL -- but CRITICAL only in the
 * emergency tier.  So the realised fraction equals f whenever the eligible
 * classes carry at least f of the traffic, and otherwise every eligible
 * request is shed and the realised fraction is their share (CRITICAL is
 * never shed below emergency).  The class mix is counted over the last
 * mix_window to 2 * mix_window decisions (two alternating windows, counting
 * the decision being made); per-class outcomes are as exact as that
 * estimate (the very first decisions see a mix of one or two requests), the
 * overall fraction holds up to sampling noise.  A decision whose drop
 * probability is strictly
 * between 0 and 1 draws once from the shedder's rng, seeded from
 * opts.seed, so a run replays exactly.
 *
 * RS_SHED_THROTTLE (client side, Google SRE book ch. 21 "adaptive
 * throttling").  Over a sliding time window (window_ns in `slots` buckets)
 * the shedder counts requests (every rs_shed_admit call, admitted or not)
 * and accepts (rs_shed_record_accept: the backend did not reject the
 * request for overload).  A request is rejected locally with probability
 *   p = max(0, (requests - k * accepts) / (requests + 1))
 * computed before the request itself is counted.  The class is counted but
 * does not change p.
 *
 * Thread safety: none.  One thread, or the caller's lock, owns a shedder
 * for every call including rs_shed_expo.  Hot paths (admit, record_accept,
 * set_score, set_load) do not allocate, lock or read the clock.
 */
#ifndef RESILIENCE_SHED_H
#define RESILIENCE_SHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resilience/alloc.h"
#include "resilience/err.h"
#include "resilience/expo.h"

/* Priority classes, most important first. */
enum rs_shed_class {
	RS_SHED_CRITICAL = 0, /* shed only in the emergency tier */
	RS_SHED_HIGH = 1,
	RS_SHED_MEDIUM = 2,
	RS_SHED_LOW = 3, /* shed first */
};
#define RS_SHED_NCLASSES 4

enum rs_shed_tier {
	RS_SHED_GREEN = 0,
	RS_SHED_YELLOW = 1,
	RS_SHED_RED = 2,
	RS_SHED_EMERGENCY = 3,
};
#define RS_SHED_NTIERS 4

enum rs_shed_mode {
	RS_SHED_TIERED = 0,
	RS_SHED_THROTTLE = 1,
};

struct rs_shed_tiers {
	/* Score at which yellow, red and emergency begin: 0 < [0] < [1] < [2] <= 1. */
	double threshold[RS_SHED_NTIERS - 1];
	/* Fraction of all traffic to shed in green, yellow, red, emergency: each
	 * in [0, 1], non-decreasing. */
	double fraction[RS_SHED_NTIERS];
};

#define RS_SHED_TIERS_DEFAULT                                                                      \
	{                                                                                          \
		.threshold = { 0.5, 0.7, 0.85 }, .fraction = { 0, 0.1, 0.3, 0.7 }                  \
	}

struct rs_shed_opts {
	const char *name;	/* 1..47 bytes, copied; the `name` label */
	enum rs_shed_mode mode; /* RS_SHED_TIERED or RS_SHED_THROTTLE */
	uint64_t seed;		/* seeds the decision rng */
	/* Tiered only (must be 0/NULL in throttle mode): */
	const struct rs_shed_tiers *tiers; /* NULL: RS_SHED_TIERS_DEFAULT; read, not kept */
	uint32_t mix_window;		   /* decisions per class-mix window; 0: 1024 */
	/* Throttle only (must be 0 in tiered mode): */
	double k;		      /* accepts multiplier, finite and >= 1; 0: 2 */
	uint64_t window_ns;	      /* history; 0: 120 s */
	uint32_t slots;		      /* buckets in the window, window_ns / slots >= 1 ns; 0: 120 */
	const struct rs_alloc *alloc; /* NULL: libc; borrowed, must outlive the shedder */
};

/* Load signals for rs_shed_set_load.  Each present signal becomes a
 * pressure in [0, 1] and the score is the largest of them, so that any one
 * saturated resource is enough to shed:
 *   cpu                                (utilisation, must be in [0, 1])
 *   queue_depth / queue_limit          (absent when queue_limit == 0)
 *   latency_ns / (2 * latency_target_ns) (absent when the target is 0)
 * each capped at 1.  Latency at its target gives 0.5, the default yellow
 * threshold: with default tiers, shedding starts as latency passes target.
 */
struct rs_shed_load {
	double cpu;
	uint64_t queue_depth, queue_limit;
	uint64_t latency_ns, latency_target_ns;
};

struct rs_shed;

/* Creates a shedder.  *out is caller-frees (rs_shed_free).  Returns 0,
 * -EINVAL with a message naming the bad field ("shed: k must be finite and
 * >= 1, got 0.5"), or -ENOMEM (nothing leaked).  Any thread. */
int rs_shed_new(struct rs_shed **out, const struct rs_shed_opts *opts, struct rs_err *err) RS_WUR;

/* Frees the shedder; accepts NULL. */
void rs_shed_free(struct rs_shed *s);

/* Decides one request of class `cls` at now_ns: true admits it, false sheds
 * it.  A class outside the enum counts as RS_SHED_LOW.  Tiered mode ignores
 * now_ns. */
bool rs_shed_admit(struct rs_shed *s, enum rs_shed_class cls, uint64_t now_ns);

/* Throttle mode: the backend accepted a request at now_ns.  No effect in
 * tiered mode. */
void rs_shed_record_accept(struct rs_shed *s, uint64_t now_ns);

/* Tiered mode: sets the load score.  -EINVAL (score unchanged) for a score
 * outside [0, 1] or NaN, or a throttle-mode shedder. */
int rs_shed_set_score(struct rs_shed *s, double score, struct rs_err *err) RS_WUR;

/* Tiered mode: sets the score from load signals (see struct rs_shed_load).
 * -EINVAL for a cpu outside [0, 1] or NaN, or a throttle-mode shedder. */
int rs_shed_set_load(struct rs_shed *s, const struct rs_shed_load *load, struct rs_err *err) RS_WUR;

/* The score the signals give (see struct rs_shed_load); NaN when cpu is
 * outside [0, 1] or NaN.  Pure; any thread. */
double rs_shed_load_score(const struct rs_shed_load *load);

/* Tiered mode: the current score and tier (green and 0 in throttle mode). */
double rs_shed_score(const struct rs_shed *s);
enum rs_shed_tier rs_shed_tier(const struct rs_shed *s);

/* The fraction of traffic the shedder is shedding now: tiered, the sum over
 * classes of share * drop probability for the current mix (the tier's
 * fraction, or less when the eligible classes carry less than it; before
 * any decision, the tier's fraction); throttle, the rejection probability p
 * at now_ns. */
double rs_shed_fraction(const struct rs_shed *s, uint64_t now_ns);

/* Throttle mode: p at now_ns, and the requests and accepts in the window it
 * is computed from (either pointer may be NULL).  0 in tiered mode. */
double rs_shed_reject_probability(const struct rs_shed *s, uint64_t now_ns, uint64_t *requests,
				  uint64_t *accepts);

struct rs_shed_stats {
	uint64_t decided[RS_SHED_NCLASSES]; /* rs_shed_admit calls per class */
	uint64_t shed[RS_SHED_NCLASSES];    /* of which shed */
	uint64_t shed_total;
};

/* Counters since creation. */
void rs_shed_stats(const struct rs_shed *s, struct rs_shed_stats *out);

/* Lowercase class name ("critical", "high", "medium", "low"), the `class`
 * label; "low" for values outside the enum. */
const char *rs_shed_class_name(enum rs_shed_class cls);

/* Writes, for the n shedders in objs (borrowed; NULL entries skipped):
 *   resilience_shed_fraction{name}              gauge, rs_shed_fraction
 *   resilience_shed_total{name}                 counter, requests shed
 *   resilience_shed_class_total{name,class}     counter, per class
 *   resilience_shed_tier{name}                  gauge 0..3 (tiered only)
 * each family once.  Same thread as the shedders' other calls. */
void rs_shed_expo(struct rs_expo *e, const struct rs_shed *const *objs, size_t n, uint64_t now_ns);

#endif
