#include "resilience/keyset.h"

#include <errno.h>
#include <string.h>

int rs__keyset_init(struct rs__keyset *ks, const struct rs_alloc *alloc, size_t capacity,
		    size_t key_max, uint64_t seed)
{
	size_t tsize = 2, per_slot = sizeof(*ks->hash) + sizeof(*ks->keylen) + key_max;
	unsigned char *block;

	memset(ks, 0, sizeof(*ks));
	if (capacity > SIZE_MAX / 2 / sizeof(*ks->index) || capacity > SIZE_MAX / per_slot)
		return -ENOMEM;
	while (tsize < 2 * capacity)
		tsize *= 2;
	ks->alloc = alloc;
	ks->index = rs__calloc(alloc, tsize, sizeof(*ks->index));
	/* One block for the per-slot parts: hashes (8-byte aligned, first),
	 * lengths, then the key arena. */
	block = rs__calloc(alloc, capacity, per_slot);
	if (!ks->index || !block) {
		rs__free(alloc, block);
		rs__free(alloc, ks->index);
		ks->index = NULL;
		return -ENOMEM;
	}
	ks->hash = (uint64_t *)(void *)block;
	ks->keylen = (uint32_t *)(void *)(block + capacity * sizeof(*ks->hash));
	ks->keys = block + capacity * (sizeof(*ks->hash) + sizeof(*ks->keylen));
	ks->key_max = key_max;
	ks->mask = tsize - 1;
	ks->seed = seed;
	return 0;
}

void rs__keyset_free(struct rs__keyset *ks)
{
	rs__free(ks->alloc, ks->hash); /* the per-slot block */
	rs__free(ks->alloc, ks->index);
	ks->hash = NULL;
	ks->keylen = NULL;
	ks->keys = NULL;
	ks->index = NULL;
}

uint64_t rs__keyset_hash(const struct rs__keyset *ks, const void *key, size_t keylen)
{
	const unsigned char *k = key;
	uint64_t h = 0xcbf29ce484222325ull ^ ks->seed;

	for (size_t i = 0; i < keylen; i++) {
		h ^= k[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

size_t rs__keyset_lookup(const struct rs__keyset *ks, uint64_t hash, const void *key, size_t keylen,
			 int *found)
{
	size_t i = hash & ks->mask;

	for (;; i = (i + 1) & ks->mask) {
		uint32_t s = ks->index[i];

		if (s == 0) {
			*found = 0;
			return i;
		}
		if (ks->hash[s - 1] == hash && ks->keylen[s - 1] == keylen &&
		    memcmp(rs__keyset_key(ks, s - 1), key, keylen) == 0) {
			*found = 1;
			return i;
		}
	}
}

void rs__keyset_insert(struct rs__keyset *ks, size_t pos, uint32_t slot, uint64_t hash,
		       const void *key, size_t keylen)
{
	ks->hash[slot] = hash;
	ks->keylen[slot] = (uint32_t)keylen;
	memcpy(ks->keys + (size_t)slot * ks->key_max, key, keylen);
	ks->index[pos] = slot + 1;
}

void rs__keyset_remove(struct rs__keyset *ks, size_t pos)
{
	size_t i = pos, j = pos;

	for (;;) {
		uint32_t s;
		size_t home;

		j = (j + 1) & ks->mask;
		s = ks->index[j];
		if (s == 0)
			break;
		home = ks->hash[s - 1] & ks->mask;
		if (((j - home) & ks->mask) >= ((j - i) & ks->mask)) {
			ks->index[i] = s;
			i = j;
		}
	}
	ks->index[i] = 0;
}
