/* The runner's target: start the dependency and then the service, read
 * the ports they announce, wait for their readiness checks, and notice when
 * one exits unexpectedly (runner_int.h, target_proc.h). */
#include "harness/runner_int.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "resilience/clock.h"
#include "resilience/control.h"

#define NS_MS RS_NS_PER_MS
#define NS_S  RS_NS_PER_SEC

/* ---- the target ---------------------------------------------------------------------- */

static void start_proc(struct run *r, bool dep);
static void begin_ready(struct run *r, bool dep);

static int set_urls(struct run *r, bool dep, struct rs_err *err)
{
	const struct fl_target_proc *mp = dep ? &r->x->dependency : &r->x->service;
	const char *url = NULL, *admin = NULL, *metrics = NULL;

	if (mp->url && !(url = run_expand(r, mp->url, err)))
		return -EINVAL;
	if (mp->admin && !(admin = run_expand(r, mp->admin, err)))
		return -EINVAL;
	if (url && !(metrics = run_join(r, url, mp->metrics)))
		return -ENOMEM;
	if (dep) {
		r->dep_url = url;
		r->dep_admin = admin;
		r->dep_metrics = metrics;
	} else {
		r->svc_url = url;
		r->svc_admin = admin;
		r->svc_metrics = metrics;
	}
	return 0;
}

static void after_proc(struct run *r, bool dep)
{
	struct rs_err err = { "" };

	if (set_urls(r, dep, &err) < 0) {
		run_stop(r, STOP_FAILURE, FL_EXIT_FAIL, "the %s's URLs: %s",
			 dep ? "dependency" : "service", err.msg);
		return;
	}
	begin_ready(r, dep);
}

static void on_listening(void *ctx, struct fl_tproc *p, int http, int admin, const char *why)
{
	struct run *r = ctx;
	bool dep = p == &r->dep;

	if (r->stop != STOP_NONE)
		return;
	if (why) {
		run_stop(r, STOP_FAILURE, FL_EXIT_FAIL, "the %s (pid %d) %s",
			 dep ? "dependency" : "service", (int)p->pid, why);
		return;
	}
	if (dep) {
		r->ports.dependency_port = http;
		r->ports.dependency_admin_port = admin;
	} else {
		r->ports.port = http;
		r->ports.admin_port = admin;
	}
	if (run_chatty(r))
		run_note(r, "%s pid %d: %s", dep ? "dependency" : "service", (int)p->pid, p->line);
	after_proc(r, dep);
}

static void on_proc_exit(void *ctx, struct fl_tproc *p, int64_t status, int sig, bool expected)
{
	struct run *r = ctx;
	const char *role = p == &r->dep ? "dependency" : "service";
	char how[64];

	if (expected)
		return;
	if (sig)
		snprintf(how, sizeof(how), "killed by signal %d (%s)", sig, strsignal(sig));
	else
		snprintf(how, sizeof(how), "exit status %lld", (long long)status);
	if (r->j) {
		char ph[128];

		snprintf(ph, sizeof(ph), "%s-exited: %s", role, how);
		run_jcheck(r, fl_journal_phase(r->j, 0, ph));
	}
	if (p->o.announce && !p->announced)
		return; /* on_listening reports it */
	if (r->stop == STOP_NONE)
		run_stop(r, STOP_FAILURE, FL_EXIT_FAIL, "the %s (pid %d) exited unexpectedly: %s",
			 role, (int)p->pid, how);
	else
		run_note(r, "the %s (pid %d) exited: %s", role, (int)p->pid, how);
}

/* ---- readiness ---- */

static void ready_try(struct run *r);

static void ready_done(struct run *r, bool dep)
{
	if (run_chatty(r))
		run_note(r, "%s ready (%s)", dep ? "dependency" : "service", r->ready.url);
	if (dep)
		start_proc(r, false);
	else
		run_services_ready(r);
}

static void on_ready_timer(uv_timer_t *t)
{
	ready_try(t->data);
}

static void on_ready_answer(void *ctx, const struct fl_http1_result *res)
{
	struct run *r = ctx;
	const struct fl_target_proc *mp = r->ready.mp;
	bool dep = mp == &r->x->dependency;
	uint64_t now = uv_hrtime();

	r->ready.req = NULL;
	if (r->stop != STOP_NONE) {
		run_continue(r);
		return;
	}
	if (res->status == mp->ready_status) {
		ready_done(r, dep);
		return;
	}
	if (res->status > 0)
		snprintf(r->ready.last, sizeof(r->ready.last), "status %d", res->status);
	else
		snprintf(r->ready.last, sizeof(r->ready.last), "%s", res->why);
	if (now >= r->ready.deadline_ns) {
		run_stop(r, STOP_FAILURE, FL_EXIT_FAIL,
			 "the %s did not become ready: GET %s did not answer %d within %.3gs "
			 "(last: %s)",
			 dep ? "dependency" : "service", r->ready.url, mp->ready_status,
			 (double)mp->ready_timeout_ns / 1e9, r->ready.last);
		return;
	}
	uv_timer_start(&r->ready_timer, on_ready_timer,
		       mp->ready_interval_ns / NS_MS ? mp->ready_interval_ns / NS_MS : 1, 0);
}

static void ready_try(struct run *r)
{
	struct fl_http1_opts o = { 0 };
	struct rs_err err = { "" };
	uint64_t left, now = uv_hrtime();
	int rc;

	if (r->stop != STOP_NONE)
		return;
	left = r->ready.deadline_ns > now ? r->ready.deadline_ns - now : NS_MS;
	o.method = "GET";
	o.url = r->ready.url;
	o.timeout_ns = left < NS_S ? left : NS_S;
	o.body_max = 65536;
	rc = fl_http1_request(&r->ready.req, &r->loop, &o, on_ready_answer, r, &err);
	if (rc < 0)
		run_stop(r, STOP_FAILURE, FL_EXIT_FAIL, "readiness check of %s: %s", r->ready.url,
			 err.msg);
}

static void begin_ready(struct run *r, bool dep)
{
	const struct fl_target_proc *mp = dep ? &r->x->dependency : &r->x->service;
	const char *base = dep ? r->dep_url : r->svc_url;

	if (!base) {
		/* Nothing to check (no url): go on. */
		if (dep)
			start_proc(r, false);
		else
			run_services_ready(r);
		return;
	}
	r->ready.mp = mp;
	snprintf(r->ready.url, sizeof(r->ready.url), "%s", run_join(r, base, mp->ready_path));
	r->ready.deadline_ns = uv_hrtime() + mp->ready_timeout_ns;
	r->ready.last[0] = '\0';
	ready_try(r);
}

/* ---- spawning ---- */

static const char *proc_cwd(struct run *r, const struct fl_target_proc *mp)
{
	if (!mp->cwd)
		return r->exp_dir;
	if (mp->cwd[0] == '/' || !r->exp_dir)
		return mp->cwd;
	return run_join(r, r->exp_dir, mp->cwd);
}

static void start_proc(struct run *r, bool dep)
{
	const struct fl_target_proc *mp = dep ? &r->x->dependency : &r->x->service;
	struct fl_tproc *tp = dep ? &r->dep : &r->svc;
	struct fl_tproc_opts o = { 0 };
	struct rs_err err = { "" };
	const char **argv = NULL, **env = NULL;
	const char *control = dep ? r->dep_control : r->svc_control;
	size_t ne = 0;
	int rc;

	if (r->stop != STOP_NONE)
		return;
	if (!mp->present) {
		if (dep)
			start_proc(r, false);
		else
			run_services_ready(r);
		return;
	}
	if (!mp->argv) {
		after_proc(r, dep);
		return;
	}
	argv = fl_arena_alloc(&r->arena, (mp->argc + 1) * sizeof(*argv));
	env = fl_arena_alloc(&r->arena, (mp->nenv + 2) * sizeof(*env));
	if (!argv || !env)
		goto nomem;
	for (size_t i = 0; i < mp->argc; i++)
		if (!(argv[i] = run_expand(r, mp->argv[i], &err)))
			goto bad;
	if (control[0]) {
		char *kv = fl_arena_alloc(&r->arena, strlen(control) + sizeof(RS_CONTROL_ENV) + 1);

		if (!kv)
			goto nomem;
		sprintf(kv, "%s=%s", RS_CONTROL_ENV, control);
		env[ne++] = kv;
	}
	for (size_t i = 0; i < mp->nenv; i++)
		if (!(env[ne++] = run_expand(r, mp->env[i], &err)))
			goto bad;
	o.role = dep ? "dependency" : "service";
	o.argv = argv;
	o.env_add = env;
	o.cwd = proc_cwd(r, mp);
	o.shim = r->o->shim;
	o.announce = mp->announce;
	o.announce_timeout_ns = mp->ready_timeout_ns;
	o.on_listening = on_listening;
	o.on_exit = on_proc_exit;
	o.ctx = r;
	rc = fl_tproc_start(tp, &r->loop, &o, &err);
	if (rc < 0) {
		run_stop(r, STOP_FAILURE, FL_EXIT_FAIL, "%s", err.msg);
		return;
	}
	if (dep)
		r->dep_started = true;
	else
		r->svc_started = true;
	if (!mp->announce)
		after_proc(r, dep);
	return;
nomem:
	run_stop(r, STOP_FAILURE, FL_EXIT_FAIL, "cannot start the %s: out of memory",
		 dep ? "dependency" : "service");
	return;
bad:
	run_stop(r, STOP_FAILURE, FL_EXIT_FAIL, "cannot start the %s: %s",
		 dep ? "dependency" : "service", err.msg[0] ? err.msg : "out of memory");
}

void run_start_target(struct run *r)
{
	start_proc(r, true);
}
