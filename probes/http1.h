/* A one-shot HTTP/1.1 client for probes and injectors: one request per
 * connection ("Connection: close"), to http://HOST[:PORT][/PATH] URLs on this
 * machine, with a deadline, the response parsed by http-parser, and the
 * body kept in memory up to a cap.
 *
 * Two ways to call it:
 *  - fl_http1_request: asynchronous, on a libuv loop (the probes).  The
 *    callback runs exactly once, never inside fl_http1_request, after the
 *    request's handles are closed; the request frees itself when the
 *    callback returns.
 *  - fl_http1_request_sync: blocking, plain sockets and poll(2), for code
 *    that runs outside any loop (injectors' apply/verify/revert on a worker
 *    thread, `faultline recover`).
 *
 * URLs: HOST is an IPv4 literal, a bracketed IPv6 literal or `localhost`
 * (127.0.0.1); no name resolution ever happens, so a probe never waits on
 * DNS.  PORT defaults to 80, PATH (query included) to "/"; no userinfo, no
 * fragment, no https, no spaces or control characters.
 *
 * Failures are negative errnos with a lowercase reason:
 *   -ECONNREFUSED  "connection refused to 127.0.0.1:PORT"
 *   -ETIMEDOUT     "timed out after 200ms" (connect included)
 *   -ECONNRESET    "connection reset by 127.0.0.1:PORT", or closed before the
 *                  response was complete
 *   -EMSGSIZE      the body (or the header block) is larger than the cap
 *   -EPROTO        the response is not valid HTTP/1.x
 *   -ECANCELED     fl_http1_cancel
 *   other -errno   from connect/read/write, with the system's reason
 * Any complete response is a success, whatever its status.
 *
 * SIGPIPE: the asynchronous client writes with write(2) (libuv), so a
 * program using it must ignore SIGPIPE; the blocking one uses MSG_NOSIGNAL.
 */
#ifndef FAULTLINE_PROBES_HTTP1_H
#define FAULTLINE_PROBES_HTTP1_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "resilience/err.h"

#define FL_HTTP1_BODY_MAX    (4u << 20) /* default body cap, bytes */
#define FL_HTTP1_HEADER_MAX  16384	/* response header block, bytes */
#define FL_HTTP1_HEADERS_MAX 64		/* header lines kept; later ones are dropped */
#define FL_HTTP1_WHY_MAX     120
#define FL_HTTP1_TIMEOUT_NS  1000000000ull /* when the caller gives 0 */
#define FL_HTTP1_HOST_MAX    64

/* ---- URLs ----------------------------------------------------------------- */

struct fl_http1_url {
	struct sockaddr_storage addr; /* where to connect */
	socklen_t addr_len;
	char host[FL_HTTP1_HOST_MAX]; /* Host header and messages: "127.0.0.1:8080" */
	const char *path;	      /* borrowed: points into the parsed string */
};

/* Parses `s` (borrowed: u->path points into it).  Returns 0, or -EINVAL with
 * a message saying what is wrong ("url 'https://x': only http:// is
 * supported").  Any thread. */
int fl_http1_url_parse(struct fl_http1_url *u, const char *s, struct rs_err *err) RS_WUR;

/* ---- asynchronous --------------------------------------------------------- */

/* One response header line, NUL-terminated, value without surrounding
 * whitespace. */
struct fl_http1_header {
	const char *name;
	const char *value;
};

/* How a request ended.  Every pointer is borrowed and valid only during the
 * callback. */
struct fl_http1_result {
	int status;		    /* the HTTP status (100..999), or a negative errno */
	char why[FL_HTTP1_WHY_MAX]; /* lowercase reason when status < 0, else "" */
	uint64_t start_ns;	    /* uv_hrtime() when the request started */
	uint64_t dur_ns;	    /* from start to the complete response (or the failure) */
	const char *body;	    /* NUL-terminated ("" when none); may contain NULs */
	size_t body_len;
	const struct fl_http1_header *headers; /* in order, up to FL_HTTP1_HEADERS_MAX */
	size_t nheaders;
};

/* The value of response header `name` (case-insensitive; the first one
 * wins), or NULL. */
const char *fl_http1_result_header(const struct fl_http1_result *r, const char *name);

struct fl_http1_opts {
	const char *method; /* "GET" when NULL; HEAD responses have no body */
	const char *url;    /* required; borrowed for the call (copied) */
	const void *body;   /* request body, or NULL; copied */
	size_t body_len;
	const char *content_type; /* sent with a body when not NULL */
	uint64_t timeout_ns;	  /* connect to last byte; 0: FL_HTTP1_TIMEOUT_NS */
	size_t body_max;	  /* response body cap; 0: FL_HTTP1_BODY_MAX */
};

typedef void (*fl_http1_cb)(void *ctx, const struct fl_http1_result *r);

struct fl_http1;

/* Starts a request on loop.  Returns 0 and sets *out (a handle for
 * fl_http1_cancel, valid until the callback returns; out may be NULL);
 * -EINVAL (bad URL or method, no callback) or -ENOMEM with a message, and
 * then no callback follows.  Everything else, a refused connection
 * included, is reported through cb.  Loop thread only. */
int fl_http1_request(struct fl_http1 **out, uv_loop_t *loop, const struct fl_http1_opts *o,
		     fl_http1_cb cb, void *ctx, struct rs_err *err) RS_WUR;

/* Abandons the request: its callback follows (from the loop, once the
 * handles are closed) with -ECANCELED, unless the outcome was already
 * decided, in which case the callback carries that outcome.  Accepts NULL.
 * Loop thread only, before the callback. */
void fl_http1_cancel(struct fl_http1 *h);

/* ---- blocking ------------------------------------------------------------- */

/* Sends `method` (NULL: GET) to url with body (NULL: none; sent as
 * text/plain) and waits at most timeout_ns (0: FL_HTTP1_TIMEOUT_NS) for the
 * whole response.  On 0, *status is the HTTP status and buf holds the body
 * NUL-terminated (buf may be NULL when cap is 0: the body is discarded);
 * a body of cap bytes or more is -EMSGSIZE.  Failures as listed above,
 * with the reason in err.  Any thread; no signals needed or changed. */
int fl_http1_request_sync(const char *method, const char *url, const char *body,
			  uint64_t timeout_ns, int *status, char *buf, size_t cap,
			  struct rs_err *err) RS_WUR;

/* Helpers the probes share. */

/* "200ms", "5s", "1500us", "7ns": the shortest exact rendering, into buf;
 * returns buf. */
char *fl_fmt_duration(uint64_t ns, char *buf, size_t size);

/* strerror(errnum) with its first letter lowercased ("no such file or
 * directory"), into buf; returns buf.  Thread-safe. */
char *fl_strerror_lc(int errnum, char *buf, size_t size);

#endif
