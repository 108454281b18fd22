/* faultline-target's configuration: see config.h.
 *
 * The JSON reader is table-driven: each section lists its keys with a type,
 * a range and the offset of the field it sets, so an unknown key, a wrong
 * type and a value out of range are refused the same way everywhere, with
 * the key path.  --set builds a one-key JSON object and goes through the
 * same reader. */
#include "target/config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "resilience/clock.h"
#include "resilience/coalesce.h"
#include "resilience/idem.h"

_Static_assert(sizeof(enum fl_target_role) == sizeof(int), "enums are int-sized");
_Static_assert(sizeof(enum rs_window_kind) == sizeof(int), "enums are int-sized");
_Static_assert(sizeof(enum rs_backoff_strategy) == sizeof(int), "enums are int-sized");
_Static_assert(sizeof(enum rs_budget_kind) == sizeof(int), "enums are int-sized");

#define CONFIG_FILE_MAX (1u << 20)

/* ---- durations -------------------------------------------------------------- */

int fl_target_duration_parse(const char *s, uint64_t *ns, char *why, size_t why_len)
{
	static const struct {
		const char *name;
		uint64_t ns;
	} units[] = { { "ns", 1 },
		      { "us", RS_NS_PER_US },
		      { "ms", RS_NS_PER_MS },
		      { "s", RS_NS_PER_SEC },
		      { "m", 60 * RS_NS_PER_SEC },
		      { "h", 3600 * RS_NS_PER_SEC } };
	const char *p = s;
	double total = 0;

	if (!s || !*s) {
		snprintf(why, why_len, "empty duration");
		return -EINVAL;
	}
	if (*s == '-' || *s == '+') {
		snprintf(why, why_len, "signed duration '%s' (durations are >= 0)", s);
		return -EINVAL;
	}
	while (*p) {
		const char *num = p, *u;
		double v = 0, scale = 0.1;
		size_t ulen, i;
		int digits = 0;

		while (*p >= '0' && *p <= '9') {
			v = v * 10 + (*p++ - '0');
			digits++;
		}
		if (*p == '.') {
			p++;
			while (*p >= '0' && *p <= '9') {
				v += (*p++ - '0') * scale;
				scale /= 10;
				digits++;
			}
		}
		if (!digits) {
			snprintf(why, why_len, "'%s' is not a duration (write 250ms, 5s, 1m30s)",
				 s);
			return -EINVAL;
		}
		u = p;
		while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
			p++;
		ulen = (size_t)(p - u);
		if (ulen == 0) {
			snprintf(why, why_len, "'%s' has no unit (write %.*ss, %.*sms, ...)", s,
				 (int)(u - num), num, (int)(u - num), num);
			return -EINVAL;
		}
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strlen(units[i].name) == ulen && strncmp(u, units[i].name, ulen) == 0)
				break;
		if (i == sizeof(units) / sizeof(units[0])) {
			snprintf(why, why_len,
				 "unknown unit '%.*s' in '%s' (units: ns, us, ms, s, m, h)",
				 (int)ulen, u, s);
			return -EINVAL;
		}
		total += v * (double)units[i].ns;
	}
	if (total > 0x1p62) {
		snprintf(why, why_len, "duration '%s' is too long", s);
		return -EINVAL;
	}
	*ns = (uint64_t)total;
	return 0;
}

/* ---- the schema ------------------------------------------------------------ */

enum ftype {
	F_BOOL,
	F_U32,
	F_U64,
	F_INT,
	F_NUM,	 /* double in [min, max] (max_open: [min, max)) */
	F_RATIO, /* double in [0, 1], number or "40%" */
	F_DUR,	 /* uint64_t ns >= min */
	F_STR,	 /* char array of `max` bytes */
	F_ENUM,	 /* int-sized enum, by name */
	F_ARR,	 /* `n` doubles in [min, max] */
};

struct field {
	const char *key;
	enum ftype t;
	size_t off;
	double min, max;
	const char *const *names; /* F_ENUM: names, NULL-terminated; value = index + base */
	int base;
	int n;	      /* F_ARR: elements */
	int max_open; /* F_NUM: max excluded */
};

struct section {
	const char *key; /* NULL: the top level */
	const struct field *fields;
};

#define OFF(f) offsetof(struct fl_target_config, f)

static const char *const role_names[] = { "service", "dependency", NULL };
static const char *const window_names[] = { "count", "time", NULL };
static const char *const backoff_names[] = { "none",	     "full",	     "equal",
					     "decorrelated", "proportional", NULL };
static const char *const budget_names[] = { "ratio", "ttl", "throttle", NULL };

#define U32MAX 4294967295.0
#define U64MAX 18446744073709551615.0

static const struct field top_fields[] = {
	{ "role", F_ENUM, OFF(role), 0, 0, role_names, 1, 0, 0 },
	{ "seed", F_U64, OFF(seed), 0, 9007199254740992.0, NULL, 0, 0, 0 },
	{ "data_dir", F_STR, OFF(data_dir), 1, FL_TARGET_PATH_MAX, NULL, 0, 0, 0 },
	{ NULL, 0, 0, 0, 0, NULL, 0, 0, 0 },
};

static const struct field listen_fields[] = {
	{ "host", F_STR, OFF(host), 1, FL_TARGET_HOST_MAX, NULL, 0, 0, 0 },
	{ "port", F_INT, OFF(port), 0, 65535, NULL, 0, 0, 0 },
	{ "admin_port", F_INT, OFF(admin_port), 0, 65535, NULL, 0, 0, 0 },
	{ NULL, 0, 0, 0, 0, NULL, 0, 0, 0 },
};

static const struct field dependency_fields[] = {
	{ "host", F_STR, OFF(dependency.host), 1, FL_TARGET_HOST_MAX, NULL, 0, 0, 0 },
	{ "port", F_INT, OFF(dependency.port), 1, 65535, NULL, 0, 0, 0 },
	{ "connections", F_U32, OFF(dependency.connections), 1, 1024, NULL, 0, 0, 0 },
	{ "queue", F_U32, OFF(dependency.queue), 1, 1 << 20, NULL, 0, 0, 0 },
	{ "timeout", F_DUR, OFF(dependency.timeout_ns), 1, 0, NULL, 0, 0, 0 },
	{ NULL, 0, 0, 0, 0, NULL, 0, 0, 0 },
};

static const struct field request_fields[] = {
	{ "deadline", F_DUR, OFF(request.deadline_ns), 1, 0, NULL, 0, 0, 0 },
	{ "max_in_flight", F_U32, OFF(request.max_in_flight), 1, 1 << 20, NULL, 0, 0, 0 },
	{ "max_item_bytes", F_U64, OFF(request.max_item_bytes), 1, 1 << 24, NULL, 0, 0, 0 },
	{ NULL, 0, 0, 0, 0, NULL, 0, 0, 0 },
};

static const struct field cache_fields[] = {
	{ "capacity", F_U64, OFF(cache.capacity), 1, 1 << 26, NULL, 0, 0, 0 },
	{ "max_bytes", F_U64, OFF(cache.max_bytes), 0, U64MAX, NULL, 0, 0, 0 },
	{ "ttl", F_DUR, OFF(cache.ttl_ns), 1, 0, NULL, 0, 0, 0 },
	{ NULL, 0, 0, 0, 0, NULL, 0, 0, 0 },
};

static const struct field defenses_fields[] = {
	{ "breaker", F_BOOL, OFF(defenses.breaker), 0, 0, NULL, 0, 0, 0 },
	{ "budget", F_BOOL, OFF(defenses.budget), 0, 0, NULL, 0, 0, 0 },
	{ "jitter", F_BOOL, OFF(defenses.jitter), 0, 0, NULL, 0, 0, 0 },
	{ "shed", F_BOOL, OFF(defenses.shed), 0, 0, NULL, 0, 0, 0 },
	{ "detector", F_BOOL, OFF(defenses.detector), 0, 0, NULL, 0, 0, 0 },
	{ "coalesce", F_BOOL, OFF(defenses.coalesce), 0, 0, NULL, 0, 0, 0 },
	{ NULL, 0, 0, 0, 0, NULL, 0, 0, 0 },
};

static const struct field breaker_fields[] = {
	{ "consecutive_failures", F_U32, OFF(breaker.consecutive_failures), 0, U32MAX, NULL, 0, 0,
	  0 },
	{ "failure_rate", F_RATIO, OFF(breaker.failure_rate_threshold), 0, 1, NULL, 0, 0, 0 },
	{ "slow_rate", F_RATIO, OFF(breaker.slow_rate_threshold), 0, 1, NULL, 0, 0, 0 },
	{ "slow_call", F_DUR, OFF(breaker.slow_call_ns), 0, 0, NULL, 0, 0, 0 },
	{ "window", F_ENUM, OFF(breaker.window_kind), 0, 0, window_names, 1, 0, 0 },
	{ "window_size", F_U32, OFF(breaker.window_size), 1, 1 << 24, NULL, 0, 0, 0 },
	{ "window_length", F_DUR, OFF(breaker.window_ns), 1, 0, NULL, 0, 0, 0 },
	{ "window_buckets", F_U32, OFF(breaker.window_buckets), 1, 4096, NULL, 0, 0, 0 },
	{ "minimum_calls", F_U32, OFF(breaker.minimum_calls), 1, 1 << 24, NULL, 0, 0, 0 },
	{ "wait", F_DUR, OFF(breaker.open_ns), 1, 0, NULL, 0, 0, 0 },
	{ "wait_multiplier", F_NUM, OFF(breaker.open_multiplier), 0, 1e6, NULL, 0, 0, 0 },
	{ "wait_max", F_DUR, OFF(breaker.open_max_ns), 0, 0, NULL, 0, 0, 0 },
	{ "wait_jitter", F_NUM, OFF(breaker.open_jitter), 0, 1, NULL, 0, 0, 1 },
	{ "half_open_calls", F_U32, OFF(breaker.half_open_calls), 1, RS_BREAKER_MAX_TRIALS, NULL, 0,
	  0, 0 },
	{ "half_open_failure_rate", F_RATIO, OFF(breaker.half_open_failure_threshold), 0, 1, NULL,
	  0, 0, 0 },
	{ "emergency_threshold", F_NUM, OFF(breaker.emergency_threshold), 0, 1e9, NULL, 0, 0, 0 },
	{ NULL, 0, 0, 0, 0, NULL, 0, 0, 0 },
};

static const struct field retry_fields[] = {
	{ "attempts", F_U32, OFF(retry.max_attempts), 1, 100, NULL, 0, 0, 0 },
	{ "metastable_attempts", F_U32, OFF(retry.metastable_max_attempts), 1, 100, NULL, 0, 0, 0 },
	{ "backoff", F_ENUM, OFF(retry.backoff.strategy), 0, 0, backoff_names, 0, 0, 0 },
	{ "base", F_DUR, OFF(retry.backoff.base_ns), 1, 0, NULL, 0, 0, 0 },
	{ "cap", F_DUR, OFF(retry.backoff.cap_ns), 1, 0, NULL, 0, 0, 0 },
	{ "multiplier", F_NUM, OFF(retry.backoff.multiplier), 1, 1e6, NULL, 0, 0, 0 },
	{ "health_factor_min", F_NUM, OFF(retry.health_factor_min), 1, 1e6, NULL, 0, 0, 0 },
	{ "health_factor_max", F_NUM, OFF(retry.health_factor_max), 1, 1e6, NULL, 0, 0, 0 },
	{ "error_rate_threshold", F_RATIO, OFF(retry.error_rate_threshold), 0, 1, NULL, 0, 0, 0 },
	{ "metastable_penalty", F_NUM, OFF(retry.metastable_penalty), 1, 1e6, NULL, 0, 0, 0 },
	{ "max_delay", F_DUR, OFF(retry.max_delay_ns), 1, 0, NULL, 0, 0, 0 },
	{ NULL, 0, 0, 0, 0, NULL, 0, 0, 0 },
};

static const struct field budget_fields[] = {
	{ "kind", F_ENUM, OFF(budget.kind), 0, 0, budget_names, 0, 0, 0 },
	{ "ratio", F_RATIO, OFF(budget.ratio.ratio), 0, 1, NULL, 0, 0, 0 },
	{ "window", F_DUR, OFF(budget.ratio.window_ns), 1, 0, NULL, 0, 0, 0 },
	{ "min_requests", F_U64, OFF(budget.ratio.min_requests), 0, U64MAX, NULL, 0, 0, 0 },
	{ "buckets", F_U32, OFF(budget.buckets), 1, RS_BUDGET_MAX_BUCKETS, NULL, 0, 0, 0 },
	{ "ttl", F_DUR, OFF(budget.ttl.ttl_ns), 1, 0, NULL, 0, 0, 0 },
	{ "min_retries_per_sec", F_NUM, OFF(budget.ttl.min_retries_per_sec), 0, 1e9, NULL, 0, 0,
	  0 },
	{ "percent_can_retry", F_RATIO, OFF(budget.ttl.percent_can_retry), 0, 1, NULL, 0, 0, 0 },
	{ "max_tokens", F_NUM, OFF(budget.throttle.max_tokens), 0.001, 1000, NULL, 0, 0, 0 },
	{ "token_ratio", F_NUM, OFF(budget.throttle.token_ratio), 0.001, 1000, NULL, 0, 0, 0 },
	{ NULL, 0, 0, 0, 0, NULL, 0, 0, 0 },
};

static const struct field bulkhead_fields[] = {
	{ "max_concurrent", F_U32, OFF(bulkhead.max_concurrent), 1, 1 << 20, NULL, 0, 0, 0 },
	{ "max_queue", F_U32, OFF(bulkhead.max_queue), 0, 1 << 20, NULL, 0, 0, 0 },
	{ "max_wait", F_DUR, OFF(bulkhead.max_wait_ns), 1, 0, NULL, 0, 0, 0 },
	{ NULL, 0, 0, 0, 0, NULL, 0, 0, 0 },
};

static const struct field shed_fields[] = {
	{ "thresholds", F_ARR, OFF(shed.tiers.threshold), 0, 1, NULL, 0, RS_SHED_NTIERS - 1, 0 },
	{ "fractions", F_ARR, OFF(shed.tiers.fraction), 0, 1, NULL, 0, RS_SHED_NTIERS, 0 },
	{ "mix_window", F_U32, OFF(shed.mix_window), 1, 1 << 24, NULL, 0, 0, 0 },
	{ "queue_limit", F_U64, OFF(shed.queue_limit), 0, U64MAX, NULL, 0, 0, 0 },
	{ "latency_target", F_DUR, OFF(shed.latency_target_ns), 0, 0, NULL, 0, 0, 0 },
	{ "cpu", F_BOOL, OFF(shed.cpu), 0, 0, NULL, 0, 0, 0 },
	{ NULL, 0, 0, 0, 0, NULL, 0, 0, 0 },
};

static const struct field detector_fields[] = {
	{ "period", F_DUR, OFF(detector.period_ns), RS_NS_PER_MS, 0, NULL, 0, 0, 0 },
	{ "alpha", F_NUM, OFF(detector.alpha), 1e-9, 1, NULL, 0, 0, 0 },
	{ "min_baseline_samples", F_U32, OFF(detector.min_baseline_samples), 1, 1e6, NULL, 0, 0,
	  0 },
	{ "exit_periods", F_U32, OFF(detector.exit_periods), 1, 1e6, NULL, 0, 0, 0 },
	{ "trigger_clear", F_DUR, OFF(detector.trigger_clear_ns), 1, 0, NULL, 0, 0, 0 },
	{ "load_band", F_RATIO, OFF(detector.load_band), 0, 1, NULL, 0, 0, 0 },
	{ "goodput_fraction", F_RATIO, OFF(detector.goodput_fraction), 0, 1, NULL, 0, 0, 0 },
	{ "retry_budget", F_NUM, OFF(detector.retry_budget), 0, 1e6, NULL, 0, 0, 0 },
	{ "k", F_U32, OFF(detector.k), 1, 5, NULL, 0, 0, 0 },
	{ "exit_k", F_U32, OFF(detector.exit_k), 1, 5, NULL, 0, 0, 0 },
	{ "latency_factor", F_NUM, OFF(detector.latency_factor), 1, 1e6, NULL, 0, 0, 0 },
	{ "latency_floor", F_DUR, OFF(detector.latency_floor_ns), 0, 0, NULL, 0, 0, 0 },
	{ "error_rate_threshold", F_NUM, OFF(detector.error_rate_threshold), 0, 1, NULL, 0, 0, 1 },
	{ "throughput_fraction", F_RATIO, OFF(detector.throughput_fraction), 0, 1, NULL, 0, 0, 0 },
	{ "resource_threshold", F_NUM, OFF(detector.resource_threshold), 0, 1, NULL, 0, 0, 1 },
	{ "queue_min", F_U64, OFF(detector.queue_min), 0, U64MAX, NULL, 0, 0, 0 },
	{ "queue_factor", F_NUM, OFF(detector.queue_factor), 1, 1e9, NULL, 0, 0, 0 },
	{ NULL, 0, 0, 0, 0, NULL, 0, 0, 0 },
};

static const struct field coalesce_fields[] = {
	{ "capacity", F_U64, OFF(coalesce.capacity), 1, RS_COALESCE_CAPACITY_MAX, NULL, 0, 0, 0 },
	{ NULL, 0, 0, 0, 0, NULL, 0, 0, 0 },
};

static const struct field idempotency_fields[] = {
	{ "capacity", F_U64, OFF(idempotency.capacity), 1, RS_IDEM_CAPACITY_MAX, NULL, 0, 0, 0 },
	{ "ttl", F_DUR, OFF(idempotency.ttl_ns), 1, 0, NULL, 0, 0, 0 },
	{ "key_max", F_U64, OFF(idempotency.key_max), 1, RS_IDEM_KEY_MAX, NULL, 0, 0, 0 },
	{ NULL, 0, 0, 0, 0, NULL, 0, 0, 0 },
};

static const struct field uring_fields[] = {
	{ "entries", F_U32, OFF(uring.entries), 1, 4096, NULL, 0, 0, 0 },
	{ NULL, 0, 0, 0, 0, NULL, 0, 0, 0 },
};

static const struct field workers_fields[] = {
	{ "count", F_U32, OFF(workers.count), 1, 4096, NULL, 0, 0, 0 },
	{ "service_time", F_DUR, OFF(workers.service_time_ns), 0, 0, NULL, 0, 0, 0 },
	{ "queue", F_U64, OFF(workers.queue), 1, 1 << 26, NULL, 0, 0, 0 },
	{ "factor", F_NUM, OFF(workers.factor), 0, 1e6, NULL, 0, 0, 0 },
	{ NULL, 0, 0, 0, 0, NULL, 0, 0, 0 },
};

static const struct section sections[] = {
	{ NULL, top_fields },
	{ "listen", listen_fields },
	{ "dependency", dependency_fields },
	{ "request", request_fields },
	{ "cache", cache_fields },
	{ "defenses", defenses_fields },
	{ "breaker", breaker_fields },
	{ "retry", retry_fields },
	{ "budget", budget_fields },
	{ "bulkhead", bulkhead_fields },
	{ "shed", shed_fields },
	{ "detector", detector_fields },
	{ "coalesce", coalesce_fields },
	{ "idempotency", idempotency_fields },
	{ "uring", uring_fields },
	{ "workers", workers_fields },
};

#define NSECTIONS (sizeof(sections) / sizeof(sections[0]))

/* ---- defaults ---------------------------------------------------------------- */

const char *fl_target_role_name(enum fl_target_role r)
{
	return r == FL_ROLE_SERVICE ? "service" : r == FL_ROLE_DEPENDENCY ? "dependency" : "none";
}

void fl_target_config_default(struct fl_target_config *c)
{
	const struct rs_shed_tiers tiers = RS_SHED_TIERS_DEFAULT;

	memset(c, 0, sizeof(*c));
	c->role = FL_ROLE_NONE;
	c->seed = 1;
	snprintf(c->data_dir, sizeof(c->data_dir), "data");
	snprintf(c->host, sizeof(c->host), "127.0.0.1");

	snprintf(c->dependency.host, sizeof(c->dependency.host), "127.0.0.1");
	c->dependency.connections = 256;
	c->dependency.queue = 1024;
	c->dependency.timeout_ns = 100 * RS_NS_PER_MS;

	c->request.deadline_ns = RS_NS_PER_SEC;
	c->request.max_in_flight = 4096;
	c->request.max_item_bytes = 64 * 1024;

	c->cache.capacity = 10000;
	c->cache.ttl_ns = 60 * RS_NS_PER_SEC;

	c->defenses.breaker = c->defenses.budget = c->defenses.jitter = true;
	c->defenses.shed = c->defenses.detector = c->defenses.coalesce = true;

	c->breaker.consecutive_failures = 5;
	c->breaker.failure_rate_threshold = 0.5;
	c->breaker.window_kind = RS_WINDOW_COUNT;
	c->breaker.window_size = 20;
	c->breaker.window_ns = 10 * RS_NS_PER_SEC;
	c->breaker.window_buckets = 10;
	c->breaker.minimum_calls = 10;
	c->breaker.open_ns = RS_NS_PER_SEC;
	c->breaker.open_multiplier = 1;
	c->breaker.half_open_calls = 3;

	c->retry.max_attempts = 3;
	c->retry.metastable_max_attempts = 1;
	c->retry.backoff.strategy = RS_BACKOFF_FULL;
	c->retry.backoff.base_ns = 10 * RS_NS_PER_MS;
	c->retry.backoff.cap_ns = RS_NS_PER_SEC;
	c->retry.backoff.multiplier = 2;
	c->retry.health_factor_min = 1;
	c->retry.health_factor_max = 10;
	c->retry.error_rate_threshold = 0.5;
	c->retry.metastable_penalty = 2;
	c->retry.max_delay_ns = 2 * RS_NS_PER_SEC;

	c->budget.kind = RS_BUDGET_RATIO;
	c->budget.buckets = 10;
	c->budget.ratio.ratio = 0.1;
	c->budget.ratio.window_ns = 10 * RS_NS_PER_SEC;
	c->budget.ratio.min_requests = 10;
	c->budget.ttl.ttl_ns = 10 * RS_NS_PER_SEC;
	c->budget.ttl.min_retries_per_sec = 10;
	c->budget.ttl.percent_can_retry = 0.2;
	c->budget.throttle.max_tokens = 10;
	c->budget.throttle.token_ratio = 0.1;

	c->bulkhead.max_concurrent = 64;
	c->bulkhead.max_queue = 256;
	c->bulkhead.max_wait_ns = 50 * RS_NS_PER_MS;

	c->shed.tiers = tiers;
	c->shed.mix_window = 1024;
	c->shed.queue_limit = 1024;
	c->shed.latency_target_ns = 250 * RS_NS_PER_MS;

	rs_detector_opts_default(&c->detector, RS_DETECTOR_TRIGGER_AWARE);
	c->detector.period_ns = 100 * RS_NS_PER_MS;
	c->detector.min_baseline_samples = 10;
	c->detector.exit_periods = 10;
	c->detector.trigger_clear_ns = 3 * RS_NS_PER_SEC;
	c->detector.load_band = 0.2;

	c->coalesce.capacity = 4096;
	c->idempotency.capacity = 65536;
	c->idempotency.ttl_ns = 600 * RS_NS_PER_SEC;
	c->idempotency.key_max = 256;
	c->uring.entries = 64;

	c->workers.count = 4;
	c->workers.service_time_ns = 2 * RS_NS_PER_MS;
	c->workers.queue = 100000;
	c->workers.factor = 1;
}

/* ---- the reader -------------------------------------------------------------- */

struct rd {
	const char *source;
	struct rs_err *err;
};

static int bad(const struct rd *r, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(const struct rd *r, const char *path, const char *fmt, ...)
{
	char why[RS_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	rs__err_set(r->err, "%s: %s: %s", r->source, path, why);
	return -EINVAL;
}

static const char *type_name(const cJSON *v)
{
	if (cJSON_IsBool(v))
		return "a boolean";
	if (cJSON_IsNumber(v))
		return "a number";
	if (cJSON_IsString(v))
		return "a string";
	if (cJSON_IsArray(v))
		return "an array";
	if (cJSON_IsObject(v))
		return "an object";
	return "null";
}

/* A number, or a percentage string for ratios, into *out. */
static int read_num(const struct rd *r, const char *path, const cJSON *v, bool pct, double *out)
{
	if (cJSON_IsNumber(v)) {
		*out = v->valuedouble;
		return 0;
	}
	if (pct && cJSON_IsString(v)) {
		char *end;
		size_t n = strlen(v->valuestring);
		double d;

		if (n >= 2 && v->valuestring[n - 1] == '%') {
			d = strtod(v->valuestring, &end);
			if (end == v->valuestring + n - 1 && isfinite(d)) {
				*out = d / 100.0;
				return 0;
			}
		}
		return bad(r, path, "'%s' is not a ratio (write 0.4 or \"40%%\")", v->valuestring);
	}
	return bad(r, path, "expected %s, got %s", pct ? "a number or a percentage" : "a number",
		   type_name(v));
}

static int check_range(const struct rd *r, const char *path, double d, double lo, double hi,
		       int hi_open)
{
	if (isnan(d) || d < lo || (hi_open ? d >= hi : d > hi))
		return bad(r, path, "must be in [%g, %g%s, got %g", lo, hi, hi_open ? ")" : "]", d);
	return 0;
}

static int read_field(const struct rd *r, const char *path, const struct field *f, const cJSON *v,
		      struct fl_target_config *c)
{
	char *p = (char *)c + f->off;
	double d;
	int rc;

	switch (f->t) {
	case F_BOOL:
		if (!cJSON_IsBool(v))
			return bad(r, path, "expected a boolean, got %s", type_name(v));
		*(bool *)p = cJSON_IsTrue(v);
		return 0;
	case F_U32:
	case F_U64:
	case F_INT:
		if (!cJSON_IsNumber(v))
			return bad(r, path, "expected an integer, got %s", type_name(v));
		d = v->valuedouble;
		if (d != floor(d))
			return bad(r, path, "expected an integer, got %g", d);
		if ((rc = check_range(r, path, d, f->min, f->max, 0)) < 0)
			return rc;
		if (f->t == F_U32)
			*(uint32_t *)p = (uint32_t)d;
		else if (f->t == F_U64)
			*(uint64_t *)p = d >= U64MAX ? UINT64_MAX : (uint64_t)d;
		else
			*(int *)p = (int)d;
		return 0;
	case F_NUM:
	case F_RATIO:
		if ((rc = read_num(r, path, v, f->t == F_RATIO, &d)) < 0)
			return rc;
		if ((rc = check_range(r, path, d, f->min, f->max, f->max_open)) < 0)
			return rc;
		*(double *)p = d;
		return 0;
	case F_DUR: {
		char why[200];
		uint64_t ns;

		if (!cJSON_IsString(v))
			return bad(r, path,
				   "expected a duration string with a unit (\"250ms\"), got %s",
				   type_name(v));
		if (fl_target_duration_parse(v->valuestring, &ns, why, sizeof(why)) < 0)
			return bad(r, path, "%s", why);
		if ((double)ns < f->min)
			return bad(r, path, "must be at least %gns, got '%s'", f->min,
				   v->valuestring);
		*(uint64_t *)p = ns;
		return 0;
	}
	case F_STR: {
		size_t n;

		if (!cJSON_IsString(v))
			return bad(r, path, "expected a string, got %s", type_name(v));
		n = strlen(v->valuestring);
		if (n < (size_t)f->min || n >= (size_t)f->max)
			return bad(r, path, "length must be in [%g, %g), got %zu", f->min, f->max,
				   n);
		memcpy(p, v->valuestring, n + 1);
		return 0;
	}
	case F_ENUM: {
		char list[200] = "";
		size_t used = 0;

		if (!cJSON_IsString(v))
			return bad(r, path, "expected a string, got %s", type_name(v));
		for (int i = 0; f->names[i]; i++) {
			if (strcmp(v->valuestring, f->names[i]) == 0) {
				*(int *)p = f->base + i;
				return 0;
			}
			used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
						 i ? ", " : "", f->names[i]);
			if (used >= sizeof(list))
				used = sizeof(list) - 1;
		}
		return bad(r, path, "unknown value '%s' (one of: %s)", v->valuestring, list);
	}
	case F_ARR: {
		double tmp[8];
		char ep[320];
		int i = 0;
		const cJSON *e;

		if (!cJSON_IsArray(v))
			return bad(r, path, "expected an array of %d numbers, got %s", f->n,
				   type_name(v));
		if (cJSON_GetArraySize(v) != f->n)
			return bad(r, path, "expected %d numbers, got %d", f->n,
				   cJSON_GetArraySize(v));
		cJSON_ArrayForEach(e, v)
		{
			snprintf(ep, sizeof(ep), "%.300s[%d]", path, i & 7);
			if ((rc = read_num(r, ep, e, true, &tmp[i])) < 0)
				return rc;
			if ((rc = check_range(r, ep, tmp[i], f->min, f->max, 0)) < 0)
				return rc;
			i++;
		}
		memcpy(p, tmp, sizeof(double) * (size_t)f->n);
		return 0;
	}
	}
	return bad(r, path, "internal: unknown field type");
}

static const struct field *find_field(const struct field *fs, const char *key)
{
	for (; fs->key; fs++)
		if (strcmp(fs->key, key) == 0)
			return fs;
	return NULL;
}

static const struct section *find_section(const char *key)
{
	for (size_t i = 1; i < NSECTIONS; i++)
		if (strcmp(sections[i].key, key) == 0)
			return &sections[i];
	return NULL;
}

static int list_keys(char *buf, size_t size, const struct field *fs, bool top)
{
	size_t used = 0;

	buf[0] = '\0';
	for (; fs->key; fs++)
		used += (size_t)snprintf(buf + used, used < size ? size - used : 0, "%s%s",
					 used ? ", " : "", fs->key);
	if (top)
		for (size_t i = 1; i < NSECTIONS; i++)
			used += (size_t)snprintf(buf + used, used < size ? size - used : 0, ", %s",
						 sections[i].key);
	return 0;
}

static int apply_section(const struct rd *r, const struct section *s, const cJSON *obj,
			 struct fl_target_config *c)
{
	const cJSON *v;
	char path[300], keys[600];
	int rc;

	cJSON_ArrayForEach(v, obj)
	{
		const struct field *f = find_field(s->fields, v->string);

		if (s->key)
			snprintf(path, sizeof(path), "%s.%s", s->key, v->string);
		else
			snprintf(path, sizeof(path), "%s", v->string);
		if (f) {
			if ((rc = read_field(r, path, f, v, c)) < 0)
				return rc;
			continue;
		}
		if (!s->key) {
			const struct section *sub = find_section(v->string);

			if (sub) {
				if (!cJSON_IsObject(v))
					return bad(r, path, "expected an object, got %s",
						   type_name(v));
				if ((rc = apply_section(r, sub, v, c)) < 0)
					return rc;
				continue;
			}
		}
		list_keys(keys, sizeof(keys), s->fields, !s->key);
		return bad(r, path, "unknown key (known: %s)", keys);
	}
	return 0;
}

static void line_col(const char *text, const char *at, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (const char *p = text; p < at; p++) {
		if (*p == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

int fl_target_config_apply_json(struct fl_target_config *c, const char *source, const char *text,
				size_t len, struct rs_err *err)
{
	const char *end = NULL;
	struct rd r = { source, err };
	cJSON *root;
	int rc, line, col;

	root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (!root) {
		if (!end || end < text || end > text + len)
			end = text + len;
		line_col(text, end, &line, &col);
		rs__err_set(err, "%s:%d:%d: malformed JSON", source, line, col);
		return -EINVAL;
	}
	if (!cJSON_IsObject(root)) {
		rs__err_set(err, "%s: the configuration must be a JSON object, got %s", source,
			    type_name(root));
		cJSON_Delete(root);
		return -EINVAL;
	}
	rc = apply_section(&r, &sections[0], root, c);
	cJSON_Delete(root);
	return rc;
}

int fl_target_config_load(struct fl_target_config *c, const char *path, struct rs_err *err)
{
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		rs__err_set(err, "%s: cannot read: %s", path, strerror(-rc));
		return rc;
	}
	buf = malloc(CONFIG_FILE_MAX + 1);
	if (!buf) {
		close(fd);
		return rs__enomem(err, path);
	}
	while (len < CONFIG_FILE_MAX && (n = read(fd, buf + len, CONFIG_FILE_MAX - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			rs__err_set(err, "%s: cannot read: %s", path, strerror(-rc));
			goto fail;
		}
		len += (size_t)n;
	}
	if (len == CONFIG_FILE_MAX) {
		rc = -EFBIG;
		rs__err_set(err, "%s: cannot read: larger than %u bytes", path, CONFIG_FILE_MAX);
		goto fail;
	}
	buf[len] = '\0';
	rc = fl_target_config_apply_json(c, path, buf, len, err);
	if (rc == 0)
		snprintf(c->source, sizeof(c->source), "%s", path);
fail:
	free(buf);
	close(fd);
	return rc;
}

int fl_target_config_set(struct fl_target_config *c, const char *assignment, struct rs_err *err)
{
	const char *eq = strchr(assignment, '='), *dot;
	char key[128], sect[64];
	cJSON *root = NULL, *leaf = NULL, *obj;
	char *text = NULL;
	int rc = -EINVAL;

	if (!eq || eq == assignment || (size_t)(eq - assignment) >= sizeof(key)) {
		rs__err_set(err, "--set %s: expected key.path=value", assignment);
		return -EINVAL;
	}
	memcpy(key, assignment, (size_t)(eq - assignment));
	key[eq - assignment] = '\0';
	leaf = cJSON_ParseWithOpts(eq + 1, NULL, 1); /* "3ms" is not the number 3 */
	if (!leaf)
		leaf = cJSON_CreateString(eq + 1);
	root = cJSON_CreateObject();
	if (!leaf || !root) {
		rc = rs__enomem(err, "--set");
		goto fail;
	}
	dot = strchr(key, '.');
	if (dot) {
		if (strchr(dot + 1, '.') || (size_t)(dot - key) >= sizeof(sect) || !dot[1]) {
			rs__err_set(err, "--set %s: expected section.key=value or key=value", key);
			goto fail;
		}
		memcpy(sect, key, (size_t)(dot - key));
		sect[dot - key] = '\0';
		obj = cJSON_AddObjectToObject(root, sect);
		if (!obj || !cJSON_AddItemToObject(obj, dot + 1, leaf)) {
			rc = rs__enomem(err, "--set");
			goto fail;
		}
	} else if (!cJSON_AddItemToObject(root, key, leaf)) {
		rc = rs__enomem(err, "--set");
		goto fail;
	}
	leaf = NULL; /* owned by root now */
	text = cJSON_PrintUnformatted(root);
	if (!text) {
		rc = rs__enomem(err, "--set");
		goto fail;
	}
	rc = fl_target_config_apply_json(c, "--set", text, strlen(text), err);
fail:
	free(text);
	cJSON_Delete(leaf);
	cJSON_Delete(root);
	return rc;
}

/* ---- cross-field checks ------------------------------------------------------ */

static bool any_error(void *ctx, int error)
{
	(void)ctx;
	(void)error;
	return true;
}

static int core_err(const struct fl_target_config *c, struct rs_err *err, const char *what,
		    const struct rs_err *core)
{
	rs__err_set(err, "%s: %s: %s", c->source[0] ? c->source : "configuration", what, core->msg);
	return -EINVAL;
}

int fl_target_config_check(const struct fl_target_config *c, struct rs_err *err)
{
	const char *src = c->source[0] ? c->source : "configuration";
	struct rs_err e = { "" };
	int rc = 0;

	if (c->role == FL_ROLE_NONE) {
		rs__err_set(err, "%s: role: not set (--role service|dependency, or \"role\")", src);
		return -EINVAL;
	}
	if (c->role == FL_ROLE_DEPENDENCY)
		return 0;
	if (c->dependency.port == 0) {
		rs__err_set(err,
			    "%s: dependency.port: not set (the service needs its dependency: "
			    "--dependency HOST:PORT)",
			    src);
		return -EINVAL;
	}
	if (c->retry.metastable_max_attempts > c->retry.max_attempts) {
		rs__err_set(err,
			    "%s: retry.metastable_attempts: must be <= retry.attempts (%u), got %u",
			    src, c->retry.max_attempts, c->retry.metastable_max_attempts);
		return -EINVAL;
	}
	if (c->retry.backoff.cap_ns < c->retry.backoff.base_ns) {
		rs__err_set(err, "%s: retry.cap: must be >= retry.base", src);
		return -EINVAL;
	}
	if (c->retry.max_delay_ns < c->retry.backoff.base_ns) {
		rs__err_set(err, "%s: retry.max_delay: must be >= retry.base", src);
		return -EINVAL;
	}
	if (c->retry.health_factor_max < c->retry.health_factor_min) {
		rs__err_set(err, "%s: retry.health_factor_max: must be >= retry.health_factor_min",
			    src);
		return -EINVAL;
	}
	if (c->detector.exit_k > c->detector.k) {
		rs__err_set(err, "%s: detector.exit_k: must be <= detector.k (%u), got %u", src,
			    c->detector.k, c->detector.exit_k);
		return -EINVAL;
	}
	if (c->bulkhead.max_concurrent > c->dependency.connections) {
		rs__err_set(err,
			    "%s: bulkhead.max_concurrent: must be <= dependency.connections (%u), "
			    "got %u",
			    src, c->dependency.connections, c->bulkhead.max_concurrent);
		return -EINVAL;
	}
	if (c->idempotency.key_max > RS_IDEM_KEY_MAX) {
		rs__err_set(err, "%s: idempotency.key_max: must be <= %d", src, RS_IDEM_KEY_MAX);
		return -EINVAL;
	}

	/* Dry runs of the core constructors with exactly these options. */
	{
		struct rs_breaker_opts bo = c->breaker;
		struct rs_breaker *b = NULL;

		bo.name = "dependency";
		if (bo.failure_rate_threshold == 0 && bo.slow_rate_threshold == 0)
			bo.window_kind = RS_WINDOW_NONE;
		rc = rs_breaker_new(&b, &bo, &e);
		rs_breaker_free(b);
		if (rc < 0)
			return core_err(c, err, "breaker", &e);
	}
	{
		struct rs_budget_opts bo = c->budget;
		struct rs_budget *b = NULL;

		bo.name = "dependency";
		rc = rs_budget_new(&b, &bo, &e);
		rs_budget_free(b);
		if (rc < 0)
			return core_err(c, err, "budget", &e);
	}
	{
		struct rs_retry_opts ro = c->retry;
		struct rs_retry *r = NULL;

		ro.name = "dependency";
		ro.retryable = any_error;
		rc = rs_retry_new(&r, &ro, &e);
		rs_retry_free(r);
		if (rc < 0)
			return core_err(c, err, "retry", &e);
	}
	{
		struct rs_bulkhead_opts bo = c->bulkhead;
		struct rs_bulkhead *b = NULL;

		bo.name = "dependency";
		rc = rs_bulkhead_new(&b, &bo, &e);
		rs_bulkhead_free(b);
		if (rc < 0)
			return core_err(c, err, "bulkhead", &e);
	}
	{
		struct rs_shed_opts so = { .name = "service",
					   .mode = RS_SHED_TIERED,
					   .tiers = &c->shed.tiers,
					   .mix_window = c->shed.mix_window };
		struct rs_shed *s = NULL;

		rc = rs_shed_new(&s, &so, &e);
		rs_shed_free(s);
		if (rc < 0)
			return core_err(c, err, "shed", &e);
	}
	for (int form = RS_DETECTOR_MULTI_SIGNAL; form <= RS_DETECTOR_TRIGGER_AWARE; form += 2) {
		struct rs_detector_opts d = c->detector;
		struct rs_detector *det = NULL;

		d.name = "service";
		d.form = (enum rs_detector_form)form;
		rc = rs_detector_new(&det, &d, &e);
		rs_detector_free(det);
		if (rc < 0)
			return core_err(c, err, "detector", &e);
	}
	return 0;
}

/* ---- the command line --------------------------------------------------------- */

const char *fl_target_usage(void)
{
	return "usage: faultline-target --role service|dependency [--config FILE] [flags]\n"
	       "       faultline-target --init-data DIR --items N\n"
	       "       faultline-target --check --role ROLE [--config FILE] [flags]\n"
	       "\n"
	       "flags (each is a shorthand for --set; later ones win):\n"
	       "  --host H              http listen host (listen.host), default 127.0.0.1\n"
	       "  --port N              http port (listen.port), 0 = any free port\n"
	       "  --admin-port N        admin port on 127.0.0.1 (listen.admin_port)\n"
	       "  --data-dir DIR        item files (data_dir)\n"
	       "  --dependency H:P      the service's dependency (dependency.host/port)\n"
	       "  --seed N              random seed (seed)\n"
	       "  --workers N           dependency workers (workers.count)\n"
	       "  --service-time DUR    dependency service time (workers.service_time)\n"
	       "  --queue N             dependency queue bound (workers.queue)\n"
	       "  --capacity F          dependency capacity factor (workers.factor)\n"
	       "  --no-breaker --no-budget --no-jitter --no-shed --no-detector --no-coalesce\n"
	       "                        turn a defense off (defenses.NAME=false)\n"
	       "  --set KEY.PATH=VALUE  any configuration key (see target/config.h)\n"
	       "\n"
	       "Once listening it prints one line on stdout:\n"
	       "  listening http=HOST:PORT admin=127.0.0.1:PORT\n"
	       "Exit status: 0 after SIGTERM/SIGINT, 1 on a run-time failure, 2 for bad usage or\n"
	       "configuration.\n";
}

static int set_kv(struct fl_target_config *c, const char *key, const char *value, bool quote,
		  struct rs_err *err)
{
	char buf[FL_TARGET_PATH_MAX + 160];
	int n;

	if (quote) {
		cJSON *s = cJSON_CreateString(value);
		char *t = s ? cJSON_PrintUnformatted(s) : NULL;

		cJSON_Delete(s);
		if (!t)
			return rs__enomem(err, key);
		n = snprintf(buf, sizeof(buf), "%s=%s", key, t);
		free(t);
	} else {
		n = snprintf(buf, sizeof(buf), "%s=%s", key, value);
	}
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		rs__err_set(err, "%s: value too long", key);
		return -EINVAL;
	}
	return fl_target_config_set(c, buf, err);
}

static int parse_items(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s == '-')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v == 0 || v > 10000000ull)
		return -EINVAL;
	*out = v;
	return 0;
}

int fl_target_args_parse(struct fl_target_args *a, struct fl_target_config *c, int argc,
			 char **argv, struct rs_err *err)
{
	static const struct {
		const char *flag, *key;
		bool quote;
	} simple[] = {
		{ "--role", "role", true },
		{ "--host", "listen.host", true },
		{ "--port", "listen.port", false },
		{ "--admin-port", "listen.admin_port", false },
		{ "--data-dir", "data_dir", true },
		{ "--seed", "seed", false },
		{ "--workers", "workers.count", false },
		{ "--service-time", "workers.service_time", true },
		{ "--queue", "workers.queue", false },
		{ "--capacity", "workers.factor", false },
	};
	static const char *const defenses[] = { "breaker", "budget",   "jitter",
						"shed",	   "detector", "coalesce" };
	const char *config = NULL;
	int rc;

	memset(a, 0, sizeof(*a));
	fl_target_config_default(c);
	/* The file first, wherever --config appears, so flags override it. */
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--config") == 0) {
			if (i + 1 >= argc) {
				rs__err_set(err, "--config: missing FILE");
				return -EINVAL;
			}
			config = argv[++i];
		}
	if (config && fl_target_config_load(c, config, err) < 0)
		return -EINVAL;

	for (int i = 1; i < argc; i++) {
		const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		bool done = false;

		if (strcmp(f, "--config") == 0) {
			i++;
			continue;
		}
		if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
			a->mode = FL_MODE_HELP;
			return 0;
		}
		if (strcmp(f, "--check") == 0) {
			a->mode = FL_MODE_CHECK;
			continue;
		}
		if (strncmp(f, "--no-", 5) == 0) {
			for (size_t k = 0; k < sizeof(defenses) / sizeof(defenses[0]); k++)
				if (strcmp(f + 5, defenses[k]) == 0) {
					char key[64];

					snprintf(key, sizeof(key), "defenses.%s", defenses[k]);
					if ((rc = set_kv(c, key, "false", false, err)) < 0)
						return rc;
					done = true;
				}
			if (done)
				continue;
		}
		if (!v && (strcmp(f, "--set") == 0 || strcmp(f, "--init-data") == 0 ||
			   strcmp(f, "--items") == 0 || strcmp(f, "--dependency") == 0)) {
			rs__err_set(err, "%s: missing value", f);
			return -EINVAL;
		}
		if (strcmp(f, "--set") == 0) {
			if ((rc = fl_target_config_set(c, v, err)) < 0)
				return rc;
			i++;
			continue;
		}
		if (strcmp(f, "--init-data") == 0) {
			a->mode = FL_MODE_INIT;
			a->init_dir = v;
			i++;
			continue;
		}
		if (strcmp(f, "--items") == 0) {
			if (parse_items(v, &a->items) < 0) {
				rs__err_set(
				    err, "--items: expected a count in [1, 10000000], got '%s'", v);
				return -EINVAL;
			}
			i++;
			continue;
		}
		if (strcmp(f, "--dependency") == 0) {
			const char *colon = strrchr(v, ':');
			char host[FL_TARGET_HOST_MAX];

			if (!colon || colon == v || (size_t)(colon - v) >= sizeof(host)) {
				rs__err_set(err, "--dependency: expected HOST:PORT, got '%s'", v);
				return -EINVAL;
			}
			memcpy(host, v, (size_t)(colon - v));
			host[colon - v] = '\0';
			if ((rc = set_kv(c, "dependency.host", host, true, err)) < 0 ||
			    (rc = set_kv(c, "dependency.port", colon + 1, false, err)) < 0)
				return rc;
			i++;
			continue;
		}
		for (size_t k = 0; k < sizeof(simple) / sizeof(simple[0]); k++)
			if (strcmp(f, simple[k].flag) == 0) {
				if (!v) {
					rs__err_set(err, "%s: missing value", f);
					return -EINVAL;
				}
				if ((rc = set_kv(c, simple[k].key, v, simple[k].quote, err)) < 0)
					return rc;
				i++;
				done = true;
				break;
			}
		if (!done) {
			rs__err_set(err, "unknown argument '%s' (see --help)", f);
			return -EINVAL;
		}
	}
	if (a->mode == FL_MODE_INIT) {
		if (!a->items) {
			rs__err_set(err, "--init-data: needs --items N");
			return -EINVAL;
		}
		return 0;
	}
	return fl_target_config_check(c, err);
}
