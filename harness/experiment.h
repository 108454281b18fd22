/* Experiments (format version 1): parse, validate, and build the model the
 * runner executes.  experiments/README.md documents every field and
 * experiments/schema.json is the JSON Schema; both are kept in step with the
 * spec tables here by tests/test_experiment.c.
 *
 * Loading is all-or-nothing: fl_experiment_load either returns a complete,
 * consistent model (every reference resolved, every time computed) or
 * reports every problem it found (up to FL_DIAG_MAX) into a struct fl_diag,
 * each as "FILE:LINE:COL: JSON.PATH: reason".  There is no warning-only
 * mode.
 *
 * Time.  Every offset in the model is nanoseconds from `start`, the moment
 * the load generator starts (CLOCK_MONOTONIC at run time).  The plan:
 *
 *   start ─ warmup ─┬─ baseline (steady_window) ─┬─ method ... ─ last action ends
 *                   warmup_ns                    steady_ns
 *   ─ recovery ─┬─ final steady-state window ─┬ end
 *               final_ns                      end_ns
 *
 * The baseline window exists when there are steady-state checks (otherwise
 * steady_ns == warmup_ns).  Actions may not start before steady_ns; the
 * load runs for load.duration (or, when absent, exactly as long as the plan
 * needs: last action end + recovery + final window).
 *
 * Variables.  "${name}" in string values is replaced when the experiment is
 * loaded, from (first match wins) --var name=value, the environment, and
 * the experiment's `variables` defaults.  The late variables ${port},
 * ${admin_port}, ${dependency_port} and ${dependency_admin_port} are the
 * ports the target announces when it starts; they stay in the model as
 * written, only in fields that allow them (URLs, argv, env), and the runner
 * resolves them with fl_expand_late.  Load-generator template variables
 * (${seq}, ${uuid}, ${rand:A:B}, ${zipf:N:S}) stay as written in
 * load.request fields.  "$$" is a literal '$' (kept as "$$" in template
 * fields, whose own syntax reads it).
 *
 * Ownership: everything reachable from a struct fl_experiment is owned by it
 * and freed by fl_experiment_free.  A model is immutable after loading and
 * may be read from any thread.
 */
#ifndef FAULTLINE_EXPERIMENT_H
#define FAULTLINE_EXPERIMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "harness/families.h"
#include "harness/json.h"
#include "harness/params.h"
#include "resilience/alloc.h"
#include "resilience/backoff.h"
#include "resilience/err.h"

#define FL_EXPERIMENT_VERSION 1

/* Upper bounds the validator enforces (each refusal is a located error). */
#define FL_MAX_ACTIONS	   256
#define FL_MAX_EXPECTS	   256
#define FL_MAX_PROBES	   256
#define FL_MAX_VARIABLES   256
#define FL_MAX_PLAN_EVENTS 100000     /* repeats included */
#define FL_MAX_EXPANDED	   65536      /* bytes of one string after ${} substitution */
#define FL_MAX_EXPANSION   (1u << 24) /* bytes substituted in one experiment */

/* "t not known before the run": an expectation's event. */
#define FL_T_DYNAMIC UINT64_MAX

/* Variables from the command line.  Borrowed for the duration of the call. */
struct fl_vars {
	const char *const *set; /* "name=value" strings (--var), nset of them */
	size_t nset;
	bool no_env; /* true: do not read the environment (tests, fuzzing) */
};

/* A resolved variable, for the journal. */
struct fl_var {
	const char *name, *value;
	const char *source; /* "--var", "environment" or "default" */
};

/* ---- target ----------------------------------------------------------- */

/* One process of the target: the service under test, or its dependency. */
struct fl_target_proc {
	bool present;
	const char *const *argv; /* NULL-terminated; NULL when not started by faultline */
	size_t argc;
	bool announce;		/* argv prints "listening http=... admin=..." (late vars) */
	const char *url;	/* base URL (may hold late variables) */
	const char *admin;	/* admin base URL, or NULL when there is none */
	const char *metrics;	/* path of the metrics endpoint on url */
	const char *const *env; /* "NAME=value" strings, nenv of them (late vars allowed) */
	size_t nenv;
	const char *cwd;	/* NULL: the experiment file's directory */
	const char *control;	/* control block path to use, or NULL (the runner makes one) */
	const char *ready_path; /* GET this on url until ready_status */
	int ready_status;
	uint64_t ready_timeout_ns, ready_interval_ns;
	uint64_t stop_timeout_ns; /* SIGTERM, then SIGKILL after this */
	const struct fl_json *node;
};

/* ---- load ------------------------------------------------------------- */

struct fl_load_spec {
	const char *url;	    /* base URL, default target.url (late variables allowed) */
	const char *method;	    /* request */
	const char *path;	    /* a template */
	const char *const *headers; /* "Name: value" templates, nheaders of them */
	size_t nheaders;
	const char *body; /* template or NULL */
	double rate;	  /* requests/s; 0 = closed loop */
	uint32_t connections;
	uint64_t duration_ns; /* == the experiment's end_ns */
	uint64_t timeout_ns, deadline_ns, drain_ns;
	uint32_t retry_attempts;
	enum rs_backoff_strategy retry_backoff;
	uint64_t retry_base_ns, retry_cap_ns;
	double retry_multiplier;
	bool budget;
	double budget_ratio;
	uint64_t budget_window_ns;
	uint64_t seed; /* load.seed, or derived from the experiment's seed */
};

/* ---- probes, checks, actions, expectations --------------------------- */

/* A probe the runner samples every cadence.  Named probes (the `probes`
 * section), inline ones and "client.<metric>" shorthands each get one. */
struct fl_probe {
	const char *name; /* the `probes` key, "client.<metric>", or a generated one */
	const struct fl_family *family;
	struct fl_params params; /* family->spec's values */
	const struct fl_json *node;
};

enum fl_cmp { FL_CMP_EQ, FL_CMP_NE, FL_CMP_LT, FL_CMP_LE, FL_CMP_GT, FL_CMP_GE };

struct fl_pred {
	enum fl_cmp op;
	double value; /* durations in seconds, percentages as fractions */
};

/* How a window of samples becomes one number.  NONE: every sample must
 * satisfy the predicate. */
enum fl_agg {
	FL_AGG_NONE,
	FL_AGG_MAX,
	FL_AGG_MIN,
	FL_AGG_MEAN,
	FL_AGG_P50,
	FL_AGG_P99,
	FL_AGG_RATE,
	FL_AGG_DELTA,
	FL_AGG_LAST,
};

/* What a check or expectation looks at: one probe, or the ratio of two
 * probes' increases over the window (delta(num) / delta(den)). */
struct fl_valref {
	size_t probe; /* index into fl_experiment.probes */
	bool ratio;
	size_t probe2; /* the denominator when ratio */
};

/* A steady-state check or an abort condition: the predicate must hold.  An
 * abort stops the run when its predicate has been false for for_ns. */
struct fl_check {
	const char *name; /* as written, or generated ("client.error_rate <= 0.01") */
	struct fl_valref value;
	struct fl_pred pred;
	enum fl_agg agg;
	uint64_t for_ns; /* abort only */
	const struct fl_json *node;
};

struct fl_action {
	const char *name;	   /* [a-z0-9][a-z0-9-]*, unique */
	uint64_t start_ns, end_ns; /* end == start for an instantaneous action */
	uint64_t repeat_ns;	   /* 0: applied once */
	const struct fl_family *family;
	struct fl_params params; /* family->spec's values */
	size_t index;		 /* its position in the file's method array */
	const struct fl_json *node;
};

enum fl_event_kind {
	FL_EV_START,
	FL_EV_STEADY,
	FL_EV_END,
	FL_EV_ACTION_START,
	FL_EV_ACTION_END,
	FL_EV_EXPECT, /* the first transition of expectation `index` */
};

struct fl_event {
	enum fl_event_kind kind;
	size_t index;  /* action or expectation */
	uint64_t t_ns; /* FL_T_DYNAMIC for FL_EV_EXPECT */
};

enum fl_expect_kind { FL_EXP_BECOMES, FL_EXP_HOLDS, FL_EXP_NEVER, FL_EXP_RECOVERS, FL_EXP_ORDER };

/* A window of the run: [from, from + for_ns], or [from, until] when
 * until_set, or the whole run [start, end]. */
struct fl_window {
	struct fl_event from;
	bool until_set;
	struct fl_event until;
	uint64_t for_ns; /* when !until_set: 0 = up to end */
};

struct fl_expect {
	const char *name; /* unique */
	enum fl_expect_kind kind;
	struct fl_valref value;	       /* not for recovers/order */
	struct fl_pred pred;	       /* becomes, holds (max: LE, min: GE), never */
	enum fl_agg agg;	       /* holds */
	struct fl_event after;	       /* becomes, recovers */
	uint64_t within_ns;	       /* becomes, recovers */
	uint64_t settle_ns;	       /* recovers */
	struct fl_window window;       /* holds, never */
	struct fl_event first, second; /* order */
	const struct fl_json *node;
};

/* ---- the plan ---------------------------------------------------------- */

enum fl_plan_kind {
	FL_PLAN_WARMUP_END,    /* warm-up over, baseline window begins */
	FL_PLAN_BASELINE,      /* check steady state over the baseline window */
	FL_PLAN_ACTION_START,  /* apply + verify action `action` */
	FL_PLAN_ACTION_REPEAT, /* apply it again (repeat) */
	FL_PLAN_ACTION_END,    /* revert it; a repeated instantaneous fault: its repeats end.
				  An action without `for` has no END event (its end is its start) */
	FL_PLAN_RECOVERY,      /* last action over: recovery window begins */
	FL_PLAN_FINAL_WINDOW,  /* final steady-state window begins */
	FL_PLAN_END,	       /* stop load, final check, verdicts */
};

struct fl_plan_event {
	uint64_t t_ns;
	enum fl_plan_kind kind;
	size_t action; /* ACTION_* only */
};

struct fl_settings {
	uint64_t cadence_ns;
	uint64_t warmup_ns;
	uint64_t steady_window_ns;
	uint64_t recovery_ns;
};

struct fl_experiment {
	const char *file;   /* as given to load */
	const char *source; /* the file's bytes (NUL-terminated), for the journal */
	size_t source_len;
	const char *title, *description;
	const char *const *tags;
	size_t ntags;
	uint64_t seed;
	struct fl_var *vars;
	size_t nvars;
	struct fl_settings settings;
	struct fl_target_proc service, dependency;
	struct fl_load_spec load;
	struct fl_probe *probes;
	size_t nprobes;
	struct fl_check *steady;
	size_t nsteady;
	struct fl_action *actions; /* sorted by start_ns (file order breaks ties) */
	size_t nactions;
	struct fl_expect *expects; /* file order */
	size_t nexpects;
	struct fl_check *aborts;
	size_t naborts;
	struct fl_plan_event *plan; /* sorted by t_ns */
	size_t nplan;
	uint64_t warmup_ns, steady_ns, method_end_ns, final_ns, end_ns;

	/* Private. */
	struct fl_arena arena;
	struct fl_json_doc *doc;
};

/* Reads, parses and validates the experiment at `path`.  vars may be NULL
 * (no --var; the environment is read).  Returns 0 with *out set
 * (caller-frees with fl_experiment_free); -EINVAL when the file is not a
 * valid experiment (every problem in diag); -ENOENT, -EISDIR, -EACCES, ...
 * when it cannot be read, -EFBIG when larger than FL_JSON_MAX_BYTES (one
 * message in diag naming the path); -ENOMEM.  diag must have been
 * initialised (fl_diag_init) with the name to print, usually path.  The
 * path "-" reads standard input. */
int fl_experiment_load(const char *path, const struct fl_vars *vars, struct fl_experiment **out,
		       struct fl_diag *diag) RS_WUR;

/* The same on len bytes of buf (borrowed; copied).  `name` labels the input
 * (borrowed; must outlive the model); alloc may be NULL (libc; borrowed,
 * must outlive the model). */
int fl_experiment_parse(const char *name, const char *buf, size_t len, const struct fl_vars *vars,
			const struct rs_alloc *alloc, struct fl_experiment **out,
			struct fl_diag *diag) RS_WUR;

/* Frees a model; accepts NULL. */
void fl_experiment_free(struct fl_experiment *x);

/* Writes the event as written in experiments ("start", "dep-loss.end",
 * "breaker opens") into buf; returns buf. */
char *fl_event_format(const struct fl_experiment *x, const struct fl_event *ev, char *buf,
		      size_t size);

/* Prints the plan, one event a line with its offset ("  10s  dep-loss
 * starts (capacity)"), for --dry-run. */
void fl_experiment_print_plan(const struct fl_experiment *x, FILE *f);

/* ---- late variables ------------------------------------------------------ */

struct fl_ports {
	int port, admin_port;			    /* the service's; 0 = unknown */
	int dependency_port, dependency_admin_port; /* the dependency's; 0 = unknown */
};

/* Replaces the late variables in s with the announced ports, copying
 * everything else (template variables, "$$") as is.  Returns the length
 * written to buf (NUL-terminated); -ENOSPC when buf is too small; -EINVAL
 * with a message when a port is still unknown. */
int fl_expand_late(const char *s, const struct fl_ports *ports, char *buf, size_t size,
		   struct rs_err *err) RS_WUR;

/* ---- the format's reference ------------------------------------------------ */

/* Every object of the format with its keys (family objects included), for
 * the documentation and schema consistency tests and `faultline list`:
 * writes up to cap of them to out and returns how many there are. */
size_t fl_experiment_specs(const struct fl_obj_spec **out, size_t cap);

#endif
