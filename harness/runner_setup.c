/* The runner's preflight (load, validate, allowlist, unrecovered faults,
 * --dry-run) and setup (state directory, journal, control blocks)
 * (runner_int.h). */
#include "harness/runner_int.h"

#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness/recover.h"
#include "harness/runmap.h"
#include "harness/statedir.h"
#include "resilience/control.h"

#ifndef FL_VERSION
#define FL_VERSION "0.1.0"
#endif

/* ---- preflight ------------------------------------------------------------------------ */

static int make_controls(struct run *r, struct rs_err *err)
{
	const struct fl_target_proc *procs[2] = { &r->x->service, &r->x->dependency };
	char *paths[2] = { r->svc_control, r->dep_control };
	bool *made[2] = { &r->svc_control_made, &r->dep_control_made };

	for (int i = 0; i < 2; i++) {
		const struct fl_target_proc *mp = procs[i];
		struct rs_control *c = NULL;
		int rc;

		if (!mp->present)
			continue;
		if (mp->control) {
			snprintf(paths[i], sizeof(r->svc_control), "%s", mp->control);
			if (!mp->argv)
				continue; /* not ours: it must exist already */
		} else if (mp->argv) {
			if (!r->rundir_made) {
				if (mkdir(r->rundir, 0700) < 0 && errno != EEXIST) {
					int e = errno;

					rs__err_set(err, "cannot create '%s': %s", r->rundir,
						    strerror(e));
					return -e;
				}
				r->rundir_made = true;
			}
			snprintf(paths[i], sizeof(r->svc_control), "%s/%s.control", r->rundir,
				 i == 0 ? "service" : "dependency");
			*made[i] = true;
		} else {
			continue;
		}
		rc = rs_control_open(&c, paths[i], RS_CONTROL_CREATE | RS_CONTROL_RESET, NULL, err);
		if (rc < 0)
			return rc;
		rs_control_free(c);
	}
	return 0;
}

/* Returns an exit code, or -1 to go on with the run. */
int run_preflight(struct run *r)
{
	const struct fl_run_opts *o = r->o;
	struct fl_vars vars = { o->vars, o->nvars, false };
	struct fl_diag diag;
	struct rs_err err = { "" };
	int rc;

	fl_diag_init(&diag, o->experiment);
	rc = fl_experiment_load(o->experiment, &vars, &r->x, &diag);
	if (rc < 0) {
		fl_diag_sort(&diag);
		fl_diag_print(&diag, r->err);
		if (rc == -ENOMEM) {
			fprintf(r->err, "faultline run: out of memory\n");
			return FL_EXIT_FAIL;
		}
		return FL_EXIT_USAGE;
	}
	r->seed = o->seed_set ? o->seed : r->x->seed;
	r->load_seed = o->seed_set && r->x->load.seed == r->x->seed ? o->seed : r->x->load.seed;
	if (strcmp(o->experiment, "-") != 0) {
		char *copy = strdup(o->experiment);

		if (!copy)
			return FL_EXIT_FAIL;
		r->exp_dir = strdup(dirname(copy));
		free(copy);
	}
	if ((rc = fl_check_blast_radius(r->x, o->allow_hosts, o->nallow, &err)) < 0) {
		fprintf(r->err, "faultline run: %s: %s\n", o->experiment, err.msg);
		return FL_EXIT_USAGE;
	}
	if ((rc = run_faults_create(r, true, &err)) < 0) {
		fprintf(r->err, "faultline run: %s: %s\n", o->experiment, err.msg);
		run_faults_free(r);
		return rc == -EINVAL ? FL_EXIT_USAGE : FL_EXIT_FAIL;
	}
	run_faults_free(r);
	if (o->state_dir)
		snprintf(r->statedir, sizeof(r->statedir), "%s", o->state_dir);
	else if (fl_statedir_path(r->statedir, sizeof(r->statedir), &err) < 0) {
		fprintf(r->err, "faultline run: cannot find the state directory: %s\n", err.msg);
		return FL_EXIT_FAIL;
	}
	if (!o->dry_run || access(r->statedir, F_OK) == 0) {
		size_t n = 0;

		rc = fl_recover_pending(r->statedir, &n, &err);
		if (rc < 0 && !o->dry_run) {
			fprintf(r->err,
				"faultline run: cannot check '%s' for faults an earlier run left "
				"behind: %s\n",
				r->statedir, err.msg);
			return FL_EXIT_FAIL;
		}
		if (rc == 0 && n > 0) {
			if (o->dry_run || o->force) {
				fprintf(r->err,
					"faultline run: warning: %zu fault%s of an earlier run %s "
					"never reverted (state directory %s); `faultline recover` "
					"reverts them%s\n",
					n, n == 1 ? "" : "s", n == 1 ? "was" : "were", r->statedir,
					o->dry_run ? "" : "; running anyway (--force)");
			} else {
				fprintf(
				    r->err,
				    "faultline run: refusing to start: %zu fault%s of an earlier "
				    "run %s never reverted (state directory %s).  Run `faultline "
				    "recover` to revert %s, or pass --force to run anyway.\n",
				    n, n == 1 ? "" : "s", n == 1 ? "was" : "were", r->statedir,
				    n == 1 ? "it" : "them");
				return FL_EXIT_USAGE;
			}
		}
	}
	if (o->dry_run) {
		FILE *f = r->human;

		fprintf(f, "faultline: %s (dry run: nothing started, nothing injected)\n",
			r->x->title);
		fprintf(f,
			"  seed %llu, load seed %llu, cadence %.3gs, %zu probe%s, %zu action%s, "
			"%zu expectation%s\n",
			(unsigned long long)r->seed, (unsigned long long)r->load_seed,
			(double)r->x->settings.cadence_ns / 1e9, r->x->nprobes,
			r->x->nprobes == 1 ? "" : "s", r->x->nactions,
			r->x->nactions == 1 ? "" : "s", r->x->nexpects,
			r->x->nexpects == 1 ? "" : "s");
		for (size_t i = 0; i < r->x->nactions; i++)
			fprintf(f, "  action %s: %s fault (needs %s)\n", r->x->actions[i].name,
				r->x->actions[i].family->name, r->x->actions[i].family->needs);
		fprintf(f,
			"  capabilities: the %s here need no privileges; their endpoints are "
			"checked once the target runs\n",
			r->x->nactions ? "faults" : "probes");
		fprintf(f, "timeline:\n");
		fl_experiment_print_plan(r->x, f);
		fflush(f);
		return FL_EXIT_PASS;
	}
	return -1;
}

int run_setup(struct run *r)
{
	struct fl_journal_run jr = { 0 };
	struct rs_err err = { "" };
	int rc;

	if ((rc = fl_statedir_ensure(r->statedir, &err)) < 0) {
		fprintf(r->err, "faultline run: %s\n", err.msg);
		return FL_EXIT_FAIL;
	}
	jr.seed = r->seed;
	jr.experiment = r->o->experiment;
	jr.source = r->x->source;
	jr.source_len = r->x->source_len;
	jr.version = FL_VERSION;
	if ((rc = fl_journal_create(&r->j, r->statedir, &jr, &err)) < 0) {
		fprintf(r->err, "faultline run: %s\n", err.msg);
		return FL_EXIT_FAIL;
	}
	snprintf(r->run_id, sizeof(r->run_id), "%s", fl_journal_run_id(r->j));
	snprintf(r->rundir, sizeof(r->rundir), "%s/%s.d", r->statedir, r->run_id);
	if ((rc = make_controls(r, &err)) < 0) {
		fprintf(r->err, "faultline run: control block: %s\n", err.msg);
		run_jcheck(r, fl_journal_end(r->j, 0, FL_EXIT_FAIL, "control block"));
		return FL_EXIT_FAIL;
	}
	if (run_chatty(r) || r->o->tap)
		run_note(r, "run %s: %s (journal %s)", r->run_id, r->x->title,
			 fl_journal_path(r->j));
	run_set_phase(r, PH_STARTING, 0);
	return -1;
}
