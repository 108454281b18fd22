/* The load generator: HTTP/1.1 requests from templates over N persistent
 * connections, in open loop (constant rate, latency corrected for
 * coordinated omission) or closed loop (as fast as the server answers),
 * with per-attempt timeouts, per-request deadlines and retries through the
 * core's adaptive retry policy (resilience/retry.h, budget.h, backoff.h).
 *
 * It runs on the caller's libuv loop, in that loop's thread: every function
 * below must be called from it.  One thread is enough: nothing allocates
 * per request (connections, request slots, buffers and histograms are
 * allocated by fl_loadgen_new), requests are written with uv_try_write and
 * responses parsed in place with http-parser; the requests that responses
 * make room for go out together at the start of the next loop iteration,
 * with the clock read at each send.  The process ignores SIGPIPE
 * from fl_loadgen_new on (a write to a reset connection must be an error,
 * not the end of the process).
 *
 * Requests.  Request k (k = 1, 2, ...) is expanded from the templates with
 * ${seq} = k and random variables drawn from an rs_rng seeded from (seed,
 * k), so a run is reproducible and a retry resends exactly the same bytes.
 *
 * Modes.
 *  - Closed loop (rate 0): at most `connections` requests are outstanding
 *    (in flight or waiting for a retry); each finished request starts the
 *    next one.  This is wrk's model.
 *  - Open loop (rate > 0): request k is due at start + (k - 1) / rate.  It
 *    is sent as soon as it is due and a connection is free (one request per
 *    connection at a time, no pipelining).  Latency is counted from the due
 *    time (corrected, as wrk2 does) and also from the real first send
 *    (uncorrected).  Requests that are late are sent as soon as possible; a
 *    slow server therefore shows up as corrected latency, not as a lower
 *    request count.
 *
 * Retries.  A failed attempt (connect, reset, timeout, 5xx, shed; not 4xx
 * or protocol errors) is offered to rs_retry_decide with the request's
 * attempt count and deadline; a retry waits for the decided delay (its
 * request keeps its slot, not a connection) and is then sent before any new
 * request.  With lockstep on, jitter is removed (the backoff returns its
 * deterministic delay) and every retry fires at the next multiple of
 * lockstep_tick_ns of the CLOCK_MONOTONIC clock, so every client on the
 * machine retries on the same tick: the client side of the jitter-removal
 * fault.
 *
 * Ending.  No request is started after `duration_ns` or after `requests`
 * requests.  The run then drains: requests still outstanding may finish
 * (their retries included) for at most drain_ns; what is left is counted as
 * abandoned.  fl_loadgen_stop ends at once (abandoning everything).  Either
 * way the last, partial interval is reported, every handle is closed, and
 * then on_done is called: after it the loop holds nothing of the load
 * generator and fl_loadgen_free may be called.
 *
 * Statistics.  Counters and histograms cover fixed intervals (interval_ns,
 * measured on the monotonic clock from the start) and the whole run.  An
 * event is counted in the interval in which it happened (a request when its
 * first attempt starts, an outcome when it arrives).  Latency histograms
 * (resilience/hist.h, nanoseconds, 1 us .. 1 h, 3 digits):
 *   latency              end to end (first attempt to final outcome, retries
 *                        included), from the due time: corrected;
 *   latency_uncorrected  the same from the first attempt's real start;
 *   latency_first        first attempts that got a response (any status),
 *                        from their start.
 * Every finished request (success or failure) is in the end-to-end
 * histograms; abandoned ones are not.
 */
#ifndef FAULTLINE_LOADGEN_H
#define FAULTLINE_LOADGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "harness/httpc.h"
#include "resilience/backoff.h"
#include "resilience/err.h"
#include "resilience/hist.h"

struct fl_load_stats {
	uint64_t start_ns; /* CLOCK_MONOTONIC bounds of what is counted */
	uint64_t end_ns;
	uint64_t requests;		/* requests started (their first attempt) */
	uint64_t attempts;		/* attempts started, first ones and retries */
	uint64_t retries;		/* attempts - first attempts */
	uint64_t successes;		/* requests finished with a status < 400 */
	uint64_t failures;		/* requests finished failed (retries exhausted or denied) */
	uint64_t errors[FL_FAIL_KINDS]; /* failed attempts, by kind */
	uint64_t failed[FL_FAIL_KINDS]; /* failed requests, by their last attempt's kind */
	uint64_t retries_denied_budget; /* retries the budget refused */
	uint64_t retries_denied_deadline; /* retries that would pass the deadline */
	uint64_t abandoned; /* requests outstanding when the run ended (totals only) */
	/* Borrowed histograms: an interval's are valid until the next interval
	 * ends, the totals' until fl_loadgen_free. */
	const struct rs_hist *latency;
	const struct rs_hist *latency_uncorrected;
	const struct rs_hist *latency_first;
};

struct fl_loadgen_opts {
	/* Borrowed during fl_loadgen_new only (copied / compiled). */
	const char *url;	    /* http://HOST[:PORT]/PATH (harness/url.h); a template */
	const char *method;	    /* NULL = "GET" */
	const char *const *headers; /* "Name: value" templates, nheaders of them */
	size_t nheaders;
	const char *body; /* a template, or NULL for none; sent with Content-Length */

	uint32_t connections; /* 1..10000; 0 = 10 */
	double rate;	      /* requests/s > 0 (open loop), or 0 (closed loop) */
	uint64_t duration_ns; /* 0 = no time bound (then requests must be set) */
	uint64_t requests;    /* 0 = no count bound (then duration_ns must be set) */
	uint64_t timeout_ns;  /* per attempt, >= 1 ms; 0 = 2 s */
	uint64_t deadline_ns; /* per request, from its first attempt; 0 = none */
	uint64_t drain_ns;    /* after the end; 0 = the longest a request can take
				 (deadline, or attempts x timeout + retries x cap)
				 + 100 ms */

	uint32_t retry_attempts; /* attempts per request, first included; 0 = 1 (no retry) */
	enum rs_backoff_strategy retry_backoff;
	uint64_t retry_base_ns;	   /* 0 = 10 ms */
	uint64_t retry_cap_ns;	   /* 0 = 1 s (at least retry_base_ns) */
	bool budget;		   /* bound retries with a ratio budget: */
	double budget_ratio;	   /* retries per request in the window, [0, 1] */
	uint64_t budget_window_ns; /* 0 = 10 s */
	bool lockstep;		   /* see above; also fl_loadgen_set_lockstep */
	uint64_t lockstep_tick_ns; /* 0 = retry_base_ns */

	uint64_t interval_ns;	  /* statistics interval, >= 1 ms; 0 = 100 ms */
	uint64_t seed;		  /* templates and jitter */
	uint32_t max_outstanding; /* open loop: request slots; 0 = 16384 */

	/* Called on the loop after each interval (the last one may be shorter)
	 * with that interval's figures (borrowed for the call). */
	void (*on_interval)(void *ctx, const struct fl_load_stats *interval);
	/* Called once when the run is over and every handle is closed. */
	void (*on_done)(void *ctx);
	void *ctx;
};

struct fl_loadgen;

/* Validates opts, compiles the templates and allocates everything the run
 * needs.  Returns 0 with *out set (caller-frees with fl_loadgen_free);
 * -EINVAL with a message naming the field ("url 'ftp://x': ...",
 * "header 2 'X-Id: ${foo}': unknown variable '${foo}' at column 7",
 * "rate must be finite and >= 0, got -1"); -ENOMEM; or a libuv error.  On
 * error nothing is left on the loop. */
int fl_loadgen_new(struct fl_loadgen **out, uv_loop_t *loop, const struct fl_loadgen_opts *opts,
		   struct rs_err *err) RS_WUR;

/* Starts the run now (time 0 of the schedule and of the first interval).
 * Call once. */
void fl_loadgen_start(struct fl_loadgen *lg);

/* Ends the run now: outstanding requests are abandoned, the last interval
 * is reported, handles close and on_done follows.  Does nothing when the
 * run is already closing or over, or was never started. */
void fl_loadgen_stop(struct fl_loadgen *lg);

/* Turns lockstep retries on or off while running (the jitter fault). */
void fl_loadgen_set_lockstep(struct fl_loadgen *lg, bool on);

/* The last completed interval, or NULL before the first; borrowed, valid
 * until the next interval ends. */
const struct fl_load_stats *fl_loadgen_last_interval(const struct fl_loadgen *lg);

/* The whole run up to the last completed interval (all of it after the
 * run is over); borrowed, valid until fl_loadgen_free. */
const struct fl_load_stats *fl_loadgen_totals(const struct fl_loadgen *lg);

/* True once on_done has been called. */
bool fl_loadgen_done(const struct fl_loadgen *lg);

/* The run's start (CLOCK_MONOTONIC ns), 0 before fl_loadgen_start. */
uint64_t fl_loadgen_start_ns(const struct fl_loadgen *lg);

/* Frees everything.  Only before fl_loadgen_start or after on_done (the
 * loop must not hold the load generator's handles); accepts NULL. */
void fl_loadgen_free(struct fl_loadgen *lg);

#endif
