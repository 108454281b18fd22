/* Retry budgets: three ways to bound how many retries a client adds to its
 * load, behind one interface.
 *
 * The caller reports every request (its first attempt) and every attempt's
 * outcome, and asks the budget before each retry; a retry that the budget
 * allows is counted as spent, one it refuses is counted as denied.
 *
 *   RS_BUDGET_RATIO     retries / requests over a sliding window of
 *                       `window_ns` must not exceed `ratio` once the window
 *                       holds at least `min_requests` requests: a retry is
 *                       allowed when requests < min_requests, or when
 *                       retries + 1 <= ratio * requests (counting this
 *                       retry, the window's ratio stays <= `ratio`).  The
 *                       ratio is kept in millionths (ratio * 10^6 rounded),
 *                       so the comparison is exact integer arithmetic.
 *                       Steady-state amplification: attempts/requests
 *                       <= 1 + ratio.
 *   RS_BUDGET_TTL       Finagle's RetryBudget: every request deposits
 *                       `percent_can_retry` tokens, every allowed retry
 *                       withdraws 1, and both expire `ttl_ns` after they
 *                       happened; on top, a reserve of
 *                       min_retries_per_sec * ttl seconds tokens is always
 *                       there.  A retry is allowed while the balance
 *                       (reserve + deposits - withdrawals in the window) is
 *                       >= 1.  Tokens are kept in millionths.  Steady-state
 *                       amplification <= 1 + percent_can_retry +
 *                       min_retries_per_sec / request rate.
 *   RS_BUDGET_THROTTLE  gRPC retry throttling: tokens start at `max_tokens`;
 *                       each failed attempt takes 1 (not below 0), each
 *                       successful one adds `token_ratio` (not above
 *                       max_tokens); a retry is allowed only while
 *                       tokens > max_tokens / 2.  Tokens are kept in
 *                       thousandths, as gRPC does (token_ratio is rounded to
 *                       3 decimals).  Withdrawing does not spend tokens.
 *                       After a full-success history an outage allows
 *                       ceil(max_tokens/2) - 1 retries in a row (the k-th
 *                       failure leaves max - k tokens), and a steady failure
 *                       fraction above token_ratio / (1 + token_ratio) drives
 *                       the tokens to 0 and stops retries.
 *
 * Sliding windows are `buckets` buckets of window / buckets nanoseconds
 * (rounded down); an event leaves the window when window_ns has passed since
 * its bucket began, i.e. between window_ns - width and window_ns after it
 * happened.  Every kind keeps the window of requests and retries for the
 * reported ratio; the throttle's window (throttle.window_ns) serves only
 * that report.
 *
 * Time: every call takes now_ns (CLOCK_MONOTONIC ns) from the caller; calls
 * must pass non-decreasing values (an earlier value is treated as the latest
 * one seen).  The budget allocates only in rs_budget_new; the record and
 * withdraw calls never allocate, lock or read the clock.
 *
 * Threading: single-threaded by contract.  One budget belongs to one event
 * loop (thread); every function below, including rs_budget_status and
 * rs_budget_expo, must be called from that loop.  Share a budget between
 * threads only under the owner's own lock.
 */
#ifndef RESILIENCE_BUDGET_H
#define RESILIENCE_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resilience/alloc.h"
#include "resilience/err.h"
#include "resilience/expo.h"

enum rs_budget_kind {
	RS_BUDGET_RATIO = 0,
	RS_BUDGET_TTL = 1,
	RS_BUDGET_THROTTLE = 2,
};

#define RS_BUDGET_NAME_MAX	  48 /* including the NUL: names are 1..47 bytes */
#define RS_BUDGET_DEFAULT_BUCKETS 10
#define RS_BUDGET_MAX_BUCKETS	  4096

struct rs_budget_opts {
	enum rs_budget_kind kind;
	const char *name;	      /* 1..47 bytes, copied: the `name` label */
	const struct rs_alloc *alloc; /* NULL = libc; borrowed, must outlive the budget */
	uint32_t buckets;	      /* window buckets, 1..4096; 0 = 10 */
	/* Only the fields of the chosen kind are read and validated. */
	struct {
		double ratio;	    /* in [0, 1]: most retries per request */
		uint64_t window_ns; /* > 0 and >= buckets */
		/* Below this many requests in the window, retries are always
		 * allowed (0: the ratio applies from the first request). */
		uint64_t min_requests;
	} ratio;
	struct {
		uint64_t ttl_ns;	    /* > 0 and >= buckets (Finagle: 1 s .. 60 s) */
		double min_retries_per_sec; /* >= 0, finite (Finagle default 10) */
		double percent_can_retry;   /* in [0, 1]: tokens per request (Finagle 0.2) */
	} ttl;
	struct {
		double max_tokens;  /* in [0.001, 1000] (gRPC: (0, 1000], 3 decimals) */
		double token_ratio; /* in [0.001, 1000] (gRPC: > 0, 3 decimals kept) */
		/* Window of the reported ratio only: 0 = 10 s, else >= buckets. */
		uint64_t window_ns;
	} throttle;
};

/* What a budget reports (rs_budget_status). */
struct rs_budget_status {
	bool exhausted; /* a retry asked now would be denied */
	double ratio;	/* retries / requests in the window; 0 without requests */
	/* RATIO: retries still allowed before the ratio is reached,
	 * floor(ratio * requests) - retries, >= 0 (during warm-up, below
	 * min_requests, retries are allowed even at 0); TTL: whole retries
	 * available; THROTTLE: tokens. */
	double balance;
	uint64_t requests;	 /* in the window */
	uint64_t retries;	 /* allowed retries in the window */
	uint64_t requests_total; /* since creation */
	uint64_t retries_total;	 /* allowed retries since creation */
	uint64_t denied_total;	 /* denied retries since creation */
};

struct rs_budget;

/* Validates opts and creates a budget.  Returns 0 with *out set
 * (caller-frees with rs_budget_free); -EINVAL with a message naming the
 * field and its value for a bad option (unknown kind, name NULL, empty or
 * >= 48 bytes, buckets above 4096, zero or too short windows, ratios
 * outside their range or NaN, ...); -ENOMEM when an allocation fails, with
 * nothing leaked.  *out is NULL on error.  opts is read only during the
 * call.  Any thread. */
int rs_budget_new(struct rs_budget **out, const struct rs_budget_opts *opts,
		  struct rs_err *err) RS_WUR;

/* Frees the budget; accepts NULL.  The owner's loop. */
void rs_budget_free(struct rs_budget *b);

/* Records one request (its first attempt; retries are recorded by
 * rs_budget_try_withdraw).  RATIO and TTL count it (TTL deposits
 * percent_can_retry tokens).  Hot path; the owner's loop. */
void rs_budget_record_request(struct rs_budget *b, uint64_t now_ns);

/* Records the outcome of one attempt, first or retry.  Only THROTTLE reads
 * it (failure -1 token, success +token_ratio); record as failures the
 * outcomes that should throttle retries (gRPC: retryable status codes),
 * not application errors.  Hot path; the owner's loop. */
void rs_budget_record_outcome(struct rs_budget *b, bool success, uint64_t now_ns);

/* Asks for one retry.  Returns true and counts it as a retry in the window
 * (TTL: withdraws one token) when the budget allows it, else false and
 * counts it as denied.  Hot path; the owner's loop. */
bool rs_budget_try_withdraw(struct rs_budget *b, uint64_t now_ns);

/* Fills *st with the budget as of now_ns, without changing it (buckets
 * older than the window are left out of the figures).  The owner's loop. */
void rs_budget_status(const struct rs_budget *b, uint64_t now_ns, struct rs_budget_status *st);

/* The kind and the name (borrowed, valid until rs_budget_free). */
enum rs_budget_kind rs_budget_kind(const struct rs_budget *b);
const char *rs_budget_name(const struct rs_budget *b);

/* Writes, each family once, then one sample per budget labelled
 * name="<name>": resilience_retry_budget_exhausted (gauge 0/1),
 * resilience_retry_budget_ratio (gauge), resilience_retry_budget_balance
 * (gauge) and resilience_retry_budget_denied_total (counter), as of now_ns.
 * `b` holds n borrowed budgets (NULL entries are skipped).  Must run on the
 * loop that owns the budgets. */
void rs_budget_expo(struct rs_expo *e, const struct rs_budget *const *b, size_t n, uint64_t now_ns);

#endif
