#include "resilience/budget.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "resilience/clock.h"

#define PPM	    1000000ull /* RATIO: ratio in millionths */
#define TTL_SCALE   1000000ll  /* TTL: one retry in token millionths */
#define MILLI	    1000ll     /* THROTTLE: tokens in thousandths, as gRPC */
#define DEFAULT_WIN (10 * RS_NS_PER_SEC)

struct slot {
	uint64_t requests;
	uint64_t retries;
	int64_t tokens; /* TTL: deposits minus withdrawals, in TTL_SCALE units */
};

struct rs_budget {
	enum rs_budget_kind kind;
	uint32_t nbuckets;
	uint32_t head;	      /* the bucket that receives events now */
	uint64_t bucket_ns;   /* width of one bucket */
	uint64_t head_end_ns; /* the current bucket covers [end - width, end) */
	/* Sums over the window, kept as events enter and buckets leave. */
	uint64_t win_requests;
	uint64_t win_retries;
	int64_t win_tokens;
	/* RATIO */
	uint64_t ratio_ppm;
	uint64_t min_requests;
	/* TTL */
	int64_t deposit;
	int64_t reserve;
	/* THROTTLE */
	int64_t tokens_m;
	int64_t max_m;
	int64_t ratio_m;
	/* Cumulative counters. */
	uint64_t requests_total;
	uint64_t retries_total;
	uint64_t denied_total;
	const struct rs_alloc *alloc;
	char name[RS_BUDGET_NAME_MAX];
	struct slot slots[];
};

static int check_window(struct rs_err *err, const char *field, uint64_t window_ns, uint32_t buckets)
{
	if (window_ns == 0)
		return rs__einval(err, "budget: %s must be > 0, got 0", field);
	if (window_ns < buckets)
		return rs__einval(err, "budget: %s must be >= buckets (%u) ns, got %llu", field,
				  buckets, (unsigned long long)window_ns);
	return 0;
}

/* Validates the options of the chosen kind; *window_ns receives the window
 * the buckets span. */
static int check_opts(const struct rs_budget_opts *o, uint32_t buckets, uint64_t *window_ns,
		      struct rs_err *err)
{
	size_t len = o->name ? strlen(o->name) : 0;
	int rc;

	if (!o->name)
		return rs__einval(err, "budget: name must be 1..%d bytes, got NULL",
				  RS_BUDGET_NAME_MAX - 1);
	if (len == 0 || len >= RS_BUDGET_NAME_MAX)
		return rs__einval(err, "budget: name must be 1..%d bytes, got %zu bytes",
				  RS_BUDGET_NAME_MAX - 1, len);
	if (buckets > RS_BUDGET_MAX_BUCKETS)
		return rs__einval(err, "budget '%s': buckets must be in 1..%d (0 for %d), got %u",
				  o->name, RS_BUDGET_MAX_BUCKETS, RS_BUDGET_DEFAULT_BUCKETS,
				  buckets);
	switch (o->kind) {
	case RS_BUDGET_RATIO:
		if (!(o->ratio.ratio >= 0 && o->ratio.ratio <= 1))
			return rs__einval(err, "budget '%s': ratio.ratio must be in [0, 1], got %g",
					  o->name, o->ratio.ratio);
		*window_ns = o->ratio.window_ns;
		return check_window(err, "ratio.window_ns", o->ratio.window_ns, buckets);
	case RS_BUDGET_TTL:
		rc = check_window(err, "ttl.ttl_ns", o->ttl.ttl_ns, buckets);
		if (rc < 0)
			return rc;
		if (!(o->ttl.percent_can_retry >= 0 && o->ttl.percent_can_retry <= 1))
			return rs__einval(err,
					  "budget '%s': ttl.percent_can_retry must be in [0, 1], "
					  "got %g",
					  o->name, o->ttl.percent_can_retry);
		/* The reserve, in retries, must stay far inside an int64 of millionths. */
		if (!(o->ttl.min_retries_per_sec >= 0) ||
		    !(o->ttl.min_retries_per_sec * ((double)o->ttl.ttl_ns / 1e9) <= 1e12))
			return rs__einval(err,
					  "budget '%s': ttl.min_retries_per_sec must be >= 0 and "
					  "finite with min_retries_per_sec * ttl <= 1e12, got %g",
					  o->name, o->ttl.min_retries_per_sec);
		*window_ns = o->ttl.ttl_ns;
		return 0;
	case RS_BUDGET_THROTTLE:
		if (!(o->throttle.max_tokens >= 0.001 && o->throttle.max_tokens <= 1000))
			return rs__einval(err,
					  "budget '%s': throttle.max_tokens must be in [0.001, "
					  "1000], got %g",
					  o->name, o->throttle.max_tokens);
		if (!(o->throttle.token_ratio >= 0.001 && o->throttle.token_ratio <= 1000))
			return rs__einval(err,
					  "budget '%s': throttle.token_ratio must be in [0.001, "
					  "1000], got %g",
					  o->name, o->throttle.token_ratio);
		*window_ns = o->throttle.window_ns ? o->throttle.window_ns : DEFAULT_WIN;
		return check_window(err, "throttle.window_ns", *window_ns, buckets);
	}
	return rs__einval(err, "budget '%s': kind must be ratio, ttl or throttle (0..2), got %d",
			  o->name, (int)o->kind);
}

int rs_budget_new(struct rs_budget **out, const struct rs_budget_opts *opts, struct rs_err *err)
{
	uint32_t buckets = opts->buckets ? opts->buckets : RS_BUDGET_DEFAULT_BUCKETS;
	uint64_t window_ns = 0;
	struct rs_budget *b;
	int rc;

	*out = NULL;
	rc = check_opts(opts, buckets, &window_ns, err);
	if (rc < 0)
		return rc;
	b = rs__calloc(opts->alloc, 1, sizeof(*b) + buckets * sizeof(struct slot));
	if (!b)
		return rs__enomem(err, "budget");
	b->kind = opts->kind;
	b->nbuckets = buckets;
	b->bucket_ns = window_ns / buckets;
	b->alloc = opts->alloc;
	memcpy(b->name, opts->name, strlen(opts->name) + 1);
	switch (opts->kind) {
	case RS_BUDGET_RATIO:
		b->ratio_ppm = (uint64_t)llround(opts->ratio.ratio * (double)PPM);
		b->min_requests = opts->ratio.min_requests;
		break;
	case RS_BUDGET_TTL:
		b->deposit = llround(opts->ttl.percent_can_retry * (double)TTL_SCALE);
		b->reserve =
		    llround(opts->ttl.min_retries_per_sec *
			    ((double)opts->ttl.ttl_ns / (double)RS_NS_PER_SEC) * (double)TTL_SCALE);
		break;
	case RS_BUDGET_THROTTLE:
		b->max_m = llround(opts->throttle.max_tokens * (double)MILLI);
		b->ratio_m = llround(opts->throttle.token_ratio * (double)MILLI);
		b->tokens_m = b->max_m;
		break;
	}
	*out = b;
	return 0;
}

void rs_budget_free(struct rs_budget *b)
{
	if (b)
		rs__free(b->alloc, b);
}

enum rs_budget_kind rs_budget_kind(const struct rs_budget *b)
{
	return b->kind;
}

const char *rs_budget_name(const struct rs_budget *b)
{
	return b->name;
}

/* Moves the window forward so that the head bucket contains now_ns. */
static void rotate(struct rs_budget *b, uint64_t now_ns)
{
	uint64_t steps = (now_ns - b->head_end_ns) / b->bucket_ns + 1;

	if (steps >= b->nbuckets) {
		memset(b->slots, 0, b->nbuckets * sizeof(struct slot));
		b->win_requests = b->win_retries = 0;
		b->win_tokens = 0;
	} else {
		for (uint64_t i = 0; i < steps; i++) {
			struct slot *s;

			b->head = b->head + 1 == b->nbuckets ? 0 : b->head + 1;
			s = &b->slots[b->head];
			b->win_requests -= s->requests;
			b->win_retries -= s->retries;
			b->win_tokens -= s->tokens;
			memset(s, 0, sizeof(*s));
		}
	}
	b->head_end_ns += steps * b->bucket_ns;
}

static inline struct slot *advance(struct rs_budget *b, uint64_t now_ns)
{
	if (now_ns >= b->head_end_ns)
		rotate(b, now_ns);
	return &b->slots[b->head];
}

/* Whether a retry is allowed given the window sums. */
static bool allows(const struct rs_budget *b, uint64_t requests, uint64_t retries, int64_t tokens)
{
	switch (b->kind) {
	case RS_BUDGET_RATIO:
		return requests < b->min_requests || (retries + 1) * PPM <= b->ratio_ppm * requests;
	case RS_BUDGET_TTL:
		return b->reserve + tokens >= TTL_SCALE;
	case RS_BUDGET_THROTTLE:
		return 2 * b->tokens_m > b->max_m;
	}
	return false;
}

void rs_budget_record_request(struct rs_budget *b, uint64_t now_ns)
{
	struct slot *s = advance(b, now_ns);

	s->requests++;
	b->win_requests++;
	b->requests_total++;
	if (b->kind == RS_BUDGET_TTL) {
		s->tokens += b->deposit;
		b->win_tokens += b->deposit;
	}
}

void rs_budget_record_outcome(struct rs_budget *b, bool success, uint64_t now_ns)
{
	(void)now_ns; /* no kind keeps outcomes in the window */
	if (b->kind != RS_BUDGET_THROTTLE)
		return;
	if (success)
		b->tokens_m =
		    b->tokens_m + b->ratio_m > b->max_m ? b->max_m : b->tokens_m + b->ratio_m;
	else
		b->tokens_m = b->tokens_m > MILLI ? b->tokens_m - MILLI : 0;
}

bool rs_budget_try_withdraw(struct rs_budget *b, uint64_t now_ns)
{
	struct slot *s = advance(b, now_ns);

	if (!allows(b, b->win_requests, b->win_retries, b->win_tokens)) {
		b->denied_total++;
		return false;
	}
	s->retries++;
	b->win_retries++;
	b->retries_total++;
	if (b->kind == RS_BUDGET_TTL) {
		s->tokens -= TTL_SCALE;
		b->win_tokens -= TTL_SCALE;
	}
	return true;
}

void rs_budget_status(const struct rs_budget *b, uint64_t now_ns, struct rs_budget_status *st)
{
	uint64_t requests = b->win_requests, retries = b->win_retries;
	int64_t tokens = b->win_tokens, avail;

	/* The sums as rotate() would leave them, without touching the buckets. */
	if (now_ns >= b->head_end_ns) {
		uint64_t steps = (now_ns - b->head_end_ns) / b->bucket_ns + 1;

		if (steps >= b->nbuckets) {
			requests = retries = 0;
			tokens = 0;
		} else {
			uint32_t i = b->head;

			for (uint64_t k = 0; k < steps; k++) {
				i = i + 1 == b->nbuckets ? 0 : i + 1;
				requests -= b->slots[i].requests;
				retries -= b->slots[i].retries;
				tokens -= b->slots[i].tokens;
			}
		}
	}
	memset(st, 0, sizeof(*st));
	st->exhausted = !allows(b, requests, retries, tokens);
	st->ratio = requests ? (double)retries / (double)requests : 0.0;
	st->requests = requests;
	st->retries = retries;
	st->requests_total = b->requests_total;
	st->retries_total = b->retries_total;
	st->denied_total = b->denied_total;
	switch (b->kind) {
	case RS_BUDGET_RATIO:
		avail = (int64_t)(b->ratio_ppm * requests / PPM) - (int64_t)retries;
		st->balance = avail > 0 ? (double)avail : 0.0;
		break;
	case RS_BUDGET_TTL:
		avail = (b->reserve + tokens) / TTL_SCALE;
		st->balance = avail > 0 ? (double)avail : 0.0;
		break;
	case RS_BUDGET_THROTTLE:
		st->balance = (double)b->tokens_m / (double)MILLI;
		break;
	}
}

void rs_budget_expo(struct rs_expo *e, const struct rs_budget *const *b, size_t n, uint64_t now_ns)
{
	static const struct {
		const char *name;
		enum rs_expo_type type;
		const char *help;
	} fam[] = {
		{ "resilience_retry_budget_exhausted", RS_EXPO_GAUGE,
		  "1 while the retry budget would deny a retry, else 0" },
		{ "resilience_retry_budget_ratio", RS_EXPO_GAUGE,
		  "retries per request over the budget's window" },
		{ "resilience_retry_budget_balance", RS_EXPO_GAUGE,
		  "retries (ratio, ttl budgets) or tokens (throttle) available" },
		{ "resilience_retry_budget_denied_total", RS_EXPO_COUNTER,
		  "retries the budget denied" },
	};

	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		rs_expo_family(e, fam[f].name, fam[f].type, fam[f].help);
		for (size_t i = 0; i < n; i++) {
			struct rs_budget_status st;
			const char *labels[] = { "name", NULL, NULL };
			double v = 0;

			if (!b[i])
				continue;
			labels[1] = b[i]->name;
			rs_budget_status(b[i], now_ns, &st);
			switch (f) {
			case 0:
				v = st.exhausted ? 1 : 0;
				break;
			case 1:
				v = st.ratio;
				break;
			case 2:
				v = st.balance;
				break;
			default:
				v = (double)st.denied_total;
				break;
			}
			rs_expo_sample(e, fam[f].name, labels, v);
		}
	}
}
