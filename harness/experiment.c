/* Experiments: the format's tables, the loader and the validator (see
 * experiment.h).  The loader reads the document section by section; each
 * reader reports its own errors and keeps going where that is safe, so a
 * file gets all its errors (up to FL_DIAG_MAX) in one pass. */
#include "harness/experiment.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness/duration.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the format: one spec per object ----------------------------------- */

static const char *const aggregates[] = { "max",  "min",   "mean", "p50", "p99",
					  "rate", "delta", "last", NULL };
static const char *const backoffs[] = {
	"none", "full-jitter", "equal-jitter", "decorrelated-jitter", "proportional-jitter", NULL
};
static const char *const methods[] = { "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", NULL };

static const struct fl_param_spec settings_params[] = {
	{ "cadence", FL_PT_DURATION, 0, "100ms", "10ms", "10s", NULL, NULL, NULL,
	  "how often every probe is sampled" },
	{ "warmup", FL_PT_DURATION, 0, "1s", NULL, "1h", NULL, NULL, NULL,
	  "load runs this long before anything is judged" },
	{ "steady_window", FL_PT_DURATION, 0, "2s", "10ms", "1h", NULL, NULL, NULL,
	  "length of the baseline and final steady-state windows; the default settle of "
	  "recovers" },
	{ "recovery", FL_PT_DURATION, 0, "5s", NULL, "1h", NULL, NULL, NULL,
	  "time between the last action's end and the final steady-state window" },
};
static const struct fl_obj_spec settings_spec = { "settings", "run settings", settings_params,
						  COUNT(settings_params), false };

static const struct fl_param_spec ready_params[] = {
	{ "path", FL_PT_STRING, FL_P_NONEMPTY, "/healthz", NULL, NULL, NULL, NULL, NULL,
	  "GET this path on the process's url until it answers `status`" },
	{ "status", FL_PT_INT, 0, "200", "100", "599", NULL, NULL, NULL,
	  "the status that means ready" },
	{ "timeout", FL_PT_DURATION, 0, "10s", "10ms", "10m", NULL, NULL, NULL,
	  "give up (and fail the run) after this long" },
	{ "interval", FL_PT_DURATION, 0, "50ms", "1ms", "10s", NULL, NULL, NULL,
	  "time between tries" },
};
static const struct fl_obj_spec ready_spec = { "target.ready", "readiness check", ready_params,
					       COUNT(ready_params), false };

/* The keys of a target process; `late` prefixes the names of its late
 * variables ("" for the service, "dependency_" for the dependency). */
/* clang-format off */
#define PROC_PARAMS(late)                                                                  \
	{ "command", FL_PT_STRINGS, FL_P_NONEMPTY | FL_P_LATE, NULL, NULL, NULL, NULL, NULL,  \
	  NULL, "argv of the process to start (no shell); give command, url or both" },       \
	{ "url", FL_PT_STRING, FL_P_NONEMPTY | FL_P_LATE, NULL, NULL, NULL, NULL, NULL, NULL, \
	  "base URL (http://host:port); default http://127.0.0.1:${" late "port} for an "     \
	  "announcing command" },                                                              \
	{ "admin", FL_PT_STRING, FL_P_NONEMPTY | FL_P_LATE, NULL, NULL, NULL, NULL, NULL,     \
	  NULL, "admin base URL; default http://127.0.0.1:${" late "admin_port} for an "      \
	  "announcing command" },                                                              \
	{ "announce", FL_PT_BOOL, 0, "true", NULL, NULL, NULL, NULL, NULL,                     \
	  "the command prints 'listening http=127.0.0.1:PORT admin=127.0.0.1:PORT'" },        \
	{ "metrics", FL_PT_STRING, FL_P_NONEMPTY, "/metrics", NULL, NULL, NULL, NULL, NULL,    \
	  "path of the Prometheus endpoint on url" },                                          \
	{ "ready", FL_PT_OBJECT, 0, NULL, NULL, NULL, NULL, NULL, &ready_spec,                 \
	  "readiness check" },                                                                 \
	{ "env", FL_PT_MAP, FL_P_LATE, NULL, NULL, NULL, NULL, NULL, NULL,                     \
	  "environment variables added for the command" },                                     \
	{ "cwd", FL_PT_STRING, FL_P_NONEMPTY, NULL, NULL, NULL, NULL, NULL, NULL,              \
	  "working directory of the command (default: the experiment's directory)" },          \
	{ "control", FL_PT_STRING, FL_P_NONEMPTY, NULL, NULL, NULL, NULL, NULL, NULL,          \
	  "control block file (RESILIENCE_CONTROL); default: one faultline creates" },         \
	{ "stop_timeout", FL_PT_DURATION, 0, "5s", "1ms", "10m", NULL, NULL, NULL,             \
	  "SIGTERM, then SIGKILL after this long" }
/* clang-format on */

static const struct fl_param_spec dependency_params[] = { PROC_PARAMS("dependency_") };
static const struct fl_obj_spec dependency_spec = { "target.dependency", "the dependency process",
						    dependency_params, COUNT(dependency_params),
						    false };

static const struct fl_param_spec target_params[] = {
	PROC_PARAMS(""),
	{ "dependency", FL_PT_OBJECT, 0, NULL, NULL, NULL, NULL, NULL, &dependency_spec,
	  "the service's dependency, started first" },
};
static const struct fl_obj_spec target_spec = { "target", "the system under test", target_params,
						COUNT(target_params), false };

static const struct fl_param_spec request_params[] = {
	{ "method", FL_PT_ENUM, 0, "GET", NULL, NULL, methods, NULL, NULL, "request method" },
	{ "path", FL_PT_STRING, FL_P_NONEMPTY | FL_P_TEMPLATE, "/", NULL, NULL, NULL, NULL, NULL,
	  "path template (${seq}, ${rand:A:B}, ${zipf:N:S}, ${uuid})" },
	{ "headers", FL_PT_MAP, FL_P_TEMPLATE, NULL, NULL, NULL, NULL, NULL, NULL,
	  "header name to value template" },
	{ "body", FL_PT_STRING, FL_P_TEMPLATE, NULL, NULL, NULL, NULL, NULL, NULL,
	  "body template" },
};
static const struct fl_obj_spec request_spec = { "load.request", "the request template",
						 request_params, COUNT(request_params), false };

static const struct fl_param_spec budget_params[] = {
	{ "ratio", FL_PT_FRACTION, FL_P_REQUIRED, NULL, NULL, NULL, NULL, NULL, NULL,
	  "retries allowed per request in the window" },
	{ "window", FL_PT_DURATION, 0, "10s", "1ms", "1h", NULL, NULL, NULL,
	  "the budget's window" },
};
static const struct fl_obj_spec budget_spec = { "load.retry.budget", "a retry budget",
						budget_params, COUNT(budget_params), false };

static const struct fl_param_spec retry_params[] = {
	{ "attempts", FL_PT_INT, 0, "1", "1", "100", NULL, NULL, NULL,
	  "attempts per request, the first included (1: no retries)" },
	{ "backoff", FL_PT_ENUM, 0, "full-jitter", NULL, NULL, backoffs, NULL, NULL,
	  "delay strategy between attempts" },
	{ "base", FL_PT_DURATION, 0, "10ms", "1us", "1h", NULL, NULL, NULL, "first retry's delay" },
	{ "cap", FL_PT_DURATION, 0, "1s", "1us", "1h", NULL, NULL, NULL, "largest delay" },
	{ "multiplier", FL_PT_NUMBER, 0, "2", "1", "100", NULL, NULL, NULL,
	  "growth of the delay per retry" },
	{ "budget", FL_PT_OBJECT, 0, NULL, NULL, NULL, NULL, NULL, &budget_spec,
	  "bound retries to a ratio of requests (none: unbounded)" },
};
static const struct fl_obj_spec retry_spec = { "load.retry", "client retries", retry_params,
					       COUNT(retry_params), false };

static const struct fl_param_spec load_params[] = {
	{ "url", FL_PT_STRING, FL_P_NONEMPTY | FL_P_LATE, NULL, NULL, NULL, NULL, NULL, NULL,
	  "base URL to load (default target.url)" },
	{ "rate", FL_PT_NUMBER, 0, "0", "0", "10000000", NULL, "requests/s", NULL,
	  "open loop at this rate; 0 or absent: closed loop" },
	{ "connections", FL_PT_INT, 0, "10", "1", "10000", NULL, NULL, NULL,
	  "persistent connections" },
	{ "duration", FL_PT_DURATION, 0, NULL, "100ms", "24h", NULL, NULL, NULL,
	  "how long load runs (default: as long as the plan needs)" },
	{ "request", FL_PT_OBJECT, 0, NULL, NULL, NULL, NULL, NULL, &request_spec, "what to send" },
	{ "timeout", FL_PT_DURATION, 0, "2s", "1ms", "10m", NULL, NULL, NULL, "per attempt" },
	{ "deadline", FL_PT_DURATION, 0, NULL, "1ms", "1h", NULL, NULL, NULL,
	  "per request, retries included (default none)" },
	{ "drain", FL_PT_DURATION, 0, NULL, NULL, "10m", NULL, NULL, NULL,
	  "after the end, outstanding requests may finish for this long (default timeout)" },
	{ "retry", FL_PT_OBJECT, 0, NULL, NULL, NULL, NULL, NULL, &retry_spec, "client retries" },
	{ "seed", FL_PT_UINT64, 0, NULL, NULL, NULL, NULL, NULL, NULL,
	  "seed of the request templates and jitter (default: the experiment's seed)" },
};
static const struct fl_obj_spec load_spec = { "load", "the load generator", load_params,
					      COUNT(load_params), false };

static const struct fl_obj_spec probe_spec = { "probe", "a probe: type plus its family's keys",
					       NULL, 0, true };
static const struct fl_obj_spec fault_spec = { "fault", "a fault: type plus its family's keys",
					       NULL, 0, true };

/* clang-format off */
#define PRED_PARAMS                                                                       \
	{ "eq", FL_PT_BOUND, 0, NULL, NULL, NULL, NULL, NULL, NULL, "equal to" },          \
	{ "ne", FL_PT_BOUND, 0, NULL, NULL, NULL, NULL, NULL, NULL, "not equal to" },      \
	{ "lt", FL_PT_BOUND, 0, NULL, NULL, NULL, NULL, NULL, NULL, "less than" },         \
	{ "le", FL_PT_BOUND, 0, NULL, NULL, NULL, NULL, NULL, NULL, "at most" },           \
	{ "gt", FL_PT_BOUND, 0, NULL, NULL, NULL, NULL, NULL, NULL, "greater than" },      \
	{ "ge", FL_PT_BOUND, 0, NULL, NULL, NULL, NULL, NULL, NULL, "at least" }
/* clang-format on */

static const struct fl_param_spec predicate_params[] = { PRED_PARAMS };
static const struct fl_obj_spec predicate_spec = { "predicate",
						   "a comparison: exactly one of its keys",
						   predicate_params, COUNT(predicate_params),
						   false };

/* clang-format off */
#define CHECK_PARAMS                                                                       \
	{ "name", FL_PT_STRING, FL_P_NONEMPTY | FL_P_NOVARS, NULL, NULL, NULL, NULL, NULL,  \
	  NULL, "label in reports (default: generated from probe and bound)" },             \
	{ "probe", FL_PT_ANY, FL_P_REQUIRED, NULL, NULL, NULL, NULL, NULL, &probe_spec,     \
	  "a probe name, \"client.<metric>\", or an inline probe object" },                 \
	PRED_PARAMS,                                                                        \
	{ "max", FL_PT_BOUND, 0, NULL, NULL, NULL, NULL, NULL, NULL, "at most (le)" },      \
	{ "min", FL_PT_BOUND, 0, NULL, NULL, NULL, NULL, NULL, NULL, "at least (ge)" },     \
	{ "aggregate", FL_PT_ENUM, 0, NULL, NULL, NULL, aggregates, NULL, NULL,             \
	  "compare this aggregate of the window's samples (default: every sample)" }
/* clang-format on */

static const struct fl_param_spec check_params[] = { CHECK_PARAMS };
static const struct fl_obj_spec check_spec = { "check", "a steady-state check", check_params,
					       COUNT(check_params), false };

static const struct fl_param_spec abort_params[] = {
	CHECK_PARAMS,
	{ "for", FL_PT_DURATION, 0, "0s", NULL, "1h", NULL, NULL, NULL,
	  "stop the run when the check has failed this long" },
};
static const struct fl_obj_spec abort_spec = { "abort", "a stop condition", abort_params,
					       COUNT(abort_params), false };

static const struct fl_param_spec action_params[] = {
	{ "name", FL_PT_STRING, FL_P_REQUIRED | FL_P_NOVARS, NULL, NULL, NULL, NULL, NULL, NULL,
	  "unique, [a-z0-9][a-z0-9-]*; names the events <name>.start and <name>.end" },
	{ "description", FL_PT_STRING, 0, NULL, NULL, NULL, NULL, NULL, NULL, "for people" },
	{ "at", FL_PT_DURATION, FL_P_REQUIRED, NULL, NULL, "24h", NULL, NULL, NULL,
	  "offset from the start of the run" },
	{ "for", FL_PT_DURATION, 0, NULL, "1ms", "24h", NULL, NULL, NULL,
	  "how long the fault lasts (absent: an instantaneous fault)" },
	{ "repeat", FL_PT_DURATION, 0, NULL, "10ms", "1h", NULL, NULL, NULL,
	  "re-apply every this long while the action lasts (families that allow it)" },
	{ "fault", FL_PT_OBJECT, FL_P_REQUIRED, NULL, NULL, NULL, NULL, NULL, &fault_spec,
	  "the fault: type plus its family's keys" },
};
static const struct fl_obj_spec action_spec = { "action", "a fault action", action_params,
						COUNT(action_params), false };

static const struct fl_param_spec value_params[] = {
	{ "ratio", FL_PT_ARRAY, FL_P_REQUIRED, NULL, NULL, NULL, NULL, NULL, NULL,
	  "[numerator, denominator] probes: the ratio of their increases over the window" },
};
static const struct fl_obj_spec value_spec = { "value", "a derived value", value_params,
					       COUNT(value_params), false };

static const struct fl_param_spec expect_params[] = {
	{ "name", FL_PT_STRING, FL_P_REQUIRED | FL_P_NONEMPTY | FL_P_NOVARS, NULL, NULL, NULL, NULL,
	  NULL, NULL, "unique; also names the event of its first transition" },
	{ "description", FL_PT_STRING, 0, NULL, NULL, NULL, NULL, NULL, NULL, "for people" },
	{ "probe", FL_PT_ANY, 0, NULL, NULL, NULL, NULL, NULL, &probe_spec,
	  "what is observed: a probe name, \"client.<metric>\", or an inline probe" },
	{ "value", FL_PT_OBJECT, 0, NULL, NULL, NULL, NULL, NULL, &value_spec,
	  "instead of probe (holds, max, min): {\"ratio\": [numerator, denominator]}" },
	{ "becomes", FL_PT_OBJECT, 0, NULL, NULL, NULL, NULL, NULL, &predicate_spec,
	  "kind becomes: the predicate first holds within `within` after `after`" },
	{ "holds", FL_PT_OBJECT, 0, NULL, NULL, NULL, NULL, NULL, &predicate_spec,
	  "kind holds: the predicate holds over the window" },
	{ "never", FL_PT_OBJECT, 0, NULL, NULL, NULL, NULL, NULL, &predicate_spec,
	  "kind never: the predicate holds for no sample of the window" },
	{ "max", FL_PT_BOUND, 0, NULL, NULL, NULL, NULL, NULL, NULL,
	  "kind max: holds {\"le\": max}" },
	{ "min", FL_PT_BOUND, 0, NULL, NULL, NULL, NULL, NULL, NULL,
	  "kind min: holds {\"ge\": min}" },
	{ "recovers", FL_PT_BOOL, 0, NULL, NULL, NULL, NULL, NULL, NULL,
	  "kind recovers (true): the steady-state checks hold again within `within` after "
	  "`after` and keep holding for `settle`" },
	{ "order", FL_PT_STRINGS, FL_P_NOVARS, NULL, NULL, NULL, NULL, NULL, NULL,
	  "kind order: [first, second] events; the first happens before the second" },
	{ "within", FL_PT_DURATION, 0, NULL, "1ms", "24h", NULL, NULL, NULL,
	  "becomes, recovers: the bound" },
	{ "after", FL_PT_STRING, FL_P_NOVARS | FL_P_NONEMPTY, NULL, NULL, NULL, NULL, NULL, NULL,
	  "the event the bound or window starts from (becomes: default start)" },
	{ "during", FL_PT_STRING, FL_P_NOVARS | FL_P_NONEMPTY, NULL, NULL, NULL, NULL, NULL, NULL,
	  "holds, max, min, never: the window is this action's" },
	{ "for", FL_PT_DURATION, 0, NULL, "1ms", "24h", NULL, NULL, NULL,
	  "holds, max, min, never: the window's length from `after` (default: to the end)" },
	{ "settle", FL_PT_DURATION, 0, NULL, NULL, "1h", NULL, NULL, NULL,
	  "recovers: how long the checks must keep holding (default settings.steady_window)" },
	{ "aggregate", FL_PT_ENUM, 0, NULL, NULL, NULL, aggregates, NULL, NULL,
	  "holds, max, min: compare this aggregate of the window (default: every sample)" },
};
static const struct fl_obj_spec expect_spec = { "expectation", "an expectation", expect_params,
						COUNT(expect_params), false };

static const struct fl_param_spec experiment_params[] = {
	{ "version", FL_PT_INT, FL_P_REQUIRED, NULL, NULL, NULL, NULL, NULL, NULL,
	  "format version: 1" },
	{ "title", FL_PT_STRING, FL_P_REQUIRED | FL_P_NONEMPTY, NULL, NULL, NULL, NULL, NULL, NULL,
	  "one line" },
	{ "description", FL_PT_STRING, 0, NULL, NULL, NULL, NULL, NULL, NULL, "for people" },
	{ "tags", FL_PT_STRINGS, 0, NULL, NULL, NULL, NULL, NULL, NULL, "labels for reports" },
	{ "seed", FL_PT_UINT64, 0, "1", NULL, NULL, NULL, NULL, NULL,
	  "seed of every random choice (--seed overrides)" },
	{ "variables", FL_PT_MAP, FL_P_NOVARS, NULL, NULL, NULL, NULL, NULL, NULL,
	  "defaults of ${name} variables" },
	{ "settings", FL_PT_OBJECT, 0, NULL, NULL, NULL, NULL, NULL, &settings_spec,
	  "cadence, warm-up, windows" },
	{ "target", FL_PT_OBJECT, FL_P_REQUIRED, NULL, NULL, NULL, NULL, NULL, &target_spec,
	  "the system under test" },
	{ "load", FL_PT_OBJECT, FL_P_REQUIRED, NULL, NULL, NULL, NULL, NULL, &load_spec,
	  "the load generator's settings" },
	{ "probes", FL_PT_OBJECT, 0, NULL, NULL, NULL, NULL, NULL, &probe_spec,
	  "named probes: name to probe object" },
	{ "steady_state", FL_PT_ARRAY, 0, NULL, NULL, NULL, NULL, NULL, &check_spec,
	  "checks that hold before the method and again after recovery" },
	{ "method", FL_PT_ARRAY, 0, NULL, NULL, NULL, NULL, NULL, &action_spec,
	  "fault actions (may overlap)" },
	{ "expect", FL_PT_ARRAY, 0, NULL, NULL, NULL, NULL, NULL, &expect_spec, "expectations" },
	{ "abort", FL_PT_ARRAY, 0, NULL, NULL, NULL, NULL, NULL, &abort_spec, "stop conditions" },
};
static const struct fl_obj_spec experiment_spec = { "experiment", "the top level",
						    experiment_params, COUNT(experiment_params),
						    false };

size_t fl_experiment_specs(const struct fl_obj_spec **out, size_t cap)
{
	const struct fl_obj_spec *const own[] = {
		&experiment_spec, &settings_spec, &target_spec, &dependency_spec, &ready_spec,
		&load_spec,	  &request_spec,  &retry_spec,	&budget_spec,	  &probe_spec,
		&check_spec,	  &abort_spec,	  &action_spec, &fault_spec,	  &expect_spec,
		&predicate_spec,  &value_spec,
	};
	size_t nf, k = 0;
	const struct fl_family *f = fl_families(&nf);

	for (size_t i = 0; i < COUNT(own); i++, k++)
		if (k < cap)
			out[k] = own[i];
	for (size_t i = 0; i < nf; i++, k++)
		if (k < cap)
			out[k] = f[i].spec;
	return k;
}

/* ---- loading state ------------------------------------------------------ */

enum {
	K_BECOMES = 1u << 0,
	K_HOLDS = 1u << 1,
	K_NEVER = 1u << 2,
	K_MAX = 1u << 3,
	K_MIN = 1u << 4,
	K_RECOVERS = 1u << 5,
	K_ORDER = 1u << 6,
	K_HOLDLIKE = K_HOLDS | K_MAX | K_MIN,
};

static const char *const kind_keys[] = { "becomes", "holds",	"never", "max",
					 "min",	    "recovers", "order" };

struct ld {
	struct fl_experiment *x;
	struct fl_diag *diag;
	struct fl_reader r;
	const struct fl_vars *vars;
	const struct fl_json *defaults; /* the `variables` object, or NULL */
	size_t expanded;		/* bytes substituted so far */
	bool ports_service, ports_dependency;
	size_t nnamed;	     /* named probes: x->probes[0 .. nnamed) */
	unsigned *exp_kind;  /* per expectation: its K_* (0 when unknown) */
	const char **events; /* every event name, for "did you mean" */
	size_t nevents;
	size_t nvars_cap;
};

#define TRY(expr)                                                                                  \
	do {                                                                                       \
		int rc_ = (expr);                                                                  \
		if (rc_ == -ENOMEM)                                                                \
			return rc_;                                                                \
	} while (0)

static const struct fl_json empty_object = { .type = FL_JSON_OBJECT };

static const struct fl_pval *pv(const struct fl_params *p, const char *name)
{
	return fl_params_get(p, name);
}

static char *dur(uint64_t ns, char *buf, size_t size)
{
	return fl_duration_format(ns, buf, size);
}

/* ---- variables ------------------------------------------------------------- */

static const char *const late_names[] = { "port", "admin_port", "dependency_port",
					  "dependency_admin_port" };

static bool is_late(const char *name, size_t n)
{
	for (size_t i = 0; i < COUNT(late_names); i++)
		if (strlen(late_names[i]) == n && memcmp(late_names[i], name, n) == 0)
			return true;
	return false;
}

static bool ident(const char *s, size_t n)
{
	if (n == 0 || n > 64 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(s[i] == '_' || (s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z')))
			return false;
	return true;
}

static int record_var(struct ld *L, const char *name, size_t n, const char *value,
		      const char *source)
{
	struct fl_experiment *x = L->x;
	struct fl_var *grown;

	for (size_t i = 0; i < x->nvars; i++)
		if (strlen(x->vars[i].name) == n && memcmp(x->vars[i].name, name, n) == 0)
			return 0;
	if (x->nvars == L->nvars_cap) {
		size_t cap = L->nvars_cap ? 2 * L->nvars_cap : 8;

		grown = fl_arena_alloc(&x->arena, cap * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		if (x->nvars)
			memcpy(grown, x->vars, x->nvars * sizeof(*grown));
		x->vars = grown;
		L->nvars_cap = cap;
	}
	x->vars[x->nvars].name = fl_arena_strndup(&x->arena, name, n);
	if (!x->vars[x->nvars].name)
		return -ENOMEM;
	x->vars[x->nvars].value = value;
	x->vars[x->nvars].source = source;
	x->nvars++;
	return 0;
}

/* The value of variable name[0..n): --var, then the environment, then the
 * defaults.  0, -ENOENT, or -ENOMEM (recording it). */
static int lookup_var(struct ld *L, const char *name, size_t n, const char **val)
{
	const char *source = NULL;
	char tmp[72];

	*val = NULL;
	for (size_t i = 0; L->vars && i < L->vars->nset && !*val; i++) {
		const char *kv = L->vars->set[i], *eq = kv ? strchr(kv, '=') : NULL;

		if (eq && (size_t)(eq - kv) == n && memcmp(kv, name, n) == 0) {
			*val = eq + 1;
			source = "--var";
		}
	}
	if (!*val && !(L->vars && L->vars->no_env) && n < sizeof(tmp)) {
		memcpy(tmp, name, n);
		tmp[n] = '\0';
		*val = getenv(tmp);
		source = "environment";
	}
	if (!*val && L->defaults) {
		for (const struct fl_json *m = L->defaults->child; m; m = m->next)
			if (m->key_len == n && memcmp(m->key, name, n) == 0 &&
			    m->type == FL_JSON_STRING && !memchr(m->str, '\0', m->len)) {
				*val = m->str;
				source = "default";
				break;
			}
	}
	if (!*val)
		return -ENOENT;
	return record_var(L, name, n, *val, source);
}

static bool digits(const char *s, size_t n)
{
	if (n == 0 || n > 20)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* ${rand:A:B} and ${zipf:N:S}: 0 when well-formed, else a reason. */
static int check_template_var(const char *v, size_t n, char *why, size_t wl)
{
	const char *c1 = memchr(v, ':', n), *c2;
	size_t a_len, b_len;
	char a[24], b[24];

	if (!c1)
		return -EINVAL;
	c2 = memchr(c1 + 1, ':', n - (size_t)(c1 + 1 - v));
	if (!c2)
		goto bad;
	a_len = (size_t)(c2 - c1 - 1);
	b_len = n - (size_t)(c2 + 1 - v);
	if (a_len >= sizeof(a) || b_len >= sizeof(b))
		goto bad;
	memcpy(a, c1 + 1, a_len);
	a[a_len] = '\0';
	memcpy(b, c2 + 1, b_len);
	b[b_len] = '\0';
	if ((size_t)(c1 - v) == 4 && memcmp(v, "rand", 4) == 0) {
		if (!digits(a, a_len) || !digits(b, b_len))
			goto bad;
		errno = 0;
		if (strtoull(a, NULL, 10) > strtoull(b, NULL, 10) || errno) {
			snprintf(why, wl, "bad arguments to '${%.*s}': A must be <= B", (int)n, v);
			return -EINVAL;
		}
		return 0;
	}
	if ((size_t)(c1 - v) == 4 && memcmp(v, "zipf", 4) == 0) {
		char *end;
		double s;

		if (!digits(a, a_len) || strtoull(a, NULL, 10) < 1)
			goto bad;
		s = strtod(b, &end);
		if (b_len == 0 || *end || !(s >= 0 && s <= 100))
			goto bad;
		return 0;
	}
bad:
	snprintf(why, wl,
		 "bad template variable '${%.*s}' (template variables: ${seq}, ${uuid}, "
		 "${rand:A:B}, ${zipf:N:S})",
		 (int)(n > 40 ? 40 : n), v);
	return -EINVAL;
}

/* One pass of substitution: counts the output (buf NULL) or writes it. */
static int expand_pass(struct ld *L, const char *s, size_t n, unsigned flags, char *buf,
		       size_t *len, char *why, size_t wl)
{
	bool keep_dollars = flags & (FL_P_TEMPLATE | FL_P_LATE);
	size_t o = 0;
	int rc;

	for (size_t i = 0; i < n;) {
		const char *name, *close, *val;
		size_t nl, vl;

		if (s[i] != '$' || i + 1 >= n || (s[i + 1] != '{' && s[i + 1] != '$')) {
			if (buf)
				buf[o] = s[i];
			o++;
			i++;
			continue;
		}
		if (s[i + 1] == '$') {
			if (buf) {
				buf[o] = '$';
				if (keep_dollars)
					buf[o + 1] = '$';
			}
			o += keep_dollars ? 2 : 1;
			i += 2;
			continue;
		}
		name = s + i + 2;
		close = memchr(name, '}', n - i - 2);
		if (!close) {
			snprintf(why, wl,
				 "unterminated '${' at column %zu (write '$$' for a literal '$')",
				 i + 1);
			return -EINVAL;
		}
		nl = (size_t)(close - name);
		val = NULL;
		if (memchr(name, ':', nl) || (nl == 3 && memcmp(name, "seq", 3) == 0) ||
		    (nl == 4 && memcmp(name, "uuid", 4) == 0)) {
			if (!(flags & FL_P_TEMPLATE)) {
				snprintf(why, wl,
					 "'${%.*s}' is a load-generator template variable; only "
					 "load.request fields expand it",
					 (int)(nl > 40 ? 40 : nl), name);
				return -EINVAL;
			}
			if (memchr(name, ':', nl) && check_template_var(name, nl, why, wl) != 0)
				return -EINVAL;
		} else if (is_late(name, nl)) {
			bool dep = nl > 10 && memcmp(name, "dependency", 10) == 0;

			if (!(flags & FL_P_LATE)) {
				snprintf(why, wl,
					 "'${%.*s}' is known only once the target runs; it is not "
					 "allowed in this field",
					 (int)nl, name);
				return -EINVAL;
			}
			if (dep ? !L->ports_dependency : !L->ports_service) {
				snprintf(why, wl,
					 "'${%.*s}' needs %s with announce true (a process that "
					 "prints its ports)",
					 (int)nl, name,
					 dep ? "target.dependency.command" : "target.command");
				return -EINVAL;
			}
		} else if (!ident(name, nl)) {
			snprintf(why, wl,
				 "invalid variable name '${%.*s}' (letters, digits and '_'; "
				 "write '$$' for a literal '$')",
				 (int)(nl > 40 ? 40 : nl), name);
			return -EINVAL;
		} else {
			rc = lookup_var(L, name, nl, &val);
			if (rc == -ENOMEM)
				return rc;
			if (rc) {
				snprintf(
				    why, wl,
				    "undefined variable '${%.*s}' (declare it in variables, pass "
				    "--var %.*s=VALUE, or set it in the environment)",
				    (int)nl, name, (int)nl, name);
				return -EINVAL;
			}
		}
		if (!val) {
			/* Kept as written, for the load generator or the runner. */
			if (buf)
				memcpy(buf + o, s + i, nl + 3);
			o += nl + 3;
		} else {
			vl = strlen(val);
			if (buf)
				memcpy(buf + o, val, vl);
			o += vl;
		}
		if (o > FL_MAX_EXPANDED) {
			snprintf(why, wl, "longer than %u bytes after variable substitution",
				 FL_MAX_EXPANDED);
			return -EINVAL;
		}
		i += nl + 3;
	}
	*len = o;
	return 0;
}

static int expand(void *ctx, const char *s, size_t n, unsigned flags, const char **out, char *why,
		  size_t wl)
{
	struct ld *L = ctx;
	size_t len;
	char *buf;
	int rc;

	*out = s;
	if (!memchr(s, '$', n))
		return 0;
	rc = expand_pass(L, s, n, flags, NULL, &len, why, wl);
	if (rc)
		return rc;
	if (len > FL_MAX_EXPANSION - L->expanded) {
		snprintf(why, wl, "variable substitution exceeds %u MiB in this experiment",
			 FL_MAX_EXPANSION >> 20);
		return -EINVAL;
	}
	L->expanded += len;
	buf = fl_arena_alloc(&L->x->arena, len + 1);
	if (!buf)
		return -ENOMEM;
	rc = expand_pass(L, s, n, flags, buf, &len, why, wl);
	if (rc)
		return rc;
	buf[len] = '\0';
	*out = buf;
	return 0;
}

int fl_expand_late(const char *s, const struct fl_ports *ports, char *buf, size_t size,
		   struct rs_err *err)
{
	size_t o = 0, n = strlen(s);

	for (size_t i = 0; i < n;) {
		const char *name = s + i + 2, *close;
		int port = -1;
		size_t nl;
		char num[16];
		int k;

		if (s[i] == '$' && i + 1 < n && s[i + 1] == '$') {
			if (o + 1 >= size)
				goto nospace;
			buf[o++] = '$';
			i += 2;
			continue;
		}
		close = s[i] == '$' && i + 1 < n && s[i + 1] == '{' ? strchr(name, '}') : NULL;
		nl = close ? (size_t)(close - name) : 0;
		if (close) {
			const int vals[] = { ports->port, ports->admin_port, ports->dependency_port,
					     ports->dependency_admin_port };

			for (size_t j = 0; j < COUNT(late_names); j++)
				if (strlen(late_names[j]) == nl &&
				    memcmp(late_names[j], name, nl) == 0)
					port = vals[j];
		}
		if (port < 0) {
			if (o + 1 >= size)
				goto nospace;
			buf[o++] = s[i++];
			continue;
		}
		if (port == 0)
			return rs__einval(err, "'${%.*s}' in '%.60s': the port is not known yet",
					  (int)nl, name, s);
		k = snprintf(num, sizeof(num), "%d", port);
		if (o + (size_t)k >= size)
			goto nospace;
		memcpy(buf + o, num, (size_t)k);
		o += (size_t)k;
		i += nl + 3;
	}
	if (o >= size)
		goto nospace;
	buf[o] = '\0';
	return (int)o;
nospace:
	rs__err_set(err, "'%.60s': expansion longer than %zu bytes", s, size);
	return -ENOSPC;
}

/* ---- small readers ------------------------------------------------------ */

/* Reads obj against spec.  An absent object, or one of the wrong type (the
 * parent reported that), reads as {} without messages: the defaults. */
static int rd(struct ld *L, const struct fl_obj_spec *spec, const struct fl_json *obj,
	      const char *path, struct fl_params *p)
{
	struct fl_diag *d = L->r.diag;
	int rc;

	if (obj && obj->type == FL_JSON_OBJECT)
		return fl_params_read(&L->r, spec, obj, path, p);
	L->r.diag = NULL;
	rc = fl_params_read(&L->r, spec, &empty_object, path, p);
	L->r.diag = d;
	return rc == -ENOMEM ? rc : obj ? -EINVAL : 0;
}

/* The node of key `name` in p when it was written (read or not). */
static const struct fl_json *given(const struct fl_params *p, const char *name)
{
	const struct fl_pval *v = pv(p, name);

	return v ? v->node : NULL;
}

static void check_url(struct ld *L, const struct fl_pval *v, const char *path)
{
	const char *u, *host;

	if (!v || !v->set || !v->node || !v->s)
		return;
	u = v->s;
	if (strncmp(u, "http://", 7) != 0) {
		fl_diag_at(L->diag, v->node, false, path,
			   "'%.60s' is not an http:// URL (only http:// is supported)", u);
		return;
	}
	host = u + 7;
	if (!*host || *host == '/' || *host == ':')
		fl_diag_at(L->diag, v->node, false, path, "URL '%.60s' has no host", u);
}

static void check_path(struct ld *L, const struct fl_pval *v, const char *path)
{
	if (v->set && v->node && v->s && v->s[0] != '/')
		fl_diag_at(L->diag, v->node, false, path, "a path starts with '/', got '%.60s'",
			   v->s);
}

/* ---- target ------------------------------------------------------------- */

static int read_proc(struct ld *L, const struct fl_json *node, const char *path,
		     const struct fl_obj_spec *spec, bool dep, struct fl_target_proc *tp,
		     const struct fl_json **dep_node)
{
	struct fl_arena *a = &L->x->arena;
	struct fl_params p, rp;
	const struct fl_pval *cmd, *url, *admin, *env;
	char sub[FL_PATH_MAX], sub2[FL_PATH_MAX];
	const char **envv;

	TRY(rd(L, spec, node, path, &p));
	tp->present = true;
	tp->node = node;
	cmd = pv(&p, "command");
	url = pv(&p, "url");
	admin = pv(&p, "admin");
	tp->announce = fl_params_bool(&p, "announce", true);
	if (cmd->set) {
		tp->argv = cmd->strv;
		tp->argc = cmd->n;
	}
	if (!cmd->node && !url->node) {
		fl_diag_at(L->diag, node, false, path,
			   "give 'command' (faultline starts the %s) or 'url' (it is already "
			   "running), or both",
			   dep ? "dependency" : "service");
	} else if (cmd->node && !tp->announce && !url->node) {
		fl_diag_at(L->diag, node, false, path,
			   "'url' is required when the command does not announce its ports "
			   "(announce false)");
	}
	tp->url = url->set ? url->s : NULL;
	tp->admin = admin->set ? admin->s : NULL;
	if (cmd->set && tp->announce) {
		if (!tp->url)
			tp->url = dep ? "http://127.0.0.1:${dependency_port}"
				      : "http://127.0.0.1:${port}";
		if (!tp->admin)
			tp->admin = dep ? "http://127.0.0.1:${dependency_admin_port}"
					: "http://127.0.0.1:${admin_port}";
	}
	check_url(L, url, fl_path_key(sub, path, "url"));
	check_url(L, admin, fl_path_key(sub, path, "admin"));
	check_path(L, pv(&p, "metrics"), fl_path_key(sub, path, "metrics"));
	tp->metrics = fl_params_str(&p, "metrics", "/metrics");
	tp->cwd = fl_params_str(&p, "cwd", NULL);
	tp->control = fl_params_str(&p, "control", NULL);
	tp->stop_timeout_ns = fl_params_ns(&p, "stop_timeout", 5 * 1000000000ull);

	env = pv(&p, "env");
	if (env->set && env->n) {
		envv = fl_arena_alloc(a, (env->n + 1) * sizeof(*envv));
		if (!envv)
			return -ENOMEM;
		for (size_t i = 0; i < env->n; i++) {
			const char *k = env->strv[2 * i], *v = env->strv[2 * i + 1];
			size_t kl = strlen(k), vl = strlen(v);
			char *kv;

			if (strchr(k, '=')) {
				const struct fl_json *m = env->node->child;

				for (size_t j = 0; j < i && m; j++)
					m = m->next;
				fl_diag_at(L->diag, m, true,
					   fl_path_key(sub2, fl_path_key(sub, path, "env"), k),
					   "environment variable names cannot contain '='");
				continue;
			}
			kv = fl_arena_alloc(a, kl + vl + 2);
			if (!kv)
				return -ENOMEM;
			memcpy(kv, k, kl);
			kv[kl] = '=';
			memcpy(kv + kl + 1, v, vl + 1);
			envv[tp->nenv++] = kv;
		}
		tp->env = envv;
	}

	fl_path_key(sub, path, "ready");
	TRY(rd(L, &ready_spec, given(&p, "ready"), sub, &rp));
	check_path(L, pv(&rp, "path"), fl_path_key(sub2, sub, "path"));
	tp->ready_path = fl_params_str(&rp, "path", "/healthz");
	tp->ready_status = (int)fl_params_int(&rp, "status", 200);
	tp->ready_timeout_ns = fl_params_ns(&rp, "timeout", 10 * 1000000000ull);
	tp->ready_interval_ns = fl_params_ns(&rp, "interval", 50 * 1000000ull);
	if (dep_node)
		*dep_node = given(&p, "dependency");
	return 0;
}

static bool announces(const struct fl_json *proc)
{
	const struct fl_json *cmd = fl_json_get(proc, "command");
	const struct fl_json *ann = fl_json_get(proc, "announce");

	return cmd && cmd->type == FL_JSON_ARRAY && (!ann || (ann->type == FL_JSON_BOOL && ann->b));
}

static int read_target(struct ld *L, const struct fl_json *node)
{
	const struct fl_json *dep = NULL;

	if (!node || node->type != FL_JSON_OBJECT)
		return 0; /* reported by the top level */
	TRY(read_proc(L, node, "target", &target_spec, false, &L->x->service, &dep));
	if (dep && dep->type == FL_JSON_OBJECT)
		TRY(read_proc(L, dep, "target.dependency", &dependency_spec, true,
			      &L->x->dependency, NULL));
	return 0;
}

/* ---- settings and load ---------------------------------------------------- */

static int read_settings(struct ld *L, const struct fl_json *node)
{
	struct fl_settings *s = &L->x->settings;
	struct fl_params p;
	char a[32], b[32];

	TRY(rd(L, &settings_spec, node, "settings", &p));
	s->cadence_ns = fl_params_ns(&p, "cadence", 100 * 1000000ull);
	s->warmup_ns = fl_params_ns(&p, "warmup", 1000000000ull);
	s->steady_window_ns = fl_params_ns(&p, "steady_window", 2000000000ull);
	s->recovery_ns = fl_params_ns(&p, "recovery", 5000000000ull);
	if (s->steady_window_ns < s->cadence_ns)
		fl_diag_at(L->diag, given(&p, "steady_window") ? given(&p, "steady_window") : node,
			   false, "settings.steady_window",
			   "%s is shorter than the cadence %s: no sample would fall in the window",
			   dur(s->steady_window_ns, a, sizeof(a)),
			   dur(s->cadence_ns, b, sizeof(b)));
	return 0;
}

static enum rs_backoff_strategy backoff_of(const char *s)
{
	static const enum rs_backoff_strategy v[] = { RS_BACKOFF_NONE, RS_BACKOFF_FULL,
						      RS_BACKOFF_EQUAL, RS_BACKOFF_DECORRELATED,
						      RS_BACKOFF_PROPORTIONAL };

	for (size_t i = 0; i < COUNT(v); i++)
		if (strcmp(s, backoffs[i]) == 0)
			return v[i];
	return RS_BACKOFF_FULL;
}

static int read_load(struct ld *L, const struct fl_json *node, uint64_t seed)
{
	struct fl_load_spec *l = &L->x->load;
	struct fl_params p, rq, rt, bg;
	const struct fl_pval *h, *seed_v;
	char sub[FL_PATH_MAX], a[32], b[32];
	const char **hv;

	if (!node || node->type != FL_JSON_OBJECT)
		return 0; /* reported by the top level */
	TRY(rd(L, &load_spec, node, "load", &p));
	check_url(L, pv(&p, "url"), "load.url");
	l->url = fl_params_str(&p, "url", L->x->service.url);
	l->rate = fl_params_num(&p, "rate", 0);
	l->connections = (uint32_t)fl_params_int(&p, "connections", 10);
	l->duration_ns = fl_params_ns(&p, "duration", 0);
	l->timeout_ns = fl_params_ns(&p, "timeout", 2000000000ull);
	l->deadline_ns = fl_params_ns(&p, "deadline", 0);
	l->drain_ns = fl_params_ns(&p, "drain", l->timeout_ns);
	seed_v = pv(&p, "seed");
	l->seed = seed_v->set ? seed_v->u : seed;
	if (l->deadline_ns && l->deadline_ns < l->timeout_ns)
		fl_diag_at(L->diag, given(&p, "deadline"), false, "load.deadline",
			   "the deadline %s is shorter than the per-attempt timeout %s",
			   dur(l->deadline_ns, a, sizeof(a)), dur(l->timeout_ns, b, sizeof(b)));

	TRY(rd(L, &request_spec, given(&p, "request"), "load.request", &rq));
	check_path(L, pv(&rq, "path"), "load.request.path");
	l->method = fl_params_str(&rq, "method", "GET");
	l->path = fl_params_str(&rq, "path", "/");
	l->body = fl_params_str(&rq, "body", NULL);
	h = pv(&rq, "headers");
	if (h->set && h->n) {
		hv = fl_arena_alloc(&L->x->arena, (h->n + 1) * sizeof(*hv));
		if (!hv)
			return -ENOMEM;
		for (size_t i = 0; i < h->n; i++) {
			size_t kl = strlen(h->strv[2 * i]), vl = strlen(h->strv[2 * i + 1]);
			char *line = fl_arena_alloc(&L->x->arena, kl + vl + 3);

			if (!line)
				return -ENOMEM;
			memcpy(line, h->strv[2 * i], kl);
			memcpy(line + kl, ": ", 2);
			memcpy(line + kl + 2, h->strv[2 * i + 1], vl + 1);
			hv[i] = line;
		}
		l->headers = hv;
		l->nheaders = h->n;
	}

	TRY(rd(L, &retry_spec, given(&p, "retry"), "load.retry", &rt));
	l->retry_attempts = (uint32_t)fl_params_int(&rt, "attempts", 1);
	l->retry_backoff = backoff_of(fl_params_str(&rt, "backoff", "full-jitter"));
	l->retry_base_ns = fl_params_ns(&rt, "base", 10000000ull);
	l->retry_cap_ns = fl_params_ns(&rt, "cap", 1000000000ull);
	l->retry_multiplier = fl_params_num(&rt, "multiplier", 2);
	if (l->retry_cap_ns < l->retry_base_ns)
		fl_diag_at(L->diag, given(&rt, "cap") ? given(&rt, "cap") : given(&rt, "base"),
			   false, given(&rt, "cap") ? "load.retry.cap" : "load.retry.base",
			   "the cap %s is below the base delay %s",
			   dur(l->retry_cap_ns, a, sizeof(a)), dur(l->retry_base_ns, b, sizeof(b)));
	if (given(&rt, "budget")) {
		fl_path_key(sub, "load.retry", "budget");
		TRY(rd(L, &budget_spec, given(&rt, "budget"), sub, &bg));
		l->budget = true;
		l->budget_ratio = fl_params_num(&bg, "ratio", 0);
		l->budget_window_ns = fl_params_ns(&bg, "window", 10000000000ull);
	}
	return 0;
}

/* ---- probes --------------------------------------------------------------- */

static bool probe_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 64 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
		      s[i] == '_'))
			return false;
	return true;
}

static int add_probe(struct ld *L, const struct fl_json *at, const char *path, size_t *idx)
{
	if (L->x->nprobes >= FL_MAX_PROBES) {
		fl_diag_at(L->diag, at, false, path, "more than %d probes in one experiment",
			   FL_MAX_PROBES);
		return -EINVAL;
	}
	*idx = L->x->nprobes++;
	return 0;
}

/* A generated name for an inline probe: "client.error_rate",
 * "prometheus resilience_breaker_state", "http /healthz", "command ./check". */
static const char *probe_label(struct ld *L, const struct fl_probe *pr)
{
	const char *fam = pr->family->name, *what = "";
	char buf[160];

	if (strcmp(fam, "client") == 0) {
		snprintf(buf, sizeof(buf), "client.%s", fl_params_str(&pr->params, "metric", "?"));
		return fl_arena_strndup(&L->x->arena, buf, strlen(buf));
	}
	if (strcmp(fam, "prometheus") == 0)
		what = fl_params_str(&pr->params, "metric", "");
	else if (strcmp(fam, "http") == 0)
		what = fl_params_str(&pr->params, "url", fl_params_str(&pr->params, "path", ""));
	else if (strcmp(fam, "command") == 0) {
		const struct fl_pval *argv = fl_params_get(&pr->params, "argv");

		what = argv && argv->set && argv->n ? argv->strv[0] : "";
	}
	snprintf(buf, sizeof(buf), "%s %.100s", fam, what);
	return fl_arena_strndup(&L->x->arena, buf, strlen(buf));
}

/* Reads a probe object (type + family keys) into x->probes.  *idx gets its
 * index, or SIZE_MAX when it is invalid (reported). */
static int read_probe_obj(struct ld *L, const struct fl_json *v, const char *path, const char *name,
			  size_t *idx)
{
	const struct fl_json *type = fl_json_get(v, "type");
	const struct fl_family *fam;
	struct fl_probe *pr;
	struct fl_params p;
	char sub[FL_PATH_MAX], known[128];
	int rc;

	*idx = SIZE_MAX;
	fl_family_names(FL_PROBE, known, sizeof(known));
	if (v->type != FL_JSON_OBJECT) {
		fl_diag_at(L->diag, v, false, path, "expected a probe object, got %s",
			   fl_json_type_name(v->type));
		return 0;
	}
	if (!type) {
		fl_diag_at(L->diag, v, false, path, "missing required key 'type' (one of: %s)",
			   known);
		return 0;
	}
	fl_path_key(sub, path, "type");
	if (type->type != FL_JSON_STRING) {
		fl_diag_at(L->diag, type, false, sub, "expected a probe family name, got %s",
			   fl_json_type_name(type->type));
		return 0;
	}
	fam = fl_family_find(FL_PROBE, type->str);
	if (!fam) {
		fl_diag_at(L->diag, type, false, sub, "unknown probe family '%.40s' (known: %s)",
			   type->str, known);
		return 0;
	}
	rc = fl_params_read(&L->r, fam->spec, v, path, &p);
	if (rc == -ENOMEM)
		return rc;
	if (rc == 0 && fam->check)
		rc = fam->check(&L->r, v, path, &p);
	if (rc == -ENOMEM)
		return rc;
	if (rc)
		return 0;
	if (add_probe(L, v, path, idx) != 0)
		return 0;
	pr = &L->x->probes[*idx];
	pr->family = fam;
	pr->params = p;
	pr->node = v;
	pr->name = name ? name : probe_label(L, pr);
	if (!pr->name)
		return -ENOMEM;
	check_url(L, fl_params_get(&p, "url"), fl_path_key(sub, path, "url"));
	if (strcmp(fam->name, "prometheus") == 0 && !fl_params_get(&p, "url")->set &&
	    strcmp(fl_params_str(&p, "role", "service"), "dependency") == 0 &&
	    L->x->service.present && !L->x->dependency.present)
		fl_diag_at(L->diag, v, false, path,
			   "role 'dependency' needs target.dependency (or give 'url')");
	if (strcmp(fam->name, "http") == 0 && fl_params_get(&p, "path")->set &&
	    strcmp(fl_params_str(&p, "role", "service"), "dependency") == 0 &&
	    L->x->service.present && !L->x->dependency.present)
		fl_diag_at(L->diag, v, false, path,
			   "role 'dependency' needs target.dependency (or give 'url')");
	return 0;
}

static int read_probes(struct ld *L, const struct fl_json *node)
{
	char sub[FL_PATH_MAX];
	size_t idx;

	if (!node || node->type != FL_JSON_OBJECT)
		return 0;
	for (const struct fl_json *m = node->child; m; m = m->next) {
		fl_path_key(sub, "probes", m->key);
		if (!probe_name_ok(m->key, m->key_len)) {
			fl_diag_at(
			    L->diag, m, true, sub,
			    "probe names are lowercase letters, digits, '-' and '_' (up to 64), "
			    "got '%.40s'",
			    m->key);
			continue;
		}
		TRY(read_probe_obj(L, m, sub, m->key, &idx));
	}
	L->nnamed = L->x->nprobes;
	return 0;
}

/* A probe reference: a named probe, "client.<metric>", or an inline probe
 * object.  *idx gets the probe's index or SIZE_MAX (reported). */
static int read_probe_ref(struct ld *L, const struct fl_json *v, const char *path, size_t *idx)
{
	const char *s, *dot;
	size_t i;

	*idx = SIZE_MAX;
	if (v->type == FL_JSON_OBJECT)
		return read_probe_obj(L, v, path, NULL, idx);
	if (v->type != FL_JSON_STRING) {
		fl_diag_at(L->diag, v, false, path,
			   "expected a probe name, \"client.<metric>\" or a probe object, got %s",
			   fl_json_type_name(v->type));
		return 0;
	}
	s = v->str;
	for (i = 0; i < L->nnamed; i++)
		if (strcmp(L->x->probes[i].name, s) == 0) {
			*idx = i;
			return 0;
		}
	dot = strchr(s, '.');
	if (dot && (size_t)(dot - s) == 6 && memcmp(s, "client", 6) == 0) {
		size_t n = 0;
		struct fl_probe *pr;
		struct fl_pval *vals;

		while (fl_client_metrics[n] && strcmp(fl_client_metrics[n], dot + 1) != 0)
			n++;
		if (!fl_client_metrics[n]) {
			size_t nm = 0;
			const char *hint;

			while (fl_client_metrics[nm])
				nm++;
			hint = fl_did_you_mean(dot + 1, fl_client_metrics, nm);
			if (hint)
				fl_diag_at(L->diag, v, false, path,
					   "unknown client metric '%.40s' (did you mean '%s'?)",
					   dot + 1, hint);
			else
				fl_diag_at(L->diag, v, false, path,
					   "unknown client metric '%.40s' (see probe.client in "
					   "experiments/README.md)",
					   dot + 1);
			return 0;
		}
		for (i = L->nnamed; i < L->x->nprobes; i++)
			if (strcmp(L->x->probes[i].name, s) == 0 &&
			    strcmp(L->x->probes[i].family->name, "client") == 0 &&
			    strcmp(fl_params_str(&L->x->probes[i].params, "latency", ""),
				   "corrected") == 0) {
				*idx = i;
				return 0;
			}
		if (add_probe(L, v, path, idx) != 0)
			return 0;
		pr = &L->x->probes[*idx];
		pr->family = fl_family_find(FL_PROBE, "client");
		pr->node = v;
		pr->name = s;
		vals = fl_arena_alloc(&L->x->arena, pr->family->spec->n * sizeof(*vals));
		if (!vals)
			return -ENOMEM;
		pr->params.spec = pr->family->spec;
		pr->params.v = vals;
		vals[0].set = true; /* metric */
		vals[0].s = fl_client_metrics[n];
		vals[1].set = true; /* latency */
		vals[1].s = "corrected";
		return 0;
	}
	if (dot) {
		fl_diag_at(L->diag, v, false, path,
			   "unknown probe '%.60s' (only client.<metric> is a shorthand; define "
			   "other probes in 'probes')",
			   s);
		return 0;
	}
	{
		const char *names[FL_MAX_PROBES], *hint;

		for (i = 0; i < L->nnamed; i++)
			names[i] = L->x->probes[i].name;
		hint = fl_did_you_mean(s, names, L->nnamed);
		if (hint)
			fl_diag_at(L->diag, v, false, path,
				   "unknown probe '%.60s' (did you mean '%s'?)", s, hint);
		else
			fl_diag_at(
			    L->diag, v, false, path,
			    "unknown probe '%.60s' (not in 'probes'; or write client.<metric>)", s);
	}
	return 0;
}

/* ---- predicates and checks ---------------------------------------------------- */

static const struct {
	const char *key;
	enum fl_cmp op;
	const char *sym;
} pred_keys[] = {
	{ "eq", FL_CMP_EQ, "==" },  { "ne", FL_CMP_NE, "!=" },	{ "lt", FL_CMP_LT, "<" },
	{ "le", FL_CMP_LE, "<=" },  { "gt", FL_CMP_GT, ">" },	{ "ge", FL_CMP_GE, ">=" },
	{ "max", FL_CMP_LE, "<=" }, { "min", FL_CMP_GE, ">=" },
};

static const char *cmp_sym(enum fl_cmp op)
{
	for (size_t i = 0; i < 6; i++)
		if (pred_keys[i].op == op)
			return pred_keys[i].sym;
	return "?";
}

/* Exactly one of the first nkeys comparison keys must be written.  Returns
 * 0 with *out (and *lit: the bound as written) or -EINVAL (reported). */
static int one_pred(struct ld *L, const struct fl_params *p, size_t nkeys,
		    const struct fl_json *obj, const char *path, struct fl_pred *out,
		    const char **lit)
{
	const struct fl_pval *found = NULL;
	size_t which = 0;
	char sub[FL_PATH_MAX], list[64];
	size_t used = 0;

	for (size_t i = 0; i < nkeys; i++) {
		const struct fl_pval *v = pv(p, pred_keys[i].key);

		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
					 pred_keys[i].key);
		if (!v || !v->node)
			continue;
		if (found) {
			fl_diag_at(L->diag, v->node, true, fl_path_key(sub, path, pred_keys[i].key),
				   "more than one comparison ('%s' and '%s'); give one (two checks "
				   "make a range)",
				   pred_keys[which].key, pred_keys[i].key);
			return -EINVAL;
		}
		found = v;
		which = i;
	}
	if (!found) {
		fl_diag_at(L->diag, obj, false, path, "missing the comparison: give one of %s",
			   list);
		return -EINVAL;
	}
	if (!found->set)
		return -EINVAL; /* its value was reported */
	out->op = pred_keys[which].op;
	out->value = found->d;
	if (lit)
		*lit = found->node->str ? found->node->str : "?";
	return 0;
}

static enum fl_agg agg_of(const char *s)
{
	static const enum fl_agg v[] = { FL_AGG_MAX, FL_AGG_MIN,  FL_AGG_MEAN,	FL_AGG_P50,
					 FL_AGG_P99, FL_AGG_RATE, FL_AGG_DELTA, FL_AGG_LAST };

	if (!s)
		return FL_AGG_NONE;
	for (size_t i = 0; i < COUNT(v); i++)
		if (strcmp(s, aggregates[i]) == 0)
			return v[i];
	return FL_AGG_NONE;
}

static int read_check(struct ld *L, const struct fl_json *v, const char *path,
		      const struct fl_obj_spec *spec, struct fl_check *c)
{
	struct fl_params p;
	const struct fl_json *probe;
	const char *lit = "?";
	char sub[FL_PATH_MAX], name[200];
	int rc;

	c->node = v;
	c->value.probe = SIZE_MAX;
	if (v->type != FL_JSON_OBJECT) {
		fl_diag_at(L->diag, v, false, path, "expected an object, got %s",
			   fl_json_type_name(v->type));
		return 0;
	}
	TRY(rd(L, spec, v, path, &p));
	probe = given(&p, "probe");
	if (probe)
		TRY(read_probe_ref(L, probe, fl_path_key(sub, path, "probe"), &c->value.probe));
	rc = one_pred(L, &p, 8, v, path, &c->pred, &lit);
	c->agg = agg_of(fl_params_str(&p, "aggregate", NULL));
	c->for_ns = fl_params_ns(&p, "for", 0);
	c->name = fl_params_str(&p, "name", NULL);
	if (!c->name && rc == 0 && c->value.probe != SIZE_MAX) {
		snprintf(name, sizeof(name), "%.100s %s %.40s", L->x->probes[c->value.probe].name,
			 cmp_sym(c->pred.op), lit);
		c->name = fl_arena_strndup(&L->x->arena, name, strlen(name));
		if (!c->name)
			return -ENOMEM;
	}
	return 0;
}

static int read_checks(struct ld *L, const struct fl_json *node, const char *what,
		       const struct fl_obj_spec *spec, struct fl_check **out, size_t *n)
{
	char sub[FL_PATH_MAX];
	size_t i = 0;

	if (!node || node->type != FL_JSON_ARRAY || node->n == 0)
		return 0;
	if (node->n > FL_MAX_EXPECTS) {
		fl_diag_at(L->diag, node, false, what, "more than %d entries", FL_MAX_EXPECTS);
		return 0;
	}
	*out = fl_arena_alloc(&L->x->arena, node->n * sizeof(**out));
	if (!*out)
		return -ENOMEM;
	*n = node->n;
	for (const struct fl_json *e = node->child; e; e = e->next, i++)
		TRY(read_check(L, e, fl_path_index(sub, what, i), spec, &(*out)[i]));
	return 0;
}

/* ---- method ------------------------------------------------------------- */

static bool action_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > 64 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return false;
	return true;
}

static bool reserved_event(const char *s)
{
	return strcmp(s, "start") == 0 || strcmp(s, "end") == 0 || strcmp(s, "steady") == 0;
}

static int read_fault(struct ld *L, const struct fl_json *v, const char *path, struct fl_action *a)
{
	const struct fl_json *type = fl_json_get(v, "type");
	char sub[FL_PATH_MAX], known[128];
	int rc;

	fl_family_names(FL_FAULT, known, sizeof(known));
	if (!type) {
		fl_diag_at(L->diag, v, false, path, "missing required key 'type' (one of: %s)",
			   known);
		return 0;
	}
	fl_path_key(sub, path, "type");
	if (type->type != FL_JSON_STRING) {
		fl_diag_at(L->diag, type, false, sub, "expected a fault family name, got %s",
			   fl_json_type_name(type->type));
		return 0;
	}
	a->family = fl_family_find(FL_FAULT, type->str);
	if (!a->family) {
		fl_diag_at(L->diag, type, false, sub, "unknown fault family '%.40s' (known: %s)",
			   type->str, known);
		return 0;
	}
	rc = fl_params_read(&L->r, a->family->spec, v, path, &a->params);
	if (rc == 0 && a->family->check)
		rc = a->family->check(&L->r, v, path, &a->params);
	if (rc == -ENOMEM)
		return rc;
	if (rc)
		a->family = NULL;
	return 0;
}

static int read_action(struct ld *L, const struct fl_json *v, size_t i, struct fl_action *a)
{
	struct fl_params p;
	const struct fl_pval *name, *at, *for_, *rep;
	char path[FL_PATH_MAX], sub[FL_PATH_MAX], d1[32], d2[32];
	const struct fl_family *fam;

	fl_path_index(path, "method", i);
	a->index = i;
	a->node = v;
	if (v->type != FL_JSON_OBJECT) {
		fl_diag_at(L->diag, v, false, path, "expected an object, got %s",
			   fl_json_type_name(v->type));
		return 0;
	}
	TRY(rd(L, &action_spec, v, path, &p));
	name = pv(&p, "name");
	if (name->set) {
		fl_path_key(sub, path, "name");
		if (!action_name_ok(name->s, name->node->len)) {
			fl_diag_at(L->diag, name->node, false, sub,
				   "action names are lowercase letters, digits and '-' (up to 64), "
				   "got '%.40s'",
				   name->s);
			a->name = name->s; /* still known: no second error where it is used */
		} else if (reserved_event(name->s))
			fl_diag_at(L->diag, name->node, false, sub, "'%s' is a reserved event name",
				   name->s);
		else
			a->name = name->s;
		for (size_t j = 0; a->name && j < i; j++)
			if (L->x->actions[j].name && strcmp(L->x->actions[j].name, a->name) == 0) {
				fl_diag_at(L->diag, name->node, false, sub,
					   "duplicate action name '%s' (first at %u:%u)", a->name,
					   fl_json_get(L->x->actions[j].node, "name")->line,
					   fl_json_get(L->x->actions[j].node, "name")->col);
				break;
			}
	}
	if (given(&p, "fault"))
		TRY(read_fault(L, given(&p, "fault"), fl_path_key(sub, path, "fault"), a));
	at = pv(&p, "at");
	for_ = pv(&p, "for");
	rep = pv(&p, "repeat");
	a->start_ns = at->set ? at->u : 0;
	a->end_ns = a->start_ns + (for_->set ? for_->u : 0);
	a->repeat_ns = rep->set ? rep->u : 0;
	fam = a->family;
	if (!fam)
		return 0;
	if ((at->node && !at->set) || (for_->node && !for_->set) || (rep->node && !rep->set)) {
		a->family = NULL; /* its times are unknown (reported): leave it out of the plan */
		return 0;
	}
	if ((fam->flags & FL_FAM_REVERTS) && !for_->node)
		fl_diag_at(L->diag, v, false, path,
			   "a '%s' fault lasts until reverted: give 'for' (how long it lasts)",
			   fam->name);
	if (rep->node && !(fam->flags & FL_FAM_REPEAT))
		fl_diag_at(L->diag, rep->node, true, fl_path_key(sub, path, "repeat"),
			   "a '%s' fault cannot repeat", fam->name);
	else if (rep->set && !for_->node)
		fl_diag_at(L->diag, rep->node, true, fl_path_key(sub, path, "repeat"),
			   "'repeat' needs 'for' (how long to keep repeating)");
	else if (rep->set && for_->set && rep->u > for_->u)
		fl_diag_at(L->diag, rep->node, false, fl_path_key(sub, path, "repeat"),
			   "repeat %s is longer than for %s", dur(rep->u, d1, sizeof(d1)),
			   dur(for_->u, d2, sizeof(d2)));
	else if (rep->set && for_->set && for_->u / rep->u > 10000)
		fl_diag_at(L->diag, rep->node, false, fl_path_key(sub, path, "repeat"),
			   "repeat %s applies the fault more than 10000 times in %s",
			   dur(rep->u, d1, sizeof(d1)), dur(for_->u, d2, sizeof(d2)));
	if ((fam->flags & FL_FAM_INSTANT) && for_->node && !rep->node)
		fl_diag_at(L->diag, for_->node, true, fl_path_key(sub, path, "for"),
			   "a '%s' fault is instantaneous: 'for' needs 'repeat'", fam->name);
	return 0;
}

static int cmp_action(const void *pa, const void *pb)
{
	const struct fl_action *a = pa, *b = pb;

	if (a->start_ns != b->start_ns)
		return a->start_ns < b->start_ns ? -1 : 1;
	return (a->index > b->index) - (a->index < b->index);
}

static int read_method(struct ld *L, const struct fl_json *node)
{
	size_t i = 0;

	if (!node || node->type != FL_JSON_ARRAY || node->n == 0)
		return 0;
	if (node->n > FL_MAX_ACTIONS) {
		fl_diag_at(L->diag, node, false, "method", "more than %d actions", FL_MAX_ACTIONS);
		return 0;
	}
	L->x->actions = fl_arena_alloc(&L->x->arena, node->n * sizeof(*L->x->actions));
	if (!L->x->actions)
		return -ENOMEM;
	L->x->nactions = node->n;
	for (const struct fl_json *e = node->child; e; e = e->next, i++)
		TRY(read_action(L, e, i, &L->x->actions[i]));
	qsort(L->x->actions, L->x->nactions, sizeof(*L->x->actions), cmp_action);
	return 0;
}

static size_t find_action(const struct fl_experiment *x, const char *name, size_t n)
{
	for (size_t i = 0; i < x->nactions; i++)
		if (x->actions[i].name && strlen(x->actions[i].name) == n &&
		    memcmp(x->actions[i].name, name, n) == 0)
			return i;
	return SIZE_MAX;
}

/* ---- the timeline --------------------------------------------------------- */

static void compute_times(struct ld *L, const struct fl_json *load_node)
{
	struct fl_experiment *x = L->x;
	const struct fl_settings *s = &x->settings;
	const struct fl_json *dnode = fl_json_get(load_node, "duration");
	uint64_t final_win = x->nsteady ? s->steady_window_ns : 0, need, method_end;
	char a[32], b[32], c[32], d[32], path[FL_PATH_MAX];
	bool late_action = false;

	x->warmup_ns = s->warmup_ns;
	x->steady_ns = s->warmup_ns + final_win;
	method_end = x->steady_ns;
	for (size_t i = 0; i < x->nactions; i++) {
		const struct fl_action *act = &x->actions[i];
		const struct fl_json *at = fl_json_get(act->node, "at");

		if (!act->family || !at)
			continue;
		if (act->start_ns < x->steady_ns) {
			fl_path_key(path, fl_path_index(path, "method", act->index), "at");
			if (x->nsteady)
				fl_diag_at(L->diag, at, false, path,
					   "%s is before the steady-state baseline ends at %s "
					   "(settings.warmup %s + settings.steady_window %s)",
					   dur(act->start_ns, a, sizeof(a)),
					   dur(x->steady_ns, b, sizeof(b)),
					   dur(s->warmup_ns, c, sizeof(c)),
					   dur(final_win, d, sizeof(d)));
			else
				fl_diag_at(L->diag, at, false, path,
					   "%s is before the warm-up ends at %s (settings.warmup)",
					   dur(act->start_ns, a, sizeof(a)),
					   dur(x->steady_ns, b, sizeof(b)));
		}
		if (act->end_ns > method_end)
			method_end = act->end_ns;
	}
	x->method_end_ns = method_end;
	need = method_end + (x->nactions ? s->recovery_ns : 0) + final_win;
	if (x->load.duration_ns) {
		x->end_ns = x->load.duration_ns;
		for (size_t i = 0; i < x->nactions; i++) {
			const struct fl_action *act = &x->actions[i];
			const struct fl_json *f = fl_json_get(act->node, "for");

			if (!act->family || act->end_ns <= x->end_ns)
				continue;
			fl_path_key(path, fl_path_index(path, "method", act->index),
				    f ? "for" : "at");
			fl_diag_at(
			    L->diag, f ? f : fl_json_get(act->node, "at"), false, path,
			    "the action ends at %s, after the load ends at %s (load.duration)",
			    dur(act->end_ns, a, sizeof(a)), dur(x->end_ns, b, sizeof(b)));
			late_action = true;
		}
		if (!late_action && need > x->end_ns)
			fl_diag_at(L->diag, dnode, false, "load.duration",
				   "%s is too short: the plan needs %s (method ends at %s, then "
				   "settings.recovery %s and the final steady-state window %s)",
				   dur(x->end_ns, a, sizeof(a)), dur(need, b, sizeof(b)),
				   dur(method_end, c, sizeof(c)),
				   dur(x->nactions ? s->recovery_ns : 0, d, sizeof(d)),
				   dur(final_win, path, sizeof(path)));
	} else {
		x->end_ns = need;
		if (need == 0)
			fl_diag_at(L->diag, load_node, false, "load",
				   "missing 'duration': with no warm-up, steady-state checks or "
				   "actions nothing gives the run a length");
	}
	x->load.duration_ns = x->end_ns;
	x->final_ns = x->end_ns > final_win ? x->end_ns - final_win : 0;
}

/* ---- expectations ------------------------------------------------------------ */

static const struct {
	const char *key;
	unsigned kinds;
} applies[] = {
	{ "probe", K_BECOMES | K_HOLDLIKE | K_NEVER },
	{ "value", K_HOLDLIKE },
	{ "within", K_BECOMES | K_RECOVERS },
	{ "after", K_BECOMES | K_HOLDLIKE | K_NEVER | K_RECOVERS },
	{ "during", K_HOLDLIKE | K_NEVER },
	{ "for", K_HOLDLIKE | K_NEVER },
	{ "settle", K_RECOVERS },
	{ "aggregate", K_HOLDLIKE },
};

static const char *kind_name(unsigned k)
{
	for (size_t i = 0; i < COUNT(kind_keys); i++)
		if (k == 1u << i)
			return kind_keys[i];
	return "?";
}

static int build_events(struct ld *L)
{
	struct fl_experiment *x = L->x;
	size_t n = 3 + 2 * x->nactions + x->nexpects, k = 0;

	L->events = fl_arena_alloc(&x->arena, n * sizeof(*L->events));
	if (!L->events)
		return -ENOMEM;
	L->events[k++] = "start";
	L->events[k++] = "steady";
	L->events[k++] = "end";
	for (size_t i = 0; i < x->nactions; i++) {
		const char *nm = x->actions[i].name;
		size_t nl;
		char *s, *e;

		if (!nm)
			continue;
		nl = strlen(nm);
		s = fl_arena_alloc(&x->arena, nl + 7);
		e = fl_arena_alloc(&x->arena, nl + 5);
		if (!s || !e)
			return -ENOMEM;
		memcpy(s, nm, nl);
		memcpy(s + nl, ".start", 7);
		memcpy(e, nm, nl);
		memcpy(e + nl, ".end", 5);
		L->events[k++] = s;
		L->events[k++] = e;
	}
	for (size_t i = 0; i < x->nexpects; i++)
		if (x->expects[i].name)
			L->events[k++] = x->expects[i].name;
	L->nevents = k;
	return 0;
}

static int parse_event(struct ld *L, const struct fl_json *v, const char *path, size_t self,
		       struct fl_event *ev)
{
	struct fl_experiment *x = L->x;
	const char *s = v->str, *hint;
	size_t n = v->len, a;

	memset(ev, 0, sizeof(*ev));
	if (v->type != FL_JSON_STRING) {
		fl_diag_at(L->diag, v, false, path, "expected an event name, got %s",
			   fl_json_type_name(v->type));
		return -EINVAL;
	}
	if (strcmp(s, "start") == 0) {
		ev->kind = FL_EV_START;
		return 0;
	}
	if (strcmp(s, "steady") == 0) {
		ev->kind = FL_EV_STEADY;
		ev->t_ns = x->steady_ns;
		return 0;
	}
	if (strcmp(s, "end") == 0) {
		ev->kind = FL_EV_END;
		ev->t_ns = x->end_ns;
		return 0;
	}
	if (n > 6 && strcmp(s + n - 6, ".start") == 0 &&
	    (a = find_action(x, s, n - 6)) != SIZE_MAX) {
		ev->kind = FL_EV_ACTION_START;
		ev->index = a;
		ev->t_ns = x->actions[a].start_ns;
		return 0;
	}
	if (n > 4 && strcmp(s + n - 4, ".end") == 0 && (a = find_action(x, s, n - 4)) != SIZE_MAX) {
		ev->kind = FL_EV_ACTION_END;
		ev->index = a;
		ev->t_ns = x->actions[a].end_ns;
		return 0;
	}
	for (size_t j = 0; j < x->nexpects; j++) {
		if (!x->expects[j].name || strcmp(x->expects[j].name, s) != 0)
			continue;
		if (j == self) {
			fl_diag_at(L->diag, v, false, path,
				   "an expectation cannot wait for its own event");
			return -EINVAL;
		}
		if (L->exp_kind[j] && !(L->exp_kind[j] & (K_BECOMES | K_RECOVERS))) {
			fl_diag_at(L->diag, v, false, path,
				   "'%s' is an expectation of kind '%s': only becomes and "
				   "recovers expectations mark an event",
				   s, kind_name(L->exp_kind[j]));
			return -EINVAL;
		}
		ev->kind = FL_EV_EXPECT;
		ev->index = j;
		ev->t_ns = FL_T_DYNAMIC;
		return 0;
	}
	if (find_action(x, s, n) != SIZE_MAX) {
		fl_diag_at(L->diag, v, false, path,
			   "'%s' is an action; its events are '%s.start' and '%s.end'", s, s, s);
		return -EINVAL;
	}
	hint = fl_did_you_mean(s, L->events, L->nevents);
	if (hint)
		fl_diag_at(L->diag, v, false, path, "unknown event '%.60s' (did you mean '%s'?)", s,
			   hint);
	else
		fl_diag_at(L->diag, v, false, path,
			   "unknown event '%.60s' (events: start, steady, end, <action>.start, "
			   "<action>.end, or an expectation's name)",
			   s);
	return -EINVAL;
}

static int read_pred_obj(struct ld *L, const struct fl_json *v, const char *path,
			 struct fl_pred *out)
{
	struct fl_params p;
	int rc;

	if (v->type != FL_JSON_OBJECT)
		return -EINVAL; /* reported as a wrong type */
	rc = rd(L, &predicate_spec, v, path, &p);
	if (rc == -ENOMEM)
		return rc;
	return one_pred(L, &p, 6, v, path, out, NULL);
}

static int read_observed(struct ld *L, const struct fl_params *p, const struct fl_json *e,
			 const char *path, struct fl_valref *out)
{
	const struct fl_json *probe = given(p, "probe"), *value = given(p, "value");
	char sub[FL_PATH_MAX], sub2[FL_PATH_MAX];
	struct fl_params vp;
	const struct fl_json *ratio;
	size_t i = 0, idx[2] = { SIZE_MAX, SIZE_MAX };

	out->probe = SIZE_MAX;
	if (probe && value) {
		fl_diag_at(L->diag, value, true, fl_path_key(sub, path, "value"),
			   "give 'probe' or 'value', not both");
		return 0;
	}
	if (!probe && !value) {
		fl_diag_at(L->diag, e, false, path, "missing 'probe' (what to observe)");
		return 0;
	}
	if (probe)
		return read_probe_ref(L, probe, fl_path_key(sub, path, "probe"), &out->probe);
	if (value->type != FL_JSON_OBJECT)
		return 0;
	fl_path_key(sub, path, "value");
	TRY(rd(L, &value_spec, value, sub, &vp));
	ratio = given(&vp, "ratio");
	if (!ratio || ratio->type != FL_JSON_ARRAY)
		return 0;
	fl_path_key(sub, sub, "ratio");
	if (ratio->n != 2) {
		fl_diag_at(L->diag, ratio, false, sub,
			   "a ratio needs exactly two probes [numerator, denominator], got %zu",
			   ratio->n);
		return 0;
	}
	for (const struct fl_json *r = ratio->child; r; r = r->next, i++)
		TRY(read_probe_ref(L, r, fl_path_index(sub2, sub, i), &idx[i]));
	if (idx[0] != SIZE_MAX && idx[1] != SIZE_MAX) {
		out->probe = idx[0];
		out->probe2 = idx[1];
		out->ratio = true;
	}
	return 0;
}

static void check_until(struct ld *L, const struct fl_event *from, uint64_t len,
			const struct fl_json *at, const char *path, const char *what)
{
	char a[32], b[32], c[32], d[32];

	if (from->t_ns == FL_T_DYNAMIC || from->t_ns + len <= L->x->end_ns)
		return;
	fl_diag_at(L->diag, at, false, path, "%s ends at %s (%s + %s), after the run ends at %s",
		   what, dur(from->t_ns + len, a, sizeof(a)), dur(from->t_ns, b, sizeof(b)),
		   dur(len, c, sizeof(c)), dur(L->x->end_ns, d, sizeof(d)));
}

static int read_window(struct ld *L, const struct fl_params *p, const char *path, size_t self,
		       struct fl_expect *E)
{
	const struct fl_json *during = given(p, "during"), *after = given(p, "after");
	const struct fl_json *for_ = given(p, "for");
	char sub[FL_PATH_MAX];
	struct fl_window *w = &E->window;

	w->from.kind = FL_EV_START;
	if (during && after) {
		fl_diag_at(L->diag, during, true, fl_path_key(sub, path, "during"),
			   "give 'during' or 'after', not both");
		return 0;
	}
	if (for_ && !after) {
		fl_diag_at(L->diag, for_, true, fl_path_key(sub, path, "for"),
			   "'for' needs 'after' (where the window starts)");
		return 0;
	}
	if (during && during->type == FL_JSON_STRING) {
		size_t a = find_action(L->x, during->str, during->len);
		const char *names[FL_MAX_ACTIONS], *hint;
		size_t n = 0;

		fl_path_key(sub, path, "during");
		if (a == SIZE_MAX) {
			for (size_t i = 0; i < L->x->nactions; i++)
				if (L->x->actions[i].name)
					names[n++] = L->x->actions[i].name;
			hint = fl_did_you_mean(during->str, names, n);
			if (hint)
				fl_diag_at(L->diag, during, false, sub,
					   "unknown action '%.60s' (did you mean '%s'?)",
					   during->str, hint);
			else
				fl_diag_at(
				    L->diag, during, false, sub,
				    "unknown action '%.60s' ('during' names an action of the "
				    "method)",
				    during->str);
			return 0;
		}
		if (L->x->actions[a].end_ns == L->x->actions[a].start_ns) {
			fl_diag_at(
			    L->diag, during, false, sub,
			    "'%s' is instantaneous: it has no window (use 'after' and 'for')",
			    during->str);
			return 0;
		}
		w->from = (struct fl_event){ FL_EV_ACTION_START, a, L->x->actions[a].start_ns };
		w->until_set = true;
		w->until = (struct fl_event){ FL_EV_ACTION_END, a, L->x->actions[a].end_ns };
		return 0;
	}
	if (after && after->type == FL_JSON_STRING) {
		if (parse_event(L, after, fl_path_key(sub, path, "after"), self, &w->from) != 0)
			return 0;
		w->for_ns = fl_params_ns(p, "for", 0);
		if (for_)
			check_until(L, &w->from, w->for_ns, for_, fl_path_key(sub, path, "for"),
				    "the window");
	}
	return 0;
}

static int read_expect(struct ld *L, const struct fl_json *e, size_t i)
{
	struct fl_expect *E = &L->x->expects[i];
	struct fl_params p;
	char path[FL_PATH_MAX], sub[FL_PATH_MAX];
	const struct fl_json *kn = NULL, *n;
	unsigned k = 0;
	size_t which = 0;

	fl_path_index(path, "expect", i);
	E->node = e;
	E->value.probe = SIZE_MAX;
	if (e->type != FL_JSON_OBJECT) {
		fl_diag_at(L->diag, e, false, path, "expected an object, got %s",
			   fl_json_type_name(e->type));
		return 0;
	}
	TRY(rd(L, &expect_spec, e, path, &p));
	for (size_t j = 0; j < COUNT(kind_keys); j++) {
		n = given(&p, kind_keys[j]);
		if (!n)
			continue;
		if (k) {
			fl_diag_at(L->diag, n, true, fl_path_key(sub, path, kind_keys[j]),
				   "more than one kind ('%s' and '%s'); give one per expectation",
				   kind_keys[which], kind_keys[j]);
			return 0;
		}
		k = 1u << j;
		which = j;
		kn = n;
	}
	if (!k) {
		fl_diag_at(L->diag, e, false, path,
			   "no kind: give one of becomes, holds, never, max, min, recovers, order");
		return 0;
	}
	for (size_t j = 0; j < COUNT(applies); j++)
		if ((n = given(&p, applies[j].key)) && !(applies[j].kinds & k))
			fl_diag_at(L->diag, n, true, fl_path_key(sub, path, applies[j].key),
				   "'%s' does not apply to a '%s' expectation", applies[j].key,
				   kind_name(k));
	fl_path_key(sub, path, kind_keys[which]);
	switch (k) {
	case K_BECOMES:
		E->kind = FL_EXP_BECOMES;
		TRY(read_observed(L, &p, e, path, &E->value));
		TRY(read_pred_obj(L, kn, sub, &E->pred));
		break;
	case K_HOLDS:
	case K_MAX:
	case K_MIN:
	case K_NEVER:
		E->kind = k == K_NEVER ? FL_EXP_NEVER : FL_EXP_HOLDS;
		TRY(read_observed(L, &p, e, path, &E->value));
		if (k == K_HOLDS || k == K_NEVER) {
			TRY(read_pred_obj(L, kn, sub, &E->pred));
		} else if (pv(&p, kind_keys[which])->set) {
			E->pred.op = k == K_MAX ? FL_CMP_LE : FL_CMP_GE;
			E->pred.value = pv(&p, kind_keys[which])->d;
		}
		E->agg = agg_of(fl_params_str(&p, "aggregate", NULL));
		if (E->value.ratio && given(&p, "aggregate"))
			fl_diag_at(L->diag, given(&p, "aggregate"), true,
				   fl_path_key(sub, path, "aggregate"),
				   "'aggregate' does not apply to a ratio (a ratio is already one "
				   "number per window)");
		TRY(read_window(L, &p, path, i, E));
		break;
	case K_RECOVERS:
		E->kind = FL_EXP_RECOVERS;
		if (kn->type == FL_JSON_BOOL && !kn->b)
			fl_diag_at(L->diag, kn, false, sub,
				   "must be true (remove the expectation to not check recovery)");
		if (!L->x->nsteady)
			fl_diag_at(L->diag, kn, true, sub,
				   "'recovers' needs steady_state checks to recover to");
		E->settle_ns = fl_params_ns(&p, "settle", L->x->settings.steady_window_ns);
		break;
	case K_ORDER:
		E->kind = FL_EXP_ORDER;
		if (kn->type == FL_JSON_ARRAY && kn->n != 2) {
			fl_diag_at(L->diag, kn, false, sub,
				   "expected two events [first, second], got %zu", kn->n);
		} else if (kn->type == FL_JSON_ARRAY) {
			char s0[FL_PATH_MAX], s1[FL_PATH_MAX];
			int r0 = parse_event(L, kn->child, fl_path_index(s0, sub, 0), i, &E->first);
			int r1 = parse_event(L, kn->child->next, fl_path_index(s1, sub, 1), i,
					     &E->second);
			char a[32], b[32];

			if (r0 == 0 && r1 == 0 && E->first.kind == E->second.kind &&
			    E->first.index == E->second.index)
				fl_diag_at(L->diag, kn, false, sub, "the two events are the same");
			else if (r0 == 0 && r1 == 0 && E->first.t_ns != FL_T_DYNAMIC &&
				 E->second.t_ns != FL_T_DYNAMIC && E->first.t_ns >= E->second.t_ns)
				fl_diag_at(L->diag, kn, false, sub,
					   "'%s' (at %s) can never come before '%s' (at %s)",
					   kn->child->str, dur(E->first.t_ns, a, sizeof(a)),
					   kn->child->next->str, dur(E->second.t_ns, b, sizeof(b)));
		}
		break;
	}
	if (k & (K_BECOMES | K_RECOVERS)) {
		const struct fl_json *after = given(&p, "after"), *within = given(&p, "within");

		E->within_ns = fl_params_ns(&p, "within", 0);
		if (!within)
			fl_diag_at(L->diag, e, false, path, "missing 'within' (the time bound)");
		if (!after && k == K_RECOVERS)
			fl_diag_at(L->diag, e, false, path,
				   "missing 'after' (the event recovery is timed from)");
		E->after.kind = FL_EV_START;
		if (after && after->type == FL_JSON_STRING &&
		    parse_event(L, after, fl_path_key(sub, path, "after"), i, &E->after) == 0 &&
		    within)
			check_until(L, &E->after, E->within_ns + E->settle_ns, within,
				    fl_path_key(sub, path, "within"),
				    k == K_BECOMES ? "the bound" : "the bound plus settle");
	}
	return 0;
}

/* Expectations that wait for each other's events must not form a cycle. */
static bool waits_for(const struct fl_expect *E, size_t j)
{
	const struct fl_event *evs[] = { &E->after, &E->window.from, &E->first, &E->second };

	for (size_t i = 0; i < COUNT(evs); i++)
		if (evs[i]->kind == FL_EV_EXPECT && evs[i]->index == j)
			return true;
	return false;
}

static bool cycle_from(struct ld *L, size_t i, unsigned char *color, size_t *stack, size_t depth,
		       size_t *len)
{
	color[i] = 1;
	stack[depth] = i;
	for (size_t j = 0; j < L->x->nexpects; j++) {
		if (!waits_for(&L->x->expects[i], j))
			continue;
		if (color[j] == 1) {
			size_t k = 0;

			while (stack[k] != j)
				k++;
			memmove(stack, stack + k, (depth + 1 - k) * sizeof(*stack));
			*len = depth + 1 - k;
			return true;
		}
		if (color[j] == 0 && cycle_from(L, j, color, stack, depth + 1, len))
			return true;
	}
	color[i] = 2;
	return false;
}

static int check_cycles(struct ld *L)
{
	size_t n = L->x->nexpects, len = 0;
	unsigned char *color;
	size_t *stack;

	color = fl_arena_alloc(&L->x->arena, n + 1);
	stack = fl_arena_alloc(&L->x->arena, (n + 1) * sizeof(*stack));
	if (!color || !stack)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		char chain[320], path[FL_PATH_MAX];
		size_t used = 0;

		if (color[i] || !cycle_from(L, i, color, stack, 0, &len))
			continue;
		chain[0] = '\0';
		for (size_t k = 0; k <= len && used < sizeof(chain); k++) {
			int w = snprintf(chain + used, sizeof(chain) - used, "%s'%.40s'",
					 k ? " -> " : "", L->x->expects[stack[k % len]].name);
			used += w > 0 ? (size_t)w : 0;
		}
		fl_diag_at(L->diag, L->x->expects[stack[0]].node, false,
			   fl_path_index(path, "expect", stack[0]),
			   "expectations wait for each other's events in a cycle: %s", chain);
		break;
	}
	return 0;
}

static int read_expects(struct ld *L, const struct fl_json *node)
{
	struct fl_experiment *x = L->x;
	char path[FL_PATH_MAX];
	size_t i = 0;

	if (!node || node->type != FL_JSON_ARRAY || node->n == 0)
		return 0;
	if (node->n > FL_MAX_EXPECTS) {
		fl_diag_at(L->diag, node, false, "expect", "more than %d expectations",
			   FL_MAX_EXPECTS);
		return 0;
	}
	x->expects = fl_arena_alloc(&x->arena, node->n * sizeof(*x->expects));
	L->exp_kind = fl_arena_alloc(&x->arena, node->n * sizeof(*L->exp_kind));
	if (!x->expects || !L->exp_kind)
		return -ENOMEM;
	x->nexpects = node->n;
	/* Pass 1: names and kinds, so events can name any expectation. */
	for (const struct fl_json *e = node->child; e; e = e->next, i++) {
		const struct fl_json *nm = fl_json_get(e, "name");
		unsigned kinds = 0;
		bool bad = false;

		for (size_t j = 0; j < COUNT(kind_keys); j++)
			if (fl_json_get(e, kind_keys[j]))
				kinds |= 1u << j;
		L->exp_kind[i] = kinds && !(kinds & (kinds - 1)) ? kinds : 0;
		if (!nm || nm->type != FL_JSON_STRING || nm->len == 0 ||
		    memchr(nm->str, '\0', nm->len))
			continue; /* reported in pass 2 */
		fl_path_key(path, fl_path_index(path, "expect", i), "name");
		if (reserved_event(nm->str)) {
			fl_diag_at(L->diag, nm, false, path, "'%s' is a reserved event name",
				   nm->str);
			bad = true;
		} else if (find_action(x, nm->str, nm->len) != SIZE_MAX ||
			   (nm->len > 6 && strcmp(nm->str + nm->len - 6, ".start") == 0 &&
			    find_action(x, nm->str, nm->len - 6) != SIZE_MAX) ||
			   (nm->len > 4 && strcmp(nm->str + nm->len - 4, ".end") == 0 &&
			    find_action(x, nm->str, nm->len - 4) != SIZE_MAX)) {
			fl_diag_at(L->diag, nm, false, path,
				   "'%.60s' is already an action or action event name", nm->str);
			bad = true;
		}
		for (size_t j = 0; !bad && j < i; j++)
			if (x->expects[j].name && strcmp(x->expects[j].name, nm->str) == 0) {
				const struct fl_json *first =
				    fl_json_get(x->expects[j].node, "name");

				fl_diag_at(L->diag, nm, false, path,
					   "duplicate expectation name '%.60s' (first at %u:%u)",
					   nm->str, first->line, first->col);
				bad = true;
			}
		x->expects[i].node = e;
		if (!bad)
			x->expects[i].name = nm->str;
	}
	TRY(build_events(L));
	i = 0;
	for (const struct fl_json *e = node->child; e; e = e->next, i++)
		TRY(read_expect(L, e, i));
	return check_cycles(L);
}

/* ---- what faults and the target must agree on ---------------------------------- */

static void check_faults(struct ld *L)
{
	struct fl_experiment *x = L->x;
	char path[FL_PATH_MAX];

	if (!x->service.present)
		return;
	for (size_t i = 0; i < x->nactions; i++) {
		const struct fl_action *a = &x->actions[i];
		const struct fl_json *node = fl_json_get(a->node, "fault");
		const char *fam = a->family ? a->family->name : "";

		fl_path_key(path, fl_path_index(path, "method", a->index), "fault");
		if (strcmp(fam, "cache") == 0 && !x->service.admin)
			fl_diag_at(
			    L->diag, node, false, path,
			    "a 'cache' fault needs the service's admin URL (target.admin, or a "
			    "target.command that announces its ports)");
		if (strcmp(fam, "capacity") == 0) {
			bool dep = strcmp(fl_params_str(&a->params, "role", "dependency"),
					  "dependency") == 0;
			const struct fl_target_proc *tp = dep ? &x->dependency : &x->service;

			if (dep && !tp->present)
				fl_diag_at(L->diag, node, false, path,
					   "a 'capacity' fault on role 'dependency' needs "
					   "target.dependency");
			else if (!tp->admin)
				fl_diag_at(
				    L->diag, node, false, path,
				    "a 'capacity' fault needs the %s's admin URL (%s.admin, or a "
				    "command that announces its ports)",
				    dep ? "dependency" : "service",
				    dep ? "target.dependency" : "target");
		}
		if (strcmp(fam, "jitter") == 0) {
			const char *side = fl_params_str(&a->params, "side", "both");
			const char *role = fl_params_str(&a->params, "role", "service");

			if (strcmp(side, "client") != 0) {
				bool svc = strcmp(role, "dependency") != 0;
				bool dep = strcmp(role, "service") != 0;

				if (svc && !x->service.argv && !x->service.control)
					fl_diag_at(
					    L->diag, node, false, path,
					    "a target-side 'jitter' fault needs a service started "
					    "by faultline (target.command) or its control block "
					    "(target.control)");
				else if (dep && !x->dependency.present)
					fl_diag_at(
					    L->diag, node, false, path,
					    "a 'jitter' fault on role '%s' needs target.dependency",
					    role);
				else if (dep && !x->dependency.argv && !x->dependency.control)
					fl_diag_at(
					    L->diag, node, false, path,
					    "a target-side 'jitter' fault needs a dependency "
					    "started by faultline (target.dependency.command) or "
					    "its control block (target.dependency.control)");
			}
			if (strcmp(side, "target") != 0 && x->load.retry_attempts < 2)
				fl_diag_at(
				    L->diag, node, false, path,
				    "a client-side 'jitter' fault needs client retries "
				    "(load.retry.attempts > 1); use side 'target' otherwise");
		}
	}
}

/* ---- the plan ------------------------------------------------------------------- */

static int plan_prio(enum fl_plan_kind k)
{
	/* At one instant: phases, then reverts before applies, then the rest. */
	switch (k) {
	case FL_PLAN_WARMUP_END:
		return 0;
	case FL_PLAN_BASELINE:
		return 1;
	case FL_PLAN_ACTION_END:
		return 2;
	case FL_PLAN_ACTION_REPEAT:
		return 3;
	case FL_PLAN_ACTION_START:
		return 4;
	case FL_PLAN_RECOVERY:
		return 5;
	case FL_PLAN_FINAL_WINDOW:
		return 6;
	case FL_PLAN_END:
		return 7;
	}
	return 8;
}

static int cmp_plan(const void *pa, const void *pb)
{
	const struct fl_plan_event *a = pa, *b = pb;

	if (a->t_ns != b->t_ns)
		return a->t_ns < b->t_ns ? -1 : 1;
	if (plan_prio(a->kind) != plan_prio(b->kind))
		return plan_prio(a->kind) - plan_prio(b->kind);
	return (a->action > b->action) - (a->action < b->action);
}

static int build_plan(struct ld *L)
{
	struct fl_experiment *x = L->x;
	size_t n = 4, k = 0;
	struct fl_plan_event *p;

	for (size_t i = 0; i < x->nactions; i++) {
		const struct fl_action *a = &x->actions[i];

		n += 2;
		if (a->repeat_ns)
			n += (size_t)((a->end_ns - a->start_ns) / a->repeat_ns);
	}
	if (n > FL_MAX_PLAN_EVENTS) {
		fl_diag_at(L->diag, NULL, false, "method", "the plan has more than %d events",
			   FL_MAX_PLAN_EVENTS);
		return 0;
	}
	p = fl_arena_alloc(&x->arena, (n + 1) * sizeof(*p));
	if (!p)
		return -ENOMEM;
	p[k++] = (struct fl_plan_event){ x->warmup_ns, FL_PLAN_WARMUP_END, 0 };
	if (x->nsteady)
		p[k++] = (struct fl_plan_event){ x->steady_ns, FL_PLAN_BASELINE, 0 };
	for (size_t i = 0; i < x->nactions; i++) {
		const struct fl_action *a = &x->actions[i];

		p[k++] = (struct fl_plan_event){ a->start_ns, FL_PLAN_ACTION_START, i };
		for (uint64_t t = a->start_ns + a->repeat_ns; a->repeat_ns && t < a->end_ns;
		     t += a->repeat_ns)
			p[k++] = (struct fl_plan_event){ t, FL_PLAN_ACTION_REPEAT, i };
		if (a->end_ns > a->start_ns)
			p[k++] = (struct fl_plan_event){ a->end_ns, FL_PLAN_ACTION_END, i };
	}
	if (x->nactions)
		p[k++] = (struct fl_plan_event){ x->method_end_ns, FL_PLAN_RECOVERY, 0 };
	if (x->nsteady)
		p[k++] = (struct fl_plan_event){ x->final_ns, FL_PLAN_FINAL_WINDOW, 0 };
	p[k++] = (struct fl_plan_event){ x->end_ns, FL_PLAN_END, 0 };
	qsort(p, k, sizeof(*p), cmp_plan);
	x->plan = p;
	x->nplan = k;
	return 0;
}

/* ---- the whole document ----------------------------------------------------------- */

static int check_variables(struct ld *L, const struct fl_json *vars)
{
	char path[FL_PATH_MAX];

	if (!vars || vars->type != FL_JSON_OBJECT)
		return 0;
	for (const struct fl_json *m = vars->child; m; m = m->next) {
		fl_path_key(path, "variables", m->key);
		if (!ident(m->key, m->key_len))
			fl_diag_at(
			    L->diag, m, true, path,
			    "variable names are letters, digits and '_' (not starting with a "
			    "digit, up to 64), got '%.40s'",
			    m->key);
		else if (is_late(m->key, m->key_len) || strcmp(m->key, "seq") == 0 ||
			 strcmp(m->key, "uuid") == 0)
			fl_diag_at(L->diag, m, true, path,
				   "'%s' is a reserved variable (set by faultline at run time)",
				   m->key);
	}
	return 0;
}

static int load_document(struct ld *L, const struct fl_json *root, size_t before)
{
	struct fl_experiment *x = L->x;
	const struct fl_json *target = fl_json_get(root, "target");
	struct fl_params p;
	const struct fl_pval *v;

	L->defaults = fl_json_get(root, "variables");
	if (L->defaults && L->defaults->type != FL_JSON_OBJECT)
		L->defaults = NULL;
	if (L->defaults && L->defaults->n > FL_MAX_VARIABLES) {
		fl_diag_at(L->diag, L->defaults, false, "variables", "more than %d variables",
			   FL_MAX_VARIABLES);
		L->defaults = NULL;
	}
	L->ports_service = target && announces(target);
	L->ports_dependency = target && announces(fl_json_get(target, "dependency"));
	TRY(check_variables(L, L->defaults));
	TRY(fl_params_read(&L->r, &experiment_spec, root, "", &p));
	v = pv(&p, "version");
	if (v->set && v->i != FL_EXPERIMENT_VERSION)
		fl_diag_at(L->diag, v->node, false, "version",
			   "unsupported format version %" PRId64
			   " (this faultline reads version %d)",
			   v->i, FL_EXPERIMENT_VERSION);
	x->title = fl_params_str(&p, "title", "");
	x->description = fl_params_str(&p, "description", NULL);
	v = pv(&p, "tags");
	x->tags = v->set ? v->strv : NULL;
	x->ntags = v->set ? v->n : 0;
	x->seed = fl_params_get(&p, "seed")->u;

	TRY(read_settings(L, given(&p, "settings")));
	TRY(read_target(L, given(&p, "target")));
	TRY(read_load(L, given(&p, "load"), x->seed));
	TRY(read_probes(L, given(&p, "probes")));
	TRY(read_checks(L, given(&p, "steady_state"), "steady_state", &check_spec, &x->steady,
			&x->nsteady));
	TRY(read_method(L, given(&p, "method")));
	compute_times(L, given(&p, "load"));
	TRY(read_expects(L, given(&p, "expect")));
	TRY(read_checks(L, given(&p, "abort"), "abort", &abort_spec, &x->aborts, &x->naborts));
	check_faults(L);
	if (L->diag->count == before)
		TRY(build_plan(L));
	return L->diag->count == before ? 0 : -EINVAL;
}

int fl_experiment_parse(const char *name, const char *buf, size_t len, const struct fl_vars *vars,
			const struct rs_alloc *alloc, struct fl_experiment **out,
			struct fl_diag *diag)
{
	struct fl_json_error jerr;
	struct fl_experiment *x;
	struct ld L;
	size_t before = diag->count;
	int rc;

	*out = NULL;
	x = rs__calloc(alloc, 1, sizeof(*x));
	if (!x) {
		fl_diag_add(diag, 0, 0, NULL, "out of memory");
		return -ENOMEM;
	}
	fl_arena_init(&x->arena, alloc);
	x->file = name;
	rc = fl_json_parse(buf, len, alloc, &x->doc, &jerr);
	if (rc) {
		if (rc == -ENOMEM)
			fl_diag_add(diag, 0, 0, NULL, "out of memory");
		else
			fl_diag_add(diag, jerr.line, jerr.col, jerr.path, "%s", jerr.msg);
		goto fail;
	}
	rc = -ENOMEM;
	x->source = fl_arena_strndup(&x->arena, buf, len);
	if (!x->source) {
		fl_diag_add(diag, 0, 0, NULL, "out of memory");
		goto fail;
	}
	x->source_len = len;
	memset(&L, 0, sizeof(L));
	L.x = x;
	L.diag = diag;
	L.vars = vars;
	L.r.diag = diag;
	L.r.arena = &x->arena;
	L.r.expand = expand;
	L.r.expand_ctx = &L;
	x->probes = fl_arena_alloc(&x->arena, FL_MAX_PROBES * sizeof(*x->probes));
	if (!x->probes) {
		fl_diag_add(diag, 0, 0, NULL, "out of memory");
		goto fail;
	}
	if (x->doc->root->type != FL_JSON_OBJECT) {
		fl_diag_at(diag, x->doc->root, false, NULL, "expected an experiment object, got %s",
			   fl_json_type_name(x->doc->root->type));
		rc = -EINVAL;
		goto fail;
	}
	rc = load_document(&L, x->doc->root, before);
	if (rc == -ENOMEM)
		fl_diag_add(diag, 0, 0, NULL, "out of memory");
	if (rc)
		goto fail;
	*out = x;
	return 0;
fail:
	fl_diag_sort(diag);
	fl_experiment_free(x);
	return rc;
}

static void lower_first(char *s)
{
	if (s[0] >= 'A' && s[0] <= 'Z' && !(s[1] >= 'A' && s[1] <= 'Z'))
		s[0] = (char)(s[0] - 'A' + 'a');
}

int fl_experiment_load(const char *path, const struct fl_vars *vars, struct fl_experiment **out,
		       struct fl_diag *diag)
{
	size_t cap, len = 0;
	struct stat st;
	char *buf = NULL, why[128];
	int fd, rc;

	*out = NULL;
	fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto io_fail;
	}
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto io_fail;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = -EISDIR;
		goto io_fail;
	}
	if (S_ISREG(st.st_mode) && st.st_size > (off_t)FL_JSON_MAX_BYTES) {
		fl_diag_add(diag, 0, 0, NULL, "file larger than %u MiB (%lld bytes)",
			    FL_JSON_MAX_BYTES >> 20, (long long)st.st_size);
		rc = -EFBIG;
		goto out;
	}
	cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 65536;
	buf = malloc(cap);
	if (!buf) {
		fl_diag_add(diag, 0, 0, NULL, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *grown;

			if (cap > FL_JSON_MAX_BYTES) {
				fl_diag_add(diag, 0, 0, NULL, "file larger than %u MiB",
					    FL_JSON_MAX_BYTES >> 20);
				rc = -EFBIG;
				goto out;
			}
			cap = cap * 2 > (size_t)FL_JSON_MAX_BYTES + 1
				  ? (size_t)FL_JSON_MAX_BYTES + 1
				  : cap * 2;
			grown = realloc(buf, cap);
			if (!grown) {
				fl_diag_add(diag, 0, 0, NULL, "out of memory");
				rc = -ENOMEM;
				goto out;
			}
			buf = grown;
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto io_fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > FL_JSON_MAX_BYTES) {
		fl_diag_add(diag, 0, 0, NULL, "file larger than %u MiB", FL_JSON_MAX_BYTES >> 20);
		rc = -EFBIG;
		goto out;
	}
	rc = fl_experiment_parse(path, buf, len, vars, NULL, out, diag);
	goto out;
io_fail:
	snprintf(why, sizeof(why), "%s", strerror(-rc));
	lower_first(why);
	fl_diag_add(diag, 0, 0, NULL, "cannot read: %s", why);
out:
	if (fd > STDIN_FILENO)
		close(fd);
	free(buf);
	return rc;
}

void fl_experiment_free(struct fl_experiment *x)
{
	const struct rs_alloc *alloc;

	if (!x)
		return;
	alloc = x->arena.alloc;
	fl_json_doc_free(x->doc);
	fl_arena_release(&x->arena);
	rs__free(alloc, x);
}

/* ---- printing -------------------------------------------------------------------- */

char *fl_event_format(const struct fl_experiment *x, const struct fl_event *ev, char *buf,
		      size_t size)
{
	const char *name;

	switch (ev->kind) {
	case FL_EV_START:
		snprintf(buf, size, "start");
		break;
	case FL_EV_STEADY:
		snprintf(buf, size, "steady");
		break;
	case FL_EV_END:
		snprintf(buf, size, "end");
		break;
	case FL_EV_ACTION_START:
	case FL_EV_ACTION_END:
		name = ev->index < x->nactions ? x->actions[ev->index].name : "?";
		snprintf(buf, size, "%s.%s", name ? name : "?",
			 ev->kind == FL_EV_ACTION_START ? "start" : "end");
		break;
	case FL_EV_EXPECT:
		name = ev->index < x->nexpects ? x->expects[ev->index].name : "?";
		snprintf(buf, size, "%s", name ? name : "?");
		break;
	}
	return buf;
}

void fl_experiment_print_plan(const struct fl_experiment *x, FILE *f)
{
	char t[32], d[32];

	fprintf(f, "%10s  start: load begins (%s, %u connections)\n", "0s",
		x->load.rate > 0 ? "open loop" : "closed loop", x->load.connections);
	for (size_t i = 0; i < x->nplan; i++) {
		const struct fl_plan_event *e = &x->plan[i];
		const struct fl_action *a = x->nactions ? &x->actions[e->action] : NULL;

		dur(e->t_ns, t, sizeof(t));
		switch (e->kind) {
		case FL_PLAN_WARMUP_END:
			fprintf(f, "%10s  warm-up over\n", t);
			break;
		case FL_PLAN_BASELINE:
			fprintf(f, "%10s  baseline: %zu steady-state check%s over the last %s\n", t,
				x->nsteady, x->nsteady == 1 ? "" : "s",
				dur(x->settings.steady_window_ns, d, sizeof(d)));
			break;
		case FL_PLAN_ACTION_START:
			fprintf(f, "%10s  %s starts (%s)\n", t, a->name, a->family->name);
			break;
		case FL_PLAN_ACTION_REPEAT:
			fprintf(f, "%10s  %s again (%s)\n", t, a->name, a->family->name);
			break;
		case FL_PLAN_ACTION_END:
			fprintf(f, "%10s  %s ends%s\n", t, a->name,
				a->family->flags & FL_FAM_REVERTS ? " (reverted)" : "");
			break;
		case FL_PLAN_RECOVERY:
			fprintf(f, "%10s  recovery window (%s)\n", t,
				dur(x->settings.recovery_ns, d, sizeof(d)));
			break;
		case FL_PLAN_FINAL_WINDOW:
			fprintf(f, "%10s  final steady-state window\n", t);
			break;
		case FL_PLAN_END:
			fprintf(f, "%10s  end: load stops, verdicts\n", t);
			break;
		}
	}
}
