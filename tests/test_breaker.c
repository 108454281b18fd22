/* The circuit breaker: trips at exactly the configured point, waits exactly
 * as configured, admits exactly N trials, obeys risk and forces, reports
 * every transition once, counts exactly under two threads, validates its
 * options, survives allocation failures and exports its metrics. */
#include "tests/tap.h"
#include "tests/failalloc.h"
#include "tests/promtext.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include "resilience/breaker.h"
#include "resilience/clock.h"

#define SEC	  RS_NS_PER_SEC
#define MS	  RS_NS_PER_MS
#define T0	  (1000 * SEC) /* an arbitrary start of time */

#define EVLOG_MAX 1024

struct evlog {
	int n;
	struct rs_breaker_event ev[EVLOG_MAX];
};

static void on_event(void *ctx, const struct rs_breaker_event *ev)
{
	struct evlog *l = ctx;

	if (l->n >= EVLOG_MAX)
		bail_out("more than %d transition events", EVLOG_MAX);
	l->ev[l->n++] = *ev;
}

static struct rs_breaker *make(const struct rs_breaker_opts *o)
{
	struct rs_breaker *b = NULL;
	struct rs_err err = { "" };

	if (rs_breaker_new(&b, o, &err))
		bail_out("cannot create breaker '%s': %s", o->name, err.msg);
	return b;
}

/* W = 100 calls, trip at >= 50% failures over at least 100 calls. */
static struct rs_breaker_opts rate_opts(const char *name, struct evlog *log)
{
	return (struct rs_breaker_opts){
		.name = name,
		.failure_rate_threshold = 0.5,
		.window_kind = RS_WINDOW_COUNT,
		.window_size = 100,
		.minimum_calls = 100,
		.open_ns = SEC,
		.half_open_calls = 3,
		.on_transition = log ? on_event : NULL,
		.ctx = log,
	};
}

/* Records `n` outcomes; returns the 1-based index of the one that moved the
 * breaker out of closed, or 0. */
static int feed(struct rs_breaker *b, int n, bool failure, uint64_t duration, uint64_t now)
{
	for (int i = 1; i <= n; i++) {
		rs_breaker_record(b, failure, duration, now);
		if (rs_breaker_state(b) != RS_BREAKER_CLOSED)
			return i;
	}
	return 0;
}

static int admitted(struct rs_breaker *b, int attempts, uint64_t now)
{
	int n = 0;

	for (int i = 0; i < attempts; i++)
		n += rs_breaker_allow(b, now);
	return n;
}

static void test_failure_rate(void)
{
	struct evlog log = { 0 };
	struct rs_breaker_opts o = rate_opts("pay", &log);
	struct rs_breaker *b = make(&o);
	struct rs_breaker_stats s;

	is_int(feed(b, 100, false, 0, T0), 0, "rate W=100 p=50%%: 100 successes keep it closed");
	is_int(feed(b, 100, true, 0, T0 + 1), 50,
	       "after a full window of successes it opens at exactly the 50th failure");
	ok(log.n == 1 && log.ev[0].from == RS_BREAKER_CLOSED && log.ev[0].to == RS_BREAKER_OPEN &&
	       log.ev[0].reason == RS_BREAKER_FAILURE_RATE && log.ev[0].now_ns == T0 + 1 &&
	       log.ev[0].wait_ns == SEC,
	   "one event closed->open, reason failure rate, at the tripping call's time, wait 1 s");
	is_str(log.ev[0].text, "failure rate 50.0% >= 50.0% over 100 calls",
	       "the event's text gives the rate, threshold and calls");
	is_str(log.ev[0].name, "pay", "the event names the breaker");
	rs_breaker_stats(b, &s);
	ok(s.calls[RS_BREAKER_RESULT_SUCCESS] == 100 && s.calls[RS_BREAKER_RESULT_FAILURE] == 50 &&
	       s.transitions[RS_BREAKER_CLOSED][RS_BREAKER_OPEN] == 1,
	   "stats: 100 successes, 50 failures, 1 closed->open transition");
	rs_breaker_free(b);

	/* The p - epsilon case: 49 of 100 is below 50%. */
	b = make(&o);
	feed(b, 51, false, 0, T0);
	is_int(feed(b, 49, true, 0, T0), 0, "49 failures in a full window of 100 stay closed");
	is_int(feed(b, 200, false, 0, T0), 0, "and successes afterwards keep it closed");
	rs_breaker_free(b);

	/* In doubles 0.07 * 100 is 7.000000000000001 and 7 * 100.0 / 250 is
	 * 2.7999999999999998 < 0.028 * 100: the exact rates must still trip. */
	o.failure_rate_threshold = 0.07;
	b = make(&o);
	feed(b, 100, false, 0, T0);
	is_int(feed(b, 100, true, 0, T0), 7,
	       "threshold 0.07 over W=100 opens at exactly 7 failures");
	rs_breaker_free(b);
	o.failure_rate_threshold = 0.028;
	o.window_size = 250;
	o.minimum_calls = 250;
	b = make(&o);
	feed(b, 250, false, 0, T0);
	is_int(feed(b, 250, true, 0, T0), 7,
	       "threshold 0.028 over W=250 opens at exactly 7 failures");
	rs_breaker_free(b);
	o.window_size = 100;
	o.minimum_calls = 100;
	o.failure_rate_threshold = 0.5;

	/* Closing after half-open starts from an empty window. */
	b = make(&o);
	feed(b, 100, false, 0, T0);
	feed(b, 50, true, 0, T0);
	admitted(b, 3, T0 + SEC);
	for (int i = 0; i < 3; i++)
		rs_breaker_record(b, false, 0, T0 + SEC);
	is_int(rs_breaker_state(b), RS_BREAKER_CLOSED,
	       "3 good trials close the rate-tripped breaker");
	is_int(feed(b, 99, true, 0, T0 + SEC), 0,
	       "closing emptied the window: 99 failures right after are under minimum_calls 100");
	is_int(feed(b, 1, true, 0, T0 + SEC), 1, "and the 100th (100%% failures) opens it again");
	rs_breaker_free(b);

	/* minimum_calls below the window: the rate is judged from 10 calls. */
	o.failure_rate_threshold = 0.5;
	o.window_size = 100;
	o.minimum_calls = 10;
	b = make(&o);
	feed(b, 5, true, 0, T0);
	is_int(feed(b, 5, false, 0, T0), 5,
	       "minimum_calls 10: 5 failures then the 5th success (10 calls, 50%%) opens");
	rs_breaker_free(b);
}

static void test_consecutive(void)
{
	struct evlog log = { 0 };
	struct rs_breaker_opts o = {
		.name = "consec",
		.consecutive_failures = 5,
		.open_ns = SEC,
		.half_open_calls = 1,
		.on_transition = on_event,
		.ctx = &log,
	};
	struct rs_breaker *b = make(&o);

	feed(b, 4, true, 0, T0);
	feed(b, 1, false, 0, T0);
	is_int(feed(b, 4, true, 0, T0), 0, "4 failures, a success, 4 failures: still closed");
	is_int(feed(b, 5, true, 0, T0), 1, "the 5th consecutive failure opens it");
	ok(log.n == 1 && log.ev[0].reason == RS_BREAKER_CONSECUTIVE_FAILURES &&
	       strcmp(log.ev[0].text, "5 consecutive failures >= 5") == 0,
	   "event reason consecutive failures: '%s'", log.ev[0].text);
	rs_breaker_free(b);
}

static void test_time_window(void)
{
	struct rs_breaker_opts o = {
		.name = "tw",
		.failure_rate_threshold = 0.5,
		.window_kind = RS_WINDOW_TIME,
		.window_ns = 10 * SEC,
		.window_buckets = 10,
		.minimum_calls = 20,
		.open_ns = SEC,
		.half_open_calls = 1,
	};
	struct rs_breaker *b = make(&o);
	int opened = 0;

	/* One failure every 600 ms for 100 s: a 10 s window never holds 20. */
	for (int i = 0; i < 167 && !opened; i++)
		opened = feed(b, 1, true, 0, T0 + (uint64_t)i * 600 * MS);
	is_int(
	    opened, 0,
	    "time window, minimum 20 calls: 167 failures (100%%) spread over 100 s never open it");
	rs_breaker_free(b);
	b = make(&o);
	is_int(feed(b, 25, true, 0, T0), 20, "20 failures inside the window open it at the 20th");
	rs_breaker_free(b);
	b = make(&o);
	feed(b, 10, true, 0, T0);
	is_int(feed(b, 10, true, 0, T0 + 10 * SEC), 0,
	       "10 failures, then 10 more once the first bucket expired: still under 20 calls");
	rs_breaker_free(b);
}

static void test_slow_rate(void)
{
	struct evlog log = { 0 };
	struct rs_breaker_opts o = {
		.name = "slow",
		.slow_rate_threshold = 0.5,
		.slow_call_ns = 100 * MS,
		.window_kind = RS_WINDOW_COUNT,
		.window_size = 10,
		.minimum_calls = 10,
		.open_ns = SEC,
		.half_open_calls = 2,
		.on_transition = on_event,
		.ctx = &log,
	};
	struct rs_breaker *b = make(&o);
	struct rs_window_counts c;
	struct rs_breaker_stats s;

	feed(b, 10, false, 10 * MS, T0);
	feed(b, 3, false, 100 * MS, T0);
	rs_window_snapshot(rs_breaker_window(b), T0, &c);
	is_int((long long)c.slow, 0, "calls of exactly slow_call_ns (100 ms) are not slow");
	is_int(feed(b, 10, false, 150 * MS, T0), 5,
	       "slow rate 50%% over W=10: the 5th call of 150 ms opens it");
	ok(log.n == 1 && log.ev[0].reason == RS_BREAKER_SLOW_RATE, "event reason slow rate: '%s'",
	   log.ev[0].text);
	rs_breaker_stats(b, &s);
	ok(s.calls[RS_BREAKER_RESULT_SLOW] == 5 && s.calls[RS_BREAKER_RESULT_SUCCESS] == 13,
	   "stats: 5 slow successes, 13 plain successes");
	/* Half-open judges the trials' slow rate too. */
	rs_breaker_allow(b, T0 + SEC);
	rs_breaker_allow(b, T0 + SEC);
	rs_breaker_record(b, false, 150 * MS, T0 + SEC);
	rs_breaker_record(b, false, 10 * MS, T0 + SEC);
	is_int(rs_breaker_state(b), RS_BREAKER_OPEN,
	       "1 slow trial of 2 (50%%) reopens a slow-rate breaker");
	rs_breaker_free(b);
}

static void test_open_and_half_open(void)
{
	struct evlog log = { 0 };
	struct rs_breaker_opts o = rate_opts("ho", &log);
	struct rs_breaker *b;
	struct rs_breaker_stats s;
	int n;

	o.consecutive_failures = 1;
	o.half_open_calls = 3;
	o.open_ns = 5 * SEC;
	b = make(&o);
	feed(b, 1, true, 0, T0);
	is_int(rs_breaker_state(b), RS_BREAKER_OPEN,
	       "one failure opens a consecutive_failures=1 breaker");
	is_int(admitted(b, 1000, T0 + 1), 0, "while open, 1000 attempts: 0 admitted");
	rs_breaker_stats(b, &s);
	is_int((long long)s.calls[RS_BREAKER_RESULT_REJECTED], 1000,
	       "and 1000 counted as rejected");
	is_int(rs_breaker_allow(b, T0 + 5 * SEC - 1), 0, "allow at wait - 1 ns is rejected");
	is_int(rs_breaker_state(b), RS_BREAKER_OPEN, "and the breaker is still open");
	is_int(rs_breaker_allow(b, T0 + 5 * SEC), 1,
	       "allow at exactly wait is admitted as a trial");
	is_int(rs_breaker_state(b), RS_BREAKER_HALF_OPEN, "and the breaker is half-open");
	n = admitted(b, 10, T0 + 5 * SEC);
	is_int(n, 2, "half-open N=3: 2 more admitted (3 in all), the next 8 rejected");
	rs_breaker_record(b, false, 0, T0 + 6 * SEC);
	rs_breaker_record(b, false, 0, T0 + 6 * SEC);
	is_int(rs_breaker_state(b), RS_BREAKER_HALF_OPEN,
	       "after 2 of 3 trial outcomes still half-open");
	rs_breaker_record(b, false, 0, T0 + 6 * SEC);
	is_int(rs_breaker_state(b), RS_BREAKER_CLOSED, "3 successful trials close it");
	ok(log.n == 3 && log.ev[1].from == RS_BREAKER_OPEN &&
	       log.ev[1].to == RS_BREAKER_HALF_OPEN && log.ev[1].now_ns == T0 + 5 * SEC &&
	       log.ev[2].to == RS_BREAKER_CLOSED && log.ev[2].reason == RS_BREAKER_TRIALS_PASSED &&
	       log.ev[2].now_ns == T0 + 6 * SEC,
	   "events: closed->open, open->half_open at wait, half_open->closed (%s)",
	   log.n >= 3 ? log.ev[2].text : "?");
	is_int(admitted(b, 100, T0 + 6 * SEC), 100, "closed again: 100 of 100 admitted");

	/* Failing trials reopen, with the next growth step. */
	rs_breaker_free(b);
	log.n = 0;
	o.open_multiplier = 2;
	b = make(&o);
	feed(b, 1, true, 0, T0);
	rs_breaker_allow(b, T0 + 5 * SEC);
	rs_breaker_allow(b, T0 + 5 * SEC);
	rs_breaker_allow(b, T0 + 5 * SEC);
	rs_breaker_record(b, true, 0, T0 + 5 * SEC);
	rs_breaker_record(b, false, 0, T0 + 5 * SEC);
	rs_breaker_record(b, true, 0, T0 + 5 * SEC);
	is_int(rs_breaker_state(b), RS_BREAKER_OPEN,
	       "2 failed trials of 3 (67%% >= 50%%) reopen it");
	ok(log.n == 3 && log.ev[2].from == RS_BREAKER_HALF_OPEN &&
	       log.ev[2].to == RS_BREAKER_OPEN && log.ev[2].reason == RS_BREAKER_TRIALS_FAILED &&
	       log.ev[2].wait_ns == 10 * SEC,
	   "half_open->open event with the next wait, 10 s (%s)",
	   log.n >= 3 ? log.ev[2].text : "?");
	is_str(log.ev[2].text, "trial failure rate 66.7% >= 50.0% over 3 calls",
	       "trial event text");
	rs_breaker_free(b);

	/* The trial threshold is inclusive too: 1 failure of 2 is 50%. */
	o.half_open_calls = 2;
	b = make(&o);
	feed(b, 1, true, 0, T0);
	admitted(b, 2, T0 + 5 * SEC);
	rs_breaker_record(b, false, 0, T0 + 5 * SEC);
	rs_breaker_record(b, true, 0, T0 + 5 * SEC);
	is_int(rs_breaker_state(b), RS_BREAKER_OPEN,
	       "1 failed trial of 2 (50%% >= 50%%) reopens it");
	rs_breaker_free(b);
	o.half_open_failure_threshold = 0.75;
	b = make(&o);
	feed(b, 1, true, 0, T0);
	admitted(b, 2, T0 + 5 * SEC);
	rs_breaker_record(b, false, 0, T0 + 5 * SEC);
	rs_breaker_record(b, true, 0, T0 + 5 * SEC);
	is_int(rs_breaker_state(b), RS_BREAKER_CLOSED,
	       "with half_open_failure_threshold 0.75, 1 failed trial of 2 closes it");
	rs_breaker_free(b);
}

/* Two threads race for the N = 64 trial permits of a freshly half-open
 * breaker, 500 times: each time exactly 64 calls get through.  The thread
 * that finishes a round last checks it, reopens the breaker with 64 failed
 * trials and starts the next round, so both threads are busy when the
 * permits run out. */
enum { RACE_ROUNDS = 500, RACE_PERMITS = 64 };

struct permit_race {
	struct rs_breaker *b;
	_Atomic uint64_t now;
	_Atomic int go, done, got, exact;
};

static void *permit_work(void *arg)
{
	struct permit_race *r = arg;

	for (int i = 1; i <= RACE_ROUNDS; i++) {
		int n = 0;

		for (long spin = 0; atomic_load(&r->go) != i; spin++)
			if (spin % 1024 == 1023)
				sched_yield();
		for (int k = 0; k < 4 * RACE_PERMITS; k++)
			n += rs_breaker_allow(r->b, atomic_load(&r->now));
		atomic_fetch_add(&r->got, n);
		if (atomic_fetch_add(&r->done, 1) == 2 * i - 1) {
			uint64_t now = atomic_load(&r->now);

			atomic_fetch_add(&r->exact, atomic_exchange(&r->got, 0) == RACE_PERMITS);
			for (int k = 0; k < RACE_PERMITS; k++)
				rs_breaker_record(r->b, true, 0, now);
			atomic_store(&r->now, now + 2 * SEC);
			atomic_store(&r->go, i + 1);
		}
	}
	return NULL;
}

static void test_permit_race(void)
{
	struct rs_breaker_opts o = {
		.name = "permits",
		.consecutive_failures = 1,
		.open_ns = SEC,
		.half_open_calls = RACE_PERMITS,
	};
	static struct permit_race r;
	pthread_t t[2];

	r.b = make(&o);
	atomic_store(&r.now, T0 + SEC);
	atomic_store(&r.go, 1);
	feed(r.b, 1, true, 0, T0);
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, permit_work, &r))
			bail_out("cannot create a thread");
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	is_int(atomic_load(&r.exact), RACE_ROUNDS,
	       "2 threads racing for %d trial permits get exactly %d in each of %d rounds",
	       RACE_PERMITS, RACE_PERMITS, RACE_ROUNDS);
	rs_breaker_free(r.b);
}

/* Trips a consecutive_failures=1 breaker and keeps failing every trial;
 * returns the waits the events announced. */
static void openings(struct rs_breaker *b, struct evlog *log, int count, uint64_t *waits,
		     int *exact)
{
	uint64_t now = T0;

	log->n = 0;
	*exact = 1;
	feed(b, 1, true, 0, now);
	for (int i = 0; i < count; i++) {
		uint64_t w, until;

		if (log->n == 0 || log->ev[log->n - 1].to != RS_BREAKER_OPEN)
			bail_out("opening %d of '%s' did not happen", i + 1, rs_breaker_name(b));
		w = log->ev[log->n - 1].wait_ns;
		until = now + w;

		waits[i] = w;
		if (i == count - 1)
			break;
		*exact &= rs_breaker_allow(b, until - 1) == 0;
		*exact &= rs_breaker_allow(b, until) == 1;
		now = until;
		rs_breaker_record(b, true, 0, now);
	}
}

static void test_growth(struct rs_control *ctl)
{
	static struct evlog log, log2;
	struct rs_breaker_opts o = {
		.name = "grow",
		.consecutive_failures = 1,
		.open_ns = SEC,
		.open_multiplier = 2,
		.open_max_ns = 8 * SEC,
		.half_open_calls = 1,
		.on_transition = on_event,
		.ctx = &log,
	};
	struct rs_breaker *b = make(&o), *b2;
	uint64_t w[200], w2[200];
	int exact, inside = 1, distinct = 0, same = 1;

	openings(b, &log, 5, w, &exact);
	ok(w[0] == SEC && w[1] == 2 * SEC && w[2] == 4 * SEC && w[3] == 8 * SEC && w[4] == 8 * SEC,
	   "base 1 s, x2, cap 8 s: successive waits 1, 2, 4, 8, 8 s");
	ok(exact, "each opening rejects at wait - 1 ns and admits a trial at exactly wait");
	/* Passing trials forget the openings: the next trip waits 1 s again. */
	rs_breaker_allow(b, T0 + 100 * SEC);
	rs_breaker_record(b, false, 0, T0 + 100 * SEC);
	feed(b, 1, true, 0, T0 + 101 * SEC);
	is_int((long long)log.ev[log.n - 1].wait_ns, (long long)SEC,
	       "after closing, the next opening waits the base 1 s again");
	rs_breaker_free(b);

	/* Jitter 0.25 on a fixed 1 s wait, 200 openings. */
	o.open_multiplier = 0;
	o.open_max_ns = 0;
	o.open_jitter = 0.25;
	o.seed = 42;
	b = make(&o);
	openings(b, &log, 200, w, &exact);
	for (int i = 0; i < 200; i++) {
		inside &= w[i] >= 750 * MS && w[i] <= 1250 * MS;
		distinct += i > 0 && w[i] != w[i - 1];
	}
	ok(inside, "jitter 0.25: 200 waits all inside [0.75 s, 1.25 s]");
	ok(distinct >= 190, "and they vary (%d of 199 differ from the previous)", distinct);
	ok(exact, "jittered waits are honoured to the nanosecond");
	o.ctx = &log2;
	b2 = make(&o);
	openings(b2, &log2, 200, w2, &exact);
	for (int i = 0; i < 200; i++)
		same &= w[i] == w2[i];
	ok(same, "the same seed (42) gives the same 200 jittered waits");
	rs_breaker_free(b);
	rs_breaker_free(b2);

	/* With the control block's jitter switch off: exact waits. */
	o.ctx = &log;
	o.control = ctl;
	o.open_multiplier = 2;
	o.open_max_ns = 8 * SEC;
	o.name = "grow-ctl";
	rs_control_set_jitter(ctl, false);
	b = make(&o);
	openings(b, &log, 5, w, &exact);
	ok(w[0] == SEC && w[1] == 2 * SEC && w[2] == 4 * SEC && w[3] == 8 * SEC && w[4] == 8 * SEC,
	   "jitter 0.25 with the control block's jitter off: exactly 1, 2, 4, 8, 8 s");
	rs_control_set_jitter(ctl, true);
	rs_breaker_free(b);
	b = make(&o);
	openings(b, &log, 5, w, &exact);
	ok(w[0] != SEC || w[1] != 2 * SEC || w[2] != 4 * SEC,
	   "and jittered again once the switch is back on");
	rs_breaker_free(b);
}

static void test_emergency(void)
{
	struct evlog log = { 0 };
	struct rs_breaker_opts o = rate_opts("emerg", &log);
	struct rs_breaker *b;
	int ok_seq;

	o.emergency_threshold = 0.8;
	o.open_ns = 2 * SEC;
	o.half_open_calls = 1;
	b = make(&o);
	is_int(rs_breaker_risk(b, 0.79, T0), 0, "risk 0.79 is accepted");
	is_int(rs_breaker_state(b), RS_BREAKER_CLOSED, "risk 0.79 < 0.8 leaves it closed");
	is_int(rs_breaker_risk(b, 0.8, T0 + SEC), 0, "risk 0.8 is accepted");
	is_int(rs_breaker_state(b), RS_BREAKER_EMERGENCY,
	       "risk 0.8 (at the threshold) enters emergency");
	ok(log.n == 1 && log.ev[0].from == RS_BREAKER_CLOSED &&
	       log.ev[0].to == RS_BREAKER_EMERGENCY && log.ev[0].reason == RS_BREAKER_RISK &&
	       log.ev[0].wait_ns == 2 * SEC && log.ev[0].now_ns == T0 + SEC,
	   "event closed->emergency, reason risk, wait 2 s (%s)", log.ev[0].text);
	is_int(admitted(b, 1000, T0 + SEC), 0, "in emergency 1000 attempts: 0 admitted");
	is_int(rs_breaker_allow(b, T0 + 10 * SEC), 0,
	       "wait elapsed but risk still 0.8: rejected, not left");
	is_int(rs_breaker_state(b), RS_BREAKER_EMERGENCY, "and still in emergency");
	is_int(rs_breaker_risk(b, 0.2, T0 + 11 * SEC), 0, "risk drops to 0.2");
	is_int(rs_breaker_state(b), RS_BREAKER_EMERGENCY,
	       "a low reading alone does not leave emergency (never straight to closed)");
	is_int(rs_breaker_allow(b, T0 + 11 * SEC), 1,
	       "wait elapsed and risk low: a trial is admitted");
	is_int(rs_breaker_state(b), RS_BREAKER_HALF_OPEN, "emergency is left through half-open");
	rs_breaker_record(b, false, 0, T0 + 11 * SEC);
	is_int(rs_breaker_state(b), RS_BREAKER_CLOSED, "a passing trial closes it");
	ok_seq = log.n == 3 && log.ev[1].from == RS_BREAKER_EMERGENCY &&
		 log.ev[1].to == RS_BREAKER_HALF_OPEN && log.ev[2].to == RS_BREAKER_CLOSED;
	ok(ok_seq, "events: closed->emergency->half_open->closed, one each");

	/* Risk low but the wait not yet elapsed: still emergency. */
	rs_breaker_free(b);
	log.n = 0;
	b = make(&o);
	if (rs_breaker_risk(b, 0.9, T0) || rs_breaker_risk(b, 0.1, T0 + 1))
		bail_out("risk rejected");
	is_int(rs_breaker_allow(b, T0 + 2 * SEC - 1), 0,
	       "risk low but allow 1 ns before the 2 s wait: rejected");
	is_int(rs_breaker_allow(b, T0 + 2 * SEC), 1, "at exactly the wait: admitted as a trial");
	/* From half-open and from open too; forced states ignore risk. */
	if (rs_breaker_risk(b, 0.95, T0 + 2 * SEC))
		bail_out("risk rejected");
	is_int(rs_breaker_state(b), RS_BREAKER_EMERGENCY,
	       "high risk in half-open enters emergency");
	is_int(rs_breaker_risk(b, NAN, T0), -EINVAL, "a NaN risk reading is -EINVAL");
	rs_breaker_free(b);
	b = make(&o);
	feed(b, 100, true, 0, T0);
	if (rs_breaker_risk(b, 0.95, T0))
		bail_out("risk rejected");
	is_int(rs_breaker_state(b), RS_BREAKER_EMERGENCY, "high risk in open enters emergency");
	if (rs_breaker_force(b, RS_FORCE_OPEN, T0) || rs_breaker_risk(b, 0.99, T0))
		bail_out("force/risk rejected");
	is_int(rs_breaker_state(b), RS_BREAKER_FORCED_OPEN, "a forced-open breaker ignores risk");
	rs_breaker_free(b);
}

static void test_forced_api(void)
{
	struct evlog log = { 0 };
	struct rs_breaker_opts o = rate_opts("forced", &log);
	struct rs_breaker *b;
	struct rs_breaker_stats s;

	o.consecutive_failures = 3;
	b = make(&o);
	is_int(rs_breaker_force(b, RS_FORCE_OPEN, T0), 0, "rs_breaker_force(open) succeeds");
	is_int(rs_breaker_state(b), RS_BREAKER_FORCED_OPEN, "state is forced-open");
	is_int(admitted(b, 100, T0 + 100 * SEC), 0,
	       "forced-open: 0 of 100 admitted, even much later");
	is_int(rs_breaker_force(b, RS_FORCE_CLOSED, T0), 0, "rs_breaker_force(closed) succeeds");
	is_int(rs_breaker_state(b), RS_BREAKER_DISABLED, "state is disabled");
	for (int i = 0; i < 1000; i++)
		rs_breaker_record(b, true, 0, T0);
	is_int(admitted(b, 100, T0), 100, "disabled: 100 of 100 admitted after 1000 failures");
	rs_breaker_stats(b, &s);
	is_int((long long)s.calls[RS_BREAKER_RESULT_FAILURE], 1000,
	       "disabled still counts outcomes (1000 failures)");
	is_int(rs_breaker_force(b, RS_FORCE_NONE, T0 + 1), 0, "rs_breaker_force(none) succeeds");
	is_int(rs_breaker_state(b), RS_BREAKER_CLOSED, "releasing the force closes it");
	is_int(feed(b, 3, true, 0, T0 + 2), 3,
	       "with an empty window and counter: opens at the 3rd failure again");
	ok(log.n == 4 && log.ev[0].to == RS_BREAKER_FORCED_OPEN &&
	       log.ev[0].reason == RS_BREAKER_FORCED && log.ev[1].from == RS_BREAKER_FORCED_OPEN &&
	       log.ev[1].to == RS_BREAKER_DISABLED && log.ev[2].to == RS_BREAKER_CLOSED &&
	       log.ev[2].reason == RS_BREAKER_UNFORCED && log.ev[3].to == RS_BREAKER_OPEN,
	   "events: ->forced_open, ->disabled, ->closed (unforced), ->open");
	is_str(log.ev[0].text, "forced open by rs_breaker_force",
	       "the force event says who forced");
	is_int(rs_breaker_force(b, (enum rs_control_force)9, T0), -EINVAL, "force 9 is -EINVAL");
	rs_breaker_free(b);
}

static void test_forced_control(struct rs_control *ctl)
{
	struct evlog log = { 0 };
	struct rs_breaker_opts o = rate_opts("ctl-dep", &log);
	struct rs_breaker *b;
	struct rs_err err = { "" };

	o.control = ctl;
	b = make(&o);
	if (rs_control_force_breaker(ctl, "ctl-dep", RS_FORCE_OPEN, NULL, &err))
		bail_out("cannot force through the control block: %s", err.msg);
	is_int(rs_breaker_state(b), RS_BREAKER_FORCED_OPEN,
	       "control block RS_FORCE_OPEN: state reads forced-open");
	is_int(admitted(b, 100, T0), 0, "and 0 of 100 calls are admitted");
	ok(log.n == 1 && log.ev[0].from == RS_BREAKER_CLOSED &&
	       log.ev[0].to == RS_BREAKER_FORCED_OPEN &&
	       strcmp(log.ev[0].text, "forced open by the control block") == 0,
	   "one event closed->forced_open by the control block");
	if (rs_breaker_force(b, RS_FORCE_CLOSED, T0))
		bail_out("force rejected");
	is_int(rs_breaker_state(b), RS_BREAKER_FORCED_OPEN,
	       "the control block's force wins over rs_breaker_force(closed)");
	if (rs_breaker_force(b, RS_FORCE_NONE, T0) ||
	    rs_control_force_breaker(ctl, "ctl-dep", RS_FORCE_CLOSED, NULL, &err))
		bail_out("cannot force: %s", err.msg);
	feed(b, 200, true, 0, T0);
	is_int(admitted(b, 100, T0), 100,
	       "control block RS_FORCE_CLOSED: 100 of 100 admitted despite 200 failures");
	is_int(rs_breaker_state(b), RS_BREAKER_DISABLED, "state is disabled");
	if (rs_control_force_breaker(ctl, "ctl-dep", RS_FORCE_NONE, NULL, &err))
		bail_out("cannot unforce: %s", err.msg);
	is_int(rs_breaker_allow(b, T0), 1, "force removed: admitted");
	is_int(rs_breaker_state(b), RS_BREAKER_CLOSED, "and closed again");
	is_int(log.n, 3, "3 events: ->forced_open, ->disabled, ->closed");
	rs_breaker_free(b);
}

enum { PER_THREAD = 1000000 };

struct worker {
	struct rs_breaker *b;
	int id;
	uint64_t admitted, failures, slow;
};

static void *work(void *arg)
{
	struct worker *k = arg;

	for (int i = 0; i < PER_THREAD; i++) {
		uint64_t now = T0 + (uint64_t)i;
		bool fail = i % 4 == k->id;
		uint64_t dur = i % 7 == 0 ? 2000 : 10;

		if (!rs_breaker_allow(k->b, now))
			continue;
		k->admitted++;
		k->failures += fail;
		k->slow += !fail && dur > 1000;
		rs_breaker_record(k->b, fail, dur, now);
	}
	return NULL;
}

static void test_threads(void)
{
	struct rs_breaker_opts o = rate_opts("mt", NULL);
	struct rs_breaker *b;
	struct worker k[2] = { { 0 }, { 0 } };
	pthread_t t[2];
	struct rs_breaker_stats s;
	struct rs_window_counts c, r;
	uint64_t adm, fails, slow;

	/* 25% failures never reach a 100% threshold, so it stays closed. */
	o.failure_rate_threshold = 1.0;
	o.slow_call_ns = 1000;
	b = make(&o);
	for (int i = 0; i < 2; i++) {
		k[i].b = b;
		k[i].id = i;
		if (pthread_create(&t[i], NULL, work, &k[i]))
			bail_out("cannot create a thread");
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	adm = k[0].admitted + k[1].admitted;
	fails = k[0].failures + k[1].failures;
	slow = k[0].slow + k[1].slow;
	rs_breaker_stats(b, &s);
	rs_window_snapshot(rs_breaker_window(b), T0, &c);
	rs_window_recount(rs_breaker_window(b), &r);
	ok(adm == 2 * PER_THREAD && rs_breaker_state(b) == RS_BREAKER_CLOSED,
	   "2 threads x 1e6 allow+record on a closed breaker: all 2000000 admitted, still closed");
	ok(s.calls[RS_BREAKER_RESULT_FAILURE] == fails && s.calls[RS_BREAKER_RESULT_SLOW] == slow &&
	       s.calls[RS_BREAKER_RESULT_SUCCESS] == adm - fails - slow &&
	       s.calls[RS_BREAKER_RESULT_REJECTED] == 0,
	   "call counters exact: %llu failures, %llu slow, %llu successes, 0 rejected",
	   (unsigned long long)fails, (unsigned long long)slow,
	   (unsigned long long)(adm - fails - slow));
	ok(rs_window_total(rs_breaker_window(b)) == 2 * PER_THREAD && c.calls == 100 &&
	       c.failures == r.failures && c.slow == r.slow,
	   "the window saw exactly 2000000 calls and its counts (%llu failures, %llu slow) equal "
	   "a recount of its 100 slots",
	   (unsigned long long)c.failures, (unsigned long long)c.slow);
	rs_breaker_free(b);
}

/* Two threads on one clock, 1 us per call, failing often enough to trip,
 * reopen and close many times while both keep calling. */
enum { STRESS_CALLS = 200000 };

struct stress {
	struct rs_breaker *b;
	_Atomic uint64_t *clock;
	_Atomic uint64_t (*events)[RS_BREAKER_NSTATES];
	_Atomic uint64_t bad_events;
	uint64_t admitted, rejected;
	int id;
};

static void on_stress_event(void *ctx, const struct rs_breaker_event *ev)
{
	struct stress *s = ctx;

	if ((unsigned)ev->from >= RS_BREAKER_NSTATES || (unsigned)ev->to >= RS_BREAKER_NSTATES ||
	    ev->from == ev->to)
		atomic_fetch_add(&s->bad_events, 1);
	else
		atomic_fetch_add(&s->events[ev->from][ev->to], 1);
}

static void *stress_work(void *arg)
{
	struct stress *k = arg;
	uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(k->id + 1);

	for (int i = 0; i < STRESS_CALLS; i++) {
		uint64_t now = atomic_fetch_add(k->clock, RS_NS_PER_US);

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* High risk during one 10 ms stretch in every 100 ms. */
		if (i % 500 == 0 &&
		    rs_breaker_risk(k->b, (now / (10 * MS)) % 10 == 5 ? 0.9 : 0.1, now))
			bail_out("risk rejected");
		if (!rs_breaker_allow(k->b, now)) {
			k->rejected++;
			continue;
		}
		k->admitted++;
		/* 40% failures on average, in runs: phases of 4 ms alternate
		 * between 10% and 70%. */
		rs_breaker_record(k->b, (x % 100) < ((now / (4 * MS)) % 2 ? 70u : 10u), 10, now);
	}
	return NULL;
}

static void test_stress(void)
{
	static _Atomic uint64_t events[RS_BREAKER_NSTATES][RS_BREAKER_NSTATES];
	_Atomic uint64_t clock = T0;
	struct stress ctx = { .clock = &clock, .events = events };
	struct stress k[2];
	struct rs_breaker_opts o = rate_opts("stress", NULL);
	struct rs_breaker_stats s;
	pthread_t t[2];
	uint64_t adm = 0, rej = 0, transitions = 0;
	int same = 1;

	o.minimum_calls = 20;
	o.consecutive_failures = 8;
	o.open_ns = 200 * RS_NS_PER_US;
	o.open_multiplier = 2;
	o.open_max_ns = 2 * MS;
	o.open_jitter = 0.1;
	o.emergency_threshold = 0.8;
	o.on_transition = on_stress_event;
	o.ctx = &ctx;
	ctx.b = make(&o);
	for (int i = 0; i < 2; i++) {
		k[i] = (struct stress){ .b = ctx.b, .clock = &clock, .id = i };
		if (pthread_create(&t[i], NULL, stress_work, &k[i]))
			bail_out("cannot create a thread");
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		adm += k[i].admitted;
		rej += k[i].rejected;
	}
	rs_breaker_stats(ctx.b, &s);
	for (int f = 0; f < RS_BREAKER_NSTATES; f++)
		for (int to = 0; to < RS_BREAKER_NSTATES; to++) {
			same &= s.transitions[f][to] == events[f][to];
			transitions += s.transitions[f][to];
		}
	for (int f = 0; f < RS_BREAKER_NSTATES; f++)
		for (int to = 0; to < RS_BREAKER_NSTATES; to++)
			if (s.transitions[f][to])
				diag("%s -> %s: %llu",
				     rs_breaker_state_name((enum rs_breaker_state)f),
				     rs_breaker_state_name((enum rs_breaker_state)to),
				     (unsigned long long)s.transitions[f][to]);
	ok(same && atomic_load(&ctx.bad_events) == 0 && transitions > 100,
	   "2 threads x %d calls through trips, trials and emergencies: %llu transitions, each "
	   "reported by exactly one event",
	   STRESS_CALLS, (unsigned long long)transitions);
	{
		/* Flow conservation: every state but the final one is left as
		 * often as it is entered (closed is entered once at creation). */
		int balanced = 1;
		enum rs_breaker_state fin = rs_breaker_state(ctx.b);

		for (int st = 0; st < RS_BREAKER_NSTATES; st++) {
			long long in = st == RS_BREAKER_CLOSED, out = 0;

			for (int x = 0; x < RS_BREAKER_NSTATES; x++) {
				in += (long long)s.transitions[x][st];
				out += (long long)s.transitions[st][x];
			}
			balanced &= in - out == (st == (int)fin);
		}
		ok(balanced,
		   "the transitions form one unbroken path from closed to the final "
		   "state (%s)",
		   rs_breaker_state_name(fin));
	}
	ok(s.calls[RS_BREAKER_RESULT_REJECTED] == rej &&
	       s.calls[RS_BREAKER_RESULT_SUCCESS] + s.calls[RS_BREAKER_RESULT_FAILURE] +
		       s.calls[RS_BREAKER_RESULT_SLOW] ==
		   adm,
	   "and the counters add up: %llu admitted and recorded, %llu rejected",
	   (unsigned long long)adm, (unsigned long long)rej);
	rs_breaker_free(ctx.b);
}

static void test_expo(void)
{
	struct rs_breaker_opts o = rate_opts("pay", NULL);
	struct rs_breaker *b[2];
	static char buf[8192];
	char why[256] = "";
	struct rs_expo e;
	double v = -1;
	int n;

	b[0] = make(&o);
	o.name = "search";
	b[1] = make(&o);
	feed(b[0], 100, false, 0, T0);
	feed(b[0], 50, true, 0, T0);
	admitted(b[0], 7, T0);
	rs_breaker_allow(b[0], T0 + SEC);
	rs_breaker_record(b[0], true, 0, T0 + SEC); /* 1 of 3 trials, still half-open */
	feed(b[1], 10, false, 0, T0);
	rs_expo_init(&e, buf, sizeof(buf));
	rs_breaker_expo(&e, b, 2);
	is_int(rs_expo_finish(&e), 0, "the exposition of 2 breakers fits 8 KiB");
	n = promtext_check(buf, why, sizeof(why));
	is_int(n, 12, "the strict checker accepts it: 2 states + 2 transitions + 8 call counts");
	if (n < 0)
		diag("%s", why);
	ok(promtext_value(buf, "resilience_breaker_state{name=\"pay\"}", &v) && v == 1,
	   "resilience_breaker_state{name=\"pay\"} 1 (half-open)");
	ok(promtext_value(buf, "resilience_breaker_state{name=\"search\"}", &v) && v == 0,
	   "resilience_breaker_state{name=\"search\"} 0 (closed)");
	ok(promtext_value(buf,
			  "resilience_breaker_transitions_total{name=\"pay\",from=\"closed\","
			  "to=\"open\"}",
			  &v) &&
	       v == 1,
	   "transitions_total{pay, closed -> open} 1");
	ok(promtext_value(buf,
			  "resilience_breaker_transitions_total{name=\"pay\",from=\"open\","
			  "to=\"half_open\"}",
			  &v) &&
	       v == 1,
	   "transitions_total{pay, open -> half_open} 1");
	ok(!strstr(buf, "to=\"closed\"") && !strstr(buf, "name=\"search\",from"),
	   "pairs that never happened are not written");
	ok(promtext_value(buf, "resilience_breaker_calls_total{name=\"pay\",result=\"success\"}",
			  &v) &&
	       v == 100,
	   "calls_total{pay, success} 100");
	ok(promtext_value(buf, "resilience_breaker_calls_total{name=\"pay\",result=\"failure\"}",
			  &v) &&
	       v == 51,
	   "calls_total{pay, failure} 51");
	ok(promtext_value(buf, "resilience_breaker_calls_total{name=\"pay\",result=\"rejected\"}",
			  &v) &&
	       v == 7,
	   "calls_total{pay, rejected} 7");
	ok(promtext_value(buf, "resilience_breaker_calls_total{name=\"search\",result=\"slow\"}",
			  &v) &&
	       v == 0,
	   "calls_total{search, slow} 0 is written too");
	diag("exposition:\n%s", buf);
	rs_breaker_free(b[0]);
	rs_breaker_free(b[1]);
}

static void test_bad_options(struct rs_control *ctl)
{
	struct rs_breaker_opts base = rate_opts("bad", NULL);
	static const char long_name[] = "0123456789012345678901234567890123456789012345678";
	int good = 0, n = 0;
	struct rs_breaker_opts cases[32];
	const char *fields[32];

#define CASE(field_, stmt)                                                                         \
	do {                                                                                       \
		cases[n] = base;                                                                   \
		{                                                                                  \
			struct rs_breaker_opts *o = &cases[n];                                     \
			stmt;                                                                      \
		}                                                                                  \
		fields[n++] = field_;                                                              \
	} while (0)
	CASE("name", o->name = NULL);
	CASE("name", o->name = "");
	CASE("name", o->name = long_name);
	CASE("failure_rate_threshold", o->failure_rate_threshold = 1.5);
	CASE("failure_rate_threshold", o->failure_rate_threshold = -0.1);
	CASE("failure_rate_threshold", o->failure_rate_threshold = NAN);
	CASE("slow_rate_threshold", o->slow_rate_threshold = 2);
	CASE("slow_call_ns", (o->slow_rate_threshold = 0.5, o->slow_call_ns = 0));
	CASE("window_kind", o->window_kind = RS_WINDOW_NONE);
	CASE("window_size", o->window_size = 0);
	CASE("window_size", o->window_size = RS_WINDOW_MAX_SIZE + 1);
	CASE("minimum_calls", o->minimum_calls = 0);
	CASE("minimum_calls", o->minimum_calls = 101);
	CASE("window_ns",
	     (o->window_kind = RS_WINDOW_TIME, o->window_ns = 0, o->window_buckets = 10));
	CASE("window_buckets",
	     (o->window_kind = RS_WINDOW_TIME, o->window_ns = SEC, o->window_buckets = 0));
	CASE("window_ns",
	     (o->window_kind = RS_WINDOW_TIME, o->window_ns = 1000, o->window_buckets = 3));
	CASE("window_kind", (o->failure_rate_threshold = 0, o->consecutive_failures = 3));
	CASE("trip policy", (o->failure_rate_threshold = 0, o->window_kind = RS_WINDOW_NONE));
	CASE("open_ns", o->open_ns = 0);
	CASE("open_multiplier", o->open_multiplier = 0.5);
	CASE("open_multiplier", o->open_multiplier = INFINITY);
	CASE("open_max_ns", (o->open_multiplier = 2, o->open_max_ns = SEC / 2));
	CASE("open_jitter", o->open_jitter = 1.0);
	CASE("open_jitter", o->open_jitter = -0.1);
	CASE("half_open_calls", o->half_open_calls = 0);
	CASE("half_open_calls", o->half_open_calls = RS_BREAKER_MAX_TRIALS + 1);
	CASE("half_open_failure_threshold", o->half_open_failure_threshold = 1.5);
	CASE("emergency_threshold", o->emergency_threshold = -1);
	CASE("emergency_threshold", o->emergency_threshold = NAN);
	CASE("emergency_threshold", o->emergency_threshold = INFINITY);
	for (int i = 0; i < n; i++) {
		struct rs_breaker *b = (struct rs_breaker *)1;
		struct rs_err err = { "" };
		int rc = rs_breaker_new(&b, &cases[i], &err);

		if (rc == -EINVAL && b == NULL && strstr(err.msg, fields[i]) &&
		    strncmp(err.msg, "breaker: ", 9) == 0)
			good++;
		else
			diag("case %d: rc %d, message '%s', wanted field '%s'", i, rc, err.msg,
			     fields[i]);
		if (rc == 0)
			rs_breaker_free(b);
	}
	is_int(good, n, "all %d bad breaker options give -EINVAL naming the field", n);
	{
		struct rs_breaker *b;
		struct rs_err err = { "" };
		int rc = rs_breaker_new(&b, NULL, &err);

		ok(rc == -EINVAL && strstr(err.msg, "options"), "NULL options give -EINVAL (%s)",
		   err.msg);
		cases[0] = base;
		cases[0].failure_rate_threshold = 1.5;
		rc = rs_breaker_new(&b, &cases[0], &err);
		is_str(err.msg,
		       "breaker: failure_rate_threshold must be 0 (off) or in [1e-06, 1], got 1.5",
		       "the message names the module, the field and the bad value");
	}
	{
		/* 32 slots in the control block; the 33rd distinct name has none. */
		struct rs_breaker *bs[RS_CONTROL_BREAKERS + 1] = { 0 };
		struct rs_breaker_opts co = base;
		struct rs_err err = { "" };
		struct failalloc fa;
		char name[32];
		int rc = 0, made = 0;

		failalloc_init(&fa, 0);
		co.alloc = &fa.alloc;
		co.control = ctl;
		for (int i = 0; i <= RS_CONTROL_BREAKERS && rc == 0; i++) {
			snprintf(name, sizeof(name), "slot-%d", i);
			co.name = name;
			rc = rs_breaker_new(&bs[i], &co, &err);
			made += rc == 0;
		}
		ok(rc == -ENOSPC && strstr(err.msg, "slot"),
		   "with every control-block slot taken a breaker fails with -ENOSPC (%d made): %s",
		   made, err.msg);
		for (int i = 0; i <= RS_CONTROL_BREAKERS; i++)
			rs_breaker_free(bs[i]);
		is_int(fa.live, 0, "the failed construction leaked nothing (its window was freed)");
	}
}

static void test_alloc_failures(void)
{
	struct rs_breaker_opts base[3] = { rate_opts("fa-count", NULL), rate_opts("fa-time", NULL),
					   rate_opts("fa-none", NULL) };

	base[1].window_kind = RS_WINDOW_TIME;
	base[1].window_ns = 10 * SEC;
	base[1].window_buckets = 10;
	base[2].failure_rate_threshold = 0;
	base[2].window_kind = RS_WINDOW_NONE;
	base[2].consecutive_failures = 5;
	for (int k = 0; k < 3; k++) {
		struct failalloc fa;
		int failures = 0, wrong = 0;

		for (int n = 1; n < 100; n++) {
			struct rs_breaker *b;
			struct rs_breaker_opts o = base[k];
			struct rs_err err = { "" };
			int rc;

			failalloc_init(&fa, n);
			o.alloc = &fa.alloc;
			rc = rs_breaker_new(&b, &o, &err);
			if (rc == 0) {
				feed(b, 200, true, 0, T0);
				rs_breaker_allow(b, T0 + 10 * SEC);
				rs_breaker_free(b);
				wrong += fa.live != 0;
				break;
			}
			failures++;
			wrong += rc != -ENOMEM || fa.live != 0 ||
				 strcmp(err.msg, "breaker: out of memory") != 0;
		}
		ok(wrong == 0 && failures >= 1,
		   "%s: failing allocation 1..%d gives -ENOMEM with nothing leaked, then it works",
		   base[k].name, failures);
	}
}

static char dir[] = "/tmp/fl-breaker-XXXXXX";
static char path[256];

static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	struct rs_control *ctl = NULL;
	struct rs_err err = { "" };

	plan(119);
	if (!mkdtemp(dir))
		bail_out("cannot create a temporary directory: %s", strerror(errno));
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/control", dir);
	if (rs_control_open(&ctl, path, RS_CONTROL_CREATE, NULL, &err))
		bail_out("cannot create a control block: %s", err.msg);

	test_failure_rate();
	test_consecutive();
	test_time_window();
	test_slow_rate();
	test_open_and_half_open();
	test_growth(ctl);
	test_emergency();
	test_forced_api();
	test_forced_control(ctl);
	test_permit_race();
	test_threads();
	test_stress();
	test_expo();
	test_bad_options(ctl);
	test_alloc_failures();
	rs_control_free(ctl);
	return exit_status();
}
