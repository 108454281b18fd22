#include "target/http.h"

#include <errno.h>
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RBUF_SIZE   16384
#define HBUF_SIZE   (FL_HTTP_MAX_HEADER_BYTES + 2 * FL_HTTP_MAX_HEADERS + 8)
#define OUT_INITIAL 4096
#define OUT_KEEP    (64 * 1024) /* a buffer grown past this is freed once written */
#define FLUSH_AT    (64 * 1024) /* batched answers are written once this much waits */

enum last_cb { CB_NONE, CB_URL, CB_FIELD, CB_VALUE };

struct obuf {
	char *p;
	size_t len;
	size_t cap;
};

/* Offsets of one header line in hbuf. */
struct hoff {
	uint16_t name_off, name_len, val_off, val_len;
};

/* One accepted connection.  Lifetime: allocated on accept, freed when its
 * handles have closed and no request is waiting for an answer (a request
 * that outlives the handles makes the connection a "zombie", freed by
 * fl_http_respond). */
struct fl_http_conn {
	uv_tcp_t tcp;
	uv_timer_t linger;
	uv_write_t wreq;
	uv_shutdown_t sreq;
	struct fl_http_server *srv;
	struct fl_http_conn *prev, *next; /* srv->conns, while a handle is open */
	http_parser parser;
	struct fl_http_req req;
	unsigned reading : 1;	  /* uv_read_start is in effect */
	unsigned pending : 1;	  /* req handed to the handler, not answered */
	unsigned writing : 1;	  /* a uv_write is in flight (out[wbuf]) */
	unsigned close_after : 1; /* close once everything is written */
	unsigned closing : 1;	  /* uv_close called */
	unsigned lingering : 1;	  /* write side shut down, discarding input */
	unsigned in_drive : 1;
	unsigned timer_on : 1; /* linger timer initialized */
	unsigned zombie : 1;   /* handles closed, answer still owed */
	unsigned head : 1;     /* the request is HEAD */
	unsigned expect : 1;   /* the request sent Expect: 100-continue */
	int handles;	       /* handles not closed yet */
	int error_status;      /* 431/413/400 decided by a parser callback */
	size_t rlen, rpos;     /* rbuf: bytes held, bytes parsed */
	size_t hlen, hbytes;   /* hbuf bytes stored; header bytes counted */
	size_t url_len;
	size_t nhdr;
	enum last_cb last;
	struct hoff hoff[FL_HTTP_MAX_HEADERS];
	struct fl_http_header hdrs[FL_HTTP_MAX_HEADERS];
	char *body;
	size_t body_len, body_cap;
	struct obuf out[2]; /* out[cur] takes answers; out[wbuf] is being written */
	int cur, wbuf;
	char hbuf[HBUF_SIZE];
	char rbuf[RBUF_SIZE];
};

struct fl_http_server {
	uv_loop_t *loop;
	uv_tcp_t listener;
	uv_tcp_t reject; /* accepts and closes a connection when memory is out */
	fl_http_handler on_request;
	void *ctx;
	int backlog;
	int listening;
	int closing;
	int handles; /* listener, reject: not closed yet */
	int reject_busy;
	struct fl_http_conn *conns;
	size_t zombies;
	struct fl_http_stats stats;
	void (*close_cb)(void *ctx);
	void *close_ctx;
};

static void drive(struct fl_http_conn *c);
static void conn_close(struct fl_http_conn *c);

/* ---- answers ----------------------------------------------------------- */

static const struct {
	int status;
	const char *reason;
} reasons[] = {
	{ 100, "Continue" },
	{ 200, "OK" },
	{ 201, "Created" },
	{ 202, "Accepted" },
	{ 204, "No Content" },
	{ 301, "Moved Permanently" },
	{ 302, "Found" },
	{ 304, "Not Modified" },
	{ 400, "Bad Request" },
	{ 401, "Unauthorized" },
	{ 403, "Forbidden" },
	{ 404, "Not Found" },
	{ 405, "Method Not Allowed" },
	{ 408, "Request Timeout" },
	{ 409, "Conflict" },
	{ 411, "Length Required" },
	{ 413, "Content Too Large" },
	{ 414, "URI Too Long" },
	{ 415, "Unsupported Media Type" },
	{ 422, "Unprocessable Content" },
	{ 429, "Too Many Requests" },
	{ 431, "Request Header Fields Too Large" },
	{ 500, "Internal Server Error" },
	{ 501, "Not Implemented" },
	{ 502, "Bad Gateway" },
	{ 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" },
};

int fl_http_query_get(const char *q, size_t qlen, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name);
	const char *p = q, *end = q + qlen;

	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *stop = amp ? amp : end;

		if ((size_t)(stop - p) > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
			size_t vl = (size_t)(stop - p) - nl - 1;

			if (vl >= outlen)
				return -E2BIG;
			memcpy(out, p + nl + 1, vl);
			out[vl] = '\0';
			return 0;
		}
		p = stop + 1;
	}
	return -ENOENT;
}

int fl_http_path_id(const char *s, size_t n, uint64_t *id)
{
	uint64_t v = 0;

	if (n == 0 || n > 16 || s[0] == '0')
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > (1ull << 53))
		return -EINVAL;
	*id = v;
	return 0;
}

const char *fl_http_reason(int status)
{
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			return reasons[i].reason;
	return "Unknown";
}

static int obuf_reserve(struct obuf *b, size_t need)
{
	size_t cap;
	char *p;

	if (b->cap - b->len >= need)
		return 0;
	cap = b->cap ? b->cap * 2 : OUT_INITIAL;
	if (cap < b->len + need)
		cap = b->len + need;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static void obuf_written(struct obuf *b)
{
	b->len = 0;
	if (b->cap > OUT_KEEP) {
		free(b->p);
		b->p = NULL;
		b->cap = 0;
	}
}

static char *put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

#define PUT_LIT(p, lit) put(p, lit, sizeof(lit) - 1)

static char *put_uint(char *p, uint64_t v)
{
	char tmp[24];
	int i = 0;

	do
		tmp[i++] = (char)('0' + v % 10);
	while (v /= 10);
	while (i)
		*p++ = tmp[--i];
	return p;
}

/* Formats one answer into out[cur]. */
static int append_answer(struct fl_http_conn *c, int status, const char *ctype, const char *extra,
			 const void *body, size_t len, bool closing)
{
	struct obuf *b = &c->out[c->cur];
	const char *reason = fl_http_reason(status);
	size_t rl = strlen(reason), cl = ctype ? strlen(ctype) : 0, el = extra ? strlen(extra) : 0;
	bool no_body = c->head || status == 204 || status == 304;
	/* 95 bytes at most besides the strings: status line, the three headers. */
	size_t need = 128 + rl + cl + el + (no_body ? 0 : len);
	char *p;

	if (need < len || obuf_reserve(b, need) < 0)
		return -ENOMEM;
	p = b->p + b->len;
	p = PUT_LIT(p, "HTTP/1.1 ");
	*p++ = (char)('0' + status / 100);
	*p++ = (char)('0' + status / 10 % 10);
	*p++ = (char)('0' + status % 10);
	*p++ = ' ';
	p = put(p, reason, rl);
	if (ctype) {
		p = PUT_LIT(p, "\r\nContent-Type: ");
		p = put(p, ctype, cl);
	}
	if (status != 204) {
		p = PUT_LIT(p, "\r\nContent-Length: ");
		p = put_uint(p, len);
	}
	if (closing)
		p = PUT_LIT(p, "\r\nConnection: close");
	else if (c->req.http_major == 1 && c->req.http_minor == 0)
		p = PUT_LIT(p, "\r\nConnection: keep-alive");
	p = PUT_LIT(p, "\r\n");
	if (el)
		p = put(p, extra, el);
	p = PUT_LIT(p, "\r\n");
	if (!no_body && len)
		p = put(p, body, len);
	b->len = (size_t)(p - b->p);
	return 0;
}

/* ---- writing ----------------------------------------------------------- */

static void on_write(uv_write_t *wr, int status)
{
	struct fl_http_conn *c = wr->data;

	c->writing = 0;
	obuf_written(&c->out[c->wbuf]);
	if (c->closing)
		return;
	if (status < 0) {
		conn_close(c);
		return;
	}
	drive(c);
}

/* Writes out[cur]: uv_try_write, then uv_write of what is left (the buffer
 * stays with the write; new answers go to the other one). */
static void flush(struct fl_http_conn *c)
{
	struct obuf *b = &c->out[c->cur];
	uv_buf_t ub;
	int n;

	if (c->writing || c->closing || b->len == 0)
		return;
	ub = uv_buf_init(b->p, (unsigned)b->len);
	n = uv_try_write((uv_stream_t *)&c->tcp, &ub, 1);
	if (n >= 0 && (size_t)n == b->len) {
		obuf_written(b);
		return;
	}
	if (n < 0 && n != UV_EAGAIN) {
		conn_close(c); /* EPIPE, ECONNRESET: the client is gone */
		return;
	}
	if (n < 0)
		n = 0;
	ub = uv_buf_init(b->p + n, (unsigned)(b->len - (size_t)n));
	c->wbuf = c->cur;
	c->cur ^= 1;
	c->writing = 1;
	c->wreq.data = c;
	if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &ub, 1, on_write) < 0) {
		c->writing = 0;
		conn_close(c);
	}
}

/* ---- closing ----------------------------------------------------------- */

static void server_maybe_done(struct fl_http_server *s)
{
	void (*cb)(void *);
	void *ctx;

	if (!s->closing || s->handles || s->conns || s->zombies)
		return;
	cb = s->close_cb;
	ctx = s->close_ctx;
	free(s);
	if (cb)
		cb(ctx);
}

static void conn_free(struct fl_http_conn *c)
{
	free(c->out[0].p);
	free(c->out[1].p);
	free(c->body);
	free(c);
}

static void on_conn_closed(uv_handle_t *h)
{
	struct fl_http_conn *c = h->data;
	struct fl_http_server *s = c->srv;

	if (--c->handles > 0)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->stats.open--;
	if (c->pending) {
		c->zombie = 1;
		s->zombies++;
		return;
	}
	conn_free(c);
	server_maybe_done(s);
}

/* Closes the connection's handles now (no lingering).  Its memory goes
 * once they have closed and no answer is owed. */
static void conn_close(struct fl_http_conn *c)
{
	if (c->closing)
		return;
	c->closing = 1;
	c->reading = 0;
	uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
	if (c->timer_on)
		uv_close((uv_handle_t *)&c->linger, on_conn_closed);
}

static void on_linger_timeout(uv_timer_t *t)
{
	conn_close(t->data);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void on_shutdown(uv_shutdown_t *sr, int status)
{
	struct fl_http_conn *c = sr->data;

	if (c->closing)
		return;
	if (status < 0 || uv_timer_init(c->srv->loop, &c->linger) < 0) {
		conn_close(c);
		return;
	}
	c->linger.data = c;
	c->timer_on = 1;
	c->handles++;
	uv_timer_start(&c->linger, on_linger_timeout, FL_HTTP_LINGER_MS, 0);
	if (!c->reading && uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read) < 0) {
		conn_close(c);
		return;
	}
	c->reading = 1;
}

/* Everything is written: send FIN, then discard input until the client
 * closes too or the linger time is up. */
static void begin_shutdown(struct fl_http_conn *c)
{
	c->lingering = 1;
	c->sreq.data = c;
	if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0)
		conn_close(c);
}

/* ---- reading ----------------------------------------------------------- */

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct fl_http_conn *c = h->data;

	(void)hint;
	if (c->lingering)
		*buf = uv_buf_init(c->rbuf, RBUF_SIZE);
	else
		*buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(RBUF_SIZE - c->rlen));
}

static void start_reading(struct fl_http_conn *c)
{
	if (c->reading || c->closing)
		return;
	if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read) < 0) {
		conn_close(c);
		return;
	}
	c->reading = 1;
}

static void stop_reading(struct fl_http_conn *c)
{
	if (!c->reading)
		return;
	uv_read_stop((uv_stream_t *)&c->tcp);
	c->reading = 0;
}

/* Decides what the connection waits for next, after parsing and writing
 * as far as possible. */
static void settle(struct fl_http_conn *c)
{
	if (c->closing || c->lingering)
		return;
	if (c->close_after) {
		stop_reading(c);
		if (!c->writing && !c->pending && c->out[c->cur].len == 0)
			begin_shutdown(c);
		return;
	}
	if (c->pending || c->writing) {
		stop_reading(c);
		return;
	}
	if (c->rpos == c->rlen) {
		c->rpos = c->rlen = 0;
		start_reading(c);
	}
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct fl_http_conn *c = st->data;

	(void)buf;
	if (c->lingering) {
		if (nread < 0)
			conn_close(c);
		return;
	}
	if (nread > 0) {
		c->rlen += (size_t)nread;
		drive(c);
		return;
	}
	if (nread == 0)
		return;
	/* EOF or an error while idle or inside a partial request: nothing is
	 * owed (reading stops while a request waits for its answer). */
	conn_close(c);
}

/* ---- parsing ----------------------------------------------------------- */

static int hb_append(struct fl_http_conn *c, const char *at, size_t len, size_t overhead)
{
	c->hbytes += len + overhead;
	if (c->hbytes > FL_HTTP_MAX_HEADER_BYTES) {
		c->error_status = 431;
		return -1;
	}
	memcpy(c->hbuf + c->hlen, at, len);
	c->hlen += len;
	return 0;
}

/* Ends the element being collected (URL, name or value) with a NUL. */
static void hb_terminate(struct fl_http_conn *c)
{
	struct hoff *h = c->nhdr ? &c->hoff[c->nhdr - 1] : NULL;

	switch (c->last) {
	case CB_URL:
		c->url_len = c->hlen;
		break;
	case CB_FIELD:
		h->name_len = (uint16_t)(c->hlen - h->name_off);
		/* A name without a value callback: an empty value. */
		c->hbuf[c->hlen++] = '\0';
		h->val_off = (uint16_t)c->hlen;
		h->val_len = 0;
		break;
	case CB_VALUE:
		h->val_len = (uint16_t)(c->hlen - h->val_off);
		break;
	case CB_NONE:
		break;
	}
	c->hbuf[c->hlen++] = '\0';
}

static int on_message_begin(http_parser *p)
{
	struct fl_http_conn *c = p->data;

	c->hlen = c->hbytes = c->url_len = c->nhdr = 0;
	c->last = CB_NONE;
	c->body_len = 0;
	c->error_status = 0;
	c->expect = 0;
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct fl_http_conn *c = p->data;
	size_t overhead = 0;

	if (c->last != CB_URL) {
		/* "METHOD " + " HTTP/1.1\r\n" around the target. */
		overhead = strlen(http_method_str((enum http_method)p->method)) + 11;
		c->last = CB_URL;
	}
	return hb_append(c, at, len, overhead);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct fl_http_conn *c = p->data;

	if (c->last != CB_FIELD) {
		hb_terminate(c);
		if (c->nhdr == FL_HTTP_MAX_HEADERS) {
			c->error_status = 431;
			return -1;
		}
		c->hoff[c->nhdr++].name_off = (uint16_t)c->hlen;
		c->last = CB_FIELD;
		return hb_append(c, at, len, 4); /* ": " and CRLF */
	}
	return hb_append(c, at, len, 0);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct fl_http_conn *c = p->data;

	if (c->last != CB_VALUE) {
		struct hoff *h = &c->hoff[c->nhdr - 1];

		h->name_len = (uint16_t)(c->hlen - h->name_off);
		c->hbuf[c->hlen++] = '\0';
		h->val_off = (uint16_t)c->hlen;
		c->last = CB_VALUE;
	}
	return hb_append(c, at, len, 0);
}

/* Splits the request target into path and query, in place. */
static int split_target(struct fl_http_conn *c)
{
	struct fl_http_req *r = &c->req;
	char *u = c->hbuf;
	size_t n = c->url_len, i;

	if (n && u[0] != '/' && !(n == 1 && u[0] == '*')) {
		/* Absolute form: keep the path and query of the URL. */
		struct http_parser_url pu;

		http_parser_url_init(&pu);
		if (http_parser_parse_url(u, n, 0, &pu) != 0)
			return -1;
		if (pu.field_set & (1 << UF_PATH)) {
			u += pu.field_data[UF_PATH].off;
			n -= pu.field_data[UF_PATH].off;
		} else {
			r->path = "/";
			r->path_len = 1;
			r->query = "";
			r->query_len = 0;
			if (pu.field_set & (1 << UF_QUERY)) {
				r->query = c->hbuf + pu.field_data[UF_QUERY].off;
				r->query_len = pu.field_data[UF_QUERY].len;
				c->hbuf[pu.field_data[UF_QUERY].off + r->query_len] = '\0';
			}
			return 0;
		}
	}
	r->path = u;
	r->query = "";
	r->query_len = 0;
	for (i = 0; i < n && u[i] != '?' && u[i] != '#'; i++)
		;
	r->path_len = i;
	if (i < n && u[i] == '?') {
		size_t q = i + 1, e = q;

		while (e < n && u[e] != '#')
			e++;
		r->query = u + q;
		r->query_len = e - q;
		u[e] = '\0'; /* u[n] is the URL's NUL */
	}
	u[i] = '\0';
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct fl_http_conn *c = p->data;
	struct fl_http_req *r = &c->req;

	if (c->last == CB_NONE) {
		c->error_status = 400; /* no target at all */
		return -1;
	}
	hb_terminate(c);
	if (split_target(c) < 0) {
		c->error_status = 400;
		return -1;
	}
	r->idempotency_key = NULL;
	r->idempotency_key_len = 0;
	for (size_t i = 0; i < c->nhdr; i++) {
		struct fl_http_header *h = &c->hdrs[i];
		const struct hoff *o = &c->hoff[i];
		size_t vl = o->val_len;

		h->name = c->hbuf + o->name_off;
		h->name_len = o->name_len;
		h->value = c->hbuf + o->val_off;
		while (vl && (h->value[vl - 1] == ' ' || h->value[vl - 1] == '\t'))
			c->hbuf[o->val_off + --vl] = '\0';
		h->value_len = vl;
		if (h->name_len == 15 && strcasecmp(h->name, "idempotency-key") == 0 &&
		    !r->idempotency_key) {
			r->idempotency_key = h->value;
			r->idempotency_key_len = vl;
		} else if (h->name_len == 6 && strcasecmp(h->name, "expect") == 0 &&
			   strcasecmp(h->value, "100-continue") == 0) {
			c->expect = 1;
		}
	}
	r->headers = c->hdrs;
	r->nheaders = c->nhdr;
	if ((p->flags & F_CONTENTLENGTH) && p->content_length > FL_HTTP_MAX_BODY) {
		c->error_status = 413;
		return -1;
	}
	if (c->expect &&
	    ((p->flags & F_CHUNKED) || ((p->flags & F_CONTENTLENGTH) && p->content_length > 0))) {
		static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
		struct obuf *b = &c->out[c->cur];

		if (obuf_reserve(b, sizeof(cont)) == 0) {
			memcpy(b->p + b->len, cont, sizeof(cont) - 1);
			b->len += sizeof(cont) - 1;
		}
	}
	return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct fl_http_conn *c = p->data;

	if (c->body_len + len > FL_HTTP_MAX_BODY) {
		c->error_status = 413;
		return -1;
	}
	if (c->body_cap - c->body_len < len) {
		size_t cap = c->body_cap ? c->body_cap * 2 : 4096;
		char *nb;

		if ((p->flags & F_CONTENTLENGTH) && cap < c->body_len + len + p->content_length)
			cap = c->body_len + len + p->content_length;
		if (cap < c->body_len + len)
			cap = c->body_len + len;
		if (cap > FL_HTTP_MAX_BODY)
			cap = FL_HTTP_MAX_BODY;
		nb = realloc(c->body, cap);
		if (!nb) {
			c->error_status = 500;
			return -1;
		}
		c->body = nb;
		c->body_cap = cap;
	}
	memcpy(c->body + c->body_len, at, len);
	c->body_len += len;
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct fl_http_conn *c = p->data;

	c->req.keep_alive = http_should_keep_alive(p) && !p->upgrade;
	/* Stop here: the request goes to the handler before anything else. */
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

static void dispatch(struct fl_http_conn *c)
{
	struct fl_http_server *s = c->srv;
	struct fl_http_req *r = &c->req;

	r->method = (int)c->parser.method;
	r->method_str = http_method_str((enum http_method)c->parser.method);
	r->body = c->body_len ? c->body : NULL;
	r->body_len = c->body_len;
	r->http_major = c->parser.http_major;
	r->http_minor = c->parser.http_minor;
	r->received_ns = uv_hrtime();
	r->user = NULL;
	c->head = c->parser.method == HTTP_HEAD;
	c->pending = 1;
	s->stats.requests++;
	s->stats.pending++;
	s->on_request(r, s->ctx);
}

/* A request the parser refused: answer it and close. */
static void reject(struct fl_http_conn *c, enum http_errno e)
{
	struct fl_http_server *s = c->srv;
	int status = c->error_status ? c->error_status : e == HPE_HEADER_OVERFLOW ? 431 : 400;

	if (status == 431)
		s->stats.header_too_large++;
	else if (status == 413)
		s->stats.body_too_large++;
	else if (status == 400)
		s->stats.bad_request++;
	c->rpos = c->rlen;
	c->close_after = 1;
	c->head = 0;
	c->req.http_major = 1;
	c->req.http_minor = 1;
	if (append_answer(c, status, "text/plain", NULL, fl_http_reason(status),
			  strlen(fl_http_reason(status)), true) < 0)
		conn_close(c);
}

/* Parses and dispatches what rbuf holds, one request at a time, until a
 * request waits for its answer, a write is in flight, or rbuf is used up;
 * then writes what was answered and decides whether to read on. */
static void drive(struct fl_http_conn *c)
{
	if (c->in_drive)
		return;
	c->in_drive = 1;
	while (!c->closing && !c->pending && !c->writing && !c->close_after && c->rpos < c->rlen) {
		size_t n = http_parser_execute(&c->parser, &settings, c->rbuf + c->rpos,
					       c->rlen - c->rpos);
		enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);

		c->rpos += n;
		if (e == HPE_PAUSED) {
			http_parser_pause(&c->parser, 0);
			dispatch(c);
			if (c->out[c->cur].len >= FLUSH_AT)
				flush(c);
		} else if (e != HPE_OK) {
			reject(c, e);
		}
	}
	c->in_drive = 0;
	flush(c);
	settle(c);
}

int fl_http_respond(struct fl_http_req *req, int status, const char *content_type,
		    const char *extra_headers, const void *body, size_t len)
{
	struct fl_http_conn *c = req->conn;
	struct fl_http_server *s = c->srv;
	int rc;

	if (status < 200 || status > 599 || !c->pending)
		return -EINVAL;
	c->pending = 0;
	s->stats.pending--;
	if (c->zombie) {
		s->stats.dropped++;
		s->zombies--;
		conn_free(c);
		server_maybe_done(s);
		return 0;
	}
	if (c->closing) {
		s->stats.dropped++; /* freed when its handles have closed */
		return 0;
	}
	if (!req->keep_alive)
		c->close_after = 1;
	rc = append_answer(c, status, content_type, extra_headers, body, len, !req->keep_alive);
	if (rc < 0) {
		conn_close(c);
		return rc;
	}
	s->stats.responses++;
	if (!c->in_drive)
		drive(c);
	return 0;
}

const char *fl_http_req_header(const struct fl_http_req *req, const char *name, size_t *len)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i < req->nheaders; i++) {
		const struct fl_http_header *h = &req->headers[i];

		if (h->name_len == nl && strcasecmp(h->name, name) == 0) {
			if (len)
				*len = h->value_len;
			return h->value;
		}
	}
	return NULL;
}

/* ---- the server -------------------------------------------------------- */

static void on_reject_closed(uv_handle_t *h)
{
	struct fl_http_server *s = h->data;

	s->reject_busy = 0;
	s->handles--;
	server_maybe_done(s);
}

static void on_connection(uv_stream_t *ls, int status)
{
	struct fl_http_server *s = ls->data;
	struct fl_http_conn *c;

	if (status < 0 || s->closing)
		return;
	c = calloc(1, sizeof(*c));
	if (!c) {
		/* Take the connection off the backlog (libuv stops accepting
		 * until someone does) and close it. */
		if (!s->reject_busy && uv_tcp_init(s->loop, &s->reject) == 0) {
			s->reject.data = s;
			s->reject_busy = 1;
			s->handles++;
			(void)uv_accept(ls, (uv_stream_t *)&s->reject);
			uv_close((uv_handle_t *)&s->reject, on_reject_closed);
		}
		return;
	}
	c->srv = s;
	if (uv_tcp_init(s->loop, &c->tcp) < 0) {
		free(c);
		return;
	}
	c->tcp.data = c;
	c->handles = 1;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->stats.accepted++;
	s->stats.open++;
	http_parser_init(&c->parser, HTTP_REQUEST);
	c->parser.data = c;
	c->req.conn = c;
	c->req.http_major = 1;
	c->req.http_minor = 1;
	if (uv_accept(ls, (uv_stream_t *)&c->tcp) < 0) {
		conn_close(c);
		return;
	}
	(void)uv_tcp_nodelay(&c->tcp, 1);
	start_reading(c);
}

int fl_http_server_new(struct fl_http_server **out, uv_loop_t *loop,
		       const struct fl_http_server_opts *opts, struct rs_err *err)
{
	struct fl_http_server *s;
	int rc;

	*out = NULL;
	if (!loop || !opts || !opts->on_request)
		return rs__einval(err, "http: a loop and an on_request handler are required");
	if (opts->backlog < 0)
		return rs__einval(err, "http: backlog must be >= 0, got %d", opts->backlog);
	s = calloc(1, sizeof(*s));
	if (!s)
		return rs__enomem(err, "http server");
	s->loop = loop;
	s->on_request = opts->on_request;
	s->ctx = opts->ctx;
	s->backlog = opts->backlog ? opts->backlog : 511;
	rc = uv_tcp_init(loop, &s->listener);
	if (rc < 0) {
		rs__err_set(err, "http: uv_tcp_init: %s", uv_strerror(rc));
		free(s);
		return rc;
	}
	s->listener.data = s;
	s->handles = 1;
	*out = s;
	return 0;
}

int fl_http_server_listen(struct fl_http_server *s, const char *host, int port, struct rs_err *err)
{
	struct sockaddr_storage ss;
	int rc;

	if (!host || port < 0 || port > 65535)
		return rs__einval(err, "http: cannot listen on %s:%d: bad host or port",
				  host ? host : "(null)", port);
	if (s->listening || s->closing)
		return rs__einval(err, "http: cannot listen on %s:%d: already listening or closed",
				  host, port);
	if (strcmp(host, "localhost") == 0)
		host = "127.0.0.1";
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
		return rs__einval(err, "http: cannot listen on '%s': not an IPv4 or IPv6 address",
				  host);
	rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&s->listener, s->backlog, on_connection);
	if (rc < 0) {
		rs__err_set(err, "http: cannot listen on %s:%d: %s", host, port, uv_strerror(rc));
		return rc;
	}
	s->listening = 1;
	return 0;
}

int fl_http_server_port(const struct fl_http_server *s)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	int rc;

	if (!s->listening)
		return -ENOTCONN;
	rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
	if (rc < 0)
		return rc;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

const struct fl_http_stats *fl_http_server_stats(const struct fl_http_server *s)
{
	return &s->stats;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct fl_http_server *s = h->data;

	s->handles--;
	server_maybe_done(s);
}

void fl_http_server_close(struct fl_http_server *s, void (*close_cb)(void *ctx), void *ctx)
{
	if (!s || s->closing)
		return;
	s->closing = 1;
	s->close_cb = close_cb;
	s->close_ctx = ctx;
	uv_close((uv_handle_t *)&s->listener, on_listener_closed);
	for (struct fl_http_conn *c = s->conns; c; c = c->next)
		conn_close(c);
}
