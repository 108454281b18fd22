/* Sliding windows of call outcomes, the memory behind a circuit breaker's
 * rate policies.
 *
 * Two kinds share one caller-embedded struct:
 *   - a count window holds the last `size` outcomes in a ring of one byte
 *     per slot;
 *   - a time window holds the outcomes of the last `length_ns`, split into
 *     `buckets` buckets: a bucket expires as a whole once it is older than
 *     the window, so the window covers between (buckets - 1) and `buckets`
 *     bucket lengths of time.
 *
 * An outcome is a success or a failure, optionally slow, or a rejected call
 * (one that never ran).  Recording and taking a snapshot are O(1) (a time
 * snapshot looks at one bucket boundary), never allocate, never lock and
 * never read the clock: time comes in as `now_ns` (CLOCK_MONOTONIC ns).
 *
 * Thread safety: any number of threads may record, snapshot and reset one
 * window at once (lock-free).  Counts are never lost: every outcome is
 * counted once and taken out once, so when the recorders stop the counts
 * are exact.  What concurrency can blur, and only while outcomes are in
 * flight: a snapshot may include or miss the few outcomes being recorded at
 * that instant, an outcome recorded as a time bucket rolls over may be
 * counted in the neighbouring bucket, and a count-window slot can be
 * claimed out of order by a thread that stalls between taking a position
 * and writing its slot for a whole lap of the ring (the window then holds
 * that older outcome instead of a newer one, counted consistently).
 * init and release are not concurrent with anything.
 */
#ifndef RESILIENCE_WINDOW_H
#define RESILIENCE_WINDOW_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resilience/alloc.h"
#include "resilience/err.h"

/* Outcome flags for rs_window_record. */
enum {
	RS_WINDOW_SUCCESS = 0,	/* the call ran and succeeded */
	RS_WINDOW_FAILURE = 1,	/* the call ran and failed */
	RS_WINDOW_SLOW = 2,	/* combines with SUCCESS or FAILURE */
	RS_WINDOW_REJECTED = 4, /* the call never ran; ignores the other flags */
};

enum rs_window_kind {
	RS_WINDOW_NONE = 0, /* not a valid window; lets options say "no window" */
	RS_WINDOW_COUNT = 1,
	RS_WINDOW_TIME = 2,
};

#define RS_WINDOW_MAX_SIZE    (1u << 24) /* count window slots */
#define RS_WINDOW_MAX_BUCKETS 4096u	 /* time window buckets */

struct rs_window_opts {
	const struct rs_alloc *alloc; /* NULL: libc; borrowed, must outlive the window */
	enum rs_window_kind kind;
	uint32_t size;	    /* COUNT: outcomes held, 1..RS_WINDOW_MAX_SIZE */
	uint64_t length_ns; /* TIME: window length, a multiple of buckets */
	uint32_t buckets;   /* TIME: 1..RS_WINDOW_MAX_BUCKETS */
};

/* What a window holds at one moment. */
struct rs_window_counts {
	uint64_t calls;	   /* outcomes in the window, rejected ones included */
	uint64_t failures; /* of which failed (slow or not) */
	uint64_t slow;	   /* of which slow (failed or not) */
	uint64_t rejected; /* of which rejected */
};

struct rs__window_base; /* a time bucket's starting totals (window.c) */

/* Caller-embedded; the fields are private to window.c. */
struct rs_window {
	_Atomic uint64_t pos; /* outcomes ever recorded */
	/* failures (low 32 bits) + slow << 32; COUNT: in the ring, TIME: since
	 * init (each field wrapping) */
	_Atomic uint64_t bad;
	_Atomic uint64_t rej;  /* rejected; COUNT: in the ring, TIME: since init */
	_Atomic uint64_t mark; /* COUNT: pos at the last reset; TIME: newest bucket */
	union {
		_Atomic uint8_t *slots;	       /* COUNT: one outcome byte per slot */
		struct rs__window_base *bases; /* TIME: one per bucket */
	} u;
	uint64_t span; /* COUNT: size; TIME: bucket length in ns */
	uint32_t n;    /* COUNT: size; TIME: buckets */
	uint32_t kind; /* enum rs_window_kind */
	const struct rs_alloc *alloc;
};

/* Initialises `w` as an empty window.  Validates every option (-EINVAL with
 * "window: <field> ..." in err) and allocates the slots or buckets
 * (-ENOMEM, nothing leaked).  On failure `w` is left released.  The caller
 * owns `w`'s storage; release it with rs_window_release.  Not concurrent
 * with any other use of `w`. */
int rs_window_init(struct rs_window *w, const struct rs_window_opts *opts,
		   struct rs_err *err) RS_WUR;

/* Frees what init allocated; accepts a released window (twice is fine). */
void rs_window_release(struct rs_window *w);

/* Records one outcome (RS_WINDOW_* flags) observed at now_ns; a count
 * window ignores the time, a time window counts an outcome older than its
 * newest bucket (a thread whose clock reading lags) in the newest bucket.
 * Returns the outcome's sequence number: how many outcomes were recorded
 * before it since init.  Any thread. */
uint64_t rs_window_record(struct rs_window *w, unsigned outcome, uint64_t now_ns);

/* Internal: a count window's record path for an outcome already reduced
 * to RS_WINDOW_REJECTED alone or FAILURE/SLOW flags, inline so that an
 * object embedding the window pays no call on its hot path.  Others use
 * rs_window_record.  (The invariant it keeps is explained in window.c.) */
static inline uint64_t rs__window_bad_delta(unsigned o)
{
	return ((o & RS_WINDOW_FAILURE) ? 1ull : 0) | ((o & RS_WINDOW_SLOW) ? 1ull << 32 : 0);
}

static inline void rs__window_count_evict(struct rs_window *w, unsigned e)
{
	if (e & RS_WINDOW_REJECTED)
		atomic_fetch_sub_explicit(&w->rej, 1, memory_order_relaxed);
	else
		atomic_fetch_sub_explicit(&w->bad, rs__window_bad_delta(e), memory_order_relaxed);
}

static inline uint64_t rs__window_count_record(struct rs_window *w, unsigned o)
{
	uint64_t seq = atomic_fetch_add_explicit(&w->pos, 1, memory_order_release);
	_Atomic uint8_t *slot = &w->u.slots[seq % w->span];
	unsigned e;

	if (o == RS_WINDOW_SUCCESS) {
		if (atomic_load_explicit(slot, memory_order_relaxed) == 0)
			return seq;
	} else if (o == RS_WINDOW_REJECTED) {
		atomic_fetch_add_explicit(&w->rej, 1, memory_order_relaxed);
	} else {
		atomic_fetch_add_explicit(&w->bad, rs__window_bad_delta(o), memory_order_relaxed);
	}
	e = atomic_exchange_explicit(slot, (uint8_t)o, memory_order_acq_rel);
	if (e)
		rs__window_count_evict(w, e);
	return seq;
}

/* True when a count window already held `size` outcomes (since its last
 * reset) when outcome number `seq` (from rs_window_record) was recorded:
 * then that outcome replaced another, so a plain success cannot have raised
 * any rate.  Always false for a time window.  Any thread. */
static inline bool rs_window_was_full(const struct rs_window *w, uint64_t seq)
{
	uint64_t mark;

	if (w->kind != RS_WINDOW_COUNT)
		return false;
	mark = atomic_load_explicit(&((struct rs_window *)w)->mark, memory_order_relaxed);
	return seq >= mark && seq - mark >= w->n;
}

/* Writes the counts in the window as of now_ns into *out (a time window
 * drops the buckets older than the window; a now_ns older than the newest
 * recorded bucket is taken as that bucket).  Any thread.  While others
 * record, sub-counts are capped at `calls`. */
void rs_window_snapshot(const struct rs_window *w, uint64_t now_ns, struct rs_window_counts *out);

/* Empties the window as of now_ns (rs_window_total keeps counting).  O(size)
 * for a count window, O(buckets) for a time window; for state changes, not
 * for every call.  Any thread; outcomes recorded concurrently may survive
 * the reset or not. */
void rs_window_reset(struct rs_window *w, uint64_t now_ns);

/* Outcomes recorded since init (monotonic, including expired ones). */
uint64_t rs_window_total(const struct rs_window *w);

/* Heap bytes the window holds: its slot array (1 byte per slot) or its
 * bucket array; 0 for a released window. */
size_t rs_window_bytes(const struct rs_window *w);

/* A count window's counts recomputed from its slots, O(size): when no
 * thread is recording it must equal rs_window_snapshot (tests and audits
 * use it to prove that no count was lost).  A time window has no slots and
 * returns its snapshot at the newest recorded bucket. */
void rs_window_recount(const struct rs_window *w, struct rs_window_counts *out);

#endif
