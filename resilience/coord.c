#include "resilience/coord.h"

#include <math.h>
#include <string.h>

static const char *show(const char *name)
{
	return name ? name : "";
}

int rs_coord_evaluate(const struct rs_coord_service *svcs, size_t n, double threshold,
		      size_t *which, size_t which_cap, struct rs_coord_view *view,
		      struct rs_err *err)
{
	struct rs_coord_view v;
	double err_sum = 0;
	size_t i;

	if (!view)
		return rs__einval(err, "coord: view must not be NULL");
	if (!(threshold >= 0 && threshold < 1))
		return rs__einval(err, "coord: threshold must be in [0, 1), got %g", threshold);
	if (n > 0 && !svcs)
		return rs__einval(err, "coord: svcs must not be NULL when n is %zu", n);
	if (which_cap > 0 && !which)
		return rs__einval(err, "coord: which must not be NULL when which_cap is %zu",
				  which_cap);
	for (i = 0; i < n; i++) {
		double e = svcs[i].error_rate, l = svcs[i].load;

		if (!isnan(e) && !(e >= 0 && e <= 1))
			return rs__einval(err,
					  "coord: services[%zu] ('%s') error_rate must be in "
					  "[0, 1] or NaN, got %g",
					  i, show(svcs[i].name), e);
		if (!isnan(l) && !(l >= 0 && l < INFINITY))
			return rs__einval(err,
					  "coord: services[%zu] ('%s') load must be >= 0 and "
					  "finite or NaN, got %g",
					  i, show(svcs[i].name), l);
	}

	memset(&v, 0, sizeof(v));
	v.services = n;
	for (i = 0; i < n; i++) {
		const struct rs_coord_service *s = &svcs[i];

		if (s->metastable) {
			if (v.listed < which_cap)
				which[v.listed++] = i;
			v.metastable++;
		}
		if (!isnan(s->error_rate)) {
			v.error_known++;
			err_sum += s->error_rate;
		}
		if (!isnan(s->load)) {
			v.load_known++;
			v.total_load += s->load;
			if (s->metastable)
				v.metastable_load += s->load;
		}
	}
	v.mean_error_rate = v.error_known ? err_sum / (double)v.error_known : NAN;
	/* The ratio of two exact integers rounds to the same double as the
	 * caller's literal when they are mathematically equal (3/10 vs 0.3),
	 * so "more than" stays strict where threshold * n might not. */
	v.metastable_fraction = n ? (double)v.metastable / (double)n : 0;
	v.system_metastable = n > 0 && v.metastable_fraction > threshold;
	*view = v;
	return 0;
}
