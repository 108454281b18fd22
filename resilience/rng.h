/* A small seeded PRNG with per-object state: xoshiro256** (Blackman and
 * Vigna), seeded through splitmix64.  Every jittered value in the core is
 * drawn from an rs_rng owned by the object that jitters, so a run replays
 * exactly from its seed.
 *
 * The struct is public and caller-embedded (no allocation).  Not thread-safe:
 * one rs_rng per thread or per object guarded by its owner.
 */
#ifndef RESILIENCE_RNG_H
#define RESILIENCE_RNG_H

#include <stdint.h>

struct rs_rng {
	uint64_t s[4];
};

/* Seeds the generator; any seed, including 0, gives a valid state. */
void rs_rng_seed(struct rs_rng *r, uint64_t seed);

static inline uint64_t rs__rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* Next 64 random bits. */
static inline uint64_t rs_rng_next(struct rs_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rs__rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rs__rotl(s[3], 45);
	return result;
}

/* Uniform double in [0, 1) with 53 random bits. */
static inline double rs_rng_double(struct rs_rng *r)
{
	return (double)(rs_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n); n == 0 returns 0.  Lemire's multiply-shift
 * with rejection, so the result is exactly uniform. */
uint64_t rs_rng_below(struct rs_rng *r, uint64_t n);

/* Uniform integer in [lo, hi] (inclusive); requires lo <= hi. */
uint64_t rs_rng_range(struct rs_rng *r, uint64_t lo, uint64_t hi);

#endif
