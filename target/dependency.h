/* faultline-target's dependency role: what the service calls for stock
 * figures, with a fixed number of workers behind a FIFO queue.
 *
 * HTTP port (cfg->host:cfg->port):
 *   GET /stock/{id}  {id}: 1..2^53 in decimal without leading zeros (else
 *                    400).  Queued (FIFO, at most cfg->workers.queue
 *                    waiting; a full queue answers 503 at once, counted as
 *                    dropped); a worker then spends service_time / factor
 *                    on it and answers 200 "<stock>\n" with the figure of
 *                    fl_dependency_stock(id).
 *                    Optional query "timeout_ms=N" (1..86400000, else 400):
 *                    the caller's timeout, propagated like a gRPC deadline;
 *                    the work is done in full anyway, but a completion later
 *                    than arrival + N is counted as wasted.
 *   GET /healthz     200 "ok\n";  GET /metrics, GET /state (metrics.h).
 * Admin port (127.0.0.1:cfg->admin_port), the same three plus:
 *   POST /admin/capacity?factor=F  F >= 0 (finite, <= 1e6): scales every
 *                    worker's speed from now on, work in progress included
 *                    (its remaining work is rescaled).  F = 0 stops the
 *                    workers: nothing completes and the queue fills (the
 *                    dependency hangs, "killed through the capacity
 *                    trigger").  Answers 200 {"factor":F}; 400 for a bad F.
 *   GET /admin/capacity            200 {"factor":F}.
 *
 * The sustaining effect of metastable failures: work for a caller that
 * already timed out or disconnected is still done in full; only its answer
 * is lost.  Such completions are counted as wasted: those past the
 * caller's propagated timeout_ms, and those whose answer the HTTP server
 * drops because it saw the connection close (it does not read while a
 * request is pending, so without timeout_ms a caller that left is usually
 * only noticed by the write, and counted as served).
 *
 * Workers in virtual time: each worker's busy period is computed exactly in
 * nanoseconds (it starts at max(arrival, the worker's previous completion)
 * and lasts service_time / factor), and one libuv timer wakes the loop at
 * the earliest completion (rounded up to the timer's millisecond).  So the
 * throughput is exactly workers / service_time * factor whatever the timer
 * granularity; an answer may leave up to about 1 ms after its completion
 * time.
 *
 * Threads: one loop; every function here runs on it.
 */
#ifndef FAULTLINE_TARGET_DEPENDENCY_H
#define FAULTLINE_TARGET_DEPENDENCY_H

#include <stdint.h>
#include <uv.h>

#include "resilience/control.h"
#include "resilience/err.h"
#include "target/config.h"

struct fl_dependency;

/* The stock figure of an item: deterministic, 0..999. */
static inline uint32_t fl_dependency_stock(uint64_t id)
{
	return (uint32_t)((id * 2654435761u) % 1000u);
}

/* Creates the role on loop and starts listening on both ports.  cfg is
 * read during the call only; control (may be NULL) is borrowed and must
 * outlive the role.  Returns 0 and sets *out; -EINVAL, -ENOMEM or the bind
 * error (-EADDRINUSE...) with a message in err; nothing is left on the loop
 * on failure. */
int fl_dependency_new(struct fl_dependency **out, uv_loop_t *loop,
		      const struct fl_target_config *cfg, struct rs_control *control,
		      struct rs_err *err) RS_WUR;

/* The ports listened on. */
int fl_dependency_port(const struct fl_dependency *d);
int fl_dependency_admin_port(const struct fl_dependency *d);

/* Stops listening, answers every queued or in-progress request with 503
 * (the answers are dropped with their connections) and closes every
 * handle; the memory is freed once they have closed, then close_cb(ctx)
 * runs (may be NULL).  Run the loop until then.  Accepts NULL; a second
 * call does nothing. */
void fl_dependency_close(struct fl_dependency *d, void (*close_cb)(void *ctx), void *ctx);

#endif
