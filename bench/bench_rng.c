/* Cost of the core's seeded PRNG, the source of every jittered value. */
#include "bench/bench.h"

#include "resilience/clock.h"
#include "resilience/rng.h"

static uint64_t op_next(uint64_t iters)
{
	struct rs_rng r;
	uint64_t acc = 0, t0;

	rs_rng_seed(&r, 1);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < iters; i++)
		acc += rs_rng_next(&r);
	bench_sink = acc;
	return bench_now_ns() - t0;
}

static uint64_t op_below(uint64_t iters)
{
	struct rs_rng r;
	uint64_t acc = 0, t0;

	rs_rng_seed(&r, 1);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < iters; i++)
		acc += rs_rng_below(&r, 1000);
	bench_sink = acc;
	return bench_now_ns() - t0;
}

static uint64_t op_now(uint64_t iters)
{
	uint64_t acc = 0, t0 = bench_now_ns();

	for (uint64_t i = 0; i < iters; i++)
		acc += rs_now_ns();
	bench_sink = acc;
	return bench_now_ns() - t0;
}

static const struct bench_op ops[] = {
	{ "rng_next", op_next, 0 },
	{ "rng_below_1000", op_below, 0 },
	{ "clock_now_ns", op_now, 0 },
	{ 0 },
};

BENCH_MAIN(ops, NULL)
