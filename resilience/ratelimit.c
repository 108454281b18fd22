#include "resilience/ratelimit.h"

#include <math.h>
#include <stddef.h>

#include "resilience/clock.h"

#define MAX_BURST (1ull << 53) /* every count up to here is exact in a double */

static int check_rate(const char *what, double rate, struct rs_err *err)
{
	if (!(rate > 0) || !isfinite(rate))
		return rs__einval(err, "%s must be finite and > 0, got %g", what, rate);
	return 0;
}

/* Tokens after `dt` ns at `rate`, before capping.  The wait hint uses the
 * same expression so that trying at now + hint succeeds exactly. */
static double accrue(double tokens, uint64_t dt, double rate)
{
	return tokens + (double)dt * rate / (double)RS_NS_PER_SEC;
}

/* The state is (tokens, last_ns) and changes only when tokens are taken or
 * the rate changes, never on a failed attempt: so tokens at any later time
 * are one accrue() away from the same anchor, and the wait hint stays exact
 * however many failed attempts happen in between. */
static double available(const struct rs_ratelimit *rl, uint64_t now_ns)
{
	if (!rl->primed || now_ns <= rl->last_ns)
		return rl->tokens;
	return fmin(rl->burst, accrue(rl->tokens, now_ns - rl->last_ns, rl->rate));
}

static void prime(struct rs_ratelimit *rl, uint64_t now_ns)
{
	if (!rl->primed) {
		rl->primed = true;
		rl->last_ns = now_ns;
	}
}

/* Moves the anchor to now_ns (if later), accruing at the current rate. */
static void settle(struct rs_ratelimit *rl, uint64_t now_ns)
{
	rl->tokens = available(rl, now_ns);
	if (now_ns > rl->last_ns)
		rl->last_ns = now_ns;
}

/* Nanoseconds after now_ns until `n` (<= burst) tokens are there: from the
 * anchor, the smallest dt >= now_ns - last_ns with accrue(tokens, dt) >= n. */
static uint64_t wait_for(const struct rs_ratelimit *rl, double n, uint64_t now_ns)
{
	uint64_t lo = now_ns > rl->last_ns ? now_ns - rl->last_ns : 0, dt;
	double d = ceil((n - rl->tokens) * (double)RS_NS_PER_SEC / rl->rate);

	if (!(d < 1.8e19))
		return UINT64_MAX;
	dt = d < (double)lo ? lo : (uint64_t)d;
	while (accrue(rl->tokens, dt, rl->rate) < n && dt < UINT64_MAX)
		dt++;
	while (dt > lo && accrue(rl->tokens, dt - 1, rl->rate) >= n)
		dt--;
	/* now_ns may be behind last_ns when callers' clock readings race. */
	if (rl->last_ns > UINT64_MAX - dt)
		return UINT64_MAX;
	return rl->last_ns + dt - now_ns;
}

int rs_ratelimit_init(struct rs_ratelimit *rl, const struct rs_ratelimit_opts *opts,
		      struct rs_err *err)
{
	int rc = check_rate("ratelimit: rate", opts->rate, err);

	if (rc)
		return rc;
	if (opts->burst < 1 || opts->burst > MAX_BURST)
		return rs__einval(err, "ratelimit: burst must be in [1, 2^53], got %llu",
				  (unsigned long long)opts->burst);
	*rl = (struct rs_ratelimit){
		.rate = opts->rate,
		.burst = (double)opts->burst,
		.tokens = (double)opts->burst,
	};
	return 0;
}

void rs_ratelimit_release(struct rs_ratelimit *rl)
{
	(void)rl;
}

bool rs_ratelimit_try_acquire_n(struct rs_ratelimit *rl, uint64_t n, uint64_t now_ns,
				uint64_t *wait_ns)
{
	double need = (double)n;

	prime(rl, now_ns);
	if (available(rl, now_ns) >= need) {
		settle(rl, now_ns);
		rl->tokens -= need;
		rl->admitted++;
		if (wait_ns)
			*wait_ns = 0;
		return true;
	}
	rl->rejected++;
	if (wait_ns)
		*wait_ns = need > rl->burst ? UINT64_MAX : wait_for(rl, need, now_ns);
	return false;
}

bool rs_ratelimit_try_acquire(struct rs_ratelimit *rl, uint64_t now_ns, uint64_t *wait_ns)
{
	return rs_ratelimit_try_acquire_n(rl, 1, now_ns, wait_ns);
}

double rs_ratelimit_tokens(const struct rs_ratelimit *rl, uint64_t now_ns)
{
	return available(rl, now_ns);
}

double rs_ratelimit_rate(const struct rs_ratelimit *rl)
{
	return rl->rate;
}

uint64_t rs_ratelimit_admitted(const struct rs_ratelimit *rl)
{
	return rl->admitted;
}

uint64_t rs_ratelimit_rejected(const struct rs_ratelimit *rl)
{
	return rl->rejected;
}

int rs_ratelimit_set_rate(struct rs_ratelimit *rl, double rate, uint64_t now_ns, struct rs_err *err)
{
	int rc = check_rate("ratelimit: rate", rate, err);

	if (rc)
		return rc;
	prime(rl, now_ns);
	settle(rl, now_ns);
	rl->rate = rate;
	return 0;
}

/* ---- AIMD ---------------------------------------------------------------- */

int rs_ratelimit_aimd_init(struct rs_ratelimit_aimd *a, const struct rs_ratelimit_aimd_opts *opts,
			   struct rs_err *err)
{
	struct rs_ratelimit_opts bo = { .rate = opts->initial_rate, .burst = opts->burst };
	int rc;

	if ((rc = check_rate("ratelimit: min_rate", opts->min_rate, err)) ||
	    (rc = check_rate("ratelimit: max_rate", opts->max_rate, err)))
		return rc;
	if (opts->max_rate < opts->min_rate)
		return rs__einval(err, "ratelimit: max_rate must be >= min_rate (%g), got %g",
				  opts->min_rate, opts->max_rate);
	if (!(opts->initial_rate >= opts->min_rate && opts->initial_rate <= opts->max_rate))
		return rs__einval(err, "ratelimit: initial_rate must be in [%g, %g], got %g",
				  opts->min_rate, opts->max_rate, opts->initial_rate);
	if (opts->target_latency_ns == 0)
		return rs__einval(err, "ratelimit: target_latency_ns must be > 0, got 0");
	if (opts->interval_ns == 0)
		return rs__einval(err, "ratelimit: interval_ns must be > 0, got 0");
	if ((rc = check_rate("ratelimit: increase", opts->increase, err)))
		return rc;
	if (!(opts->decrease > 0 && opts->decrease < 1))
		return rs__einval(err, "ratelimit: decrease must be in (0, 1), got %g",
				  opts->decrease);
	*a = (struct rs_ratelimit_aimd){
		.min_rate = opts->min_rate,
		.max_rate = opts->max_rate,
		.increase = opts->increase,
		.decrease = opts->decrease,
		.target_ns = opts->target_latency_ns,
		.interval_ns = opts->interval_ns,
	};
	return rs_ratelimit_init(&a->bucket, &bo, err);
}

void rs_ratelimit_aimd_release(struct rs_ratelimit_aimd *a)
{
	if (a)
		rs_ratelimit_release(&a->bucket);
}

bool rs_ratelimit_aimd_try_acquire(struct rs_ratelimit_aimd *a, uint64_t now_ns, uint64_t *wait_ns)
{
	return rs_ratelimit_try_acquire(&a->bucket, now_ns, wait_ns);
}

/* Closes the current interval: one additive or multiplicative step. */
static int adjust(struct rs_ratelimit_aimd *a, uint64_t now_ns)
{
	double old = a->bucket.rate, rate;
	int dir;

	if (a->win_sum_ns / (double)a->win_count <= (double)a->target_ns) {
		rate = fmin(a->max_rate, old + a->increase);
		dir = 1;
	} else {
		rate = fmax(a->min_rate, old * a->decrease);
		dir = -1;
	}
	if (rate == old)
		return 0;
	if (dir > 0)
		a->increases++;
	else
		a->decreases++;
	/* rate is finite and > 0 by construction, so this cannot fail. */
	prime(&a->bucket, now_ns);
	settle(&a->bucket, now_ns);
	a->bucket.rate = rate;
	return dir;
}

int rs_ratelimit_aimd_record(struct rs_ratelimit_aimd *a, uint64_t latency_ns, uint64_t now_ns)
{
	int dir = 0;

	if (!a->win_started) {
		a->win_started = true;
		a->win_start_ns = now_ns;
	} else if (now_ns > a->win_start_ns && now_ns - a->win_start_ns >= a->interval_ns) {
		if (a->win_count)
			dir = adjust(a, now_ns);
		a->win_start_ns = now_ns;
		a->win_count = 0;
		a->win_sum_ns = 0;
	}
	a->win_count++;
	a->win_sum_ns += (double)latency_ns;
	return dir;
}

double rs_ratelimit_aimd_rate(const struct rs_ratelimit_aimd *a)
{
	return a->bucket.rate;
}

uint64_t rs_ratelimit_aimd_increases(const struct rs_ratelimit_aimd *a)
{
	return a->increases;
}

uint64_t rs_ratelimit_aimd_decreases(const struct rs_ratelimit_aimd *a)
{
	return a->decreases;
}
