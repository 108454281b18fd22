/* Sliding windows: the count ring and the time buckets hold exactly the
 * outcomes they should across wrap-around, bucket expiry and resets, and
 * two threads recording at once lose no count. */
#include "tests/tap.h"
#include "tests/failalloc.h"

#include <errno.h>
#include <pthread.h>

#include "resilience/clock.h"
#include "resilience/rng.h"
#include "resilience/window.h"

#define SEC RS_NS_PER_SEC

static int same(const struct rs_window_counts *a, const struct rs_window_counts *b)
{
	return a->calls == b->calls && a->failures == b->failures && a->slow == b->slow &&
	       a->rejected == b->rejected;
}

static void show(const char *what, const struct rs_window_counts *c)
{
	diag("%s: calls %llu failures %llu slow %llu rejected %llu", what,
	     (unsigned long long)c->calls, (unsigned long long)c->failures,
	     (unsigned long long)c->slow, (unsigned long long)c->rejected);
}

static unsigned random_outcome(struct rs_rng *r)
{
	static const unsigned all[] = { RS_WINDOW_SUCCESS,
					RS_WINDOW_SUCCESS,
					RS_WINDOW_FAILURE,
					RS_WINDOW_SLOW,
					RS_WINDOW_FAILURE | RS_WINDOW_SLOW,
					RS_WINDOW_REJECTED };

	return all[rs_rng_below(r, sizeof(all) / sizeof(all[0]))];
}

static void add_outcome(struct rs_window_counts *c, unsigned o, int sign)
{
	c->calls += (uint64_t)sign;
	c->failures += (uint64_t)(sign * !!(o & RS_WINDOW_FAILURE));
	c->slow += (uint64_t)(sign * !!(o & RS_WINDOW_SLOW));
	c->rejected += (uint64_t)(sign * !!(o & RS_WINDOW_REJECTED));
}

static void test_count_basics(void)
{
	struct rs_window w;
	struct rs_window_counts c;
	struct rs_err err = { "" };
	int rc;

	rc = rs_window_init(&w, &(struct rs_window_opts){ .kind = RS_WINDOW_COUNT, .size = 5 },
			    &err);
	is_int(rc, 0, "count window of 5 initialises");
	rs_window_snapshot(&w, 0, &c);
	ok(c.calls == 0 && c.failures == 0, "an empty count window holds 0 calls");

	rs_window_record(&w, RS_WINDOW_FAILURE, 0);
	rs_window_record(&w, RS_WINDOW_SUCCESS, 0);
	rs_window_record(&w, RS_WINDOW_FAILURE | RS_WINDOW_SLOW, 0);
	rs_window_snapshot(&w, 0, &c);
	ok(c.calls == 3 && c.failures == 2 && c.slow == 1 && c.rejected == 0,
	   "3 of 5 filled: 3 calls, 2 failures, 1 slow");
	rs_window_record(&w, RS_WINDOW_SLOW, 0);
	rs_window_record(&w, RS_WINDOW_REJECTED | RS_WINDOW_FAILURE, 0);
	rs_window_snapshot(&w, 0, &c);
	ok(c.calls == 5 && c.failures == 2 && c.slow == 2 && c.rejected == 1,
	   "full at 5: 2 failures, 2 slow, 1 rejected (rejected ignores its failure flag)");
	if (!(c.calls == 5 && c.failures == 2 && c.slow == 2 && c.rejected == 1))
		show("got", &c);
	rs_window_record(&w, RS_WINDOW_SUCCESS, 0); /* evicts the 1st: a failure */
	rs_window_snapshot(&w, 0, &c);
	ok(c.calls == 5 && c.failures == 1 && c.slow == 2,
	   "the 6th outcome evicts the 1st (failure): 1 failure, 2 slow left");
	rs_window_record(&w, RS_WINDOW_SUCCESS, 0); /* evicts the 2nd: success */
	rs_window_record(&w, RS_WINDOW_SUCCESS, 0); /* evicts the 3rd: slow failure */
	rs_window_snapshot(&w, 0, &c);
	ok(c.calls == 5 && c.failures == 0 && c.slow == 1 && c.rejected == 1,
	   "the 8th outcome evicts the slow failure: 0 failures, 1 slow, 1 rejected");
	is_int((long long)rs_window_total(&w), 8, "total counts all 8 outcomes ever recorded");

	rs_window_reset(&w, 0);
	rs_window_snapshot(&w, 0, &c);
	ok(c.calls == 0 && c.failures == 0 && c.slow == 0 && c.rejected == 0,
	   "after reset the count window holds nothing");
	rs_window_record(&w, RS_WINDOW_FAILURE, 0);
	rs_window_record(&w, RS_WINDOW_FAILURE, 0);
	rs_window_snapshot(&w, 0, &c);
	ok(c.calls == 2 && c.failures == 2, "after reset it fills again: 2 calls, 2 failures");
	is_int((long long)rs_window_total(&w), 10, "reset keeps the total (10)");
	rs_window_release(&w);
	rs_window_release(&w);
	ok(1, "release twice is harmless");
}

/* A reference model: the last W outcomes in an array. */
static void test_count_model(uint32_t size, int n, uint64_t seed)
{
	struct rs_window w;
	struct rs_window_counts c, r, want = { 0 };
	struct rs_rng rng;
	unsigned *ring = calloc(size, sizeof(*ring));
	int bad = -1, rc;

	rc = rs_window_init(&w, &(struct rs_window_opts){ .kind = RS_WINDOW_COUNT, .size = size },
			    NULL);
	if (rc || !ring)
		bail_out("cannot set up a count window of %u", size);
	rs_rng_seed(&rng, seed);
	for (int i = 0; i < n && bad < 0; i++) {
		unsigned o = random_outcome(&rng);

		if ((uint64_t)i >= size)
			add_outcome(&want, ring[i % size], -1);
		ring[i % size] = (o & RS_WINDOW_REJECTED) ? RS_WINDOW_REJECTED : o;
		add_outcome(&want, ring[i % size], +1);
		rs_window_record(&w, o, 0);
		rs_window_snapshot(&w, 0, &c);
		rs_window_recount(&w, &r);
		if (!same(&c, &want) || !same(&r, &want))
			bad = i;
	}
	ok(bad < 0, "count window of %u matches a model after each of %d random outcomes (%d laps)",
	   size, n, n / (int)size);
	if (bad >= 0) {
		diag("first mismatch after outcome %d", bad);
		show("window", &c);
		show("model", &want);
	}
	free(ring);
	rs_window_release(&w);
}

static void test_time_basics(void)
{
	struct rs_window w;
	struct rs_window_counts c;
	int rc;

	/* 10 s in 10 buckets of 1 s: at time t the window holds the buckets
	 * floor(t) - 9 .. floor(t). */
	rc = rs_window_init(&w,
			    &(struct rs_window_opts){
				.kind = RS_WINDOW_TIME, .length_ns = 10 * SEC, .buckets = 10 },
			    NULL);
	is_int(rc, 0, "time window 10 s / 10 buckets initialises");
	rs_window_record(&w, RS_WINDOW_FAILURE, SEC / 2);	/* bucket 0 */
	rs_window_record(&w, RS_WINDOW_SUCCESS, SEC + SEC / 2); /* bucket 1 */
	rs_window_record(&w, RS_WINDOW_SLOW, 5 * SEC);		/* bucket 5 */
	rs_window_snapshot(&w, 5 * SEC, &c);
	ok(c.calls == 3 && c.failures == 1 && c.slow == 1, "at 5 s: 3 calls, 1 failure, 1 slow");
	rs_window_snapshot(&w, 10 * SEC - 1, &c);
	ok(c.calls == 3 && c.failures == 1, "at 10 s - 1 ns bucket 0 is still in: 3 calls");
	rs_window_snapshot(&w, 10 * SEC, &c);
	ok(c.calls == 2 && c.failures == 0 && c.slow == 1,
	   "at exactly 10 s bucket 0 expires: 2 calls, 0 failures");
	rs_window_snapshot(&w, 11 * SEC, &c);
	ok(c.calls == 1 && c.slow == 1, "at 11 s bucket 1 expires too: 1 call (the slow one)");
	rs_window_snapshot(&w, 15 * SEC, &c);
	ok(c.calls == 0 && c.slow == 0, "at 15 s everything expired: 0 calls");
	rs_window_snapshot(&w, 2 * SEC, &c);
	ok(c.calls == 3,
	   "a snapshot older than the newest bucket reads as of that bucket (3 calls)");

	rs_window_record(&w, RS_WINDOW_REJECTED, 30 * SEC);
	rs_window_record(&w, RS_WINDOW_FAILURE, 30 * SEC + 1);
	rs_window_snapshot(&w, 30 * SEC, &c);
	ok(c.calls == 2 && c.rejected == 1 && c.failures == 1,
	   "after a 25 s gap only the new bucket counts: 2 calls, 1 rejected, 1 failure");
	rs_window_reset(&w, 30 * SEC + 5);
	rs_window_snapshot(&w, 30 * SEC + 5, &c);
	ok(c.calls == 0, "reset empties the time window");
	rs_window_record(&w, RS_WINDOW_FAILURE, 31 * SEC);
	rs_window_snapshot(&w, 39 * SEC, &c);
	ok(c.calls == 1 && c.failures == 1, "after reset it counts again: 1 failure at 39 s");
	rs_window_snapshot(&w, 41 * SEC, &c);
	ok(c.calls == 0, "and the reset stays in force as its buckets expire (0 at 41 s)");
	is_int((long long)rs_window_total(&w), 6, "the time window's total is 6");
	rs_window_release(&w);
}

/* Random times and outcomes against a model that keeps every outcome with
 * its bucket and counts those inside [E - B + 1, E]. */
static void test_time_model(uint32_t buckets, uint64_t bucket_ns, int n, uint64_t seed)
{
	struct rs_window w;
	struct rs_window_counts c, want;
	struct rs_rng rng;
	uint64_t *when = calloc((size_t)n, sizeof(*when));
	unsigned *what = calloc((size_t)n, sizeof(*what));
	uint64_t now = 0;
	int bad = -1, checks = 0, rc;

	rc = rs_window_init(&w,
			    &(struct rs_window_opts){ .kind = RS_WINDOW_TIME,
						      .length_ns = buckets * bucket_ns,
						      .buckets = buckets },
			    NULL);
	if (rc || !when || !what)
		bail_out("cannot set up a time window");
	rs_rng_seed(&rng, seed);
	for (int i = 0; i < n && bad < 0; i++) {
		/* Mostly small steps, sometimes a jump of several windows. */
		now += rs_rng_below(&rng, 8) == 0 ? rs_rng_below(&rng, 3 * buckets * bucket_ns)
						  : rs_rng_below(&rng, bucket_ns / 2);
		when[i] = now;
		what[i] = random_outcome(&rng);
		rs_window_record(&w, what[i], now);
		for (int probe = 0; probe < 2; probe++) {
			uint64_t t =
			    now + (probe ? rs_rng_below(&rng, 2 * buckets * bucket_ns) : 0);
			uint64_t e = t / bucket_ns, lo = e + 1 >= buckets ? e + 1 - buckets : 0;

			memset(&want, 0, sizeof(want));
			for (int j = 0; j <= i; j++) {
				uint64_t ej = when[j] / bucket_ns;

				if (ej >= lo && ej <= e)
					add_outcome(&want,
						    (what[j] & RS_WINDOW_REJECTED)
							? RS_WINDOW_REJECTED
							: what[j],
						    +1);
			}
			rs_window_snapshot(&w, t, &c);
			checks++;
			if (!same(&c, &want)) {
				bad = i;
				show("window", &c);
				show("model", &want);
				break;
			}
		}
	}
	ok(bad < 0, "time window of %u buckets matches a model over %d outcomes (%d snapshots)",
	   buckets, n, checks);
	if (bad >= 0)
		diag("first mismatch after outcome %d", bad);
	free(when);
	free(what);
	rs_window_release(&w);
}

enum { PER_THREAD = 1000000 };

struct worker {
	struct rs_window *w;
	int id;
	int time_step;		 /* 0: all at one instant; else ns per outcome */
	_Atomic uint64_t *clock; /* shared by the threads when time_step > 0 */
	uint64_t failures;
};

static void *work(void *arg)
{
	struct worker *k = arg;

	for (int i = 0; i < PER_THREAD; i++) {
		/* Thread 0 fails every 3rd call, thread 1 every 5th; each also
		 * marks every 7th call slow. */
		int fail = i % (k->id ? 5 : 3) == 0;
		unsigned o = (fail ? RS_WINDOW_FAILURE : 0) | (i % 7 == 0 ? RS_WINDOW_SLOW : 0);

		uint64_t now = k->time_step ? atomic_fetch_add(k->clock, (uint64_t)k->time_step) +
						  (uint64_t)k->time_step
					    : 1;

		k->failures += (uint64_t)fail;
		rs_window_record(k->w, o, now);
	}
	return NULL;
}

static void run_two(struct rs_window *w, int time_step, uint64_t *failures)
{
	pthread_t t[2];
	_Atomic uint64_t clock = 0;
	struct worker k[2] = { { w, 0, time_step, &clock, 0 }, { w, 1, time_step, &clock, 0 } };

	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, work, &k[i]))
			bail_out("cannot create a thread");
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	*failures = k[0].failures + k[1].failures;
}

static void test_threads(void)
{
	struct rs_window w;
	struct rs_window_counts c, r;
	uint64_t failures;

	if (rs_window_init(&w, &(struct rs_window_opts){ .kind = RS_WINDOW_COUNT, .size = 100 },
			   NULL))
		bail_out("cannot set up a count window");
	run_two(&w, 0, &failures);
	rs_window_snapshot(&w, 0, &c);
	rs_window_recount(&w, &r);
	is_int((long long)rs_window_total(&w), 2 * PER_THREAD,
	       "2 threads x 1e6 outcomes: the count window's total is exactly 2000000");
	ok(same(&c, &r) && c.calls == 100,
	   "after 2e6 concurrent outcomes the ring's counts equal a recount of its 100 slots "
	   "(%llu failures, %llu slow)",
	   (unsigned long long)r.failures, (unsigned long long)r.slow);
	if (!same(&c, &r)) {
		show("counters", &c);
		show("slots", &r);
	}
	rs_window_release(&w);

	if (rs_window_init(&w,
			   &(struct rs_window_opts){
			       .kind = RS_WINDOW_TIME, .length_ns = 10 * SEC, .buckets = 10 },
			   NULL))
		bail_out("cannot set up a time window");
	run_two(&w, 0, &failures);
	rs_window_snapshot(&w, 1, &c);
	ok(c.calls == 2 * PER_THREAD && c.failures == failures,
	   "2 threads x 1e6 outcomes in one bucket: exactly 2000000 calls and %llu failures",
	   (unsigned long long)failures);
	if (!(c.calls == 2 * PER_THREAD && c.failures == failures))
		show("got", &c);
	rs_window_release(&w);

	/* Both threads take turns on one clock, 1 ms per outcome, through
	 * 2000 s, rolling 100 ms buckets concurrently. */
	if (rs_window_init(
		&w,
		&(struct rs_window_opts){ .kind = RS_WINDOW_TIME, .length_ns = SEC, .buckets = 10 },
		NULL))
		bail_out("cannot set up a time window");
	run_two(&w, (int)RS_NS_PER_MS, &failures);
	rs_window_snapshot(&w, 2 * (uint64_t)PER_THREAD * RS_NS_PER_MS, &c);
	is_int((long long)rs_window_total(&w), 2 * PER_THREAD,
	       "concurrent bucket rolls lose no outcome: total exactly 2000000");
	/* At 2000 s the window is buckets 19991..20000: the outcomes stamped
	 * 1999.100 s .. 2000.000 s, 901 of them.  Racing threads may move an
	 * outcome stamped just before a roll into the next bucket, and a roll
	 * preempted between its CAS and reading the totals can fold up to a
	 * bucket (100 outcomes) into the one before: tolerance 110. */
	ok(c.calls >= 901 - 110 && c.calls <= 901 + 110,
	   "the last 1 s window holds 901 calls within 110 (%llu)", (unsigned long long)c.calls);
	rs_window_snapshot(&w, 2 * (uint64_t)PER_THREAD * RS_NS_PER_MS + 2 * SEC, &c);
	ok(c.calls == 0, "2 s later every bucket has expired (0 calls)");
	rs_window_release(&w);
}

static void test_bad_options(void)
{
	static const struct {
		struct rs_window_opts o;
		const char *field;
	} cases[] = {
		{ { .kind = RS_WINDOW_NONE, .size = 10 }, "kind" },
		{ { .kind = 7, .size = 10 }, "kind" },
		{ { .kind = RS_WINDOW_COUNT, .size = 0 }, "size" },
		{ { .kind = RS_WINDOW_COUNT, .size = RS_WINDOW_MAX_SIZE + 1 }, "size" },
		{ { .kind = RS_WINDOW_TIME, .length_ns = SEC, .buckets = 0 }, "buckets" },
		{ { .kind = RS_WINDOW_TIME,
		    .length_ns = SEC,
		    .buckets = RS_WINDOW_MAX_BUCKETS + 1 },
		  "buckets" },
		{ { .kind = RS_WINDOW_TIME, .length_ns = 0, .buckets = 10 }, "length_ns" },
		{ { .kind = RS_WINDOW_TIME, .length_ns = 1000, .buckets = 3 }, "length_ns" },
	};
	int n = (int)(sizeof(cases) / sizeof(cases[0])), good = 0;

	for (int i = 0; i < n; i++) {
		struct rs_window w;
		struct rs_err err = { "" };
		int rc = rs_window_init(&w, &cases[i].o, &err);

		if (rc == -EINVAL && strstr(err.msg, cases[i].field) &&
		    strncmp(err.msg, "window: ", 8) == 0)
			good++;
		else
			diag("case %d: rc %d, message '%s', wanted field '%s'", i, rc, err.msg,
			     cases[i].field);
		rs_window_release(&w);
	}
	is_int(good, n, "all %d bad window options give -EINVAL naming the field", n);
	{
		struct rs_window w;
		struct rs_err err = { "" };
		int rc = rs_window_init(&w, NULL, &err);

		ok(rc == -EINVAL && strstr(err.msg, "options"), "NULL options give -EINVAL (%s)",
		   err.msg);
	}
}

static void test_alloc_failures(void)
{
	static const struct rs_window_opts base[2] = {
		{ .kind = RS_WINDOW_COUNT, .size = 100 },
		{ .kind = RS_WINDOW_TIME, .length_ns = SEC, .buckets = 10 },
	};

	for (int k = 0; k < 2; k++) {
		struct failalloc fa;
		int failures = 0, wrong = 0, n;

		for (n = 1; n < 100; n++) {
			struct rs_window w;
			struct rs_window_opts o = base[k];
			struct rs_err err = { "" };
			int rc;

			failalloc_init(&fa, n);
			o.alloc = &fa.alloc;
			rc = rs_window_init(&w, &o, &err);
			if (rc == 0) {
				rs_window_record(&w, RS_WINDOW_FAILURE, 1);
				rs_window_release(&w);
				wrong += fa.live != 0;
				break;
			}
			failures++;
			wrong += rc != -ENOMEM || fa.live != 0 || !strstr(err.msg, "out of memory");
		}
		ok(wrong == 0 && failures >= 1,
		   "%s window: failing allocation 1..%d gives -ENOMEM with nothing leaked, "
		   "then it works",
		   k ? "time" : "count", failures);
	}
}

int main(void)
{
	plan(39);
	test_count_basics();
	test_count_model(1, 50, 1);
	test_count_model(7, 5000, 2);
	test_count_model(100, 20000, 3);
	test_time_basics();
	test_time_model(10, 1000, 3000, 4);
	test_time_model(1, 500, 1000, 5);
	test_time_model(4, 7, 2000, 6);
	test_threads();
	test_bad_options();
	test_alloc_failures();
	return exit_status();
}
