/* The system coordinator: "more than threshold of the services" is strict,
 * counts and indices are exact, bad inputs are -EINVAL naming the field. */
#include "tests/tap.h"

#include <errno.h>
#include <math.h>

#include "resilience/coord.h"

static void fleet(struct rs_coord_service *s, size_t n, size_t sick)
{
	static const char *const names[] = { "gw",   "auth", "cart",   "pay", "inv",
					     "ship", "mail", "search", "rec", "db" };

	for (size_t i = 0; i < n; i++) {
		s[i].name = names[i % 10];
		s[i].metastable = false;
		s[i].error_rate = 0.01;
		s[i].load = 100;
	}
	/* Sick services are spread out: indices 1, 3, 5, ... */
	for (size_t i = 0; i < sick; i++) {
		s[2 * i + 1].metastable = true;
		s[2 * i + 1].error_rate = 0.5;
	}
}

int main(void)
{
	struct rs_coord_service s[10];
	struct rs_coord_view v;
	struct rs_err err;
	size_t which[10];
	int rc;

	plan(16);

	fleet(s, 10, 3);
	rc = rs_coord_evaluate(s, 10, 0.3, which, 10, &v, &err);
	ok(rc == 0 && !v.system_metastable && v.metastable == 3 && v.services == 10,
	   "threshold 0.3, 10 services, 3 metastable: the system is not metastable");
	fleet(s, 10, 4);
	rc = rs_coord_evaluate(s, 10, 0.3, which, 10, &v, &err);
	ok(rc == 0 && v.system_metastable && v.metastable == 4,
	   "threshold 0.3, 10 services, 4 metastable: the system is metastable");
	ok(v.listed == 4 && which[0] == 1 && which[1] == 3 && which[2] == 5 && which[3] == 7,
	   "which ones: indices 1, 3, 5, 7 in order");
	is_double(v.metastable_fraction, 0.4, 1e-12, "metastable fraction 0.4");
	is_double(v.mean_error_rate, (6 * 0.01 + 4 * 0.5) / 10, 1e-12,
		  "mean error rate over 10 known services: 0.206");
	ok(v.total_load == 1000 && v.metastable_load == 400 && v.load_known == 10,
	   "load: 1000/s in total, 400/s on metastable services");

	rc = rs_coord_evaluate(s, 10, 0.3, which, 2, &v, &err);
	ok(rc == 0 && v.listed == 2 && v.metastable == 4 && which[1] == 3,
	   "which_cap 2: lists the first 2 of 4, still counts 4");
	rc = rs_coord_evaluate(s, 10, 0.3, NULL, 0, &v, &err);
	ok(rc == 0 && v.listed == 0 && v.system_metastable, "which NULL with cap 0: counts only");

	s[0].error_rate = NAN;
	s[0].load = NAN;
	rc = rs_coord_evaluate(s, 10, 0.3, NULL, 0, &v, &err);
	ok(rc == 0 && v.error_known == 9 && v.load_known == 9 && v.total_load == 900,
	   "unknown (NaN) error rate and load are left out: 9 known, 900/s");

	fleet(s, 10, 0);
	rc = rs_coord_evaluate(s, 10, 0.0, NULL, 0, &v, &err);
	ok(rc == 0 && !v.system_metastable, "threshold 0: no metastable service, not metastable");
	s[9].metastable = true;
	rc = rs_coord_evaluate(s, 10, 0.0, NULL, 0, &v, &err);
	ok(rc == 0 && v.system_metastable, "threshold 0: one metastable service (db) is enough");

	rc = rs_coord_evaluate(NULL, 0, 0.3, NULL, 0, &v, &err);
	ok(rc == 0 && v.services == 0 && !v.system_metastable && isnan(v.mean_error_rate),
	   "no services: an empty, healthy system");

	{
		int bad = 0;

		err.msg[0] = 0;
		bad += rs_coord_evaluate(s, 10, 1.0, NULL, 0, &v, &err) != -EINVAL ||
		       !strstr(err.msg, "threshold") || !strstr(err.msg, "got 1");
		bad += rs_coord_evaluate(s, 10, NAN, NULL, 0, &v, &err) != -EINVAL ||
		       !strstr(err.msg, "threshold");
		bad += rs_coord_evaluate(s, 10, -0.1, NULL, 0, &v, &err) != -EINVAL ||
		       !strstr(err.msg, "threshold");
		bad += rs_coord_evaluate(NULL, 3, 0.3, NULL, 0, &v, &err) != -EINVAL ||
		       !strstr(err.msg, "svcs");
		bad += rs_coord_evaluate(s, 10, 0.3, NULL, 4, &v, &err) != -EINVAL ||
		       !strstr(err.msg, "which");
		bad += rs_coord_evaluate(s, 10, 0.3, NULL, 0, NULL, &err) != -EINVAL ||
		       !strstr(err.msg, "view");
		is_int(bad, 0,
		       "threshold 1, NaN, -0.1, NULL svcs, NULL which, NULL view: -EINVAL "
		       "naming the field");
		s[4].error_rate = 1.5;
		rc = rs_coord_evaluate(s, 10, 0.3, NULL, 0, &v, &err);
		ok(rc == -EINVAL && strstr(err.msg, "services[4]") && strstr(err.msg, "'inv'") &&
		       strstr(err.msg, "error_rate") && strstr(err.msg, "1.5"),
		   "error rate 1.5 on services[4] ('inv'): -EINVAL (%s)", err.msg);
		s[4].error_rate = 0;
		s[2].load = -1;
		rc = rs_coord_evaluate(s, 10, 0.3, NULL, 0, &v, &err);
		ok(rc == -EINVAL && strstr(err.msg, "services[2]") && strstr(err.msg, "load"),
		   "load -1 on services[2]: -EINVAL (%s)", err.msg);
		v.services = 77;
		rc = rs_coord_evaluate(s, 10, 0.3, NULL, 0, &v, &err);
		ok(rc == -EINVAL && v.services == 77, "the view is untouched on error");
	}
	return exit_status();
}
