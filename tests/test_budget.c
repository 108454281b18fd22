/* Retry budgets: each of the three kinds bounds retry amplification in a
 * hard outage driven through the retry policy, refills after recovery, and
 * follows its own rule to the exact retry. */
#include "tests/tap.h"
#include "tests/failalloc.h"
#include "tests/promtext.h"

#include <errno.h>
#include <math.h>

#include "resilience/budget.h"
#include "resilience/clock.h"
#include "resilience/retry.h"

#define MS  RS_NS_PER_MS
#define SEC RS_NS_PER_SEC

static struct rs_budget *make(const struct rs_budget_opts *o)
{
	struct rs_budget *b = NULL;
	struct rs_err err = { "" };

	if (rs_budget_new(&b, o, &err) < 0)
		bail_out("rs_budget_new: %s", err.msg);
	return b;
}

static const struct rs_budget_opts ratio_opts = {
	.kind = RS_BUDGET_RATIO,
	.name = "ratio",
	.ratio = { .ratio = 0.1, .window_ns = 10 * SEC, .min_requests = 10 },
};
static const struct rs_budget_opts ttl_opts = {
	.kind = RS_BUDGET_TTL,
	.name = "ttl",
	.ttl = { .ttl_ns = 10 * SEC, .min_retries_per_sec = 10, .percent_can_retry = 0.2 },
};
static const struct rs_budget_opts throttle_opts = {
	.kind = RS_BUDGET_THROTTLE,
	.name = "throttle",
	.throttle = { .max_tokens = 10, .token_ratio = 0.1 },
};

/* ---- the outage simulation ------------------------------------------- */

/* A pending retry: the request's next attempt at `at`. */
struct ev {
	uint64_t at;
	uint32_t attempt; /* attempts already made */
	uint64_t prev_backoff;
};

enum { HEAP_MAX = 8192 };
static struct ev heap[HEAP_MAX];
static size_t nheap;

static void push(struct ev e)
{
	size_t i = nheap++;

	if (nheap > HEAP_MAX)
		bail_out("simulation heap overflow");
	while (i && heap[(i - 1) / 2].at > e.at) {
		heap[i] = heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	heap[i] = e;
}

static struct ev pop(void)
{
	struct ev top = heap[0], last = heap[--nheap];
	size_t i = 0;

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= nheap)
			break;
		if (c + 1 < nheap && heap[c + 1].at < heap[c].at)
			c++;
		if (heap[c].at >= last.at)
			break;
		heap[i] = heap[c];
		i = c;
	}
	heap[i] = last;
	return top;
}

static bool always(void *ctx, int error)
{
	(void)ctx;
	(void)error;
	return true;
}

struct sim {
	uint64_t requests, attempts;	     /* over [30 s, 60 s) */
	uint64_t all_requests, all_attempts; /* over [0, 60 s) */
	uint64_t retries;		     /* decisions to retry */
	uint64_t recovered_after_ns;	     /* first not-exhausted time after the outage */
	uint64_t successes_to_recover;	     /* requests it took */
	int exhausted_at_end;
	struct rs_budget_status refilled; /* at 70 s - 1 ns, after 10 s of successes */
};

/* 100 requests/s for 60 s, every attempt fails at once; max_attempts 4 and
 * full-jitter backoff (10 ms, cap 1 s) through the retry policy with budget
 * b (may be NULL).  Then 100 successful requests/s until the budget allows
 * retries again (at most 20 s). */
static struct sim outage(struct rs_budget *b)
{
	struct rs_retry *r = NULL;
	struct rs_err err = { "" };
	struct sim s = { 0 };
	uint64_t next_req = 0, end = 60 * SEC;

	if (rs_retry_new(&r,
			 &(struct rs_retry_opts){
			     .name = "sim",
			     .max_attempts = 4,
			     .metastable_max_attempts = 1,
			     .backoff = { .strategy = RS_BACKOFF_FULL,
					  .base_ns = 10 * MS,
					  .cap_ns = 1 * SEC,
					  .seed = 11 },
			     .health_factor_min = 1,
			     .health_factor_max = 1,
			     .error_rate_threshold = 1,
			     .metastable_penalty = 1,
			     .max_delay_ns = 1 * SEC,
			     .retryable = always,
			     .budget = b,
			 },
			 &err) < 0)
		bail_out("rs_retry_new: %s", err.msg);
	nheap = 0;
	for (;;) {
		struct ev e;
		struct rs_retry_decision d;

		if (nheap && heap[0].at < next_req) {
			e = pop();
		} else {
			e = (struct ev){ .at = next_req, .attempt = 0, .prev_backoff = 0 };
			next_req += 10 * MS;
		}
		if (e.at >= end)
			break;
		if (e.attempt == 0) {
			if (b)
				rs_budget_record_request(b, e.at);
			s.all_requests++;
			s.requests += e.at >= 30 * SEC;
		}
		s.all_attempts++;
		s.attempts += e.at >= 30 * SEC;
		if (b)
			rs_budget_record_outcome(b, false, e.at);
		if (rs_retry_decide(r,
				    &(struct rs_retry_input){ .attempt = e.attempt + 1,
							      .now_ns = e.at,
							      .error = EIO,
							      .error_rate = 1,
							      .prev_backoff_ns = e.prev_backoff },
				    &d)) {
			s.retries++;
			push((struct ev){ .at = e.at + d.delay_ns,
					  .attempt = e.attempt + 1,
					  .prev_backoff = d.backoff_ns });
		}
	}
	rs_retry_free(r);
	if (!b)
		return s;
	{
		struct rs_budget_status st;

		rs_budget_status(b, end - 1, &st);
		s.exhausted_at_end = st.exhausted;
	}
	/* Recovery: every request succeeds, for one window (10 s). */
	s.recovered_after_ns = UINT64_MAX;
	for (uint64_t t = end; t < end + 10 * SEC; t += 10 * MS) {
		struct rs_budget_status st;

		rs_budget_record_request(b, t);
		rs_budget_record_outcome(b, true, t);
		rs_budget_status(b, t, &st);
		if (!st.exhausted && s.recovered_after_ns == UINT64_MAX) {
			s.recovered_after_ns = t - end;
			s.successes_to_recover = (t - end) / (10 * MS) + 1;
		}
	}
	rs_budget_status(b, end + 10 * SEC - 1, &s.refilled);
	return s;
}

static void amplification(void)
{
	struct rs_budget *rb = make(&ratio_opts), *tb = make(&ttl_opts), *hb = make(&throttle_opts);
	struct sim none = outage(NULL), sr = outage(rb), st = outage(tb), sh = outage(hb);
	double ar = (double)sr.attempts / (double)sr.requests;
	double at = (double)st.attempts / (double)st.requests;
	double ah = (double)sh.attempts / (double)sh.requests;

	is_double((double)none.attempts / (double)none.requests, 4.0, 0.001,
		  "no budget: a hard outage at 100 req/s with max_attempts 4 gives 4.00 "
		  "attempts/request");
	is_int((long long)sr.requests, 3000, "the measured half (30..60 s) holds 3000 requests");
	ok(ar <= 1.1 + 0.01 && ar >= 1.09,
	   "ratio budget 0.1 / 10 s: steady attempts/request %.4f is in [1.09, 1.11] (<= 1 + ratio "
	   "+ 1%%)",
	   ar);
	ok(at <= 1.0 + 0.2 + 10.0 / 100 + 0.01 && at >= 1.29,
	   "ttl budget 20%% + 10/s reserve: steady attempts/request %.4f is in [1.29, 1.31] "
	   "(<= 1 + 0.2 + 10/100 + 1%%)",
	   at);
	is_double(ah, 1.0, 0, "throttle 10 / 0.1: steady attempts/request is exactly 1 (%.4f)", ah);
	ok(sh.retries <= 4 && sh.retries >= 1,
	   "throttle: %llu retries in the whole outage, at most ceil(10/2) - 1 = 4",
	   (unsigned long long)sh.retries);
	ok(sr.exhausted_at_end && st.exhausted_at_end && sh.exhausted_at_end,
	   "all three budgets are exhausted at the end of the outage (59.999999999 s)");
	ok(sr.recovered_after_ns <= 10 * SEC && sr.successes_to_recover > 0,
	   "ratio: retries allowed again %.2f s after recovery (within the 10 s window)",
	   (double)sr.recovered_after_ns / 1e9);
	ok(st.recovered_after_ns <= 10 * SEC && st.successes_to_recover > 0,
	   "ttl: retries allowed again %.2f s after recovery (within the 10 s ttl)",
	   (double)st.recovered_after_ns / 1e9);
	is_int(
	    (long long)sh.successes_to_recover, 51,
	    "throttle: from 0 tokens, exactly 51 successes (5.1 > 5 tokens) allow retries again");
	ok(sr.refilled.balance == 100 && sr.refilled.ratio == 0 && !sr.refilled.exhausted,
	   "ratio: after 10 s of successes the window is refilled: 1000 requests, balance 100 "
	   "(got %g)",
	   sr.refilled.balance);
	ok(st.refilled.balance == 300 && st.refilled.ratio == 0,
	   "ttl: after 10 s of successes: reserve 100 + 0.2 x 1000 = balance 300 (got %g)",
	   st.refilled.balance);
	ok(sh.refilled.balance == 10,
	   "throttle: after 1000 successes the tokens are back at 10 (got %g)",
	   sh.refilled.balance);

	{
		/* The figures the budgets export at the end of recovery. */
		char buf[4096], why[256] = "";
		struct rs_expo e;
		const struct rs_budget *all[] = { rb, NULL, tb, hb };
		struct rs_budget_status s;
		uint64_t now = 70 * SEC - 1;
		double v = -1;
		int n, found;

		rs_expo_init(&e, buf, sizeof(buf));
		rs_budget_expo(&e, all, 4, now);
		is_int(rs_expo_finish(&e), 0, "budget exposition fits 4 KiB");
		n = promtext_check(buf, why, sizeof(why));
		is_int(n, 12, "budget exposition is valid text format with 4 families x 3 budgets");
		if (n < 0)
			diag("%s\n%s", why, buf);
		rs_budget_status(hb, now, &s);
		found =
		    promtext_value(buf, "resilience_retry_budget_balance{name=\"throttle\"}", &v);
		ok(found && v == s.balance && v == 10, "throttle balance exported as %g tokens", v);
		rs_budget_status(rb, now, &s);
		found =
		    promtext_value(buf, "resilience_retry_budget_denied_total{name=\"ratio\"}", &v);
		ok(found && v == (double)s.denied_total && v > 1000,
		   "ratio denied_total exported as %g (the outage's denials)", v);
		found = promtext_value(buf, "resilience_retry_budget_balance{name=\"ratio\"}", &v);
		ok(found && v == 100, "ratio balance exported as %g", v);
		found = promtext_value(buf, "resilience_retry_budget_exhausted{name=\"ttl\"}", &v);
		ok(found && v == 0, "ttl exhausted gauge is %g after recovery", v);
		found = promtext_value(buf, "resilience_retry_budget_ratio{name=\"ttl\"}", &v);
		ok(found && v == 0, "ttl ratio gauge is %g after 10 s without retries", v);
	}
	rs_budget_free(rb);
	rs_budget_free(tb);
	rs_budget_free(hb);
}

/* ---- each kind's rule, to the exact retry ----------------------------- */

static int withdraw_n(struct rs_budget *b, int n, uint64_t now)
{
	int allowed = 0;

	for (int i = 0; i < n; i++)
		allowed += rs_budget_try_withdraw(b, now);
	return allowed;
}

static void ratio_rule(void)
{
	struct rs_budget *b = make(&(struct rs_budget_opts){
	    .kind = RS_BUDGET_RATIO,
	    .name = "r",
	    .ratio = { .ratio = 0.1, .window_ns = 10 * SEC, .min_requests = 0 },
	});
	struct rs_budget_status st;

	for (int i = 0; i < 100; i++)
		rs_budget_record_request(b, 0);
	rs_budget_status(b, 0, &st);
	ok(st.balance == 10 && !st.exhausted, "100 requests at ratio 0.1: balance 10 retries");
	is_int(withdraw_n(b, 11, 0), 10, "ratio: the 11th retry on 100 requests is denied");
	rs_budget_status(b, 5 * SEC, &st);
	ok(st.exhausted && st.balance == 0 && st.ratio == 0.1 && st.denied_total == 1 &&
	       st.retries == 10 && st.requests == 100,
	   "ratio: exhausted, balance 0, ratio 0.10, 1 denied, 10 retries / 100 requests in the "
	   "window");
	rs_budget_status(b, 10 * SEC - 1, &st);
	is_int((long long)st.requests, 100,
	       "ratio: events of bucket [0, 1 s) still count at 9.999999999 s");
	rs_budget_status(b, 10 * SEC, &st);
	ok(st.requests == 0 && st.retries == 0 && st.ratio == 0,
	   "ratio: and have left the 10 s window at 10 s");
	rs_budget_free(b);

	b = make(&ratio_opts); /* min_requests 10 */
	for (int i = 0; i < 9; i++)
		rs_budget_record_request(b, 0);
	is_int(withdraw_n(b, 50, 0), 50,
	       "ratio warm-up: with 9 < 10 requests, 50 retries of 50 pass");
	rs_budget_record_request(b, 0);
	is_int(withdraw_n(b, 1, 0), 0, "ratio: at the 10th request, 50 retries > 0.1 x 10: denied");
	rs_budget_free(b);

	b = make(&(struct rs_budget_opts){
	    .kind = RS_BUDGET_RATIO,
	    .name = "zero",
	    .ratio = { .ratio = 0, .window_ns = SEC, .min_requests = 3 },
	});
	for (int i = 0; i < 3; i++)
		rs_budget_record_request(b, 0);
	is_int(withdraw_n(b, 5, 0), 0, "ratio 0: no retry once min_requests (3) is reached");
	rs_budget_free(b);

	b = make(&(struct rs_budget_opts){
	    .kind = RS_BUDGET_RATIO,
	    .name = "slide",
	    .buckets = 4,
	    .ratio = { .ratio = 0.5, .window_ns = 4 * SEC },
	});
	/* 10 requests in each second 0..3, 5 retries each: full.  At 4 s the first
	 * second leaves: 30 requests, 15 retries, balance 0; 2 new requests give 1. */
	for (uint64_t s = 0; s < 4; s++) {
		for (int i = 0; i < 10; i++)
			rs_budget_record_request(b, s * SEC + (uint64_t)i);
		withdraw_n(b, 5, s * SEC + 500 * MS);
	}
	rs_budget_status(b, 4 * SEC, &st);
	ok(st.requests == 30 && st.retries == 15 && st.exhausted,
	   "sliding: at 4 s the first of 4 buckets left (30 requests, 15 retries)");
	rs_budget_record_request(b, 4 * SEC);
	rs_budget_record_request(b, 4 * SEC + 1);
	is_int(withdraw_n(b, 2, 4 * SEC + 2), 1,
	       "sliding: 2 new requests at ratio 0.5 allow 1 retry");
	rs_budget_status(b, 100 * SEC, &st);
	ok(st.requests == 0 && st.retries_total == 21 && st.requests_total == 42,
	   "sliding: long idle empties the window, totals remain (42 requests, 21 retries)");
	rs_budget_free(b);
}

static void ttl_rule(void)
{
	struct rs_budget *b = make(&(struct rs_budget_opts){
	    .kind = RS_BUDGET_TTL,
	    .name = "reserve",
	    .ttl = { .ttl_ns = 10 * SEC, .min_retries_per_sec = 10, .percent_can_retry = 0 },
	});
	struct rs_budget_status st;

	rs_budget_status(b, 0, &st);
	ok(st.balance == 100, "ttl: reserve 10/s x 10 s = balance 100 before any request");
	is_int(withdraw_n(b, 101, 0), 100, "ttl: the reserve allows exactly 100 retries");
	is_int(withdraw_n(b, 1, 10 * SEC - 1), 0,
	       "ttl: still none 1 ns before the withdrawals expire");
	is_int(withdraw_n(b, 101, 10 * SEC), 100, "ttl: 100 again once the ttl has passed");
	rs_budget_free(b);

	b = make(&(struct rs_budget_opts){
	    .kind = RS_BUDGET_TTL,
	    .name = "deposit",
	    .ttl = { .ttl_ns = SEC, .min_retries_per_sec = 0, .percent_can_retry = 0.2 },
	});
	for (int i = 0; i < 14; i++)
		rs_budget_record_request(b, 0);
	rs_budget_status(b, 0, &st);
	ok(st.balance == 2, "ttl: 14 requests x 0.2 = 2.8 tokens = 2 whole retries");
	is_int(withdraw_n(b, 3, 0), 2, "ttl: the 3rd retry is denied");
	rs_budget_record_request(b, 1);
	rs_budget_record_request(b, 2);
	is_int(withdraw_n(b, 2, 3), 1,
	       "ttl: 2 more requests (0.8 + 0.4 = 1.2 tokens) allow one more");
	rs_budget_status(b, SEC, &st);
	ok(st.balance == 0 && st.exhausted && st.requests == 0,
	   "ttl: deposits expire with the ttl (no reserve: exhausted)");
	rs_budget_free(b);
}

static void throttle_rule(void)
{
	static const struct {
		double max;
		int want;
	} cases[] = { { 10, 4 }, { 5, 2 }, { 7, 3 }, { 1, 0 } };

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct rs_budget *b = make(&(struct rs_budget_opts){
		    .kind = RS_BUDGET_THROTTLE,
		    .name = "t",
		    .throttle = { .max_tokens = cases[k].max, .token_ratio = 0.1 },
		});
		int allowed = 0, streak = 1;

		for (int i = 0; i < 100; i++)
			rs_budget_record_outcome(b, true, 0);
		for (int i = 0; i < 50; i++) {
			bool y;

			rs_budget_record_outcome(b, false, 0);
			y = rs_budget_try_withdraw(b, 0);
			streak &= y == (i < cases[k].want);
			allowed += y;
		}
		ok(allowed == cases[k].want && streak,
		   "throttle max %g: an outage after full success allows exactly %d retries, "
		   "the first %d failures (ceil(max/2) - 1)",
		   cases[k].max, cases[k].want, cases[k].want);
		rs_budget_free(b);
	}

	/* A steady failure fraction f (evenly spread) against token_ratio 0.1: the
	 * tokens drift by (1 - f) 0.1 - f per attempt, zero at f = 0.1/1.1 = 0.0909. */
	{
		static const struct {
			double f;
			int stops;
		} fr[] = { { 0.0925, 1 }, { 0.12, 1 }, { 0.09, 0 }, { 0.05, 0 } };

		for (size_t k = 0; k < sizeof(fr) / sizeof(fr[0]); k++) {
			struct rs_budget *b = make(&throttle_opts);
			long fails = 0, allowed = 0;
			enum { N = 40000 };

			for (long i = 0; i < N; i++) {
				bool fail = (long)floor((double)(i + 1) * fr[k].f) >
					    (long)floor((double)i * fr[k].f);

				rs_budget_record_outcome(b, !fail, (uint64_t)i * MS);
				if (fail && i >= N / 2) {
					fails++;
					allowed += rs_budget_try_withdraw(b, (uint64_t)i * MS);
				}
			}
			if (fr[k].stops)
				ok(fails > 0 && allowed == 0,
				   "throttle: failure fraction %.4f > 0.0909 stops retries (0 of "
				   "%ld "
				   "failures retried in the second half of %d attempts)",
				   fr[k].f, fails, N);
			else
				ok(fails > 0 && allowed == fails,
				   "throttle: failure fraction %.4f < 0.0909 keeps retrying (%ld "
				   "of "
				   "%ld failures retried in the second half)",
				   fr[k].f, allowed, fails);
			rs_budget_free(b);
		}
	}
}

static void alloc_failures(void)
{
	const struct rs_budget_opts *all[] = { &ratio_opts, &ttl_opts, &throttle_opts };

	for (int k = 0; k < 3; k++) {
		struct rs_budget_opts o = *all[k];
		struct failalloc fa;
		int bad = 0, n;

		o.alloc = &fa.alloc;
		for (n = 1;; n++) {
			struct rs_budget *b = NULL;
			struct rs_err err = { "" };
			int rc;

			failalloc_init(&fa, n);
			rc = rs_budget_new(&b, &o, &err);
			if (rc == 0) {
				rs_budget_free(b);
				bad |= fa.live != 0;
				break;
			}
			bad |= rc != -ENOMEM || fa.live != 0 || b != NULL ||
			       !strstr(err.msg, "memory");
		}
		ok(!bad, "%s budget: failing allocation 1..%d gives -ENOMEM and leaks nothing",
		   o.name, n - 1);
	}
}

static void bad_options(void)
{
	static char longname[60];
	struct {
		struct rs_budget_opts o;
		const char *field;
	} cases[] = {
		{ { .kind = (enum rs_budget_kind)3, .name = "x" }, "kind" },
		{ { .kind = RS_BUDGET_RATIO }, "name" },
		{ { .kind = RS_BUDGET_RATIO, .name = "" }, "name" },
		{ { .kind = RS_BUDGET_RATIO, .name = longname }, "name" },
		{ { .name = "x", .buckets = 5000, .ratio = { 0.1, SEC, 0 } }, "buckets" },
		{ { .name = "x", .ratio = { 1.5, SEC, 0 } }, "ratio.ratio" },
		{ { .name = "x", .ratio = { -0.1, SEC, 0 } }, "ratio.ratio" },
		{ { .name = "x", .ratio = { NAN, SEC, 0 } }, "ratio.ratio" },
		{ { .name = "x", .ratio = { 0.1, 0, 0 } }, "ratio.window_ns" },
		{ { .name = "x", .ratio = { 0.1, 5, 0 } }, "ratio.window_ns" },
		{ { .kind = RS_BUDGET_TTL, .name = "x", .ttl = { 0, 10, 0.2 } }, "ttl.ttl_ns" },
		{ { .kind = RS_BUDGET_TTL, .name = "x", .ttl = { SEC, -1, 0.2 } },
		  "min_retries_per_sec" },
		{ { .kind = RS_BUDGET_TTL, .name = "x", .ttl = { SEC, NAN, 0.2 } },
		  "min_retries_per_sec" },
		{ { .kind = RS_BUDGET_TTL, .name = "x", .ttl = { SEC, INFINITY, 0.2 } },
		  "min_retries_per_sec" },
		{ { .kind = RS_BUDGET_TTL, .name = "x", .ttl = { SEC, 10, 1.01 } },
		  "percent_can_retry" },
		{ { .kind = RS_BUDGET_TTL, .name = "x", .ttl = { SEC, 10, NAN } },
		  "percent_can_retry" },
		{ { .kind = RS_BUDGET_THROTTLE, .name = "x", .throttle = { 0, 0.1, 0 } },
		  "max_tokens" },
		{ { .kind = RS_BUDGET_THROTTLE, .name = "x", .throttle = { 1001, 0.1, 0 } },
		  "max_tokens" },
		{ { .kind = RS_BUDGET_THROTTLE, .name = "x", .throttle = { NAN, 0.1, 0 } },
		  "max_tokens" },
		{ { .kind = RS_BUDGET_THROTTLE, .name = "x", .throttle = { 10, 0, 0 } },
		  "token_ratio" },
		{ { .kind = RS_BUDGET_THROTTLE, .name = "x", .throttle = { 10, -1, 0 } },
		  "token_ratio" },
		{ { .kind = RS_BUDGET_THROTTLE, .name = "x", .throttle = { 10, NAN, 0 } },
		  "token_ratio" },
		{ { .kind = RS_BUDGET_THROTTLE, .name = "x", .throttle = { 10, 0.1, 3 } },
		  "throttle.window_ns" },
	};

	memset(longname, 'n', sizeof(longname) - 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rs_budget *b = (struct rs_budget *)1;
		struct rs_err err = { "" };
		int rc = rs_budget_new(&b, &cases[i].o, &err);

		ok(rc == -EINVAL && b == NULL && strstr(err.msg, cases[i].field) &&
		       strstr(err.msg, "budget"),
		   "bad budget option %zu: -EINVAL naming '%s' (%s)", i, cases[i].field, err.msg);
	}
}

int main(void)
{
	amplification();
	ratio_rule();
	ttl_rule();
	throttle_rule();
	alloc_failures();
	bad_options();
	done_testing();
	return exit_status();
}
