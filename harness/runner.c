/* The runner's life cycle: preflight, target start, load and probes, the
 * plan's phases, stopping (runner.h).  Fault operations are in
 * runner_faults.c, verdicts and output in runner_out.c. */
#include "harness/runner_int.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness/recover.h"
#include "harness/runmap.h"
#include "harness/statedir.h"
#include "resilience/clock.h"
#include "resilience/control.h"

#ifndef FL_VERSION
#define FL_VERSION "0.1.0"
#endif

#define NS_MS RS_NS_PER_MS
#define NS_S  RS_NS_PER_SEC

static const char *const phase_names[] = {
	[PH_PREFLIGHT] = "preflight", [PH_STARTING] = "starting", [PH_PREPARING] = "preparing",
	[PH_WARMUP] = "warmup",	      [PH_BASELINE] = "baseline", [PH_METHOD] = "method",
	[PH_RECOVERY] = "recovery",   [PH_FINAL] = "final",	  [PH_STOPPING] = "stopping",
	[PH_DONE] = "done",
};

const char *run_phase_name(enum run_phase p)
{
	return phase_names[p];
}

double run_offset_s(const struct run *r, uint64_t t_ns)
{
	if (!r->start_ns || t_ns == FL_T_NONE)
		return NAN;
	return ((double)t_ns - (double)r->start_ns) / 1e9;
}

void run_note(struct run *r, const char *fmt, ...)
{
	va_list ap;

	fl_status_clear(&r->status);
	fputs("faultline: ", r->err);
	va_start(ap, fmt);
	vfprintf(r->err, fmt, ap);
	va_end(ap);
	fputc('\n', r->err);
	fflush(r->err);
}

bool run_chatty(const struct run *r)
{
	return r->o->status != FL_STATUS_NONE;
}

void run_jcheck(struct run *r, int rc)
{
	if (rc >= 0 || r->journal_warned)
		return;
	r->journal_warned = true;
	run_note(r, "warning: cannot write the journal: %s", fl_journal_error(r->j));
}

void run_set_phase(struct run *r, enum run_phase p, uint64_t t_ns)
{
	r->phase = p;
	if (r->j)
		run_jcheck(r, fl_journal_phase(r->j, t_ns, phase_names[p]));
}

/* ---- the client source: the load generator's view for client probes ---- */

static int client_read(void *ctx, const char *metric, uint64_t now_ns, double *v)
{
	struct run *r = ctx;
	const struct fl_load_stats *iv, *tot;
	const struct rs_hist *h;
	char m[48];
	const char *how = "corrected", *at = strchr(metric, '@');
	double dt, fin;
	uint64_t q;

	(void)now_ns;
	if (at) {
		snprintf(m, sizeof(m), "%.*s", (int)(at - metric), metric);
		how = at + 1;
		metric = m;
	}
	if (!r->lg || !r->lg_started)
		return -ENODATA;
	iv = fl_loadgen_last_interval(r->lg);
	tot = fl_loadgen_totals(r->lg);
	if (!iv || !tot)
		return -ENODATA;
	/* Cumulative counts since the load started (series.h). */
	if (strcmp(metric, "requests") == 0)
		return *v = (double)tot->requests, 0;
	if (strcmp(metric, "attempts") == 0)
		return *v = (double)tot->attempts, 0;
	if (strcmp(metric, "successes") == 0)
		return *v = (double)tot->successes, 0;
	if (strcmp(metric, "failures") == 0)
		return *v = (double)tot->failures, 0;
	if (strcmp(metric, "timeouts") == 0)
		return *v = (double)tot->errors[FL_FAIL_TIMEOUT], 0;
	/* Rates and ratios over the last interval. */
	dt = (double)(iv->end_ns - iv->start_ns) / 1e9;
	fin = (double)iv->successes + (double)iv->failures;
	if (strcmp(metric, "error_rate") == 0 || strcmp(metric, "shed_rate") == 0) {
		if (fin <= 0)
			return -ENODATA;
		*v = (metric[0] == 'e' ? (double)iv->failures : (double)iv->failed[FL_FAIL_SHED]) /
		     fin;
		return 0;
	}
	if (strcmp(metric, "throughput") == 0 || strcmp(metric, "goodput") == 0) {
		if (dt <= 0)
			return -ENODATA;
		*v = (metric[0] == 't' ? fin : (double)iv->successes) / dt;
		return 0;
	}
	if (strcmp(metric, "amplification") == 0) {
		if (!iv->requests)
			return -ENODATA;
		*v = (double)iv->attempts / (double)iv->requests;
		return 0;
	}
	if (strncmp(metric, "latency_", 8) != 0)
		return -EINVAL;
	h = strcmp(how, "uncorrected") == 0 ? iv->latency_uncorrected
	    : strcmp(how, "first") == 0	    ? iv->latency_first
					    : iv->latency;
	if (!h || rs_hist_count(h) == 0)
		return -ENODATA;
	if (strcmp(metric + 8, "max") == 0) {
		*v = (double)rs_hist_max(h) / 1e9;
		return 0;
	}
	{
		double qq = strcmp(metric + 8, "p50") == 0    ? 0.5
			    : strcmp(metric + 8, "p90") == 0  ? 0.9
			    : strcmp(metric + 8, "p99") == 0  ? 0.99
			    : strcmp(metric + 8, "p999") == 0 ? 0.999
							      : -1;

		if (qq < 0)
			return -EINVAL;
		if (rs_hist_quantile(h, qq, &q) < 0)
			return -ENODATA;
		*v = (double)q / 1e9;
	}
	return 0;
}

/* ---- stopping --------------------------------------------------------------- */

static void finish(struct run *r);

void run_stop(struct run *r, enum stop_kind kind, int code, const char *fmt, ...)
{
	uint64_t now = uv_hrtime();
	va_list ap;

	if (r->stop != STOP_NONE)
		return;
	r->stop = kind;
	r->code = code;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
	va_end(ap);
	if (r->start_ns && r->rl.end_ns == FL_T_NONE)
		r->rl.end_ns = now;
	run_set_phase(r, PH_STOPPING, now);
	if (kind == STOP_SIGNAL || kind == STOP_ABORT || (kind != STOP_COMPLETED && run_chatty(r)))
		run_note(r, "stopping: %s", r->reason);
	if (r->handles_open) {
		uv_timer_stop(&r->tick);
		uv_timer_stop(&r->plan);
		uv_timer_stop(&r->ready_timer);
	}
	if (r->ready.req)
		fl_http1_cancel(r->ready.req);
	if (r->lg && r->lg_started && !r->lg_done)
		fl_loadgen_stop(r->lg);
	run_continue(r);
}

static void probe_closed(void *ctx)
{
	struct run_probe *rp = ctx;

	rp->run->probes_open--;
	run_continue(rp->run);
}

static void tproc_closed(void *ctx)
{
	struct fl_tproc *p = ctx;
	struct run *r = p->o.ctx;

	if (p == &r->svc) {
		r->svc_closed = true;
		/* The dependency goes after the service that calls it. */
		if (r->dep_started && !r->dep_closed)
			fl_tproc_close(&r->dep, r->x->dependency.stop_timeout_ns, tproc_closed,
				       &r->dep);
	} else {
		r->dep_closed = true;
	}
	run_continue(r);
}

static void close_all(struct run *r)
{
	for (size_t i = 0; r->probes && i < r->x->nprobes; i++) {
		struct run_probe *rp = &r->probes[i];

		if (rp->open) {
			rp->open = false;
			fl_probe_close(rp->inst, probe_closed, rp);
		}
	}
	if (r->lg && r->lg_started && !r->lg_done)
		fl_loadgen_stop(r->lg);
	if (r->svc_started) {
		fl_tproc_close(&r->svc, r->x->service.stop_timeout_ns, tproc_closed, &r->svc);
	} else {
		r->svc_closed = true;
		if (r->dep_started)
			fl_tproc_close(&r->dep, r->x->dependency.stop_timeout_ns, tproc_closed,
				       &r->dep);
	}
	if (!r->dep_started)
		r->dep_closed = true;
}

static void continue_step(struct run *r)
{
	if (r->ops_in_flight || r->prep_busy)
		return;
	if (!r->reverts_started) {
		r->reverts_started = true;
		run_revert_all_start(r);
	}
	if (r->revert_busy)
		return;
	if (!r->closing) {
		r->closing = true;
		close_all(r);
	}
	if (r->probes_open || (r->lg_started && !r->lg_done) || !r->svc_closed || !r->dep_closed)
		return;
	finish(r);
}

/* Re-entrant: a callback that runs inside a step (a probe closing at once)
 * asks for another pass instead of nesting. */
void run_continue(struct run *r)
{
	if (r->stop == STOP_NONE || r->finished)
		return;
	if (r->in_continue) {
		r->continue_again = true;
		return;
	}
	r->in_continue = true;
	do {
		r->continue_again = false;
		continue_step(r);
	} while (r->continue_again && !r->finished);
	r->in_continue = false;
}

static void handle_closed(uv_handle_t *h)
{
	(void)h;
}

static void close_handles(struct run *r)
{
	if (!r->handles_open)
		return;
	r->handles_open = false;
	uv_close((uv_handle_t *)&r->tick, handle_closed);
	uv_close((uv_handle_t *)&r->plan, handle_closed);
	uv_close((uv_handle_t *)&r->status_timer, handle_closed);
	uv_close((uv_handle_t *)&r->ready_timer, handle_closed);
	for (int i = 0; i < 3; i++) {
		static const int signums[3] = { SIGINT, SIGTERM, SIGHUP };
		struct sigaction ign;

		uv_close((uv_handle_t *)&r->sig[i], handle_closed);
		/* libuv gave the signal back its default action: a late Ctrl-C
		 * must not kill the process before it reports its exit code
		 * (fl_run restores the caller's actions before returning). */
		memset(&ign, 0, sizeof(ign));
		ign.sa_handler = SIG_IGN;
		sigaction(signums[i], &ign, NULL);
	}
	run_lockstep_close(r);
}

static void remove_rundir(struct run *r)
{
	if (r->svc_control_made)
		unlink(r->svc_control);
	if (r->dep_control_made)
		unlink(r->dep_control);
	if (r->rundir_made)
		rmdir(r->rundir);
}

static void finish(struct run *r)
{
	bool unreverted = false;

	r->finished = true;
	fl_status_clear(&r->status);
	for (size_t i = 0; r->acts && i < r->nacts_made; i++)
		if (r->acts[i].undo_open)
			unreverted = true;
	if (r->revert_failed && (r->code == FL_EXIT_PASS || r->code == FL_EXIT_ABORTED))
		r->code = FL_EXIT_FAIL;
	r->code = run_finish_output(r);
	if (!unreverted)
		remove_rundir(r);
	r->phase = PH_DONE;
	close_handles(r);
}

/* ---- probes and sampling ---------------------------------------------------- */

static void record(struct run_probe *rp, uint64_t t, double v, bool ok, const char *why)
{
	struct run *r = rp->run;
	struct fl_sample s = { t, v, ok && isfinite(v) };
	int rc;

	rc = fl_series_append(&r->rl.series[rp->index], t, v, ok);
	if (rc < 0 && rc != -EINVAL && !r->journal_warned)
		run_note(r, "warning: cannot keep a sample of probe '%s': %s",
			 r->x->probes[rp->index].name, strerror(-rc));
	if (r->j)
		run_jcheck(r, fl_journal_sample(r->j, t, rp->index, v, s.ok, s.ok ? NULL : why));
	if (r->stop != STOP_NONE)
		return;
	for (size_t k = 0; k < r->x->naborts; k++) {
		if (r->x->aborts[k].value.probe != rp->index)
			continue;
		if (fl_eval_abort_feed(&r->aborts[k], &s) == 1 && r->stop == STOP_NONE) {
			r->abort_index = k;
			run_stop(r, STOP_ABORT, FL_EXIT_ABORTED,
				 "stop condition '%s' met at +%.2fs", r->x->aborts[k].name,
				 run_offset_s(r, r->aborts[k].met_ns));
			return;
		}
	}
}

static void on_sample(void *ctx, const struct fl_probe_sample *s)
{
	struct run_probe *rp = ctx;

	rp->busy = false;
	if (s->status == -ECANCELED)
		return;
	record(rp, s->t_ns, s->value, s->status == 0, s->why);
	for (size_t i = 0; i < rp->nmissed; i++)
		record(rp, rp->missed[i], NAN, false,
		       "busy: the previous sample was still running");
	rp->nmissed = 0;
}

static void on_tick(uv_timer_t *t)
{
	struct run *r = t->data;
	uint64_t now = uv_hrtime();

	for (size_t i = 0; i < r->x->nprobes && r->stop == STOP_NONE; i++) {
		struct run_probe *rp = &r->probes[i];
		int rc;

		if (!rp->open)
			continue;
		if (rp->busy) {
			if (rp->nmissed < sizeof(rp->missed) / sizeof(rp->missed[0]))
				rp->missed[rp->nmissed++] = now;
			continue;
		}
		rc = fl_probe_sample(rp->inst, now, on_sample, rp);
		if (rc == 0)
			rp->busy = true;
		else if (rc != -ECANCELED)
			record(rp, now, NAN, false, "the probe could not start a sample");
	}
}

static int open_probes(struct run *r, struct rs_err *err)
{
	struct fl_run_where w = {
		.svc_url = r->svc_url,
		.svc_admin = r->svc_admin,
		.svc_metrics = r->svc_metrics,
		.dep_url = r->dep_url,
		.dep_admin = r->dep_admin,
		.dep_metrics = r->dep_metrics,
		.ports = &r->ports,
		.exp_dir = r->exp_dir,
	};

	r->client.ctx = r;
	r->client.read = client_read;
	r->penv.loop = &r->loop;
	r->penv.client = &r->client;
	r->probes = calloc(r->x->nprobes ? r->x->nprobes : 1, sizeof(*r->probes));
	if (!r->probes)
		return rs__enomem(err, "probes");
	for (size_t i = 0; i < r->x->nprobes; i++) {
		struct run_probe *rp = &r->probes[i];
		struct fl_probe_cfg cfg;
		int rc;

		rp->run = r;
		rp->index = i;
		if ((rc = fl_map_probe(&r->x->probes[i], &w, &r->arena, &cfg, err)) < 0)
			return rc;
		if ((rc = fl_probe_open(&rp->inst, &cfg, &r->penv, err)) < 0)
			return rc;
		rp->open = true;
		r->probes_open++;
	}
	return 0;
}

/* ---- the plan ------------------------------------------------------------------- */

static void arm_plan(struct run *r);

static void baseline_check(struct run *r, uint64_t now)
{
	const struct fl_experiment *x = r->x;
	struct rs_err err = { "" };
	size_t bad = 0, first_bad = 0;

	r->baseline = calloc(x->nsteady, sizeof(*r->baseline));
	if (!r->baseline ||
	    fl_eval_steady(x, &r->rl, r->rl.warmup_end_ns, now, r->baseline, NULL, &err) < 0) {
		run_stop(r, STOP_FAILURE, FL_EXIT_FAIL, "cannot evaluate the baseline: %s",
			 err.msg[0] ? err.msg : "out of memory");
		return;
	}
	r->baseline_done = true;
	for (size_t i = 0; i < x->nsteady; i++)
		if (!r->baseline[i].pass && !bad++)
			first_bad = i;
	r->baseline_pass = bad == 0;
	if (bad) {
		run_stop(r, STOP_BASELINE, FL_EXIT_FAIL,
			 "the baseline steady-state check failed before any fault (%s)",
			 r->baseline[first_bad].detail);
		return;
	}
	r->rl.steady_ns = now;
	run_set_phase(r, PH_METHOD, now);
	if (run_chatty(r))
		run_note(r, "baseline: the steady state holds (%zu check%s) at +%.1fs", x->nsteady,
			 x->nsteady == 1 ? "" : "s", run_offset_s(r, now));
}

static void plan_event(struct run *r, const struct fl_plan_event *e, uint64_t now)
{
	switch (e->kind) {
	case FL_PLAN_WARMUP_END:
		r->rl.warmup_end_ns = now;
		if (r->x->nsteady) {
			run_set_phase(r, PH_BASELINE, now);
		} else {
			r->rl.steady_ns = now;
			run_set_phase(r, PH_METHOD, now);
		}
		break;
	case FL_PLAN_BASELINE:
		baseline_check(r, now);
		break;
	case FL_PLAN_ACTION_START:
	case FL_PLAN_ACTION_REPEAT:
	case FL_PLAN_ACTION_END:
		run_action_event(r, e);
		break;
	case FL_PLAN_RECOVERY:
		run_set_phase(r, PH_RECOVERY, now);
		break;
	case FL_PLAN_FINAL_WINDOW:
		r->rl.final_ns = now;
		run_set_phase(r, PH_FINAL, now);
		break;
	case FL_PLAN_END:
		run_stop(r, STOP_COMPLETED, FL_EXIT_PASS, "completed");
		break;
	}
}

static void on_plan(uv_timer_t *t)
{
	struct run *r = t->data;
	uint64_t now = uv_hrtime();

	while (r->stop == STOP_NONE && r->next_plan < r->x->nplan &&
	       r->start_ns + r->x->plan[r->next_plan].t_ns <= now + NS_MS / 2) {
		const struct fl_plan_event *e = &r->x->plan[r->next_plan++];

		plan_event(r, e, now);
	}
	if (r->stop == STOP_NONE)
		arm_plan(r);
}

static void arm_plan(struct run *r)
{
	uint64_t now = uv_hrtime(), due, ms;

	if (r->next_plan >= r->x->nplan)
		return;
	due = r->start_ns + r->x->plan[r->next_plan].t_ns;
	ms = due > now ? (due - now + NS_MS - 1) / NS_MS : 0;
	uv_update_time(&r->loop);
	uv_timer_start(&r->plan, on_plan, ms, 0);
}

/* ---- status ------------------------------------------------------------------------ */

static void update_met(struct run *r, uint64_t now)
{
	struct fl_runlog copy = r->rl;
	struct fl_verdict *v;
	struct rs_err err;

	if (!r->x->nexpects || !r->start_ns)
		return;
	v = calloc(r->x->nexpects, sizeof(*v));
	if (!v)
		return;
	if (copy.end_ns == FL_T_NONE)
		copy.end_ns = now;
	if (fl_eval_expects(r->x, &copy, v, NULL, NULL, &err) == 0) {
		r->met_so_far = 0;
		for (size_t i = 0; i < r->x->nexpects; i++)
			r->met_so_far += v[i].pass;
		r->met_known = true;
	}
	free(v);
}

static void on_status(uv_timer_t *t)
{
	struct run *r = t->data;
	uint64_t now = uv_hrtime();
	struct fl_status_view v = { 0 };
	char faults[256];

	if (r->j && now - r->last_flush_ns >= NS_S) {
		r->last_flush_ns = now;
		run_jcheck(r, fl_journal_flush(r->j));
	}
	if (!r->status.enabled || r->finished)
		return;
	if (now - r->last_met_eval_ns >= NS_S) {
		r->last_met_eval_ns = now;
		if (r->stop == STOP_NONE)
			update_met(r, now);
	}
	v.phase = phase_names[r->phase];
	v.elapsed_s = r->start_ns ? (double)(now - r->start_ns) / 1e9 : 0;
	v.total_s = (double)r->x->end_ns / 1e9;
	if (r->lg && r->lg_started) {
		const struct fl_load_stats *iv = fl_loadgen_last_interval(r->lg);

		if (iv && iv->end_ns > iv->start_ns) {
			double dt = (double)(iv->end_ns - iv->start_ns) / 1e9;
			double fin = (double)iv->successes + (double)iv->failures;
			uint64_t p99 = 0;

			v.have_load = true;
			v.rps = (double)iv->requests / dt;
			v.error_rate = fin > 0 ? (double)iv->failures / fin : 0;
			if (iv->latency && rs_hist_count(iv->latency) &&
			    rs_hist_quantile(iv->latency, 0.99, &p99) == 0)
				v.p99_s = (double)p99 / 1e9;
		}
	}
	run_active_names(r, faults, sizeof(faults));
	v.faults = faults;
	v.have_met = r->met_known;
	v.met = r->met_so_far;
	v.nexpects = r->x->nexpects;
	fl_status_draw(&r->status, &v, now);
}

/* ---- load ------------------------------------------------------------------------------ */

static void on_load_done(void *ctx)
{
	struct run *r = ctx;

	r->lg_done = true;
	run_continue(r);
}

const char *run_join(struct run *r, const char *base, const char *path)
{
	size_t bl = strlen(base), pl = path ? strlen(path) : 0;
	char *s;

	while (bl && base[bl - 1] == '/')
		bl--;
	s = fl_arena_alloc(&r->arena, bl + pl + 2);
	if (!s)
		return NULL;
	memcpy(s, base, bl);
	if (!path || path[0] != '/')
		s[bl++] = '/';
	if (path)
		memcpy(s + bl, path, pl + 1);
	return s;
}

const char *run_expand(struct run *r, const char *s, struct rs_err *err)
{
	char buf[FL_MAX_EXPANDED];
	int n;

	if (!s)
		return NULL;
	n = fl_expand_late(s, &r->ports, buf, sizeof(buf), err);
	if (n < 0)
		return NULL;
	return fl_arena_strndup(&r->arena, buf, (size_t)n);
}

static uint64_t lockstep_tick(const struct fl_experiment *x)
{
	for (size_t i = 0; i < x->nactions; i++)
		if (strcmp(x->actions[i].family->name, "jitter") == 0) {
			const struct fl_pval *t = fl_params_get(&x->actions[i].params, "tick");

			if (t && t->set)
				return t->u;
		}
	return 0;
}

void run_start_load(struct run *r)
{
	const struct fl_experiment *x = r->x;
	const struct fl_load_spec *ls = &x->load;
	struct fl_loadgen_opts o = { 0 };
	struct rs_err err = { "" };
	const char *base;
	int rc;

	base = ls->url ? run_expand(r, ls->url, &err) : r->svc_url;
	if (!base) {
		run_stop(r, STOP_FAILURE, FL_EXIT_FAIL, "load.url: %s",
			 err.msg[0] ? err.msg : "the service has no url");
		return;
	}
	o.url = run_join(r, base, ls->path);
	o.method = ls->method;
	o.headers = ls->headers;
	o.nheaders = ls->nheaders;
	o.body = ls->body;
	o.connections = ls->connections;
	o.rate = ls->rate;
	o.duration_ns = ls->duration_ns;
	o.timeout_ns = ls->timeout_ns;
	o.deadline_ns = ls->deadline_ns;
	o.drain_ns = ls->drain_ns;
	o.retry_attempts = ls->retry_attempts;
	o.retry_backoff = ls->retry_backoff;
	o.retry_base_ns = ls->retry_base_ns;
	o.retry_cap_ns = ls->retry_cap_ns;
	o.budget = ls->budget;
	o.budget_ratio = ls->budget_ratio;
	o.budget_window_ns = ls->budget_window_ns;
	o.lockstep_tick_ns = lockstep_tick(x);
	o.interval_ns = x->settings.cadence_ns;
	o.seed = r->load_seed;
	o.on_done = on_load_done;
	o.ctx = r;
	if (!o.url) {
		run_stop(r, STOP_FAILURE, FL_EXIT_FAIL, "load: out of memory");
		return;
	}
	rc = fl_loadgen_new(&r->lg, &r->loop, &o, &err);
	if (rc < 0) {
		run_stop(r, STOP_FAILURE, rc == -EINVAL ? FL_EXIT_USAGE : FL_EXIT_FAIL,
			 "cannot start the load: %s", err.msg);
		return;
	}
	fl_loadgen_start(r->lg);
	r->lg_started = true;
	r->start_ns = fl_loadgen_start_ns(r->lg);
	r->rl.start_ns = r->start_ns;
	run_set_phase(r, PH_WARMUP, r->start_ns);
	if (run_chatty(r))
		run_note(r, "load started (%s, %s); the run takes %.1fs", o.url,
			 ls->rate > 0 ? "open loop" : "closed loop", (double)x->end_ns / 1e9);
	{
		uint64_t ms = x->settings.cadence_ns / NS_MS ? x->settings.cadence_ns / NS_MS : 1;

		uv_timer_start(&r->tick, on_tick, ms, ms);
	}
	arm_plan(r);
}

/* ---- the target is up: faults, probes, prepare ---- */

void run_services_ready(struct run *r)
{
	struct rs_err err = { "" };
	int rc;

	run_set_phase(r, PH_PREPARING, 0);
	if ((rc = run_faults_create(r, false, &err)) < 0) {
		run_stop(r, STOP_FAILURE, rc == -EINVAL ? FL_EXIT_USAGE : FL_EXIT_FAIL, "%s",
			 err.msg);
		return;
	}
	if ((rc = open_probes(r, &err)) < 0) {
		run_stop(r, STOP_FAILURE, rc == -EINVAL ? FL_EXIT_USAGE : FL_EXIT_FAIL, "%s",
			 err.msg);
		return;
	}
	run_prepare_start(r);
}

/* ---- signals ---- */

static void on_signal(uv_signal_t *h, int signum)
{
	struct run *r = h->data;

	if (r->finished)
		return;
	if (r->stop == STOP_NONE) {
		r->signo = signum;
		run_stop(r, STOP_SIGNAL, FL_EXIT_ABORTED, "interrupted by %s",
			 signum == SIGINT    ? "SIGINT"
			 : signum == SIGTERM ? "SIGTERM"
					     : "SIGHUP");
		return;
	}
	r->sigints++;
	run_note(r, "reverting, please wait");
}

int fl_run(const struct fl_run_opts *o)
{
	struct run *r = calloc(1, sizeof(*r));
	int code, signums[3] = { SIGINT, SIGTERM, SIGHUP };

	if (!r) {
		fprintf(o->err ? o->err : stderr, "faultline run: out of memory\n");
		return FL_EXIT_FAIL;
	}
	for (int i = 0; i < 3; i++)
		sigaction(signums[i], NULL, &r->old_sig[i]);
	r->o = o;
	r->out = o->out ? o->out : stdout;
	r->err = o->err ? o->err : stderr;
	r->human = o->tap ? r->err : r->out;
	fl_arena_init(&r->arena, NULL);
	fl_status_init(&r->status, r->err,
		       o->status == FL_STATUS_NONE    ? 1
		       : o->status == FL_STATUS_PLAIN ? 2
						      : 0);
	fl_tproc_init(&r->svc);
	fl_tproc_init(&r->dep);
	code = run_preflight(r);
	if (code >= 0)
		goto out;
	if (fl_runlog_init(&r->rl, r->x->nprobes, r->x->nactions, NULL) < 0) {
		code = FL_EXIT_FAIL;
		goto out;
	}
	for (size_t i = 0; i < r->x->nprobes; i++) {
		const struct fl_probe *p = &r->x->probes[i];

		if (strcmp(p->family->name, "client") == 0 &&
		    fl_client_metric_cumulative(fl_params_str(&p->params, "metric", "")))
			r->rl.series[i].counter = true;
		/* Best effort: sampling appends (and grows) anyway. */
		if (fl_series_reserve(&r->rl.series[i],
				      r->x->end_ns / r->x->settings.cadence_ns + 64) < 0)
			continue;
	}
	r->aborts = calloc(r->x->naborts ? r->x->naborts : 1, sizeof(*r->aborts));
	if (!r->aborts) {
		code = FL_EXIT_FAIL;
		goto out;
	}
	for (size_t k = 0; k < r->x->naborts; k++) {
		struct rs_err err;

		if (fl_eval_abort_init(&r->aborts[k], r->x, k, NULL, &err) < 0) {
			fprintf(r->err, "faultline run: %s\n", err.msg);
			code = FL_EXIT_FAIL;
			goto out;
		}
		r->naborts_init++;
	}
	if (uv_loop_init(&r->loop) < 0) {
		fprintf(r->err, "faultline run: cannot create the event loop\n");
		code = FL_EXIT_FAIL;
		goto out;
	}
	code = run_setup(r);
	if (code >= 0)
		goto loop_out;
	if (run_lockstep_init(r) < 0) {
		run_jcheck(r, fl_journal_end(r->j, 0, FL_EXIT_FAIL, "setup"));
		code = FL_EXIT_FAIL;
		goto loop_out;
	}
	uv_timer_init(&r->loop, &r->tick);
	uv_timer_init(&r->loop, &r->plan);
	uv_timer_init(&r->loop, &r->status_timer);
	uv_timer_init(&r->loop, &r->ready_timer);
	r->tick.data = r->plan.data = r->status_timer.data = r->ready_timer.data = r;
	for (int i = 0; i < 3; i++) {
		uv_signal_init(&r->loop, &r->sig[i]);
		r->sig[i].data = r;
		uv_signal_start(&r->sig[i], on_signal, signums[i]);
	}
	r->handles_open = true;
	uv_timer_start(&r->status_timer, on_status, 250, 250);
	run_start_target(r);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	code = r->code;
	if (!r->finished) {
		fprintf(r->err, "faultline run: internal error: the event loop ended before the "
				"run did\n");
		code = FL_EXIT_FAIL;
	}
loop_out:
	if (r->j) {
		struct rs_err err = { "" };

		if (fl_journal_close(r->j, &err) < 0)
			fprintf(r->err, "faultline run: %s\n", err.msg);
		r->j = NULL;
	}
	uv_run(&r->loop, UV_RUN_NOWAIT);
	if (uv_loop_close(&r->loop) != 0)
		fprintf(r->err, "faultline run: internal error: handles left open\n");
out:
	for (int i = 0; i < 3 && !o->exiting; i++)
		sigaction(signums[i], &r->old_sig[i], NULL);
	run_faults_free(r);
	for (size_t k = 0; k < r->naborts_init; k++)
		fl_eval_abort_release(&r->aborts[k]);
	free(r->aborts);
	free(r->probes);
	free(r->baseline);
	fl_runlog_release(&r->rl);
	fl_loadgen_free(r->lg);
	fl_arena_release(&r->arena);
	fl_experiment_free(r->x);
	free(r->exp_dir);
	free(r);
	return code;
}
