/* The Prometheus text writer: exact golden output, escaping, overflow. */
#include "tests/tap.h"
#include "tests/promtext.h"

#include <errno.h>
#include <math.h>

#include "resilience/control.h"
#include "resilience/expo.h"

static const char golden[] =
    "# HELP app_requests_total requests served\n"
    "# TYPE app_requests_total counter\n"
    "app_requests_total{code=\"200\"} 12\n"
    "app_requests_total{code=\"503\",path=\"/a\\\"b\\\\c\\nd\"} 3\n"
    "# HELP app_ratio a ratio with a \\\\ and a\\nnewline\n"
    "# TYPE app_ratio gauge\n"
    "app_ratio 0.125\n"
    "app_ratio{kind=\"nan\"} NaN\n"
    "app_ratio{kind=\"inf\"} +Inf\n"
    "app_ratio{kind=\"ninf\"} -Inf\n"
    "app_ratio{kind=\"big\"} 12345678901\n"
    "# HELP resilience_jitter_enabled 1 while retry and timer jitter is on, 0 when the "
    "control block removed it\n"
    "# TYPE resilience_jitter_enabled gauge\n"
    "resilience_jitter_enabled{name=\"service\"} 1\n"
    "# HELP resilience_retries_paused 1 while the control block pauses every retry\n"
    "# TYPE resilience_retries_paused gauge\n"
    "resilience_retries_paused{name=\"service\"} 0\n";

static void write_all(struct rs_expo *e)
{
	rs_expo_family(e, "app_requests_total", RS_EXPO_COUNTER, "requests served");
	rs_expo_sample(e, "app_requests_total", (const char *[]){ "code", "200", NULL }, 12);
	rs_expo_sample(e, "app_requests_total",
		       (const char *[]){ "code", "503", "path", "/a\"b\\c\nd", NULL }, 3);
	rs_expo_family(e, "app_ratio", RS_EXPO_GAUGE, "a ratio with a \\ and a\nnewline");
	rs_expo_sample(e, "app_ratio", NULL, 0.125);
	rs_expo_sample(e, "app_ratio", (const char *[]){ "kind", "nan", NULL }, NAN);
	rs_expo_sample(e, "app_ratio", (const char *[]){ "kind", "inf", NULL }, INFINITY);
	rs_expo_sample(e, "app_ratio", (const char *[]){ "kind", "ninf", NULL }, -INFINITY);
	rs_expo_sample(e, "app_ratio", (const char *[]){ "kind", "big", NULL }, 12345678901.0);
	rs_control_expo(e, NULL, "service");
}

int main(void)
{
	char buf[4096], small[64], why[256] = "";
	struct rs_expo e;
	double v = 0;
	int n;

	plan(10);
	rs_expo_init(&e, buf, sizeof(buf));
	write_all(&e);
	is_int(rs_expo_finish(&e), 0, "the exposition fits a 4 KiB buffer");
	is_str(buf, golden, "output matches the golden text byte for byte");
	n = promtext_check(buf, why, sizeof(why));
	is_int(n, 9, "the strict text-format checker accepts it with 9 samples");
	if (n < 0)
		diag("%s", why);
	ok(promtext_value(buf, "app_requests_total{code=\"200\"}", &v) && v == 12,
	   "a series reads back by name and labels (12)");
	is_int((long long)e.len, (long long)strlen(golden), "len is the exact byte count");

	rs_expo_init(&e, small, sizeof(small));
	write_all(&e);
	is_int(rs_expo_finish(&e), -ENOBUFS, "a 64-byte buffer overflows with -ENOBUFS");
	is_int((long long)e.len, (long long)strlen(golden),
	       "after overflow len is the size needed");
	is_int((long long)strlen(small), 63, "the small buffer is filled and NUL-terminated");

	/* The checker itself must reject what Prometheus rejects. */
	ok(promtext_check("# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na 2\n", why, sizeof(why)) < 0,
	   "checker rejects a family split in two (%s)", why);
	ok(promtext_check("# TYPE a_total counter\na_total{x=\"1\"} 1\na_total{x=\"1\"} 2\n", why,
			  sizeof(why)) < 0,
	   "checker rejects a duplicate series (%s)", why);
	return exit_status();
}
