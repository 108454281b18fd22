/* Bulkhead: admission, FIFO hand-over on release, expiry through the
 * callback, and 100k seeded random operations checked against a model. */
#include "tests/tap.h"
#include "tests/failalloc.h"
#include "tests/promtext.h"

#include <errno.h>

#include "resilience/bulkhead.h"
#include "resilience/clock.h"
#include "resilience/rng.h"

#define MS RS_NS_PER_MS

/* ---- a small recorder for the scripted tests ---------------------------- */

struct rec {
	struct rs_bulkhead_waiter w;
	char name;
	int calls;
	enum rs_bulkhead_result last;
};

static char order[64];
static size_t norder;

static void rec_cb(struct rs_bulkhead_waiter *w, enum rs_bulkhead_result r)
{
	struct rec *x = w->ctx;

	x->calls++;
	x->last = r;
	if (norder < sizeof(order) - 1)
		order[norder++] = r == RS_BULKHEAD_ADMITTED ? x->name : (char)(x->name - 'A' + 'a');
}

static void rec_init(struct rec *x, char name)
{
	x->name = name;
	x->calls = 0;
	rs_bulkhead_waiter_init(&x->w, rec_cb, x);
}

static struct rs_bulkhead *mk(const char *name, uint32_t max, uint32_t queue, uint64_t wait)
{
	struct rs_bulkhead *b;
	struct rs_err err;

	if (rs_bulkhead_new(
		&b,
		&(struct rs_bulkhead_opts){
		    .name = name, .max_concurrent = max, .max_queue = queue, .max_wait_ns = wait },
		&err))
		bail_out("rs_bulkhead_new: %s", err.msg);
	return b;
}

static void bad_options(void)
{
	static const struct {
		struct rs_bulkhead_opts o;
		const char *field;
	} cases[] = {
		{ { .name = NULL, .max_concurrent = 1 }, "name" },
		{ { .name = "", .max_concurrent = 1 }, "name" },
		{ { .name = "0123456789012345678901234567890123456789012345678",
		    .max_concurrent = 1 },
		  "name" },
		{ { .name = "db", .max_concurrent = 0 }, "max_concurrent" },
		{ { .name = "db", .max_concurrent = 4, .max_queue = 8, .max_wait_ns = 0 },
		  "max_wait_ns" },
	};
	struct rs_bulkhead *b;
	struct rs_err err;
	struct failalloc fa;
	int rc, bad = 0, n;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err.msg[0] = '\0';
		b = (struct rs_bulkhead *)&err;
		rc = rs_bulkhead_new(&b, &cases[i].o, &err);
		ok(rc == -EINVAL && !b && strstr(err.msg, cases[i].field),
		   "bad %s: -EINVAL naming it (%s)", cases[i].field, err.msg);
	}
	ok(rs_bulkhead_new(&b, &(struct rs_bulkhead_opts){ .name = "db", .max_concurrent = 1 },
			   &err) == 0,
	   "max_queue 0 needs no max_wait_ns (a plain semaphore)");
	rs_bulkhead_free(b);
	rs_bulkhead_free(NULL);

	for (n = 1;; n++) {
		failalloc_init(&fa, n);
		rc = rs_bulkhead_new(&b,
				     &(struct rs_bulkhead_opts){ .name = "db",
								 .max_concurrent = 2,
								 .max_queue = 2,
								 .max_wait_ns = MS,
								 .alloc = &fa.alloc },
				     &err);
		if (rc == 0)
			break;
		bad |= rc != -ENOMEM || fa.live != 0 || b != NULL;
	}
	rs_bulkhead_free(b);
	ok(!bad && n == 2 && fa.live == 0,
	   "failing allocation 1 gives -ENOMEM and leaks nothing; allocation 2 succeeds");
}

static void scripted(void)
{
	struct rs_bulkhead *b = mk("db", 2, 2, 100 * MS);
	struct rs_bulkhead_stats st;
	struct rec c, d, e, f, g;

	rec_init(&c, 'C');
	rec_init(&d, 'D');
	rec_init(&e, 'E');
	rec_init(&f, 'F');
	rec_init(&g, 'G');
	norder = 0;
	ok(rs_bulkhead_try_acquire(b, NULL, 0) == RS_BULKHEAD_ADMITTED &&
	       rs_bulkhead_try_acquire(b, NULL, 0) == RS_BULKHEAD_ADMITTED,
	   "max_concurrent 2: the first two are admitted at once");
	ok(rs_bulkhead_try_acquire(b, NULL, 0) == RS_BULKHEAD_REJECTED,
	   "the third without a waiter node is rejected");
	ok(rs_bulkhead_try_acquire(b, &c.w, 0) == RS_BULKHEAD_QUEUED &&
	       rs_bulkhead_try_acquire(b, &d.w, 10 * MS) == RS_BULKHEAD_QUEUED,
	   "C (t=0) and D (t=10ms) queue");
	ok(rs_bulkhead_try_acquire(b, &e.w, 20 * MS) == RS_BULKHEAD_REJECTED && e.calls == 0,
	   "E is rejected at once: queue bound 2 reached; no callback");
	ok(rs_bulkhead_try_acquire(b, &c.w, 20 * MS) == RS_BULKHEAD_REJECTED,
	   "an already queued node cannot queue twice");
	is_int((long long)rs_bulkhead_next_deadline(b), 100 * (long long)MS,
	       "next deadline is C's: 0 + 100 ms");
	is_int(rs_bulkhead_release(b, 30 * MS), 0, "release at 30 ms");
	ok(c.calls == 1 && c.last == RS_BULKHEAD_ADMITTED && d.calls == 0,
	   "... hands the slot to C, the oldest waiter, through its callback");
	is_int(rs_bulkhead_in_flight(b), 2, "in_flight stays 2: the slot passed straight to C");
	ok(rs_bulkhead_try_acquire(b, &f.w, 40 * MS) == RS_BULKHEAD_QUEUED,
	   "F queues behind D (t=40ms)");
	is_int((long long)rs_bulkhead_expire(b, 110 * MS - 1), 0,
	       "expire at 109.999999 ms: D has waited 1 ns less than max wait, stays");
	is_int((long long)rs_bulkhead_expire(b, 110 * MS), 1,
	       "expire at 110 ms: D (queued 10 ms) times out");
	ok(d.calls == 1 && d.last == RS_BULKHEAD_TIMED_OUT, "D got its callback with TIMED_OUT");
	ok(rs_bulkhead_cancel(b, &d.w) == -ENOENT, "cancelling D now is -ENOENT");
	ok(rs_bulkhead_try_acquire(b, &g.w, 120 * MS) == RS_BULKHEAD_QUEUED,
	   "G queues (t=120ms) behind F");
	ok(rs_bulkhead_cancel(b, &f.w) == 0 && f.calls == 0, "F is cancelled: no callback");
	is_int(rs_bulkhead_release(b, 200 * MS), 0, "release at 200 ms");
	ok(g.calls == 1 && g.last == RS_BULKHEAD_ADMITTED, "G is admitted (80 ms < max wait)");
	order[norder] = '\0';
	is_str(order, "CdG", "callback order: C admitted, D timed out, G admitted");
	is_int(rs_bulkhead_release(b, 200 * MS), 0, "release");
	is_int(rs_bulkhead_release(b, 200 * MS), 0, "release");
	is_int(rs_bulkhead_in_flight(b), 0, "in_flight 0 once every slot is back");
	is_int(rs_bulkhead_release(b, 200 * MS), -EINVAL,
	       "a release with nothing in flight is -EINVAL");
	rs_bulkhead_stats(b, &st);
	ok(st.admitted == 4 && st.rejected == 3 && st.timed_out == 1 && st.cancelled == 1 &&
	       st.queued == 0,
	   "stats: admitted 4, rejected 3, timed out 1, cancelled 1 (%llu %llu %llu %llu)",
	   (unsigned long long)st.admitted, (unsigned long long)st.rejected,
	   (unsigned long long)st.timed_out, (unsigned long long)st.cancelled);

	/* release() expires stale waiters before handing over. */
	rec_init(&c, 'C');
	rec_init(&d, 'D');
	norder = 0;
	(void)rs_bulkhead_try_acquire(b, NULL, 0);
	(void)rs_bulkhead_try_acquire(b, NULL, 0);
	(void)rs_bulkhead_try_acquire(b, &c.w, 1000 * MS);
	(void)rs_bulkhead_try_acquire(b, &d.w, 1050 * MS);
	is_int(rs_bulkhead_release(b, 1120 * MS), 0, "release at 1120 ms");
	order[norder] = '\0';
	is_str(order, "cD",
	       "C (waited 120 ms >= 100) times out inside release, then D (70 ms) gets the slot");
	ok(rs_bulkhead_next_deadline(b) == UINT64_MAX, "no waiter: next deadline UINT64_MAX");
	rs_bulkhead_free(b);
}

/* ---- random operations against a model --------------------------------- */

enum { POOL = 64, MAXC = 4, MAXQ = 8 };
#define MAXW (50 * MS)

struct tw {
	struct rs_bulkhead_waiter w;
	int queued;
	uint64_t seq, enq;
};

static struct {
	struct rs_bulkhead *b;
	struct tw pool[POOL];
	uint64_t now, next_seq, last_admitted_seq;
	long held; /* slots the model holds */
	long fifo_bad, timeout_bad, double_cb, sync_release_bad;
	long admitted_cb, timed_out_cb;
	struct rs_rng r;
} m;

static uint64_t oldest_queued_seq(void)
{
	uint64_t s = UINT64_MAX;

	for (int i = 0; i < POOL; i++)
		if (m.pool[i].queued && m.pool[i].seq < s)
			s = m.pool[i].seq;
	return s;
}

static void model_cb(struct rs_bulkhead_waiter *w, enum rs_bulkhead_result r)
{
	struct tw *x = w->ctx;

	if (!x->queued) {
		m.double_cb++;
		return;
	}
	if (r == RS_BULKHEAD_ADMITTED) {
		/* FIFO: the admitted waiter is the oldest still queued. */
		if (x->seq != oldest_queued_seq() || x->seq <= m.last_admitted_seq)
			m.fifo_bad++;
		m.last_admitted_seq = x->seq;
		x->queued = 0;
		m.admitted_cb++;
		m.held++;
		/* Sometimes the work is synchronous: release from inside the callback. */
		if (rs_rng_below(&m.r, 10) == 0) {
			m.held--;
			if (rs_bulkhead_release(m.b, m.now) != 0)
				m.sync_release_bad++;
		}
	} else {
		if (r != RS_BULKHEAD_TIMED_OUT || m.now - x->enq < MAXW ||
		    x->seq != oldest_queued_seq())
			m.timeout_bad++;
		x->queued = 0;
		m.timed_out_cb++;
	}
}

static void random_ops(void)
{
	enum { OPS = 100000 };
	long max_in_flight = 0, max_queued = 0, mismatch = 0, over = 0, stale = 0;
	long rejected = 0, queued_n = 0, cancels = 0, bad_release = 0;
	struct rs_err err;

	memset(&m, 0, sizeof(m));
	rs_rng_seed(&m.r, 77);
	if (rs_bulkhead_new(
		&m.b,
		&(struct rs_bulkhead_opts){
		    .name = "rnd", .max_concurrent = MAXC, .max_queue = MAXQ, .max_wait_ns = MAXW },
		&err))
		bail_out("new: %s", err.msg);
	for (int i = 0; i < POOL; i++)
		rs_bulkhead_waiter_init(&m.pool[i].w, model_cb, &m.pool[i]);

	for (int op = 0; op < OPS; op++) {
		uint64_t k = rs_rng_below(&m.r, 100);
		long queued = 0;

		m.now += rs_rng_below(&m.r, 10 * MS);
		if (k < 45) { /* acquire, usually with a waiter node */
			struct tw *x = NULL;

			if (rs_rng_below(&m.r, 10)) {
				x = &m.pool[rs_rng_below(&m.r, POOL)];
				if (x->queued)
					x = NULL;
			}
			switch (rs_bulkhead_try_acquire(m.b, x ? &x->w : NULL, m.now)) {
			case RS_BULKHEAD_ADMITTED:
				m.held++;
				break;
			case RS_BULKHEAD_QUEUED:
				x->queued = 1;
				x->seq = ++m.next_seq;
				x->enq = m.now;
				queued_n++;
				break;
			default:
				rejected++;
				break;
			}
		} else if (k < 85) { /* release one held slot (or try a bad release) */
			if (m.held > 0) {
				m.held--;
				if (rs_bulkhead_release(m.b, m.now) != 0)
					bad_release++;
				stale += rs_bulkhead_next_deadline(m.b) <= m.now;
			} else {
				bad_release += rs_bulkhead_release(m.b, m.now) != -EINVAL;
			}
		} else if (k < 95) { /* the loop's timer */
			(void)rs_bulkhead_expire(m.b, m.now);
			stale += rs_bulkhead_next_deadline(m.b) <= m.now;
		} else { /* a client gives up */
			struct tw *x = &m.pool[rs_rng_below(&m.r, POOL)];
			int rc = rs_bulkhead_cancel(m.b, &x->w);

			if (rc == 0) {
				cancels++;
				bad_release += !x->queued;
				x->queued = 0;
			} else {
				bad_release += x->queued;
			}
		}
		for (int i = 0; i < POOL; i++)
			queued += m.pool[i].queued;
		if ((long)rs_bulkhead_in_flight(m.b) > max_in_flight)
			max_in_flight = rs_bulkhead_in_flight(m.b);
		if ((long)rs_bulkhead_queued(m.b) > max_queued)
			max_queued = rs_bulkhead_queued(m.b);
		over += rs_bulkhead_in_flight(m.b) > MAXC || rs_bulkhead_queued(m.b) > MAXQ;
		mismatch += (long)rs_bulkhead_in_flight(m.b) != m.held ||
			    (long)rs_bulkhead_queued(m.b) != queued;
	}
	diag("%d ops: %ld queued, %ld rejected, %ld admitted and %ld timed out via callback, "
	     "%ld cancelled",
	     OPS, queued_n, rejected, m.admitted_cb, m.timed_out_cb, cancels);
	ok(over == 0 && max_in_flight == MAXC && max_queued == MAXQ,
	   "in_flight never exceeds 4 nor the queue 8 (max seen %ld and %ld)", max_in_flight,
	   max_queued);
	is_int(mismatch, 0, "in_flight and queued always equal the model's after every op");
	ok(m.fifo_bad == 0 && m.admitted_cb > 1000,
	   "every hand-over went to the oldest queued waiter, in queue order (%ld hand-overs)",
	   m.admitted_cb);
	ok(m.timeout_bad == 0 && m.timed_out_cb > 100,
	   "every TIMED_OUT callback was for the oldest waiter, queued >= 50 ms earlier (%ld)",
	   m.timed_out_cb);
	is_int(stale, 0, "after expire/release no waiter older than max wait is left queued");
	ok(m.double_cb == 0 && m.sync_release_bad == 0 && bad_release == 0,
	   "one callback per waiter, releases from inside callbacks work, release/cancel "
	   "return codes right");
	rs_bulkhead_free(m.b);
}

static void expo(void)
{
	struct rs_bulkhead *a = mk("db", 1, 1, MS), *b2 = mk("cache", 3, 0, 0);
	const struct rs_bulkhead *objs[] = { a, b2 };
	static char buf[4096];
	struct rs_expo e;
	struct rec x;
	char why[256] = "";
	double v;

	rec_init(&x, 'X');
	(void)rs_bulkhead_try_acquire(a, NULL, 0);
	(void)rs_bulkhead_try_acquire(a, &x.w, 0);
	(void)rs_bulkhead_try_acquire(a, NULL, 0);
	(void)rs_bulkhead_try_acquire(b2, NULL, 0);
	rs_expo_init(&e, buf, sizeof(buf));
	rs_bulkhead_expo(&e, objs, 2);
	is_int(rs_expo_finish(&e), 0, "exposition fits");
	is_int(promtext_check(buf, why, sizeof(why)), 8, "valid text format with 8 samples (%s)",
	       why);
	v = -1;
	promtext_value(buf, "resilience_bulkhead_in_flight{name=\"db\"}", &v);
	is_double(v, 1, 0, "resilience_bulkhead_in_flight = 1");
	v = -1;
	promtext_value(buf, "resilience_bulkhead_queued{name=\"db\"}", &v);
	is_double(v, 1, 0, "resilience_bulkhead_queued = 1");
	v = -1;
	promtext_value(buf, "resilience_bulkhead_rejected_total{name=\"db\"}", &v);
	is_double(v, 1, 0, "resilience_bulkhead_rejected_total = 1");
	v = -1;
	promtext_value(buf, "resilience_bulkhead_timed_out_total{name=\"db\"}", &v);
	is_double(v, 0, 0, "resilience_bulkhead_timed_out_total = 0");
	rs_bulkhead_free(a); /* x is still queued: unlinked without a callback */
	rs_bulkhead_free(b2);
	is_int(x.calls, 0, "free drops a queued waiter without calling it");
}

int main(void)
{
	bad_options();
	scripted();
	random_ops();
	expo();
	done_testing();
	return exit_status();
}
