/* faultline: the command line.  Subcommands live in one table; each parses
 * its own options.  Exit codes (DESIGN.md section 7): 0 success, 1 failure,
 * 2 invalid input or usage, 3 aborted (faults reverted), 4 capability
 * missing.  `faultline load` stopped by SIGINT or SIGTERM prints what it
 * measured and exits 0, as wrk does.
 *
 * "faultline __exec PPID -- PROGRAM ARGS..." is internal: the runner starts
 * target processes through it so that they die with the harness
 * (harness/target_proc.h). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <uv.h>

#include "harness/cmd_validate.h"
#include "harness/commands.h"
#include "harness/duration.h"
#include "harness/loadgen.h"
#include "harness/target_proc.h"
#include "resilience/clock.h"

#ifndef FL_VERSION
#define FL_VERSION "0.1.0"
#endif

#define EXIT_USAGE 2

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static int cmd_load(int argc, char **argv);

static const struct command commands[] = {
	{ "run", fl_cmd_run, "run an experiment: target, load, faults, probes, verdicts" },
	{ "validate", fl_cmd_validate,
	  "check experiment files; print every error with its location" },
	{ "list", fl_cmd_list, "list the fault and probe families with their parameters" },
	{ "doctor", fl_cmd_doctor, "say what this machine can inject, and why not" },
	{ "recover", fl_cmd_recover, "revert the faults that crashed runs left behind" },
	{ "load", cmd_load, "drive HTTP load at a URL; print throughput, latency and errors" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: faultline [--help] [--version] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "\n'faultline COMMAND --help' describes a command's options.\n");
}

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "faultline %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_USAGE;
}

/* ---- option values ---- */

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_double(const char *s, double *out)
{
	char *end;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	*out = strtod(s, &end);
	if (errno || *end || !isfinite(*out))
		return -EINVAL;
	return 0;
}

/* ---- faultline load ---- */

static const char load_help[] =
    "usage: faultline load URL [options]\n"
    "\n"
    "Sends HTTP/1.1 requests to URL (http://HOST[:PORT]/PATH, HOST an IP address or\n"
    "localhost) over persistent connections and prints throughput, latency and errors.\n"
    "The path, header values and body are templates: ${seq} (request number),\n"
    "${rand:A:B}, ${zipf:N:S}, ${uuid}; '$$' is a literal '$'.\n"
    "\n"
    "  -c, --connections N     connections (default 10)\n"
    "  -r, --rate R            open loop at R requests/s, latency corrected for\n"
    "                          coordinated omission (default: closed loop, max rate)\n"
    "  -d, --duration D        run time, e.g. 10s, 500ms (default 10s without --requests)\n"
    "  -n, --requests N        stop after N requests\n"
    "      --method M          request method (default GET)\n"
    "  -H, --header 'N: V'     add a header (repeatable)\n"
    "      --body B            request body (sent with Content-Length)\n"
    "      --timeout D         per-attempt timeout (default 2s)\n"
    "      --deadline D        per-request deadline, retries included (default none)\n"
    "      --retry-attempts N  attempts per request, the first included (default 1)\n"
    "      --retry-backoff S   none|full|equal|decorrelated|proportional (default full)\n"
    "      --retry-base D      first retry delay (default 10ms)\n"
    "      --retry-cap D       largest retry delay (default 1s)\n"
    "      --budget-ratio F    retry budget: at most F retries per request, in [0, 1]\n"
    "      --budget-window D   the budget's sliding window (default 10s)\n"
    "      --lockstep          retries without jitter, on a common tick (the retry base)\n"
    "      --lockstep-tick D   the lockstep tick (default: --retry-base)\n"
    "      --interval D        statistics interval (default 100ms)\n"
    "      --seed N            seed for templates and jitter (default 1)\n"
    "      --json              print the full record (totals and intervals) as JSON\n"
    "  -h, --help              this help\n"
    "\n"
    "Exit status: 0 when the run completed or was interrupted (SIGINT, SIGTERM: what was\n"
    "measured so far is printed); 2 for invalid options; 1 when the run could not start.\n"
    "Failed requests are measurements, not errors of the tool.\n";

struct interval_rec {
	struct fl_load_stats s; /* histogram pointers cleared */
	uint64_t q[3][6];	/* per histogram: count, p50, p90, p99, p99.9, max */
	bool has[3];
};

struct load_run {
	struct fl_loadgen *lg;
	uv_signal_t sigint, sigterm;
	bool interrupted;
	bool json;
	struct interval_rec *iv;
	size_t niv, cap_iv;
	bool oom;
};

static const double quantiles[] = { 0.5, 0.9, 0.99, 0.999 };

static void summarize(const struct rs_hist *h, uint64_t q[6], bool *has)
{
	*has = h && rs_hist_count(h) > 0;
	memset(q, 0, 6 * sizeof(q[0]));
	if (!*has)
		return;
	q[0] = rs_hist_count(h);
	for (int i = 0; i < 4; i++) {
		if (rs_hist_quantile(h, quantiles[i], &q[i + 1]) < 0)
			q[i + 1] = 0;
	}
	q[5] = rs_hist_max(h);
}

static void on_interval(void *ctx, const struct fl_load_stats *s)
{
	struct load_run *run = ctx;
	struct interval_rec *r;

	if (!run->json)
		return;
	if (run->niv == run->cap_iv) {
		size_t cap = run->cap_iv ? 2 * run->cap_iv : 256;
		struct interval_rec *iv = realloc(run->iv, cap * sizeof(*iv));

		if (!iv) {
			run->oom = true;
			return;
		}
		run->iv = iv;
		run->cap_iv = cap;
	}
	r = &run->iv[run->niv++];
	r->s = *s;
	summarize(s->latency, r->q[0], &r->has[0]);
	summarize(s->latency_uncorrected, r->q[1], &r->has[1]);
	summarize(s->latency_first, r->q[2], &r->has[2]);
	r->s.latency = r->s.latency_uncorrected = r->s.latency_first = NULL;
}

static void signal_closed(uv_handle_t *h)
{
	(void)h;
}

static void on_done(void *ctx)
{
	struct load_run *run = ctx;

	uv_close((uv_handle_t *)&run->sigint, signal_closed);
	uv_close((uv_handle_t *)&run->sigterm, signal_closed);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct load_run *run = s->data;

	(void)signum;
	run->interrupted = true;
	fl_loadgen_stop(run->lg);
}

static void fmt_ns(char *buf, size_t n, double ns)
{
	if (ns < 1e3)
		snprintf(buf, n, "%.0fns", ns);
	else if (ns < 1e6)
		snprintf(buf, n, "%.2fus", ns / 1e3);
	else if (ns < 1e9)
		snprintf(buf, n, "%.2fms", ns / 1e6);
	else
		snprintf(buf, n, "%.2fs", ns / 1e9);
}

static void print_latency_row(const char *name, const struct rs_hist *h)
{
	uint64_t q[6];
	bool has;
	char b[16];

	summarize(h, q, &has);
	printf("    %-15s", name);
	if (!has) {
		printf(" %10s\n", "-");
		return;
	}
	for (int i = 1; i < 6; i++) {
		fmt_ns(b, sizeof(b), (double)q[i]);
		printf(" %10s", b);
	}
	fmt_ns(b, sizeof(b), rs_hist_mean(h));
	printf(" %10s\n", b);
}

static void print_summary(const struct fl_loadgen_opts *o, const char *url,
			  const struct fl_load_stats *t, bool interrupted)
{
	double secs = (double)(t->end_ns - t->start_ns) / 1e9;
	uint64_t done = t->successes + t->failures;

	printf("faultline load %s: %s, %u connections, seed %" PRIu64 "%s\n", url,
	       o->rate > 0 ? "open loop" : "closed loop", o->connections ? o->connections : 10,
	       o->seed, interrupted ? " (interrupted)" : "");
	if (o->rate > 0) {
		/* The schedule's length: the duration, or the time --requests take. */
		double window =
		    o->duration_ns ? (double)o->duration_ns / 1e9 : (double)o->requests / o->rate;
		uint64_t sched = (uint64_t)ceil(window * o->rate);

		if (o->requests && o->requests < sched)
			sched = o->requests;
		printf("  open loop at %.1f requests/s: %" PRIu64 " of %" PRIu64
		       " scheduled requests started (%.1f requests/s over the %.2fs schedule)\n",
		       o->rate, t->requests, sched, window > 0 ? (double)t->requests / window : 0.0,
		       window);
	}
	printf("  Latency          %10s %10s %10s %10s %10s %10s\n", "p50", "p90", "p99", "p99.9",
	       "max", "mean");
	print_latency_row(o->rate > 0 ? "corrected" : "end to end", t->latency);
	if (o->rate > 0)
		print_latency_row("uncorrected", t->latency_uncorrected);
	print_latency_row("first attempt", t->latency_first);
	printf("  %" PRIu64 " requests in %.2fs: %" PRIu64 " ok, %" PRIu64 " failed, %" PRIu64
	       " abandoned; %" PRIu64 " attempts, %" PRIu64 " retries\n",
	       t->requests, secs, t->successes, t->failures, t->abandoned, t->attempts, t->retries);
	printf("  Errors (attempts):");
	for (int k = 0; k < FL_FAIL_KINDS; k++)
		printf(" %s %" PRIu64 "%s", fl_fail_kind_name((enum fl_fail_kind)k), t->errors[k],
		       k + 1 < FL_FAIL_KINDS ? "," : "\n");
	printf("  Retries denied: %" PRIu64 " by budget, %" PRIu64 " by deadline\n",
	       t->retries_denied_budget, t->retries_denied_deadline);
	printf("Requests/sec: %10.2f\n", secs > 0 ? (double)done / secs : 0.0);
}

static cJSON *json_counters(cJSON *o, const struct fl_load_stats *s)
{
	cJSON *e = cJSON_CreateObject(), *f = cJSON_CreateObject();

	cJSON_AddNumberToObject(o, "requests", (double)s->requests);
	cJSON_AddNumberToObject(o, "attempts", (double)s->attempts);
	cJSON_AddNumberToObject(o, "retries", (double)s->retries);
	cJSON_AddNumberToObject(o, "successes", (double)s->successes);
	cJSON_AddNumberToObject(o, "failures", (double)s->failures);
	for (int k = 0; k < FL_FAIL_KINDS; k++) {
		cJSON_AddNumberToObject(e, fl_fail_kind_name((enum fl_fail_kind)k),
					(double)s->errors[k]);
		cJSON_AddNumberToObject(f, fl_fail_kind_name((enum fl_fail_kind)k),
					(double)s->failed[k]);
	}
	cJSON_AddItemToObject(o, "errors", e);
	cJSON_AddItemToObject(o, "failed", f);
	cJSON_AddNumberToObject(o, "retries_denied_budget", (double)s->retries_denied_budget);
	cJSON_AddNumberToObject(o, "retries_denied_deadline", (double)s->retries_denied_deadline);
	return o;
}

static void json_latency(cJSON *o, const char *name, const uint64_t q[6], bool has)
{
	static const char *const keys[] = { "count",  "p50_us",	 "p90_us",
					    "p99_us", "p999_us", "max_us" };
	cJSON *l;

	if (!has) {
		cJSON_AddNullToObject(o, name);
		return;
	}
	l = cJSON_AddObjectToObject(o, name);
	for (int i = 0; i < 6; i++)
		cJSON_AddNumberToObject(l, keys[i], i == 0 ? (double)q[0] : (double)q[i] / 1e3);
}

static int print_json(struct load_run *run, const struct fl_loadgen_opts *o, const char *url,
		      const struct fl_load_stats *t)
{
	cJSON *root = cJSON_CreateObject(), *tot, *ivs;
	uint64_t q[6], t0 = t->start_ns;
	double secs = (double)(t->end_ns - t->start_ns) / 1e9;
	bool has;
	char *text;

	cJSON_AddStringToObject(root, "url", url);
	cJSON_AddStringToObject(root, "mode", o->rate > 0 ? "open" : "closed");
	cJSON_AddNumberToObject(root, "rate", o->rate);
	cJSON_AddNumberToObject(root, "connections", o->connections);
	cJSON_AddNumberToObject(root, "seed", (double)o->seed);
	cJSON_AddBoolToObject(root, "interrupted", run->interrupted);
	cJSON_AddNumberToObject(root, "elapsed_s", secs);
	cJSON_AddNumberToObject(root, "interval_s", (double)o->interval_ns / 1e9);
	tot = json_counters(cJSON_AddObjectToObject(root, "totals"), t);
	cJSON_AddNumberToObject(tot, "abandoned", (double)t->abandoned);
	cJSON_AddNumberToObject(tot, "requests_per_s",
				secs > 0 ? (double)(t->successes + t->failures) / secs : 0.0);
	summarize(t->latency, q, &has);
	json_latency(tot, "latency", q, has);
	summarize(t->latency_uncorrected, q, &has);
	json_latency(tot, "latency_uncorrected", q, has);
	summarize(t->latency_first, q, &has);
	json_latency(tot, "latency_first", q, has);
	ivs = cJSON_AddArrayToObject(root, "intervals");
	for (size_t i = 0; i < run->niv; i++) {
		const struct interval_rec *r = &run->iv[i];
		cJSON *iv = cJSON_CreateObject();

		cJSON_AddNumberToObject(iv, "start_s", (double)(r->s.start_ns - t0) / 1e9);
		cJSON_AddNumberToObject(iv, "end_s", (double)(r->s.end_ns - t0) / 1e9);
		json_counters(iv, &r->s);
		json_latency(iv, "latency", r->q[0], r->has[0]);
		json_latency(iv, "latency_uncorrected", r->q[1], r->has[1]);
		json_latency(iv, "latency_first", r->q[2], r->has[2]);
		cJSON_AddItemToArray(ivs, iv);
	}
	text = run->oom ? NULL : cJSON_Print(root);
	cJSON_Delete(root);
	if (!text) {
		fprintf(stderr, "faultline load: cannot format the JSON record: out of memory\n");
		return 1;
	}
	puts(text);
	free(text);
	return 0;
}

static int parse_backoff(const char *s, enum rs_backoff_strategy *out)
{
	static const char *const names[] = { "none", "full", "equal", "decorrelated",
					     "proportional" };

	for (int i = 0; i < 5; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum rs_backoff_strategy)i;
			return 0;
		}
	}
	return -EINVAL;
}

enum {
	OPT_METHOD = 256,
	OPT_BODY,
	OPT_TIMEOUT,
	OPT_DEADLINE,
	OPT_RETRY_ATTEMPTS,
	OPT_RETRY_BACKOFF,
	OPT_RETRY_BASE,
	OPT_RETRY_CAP,
	OPT_BUDGET_RATIO,
	OPT_BUDGET_WINDOW,
	OPT_LOCKSTEP,
	OPT_LOCKSTEP_TICK,
	OPT_INTERVAL,
	OPT_SEED,
	OPT_JSON,
};

static const struct option load_options[] = {
	{ "connections", required_argument, NULL, 'c' },
	{ "rate", required_argument, NULL, 'r' },
	{ "duration", required_argument, NULL, 'd' },
	{ "requests", required_argument, NULL, 'n' },
	{ "method", required_argument, NULL, OPT_METHOD },
	{ "header", required_argument, NULL, 'H' },
	{ "body", required_argument, NULL, OPT_BODY },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "deadline", required_argument, NULL, OPT_DEADLINE },
	{ "retry-attempts", required_argument, NULL, OPT_RETRY_ATTEMPTS },
	{ "retry-backoff", required_argument, NULL, OPT_RETRY_BACKOFF },
	{ "retry-base", required_argument, NULL, OPT_RETRY_BASE },
	{ "retry-cap", required_argument, NULL, OPT_RETRY_CAP },
	{ "budget-ratio", required_argument, NULL, OPT_BUDGET_RATIO },
	{ "budget-window", required_argument, NULL, OPT_BUDGET_WINDOW },
	{ "lockstep", no_argument, NULL, OPT_LOCKSTEP },
	{ "lockstep-tick", required_argument, NULL, OPT_LOCKSTEP_TICK },
	{ "interval", required_argument, NULL, OPT_INTERVAL },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* The long name of an option, for messages. */
static const char *opt_name(int c)
{
	for (const struct option *o = load_options; o->name; o++) {
		if (o->val == c)
			return o->name;
	}
	return "?";
}

static int cmd_load(int argc, char **argv)
{
	struct fl_loadgen_opts o = { .seed = 1, .retry_backoff = RS_BACKOFF_FULL };
	struct load_run run = { 0 };
	const char **headers = NULL;
	const char *url = NULL;
	struct rs_err err = { "" };
	uv_loop_t loop;
	uint64_t v;
	char why[RS_ERR_MSG_MAX];
	int c, rc = EXIT_USAGE;
	bool loop_open = false;

	headers = calloc((size_t)argc, sizeof(*headers));
	if (!headers) {
		fprintf(stderr, "faultline load: out of memory\n");
		return 1;
	}
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:r:d:n:H:h", load_options, NULL)) != -1) {
		const char *a = optarg;

		switch (c) {
		case 'c':
			if (parse_u64(a, 1, 10000, &v) < 0) {
				rc = usage_error(
				    "load",
				    "--connections must be an integer in 1..10000, got '%s'", a);
				goto out;
			}
			o.connections = (uint32_t)v;
			break;
		case 'r':
			if (parse_double(a, &o.rate) < 0 || o.rate <= 0) {
				rc = usage_error(
				    "load",
				    "--rate must be a number of requests/s > 0, got '%s' "
				    "(leave --rate out for a closed loop)",
				    a);
				goto out;
			}
			break;
		case 'n':
			if (parse_u64(a, 1, UINT64_MAX, &o.requests) < 0) {
				rc = usage_error("load",
						 "--requests must be an integer >= 1, got '%s'", a);
				goto out;
			}
			break;
		case OPT_RETRY_ATTEMPTS:
			if (parse_u64(a, 1, 100, &v) < 0) {
				rc = usage_error(
				    "load",
				    "--retry-attempts must be an integer in 1..100, got '%s'", a);
				goto out;
			}
			o.retry_attempts = (uint32_t)v;
			break;
		case OPT_SEED:
			if (parse_u64(a, 0, UINT64_MAX, &o.seed) < 0) {
				rc = usage_error("load",
						 "--seed must be an unsigned integer, got '%s'", a);
				goto out;
			}
			break;
		case 'd':
		case OPT_TIMEOUT:
		case OPT_DEADLINE:
		case OPT_RETRY_BASE:
		case OPT_RETRY_CAP:
		case OPT_BUDGET_WINDOW:
		case OPT_LOCKSTEP_TICK:
		case OPT_INTERVAL:
			why[0] = '\0';
			if (fl_duration_parse(a, &v, why, sizeof(why)) < 0 || v == 0) {
				if (!why[0])
					snprintf(why, sizeof(why), "got '%s'", a);
				rc = usage_error(
				    "load",
				    "--%s must be a duration > 0 with a unit, e.g. 10s or "
				    "500ms: %s",
				    opt_name(c), why);
				goto out;
			}
			if ((c == OPT_TIMEOUT || c == OPT_INTERVAL || c == OPT_LOCKSTEP_TICK) &&
			    v < RS_NS_PER_MS) {
				rc = usage_error("load", "--%s must be at least 1ms, got '%s'",
						 opt_name(c), a);
				goto out;
			}
			if (c == 'd')
				o.duration_ns = v;
			else if (c == OPT_TIMEOUT)
				o.timeout_ns = v;
			else if (c == OPT_DEADLINE)
				o.deadline_ns = v;
			else if (c == OPT_RETRY_BASE)
				o.retry_base_ns = v;
			else if (c == OPT_RETRY_CAP)
				o.retry_cap_ns = v;
			else if (c == OPT_BUDGET_WINDOW)
				o.budget_window_ns = v;
			else if (c == OPT_LOCKSTEP_TICK)
				o.lockstep_tick_ns = v;
			else
				o.interval_ns = v;
			break;
		case OPT_METHOD:
			o.method = a;
			break;
		case 'H':
			headers[o.nheaders++] = a;
			break;
		case OPT_BODY:
			o.body = a;
			break;
		case OPT_RETRY_BACKOFF:
			if (parse_backoff(a, &o.retry_backoff) < 0) {
				rc =
				    usage_error("load",
						"--retry-backoff must be one of none, full, equal, "
						"decorrelated, proportional; got '%s'",
						a);
				goto out;
			}
			break;
		case OPT_BUDGET_RATIO:
			if (parse_double(a, &o.budget_ratio) < 0 || o.budget_ratio < 0 ||
			    o.budget_ratio > 1) {
				rc = usage_error(
				    "load", "--budget-ratio must be a number in [0, 1], got '%s'",
				    a);
				goto out;
			}
			o.budget = true;
			break;
		case OPT_LOCKSTEP:
			o.lockstep = true;
			break;
		case OPT_JSON:
			run.json = true;
			break;
		case 'h':
			fputs(load_help, stdout);
			rc = 0;
			goto out;
		case ':':
			rc = usage_error("load", "option '%s' needs a value", argv[optind - 1]);
			goto out;
		default:
			rc = usage_error("load", "unknown option '%s' (see faultline load --help)",
					 argv[optind - 1]);
			goto out;
		}
	}
	if (optind >= argc) {
		rc = usage_error("load", "missing URL (usage: faultline load URL [options])");
		goto out;
	}
	if (optind + 1 < argc) {
		rc =
		    usage_error("load", "unexpected argument '%s' after the URL", argv[optind + 1]);
		goto out;
	}
	if (o.retry_base_ns && o.retry_cap_ns && o.retry_cap_ns < o.retry_base_ns) {
		rc = usage_error("load", "--retry-cap must be >= --retry-base");
		goto out;
	}
	url = argv[optind];
	if (o.duration_ns == 0 && o.requests == 0)
		o.duration_ns = 10 * RS_NS_PER_SEC;
	o.url = url;
	o.headers = headers;
	o.on_interval = on_interval;
	o.on_done = on_done;
	o.ctx = &run;

	if (uv_loop_init(&loop) < 0) {
		fprintf(stderr, "faultline load: cannot create the event loop\n");
		rc = 1;
		goto out;
	}
	loop_open = true;
	rc = fl_loadgen_new(&run.lg, &loop, &o, &err);
	if (rc < 0) {
		if (rc == -EINVAL) {
			rc = usage_error("load", "%s", err.msg);
		} else {
			fprintf(stderr, "faultline load: %s\n",
				err.msg[0] ? err.msg : uv_strerror(rc));
			rc = 1;
		}
		goto out;
	}
	uv_signal_init(&loop, &run.sigint);
	uv_signal_init(&loop, &run.sigterm);
	run.sigint.data = run.sigterm.data = &run;
	uv_signal_start(&run.sigint, on_signal, SIGINT);
	uv_signal_start(&run.sigterm, on_signal, SIGTERM);
	fl_loadgen_start(run.lg);
	uv_run(&loop, UV_RUN_DEFAULT);
	if (!fl_loadgen_done(run.lg)) {
		fprintf(stderr, "faultline load: the event loop stopped before the run ended\n");
		rc = 1;
		goto out;
	}
	if (run.json) {
		rc = print_json(&run, &o, url, fl_loadgen_totals(run.lg));
	} else {
		print_summary(&o, url, fl_loadgen_totals(run.lg), run.interrupted);
		rc = 0;
	}
	fflush(stdout);
out:
	fl_loadgen_free(run.lg);
	if (loop_open) {
		uv_run(&loop, UV_RUN_NOWAIT);
		uv_loop_close(&loop);
	}
	free(run.iv);
	free(headers);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "__exec") == 0)
		return fl_tproc_shim_main(argc - 2, argv + 2);
	if (strcmp(argv[1], "--version") == 0) {
		printf("faultline %s\n", FL_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) == 0)
			return commands[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "faultline: unknown command '%s' (see faultline --help)\n", argv[1]);
	return EXIT_USAGE;
}
