/* Cost of the admission-control hot paths: token bucket, load shedder,
 * bulkhead and error-budget recording; and the memory each object takes. */
#include "bench/bench.h"

#include "resilience/bulkhead.h"
#include "resilience/errbudget.h"
#include "resilience/ratelimit.h"
#include "resilience/shed.h"

static void die(const char *what, const struct rs_err *err)
{
	fprintf(stderr, "bench_admission: %s: %s\n", what, err->msg);
	exit(1);
}

/* Rate 1e6/s, burst 100, one attempt every 500 ns of simulated time: about
 * half are admitted, so both branches (and the wait hint) are exercised. */
static uint64_t op_ratelimit(uint64_t iters)
{
	struct rs_ratelimit rl;
	struct rs_err err;
	uint64_t acc = 0, wait, t0;

	if (rs_ratelimit_init(&rl, &(struct rs_ratelimit_opts){ .rate = 1e6, .burst = 100 }, &err))
		die("ratelimit", &err);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < iters; i++)
		acc += rs_ratelimit_try_acquire(&rl, i * 500, &wait) + wait;
	bench_sink = acc;
	return bench_now_ns() - t0;
}

/* Tiered shedder in the red tier (30%), classes round-robin. */
static uint64_t op_shed(uint64_t iters)
{
	struct rs_shed *s;
	struct rs_err err;
	uint64_t acc = 0, t0;

	if (rs_shed_new(&s, &(struct rs_shed_opts){ .name = "bench", .seed = 1 }, &err) ||
	    rs_shed_set_score(s, 0.75, &err))
		die("shed", &err);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < iters; i++)
		acc += rs_shed_admit(s, (enum rs_shed_class)(i & 3), 0);
	t0 = bench_now_ns() - t0;
	bench_sink = acc;
	rs_shed_free(s);
	return t0;
}

/* Admitted at once and released, no waiters. */
static uint64_t op_bulkhead(uint64_t iters)
{
	struct rs_bulkhead *b;
	struct rs_err err;
	uint64_t acc = 0, t0;

	if (rs_bulkhead_new(
		&b,
		&(struct rs_bulkhead_opts){
		    .name = "bench", .max_concurrent = 8, .max_queue = 8, .max_wait_ns = 1000000 },
		&err))
		die("bulkhead", &err);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < iters; i++) {
		acc += rs_bulkhead_try_acquire(b, NULL, i);
		if (rs_bulkhead_release(b, i))
			abort();
	}
	t0 = bench_now_ns() - t0;
	bench_sink = acc;
	rs_bulkhead_free(b);
	return t0;
}

/* Default rules (6 windows of 3600 buckets); one record per simulated ms,
 * so the finer rings move to a new bucket every few records. */
static uint64_t op_errbudget(uint64_t iters)
{
	struct rs_errbudget *eb;
	struct rs_err err;
	uint64_t t0;

	if (rs_errbudget_new(
		&eb,
		&(struct rs_errbudget_opts){
		    .name = "bench", .slo = 0.999, .window_ns = 30 * 24 * 3600 * 1000000000ull },
		&err))
		die("errbudget", &err);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < iters; i++)
		rs_errbudget_record(eb, 1, (i & 1023) == 0, i * 1000000);
	t0 = bench_now_ns() - t0;
	bench_sink = rs_errbudget_evaluate(eb, iters * 1000000);
	rs_errbudget_free(eb);
	return t0;
}

static const struct bench_op ops[] = {
	{ "ratelimit_try_acquire", op_ratelimit, 0 },
	{ "shed_decide", op_shed, 0 },
	{ "bulkhead_acquire_release", op_bulkhead, 0 },
	{ "errbudget_record", op_errbudget, 0 },
	{ 0 },
};

/* Counts the bytes an object allocates. */
struct counter {
	struct rs_alloc alloc;
	size_t bytes;
};

static void *count_malloc(void *ctx, size_t n)
{
	((struct counter *)ctx)->bytes += n;
	return malloc(n);
}

static void count_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

static void metrics(void)
{
	struct counter c[4];
	struct rs_shed *s1, *s2;
	struct rs_bulkhead *b;
	struct rs_errbudget *eb;
	struct rs_err err;

	for (int i = 0; i < 4; i++)
		c[i] = (struct counter){ { count_malloc, count_free, &c[i] }, 0 };
	if (rs_shed_new(&s1, &(struct rs_shed_opts){ .name = "m", .alloc = &c[0].alloc }, &err) ||
	    rs_shed_new(&s2,
			&(struct rs_shed_opts){
			    .name = "m", .mode = RS_SHED_THROTTLE, .alloc = &c[1].alloc },
			&err) ||
	    rs_bulkhead_new(&b,
			    &(struct rs_bulkhead_opts){
				.name = "m", .max_concurrent = 1, .alloc = &c[2].alloc },
			    &err) ||
	    rs_errbudget_new(
		&eb,
		&(struct rs_errbudget_opts){ .name = "m",
					     .slo = 0.999,
					     .window_ns = 30 * 24 * 3600 * 1000000000ull,
					     .alloc = &c[3].alloc },
		&err))
		die("metrics", &err);
	bench_metric("ratelimit_bytes", sizeof(struct rs_ratelimit), "bytes", 0);
	bench_metric("ratelimit_aimd_bytes", sizeof(struct rs_ratelimit_aimd), "bytes", 0);
	bench_metric("shed_tiered_bytes", (double)c[0].bytes, "bytes", 0);
	bench_metric("shed_throttle_bytes", (double)c[1].bytes, "bytes", 0);
	bench_metric("bulkhead_bytes", (double)c[2].bytes, "bytes", 0);
	bench_metric("bulkhead_waiter_bytes", sizeof(struct rs_bulkhead_waiter), "bytes", 0);
	bench_metric("errbudget_default_bytes", (double)c[3].bytes, "bytes", 0);
	rs_shed_free(s1);
	rs_shed_free(s2);
	rs_bulkhead_free(b);
	rs_errbudget_free(eb);
}

BENCH_MAIN(ops, metrics)
