#include "resilience/breaker.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "resilience/rng.h"

/*
 * The state word: bits 0-2 the state, bit 3 set while a transition is being
 * made (bits 4-6 then name its target), bits 32-63 a generation bumped by
 * every transition so that a decision taken on an old state cannot land on
 * a newer one.  CLOSED is 0, so "closed and nothing forced" is a single
 * test of (force | (state & 15)) == 0 on the hot path.
 *
 * A transition is a CAS from the observed word to BUSY; the winner then
 * owns the breaker's transition data (rng, openings, until, trial), updates
 * it, publishes the new state and delivers the event.  Whoever sees BUSY
 * does not wait: allow() rejects, record() only counts.
 *
 * Call counters: closed-state outcomes are counted by the window's position
 * (its one RMW), the others by `other`; failures and slow successes have
 * their own counters, incremented before the total so that a reader who
 * reads the totals first never sees more successes than there were.
 * Successes are derived, and `success_seen` keeps what was reported
 * monotonic.
 */

#define ST_MASK	    7ull
#define ST_BUSY	    8ull
#define ST_TO_SHIFT 4
#define ST_GEN_ONE  (1ull << 32)
#define ST_HOT_MASK 15ull

/* Half-open bookkeeping, one word: admitted, done, failed, slow (16 bits each). */
#define TR_ADMIT	   1ull
#define TR_DONE		   (1ull << 16)
#define TR_FAIL		   (1ull << 32)
#define TR_SLOW		   (1ull << 48)
#define TR_FIELD(t, shift) ((uint32_t)(((t) >> (shift)) & 0xffff))

#define PPM		   1000000ull

/* The transitions that can happen, as indices into rs_breaker.transitions. */
static const signed char trans_index[RS_BREAKER_NSTATES][RS_BREAKER_NSTATES] = {
	/* from closed */ { -1, -1, 0, 1, 2, 3 },
	/* half-open   */ { 4, -1, 5, 6, 7, 8 },
	/* open        */ { -1, 9, -1, 10, 11, 12 },
	/* emergency   */ { -1, 13, -1, -1, 14, 15 },
	/* forced-open */ { 16, -1, -1, -1, -1, 17 },
	/* disabled    */ { 18, -1, -1, -1, 19, -1 },
};
#define NTRANS 20

struct rs_breaker {
	/* Written by every closed-state call. */
	struct rs_window win;
	_Atomic uint32_t consec;    /* failures in a row (closed) */
	_Atomic uint32_t api_force; /* enum rs_control_force from rs_breaker_force */
	_Atomic uint64_t other;	    /* outcomes not counted by the window */

	/* Read by every call, written by transitions. */
	_Atomic uint64_t state;
	const _Atomic uint32_t *force; /* control-block slot, or NULL */
	uint64_t slow_ns;	       /* UINT64_MAX: no call is slow */
	uint32_t min_calls, consec_n;
	uint32_t fail_ppm, slow_ppm; /* 0: policy off */
	uint32_t trial_n, trial_ppm;
	double emergency;	/* 0: off */
	_Atomic uint64_t until; /* open/emergency: half-open allowed from here */
	_Atomic uint64_t trial; /* TR_* */
	_Atomic uint64_t risk;	/* bits of the last risk reading */

	/* Counters. */
	_Atomic uint64_t failures, slow, rejected, success_seen;
	_Atomic uint32_t transitions[NTRANS];

	/* Owned by the thread making a transition. */
	struct rs_rng rng;
	uint32_t openings; /* consecutive openings since the last close */
	uint64_t open_ns, open_max_ns;
	double multiplier, jitter;

	const struct rs_control_block *ctl;
	rs_breaker_event_fn on_transition;
	void *ctx;
	const struct rs_alloc *alloc;
	char name[RS_BREAKER_NAME_MAX];
};

struct why {
	enum rs_breaker_reason reason;
	char text[96];
};

static void why_set(struct why *w, enum rs_breaker_reason r, const char *fmt, ...) RS_PRINTF(3, 4);

static void why_set(struct why *w, enum rs_breaker_reason r, const char *fmt, ...)
{
	va_list ap;

	w->reason = r;
	va_start(ap, fmt);
	vsnprintf(w->text, sizeof(w->text), fmt, ap);
	va_end(ap);
}

const char *rs_breaker_state_name(enum rs_breaker_state s)
{
	static const char *const names[RS_BREAKER_NSTATES] = {
		"closed", "half_open", "open", "emergency", "forced_open", "disabled",
	};

	return (unsigned)s < RS_BREAKER_NSTATES ? names[s] : "unknown";
}

/* ---- construction ------------------------------------------------------ */

static int ratio_ok(double v)
{
	return v == 0 || (v >= 1e-6 && v <= 1);
}

static uint32_t to_ppm(double v)
{
	return (uint32_t)llround(v * (double)PPM);
}

static int check_window(const struct rs_breaker_opts *o, struct rs_err *err)
{
	switch (o->window_kind) {
	case RS_WINDOW_COUNT:
		if (o->window_size < 1 || o->window_size > RS_WINDOW_MAX_SIZE)
			return rs__einval(err, "breaker: window_size must be in [1, %u], got %u",
					  RS_WINDOW_MAX_SIZE, o->window_size);
		if (o->minimum_calls < 1 || o->minimum_calls > o->window_size)
			return rs__einval(
			    err, "breaker: minimum_calls must be in [1, window_size %u], got %u",
			    o->window_size, o->minimum_calls);
		return 0;
	case RS_WINDOW_TIME:
		if (o->window_ns == 0)
			return rs__einval(err, "breaker: window_ns must be > 0, got 0");
		if (o->window_buckets < 1 || o->window_buckets > RS_WINDOW_MAX_BUCKETS)
			return rs__einval(err, "breaker: window_buckets must be in [1, %u], got %u",
					  RS_WINDOW_MAX_BUCKETS, o->window_buckets);
		if (o->window_ns % o->window_buckets != 0)
			return rs__einval(
			    err,
			    "breaker: window_ns must be a multiple of window_buckets (%u), "
			    "got %llu",
			    o->window_buckets, (unsigned long long)o->window_ns);
		if (o->minimum_calls < 1)
			return rs__einval(err, "breaker: minimum_calls must be >= 1, got 0");
		return 0;
	default:
		return rs__einval(err,
				  "breaker: window_kind must be count (1) or time (2) when a rate "
				  "policy is set, got %d",
				  (int)o->window_kind);
	}
}

static int check_opts(const struct rs_breaker_opts *o, struct rs_err *err)
{
	size_t len;
	int rates, rc;

	if (!o)
		return rs__einval(err, "breaker: options are NULL");
	len = o->name ? strlen(o->name) : 0;
	if (len < 1 || len >= RS_BREAKER_NAME_MAX)
		return rs__einval(err, "breaker: name must be 1 to %d bytes, got %zu",
				  RS_BREAKER_NAME_MAX - 1, len);
	if (!ratio_ok(o->failure_rate_threshold))
		return rs__einval(
		    err,
		    "breaker: failure_rate_threshold must be 0 (off) or in [1e-06, 1], "
		    "got %g",
		    o->failure_rate_threshold);
	if (!ratio_ok(o->slow_rate_threshold))
		return rs__einval(
		    err, "breaker: slow_rate_threshold must be 0 (off) or in [1e-06, 1], got %g",
		    o->slow_rate_threshold);
	if (o->slow_rate_threshold != 0 && o->slow_call_ns == 0)
		return rs__einval(
		    err, "breaker: slow_call_ns must be > 0 when slow_rate_threshold is set, "
			 "got 0");
	rates = o->failure_rate_threshold != 0 || o->slow_rate_threshold != 0;
	if (rates) {
		rc = check_window(o, err);
		if (rc)
			return rc;
	} else if (o->window_kind != RS_WINDOW_NONE) {
		return rs__einval(err,
				  "breaker: window_kind is %d but no rate policy uses a window "
				  "(failure_rate_threshold and slow_rate_threshold are 0)",
				  (int)o->window_kind);
	}
	if (!(o->emergency_threshold == 0 ||
	      (isfinite(o->emergency_threshold) && o->emergency_threshold > 0)))
		return rs__einval(
		    err, "breaker: emergency_threshold must be 0 (off) or finite and > 0, got %g",
		    o->emergency_threshold);
	if (!rates && o->consecutive_failures == 0 && o->emergency_threshold == 0)
		return rs__einval(err, "breaker: no trip policy: set consecutive_failures, "
				       "failure_rate_threshold, slow_rate_threshold or "
				       "emergency_threshold");
	if (o->open_ns == 0)
		return rs__einval(err, "breaker: open_ns must be > 0, got 0");
	if (!(o->open_multiplier == 0 || (isfinite(o->open_multiplier) && o->open_multiplier >= 1)))
		return rs__einval(
		    err, "breaker: open_multiplier must be 0 (fixed) or finite and >= 1, got %g",
		    o->open_multiplier);
	if (o->open_max_ns != 0 && o->open_max_ns < o->open_ns)
		return rs__einval(
		    err, "breaker: open_max_ns must be 0 (no cap) or >= open_ns (%llu), got %llu",
		    (unsigned long long)o->open_ns, (unsigned long long)o->open_max_ns);
	if (!(o->open_jitter >= 0 && o->open_jitter < 1))
		return rs__einval(err, "breaker: open_jitter must be in [0, 1), got %g",
				  o->open_jitter);
	if (o->half_open_calls < 1 || o->half_open_calls > RS_BREAKER_MAX_TRIALS)
		return rs__einval(err, "breaker: half_open_calls must be in [1, %u], got %u",
				  RS_BREAKER_MAX_TRIALS, o->half_open_calls);
	if (!ratio_ok(o->half_open_failure_threshold))
		return rs__einval(err,
				  "breaker: half_open_failure_threshold must be 0 (default) or in "
				  "[1e-06, 1], got %g",
				  o->half_open_failure_threshold);
	return 0;
}

int rs_breaker_new(struct rs_breaker **out, const struct rs_breaker_opts *o, struct rs_err *err)
{
	struct rs_breaker *b;
	int rc;

	*out = NULL;
	rc = check_opts(o, err);
	if (rc)
		return rc;
	b = rs__calloc(o->alloc, 1, sizeof(*b));
	if (!b)
		return rs__enomem(err, "breaker");
	b->alloc = o->alloc;
	memcpy(b->name, o->name, strlen(o->name) + 1);
	if (o->window_kind != RS_WINDOW_NONE) {
		struct rs_window_opts wo = {
			.alloc = o->alloc,
			.kind = o->window_kind,
			.size = o->window_size,
			.length_ns = o->window_ns,
			.buckets = o->window_buckets,
		};

		rc = rs_window_init(&b->win, &wo, err);
		if (rc) {
			if (rc == -ENOMEM)
				rc = rs__enomem(err, "breaker");
			goto fail;
		}
	}
	if (o->control) {
		rc = rs_control_breaker_slot(o->control, b->name, &b->force, err);
		if (rc)
			goto fail;
		b->ctl = rs_control_block(o->control);
	}
	b->slow_ns = o->slow_call_ns ? o->slow_call_ns : UINT64_MAX;
	b->min_calls = o->minimum_calls;
	b->consec_n = o->consecutive_failures;
	b->fail_ppm = to_ppm(o->failure_rate_threshold);
	b->slow_ppm = to_ppm(o->slow_rate_threshold);
	b->trial_n = o->half_open_calls;
	if (o->half_open_failure_threshold != 0)
		b->trial_ppm = to_ppm(o->half_open_failure_threshold);
	else if (o->failure_rate_threshold != 0)
		b->trial_ppm = b->fail_ppm;
	else
		b->trial_ppm = 1; /* any failure among the trials */
	b->emergency = o->emergency_threshold;
	b->open_ns = o->open_ns;
	b->open_max_ns = o->open_max_ns;
	b->multiplier = o->open_multiplier == 0 ? 1 : o->open_multiplier;
	b->jitter = o->open_jitter;
	rs_rng_seed(&b->rng, o->seed);
	b->on_transition = o->on_transition;
	b->ctx = o->ctx;
	*out = b;
	return 0;
fail:
	rs_window_release(&b->win);
	rs__free(o->alloc, b);
	return rc;
}

void rs_breaker_free(struct rs_breaker *b)
{
	if (!b)
		return;
	rs_window_release(&b->win);
	rs__free(b->alloc, b);
}

/* ---- transitions ------------------------------------------------------- */

static double load_risk(struct rs_breaker *b)
{
	uint64_t bits = atomic_load(&b->risk);
	double r;

	memcpy(&r, &bits, sizeof(r));
	return r;
}

/* The kth consecutive opening's wait (k = b->openings >= 1). */
static uint64_t open_wait(struct rs_breaker *b)
{
	double w = (double)b->open_ns;

	if (b->multiplier > 1)
		w *= pow(b->multiplier, (double)(b->openings - 1));
	if (b->open_max_ns && w > (double)b->open_max_ns)
		w = (double)b->open_max_ns;
	if (b->jitter > 0 && rs_control_jitter_enabled(b->ctl))
		w *= 1 + b->jitter * (2 * rs_rng_double(&b->rng) - 1);
	if (!(w < 18446744073709551615.0))
		return UINT64_MAX;
	return (uint64_t)(w + 0.5);
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Moves the breaker from the observed word `seen` to `to`; true when this
 * thread won the CAS and made (and reported) the transition. */
static int transition(struct rs_breaker *b, uint64_t seen, enum rs_breaker_state to,
		      const struct why *why, uint64_t now_ns)
{
	enum rs_breaker_state from = (enum rs_breaker_state)(seen & ST_MASK);
	uint64_t busy = (seen & ~(ST_HOT_MASK | (ST_MASK << ST_TO_SHIFT))) | from | ST_BUSY |
			((uint64_t)to << ST_TO_SHIFT);
	struct rs_breaker_event ev;
	int idx = trans_index[from][to];
	uint64_t wait = 0;

	if ((seen & ST_BUSY) || idx < 0)
		return 0;
	if (to == RS_BREAKER_CLOSED) {
		/* Nobody uses the window outside closed, so empty it before the
		 * CAS: the closed state starts fresh without a long BUSY. */
		rs_window_reset(&b->win, now_ns);
		atomic_store_explicit(&b->consec, 0, memory_order_relaxed);
	}
	if (!atomic_compare_exchange_strong_explicit(&b->state, &seen, busy, memory_order_acq_rel,
						     memory_order_relaxed))
		return 0;
	switch (to) {
	case RS_BREAKER_OPEN:
	case RS_BREAKER_EMERGENCY:
		b->openings++;
		wait = open_wait(b);
		atomic_store_explicit(&b->until, sat_add(now_ns, wait), memory_order_relaxed);
		break;
	case RS_BREAKER_HALF_OPEN:
		atomic_store_explicit(&b->trial, 0, memory_order_relaxed);
		break;
	case RS_BREAKER_CLOSED:
		b->openings = 0;
		break;
	default:
		break;
	}
	atomic_store_explicit(&b->transitions[idx],
			      atomic_load_explicit(&b->transitions[idx], memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_store(&b->state, (seen & ~(ST_HOT_MASK | (ST_MASK << ST_TO_SHIFT))) + ST_GEN_ONE +
				    (uint64_t)to);
	if (b->on_transition) {
		ev.name = b->name;
		ev.from = from;
		ev.to = to;
		ev.reason = why->reason;
		ev.now_ns = now_ns;
		ev.wait_ns = wait;
		memcpy(ev.text, why->text, sizeof(ev.text));
		b->on_transition(b->ctx, &ev);
	}
	return 1;
}

static enum rs_control_force wanted_force(struct rs_breaker *b, int *by_control)
{
	enum rs_control_force f = rs_control_force_read(b->force);

	*by_control = f != RS_FORCE_NONE;
	if (f == RS_FORCE_NONE)
		f = (enum rs_control_force)atomic_load(&b->api_force);
	return f;
}

/* The transition a force (or its removal) calls for from state s, or -1. */
static int forced_target(struct rs_breaker *b, enum rs_breaker_state s, struct why *why)
{
	int by_control;
	enum rs_control_force f = wanted_force(b, &by_control);
	const char *by = by_control ? "the control block" : "rs_breaker_force";

	if (f == RS_FORCE_OPEN && s != RS_BREAKER_FORCED_OPEN) {
		why_set(why, RS_BREAKER_FORCED, "forced open by %s", by);
		return RS_BREAKER_FORCED_OPEN;
	}
	if (f == RS_FORCE_CLOSED && s != RS_BREAKER_DISABLED) {
		why_set(why, RS_BREAKER_FORCED, "forced closed by %s", by);
		return RS_BREAKER_DISABLED;
	}
	if (f == RS_FORCE_NONE && (s == RS_BREAKER_FORCED_OPEN || s == RS_BREAKER_DISABLED)) {
		why_set(why, RS_BREAKER_UNFORCED, "force released");
		return RS_BREAKER_CLOSED;
	}
	return -1;
}

/* Makes the transitions that forces and the risk reading call for.  Called
 * after every transition and by risk/force: if a transition is in progress,
 * its maker will call this after publishing (the seq_cst store of the state
 * and load of the inputs, against the inputs' seq_cst stores and the load of
 * the state here, make sure one of the two sees the other). */
static void settle(struct rs_breaker *b, uint64_t now_ns)
{
	for (int tries = 0; tries < 16; tries++) {
		uint64_t st = atomic_load(&b->state);
		enum rs_breaker_state s = (enum rs_breaker_state)(st & ST_MASK);
		struct why why;
		double risk;
		int to;

		if (st & ST_BUSY)
			return;
		to = forced_target(b, s, &why);
		if (to < 0 && b->emergency > 0 && s != RS_BREAKER_EMERGENCY &&
		    s != RS_BREAKER_FORCED_OPEN && s != RS_BREAKER_DISABLED) {
			risk = load_risk(b);
			if (risk >= b->emergency) {
				why_set(&why, RS_BREAKER_RISK, "risk %.3g >= %.3g", risk,
					b->emergency);
				to = RS_BREAKER_EMERGENCY;
			}
		}
		if (to < 0)
			return;
		transition(b, st, (enum rs_breaker_state)to, &why, now_ns);
	}
}

static void move(struct rs_breaker *b, uint64_t seen, enum rs_breaker_state to,
		 const struct why *why, uint64_t now_ns)
{
	if (transition(b, seen, to, why, now_ns))
		settle(b, now_ns);
}

/* ---- the hot path ------------------------------------------------------ */

static int take_trial(struct rs_breaker *b)
{
	uint64_t t = atomic_load_explicit(&b->trial, memory_order_relaxed);

	if (TR_FIELD(t, 0) >= b->trial_n)
		return 0;
	t = atomic_fetch_add_explicit(&b->trial, TR_ADMIT, memory_order_relaxed);
	return TR_FIELD(t, 0) < b->trial_n;
}

static int allow_slow(struct rs_breaker *b, uint64_t now_ns)
{
	for (int tries = 0; tries < 16; tries++) {
		uint64_t st = atomic_load(&b->state);
		enum rs_breaker_state s = (enum rs_breaker_state)(st & ST_MASK);
		struct why why;
		int to;

		if (st & ST_BUSY)
			break;
		to = forced_target(b, s, &why);
		if (to >= 0) {
			move(b, st, (enum rs_breaker_state)to, &why, now_ns);
			continue;
		}
		switch (s) {
		case RS_BREAKER_CLOSED:
		case RS_BREAKER_DISABLED:
			return 1;
		case RS_BREAKER_HALF_OPEN:
			if (take_trial(b))
				return 1;
			goto reject;
		case RS_BREAKER_OPEN:
		case RS_BREAKER_EMERGENCY: {
			uint64_t until = atomic_load_explicit(&b->until, memory_order_relaxed);
			double risk = load_risk(b);

			if (now_ns < until)
				goto reject;
			if (s == RS_BREAKER_EMERGENCY) {
				if (!(risk < b->emergency))
					goto reject;
				why_set(&why, RS_BREAKER_WAIT_ELAPSED,
					"wait elapsed and risk %.3g < %.3g", risk, b->emergency);
			} else {
				why_set(&why, RS_BREAKER_WAIT_ELAPSED, "wait elapsed");
			}
			move(b, st, RS_BREAKER_HALF_OPEN, &why, now_ns);
			continue;
		}
		default:
			goto reject;
		}
	}
reject:
	atomic_fetch_add_explicit(&b->rejected, 1, memory_order_relaxed);
	return 0;
}

int rs_breaker_allow(struct rs_breaker *b, uint64_t now_ns)
{
	uint32_t f = b->force ? atomic_load_explicit(b->force, memory_order_relaxed) : 0;
	uint64_t st = atomic_load_explicit(&b->state, memory_order_relaxed);

	if ((f | (st & ST_HOT_MASK)) == 0)
		return 1;
	return allow_slow(b, now_ns);
}

/* The N-th trial outcome decides between reopening and closing. */
static void trial_record(struct rs_breaker *b, uint64_t st, unsigned o, uint64_t now_ns)
{
	uint64_t t = atomic_load_explicit(&b->trial, memory_order_relaxed);
	uint64_t add = TR_DONE;
	uint64_t n = b->trial_n, fails, slows;
	double thr = 100.0 * b->trial_ppm / PPM;
	struct why why;

	if (TR_FIELD(t, 16) >= n)
		return;
	if (o & RS_WINDOW_FAILURE)
		add += TR_FAIL;
	if (o & RS_WINDOW_SLOW)
		add += TR_SLOW;
	t = atomic_fetch_add_explicit(&b->trial, add, memory_order_relaxed) + add;
	if (TR_FIELD(t, 16) != n)
		return;
	fails = TR_FIELD(t, 32);
	slows = TR_FIELD(t, 48);
	if (fails * PPM >= (uint64_t)b->trial_ppm * n) {
		why_set(&why, RS_BREAKER_TRIALS_FAILED,
			"trial failure rate %.1f%% >= %.1f%% over %llu calls", 100.0 * fails / n,
			thr, (unsigned long long)n);
		move(b, st, RS_BREAKER_OPEN, &why, now_ns);
	} else if (b->slow_ppm && slows * PPM >= (uint64_t)b->slow_ppm * n) {
		why_set(&why, RS_BREAKER_TRIALS_FAILED,
			"trial slow-call rate %.1f%% >= %.1f%% over %llu calls", 100.0 * slows / n,
			100.0 * b->slow_ppm / PPM, (unsigned long long)n);
		move(b, st, RS_BREAKER_OPEN, &why, now_ns);
	} else {
		why_set(&why, RS_BREAKER_TRIALS_PASSED,
			"trial failure rate %.1f%% < %.1f%% over %llu calls", 100.0 * fails / n,
			thr, (unsigned long long)n);
		move(b, st, RS_BREAKER_CLOSED, &why, now_ns);
	}
}

static void check_rates(struct rs_breaker *b, uint64_t st, uint64_t now_ns)
{
	struct rs_window_counts c;
	uint64_t n;
	struct why why;

	rs_window_snapshot(&b->win, now_ns, &c);
	n = c.calls - c.rejected;
	if (n < b->min_calls)
		return;
	if (b->fail_ppm && c.failures * PPM >= (uint64_t)b->fail_ppm * n) {
		why_set(&why, RS_BREAKER_FAILURE_RATE,
			"failure rate %.1f%% >= %.1f%% over %llu calls", 100.0 * c.failures / n,
			100.0 * b->fail_ppm / PPM, (unsigned long long)n);
		move(b, st, RS_BREAKER_OPEN, &why, now_ns);
	} else if (b->slow_ppm && c.slow * PPM >= (uint64_t)b->slow_ppm * n) {
		why_set(&why, RS_BREAKER_SLOW_RATE,
			"slow-call rate %.1f%% >= %.1f%% over %llu calls", 100.0 * c.slow / n,
			100.0 * b->slow_ppm / PPM, (unsigned long long)n);
		move(b, st, RS_BREAKER_OPEN, &why, now_ns);
	}
}

void rs_breaker_record(struct rs_breaker *b, bool failure, uint64_t duration_ns, uint64_t now_ns)
{
	unsigned o =
	    (failure ? RS_WINDOW_FAILURE : 0) | (duration_ns > b->slow_ns ? RS_WINDOW_SLOW : 0);
	uint64_t st = atomic_load_explicit(&b->state, memory_order_acquire), seq = 0;

	/* Failures and slow successes are counted before the total (see top). */
	if (o & RS_WINDOW_FAILURE)
		atomic_fetch_add_explicit(&b->failures, 1, memory_order_relaxed);
	else if (o)
		atomic_fetch_add_explicit(&b->slow, 1, memory_order_relaxed);
	if ((st & ST_HOT_MASK) != RS_BREAKER_CLOSED) {
		atomic_fetch_add_explicit(&b->other, 1, memory_order_release);
		if ((st & ST_HOT_MASK) == RS_BREAKER_HALF_OPEN)
			trial_record(b, st, o, now_ns);
		return;
	}
	if (b->win.kind == RS_WINDOW_COUNT)
		seq = rs__window_count_record(&b->win, o);
	else if (b->win.kind)
		seq = rs_window_record(&b->win, o, now_ns);
	else
		atomic_fetch_add_explicit(&b->other, 1, memory_order_release);
	if (b->consec_n) {
		if (failure) {
			uint32_t c =
			    atomic_fetch_add_explicit(&b->consec, 1, memory_order_relaxed) + 1;

			if (c >= b->consec_n) {
				struct why why;

				why_set(&why, RS_BREAKER_CONSECUTIVE_FAILURES,
					"%u consecutive failures >= %u", c, b->consec_n);
				move(b, st, RS_BREAKER_OPEN, &why, now_ns);
				return;
			}
		} else if (atomic_load_explicit(&b->consec, memory_order_relaxed)) {
			atomic_store_explicit(&b->consec, 0, memory_order_relaxed);
		}
	}
	if (b->win.kind && (o || !rs_window_was_full(&b->win, seq)))
		check_rates(b, st, now_ns);
}

/* ---- risk, force, inspection ------------------------------------------- */

int rs_breaker_risk(struct rs_breaker *b, double risk, uint64_t now_ns)
{
	uint64_t bits;

	if (isnan(risk))
		return -EINVAL;
	memcpy(&bits, &risk, sizeof(bits));
	atomic_store(&b->risk, bits);
	if (b->emergency > 0 && risk >= b->emergency)
		settle(b, now_ns);
	return 0;
}

int rs_breaker_force(struct rs_breaker *b, enum rs_control_force force, uint64_t now_ns)
{
	if (force != RS_FORCE_NONE && force != RS_FORCE_OPEN && force != RS_FORCE_CLOSED)
		return -EINVAL;
	atomic_store(&b->api_force, (uint32_t)force);
	settle(b, now_ns);
	return 0;
}

enum rs_breaker_state rs_breaker_state(const struct rs_breaker *b)
{
	struct rs_breaker *m = (struct rs_breaker *)b;
	uint64_t st = atomic_load_explicit(&m->state, memory_order_acquire);
	enum rs_control_force f = rs_control_force_read(b->force);

	if (f == RS_FORCE_OPEN)
		return RS_BREAKER_FORCED_OPEN;
	if (f == RS_FORCE_CLOSED)
		return RS_BREAKER_DISABLED;
	if (st & ST_BUSY)
		return (enum rs_breaker_state)((st >> ST_TO_SHIFT) & ST_MASK);
	return (enum rs_breaker_state)(st & ST_MASK);
}

const char *rs_breaker_name(const struct rs_breaker *b)
{
	return b->name;
}

const struct rs_window *rs_breaker_window(const struct rs_breaker *b)
{
	return b->win.kind ? &b->win : NULL;
}

size_t rs_breaker_bytes(const struct rs_breaker *b)
{
	(void)b;
	return sizeof(struct rs_breaker);
}

void rs_breaker_stats(struct rs_breaker *b, struct rs_breaker_stats *out)
{
	uint64_t total, bad, succ, seen;

	memset(out, 0, sizeof(*out));
	/* Totals first: every failure or slow success they include is already
	 * in its own counter, so the difference never overstates successes. */
	total = (b->win.kind ? rs_window_total(&b->win) : 0) +
		atomic_load_explicit(&b->other, memory_order_acquire);
	out->calls[RS_BREAKER_RESULT_FAILURE] = atomic_load(&b->failures);
	out->calls[RS_BREAKER_RESULT_SLOW] = atomic_load(&b->slow);
	out->calls[RS_BREAKER_RESULT_REJECTED] = atomic_load(&b->rejected);
	bad = out->calls[RS_BREAKER_RESULT_FAILURE] + out->calls[RS_BREAKER_RESULT_SLOW];
	succ = total > bad ? total - bad : 0;
	seen = atomic_load(&b->success_seen);
	while (succ > seen && !atomic_compare_exchange_weak(&b->success_seen, &seen, succ))
		;
	out->calls[RS_BREAKER_RESULT_SUCCESS] = succ > seen ? succ : seen;
	for (int f = 0; f < RS_BREAKER_NSTATES; f++)
		for (int t = 0; t < RS_BREAKER_NSTATES; t++)
			if (trans_index[f][t] >= 0)
				out->transitions[f][t] = atomic_load_explicit(
				    &b->transitions[trans_index[f][t]], memory_order_relaxed);
}

void rs_breaker_expo(struct rs_expo *e, struct rs_breaker *const *bs, size_t n)
{
	static const char *const results[4] = { "success", "failure", "slow", "rejected" };
	struct rs_breaker_stats s;

	rs_expo_family(e, "resilience_breaker_state", RS_EXPO_GAUGE,
		       "circuit breaker state: 0 closed, 1 half-open, 2 open, 3 emergency, "
		       "4 forced-open, 5 disabled");
	for (size_t i = 0; i < n; i++)
		rs_expo_sample(e, "resilience_breaker_state",
			       (const char *const[]){ "name", bs[i]->name, NULL },
			       (double)rs_breaker_state(bs[i]));
	rs_expo_family(e, "resilience_breaker_transitions_total", RS_EXPO_COUNTER,
		       "circuit breaker state transitions by from and to state");
	for (size_t i = 0; i < n; i++) {
		rs_breaker_stats(bs[i], &s);
		for (int f = 0; f < RS_BREAKER_NSTATES; f++)
			for (int t = 0; t < RS_BREAKER_NSTATES; t++)
				if (s.transitions[f][t])
					rs_expo_sample(
					    e, "resilience_breaker_transitions_total",
					    (const char *const[]){
						"name", bs[i]->name, "from",
						rs_breaker_state_name((enum rs_breaker_state)f),
						"to",
						rs_breaker_state_name((enum rs_breaker_state)t),
						NULL },
					    (double)s.transitions[f][t]);
	}
	rs_expo_family(e, "resilience_breaker_calls_total", RS_EXPO_COUNTER,
		       "circuit breaker calls by result: success, failure (slow or not), slow "
		       "(succeeded but slow), rejected");
	for (size_t i = 0; i < n; i++) {
		rs_breaker_stats(bs[i], &s);
		for (int r = 0; r < 4; r++)
			rs_expo_sample(e, "resilience_breaker_calls_total",
				       (const char *const[]){ "name", bs[i]->name, "result",
							      results[r], NULL },
				       (double)s.calls[r]);
	}
}
