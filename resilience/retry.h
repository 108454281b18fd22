/* An adaptive retry policy: decides, after an attempt failed, whether to
 * retry and after how long.  It never sleeps and never runs the attempt:
 * the caller schedules the next attempt (a timer on its loop) with the
 * returned delay.
 *
 * Decision.  rs_retry_decide checks, in this order, and the first rule that
 * applies gives the reason:
 *   1. paused              the control block pauses retries (fault injection);
 *   2. not_retryable       opts.retryable(ctx, error) returned false;
 *   3. attempts_exhausted  `attempt` (attempts made, the first included)
 *                          >= max_attempts;
 *   4. metastable_limit    the caller says the system is metastable and
 *                          attempt >= metastable_max_attempts;
 *   5. breaker_open        the breaker guarding the dependency is open,
 *                          in emergency or forced open (a half-open breaker
 *                          admits its own probes, so it does not stop a retry;
 *                          nor does a closed or disabled one);
 *   6. deadline            a deadline is set and now + delay > deadline;
 *   7. budget_denied       the budget (if any) refused the withdrawal;
 *   otherwise retry.  The budget is asked last, so only a retry that will
 *   really happen spends budget.
 *
 * Delay.  For the retry after attempt n:
 *   backoff = rs_backoff_next(n, prev_backoff_ns)       (resilience/backoff.h)
 *   health  = health_factor_min + (health_factor_max - health_factor_min)
 *             * clamp(error_rate / error_rate_threshold, 0, 1)
 *             (error_rate is the caller's current error fraction in [0, 1]
 *             of the dependency; negative or NaN reads as 0; with the default
 *             range 1..10 this is 1 + 9 * clamp(error_rate / threshold))
 *   penalty = metastable ? metastable_penalty : 1
 *   delay   = min(max_delay_ns, backoff * health * penalty)   (rounded down)
 * so a sick dependency sees retries spread further apart, up to max_delay_ns.
 *
 * The policy only withdraws from the budget: the caller records requests
 * and outcomes into the budget itself (rs_budget_record_request once per
 * request, rs_budget_record_outcome per attempt).
 *
 * Threading: single-threaded by contract, like the budget it may use: one
 * policy belongs to one event loop (decide advances the backoff's generator
 * and the counters); rs_retry_expo and rs_retry_count run on that loop too.
 * The hot path (rs_retry_decide) never allocates, locks or reads the clock.
 */
#ifndef RESILIENCE_RETRY_H
#define RESILIENCE_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resilience/alloc.h"
#include "resilience/backoff.h"
#include "resilience/breaker.h" /* enum rs_breaker_state only */
#include "resilience/budget.h"
#include "resilience/control.h"
#include "resilience/err.h"
#include "resilience/expo.h"

#define RS_RETRY_NAME_MAX 48 /* including the NUL: names are 1..47 bytes */

enum rs_retry_reason {
	RS_RETRY_RETRY = 0,
	RS_RETRY_NOT_RETRYABLE,
	RS_RETRY_ATTEMPTS_EXHAUSTED,
	RS_RETRY_BUDGET_DENIED,
	RS_RETRY_BREAKER_OPEN,
	RS_RETRY_METASTABLE_LIMIT,
	RS_RETRY_PAUSED,
	RS_RETRY_DEADLINE,
	RS_RETRY_REASONS /* count, not a reason */
};

struct rs_retry_opts {
	const char *name;	      /* 1..47 bytes, copied: the `name` label */
	const struct rs_alloc *alloc; /* NULL = libc; borrowed */
	uint32_t max_attempts;	      /* >= 1: attempts in total, the first included */
	/* In 1..max_attempts: the limit while metastable (1: no retries then). */
	uint32_t metastable_max_attempts;
	/* The backoff; its control field must be NULL or equal to `control`
	 * (the policy passes `control` to it, for the jitter switch). */
	struct rs_backoff_opts backoff;
	/* Health factor range: both 0 selects 1..10; else 1 <= min <= max,
	 * finite. */
	double health_factor_min;
	double health_factor_max;
	/* In (0, 1]: the error rate at which the factor reaches the maximum. */
	double error_rate_threshold;
	/* >= 1, finite: the delay multiplier while metastable. */
	double metastable_penalty;
	/* Cap on the final delay: >= backoff.base_ns and <= RS_BACKOFF_MAX_NS. */
	uint64_t max_delay_ns;
	/* Required: whether an attempt that failed with `error` may be retried.
	 * Called on the deciding loop with retryable_ctx (borrowed). */
	bool (*retryable)(void *ctx, int error);
	void *retryable_ctx;
	/* Optional, borrowed, must outlive the policy; same loop as the policy. */
	struct rs_budget *budget;
	/* Optional, borrowed: retries paused -> never retry; jitter switch. */
	const struct rs_control_block *control;
};

/* What rs_retry_decide is told about the attempt that just failed. */
struct rs_retry_input {
	/* Attempts made so far, the failed one included (>= 1; 0 reads as 1). */
	uint32_t attempt;
	int error;		       /* the failure, passed to retryable() */
	uint64_t now_ns;	       /* CLOCK_MONOTONIC ns */
	uint64_t deadline_ns;	       /* the request's deadline (CLOCK_MONOTONIC); 0: none */
	enum rs_breaker_state breaker; /* RS_BREAKER_CLOSED when there is none */
	bool metastable;	       /* the metastability detector's verdict */
	double error_rate;	       /* current error fraction of the dependency, [0, 1] */
	/* The previous decision's backoff_ns for this request, 0 before the
	 * first retry (read by the decorrelated strategy only). */
	uint64_t prev_backoff_ns;
};

struct rs_retry_decision {
	enum rs_retry_reason reason; /* RS_RETRY_RETRY: retry after delay_ns */
	uint64_t delay_ns;	     /* 0 unless retrying */
	/* The backoff before the health and penalty factors (0 when none was
	 * drawn): pass it back as prev_backoff_ns. */
	uint64_t backoff_ns;
};

struct rs_retry;

/* Validates opts and creates a policy.  Returns 0 with *out set
 * (caller-frees with rs_retry_free); -EINVAL with a message naming the field
 * and value (max_attempts 0, metastable_max_attempts outside
 * 1..max_attempts, inverted or sub-1 health range, threshold outside (0, 1],
 * penalty below 1, max_delay_ns below backoff.base_ns, NaN anywhere,
 * retryable NULL, bad backoff options, ...); -ENOMEM with nothing leaked.
 * *out is NULL on error.  opts is read only during the call.  Any thread. */
int rs_retry_new(struct rs_retry **out, const struct rs_retry_opts *opts,
		 struct rs_err *err) RS_WUR;

/* Frees the policy (not the budget or control block); accepts NULL. */
void rs_retry_free(struct rs_retry *r);

/* Decides about the attempt described by *in (read only during the call)
 * and fills *out; returns true when the decision is to retry.  Counts the
 * decision under its reason.  May call opts.retryable and withdraw from the
 * budget.  Hot path; the owner's loop. */
bool rs_retry_decide(struct rs_retry *r, const struct rs_retry_input *in,
		     struct rs_retry_decision *out);

/* Decisions made with `reason` since creation (0 for a value outside the
 * enum).  The owner's loop. */
uint64_t rs_retry_count(const struct rs_retry *r, enum rs_retry_reason reason);

/* "retry", "not_retryable", "attempts_exhausted", "budget_denied",
 * "breaker_open", "metastable_limit", "paused", "deadline"; "unknown"
 * otherwise.  Static storage: the `outcome` label values. */
const char *rs_retry_reason_name(enum rs_retry_reason reason);

/* The policy's name (borrowed, valid until rs_retry_free). */
const char *rs_retry_name(const struct rs_retry *r);

/* Writes the family resilience_retries_total (counter) once, then one
 * sample per policy and reason, labelled {name, outcome} with the reason
 * names above (all eight, zeros included).  `r` holds n borrowed policies
 * (NULL entries are skipped).  The owning loop. */
void rs_retry_expo(struct rs_expo *e, const struct rs_retry *const *r, size_t n);

#endif
