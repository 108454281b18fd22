/* Fault injectors: one ops table per fault family (DESIGN.md section 4),
 * and the fault instances the runner drives through it.
 *
 *   prepare  checks parameters and capabilities, touches nothing; a
 *            failure says what is missing and how to get it;
 *   undo     (fl_fault_undo_record) describes how to revert WITHOUT the
 *            fault object: the runner journals it (fsync) before apply;
 *   apply    injects;
 *   verify   proves the fault took effect by reading the target back; a
 *            fault that cannot be verified is an error, never a warning;
 *   revert   restores the previous values; idempotent;
 *   revert from the undo record alone (fl_fault_revert_undo): what
 *            `faultline recover` runs after a crash; idempotent.
 *
 * Every operation is SYNCHRONOUS and bounded: each HTTP call to a loopback
 * admin endpoint is limited by cfg.timeout_ns (blocking sockets and poll,
 * probes/http1.h), control-block writes do not block.  The runner calls
 * them on a libuv worker thread (uv_queue_work) so its loop keeps sampling;
 * recover calls them directly.
 *
 * Families here (all acting on processes built on the core, no privileges
 * needed):
 *   jitter    target side: writes the control block the target maps
 *             (RESILIENCE_CONTROL): jitter off, optionally retries paused
 *             or resumed and a breaker forced; verify reads the block back
 *             and the target's resilience_jitter_enabled{name=ROLE} gauge
 *             (0), resilience_retries_paused{name=ROLE} when retries are
 *             changed.  Client side: switches the load generator to lockstep
 *             retries through fl_client_hooks.  Revert restores the previous
 *             values read just before apply.
 *   cache     POST /admin/cache/flush, /admin/cache/flush?prefix=P or
 *             /admin/cache/expire?in_us=N (expire_in) on the service's
 *             admin endpoint; verify
 *             reads GET /admin/cache: the target's flushed counter grew by
 *             what the flush reported, and (flush all) the cache is smaller
 *             than before or every entry it holds came after a miss since the
 *             flush; (expire) the entries held were all expired and, when
 *             lookups happened since, misses moved.  Repeated faults
 *             (interval_ns): the runner calls apply (and verify) again at
 *             each repeat.  Revert is a no-op and the undo record says
 *             "nothing to undo": a flushed cache refills itself.
 *   capacity POST /admin/capacity?factor=F on the dependency's (or the
 *             service's) admin endpoint; verify reads GET /admin/capacity
 *             back; revert and the undo record restore the factor that
 *             GET /admin/capacity read just before apply.
 *
 * Threads: a struct fl_fault is used by one thread at a time (the runner
 * serialises its operations); different faults may run concurrently.
 * Overlapping faults of the same family on the same process are not
 * nested: each restores what it read before its own apply.
 */
#ifndef FAULTLINE_INJECTOR_H
#define FAULTLINE_INJECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "resilience/control.h"
#include "resilience/err.h"

#define FL_FAULT_TIMEOUT_NS (2ull * 1000000000ull) /* per admin call, when cfg gives 0 */
#define FL_UNDO_MAX	    4096		   /* bytes of an undo record, NUL included */

enum fl_fault_family {
	FL_FAULT_JITTER,
	FL_FAULT_CACHE,
	FL_FAULT_CAPACITY,
};

/* Which target process a fault acts on.  DEFAULT: the family's default
 * (service for jitter, dependency for capacity). */
enum fl_fault_role {
	FL_FAULT_ROLE_DEFAULT = 0,
	FL_FAULT_ROLE_SERVICE,
	FL_FAULT_ROLE_DEPENDENCY,
	FL_FAULT_ROLE_BOTH, /* jitter only */
};

enum fl_cache_op {
	FL_CACHE_FLUSH_ALL,
	FL_CACHE_FLUSH_PREFIX,
	FL_CACHE_EXPIRE,
};

/* A fault's configuration: the runner maps the experiment's parameters
 * (harness/families.c) onto it.  Strings are borrowed for fl_fault_new
 * (copied). */
struct fl_fault_cfg {
	enum fl_fault_family family;
	const char *action;  /* the action's name, for messages and undo records */
	uint64_t timeout_ns; /* per admin call; 0: FL_FAULT_TIMEOUT_NS */
	union {
		struct {
			bool target;		   /* write the target's control block */
			bool client;		   /* lockstep the load generator (needs hooks) */
			enum fl_fault_role role;   /* target side: service (default),
						    dependency or both */
			bool pause_retries;	   /* also set retries_paused = 1 */
			bool resume_retries;	   /* also set retries_paused = 0 */
			const char *force_breaker; /* also force this breaker, or NULL */
			int force;		   /* RS_FORCE_OPEN or RS_FORCE_CLOSED */
			uint64_t tick_ns;	   /* client side: the lockstep tick */
		} jitter;
		struct {
			enum fl_cache_op op;
			const char *prefix;    /* FL_CACHE_FLUSH_PREFIX: required */
			uint64_t interval_ns;  /* 0: once; else the runner re-applies */
			uint64_t expire_in_ns; /* FL_CACHE_EXPIRE: must be 0 (the
						  target's endpoint expires now) */
		} cache;
		struct {
			double factor;		 /* [0, 1e6] */
			enum fl_fault_role role; /* dependency (default) or service */
		} capacity;
	};
};

/* Where the target is.  Strings are borrowed for fl_fault_new (copied);
 * NULL when the target has no such thing. */
struct fl_target_info {
	const char *service_admin;	     /* "http://127.0.0.1:PORT" */
	const char *service_metrics;	     /* full URL of the service's /metrics */
	const char *dependency_admin;	     /* "http://127.0.0.1:PORT" */
	const char *dependency_metrics;	     /* full URL of the dependency's /metrics */
	const char *control_path;	     /* the service's control block */
	const char *dependency_control_path; /* the dependency's control block */
	const char *identity; /* for undo records and messages, e.g. "pid 1234 service";
				 NULL: built from service_pid */
	pid_t service_pid;    /* 0 when unknown */
	pid_t dependency_pid; /* 0 when unknown */
};

/* The runner's load generator, for the jitter fault's client side.
 * set_lockstep is called from the thread running the fault's operation;
 * it must be safe to call from there.  is_lockstep (may be NULL) lets
 * verify read the state back. */
struct fl_client_hooks {
	void *ctx;
	void (*set_lockstep)(void *ctx, bool on, uint64_t tick_ns);
	bool (*is_lockstep)(void *ctx);
};

struct fl_fault;

/* Creates a fault instance: copies cfg and t, keeps h (NULL: no client
 * side).  Checks only that the configuration is well-formed (-EINVAL with
 * the field named); capabilities are prepare's job.  Returns 0 with *out
 * set (caller-frees with fl_fault_free), -EINVAL or -ENOMEM. */
int fl_fault_new(struct fl_fault **out, const struct fl_fault_cfg *cfg,
		 const struct fl_target_info *t, const struct fl_client_hooks *h,
		 struct rs_err *err) RS_WUR;

/* Frees f; does NOT revert (call fl_fault_revert first).  Accepts NULL. */
void fl_fault_free(struct fl_fault *f);

/* The family's name ("jitter", "cache", "capacity") and the action name.
 * Static storage / borrowed from f. */
const char *fl_fault_family_name(enum fl_fault_family family);
const char *fl_fault_action(const struct fl_fault *f);
enum fl_fault_family fl_fault_family_of(const struct fl_fault *f);

/* Checks that everything the fault needs is there (admin URL, metrics URL,
 * control block file, client hooks) and answers, touching nothing (reads
 * only).  Returns 0, or -errno with a message saying what is missing and
 * how to get it. */
int fl_fault_prepare(struct fl_fault *f, struct rs_err *err) RS_WUR;

/* Reads the values the fault will change (they are what revert restores)
 * and writes a one-line JSON object into buf with everything needed to
 * revert without f: family, action, target identity and pid, control
 * paths or admin URL, previous values.  Call it right before apply and
 * journal the result (fl_journal_undo) before calling apply.  While the
 * fault is applied (a repeat), the values read before its first apply are
 * kept.  Returns the length written (>= 0), -ENOSPC when cap is too small
 * (FL_UNDO_MAX holds paths and URLs up to 1 KiB each), or -errno when the
 * previous values cannot be read. */
int fl_fault_undo_record(struct fl_fault *f, char *buf, size_t cap, struct rs_err *err) RS_WUR;

/* Injects.  Reads the previous values itself when fl_fault_undo_record was
 * not called since the last revert.  Returns 0 or -errno with a message. */
int fl_fault_apply(struct fl_fault *f, struct rs_err *err) RS_WUR;

/* Proves the fault took effect (see the families above).  Returns 0, or
 * -errno with a message that says what was read (-EPROTO when the target
 * answered but shows no effect). */
int fl_fault_verify(struct fl_fault *f, struct rs_err *err) RS_WUR;

/* Restores the previous values; a no-op when not applied (idempotent).
 * Returns 0 or -errno with a message (the fault then stays applied, so a
 * second revert tries again). */
int fl_fault_revert(struct fl_fault *f, struct rs_err *err) RS_WUR;

/* True between a successful apply and a successful revert. */
bool fl_fault_applied(const struct fl_fault *f);

/* Reverts from an undo record alone (what fl_fault_undo_record wrote); no
 * fault object, no event loop.  Idempotent: reverting twice, or a fault
 * whose target is gone, is fine.  `said` (may be NULL) gets one line for
 * people, e.g. "reverted jitter on pid 1234 service (control
 * /tmp/x/ctl): jitter on again" or "nothing to undo for cache flush on
 * pid 1234 service".  Returns 0, -EINVAL for a record this version cannot
 * read, or -errno with a message when reverting failed. */
int fl_fault_revert_undo_msg(const char *undo_json, char *said, size_t said_cap,
			     struct rs_err *err) RS_WUR;

/* The same without the message. */
int fl_fault_revert_undo(const char *undo_json, struct rs_err *err) RS_WUR;

/* ---- process identity (undo records, recover) -------------------------- */

/* The start time of process pid, in clock ticks since boot (field 22 of
 * /proc/PID/stat): with the pid it names one process even after the pid is
 * reused.  0 or -errno (-ESRCH when there is no such process), *ticks = 0
 * on failure. */
int fl_proc_start_time(pid_t pid, uint64_t *ticks);

/* True when process pid exists and, when start_ticks is not 0, started at
 * start_ticks (the same process, not a reuse of its pid). */
bool fl_proc_alive(pid_t pid, uint64_t start_ticks);

/* ---- private: for the files in injectors/ only ------------------------------ */

/* One family's operations.  f's cfg and t are filled and copied before
 * any of them runs; priv points to priv_size zeroed bytes. */
struct fl_injector_ops {
	enum fl_fault_family family;
	const char *name;
	size_t priv_size;
	int (*check)(const struct fl_fault *f, struct rs_err *err); /* fl_fault_new */
	int (*prepare)(struct fl_fault *f, struct rs_err *err);
	int (*snapshot)(struct fl_fault *f, struct rs_err *err); /* read previous values */
	int (*undo)(struct fl_fault *f, char *buf, size_t cap);	 /* after snapshot */
	int (*apply)(struct fl_fault *f, struct rs_err *err);
	int (*verify)(struct fl_fault *f, struct rs_err *err);
	int (*revert)(struct fl_fault *f, struct rs_err *err);
	/* undo is the parsed record (a cJSON object, borrowed). */
	int (*revert_undo)(const void *undo, char *said, size_t cap, struct rs_err *err);
};

struct fl_fault {
	const struct fl_injector_ops *ops;
	struct fl_fault_cfg cfg;
	struct fl_target_info t;
	struct fl_client_hooks hooks;
	bool has_hooks;
	bool snapped; /* previous values read for the next apply */
	bool applied;
	char identity[128]; /* t.identity, or built from the pid */
	void *priv;
};

extern const struct fl_injector_ops fl__jitter_ops, fl__cache_ops, fl__capacity_ops;

/* Helpers shared by the families. */
uint64_t fl__timeout(const struct fl_fault *f);
/* GET/POST url with a timeout; 0 only for status 200 (else -EPROTO with the
 * status and the body's first line in err); body into buf. */
int fl__http(const char *method, const char *url, uint64_t timeout_ns, char *buf, size_t cap,
	     const char *what, struct rs_err *err) RS_WUR;
/* Reads number `key` from a flat JSON object body; 0 or -EPROTO. */
int fl__json_number(const char *body, const char *key, double *out) RS_WUR;
/* Appends a JSON string (escaped, quoted) to buf at *len; false when it
 * does not fit. */
bool fl__json_str(char *buf, size_t cap, size_t *len, const char *s);
/* Appends printf output to buf at *len; false when it does not fit. */
bool fl__json_fmt(char *buf, size_t cap, size_t *len, const char *fmt, ...) RS_PRINTF(4, 5);
/* The identity of the process of `role` ("service" or "dependency") for
 * messages and undo records: t.identity for the service when given, else
 * "pid N ROLE", else ROLE.  Writes into buf; returns buf. */
const char *fl__identity(const struct fl_fault *f, const char *role, char *buf, size_t cap);
/* Writes the common head of an undo record: {"v":1,"family":..,"action":..,
 * "target":IDENTITY,"pid":PID,"pid_start":TICKS (no closing brace) for the
 * process of `role`; false when it does not fit. */
bool fl__undo_head(const struct fl_fault *f, const char *role, char *buf, size_t cap, size_t *len);

#endif
