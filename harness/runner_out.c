/* The runner's end: evaluate, journal the verdicts and the run's end, print
 * for people and as TAP, export the journal (runner_int.h). */
#include "harness/runner_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct points {
	struct fl_tap_point *v;
	size_t n, cap;
	struct run *r;
};

static const char *cmp_for(struct run *r, const char *kind, enum fl_cmp op)
{
	char *s;

	if (strcmp(kind, "becomes") == 0 || strcmp(kind, "recovers") == 0)
		return "<=";
	if (strcmp(kind, "order") == 0)
		return ">";
	if (strcmp(kind, "never") != 0)
		return fl_cmp_symbol(op);
	s = fl_arena_alloc(&r->arena, 16);
	if (!s)
		return NULL;
	snprintf(s, 16, "never %s", fl_cmp_symbol(op));
	return s;
}

static void add(struct points *p, const char *prefix, const char *name, const struct fl_verdict *v,
		const char *cmp)
{
	struct fl_tap_point *t;
	char *full;
	size_t n;

	if (p->n == p->cap)
		return;
	t = &p->v[p->n++];
	n = (prefix ? strlen(prefix) + 2 : 0) + strlen(name) + 1;
	full = fl_arena_alloc(&p->r->arena, n);
	if (full)
		snprintf(full, n, "%s%s%s", prefix ? prefix : "", prefix ? ": " : "", name);
	t->name = full ? full : name;
	t->pass = v->pass;
	t->evaluable = v->evaluable;
	t->kind = v->kind;
	t->cmp = cmp;
	t->measured = v->measured;
	t->bound = v->bound;
	t->margin = v->margin;
	t->unit = v->unit;
	t->at_s = v->at_ns == FL_T_NONE ? NAN : run_offset_s(p->r, v->at_ns);
	t->samples = v->samples;
	t->failed = v->failed;
	t->detail =
	    v->detail[0] ? fl_arena_strndup(&p->r->arena, v->detail, strlen(v->detail)) : NULL;
}

static void add_run_point(struct points *p, const char *name, const char *detail)
{
	struct fl_tap_point *t;

	if (p->n == p->cap)
		return;
	t = &p->v[p->n++];
	memset(t, 0, sizeof(*t));
	t->name = name;
	t->pass = false;
	t->evaluable = true;
	t->kind = "run";
	t->measured = t->bound = t->margin = t->at_s = NAN;
	t->unit = "";
	t->detail = fl_arena_strndup(&p->r->arena, detail, strlen(detail));
}

static const char *end_word(const struct run *r, int code)
{
	switch (r->stop) {
	case STOP_COMPLETED:
		return code == 0 ? "completed" : "expectations-failed";
	case STOP_BASELINE:
		return "baseline-failed";
	case STOP_ABORT:
		return "aborted";
	case STOP_SIGNAL:
		return "signal";
	case STOP_CAPABILITY:
		return "capability";
	case STOP_FAILURE:
	case STOP_NONE:
		break;
	}
	return "failed";
}

static void print_human(struct run *r, const struct points *p, int code, const char *summary)
{
	FILE *f = r->human;
	char d[200];
	size_t bad = 0;

	fl_status_clear(&r->status);
	if (p->n)
		fprintf(f, "%s (run %s):\n", r->x->title, r->run_id);
	for (size_t i = 0; i < p->n; i++) {
		const struct fl_tap_point *t = &p->v[i];

		bad += !t->pass;
		fprintf(f, "  %-5s %s: %s\n", t->pass ? "ok" : "FAIL", t->name,
			fl_tap_describe(t, d, sizeof(d)));
		if (!t->pass && t->detail && (isfinite(t->measured) || isfinite(t->bound)))
			fprintf(f, "        %s\n", t->detail);
	}
	if (code == FL_EXIT_PASS)
		fprintf(f, "PASS: %zu of %zu met\n", p->n, p->n);
	else if (r->stop == STOP_COMPLETED)
		fprintf(f, "FAIL: %zu of %zu not met\n", bad, p->n);
	else
		fprintf(f, "%s (exit %d): %s\n",
			code == FL_EXIT_ABORTED	     ? "ABORTED"
			: code == FL_EXIT_CAPABILITY ? "CANNOT RUN"
						     : "FAIL",
			code, summary);
	fflush(f);
}

int run_finish_output(struct run *r)
{
	const struct fl_experiment *x = r->x;
	struct points p = { .r = r };
	struct fl_verdict *fin = NULL, *exp = NULL, abv;
	struct rs_err err = { "" };
	char summary[800], bail[820];
	const char *bail_out = NULL;
	int code = r->code;

	p.cap = 2 * x->nsteady + x->nexpects + 4;
	p.v = calloc(p.cap, sizeof(*p.v));
	if (!p.v)
		p.cap = 0;
	snprintf(summary, sizeof(summary), "%s", r->reason);
	if (r->baseline_done)
		for (size_t i = 0; i < x->nsteady; i++)
			add(&p, "baseline", x->steady[i].name, &r->baseline[i],
			    cmp_for(r, "steady", x->steady[i].pred.op));
	if (r->stop == STOP_COMPLETED) {
		bool ok = true;

		if (x->nsteady) {
			fin = calloc(x->nsteady, sizeof(*fin));
			if (!fin || fl_eval_steady(x, &r->rl, r->rl.final_ns, r->rl.end_ns, fin,
						   NULL, &err) < 0) {
				ok = false;
				snprintf(summary, sizeof(summary), "cannot evaluate: %s",
					 err.msg[0] ? err.msg : "out of memory");
				add_run_point(&p, "final steady-state check", summary);
			} else {
				for (size_t i = 0; i < x->nsteady; i++)
					add(&p, "final", x->steady[i].name, &fin[i],
					    cmp_for(r, "steady", x->steady[i].pred.op));
			}
		}
		if (x->nexpects) {
			exp = calloc(x->nexpects, sizeof(*exp));
			if (!exp || fl_eval_expects(x, &r->rl, exp, NULL, NULL, &err) < 0) {
				ok = false;
				snprintf(summary, sizeof(summary), "cannot evaluate: %s",
					 err.msg[0] ? err.msg : "out of memory");
				add_run_point(&p, "expectations", summary);
			} else {
				for (size_t i = 0; i < x->nexpects; i++)
					add(&p, NULL, x->expects[i].name, &exp[i],
					    cmp_for(r, exp[i].kind, x->expects[i].pred.op));
			}
		}
		for (size_t i = 0; i < p.n; i++)
			ok &= p.v[i].pass;
		code = ok ? FL_EXIT_PASS : FL_EXIT_FAIL;
		if (r->revert_failed)
			code = FL_EXIT_FAIL;
	} else if (r->stop == STOP_ABORT) {
		const struct fl_eval_abort *a = &r->aborts[r->abort_index];
		double ms = (double)(r->all_reverted_ns - a->met_ns) / 1e6;
		size_t l;

		fl_eval_abort_verdict(a, r->start_ns, &abv);
		l = strlen(abv.detail);
		snprintf(abv.detail + l, sizeof(abv.detail) - l,
			 "; every fault reverted %.1fms after the condition was met", ms);
		add(&p, "abort", x->aborts[r->abort_index].name, &abv,
		    cmp_for(r, "abort", x->aborts[r->abort_index].pred.op));
		snprintf(summary, sizeof(summary),
			 "%s (value %g); every fault reverted %.1fms after the condition was met",
			 r->reason, a->value, ms);
		snprintf(bail, sizeof(bail), "aborted: %s", summary);
		bail_out = bail;
	} else if (r->stop == STOP_SIGNAL) {
		snprintf(summary, sizeof(summary), "%s; %s", r->reason,
			 r->revert_failed ? "some faults could not be reverted"
					  : "every fault reverted");
		snprintf(bail, sizeof(bail), "%s", summary);
		bail_out = bail;
	} else if (r->stop == STOP_FAILURE) {
		add_run_point(&p, "run", r->reason);
	}
	if (r->revert_failed) {
		char m[RS_ERR_MSG_MAX + 320];

		snprintf(m, sizeof(m),
			 "%zu fault%s could not be reverted (%s); run `faultline recover`",
			 r->revert_failed, r->revert_failed == 1 ? "" : "s", r->revert_msg);
		add_run_point(&p, "every fault reverted", m);
		if (code == FL_EXIT_PASS || code == FL_EXIT_ABORTED)
			code = FL_EXIT_FAIL;
	}

	/* The journal: verdicts, the run's end, then the export. */
	char jpath[FL_STATE_PATH_MAX + 64] = "";

	if (r->j) {
		char why[900];

		snprintf(jpath, sizeof(jpath), "%s", fl_journal_path(r->j));
		int jrc = 0;

		for (size_t i = 0; i < p.n; i++)
			jrc |= fl_journal_verdict(r->j, 0, p.v[i].name, p.v[i].pass,
						  p.v[i].measured, p.v[i].bound, p.v[i].detail);
		snprintf(why, sizeof(why), "%s%s%s", end_word(r, code),
			 r->stop == STOP_COMPLETED ? "" : ": ",
			 r->stop == STOP_COMPLETED ? "" : summary);
		jrc |= fl_journal_end(r->j, 0, code, why);
		if (jrc < 0 || r->journal_worker_failed)
			run_note(r, "warning: some journal records could not be written: %s",
				 fl_journal_error(r->j));
		if (fl_journal_close(r->j, &err) < 0)
			run_note(r, "warning: %s", err.msg);
		r->j = NULL;
	}
	if (r->o->journal_out && jpath[0]) {
		FILE *f = fopen(r->o->journal_out, "w");

		if (!f) {
			run_note(r, "cannot write the journal to '%s': %s", r->o->journal_out,
				 strerror(errno));
			if (code == FL_EXIT_PASS)
				code = FL_EXIT_FAIL;
		} else {
			int rc = fl_journal_export(jpath, f, &err);

			if (fclose(f) != 0 && rc == 0)
				rc = -EIO;
			if (rc < 0) {
				run_note(r, "cannot export the journal to '%s': %s",
					 r->o->journal_out, err.msg[0] ? err.msg : "write error");
				if (code == FL_EXIT_PASS)
					code = FL_EXIT_FAIL;
			}
		}
	}

	/* People, then TAP. */
	print_human(r, &p, code, summary);
	if (r->o->tap) {
		if (r->stop == STOP_CAPABILITY) {
			fprintf(r->out, "TAP version 13\n1..0 # SKIP cannot run here: ");
			for (const char *c = r->reason; *c; c++)
				fputc(*c == '\n' ? ' ' : *c, r->out);
			fputc('\n', r->out);
			fflush(r->out);
		} else if (fl_tap_write(r->out, p.v, p.n, bail_out) < 0) {
			run_note(r, "cannot write the TAP stream");
		}
	}
	free(fin);
	free(exp);
	free(p.v);
	return code;
}
