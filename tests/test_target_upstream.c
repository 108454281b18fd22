/* The dependency client pool against an fl_http server on the same loop:
 * status and body, connection reuse, the timeout (and the next request
 * still working), the FIFO and its -EBUSY overflow, a deadline that expires
 * in the FIFO, -ECONNREFUSED when nothing listens, reconnecting after the
 * server comes back, and close with requests in flight. */
#include "tests/tap.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include "target/http.h"
#include "target/upstream.h"

#define MS 1000000ull

static uv_loop_t loop;
static struct fl_http_server *srv;
static int server_closed;

struct delayed {
	uv_timer_t t;
	struct fl_http_req *req;
};

static void on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

static void on_delay(uv_timer_t *t)
{
	struct delayed *d = t->data;

	fl_http_respond(d->req, 200, "text/plain", NULL, "slow", 4);
	uv_close((uv_handle_t *)t, on_timer_closed);
}

static void handler(struct fl_http_req *req, void *ctx)
{
	char body[64];
	int n;

	(void)ctx;
	if (strncmp(req->path, "/stock/", 7) == 0) {
		n = snprintf(body, sizeof(body), "stock %s", req->path + 7);
		fl_http_respond(req, 200, "text/plain", NULL, body, (size_t)n);
	} else if (strcmp(req->path, "/slow") == 0) {
		struct delayed *d = malloc(sizeof(*d));

		d->req = req;
		d->t.data = d;
		uv_timer_init(&loop, &d->t);
		uv_timer_start(&d->t, on_delay, (uint64_t)atoi(req->query + 3), 0);
	} else {
		fl_http_respond(req, 404, NULL, NULL, "", 0);
	}
}

static void on_server_closed(void *ctx)
{
	(void)ctx;
	server_closed++;
}

static int start_server(int port)
{
	struct rs_err err = { "" };

	if (fl_http_server_new(&srv, &loop, &(struct fl_http_server_opts){ .on_request = handler },
			       &err) ||
	    fl_http_server_listen(srv, "127.0.0.1", port, &err))
		bail_out("cannot start the test server: %s", err.msg);
	return fl_http_server_port(srv);
}

static void stop_server(void)
{
	uint64_t end = uv_hrtime() + 5000 * MS;
	int before = server_closed;

	fl_http_server_close(srv, on_server_closed, NULL);
	while (server_closed == before && uv_hrtime() < end)
		uv_run(&loop, UV_RUN_ONCE);
	srv = NULL;
}

/* One request's outcome. */
struct out {
	int done;
	int status;
	char body[64];
	uint64_t at_ns; /* when the callback ran */
	int order;	/* completion order among a batch */
};

static int completions;

static void on_resp(int status, const char *body, size_t len, void *ctx)
{
	struct out *o = ctx;

	o->done++;
	o->status = status;
	o->at_ns = uv_hrtime();
	o->order = completions++;
	snprintf(o->body, sizeof(o->body), "%.*s", (int)len, body ? body : "");
}

static void run_until_done(struct out *o, int n, uint64_t max_ns)
{
	uint64_t end = uv_hrtime() + max_ns;

	for (;;) {
		int all = 1;

		for (int i = 0; i < n; i++)
			all &= o[i].done > 0;
		if (all || uv_hrtime() >= end)
			return;
		uv_run(&loop, UV_RUN_ONCE);
	}
}

/* Sequential requests, each issued from the previous callback. */
struct chain {
	struct fl_upstream *u;
	int left;
	int good;
	int done;
};

static void on_chain(int status, const char *body, size_t len, void *ctx)
{
	struct chain *ch = ctx;

	ch->good += status == 200 && len == 7 && memcmp(body, "stock 1", 7) == 0;
	if (--ch->left == 0 || fl_upstream_get(ch->u, "/stock/1", 1000 * MS, on_chain, ch) < 0)
		ch->done = 1;
}

/* A raw server that answers one request per connection with a keep-alive
 * response and then closes: the client's next request on that connection
 * finds it dead and must go again on a new one. */
static uv_tcp_t raw_listener;
static int raw_accepted, raw_requests;

struct raw_conn {
	uv_tcp_t tcp;
	char buf[4096];
};

static void raw_closed(uv_handle_t *h)
{
	free(h->data);
}

static void raw_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct raw_conn *rc = h->data;

	(void)hint;
	*buf = uv_buf_init(rc->buf, sizeof(rc->buf));
}

static void raw_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	uv_buf_t b = uv_buf_init((char *)resp, sizeof(resp) - 1);

	(void)buf;
	if (n > 0) {
		raw_requests++;
		(void)uv_try_write(st, &b, 1);
	}
	if (n != 0)
		uv_close((uv_handle_t *)st, raw_closed);
}

static void raw_connection(uv_stream_t *ls, int status)
{
	struct raw_conn *rc = malloc(sizeof(*rc));

	(void)status;
	uv_tcp_init(&loop, &rc->tcp);
	rc->tcp.data = rc;
	if (uv_accept(ls, (uv_stream_t *)&rc->tcp) == 0) {
		raw_accepted++;
		uv_read_start((uv_stream_t *)&rc->tcp, raw_alloc, raw_read);
	} else {
		uv_close((uv_handle_t *)&rc->tcp, raw_closed);
	}
}

struct stale {
	struct fl_upstream *u;
	struct out second;
	int first_status;
	int rc;
};

static void on_first(int status, const char *body, size_t len, void *ctx)
{
	struct stale *st = ctx;

	(void)body;
	(void)len;
	st->first_status = status;
	/* Right away, on the connection the server is closing. */
	st->rc = fl_upstream_get(st->u, "/again", 1000 * MS, on_resp, &st->second);
}

static int up_closed;
static void on_up_closed(void *ctx)
{
	(void)ctx;
	up_closed++;
}

int main(void)
{
	struct rs_err err = { "" };
	struct fl_upstream *u = NULL;
	const struct fl_upstream_stats *us;
	struct out o[8];
	struct chain ch;
	int port, rc;
	uint64_t t0, accepted0;

	alarm(60);
	signal(SIGPIPE, SIG_IGN);
	plan(32);
	uv_loop_init(&loop);
	port = start_server(0);

	/* Bad options and arguments. */
	rc = fl_upstream_new(&u, &loop,
			     &(struct fl_upstream_opts){ .host = "127.0.0.1", .port = port }, &err);
	ok(rc == -EINVAL && u == NULL && strstr(err.msg, "max_conns"),
	   "max_conns 0 is refused naming the field (%s)", err.msg);
	rc = fl_upstream_new(
	    &u, &loop,
	    &(struct fl_upstream_opts){ .host = "example.org", .port = port, .max_conns = 1 },
	    &err);
	is_int(rc, -EINVAL, "a host that is not an address literal is refused");

	rc =
	    fl_upstream_new(&u, &loop,
			    &(struct fl_upstream_opts){
				.host = "localhost", .port = port, .max_conns = 2, .max_queue = 3 },
			    &err);
	if (rc)
		bail_out("fl_upstream_new: %s", err.msg);
	us = fl_upstream_stats(u);
	memset(o, 0, sizeof(o));
	ok(fl_upstream_get(u, "stock/1", 100 * MS, on_resp, &o[0]) == -EINVAL &&
	       fl_upstream_get(u, "/a b", 100 * MS, on_resp, &o[0]) == -EINVAL &&
	       fl_upstream_get(u, "/a\r\nX: y", 100 * MS, on_resp, &o[0]) == -EINVAL &&
	       fl_upstream_get(u, "/a", 0, on_resp, &o[0]) == -EINVAL,
	   "paths without '/', with spaces or CRLF, and a zero timeout are refused");

	/* 200 and the body. */
	rc = fl_upstream_get(u, "/stock/42", 1000 * MS, on_resp, &o[0]);
	ok(rc == 0 && o[0].done == 0, "a request is accepted and not answered synchronously");
	run_until_done(o, 1, 2000 * MS);
	ok(o[0].done == 1 && o[0].status == 200 && strcmp(o[0].body, "stock 42") == 0,
	   "GET /stock/42 -> 200 'stock 42' (status %d, body '%s')", o[0].status, o[0].body);

	/* Reuse: 50 sequential requests over the one open connection. */
	accepted0 = fl_http_server_stats(srv)->accepted;
	ch = (struct chain){ .u = u, .left = 50 };
	rc = fl_upstream_get(u, "/stock/1", 1000 * MS, on_chain, &ch);
	for (t0 = uv_hrtime(); rc == 0 && !ch.done && uv_hrtime() - t0 < 5000 * MS;)
		uv_run(&loop, UV_RUN_ONCE);
	is_int(ch.good, 50, "50 sequential requests all answered 200 with their body");
	is_int(fl_http_server_stats(srv)->accepted - accepted0, 0,
	       "and they opened no new connection (reused the first)");
	ok(us->reused >= 50, "reuse counted (%llu)", (unsigned long long)us->reused);

	/* 8 concurrent requests with max_conns 2 and a FIFO of 3: 5 accepted
	 * (2 on connections, 3 waiting), the 6th refused at once. */
	memset(o, 0, sizeof(o));
	completions = 0;
	rc = 0;
	for (int i = 0; i < 5; i++)
		rc |= fl_upstream_get(u, "/slow?ms=100", 2000 * MS, on_resp, &o[i]);
	ok(rc == 0 && us->in_flight == 2 && us->waiting == 3,
	   "5 requests: 2 in flight on max_conns 2, 3 wait in the FIFO");
	is_int(fl_upstream_get(u, "/stock/1", 2000 * MS, on_resp, &o[5]), -EBUSY,
	       "a 6th request with the FIFO full is refused at once with -EBUSY");
	ok(o[5].done == 0 && us->busy == 1, "its callback never runs; busy counted");
	run_until_done(o, 5, 3000 * MS);
	{
		int good = 0;

		for (int i = 0; i < 5; i++)
			good += o[i].status == 200 && strcmp(o[i].body, "slow") == 0;
		is_int(good, 5, "all 5 accepted requests answered 200");
	}
	ok(o[2].order >= 2 && o[3].order >= 2 && o[4].order == 4,
	   "the FIFO is served in order (completion order of requests 0..4: %d %d %d %d %d)",
	   o[0].order, o[1].order, o[2].order, o[3].order, o[4].order);
	ok(fl_http_server_stats(srv)->accepted - accepted0 <= 1,
	   "at most max_conns connections in all (%llu new)",
	   (unsigned long long)(fl_http_server_stats(srv)->accepted - accepted0));

	/* A timeout: -ETIMEDOUT after 50 ms, the connection closed, the next
	 * request fine. */
	memset(o, 0, sizeof(o));
	accepted0 = fl_http_server_stats(srv)->accepted;
	t0 = uv_hrtime();
	rc = fl_upstream_get(u, "/slow?ms=400", 50 * MS, on_resp, &o[0]);
	run_until_done(o, 1, 2000 * MS);
	ok(rc == 0 && o[0].status == -ETIMEDOUT,
	   "a 400 ms answer with a 50 ms timeout: -ETIMEDOUT");
	ok(o[0].at_ns - t0 >= 50 * MS && o[0].at_ns - t0 < 150 * MS,
	   "reported after %.1f ms (in [50, 150))", (double)(o[0].at_ns - t0) / 1e6);
	rc = fl_upstream_get(u, "/stock/7", 1000 * MS, on_resp, &o[1]);
	run_until_done(o + 1, 1, 2000 * MS);
	ok(rc == 0 && o[1].status == 200 && strcmp(o[1].body, "stock 7") == 0,
	   "the next request gets its own answer (%s), not the late one", o[1].body);
	is_int(us->timeouts, 1, "one timeout counted");

	/* A deadline that expires while waiting in the FIFO (max_conns 2 both
	 * busy for 300 ms; the waiting request has 50 ms). */
	memset(o, 0, sizeof(o));
	rc = fl_upstream_get(u, "/slow?ms=300", 2000 * MS, on_resp, &o[0]);
	rc |= fl_upstream_get(u, "/slow?ms=300", 2000 * MS, on_resp, &o[1]);
	t0 = uv_hrtime();
	rc |= fl_upstream_get(u, "/stock/1", 50 * MS, on_resp, &o[2]);
	run_until_done(o + 2, 1, 2000 * MS);
	ok(rc == 0 && o[2].status == -ETIMEDOUT && o[2].at_ns - t0 >= 50 * MS &&
	       o[2].at_ns - t0 < 150 * MS && !o[0].done,
	   "a request whose deadline passes in the FIFO fails with -ETIMEDOUT after %.1f ms, "
	   "before the busy ones finish",
	   (double)(o[2].at_ns - t0) / 1e6);
	run_until_done(o, 2, 2000 * MS);
	ok(o[0].status == 200 && o[1].status == 200, "the two slow ones still complete");

	/* The server goes away: idle connections notice, requests get
	 * -ECONNREFUSED. */
	stop_server();
	for (t0 = uv_hrtime(); us->open > 0 && uv_hrtime() - t0 < 2000 * MS;)
		uv_run(&loop, UV_RUN_ONCE);
	is_int(us->open, 0, "idle connections are closed when the server closes them");
	memset(o, 0, sizeof(o));
	rc = fl_upstream_get(u, "/stock/1", 1000 * MS, on_resp, &o[0]);
	run_until_done(o, 1, 2000 * MS);
	ok(rc == 0 && o[0].status == -ECONNREFUSED, "with no server: -ECONNREFUSED (%d)",
	   o[0].status);

	/* The server comes back on the same port: requests connect again. */
	is_int(start_server(port), port, "the server restarts on port %d", port);
	rc = fl_upstream_get(u, "/stock/9", 1000 * MS, on_resp, &o[1]);
	run_until_done(o + 1, 1, 2000 * MS);
	ok(rc == 0 && o[1].status == 200 && strcmp(o[1].body, "stock 9") == 0,
	   "after the restart the next request reconnects and gets 200");
	ok(us->conn_errors >= 1 && us->responses >= 60, "errors and responses counted (%llu, %llu)",
	   (unsigned long long)us->conn_errors, (unsigned long long)us->responses);

	/* A reused connection that the server closed: the request is sent
	 * again once on a new connection. */
	{
		struct sockaddr_in sa;
		struct fl_upstream *u2;
		struct stale st = { 0 };
		int len = sizeof(sa), raw_port;

		uv_tcp_init(&loop, &raw_listener);
		uv_ip4_addr("127.0.0.1", 0, &sa);
		uv_tcp_bind(&raw_listener, (struct sockaddr *)&sa, 0);
		uv_listen((uv_stream_t *)&raw_listener, 16, raw_connection);
		uv_tcp_getsockname(&raw_listener, (struct sockaddr *)&sa, &len);
		raw_port = ntohs(sa.sin_port);
		rc = fl_upstream_new(&u2, &loop,
				     &(struct fl_upstream_opts){
					 .host = "127.0.0.1", .port = raw_port, .max_conns = 1 },
				     &err);
		if (rc)
			bail_out("fl_upstream_new: %s", err.msg);
		st.u = u2;
		rc = fl_upstream_get(u2, "/first", 1000 * MS, on_first, &st);
		run_until_done(&st.second, 1, 3000 * MS);
		ok(rc == 0 && st.first_status == 200 && st.rc == 0 && st.second.status == 200 &&
		       strcmp(st.second.body, "ok") == 0,
		   "a request on a connection the server closed after answering still gets 200 "
		   "(first %d, second %d)",
		   st.first_status, st.second.status);
		ok(fl_upstream_stats(u2)->stale_retries == 1 && raw_accepted == 2 &&
		       raw_requests == 2,
		   "it was re-sent once on a new connection (retries %llu, connections %d, "
		   "requests served %d)",
		   (unsigned long long)fl_upstream_stats(u2)->stale_retries, raw_accepted,
		   raw_requests);
		fl_upstream_close(u2, NULL, NULL);
		uv_close((uv_handle_t *)&raw_listener, NULL);
	}

	/* Close with 2 in flight and 1 waiting: all three get -ECANCELED. */
	memset(o, 0, sizeof(o));
	rc = 0;
	for (int i = 0; i < 3; i++)
		rc |= fl_upstream_get(u, "/slow?ms=200", 2000 * MS, on_resp, &o[i]);
	fl_upstream_close(u, on_up_closed, NULL);
	ok(rc == 0 && o[0].status == -ECANCELED && o[1].status == -ECANCELED &&
	       o[2].status == -ECANCELED && o[0].done + o[1].done + o[2].done == 3,
	   "close cancels 2 in flight and 1 waiting, each callback once with -ECANCELED");
	for (t0 = uv_hrtime(); !up_closed && uv_hrtime() - t0 < 2000 * MS;)
		uv_run(&loop, UV_RUN_ONCE);
	is_int(up_closed, 1, "the close callback runs once the handles have closed");

	/* The server still owes answers to the cancelled slow requests; its
	 * close waits for them (up to 200 ms). */
	stop_server();
	is_int(server_closed, 2, "the server closed both times");
	uv_run(&loop, UV_RUN_DEFAULT);
	is_int(uv_loop_close(&loop), 0, "no handle left on the loop");
	is_int(o[3].done, 0, "no stray callbacks");
	return exit_status();
}
