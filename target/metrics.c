/* faultline-target's /metrics and /state: see metrics.h. */
#include "target/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "resilience/clock.h"

const double fl_latency_le[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
				 0.1,	 0.25,	0.5,	1,     2.5,  5,	    10 };
const size_t fl_latency_nle = sizeof(fl_latency_le) / sizeof(fl_latency_le[0]);

static const int code_values[FL_NCODES - 1] = { FL_CODES_LIST };

const char *fl_route_name(enum fl_route r)
{
	static const char *const names[FL_NROUTES] = { "item_get", "item_post", "stock", "healthz",
						       "metrics",  "state",	"admin", "other" };

	return (unsigned)r < FL_NROUTES ? names[r] : "other";
}

uint64_t fl_requests_route_total(const struct fl_requests *r, enum fl_route route)
{
	uint64_t n = 0;

	for (unsigned i = 0; i < FL_NCODES; i++)
		n += r->n[route][i];
	return n;
}

/* ---- /proc/self ---------------------------------------------------------------- */

static ssize_t read_small(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	do
		n = read(fd, buf, size - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		n = -errno;
	else
		buf[n] = '\0';
	close(fd);
	return n;
}

int fl_proc_read(struct fl_proc *p)
{
	char buf[256];
	unsigned long long size, resident;
	long page = sysconf(_SC_PAGESIZE);
	struct rusage ru;
	ssize_t n;

	memset(p, 0, sizeof(*p));
	/* getrusage is one syscall; /proc/self/stat would be three and a
	 * formatted page (a scrape reads this every time). */
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return -errno;
	p->cpu_seconds = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
			 (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	if ((n = read_small("/proc/self/statm", buf, sizeof(buf))) < 0)
		return (int)n;
	if (sscanf(buf, "%llu %llu", &size, &resident) != 2)
		return -EPROTO;
	p->rss_bytes = resident * (uint64_t)(page > 0 ? page : 4096);
	return 0;
}

/* ---- the text buffer ------------------------------------------------------------ */

int fl_textbuf_expo(struct fl_textbuf *tb, void (*fn)(struct rs_expo *e, void *ctx), void *ctx,
		    size_t *len)
{
	struct rs_expo e;

	if (!tb->buf) {
		tb->cap = 64 * 1024;
		if (!(tb->buf = malloc(tb->cap)))
			return -ENOMEM;
	}
	for (;;) {
		size_t want;
		char *nb;

		rs_expo_init(&e, tb->buf, tb->cap);
		fn(&e, ctx);
		if (rs_expo_finish(&e) == 0) {
			*len = e.len;
			return 0;
		}
		want = e.len + 1 + e.len / 4;
		if (want > FL_TEXTBUF_MAX)
			return -ENOBUFS;
		if (!(nb = realloc(tb->buf, want)))
			return -ENOMEM;
		tb->buf = nb;
		tb->cap = want;
	}
}

void fl_textbuf_release(struct fl_textbuf *tb)
{
	free(tb->buf);
	tb->buf = NULL;
	tb->cap = 0;
}

/* ---- exposition helpers ----------------------------------------------------------- */

static void one(struct rs_expo *e, const char *name, enum rs_expo_type t, const char *help,
		double v)
{
	rs_expo_family(e, name, t, help);
	rs_expo_sample(e, name, NULL, v);
}

static void gauge(struct rs_expo *e, const char *name, const char *help, double v)
{
	one(e, name, RS_EXPO_GAUGE, help, v);
}

static void counter(struct rs_expo *e, const char *name, const char *help, uint64_t v)
{
	one(e, name, RS_EXPO_COUNTER, help, (double)v);
}

static void expo_process(struct rs_expo *e, uint64_t start_ns, uint64_t now_ns)
{
	struct fl_proc p;

	if (fl_proc_read(&p) < 0) /* zeros when /proc is missing */
		memset(&p, 0, sizeof(p));
	one(e, "process_cpu_seconds_total", RS_EXPO_COUNTER,
	    "user and system CPU time of the process", p.cpu_seconds);
	gauge(e, "process_resident_memory_bytes", "resident set size of the process",
	      (double)p.rss_bytes);
	gauge(e, "faultline_uptime_seconds", "seconds since the role started",
	      (double)(now_ns - start_ns) / 1e9);
}

static void expo_requests(struct rs_expo *e, const struct fl_requests *r)
{
	char code[16];

	rs_expo_family(e, "faultline_requests_total", RS_EXPO_COUNTER,
		       "requests answered, by route and status (pairs seen so far)");
	for (unsigned route = 0; route < FL_NROUTES; route++)
		for (unsigned i = 0; i < FL_NCODES; i++) {
			if (!r->n[route][i])
				continue;
			if (i < FL_NCODES - 1)
				snprintf(code, sizeof(code), "%d", code_values[i]);
			else
				snprintf(code, sizeof(code), "other");
			rs_expo_sample(e, "faultline_requests_total",
				       (const char *const[]){ "route", fl_route_name(route), "code",
							      code, NULL },
				       (double)r->n[route][i]);
		}
}

static void expo_http(struct rs_expo *e, const struct fl_http_stats *h,
		      const struct fl_http_stats *a)
{
	const struct {
		const char *name, *help;
		int gauge;
		size_t off;
	} f[] = {
		{ "faultline_http_requests_in_flight", "requests received and not answered yet", 1,
		  offsetof(struct fl_http_stats, pending) },
		{ "faultline_http_connections", "connections open", 1,
		  offsetof(struct fl_http_stats, open) },
		{ "faultline_http_accepted_total", "connections accepted", 0,
		  offsetof(struct fl_http_stats, accepted) },
		{ "faultline_http_dropped_total", "answers dropped because the client had gone", 0,
		  offsetof(struct fl_http_stats, dropped) },
		{ "faultline_http_bad_requests_total", "malformed requests (400)", 0,
		  offsetof(struct fl_http_stats, bad_request) },
		{ "faultline_http_too_large_total", "headers (431) or bodies (413) over the limits",
		  0, 0 },
	};

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		rs_expo_family(e, f[i].name, f[i].gauge ? RS_EXPO_GAUGE : RS_EXPO_COUNTER,
			       f[i].help);
		for (int k = 0; k < 2; k++) {
			const struct fl_http_stats *s = k ? a : h;
			double v;

			if (!s)
				continue;
			if (f[i].off == 0)
				v = (double)(s->header_too_large + s->body_too_large);
			else
				v = (double)*(const uint64_t *)((const char *)s + f[i].off);
			rs_expo_sample(e, f[i].name,
				       (const char *const[]){ "port", k ? "admin" : "http", NULL },
				       v);
		}
	}
	gauge(e, "faultline_requests_in_flight",
	      "requests received and not answered yet (http port)", h ? (double)h->pending : 0);
}

static void expo_hist(struct rs_expo *e, const char *name, const char *help, const char *route,
		      const struct rs_hist *h)
{
	if (!h)
		return;
	rs_expo_family(e, name, RS_EXPO_HISTOGRAM, help);
	/* Only -EINVAL for a bad name or bounds, which are fixed here. */
	if (rs_hist_expo(e, name, route ? (const char *const[]){ "route", route, NULL } : NULL, h,
			 fl_latency_le, fl_latency_nle) < 0)
		rs_expo_raw(e, "# histogram not written: bad bounds\n");
}

static void expo_defenses(struct rs_expo *e, const struct fl_service_view *v)
{
	const struct {
		const char *name;
		bool on;
	} d[] = { { "breaker", v->defense_breaker },   { "budget", v->defense_budget },
		  { "jitter", v->defense_jitter },     { "shed", v->defense_shed },
		  { "detector", v->defense_detector }, { "coalesce", v->defense_coalesce } };

	rs_expo_family(e, "faultline_defense_enabled", RS_EXPO_GAUGE,
		       "1 when the configuration enables the defense, 0 when it is removed");
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		rs_expo_sample(e, "faultline_defense_enabled",
			       (const char *const[]){ "defense", d[i].name, NULL }, d[i].on);
}

/* ---- the service ------------------------------------------------------------------ */

void fl_metrics_service(struct rs_expo *e, void *view)
{
	const struct fl_service_view *v = view;
	const struct fl_service_counters *c = v->counters;
	const struct fl_cache_stats *cs = fl_cache_stats(v->cache);
	const struct rs_detector *dets[2] = { v->trigger_detector, v->multi_detector };
	const struct rs_detector_sample *s = v->last_sample;
	uint64_t now = rs_now_ns();

	rs_expo_family(e, "faultline_info", RS_EXPO_GAUGE, "the role this process runs");
	rs_expo_sample(e, "faultline_info", (const char *const[]){ "role", "service", NULL }, 1);
	expo_process(e, v->start_ns, now);
	expo_defenses(e, v);
	rs_control_expo(e, v->control, "service");
	rs_breaker_expo(e, &v->breaker, 1);
	if (v->budget)
		rs_budget_expo(e, &v->budget, 1, now);
	rs_retry_expo(e, &v->retry, 1);
	if (v->shed)
		rs_shed_expo(e, &v->shed, 1, now);
	rs_bulkhead_expo(e, &v->bulkhead, 1);
	if (v->coalesce)
		rs_coalesce_expo(e, &v->coalesce, 1);
	rs_idem_expo(e, &v->idem, 1);
	rs_detector_expo(e, dets, 2);

	expo_requests(e, v->requests);
	expo_http(e, v->http, v->admin);
	expo_hist(e, "faultline_request_duration_seconds",
		  "GET /item latency, arrival to answer, every outcome", "item_get", v->latency);
	expo_hist(e, "faultline_dependency_duration_seconds",
		  "dependency attempts, send to answer or failure", NULL, v->dep_latency);

	counter(e, "faultline_cache_hits_total", "item cache hits", cs->hits);
	counter(e, "faultline_cache_misses_total", "item cache misses (expired included)",
		cs->misses);
	counter(e, "faultline_cache_expired_total", "gets that found an expired entry",
		cs->expired);
	counter(e, "faultline_cache_evictions_total", "entries evicted by the LRU bounds",
		cs->evictions);
	counter(e, "faultline_cache_flushed_total", "entries removed by admin flushes",
		cs->flushed);
	gauge(e, "faultline_cache_entries", "entries in the item cache",
	      (double)fl_cache_count(v->cache));
	gauge(e, "faultline_cache_bytes", "key and value bytes in the item cache",
	      (double)fl_cache_bytes(v->cache));

	counter(e, "faultline_dependency_calls_total",
		"dependency calls (one per fetch; retries not counted)", c->dep_calls);
	rs_expo_family(e, "faultline_dependency_attempts_total", RS_EXPO_COUNTER,
		       "attempts sent to the dependency, by result");
	{
		const struct {
			const char *r;
			uint64_t v;
		} a[] = { { "ok", c->dep_ok },
			  { "timeout", c->dep_timeouts },
			  { "error", c->dep_errors },
			  { "bad_status", c->dep_bad_status } };

		for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++)
			rs_expo_sample(e, "faultline_dependency_attempts_total",
				       (const char *const[]){ "result", a[i].r, NULL },
				       (double)a[i].v);
	}
	rs_expo_family(e, "faultline_dependency_refused_total", RS_EXPO_COUNTER,
		       "attempts refused before reaching the dependency, by whom");
	rs_expo_sample(e, "faultline_dependency_refused_total",
		       (const char *const[]){ "by", "breaker", NULL }, (double)c->breaker_rejected);
	rs_expo_sample(e, "faultline_dependency_refused_total",
		       (const char *const[]){ "by", "bulkhead_full", NULL },
		       (double)c->bulkhead_rejected);
	rs_expo_sample(e, "faultline_dependency_refused_total",
		       (const char *const[]){ "by", "bulkhead_wait", NULL },
		       (double)c->bulkhead_timed_out);
	counter(e, "faultline_dependency_retries_total", "retries scheduled", c->retries);
	counter(e, "faultline_overloaded_total",
		"requests refused (503) because request.max_in_flight were held", c->overloaded);
	counter(e, "faultline_file_reads_total", "item files read through io_uring", c->file_reads);
	counter(e, "faultline_file_read_errors_total", "item file reads that failed (404 included)",
		c->file_read_errors);
	counter(e, "faultline_file_writes_total", "item files written and fsynced", c->file_writes);
	counter(e, "faultline_file_write_errors_total", "item file writes that failed",
		c->file_write_errors);
	gauge(e, "faultline_pending", "item requests held now (waiting for the file or dependency)",
	      (double)c->pending);
	gauge(e, "faultline_queue_depth", "dependency calls waiting for a bulkhead slot",
	      (double)rs_bulkhead_queued(v->bulkhead));
	gauge(e, "faultline_trigger_active", "the trigger flag set by POST /admin/trigger",
	      c->trigger_active);
	if (v->upstream) {
		gauge(e, "faultline_upstream_connections", "connections to the dependency",
		      v->upstream->open);
		counter(e, "faultline_upstream_busy_total",
			"requests refused by the connection pool (its queue was full)",
			v->upstream->busy);
	}
	if (v->uring) {
		gauge(e, "faultline_uring_in_progress", "io_uring file operations in progress",
		      v->uring->in_progress);
		gauge(e, "faultline_uring_waiting",
		      "io_uring file operations waiting for admission", v->uring->waiting);
		counter(e, "faultline_uring_wakeups_total", "eventfd wake-ups of the loop",
			v->uring->wakeups);
	}
	if (s) {
		gauge(e, "faultline_sample_offered_load", "GET /item arrivals/s, last period",
		      s->offered_load);
		gauge(e, "faultline_sample_goodput", "successful GET /item/s, last period",
		      s->goodput);
		gauge(e, "faultline_sample_latency_p99_seconds", "GET /item p99, last period",
		      s->latency_ns == UINT64_MAX ? NAN : (double)s->latency_ns / 1e9);
		gauge(e, "faultline_sample_error_rate", "failed / answered GET /item, last period",
		      s->error_rate);
		gauge(e, "faultline_sample_retry_amplification",
		      "dependency attempts / calls, last period", s->retry_amplification);
		gauge(e, "faultline_sample_cpu", "process CPU utilisation, last period", s->cpu);
	}
}

static cJSON *add_obj(cJSON *parent, const char *name)
{
	return cJSON_AddObjectToObject(parent, name);
}

static void num(cJSON *o, const char *name, double v)
{
	if (isfinite(v))
		cJSON_AddNumberToObject(o, name, v);
	else
		cJSON_AddNullToObject(o, name);
}

static void state_process(cJSON *root, uint64_t start_ns)
{
	struct fl_proc p;
	cJSON *o = add_obj(root, "process");

	if (fl_proc_read(&p) < 0)
		memset(&p, 0, sizeof(p));
	num(o, "cpu_seconds", p.cpu_seconds);
	num(o, "rss_bytes", (double)p.rss_bytes);
	num(o, "uptime_seconds", (double)(rs_now_ns() - start_ns) / 1e9);
}

static void state_requests(cJSON *root, const struct fl_requests *r, const struct fl_http_stats *h)
{
	cJSON *o = add_obj(root, "requests");

	for (unsigned route = 0; route < FL_NROUTES; route++) {
		cJSON *ro = NULL;
		char code[16];

		for (unsigned i = 0; i < FL_NCODES; i++) {
			if (!r->n[route][i])
				continue;
			if (!ro)
				ro = add_obj(o, fl_route_name(route));
			if (i < FL_NCODES - 1)
				snprintf(code, sizeof(code), "%d", code_values[i]);
			else
				snprintf(code, sizeof(code), "other");
			num(ro, code, (double)r->n[route][i]);
		}
	}
	if (h) {
		num(o, "in_flight", (double)h->pending);
		num(o, "connections", (double)h->open);
	}
}

static void state_hist(cJSON *root, const char *name, const struct rs_hist *h)
{
	cJSON *o = add_obj(root, name);
	static const struct {
		const char *k;
		double q;
	} qs[] = { { "p50_ms", 0.5 }, { "p90_ms", 0.9 }, { "p99_ms", 0.99 }, { "p999_ms", 0.999 } };

	num(o, "count", (double)rs_hist_count(h));
	num(o, "mean_ms", rs_hist_mean(h) / 1e6);
	num(o, "max_ms", (double)rs_hist_max(h) / 1e6);
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		uint64_t v;

		if (rs_hist_quantile(h, qs[i].q, &v) == 0)
			num(o, qs[i].k, (double)v / 1e6);
	}
}

static void state_detector(cJSON *arr, const struct rs_detector *d)
{
	struct rs_detector_report r;
	cJSON *o = cJSON_CreateObject();

	if (!o)
		return;
	cJSON_AddItemToArray(arr, o);
	rs_detector_report(d, &r);
	cJSON_AddStringToObject(o, "name", rs_detector_name(d));
	cJSON_AddStringToObject(o, "form",
				r.form == RS_DETECTOR_TRIGGER_AWARE ? "trigger_aware"
				: r.form == RS_DETECTOR_SIGNATURE   ? "signature"
								    : "multi_signal");
	cJSON_AddBoolToObject(o, "metastable", r.metastable);
	num(o, "signals", r.signals);
	num(o, "entered", (double)r.entered);
	num(o, "exited", (double)r.exited);
	num(o, "metastable_seconds", (double)r.metastable_ns / 1e9);
	num(o, "evaluations", (double)r.evaluations);
	cJSON_AddBoolToObject(o, "baseline_ready", r.baseline_ready);
	num(o, "baseline_latency_ms", r.baseline.latency_ns / 1e6);
	num(o, "baseline_throughput", r.baseline.throughput);
	num(o, "baseline_offered_load", r.baseline.offered_load);
	if (r.form == RS_DETECTOR_TRIGGER_AWARE) {
		cJSON_AddBoolToObject(o, "trigger_active", r.trigger_active);
		num(o, "triggers", (double)r.triggers);
		num(o, "recoveries", (double)r.recoveries);
	}
}

cJSON *fl_state_service(const struct fl_service_view *v)
{
	const struct fl_service_counters *c = v->counters;
	const struct fl_cache_stats *cs = fl_cache_stats(v->cache);
	struct rs_breaker_stats bs;
	struct rs_bulkhead_stats hs;
	uint64_t now = rs_now_ns();
	cJSON *root = cJSON_CreateObject(), *o, *a;

	if (!root)
		return NULL;
	cJSON_AddStringToObject(root, "role", "service");
	state_process(root, v->start_ns);

	o = add_obj(root, "defenses");
	cJSON_AddBoolToObject(o, "breaker", v->defense_breaker);
	cJSON_AddBoolToObject(o, "budget", v->defense_budget);
	cJSON_AddBoolToObject(o, "jitter", v->defense_jitter);
	cJSON_AddBoolToObject(o, "shed", v->defense_shed);
	cJSON_AddBoolToObject(o, "detector", v->defense_detector);
	cJSON_AddBoolToObject(o, "coalesce", v->defense_coalesce);

	o = add_obj(root, "control");
	cJSON_AddBoolToObject(o, "present", v->control != NULL);
	cJSON_AddBoolToObject(o, "jitter_enabled", rs_control_jitter_enabled(v->control));
	cJSON_AddBoolToObject(o, "retries_paused", rs_control_retries_paused(v->control));

	o = add_obj(root, "breaker");
	rs_breaker_stats(v->breaker, &bs);
	cJSON_AddStringToObject(o, "name", rs_breaker_name(v->breaker));
	cJSON_AddStringToObject(o, "state", rs_breaker_state_name(rs_breaker_state(v->breaker)));
	num(o, "state_value", rs_breaker_state(v->breaker));
	num(o, "successes", (double)bs.calls[RS_BREAKER_RESULT_SUCCESS]);
	num(o, "failures", (double)bs.calls[RS_BREAKER_RESULT_FAILURE]);
	num(o, "slow", (double)bs.calls[RS_BREAKER_RESULT_SLOW]);
	num(o, "rejected", (double)bs.calls[RS_BREAKER_RESULT_REJECTED]);

	if (v->budget) {
		struct rs_budget_status st;

		rs_budget_status(v->budget, now, &st);
		o = add_obj(root, "budget");
		cJSON_AddBoolToObject(o, "exhausted", st.exhausted);
		num(o, "ratio", st.ratio);
		num(o, "balance", st.balance);
		num(o, "requests", (double)st.requests);
		num(o, "retries", (double)st.retries);
		num(o, "denied_total", (double)st.denied_total);
	}

	o = add_obj(root, "retry");
	for (int r = 0; r < RS_RETRY_REASONS; r++)
		num(o, rs_retry_reason_name((enum rs_retry_reason)r),
		    (double)rs_retry_count(v->retry, (enum rs_retry_reason)r));

	if (v->shed) {
		struct rs_shed_stats ss;

		rs_shed_stats(v->shed, &ss);
		o = add_obj(root, "shed");
		num(o, "score", rs_shed_score(v->shed));
		num(o, "tier", rs_shed_tier(v->shed));
		num(o, "fraction", rs_shed_fraction(v->shed, now));
		num(o, "shed_total", (double)ss.shed_total);
	}

	rs_bulkhead_stats(v->bulkhead, &hs);
	o = add_obj(root, "bulkhead");
	num(o, "in_flight", hs.in_flight);
	num(o, "queued", hs.queued);
	num(o, "admitted", (double)hs.admitted);
	num(o, "rejected", (double)hs.rejected);
	num(o, "timed_out", (double)hs.timed_out);

	if (v->coalesce) {
		struct rs_coalesce_stats st;

		rs_coalesce_stats(v->coalesce, &st);
		o = add_obj(root, "coalesce");
		num(o, "leaders", (double)st.leaders);
		num(o, "coalesced", (double)st.coalesced);
		num(o, "full", (double)st.full);
		num(o, "in_flight", (double)st.in_flight);
	}
	{
		struct rs_idem_stats st;

		rs_idem_stats(v->idem, &st);
		o = add_obj(root, "idempotency");
		num(o, "first_seen", (double)st.first_seen);
		num(o, "duplicates", (double)st.duplicates);
		num(o, "in_progress", (double)st.in_progress);
		num(o, "entries", (double)st.entries);
	}

	a = cJSON_AddArrayToObject(root, "detectors");
	if (a) {
		state_detector(a, v->trigger_detector);
		state_detector(a, v->multi_detector);
	}
	if (v->last_sample) {
		const struct rs_detector_sample *s = v->last_sample;

		o = add_obj(root, "sample");
		num(o, "offered_load", s->offered_load);
		num(o, "goodput", s->goodput);
		num(o, "throughput", s->throughput);
		num(o, "latency_p99_ms",
		    s->latency_ns == UINT64_MAX ? NAN : (double)s->latency_ns / 1e6);
		num(o, "error_rate", s->error_rate);
		num(o, "retry_amplification", s->retry_amplification);
		num(o, "queue_depth", (double)s->queue_depth);
		num(o, "cpu", s->cpu);
		num(o, "cache_hit_ratio", s->cache_hit_ratio);
		cJSON_AddBoolToObject(o, "trigger_active", s->trigger_active);
	}

	o = add_obj(root, "cache");
	num(o, "entries", (double)fl_cache_count(v->cache));
	num(o, "bytes", (double)fl_cache_bytes(v->cache));
	num(o, "hits", (double)cs->hits);
	num(o, "misses", (double)cs->misses);
	num(o, "expired", (double)cs->expired);
	num(o, "evictions", (double)cs->evictions);
	num(o, "flushed", (double)cs->flushed);

	o = add_obj(root, "dependency");
	num(o, "calls", (double)c->dep_calls);
	num(o, "attempts", (double)c->dep_attempts);
	num(o, "ok", (double)c->dep_ok);
	num(o, "timeouts", (double)c->dep_timeouts);
	num(o, "errors", (double)c->dep_errors);
	num(o, "bad_status", (double)c->dep_bad_status);
	num(o, "refused_breaker", (double)c->breaker_rejected);
	num(o, "refused_bulkhead_full", (double)c->bulkhead_rejected);
	num(o, "refused_bulkhead_wait", (double)c->bulkhead_timed_out);
	num(o, "retries", (double)c->retries);
	if (v->upstream) {
		num(o, "connections", v->upstream->open);
		num(o, "pool_busy", (double)v->upstream->busy);
	}

	o = add_obj(root, "service");
	num(o, "pending", (double)c->pending);
	num(o, "queue_depth", rs_bulkhead_queued(v->bulkhead));
	num(o, "shed", (double)c->shed);
	num(o, "overloaded", (double)c->overloaded);
	num(o, "file_reads", (double)c->file_reads);
	num(o, "file_read_errors", (double)c->file_read_errors);
	num(o, "file_writes", (double)c->file_writes);
	num(o, "file_write_errors", (double)c->file_write_errors);
	num(o, "idempotent_duplicates", (double)c->idem_duplicates);
	cJSON_AddBoolToObject(o, "trigger_active", c->trigger_active);

	state_requests(root, v->requests, v->http);
	state_hist(root, "latency", v->latency);
	state_hist(root, "dependency_latency", v->dep_latency);
	return root;
}

/* ---- the dependency ------------------------------------------------------------------ */

void fl_metrics_dependency(struct rs_expo *e, void *view)
{
	const struct fl_dependency_view *v = view;
	const struct fl_dependency_counters *c = v->counters;

	rs_expo_family(e, "faultline_info", RS_EXPO_GAUGE, "the role this process runs");
	rs_expo_sample(e, "faultline_info", (const char *const[]){ "role", "dependency", NULL }, 1);
	expo_process(e, v->start_ns, rs_now_ns());
	rs_control_expo(e, v->control, "dependency");
	expo_requests(e, v->requests);
	expo_http(e, v->http, v->admin);
	expo_hist(e, "faultline_request_duration_seconds", "GET /stock latency, arrival to answer",
		  "stock", v->latency);
	counter(e, "faultline_worker_received_total", "GET /stock requests received", c->received);
	counter(e, "faultline_worker_served_total", "work completed and answered", c->served);
	counter(e, "faultline_worker_wasted_total",
		"work completed for a caller that had already gone (timed out, disconnected)",
		c->wasted);
	counter(e, "faultline_worker_dropped_total", "requests refused at once: queue full (503)",
		c->dropped);
	gauge(e, "faultline_worker_queue_depth", "requests waiting for a worker",
	      (double)c->queued);
	gauge(e, "faultline_worker_in_flight", "workers busy", (double)c->in_flight);
	gauge(e, "faultline_worker_capacity_factor", "worker speed multiplier (0: hung)",
	      c->factor);
	gauge(e, "faultline_worker_count", "workers", c->workers);
	gauge(e, "faultline_worker_service_time_seconds", "service time at factor 1",
	      (double)c->service_time_ns / 1e9);
}

cJSON *fl_state_dependency(const struct fl_dependency_view *v)
{
	const struct fl_dependency_counters *c = v->counters;
	cJSON *root = cJSON_CreateObject(), *o;

	if (!root)
		return NULL;
	cJSON_AddStringToObject(root, "role", "dependency");
	state_process(root, v->start_ns);
	o = add_obj(root, "control");
	cJSON_AddBoolToObject(o, "present", v->control != NULL);
	cJSON_AddBoolToObject(o, "jitter_enabled", rs_control_jitter_enabled(v->control));
	o = add_obj(root, "workers");
	num(o, "count", c->workers);
	num(o, "service_time_ms", (double)c->service_time_ns / 1e6);
	num(o, "factor", c->factor);
	num(o, "queue_bound", (double)c->queue_bound);
	num(o, "queued", (double)c->queued);
	num(o, "in_flight", (double)c->in_flight);
	num(o, "received", (double)c->received);
	num(o, "served", (double)c->served);
	num(o, "wasted", (double)c->wasted);
	num(o, "dropped", (double)c->dropped);
	state_requests(root, v->requests, v->http);
	state_hist(root, "latency", v->latency);
	return root;
}
