/* The expectation evaluator on synthetic runs: every kind with the figures
 * a user reads in the verdict (activation time and margin, aggregates,
 * ratios of counter increases, recovery with a settle window, event order
 * and chaining), windows without enough samples failing with the reason,
 * and abort conditions met exactly when violated for their duration.
 *
 * Experiments are parsed from small JSON strings with the real loader, so
 * the evaluator is tested against the model users write.  Times: the run
 * starts at T0 (not 0, so offsets are exercised); helpers take offsets in
 * milliseconds or nanoseconds from T0. */
#include "tests/tap.h"
#include "tests/failalloc.h"

#include <errno.h>
#include <unistd.h>

#include "harness/eval.h"
#include "harness/experiment.h"
#include "harness/series.h"

#define MS  1000000ull
#define SEC 1000000000ull
#define T0  (5000 * SEC)

#define HEAD                                                                                       \
	"{\"version\":1,\"title\":\"t\",\"target\":{\"command\":[\"x\"]},"                         \
	"\"load\":{\"rate\":10,\"duration\":\"60s\"},"
#define DEP_LOSS                                                                                   \
	"\"method\":[{\"name\":\"dep-loss\",\"at\":\"10s\",\"for\":\"10s\","                       \
	"\"fault\":{\"type\":\"jitter\",\"side\":\"target\"}}],"

static struct fl_runlog R;
static struct fl_verdict V[16];
static uint64_t EV[16];

static struct fl_experiment *load(const char *json)
{
	struct fl_experiment *x = NULL;
	struct fl_diag d;
	struct fl_vars vars = { NULL, 0, true };

	fl_diag_init(&d, "test.json");
	if (fl_experiment_parse("test.json", json, strlen(json), &vars, NULL, &x, &d) != 0) {
		fl_diag_print(&d, stdout);
		bail_out("test experiment does not load");
	}
	return x;
}

static size_t probe_of(const struct fl_experiment *x, const char *name)
{
	for (size_t i = 0; i < x->nprobes; i++)
		if (strcmp(x->probes[i].name, name) == 0)
			return i;
	bail_out("no probe '%s'", name);
}

/* A fresh runlog for x: start T0, end T0 + 60 s, every action applied at
 * its plan offset + applied_ms and reverted at its end + reverted_ms. */
static void run(const struct fl_experiment *x, uint64_t applied_off_ns, uint64_t reverted_off_ns)
{
	fl_runlog_release(&R);
	if (fl_runlog_init(&R, x->nprobes, x->nactions, NULL) != 0)
		bail_out("runlog_init");
	R.start_ns = T0;
	R.warmup_end_ns = T0 + x->warmup_ns;
	R.steady_ns = T0 + x->steady_ns;
	R.final_ns = T0 + x->final_ns;
	R.end_ns = T0 + 60 * SEC;
	for (size_t i = 0; i < x->nactions; i++) {
		R.actions[i].applied_ns = T0 + x->actions[i].start_ns + applied_off_ns;
		R.actions[i].verified_ns = R.actions[i].applied_ns + MS;
		R.actions[i].reverted_ns = T0 + x->actions[i].end_ns + reverted_off_ns;
	}
}

static void put(size_t probe, uint64_t at_ns, double v)
{
	if (fl_series_append(&R.series[probe], at_ns, v, true) != 0)
		bail_out("append at %llu", (unsigned long long)at_ns);
}

static void put_failed(size_t probe, uint64_t at_ns)
{
	if (fl_series_append(&R.series[probe], at_ns, 0, false) != 0)
		bail_out("append failed at %llu", (unsigned long long)at_ns);
}

static void eval(const struct fl_experiment *x)
{
	struct rs_err err = { "" };
	int rc = fl_eval_expects(x, &R, V, EV, NULL, &err);

	if (rc)
		bail_out("fl_eval_expects: %d %s", rc, err.msg);
	for (size_t i = 0; i < x->nexpects; i++)
		diag("%s", V[i].detail);
}

static double secs_between(uint64_t a, uint64_t b)
{
	return (double)(b - a) / 1e9;
}

static int has(const char *s, const char *sub)
{
	int found = strstr(s, sub) != NULL;

	if (!found)
		diag("'%s' not in '%s'", sub, s);
	return found;
}

/* ---- becomes ------------------------------------------------------------ */

/* The breaker is 0 every 100 ms from 0 s, and 2 from `hit` after the action
 * was applied (a sample exactly then). */
static void breaker_series(size_t b, uint64_t applied, uint64_t hit, bool opens)
{
	uint64_t t;

	for (t = T0; t < applied; t += 100 * MS)
		put(b, t, 0);
	for (t = applied; t < applied + (opens ? hit : 5 * SEC); t += 100 * MS)
		put(b, t, 0);
	if (!opens)
		return;
	for (t = applied + hit; t < T0 + 30 * SEC; t += 100 * MS)
		put(b, t, 2);
}

static void test_becomes(void)
{
	struct fl_experiment *x = load(
	    HEAD "\"probes\":{\"breaker\":{\"type\":\"prometheus\",\"metric\":\"b\"}}," DEP_LOSS
		 "\"expect\":[{\"name\":\"breaker opens\",\"probe\":\"breaker\","
		 "\"becomes\":{\"eq\":2},\"within\":\"2s\",\"after\":\"dep-loss.start\"},"
		 "{\"name\":\"breaker closes\",\"probe\":\"breaker\",\"becomes\":{\"eq\":0},"
		 "\"within\":\"3s\",\"after\":\"dep-loss.end\"}]}");
	size_t b = probe_of(x, "breaker");
	uint64_t A = T0 + 10 * SEC + 3 * MS;

	/* 1.999 s after the actual apply (10.003 s): inside the bound. */
	run(x, 3 * MS, 4 * MS);
	breaker_series(b, A, 1999 * MS, true);
	eval(x);
	ok(V[0].evaluable && V[0].pass,
	   "becomes: holds 1.999 s after the event with within 2 s: pass");
	is_double(V[0].measured, 1.999, 1e-9, "becomes: measured 1.999 s from the actual apply");
	is_double(V[0].margin, 0.001, 1e-9, "becomes: margin 0.001 s");
	is_double(V[0].bound, 2.0, 0, "becomes: bound 2 s");
	ok(V[0].at_ns == A + 1999 * MS && EV[0] == A + 1999 * MS,
	   "becomes: at_ns and the expectation's event are the first sample that held");
	is_str(V[0].unit, "s", "becomes: unit s");
	ok(has(V[0].detail, "breaker opens: became 2 (== 2) 1.999 s after dep-loss.start "
			    "(bound 2 s, margin 0.001 s)"),
	   "becomes: detail names value, time, bound and margin");

	run(x, 3 * MS, 4 * MS);
	breaker_series(b, A, 2000 * MS, true);
	eval(x);
	ok(V[0].pass && V[0].measured == 2.0 && V[0].margin == 0,
	   "becomes: exactly at the bound (2.000 s) passes with margin 0");

	run(x, 3 * MS, 4 * MS);
	breaker_series(b, A, 2001 * MS, true);
	eval(x);
	ok(V[0].evaluable && !V[0].pass, "becomes: first holds 2.001 s after: fail");
	is_double(V[0].measured, 2.001, 1e-9,
		  "becomes: a late transition is still measured (2.001 s)");
	ok(V[0].margin < 0 && has(V[0].detail, "later than the bound 2 s (over by 0.001 s)"),
	   "becomes: a late transition says by how much it missed");
	ok(EV[0] == A + 2001 * MS, "becomes: a late transition is still the expectation's event");

	run(x, 3 * MS, 4 * MS);
	breaker_series(b, A, 0, false);
	eval(x);
	ok(V[0].evaluable && !V[0].pass && isnan(V[0].measured) && EV[0] == FL_T_NONE,
	   "becomes: never holds: fail, no figure, no event");
	ok(has(V[0].detail, "did not become == 2 within 2 s after dep-loss.start (last value 0 "
			    "at +12.003 s; 21 samples, 0 failed)"),
	   "becomes: never holds: detail gives the last value and its time");

	/* A value that held before the event does not count. */
	run(x, 3 * MS, 4 * MS);
	put(b, T0 + 9900 * MS, 2);
	put(b, T0 + 10 * SEC, 0);
	put(b, A + 700 * MS, 0);
	put(b, A + 1500 * MS, 2);
	eval(x);
	ok(V[0].pass && fabs(V[0].measured - 1.5) < 1e-9,
	   "becomes: only samples at or after the event count (2 before it ignored; 1.5 s)");

	/* Failed samples never satisfy: the failed sample (stored as 0) at
	 * +0.5 s after the revert does not make "closes" (eq 0) hold. */
	run(x, 3 * MS, 4 * MS);
	{
		uint64_t Rv = T0 + 20 * SEC + 4 * MS;

		put(b, A, 2);
		put(b, Rv + 100 * MS, 2);
		put_failed(b, Rv + 500 * MS);
		put(b, Rv + 900 * MS, 2);
		put(b, Rv + 1200 * MS, 0);
	}
	eval(x);
	ok(V[1].pass && fabs(V[1].measured - 1.2) < 1e-9 && V[1].failed == 1,
	   "becomes: a failed sample never satisfies the predicate (closed at 1.2 s, not 0.5 s)");

	run(x, 3 * MS, 4 * MS);
	for (uint64_t t = T0 + 20 * SEC; t < T0 + 25 * SEC; t += 100 * MS)
		put_failed(b, t);
	eval(x);
	ok(!V[1].evaluable && !V[1].pass &&
	       has(V[1].detail, "breaker closes: not evaluable: no successful sample of breaker in "
				"[20.004 s, 23.004 s] (30 failed)"),
	   "becomes: only failed samples in the bound: not evaluable, with the count");

	run(x, 3 * MS, 4 * MS);
	R.actions[0].applied_ns = FL_T_NONE;
	breaker_series(b, A, 1000 * MS, true);
	eval(x);
	ok(!V[0].evaluable && !V[0].pass &&
	       has(V[0].detail, "not evaluable: event 'dep-loss.start' never happened"),
	   "becomes: an action never applied: not evaluable, naming the event");
	fl_experiment_free(x);
}

/* ---- holds: aggregates over a window -------------------------------------- */

static void test_holds(void)
{
	struct fl_experiment *x = load(
	    HEAD
	    "\"probes\":{\"lat\":{\"type\":\"prometheus\",\"metric\":\"lat\"},"
	    "\"cnt\":{\"type\":\"prometheus\",\"metric\":\"c\"},"
	    "\"one\":{\"type\":\"prometheus\",\"metric\":\"one\"},"
	    "\"down\":{\"type\":\"prometheus\",\"metric\":\"down\"}}," DEP_LOSS "\"expect\":["
	    "{\"name\":\"max\",\"probe\":\"lat\",\"max\":100,\"aggregate\":\"max\",\"during\":"
	    "\"dep-loss\"},"
	    "{\"name\":\"min\",\"probe\":\"lat\",\"min\":1,\"aggregate\":\"min\",\"during\":\"dep-"
	    "loss\"},"
	    "{\"name\":\"mean\",\"probe\":\"lat\",\"holds\":{\"le\":50.5},\"aggregate\":\"mean\","
	    "\"during\":\"dep-loss\"},"
	    "{\"name\":\"p50\",\"probe\":\"lat\",\"max\":50,\"aggregate\":\"p50\",\"during\":\"dep-"
	    "loss\"},"
	    "{\"name\":\"p99\",\"probe\":\"lat\",\"max\":98.5,\"aggregate\":\"p99\",\"during\":"
	    "\"dep-loss\"},"
	    "{\"name\":\"last\",\"probe\":\"lat\",\"holds\":{\"eq\":64},\"aggregate\":\"last\","
	    "\"during\":\"dep-loss\"},"
	    "{\"name\":\"every\",\"probe\":\"lat\",\"max\":99,\"during\":\"dep-loss\"},"
	    "{\"name\":\"rate\",\"probe\":\"cnt\",\"min\":50,\"aggregate\":\"rate\",\"during\":"
	    "\"dep-loss\"},"
	    "{\"name\":\"delta\",\"probe\":\"cnt\",\"holds\":{\"eq\":495},\"aggregate\":\"delta\","
	    "\"during\":\"dep-loss\"},"
	    "{\"name\":\"first "
	    "second\",\"probe\":\"lat\",\"max\":100,\"aggregate\":\"max\",\"after\":\"dep-loss."
	    "start\",\"for\":\"1s\"},"
	    "{\"name\":\"whole run\",\"probe\":\"lat\",\"max\":100,\"aggregate\":\"max\"},"
	    "{\"name\":\"one sample "
	    "rate\",\"probe\":\"one\",\"min\":1,\"aggregate\":\"rate\",\"during\":\"dep-loss\"},"
	    "{\"name\":\"unreachable\",\"probe\":\"down\",\"max\":1,\"during\":\"dep-loss\"}"
	    "]}");
	size_t lat = probe_of(x, "lat"), cnt = probe_of(x, "cnt"), one = probe_of(x, "one");
	size_t down = probe_of(x, "down");
	uint64_t A = T0 + 10 * SEC + 3 * MS, Rv = T0 + 20 * SEC + 4 * MS;

	run(x, 3 * MS, 4 * MS);
	/* lat: a permutation of 1..100 inside the window, 500 outside it. */
	put(lat, T0 + 5 * SEC, 500);
	for (uint64_t k = 0; k < 100; k++)
		put(lat, A + 50 * MS + k * 90 * MS, (double)((k * 37) % 100 + 1));
	put(lat, Rv + 100 * MS, 500);
	/* cnt: a counter rising 50 per second, sampled every 100 ms. */
	R.series[cnt].counter = true;
	for (uint64_t k = 0; k <= 600; k++)
		put(cnt, T0 + k * 100 * MS, 5.0 * (double)k);
	put(one, A + SEC, 7);
	for (uint64_t t = A; t < Rv; t += 500 * MS)
		put_failed(down, t);
	eval(x);

	ok(V[0].pass && V[0].measured == 100 && V[0].margin == 0,
	   "max of 1..100 in the window is 100 (500 outside the window ignored)");
	ok(V[0].samples == 100 &&
	       has(V[0].detail, "max: max of 100 samples 100 (<= 100, margin 0)"),
	   "max: counts its 100 samples in the detail");
	ok(V[1].pass && V[1].measured == 1, "min of 1..100 is 1");
	is_double(V[2].measured, 50.5, 1e-12, "mean of 1..100 is 50.5");
	ok(V[2].pass, "mean 50.5 <= 50.5 passes");
	is_double(V[3].measured, 50, 0, "p50 of 1..100 is 50 (nearest rank)");
	is_double(V[4].measured, 99, 0, "p99 of 1..100 is 99 (nearest rank)");
	ok(!V[4].pass && V[4].evaluable && fabs(V[4].margin + 0.5) < 1e-12 &&
	       has(V[4].detail, "p99: p99 of 100 samples 99, not <= 98.5 (outside by 0.5)"),
	   "p99 99 against max 98.5 fails, outside by 0.5");
	ok(V[5].pass && V[5].measured == 64 && V[5].at_ns == A + 50 * MS + 99 * 90 * MS,
	   "last is the last sample in the window (64, at its time)");
	ok(!V[6].pass && V[6].measured == 100 && V[6].at_ns == A + 50 * MS + 27 * 90 * MS,
	   "no aggregate: every sample must hold; the worst (100, the 28th sample) is reported");
	is_double(V[7].measured, 50, 1e-9, "rate of a counter rising 50/s is 50/s");
	ok(V[7].pass && strcmp(V[7].unit, "/s") == 0, "rate: min 50 passes, unit /s");
	is_double(V[8].measured, 495, 1e-9,
		  "delta over the window (samples 10.1 s .. 20.0 s) is 495");
	ok(V[9].pass && V[9].measured == 97 && V[9].samples == 11,
	   "after dep-loss.start for 1 s: the 11 samples of that second, max 97");
	ok(!V[10].pass && V[10].measured == 500,
	   "no window: the whole run, 500 included, fails max 100");
	ok(!V[11].evaluable && !V[11].pass &&
	       has(V[11].detail,
		   "one sample rate: not evaluable: 1 samples in window [10.003 s, 20.004 s] "
		   "(rate needs 2)"),
	   "rate over one sample: not evaluable, never a silent pass");
	ok(!V[12].evaluable && !V[12].pass && V[12].failed == 21 &&
	       has(V[12].detail,
		   "not evaluable: 0 samples in window [10.003 s, 20.004 s], 21 failed"),
	   "a window of failed samples only: not evaluable, with the failed count");

	/* Without the counter mark, delta is last - first (the same here). */
	R.series[cnt].counter = false;
	eval(x);
	is_double(V[8].measured, 495, 1e-9, "a gauge's delta is last - first");
	fl_experiment_free(x);
}

/* ---- ratio of two counters' increases ------------------------------------ */

static void test_ratio(void)
{
	struct fl_experiment *x =
	    load(HEAD DEP_LOSS "\"expect\":[{\"name\":\"amplification\",\"value\":{\"ratio\":"
			       "[\"client.attempts\",\"client.requests\"]},\"max\":1.12,"
			       "\"during\":\"dep-loss\"}]}");
	size_t att = probe_of(x, "client.attempts"), req = probe_of(x, "client.requests");

	/* Applied at exactly 10 s and reverted at exactly 20 s: the window
	 * holds 10 s of increase.  Outside it attempts rise 3 per request. */
	run(x, 0, 0);
	R.series[att].counter = R.series[req].counter = true;
	for (uint64_t k = 0; k <= 600; k++) {
		double t = (double)k / 10, a;

		a = t <= 10 ? 300 * t : t <= 20 ? 3000 + 110 * (t - 10) : 4100 + 300 * (t - 20);
		put(req, T0 + k * 100 * MS, 100 * t);
		put(att, T0 + k * 100 * MS, a);
	}
	eval(x);
	is_double(V[0].measured, 1.1, 1e-12,
		  "ratio attempts/requests over the window: 1100/1000 = 1.1");
	ok(V[0].pass && fabs(V[0].margin - 0.02) < 1e-12 && strcmp(V[0].unit, "ratio") == 0,
	   "ratio 1.1 <= 1.12 passes with margin 0.02, unit ratio");
	ok(has(V[0].detail, "ratio client.attempts/client.requests 1100/1000 = 1.1"),
	   "ratio: the detail shows both increases");

	/* The target restarts at 15 s: attempts fall to 11 and keep rising. */
	run(x, 0, 0);
	R.series[att].counter = R.series[req].counter = true;
	for (uint64_t k = 0; k <= 600; k++) {
		double t = (double)k / 10, a;

		a = t < 15 ? 110 * t : 11 + 110 * (t - 15);
		put(req, T0 + k * 100 * MS, 100 * t);
		put(att, T0 + k * 100 * MS, a);
	}
	eval(x);
	is_double(V[0].measured, 1.1, 1e-9,
		  "a counter reset inside the window is summed across (1100/1000 = 1.1)");

	run(x, 0, 0);
	R.series[att].counter = R.series[req].counter = true;
	for (uint64_t k = 0; k <= 600; k++) {
		put(req, T0 + k * 100 * MS, 1000);
		put(att, T0 + k * 100 * MS, (double)k);
	}
	eval(x);
	ok(!V[0].evaluable && !V[0].pass &&
	       has(V[0].detail, "ratio denominator client.requests did not increase in window "
				"[10 s, 20 s] (delta 0)"),
	   "ratio: a denominator that did not increase is not evaluable (no division by 0)");

	run(x, 0, 0);
	put(req, T0 + 12 * SEC, 1);
	put(req, T0 + 13 * SEC, 2);
	put(att, T0 + 12 * SEC, 1);
	eval(x);
	ok(!V[0].evaluable &&
	       has(V[0].detail, "ratio numerator client.attempts: 1 samples in window [10 s, 20 s] "
				"(delta needs 2)"),
	   "ratio: a side with one sample is not evaluable, naming the side");
	fl_experiment_free(x);
}

/* ---- never -------------------------------------------------------------- */

static void test_never(void)
{
	struct fl_experiment *x =
	    load(HEAD "\"probes\":{\"breaker\":{\"type\":\"prometheus\",\"metric\":\"b\"}},"
		      "\"expect\":[{\"name\":\"no open early\",\"probe\":\"breaker\","
		      "\"never\":{\"ge\":2},\"after\":\"start\",\"for\":\"5s\"},"
		      "{\"name\":\"no emergency\",\"probe\":\"breaker\",\"never\":{\"ge\":3},"
		      "\"after\":\"start\",\"for\":\"5s\"}]}");
	size_t b = probe_of(x, "breaker");

	run(x, 0, 0);
	for (uint64_t k = 0; k < 100; k++)
		put(b, T0 + k * 100 * MS, k == 32 || k == 45 ? 2 : k == 40 ? 1 : 0);
	eval(x);
	ok(V[0].evaluable && !V[0].pass && V[0].measured == 2 && V[0].at_ns == T0 + 3200 * MS,
	   "never: the first violation (2 at +3.2 s) is the figure and its time");
	ok(has(V[0].detail, "no open early: was 2 at +3.2 s (>= 2)"),
	   "never: the detail names the violating value and when");
	ok(V[1].pass && V[1].measured == 2 && V[1].margin == 1 && V[1].samples == 51,
	   "never >= 3: passes over 51 samples; closest 2, margin 1");
	fl_experiment_free(x);
}

/* ---- recovers ------------------------------------------------------------- */

static void error_series(size_t p, uint64_t bad_until_ms, uint64_t flap_ms)
{
	for (uint64_t ms = 0; ms <= 40000; ms += 100) {
		double v = ms >= 10000 && ms < bad_until_ms ? 0.5 : 0;

		if (ms == flap_ms)
			v = 0.3;
		put(p, T0 + ms * MS, v);
	}
}

static void test_recovers(void)
{
	struct fl_experiment *x =
	    load(HEAD "\"steady_state\":[{\"probe\":\"client.error_rate\",\"max\":0.01}]," DEP_LOSS
		      "\"expect\":[{\"name\":\"back\",\"recovers\":true,\"within\":\"5s\","
		      "\"settle\":\"2s\",\"after\":\"dep-loss.end\"},"
		      "{\"name\":\"back fast\",\"recovers\":true,\"within\":\"1500ms\","
		      "\"settle\":\"2s\",\"after\":\"dep-loss.end\"}]}");
	struct fl_experiment *y =
	    load(HEAD "\"steady_state\":[{\"probe\":\"client.latency_p99\",\"max\":\"100ms\","
		      "\"aggregate\":\"mean\"}]," DEP_LOSS
		      "\"expect\":[{\"name\":\"latency back\",\"recovers\":true,\"within\":\"5s\","
		      "\"settle\":\"2s\",\"after\":\"dep-loss.end\"}]}");
	size_t er = probe_of(x, "client.error_rate");

	run(x, 0, 0);
	error_series(er, 21000, 0);
	eval(x);
	ok(V[0].pass && fabs(V[0].measured - 1.0) < 1e-9 && V[0].at_ns == T0 + 21 * SEC,
	   "recovers: errors stop 1 s after the revert and stay 0 for the 2 s settle: T = 1 s");
	ok(EV[0] == T0 + 21 * SEC, "recovers: the recovery time is the expectation's event");
	ok(V[1].pass && fabs(V[1].margin - 0.5) < 1e-9, "recovers within 1.5 s: margin 0.5 s");

	run(x, 0, 0);
	error_series(er, 21000, 22000);
	eval(x);
	ok(V[0].pass && fabs(V[0].measured - 2.1) < 1e-9,
	   "recovers: a flap at +2 s inside the settle window postpones T to the next sample (2.1 "
	   "s)");
	ok(!V[1].pass && V[1].evaluable && fabs(V[1].measured - 2.1) < 1e-9 &&
	       has(V[1].detail,
		   "only 2.1 s after dep-loss.end, later than the bound 1.5 s (over by "
		   "0.6 s)"),
	   "recovers within 1.5 s with the flap: fail, measured 2.1 s");

	run(x, 0, 0);
	error_series(er, 60000, 0);
	eval(x);
	ok(V[0].evaluable && !V[0].pass && isnan(V[0].measured) && EV[0] == FL_T_NONE &&
	       has(V[0].detail, "did not recover within 5 s after dep-loss.end: "
				"'client.error_rate <= 0.01' worst of 21 samples 0.5"),
	   "recovers: errors never stop: fail, naming the check and its worst value");

	run(x, 0, 0);
	error_series(er, 21000, 0);
	R.end_ns = T0 + 21 * SEC;
	eval(x);
	ok(!V[0].evaluable &&
	       has(V[0].detail,
		   "the run ended 1 s after dep-loss.end, before a settle window of 2 s "
		   "fits"),
	   "recovers: a run too short for the settle window is not evaluable");

	run(y, 0, 0);
	{
		size_t lp = probe_of(y, "client.latency_p99");

		for (uint64_t ms = 0; ms <= 40000; ms += 100)
			put(lp, T0 + ms * MS, ms >= 10000 && ms < 21000 ? 1.0 : 0);
	}
	eval(y);
	ok(V[0].pass && fabs(V[0].measured - 0.8) < 1e-9,
	   "recovers with a mean check: mean over [T, T+2 s] <= 0.1 s first at T = 0.8 s (2 of 21 "
	   "samples slow)");
	fl_experiment_free(x);
	fl_experiment_free(y);
}

/* ---- order and chaining ---------------------------------------------------- */

static void test_order(void)
{
	struct fl_experiment *x = load(
	    HEAD "\"probes\":{\"breaker\":{\"type\":\"prometheus\",\"metric\":\"b\"}}," DEP_LOSS
		 "\"expect\":["
		 "{\"name\":\"stays open\",\"probe\":\"breaker\",\"holds\":{\"eq\":2},"
		 "\"after\":\"breaker opens\",\"for\":\"1s\"},"
		 "{\"name\":\"breaker opens\",\"probe\":\"breaker\",\"becomes\":{\"eq\":2},"
		 "\"within\":\"2s\",\"after\":\"dep-loss.start\"},"
		 "{\"name\":\"opens before end\",\"order\":[\"breaker opens\",\"dep-loss.end\"]},"
		 "{\"name\":\"end before opens\",\"order\":[\"dep-loss.end\",\"breaker opens\"]},"
		 "{\"name\":\"closes\",\"probe\":\"breaker\",\"becomes\":{\"eq\":0},"
		 "\"within\":\"3s\",\"after\":\"dep-loss.end\"},"
		 "{\"name\":\"closes after opens\",\"order\":[\"breaker opens\",\"closes\"]}]}");
	size_t b = probe_of(x, "breaker");
	uint64_t A = T0 + 10 * SEC, Rv = T0 + 20 * SEC;
	struct rs_err err = { "" };
	struct fl_runlog bad;

	run(x, 0, 0);
	for (uint64_t t = A - 2 * SEC; t < Rv + 5 * SEC; t += 20 * MS)
		put(b, t, t >= A + 1240 * MS && t < Rv + 500 * MS ? 2 : 0);
	eval(x);
	ok(V[1].pass && fabs(V[1].measured - 1.24) < 1e-9 && EV[1] == A + 1240 * MS,
	   "chaining: 'breaker opens' became 2 after 1.24 s");
	ok(V[0].pass && V[0].evaluable && V[0].samples == 51,
	   "chaining: 'stays open' (written first) is evaluated after 'breaker opens', over "
	   "[opens, opens + 1 s]: 51 samples");
	ok(V[2].pass && fabs(V[2].measured - (secs_between(A + 1240 * MS, Rv))) < 1e-9,
	   "order: breaker opens before dep-loss.end, by 8.76 s");
	ok(!V[3].pass && V[3].evaluable &&
	       has(V[3].detail, "dep-loss.end at +20 s did not come before breaker opens at "
				"+11.24 s"),
	   "order: the reverse order fails, with both times");
	ok(V[4].pass && fabs(V[4].measured - 0.5) < 1e-9 && V[5].pass,
	   "order between two expectation events: closes after opens");
	R.actions[0].reverted_ns = A + 1240 * MS;
	eval(x);
	ok(V[2].evaluable && !V[2].pass && V[2].measured == 0,
	   "order: two events at the same instant are not 'before': fail, measured 0 s");

	run(x, 0, 0);
	for (uint64_t t = A - 2 * SEC; t < Rv + 5 * SEC; t += 20 * MS)
		put(b, t, 0);
	eval(x);
	ok(V[1].evaluable && !V[1].pass, "never opens: 'breaker opens' fails");
	ok(!V[0].evaluable && has(V[0].detail, "event 'breaker opens' never happened"),
	   "chaining: a window after an event that never happened is not evaluable");
	ok(!V[2].evaluable && !V[2].pass &&
	       has(V[2].detail, "opens before end: not evaluable: event 'breaker opens' never "
				"happened"),
	   "order: an expectation event that never happened fails with that reason");

	/* A cycle the validator would refuse: opens waits for stays open. */
	x->expects[1].after = (struct fl_event){ FL_EV_EXPECT, 0, FL_T_DYNAMIC };
	eval(x);
	ok(!V[0].evaluable && !V[1].evaluable && has(V[1].detail, "cycle of expectations") &&
	       !V[2].evaluable && V[4].evaluable,
	   "a cycle fails its members and their dependants as not evaluable; others are judged");

	if (fl_runlog_init(&bad, x->nprobes + 1, x->nactions, NULL) != 0)
		bail_out("runlog_init");
	ok(fl_eval_expects(x, &bad, V, NULL, NULL, &err) == -EINVAL &&
	       has(err.msg, "recorded 2 series for 1 probes"),
	   "a runlog that does not match the experiment is refused with -EINVAL");
	fl_runlog_release(&bad);
	fl_experiment_free(x);
}

/* ---- steady-state checks ---------------------------------------------------- */

static void test_steady(void)
{
	struct fl_experiment *x = load(
	    HEAD "\"steady_state\":[{\"probe\":\"client.error_rate\",\"max\":0.01},"
		 "{\"probe\":\"client.latency_p99\",\"max\":\"50ms\",\"aggregate\":\"p99\"}]}");
	size_t er = probe_of(x, "client.error_rate"), lp = probe_of(x, "client.latency_p99");
	struct fl_verdict s[2];
	struct rs_err err = { "" };
	int rc;

	run(x, 0, 0);
	for (uint64_t ms = 0; ms <= 5000; ms += 100) {
		put(er, T0 + ms * MS, ms == 2500 ? 0.02 : 0.001);
		put(lp, T0 + ms * MS, 0.010 + (double)(ms % 1000) / 1e5);
	}
	rc = fl_eval_steady(x, &R, T0 + SEC, T0 + 2 * SEC, s, NULL, &err);
	ok(rc == 0 && s[0].pass && s[1].pass && strcmp(s[0].kind, "steady") == 0,
	   "baseline [1 s, 2 s]: both checks hold");
	is_double(s[0].margin, 0.009, 1e-12, "baseline: error rate worst 0.001, margin 0.009");
	ok(s[1].measured == 0.019 && strcmp(s[1].unit, "s") == 0,
	   "baseline: p99 of latency 0.019 s (unit s)");
	rc = fl_eval_steady(x, &R, T0 + 2 * SEC, T0 + 3 * SEC, s, NULL, &err);
	ok(rc == 0 && !s[0].pass && s[0].measured == 0.02 && s[0].at_ns == T0 + 2500 * MS,
	   "final [2 s, 3 s]: 0.02 at +2.5 s fails max 0.01");
	diag("%s", s[0].detail);
	rc = fl_eval_steady(x, &R, FL_T_NONE, T0, s, NULL, &err);
	ok(rc == 0 && !s[0].evaluable && !s[0].pass, "a window that never began is not evaluable");
	fl_experiment_free(x);
}

/* ---- aborts ----------------------------------------------------------------- */

static void test_abort(void)
{
	struct fl_experiment *x = load(
	    HEAD
	    "\"abort\":[{\"probe\":\"client.error_rate\",\"max\":0.5,\"for\":\"1s\"},"
	    "{\"probe\":\"client.error_rate\",\"max\":0.5,\"aggregate\":\"mean\",\"for\":\"1s\"},"
	    "{\"probe\":\"client.error_rate\",\"max\":0.5}]}");
	struct fl_eval_abort a[3];
	struct fl_verdict v;
	struct rs_err err = { "" };
	uint64_t met[3] = { 0, 0, 0 };
	int early = 0, bad = 0, rc;

	for (size_t i = 0; i < 3; i++)
		if (fl_eval_abort_init(&a[i], x, i, NULL, &err) != 0)
			bail_out("abort init: %s", err.msg);
	for (uint64_t ms = 0; ms <= 6000; ms += 100) {
		struct fl_sample s = { T0 + ms * MS, 0, true };

		if (ms >= 2000 && ms < 2500)
			s.value = 0.9; /* a streak of 0.4 s */
		else if (ms >= 2500 && ms < 3000)
			s.value = 0.1; /* ends it */
		else if (ms >= 3000)
			s.value = 0.9;
		if (ms == 3500)
			s.ok = false; /* does not end the streak */
		for (size_t i = 0; i < 3; i++) {
			rc = fl_eval_abort_feed(&a[i], &s);
			if (rc < 0)
				bad++;
			if (rc == 1 && !met[i])
				met[i] = ms;
		}
		if (ms == 3900 && a[0].met)
			early++;
	}
	is_int(bad, 0, "feeding 61 samples in order never errs");
	is_int((long long)met[0], 4000,
	       "abort for 1 s: met at exactly 4.0 s, 1 s after the streak began at 3.0 s");
	ok(!early && a[0].met_ns == T0 + 4 * SEC && a[0].since_ns == T0 + 3 * SEC,
	   "abort: not met at 3.9 s; met_ns and the streak's start are recorded");
	is_int((long long)met[1], 3000,
	       "abort on the mean over the last 1 s: met at 3.0 s (5.9/11 = 0.536 > 0.5), not at "
	       "2.9 s");
	is_int((long long)met[2], 2000, "abort with for 0: met at the first violating sample");
	fl_eval_abort_verdict(&a[0], T0, &v);
	ok(!v.pass && v.measured == 0.9 && v.at_ns == T0 + 4 * SEC &&
	       has(v.detail, "client.error_rate <= 0.5: violated for 1 s from +3 s, met at +4 s "
			     "(value 0.9)"),
	   "abort verdict: figure, time and detail");
	{
		struct fl_sample old = { T0, 0, true };

		is_int(fl_eval_abort_feed(&a[0], &old), -EINVAL,
		       "a sample older than the last one is refused");
	}
	ok(fl_eval_abort_init(&a[0], x, 3, NULL, &err) == -EINVAL && has(err.msg, "abort 3"),
	   "an abort index out of range is refused");
	for (size_t i = 0; i < 3; i++)
		fl_eval_abort_release(&a[i]);
	fl_experiment_free(x);
}

/* ---- allocation failures -------------------------------------------------------- */

static void test_nomem(void)
{
	struct fl_experiment *x = load(
	    HEAD "\"probes\":{\"lat\":{\"type\":\"prometheus\",\"metric\":\"lat\"}}," DEP_LOSS
		 "\"expect\":[{\"name\":\"p99\",\"probe\":\"lat\",\"max\":1,\"aggregate\":\"p99\","
		 "\"during\":\"dep-loss\"}]}");
	struct failalloc fa;
	struct rs_err err = { "" };
	int rc, bad = 0, n;

	run(x, 0, 0);
	for (uint64_t ms = 0; ms <= 30000; ms += 100)
		put(probe_of(x, "lat"), T0 + ms * MS, 0.5);
	for (n = 1;; n++) {
		failalloc_init(&fa, n);
		rc = fl_eval_expects(x, &R, V, NULL, &fa.alloc, &err);
		if (rc == 0)
			break;
		bad |= rc != -ENOMEM || fa.live != 0;
		if (n > 10)
			break;
	}
	ok(!bad && rc == 0 && fa.live == 0 && V[0].pass,
	   "each of the %d allocations failing gives -ENOMEM and leaks nothing; then it passes",
	   n - 1);
	fl_experiment_free(x);
}

int main(void)
{
	plan(78);
	alarm(30);
	test_becomes();
	test_holds();
	test_ratio();
	test_never();
	test_recovers();
	test_order();
	test_steady();
	test_abort();
	test_nomem();
	fl_runlog_release(&R);
	return exit_status();
}
