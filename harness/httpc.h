/* One HTTP/1.1 client connection of the load generator: a persistent libuv
 * TCP connection that carries one request at a time (no pipelining), with a
 * per-attempt deadline and reconnection after failures.
 *
 * The struct is public and caller-embedded (the load generator keeps an
 * array of them, allocated once); its fields are private.  Requests are
 * written with uv_try_write straight from the caller's buffer (uv_write for
 * a remainder), responses are parsed in place with http-parser
 * (HTTP_RESPONSE) from one read buffer shared by every connection of the
 * loop: bodies are never copied, and nothing allocates per request.
 *
 * Life cycle of an attempt: fl_httpc_send on an idle connection (it connects
 * first when it has no socket); exactly one on_result callback follows,
 * after which the connection is either idle again (fl_httpc_idle) or busy
 * closing / waiting to reconnect, in which case on_idle is called once it
 * can take the next request.  A connection is closed after any failure,
 * after a timeout (a late response could not be told apart from the next
 * one) and when the server does not keep the connection alive.  After a
 * connect error it waits before it may connect again: 10 ms, doubling up
 * to 1 s, reset by a successful connect.
 *
 * Threading: everything runs on the loop given to fl_httpc_init.
 */
#ifndef FAULTLINE_HTTPC_H
#define FAULTLINE_HTTPC_H

#include <stdbool.h>
#include <stdint.h>

#include <http_parser.h>
#include <uv.h>

#include "resilience/err.h"

/* How an attempt failed.  FL_OK: a response with status < 400. */
enum fl_fail_kind {
	FL_OK = -1,
	FL_FAIL_CONNECT = 0, /* connecting failed (refused, unreachable, ...) */
	FL_FAIL_RESET,	     /* the connection broke or closed before the response */
	FL_FAIL_TIMEOUT,     /* no complete response before the attempt's deadline */
	FL_FAIL_5XX,	     /* 5xx, except shed */
	FL_FAIL_4XX,	     /* 4xx, except 429 */
	FL_FAIL_SHED,	     /* 503 with Retry-After, or 429 */
	FL_FAIL_PROTOCOL,    /* the response is not valid HTTP/1.x */
	FL_FAIL_KINDS	     /* count, not a kind */
};

/* "connect", "reset", "timeout", "5xx", "4xx", "shed", "protocol"; "ok" for
 * FL_OK.  Static storage. */
const char *fl_fail_kind_name(enum fl_fail_kind k);

/* Where the attempt ended. */
struct fl_httpc_result {
	enum fl_fail_kind kind;
	int status;	  /* HTTP status, 0 without a response */
	uint64_t done_ns; /* CLOCK_MONOTONIC time of the outcome */
};

struct fl_httpc;

/* Settings shared by all connections of one load generator (borrowed: must
 * outlive them). */
struct fl_httpc_shared {
	uv_loop_t *loop;
	const struct sockaddr *addr; /* where to connect */
	bool head;		     /* requests are HEAD: responses have no body */
	/* Called once per attempt, on the loop, with the connection already in
	 * its next state. */
	void (*on_result)(struct fl_httpc *c, const struct fl_httpc_result *r);
	/* Called when a connection that was not idle after its result (closing,
	 * waiting to reconnect) becomes idle. */
	void (*on_idle)(struct fl_httpc *c);
	/* Called when fl_httpc_close has released the connection's handles. */
	void (*on_closed)(struct fl_httpc *c);
	char *rbuf; /* the read buffer every connection shares, rbuf_len bytes */
	size_t rbuf_len;
};

enum fl_httpc_state {
	FL_HTTPC_DISCONNECTED, /* no socket; send connects */
	FL_HTTPC_CONNECTING,
	FL_HTTPC_CONNECTED,
	FL_HTTPC_CLOSING, /* uv_close under way */
	FL_HTTPC_BACKOFF, /* waiting before reconnecting */
	FL_HTTPC_SHUTDOWN /* fl_httpc_close called */
};

struct fl_httpc {
	/* public: owned by the caller */
	void *data;
	uint32_t id;
	/* private */
	const struct fl_httpc_shared *sh;
	uv_tcp_t tcp;
	uv_connect_t creq;
	uv_write_t wreq;
	uv_timer_t timer;
	http_parser parser;
	enum fl_httpc_state state;
	bool busy;	   /* an attempt is under way */
	bool writing;	   /* a uv_write is pending */
	bool msg_done;	   /* the parser completed a response */
	bool keep_alive;   /* that response allows reuse */
	bool retry_after;  /* that response carries Retry-After */
	bool in_value;	   /* header parsing: last callback was a value */
	bool timer_active; /* the timer runs, due at timer_due_ns */
	bool has_pending;  /* a failure waits to be reported (pending) */
	struct fl_httpc_result pending;
	int8_t ra_match;  /* bytes of "retry-after" matched, -1: no match */
	int handles;	  /* handles open (tcp, timer), for shutdown */
	const char *wbuf; /* the attempt's request bytes (borrowed) */
	size_t wlen;
	uint64_t deadline_ns; /* the attempt's deadline */
	uint64_t timer_due_ns;
	uint64_t reconnect_ns; /* next reconnect backoff */
};

/* Initialises a connection (no socket yet; connects on first send).
 * Returns 0 or a negative libuv error. */
int fl_httpc_init(struct fl_httpc *c, const struct fl_httpc_shared *sh) RS_WUR;

/* True when the connection can take a request now. */
static inline bool fl_httpc_idle(const struct fl_httpc *c)
{
	return !c->busy && (c->state == FL_HTTPC_DISCONNECTED || c->state == FL_HTTPC_CONNECTED);
}

/* Starts an attempt: writes buf[0..len) (borrowed until on_result) and waits
 * for the response until deadline_ns (CLOCK_MONOTONIC).  Requires
 * fl_httpc_idle(c).  on_result is never called before this returns (even a
 * failure to connect or write is reported from a later callback of the
 * loop), so the caller is never re-entered. */
void fl_httpc_send(struct fl_httpc *c, const char *buf, size_t len, uint64_t now_ns,
		   uint64_t deadline_ns);

/* Abandons any attempt (no on_result follows) and closes the handles;
 * on_closed is called once they are released.  Call once. */
void fl_httpc_close(struct fl_httpc *c);

#endif
