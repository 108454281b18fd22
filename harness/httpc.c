#include "harness/httpc.h"

#include <string.h>

#include "resilience/clock.h"

#define RECONNECT_MIN_NS (10 * RS_NS_PER_MS)
#define RECONNECT_MAX_NS RS_NS_PER_SEC

static const char *const kind_names[FL_FAIL_KINDS] = {
	[FL_FAIL_CONNECT] = "connect",	 [FL_FAIL_RESET] = "reset", [FL_FAIL_TIMEOUT] = "timeout",
	[FL_FAIL_5XX] = "5xx",		 [FL_FAIL_4XX] = "4xx",	    [FL_FAIL_SHED] = "shed",
	[FL_FAIL_PROTOCOL] = "protocol",
};

const char *fl_fail_kind_name(enum fl_fail_kind k)
{
	if (k == FL_OK)
		return "ok";
	if ((int)k < 0 || k >= FL_FAIL_KINDS)
		return "unknown";
	return kind_names[k];
}

static void tcp_close_cb(uv_handle_t *h);
static void timer_cb(uv_timer_t *t);

/* ---- response parsing: only the status, Retry-After and keep-alive are
 * looked at; the body is skipped by the parser, never copied ---- */

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	static const char name[] = "retry-after";
	struct fl_httpc *c = p->data;

	if (p->status_code != 503)
		return 0;
	if (c->in_value) {
		c->in_value = false;
		c->ra_match = 0;
	}
	for (size_t i = 0; i < len && c->ra_match >= 0; i++) {
		char ch = at[i];

		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch + ('a' - 'A'));
		if (c->ra_match < (int8_t)(sizeof(name) - 1) && ch == name[c->ra_match])
			c->ra_match++;
		else
			c->ra_match = -1;
	}
	return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct fl_httpc *c = p->data;

	(void)at;
	(void)len;
	if (!c->in_value && c->ra_match == (int8_t)(sizeof("retry-after") - 1))
		c->retry_after = true;
	c->in_value = true;
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct fl_httpc *c = p->data;

	return c->sh->head ? 1 : 0; /* 1: a response to HEAD has no body */
}

static int on_message_complete(http_parser *p)
{
	struct fl_httpc *c = p->data;

	c->msg_done = true;
	c->keep_alive = http_should_keep_alive(p) != 0;
	http_parser_pause(p, 1); /* bytes after the response are not ours */
	return 0;
}

static const http_parser_settings settings = {
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_message_complete = on_message_complete,
};

static enum fl_fail_kind classify(int status, bool retry_after)
{
	if (status < 400)
		return FL_OK;
	if (status == 429 || (status == 503 && retry_after))
		return FL_FAIL_SHED;
	return status >= 500 ? FL_FAIL_5XX : FL_FAIL_4XX;
}

/* ---- state changes ---- */

static void close_tcp(struct fl_httpc *c)
{
	c->state = FL_HTTPC_CLOSING;
	uv_close((uv_handle_t *)&c->tcp, tcp_close_cb);
}

/* The attempt failed: close the socket and report from the close callback. */
static void fail(struct fl_httpc *c, enum fl_fail_kind kind, int status)
{
	c->pending.kind = kind;
	c->pending.status = status;
	c->pending.done_ns = uv_hrtime();
	c->has_pending = true;
	close_tcp(c);
}

static void arm_timer(struct fl_httpc *c, uint64_t due_ns, uint64_t now_ns)
{
	uint64_t ms = due_ns > now_ns ? (due_ns - now_ns + RS_NS_PER_MS - 1) / RS_NS_PER_MS : 0;

	c->timer_active = true;
	c->timer_due_ns = due_ns;
	uv_timer_start(&c->timer, timer_cb, ms, 0);
}

/* Reports the pending failure; the connection is idle or backing off. */
static void report_pending(struct fl_httpc *c)
{
	struct fl_httpc_result r = c->pending;

	c->has_pending = false;
	c->busy = false;
	if (r.kind == FL_FAIL_CONNECT) {
		c->state = FL_HTTPC_BACKOFF;
		arm_timer(c, r.done_ns + c->reconnect_ns, uv_hrtime());
		c->reconnect_ns *= 2;
		if (c->reconnect_ns > RECONNECT_MAX_NS)
			c->reconnect_ns = RECONNECT_MAX_NS;
	} else {
		c->state = FL_HTTPC_DISCONNECTED;
	}
	c->sh->on_result(c, &r);
}

static void maybe_closed(struct fl_httpc *c)
{
	if (c->handles == 0 && c->sh->on_closed)
		c->sh->on_closed(c);
}

static void tcp_close_cb(uv_handle_t *h)
{
	struct fl_httpc *c = h->data;

	c->handles--;
	if (c->state == FL_HTTPC_SHUTDOWN) {
		maybe_closed(c);
		return;
	}
	if (c->has_pending) {
		report_pending(c);
		return;
	}
	c->state = FL_HTTPC_DISCONNECTED;
	c->sh->on_idle(c);
}

static void timer_close_cb(uv_handle_t *h)
{
	struct fl_httpc *c = h->data;

	c->handles--;
	maybe_closed(c);
}

static void timer_cb(uv_timer_t *t)
{
	struct fl_httpc *c = t->data;
	uint64_t now;

	c->timer_active = false;
	if (c->state == FL_HTTPC_SHUTDOWN || c->state == FL_HTTPC_CLOSING)
		return;
	if (c->has_pending) { /* a failure before any socket existed */
		report_pending(c);
		return;
	}
	if (c->state == FL_HTTPC_BACKOFF) {
		c->state = FL_HTTPC_DISCONNECTED;
		c->sh->on_idle(c);
		return;
	}
	if (!c->busy)
		return;
	now = uv_hrtime();
	if (now >= c->deadline_ns)
		fail(c, FL_FAIL_TIMEOUT, 0);
	else
		arm_timer(c, c->deadline_ns, now);
}

/* The response is complete: report it; close when it ends the connection. */
static void complete(struct fl_httpc *c, bool close)
{
	struct fl_httpc_result r;

	r.status = c->parser.status_code;
	r.kind = classify(r.status, c->retry_after);
	r.done_ns = uv_hrtime();
	c->busy = false;
	if (close || !c->keep_alive || c->writing)
		close_tcp(c);
	c->sh->on_result(c, &r);
}

/* ---- I/O ---- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct fl_httpc *c = h->data;

	(void)suggested;
	b->base = c->sh->rbuf;
	b->len = c->sh->rbuf_len;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct fl_httpc *c = s->data;
	size_t n;

	if (nread == 0 || c->state != FL_HTTPC_CONNECTED)
		return;
	if (!c->busy) {
		/* The server closed an idle connection, or sent bytes nobody asked
		 * for: either way this connection is done. */
		close_tcp(c);
		return;
	}
	if (nread < 0) {
		if (nread == UV_EOF) {
			/* A response delimited by the end of the connection ends here. */
			http_parser_execute(&c->parser, &settings, NULL, 0);
			if (c->msg_done) {
				complete(c, true);
				return;
			}
		}
		fail(c, FL_FAIL_RESET, 0);
		return;
	}
	n = http_parser_execute(&c->parser, &settings, buf->base, (size_t)nread);
	if (c->msg_done) {
		bool extra = n != (size_t)nread;

		http_parser_pause(&c->parser, 0);
		complete(c, extra);
		return;
	}
	if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK)
		fail(c, FL_FAIL_PROTOCOL, c->parser.status_code);
}

static void write_cb(uv_write_t *w, int status)
{
	struct fl_httpc *c = w->data;

	c->writing = false;
	if (status < 0 && c->busy && c->state == FL_HTTPC_CONNECTED)
		fail(c, FL_FAIL_RESET, 0);
}

static void do_write(struct fl_httpc *c)
{
	uv_buf_t b = uv_buf_init((char *)c->wbuf, (unsigned)c->wlen);
	int r = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);

	if (r == (int)c->wlen)
		return;
	if (r < 0 && r != UV_EAGAIN) {
		fail(c, FL_FAIL_RESET, 0);
		return;
	}
	if (r > 0) {
		b.base += r;
		b.len -= (size_t)r;
	}
	c->writing = true;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, write_cb) < 0) {
		c->writing = false;
		fail(c, FL_FAIL_RESET, 0);
	}
}

static void connect_cb(uv_connect_t *req, int status)
{
	struct fl_httpc *c = req->data;

	if (c->state != FL_HTTPC_CONNECTING)
		return; /* closed meanwhile (timeout, shutdown): UV_ECANCELED */
	if (status < 0) {
		fail(c, FL_FAIL_CONNECT, 0);
		return;
	}
	c->state = FL_HTTPC_CONNECTED;
	c->reconnect_ns = RECONNECT_MIN_NS;
	uv_tcp_nodelay(&c->tcp, 1);
	http_parser_init(&c->parser, HTTP_RESPONSE);
	c->parser.data = c;
	if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) < 0) {
		fail(c, FL_FAIL_RESET, 0);
		return;
	}
	do_write(c);
}

static void do_connect(struct fl_httpc *c)
{
	if (uv_tcp_init(c->sh->loop, &c->tcp) < 0) {
		/* No handle to close: report through the timer, from the loop. */
		c->pending.kind = FL_FAIL_CONNECT;
		c->pending.status = 0;
		c->pending.done_ns = uv_hrtime();
		c->has_pending = true;
		c->state = FL_HTTPC_DISCONNECTED;
		arm_timer(c, 0, 0);
		return;
	}
	c->handles++;
	c->tcp.data = c;
	c->state = FL_HTTPC_CONNECTING;
	c->creq.data = c;
	if (uv_tcp_connect(&c->creq, &c->tcp, c->sh->addr, connect_cb) < 0)
		fail(c, FL_FAIL_CONNECT, 0);
}

/* ---- API ---- */

int fl_httpc_init(struct fl_httpc *c, const struct fl_httpc_shared *sh)
{
	void *data = c->data;
	uint32_t id = c->id;
	int rc;

	memset(c, 0, sizeof(*c));
	c->data = data;
	c->id = id;
	c->sh = sh;
	c->state = FL_HTTPC_DISCONNECTED;
	c->reconnect_ns = RECONNECT_MIN_NS;
	rc = uv_timer_init(sh->loop, &c->timer);
	if (rc < 0)
		return rc;
	c->timer.data = c;
	c->wreq.data = c;
	c->handles = 1;
	return 0;
}

void fl_httpc_send(struct fl_httpc *c, const char *buf, size_t len, uint64_t now_ns,
		   uint64_t deadline_ns)
{
	c->busy = true;
	c->msg_done = false;
	c->retry_after = false;
	c->in_value = false;
	c->ra_match = 0;
	c->wbuf = buf;
	c->wlen = len;
	c->deadline_ns = deadline_ns;
	if (!c->timer_active || deadline_ns < c->timer_due_ns)
		arm_timer(c, deadline_ns, now_ns);
	if (c->state == FL_HTTPC_CONNECTED)
		do_write(c);
	else
		do_connect(c);
}

void fl_httpc_close(struct fl_httpc *c)
{
	enum fl_httpc_state prev = c->state;

	if (prev == FL_HTTPC_SHUTDOWN)
		return;
	c->state = FL_HTTPC_SHUTDOWN;
	c->busy = false;
	c->has_pending = false;
	if (prev == FL_HTTPC_CONNECTING || prev == FL_HTTPC_CONNECTED)
		uv_close((uv_handle_t *)&c->tcp, tcp_close_cb);
	uv_close((uv_handle_t *)&c->timer, timer_close_cb);
}
