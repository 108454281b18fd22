#include "resilience/hist.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* HdrHistogram's layout: bucket b covers [2^(m+b+u), 2^(m+b+u+1)) in
 * H = 2^m sub-buckets of width 2^(b+u) (bucket 0 also covers [0, H 2^u)).
 * Flattened, value v has index b H + (v >> (b + u)); only the indices from
 * that of lowest_ns to that of highest_ns are stored. */
struct rs_hist {
	const struct rs_alloc *alloc;
	uint64_t lowest, highest;
	int digits;
	int unit_mag;	   /* u: log2 of the narrowest bucket width */
	int half_mag;	   /* m: log2 of H */
	uint64_t half;	   /* H */
	uint64_t sub_mask; /* (2H - 1) << u */
	size_t offset;	   /* absolute index of lowest_ns, stored at counts[0] */
	size_t len;	   /* stored buckets */
	uint64_t total, overflow, min, max;
	uint64_t sum_lo, sum_hi; /* 128-bit sum of the values */
	uint64_t counts[];
};

static size_t abs_index(const struct rs_hist *h, uint64_t v)
{
	int pow2ceil = 64 - __builtin_clzll(v | h->sub_mask);
	int b = pow2ceil - h->unit_mag - (h->half_mag + 1);
	uint64_t sub = v >> (b + h->unit_mag);

	return ((size_t)(b + 1) << h->half_mag) + (size_t)(sub - h->half);
}

/* Lower bound and width of the bucket at absolute index i. */
static void abs_range(const struct rs_hist *h, size_t i, uint64_t *lo, uint64_t *width)
{
	size_t b = 0, sub = i;

	if (i >= h->half) {
		b = (i >> h->half_mag) - 1;
		sub = (size_t)h->half + (i & (h->half - 1));
	}
	*lo = (uint64_t)sub << (b + (size_t)h->unit_mag);
	*width = 1ull << (b + (size_t)h->unit_mag);
}

/* Inclusive range of stored bucket i; the last one ends at highest_ns. */
static void stored_range(const struct rs_hist *h, size_t i, uint64_t *lo, uint64_t *hi)
{
	uint64_t width;

	abs_range(h, i + h->offset, lo, &width);
	*hi = *lo + width - 1 > h->highest ? h->highest : *lo + width - 1;
}

int rs_hist_new(struct rs_hist **out, const struct rs_hist_opts *opts, struct rs_err *err)
{
	struct rs_hist shape = { 0 }, *h;
	uint64_t need;
	int log2_lowest;

	*out = NULL;
	if (!opts)
		return rs__einval(err, "hist: opts is NULL");
	if (opts->lowest_ns < 1)
		return rs__einval(err, "hist: lowest_ns must be >= 1, got 0");
	if (opts->highest_ns > (uint64_t)INT64_MAX)
		return rs__einval(err, "hist: highest_ns must be <= %lld, got %llu",
				  (long long)INT64_MAX, (unsigned long long)opts->highest_ns);
	if (opts->highest_ns / 2 < opts->lowest_ns)
		return rs__einval(
		    err, "hist: highest_ns must be >= 2 * lowest_ns (lowest_ns %llu), got %llu",
		    (unsigned long long)opts->lowest_ns, (unsigned long long)opts->highest_ns);
	if (opts->significant_digits < 1 || opts->significant_digits > 5)
		return rs__einval(err, "hist: significant_digits must be in [1, 5], got %d",
				  opts->significant_digits);

	shape.lowest = opts->lowest_ns;
	shape.highest = opts->highest_ns;
	shape.digits = opts->significant_digits;
	/* 2H is the smallest power of two >= 2 * 10^digits, so a bucket at
	 * or above H 2^u is at most 1/H of its values wide. */
	need = 2;
	for (int d = 0; d < shape.digits; d++)
		need *= 10;
	shape.half_mag = 0;
	while ((2ull << shape.half_mag) < need)
		shape.half_mag++;
	shape.half = 1ull << shape.half_mag;
	/* Largest u with H 2^u <= lowest_ns: full precision from lowest_ns. */
	log2_lowest = 63 - __builtin_clzll(shape.lowest);
	shape.unit_mag = log2_lowest > shape.half_mag ? log2_lowest - shape.half_mag : 0;
	shape.sub_mask = (2 * shape.half - 1) << shape.unit_mag;
	shape.offset = abs_index(&shape, shape.lowest);
	shape.len = abs_index(&shape, shape.highest) - shape.offset + 1;

	h = rs__calloc(opts->alloc, 1, sizeof(*h) + shape.len * sizeof(uint64_t));
	if (!h)
		return rs__enomem(err, "hist");
	memcpy(h, &shape, sizeof(shape));
	h->alloc = opts->alloc;
	h->min = UINT64_MAX;
	*out = h;
	return 0;
}

void rs_hist_free(struct rs_hist *h)
{
	if (h)
		rs__free(h->alloc, h);
}

static inline void add_sum(struct rs_hist *h, uint64_t lo, uint64_t hi)
{
	h->sum_lo += lo;
	h->sum_hi += hi + (h->sum_lo < lo);
}

void rs_hist_record(struct rs_hist *h, uint64_t v)
{
	if (v > h->highest) {
		h->overflow++;
	} else {
		size_t i = v < h->lowest ? 0 : abs_index(h, v) - h->offset;

		h->counts[i]++;
	}
	h->total++;
	add_sum(h, v, 0);
	h->min = v < h->min ? v : h->min;
	h->max = v > h->max ? v : h->max;
}

/* The 128-bit product a * b as (hi, lo). */
static void mul128(uint64_t a, uint64_t b, uint64_t *hi, uint64_t *lo)
{
	uint64_t a0 = (uint32_t)a, a1 = a >> 32, b0 = (uint32_t)b, b1 = b >> 32;
	uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
	uint64_t mid = (p00 >> 32) + (uint32_t)p01 + (uint32_t)p10;

	*lo = (mid << 32) | (uint32_t)p00;
	*hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

void rs_hist_record_n(struct rs_hist *h, uint64_t v, uint64_t n)
{
	uint64_t hi, lo;

	if (n == 0)
		return;
	if (v > h->highest)
		h->overflow += n;
	else
		h->counts[v < h->lowest ? 0 : abs_index(h, v) - h->offset] += n;
	h->total += n;
	mul128(v, n, &hi, &lo);
	add_sum(h, lo, hi);
	h->min = v < h->min ? v : h->min;
	h->max = v > h->max ? v : h->max;
}

int rs_hist_merge(struct rs_hist *dst, const struct rs_hist *src, struct rs_err *err)
{
	if (dst->lowest != src->lowest || dst->highest != src->highest ||
	    dst->digits != src->digits)
		return rs__einval(
		    err,
		    "hist: cannot merge a histogram of lowest_ns %llu, highest_ns %llu, "
		    "significant_digits %d into one of %llu, %llu, %d",
		    (unsigned long long)src->lowest, (unsigned long long)src->highest, src->digits,
		    (unsigned long long)dst->lowest, (unsigned long long)dst->highest, dst->digits);
	for (size_t i = 0; i < dst->len; i++)
		dst->counts[i] += src->counts[i];
	dst->overflow += src->overflow;
	dst->total += src->total;
	add_sum(dst, src->sum_lo, src->sum_hi);
	dst->min = src->min < dst->min ? src->min : dst->min;
	dst->max = src->max > dst->max ? src->max : dst->max;
	return 0;
}

void rs_hist_reset(struct rs_hist *h)
{
	memset(h->counts, 0, h->len * sizeof(uint64_t));
	h->total = h->overflow = h->max = h->sum_lo = h->sum_hi = 0;
	h->min = UINT64_MAX;
}

int rs_hist_quantile(const struct rs_hist *h, double q, uint64_t *value_ns)
{
	uint64_t rank, cum, lo, hi, mid;
	size_t i;
	double r;

	if (!(q >= 0.0 && q <= 1.0))
		return -EINVAL;
	if (h->total == 0)
		return -ENODATA;
	r = ceil(q * (double)h->total);
	rank = r < 1.0 ? 1 : r >= (double)h->total ? h->total : (uint64_t)r;
	i = 0;
	if (rank <= h->total / 2 && rank <= h->total - h->overflow) {
		/* Low ranks: count up from the smallest values. */
		for (cum = h->counts[0]; cum < rank; cum += h->counts[i])
			i++;
	} else {
		/* High ranks (p99 and up are the common ones): the rank-th
		 * smallest is the (total - rank + 1)-th largest. */
		uint64_t from_top = h->total - rank + 1;

		cum = h->overflow;
		if (cum >= from_top) {
			*value_ns = h->max; /* the rank is among the overflow values */
			return 0;
		}
		for (i = h->len - 1, cum += h->counts[i]; cum < from_top; cum += h->counts[i])
			i--;
	}
	stored_range(h, i, &lo, &hi);
	mid = lo + (hi - lo + 1) / 2;
	*value_ns = mid < h->min ? h->min : mid > h->max ? h->max : mid;
	return 0;
}

uint64_t rs_hist_count(const struct rs_hist *h)
{
	return h->total;
}

uint64_t rs_hist_overflow(const struct rs_hist *h)
{
	return h->overflow;
}

uint64_t rs_hist_min(const struct rs_hist *h)
{
	return h->total ? h->min : 0;
}

uint64_t rs_hist_max(const struct rs_hist *h)
{
	return h->max;
}

double rs_hist_sum(const struct rs_hist *h)
{
	return (double)h->sum_hi * 0x1.0p64 + (double)h->sum_lo;
}

double rs_hist_mean(const struct rs_hist *h)
{
	return h->total ? rs_hist_sum(h) / (double)h->total : NAN;
}

void rs_hist_iter_init(struct rs_hist_iter *it, const struct rs_hist *h)
{
	it->h = h;
	it->i = 0;
}

bool rs_hist_iter_next(struct rs_hist_iter *it, struct rs_hist_bucket *b)
{
	const struct rs_hist *h = it->h;
	uint64_t lo, hi;

	while (it->i < h->len && h->counts[it->i] == 0)
		it->i++;
	if (it->i < h->len) {
		stored_range(h, it->i, &lo, &hi);
		b->lo_ns = it->i == 0 ? 0 : lo;
		b->hi_ns = hi;
		b->count = h->counts[it->i++];
		return true;
	}
	if (it->i == h->len && h->overflow) {
		it->i++;
		b->lo_ns = h->highest + 1;
		b->hi_ns = h->max;
		b->count = h->overflow;
		return true;
	}
	it->i = h->len + 1;
	return false;
}

/* Shortest %g rendering that reads back as the same double, as Prometheus
 * clients print le ("0.005", "1", "2.5"). */
static void fmt_le(char *buf, size_t n, double v)
{
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, n, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

/* The number of stored buckets, from the first, that a cumulative bucket
 * `le` of le_ns counts: every bucket whose lower bound is at most le_ns (the
 * first one always, as it holds the values below lowest). */
static size_t le_boundary(const struct rs_hist *h, double le_ns)
{
	uint64_t v;
	size_t n;

	if (le_ns >= (double)h->highest)
		return h->len;
	v = (uint64_t)le_ns; /* bucket bounds are integers: lo <= le_ns iff lo <= floor */
	if (v < h->lowest)
		return 1;
	n = abs_index(h, v) - h->offset + 1;
	return n < h->len ? n : h->len;
}

int rs_hist_expo(struct rs_expo *e, const char *name, const char *const *labels,
		 const struct rs_hist *h, const double *le_seconds, size_t nle)
{
	const char *lab[2 * RS_HIST_EXPO_MAX_LABELS + 3];
	char sample[RS_HIST_EXPO_NAME_MAX + 8], le[32];
	size_t nlab = 0, namelen = strlen(name), i = 0, first = 0, end = 0;
	uint64_t cum = 0;

	if (namelen == 0 || namelen > RS_HIST_EXPO_NAME_MAX)
		return -EINVAL;
	for (; labels && labels[nlab]; nlab += 2) {
		if (nlab / 2 >= RS_HIST_EXPO_MAX_LABELS || !labels[nlab + 1] ||
		    strcmp(labels[nlab], "le") == 0)
			return -EINVAL;
		lab[nlab] = labels[nlab];
		lab[nlab + 1] = labels[nlab + 1];
	}
	for (size_t k = 0; k < nle; k++)
		if (!isfinite(le_seconds[k]) || le_seconds[k] < 0 ||
		    (k && le_seconds[k] <= le_seconds[k - 1]))
			return -EINVAL;
	lab[nlab] = "le";
	lab[nlab + 1] = le;
	lab[nlab + 2] = NULL;

	/* Only the stored buckets from min's to max's can hold counts (min and
	 * max only ever widen), so only those are summed: a scrape costs the
	 * recorded range, not the whole table. */
	if (h->total > h->overflow) {
		first = h->min < h->lowest ? 0 : abs_index(h, h->min) - h->offset;
		end = h->max > h->highest ? h->len : abs_index(h, h->max) - h->offset + 1;
	}
	snprintf(sample, sizeof(sample), "%s_bucket", name);
	for (size_t k = 0; k < nle; k++) {
		double le_ns = le_seconds[k] * 1e9;
		size_t upto = le_boundary(h, le_ns);

		/* Buckets are summed once over all the bounds: le ascends. */
		if (upto > i) {
			for (size_t j = i > first ? i : first; j < upto && j < end; j++)
				cum += h->counts[j];
			i = upto;
		}
		fmt_le(le, sizeof(le), le_seconds[k]);
		rs_expo_sample(
		    e, sample, lab,
		    (double)(cum + (h->overflow && (double)h->max <= le_ns ? h->overflow : 0)));
	}
	snprintf(le, sizeof(le), "+Inf");
	rs_expo_sample(e, sample, lab, (double)h->total);
	lab[nlab] = NULL;
	snprintf(sample, sizeof(sample), "%s_sum", name);
	rs_expo_sample(e, sample, lab, rs_hist_sum(h) / 1e9);
	snprintf(sample, sizeof(sample), "%s_count", name);
	rs_expo_sample(e, sample, lab, (double)h->total);
	return 0;
}
