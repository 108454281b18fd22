#include "resilience/errbudget.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resilience/clock.h"

#define NAME_MAX_LEN  47
#define DEFAULT_SLOTS 3600
#define HOUR_NS	      (3600 * RS_NS_PER_SEC)

struct bucket {
	uint64_t good, bad;
};

/* One sliding window: bucket j (absolute index now_ns / res_ns) lives at
 * b[j % slots]; the window is buckets cur - slots + 1 .. cur, whose sums are
 * good/bad. */
struct ring {
	uint64_t window_ns, res_ns;
	uint32_t slots;
	bool started;
	uint64_t cur;
	uint64_t good, bad;
	struct bucket *b;
};

struct rule {
	char name[NAME_MAX_LEN + 1];
	double factor;
	size_t long_ring, short_ring;
};

struct rs_errbudget {
	char name[NAME_MAX_LEN + 1];
	const struct rs_alloc *alloc;
	double budget;	    /* 1 - slo */
	struct ring *rings; /* rings[0] is the budget window */
	size_t nrings;
	struct rule *rules;
	size_t nrules;
};

static const struct rs_errbudget_rule default_rules[] = {
	{ NULL, 1 * HOUR_NS, 5 * 60 * RS_NS_PER_SEC, 14.4 },
	{ NULL, 6 * HOUR_NS, 30 * 60 * RS_NS_PER_SEC, 6 },
	{ NULL, 72 * HOUR_NS, 6 * HOUR_NS, 1 },
};

/* "1h", "5m", "90s", "250ms": the largest unit that divides ns exactly. */
static void fmt_dur(char *buf, size_t len, uint64_t ns)
{
	static const struct {
		uint64_t ns;
		const char *unit;
	} units[] = {
		{ 24 * HOUR_NS, "d" },	{ HOUR_NS, "h" },	{ 60 * RS_NS_PER_SEC, "m" },
		{ RS_NS_PER_SEC, "s" }, { RS_NS_PER_MS, "ms" }, { RS_NS_PER_US, "us" },
	};

	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (ns % units[i].ns == 0) {
			snprintf(buf, len, "%" PRIu64 "%s", ns / units[i].ns, units[i].unit);
			return;
		}
	}
	snprintf(buf, len, "%" PRIu64 "ns", ns);
}

static int check_rule(const struct rs_errbudget_rule *r, size_t i, uint32_t slots,
		      struct rs_err *err)
{
	size_t len = r->name ? strlen(r->name) : 1;

	if (len < 1 || len > NAME_MAX_LEN)
		return rs__einval(err, "errbudget: rules[%zu].name must be 1 to %d bytes, got %zu",
				  i, NAME_MAX_LEN, len);
	if (r->long_ns < slots)
		return rs__einval(err,
				  "errbudget: rules[%zu].long_ns must be at least slots (%u) "
				  "ns, got %" PRIu64,
				  i, slots, r->long_ns);
	if (r->short_ns < slots || r->short_ns > r->long_ns)
		return rs__einval(err,
				  "errbudget: rules[%zu].short_ns must be in [%u, %" PRIu64
				  "] ns (slots to long_ns), got %" PRIu64,
				  i, slots, r->long_ns, r->short_ns);
	if (!(r->factor > 0) || !isfinite(r->factor))
		return rs__einval(err,
				  "errbudget: rules[%zu].factor must be finite and > 0, got %g", i,
				  r->factor);
	return 0;
}

static int check_opts(const struct rs_errbudget_opts *o, uint32_t slots, struct rs_err *err)
{
	size_t len = o->name ? strlen(o->name) : 0;
	int rc;

	if (len < 1 || len > NAME_MAX_LEN)
		return rs__einval(err, "errbudget: name must be 1 to %d bytes, got %zu",
				  NAME_MAX_LEN, len);
	if (!(o->slo > 0 && o->slo < 1))
		return rs__einval(err, "errbudget: slo must be in (0, 1), got %g", o->slo);
	if (o->window_ns < slots)
		return rs__einval(
		    err, "errbudget: window_ns must be at least slots (%u) ns, got %" PRIu64, slots,
		    o->window_ns);
	if (!o->rules && o->nrules)
		return rs__einval(err, "errbudget: rules is NULL but nrules is %zu", o->nrules);
	if (o->nrules > RS_ERRBUDGET_MAX_RULES)
		return rs__einval(err, "errbudget: nrules must be at most %d, got %zu",
				  RS_ERRBUDGET_MAX_RULES, o->nrules);
	for (size_t i = 0; i < o->nrules; i++)
		if ((rc = check_rule(&o->rules[i], i, slots, err)))
			return rc;
	return 0;
}

/* The ring for window_ns, added if no ring has that window yet. */
static int ring_for(struct rs_errbudget *eb, uint64_t window_ns, uint32_t slots, size_t *idx,
		    struct rs_err *err)
{
	struct ring *r;

	for (size_t i = 0; i < eb->nrings; i++) {
		if (eb->rings[i].window_ns == window_ns) {
			*idx = i;
			return 0;
		}
	}
	r = &eb->rings[eb->nrings];
	r->b = rs__calloc(eb->alloc, slots, sizeof(*r->b));
	if (!r->b)
		return rs__enomem(err, "errbudget");
	r->window_ns = window_ns;
	r->slots = slots;
	r->res_ns = window_ns / slots;
	*idx = eb->nrings++;
	return 0;
}

static int add_rule(struct rs_errbudget *eb, const struct rs_errbudget_rule *r, uint32_t slots,
		    struct rs_err *err)
{
	struct rule *dst = &eb->rules[eb->nrules];
	char lw[24], sw[24];
	int rc;

	if (r->name) {
		memcpy(dst->name, r->name, strlen(r->name) + 1);
	} else {
		fmt_dur(lw, sizeof(lw), r->long_ns);
		fmt_dur(sw, sizeof(sw), r->short_ns);
		char full[80] = ""; /* zero-filled: copied whole below */

		snprintf(full, sizeof(full), "%gx_%s_%s", r->factor, lw, sw);
		memcpy(dst->name, full, NAME_MAX_LEN); /* truncated; uniqueness checked below */
		dst->name[NAME_MAX_LEN] = '\0';
	}
	for (size_t i = 0; i < eb->nrules; i++)
		if (strcmp(eb->rules[i].name, dst->name) == 0)
			return rs__einval(err,
					  "errbudget: rules[%zu] has the same name as rules[%zu] "
					  "('%s')",
					  eb->nrules, i, dst->name);
	dst->factor = r->factor;
	if ((rc = ring_for(eb, r->long_ns, slots, &dst->long_ring, err)) ||
	    (rc = ring_for(eb, r->short_ns, slots, &dst->short_ring, err)))
		return rc;
	eb->nrules++;
	return 0;
}

int rs_errbudget_new(struct rs_errbudget **out, const struct rs_errbudget_opts *opts,
		     struct rs_err *err)
{
	uint32_t slots = opts->slots ? opts->slots : DEFAULT_SLOTS;
	const struct rs_errbudget_rule *rules = opts->rules;
	size_t nrules = opts->nrules, idx;
	struct rs_errbudget *eb = NULL;
	char buf[64];
	int rc;

	*out = NULL;
	if ((rc = check_opts(opts, slots, err)))
		return rc;
	if (!rules) { /* valid for any slots: 5 min exceeds UINT32_MAX ns */
		rules = default_rules;
		nrules = sizeof(default_rules) / sizeof(default_rules[0]);
	}
	eb = rs__calloc(opts->alloc, 1, sizeof(*eb));
	if (!eb)
		return rs__enomem(err, "errbudget");
	eb->alloc = opts->alloc;
	memcpy(eb->name, opts->name, strlen(opts->name) + 1);
	snprintf(buf, sizeof(buf), "%.15f", 1 - opts->slo);
	eb->budget = strtod(buf, NULL);
	eb->rings = rs__calloc(opts->alloc, 1 + 2 * nrules, sizeof(*eb->rings));
	eb->rules = rs__calloc(opts->alloc, nrules, sizeof(*eb->rules));
	if (!eb->rings || !eb->rules) {
		rc = rs__enomem(err, "errbudget");
		goto fail;
	}
	if ((rc = ring_for(eb, opts->window_ns, slots, &idx, err)))
		goto fail;
	for (size_t i = 0; i < nrules; i++)
		if ((rc = add_rule(eb, &rules[i], slots, err)))
			goto fail;
	*out = eb;
	return 0;
fail:
	rs_errbudget_free(eb);
	return rc;
}

void rs_errbudget_free(struct rs_errbudget *eb)
{
	if (!eb)
		return;
	for (size_t i = 0; eb->rings && i < eb->nrings; i++)
		rs__free(eb->alloc, eb->rings[i].b);
	rs__free(eb->alloc, eb->rings);
	rs__free(eb->alloc, eb->rules);
	rs__free(eb->alloc, eb);
}

static void ring_record(struct ring *r, uint64_t good, uint64_t bad, uint64_t now_ns)
{
	uint64_t idx = now_ns / r->res_ns;
	struct bucket *b;

	if (!r->started) {
		r->started = true;
		r->cur = idx;
	} else if (idx > r->cur) {
		if (idx - r->cur >= r->slots) {
			memset(r->b, 0, r->slots * sizeof(*r->b));
			r->good = r->bad = 0;
		} else {
			for (uint64_t j = r->cur + 1; j <= idx; j++) {
				b = &r->b[j % r->slots];
				r->good -= b->good;
				r->bad -= b->bad;
				b->good = b->bad = 0;
			}
		}
		r->cur = idx;
	} else if (r->cur - idx >= r->slots) {
		return; /* older than this window */
	}
	b = &r->b[idx % r->slots];
	b->good += good;
	b->bad += bad;
	r->good += good;
	r->bad += bad;
}

/* The window's sums as they will be at now_ns, without moving the ring. */
static void ring_at(const struct ring *r, uint64_t now_ns, uint64_t *good, uint64_t *bad)
{
	uint64_t idx = now_ns / r->res_ns;

	*good = r->good;
	*bad = r->bad;
	if (!r->started || idx <= r->cur)
		return;
	if (idx - r->cur >= r->slots) {
		*good = *bad = 0;
		return;
	}
	for (uint64_t j = r->cur + 1; j <= idx; j++) {
		const struct bucket *b = &r->b[j % r->slots];

		*good -= b->good;
		*bad -= b->bad;
	}
}

static double burn(const struct rs_errbudget *eb, size_t ring, uint64_t now_ns)
{
	uint64_t good, bad;

	ring_at(&eb->rings[ring], now_ns, &good, &bad);
	if (good + bad == 0)
		return 0;
	return (double)bad / (double)(good + bad) / eb->budget;
}

void rs_errbudget_record(struct rs_errbudget *eb, uint64_t good, uint64_t bad, uint64_t now_ns)
{
	for (size_t i = 0; i < eb->nrings; i++)
		ring_record(&eb->rings[i], good, bad, now_ns);
}

void rs_errbudget_status(const struct rs_errbudget *eb, uint64_t now_ns,
			 struct rs_errbudget_status *out)
{
	uint64_t good, bad;

	ring_at(&eb->rings[0], now_ns, &good, &bad);
	out->good = good;
	out->bad = bad;
	out->consumed = good + bad ? (double)bad / (eb->budget * (double)(good + bad)) : 0;
	out->remaining = 1 - out->consumed;
	out->exhausted = out->consumed >= 1;
}

double rs_errbudget_remaining(const struct rs_errbudget *eb, uint64_t now_ns)
{
	struct rs_errbudget_status st;

	rs_errbudget_status(eb, now_ns, &st);
	return st.remaining;
}

static bool fires(const struct rs_errbudget *eb, const struct rule *r, uint64_t now_ns)
{
	return burn(eb, r->long_ring, now_ns) > r->factor &&
	       burn(eb, r->short_ring, now_ns) > r->factor;
}

uint32_t rs_errbudget_evaluate(const struct rs_errbudget *eb, uint64_t now_ns)
{
	uint32_t mask = 0;

	for (size_t i = 0; i < eb->nrules; i++)
		if (fires(eb, &eb->rules[i], now_ns))
			mask |= UINT32_C(1) << i;
	return mask;
}

int rs_errbudget_rule_burn(const struct rs_errbudget *eb, size_t i, uint64_t now_ns,
			   double *long_burn, double *short_burn)
{
	if (i >= eb->nrules)
		return -EINVAL;
	if (long_burn)
		*long_burn = burn(eb, eb->rules[i].long_ring, now_ns);
	if (short_burn)
		*short_burn = burn(eb, eb->rules[i].short_ring, now_ns);
	return 0;
}

size_t rs_errbudget_nrules(const struct rs_errbudget *eb)
{
	return eb->nrules;
}

const char *rs_errbudget_rule_name(const struct rs_errbudget *eb, size_t i)
{
	return i < eb->nrules ? eb->rules[i].name : NULL;
}

void rs_errbudget_expo(struct rs_expo *e, const struct rs_errbudget *const *objs, size_t n,
		       uint64_t now_ns)
{
	rs_expo_family(e, "resilience_error_budget_remaining", RS_EXPO_GAUGE,
		       "fraction of the SLO error budget left in its window (negative when "
		       "overspent)");
	for (size_t i = 0; i < n; i++)
		if (objs[i])
			rs_expo_sample(e, "resilience_error_budget_remaining",
				       (const char *const[]){ "name", objs[i]->name, NULL },
				       rs_errbudget_remaining(objs[i], now_ns));
	rs_expo_family(e, "resilience_error_budget_burn_alert", RS_EXPO_GAUGE,
		       "1 while the burn rate over both windows of the rule exceeds its factor");
	for (size_t i = 0; i < n; i++) {
		if (!objs[i])
			continue;
		for (size_t r = 0; r < objs[i]->nrules; r++)
			rs_expo_sample(e, "resilience_error_budget_burn_alert",
				       (const char *const[]){ "name", objs[i]->name, "rule",
							      objs[i]->rules[r].name, NULL },
				       fires(objs[i], &objs[i]->rules[r], now_ns) ? 1 : 0);
	}
}
