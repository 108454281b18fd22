/* The seeded PRNG: reproducible from its seed, uniform enough for jitter. */
#include "tests/tap.h"

#include "resilience/rng.h"

int main(void)
{
	struct rs_rng a, b, c;
	int same = 1, differ = 0, in_range = 1;
	double sum = 0;
	enum { N = 100000 };
	long buckets[10] = { 0 };

	plan(7);
	rs_rng_seed(&a, 42);
	rs_rng_seed(&b, 42);
	rs_rng_seed(&c, 43);
	for (int i = 0; i < 1000; i++) {
		uint64_t x = rs_rng_next(&a), y = rs_rng_next(&b), z = rs_rng_next(&c);

		same &= x == y;
		differ += x != z;
	}
	ok(same, "the same seed gives the same 1000 draws");
	ok(differ > 990, "seeds 42 and 43 give different sequences (%d/1000 differ)", differ);

	rs_rng_seed(&a, 0);
	ok(rs_rng_next(&a) != 0 || rs_rng_next(&a) != 0, "seed 0 gives a live state");

	rs_rng_seed(&a, 7);
	for (int i = 0; i < N; i++) {
		double d = rs_rng_double(&a);

		in_range &= d >= 0.0 && d < 1.0;
		sum += d;
		buckets[(int)(d * 10)]++;
	}
	ok(in_range, "rs_rng_double stays in [0, 1) over %d draws", N);
	/* sd of the mean of N U(0,1) is 1/sqrt(12 N) = 0.0009; allow 5 sd. */
	is_double(sum / N, 0.5, 0.0046, "mean of %d uniform draws is 0.5 within 5 sd", N);

	{
		/* Chi-square over 10 buckets, 9 degrees of freedom: p = 0.001 at 27.88. */
		double chi = 0, e = N / 10.0;

		for (int i = 0; i < 10; i++)
			chi += (buckets[i] - e) * (buckets[i] - e) / e;
		ok(chi < 27.88, "deciles are uniform (chi-square %.2f < 27.88)", chi);
	}

	{
		int bad = 0;

		rs_rng_seed(&a, 9);
		for (int i = 0; i < N; i++) {
			uint64_t v = rs_rng_range(&a, 10, 20);

			bad += v < 10 || v > 20;
		}
		bad += rs_rng_below(&a, 0) != 0;
		is_int(bad, 0, "rs_rng_range(10, 20) stays inside its bounds; below(0) is 0");
	}
	return exit_status();
}
