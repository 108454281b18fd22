/* The metastability pair of issue 3: the proof that faultline's experiments
 * measure something real.
 *
 * Two runs of one scenario, each against a fresh dependency and service
 * (faultline-target with experiments/targets/undefended.json, then
 * defended.json; 127.0.0.1, ephemeral ports, fixed seeds), driven in-process
 * by the load generator (harness/loadgen.h: open loop at a fixed rate, no
 * client retries, fixed seed, statistics every 100 ms):
 *
 *   0 s          load at 70% of the dependency's capacity (workers / service
 *                time, read from the config file);
 *   4 s          the trigger: the dependency's capacity drops to 30%
 *                (POST /admin/capacity?factor=0.3) and the service is told
 *                the trigger is present (POST /admin/trigger?active=1);
 *   9 s (R)      restore: factor 1, trigger 0;
 *   R + 11 s     the load ends.
 *
 * Per 500 ms interval: offered = requests sent, goodput = 200 answers.
 * Asserted, per run: the trigger and the restore were applied, and the
 * service was healthy before the trigger (goodput >= 95% of offered); then
 *  - undefended (budget, jitter, shedding and the detector's reaction off):
 *    goodput < 50% of offered in every interval of [R, R + 10 s] -- the
 *    failure outlives its trigger -- and the trigger-aware detector, which
 *    still runs, declares metastability after R and still at the end;
 *  - defended: goodput >= 95% of offered in an interval that ends by
 *    R + 5 s and >= 90% in every interval after it; the trigger-aware
 *    detector fired after R (its episodes counter went up) and cleared
 *    (gauge back to 0) by the end.
 * Every interval, the detector, breaker and queue probes (every 200 ms) and
 * a summary line per run are printed as TAP diagnostics: they are the
 * figures in experiments/targets/README.md.
 *
 * Under the sanitizers (FAULTLINE_SANITIZED=1, set by `make check`) the
 * programs run several times slower: the dependency's service time is
 * doubled and the load halved, so every ratio stays the same.
 *
 * Bounded: a watchdog (alarm) kills the children by pid, removes the
 * temporary data directory and fails the test; each run stops and reaps its
 * children; at most 1000 connections, 20 s of load per run.
 */
#include "tests/tap.h"
#include "tests/srctree.h"
#include "tests/promtext.h"
#include "tests/targetproc.h"

#include <limits.h>
#include <math.h>

#include <uv.h>

#include "harness/loadgen.h"
#include "resilience/clock.h"
#include "target/config.h"

#define WARM_MS	      4000  /* load before the trigger: the detector's baseline */
#define TRIGGER_MS    5000  /* the capacity cut */
#define AFTER_MS      11000 /* load after the restore */
#define LOAD_MS	      (WARM_MS + TRIGGER_MS + AFTER_MS)
#define FINE_MS	      100  /* the load generator's interval */
#define INTERVAL_MS   500  /* the intervals judged: FINE_MS ones added up */
#define PROBE_MS      200  /* metrics sampling */
#define HTTP_MS	      2000 /* bound on one admin or metrics call */
#define MAX_FINE      (LOAD_MS / FINE_MS + 32)
#define MAX_IVALS     (MAX_FINE / (INTERVAL_MS / FINE_MS) + 1)
#define MAX_PROBES    256

#define ITEMS	      "1000"
#define TARGET_SEED   "42"
#define LOAD_SEED     4242
#define LOAD_FRACTION 0.7
#define CUT_FACTOR    "0.3"
#define CONNECTIONS   1000

#define STEADY_MIN    0.95 /* before the trigger, both runs */
#define WATCH_S	      10.0 /* undefended: stuck for this long after R ... */
#define STUCK_MAX     0.5  /* ... with goodput below this fraction of offered */
#define RECOVER_S     5.0  /* defended: back within this ... */
#define RECOVERED_MIN 0.95 /* ... to at least this ... */
#define STAYS_MIN     0.9  /* ... and at least this afterwards */

struct ival {
	uint64_t start_ns, end_ns;
	uint64_t offered, good;
	uint64_t shed, timeout, other; /* failed requests by their last attempt */
};

struct probe {
	uint64_t at_ns;
	double metastable, episodes;	 /* the trigger-aware detector "service" */
	double breaker, pending;	 /* service */
	double dep_queue;		 /* dependency: jobs waiting, */
	double dep_received, dep_wasted; /* jobs received, done for callers gone, */
	double dep_dropped;		 /* refused at once (queue full) */
};

struct run {
	const char *name;
	bool defended;
	char config[PATH_MAX + 64];
	struct targetproc dep, svc;
	uv_loop_t loop;
	struct fl_loadgen *lg;
	uv_timer_t event, prober;
	int phase; /* 0 warm, 1 trigger, 2 restored */
	uint64_t start_ns, trigger_ns, restore_ns;
	struct ival fine[MAX_FINE];
	size_t nfine;
	struct ival iv[MAX_IVALS];
	size_t niv;
	struct probe pr[MAX_PROBES];
	size_t npr;
	int admin_failures;
	double episodes_before;
};

static char src[PATH_MAX];
static char dir[64];
static double rate;		  /* requests/s */
static char service_time_set[64]; /* "--set" value under the sanitizers, else "" */

static double secs(uint64_t ns, uint64_t origin)
{
	return ((double)ns - (double)origin) / 1e9;
}

/* The repository root: the current directory, or the parent of
 * $FAULTLINE_BUILD. */
static void find_src(void)
{
	srctree_find(src, sizeof(src), "experiments/targets/defended.json", false);
}

/* ---- talking to the children (blocking, bounded by HTTP_MS) ---------------------- */

/* GET /metrics; the body (caller-frees) or NULL. */
static char *scrape(int port)
{
	struct targetproc_resp r;
	char *body = NULL;

	if (targetproc_get(port, "/metrics", HTTP_MS, &r) < 0)
		return NULL;
	if (r.status == 200) {
		body = r.body;
		r.body = NULL;
	}
	targetproc_resp_free(&r);
	return body;
}

static double value(const char *text, const char *series)
{
	double v = NAN;

	if (!text || !promtext_value(text, series, &v))
		return NAN;
	return v;
}

static void take_probe(struct run *r)
{
	struct probe *p;
	char *s, *d;

	if (r->npr == MAX_PROBES)
		return;
	p = &r->pr[r->npr++];
	p->at_ns = uv_hrtime();
	s = scrape(r->svc.http_port);
	d = scrape(r->dep.http_port);
	p->metastable = value(s, "resilience_metastable{name=\"service\"}");
	p->episodes = value(s, "resilience_metastable_episodes_total{name=\"service\"}");
	p->breaker = value(s, "resilience_breaker_state{name=\"dependency\"}");
	p->pending = value(s, "faultline_pending");
	p->dep_queue = value(d, "faultline_worker_queue_depth");
	p->dep_received = value(d, "faultline_worker_received_total");
	p->dep_wasted = value(d, "faultline_worker_wasted_total");
	p->dep_dropped = value(d, "faultline_worker_dropped_total");
	free(s);
	free(d);
}

static int admin_post(int port, const char *path)
{
	struct targetproc_resp r;
	int rc = targetproc_post(port, path, NULL, NULL, HTTP_MS, &r);

	if (rc == 0) {
		rc = r.status == 200 ? 0 : -EPROTO;
		targetproc_resp_free(&r);
	}
	return rc;
}

/* ---- the run, on one libuv loop ------------------------------------------------------- */

static void on_event(uv_timer_t *t)
{
	struct run *r = t->data;
	uint64_t elapsed_ms;

	if (r->phase == 0) {
		r->trigger_ns = uv_hrtime();
		if (admin_post(r->dep.admin_port, "/admin/capacity?factor=" CUT_FACTOR) < 0 ||
		    admin_post(r->svc.admin_port, "/admin/trigger?active=1") < 0)
			r->admin_failures++;
		r->phase = 1;
		elapsed_ms = (uv_hrtime() - r->start_ns) / RS_NS_PER_MS;
		uv_timer_start(
		    &r->event, on_event,
		    elapsed_ms < WARM_MS + TRIGGER_MS ? WARM_MS + TRIGGER_MS - elapsed_ms : 0, 0);
	} else if (r->phase == 1) {
		r->restore_ns = uv_hrtime();
		if (admin_post(r->dep.admin_port, "/admin/capacity?factor=1") < 0 ||
		    admin_post(r->svc.admin_port, "/admin/trigger?active=0") < 0)
			r->admin_failures++;
		r->phase = 2;
	}
}

static void on_probe(uv_timer_t *t)
{
	take_probe(t->data);
}

static void on_interval(void *ctx, const struct fl_load_stats *s)
{
	struct run *r = ctx;
	struct ival *v;

	if (r->nfine == MAX_FINE)
		return;
	v = &r->fine[r->nfine++];
	v->start_ns = s->start_ns;
	v->end_ns = s->end_ns;
	v->offered = s->requests;
	v->good = s->successes;
	v->shed = s->failed[FL_FAIL_SHED];
	v->timeout = s->failed[FL_FAIL_TIMEOUT];
	v->other = s->failures - v->shed - v->timeout;
}

static void on_done(void *ctx)
{
	struct run *r = ctx;

	uv_close((uv_handle_t *)&r->event, NULL);
	uv_close((uv_handle_t *)&r->prober, NULL);
}

static void start_children(struct run *r)
{
	const char *set = service_time_set[0] ? "--set" : NULL;
	char why[256], depaddr[64];

	if (targetproc_start(&r->dep,
			     (const char *[]){ "--config", r->config, "--role", "dependency",
					       "--port", "0", "--admin-port", "0", "--seed",
					       TARGET_SEED, set, service_time_set, NULL },
			     NULL, 5000, why, sizeof(why)) < 0)
		bail_out("%s: cannot start the dependency: %s", r->name, why);
	snprintf(depaddr, sizeof(depaddr), "127.0.0.1:%d", r->dep.http_port);
	if (targetproc_start(&r->svc,
			     (const char *[]){ "--config", r->config, "--role", "service", "--port",
					       "0", "--admin-port", "0", "--data-dir", dir,
					       "--dependency", depaddr, "--seed", TARGET_SEED,
					       NULL },
			     NULL, 5000, why, sizeof(why)) < 0)
		bail_out("%s: cannot start the service: %s", r->name, why);
}

static void run_load(struct run *r)
{
	char url[128];
	struct rs_err err = { "" };
	struct fl_loadgen_opts o = {
		.url = url,
		.connections = CONNECTIONS,
		.rate = rate,
		.duration_ns = (uint64_t)LOAD_MS * RS_NS_PER_MS,
		.timeout_ns = 3 * RS_NS_PER_SEC, /* longer than the service's deadline */
		.drain_ns = 500 * RS_NS_PER_MS,
		.retry_attempts = 1,
		.interval_ns = FINE_MS * RS_NS_PER_MS,
		.seed = LOAD_SEED,
		.on_interval = on_interval,
		.on_done = on_done,
		.ctx = r,
	};
	const size_t per = INTERVAL_MS / FINE_MS;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/item/${rand:1:" ITEMS "}",
		 r->svc.http_port);
	if (uv_loop_init(&r->loop) < 0)
		bail_out("cannot create a libuv loop");
	if (fl_loadgen_new(&r->lg, &r->loop, &o, &err) < 0)
		bail_out("%s: load generator: %s", r->name, err.msg);
	uv_timer_init(&r->loop, &r->event);
	uv_timer_init(&r->loop, &r->prober);
	r->event.data = r->prober.data = r;
	take_probe(r);
	r->episodes_before = r->pr[0].episodes;
	uv_update_time(&r->loop);
	fl_loadgen_start(r->lg);
	r->start_ns = fl_loadgen_start_ns(r->lg);
	uv_timer_start(&r->event, on_event, WARM_MS, 0);
	uv_timer_start(&r->prober, on_probe, PROBE_MS, PROBE_MS);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	if (!fl_loadgen_done(r->lg))
		bail_out("%s: the loop ended before the load generator was done", r->name);
	fl_loadgen_free(r->lg);
	r->lg = NULL;
	if (uv_loop_close(&r->loop) < 0)
		bail_out("%s: the loop still holds handles after the run", r->name);
	take_probe(r); /* the state at the end */

	for (size_t i = 0; i < r->nfine && r->niv < MAX_IVALS; i += per) {
		struct ival *v = &r->iv[r->niv++];

		*v = r->fine[i];
		for (size_t j = i + 1; j < i + per && j < r->nfine; j++) {
			v->end_ns = r->fine[j].end_ns;
			v->offered += r->fine[j].offered;
			v->good += r->fine[j].good;
			v->shed += r->fine[j].shed;
			v->timeout += r->fine[j].timeout;
			v->other += r->fine[j].other;
		}
	}
}

/* ---- judging ------------------------------------------------------------------------ */

static double ratio(const struct ival *v)
{
	return v->offered ? (double)v->good / (double)v->offered : NAN;
}

/* Inside the load (the drain's intervals offer nothing). */
static bool in_load(const struct run *r, const struct ival *v)
{
	return v->offered > 0 &&
	       v->end_ns <= r->start_ns + (uint64_t)LOAD_MS * RS_NS_PER_MS + RS_NS_PER_MS;
}

/* The detector's fire and clear times after R, from the probes (NaN:
 * not seen). */
static void detector_times(const struct run *r, double *fired, double *cleared)
{
	*fired = *cleared = NAN;
	for (size_t i = 0; i < r->npr; i++) {
		const struct probe *p = &r->pr[i];

		if (p->at_ns < r->restore_ns)
			continue;
		if (isnan(*fired) && p->metastable == 1)
			*fired = secs(p->at_ns, r->restore_ns);
		else if (!isnan(*fired) && isnan(*cleared) && p->metastable == 0)
			*cleared = secs(p->at_ns, r->restore_ns);
	}
}

static void print_run(const struct run *r)
{
	uint64_t R = r->restore_ns;

	diag("%s: %s, load %.0f/s; trigger at %.2f s, restore R at %.2f s", r->name, r->config,
	     rate, secs(r->trigger_ns, r->start_ns), secs(R, r->start_ns));
	diag("%s:  t-R (s)  offered  goodput  ratio   shed  timeout  other", r->name);
	for (size_t i = 0; i < r->niv; i++) {
		const struct ival *v = &r->iv[i];

		diag("%s: %+7.2f  %7llu  %7llu   %4.2f  %5llu  %7llu  %5llu", r->name,
		     secs(v->start_ns, R), (unsigned long long)v->offered,
		     (unsigned long long)v->good, ratio(v), (unsigned long long)v->shed,
		     (unsigned long long)v->timeout, (unsigned long long)v->other);
	}
	diag("%s:  t-R (s)  metastable  episodes  breaker  pending  dependency queue", r->name);
	for (size_t i = 0; i < r->npr; i++) {
		const struct probe *p = &r->pr[i];

		diag("%s: %+7.2f  %10g  %8g  %7g  %7g  %16g", r->name, secs(p->at_ns, R),
		     p->metastable, p->episodes, p->breaker, p->pending, p->dep_queue);
	}
}

/* One line for the README: goodput during the cut, the dependency's
 * backlog at R, when goodput was back at >= 90% of offered for good (the
 * first 100 ms interval after R that starts a second of such), the
 * detector, and from R to the end the jobs the dependency received per
 * request offered, with the shares done for callers who had gone (wasted)
 * and refused at once (queue full). */
static void summary(const struct run *r)
{
	const size_t hold = 1000 / FINE_MS;
	double back = NAN, fired, cleared, backlog = NAN, during = 0;
	double amp = NAN, waste = NAN, drop = NAN;
	const struct probe *at = NULL, *last = &r->pr[r->npr - 1];
	uint64_t off = 0, good = 0, after = 0;

	for (size_t i = 0; i < r->nfine; i++) {
		const struct ival *v = &r->fine[i];
		size_t k = i;

		if (v->start_ns >= r->trigger_ns && v->end_ns <= r->restore_ns) {
			off += v->offered;
			good += v->good;
		}
		if (v->start_ns >= r->restore_ns)
			after += v->offered;
		if (!isnan(back) || v->end_ns <= r->restore_ns)
			continue;
		while (k < r->nfine && k < i + hold && in_load(r, &r->fine[k]) &&
		       (double)r->fine[k].good >= 0.9 * (double)r->fine[k].offered)
			k++;
		if (k == i + hold)
			back = secs(v->start_ns, r->restore_ns);
	}
	if (off)
		during = (double)good / (double)off;
	for (size_t i = 0; i < r->npr; i++)
		if (r->pr[i].at_ns <= r->restore_ns)
			at = &r->pr[i];
	if (at) {
		double jobs = last->dep_received - at->dep_received;

		backlog = at->dep_queue;
		amp = after ? jobs / (double)after : NAN;
		waste = jobs > 0 ? (last->dep_wasted - at->dep_wasted) / jobs : NAN;
		drop = jobs > 0 ? (last->dep_dropped - at->dep_dropped) / jobs : NAN;
	}
	detector_times(r, &fired, &cleared);
	diag("summary %s: goodput during the cut %.2f; dependency queue at R %g; goodput >= 90%% "
	     "for good from R%+.1f s (nan: never); detector fired R%+.1f s, cleared R%+.1f s "
	     "(nan: not seen); after R the dependency received %.2f jobs per request: %.0f%% "
	     "wasted, %.0f%% refused",
	     r->name, during, backlog, back, fired, cleared, amp, waste * 100, drop * 100);
}

static void check_steady(const struct run *r)
{
	uint64_t off = 0, good = 0;
	double worst = 1;

	/* From 1 s in (connections warm up) to the trigger. */
	for (size_t i = 0; i < r->niv; i++) {
		const struct ival *v = &r->iv[i];

		if (v->start_ns < r->start_ns + RS_NS_PER_SEC || v->end_ns > r->trigger_ns)
			continue;
		off += v->offered;
		good += v->good;
		worst = fmin(worst, ratio(v));
	}
	ok(off > 0 && (double)good >= STEADY_MIN * (double)off,
	   "%s: healthy before the trigger: goodput %.3f of offered (%llu/%llu, lowest "
	   "interval %.2f)",
	   r->name, off ? (double)good / (double)off : 0.0, (unsigned long long)good,
	   (unsigned long long)off, worst);
}

static void check_undefended(const struct run *r)
{
	uint64_t R = r->restore_ns, end = R + (uint64_t)(WATCH_S * 1e9);
	const struct probe *last = &r->pr[r->npr - 1];
	double highest = 0, fired, cleared;
	bool stuck = true;
	size_t n = 0;

	/* Every interval that overlaps [R, R + WATCH_S]. */
	for (size_t i = 0; i < r->niv; i++) {
		const struct ival *v = &r->iv[i];

		if (v->end_ns <= R || v->start_ns >= end || !in_load(r, v))
			continue;
		n++;
		highest = fmax(highest, ratio(v));
		if (!(ratio(v) < STUCK_MAX))
			stuck = false;
	}
	ok(stuck && n >= (size_t)(WATCH_S * 1000 / INTERVAL_MS),
	   "%s: goodput < %.0f%% of offered in all %zu intervals of [R, R+%.0f s] (highest %.2f)",
	   r->name, STUCK_MAX * 100, n, WATCH_S, highest);
	detector_times(r, &fired, &cleared);
	ok(!isnan(fired) && last->metastable == 1,
	   "%s: the detector (no reaction) declares metastability after R (at R%+.1f s) and "
	   "still at the end (gauge %g)",
	   r->name, fired, last->metastable);
}

static void check_defended(const struct run *r)
{
	uint64_t R = r->restore_ns;
	const struct probe *last = &r->pr[r->npr - 1];
	double fired, cleared, back = NAN, back_end = NAN, after = 1;

	/* The first interval after R at >= 95% from which on all are >= 90%. */
	for (size_t i = 0; i < r->niv && isnan(back); i++) {
		const struct ival *v = &r->iv[i];
		bool stays = true;

		if (v->end_ns <= R || !in_load(r, v) || !(ratio(v) >= RECOVERED_MIN))
			continue;
		after = 1;
		for (size_t j = i + 1; j < r->niv; j++) {
			if (!in_load(r, &r->iv[j]))
				continue;
			after = fmin(after, ratio(&r->iv[j]));
			if (!(ratio(&r->iv[j]) >= STAYS_MIN))
				stays = false;
		}
		if (stays) {
			back = secs(v->start_ns, R);
			back_end = secs(v->end_ns, R);
		}
	}
	/* 10 ms of slack: R is taken just after the interval boundary. */
	ok(!isnan(back_end) && back_end <= RECOVER_S + 0.01,
	   "%s: goodput back >= %.0f%% of offered in [R%+.2f, R%+.2f] s (bound R+%.0f s), "
	   ">= %.2f after it",
	   r->name, RECOVERED_MIN * 100, back, back_end, RECOVER_S, after);
	detector_times(r, &fired, &cleared);
	ok(last->episodes - r->episodes_before >= 1 && !isnan(fired),
	   "%s: the trigger-aware detector fired after R (at R%+.1f s; episodes %g -> %g)", r->name,
	   fired, r->episodes_before, last->episodes);
	ok(last->metastable == 0 && !isnan(cleared),
	   "%s: the detector cleared (at R%+.1f s; gauge %g at the end)", r->name, cleared,
	   last->metastable);
}

static void one_run(struct run *r)
{
	int st;

	start_children(r);
	run_load(r);
	print_run(r);
	ok(r->admin_failures == 0 && r->trigger_ns && r->restore_ns,
	   "%s: the capacity cut and the restore were applied", r->name);
	check_steady(r);
	if (r->defended)
		check_defended(r);
	else
		check_undefended(r);
	summary(r);
	if ((st = targetproc_stop(&r->svc, 5000)) != 0)
		diag("%s: the service exited with %d", r->name, st);
	if ((st = targetproc_stop(&r->dep, 5000)) != 0)
		diag("%s: the dependency exited with %d", r->name, st);
}

int main(void)
{
	static struct run runs[2] = {
		{ .name = "undefended", .defended = false },
		{ .name = "defended", .defended = true },
	};
	struct fl_target_config cfg;
	struct rs_err err = { "" };
	const char *san = getenv("FAULTLINE_SANITIZED");
	unsigned scale = san && *san && strcmp(san, "0") != 0 ? 2 : 1;
	uint64_t service_ns;
	int st = -1;

	targetproc_watchdog(scale > 1 ? 150 : 100);
	if (!targetproc_binary())
		skip_all("$FAULTLINE_BUILD/faultline-target is not built (set FAULTLINE_BUILD)");
	find_src();
	for (int i = 0; i < 2; i++)
		snprintf(runs[i].config, sizeof(runs[i].config), "%s/experiments/targets/%s.json",
			 src, runs[i].name);

	/* The load follows the capacity the defended config gives the
	 * dependency (the two configs agree on it). */
	fl_target_config_default(&cfg);
	if (fl_target_config_load(&cfg, runs[1].config, &err) < 0 || cfg.workers.count == 0 ||
	    cfg.workers.service_time_ns == 0)
		bail_out("%s: no usable workers.count and workers.service_time", runs[1].config);
	service_ns = cfg.workers.service_time_ns * scale;
	if (scale > 1)
		snprintf(service_time_set, sizeof(service_time_set), "workers.service_time=%lluus",
			 (unsigned long long)(service_ns / RS_NS_PER_US));
	rate = LOAD_FRACTION * cfg.workers.count * 1e9 / (double)service_ns;
	diag("dependency: %u workers x %.1f ms = %.0f/s; load %.0f/s; capacity x%s for %d ms%s",
	     cfg.workers.count, (double)service_ns / 1e6, rate / LOAD_FRACTION, rate, CUT_FACTOR,
	     TRIGGER_MS, scale > 1 ? " (sanitized build: service time doubled, load halved)" : "");

	if (targetproc_tmpdir(dir, sizeof(dir)) < 0)
		bail_out("cannot create a temporary directory");
	if (targetproc_run((const char *[]){ "--init-data", dir, "--items", ITEMS, NULL }, NULL,
			   10000, &st, NULL, 0, NULL, 0) < 0 ||
	    st != 0)
		bail_out("faultline-target --init-data %s --items " ITEMS " failed", dir);

	plan(9);
	one_run(&runs[0]);
	one_run(&runs[1]);
	targetproc_cleanup();
	return exit_status();
}
