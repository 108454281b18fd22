/* The fault and probe families and their parameters (see families.h). */
#include "harness/families.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const roles_service_first[] = { "service", "dependency", NULL };
static const char *const roles_dependency_first[] = { "dependency", "service", NULL };

/* ---- faults ------------------------------------------------------------- */

static const char *const jitter_sides[] = { "both", "target", "client", NULL };
static const char *const jitter_roles[] = { "service", "dependency", "both", NULL };
static const char *const jitter_retries[] = { "keep", "pause", "resume", NULL };
static const char *const jitter_force[] = { "open", "closed", NULL };

static const struct fl_param_spec jitter_params[] = {
	{ "side", FL_PT_ENUM, 0, "both", NULL, NULL, jitter_sides, NULL, NULL,
	  "whose jitter goes: the target's (its control block) and/or the load generator's "
	  "(lockstep retries)" },
	{ "role", FL_PT_ENUM, 0, "service", NULL, NULL, jitter_roles, NULL, NULL,
	  "which target process's control block is written (side target or both)" },
	{ "retries", FL_PT_ENUM, 0, "keep", NULL, NULL, jitter_retries, NULL, NULL,
	  "target retries while the fault lasts: keep as they are, pause them, or resume "
	  "paused ones" },
	{ "breaker", FL_PT_STRING, FL_P_NONEMPTY, NULL, NULL, NULL, NULL, NULL, NULL,
	  "also force this breaker (its name in the target's control block)" },
	{ "force", FL_PT_ENUM, 0, NULL, NULL, NULL, jitter_force, NULL, NULL,
	  "how to force `breaker`; required with it" },
	{ "tick", FL_PT_DURATION, 0, NULL, "1ms", "1m", NULL, NULL, NULL,
	  "client side: the common retry tick (default load.retry.base)" },
};

static const struct fl_obj_spec jitter_spec = {
	"fault.jitter", "remove retry and timer jitter", jitter_params, COUNT(jitter_params), true,
};

static const char *const cache_modes[] = { "flush", "prefix", "expire", NULL };

static const struct fl_param_spec cache_params[] = {
	{ "mode", FL_PT_ENUM, 0, "flush", NULL, NULL, cache_modes, NULL, NULL,
	  "flush every key, flush the keys under `prefix`, or expire every key at one "
	  "instant (the synchronized-TTL stampede)" },
	{ "prefix", FL_PT_STRING, FL_P_NONEMPTY, NULL, NULL, NULL, NULL, NULL, NULL,
	  "mode prefix: the key prefix to flush (required there, refused elsewhere)" },
	{ "expire_in", FL_PT_DURATION, 0, "0s", NULL, "1h", NULL, NULL, NULL,
	  "mode expire: every entry expires this long after the fault fires" },
};

static const struct fl_obj_spec cache_spec = {
	"fault.cache", "invalidate the target's cache through its admin endpoint",
	cache_params,  COUNT(cache_params),
	true,
};

static const struct fl_param_spec capacity_params[] = {
	{ "factor", FL_PT_NUMBER, FL_P_REQUIRED, NULL, "0", "100", NULL, "times normal speed", NULL,
	  "worker speed as a multiple of normal: 0.3 leaves 30% of the capacity, 0 stops the "
	  "workers" },
	{ "role", FL_PT_ENUM, 0, "dependency", NULL, NULL, roles_dependency_first, NULL, NULL,
	  "whose capacity admin endpoint is called" },
};

static const struct fl_obj_spec capacity_spec = {
	"fault.capacity",
	"scale a target process's capacity (the metastability trigger)",
	capacity_params,
	COUNT(capacity_params),
	true,
};

static int jitter_check(struct fl_reader *r, const struct fl_json *obj, const char *path,
			const struct fl_params *p)
{
	const struct fl_pval *breaker = fl_params_get(p, "breaker");
	const struct fl_pval *force = fl_params_get(p, "force");
	char sub[FL_PATH_MAX];

	if (breaker->set && !force->set) {
		fl_diag_at(r->diag, breaker->node, true, fl_path_key(sub, path, "breaker"),
			   "a forced breaker needs 'force' (open or closed)");
		return -EINVAL;
	}
	if (force->set && !breaker->set) {
		fl_diag_at(r->diag, force->node, true, fl_path_key(sub, path, "force"),
			   "'force' needs 'breaker' (the breaker to force)");
		return -EINVAL;
	}
	(void)obj;
	return 0;
}

static int cache_check(struct fl_reader *r, const struct fl_json *obj, const char *path,
		       const struct fl_params *p)
{
	const char *mode = fl_params_str(p, "mode", "flush");
	const struct fl_pval *prefix = fl_params_get(p, "prefix");
	const struct fl_pval *in = fl_params_get(p, "expire_in");
	char sub[FL_PATH_MAX];

	if (strcmp(mode, "prefix") == 0 && !prefix->set) {
		fl_diag_at(r->diag, obj, false, path, "mode 'prefix' needs 'prefix'");
		return -EINVAL;
	}
	if (strcmp(mode, "prefix") != 0 && prefix->node) {
		fl_diag_at(r->diag, prefix->node, true, fl_path_key(sub, path, "prefix"),
			   "'prefix' applies only to mode 'prefix' (mode is '%s')", mode);
		return -EINVAL;
	}
	if (strcmp(mode, "expire") != 0 && in->node) {
		fl_diag_at(r->diag, in->node, true, fl_path_key(sub, path, "expire_in"),
			   "'expire_in' applies only to mode 'expire' (mode is '%s')", mode);
		return -EINVAL;
	}
	return 0;
}

/* ---- probes ------------------------------------------------------------- */

static const char *const prom_modes[] = { "gauge", "rate", "delta", NULL };
static const char *const prom_combine[] = { "sum", "max", "min", "mean", NULL };

static const struct fl_param_spec prometheus_params[] = {
	{ "metric", FL_PT_STRING, FL_P_REQUIRED | FL_P_NONEMPTY, NULL, NULL, NULL, NULL, NULL, NULL,
	  "the series name, e.g. resilience_breaker_state" },
	{ "labels", FL_PT_MAP, 0, NULL, NULL, NULL, NULL, NULL, NULL,
	  "label values a series must have (others are ignored)" },
	{ "mode", FL_PT_ENUM, 0, "gauge", NULL, NULL, prom_modes, NULL, NULL,
	  "gauge: the value; rate: a counter's increase per second; delta: a counter's "
	  "increase since the probe's first sample" },
	{ "combine", FL_PT_ENUM, 0, "sum", NULL, NULL, prom_combine, NULL, NULL,
	  "how several matching series become one value" },
	{ "role", FL_PT_ENUM, 0, "service", NULL, NULL, roles_service_first, NULL, NULL,
	  "whose metrics endpoint is scraped (target.metrics of that process)" },
	{ "url", FL_PT_STRING, FL_P_LATE | FL_P_NONEMPTY, NULL, NULL, NULL, NULL, NULL, NULL,
	  "scrape this URL instead of the target's metrics endpoint" },
};

static const struct fl_obj_spec prometheus_spec = {
	"probe.prometheus",
	"read a series from a Prometheus text exposition",
	prometheus_params,
	COUNT(prometheus_params),
	true,
};

static const char *const http_methods[] = { "GET", "HEAD", "POST", "PUT", "DELETE", NULL };
static const char *const http_values[] = { "ok", "status", "latency", NULL };

static const struct fl_param_spec http_params[] = {
	{ "url", FL_PT_STRING, FL_P_LATE | FL_P_NONEMPTY, NULL, NULL, NULL, NULL, NULL, NULL,
	  "the URL to request (give url or path)" },
	{ "path", FL_PT_STRING, FL_P_NONEMPTY, NULL, NULL, NULL, NULL, NULL, NULL,
	  "a path on the target process's URL (give url or path)" },
	{ "role", FL_PT_ENUM, 0, "service", NULL, NULL, roles_service_first, NULL, NULL,
	  "with path: which target process" },
	{ "method", FL_PT_ENUM, 0, "GET", NULL, NULL, http_methods, NULL, NULL, "request method" },
	{ "status", FL_PT_INT, 0, "200", "100", "599", NULL, NULL, NULL, "expected status" },
	{ "body", FL_PT_REGEX, 0, NULL, NULL, NULL, NULL, NULL, NULL,
	  "a regular expression the body must match" },
	{ "header", FL_PT_MAP, 0, NULL, NULL, NULL, NULL, NULL, NULL,
	  "header name to a regular expression its value must match" },
	{ "timeout", FL_PT_DURATION, 0, "1s", "1ms", "60s", NULL, NULL, NULL,
	  "a request slower than this is a failed sample" },
	{ "value", FL_PT_ENUM, 0, "ok", NULL, NULL, http_values, NULL, NULL,
	  "what a sample yields: ok (1 when status, body and header match, else 0), the "
	  "status, or the latency in seconds" },
};

static const struct fl_obj_spec http_spec = {
	"probe.http", "request a URL: status, body, header, latency",
	http_params,  COUNT(http_params),
	true,
};

static const char *const command_values[] = { "exit", "number", "regex", NULL };

static const struct fl_param_spec command_params[] = {
	{ "argv", FL_PT_STRINGS, FL_P_REQUIRED | FL_P_NONEMPTY | FL_P_LATE, NULL, NULL, NULL, NULL,
	  NULL, NULL, "the program and its arguments (executed without a shell)" },
	{ "timeout", FL_PT_DURATION, 0, "5s", "1ms", "10m", NULL, NULL, NULL,
	  "a run slower than this is killed and is a failed sample" },
	{ "value", FL_PT_ENUM, 0, "exit", NULL, NULL, command_values, NULL, NULL,
	  "what a sample yields: the exit status, a number from stdout (the first, or "
	  "regex's first group), or 1/0 as stdout matches regex" },
	{ "regex", FL_PT_REGEX, 0, NULL, NULL, NULL, NULL, NULL, NULL,
	  "value regex: what stdout must match; value number: where the number is (group 1)" },
	{ "env", FL_PT_MAP, FL_P_LATE, NULL, NULL, NULL, NULL, NULL, NULL,
	  "extra environment variables" },
	{ "cwd", FL_PT_STRING, FL_P_NONEMPTY, NULL, NULL, NULL, NULL, NULL, NULL,
	  "working directory (default: the experiment file's directory)" },
};

static const struct fl_obj_spec command_spec = {
	"probe.command",
	"run a program: exit status, a number or a match from its output",
	command_params,
	COUNT(command_params),
	true,
};

const char *const fl_client_metrics[] = {
	"requests",   "attempts",    "successes",     "failures",    "error_rate",   "shed_rate",
	"timeouts",   "latency_p50", "latency_p90",   "latency_p99", "latency_p999", "latency_max",
	"throughput", "goodput",     "amplification", NULL,
};

static const char *const client_latency[] = { "corrected", "uncorrected", "first", NULL };

static const struct fl_param_spec client_params[] = {
	{ "metric", FL_PT_ENUM, FL_P_REQUIRED, NULL, NULL, NULL, fl_client_metrics, NULL, NULL,
	  "requests, attempts, successes, failures, timeouts: cumulative counts since load "
	  "started; rates and ratios in [0, 1]; latency in seconds; "
	  "throughput and goodput per second; amplification = attempts / requests" },
	{ "latency", FL_PT_ENUM, 0, "corrected", NULL, NULL, client_latency, NULL, NULL,
	  "latency metrics: end to end from the due time (corrected), from the first send "
	  "(uncorrected), or first attempts only" },
};

static const struct fl_obj_spec client_spec = {
	"probe.client", "the load generator's own view of the run",
	client_params,	COUNT(client_params),
	true,
};

static int http_check(struct fl_reader *r, const struct fl_json *obj, const char *path,
		      const struct fl_params *p)
{
	const struct fl_pval *url = fl_params_get(p, "url"), *pth = fl_params_get(p, "path");
	const struct fl_pval *header = fl_params_get(p, "header");
	struct fl_param_spec rx = { "header", FL_PT_REGEX, 0,	 NULL, NULL,
				    NULL,     NULL,	   NULL, NULL, NULL };
	char sub[FL_PATH_MAX], hsub[FL_PATH_MAX];
	int bad = 0;

	if (url->node && pth->node) {
		fl_diag_at(r->diag, pth->node, true, fl_path_key(sub, path, "path"),
			   "give 'url' or 'path', not both");
		bad = 1;
	} else if (!url->node && !pth->node) {
		fl_diag_at(r->diag, obj, false, path, "missing 'url' or 'path' (what to request)");
		bad = 1;
	}
	if (pth->set && pth->s && pth->s[0] != '/') {
		fl_diag_at(r->diag, pth->node, false, fl_path_key(sub, path, "path"),
			   "a path starts with '/', got '%.60s'", pth->s);
		bad = 1;
	}
	if (header->set) {
		size_t i = 0;

		for (const struct fl_json *e = header->node->child; e; e = e->next, i++) {
			struct fl_pval tmp;
			int rc;

			fl_path_key(hsub, fl_path_key(sub, path, "header"), e->key);
			rc = fl_param_read_value(r, &rx, e, hsub, &tmp);
			if (rc == -ENOMEM)
				return rc;
			bad |= rc != 0;
		}
	}
	return bad ? -EINVAL : 0;
}

static int command_check(struct fl_reader *r, const struct fl_json *obj, const char *path,
			 const struct fl_params *p)
{
	const char *value = fl_params_str(p, "value", "exit");
	const struct fl_pval *regex = fl_params_get(p, "regex");
	char sub[FL_PATH_MAX];

	if (strcmp(value, "regex") == 0 && !regex->set) {
		fl_diag_at(r->diag, obj, false, path, "value 'regex' needs 'regex'");
		return -EINVAL;
	}
	if (strcmp(value, "exit") == 0 && regex->node) {
		fl_diag_at(r->diag, regex->node, true, fl_path_key(sub, path, "regex"),
			   "'regex' does not apply to value 'exit'");
		return -EINVAL;
	}
	return 0;
}

/* ---- the registry --------------------------------------------------------- */

static const struct fl_family families[] = {
	{ "jitter", FL_FAULT, FL_FAM_REVERTS,
	  "remove jitter: the target's through its control block, the load generator's by "
	  "lockstep retries",
	  "a target built on the core and started by faultline (or target.control)", &jitter_spec,
	  jitter_check },
	{ "cache", FL_FAULT, FL_FAM_INSTANT | FL_FAM_REPEAT,
	  "invalidate the service's cache: flush all, flush a prefix, or synchronized expiry; "
	  "once or every `repeat`",
	  "the service's admin endpoint (target.admin)", &cache_spec, cache_check },
	{ "capacity", FL_FAULT, FL_FAM_REVERTS,
	  "scale a process's worker speed through its capacity admin endpoint; revert restores "
	  "the previous factor",
	  "the process's admin endpoint (target.dependency.admin)", &capacity_spec, NULL },
	{ "prometheus", FL_PROBE, 0,
	  "scrape a Prometheus text exposition and select one series by name and labels",
	  "a metrics endpoint", &prometheus_spec, NULL },
	{ "http", FL_PROBE, 0, "request a URL and check status, body and header, or time it",
	  "an HTTP endpoint", &http_spec, http_check },
	{ "command", FL_PROBE, 0,
	  "run a program (no shell) and read its exit status or a value from its output",
	  "the program", &command_spec, command_check },
	{ "client", FL_PROBE, 0,
	  "the load generator's intervals: rates, error ratios, latency quantiles, "
	  "attempts per request",
	  "nothing", &client_spec, NULL },
};

const struct fl_family *fl_families(size_t *n)
{
	*n = COUNT(families);
	return families;
}

const struct fl_family *fl_family_find(enum fl_family_kind kind, const char *name)
{
	for (size_t i = 0; i < COUNT(families); i++)
		if (families[i].kind == kind && strcmp(families[i].name, name) == 0)
			return &families[i];
	return NULL;
}

char *fl_family_names(enum fl_family_kind kind, char *buf, size_t size)
{
	size_t used = 0;

	if (!size)
		return buf;
	buf[0] = '\0';
	for (size_t i = 0; i < COUNT(families) && used < size; i++) {
		int n;

		if (families[i].kind != kind)
			continue;
		n = snprintf(buf + used, size - used, "%s%s", used ? ", " : "", families[i].name);
		used += n > 0 ? (size_t)n : 0;
	}
	return buf;
}
