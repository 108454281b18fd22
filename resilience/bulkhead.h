/* Bulkhead: at most max_concurrent calls in flight, a bounded FIFO of
 * waiters behind them, and a maximum wait.
 *
 * Nothing blocks: a caller that cannot be admitted at once may leave a
 * waiter node in the queue, and the bulkhead calls the node's callback
 * later, from rs_bulkhead_release (the slot is handed to the oldest waiter)
 * or rs_bulkhead_expire (the waiter waited max_wait_ns).  The caller's event
 * loop does the waiting, e.g. with a timer armed at
 * rs_bulkhead_next_deadline().  Waiter nodes are caller-embedded (like
 * libuv requests), so no call allocates; the bulkhead itself is allocated
 * once by rs_bulkhead_new.
 *
 * A slot handed over through a callback is never free in between: in_flight
 * stays at max_concurrent, so a newcomer cannot overtake a waiter.
 *
 * Thread safety: single-threaded by contract.  Every call on one bulkhead,
 * including the callbacks it makes and rs_bulkhead_expo, runs on one thread
 * (one event loop).  Callbacks may call back into the bulkhead (acquire,
 * release, cancel, expire); a callback that releases synchronously recurses,
 * at most max_queue deep.
 */
#ifndef RESILIENCE_BULKHEAD_H
#define RESILIENCE_BULKHEAD_H

#include <stddef.h>
#include <stdint.h>

#include "resilience/alloc.h"
#include "resilience/err.h"
#include "resilience/expo.h"

enum rs_bulkhead_result {
	RS_BULKHEAD_ADMITTED = 0,  /* the caller holds a slot: call rs_bulkhead_release later */
	RS_BULKHEAD_QUEUED = 1,	   /* the waiter is queued; its callback will say which */
	RS_BULKHEAD_REJECTED = 2,  /* no slot and no room in the queue (or no waiter given) */
	RS_BULKHEAD_TIMED_OUT = 3, /* (callbacks only) waited max_wait_ns without a slot */
};

struct rs_bulkhead;
struct rs_bulkhead_waiter;

/* Called once per queued waiter with RS_BULKHEAD_ADMITTED (the waiter now
 * holds a slot) or RS_BULKHEAD_TIMED_OUT.  The node is already unlinked:
 * the callback may reuse or free it. */
typedef void (*rs_bulkhead_cb)(struct rs_bulkhead_waiter *w, enum rs_bulkhead_result result);

struct rs_bulkhead_waiter {
	rs_bulkhead_cb cb; /* set by rs_bulkhead_waiter_init */
	void *ctx;	   /* the caller's; the bulkhead never touches it */
	/* private */
	struct rs_bulkhead_waiter *prev, *next;
	struct rs_bulkhead *owner; /* non-NULL while queued */
	uint64_t enqueued_ns;
};

struct rs_bulkhead_opts {
	const char *name;	      /* 1..47 bytes, copied; the `name` label */
	uint32_t max_concurrent;      /* >= 1 */
	uint32_t max_queue;	      /* waiters allowed to queue; 0: none (a plain semaphore) */
	uint64_t max_wait_ns;	      /* > 0 when max_queue > 0; ignored otherwise */
	const struct rs_alloc *alloc; /* NULL: libc; borrowed, must outlive the bulkhead */
};

struct rs_bulkhead_stats {
	uint32_t in_flight; /* slots held now */
	uint32_t queued;    /* waiters queued now */
	uint64_t admitted;  /* slots granted, at once or through a callback */
	uint64_t rejected;  /* RS_BULKHEAD_REJECTED returned by try_acquire */
	uint64_t timed_out; /* waiters expired */
	uint64_t cancelled; /* waiters removed by rs_bulkhead_cancel */
};

/* Creates a bulkhead.  *out is caller-frees (rs_bulkhead_free).  0, -EINVAL
 * naming the field ("bulkhead: max_concurrent must be >= 1, got 0"), or
 * -ENOMEM (nothing leaked).  Any thread. */
int rs_bulkhead_new(struct rs_bulkhead **out, const struct rs_bulkhead_opts *opts,
		    struct rs_err *err) RS_WUR;

/* Frees the bulkhead; accepts NULL.  Waiters still queued are unlinked
 * without callbacks (cancel or expire them first if they hold resources). */
void rs_bulkhead_free(struct rs_bulkhead *b);

/* Prepares a waiter node (caller storage, e.g. inside the request it
 * belongs to).  A node may be reused once its callback ran or it was
 * cancelled. */
void rs_bulkhead_waiter_init(struct rs_bulkhead_waiter *w, rs_bulkhead_cb cb, void *ctx);

/* Tries to take a slot at now_ns.  Returns ADMITTED (slot held now),
 * QUEUED (w is linked into the queue; its callback decides later; w must
 * stay valid until then or until cancelled) or REJECTED (the queue is full,
 * max_queue is 0, w is NULL, or w is already queued).  Never calls a
 * callback. */
enum rs_bulkhead_result rs_bulkhead_try_acquire(struct rs_bulkhead *b, struct rs_bulkhead_waiter *w,
						uint64_t now_ns);

/* Gives back one slot at now_ns.  Waiters whose wait reached max_wait_ns are
 * expired first (callbacks with TIMED_OUT); then the oldest remaining
 * waiter, if any, gets the slot (callback with ADMITTED), else in_flight
 * drops by one.  Returns 0, or -EINVAL when no slot is held (a double
 * release), changing nothing. */
int rs_bulkhead_release(struct rs_bulkhead *b, uint64_t now_ns) RS_WUR;

/* Times out, oldest first, every waiter queued at or before
 * now_ns - max_wait_ns, calling each callback with TIMED_OUT.  Returns how
 * many expired.  Waiters queue in now_ns order, so callers must pass
 * non-decreasing now_ns for expiry to be exact. */
size_t rs_bulkhead_expire(struct rs_bulkhead *b, uint64_t now_ns);

/* Removes a queued waiter without calling its callback.  0, or -ENOENT
 * when w is not queued on b (already called back, or never queued). */
int rs_bulkhead_cancel(struct rs_bulkhead *b, struct rs_bulkhead_waiter *w) RS_WUR;

/* When the oldest waiter times out (its enqueue time + max_wait_ns), or
 * UINT64_MAX with no waiter: the time to arm the loop's timer for
 * rs_bulkhead_expire. */
uint64_t rs_bulkhead_next_deadline(const struct rs_bulkhead *b);

uint32_t rs_bulkhead_in_flight(const struct rs_bulkhead *b);
uint32_t rs_bulkhead_queued(const struct rs_bulkhead *b);

/* Counters since creation. */
void rs_bulkhead_stats(const struct rs_bulkhead *b, struct rs_bulkhead_stats *out);

/* Writes, for the n bulkheads in objs (borrowed; NULL entries skipped):
 *   resilience_bulkhead_in_flight{name}        gauge
 *   resilience_bulkhead_queued{name}           gauge
 *   resilience_bulkhead_rejected_total{name}   counter (queue full)
 *   resilience_bulkhead_timed_out_total{name}  counter (waited max_wait_ns)
 * each family once.  Same thread as the bulkheads. */
void rs_bulkhead_expo(struct rs_expo *e, const struct rs_bulkhead *const *objs, size_t n);

#endif
