/* Cost of one detector evaluation per form, fed a pre-generated ring of
 * varied samples (mostly healthy, some with signals, the trigger toggling)
 * so branches are not perfectly predicted. */
#include "bench/bench.h"

#include <math.h>
#include <stdbool.h>

#include "resilience/alloc.h"
#include "resilience/clock.h"
#include "resilience/detector.h"
#include "resilience/rng.h"

enum { RING = 1024 };

static struct rs_detector_sample ring[RING];

static void fill(void)
{
	struct rs_rng r;

	rs_rng_seed(&r, 7);
	for (int i = 0; i < RING; i++) {
		bool sick = rs_rng_below(&r, 8) == 0;
		struct rs_detector_sample *s = &ring[i];

		s->latency_ns = (40 + rs_rng_below(&r, 20)) * RS_NS_PER_MS * (sick ? 10 : 1);
		s->error_rate = sick ? 0.2 : 0.001;
		s->throughput = 1000 - (double)rs_rng_below(&r, 50);
		s->offered_load = 1000 + (double)rs_rng_below(&r, 60) - 30;
		s->goodput = sick ? 300 : s->offered_load;
		s->cpu = sick ? 0.95 : 0.5;
		s->memory = 0.5;
		s->queue_depth = sick ? 5000 : 10;
		s->cache_hit_ratio = sick ? 0.3 : 0.9;
		s->retry_amplification = sick ? 2.5 : 1.0;
		s->trigger_active = (i / 64) % 4 == 1;
	}
}

static uint64_t run(enum rs_detector_form form, uint64_t iters)
{
	struct rs_detector_opts o;
	struct rs_detector *d;
	uint64_t t0, ns, acc = 0, now = RS_NS_PER_SEC;

	if (!ring[0].latency_ns)
		fill();
	rs_detector_opts_default(&o, form);
	o.name = "bench";
	o.trigger_clear_ns = 20 * RS_NS_PER_SEC;
	if (rs_detector_new(&d, &o, NULL) != 0)
		abort();
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < iters; i++) {
		struct rs_detector_sample *s = &ring[i & (RING - 1)];

		now += RS_NS_PER_SEC;
		s->now_ns = now;
		acc += (uint64_t)rs_detector_update(d, s);
	}
	ns = bench_now_ns() - t0;
	bench_sink = acc;
	rs_detector_free(d);
	return ns;
}

static uint64_t op_multi(uint64_t iters)
{
	return run(RS_DETECTOR_MULTI_SIGNAL, iters);
}

static uint64_t op_trigger(uint64_t iters)
{
	return run(RS_DETECTOR_TRIGGER_AWARE, iters);
}

static uint64_t op_signature(uint64_t iters)
{
	return run(RS_DETECTOR_SIGNATURE, iters);
}

struct counting {
	struct rs_alloc a;
	size_t bytes, blocks;
};

static void *count_malloc(void *ctx, size_t n)
{
	struct counting *c = ctx;

	c->bytes += n;
	c->blocks++;
	return malloc(n);
}

static void count_free(void *ctx, void *p)
{
	(void)ctx;
	free(p);
}

static void metrics(void)
{
	struct counting c = { { count_malloc, count_free, &c }, 0, 0 };
	struct rs_detector_opts o;
	struct rs_detector *d;

	rs_detector_opts_default(&o, RS_DETECTOR_MULTI_SIGNAL);
	o.name = "bench";
	o.alloc = &c.a;
	if (rs_detector_new(&d, &o, NULL) != 0)
		abort();
	rs_detector_free(d);
	bench_metric("detector_bytes", (double)c.bytes, "bytes", 0);
	bench_metric("detector_allocations", (double)c.blocks, "blocks", 0);
}

static const struct bench_op ops[] = {
	{ "detector_update", op_multi, 50.0 },
	{ "detector_update_trigger_aware", op_trigger, 0 },
	{ "detector_update_signature", op_signature, 0 },
	{ 0 },
};

BENCH_MAIN(ops, metrics)
