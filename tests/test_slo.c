/* End-to-end SLO composition with the seed's checkout chain: serial
 * availability is the product, latency the sum; parallel latency is the
 * max; per-service requirement is target^(1/N). */
#include "tests/tap.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>

#include "resilience/clock.h"
#include "resilience/slo.h"

#define MS RS_NS_PER_MS

int main(void)
{
	/* Seed 003, section 17.1.2: the checkout flow. */
	const struct rs_slo_service checkout[5] = {
		{ "API Gateway", 0.9999, 10 * MS },	 { "Auth Service", 0.9995, 20 * MS },
		{ "Cart Service", 0.999, 50 * MS },	 { "Payment Service", 0.9999, 200 * MS },
		{ "Inventory Service", 0.999, 30 * MS },
	};
	struct rs_slo_service five[5];
	struct rs_slo_result r;
	struct rs_err err;
	double per;
	int rc;

	plan(19);

	rc = rs_slo_serial(checkout, 5, &r, &err);
	is_int(rc, 0, "serial checkout chain computes");
	is_double(r.availability, 0.9999 * 0.9995 * 0.999 * 0.9999 * 0.999, 1e-15,
		  "serial availability is the product: 0.997303");
	is_double(r.availability, 0.9973, 0.00005, "which the seed prints as 99.73%%");
	is_int((long long)r.latency_ns, (long long)(310 * MS),
	       "serial p99 latency is the sum: 310 ms");
	is_double(r.error_budget, 1 - r.availability, 1e-15,
		  "error budget 1 - availability (0.0027)");

	for (int i = 0; i < 5; i++)
		five[i] = (struct rs_slo_service){ "svc", 0.999, (uint64_t)(i + 1) * 10 * MS };
	rc = rs_slo_serial(five, 5, &r, &err);
	ok(rc == 0 && fabs(r.availability - 0.99500999) < 1e-8,
	   "five services at 99.9%% in series: 0.999^5 = 0.995010");

	rc = rs_slo_parallel(checkout, 5, RS_SLO_ALL, &r, &err);
	ok(rc == 0 && r.latency_ns == 200 * MS, "parallel latency is the max: 200 ms");
	is_double(r.availability, 0.9999 * 0.9995 * 0.999 * 0.9999 * 0.999, 1e-15,
		  "parallel, all required: the product again");
	rc = rs_slo_parallel(five, 2, RS_SLO_ANY, &r, &err);
	ok(rc == 0 && fabs(r.availability - (1 - 0.001 * 0.001)) < 1e-15 && r.latency_ns == 20 * MS,
	   "two replicas at 99.9%%, any suffices: 1 - 0.001^2 = 0.999999, latency max 20 ms");

	rc = rs_slo_required_availability(0.999, 5, &per, &err);
	ok(rc == 0 && fabs(per - 0.99980) < 0.000005,
	   "99.9%% end to end over 5 services needs 0.999^(1/5) = 0.99980 each (%.6f)", per);
	rc = rs_slo_required_availability(0.999, 3, &per, &err);
	ok(rc == 0 && fabs(per - 0.99967) < 0.000005, "over 3 services: 0.99967 each (%.6f)", per);
	{
		struct rs_slo_service back[5];

		rc = rs_slo_required_availability(0.999, 5, &per, &err);
		for (int i = 0; i < 5; i++)
			back[i] = (struct rs_slo_service){ "svc", per, 0 };
		rc |= rs_slo_serial(back, 5, &r, &err);
		is_double(r.availability, 0.999, 1e-12,
			  "five services at the required level compose back to 0.999");
	}

	rc = rs_slo_serial(checkout, 0, &r, &err);
	ok(rc == -EINVAL && strstr(err.msg, "n must be > 0"), "n = 0: -EINVAL (%s)", err.msg);
	five[2].availability = 1.01;
	five[2].name = "cart";
	rc = rs_slo_serial(five, 5, &r, &err);
	ok(rc == -EINVAL && strstr(err.msg, "services[2]") && strstr(err.msg, "'cart'") &&
	       strstr(err.msg, "availability") && strstr(err.msg, "1.01"),
	   "availability 1.01: -EINVAL naming services[2] ('cart') (%s)", err.msg);
	five[2].availability = NAN;
	rc = rs_slo_parallel(five, 5, RS_SLO_ANY, &r, &err);
	ok(rc == -EINVAL && strstr(err.msg, "availability"), "availability NaN: -EINVAL (%s)",
	   err.msg);
	five[2].availability = 0.999;
	rc = rs_slo_parallel(five, 5, (enum rs_slo_need)9, &r, &err);
	ok(rc == -EINVAL && strstr(err.msg, "need"), "need 9: -EINVAL (%s)", err.msg);
	{
		int bad = 0;

		bad += rs_slo_required_availability(1.5, 5, &per, &err) != -EINVAL ||
		       !strstr(err.msg, "target");
		bad += rs_slo_required_availability(NAN, 5, &per, &err) != -EINVAL ||
		       !strstr(err.msg, "target");
		bad += rs_slo_required_availability(0.999, 0, &per, &err) != -EINVAL ||
		       !strstr(err.msg, "n must be > 0");
		bad += rs_slo_serial(NULL, 3, &r, &err) != -EINVAL || !strstr(err.msg, "svcs");
		bad += rs_slo_serial(five, 3, NULL, &err) != -EINVAL || !strstr(err.msg, "out");
		is_int(
		    bad, 0,
		    "target 1.5, target NaN, n 0, NULL svcs, NULL out: -EINVAL naming the field");
	}
	{
		const struct rs_slo_service big[2] = { { "a", 1, UINT64_MAX - 5 }, { "b", 1, 10 } };

		r.latency_ns = 1;
		rc = rs_slo_serial(big, 2, &r, &err);
		ok(rc == -ERANGE && strstr(err.msg, "overflow") && r.latency_ns == 1,
		   "a latency sum past UINT64_MAX: -ERANGE, result untouched (%s)", err.msg);
	}
	{
		const struct rs_slo_service edge[2] = { { "a", 0, 0 }, { "b", 1, 0 } };

		rc = rs_slo_serial(edge, 2, &r, &err);
		rc |= rs_slo_parallel(edge, 2, RS_SLO_ANY, &r, &err);
		ok(rc == 0 && r.availability == 1,
		   "availability 0 and 1 are valid; any of {0, 1} is 1");
	}
	return exit_status();
}
