/* The runner: `faultline run`.  One libuv loop drives a whole run:
 *
 *   preflight   load and validate the experiment (--var, --seed); refuse
 *               while faults of an earlier run are unrecovered (exit 2,
 *               naming `faultline recover`) unless force; the blast-radius
 *               allowlist (every URL loopback unless allowed: exit 2); map
 *               every fault onto its injector (exit 2 when one cannot be);
 *               --dry-run stops here and prints the timeline (exit 0).
 *   start       journal run-start in the state directory; a per-run
 *               directory <state>/<run-id>.d with the control block files
 *               (RESILIENCE_CONTROL); the dependency, then the service
 *               (uv_spawn, own session, PR_SET_PDEATHSIG through the shim),
 *               each announcing its ports and then answering its readiness
 *               check; every fault prepared (capabilities: exit 4 when one
 *               is missing).
 *   run         the load generator and the probes (sampled every cadence on
 *               this loop; a probe still busy records a failed sample) start
 *               together: time 0 of the plan.  Warm-up, the baseline
 *               steady-state check (failing: stop before any fault, exit 1),
 *               the method (each action: undo record journaled and fsync'ed,
 *               apply, verify on a worker thread; revert at its end), the
 *               recovery window, the final window, the end.  The service's
 *               POST /admin/trigger?active=1 while any action with a
 *               duration is in effect, active=0 after the last one ends.
 *   stop        stop the load; revert every fault still applied, in reverse
 *               order of application; close the probes; stop the target
 *               (SIGTERM, SIGKILL after its stop_timeout); evaluate; write
 *               verdicts and the run-end record; print.
 *
 * Abnormal ends take the same stop path: a stop condition met (exit 3; the
 * time from the condition being met to every fault reverted is measured,
 * journaled in the abort verdict and printed), SIGINT/SIGTERM/SIGHUP (exit
 * 3; a second SIGINT only prints "reverting, please wait"), the target
 * exiting unexpectedly or a fault that cannot be applied or verified (exit
 * 1, with the reason).
 *
 * Exit codes (DESIGN.md section 7): FL_EXIT_*.
 *
 * Threads: fl_run runs on the calling thread (its own loop; the libuv
 * threadpool for fault operations) and installs libuv signal handlers for
 * SIGINT, SIGTERM and SIGHUP while it runs.  One fl_run per process at a
 * time.
 */
#ifndef FAULTLINE_RUNNER_H
#define FAULTLINE_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum {
	FL_EXIT_PASS = 0,	/* every check and expectation met */
	FL_EXIT_FAIL = 1,	/* one failed, the baseline failed, the target died, a
				   fault could not be applied/verified/reverted */
	FL_EXIT_USAGE = 2,	/* invalid experiment or usage; unrecovered faults of an
				   earlier run (without --force); a URL off the allowlist */
	FL_EXIT_ABORTED = 3,	/* a stop condition or a signal ended the run; faults
				   were reverted */
	FL_EXIT_CAPABILITY = 4, /* this machine (or target) cannot run the experiment */
};

enum fl_status_mode {
	FL_STATUS_AUTO,	 /* a live line when stderr is a TTY, else plain lines every 5 s */
	FL_STATUS_NONE,	 /* --quiet */
	FL_STATUS_PLAIN, /* plain lines every 5 s whatever stderr is */
};

struct fl_run_opts {
	const char *experiment;	 /* path, or "-" for standard input */
	const char *const *vars; /* "name=value" (--var), nvars of them; borrowed */
	size_t nvars;
	bool seed_set;			/* --seed given: */
	uint64_t seed;			/* overrides the experiment's seed */
	const char *state_dir;		/* NULL: $FAULTLINE_STATE_DIR, XDG, ... (statedir.h) */
	bool force;			/* run even with unrecovered faults */
	const char *const *allow_hosts; /* --allow-host, nallow of them; borrowed */
	size_t nallow;
	bool tap; /* TAP on `out`, people's output on `err` */
	bool dry_run;
	enum fl_status_mode status;
	const char *journal_out; /* --journal FILE: the JSON export, or NULL */
	const char *shim;	 /* faultline's binary (for "__exec"), or NULL */
	FILE *out, *err;	 /* NULL: stdout, stderr */
	/* The process exits when fl_run returns: leave SIGINT, SIGTERM and
	 * SIGHUP ignored from the end of the run on (else the caller's actions
	 * are restored), so that a late Ctrl-C cannot replace the exit code. */
	bool exiting;
};

/* Runs one experiment from start to verdict.  Returns the exit code. */
int fl_run(const struct fl_run_opts *o);

#endif
