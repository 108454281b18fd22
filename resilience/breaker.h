/* Circuit breaker.
 *
 * A breaker sits in front of one dependency.  The caller asks
 * rs_breaker_allow before each call and, for every admitted call, reports
 * how it went with rs_breaker_record:
 *
 *   if (rs_breaker_allow(b, now)) {
 *           int rc = call_dependency();
 *           uint64_t end = rs_now_ns();
 *           rs_breaker_record(b, rc < 0, end - now, end);
 *   } else {
 *           ... fail fast or fall back ...
 *   }
 *
 * States (the numbers are the resilience_breaker_state gauge's, DESIGN.md 6):
 *   closed      admits every call and judges their outcomes with its trip
 *               policies: N consecutive failures, and/or a failure rate or a
 *               slow-call rate >= its threshold over a count or time window
 *               holding at least minimum_calls calls (as Resilience4j does);
 *   open        rejects every call until its wait has elapsed; the kth
 *               consecutive opening waits open_ns * open_multiplier^(k-1),
 *               capped at open_max_ns, then +-open_jitter drawn from the
 *               breaker's seeded rng (no jitter while the control block
 *               removes it);
 *   half-open   admits half_open_calls trial calls and rejects the rest;
 *               after that many trial outcomes it reopens (next wait step)
 *               when their failure rate (or slow rate, with that policy) is
 *               >= its threshold, else closes and forgets past openings;
 *   emergency   entered from any state but the forced ones when a risk
 *               reading is >= emergency_threshold; rejects every call; left
 *               only through half-open, once its wait has elapsed AND the
 *               last risk reading is below the threshold;
 *   forced-open rejects every call, set by rs_breaker_force or by the control
 *               block (RS_FORCE_OPEN);
 *   disabled    admits every call, set the same ways (RS_FORCE_CLOSED);
 *               outcomes are still counted.
 * A force from the control block wins over one set by rs_breaker_force;
 * removing the force returns the breaker to closed with an empty window.
 *
 * Every transition is reported once, as a struct rs_breaker_event, to the
 * optional on_transition callback, from the thread that made it.
 *
 * Threads: allow, record, risk, force, state, stats and expo may be called
 * from any number of threads at once.  In the closed state allow and record
 * take no lock (one RMW per successful call); other transitions are made
 * by compare-and-swap, and while one is in progress (a few hundred ns)
 * allow rejects.  The outcome of a call is judged in the state the breaker
 * is in when it is recorded.  Callbacks may run concurrently on different
 * threads for successive transitions.  rs_breaker_free is not concurrent
 * with anything.
 */
#ifndef RESILIENCE_BREAKER_H
#define RESILIENCE_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

#include "resilience/alloc.h"
#include "resilience/control.h"
#include "resilience/err.h"
#include "resilience/expo.h"
#include "resilience/window.h"

/* The numeric values are the resilience_breaker_state gauge's. */
enum rs_breaker_state {
	RS_BREAKER_CLOSED = 0,
	RS_BREAKER_HALF_OPEN = 1,
	RS_BREAKER_OPEN = 2,
	RS_BREAKER_EMERGENCY = 3,
	RS_BREAKER_FORCED_OPEN = 4,
	RS_BREAKER_DISABLED = 5,
};

#define RS_BREAKER_NSTATES    6
#define RS_BREAKER_NAME_MAX   48 /* including the NUL: names are 1..47 bytes */
#define RS_BREAKER_MAX_TRIALS 1024u

/* Why a transition happened. */
enum rs_breaker_reason {
	RS_BREAKER_CONSECUTIVE_FAILURES = 0, /* closed -> open */
	RS_BREAKER_FAILURE_RATE = 1,	     /* closed -> open */
	RS_BREAKER_SLOW_RATE = 2,	     /* closed -> open */
	RS_BREAKER_WAIT_ELAPSED = 3,	     /* open/emergency -> half-open */
	RS_BREAKER_TRIALS_FAILED = 4,	     /* half-open -> open */
	RS_BREAKER_TRIALS_PASSED = 5,	     /* half-open -> closed */
	RS_BREAKER_RISK = 6,		     /* -> emergency */
	RS_BREAKER_FORCED = 7,		     /* -> forced-open or disabled */
	RS_BREAKER_UNFORCED = 8,	     /* forced-open/disabled -> closed */
};

struct rs_breaker_event {
	const char *name; /* the breaker's; borrowed for the callback's duration */
	enum rs_breaker_state from, to;
	enum rs_breaker_reason reason;
	uint64_t now_ns;  /* the now_ns of the call that made the transition */
	uint64_t wait_ns; /* to open/emergency: time until half-open may start; else 0 */
	/* e.g. "failure rate 50.0% >= 50.0% over 100 calls"; NUL-terminated,
	 * valid for the callback's duration */
	char text[96];
};

/* Called once per transition by the thread that made it, after the new state
 * is visible.  It may call rs_breaker_state/stats but should not block; it
 * must not free the breaker. */
typedef void (*rs_breaker_event_fn)(void *ctx, const struct rs_breaker_event *ev);

struct rs_breaker_opts {
	const char *name;	      /* required, 1..47 bytes; copied */
	const struct rs_alloc *alloc; /* NULL: libc; borrowed, must outlive the breaker */
	uint64_t seed;		      /* seeds the jitter rng */
	/* NULL: none.  Else borrowed, must outlive the breaker: the breaker
	 * claims the slot named `name` at construction and obeys its force, and
	 * takes the block's jitter switch. */
	struct rs_control *control;

	/* Trip policies, judged in the closed state; at least one of them (or
	 * emergency_threshold) must be set.  0 turns a policy off. */
	uint32_t consecutive_failures; /* open at the Nth failure in a row */
	double failure_rate_threshold; /* (0, 1]: open when failures/calls >= it */
	double slow_rate_threshold;    /* (0, 1]: open when slow/calls >= it */
	uint64_t slow_call_ns;	       /* a call is slow when duration_ns > it; 0: none */
	/* The window the two rate policies use: required with either, not
	 * allowed without.  COUNT: the last window_size calls.  TIME: the last
	 * window_ns in window_buckets buckets (window_ns a multiple of them). */
	enum rs_window_kind window_kind;
	uint32_t window_size;
	uint64_t window_ns;
	uint32_t window_buckets;
	uint32_t minimum_calls; /* >= 1 (<= window_size): no rate is judged below it */

	/* Open state: the kth consecutive opening waits
	 * min(open_ns * open_multiplier^(k-1), open_max_ns) * (1 + U(-j, +j)). */
	uint64_t open_ns;	/* > 0 */
	double open_multiplier; /* 0 or 1: fixed wait; else >= 1 */
	uint64_t open_max_ns;	/* 0: no cap; else >= open_ns */
	double open_jitter;	/* j in [0, 1) */

	/* Half-open state. */
	uint32_t half_open_calls; /* trial calls, 1..RS_BREAKER_MAX_TRIALS */
	/* (0, 1]: reopen when trial failures / half_open_calls >= it.  0: use
	 * failure_rate_threshold, or when that is off, reopen on any failure. */
	double half_open_failure_threshold;

	/* > 0: rs_breaker_risk readings >= it put the breaker in emergency.
	 * 0: off. */
	double emergency_threshold;

	rs_breaker_event_fn on_transition; /* NULL: no events */
	void *ctx;			   /* passed to on_transition; borrowed */
};

struct rs_breaker;

/* Creates a closed breaker.  Every option is validated (-EINVAL, with
 * "breaker: <field> ..." in err); -ENOMEM when an allocation fails; the
 * control block's errors (-ENOSPC: no free breaker slot) pass through.
 * Nothing leaks on failure.  On success *out is caller-frees with
 * rs_breaker_free. */
int rs_breaker_new(struct rs_breaker **out, const struct rs_breaker_opts *opts,
		   struct rs_err *err) RS_WUR;

/* Frees the breaker; accepts NULL.  Its control-block slot stays claimed. */
void rs_breaker_free(struct rs_breaker *b);

/* 1 when a call may go ahead at now_ns, 0 when it is rejected (counted as
 * result "rejected").  Moves open or emergency to half-open once the wait
 * has elapsed (the call that does it is the first trial) and applies a
 * control-block force.  Every admitted call should be followed by one
 * rs_breaker_record.  Any thread; lock-free while closed. */
int rs_breaker_allow(struct rs_breaker *b, uint64_t now_ns);

/* Reports an admitted call's outcome: failed or not, how long it took, and
 * when it ended.  May trip closed -> open or end the half-open trials.  Any
 * thread; lock-free while closed. */
void rs_breaker_record(struct rs_breaker *b, bool failure, uint64_t duration_ns, uint64_t now_ns);

/* Feeds a risk reading (e.g. a metastability detector's score).  At or
 * above emergency_threshold the breaker enters emergency from closed,
 * half-open or open; the last reading decides whether emergency may end.
 * -EINVAL for NaN (the reading is ignored).  Any thread. */
int rs_breaker_risk(struct rs_breaker *b, double risk, uint64_t now_ns) RS_WUR;

/* Forces the breaker open (RS_FORCE_OPEN -> forced-open), closed
 * (RS_FORCE_CLOSED -> disabled) or releases it (RS_FORCE_NONE -> closed).
 * A control-block force, while set, takes precedence.  -EINVAL for another
 * value.  Any thread. */
int rs_breaker_force(struct rs_breaker *b, enum rs_control_force force, uint64_t now_ns) RS_WUR;

/* The state allow() acts on now (a control-block force not yet applied by
 * an allow() already counts).  Any thread. */
enum rs_breaker_state rs_breaker_state(const struct rs_breaker *b);

/* The breaker's name (borrowed, valid until free). */
const char *rs_breaker_name(const struct rs_breaker *b);

/* The window of the rate policies (borrowed, valid until free), or NULL when
 * no rate policy is set.  For inspection with rs_window_snapshot. */
const struct rs_window *rs_breaker_window(const struct rs_breaker *b);

/* Bytes of the breaker object itself, without its window's slot or bucket
 * array (rs_window_bytes of rs_breaker_window). */
size_t rs_breaker_bytes(const struct rs_breaker *b);

enum rs_breaker_result {
	RS_BREAKER_RESULT_SUCCESS = 0,	/* succeeded, not slow */
	RS_BREAKER_RESULT_FAILURE = 1,	/* failed (slow or not) */
	RS_BREAKER_RESULT_SLOW = 2,	/* succeeded but slow */
	RS_BREAKER_RESULT_REJECTED = 3, /* refused by allow() */
};

struct rs_breaker_stats {
	uint64_t calls[4]; /* by enum rs_breaker_result; they partition all calls */
	uint64_t transitions[RS_BREAKER_NSTATES][RS_BREAKER_NSTATES]; /* [from][to] */
};

/* Counters since creation.  Each value is monotonic across reads; while
 * other threads record, the success count may trail by the calls in flight.
 * Transition counts are kept in 32 bits per pair (they wrap after 2^32
 * transitions of one pair).  Any thread. */
void rs_breaker_stats(struct rs_breaker *b, struct rs_breaker_stats *out);

/* Writes, for the n breakers, resilience_breaker_state{name} (gauge),
 * resilience_breaker_transitions_total{name,from,to} (counter, nonzero
 * pairs only) and resilience_breaker_calls_total{name,result} (counter,
 * results success/failure/slow/rejected), each family once.  The breakers
 * are borrowed; any thread, concurrently with their use. */
void rs_breaker_expo(struct rs_expo *e, struct rs_breaker *const *b, size_t n);

/* "closed", "half_open", "open", "emergency", "forced_open", "disabled"
 * (the label values), or "unknown". */
const char *rs_breaker_state_name(enum rs_breaker_state s);

#endif
