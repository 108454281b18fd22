/* The reference target's item cache: a bounded LRU with per-entry TTL.
 *
 * Keys are byte strings (not necessarily NUL-terminated), values are byte
 * strings; both are copied into the cache on put.  Lookups and inserts are
 * O(1): a chained hash table sized once at fl_cache_new (a power of two
 * >= 2 * max_entries buckets) plus a doubly linked recency list.  The cache
 * is bounded by an entry count and, optionally, by bytes (key + value bytes
 * of every entry); going over either bound evicts from the least recently
 * used end.
 *
 * Time is the caller's: every call that decides freshness takes now_ns
 * (CLOCK_MONOTONIC nanoseconds), never reads a clock.  An entry put at t with
 * ttl_ns = d is a hit for now_ns in [t, t + d) and expired from t + d on
 * (at exactly t + d it is a miss).  An expired entry is removed when a get
 * finds it (counted as `expired` and as a miss), or evicted by the LRU.
 *
 * Threads: none of this locks.  One thread (the target's loop) owns a cache
 * and is the only caller of every function below.
 *
 * Memory: one allocation for the table at fl_cache_new, one per put (key and
 * value stored inline in the entry), freed when the entry leaves.  All go
 * through opts->alloc, so a test can fail them.
 */
#ifndef FAULTLINE_TARGET_CACHE_H
#define FAULTLINE_TARGET_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resilience/alloc.h"
#include "resilience/err.h"

/* ttl_ns for an entry that never expires (only eviction or a flush or
 * fl_cache_expire_all removes it). */
#define FL_CACHE_TTL_NONE UINT64_MAX

/* Upper bound on max_entries (the table is allocated for it up front). */
#define FL_CACHE_MAX_ENTRIES (1u << 26)

struct fl_cache;

struct fl_cache_opts {
	const struct rs_alloc *alloc; /* NULL = libc; borrowed, must outlive the cache */
	size_t max_entries;	      /* 1..FL_CACHE_MAX_ENTRIES */
	size_t max_bytes;	      /* 0 = no byte bound; else key + value bytes of all entries */
};

/* Counters since fl_cache_new (never reset by flushes). */
struct fl_cache_stats {
	uint64_t hits;
	uint64_t misses;    /* includes gets that found an expired entry */
	uint64_t expired;   /* gets that found an expired entry (and removed it) */
	uint64_t evictions; /* entries removed to respect max_entries / max_bytes */
	uint64_t inserts;   /* successful puts (new keys and replacements) */
	uint64_t flushed;   /* entries removed by fl_cache_flush / _flush_prefix */
};

/* Validates opts and allocates an empty cache.  Returns 0 and sets *out
 * (caller-frees with fl_cache_free), -EINVAL with a message naming the bad
 * field, or -ENOMEM; on failure *out is NULL and nothing is leaked. */
int fl_cache_new(struct fl_cache **out, const struct fl_cache_opts *opts,
		 struct rs_err *err) RS_WUR;

/* Frees every entry and the cache; accepts NULL. */
void fl_cache_free(struct fl_cache *c);

/* Looks key up at now_ns.  On a hit returns true, marks the entry most
 * recently used and sets *val / *len (either may be NULL) to the stored
 * value: borrowed, valid until the next fl_cache_put, _flush, _flush_prefix
 * or fl_cache_free on this cache (a get of another key does not move it).
 * On a miss, or when the entry has expired (it is then removed), returns
 * false and leaves *val / *len untouched. */
bool fl_cache_get(struct fl_cache *c, const void *key, size_t key_len, uint64_t now_ns,
		  const void **val, size_t *len);

/* Stores a copy of key and value, expiring at now_ns + ttl_ns (saturating;
 * FL_CACHE_TTL_NONE never expires), as the most recently used entry,
 * replacing an entry with the same key.  Evicts least recently used entries
 * until the count and byte bounds hold.  Returns 0; -E2BIG when key_len +
 * len alone exceeds max_bytes (nothing changes); -ENOMEM when the entry
 * cannot be allocated (an old entry for the key is then removed, so a
 * stale value is never served after a failed update). */
int fl_cache_put(struct fl_cache *c, const void *key, size_t key_len, const void *val, size_t len,
		 uint64_t ttl_ns, uint64_t now_ns) RS_WUR;

/* Removes one key; returns true when it was present. */
bool fl_cache_delete(struct fl_cache *c, const void *key, size_t key_len);

/* Removes every entry; returns how many were removed.  O(entries). */
size_t fl_cache_flush(struct fl_cache *c);

/* Removes every entry whose key starts with the prefix_len bytes of prefix
 * (prefix_len 0 removes all); returns how many were removed.  O(entries). */
size_t fl_cache_flush_prefix(struct fl_cache *c, const void *prefix, size_t prefix_len);

/* Sets every entry's expiry to the same instant at_ns, earlier or later
 * than it was: the synchronized-TTL stampede, every key misses from at_ns
 * on.  Entries stay in place until a get or the LRU removes them.  Returns
 * the number of entries changed.  O(entries). */
size_t fl_cache_expire_all(struct fl_cache *c, uint64_t at_ns);

/* Entries held, and their key + value bytes (expired entries not yet
 * removed are included). */
size_t fl_cache_count(const struct fl_cache *c);
size_t fl_cache_bytes(const struct fl_cache *c);

/* The counters; borrowed, updated in place, valid until fl_cache_free. */
const struct fl_cache_stats *fl_cache_stats(const struct fl_cache *c);

#endif
