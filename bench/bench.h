/* The benchmark harness behind `make bench`.
 *
 * A bench program lists its operations and ends with BENCH_MAIN:
 *
 *   static uint64_t op_allow_record(uint64_t iters)
 *   {
 *           ... setup (not timed) ...
 *           uint64_t t0 = bench_now_ns();
 *           for (uint64_t i = 0; i < iters; i++) { ... }
 *           uint64_t ns = bench_now_ns() - t0;
 *           ... teardown ...
 *           return ns;            // wall time of the timed loop only
 *   }
 *   static const struct bench_op ops[] = {
 *           { "breaker_allow_record_closed", op_allow_record, 10.0 },
 *           { 0 } };
 *   static void metrics(void) { bench_metric("breaker_bytes", 192, "bytes", 256); }
 *   BENCH_MAIN(ops, metrics)
 *
 * Without arguments each op is calibrated to ~50 ms a run and run 5 times;
 * the program prints one tab-separated line per op:
 *   op  NAME  MEDIAN_NS_PER_OP  GOAL_NS (0: none)  RUN1 ... RUN5
 * and one per metric:  metric  NAME  VALUE  UNIT  GOAL (0: none)
 * `--list` prints the op names; `--op NAME --iters N` runs one op once with
 * N iterations and prints nothing (scripts/bench.sh runs that under callgrind
 * twice and divides the difference in instructions by the difference in N).
 * For a multi-threaded op, iters is per thread and the returned time is the
 * wall time of the threads' loops, so the figure is ns/op per thread.
 */
#ifndef FAULTLINE_BENCH_H
#define FAULTLINE_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct bench_op {
	const char *name;
	uint64_t (*run)(uint64_t iters);
	double goal_ns; /* the goal in ns/op, 0 when none */
};

/* Keeps results alive so the compiler cannot drop the benchmarked work. */
static volatile uint64_t bench_sink;

static inline uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void bench_metric(const char *name, double value, const char *unit, double goal)
{
	printf("metric\t%s\t%.6g\t%s\t%.6g\n", name, value, unit, goal);
	fflush(stdout);
}

static inline int bench__cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static inline void bench__one(const struct bench_op *op)
{
	enum { RUNS = 5 };
	uint64_t iters = 1000, ns;
	double runs[RUNS], sorted[RUNS];

	/* Calibrate: grow iters until one run takes at least 50 ms. */
	for (;;) {
		ns = op->run(iters);
		if (ns >= 50000000ull || iters >= (1ull << 40))
			break;
		iters = ns < 1000000 ? iters * 10 : (uint64_t)((double)iters * 5.5e7 / (double)ns);
	}
	for (int i = 0; i < RUNS; i++)
		runs[i] = (double)op->run(iters) / (double)iters;
	memcpy(sorted, runs, sizeof(runs));
	qsort(sorted, RUNS, sizeof(double), bench__cmp);
	printf("op\t%s\t%.3f\t%.6g", op->name, sorted[RUNS / 2], op->goal_ns);
	for (int i = 0; i < RUNS; i++)
		printf("\t%.3f", runs[i]);
	printf("\n");
	fflush(stdout);
}

static inline int bench__main(const struct bench_op *ops, void (*metrics)(void), int argc,
			      char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--list") == 0) {
		for (const struct bench_op *op = ops; op->name; op++)
			printf("%s\n", op->name);
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "--op") == 0 && strcmp(argv[3], "--iters") == 0) {
		for (const struct bench_op *op = ops; op->name; op++) {
			if (strcmp(op->name, argv[2]) == 0) {
				op->run(strtoull(argv[4], NULL, 10));
				return 0;
			}
		}
		fprintf(stderr, "%s: no op named '%s'\n", argv[0], argv[2]);
		return 2;
	}
	if (argc != 1) {
		fprintf(stderr, "usage: %s [--list | --op NAME --iters N]\n", argv[0]);
		return 2;
	}
	for (const struct bench_op *op = ops; op->name; op++)
		bench__one(op);
	if (metrics)
		metrics();
	return 0;
}

#define BENCH_MAIN(ops, metrics)                                                                   \
	int main(int argc, char **argv)                                                            \
	{                                                                                          \
		return bench__main(ops, metrics, argc, argv);                                      \
	}

#endif
