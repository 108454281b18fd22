/* faultline-target's service role: see service.h.
 *
 * Every request that cannot be answered at once (a cache miss, a POST)
 * takes an `op` from a pool allocated at start (request.max_in_flight of
 * them; when none is free the request gets 503), so the steady state
 * allocates nothing but the miss path's composed answer.  An op that leads
 * a fetch goes through these states, each owing exactly one callback:
 *   reading    io_uring read of the item file
 *   queued     waiting for a bulkhead slot (rs_bulkhead waiter)
 *   calling    a dependency request (fl_upstream)
 *   backoff    a retry timer
 * and every breaker admission (rs_breaker_allow) is followed by exactly one
 * rs_breaker_record, every bulkhead slot by one rs_bulkhead_release.
 */
#include "target/service.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#include <http_parser.h>

#include "resilience/breaker.h"
#include "resilience/budget.h"
#include "resilience/bulkhead.h"
#include "resilience/clock.h"
#include "resilience/coalesce.h"
#include "resilience/detector.h"
#include "resilience/hist.h"
#include "resilience/idem.h"
#include "resilience/retry.h"
#include "resilience/shed.h"
#include "target/cache.h"
#include "target/http.h"
#include "target/metrics.h"
#include "target/upstream.h"
#include "target/uring.h"

#define KEY_MAX	    32 /* "item/" + 16 digits */
#define HEAD_ROOM   64 /* "item {id} stock {n}\n" before the file's bytes */
#define ITEM_PREFIX "item/"

/* Why a fetch attempt failed; passed to the retry policy as its `error`. */
enum fail {
	FAIL_NONE = 0,
	FAIL_TIMEOUT,	    /* the attempt timed out (retryable) */
	FAIL_CONN,	    /* connect error, reset (retryable) */
	FAIL_STATUS_5XX,    /* the dependency answered 5xx (retryable) */
	FAIL_STATUS,	    /* another status or a bad body */
	FAIL_DEADLINE,	    /* the request's deadline passed */
	FAIL_BREAKER,	    /* the breaker refused the call */
	FAIL_BULKHEAD,	    /* the bulkhead queue was full */
	FAIL_BULKHEAD_WAIT, /* waited max_wait for a bulkhead slot */
	FAIL_POOL,	    /* the connection pool refused (its queue was full) */
	FAIL_CLOSING,	    /* the service is shutting down */
};

enum op_kind { OP_FREE = 0, OP_GET, OP_POST };

struct op {
	struct fl_service *s;
	struct op *next_free;
	enum op_kind kind;
	struct fl_http_req *req; /* NULL once answered */
	uint64_t id;
	char key[KEY_MAX];
	size_t keylen;
	uint64_t start_ns;

	struct rs_coalesce_waiter cw;
	bool leader;	/* fetches (else it waits for a leader) */
	bool coalesced; /* the leader is registered in the coalescer */

	/* the fetch */
	char *buf; /* HEAD_ROOM + the file's bytes; owned */
	size_t flen;
	uint32_t attempt;
	uint64_t deadline_ns;
	uint64_t attempt_start_ns;
	uint64_t prev_backoff_ns;
	bool reading, queued, calling, backoff;
	bool admitted; /* a breaker admission awaits its record */
	bool slot;     /* holds a bulkhead slot */
	struct rs_bulkhead_waiter bw;
	uv_timer_t timer;
};

struct fl_service {
	uv_loop_t *loop;
	struct rs_control *control; /* borrowed */
	const struct rs_control_block *block;
	uint64_t start_ns;

	/* the configuration the hot paths read */
	char data_dir[FL_TARGET_PATH_MAX];
	uint64_t ttl_ns, attempt_timeout_ns, deadline_ns, max_item_bytes, key_max;
	uint64_t shed_queue_limit, shed_latency_target_ns;
	bool shed_cpu;
	bool feed_risk; /* breaker.emergency_threshold > 0: the detector feeds its risk */
	bool d_breaker, d_budget, d_jitter, d_shed, d_detector, d_coalesce;

	struct fl_http_server *http, *admin;
	const struct fl_http_stats *http_stats, *admin_stats;
	struct fl_upstream *up;
	struct fl_uring *ring;
	struct fl_cache *cache;

	struct rs_breaker *breaker;
	struct rs_budget *budget;
	struct rs_retry *retry;
	struct rs_bulkhead *bulkhead;
	struct rs_shed *shed;
	struct rs_coalesce *coalesce;
	struct rs_idem *idem;
	struct rs_detector *trigger_det, *multi_det;
	struct rs_hist *latency, *dep_latency, *tick_latency;

	struct op *ops;
	uint32_t nops, ntimers; /* ntimers: op timers initialised */
	struct op *free_ops;

	uv_timer_t tick, bh_timer;
	bool tick_init, bh_init;
	uint64_t tick_period_ns;

	/* the current period, for the detectors */
	struct {
		uint64_t at_ns;
		uint64_t arrivals, ok, errors, answered;
		uint64_t calls, sent;		     /* fetches begun, attempts sent */
		uint64_t attempts, attempt_failures; /* attempts settled */
		uint64_t hits, misses;		     /* cache totals at the period's start */
		double cpu_s;			     /* process CPU at the period's start */
		uint64_t last_p99_ns;
	} per;
	double dep_error_rate; /* attempts failed / made, last period */
	struct rs_detector_sample sample;
	bool have_sample;

	struct fl_requests req;
	struct fl_service_counters c;
	struct fl_textbuf tb;

	bool closing;
	int closes;
	void (*close_cb)(void *ctx);
	void *close_ctx;
};

static void attempt_begin(struct op *op);
static void attempt_failed(struct op *op, enum fail why);
static void fetch_done(struct op *op, int status, const char *body, size_t len);

/* ---- small helpers ---------------------------------------------------------------- */

static uint64_t ms_ceil(uint64_t ns)
{
	return (ns + RS_NS_PER_MS - 1) / RS_NS_PER_MS;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void respond(struct fl_service *s, struct fl_http_req *req, enum fl_route route, int status,
		    const char *ctype, const char *extra, const void *body, size_t len)
{
	fl_requests_count(&s->req, route, status);
	if (fl_http_respond(req, status, ctype, extra, body, len) == -EINVAL)
		(void)fl_http_respond(req, 500, NULL, NULL, NULL, 0);
}

static void respond_text(struct fl_service *s, struct fl_http_req *req, enum fl_route route,
			 int status, const char *text)
{
	respond(s, req, route, status, "text/plain", status == 503 ? "Retry-After: 1\r\n" : NULL,
		text, strlen(text));
}

static void respond_json(struct fl_service *s, struct fl_http_req *req, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void respond_json(struct fl_service *s, struct fl_http_req *req, const char *fmt, ...)
{
	char body[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(body))
		n = 0;
	respond(s, req, FL_ROUTE_ADMIN, 200, "application/json", NULL, body, (size_t)n);
}

/* Answers a GET /item request and accounts for it: every outcome lands in
 * the latency histograms and the period's counters. */
static void answer_get(struct fl_service *s, struct fl_http_req *req, int status, const char *body,
		       size_t len)
{
	uint64_t lat = uv_hrtime() - req->received_ns;

	rs_hist_record(s->latency, lat);
	rs_hist_record(s->tick_latency, lat);
	s->per.answered++;
	if (status < 300)
		s->per.ok++;
	else if (status >= 500)
		s->per.errors++;
	respond(s, req, FL_ROUTE_ITEM_GET, status, "text/plain",
		status == 503 ? "Retry-After: 1\r\n" : NULL, body, len);
}

/* ---- the op pool ------------------------------------------------------------------ */

static struct op *op_get(struct fl_service *s, enum op_kind kind, struct fl_http_req *req,
			 uint64_t id)
{
	struct op *op = s->free_ops;

	if (!op)
		return NULL;
	s->free_ops = op->next_free;
	op->next_free = NULL;
	op->kind = kind;
	op->req = req;
	op->id = id;
	op->keylen =
	    (size_t)snprintf(op->key, sizeof(op->key), ITEM_PREFIX "%llu", (unsigned long long)id);
	op->start_ns = req->received_ns;
	op->leader = op->coalesced = false;
	op->buf = NULL;
	op->flen = 0;
	op->attempt = 0;
	op->prev_backoff_ns = 0;
	op->reading = op->queued = op->calling = op->backoff = false;
	op->admitted = op->slot = false;
	s->c.pending++;
	return op;
}

static void op_put(struct op *op)
{
	struct fl_service *s = op->s;

	free(op->buf);
	op->buf = NULL;
	op->kind = OP_FREE;
	op->req = NULL;
	op->next_free = s->free_ops;
	s->free_ops = op;
	s->c.pending--;
}

/* ---- the fetch: file, breaker, bulkhead, dependency, retries ------------------------ */

static bool retryable(void *ctx, int error)
{
	(void)ctx;
	return error == FAIL_TIMEOUT || error == FAIL_CONN || error == FAIL_STATUS_5XX;
}

static int fail_status(enum fail why)
{
	switch (why) {
	case FAIL_TIMEOUT:
	case FAIL_DEADLINE:
		return 504;
	case FAIL_CONN:
	case FAIL_STATUS_5XX:
	case FAIL_STATUS:
		return 502;
	default:
		return 503;
	}
}

static const char *fail_text(enum fail why)
{
	switch (why) {
	case FAIL_TIMEOUT:
		return "dependency: timed out\n";
	case FAIL_CONN:
		return "dependency: connection failed\n";
	case FAIL_STATUS_5XX:
		return "dependency: server error\n";
	case FAIL_STATUS:
		return "dependency: bad answer\n";
	case FAIL_DEADLINE:
		return "dependency: request deadline passed\n";
	case FAIL_BREAKER:
		return "dependency: circuit breaker open\n";
	case FAIL_BULKHEAD:
		return "dependency: bulkhead full\n";
	case FAIL_BULKHEAD_WAIT:
		return "dependency: bulkhead wait timed out\n";
	case FAIL_POOL:
		return "dependency: connection pool full\n";
	case FAIL_CLOSING:
		return "service: shutting down\n";
	default:
		return "dependency: failed\n";
	}
}

static void on_bh_timer(uv_timer_t *t);

static void rearm_bulkhead(struct fl_service *s)
{
	uint64_t next = rs_bulkhead_next_deadline(s->bulkhead), now = uv_hrtime();

	if (!s->bh_init || s->closing)
		return;
	if (next == UINT64_MAX) {
		uv_timer_stop(&s->bh_timer);
		return;
	}
	uv_timer_start(&s->bh_timer, on_bh_timer, next <= now ? 0 : ms_ceil(next - now), 0);
}

static void on_bh_timer(uv_timer_t *t)
{
	struct fl_service *s = t->data;

	rs_bulkhead_expire(s->bulkhead, uv_hrtime());
	rearm_bulkhead(s);
}

/* Records the attempt's outcome in the breaker and the budget and gives
 * the bulkhead slot back (which may hand it to a waiting op at once). */
static void settle(struct op *op, bool failure, uint64_t now)
{
	struct fl_service *s = op->s;

	if (op->admitted) {
		op->admitted = false;
		rs_breaker_record(s->breaker, failure,
				  now > op->attempt_start_ns ? now - op->attempt_start_ns : 0, now);
	}
	if (s->budget)
		rs_budget_record_outcome(s->budget, !failure, now);
	s->per.attempts++;
	if (failure)
		s->per.attempt_failures++;
	if (op->slot) {
		op->slot = false;
		if (rs_bulkhead_release(s->bulkhead, now) < 0)
			fprintf(stderr, "faultline-target: bulkhead release without a slot\n");
		rearm_bulkhead(s);
	}
}

static void on_dep(int status, const char *body, size_t len, void *ctx)
{
	struct op *op = ctx;
	struct fl_service *s = op->s;
	uint64_t now = uv_hrtime(), stock = 0;
	enum fail why = FAIL_NONE;
	size_t i = 0;
	int hl;

	op->calling = false;
	rs_hist_record(s->dep_latency, now - op->attempt_start_ns);
	if (status == -ECANCELED) {
		why = FAIL_CLOSING;
	} else if (status == -ETIMEDOUT) {
		s->c.dep_timeouts++;
		why = FAIL_TIMEOUT;
	} else if (status < 0) {
		s->c.dep_errors++;
		why = FAIL_CONN;
	} else if (status != 200) {
		s->c.dep_bad_status++;
		why = status >= 500 ? FAIL_STATUS_5XX : FAIL_STATUS;
	} else {
		for (; i < len && i < 12 && body[i] >= '0' && body[i] <= '9'; i++)
			stock = stock * 10 + (uint64_t)(body[i] - '0');
		if (i == 0 || (i < len && !(body[i] == '\n' && i + 1 == len))) {
			s->c.dep_bad_status++;
			why = FAIL_STATUS;
		}
	}
	if (why != FAIL_NONE) {
		attempt_failed(op, why);
		return;
	}
	s->c.dep_ok++;
	settle(op, false, now);
	hl = snprintf(op->buf, HEAD_ROOM, "item %llu stock %llu\n", (unsigned long long)op->id,
		      (unsigned long long)stock);
	if (hl <= 0 || hl >= HEAD_ROOM) { /* cannot happen: <= 41 bytes */
		fetch_done(op, 500, "answer too long\n", 16);
		return;
	}
	memmove(op->buf + HEAD_ROOM - hl, op->buf, (size_t)hl);
	{
		const char *ans = op->buf + HEAD_ROOM - hl;
		size_t alen = (size_t)hl + op->flen;

		if (fl_cache_put(s->cache, op->key, op->keylen, ans, alen, s->ttl_ns, now) < 0) {
			/* -ENOMEM / -E2BIG: the answer is still good, just not cached */
		}
		fetch_done(op, 200, ans, alen);
	}
}

/* Holds a bulkhead slot: sends the attempt. */
static void send_attempt(struct op *op)
{
	struct fl_service *s = op->s;
	uint64_t now = uv_hrtime(), timeout;
	char path[80];
	int rc;

	if (s->closing) {
		attempt_failed(op, FAIL_CLOSING);
		return;
	}
	if (now >= op->deadline_ns) {
		attempt_failed(op, FAIL_DEADLINE);
		return;
	}
	timeout = op->deadline_ns - now;
	if (timeout > s->attempt_timeout_ns)
		timeout = s->attempt_timeout_ns;
	/* The timeout travels with the call, so the dependency can tell work
	 * done for a caller that has given up (wasted). */
	snprintf(path, sizeof(path), "/stock/%llu?timeout_ms=%llu", (unsigned long long)op->id,
		 (unsigned long long)ms_ceil(timeout));
	op->attempt_start_ns = now;
	rc = fl_upstream_get(s->up, path, timeout, on_dep, op);
	if (rc < 0) {
		attempt_failed(op, rc == -EBUSY ? FAIL_POOL : FAIL_CONN);
		return;
	}
	s->c.dep_attempts++;
	s->per.sent++;
	op->calling = true;
}

static void on_bulkhead(struct rs_bulkhead_waiter *w, enum rs_bulkhead_result result)
{
	struct op *op = w->ctx;

	op->queued = false;
	if (result == RS_BULKHEAD_ADMITTED) {
		op->slot = true;
		send_attempt(op);
	} else {
		op->s->c.bulkhead_timed_out++;
		attempt_failed(op, FAIL_BULKHEAD_WAIT);
	}
}

static void attempt_begin(struct op *op)
{
	struct fl_service *s = op->s;
	uint64_t now = uv_hrtime();

	if (s->closing) {
		fetch_done(op, 503, fail_text(FAIL_CLOSING), strlen(fail_text(FAIL_CLOSING)));
		return;
	}
	op->attempt++;
	op->attempt_start_ns = now;
	if (s->d_breaker) {
		if (!rs_breaker_allow(s->breaker, now)) {
			/* Fail fast: a refused call is not an attempt to retry. */
			s->c.breaker_rejected++;
			fetch_done(op, 503, fail_text(FAIL_BREAKER),
				   strlen(fail_text(FAIL_BREAKER)));
			return;
		}
		op->admitted = true;
	}
	rs_bulkhead_waiter_init(&op->bw, on_bulkhead, op);
	switch (rs_bulkhead_try_acquire(s->bulkhead, &op->bw, now)) {
	case RS_BULKHEAD_ADMITTED:
		op->slot = true;
		send_attempt(op);
		break;
	case RS_BULKHEAD_QUEUED:
		op->queued = true;
		rearm_bulkhead(s);
		break;
	default:
		s->c.bulkhead_rejected++;
		attempt_failed(op, FAIL_BULKHEAD);
		break;
	}
}

static void on_backoff(uv_timer_t *t)
{
	struct op *op = t->data;

	op->backoff = false;
	attempt_begin(op);
}

static void attempt_failed(struct op *op, enum fail why)
{
	struct fl_service *s = op->s;
	uint64_t now = uv_hrtime();
	struct rs_retry_decision d;
	struct rs_retry_input in;

	settle(op, true, now);
	if (why == FAIL_CLOSING || s->closing) {
		fetch_done(op, 503, fail_text(FAIL_CLOSING), strlen(fail_text(FAIL_CLOSING)));
		return;
	}
	in = (struct rs_retry_input){
		.attempt = op->attempt,
		.error = why,
		.now_ns = now,
		.deadline_ns = op->deadline_ns,
		.breaker = s->d_breaker ? rs_breaker_state(s->breaker) : RS_BREAKER_CLOSED,
		.metastable = s->d_detector && rs_detector_metastable(s->trigger_det),
		.error_rate = s->dep_error_rate,
		.prev_backoff_ns = op->prev_backoff_ns,
	};
	if (!rs_retry_decide(s->retry, &in, &d)) {
		fetch_done(op, fail_status(why), fail_text(why), strlen(fail_text(why)));
		return;
	}
	op->prev_backoff_ns = d.backoff_ns;
	op->backoff = true;
	s->c.retries++;
	uv_timer_start(&op->timer, on_backoff, ms_ceil(d.delay_ns), 0);
}

static void on_read(int res, const char *data, size_t len, void *ctx)
{
	struct op *op = ctx;
	struct fl_service *s = op->s;

	op->reading = false;
	s->c.file_reads++;
	if (res < 0) {
		s->c.file_read_errors++;
		if (res == -ENOENT)
			fetch_done(op, 404, "no such item\n", 13);
		else if (res == -ECANCELED || s->closing)
			fetch_done(op, 503, fail_text(FAIL_CLOSING),
				   strlen(fail_text(FAIL_CLOSING)));
		else if (res == -EFBIG)
			fetch_done(op, 500, "item file too large\n", 20);
		else
			fetch_done(op, 500, "item file unreadable\n", 21);
		return;
	}
	op->buf = malloc(HEAD_ROOM + len);
	if (!op->buf) {
		fetch_done(op, 500, "out of memory\n", 14);
		return;
	}
	memcpy(op->buf + HEAD_ROOM, data, len);
	op->flen = len;
	s->c.dep_calls++;
	s->per.calls++;
	if (s->budget)
		rs_budget_record_request(s->budget, uv_hrtime());
	attempt_begin(op);
}

static void fetch_start(struct op *op)
{
	struct fl_service *s = op->s;
	char path[FL_TARGET_PATH_MAX + 40];
	int rc;

	op->deadline_ns = op->start_ns + s->deadline_ns;
	snprintf(path, sizeof(path), "%s/item-%llu", s->data_dir, (unsigned long long)op->id);
	rc = fl_uring_read_file(s->ring, path, s->max_item_bytes, on_read, op);
	if (rc < 0) {
		s->c.file_read_errors++;
		fetch_done(op, rc == -ESHUTDOWN ? 503 : 500, "item file read failed\n", 22);
		return;
	}
	op->reading = true;
}

/* A coalesced request gets the leader's answer. */
static void on_coalesced(struct rs_coalesce_waiter *w, int status, const void *result, size_t len)
{
	struct op *op = w->data;
	struct fl_http_req *req = op->req;

	op->req = NULL;
	answer_get(op->s, req, status, result, len);
	if (!op->leader)
		op_put(op);
}

/* The fetch is over: answer the leader and everyone who joined it. */
static void fetch_done(struct op *op, int status, const char *body, size_t len)
{
	struct fl_service *s = op->s;

	if (op->coalesced) {
		if (rs_coalesce_finish(s->coalesce, op->key, op->keylen, status, body, len) < 0)
			fprintf(stderr, "faultline-target: coalesce finish without its key\n");
	} else {
		struct fl_http_req *req = op->req;

		op->req = NULL;
		answer_get(s, req, status, body, len);
	}
	op_put(op);
}

/* ---- routes ----------------------------------------------------------------------- */

static enum rs_shed_class priority(const struct fl_http_req *req)
{
	const char *p = fl_http_req_header(req, "X-Priority", NULL);

	if (!p)
		return RS_SHED_MEDIUM;
	if (strcasecmp(p, "critical") == 0)
		return RS_SHED_CRITICAL;
	if (strcasecmp(p, "high") == 0)
		return RS_SHED_HIGH;
	if (strcasecmp(p, "low") == 0)
		return RS_SHED_LOW;
	return RS_SHED_MEDIUM;
}

static void item_get(struct fl_service *s, struct fl_http_req *req, uint64_t id)
{
	const void *val;
	size_t len;
	uint64_t now = uv_hrtime();
	struct op *op;
	int rc;

	s->c.item_arrivals++;
	s->per.arrivals++;
	if (s->shed && !rs_shed_admit(s->shed, priority(req), now)) {
		s->c.shed++;
		answer_get(s, req, 503, "shed\n", 5);
		return;
	}
	/* The key is the path without its '/': "item/42". */
	if (fl_cache_get(s->cache, req->path + 1, req->path_len - 1, now, &val, &len)) {
		answer_get(s, req, 200, val, len);
		return;
	}
	op = op_get(s, OP_GET, req, id);
	if (!op) {
		s->c.overloaded++;
		answer_get(s, req, 503, "overloaded\n", 11);
		return;
	}
	rs_coalesce_waiter_init(&op->cw, on_coalesced, op);
	rc = s->coalesce ? rs_coalesce_begin(s->coalesce, op->key, op->keylen, &op->cw) : -ENOSPC;
	if (rc == RS_COALESCE_JOINED)
		return;
	op->leader = true;
	op->coalesced = rc == RS_COALESCE_LEADER;
	if (rc < 0 && rc != -ENOSPC) {
		fetch_done(op, 500, "coalesce failed\n", 16);
		return;
	}
	fetch_start(op);
}

static void on_write(int res, void *ctx)
{
	struct op *op = ctx;
	struct fl_service *s = op->s;
	struct fl_http_req *req = op->req;
	char body[96];
	int n;

	op->reading = false;
	op->req = NULL;
	if (res < 0) {
		s->c.file_write_errors++;
		if (rs_idem_abort(s->idem, req->idempotency_key, req->idempotency_key_len) < 0)
			fprintf(stderr, "faultline-target: idempotency abort without its key\n");
		if (res == -ECANCELED || s->closing)
			respond_text(s, req, FL_ROUTE_ITEM_POST, 503, "service: shutting down\n");
		else
			respond_text(s, req, FL_ROUTE_ITEM_POST, 500, "item file write failed\n");
		op_put(op);
		return;
	}
	s->c.file_writes++;
	(void)fl_cache_delete(s->cache, op->key, op->keylen);
	n = snprintf(body, sizeof(body), "stored item %llu (%zu bytes)\n",
		     (unsigned long long)op->id, req->body_len);
	if (rs_idem_complete(s->idem, req->idempotency_key, req->idempotency_key_len, 201, body,
			     (size_t)n, uv_hrtime()) < 0)
		fprintf(stderr, "faultline-target: idempotency complete failed\n");
	respond(s, req, FL_ROUTE_ITEM_POST, 201, "text/plain", NULL, body, (size_t)n);
	op_put(op);
}

static void item_post(struct fl_service *s, struct fl_http_req *req, uint64_t id)
{
	struct rs_idem_result dup;
	char path[FL_TARGET_PATH_MAX + 40];
	struct op *op;
	int rc;

	if (!req->idempotency_key || req->idempotency_key_len == 0) {
		respond_text(s, req, FL_ROUTE_ITEM_POST, 400, "Idempotency-Key header required\n");
		return;
	}
	if (req->idempotency_key_len > s->key_max) {
		respond_text(s, req, FL_ROUTE_ITEM_POST, 400, "Idempotency-Key too long\n");
		return;
	}
	if (s->shed && !rs_shed_admit(s->shed, RS_SHED_HIGH, uv_hrtime())) {
		s->c.shed++;
		respond_text(s, req, FL_ROUTE_ITEM_POST, 503, "shed\n");
		return;
	}
	rc = rs_idem_check(s->idem, req->idempotency_key, req->idempotency_key_len, uv_hrtime(),
			   &dup);
	if (rc == RS_IDEM_DUPLICATE) {
		s->c.idem_duplicates++;
		respond(s, req, FL_ROUTE_ITEM_POST, dup.status, "text/plain",
			"Idempotent-Replayed: true\r\n", dup.data, dup.len);
		return;
	}
	if (rc == RS_IDEM_IN_PROGRESS) {
		respond_text(s, req, FL_ROUTE_ITEM_POST, 409, "same Idempotency-Key in progress\n");
		return;
	}
	if (rc < 0) {
		respond_text(s, req, FL_ROUTE_ITEM_POST, 503, "idempotency table full\n");
		return;
	}
	op = op_get(s, OP_POST, req, id);
	if (!op) {
		s->c.overloaded++;
		if (rs_idem_abort(s->idem, req->idempotency_key, req->idempotency_key_len) < 0)
			fprintf(stderr, "faultline-target: idempotency abort without its key\n");
		respond_text(s, req, FL_ROUTE_ITEM_POST, 503, "overloaded\n");
		return;
	}
	snprintf(path, sizeof(path), "%s/item-%llu", s->data_dir, (unsigned long long)id);
	rc = fl_uring_write_file(s->ring, path, req->body ? req->body : "", req->body_len, on_write,
				 op);
	if (rc < 0) {
		on_write(rc, op);
		return;
	}
	op->reading = true;
}

static void view(struct fl_service *s, struct fl_service_view *v)
{
	memset(v, 0, sizeof(*v));
	v->start_ns = s->start_ns;
	v->control = s->block;
	v->defense_breaker = s->d_breaker;
	v->defense_budget = s->d_budget;
	v->defense_jitter = s->d_jitter;
	v->defense_shed = s->d_shed;
	v->defense_detector = s->d_detector;
	v->defense_coalesce = s->d_coalesce;
	v->breaker = s->breaker;
	v->budget = s->budget;
	v->retry = s->retry;
	v->shed = s->shed;
	v->bulkhead = s->bulkhead;
	v->coalesce = s->coalesce;
	v->idem = s->idem;
	v->trigger_detector = s->trigger_det;
	v->multi_detector = s->multi_det;
	v->last_sample = s->have_sample ? &s->sample : NULL;
	v->latency = s->latency;
	v->dep_latency = s->dep_latency;
	v->cache = s->cache;
	v->http = s->http_stats;
	v->admin = s->admin_stats;
	v->upstream = fl_upstream_stats(s->up);
	v->uring = fl_uring_stats(s->ring);
	v->requests = &s->req;
	v->counters = &s->c;
}

static bool route_common(struct fl_service *s, struct fl_http_req *req)
{
	struct fl_service_view v;
	enum fl_route route;

	if (strcmp(req->path, "/healthz") == 0)
		route = FL_ROUTE_HEALTHZ;
	else if (strcmp(req->path, "/metrics") == 0)
		route = FL_ROUTE_METRICS;
	else if (strcmp(req->path, "/state") == 0)
		route = FL_ROUTE_STATE;
	else
		return false;
	if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
		respond(s, req, route, 405, "text/plain", "Allow: GET\r\n", "method not allowed\n",
			19);
		return true;
	}
	if (route == FL_ROUTE_HEALTHZ) {
		respond_text(s, req, route, 200, "ok\n");
		return true;
	}
	view(s, &v);
	if (route == FL_ROUTE_METRICS) {
		size_t len;

		if (fl_textbuf_expo(&s->tb, fl_metrics_service, &v, &len) < 0)
			respond_text(s, req, route, 500, "metrics: out of memory\n");
		else
			respond(s, req, route, 200, "text/plain; version=0.0.4; charset=utf-8",
				NULL, s->tb.buf, len);
	} else {
		cJSON *st = fl_state_service(&v);
		char *text = st ? cJSON_PrintUnformatted(st) : NULL;

		if (text)
			respond(s, req, route, 200, "application/json", NULL, text, strlen(text));
		else
			respond_text(s, req, route, 500, "state: out of memory\n");
		free(text);
		cJSON_Delete(st);
	}
	return true;
}

static void on_http(struct fl_http_req *req, void *ctx)
{
	struct fl_service *s = ctx;
	uint64_t id;

	if (s->closing) {
		respond_text(s, req, FL_ROUTE_OTHER, 503, "service: shutting down\n");
		return;
	}
	if (req->path_len > 6 && memcmp(req->path, "/item/", 6) == 0) {
		enum fl_route route =
		    req->method == HTTP_POST ? FL_ROUTE_ITEM_POST : FL_ROUTE_ITEM_GET;

		if (req->method != HTTP_GET && req->method != HTTP_POST)
			respond(s, req, route, 405, "text/plain", "Allow: GET, POST\r\n",
				"method not allowed\n", 19);
		else if (fl_http_path_id(req->path + 6, req->path_len - 6, &id) < 0)
			respond_text(s, req, route, 400, "bad item id\n");
		else if (req->method == HTTP_GET)
			item_get(s, req, id);
		else
			item_post(s, req, id);
		return;
	}
	if (!route_common(s, req))
		respond_text(s, req, FL_ROUTE_OTHER, 404, "not found\n");
}

static void admin_cache(struct fl_service *s, struct fl_http_req *req, const char *what)
{
	const struct fl_cache_stats *cs = fl_cache_stats(s->cache);
	char prefix[KEY_MAX + 1];
	size_t n;
	int rc;

	if (strcmp(what, "") == 0) {
		if (req->method != HTTP_GET)
			goto not_allowed;
		respond_json(s, req,
			     "{\"entries\":%zu,\"bytes\":%zu,\"hits\":%llu,\"misses\":%llu,"
			     "\"expired\":%llu,\"evictions\":%llu,\"flushed\":%llu}",
			     fl_cache_count(s->cache), fl_cache_bytes(s->cache),
			     (unsigned long long)cs->hits, (unsigned long long)cs->misses,
			     (unsigned long long)cs->expired, (unsigned long long)cs->evictions,
			     (unsigned long long)cs->flushed);
		return;
	}
	if (req->method != HTTP_POST)
		goto not_allowed;
	if (strcmp(what, "/flush") == 0) {
		rc =
		    fl_http_query_get(req->query, req->query_len, "prefix", prefix, sizeof(prefix));
		if (rc == -E2BIG) {
			respond_text(s, req, FL_ROUTE_ADMIN, 400, "prefix too long\n");
			return;
		}
		n = rc == 0 ? fl_cache_flush_prefix(s->cache, prefix, strlen(prefix))
			    : fl_cache_flush(s->cache);
		respond_json(s, req, "{\"flushed\":%zu}", n);
	} else if (strcmp(what, "/expire") == 0) {
		/* in_us=N: every entry expires N µs from now (default 0: now). */
		char v[16], *end;
		unsigned long long in_us = 0;

		rc = fl_http_query_get(req->query, req->query_len, "in_us", v, sizeof(v));
		if (rc == 0) {
			errno = 0;
			in_us = strtoull(v, &end, 10);
			if (v[0] < '0' || v[0] > '9' || *end || errno || in_us > 3600000000ull)
				rc = -EINVAL;
		}
		if (rc != 0 && rc != -ENOENT) {
			respond_text(s, req, FL_ROUTE_ADMIN, 400,
				     "in_us must be an integer from 0 to 3600000000\n");
			return;
		}
		/* The counters at the instant of the expiry let the harness tell
		 * lookups before it from those after it. */
		n = fl_cache_expire_all(s->cache, uv_hrtime() + in_us * RS_NS_PER_US);
		respond_json(s, req,
			     "{\"expired\":%zu,\"in_us\":%llu,\"hits\":%llu,\"misses\":%llu}", n,
			     in_us, (unsigned long long)cs->hits, (unsigned long long)cs->misses);
	} else {
		respond_text(s, req, FL_ROUTE_ADMIN, 404, "not found\n");
	}
	return;
not_allowed:
	respond(s, req, FL_ROUTE_ADMIN, 405, "text/plain", NULL, "method not allowed\n", 19);
}

static void admin_trigger(struct fl_service *s, struct fl_http_req *req)
{
	char v[8];

	if (req->method == HTTP_POST) {
		if (fl_http_query_get(req->query, req->query_len, "active", v, sizeof(v)) < 0 ||
		    (strcmp(v, "0") != 0 && strcmp(v, "1") != 0)) {
			respond_text(s, req, FL_ROUTE_ADMIN, 400,
				     "trigger: active=0|1 is required\n");
			return;
		}
		s->c.trigger_active = v[0] == '1';
	} else if (req->method != HTTP_GET) {
		respond(s, req, FL_ROUTE_ADMIN, 405, "text/plain", NULL, "method not allowed\n",
			19);
		return;
	}
	respond_json(s, req, "{\"trigger_active\":%s}", s->c.trigger_active ? "true" : "false");
}

static void on_admin(struct fl_http_req *req, void *ctx)
{
	struct fl_service *s = ctx;

	if (s->closing)
		respond_text(s, req, FL_ROUTE_ADMIN, 503, "service: shutting down\n");
	else if (strncmp(req->path, "/admin/cache", 12) == 0)
		admin_cache(s, req, req->path + 12);
	else if (strcmp(req->path, "/admin/trigger") == 0)
		admin_trigger(s, req);
	else if (!route_common(s, req))
		respond_text(s, req, FL_ROUTE_OTHER, 404, "not found\n");
}

/* ---- the detectors' period ------------------------------------------------------------ */

static void on_tick(uv_timer_t *t)
{
	struct fl_service *s = t->data;
	const struct fl_cache_stats *cs = fl_cache_stats(s->cache);
	struct rs_detector_sample *x = &s->sample;
	uint64_t now = uv_hrtime(), p99 = s->per.last_p99_ns;
	double dt = (double)(now - s->per.at_ns) / 1e9, cpu_now = cpu_seconds(), cpu;
	uint64_t hits = cs->hits - s->per.hits, misses = cs->misses - s->per.misses;

	if (dt <= 0)
		return;
	if (rs_hist_count(s->tick_latency) && rs_hist_quantile(s->tick_latency, 0.99, &p99) == 0)
		s->per.last_p99_ns = p99;
	cpu = (cpu_now - s->per.cpu_s) / dt;
	cpu = cpu < 0 ? 0 : cpu > 1 ? 1 : cpu;
	*x = (struct rs_detector_sample){
		.now_ns = now,
		.latency_ns = p99,
		.error_rate =
		    s->per.answered ? (double)s->per.errors / (double)s->per.answered : NAN,
		.throughput = (double)s->per.answered / dt,
		.offered_load = (double)s->per.arrivals / dt,
		.goodput = (double)s->per.ok / dt,
		.cpu = cpu,
		.memory = NAN,
		.queue_depth = s->c.pending,
		.cache_hit_ratio = hits + misses ? (double)hits / (double)(hits + misses) : NAN,
		.retry_amplification =
		    s->per.calls ? (double)s->per.sent / (double)s->per.calls : NAN,
		.trigger_active = s->c.trigger_active,
	};
	s->have_sample = true;
	(void)rs_detector_update(s->trigger_det, x);
	(void)rs_detector_update(s->multi_det, x);
	if (s->feed_risk && s->d_detector && s->d_breaker &&
	    rs_breaker_risk(s->breaker, rs_detector_metastable(s->trigger_det) ? 1.0 : 0.0, now) <
		0)
		fprintf(stderr, "faultline-target: breaker refused a risk reading\n");
	s->dep_error_rate =
	    s->per.attempts ? (double)s->per.attempt_failures / (double)s->per.attempts : 0;
	if (s->shed) {
		struct rs_shed_load load = {
			.cpu = s->shed_cpu ? cpu : 0,
			.queue_depth = s->c.pending,
			.queue_limit = s->shed_queue_limit,
			.latency_ns = p99,
			.latency_target_ns = s->shed_latency_target_ns,
		};

		/* Only -EINVAL for a cpu reading outside [0, 1], clamped above. */
		if (rs_shed_set_load(s->shed, &load, NULL) < 0)
			fprintf(stderr, "faultline-target: shedder refused its load\n");
	}
	rs_hist_reset(s->tick_latency);
	s->per.at_ns = now;
	s->per.arrivals = s->per.ok = s->per.errors = s->per.answered = 0;
	s->per.calls = s->per.sent = s->per.attempts = s->per.attempt_failures = 0;
	s->per.hits = cs->hits;
	s->per.misses = cs->misses;
	s->per.cpu_s = cpu_now;
}

/* ---- life cycle ------------------------------------------------------------------ */

static void svc_free(struct fl_service *s)
{
	void (*cb)(void *) = s->close_cb;
	void *ctx = s->close_ctx;

	rs_breaker_free(s->breaker);
	rs_retry_free(s->retry);
	rs_budget_free(s->budget);
	rs_bulkhead_free(s->bulkhead);
	rs_shed_free(s->shed);
	rs_coalesce_free(s->coalesce);
	rs_idem_free(s->idem);
	rs_detector_free(s->trigger_det);
	rs_detector_free(s->multi_det);
	rs_hist_free(s->latency);
	rs_hist_free(s->dep_latency);
	rs_hist_free(s->tick_latency);
	fl_cache_free(s->cache);
	fl_textbuf_release(&s->tb);
	free(s->ops);
	free(s);
	if (cb)
		cb(ctx);
}

static void one_closed(void *ctx)
{
	struct fl_service *s = ctx;

	if (--s->closes == 0)
		svc_free(s);
}

static void on_handle_closed(uv_handle_t *h)
{
	one_closed(h->data);
}

static void on_op_timer_closed(uv_handle_t *h)
{
	struct op *op = h->data;

	one_closed(op->s);
}

void fl_service_close(struct fl_service *s, void (*close_cb)(void *ctx), void *ctx)
{
	if (!s || s->closing)
		return;
	s->closing = true;
	s->close_cb = close_cb;
	s->close_ctx = ctx;
	s->closes = 1;
	if (s->http) {
		s->closes++;
		fl_http_server_close(s->http, one_closed, s);
	}
	if (s->admin) {
		s->closes++;
		fl_http_server_close(s->admin, one_closed, s);
	}
	/* Fail what waits on a timer or the bulkhead; the pool and the ring
	 * fail what they hold when they close. */
	for (uint32_t i = 0; i < s->ntimers; i++) {
		struct op *op = &s->ops[i];

		if (op->kind == OP_FREE)
			continue;
		if (op->backoff) {
			uv_timer_stop(&op->timer);
			op->backoff = false;
			fetch_done(op, 503, fail_text(FAIL_CLOSING),
				   strlen(fail_text(FAIL_CLOSING)));
		} else if (op->queued && rs_bulkhead_cancel(s->bulkhead, &op->bw) == 0) {
			op->queued = false;
			attempt_failed(op, FAIL_CLOSING);
		}
	}
	if (s->up) {
		s->closes++;
		fl_upstream_close(s->up, one_closed, s);
	}
	if (s->ring) {
		s->closes++;
		fl_uring_close(s->ring, one_closed, s);
	}
	for (uint32_t i = 0; i < s->ntimers; i++) {
		s->closes++;
		uv_close((uv_handle_t *)&s->ops[i].timer, on_op_timer_closed);
	}
	if (s->tick_init) {
		s->closes++;
		uv_close((uv_handle_t *)&s->tick, on_handle_closed);
	}
	if (s->bh_init) {
		s->closes++;
		uv_close((uv_handle_t *)&s->bh_timer, on_handle_closed);
	}
	one_closed(s);
}

static int make_core(struct fl_service *s, const struct fl_target_config *cfg, struct rs_err *err)
{
	struct rs_err e = { "" };
	uint64_t seed = cfg->seed;
	int rc;

	{
		struct rs_breaker_opts o = cfg->breaker;

		o.name = "dependency";
		o.seed = seed ^ 0xb4ea3e4ull;
		o.control = s->control;
		if (o.failure_rate_threshold == 0 && o.slow_rate_threshold == 0)
			o.window_kind = RS_WINDOW_NONE;
		if ((rc = rs_breaker_new(&s->breaker, &o, &e)) < 0)
			goto fail;
		if (!s->d_breaker &&
		    (rc = rs_breaker_force(s->breaker, RS_FORCE_CLOSED, uv_hrtime())) < 0)
			goto fail;
	}
	if (s->d_budget) {
		struct rs_budget_opts o = cfg->budget;

		o.name = "dependency";
		if ((rc = rs_budget_new(&s->budget, &o, &e)) < 0)
			goto fail;
	}
	{
		struct rs_retry_opts o = cfg->retry;

		o.name = "dependency";
		o.backoff.seed = seed ^ 0xbac0ffull;
		o.backoff.control = s->block;
		if (!s->d_jitter)
			o.backoff.strategy = RS_BACKOFF_NONE;
		o.control = s->block;
		o.budget = s->budget;
		o.retryable = retryable;
		if ((rc = rs_retry_new(&s->retry, &o, &e)) < 0)
			goto fail;
	}
	{
		struct rs_bulkhead_opts o = cfg->bulkhead;

		o.name = "dependency";
		if ((rc = rs_bulkhead_new(&s->bulkhead, &o, &e)) < 0)
			goto fail;
	}
	if (s->d_shed) {
		struct rs_shed_opts o = { .name = "service",
					  .mode = RS_SHED_TIERED,
					  .seed = seed ^ 0x5bedull,
					  .tiers = &cfg->shed.tiers,
					  .mix_window = cfg->shed.mix_window };

		if ((rc = rs_shed_new(&s->shed, &o, &e)) < 0)
			goto fail;
	}
	if (s->d_coalesce) {
		struct rs_coalesce_opts o = { .name = "items",
					      .capacity = cfg->coalesce.capacity,
					      .key_max = KEY_MAX,
					      .seed = seed ^ 0xc0a1ull };

		if ((rc = rs_coalesce_new(&s->coalesce, &o, &e)) < 0)
			goto fail;
	}
	{
		struct rs_idem_opts o = { .name = "items",
					  .capacity = cfg->idempotency.capacity,
					  .key_max = cfg->idempotency.key_max,
					  .result_max = 128,
					  .ttl_ns = cfg->idempotency.ttl_ns,
					  .seed = seed ^ 0x1de4ull };

		if ((rc = rs_idem_new(&s->idem, &o, &e)) < 0)
			goto fail;
	}
	{
		struct rs_detector_opts o = cfg->detector;

		o.name = "service";
		o.form = RS_DETECTOR_TRIGGER_AWARE;
		if ((rc = rs_detector_new(&s->trigger_det, &o, &e)) < 0)
			goto fail;
		o.name = "service_multi";
		o.form = RS_DETECTOR_MULTI_SIGNAL;
		if ((rc = rs_detector_new(&s->multi_det, &o, &e)) < 0)
			goto fail;
	}
	{
		struct rs_hist_opts o = { RS_HIST_LATENCY_OPTS };
		struct rs_hist_opts t = { .lowest_ns = RS_NS_PER_US,
					  .highest_ns = 600 * RS_NS_PER_SEC,
					  .significant_digits = 2 };

		if ((rc = rs_hist_new(&s->latency, &o, &e)) < 0 ||
		    (rc = rs_hist_new(&s->dep_latency, &o, &e)) < 0 ||
		    (rc = rs_hist_new(&s->tick_latency, &t, &e)) < 0)
			goto fail;
	}
	{
		struct fl_cache_opts o = { .max_entries = cfg->cache.capacity,
					   .max_bytes = cfg->cache.max_bytes };

		if ((rc = fl_cache_new(&s->cache, &o, &e)) < 0)
			goto fail;
	}
	return 0;
fail:
	rs__err_set(err, "service: %s", e.msg);
	return rc;
}

int fl_service_new(struct fl_service **out, uv_loop_t *loop, const struct fl_target_config *cfg,
		   struct rs_control *control, struct rs_err *err)
{
	struct fl_http_server_opts so = { .on_request = on_http };
	struct fl_upstream_opts uo = { .host = cfg->dependency.host,
				       .port = cfg->dependency.port,
				       .max_conns = cfg->dependency.connections,
				       .max_queue = cfg->dependency.queue,
				       .max_body = 4096 };
	struct fl_uring_opts ro = { .entries = cfg->uring.entries };
	struct fl_service *s;
	uint64_t period_ms;
	int rc;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return rs__enomem(err, "service");
	s->loop = loop;
	s->control = control;
	s->block = rs_control_block(control);
	s->start_ns = uv_hrtime();
	snprintf(s->data_dir, sizeof(s->data_dir), "%s", cfg->data_dir);
	s->ttl_ns = cfg->cache.ttl_ns;
	s->attempt_timeout_ns = cfg->dependency.timeout_ns;
	s->deadline_ns = cfg->request.deadline_ns;
	s->max_item_bytes = cfg->request.max_item_bytes;
	s->key_max = cfg->idempotency.key_max;
	s->shed_queue_limit = cfg->shed.queue_limit;
	s->shed_latency_target_ns = cfg->shed.latency_target_ns;
	s->shed_cpu = cfg->shed.cpu;
	s->feed_risk = cfg->breaker.emergency_threshold > 0;
	s->d_breaker = cfg->defenses.breaker;
	s->d_budget = cfg->defenses.budget;
	s->d_jitter = cfg->defenses.jitter;
	s->d_shed = cfg->defenses.shed;
	s->d_detector = cfg->defenses.detector;
	s->d_coalesce = cfg->defenses.coalesce;

	if ((rc = make_core(s, cfg, err)) < 0)
		goto fail;
	s->nops = cfg->request.max_in_flight;
	s->ops = calloc(s->nops, sizeof(*s->ops));
	if (!s->ops) {
		rc = rs__enomem(err, "service: request pool");
		goto fail;
	}
	for (uint32_t i = s->nops; i-- > 0;) {
		struct op *op = &s->ops[i];

		op->s = s;
		op->kind = OP_FREE;
		op->next_free = s->free_ops;
		s->free_ops = op;
	}
	s->c.pending = 0;
	for (; s->ntimers < s->nops; s->ntimers++) {
		uv_timer_init(loop, &s->ops[s->ntimers].timer);
		s->ops[s->ntimers].timer.data = &s->ops[s->ntimers];
	}
	if ((rc = fl_uring_new(&s->ring, loop, &ro, err)) < 0)
		goto fail;
	if ((rc = fl_upstream_new(&s->up, loop, &uo, err)) < 0)
		goto fail;

	uv_timer_init(loop, &s->bh_timer);
	s->bh_timer.data = s;
	s->bh_init = true;
	uv_timer_init(loop, &s->tick);
	s->tick.data = s;
	s->tick_init = true;
	s->per.at_ns = uv_hrtime();
	s->per.cpu_s = cpu_seconds();
	period_ms = ms_ceil(cfg->detector.period_ns);
	uv_timer_start(&s->tick, on_tick, period_ms, period_ms);

	so.ctx = s;
	if ((rc = fl_http_server_new(&s->http, loop, &so, err)) < 0)
		goto fail;
	s->http_stats = fl_http_server_stats(s->http);
	so.on_request = on_admin;
	if ((rc = fl_http_server_new(&s->admin, loop, &so, err)) < 0)
		goto fail;
	s->admin_stats = fl_http_server_stats(s->admin);
	if ((rc = fl_http_server_listen(s->http, cfg->host, cfg->port, err)) < 0 ||
	    (rc = fl_http_server_listen(s->admin, "127.0.0.1", cfg->admin_port, err)) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	fl_service_close(s, NULL, NULL);
	return rc;
}

int fl_service_port(const struct fl_service *s)
{
	return fl_http_server_port(s->http);
}

int fl_service_admin_port(const struct fl_service *s)
{
	return fl_http_server_port(s->admin);
}
