/* faultline-target's configuration: defaults, one JSON file, and flags.
 *
 * Sources are applied in order onto the defaults: the JSON file given with
 * --config, then the flags in the order they appear.  Every flag is a
 * shorthand for "--set PATH=VALUE" (e.g. --port 0 is --set listen.port=0),
 * and every --set goes through the same checks as the file, so a value has
 * one meaning wherever it comes from.  Errors name the source (the file, or
 * the flag), the key path and the reason, e.g.
 *   target.json: retry.base: '10' has no unit (write 10ms, 10s, ...)
 *   target.json:3:14: malformed JSON
 *   --set: budget.ratio: must be in [0, 1], got 1.5
 * and faultline-target exits with status 2.
 *
 * The file (all keys optional; unknown keys and wrong types are errors;
 * durations are strings with a unit, "250ms"; ratios are numbers in [0, 1]
 * or percentages "40%"):
 *
 *   role            "service" | "dependency"
 *   seed            integer: seeds every random choice (jitter, shedding)
 *   data_dir        string: where item-<id> files live (service)
 *   listen          { host (IPv4/IPv6 literal, default "127.0.0.1"),
 *                     port (0 = any free port), admin_port (0 = any; the
 *                     admin port always binds 127.0.0.1) }
 *   dependency      the service's dependency: { host, port (required for
 *                     the service), connections (pool size, 256), queue
 *                     (requests waiting for a connection, 1024),
 *                     timeout (per attempt, "100ms") }
 *   request         { deadline (whole request incl. retries, "1s"),
 *                     max_in_flight (item requests held at once, 4096),
 *                     max_item_bytes (largest item file, 65536) }
 *   cache           { capacity (entries, 10000), max_bytes (0 = no bound),
 *                     ttl ("60s") }
 *   defenses        { breaker, budget, jitter, shed, detector, coalesce }:
 *                     booleans, all true by default; false removes the
 *                     mechanism (see service.h for what each one means)
 *   breaker         { consecutive_failures (5), failure_rate (0.5),
 *                     slow_rate (0 = off), slow_call ("0s"),
 *                     window ("count" | "time"), window_size (20),
 *                     window_length ("10s"), window_buckets (10),
 *                     minimum_calls (10), wait ("1s"), wait_multiplier (1),
 *                     wait_max ("0s" = no cap), wait_jitter (0),
 *                     half_open_calls (3), half_open_failure_rate (0 = as
 *                     failure_rate), emergency_threshold (0 = off) }
 *   retry           { attempts (3, first included), metastable_attempts (1),
 *                     backoff ("none"|"full"|"equal"|"decorrelated"|
 *                     "proportional", "full"), base ("10ms"), cap ("1s"),
 *                     multiplier (2), health_factor_min (1),
 *                     health_factor_max (10), error_rate_threshold (0.5),
 *                     metastable_penalty (2), max_delay ("2s") }
 *   budget          { kind ("ratio"|"ttl"|"throttle"), ratio (0.1),
 *                     window ("10s"), min_requests (10), buckets (10),
 *                     ttl ("10s"), min_retries_per_sec (10),
 *                     percent_can_retry (0.2), max_tokens (10),
 *                     token_ratio (0.1) }
 *   bulkhead        { max_concurrent (64), max_queue (256), max_wait ("50ms") }
 *   shed            { thresholds ([0.5, 0.7, 0.85]), fractions ([0, 0.1, 0.3,
 *                     0.7]), mix_window (1024), queue_limit (1024: pending
 *                     item requests that read as full pressure),
 *                     latency_target ("250ms"), cpu (false: use the
 *                     process's CPU as a load signal) }
 *   detector        { period ("100ms"), alpha (0.1), min_baseline_samples
 *                     (10), exit_periods (10), trigger_clear ("3s"),
 *                     load_band (0.2), goodput_fraction (0.9),
 *                     retry_budget (0.2), k (3), exit_k (3),
 *                     latency_factor (2), latency_floor ("100ms"),
 *                     error_rate_threshold (0.05), throughput_fraction (0.5),
 *                     resource_threshold (0.9), queue_min (1000),
 *                     queue_factor (5) }
 *   coalesce        { capacity (keys in flight, 4096) }
 *   idempotency     { capacity (65536), ttl ("10m"), key_max (256) }
 *   uring           { entries (64) }
 *   workers         the dependency role: { count (4), service_time ("2ms"),
 *                     queue (100000), factor (1: capacity multiplier) }
 *
 * Threads: none of this keeps state; call it from main before any loop.
 */
#ifndef FAULTLINE_TARGET_CONFIG_H
#define FAULTLINE_TARGET_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resilience/breaker.h"
#include "resilience/budget.h"
#include "resilience/bulkhead.h"
#include "resilience/detector.h"
#include "resilience/err.h"
#include "resilience/retry.h"
#include "resilience/shed.h"

#define FL_TARGET_HOST_MAX 64
#define FL_TARGET_PATH_MAX 1024

enum fl_target_role {
	FL_ROLE_NONE = 0,
	FL_ROLE_SERVICE = 1,
	FL_ROLE_DEPENDENCY = 2,
};

/* Everything a role reads.  The embedded core option structs are complete
 * except for the fields the role fills in itself (name, alloc, control,
 * callbacks, seed), so they are passed to rs_*_new as they are. */
struct fl_target_config {
	enum fl_target_role role;
	uint64_t seed;
	char data_dir[FL_TARGET_PATH_MAX];
	char host[FL_TARGET_HOST_MAX]; /* http listen host */
	int port;		       /* 0..65535 */
	int admin_port;		       /* 0..65535, always on 127.0.0.1 */

	struct {
		char host[FL_TARGET_HOST_MAX];
		int port; /* 0 = not set (the service refuses to start) */
		uint32_t connections;
		uint32_t queue;
		uint64_t timeout_ns; /* per attempt */
	} dependency;

	struct {
		uint64_t deadline_ns;
		uint32_t max_in_flight;
		uint64_t max_item_bytes;
	} request;

	struct {
		uint64_t capacity;
		uint64_t max_bytes;
		uint64_t ttl_ns;
	} cache;

	struct {
		bool breaker, budget, jitter, shed, detector, coalesce;
	} defenses;

	struct rs_breaker_opts breaker;
	struct rs_retry_opts retry; /* includes the backoff */
	struct rs_budget_opts budget;
	struct rs_bulkhead_opts bulkhead;

	struct {
		struct rs_shed_tiers tiers;
		uint32_t mix_window;
		uint64_t queue_limit;
		uint64_t latency_target_ns;
		bool cpu;
	} shed;

	/* Fields of every form; the service copies it once per form. */
	struct rs_detector_opts detector;

	struct {
		uint64_t capacity;
	} coalesce;

	struct {
		uint64_t capacity;
		uint64_t ttl_ns;
		uint64_t key_max;
	} idempotency;

	struct {
		uint32_t entries;
	} uring;

	struct {
		uint32_t count;
		uint64_t service_time_ns;
		uint64_t queue;
		double factor;
	} workers;

	/* The file given with --config ("" when none): errors found after
	 * parsing (by fl_target_config_check) name it. */
	char source[FL_TARGET_PATH_MAX];
};

/* What the command line asks for. */
enum fl_target_mode {
	FL_MODE_RUN = 0,   /* run the role */
	FL_MODE_CHECK = 1, /* --check: validate the configuration and exit 0 */
	FL_MODE_INIT = 2,  /* --init-data DIR --items N */
	FL_MODE_HELP = 3,  /* --help */
};

struct fl_target_args {
	enum fl_target_mode mode;
	const char *init_dir; /* borrowed from argv */
	uint64_t items;
};

/* Fills *c with the defaults listed above (role none). */
void fl_target_config_default(struct fl_target_config *c);

/* Applies a JSON document (text, len bytes; need not be NUL-terminated)
 * onto *c.  `source` names it in errors (the file name).  Returns 0, or
 * -EINVAL with "<source>:<line>:<col>: malformed JSON" or "<source>: <key
 * path>: <reason>" in err; *c may be partly updated on error.  -ENOMEM when
 * cJSON cannot allocate. */
int fl_target_config_apply_json(struct fl_target_config *c, const char *source, const char *text,
				size_t len, struct rs_err *err) RS_WUR;

/* Reads the file at path and applies it (above), recording the path as
 * c->source.  -errno with "<path>: cannot read: <reason>" when it cannot be
 * read. */
int fl_target_config_load(struct fl_target_config *c, const char *path, struct rs_err *err) RS_WUR;

/* Applies one "key.path=value" assignment: value is read as JSON when it
 * parses as JSON (1, true, "x", [1,2]) and as a string otherwise (250ms,
 * service).  Errors read "--set: <key.path>: <reason>". */
int fl_target_config_set(struct fl_target_config *c, const char *assignment,
			 struct rs_err *err) RS_WUR;

/* Cross-field checks and a dry run of every core constructor with these
 * options (so a bad combination is refused at start, not later): returns
 * 0 or -EINVAL with "<source>: <section>: <reason>".  Does not touch the
 * file system or the network. */
int fl_target_config_check(const struct fl_target_config *c, struct rs_err *err) RS_WUR;

/* Parses the command line (argv[0] is skipped) into *a and *c: defaults,
 * then --config, then the other flags in order, then
 * fl_target_config_check when the mode is RUN or CHECK.  Returns 0, or
 * -EINVAL with a message for a bad flag or configuration (exit 2). */
int fl_target_args_parse(struct fl_target_args *a, struct fl_target_config *c, int argc,
			 char **argv, struct rs_err *err) RS_WUR;

/* The usage text (static). */
const char *fl_target_usage(void);

/* Parses a duration string: one or more <number><unit> parts, units ns, us,
 * ms, s, m, h ("250ms", "1.5s", "1m30s").  A bare number, a sign or an
 * unknown unit is an error.  Returns 0 with *ns set, or -EINVAL with the
 * reason in why (why_len bytes). */
int fl_target_duration_parse(const char *s, uint64_t *ns, char *why, size_t why_len) RS_WUR;

/* "service", "dependency", or "none". */
const char *fl_target_role_name(enum fl_target_role r);

#endif
