/* The latency histogram: quantiles within 0.1% of a sorted reference on a
 * million log-uniform samples, exact mean/min/max, merge, range edges,
 * overflow, iteration, exposition, no allocation after construction. */
#include "tests/tap.h"
#include "tests/failalloc.h"
#include "tests/promtext.h"

#include <errno.h>
#include <math.h>

#include "resilience/hist.h"
#include "resilience/rng.h"

enum { N = 1000000 };

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static struct rs_hist *make(const struct rs_alloc *a)
{
	struct rs_hist *h = NULL;
	struct rs_err err = { "" };

	if (rs_hist_new(&h, &(struct rs_hist_opts){ RS_HIST_LATENCY_OPTS, .alloc = a }, &err))
		bail_out("rs_hist_new: %s", err.msg);
	return h;
}

/* Same counts bucket by bucket, same count, overflow, min, max and sum. */
static int same_hist(const struct rs_hist *a, const struct rs_hist *b)
{
	struct rs_hist_iter ia, ib;
	struct rs_hist_bucket ba, bb;
	bool ma, mb;

	if (rs_hist_count(a) != rs_hist_count(b) || rs_hist_overflow(a) != rs_hist_overflow(b) ||
	    rs_hist_min(a) != rs_hist_min(b) || rs_hist_max(a) != rs_hist_max(b) ||
	    rs_hist_sum(a) != rs_hist_sum(b))
		return 0;
	rs_hist_iter_init(&ia, a);
	rs_hist_iter_init(&ib, b);
	do {
		ma = rs_hist_iter_next(&ia, &ba);
		mb = rs_hist_iter_next(&ib, &bb);
		if (ma != mb ||
		    (ma && (ba.lo_ns != bb.lo_ns || ba.hi_ns != bb.hi_ns || ba.count != bb.count)))
			return 0;
	} while (ma);
	return 1;
}

static void test_bad_opts(void)
{
	static const struct {
		struct rs_hist_opts o;
		const char *field;
	} cases[] = {
		{ { .lowest_ns = 0, .highest_ns = 1000, .significant_digits = 3 }, "lowest_ns" },
		{ { .lowest_ns = 1000, .highest_ns = 1999, .significant_digits = 3 },
		  "highest_ns" },
		{ { .lowest_ns = 1,
		    .highest_ns = (uint64_t)INT64_MAX + 1,
		    .significant_digits = 3 },
		  "highest_ns" },
		{ { .lowest_ns = 1000, .highest_ns = 1000000, .significant_digits = 0 },
		  "significant_digits" },
		{ { .lowest_ns = 1000, .highest_ns = 1000000, .significant_digits = 6 },
		  "significant_digits" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct rs_hist *h = (struct rs_hist *)1;
		struct rs_err err = { "" };
		int rc = rs_hist_new(&h, &cases[i].o, &err);

		ok(rc == -EINVAL && h == NULL && strstr(err.msg, cases[i].field),
		   "bad option %zu: -EINVAL naming %s (%s)", i + 1, cases[i].field, err.msg);
	}
}

static void test_alloc_failure(void)
{
	struct failalloc fa;
	struct rs_hist *h;
	struct rs_err err;
	int bad = 0, n, rc;

	for (n = 1;; n++) {
		failalloc_init(&fa, n);
		rc = rs_hist_new(
		    &h, &(struct rs_hist_opts){ RS_HIST_LATENCY_OPTS, .alloc = &fa.alloc }, &err);
		if (rc == 0)
			break;
		bad += rc != -ENOMEM || fa.live != 0 || h != NULL || !strstr(err.msg, "hist");
	}
	rs_hist_free(h);
	ok(bad == 0 && fa.live == 0 && n == 2,
	   "allocation failure 1 of 1 returns -ENOMEM and leaks nothing; run %d succeeds", n);
}

/* 1e6 log-uniform samples in [1 us, 10 s], seed 42. */
static void test_quantiles(struct rs_hist **keep, uint64_t *sorted)
{
	static const double qs[] = { 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0 };
	static const char *const qname[] = { "p50", "p90", "p99", "p99.9", "p99.99", "max" };
	static struct failalloc fa; /* outlives this function: *keep uses it */
	struct rs_hist *h, *even, *odd, *other;
	struct rs_rng rng;
	struct rs_err err = { "" };
	struct rs_hist_iter it;
	struct rs_hist_bucket b;
	long calls_after_new;
	double lo = log(1e3), hi = log(1e10), exact_sum = 0;
	uint64_t v, iter_total = 0, prev_hi = 0;
	int rc, ordered = 1;

	failalloc_init(&fa, 0);
	h = make(&fa.alloc);
	even = make(&fa.alloc);
	odd = make(&fa.alloc);
	calls_after_new = fa.calls;

	rs_rng_seed(&rng, 42);
	for (int i = 0; i < N; i++) {
		v = (uint64_t)llround(exp(lo + rs_rng_double(&rng) * (hi - lo)));
		sorted[i] = v;
		exact_sum += (double)v;
		rs_hist_record(h, v);
		rs_hist_record(i % 2 ? odd : even, v);
	}
	qsort(sorted, N, sizeof(sorted[0]), cmp_u64);

	for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
		double r = ceil(qs[k] * N);
		uint64_t want = sorted[(size_t)(r < 1 ? 1 : r) - 1], got = 0;

		rc = rs_hist_quantile(h, qs[k], &got);
		ok(rc == 0 && fabs((double)got - (double)want) <= 0.001 * (double)want,
		   "%s of %d log-uniform samples within 0.1%% of the sorted reference "
		   "(got %llu, want %llu, rel err %.2e)",
		   qname[k], N, (unsigned long long)got, (unsigned long long)want,
		   fabs((double)got - (double)want) / (double)want);
	}
	{
		int bad = 0;
		double worst = 0;

		/* Both scan directions (from the bottom below the median, from
		 * the top above it) against the reference. */
		for (int k = 0; k <= 1000; k++) {
			double q = k / 1000.0, r = ceil(q * N), e;
			uint64_t want = sorted[(size_t)(r < 1 ? 1 : r) - 1], got = 0;

			rc = rs_hist_quantile(h, q, &got);
			e = fabs((double)got - (double)want) / (double)want;
			worst = e > worst ? e : worst;
			bad += rc != 0 || e > 0.001;
		}
		ok(bad == 0, "all 1001 quantiles q = 0, 0.001, ..., 1 within 0.1%% (worst %.2e)",
		   worst);
	}
	is_int((long long)rs_hist_max(h), (long long)sorted[N - 1], "max is exact (%llu ns)",
	       (unsigned long long)sorted[N - 1]);
	is_int((long long)rs_hist_min(h), (long long)sorted[0], "min is exact (%llu ns)",
	       (unsigned long long)sorted[0]);
	{
		double want = exact_sum / N, got = rs_hist_mean(h);

		ok(fabs(got - want) <= 0.001 * want, "mean within 0.1%% (got %.1f, want %.1f)", got,
		   want);
	}
	is_int((long long)rs_hist_count(h), N, "count is %d", N);

	rs_hist_iter_init(&it, h);
	while (rs_hist_iter_next(&it, &b)) {
		ordered &= b.lo_ns <= b.hi_ns && (iter_total == 0 || b.lo_ns > prev_hi) && b.count;
		prev_hi = b.hi_ns;
		iter_total += b.count;
	}
	is_int((long long)iter_total, N, "iterator counts sum to the total %d", N);
	ok(ordered, "iterator buckets are non-empty, ascending and disjoint");

	rc = rs_hist_merge(even, odd, &err);
	ok(rc == 0 && same_hist(even, h),
	   "merge of the even and odd halves equals the histogram of all %d samples", N);
	is_int((long long)rs_hist_count(odd), N / 2, "merge leaves the source unchanged (%d)",
	       N / 2);
	is_int(fa.calls, calls_after_new,
	       "no allocation after construction: 2e6 records, quantiles, iteration, merge");

	{
		struct rs_hist_opts o = { RS_HIST_LATENCY_OPTS };

		o.significant_digits = 2;
		if (rs_hist_new(&other, &o, &err))
			bail_out("%s", err.msg);
		rc = rs_hist_merge(h, other, &err);
		ok(rc == -EINVAL && strstr(err.msg, "significant_digits") && rs_hist_count(h) == N,
		   "merge of a 2-digit into a 3-digit histogram: -EINVAL, dst untouched (%s)",
		   err.msg);
		rs_hist_free(other);
	}
	rs_hist_free(even);
	rs_hist_free(odd);
	*keep = h;
}

static void test_edges(void)
{
	struct rs_hist *h = make(NULL), *one = make(NULL), *many = make(NULL);
	struct rs_hist_iter it;
	struct rs_hist_bucket b[4];
	uint64_t hour = 3600ull * RS_NS_PER_SEC, v = 0;
	int nb = 0, rc;

	rs_hist_record(h, 1000);
	rs_hist_iter_init(&it, h);
	while (nb < 4 && rs_hist_iter_next(&it, &b[nb]))
		nb++;
	ok(nb == 1 && b[0].lo_ns == 0 && b[0].hi_ns == 1000 && b[0].count == 1 &&
	       rs_hist_overflow(h) == 0,
	   "1 us lands in the first bucket [0, 1000] (the one below lowest_ns too), no overflow");
	rc = rs_hist_quantile(h, 0.5, &v);
	ok(rc == 0 && v == 1000, "quantile of a lone 1 us sample is 1000 ns (got %llu)",
	   (unsigned long long)v);

	rs_hist_record(h, 999);
	rs_hist_record(h, 0);
	rs_hist_iter_init(&it, h);
	nb = 0;
	while (nb < 4 && rs_hist_iter_next(&it, &b[nb]))
		nb++;
	ok(nb == 1 && b[0].count == 3 && rs_hist_min(h) == 0,
	   "999 ns and 0 ns land in the first bucket too (3 values), min stays exact (0)");

	rs_hist_reset(h);
	rs_hist_record(h, hour);
	rs_hist_iter_init(&it, h);
	nb = 0;
	while (nb < 4 && rs_hist_iter_next(&it, &b[nb]))
		nb++;
	ok(nb == 1 && b[0].lo_ns <= hour && b[0].hi_ns == hour && b[0].count == 1 &&
	       (double)(hour - b[0].lo_ns) <= 0.001 * (double)hour && rs_hist_overflow(h) == 0,
	   "1 h lands in the last bucket [%llu, %llu], not in overflow",
	   (unsigned long long)b[0].lo_ns, (unsigned long long)b[0].hi_ns);
	rc = rs_hist_quantile(h, 1.0, &v);
	ok(rc == 0 && v == hour, "quantile of a lone 1 h sample is 1 h exactly (clamped to max)");

	rs_hist_record(h, hour + 1);
	rs_hist_record(h, 10 * hour);
	rs_hist_iter_init(&it, h);
	nb = 0;
	while (nb < 4 && rs_hist_iter_next(&it, &b[nb]))
		nb++;
	ok(rs_hist_overflow(h) == 2 && rs_hist_count(h) == 3 && rs_hist_max(h) == 10 * hour,
	   "1 h + 1 ns and 10 h count as 2 overflows, in the total 3, max the true 10 h");
	ok(nb == 2 && b[1].lo_ns == hour + 1 && b[1].hi_ns == 10 * hour && b[1].count == 2,
	   "the iterator ends with the overflow bucket [1 h + 1 ns, 10 h] holding 2");
	rc = rs_hist_quantile(h, 0.9, &v);
	ok(rc == 0 && v == 10 * hour, "p90 falls among the overflow values and reports max");
	rc = rs_hist_quantile(h, 0.0, &v);
	ok(rc == 0 && v == hour, "p0 reports the minimum's bucket (1 h)");
	ok(fabs(rs_hist_mean(h) - (12.0 * (double)hour + 1) / 3) < 1.0,
	   "mean includes overflow values exactly");
	rs_hist_record(h, 10 * hour);
	{
		uint64_t q25 = 0, q50 = 0;

		rc = rs_hist_quantile(h, 0.25, &q25);
		rc |= rs_hist_quantile(h, 0.5, &q50);
		ok(rc == 0 && q25 == hour && q50 == 10 * hour,
		   "3 of 4 values in overflow: p25 is the 1 h bucket, p50 reports max (10 h)");
	}

	/* record_n and the 128-bit sum: 1e7 x 1 h = 3.6e19 ns > 2^64, once as
	 * one product and once as two sums of 1.8e19 that carry. */
	rs_hist_record_n(one, hour, 10000000);
	rs_hist_record_n(many, hour, 5000000);
	rs_hist_record_n(many, hour, 5000000);
	ok(rs_hist_count(one) == 10000000 && rs_hist_mean(one) == (double)hour &&
	       rs_hist_sum(one) == 3.6e19 && rs_hist_sum(many) == 3.6e19 &&
	       rs_hist_mean(many) == (double)hour,
	   "record_n(1 h, 1e7) and 2 x record_n(1 h, 5e6): sum 3.6e19 ns past 2^64 stays "
	   "exact, mean 1 h");
	rs_hist_reset(many);
	for (int i = 0; i < 5; i++)
		rs_hist_record(many, 123456789);
	rs_hist_record_n(h, 5, 0);
	rs_hist_reset(one);
	rs_hist_record_n(one, 123456789, 5);
	ok(same_hist(one, many), "record_n(v, 5) equals five record(v)");
	ok(rs_hist_count(h) == 4 && rs_hist_min(h) == hour,
	   "record_n(5 ns, 0) changed nothing (count 4, min 1 h)");

	{
		/* Four values in 1-ns buckets: the nearest rank, exactly, from
		 * both scan directions. */
		static const double q[] = { 0, 0.25, 0.26, 0.5, 0.51, 0.75, 0.76, 1 };
		static const uint64_t want[] = { 1000, 1000, 1200, 1200, 1400, 1400, 1600, 1600 };
		struct rs_hist *four = make(NULL);
		int bad = 0;

		for (int i = 0; i < 4; i++)
			rs_hist_record(four, 1000 + 200 * (uint64_t)i);
		for (int i = 0; i < 8; i++) {
			rc = rs_hist_quantile(four, q[i], &v);
			bad += rc != 0 || v != want[i];
			if (rc != 0 || v != want[i])
				diag("q %.2f: got %llu, want %llu", q[i], (unsigned long long)v,
				     (unsigned long long)want[i]);
		}
		ok(bad == 0, "1000, 1200, 1400, 1600 ns: q 0..1 gives the nearest rank exactly");
		rs_hist_free(four);
	}
	ok(rs_hist_quantile(h, -0.01, &v) == -EINVAL && rs_hist_quantile(h, 1.01, &v) == -EINVAL &&
	       rs_hist_quantile(h, NAN, &v) == -EINVAL,
	   "quantile of -0.01, 1.01 and NaN is -EINVAL");
	rs_hist_reset(h);
	ok(rs_hist_count(h) == 0 && rs_hist_overflow(h) == 0 && rs_hist_max(h) == 0 &&
	       rs_hist_min(h) == 0 && isnan(rs_hist_mean(h)) &&
	       rs_hist_quantile(h, 0.5, &v) == -ENODATA,
	   "after reset: count 0, min/max 0, mean NaN, quantile -ENODATA");
	rs_hist_iter_init(&it, h);
	ok(!rs_hist_iter_next(&it, &b[0]), "after reset the iterator yields nothing");
	rs_hist_free(h);
	rs_hist_free(one);
	rs_hist_free(many);
}

static const char golden[] = "# HELP app_latency_seconds request latency\n"
			     "# TYPE app_latency_seconds histogram\n"
			     "app_latency_seconds_bucket{route=\"/a\",le=\"0.001\"} 2\n"
			     "app_latency_seconds_bucket{route=\"/a\",le=\"0.005\"} 4\n"
			     "app_latency_seconds_bucket{route=\"/a\",le=\"0.1\"} 4\n"
			     "app_latency_seconds_bucket{route=\"/a\",le=\"+Inf\"} 5\n"
			     "app_latency_seconds_sum{route=\"/a\"} 2.01\n"
			     "app_latency_seconds_count{route=\"/a\"} 5\n"
			     "app_latency_seconds_bucket{route=\"/b\",le=\"0.001\"} 0\n"
			     "app_latency_seconds_bucket{route=\"/b\",le=\"0.005\"} 0\n"
			     "app_latency_seconds_bucket{route=\"/b\",le=\"0.1\"} 0\n"
			     "app_latency_seconds_bucket{route=\"/b\",le=\"+Inf\"} 0\n"
			     "app_latency_seconds_sum{route=\"/b\"} 0\n"
			     "app_latency_seconds_count{route=\"/b\"} 0\n";

static void test_expo(void)
{
	static const double le[] = { 0.001, 0.005, 0.1 };
	static const double desc[] = { 0.1, 0.005 };
	struct rs_hist *a = make(NULL), *b = make(NULL);
	char buf[4096], why[256] = "";
	struct rs_expo e;
	size_t len;
	int rc;

	rs_hist_record_n(a, 1000000, 2); /* exactly 1 ms: counted in le 0.001 */
	rs_hist_record(a, 3000000);
	rs_hist_record(a, 5000000);
	rs_hist_record(a, 2000000000);
	rs_expo_init(&e, buf, sizeof(buf));
	rs_expo_family(&e, "app_latency_seconds", RS_EXPO_HISTOGRAM, "request latency");
	rc = rs_hist_expo(&e, "app_latency_seconds", (const char *[]){ "route", "/a", NULL }, a, le,
			  3);
	rc |= rs_hist_expo(&e, "app_latency_seconds", (const char *[]){ "route", "/b", NULL }, b,
			   le, 3);
	ok(rc == 0 && rs_expo_finish(&e) == 0, "two labelled histograms export into one family");
	is_str(buf, golden, "histogram exposition matches the golden text");
	rc = promtext_check(buf, why, sizeof(why));
	ok(rc == 12, "the strict text-format checker accepts it with 12 samples (%d %s)", rc, why);

	len = e.len;
	rc = rs_hist_expo(&e, "app_latency_seconds", NULL, a, desc, 2);
	ok(rc == -EINVAL && e.len == len, "descending le bounds: -EINVAL, nothing written");
	rc = rs_hist_expo(&e, "app_latency_seconds", (const char *[]){ "le", "1", NULL }, a, le, 3);
	ok(rc == -EINVAL && e.len == len, "a caller label named le: -EINVAL, nothing written");
	rc = rs_hist_expo(&e, "app_latency_seconds",
			  (const char *[]){ "a", "1", "b", "2", "c", "3", "d", "4", "e", "5", "f",
					    "6", "g", "7", "h", "8", "i", "9", NULL },
			  a, le, 3);
	ok(rc == -EINVAL && e.len == len, "9 label pairs (max 8): -EINVAL, nothing written");
	rc = rs_hist_expo(&e, "app_latency_seconds", NULL, a, (const double[]){ NAN }, 1);
	ok(rc == -EINVAL && e.len == len, "a NaN le bound: -EINVAL, nothing written");
	rs_hist_free(a);
	rs_hist_free(b);
}

/* The million-sample histogram bucketed at 1 ms: le 0.001 holds every
 * sample <= 1 ms plus those above it in the same 512 ns bucket (the log-
 * uniform density there is ~32 per 512 ns). */
static void test_expo_big(const struct rs_hist *big, const uint64_t *sorted)
{
	char buf[1024];
	struct rs_expo e;
	double v = -1;
	uint64_t below = 0;
	int rc, found;

	rs_expo_init(&e, buf, sizeof(buf));
	rc = rs_hist_expo(&e, "x_seconds", NULL, big, (const double[]){ 0.001 }, 1);
	found = promtext_value(buf, "x_seconds_bucket{le=\"0.001\"}", &v);
	while (below < N && sorted[below] <= 1000000)
		below++;
	ok(rc == 0 && found && v >= (double)below && v <= (double)below + 100,
	   "le 0.001 over the 1e6 samples: every one <= 1 ms plus at most 100 sharing its "
	   "512 ns bucket (%.0f, exact %llu)",
	   v, (unsigned long long)below);
}

int main(void)
{
	uint64_t *sorted = malloc(N * sizeof(uint64_t));
	struct rs_hist *big = NULL;

	if (!sorted)
		bail_out("cannot allocate the %d-sample reference", N);
	plan(49);
	test_bad_opts();
	test_alloc_failure();
	test_quantiles(&big, sorted);
	test_edges();
	test_expo();
	test_expo_big(big, sorted);
	rs_hist_free(big);
	free(sorted);
	return exit_status();
}
