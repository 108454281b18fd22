/* Recovery: undo the faults that runs which never finished left behind
 * (`faultline recover`), and the check `faultline run` makes before it
 * starts.
 *
 * A journal (harness/journal.h) in the state directory is *unfinished*
 * when it has no run-end record.  Its *unreverted faults* are its undo
 * records that no later reverted record of the same action matches (each
 * reverted record matches the latest earlier undo record of its action
 * not matched yet), and that have something to undo (cache undo records
 * say "nothing").
 *
 * An unfinished journal is *live*, and never touched, while its run may
 * still be going: another process holds its lock (fl_journal_locked), or
 * the pid of its run-start record is alive with the same start time (pid
 * reuse is told apart by /proc/PID/stat's start time).
 *
 * Recovering a journal that is not live: take its lock, revert each
 * unreverted fault in reverse journal order from its undo record alone
 * (fl_fault_revert_undo_msg), append a reverted record (by "recover") for
 * each success and a recover record for each failure, and when every fault
 * was reverted, a run-end record {"code":3,"reason":"recovered"} so that a
 * second recover finds nothing to do.  A fault whose revert failed stays
 * pending: recover can be run again (after the cause is fixed).
 *
 * Threads: any thread; no event loop (the injectors' operations are
 * synchronous).  Several recovers at once are safe: the journal lock makes
 * one of them skip a journal the other is recovering.
 */
#ifndef FAULTLINE_RECOVER_H
#define FAULTLINE_RECOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "resilience/err.h"

/* An undo record without a matching reverted record. */
struct fl_recover_fault {
	char *action;
	char *family;
	char *undo; /* the undo record, one line of JSON */
	uint64_t t_ns;
	bool nothing; /* the record says there is nothing to undo */
};

/* An unfinished journal. */
struct fl_recover_run {
	char *path;
	char *run_id; /* "" when the run-start record is missing */
	long pid;     /* 0 when unknown */
	uint64_t pid_start;
	bool live;			 /* its run may still be going: not to be touched */
	struct fl_recover_fault *faults; /* journal order */
	size_t nfaults;
	size_t pending; /* faults with something to undo */
};

/* Every unfinished journal of a state directory, by file name (= start
 * time) order.  Owned by the list; fl_recover_list_release frees it. */
struct fl_recover_list {
	struct fl_recover_run *runs;
	size_t nruns;
};

/* Lists the unfinished journals of `statedir` (a missing directory has
 * none).  Unreadable journals are skipped with a note on `report` (may be
 * NULL).  Returns 0, -ENOMEM, or -errno with a message when the directory
 * cannot be read. */
int fl_recover_scan(const char *statedir, FILE *report, struct fl_recover_list *out,
		    struct rs_err *err) RS_WUR;

/* Frees the list's contents; the struct may be reused.  Accepts an empty
 * (zeroed) list. */
void fl_recover_list_release(struct fl_recover_list *l);

/* *n = the number of unreverted faults with something to undo in
 * journals that are not live: what `faultline run` refuses to start over
 * (pointing at `faultline recover`, unless --force).  0 or -errno. */
int fl_recover_pending(const char *statedir, size_t *n, struct rs_err *err) RS_WUR;

struct fl_recover_summary {
	size_t runs;	 /* journals recovered (closed with run-end) */
	size_t reverted; /* faults reverted (undo records with something to undo) */
	size_t failed;	 /* faults that could not be reverted (still pending) */
	size_t live;	 /* journals skipped because their run may still be going */
};

/* Recovers every unfinished journal of `statedir` that is not live, and
 * writes what it did to `report` (may be NULL), one line a fault:
 *   "reverted jitter on pid 1234 service (control /tmp/x/ctl): jitter on again"
 *   "nothing to undo for cache flush on pid 1234 service"
 *   "could not revert 'slow-dep' (capacity): reverting capacity on ...: ..."
 * and one line a journal: "run ID: recovered (2 faults reverted)", "run ID:
 * pid 4321 is still running, not touched".  *sum (may be NULL) gets the
 * counts.  Returns 0 when nothing failed; otherwise the first failure's
 * -errno with its message in err (the rest are on the report). */
int fl_recover_run(const char *statedir, FILE *report, struct fl_recover_summary *sum,
		   struct rs_err *err) RS_WUR;

#endif
