#include "resilience/bulkhead.h"

#include <errno.h>
#include <string.h>

#define NAME_MAX_LEN 47

struct rs_bulkhead {
	char name[NAME_MAX_LEN + 1];
	const struct rs_alloc *alloc;
	uint32_t max_concurrent, max_queue;
	uint64_t max_wait_ns;
	/* FIFO of waiters, oldest at head.  Invariant: the queue is empty
	 * unless in_flight == max_concurrent. */
	struct rs_bulkhead_waiter *head, *tail;
	struct rs_bulkhead_stats st;
};

int rs_bulkhead_new(struct rs_bulkhead **out, const struct rs_bulkhead_opts *opts,
		    struct rs_err *err)
{
	size_t len = opts->name ? strlen(opts->name) : 0;
	struct rs_bulkhead *b;

	*out = NULL;
	if (len < 1 || len > NAME_MAX_LEN)
		return rs__einval(err, "bulkhead: name must be 1 to %d bytes, got %zu",
				  NAME_MAX_LEN, len);
	if (opts->max_concurrent < 1)
		return rs__einval(err, "bulkhead: max_concurrent must be >= 1, got 0");
	if (opts->max_queue > 0 && opts->max_wait_ns == 0)
		return rs__einval(err,
				  "bulkhead: max_wait_ns must be > 0 when max_queue (%u) > 0, "
				  "got 0",
				  opts->max_queue);
	b = rs__calloc(opts->alloc, 1, sizeof(*b));
	if (!b)
		return rs__enomem(err, "bulkhead");
	memcpy(b->name, opts->name, len + 1);
	b->alloc = opts->alloc;
	b->max_concurrent = opts->max_concurrent;
	b->max_queue = opts->max_queue;
	b->max_wait_ns = opts->max_wait_ns;
	*out = b;
	return 0;
}

static void unlink_waiter(struct rs_bulkhead *b, struct rs_bulkhead_waiter *w)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		b->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		b->tail = w->prev;
	w->prev = w->next = NULL;
	w->owner = NULL;
	b->st.queued--;
}

void rs_bulkhead_free(struct rs_bulkhead *b)
{
	if (!b)
		return;
	while (b->head)
		unlink_waiter(b, b->head);
	rs__free(b->alloc, b);
}

void rs_bulkhead_waiter_init(struct rs_bulkhead_waiter *w, rs_bulkhead_cb cb, void *ctx)
{
	*w = (struct rs_bulkhead_waiter){ .cb = cb, .ctx = ctx };
}

enum rs_bulkhead_result rs_bulkhead_try_acquire(struct rs_bulkhead *b, struct rs_bulkhead_waiter *w,
						uint64_t now_ns)
{
	if (b->st.in_flight < b->max_concurrent) {
		b->st.in_flight++;
		b->st.admitted++;
		return RS_BULKHEAD_ADMITTED;
	}
	if (!w || w->owner || b->st.queued >= b->max_queue) {
		b->st.rejected++;
		return RS_BULKHEAD_REJECTED;
	}
	w->owner = b;
	w->enqueued_ns = now_ns;
	w->next = NULL;
	w->prev = b->tail;
	if (b->tail)
		b->tail->next = w;
	else
		b->head = w;
	b->tail = w;
	b->st.queued++;
	return RS_BULKHEAD_QUEUED;
}

static int expired(const struct rs_bulkhead *b, const struct rs_bulkhead_waiter *w, uint64_t now_ns)
{
	return now_ns >= w->enqueued_ns && now_ns - w->enqueued_ns >= b->max_wait_ns;
}

size_t rs_bulkhead_expire(struct rs_bulkhead *b, uint64_t now_ns)
{
	/* Only waiters queued before this call: a callback that queues again
	 * with an old now_ns cannot keep the loop going. */
	uint32_t budget = b->st.queued;
	size_t n = 0;

	while (budget-- && b->head && expired(b, b->head, now_ns)) {
		struct rs_bulkhead_waiter *w = b->head;

		unlink_waiter(b, w);
		b->st.timed_out++;
		n++;
		w->cb(w, RS_BULKHEAD_TIMED_OUT);
	}
	return n;
}

int rs_bulkhead_release(struct rs_bulkhead *b, uint64_t now_ns)
{
	struct rs_bulkhead_waiter *w;

	if (b->st.in_flight == 0)
		return -EINVAL;
	rs_bulkhead_expire(b, now_ns);
	if (b->st.in_flight == 0) /* a callback released more than it held */
		return -EINVAL;
	w = b->head;
	if (!w) {
		b->st.in_flight--;
		return 0;
	}
	/* The slot passes straight to the oldest waiter: in_flight unchanged. */
	unlink_waiter(b, w);
	b->st.admitted++;
	w->cb(w, RS_BULKHEAD_ADMITTED);
	return 0;
}

int rs_bulkhead_cancel(struct rs_bulkhead *b, struct rs_bulkhead_waiter *w)
{
	if (!w || w->owner != b)
		return -ENOENT;
	unlink_waiter(b, w);
	b->st.cancelled++;
	return 0;
}

uint64_t rs_bulkhead_next_deadline(const struct rs_bulkhead *b)
{
	if (!b->head)
		return UINT64_MAX;
	if (b->head->enqueued_ns > UINT64_MAX - b->max_wait_ns)
		return UINT64_MAX;
	return b->head->enqueued_ns + b->max_wait_ns;
}

uint32_t rs_bulkhead_in_flight(const struct rs_bulkhead *b)
{
	return b->st.in_flight;
}

uint32_t rs_bulkhead_queued(const struct rs_bulkhead *b)
{
	return b->st.queued;
}

void rs_bulkhead_stats(const struct rs_bulkhead *b, struct rs_bulkhead_stats *out)
{
	*out = b->st;
}

enum field { IN_FLIGHT, QUEUED, REJECTED, TIMED_OUT };

static void family(struct rs_expo *e, const struct rs_bulkhead *const *objs, size_t n,
		   const char *metric, enum rs_expo_type type, const char *help, enum field field)
{
	rs_expo_family(e, metric, type, help);
	for (size_t i = 0; i < n; i++) {
		const struct rs_bulkhead_stats *st;
		double v;

		if (!objs[i])
			continue;
		st = &objs[i]->st;
		switch (field) {
		case IN_FLIGHT:
			v = st->in_flight;
			break;
		case QUEUED:
			v = st->queued;
			break;
		case REJECTED:
			v = (double)st->rejected;
			break;
		case TIMED_OUT:
		default:
			v = (double)st->timed_out;
			break;
		}
		rs_expo_sample(e, metric, (const char *const[]){ "name", objs[i]->name, NULL }, v);
	}
}

void rs_bulkhead_expo(struct rs_expo *e, const struct rs_bulkhead *const *objs, size_t n)
{
	family(e, objs, n, "resilience_bulkhead_in_flight", RS_EXPO_GAUGE,
	       "calls holding a bulkhead slot", IN_FLIGHT);
	family(e, objs, n, "resilience_bulkhead_queued", RS_EXPO_GAUGE,
	       "callers waiting for a bulkhead slot", QUEUED);
	family(e, objs, n, "resilience_bulkhead_rejected_total", RS_EXPO_COUNTER,
	       "calls rejected because the bulkhead and its queue were full", REJECTED);
	family(e, objs, n, "resilience_bulkhead_timed_out_total", RS_EXPO_COUNTER,
	       "waiters rejected after waiting the bulkhead's max wait", TIMED_OUT);
}
