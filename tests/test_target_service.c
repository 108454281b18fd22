/* faultline-target end to end: a dependency and a service on 127.0.0.1 with
 * ephemeral ports and a temporary data directory.
 *
 *  1. every endpoint answers as specified (items: hit, miss, 404, 400;
 *     POST with and without Idempotency-Key, a repeated key answered from
 *     the table without a second write; healthz, metrics, state, admin
 *     endpoints; the admin port is bound to 127.0.0.1 only);
 *  2. /metrics parses as Prometheus text and its counters move with the
 *     requests (100 GETs of one id: +100 answers, +99 cache hits, +1
 *     dependency call);
 *  3. the dependency does work whose caller has gone (wasted) and refuses
 *     at once when its queue is full;
 *  4. a cache flush under 50 concurrent clients: a miss spike, and at most
 *     one dependency call per key thanks to coalescing (without
 *     coalescing, more);
 *     a shedder refuses before any work, with Retry-After;
 *  5. RESILIENCE_CONTROL: removing jitter shows on /metrics without a
 *     restart; forcing the breaker open refuses calls at once;
 *  6. killing the dependency opens the breaker within its bound; bringing
 *     it back on the same port closes it after the wait and the trials;
 *  7. SIGTERM: both roles exit 0, the service also with requests held.
 * Every child is killed by pid and reaped, the directory removed, also on
 * failure (watchdog). */
#include "tests/tap.h"
#include "tests/promtext.h"
#include "tests/targetproc.h"

#include <math.h>
#include <pthread.h>

#include <cjson/cJSON.h>

#include "resilience/control.h"
#include "target/dependency.h"

#define T 3000 /* ms: one request's client timeout */

/* The service's configuration: the breaker's bound comes from these. */
#define ATTEMPT_TIMEOUT_MS 100
#define TRIP_FAILURES	   5
#define BREAKER_WAIT_MS	   500
#define HALF_OPEN_CALLS	   3

static struct targetproc dep, svc, svc2;
static char dir[64], data[128], ctl[128];
static char dep_port_arg[16], wait_arg[64], trip_arg[64], timeout_arg[64], trials_arg[64];

static double metric(int port, const char *series)
{
	struct targetproc_resp r;
	double v = NAN;

	if (targetproc_get(port, "/metrics", T, &r) == 0) {
		if (r.status != 200 || !promtext_value(r.body, series, &v))
			v = NAN;
		targetproc_resp_free(&r);
	}
	return v;
}

static int status_of(int port, const char *method, const char *path, const char *headers,
		     const char *body, char *out, size_t outlen)
{
	struct targetproc_resp r;
	int st;

	if (targetproc_http("127.0.0.1", port, method, path, headers, body, body ? strlen(body) : 0,
			    T, &r) < 0)
		return -1;
	st = r.status;
	if (out)
		snprintf(out, outlen, "%s", r.body);
	targetproc_resp_free(&r);
	return st;
}

static int get(int port, const char *path, char *out, size_t outlen)
{
	return status_of(port, "GET", path, NULL, NULL, out, outlen);
}

static int post(int port, const char *path, const char *headers, const char *body, char *out,
		size_t outlen)
{
	return status_of(port, "POST", path, headers, body, out, outlen);
}

static size_t read_file(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;

	if (f) {
		n = fread(buf, 1, size - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return n;
}

static void start_dependency(const char *port)
{
	char why[256];

	if (targetproc_start(&dep,
			     (const char *[]){ "--role", "dependency", "--port", port,
					       "--service-time", "10ms", "--workers", "8", NULL },
			     NULL, 5000, why, sizeof(why)) < 0)
		bail_out("dependency: %s", why);
}

/* Starts a service on the dependency with the test's breaker settings,
 * then `extra` (NULL or a NULL-terminated list of more arguments). */
static void start_service(struct targetproc *p, const char *const *extra)
{
	const char *args[48] = { "--role",     "service",  "--dependency", dep_port_arg,
				 "--data-dir", data,	   "--set",	   timeout_arg,
				 "--set",      wait_arg,   "--set",	   trip_arg,
				 "--set",      trials_arg, "--seed",	   "7" };
	const char *env[] = { NULL, NULL };
	char envbuf[200], why[256];
	int n = 16;

	for (int i = 0; extra && extra[i] && n < 47; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	snprintf(envbuf, sizeof(envbuf), "%s=%s", RS_CONTROL_ENV, ctl);
	env[0] = envbuf;
	if (targetproc_start(p, args, env, 5000, why, sizeof(why)) < 0)
		bail_out("service: %s", why);
}

/* ---- 1, 2: endpoints and counters ----------------------------------------------- */

static void endpoints(void)
{
	char body[8192], file[4096], want[4200], path[200], v[64];
	struct targetproc_resp r;
	int st, sp = svc.http_port, ap = svc.admin_port;
	double writes0, dup0;

	st = get(sp, "/healthz", body, sizeof(body));
	ok(st == 200 && strcmp(body, "ok\n") == 0, "GET /healthz: 200 ok");

	snprintf(path, sizeof(path), "%s/item-7", data);
	read_file(path, file, sizeof(file));
	snprintf(want, sizeof(want), "item 7 stock %u\n%s", fl_dependency_stock(7), file);
	st = get(sp, "/item/7", body, sizeof(body));
	ok(st == 200 && strcmp(body, want) == 0,
	   "GET /item/7 (miss): 200 \"item 7 stock %u\" then the file's bytes",
	   fl_dependency_stock(7));
	st = get(sp, "/item/7", body, sizeof(body));
	ok(st == 200 && strcmp(body, want) == 0, "GET /item/7 again (hit): the same answer");
	ok(get(sp, "/item/100000", body, sizeof(body)) == 404, "GET of an id without a file: 404");
	ok(get(sp, "/item/abc", NULL, 0) == 400 && get(sp, "/item/007", NULL, 0) == 400 &&
	       get(sp, "/item/0", NULL, 0) == 400,
	   "GET of a malformed id (abc, 007, 0): 400");
	ok(get(sp, "/nowhere", NULL, 0) == 404 && get(sp, "/admin/cache", NULL, 0) == 404,
	   "unknown paths, and admin paths on the http port: 404");

	/* POST and idempotency */
	writes0 = metric(sp, "faultline_file_writes_total");
	dup0 = metric(sp, "resilience_idempotency_duplicates_total{name=\"items\"}");
	st = post(sp, "/item/150", NULL, "new content\n", body, sizeof(body));
	ok(st == 400 && strstr(body, "Idempotency-Key"), "POST without Idempotency-Key: 400");
	st = post(sp, "/item/150", "Idempotency-Key: k-150-a\r\n", "new content\n", body,
		  sizeof(body));
	snprintf(path, sizeof(path), "%s/item-150", data);
	read_file(path, file, sizeof(file));
	ok(st == 201 && strcmp(body, "stored item 150 (12 bytes)\n") == 0 &&
	       strcmp(file, "new content\n") == 0,
	   "POST with a new key: 201, the file holds the body");
	targetproc_http("127.0.0.1", sp, "POST", "/item/150", "Idempotency-Key: k-150-a\r\n",
			"other content\n", 14, T, &r);
	read_file(path, file, sizeof(file));
	ok(r.status == 201 && r.body && strcmp(r.body, "stored item 150 (12 bytes)\n") == 0 &&
	       targetproc_resp_header(&r, "Idempotent-Replayed", v, sizeof(v)) &&
	       strcmp(file, "new content\n") == 0,
	   "the same key again: the stored answer, marked replayed, and no second write");
	targetproc_resp_free(&r);
	is_double(metric(sp, "faultline_file_writes_total") - writes0, 1, 0,
		  "one file write for the two POSTs");
	is_double(metric(sp, "resilience_idempotency_duplicates_total{name=\"items\"}") - dup0, 1,
		  0, "the duplicate is counted");
	st = get(sp, "/item/150", body, sizeof(body));
	snprintf(want, sizeof(want), "item 150 stock %u\nnew content\n", fl_dependency_stock(150));
	ok(st == 200 && strcmp(body, want) == 0, "GET after the POST serves the new content");

	/* metrics and state */
	{
		char why[200] = "";
		int n = -1;

		if (targetproc_get(sp, "/metrics", T, &r) == 0) {
			n = promtext_check(r.body, why, sizeof(why));
			targetproc_resp_free(&r);
		}
		ok(n > 100, "the service's /metrics parses as Prometheus text (%d samples) %s", n,
		   why);
		n = -1;
		if (targetproc_get(dep.http_port, "/metrics", T, &r) == 0) {
			n = promtext_check(r.body, why, sizeof(why));
			targetproc_resp_free(&r);
		}
		ok(n > 20, "the dependency's /metrics parses as Prometheus text (%d samples) %s", n,
		   why);
	}
	ok(!isnan(metric(sp, "resilience_breaker_state{name=\"dependency\"}")) &&
	       !isnan(metric(sp, "resilience_retry_budget_ratio{name=\"dependency\"}")) &&
	       !isnan(metric(sp, "resilience_shed_fraction{name=\"service\"}")) &&
	       !isnan(metric(sp, "resilience_bulkhead_in_flight{name=\"dependency\"}")) &&
	       !isnan(metric(sp, "resilience_metastable{name=\"service\"}")) &&
	       !isnan(metric(sp, "resilience_coalesced_total{name=\"items\"}")) &&
	       metric(sp, "process_resident_memory_bytes") > 1e6 &&
	       metric(sp, "process_cpu_seconds_total") >= 0,
	   "/metrics holds every core object, RSS and CPU");
	{
		cJSON *j = NULL;

		if (targetproc_get(sp, "/state", T, &r) == 0) {
			j = r.status == 200 ? cJSON_Parse(r.body) : NULL;
			targetproc_resp_free(&r);
		}
		ok(j && cJSON_IsString(cJSON_GetObjectItem(j, "role")) &&
		       strcmp(cJSON_GetObjectItem(j, "role")->valuestring, "service") == 0 &&
		       cJSON_GetObjectItem(cJSON_GetObjectItem(j, "breaker"), "state") &&
		       cJSON_GetObjectItem(cJSON_GetObjectItem(j, "cache"), "hits") &&
		       cJSON_IsArray(cJSON_GetObjectItem(j, "detectors")),
		   "/state is JSON with the role, breaker, cache and detectors");
		cJSON_Delete(j);
	}

	/* admin */
	st = get(ap, "/admin/cache", body, sizeof(body));
	ok(st == 200 && strstr(body, "\"entries\":2") && strstr(body, "\"hits\":"),
	   "GET /admin/cache on the admin port: %s", body);
	st = post(ap, "/admin/cache/flush?prefix=item/7", NULL, NULL, body, sizeof(body));
	ok(st == 200 && strcmp(body, "{\"flushed\":1}") == 0,
	   "flush with a prefix drops only that key: %s", body);
	st = post(ap, "/admin/cache/expire", NULL, NULL, body, sizeof(body));
	ok(st == 200 && strstr(body, "{\"expired\":1,\"in_us\":0,\"hits\":") == body &&
	       strstr(body, ",\"misses\":"),
	   "expire touches every entry and gives the counters of that instant: %s", body);
	{
		double misses = metric(sp, "faultline_cache_misses_total");

		get(sp, "/item/150", NULL, 0);
		is_double(metric(sp, "faultline_cache_misses_total") - misses, 1, 0,
			  "an expired entry misses");
		st = post(ap, "/admin/cache/expire?in_us=300000", NULL, NULL, body, sizeof(body));
		ok(st == 200 && strstr(body, "{\"expired\":1,\"in_us\":300000,") == body,
		   "expire in 300 ms: %s", body);
		misses = metric(sp, "faultline_cache_misses_total");
		get(sp, "/item/150", NULL, 0);
		is_double(metric(sp, "faultline_cache_misses_total") - misses, 0, 0,
			  "before the instant the entry still hits");
		usleep(400 * 1000);
		get(sp, "/item/150", NULL, 0);
		is_double(metric(sp, "faultline_cache_misses_total") - misses, 1, 0,
			  "after the instant it misses");
		st = post(ap, "/admin/cache/expire?in_us=3600000001", NULL, NULL, body,
			  sizeof(body));
		ok(st == 400 && strstr(body, "in_us"), "in_us above 1 h: 400 (%s)", body);
		st = post(ap, "/admin/cache/expire?in_us=-5", NULL, NULL, body, sizeof(body));
		ok(st == 400, "a negative in_us: 400");
	}
	st = post(ap, "/admin/cache/flush", NULL, NULL, body, sizeof(body));
	ok(st == 200 && strcmp(body, "{\"flushed\":1}") == 0, "flush without a prefix: %s", body);
	st = post(ap, "/admin/trigger?active=1", NULL, NULL, body, sizeof(body));
	ok(st == 200 && strcmp(body, "{\"trigger_active\":true}") == 0 &&
	       metric(sp, "faultline_trigger_active") == 1,
	   "POST /admin/trigger?active=1 sets the trigger flag");
	ok(post(ap, "/admin/trigger?active=2", NULL, NULL, NULL, 0) == 400 &&
	       post(ap, "/admin/trigger?active=0", NULL, NULL, NULL, 0) == 200 &&
	       metric(sp, "faultline_trigger_active") == 0,
	   "active=2 is refused, active=0 clears it");
	{
		struct targetproc_resp r2;
		int rc1 =
		    targetproc_http("127.0.0.2", ap, "GET", "/healthz", NULL, NULL, 0, T, &r2);

		if (rc1 == 0)
			targetproc_resp_free(&r2);
		ok(rc1 == -ECONNREFUSED && get(ap, "/healthz", NULL, 0) == 200,
		   "the admin port answers on 127.0.0.1 and refuses 127.0.0.2 (bound to loopback "
		   "only): %d",
		   rc1);
	}
}

static void counters(void)
{
	int sp = svc.http_port, okn = 0;
	double req0 = metric(sp, "faultline_requests_total{route=\"item_get\",code=\"200\"}");
	double hits0 = metric(sp, "faultline_cache_hits_total");
	double calls0 = metric(sp, "faultline_dependency_calls_total");

	if (isnan(req0))
		req0 = 0;
	for (int i = 0; i < 100; i++)
		okn += get(sp, "/item/20", NULL, 0) == 200;
	is_int(okn, 100, "100 GETs of /item/20 answered 200");
	is_double(metric(sp, "faultline_requests_total{route=\"item_get\",code=\"200\"}") - req0,
		  100, 0, "faultline_requests_total{route=item_get,code=200} moved by 100");
	is_double(metric(sp, "faultline_cache_hits_total") - hits0, 99, 0,
		  "cache hits moved by 99 (the first was a miss)");
	is_double(metric(sp, "faultline_dependency_calls_total") - calls0, 1, 0,
		  "one dependency call");
}

/* ---- 3: the dependency -------------------------------------------------------- */

/* Three pipelined GET /stock on one connection: three answers, in order. */
static int pipelined(int port, char *got, size_t len)
{
	static const char req[] = "GET /stock/1 HTTP/1.1\r\nHost: t\r\n\r\n"
				  "GET /stock/2 HTTP/1.1\r\nHost: t\r\n\r\n"
				  "GET /stock/3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
	uint64_t end = targetproc_now_ms() + T;
	int fd = targetproc__connect("127.0.0.1", port, end);
	size_t n = 0;

	if (fd < 0)
		return fd;
	if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1) {
		close(fd);
		return -EIO;
	}
	while (n + 1 < len) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		uint64_t now = targetproc_now_ms();
		ssize_t r;

		if (now >= end || poll(&pfd, 1, (int)(end - now)) <= 0)
			break;
		r = recv(fd, got + n, len - 1 - n, 0);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	got[n] = '\0';
	close(fd);
	return 0;
}

static void dependency(void)
{
	char body[256];
	struct targetproc small;
	struct targetproc_resp r;
	char why[256];
	int dp = dep.http_port, ap = dep.admin_port, rc;
	double wasted0;

	ok(get(dp, "/stock/7", body, sizeof(body)) == 200 &&
	       (unsigned)atoi(body) == fl_dependency_stock(7),
	   "GET /stock/7: 200 with the stock figure %u", fl_dependency_stock(7));
	ok(get(dp, "/stock/x", NULL, 0) == 400 &&
	       get(dp, "/stock/1?timeout_ms=x", NULL, 0) == 400 &&
	       get(dp, "/stock/1?timeout_ms=50", NULL, 0) == 200 &&
	       get(dp, "/healthz", NULL, 0) == 200,
	   "a bad id or timeout_ms: 400; timeout_ms=50: 200; /healthz: 200");
	{
		char got[2048], want[256];
		const char *p1, *p2, *p3;

		pipelined(dp, got, sizeof(got));
		snprintf(want, sizeof(want), "\r\n\r\n%u\n", fl_dependency_stock(1));
		p1 = strstr(got, want);
		snprintf(want, sizeof(want), "\r\n\r\n%u\n", fl_dependency_stock(2));
		p2 = p1 ? strstr(p1 + 1, want) : NULL;
		snprintf(want, sizeof(want), "\r\n\r\n%u\n", fl_dependency_stock(3));
		p3 = p2 ? strstr(p2 + 1, want) : NULL;
		ok(p3 != NULL,
		   "three pipelined GET /stock on one connection: three answers in order");
	}
	ok(get(ap, "/admin/capacity", body, sizeof(body)) == 200 &&
	       strcmp(body, "{\"factor\":1}") == 0,
	   "GET /admin/capacity: {\"factor\":1}");
	ok(post(ap, "/admin/capacity?factor=-1", NULL, NULL, NULL, 0) == 400 &&
	       post(ap, "/admin/capacity", NULL, NULL, NULL, 0) == 400 &&
	       get(dp, "/admin/capacity", NULL, 0) == 404,
	   "a negative or missing factor: 400; not on the http port");

	/* Capacity 0: the work hangs; the caller gives up; at capacity 1 the
	 * work is still done, and wasted. */
	wasted0 = metric(dp, "faultline_worker_wasted_total");
	post(ap, "/admin/capacity?factor=0", NULL, NULL, body, sizeof(body));
	rc = targetproc_http("127.0.0.1", dp, "GET", "/stock/9?timeout_ms=300", NULL, NULL, 0, 300,
			     &r);
	ok(rc == -ETIMEDOUT && strcmp(body, "{\"factor\":0}") == 0,
	   "capacity 0: the dependency hangs (the client times out)");
	if (rc == 0)
		targetproc_resp_free(&r);
	post(ap, "/admin/capacity?factor=1", NULL, NULL, NULL, 0);
	{
		uint64_t end = targetproc_now_ms() + 2000;
		double w = 0;

		while (targetproc_now_ms() < end &&
		       (w = metric(dp, "faultline_worker_wasted_total") - wasted0) < 1)
			usleep(10000);
		is_double(w, 1, 0,
			  "capacity back to 1: the abandoned work is done anyway (wasted)");
	}

	/* A full queue refuses at once. */
	if (targetproc_start(&small,
			     (const char *[]){ "--role", "dependency", "--workers", "1", "--queue",
					       "1", "--capacity", "0", NULL },
			     NULL, 5000, why, sizeof(why)) < 0)
		bail_out("dependency: %s", why);
	targetproc_http("127.0.0.1", small.http_port, "GET", "/stock/1", NULL, NULL, 0, 200, &r);
	targetproc_http("127.0.0.1", small.http_port, "GET", "/stock/2", NULL, NULL, 0, 200, &r);
	{
		uint64_t t0 = targetproc_now_ms();
		char ra[16];

		rc = targetproc_get(small.http_port, "/stock/3", T, &r);
		ok(rc == 0 && r.status == 503 &&
		       targetproc_resp_header(&r, "Retry-After", ra, sizeof(ra)) &&
		       metric(small.http_port, "faultline_worker_dropped_total") == 1 &&
		       metric(small.http_port, "faultline_worker_queue_depth") == 1 &&
		       metric(small.http_port, "faultline_worker_in_flight") == 1,
		   "1 worker busy, 1 queued: the next request gets 503 at once (%llu ms), counted",
		   (unsigned long long)(targetproc_now_ms() - t0));
		if (rc == 0)
			targetproc_resp_free(&r);
	}
	is_int(targetproc_stop(&small, 5000), 0, "SIGTERM with work owed: the dependency exits 0");
}

/* ---- 4: coalescing under a flush ----------------------------------------------- */

#define CLIENTS 50
#define IDS	10
#define FIRST	31

struct client {
	int port;
	int ok;
	pthread_barrier_t *bar;
};

static void *client_main(void *arg)
{
	struct client *c = arg;
	char path[32];

	pthread_barrier_wait(c->bar);
	for (int i = 0; i < IDS; i++) {
		snprintf(path, sizeof(path), "/item/%d", FIRST + i);
		c->ok += get(c->port, path, NULL, 0) == 200;
	}
	return NULL;
}

/* CLIENTS threads each GET the IDS ids; returns how many got 200. */
static int stampede(int port)
{
	pthread_t th[CLIENTS];
	struct client c[CLIENTS];
	pthread_barrier_t bar;
	int total = 0;

	pthread_barrier_init(&bar, NULL, CLIENTS);
	for (int i = 0; i < CLIENTS; i++) {
		c[i] = (struct client){ port, 0, &bar };
		if (pthread_create(&th[i], NULL, client_main, &c[i]) != 0)
			bail_out("pthread_create failed");
	}
	for (int i = 0; i < CLIENTS; i++) {
		pthread_join(th[i], NULL);
		total += c[i].ok;
	}
	pthread_barrier_destroy(&bar);
	return total;
}

struct snap {
	double served, calls, coalesced, misses;
};

static struct snap snap(int sp)
{
	return (struct snap){
		metric(dep.http_port, "faultline_worker_served_total"),
		metric(sp, "faultline_dependency_calls_total"),
		metric(sp, "resilience_coalesced_total{name=\"items\"}"),
		metric(sp, "faultline_cache_misses_total"),
	};
}

static void coalescing(void)
{
	int sp = svc.http_port;
	struct snap a, b;
	int n;

	a = snap(sp);
	n = stampede(sp);
	b = snap(sp);
	diag("cold: %d x 200, dependency served %.0f, calls %.0f, coalesced %.0f, misses %.0f", n,
	     b.served - a.served, b.calls - a.calls, b.coalesced - a.coalesced,
	     b.misses - a.misses);
	ok(n == CLIENTS * IDS && b.calls - a.calls <= IDS && b.served - a.served <= IDS &&
	       b.coalesced - a.coalesced > 0,
	   "cold cache, %d clients x %d ids: every answer 200, <= 1 dependency call per key, "
	   "the rest coalesced",
	   CLIENTS, IDS);

	a = b;
	n = stampede(sp);
	b = snap(sp);
	ok(n == CLIENTS * IDS && b.misses - a.misses == 0 && b.served - a.served == 0,
	   "warm cache: no miss, no dependency call");

	post(svc.admin_port, "/admin/cache/flush", NULL, NULL, NULL, 0);
	a = b;
	n = stampede(sp);
	b = snap(sp);
	diag("after flush: %d x 200, dependency served %.0f, calls %.0f, coalesced %.0f, misses "
	     "%.0f",
	     n, b.served - a.served, b.calls - a.calls, b.coalesced - a.coalesced,
	     b.misses - a.misses);
	ok(n == CLIENTS * IDS && b.misses - a.misses >= IDS && b.calls - a.calls <= IDS &&
	       b.served - a.served <= IDS && b.coalesced - a.coalesced > 0,
	   "after a flush: a miss spike (%.0f misses) but <= 1 dependency call per key",
	   b.misses - a.misses);

	/* The counterfactual: without coalescing, concurrent misses each call. */
	start_service(&svc2, (const char *[]){ "--no-coalesce", NULL });
	a = snap(svc2.http_port);
	n = stampede(svc2.http_port);
	b = snap(svc2.http_port);
	diag("no coalescing: %d x 200, dependency calls %.0f", n, b.calls - a.calls);
	ok(b.calls - a.calls > IDS && isnan(b.coalesced),
	   "with --no-coalesce the same stampede calls the dependency %.0f times for %d keys",
	   b.calls - a.calls, IDS);
	is_int(targetproc_stop(&svc2, 5000), 0, "SIGTERM: the second service exits 0");
}

/* ---- 4b: shedding ---------------------------------------------------------------- */

/* A shedder told to drop everything it may in every tier: requests are
 * refused before any work, critical ones still pass below emergency. */
static void shedding(void)
{
	struct targetproc_resp r;
	char ra[16];
	double files0;
	int rc;

	start_service(&svc2, (const char *[]){ "--set", "shed.fractions=[1,1,1,1]", NULL });
	files0 = metric(svc2.http_port, "faultline_file_reads_total");
	rc = targetproc_get(svc2.http_port, "/item/61", T, &r);
	ok(rc == 0 && r.status == 503 && strcmp(r.body, "shed\n") == 0 &&
	       targetproc_resp_header(&r, "Retry-After", ra, sizeof(ra)) && strcmp(ra, "1") == 0 &&
	       metric(svc2.http_port, "resilience_shed_total{name=\"service\"}") == 1 &&
	       metric(svc2.http_port, "faultline_file_reads_total") == files0,
	   "a shed request: 503, Retry-After: 1, counted, no file read");
	if (rc == 0)
		targetproc_resp_free(&r);
	rc = targetproc_http("127.0.0.1", svc2.http_port, "GET", "/item/61",
			     "X-Priority: critical\r\n", NULL, 0, T, &r);
	ok(rc == 0 && r.status == 200, "X-Priority: critical is not shed below the emergency tier");
	if (rc == 0)
		targetproc_resp_free(&r);
	is_int(targetproc_stop(&svc2, 5000), 0, "SIGTERM: the shedding service exits 0");
}

/* ---- 5: the control block --------------------------------------------------------- */

static void control(void)
{
	struct rs_control *c = NULL;
	struct rs_err err = { "" };
	const char *jit = "resilience_jitter_enabled{name=\"service\"}";
	const char *state = "resilience_breaker_state{name=\"dependency\"}";
	char body[256];
	int st;

	if (rs_control_open(&c, ctl, 0, NULL, &err) < 0) {
		diag("%s", err.msg);
		skip("the control file the service should have created is missing", 4);
		return;
	}
	ok(metric(svc.http_port, jit) == 1, "jitter enabled at start");
	rs_control_set_jitter(c, false);
	ok(metric(svc.http_port, jit) == 0,
	   "the control file removes jitter: resilience_jitter_enabled reads 0, no restart");
	rs_control_set_jitter(c, true);

	if (rs_control_force_breaker(c, "dependency", RS_FORCE_OPEN, NULL, &err) < 0)
		diag("%s", err.msg);
	st = get(svc.http_port, "/item/44", body, sizeof(body));
	ok(st == 503 && strstr(body, "breaker open") && metric(svc.http_port, state) == 4,
	   "a breaker forced open through the control block refuses the call (state 4)");
	if (rs_control_force_breaker(c, "dependency", RS_FORCE_NONE, NULL, &err) < 0)
		diag("%s", err.msg);
	st = get(svc.http_port, "/item/44", NULL, 0);
	ok(st == 200 && metric(svc.http_port, state) == 0, "released: closed again, 200");
	rs_control_free(c);
}

/* ---- 6: the breaker --------------------------------------------------------------- */

static int next_id = 101;

/* One GET of an id not in the cache (101..199, then flush and again). */
static int fresh_get(char *body, size_t len)
{
	char path[32];

	if (next_id > 199) {
		next_id = 101;
		post(svc.admin_port, "/admin/cache/flush", NULL, NULL, NULL, 0);
	}
	snprintf(path, sizeof(path), "/item/%d", next_id++);
	return get(svc.http_port, path, body, len);
}

/* Drives fresh GETs until the breaker's state reads `want`, up to limit_ms;
 * returns the ms it took, or -1. */
static long until_state(double want, long limit_ms, int *last_status, char *body, size_t len)
{
	uint64_t t0 = targetproc_now_ms();
	const char *state = "resilience_breaker_state{name=\"dependency\"}";

	while ((long)(targetproc_now_ms() - t0) <= limit_ms) {
		*last_status = fresh_get(body, len);
		if (metric(svc.http_port, state) == want)
			return (long)(targetproc_now_ms() - t0);
	}
	return -1;
}

static void breaker(void)
{
	const long open_bound = TRIP_FAILURES * ATTEMPT_TIMEOUT_MS + 1000;
	const long close_bound = BREAKER_WAIT_MS + 1000;
	char body[512], port[16], ra[16];
	struct targetproc_resp r;
	long took;
	int st = 0;

	ok(fresh_get(body, sizeof(body)) == 200 &&
	       metric(svc.http_port, "resilience_breaker_state{name=\"dependency\"}") == 0,
	   "before the fault: 200, breaker closed");
	snprintf(port, sizeof(port), "%d", dep.http_port);
	targetproc_kill(&dep);
	took = until_state(2, 5000, &st, body, sizeof(body));
	diag("breaker open %ld ms after the dependency was killed (bound %ld ms = %d failures x "
	     "%d ms + 1 s)",
	     took, open_bound, TRIP_FAILURES, ATTEMPT_TIMEOUT_MS);
	ok(took >= 0 && took <= open_bound,
	   "killing the dependency opens the breaker within its bound: %ld ms <= %ld ms", took,
	   open_bound);
	st = targetproc_http("127.0.0.1", svc.http_port, "GET", "/item/198", NULL, NULL, 0, T, &r);
	ok(st == 0 && r.status == 503 && strstr(r.body, "breaker open") &&
	       targetproc_resp_header(&r, "Retry-After", ra, sizeof(ra)),
	   "while open: 503 with Retry-After, failing fast");
	if (st == 0)
		targetproc_resp_free(&r);

	start_dependency(port);
	took = until_state(0, 5000, &st, body, sizeof(body));
	diag("breaker closed %ld ms after the dependency came back (bound %ld ms = wait %d ms + "
	     "1 s for %d trials)",
	     took, close_bound, BREAKER_WAIT_MS, HALF_OPEN_CALLS);
	ok(took >= 0 && took <= close_bound,
	   "the dependency back on port %s: closed again within wait + trials: %ld ms <= %ld ms",
	   port, took, close_bound);
	ok(fresh_get(body, sizeof(body)) == 200, "and items are served again");
	ok(metric(svc.http_port, "resilience_breaker_transitions_total{name=\"dependency\","
				 "from=\"half_open\",to=\"closed\"}") >= 1,
	   "the transitions half_open -> closed are counted");
}

/* ---- 7: SIGTERM with requests held ------------------------------------------------- */

static void *hung_client(void *arg)
{
	char path[32];

	snprintf(path, sizeof(path), "/item/%d", *(int *)arg);
	get(svc.http_port, path, NULL, 0); /* fails when the service goes away */
	return NULL;
}

/* A service whose requests end up in every waiting state: 2 bulkhead
 * slots for 8 requests to a hung dependency, attempts that time out after
 * 200 ms, then a 5 s backoff.  SIGTERM must answer all of them. */
static void shutdown_with_requests(void)
{
	const char *args[] = { "--set",	      "bulkhead.max_concurrent=2",
			       "--set",	      "bulkhead.max_wait=10s",
			       "--set",	      "dependency.timeout=200ms",
			       "--set",	      "request.deadline=30s",
			       "--set",	      "retry.backoff=none",
			       "--set",	      "retry.base=5s",
			       "--set",	      "retry.cap=5s",
			       "--set",	      "retry.max_delay=10s",
			       "--no-budget", NULL };
	pthread_t th[8];
	int ids[8], started = 0;
	uint64_t end;
	double pending = 0, retries = 0, queued = 0;

	start_service(&svc, args);
	post(dep.admin_port, "/admin/capacity?factor=0", NULL, NULL, NULL, 0);
	for (int i = 0; i < 8; i++) {
		ids[i] = 160 + i;
		started += pthread_create(&th[i], NULL, hung_client, &ids[i]) == 0;
	}
	end = targetproc_now_ms() + 3000;
	while (targetproc_now_ms() < end) {
		pending = metric(svc.http_port, "faultline_pending");
		retries = metric(svc.http_port, "faultline_dependency_retries_total");
		queued = metric(svc.http_port, "faultline_queue_depth");
		if (pending == 8 && retries >= 2 && queued >= 1)
			break;
		usleep(5000);
	}
	ok(pending == 8 && retries >= 2 && queued >= 1,
	   "8 requests held: calling, queued for the bulkhead (%.0f), in backoff (%.0f)", queued,
	   retries);
	is_int(targetproc_stop(&svc, 5000), 0,
	       "SIGTERM with requests held: the service answers them all and exits 0");
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	post(dep.admin_port, "/admin/capacity?factor=1", NULL, NULL, NULL, 0);
}

int main(void)
{
	char out[256], err[512];
	int st = -1;

	plan(65);
	targetproc_watchdog(120);
	if (!targetproc_binary())
		skip_all("FAULTLINE_BUILD/faultline-target is missing (run through make test)");
	if (targetproc_tmpdir(dir, sizeof(dir)) < 0)
		bail_out("cannot create a temporary directory: %s", strerror(errno));
	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(ctl, sizeof(ctl), "%s/control", dir);
	if (targetproc_run((const char *[]){ "--init-data", data, "--items", "200", NULL }, NULL,
			   30000, &st, out, sizeof(out), err, sizeof(err)) < 0 ||
	    st != 0)
		bail_out("--init-data failed: %s", err);
	snprintf(timeout_arg, sizeof(timeout_arg), "dependency.timeout=%dms", ATTEMPT_TIMEOUT_MS);
	snprintf(wait_arg, sizeof(wait_arg), "breaker.wait=%dms", BREAKER_WAIT_MS);
	snprintf(trip_arg, sizeof(trip_arg), "breaker.consecutive_failures=%d", TRIP_FAILURES);
	snprintf(trials_arg, sizeof(trials_arg), "breaker.half_open_calls=%d", HALF_OPEN_CALLS);

	start_dependency("0");
	snprintf(dep_port_arg, sizeof(dep_port_arg), "127.0.0.1:%d", dep.http_port);
	start_service(&svc, NULL);
	ok(svc.http_port > 0 && svc.admin_port > 0 && svc.http_port != svc.admin_port,
	   "the service prints its ports: %s", svc.line);

	endpoints();
	counters();
	dependency();
	coalescing();
	shedding();
	control();
	breaker();

	is_int(targetproc_stop(&svc, 5000), 0, "SIGTERM: the service exits 0");
	shutdown_with_requests();
	is_int(targetproc_stop(&dep, 5000), 0, "SIGTERM: the dependency exits 0");
	targetproc_cleanup();
	return exit_status();
}
