/* The Prometheus text parser and selector: the core's own exposition (the
 * golden file and one written with resilience/expo.h), what real exporters
 * write (comments, timestamps, CRLF, trailing commas), Resilience4j's and
 * Envoy's names read as the core's, combining several series, and malformed
 * lines reported with their numbers. */
#include "tests/tap.h"
#include "tests/promtext.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <unistd.h>

#include "probes/promparse.h"
#include "resilience/control.h"
#include "resilience/expo.h"

#define GOLDEN "tests/golden/expo_core.prom"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static int count_visit(void *ctx, const struct fl_prom_sample *s)
{
	(void)s;
	(*(int *)ctx)++;
	return 0;
}

/* Selects from text; returns rc and sets *v (NaN on error). */
static int sel(const char *text, const char *metric, const char *const *labels,
	       enum fl_prom_combine combine, double *v, struct fl_prom_match *m, struct rs_err *err)
{
	struct fl_prom_selector s = { metric, labels, combine, false };
	struct fl_prom_match local;
	int rc;

	if (!m)
		m = &local;
	err->msg[0] = '\0';
	rc = fl_prom_select(text, strlen(text), &s, m, err);
	*v = rc == 0 ? m->value : NAN;
	return rc;
}

#define L(...) ((const char *const[]){ __VA_ARGS__, NULL })

static void golden(void)
{
	struct rs_err err;
	struct fl_prom_match m;
	char *text = slurp(GOLDEN), why[256];
	int n = 0, want, rc;
	double v;

	if (!text)
		text = slurp("../" GOLDEN);
	if (!text) {
		skip("cannot read " GOLDEN, 14);
		return;
	}
	want = promtext_check(text, why, sizeof(why));
	rc = fl_prom_parse(text, strlen(text), count_visit, &n, &err);
	ok(rc == 0 && n == want && n >= 40,
	   "golden exposition: all %d samples parsed (checker: %d)", n, want);

	rc = sel(text, "resilience_breaker_state", L("name", "dependency"), FL_PROM_ONE, &v, &m,
		 &err);
	ok(rc == 0 && v == 2 && m.matched == 1 && m.dialect == FL_PROM_NATIVE,
	   "resilience_breaker_state{name=\"dependency\"} is 2 (open)");
	rc = sel(text, "resilience_shed_fraction", L("name", "ingress"), FL_PROM_ONE, &v, NULL,
		 &err);
	is_double(v, 0.7, 0, "resilience_shed_fraction{name=\"ingress\"} is 0.7");
	rc = sel(text, "resilience_retries_total",
		 L("name", "dependency", "outcome", "breaker_open"), FL_PROM_ONE, &v, NULL, &err);
	ok(rc == 0 && v == 1, "two labels select retries_total{outcome=\"breaker_open\"} = 1");
	rc = sel(text, "resilience_retries_total", L("name", "dependency"), FL_PROM_ONE, &v, NULL,
		 &err);
	ok(rc == -ENOTUNIQ && strstr(err.msg, "8 series match"),
	   "one expected, 8 outcomes match: -ENOTUNIQ (%s)", err.msg);
	rc = sel(text, "resilience_retries_total", L("name", "dependency"), FL_PROM_SUM, &v, &m,
		 &err);
	ok(rc == 0 && v == 2 && m.matched == 8, "sum over the 8 outcomes is 2 (1 + 1)");
	sel(text, "resilience_retries_total", L("name", "dependency"), FL_PROM_MAX, &v, NULL, &err);
	is_double(v, 1, 0, "max over the outcomes is 1");
	sel(text, "resilience_retries_total", L("name", "dependency"), FL_PROM_MIN, &v, NULL, &err);
	is_double(v, 0, 0, "min over the outcomes is 0");
	sel(text, "resilience_retries_total", L("name", "dependency"), FL_PROM_MEAN, &v, NULL,
	    &err);
	is_double(v, 0.25, 1e-12, "mean over the 8 outcomes is 0.25");
	rc = sel(text, "resilience_call_duration_seconds_bucket",
		 L("name", "dependency", "le", "+Inf"), FL_PROM_ONE, &v, NULL, &err);
	ok(rc == 0 && v == 10, "histogram bucket le=\"+Inf\" is 10");
	sel(text, "resilience_error_budget_remaining", NULL, FL_PROM_ONE, &v, NULL, &err);
	is_double(v, -9, 0, "no labels: the only resilience_error_budget_remaining is -9");
	rc = sel(text, "resilience_breaker_state", L("name", "nope"), FL_PROM_ONE, &v, NULL, &err);
	ok(rc == -ENOENT && strcmp(err.msg, "no series resilience_breaker_state{name=\"nope\"} in "
					    "the exposition") == 0,
	   "no such series: -ENOENT, '%s'", err.msg);
	rc = sel(text, "resilience_breaker_state", L("name", "dependency", "zone", ""), FL_PROM_ONE,
		 &v, NULL, &err);
	ok(rc == 0 && v == 2, "an empty matcher value matches a series without that label");
	rc = sel(text, "resilience_shed", NULL, FL_PROM_SUM, &v, NULL, &err);
	ok(rc == -ENOENT, "names match exactly: resilience_shed selects nothing");
	free(text);
}

static void core_expo(void)
{
	struct rs_control_block b;
	struct rs_expo e;
	struct rs_err err;
	char buf[2048];
	const char *odd = "a\"b\\c\nd";
	double v;
	int rc;

	memset(&b, 0, sizeof(b));
	b.magic = RS_CONTROL_MAGIC;
	b.version = RS_CONTROL_VERSION;
	b.size = sizeof(b);
	atomic_store(&b.jitter_enabled, 0);
	atomic_store(&b.retries_paused, 1);
	rs_expo_init(&e, buf, sizeof(buf));
	rs_control_expo(&e, &b, "service");
	rs_expo_family(&e, "app_odd", RS_EXPO_GAUGE, "label values that need escaping");
	rs_expo_sample(&e, "app_odd", L("path", odd), 5);
	rs_expo_sample(&e, "app_odd", L("path", "plain"), NAN);
	rs_expo_sample(&e, "app_odd", L("path", "inf"), INFINITY);
	rs_expo_sample(&e, "app_odd", L("path", "-inf"), -INFINITY);
	rc = rs_expo_finish(&e);
	ok(rc == 0, "exposition written with resilience/expo.h (%zu bytes)", e.len);
	rc = sel(buf, "resilience_jitter_enabled", L("name", "service"), FL_PROM_ONE, &v, NULL,
		 &err);
	ok(rc == 0 && v == 0, "rs_control_expo: jitter removed reads 0");
	rc = sel(buf, "resilience_retries_paused", L("name", "service"), FL_PROM_ONE, &v, NULL,
		 &err);
	ok(rc == 0 && v == 1, "rs_control_expo: retries paused reads 1");
	rc = sel(buf, "app_odd", L("path", odd), FL_PROM_ONE, &v, NULL, &err);
	ok(rc == 0 && v == 5, "a label value with a quote, a backslash and a newline matches "
			      "unescaped");
	rc = sel(buf, "app_odd", L("path", "plain"), FL_PROM_ONE, &v, NULL, &err);
	ok(rc == 0 && isnan(v), "NaN reads as NaN");
	sel(buf, "app_odd", L("path", "inf"), FL_PROM_ONE, &v, NULL, &err);
	ok(isinf(v) && v > 0, "+Inf reads as +infinity");
	sel(buf, "app_odd", L("path", "-inf"), FL_PROM_ONE, &v, NULL, &err);
	ok(isinf(v) && v < 0, "-Inf reads as -infinity");
}

struct ts_ctx {
	int n;
	int64_t ts[4];
	bool has[4];
	unsigned line[4];
};

static int ts_visit(void *ctx, const struct fl_prom_sample *s)
{
	struct ts_ctx *c = ctx;

	if (c->n < 4) {
		c->ts[c->n] = s->timestamp_ms;
		c->has[c->n] = s->has_timestamp;
		c->line[c->n] = s->line;
	}
	c->n++;
	return 0;
}

static void tolerance(void)
{
	const char *text = "# a plain comment\r\n"
			   "#HELP-less comment\n"
			   "\r\n"
			   "# HELP foo_total counts, with \\\\ and \\n in the docstring\n"
			   "# TYPE foo_total counter\n"
			   "foo_total{a=\"1\"} 3 1700000000000\r\n"
			   "  foo_total{ a = \"2\" , }\t4.5e1\t-5\n"
			   "\n"
			   "bar 7";
	struct ts_ctx c = { 0 };
	struct rs_err err;
	double v;
	int rc;

	rc = fl_prom_parse(text, strlen(text), ts_visit, &c, &err);
	ok(rc == 0 && c.n == 3, "comments, blank lines, CRLF, tabs, a last line without newline: "
				"3 samples");
	ok(c.has[0] && c.ts[0] == 1700000000000LL && c.line[0] == 6,
	   "a timestamp is read (1700000000000 ms) and the sample knows its line (6)");
	ok(c.has[1] && c.ts[1] == -5 && !c.has[2], "negative timestamps read; none on 'bar 7'");
	rc = sel(text, "foo_total", L("a", "2"), FL_PROM_ONE, &v, NULL, &err);
	ok(rc == 0 && v == 45, "spaces inside the label set and a trailing comma: 4.5e1 = 45");
	rc = sel(text, "bar", NULL, FL_PROM_ONE, &v, NULL, &err);
	ok(rc == 0 && v == 7, "the unterminated last line is a sample (bar 7)");
}

static const char r4j_text[] =
    "# HELP resilience4j_circuitbreaker_state The states of the circuit breaker\n"
    "# TYPE resilience4j_circuitbreaker_state gauge\n"
    "resilience4j_circuitbreaker_state{application=\"shop\",name=\"inventory\",state=\"closed\",} "
    "0.0\n"
    "resilience4j_circuitbreaker_state{application=\"shop\",name=\"inventory\",state=\"open\",} "
    "1.0\n"
    "resilience4j_circuitbreaker_state{application=\"shop\",name=\"inventory\",state=\"half_"
    "open\",} 0.0\n"
    "resilience4j_circuitbreaker_state{application=\"shop\",name=\"inventory\",state=\"forced_"
    "open\",} 0.0\n"
    "resilience4j_circuitbreaker_state{application=\"shop\",name=\"inventory\",state="
    "\"disabled\",} 0.0\n"
    "resilience4j_circuitbreaker_state{application=\"shop\",name=\"inventory\",state=\"metrics_"
    "only\",} 0.0\n"
    "resilience4j_circuitbreaker_state{application=\"shop\",name=\"payments\",state=\"closed\",} "
    "0.0\n"
    "resilience4j_circuitbreaker_state{application=\"shop\",name=\"payments\",state=\"half_"
    "open\",} 1.0\n";

static void resilience4j(void)
{
	static const char *const states[] = { "closed",	     "half_open", "open",
					      "forced_open", "disabled",  "metrics_only" };
	static const int want[] = { 0, 1, 2, 4, 5, 5 };
	struct fl_prom_selector s = { "resilience_breaker_state", L("name", "inventory"),
				      FL_PROM_ONE, true };
	struct fl_prom_match m;
	struct rs_err err;
	char text[2048];
	int rc, wrong = 0;
	double v;

	rc = sel(r4j_text, "resilience_breaker_state", L("name", "inventory"), FL_PROM_ONE, &v, &m,
		 &err);
	ok(rc == 0 && v == 2 && m.dialect == FL_PROM_RESILIENCE4J &&
	       strcmp(m.series, "resilience4j_circuitbreaker_state") == 0,
	   "resilience4j (Micrometer): inventory's state=\"open\" is 1 -> breaker state 2");
	rc = sel(r4j_text, "resilience_breaker_state", L("name", "payments"), FL_PROM_ONE, &v, NULL,
		 &err);
	ok(rc == 0 && v == 1, "payments is half_open -> 1");
	for (size_t i = 0; i < 6; i++) {
		snprintf(text, sizeof(text),
			 "resilience4j_circuitbreaker_state{name=\"b\",state=\"closed\"} %d\n"
			 "resilience4j_circuitbreaker_state{name=\"b\",state=\"%s\"} 1\n",
			 i == 0 ? 1 : 0, states[i]);
		if (i == 0)
			snprintf(
			    text, sizeof(text),
			    "resilience4j_circuitbreaker_state{name=\"b\",state=\"closed\"} 1\n");
		rc = sel(text, "resilience_breaker_state", L("name", "b"), FL_PROM_ONE, &v, NULL,
			 &err);
		if (rc != 0 || v != want[i] || fl_prom_r4j_state(states[i]) != want[i]) {
			diag("state %s: rc %d value %g, want %d", states[i], rc, v, want[i]);
			wrong++;
		}
	}
	ok(wrong == 0 && fl_prom_r4j_state("OPEN") == 2 && fl_prom_r4j_state("bogus") == -1,
	   "closed 0, half_open 1, open 2, forced_open 4, disabled 5, metrics_only 5 (any case)");
	rc = fl_prom_select(r4j_text, strlen(r4j_text), &s, &m, &err);
	ok(rc == -ENOENT, "native_only: resilience4j's names are not read");
	snprintf(text, sizeof(text), "%s%s", r4j_text,
		 "resilience_breaker_state{name=\"inventory\"} 0\n");
	rc = sel(text, "resilience_breaker_state", L("name", "inventory"), FL_PROM_ONE, &v, &m,
		 &err);
	ok(rc == 0 && v == 0 && m.dialect == FL_PROM_NATIVE,
	   "the core's own series wins over resilience4j's");
	rc = sel("resilience4j_circuitbreaker_state{name=\"x\",state=\"melted\"} 1\n",
		 "resilience_breaker_state", L("name", "x"), FL_PROM_ONE, &v, NULL, &err);
	ok(rc == -EINVAL && strstr(err.msg, "line 1") && strstr(err.msg, "'melted'"),
	   "an unknown state is an error naming it: %s", err.msg);
}

static const char envoy_text[] =
    "# TYPE envoy_cluster_upstream_rq_retry counter\n"
    "envoy_cluster_upstream_rq_retry{envoy_cluster_name=\"dependency\"} 42\n"
    "envoy_cluster_upstream_rq_retry{envoy_cluster_name=\"other\"} 7\n"
    "# TYPE envoy_cluster_upstream_rq_retry_overflow counter\n"
    "envoy_cluster_upstream_rq_retry_overflow{envoy_cluster_name=\"dependency\"} 5\n"
    "# TYPE envoy_cluster_circuit_breakers_default_rq_retry_open gauge\n"
    "envoy_cluster_circuit_breakers_default_rq_retry_open{envoy_cluster_name=\"dependency\"} 1\n"
    "envoy_cluster_circuit_breakers_default_rq_retry_open{envoy_cluster_name=\"other\"} 0\n";

static void envoy(void)
{
	struct fl_prom_match m;
	struct rs_err err;
	double v;
	int rc;

	rc = sel(envoy_text, "resilience_retries_total",
		 L("name", "dependency", "outcome", "retry"), FL_PROM_ONE, &v, &m, &err);
	ok(rc == 0 && v == 42 && m.dialect == FL_PROM_ENVOY,
	   "envoy: retries_total{outcome=\"retry\"} reads envoy_cluster_upstream_rq_retry = 42");
	rc = sel(envoy_text, "resilience_retries_total",
		 L("name", "dependency", "outcome", "budget_denied"), FL_PROM_ONE, &v, NULL, &err);
	ok(rc == 0 && v == 5, "envoy: outcome=\"budget_denied\" reads ..._rq_retry_overflow = 5");
	rc = sel(envoy_text, "resilience_retry_budget_denied_total", L("name", "dependency"),
		 FL_PROM_ONE, &v, NULL, &err);
	ok(rc == 0 && v == 5, "envoy: retry_budget_denied_total reads the overflow counter = 5");
	rc = sel(envoy_text, "resilience_retry_budget_exhausted", L("name", "dependency"),
		 FL_PROM_ONE, &v, NULL, &err);
	ok(rc == 0 && v == 1, "envoy: retry_budget_exhausted reads rq_retry_open = 1");
	rc = sel(envoy_text, "resilience_retry_budget_exhausted", L("name", "other"), FL_PROM_ONE,
		 &v, NULL, &err);
	ok(rc == 0 && v == 0, "envoy: name maps to envoy_cluster_name (other: 0)");
	rc = sel(envoy_text, "resilience_retries_total", L("name", "dependency"), FL_PROM_SUM, &v,
		 NULL, &err);
	ok(rc == -ENOENT, "retries_total without an outcome has no envoy equivalent: -ENOENT");
	rc = sel(envoy_text, "resilience_retries_total", L("outcome", "retry"), FL_PROM_SUM, &v, &m,
		 &err);
	ok(rc == 0 && v == 49 && m.matched == 2, "sum of retries over both clusters is 49");
}

static void malformed(void)
{
	static const struct {
		const char *text;
		const char *want; /* the message starts with this */
	} cases[] = {
		{ "a 1\nb{x=\"1\" 2\n", "line 2: expected ',' or '}'" },
		{ "a 1\n\n# HELP a x\nb{x=1} 2\n", "line 4: expected '\"'" },
		{ "a{x=\"1} 2\n", "line 1: unterminated label value" },
		{ "ok 1\na{x=\"\\t\"} 1\n", "line 2: bad escape '\\t'" },
		{ "a abc\n", "line 1: value 'abc' is not a number" },
		{ "a 0x10\n", "line 1: value '0x10' is not a number" },
		{ "a 1 2 3\n", "line 1: text after the timestamp" },
		{ "a 1 xyz\n", "line 1: text after the value" },
		{ "a 1 1.5\n", "line 1: timestamp '1.5'" },
		{ "x 1\ny 2\n# TYPE a countr\n", "line 3: TYPE of a" },
		{ "# TYPE\n", "line 1: TYPE without a valid metric name" },
		{ "a{x=\"1\",x=\"2\"} 1\n", "line 1: label 'x' appears twice" },
		{ "1abc 1\n", "line 1: expected a metric name" },
		{ "a-b 1\n", "line 1: bad character '-'" },
		{ "a\n", "line 1: no value" },
		{ "a{1x=\"1\"} 2\n", "line 1: expected a label name" },
		{ "a{x\"1\"} 2\n", "line 1: expected '=' after label name 'x'" },
	};
	struct rs_err err;
	int n, rc, visited;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err.msg[0] = '\0';
		n = 0;
		rc = fl_prom_parse(cases[i].text, strlen(cases[i].text), count_visit, &n, &err);
		ok(rc == -EBADMSG && strncmp(err.msg, cases[i].want, strlen(cases[i].want)) == 0,
		   "malformed: '%s'", err.msg);
	}
	visited = 0;
	rc = fl_prom_parse("a 1\nb 2\nc{ 3\nd 4\n", 17, count_visit, &visited, &err);
	ok(rc == -EBADMSG && visited == 2, "the samples before a malformed line are visited (2)");
	{
		struct fl_prom_selector s = { "a", NULL, FL_PROM_SUM, false };
		struct fl_prom_match m;

		rc = fl_prom_select("a 1\nb{ 2\n", 9, &s, &m, &err);
		ok(rc == -EBADMSG && strncmp(err.msg, "line 2:", 7) == 0,
		   "the selector refuses a malformed exposition with the line: %s", err.msg);
	}
}

int main(void)
{
	signal(SIGALRM, SIG_DFL);
	alarm(30);
	plan(14 + 7 + 5 + 6 + 7 + 17 + 2);
	golden();
	core_expo();
	tolerance();
	resilience4j();
	envoy();
	malformed();
	return exit_status();
}
