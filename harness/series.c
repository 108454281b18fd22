/* Sample storage: see series.h. */
#include "harness/series.h"

#include <errno.h>
#include <math.h>
#include <string.h>

void fl_series_init(struct fl_series *s, const struct rs_alloc *alloc)
{
	memset(s, 0, sizeof(*s));
	s->alloc = alloc;
}

int fl_series_reserve(struct fl_series *s, size_t n)
{
	struct fl_sample *v;

	if (n <= s->cap)
		return 0;
	if (n > FL_SERIES_MAX_SAMPLES)
		return -E2BIG;
	v = rs__calloc(s->alloc, n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (s->n)
		memcpy(v, s->v, s->n * sizeof(*v));
	rs__free(s->alloc, s->v);
	s->v = v;
	s->cap = n;
	return 0;
}

int fl_series_append(struct fl_series *s, uint64_t t_ns, double value, bool ok)
{
	struct fl_sample *p;

	if (s->n && t_ns < s->v[s->n - 1].t_ns)
		return -EINVAL;
	if (s->n == s->cap) {
		size_t want = s->cap ? s->cap * 2 : 64;
		int rc;

		if (want > FL_SERIES_MAX_SAMPLES)
			want = FL_SERIES_MAX_SAMPLES;
		if (want <= s->n)
			return -E2BIG;
		rc = fl_series_reserve(s, want);
		if (rc)
			return rc;
	}
	if (!isfinite(value))
		ok = false;
	p = &s->v[s->n++];
	p->t_ns = t_ns;
	p->value = ok ? value : 0;
	p->ok = ok;
	return 0;
}

void fl_series_release(struct fl_series *s)
{
	rs__free(s->alloc, s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

size_t fl_series_lower(const struct fl_series *s, uint64_t t_ns)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->v[mid].t_ns < t_ns)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

size_t fl_series_upper(const struct fl_series *s, uint64_t t_ns)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->v[mid].t_ns <= t_ns)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void fl_series_window(const struct fl_series *s, uint64_t from_ns, uint64_t until_ns, size_t *lo,
		      size_t *hi)
{
	*lo = fl_series_lower(s, from_ns);
	*hi = until_ns < from_ns ? *lo : fl_series_upper(s, until_ns);
	if (*hi < *lo)
		*hi = *lo;
}

int fl_runlog_init(struct fl_runlog *r, size_t nseries, size_t nactions,
		   const struct rs_alloc *alloc)
{
	memset(r, 0, sizeof(*r));
	r->alloc = alloc;
	r->start_ns = r->warmup_end_ns = r->steady_ns = r->final_ns = r->end_ns = FL_T_NONE;
	if (nseries) {
		r->series = rs__calloc(alloc, nseries, sizeof(*r->series));
		if (!r->series)
			goto fail;
	}
	if (nactions) {
		r->actions = rs__calloc(alloc, nactions, sizeof(*r->actions));
		if (!r->actions)
			goto fail;
	}
	r->nseries = nseries;
	r->nactions = nactions;
	for (size_t i = 0; i < nseries; i++)
		fl_series_init(&r->series[i], alloc);
	for (size_t i = 0; i < nactions; i++)
		r->actions[i] = (struct fl_action_times){ FL_T_NONE, FL_T_NONE, FL_T_NONE };
	return 0;
fail:
	rs__free(alloc, r->series);
	r->series = NULL;
	return -ENOMEM;
}

void fl_runlog_release(struct fl_runlog *r)
{
	for (size_t i = 0; i < r->nseries; i++)
		fl_series_release(&r->series[i]);
	rs__free(r->alloc, r->series);
	rs__free(r->alloc, r->actions);
	r->series = NULL;
	r->actions = NULL;
	r->nseries = r->nactions = 0;
}
