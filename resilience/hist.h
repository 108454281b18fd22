/* A log-linear latency histogram with HdrHistogram's bucket layout.
 *
 * Values are nanoseconds.  Between lowest_ns and highest_ns every recorded
 * value keeps `significant_digits` decimal digits: a bucket is never wider
 * than 1/2^m of its values, where 2^(m+1) is the smallest power of two
 * >= 2 * 10^digits (for 3 digits, 1/1024 of the value, 0.098%).  With
 * RS_HIST_LATENCY_OPTS (1 us to 1 hour, 3 digits) the counts array holds
 * 32421 buckets, 253 KiB, allocated once by rs_hist_new.
 *
 * Out of range values are counted, never dropped:
 *  - below lowest_ns they land in the first bucket, whose range starts at 0
 *    (resolution below lowest_ns is that one bucket);
 *  - above highest_ns they are counted as overflow (rs_hist_overflow), are
 *    part of the total count, the sum and the mean, and max records the true
 *    maximum; a quantile whose rank falls among them reports max.
 * min, max, mean and the sum are exact (kept beside the buckets, the sum in
 * 128 bits); quantiles come from the buckets.
 *
 * Threads: single writer.  One thread owns a histogram and is the only one
 * that records into it, resets it, or reads it while it may change; nothing
 * here locks or uses atomics.  A harness with several threads gives each its
 * own histogram and merges them (rs_hist_merge) after the threads are done
 * or under its own synchronisation.
 */
#ifndef RESILIENCE_HIST_H
#define RESILIENCE_HIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resilience/alloc.h"
#include "resilience/clock.h"
#include "resilience/err.h"
#include "resilience/expo.h"

struct rs_hist;

struct rs_hist_opts {
	const struct rs_alloc *alloc; /* NULL = libc; borrowed, must outlive the histogram */
	uint64_t lowest_ns;	      /* >= 1: smallest value recorded at full precision */
	uint64_t highest_ns;	      /* >= 2 * lowest_ns, <= INT64_MAX: larger is overflow */
	int significant_digits;	      /* 1..5 */
};

/* Designated-initializer fields for the latency default: 1 us to 1 hour,
 * 3 significant digits.  Use as
 *   struct rs_hist_opts o = { RS_HIST_LATENCY_OPTS, .alloc = a };          */
#define RS_HIST_LATENCY_OPTS                                                                       \
	.lowest_ns = RS_NS_PER_US, .highest_ns = 3600ull * RS_NS_PER_SEC, .significant_digits = 3

/* One non-empty bucket as the iterator reports it: `count` values lie in
 * [lo_ns, hi_ns] (inclusive).  The first bucket has lo_ns = 0 (it also
 * holds the values below lowest_ns); the overflow bucket, reported last,
 * is [highest_ns + 1, max]. */
struct rs_hist_bucket {
	uint64_t lo_ns;
	uint64_t hi_ns;
	uint64_t count;
};

/* Caller-embedded iterator over the non-empty buckets, in increasing value
 * order.  Fields are private.  The histogram must not change while an
 * iteration is under way. */
struct rs_hist_iter {
	const struct rs_hist *h;
	size_t i;
};

/* Validates opts and allocates an empty histogram (one allocation, sized
 * from the config).  Returns 0 and sets *out (caller-frees with
 * rs_hist_free), -EINVAL with a message naming the bad field, or -ENOMEM;
 * on failure *out is NULL and nothing is leaked.  Any thread. */
int rs_hist_new(struct rs_hist **out, const struct rs_hist_opts *opts, struct rs_err *err) RS_WUR;

/* Frees the histogram; accepts NULL. */
void rs_hist_free(struct rs_hist *h);

/* Records one value (nanoseconds).  O(1), never allocates, never fails.
 * Owner thread only. */
void rs_hist_record(struct rs_hist *h, uint64_t value_ns);

/* Records `count` occurrences of one value; count 0 changes nothing.  Owner
 * thread only. */
void rs_hist_record_n(struct rs_hist *h, uint64_t value_ns, uint64_t count);

/* Adds every count of src into dst (dst becomes the histogram of the union;
 * src is unchanged).  Both must have the same lowest_ns, highest_ns and
 * significant_digits, else -EINVAL naming the difference and dst is
 * untouched.  Never allocates.  Neither may be written meanwhile. */
int rs_hist_merge(struct rs_hist *dst, const struct rs_hist *src, struct rs_err *err) RS_WUR;

/* Empties the histogram (counts, overflow, min, max, sum); keeps the
 * allocation.  Owner thread only. */
void rs_hist_reset(struct rs_hist *h);

/* The value at quantile q in [0, 1], into *value_ns.  The rank is the
 * nearest rank ceil(q * count), at least 1 (q = 0 is the minimum's bucket,
 * q = 1 the maximum); the value reported is the midpoint of the bucket that
 * holds that rank, clamped to [min, max], so it is within half a bucket
 * (0.049% for 3 digits) of the exact sorted-sample quantile for values in
 * [lowest_ns, highest_ns].  A rank among the overflow values reports max.
 * Returns 0, -EINVAL for q NaN or outside [0, 1], -ENODATA when the
 * histogram is empty (*value_ns untouched on error).  O(buckets); never
 * allocates. */
int rs_hist_quantile(const struct rs_hist *h, double q, uint64_t *value_ns) RS_WUR;

/* Values recorded, including overflow. */
uint64_t rs_hist_count(const struct rs_hist *h);

/* Values recorded above highest_ns. */
uint64_t rs_hist_overflow(const struct rs_hist *h);

/* Exact smallest / largest value recorded; 0 when empty. */
uint64_t rs_hist_min(const struct rs_hist *h);
uint64_t rs_hist_max(const struct rs_hist *h);

/* Exact mean in nanoseconds (from the 128-bit sum); NaN when empty. */
double rs_hist_mean(const struct rs_hist *h);

/* Exact sum of the values, in nanoseconds, as a double. */
double rs_hist_sum(const struct rs_hist *h);

/* Starts an iteration over h's non-empty buckets (h is borrowed). */
void rs_hist_iter_init(struct rs_hist_iter *it, const struct rs_hist *h);

/* Fills *b with the next non-empty bucket and returns true, or returns
 * false when there is none left.  The counts of all buckets sum to
 * rs_hist_count. */
bool rs_hist_iter_next(struct rs_hist_iter *it, struct rs_hist_bucket *b);

#define RS_HIST_EXPO_MAX_LABELS 8 /* label pairs besides le */
#define RS_HIST_EXPO_NAME_MAX	200

/* Writes one labelled Prometheus histogram in seconds:
 *   <name>_bucket{<labels>,le="<le>"} cumulative count, for each le, then
 *   <name>_bucket{<labels>,le="+Inf"} count, <name>_sum, <name>_count.
 * The caller writes the family header (rs_expo_family(e, name,
 * RS_EXPO_HISTOGRAM, help)) once and then calls this for each labelled
 * histogram of the family, because a family's samples must be contiguous
 * and may come from several histograms.
 * `labels`: NULL or NULL-terminated key, value pairs (at most
 * RS_HIST_EXPO_MAX_LABELS pairs, no "le"); borrowed.  `le_seconds`: nle
 * finite upper bounds >= 0 in strictly increasing order, without +Inf
 * (added here); borrowed.  A bucket of the histogram counts toward le when
 * its lower bound is <= le, so a value equal to le is always counted and
 * one up to a bucket width above le may be; overflow values count toward
 * le only when max <= le.
 * Returns 0, or -EINVAL (name longer than RS_HIST_EXPO_NAME_MAX, too many
 * labels, bad le) with nothing written.  Never allocates; same thread rules
 * as reading the histogram. */
int rs_hist_expo(struct rs_expo *e, const char *name, const char *const *labels,
		 const struct rs_hist *h, const double *le_seconds, size_t nle) RS_WUR;

#endif
