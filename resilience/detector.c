#include "resilience/detector.h"

#include <math.h>
#include <string.h>

#include "resilience/clock.h"

/* Where the trigger-aware form is in a trigger episode. */
enum ta_phase {
	TA_IDLE,      /* no trigger episode: baseline may learn */
	TA_TRIGGERED, /* the trigger is present */
	TA_WATCHING,  /* the trigger is gone; symptoms have held since */
};

struct rs_detector {
	struct rs_detector_opts o; /* o.name points at name[] */
	char name[RS_DETECTOR_NAME_MAX];

	struct {
		double latency_ns, throughput, offered_load, queue_depth;
		uint64_t n;
	} base;

	bool evaluated;
	bool metastable;
	unsigned signals;
	uint32_t calm; /* consecutive calm evaluations while metastable */
	uint64_t last_eval_ns;
	uint64_t since_ns;
	uint64_t entered, exited;
	uint64_t closed_ns; /* total duration of closed episodes */
	uint64_t last_duration_ns;
	uint64_t evaluations, dropped;

	enum ta_phase ta;
	bool trigger_active;
	uint64_t trigger_end_ns;
	uint64_t triggers, recoveries;
};

void rs_detector_opts_default(struct rs_detector_opts *o, enum rs_detector_form form)
{
	memset(o, 0, sizeof(*o));
	o->form = form;
	o->period_ns = RS_NS_PER_SEC;
	o->alpha = 0.1;
	o->min_baseline_samples = 5;
	o->exit_periods = 3;
	o->k = 3;
	o->exit_k = 3;
	o->latency_factor = 2.0;
	o->latency_floor_ns = 100 * RS_NS_PER_MS;
	o->error_rate_threshold = 0.05;
	o->throughput_fraction = 0.5;
	o->resource_threshold = 0.9;
	o->queue_min = 1000;
	o->queue_factor = 5.0;
	o->low_load_fraction = 0.7;
	o->cache_hit_threshold = 0.5;
	o->trigger_clear_ns = 10 * RS_NS_PER_SEC;
	o->load_band = 0.1;
	o->goodput_fraction = 0.9;
	o->retry_budget = 0.2;
}

/* lo < v <= hi or lo <= v < hi, as the flags say; false for NaN. */
static bool in_range(double v, double lo, bool lo_open, double hi, bool hi_open)
{
	if (isnan(v))
		return false;
	if (lo_open ? !(v > lo) : !(v >= lo))
		return false;
	return hi_open ? v < hi : v <= hi;
}

#define RANGE_CHECK(field, lo, lo_open, hi, hi_open, shown)                                        \
	do {                                                                                       \
		if (!in_range(o->field, lo, lo_open, hi, hi_open))                                 \
			return rs__einval(err, "detector: " #field " must be in %s, got %g",       \
					  shown, o->field);                                        \
	} while (0)

static int validate(const struct rs_detector_opts *o, struct rs_err *err)
{
	size_t len;

	if (!o)
		return rs__einval(err, "detector: opts must not be NULL");
	if (!o->name)
		return rs__einval(err, "detector: name must be 1..%d bytes, got NULL",
				  RS_DETECTOR_NAME_MAX - 1);
	len = strlen(o->name);
	if (len == 0 || len >= RS_DETECTOR_NAME_MAX)
		return rs__einval(err, "detector: name must be 1..%d bytes, got %zu",
				  RS_DETECTOR_NAME_MAX - 1, len);
	if (o->form != RS_DETECTOR_MULTI_SIGNAL && o->form != RS_DETECTOR_SIGNATURE &&
	    o->form != RS_DETECTOR_TRIGGER_AWARE)
		return rs__einval(err, "detector: form must be 0, 1 or 2, got %d", (int)o->form);
	if (o->period_ns == 0)
		return rs__einval(err, "detector: period_ns must be > 0, got 0");
	RANGE_CHECK(alpha, 0.0, true, 1.0, false, "(0, 1]");
	if (o->min_baseline_samples == 0)
		return rs__einval(err, "detector: min_baseline_samples must be >= 1, got 0");
	if (o->exit_periods == 0)
		return rs__einval(err, "detector: exit_periods must be >= 1, got 0");

	if (o->form == RS_DETECTOR_MULTI_SIGNAL) {
		if (o->k < 1 || o->k > 5)
			return rs__einval(err, "detector: k must be in 1..5, got %u", o->k);
		if (o->exit_k < 1 || o->exit_k > o->k)
			return rs__einval(err, "detector: exit_k must be in 1..k (%u), got %u",
					  o->k, o->exit_k);
		RANGE_CHECK(error_rate_threshold, 0.0, false, 1.0, true, "[0, 1)");
		RANGE_CHECK(throughput_fraction, 0.0, true, 1.0, false, "(0, 1]");
		RANGE_CHECK(resource_threshold, 0.0, true, 1.0, true, "(0, 1)");
	}
	if (o->form == RS_DETECTOR_MULTI_SIGNAL || o->form == RS_DETECTOR_SIGNATURE) {
		RANGE_CHECK(latency_factor, 1.0, false, INFINITY, true, "[1, inf)");
		RANGE_CHECK(queue_factor, 1.0, false, INFINITY, true, "[1, inf)");
	}
	if (o->form == RS_DETECTOR_SIGNATURE) {
		RANGE_CHECK(low_load_fraction, 0.0, true, 1.0, false, "(0, 1]");
		RANGE_CHECK(cache_hit_threshold, 0.0, true, 1.0, false, "(0, 1]");
	}
	if (o->form == RS_DETECTOR_TRIGGER_AWARE) {
		if (o->trigger_clear_ns == 0)
			return rs__einval(err, "detector: trigger_clear_ns must be > 0, got 0");
		RANGE_CHECK(load_band, 0.0, true, 1.0, false, "(0, 1]");
		RANGE_CHECK(goodput_fraction, 0.0, true, 1.0, false, "(0, 1]");
		RANGE_CHECK(retry_budget, 0.0, false, INFINITY, true, "[0, inf)");
	}
	return 0;
}

int rs_detector_new(struct rs_detector **out, const struct rs_detector_opts *opts,
		    struct rs_err *err)
{
	struct rs_detector *d;
	int rc;

	*out = NULL;
	rc = validate(opts, err);
	if (rc)
		return rc;
	d = rs__calloc(opts->alloc, 1, sizeof(*d));
	if (!d)
		return rs__enomem(err, "detector");
	d->o = *opts;
	memcpy(d->name, opts->name, strlen(opts->name) + 1);
	d->o.name = d->name;
	d->base.latency_ns = NAN;
	d->base.throughput = NAN;
	d->base.offered_load = NAN;
	d->base.queue_depth = NAN;
	d->ta = TA_IDLE;
	*out = d;
	return 0;
}

void rs_detector_free(struct rs_detector *d)
{
	if (d)
		rs__free(d->o.alloc, d);
}

/* x above factor x baseline; false while there is no baseline (NaN), so
 * the first sample free of absolute signals can seed it (see the header). */
static bool above_baseline(double x, double factor, double base)
{
	return x > factor * base;
}

static void ema(double *b, double x, double alpha)
{
	if (isnan(x))
		return;
	*b = isnan(*b) ? x : *b + alpha * (x - *b);
}

static void learn(struct rs_detector *d, const struct rs_detector_sample *s)
{
	double a = d->o.alpha;

	ema(&d->base.latency_ns, (double)s->latency_ns, a);
	ema(&d->base.throughput, s->throughput, a);
	ema(&d->base.offered_load, s->offered_load, a);
	ema(&d->base.queue_depth, (double)s->queue_depth, a);
	d->base.n++;
}

static unsigned latency_queue_signals(const struct rs_detector *d,
				      const struct rs_detector_sample *s)
{
	unsigned sig = 0;
	double lat = (double)s->latency_ns, q = (double)s->queue_depth;

	if (s->latency_ns > d->o.latency_floor_ns &&
	    above_baseline(lat, d->o.latency_factor, d->base.latency_ns))
		sig |= RS_DETECTOR_SIG_LATENCY;
	if (s->queue_depth > d->o.queue_min &&
	    above_baseline(q, d->o.queue_factor, d->base.queue_depth))
		sig |= RS_DETECTOR_SIG_QUEUE;
	return sig;
}

static unsigned multi_signals(const struct rs_detector *d, const struct rs_detector_sample *s)
{
	unsigned sig = latency_queue_signals(d, s);
	double thr = d->o.resource_threshold;

	if (s->error_rate > d->o.error_rate_threshold)
		sig |= RS_DETECTOR_SIG_ERRORS;
	if (d->base.throughput > 0 && s->throughput < d->o.throughput_fraction * d->base.throughput)
		sig |= RS_DETECTOR_SIG_THROUGHPUT;
	if (s->cpu > thr || s->memory > thr)
		sig |= RS_DETECTOR_SIG_RESOURCES;
	return sig;
}

static unsigned signature_signals(const struct rs_detector *d, const struct rs_detector_sample *s)
{
	unsigned sig = latency_queue_signals(d, s);

	if (s->cache_hit_ratio < d->o.cache_hit_threshold)
		sig |= RS_DETECTOR_SIG_COLD_CACHE;
	if (d->base.offered_load > 0 &&
	    s->offered_load < d->o.low_load_fraction * d->base.offered_load)
		sig |= RS_DETECTOR_SIG_LOW_LOAD;
	return sig;
}

static unsigned trigger_symptoms(const struct rs_detector *d, const struct rs_detector_sample *s)
{
	unsigned sig = 0;
	double b = d->base.offered_load;

	if (fabs(s->offered_load - b) <= d->o.load_band * b)
		sig |= RS_DETECTOR_SIG_LOAD_STEADY;
	/* No demand means nothing is failing: goodput is judged only when
	 * there is offered load. */
	if (s->offered_load > 0 && s->goodput < d->o.goodput_fraction * s->offered_load)
		sig |= RS_DETECTOR_SIG_LOW_GOODPUT;
	if (s->retry_amplification > 1.0 + d->o.retry_budget)
		sig |= RS_DETECTOR_SIG_AMPLIFIED;
	return sig;
}

static void emit(struct rs_detector *d, enum rs_detector_event_kind kind, uint64_t now,
		 uint64_t duration)
{
	struct rs_detector_event ev;

	if (!d->o.on_event)
		return;
	ev.kind = kind;
	ev.name = d->name;
	ev.at_ns = now;
	ev.since_ns = d->since_ns;
	ev.duration_ns = duration;
	ev.episode = d->entered;
	ev.signals = d->signals;
	ev.trigger_end_ns = d->o.form == RS_DETECTOR_TRIGGER_AWARE ? d->trigger_end_ns : 0;
	d->o.on_event(d->o.on_event_ctx, &ev);
}

static int enter(struct rs_detector *d, uint64_t now)
{
	d->metastable = true;
	d->since_ns = now;
	d->calm = 0;
	d->entered++;
	emit(d, RS_DETECTOR_ENTER, now, 0);
	return RS_DETECTOR_ENTER;
}

/* Counts a calm or non-calm evaluation while metastable; exits after
 * exit_periods calm ones in a row. */
static int settle(struct rs_detector *d, bool calm, uint64_t now)
{
	uint64_t dur;

	if (!calm) {
		d->calm = 0;
		return 0;
	}
	if (++d->calm < d->o.exit_periods)
		return 0;
	dur = now - d->since_ns;
	d->metastable = false;
	d->calm = 0;
	d->exited++;
	d->closed_ns += dur;
	d->last_duration_ns = dur;
	emit(d, RS_DETECTOR_EXIT, now, dur);
	d->since_ns = 0;
	return RS_DETECTOR_EXIT;
}

static int update_multi(struct rs_detector *d, const struct rs_detector_sample *s, bool ready)
{
	unsigned sig = multi_signals(d, s);
	unsigned n = (unsigned)__builtin_popcount(sig);

	d->signals = sig;
	if (d->metastable)
		return settle(d, n < d->o.exit_k, s->now_ns);
	if (ready && n >= d->o.k)
		return enter(d, s->now_ns);
	if (sig == 0)
		learn(d, s);
	return 0;
}

static int update_signature(struct rs_detector *d, const struct rs_detector_sample *s, bool ready)
{
	unsigned sig = signature_signals(d, s);
	unsigned symptoms =
	    sig & (RS_DETECTOR_SIG_LATENCY | RS_DETECTOR_SIG_QUEUE | RS_DETECTOR_SIG_COLD_CACHE);
	bool holds = (sig & RS_DETECTOR_SIG_LOW_LOAD) && symptoms;

	d->signals = sig;
	if (d->metastable)
		return settle(d, !holds, s->now_ns);
	if (ready && holds)
		return enter(d, s->now_ns);
	if (!symptoms)
		learn(d, s);
	return 0;
}

static int update_trigger(struct rs_detector *d, const struct rs_detector_sample *s, bool ready)
{
	unsigned sig = trigger_symptoms(d, s);
	bool sick = sig & (RS_DETECTOR_SIG_LOW_GOODPUT | RS_DETECTOR_SIG_AMPLIFIED);
	bool bad = ready && (sig & RS_DETECTOR_SIG_LOAD_STEADY) && sick;
	bool was_idle = d->ta == TA_IDLE;
	uint64_t now = s->now_ns;
	int ev = 0;

	if (s->trigger_active && !d->trigger_active)
		d->triggers++;
	d->trigger_active = s->trigger_active;

	if (d->metastable) {
		sig |= RS_DETECTOR_SIG_OUTLIVED;
		d->signals = sig;
		ev = settle(d, !sick, now);
		if (ev)
			d->ta = s->trigger_active ? TA_TRIGGERED : TA_IDLE;
		return ev;
	}
	if (s->trigger_active) {
		d->ta = TA_TRIGGERED;
	} else if (d->ta == TA_TRIGGERED) {
		d->ta = TA_WATCHING;
		d->trigger_end_ns = now;
	}
	if (d->ta == TA_WATCHING) {
		if (!bad) {
			d->ta = TA_IDLE;
			d->recoveries++;
		} else if (now - d->trigger_end_ns >= d->o.trigger_clear_ns) {
			sig |= RS_DETECTOR_SIG_OUTLIVED;
			d->signals = sig;
			return enter(d, now);
		}
	}
	d->signals = sig;
	if (was_idle && d->ta == TA_IDLE && !sick)
		learn(d, s);
	return 0;
}

int rs_detector_update(struct rs_detector *d, const struct rs_detector_sample *s)
{
	bool ready;

	if (d->evaluated &&
	    (s->now_ns < d->last_eval_ns || s->now_ns - d->last_eval_ns < d->o.period_ns / 2)) {
		d->dropped++;
		return 0;
	}
	d->evaluated = true;
	d->last_eval_ns = s->now_ns;
	d->evaluations++;
	ready = d->base.n >= d->o.min_baseline_samples;
	switch (d->o.form) {
	case RS_DETECTOR_MULTI_SIGNAL:
		return update_multi(d, s, ready);
	case RS_DETECTOR_SIGNATURE:
		return update_signature(d, s, ready);
	case RS_DETECTOR_TRIGGER_AWARE:
		return update_trigger(d, s, ready);
	}
	return 0;
}

bool rs_detector_metastable(const struct rs_detector *d)
{
	return d->metastable;
}

const char *rs_detector_name(const struct rs_detector *d)
{
	return d->name;
}

void rs_detector_report(const struct rs_detector *d, struct rs_detector_report *out)
{
	memset(out, 0, sizeof(*out));
	out->form = d->o.form;
	out->metastable = d->metastable;
	out->signals = d->signals;
	out->nsignals = (unsigned)__builtin_popcount(d->signals);
	out->since_ns = d->metastable ? d->since_ns : 0;
	out->entered = d->entered;
	out->exited = d->exited;
	out->metastable_ns = d->closed_ns + (d->metastable ? d->last_eval_ns - d->since_ns : 0);
	out->last_duration_ns = d->last_duration_ns;
	out->evaluations = d->evaluations;
	out->dropped = d->dropped;
	out->last_eval_ns = d->evaluated ? d->last_eval_ns : 0;
	out->baseline_ready = d->base.n >= d->o.min_baseline_samples;
	out->baseline_samples = d->base.n;
	out->baseline.latency_ns = d->base.latency_ns;
	out->baseline.throughput = d->base.throughput;
	out->baseline.offered_load = d->base.offered_load;
	out->baseline.queue_depth = d->base.queue_depth;
	if (d->o.form == RS_DETECTOR_TRIGGER_AWARE) {
		out->trigger_active = d->trigger_active;
		out->triggers = d->triggers;
		out->recoveries = d->recoveries;
		out->trigger_end_ns = d->trigger_end_ns;
	}
}

void rs_detector_expo(struct rs_expo *e, const struct rs_detector *const *objs, size_t n)
{
	size_t i;

	rs_expo_family(e, "resilience_metastable", RS_EXPO_GAUGE,
		       "1 while the detector declares the system metastable, else 0");
	for (i = 0; i < n; i++)
		rs_expo_sample(e, "resilience_metastable",
			       (const char *[]){ "name", objs[i]->name, NULL },
			       objs[i]->metastable ? 1 : 0);
	rs_expo_family(e, "resilience_detector_signals", RS_EXPO_GAUGE,
		       "metastability signals holding at the last evaluation");
	for (i = 0; i < n; i++)
		rs_expo_sample(e, "resilience_detector_signals",
			       (const char *[]){ "name", objs[i]->name, NULL },
			       __builtin_popcount(objs[i]->signals));
	rs_expo_family(e, "resilience_metastable_episodes_total", RS_EXPO_COUNTER,
		       "metastable episodes entered");
	for (i = 0; i < n; i++)
		rs_expo_sample(e, "resilience_metastable_episodes_total",
			       (const char *[]){ "name", objs[i]->name, NULL },
			       (double)objs[i]->entered);
}
