/* The expectation evaluator: see eval.h for the contract. */
#include "harness/eval.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_PER_S 1e9

/* snprintf for messages that may be cut to fit their buffer (by design). */
static void bprintf(char *buf, size_t size, const char *fmt, ...) RS_PRINTF(3, 4);
static void bprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

/* ---- predicates and figures ------------------------------------------------ */

const char *fl_cmp_symbol(enum fl_cmp op)
{
	switch (op) {
	case FL_CMP_EQ:
		return "==";
	case FL_CMP_NE:
		return "!=";
	case FL_CMP_LT:
		return "<";
	case FL_CMP_LE:
		return "<=";
	case FL_CMP_GT:
		return ">";
	case FL_CMP_GE:
		return ">=";
	}
	return "?";
}

bool fl_pred_holds(const struct fl_pred *p, double v)
{
	switch (p->op) {
	case FL_CMP_EQ:
		return v == p->value;
	case FL_CMP_NE:
		return v != p->value;
	case FL_CMP_LT:
		return v < p->value;
	case FL_CMP_LE:
		return v <= p->value;
	case FL_CMP_GT:
		return v > p->value;
	case FL_CMP_GE:
		return v >= p->value;
	}
	return false;
}

static enum fl_cmp negate(enum fl_cmp op)
{
	switch (op) {
	case FL_CMP_EQ:
		return FL_CMP_NE;
	case FL_CMP_NE:
		return FL_CMP_EQ;
	case FL_CMP_LT:
		return FL_CMP_GE;
	case FL_CMP_LE:
		return FL_CMP_GT;
	case FL_CMP_GT:
		return FL_CMP_LE;
	case FL_CMP_GE:
		return FL_CMP_LT;
	}
	return op;
}

/* How far m is inside the predicate's bound (<= 0 outside). */
static double margin_of(enum fl_cmp op, double m, double bound)
{
	switch (op) {
	case FL_CMP_LT:
	case FL_CMP_LE:
		return bound - m;
	case FL_CMP_GT:
	case FL_CMP_GE:
		return m - bound;
	case FL_CMP_EQ:
		return -fabs(m - bound);
	case FL_CMP_NE:
		return fabs(m - bound);
	}
	return NAN;
}

/* Whether a is strictly worse than b for predicate p (see "none" in eval.h). */
static bool worse(enum fl_cmp op, double bound, double a, double b)
{
	switch (op) {
	case FL_CMP_LT:
	case FL_CMP_LE:
		return a > b;
	case FL_CMP_GT:
	case FL_CMP_GE:
		return a < b;
	case FL_CMP_EQ:
		return fabs(a - bound) > fabs(b - bound);
	case FL_CMP_NE:
		if (a == bound || b == bound)
			return a == bound && b != bound;
		return fabs(a - bound) < fabs(b - bound);
	}
	return false;
}

static double secs(uint64_t ns)
{
	return (double)ns / NS_PER_S;
}

/* Signed seconds from origin to t (origin FL_T_NONE: from 0). */
static double offset(uint64_t origin, uint64_t t)
{
	if (origin == FL_T_NONE)
		origin = 0;
	return t >= origin ? secs(t - origin) : -secs(origin - t);
}

/* A value with its unit: "0.041 s", "12.5/s", "1.1". */
static char *fmt_val(char *buf, size_t size, double v, const char *unit)
{
	if (strcmp(unit, "s") == 0)
		bprintf(buf, size, "%.6g s", v);
	else if (strcmp(unit, "/s") == 0)
		bprintf(buf, size, "%.6g/s", v);
	else
		bprintf(buf, size, "%.6g", v);
	return buf;
}

/* ---- scratch memory --------------------------------------------------------- */

static int scratch_need(struct fl_sample **v, size_t *cap, const struct rs_alloc *alloc, size_t n)
{
	struct fl_sample *nv;
	size_t want = *cap ? *cap : 64;

	if (n <= *cap)
		return 0;
	while (want < n)
		want *= 2;
	nv = rs__calloc(alloc, want, sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	rs__free(alloc, *v);
	*v = nv;
	*cap = want;
	return 0;
}

static int cmp_sample(const void *pa, const void *pb)
{
	const struct fl_sample *a = pa, *b = pb;

	if (a->value != b->value)
		return a->value < b->value ? -1 : 1;
	return a->t_ns < b->t_ns ? -1 : a->t_ns > b->t_ns;
}

/* ---- one window's figure ------------------------------------------------------ */

/* The figure of a window: evaluable, or the reason it is not. */
struct wres {
	bool evaluable;
	double value;
	uint64_t at_ns;
	size_t n, failed;     /* ok and failed samples */
	double num, den;      /* ratio: the two increases */
	uint64_t last_bad_ns; /* none: the last sample violating the predicate, else FL_T_NONE */
	char why[160];	      /* when not evaluable */
};

static const char *agg_name(enum fl_agg agg)
{
	static const char *const names[] = { "every sample", "max",  "min",   "mean", "p50",
					     "p99",	     "rate", "delta", "last" };

	return (size_t)agg < sizeof(names) / sizeof(names[0]) ? names[agg] : "?";
}

/* The increase of the ok samples of v[0..n) (see series.h: counters are
 * summed across resets). */
static double increase(const struct fl_sample *v, size_t n, bool counter)
{
	double inc = 0, first = 0, prev = 0;
	bool have = false;

	for (size_t i = 0; i < n; i++) {
		if (!v[i].ok)
			continue;
		if (!have) {
			first = prev = v[i].value;
			have = true;
			continue;
		}
		inc += v[i].value >= prev ? v[i].value - prev : v[i].value;
		prev = v[i].value;
	}
	return counter ? inc : prev - first;
}

/* The aggregate of the samples v[0..n) into w (why left for the caller to
 * fill when not evaluable: w->n says how many ok samples there were). */
static int aggregate(const struct fl_sample *v, size_t n, bool counter, enum fl_agg agg,
		     const struct fl_pred *p, struct fl_sample **scr, size_t *scr_cap,
		     const struct rs_alloc *alloc, struct wres *w)
{
	const struct fl_sample *first = NULL, *last = NULL, *pick = NULL;
	double sum = 0;
	size_t need = agg == FL_AGG_RATE || agg == FL_AGG_DELTA ? 2 : 1, k = 0;
	int rc;

	w->n = w->failed = 0;
	w->evaluable = false;
	w->value = NAN;
	w->at_ns = FL_T_NONE;
	w->last_bad_ns = FL_T_NONE;
	for (size_t i = 0; i < n; i++) {
		if (!v[i].ok) {
			w->failed++;
			continue;
		}
		w->n++;
		if (!first)
			first = &v[i];
		last = &v[i];
		sum += v[i].value;
		switch (agg) {
		case FL_AGG_NONE:
			if (!pick || worse(p->op, p->value, v[i].value, pick->value))
				pick = &v[i];
			if (!fl_pred_holds(p, v[i].value))
				w->last_bad_ns = v[i].t_ns;
			break;
		case FL_AGG_MAX:
			if (!pick || v[i].value > pick->value)
				pick = &v[i];
			break;
		case FL_AGG_MIN:
			if (!pick || v[i].value < pick->value)
				pick = &v[i];
			break;
		default:
			break;
		}
	}
	if (w->n < need)
		return 0;
	switch (agg) {
	case FL_AGG_NONE:
	case FL_AGG_MAX:
	case FL_AGG_MIN:
		w->value = pick->value;
		w->at_ns = pick->t_ns;
		break;
	case FL_AGG_MEAN:
		w->value = sum / (double)w->n;
		w->at_ns = last->t_ns;
		break;
	case FL_AGG_LAST:
		w->value = last->value;
		w->at_ns = last->t_ns;
		break;
	case FL_AGG_P50:
	case FL_AGG_P99:
		rc = scratch_need(scr, scr_cap, alloc, w->n);
		if (rc)
			return rc;
		for (size_t i = 0; i < n; i++)
			if (v[i].ok)
				(*scr)[k++] = v[i];
		qsort(*scr, k, sizeof(**scr), cmp_sample);
		{
			size_t q = agg == FL_AGG_P50 ? 50 : 99, rank = (k * q + 99) / 100;

			pick = &(*scr)[rank ? rank - 1 : 0];
		}
		w->value = pick->value;
		w->at_ns = pick->t_ns;
		break;
	case FL_AGG_DELTA:
		w->value = increase(v, n, counter);
		w->at_ns = last->t_ns;
		break;
	case FL_AGG_RATE:
		if (last->t_ns == first->t_ns)
			return 0;
		w->value = increase(v, n, counter) / secs(last->t_ns - first->t_ns);
		w->at_ns = last->t_ns;
		break;
	}
	w->evaluable = true;
	return 0;
}

/* ---- the evaluation context ---------------------------------------------------- */

struct ev {
	const struct fl_experiment *x;
	const struct fl_runlog *r;
	const struct rs_alloc *alloc;
	struct fl_sample *scr;
	size_t scr_cap;
	uint64_t *exp_ev; /* x->nexpects: expectation events, FL_T_NONE until known */
};

static const char *probe_name(const struct ev *E, size_t probe)
{
	return probe < E->x->nprobes && E->x->probes[probe].name ? E->x->probes[probe].name : "?";
}

static uint64_t event_time(const struct ev *E, const struct fl_event *e)
{
	const struct fl_runlog *r = E->r;
	const struct fl_action_times *a;

	switch (e->kind) {
	case FL_EV_START:
		return r->start_ns;
	case FL_EV_STEADY:
		return r->steady_ns;
	case FL_EV_END:
		return r->end_ns;
	case FL_EV_ACTION_START:
		return e->index < r->nactions ? r->actions[e->index].applied_ns : FL_T_NONE;
	case FL_EV_ACTION_END:
		if (e->index >= r->nactions)
			return FL_T_NONE;
		a = &r->actions[e->index];
		if (a->reverted_ns != FL_T_NONE)
			return a->reverted_ns;
		if (e->index < E->x->nactions &&
		    E->x->actions[e->index].end_ns == E->x->actions[e->index].start_ns)
			return a->applied_ns;
		return FL_T_NONE;
	case FL_EV_EXPECT:
		return E->exp_ev && e->index < E->x->nexpects ? E->exp_ev[e->index] : FL_T_NONE;
	}
	return FL_T_NONE;
}

static char *event_name(const struct ev *E, const struct fl_event *e, char *buf, size_t size)
{
	return fl_event_format(E->x, e, buf, size);
}

/* The unit of a value read from probe (see eval.h). */
static const char *value_unit(const struct ev *E, const struct fl_valref *v, enum fl_agg agg)
{
	const struct fl_probe *p;
	const char *fam, *m;

	if (v->ratio)
		return "ratio";
	if (agg == FL_AGG_RATE)
		return "/s";
	if (v->probe >= E->x->nprobes)
		return "";
	p = &E->x->probes[v->probe];
	fam = p->family ? p->family->name : "";
	if (strcmp(fam, "client") == 0) {
		m = fl_params_str(&p->params, "metric", "");
		if (strncmp(m, "latency_", 8) == 0)
			return "s";
		if (strcmp(m, "error_rate") == 0 || strcmp(m, "shed_rate") == 0 ||
		    strcmp(m, "amplification") == 0)
			return "ratio";
		if (strcmp(m, "throughput") == 0 || strcmp(m, "goodput") == 0)
			return "/s";
	} else if (strcmp(fam, "http") == 0) {
		if (strcmp(fl_params_str(&p->params, "value", ""), "latency") == 0)
			return "s";
	} else if (strcmp(fam, "prometheus") == 0) {
		if (strcmp(fl_params_str(&p->params, "mode", ""), "rate") == 0)
			return "/s";
	}
	return "";
}

static void not_enough(const struct ev *E, struct wres *w, const char *what, enum fl_agg agg,
		       uint64_t from, uint64_t until)
{
	size_t need = agg == FL_AGG_RATE || agg == FL_AGG_DELTA ? 2 : 1;
	char needs[48] = "", failed[48] = "";

	if (w->n >= need && agg == FL_AGG_RATE)
		bprintf(needs, sizeof(needs), " spanning 0 s (rate needs time)");
	else if (need > 1)
		bprintf(needs, sizeof(needs), " (%s needs %zu)", agg_name(agg), need);
	if (w->failed)
		bprintf(failed, sizeof(failed), ", %zu failed", w->failed);
	bprintf(w->why, sizeof(w->why), "%s%s%zu samples in window [%.6g s, %.6g s]%s%s", what,
		*what ? ": " : "", w->n, offset(E->r->start_ns, from),
		offset(E->r->start_ns, until), needs, failed);
}

/* The figure of value v with aggregate agg over [from, until]. */
static int window_value(struct ev *E, const struct fl_valref *v, enum fl_agg agg,
			const struct fl_pred *p, uint64_t from, uint64_t until, struct wres *w)
{
	const struct fl_series *s;
	size_t lo, hi;
	int rc;

	memset(w, 0, sizeof(*w));
	w->value = NAN;
	w->at_ns = FL_T_NONE;
	w->last_bad_ns = FL_T_NONE;
	if (v->probe >= E->r->nseries || (v->ratio && v->probe2 >= E->r->nseries)) {
		bprintf(w->why, sizeof(w->why), "no probe to read");
		return 0;
	}
	s = &E->r->series[v->probe];
	fl_series_window(s, from, until, &lo, &hi);
	if (!v->ratio) {
		rc = aggregate(s->v + lo, hi - lo, s->counter, agg, p, &E->scr, &E->scr_cap,
			       E->alloc, w);
		if (rc == 0 && !w->evaluable)
			not_enough(E, w, "", agg, from, until);
		return rc;
	}
	{
		const struct fl_series *d = &E->r->series[v->probe2];
		struct wres num, den;
		size_t dlo, dhi;

		fl_series_window(d, from, until, &dlo, &dhi);
		rc = aggregate(s->v + lo, hi - lo, s->counter, FL_AGG_DELTA, p, &E->scr,
			       &E->scr_cap, E->alloc, &num);
		if (rc == 0)
			rc = aggregate(d->v + dlo, dhi - dlo, d->counter, FL_AGG_DELTA, p, &E->scr,
				       &E->scr_cap, E->alloc, &den);
		if (rc)
			return rc;
		w->n = num.n + den.n;
		w->failed = num.failed + den.failed;
		if (!num.evaluable) {
			not_enough(E, &num, probe_name(E, v->probe), FL_AGG_DELTA, from, until);
			bprintf(w->why, sizeof(w->why), "ratio numerator %s", num.why);
			return 0;
		}
		if (!den.evaluable) {
			not_enough(E, &den, probe_name(E, v->probe2), FL_AGG_DELTA, from, until);
			bprintf(w->why, sizeof(w->why), "ratio denominator %s", den.why);
			return 0;
		}
		w->num = num.value;
		w->den = den.value;
		if (!(den.value > 0)) {
			bprintf(w->why, sizeof(w->why),
				"ratio denominator %s did not increase in window [%.6g s, %.6g s] "
				"(delta %.6g)",
				probe_name(E, v->probe2), offset(E->r->start_ns, from),
				offset(E->r->start_ns, until), den.value);
			return 0;
		}
		w->value = num.value / den.value;
		w->at_ns = num.at_ns;
		w->evaluable = true;
	}
	return 0;
}

/* "max of 50 samples 0.041 s at +12.3 s" / "ratio a/b 1100/1000 = 1.1". */
static void describe(const struct ev *E, const struct fl_valref *v, enum fl_agg agg,
		     const struct wres *w, const char *unit, char *buf, size_t size)
{
	char val[48];

	fmt_val(val, sizeof(val), w->value, unit);
	if (v->ratio)
		bprintf(buf, size, "ratio %s/%s %.6g/%.6g = %.6g", probe_name(E, v->probe),
			probe_name(E, v->probe2), w->num, w->den, w->value);
	else if (agg == FL_AGG_NONE)
		bprintf(buf, size, "worst of %zu samples %s at +%.6g s", w->n, val,
			offset(E->r->start_ns, w->at_ns));
	else if (agg == FL_AGG_RATE || agg == FL_AGG_DELTA)
		bprintf(buf, size, "%s over %zu samples %s", agg_name(agg), w->n, val);
	else
		bprintf(buf, size, "%s of %zu samples %s", agg_name(agg), w->n, val);
}

/* ---- verdicts ----------------------------------------------------------------- */

static void verdict_init(struct fl_verdict *out, size_t index, const char *kind, const char *unit)
{
	memset(out, 0, sizeof(*out));
	out->expect = index;
	out->kind = kind;
	out->unit = unit;
	out->measured = NAN;
	out->bound = NAN;
	out->margin = NAN;
	out->at_ns = FL_T_NONE;
}

static void not_evaluable(struct fl_verdict *out, const char *name, const char *why)
{
	out->pass = false;
	out->evaluable = false;
	out->measured = NAN;
	out->margin = NAN;
	bprintf(out->detail, sizeof(out->detail), "%s: not evaluable: %s", name, why);
}

static void never_happened(const struct ev *E, struct fl_verdict *out, const char *name,
			   const struct fl_event *e)
{
	char ename[128], why[192];

	bprintf(why, sizeof(why), "event '%s' never happened",
		event_name(E, e, ename, sizeof(ename)));
	not_evaluable(out, name, why);
}

/* A window figure against its predicate: holds-like verdicts and checks. */
static void judge_window(const struct ev *E, const char *name, const struct fl_valref *v,
			 enum fl_agg agg, const struct fl_pred *p, const struct wres *w,
			 struct fl_verdict *out)
{
	char what[128], bnd[48], mg[48], failed[48] = "";

	out->samples = w->n;
	out->failed = w->failed;
	out->bound = p->value;
	if (!w->evaluable) {
		not_evaluable(out, name, w->why);
		return;
	}
	out->evaluable = true;
	out->measured = w->value;
	out->at_ns = w->at_ns;
	out->pass = fl_pred_holds(p, w->value);
	out->margin = margin_of(p->op, w->value, p->value);
	describe(E, v, agg, w, out->unit, what, sizeof(what));
	fmt_val(bnd, sizeof(bnd), p->value, out->unit);
	fmt_val(mg, sizeof(mg), fabs(out->margin), out->unit);
	if (w->failed)
		bprintf(failed, sizeof(failed), "; %zu failed samples", w->failed);
	if (out->pass)
		bprintf(out->detail, sizeof(out->detail), "%s: %s (%s %s, margin %s%s)", name, what,
			fl_cmp_symbol(p->op), bnd, mg, failed);
	else
		bprintf(out->detail, sizeof(out->detail), "%s: %s, not %s %s (outside by %s%s)",
			name, what, fl_cmp_symbol(p->op), bnd, mg, failed);
}

/* The window of a holds/never expectation; false (and out filled) when an
 * event it needs did not happen. */
static bool resolve_window(const struct ev *E, const struct fl_expect *X, struct fl_verdict *out,
			   uint64_t *from, uint64_t *until)
{
	const struct fl_window *w = &X->window;
	static const struct fl_event end = { FL_EV_END, 0, 0 };

	*from = event_time(E, &w->from);
	if (*from == FL_T_NONE) {
		never_happened(E, out, X->name, &w->from);
		return false;
	}
	if (w->until_set) {
		*until = event_time(E, &w->until);
		if (*until == FL_T_NONE) {
			never_happened(E, out, X->name, &w->until);
			return false;
		}
	} else if (w->for_ns) {
		*until = *from + w->for_ns;
	} else {
		*until = E->r->end_ns;
		if (*until == FL_T_NONE) {
			never_happened(E, out, X->name, &end);
			return false;
		}
	}
	return true;
}

static int eval_holds(struct ev *E, const struct fl_expect *X, struct fl_verdict *out)
{
	uint64_t from, until;
	struct wres w;
	int rc;

	out->unit = value_unit(E, &X->value, X->agg);
	out->bound = X->pred.value;
	if (!resolve_window(E, X, out, &from, &until))
		return 0;
	rc = window_value(E, &X->value, X->value.ratio ? FL_AGG_DELTA : X->agg, &X->pred, from,
			  until, &w);
	if (rc)
		return rc;
	judge_window(E, X->name, &X->value, X->value.ratio ? FL_AGG_DELTA : X->agg, &X->pred, &w,
		     out);
	return 0;
}

static int eval_never(struct ev *E, const struct fl_expect *X, struct fl_verdict *out)
{
	const struct fl_series *s;
	struct fl_pred neg = { negate(X->pred.op), X->pred.value };
	const struct fl_sample *hit = NULL, *close = NULL;
	uint64_t from, until;
	size_t lo, hi;
	char val[48], bnd[48], mg[48], failed[48] = "";

	out->unit = value_unit(E, &X->value, FL_AGG_NONE);
	out->bound = X->pred.value;
	if (!resolve_window(E, X, out, &from, &until))
		return 0;
	if (X->value.ratio) {
		/* Not written by the validator; judged as "the ratio never satisfies". */
		struct wres w;
		int rc = window_value(E, &X->value, FL_AGG_DELTA, &neg, from, until, &w);

		if (rc)
			return rc;
		judge_window(E, X->name, &X->value, FL_AGG_DELTA, &neg, &w, out);
		out->bound = X->pred.value;
		return 0;
	}
	if (X->value.probe >= E->r->nseries) {
		not_evaluable(out, X->name, "no probe to read");
		return 0;
	}
	s = &E->r->series[X->value.probe];
	fl_series_window(s, from, until, &lo, &hi);
	for (size_t i = lo; i < hi; i++) {
		const struct fl_sample *p = &s->v[i];

		if (!p->ok) {
			out->failed++;
			continue;
		}
		out->samples++;
		if (!hit && fl_pred_holds(&X->pred, p->value))
			hit = p;
		if (!close || worse(neg.op, neg.value, p->value, close->value))
			close = p;
	}
	if (!out->samples) {
		struct wres w = { .n = 0, .failed = out->failed };

		not_enough(E, &w, "", FL_AGG_NONE, from, until);
		not_evaluable(out, X->name, w.why);
		return 0;
	}
	if (out->failed)
		bprintf(failed, sizeof(failed), "; %zu failed samples", out->failed);
	out->evaluable = true;
	fmt_val(bnd, sizeof(bnd), X->pred.value, out->unit);
	if (hit) {
		out->pass = false;
		out->measured = hit->value;
		out->at_ns = hit->t_ns;
		out->margin = margin_of(neg.op, hit->value, neg.value);
		bprintf(out->detail, sizeof(out->detail),
			"%s: was %s at +%.6g s (%s %s), in window [%.6g s, %.6g s] (%zu samples%s)",
			X->name, fmt_val(val, sizeof(val), hit->value, out->unit),
			offset(E->r->start_ns, hit->t_ns), fl_cmp_symbol(X->pred.op), bnd,
			offset(E->r->start_ns, from), offset(E->r->start_ns, until), out->samples,
			failed);
		return 0;
	}
	out->pass = true;
	out->measured = close->value;
	out->at_ns = close->t_ns;
	out->margin = margin_of(neg.op, close->value, neg.value);
	bprintf(out->detail, sizeof(out->detail),
		"%s: never %s %s in %zu samples; closest %s at +%.6g s (margin %s%s)", X->name,
		fl_cmp_symbol(X->pred.op), bnd, out->samples,
		fmt_val(val, sizeof(val), close->value, out->unit),
		offset(E->r->start_ns, close->t_ns),
		fmt_val(mg, sizeof(mg), fabs(out->margin), out->unit), failed);
	return 0;
}

static int eval_becomes(struct ev *E, size_t i, const struct fl_expect *X, struct fl_verdict *out)
{
	const struct fl_series *s;
	const struct fl_sample *hit = NULL, *lastok = NULL;
	uint64_t ev = event_time(E, &X->after), lim;
	size_t from, inwin_ok = 0, inwin_failed = 0;
	char ename[128], bnd[48], val[48], unit_v[48];
	const char *vunit = value_unit(E, &X->value, FL_AGG_NONE);

	out->unit = "s";
	out->bound = secs(X->within_ns);
	if (ev == FL_T_NONE) {
		never_happened(E, out, X->name, &X->after);
		return 0;
	}
	if (X->value.probe >= E->r->nseries) {
		not_evaluable(out, X->name, "no probe to read");
		return 0;
	}
	s = &E->r->series[X->value.probe];
	lim = ev + X->within_ns;
	from = fl_series_lower(s, ev);
	for (size_t k = from; k < s->n; k++) {
		const struct fl_sample *p = &s->v[k];

		if (p->t_ns <= lim) {
			if (p->ok)
				inwin_ok++;
			else
				inwin_failed++;
		}
		if (!p->ok)
			continue;
		if (p->t_ns <= lim)
			lastok = p;
		if (fl_pred_holds(&X->pred, p->value)) {
			hit = p;
			break;
		}
	}
	out->samples = inwin_ok;
	out->failed = inwin_failed;
	event_name(E, &X->after, ename, sizeof(ename));
	fmt_val(bnd, sizeof(bnd), X->pred.value, vunit);
	if (hit) {
		uint64_t d = hit->t_ns - ev;

		E->exp_ev[i] = hit->t_ns;
		out->evaluable = true;
		out->measured = secs(d);
		out->margin = secs(X->within_ns) - secs(d);
		out->at_ns = hit->t_ns;
		out->pass = d <= X->within_ns;
		fmt_val(val, sizeof(val), hit->value, vunit);
		if (out->pass)
			bprintf(out->detail, sizeof(out->detail),
				"%s: became %s (%s %s) %.6g s after %s (bound %.6g s, margin "
				"%.6g s)",
				X->name, val, fl_cmp_symbol(X->pred.op), bnd, out->measured, ename,
				out->bound, out->margin);
		else
			bprintf(out->detail, sizeof(out->detail),
				"%s: became %s (%s %s) only %.6g s after %s, later than the bound "
				"%.6g s (over by %.6g s)",
				X->name, val, fl_cmp_symbol(X->pred.op), bnd, out->measured, ename,
				out->bound, -out->margin);
		return 0;
	}
	if (!inwin_ok) {
		char why[192];

		bprintf(why, sizeof(why),
			"no successful sample of %s in [%.6g s, %.6g s] (%zu failed)",
			probe_name(E, X->value.probe), offset(E->r->start_ns, ev),
			offset(E->r->start_ns, lim), inwin_failed);
		not_evaluable(out, X->name, why);
		return 0;
	}
	out->evaluable = true;
	out->pass = false;
	out->at_ns = lastok->t_ns;
	bprintf(out->detail, sizeof(out->detail),
		"%s: did not become %s %s within %.6g s after %s (last value %s at +%.6g s; %zu "
		"samples, %zu failed)",
		X->name, fl_cmp_symbol(X->pred.op), bnd, out->bound, ename,
		fmt_val(unit_v, sizeof(unit_v), lastok->value, vunit),
		offset(E->r->start_ns, lastok->t_ns), inwin_ok, inwin_failed);
	return 0;
}

/* The first ok sample time > t among the series of the steady checks, or
 * FL_T_NONE. */
static uint64_t next_sample(const struct ev *E, uint64_t t)
{
	uint64_t best = FL_T_NONE;

	for (size_t c = 0; c < E->x->nsteady; c++) {
		const struct fl_valref *v = &E->x->steady[c].value;
		size_t probes[2] = { v->probe, v->ratio ? v->probe2 : SIZE_MAX };

		for (size_t j = 0; j < 2; j++) {
			const struct fl_series *s;

			if (probes[j] >= E->r->nseries)
				continue;
			s = &E->r->series[probes[j]];
			for (size_t k = fl_series_upper(s, t); k < s->n; k++) {
				if (!s->v[k].ok)
					continue;
				if (s->v[k].t_ns < best)
					best = s->v[k].t_ns;
				break;
			}
		}
	}
	return best;
}

static int eval_recovers(struct ev *E, size_t i, const struct fl_expect *X, struct fl_verdict *out)
{
	uint64_t ev = event_time(E, &X->after), end = E->r->end_ns, S = X->settle_ns;
	uint64_t T, found = FL_T_NONE, lim;
	size_t fail_check = SIZE_MAX, samples = 0;
	struct wres fail_w = { .evaluable = false };
	bool any_evaluable = false;
	char ename[128], why[FL_VERDICT_DETAIL];
	static const struct fl_event end_ev = { FL_EV_END, 0, 0 };

	out->unit = "s";
	out->bound = secs(X->within_ns);
	if (ev == FL_T_NONE) {
		never_happened(E, out, X->name, &X->after);
		return 0;
	}
	if (end == FL_T_NONE) {
		never_happened(E, out, X->name, &end_ev);
		return 0;
	}
	if (!E->x->nsteady) {
		not_evaluable(out, X->name, "there are no steady-state checks to recover to");
		return 0;
	}
	event_name(E, &X->after, ename, sizeof(ename));
	if (end < ev || end - ev < S) {
		bprintf(why, sizeof(why),
			"the run ended %.6g s after %s, before a settle window of %.6g s fits",
			end >= ev ? secs(end - ev) : -secs(ev - end), ename, secs(S));
		not_evaluable(out, X->name, why);
		return 0;
	}
	lim = ev + X->within_ns;
	for (T = ev; T != FL_T_NONE && T <= end - S;) {
		uint64_t skip = T;
		bool all = true;
		size_t n = 0;

		for (size_t c = 0; c < E->x->nsteady; c++) {
			const struct fl_check *C = &E->x->steady[c];
			struct wres w;
			int rc = window_value(E, &C->value, C->agg, &C->pred, T, T + S, &w);

			if (rc)
				return rc;
			n += w.n;
			if (w.evaluable && fl_pred_holds(&C->pred, w.value))
				continue;
			all = false;
			if (T <= lim || fail_check == SIZE_MAX) {
				fail_check = c;
				fail_w = w;
			}
			/* Every window holding a violating sample fails too. */
			if (w.evaluable && C->agg == FL_AGG_NONE && !C->value.ratio &&
			    w.last_bad_ns != FL_T_NONE && w.last_bad_ns > skip)
				skip = w.last_bad_ns;
			break;
		}
		if (all) {
			found = T;
			samples = n;
			any_evaluable = true;
			break;
		}
		if (fail_check != SIZE_MAX && fail_w.evaluable)
			any_evaluable = true;
		T = next_sample(E, skip);
	}
	if (found != FL_T_NONE) {
		uint64_t d = found - ev;

		E->exp_ev[i] = found;
		out->evaluable = true;
		out->samples = samples;
		out->measured = secs(d);
		out->margin = secs(X->within_ns) - secs(d);
		out->at_ns = found;
		out->pass = d <= X->within_ns;
		if (out->pass)
			bprintf(out->detail, sizeof(out->detail),
				"%s: steady state held again %.6g s after %s, for the settle "
				"window of %.6g s (bound %.6g s, margin %.6g s)",
				X->name, out->measured, ename, secs(S), out->bound, out->margin);
		else
			bprintf(out->detail, sizeof(out->detail),
				"%s: steady state held again only %.6g s after %s, later than the "
				"bound %.6g s (over by %.6g s)",
				X->name, out->measured, ename, out->bound, -out->margin);
		return 0;
	}
	{
		const struct fl_check *C = &E->x->steady[fail_check == SIZE_MAX ? 0 : fail_check];
		char what[128];

		if (!any_evaluable) {
			bprintf(why, sizeof(why), "check '%s': %s", C->name ? C->name : "?",
				fail_w.why);
			not_evaluable(out, X->name, why);
			return 0;
		}
		out->evaluable = true;
		out->pass = false;
		out->samples = fail_w.n;
		out->failed = fail_w.failed;
		if (fail_w.evaluable)
			describe(E, &C->value, C->agg, &fail_w,
				 value_unit(E, &C->value, C->value.ratio ? FL_AGG_DELTA : C->agg),
				 what, sizeof(what));
		else
			bprintf(what, sizeof(what), "%s", fail_w.why);
		bprintf(out->detail, sizeof(out->detail),
			"%s: did not recover within %.6g s after %s: '%s' %s, not %s %.6g", X->name,
			out->bound, ename, C->name ? C->name : "?", what, fl_cmp_symbol(C->pred.op),
			C->pred.value);
	}
	return 0;
}

static int eval_order(struct ev *E, const struct fl_expect *X, struct fl_verdict *out)
{
	uint64_t a = event_time(E, &X->first), b = event_time(E, &X->second);
	char an[128], bn[128];

	out->unit = "s";
	out->bound = 0;
	if (a == FL_T_NONE) {
		never_happened(E, out, X->name, &X->first);
		return 0;
	}
	if (b == FL_T_NONE) {
		never_happened(E, out, X->name, &X->second);
		return 0;
	}
	event_name(E, &X->first, an, sizeof(an));
	event_name(E, &X->second, bn, sizeof(bn));
	out->evaluable = true;
	out->measured = b >= a ? secs(b - a) : -secs(a - b);
	out->margin = out->measured;
	out->at_ns = b;
	out->pass = a < b;
	if (out->pass)
		bprintf(out->detail, sizeof(out->detail),
			"%s: %s at +%.6g s came %.6g s before %s at +%.6g s", X->name, an,
			offset(E->r->start_ns, a), out->measured, bn, offset(E->r->start_ns, b));
	else
		bprintf(out->detail, sizeof(out->detail),
			"%s: %s at +%.6g s did not come before %s at +%.6g s", X->name, an,
			offset(E->r->start_ns, a), bn, offset(E->r->start_ns, b));
	return 0;
}

static int eval_one(struct ev *E, size_t i, struct fl_verdict *out)
{
	const struct fl_expect *X = &E->x->expects[i];
	const char *name = X->name ? X->name : "?";

	switch (X->kind) {
	case FL_EXP_BECOMES:
		verdict_init(out, i, "becomes", "s");
		return eval_becomes(E, i, X, out);
	case FL_EXP_HOLDS:
		verdict_init(out, i, "holds", "");
		return eval_holds(E, X, out);
	case FL_EXP_NEVER:
		verdict_init(out, i, "never", "");
		return eval_never(E, X, out);
	case FL_EXP_RECOVERS:
		verdict_init(out, i, "recovers", "s");
		return eval_recovers(E, i, X, out);
	case FL_EXP_ORDER:
		verdict_init(out, i, "order", "s");
		return eval_order(E, X, out);
	}
	verdict_init(out, i, "?", "");
	not_evaluable(out, name, "unknown expectation kind");
	return 0;
}

/* Whether expectation i waits for the event of expectation j. */
static bool waits_for(const struct fl_expect *X, size_t j)
{
	const struct fl_event *evs[] = { &X->after, &X->window.from, &X->window.until, &X->first,
					 &X->second };

	for (size_t k = 0; k < sizeof(evs) / sizeof(evs[0]); k++)
		if (evs[k]->kind == FL_EV_EXPECT && evs[k]->index == j)
			return true;
	return false;
}

static int check_runlog(const struct fl_experiment *x, const struct fl_runlog *r,
			struct rs_err *err)
{
	if (r->nseries != x->nprobes)
		return rs__einval(err, "eval: the run recorded %zu series for %zu probes",
				  r->nseries, x->nprobes);
	if (r->nactions != x->nactions)
		return rs__einval(err, "eval: the run recorded %zu actions for %zu in the method",
				  r->nactions, x->nactions);
	return 0;
}

int fl_eval_expects(const struct fl_experiment *x, const struct fl_runlog *r,
		    struct fl_verdict *out, uint64_t *events_ns, const struct rs_alloc *alloc,
		    struct rs_err *err)
{
	struct ev E = { x, r, alloc, NULL, 0, NULL };
	bool *done = NULL;
	size_t n = x->nexpects, left = n;
	int rc;

	rc = check_runlog(x, r, err);
	if (rc)
		return rc;
	if (!n)
		return 0;
	E.exp_ev = rs__calloc(alloc, n, sizeof(*E.exp_ev));
	done = rs__calloc(alloc, n, sizeof(*done));
	if (!E.exp_ev || !done) {
		rc = rs__enomem(err, "eval");
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		E.exp_ev[i] = FL_T_NONE;
	/* Dependency order: evaluate, in file order, whatever has its events. */
	while (left) {
		size_t before = left;

		for (size_t i = 0; i < n; i++) {
			bool ready = true;

			if (done[i])
				continue;
			for (size_t j = 0; j < n && ready; j++)
				if (!done[j] && waits_for(&x->expects[i], j))
					ready = false;
			if (!ready)
				continue;
			rc = eval_one(&E, i, &out[i]);
			if (rc) {
				rs__enomem(err, "eval");
				goto out;
			}
			done[i] = true;
			left--;
		}
		if (left == before)
			break;
	}
	for (size_t i = 0; i < n; i++) {
		if (done[i])
			continue;
		verdict_init(&out[i], i,
			     x->expects[i].kind == FL_EXP_BECOMES    ? "becomes"
			     : x->expects[i].kind == FL_EXP_RECOVERS ? "recovers"
			     : x->expects[i].kind == FL_EXP_ORDER    ? "order"
			     : x->expects[i].kind == FL_EXP_NEVER    ? "never"
								     : "holds",
			     "");
		not_evaluable(&out[i], x->expects[i].name ? x->expects[i].name : "?",
			      "it waits for its own event through a cycle of expectations");
	}
	if (events_ns)
		memcpy(events_ns, E.exp_ev, n * sizeof(*events_ns));
	rc = 0;
out:
	rs__free(alloc, E.scr);
	rs__free(alloc, done);
	rs__free(alloc, E.exp_ev);
	return rc;
}

int fl_eval_steady(const struct fl_experiment *x, const struct fl_runlog *r, uint64_t from_ns,
		   uint64_t until_ns, struct fl_verdict *out, const struct rs_alloc *alloc,
		   struct rs_err *err)
{
	struct ev E = { x, r, alloc, NULL, 0, NULL };
	int rc;

	rc = check_runlog(x, r, err);
	if (rc)
		return rc;
	for (size_t c = 0; c < x->nsteady; c++) {
		const struct fl_check *C = &x->steady[c];
		enum fl_agg agg = C->value.ratio ? FL_AGG_DELTA : C->agg;
		const char *name = C->name ? C->name : "?";
		struct wres w;

		verdict_init(&out[c], c, "steady", value_unit(&E, &C->value, agg));
		out[c].bound = C->pred.value;
		if (from_ns == FL_T_NONE || until_ns == FL_T_NONE) {
			not_evaluable(&out[c], name, "the steady-state window did not happen");
			continue;
		}
		rc = window_value(&E, &C->value, agg, &C->pred, from_ns, until_ns, &w);
		if (rc) {
			rs__enomem(err, "eval");
			goto out;
		}
		judge_window(&E, name, &C->value, agg, &C->pred, &w, &out[c]);
	}
	rc = 0;
out:
	rs__free(alloc, E.scr);
	return rc;
}

/* ---- aborts -------------------------------------------------------------------- */

int fl_eval_abort_init(struct fl_eval_abort *a, const struct fl_experiment *x, size_t index,
		       const struct rs_alloc *alloc, struct rs_err *err)
{
	memset(a, 0, sizeof(*a));
	if (index >= x->naborts)
		return rs__einval(err, "eval: abort %zu does not exist (the experiment has %zu)",
				  index, x->naborts);
	a->x = x;
	a->check = &x->aborts[index];
	a->index = index;
	a->alloc = alloc;
	a->met_ns = FL_T_NONE;
	a->since_ns = FL_T_NONE;
	a->first_ns = FL_T_NONE;
	a->last_ns = 0;
	a->value = NAN;
	fl_series_init(&a->ring, alloc);
	return 0;
}

int fl_eval_abort_feed(struct fl_eval_abort *a, const struct fl_sample *s)
{
	const struct fl_check *C = a->check;
	uint64_t from;
	struct wres w;
	int rc;

	if (!C)
		return 0;
	if (s->t_ns < a->last_ns)
		return -EINVAL;
	a->last_ns = s->t_ns;
	if (a->met)
		return 1;
	if (C->agg == FL_AGG_NONE || C->value.ratio) {
		if (!s->ok || !isfinite(s->value))
			return 0;
		if (fl_pred_holds(&C->pred, s->value)) {
			a->since_ns = FL_T_NONE;
			return 0;
		}
		if (a->since_ns == FL_T_NONE)
			a->since_ns = s->t_ns;
		if (s->t_ns - a->since_ns < C->for_ns)
			return 0;
		a->met = true;
		a->met_ns = s->t_ns;
		a->value = s->value;
		return 1;
	}
	if (a->first_ns == FL_T_NONE)
		a->first_ns = s->t_ns;
	from = s->t_ns > C->for_ns ? s->t_ns - C->for_ns : 0;
	/* Drop what left the window, compacting now and then (amortised O(1)). */
	while (a->head < a->ring.n && a->ring.v[a->head].t_ns < from)
		a->head++;
	if (a->head >= 64 && a->head * 2 >= a->ring.n) {
		memmove(a->ring.v, a->ring.v + a->head, (a->ring.n - a->head) * sizeof(*a->ring.v));
		a->ring.n -= a->head;
		a->head = 0;
	}
	if (s->ok && isfinite(s->value)) {
		rc = fl_series_append(&a->ring, s->t_ns, s->value, true);
		if (rc)
			return rc == -EINVAL ? -EINVAL : -ENOMEM;
	}
	if (s->t_ns - a->first_ns < C->for_ns)
		return 0;
	rc = aggregate(a->ring.v + a->head, a->ring.n - a->head, false, C->agg, &C->pred,
		       &a->scratch, &a->scratch_cap, a->alloc, &w);
	if (rc)
		return rc;
	if (!w.evaluable || fl_pred_holds(&C->pred, w.value))
		return 0;
	a->met = true;
	a->met_ns = s->t_ns;
	a->since_ns = from;
	a->value = w.value;
	return 1;
}

void fl_eval_abort_verdict(const struct fl_eval_abort *a, uint64_t origin_ns,
			   struct fl_verdict *out)
{
	const struct fl_check *C = a->check;
	const char *name = C && C->name ? C->name : "?";
	struct ev E = { a->x, NULL, NULL, NULL, 0, NULL };
	char val[48];

	verdict_init(out, a->index, "abort", C && a->x ? value_unit(&E, &C->value, C->agg) : "");
	if (!C)
		return;
	out->bound = C->pred.value;
	out->evaluable = true;
	out->pass = !a->met;
	if (!a->met) {
		bprintf(out->detail, sizeof(out->detail), "%s: not met", name);
		return;
	}
	out->measured = a->value;
	out->margin = margin_of(C->pred.op, a->value, C->pred.value);
	out->at_ns = a->met_ns;
	fmt_val(val, sizeof(val), a->value, out->unit);
	if (C->agg == FL_AGG_NONE)
		bprintf(out->detail, sizeof(out->detail),
			"%s: violated for %.6g s from +%.6g s, met at +%.6g s (value %s)", name,
			secs(a->met_ns - a->since_ns), offset(origin_ns, a->since_ns),
			offset(origin_ns, a->met_ns), val);
	else
		bprintf(out->detail, sizeof(out->detail),
			"%s: %s over the last %.6g s was %s, met at +%.6g s", name,
			agg_name(C->agg), secs(C->for_ns), val, offset(origin_ns, a->met_ns));
}

void fl_eval_abort_release(struct fl_eval_abort *a)
{
	fl_series_release(&a->ring);
	rs__free(a->alloc, a->scratch);
	a->scratch = NULL;
	a->scratch_cap = 0;
	a->head = 0;
}
