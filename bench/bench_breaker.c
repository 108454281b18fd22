/* Circuit breaker hot path: allow + record of a successful call in the
 * closed state, on one thread and on two threads sharing one breaker, and
 * the breaker's memory footprint. */
#include "bench/bench.h"

#include <pthread.h>

#include "resilience/breaker.h"
#include "resilience/clock.h"

/* A typical breaker: 50% failures over the last 100 calls, at least 20. */
static struct rs_breaker *bench_breaker(void)
{
	struct rs_breaker *b = NULL;
	struct rs_err err;
	struct rs_breaker_opts o = {
		.name = "bench",
		.failure_rate_threshold = 0.5,
		.slow_rate_threshold = 0.8,
		.slow_call_ns = 100 * RS_NS_PER_MS,
		.window_kind = RS_WINDOW_COUNT,
		.window_size = 100,
		.minimum_calls = 20,
		.open_ns = RS_NS_PER_SEC,
		.half_open_calls = 3,
	};

	if (rs_breaker_new(&b, &o, &err)) {
		fprintf(stderr, "bench_breaker: %s\n", err.msg);
		exit(1);
	}
	return b;
}

static uint64_t loop(struct rs_breaker *b, uint64_t iters)
{
	uint64_t admitted = 0;

	for (uint64_t i = 0; i < iters; i++) {
		uint64_t now = 1000 * RS_NS_PER_SEC + i;

		if (rs_breaker_allow(b, now)) {
			rs_breaker_record(b, false, 50 * RS_NS_PER_US, now);
			admitted++;
		}
	}
	return admitted;
}

static uint64_t op_closed_1thread(uint64_t iters)
{
	struct rs_breaker *b = bench_breaker();
	uint64_t t0 = bench_now_ns(), ns;

	bench_sink += loop(b, iters);
	ns = bench_now_ns() - t0;
	rs_breaker_free(b);
	return ns;
}

struct worker {
	struct rs_breaker *b;
	pthread_barrier_t *start;
	uint64_t iters;
	uint64_t admitted;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	pthread_barrier_wait(w->start);
	w->admitted = loop(w->b, w->iters);
	return NULL;
}

/* iters per thread; returns the wall time from the common start until both
 * threads are done. */
static uint64_t op_closed_2threads(uint64_t iters)
{
	struct rs_breaker *b = bench_breaker();
	pthread_barrier_t start;
	pthread_t t[2];
	struct worker w[2];
	uint64_t t0, ns;

	pthread_barrier_init(&start, NULL, 3);
	for (int i = 0; i < 2; i++) {
		w[i] = (struct worker){ .b = b, .start = &start, .iters = iters };
		if (pthread_create(&t[i], NULL, worker_main, &w[i])) {
			fprintf(stderr, "bench_breaker: cannot create a thread\n");
			exit(1);
		}
	}
	pthread_barrier_wait(&start);
	t0 = bench_now_ns();
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	ns = bench_now_ns() - t0;
	bench_sink += w[0].admitted + w[1].admitted;
	pthread_barrier_destroy(&start);
	rs_breaker_free(b);
	return ns;
}

static const struct bench_op ops[] = {
	{ "breaker_allow_record_closed_1thread", op_closed_1thread, 10.0 },
	{ "breaker_allow_record_closed_2threads", op_closed_2threads, 40.0 },
	{ 0 },
};

static void metrics(void)
{
	struct rs_breaker *b = bench_breaker();
	const struct rs_window *w = rs_breaker_window(b);

	bench_metric("breaker_bytes", (double)rs_breaker_bytes(b), "bytes", 256);
	bench_metric("window_bytes_per_slot", (double)rs_window_bytes(w) / 100.0, "bytes", 2);
	rs_breaker_free(b);
}

BENCH_MAIN(ops, metrics)
