/* The one-shot HTTP/1.1 client of probes/http1.h. */
#include "probes/http1.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>

#define RBUF_SIZE 16384

/* ---- shared helpers ------------------------------------------------------- */

char *fl_fmt_duration(uint64_t ns, char *buf, size_t size)
{
	if (ns >= 1000000000ull && ns % 1000000000ull == 0)
		snprintf(buf, size, "%" PRIu64 "s", (uint64_t)(ns / 1000000000u));
	else if (ns >= 1000000ull && ns % 1000000ull == 0)
		snprintf(buf, size, "%" PRIu64 "ms", (uint64_t)(ns / 1000000u));
	else if (ns >= 1000ull && ns % 1000ull == 0)
		snprintf(buf, size, "%" PRIu64 "us", (uint64_t)(ns / 1000u));
	else
		snprintf(buf, size, "%" PRIu64 "ns", ns);
	return buf;
}

char *fl_strerror_lc(int errnum, char *buf, size_t size)
{
	char tmp[128];
	const char *s = strerror_r(errnum, tmp, sizeof(tmp)); /* GNU: may not use tmp */

	snprintf(buf, size, "%s", s);
	if (size && buf[0] >= 'A' && buf[0] <= 'Z' && (buf[1] < 'A' || buf[1] > 'Z'))
		buf[0] = (char)(buf[0] - 'A' + 'a');
	return buf;
}

int fl_http1_url_parse(struct fl_http1_url *u, const char *s, struct rs_err *err)
{
	const char *p, *h0, *h1;
	char host[48];
	bool v6 = false;
	long port = 80;
	size_t hl;

	memset(u, 0, sizeof(*u));
	if (!s || !*s)
		return rs__einval(err, "url: empty");
	if (strncmp(s, "http://", 7) != 0) {
		if (strstr(s, "://"))
			return rs__einval(err, "url '%.80s': only http:// is supported", s);
		return rs__einval(err, "url '%.80s': expected http://HOST[:PORT][/PATH]", s);
	}
	p = s + 7;
	if (*p == '[') {
		h0 = p + 1;
		h1 = strchr(h0, ']');
		if (!h1)
			return rs__einval(err, "url '%.80s': unterminated '[' in the host", s);
		p = h1 + 1;
		v6 = true;
	} else {
		h0 = p;
		while (*p && *p != ':' && *p != '/' && *p != '@' && *p != '?' && *p != '#')
			p++;
		h1 = p;
	}
	if (*p == '@' || memchr(h0, '@', (size_t)(h1 - h0)))
		return rs__einval(err, "url '%.80s': userinfo is not supported", s);
	hl = (size_t)(h1 - h0);
	if (hl == 0)
		return rs__einval(err, "url '%.80s': no host", s);
	if (hl >= 48)
		return rs__einval(err, "url '%.80s': host too long", s);
	memcpy(host, h0, hl);
	host[hl] = '\0';
	if (*p == ':') {
		char *end;

		p++;
		if (*p < '0' || *p > '9')
			return rs__einval(err, "url '%.80s': bad port", s);
		port = strtol(p, &end, 10);
		if (port < 1 || port > 65535)
			return rs__einval(err, "url '%.80s': port must be in 1..65535", s);
		p = end;
	}
	if (*p && *p != '/')
		return rs__einval(err, "url '%.80s': the path must start with '/'", s);
	u->path = *p ? p : "/";
	for (const char *c = u->path; *c; c++) {
		if ((unsigned char)*c <= 0x20 || *c == 0x7f)
			return rs__einval(
			    err, "url '%.80s': spaces or control characters in the path", s);
		if (*c == '#')
			return rs__einval(err, "url '%.80s': fragments are not supported", s);
	}
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&u->addr;

		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return rs__einval(err, "url '%.80s': '%s' is not an IPv6 address", s, host);
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		u->addr_len = sizeof(*a);
		snprintf(u->host, sizeof(u->host), "[%.47s]:%ld", host, port);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&u->addr;
		const char *lit = strcmp(host, "localhost") == 0 ? "127.0.0.1" : host;

		if (inet_pton(AF_INET, lit, &a->sin_addr) != 1)
			return rs__einval(
			    err,
			    "url '%.80s': host '%s' is not an IP address or localhost "
			    "(names are not resolved)",
			    s, host);
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		u->addr_len = sizeof(*a);
		snprintf(u->host, sizeof(u->host), "%.47s:%ld", lit, port);
	}
	return 0;
}

static int check_method(const char *m, struct rs_err *err)
{
	if (!*m || strlen(m) > 16)
		return rs__einval(err, "http: bad method '%.20s'", m);
	for (const char *c = m; *c; c++)
		if (*c < 'A' || *c > 'Z')
			return rs__einval(err, "http: bad method '%.20s'", m);
	return 0;
}

#define REQUEST_FMT                                                                                \
	"%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: faultline-probe\r\nAccept: */*\r\n"             \
	"Connection: close\r\n%s%s%s%s\r\n"

/* The request bytes, malloc'd into *out; returns the length or -ENOMEM. */
static long format_request(char **out, const char *method, const struct fl_http1_url *u,
			   const void *body, size_t body_len, const char *ctype)
{
	bool with_len = body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0;
	bool with_ct = body && ctype;
	size_t blen = body ? body_len : 0;
	char clen[48] = "";
	char *buf;
	int n;

	if (with_len)
		snprintf(clen, sizeof(clen), "Content-Length: %zu\r\n", blen);
	n = snprintf(NULL, 0, REQUEST_FMT, method, u->path, u->host,
		     with_ct ? "Content-Type: " : "", with_ct ? ctype : "", with_ct ? "\r\n" : "",
		     clen);
	if (n < 0)
		return -ENOMEM;
	buf = malloc((size_t)n + 1 + blen);
	if (!buf)
		return -ENOMEM;
	snprintf(buf, (size_t)n + 1, REQUEST_FMT, method, u->path, u->host,
		 with_ct ? "Content-Type: " : "", with_ct ? ctype : "", with_ct ? "\r\n" : "",
		 clen);
	if (blen)
		memcpy(buf + n, body, blen);
	*out = buf;
	return (long)((size_t)n + blen);
}

static void vwhy(char *why, size_t size, const char *fmt, va_list ap) RS_PRINTF(3, 0);
static void vwhy(char *why, size_t size, const char *fmt, va_list ap)
{
	vsnprintf(why, size, fmt, ap);
}

/* The reason for a failed connect. */
static void connect_why(char *why, size_t size, int rc, const char *host)
{
	char e[80];

	if (rc == -ECONNREFUSED)
		snprintf(why, size, "connection refused to %s", host);
	else
		snprintf(why, size, "cannot connect to %s: %s", host,
			 fl_strerror_lc(-rc, e, sizeof(e)));
}

static void read_why(char *why, size_t size, int rc, const char *host)
{
	char e[80];

	if (rc == -ECONNRESET)
		snprintf(why, size, "connection reset by %s", host);
	else
		snprintf(why, size, "cannot read from %s: %s", host,
			 fl_strerror_lc(-rc, e, sizeof(e)));
}

/* ---- asynchronous --------------------------------------------------------- */

struct fl_http1 {
	uv_tcp_t tcp;
	uv_timer_t timer;
	uv_connect_t creq;
	uv_write_t wreq;
	http_parser parser;
	fl_http1_cb cb;
	void *ctx;
	struct fl_http1_url url;
	char *urlcopy; /* url.path points into it */
	char *req;
	size_t req_len;
	char *body;
	size_t body_len, body_cap, body_max;
	uint64_t timeout_ns;
	int open_handles;
	bool head, decided, complete, body_big, hdr_big;
	bool in_field, in_value, cur_kept;
	size_t hlen, value_off;
	struct fl_http1_result res;
	struct fl_http1_header headers[FL_HTTP1_HEADERS_MAX];
	size_t nheaders;
	char hdr[FL_HTTP1_HEADER_MAX];
	char rbuf[RBUF_SIZE];
};

const char *fl_http1_result_header(const struct fl_http1_result *r, const char *name)
{
	for (size_t i = 0; i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

static void deliver(struct fl_http1 *h)
{
	h->res.body = h->body ? h->body : "";
	h->res.body_len = h->body ? h->body_len : 0;
	h->res.headers = h->headers;
	h->res.nheaders = h->nheaders;
	if (h->res.status < 0) {
		h->res.body = "";
		h->res.body_len = 0;
	}
	h->cb(h->ctx, &h->res);
	free(h->body);
	free(h->req);
	free(h->urlcopy);
	free(h);
}

static void on_close(uv_handle_t *hd)
{
	struct fl_http1 *h = hd->data;

	if (--h->open_handles == 0)
		deliver(h);
}

/* Decides the outcome (first call wins) and closes the handles; the
 * callback follows from on_close. */
static void decide(struct fl_http1 *h, int status, const char *fmt, ...) RS_PRINTF(3, 4);
static void decide(struct fl_http1 *h, int status, const char *fmt, ...)
{
	va_list ap;

	if (h->decided)
		return;
	h->decided = true;
	h->res.status = status;
	h->res.dur_ns = uv_hrtime() - h->res.start_ns;
	h->res.why[0] = '\0';
	if (fmt) {
		va_start(ap, fmt);
		vwhy(h->res.why, sizeof(h->res.why), fmt, ap);
		va_end(ap);
	}
	uv_timer_stop(&h->timer);
	uv_close((uv_handle_t *)&h->tcp, on_close);
	uv_close((uv_handle_t *)&h->timer, on_close);
}

static int hdr_append(struct fl_http1 *h, const char *at, size_t len)
{
	if (len >= sizeof(h->hdr) - h->hlen) {
		h->hdr_big = true;
		return -1;
	}
	memcpy(h->hdr + h->hlen, at, len);
	h->hlen += len;
	return 0;
}

static int hdr_end_value(struct fl_http1 *h)
{
	if (!h->cur_kept)
		return 0;
	while (h->hlen > h->value_off &&
	       (h->hdr[h->hlen - 1] == ' ' || h->hdr[h->hlen - 1] == '\t'))
		h->hlen--;
	if (hdr_append(h, "", 1))
		return -1;
	h->nheaders++;
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct fl_http1 *h = p->data;

	if (h->in_value || !h->in_field) {
		if (h->in_value && hdr_end_value(h))
			return -1;
		h->in_value = false;
		h->in_field = true;
		h->cur_kept = h->nheaders < FL_HTTP1_HEADERS_MAX;
		if (h->cur_kept)
			h->headers[h->nheaders].name = h->hdr + h->hlen;
	}
	return h->cur_kept ? hdr_append(h, at, len) : 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct fl_http1 *h = p->data;

	if (!h->in_value) {
		h->in_value = true;
		if (h->cur_kept) {
			if (hdr_append(h, "", 1))
				return -1;
			h->headers[h->nheaders].value = h->hdr + h->hlen;
			h->value_off = h->hlen;
		}
	}
	return h->cur_kept ? hdr_append(h, at, len) : 0;
}

static int on_headers_complete(http_parser *p)
{
	struct fl_http1 *h = p->data;

	if (h->in_value && hdr_end_value(h))
		return -1;
	h->in_value = h->in_field = false;
	return h->head ? 1 : 0; /* 1: a HEAD response has no body */
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct fl_http1 *h = p->data;

	if (len > h->body_max - h->body_len) {
		h->body_big = true;
		return -1;
	}
	if (h->body_len + len + 1 > h->body_cap) {
		size_t cap = h->body_cap ? h->body_cap : 4096;
		char *nb;

		while (cap < h->body_len + len + 1)
			cap *= 2;
		if (cap > h->body_max + 1)
			cap = h->body_max + 1;
		nb = realloc(h->body, cap);
		if (!nb)
			return -1; /* reported as out of memory below */
		h->body = nb;
		h->body_cap = cap;
	}
	memcpy(h->body + h->body_len, at, len);
	h->body_len += len;
	h->body[h->body_len] = '\0';
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct fl_http1 *h = p->data;

	h->complete = true;
	http_parser_pause(p, 1); /* nothing after the response is read */
	return 0;
}

static const http_parser_settings async_settings = {
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* Feeds len bytes (0: end of stream) and decides when the response is
 * complete or cannot be. */
static void feed(struct fl_http1 *h, const char *buf, size_t len)
{
	enum http_errno e;

	http_parser_execute(&h->parser, &async_settings, buf, len);
	e = HTTP_PARSER_ERRNO(&h->parser);
	if (h->complete) {
		decide(h, (int)h->parser.status_code, NULL);
	} else if (h->body_big) {
		decide(h, -EMSGSIZE, "response body from %s larger than %zu bytes", h->url.host,
		       h->body_max);
	} else if (h->hdr_big) {
		decide(h, -EMSGSIZE, "response headers from %s larger than %d bytes", h->url.host,
		       FL_HTTP1_HEADER_MAX);
	} else if (e == HPE_CB_body) {
		decide(h, -ENOMEM, "response body from %s: out of memory", h->url.host);
	} else if (len == 0) {
		decide(h, -ECONNRESET, "connection closed by %s before the response was complete",
		       h->url.host);
	} else if (e != HPE_OK) {
		decide(h, -EPROTO, "malformed response from %s: %s", h->url.host,
		       http_errno_description(e));
	}
}

static void on_alloc(uv_handle_t *hd, size_t suggested, uv_buf_t *b)
{
	struct fl_http1 *h = hd->data;

	(void)suggested;
	b->base = h->rbuf;
	b->len = sizeof(h->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct fl_http1 *h = s->data;

	if (h->decided)
		return;
	if (nread > 0) {
		feed(h, b->base, (size_t)nread);
	} else if (nread == UV_EOF) {
		feed(h, NULL, 0);
	} else if (nread < 0) {
		char why[FL_HTTP1_WHY_MAX];

		read_why(why, sizeof(why), (int)nread, h->url.host);
		decide(h, (int)nread, "%s", why);
	}
}

static void on_write(uv_write_t *w, int status)
{
	struct fl_http1 *h = w->data;
	char e[80];

	if (status < 0 && !h->decided) {
		if (status == UV_ECONNRESET || status == UV_EPIPE)
			decide(h, -ECONNRESET, "connection reset by %s while sending the request",
			       h->url.host);
		else
			decide(h, status, "cannot send the request to %s: %s", h->url.host,
			       fl_strerror_lc(-status, e, sizeof(e)));
	}
}

static void on_connect(uv_connect_t *c, int status)
{
	struct fl_http1 *h = c->data;
	uv_buf_t b;
	int rc;

	if (h->decided)
		return;
	if (status < 0) {
		char why[FL_HTTP1_WHY_MAX];

		connect_why(why, sizeof(why), status, h->url.host);
		decide(h, status, "%s", why);
		return;
	}
	uv_tcp_nodelay(&h->tcp, 1);
	rc = uv_read_start((uv_stream_t *)&h->tcp, on_alloc, on_read);
	if (rc == 0) {
		b = uv_buf_init(h->req, (unsigned)h->req_len);
		rc = uv_write(&h->wreq, (uv_stream_t *)&h->tcp, &b, 1, on_write);
	}
	if (rc < 0) {
		char e[80];

		decide(h, rc, "cannot send the request to %s: %s", h->url.host,
		       fl_strerror_lc(-rc, e, sizeof(e)));
	}
}

static void on_timeout(uv_timer_t *t)
{
	struct fl_http1 *h = t->data;
	char d[32];

	decide(h, -ETIMEDOUT, "timed out after %s waiting for %s",
	       fl_fmt_duration(h->timeout_ns, d, sizeof(d)), h->url.host);
}

int fl_http1_request(struct fl_http1 **out, uv_loop_t *loop, const struct fl_http1_opts *o,
		     fl_http1_cb cb, void *ctx, struct rs_err *err)
{
	const char *method = o && o->method ? o->method : "GET";
	struct fl_http1 *h;
	long n;
	int rc;

	if (out)
		*out = NULL;
	if (!loop || !o || !cb)
		return rs__einval(err, "http: loop, options and callback are required");
	rc = check_method(method, err);
	if (rc < 0)
		return rc;
	h = calloc(1, sizeof(*h));
	if (!h)
		return rs__enomem(err, "http request");
	if (!o->url) {
		free(h);
		return rs__einval(err, "http: no url");
	}
	h->urlcopy = strdup(o->url);
	if (!h->urlcopy) {
		rc = rs__enomem(err, "http request");
		goto fail;
	}
	rc = fl_http1_url_parse(&h->url, h->urlcopy, err);
	if (rc < 0)
		goto fail;
	n = format_request(&h->req, method, &h->url, o->body, o->body_len, o->content_type);
	if (n < 0) {
		rc = rs__enomem(err, "http request");
		goto fail;
	}
	h->req_len = (size_t)n;
	h->cb = cb;
	h->ctx = ctx;
	h->head = strcmp(method, "HEAD") == 0;
	h->body_max = o->body_max ? o->body_max : FL_HTTP1_BODY_MAX;
	h->timeout_ns = o->timeout_ns ? o->timeout_ns : FL_HTTP1_TIMEOUT_NS;
	http_parser_init(&h->parser, HTTP_RESPONSE);
	h->parser.data = h;
	rc = uv_tcp_init(loop, &h->tcp);
	if (rc < 0) {
		rs__err_set(err, "http: cannot create a socket: %s",
			    uv_strerror(rc)); /* lowercase */
		goto fail;
	}
	uv_timer_init(loop, &h->timer);
	h->tcp.data = h->timer.data = h->creq.data = h->wreq.data = h;
	h->open_handles = 2;
	h->res.start_ns = uv_hrtime();
	uv_timer_start(&h->timer, on_timeout, (h->timeout_ns + 999999) / 1000000, 0);
	rc = uv_tcp_connect(&h->creq, &h->tcp, (const struct sockaddr *)&h->url.addr, on_connect);
	if (rc < 0) {
		char why[FL_HTTP1_WHY_MAX];

		connect_why(why, sizeof(why), rc, h->url.host);
		decide(h, rc, "%s", why); /* reported from the loop */
	}
	if (out)
		*out = h;
	return 0;
fail:
	free(h->req);
	free(h->urlcopy);
	free(h);
	return rc;
}

void fl_http1_cancel(struct fl_http1 *h)
{
	if (h)
		decide(h, -ECANCELED, "cancelled");
}

/* ---- blocking ------------------------------------------------------------- */

struct sync_ctx {
	char *buf;
	size_t cap, len;
	bool head, complete, too_big;
};

static int sync_on_headers_complete(http_parser *p)
{
	struct sync_ctx *c = p->data;

	return c->head ? 1 : 0;
}

static int sync_on_body(http_parser *p, const char *at, size_t len)
{
	struct sync_ctx *c = p->data;

	if (c->cap == 0 || len >= c->cap - c->len) {
		c->too_big = true;
		return -1;
	}
	memcpy(c->buf + c->len, at, len);
	c->len += len;
	c->buf[c->len] = '\0';
	return 0;
}

static int sync_on_message_complete(http_parser *p)
{
	struct sync_ctx *c = p->data;

	c->complete = true;
	http_parser_pause(p, 1);
	return 0;
}

static const http_parser_settings sync_settings = {
	.on_headers_complete = sync_on_headers_complete,
	.on_body = sync_on_body,
	.on_message_complete = sync_on_message_complete,
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Waits for `events` on fd until deadline_ns: 0, or -ETIMEDOUT. */
static int wait_fd(int fd, short events, uint64_t deadline_ns)
{
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = events };
		uint64_t now = mono_ns();
		int ms, n;

		if (now >= deadline_ns)
			return -ETIMEDOUT;
		ms = (int)((deadline_ns - now + 999999) / 1000000);
		n = poll(&pfd, 1, ms);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

int fl_http1_request_sync(const char *method, const char *url, const char *body,
			  uint64_t timeout_ns, int *status, char *buf, size_t cap,
			  struct rs_err *err)
{
	struct fl_http1_url u;
	struct sync_ctx c = { .buf = buf, .cap = buf ? cap : 0 };
	http_parser parser;
	char *req = NULL, *urlcopy = NULL;
	char rbuf[RBUF_SIZE], d[32], why[FL_HTTP1_WHY_MAX];
	uint64_t deadline;
	size_t sent = 0;
	long n;
	int fd = -1, rc;

	if (status)
		*status = 0;
	if (buf && cap)
		buf[0] = '\0';
	method = method ? method : "GET";
	rc = check_method(method, err);
	if (rc < 0)
		return rc;
	if (!url)
		return rs__einval(err, "http: no url");
	urlcopy = strdup(url);
	if (!urlcopy)
		return rs__enomem(err, "http request");
	rc = fl_http1_url_parse(&u, urlcopy, err);
	if (rc < 0)
		goto out;
	n = format_request(&req, method, &u, body, body ? strlen(body) : 0,
			   body ? "text/plain" : NULL);
	if (n < 0) {
		rc = rs__enomem(err, "http request");
		goto out;
	}
	timeout_ns = timeout_ns ? timeout_ns : FL_HTTP1_TIMEOUT_NS;
	deadline = mono_ns() + timeout_ns;
	fd = socket(u.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		rs__err_set(err, "http: cannot create a socket: %s",
			    fl_strerror_lc(errno, why, sizeof(why)));
		goto out;
	}
	if (connect(fd, (const struct sockaddr *)&u.addr, u.addr_len) < 0) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);

		if (errno != EINPROGRESS) {
			rc = -errno;
			goto connect_fail;
		}
		rc = wait_fd(fd, POLLOUT, deadline);
		if (rc < 0)
			goto io_fail;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
			soerr = errno;
		if (soerr) {
			rc = -soerr;
			goto connect_fail;
		}
	}
	while (sent < (size_t)n) {
		ssize_t w = send(fd, req + sent, (size_t)n - sent, MSG_NOSIGNAL);

		if (w >= 0) {
			sent += (size_t)w;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			rc = -errno;
			if (rc == -EPIPE || rc == -ECONNRESET) {
				rc = -ECONNRESET;
				rs__err_set(err, "connection reset by %s while sending the request",
					    u.host);
			} else {
				rs__err_set(err, "cannot send the request to %s: %s", u.host,
					    fl_strerror_lc(-rc, why, sizeof(why)));
			}
			goto out;
		}
		rc = wait_fd(fd, POLLOUT, deadline);
		if (rc < 0)
			goto io_fail;
	}
	http_parser_init(&parser, HTTP_RESPONSE);
	parser.data = &c;
	c.head = strcmp(method, "HEAD") == 0;
	for (;;) {
		ssize_t r = recv(fd, rbuf, sizeof(rbuf), 0);
		enum http_errno e;

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				rc = wait_fd(fd, POLLIN, deadline);
				if (rc < 0)
					goto io_fail;
				continue;
			}
			rc = -errno;
			read_why(why, sizeof(why), rc, u.host);
			rs__err_set(err, "%s", why);
			goto out;
		}
		http_parser_execute(&parser, &sync_settings, rbuf, (size_t)r);
		e = HTTP_PARSER_ERRNO(&parser);
		if (c.complete) {
			if (status)
				*status = (int)parser.status_code;
			rc = 0;
			goto out;
		}
		if (c.too_big) {
			rc = -EMSGSIZE;
			rs__err_set(err, "response body from %s does not fit in %zu bytes", u.host,
				    cap);
			goto out;
		}
		if (r == 0) {
			rc = -ECONNRESET;
			rs__err_set(err, "connection closed by %s before the response was complete",
				    u.host);
			goto out;
		}
		if (e != HPE_OK) {
			rc = -EPROTO;
			rs__err_set(err, "malformed response from %s: %s", u.host,
				    http_errno_description(e));
			goto out;
		}
	}
connect_fail:
	connect_why(why, sizeof(why), rc, u.host);
	rs__err_set(err, "%s", why);
	goto out;
io_fail:
	if (rc == -ETIMEDOUT)
		rs__err_set(err, "timed out after %s waiting for %s",
			    fl_fmt_duration(timeout_ns, d, sizeof(d)), u.host);
	else
		rs__err_set(err, "http: poll on %s failed: %s", u.host,
			    fl_strerror_lc(-rc, why, sizeof(why)));
out:
	if (fd >= 0)
		close(fd);
	free(req);
	free(urlcopy);
	return rc;
}
