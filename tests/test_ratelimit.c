/* Token bucket and AIMD limiter: the burst/rate bound over every sliding
 * interval of a bursty seeded arrival pattern, exact wait hints, and the
 * AIMD rate staying in [min, max] with additive and multiplicative steps. */
#include "tests/tap.h"

#include <errno.h>
#include <math.h>

#include "resilience/clock.h"
#include "resilience/ratelimit.h"
#include "resilience/rng.h"

#define MS  RS_NS_PER_MS
#define SEC RS_NS_PER_SEC

static void bad_options(void)
{
	static const struct {
		struct rs_ratelimit_opts o;
		const char *field;
	} bucket[] = {
		{ { .rate = 0, .burst = 10 }, "rate" },
		{ { .rate = -5, .burst = 10 }, "rate" },
		{ { .rate = NAN, .burst = 10 }, "rate" },
		{ { .rate = INFINITY, .burst = 10 }, "rate" },
		{ { .rate = 10, .burst = 0 }, "burst" },
		{ { .rate = 10, .burst = (1ull << 53) + 1 }, "burst" },
	};
	const struct rs_ratelimit_aimd_opts good = {
		.initial_rate = 100,
		.min_rate = 10,
		.max_rate = 200,
		.burst = 10,
		.target_latency_ns = 50 * MS,
		.interval_ns = SEC,
		.increase = 10,
		.decrease = 0.5,
	};
	struct {
		struct rs_ratelimit_aimd_opts o;
		const char *field;
	} aimd[12];
	size_t na = 0;
	struct rs_ratelimit rl;
	struct rs_ratelimit_aimd a;
	struct rs_err err;
	int rc;

	for (size_t i = 0; i < sizeof(bucket) / sizeof(bucket[0]); i++) {
		err.msg[0] = '\0';
		rc = rs_ratelimit_init(&rl, &bucket[i].o, &err);
		ok(rc == -EINVAL && strstr(err.msg, bucket[i].field),
		   "bucket rate %g burst %llu: -EINVAL naming %s (%s)", bucket[i].o.rate,
		   (unsigned long long)bucket[i].o.burst, bucket[i].field, err.msg);
	}

#define AIMD(field_, value_, name_)                                                                \
	do {                                                                                       \
		aimd[na].o = good;                                                                 \
		aimd[na].o.field_ = value_;                                                        \
		aimd[na].field = name_;                                                            \
		na++;                                                                              \
	} while (0)
	AIMD(min_rate, 0, "min_rate");
	AIMD(max_rate, 5, "max_rate"); /* below min_rate 10 */
	AIMD(max_rate, NAN, "max_rate");
	AIMD(initial_rate, 300, "initial_rate");
	AIMD(initial_rate, 5, "initial_rate");
	AIMD(target_latency_ns, 0, "target_latency_ns");
	AIMD(interval_ns, 0, "interval_ns");
	AIMD(increase, 0, "increase");
	AIMD(decrease, 1, "decrease");
	AIMD(decrease, 0, "decrease");
	AIMD(burst, 0, "burst");
#undef AIMD
	for (size_t i = 0; i < na; i++) {
		err.msg[0] = '\0';
		rc = rs_ratelimit_aimd_init(&a, &aimd[i].o, &err);
		ok(rc == -EINVAL && strstr(err.msg, aimd[i].field),
		   "aimd: bad %s gives -EINVAL naming it (%s)", aimd[i].field, err.msg);
	}
	is_int(rs_ratelimit_aimd_init(&a, &good, &err), 0, "aimd: the good options are accepted");

	if (rs_ratelimit_init(&rl, &(struct rs_ratelimit_opts){ .rate = 10, .burst = 5 }, &err))
		bail_out("init: %s", err.msg);
	rc = rs_ratelimit_set_rate(&rl, 0, 0, &err);
	ok(rc == -EINVAL && strstr(err.msg, "rate") && rs_ratelimit_rate(&rl) == 10,
	   "set_rate(0) is -EINVAL and leaves the rate at 10 (%s)", err.msg);
	rs_ratelimit_release(&rl);
	rs_ratelimit_aimd_release(&a);
}

static void burst_and_hint(void)
{
	struct rs_ratelimit rl;
	struct rs_err err;
	uint64_t t0 = 5 * SEC, wait = 0;
	int admitted = 0;

	if (rs_ratelimit_init(&rl, &(struct rs_ratelimit_opts){ .rate = 10, .burst = 50 }, &err))
		bail_out("init: %s", err.msg);
	for (int i = 0; i < 50; i++)
		admitted += rs_ratelimit_try_acquire(&rl, t0, NULL);
	is_int(admitted, 50,
	       "a fresh bucket (rate 10/s, burst 50) admits its full burst of 50 at once");
	ok(!rs_ratelimit_try_acquire(&rl, t0, &wait), "the 51st at the same instant is rejected");
	is_int((long long)wait, 100 * (long long)MS,
	       "its wait hint is exactly 100 ms (1 token at 10/s)");
	ok(!rs_ratelimit_try_acquire(&rl, t0 + wait - 1, NULL),
	   "1 ns before the hint: still rejected");
	ok(rs_ratelimit_try_acquire(&rl, t0 + wait, &wait) && wait == 0,
	   "at the hint: admitted, hint 0");
	ok(!rs_ratelimit_try_acquire_n(&rl, 51, t0 + 100 * SEC, &wait) && wait == UINT64_MAX,
	   "asking for 51 > burst never succeeds (hint UINT64_MAX)");
	ok(rs_ratelimit_try_acquire_n(&rl, 50, t0 + 100 * SEC, NULL),
	   "after 100 s idle the bucket is full again (50 at once)");

	/* Saturating demand, one attempt per ms for 10 s: burst + rate * T. */
	if (rs_ratelimit_init(&rl, &(struct rs_ratelimit_opts){ .rate = 10, .burst = 10 }, &err))
		bail_out("init: %s", err.msg);
	admitted = 0;
	for (int i = 0; i < 10; i++)
		admitted += rs_ratelimit_try_acquire(&rl, 0, NULL);
	for (uint64_t t = MS; t <= 10 * SEC; t += MS)
		admitted += rs_ratelimit_try_acquire(&rl, t, NULL);
	is_int(
	    admitted, 110,
	    "10/s burst 10, the burst at 0 then an attempt every ms to 10 s: exactly 110 admitted");
	is_int((long long)rs_ratelimit_admitted(&rl), 110, "admitted counter is 110");
	is_int((long long)rs_ratelimit_rejected(&rl), 10010 - 110, "rejected counter is 9900");
}

/* Random rates, bursts and times: the hint is exact every time. */
static void hint_exact(void)
{
	struct rs_rng r;
	struct rs_ratelimit rl;
	struct rs_err err;
	int early_ok = 0, late_fail = 0, checked = 0;

	rs_rng_seed(&r, 11);
	for (int round = 0; round < 200; round++) {
		double rate = 0.5 + rs_rng_double(&r) * 5000;
		uint64_t burst = rs_rng_range(&r, 1, 10), t = rs_rng_below(&r, 1000 * SEC), w;

		if (rs_ratelimit_init(
			&rl, &(struct rs_ratelimit_opts){ .rate = rate, .burst = burst }, &err))
			bail_out("init: %s", err.msg);
		for (int i = 0; i < 100; i++) {
			t += rs_rng_below(&r, (uint64_t)(2e9 / rate));
			if (rs_ratelimit_try_acquire(&rl, t, &w))
				continue;
			checked++;
			/* A failed try in between must not move the hint. */
			early_ok += rs_ratelimit_try_acquire(&rl, t + w - 1, NULL);
			early_ok += rs_ratelimit_try_acquire(&rl, t + w / 2, NULL);
			late_fail += !rs_ratelimit_try_acquire(&rl, t + w, NULL);
			t += w;
		}
	}
	ok(checked > 1000 && early_ok == 0 && late_fail == 0,
	   "over %d rejections (200 random rates/bursts): never admitted before the hint (%d), "
	   "always at it (%d failures)",
	   checked, early_ok, late_fail);
}

/* Bursty seeded arrivals for 60 simulated seconds; checks every interval
 * [t0, t0 + T] that starts at an admission (the worst case) for several T. */
static void sliding_bound(void)
{
	enum { MAXA = 20000 };
	static uint64_t adm[MAXA];
	const double rate = 100;
	const uint64_t burst = 20, horizon = 60 * SEC;
	static const uint64_t Ts[] = { 1 * MS,	10 * MS,  100 * MS, 250 * MS, 1 * SEC,
				       5 * SEC, 10 * SEC, 30 * SEC, 60 * SEC };
	struct rs_ratelimit rl;
	struct rs_rng r;
	struct rs_err err;
	uint64_t t = 0, arrivals = 0, first_burst = 0;
	size_t n = 0;

	rs_rng_seed(&r, 2024);
	if (rs_ratelimit_init(&rl, &(struct rs_ratelimit_opts){ .rate = rate, .burst = burst },
			      &err))
		bail_out("init: %s", err.msg);
	while (t < horizon) {
		/* ON: 50..500 ms at ~2000/s; OFF: 0.1..2 s at ~20/s. */
		uint64_t on_end = t + rs_rng_range(&r, 50 * MS, 500 * MS);
		uint64_t off_end = on_end + rs_rng_range(&r, 100 * MS, 2 * SEC);

		while (t < off_end && t < horizon) {
			double mean = t < on_end ? 0.5e6 : 50e6;

			if (rs_ratelimit_try_acquire(&rl, t, NULL)) {
				if (n == MAXA)
					bail_out("more than %d admissions", MAXA);
				adm[n++] = t;
			}
			if (arrivals++ < burst && n == arrivals)
				first_burst++;
			t += 1 + (uint64_t)(-log(1 - rs_rng_double(&r)) * mean);
		}
	}
	diag("%llu arrivals, %zu admitted over 60 s at rate 100/s burst 20",
	     (unsigned long long)arrivals, n);
	is_int((long long)first_burst, (long long)burst,
	       "the first 20 arrivals (within a few ms of start) are all admitted: the full burst");
	for (size_t k = 0; k < sizeof(Ts) / sizeof(Ts[0]); k++) {
		uint64_t T = Ts[k], worst = 0;
		double bound = burst + rate * (double)T / (double)SEC;

		for (size_t i = 0, j = 0; i < n; i++) {
			if (j < i)
				j = i;
			while (j < n && adm[j] - adm[i] <= T)
				j++;
			if (j - i > worst)
				worst = j - i;
		}
		ok((double)worst <= bound,
		   "every interval of %.3f s holds at most burst + rate*T = %.1f admissions (worst "
		   "%llu)",
		   (double)T / SEC, bound, (unsigned long long)worst);
		if (T == SEC)
			ok(worst >= rate,
			   "the limit binds: some 1 s interval admits >= rate = 100 (%llu)",
			   (unsigned long long)worst);
	}
}

static void aimd(void)
{
	const struct rs_ratelimit_aimd_opts o = {
		.initial_rate = 100,
		.min_rate = 10,
		.max_rate = 200,
		.burst = 10,
		.target_latency_ns = 50 * MS,
		.interval_ns = SEC,
		.increase = 10,
		.decrease = 0.5,
	};
	static const double down[] = { 50, 25, 12.5, 10, 10 };
	struct rs_ratelimit_aimd a;
	struct rs_err err;
	struct rs_rng r;
	double seen[5] = { 0 };
	int changes = 0, at_boundary = 1, in_bounds = 1, steps_ok = 1, ok_seq = 1;
	uint64_t t = 0;

	if (rs_ratelimit_aimd_init(&a, &o, &err))
		bail_out("aimd init: %s", err.msg);
	is_double(rs_ratelimit_aimd_rate(&a), 100, 0, "aimd starts at initial_rate 100");
	/* Latency 100 ms > target 50 ms, a sample every 100 ms for 5 s. */
	for (; t <= 5 * SEC; t += 100 * MS) {
		int d = rs_ratelimit_aimd_record(&a, 100 * MS, t);

		if (d) {
			changes++;
			at_boundary &= t % SEC == 0;
		}
		if (t % SEC == 0 && t)
			seen[t / SEC - 1] = rs_ratelimit_aimd_rate(&a);
	}
	for (int i = 0; i < 5; i++)
		ok_seq &= seen[i] == down[i];
	ok(ok_seq,
	   "latency above target halves the rate once per 1 s interval: "
	   "%g %g %g %g %g (expected 50 25 12.5 10 10, min 10)",
	   seen[0], seen[1], seen[2], seen[3], seen[4]);
	ok(changes == 4 && at_boundary, "4 changes in 5 s, each exactly at an interval boundary");
	is_int((long long)rs_ratelimit_aimd_decreases(&a), 4,
	       "4 decreases counted (the clamped one not)");

	/* The limiter admits at the lowered rate: 10/s burst 10 over 10 s. */
	{
		int admitted = 0;
		uint64_t s0 = t + 100 * SEC;

		for (int i = 0; i < 10; i++)
			admitted += rs_ratelimit_aimd_try_acquire(&a, s0, NULL);
		for (uint64_t u = s0 + MS; u <= s0 + 10 * SEC; u += MS)
			admitted += rs_ratelimit_aimd_try_acquire(&a, u, NULL);
		is_int(admitted, 110, "at 10/s (burst 10) it admits exactly 110 in [0, 10 s]");
	}

	/* Latency 20 ms <= target: +10 per interval up to 200. */
	if (rs_ratelimit_aimd_init(&a, &o, &err))
		bail_out("aimd init: %s", err.msg);
	for (t = 0; t <= 5 * SEC; t += 100 * MS)
		(void)rs_ratelimit_aimd_record(&a, 100 * MS, t); /* down to 10 */
	for (t = 5 * SEC + 100 * MS; t <= 30 * SEC; t += 100 * MS) {
		double before = rs_ratelimit_aimd_rate(&a);
		int d = rs_ratelimit_aimd_record(&a, 20 * MS, t);

		if (d > 0 && rs_ratelimit_aimd_rate(&a) != before + 10)
			steps_ok = 0;
		if (t == 14 * SEC)
			is_double(rs_ratelimit_aimd_rate(&a), 100, 1e-9,
				  "latency below target adds 10 per interval: 10 -> 100 after 9 (t "
				  "= 14 s)");
	}
	ok(steps_ok, "every increase is exactly +10 (additive)");
	is_double(rs_ratelimit_aimd_rate(&a), 200, 0, "the rate stops at max_rate 200");

	/* Mean exactly at target counts as "not above": increase. */
	if (rs_ratelimit_aimd_init(&a, &o, &err))
		bail_out("aimd init: %s", err.msg);
	(void)rs_ratelimit_aimd_record(&a, 90 * MS, 0);
	(void)rs_ratelimit_aimd_record(&a, 10 * MS, 500 * MS);
	is_int(rs_ratelimit_aimd_record(&a, 10 * MS, SEC), 1,
	       "an interval whose mean latency equals the target (50 ms) increases the rate");
	is_double(rs_ratelimit_aimd_rate(&a), 110, 0, "100 -> 110");
	is_int(rs_ratelimit_aimd_record(&a, 999 * MS, SEC + 999 * MS), 0,
	       "no adjustment before a full interval has passed (999 ms)");

	/* Random latencies for 1000 s: always within [10, 200], each change +10 or x0.5. */
	if (rs_ratelimit_aimd_init(&a, &o, &err))
		bail_out("aimd init: %s", err.msg);
	rs_rng_seed(&r, 5);
	for (t = 0; t < 1000 * SEC; t += rs_rng_range(&r, 1 * MS, 300 * MS)) {
		double before = rs_ratelimit_aimd_rate(&a), after;
		int d = rs_ratelimit_aimd_record(&a, rs_rng_below(&r, 110 * MS), t);

		after = rs_ratelimit_aimd_rate(&a);
		in_bounds &= after >= 10 && after <= 200;
		if (d > 0)
			steps_ok &= after == fmin(200, before + 10);
		if (d < 0)
			steps_ok &= after == fmax(10, before * 0.5);
		if (!d)
			steps_ok &= after == before;
	}
	ok(in_bounds, "random latencies for 1000 s: the rate never leaves [10, 200]");
	ok(steps_ok && rs_ratelimit_aimd_increases(&a) > 10 && rs_ratelimit_aimd_decreases(&a) > 10,
	   "every change is +10 or x0.5 (clamped); %llu increases, %llu decreases",
	   (unsigned long long)rs_ratelimit_aimd_increases(&a),
	   (unsigned long long)rs_ratelimit_aimd_decreases(&a));
	rs_ratelimit_aimd_release(&a);
}

int main(void)
{
	bad_options();
	burst_and_hint();
	hint_exact();
	sliding_bound();
	aimd();
	done_testing();
	return exit_status();
}
