/* Request coalescing per key, for one event loop.
 *
 * When many requests want the same thing at once (a cache entry that just
 * expired), the first one for a key becomes the leader and does the work;
 * the requests that arrive for that key while the work is in flight join
 * it and are answered with the leader's result when the leader calls
 * rs_coalesce_finish, so a stampede of M requests costs one computation.
 *
 * No allocation after rs_coalesce_new: the table of in-flight keys has a
 * fixed capacity (keys up to key_max bytes, copied into it), and each
 * request brings its own struct rs_coalesce_waiter, embedded in the
 * caller's request object the way libuv requests are.  When the table is
 * full a new key is refused with -ENOSPC (counted): the caller does that
 * work uncoalesced.
 *
 * Threads: none.  Every function on one struct rs_coalesce, its waiters'
 * callbacks and rs_coalesce_expo run on the thread of the loop that owns
 * it; nothing locks.
 */
#ifndef RESILIENCE_COALESCE_H
#define RESILIENCE_COALESCE_H

#include <stddef.h>
#include <stdint.h>

#include "resilience/alloc.h"
#include "resilience/err.h"
#include "resilience/expo.h"

#define RS_COALESCE_NAME_MAX	 48 /* including the NUL */
#define RS_COALESCE_CAPACITY_MAX (1u << 24)
#define RS_COALESCE_KEY_MAX	 4096

struct rs_coalesce;
struct rs_coalesce_waiter;

/* Delivers the result of the computation a waiter was part of.  `status`
 * and `result` (len bytes) are what the leader passed to
 * rs_coalesce_finish; `result` is borrowed for the duration of the call
 * only (copy what you keep).  When it runs, the waiter is no longer linked
 * anywhere and may be freed or reused; the callback may call any function
 * of this module, on any key. */
typedef void (*rs_coalesce_cb)(struct rs_coalesce_waiter *w, int status, const void *result,
			       size_t len);

/* Caller-embedded; set up with rs_coalesce_waiter_init.  `cb` and `data`
 * are the caller's; the other fields are private.  From rs_coalesce_begin
 * until its callback runs or rs_coalesce_cancel returns 0, the waiter must
 * stay valid and must not be passed to begin again. */
struct rs_coalesce_waiter {
	rs_coalesce_cb cb;
	void *data;
	struct rs_coalesce_waiter *next, *prev; /* private */
	void *list;				/* private: where it is linked, or NULL */
};

struct rs_coalesce_opts {
	const struct rs_alloc *alloc; /* NULL = libc; borrowed, must outlive the object */
	const char *name;	      /* 1..47 bytes, copied; the `name` label */
	size_t capacity;	      /* keys in flight at once, 1..RS_COALESCE_CAPACITY_MAX */
	size_t key_max;		      /* longest key in bytes, 1..RS_COALESCE_KEY_MAX */
	uint64_t seed;		      /* hash seed; vary it when clients choose the keys */
};

/* What rs_coalesce_begin made of a request. */
enum rs_coalesce_role {
	RS_COALESCE_LEADER = 1, /* first for its key: do the work, then finish */
	RS_COALESCE_JOINED = 2, /* the key is in flight: wait for the callback */
};

struct rs_coalesce_stats {
	uint64_t leaders;   /* requests that became leaders */
	uint64_t coalesced; /* requests that joined a leader */
	uint64_t full;	    /* requests refused with -ENOSPC */
	size_t in_flight;   /* keys in flight now */
};

/* Validates opts and allocates the table.  Returns 0 and sets *out
 * (caller-frees with rs_coalesce_free), -EINVAL with a message naming the
 * bad field, or -ENOMEM; on failure *out is NULL and nothing is leaked.
 * Any thread. */
int rs_coalesce_new(struct rs_coalesce **out, const struct rs_coalesce_opts *opts,
		    struct rs_err *err) RS_WUR;

/* Frees the table; accepts NULL.  Waiters still linked are not called back
 * (their owners must cancel or drop them first). */
void rs_coalesce_free(struct rs_coalesce *c);

/* Prepares a waiter: sets cb (non-NULL) and data, unlinks the private
 * fields.  Call once before the waiter's first rs_coalesce_begin; after its
 * callback ran (or a successful cancel) it may be reused without this. */
void rs_coalesce_waiter_init(struct rs_coalesce_waiter *w, rs_coalesce_cb cb, void *data);

/* One request for `key` (keylen bytes, copied; borrowed for the call).
 * The waiter `w` is linked in both cases and its callback runs, leader
 * first then the joined waiters in arrival order, when the key's leader
 * calls rs_coalesce_finish, so every request is answered the same way.
 * Returns RS_COALESCE_LEADER (the caller must compute the result and then
 * call rs_coalesce_finish exactly once for the key, also on failure, with
 * an error status), RS_COALESCE_JOINED, -ENOSPC when the key is not in
 * flight and all `capacity` slots are taken (counted as full; w is not
 * linked: do the work uncoalesced), -EINVAL for keylen 0 or above key_max
 * or a waiter without a callback, -EBUSY when w is already waiting.
 * Never allocates.  Loop thread only. */
int rs_coalesce_begin(struct rs_coalesce *c, const void *key, size_t keylen,
		      struct rs_coalesce_waiter *w) RS_WUR;

/* Ends the computation for `key`: frees its slot, then calls back every
 * waiter still linked to it with (status, result, len), so a callback that
 * asks for the same key again becomes a new leader.  `result` is borrowed
 * for the duration of the call.  Returns the number of callbacks made, or
 * -ENOENT when the key is not in flight.  Never allocates.  Loop thread
 * only. */
int rs_coalesce_finish(struct rs_coalesce *c, const void *key, size_t keylen, int status,
		       const void *result, size_t len) RS_WUR;

/* Withdraws a waiter (its request was abandoned): it will not be called
 * back.  The key stays in flight and its leader must still finish it.
 * Returns 0, or -ENOENT when w is not waiting (never linked, already called
 * back).  Loop thread only. */
int rs_coalesce_cancel(struct rs_coalesce *c, struct rs_coalesce_waiter *w) RS_WUR;

/* Counters since creation and the keys in flight now.  Loop thread only. */
void rs_coalesce_stats(const struct rs_coalesce *c, struct rs_coalesce_stats *out);

/* Writes resilience_coalesced_total{name} (counter: requests that joined a
 * leader instead of computing) and resilience_coalesce_in_flight{name}
 * (gauge: keys in flight) for the n tables in objs (borrowed).  Loop thread
 * only. */
void rs_coalesce_expo(struct rs_expo *e, const struct rs_coalesce *const *objs, size_t n);

#endif
