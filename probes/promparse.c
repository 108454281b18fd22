/* The Prometheus text-format parser and selector of probes/promparse.h. */
#include "probes/promparse.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- parsing -------------------------------------------------------------- */

struct lp {
	const char *p, *end; /* the rest of the line (without its newline) */
	char scratch[FL_PROM_SCRATCH];
	size_t used;
	unsigned line;
	struct rs_err *err;
};

static int bad(struct lp *l, const char *fmt, ...) RS_PRINTF(2, 3);
static int bad(struct lp *l, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	rs__err_set(l->err, "line %u: %s", l->line, why);
	return -EBADMSG;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static void skip_blanks(struct lp *l)
{
	while (l->p < l->end && is_blank(*l->p))
		l->p++;
}

static bool name_start(char c, bool colon)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

static bool name_char(char c, bool colon)
{
	return name_start(c, colon) || (c >= '0' && c <= '9');
}

/* Copies n bytes to the scratch area, NUL-terminated; NULL when full. */
static char *scratch_put(struct lp *l, const char *s, size_t n)
{
	char *d;

	if (n + 1 > sizeof(l->scratch) - l->used)
		return NULL;
	d = l->scratch + l->used;
	memcpy(d, s, n);
	d[n] = '\0';
	l->used += n + 1;
	return d;
}

/* Reads a metric (colon) or label name into the scratch area. */
static int read_name(struct lp *l, bool colon, const char **out)
{
	const char *s = l->p;

	if (l->p >= l->end || !name_start(*l->p, colon))
		return -1;
	while (l->p < l->end && name_char(*l->p, colon))
		l->p++;
	*out = scratch_put(l, s, (size_t)(l->p - s));
	return *out ? 0 : -2;
}

static int read_label_value(struct lp *l, const char **out)
{
	char *d = l->scratch + l->used, *start = d, *lim = l->scratch + sizeof(l->scratch) - 1;

	if (l->p >= l->end || *l->p != '"')
		return bad(l, "expected '\"' to open a label value");
	l->p++;
	for (;;) {
		char c;

		if (l->p >= l->end)
			return bad(l, "unterminated label value");
		c = *l->p++;
		if (c == '"')
			break;
		if (c == '\\') {
			if (l->p >= l->end)
				return bad(l, "unterminated label value");
			c = *l->p++;
			if (c == 'n')
				c = '\n';
			else if (c != '\\' && c != '"')
				return bad(l, "bad escape '\\%c' in a label value", c);
		}
		if (d >= lim)
			return bad(l, "labels longer than %d bytes", FL_PROM_SCRATCH);
		*d++ = c;
	}
	*d = '\0';
	l->used += (size_t)(d - start) + 1;
	*out = start;
	return 0;
}

/* A value: a float as Go's ParseFloat reads it in decimal, NaN or Inf. */
static int read_value(struct lp *l, double *v)
{
	const char *s = l->p;
	char tok[64], *end;
	size_t n;

	while (l->p < l->end && !is_blank(*l->p))
		l->p++;
	n = (size_t)(l->p - s);
	if (n == 0)
		return bad(l, "no value");
	if (n >= sizeof(tok))
		return bad(l, "value '%.20s...' too long", s);
	memcpy(tok, s, n);
	tok[n] = '\0';
	{
		const char *t = tok + (tok[0] == '+' || tok[0] == '-');

		if (strcasecmp(t, "nan") == 0) {
			*v = NAN;
			return 0;
		}
		if (strcasecmp(t, "inf") == 0 || strcasecmp(t, "infinity") == 0) {
			*v = tok[0] == '-' ? -INFINITY : INFINITY;
			return 0;
		}
		if (!((*t >= '0' && *t <= '9') || *t == '.') || strpbrk(tok, "xXpP"))
			return bad(l, "value '%s' is not a number", tok);
	}
	*v = strtod(tok, &end);
	if (*end)
		return bad(l, "value '%s' is not a number", tok);
	return 0;
}

static int read_timestamp(struct lp *l, int64_t *ts)
{
	const char *s = l->p;
	char tok[32], *end;
	long long t;
	size_t n;

	while (l->p < l->end && !is_blank(*l->p))
		l->p++;
	n = (size_t)(l->p - s);
	if (n >= sizeof(tok))
		return bad(l, "timestamp too long");
	memcpy(tok, s, n);
	tok[n] = '\0';
	if (!((tok[0] >= '0' && tok[0] <= '9') ||
	      ((tok[0] == '-' || tok[0] == '+') && tok[1] >= '0' && tok[1] <= '9')))
		return bad(l, "text after the value: '%s' is not a timestamp", tok);
	errno = 0;
	t = strtoll(tok, &end, 10);
	if (*end || errno == ERANGE)
		return bad(l, "timestamp '%s' is not a whole number of milliseconds", tok);
	*ts = (int64_t)t;
	return 0;
}

static int parse_comment(struct lp *l)
{
	static const char *const types[] = { "counter", "gauge",   "histogram",
					     "summary", "untyped", NULL };
	bool help, type;
	const char *name, *t0;
	size_t tn;
	int rc;

	l->p++; /* '#' */
	skip_blanks(l);
	help = l->end - l->p >= 4 && memcmp(l->p, "HELP", 4) == 0;
	type = l->end - l->p >= 4 && memcmp(l->p, "TYPE", 4) == 0;
	if ((!help && !type) || (l->end - l->p > 4 && !is_blank(l->p[4])))
		return 0; /* a plain comment */
	l->p += 4;
	skip_blanks(l);
	rc = read_name(l, true, &name);
	if (rc < 0)
		return bad(l, "%s without a valid metric name", help ? "HELP" : "TYPE");
	if (help)
		return 0; /* the docstring is free text */
	if (l->p < l->end && !is_blank(*l->p))
		return bad(l, "bad metric name in TYPE");
	skip_blanks(l);
	t0 = l->p;
	while (l->p < l->end && !is_blank(*l->p))
		l->p++;
	tn = (size_t)(l->p - t0);
	skip_blanks(l);
	for (int i = 0; types[i]; i++)
		if (tn == strlen(types[i]) && memcmp(t0, types[i], tn) == 0 && l->p == l->end)
			return 0;
	return bad(l, "TYPE of %s: '%.*s' is not counter, gauge, histogram, summary or untyped",
		   name, (int)(tn > 40 ? 40 : tn), t0);
}

static int parse_sample(struct lp *l, struct fl_prom_sample *s, struct fl_prom_label *labels)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->labels = labels;
	s->line = l->line;
	rc = read_name(l, true, &s->name);
	if (rc == -2)
		return bad(l, "metric name longer than %d bytes", FL_PROM_SCRATCH);
	if (rc < 0)
		return bad(l, "expected a metric name");
	if (l->p < l->end && *l->p == '{') {
		l->p++;
		for (;;) {
			const char *ln = NULL, *lv = NULL;

			skip_blanks(l);
			if (l->p < l->end && *l->p == '}') {
				l->p++;
				break;
			}
			rc = read_name(l, false, &ln);
			if (rc == -2)
				return bad(l, "labels longer than %d bytes", FL_PROM_SCRATCH);
			if (rc < 0)
				return bad(l, "expected a label name or '}' in %s{...}", s->name);
			skip_blanks(l);
			if (l->p >= l->end || *l->p != '=')
				return bad(l, "expected '=' after label name '%s'", ln);
			l->p++;
			skip_blanks(l);
			rc = read_label_value(l, &lv);
			if (rc < 0)
				return rc;
			for (size_t i = 0; i < s->nlabels; i++)
				if (strcmp(labels[i].name, ln) == 0)
					return bad(l, "label '%s' appears twice", ln);
			if (s->nlabels == FL_PROM_MAX_LABELS)
				return bad(l, "more than %d labels", FL_PROM_MAX_LABELS);
			labels[s->nlabels].name = ln;
			labels[s->nlabels].value = lv;
			s->nlabels++;
			skip_blanks(l);
			if (l->p < l->end && *l->p == ',') {
				l->p++;
				continue;
			}
			if (l->p < l->end && *l->p == '}') {
				l->p++;
				break;
			}
			return bad(l, "expected ',' or '}' after label '%s'", ln);
		}
	} else if (l->p < l->end && !is_blank(*l->p)) {
		return bad(l, "bad character '%c' in metric name", *l->p);
	}
	skip_blanks(l);
	rc = read_value(l, &s->value);
	if (rc < 0)
		return rc;
	skip_blanks(l);
	if (l->p < l->end) {
		rc = read_timestamp(l, &s->timestamp_ms);
		if (rc < 0)
			return rc;
		s->has_timestamp = true;
		skip_blanks(l);
		if (l->p < l->end)
			return bad(l, "text after the timestamp");
	}
	return 0;
}

int fl_prom_parse(const char *text, size_t len, fl_prom_visit visit, void *ctx, struct rs_err *err)
{
	const char *p = text, *end = text + len;
	struct fl_prom_label labels[FL_PROM_MAX_LABELS];
	struct fl_prom_sample s;
	struct lp l;
	int rc;

	l.err = err;
	l.line = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;

		l.line++;
		l.p = p;
		l.end = le;
		l.used = 0;
		p = nl ? nl + 1 : end;
		if (l.end > l.p && l.end[-1] == '\r')
			l.end--;
		skip_blanks(&l);
		if (l.p == l.end)
			continue;
		if (memchr(l.p, '\0', (size_t)(l.end - l.p)))
			return bad(&l, "NUL byte in the text");
		if (*l.p == '#') {
			rc = parse_comment(&l);
			if (rc < 0)
				return rc;
			continue;
		}
		rc = parse_sample(&l, &s, labels);
		if (rc < 0)
			return rc;
		rc = visit ? visit(ctx, &s) : 0;
		if (rc)
			return rc;
	}
	return 0;
}

const char *fl_prom_label(const struct fl_prom_sample *s, const char *name)
{
	for (size_t i = 0; i < s->nlabels; i++)
		if (strcmp(s->labels[i].name, name) == 0)
			return s->labels[i].value;
	return NULL;
}

/* ---- dialects ------------------------------------------------------------- */

struct rule {
	const char *core;		   /* the metric asked for */
	const char *req_label, *req_value; /* must be in the selector, or NULL */
	const char *series;		   /* what is read instead */
	const char *rename_from, *rename_to;
	enum fl_prom_dialect dialect;
	bool r4j_state; /* value: the state label of the series that is 1 */
};

static const struct rule rules[] = {
	{ "resilience_breaker_state", NULL, NULL, "resilience4j_circuitbreaker_state", "name",
	  "name", FL_PROM_RESILIENCE4J, true },
	{ "resilience_retries_total", "outcome", "retry", "envoy_cluster_upstream_rq_retry", "name",
	  "envoy_cluster_name", FL_PROM_ENVOY, false },
	{ "resilience_retries_total", "outcome", "budget_denied",
	  "envoy_cluster_upstream_rq_retry_overflow", "name", "envoy_cluster_name", FL_PROM_ENVOY,
	  false },
	{ "resilience_retry_budget_denied_total", NULL, NULL,
	  "envoy_cluster_upstream_rq_retry_overflow", "name", "envoy_cluster_name", FL_PROM_ENVOY,
	  false },
	{ "resilience_retry_budget_exhausted", NULL, NULL,
	  "envoy_cluster_circuit_breakers_default_rq_retry_open", "name", "envoy_cluster_name",
	  FL_PROM_ENVOY, false },
};

int fl_prom_r4j_state(const char *state)
{
	static const struct {
		const char *name;
		int value;
	} map[] = {
		{ "closed", 0 },      { "half_open", 1 }, { "open", 2 },
		{ "forced_open", 4 }, { "disabled", 5 },  { "metrics_only", 5 },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcasecmp(state, map[i].name) == 0)
			return map[i].value;
	return -1;
}

/* ---- selecting ------------------------------------------------------------ */

struct acc {
	double sum, max, min;
	size_t n;
};

struct sel {
	const struct fl_prom_selector *sel;
	const struct rule *rule; /* the dialect rule that applies, or NULL */
	struct acc native, dialect;
	struct rs_err *err;
};

static void acc_add(struct acc *a, double v)
{
	if (a->n == 0 || v > a->max)
		a->max = v;
	if (a->n == 0 || v < a->min)
		a->min = v;
	a->sum += v;
	a->n++;
}

static const char *sel_get(const char *const *labels, const char *name)
{
	for (const char *const *l = labels; l && l[0]; l += 2)
		if (strcmp(l[0], name) == 0)
			return l[1];
	return NULL;
}

/* A matcher k="v" holds when the sample's label k equals v; an empty v
 * also matches a series without k (Prometheus's reading of empty labels). */
static bool label_matches(const struct fl_prom_sample *s, const char *k, const char *v)
{
	const char *have = fl_prom_label(s, k);

	return strcmp(have ? have : "", v) == 0;
}

static int sel_visit(void *ctx, const struct fl_prom_sample *s)
{
	struct sel *c = ctx;
	const struct rule *r = c->rule;

	if (strcmp(s->name, c->sel->metric) == 0) {
		for (const char *const *l = c->sel->labels; l && l[0]; l += 2)
			if (!label_matches(s, l[0], l[1]))
				return 0;
		acc_add(&c->native, s->value);
		return 0;
	}
	if (!r || strcmp(s->name, r->series) != 0)
		return 0;
	for (const char *const *l = c->sel->labels; l && l[0]; l += 2) {
		if (r->req_label && strcmp(l[0], r->req_label) == 0)
			continue;
		if (!label_matches(s, strcmp(l[0], r->rename_from) == 0 ? r->rename_to : l[0],
				   l[1]))
			return 0;
	}
	if (r->r4j_state) {
		const char *st = fl_prom_label(s, "state");
		int v;

		if (s->value != 1)
			return 0; /* one series per state; the current one is 1 */
		v = st ? fl_prom_r4j_state(st) : -1;
		if (v < 0) {
			rs__err_set(c->err,
				    "line %u: unknown resilience4j circuit breaker state '%.40s'",
				    s->line, st ? st : "(none)");
			return -EINVAL;
		}
		acc_add(&c->dialect, v);
		return 0;
	}
	acc_add(&c->dialect, s->value);
	return 0;
}

static void render(char *buf, size_t size, const struct fl_prom_selector *sel)
{
	size_t n = (size_t)snprintf(buf, size, "%s", sel->metric);

	for (const char *const *l = sel->labels; l && l[0] && n < size; l += 2)
		n += (size_t)snprintf(buf + n, size - n, "%s%s=\"%s\"",
				      l == sel->labels ? "{" : ",", l[0], l[1]);
	if (sel->labels && sel->labels[0] && n < size)
		snprintf(buf + n, size - n, "}");
}

int fl_prom_select(const char *text, size_t len, const struct fl_prom_selector *sel,
		   struct fl_prom_match *out, struct rs_err *err)
{
	struct sel c = { .sel = sel, .err = err };
	const struct acc *a;
	char what[160];
	int rc;

	memset(out, 0, sizeof(*out));
	if (!sel || !sel->metric || !*sel->metric)
		return rs__einval(err, "prometheus: no metric to select");
	for (const char *const *l = sel->labels; l && l[0]; l += 2)
		if (!l[1])
			return rs__einval(err, "prometheus: label '%s' has no value", l[0]);
	if ((unsigned)sel->combine > FL_PROM_MEAN)
		return rs__einval(err, "prometheus: bad combine %d", (int)sel->combine);
	for (size_t i = 0; !sel->native_only && i < sizeof(rules) / sizeof(rules[0]); i++) {
		const struct rule *r = &rules[i];
		const char *v;

		if (strcmp(r->core, sel->metric) != 0)
			continue;
		if (r->req_label) {
			v = sel_get(sel->labels, r->req_label);
			if (!v || strcmp(v, r->req_value) != 0)
				continue;
		}
		c.rule = r;
		break;
	}
	rc = fl_prom_parse(text, len, sel_visit, &c, err);
	if (rc < 0)
		return rc;
	if (c.native.n > 0 || !c.rule || c.dialect.n == 0) {
		a = &c.native;
		out->dialect = FL_PROM_NATIVE;
		out->series = sel->metric;
	} else {
		a = &c.dialect;
		out->dialect = c.rule->dialect;
		out->series = c.rule->series;
	}
	render(what, sizeof(what), sel);
	if (a->n == 0) {
		rs__err_set(err, "no series %s in the exposition", what);
		return -ENOENT;
	}
	if (sel->combine == FL_PROM_ONE && a->n > 1) {
		rs__err_set(err, "%zu series match %s: add labels or combine them", a->n, what);
		return -ENOTUNIQ;
	}
	out->matched = a->n;
	switch (sel->combine) {
	case FL_PROM_ONE:
	case FL_PROM_SUM:
		out->value = a->sum;
		break;
	case FL_PROM_MAX:
		out->value = a->max;
		break;
	case FL_PROM_MIN:
		out->value = a->min;
		break;
	case FL_PROM_MEAN:
		out->value = a->sum / (double)a->n;
		break;
	}
	return 0;
}
