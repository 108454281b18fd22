/* Validation throughput: parse + validate experiments/examples/full.json
 * (every field of the format, about 8 KB) from memory, as `faultline
 * validate` and `faultline run` do before anything starts.  Run from the
 * repository root (make bench does). */
#include "bench/bench.h"

#include <errno.h>

#include "harness/experiment.h"

#define FULL_EXAMPLE "experiments/examples/full.json"

static char *example;
static size_t example_len;

static void load_example(void)
{
	FILE *f;
	long n;

	if (example)
		return;
	f = fopen(FULL_EXAMPLE, "rb");
	if (!f) {
		fprintf(stderr,
			"bench_validate: cannot open %s: %s (run from the repository root)\n",
			FULL_EXAMPLE, strerror(errno));
		exit(2);
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	example = malloc((size_t)n + 1);
	if (!example || fread(example, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "bench_validate: cannot read %s\n", FULL_EXAMPLE);
		exit(2);
	}
	example_len = (size_t)n;
	fclose(f);
}

static uint64_t op_validate_full(uint64_t iters)
{
	static const char *const set[] = { "FAULTLINE_BUILD=build" };
	const struct fl_vars vars = { set, 1, true };
	uint64_t acc = 0, t0;

	load_example();
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < iters; i++) {
		struct fl_experiment *x = NULL;
		struct fl_diag diag;

		fl_diag_init(&diag, FULL_EXAMPLE);
		if (fl_experiment_parse(FULL_EXAMPLE, example, example_len, &vars, NULL, &x,
					&diag) != 0) {
			fl_diag_print(&diag, stderr);
			exit(1);
		}
		acc += x->nplan;
		fl_experiment_free(x);
	}
	bench_sink = acc;
	return bench_now_ns() - t0;
}

static const struct bench_op ops[] = {
	{ "validate_full_example", op_validate_full, 0 },
	{ 0 },
};

/* Experiments per second, the figure the issue asks for. */
static void metrics(void)
{
	uint64_t iters = 2000, ns = op_validate_full(iters);

	bench_metric("validate_full_example_per_s", (double)iters * 1e9 / (double)ns,
		     "experiments/s", 0);
	bench_metric("full_example_bytes", (double)example_len, "bytes", 0);
}

BENCH_MAIN(ops, metrics)
