/* faultline-target's dependency role: see dependency.h. */
#include "target/dependency.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include "resilience/clock.h"
#include "resilience/hist.h"
#include "target/http.h"
#include "target/metrics.h"

struct job {
	struct fl_http_req *req;
	uint64_t arrival_ns;
	uint64_t id;
	uint64_t deadline_ns; /* arrival + the caller's timeout_ms; 0: not given */
};

struct worker {
	struct job job;
	bool busy;
	uint64_t seg_start_ns; /* start of the current stretch at the current factor */
	uint64_t remaining_ns; /* work left at factor 1, as of seg_start_ns */
	uint64_t done_ns;      /* completion time; UINT64_MAX while the factor is 0 */
};

struct fl_dependency {
	uv_loop_t *loop;
	struct fl_http_server *http, *admin;
	const struct fl_http_stats *http_stats, *admin_stats;
	struct rs_control *control; /* borrowed */
	uv_timer_t timer;
	bool timer_init;

	struct job *ring; /* FIFO of cfg.workers.queue jobs */
	size_t cap, head, count;
	struct worker *w;
	uint32_t nw;
	double factor;
	uint64_t service_ns;

	struct rs_hist *latency;
	struct fl_requests req;
	struct fl_dependency_counters c;
	struct fl_textbuf tb;
	uint64_t start_ns;

	bool closing;
	int closes; /* handles and servers still closing */
	void (*close_cb)(void *ctx);
	void *close_ctx;
};

/* ---- small helpers -------------------------------------------------------------- */

static void respond(struct fl_dependency *d, struct fl_http_req *req, enum fl_route route,
		    int status, const char *ctype, const char *extra, const void *body, size_t len)
{
	fl_requests_count(&d->req, route, status);
	if (fl_http_respond(req, status, ctype, extra, body, len) == -EINVAL)
		(void)fl_http_respond(req, 500, NULL, NULL, NULL, 0);
}

static void respond_text(struct fl_dependency *d, struct fl_http_req *req, enum fl_route route,
			 int status, const char *text)
{
	respond(d, req, route, status, "text/plain", NULL, text, strlen(text));
}

/* ---- workers in virtual time ----------------------------------------------------------- */

static void worker_start(struct fl_dependency *d, struct worker *w, struct job job, uint64_t t)
{
	w->busy = true;
	w->job = job;
	w->seg_start_ns = t;
	w->remaining_ns = d->service_ns;
	w->done_ns = d->factor > 0 ? t + (uint64_t)((double)d->service_ns / d->factor) : UINT64_MAX;
	d->c.in_flight++;
}

static struct job pop(struct fl_dependency *d)
{
	struct job j = d->ring[d->head];

	d->head = (d->head + 1) % d->cap;
	d->count--;
	d->c.queued = d->count;
	return j;
}

/* Answers a completed job.  The caller is known to be gone when the
 * server drops the answer (it saw the connection close) or when the
 * caller's own timeout has passed (its client closes the connection then,
 * but this server does not read while a request is pending, so it would
 * only find out when writing).  Answering may run the handler again for a
 * pipelined request (fl_http_respond drives the connection): callers
 * finish their bookkeeping first. */
static void answer(struct fl_dependency *d, const struct job *job)
{
	uint64_t before = d->http_stats->dropped, now = uv_hrtime();
	bool late = job->deadline_ns && now > job->deadline_ns;
	char body[32];
	int n = snprintf(body, sizeof(body), "%u\n", fl_dependency_stock(job->id));

	respond(d, job->req, FL_ROUTE_STOCK, 200, "text/plain", NULL, body, (size_t)n);
	if (late || d->http_stats->dropped != before) {
		d->c.wasted++;
	} else {
		d->c.served++;
		rs_hist_record(d->latency, now - job->arrival_ns);
	}
}

/* Completes, in completion order, every job due by now; a worker that
 * finishes takes the next queued job at its completion time. */
static void process(struct fl_dependency *d, uint64_t now)
{
	for (;;) {
		struct worker *first = NULL;
		struct job done;
		uint64_t t;

		for (uint32_t i = 0; i < d->nw; i++)
			if (d->w[i].busy && d->w[i].done_ns <= now &&
			    (!first || d->w[i].done_ns < first->done_ns))
				first = &d->w[i];
		if (!first)
			return;
		t = first->done_ns;
		done = first->job;
		first->busy = false;
		d->c.in_flight--;
		if (d->count) {
			struct job j = pop(d);

			worker_start(d, first, j, j.arrival_ns > t ? j.arrival_ns : t);
		}
		answer(d, &done);
	}
}

static void on_timer(uv_timer_t *t);

static void arm(struct fl_dependency *d, uint64_t now)
{
	uint64_t next = UINT64_MAX;

	for (uint32_t i = 0; i < d->nw; i++)
		if (d->w[i].busy && d->w[i].done_ns < next)
			next = d->w[i].done_ns;
	if (next == UINT64_MAX || d->closing) {
		uv_timer_stop(&d->timer);
		return;
	}
	uv_timer_start(&d->timer, on_timer,
		       next <= now ? 0 : (next - now + RS_NS_PER_MS - 1) / RS_NS_PER_MS, 0);
}

static void on_timer(uv_timer_t *t)
{
	struct fl_dependency *d = t->data;
	uint64_t now = uv_hrtime();

	process(d, now);
	arm(d, now);
}

static void set_factor(struct fl_dependency *d, double f)
{
	uint64_t now = uv_hrtime();

	process(d, now);
	for (uint32_t i = 0; i < d->nw; i++) {
		struct worker *w = &d->w[i];

		if (!w->busy)
			continue;
		if (d->factor > 0 && now > w->seg_start_ns) {
			double worked = (double)(now - w->seg_start_ns) * d->factor;

			w->remaining_ns = worked >= (double)w->remaining_ns
					      ? 0
					      : w->remaining_ns - (uint64_t)worked;
			w->seg_start_ns = now;
		} else if (now > w->seg_start_ns) {
			w->seg_start_ns = now;
		}
		w->done_ns =
		    f > 0 ? w->seg_start_ns + (uint64_t)((double)w->remaining_ns / f) : UINT64_MAX;
	}
	d->factor = f;
	d->c.factor = f;
	process(d, now);
	arm(d, now);
}

static void stock(struct fl_dependency *d, struct fl_http_req *req)
{
	struct job j = { req, req->received_ns, 0, 0 };
	uint64_t now = uv_hrtime();
	char tmo[24];

	if (fl_http_path_id(req->path + 7, req->path_len - 7, &j.id) < 0) {
		respond_text(d, req, FL_ROUTE_STOCK, 400, "bad id\n");
		return;
	}
	if (fl_http_query_get(req->query, req->query_len, "timeout_ms", tmo, sizeof(tmo)) == 0) {
		char *end;
		unsigned long long ms = strtoull(tmo, &end, 10);

		if (end == tmo || *end || ms == 0 || ms > 86400000ull) {
			respond_text(d, req, FL_ROUTE_STOCK, 400, "bad timeout_ms\n");
			return;
		}
		j.deadline_ns = j.arrival_ns + ms * RS_NS_PER_MS;
	}
	d->c.received++;
	process(d, now);
	for (uint32_t i = 0; i < d->nw && d->count == 0; i++)
		if (!d->w[i].busy) {
			worker_start(d, &d->w[i], j, now);
			process(d, now); /* a zero service time completes at once */
			arm(d, now);
			return;
		}
	if (d->count == d->cap) {
		d->c.dropped++;
		respond(d, req, FL_ROUTE_STOCK, 503, "text/plain", "Retry-After: 1\r\n",
			"queue full\n", 11);
		return;
	}
	d->ring[(d->head + d->count) % d->cap] = j;
	d->count++;
	d->c.queued = d->count;
}

/* ---- observability ----------------------------------------------------------------- */

static void view(struct fl_dependency *d, struct fl_dependency_view *v)
{
	v->start_ns = d->start_ns;
	v->control = rs_control_block(d->control);
	v->latency = d->latency;
	v->http = d->http_stats;
	v->admin = d->admin_stats;
	v->requests = &d->req;
	v->counters = &d->c;
}

static void common(struct fl_dependency *d, struct fl_http_req *req, enum fl_route route)
{
	struct fl_dependency_view v;

	view(d, &v);
	if (req->method != HTTP_GET && req->method != HTTP_HEAD) {
		respond(d, req, route, 405, "text/plain", "Allow: GET\r\n", "method not allowed\n",
			19);
	} else if (route == FL_ROUTE_HEALTHZ) {
		respond_text(d, req, route, 200, "ok\n");
	} else if (route == FL_ROUTE_METRICS) {
		size_t len;

		if (fl_textbuf_expo(&d->tb, fl_metrics_dependency, &v, &len) < 0)
			respond_text(d, req, route, 500, "metrics: out of memory\n");
		else
			respond(d, req, route, 200, "text/plain; version=0.0.4; charset=utf-8",
				NULL, d->tb.buf, len);
	} else {
		cJSON *st = fl_state_dependency(&v);
		char *text = st ? cJSON_PrintUnformatted(st) : NULL;

		if (text)
			respond(d, req, route, 200, "application/json", NULL, text, strlen(text));
		else
			respond_text(d, req, route, 500, "state: out of memory\n");
		free(text);
		cJSON_Delete(st);
	}
}

static bool route_common(struct fl_dependency *d, struct fl_http_req *req)
{
	if (strcmp(req->path, "/healthz") == 0)
		common(d, req, FL_ROUTE_HEALTHZ);
	else if (strcmp(req->path, "/metrics") == 0)
		common(d, req, FL_ROUTE_METRICS);
	else if (strcmp(req->path, "/state") == 0)
		common(d, req, FL_ROUTE_STATE);
	else
		return false;
	return true;
}

static void on_http(struct fl_http_req *req, void *ctx)
{
	struct fl_dependency *d = ctx;

	if (d->closing) {
		respond_text(d, req, FL_ROUTE_OTHER, 503, "closing\n");
		return;
	}
	if (req->path_len > 7 && strncmp(req->path, "/stock/", 7) == 0) {
		if (req->method != HTTP_GET)
			respond(d, req, FL_ROUTE_STOCK, 405, "text/plain", "Allow: GET\r\n",
				"method not allowed\n", 19);
		else
			stock(d, req);
		return;
	}
	if (!route_common(d, req))
		respond_text(d, req, FL_ROUTE_OTHER, 404, "not found\n");
}

static void capacity(struct fl_dependency *d, struct fl_http_req *req)
{
	char val[64], body[96];
	double f;
	char *end;
	int n;

	if (req->method == HTTP_POST) {
		if (fl_http_query_get(req->query, req->query_len, "factor", val, sizeof(val)) < 0) {
			respond_text(d, req, FL_ROUTE_ADMIN, 400,
				     "capacity: factor=F is required\n");
			return;
		}
		f = strtod(val, &end);
		if (end == val || *end || !isfinite(f) || f < 0 || f > 1e6) {
			respond_text(d, req, FL_ROUTE_ADMIN, 400,
				     "capacity: factor must be a number in [0, 1e6]\n");
			return;
		}
		set_factor(d, f);
	} else if (req->method != HTTP_GET) {
		respond(d, req, FL_ROUTE_ADMIN, 405, "text/plain", "Allow: GET, POST\r\n",
			"method not allowed\n", 19);
		return;
	}
	n = snprintf(body, sizeof(body), "{\"factor\":%.17g}", d->factor);
	respond(d, req, FL_ROUTE_ADMIN, 200, "application/json", NULL, body, (size_t)n);
}

static void on_admin(struct fl_http_req *req, void *ctx)
{
	struct fl_dependency *d = ctx;

	if (d->closing)
		respond_text(d, req, FL_ROUTE_ADMIN, 503, "closing\n");
	else if (strcmp(req->path, "/admin/capacity") == 0)
		capacity(d, req);
	else if (!route_common(d, req))
		respond_text(d, req, FL_ROUTE_OTHER, 404, "not found\n");
}

/* ---- life cycle ------------------------------------------------------------------- */

static void dep_free(struct fl_dependency *d)
{
	void (*cb)(void *) = d->close_cb;
	void *ctx = d->close_ctx;

	rs_hist_free(d->latency);
	fl_textbuf_release(&d->tb);
	free(d->ring);
	free(d->w);
	free(d);
	if (cb)
		cb(ctx);
}

static void one_closed(void *ctx)
{
	struct fl_dependency *d = ctx;

	if (--d->closes == 0)
		dep_free(d);
}

static void on_handle_closed(uv_handle_t *h)
{
	one_closed(h->data);
}

void fl_dependency_close(struct fl_dependency *d, void (*close_cb)(void *ctx), void *ctx)
{
	if (!d || d->closing)
		return;
	d->closing = true;
	d->close_cb = close_cb;
	d->close_ctx = ctx;
	d->closes = 1; /* ours, dropped at the end */
	if (d->http) {
		d->closes++;
		fl_http_server_close(d->http, one_closed, d);
	}
	if (d->admin) {
		d->closes++;
		fl_http_server_close(d->admin, one_closed, d);
	}
	/* Answer what is owed: the servers free their memory only then. */
	for (uint32_t i = 0; d->w && i < d->nw; i++)
		if (d->w[i].busy) {
			d->w[i].busy = false;
			respond_text(d, d->w[i].job.req, FL_ROUTE_STOCK, 503, "closing\n");
		}
	while (d->count) {
		struct job j = pop(d);

		respond_text(d, j.req, FL_ROUTE_STOCK, 503, "closing\n");
	}
	if (d->timer_init) {
		d->closes++;
		uv_close((uv_handle_t *)&d->timer, on_handle_closed);
	}
	one_closed(d);
}

int fl_dependency_new(struct fl_dependency **out, uv_loop_t *loop,
		      const struct fl_target_config *cfg, struct rs_control *control,
		      struct rs_err *err)
{
	struct rs_hist_opts ho = { RS_HIST_LATENCY_OPTS };
	struct fl_http_server_opts so = { .on_request = on_http };
	struct fl_dependency *d;
	int rc;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return rs__enomem(err, "dependency");
	d->loop = loop;
	d->control = control;
	d->start_ns = uv_hrtime();
	d->nw = cfg->workers.count;
	d->cap = cfg->workers.queue;
	d->factor = cfg->workers.factor;
	d->service_ns = cfg->workers.service_time_ns;
	d->c.factor = d->factor;
	d->c.workers = d->nw;
	d->c.queue_bound = d->cap;
	d->c.service_time_ns = d->service_ns;
	d->w = calloc(d->nw, sizeof(*d->w));
	d->ring = calloc(d->cap, sizeof(*d->ring));
	if (!d->w || !d->ring) {
		rc = rs__enomem(err, "dependency: workers and queue");
		goto fail;
	}
	if ((rc = rs_hist_new(&d->latency, &ho, err)) < 0)
		goto fail;
	uv_timer_init(loop, &d->timer);
	d->timer.data = d;
	d->timer_init = true;

	so.ctx = d;
	if ((rc = fl_http_server_new(&d->http, loop, &so, err)) < 0)
		goto fail;
	d->http_stats = fl_http_server_stats(d->http);
	so.on_request = on_admin;
	if ((rc = fl_http_server_new(&d->admin, loop, &so, err)) < 0)
		goto fail;
	d->admin_stats = fl_http_server_stats(d->admin);
	if ((rc = fl_http_server_listen(d->http, cfg->host, cfg->port, err)) < 0 ||
	    (rc = fl_http_server_listen(d->admin, "127.0.0.1", cfg->admin_port, err)) < 0)
		goto fail;
	*out = d;
	return 0;
fail:
	/* Closing frees d once the handles are gone (the caller runs the loop). */
	fl_dependency_close(d, NULL, NULL);
	return rc;
}

int fl_dependency_port(const struct fl_dependency *d)
{
	return fl_http_server_port(d->http);
}

int fl_dependency_admin_port(const struct fl_dependency *d)
{
	return fl_http_server_port(d->admin);
}
