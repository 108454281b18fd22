/* The metastability detector: the multi-signal form (a) enters at exactly
 * the first evaluation with k signals and exits after its hysteresis; the
 * signature form (b) needs low load and a symptom; the trigger-aware form
 * (c) fires in a retry storm that outlives its trigger, D after the trigger
 * ends, clears when goodput comes back, and stays silent in plain overload
 * and in a normal recovery.  Scenarios (c) run a tiny deterministic
 * queueing model (seeded, 1 s periods, injected time). */
#include "tests/tap.h"
#include "tests/failalloc.h"
#include "tests/promtext.h"

#include <errno.h>
#include <stdbool.h>

#include "resilience/clock.h"
#include "resilience/detector.h"
#include "resilience/expo.h"
#include "resilience/rng.h"

/* A tiny deterministic queueing model for the detector tests: one server
 * with a fixed capacity per period, a FIFO queue bounded at qmax attempts,
 * clients that send `lambda` new requests a period (+-3, seeded), give up on
 * an attempt that waited more than `timeout` periods and retry it up to
 * `max_retries` times.  The server still spends capacity on abandoned
 * attempts unless skip_expired is set (the mitigation: deadline checks). */
#define QM_PERIOD_NS RS_NS_PER_SEC
#define QM_START_NS  (1000 * RS_NS_PER_SEC)
#define QM_COHORTS   1024

struct qm_cohort {
	int born, count, tries;
	bool abandoned;
};

struct qmodel {
	struct qm_cohort q[QM_COHORTS];
	int head, len;
	long queued;
	int normal_capacity, lambda, timeout, max_retries;
	long qmax;
	bool skip_expired;
	long pending[8]; /* rejected attempts to retry next period, by tries */
	struct rs_rng rng;
	int p;
	/* last period's figures, for diagnostics */
	long successes, wasted, timeouts, rejected, attempts, newreq;
};

static void qm_init(struct qmodel *m, int lambda, int capacity, int timeout, int max_retries,
		    uint64_t seed)
{
	memset(m, 0, sizeof(*m));
	m->lambda = lambda;
	m->normal_capacity = capacity;
	m->timeout = timeout;
	m->max_retries = max_retries;
	m->qmax = 1000;
	rs_rng_seed(&m->rng, seed);
}

static struct qm_cohort *qm_at(struct qmodel *m, int i)
{
	return &m->q[(m->head + i) % QM_COHORTS];
}

static void qm_push(struct qmodel *m, int count, int tries, long *rejected)
{
	long room = m->qmax - m->queued;
	int take = count < room ? count : (int)room;

	if (count - take > 0) {
		*rejected += count - take;
		if (tries <= m->max_retries)
			m->pending[tries + 1] += count - take;
	}
	if (take <= 0)
		return;
	if (m->len == QM_COHORTS)
		bail_out("queue model: cohort ring overflow");
	*qm_at(m, m->len) = (struct qm_cohort){ m->p, take, tries, false };
	m->len++;
	m->queued += take;
}

/* Runs one period with the given capacity and fills the detector sample. */
static void qm_step(struct qmodel *m, int capacity, bool trigger, struct rs_detector_sample *s)
{
	long retry[8] = { 0 }, timeouts = 0, rejected = 0, success = 0, wasted = 0, attempts;
	long budget = capacity;
	int maxage = 0, newreq, i;

	for (i = 0; i < 8; i++) {
		retry[i] = m->pending[i];
		m->pending[i] = 0;
	}
	for (i = 0; i < m->len; i++) {
		struct qm_cohort *c = qm_at(m, i);

		if (!c->abandoned && m->p - c->born > m->timeout) {
			c->abandoned = true;
			timeouts += c->count;
			if (c->tries <= m->max_retries)
				retry[c->tries + 1] += c->count;
		}
	}
	newreq = m->lambda + (int)rs_rng_range(&m->rng, 0, 6) - 3;
	attempts = newreq;
	qm_push(m, newreq, 1, &rejected);
	for (i = 2; i < 8; i++) {
		attempts += retry[i];
		if (retry[i])
			qm_push(m, (int)retry[i], i, &rejected);
	}
	while (m->len > 0) {
		struct qm_cohort *c = qm_at(m, 0);
		int take;

		if (c->abandoned && m->skip_expired) {
			m->queued -= c->count;
			c->count = 0;
		} else {
			if (budget == 0)
				break;
			take = c->count < budget ? c->count : (int)budget;
			if (c->abandoned)
				wasted += take;
			else
				success += take;
			if (m->p - c->born > maxage)
				maxage = m->p - c->born;
			budget -= take;
			c->count -= take;
			m->queued -= take;
		}
		if (c->count == 0) {
			m->head = (m->head + 1) % QM_COHORTS;
			m->len--;
		}
	}
	memset(s, 0, sizeof(*s));
	s->now_ns = QM_START_NS + (uint64_t)m->p * QM_PERIOD_NS;
	s->latency_ns = 20 * RS_NS_PER_MS + (uint64_t)maxage * QM_PERIOD_NS;
	s->error_rate = attempts ? (double)(timeouts + rejected) / (double)attempts : 0;
	if (s->error_rate > 1)
		s->error_rate = 1;
	s->throughput = (double)(success + wasted);
	s->offered_load = newreq;
	s->goodput = (double)success;
	s->cpu = (double)(success + wasted) / m->normal_capacity;
	s->memory = 0.4;
	s->queue_depth = (uint64_t)m->queued;
	s->cache_hit_ratio = NAN;
	s->retry_amplification = (double)attempts / newreq;
	s->trigger_active = trigger;
	m->successes = success;
	m->wasted = wasted;
	m->timeouts = timeouts;
	m->rejected = rejected;
	m->attempts = attempts;
	m->newreq = newreq;
	m->p++;
}

#define SEC RS_NS_PER_SEC
#define MS  RS_NS_PER_MS

struct events {
	struct rs_detector_event ev[16];
	int n;
};

static void on_event(void *ctx, const struct rs_detector_event *ev)
{
	struct events *e = ctx;

	if (e->n < 16)
		e->ev[e->n] = *ev;
	e->n++;
}

static struct rs_detector *make(struct rs_detector_opts *o, const char *name)
{
	struct rs_detector *d;
	struct rs_err err = { "" };

	o->name = name;
	if (rs_detector_new(&d, o, &err) != 0)
		bail_out("rs_detector_new(%s): %s", name, err.msg);
	return d;
}

/* A healthy sample for the synthetic (a)/(b) tests: p99 50 ms, 0.1% errors,
 * 1000 req/s, half-busy, 10 queued, warm cache, no retries. */
static struct rs_detector_sample healthy(int period)
{
	return (struct rs_detector_sample){
		.now_ns = 100 * SEC + (uint64_t)period * SEC,
		.latency_ns = 50 * MS,
		.error_rate = 0.001,
		.throughput = 1000,
		.offered_load = 1000,
		.goodput = 999,
		.cpu = 0.5,
		.memory = 0.5,
		.queue_depth = 10,
		.cache_hit_ratio = 0.9,
		.retry_amplification = 1.0,
	};
}

/* A (a) detector with the defaults but `k` and `exit_k`, fed 10 healthy
 * samples (periods 0..9). */
static struct rs_detector *multi_ready(int k, int exit_k, uint64_t floor_ns, struct events *ev)
{
	struct rs_detector_opts o;
	struct rs_detector *d;

	rs_detector_opts_default(&o, RS_DETECTOR_MULTI_SIGNAL);
	o.k = (uint32_t)k;
	o.exit_k = (uint32_t)exit_k;
	o.latency_floor_ns = floor_ns;
	if (ev) {
		o.on_event = on_event;
		o.on_event_ctx = ev;
	}
	d = make(&o, "svc-a");
	for (int p = 0; p < 10; p++) {
		struct rs_detector_sample s = healthy(p);

		(void)rs_detector_update(d, &s);
	}
	return d;
}

/* Signal bits of one sample fed (at period 10) to a fresh ready detector. */
static unsigned bits_of(struct rs_detector_sample s, uint64_t floor_ns)
{
	struct rs_detector *d = multi_ready(5, 5, floor_ns, NULL);
	struct rs_detector_report r;

	s.now_ns = healthy(10).now_ns;
	(void)rs_detector_update(d, &s);
	rs_detector_report(d, &r);
	rs_detector_free(d);
	return r.signals;
}

/* Bad options: case i breaks one field of a default opts for `form`. */
static const struct {
	enum rs_detector_form form;
	const char *field;
	const char *shows; /* what the message must show of the value */
} bad_cases[] = {
	{ RS_DETECTOR_MULTI_SIGNAL, "name", "NULL" },
	{ RS_DETECTOR_MULTI_SIGNAL, "name", "got 0" },
	{ RS_DETECTOR_MULTI_SIGNAL, "name", "got 48" },
	{ RS_DETECTOR_MULTI_SIGNAL, "form", "got 7" },
	{ RS_DETECTOR_MULTI_SIGNAL, "period_ns", "got 0" },
	{ RS_DETECTOR_MULTI_SIGNAL, "alpha", "got 0" },
	{ RS_DETECTOR_MULTI_SIGNAL, "alpha", "got 1.5" },
	{ RS_DETECTOR_MULTI_SIGNAL, "alpha", "got nan" },
	{ RS_DETECTOR_MULTI_SIGNAL, "min_baseline_samples", "got 0" },
	{ RS_DETECTOR_MULTI_SIGNAL, "exit_periods", "got 0" },
	{ RS_DETECTOR_MULTI_SIGNAL, "k", "got 0" },
	{ RS_DETECTOR_MULTI_SIGNAL, "k", "got 6" },
	{ RS_DETECTOR_MULTI_SIGNAL, "exit_k", "got 4" },
	{ RS_DETECTOR_MULTI_SIGNAL, "exit_k", "got 0" },
	{ RS_DETECTOR_MULTI_SIGNAL, "latency_factor", "got 0.5" },
	{ RS_DETECTOR_MULTI_SIGNAL, "error_rate_threshold", "got 1" },
	{ RS_DETECTOR_MULTI_SIGNAL, "error_rate_threshold", "got -0.1" },
	{ RS_DETECTOR_MULTI_SIGNAL, "throughput_fraction", "got 0" },
	{ RS_DETECTOR_MULTI_SIGNAL, "resource_threshold", "got 1" },
	{ RS_DETECTOR_MULTI_SIGNAL, "queue_factor", "got inf" },
	{ RS_DETECTOR_SIGNATURE, "low_load_fraction", "got 1.5" },
	{ RS_DETECTOR_SIGNATURE, "cache_hit_threshold", "got 0" },
	{ RS_DETECTOR_SIGNATURE, "latency_factor", "got nan" },
	{ RS_DETECTOR_TRIGGER_AWARE, "trigger_clear_ns", "got 0" },
	{ RS_DETECTOR_TRIGGER_AWARE, "load_band", "got 0" },
	{ RS_DETECTOR_TRIGGER_AWARE, "goodput_fraction", "got 1.1" },
	{ RS_DETECTOR_TRIGGER_AWARE, "retry_budget", "got -0.5" },
};

static void break_field(struct rs_detector_opts *o, int i)
{
	static const char long_name[] = "a-name-of-forty-eight-bytes-which-is-one-too-lon";

	switch (i) {
	case 0:
		o->name = NULL;
		break;
	case 1:
		o->name = "";
		break;
	case 2:
		o->name = long_name;
		break;
	case 3:
		o->form = (enum rs_detector_form)7;
		break;
	case 4:
		o->period_ns = 0;
		break;
	case 5:
		o->alpha = 0;
		break;
	case 6:
		o->alpha = 1.5;
		break;
	case 7:
		o->alpha = NAN;
		break;
	case 8:
		o->min_baseline_samples = 0;
		break;
	case 9:
		o->exit_periods = 0;
		break;
	case 10:
		o->k = 0;
		break;
	case 11:
		o->k = 6;
		break;
	case 12:
		o->exit_k = 4;
		break;
	case 13:
		o->exit_k = 0;
		break;
	case 14:
		o->latency_factor = 0.5;
		break;
	case 15:
		o->error_rate_threshold = 1;
		break;
	case 16:
		o->error_rate_threshold = -0.1;
		break;
	case 17:
		o->throughput_fraction = 0;
		break;
	case 18:
		o->resource_threshold = 1;
		break;
	case 19:
		o->queue_factor = INFINITY;
		break;
	case 20:
		o->low_load_fraction = 1.5;
		break;
	case 21:
		o->cache_hit_threshold = 0;
		break;
	case 22:
		o->latency_factor = NAN;
		break;
	case 23:
		o->trigger_clear_ns = 0;
		break;
	case 24:
		o->load_band = 0;
		break;
	case 25:
		o->goodput_fraction = 1.1;
		break;
	case 26:
		o->retry_budget = -0.5;
		break;
	}
}

static void test_bad_options(void)
{
	int n = (int)(sizeof(bad_cases) / sizeof(bad_cases[0])), bad = 0;
	struct rs_detector_opts o;
	struct rs_detector *d;
	struct rs_err err;

	for (int i = 0; i < n; i++) {
		int rc;

		rs_detector_opts_default(&o, bad_cases[i].form);
		o.name = "svc";
		break_field(&o, i);
		err.msg[0] = 0;
		d = (struct rs_detector *)&o; /* must be reset to NULL */
		rc = rs_detector_new(&d, &o, &err);
		if (rc != -EINVAL || d || !strstr(err.msg, bad_cases[i].field) ||
		    !strstr(err.msg, bad_cases[i].shows) || strncmp(err.msg, "detector: ", 10)) {
			diag("case %d (%s): rc %d, msg '%s'", i, bad_cases[i].field, rc, err.msg);
			bad++;
		}
	}
	is_int(bad, 0, "%d bad option sets each return -EINVAL naming the field and value", n);

	/* Fields a form does not read are ignored, not validated. */
	rs_detector_opts_default(&o, RS_DETECTOR_TRIGGER_AWARE);
	o.name = "svc";
	o.k = 0;
	o.cache_hit_threshold = -1;
	is_int(rs_detector_new(&d, &o, &err), 0,
	       "form (c) ignores k = 0 and cache_hit_threshold = -1");
	rs_detector_free(d);
	is_int(rs_detector_new(&d, NULL, &err), -EINVAL, "NULL opts is -EINVAL");
	rs_detector_free(NULL);
	ok(1, "rs_detector_free(NULL) is a no-op");
}

static void test_alloc_failure(void)
{
	static const char *const forms[] = { "multi-signal", "signature", "trigger-aware" };

	for (int f = 0; f < 3; f++) {
		struct rs_detector_opts o;
		struct failalloc fa;
		struct rs_err err;
		struct rs_detector *d;
		int bad = 0, n;

		rs_detector_opts_default(&o, (enum rs_detector_form)f);
		o.name = "svc";
		o.alloc = &fa.alloc;
		for (n = 1;; n++) {
			int rc;

			failalloc_init(&fa, n);
			rc = rs_detector_new(&d, &o, &err);
			if (rc == 0)
				break;
			bad += rc != -ENOMEM || fa.live != 0 || d != NULL ||
			       !strstr(err.msg, "out of memory");
		}
		ok(bad == 0 && n == 2 && fa.live == 1,
		   "%s: failing allocation 1 of 1 gives -ENOMEM and leaks nothing", forms[f]);
		rs_detector_free(d);
		is_int(fa.live, 0, "%s: rs_detector_free releases its one block", forms[f]);
	}
}

static void test_multi_signals(void)
{
	struct rs_detector_sample s;
	struct rs_detector_report r;
	struct rs_detector *d;

	d = multi_ready(3, 3, 100 * MS, NULL);
	rs_detector_report(d, &r);
	ok(r.baseline_ready && r.baseline_samples == 10 && r.baseline.latency_ns == 50.0 * MS &&
	       r.baseline.throughput == 1000 && r.baseline.queue_depth == 10,
	   "baseline after 10 constant healthy samples: 50 ms, 1000/s, queue 10");
	ok(!r.metastable && r.signals == 0 && r.evaluations == 10, "10 healthy samples: no signal");
	rs_detector_free(d);

	s = healthy(0);
	s.latency_ns = 100 * MS;
	is_int(bits_of(s, 0), 0, "latency exactly 2x baseline (100 ms) is no signal");
	s.latency_ns = 100 * MS + 1;
	is_int(bits_of(s, 0), RS_DETECTOR_SIG_LATENCY,
	       "latency 1 ns above 2x baseline is a signal");
	s.latency_ns = 150 * MS;
	is_int(bits_of(s, 150 * MS), 0, "latency 3x baseline but at the 150 ms floor is no signal");
	s.latency_ns = 151 * MS;
	is_int(bits_of(s, 150 * MS), RS_DETECTOR_SIG_LATENCY,
	       "latency 151 ms above the floor is a signal");
	s = healthy(0);
	s.error_rate = 0.05;
	is_int(bits_of(s, 0), 0, "error rate at the 0.05 threshold is no signal");
	s.error_rate = 0.0501;
	is_int(bits_of(s, 0), RS_DETECTOR_SIG_ERRORS, "error rate 0.0501 is a signal");
	s = healthy(0);
	s.throughput = 500;
	is_int(bits_of(s, 0), 0, "throughput at 0.5x baseline (500/s) is no signal");
	s.throughput = 499;
	is_int(bits_of(s, 0), RS_DETECTOR_SIG_THROUGHPUT, "throughput 499/s is a signal");
	s = healthy(0);
	s.cpu = 0.9;
	s.memory = 0.9;
	is_int(bits_of(s, 0), 0, "cpu and memory at 0.9 are no signal");
	s.cpu = 0.91;
	is_int(bits_of(s, 0), RS_DETECTOR_SIG_RESOURCES, "cpu 0.91 is a signal");
	s.cpu = 0.5;
	s.memory = 0.91;
	is_int(bits_of(s, 0), RS_DETECTOR_SIG_RESOURCES, "memory 0.91 is a signal");
	s = healthy(0);
	s.queue_depth = 1000;
	is_int(bits_of(s, 0), 0, "queue depth 1000 is no signal");
	s.queue_depth = 1001;
	is_int(bits_of(s, 0), RS_DETECTOR_SIG_QUEUE,
	       "queue depth 1001 (> 1000 and > 5x 10) is a signal");
	s = healthy(0);
	s.error_rate = NAN;
	s.throughput = NAN;
	s.cpu = NAN;
	is_int(bits_of(s, 0), 0, "NaN (not measured) fields hold no signal");

	/* queue_factor: a baseline of 300 queued puts the bar at 1500. */
	{
		struct rs_detector_opts o;
		unsigned b1, b2;

		rs_detector_opts_default(&o, RS_DETECTOR_MULTI_SIGNAL);
		o.k = 5;
		o.exit_k = 5;
		d = make(&o, "q");
		for (int p = 0; p < 10; p++) {
			s = healthy(p);
			s.queue_depth = 300;
			(void)rs_detector_update(d, &s);
		}
		/* 1501 first: a signal is not learnt, a no-signal sample is. */
		s = healthy(10);
		s.queue_depth = 1501;
		(void)rs_detector_update(d, &s);
		rs_detector_report(d, &r);
		b2 = r.signals;
		s = healthy(11);
		s.queue_depth = 1500;
		(void)rs_detector_update(d, &s);
		rs_detector_report(d, &r);
		b1 = r.signals;
		ok(b1 == 0 && b2 == RS_DETECTOR_SIG_QUEUE,
		   "baseline queue 300: 1501 is a signal (> 5x baseline), 1500 is not");
		is_double(r.baseline.queue_depth, 420, 1e-9,
			  "the no-signal sample (1500) is learnt: baseline 300 + 0.1 x 1200 = 420");
		rs_detector_free(d);
	}
}

static struct rs_detector_sample with_signals(int period, int n)
{
	struct rs_detector_sample s = healthy(period);

	if (n >= 1)
		s.latency_ns = 300 * MS;
	if (n >= 2)
		s.error_rate = 0.2;
	if (n >= 3)
		s.cpu = 0.95;
	if (n >= 4)
		s.throughput = 100;
	if (n >= 5)
		s.queue_depth = 5000;
	return s;
}

static void test_multi_enter_exit(void)
{
	struct events ev = { .n = 0 };
	struct rs_detector_sample s;
	struct rs_detector_report r;
	struct rs_detector *d;
	int rc;

	/* Warm-up: nothing is declared before 5 healthy samples. */
	{
		struct rs_detector_opts o;

		rs_detector_opts_default(&o, RS_DETECTOR_MULTI_SIGNAL);
		d = make(&o, "warm");
		for (int p = 0; p < 4; p++) {
			s = healthy(p);
			(void)rs_detector_update(d, &s);
		}
		s = with_signals(4, 5);
		rc = rs_detector_update(d, &s);
		rs_detector_report(d, &r);
		ok(rc == 0 && !r.metastable && !r.baseline_ready && r.baseline_samples == 4,
		   "5 signals after 4 healthy samples (of 5 needed): nothing declared, not learnt");
		s = healthy(5);
		(void)rs_detector_update(d, &s);
		s = with_signals(6, 3);
		rc = rs_detector_update(d, &s);
		ok(rc == RS_DETECTOR_ENTER, "after the 5th healthy sample, 3 signals enter");
		rs_detector_free(d);
	}

	/* A service whose normal p99 (300 ms) is above the 100 ms floor still
	 * learns its baseline: relative conditions wait for one. */
	{
		struct rs_detector_opts o;

		rs_detector_opts_default(&o, RS_DETECTOR_MULTI_SIGNAL);
		d = make(&o, "slow");
		for (int p = 0; p < 5; p++) {
			s = healthy(p);
			s.latency_ns = 300 * MS;
			(void)rs_detector_update(d, &s);
		}
		rs_detector_report(d, &r);
		ok(r.baseline_ready && r.baseline.latency_ns == 300.0 * MS && r.signals == 0,
		   "normal p99 of 300 ms (above the floor): baseline 300 ms after 5 samples");
		rs_detector_free(d);
	}

	d = multi_ready(3, 3, 100 * MS, &ev);
	s = with_signals(10, 2);
	rc = rs_detector_update(d, &s);
	rs_detector_report(d, &r);
	ok(rc == 0 && !r.metastable && r.nsignals == 2,
	   "k = 3: an evaluation with 2 signals (latency, errors) is not metastable");
	s = with_signals(11, 3);
	rc = rs_detector_update(d, &s);
	rs_detector_report(d, &r);
	ok(rc == RS_DETECTOR_ENTER && r.metastable && r.nsignals == 3 && r.since_ns == s.now_ns,
	   "the first evaluation with 3 signals (t = 111 s) enters");
	ok(ev.n == 1 && ev.ev[0].kind == RS_DETECTOR_ENTER && ev.ev[0].at_ns == 111 * SEC &&
	       ev.ev[0].since_ns == 111 * SEC && ev.ev[0].duration_ns == 0 &&
	       ev.ev[0].episode == 1 && strcmp(ev.ev[0].name, "svc-a") == 0 &&
	       ev.ev[0].signals ==
		   (RS_DETECTOR_SIG_LATENCY | RS_DETECTOR_SIG_ERRORS | RS_DETECTOR_SIG_RESOURCES),
	   "ENTER event: at 111 s, episode 1, name svc-a, latency|errors|resources");

	/* Hysteresis: 3 calm evaluations in a row; a relapse restarts it. */
	s = healthy(12);
	s.latency_ns = 10 * MS; /* healthy, but must not enter the baseline */
	(void)rs_detector_update(d, &s);
	s = healthy(13);
	(void)rs_detector_update(d, &s);
	s = with_signals(14, 3);
	(void)rs_detector_update(d, &s);
	rs_detector_report(d, &r);
	ok(r.metastable && ev.n == 1, "2 calm evaluations then 3 signals again: still metastable");
	ok(r.baseline.latency_ns == 50.0 * MS,
	   "the baseline does not learn while metastable (50 ms)");
	s = healthy(15);
	(void)rs_detector_update(d, &s);
	s = healthy(16);
	rc = rs_detector_update(d, &s);
	rs_detector_report(d, &r);
	ok(rc == 0 && r.metastable, "after the relapse, 2 calm evaluations are not enough");
	is_int((long long)r.metastable_ns, 5 * SEC, "time metastable so far: 5 s (open episode)");
	s = healthy(17);
	rc = rs_detector_update(d, &s);
	rs_detector_report(d, &r);
	ok(rc == RS_DETECTOR_EXIT && !r.metastable && r.since_ns == 0,
	   "the 3rd calm evaluation in a row (t = 117 s) exits");
	ok(ev.n == 2 && ev.ev[1].kind == RS_DETECTOR_EXIT && ev.ev[1].at_ns == 117 * SEC &&
	       ev.ev[1].since_ns == 111 * SEC && ev.ev[1].duration_ns == 6 * SEC &&
	       ev.ev[1].episode == 1,
	   "EXIT event: at 117 s, since 111 s, duration 6 s, episode 1");
	ok(r.entered == 1 && r.exited == 1 && r.metastable_ns == 6 * SEC &&
	       r.last_duration_ns == 6 * SEC,
	   "report: 1 entered, 1 exited, 6 s metastable in total");

	/* A second episode adds up. */
	s = with_signals(18, 4);
	(void)rs_detector_update(d, &s);
	for (int p = 19; p < 22; p++) {
		s = healthy(p);
		(void)rs_detector_update(d, &s);
	}
	rs_detector_report(d, &r);
	ok(r.entered == 2 && r.exited == 2 && r.metastable_ns == 9 * SEC && ev.ev[2].episode == 2 &&
	       ev.ev[3].duration_ns == 3 * SEC,
	   "a second episode (4 signals, 3 calm) adds 3 s: 9 s over 2 episodes");

	/* Samples closer than half a period are dropped, as are ones from the past. */
	s = with_signals(22, 5);
	s.now_ns = 121 * SEC + 499 * MS;
	rc = rs_detector_update(d, &s);
	s.now_ns = 120 * SEC;
	rc |= rs_detector_update(d, &s);
	rs_detector_report(d, &r);
	ok(rc == 0 && !r.metastable && r.dropped == 2 && r.evaluations == 22,
	   "samples 0.499 s after the last evaluation or before it are dropped (2 counted)");
	s.now_ns = 121 * SEC + 500 * MS;
	rc = rs_detector_update(d, &s);
	ok(rc == RS_DETECTOR_ENTER, "a sample half a period later is evaluated (5 signals enter)");
	rs_detector_free(d);

	/* A lower exit count: k = 3, exit_k = 2. */
	ev.n = 0;
	d = multi_ready(3, 2, 100 * MS, &ev);
	s = with_signals(10, 3);
	(void)rs_detector_update(d, &s);
	for (int p = 11; p < 16; p++) {
		s = with_signals(p, 2);
		(void)rs_detector_update(d, &s);
	}
	ok(rs_detector_metastable(d),
	   "exit_k 2: five evaluations with 2 signals do not count as calm");
	s = with_signals(16, 1);
	(void)rs_detector_update(d, &s);
	s = with_signals(17, 1);
	(void)rs_detector_update(d, &s);
	ok(rs_detector_metastable(d), "exit_k 2: two evaluations with 1 signal are not enough");
	s = with_signals(18, 1);
	rc = rs_detector_update(d, &s);
	ok(rc == RS_DETECTOR_EXIT && ev.n == 2 && ev.ev[1].duration_ns == 8 * SEC,
	   "exit_k 2: the 3rd evaluation with 1 signal exits (episode of 8 s)");
	rs_detector_free(d);
}

/* (b): baseline 1000/s offered, then the "less busy but worse" signature. */
static struct rs_detector *signature_ready(struct events *ev)
{
	struct rs_detector_opts o;
	struct rs_detector *d;

	rs_detector_opts_default(&o, RS_DETECTOR_SIGNATURE);
	o.on_event = ev ? on_event : NULL;
	o.on_event_ctx = ev;
	d = make(&o, "svc-b");
	for (int p = 0; p < 10; p++) {
		struct rs_detector_sample s = healthy(p);

		(void)rs_detector_update(d, &s);
	}
	return d;
}

static void test_signature(void)
{
	struct events ev = { .n = 0 };
	struct rs_detector_sample s;
	struct rs_detector_report r;
	struct rs_detector *d;
	int rc;

	d = signature_ready(NULL);
	s = healthy(10);
	s.offered_load = 500;
	rc = rs_detector_update(d, &s);
	rs_detector_report(d, &r);
	ok(rc == 0 && r.signals == RS_DETECTOR_SIG_LOW_LOAD,
	   "low load alone (500/s) is not the signature");
	is_double(r.baseline.offered_load, 950, 1e-9,
		  "low load without symptoms is healthy and learnt: baseline 1000 -> 950");
	rs_detector_free(d);

	d = signature_ready(&ev);
	s = healthy(11);
	s.cache_hit_ratio = 0.2;
	s.latency_ns = 400 * MS;
	rc = rs_detector_update(d, &s);
	ok(rc == 0 && !rs_detector_metastable(d),
	   "cold cache and slow at normal load (1000/s) is not the signature");
	s = healthy(12);
	s.offered_load = 700;
	s.cache_hit_ratio = 0.2;
	rc = rs_detector_update(d, &s);
	ok(rc == 0, "load at exactly 0.7x baseline (700/s) with a cold cache: not yet");
	s = healthy(13);
	s.offered_load = 699;
	s.cache_hit_ratio = 0.2;
	rc = rs_detector_update(d, &s);
	rs_detector_report(d, &r);
	ok(rc == RS_DETECTOR_ENTER &&
	       r.signals == (RS_DETECTOR_SIG_LOW_LOAD | RS_DETECTOR_SIG_COLD_CACHE) && ev.n == 1 &&
	       ev.ev[0].at_ns == 113 * SEC,
	   "699/s (< 0.7x) with cache hit ratio 0.2 enters at 113 s");
	for (int p = 14; p < 16; p++) {
		s = healthy(p);
		s.offered_load = 600; /* still low, but no symptom: calm */
		(void)rs_detector_update(d, &s);
	}
	ok(rs_detector_metastable(d), "2 calm evaluations are not enough to exit");
	s = healthy(16);
	rc = rs_detector_update(d, &s);
	ok(rc == RS_DETECTOR_EXIT && ev.n == 2 && ev.ev[1].duration_ns == 3 * SEC,
	   "the 3rd calm evaluation exits (duration 3 s)");
	rs_detector_free(d);

	d = signature_ready(NULL);
	s = healthy(10);
	s.offered_load = 600;
	s.latency_ns = 101 * MS;
	rc = rs_detector_update(d, &s);
	ok(rc == RS_DETECTOR_ENTER, "low load with latency 101 ms (> 2x 50 ms, > floor) enters");
	rs_detector_free(d);
	d = signature_ready(NULL);
	s = healthy(10);
	s.offered_load = 600;
	s.queue_depth = 2000;
	rc = rs_detector_update(d, &s);
	rs_detector_report(d, &r);
	ok(rc == RS_DETECTOR_ENTER && (r.signals & RS_DETECTOR_SIG_QUEUE),
	   "low load with 2000 queued enters (queue signal)");
	rs_detector_free(d);
}

/* ---- scenarios on the queueing model (1 s periods, 80 req/s, capacity
 * 100/period, client timeout 2 periods) ---------------------------------- */

struct scenario {
	int retries;	 /* client retries per request */
	int trig_from;	 /* first period with the trigger */
	int trig_len;	 /* periods with the trigger */
	int fault_cap;	 /* capacity during the trigger (0: unchanged) */
	int surge;	 /* offered load during the trigger (0: unchanged) */
	bool flag;	 /* tell the detector about the trigger */
	int mitigate_at; /* period the server starts skipping expired work (0: never) */
	int periods;
};

struct outcome {
	int fired_at, cleared_at; /* periods, -1 when never */
	int first_calm_after_fire;
	int low_goodput_after_trigger; /* evaluations after the trigger with goodput < g */
	struct rs_detector_report r;
	struct events ev;
};

static void run(const struct scenario *sc, struct rs_detector *d, struct outcome *out)
{
	struct qmodel *m = calloc(1, sizeof(*m));
	bool calm_seen = false;

	if (!m)
		bail_out("out of memory");
	memset(out, 0, sizeof(*out));
	out->fired_at = out->cleared_at = out->first_calm_after_fire = -1;
	qm_init(m, 80, 100, 2, sc->retries, 42);
	for (int p = 0; p < sc->periods; p++) {
		bool trig = p >= sc->trig_from && p < sc->trig_from + sc->trig_len;
		struct rs_detector_sample s;
		int rc;

		m->lambda = trig && sc->surge ? sc->surge : 80;
		if (sc->mitigate_at && p == sc->mitigate_at)
			m->skip_expired = true;
		qm_step(m, trig && sc->fault_cap ? sc->fault_cap : 100, trig && sc->flag, &s);
		rc = rs_detector_update(d, &s);
		if (rc & RS_DETECTOR_ENTER)
			out->fired_at = p;
		if (rc & RS_DETECTOR_EXIT)
			out->cleared_at = p;
		if (p >= sc->trig_from + sc->trig_len && s.goodput < 0.9 * s.offered_load &&
		    out->fired_at < 0)
			out->low_goodput_after_trigger++;
		if (out->fired_at >= 0 && !calm_seen && s.goodput >= 0.9 * s.offered_load &&
		    s.retry_amplification <= 1.2) {
			calm_seen = true;
			out->first_calm_after_fire = p;
		}
	}
	rs_detector_report(d, &out->r);
	free(m);
}

static struct rs_detector *trigger_aware(struct events *ev)
{
	struct rs_detector_opts o;

	rs_detector_opts_default(&o, RS_DETECTOR_TRIGGER_AWARE);
	o.trigger_clear_ns = 10 * SEC; /* D */
	o.on_event = ev ? on_event : NULL;
	o.on_event_ctx = ev;
	return make(&o, "svc-c");
}

static void test_retry_storm(char *expo_buf, size_t expo_cap)
{
	/* Capacity drops to 30/period for 5 periods (30..34); clients retry
	 * twice; the stale backlog makes every attempt time out, retries
	 * triple the attempts and the storm outlives the fault.  At period 60
	 * the server starts dropping expired work and goodput comes back. */
	const struct scenario sc = { .retries = 2,
				     .trig_from = 30,
				     .trig_len = 5,
				     .fault_cap = 30,
				     .flag = true,
				     .mitigate_at = 60,
				     .periods = 70 };
	struct events ev = { .n = 0 };
	struct rs_detector *d = trigger_aware(&ev), *a, *b;
	struct rs_detector_opts o;
	struct outcome out;

	run(&sc, d, &out);
	is_int(out.r.trigger_end_ns, QM_START_NS + 35 * SEC,
	       "storm: the trigger is first seen gone at period 35");
	is_int(out.fired_at, 45,
	       "storm: fires at period 45, the first evaluation D = 10 s after 35");
	ok(ev.n >= 1 && ev.ev[0].kind == RS_DETECTOR_ENTER &&
	       ev.ev[0].at_ns - ev.ev[0].trigger_end_ns == 10 * SEC &&
	       (ev.ev[0].signals & RS_DETECTOR_SIG_OUTLIVED) &&
	       (ev.ev[0].signals & RS_DETECTOR_SIG_LOAD_STEADY) &&
	       (ev.ev[0].signals & RS_DETECTOR_SIG_LOW_GOODPUT) &&
	       (ev.ev[0].signals & RS_DETECTOR_SIG_AMPLIFIED),
	   "storm: the fired event is 10 s after the trigger ended, with outlived, "
	   "steady load, low goodput and amplification");
	is_int(out.first_calm_after_fire, 62,
	       "storm: goodput and amplification are back at period 62 (mitigation at 60)");
	is_int(out.cleared_at, 64, "storm: clears at period 64, the 3rd calm evaluation");
	ok(ev.n == 2 && ev.ev[1].kind == RS_DETECTOR_EXIT && ev.ev[1].duration_ns == 19 * SEC,
	   "storm: the cleared event reports an episode of 19 s");
	ok(out.r.triggers == 1 && out.r.entered == 1 && out.r.exited == 1 &&
	       out.r.recoveries == 0 && !out.r.metastable,
	   "storm: 1 trigger, fired once, cleared once, no normal recovery");
	is_double(out.r.baseline.offered_load, 80, 3,
		  "storm: the baseline offered load is 80/s (+-3)");

	/* The same run seen by (a) and (b), for the exposition test. */
	rs_detector_opts_default(&o, RS_DETECTOR_MULTI_SIGNAL);
	a = make(&o, "svc-a");
	rs_detector_opts_default(&o, RS_DETECTOR_SIGNATURE);
	b = make(&o, "svc-b");
	{
		const struct scenario sc2 = { .retries = 2,
					      .trig_from = 30,
					      .trig_len = 5,
					      .fault_cap = 30,
					      .flag = true,
					      .periods = 50 };
		struct rs_detector *c = trigger_aware(NULL);
		const struct rs_detector *all[3] = { a, b, c };
		struct outcome oa, ob, oc;
		struct rs_expo e;

		run(&sc2, a, &oa);
		run(&sc2, b, &ob);
		run(&sc2, c, &oc);
		diag("storm without mitigation, 50 periods: (a) fired at %d, (b) fired at %d, "
		     "(c) fired at %d",
		     oa.fired_at, ob.fired_at, oc.fired_at);
		ok(oa.r.metastable && !ob.r.metastable && oc.r.metastable,
		   "storm at period 49: (a) and (c) say metastable; (b) does not, since the "
		   "clients' load never drops");
		rs_expo_init(&e, expo_buf, expo_cap);
		rs_detector_expo(&e, all, 3);
		is_int(rs_expo_finish(&e), 0, "exposition of 3 detectors fits");
		rs_detector_free(c);
	}
	rs_detector_free(a);
	rs_detector_free(b);
	rs_detector_free(d);
}

static void test_normal_recovery(void)
{
	struct rs_detector *d;
	struct outcome out;

	/* Same fault, clients without retries: the backlog drains and goodput
	 * is back 4 periods after the trigger, within D. */
	{
		const struct scenario sc = { .retries = 0,
					     .trig_from = 30,
					     .trig_len = 5,
					     .fault_cap = 30,
					     .flag = true,
					     .periods = 60 };

		d = trigger_aware(NULL);
		run(&sc, d, &out);
		is_int(
		    out.low_goodput_after_trigger, 4,
		    "no retries: goodput stays below 0.9x offered for 4 periods after the trigger");
		ok(out.fired_at < 0 && out.r.entered == 0 && out.r.recoveries == 1 &&
		       out.r.triggers == 1,
		   "no retries: silent; counted as 1 normal recovery");
		rs_detector_free(d);
	}
	/* Same clients (2 retries), a 2-period fault: no storm starts. */
	{
		const struct scenario sc = { .retries = 2,
					     .trig_from = 30,
					     .trig_len = 2,
					     .fault_cap = 30,
					     .flag = true,
					     .periods = 60 };

		d = trigger_aware(NULL);
		run(&sc, d, &out);
		ok(out.fired_at < 0 && out.r.recoveries == 1,
		   "2 retries, 2-period fault: recovers, silent, 1 normal recovery");
		rs_detector_free(d);
	}
	/* The storm while the trigger stays on for 20 periods: overload, not
	 * metastability, until the trigger goes; then D later it fires. */
	{
		const struct scenario sc = { .retries = 2,
					     .trig_from = 30,
					     .trig_len = 20,
					     .fault_cap = 30,
					     .flag = true,
					     .periods = 65 };

		d = trigger_aware(NULL);
		run(&sc, d, &out);
		is_int(out.fired_at, 60,
		       "trigger on for 20 periods (30..49): silent while present, fires at 60");
		rs_detector_free(d);
	}
	/* Without the trigger flag the form has no episode to judge. */
	{
		const struct scenario sc = { .retries = 2,
					     .trig_from = 30,
					     .trig_len = 5,
					     .fault_cap = 30,
					     .flag = false,
					     .periods = 60 };

		d = trigger_aware(NULL);
		run(&sc, d, &out);
		ok(out.fired_at < 0 && out.r.triggers == 0,
		   "the same storm with no trigger reported: (c) stays silent (never armed)");
		rs_detector_free(d);
	}
}

static void test_plain_overload(void)
{
	/* Offered load rises to 130/s for 5 periods (the trigger), latency
	 * rises to 1-2 s; the load returns to 80/s and latency follows by
	 * period 44. */
	const struct scenario sc = { .retries = 2,
				     .trig_from = 30,
				     .trig_len = 5,
				     .surge = 130,
				     .flag = true,
				     .periods = 60 };
	struct rs_detector_opts o;
	struct rs_detector *d;
	struct outcome out;

	d = trigger_aware(NULL);
	run(&sc, d, &out);
	ok(out.fired_at < 0 && out.r.recoveries == 1 && out.r.triggers == 1,
	   "plain overload: (c) stays silent (1 trigger, 1 normal recovery)");
	rs_detector_free(d);

	rs_detector_opts_default(&o, RS_DETECTOR_SIGNATURE);
	d = make(&o, "svc-b");
	run(&sc, d, &out);
	ok(out.fired_at < 0 && out.r.entered == 0, "plain overload: (b) stays silent");
	rs_detector_free(d);

	/* (a) cannot tell overload apart: with k = 3 two signals hold
	 * (latency, CPU) and it stays silent; with k = 2 it fires during the
	 * surge and clears after the load ends. */
	rs_detector_opts_default(&o, RS_DETECTOR_MULTI_SIGNAL);
	d = make(&o, "svc-a");
	run(&sc, d, &out);
	ok(out.fired_at < 0, "plain overload: (a) with k = 3 stays silent (2 signals hold)");
	rs_detector_free(d);
	o.k = 2;
	o.exit_k = 2;
	d = make(&o, "svc-a");
	run(&sc, d, &out);
	is_int(out.fired_at, 31,
	       "plain overload: (a) with k = 2 fires at period 31 (latency + CPU)");
	is_int(out.cleared_at, 45,
	       "plain overload: (a) with k = 2 clears at 45, the 3rd evaluation with < 2 "
	       "signals (CPU below 0.9 from 43)");
	rs_detector_free(d);
}

static void test_expo(const char *buf)
{
	char why[256] = "";
	double v = -1;
	int n = promtext_check(buf, why, sizeof(why));

	is_int(n, 9, "the exposition is valid text format with 9 samples (3 families x 3)");
	if (n < 0)
		diag("%s", why);
	ok(promtext_value(buf, "resilience_metastable{name=\"svc-c\"}", &v) && v == 1,
	   "resilience_metastable{svc-c} is 1 during the storm");
	ok(promtext_value(buf, "resilience_metastable{name=\"svc-b\"}", &v) && v == 0,
	   "resilience_metastable{svc-b} is 0");
	ok(promtext_value(buf, "resilience_detector_signals{name=\"svc-c\"}", &v) && v == 4,
	   "resilience_detector_signals{svc-c} is 4 (steady, goodput, amplified, outlived)");
	ok(promtext_value(buf, "resilience_metastable_episodes_total{name=\"svc-c\"}", &v) &&
	       v == 1,
	   "resilience_metastable_episodes_total{svc-c} is 1");
	ok(strstr(buf, "# TYPE resilience_metastable_episodes_total counter\n") &&
	       strstr(buf, "# TYPE resilience_metastable gauge\n") &&
	       strstr(buf, "# TYPE resilience_detector_signals gauge\n"),
	   "the families carry their types");
}

int main(void)
{
	static char expo[8192];

	test_bad_options();
	test_alloc_failure();
	test_multi_signals();
	test_multi_enter_exit();
	test_signature();
	test_retry_storm(expo, sizeof(expo));
	test_normal_recovery();
	test_plain_overload();
	test_expo(expo);
	done_testing();
	return exit_status();
}
