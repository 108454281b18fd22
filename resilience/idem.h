/* An idempotency table: remembers, per request key, that an operation ran
 * and what it answered, so a retried or duplicated request gets the stored
 * answer instead of running the operation twice.
 *
 *   switch (rs_idem_check(t, key, keylen, now_ns, &dup)) {
 *   case RS_IDEM_FIRST_SEEN:  run it; rs_idem_complete(t, key, keylen,
 *                             status, bytes, len, now_ns), or rs_idem_abort
 *                             when it failed in a way a retry may redo;
 *   case RS_IDEM_IN_PROGRESS: a duplicate of a request still running: reject
 *                             it (409, "try later") rather than run it;
 *   case RS_IDEM_DUPLICATE:   answer with dup.status and dup.data/dup.len;
 *   case -ENOSPC:             every entry is in progress: refuse (503);
 *   }
 *
 * Lifetime of an entry: FIRST_SEEN creates it in progress; complete stores
 * the result (at most result_max bytes) and starts its ttl, counted from
 * the completion: at completion + ttl_ns - 1 it is still a duplicate, from
 * completion + ttl_ns on it has expired and the key is first-seen again.
 * Entries in progress never expire and are never evicted; the caller must
 * complete or abort each one.
 *
 * Bounded: `capacity` entries, all preallocated by rs_idem_new, keys up to
 * key_max bytes and results up to result_max bytes copied into them; no
 * allocation afterwards, O(1) average lookup (open addressing).  When a new
 * key finds the table full, the oldest completed entry (the one completed
 * longest ago, i.e. the next to expire; a duplicate hit does not refresh
 * it) is evicted; when every entry is in progress, -ENOSPC.
 *
 * Threads: none.  One thread (event loop) owns a table and makes every
 * call on it, rs_idem_expo included; a caller sharing it between threads
 * wraps every call in its own lock.  The clock is the caller's: now_ns is
 * CLOCK_MONOTONIC nanoseconds, non-decreasing from call to call.
 */
#ifndef RESILIENCE_IDEM_H
#define RESILIENCE_IDEM_H

#include <stddef.h>
#include <stdint.h>

#include "resilience/alloc.h"
#include "resilience/err.h"
#include "resilience/expo.h"

#define RS_IDEM_NAME_MAX     48 /* including the NUL */
#define RS_IDEM_CAPACITY_MAX (1u << 24)
#define RS_IDEM_KEY_MAX	     4096
#define RS_IDEM_RESULT_MAX   (1u << 20)

struct rs_idem;

struct rs_idem_opts {
	const struct rs_alloc *alloc; /* NULL = libc; borrowed, must outlive the table */
	const char *name;	      /* 1..47 bytes, copied; the `name` label */
	size_t capacity;	      /* entries, 1..RS_IDEM_CAPACITY_MAX */
	size_t key_max;		      /* longest key in bytes, 1..RS_IDEM_KEY_MAX */
	size_t result_max;	      /* longest stored result, 0..RS_IDEM_RESULT_MAX */
	uint64_t ttl_ns;	      /* > 0: how long a completed result is remembered */
	uint64_t seed;		      /* hash seed; vary it when clients choose the keys */
};

enum rs_idem_verdict {
	RS_IDEM_FIRST_SEEN = 1,	 /* new key: run the operation, then complete */
	RS_IDEM_IN_PROGRESS = 2, /* the same key is running now: do not run it */
	RS_IDEM_DUPLICATE = 3,	 /* completed before: the stored result is in *dup */
};

/* A stored result, as rs_idem_check returns it for a duplicate.  `data` is
 * borrowed from the table: valid until the next call that changes the
 * table (check, complete, abort, free); copy what you keep. */
struct rs_idem_result {
	int status;
	const void *data;
	size_t len;
};

struct rs_idem_stats {
	uint64_t first_seen;  /* checks that returned FIRST_SEEN */
	uint64_t duplicates;  /* checks that returned DUPLICATE */
	uint64_t in_progress; /* checks that returned IN_PROGRESS */
	uint64_t expired;     /* completed entries dropped when their ttl ran out */
	uint64_t evicted;     /* completed entries dropped early to make room */
	uint64_t full;	      /* checks refused with -ENOSPC */
	size_t entries;	      /* entries held now, in progress or completed */
	size_t running;	      /* of which in progress */
};

/* Validates opts and allocates the whole table.  Returns 0 and sets *out
 * (caller-frees with rs_idem_free), -EINVAL with a message naming the bad
 * field, or -ENOMEM; on failure *out is NULL and nothing is leaked.  Any
 * thread. */
int rs_idem_new(struct rs_idem **out, const struct rs_idem_opts *opts, struct rs_err *err) RS_WUR;

/* Frees the table; accepts NULL. */
void rs_idem_free(struct rs_idem *t);

/* Looks `key` (keylen bytes, borrowed for the call) up at now_ns; first
 * drops the completed entries whose ttl has run out.  Returns
 * RS_IDEM_FIRST_SEEN (an in-progress entry was created, evicting the oldest
 * completed entry when the table was full), RS_IDEM_IN_PROGRESS,
 * RS_IDEM_DUPLICATE (fills *dup), -ENOSPC (new key, table full of entries
 * in progress; nothing created; counted), or -EINVAL (keylen 0 or above
 * key_max, dup NULL).  Never allocates. */
int rs_idem_check(struct rs_idem *t, const void *key, size_t keylen, uint64_t now_ns,
		  struct rs_idem_result *dup) RS_WUR;

/* Stores the result of the operation for a key in progress: status and len
 * bytes of data (copied; data may be NULL when len is 0), remembered until
 * now_ns + ttl_ns.  Returns 0, -ENOENT when the key has no entry,
 * -EALREADY when it is already completed, -EMSGSIZE when len exceeds
 * result_max (the entry stays in progress: abort it or complete it again
 * with a shorter result).  Never allocates. */
int rs_idem_complete(struct rs_idem *t, const void *key, size_t keylen, int status,
		     const void *data, size_t len, uint64_t now_ns) RS_WUR;

/* Forgets a key in progress whose operation failed without an answer worth
 * repeating, so the next check of the key is first-seen again and may run
 * it.  Returns 0, -ENOENT when the key has no entry, -EALREADY when it is
 * completed (completed entries leave by expiry or eviction only). */
int rs_idem_abort(struct rs_idem *t, const void *key, size_t keylen) RS_WUR;

/* Counters since creation and the current occupancy. */
void rs_idem_stats(const struct rs_idem *t, struct rs_idem_stats *out);

/* Writes resilience_idempotency_duplicates_total{name} (counter: requests
 * not run because of an earlier one with the same key, DUPLICATE and
 * IN_PROGRESS verdicts together) and resilience_idempotency_entries{name}
 * (gauge: entries held) for the n tables in objs (borrowed). */
void rs_idem_expo(struct rs_expo *e, const struct rs_idem *const *objs, size_t n);

#endif
