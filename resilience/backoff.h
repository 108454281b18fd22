/* Exponential backoff with a cap and five jitter strategies.
 *
 * For the n-th retry (n >= 1, the delay before attempt n + 1) the
 * deterministic delay is
 *
 *   t(n) = min(cap_ns, base_ns * multiplier^(n-1))
 *
 * and each strategy draws the delay from this support (all values are
 * rounded down to whole nanoseconds, so a support [a, b] means
 * [floor(a), floor(b)]):
 *
 *   RS_BACKOFF_NONE          t(n), no randomness.
 *   RS_BACKOFF_FULL          U(0, t(n))                 support [0, t(n)], mean t/2.
 *   RS_BACKOFF_EQUAL         t/2 + U(0, t/2)            support [t/2, t(n)], mean 3t/4.
 *   RS_BACKOFF_DECORRELATED  min(cap, U(base, 3*prev))  support [base, min(cap, 3*prev)],
 *                            (Brooker) where prev is the previous delay of the same
 *                            request (prev_ns); prev below base (0 on the first retry)
 *                            is read as base.  Mean (base + 3*prev)/2 while the cap
 *                            does not bind; once 3*prev > cap the draws above cap are
 *                            clamped to cap, so cap then carries a point mass.  This
 *                            strategy ignores n and the multiplier.
 *   RS_BACKOFF_PROPORTIONAL  min(cap, t(n) * U(0.8, 1.2))  support [0.8 t, min(cap, 1.2 t)],
 *                            (gRPC) mean t(n) while 1.2 t(n) <= cap.  The jittered value
 *                            is clamped to cap_ns (a documented clamp: near the cap the
 *                            distribution has a point mass at cap_ns); t is not lowered.
 *
 * No strategy ever returns more than cap_ns.
 *
 * Jitter removal: when the options name a control block (resilience/control.h)
 * and its jitter switch is off, every strategy returns exactly t(n) (the
 * decorrelated one too, ignoring prev_ns): clients then retry in lockstep,
 * which is the fault the harness's `jitter` injector creates.  The switch is
 * read with one relaxed load per delay, so flipping it takes effect at the
 * next delay.
 *
 * The struct is caller-embedded: rs_backoff_init never allocates and the
 * delay functions never allocate, lock or read the clock.  Each rs_backoff
 * owns its rs_rng, seeded from opts->seed, so a sequence replays exactly.
 * Not thread-safe: one rs_backoff per thread (or per object guarded by its
 * owner), because drawing a delay advances the generator.
 */
#ifndef RESILIENCE_BACKOFF_H
#define RESILIENCE_BACKOFF_H

#include <stdint.h>

#include "resilience/control.h"
#include "resilience/err.h"
#include "resilience/rng.h"

enum rs_backoff_strategy {
	RS_BACKOFF_NONE = 0,
	RS_BACKOFF_FULL = 1,
	RS_BACKOFF_EQUAL = 2,
	RS_BACKOFF_DECORRELATED = 3,
	RS_BACKOFF_PROPORTIONAL = 4,
};

/* Largest accepted cap_ns: 2^53 ns (about 104 days), so every delay is
 * exactly representable in the double arithmetic of the jitter. */
#define RS_BACKOFF_MAX_NS (1ull << 53)

/* Retries whose deterministic delay is precomputed at init; later ones
 * (when the cap has not bound yet) call pow(). */
#define RS_BACKOFF_TABLE 32

struct rs_backoff_opts {
	enum rs_backoff_strategy strategy;
	uint64_t base_ns;  /* > 0: the delay before the first retry (t(1)) */
	uint64_t cap_ns;   /* >= base_ns and <= RS_BACKOFF_MAX_NS */
	double multiplier; /* >= 1 and finite; 0 selects the default 2 */
	uint64_t seed;	   /* seeds this object's rs_rng */
	/* Borrowed, may be NULL (jitter always on); must outlive the backoff. */
	const struct rs_control_block *control;
};

/* Caller-embedded; the fields are private (read them through the API). */
struct rs_backoff {
	enum rs_backoff_strategy strategy;
	uint32_t cap_from; /* first n with t(n) == cap_ns; UINT32_MAX if never */
	uint64_t base_ns;
	uint64_t cap_ns;
	double multiplier;
	const struct rs_control_block *control;
	struct rs_rng rng;
	uint64_t t[RS_BACKOFF_TABLE]; /* t[i] = t(i + 1) */
};

/* Validates opts and initialises *b (no allocation).  Returns 0, or -EINVAL
 * with a message naming the field ("backoff: cap_ns must be >= base_ns
 * (...)") for an unknown strategy, base_ns 0, cap_ns below base_ns or above
 * RS_BACKOFF_MAX_NS, or a multiplier that is NaN, infinite, or below 1 (other
 * than 0).  On error *b is left zeroed.  opts is read only during the call;
 * opts->control is borrowed.  Any thread, on storage it owns. */
int rs_backoff_init(struct rs_backoff *b, const struct rs_backoff_opts *opts,
		    struct rs_err *err) RS_WUR;

/* Releases *b (nothing is held; the struct is zeroed).  Accepts NULL and a
 * second call. */
void rs_backoff_release(struct rs_backoff *b);

/* The delay before retry `attempt` (1 = the first retry; 0 is read as 1),
 * drawn from the strategy's support above; never above cap_ns.  prev_ns is
 * the delay this function returned for the previous retry of the same
 * request (0 for the first); only RS_BACKOFF_DECORRELATED reads it.  Hot
 * path: no allocation, no lock, no clock; one relaxed load of the control
 * block.  The owner's thread only (it advances the generator). */
uint64_t rs_backoff_next(struct rs_backoff *b, uint32_t attempt, uint64_t prev_ns);

/* The deterministic t(attempt) = min(cap_ns, base_ns * multiplier^(attempt-1))
 * (attempt 0 is read as 1): what rs_backoff_next returns with jitter removed.
 * Pure; any thread. */
uint64_t rs_backoff_deterministic(const struct rs_backoff *b, uint32_t attempt);

/* "none", "full", "equal", "decorrelated", "proportional"; "unknown" for a
 * value outside the enum.  Static storage. */
const char *rs_backoff_strategy_name(enum rs_backoff_strategy s);

#endif
