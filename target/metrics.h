/* faultline-target's observability: /metrics (Prometheus text) and /state
 * (JSON) of both roles, request counters by route and status, and the
 * process's CPU time and resident memory from /proc/self.
 *
 * The roles keep their own objects; to render they fill a view (a struct of
 * borrowed pointers, below) and call the renderer.  Names on /metrics:
 *  - the core's own families (DESIGN.md section 6), written by each core
 *    object's rs_*_expo: resilience_breaker_state{name="dependency"}, ...;
 *  - faultline_requests_total{route,code}: answers by route and status
 *    (only pairs seen so far); faultline_requests_in_flight;
 *  - faultline_request_duration_seconds{route}: latency histogram;
 *  - faultline_cache_*, faultline_dependency_*, faultline_file_*,
 *    faultline_defense_enabled{defense}, faultline_trigger_active,
 *    faultline_queue_depth (the bulkhead's waiting calls), faultline_pending
 *    (item requests held), the last detector sample (faultline_sample_*);
 *  - the dependency role: faultline_worker_* (queue depth, in flight,
 *    served, dropped, wasted, capacity factor);
 *  - process_cpu_seconds_total and process_resident_memory_bytes, the
 *    names Prometheus client libraries use.
 * /state holds the same figures as one JSON object (cJSON).
 *
 * Threads: the loop that owns the objects renders them; nothing here
 * locks.  Rendering allocates (the text buffer grows, cJSON allocates); the
 * request hot path never calls into this file except the inline counters.
 */
#ifndef FAULTLINE_TARGET_METRICS_H
#define FAULTLINE_TARGET_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "resilience/breaker.h"
#include "resilience/budget.h"
#include "resilience/bulkhead.h"
#include "resilience/coalesce.h"
#include "resilience/control.h"
#include "resilience/detector.h"
#include "resilience/expo.h"
#include "resilience/hist.h"
#include "resilience/idem.h"
#include "resilience/retry.h"
#include "resilience/shed.h"
#include "target/cache.h"
#include "target/http.h"
#include "target/upstream.h"
#include "target/uring.h"

/* ---- request counters (hot path: inline, no allocation) ------------------ */

enum fl_route {
	FL_ROUTE_ITEM_GET = 0,
	FL_ROUTE_ITEM_POST,
	FL_ROUTE_STOCK,
	FL_ROUTE_HEALTHZ,
	FL_ROUTE_METRICS,
	FL_ROUTE_STATE,
	FL_ROUTE_ADMIN,
	FL_ROUTE_OTHER,
	FL_NROUTES
};

/* Statuses counted one by one; any other lands in the last slot ("other"). */
#define FL_CODES_LIST 200, 201, 400, 404, 405, 409, 413, 429, 500, 502, 503, 504
#define FL_NCODES     13

struct fl_requests {
	uint64_t n[FL_NROUTES][FL_NCODES];
};

static inline unsigned fl_code_slot(int status)
{
	switch (status) {
	case 200:
		return 0;
	case 201:
		return 1;
	case 400:
		return 2;
	case 404:
		return 3;
	case 405:
		return 4;
	case 409:
		return 5;
	case 413:
		return 6;
	case 429:
		return 7;
	case 500:
		return 8;
	case 502:
		return 9;
	case 503:
		return 10;
	case 504:
		return 11;
	default:
		return 12;
	}
}

static inline void fl_requests_count(struct fl_requests *r, enum fl_route route, int status)
{
	r->n[route][fl_code_slot(status)]++;
}

/* "item_get", "item_post", "stock", "healthz", "metrics", "state", "admin",
 * "other". */
const char *fl_route_name(enum fl_route r);

/* Answers of one route, all statuses. */
uint64_t fl_requests_route_total(const struct fl_requests *r, enum fl_route route);

/* ---- process figures -------------------------------------------------------- */

struct fl_proc {
	double cpu_seconds; /* user + system since start (getrusage) */
	uint64_t rss_bytes; /* resident set (/proc/self/statm) */
};

/* Reads getrusage and /proc/self/statm.  0, or -errno (the figures are
 * then 0). */
int fl_proc_read(struct fl_proc *p) RS_WUR;

/* ---- a growable buffer for the exposition ----------------------------------- */

struct fl_textbuf {
	char *buf; /* owned; NULL until the first render */
	size_t cap;
};

#define FL_TEXTBUF_MAX (16u << 20)

/* Runs fn(e, ctx) into tb, growing tb and running it again while the
 * exposition does not fit (up to FL_TEXTBUF_MAX).  Returns 0 with *len set
 * (tb->buf NUL-terminated), -ENOMEM, or -ENOBUFS past the limit. */
int fl_textbuf_expo(struct fl_textbuf *tb, void (*fn)(struct rs_expo *e, void *ctx), void *ctx,
		    size_t *len) RS_WUR;

/* Frees the buffer; accepts a released one. */
void fl_textbuf_release(struct fl_textbuf *tb);

/* ---- the service role ------------------------------------------------------- */

/* Counters the service keeps besides the core objects'.  Plain integers on
 * the loop's thread. */
struct fl_service_counters {
	uint64_t item_arrivals;	     /* GET /item requests received */
	uint64_t dep_calls;	     /* dependency calls (a fetch; retries not counted) */
	uint64_t dep_attempts;	     /* attempts sent or refused, retries included */
	uint64_t dep_ok;	     /* attempts answered 200 with a stock figure */
	uint64_t dep_timeouts;	     /* attempts that timed out */
	uint64_t dep_errors;	     /* attempts that failed to connect or were reset */
	uint64_t dep_bad_status;     /* attempts answered with another status or body */
	uint64_t breaker_rejected;   /* attempts refused by the open breaker */
	uint64_t bulkhead_rejected;  /* attempts refused by the full bulkhead */
	uint64_t bulkhead_timed_out; /* attempts that waited max_wait for a slot */
	uint64_t retries;	     /* retries scheduled (a timer armed) */
	uint64_t shed;		     /* requests shed (503 + Retry-After) */
	uint64_t overloaded;	     /* 503 because max_in_flight requests were held */
	uint64_t file_reads, file_read_errors;
	uint64_t file_writes, file_write_errors;
	uint64_t idem_duplicates; /* POSTs answered from the idempotency table */
	uint64_t pending;	  /* gauge: item requests held now */
	bool trigger_active;	  /* gauge: POST /admin/trigger */
};

struct fl_service_view {
	uint64_t start_ns; /* when the role started (uptime) */
	const struct rs_control_block *control;
	bool defense_breaker, defense_budget, defense_jitter, defense_shed, defense_detector,
	    defense_coalesce;
	struct rs_breaker *breaker;	    /* never NULL (disabled when the defense is off) */
	const struct rs_budget *budget;	    /* NULL when the defense is off */
	const struct rs_retry *retry;	    /* never NULL */
	const struct rs_shed *shed;	    /* NULL when the defense is off */
	const struct rs_bulkhead *bulkhead; /* never NULL */
	const struct rs_coalesce *coalesce; /* NULL when the defense is off */
	const struct rs_idem *idem;	    /* never NULL */
	const struct rs_detector *trigger_detector;   /* the trigger-aware form */
	const struct rs_detector *multi_detector;     /* the multi-signal form */
	const struct rs_detector_sample *last_sample; /* last sample fed to them */
	const struct rs_hist *latency;		      /* GET /item, end to end */
	const struct rs_hist *dep_latency;	      /* dependency attempts */
	const struct fl_cache *cache;
	const struct fl_http_stats *http, *admin;
	const struct fl_upstream_stats *upstream;
	const struct fl_uring_stats *uring; /* NULL before the ring exists */
	const struct fl_requests *requests;
	const struct fl_service_counters *counters;
};

/* Writes the whole /metrics document of the service (fn for
 * fl_textbuf_expo: ctx is a const struct fl_service_view *; now_ns is read
 * with rs_now_ns inside). */
void fl_metrics_service(struct rs_expo *e, void *view);

/* The /state document; caller-frees with cJSON_Delete; NULL when cJSON
 * cannot allocate. */
cJSON *fl_state_service(const struct fl_service_view *v);

/* ---- the dependency role ---------------------------------------------------- */

struct fl_dependency_counters {
	uint64_t received;  /* GET /stock requests */
	uint64_t served;    /* work completed and answered (caller still there) */
	uint64_t wasted;    /* work completed for a caller that had gone */
	uint64_t dropped;   /* refused at once: the queue was full (503) */
	uint64_t queued;    /* gauge: requests waiting for a worker */
	uint64_t in_flight; /* gauge: workers busy */
	double factor;	    /* gauge: capacity factor */
	uint32_t workers;
	uint64_t queue_bound;
	uint64_t service_time_ns;
};

struct fl_dependency_view {
	uint64_t start_ns;
	const struct rs_control_block *control;
	const struct rs_hist *latency; /* GET /stock: arrival to answer */
	const struct fl_http_stats *http, *admin;
	const struct fl_requests *requests;
	const struct fl_dependency_counters *counters;
};

/* Like fl_metrics_service, ctx a const struct fl_dependency_view *. */
void fl_metrics_dependency(struct rs_expo *e, void *view);

cJSON *fl_state_dependency(const struct fl_dependency_view *v);

/* The bucket bounds (seconds) of the latency histograms, 0.5 ms .. 10 s. */
extern const double fl_latency_le[];
extern const size_t fl_latency_nle;

#endif
