/* Load shedder: tiered shedding by priority class (realised fractions over
 * 100k seeded decisions, critical protected below emergency) and the SRE
 * book's client-side adaptive throttling (the formula, the window, and the
 * steady state against a backend of fixed capacity). */
#include "tests/tap.h"
#include "tests/failalloc.h"
#include "tests/promtext.h"

#include <errno.h>
#include <math.h>

#include "resilience/clock.h"
#include "resilience/rng.h"
#include "resilience/shed.h"

#define SEC RS_NS_PER_SEC
#define MS  RS_NS_PER_MS
#define N   100000

static struct rs_shed *mk(const struct rs_shed_opts *o)
{
	struct rs_shed *s;
	struct rs_err err;

	if (rs_shed_new(&s, o, &err))
		bail_out("rs_shed_new: %s", err.msg);
	return s;
}

static void bad_options(void)
{
	static const struct rs_shed_tiers t_order = { { 0.5, 0.5, 0.9 }, { 0, 0.1, 0.3, 0.7 } };
	static const struct rs_shed_tiers t_big = { { 0.5, 0.7, 1.2 }, { 0, 0.1, 0.3, 0.7 } };
	static const struct rs_shed_tiers t_nan = { { NAN, 0.7, 0.9 }, { 0, 0.1, 0.3, 0.7 } };
	static const struct rs_shed_tiers t_frac = { { 0.5, 0.7, 0.9 }, { 0, 0.1, 0.3, 1.5 } };
	static const struct rs_shed_tiers t_down = { { 0.5, 0.7, 0.9 }, { 0, 0.3, 0.1, 0.7 } };
	static const struct {
		struct rs_shed_opts o;
		const char *field;
	} cases[] = {
		{ { .name = NULL }, "name" },
		{ { .name = "0123456789012345678901234567890123456789012345678" }, "name" },
		{ { .name = "s", .mode = (enum rs_shed_mode)7 }, "mode" },
		{ { .name = "s", .tiers = &t_order }, "tiers.threshold[1]" },
		{ { .name = "s", .tiers = &t_big }, "tiers.threshold[2]" },
		{ { .name = "s", .tiers = &t_nan }, "tiers.threshold[0]" },
		{ { .name = "s", .tiers = &t_frac }, "tiers.fraction[3]" },
		{ { .name = "s", .tiers = &t_down }, "tiers.fraction[2]" },
		{ { .name = "s", .k = 2 }, "k" },
		{ { .name = "s", .mode = RS_SHED_THROTTLE, .k = 0.5 }, "k" },
		{ { .name = "s", .mode = RS_SHED_THROTTLE, .k = NAN }, "k" },
		{ { .name = "s", .mode = RS_SHED_THROTTLE, .window_ns = 10, .slots = 100 },
		  "window_ns" },
		{ { .name = "s", .mode = RS_SHED_THROTTLE, .tiers = &t_order }, "tiers" },
		{ { .name = "s", .mode = RS_SHED_THROTTLE, .mix_window = 10 }, "mix_window" },
	};
	struct rs_shed *s, *th;
	struct rs_err err;
	int rc;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		s = (struct rs_shed *)&err; /* must be reset to NULL */
		err.msg[0] = '\0';
		rc = rs_shed_new(&s, &cases[i].o, &err);
		ok(rc == -EINVAL && s == NULL && strstr(err.msg, cases[i].field),
		   "bad %s: -EINVAL naming it (%s)", cases[i].field, err.msg);
	}

	s = mk(&(struct rs_shed_opts){ .name = "api" });
	th = mk(&(struct rs_shed_opts){ .name = "cli", .mode = RS_SHED_THROTTLE });
	rc = rs_shed_set_score(s, 1.5, &err);
	ok(rc == -EINVAL && strstr(err.msg, "score") && rs_shed_score(s) == 0,
	   "set_score(1.5): -EINVAL naming score, score unchanged (%s)", err.msg);
	ok(rs_shed_set_score(s, NAN, &err) == -EINVAL, "set_score(NaN): -EINVAL");
	rc = rs_shed_set_load(s, &(struct rs_shed_load){ .cpu = 2 }, &err);
	ok(rc == -EINVAL && strstr(err.msg, "cpu"), "set_load(cpu 2): -EINVAL naming cpu (%s)",
	   err.msg);
	ok(rs_shed_set_score(th, 0.5, &err) == -EINVAL && strstr(err.msg, "throttle"),
	   "set_score on a throttle shedder: -EINVAL (%s)", err.msg);
	rs_shed_free(s);
	rs_shed_free(th);
	rs_shed_free(NULL);
}

static void alloc_failures(void)
{
	static const struct rs_shed_opts base[] = {
		{ .name = "tiered" },
		{ .name = "throttle", .mode = RS_SHED_THROTTLE },
	};

	for (size_t k = 0; k < 2; k++) {
		struct failalloc fa;
		struct rs_shed_opts o = base[k];
		struct rs_shed *s = NULL;
		struct rs_err err;
		int bad = 0, n, rc;

		o.alloc = &fa.alloc;
		for (n = 1;; n++) {
			failalloc_init(&fa, n);
			rc = rs_shed_new(&s, &o, &err);
			if (rc == 0)
				break;
			bad |= rc != -ENOMEM || fa.live != 0 || s != NULL ||
			       !strstr(err.msg, "memory");
		}
		rs_shed_free(s);
		ok(!bad && fa.live == 0 && n >= 2,
		   "%s: failing allocation 1..%d gives -ENOMEM and leaks nothing; then it succeeds",
		   o.name, n - 1);
	}
}

static void load_score(void)
{
	struct rs_shed *s = mk(&(struct rs_shed_opts){ .name = "api" });
	struct rs_err err;
	static const struct {
		double score;
		enum rs_shed_tier tier;
	} map[] = { { 0, RS_SHED_GREEN },	 { 0.49, RS_SHED_GREEN }, { 0.5, RS_SHED_YELLOW },
		    { 0.69, RS_SHED_YELLOW },	 { 0.7, RS_SHED_RED },	  { 0.849, RS_SHED_RED },
		    { 0.85, RS_SHED_EMERGENCY }, { 1, RS_SHED_EMERGENCY } };
	int good = 1;

	is_double(rs_shed_load_score(&(struct rs_shed_load){ .cpu = 0.3 }), 0.3, 0,
		  "score of cpu 0.3 alone is 0.3");
	is_double(rs_shed_load_score(
		      &(struct rs_shed_load){ .cpu = 0.3, .queue_depth = 80, .queue_limit = 100 }),
		  0.8, 1e-12, "queue 80/100 with cpu 0.3: the larger, 0.8");
	is_double(rs_shed_load_score(&(struct rs_shed_load){ .latency_ns = 150 * MS,
							     .latency_target_ns = 100 * MS }),
		  0.75, 1e-12, "latency 150 ms vs target 100 ms: 150 / 200 = 0.75");
	is_double(rs_shed_load_score(
		      &(struct rs_shed_load){ .cpu = 0.1, .queue_depth = 300, .queue_limit = 100 }),
		  1, 0, "queue 300/100 is capped at 1");
	ok(rs_shed_set_load(
	       s, &(struct rs_shed_load){ .latency_ns = 100 * MS, .latency_target_ns = 100 * MS },
	       &err) == 0 &&
	       rs_shed_tier(s) == RS_SHED_YELLOW,
	   "latency at its target scores 0.5: the default yellow tier begins");
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (rs_shed_set_score(s, map[i].score, &err))
			bail_out("set_score: %s", err.msg);
		good &= rs_shed_tier(s) == map[i].tier;
	}
	ok(good, "scores 0 .49 | .5 .69 | .7 .849 | .85 1 map to green | yellow | red | emergency");
	rs_shed_free(s);
}

/* Runs N decisions with classes drawn from `mix` (shares summing to 1) at
 * `score`; returns the realised shed fraction and per-class stats. */
static double run_tier(uint64_t seed, double score, const double *mix, struct rs_shed_stats *st,
		       double *reported)
{
	struct rs_shed *s = mk(&(struct rs_shed_opts){ .name = "api", .seed = seed });
	struct rs_rng r;
	struct rs_err err;
	long shed = 0;

	if (rs_shed_set_score(s, score, &err))
		bail_out("set_score: %s", err.msg);
	rs_rng_seed(&r, seed ^ 0x5eed);
	for (int i = 0; i < N; i++) {
		double u = rs_rng_double(&r), acc = 0;
		int c = RS_SHED_LOW;

		for (int k = 0; k < RS_SHED_NCLASSES; k++) {
			acc += mix[k];
			if (u < acc) {
				c = k;
				break;
			}
		}
		shed += !rs_shed_admit(s, (enum rs_shed_class)c, 0);
	}
	rs_shed_stats(s, st);
	*reported = rs_shed_fraction(s, 0);
	rs_shed_free(s);
	return (double)shed / N;
}

static double class_frac(const struct rs_shed_stats *st, int c)
{
	return st->decided[c] ? (double)st->shed[c] / (double)st->decided[c] : 0;
}

static void tiered(void)
{
	static const double uniform[4] = { 0.25, 0.25, 0.25, 0.25 };
	static const double scores[4] = { 0.2, 0.6, 0.75, 0.9 };
	static const double want[4] = { 0, 0.1, 0.3, 0.7 };
	static const char *const names[4] = { "green", "yellow", "red", "emergency" };
	struct rs_shed_stats st;
	double f, rep;

	diag("tolerance 0.01 absolute over %d decisions: binomial sd at p = 0.3 is 0.0015", N);
	for (int t = 0; t < 4; t++) {
		f = run_tier(100 + t, scores[t], uniform, &st, &rep);
		is_double(f, want[t], 0.01,
			  "%s (score %.2f), uniform classes: shed %.4f of %d, want %.2f", names[t],
			  scores[t], f, N, want[t]);
		is_double(rep, want[t], 0.01, "%s: rs_shed_fraction reports %.4f", names[t], rep);
		if (t < 3)
			is_int((long long)st.shed[RS_SHED_CRITICAL], 0,
			       "%s: no critical request shed (of %llu)", names[t],
			       (unsigned long long)st.decided[RS_SHED_CRITICAL]);
		is_int((long long)(st.shed[0] + st.shed[1] + st.shed[2] + st.shed[3]),
		       (long long)st.shed_total, "%s: per-class shed counts add up to shed_total",
		       names[t]);
		if (t == 1)
			ok(fabs(class_frac(&st, RS_SHED_LOW) - 0.4) < 0.02 &&
			       st.shed[RS_SHED_MEDIUM] == 0 && st.shed[RS_SHED_HIGH] == 0,
			   "yellow: 10%% comes from low alone (low shed %.3f ~ 0.1/0.25 = 0.4, "
			   "medium "
			   "and high 0)",
			   class_frac(&st, RS_SHED_LOW));
		if (t == 2)
			ok(class_frac(&st, RS_SHED_LOW) > 0.97 &&
			       fabs(class_frac(&st, RS_SHED_MEDIUM) - 0.2) < 0.02 &&
			       st.shed[RS_SHED_HIGH] == 0,
			   "red: low %.3f ~ 1 (mix noise), medium %.3f ~ (0.3-0.25)/0.25 = 0.2, "
			   "high 0",
			   class_frac(&st, RS_SHED_LOW), class_frac(&st, RS_SHED_MEDIUM));
		if (t == 3)
			ok(class_frac(&st, RS_SHED_LOW) > 0.97 &&
			       class_frac(&st, RS_SHED_MEDIUM) > 0.97 &&
			       fabs(class_frac(&st, RS_SHED_HIGH) - 0.8) < 0.02 &&
			       class_frac(&st, RS_SHED_CRITICAL) < 0.005,
			   "emergency: low %.3f and medium %.3f ~ 1, high %.3f ~ 0.8, critical "
			   "%.4f ~ 0 "
			   "(70%% fits below it)",
			   class_frac(&st, RS_SHED_LOW), class_frac(&st, RS_SHED_MEDIUM),
			   class_frac(&st, RS_SHED_HIGH), class_frac(&st, RS_SHED_CRITICAL));
	}

	{
		static const double skew[4] = { 0.9, 0, 0, 0.1 };
		static const double cascade[4] = { 0, 0.5, 0.45, 0.05 };

		f = run_tier(7, 0.75, skew, &st, &rep);
		ok(fabs(f - 0.1) < 0.01 && st.shed[RS_SHED_CRITICAL] == 0 &&
		       st.decided[RS_SHED_LOW] - st.shed[RS_SHED_LOW] <= 1,
		   "red with 90%% critical / 10%% low: only low can go, realised %.4f ~ 0.1, "
		   "critical "
		   "0 shed, low all but %llu (the first decision, before any mix is known)",
		   f, (unsigned long long)(st.decided[RS_SHED_LOW] - st.shed[RS_SHED_LOW]));
		is_double(rep, 0.1, 0.01,
			  "... and rs_shed_fraction reports the realisable %.4f, not 0.3", rep);
		f = run_tier(8, 0.9, skew, &st, &rep);
		ok(fabs(f - 0.7) < 0.01 &&
		       fabs(class_frac(&st, RS_SHED_CRITICAL) - 0.6 / 0.9) < 0.02,
		   "emergency with the same mix: %.4f ~ 0.7, critical shed %.3f ~ 0.6/0.9", f,
		   class_frac(&st, RS_SHED_CRITICAL));
		f = run_tier(9, 0.6, cascade, &st, &rep);
		ok(fabs(f - 0.1) < 0.01 && class_frac(&st, RS_SHED_LOW) > 0.99 &&
		       fabs(class_frac(&st, RS_SHED_MEDIUM) - 0.05 / 0.45) < 0.02,
		   "yellow with 5%% low: low all, the other 5%% from medium (%.3f ~ 0.111); total "
		   "%.4f",
		   class_frac(&st, RS_SHED_MEDIUM), f);
	}

	{
		struct rs_shed *a = mk(&(struct rs_shed_opts){ .name = "a", .seed = 42 });
		struct rs_shed *b = mk(&(struct rs_shed_opts){ .name = "b", .seed = 42 });
		struct rs_shed *c = mk(&(struct rs_shed_opts){ .name = "c", .seed = 43 });
		struct rs_err err;
		int same = 1, differ = 0;

		if (rs_shed_set_score(a, 0.75, &err) || rs_shed_set_score(b, 0.75, &err) ||
		    rs_shed_set_score(c, 0.75, &err))
			bail_out("set_score: %s", err.msg);
		for (int i = 0; i < 10000; i++) {
			enum rs_shed_class k = (enum rs_shed_class)(i % 4);
			bool x = rs_shed_admit(a, k, 0), y = rs_shed_admit(b, k, 0);

			same &= x == y;
			differ += x != rs_shed_admit(c, k, 0);
		}
		ok(same && differ > 0, "same seed, same 10000 decisions; seed 43 differs in %d",
		   differ);
		rs_shed_free(a);
		rs_shed_free(b);
		rs_shed_free(c);
	}
}

static void throttle(void)
{
	struct rs_shed *s =
	    mk(&(struct rs_shed_opts){ .name = "cli", .mode = RS_SHED_THROTTLE, .seed = 3 });
	uint64_t req = 1, acc = 1, t0 = 1000 * SEC;
	double p;

	p = rs_shed_reject_probability(s, t0, &req, &acc);
	ok(p == 0 && req == 0 && acc == 0, "no history: p = 0");
	{
		/* p is computed before the request counts: with no history the first
		 * request sees (0 - 0)/(0 + 1) = 0, never (1 - 0)/(1 + 1). */
		int rejected = 0;

		for (uint64_t seed = 0; seed < 200; seed++) {
			struct rs_shed *f = mk(&(struct rs_shed_opts){
			    .name = "f", .mode = RS_SHED_THROTTLE, .seed = seed });

			rejected += !rs_shed_admit(f, RS_SHED_LOW, 0);
			rs_shed_free(f);
		}
		is_int(rejected, 0,
		       "200 fresh throttle shedders all admit their first request (p = 0)");
	}
	for (int i = 0; i < 100; i++)
		(void)rs_shed_admit(s, RS_SHED_HIGH, t0 + (uint64_t)i * 10 * MS);
	for (int i = 0; i < 30; i++)
		rs_shed_record_accept(s, t0 + SEC + (uint64_t)i * MS);
	p = rs_shed_reject_probability(s, t0 + 2 * SEC, &req, &acc);
	ok(req == 100 && acc == 30, "window holds requests 100 and accepts 30 (%llu, %llu)",
	   (unsigned long long)req, (unsigned long long)acc);
	is_double(p, (100 - 2 * 30) / 101.0, 1e-15,
		  "p = (requests - K*accepts)/(requests + 1) = (100 - 60)/101 = %.6f", p);
	is_double(rs_shed_fraction(s, t0 + 2 * SEC), p, 0, "rs_shed_fraction reports p");
	for (int i = 0; i < 20; i++)
		rs_shed_record_accept(s, t0 + 2 * SEC);
	is_double(rs_shed_reject_probability(s, t0 + 2 * SEC, NULL, NULL), 0, 0,
		  "with accepts 50 = requests/K: p = max(0, (100 - 100)/101) = 0");
	/* Default window 120 s in 1 s buckets: the first second of requests
	 * (t0 .. t0+0.99 s) leaves at t0 + 120 s; the accepts one second later. */
	(void)rs_shed_reject_probability(s, t0 + 119 * SEC + 999 * MS, &req, &acc);
	ok(req == 100 && acc == 50, "at t0 + 119.999 s everything is still in the 120 s window");
	(void)rs_shed_reject_probability(s, t0 + 120 * SEC, &req, &acc);
	ok(req == 0 && acc == 50, "at t0 + 120 s the requests of second t0 left (%llu, %llu)",
	   (unsigned long long)req, (unsigned long long)acc);
	(void)rs_shed_reject_probability(s, t0 + 122 * SEC, &req, &acc);
	ok(req == 0 && acc == 0, "at t0 + 122 s the window is empty");
	/* The same through the recording path: an accept at t0 + 120 s reuses
	 * the ring slot of second t0, which must be emptied first. */
	rs_shed_record_accept(s, t0 + 120 * SEC);
	(void)rs_shed_reject_probability(s, t0 + 120 * SEC, &req, &acc);
	ok(req == 0 && acc == 51,
	   "an accept recorded at t0 + 120 s: requests 0, accepts 50 + 1 (%llu, %llu)",
	   (unsigned long long)req, (unsigned long long)acc);
	rs_shed_free(s);

	{
		/* 1000 requests/s offered to a backend that accepts 200/s: the client
		 * should settle at forwarding about K * 200 = 400/s, p ~ 0.6. */
		struct rs_shed *c = mk(
		    &(struct rs_shed_opts){ .name = "cli", .mode = RS_SHED_THROTTLE, .seed = 9 });
		uint64_t fwd_late = 0, cap_used = 0, sec = 0;

		for (uint64_t t = 0; t < 600 * SEC; t += MS) {
			if (t / SEC != sec) {
				sec = t / SEC;
				cap_used = 0;
			}
			if (!rs_shed_admit(c, RS_SHED_MEDIUM, t))
				continue;
			if (t >= 540 * SEC)
				fwd_late++;
			if (cap_used < 200) {
				cap_used++;
				rs_shed_record_accept(c, t);
			}
		}
		is_double(
		    (double)fwd_late / 60, 400, 20,
		    "1000/s offered, backend takes 200/s: client forwards %.1f/s ~ K*200 = 400 "
		    "(last 60 of 600 s)",
		    (double)fwd_late / 60);
		is_double(rs_shed_fraction(c, 600 * SEC), 0.6, 0.02,
			  "and rejects locally with p = %.4f ~ 0.6",
			  rs_shed_fraction(c, 600 * SEC));
		rs_shed_free(c);
	}
}

static void expo(void)
{
	struct rs_shed *a = mk(&(struct rs_shed_opts){ .name = "api", .seed = 1 });
	struct rs_shed *c = mk(&(struct rs_shed_opts){ .name = "cli", .mode = RS_SHED_THROTTLE });
	const struct rs_shed *objs[] = { a, NULL, c };
	struct rs_shed_stats st;
	struct rs_err err;
	struct rs_expo e;
	static char buf[8192];
	char why[256] = "";
	double v = -1;
	int n;

	if (rs_shed_set_score(a, 0.9, &err))
		bail_out("set_score: %s", err.msg);
	for (int i = 0; i < 1000; i++)
		(void)rs_shed_admit(a, (enum rs_shed_class)(i % 4), 0);
	rs_shed_stats(a, &st);
	rs_expo_init(&e, buf, sizeof(buf));
	rs_shed_expo(&e, objs, 3, 0);
	is_int(rs_expo_finish(&e), 0, "exposition fits");
	n = promtext_check(buf, why, sizeof(why));
	is_int(n, 2 + 2 + 8 + 1, "valid text format, 13 samples (%s)", why);
	v = -1;
	promtext_value(buf, "resilience_shed_total{name=\"api\"}", &v);
	is_double(v, (double)st.shed_total, 0,
		  "resilience_shed_total{name=\"api\"} = %g, the shed count", v);
	v = -1;
	promtext_value(buf, "resilience_shed_fraction{name=\"api\"}", &v);
	is_double(v, 0.7, 0.01, "resilience_shed_fraction{name=\"api\"} = %g (emergency, 0.7)", v);
	v = -1;
	promtext_value(buf, "resilience_shed_class_total{name=\"api\",class=\"critical\"}", &v);
	is_double(v, (double)st.shed[RS_SHED_CRITICAL], 0,
		  "per-class counter with a class label (critical %g)", v);
	v = -1;
	promtext_value(buf, "resilience_shed_class_total{name=\"api\",class=\"low\"}", &v);
	is_double(v, (double)st.shed[RS_SHED_LOW], 0, "per-class counter (low %g)", v);
	v = -1;
	promtext_value(buf, "resilience_shed_tier{name=\"api\"}", &v);
	is_double(v, 3, 0, "resilience_shed_tier{name=\"api\"} = 3 (emergency)");
	v = -1;
	promtext_value(buf, "resilience_shed_fraction{name=\"cli\"}", &v);
	is_double(v, 0, 0, "the throttle shedder exports fraction 0 with no traffic");
	ok(!promtext_value(buf, "resilience_shed_tier{name=\"cli\"}", &v),
	   "and no tier (throttle mode has none)");
	rs_shed_free(a);
	rs_shed_free(c);
}

int main(void)
{
	bad_options();
	alloc_failures();
	load_score();
	tiered();
	throttle();
	expo();
	done_testing();
	return exit_status();
}
