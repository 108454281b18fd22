/* The adaptive retry policy: attempt limits (fewer while metastable), each
 * reason to stop, the delay's health factor, penalty and cap, deadlines,
 * the control block, counters and their exposition. */
#include "tests/tap.h"
#include "tests/failalloc.h"
#include "tests/promtext.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "resilience/budget.h"
#include "resilience/clock.h"
#include "resilience/control.h"
#include "resilience/retry.h"

#define MS  RS_NS_PER_MS
#define SEC RS_NS_PER_SEC

static char dir[] = "/tmp/fl-retry-XXXXXX";
static char path[256];

static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

/* EIO and ETIMEDOUT are retryable; anything else is not.  Counts calls. */
static bool io_errors(void *ctx, int error)
{
	++*(int *)ctx;
	return error == EIO || error == ETIMEDOUT;
}

static int calls;

/* Deterministic backoff 100 ms x2 (cap 10 s), health 1..10 reaching 10 at an
 * error rate of 0.5, metastable penalty 3, final cap 2 s. */
static struct rs_retry_opts base_opts(void)
{
	return (struct rs_retry_opts){
		.name = "dep",
		.max_attempts = 5,
		.metastable_max_attempts = 2,
		.backoff = { .strategy = RS_BACKOFF_NONE,
			     .base_ns = 100 * MS,
			     .cap_ns = 10 * SEC,
			     .seed = 1 },
		.error_rate_threshold = 0.5,
		.metastable_penalty = 3,
		.max_delay_ns = 2 * SEC,
		.retryable = io_errors,
		.retryable_ctx = &calls,
	};
}

static struct rs_retry *make(const struct rs_retry_opts *o)
{
	struct rs_retry *r = NULL;
	struct rs_err err = { "" };

	if (rs_retry_new(&r, o, &err) < 0)
		bail_out("rs_retry_new: %s", err.msg);
	return r;
}

static struct rs_retry_decision decide(struct rs_retry *r, struct rs_retry_input in)
{
	struct rs_retry_decision d;
	bool yes = rs_retry_decide(r, &in, &d);

	if (yes != (d.reason == RS_RETRY_RETRY))
		bail_out("decide returned %d with reason %s", yes, rs_retry_reason_name(d.reason));
	return d;
}

/* Runs one request whose every attempt fails with `error`; returns the
 * number of attempts made and the final reason. */
static uint32_t run(struct rs_retry *r, struct rs_retry_input in, enum rs_retry_reason *why)
{
	for (uint32_t a = 1;; a++) {
		struct rs_retry_decision d;

		in.attempt = a;
		d = decide(r, in);
		if (d.reason != RS_RETRY_RETRY) {
			*why = d.reason;
			return a;
		}
		in.now_ns += d.delay_ns;
		in.prev_backoff_ns = d.backoff_ns;
	}
}

static void attempts(void)
{
	enum rs_retry_reason why;
	int bad = 0;

	for (uint32_t n = 1; n <= 8; n++) {
		struct rs_retry_opts o = base_opts();
		struct rs_retry *r;

		o.max_attempts = n;
		o.metastable_max_attempts = 1;
		o.backoff.strategy = RS_BACKOFF_FULL;
		r = make(&o);
		for (int req = 0; req < 100; req++)
			bad += run(r, (struct rs_retry_input){ .error = EIO }, &why) != n ||
			       why != RS_RETRY_ATTEMPTS_EXHAUSTED;
		bad += rs_retry_count(r, RS_RETRY_ATTEMPTS_EXHAUSTED) != 100 ||
		       rs_retry_count(r, RS_RETRY_RETRY) != 100 * (n - 1);
		rs_retry_free(r);
	}
	is_int(bad, 0,
	       "max_attempts N = 1..8: 100 failing requests each make exactly N attempts, "
	       "then attempts_exhausted");
	{
		struct rs_retry_opts o = base_opts(); /* 5 attempts, 2 while metastable */
		struct rs_retry *r = make(&o);
		uint32_t got =
		    run(r, (struct rs_retry_input){ .error = EIO, .metastable = true }, &why);

		ok(got == 2 && why == RS_RETRY_METASTABLE_LIMIT,
		   "metastable: 2 attempts instead of 5, reason metastable_limit (got %u, %s)", got,
		   rs_retry_reason_name(why));
		got = run(r, (struct rs_retry_input){ .error = EIO }, &why);
		ok(got == 5 && why == RS_RETRY_ATTEMPTS_EXHAUSTED,
		   "the same policy makes 5 attempts once not metastable");
		rs_retry_free(r);

		o.metastable_max_attempts = 1;
		r = make(&o);
		got = run(r, (struct rs_retry_input){ .error = EIO, .metastable = true }, &why);
		ok(got == 1 && why == RS_RETRY_METASTABLE_LIMIT,
		   "metastable_max_attempts 1: no retry at all while metastable");
		rs_retry_free(r);
	}
}

static void reasons(void)
{
	struct rs_retry_opts o = base_opts();
	struct rs_retry *r = make(&o);
	struct rs_retry_decision d;
	static const struct {
		enum rs_breaker_state s;
		enum rs_retry_reason want;
	} br[] = {
		{ RS_BREAKER_CLOSED, RS_RETRY_RETRY },
		{ RS_BREAKER_HALF_OPEN, RS_RETRY_RETRY },
		{ RS_BREAKER_OPEN, RS_RETRY_BREAKER_OPEN },
		{ RS_BREAKER_EMERGENCY, RS_RETRY_BREAKER_OPEN },
		{ RS_BREAKER_FORCED_OPEN, RS_RETRY_BREAKER_OPEN },
		{ RS_BREAKER_DISABLED, RS_RETRY_RETRY },
	};

	for (size_t i = 0; i < sizeof(br) / sizeof(br[0]); i++) {
		d = decide(
		    r, (struct rs_retry_input){ .attempt = 1, .error = EIO, .breaker = br[i].s });
		is_str(rs_retry_reason_name(d.reason), rs_retry_reason_name(br[i].want),
		       "breaker state %d gives %s", (int)br[i].s, rs_retry_reason_name(br[i].want));
	}
	calls = 0;
	d = decide(r, (struct rs_retry_input){ .attempt = 1, .error = EINVAL });
	ok(d.reason == RS_RETRY_NOT_RETRYABLE && d.delay_ns == 0 && calls == 1,
	   "EINVAL is not retryable: not_retryable, delay 0, retryable() called once with its ctx");
	d = decide(r, (struct rs_retry_input){ .attempt = 1, .error = ETIMEDOUT });
	ok(d.reason == RS_RETRY_RETRY, "ETIMEDOUT is retryable");

	/* Precedence: the first rule that applies names the reason. */
	d = decide(
	    r, (struct rs_retry_input){
		   .attempt = 9, .error = EINVAL, .metastable = true, .breaker = RS_BREAKER_OPEN });
	ok(d.reason == RS_RETRY_NOT_RETRYABLE, "not_retryable comes before attempts_exhausted");
	d = decide(
	    r, (struct rs_retry_input){
		   .attempt = 5, .error = EIO, .metastable = true, .breaker = RS_BREAKER_OPEN });
	ok(d.reason == RS_RETRY_ATTEMPTS_EXHAUSTED,
	   "attempts_exhausted comes before metastable_limit and breaker_open");
	d = decide(
	    r, (struct rs_retry_input){
		   .attempt = 2, .error = EIO, .metastable = true, .breaker = RS_BREAKER_OPEN });
	ok(d.reason == RS_RETRY_METASTABLE_LIMIT, "metastable_limit comes before breaker_open");
	d = decide(r, (struct rs_retry_input){ .attempt = 1,
					       .error = EIO,
					       .now_ns = 5 * SEC,
					       .deadline_ns = 4 * SEC,
					       .breaker = RS_BREAKER_OPEN });
	ok(d.reason == RS_RETRY_BREAKER_OPEN, "breaker_open comes before deadline");
	rs_retry_free(r);
}

static void budget_denial(void)
{
	struct rs_budget *b = NULL;
	struct rs_err err = { "" };
	struct rs_retry_opts o = base_opts();
	struct rs_retry *r;
	struct rs_retry_decision d;
	struct rs_budget_status st;

	/* A reserve of exactly 2 retries (2/s x 1 s), no deposits. */
	if (rs_budget_new(
		&b,
		&(struct rs_budget_opts){ .kind = RS_BUDGET_TTL,
					  .name = "b",
					  .ttl = { .ttl_ns = SEC, .min_retries_per_sec = 2 } },
		&err) < 0)
		bail_out("rs_budget_new: %s", err.msg);
	o.budget = b;
	r = make(&o);
	d = decide(r,
		   (struct rs_retry_input){
		       .attempt = 1, .error = EIO, .now_ns = SEC, .deadline_ns = SEC + 50 * MS });
	ok(d.reason == RS_RETRY_DEADLINE, "deadline 50 ms away, delay 100 ms: deadline");
	d = decide(r, (struct rs_retry_input){ .attempt = 5, .error = EIO, .now_ns = SEC });
	ok(d.reason == RS_RETRY_ATTEMPTS_EXHAUSTED, "5th attempt: attempts_exhausted");
	rs_budget_status(b, SEC, &st);
	ok(st.balance == 2 && st.denied_total == 0,
	   "decisions that stop for other reasons do not touch the budget (balance 2)");
	d = decide(r, (struct rs_retry_input){ .attempt = 1, .error = EIO, .now_ns = SEC });
	ok(d.reason == RS_RETRY_RETRY, "first retry: the budget allows it");
	d = decide(r, (struct rs_retry_input){ .attempt = 2, .error = EIO, .now_ns = SEC });
	ok(d.reason == RS_RETRY_RETRY, "second retry: the budget allows it");
	d = decide(r, (struct rs_retry_input){ .attempt = 3, .error = EIO, .now_ns = SEC });
	ok(d.reason == RS_RETRY_BUDGET_DENIED && d.delay_ns == 0,
	   "third retry: budget_denied with delay 0");
	rs_budget_status(b, SEC, &st);
	ok(st.retries_total == 2 && st.denied_total == 1 && st.exhausted,
	   "the budget counted 2 retries and 1 denial");
	ok(rs_retry_count(r, RS_RETRY_BUDGET_DENIED) == 1 &&
	       rs_retry_count(r, RS_RETRY_DEADLINE) == 1 &&
	       rs_retry_count(r, RS_RETRY_RETRY) == 2 &&
	       rs_retry_count(r, RS_RETRY_ATTEMPTS_EXHAUSTED) == 1 &&
	       rs_retry_count(r, RS_RETRY_REASONS) == 0,
	   "the policy counts 2 retry, 1 budget_denied, 1 deadline, 1 attempts_exhausted");
	rs_retry_free(r);
	rs_budget_free(b);
}

static void delays(void)
{
	struct rs_retry_opts o = base_opts();
	struct rs_retry *r = make(&o);
	static const struct {
		uint32_t attempt;
		double rate;
		bool meta;
		uint64_t want_ms;
		const char *why;
	} c[] = {
		{ 1, 0, false, 100, "attempt 1, healthy: the 100 ms backoff" },
		{ 2, 0, false, 200, "attempt 2, healthy: 200 ms" },
		{ 4, 0, false, 800, "attempt 4, healthy: 800 ms" },
		{ 1, 0.25, false, 550, "error rate 0.25 = half the threshold: factor 5.5, 550 ms" },
		{ 1, 0.5, false, 1000, "error rate at the threshold: factor 10, 1 s" },
		{ 1, 0.9, false, 1000, "error rate above the threshold: factor stays 10" },
		{ 1, -0.3, false, 100, "negative error rate reads as 0: factor 1" },
		{ 1, NAN, false, 100, "NaN error rate reads as 0: factor 1" },
		{ 1, 0, true, 300, "metastable: penalty 3, 300 ms" },
		{ 1, 0.1, true, 840, "metastable, error rate 0.1: 100 x 2.8 x 3 = 840 ms" },
		{ 1, 0.25, true, 1650, "metastable, error rate 0.25: 100 x 5.5 x 3 = 1650 ms" },
		{ 1, 0.5, true, 2000, "metastable, error rate 0.5: 3 s capped at max_delay 2 s" },
		{ 3, 0.5, false, 2000, "attempt 3, error rate 0.5: 4 s capped at 2 s" },
	};

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct rs_retry_decision d =
		    decide(r, (struct rs_retry_input){ .attempt = c[i].attempt,
						       .error = EIO,
						       .metastable = c[i].meta,
						       .error_rate = c[i].rate });

		ok(d.reason == RS_RETRY_RETRY && d.delay_ns == c[i].want_ms * MS &&
		       d.backoff_ns == (100 * MS << (c[i].attempt - 1)),
		   "%s (got %.3f ms)", c[i].why, (double)d.delay_ns / 1e6);
	}
	rs_retry_free(r);

	o.health_factor_min = 2;
	o.health_factor_max = 4;
	o.error_rate_threshold = 1;
	r = make(&o);
	{
		struct rs_retry_decision a =
		    decide(r, (struct rs_retry_input){ .attempt = 1, .error = EIO });
		struct rs_retry_decision b = decide(
		    r, (struct rs_retry_input){ .attempt = 1, .error = EIO, .error_rate = 0.5 });

		ok(a.delay_ns == 200 * MS && b.delay_ns == 300 * MS,
		   "health range 2..4, threshold 1: error rate 0 -> 200 ms, 0.5 -> 300 ms");
	}
	rs_retry_free(r);

	/* Deadline: now + delay may reach it but not pass it. */
	o = base_opts();
	r = make(&o);
	{
		struct rs_retry_decision d;

		d = decide(r, (struct rs_retry_input){ .attempt = 1,
						       .error = EIO,
						       .now_ns = SEC,
						       .deadline_ns = SEC + 100 * MS });
		ok(d.reason == RS_RETRY_RETRY && d.delay_ns == 100 * MS,
		   "deadline exactly now + 100 ms delay: retry");
		d = decide(r, (struct rs_retry_input){ .attempt = 1,
						       .error = EIO,
						       .now_ns = SEC,
						       .deadline_ns = SEC + 100 * MS - 1 });
		ok(d.reason == RS_RETRY_DEADLINE && d.delay_ns == 0 && d.backoff_ns == 100 * MS,
		   "deadline 1 ns earlier: deadline (backoff 100 ms reported, delay 0)");
		d = decide(
		    r, (struct rs_retry_input){
			   .attempt = 1, .error = EIO, .now_ns = 3 * SEC, .deadline_ns = 2 * SEC });
		ok(d.reason == RS_RETRY_DEADLINE, "deadline already passed: deadline");
		d = decide(r, (struct rs_retry_input){ .attempt = 1,
						       .error = EIO,
						       .now_ns = UINT64_MAX - 5,
						       .deadline_ns = UINT64_MAX - 1 });
		ok(d.reason == RS_RETRY_DEADLINE, "now near 2^64: no overflow, deadline");
		d = decide(r, (struct rs_retry_input){
				  .attempt = 1, .error = EIO, .now_ns = UINT64_MAX - 5 });
		ok(d.reason == RS_RETRY_RETRY, "deadline 0 means none");
	}
	rs_retry_free(r);

	/* Decorrelated: backoff_ns fed back as prev_backoff_ns. */
	o = base_opts();
	o.backoff.strategy = RS_BACKOFF_DECORRELATED;
	o.max_attempts = 1000;
	r = make(&o);
	{
		uint64_t prev = 0;
		int bad = 0;

		for (uint32_t a = 1; a < 1000; a++) {
			struct rs_retry_decision d =
			    decide(r, (struct rs_retry_input){
					  .attempt = a, .error = EIO, .prev_backoff_ns = prev });
			uint64_t p = prev > 100 * MS ? prev : 100 * MS;
			uint64_t hi = 3 * p < 10 * SEC ? 3 * p : 10 * SEC;

			bad += d.backoff_ns < 100 * MS || d.backoff_ns > hi ||
			       d.delay_ns != (d.backoff_ns < 2 * SEC ? d.backoff_ns : 2 * SEC);
			prev = d.backoff_ns;
		}
		is_int(bad, 0,
		       "decorrelated through the policy: 999 backoffs each in [100 ms, "
		       "min(10 s, 3 prev)], delay = min(2 s, backoff)");
	}
	rs_retry_free(r);
}

static void control(void)
{
	struct rs_control *c = NULL;
	struct rs_err err = { "" };
	struct rs_retry_opts o = base_opts();
	struct rs_retry *r;
	struct rs_retry_decision d;
	int det = 0;

	if (!mkdtemp(dir))
		bail_out("cannot create a temporary directory: %s", strerror(errno));
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/control", dir);
	if (rs_control_open(&c, path, RS_CONTROL_CREATE, NULL, &err) < 0)
		bail_out("rs_control_open: %s", err.msg);
	o.control = rs_control_block(c);
	o.backoff.strategy = RS_BACKOFF_FULL;
	r = make(&o);

	rs_control_set_retries_paused(c, true);
	d = decide(r, (struct rs_retry_input){ .attempt = 1, .error = EIO });
	ok(d.reason == RS_RETRY_PAUSED, "retries paused by the control block: paused");
	d = decide(r, (struct rs_retry_input){
			  .attempt = 7, .error = EINVAL, .breaker = RS_BREAKER_OPEN });
	ok(d.reason == RS_RETRY_PAUSED, "paused comes before every other reason");
	rs_control_set_retries_paused(c, false);
	d = decide(r, (struct rs_retry_input){ .attempt = 1, .error = EIO });
	ok(d.reason == RS_RETRY_RETRY, "unpaused: retry again");

	rs_control_set_jitter(c, false);
	for (int i = 0; i < 100; i++) {
		d = decide(r, (struct rs_retry_input){ .attempt = 3, .error = EIO });
		det += d.delay_ns == 400 * MS;
	}
	is_int(det, 100, "jitter removed through the policy's control block: 100 x exactly 400 ms");
	rs_control_set_jitter(c, true);
	det = 0;
	for (int i = 0; i < 100; i++) {
		d = decide(r, (struct rs_retry_input){ .attempt = 3, .error = EIO });
		det += d.delay_ns == 400 * MS;
	}
	ok(det < 5, "jitter back on: full-jitter delays vary (%d/100 equal 400 ms)", det);
	rs_retry_free(r);
	rs_control_free(c);
}

static void exposition(void)
{
	struct rs_retry_opts o = base_opts();
	struct rs_retry *a, *b;
	char buf[8192], why[256] = "";
	struct rs_expo e;
	double v = -1;
	int n, found;

	a = make(&o);
	o.name = "other \"dep\"";
	b = make(&o);
	decide(a, (struct rs_retry_input){ .attempt = 1, .error = EIO });
	decide(a, (struct rs_retry_input){ .attempt = 1, .error = EIO });
	decide(a, (struct rs_retry_input){ .attempt = 1, .error = EINVAL });
	decide(b,
	       (struct rs_retry_input){ .attempt = 1, .error = EIO, .breaker = RS_BREAKER_OPEN });
	rs_expo_init(&e, buf, sizeof(buf));
	rs_retry_expo(&e, (const struct rs_retry *const[]){ a, NULL, b }, 3);
	is_int(rs_expo_finish(&e), 0, "retry exposition fits 8 KiB");
	n = promtext_check(buf, why, sizeof(why));
	is_int(n, 16, "valid text format: 8 outcomes x 2 policies, one family");
	if (n < 0)
		diag("%s\n%s", why, buf);
	found = promtext_value(buf, "resilience_retries_total{name=\"dep\",outcome=\"retry\"}", &v);
	ok(found && v == 2, "dep: retry = %g", v);
	found = promtext_value(
	    buf, "resilience_retries_total{name=\"dep\",outcome=\"not_retryable\"}", &v);
	ok(found && v == 1, "dep: not_retryable = %g", v);
	found = promtext_value(
	    buf, "resilience_retries_total{name=\"other \\\"dep\\\"\",outcome=\"breaker_open\"}",
	    &v);
	ok(found && v == 1, "other \"dep\": breaker_open = %g (label escaped)", v);
	found =
	    promtext_value(buf, "resilience_retries_total{name=\"dep\",outcome=\"deadline\"}", &v);
	ok(found && v == 0, "dep: deadline = %g (zeros are written)", v);
	is_str(rs_retry_name(b), "other \"dep\"", "the name is copied");
	rs_retry_free(a);
	rs_retry_free(b);
}

static void alloc_failures(void)
{
	struct rs_retry_opts o = base_opts();
	struct failalloc fa;
	int bad = 0, n;

	o.alloc = &fa.alloc;
	for (n = 1;; n++) {
		struct rs_retry *r = NULL;
		struct rs_err err = { "" };
		int rc;

		failalloc_init(&fa, n);
		rc = rs_retry_new(&r, &o, &err);
		if (rc == 0) {
			rs_retry_free(r);
			bad |= fa.live != 0;
			break;
		}
		bad |= rc != -ENOMEM || fa.live != 0 || r != NULL || !strstr(err.msg, "memory");
	}
	ok(!bad, "retry: failing allocation 1..%d gives -ENOMEM and leaks nothing", n - 1);
}

static void bad_options(void)
{
	static char longname[60];
	static struct rs_control_block other;
	struct {
		struct rs_retry_opts o;
		const char *field;
	} cases[18];
	size_t k = 0;

	memset(longname, 'n', sizeof(longname) - 1);
#define CASE(field_, stmt)                                                                         \
	do {                                                                                       \
		struct rs_retry_opts *p = &cases[k].o;                                             \
		*p = base_opts();                                                                  \
		stmt;                                                                              \
		cases[k++].field = field_;                                                         \
	} while (0)
	CASE("name", p->name = NULL);
	CASE("name", p->name = "");
	CASE("name", p->name = longname);
	CASE("max_attempts", p->max_attempts = 0);
	CASE("metastable_max_attempts", p->metastable_max_attempts = 0);
	CASE("metastable_max_attempts", p->metastable_max_attempts = 6);
	CASE("health_factor_min", p->health_factor_min = 0.5; p->health_factor_max = 10);
	CASE("health_factor_max", p->health_factor_min = 5; p->health_factor_max = 2);
	CASE("health_factor_max", p->health_factor_min = 1; p->health_factor_max = NAN);
	CASE("error_rate_threshold", p->error_rate_threshold = 0);
	CASE("error_rate_threshold", p->error_rate_threshold = 1.5);
	CASE("metastable_penalty", p->metastable_penalty = 0.5);
	CASE("metastable_penalty", p->metastable_penalty = NAN);
	CASE("max_delay_ns", p->max_delay_ns = 50 * MS);
	CASE("retryable", p->retryable = NULL);
	CASE("base_ns", p->backoff.base_ns = 0);
	CASE("cap_ns", p->backoff.cap_ns = 10 * MS);
	CASE("backoff.control", p->backoff.control = &other);
#undef CASE
	for (size_t i = 0; i < k; i++) {
		struct rs_retry *r = (struct rs_retry *)1;
		struct rs_err err = { "" };
		int rc = rs_retry_new(&r, &cases[i].o, &err);

		ok(rc == -EINVAL && r == NULL && strstr(err.msg, cases[i].field) &&
		       strstr(err.msg, "retry"),
		   "bad retry option %zu: -EINVAL naming '%s' (%s)", i, cases[i].field, err.msg);
	}
}

int main(void)
{
	attempts();
	reasons();
	budget_denial();
	delays();
	control();
	exposition();
	alloc_failures();
	bad_options();
	done_testing();
	return exit_status();
}
