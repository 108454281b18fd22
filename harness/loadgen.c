#include "harness/loadgen.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "harness/template.h"
#include "harness/url.h"
#include "resilience/budget.h"
#include "resilience/clock.h"
#include "resilience/control.h"
#include "resilience/retry.h"

#define NONE	       UINT32_MAX
#define RBUF_LEN       (64 * 1024)
#define CL_MAX	       48 /* "Content-Length: <20 digits>\r\n\r\n" */
#define MAX_CONNS      10000
#define DEF_CONNS      10
#define DEF_TIMEOUT    (2 * RS_NS_PER_SEC)
#define DEF_INTERVAL   (100 * RS_NS_PER_MS)
#define DEF_BASE       (10 * RS_NS_PER_MS)
#define DEF_CAP	       RS_NS_PER_SEC
#define DEF_WINDOW     (10 * RS_NS_PER_SEC)
#define DEF_OUTSTAND   16384
#define MAX_OUTSTAND   (1u << 22)
#define DRAIN_MARGIN   (100 * RS_NS_PER_MS)
#define TICK_MIN_NS    (50 * RS_NS_PER_US)
#define WBUF_TOTAL_MAX (256ull << 20)

/* A request: from its first attempt to its final outcome. */
struct req {
	uint64_t seq;	      /* 1, 2, ...: ${seq} and the template seed */
	uint64_t due_ns;      /* the schedule's time (open loop), else first_ns */
	uint64_t first_ns;    /* its first attempt started */
	uint64_t deadline_ns; /* 0: none */
	uint64_t fire_ns;     /* a retry is due (while in the heap) */
	uint64_t prev_backoff_ns;
	uint32_t attempts;
	uint32_t next_free;
};

struct hset {
	struct rs_hist *lat, *unc, *first;
};

enum phase { P_NEW, P_RUNNING, P_DRAINING, P_CLOSING, P_DONE };

struct fl_loadgen {
	uv_loop_t *loop;
	struct fl_loadgen_opts o; /* defaults resolved; string pointers cleared */
	char *url_copy;
	struct fl_url url;
	struct fl_tpl *head; /* request line, headers [, Content-Length, body] */
	struct fl_tpl *body; /* the body when it has variables, else NULL */
	bool random;	     /* some template draws random numbers */
	const char *const_req;
	size_t const_len;
	size_t head_max;
	size_t wmax;
	char *wbufs; /* one wmax buffer per connection */
	char *rbuf;

	struct fl_httpc_shared sh;
	struct fl_httpc *conns;
	uint32_t nconns;
	uint32_t *conn_req;	 /* request slot on each connection, or NONE */
	uint64_t *attempt_start; /* per connection */
	uint32_t *idle;		 /* ring of idle connections */
	bool *in_idle;		 /* per connection: in the ring */
	uint32_t idle_head, nidle;

	struct req *reqs;
	uint32_t nreqs;
	uint32_t free_head;
	uint32_t outstanding;
	uint32_t *heap; /* retries waiting, min-heap on fire_ns */
	uint32_t nheap;
	uint32_t *ready; /* ring: retries due, waiting for a connection */
	uint32_t ready_head, nready;

	struct rs_control_block ctl; /* private: the jitter switch for lockstep */
	struct rs_budget *budget;
	struct rs_retry *retry;
	bool lockstep;

	/* Open loop: the next due request.  A timerfd on the monotonic clock
	 * (watched by uv_poll) rather than a uv_timer, whose millisecond
	 * resolution would send requests up to 1 ms late and add that to the
	 * corrected latency. */
	int tick_fd;
	uv_poll_t tick_poll;
	bool tick_started;
	uv_timer_t retry_timer; /* earliest retry */
	/* Responses free connections during the poll phase; the next requests
	 * go out together at the start of the next loop iteration (wrk writes
	 * in the same rhythm), so the server finds them in one batch instead of
	 * being woken for each. */
	uv_idle_t kick;
	bool kicked;
	uv_timer_t ival_timer; /* interval boundaries */
	uv_timer_t end_timer;  /* end of duration, then of the drain */
	int open_handles;

	enum phase phase;
	uint64_t start_ns;
	uint64_t issued;     /* requests started */
	uint64_t sched_max;  /* requests the bounds allow (UINT64_MAX: no bound) */
	double ns_per_req;   /* open loop */
	uint64_t ival_index; /* intervals completed */

	struct fl_load_stats cur, last, tot;
	struct hset hcur, hlast, htot;
	bool have_last;
};

static void dispatch(struct fl_loadgen *lg, uint64_t now);
static void finish(struct fl_loadgen *lg, uint64_t now);

/* Nothing is left to do: no request outstanding and none still due. */
static bool drained(const struct fl_loadgen *lg)
{
	return lg->outstanding == 0 && (lg->o.rate == 0 || lg->issued >= lg->sched_max);
}

/* ---- small containers (preallocated, bounded) ---- */

/* The ring holds each connection at most once (in_idle).  A connection in
 * it may stop being idle meanwhile (the server closed it: it is closing);
 * idle_peek drops such entries, and on_idle puts the connection back. */
static void idle_push(struct fl_loadgen *lg, struct fl_httpc *c)
{
	if (lg->in_idle[c->id])
		return;
	lg->in_idle[c->id] = true;
	lg->idle[(lg->idle_head + lg->nidle) % lg->nconns] = c->id;
	lg->nidle++;
}

static void idle_drop(struct fl_loadgen *lg)
{
	lg->in_idle[lg->idle[lg->idle_head]] = false;
	lg->idle_head = (lg->idle_head + 1) % lg->nconns;
	lg->nidle--;
}

/* The first idle connection of the ring (left in it), or NULL. */
static struct fl_httpc *idle_peek(struct fl_loadgen *lg)
{
	while (lg->nidle > 0) {
		struct fl_httpc *c = &lg->conns[lg->idle[lg->idle_head]];

		if (fl_httpc_idle(c))
			return c;
		idle_drop(lg);
	}
	return NULL;
}

static void ready_push(struct fl_loadgen *lg, uint32_t r)
{
	lg->ready[(lg->ready_head + lg->nready) % lg->nreqs] = r;
	lg->nready++;
}

static uint32_t ready_pop(struct fl_loadgen *lg)
{
	uint32_t r = lg->ready[lg->ready_head];

	lg->ready_head = (lg->ready_head + 1) % lg->nreqs;
	lg->nready--;
	return r;
}

static bool heap_less(const struct fl_loadgen *lg, uint32_t a, uint32_t b)
{
	const struct req *x = &lg->reqs[lg->heap[a]], *y = &lg->reqs[lg->heap[b]];

	/* Ties keep the order of the sequence numbers (FIFO for lockstep). */
	return x->fire_ns < y->fire_ns || (x->fire_ns == y->fire_ns && x->seq < y->seq);
}

static void heap_swap(struct fl_loadgen *lg, uint32_t a, uint32_t b)
{
	uint32_t t = lg->heap[a];

	lg->heap[a] = lg->heap[b];
	lg->heap[b] = t;
}

static void heap_push(struct fl_loadgen *lg, uint32_t r)
{
	uint32_t i = lg->nheap++;

	lg->heap[i] = r;
	while (i > 0 && heap_less(lg, i, (i - 1) / 2)) {
		heap_swap(lg, i, (i - 1) / 2);
		i = (i - 1) / 2;
	}
}

static uint32_t heap_pop(struct fl_loadgen *lg)
{
	uint32_t top = lg->heap[0], i = 0;

	lg->heap[0] = lg->heap[--lg->nheap];
	for (;;) {
		uint32_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < lg->nheap && heap_less(lg, l, m))
			m = l;
		if (r < lg->nheap && heap_less(lg, r, m))
			m = r;
		if (m == i)
			break;
		heap_swap(lg, i, m);
		i = m;
	}
	return top;
}

/* ---- timers: libuv counts milliseconds; round up so nothing fires early
 * by more than the loop clock's truncation ---- */

static void timer_at(struct fl_loadgen *lg, uv_timer_t *t, uv_timer_cb cb, uint64_t due_ns,
		     uint64_t now_ns)
{
	uint64_t ms = due_ns > now_ns ? (due_ns - now_ns + RS_NS_PER_MS - 1) / RS_NS_PER_MS : 0;

	(void)lg;
	uv_timer_start(t, cb, ms, 0);
}

/* ---- statistics ---- */

static void stats_point(struct fl_load_stats *s, const struct hset *h)
{
	s->latency = h->lat;
	s->latency_uncorrected = h->unc;
	s->latency_first = h->first;
}

static void stats_add(struct fl_load_stats *t, const struct fl_load_stats *s)
{
	t->requests += s->requests;
	t->attempts += s->attempts;
	t->retries += s->retries;
	t->successes += s->successes;
	t->failures += s->failures;
	for (int k = 0; k < FL_FAIL_KINDS; k++) {
		t->errors[k] += s->errors[k];
		t->failed[k] += s->failed[k];
	}
	t->retries_denied_budget += s->retries_denied_budget;
	t->retries_denied_deadline += s->retries_denied_deadline;
}

/* Closes the current interval at now: adds it to the totals, keeps it as
 * the last interval and reports it. */
static void rollover(struct fl_loadgen *lg, uint64_t now)
{
	struct hset t;

	lg->cur.end_ns = now;
	stats_add(&lg->tot, &lg->cur);
	/* Same configuration everywhere: merging cannot fail. */
	if (rs_hist_merge(lg->htot.lat, lg->hcur.lat, NULL) < 0 ||
	    rs_hist_merge(lg->htot.unc, lg->hcur.unc, NULL) < 0 ||
	    rs_hist_merge(lg->htot.first, lg->hcur.first, NULL) < 0)
		abort();
	lg->tot.end_ns = now;
	t = lg->hlast;
	lg->hlast = lg->hcur;
	lg->hcur = t;
	lg->last = lg->cur;
	stats_point(&lg->last, &lg->hlast);
	lg->have_last = true;
	rs_hist_reset(lg->hcur.lat);
	rs_hist_reset(lg->hcur.unc);
	rs_hist_reset(lg->hcur.first);
	memset(&lg->cur, 0, sizeof(lg->cur));
	lg->cur.start_ns = now;
	stats_point(&lg->cur, &lg->hcur);
	lg->ival_index++;
	if (lg->o.on_interval)
		lg->o.on_interval(lg->o.ctx, &lg->last);
}

static void ival_cb(uv_timer_t *t)
{
	struct fl_loadgen *lg = t->data;
	uint64_t now = uv_hrtime();

	rollover(lg, now);
	timer_at(lg, t, ival_cb, lg->start_ns + (lg->ival_index + 1) * lg->o.interval_ns, now);
}

/* ---- requests ---- */

static void finish_request(struct fl_loadgen *lg, uint32_t ri, enum fl_fail_kind kind, uint64_t now)
{
	struct req *q = &lg->reqs[ri];

	if (kind == FL_OK) {
		lg->cur.successes++;
	} else {
		lg->cur.failures++;
		lg->cur.failed[kind]++;
	}
	rs_hist_record(lg->hcur.lat, now > q->due_ns ? now - q->due_ns : 0);
	rs_hist_record(lg->hcur.unc, now > q->first_ns ? now - q->first_ns : 0);
	q->next_free = lg->free_head;
	lg->free_head = ri;
	lg->outstanding--;
}

static bool retryable(void *ctx, int error)
{
	(void)ctx;
	return error == FL_FAIL_CONNECT || error == FL_FAIL_RESET || error == FL_FAIL_TIMEOUT ||
	       error == FL_FAIL_5XX || error == FL_FAIL_SHED;
}

static void retry_cb(uv_timer_t *t);

static void arm_retry_timer(struct fl_loadgen *lg, uint64_t now)
{
	if (lg->nheap == 0) {
		uv_timer_stop(&lg->retry_timer);
		return;
	}
	uv_update_time(lg->loop);
	timer_at(lg, &lg->retry_timer, retry_cb, lg->reqs[lg->heap[0]].fire_ns, now);
}

static void retry_cb(uv_timer_t *t)
{
	struct fl_loadgen *lg = t->data;
	uint64_t now = uv_hrtime();

	while (lg->nheap && lg->reqs[lg->heap[0]].fire_ns <= now)
		ready_push(lg, heap_pop(lg));
	arm_retry_timer(lg, now);
	dispatch(lg, now);
}

/* Decides whether the failed request retries; schedules the retry. */
static bool maybe_retry(struct fl_loadgen *lg, uint32_t ri, enum fl_fail_kind kind, uint64_t now)
{
	struct req *q = &lg->reqs[ri];
	struct rs_retry_input in = {
		.attempt = q->attempts,
		.error = (int)kind,
		.now_ns = now,
		.deadline_ns = q->deadline_ns,
		.breaker = RS_BREAKER_CLOSED,
		.prev_backoff_ns = q->prev_backoff_ns,
	};
	struct rs_retry_decision d;
	uint64_t fire, tick;

	if (!lg->retry || lg->phase >= P_CLOSING)
		return false;
	if (!rs_retry_decide(lg->retry, &in, &d)) {
		if (d.reason == RS_RETRY_BUDGET_DENIED)
			lg->cur.retries_denied_budget++;
		else if (d.reason == RS_RETRY_DEADLINE)
			lg->cur.retries_denied_deadline++;
		return false;
	}
	q->prev_backoff_ns = d.backoff_ns;
	fire = now + d.delay_ns;
	if (lg->lockstep) {
		tick = lg->o.lockstep_tick_ns;
		fire = (fire + tick - 1) / tick * tick;
	}
	q->fire_ns = fire;
	heap_push(lg, ri);
	if (lg->heap[0] == ri)
		arm_retry_timer(lg, now);
	return true;
}

static void kick_cb(uv_idle_t *h)
{
	struct fl_loadgen *lg = h->data;

	uv_idle_stop(h);
	lg->kicked = false;
	dispatch(lg, uv_hrtime());
}

/* Dispatches at the start of the next loop iteration (an active idle
 * handle also keeps the loop from blocking before then). */
static void kick(struct fl_loadgen *lg)
{
	if (lg->kicked || lg->phase >= P_CLOSING)
		return;
	lg->kicked = true;
	uv_idle_start(&lg->kick, kick_cb);
}

static void on_result(struct fl_httpc *c, const struct fl_httpc_result *r)
{
	struct fl_loadgen *lg = c->data;
	uint32_t ri = lg->conn_req[c->id];
	struct req *q = &lg->reqs[ri];
	uint64_t now = r->done_ns;

	lg->conn_req[c->id] = NONE;
	if (q->attempts == 1 && r->status > 0) {
		uint64_t s = lg->attempt_start[c->id];

		rs_hist_record(lg->hcur.first, now > s ? now - s : 0);
	}
	if (r->kind == FL_OK) {
		if (lg->budget)
			rs_budget_record_outcome(lg->budget, true, now);
		finish_request(lg, ri, FL_OK, now);
	} else {
		lg->cur.errors[r->kind]++;
		if (lg->budget)
			rs_budget_record_outcome(lg->budget, !retryable(NULL, r->kind), now);
		if (!maybe_retry(lg, ri, r->kind, now))
			finish_request(lg, ri, r->kind, now);
	}
	if (fl_httpc_idle(c))
		idle_push(lg, c);
	if (lg->phase == P_DRAINING && drained(lg)) {
		finish(lg, now);
		return;
	}
	kick(lg);
}

static void on_idle(struct fl_httpc *c)
{
	struct fl_loadgen *lg = c->data;

	idle_push(lg, c);
	dispatch(lg, uv_hrtime());
}

static void on_handle_closed(struct fl_loadgen *lg)
{
	if (--lg->open_handles > 0)
		return;
	lg->phase = P_DONE;
	if (lg->o.on_done)
		lg->o.on_done(lg->o.ctx);
}

static void on_conn_closed(struct fl_httpc *c)
{
	on_handle_closed(c->data);
}

static void timer_closed(uv_handle_t *h)
{
	on_handle_closed(h->data);
}

/* The request bytes of request q for connection c, into *buf / *len. */
static void build(struct fl_loadgen *lg, struct fl_httpc *c, const struct req *q, const char **buf,
		  size_t *len)
{
	struct fl_tpl_ctx ctx;
	char *w;
	size_t n, blen = 0;

	if (lg->const_req) {
		*buf = lg->const_req;
		*len = lg->const_len;
		return;
	}
	if (lg->random)
		fl_tpl_ctx_init(&ctx, lg->o.seed, q->seq);
	else
		ctx.seq = q->seq;
	w = lg->wbufs + (size_t)c->id * lg->wmax;
	if (lg->body)
		blen = fl_tpl_expand(lg->body, &ctx, w + lg->head_max + CL_MAX);
	n = fl_tpl_expand(lg->head, &ctx, w);
	if (lg->body) {
		n += (size_t)snprintf(w + n, CL_MAX, "Content-Length: %zu\r\n\r\n", blen);
		memmove(w + n, w + lg->head_max + CL_MAX, blen);
		n += blen;
	}
	*buf = w;
	*len = n;
}

static void send_attempt(struct fl_loadgen *lg, struct fl_httpc *c, uint32_t ri)
{
	struct req *q = &lg->reqs[ri];
	uint64_t now = uv_hrtime(), deadline = now + lg->o.timeout_ns;
	const char *buf;
	size_t len;

	if (q->attempts == 0) {
		/* The first attempt starts now: the clock is read per send, so
		 * the last request of a batch is not timed from the first's. */
		q->first_ns = now;
		if (lg->o.rate == 0 || q->due_ns > now)
			q->due_ns = now;
		if (lg->o.deadline_ns)
			q->deadline_ns = now + lg->o.deadline_ns;
	}
	q->attempts++;
	lg->cur.attempts++;
	if (q->attempts > 1)
		lg->cur.retries++;
	lg->conn_req[c->id] = ri;
	lg->attempt_start[c->id] = now;
	if (q->deadline_ns && q->deadline_ns < deadline)
		deadline = q->deadline_ns;
	build(lg, c, q, &buf, &len);
	fl_httpc_send(c, buf, len, now, deadline);
}

static void enter_drain(struct fl_loadgen *lg, uint64_t now);

/* Whether a new request may start now.  In open loop the requests due
 * before the end still start while draining: they were scheduled, and
 * leaving them out would hide a slow server (coordinated omission). */
static bool may_start(struct fl_loadgen *lg, uint64_t now)
{
	if (lg->free_head == NONE || lg->issued >= lg->sched_max)
		return false;
	if (lg->o.rate == 0)
		return lg->phase == P_RUNNING && lg->outstanding < lg->nconns;
	if (lg->phase != P_RUNNING && lg->phase != P_DRAINING)
		return false;
	return lg->issued < (uint64_t)((double)(now - lg->start_ns) / lg->ns_per_req) + 1;
}

static uint32_t start_request(struct fl_loadgen *lg, uint64_t now)
{
	uint32_t ri = lg->free_head;
	struct req *q = &lg->reqs[ri];

	lg->free_head = q->next_free;
	q->seq = ++lg->issued;
	q->due_ns =
	    lg->o.rate > 0 ? lg->start_ns + (uint64_t)((double)(q->seq - 1) * lg->ns_per_req) : now;
	if (q->due_ns > now)
		q->due_ns = now;
	q->first_ns = now;
	q->deadline_ns = lg->o.deadline_ns ? now + lg->o.deadline_ns : 0;
	q->attempts = 0;
	q->prev_backoff_ns = 0;
	lg->outstanding++;
	lg->cur.requests++;
	if (lg->budget)
		rs_budget_record_request(lg->budget, now);
	return ri;
}

static void dispatch(struct fl_loadgen *lg, uint64_t now)
{
	if (lg->phase >= P_CLOSING)
		return;
	for (;;) {
		struct fl_httpc *c = idle_peek(lg);
		uint32_t ri;

		if (!c)
			break;
		if (lg->nready)
			ri = ready_pop(lg);
		else if (may_start(lg, now))
			ri = start_request(lg, now);
		else
			break;
		idle_drop(lg);
		send_attempt(lg, c, ri);
	}
	if (lg->phase == P_RUNNING && lg->issued >= lg->sched_max)
		enter_drain(lg, now);
}

static void arm_tick(struct fl_loadgen *lg, uint64_t due_ns)
{
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };

	if (due_ns) {
		its.it_value.tv_sec = (time_t)(due_ns / RS_NS_PER_SEC);
		its.it_value.tv_nsec = (long)(due_ns % RS_NS_PER_SEC);
	}
	timerfd_settime(lg->tick_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void tick(struct fl_loadgen *lg)
{
	uint64_t now = uv_hrtime(), next;

	dispatch(lg, now);
	if ((lg->phase != P_RUNNING && lg->phase != P_DRAINING) || lg->issued >= lg->sched_max) {
		arm_tick(lg, 0);
		return;
	}
	/* Behind schedule, the next response or free slot dispatches; poll
	 * every millisecond anyway.  Ahead, wake at the due time, but at most
	 * every TICK_MIN_NS (a batch is then up to that late). */
	next = lg->start_ns + (uint64_t)((double)lg->issued * lg->ns_per_req);
	if (next <= now)
		next = now + RS_NS_PER_MS;
	else if (next < now + TICK_MIN_NS)
		next = now + TICK_MIN_NS;
	arm_tick(lg, next);
}

static void tick_cb(uv_poll_t *p, int status, int events)
{
	struct fl_loadgen *lg = p->data;
	uint64_t expirations;

	(void)status;
	(void)events;
	if (read(lg->tick_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return;
	tick(lg);
}

static void drain_cb(uv_timer_t *t)
{
	struct fl_loadgen *lg = t->data;

	finish(lg, uv_hrtime());
}

static void enter_drain(struct fl_loadgen *lg, uint64_t now)
{
	lg->phase = P_DRAINING;
	if (lg->tick_started && lg->issued >= lg->sched_max)
		arm_tick(lg, 0);
	if (drained(lg)) {
		finish(lg, now);
		return;
	}
	timer_at(lg, &lg->end_timer, drain_cb, now + lg->o.drain_ns, now);
}

static void end_cb(uv_timer_t *t)
{
	struct fl_loadgen *lg = t->data;

	if (lg->phase == P_RUNNING)
		enter_drain(lg, uv_hrtime());
}

/* Ends the run: reports the last interval and closes every handle. */
static void finish(struct fl_loadgen *lg, uint64_t now)
{
	if (lg->phase >= P_CLOSING)
		return;
	lg->phase = P_CLOSING;
	rollover(lg, now);
	lg->tot.abandoned = lg->outstanding;
	if (lg->tick_started) {
		arm_tick(lg, 0);
		uv_close((uv_handle_t *)&lg->tick_poll, timer_closed);
	}
	uv_close((uv_handle_t *)&lg->retry_timer, timer_closed);
	uv_close((uv_handle_t *)&lg->kick, timer_closed);
	uv_close((uv_handle_t *)&lg->ival_timer, timer_closed);
	uv_close((uv_handle_t *)&lg->end_timer, timer_closed);
	for (uint32_t i = 0; i < lg->nconns; i++)
		fl_httpc_close(&lg->conns[i]);
}

/* ---- set-up ---- */

static int compile_request(struct fl_loadgen *lg, const struct fl_loadgen_opts *o,
			   struct rs_err *err)
{
	const char *method = o->method && *o->method ? o->method : "GET";
	bool host_given = false;
	struct rs_err e;
	int rc;

	for (const char *m = method; *m; m++) {
		if (*m < 'A' || *m > 'Z')
			return rs__einval(
			    err, "method '%s': expected an upper-case token such as GET", method);
	}
	rc = fl_tpl_new(&lg->head, err);
	if (rc < 0)
		return rc;
	rc = fl_tpl_append_lit(lg->head, method, strlen(method), err);
	rc = rc ?: fl_tpl_append_lit(lg->head, " ", 1, err);
	if (rc < 0)
		return rc;
	rc = fl_tpl_append_at(lg->head, lg->url.path, (size_t)(lg->url.path - lg->url_copy), &e);
	if (rc < 0)
		return rc == -EINVAL ? rs__einval(err, "url '%s': %s", lg->url_copy, e.msg) : rc;
	rc = fl_tpl_append_lit(lg->head, " HTTP/1.1\r\n", 11, err);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < o->nheaders; i++) {
		const char *h = o->headers[i], *colon = h ? strchr(h, ':') : NULL;

		if (!h || !colon || colon == h || strpbrk(h, "\r\n") ||
		    (size_t)(colon - h) != strcspn(h, " \t:"))
			return rs__einval(err, "header %zu '%s': expected 'Name: value'", i + 1,
					  h ? h : "(null)");
		if ((size_t)(colon - h) == 4 && strncasecmp(h, "host", 4) == 0)
			host_given = true;
		rc = fl_tpl_append(lg->head, h, &e);
		if (rc < 0)
			return rc == -EINVAL
				   ? rs__einval(err, "header %zu '%s': %s", i + 1, h, e.msg)
				   : rc;
		rc = fl_tpl_append_lit(lg->head, "\r\n", 2, err);
		if (rc < 0)
			return rc;
	}
	if (!host_given) {
		rc = fl_tpl_append_lit(lg->head, "Host: ", 6, err);
		rc = rc ?: fl_tpl_append_lit(lg->head, lg->url.host, strlen(lg->url.host), err);
		rc = rc ?: fl_tpl_append_lit(lg->head, "\r\n", 2, err);
		if (rc < 0)
			return rc;
	}
	if (o->body) {
		rc = fl_tpl_compile(&lg->body, o->body, &e);
		if (rc < 0)
			return rc == -EINVAL ? rs__einval(err, "body: %s", e.msg) : rc;
		if (fl_tpl_is_const(lg->body)) {
			size_t blen;
			const char *b = fl_tpl_const(lg->body, &blen);
			char cl[CL_MAX];
			int n = snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n\r\n", blen);

			rc = fl_tpl_append_lit(lg->head, cl, (size_t)n, err);
			rc = rc ?: fl_tpl_append_lit(lg->head, b, blen, err);
			if (rc < 0)
				return rc;
			fl_tpl_free(lg->body);
			lg->body = NULL;
		}
	}
	if (!lg->body) {
		if (!o->body) {
			rc = fl_tpl_append_lit(lg->head, "\r\n", 2, err);
			if (rc < 0)
				return rc;
		}
	}
	lg->random = fl_tpl_is_random(lg->head) || (lg->body && fl_tpl_is_random(lg->body));
	lg->head_max = fl_tpl_max_len(lg->head);
	lg->wmax = lg->head_max + CL_MAX + (lg->body ? fl_tpl_max_len(lg->body) : 0);
	if (!lg->body && fl_tpl_is_const(lg->head))
		lg->const_req = fl_tpl_const(lg->head, &lg->const_len);
	return 0;
}

static int check_opts(struct fl_loadgen_opts *o, struct rs_err *err)
{
	if (o->connections == 0)
		o->connections = DEF_CONNS;
	if (o->connections > MAX_CONNS)
		return rs__einval(err, "connections must be in 1..%d, got %u", MAX_CONNS,
				  o->connections);
	if (!isfinite(o->rate) || o->rate < 0)
		return rs__einval(err, "rate must be finite and >= 0 (0: closed loop), got %g",
				  o->rate);
	if (o->rate > 0 && o->rate < 1e-3)
		return rs__einval(err, "rate must be at least 0.001 requests/s, got %g", o->rate);
	if (o->duration_ns == 0 && o->requests == 0)
		return rs__einval(err, "duration_ns or requests must bound the run");
	if (o->timeout_ns == 0)
		o->timeout_ns = DEF_TIMEOUT;
	if (o->timeout_ns < RS_NS_PER_MS)
		return rs__einval(err, "timeout_ns must be >= 1 ms, got %llu ns",
				  (unsigned long long)o->timeout_ns);
	if (o->interval_ns == 0)
		o->interval_ns = DEF_INTERVAL;
	if (o->interval_ns < RS_NS_PER_MS)
		return rs__einval(err, "interval_ns must be >= 1 ms, got %llu ns",
				  (unsigned long long)o->interval_ns);
	if (o->retry_attempts == 0)
		o->retry_attempts = 1;
	if (o->retry_base_ns == 0)
		o->retry_base_ns = DEF_BASE;
	if (o->retry_cap_ns == 0)
		o->retry_cap_ns = o->retry_base_ns > DEF_CAP ? o->retry_base_ns : DEF_CAP;
	if (o->retry_cap_ns < o->retry_base_ns)
		return rs__einval(err, "retry_cap_ns (%llu) must be >= retry_base_ns (%llu)",
				  (unsigned long long)o->retry_cap_ns,
				  (unsigned long long)o->retry_base_ns);
	if (o->budget_window_ns == 0)
		o->budget_window_ns = DEF_WINDOW;
	if (o->budget && (!(o->budget_ratio >= 0) || o->budget_ratio > 1))
		return rs__einval(err, "budget_ratio must be in [0, 1], got %g", o->budget_ratio);
	if (o->lockstep_tick_ns == 0)
		o->lockstep_tick_ns = o->retry_base_ns;
	if (o->lockstep_tick_ns < RS_NS_PER_MS)
		return rs__einval(err, "lockstep_tick_ns must be >= 1 ms, got %llu ns",
				  (unsigned long long)o->lockstep_tick_ns);
	if (o->max_outstanding == 0)
		o->max_outstanding = DEF_OUTSTAND;
	if (o->max_outstanding > MAX_OUTSTAND)
		return rs__einval(err, "max_outstanding must be <= %u, got %u", MAX_OUTSTAND,
				  o->max_outstanding);
	if (o->drain_ns == 0) {
		/* The longest a request can take, and a margin so that the drain
		 * never ends just before the last attempt's own timeout. */
		o->drain_ns = o->deadline_ns ? o->deadline_ns
					     : o->retry_attempts * o->timeout_ns +
						   (o->retry_attempts - 1) * o->retry_cap_ns;
		o->drain_ns += DRAIN_MARGIN;
	}
	return 0;
}

static int make_hset(struct hset *h, struct rs_err *err)
{
	struct rs_hist_opts ho = { RS_HIST_LATENCY_OPTS };
	int rc;

	rc = rs_hist_new(&h->lat, &ho, err);
	rc = rc ?: rs_hist_new(&h->unc, &ho, err);
	rc = rc ?: rs_hist_new(&h->first, &ho, err);
	return rc;
}

static void free_hset(struct hset *h)
{
	rs_hist_free(h->lat);
	rs_hist_free(h->unc);
	rs_hist_free(h->first);
}

static int make_retry(struct fl_loadgen *lg, struct rs_err *err)
{
	const struct fl_loadgen_opts *o = &lg->o;
	struct rs_retry_opts ro = {
		.name = "loadgen",
		.max_attempts = o->retry_attempts,
		.metastable_max_attempts = o->retry_attempts,
		.backoff = { .strategy = o->retry_backoff,
			     .base_ns = o->retry_base_ns,
			     .cap_ns = o->retry_cap_ns,
			     .seed = o->seed ^ 0x6a09e667f3bcc909ull,
			     .control = &lg->ctl },
		.health_factor_min = 1,
		.health_factor_max = 1,
		.error_rate_threshold = 1,
		.metastable_penalty = 1,
		.max_delay_ns = o->retry_cap_ns,
		.retryable = retryable,
		.control = &lg->ctl,
	};
	int rc;

	lg->ctl.magic = RS_CONTROL_MAGIC;
	lg->ctl.version = RS_CONTROL_VERSION;
	lg->ctl.size = sizeof(lg->ctl);
	atomic_init(&lg->ctl.jitter_enabled, o->lockstep ? 0u : 1u);
	atomic_init(&lg->ctl.retries_paused, 0u);
	atomic_init(&lg->ctl.generation, 0u);
	lg->lockstep = o->lockstep;
	if (o->retry_attempts <= 1)
		return 0;
	if (o->budget) {
		struct rs_budget_opts bo = {
			.kind = RS_BUDGET_RATIO,
			.name = "loadgen",
			.ratio = { .ratio = o->budget_ratio, .window_ns = o->budget_window_ns },
		};

		rc = rs_budget_new(&lg->budget, &bo, err);
		if (rc < 0)
			return rc;
		ro.budget = lg->budget;
	}
	return rs_retry_new(&lg->retry, &ro, err);
}

int fl_loadgen_new(struct fl_loadgen **out, uv_loop_t *loop, const struct fl_loadgen_opts *opts,
		   struct rs_err *err)
{
	struct fl_loadgen *lg;
	int rc = -ENOMEM;

	*out = NULL;
	lg = calloc(1, sizeof(*lg));
	if (!lg)
		return rs__enomem(err, "loadgen");
	lg->loop = loop;
	lg->tick_fd = -1;
	lg->o = *opts;
	lg->o.url = NULL;
	lg->o.method = NULL;
	lg->o.headers = NULL;
	lg->o.body = NULL;
	rc = check_opts(&lg->o, err);
	if (rc < 0)
		goto fail;
	if (!opts->url) {
		rc = rs__einval(err, "url is required");
		goto fail;
	}
	rc = -ENOMEM;
	lg->url_copy = strdup(opts->url);
	if (!lg->url_copy)
		goto nomem;
	rc = fl_url_parse(&lg->url, lg->url_copy, err);
	if (rc < 0)
		goto fail;
	rc = compile_request(lg, opts, err);
	if (rc < 0)
		goto fail;
	rc = make_retry(lg, err);
	if (rc < 0)
		goto fail;
	rc = make_hset(&lg->hcur, err);
	rc = rc ?: make_hset(&lg->hlast, err);
	rc = rc ?: make_hset(&lg->htot, err);
	if (rc < 0)
		goto fail;
	lg->nconns = lg->o.connections;
	if (!lg->const_req && lg->wmax > WBUF_TOTAL_MAX / lg->nconns) {
		rc = rs__einval(err,
				"the request expands to up to %zu bytes: too large for %u "
				"connections (at most %u MiB of request buffers)",
				lg->wmax, lg->nconns, (unsigned)(WBUF_TOTAL_MAX >> 20));
		goto fail;
	}
	lg->nreqs = lg->o.rate > 0 ? lg->o.max_outstanding : lg->nconns;
	lg->conns = calloc(lg->nconns, sizeof(*lg->conns));
	lg->conn_req = calloc(lg->nconns, sizeof(*lg->conn_req));
	lg->attempt_start = calloc(lg->nconns, sizeof(*lg->attempt_start));
	lg->idle = calloc(lg->nconns, sizeof(*lg->idle));
	lg->in_idle = calloc(lg->nconns, sizeof(*lg->in_idle));
	lg->reqs = calloc(lg->nreqs, sizeof(*lg->reqs));
	lg->heap = calloc(lg->nreqs, sizeof(*lg->heap));
	lg->ready = calloc(lg->nreqs, sizeof(*lg->ready));
	lg->rbuf = malloc(RBUF_LEN);
	lg->wbufs = lg->const_req ? NULL : calloc(lg->nconns, lg->wmax);
	if (!lg->conns || !lg->conn_req || !lg->attempt_start || !lg->idle || !lg->in_idle ||
	    !lg->reqs || !lg->heap || !lg->ready || !lg->rbuf || (!lg->const_req && !lg->wbufs))
		goto nomem;
	for (uint32_t i = 0; i < lg->nreqs; i++)
		lg->reqs[i].next_free = i + 1 < lg->nreqs ? i + 1 : NONE;
	lg->free_head = 0;
	lg->sh = (struct fl_httpc_shared){
		.loop = loop,
		.addr = (const struct sockaddr *)&lg->url.addr,
		.head = opts->method && strcmp(opts->method, "HEAD") == 0,
		.on_result = on_result,
		.on_idle = on_idle,
		.on_closed = on_conn_closed,
		.rbuf = lg->rbuf,
		.rbuf_len = RBUF_LEN,
	};
	lg->sched_max = UINT64_MAX;
	if (lg->o.requests)
		lg->sched_max = lg->o.requests;
	if (lg->o.rate > 0) {
		lg->ns_per_req = 1e9 / lg->o.rate;
		if (lg->o.duration_ns) {
			uint64_t n = (uint64_t)ceil((double)lg->o.duration_ns / lg->ns_per_req);

			if (n < lg->sched_max)
				lg->sched_max = n;
		}
	}
	if (lg->o.rate > 0) {
		lg->tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		if (lg->tick_fd < 0) {
			rc = -errno;
			rs__err_set(err, "loadgen: cannot create a timerfd: %s", strerror(errno));
			goto fail;
		}
	}
	stats_point(&lg->cur, &lg->hcur);
	stats_point(&lg->tot, &lg->htot);
	signal(SIGPIPE, SIG_IGN);
	*out = lg;
	return 0;
nomem:
	rc = rs__enomem(err, "loadgen");
fail:
	fl_loadgen_free(lg);
	return rc;
}

void fl_loadgen_start(struct fl_loadgen *lg)
{
	uint64_t now;

	if (lg->phase != P_NEW)
		return;
	uv_update_time(lg->loop);
	now = uv_hrtime();
	lg->start_ns = now;
	lg->cur.start_ns = now;
	lg->tot.start_ns = now;
	lg->phase = P_RUNNING;
	uv_timer_init(lg->loop, &lg->retry_timer);
	uv_timer_init(lg->loop, &lg->ival_timer);
	uv_timer_init(lg->loop, &lg->end_timer);
	uv_idle_init(lg->loop, &lg->kick);
	lg->retry_timer.data = lg->ival_timer.data = lg->end_timer.data = lg->kick.data = lg;
	lg->open_handles = 4;
	if (lg->tick_fd >= 0) {
		/* A timerfd polls like any fd: this cannot fail on a live loop. */
		if (uv_poll_init(lg->loop, &lg->tick_poll, lg->tick_fd) < 0)
			abort();
		lg->tick_poll.data = lg;
		lg->tick_started = true;
		lg->open_handles++;
		uv_poll_start(&lg->tick_poll, UV_READABLE, tick_cb);
	}
	for (uint32_t i = 0; i < lg->nconns; i++) {
		struct fl_httpc *c = &lg->conns[i];

		c->data = lg;
		c->id = i;
		/* uv_timer_init cannot fail on an initialised loop. */
		if (fl_httpc_init(c, &lg->sh) < 0)
			abort();
		lg->open_handles++;
		lg->conn_req[i] = NONE;
		idle_push(lg, c);
	}
	timer_at(lg, &lg->ival_timer, ival_cb, now + lg->o.interval_ns, now);
	if (lg->o.duration_ns)
		timer_at(lg, &lg->end_timer, end_cb, now + lg->o.duration_ns, now);
	dispatch(lg, now);
	if (lg->tick_started && lg->phase == P_RUNNING)
		tick(lg);
}

void fl_loadgen_stop(struct fl_loadgen *lg)
{
	if (lg->phase == P_RUNNING || lg->phase == P_DRAINING)
		finish(lg, uv_hrtime());
}

void fl_loadgen_set_lockstep(struct fl_loadgen *lg, bool on)
{
	lg->lockstep = on;
	atomic_store_explicit(&lg->ctl.jitter_enabled, on ? 0u : 1u, memory_order_relaxed);
}

const struct fl_load_stats *fl_loadgen_last_interval(const struct fl_loadgen *lg)
{
	return lg->have_last ? &lg->last : NULL;
}

const struct fl_load_stats *fl_loadgen_totals(const struct fl_loadgen *lg)
{
	return &lg->tot;
}

bool fl_loadgen_done(const struct fl_loadgen *lg)
{
	return lg->phase == P_DONE;
}

uint64_t fl_loadgen_start_ns(const struct fl_loadgen *lg)
{
	return lg->start_ns;
}

void fl_loadgen_free(struct fl_loadgen *lg)
{
	if (!lg)
		return;
	if (lg->tick_fd >= 0)
		close(lg->tick_fd);
	rs_retry_free(lg->retry);
	rs_budget_free(lg->budget);
	free_hset(&lg->hcur);
	free_hset(&lg->hlast);
	free_hset(&lg->htot);
	fl_tpl_free(lg->head);
	fl_tpl_free(lg->body);
	free(lg->url_copy);
	free(lg->conns);
	free(lg->conn_req);
	free(lg->attempt_start);
	free(lg->idle);
	free(lg->in_idle);
	free(lg->reqs);
	free(lg->heap);
	free(lg->ready);
	free(lg->rbuf);
	free(lg->wbufs);
	free(lg);
}
