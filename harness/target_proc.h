/* Target processes: start one process of the target (the service or its
 * dependency) on the runner's libuv loop, read the line it announces its
 * ports with, supervise it, and stop it.
 *
 *   fl_tproc_start   uv_spawn with stdout on a pipe; stderr is inherited
 *                    (the target's messages reach the user).  The process
 *                    gets its own session (setsid), so a terminal's Ctrl-C
 *                    reaches faultline only, which then stops it in order.
 *                    With `shim`, the program actually started is
 *                    "SHIM __exec PPID -- ARGV...": faultline's own binary,
 *                    which sets PR_SET_PDEATHSIG(SIGKILL) and execs ARGV, so a
 *                    target never outlives a harness killed by SIGKILL.
 *   announce         when o->announce, the first stdout line must be
 *                    "listening http=HOST:PORT admin=HOST:PORT" within
 *                    announce_timeout_ns; on_listening reports the ports, or
 *                    an error (timeout, a different line, exit before it).
 *                    Later output is read and dropped.
 *   on_exit          called once when the process exits, with `expected`
 *                    true when fl_tproc_stop asked for it.
 *   fl_tproc_stop    SIGTERM by pid, SIGKILL after timeout_ns; idempotent.
 *   fl_tproc_close   stops the process if it still runs, closes the
 *                    handles; `closed` follows once everything is closed and
 *                    the process reaped.  Run the loop until then.
 *
 * Threads: the loop's thread only.  Storage is the caller's (init/close).
 */
#ifndef FAULTLINE_TARGET_PROC_H
#define FAULTLINE_TARGET_PROC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "resilience/err.h"

#define FL_TPROC_LINE_MAX 256

struct fl_tproc;

struct fl_tproc_opts {
	const char *role;	    /* "service", "dependency": messages (borrowed, static) */
	const char *const *argv;    /* NULL-terminated; copied */
	const char *const *env_add; /* "NAME=value", NULL-terminated, replacing the
				       same names in the environment; copied; may be NULL */
	const char *cwd;	    /* NULL: the harness's; copied */
	const char *shim;	    /* see above; NULL: exec argv directly; copied */
	bool announce;
	uint64_t announce_timeout_ns;
	/* err is NULL on success (ports set), else a lowercase reason. */
	void (*on_listening)(void *ctx, struct fl_tproc *p, int http_port, int admin_port,
			     const char *err);
	/* status: the exit status; signal: the terminating signal or 0. */
	void (*on_exit)(void *ctx, struct fl_tproc *p, int64_t status, int signal, bool expected);
	void *ctx;
};

struct fl_tproc {
	/* Read-only for callers. */
	pid_t pid;	 /* 0 before start */
	bool running;	 /* spawned and not exited yet */
	bool stopping;	 /* fl_tproc_stop was called */
	int64_t status;	 /* after exit */
	int term_signal; /* after exit */
	char line[FL_TPROC_LINE_MAX];

	/* Private. */
	struct fl_tproc_opts o;
	char **argv, **env, *cwd;
	uv_loop_t *loop;
	uv_process_t proc;
	uv_pipe_t out;
	uv_timer_t timer; /* announce timeout, then the SIGKILL timer */
	size_t linelen;
	bool announced, announce_done;
	bool proc_open, out_open, timer_open, out_reading, closing;
	int open_handles;
	void (*closed)(void *ctx);
	void *closed_ctx;
};

/* Zeroes p.  Call before start (and before close on an unstarted p). */
void fl_tproc_init(struct fl_tproc *p);

/* Starts the process.  Returns 0 (callbacks follow), or -errno with a
 * message naming the program and why it could not be started (then only
 * fl_tproc_close is allowed, and it completes at once). */
int fl_tproc_start(struct fl_tproc *p, uv_loop_t *loop, const struct fl_tproc_opts *o,
		   struct rs_err *err) RS_WUR;

/* SIGTERM now, SIGKILL after timeout_ns when it has not exited. */
void fl_tproc_stop(struct fl_tproc *p, uint64_t timeout_ns);

/* Closes everything (stopping the process first with stop_timeout_ns when
 * it still runs); closed(ctx) follows from the loop (may be NULL). */
void fl_tproc_close(struct fl_tproc *p, uint64_t stop_timeout_ns, void (*closed)(void *ctx),
		    void *ctx);

/* Parses "listening http=H:P admin=H:P" (admin optional).  0 with the
 * ports (admin 0 when absent), or -EINVAL. */
int fl_tproc_parse_listening(const char *line, int *http_port, int *admin_port) RS_WUR;

/* The shim's body, for main(): argv is "PPID", "--", PROGRAM, ARGS...
 * Sets PR_SET_PDEATHSIG(SIGKILL), exits 127 if the parent already left,
 * then execs.  Returns only on failure (127, message on stderr). */
int fl_tproc_shim_main(int argc, char **argv);

#endif
