/* Error budget: remaining/consumed for known counts, the sliding budget
 * window, and the SRE workbook's multi-window burn-rate alerts with their
 * detection times at 100% errors. */
#include "tests/tap.h"
#include "tests/failalloc.h"
#include "tests/promtext.h"

#include <errno.h>
#include <math.h>

#include "resilience/clock.h"
#include "resilience/errbudget.h"

#define SEC  RS_NS_PER_SEC
#define MS   RS_NS_PER_MS
#define HOUR (3600 * SEC)
#define DAY  (24 * HOUR)

static struct rs_errbudget *mk(const struct rs_errbudget_opts *o)
{
	struct rs_errbudget *eb;
	struct rs_err err;

	if (rs_errbudget_new(&eb, o, &err))
		bail_out("rs_errbudget_new: %s", err.msg);
	return eb;
}

static void bad_options(void)
{
	static const struct rs_errbudget_rule r_long[] = { { NULL, 0, 0, 14.4 } };
	static const struct rs_errbudget_rule r_short[] = { { NULL, HOUR, 2 * HOUR, 14.4 } };
	static const struct rs_errbudget_rule r_factor[] = { { NULL, HOUR, 300 * SEC, 0 } };
	static const struct rs_errbudget_rule r_nan[] = { { NULL, HOUR, 300 * SEC, NAN } };
	static const struct rs_errbudget_rule r_dup[] = { { NULL, HOUR, 300 * SEC, 14.4 },
							  { NULL, HOUR, 300 * SEC, 14.4 } };
	static const struct rs_errbudget_rule r_name[] = {
		{ "0123456789012345678901234567890123456789012345678", HOUR, 300 * SEC, 1 }
	};
	static const struct {
		struct rs_errbudget_opts o;
		const char *field;
	} cases[] = {
		{ { .name = NULL, .slo = 0.999, .window_ns = DAY }, "name" },
		{ { .name = "api", .slo = 1, .window_ns = DAY }, "slo" },
		{ { .name = "api", .slo = 0, .window_ns = DAY }, "slo" },
		{ { .name = "api", .slo = 1.5, .window_ns = DAY }, "slo" },
		{ { .name = "api", .slo = NAN, .window_ns = DAY }, "slo" },
		{ { .name = "api", .slo = 0.999, .window_ns = 0 }, "window_ns" },
		{ { .name = "api", .slo = 0.999, .window_ns = 100, .slots = 1000 }, "window_ns" },
		{ { .name = "api", .slo = 0.999, .window_ns = DAY, .nrules = 2 }, "nrules" },
		{ { .name = "api", .slo = 0.999, .window_ns = DAY, .rules = r_long, .nrules = 33 },
		  "nrules" },
		{ { .name = "api", .slo = 0.999, .window_ns = DAY, .rules = r_long, .nrules = 1 },
		  "rules[0].long_ns" },
		{ { .name = "api", .slo = 0.999, .window_ns = DAY, .rules = r_short, .nrules = 1 },
		  "rules[0].short_ns" },
		{ { .name = "api", .slo = 0.999, .window_ns = DAY, .rules = r_factor, .nrules = 1 },
		  "rules[0].factor" },
		{ { .name = "api", .slo = 0.999, .window_ns = DAY, .rules = r_nan, .nrules = 1 },
		  "rules[0].factor" },
		{ { .name = "api", .slo = 0.999, .window_ns = DAY, .rules = r_dup, .nrules = 2 },
		  "rules[1]" },
		{ { .name = "api", .slo = 0.999, .window_ns = DAY, .rules = r_name, .nrules = 1 },
		  "rules[0].name" },
	};
	struct rs_errbudget *eb;
	struct rs_err err;
	int rc;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err.msg[0] = '\0';
		eb = (struct rs_errbudget *)&err;
		rc = rs_errbudget_new(&eb, &cases[i].o, &err);
		ok(rc == -EINVAL && !eb && strstr(err.msg, cases[i].field),
		   "bad %s: -EINVAL naming it (%s)", cases[i].field, err.msg);
	}
	rs_errbudget_free(NULL);
}

static void alloc_failures(void)
{
	static const struct rs_errbudget_rule one[] = { { "fast", 60 * SEC, 10 * SEC, 2 } };
	const struct rs_errbudget_opts base[] = {
		{ .name = "defaults", .slo = 0.999, .window_ns = 30 * DAY },
		{ .name = "one-rule", .slo = 0.99, .window_ns = HOUR, .rules = one, .nrules = 1 },
	};

	for (size_t k = 0; k < 2; k++) {
		struct rs_errbudget_opts o = base[k];
		struct rs_errbudget *eb = NULL;
		struct failalloc fa;
		struct rs_err err;
		int bad = 0, n, rc;

		o.alloc = &fa.alloc;
		for (n = 1;; n++) {
			failalloc_init(&fa, n);
			rc = rs_errbudget_new(&eb, &o, &err);
			if (rc == 0)
				break;
			bad |= rc != -ENOMEM || fa.live != 0 || eb != NULL;
		}
		rs_errbudget_free(eb);
		ok(!bad && fa.live == 0,
		   "%s: failing allocation 1..%d gives -ENOMEM and leaks nothing, then it succeeds",
		   o.name, n - 1);
	}
}

static void budget(void)
{
	const struct rs_errbudget_opts o = { .name = "api", .slo = 0.999, .window_ns = 30 * DAY };
	struct rs_errbudget *eb = mk(&o);
	struct rs_errbudget_status st;

	rs_errbudget_status(eb, 0, &st);
	ok(st.consumed == 0 && st.remaining == 1 && !st.exhausted, "no traffic: remaining 1");
	rs_errbudget_record(eb, 999750, 250, DAY);
	rs_errbudget_status(eb, DAY, &st);
	ok(st.good == 999750 && st.bad == 250, "status counts good 999750, bad 250");
	is_double(st.consumed, 0.25, 1e-12,
		  "SLO 99.9%%, 250 bad of 1e6: allowance 1000, consumed 0.25");
	is_double(st.remaining, 0.75, 1e-12, "remaining 0.75");
	ok(!st.exhausted, "not exhausted");
	is_double(rs_errbudget_remaining(eb, DAY), 0.75, 1e-12, "rs_errbudget_remaining agrees");
	rs_errbudget_record(eb, 0, 750, DAY + HOUR);
	rs_errbudget_status(eb, DAY + HOUR, &st);
	is_double(st.consumed, 1000 / 1000.75, 1e-12,
		  "750 more bad: 1000 of 1000750, consumed 1000/1000.75");
	rs_errbudget_free(eb);

	eb = mk(&o);
	rs_errbudget_record(eb, 999000, 1000, 0);
	rs_errbudget_status(eb, 0, &st);
	ok(st.consumed == 1 && st.remaining == 0 && st.exhausted,
	   "exactly 1000 bad of 1e6 at 99.9%%: consumed exactly 1, exhausted (1 - slo taken as "
	   "0.001)");
	rs_errbudget_record(eb, 0, 1000, SEC);
	rs_errbudget_status(eb, SEC, &st);
	is_double(st.remaining, 1 - 2000 / 1001.0, 1e-12,
		  "overspent, 2000 bad of 1001000: remaining 1 - 2000/1001 = %.4f", st.remaining);

	/* 30 days in 3600 buckets of 12 min: the records of day 0 leave the
	 * window 30 days later. */
	rs_errbudget_status(eb, 30 * DAY - 1, &st);
	ok(st.bad == 2000, "still in the window at 30 d - 1 ns");
	rs_errbudget_status(eb, 30 * DAY + 12 * 60 * SEC, &st);
	ok(st.bad == 0 && st.remaining == 1, "gone 30 d + one 12-min bucket later: remaining 1");
	/* A query ahead of the last record drops the buckets that left. */
	rs_errbudget_free(eb);
	eb = mk(&o);
	rs_errbudget_record(eb, 0, 3, 0);
	rs_errbudget_record(eb, 4, 0, 30 * DAY - HOUR);
	rs_errbudget_status(eb, 30 * DAY - 1, &st);
	ok(st.bad == 3 && st.good == 4, "queried ahead at 30 d - 1 ns: the bucket of t = 0 is in");
	rs_errbudget_status(eb, 30 * DAY, &st);
	ok(st.bad == 0 && st.good == 4,
	   "queried ahead at exactly 30 d: the bucket of t = 0 has left, the later one stays");
	/* Late records land in their own bucket while it is in the window. */
	rs_errbudget_record(eb, 0, 5, 40 * DAY);
	rs_errbudget_record(eb, 0, 7, 40 * DAY - HOUR);
	rs_errbudget_record(eb, 0, 9, 5 * DAY);
	rs_errbudget_status(eb, 40 * DAY, &st);
	is_int((long long)st.bad, 12,
	       "a record 1 h late counts, one 35 days late does not (bad 12)");
	rs_errbudget_status(eb, 70 * DAY - HOUR + 12 * 60 * SEC, &st);
	is_int((long long)st.bad, 5, "... and the late one leaves with its own bucket");
	rs_errbudget_free(eb);
}

/* Traffic of 100 requests/s: 10 every 100 ms, all good or all bad. */
struct sim {
	struct rs_errbudget *eb;
	uint64_t t; /* next record time */
};

static void run_until(struct sim *s, uint64_t until, int errors)
{
	for (; s->t <= until; s->t += 100 * MS)
		rs_errbudget_record(s->eb, errors ? 0 : 10, errors ? 10 : 0, s->t);
}

static void burn_alerts(void)
{
	const struct rs_errbudget_opts o = { .name = "api", .slo = 0.999, .window_ns = 30 * DAY };
	struct sim s = { mk(&o), 0 };
	const uint64_t E = 3 * DAY; /* errors start after 3 days of clean traffic */
	uint64_t first[3] = { 0 };
	double lb = 0, sb = 0;
	uint32_t mask, early = 0;
	int both_needed = 0;

	is_str(rs_errbudget_rule_name(s.eb, 0), "14.4x_1h_5m", "default rule 0 is 14.4x_1h_5m");
	is_str(rs_errbudget_rule_name(s.eb, 1), "6x_6h_30m", "default rule 1 is 6x_6h_30m");
	is_str(rs_errbudget_rule_name(s.eb, 2), "1x_3d_6h", "default rule 2 is 1x_3d_6h");
	ok(rs_errbudget_rule_name(s.eb, 3) == NULL && rs_errbudget_nrules(s.eb) == 3,
	   "three rules; rule 3 has no name");
	ok(rs_errbudget_rule_burn(s.eb, 3, 0, &lb, &sb) == -EINVAL, "rule_burn(3) is -EINVAL");

	/* 3 days at 100 requests/s, all good. */
	for (uint64_t sec = 0; sec <= E / SEC; sec++) {
		run_until(&s, sec * SEC, 0);
		early |= rs_errbudget_evaluate(s.eb, sec * SEC);
	}
	is_int(early, 0, "3 days of clean traffic: no rule fires");
	/* Then 100% errors, evaluated every second for 10 minutes. */
	for (uint64_t k = 1; k <= 600; k++) {
		run_until(&s, E + k * SEC, 1);
		mask = rs_errbudget_evaluate(s.eb, E + k * SEC);
		for (int r = 0; r < 3; r++)
			if ((mask >> r & 1) && !first[r])
				first[r] = k;
		if (k == 10) {
			if (rs_errbudget_rule_burn(s.eb, 0, E + k * SEC, &lb, &sb))
				bail_out("rule_burn");
			both_needed = sb > 14.4 && lb < 14.4 && !(mask & 1);
			diag("at 10 s: 5m burn %.1f, 1h burn %.2f", sb, lb);
		}
		if (k == first[0] && first[0]) {
			if (rs_errbudget_rule_burn(s.eb, 0, E + k * SEC, &lb, &sb))
				bail_out("rule_burn");
			diag("14.4x fires at %llu s: 1h burn %.3f, 5m burn %.1f",
			     (unsigned long long)k, lb, sb);
		}
	}
	ok(both_needed,
	   "at 10 s the 5m window alone burns > 14.4: the rule waits for the 1h window");
	diag(
	    "why 52 s: the 1h window's error ratio must exceed 14.4 * 0.001 = 0.0144, i.e. errors");
	diag("must cover 0.0144 * 3600 s = 51.84 s of the hour.  With 1 s buckets (1h / 3600 "
	     "slots)");
	diag("and an evaluation at E + k s right after the record at E + k: the window is buckets");
	diag("E+k-3599 .. E+k, holding 3599 full buckets (100 requests) plus 1 record (10) = "
	     "359910");
	diag("requests, of which 90 + 100 (k - 1) + 10 = 100 k bad; 100 k / 359910 > 0.0144 first");
	diag("at k = 52 (k = 51 gives 0.01417).");
	ok(first[0] >= 51 && first[0] <= 53,
	   "14.4x over 1h and 5m fires at %llu s (52 s +/- 1 step)", (unsigned long long)first[0]);
	/* The workbook's detection times: 6x -> 0.006 * 6 h = 129.6 s, 1x ->
	 * 0.001 * 3 d = 259.2 s, give or take one bucket of the long window
	 * (6 s and 72 s). */
	ok(first[1] >= 124 && first[1] <= 136, "6x over 6h and 30m fires at %llu s (129.6 +/- 6)",
	   (unsigned long long)first[1]);
	ok(first[2] >= 188 && first[2] <= 331, "1x over 3d and 6h fires at %llu s (259.2 +/- 72)",
	   (unsigned long long)first[2]);

	/* Errors stop at E + 600 s: the 5m window clears, so 14.4x stops while
	 * the 1h burn is still ~167. */
	{
		uint64_t stop = 0;

		for (uint64_t k = 601; k <= 1200; k++) {
			run_until(&s, E + k * SEC, 0);
			if (!(rs_errbudget_evaluate(s.eb, E + k * SEC) & 1) && !stop)
				stop = k;
		}
		if (rs_errbudget_rule_burn(s.eb, 0, E + 1200 * SEC, &lb, &sb))
			bail_out("rule_burn");
		ok(stop > 600 && stop <= 600 + 300,
		   "after errors stop at 600 s, 14.4x resets at %llu s (within the 5 min short "
		   "window) "
		   "while the 1h burn is still %.0f",
		   (unsigned long long)stop, lb);
	}
	rs_errbudget_free(s.eb);
}

/* A constant error ratio just below / above 14.4 * (1 - slo) for 2 h. */
static void no_false_alarm(void)
{
	const struct rs_errbudget_opts o = { .name = "api", .slo = 0.999, .window_ns = 30 * DAY };
	struct rs_errbudget *below = mk(&o), *above = mk(&o);
	uint64_t fired_below = 0, first_above = 0;

	for (uint64_t sec = 0; sec <= 2 * 3600; sec++) {
		rs_errbudget_record(below, 10000 - 143, 143, sec * SEC);
		rs_errbudget_record(above, 10000 - 145, 145, sec * SEC);
		fired_below += rs_errbudget_evaluate(below, sec * SEC) & 1;
		if ((rs_errbudget_evaluate(above, sec * SEC) & 1) && !first_above)
			first_above = sec + 1;
	}
	is_int((long long)fired_below, 0,
	       "error ratio 0.0143 (burn 14.3) for 2 h, evaluated every second: 14.4x never fires");
	is_int((long long)first_above, 1,
	       "error ratio 0.0145 (burn 14.5): fires at the first evaluation");
	rs_errbudget_free(below);
	rs_errbudget_free(above);
}

static void custom_rules_and_expo(void)
{
	static const struct rs_errbudget_rule rules[] = { { "fast", 60 * SEC, 10 * SEC, 2 },
							  { NULL, 90 * SEC, 90 * SEC, 1.5 } };
	struct rs_errbudget *a, *none, *d;
	const struct rs_errbudget *objs[3];
	static char buf[8192];
	struct rs_expo e;
	char why[256] = "";
	double v;

	a = mk(&(struct rs_errbudget_opts){ .name = "fast-api",
					    .slo = 0.99,
					    .window_ns = HOUR,
					    .slots = 60,
					    .rules = rules,
					    .nrules = 2 });
	none = mk(&(struct rs_errbudget_opts){
	    .name = "quiet", .slo = 0.99, .window_ns = HOUR, .rules = rules, .nrules = 0 });
	d = mk(&(struct rs_errbudget_opts){ .name = "api", .slo = 0.999, .window_ns = 30 * DAY });
	is_str(rs_errbudget_rule_name(a, 1), "1.5x_90s_90s", "a generated name: 1.5x_90s_90s");
	/* 3% errors at SLO 99%: burn 3 > 2 and > 1.5 */
	for (uint64_t t = 0; t <= 60; t++) {
		rs_errbudget_record(a, 97, 3, t * SEC);
		rs_errbudget_record(none, 97, 3, t * SEC);
		rs_errbudget_record(d, 1000, 0, t * SEC);
	}
	is_int(rs_errbudget_evaluate(a, 60 * SEC), 3, "burn 3: both custom rules fire (mask 3)");
	is_int(rs_errbudget_evaluate(none, 60 * SEC), 0, "rules given with nrules 0: no alerts");

	objs[0] = a;
	objs[1] = none;
	objs[2] = d;
	rs_expo_init(&e, buf, sizeof(buf));
	rs_errbudget_expo(&e, objs, 3, 60 * SEC);
	is_int(rs_expo_finish(&e), 0, "exposition fits");
	is_int(promtext_check(buf, why, sizeof(why)), 3 + 2 + 3,
	       "valid text format, 8 samples (%s)", why);
	v = -1;
	promtext_value(buf, "resilience_error_budget_remaining{name=\"fast-api\"}", &v);
	is_double(v, 1 - 3.0, 1e-9, "fast-api remaining = 1 - 0.03/0.01 = -2 (%g)", v);
	v = -1;
	promtext_value(buf, "resilience_error_budget_burn_alert{name=\"fast-api\",rule=\"fast\"}",
		       &v);
	is_double(v, 1, 0, "burn_alert{rule=\"fast\"} = 1");
	v = -1;
	promtext_value(buf, "resilience_error_budget_burn_alert{name=\"api\",rule=\"14.4x_1h_5m\"}",
		       &v);
	is_double(v, 0, 0, "burn_alert{name=\"api\",rule=\"14.4x_1h_5m\"} = 0");
	v = -1;
	promtext_value(buf, "resilience_error_budget_remaining{name=\"api\"}", &v);
	is_double(v, 1, 0, "api remaining = 1");
	rs_errbudget_free(a);
	rs_errbudget_free(none);
	rs_errbudget_free(d);
}

int main(void)
{
	bad_options();
	alloc_failures();
	budget();
	burn_alerts();
	no_false_alarm();
	custom_rules_and_expo();
	done_testing();
	return exit_status();
}
