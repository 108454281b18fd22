/* The idempotency table: first-seen, in-progress and duplicate verdicts with
 * the stored result, expiry exactly at the ttl, oldest-completed eviction
 * that never touches entries in progress, and a reference model. */
#include "tests/tap.h"
#include "tests/failalloc.h"
#include "tests/promtext.h"

#include <errno.h>

#include "resilience/clock.h"
#include "resilience/idem.h"
#include "resilience/rng.h"

#define TTL (10 * RS_NS_PER_SEC)

static struct rs_idem *make(const struct rs_alloc *a, size_t capacity, const char *name)
{
	struct rs_idem *t = NULL;
	struct rs_err err = { "" };

	if (rs_idem_new(&t,
			&(struct rs_idem_opts){ .alloc = a,
						.name = name,
						.capacity = capacity,
						.key_max = 32,
						.result_max = 64,
						.ttl_ns = TTL,
						.seed = 11 },
			&err))
		bail_out("rs_idem_new: %s", err.msg);
	return t;
}

static int check(struct rs_idem *t, const char *key, uint64_t now, struct rs_idem_result *dup)
{
	return rs_idem_check(t, key, strlen(key), now, dup);
}

static int complete(struct rs_idem *t, const char *key, int status, const char *res, uint64_t now)
{
	return rs_idem_complete(t, key, strlen(key), status, res, strlen(res), now);
}

static void test_bad_opts(void)
{
	static const char long_name[] = "0123456789012345678901234567890123456789012345678";
	static const char *const field[] = { "name",	"name",	   "capacity",	 "capacity",
					     "key_max", "key_max", "result_max", "ttl_ns" };

	for (size_t i = 0; i < sizeof(field) / sizeof(field[0]); i++) {
		struct rs_idem_opts o = {
			.name = "i", .capacity = 8, .key_max = 8, .result_max = 8, .ttl_ns = 1
		};
		struct rs_idem *t = (struct rs_idem *)1;
		struct rs_err err = { "" };
		int rc;

		switch (i) {
		case 0:
			o.name = NULL;
			break;
		case 1:
			o.name = long_name;
			break;
		case 2:
			o.capacity = 0;
			break;
		case 3:
			o.capacity = RS_IDEM_CAPACITY_MAX + 1;
			break;
		case 4:
			o.key_max = 0;
			break;
		case 5:
			o.key_max = RS_IDEM_KEY_MAX + 1;
			break;
		case 6:
			o.result_max = RS_IDEM_RESULT_MAX + 1;
			break;
		default:
			o.ttl_ns = 0;
			break;
		}
		rc = rs_idem_new(&t, &o, &err);
		ok(rc == -EINVAL && t == NULL && strstr(err.msg, field[i]),
		   "bad option %zu: -EINVAL naming %s (%s)", i + 1, field[i], err.msg);
	}
}

static void test_alloc_failure(void)
{
	struct failalloc fa;
	struct rs_idem *t;
	struct rs_err err;
	int bad = 0, n, rc;

	for (n = 1;; n++) {
		failalloc_init(&fa, n);
		rc = rs_idem_new(&t,
				 &(struct rs_idem_opts){ .alloc = &fa.alloc,
							 .name = "i",
							 .capacity = 16,
							 .key_max = 16,
							 .result_max = 16,
							 .ttl_ns = 1 },
				 &err);
		if (rc == 0)
			break;
		bad += rc != -ENOMEM || fa.live != 0 || t != NULL || !strstr(err.msg, "idem");
	}
	rs_idem_free(t);
	ok(bad == 0 && fa.live == 0 && n == 6,
	   "allocation failures 1..5 return -ENOMEM and leak nothing; run %d succeeds", n);
}

static void test_verdicts(void)
{
	struct failalloc fa;
	struct rs_idem *t;
	struct rs_idem_result dup = { 0 };
	struct rs_idem_stats st;
	uint64_t t0 = 5 * RS_NS_PER_SEC, done = t0 + 2 * RS_NS_PER_MS, t1 = done + TTL,
		 t2 = t1 + 100 * TTL;
	long calls0;
	int rc;

	failalloc_init(&fa, 0);
	t = make(&fa.alloc, 8, "orders");
	calls0 = fa.calls;
	is_int(check(t, "order-1", t0, &dup), RS_IDEM_FIRST_SEEN, "a new key is first-seen");
	is_int(check(t, "order-1", t0 + 1000, &dup), RS_IDEM_IN_PROGRESS,
	       "the same key before completion is in progress");
	is_int(complete(t, "order-1", 201, "created order #1", done), 0,
	       "complete stores status 201 and 16 bytes");
	rc = check(t, "order-1", done + 1000, &dup);
	ok(rc == RS_IDEM_DUPLICATE && dup.status == 201 && dup.len == 16 &&
	       memcmp(dup.data, "created order #1", 16) == 0,
	   "the same key after completion is a duplicate with status 201 and the stored bytes");
	rs_idem_stats(t, &st);
	ok(st.first_seen == 1 && st.in_progress == 1 && st.duplicates == 1 && st.entries == 1 &&
	       st.running == 0,
	   "stats: first-seen 1, in progress 1, duplicates 1, 1 entry held");

	rc = check(t, "order-1", done + TTL - 1, &dup);
	ok(rc == RS_IDEM_DUPLICATE && dup.status == 201,
	   "at completion + ttl - 1 ns (10 s) still a duplicate");
	rc = check(t, "order-1", done + TTL, &dup);
	rs_idem_stats(t, &st);
	ok(rc == RS_IDEM_FIRST_SEEN && st.expired == 1 && st.first_seen == 2,
	   "at completion + ttl exactly the entry has expired (expired 1): first-seen again");

	is_int(check(t, "slow", t1, &dup), RS_IDEM_FIRST_SEEN, "slow: first-seen");
	is_int(check(t, "slow", t2, &dup), RS_IDEM_IN_PROGRESS,
	       "an entry in progress never expires (still in progress after 100 ttl)");

	is_int(complete(t, "nope", 0, "", t2), -ENOENT, "complete of an unknown key: -ENOENT");
	{
		char big[65] = { 0 };

		rc = rs_idem_complete(t, "slow", 4, 200, big, sizeof(big), t2);
		ok(rc == -EMSGSIZE && check(t, "slow", t2, &dup) == RS_IDEM_IN_PROGRESS,
		   "a 65-byte result (result_max 64): -EMSGSIZE, the entry stays in progress");
	}
	is_int(rs_idem_complete(t, "slow", 4, 204, NULL, 0, t2), 0,
	       "an empty result (NULL, 0) completes");
	rc = check(t, "slow", t2, &dup);
	ok(rc == RS_IDEM_DUPLICATE && dup.status == 204 && dup.len == 0,
	   "its duplicate returns status 204 and 0 bytes");
	is_int(complete(t, "slow", 200, "x", t2), -EALREADY,
	       "completing a completed key: -EALREADY");
	is_int(rs_idem_abort(t, "slow", 4), -EALREADY, "aborting a completed key: -EALREADY");
	is_int(rs_idem_abort(t, "gone", 4), -ENOENT, "aborting an unknown key: -ENOENT");
	is_int(check(t, "pay-7", t2, &dup), RS_IDEM_FIRST_SEEN, "pay-7: first-seen");
	is_int(rs_idem_abort(t, "pay-7", 5), 0, "the failed pay-7 is aborted");
	is_int(check(t, "pay-7", t2, &dup), RS_IDEM_FIRST_SEEN,
	       "after abort the key is first-seen again (a retry may run it)");
	ok(rs_idem_check(t, "", 0, t2, &dup) == -EINVAL &&
	       rs_idem_check(t, "0123456789012345678901234567890123", 33, t2, &dup) == -EINVAL &&
	       rs_idem_check(t, "k", 1, t2, NULL) == -EINVAL,
	   "key length 0 or 33 (key_max 32) or no result pointer: -EINVAL");
	is_int(fa.calls, calls0, "no allocation after construction");
	rs_idem_free(t);
}

static void test_eviction(void)
{
	struct rs_idem *t = make(NULL, 3, "small");
	struct rs_idem_result dup;
	struct rs_idem_stats st;
	int rc;

	/* Begun a, b, c; completed b (t=1), c (t=2), a (t=3): b is oldest. */
	rc = check(t, "a", 0, &dup);
	rc += check(t, "b", 0, &dup);
	rc += check(t, "c", 0, &dup);
	rc += complete(t, "b", 1, "B", 1);
	rc += complete(t, "c", 2, "C", 2);
	rc += complete(t, "a", 3, "A", 3);
	is_int(rc, 3 * RS_IDEM_FIRST_SEEN,
	       "capacity 3: a, b, c begun and completed in order b, c, a");
	rc = check(t, "d", 4, &dup);
	rs_idem_stats(t, &st);
	ok(rc == RS_IDEM_FIRST_SEEN && st.evicted == 1 && st.entries == 3,
	   "a 4th key is first-seen, evicting one entry (evicted 1, 3 held)");
	ok(check(t, "a", 4, &dup) == RS_IDEM_DUPLICATE && dup.status == 3 &&
	       check(t, "c", 4, &dup) == RS_IDEM_DUPLICATE && dup.status == 2,
	   "a and c survive: the evicted one is b, the oldest completed (not the oldest begun)");
	rc = check(t, "b", 5, &dup);
	rs_idem_stats(t, &st);
	ok(rc == RS_IDEM_FIRST_SEEN && st.evicted == 2 &&
	       check(t, "a", 5, &dup) == RS_IDEM_DUPLICATE,
	   "b is first-seen again and evicts c, the next oldest; a still a duplicate");
	/* Now: a done, d and b in progress.  Evicting must skip d and b. */
	rc = check(t, "e", 6, &dup);
	rs_idem_stats(t, &st);
	ok(rc == RS_IDEM_FIRST_SEEN && st.evicted == 3 && st.running == 3 &&
	       check(t, "d", 6, &dup) == RS_IDEM_IN_PROGRESS &&
	       check(t, "b", 6, &dup) == RS_IDEM_IN_PROGRESS,
	   "e evicts a, the only completed entry; d and b stay in progress");
	rc = check(t, "f", 7, &dup);
	rs_idem_stats(t, &st);
	ok(rc == -ENOSPC && st.full == 1 && st.entries == 3 && st.evicted == 3,
	   "all 3 in progress: a new key gets -ENOSPC (full 1), nothing evicted");
	is_int(check(t, "d", 7, &dup), RS_IDEM_IN_PROGRESS,
	       "a refused new key leaves the in-progress entries alone");
	rc = complete(t, "e", 0, "E", 8);
	rc += check(t, "f", 9, &dup);
	rs_idem_stats(t, &st);
	ok(rc == RS_IDEM_FIRST_SEEN && st.evicted == 4 && st.running == 3,
	   "once e completes, f evicts it (evicted 4)");
	rs_idem_free(t);
}

static void test_expo(void)
{
	struct rs_idem *a = make(NULL, 8, "orders"), *b = make(NULL, 8, "payments");
	const struct rs_idem *objs[2] = { a, b };
	struct rs_idem_result dup;
	char buf[1024], why[256] = "";
	struct rs_expo e;
	int rc;

	rc = check(a, "k", 0, &dup);  /* first-seen */
	rc += check(a, "k", 1, &dup); /* in progress */
	rc += complete(a, "k", 200, "ok", 2);
	rc += check(a, "k", 3, &dup); /* duplicate */
	rc += check(a, "j", 4, &dup); /* first-seen */
	rs_expo_init(&e, buf, sizeof(buf));
	rs_idem_expo(&e, objs, 2);
	ok(rc == 1 + 2 + 0 + 3 + 1 && rs_expo_finish(&e) == 0, "two tables export into 1 KiB");
	is_str(buf,
	       "# HELP resilience_idempotency_duplicates_total requests not run because an "
	       "earlier request with the same idempotency key completed or is running\n"
	       "# TYPE resilience_idempotency_duplicates_total counter\n"
	       "resilience_idempotency_duplicates_total{name=\"orders\"} 2\n"
	       "resilience_idempotency_duplicates_total{name=\"payments\"} 0\n"
	       "# HELP resilience_idempotency_entries idempotency keys held, in progress or "
	       "completed\n"
	       "# TYPE resilience_idempotency_entries gauge\n"
	       "resilience_idempotency_entries{name=\"orders\"} 2\n"
	       "resilience_idempotency_entries{name=\"payments\"} 0\n",
	       "exposition matches the golden text (duplicates count both verdicts)");
	rc = promtext_check(buf, why, sizeof(why));
	ok(rc == 4, "the strict text-format checker accepts it with 4 samples (%d %s)", rc, why);
	rs_idem_free(a);
	rs_idem_free(b);
}

/* 300000 random checks, completions and aborts over 64 keys in a table of
 * capacity 32 with a 20 ms ttl and time advancing 0..1 ms per step (seed
 * 5), against a model that keeps every entry explicitly. */
static void test_model(void)
{
	enum { KEYS = 64, CAP = 32, OPS = 300000 };
	const uint64_t ttl = 20 * RS_NS_PER_MS;
	struct {
		int state; /* 0 free, 1 in progress, 2 completed */
		uint64_t done_at, seq;
		int status;
	} m[KEYS] = { { 0 } };
	struct rs_idem *t;
	struct rs_idem_stats st;
	struct rs_idem_result dup;
	struct rs_err err;
	struct rs_rng rng;
	uint64_t now = 0, seq = 0, expired = 0, evicted = 0, dups = 0;
	int used = 0, mismatches = 0;
	char key[16];

	if (rs_idem_new(&t,
			&(struct rs_idem_opts){ .name = "model",
						.capacity = CAP,
						.key_max = 16,
						.result_max = 16,
						.ttl_ns = ttl,
						.seed = 5 },
			&err))
		bail_out("%s", err.msg);
	rs_rng_seed(&rng, 5);
	for (int i = 0; i < OPS; i++) {
		int k = (int)rs_rng_below(&rng, KEYS), op = (int)rs_rng_below(&rng, 10), want, rc;
		size_t kl = (size_t)snprintf(key, sizeof(key), "key-%d", k);

		now += rs_rng_below(&rng, RS_NS_PER_MS);
		if (op < 5) {
			for (int j = 0; j < KEYS; j++)
				if (m[j].state == 2 && m[j].done_at + ttl <= now) {
					m[j].state = 0;
					used--;
					expired++;
				}
			if (m[k].state == 1) {
				want = RS_IDEM_IN_PROGRESS;
			} else if (m[k].state == 2) {
				want = RS_IDEM_DUPLICATE;
				dups++;
			} else {
				int old = -1;

				for (int j = 0; used == CAP && j < KEYS; j++)
					if (m[j].state == 2 && (old < 0 || m[j].seq < m[old].seq))
						old = j;
				if (used == CAP && old >= 0) {
					m[old].state = 0;
					used--;
					evicted++;
				}
				want = used == CAP ? -ENOSPC : RS_IDEM_FIRST_SEEN;
				if (want == RS_IDEM_FIRST_SEEN) {
					m[k].state = 1;
					used++;
				}
			}
			rc = rs_idem_check(t, key, kl, now, &dup);
			if (rc == RS_IDEM_DUPLICATE)
				mismatches += dup.status != m[k].status || dup.len != kl ||
					      memcmp(dup.data, key, kl) != 0;
		} else if (op < 8) {
			want = m[k].state == 1 ? 0 : m[k].state == 2 ? -EALREADY : -ENOENT;
			if (want == 0) {
				m[k].state = 2;
				m[k].done_at = now;
				m[k].seq = ++seq;
				m[k].status = i;
			}
			rc = rs_idem_complete(t, key, kl, i, key, kl, now);
		} else {
			want = m[k].state == 1 ? 0 : m[k].state == 2 ? -EALREADY : -ENOENT;
			if (want == 0) {
				m[k].state = 0;
				used--;
			}
			rc = rs_idem_abort(t, key, kl);
		}
		mismatches += rc != want;
	}
	rs_idem_stats(t, &st);
	ok(mismatches == 0 && (int)st.entries == used && st.expired == expired &&
	       st.evicted == evicted && st.duplicates == dups,
	   "%d random operations over %d keys, capacity %d: every verdict and stored result as "
	   "the model (%d mismatches; %llu expired, %llu evicted, %llu duplicates)",
	   OPS, KEYS, CAP, mismatches, (unsigned long long)st.expired,
	   (unsigned long long)st.evicted, (unsigned long long)st.duplicates);
	rs_idem_free(t);
}

int main(void)
{
	plan(42);
	test_bad_opts();
	test_alloc_failure();
	test_verdicts();
	test_eviction();
	test_expo();
	test_model();
	return exit_status();
}
