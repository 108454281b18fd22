/* The runner's fault operations: creating the fault instances, preparing
 * them, applying/verifying/reverting them on libuv worker threads in plan
 * order, the service's trigger endpoint, and the load generator's lockstep
 * hooks (runner_int.h). */
#include "harness/runner_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness/runmap.h"
#include "resilience/clock.h"

/* ---- the load generator's lockstep, from worker threads ------------------- */

static void on_ls_async(uv_async_t *h)
{
	struct run *r = h->data;
	bool want;
	uint64_t gen;

	pthread_mutex_lock(&r->ls_mu);
	want = r->ls_want;
	gen = r->ls_gen;
	pthread_mutex_unlock(&r->ls_mu);
	if (r->lg && r->lg_started && !r->lg_done)
		fl_loadgen_set_lockstep(r->lg, want);
	pthread_mutex_lock(&r->ls_mu);
	r->ls_state = want;
	if (r->ls_done_gen < gen)
		r->ls_done_gen = gen;
	pthread_cond_broadcast(&r->ls_cv);
	pthread_mutex_unlock(&r->ls_mu);
}

/* Called on a worker thread: hands the change to the loop and waits (at
 * most 2 s) until the loop made it, so that verify reads it back. */
static void hook_set_lockstep(void *ctx, bool on, uint64_t tick_ns)
{
	struct run *r = ctx;
	struct timespec dl;
	uint64_t gen;

	(void)tick_ns; /* the tick is fixed when the load generator is made */
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += 2;
	pthread_mutex_lock(&r->ls_mu);
	r->ls_want = on;
	gen = ++r->ls_gen;
	uv_async_send(&r->ls_async);
	while (r->ls_done_gen < gen)
		if (pthread_cond_timedwait(&r->ls_cv, &r->ls_mu, &dl) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&r->ls_mu);
}

static bool hook_is_lockstep(void *ctx)
{
	struct run *r = ctx;
	bool v;

	pthread_mutex_lock(&r->ls_mu);
	v = r->ls_state;
	pthread_mutex_unlock(&r->ls_mu);
	return v;
}

int run_lockstep_init(struct run *r)
{
	pthread_condattr_t ca;

	if (pthread_mutex_init(&r->ls_mu, NULL) != 0)
		return -ENOMEM;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&r->ls_cv, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		pthread_mutex_destroy(&r->ls_mu);
		return -ENOMEM;
	}
	pthread_condattr_destroy(&ca);
	if (uv_async_init(&r->loop, &r->ls_async, on_ls_async) < 0) {
		pthread_cond_destroy(&r->ls_cv);
		pthread_mutex_destroy(&r->ls_mu);
		return -ENOMEM;
	}
	r->ls_async.data = r;
	r->ls_open = true;
	return 0;
}

static void ls_closed(uv_handle_t *h)
{
	struct run *r = h->data;

	pthread_cond_destroy(&r->ls_cv);
	pthread_mutex_destroy(&r->ls_mu);
}

void run_lockstep_close(struct run *r)
{
	if (!r->ls_open)
		return;
	r->ls_open = false;
	uv_close((uv_handle_t *)&r->ls_async, ls_closed);
}

/* ---- fault instances ---------------------------------------------------------- */

int run_faults_create(struct run *r, bool provisional, struct rs_err *err)
{
	const struct fl_experiment *x = r->x;
	struct fl_client_hooks hooks = { r, hook_set_lockstep, hook_is_lockstep };
	struct fl_target_info t = { 0 };

	r->acts = calloc(x->nactions ? x->nactions : 1, sizeof(*r->acts));
	if (!r->acts)
		return rs__enomem(err, "faults");
	if (provisional) {
		/* What the run will have once the target is up. */
		t.service_admin = x->service.admin ? "http://127.0.0.1:1" : NULL;
		t.service_metrics = x->service.url ? "http://127.0.0.1:1/metrics" : NULL;
		t.dependency_admin = x->dependency.admin ? "http://127.0.0.1:1" : NULL;
		t.dependency_metrics = x->dependency.url ? "http://127.0.0.1:1/metrics" : NULL;
		t.control_path = x->service.argv || x->service.control ? "/nonexistent" : NULL;
		t.dependency_control_path =
		    x->dependency.argv || x->dependency.control ? "/nonexistent" : NULL;
	} else {
		t.service_admin = r->svc_admin;
		t.service_metrics = r->svc_metrics;
		t.dependency_admin = r->dep_admin;
		t.dependency_metrics = r->dep_metrics;
		t.control_path = r->svc_control[0] ? r->svc_control : NULL;
		t.dependency_control_path = r->dep_control[0] ? r->dep_control : NULL;
		t.service_pid = r->svc.pid;
		t.dependency_pid = r->dep.pid;
	}
	for (size_t i = 0; i < x->nactions; i++) {
		struct run_act *ra = &r->acts[i];
		struct fl_fault_cfg cfg;
		struct rs_err e = { "" };
		int rc;

		ra->run = r;
		ra->a = &x->actions[i];
		ra->instant = !(ra->a->family->flags & FL_FAM_REVERTS);
		rc = fl_map_fault(ra->a, &x->load, &cfg, &e);
		if (rc == 0)
			rc = fl_fault_new(&ra->f, &cfg, &t, &hooks, &e);
		if (rc < 0) {
			rs__err_set(err, "method action '%s': %s", ra->a->name, e.msg);
			return rc;
		}
		r->nacts_made = i + 1;
	}
	return 0;
}

void run_faults_free(struct run *r)
{
	for (size_t i = 0; r->acts && i < r->nacts_made; i++)
		fl_fault_free(r->acts[i].f);
	free(r->acts);
	r->acts = NULL;
	r->nacts_made = 0;
}

/* ---- prepare ------------------------------------------------------------------- */

static void prep_work(uv_work_t *w)
{
	struct run *r = w->data;

	r->prep_rc = 0;
	for (size_t i = 0; i < r->nacts_made; i++) {
		struct rs_err e = { "" };
		int rc = fl_fault_prepare(r->acts[i].f, &e);

		if (rc < 0) {
			r->prep_rc = rc;
			snprintf(r->prep_msg, sizeof(r->prep_msg),
				 "method action '%s' cannot run: %s", r->acts[i].a->name, e.msg);
			return;
		}
	}
}

static void prep_after(uv_work_t *w, int status)
{
	struct run *r = w->data;

	r->prep_busy = false;
	if (r->stop != STOP_NONE) {
		run_continue(r);
		return;
	}
	if (status < 0) {
		run_stop(r, STOP_FAILURE, FL_EXIT_FAIL, "cannot prepare the faults: %s",
			 uv_strerror(status));
		return;
	}
	if (r->prep_rc < 0) {
		run_stop(r, STOP_CAPABILITY, FL_EXIT_CAPABILITY, "%s", r->prep_msg);
		return;
	}
	run_start_load(r);
}

void run_prepare_start(struct run *r)
{
	int rc;

	r->prep_work.data = r;
	r->prep_busy = true;
	rc = uv_queue_work(&r->loop, &r->prep_work, prep_work, prep_after);
	if (rc < 0) {
		r->prep_busy = false;
		run_stop(r, STOP_FAILURE, FL_EXIT_FAIL, "cannot prepare the faults: %s",
			 uv_strerror(rc));
	}
}

/* ---- the trigger endpoint of the service (the trigger-aware detector) ---------- */

static void trigger(struct run_act *ra, bool on)
{
	struct run *r = ra->run;
	char url[1100], body[256];
	struct rs_err e = { "" };
	int status = 0, rc;

	if (!r->svc_admin || !r->x->service.argv)
		return;
	snprintf(url, sizeof(url), "%s/admin/trigger?active=%d", r->svc_admin, on ? 1 : 0);
	rc = fl_http1_request_sync("POST", url, NULL, RS_NS_PER_SEC, &status, body, sizeof(body),
				   &e);
	if ((rc < 0 || status != 200) && !ra->msg[0])
		snprintf(ra->msg, sizeof(ra->msg), "trigger: POST %.120s: %.100s", url,
			 rc < 0 ? e.msg : "not 200");
}

/* ---- one action's operations ------------------------------------------------------ */

/* A journal record a worker could not write: the run warns about it (the
 * journal keeps the message); for reverted records it only means that a
 * later `faultline recover` reverts once more, which is idempotent. */
static void jrec(struct run *r, int rc)
{
	if (rc < 0)
		__atomic_store_n(&r->journal_worker_failed, true, __ATOMIC_RELAXED);
}

static void jfault(struct run *r, struct run_act *ra, enum fl_fault_step st, uint64_t t0,
		   uint64_t t1, const char *error)
{
	jrec(r, fl_journal_fault(r->j, ra->a->name, ra->a->family->name, st, t0, t1, error));
}

/* Runs `step` (0 apply, 1 verify, 2 revert) and journals it. */
static int step(struct run_act *ra, int which, uint64_t *end_ns)
{
	static const enum fl_fault_step steps[] = { FL_STEP_APPLY, FL_STEP_VERIFY, FL_STEP_REVERT };
	static const char *const names[] = { "apply", "verify", "revert" };
	struct rs_err e = { "" };
	uint64_t t0 = rs_now_ns(), t1;
	int rc = which == 0   ? fl_fault_apply(ra->f, &e)
		 : which == 1 ? fl_fault_verify(ra->f, &e)
			      : fl_fault_revert(ra->f, &e);

	t1 = rs_now_ns();
	*end_ns = t1;
	jfault(ra->run, ra, steps[which], t0, t1, rc < 0 ? e.msg : NULL);
	if (rc < 0) {
		ra->rc = rc;
		ra->failed_step = names[which];
		snprintf(ra->msg, sizeof(ra->msg), "%s", e.msg);
	}
	return rc;
}

static int write_undo(struct run_act *ra)
{
	struct run *r = ra->run;
	char buf[FL_UNDO_MAX];
	struct rs_err e = { "" };
	int n = fl_fault_undo_record(ra->f, buf, sizeof(buf), &e);

	if (n < 0) {
		ra->rc = n;
		ra->failed_step = "undo";
		snprintf(ra->msg, sizeof(ra->msg), "%s", e.msg);
		return n;
	}
	n = fl_journal_undo(r->j, 0, ra->a->name, buf);
	if (n < 0) {
		ra->rc = n;
		ra->failed_step = "undo";
		snprintf(ra->msg, sizeof(ra->msg),
			 "cannot journal the undo record (so the fault is not applied): %s",
			 fl_journal_error(r->j));
		return n;
	}
	ra->undo_open = true;
	return 0;
}

static void act_work(uv_work_t *w)
{
	struct run_act *ra = w->data;
	struct run *r = ra->run;
	uint64_t t;

	ra->rc = 0;
	ra->msg[0] = '\0';
	ra->failed_step = NULL;
	ra->applied_ns = ra->verified_ns = ra->reverted_ns = 0;
	if (ra->op == OP_END) {
		if (!ra->instant) {
			if (step(ra, 2, &t) < 0)
				return;
			jrec(r, fl_journal_reverted(r->j, t, ra->a->name, "run", NULL));
			ra->undo_open = false;
			ra->reverted_ns = t;
		} else {
			ra->reverted_ns = rs_now_ns();
		}
		if (ra->trig_off)
			trigger(ra, false);
		return;
	}
	/* START or REPEAT.  A fault still applied keeps its first undo record. */
	if ((ra->instant || !fl_fault_applied(ra->f)) && write_undo(ra) < 0)
		return;
	if (step(ra, 0, &t) < 0)
		return;
	ra->applied_ns = t;
	if (step(ra, 1, &t) < 0)
		return;
	ra->verified_ns = t;
	if (ra->trig_on)
		trigger(ra, true);
	if (ra->instant) {
		/* Nothing stays applied: close the undo record at once. */
		if (step(ra, 2, &t) < 0)
			return;
		jrec(r, fl_journal_reverted(r->j, t, ra->a->name, "run", "nothing to revert"));
		ra->undo_open = false;
	}
}

static void queue_op(struct run_act *ra, enum run_op op);

static void act_after(uv_work_t *w, int status)
{
	struct run_act *ra = w->data;
	struct run *r = ra->run;
	struct fl_action_times *at = &r->rl.actions[ra - r->acts];
	uint64_t now = uv_hrtime();

	ra->busy = false;
	r->ops_in_flight--;
	if (status < 0 && !ra->rc) {
		ra->rc = status;
		ra->failed_step = "queue";
		snprintf(ra->msg, sizeof(ra->msg), "%s", uv_strerror(status));
	}
	if (ra->applied_ns && at->applied_ns == FL_T_NONE)
		at->applied_ns = ra->applied_ns;
	if (ra->verified_ns && at->verified_ns == FL_T_NONE)
		at->verified_ns = ra->verified_ns;
	if (ra->op == OP_END) {
		ra->ended = true;
		if (ra->rc == 0)
			at->reverted_ns = ra->reverted_ns ? ra->reverted_ns : now;
	}
	if (ra->rc < 0) {
		if (r->stop == STOP_NONE)
			run_stop(r, STOP_FAILURE, FL_EXIT_FAIL, "action '%s' (%s): %s failed: %s",
				 ra->a->name, ra->a->family->name, ra->failed_step, ra->msg);
		run_continue(r);
		return;
	}
	if (ra->msg[0] && !r->trigger_warned) {
		r->trigger_warned = true;
		run_note(r, "warning: %s", ra->msg);
	}
	if (r->o->status != FL_STATUS_NONE) {
		if (ra->op == OP_END && !ra->instant)
			run_note(r, "%s reverted at +%.2fs", ra->a->name,
				 run_offset_s(r, ra->reverted_ns));
		else if (ra->op == OP_START)
			run_note(r, "%s applied at +%.2fs, verified %.1fms later", ra->a->name,
				 run_offset_s(r, ra->applied_ns),
				 (double)(ra->verified_ns - ra->applied_ns) / 1e6);
	}
	if (r->stop != STOP_NONE) {
		run_continue(r);
		return;
	}
	if (ra->want_end) {
		ra->want_end = false;
		ra->want_repeat = false;
		queue_op(ra, OP_END);
	} else if (ra->want_repeat) {
		ra->want_repeat = false;
		queue_op(ra, OP_REPEAT);
	}
}

static void queue_op(struct run_act *ra, enum run_op op)
{
	struct run *r = ra->run;
	int rc;

	ra->op = op;
	ra->busy = true;
	ra->work.data = ra;
	r->ops_in_flight++;
	rc = uv_queue_work(&r->loop, &ra->work, act_work, act_after);
	if (rc < 0) {
		ra->busy = false;
		r->ops_in_flight--;
		run_stop(r, STOP_FAILURE, FL_EXIT_FAIL,
			 "action '%s': cannot queue its operation: %s", ra->a->name,
			 uv_strerror(rc));
	}
}

void run_action_event(struct run *r, const struct fl_plan_event *e)
{
	struct run_act *ra = &r->acts[e->action];
	bool lasting = ra->a->end_ns > ra->a->start_ns;

	switch (e->kind) {
	case FL_PLAN_ACTION_START:
		ra->seq = ++r->next_seq;
		ra->trig_on = false;
		ra->trig_off = false;
		if (lasting) {
			ra->in_effect = true;
			ra->trig_on = r->active++ == 0;
		}
		queue_op(ra, OP_START);
		break;
	case FL_PLAN_ACTION_REPEAT:
		if (ra->busy) {
			ra->want_repeat = true;
		} else {
			ra->trig_on = ra->trig_off = false;
			queue_op(ra, OP_REPEAT);
		}
		break;
	case FL_PLAN_ACTION_END:
		ra->trig_on = false;
		ra->trig_off = false;
		if (ra->in_effect) {
			ra->in_effect = false;
			ra->trig_off = --r->active == 0;
		}
		if (ra->busy) {
			/* trig_off is read by the END op; a START in flight has read
			 * its trig_on already. */
			ra->want_end = true;
		} else {
			queue_op(ra, OP_END);
		}
		break;
	default:
		break;
	}
}

size_t run_active_names(const struct run *r, char *buf, size_t size)
{
	size_t n = 0;

	if (size)
		buf[0] = '\0';
	for (size_t i = 0; r->acts && i < r->nacts_made; i++) {
		const struct run_act *ra = &r->acts[i];
		int k;

		if (!ra->in_effect && !(ra->f && fl_fault_applied(ra->f) && !ra->instant))
			continue;
		k = snprintf(buf + n, n < size ? size - n : 0, "%s%s", n ? "," : "", ra->a->name);
		if (k > 0)
			n += (size_t)k;
	}
	return n < size ? n : (size ? size - 1 : 0);
}

/* ---- revert everything, in reverse order of application --------------------------- */

static int by_seq_desc(const void *a, const void *b)
{
	const struct run_act *x = *(const struct run_act *const *)a;
	const struct run_act *y = *(const struct run_act *const *)b;

	return (x->seq < y->seq) - (x->seq > y->seq);
}

static void revert_work(uv_work_t *w)
{
	struct run *r = w->data;
	struct run_act **order = calloc(r->nacts_made ? r->nacts_made : 1, sizeof(*order));
	size_t n = 0;

	if (!order) {
		r->revert_failed = r->nacts_made;
		snprintf(r->revert_msg, sizeof(r->revert_msg), "out of memory");
		return;
	}
	for (size_t i = 0; i < r->nacts_made; i++)
		order[n++] = &r->acts[i];
	qsort(order, n, sizeof(*order), by_seq_desc);
	for (size_t i = 0; i < n; i++) {
		struct run_act *ra = order[i];
		struct rs_err e = { "" };
		uint64_t t0, t1;
		int rc;

		if (!ra->f || (!ra->undo_open && !fl_fault_applied(ra->f)))
			continue;
		t0 = rs_now_ns();
		rc = fl_fault_revert(ra->f, &e);
		t1 = rs_now_ns();
		jfault(r, ra, FL_STEP_REVERT, t0, t1, rc < 0 ? e.msg : NULL);
		if (rc < 0) {
			if (!r->revert_failed++)
				snprintf(r->revert_msg, sizeof(r->revert_msg), "'%s': %s",
					 ra->a->name, e.msg);
			continue;
		}
		jrec(r, fl_journal_reverted(r->j, t1, ra->a->name, "run",
					    ra->instant ? "nothing to revert"
							: "at the end of the run"));
		ra->undo_open = false;
		ra->reverted_ns = t1;
		ra->op = OP_END;
	}
	if (r->active) {
		/* Reuse an action's trigger call for the last active=0. */
		for (size_t i = 0; i < r->nacts_made; i++) {
			trigger(&r->acts[i], false);
			break;
		}
	}
	r->all_reverted_ns = rs_now_ns();
	free(order);
}

static void revert_done(struct run *r)
{
	r->revert_busy = false;
	r->active = 0;
	for (size_t i = 0; i < r->nacts_made; i++) {
		struct run_act *ra = &r->acts[i];
		struct fl_action_times *at = &r->rl.actions[i];

		ra->in_effect = false;
		if (ra->op == OP_END && ra->reverted_ns && at->reverted_ns == FL_T_NONE &&
		    at->applied_ns != FL_T_NONE)
			at->reverted_ns = ra->reverted_ns;
	}
	if (r->revert_failed)
		run_note(r,
			 "could not revert %zu fault%s (first: %s); run `faultline recover` once "
			 "the cause is fixed",
			 r->revert_failed, r->revert_failed == 1 ? "" : "s", r->revert_msg);
	else if (r->stop == STOP_ABORT || r->stop == STOP_SIGNAL)
		run_note(r, "every fault reverted");
}

static void revert_after(uv_work_t *w, int status)
{
	struct run *r = w->data;

	(void)status;
	revert_done(r);
	run_continue(r);
}

void run_revert_all_start(struct run *r)
{
	bool any = r->active > 0;
	int rc;

	for (size_t i = 0; i < r->nacts_made; i++)
		if (r->acts[i].f && (r->acts[i].undo_open || fl_fault_applied(r->acts[i].f)))
			any = true;
	if (!any || !r->j) {
		r->all_reverted_ns = uv_hrtime();
		return;
	}
	r->reverting = true;
	r->revert_busy = true;
	r->revert_work.data = r;
	rc = uv_queue_work(&r->loop, &r->revert_work, revert_work, revert_after);
	if (rc < 0) {
		/* No worker: revert here, on the loop thread (the caller,
		 * run_continue, goes on from here). */
		revert_work(&r->revert_work);
		revert_done(r);
	}
}
