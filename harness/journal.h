/* The journal: an append-only JSON-lines file per run in the state
 * directory (harness/statedir.h), <run-id>.jsonl, that records everything a
 * run does, so that reports can be made from it and `faultline recover` can
 * undo the faults of a run that crashed.
 *
 * One JSON object a line.  Every record has "t" (CLOCK_MONOTONIC ns, a JSON
 * integer) and "type", written first and in that order ({"t":N,"type":"X",
 * ...}); the other members by type:
 *
 *   run-start  run (the run id), wall (UTC, ISO 8601, ms), wall_ns (Unix
 *              epoch ns, written once: the anchor of every "t"), seed (a
 *              decimal string: 64-bit seeds do not fit a JSON number
 *              exactly), experiment (path as given), source (the
 *              experiment's bytes), host, version, pid, pid_start (the
 *              process's start time in clock ticks since boot, from
 *              /proc/PID/stat; 0 when unknown)
 *   phase      phase ("warmup", "baseline", "method", ...)
 *   sample     probe (index), value (number, null when not finite), ok
 *              (bool), why (when not ok)
 *   fault      action, family, step ("apply", "verify", "revert",
 *              "error"), start and end (ns: when the step began and ended),
 *              error (when it failed)
 *   undo       action, run (the run id), undo (the injector's undo record,
 *              a JSON object): written and fsync'ed before the fault is
 *              applied
 *   reverted   action, by ("run" or "recover"), detail (optional)
 *   recover    action, error: `faultline recover` could not revert it
 *   verdict    expectation, pass, measured, bound (numbers or null),
 *              detail
 *   run-end    code (the exit code), reason ("completed", "aborted",
 *              "signal", "recovered", ...)
 *
 * Durability: the run-start record is fsync'ed with the directory entry of
 * the new file; undo, reverted, recover and run-end records are fsync'ed
 * before their function returns.  Samples are batched in memory
 * (FL_JOURNAL_BATCH bytes) and written, without fsync, when the batch is
 * full, before any other record, and by fl_journal_flush: the runner calls
 * that periodically.  Records appear in the file in call order.
 *
 * Liveness: the writer holds an exclusive flock(2) on its file from create
 * to close (the kernel drops it when the process dies, even by SIGKILL), so
 * `faultline recover` can tell a journal that is being written right now
 * (fl_journal_locked) from one a crashed run left behind.
 *
 * Memory: records are formatted into one buffer owned by the journal,
 * grown only for records larger than any before (the run-start record with
 * its experiment copy); nothing else allocates per record.
 *
 * Threads: a struct fl_journal may be used from any thread, by several at
 * once (a mutex serialises writes): the runner writes samples from its loop
 * and undo records from its worker threads.
 */
#ifndef FAULTLINE_JOURNAL_H
#define FAULTLINE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "resilience/err.h"

struct cJSON;

#define FL_JOURNAL_BATCH (64u * 1024) /* bytes of samples held before a write */

struct fl_journal;

/* What the run-start record says.  Every pointer is borrowed for the call. */
struct fl_journal_run {
	const char *run_id; /* NULL: a new one (fl_run_id_new) */
	uint64_t seed;
	const char *experiment; /* the experiment's path as given, or NULL */
	const char *source;	/* the experiment's bytes (source_len of them), or NULL */
	size_t source_len;
	const char *version; /* faultline's version, or NULL */
};

/* Creates <dir>/<run-id>.jsonl (mode 0600; `dir` is created 0700 when
 * missing), takes its lock, writes the run-start record and fsyncs it and
 * the directory.  Returns 0 with *out set (caller-frees with
 * fl_journal_close), or -errno with a message naming the file and the
 * reason (-EEXIST when a journal of that run id exists). */
int fl_journal_create(struct fl_journal **out, const char *dir, const struct fl_journal_run *run,
		      struct rs_err *err) RS_WUR;

/* Opens an existing journal to append to it (recover), taking its lock
 * without waiting.  When the file does not end with a newline (a record
 * cut by a crash), a newline is written first, so the cut record stays one
 * bad line of its own.  Returns 0 with *out set, -EWOULDBLOCK when another
 * process holds the lock (a run in progress), or -errno with a message. */
int fl_journal_open_append(struct fl_journal **out, const char *path, struct rs_err *err) RS_WUR;

/* 1 when another open file description holds the journal's lock (a live
 * writer, in this process or another), 0 when not, -errno when the file
 * cannot be opened. */
int fl_journal_locked(const char *path);

/* The file's path and the run id (borrowed, valid until close; the run id
 * is "" for a journal opened with fl_journal_open_append). */
const char *fl_journal_path(const struct fl_journal *j);
const char *fl_journal_run_id(const struct fl_journal *j);

/* The message of the last failed write (borrowed; "" when none). */
const char *fl_journal_error(const struct fl_journal *j);

/* Record writers.  t_ns is the record's "t"; 0 means now (rs_now_ns).
 * String arguments are borrowed for the call; NULL strings are written as
 * "" (or left out where the record says "optional").  Each returns 0, or
 * -errno when the record could not be written (message in
 * fl_journal_error); -ENOMEM when its buffer could not grow. */
int fl_journal_phase(struct fl_journal *j, uint64_t t_ns, const char *phase) RS_WUR;

/* Batched: see Durability above.  why may be NULL when ok. */
int fl_journal_sample(struct fl_journal *j, uint64_t t_ns, size_t probe, double value, bool ok,
		      const char *why) RS_WUR;

enum fl_fault_step { FL_STEP_APPLY, FL_STEP_VERIFY, FL_STEP_REVERT, FL_STEP_ERROR };

/* "apply", "verify", "revert", "error". */
const char *fl_fault_step_name(enum fl_fault_step s);

/* One step of a fault, started at start_ns and ended at end_ns (the
 * record's "t" is end_ns); error NULL when the step succeeded. */
int fl_journal_fault(struct fl_journal *j, const char *action, const char *family,
		     enum fl_fault_step step, uint64_t start_ns, uint64_t end_ns,
		     const char *error) RS_WUR;

/* The undo record of `action`, written and fsync'ed before this returns;
 * call it before applying the fault.  undo_json must be one JSON object on
 * one line (fl_fault_undo_record's output): -EINVAL otherwise. */
int fl_journal_undo(struct fl_journal *j, uint64_t t_ns, const char *action,
		    const char *undo_json) RS_WUR;

/* `action` was reverted (by "run" or "recover"); detail optional.
 * Fsync'ed. */
int fl_journal_reverted(struct fl_journal *j, uint64_t t_ns, const char *action, const char *by,
			const char *detail) RS_WUR;

/* `faultline recover` could not revert `action`.  Fsync'ed. */
int fl_journal_recover_failed(struct fl_journal *j, uint64_t t_ns, const char *action,
			      const char *error) RS_WUR;

/* An expectation's verdict; measured and bound are written as null when
 * not finite; detail optional. */
int fl_journal_verdict(struct fl_journal *j, uint64_t t_ns, const char *expectation, bool pass,
		       double measured, double bound, const char *detail) RS_WUR;

/* The run's end: its exit code and why.  Fsync'ed. */
int fl_journal_end(struct fl_journal *j, uint64_t t_ns, int code, const char *reason) RS_WUR;

/* Writes the batched samples (no fsync). */
int fl_journal_flush(struct fl_journal *j) RS_WUR;

/* Writes the batched samples, fsyncs, unlocks and closes, and frees j.
 * Returns 0 or the first error (message in err).  Accepts NULL. */
int fl_journal_close(struct fl_journal *j, struct rs_err *err);

/* ---- reading ------------------------------------------------------------ */

/* One record, for the duration of a callback. */
struct fl_jrec {
	uint64_t t_ns;	    /* "t" (0 when missing) */
	const char *type;   /* "type" ("" when missing); borrowed from json */
	struct cJSON *json; /* the whole record; borrowed: the callback may read or
			       modify it, it is freed when the callback returns */
	size_t line;	    /* 1-based line number in the file */
};

/* Returns 0 to go on; anything else stops the reading and is returned. */
typedef int (*fl_jrec_fn)(void *ctx, const struct fl_jrec *rec);

struct fl_jread_stats {
	size_t records;	     /* records handed to the callback */
	size_t bad_lines;    /* complete lines that are not a JSON object (skipped) */
	bool truncated_tail; /* the last line had no newline and did not parse: a
				record cut by a crash (ignored) */
};

/* Calls fn for every record of the journal at `path` in file order, or only
 * for records of type only_type when it is not NULL (other lines are
 * skipped without being parsed).  Tolerates what a crash leaves: a cut last
 * line, and cut lines in the middle (a crash, then recover appending) are
 * skipped and counted in *st (may be NULL).  Returns 0, the callback's
 * non-zero value, or -errno with a message when the file cannot be read.
 * Any thread; reads while a writer appends see a prefix of the records. */
int fl_journal_read(const char *path, const char *only_type, fl_jrec_fn fn, void *ctx,
		    struct fl_jread_stats *st, struct rs_err *err) RS_WUR;

/* Writes the journal at `path` as one JSON document (`faultline run
 * --journal FILE`): {"run": the run-start record, "phases": [...],
 * "samples": [...], "faults": [fault, undo, reverted and recover records],
 * "verdicts": [...], "end": the last run-end record or null, "journal":
 * {"path", "records", "bad_lines", "truncated_tail"}}, each record without
 * its "type" (the "faults" ones keep it).  Streams: memory does not grow
 * with the number of samples.  Returns 0, or -errno with a message (-EIO
 * when writing to out failed). */
int fl_journal_export(const char *path, FILE *out, struct rs_err *err) RS_WUR;

#endif
