#include "resilience/backoff.h"

#include <math.h>
#include <string.h>

const char *rs_backoff_strategy_name(enum rs_backoff_strategy s)
{
	switch (s) {
	case RS_BACKOFF_NONE:
		return "none";
	case RS_BACKOFF_FULL:
		return "full";
	case RS_BACKOFF_EQUAL:
		return "equal";
	case RS_BACKOFF_DECORRELATED:
		return "decorrelated";
	case RS_BACKOFF_PROPORTIONAL:
		return "proportional";
	}
	return "unknown";
}

int rs_backoff_init(struct rs_backoff *b, const struct rs_backoff_opts *opts, struct rs_err *err)
{
	double mult = opts->multiplier, x;

	memset(b, 0, sizeof(*b));
	if ((unsigned)opts->strategy > RS_BACKOFF_PROPORTIONAL)
		return rs__einval(err,
				  "backoff: strategy must be none, full, equal, decorrelated or "
				  "proportional (0..4), got %d",
				  (int)opts->strategy);
	if (opts->base_ns == 0)
		return rs__einval(err, "backoff: base_ns must be > 0, got 0");
	if (opts->cap_ns < opts->base_ns)
		return rs__einval(err, "backoff: cap_ns must be >= base_ns (%llu), got %llu",
				  (unsigned long long)opts->base_ns,
				  (unsigned long long)opts->cap_ns);
	if (opts->cap_ns > RS_BACKOFF_MAX_NS)
		return rs__einval(err, "backoff: cap_ns must be <= %llu (2^53), got %llu",
				  (unsigned long long)RS_BACKOFF_MAX_NS,
				  (unsigned long long)opts->cap_ns);
	if (mult == 0)
		mult = 2.0;
	if (!isfinite(mult) || mult < 1.0)
		return rs__einval(err,
				  "backoff: multiplier must be a finite number >= 1 (0 for the "
				  "default 2), got %g",
				  opts->multiplier);

	b->strategy = opts->strategy;
	b->base_ns = opts->base_ns;
	b->cap_ns = opts->cap_ns;
	b->multiplier = mult;
	b->control = opts->control;
	b->cap_from = UINT32_MAX;
	rs_rng_seed(&b->rng, opts->seed);
	/* Repeated multiplication, so a multiplier of 2 gives exact powers. */
	x = (double)opts->base_ns;
	for (uint32_t i = 0; i < RS_BACKOFF_TABLE; i++) {
		if (x >= (double)b->cap_ns) {
			b->t[i] = b->cap_ns;
			if (b->cap_from == UINT32_MAX)
				b->cap_from = i + 1;
		} else {
			b->t[i] = (uint64_t)x;
		}
		x *= mult;
	}
	return 0;
}

void rs_backoff_release(struct rs_backoff *b)
{
	if (b)
		memset(b, 0, sizeof(*b));
}

uint64_t rs_backoff_deterministic(const struct rs_backoff *b, uint32_t attempt)
{
	double x;

	if (attempt == 0)
		attempt = 1;
	if (attempt >= b->cap_from)
		return b->cap_ns;
	if (attempt <= RS_BACKOFF_TABLE)
		return b->t[attempt - 1];
	/* Past the table and the cap has not bound yet: rare, so pow() is fine. */
	x = (double)b->base_ns * pow(b->multiplier, (double)(attempt - 1));
	return x >= (double)b->cap_ns ? b->cap_ns : (uint64_t)x;
}

/* Every delay is below 2^53, so the signed conversion (one instruction on
 * x86-64, unlike the unsigned one) is exact. */
static inline uint64_t to_ns(double d)
{
	return (uint64_t)(int64_t)d;
}

uint64_t rs_backoff_next(struct rs_backoff *b, uint32_t attempt, uint64_t prev_ns)
{
	uint64_t t = rs_backoff_deterministic(b, attempt);
	/* t and cap_ns are <= 2^53: signed conversions are exact and cheaper. */
	double td = (double)(int64_t)t, cap = (double)(int64_t)b->cap_ns, u, d, lo;

	if (b->strategy == RS_BACKOFF_NONE || !rs_control_jitter_enabled(b->control))
		return t;
	u = rs_rng_double(&b->rng);
	switch (b->strategy) {
	case RS_BACKOFF_FULL:
		return to_ns(td * u);
	case RS_BACKOFF_EQUAL:
		return to_ns(td * 0.5 + td * 0.5 * u);
	case RS_BACKOFF_DECORRELATED:
		lo = (double)(int64_t)b->base_ns;
		d = prev_ns > b->base_ns ? 3.0 * (double)prev_ns : 3.0 * lo;
		d = lo + (d - lo) * u;
		return d >= cap ? b->cap_ns : to_ns(d);
	case RS_BACKOFF_PROPORTIONAL:
		d = td * (0.8 + 0.4 * u);
		return d >= cap ? b->cap_ns : to_ns(d);
	case RS_BACKOFF_NONE:
		break;
	}
	return t;
}
