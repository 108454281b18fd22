#include "target/cache.h"

#include <errno.h>
#include <string.h>

/* One entry: key bytes then value bytes, stored inline after the header. */
struct entry {
	struct entry *hnext; /* next in the hash bucket chain */
	struct entry *prev;  /* recency list: towards the most recently used */
	struct entry *next;  /* recency list: towards the least recently used */
	uint64_t hash;
	uint64_t expiry_ns; /* expired when now_ns >= expiry_ns */
	size_t key_len;
	size_t val_len;
	unsigned char data[];
};

struct fl_cache {
	const struct rs_alloc *alloc;
	size_t max_entries;
	size_t max_bytes;
	struct entry **table;
	size_t mask;
	struct entry *head; /* most recently used */
	struct entry *tail; /* least recently used */
	size_t count;
	size_t bytes;
	struct fl_cache_stats stats;
};

/* FNV-1a, then a final avalanche so the low bits (the bucket index) depend
 * on every byte. */
static uint64_t hash_key(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

int fl_cache_new(struct fl_cache **out, const struct fl_cache_opts *opts, struct rs_err *err)
{
	struct fl_cache *c;
	size_t buckets = 1;

	*out = NULL;
	if (!opts)
		return rs__einval(err, "cache: options are required");
	if (opts->max_entries < 1 || opts->max_entries > FL_CACHE_MAX_ENTRIES)
		return rs__einval(err, "cache: max_entries must be in [1, %u], got %zu",
				  FL_CACHE_MAX_ENTRIES, opts->max_entries);
	while (buckets < 2 * opts->max_entries)
		buckets <<= 1;
	c = rs__calloc(opts->alloc, 1, sizeof(*c));
	if (!c)
		return rs__enomem(err, "cache");
	c->alloc = opts->alloc;
	c->max_entries = opts->max_entries;
	c->max_bytes = opts->max_bytes;
	c->mask = buckets - 1;
	c->table = rs__calloc(opts->alloc, buckets, sizeof(*c->table));
	if (!c->table)
		goto fail;
	*out = c;
	return 0;
fail:
	rs__free(opts->alloc, c);
	return rs__enomem(err, "cache");
}

static void lru_unlink(struct fl_cache *c, struct entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_front(struct fl_cache *c, struct entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

/* Returns the slot that points at the entry for key (or the chain's end). */
static struct entry **find_slot(struct fl_cache *c, const void *key, size_t key_len, uint64_t h)
{
	struct entry **pp = &c->table[h & c->mask];

	for (; *pp; pp = &(*pp)->hnext) {
		struct entry *e = *pp;

		if (e->hash == h && e->key_len == key_len &&
		    (key_len == 0 || memcmp(e->data, key, key_len) == 0))
			break;
	}
	return pp;
}

/* Unlinks e from its chain and the recency list and frees it. */
static void remove_entry(struct fl_cache *c, struct entry *e)
{
	struct entry **pp = &c->table[e->hash & c->mask];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(c, e);
	c->count--;
	c->bytes -= e->key_len + e->val_len;
	rs__free(c->alloc, e);
}

void fl_cache_free(struct fl_cache *c)
{
	struct entry *e, *next;

	if (!c)
		return;
	for (e = c->head; e; e = next) {
		next = e->next;
		rs__free(c->alloc, e);
	}
	rs__free(c->alloc, c->table);
	rs__free(c->alloc, c);
}

bool fl_cache_get(struct fl_cache *c, const void *key, size_t key_len, uint64_t now_ns,
		  const void **val, size_t *len)
{
	uint64_t h = hash_key(key, key_len);
	struct entry **pp = find_slot(c, key, key_len, h);
	struct entry *e = *pp;

	if (!e) {
		c->stats.misses++;
		return false;
	}
	if (now_ns >= e->expiry_ns) {
		c->stats.expired++;
		c->stats.misses++;
		remove_entry(c, e);
		return false;
	}
	c->stats.hits++;
	if (c->head != e) {
		lru_unlink(c, e);
		lru_push_front(c, e);
	}
	if (val)
		*val = e->data + e->key_len;
	if (len)
		*len = e->val_len;
	return true;
}

int fl_cache_put(struct fl_cache *c, const void *key, size_t key_len, const void *val, size_t len,
		 uint64_t ttl_ns, uint64_t now_ns)
{
	uint64_t h = hash_key(key, key_len);
	struct entry *e, *old;
	size_t need = key_len + len;

	if (need < key_len || (c->max_bytes && need > c->max_bytes))
		return -E2BIG;
	old = *find_slot(c, key, key_len, h);
	if (old)
		remove_entry(c, old);
	if (need > SIZE_MAX - sizeof(*e))
		return -E2BIG;
	e = rs__malloc(c->alloc, sizeof(*e) + need);
	if (!e)
		return -ENOMEM;
	e->hash = h;
	e->expiry_ns = ttl_ns > UINT64_MAX - now_ns ? UINT64_MAX : now_ns + ttl_ns;
	e->key_len = key_len;
	e->val_len = len;
	if (key_len)
		memcpy(e->data, key, key_len);
	if (len)
		memcpy(e->data + key_len, val, len);
	/* Make room before linking, so the new entry is never its own victim. */
	while (c->count && (c->count + 1 > c->max_entries ||
			    (c->max_bytes && c->bytes + need > c->max_bytes))) {
		remove_entry(c, c->tail);
		c->stats.evictions++;
	}
	e->hnext = c->table[h & c->mask];
	c->table[h & c->mask] = e;
	lru_push_front(c, e);
	c->count++;
	c->bytes += need;
	c->stats.inserts++;
	return 0;
}

bool fl_cache_delete(struct fl_cache *c, const void *key, size_t key_len)
{
	struct entry *e = *find_slot(c, key, key_len, hash_key(key, key_len));

	if (!e)
		return false;
	remove_entry(c, e);
	return true;
}

size_t fl_cache_flush_prefix(struct fl_cache *c, const void *prefix, size_t prefix_len)
{
	struct entry *e, *next;
	size_t n = 0;

	for (e = c->head; e; e = next) {
		next = e->next;
		if (e->key_len >= prefix_len &&
		    (prefix_len == 0 || memcmp(e->data, prefix, prefix_len) == 0)) {
			remove_entry(c, e);
			n++;
		}
	}
	c->stats.flushed += n;
	return n;
}

size_t fl_cache_flush(struct fl_cache *c)
{
	return fl_cache_flush_prefix(c, "", 0);
}

size_t fl_cache_expire_all(struct fl_cache *c, uint64_t at_ns)
{
	size_t n = 0;

	for (struct entry *e = c->head; e; e = e->next) {
		e->expiry_ns = at_ns;
		n++;
	}
	return n;
}

size_t fl_cache_count(const struct fl_cache *c)
{
	return c->count;
}

size_t fl_cache_bytes(const struct fl_cache *c)
{
	return c->bytes;
}

const struct fl_cache_stats *fl_cache_stats(const struct fl_cache *c)
{
	return &c->stats;
}
