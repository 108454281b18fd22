#include "resilience/idem.h"

#include <errno.h>
#include <string.h>

#include "resilience/keyset.h"

#define NONE UINT32_MAX

enum { FREE, RUNNING, DONE };

/* An entry; its key lives in `keys` under its number, its result in the
 * `results` arena at its number times result_max.  Completed entries are on the `done` list in
 * completion order (head = oldest, the first to expire or be evicted);
 * free entries are on a singly linked free list through `next`. */
struct entry {
	uint64_t expires_ns;
	uint32_t state;
	uint32_t prev, next;
	uint32_t len;
	int status;
};

struct rs_idem {
	const struct rs_alloc *alloc;
	struct entry *entries;
	struct rs__keyset keys;
	unsigned char *results;
	size_t capacity, key_max, result_max, used, running;
	uint64_t ttl_ns;
	uint32_t free_head, done_head, done_tail;
	uint64_t first_seen, duplicates, in_progress, expired, evicted, full;
	char name[RS_IDEM_NAME_MAX];
};

static void done_unlink(struct rs_idem *t, uint32_t e)
{
	struct entry *en = &t->entries[e];

	if (en->prev != NONE)
		t->entries[en->prev].next = en->next;
	else
		t->done_head = en->next;
	if (en->next != NONE)
		t->entries[en->next].prev = en->prev;
	else
		t->done_tail = en->prev;
}

static void done_append(struct rs_idem *t, uint32_t e)
{
	struct entry *en = &t->entries[e];

	en->next = NONE;
	en->prev = t->done_tail;
	if (t->done_tail != NONE)
		t->entries[t->done_tail].next = e;
	else
		t->done_head = e;
	t->done_tail = e;
}

/* Drops entry e (its index cell is found again by its key) and frees it. */
static void drop(struct rs_idem *t, uint32_t e)
{
	struct entry *en = &t->entries[e];
	int found;
	size_t pos = rs__keyset_lookup(&t->keys, t->keys.hash[e], rs__keyset_key(&t->keys, e),
				       t->keys.keylen[e], &found);

	rs__keyset_remove(&t->keys, pos);
	if (en->state == DONE)
		done_unlink(t, e);
	else
		t->running--;
	en->state = FREE;
	en->next = t->free_head;
	t->free_head = e;
	t->used--;
}

int rs_idem_new(struct rs_idem **out, const struct rs_idem_opts *opts, struct rs_err *err)
{
	struct rs_idem *t = NULL;
	size_t namelen;
	int rc;

	*out = NULL;
	if (!opts)
		return rs__einval(err, "idem: opts is NULL");
	namelen = opts->name ? strlen(opts->name) : 0;
	if (namelen < 1 || namelen >= RS_IDEM_NAME_MAX)
		return rs__einval(err, "idem: name must be 1..%d bytes, got %zu",
				  RS_IDEM_NAME_MAX - 1, namelen);
	if (opts->capacity < 1 || opts->capacity > RS_IDEM_CAPACITY_MAX)
		return rs__einval(err, "idem: capacity must be in [1, %u], got %zu",
				  RS_IDEM_CAPACITY_MAX, opts->capacity);
	if (opts->key_max < 1 || opts->key_max > RS_IDEM_KEY_MAX)
		return rs__einval(err, "idem: key_max must be in [1, %d], got %zu", RS_IDEM_KEY_MAX,
				  opts->key_max);
	if (opts->result_max > RS_IDEM_RESULT_MAX)
		return rs__einval(err, "idem: result_max must be in [0, %u], got %zu",
				  RS_IDEM_RESULT_MAX, opts->result_max);
	if (opts->ttl_ns == 0)
		return rs__einval(err, "idem: ttl_ns must be > 0, got 0");
	t = rs__calloc(opts->alloc, 1, sizeof(*t));
	if (!t)
		return rs__enomem(err, "idem");
	t->alloc = opts->alloc;
	t->entries = rs__calloc(t->alloc, opts->capacity, sizeof(*t->entries));
	t->results =
	    opts->result_max ? rs__calloc(t->alloc, opts->capacity, opts->result_max) : NULL;
	if (!t->entries || (opts->result_max && !t->results) ||
	    rs__keyset_init(&t->keys, t->alloc, opts->capacity, opts->key_max, opts->seed) < 0) {
		rc = rs__enomem(err, "idem");
		goto fail;
	}
	memcpy(t->name, opts->name, namelen + 1);
	t->capacity = opts->capacity;
	t->key_max = opts->key_max;
	t->result_max = opts->result_max;
	t->ttl_ns = opts->ttl_ns;
	for (size_t i = 0; i < t->capacity; i++)
		t->entries[i].next = i + 1 < t->capacity ? (uint32_t)(i + 1) : NONE;
	t->free_head = 0;
	t->done_head = t->done_tail = NONE;
	*out = t;
	return 0;
fail:
	rs_idem_free(t);
	return rc;
}

void rs_idem_free(struct rs_idem *t)
{
	if (!t)
		return;
	rs__keyset_free(&t->keys);
	rs__free(t->alloc, t->results);
	rs__free(t->alloc, t->entries);
	rs__free(t->alloc, t);
}

int rs_idem_check(struct rs_idem *t, const void *key, size_t keylen, uint64_t now_ns,
		  struct rs_idem_result *dup)
{
	struct entry *en;
	uint64_t hash;
	size_t pos;
	uint32_t e;
	int found;

	if (keylen < 1 || keylen > t->key_max || !dup)
		return -EINVAL;
	/* Completed entries expire in completion order: drop the expired
	 * ones from the head (each entry is dropped once: O(1) amortised). */
	while (t->done_head != NONE && t->entries[t->done_head].expires_ns <= now_ns) {
		drop(t, t->done_head);
		t->expired++;
	}
	hash = rs__keyset_hash(&t->keys, key, keylen);
	pos = rs__keyset_lookup(&t->keys, hash, key, keylen, &found);
	if (found) {
		e = t->keys.index[pos] - 1;
		en = &t->entries[e];
		if (en->state == RUNNING) {
			t->in_progress++;
			return RS_IDEM_IN_PROGRESS;
		}
		if (en->expires_ns > now_ns) {
			dup->status = en->status;
			dup->data = t->results ? t->results + (size_t)e * t->result_max : NULL;
			dup->len = en->len;
			t->duplicates++;
			return RS_IDEM_DUPLICATE;
		}
		/* Expired but not at the head: completions were out of order. */
		drop(t, e);
		t->expired++;
		pos = rs__keyset_lookup(&t->keys, hash, key, keylen, &found);
	}
	if (t->free_head == NONE) {
		if (t->done_head == NONE) {
			t->full++;
			return -ENOSPC;
		}
		drop(t, t->done_head);
		t->evicted++;
		pos = rs__keyset_lookup(&t->keys, hash, key, keylen, &found);
	}
	e = t->free_head;
	en = &t->entries[e];
	t->free_head = en->next;
	en->state = RUNNING;
	en->prev = en->next = NONE;
	en->len = 0;
	en->status = 0;
	rs__keyset_insert(&t->keys, pos, e, hash, key, keylen);
	t->used++;
	t->running++;
	t->first_seen++;
	return RS_IDEM_FIRST_SEEN;
}

static int find(const struct rs_idem *t, const void *key, size_t keylen, uint32_t *e)
{
	size_t pos;
	int found;

	if (keylen < 1 || keylen > t->key_max)
		return -ENOENT;
	pos = rs__keyset_lookup(&t->keys, rs__keyset_hash(&t->keys, key, keylen), key, keylen,
				&found);
	if (!found)
		return -ENOENT;
	*e = t->keys.index[pos] - 1;
	return t->entries[*e].state == RUNNING ? 0 : -EALREADY;
}

int rs_idem_complete(struct rs_idem *t, const void *key, size_t keylen, int status,
		     const void *data, size_t len, uint64_t now_ns)
{
	struct entry *en;
	uint32_t e;
	int rc = find(t, key, keylen, &e);

	if (rc)
		return rc;
	if (len > t->result_max)
		return -EMSGSIZE;
	en = &t->entries[e];
	if (len)
		memcpy(t->results + (size_t)e * t->result_max, data, len);
	en->len = (uint32_t)len;
	en->status = status;
	en->expires_ns = now_ns > UINT64_MAX - t->ttl_ns ? UINT64_MAX : now_ns + t->ttl_ns;
	en->state = DONE;
	t->running--;
	done_append(t, e);
	return 0;
}

int rs_idem_abort(struct rs_idem *t, const void *key, size_t keylen)
{
	uint32_t e;
	int rc = find(t, key, keylen, &e);

	if (rc)
		return rc;
	drop(t, e);
	return 0;
}

void rs_idem_stats(const struct rs_idem *t, struct rs_idem_stats *out)
{
	out->first_seen = t->first_seen;
	out->duplicates = t->duplicates;
	out->in_progress = t->in_progress;
	out->expired = t->expired;
	out->evicted = t->evicted;
	out->full = t->full;
	out->entries = t->used;
	out->running = t->running;
}

void rs_idem_expo(struct rs_expo *e, const struct rs_idem *const *objs, size_t n)
{
	rs_expo_family(e, "resilience_idempotency_duplicates_total", RS_EXPO_COUNTER,
		       "requests not run because an earlier request with the same idempotency "
		       "key completed or is running");
	for (size_t i = 0; i < n; i++)
		rs_expo_sample(e, "resilience_idempotency_duplicates_total",
			       (const char *[]){ "name", objs[i]->name, NULL },
			       (double)(objs[i]->duplicates + objs[i]->in_progress));
	rs_expo_family(e, "resilience_idempotency_entries", RS_EXPO_GAUGE,
		       "idempotency keys held, in progress or completed");
	for (size_t i = 0; i < n; i++)
		rs_expo_sample(e, "resilience_idempotency_entries",
			       (const char *[]){ "name", objs[i]->name, NULL },
			       (double)objs[i]->used);
}
