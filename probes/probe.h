/* Probes: one family per file behind one ops table, sampled on the runner's
 * libuv loop.
 *
 * A probe yields, each time it is sampled, one timestamped number or a
 * failure with its reason.  Families (DESIGN.md section 5):
 *   prometheus  GET a text exposition, select a series (probes/promparse.h:
 *               name, exact labels, combine; Resilience4j and Envoy names
 *               read through the core's), as a gauge, a rate or a delta
 *   http        request a URL: ok (status, body regex, header regexes), the
 *               status, the latency, or a number from a header
 *   command     run argv (never a shell): exit status, the first number on
 *               stdout, a regex match or its first group
 *   client      the load generator's own view (struct fl_client_source)
 *
 * A probe that cannot reach its endpoint, or whose answer does not contain
 * what it looks for, yields a FAILED SAMPLE (status -errno, a lowercase
 * reason in why), never an error of the harness: only fl_probe_open refuses
 * a configuration.
 *
 * Lifecycle:
 *   fl_probe_open     copies the configuration and checks it (URLs parse,
 *                     regexes compile, the client source exists).
 *   fl_probe_sample   starts one sample; the callback follows exactly once,
 *                     never inside this call.  One sample at a time per
 *                     probe: -EBUSY while the previous one runs.
 *   fl_probe_close    cancels a sample in flight (its callback is called
 *                     with -ECANCELED, from inside fl_probe_close), releases
 *                     everything (a command probe's child is SIGKILLed by
 *                     its pid and reaped first), then calls `closed`.  Run
 *                     the loop until then.
 *
 * Threads: a probe belongs to the loop of its env; every call, and every
 * callback, is on that loop's thread.
 *
 * Ownership: fl_probe_open copies everything in the configuration (strings
 * and arrays); the env is borrowed and must outlive the probe.  Samples
 * passed to callbacks are borrowed for the duration of the call.
 */
#ifndef FAULTLINE_PROBES_PROBE_H
#define FAULTLINE_PROBES_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "probes/promparse.h"
#include "resilience/err.h"

#define FL_PROBE_WHY_MAX 120
/* stdout bytes a command probe keeps; the rest is read and dropped. */
#define FL_PROBE_CMD_OUT_MAX 65536
#define FL_PROBE_BODY_MAX    (4u << 20) /* response bodies (http, prometheus) */

enum fl_probe_family {
	FL_PROBE_PROMETHEUS,
	FL_PROBE_HTTP,
	FL_PROBE_COMMAND,
	FL_PROBE_CLIENT,
	FL_PROBE_FAMILIES /* count, not a family */
};

/* How a prometheus probe turns the selected series into a sample.
 *   GAUGE     the value as read.
 *   RATE      a counter's increase per second between this sample and the
 *             previous successful one, over the difference of their now_ns.
 *             The first sample fails with -ENODATA ("no previous sample"):
 *             a rate needs two.  A counter that went down was reset (the
 *             process restarted): its increase is its new value.
 *   DELTA     a counter's increase since the probe's first successful
 *             sample (0 for that first sample), resets handled as for RATE.
 *   INCREASE  a counter's increase since the previous successful sample;
 *             the first sample fails with -ENODATA like RATE.
 * Failed samples (scrape errors) do not move the reference sample. */
enum fl_prom_mode {
	FL_PROM_GAUGE,
	FL_PROM_RATE,
	FL_PROM_DELTA,
	FL_PROM_INCREASE,
};

/* What an http probe's sample yields.  A request that fails (refused,
 * timed out, reset) is a failed sample whatever the value.
 *   OK               1 when the status is as expected, the body matches
 *                    body_regex and every header matches its regex; else 0
 *   STATUS           the HTTP status
 *   LATENCY_SECONDS  from sending the request to the complete response
 *   HEADER_NUMBER    response header `header` read as a number (failed when
 *                    absent or not a number) */
enum fl_http_value {
	FL_HTTP_OK,
	FL_HTTP_STATUS,
	FL_HTTP_LATENCY_SECONDS,
	FL_HTTP_HEADER_NUMBER,
};

/* What a command probe's sample yields.  Except for EXIT, a program that
 * does not exit with 0 is a failed sample ("exited with status 3").
 *   EXIT          the exit status (128 + N when killed by signal N)
 *   NUMBER        the first number on stdout (failed when there is none)
 *   REGEX_MATCH   1 when stdout matches regex, else 0
 *   REGEX_NUMBER  regex's first group read as a number (failed when stdout
 *                 does not match or the group is not a number) */
enum fl_cmd_value {
	FL_CMD_EXIT,
	FL_CMD_NUMBER,
	FL_CMD_REGEX_MATCH,
	FL_CMD_REGEX_NUMBER,
};

/* A probe's configuration; fl_probe_open copies it whole.  Regexes are
 * POSIX extended and line-oriented (REG_EXTENDED | REG_NEWLINE: ^ and $
 * match at every line of a body or of a program's output). */
struct fl_probe_cfg {
	enum fl_probe_family family;
	const char *name; /* for messages; may be NULL */
	/* Per sample; 0: 1 s (prometheus, http), 5 s (command). */
	uint64_t timeout_ns;
	union {
		struct {
			/* The exposition: http://127.0.0.1:PORT/metrics. */
			const char *url;
			const char *metric; /* required */
			/* "k", "v", ..., NULL: exact matches; or NULL. */
			const char *const *labels;
			enum fl_prom_mode mode;
			/* Several matching series: FL_PROM_ONE (the default) makes
			 * that a failed sample; sum = true is combine FL_PROM_SUM. */
			bool sum;
			enum fl_prom_combine combine;
		} prometheus;
		struct {
			const char *url;
			const char *method;	  /* NULL: GET */
			const char *request_body; /* sent as text/plain; NULL: none */
			int expect_status;	  /* 0: any 2xx */
			const char *body_regex;	  /* NULL: any body */
			/* "Name", "regex", ..., NULL: each header must match (OK). */
			const char *const *headers;
			const char *header; /* HEADER_NUMBER: the header to read */
			enum fl_http_value value;
		} http;
		struct {
			/* NULL-terminated; PATH is searched when argv[0] has no '/'. */
			const char *const *argv;
			enum fl_cmd_value value;
			/* REGEX_MATCH, REGEX_NUMBER; with NUMBER it works as
			 * REGEX_NUMBER (the number is its first group). */
			const char *regex;
			/* Extra "NAME=value" strings, NULL-terminated; or NULL. */
			const char *const *env;
			const char *cwd; /* NULL: the harness's */
		} command;
		struct {
			/* Passed verbatim to the source: "error_rate", "latency_p99"... */
			const char *metric;
		} client;
	};
};

/* One sample. */
struct fl_probe_sample {
	/* When it was taken: the now_ns given to fl_probe_sample (CLOCK_MONOTONIC,
	 * the time the request was sent). */
	uint64_t t_ns;
	uint64_t dur_ns;	    /* how long it took (uv_hrtime) */
	double value;		    /* when status == 0; NaN when failed */
	int status;		    /* 0 ok, or a negative errno: failed */
	char why[FL_PROBE_WHY_MAX]; /* lowercase reason when failed, else "" */
};

typedef void (*fl_probe_cb)(void *ctx, const struct fl_probe_sample *s);

/* The load generator's view, provided by the runner.  read() returns 0 and
 * sets *value, or -ENODATA when no interval has completed yet, or another
 * negative errno (-EINVAL: unknown metric).  Metrics: requests, attempts,
 * successes, failures, error_rate, shed_rate, timeouts, latency_p50/p90/
 * p99/p999/max (seconds), throughput, goodput, amplification: rates over the
 * last interval.  Called on the probe's loop. */
struct fl_client_source {
	void *ctx;
	int (*read)(void *ctx, const char *metric, uint64_t now_ns, double *value);
};

/* What probes run on.  Borrowed; must outlive every probe opened with it. */
struct fl_probe_env {
	uv_loop_t *loop;		       /* required */
	const struct fl_client_source *client; /* required by client probes only */
};

struct fl_probe_inst; /* an open probe (struct fl_probe is the experiment's model) */

/* Opens a probe.  Returns 0 with *out set (release with fl_probe_close);
 * -EINVAL with a message naming the probe and the field (bad URL, regex,
 * mode, missing metric or source...); -ENOMEM. */
int fl_probe_open(struct fl_probe_inst **out, const struct fl_probe_cfg *cfg,
		  const struct fl_probe_env *env, struct rs_err *err) RS_WUR;

/* Starts a sample taken at now_ns.  Returns 0: cb(ctx, sample) follows
 * exactly once, never inside this call; -EBUSY: the previous sample is still
 * running (the runner records a failed sample "busy"); -ECANCELED: the
 * probe is closing.  No callback follows an error. */
int fl_probe_sample(struct fl_probe_inst *p, uint64_t now_ns, fl_probe_cb cb, void *ctx) RS_WUR;

/* Closes the probe: a sample in flight is cancelled (its callback runs now,
 * with -ECANCELED); once every handle is closed and every child reaped, the
 * memory is freed and closed(ctx) is called (closed may be NULL).  Accepts
 * NULL; a second call does nothing. */
void fl_probe_close(struct fl_probe_inst *p, void (*closed)(void *ctx), void *ctx);

/* The configuration as copied (borrowed, valid until closed). */
const struct fl_probe_cfg *fl_probe_config(const struct fl_probe_inst *p);

/* ---- the registry ----------------------------------------------------------- */

/* One family's implementation (one per file: prometheus.c, http.c,
 * command.c, client.c), like curl's vtls backends.  The runner does not call
 * these; fl_probe_* does. */
struct fl_probe_family_ops {
	const char *name; /* "prometheus", as experiments write it */
	enum fl_probe_family family;
	uint64_t default_timeout_ns;
	/* Checks the (copied) configuration and sets up the family's state
	 * (fl__probe_set_priv).  0, -EINVAL or -ENOMEM with a message. */
	int (*open)(struct fl_probe_inst *p, struct rs_err *err);
	/* Starts a sample; ends it, now or later, with fl__probe_done.  Every
	 * problem is a failed sample, so it cannot fail. */
	void (*sample)(struct fl_probe_inst *p, uint64_t now_ns);
	/* Stops a sample in flight (fl__probe_done is ignored from now on) and
	 * releases the family's state; calls fl__probe_family_closed once its
	 * handles are closed and children reaped (possibly before returning). */
	void (*close)(struct fl_probe_inst *p);
};

/* The ops of a family, or NULL when out of range. */
const struct fl_probe_family_ops *fl_probe_family_lookup(enum fl_probe_family f);

/* The family called `name` ("prometheus"...); -EINVAL when unknown. */
int fl_probe_family_by_name(const char *name, enum fl_probe_family *out) RS_WUR;

/* ---- for family files only ---------------------------------------------------- */

const struct fl_probe_env *fl__probe_env(const struct fl_probe_inst *p);
void *fl__probe_priv(const struct fl_probe_inst *p);
void fl__probe_set_priv(struct fl_probe_inst *p, void *priv);
/* The probe's timeout: the configuration's, or the family's default. */
uint64_t fl__probe_timeout_ns(const struct fl_probe_inst *p);

/* Ends the sample in flight: status 0 with value, or a negative errno with
 * a reason (printf format; NULL for none).  Called from inside ops->sample,
 * the callback is deferred to the loop. */
void fl__probe_done(struct fl_probe_inst *p, int status, double value, const char *fmt, ...)
    RS_PRINTF(4, 5);

/* The family's state is released (see ops->close). */
void fl__probe_family_closed(struct fl_probe_inst *p);

/* The first number in s (as strtod reads it, starting at a digit, a sign
 * before a digit or '.' before a digit): 0 and *v, or -ENOENT. */
int fl__probe_first_number(const char *s, double *v);

/* Reads all of s (surrounding blanks allowed) as a number: 0 or -EINVAL. */
int fl__probe_number(const char *s, double *v);

extern const struct fl_probe_family_ops fl__probe_prometheus_ops;
extern const struct fl_probe_family_ops fl__probe_http_ops;
extern const struct fl_probe_family_ops fl__probe_command_ops;
extern const struct fl_probe_family_ops fl__probe_client_ops;

#endif
