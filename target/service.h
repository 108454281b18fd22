/* faultline-target's service role: the system under test, built on the
 * resilience core.
 *
 * HTTP port (cfg->host:cfg->port):
 *   GET /item/{id}   {id}: 1..2^53 in decimal without leading zeros (else
 *     400).  In order:
 *     1. the load shedder (rs_shed, tiered; class from the optional
 *        "X-Priority: critical|high|medium|low" header, default medium):
 *        shed -> 503 with "Retry-After: 1" at once, no I/O;
 *     2. the item cache (target/cache.h, key "item/{id}"): hit -> 200;
 *     3. a miss joins the request coalescer (rs_coalesce, key "item/{id}"):
 *        the first request for a key (the leader) fetches, the others wait
 *        for its result; with the coalescer off (or full) each miss
 *        fetches on its own;
 *     4. the fetch reads DATA_DIR/item-{id} through io_uring (missing: 404)
 *        and calls the dependency, GET /stock/{id}?timeout_ms={attempt
 *        timeout, propagated}, through the breaker
 *        (named "dependency"), then the bulkhead, then the connection pool,
 *        with a per-attempt timeout (dependency.timeout) inside the
 *        request's deadline (request.deadline from arrival).  A failed
 *        attempt (timeout, connection error, 5xx) goes to the adaptive
 *        retry policy (rs_retry with the budget, the backoff and the
 *        trigger-aware detector's verdict); a retry waits on a uv_timer.
 *     Success: the cache stores the answer and every waiting request gets
 *     200 "item {id} stock {n}\n" followed by the file's bytes.  Failure:
 *     503 (+ Retry-After: 1) when the breaker is open or the bulkhead is
 *     full or its wait ran out, 504 for timeouts and the deadline, 502 for
 *     connection errors and bad answers, 500 for a file error.
 *     The breaker judges every call it admits, including one the bulkhead
 *     then refuses (as Resilience4j does when the bulkhead is inside the
 *     breaker): every admitted call is recorded exactly once.
 *   POST /item/{id}  with "Idempotency-Key: K" (missing: 400): the first
 *     request with K writes DATA_DIR/item-{id} (the body) and fsyncs it
 *     through io_uring, drops the item from the cache and answers 201
 *     "stored item {id} ({n} bytes)\n", which the idempotency table keeps
 *     (idempotency.ttl); a repeated K gets that stored answer with
 *     "Idempotent-Replayed: true" and writes nothing (counted as a
 *     duplicate); K still running: 409.
 *   GET /healthz (200 "ok\n"), GET /metrics, GET /state (target/metrics.h).
 *
 * Admin port (127.0.0.1:cfg->admin_port only), the three above plus:
 *   POST /admin/cache/flush[?prefix=P]  drop every entry, or those whose
 *     key ("item/{id}") starts with P: {"flushed":N}
 *   POST /admin/cache/expire[?in_us=N]  every entry expires at one instant,
 *     now or N µs from now (0..3600000000; the synchronized-TTL stampede):
 *     {"expired":N,"in_us":N,"hits":H,"misses":M} (the cache's counters at
 *     that instant); 400 for another in_us
 *   GET  /admin/cache         {"entries","bytes","hits","misses","expired",
 *     "evictions","flushed"}: the harness's verify step for cache faults
 *   POST /admin/trigger?active=0|1, GET /admin/trigger  the trigger flag fed
 *     to the trigger-aware detector: the harness sets it to 1 while it
 *     applies a fault and back to 0 when it reverts it, so the detector
 *     can tell a failure that outlives its trigger (metastable) from plain
 *     overload: {"trigger_active":true|false}
 *
 * Detectors: every detector.period (100 ms) a uv_timer samples the
 * service's own view of the last period (GET /item arrivals/s, successes/s,
 * answers/s, p99 latency, 5xx fraction, dependency attempts per call,
 * item requests held, cache hit ratio, process CPU, the trigger flag) and
 * feeds it to a trigger-aware detector (named "service", whose verdict the
 * retry policy reads) and a multi-signal one ("service_multi", exported
 * only).  With breaker.emergency_threshold set, the same tick feeds the
 * breaker a risk reading of 1 while the trigger-aware detector declares
 * metastability and 0 otherwise (so a threshold in (0, 1] puts the breaker
 * in emergency for the episode).  The same tick feeds the shedder its load: requests held against
 * shed.queue_limit, p99 against shed.latency_target, and CPU with
 * shed.cpu.
 *
 * Defenses switched off (cfg->defenses):
 *   breaker   the breaker exists but is forced to "disabled" (state 5) and
 *             never consulted: calls always go out;
 *   budget    no retry budget: retries are bounded by attempts only;
 *   jitter    the backoff strategy becomes "none" (lockstep retries);
 *   shed      no shedder: every request is admitted;
 *   detector  the detectors still run and export, but the retry policy is
 *             told "not metastable": detection without reaction;
 *   coalesce  no coalescer: every miss calls the dependency.
 * RESILIENCE_CONTROL: the control block (resilience/control.h) reaches the
 * breaker (forces), the backoff (jitter switch) and the retry policy
 * (pause), and is exported as resilience_jitter_enabled{name="service"}.
 *
 * The dependency's address is fixed at start: after a dependency restart
 * on the same port, the connection pool simply connects again.
 *
 * Threads: one loop; every function here runs on it.
 */
#ifndef FAULTLINE_TARGET_SERVICE_H
#define FAULTLINE_TARGET_SERVICE_H

#include <uv.h>

#include "resilience/control.h"
#include "resilience/err.h"
#include "target/config.h"

struct fl_service;

/* Creates the role on loop (every core object, the cache, the io_uring
 * ring, the dependency pool) and starts listening on both ports.  cfg is
 * read during the call only; control (may be NULL) is borrowed and must
 * outlive the role.  Returns 0 and sets *out; otherwise -EINVAL, -ENOMEM,
 * io_uring's error (-EPERM, -ENOSYS...) or the bind error with a message in
 * err.  On failure, handles already made are closing: run the loop before
 * closing it. */
int fl_service_new(struct fl_service **out, uv_loop_t *loop, const struct fl_target_config *cfg,
		   struct rs_control *control, struct rs_err *err) RS_WUR;

/* The ports listened on. */
int fl_service_port(const struct fl_service *s);
int fl_service_admin_port(const struct fl_service *s);

/* Stops listening, fails every request in progress (their answers are
 * dropped with their connections), closes the pool, the ring and every
 * handle; the memory is freed once they have closed, then close_cb(ctx)
 * runs (may be NULL).  Run the loop until then.  Accepts NULL; a second
 * call does nothing. */
void fl_service_close(struct fl_service *s, void (*close_cb)(void *ctx), void *ctx);

#endif
