/* The target's item cache: LRU order and eviction at capacity, TTL expiry
 * at exactly ttl, prefix flush, the synchronized expiry, byte bounds and the
 * counters, plus failing allocations. */
#include "tests/tap.h"
#include "tests/failalloc.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "target/cache.h"

#define S(x) x, strlen(x)

static bool has(struct fl_cache *c, const char *k, uint64_t now)
{
	return fl_cache_get(c, k, strlen(k), now, NULL, NULL);
}

static int put(struct fl_cache *c, const char *k, const char *v, uint64_t ttl, uint64_t now)
{
	return fl_cache_put(c, k, strlen(k), v, strlen(v), ttl, now);
}

int main(void)
{
	struct fl_cache *c = NULL;
	const struct fl_cache_stats *st;
	struct rs_err err = { "" };
	struct failalloc fa;
	const void *val;
	size_t len;
	char k[32];
	int rc, bad = 0;

	alarm(30);
	plan(38);

	/* Bad options. */
	rc = fl_cache_new(&c, &(struct fl_cache_opts){ .max_entries = 0 }, &err);
	ok(rc == -EINVAL && c == NULL && strstr(err.msg, "max_entries"),
	   "max_entries 0 is refused naming the field (%s)", err.msg);
	rc = fl_cache_new(&c, NULL, &err);
	is_int(rc, -EINVAL, "missing options are refused");

	/* LRU order and eviction at capacity 3. */
	rc = fl_cache_new(&c, &(struct fl_cache_opts){ .max_entries = 3 }, &err);
	if (rc)
		bail_out("fl_cache_new: %s", err.msg);
	st = fl_cache_stats(c);
	ok(!put(c, "a", "1", FL_CACHE_TTL_NONE, 0) && !put(c, "b", "2", FL_CACHE_TTL_NONE, 0) &&
	       !put(c, "c", "3", FL_CACHE_TTL_NONE, 0),
	   "three puts into a cache of 3");
	is_int(fl_cache_count(c), 3, "3 entries held");
	ok(fl_cache_get(c, S("a"), 0, &val, &len) && len == 1 && memcmp(val, "1", 1) == 0,
	   "get a returns its value '1' and makes a the most recently used");
	ok(!put(c, "d", "4", FL_CACHE_TTL_NONE, 0), "a 4th put at capacity succeeds");
	is_int(fl_cache_count(c), 3, "count stays at max_entries 3");
	ok(!has(c, "b", 0), "b, the least recently used, was evicted");
	ok(has(c, "a", 0) && has(c, "c", 0) && has(c, "d", 0), "a, c and d are still there");
	/* Recency now (most recent first): d, c, a.  Touch a: a, d, c. */
	ok(has(c, "a", 0), "touch a again");
	ok(!put(c, "e", "5", FL_CACHE_TTL_NONE, 0) && !has(c, "c", 0) && has(c, "d", 0),
	   "the next put evicts c (least recent after touching a and d), keeps d");
	is_int(st->evictions, 2, "2 evictions counted");
	ok(!put(c, "a", "replaced", FL_CACHE_TTL_NONE, 0) && fl_cache_count(c) == 3,
	   "put of an existing key replaces it without growing the count");
	ok(fl_cache_get(c, S("a"), 0, &val, &len) && len == 8 && memcmp(val, "replaced", 8) == 0,
	   "the replaced value is returned");
	is_int(st->evictions, 2, "a replacement is not an eviction");
	fl_cache_free(c);

	/* TTL: put at t = 1000 with ttl 500 -> hit at 1499, miss at 1500. */
	if (fl_cache_new(&c, &(struct fl_cache_opts){ .max_entries = 100 }, &err))
		bail_out("fl_cache_new: %s", err.msg);
	st = fl_cache_stats(c);
	rc = put(c, "item/1", "x", 500, 1000);
	ok(rc == 0 && has(c, "item/1", 1000) && has(c, "item/1", 1499),
	   "an entry put at t=1000 with ttl=500 ns hits at 1000 and at 1499 (ttl - 1)");
	ok(!has(c, "item/1", 1500), "and misses at 1500 (exactly ttl)");
	is_int(st->expired, 1, "expired counted once");
	is_int(fl_cache_count(c), 0, "the expired entry was removed by the get");
	ok(!put(c, "forever", "x", FL_CACHE_TTL_NONE, UINT64_MAX - 5) &&
	       has(c, "forever", UINT64_MAX - 1),
	   "FL_CACHE_TTL_NONE never expires (expiry saturates)");
	fl_cache_flush(c);

	/* Prefix flush removes exactly the matching keys. */
	for (int i = 0; i < 10; i++) {
		snprintf(k, sizeof(k), "item/%d", i);
		bad |= put(c, k, "v", FL_CACHE_TTL_NONE, 0);
		snprintf(k, sizeof(k), "user/%d", i);
		bad |= put(c, k, "v", FL_CACHE_TTL_NONE, 0);
	}
	bad |= put(c, "item", "v", FL_CACHE_TTL_NONE, 0); /* shorter than the prefix */
	bad |= put(c, "ite", "v", FL_CACHE_TTL_NONE, 0);
	ok(!bad && fl_cache_count(c) == 22, "22 entries: item/0..9, user/0..9, item, ite");
	is_int(fl_cache_flush_prefix(c, S("item/")), 10, "flush of prefix 'item/' removes 10");
	bad = 0;
	for (int i = 0; i < 10; i++) {
		snprintf(k, sizeof(k), "item/%d", i);
		bad += has(c, k, 0);
		snprintf(k, sizeof(k), "user/%d", i);
		bad += !has(c, k, 0);
	}
	ok(bad == 0 && has(c, "item", 0) && has(c, "ite", 0),
	   "no item/N left; every user/N, 'item' and 'ite' kept");
	is_int(fl_cache_flush(c), 12, "flush all removes the other 12");
	is_int(fl_cache_count(c) + fl_cache_bytes(c), 0, "empty: 0 entries, 0 bytes");

	/* Expire all at one instant: keys with various TTLs all miss from then on. */
	for (int i = 0; i < 50; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		bad |= put(c, k, "v", (uint64_t)(i + 1) * 1000000, 0);
	}
	is_int(fl_cache_expire_all(c, 5000), 50, "expire_all at t=5000 touches 50 entries");
	ok(has(c, "k0", 4999) && has(c, "k49", 4999), "before the instant they still hit");
	bad = 0;
	for (int i = 0; i < 50; i++) {
		snprintf(k, sizeof(k), "k%d", i);
		bad += has(c, k, 5000);
	}
	ok(bad == 0 && fl_cache_count(c) == 0,
	   "at the instant all 50 miss, TTL 1 ms or 50 ms alike");
	fl_cache_free(c);

	/* Byte bound: 3-byte keys + 10-byte values = 13 bytes each, bound 40. */
	if (fl_cache_new(&c, &(struct fl_cache_opts){ .max_entries = 100, .max_bytes = 40 }, &err))
		bail_out("fl_cache_new: %s", err.msg);
	st = fl_cache_stats(c);
	for (int i = 0; i < 5; i++) {
		snprintf(k, sizeof(k), "k%02d", i);
		bad |= put(c, k, "0123456789", FL_CACHE_TTL_NONE, 0);
	}
	ok(!bad && fl_cache_count(c) == 3 && fl_cache_bytes(c) == 39,
	   "bytes bound 40 holds 3 entries of 13 bytes (39)");
	ok(!has(c, "k00", 0) && !has(c, "k01", 0) && has(c, "k04", 0),
	   "the two oldest were evicted by bytes");
	is_int(put(c, "big", "0123456789012345678901234567890123456789", FL_CACHE_TTL_NONE, 0),
	       -E2BIG, "a value larger than max_bytes is refused with -E2BIG");
	is_int(fl_cache_count(c), 3, "and nothing was evicted for it");

	/* Counters over this cache: 2 hits, 2 misses so far (k00, k01 misses). */
	is_int(st->hits, 1, "hits counted (1)");
	is_int(st->misses, 2, "misses counted (2)");
	is_int(st->inserts, 5, "inserts counted (5)");
	fl_cache_free(c);

	bad = 0;
	/* Allocation failures: new fails cleanly; a failed put leaves no stale value. */
	for (int n = 1;; n++) {
		failalloc_init(&fa, n);
		rc = fl_cache_new(
		    &c, &(struct fl_cache_opts){ .max_entries = 8, .alloc = &fa.alloc }, NULL);
		if (rc == 0)
			break;
		bad |= rc != -ENOMEM || fa.live != 0 || c != NULL;
	}
	ok(!bad, "every failing allocation in fl_cache_new returns -ENOMEM and leaks nothing");
	fa.fail_at = 0;
	rc = put(c, "a", "old", FL_CACHE_TTL_NONE, 0);
	fa.fail_at = fa.calls + 1;
	ok(rc == 0 && put(c, "a", "new", FL_CACHE_TTL_NONE, 0) == -ENOMEM && !has(c, "a", 0),
	   "a put whose allocation fails returns -ENOMEM and drops the old value");
	fl_cache_free(c);
	is_int(fa.live, 0, "fl_cache_free releases every block");
	return exit_status();
}
