/* The load generator against tests/loadsrv.h on 127.0.0.1: request counts
 * in closed and open loop, coordinated-omission correction across a stall,
 * retries up to the attempt limit, the retry budget's cap, failures counted
 * by kind (connect, timeout, 5xx, shed, 4xx), deadlines, lockstep retries on
 * a common tick, intervals that add up to the totals, and stop. */
#include "tests/tap.h"
#include "tests/loadsrv.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <uv.h>

#include "harness/loadgen.h"
#include "resilience/clock.h"

static struct loadsrv srv;
static bool srv_up;

struct result {
	struct fl_load_stats t; /* totals; histogram pointers cleared */
	uint64_t p99, p99_unc, max, max_unc, p50;
	uint64_t nintervals, ival_requests, ival_attempts, ival_hist;
	uint64_t elapsed_ns;
	int rc;
	char err[RS_ERR_MSG_MAX];
};

struct ctx {
	struct result *res;
	struct fl_loadgen *lg;
	uint64_t stop_after_ns;
	uv_timer_t stopper;
};

static void on_interval(void *p, const struct fl_load_stats *s)
{
	struct ctx *c = p;

	c->res->nintervals++;
	c->res->ival_requests += s->requests;
	c->res->ival_attempts += s->attempts;
	c->res->ival_hist += rs_hist_count(s->latency);
}

static void on_done(void *p)
{
	struct ctx *c = p;

	if (c->stop_after_ns)
		uv_close((uv_handle_t *)&c->stopper, NULL);
}

static void stop_cb(uv_timer_t *t)
{
	struct ctx *c = t->data;

	fl_loadgen_stop(c->lg);
}

static uint64_t q(const struct rs_hist *h, double x)
{
	uint64_t v = 0;

	if (rs_hist_quantile(h, x, &v) < 0)
		return 0;
	return v;
}

/* Runs one load generator to its end on a fresh loop. */
static struct result run(struct fl_loadgen_opts o, uint64_t stop_after_ns)
{
	struct result r;
	struct ctx c = { .res = &r, .stop_after_ns = stop_after_ns };
	struct rs_err err = { "" };
	uv_loop_t loop;
	const struct fl_load_stats *t;
	uint64_t t0;

	memset(&r, 0, sizeof(r));
	if (uv_loop_init(&loop) < 0)
		bail_out("cannot create a libuv loop");
	o.on_interval = on_interval;
	o.on_done = on_done;
	o.ctx = &c;
	r.rc = fl_loadgen_new(&c.lg, &loop, &o, &err);
	if (r.rc < 0) {
		snprintf(r.err, sizeof(r.err), "%s", err.msg);
		uv_loop_close(&loop);
		return r;
	}
	if (stop_after_ns) {
		uv_timer_init(&loop, &c.stopper);
		c.stopper.data = &c;
		uv_timer_start(&c.stopper, stop_cb, stop_after_ns / RS_NS_PER_MS, 0);
	}
	t0 = uv_hrtime();
	fl_loadgen_start(c.lg);
	uv_run(&loop, UV_RUN_DEFAULT);
	r.elapsed_ns = uv_hrtime() - t0;
	if (!fl_loadgen_done(c.lg))
		bail_out("the loop ended before the load generator was done");
	t = fl_loadgen_totals(c.lg);
	r.t = *t;
	r.p50 = q(t->latency, 0.5);
	r.p99 = q(t->latency, 0.99);
	r.p99_unc = q(t->latency_uncorrected, 0.99);
	r.max = rs_hist_max(t->latency);
	r.max_unc = rs_hist_max(t->latency_uncorrected);
	r.t.latency = r.t.latency_uncorrected = r.t.latency_first = NULL;
	fl_loadgen_free(c.lg);
	if (uv_loop_close(&loop) < 0)
		bail_out("the loop still holds handles after the run");
	return r;
}

static char url[128];

static void reset_srv(void)
{
	atomic_store(&srv.status, 200);
	atomic_store(&srv.retry_after, 0);
	atomic_store(&srv.close_after, 0);
	atomic_store(&srv.close_silently, 0);
	atomic_store(&srv.delay_ns, 0);
	atomic_store(&srv.stall_from_ns, 0);
	atomic_store(&srv.stall_until_ns, 0);
	loadsrv_clear_log(&srv);
}

static void test_closed_loop(void)
{
	struct fl_loadgen_opts o = { .url = url, .connections = 4, .requests = 2000 };
	struct result r;
	int seen_once = 1;
	static unsigned char seen[2001];

	reset_srv();
	r = run(o, 0);
	ok(r.rc == 0, "closed loop starts (%s)", r.err);
	ok(r.t.requests == 2000 && r.t.successes == 2000 && r.t.failures == 0,
	   "closed loop, 4 connections, 2000 requests: %llu requests, %llu successes, %llu "
	   "failures",
	   (unsigned long long)r.t.requests, (unsigned long long)r.t.successes,
	   (unsigned long long)r.t.failures);
	is_int((long long)r.t.attempts, 2000, "attempts == requests (no retries)");
	is_int((long long)atomic_load(&srv.requests), 2000, "the server answered 2000 requests");
	ok(atomic_load(&srv.connections) == 4, "over 4 persistent connections (server saw %llu)",
	   (unsigned long long)atomic_load(&srv.connections));
	for (size_t i = 0; i < srv.nlog; i++) {
		unsigned long k = strtoul(srv.log[i].path + 6, NULL, 10);

		if (strncmp(srv.log[i].path, "/item/", 6) != 0 || k < 1 || k > 2000 || seen[k])
			seen_once = 0;
		else
			seen[k] = 1;
	}
	ok(seen_once && srv.nlog == 2000,
	   "paths /item/${seq} arrive as /item/1 .. /item/2000, each once");
	ok(r.ival_requests == r.t.requests && r.ival_attempts == r.t.attempts &&
	       r.ival_hist == r.t.successes,
	   "the %llu intervals add up to the totals (requests, attempts, latency count)",
	   (unsigned long long)r.nintervals);
}

static void test_open_loop_rate(void)
{
	struct fl_loadgen_opts o = {
		.url = url, .connections = 8, .rate = 1000, .duration_ns = 2 * RS_NS_PER_SEC
	};
	struct result r;

	reset_srv();
	r = run(o, 0);
	ok(r.rc == 0 && r.t.successes == r.t.requests,
	   "open loop at 1000 req/s for 2 s: every request succeeds (%llu)",
	   (unsigned long long)r.t.requests);
	is_double((double)r.t.requests, 2000, 20,
		  "achieved rate within 1%%: %llu requests started in the 2 s schedule (2000)",
		  (unsigned long long)r.t.requests);
	ok(r.nintervals >= 19 && r.nintervals <= 23,
	   "statistics came in 100 ms intervals (%llu of them over ~2 s)",
	   (unsigned long long)r.nintervals);
}

static void test_stall(void)
{
	struct fl_loadgen_opts o = {
		.url = url, .connections = 4, .rate = 500, .duration_ns = 3 * RS_NS_PER_SEC
	};
	struct result r;
	uint64_t now = loadsrv_now_ns();

	reset_srv();
	atomic_store(&srv.stall_from_ns, now + RS_NS_PER_SEC);
	atomic_store(&srv.stall_until_ns, now + 2 * RS_NS_PER_SEC);
	r = run(o, 0);
	diag("1 s stall in a 3 s run at 500 req/s: corrected p50 %.1f ms p99 %.1f ms max %.1f ms; "
	     "uncorrected p99 %.2f ms max %.1f ms; %llu requests",
	     r.p50 / 1e6, r.p99 / 1e6, r.max / 1e6, r.p99_unc / 1e6, r.max_unc / 1e6,
	     (unsigned long long)r.t.requests);
	ok(r.t.successes == r.t.requests && r.t.requests >= 1485 && r.t.requests <= 1515,
	   "every scheduled request ran (%llu of 1500), none lost to the stall",
	   (unsigned long long)r.t.requests);
	ok(r.p99 >= 500 * RS_NS_PER_MS, "corrected p99 shows the stall: %.1f ms >= 500 ms",
	   r.p99 / 1e6);
	ok(r.max >= 900 * RS_NS_PER_MS, "corrected max is about the stall: %.1f ms >= 900 ms",
	   r.max / 1e6);
	ok(r.p99_unc < 100 * RS_NS_PER_MS,
	   "uncorrected p99 hides it (coordinated omission): %.2f ms < 100 ms", r.p99_unc / 1e6);
	ok(r.max_unc >= 900 * RS_NS_PER_MS,
	   "the few requests caught in the stall still show it uncorrected: max %.1f ms",
	   r.max_unc / 1e6);
}

static void test_retries(void)
{
	struct fl_loadgen_opts o = { .url = url,
				     .connections = 4,
				     .requests = 100,
				     .retry_attempts = 3,
				     .retry_backoff = RS_BACKOFF_NONE,
				     .retry_base_ns = RS_NS_PER_MS };
	struct result r;

	reset_srv();
	atomic_store(&srv.status, 503);
	r = run(o, 0);
	ok(r.rc == 0 && r.t.requests == 100 && r.t.attempts == 300 && r.t.retries == 200,
	   "503s are retried up to the limit: 100 requests, %llu attempts (300), %llu retries",
	   (unsigned long long)r.t.attempts, (unsigned long long)r.t.retries);
	ok(r.t.failures == 100 && r.t.failed[FL_FAIL_5XX] == 100 &&
	       r.t.errors[FL_FAIL_5XX] == 300 && r.t.successes == 0,
	   "each request fails as 5xx after 3 attempts (errors 5xx %llu, failed 5xx %llu)",
	   (unsigned long long)r.t.errors[FL_FAIL_5XX],
	   (unsigned long long)r.t.failed[FL_FAIL_5XX]);
	is_int((long long)atomic_load(&srv.requests), 300, "the server saw all 300 attempts");

	/* The budget: at most 10% retries in steady state. */
	reset_srv();
	atomic_store(&srv.status, 503);
	o.requests = 2000;
	o.connections = 8;
	o.budget = true;
	o.budget_ratio = 0.1;
	o.budget_window_ns = 60 * RS_NS_PER_SEC;
	r = run(o, 0);
	{
		double amp = (double)r.t.attempts / (double)r.t.requests;

		diag("budget 0.1: %llu requests, %llu attempts (%.4f per request), %llu retries "
		     "denied by the budget",
		     (unsigned long long)r.t.requests, (unsigned long long)r.t.attempts, amp,
		     (unsigned long long)r.t.retries_denied_budget);
		ok(amp <= 1.1 * 1.01, "the budget caps attempts/requests at 1 + 0.1 (+1%%): %.4f",
		   amp);
		ok(amp >= 1.05, "and spends it: attempts/requests %.4f >= 1.05", amp);
		ok(r.t.retries_denied_budget > 0 && r.t.retries_denied_budget <= r.t.requests &&
		       r.t.attempts == r.t.requests + r.t.retries && r.t.failures == r.t.requests,
		   "denied retries are counted (%llu), attempts = requests + retries, every "
		   "request fails",
		   (unsigned long long)r.t.retries_denied_budget);
	}
}

static void test_kinds(void)
{
	struct fl_loadgen_opts o = { .url = url,
				     .connections = 2,
				     .requests = 50,
				     .retry_attempts = 3,
				     .retry_backoff = RS_BACKOFF_NONE,
				     .retry_base_ns = RS_NS_PER_MS };
	struct result r;

	reset_srv();
	atomic_store(&srv.status, 503);
	atomic_store(&srv.retry_after, 1);
	o.retry_attempts = 1;
	r = run(o, 0);
	ok(r.t.errors[FL_FAIL_SHED] == 50 && r.t.errors[FL_FAIL_5XX] == 0,
	   "503 with Retry-After counts as shed (%llu of 50)",
	   (unsigned long long)r.t.errors[FL_FAIL_SHED]);

	reset_srv();
	atomic_store(&srv.status, 429);
	r = run(o, 0);
	ok(r.t.errors[FL_FAIL_SHED] == 50, "429 counts as shed (%llu of 50)",
	   (unsigned long long)r.t.errors[FL_FAIL_SHED]);

	reset_srv();
	atomic_store(&srv.status, 404);
	o.retry_attempts = 3;
	r = run(o, 0);
	ok(r.t.errors[FL_FAIL_4XX] == 50 && r.t.attempts == 50 && r.t.failed[FL_FAIL_4XX] == 50,
	   "404 counts as 4xx and is not retried (%llu attempts for 50 requests)",
	   (unsigned long long)r.t.attempts);

	/* A body with variables: Content-Length is computed per request, else
	 * the server would lose the framing and the requests would time out. */
	reset_srv();
	{
		const char *h[] = { "X-Seq: ${seq}", "Content-Type: text/plain" };
		struct fl_loadgen_opts p = { .url = url,
					     .method = "POST",
					     .headers = h,
					     .nheaders = 2,
					     .body = "id=${seq}&u=${uuid}&r=${rand:0:999999}",
					     .connections = 2,
					     .requests = 300,
					     .timeout_ns = RS_NS_PER_SEC };

		r = run(p, 0);
		ok(r.rc == 0 && r.t.successes == 300 && atomic_load(&srv.requests) == 300 &&
		       atomic_load(&srv.connections) == 2,
		   "POST with a templated body and headers: 300 of 300 framed right on 2 "
		   "connections (%s)",
		   r.err);
	}

	reset_srv();
	atomic_store(&srv.close_after, 1);
	o.retry_attempts = 1;
	o.requests = 200;
	r = run(o, 0);
	ok(r.t.successes == 200 && r.t.failures == 0,
	   "'Connection: close' after every response: 200 of 200 succeed over new connections "
	   "(%llu connections)",
	   (unsigned long long)atomic_load(&srv.connections));

	/* The server closes idle connections without a word (an idle timeout):
	 * the client notices, reconnects, and loses nothing. */
	reset_srv();
	atomic_store(&srv.close_silently, 1);
	{
		struct fl_loadgen_opts p = {
			.url = url, .connections = 4, .rate = 200, .duration_ns = RS_NS_PER_SEC / 2
		};

		r = run(p, 0);
		ok(r.t.requests == 100 && r.t.successes == 100,
		   "a server that silently closes each idle connection: %llu of %llu requests "
		   "succeed over %llu connections",
		   (unsigned long long)r.t.successes, (unsigned long long)r.t.requests,
		   (unsigned long long)atomic_load(&srv.connections));
	}
}

static void test_connect_errors(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char dead[128];
	struct fl_loadgen_opts o = { .url = dead,
				     .connections = 2,
				     .duration_ns = 300 * RS_NS_PER_MS };
	struct result r;

	/* A bound socket that does not listen: connecting is refused, and no
	 * other process can take the port meanwhile. */
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) < 0)
		bail_out("cannot bind a socket on 127.0.0.1: %s", strerror(errno));
	snprintf(dead, sizeof(dead), "http://127.0.0.1:%u/", ntohs(a.sin_port));
	r = run(o, 0);
	close(fd);
	ok(r.rc == 0, "a run against a port where nothing listens is not an error of the tool");
	ok(r.t.errors[FL_FAIL_CONNECT] > 0 && r.t.failures == r.t.errors[FL_FAIL_CONNECT] &&
	       r.t.failed[FL_FAIL_CONNECT] == r.t.failures && r.t.successes == 0,
	   "every attempt is counted as a connect failure (%llu)",
	   (unsigned long long)r.t.errors[FL_FAIL_CONNECT]);
	ok(r.t.errors[FL_FAIL_CONNECT] <= 20,
	   "reconnects back off (10 ms doubling): %llu connect attempts by 2 connections in 300 ms",
	   (unsigned long long)r.t.errors[FL_FAIL_CONNECT]);
}

static void test_timeouts(void)
{
	struct fl_loadgen_opts o = {
		.url = url, .connections = 2, .requests = 10, .timeout_ns = 50 * RS_NS_PER_MS
	};
	struct result r;

	reset_srv();
	atomic_store(&srv.delay_ns, 300 * RS_NS_PER_MS);
	r = run(o, 0);
	ok(r.t.errors[FL_FAIL_TIMEOUT] == 10 && r.t.failed[FL_FAIL_TIMEOUT] == 10 &&
	       r.t.successes == 0,
	   "a 300 ms server with a 50 ms timeout: 10 of 10 attempts time out (%llu)",
	   (unsigned long long)r.t.errors[FL_FAIL_TIMEOUT]);
	ok(r.max_unc >= 49 * RS_NS_PER_MS && r.max_unc < 150 * RS_NS_PER_MS,
	   "a timed-out request ends at the timeout, not the response: max %.1f ms",
	   r.max_unc / 1e6);

	/* The deadline bounds retries: 100 ms attempts, 150 ms deadline. */
	reset_srv();
	atomic_store(&srv.delay_ns, 400 * RS_NS_PER_MS);
	o.timeout_ns = 100 * RS_NS_PER_MS;
	o.deadline_ns = 150 * RS_NS_PER_MS;
	o.retry_attempts = 5;
	o.retry_backoff = RS_BACKOFF_NONE;
	o.retry_base_ns = 10 * RS_NS_PER_MS;
	r = run(o, 0);
	ok(r.t.attempts == 20 && r.t.retries_denied_deadline == 10,
	   "a 150 ms deadline allows one retry of a 100 ms timeout (%llu attempts for 10 requests, "
	   "%llu retries denied by the deadline)",
	   (unsigned long long)r.t.attempts, (unsigned long long)r.t.retries_denied_deadline);
	ok(r.max_unc < 200 * RS_NS_PER_MS, "no request outlives its deadline by much: max %.1f ms",
	   r.max_unc / 1e6);
}

/* Retries of a 503-only server, 40 requests over 1 s; returns how many
 * retries arrived within tol of a multiple of tick, in *on_tick. */
static uint64_t lockstep_run(bool lockstep, uint64_t tick, uint64_t tol, uint64_t *on_tick)
{
	struct fl_loadgen_opts o = { .url = NULL,
				     .connections = 8,
				     .rate = 40,
				     .duration_ns = RS_NS_PER_SEC,
				     .retry_attempts = 3,
				     .retry_backoff = RS_BACKOFF_FULL,
				     .retry_base_ns = tick,
				     .retry_cap_ns = 4 * tick,
				     .lockstep = lockstep };
	static unsigned char seen[1000];
	char u[128];
	uint64_t retries = 0;

	snprintf(u, sizeof(u), "http://127.0.0.1:%u/r/${seq}", srv.port);
	o.url = u;
	reset_srv();
	atomic_store(&srv.status, 503);
	memset(seen, 0, sizeof(seen));
	(void)run(o, 0);
	*on_tick = 0;
	for (size_t i = 0; i < srv.nlog; i++) {
		unsigned long k = strtoul(srv.log[i].path + 3, NULL, 10);

		if (k >= 1000)
			continue;
		if (seen[k]++) {
			retries++;
			*on_tick += srv.log[i].t_ns % tick <= tol;
		}
	}
	return retries;
}

static void test_lockstep(void)
{
	uint64_t tick = 100 * RS_NS_PER_MS, tol = 20 * RS_NS_PER_MS, on, n;

	/* Arrival times are taken by the server's threads, so a busy machine
	 * can delay a few; 20 ms of a 100 ms tick is hit by chance 20% of the
	 * time, and lockstep must put (nearly) all retries there. */
	n = lockstep_run(true, tick, tol, &on);
	diag("lockstep: %llu of %llu retries arrived within 20 ms after a multiple of 100 ms",
	     (unsigned long long)on, (unsigned long long)n);
	ok(n == 80 && on * 10 >= n * 9,
	   "lockstep: %llu of %llu retries (80; >= 90%%) fire on the common 100 ms tick (+20 ms)",
	   (unsigned long long)on, (unsigned long long)n);
	n = lockstep_run(false, tick, tol, &on);
	diag(
	    "jitter: %llu of %llu retries within 20 ms after a multiple of 100 ms (20%% by chance)",
	    (unsigned long long)on, (unsigned long long)n);
	ok(n == 80 && on * 2 < n, "with jitter, retries are spread: %llu of %llu on the tick",
	   (unsigned long long)on, (unsigned long long)n);
}

static void test_stop_and_options(void)
{
	struct fl_loadgen_opts o = { .url = url,
				     .connections = 3,
				     .duration_ns = 10 * RS_NS_PER_SEC };
	struct result r;

	reset_srv();
	atomic_store(&srv.delay_ns, RS_NS_PER_SEC);
	r = run(o, 200 * RS_NS_PER_MS);
	ok(r.elapsed_ns < 2 * RS_NS_PER_SEC && r.t.abandoned == 3 && r.t.requests == 3,
	   "stop ends a 10 s run at once (%.2f s) and counts the %llu requests in flight as "
	   "abandoned",
	   r.elapsed_ns / 1e9, (unsigned long long)r.t.abandoned);

	o.rate = -1;
	r = run(o, 0);
	ok(r.rc == -EINVAL && strstr(r.err, "rate"), "a negative rate is refused: %s", r.err);
	o.rate = 0;
	o.duration_ns = 0;
	r = run(o, 0);
	ok(r.rc == -EINVAL && strstr(r.err, "duration"), "an unbounded run is refused: %s", r.err);
	o.duration_ns = RS_NS_PER_SEC;
	o.url = "http://127.0.0.1:1/${nope}";
	r = run(o, 0);
	ok(r.rc == -EINVAL && strstr(r.err, "${nope}") && strstr(r.err, "column 20"),
	   "an unknown variable in the path is refused, its column counted in the URL: %s", r.err);
	{
		const char *h[] = { "X-Ok: 1", "X-Id: ${uuid}${bad:1}" };

		o.url = url;
		o.headers = h;
		o.nheaders = 2;
		r = run(o, 0);
		ok(r.rc == -EINVAL && strstr(r.err, "header 2") && strstr(r.err, "${bad:1}") &&
		       strstr(r.err, "column 14"),
		   "an unknown variable in a header names the header and column: %s", r.err);
	}
}

static void cleanup(void)
{
	if (srv_up)
		loadsrv_stop(&srv);
	srv_up = false;
}

int main(void)
{
	alarm(120);
	signal(SIGPIPE, SIG_IGN);
	plan(7 + 3 + 5 + 6 + 6 + 3 + 4 + 2 + 5);
	if (loadsrv_start(&srv) < 0)
		bail_out("cannot start the test server on 127.0.0.1");
	srv_up = true;
	atexit(cleanup);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/item/${seq}", srv.port);
	test_closed_loop();
	test_open_loop_rate();
	test_stall();
	test_retries();
	test_kinds();
	test_connect_errors();
	test_timeouts();
	test_lockstep();
	test_stop_and_options();
	cleanup();
	return exit_status();
}
