#include "resilience/shed.h"

#include <math.h>
#include <string.h>

#include "resilience/clock.h"
#include "resilience/rng.h"

#define NAME_MAX_LEN	   47
#define DEFAULT_MIX_WINDOW 1024
#define DEFAULT_K	   2.0
#define DEFAULT_WINDOW_NS  (120 * RS_NS_PER_SEC)
#define DEFAULT_SLOTS	   120

struct bucket {
	uint64_t requests, accepts;
};

struct rs_shed {
	enum rs_shed_mode mode;
	char name[NAME_MAX_LEN + 1];
	const struct rs_alloc *alloc;
	struct rs_rng rng;

	/* tiered */
	struct rs_shed_tiers tiers;
	double score;
	enum rs_shed_tier tier;
	uint32_t mix_window;
	uint64_t mix_prev[RS_SHED_NCLASSES], mix_cur[RS_SHED_NCLASSES];
	uint64_t mix_prev_n, mix_cur_n;

	/* throttle: a ring of `slots` buckets of res_ns; bucket j (absolute
	 * index now_ns / res_ns) lives at ring[j % slots]; the window is the
	 * buckets cur - slots + 1 .. cur, whose sums are requests/accepts. */
	double k;
	uint64_t res_ns;
	uint32_t slots;
	bool started;
	uint64_t cur;
	uint64_t requests, accepts;
	struct bucket *ring;

	struct rs_shed_stats stats;
};

static const char *const class_names[RS_SHED_NCLASSES] = { "critical", "high", "medium", "low" };

const char *rs_shed_class_name(enum rs_shed_class cls)
{
	return (unsigned)cls < RS_SHED_NCLASSES ? class_names[cls] : "low";
}

static int check_tiers(const struct rs_shed_tiers *t, struct rs_err *err)
{
	for (int i = 0; i < RS_SHED_NTIERS - 1; i++) {
		double v = t->threshold[i], lo = i ? t->threshold[i - 1] : 0;

		if (!(v > lo && v <= 1))
			return rs__einval(
			    err, "shed: tiers.threshold[%d] must be in (%g, 1], got %g", i, lo, v);
	}
	for (int i = 0; i < RS_SHED_NTIERS; i++) {
		double v = t->fraction[i], lo = i ? t->fraction[i - 1] : 0;

		if (!(v >= lo && v <= 1))
			return rs__einval(
			    err, "shed: tiers.fraction[%d] must be in [%g, 1], got %g", i, lo, v);
	}
	return 0;
}

static int check_opts(const struct rs_shed_opts *o, struct rs_err *err)
{
	size_t len = o->name ? strlen(o->name) : 0;

	if (len < 1 || len > NAME_MAX_LEN)
		return rs__einval(err, "shed: name must be 1 to %d bytes, got %zu", NAME_MAX_LEN,
				  len);
	if (o->mode == RS_SHED_TIERED) {
		if (o->k != 0 || o->window_ns || o->slots)
			return rs__einval(err,
					  "shed: k, window_ns and slots apply to mode "
					  "throttle only, got k %g window_ns %llu slots %u",
					  o->k, (unsigned long long)o->window_ns, o->slots);
		return o->tiers ? check_tiers(o->tiers, err) : 0;
	}
	if (o->mode != RS_SHED_THROTTLE)
		return rs__einval(err, "shed: mode must be tiered (0) or throttle (1), got %d",
				  (int)o->mode);
	if (o->tiers || o->mix_window)
		return rs__einval(err,
				  "shed: tiers and mix_window apply to mode tiered only, "
				  "got tiers %s mix_window %u",
				  o->tiers ? "set" : "NULL", o->mix_window);
	if (o->k != 0 && !(o->k >= 1 && isfinite(o->k)))
		return rs__einval(err, "shed: k must be finite and >= 1 (or 0 for 2), got %g",
				  o->k);
	if (o->window_ns && o->window_ns < (o->slots ? o->slots : DEFAULT_SLOTS))
		return rs__einval(err, "shed: window_ns must be at least slots (%u) ns, got %llu",
				  o->slots ? o->slots : DEFAULT_SLOTS,
				  (unsigned long long)o->window_ns);
	return 0;
}

int rs_shed_new(struct rs_shed **out, const struct rs_shed_opts *opts, struct rs_err *err)
{
	static const struct rs_shed_tiers defaults = RS_SHED_TIERS_DEFAULT;
	struct rs_shed *s = NULL;
	int rc = check_opts(opts, err);

	*out = NULL;
	if (rc)
		return rc;
	s = rs__calloc(opts->alloc, 1, sizeof(*s));
	if (!s) {
		rc = rs__enomem(err, "shed");
		goto fail;
	}
	s->mode = opts->mode;
	s->alloc = opts->alloc;
	memcpy(s->name, opts->name, strlen(opts->name) + 1);
	rs_rng_seed(&s->rng, opts->seed);
	s->tiers = opts->tiers ? *opts->tiers : defaults;
	s->mix_window = opts->mix_window ? opts->mix_window : DEFAULT_MIX_WINDOW;
	if (s->mode == RS_SHED_THROTTLE) {
		uint64_t window = opts->window_ns ? opts->window_ns : DEFAULT_WINDOW_NS;

		s->k = opts->k != 0 ? opts->k : DEFAULT_K;
		s->slots = opts->slots ? opts->slots : DEFAULT_SLOTS;
		s->res_ns = window / s->slots;
		s->ring = rs__calloc(opts->alloc, s->slots, sizeof(*s->ring));
		if (!s->ring) {
			rc = rs__enomem(err, "shed");
			goto fail;
		}
	}
	*out = s;
	return 0;
fail:
	rs_shed_free(s);
	return rc;
}

void rs_shed_free(struct rs_shed *s)
{
	if (!s)
		return;
	rs__free(s->alloc, s->ring);
	rs__free(s->alloc, s);
}

/* ---- tiered -------------------------------------------------------------- */

/* Drop probability of class c given class counts n[] (total N > 0): the
 * waterfall described in shed.h, f * N decisions taken from LOW upwards. */
static double drop_prob(const struct rs_shed *s, unsigned c, const uint64_t *n, uint64_t N)
{
	double rem = s->tiers.fraction[s->tier] * (double)N;
	int top = s->tier == RS_SHED_EMERGENCY ? RS_SHED_CRITICAL : RS_SHED_HIGH;

	if (rem <= 0)
		return 0;
	for (int k = RS_SHED_LOW; k >= top; k--) {
		if ((unsigned)k == c)
			return n[k] ? fmin(1, rem / (double)n[k]) : 1;
		rem -= (double)n[k];
		if (rem <= 0)
			return 0;
	}
	return 0;
}

static void mix_counts(const struct rs_shed *s, uint64_t *n, uint64_t *N)
{
	for (int k = 0; k < RS_SHED_NCLASSES; k++)
		n[k] = s->mix_prev[k] + s->mix_cur[k];
	*N = s->mix_prev_n + s->mix_cur_n;
}

static bool admit_tiered(struct rs_shed *s, unsigned c)
{
	uint64_t n[RS_SHED_NCLASSES], N;
	double p;

	s->mix_cur[c]++;
	s->mix_cur_n++;
	mix_counts(s, n, &N);
	p = drop_prob(s, c, n, N);
	if (s->mix_cur_n >= s->mix_window) {
		memcpy(s->mix_prev, s->mix_cur, sizeof(s->mix_prev));
		s->mix_prev_n = s->mix_cur_n;
		memset(s->mix_cur, 0, sizeof(s->mix_cur));
		s->mix_cur_n = 0;
	}
	if (p <= 0)
		return true;
	return !(p >= 1 || rs_rng_double(&s->rng) < p);
}

static enum rs_shed_tier tier_of(const struct rs_shed_tiers *t, double score)
{
	int tier = 0;

	while (tier < RS_SHED_NTIERS - 1 && score >= t->threshold[tier])
		tier++;
	return (enum rs_shed_tier)tier;
}

int rs_shed_set_score(struct rs_shed *s, double score, struct rs_err *err)
{
	if (s->mode != RS_SHED_TIERED)
		return rs__einval(err, "shed: '%s' is a throttle shedder; scores apply to tiered",
				  s->name);
	if (!(score >= 0 && score <= 1))
		return rs__einval(err, "shed: score for '%s' must be in [0, 1], got %g", s->name,
				  score);
	s->score = score;
	s->tier = tier_of(&s->tiers, score);
	return 0;
}

double rs_shed_load_score(const struct rs_shed_load *l)
{
	double score = l->cpu;

	if (!(score >= 0 && score <= 1))
		return NAN;
	if (l->queue_limit)
		score = fmax(score, fmin(1, (double)l->queue_depth / (double)l->queue_limit));
	if (l->latency_target_ns)
		score = fmax(score,
			     fmin(1, (double)l->latency_ns / (2.0 * (double)l->latency_target_ns)));
	return score;
}

int rs_shed_set_load(struct rs_shed *s, const struct rs_shed_load *load, struct rs_err *err)
{
	double score = rs_shed_load_score(load);

	if (isnan(score))
		return rs__einval(err, "shed: load.cpu for '%s' must be in [0, 1], got %g", s->name,
				  load->cpu);
	return rs_shed_set_score(s, score, err);
}

double rs_shed_score(const struct rs_shed *s)
{
	return s->score;
}

enum rs_shed_tier rs_shed_tier(const struct rs_shed *s)
{
	return s->tier;
}

/* ---- throttle ------------------------------------------------------------ */

/* Window sums as they will be at now_ns, without moving the ring. */
static void window_at(const struct rs_shed *s, uint64_t now_ns, uint64_t *req, uint64_t *acc)
{
	uint64_t idx = now_ns / s->res_ns;

	*req = s->requests;
	*acc = s->accepts;
	if (!s->started || idx <= s->cur)
		return;
	if (idx - s->cur >= s->slots) {
		*req = *acc = 0;
		return;
	}
	for (uint64_t j = s->cur + 1; j <= idx; j++) {
		const struct bucket *b = &s->ring[j % s->slots];

		*req -= b->requests;
		*acc -= b->accepts;
	}
}

/* Moves the ring to now_ns, dropping buckets that left the window, and
 * returns the current bucket.  A now_ns behind the ring counts as now. */
static struct bucket *advance(struct rs_shed *s, uint64_t now_ns)
{
	uint64_t idx = now_ns / s->res_ns;

	if (!s->started) {
		s->started = true;
		s->cur = idx;
	} else if (idx > s->cur) {
		if (idx - s->cur >= s->slots) {
			memset(s->ring, 0, s->slots * sizeof(*s->ring));
			s->requests = s->accepts = 0;
		} else {
			for (uint64_t j = s->cur + 1; j <= idx; j++) {
				struct bucket *b = &s->ring[j % s->slots];

				s->requests -= b->requests;
				s->accepts -= b->accepts;
				b->requests = b->accepts = 0;
			}
		}
		s->cur = idx;
	}
	return &s->ring[s->cur % s->slots];
}

static double throttle_p(double k, uint64_t req, uint64_t acc)
{
	double p = ((double)req - k * (double)acc) / ((double)req + 1);

	return p > 0 ? p : 0;
}

static bool admit_throttle(struct rs_shed *s, uint64_t now_ns)
{
	struct bucket *b = advance(s, now_ns);
	double p = throttle_p(s->k, s->requests, s->accepts);

	b->requests++;
	s->requests++;
	return !(p > 0 && rs_rng_double(&s->rng) < p);
}

void rs_shed_record_accept(struct rs_shed *s, uint64_t now_ns)
{
	struct bucket *b;

	if (s->mode != RS_SHED_THROTTLE)
		return;
	b = advance(s, now_ns);
	b->accepts++;
	s->accepts++;
}

double rs_shed_reject_probability(const struct rs_shed *s, uint64_t now_ns, uint64_t *requests,
				  uint64_t *accepts)
{
	uint64_t req = 0, acc = 0;

	if (s->mode == RS_SHED_THROTTLE)
		window_at(s, now_ns, &req, &acc);
	if (requests)
		*requests = req;
	if (accepts)
		*accepts = acc;
	return s->mode == RS_SHED_THROTTLE ? throttle_p(s->k, req, acc) : 0;
}

/* ---- both ---------------------------------------------------------------- */

bool rs_shed_admit(struct rs_shed *s, enum rs_shed_class cls, uint64_t now_ns)
{
	unsigned c = (unsigned)cls < RS_SHED_NCLASSES ? (unsigned)cls : RS_SHED_LOW;
	bool admit = s->mode == RS_SHED_TIERED ? admit_tiered(s, c) : admit_throttle(s, now_ns);

	s->stats.decided[c]++;
	if (!admit) {
		s->stats.shed[c]++;
		s->stats.shed_total++;
	}
	return admit;
}

double rs_shed_fraction(const struct rs_shed *s, uint64_t now_ns)
{
	uint64_t n[RS_SHED_NCLASSES], N;
	double f = 0;

	if (s->mode == RS_SHED_THROTTLE)
		return rs_shed_reject_probability(s, now_ns, NULL, NULL);
	mix_counts(s, n, &N);
	if (N == 0)
		return s->tiers.fraction[s->tier];
	for (unsigned c = 0; c < RS_SHED_NCLASSES; c++)
		if (n[c])
			f += (double)n[c] / (double)N * drop_prob(s, c, n, N);
	return f;
}

void rs_shed_stats(const struct rs_shed *s, struct rs_shed_stats *out)
{
	*out = s->stats;
}

void rs_shed_expo(struct rs_expo *e, const struct rs_shed *const *objs, size_t n, uint64_t now_ns)
{
	bool any_tiered = false;

	rs_expo_family(e, "resilience_shed_fraction", RS_EXPO_GAUGE,
		       "fraction of requests the load shedder is currently shedding");
	for (size_t i = 0; i < n; i++)
		if (objs[i])
			rs_expo_sample(e, "resilience_shed_fraction",
				       (const char *const[]){ "name", objs[i]->name, NULL },
				       rs_shed_fraction(objs[i], now_ns));
	rs_expo_family(e, "resilience_shed_total", RS_EXPO_COUNTER,
		       "requests shed by the load shedder");
	for (size_t i = 0; i < n; i++)
		if (objs[i])
			rs_expo_sample(e, "resilience_shed_total",
				       (const char *const[]){ "name", objs[i]->name, NULL },
				       (double)objs[i]->stats.shed_total);
	rs_expo_family(e, "resilience_shed_class_total", RS_EXPO_COUNTER,
		       "requests shed by the load shedder, per priority class");
	for (size_t i = 0; i < n; i++) {
		if (!objs[i])
			continue;
		any_tiered |= objs[i]->mode == RS_SHED_TIERED;
		for (unsigned c = 0; c < RS_SHED_NCLASSES; c++)
			rs_expo_sample(e, "resilience_shed_class_total",
				       (const char *const[]){ "name", objs[i]->name, "class",
							      class_names[c], NULL },
				       (double)objs[i]->stats.shed[c]);
	}
	if (!any_tiered)
		return;
	rs_expo_family(e, "resilience_shed_tier", RS_EXPO_GAUGE,
		       "tier of a tiered load shedder: 0 green, 1 yellow, 2 red, 3 emergency");
	for (size_t i = 0; i < n; i++)
		if (objs[i] && objs[i]->mode == RS_SHED_TIERED)
			rs_expo_sample(e, "resilience_shed_tier",
				       (const char *const[]){ "name", objs[i]->name, NULL },
				       (double)objs[i]->tier);
}
