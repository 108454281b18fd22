#include "resilience/rng.h"

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void rs_rng_seed(struct rs_rng *r, uint64_t seed)
{
	uint64_t x = seed;

	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

uint64_t rs_rng_below(struct rs_rng *r, uint64_t n)
{
	unsigned __int128 m;
	uint64_t lo, threshold;

	if (n == 0)
		return 0;
	m = (unsigned __int128)rs_rng_next(r) * n;
	lo = (uint64_t)m;
	if (lo < n) {
		threshold = -n % n;
		while (lo < threshold) {
			m = (unsigned __int128)rs_rng_next(r) * n;
			lo = (uint64_t)m;
		}
	}
	return (uint64_t)(m >> 64);
}

uint64_t rs_rng_range(struct rs_rng *r, uint64_t lo, uint64_t hi)
{
	if (hi - lo == UINT64_MAX)
		return rs_rng_next(r);
	return lo + rs_rng_below(r, hi - lo + 1);
}
