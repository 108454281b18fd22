/* Backoff: every strategy stays inside its documented support with the
 * expected mean, never exceeds the cap, replays from its seed, and returns
 * the deterministic delays when the control block removes jitter. */
#include "tests/tap.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <unistd.h>

#include "resilience/backoff.h"
#include "resilience/clock.h"
#include "resilience/control.h"

#define MS RS_NS_PER_MS

enum { DRAWS = 10000, NSTRAT = 5 };

static char dir[] = "/tmp/fl-backoff-XXXXXX";
static char path[256];

static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

static struct rs_backoff make(enum rs_backoff_strategy s, uint64_t base, uint64_t cap, double mult,
			      uint64_t seed, const struct rs_control_block *control)
{
	struct rs_backoff b;
	struct rs_err err = { "" };

	if (rs_backoff_init(&b,
			    &(struct rs_backoff_opts){ .strategy = s,
						       .base_ns = base,
						       .cap_ns = cap,
						       .multiplier = mult,
						       .seed = seed,
						       .control = control },
			    &err) < 0)
		bail_out("rs_backoff_init: %s", err.msg);
	return b;
}

/* 10,000 draws at attempt 4 of base 10 ms, x2, cap 10 s: t = 80 ms and the
 * cap does not bind (1.2 t = 96 ms).  Checks support and mean. */
static void support_and_mean(void)
{
	static const struct {
		enum rs_backoff_strategy s;
		double lo, hi, mean; /* in units of t */
	} want[] = {
		{ RS_BACKOFF_NONE, 1.0, 1.0, 1.0 },
		{ RS_BACKOFF_FULL, 0.0, 1.0, 0.5 },
		{ RS_BACKOFF_EQUAL, 0.5, 1.0, 0.75 },
		{ RS_BACKOFF_PROPORTIONAL, 0.8, 1.2, 1.0 },
	};
	const uint64_t t = 80 * MS;

	for (size_t k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		struct rs_backoff b = make(want[k].s, 10 * MS, 10000 * MS, 2, 42, NULL);
		uint64_t lo = (uint64_t)(want[k].lo * (double)t),
			 hi = (uint64_t)(want[k].hi * (double)t);
		int outside = 0;
		double sum = 0;

		is_int((long long)rs_backoff_deterministic(&b, 4), (long long)t,
		       "%s: t(4) = 80 ms for base 10 ms x2", rs_backoff_strategy_name(want[k].s));
		for (int i = 0; i < DRAWS; i++) {
			uint64_t d = rs_backoff_next(&b, 4, 0);

			outside += d < lo || d > hi;
			sum += (double)d;
		}
		is_int(outside, 0, "%s: %d draws at t = 80 ms all in [%llu, %llu] ns",
		       rs_backoff_strategy_name(want[k].s), DRAWS, (unsigned long long)lo,
		       (unsigned long long)hi);
		is_double(sum / DRAWS, want[k].mean * (double)t, 0.05 * want[k].mean * (double)t,
			  "%s: mean of %d draws is %.2f t = %.1f ms within 5%%",
			  rs_backoff_strategy_name(want[k].s), DRAWS, want[k].mean,
			  want[k].mean * (double)t / 1e6);
	}

	{
		/* Decorrelated with a fixed prev of 40 ms: U(10 ms, 120 ms), mean 65 ms. */
		struct rs_backoff b =
		    make(RS_BACKOFF_DECORRELATED, 10 * MS, 10000 * MS, 2, 42, NULL);
		int outside = 0;
		double sum = 0;

		for (int i = 0; i < DRAWS; i++) {
			uint64_t d = rs_backoff_next(&b, 4, 40 * MS);

			outside += d < 10 * MS || d > 120 * MS;
			sum += (double)d;
		}
		is_int(outside, 0, "decorrelated: %d draws with prev 40 ms all in [10, 120] ms",
		       DRAWS);
		is_double(sum / DRAWS, 65e6, 0.05 * 65e6,
			  "decorrelated: mean of %d draws with prev 40 ms is 65 ms within 5%%",
			  DRAWS);
	}
	{
		/* Chained as a caller uses it: prev = the previous delay, starting at 0
		 * (read as base: U(base, 3 base)); cap 1 s binds often. */
		struct rs_backoff b = make(RS_BACKOFF_DECORRELATED, 10 * MS, 1000 * MS, 2, 7, NULL);
		uint64_t prev = 0, first = 0;
		int outside = 0, at_cap = 0;

		for (int i = 0; i < DRAWS; i++) {
			uint64_t p = prev > 10 * MS ? prev : 10 * MS;
			uint64_t hi = 3 * p < 1000 * MS ? 3 * p : 1000 * MS;
			uint64_t d = rs_backoff_next(&b, (uint32_t)(i % 20) + 1, prev);

			if (i == 0)
				first = d;
			outside += d < 10 * MS || d > hi;
			at_cap += d == 1000 * MS;
			prev = d % 97 == 0 ? 0 : d; /* restart some sequences */
		}
		is_int(outside, 0,
		       "decorrelated: %d chained draws each in [base, min(cap, 3 prev)] (%d at the "
		       "cap)",
		       DRAWS, at_cap);
		ok(first >= 10 * MS && first <= 30 * MS,
		   "decorrelated: the first retry (prev 0) is in [10, 30] ms, got %llu",
		   (unsigned long long)first);
	}
}

static void deterministic_values(void)
{
	struct rs_backoff b = make(RS_BACKOFF_NONE, 10 * MS, 10000 * MS, 0, 1, NULL);
	static const uint64_t want[] = { 10,  20,   40,	  80,	160,   320,
					 640, 1280, 2560, 5120, 10000, 10000 };
	int bad = 0;

	for (uint32_t n = 1; n <= 12; n++)
		bad += rs_backoff_deterministic(&b, n) != want[n - 1] * MS ||
		       rs_backoff_next(&b, n, 0) != want[n - 1] * MS;
	bad += rs_backoff_deterministic(&b, 0) != 10 * MS;
	is_int(bad, 0,
	       "multiplier 0 means 2: t = 10, 20, 40 ... 5120 ms, then the 10 s cap from n = 11; "
	       "attempt 0 reads as 1");

	b = make(RS_BACKOFF_NONE, 1000, 1000000000000ull, 1.1, 1, NULL);
	bad = 0;
	for (uint32_t n = 1; n <= 100; n++) {
		double x = 1000.0 * pow(1.1, n - 1);

		bad += fabs((double)rs_backoff_deterministic(&b, n) - x) > 1e-9 * x + 1;
	}
	is_int(bad, 0,
	       "multiplier 1.1: t(n) = 1000 * 1.1^(n-1) within 1e-9 for n = 1..100 "
	       "(past the 32-entry table too)");
	b = make(RS_BACKOFF_NONE, 7, 7, 3, 1, NULL);
	ok(rs_backoff_deterministic(&b, 1) == 7 && rs_backoff_deterministic(&b, UINT32_MAX) == 7,
	   "cap equal to base: every delay is the base");
}

static void cap_never_exceeded(void)
{
	for (int s = 0; s < NSTRAT; s++) {
		struct rs_backoff b =
		    make((enum rs_backoff_strategy)s, 3 * MS, 500 * MS, 2.5, (uint64_t)s, NULL);
		uint64_t max = 0, prev = 0;
		int over = 0;

		for (int i = 0; i < DRAWS; i++) {
			uint32_t n =
			    i % 3 == 0 ? UINT32_MAX - (uint32_t)i : (uint32_t)(i % 200) + 1;
			uint64_t d = rs_backoff_next(&b, n, i % 5 == 0 ? UINT64_MAX : prev);

			over += d > 500 * MS;
			max = d > max ? d : max;
			prev = d;
		}
		is_int(over, 0,
		       "%s: %d draws at attempts 1..200 and near 2^32 never exceed the "
		       "500 ms cap (max %.3f ms)",
		       rs_backoff_strategy_name((enum rs_backoff_strategy)s), DRAWS,
		       (double)max / 1e6);
	}
	{
		/* Proportional where t = cap: the clamp puts about half the draws at cap. */
		struct rs_backoff b = make(RS_BACKOFF_PROPORTIONAL, 100 * MS, 100 * MS, 2, 3, NULL);
		int at_cap = 0, below = 0;

		for (int i = 0; i < DRAWS; i++) {
			uint64_t d = rs_backoff_next(&b, 5, 0);

			at_cap += d == 100 * MS;
			below += d < 80 * MS || d > 100 * MS;
		}
		ok(below == 0 && at_cap > 4500 && at_cap < 5500,
		   "proportional at t = cap: draws in [0.8 cap, cap], %d of %d clamped to the cap",
		   at_cap, DRAWS);
	}
}

static void seeds(void)
{
	for (int s = 1; s < NSTRAT; s++) {
		struct rs_backoff a = make((enum rs_backoff_strategy)s, MS, 1000 * MS, 2, 99, NULL);
		struct rs_backoff b = make((enum rs_backoff_strategy)s, MS, 1000 * MS, 2, 99, NULL);
		struct rs_backoff c =
		    make((enum rs_backoff_strategy)s, MS, 1000 * MS, 2, 100, NULL);
		int same = 1, differ = 0;
		uint64_t pa = 0, pb = 0, pc = 0;

		for (int i = 0; i < 1000; i++) {
			uint32_t n = (uint32_t)(i % 8) + 1;

			pa = rs_backoff_next(&a, n, pa);
			pb = rs_backoff_next(&b, n, pb);
			pc = rs_backoff_next(&c, n, pc);
			same &= pa == pb;
			differ += pa != pc;
		}
		ok(same && differ > 900,
		   "%s: seed 99 twice gives the same 1000 delays, seed 100 differs in %d/1000",
		   rs_backoff_strategy_name((enum rs_backoff_strategy)s), differ);
	}
}

static void jitter_removed(void)
{
	struct rs_control *c = NULL;
	struct rs_control_block *blk;
	struct rs_err err = { "" };

	if (!mkdtemp(dir))
		bail_out("cannot create a temporary directory: %s", strerror(errno));
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/control", dir);
	if (rs_control_open(&c, path, RS_CONTROL_CREATE, NULL, &err) < 0)
		bail_out("rs_control_open: %s", err.msg);
	blk = rs_control_block(c);
	ok(rs_control_set_jitter(c, false), "the jitter switch was on and is now off");

	for (int s = 0; s < NSTRAT; s++) {
		struct rs_backoff b =
		    make((enum rs_backoff_strategy)s, 10 * MS, 2000 * MS, 2, (uint64_t)s + 5, blk);
		static const uint64_t want[] = { 10, 20, 40, 80, 160, 320, 640, 1280, 2000, 2000 };
		int bad = 0;
		uint64_t prev = 0;

		for (int rep = 0; rep < 100; rep++)
			for (uint32_t n = 1; n <= 10; n++) {
				uint64_t d = rs_backoff_next(&b, n, prev);

				bad += d != want[n - 1] * MS;
				prev = d;
			}
		is_int(bad, 0,
		       "%s with jitter removed: exactly 10, 20, 40 ... 1280, 2000 ms, 100 times",
		       rs_backoff_strategy_name((enum rs_backoff_strategy)s));
	}
	{
		struct rs_backoff b = make(RS_BACKOFF_FULL, 10 * MS, 2000 * MS, 2, 5, blk);
		int det = 0;

		rs_control_set_jitter(c, true);
		for (int i = 0; i < 100; i++)
			det += rs_backoff_next(&b, 3, 0) == 40 * MS;
		ok(det < 5,
		   "jitter switched back on: full jitter draws vary again (%d/100 equal t)", det);
	}
	rs_control_free(c);
}

static void bad_options(void)
{
	static const struct {
		struct rs_backoff_opts o;
		const char *field;
	} cases[] = {
		{ { .strategy = (enum rs_backoff_strategy)9, .base_ns = 1, .cap_ns = 2 },
		  "strategy" },
		{ { .strategy = (enum rs_backoff_strategy) - 1, .base_ns = 1, .cap_ns = 2 },
		  "strategy" },
		{ { .base_ns = 0, .cap_ns = 2 }, "base_ns" },
		{ { .base_ns = 10, .cap_ns = 9 }, "cap_ns must be >= base_ns" },
		{ { .base_ns = 10, .cap_ns = (uint64_t)-1 }, "cap_ns must be <=" },
		{ { .base_ns = 10, .cap_ns = 20, .multiplier = NAN }, "multiplier" },
		{ { .base_ns = 10, .cap_ns = 20, .multiplier = INFINITY }, "multiplier" },
		{ { .base_ns = 10, .cap_ns = 20, .multiplier = 0.5 }, "multiplier" },
		{ { .base_ns = 10, .cap_ns = 20, .multiplier = -2 }, "multiplier" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rs_backoff b;
		struct rs_err err = { "" };
		int rc = rs_backoff_init(&b, &cases[i].o, &err);

		ok(rc == -EINVAL && strstr(err.msg, cases[i].field) && strstr(err.msg, "backoff: "),
		   "bad option %zu: -EINVAL naming '%s' (%s)", i, cases[i].field, err.msg);
	}
	{
		struct rs_backoff b;

		ok(rs_backoff_init(&b, &(struct rs_backoff_opts){ .base_ns = 10, .cap_ns = 20 },
				   NULL) == 0,
		   "a NULL rs_err is accepted");
		rs_backoff_release(&b);
		rs_backoff_release(&b);
		rs_backoff_release(NULL);
		ok(1, "release twice and release(NULL) are harmless");
	}
}

int main(void)
{
	support_and_mean();
	deterministic_values();
	cap_never_exceeded();
	seeds();
	jitter_removed();
	bad_options();
	done_testing();
	return exit_status();
}
