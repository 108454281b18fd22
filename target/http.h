/* The reference target's HTTP/1.1 server, on one libuv loop.
 *
 * Requests are parsed with Debian's http-parser (the one wrk uses).  Each
 * connection parses one request at a time: when a request is complete the
 * parser pauses, the application's handler is called, and the connection
 * neither parses nor reads further requests until that request has been
 * answered with fl_http_respond and the answer has been written (or handed
 * to the kernel).  So pipelined requests are answered in order, and an
 * asynchronous handler holds exactly one request per connection.
 *
 * Connections are keep-alive by default (HTTP/1.1); "Connection: close" is
 * honoured; HTTP/1.0 closes unless it asks for keep-alive.  Limits, fixed:
 *   - request line + header lines over FL_HTTP_MAX_HEADER_BYTES, or more
 *     than FL_HTTP_MAX_HEADERS header lines: 431, then the connection closes;
 *   - a body (Content-Length or chunked) over FL_HTTP_MAX_BODY: 413, then
 *     the connection closes (refused as soon as Content-Length is seen);
 *   - a malformed request: 400, then the connection closes.
 * Errors are local to their connection; the server keeps serving others.
 * Closing after an error or "Connection: close" is graceful: the answer is
 * written, the write side shut down, and what the client still sends is
 * read and discarded for up to FL_HTTP_LINGER_MS, so that the client reads
 * the answer instead of a reset.
 *
 * Write path: an answer is formatted into a buffer owned by the connection
 * (two of them, reused for every request; answers to pipelined requests
 * that are handled synchronously are batched and written together), tried
 * with uv_try_write first and handed to uv_write for what the kernel did not
 * take.  Nothing is allocated per request unless an answer is larger than
 * the buffers have grown to so far.
 *
 * SIGPIPE: writes go through write(2), so a program using this server must
 * ignore SIGPIPE (signal(SIGPIPE, SIG_IGN)); a client that went away then
 * shows up as EPIPE, which closes that connection.
 *
 * Threads: one loop.  Every function here, and every handler call, runs on
 * the loop's thread.
 */
#ifndef FAULTLINE_TARGET_HTTP_H
#define FAULTLINE_TARGET_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "resilience/err.h"

#define FL_HTTP_MAX_HEADER_BYTES 8192	    /* request line and header lines, with CRLFs */
#define FL_HTTP_MAX_HEADERS	 64	    /* header lines per request */
#define FL_HTTP_MAX_BODY	 (1u << 20) /* request body bytes */
#define FL_HTTP_LINGER_MS	 1000	    /* discard what a closed client still sends */

struct fl_http_server;
struct fl_http_conn;

/* One header line as received: name and value NUL-terminated (value
 * without surrounding whitespace). */
struct fl_http_header {
	const char *name;
	const char *value;
	size_t name_len;
	size_t value_len;
};

/* A complete request, handed to the handler.  Every pointer below points
 * into the connection's own buffers and stays valid, unchanged, until
 * fl_http_respond(req, ...) returns, even when the client disconnects
 * first or the server is closed first (see fl_http_respond).  The handler
 * must not write to any field except `user`. */
struct fl_http_req {
	int method;		/* enum http_method from <http_parser.h> (HTTP_GET...) */
	const char *method_str; /* "GET", "POST"... (static) */
	const char *path;	/* "/item/42": target up to '?' or '#', NUL-terminated */
	const char *query;	/* "a=1&b=2" after '?' (without it), "" when none */
	size_t path_len;
	size_t query_len;
	const char *idempotency_key; /* Idempotency-Key value, NULL when absent */
	size_t idempotency_key_len;
	const char *body; /* body bytes (chunked bodies de-chunked), NULL when none */
	size_t body_len;
	const struct fl_http_header *headers; /* every header line, in order */
	size_t nheaders;
	unsigned short http_major, http_minor;
	bool keep_alive;	   /* the connection stays open after the answer */
	uint64_t received_ns;	   /* uv_hrtime() when the request was complete */
	void *user;		   /* free for the handler (e.g. its per-request state) */
	struct fl_http_conn *conn; /* private */
};

/* The application: called once per complete request.  It may call
 * fl_http_respond before returning (synchronous answer) or later from any
 * callback on the same loop (asynchronous answer: after an io_uring read,
 * an upstream call, a timer).  It must answer every request exactly once,
 * also after the client left or the server was closed: the request's
 * memory (the connection) is released only by that answer. */
typedef void (*fl_http_handler)(struct fl_http_req *req, void *ctx);

struct fl_http_server_opts {
	fl_http_handler on_request; /* required */
	void *ctx;		    /* passed to on_request; borrowed */
	int backlog;		    /* listen backlog; 0 = 511 */
};

/* Counters since fl_http_server_new.  `open` and `pending` are gauges. */
struct fl_http_stats {
	uint64_t accepted;	   /* connections accepted */
	uint64_t open;		   /* connections open now */
	uint64_t requests;	   /* complete requests handed to the handler */
	uint64_t responses;	   /* answers written or queued for writing */
	uint64_t dropped;	   /* answers dropped because the client or server closed first */
	uint64_t pending;	   /* requests handed to the handler and not answered yet */
	uint64_t bad_request;	   /* 400: malformed requests */
	uint64_t header_too_large; /* 431 */
	uint64_t body_too_large;   /* 413 */
};

/* Validates opts and creates a server on loop (not listening yet).
 * Returns 0 and sets *out, -EINVAL (no handler) or -ENOMEM with a message.
 * Release with fl_http_server_close. */
int fl_http_server_new(struct fl_http_server **out, uv_loop_t *loop,
		       const struct fl_http_server_opts *opts, struct rs_err *err)
    __attribute__((warn_unused_result));

/* Binds host:port and listens.  host is an IPv4 or IPv6 literal or
 * "localhost" (127.0.0.1); port 0 picks a free port (fl_http_server_port
 * tells which).  Returns 0, or -EINVAL (bad host/port), or the bind/listen
 * error (-EADDRINUSE, -EACCES...) with a message naming host:port. */
int fl_http_server_listen(struct fl_http_server *s, const char *host, int port, struct rs_err *err)
    __attribute__((warn_unused_result));

/* The port the server listens on, or a negative errno when not listening. */
int fl_http_server_port(const struct fl_http_server *s);

/* Counters; borrowed, updated in place, valid until the close completes. */
const struct fl_http_stats *fl_http_server_stats(const struct fl_http_server *s);

/* Answers req: writes "HTTP/1.1 <status> <reason>", Content-Type (omitted
 * when content_type is NULL), Content-Length, "Connection: close" when the
 * connection will close ("Connection: keep-alive" for a keep-alive HTTP/1.0
 * client), extra_headers verbatim (NULL, or complete lines each ending in
 * "\r\n", e.g. "Retry-After: 1\r\n"), and len bytes of body (omitted for
 * HEAD, 204 and 304; no Content-Length for 204).  status must be a final
 * status, 200..599.  body and extra_headers are copied before this returns.
 *
 * After this call the request and everything it points to is gone; the
 * connection resumes parsing the next (pipelined) request once the answer
 * is written.
 *
 * If the client disconnected, or the server was closed, before the answer,
 * the request stayed valid until now and the answer is dropped; this still
 * returns 0 and releases the request.  (A connection is not read while its
 * request waits, so a client that left is usually noticed only here: the
 * write fails or the peer's kernel discards it, and the connection closes.
 * `dropped` counts the answers to connections already closed: after
 * fl_http_server_close, or a write or read error on a pipelined batch.)
 * Returns 0 (req released); -EINVAL for a status outside 200..599 (req is
 * NOT released: answer it again with a valid status); -ENOMEM when the
 * answer does not fit in memory (the connection is closed without an
 * answer, req released).  Answering one request twice is a bug: the
 * request may already be freed. */
int fl_http_respond(struct fl_http_req *req, int status, const char *content_type,
		    const char *extra_headers, const void *body, size_t len);

/* Looks up a header of req by name, case-insensitively; returns its
 * NUL-terminated value (borrowed like the request) and sets *len (may be
 * NULL), or NULL when absent.  The first of repeated headers wins. */
const char *fl_http_req_header(const struct fl_http_req *req, const char *name, size_t *len);

/* Copies the value of query parameter `name` of q ("a=1&b=2", qlen bytes,
 * as in fl_http_req.query) into out, NUL-terminated, without decoding.
 * Returns 0; -ENOENT when absent; -E2BIG when the value does not fit in
 * outlen bytes with its NUL (out unchanged). */
int fl_http_query_get(const char *q, size_t qlen, const char *name, char *out, size_t outlen);

/* Parses the id segment of a path such as /item/{id}: n decimal digits,
 * 1..2^53, no sign, no leading zero.  Returns 0 and sets *id; -EINVAL. */
int fl_http_path_id(const char *s, size_t n, uint64_t *id);

/* The reason phrase for a status ("OK", "Not Found"...; "Unknown" for
 * others).  Static. */
const char *fl_http_reason(int status);

/* Stops listening and closes every connection at once (no lingering).
 * Requests still unanswered stay valid until their handler answers them
 * (the answers are dropped).  When the listener and every connection
 * handle have closed and every request has been answered, the server's
 * memory is freed and close_cb(ctx) is called (close_cb may be NULL); run
 * the loop until then.  Accepts NULL; a second call does nothing. */
void fl_http_server_close(struct fl_http_server *s, void (*close_cb)(void *ctx), void *ctx);

#endif
