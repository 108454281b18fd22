/* Internal to the core: a fixed set of byte-string keys, each bound to a
 * slot number of its owner, found by hash.  The owner (rs_coalesce,
 * rs_idem) keeps its per-slot state in its own array and uses the same
 * slot numbers here.
 *
 * Layout: keys live in an arena, key_max bytes per slot, with their hash
 * and length beside them; `index` is an open-addressing table of slot
 * numbers + 1 (0 = empty), linear probing, at least twice the capacity so
 * it is at most half full; removal shifts the rest of a probe run back, so
 * no tombstones are needed.  Keys are hashed with FNV-1a and a 64-bit
 * finaliser, seeded per object.
 *
 * Ownership: rs__keyset_init makes two allocations through `alloc` (the
 * index, and one block for hashes, lengths and keys), all or nothing;
 * rs__keyset_free releases them.  Not thread-safe; the owner serialises. */
#ifndef RESILIENCE_KEYSET_H
#define RESILIENCE_KEYSET_H

#include <stddef.h>
#include <stdint.h>

#include "resilience/alloc.h"

struct rs__keyset {
	const struct rs_alloc *alloc;
	uint32_t *index;      /* slot + 1, or 0 */
	uint64_t *hash;	      /* per slot */
	uint32_t *keylen;     /* per slot */
	unsigned char *keys;  /* per slot, key_max bytes each */
	size_t key_max, mask; /* mask = index size - 1 */
	uint64_t seed;
};

/* Sizes the set for `capacity` slots of keys up to key_max bytes (both
 * >= 1, validated by the owner).  0 or -ENOMEM (nothing allocated). */
int rs__keyset_init(struct rs__keyset *ks, const struct rs_alloc *alloc, size_t capacity,
		    size_t key_max, uint64_t seed);

/* Releases what init allocated; accepts a zeroed set. */
void rs__keyset_free(struct rs__keyset *ks);

/* The hash of a key under this set's seed. */
uint64_t rs__keyset_hash(const struct rs__keyset *ks, const void *key, size_t keylen);

/* The index position of the key (*found = 1; its slot is
 * ks->index[pos] - 1), or of the empty cell where it would go (*found = 0).
 * keylen <= key_max. */
size_t rs__keyset_lookup(const struct rs__keyset *ks, uint64_t hash, const void *key, size_t keylen,
			 int *found);

/* Binds the key to `slot` at the empty position `pos` that lookup
 * returned for it (no other insert or remove in between). */
void rs__keyset_insert(struct rs__keyset *ks, size_t pos, uint32_t slot, uint64_t hash,
		       const void *key, size_t keylen);

/* Empties position pos (a found key). */
void rs__keyset_remove(struct rs__keyset *ks, size_t pos);

/* The key bound to slot, keylen[slot] bytes. */
static inline const unsigned char *rs__keyset_key(const struct rs__keyset *ks, uint32_t slot)
{
	return ks->keys + (size_t)slot * ks->key_max;
}

#endif
