/* Rate limiting: a token bucket, and an AIMD limiter that moves the bucket's
 * rate with observed latency.
 *
 * Both are caller-embedded value objects (like struct rs_rng): they never
 * allocate, so they have init/release and no allocator or name.  They never
 * block and never read the clock: every call takes `now_ns`
 * (CLOCK_MONOTONIC nanoseconds).  A `now_ns` earlier than one already seen is
 * treated as "no time has passed", so the limit holds even if callers race
 * their clock readings.
 *
 * Guarantee of the token bucket: over any interval of length T (ns), at most
 * burst + rate * T / 1e9 tokens are handed out, and a fresh bucket hands out
 * its whole burst at once.  Token counts are doubles (like Go's
 * x/time/rate); their rounding is far below one token.
 *
 * Thread safety: none.  One thread (or the caller's lock) owns an object;
 * the struct fields are private, read them through the accessors.
 */
#ifndef RESILIENCE_RATELIMIT_H
#define RESILIENCE_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "resilience/err.h"

struct rs_ratelimit_opts {
	double rate;	/* tokens added per second; finite and > 0 */
	uint64_t burst; /* bucket capacity in tokens, 1..2^53; the bucket starts full */
};

struct rs_ratelimit {
	/* private */
	double rate;   /* tokens per second */
	double burst;  /* capacity */
	double tokens; /* tokens as of last_ns */
	uint64_t last_ns;
	bool primed; /* false until the first call gives a time reference */
	uint64_t admitted, rejected;
};

/* Initialises `rl` (caller storage) from `opts` (read, not kept).  Returns 0,
 * or -EINVAL with a message naming the field ("ratelimit: rate must be
 * finite and > 0, got 0").  Any thread; `rl` is not shared yet. */
int rs_ratelimit_init(struct rs_ratelimit *rl, const struct rs_ratelimit_opts *opts,
		      struct rs_err *err) RS_WUR;

/* Releases nothing (the bucket owns no resources); exists so that callers
 * pair every init.  Accepts NULL. */
void rs_ratelimit_release(struct rs_ratelimit *rl);

/* Takes one token if one is available at now_ns.  Returns true when the
 * caller may proceed.  When `wait_ns` is not NULL it receives 0 on success,
 * else the nanoseconds after now_ns at which a token will be available if
 * nobody else takes one: trying exactly then succeeds, trying 1 ns earlier
 * does not (failed attempts change nothing, so they do not move it).
 * Never blocks. */
bool rs_ratelimit_try_acquire(struct rs_ratelimit *rl, uint64_t now_ns, uint64_t *wait_ns);

/* Same for n tokens at once (all or none); n == 0 always succeeds.  When n
 * exceeds the burst it can never succeed and *wait_ns is UINT64_MAX. */
bool rs_ratelimit_try_acquire_n(struct rs_ratelimit *rl, uint64_t n, uint64_t now_ns,
				uint64_t *wait_ns);

/* Tokens available at now_ns (fractional), without taking any. */
double rs_ratelimit_tokens(const struct rs_ratelimit *rl, uint64_t now_ns);

/* The current rate in tokens per second. */
double rs_ratelimit_rate(const struct rs_ratelimit *rl);

/* Calls admitted and rejected by try_acquire/try_acquire_n so far. */
uint64_t rs_ratelimit_admitted(const struct rs_ratelimit *rl);
uint64_t rs_ratelimit_rejected(const struct rs_ratelimit *rl);

/* Changes the rate from now_ns on: tokens accrued until now_ns count at the
 * old rate.  -EINVAL (bucket unchanged) for a rate that is not finite and
 * > 0. */
int rs_ratelimit_set_rate(struct rs_ratelimit *rl, double rate, uint64_t now_ns,
			  struct rs_err *err) RS_WUR;

/* ---- AIMD: latency-driven rate ------------------------------------------
 *
 * The limiter owns a token bucket whose rate it moves between min_rate and
 * max_rate.  The caller reports each request's latency; samples are grouped
 * into adjustment intervals, and when a sample arrives interval_ns or more
 * after the current interval began, the interval closes: if its mean latency
 * is <= target_latency_ns the rate grows by `increase` (additive), else it is
 * multiplied by `decrease` (multiplicative), clamped to [min_rate, max_rate];
 * the new interval begins at that sample.  So the rate changes at most once
 * per interval, and an interval without samples changes nothing (no
 * evidence either way).
 */
struct rs_ratelimit_aimd_opts {
	double initial_rate;	    /* tokens/s, in [min_rate, max_rate] */
	double min_rate;	    /* tokens/s, finite and > 0 */
	double max_rate;	    /* tokens/s, finite and >= min_rate */
	uint64_t burst;		    /* bucket capacity, as for the token bucket */
	uint64_t target_latency_ns; /* > 0 */
	uint64_t interval_ns;	    /* adjustment interval, > 0 */
	double increase;	    /* tokens/s added per good interval, finite and > 0 */
	double decrease;	    /* factor applied per bad interval, in (0, 1) */
};

struct rs_ratelimit_aimd {
	/* private */
	struct rs_ratelimit bucket;
	double min_rate, max_rate, increase, decrease;
	uint64_t target_ns, interval_ns;
	uint64_t win_start_ns;
	bool win_started;
	uint64_t win_count;
	double win_sum_ns;
	uint64_t increases, decreases;
};

/* Initialises `a` (caller storage) from `opts` (read, not kept).  0 or
 * -EINVAL naming the field. */
int rs_ratelimit_aimd_init(struct rs_ratelimit_aimd *a, const struct rs_ratelimit_aimd_opts *opts,
			   struct rs_err *err) RS_WUR;

/* Releases nothing; accepts NULL. */
void rs_ratelimit_aimd_release(struct rs_ratelimit_aimd *a);

/* Takes one token at the current rate; as rs_ratelimit_try_acquire. */
bool rs_ratelimit_aimd_try_acquire(struct rs_ratelimit_aimd *a, uint64_t now_ns, uint64_t *wait_ns);

/* Reports the latency of one finished request, observed at now_ns.  Returns
 * +1 when this call closed an interval and raised the rate, -1 when it
 * lowered it, 0 otherwise (including a change clamped away at a bound). */
int rs_ratelimit_aimd_record(struct rs_ratelimit_aimd *a, uint64_t latency_ns, uint64_t now_ns);

/* The current rate in tokens per second, always in [min_rate, max_rate]. */
double rs_ratelimit_aimd_rate(const struct rs_ratelimit_aimd *a);

/* Intervals that raised / lowered the rate so far. */
uint64_t rs_ratelimit_aimd_increases(const struct rs_ratelimit_aimd *a);
uint64_t rs_ratelimit_aimd_decreases(const struct rs_ratelimit_aimd *a);

#endif
