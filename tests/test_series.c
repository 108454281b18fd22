/* Sample storage: appends keep time order and grow by doubling, windows
 * are closed intervals found by binary search, a failed allocation leaves
 * the series as it was, and the runlog starts with every event unknown. */
#include "tests/tap.h"
#include "tests/failalloc.h"

#include <errno.h>
#include <unistd.h>

#include "harness/series.h"

#define MS 1000000ull

int main(void)
{
	struct fl_series s;
	struct fl_runlog r;
	struct failalloc fa;
	size_t lo, hi, grows = 0, cap = 0;
	int rc, bad = 0;

	plan(29);
	alarm(20);

	fl_series_init(&s, NULL);
	ok(s.n == 0 && s.cap == 0 && s.v == NULL, "a new series is empty and holds no memory");
	for (uint64_t k = 0; k < 1000; k++) {
		rc = fl_series_append(&s, 1000 * MS + k * 100 * MS, (double)k, k % 10 != 7);
		if (rc)
			bad++;
		if (s.cap != cap) {
			grows++;
			cap = s.cap;
		}
	}
	is_int(bad, 0, "1000 in-order appends succeed");
	is_int((long long)s.n, 1000, "the series holds 1000 samples");
	is_int((long long)grows, 5, "storage grew 5 times for 1000 samples (64 doubling to 1024)");
	is_int((long long)s.cap, 1024, "capacity is 1024 after doubling");
	ok(s.v[7].ok == false && s.v[8].ok && s.v[8].value == 8.0,
	   "failed samples are kept as failed, ok ones with their value");

	rc = fl_series_append(&s, 1000 * MS, 1.0, true);
	is_int(rc, -EINVAL, "a sample older than the last one is refused with -EINVAL");
	is_int((long long)s.n, 1000, "and nothing is appended");
	rc = fl_series_append(&s, s.v[999].t_ns, 5.0, true);
	ok(rc == 0 && s.n == 1001, "a sample at the same time as the last one is accepted");
	rc = fl_series_append(&s, s.v[1000].t_ns + 1, NAN, true);
	ok(rc == 0 && !s.v[1001].ok, "a NaN value is stored as a failed sample");
	rc = fl_series_append(&s, s.v[1001].t_ns + 1, INFINITY, true);
	ok(rc == 0 && !s.v[1002].ok, "an infinite value is stored as a failed sample");

	/* Windows are closed: [10.0 s, 10.5 s] holds the samples at 10.0 .. 10.5. */
	fl_series_window(&s, 10000 * MS, 10500 * MS, &lo, &hi);
	is_int((long long)lo, 90, "window [10 s, 10.5 s] starts at the sample at exactly 10 s");
	is_int((long long)(hi - lo), 6, "and holds 6 samples (both ends included)");
	fl_series_window(&s, 10001 * MS, 10499 * MS, &lo, &hi);
	is_int((long long)(hi - lo), 4, "window (10.001 s, 10.499 s) holds the 4 inner samples");
	fl_series_window(&s, 10050 * MS, 10060 * MS, &lo, &hi);
	is_int((long long)(hi - lo), 0, "a window between two samples is empty");
	fl_series_window(&s, 20000 * MS, 10000 * MS, &lo, &hi);
	is_int((long long)(hi - lo), 0, "a window whose end is before its start is empty");
	fl_series_window(&s, 0, UINT64_MAX, &lo, &hi);
	is_int((long long)(hi - lo), 1003, "the window [0, max] holds every sample");
	is_int((long long)fl_series_lower(&s, 999 * MS), 0,
	       "lower bound before the first sample is 0");
	is_int((long long)fl_series_upper(&s, UINT64_MAX), 1003, "upper bound past the last is n");

	fl_series_release(&s);
	ok(s.v == NULL && s.n == 0 && s.cap == 0, "release frees and empties the series");
	fl_series_release(&s);
	ok(1, "release twice is harmless");

	rc = fl_series_reserve(&s, FL_SERIES_MAX_SAMPLES + 1u);
	is_int(rc, -E2BIG, "reserving more than FL_SERIES_MAX_SAMPLES is -E2BIG");

	/* A failed growth leaves the series untouched. */
	failalloc_init(&fa, 2);
	fl_series_init(&s, &fa.alloc);
	rc = 0;
	for (uint64_t k = 0; k < 64 && !rc; k++)
		rc = fl_series_append(&s, k, (double)k, true);
	ok(rc == 0 && s.n == 64, "64 samples fit in the first allocation");
	rc = fl_series_append(&s, 64, 64.0, true);
	is_int(rc, -ENOMEM, "the 65th append needs to grow and fails with -ENOMEM");
	ok(s.n == 64 && s.v[63].value == 63.0, "the series still holds its 64 samples");
	fl_series_release(&s);
	is_int((long long)fa.live, 0, "no block is left after release");

	rc = fl_runlog_init(&r, 3, 2, NULL);
	ok(rc == 0 && r.nseries == 3 && r.nactions == 2, "a runlog holds 3 series and 2 actions");
	ok(r.start_ns == FL_T_NONE && r.steady_ns == FL_T_NONE && r.end_ns == FL_T_NONE &&
	       r.actions[1].applied_ns == FL_T_NONE && r.actions[1].reverted_ns == FL_T_NONE,
	   "every event of a new runlog is FL_T_NONE (not happened)");
	fl_runlog_release(&r);

	failalloc_init(&fa, 2);
	rc = fl_runlog_init(&r, 3, 2, &fa.alloc);
	ok(rc == -ENOMEM && fa.live == 0,
	   "a runlog whose second allocation fails returns -ENOMEM and leaks nothing");
	fl_runlog_release(&r);
	return exit_status();
}
