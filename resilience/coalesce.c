#include "resilience/coalesce.h"

#include <errno.h>
#include <string.h>

#include "resilience/keyset.h"

/* A list of waiters: a slot's, or the one being called back by finish. */
struct wlist {
	struct rs_coalesce_waiter *head, *tail;
};

struct slot {
	uint32_t next_free;
	struct wlist waiters;
};

#define NONE UINT32_MAX

/* In-flight keys: their waiters in `slots`, the keys themselves in `keys`
 * under the same slot numbers. */
struct rs_coalesce {
	const struct rs_alloc *alloc;
	struct slot *slots;
	struct rs__keyset keys;
	size_t capacity, key_max, used;
	uint32_t free_head;
	uint64_t leaders, coalesced, full;
	char name[RS_COALESCE_NAME_MAX];
};

int rs_coalesce_new(struct rs_coalesce **out, const struct rs_coalesce_opts *opts,
		    struct rs_err *err)
{
	struct rs_coalesce *c = NULL;
	size_t namelen;
	int rc;

	*out = NULL;
	if (!opts)
		return rs__einval(err, "coalesce: opts is NULL");
	namelen = opts->name ? strlen(opts->name) : 0;
	if (namelen < 1 || namelen >= RS_COALESCE_NAME_MAX)
		return rs__einval(err, "coalesce: name must be 1..%d bytes, got %zu",
				  RS_COALESCE_NAME_MAX - 1, namelen);
	if (opts->capacity < 1 || opts->capacity > RS_COALESCE_CAPACITY_MAX)
		return rs__einval(err, "coalesce: capacity must be in [1, %u], got %zu",
				  RS_COALESCE_CAPACITY_MAX, opts->capacity);
	if (opts->key_max < 1 || opts->key_max > RS_COALESCE_KEY_MAX)
		return rs__einval(err, "coalesce: key_max must be in [1, %d], got %zu",
				  RS_COALESCE_KEY_MAX, opts->key_max);
	c = rs__calloc(opts->alloc, 1, sizeof(*c));
	if (!c)
		return rs__enomem(err, "coalesce");
	c->alloc = opts->alloc;
	c->slots = rs__calloc(c->alloc, opts->capacity, sizeof(*c->slots));
	if (!c->slots ||
	    rs__keyset_init(&c->keys, c->alloc, opts->capacity, opts->key_max, opts->seed) < 0) {
		rc = rs__enomem(err, "coalesce");
		goto fail;
	}
	memcpy(c->name, opts->name, namelen + 1);
	c->capacity = opts->capacity;
	c->key_max = opts->key_max;
	for (size_t i = 0; i < c->capacity; i++)
		c->slots[i].next_free = i + 1 < c->capacity ? (uint32_t)(i + 1) : NONE;
	c->free_head = 0;
	*out = c;
	return 0;
fail:
	rs_coalesce_free(c);
	return rc;
}

void rs_coalesce_free(struct rs_coalesce *c)
{
	if (!c)
		return;
	rs__keyset_free(&c->keys);
	rs__free(c->alloc, c->slots);
	rs__free(c->alloc, c);
}

void rs_coalesce_waiter_init(struct rs_coalesce_waiter *w, rs_coalesce_cb cb, void *data)
{
	w->cb = cb;
	w->data = data;
	w->next = w->prev = NULL;
	w->list = NULL;
}

static void link_tail(struct wlist *l, struct rs_coalesce_waiter *w)
{
	w->next = NULL;
	w->prev = l->tail;
	if (l->tail)
		l->tail->next = w;
	else
		l->head = w;
	l->tail = w;
	w->list = l;
}

static void unlink_waiter(struct rs_coalesce_waiter *w)
{
	struct wlist *l = w->list;

	if (w->prev)
		w->prev->next = w->next;
	else
		l->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		l->tail = w->prev;
	w->next = w->prev = NULL;
	w->list = NULL;
}

int rs_coalesce_begin(struct rs_coalesce *c, const void *key, size_t keylen,
		      struct rs_coalesce_waiter *w)
{
	uint64_t hash;
	size_t pos;
	uint32_t s;
	int found;

	if (keylen < 1 || keylen > c->key_max || !w || !w->cb)
		return -EINVAL;
	if (w->list)
		return -EBUSY;
	hash = rs__keyset_hash(&c->keys, key, keylen);
	pos = rs__keyset_lookup(&c->keys, hash, key, keylen, &found);
	if (found) {
		link_tail(&c->slots[c->keys.index[pos] - 1].waiters, w);
		c->coalesced++;
		return RS_COALESCE_JOINED;
	}
	if (c->free_head == NONE) {
		c->full++;
		return -ENOSPC;
	}
	s = c->free_head;
	c->free_head = c->slots[s].next_free;
	c->slots[s].waiters.head = c->slots[s].waiters.tail = NULL;
	rs__keyset_insert(&c->keys, pos, s, hash, key, keylen);
	c->used++;
	link_tail(&c->slots[s].waiters, w);
	c->leaders++;
	return RS_COALESCE_LEADER;
}

int rs_coalesce_finish(struct rs_coalesce *c, const void *key, size_t keylen, int status,
		       const void *result, size_t len)
{
	struct wlist pending;
	struct rs_coalesce_waiter *w;
	size_t pos;
	uint32_t s;
	int found, calls = 0;

	if (keylen < 1 || keylen > c->key_max)
		return -ENOENT;
	pos = rs__keyset_lookup(&c->keys, rs__keyset_hash(&c->keys, key, keylen), key, keylen,
				&found);
	if (!found)
		return -ENOENT;
	s = c->keys.index[pos] - 1;
	/* Take the waiters and free the slot before any callback runs: a
	 * callback may begin the same key (and lead it), finish another key,
	 * or cancel a waiter that has not been called back yet. */
	pending = c->slots[s].waiters;
	for (w = pending.head; w; w = w->next)
		w->list = &pending;
	rs__keyset_remove(&c->keys, pos);
	c->slots[s].next_free = c->free_head;
	c->free_head = s;
	c->used--;
	while ((w = pending.head)) {
		unlink_waiter(w);
		calls++;
		w->cb(w, status, result, len);
	}
	return calls;
}

int rs_coalesce_cancel(struct rs_coalesce *c, struct rs_coalesce_waiter *w)
{
	(void)c;
	if (!w || !w->list)
		return -ENOENT;
	unlink_waiter(w);
	return 0;
}

void rs_coalesce_stats(const struct rs_coalesce *c, struct rs_coalesce_stats *out)
{
	out->leaders = c->leaders;
	out->coalesced = c->coalesced;
	out->full = c->full;
	out->in_flight = c->used;
}

void rs_coalesce_expo(struct rs_expo *e, const struct rs_coalesce *const *objs, size_t n)
{
	rs_expo_family(e, "resilience_coalesced_total", RS_EXPO_COUNTER,
		       "requests that joined an in-flight computation for their key instead of "
		       "computing it");
	for (size_t i = 0; i < n; i++)
		rs_expo_sample(e, "resilience_coalesced_total",
			       (const char *[]){ "name", objs[i]->name, NULL },
			       (double)objs[i]->coalesced);
	rs_expo_family(e, "resilience_coalesce_in_flight", RS_EXPO_GAUGE,
		       "keys whose computation is in flight");
	for (size_t i = 0; i < n; i++)
		rs_expo_sample(e, "resilience_coalesce_in_flight",
			       (const char *[]){ "name", objs[i]->name, NULL },
			       (double)objs[i]->used);
}
