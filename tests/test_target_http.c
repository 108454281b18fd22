/* The target's HTTP server: the server runs on this thread's libuv loop; a
 * client thread with plain blocking sockets drives it over 127.0.0.1 and
 * records what it saw; the main thread asserts after the client is done.
 * Covers: answers with bodies, keep-alive for 100 requests, pipelining in
 * order, asynchronous answers with the connection held, Connection: close,
 * HTTP/1.0, 400 / 431 / 413 with the server healthy afterwards, a client
 * leaving before its asynchronous answer, closing the server with a request
 * still owed, and the counters. */
#include "tests/tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <http_parser.h>

#include "target/http.h"

/* ---- results recorded by the client thread ------------------------------ */

#define MAX_CHECKS 64
static struct {
	int pass;
	char name[200];
} checks[MAX_CHECKS];
static int nchecks;

static void check(int pass, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int pass, const char *fmt, ...)
{
	va_list ap;

	if (nchecks == MAX_CHECKS)
		return;
	checks[nchecks].pass = pass;
	va_start(ap, fmt);
	vsnprintf(checks[nchecks].name, sizeof(checks[0].name), fmt, ap);
	va_end(ap);
	nchecks++;
}

/* ---- server side (loop thread) ------------------------------------------ */

static uv_loop_t loop;
static struct fl_http_server *srv;
static int port;
static int handler_calls;
static char events[16][32]; /* order of async / hello events on the async test */
static int nevents;
static _Atomic int recording;
static struct fl_http_req *held; /* the request never answered until close */
static int respond_async_rc = -1;
static int close_calls;

struct delayed {
	uv_timer_t t;
	struct fl_http_req *req;
};

static void note(const char *what)
{
	if (recording && nevents < 16)
		snprintf(events[nevents++], sizeof(events[0]), "%s", what);
}

static void on_timer_closed(uv_handle_t *h)
{
	free(h->data);
}

static void on_delay(uv_timer_t *t)
{
	struct delayed *d = t->data;

	note("async answered");
	respond_async_rc = fl_http_respond(d->req, 200, "text/plain", NULL, "async", 5);
	uv_close((uv_handle_t *)t, on_timer_closed);
}

static void handler(struct fl_http_req *req, void *ctx)
{
	char body[512];
	int n;

	(void)ctx;
	handler_calls++;
	if (strcmp(req->path, "/hello") == 0) {
		note("hello called");
		fl_http_respond(req, 200, "text/plain", NULL, "hello", 5);
	} else if (strncmp(req->path, "/seq/", 5) == 0) {
		fl_http_respond(req, 200, "text/plain", NULL, req->path + 5, req->path_len - 5);
	} else if (strcmp(req->path, "/echo") == 0) {
		fl_http_respond(req, 200, "application/octet-stream", NULL, req->body,
				req->body_len);
	} else if (strcmp(req->path, "/async") == 0) {
		struct delayed *d = malloc(sizeof(*d));
		int ms = atoi(req->query + 3); /* ms=N */

		note("async called");
		d->req = req;
		d->t.data = d;
		uv_timer_init(&loop, &d->t);
		uv_timer_start(&d->t, on_delay, (uint64_t)ms, 0);
	} else if (strcmp(req->path, "/hdr") == 0) {
		const char *x = fl_http_req_header(req, "x-TEST", NULL);

		n = snprintf(body, sizeof(body), "path=%s query=%s key=%s xtest=%s n=%zu",
			     req->path, req->query,
			     req->idempotency_key ? req->idempotency_key : "-", x ? x : "-",
			     req->nheaders);
		fl_http_respond(req, 200, "text/plain", "X-Extra: 1\r\n", body, (size_t)n);
	} else if (strcmp(req->path, "/big") == 0) {
		/* A body past the connection's first buffer (4 KiB): it grows to
		 * fit exactly this answer. */
		static char big_body[5000];

		memset(big_body, 'x', sizeof(big_body));
		fl_http_respond(req, 200, "application/octet-stream", "X-Pad: 1\r\n", big_body,
				sizeof(big_body));
	} else if (strcmp(req->path, "/hold") == 0) {
		held = req;
	} else {
		fl_http_respond(req, 404, "text/plain", NULL, "no", 2);
	}
}

static void on_server_closed(void *ctx)
{
	(void)ctx;
	close_calls++;
}

/* ---- client side (its own thread, blocking sockets) -------------------- */

struct reader {
	int fd;
	char buf[1 << 16];
	size_t len;
};

struct resp {
	int status;
	char headers[4096];
	char body[4096];
	size_t body_len;
	long content_length;
	int conn_close;
};

static int dial(struct reader *rd)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	struct timeval tv = { .tv_sec = 3 };

	rd->len = 0;
	rd->fd = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	setsockopt(rd->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(rd->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(rd->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(rd->fd);
		rd->fd = -1;
		return -1;
	}
	return 0;
}

static int send_all(struct reader *rd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(rd->fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int send_str(struct reader *rd, const char *s)
{
	return send_all(rd, s, strlen(s));
}

/* Reads more into rd->buf; 0 on EOF, -1 on error/timeout. */
static ssize_t fill(struct reader *rd)
{
	ssize_t n;

	if (rd->len == sizeof(rd->buf))
		return -1;
	n = recv(rd->fd, rd->buf + rd->len, sizeof(rd->buf) - rd->len, 0);
	if (n > 0)
		rd->len += (size_t)n;
	return n;
}

static void consume(struct reader *rd, size_t n)
{
	memmove(rd->buf, rd->buf + n, rd->len - n);
	rd->len -= n;
}

/* Reads one response (a HEAD response has no body).  0, or -1. */
static int read_resp(struct reader *rd, struct resp *r, int head)
{
	char *end, *cl;
	size_t hl;

	memset(r, 0, sizeof(*r));
	r->content_length = -1;
	while (!(end = memmem(rd->buf, rd->len, "\r\n\r\n", 4)))
		if (fill(rd) <= 0)
			return -1;
	hl = (size_t)(end - rd->buf) + 4;
	if (hl >= sizeof(r->headers))
		return -1;
	memcpy(r->headers, rd->buf, hl);
	r->headers[hl] = '\0';
	consume(rd, hl);
	if (sscanf(r->headers, "HTTP/1.%*d %d", &r->status) != 1)
		return -1;
	cl = strcasestr(r->headers, "\r\ncontent-length:");
	if (cl)
		r->content_length = strtol(cl + 17, NULL, 10);
	r->conn_close = strcasestr(r->headers, "\r\nconnection: close") != NULL;
	if (head || r->content_length <= 0)
		return 0;
	while (rd->len < (size_t)r->content_length)
		if (fill(rd) <= 0)
			return -1;
	r->body_len = (size_t)r->content_length < sizeof(r->body) - 1 ? (size_t)r->content_length
								      : sizeof(r->body) - 1;
	memcpy(r->body, rd->buf, r->body_len);
	consume(rd, (size_t)r->content_length);
	return 0;
}

/* 1 when the server closes the connection (EOF or reset) within 3 s and
 * sends nothing more. */
static int sees_close(struct reader *rd)
{
	ssize_t n = rd->len ? -1 : fill(rd);

	return n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE));
}

static void hangup(struct reader *rd)
{
	if (rd->fd >= 0)
		close(rd->fd);
	rd->fd = -1;
}

static int conns_made;
static int requests_handled; /* requests the client expects the handler to see */
static _Atomic int client_done;
static uv_async_t wake;

static void *client(void *arg)
{
	static struct reader rd, rd2;
	struct resp r;
	char *big;
	int good, rc;

	(void)arg;

	/* 1. One GET. */
	conns_made++;
	rc = dial(&rd);
	rc |= send_str(&rd, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
	rc |= read_resp(&rd, &r, 0);
	requests_handled++;
	check(rc == 0 && r.status == 200 && r.body_len == 5 && memcmp(r.body, "hello", 5) == 0 &&
		  !r.conn_close,
	      "GET /hello answers 200 with body 'hello' (Content-Length %ld), keep-alive",
	      r.content_length);
	check(strstr(r.headers, "Content-Type: text/plain\r\n") != NULL,
	      "the answer carries the handler's Content-Type");

	/* 2. 100 requests on the same connection. */
	good = 0;
	for (int i = 0; i < 100; i++) {
		char req[64];

		snprintf(req, sizeof(req), "GET /seq/%d HTTP/1.1\r\n\r\n", i);
		if (send_str(&rd, req) || read_resp(&rd, &r, 0))
			break;
		requests_handled++;
		good += r.status == 200 && (int)strtol(r.body, NULL, 10) == i;
	}
	check(good == 100,
	      "100 sequential requests on one keep-alive connection: %d answered right", good);

	/* 3. 10 pipelined requests in one write, answered in order. */
	{
		char batch[1024];
		size_t off = 0;

		for (int i = 0; i < 10; i++)
			off += (size_t)snprintf(batch + off, sizeof(batch) - off,
						"GET /seq/%d HTTP/1.1\r\nHost: x\r\n\r\n", i);
		rc = send_all(&rd, batch, off);
		good = 0;
		for (int i = 0; i < 10 && rc == 0; i++) {
			if (read_resp(&rd, &r, 0))
				break;
			requests_handled++;
			good += r.status == 200 && (int)strtol(r.body, NULL, 10) == i;
		}
		check(good == 10, "10 pipelined requests in one write: %d answered, in order",
		      good);
	}

	/* 11. Header lookup, Idempotency-Key, query, extra headers, HEAD. */
	rc = send_str(&rd, "GET /hdr?x=1&y=2 HTTP/1.1\r\nIdempotency-Key: abc-123\r\n"
			   "x-test:   spaced value  \r\nEmpty:\r\n\r\n");
	rc |= read_resp(&rd, &r, 0);
	requests_handled++;
	check(rc == 0 &&
		  strcmp(r.body, "path=/hdr query=x=1&y=2 key=abc-123 xtest=spaced value n=3") == 0,
	      "path, query, Idempotency-Key and a header looked up by name (%s)", r.body);
	check(strstr(r.headers, "\r\nX-Extra: 1\r\n") != NULL, "extra headers are sent verbatim");
	rc = send_str(&rd, "HEAD /hello HTTP/1.1\r\n\r\n");
	rc |= read_resp(&rd, &r, 1);
	requests_handled++;
	check(rc == 0 && r.status == 200 && r.content_length == 5 && rd.len == 0,
	      "HEAD gets Content-Length 5 and no body bytes");
	rc = send_str(&rd, "POST /echo HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
	rc |= read_resp(&rd, &r, 0);
	requests_handled++;
	check(rc == 0 && r.body_len == 3 && memcmp(r.body, "abc", 3) == 0,
	      "a POST body of 3 bytes reaches the handler");
	rc = send_str(&rd, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
			   "4\r\nwiki\r\n5\r\npedia\r\n0\r\n\r\n");
	rc |= read_resp(&rd, &r, 0);
	requests_handled++;
	check(rc == 0 && r.body_len == 9 && memcmp(r.body, "wikipedia", 9) == 0,
	      "a chunked body arrives de-chunked");
	hangup(&rd);

	/* 4. An asynchronous answer after 50 ms, with a second request
	 * pipelined behind it: the second is not handled before the first is
	 * answered. */
	conns_made++;
	rc = dial(&rd);
	{
		uint64_t t0 = uv_hrtime();

		atomic_store(&recording, 1);
		rc |= send_str(&rd, "GET /async?ms=50 HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\n\r\n");
		rc |= read_resp(&rd, &r, 0);
		requests_handled++;
		check(rc == 0 && r.status == 200 && memcmp(r.body, "async", 5) == 0 &&
			  uv_hrtime() - t0 >= 50000000ull,
		      "the asynchronous answer arrives after the 50 ms timer (%.1f ms)",
		      (double)(uv_hrtime() - t0) / 1e6);
		rc |= read_resp(&rd, &r, 0);
		requests_handled++;
		check(rc == 0 && memcmp(r.body, "hello", 5) == 0,
		      "then the pipelined second request is answered");
		atomic_store(&recording, 0);
	}

	/* 5. Connection: close. */
	rc = send_str(&rd, "GET /hello HTTP/1.1\r\nConnection: close\r\n\r\n");
	rc |= read_resp(&rd, &r, 0);
	requests_handled++;
	check(rc == 0 && r.status == 200 && r.conn_close,
	      "Connection: close is answered with Connection: close");
	check(sees_close(&rd), "and the server closes the connection after the answer");
	hangup(&rd);

	/* 6. HTTP/1.0: closes by default, stays with keep-alive. */
	conns_made++;
	rc = dial(&rd);
	rc |= send_str(&rd, "GET /hello HTTP/1.0\r\n\r\n");
	rc |= read_resp(&rd, &r, 0);
	requests_handled++;
	check(rc == 0 && r.status == 200 && r.conn_close && sees_close(&rd),
	      "HTTP/1.0 without keep-alive: answered, then closed");
	hangup(&rd);
	conns_made++;
	rc = dial(&rd);
	rc |= send_str(&rd, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	rc |= read_resp(&rd, &r, 0);
	rc |= send_str(&rd, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	rc |= read_resp(&rd, &r, 0);
	requests_handled += 2;
	check(rc == 0 && r.status == 200 && strcasestr(r.headers, "connection: keep-alive"),
	      "HTTP/1.0 with keep-alive: two requests on one connection");
	hangup(&rd);

	/* 6b. A first answer larger than the connection's buffer. */
	conns_made++;
	rc = dial(&rd);
	rc |= send_str(&rd, "GET /big HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
	rc |= read_resp(&rd, &r, 0);
	requests_handled++;
	check(rc == 0 && r.status == 200 && r.content_length == 5000 && r.body[0] == 'x' &&
		  strstr(r.headers, "\r\nX-Pad: 1\r\n"),
	      "a 5000-byte answer as a connection's first (its buffer grows) arrives whole");
	hangup(&rd);

	/* 7. A malformed request: 400 and close; the next client is served. */
	conns_made++;
	rc = dial(&rd);
	rc |= send_str(&rd, "GET /hello HTTP/1.1\r\nBad Header Line\r\n\r\n");
	rc |= read_resp(&rd, &r, 0);
	check(rc == 0 && r.status == 400 && r.conn_close && sees_close(&rd),
	      "a malformed header line gets 400 and the connection closes");
	hangup(&rd);
	conns_made++;
	rc = dial(&rd);
	rc |= send_str(&rd, "\x01\x02 garbage\r\n\r\n");
	rc |= read_resp(&rd, &r, 0);
	check(rc == 0 && r.status == 400, "a garbage request line gets 400 too");
	conns_made++;
	rc = dial(&rd2);
	rc |= send_str(&rd2, "GET /hello HTTP/1.1\r\n\r\n");
	rc |= read_resp(&rd2, &r, 0);
	requests_handled++;
	check(rc == 0 && r.status == 200, "the next client, on a new connection, gets 200");
	hangup(&rd);
	hangup(&rd2);

	/* 8. Header limits: 7 KiB of headers pass, 9 KiB get 431. */
	big = malloc(3u << 20);
	conns_made++;
	rc = dial(&rd);
	memcpy(big, "GET /hello HTTP/1.1\r\nX-Big: ", 28);
	memset(big + 28, 'a', 7 * 1024);
	memcpy(big + 28 + 7 * 1024, "\r\n\r\n", 5);
	rc |= send_str(&rd, big);
	rc |= read_resp(&rd, &r, 0);
	requests_handled++;
	check(rc == 0 && r.status == 200, "7 KiB of headers are accepted (200)");
	memset(big + 28, 'a', 9 * 1024);
	memcpy(big + 28 + 9 * 1024, "\r\n\r\n", 5);
	rc = send_str(&rd, big);
	rc |= read_resp(&rd, &r, 0);
	check(rc == 0 && r.status == 431 && r.conn_close && sees_close(&rd),
	      "9 KiB of headers get 431 and the connection closes (status %d)", r.status);
	hangup(&rd);

	/* 9. A 2 MiB body gets 413 (the client can send it all and read the answer). */
	conns_made++;
	rc = dial(&rd);
	{
		size_t hl = (size_t)sprintf(
		    big, "POST /echo HTTP/1.1\r\nContent-Length: %u\r\n\r\n", 2u << 20);

		memset(big + hl, 'b', 2u << 20);
		rc |= send_all(&rd, big, hl + (2u << 20));
	}
	rc |= read_resp(&rd, &r, 0);
	check(rc == 0 && r.status == 413 && r.conn_close,
	      "a 2 MiB body gets 413 and Connection: close (status %d)", r.status);
	hangup(&rd);
	conns_made++;
	rc = dial(&rd);
	{
		/* Chunked: no Content-Length to refuse early; refused past 1 MiB. */
		size_t hl = (size_t)sprintf(big, "POST /echo HTTP/1.1\r\n"
						 "Transfer-Encoding: chunked\r\n\r\n");
		size_t off = hl;

		for (int i = 0; i < 40; i++) {
			off += (size_t)sprintf(big + off, "10000\r\n");
			memset(big + off, 'c', 0x10000);
			off += 0x10000;
			off += (size_t)sprintf(big + off, "\r\n");
		}
		rc |= send_all(&rd, big, off);
	}
	rc |= read_resp(&rd, &r, 0);
	check(rc == 0 && r.status == 413, "a chunked body past 1 MiB gets 413 (status %d)",
	      r.status);
	hangup(&rd);
	free(big);

	/* 10. A client leaving before its asynchronous answer. */
	conns_made++;
	rc = dial(&rd);
	rc |= send_str(&rd, "GET /async?ms=100 HTTP/1.1\r\n\r\n");
	requests_handled++;
	hangup(&rd);
	usleep(250 * 1000);
	conns_made++;
	rc |= dial(&rd);
	rc |= send_str(&rd, "GET /hello HTTP/1.1\r\n\r\n");
	rc |= read_resp(&rd, &r, 0);
	requests_handled++;
	check(rc == 0 && r.status == 200,
	      "after a client left before its asynchronous answer, the server still answers");
	hangup(&rd);

	/* 12. A request held unanswered while the server closes (main thread). */
	conns_made++;
	rc = dial(&rd);
	rc |= send_str(&rd, "GET /hold HTTP/1.1\r\n\r\n");
	requests_handled++;
	usleep(100 * 1000);
	check(rc == 0, "a request to /hold was sent");
	hangup(&rd);
	usleep(50 * 1000);

	atomic_store(&client_done, 1);
	uv_async_send(&wake);
	return NULL;
}

static void on_wake(uv_async_t *a)
{
	(void)a;
}

static void run_until(_Atomic int *flag, int want, int secs)
{
	uint64_t end = uv_hrtime() + (uint64_t)secs * 1000000000ull;

	while (atomic_load(flag) < want && uv_hrtime() < end)
		uv_run(&loop, UV_RUN_ONCE);
}

/* The path and query helpers the roles share. */
static void test_helpers(void)
{
	char v[8] = "";
	uint64_t id = 0;
	const char *q = "prefix=item-1&factor=0.3&empty=&x";

	is_int(fl_http_query_get(q, strlen(q), "factor", v, sizeof(v)), 0, "query: factor found");
	is_str(v, "0.3", "query: factor's value");
	is_int(fl_http_query_get(q, strlen(q), "prefix", v, sizeof(v)), 0, "query: first one");
	is_str(v, "item-1", "query: first one's value");
	is_int(fl_http_query_get(q, strlen(q), "fact", v, sizeof(v)), -ENOENT,
	       "query: a prefix of a name is not the name");
	is_int(fl_http_query_get(q, strlen(q), "x", v, sizeof(v)), -ENOENT,
	       "query: a name without '=' has no value");
	is_int(fl_http_query_get(q, 13, "factor", v, sizeof(v)), -ENOENT,
	       "query: nothing is read past qlen");
	is_int(fl_http_query_get(q, strlen(q), "prefix", v, 6), -E2BIG,
	       "query: a value longer than the buffer is refused");
	is_int(fl_http_path_id("9007199254740992", 16, &id), 0, "path id: 2^53 accepted");
	ok(id == (1ull << 53), "path id: 2^53's value");
	ok(fl_http_path_id("9007199254740993", 16, &id) == -EINVAL &&
	       fl_http_path_id("012", 3, &id) == -EINVAL &&
	       fl_http_path_id("", 0, &id) == -EINVAL && fl_http_path_id("-1", 2, &id) == -EINVAL &&
	       fl_http_path_id("12345678901234567", 17, &id) == -EINVAL,
	   "path id: above 2^53, leading zero, empty, signed and 17 digits are refused");
	is_int(fl_http_path_id("42/x", 2, &id) == 0 ? (int)id : -1, 42,
	       "path id: reads n bytes only");
}

int main(void)
{
	struct rs_err err = { "" };
	const struct fl_http_stats *st;
	pthread_t th;
	int rc;

	alarm(60);
	signal(SIGPIPE, SIG_IGN);
	plan(54);
	test_helpers();
	uv_loop_init(&loop);
	uv_async_init(&loop, &wake, on_wake);

	rc = fl_http_server_new(&srv, &loop, &(struct fl_http_server_opts){ 0 }, &err);
	ok(rc == -EINVAL && strstr(err.msg, "on_request"),
	   "a server without a handler is refused (%s)", err.msg);
	rc = fl_http_server_new(&srv, &loop, &(struct fl_http_server_opts){ .on_request = handler },
				&err);
	if (rc)
		bail_out("fl_http_server_new: %s", err.msg);
	is_int(fl_http_server_listen(srv, "not-an-ip", 0, &err), -EINVAL,
	       "listening on a host name other than localhost is refused");
	rc = fl_http_server_listen(srv, "127.0.0.1", 0, &err);
	if (rc)
		bail_out("listen: %s", err.msg);
	port = fl_http_server_port(srv);
	ok(port > 0, "listening on 127.0.0.1:0 picked port %d", port);
	st = fl_http_server_stats(srv);

	pthread_create(&th, NULL, client, NULL);
	run_until(&client_done, 1, 50);
	pthread_join(th, NULL);
	for (int i = 0; i < nchecks; i++)
		ok(checks[i].pass, "%s", checks[i].name);
	if (nchecks != 25)
		diag("the client recorded %d checks, expected 25", nchecks);

	/* What the async test recorded, in order. */
	ok(nevents == 3 && strcmp(events[0], "async called") == 0 &&
	       strcmp(events[1], "async answered") == 0 && strcmp(events[2], "hello called") == 0,
	   "the pipelined request was handled only after the async answer (%s, %s, %s)",
	   nevents > 0 ? events[0] : "-", nevents > 1 ? events[1] : "-",
	   nevents > 2 ? events[2] : "-");
	is_int(respond_async_rc, 0,
	       "answering a client that left returns 0 (the bytes are dropped)");

	/* Counters. */
	is_int(st->accepted, conns_made, "accepted counts every connection (%d)", conns_made);
	is_int(st->requests, requests_handled, "requests counts every request handed over (%d)",
	       requests_handled);
	is_int(st->requests, handler_calls, "and equals the handler's calls");
	is_int(st->bad_request, 2, "2 malformed requests counted (400)");
	is_int(st->header_too_large, 1, "1 oversized header counted (431)");
	is_int(st->body_too_large, 2, "2 oversized bodies counted (413)");
	is_int(st->pending, 1, "1 request pending (the held one)");
	{
		uint64_t end = uv_hrtime() + 3000000000ull;

		while (st->open > 1 && uv_hrtime() < end)
			uv_run(&loop, UV_RUN_ONCE);
	}
	ok(st->open <= 1, "every connection but the held one is closed (open %llu)",
	   (unsigned long long)st->open);

	/* Close with the held request unanswered: the close waits for it. */
	fl_http_server_close(srv, on_server_closed, NULL);
	{
		uint64_t end = uv_hrtime() + 1000000000ull;

		while (uv_hrtime() < end && st->open > 0)
			uv_run(&loop, UV_RUN_ONCE);
	}
	is_int(close_calls, 0, "the close does not complete while a request is owed an answer");
	ok(held && fl_http_respond(held, 200, NULL, NULL, "late", 4) == 0,
	   "answering the held request after the close returns 0");
	is_int(close_calls, 1, "and then the close completes (callback called once)");
	uv_close((uv_handle_t *)&wake, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	is_int(uv_loop_close(&loop), 0, "no handle left on the loop");
	return exit_status();
}
