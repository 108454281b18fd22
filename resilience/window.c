#include "resilience/window.h"

#include <errno.h>
#include <string.h>

/*
 * Count window.  `pos` hands out ring positions (one fetch_add per outcome,
 * 64-bit so it never wraps); `bad` and `rej` hold what the ring holds.  The
 * invariant is "bad and rej = the sum of the slot bytes": whoever puts an
 * outcome in a slot adds it before exchanging it in, and whoever takes one
 * out (the byte exchange returns it) subtracts it.  Adding before the
 * acq_rel exchange that publishes the byte means a subtraction can never
 * overtake its addition, so the packed fields never go below zero.  A plain
 * success replacing a plain success changes nothing, hence one RMW for a
 * success-dominated stream.
 *
 * Time window.  `pos`, `bad` and `rej` are totals since init (bad's two
 * 32-bit fields wrap; differences of the whole word stay exact while a
 * window holds fewer than 2^32 of each).  Each bucket keeps the totals as
 * they were when its epoch (now_ns / bucket length) began, written by the
 * thread that moved `mark` to that epoch.  A window's counts are the
 * totals now minus the totals at the start of its oldest live bucket.  The
 * bucket entries are seqlocked so a snapshot never reads a torn entry; a
 * snapshot that meets one being written uses the next bucket (a window
 * shorter by a bucket, for that instant) rather than wait.
 */

#define TAG_EMPTY   UINT64_MAX
#define TAG_BUSY    (UINT64_MAX - 1)
#define OUTCOME_BAD (RS_WINDOW_FAILURE | RS_WINDOW_SLOW)

struct rs__window_base {
	_Atomic uint64_t tag; /* the epoch these totals start, TAG_EMPTY or TAG_BUSY */
	_Atomic uint64_t pos, bad, rej;
};

static unsigned normalize(unsigned o)
{
	return (o & RS_WINDOW_REJECTED) ? RS_WINDOW_REJECTED : (o & OUTCOME_BAD);
}

int rs_window_init(struct rs_window *w, const struct rs_window_opts *o, struct rs_err *err)
{
	memset(w, 0, sizeof(*w));
	if (!o)
		return rs__einval(err, "window: options are NULL");
	switch (o->kind) {
	case RS_WINDOW_COUNT:
		if (o->size < 1 || o->size > RS_WINDOW_MAX_SIZE)
			return rs__einval(err, "window: size must be in [1, %u], got %u",
					  RS_WINDOW_MAX_SIZE, o->size);
		w->u.slots = rs__calloc(o->alloc, o->size, sizeof(*w->u.slots));
		if (!w->u.slots)
			return rs__enomem(err, "window");
		w->span = o->size;
		w->n = o->size;
		break;
	case RS_WINDOW_TIME:
		if (o->buckets < 1 || o->buckets > RS_WINDOW_MAX_BUCKETS)
			return rs__einval(err, "window: buckets must be in [1, %u], got %u",
					  RS_WINDOW_MAX_BUCKETS, o->buckets);
		if (o->length_ns == 0)
			return rs__einval(err, "window: length_ns must be > 0, got 0");
		if (o->length_ns % o->buckets != 0)
			return rs__einval(
			    err, "window: length_ns must be a multiple of buckets (%u), got %llu",
			    o->buckets, (unsigned long long)o->length_ns);
		w->u.bases = rs__calloc(o->alloc, o->buckets, sizeof(*w->u.bases));
		if (!w->u.bases)
			return rs__enomem(err, "window");
		for (uint32_t i = 0; i < o->buckets; i++)
			atomic_init(&w->u.bases[i].tag, TAG_EMPTY);
		w->span = o->length_ns / o->buckets;
		w->n = o->buckets;
		break;
	default:
		return rs__einval(err, "window: kind must be count (1) or time (2), got %d",
				  (int)o->kind);
	}
	w->kind = o->kind;
	w->alloc = o->alloc;
	return 0;
}

void rs_window_release(struct rs_window *w)
{
	if (!w)
		return;
	if (w->kind == RS_WINDOW_COUNT)
		rs__free(w->alloc, (void *)w->u.slots);
	else if (w->kind == RS_WINDOW_TIME)
		rs__free(w->alloc, w->u.bases);
	memset(w, 0, sizeof(*w));
}

/* ---- count window ------------------------------------------------------ */

/* The record path is rs__window_count_record in window.h (inline for the
 * breaker's hot path). */

static uint64_t cap(uint64_t v, uint64_t max)
{
	return v < max ? v : max;
}

static void count_snapshot(const struct rs_window *w, struct rs_window_counts *out)
{
	struct rs_window *m = (struct rs_window *)w;
	uint64_t pos = atomic_load_explicit(&m->pos, memory_order_acquire);
	uint64_t mark = atomic_load_explicit(&m->mark, memory_order_acquire);
	uint64_t bad = atomic_load_explicit(&m->bad, memory_order_relaxed);
	uint64_t rej = atomic_load_explicit(&m->rej, memory_order_relaxed);

	out->calls = mark > pos ? 0 : cap(pos - mark, w->n);
	out->failures = cap((uint32_t)bad, out->calls);
	out->slow = cap(bad >> 32, out->calls);
	out->rejected = cap(rej, out->calls);
}

static void count_reset(struct rs_window *w)
{
	for (uint32_t i = 0; i < w->n; i++) {
		_Atomic uint8_t *slot = &w->u.slots[i];
		unsigned e;

		if (atomic_load_explicit(slot, memory_order_relaxed) == 0)
			continue;
		e = atomic_exchange_explicit(slot, 0, memory_order_acq_rel);
		if (e)
			rs__window_count_evict(w, e);
	}
	atomic_store_explicit(&w->mark, atomic_load_explicit(&w->pos, memory_order_acquire),
			      memory_order_release);
}

/* ---- time window ------------------------------------------------------- */

struct totals {
	uint64_t pos, bad, rej;
};

static void totals_now(const struct rs_window *w, struct totals *t)
{
	struct rs_window *m = (struct rs_window *)w;

	t->pos = atomic_load_explicit(&m->pos, memory_order_acquire);
	t->bad = atomic_load_explicit(&m->bad, memory_order_relaxed);
	t->rej = atomic_load_explicit(&m->rej, memory_order_relaxed);
}

/* The oldest epoch of a window whose newest epoch is e. */
static uint64_t first_epoch(const struct rs_window *w, uint64_t e)
{
	return e + 1 >= w->n ? e + 1 - w->n : 0;
}

/* Seqlock writer: skips an entry that a newer epoch or another writer owns. */
static void base_write(struct rs__window_base *b, uint64_t epoch, const struct totals *t)
{
	uint64_t tag = atomic_load_explicit(&b->tag, memory_order_relaxed);

	if (tag == TAG_BUSY || (tag != TAG_EMPTY && tag > epoch))
		return;
	if (!atomic_compare_exchange_strong_explicit(&b->tag, &tag, TAG_BUSY, memory_order_relaxed,
						     memory_order_relaxed))
		return;
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&b->pos, t->pos, memory_order_relaxed);
	atomic_store_explicit(&b->bad, t->bad, memory_order_relaxed);
	atomic_store_explicit(&b->rej, t->rej, memory_order_relaxed);
	atomic_store_explicit(&b->tag, epoch, memory_order_release);
}

/* Seqlock reader: true when the entry holds a consistent start of `epoch`. */
static int base_read(const struct rs_window *w, uint64_t epoch, struct totals *t)
{
	struct rs__window_base *b = &w->u.bases[epoch % w->n];
	uint64_t tag = atomic_load_explicit(&b->tag, memory_order_acquire);

	if (epoch == 0 && tag == TAG_EMPTY) {
		/* Epoch 0 was never rolled into: it starts at init, with zeros. */
		memset(t, 0, sizeof(*t));
		return 1;
	}
	if (tag != epoch)
		return 0;
	t->pos = atomic_load_explicit(&b->pos, memory_order_relaxed);
	t->bad = atomic_load_explicit(&b->bad, memory_order_relaxed);
	t->rej = atomic_load_explicit(&b->rej, memory_order_relaxed);
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&b->tag, memory_order_relaxed) == epoch;
}

/* Moves the newest epoch up to e; the thread that moves it writes the start
 * totals of the epochs it rolled into that are still inside the window. */
static void time_roll(struct rs_window *w, uint64_t e)
{
	uint64_t last = atomic_load_explicit(&w->mark, memory_order_acquire);
	struct totals t;

	while (e > last) {
		if (atomic_compare_exchange_weak_explicit(&w->mark, &last, e, memory_order_acq_rel,
							  memory_order_acquire)) {
			uint64_t lo = first_epoch(w, e);

			if (lo < last + 1)
				lo = last + 1;
			totals_now(w, &t);
			for (uint64_t k = lo; k <= e; k++)
				base_write(&w->u.bases[k % w->n], k, &t);
			return;
		}
	}
}

static uint64_t time_record(struct rs_window *w, unsigned o, uint64_t now_ns)
{
	uint64_t e = now_ns / w->span;
	uint64_t seq;

	if (e > atomic_load_explicit(&w->mark, memory_order_relaxed))
		time_roll(w, e);
	seq = atomic_fetch_add_explicit(&w->pos, 1, memory_order_release);
	if (o == RS_WINDOW_REJECTED)
		atomic_fetch_add_explicit(&w->rej, 1, memory_order_relaxed);
	else if (o)
		atomic_fetch_add_explicit(&w->bad, rs__window_bad_delta(o), memory_order_relaxed);
	return seq;
}

static void time_snapshot(const struct rs_window *w, uint64_t now_ns, struct rs_window_counts *out)
{
	struct rs_window *m = (struct rs_window *)w;
	uint64_t last = atomic_load_explicit(&m->mark, memory_order_acquire);
	uint64_t e = now_ns / w->span, d;
	struct totals base, cur;

	memset(out, 0, sizeof(*out));
	if (e < last)
		e = last;
	/* Every outcome lies in an epoch <= last; epochs before first_epoch
	 * expired.  The first readable start at or after it bounds the window. */
	for (uint64_t k = first_epoch(w, e); k <= last; k++) {
		if (!base_read(w, k, &base))
			continue;
		totals_now(w, &cur);
		out->calls = cur.pos - base.pos;
		d = cur.bad - base.bad;
		out->failures = cap((uint32_t)d, out->calls);
		out->slow = cap(d >> 32, out->calls);
		out->rejected = cap(cur.rej - base.rej, out->calls);
		return;
	}
}

static void time_reset(struct rs_window *w, uint64_t now_ns)
{
	uint64_t e = now_ns / w->span, last;
	struct totals t;

	time_roll(w, e);
	last = atomic_load_explicit(&w->mark, memory_order_acquire);
	if (e < last)
		e = last;
	totals_now(w, &t);
	for (uint64_t k = first_epoch(w, e); k <= e; k++)
		base_write(&w->u.bases[k % w->n], k, &t);
}

/* ---- dispatch ---------------------------------------------------------- */

uint64_t rs_window_record(struct rs_window *w, unsigned outcome, uint64_t now_ns)
{
	unsigned o = normalize(outcome);

	if (w->kind == RS_WINDOW_COUNT)
		return rs__window_count_record(w, o);
	return time_record(w, o, now_ns);
}

void rs_window_snapshot(const struct rs_window *w, uint64_t now_ns, struct rs_window_counts *out)
{
	if (w->kind == RS_WINDOW_COUNT)
		count_snapshot(w, out);
	else if (w->kind == RS_WINDOW_TIME)
		time_snapshot(w, now_ns, out);
	else
		memset(out, 0, sizeof(*out));
}

void rs_window_reset(struct rs_window *w, uint64_t now_ns)
{
	if (w->kind == RS_WINDOW_COUNT)
		count_reset(w);
	else if (w->kind == RS_WINDOW_TIME)
		time_reset(w, now_ns);
}

uint64_t rs_window_total(const struct rs_window *w)
{
	return atomic_load_explicit(&((struct rs_window *)w)->pos, memory_order_acquire);
}

size_t rs_window_bytes(const struct rs_window *w)
{
	if (w->kind == RS_WINDOW_COUNT)
		return w->n * sizeof(*w->u.slots);
	if (w->kind == RS_WINDOW_TIME)
		return w->n * sizeof(*w->u.bases);
	return 0;
}

void rs_window_recount(const struct rs_window *w, struct rs_window_counts *out)
{
	struct rs_window *m = (struct rs_window *)w;
	uint64_t pos, mark;

	if (w->kind != RS_WINDOW_COUNT) {
		rs_window_snapshot(
		    w, atomic_load_explicit(&m->mark, memory_order_acquire) * w->span, out);
		return;
	}
	memset(out, 0, sizeof(*out));
	pos = atomic_load_explicit(&m->pos, memory_order_acquire);
	mark = atomic_load_explicit(&m->mark, memory_order_acquire);
	out->calls = mark > pos ? 0 : cap(pos - mark, w->n);
	for (uint32_t i = 0; i < w->n; i++) {
		unsigned o = atomic_load_explicit(&m->u.slots[i], memory_order_relaxed);

		out->failures += (o & RS_WINDOW_FAILURE) != 0;
		out->slow += (o & RS_WINDOW_SLOW) != 0;
		out->rejected += (o & RS_WINDOW_REJECTED) != 0;
	}
}
