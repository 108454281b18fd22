/* The state directory: where faultline keeps the journals of its runs, so
 * that `faultline recover` can find faults a crashed run left behind.
 *
 * Where it is (first match wins):
 *   $FAULTLINE_STATE_DIR             when set and not empty
 *   $XDG_STATE_HOME/faultline        when XDG_STATE_HOME is an absolute path
 *   /var/lib/faultline               for root (effective uid 0)
 *   $HOME/.local/state/faultline     otherwise (HOME, else the passwd entry)
 * Directories faultline creates there are mode 0700: journals hold copies of
 * experiments, which may name hosts and credentials in URLs.
 *
 * Run ids name one run and its journal (<run-id>.jsonl): UTC wall time,
 * pid and 32 random bits, "20241123T111800Z-1234-9f3a2c1d", so that they
 * sort by start time and two runs started in the same second on one
 * machine never collide.
 *
 * Threads: every function here is thread-safe (no shared state); each
 * reads the environment, so call them before threads that modify it.
 */
#ifndef FAULTLINE_STATEDIR_H
#define FAULTLINE_STATEDIR_H

#include <stddef.h>

#include "resilience/err.h"

#define FL_STATEDIR_ENV	  "FAULTLINE_STATE_DIR"
#define FL_RUN_ID_MAX	  48 /* including the terminating NUL */
#define FL_STATE_PATH_MAX 4096

/* Writes the state directory's path (as listed above; not created) into
 * buf.  Returns 0; -ENAMETOOLONG when it does not fit cap; -ENOENT with a
 * message when no rule applies (no HOME and no passwd entry). */
int fl_statedir_path(char *buf, size_t cap, struct rs_err *err) RS_WUR;

/* Creates `dir` and any missing parent (each new one mode 0700); an
 * existing directory is left as it is.  Returns 0, or -errno with a message
 * naming the path that could not be created and why (-ENOTDIR when a
 * component is a file). */
int fl_statedir_ensure(const char *dir, struct rs_err *err) RS_WUR;

/* Writes a new run id into buf (cap >= FL_RUN_ID_MAX).  Returns 0, or
 * -ENOSPC when cap is too small. */
int fl_run_id_new(char *buf, size_t cap) RS_WUR;

/* Writes "<dir>/<run_id>.jsonl" into buf.  0 or -ENAMETOOLONG. */
int fl_statedir_journal_path(char *buf, size_t cap, const char *dir, const char *run_id) RS_WUR;

#endif
