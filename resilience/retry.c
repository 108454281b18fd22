#include "resilience/retry.h"

#include <math.h>
#include <string.h>

struct rs_retry {
	uint32_t max_attempts;
	uint32_t metastable_max_attempts;
	double health_min;
	double health_span; /* max - min */
	double inv_threshold;
	double penalty;
	uint64_t max_delay_ns;
	bool (*retryable)(void *ctx, int error);
	void *retryable_ctx;
	struct rs_budget *budget;
	const struct rs_control_block *control;
	const struct rs_alloc *alloc;
	uint64_t counts[RS_RETRY_REASONS];
	struct rs_backoff backoff;
	char name[RS_RETRY_NAME_MAX];
};

const char *rs_retry_reason_name(enum rs_retry_reason reason)
{
	switch (reason) {
	case RS_RETRY_RETRY:
		return "retry";
	case RS_RETRY_NOT_RETRYABLE:
		return "not_retryable";
	case RS_RETRY_ATTEMPTS_EXHAUSTED:
		return "attempts_exhausted";
	case RS_RETRY_BUDGET_DENIED:
		return "budget_denied";
	case RS_RETRY_BREAKER_OPEN:
		return "breaker_open";
	case RS_RETRY_METASTABLE_LIMIT:
		return "metastable_limit";
	case RS_RETRY_PAUSED:
		return "paused";
	case RS_RETRY_DEADLINE:
		return "deadline";
	case RS_RETRY_REASONS:
		break;
	}
	return "unknown";
}

/* Validates opts; on success *bo is the policy's backoff, initialised. */
static int check_opts(const struct rs_retry_opts *o, double hmin, double hmax,
		      struct rs_backoff *bo, struct rs_err *err)
{
	size_t len = o->name ? strlen(o->name) : 0;
	struct rs_backoff_opts bopts = o->backoff;
	struct rs_err berr;
	int rc;

	if (!o->name)
		return rs__einval(err, "retry: name must be 1..%d bytes, got NULL",
				  RS_RETRY_NAME_MAX - 1);
	if (len == 0 || len >= RS_RETRY_NAME_MAX)
		return rs__einval(err, "retry: name must be 1..%d bytes, got %zu bytes",
				  RS_RETRY_NAME_MAX - 1, len);
	if (o->max_attempts == 0)
		return rs__einval(err, "retry '%s': max_attempts must be >= 1, got 0", o->name);
	if (o->metastable_max_attempts == 0 || o->metastable_max_attempts > o->max_attempts)
		return rs__einval(err,
				  "retry '%s': metastable_max_attempts must be in 1..max_attempts "
				  "(%u), got %u",
				  o->name, o->max_attempts, o->metastable_max_attempts);
	if (o->backoff.control && o->backoff.control != o->control)
		return rs__einval(err,
				  "retry '%s': backoff.control must be NULL or the same block as "
				  "control, got another block",
				  o->name);
	bopts.control = o->control;
	rc = rs_backoff_init(bo, &bopts, &berr);
	if (rc < 0) {
		/* "backoff: base_ns must ..." becomes "retry 'x': backoff.base_ns must ...". */
		const char *m = berr.msg;

		if (strncmp(m, "backoff: ", 9) == 0)
			m += 9;
		rs__err_set(err, "retry '%s': backoff.%s", o->name, m);
		return rc;
	}
	if (!(hmin >= 1) || !isfinite(hmin))
		return rs__einval(err,
				  "retry '%s': health_factor_min must be finite and >= 1 (both 0 "
				  "for 1..10), got %g",
				  o->name, hmin);
	if (!(hmax >= hmin) || !isfinite(hmax))
		return rs__einval(err,
				  "retry '%s': health_factor_max must be finite and >= "
				  "health_factor_min (%g), got %g",
				  o->name, hmin, hmax);
	if (!(o->error_rate_threshold > 0 && o->error_rate_threshold <= 1))
		return rs__einval(err, "retry '%s': error_rate_threshold must be in (0, 1], got %g",
				  o->name, o->error_rate_threshold);
	if (!(o->metastable_penalty >= 1) || !isfinite(o->metastable_penalty))
		return rs__einval(err,
				  "retry '%s': metastable_penalty must be finite and >= 1, got %g",
				  o->name, o->metastable_penalty);
	if (o->max_delay_ns < o->backoff.base_ns || o->max_delay_ns == 0 ||
	    o->max_delay_ns > RS_BACKOFF_MAX_NS)
		return rs__einval(err,
				  "retry '%s': max_delay_ns must be in [backoff.base_ns (%llu), "
				  "2^53] and > 0, got %llu",
				  o->name, (unsigned long long)o->backoff.base_ns,
				  (unsigned long long)o->max_delay_ns);
	if (!o->retryable)
		return rs__einval(err, "retry '%s': retryable must be set, got NULL", o->name);
	return 0;
}

int rs_retry_new(struct rs_retry **out, const struct rs_retry_opts *opts, struct rs_err *err)
{
	double hmin = opts->health_factor_min, hmax = opts->health_factor_max;
	struct rs_backoff bo;
	struct rs_retry *r;
	int rc;

	*out = NULL;
	if (hmin == 0 && hmax == 0) {
		hmin = 1;
		hmax = 10;
	}
	rc = check_opts(opts, hmin, hmax, &bo, err);
	if (rc < 0)
		return rc;
	r = rs__calloc(opts->alloc, 1, sizeof(*r));
	if (!r)
		return rs__enomem(err, "retry");
	r->backoff = bo;
	r->max_attempts = opts->max_attempts;
	r->metastable_max_attempts = opts->metastable_max_attempts;
	r->health_min = hmin;
	r->health_span = hmax - hmin;
	r->inv_threshold = 1.0 / opts->error_rate_threshold;
	r->penalty = opts->metastable_penalty;
	r->max_delay_ns = opts->max_delay_ns;
	r->retryable = opts->retryable;
	r->retryable_ctx = opts->retryable_ctx;
	r->budget = opts->budget;
	r->control = opts->control;
	r->alloc = opts->alloc;
	memcpy(r->name, opts->name, strlen(opts->name) + 1);
	*out = r;
	return 0;
}

void rs_retry_free(struct rs_retry *r)
{
	if (r)
		rs__free(r->alloc, r);
}

const char *rs_retry_name(const struct rs_retry *r)
{
	return r->name;
}

uint64_t rs_retry_count(const struct rs_retry *r, enum rs_retry_reason reason)
{
	return (unsigned)reason < RS_RETRY_REASONS ? r->counts[reason] : 0;
}

static inline bool stop(struct rs_retry *r, struct rs_retry_decision *out,
			enum rs_retry_reason reason, uint64_t backoff_ns)
{
	out->reason = reason;
	out->delay_ns = 0;
	out->backoff_ns = backoff_ns;
	r->counts[reason]++;
	return false;
}

bool rs_retry_decide(struct rs_retry *r, const struct rs_retry_input *in,
		     struct rs_retry_decision *out)
{
	uint32_t attempt = in->attempt ? in->attempt : 1;
	uint64_t backoff, delay;
	double health, x, d;

	if (rs_control_retries_paused(r->control))
		return stop(r, out, RS_RETRY_PAUSED, 0);
	if (!r->retryable(r->retryable_ctx, in->error))
		return stop(r, out, RS_RETRY_NOT_RETRYABLE, 0);
	if (attempt >= r->max_attempts)
		return stop(r, out, RS_RETRY_ATTEMPTS_EXHAUSTED, 0);
	if (in->metastable && attempt >= r->metastable_max_attempts)
		return stop(r, out, RS_RETRY_METASTABLE_LIMIT, 0);
	if (in->breaker == RS_BREAKER_OPEN || in->breaker == RS_BREAKER_EMERGENCY ||
	    in->breaker == RS_BREAKER_FORCED_OPEN)
		return stop(r, out, RS_RETRY_BREAKER_OPEN, 0);

	backoff = rs_backoff_next(&r->backoff, attempt, in->prev_backoff_ns);
	x = in->error_rate > 0 ? in->error_rate * r->inv_threshold : 0.0; /* NaN reads as 0 */
	health = r->health_min + r->health_span * (x < 1 ? x : 1.0);
	d = (double)backoff * health;
	if (in->metastable)
		d *= r->penalty;
	delay = d >= (double)r->max_delay_ns ? r->max_delay_ns : (uint64_t)d;

	if (in->deadline_ns &&
	    (in->now_ns > in->deadline_ns || delay > in->deadline_ns - in->now_ns))
		return stop(r, out, RS_RETRY_DEADLINE, backoff);
	if (r->budget && !rs_budget_try_withdraw(r->budget, in->now_ns))
		return stop(r, out, RS_RETRY_BUDGET_DENIED, backoff);
	out->reason = RS_RETRY_RETRY;
	out->delay_ns = delay;
	out->backoff_ns = backoff;
	r->counts[RS_RETRY_RETRY]++;
	return true;
}

void rs_retry_expo(struct rs_expo *e, const struct rs_retry *const *r, size_t n)
{
	static const char fam[] = "resilience_retries_total";

	rs_expo_family(e, fam, RS_EXPO_COUNTER,
		       "retry decisions after a failed attempt, by outcome (retry or the "
		       "reason to stop)");
	for (size_t i = 0; i < n; i++) {
		if (!r[i])
			continue;
		for (int k = 0; k < RS_RETRY_REASONS; k++) {
			const char *labels[] = { "name", r[i]->name, "outcome",
						 rs_retry_reason_name((enum rs_retry_reason)k),
						 NULL };

			rs_expo_sample(e, fam, labels, (double)r[i]->counts[k]);
		}
	}
}
