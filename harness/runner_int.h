/* The runner's private state, shared by runner.c (life cycle, sampling,
 * stop), runner_faults.c (fault operations on worker threads) and
 * runner_out.c (verdicts and output).  Not for other modules.
 *
 * Threads: everything here belongs to the loop thread, except what a
 * struct run_act's work function touches while its op is in flight (the
 * fault, its result fields, the journal, which is thread-safe) and the
 * lockstep handshake (ls_* under ls_mu).
 */
#ifndef FAULTLINE_RUNNER_INT_H
#define FAULTLINE_RUNNER_INT_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "harness/eval.h"
#include "harness/experiment.h"
#include "harness/journal.h"
#include "harness/loadgen.h"
#include "harness/runner.h"
#include "harness/series.h"
#include "harness/statedir.h"
#include "harness/status.h"
#include "harness/target_proc.h"
#include "injectors/injector.h"
#include "probes/http1.h"
#include "probes/probe.h"
#include "reports/tap.h"

enum run_op { OP_NONE, OP_START, OP_REPEAT, OP_END };

/* One action of the method and its fault. */
struct run_act {
	struct run *run;
	const struct fl_action *a;
	struct fl_fault *f;
	bool instant; /* the family has nothing to revert: each apply is undo,
			    apply, verify, revert */
	bool busy;    /* an op is in flight on a worker */
	bool want_repeat, want_end;
	bool ended;	/* its END was handled */
	bool undo_open; /* an undo record without its reverted record */
	bool in_effect; /* counted in run->active (trigger, status) */
	uint64_t seq;	/* order of its first apply (reverse order revert) */
	/* The op in flight (written by the worker, read after it). */
	uv_work_t work;
	enum run_op op;
	bool trig_on, trig_off;
	int rc;
	char msg[RS_ERR_MSG_MAX];
	const char *failed_step;		       /* "apply", "verify", "revert", "undo" */
	uint64_t applied_ns, verified_ns, reverted_ns; /* this op's, 0 when not done */
};

struct run_probe {
	struct run *run;
	size_t index;
	struct fl_probe_inst *inst;
	bool busy, open;
	uint64_t missed[16]; /* ticks at which it was still busy, to record as failed */
	size_t nmissed;
};

enum run_phase {
	PH_PREFLIGHT,
	PH_STARTING,
	PH_PREPARING,
	PH_WARMUP,
	PH_BASELINE,
	PH_METHOD,
	PH_RECOVERY,
	PH_FINAL,
	PH_STOPPING,
	PH_DONE,
};

enum stop_kind {
	STOP_NONE,
	STOP_COMPLETED, /* the plan's end */
	STOP_BASELINE,	/* the baseline check failed */
	STOP_ABORT,	/* a stop condition */
	STOP_SIGNAL,
	STOP_FAILURE,	 /* target died, fault failed, readiness, ... */
	STOP_CAPABILITY, /* prepare failed */
};

struct run_readiness {
	struct fl_tproc *tp;
	const struct fl_target_proc *mp;
	const char *role;
	char url[1024];
	uint64_t deadline_ns;
	struct fl_http1 *req;
	char last[160];
};

struct run {
	const struct fl_run_opts *o;
	FILE *out, *err, *human; /* human: where people's output goes */
	struct fl_experiment *x;
	uv_loop_t loop;
	uint64_t seed, load_seed;
	char statedir[FL_STATE_PATH_MAX];
	char rundir[FL_STATE_PATH_MAX + FL_RUN_ID_MAX + 8];
	char svc_control[FL_STATE_PATH_MAX + FL_RUN_ID_MAX + 40];
	char dep_control[FL_STATE_PATH_MAX + FL_RUN_ID_MAX + 40];
	bool svc_control_made, dep_control_made, rundir_made;
	char *exp_dir; /* the experiment's directory (malloc'd), or NULL */
	struct fl_journal *j;
	bool journal_warned;
	bool journal_worker_failed; /* a worker could not write a record (atomic) */
	char run_id[FL_RUN_ID_MAX];
	struct fl_arena arena; /* expanded strings */

	/* Target. */
	struct fl_ports ports;
	struct fl_tproc dep, svc;
	bool dep_started, svc_started, dep_closed, svc_closed;
	const char *svc_url, *svc_admin, *svc_metrics, *dep_url, *dep_admin, *dep_metrics;
	struct run_readiness ready;
	uv_timer_t ready_timer;
	bool ready_waiting;

	/* Load and probes. */
	struct fl_loadgen *lg;
	bool lg_started, lg_done;
	struct fl_client_source client;
	struct fl_probe_env penv;
	struct run_probe *probes;
	size_t probes_open;
	struct fl_runlog rl;
	struct fl_eval_abort *aborts;
	size_t naborts_init;
	uint64_t start_ns;

	/* Plan. */
	size_t next_plan;
	struct run_act *acts;
	size_t nacts_made; /* faults created */
	uint64_t next_seq;
	size_t active; /* actions with a duration in effect (trigger) */
	bool trigger_warned;
	size_t ops_in_flight;
	uv_work_t prep_work;
	bool prep_busy;
	int prep_rc;
	char prep_msg[RS_ERR_MSG_MAX + 160];

	/* Lockstep handshake between fault workers and the loop. */
	uv_async_t ls_async;
	pthread_mutex_t ls_mu;
	pthread_cond_t ls_cv;
	bool ls_want, ls_state;
	uint64_t ls_gen, ls_done_gen;
	bool ls_open;

	/* Timers and signals. */
	uv_timer_t tick, plan, status_timer;
	uv_signal_t sig[3];
	struct sigaction old_sig[3]; /* the caller's, restored when fl_run returns */
	bool handles_open;
	struct fl_status status;
	uint64_t last_met_eval_ns, last_flush_ns;
	size_t met_so_far;
	bool met_known;

	/* Verdicts so far. */
	struct fl_verdict *baseline;
	bool baseline_done, baseline_pass;

	/* Stopping. */
	enum run_phase phase;
	enum stop_kind stop;
	int code;
	char reason[512];
	int signo;
	size_t sigints;
	bool reverting, reverted_all, reverts_started;
	uv_work_t revert_work;
	bool revert_busy;
	size_t revert_failed;
	char revert_msg[RS_ERR_MSG_MAX + 160];
	uint64_t all_reverted_ns;
	size_t abort_index; /* the stop condition that was met */
	bool closing;
	bool in_continue, continue_again; /* run_continue's re-entrancy guard */
	bool finished;
};

/* runner.c */
void run_start_load(struct run *r);
void run_services_ready(struct run *r);
bool run_chatty(const struct run *r);
void run_set_phase(struct run *r, enum run_phase p, uint64_t t_ns);
void run_jcheck(struct run *r, int rc);
/* base (trailing '/' dropped) + path, in r->arena; NULL when out of memory. */
const char *run_join(struct run *r, const char *base, const char *path);
/* s with the announced ports substituted, in r->arena; NULL with err set. */
const char *run_expand(struct run *r, const char *s, struct rs_err *err);

/* runner_setup.c: each returns an exit code, or -1 to go on. */
int run_preflight(struct run *r);
int run_setup(struct run *r);

/* runner_target.c: starts the dependency (then the service, then
 * run_services_ready). */
void run_start_target(struct run *r);
void run_stop(struct run *r, enum stop_kind kind, int code, const char *fmt, ...) RS_PRINTF(4, 5);
void run_continue(struct run *r);
void run_note(struct run *r, const char *fmt, ...) RS_PRINTF(2, 3);
double run_offset_s(const struct run *r, uint64_t t_ns);
const char *run_phase_name(enum run_phase p);

/* runner_faults.c */
int run_faults_create(struct run *r, bool provisional, struct rs_err *err) RS_WUR;
void run_faults_free(struct run *r);
void run_prepare_start(struct run *r);
void run_action_event(struct run *r, const struct fl_plan_event *e);
void run_revert_all_start(struct run *r);
int run_lockstep_init(struct run *r) RS_WUR;
void run_lockstep_close(struct run *r);
size_t run_active_names(const struct run *r, char *buf, size_t size);

/* runner_out.c */
int run_finish_output(struct run *r);

#endif
