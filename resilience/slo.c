#include "resilience/slo.h"

#include <errno.h>
#include <math.h>

static int check(const struct rs_slo_service *svcs, size_t n, const void *out, struct rs_err *err)
{
	size_t i;

	if (!out)
		return rs__einval(err, "slo: out must not be NULL");
	if (n == 0)
		return rs__einval(err, "slo: n must be > 0, got 0");
	if (!svcs)
		return rs__einval(err, "slo: svcs must not be NULL");
	for (i = 0; i < n; i++) {
		double a = svcs[i].availability;

		if (!(a >= 0 && a <= 1))
			return rs__einval(err,
					  "slo: services[%zu] ('%s') availability must be in "
					  "[0, 1], got %g",
					  i, svcs[i].name ? svcs[i].name : "", a);
	}
	return 0;
}

int rs_slo_serial(const struct rs_slo_service *svcs, size_t n, struct rs_slo_result *out,
		  struct rs_err *err)
{
	double avail = 1;
	uint64_t lat = 0;
	size_t i;
	int rc = check(svcs, n, out, err);

	if (rc)
		return rc;
	for (i = 0; i < n; i++) {
		if (svcs[i].latency_ns > UINT64_MAX - lat) {
			rs__err_set(err, "slo: serial latency overflows at services[%zu] ('%s')", i,
				    svcs[i].name ? svcs[i].name : "");
			return -ERANGE;
		}
		lat += svcs[i].latency_ns;
		avail *= svcs[i].availability;
	}
	out->availability = avail;
	out->error_budget = 1 - avail;
	out->latency_ns = lat;
	return 0;
}

int rs_slo_parallel(const struct rs_slo_service *svcs, size_t n, enum rs_slo_need need,
		    struct rs_slo_result *out, struct rs_err *err)
{
	double prod = 1;
	uint64_t lat = 0;
	size_t i;
	int rc = check(svcs, n, out, err);

	if (rc)
		return rc;
	if (need != RS_SLO_ALL && need != RS_SLO_ANY)
		return rs__einval(err, "slo: need must be RS_SLO_ALL or RS_SLO_ANY, got %d",
				  (int)need);
	for (i = 0; i < n; i++) {
		/* ALL multiplies the chances of success, ANY those of failure. */
		prod *= need == RS_SLO_ALL ? svcs[i].availability : 1 - svcs[i].availability;
		if (svcs[i].latency_ns > lat)
			lat = svcs[i].latency_ns;
	}
	out->availability = need == RS_SLO_ALL ? prod : 1 - prod;
	out->error_budget = 1 - out->availability;
	out->latency_ns = lat;
	return 0;
}

int rs_slo_required_availability(double target, size_t n, double *out, struct rs_err *err)
{
	if (!out)
		return rs__einval(err, "slo: out must not be NULL");
	if (!(target >= 0 && target <= 1))
		return rs__einval(err, "slo: target must be in [0, 1], got %g", target);
	if (n == 0)
		return rs__einval(err, "slo: n must be > 0, got 0");
	*out = pow(target, 1.0 / (double)n);
	return 0;
}
