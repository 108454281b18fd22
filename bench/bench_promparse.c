/* The prometheus probe's cost in the harness: select one series from the
 * reference service's exposition (bench/run/service-metrics.prom, ~15 KB,
 * captured from faultline-target), as every sample of a prometheus probe
 * does after its GET.  At a 10 ms cadence this runs 100 times a second per
 * probe, on the loop that also drives the load.  Run from the repository
 * root (make bench does). */
#include "bench/bench.h"

#include <errno.h>

#include "probes/promparse.h"

#define EXPOSITION "bench/run/service-metrics.prom"

static char *text;
static size_t text_len;

static void load_text(void)
{
	FILE *f;
	long n;

	if (text)
		return;
	f = fopen(EXPOSITION, "rb");
	if (!f) {
		fprintf(stderr,
			"bench_promparse: cannot open %s: %s (run from the repository root)\n",
			EXPOSITION, strerror(errno));
		exit(2);
	}
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	text = malloc((size_t)n + 1);
	if (!text || fread(text, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "bench_promparse: cannot read %s\n", EXPOSITION);
		exit(2);
	}
	text_len = (size_t)n;
	fclose(f);
}

static uint64_t select_one(uint64_t iters, const char *metric, const char *const *labels)
{
	const struct fl_prom_selector sel = { .metric = metric, .labels = labels };
	uint64_t t0;
	double acc = 0;

	load_text();
	t0 = bench_now_ns();
	for (uint64_t i = 0; i < iters; i++) {
		struct fl_prom_match m;
		struct rs_err err;

		if (fl_prom_select(text, text_len, &sel, &m, &err) != 0) {
			fprintf(stderr, "bench_promparse: %s\n", err.msg);
			exit(1);
		}
		acc += m.value;
	}
	bench_sink = (uint64_t)acc;
	return bench_now_ns() - t0;
}

/* A series near the end of the document: the whole text is parsed. */
static uint64_t op_select_last(uint64_t iters)
{
	return select_one(iters, "faultline_sample_cpu", NULL);
}

/* A labelled series: the probes of the shipped experiments look like this. */
static uint64_t op_select_breaker(uint64_t iters)
{
	static const char *const labels[] = { "name", "dependency", NULL };

	return select_one(iters, "resilience_breaker_state", labels);
}

static const struct bench_op ops[] = {
	{ "promparse_select_15kb", op_select_last, 0 },
	{ "promparse_select_15kb_labelled", op_select_breaker, 0 },
	{ 0 },
};

static void metrics(void)
{
	load_text();
	bench_metric("promparse_exposition_bytes", (double)text_len, "bytes", 0);
}

BENCH_MAIN(ops, metrics)
