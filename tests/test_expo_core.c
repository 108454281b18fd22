/* One exposition of every exported object of the core, as a service built
 * on it would serve at /metrics: it must parse as Prometheus text (strict
 * checker), carry every name DESIGN.md section 6 promises, and match the
 * golden file tests/golden/expo_core.prom byte for byte.  Regenerate the
 * golden file after an intended change with FL_UPDATE_GOLDEN=1. */
#include "tests/tap.h"
#include "tests/promtext.h"

#include "resilience/breaker.h"
#include "resilience/budget.h"
#include "resilience/bulkhead.h"
#include "resilience/clock.h"
#include "resilience/coalesce.h"
#include "resilience/control.h"
#include "resilience/detector.h"
#include "resilience/errbudget.h"
#include "resilience/expo.h"
#include "resilience/hist.h"
#include "resilience/idem.h"
#include "resilience/retry.h"
#include "resilience/shed.h"

#define GOLDEN "tests/golden/expo_core.prom"
#define S      RS_NS_PER_SEC

static const char *const design_names[] = {
	"resilience_breaker_state{",
	"resilience_retry_budget_exhausted{",
	"resilience_retry_budget_ratio{",
	"resilience_metastable{",
	"resilience_shed_fraction{",
	"resilience_bulkhead_in_flight{",
	"resilience_error_budget_remaining{",
	"resilience_jitter_enabled{",
	"resilience_breaker_transitions_total{",
	"resilience_breaker_calls_total{",
	"resilience_retries_total{",
	"resilience_shed_total{",
	"resilience_coalesced_total{",
	NULL,
};

static void noop_bulkhead(struct rs_bulkhead_waiter *w, enum rs_bulkhead_result result)
{
	(void)w;
	(void)result;
}

static void noop_coalesce(struct rs_coalesce_waiter *w, int status, const void *res, size_t len)
{
	(void)w;
	(void)status;
	(void)res;
	(void)len;
}

static bool always_retryable(void *ctx, int error)
{
	(void)ctx;
	(void)error;
	return true;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

int main(void)
{
	static char buf[1 << 16];
	struct rs_err err = { "" };
	struct rs_breaker *br;
	struct rs_budget *bu;
	struct rs_retry *re;
	struct rs_detector *de;
	struct rs_shed *sh;
	struct rs_bulkhead *bh;
	struct rs_errbudget *eb;
	struct rs_coalesce *co;
	struct rs_idem *id;
	struct rs_hist *hi;
	struct rs_detector_opts dopts;
	struct rs_bulkhead_waiter bw[3];
	struct rs_coalesce_waiter cw[3];
	struct rs_retry_decision dec;
	struct rs_expo e;
	struct rs_idem_result dup;
	uint64_t t = 1000 * S;
	char why[256] = "", *golden;
	int rc = 0, n;

	plan(5);
	rc |= rs_breaker_new(&br,
			     &(struct rs_breaker_opts){ .name = "dependency",
							.seed = 1,
							.failure_rate_threshold = 0.5,
							.window_kind = RS_WINDOW_COUNT,
							.window_size = 10,
							.minimum_calls = 10,
							.open_ns = 5 * S,
							.half_open_calls = 2 },
			     &err);
	rc |=
	    rs_budget_new(&bu,
			  &(struct rs_budget_opts){
			      .kind = RS_BUDGET_RATIO,
			      .name = "dependency",
			      .ratio = { .ratio = 0.1, .window_ns = 10 * S, .min_requests = 10 } },
			  &err);
	rc |= rs_retry_new(&re,
			   &(struct rs_retry_opts){ .name = "dependency",
						    .max_attempts = 3,
						    .metastable_max_attempts = 2,
						    .health_factor_min = 1,
						    .health_factor_max = 10,
						    .error_rate_threshold = 0.5,
						    .metastable_penalty = 2,
						    .max_delay_ns = 2 * S,
						    .backoff = { .strategy = RS_BACKOFF_FULL,
								 .base_ns = 10 * RS_NS_PER_MS,
								 .cap_ns = S,
								 .seed = 1 },
						    .retryable = always_retryable,
						    .budget = bu },
			   &err);
	rs_detector_opts_default(&dopts, RS_DETECTOR_TRIGGER_AWARE);
	dopts.name = "service";
	rc |= rs_detector_new(&de, &dopts, &err);
	rc |= rs_shed_new(&sh, &(struct rs_shed_opts){ .name = "ingress", .seed = 1 }, &err);
	rc |= rs_bulkhead_new(
	    &bh,
	    &(struct rs_bulkhead_opts){
		.name = "dependency", .max_concurrent = 2, .max_queue = 4, .max_wait_ns = S },
	    &err);
	rc |= rs_errbudget_new(&eb,
			       &(struct rs_errbudget_opts){ .name = "availability",
							    .slo = 0.999,
							    .window_ns = 30 * 24 * 3600 * S },
			       &err);
	rc |= rs_coalesce_new(
	    &co,
	    &(struct rs_coalesce_opts){ .name = "items", .capacity = 16, .key_max = 32, .seed = 1 },
	    &err);
	rc |= rs_idem_new(&id,
			  &(struct rs_idem_opts){ .name = "writes",
						  .capacity = 16,
						  .key_max = 32,
						  .result_max = 64,
						  .ttl_ns = 60 * S,
						  .seed = 1 },
			  &err);
	rc |= rs_hist_new(&hi, &(struct rs_hist_opts){ RS_HIST_LATENCY_OPTS }, &err);
	if (rc)
		bail_out("cannot construct the core objects: %s", err.msg);

	/* A little history, so counters and gauges are not all zero: the
	 * breaker trips, retries are decided, a request is shed, waiters queue,
	 * errors burn budget, a key coalesces, a write repeats. */
	for (int i = 0; i < 10; i++) {
		if (rs_breaker_allow(br, t))
			rs_breaker_record(br, i >= 5, RS_NS_PER_MS, t);
		rs_budget_record_request(bu, t);
		rs_budget_record_outcome(bu, false, t);
		rs_hist_record(hi, (uint64_t)(i + 1) * RS_NS_PER_MS);
	}
	rs_retry_decide(
	    re,
	    &(struct rs_retry_input){ .attempt = 1, .now_ns = t, .breaker = rs_breaker_state(br) },
	    &dec);
	rs_retry_decide(re, &(struct rs_retry_input){ .attempt = 3, .now_ns = t }, &dec);
	if (rs_shed_set_score(sh, 0.95, &err) < 0)
		bail_out("%s", err.msg);
	for (int i = 0; i < 100; i++)
		rs_shed_admit(sh, RS_SHED_LOW, t);
	for (int i = 0; i < 3; i++) {
		rs_bulkhead_waiter_init(&bw[i], noop_bulkhead, NULL);
		rs_bulkhead_try_acquire(bh, &bw[i], t);
		rs_coalesce_waiter_init(&cw[i], noop_coalesce, NULL);
		rc |= rs_coalesce_begin(co, "item-1", 6, &cw[i]) < 0;
	}
	rs_errbudget_record(eb, 990, 10, t);
	rc |= rs_idem_check(id, "k1", 2, t, &dup) < 0;
	rc |= rs_idem_complete(id, "k1", 2, 201, "created", 7, t) < 0;
	rc |= rs_idem_check(id, "k1", 2, t, &dup) < 0;
	if (rc)
		bail_out("cannot exercise coalesce/idem");
	rs_detector_update(de, &(struct rs_detector_sample){ .now_ns = t,
							     .latency_ns = RS_NS_PER_MS,
							     .offered_load = 100,
							     .goodput = 100,
							     .throughput = 100,
							     .retry_amplification = 1 });

	rs_expo_init(&e, buf, sizeof(buf));
	rs_breaker_expo(&e, &br, 1);
	rs_budget_expo(&e, (const struct rs_budget *const *)&bu, 1, t);
	rs_retry_expo(&e, (const struct rs_retry *const *)&re, 1);
	rs_detector_expo(&e, (const struct rs_detector *const *)&de, 1);
	rs_shed_expo(&e, (const struct rs_shed *const *)&sh, 1, t);
	rs_bulkhead_expo(&e, (const struct rs_bulkhead *const *)&bh, 1);
	rs_errbudget_expo(&e, (const struct rs_errbudget *const *)&eb, 1, t);
	rs_coalesce_expo(&e, (const struct rs_coalesce *const *)&co, 1);
	rs_idem_expo(&e, (const struct rs_idem *const *)&id, 1);
	rs_control_expo(&e, NULL, "service");
	rs_expo_family(&e, "resilience_call_duration_seconds", RS_EXPO_HISTOGRAM,
		       "dependency call latency");
	rc = rs_hist_expo(&e, "resilience_call_duration_seconds",
			  (const char *[]){ "name", "dependency", NULL }, hi,
			  (const double[]){ 0.001, 0.005, 0.01, 0.1 }, 4);
	is_int(rs_expo_finish(&e) | rc, 0, "every object's exposition fits 64 KiB");

	n = promtext_check(buf, why, sizeof(why));
	ok(n > 0, "the whole exposition parses as Prometheus text (%d samples)", n);
	if (n < 0)
		diag("%s", why);
	{
		int missing = 0;

		for (int i = 0; design_names[i]; i++)
			if (!strstr(buf, design_names[i])) {
				diag("missing %s", design_names[i]);
				missing++;
			}
		is_int(missing, 0, "all 13 metric names of DESIGN.md section 6 are present");
	}
	{
		double v = -1;

		ok(promtext_value(buf, "resilience_breaker_state{name=\"dependency\"}", &v) &&
		       v == 2,
		   "the breaker that tripped reads state 2 (open)");
	}

	if (getenv("FL_UPDATE_GOLDEN")) {
		FILE *f = fopen(GOLDEN, "wb");

		if (!f || fwrite(buf, 1, strlen(buf), f) != strlen(buf))
			bail_out("cannot write %s", GOLDEN);
		fclose(f);
		diag("wrote %s", GOLDEN);
	}
	golden = slurp(GOLDEN);
	if (!golden)
		golden = slurp("../" GOLDEN);
	ok(golden && strcmp(golden, buf) == 0, "the exposition matches %s byte for byte", GOLDEN);
	if (golden && strcmp(golden, buf) != 0) {
		size_t i = 0;

		while (golden[i] && golden[i] == buf[i])
			i++;
		diag("first difference at byte %zu: golden '%.40s' vs '%.40s'", i, golden + i,
		     buf + i);
	}
	free(golden);

	if (rs_coalesce_finish(co, "item-1", 6, 0, NULL, 0) != 3)
		diag("coalesce_finish did not call back 3 waiters");
	rs_hist_free(hi);
	rs_idem_free(id);
	rs_coalesce_free(co);
	rs_errbudget_free(eb);
	rs_bulkhead_free(bh);
	rs_shed_free(sh);
	rs_detector_free(de);
	rs_retry_free(re);
	rs_budget_free(bu);
	rs_breaker_free(br);
	return exit_status();
}
