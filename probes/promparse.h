/* A parser of the Prometheus text exposition format (0.0.4), and a selector
 * that picks one number out of an exposition.
 *
 * Parsing.  fl_prom_parse walks the text line by line and hands every
 * sample (metric name, labels, value, optional timestamp) to a visitor.  It
 * tolerates what real exporters write: "# HELP" and "# TYPE" lines and any
 * other comment, blank lines, CRLF line ends, a last line without a newline,
 * spaces or tabs between tokens, a trailing comma in the label set
 * (Micrometer writes `{name="a",state="open",}`), values such as `1.0`,
 * `1e3`, `NaN`, `+Inf`, `-Inf`, and timestamps (read, not interpreted).  It
 * is strict about the rest and stops at the first malformed line with
 * -EBADMSG and "line N: reason": bad metric or label names, a missing '=' or
 * quote, unterminated values, escapes other than \\ \" \n, duplicate label
 * names, a value that is not a number, text after the timestamp, and a TYPE
 * that names no known type.  A line may hold at most FL_PROM_MAX_LABELS
 * labels and FL_PROM_SCRATCH bytes of names and values.  Nothing is
 * allocated.
 *
 * Selecting.  fl_prom_select finds the series of one metric whose labels
 * include the given ones (exact values; labels not given are ignored) and
 * returns its value, or combines several (sum, max, min, mean).
 *
 * Dialects.  When the exposition has no series of the metric asked for,
 * the selector reads the equivalent series that Resilience4j (Micrometer or
 * resilience4j-prometheus) and Envoy export, so a target built on those is
 * probed with the core's names (DESIGN.md section 6):
 *
 *   asked for (core)                      read instead                           labels
 *   ------------------------------------  -------------------------------------  ----------------------
 *   resilience_breaker_state              resilience4j_circuitbreaker_state      name -> name
 *     the series whose value is 1 gives the state label, mapped to the core's numbers:
 *     closed 0, half_open 1, open 2, forced_open 4, disabled 5, metrics_only 5
 *   resilience_retries_total              envoy_cluster_upstream_rq_retry        name -> envoy_cluster_name
 *     {outcome="retry"} (required)          (counter of retries)
 *   resilience_retries_total              envoy_cluster_upstream_rq_retry_overflow
 *     {outcome="budget_denied"} (req.)      (retries the budget or breaker denied)  name -> envoy_cluster_name
 *   resilience_retry_budget_denied_total  envoy_cluster_upstream_rq_retry_overflow  name -> envoy_cluster_name
 *   resilience_retry_budget_exhausted     envoy_cluster_circuit_breakers_default_rq_retry_open
 *                                           (1 while the retry budget is exhausted) name -> envoy_cluster_name
 *
 * A label asked for that a rule does not rename is matched under its own
 * name; a rule whose required label is missing or different does not apply
 * (resilience_retries_total without outcome has no Envoy equivalent).  When
 * the core's own series are present they always win.
 *
 * Threads: no state; any thread.
 */
#ifndef FAULTLINE_PROBES_PROMPARSE_H
#define FAULTLINE_PROBES_PROMPARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resilience/err.h"

#define FL_PROM_MAX_LABELS 32
#define FL_PROM_SCRATCH	   4096 /* bytes of names and unescaped values per line */

struct fl_prom_label {
	const char *name;  /* NUL-terminated */
	const char *value; /* NUL-terminated, unescaped */
};

/* One sample line.  Every pointer is borrowed and valid only during the
 * visitor call. */
struct fl_prom_sample {
	const char *name; /* metric name, NUL-terminated */
	const struct fl_prom_label *labels;
	size_t nlabels;
	double value;
	bool has_timestamp;
	int64_t timestamp_ms;
	unsigned line; /* 1-based line number */
};

/* Returns 0 to go on; anything else stops the walk and is returned by
 * fl_prom_parse. */
typedef int (*fl_prom_visit)(void *ctx, const struct fl_prom_sample *s);

/* Walks len bytes of text (borrowed; need not be NUL-terminated), calling
 * visit for every sample in order.  Returns 0 when the whole text was read,
 * the visitor's non-zero value when it stopped the walk, or -EBADMSG with
 * "line N: reason" in err at the first malformed line (the samples before
 * it have been visited). */
int fl_prom_parse(const char *text, size_t len, fl_prom_visit visit, void *ctx,
		  struct rs_err *err) RS_WUR;

/* The value of label `name` in s, or NULL. */
const char *fl_prom_label(const struct fl_prom_sample *s, const char *name);

/* ---- selecting ------------------------------------------------------------ */

enum fl_prom_combine {
	FL_PROM_ONE, /* exactly one series must match (several is an error) */
	FL_PROM_SUM, /* sum over every matching series */
	FL_PROM_MAX,
	FL_PROM_MIN,
	FL_PROM_MEAN,
};

enum fl_prom_dialect {
	FL_PROM_NATIVE,	      /* the metric as asked for */
	FL_PROM_RESILIENCE4J, /* resilience4j_* through the table above */
	FL_PROM_ENVOY,	      /* envoy_cluster_* through the table above */
};

struct fl_prom_selector {
	const char *metric;	   /* required; borrowed */
	const char *const *labels; /* "k", "v", ..., NULL: exact matches; NULL for none */
	enum fl_prom_combine combine;
	bool native_only; /* true: never read a dialect's names */
};

struct fl_prom_match {
	double value;
	size_t matched;		      /* series combined into value */
	enum fl_prom_dialect dialect; /* whose names were read */
	const char *series;	      /* the metric name read (static or sel->metric) */
};

/* Selects from len bytes of text.  Returns 0 with out filled; -ENOENT when
 * no series matches ("no series resilience_breaker_state{name=\"x\"} in
 * the exposition"); -ENOTUNIQ when FL_PROM_ONE finds several (the message
 * says how many); -EBADMSG for a malformed line (as fl_prom_parse);
 * -EINVAL for a bad selector or a Resilience4j state it does not know. */
int fl_prom_select(const char *text, size_t len, const struct fl_prom_selector *sel,
		   struct fl_prom_match *out, struct rs_err *err) RS_WUR;

/* The core's number for a Resilience4j state name (case-insensitive), or
 * -1 when unknown. */
int fl_prom_r4j_state(const char *state);

#endif
