/* Cost of the latency histogram, the request coalescer and the idempotency
 * table on their hot paths, and what each allocates at construction. */
#include "bench/bench.h"

#include <math.h>

#include "resilience/coalesce.h"
#include "resilience/hist.h"
#include "resilience/idem.h"
#include "resilience/rng.h"

enum { NVAL = 4096, NKEY = 1024, NIDEM = 50000 };

/* Counts the bytes a constructor asks for. */
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
	c->alloc.malloc = counting_malloc;
	c->alloc.free = counting_free;
	c->alloc.ctx = c;
	c->bytes = 0;
}

static struct rs_hist *new_hist(const struct rs_alloc *a)
{
	struct rs_hist *h;
	struct rs_err err;

	if (rs_hist_new(&h, &(struct rs_hist_opts){ RS_HIST_LATENCY_OPTS, .alloc = a }, &err)) {
		fprintf(stderr, "%s\n", err.msg);
		exit(1);
	}
	return h;
}

/* Log-uniform latencies from 1 us to 10 s (seed 1). */
static void fill_values(uint64_t *v, size_t n)
{
	struct rs_rng r;
	double lo = log(1e3), hi = log(1e10);

	rs_rng_seed(&r, 1);
	for (size_t i = 0; i < n; i++)
		v[i] = (uint64_t)exp(lo + rs_rng_double(&r) * (hi - lo));
}

static uint64_t op_hist_record(uint64_t iters)
{
	static uint64_t v[NVAL];
	struct rs_hist *h = new_hist(NULL);
	uint64_t t0, ns;

	fill_values(v, NVAL);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < iters; i++)
		rs_hist_record(h, v[i & (NVAL - 1)]);
	ns = bench_now_ns() - t0;
	bench_sink = rs_hist_count(h);
	rs_hist_free(h);
	return ns;
}

static uint64_t op_hist_quantile(uint64_t iters)
{
	static uint64_t v[NVAL];
	struct rs_hist *h = new_hist(NULL);
	uint64_t t0, ns, acc = 0, q;

	fill_values(v, NVAL);
	for (int i = 0; i < 1000000; i++)
		rs_hist_record(h, v[i & (NVAL - 1)] + (uint64_t)i);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < iters; i++) {
		if (rs_hist_quantile(h, 0.99, &q) == 0)
			acc += q;
	}
	ns = bench_now_ns() - t0;
	bench_sink = acc;
	rs_hist_free(h);
	return ns;
}

static void on_result(struct rs_coalesce_waiter *w, int status, const void *result, size_t len)
{
	(void)result;
	*(uint64_t *)w->data += (uint64_t)status + len;
}

static uint64_t op_coalesce(uint64_t iters)
{
	static char keys[NKEY][24];
	static size_t lens[NKEY];
	struct rs_coalesce *c;
	struct rs_coalesce_waiter w;
	struct rs_err err;
	uint64_t t0, ns, acc = 0;
	int rc = 0;

	if (rs_coalesce_new(&c,
			    &(struct rs_coalesce_opts){
				.name = "bench", .capacity = 1024, .key_max = 64, .seed = 1 },
			    &err)) {
		fprintf(stderr, "%s\n", err.msg);
		exit(1);
	}
	for (int i = 0; i < NKEY; i++)
		lens[i] = (size_t)snprintf(keys[i], sizeof(keys[i]), "user:profile:%d", i);
	rs_coalesce_waiter_init(&w, on_result, &acc);
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < iters; i++) {
		const char *k = keys[i & (NKEY - 1)];
		size_t kl = lens[i & (NKEY - 1)];

		rc |= rs_coalesce_begin(c, k, kl, &w) != RS_COALESCE_LEADER;
		rc |= rs_coalesce_finish(c, k, kl, 0, "v", 1) != 1;
	}
	ns = bench_now_ns() - t0;
	if (rc)
		fprintf(stderr, "coalesce_begin_finish: unexpected result\n");
	bench_sink = acc;
	rs_coalesce_free(c);
	return ns;
}

static uint64_t op_idem_check(uint64_t iters)
{
	static char keys[NIDEM][24];
	static size_t lens[NIDEM];
	struct rs_idem *t;
	struct rs_idem_result dup;
	struct rs_err err;
	uint64_t t0, ns, acc = 0;

	if (rs_idem_new(&t,
			&(struct rs_idem_opts){ .name = "bench",
						.capacity = 65536,
						.key_max = 64,
						.result_max = 256,
						.ttl_ns = 3600 * RS_NS_PER_SEC,
						.seed = 1 },
			&err)) {
		fprintf(stderr, "%s\n", err.msg);
		exit(1);
	}
	for (int i = 0; i < NIDEM; i++) {
		lens[i] = (size_t)snprintf(keys[i], sizeof(keys[i]), "idem-%08d", i);
		if (rs_idem_check(t, keys[i], lens[i], 0, &dup) != RS_IDEM_FIRST_SEEN ||
		    rs_idem_complete(t, keys[i], lens[i], 200, "{\"ok\":true}", 11, 0)) {
			fprintf(stderr, "idem_check: setup failed\n");
			exit(1);
		}
	}
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < iters; i++) {
		size_t k = (size_t)(i % NIDEM);

		if (rs_idem_check(t, keys[k], lens[k], 1, &dup) == RS_IDEM_DUPLICATE)
			acc += dup.len;
	}
	ns = bench_now_ns() - t0;
	bench_sink = acc;
	rs_idem_free(t);
	return ns;
}

static void metrics(void)
{
	struct counting c;
	struct rs_err err;
	struct rs_hist *h;
	struct rs_coalesce *co;
	struct rs_idem *t;

	counting_init(&c);
	h = new_hist(&c.alloc);
	bench_metric("hist_bytes_1us_1h_3digits", (double)c.bytes, "bytes", 0);
	rs_hist_free(h);

	counting_init(&c);
	if (rs_coalesce_new(&co,
			    &(struct rs_coalesce_opts){
				.alloc = &c.alloc, .name = "m", .capacity = 1024, .key_max = 64 },
			    &err) == 0) {
		bench_metric("coalesce_bytes_per_slot_key64", (double)c.bytes / 1024, "bytes", 0);
		rs_coalesce_free(co);
	}

	counting_init(&c);
	if (rs_idem_new(&t,
			&(struct rs_idem_opts){ .alloc = &c.alloc,
						.name = "m",
						.capacity = 65536,
						.key_max = 64,
						.result_max = 256,
						.ttl_ns = 1 },
			&err) == 0) {
		bench_metric("idem_bytes_per_entry_key64_result256", (double)c.bytes / 65536,
			     "bytes", 0);
		rs_idem_free(t);
	}
}

static const struct bench_op ops[] = {
	{ "hist_record", op_hist_record, 5.0 },
	{ "hist_quantile", op_hist_quantile, 0 },
	{ "coalesce_begin_finish", op_coalesce, 0 },
	{ "idem_check", op_idem_check, 0 },
	{ 0 },
};

BENCH_MAIN(ops, metrics)
