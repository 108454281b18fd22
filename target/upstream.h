/* The reference target's client for its dependency: a pool of keep-alive
 * HTTP/1.1 connections to one host:port, on one libuv loop.
 *
 * A request takes an idle connected connection, else opens a new one while
 * fewer than max_conns exist, else waits in a bounded FIFO; when the FIFO
 * is full the request is refused at once with -EBUSY.  Responses are parsed
 * with http-parser (HTTP_RESPONSE); the body is buffered in the connection.
 *
 * Deadlines: each request's timeout runs from the fl_upstream_get call and
 * covers the wait in the FIFO, the connect, the write and the response.
 * When it expires the callback gets -ETIMEDOUT and, if the request was on
 * a connection, that connection is closed: its response would otherwise
 * arrive late on a reused connection and be taken for the next request's.
 *
 * Stale connections: a keep-alive connection the dependency has closed
 * (idle timeout, restart) is noticed by reading on idle connections; if a
 * request was sent on a reused connection and the connection ends before
 * any response byte, the request is sent again once on a new connection.
 * After the dependency restarts, requests simply connect again.
 *
 * Threads: one loop.  Every function and callback runs on the loop's thread.
 * Like the HTTP server, this writes with write(2): the program must ignore
 * SIGPIPE.
 */
#ifndef FAULTLINE_TARGET_UPSTREAM_H
#define FAULTLINE_TARGET_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "resilience/err.h"

#define FL_UPSTREAM_PATH_MAX	  512	     /* request path with query, bytes incl. NUL */
#define FL_UPSTREAM_MAX_CONNS	  1024	     /* upper bound on max_conns */
#define FL_UPSTREAM_DEFAULT_QUEUE 1024	     /* FIFO bound when max_queue is 0 */
#define FL_UPSTREAM_DEFAULT_BODY  (1u << 20) /* response body bound when max_body is 0 */

struct fl_upstream;

struct fl_upstream_opts {
	const char *host;   /* IPv4 or IPv6 literal, or "localhost"; copied */
	int port;	    /* 1..65535 */
	unsigned max_conns; /* 1..FL_UPSTREAM_MAX_CONNS connections at most */
	unsigned max_queue; /* requests waiting for a connection; 0 = FL_UPSTREAM_DEFAULT_QUEUE */
	size_t max_body;    /* larger response bodies fail with -EMSGSIZE; 0 = default */
};

/* Counters since fl_upstream_new. */
struct fl_upstream_stats {
	uint64_t requests;	/* accepted by fl_upstream_get */
	uint64_t responses;	/* callbacks with an HTTP status (any status) */
	uint64_t connects;	/* connections opened (successfully connected) */
	uint64_t reused;	/* requests sent on an already used connection */
	uint64_t timeouts;	/* callbacks with -ETIMEDOUT */
	uint64_t conn_errors;	/* callbacks with a connect / reset / protocol error */
	uint64_t busy;		/* requests refused with -EBUSY (FIFO full) */
	uint64_t queued;	/* requests that waited in the FIFO */
	uint64_t stale_retries; /* requests re-sent after a reused connection closed */
	unsigned open;		/* connections connecting or connected now */
	unsigned in_flight;	/* requests on a connection now */
	unsigned waiting;	/* requests in the FIFO now */
};

/* The outcome of one request: status is the HTTP status (100..599), or a
 * negative errno: -ECONNREFUSED (nothing listens), -ECONNRESET (the
 * connection ended before a complete response), -ETIMEDOUT, -EPROTO (not
 * HTTP), -EMSGSIZE (body over max_body), -ECANCELED (fl_upstream_close), or
 * another connect/write error.  body/len: the response body, borrowed,
 * valid only during the callback (NULL/0 on errors). */
typedef void (*fl_upstream_cb)(int status, const char *body, size_t len, void *ctx);

/* Validates opts and creates the pool (no connection is opened yet).
 * Returns 0 and sets *out; -EINVAL naming the bad field, or -ENOMEM.
 * Release with fl_upstream_close. */
int fl_upstream_new(struct fl_upstream **out, uv_loop_t *loop, const struct fl_upstream_opts *opts,
		    struct rs_err *err) __attribute__((warn_unused_result));

/* Sends "GET path HTTP/1.1" with a Host header.  path (with its query) is
 * copied; it must start with '/', be shorter than FL_UPSTREAM_PATH_MAX and
 * hold no control characters or spaces.  timeout_ns > 0.
 * Returns 0 when accepted: cb(ctx) is then called exactly once, later, from
 * the loop (never from inside this call).  Otherwise returns, and cb is
 * never called: -EBUSY when every connection is busy and the FIFO is full;
 * -EINVAL for a bad path or timeout; -ESHUTDOWN after fl_upstream_close.
 * The callback may call fl_upstream_get and fl_upstream_close. */
int fl_upstream_get(struct fl_upstream *u, const char *path, uint64_t timeout_ns, fl_upstream_cb cb,
		    void *ctx) __attribute__((warn_unused_result));

/* Counters; borrowed, updated in place, valid until the close completes. */
const struct fl_upstream_stats *fl_upstream_stats(const struct fl_upstream *u);

/* Fails every request not finished yet with -ECANCELED (their callbacks
 * run inside this call), closes every connection, and frees the pool once
 * the handles have closed; then close_cb(ctx) runs (close_cb may be NULL).
 * Run the loop until then.  Accepts NULL; a second call does nothing. */
void fl_upstream_close(struct fl_upstream *u, void (*close_cb)(void *ctx), void *ctx);

#endif
