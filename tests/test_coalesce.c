/* Request coalescing: one computation per key in flight, every waiter gets
 * the leader's result, a full table refuses with -ENOSPC, cancellation and
 * re-entrant callbacks, and the table's index against a reference model. */
#include "tests/tap.h"
#include "tests/failalloc.h"
#include "tests/promtext.h"

#include <errno.h>

#include "resilience/coalesce.h"
#include "resilience/rng.h"

/* What the callbacks record, shared by the requests of one scenario. */
struct log {
	int order[256]; /* request ids in callback order */
	int n;
};

struct req {
	struct rs_coalesce_waiter w;
	struct log *log;
	int id, calls, status;
	char result[32];
	size_t len;
	/* re-entrant actions run from the callback */
	struct rs_coalesce *c;
	struct req *again;  /* begin the same key with this request */
	struct req *cancel; /* cancel this request's waiter */
	const char *key;
	int again_rc, cancel_rc;
};

static void on_result(struct rs_coalesce_waiter *w, int status, const void *result, size_t len)
{
	struct req *r = w->data;

	r->calls++;
	r->status = status;
	r->len = len < sizeof(r->result) ? len : sizeof(r->result);
	memcpy(r->result, result, r->len);
	if (r->log && r->log->n < 256)
		r->log->order[r->log->n++] = r->id;
	if (r->again)
		r->again_rc = rs_coalesce_begin(r->c, r->key, strlen(r->key), &r->again->w);
	if (r->cancel)
		r->cancel_rc = rs_coalesce_cancel(r->c, &r->cancel->w);
}

static void req_init(struct req *r, int id, struct log *log)
{
	memset(r, 0, sizeof(*r));
	r->id = id;
	r->log = log;
	rs_coalesce_waiter_init(&r->w, on_result, r);
}

static int begin_str(struct rs_coalesce *c, const char *key, struct req *r)
{
	return rs_coalesce_begin(c, key, strlen(key), &r->w);
}

static int finish_str(struct rs_coalesce *c, const char *key, int status, const char *result)
{
	return rs_coalesce_finish(c, key, strlen(key), status, result, strlen(result));
}

static struct rs_coalesce *make(const struct rs_alloc *a, size_t capacity, const char *name)
{
	struct rs_coalesce *c = NULL;
	struct rs_err err = { "" };

	if (rs_coalesce_new(
		&c,
		&(struct rs_coalesce_opts){
		    .alloc = a, .name = name, .capacity = capacity, .key_max = 32, .seed = 7 },
		&err))
		bail_out("rs_coalesce_new: %s", err.msg);
	return c;
}

static void test_bad_opts(void)
{
	static const char long_name[] = "0123456789012345678901234567890123456789012345678";
	static const struct {
		struct rs_coalesce_opts o;
		const char *field;
	} cases[] = {
		{ { .name = NULL, .capacity = 8, .key_max = 8 }, "name" },
		{ { .name = "", .capacity = 8, .key_max = 8 }, "name" },
		{ { .name = long_name, .capacity = 8, .key_max = 8 }, "name" },
		{ { .name = "c", .capacity = 0, .key_max = 8 }, "capacity" },
		{ { .name = "c", .capacity = RS_COALESCE_CAPACITY_MAX + 1, .key_max = 8 },
		  "capacity" },
		{ { .name = "c", .capacity = 8, .key_max = 0 }, "key_max" },
		{ { .name = "c", .capacity = 8, .key_max = RS_COALESCE_KEY_MAX + 1 }, "key_max" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rs_coalesce *c = (struct rs_coalesce *)1;
		struct rs_err err = { "" };
		int rc = rs_coalesce_new(&c, &cases[i].o, &err);

		ok(rc == -EINVAL && c == NULL && strstr(err.msg, cases[i].field),
		   "bad option %zu: -EINVAL naming %s (%s)", i + 1, cases[i].field, err.msg);
	}
}

static void test_alloc_failure(void)
{
	struct failalloc fa;
	struct rs_coalesce *c;
	struct rs_err err;
	int bad = 0, n, rc;

	for (n = 1;; n++) {
		failalloc_init(&fa, n);
		rc = rs_coalesce_new(
		    &c,
		    &(struct rs_coalesce_opts){
			.alloc = &fa.alloc, .name = "c", .capacity = 16, .key_max = 16 },
		    &err);
		if (rc == 0)
			break;
		bad += rc != -ENOMEM || fa.live != 0 || c != NULL || !strstr(err.msg, "coalesce");
	}
	rs_coalesce_free(c);
	ok(bad == 0 && fa.live == 0 && n == 5,
	   "allocation failures 1..4 return -ENOMEM and leak nothing; run %d succeeds", n);
}

enum { M = 100 };

static void test_stampede(void)
{
	static struct req r[M + 1];
	struct failalloc fa;
	struct log log = { .n = 0 };
	struct rs_coalesce *c;
	struct rs_coalesce_stats st;
	int computations = 0, joined = 0, got_result = 0, in_order = 1, rc;
	long calls0;

	failalloc_init(&fa, 0);
	c = make(&fa.alloc, 64, "profile");
	calls0 = fa.calls;
	for (int i = 0; i < M; i++) {
		req_init(&r[i], i, &log);
		rc = begin_str(c, "user:42", &r[i]);
		computations += rc == RS_COALESCE_LEADER;
		joined += rc == RS_COALESCE_JOINED;
	}
	rs_coalesce_stats(c, &st);
	ok(computations == 1 && joined == M - 1 && r[0].calls == 0,
	   "%d concurrent requests for one key: 1 leader (the first), %d joined", M, M - 1);
	ok(st.leaders == 1 && st.coalesced == M - 1 && st.in_flight == 1 && st.full == 0,
	   "stats: leaders 1, coalesced %d, in flight 1, full 0", M - 1);
	rc = finish_str(c, "user:42", 0, "profile-of-42");
	is_int(rc, M, "finish calls back all %d requests (the leader's too)", M);
	for (int i = 0; i < M; i++) {
		got_result += r[i].calls == 1 && r[i].status == 0 && r[i].len == 13 &&
			      memcmp(r[i].result, "profile-of-42", 13) == 0;
		in_order &= log.order[i] == i;
	}
	is_int(got_result, M, "every request got the leader's status 0 and result exactly once");
	ok(in_order && log.n == M, "callbacks run leader first, then waiters in arrival order");
	rs_coalesce_stats(c, &st);
	is_int((long long)st.in_flight, 0, "after finish nothing is in flight");

	req_init(&r[M], M, NULL);
	rc = begin_str(c, "user:42", &r[M]);
	is_int(rc, RS_COALESCE_LEADER, "after finish the next request for the key leads again");
	rc = begin_str(c, "user:42", &r[0]);
	is_int(rc, RS_COALESCE_JOINED, "a waiter is reusable after its callback ran (joins)");
	rc = begin_str(c, "user:42", &r[0]);
	is_int(rc, -EBUSY, "beginning with a waiter that is already waiting is -EBUSY");
	is_int(finish_str(c, "user:42", -EIO, "boom"), 2, "an error status reaches both waiters");
	ok(r[M].status == -EIO && r[0].status == -EIO,
	   "status -EIO delivered to leader and waiter");
	is_int(finish_str(c, "user:42", 0, ""), -ENOENT, "finishing a key not in flight: -ENOENT");
	is_int(fa.calls, calls0, "no allocation after construction (%d begins, 3 finishes)", M + 3);
	rs_coalesce_free(c);
}

static void test_keys_and_full(void)
{
	static struct req r[16];
	struct rs_coalesce *c = make(NULL, 4, "small");
	struct rs_coalesce_stats st;
	const char *keys[] = { "a", "b", "c", "d", "e" };
	int leaders = 0, rc;

	for (int i = 0; i < 16; i++)
		req_init(&r[i], i, NULL);
	for (int i = 0; i < 4; i++)
		leaders += begin_str(c, keys[i], &r[i]) == RS_COALESCE_LEADER;
	is_int(leaders, 4, "4 different keys get 4 different leaders");
	rc = begin_str(c, keys[4], &r[4]);
	rs_coalesce_stats(c, &st);
	ok(rc == -ENOSPC && st.full == 1 && r[4].w.list == NULL,
	   "a 5th key with capacity 4: -ENOSPC, counted (full 1), waiter not linked");
	rc = begin_str(c, "b", &r[5]);
	is_int(rc, RS_COALESCE_JOINED, "while full, a request for an in-flight key still joins");
	is_int(finish_str(c, "b", 0, "B"), 2, "finishing b answers its 2 requests");
	ok(r[1].calls == 1 && r[5].calls == 1 && r[1].result[0] == 'B' && r[0].calls == 0 &&
	       r[2].calls == 0 && r[3].calls == 0,
	   "b's result goes to b's requests only");
	rc = begin_str(c, keys[4], &r[4]);
	is_int(rc, RS_COALESCE_LEADER, "a freed slot takes the 5th key");
	rs_coalesce_stats(c, &st);
	ok(st.leaders == 5 && st.coalesced == 1 && st.full == 1 && st.in_flight == 4,
	   "stats: leaders 5, coalesced 1, full 1, in flight 4");

	/* Cancel: r[6] joins a and withdraws; it is not called back. */
	rc = begin_str(c, "a", &r[6]);
	ok(rc == RS_COALESCE_JOINED && rs_coalesce_cancel(c, &r[6].w) == 0 &&
	       rs_coalesce_cancel(c, &r[6].w) == -ENOENT,
	   "a cancelled waiter is unlinked; cancelling it again is -ENOENT");
	is_int(finish_str(c, "a", 0, "A"), 1, "finish skips the cancelled waiter (1 callback)");
	is_int(r[6].calls, 0, "the cancelled waiter was never called back");

	/* Re-entrant callback: c's leader asks for c again (and leads it),
	 * and cancels r[8], which has not been called back yet. */
	req_init(&r[7], 7, NULL);
	req_init(&r[8], 8, NULL);
	req_init(&r[9], 9, NULL);
	is_int(begin_str(c, "c", &r[7]), RS_COALESCE_JOINED, "r7 joins c");
	is_int(begin_str(c, "c", &r[8]), RS_COALESCE_JOINED, "r8 joins c");
	r[2].c = c;
	r[2].key = "c";
	r[2].again = &r[9];
	r[2].cancel = &r[8];
	rc = finish_str(c, "c", 0, "C");
	ok(rc == 2 && r[2].again_rc == RS_COALESCE_LEADER && r[2].cancel_rc == 0 &&
	       r[7].calls == 1 && r[8].calls == 0 && r[9].calls == 0,
	   "in a callback: begin on the finishing key leads anew, cancelling a pending waiter "
	   "skips it (2 callbacks)");
	is_int(finish_str(c, "c", 0, "C2"), 1, "the new computation of c finishes separately");

	ok(rs_coalesce_begin(c, "", 0, &r[10].w) == -EINVAL &&
	       rs_coalesce_begin(c, "0123456789012345678901234567890123", 33, &r[10].w) == -EINVAL,
	   "key length 0 or 33 (key_max 32): -EINVAL");
	r[10].w.cb = NULL;
	ok(rs_coalesce_begin(c, "x", 1, &r[10].w) == -EINVAL, "a waiter without callback: -EINVAL");
	rs_coalesce_free(c);
}

static void test_expo(void)
{
	static struct req r[4];
	struct rs_coalesce *a = make(NULL, 8, "profile"), *b = make(NULL, 8, "search");
	const struct rs_coalesce *objs[2] = { a, b };
	char buf[1024], why[256] = "";
	struct rs_expo e;
	int rc;

	for (int i = 0; i < 4; i++)
		req_init(&r[i], i, NULL);
	rc = begin_str(a, "k", &r[0]);
	rc += begin_str(a, "k", &r[1]);
	rc += begin_str(a, "k", &r[2]);
	rc += begin_str(b, "q", &r[3]);
	rs_expo_init(&e, buf, sizeof(buf));
	rs_coalesce_expo(&e, objs, 2);
	ok(rc == 1 + 2 + 2 + 1 && rs_expo_finish(&e) == 0, "two tables export into 1 KiB");
	is_str(buf,
	       "# HELP resilience_coalesced_total requests that joined an in-flight computation "
	       "for their key instead of computing it\n"
	       "# TYPE resilience_coalesced_total counter\n"
	       "resilience_coalesced_total{name=\"profile\"} 2\n"
	       "resilience_coalesced_total{name=\"search\"} 0\n"
	       "# HELP resilience_coalesce_in_flight keys whose computation is in flight\n"
	       "# TYPE resilience_coalesce_in_flight gauge\n"
	       "resilience_coalesce_in_flight{name=\"profile\"} 1\n"
	       "resilience_coalesce_in_flight{name=\"search\"} 1\n",
	       "exposition matches the golden text");
	rc = promtext_check(buf, why, sizeof(why));
	ok(rc == 4, "the strict text-format checker accepts it with 4 samples (%d %s)", rc, why);
	rs_coalesce_free(a);
	rs_coalesce_free(b);
}

/* 200000 random begins and finishes over 96 keys in a table of capacity
 * 64, against a model: exercises probing and backward-shift deletion
 * (seed 3, key_max 32, a 128-cell index). */
static void test_model(void)
{
	enum { KEYS = 96, OPS = 200000 };
	static struct req r[KEYS];
	int inflight[KEYS] = { 0 }, used = 0, mismatches = 0;
	struct rs_coalesce *c = make(NULL, 64, "model");
	struct rs_coalesce_stats st;
	struct rs_rng rng;
	char key[16];

	rs_rng_seed(&rng, 3);
	for (int i = 0; i < OPS; i++) {
		int k = (int)rs_rng_below(&rng, KEYS), rc, want;

		snprintf(key, sizeof(key), "key-%d", k);
		if (rs_rng_below(&rng, 2)) {
			if (!inflight[k])
				req_init(&r[k], k, NULL);
			want = inflight[k]  ? -EBUSY /* r[k] is the one waiting */
			       : used == 64 ? -ENOSPC
					    : RS_COALESCE_LEADER;
			rc = begin_str(c, key, &r[k]);
			if (rc == RS_COALESCE_LEADER) {
				inflight[k] = 1;
				used++;
			}
		} else {
			want = inflight[k] ? 1 : -ENOENT;
			rc = finish_str(c, key, 0, key);
			if (rc == 1) {
				inflight[k] = 0;
				used--;
			}
		}
		mismatches += rc != want;
	}
	rs_coalesce_stats(c, &st);
	ok(mismatches == 0 && (int)st.in_flight == used,
	   "%d random begin/finish over %d keys, capacity 64: every result as the model "
	   "(%d mismatches), in flight %d",
	   OPS, KEYS, mismatches, used);
	rs_coalesce_free(c);
}

int main(void)
{
	plan(41);
	test_bad_opts();
	test_alloc_failure();
	test_stampede();
	test_keys_and_full();
	test_expo();
	test_model();
	return exit_status();
}
