#include "target/upstream.h"

#include <errno.h>
#include <http_parser.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WBUF_SIZE (FL_UPSTREAM_PATH_MAX + 128)

/* A request: waiting in the FIFO (from the pool) or on a connection. */
struct ureq {
	struct ureq *prev, *next;
	fl_upstream_cb cb;
	void *ctx;
	uint64_t deadline_ns;
	int retried;
	char path[FL_UPSTREAM_PATH_MAX];
};

enum cstate {
	C_IDLE,	      /* no socket */
	C_CONNECTING, /* connect in progress, request attached */
	C_READY,      /* connected, no request (reading, to notice a close) */
	C_BUSY,	      /* request written or being written, response awaited */
	C_CLOSING     /* uv_close in progress */
};

struct uconn {
	struct fl_upstream *u;
	uv_tcp_t tcp;
	uv_connect_t creq;
	uv_write_t wreq;
	uv_timer_t timer; /* the current request's deadline */
	http_parser parser;
	enum cstate state;
	bool used;	 /* a request completed on this connection before */
	bool reused;	 /* the current request went on a used connection */
	bool got_bytes;	 /* response bytes arrived for the current request */
	bool complete;	 /* the parser saw the end of the response */
	bool writing;	 /* a uv_write is in flight */
	bool keep_after; /* the connection may take another request */
	struct ureq cur; /* the current request */
	char *body;
	size_t body_len, body_cap;
	char wbuf[WBUF_SIZE];
};

struct fl_upstream {
	uv_loop_t *loop;
	struct sockaddr_storage addr;
	char hostport[80];
	unsigned max_conns;
	unsigned max_queue;
	size_t max_body;
	struct uconn *conns;
	struct ureq *pool; /* max_queue + max_conns entries */
	struct ureq *free_list;
	struct ureq *qhead, *qtail;
	uv_timer_t qtimer;     /* the earliest deadline in the FIFO */
	uint64_t qtimer_at_ns; /* 0 when not armed */
	int closing;
	int handles; /* open handles (timers, sockets) */
	struct fl_upstream_stats stats;
	void (*close_cb)(void *ctx);
	void *close_ctx;
	char rbuf[65536];
};

static void pump(struct fl_upstream *u);
static void conn_close(struct uconn *c);
static int send_request(struct uconn *c);

/* ---- the FIFO ------------------------------------------------------------ */

static void q_push(struct fl_upstream *u, struct ureq *r, bool front)
{
	if (front) {
		r->prev = NULL;
		r->next = u->qhead;
		if (u->qhead)
			u->qhead->prev = r;
		else
			u->qtail = r;
		u->qhead = r;
	} else {
		r->next = NULL;
		r->prev = u->qtail;
		if (u->qtail)
			u->qtail->next = r;
		else
			u->qhead = r;
		u->qtail = r;
	}
	u->stats.waiting++;
}

static void q_del(struct fl_upstream *u, struct ureq *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		u->qhead = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		u->qtail = r->prev;
	u->stats.waiting--;
}

static void q_release(struct fl_upstream *u, struct ureq *r)
{
	r->next = u->free_list;
	u->free_list = r;
}

/* Milliseconds for a libuv timer started now to fire at deadline_ns: one
 * more than the rounded-up difference, as the loop's clock is whole
 * (possibly coarse) milliseconds.  The timer callbacks still compare with
 * uv_hrtime() and wait again when early, so no deadline fires early. */
static uint64_t ms_until(uint64_t deadline_ns, uint64_t now_ns)
{
	if (deadline_ns <= now_ns)
		return 0;
	return (deadline_ns - now_ns + 999999) / 1000000 + 1;
}

static void on_qtimer(uv_timer_t *t);

/* Arms the FIFO timer for its earliest deadline (or stops it). */
static void q_arm(struct fl_upstream *u)
{
	uint64_t min = 0;

	for (struct ureq *r = u->qhead; r; r = r->next)
		if (!min || r->deadline_ns < min)
			min = r->deadline_ns;
	if (min == u->qtimer_at_ns)
		return;
	u->qtimer_at_ns = min;
	if (!min) {
		uv_timer_stop(&u->qtimer);
		return;
	}
	uv_update_time(u->loop);
	uv_timer_start(&u->qtimer, on_qtimer, ms_until(min, uv_hrtime()), 0);
}

/* Makes sure the FIFO timer fires by deadline_ns (cheap: no scan). */
static void q_arm_for(struct fl_upstream *u, uint64_t deadline_ns)
{
	if (u->qtimer_at_ns && u->qtimer_at_ns <= deadline_ns)
		return;
	u->qtimer_at_ns = deadline_ns;
	uv_update_time(u->loop);
	uv_timer_start(&u->qtimer, on_qtimer, ms_until(deadline_ns, uv_hrtime()), 0);
}

/* Expires the requests in the FIFO whose deadline has come. */
static void on_qtimer(uv_timer_t *t)
{
	struct fl_upstream *u = t->data;
	uint64_t now = uv_hrtime();
	struct ureq *r, *next;

	u->qtimer_at_ns = 0;
	for (r = u->qhead; r && !u->closing; r = next) {
		next = r->next;
		if (r->deadline_ns > now)
			continue;
		q_del(u, r);
		u->stats.timeouts++;
		r->cb(-ETIMEDOUT, NULL, 0, r->ctx);
		q_release(u, r);
		next = u->qhead; /* the callback may have changed the FIFO */
	}
	if (!u->closing)
		q_arm(u);
}

/* ---- connections -------------------------------------------------------- */

/* Ends c's current request with err (callback inside) and closes c, then
 * lets waiting requests move. */
static void fail(struct uconn *c, int err)
{
	struct fl_upstream *u = c->u;
	fl_upstream_cb cb = c->cur.cb;
	void *ctx = c->cur.ctx;

	uv_timer_stop(&c->timer);
	u->stats.in_flight--;
	if (err == -ETIMEDOUT)
		u->stats.timeouts++;
	else if (err != -ECANCELED)
		u->stats.conn_errors++;
	conn_close(c);
	cb(err, NULL, 0, ctx);
	if (!u->closing)
		pump(u);
}

/* The connection ended (EOF, reset, write error) while c was busy: send the
 * request again once on a new connection when it went on a reused one and
 * nothing came back, else fail it. */
static void lost(struct uconn *c, int err)
{
	struct fl_upstream *u = c->u;
	struct ureq *r;

	if (c->reused && !c->got_bytes && !c->cur.retried && u->free_list) {
		r = u->free_list;
		u->free_list = r->next;
		*r = c->cur;
		r->retried = 1;
		uv_timer_stop(&c->timer);
		u->stats.in_flight--;
		u->stats.stale_retries++;
		conn_close(c);
		q_push(u, r, true);
		q_arm_for(u, r->deadline_ns);
		pump(u);
		return;
	}
	fail(c, err);
}

/* One of u's handles has closed; the last one while closing frees u. */
static void handle_closed(struct fl_upstream *u)
{
	void (*cb)(void *);
	void *ctx;

	if (--u->handles || !u->closing)
		return;
	cb = u->close_cb;
	ctx = u->close_ctx;
	for (unsigned i = 0; i < u->max_conns; i++)
		free(u->conns[i].body);
	free(u->conns);
	free(u->pool);
	free(u);
	if (cb)
		cb(ctx);
}

static void on_tcp_closed(uv_handle_t *h)
{
	struct uconn *c = h->data;
	struct fl_upstream *u = c->u;

	c->state = C_IDLE;
	if (u->closing) {
		handle_closed(u);
		return;
	}
	u->handles--;
	pump(u);
}

static void conn_close(struct uconn *c)
{
	if (c->state == C_IDLE || c->state == C_CLOSING)
		return;
	c->state = C_CLOSING;
	c->u->stats.open--;
	uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}

static void on_deadline(uv_timer_t *t)
{
	struct uconn *c = t->data;
	uint64_t now = uv_hrtime();

	if (c->state != C_CONNECTING && c->state != C_BUSY)
		return;
	if (now < c->cur.deadline_ns) {
		/* The loop's millisecond clock ran ahead of the deadline. */
		uv_timer_start(t, on_deadline, ms_until(c->cur.deadline_ns, now), 0);
		return;
	}
	fail(c, -ETIMEDOUT);
}

/* Every connection reads into the pool's one buffer: on_read parses it
 * entirely before the next read. */
static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct uconn *c = h->data;

	(void)hint;
	*buf = uv_buf_init(c->u->rbuf, sizeof(c->u->rbuf));
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct uconn *c = p->data;

	if (c->body_len + len > c->u->max_body)
		return -1;
	if (c->body_cap - c->body_len < len) {
		size_t cap = c->body_cap ? c->body_cap * 2 : 4096;
		char *nb;

		while (cap < c->body_len + len)
			cap *= 2;
		nb = realloc(c->body, cap);
		if (!nb)
			return -1;
		c->body = nb;
		c->body_cap = cap;
	}
	memcpy(c->body + c->body_len, at, len);
	c->body_len += len;
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct uconn *c = p->data;

	c->complete = true;
	c->keep_after = http_should_keep_alive(p);
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

static void complete(struct uconn *c)
{
	struct fl_upstream *u = c->u;
	fl_upstream_cb cb = c->cur.cb;
	void *ctx = c->cur.ctx;

	uv_timer_stop(&c->timer);
	u->stats.in_flight--;
	u->stats.responses++;
	c->used = true;
	/* The connection is free before the callback, so that a request made
	 * from the callback reuses it; the body stays in place meanwhile (only
	 * a later read replaces it). */
	if (c->keep_after && !c->writing)
		c->state = C_READY;
	else
		conn_close(c);
	cb((int)c->parser.status_code, c->body_len ? c->body : "", c->body_len, ctx);
	if (!u->closing)
		pump(u);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct uconn *c = st->data;
	size_t n;

	if (nread == 0 || c->state == C_CLOSING)
		return;
	if (c->state != C_BUSY) {
		/* An idle connection: the dependency closed it, or sent junk. */
		conn_close(c);
		return;
	}
	if (nread < 0) {
		/* A response delimited by the end of the connection ends here. */
		if (nread == UV_EOF && c->got_bytes) {
			http_parser_execute(&c->parser, &settings, NULL, 0);
			if (c->complete) {
				c->keep_after = false;
				complete(c);
				return;
			}
		}
		lost(c, nread == UV_EOF ? -ECONNRESET : (int)nread);
		return;
	}
	c->got_bytes = true;
	n = http_parser_execute(&c->parser, &settings, buf->base, (size_t)nread);
	if (c->complete) {
		if (n != (size_t)nread)
			c->keep_after = false; /* bytes after the response: not reusable */
		complete(c);
		return;
	}
	if (HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
		bool too_big = HTTP_PARSER_ERRNO(&c->parser) == HPE_CB_body;

		fail(c, too_big ? -EMSGSIZE : -EPROTO);
	}
}

static void on_write(uv_write_t *w, int status)
{
	struct uconn *c = w->data;

	c->writing = false;
	if (status == UV_ECANCELED || c->state == C_CLOSING)
		return;
	if (status < 0) {
		if (c->state == C_BUSY)
			lost(c, status);
		else
			conn_close(c);
	}
}

/* Writes the request of c (connected). */
static int send_request(struct uconn *c)
{
	struct fl_upstream *u = c->u;
	int len = snprintf(c->wbuf, sizeof(c->wbuf), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n",
			   c->cur.path, u->hostport);
	uv_buf_t b = uv_buf_init(c->wbuf, (unsigned)len);
	int n;

	http_parser_init(&c->parser, HTTP_RESPONSE);
	c->parser.data = c;
	c->body_len = 0;
	c->got_bytes = c->complete = false;
	c->keep_after = true;
	c->state = C_BUSY;
	n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
	if (n == len)
		return 0;
	if (n < 0 && n != UV_EAGAIN)
		return n;
	if (n < 0)
		n = 0;
	b = uv_buf_init(c->wbuf + n, (unsigned)(len - n));
	c->wreq.data = c;
	n = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
	if (n == 0)
		c->writing = true;
	return n;
}

static void on_connect(uv_connect_t *cr, int status)
{
	struct uconn *c = cr->data;
	int rc;

	if (status == UV_ECANCELED || c->state != C_CONNECTING)
		return;
	if (status < 0) {
		fail(c, status);
		return;
	}
	c->u->stats.connects++;
	(void)uv_tcp_nodelay(&c->tcp, 1);
	rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
	if (rc == 0)
		rc = send_request(c);
	if (rc < 0)
		fail(c, rc);
}

/* Puts request r (copied) on connection c, which is C_READY or C_IDLE.
 * Returns 0; -EAGAIN when c was a connected one that turned out dead at
 * the first write (c is closing: pick another); or the synchronous connect
 * error (r not started). */
static int start_on(struct uconn *c, const struct ureq *r)
{
	struct fl_upstream *u = c->u;
	uint64_t now = uv_hrtime();
	int rc;

	c->cur = *r;
	if (c->state == C_IDLE) {
		rc = uv_tcp_init(u->loop, &c->tcp);
		if (rc < 0)
			return rc;
		c->tcp.data = c;
		u->handles++;
		u->stats.open++;
		c->used = false;
		c->creq.data = c;
		c->state = C_CONNECTING;
		rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&u->addr,
				    on_connect);
		if (rc < 0) {
			conn_close(c);
			return rc;
		}
		c->reused = false;
	} else {
		c->reused = c->used;
		if (c->reused)
			u->stats.reused++;
		rc = send_request(c);
		if (rc < 0) {
			conn_close(c);
			return -EAGAIN;
		}
	}
	u->stats.in_flight++;
	uv_update_time(u->loop);
	uv_timer_start(&c->timer, on_deadline, ms_until(r->deadline_ns, now), 0);
	return 0;
}

/* A connection for a new request: a connected idle one first, else an
 * empty slot; NULL when all are busy. */
static struct uconn *pick(struct fl_upstream *u)
{
	struct uconn *empty = NULL;

	for (unsigned i = 0; i < u->max_conns; i++) {
		struct uconn *c = &u->conns[i];

		if (c->state == C_READY)
			return c;
		if (c->state == C_IDLE && !empty)
			empty = c;
	}
	return empty;
}

/* Moves waiting requests onto free connections, in FIFO order. */
static void pump(struct fl_upstream *u)
{
	struct uconn *c;

	while (!u->closing && u->qhead && (c = pick(u))) {
		struct ureq *r = u->qhead;
		int rc = 0;

		if (r->deadline_ns <= uv_hrtime()) {
			rc = -ETIMEDOUT;
			u->stats.timeouts++;
		} else {
			rc = start_on(c, r);
			if (rc == -EAGAIN)
				continue; /* c was stale and is closing; r stays first */
			if (rc < 0)
				u->stats.conn_errors++;
		}
		q_del(u, r);
		if (rc < 0)
			r->cb(rc, NULL, 0, r->ctx);
		q_release(u, r);
	}
	if (!u->closing && !u->qhead && u->qtimer_at_ns) {
		uv_timer_stop(&u->qtimer);
		u->qtimer_at_ns = 0;
	}
}

/* ---- the API -------------------------------------------------------------- */

int fl_upstream_new(struct fl_upstream **out, uv_loop_t *loop, const struct fl_upstream_opts *opts,
		    struct rs_err *err)
{
	struct fl_upstream *u;
	const char *host;
	unsigned nq;

	*out = NULL;
	if (!loop || !opts || !opts->host)
		return rs__einval(err, "upstream: a loop and opts.host are required");
	if (opts->port < 1 || opts->port > 65535)
		return rs__einval(err, "upstream: port must be in [1, 65535], got %d", opts->port);
	if (opts->max_conns < 1 || opts->max_conns > FL_UPSTREAM_MAX_CONNS)
		return rs__einval(err, "upstream: max_conns must be in [1, %d], got %u",
				  FL_UPSTREAM_MAX_CONNS, opts->max_conns);
	u = calloc(1, sizeof(*u));
	if (!u)
		return rs__enomem(err, "upstream");
	host = strcmp(opts->host, "localhost") == 0 ? "127.0.0.1" : opts->host;
	if (uv_ip4_addr(host, opts->port, (struct sockaddr_in *)&u->addr) != 0 &&
	    uv_ip6_addr(host, opts->port, (struct sockaddr_in6 *)&u->addr) != 0) {
		free(u);
		return rs__einval(err, "upstream: host '%s' is not an IPv4 or IPv6 address",
				  opts->host);
	}
	snprintf(u->hostport, sizeof(u->hostport),
		 u->addr.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host, opts->port);
	u->loop = loop;
	u->max_conns = opts->max_conns;
	u->max_queue = opts->max_queue ? opts->max_queue : FL_UPSTREAM_DEFAULT_QUEUE;
	u->max_body = opts->max_body ? opts->max_body : FL_UPSTREAM_DEFAULT_BODY;
	nq = u->max_queue + u->max_conns; /* + one retry per connection */
	u->conns = calloc(u->max_conns, sizeof(*u->conns));
	u->pool = calloc(nq, sizeof(*u->pool));
	if (!u->conns || !u->pool) {
		free(u->conns);
		free(u->pool);
		free(u);
		return rs__enomem(err, "upstream");
	}
	for (unsigned i = 0; i < nq; i++)
		q_release(u, &u->pool[i]);
	uv_timer_init(loop, &u->qtimer);
	u->qtimer.data = u;
	u->handles++;
	for (unsigned i = 0; i < u->max_conns; i++) {
		struct uconn *c = &u->conns[i];

		c->u = u;
		c->state = C_IDLE;
		uv_timer_init(loop, &c->timer);
		c->timer.data = c;
		u->handles++;
	}
	*out = u;
	return 0;
}

int fl_upstream_get(struct fl_upstream *u, const char *path, uint64_t timeout_ns, fl_upstream_cb cb,
		    void *ctx)
{
	struct ureq r, *q;
	struct uconn *c;
	size_t n;
	int rc;

	if (!u || !path || !cb || path[0] != '/' || timeout_ns == 0)
		return -EINVAL;
	for (n = 0; path[n]; n++)
		if ((unsigned char)path[n] <= ' ' || path[n] == 0x7f)
			return -EINVAL;
	if (n >= FL_UPSTREAM_PATH_MAX)
		return -EINVAL;
	if (u->closing)
		return -ESHUTDOWN;
	r.cb = cb;
	r.ctx = ctx;
	r.retried = 0;
	r.deadline_ns = uv_hrtime() + timeout_ns;
	memcpy(r.path, path, n + 1);
	/* Each -EAGAIN closes a stale connection, so this ends. */
	while (!u->qhead && (c = pick(u))) {
		rc = start_on(c, &r);
		if (rc == -EAGAIN)
			continue;
		if (rc < 0)
			return rc;
		u->stats.requests++;
		return 0;
	}
	if (u->stats.waiting >= u->max_queue || !u->free_list) {
		u->stats.busy++;
		return -EBUSY;
	}
	q = u->free_list;
	u->free_list = q->next;
	*q = r;
	q_push(u, q, false);
	u->stats.requests++;
	u->stats.queued++;
	q_arm_for(u, q->deadline_ns);
	return 0;
}

const struct fl_upstream_stats *fl_upstream_stats(const struct fl_upstream *u)
{
	return &u->stats;
}

static void on_timer_closed(uv_handle_t *h)
{
	handle_closed(h->data);
}

void fl_upstream_close(struct fl_upstream *u, void (*close_cb)(void *ctx), void *ctx)
{
	struct ureq *r;

	if (!u || u->closing)
		return;
	u->closing = 1;
	u->close_cb = close_cb;
	u->close_ctx = ctx;
	while ((r = u->qhead)) {
		q_del(u, r);
		r->cb(-ECANCELED, NULL, 0, r->ctx);
		q_release(u, r);
	}
	for (unsigned i = 0; i < u->max_conns; i++) {
		struct uconn *c = &u->conns[i];

		if (c->state == C_CONNECTING || c->state == C_BUSY)
			fail(c, -ECANCELED);
		else
			conn_close(c);
	}
	/* The timers' data must lead to u for the shared accounting. */
	u->qtimer.data = u;
	uv_close((uv_handle_t *)&u->qtimer, on_timer_closed);
	for (unsigned i = 0; i < u->max_conns; i++) {
		u->conns[i].timer.data = u;
		uv_close((uv_handle_t *)&u->conns[i].timer, on_timer_closed);
	}
}
