/* The probe families against real servers on 127.0.0.1: a target/http.h
 * server in this test's loop serves /metrics (a counter the test moves
 * between samples), slow, failing and echoing endpoints; a raw libuv server
 * resets or cuts connections.  Covers the prometheus probe (gauge, rate,
 * delta, increase with injected now_ns, labels, sum, Resilience4j names,
 * failures as samples), the http probe (ok, status, latency, body and
 * header regexes, header numbers), the command probe (/bin/echo, /bin/false,
 * regexes, env, cwd, a timeout that kills and reaps), the client probe
 * through a fake source, the asynchronous HTTP/1.1 client's failures, and
 * the blocking client against the same server run in a thread. */
#include "tests/tap.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "probes/http1.h"
#include "probes/probe.h"
#include "target/http.h"

#define MS  1000000ull
#define SEC 1000000000ull
#define T0  (1000 * SEC) /* injected now_ns of the first sample */

static uv_loop_t loop;
static struct fl_http_server *srv;
static int port, closed_port, raw_port;
static double counter = 100;
static struct fl_probe_env env;
static char tmpdir[] = "/tmp/fl-probes-XXXXXX";

/* ---- the HTTP server (loop thread) ----------------------------------------- */

struct delayed {
	uv_timer_t t;
	struct fl_http_req *req;
};

static void on_delayed_closed(uv_handle_t *h)
{
	free(h->data);
}

static void on_delay(uv_timer_t *t)
{
	struct delayed *d = t->data;

	fl_http_respond(d->req, 200, "text/plain", NULL, "slow", 4);
	uv_close((uv_handle_t *)t, on_delayed_closed);
}

static void handler(struct fl_http_req *req, void *ctx)
{
	char body[1024];
	int n;

	(void)ctx;
	if (strcmp(req->path, "/metrics") == 0) {
		n = snprintf(
		    body, sizeof(body),
		    "# HELP app_requests_total requests\n"
		    "# TYPE app_requests_total counter\n"
		    "app_requests_total{code=\"200\"} %.17g\n"
		    "app_requests_total{code=\"500\"} 1\n"
		    "# TYPE app_queue gauge\n"
		    "app_queue 3.5 1700000000000\n"
		    "resilience4j_circuitbreaker_state{name=\"inv\",state=\"closed\",} 0.0\n"
		    "resilience4j_circuitbreaker_state{name=\"inv\",state=\"open\",} 1.0\n",
		    counter);
		fl_http_respond(req, 200, "text/plain; version=0.0.4", NULL, body, (size_t)n);
	} else if (strcmp(req->path, "/down") == 0) {
		fl_http_respond(req, 503, "text/plain", NULL, "down", 4);
	} else if (strcmp(req->path, "/hello") == 0) {
		fl_http_respond(req, 200, "text/plain", "X-Queue-Depth: 17\r\nX-Build: v1.2.3\r\n",
				"hello world 42", 14);
	} else if (strcmp(req->path, "/echo") == 0) {
		fl_http_respond(req, 200, "text/plain", NULL, req->body, req->body_len);
	} else if (strcmp(req->path, "/big") == 0) {
		static char big[100000];

		memset(big, 'x', sizeof(big));
		fl_http_respond(req, 200, "text/plain", NULL, big, sizeof(big));
	} else if (strcmp(req->path, "/slow") == 0) {
		struct delayed *d = malloc(sizeof(*d));

		d->req = req;
		d->t.data = d;
		uv_timer_init(&loop, &d->t);
		uv_timer_start(&d->t, on_delay, (uint64_t)atoi(req->query + 3), 0); /* ms=N */
	} else {
		fl_http_respond(req, 404, "text/plain", NULL, "no", 2);
	}
}

/* ---- a raw server that resets (RST) or cuts a response short -------------- */

static uv_tcp_t raw_listener;
/* 0: reset after reading the request; 1: half a response, then FIN; 2: a
 * HEAD answer (Content-Length: 100 and no body), then FIN */
static int raw_mode;

static void on_raw_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
	static char buf[4096];

	(void)h;
	(void)sz;
	b->base = buf;
	b->len = sizeof(buf);
}

static void on_raw_closed(uv_handle_t *h)
{
	free(h);
}

static void on_raw_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	static const char partial[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort";
	uv_buf_t w = uv_buf_init((char *)partial, sizeof(partial) - 1 - (raw_mode == 2 ? 5 : 0));

	(void)b;
	if (n <= 0) {
		uv_close((uv_handle_t *)s, on_raw_closed);
		return;
	}
	uv_read_stop(s);
	if (raw_mode == 0) {
		uv_tcp_close_reset((uv_tcp_t *)s, on_raw_closed);
	} else {
		uv_try_write(s, &w, 1);
		uv_close((uv_handle_t *)s, on_raw_closed);
	}
}

static void on_raw_conn(uv_stream_t *l, int status)
{
	uv_tcp_t *c = malloc(sizeof(*c));

	if (status < 0 || !c) {
		free(c);
		return;
	}
	uv_tcp_init(&loop, c);
	if (uv_accept(l, (uv_stream_t *)c) == 0)
		uv_read_start((uv_stream_t *)c, on_raw_alloc, on_raw_read);
	else
		uv_close((uv_handle_t *)c, on_raw_closed);
}

/* ---- helpers ------------------------------------------------------------------ */

static void on_tick(uv_timer_t *t)
{
	(void)t;
}

/* Runs the loop until *flag; a 10 ms tick keeps UV_RUN_ONCE from blocking
 * when the flag was set by a timer that ran before the poll. */
static uv_timer_t tick;

static void run_until(const bool *flag)
{
	uv_timer_start(&tick, on_tick, 10, 10);
	while (!*flag)
		uv_run(&loop, UV_RUN_ONCE);
	uv_timer_stop(&tick);
}

struct got {
	bool done;
	int calls;
	struct fl_probe_sample s;
};

static bool in_sample_call;
static int started, callbacks, inside;

static void on_sample(void *ctx, const struct fl_probe_sample *s)
{
	struct got *g = ctx;

	callbacks++;
	inside += in_sample_call;
	g->calls++;
	g->s = *s;
	g->done = true;
}

/* Samples p at now_ns and waits for the callback; returns the sample call's
 * result. */
static int sample(struct fl_probe_inst *p, uint64_t now_ns, struct got *g)
{
	int rc;

	memset(g, 0, sizeof(*g));
	in_sample_call = true;
	rc = fl_probe_sample(p, now_ns, on_sample, g);
	in_sample_call = false;
	if (rc < 0)
		return rc;
	started++;
	run_until(&g->done);
	if (g->s.status)
		diag("sample failed: %d %s", g->s.status, g->s.why);
	return 0;
}

static struct fl_probe_inst *open_probe(const struct fl_probe_cfg *cfg)
{
	struct fl_probe_inst *p = NULL;
	struct rs_err err = { "" };

	if (fl_probe_open(&p, cfg, &env, &err) < 0)
		diag("open failed: %s", err.msg);
	return p;
}

static void set_flag(void *ctx)
{
	*(bool *)ctx = true;
}

static void close_probe(struct fl_probe_inst *p)
{
	bool closed = false;

	if (!p)
		return;
	fl_probe_close(p, set_flag, &closed);
	run_until(&closed);
}

static char *url(char *buf, size_t n, int p, const char *path)
{
	snprintf(buf, n, "http://127.0.0.1:%d%s", p, path);
	return buf;
}

#define L(...) ((const char *const[]){ __VA_ARGS__, NULL })

static struct fl_probe_cfg prom_cfg(const char *u, const char *metric, const char *const *labels,
				    enum fl_prom_mode mode)
{
	struct fl_probe_cfg c = { .family = FL_PROBE_PROMETHEUS, .name = "prom" };

	c.prometheus.url = u;
	c.prometheus.metric = metric;
	c.prometheus.labels = labels;
	c.prometheus.mode = mode;
	return c;
}

/* ---- prometheus ---------------------------------------------------------------- */

static void test_prometheus(void)
{
	char u[128], bad[128];
	struct fl_probe_cfg c;
	struct fl_probe_inst *p;
	struct rs_err err = { "" };
	struct got g, g2;
	int rc;

	url(u, sizeof(u), port, "/metrics");

	c = prom_cfg(u, "app_queue", NULL, FL_PROM_GAUGE);
	p = open_probe(&c);
	sample(p, T0, &g);
	ok(g.calls == 1 && g.s.status == 0 && g.s.value == 3.5 && g.s.t_ns == T0,
	   "gauge: app_queue reads 3.5, stamped with the now_ns given (%g)", g.s.value);
	close_probe(p);

	counter = 100;
	c = prom_cfg(u, "app_requests_total", L("code", "200"), FL_PROM_RATE);
	p = open_probe(&c);
	sample(p, T0, &g);
	ok(g.s.status == -ENODATA && strstr(g.s.why, "no previous sample") && isnan(g.s.value),
	   "rate: the first sample fails with -ENODATA ('%s')", g.s.why);
	counter = 350;
	sample(p, T0 + 2500 * MS, &g);
	is_double(g.s.value, 100, 1e-9, "rate: 100 -> 350 over 2.5 s is exactly 100/s");
	counter = 380;
	sample(p, T0 + 3000 * MS, &g);
	is_double(g.s.value, 60, 1e-9, "rate: +30 over 0.5 s is 60/s");
	counter = 20;
	sample(p, T0 + 5000 * MS, &g);
	is_double(g.s.value, 10, 1e-9,
		  "rate: a counter that went down (reset) counts from 0: 20 in "
		  "2 s is 10/s");
	sample(p, T0 + 5000 * MS, &g);
	ok(g.s.status == -ENODATA, "rate: no time elapsed is a failed sample, not a division by 0");
	close_probe(p);

	counter = 1000;
	c = prom_cfg(u, "app_requests_total", L("code", "200"), FL_PROM_DELTA);
	p = open_probe(&c);
	sample(p, T0, &g);
	ok(g.s.status == 0 && g.s.value == 0, "delta: the first sample is 0");
	counter = 1050;
	sample(p, T0 + SEC, &g);
	counter = 1075;
	sample(p, T0 + 2 * SEC, &g2);
	ok(g.s.value == 50 && g2.s.value == 75,
	   "delta: the increase since the first sample (50, 75)");
	counter = 10;
	sample(p, T0 + 3 * SEC, &g);
	is_double(g.s.value, 85, 0, "delta: across a counter reset 75 + 10 = 85");
	close_probe(p);

	counter = 5;
	c = prom_cfg(u, "app_requests_total", L("code", "200"), FL_PROM_INCREASE);
	p = open_probe(&c);
	sample(p, T0, &g);
	counter = 12;
	sample(p, T0 + SEC, &g2);
	ok(g.s.status == -ENODATA && g2.s.value == 7,
	   "increase: first sample -ENODATA, then the increase since the previous one (7)");
	close_probe(p);

	counter = 41;
	c = prom_cfg(u, "app_requests_total", NULL, FL_PROM_GAUGE);
	c.prometheus.sum = true;
	p = open_probe(&c);
	sample(p, T0, &g);
	ok(g.s.status == 0 && g.s.value == 42, "sum over both codes: 41 + 1 = 42");
	close_probe(p);
	c.prometheus.sum = false;
	p = open_probe(&c);
	sample(p, T0, &g);
	ok(g.s.status == -ENOTUNIQ && strstr(g.s.why, "2 series match"),
	   "two series where one is expected: a failed sample ('%s')", g.s.why);
	close_probe(p);

	c = prom_cfg(u, "resilience_breaker_state", L("name", "inv"), FL_PROM_GAUGE);
	p = open_probe(&c);
	sample(p, T0, &g);
	ok(g.s.status == 0 && g.s.value == 2,
	   "resilience_breaker_state{name=\"inv\"} reads resilience4j's state=\"open\" as 2");
	close_probe(p);

	c = prom_cfg(u, "app_missing", NULL, FL_PROM_GAUGE);
	p = open_probe(&c);
	sample(p, T0, &g);
	ok(g.s.status == -ENOENT && strcmp(g.s.why, "no series app_missing in the exposition") == 0,
	   "a series that is not exported: failed sample '%s'", g.s.why);
	close_probe(p);

	c = prom_cfg(url(bad, sizeof(bad), port, "/down"), "app_queue", NULL, FL_PROM_GAUGE);
	p = open_probe(&c);
	sample(p, T0, &g);
	ok(g.s.status == -EREMOTEIO && strstr(g.s.why, "answered 503"),
	   "an exposition answered 503: failed sample '%s'", g.s.why);
	close_probe(p);

	c = prom_cfg(url(bad, sizeof(bad), closed_port, "/metrics"), "app_queue", NULL,
		     FL_PROM_GAUGE);
	p = open_probe(&c);
	rc = sample(p, T0, &g);
	{
		char want[64];

		snprintf(want, sizeof(want), "connection refused to 127.0.0.1:%d", closed_port);
		ok(p && rc == 0 && g.s.status == -ECONNREFUSED && strcmp(g.s.why, want) == 0,
		   "a closed port is a failed sample, not an error: '%s'", g.s.why);
	}
	close_probe(p);

	c = prom_cfg(url(bad, sizeof(bad), port, "/slow?ms=400"), "app_queue", NULL, FL_PROM_GAUGE);
	c.timeout_ns = 100 * MS;
	p = open_probe(&c);
	sample(p, T0, &g);
	ok(g.s.status == -ETIMEDOUT && strncmp(g.s.why, "timed out after 100ms", 21) == 0,
	   "an exposition slower than the timeout: '%s'", g.s.why);
	close_probe(p);

	/* One sample at a time; close cancels the one in flight. */
	c.timeout_ns = 0;
	p = open_probe(&c);
	memset(&g, 0, sizeof(g));
	rc = fl_probe_sample(p, T0, on_sample, &g);
	started++;
	ok(rc == 0 && fl_probe_sample(p, T0 + MS, on_sample, &g2) == -EBUSY && g.calls == 0,
	   "a second sample while the first runs: -EBUSY");
	{
		bool closed = false;

		fl_probe_close(p, set_flag, &closed);
		ok(g.calls == 1 && g.s.status == -ECANCELED,
		   "close with a sample in flight: its callback runs once, -ECANCELED");
		run_until(&closed);
		ok(closed && g.calls == 1,
		   "then the probe closes (closed callback), no second call");
	}

	c = prom_cfg("https://127.0.0.1/metrics", "app_queue", NULL, FL_PROM_GAUGE);
	rc = fl_probe_open(&p, &c, &env, &err);
	ok(rc == -EINVAL && strstr(err.msg, "probe 'prom' (prometheus)") &&
	       strstr(err.msg, "only http://"),
	   "a bad URL is refused at open: %s", err.msg);
	c = prom_cfg(u, NULL, NULL, FL_PROM_GAUGE);
	rc = fl_probe_open(&p, &c, &env, &err);
	ok(rc == -EINVAL && strstr(err.msg, "metric is required"), "no metric: %s", err.msg);
}

/* ---- http ---------------------------------------------------------------------- */

static struct fl_probe_cfg http_cfg(const char *u, enum fl_http_value v)
{
	struct fl_probe_cfg c = { .family = FL_PROBE_HTTP, .name = "web" };

	c.http.url = u;
	c.http.value = v;
	return c;
}

static void test_http(void)
{
	char u[128], down[128], slow[128], echo[128], refused[128];
	struct fl_probe_cfg c;
	struct fl_probe_inst *p;
	struct rs_err err = { "" };
	struct got g, g2;
	int rc;

	url(u, sizeof(u), port, "/hello");
	url(down, sizeof(down), port, "/down");
	url(slow, sizeof(slow), port, "/slow?ms=150");
	url(echo, sizeof(echo), port, "/echo");
	url(refused, sizeof(refused), closed_port, "/");

	c = http_cfg(u, FL_HTTP_OK);
	c.http.body_regex = "world [0-9]+$";
	c.http.headers = L("x-build", "^v1\\.[0-9]+", "X-Queue-Depth", "^17$");
	p = open_probe(&c);
	sample(p, T0, &g);
	ok(g.s.status == 0 && g.s.value == 1, "ok: 200, body and both header regexes match -> 1");
	close_probe(p);
	c.http.headers = L("X-Build", "^v2");
	p = open_probe(&c);
	sample(p, T0, &g);
	ok(g.s.status == 0 && g.s.value == 0, "ok: a header regex that does not match -> 0");
	close_probe(p);
	c.http.headers = NULL;
	c.http.body_regex = "^goodbye";
	p = open_probe(&c);
	sample(p, T0, &g);
	ok(g.s.status == 0 && g.s.value == 0, "ok: a body regex that does not match -> 0");
	close_probe(p);

	c = http_cfg(down, FL_HTTP_OK);
	p = open_probe(&c);
	sample(p, T0, &g);
	close_probe(p);
	c.http.expect_status = 503;
	p = open_probe(&c);
	sample(p, T0, &g2);
	close_probe(p);
	ok(g.s.value == 0 && g2.s.value == 1,
	   "ok: 503 is 0 when any 2xx is expected, 1 when 503 is");
	c = http_cfg(down, FL_HTTP_STATUS);
	p = open_probe(&c);
	sample(p, T0, &g);
	ok(g.s.status == 0 && g.s.value == 503, "status: 503");
	close_probe(p);

	c = http_cfg(slow, FL_HTTP_LATENCY_SECONDS);
	p = open_probe(&c);
	sample(p, T0, &g);
	/* libuv timers count whole milliseconds of a cached clock: the server's
	 * 150 ms may end up to 1 ms early; 2 ms of tolerance. */
	ok(g.s.status == 0 && g.s.value >= 0.148 && g.s.value < 1.0,
	   "latency: a response delayed 150 ms reads %.4f s (>= 0.148, < the 1 s timeout)",
	   g.s.value);
	close_probe(p);

	c = http_cfg(u, FL_HTTP_HEADER_NUMBER);
	c.http.header = "x-queue-depth";
	p = open_probe(&c);
	sample(p, T0, &g);
	ok(g.s.status == 0 && g.s.value == 17, "header number: X-Queue-Depth is 17");
	close_probe(p);
	c.http.header = "X-Absent";
	p = open_probe(&c);
	sample(p, T0, &g);
	ok(g.s.status == -ENOENT && strstr(g.s.why, "no header 'X-Absent'"),
	   "header number: an absent header is a failed sample ('%s')", g.s.why);
	close_probe(p);

	c = http_cfg(echo, FL_HTTP_OK);
	c.http.method = "POST";
	c.http.request_body = "ping";
	c.http.body_regex = "^ping$";
	p = open_probe(&c);
	sample(p, T0, &g);
	ok(g.s.status == 0 && g.s.value == 1, "POST with a body: the echo matches ^ping$");
	close_probe(p);

	c = http_cfg(refused, FL_HTTP_STATUS);
	p = open_probe(&c);
	sample(p, T0, &g);
	ok(g.s.status == -ECONNREFUSED && strstr(g.s.why, "connection refused to 127.0.0.1:"),
	   "http to a closed port: failed sample '%s'", g.s.why);
	close_probe(p);

	c = http_cfg(u, FL_HTTP_OK);
	c.http.body_regex = "([unclosed";
	rc = fl_probe_open(&p, &c, &env, &err);
	ok(rc == -EINVAL && strstr(err.msg, "body_regex: bad regular expression"),
	   "a bad regex is refused at open: %s", err.msg);
	c = http_cfg(u, FL_HTTP_HEADER_NUMBER);
	rc = fl_probe_open(&p, &c, &env, &err);
	ok(rc == -EINVAL && strstr(err.msg, "needs http.header"),
	   "header number without a header: %s", err.msg);
}

/* ---- command ------------------------------------------------------------------- */

static struct fl_probe_cfg cmd_cfg(const char *const *argv, enum fl_cmd_value v, const char *rx)
{
	struct fl_probe_cfg c = { .family = FL_PROBE_COMMAND, .name = "cmd" };

	c.command.argv = argv;
	c.command.value = v;
	c.command.regex = rx;
	return c;
}

/* Runs one sample of a fresh command probe. */
static struct fl_probe_sample run_cmd(const struct fl_probe_cfg *c)
{
	struct fl_probe_inst *p = open_probe(c);
	struct got g;

	memset(&g, 0, sizeof(g));
	g.s.status = -EINVAL;
	if (p) {
		sample(p, T0, &g);
		close_probe(p);
	}
	return g.s;
}

static void cleanup(void)
{
	rmdir(tmpdir);
}

static bool no_children(void)
{
	int st;

	return waitpid(-1, &st, WNOHANG) == -1 && errno == ECHILD;
}

static void test_command(void)
{
	struct fl_probe_cfg c;
	struct fl_probe_sample s, s2;
	struct fl_probe_inst *p;
	struct got g;
	char re[128];

	c = cmd_cfg(L("/bin/echo", "42"), FL_CMD_NUMBER, NULL);
	s = run_cmd(&c);
	ok(s.status == 0 && s.value == 42, "/bin/echo 42 -> 42");
	c = cmd_cfg(L("/bin/false"), FL_CMD_EXIT, NULL);
	s = run_cmd(&c);
	c = cmd_cfg(L("/bin/true"), FL_CMD_EXIT, NULL);
	s2 = run_cmd(&c);
	ok(s.status == 0 && s.value == 1 && s2.status == 0 && s2.value == 0,
	   "exit: /bin/false -> 1, /bin/true -> 0");
	c = cmd_cfg(L("/bin/echo", "breaker state=open"), FL_CMD_REGEX_MATCH, "state=open$");
	s = run_cmd(&c);
	c = cmd_cfg(L("/bin/echo", "breaker state=closed"), FL_CMD_REGEX_MATCH, "state=open$");
	s2 = run_cmd(&c);
	ok(s.value == 1 && s2.value == 0, "regex match: 1 when stdout matches, 0 when not");
	c = cmd_cfg(L("/bin/echo", "queue depth=17 items"), FL_CMD_REGEX_NUMBER, "depth=([0-9]+)");
	s = run_cmd(&c);
	ok(s.status == 0 && s.value == 17, "regex number: the first group 'depth=([0-9]+)' -> 17");
	c = cmd_cfg(L("/bin/ls", "/no/such/dir/for/faultline"), FL_CMD_NUMBER, NULL);
	s = run_cmd(&c);
	ok(s.status == -ECHILD && strstr(s.why, "exited with status 2"),
	   "number from a program that failed: failed sample '%s'", s.why);
	c = cmd_cfg(L("/no/such/program"), FL_CMD_EXIT, NULL);
	s = run_cmd(&c);
	ok(s.status == -ENOENT && strstr(s.why, "cannot run '/no/such/program'"),
	   "a program that does not exist: failed sample '%s'", s.why);

	c = cmd_cfg(L("/usr/bin/env"), FL_CMD_REGEX_NUMBER, "FL_PROBE_X=([0-9]+)");
	c.command.env = L("FL_PROBE_X=31");
	s = run_cmd(&c);
	ok(s.status == 0 && s.value == 31, "env: an extra variable reaches the child (31)");
	c = cmd_cfg(L("/bin/pwd"), FL_CMD_REGEX_MATCH, re);
	/* The directory lives only for this sample. */
	if (!mkdtemp(tmpdir))
		bail_out("cannot create a temporary directory: %s", strerror(errno));
	atexit(cleanup);
	snprintf(re, sizeof(re), "^%s$", tmpdir);
	c.command.cwd = tmpdir;
	s = run_cmd(&c);
	rmdir(tmpdir);
	ok(s.status == 0 && s.value == 1, "cwd: /bin/pwd prints %s", tmpdir);
	c = cmd_cfg(L("/usr/bin/seq", "7", "300000"), FL_CMD_NUMBER, NULL);
	s = run_cmd(&c);
	ok(s.status == 0 && s.value == 7,
	   "2 MB of output past the 64 KiB cap is drained: the first number is 7");

	c = cmd_cfg(L("/bin/sleep", "5"), FL_CMD_EXIT, NULL);
	c.timeout_ns = 200 * MS;
	s = run_cmd(&c);
	ok(s.status == -ETIMEDOUT && strncmp(s.why, "timed out after 200ms", 21) == 0,
	   "/bin/sleep 5 with a 200 ms timeout: failed '%s'", s.why);
	ok(s.dur_ns < 4 * SEC && no_children(),
	   "the child was killed, not waited for (%.3f s), and reaped", (double)s.dur_ns / 1e9);

	c.timeout_ns = 0;
	p = open_probe(&c);
	memset(&g, 0, sizeof(g));
	if (fl_probe_sample(p, T0, on_sample, &g) == 0)
		started++;
	uv_run(&loop, UV_RUN_NOWAIT);
	{
		bool closed = false;

		fl_probe_close(p, set_flag, &closed);
		run_until(&closed);
		ok(g.calls == 1 && g.s.status == -ECANCELED && no_children(),
		   "closing a probe whose child runs: -ECANCELED, child killed and reaped");
	}
}

/* ---- client ------------------------------------------------------------------- */

static uint64_t src_now;
static int src_rc;

static int fake_read(void *ctx, const char *metric, uint64_t now_ns, double *value)
{
	(void)ctx;
	src_now = now_ns;
	if (src_rc)
		return src_rc;
	*value = strcmp(metric, "error_rate") == 0 ? 0.25 : -1;
	return 0;
}

static void test_client(void)
{
	static const struct fl_client_source src = { NULL, fake_read };
	struct fl_probe_env noclient = { &loop, NULL };
	struct fl_probe_cfg c = { .family = FL_PROBE_CLIENT, .name = "client.error_rate" };
	struct fl_probe_inst *p;
	struct rs_err err = { "" };
	struct got g;
	int rc;

	c.client.metric = "error_rate";
	env.client = &src;
	p = open_probe(&c);
	sample(p, T0 + 7, &g);
	ok(g.s.status == 0 && g.s.value == 0.25 && src_now == T0 + 7 && g.s.t_ns == T0 + 7,
	   "client: error_rate read from the source at the sample's now_ns (0.25)");
	src_rc = -ENODATA;
	sample(p, T0 + 8, &g);
	ok(g.s.status == -ENODATA &&
	       strcmp(g.s.why, "no load interval yet for client.error_rate") == 0,
	   "client: no interval yet is a failed sample '%s'", g.s.why);
	close_probe(p);
	rc = fl_probe_open(&p, &c, &noclient, &err);
	ok(rc == -EINVAL && strstr(err.msg, "no load generator"), "client without a source: %s",
	   err.msg);
}

/* ---- the asynchronous client's own failures -------------------------------------- */

struct res {
	bool done;
	int status;
	char why[FL_HTTP1_WHY_MAX];
	size_t body_len;
	char hdr[32];
};

static void on_res(void *ctx, const struct fl_http1_result *r)
{
	struct res *x = ctx;
	const char *h = fl_http1_result_header(r, "content-length");

	x->status = r->status;
	snprintf(x->why, sizeof(x->why), "%s", r->why);
	x->body_len = r->body_len;
	snprintf(x->hdr, sizeof(x->hdr), "%s", h ? h : "");
	x->done = true;
}

static struct res http1(const char *method, const char *u, size_t body_max)
{
	struct fl_http1_opts o = { .method = method, .url = u, .body_max = body_max };
	struct res x = { 0 };
	struct rs_err err = { "" };

	if (fl_http1_request(NULL, &loop, &o, on_res, &x, &err) < 0) {
		x.status = -999;
		diag("%s", err.msg);
		return x;
	}
	run_until(&x.done);
	return x;
}

static void test_http1(void)
{
	char u[128];
	struct res x;

	x = http1("GET", url(u, sizeof(u), port, "/big"), 1000);
	ok(x.status == -EMSGSIZE && strstr(x.why, "larger than 1000 bytes"),
	   "a body past the cap: -EMSGSIZE '%s'", x.why);
	x = http1("GET", u, 0);
	ok(x.status == 200 && x.body_len == 100000 && strcmp(x.hdr, "100000") == 0,
	   "under the default 4 MiB cap the 100000-byte body is whole");
	raw_mode = 2;
	x = http1("HEAD", url(u, sizeof(u), raw_port, "/"), 0);
	ok(x.status == 200 && x.body_len == 0 && strcmp(x.hdr, "100") == 0,
	   "HEAD: 200 with Content-Length: 100 and no body is complete (%d %s)", x.status, x.why);
	raw_mode = 0;
	x = http1("GET", u, 0);
	ok(x.status == -ECONNRESET && strstr(x.why, "reset by 127.0.0.1:"),
	   "a server that resets: -ECONNRESET '%s'", x.why);
	raw_mode = 1;
	x = http1("GET", u, 0);
	ok(x.status == -ECONNRESET && strstr(x.why, "before the response was complete"),
	   "a response cut short: -ECONNRESET '%s'", x.why);
}

/* ---- the blocking client, with the server's loop in a thread -------------------- */

static uv_async_t stop_async;

static void on_stop(uv_async_t *a)
{
	(void)a;
	uv_stop(&loop);
}

static void *loop_thread(void *arg)
{
	(void)arg;
	uv_run(&loop, UV_RUN_DEFAULT);
	return NULL;
}

static void test_sync(void)
{
	pthread_t th;
	char u[128], buf[4096];
	struct rs_err err = { "" };
	int status = 0, rc;

	counter = 77;
	uv_async_init(&loop, &stop_async, on_stop);
	if (pthread_create(&th, NULL, loop_thread, NULL) != 0)
		bail_out("cannot start the loop thread");

	rc = fl_http1_request_sync(NULL, url(u, sizeof(u), port, "/metrics"), NULL, 0, &status, buf,
				   sizeof(buf), &err);
	ok(rc == 0 && status == 200 && strstr(buf, "app_requests_total{code=\"200\"} 77\n"),
	   "sync GET /metrics: 200 and the exposition");
	rc = fl_http1_request_sync("POST", url(u, sizeof(u), port, "/echo"), "hello", 0, &status,
				   buf, sizeof(buf), &err);
	ok(rc == 0 && status == 200 && strcmp(buf, "hello") == 0, "sync POST /echo: 'hello' back");
	rc = fl_http1_request_sync(NULL, url(u, sizeof(u), port, "/down"), NULL, 0, &status, buf,
				   sizeof(buf), &err);
	ok(rc == 0 && status == 503 && strcmp(buf, "down") == 0,
	   "sync: a 503 is a response (rc 0, status 503)");
	rc = fl_http1_request_sync(NULL, url(u, sizeof(u), closed_port, "/"), NULL, 0, &status, buf,
				   sizeof(buf), &err);
	ok(rc == -ECONNREFUSED && strstr(err.msg, "connection refused to 127.0.0.1:"),
	   "sync to a closed port: %s", err.msg);
	rc = fl_http1_request_sync(NULL, url(u, sizeof(u), port, "/slow?ms=500"), NULL, 100 * MS,
				   &status, buf, sizeof(buf), &err);
	ok(rc == -ETIMEDOUT && strncmp(err.msg, "timed out after 100ms", 21) == 0,
	   "sync with a 100 ms timeout on a 500 ms answer: %s", err.msg);
	rc = fl_http1_request_sync(NULL, url(u, sizeof(u), port, "/big"), NULL, 0, &status, buf,
				   sizeof(buf), &err);
	ok(rc == -EMSGSIZE && strstr(err.msg, "does not fit in 4096 bytes"),
	   "sync: a 100000-byte body into 4096 bytes: %s", err.msg);
	rc = fl_http1_request_sync(NULL, "http://example.com/", NULL, 0, &status, buf, sizeof(buf),
				   &err);
	ok(rc == -EINVAL && strstr(err.msg, "names are not resolved"), "sync: %s", err.msg);

	uv_async_send(&stop_async);
	pthread_join(th, NULL);
	uv_close((uv_handle_t *)&stop_async, NULL);
}

/* ---- main ------------------------------------------------------------------------ */

static void on_srv_closed(void *ctx)
{
	*(bool *)ctx = true;
}

int main(void)
{
	struct fl_http_server_opts so = { .on_request = handler };
	struct sockaddr_in a;
	int len = sizeof(a), fd;
	struct rs_err err = { "" };
	bool srv_closed = false;

	signal(SIGPIPE, SIG_IGN);
	alarm(60); /* watchdog: SIGALRM kills the test, prove reports it */
	plan(22 + 12 + 12 + 3 + 5 + 7 + 2);

	uv_loop_init(&loop);
	uv_timer_init(&loop, &tick);
	env.loop = &loop;
	if (fl_http_server_new(&srv, &loop, &so, &err) < 0 ||
	    fl_http_server_listen(srv, "127.0.0.1", 0, &err) < 0)
		bail_out("cannot start the server: %s", err.msg);
	port = fl_http_server_port(srv);

	/* A port nothing listens on: bind, read the port, close. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, (socklen_t *)&len) < 0)
		bail_out("cannot find a free port");
	closed_port = ntohs(a.sin_port);
	close(fd);

	uv_tcp_init(&loop, &raw_listener);
	uv_ip4_addr("127.0.0.1", 0, &a);
	if (uv_tcp_bind(&raw_listener, (struct sockaddr *)&a, 0) < 0 ||
	    uv_listen((uv_stream_t *)&raw_listener, 16, on_raw_conn) < 0 ||
	    uv_tcp_getsockname(&raw_listener, (struct sockaddr *)&a, &len) < 0)
		bail_out("cannot start the raw server");
	raw_port = ntohs(a.sin_port);

	test_prometheus();
	test_http();
	test_command();
	test_client();
	test_http1();
	test_sync();

	ok(inside == 0 && callbacks == started,
	   "every sample's callback ran exactly once (%d of %d), never inside fl_probe_sample",
	   callbacks, started);
	fl_http_server_close(srv, on_srv_closed, &srv_closed);
	uv_close((uv_handle_t *)&raw_listener, NULL);
	uv_close((uv_handle_t *)&tick, NULL);
	run_until(&srv_closed);
	uv_run(&loop, UV_RUN_DEFAULT);
	ok(uv_loop_close(&loop) == 0, "every handle is closed at the end");
	return exit_status();
}
