/* Cost of the retry path: one backoff delay, one budget check + record (per
 * kind), one retry decision; and the memory each object takes. */
#include "bench/bench.h"

#include <errno.h>

#include "resilience/backoff.h"
#include "resilience/budget.h"
#include "resilience/clock.h"
#include "resilience/retry.h"

/* Counts the bytes an object's constructor allocates. */
struct counting {
	struct rs_alloc alloc;
	size_t bytes;
};

static void *counting_malloc(void *ctx, size_t n)
{
	((struct counting *)ctx)->bytes += n;
	return malloc(n);
}

static void counting_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

static void counting_init(struct counting *c)
{
	c->alloc = (struct rs_alloc){ counting_malloc, counting_free, c };
	c->bytes = 0;
}

static void backoff_init(struct rs_backoff *b, enum rs_backoff_strategy s)
{
	if (rs_backoff_init(b,
			    &(struct rs_backoff_opts){ .strategy = s,
						       .base_ns = 10 * RS_NS_PER_MS,
						       .cap_ns = RS_NS_PER_SEC,
						       .seed = 1 },
			    NULL) < 0)
		abort();
}

static uint64_t run_backoff(uint64_t iters, enum rs_backoff_strategy s)
{
	struct rs_backoff b;
	uint64_t acc = 0, prev = 0, t0;

	backoff_init(&b, s);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < iters; i++) {
		prev = rs_backoff_next(&b, (uint32_t)(i & 7) + 1, (i & 7) ? prev : 0);
		acc += prev;
	}
	bench_sink = acc;
	return bench_now_ns() - t0;
}

static uint64_t op_backoff_full(uint64_t iters)
{
	return run_backoff(iters, RS_BACKOFF_FULL);
}

static uint64_t op_backoff_decorrelated(uint64_t iters)
{
	return run_backoff(iters, RS_BACKOFF_DECORRELATED);
}

static uint64_t op_backoff_proportional(uint64_t iters)
{
	return run_backoff(iters, RS_BACKOFF_PROPORTIONAL);
}

static const struct rs_budget_opts kinds[] = {
	{ .kind = RS_BUDGET_RATIO,
	  .name = "ratio",
	  .ratio = { .ratio = 0.1, .window_ns = 10 * RS_NS_PER_SEC, .min_requests = 10 } },
	{ .kind = RS_BUDGET_TTL,
	  .name = "ttl",
	  .ttl = { .ttl_ns = 10 * RS_NS_PER_SEC,
		   .min_retries_per_sec = 10,
		   .percent_can_retry = 0.2 } },
	{ .kind = RS_BUDGET_THROTTLE,
	  .name = "throttle",
	  .throttle = { .max_tokens = 10, .token_ratio = 0.1 } },
};

/* One request record + one outcome record + one retry check, with time
 * advancing 10 us per request (100k requests/s: a bucket rotation every
 * 100,000 iterations) and one request in 8 failing. */
static uint64_t run_budget(uint64_t iters, const struct rs_budget_opts *o)
{
	struct rs_budget *b;
	uint64_t acc = 0, now = RS_NS_PER_SEC, t0;

	if (rs_budget_new(&b, o, NULL) < 0)
		abort();
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < iters; i++) {
		bool fail = (i & 7) == 0;

		rs_budget_record_request(b, now);
		rs_budget_record_outcome(b, !fail, now);
		acc += rs_budget_try_withdraw(b, now);
		now += 10 * RS_NS_PER_US;
	}
	bench_sink = acc;
	t0 = bench_now_ns() - t0;
	rs_budget_free(b);
	return t0;
}

static uint64_t op_budget_ratio(uint64_t iters)
{
	return run_budget(iters, &kinds[0]);
}

static uint64_t op_budget_ttl(uint64_t iters)
{
	return run_budget(iters, &kinds[1]);
}

static uint64_t op_budget_throttle(uint64_t iters)
{
	return run_budget(iters, &kinds[2]);
}

static bool retry_io(void *ctx, int error)
{
	(void)ctx;
	return error == EIO;
}

static struct rs_retry_opts retry_opts(struct rs_budget *b)
{
	return (struct rs_retry_opts){
		.name = "bench",
		.max_attempts = 4,
		.metastable_max_attempts = 2,
		.backoff = { .strategy = RS_BACKOFF_FULL,
			     .base_ns = 10 * RS_NS_PER_MS,
			     .cap_ns = RS_NS_PER_SEC,
			     .seed = 3 },
		.error_rate_threshold = 0.5,
		.metastable_penalty = 3,
		.max_delay_ns = 5 * RS_NS_PER_SEC,
		.retryable = retry_io,
		.budget = b,
	};
}

/* A decision after attempts 1..4 in turn (the 4th stops), with the ratio
 * budget consulted and recording a request every 4 decisions. */
static uint64_t op_retry_decide(uint64_t iters)
{
	struct rs_budget *b;
	struct rs_retry *r;
	struct rs_retry_opts o;
	struct rs_retry_decision d = { 0 };
	uint64_t acc = 0, now = RS_NS_PER_SEC, t0;

	if (rs_budget_new(&b, &kinds[0], NULL) < 0)
		abort();
	o = retry_opts(b);
	if (rs_retry_new(&r, &o, NULL) < 0)
		abort();
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < iters; i++) {
		uint32_t attempt = (uint32_t)(i & 3) + 1;

		if (attempt == 1)
			rs_budget_record_request(b, now);
		acc += rs_retry_decide(r,
				       &(struct rs_retry_input){ .attempt = attempt,
								 .error = EIO,
								 .now_ns = now,
								 .error_rate = 0.1,
								 .prev_backoff_ns = d.backoff_ns },
				       &d);
		acc += d.delay_ns;
		now += 10 * RS_NS_PER_US;
	}
	bench_sink = acc;
	t0 = bench_now_ns() - t0;
	rs_retry_free(r);
	rs_budget_free(b);
	return t0;
}

static const struct bench_op ops[] = {
	{ "backoff_next_delay", op_backoff_full, 10.0 },
	{ "backoff_next_delay_decorrelated", op_backoff_decorrelated, 0 },
	{ "backoff_next_delay_proportional", op_backoff_proportional, 0 },
	{ "budget_check_record", op_budget_ratio, 10.0 },
	{ "budget_check_record_ttl", op_budget_ttl, 0 },
	{ "budget_check_record_throttle", op_budget_throttle, 0 },
	{ "retry_decide", op_retry_decide, 0 },
	{ 0 },
};

static void metrics(void)
{
	struct counting c;
	struct rs_budget *b;
	struct rs_retry *r;
	struct rs_retry_opts o = retry_opts(NULL);

	bench_metric("backoff_bytes", (double)sizeof(struct rs_backoff), "bytes", 0);
	for (int k = 0; k < 3; k++) {
		char name[64];
		struct rs_budget_opts bo = kinds[k];

		counting_init(&c);
		bo.alloc = &c.alloc;
		if (rs_budget_new(&b, &bo, NULL) < 0)
			abort();
		rs_budget_free(b);
		snprintf(name, sizeof(name), "budget_%s_bytes_10_buckets", bo.name);
		bench_metric(name, (double)c.bytes, "bytes", 0);
	}
	counting_init(&c);
	o.alloc = &c.alloc;
	if (rs_retry_new(&r, &o, NULL) < 0)
		abort();
	rs_retry_free(r);
	bench_metric("retry_bytes", (double)c.bytes, "bytes", 0);
}

BENCH_MAIN(ops, metrics)
