/* Request templates and URLs of the load generator: every variable expands
 * as documented, the same seed replays the same requests, and bad input is
 * refused with the variable and its column named. */
#include "tests/tap.h"

#include <errno.h>
#include <math.h>
#include <unistd.h>

#include "harness/template.h"
#include "harness/url.h"

static char buf[4096];

/* Expands t for request seq with the given seed into buf, NUL-terminated. */
static const char *expand(const struct fl_tpl *t, uint64_t seed, uint64_t seq)
{
	struct fl_tpl_ctx ctx;
	size_t n;

	fl_tpl_ctx_init(&ctx, seed, seq);
	n = fl_tpl_expand(t, &ctx, buf);
	buf[n] = '\0';
	return buf;
}

static struct fl_tpl *compile_ok(const char *src)
{
	struct fl_tpl *t = NULL;
	struct rs_err err = { "" };

	if (fl_tpl_compile(&t, src, &err) < 0)
		bail_out("template '%s' does not compile: %s", src, err.msg);
	return t;
}

static void test_seq_and_literals(void)
{
	struct fl_tpl *t = compile_ok("/item/${seq}?n=${seq}");
	int good = 1;
	char want[64];

	for (uint64_t k = 1; k <= 1000; k++) {
		snprintf(want, sizeof(want), "/item/%llu?n=%llu", (unsigned long long)k,
			 (unsigned long long)k);
		good &= strcmp(expand(t, 1, k), want) == 0;
	}
	ok(good, "${seq} writes the request number: /item/1?n=1 .. /item/1000?n=1000");
	is_str(expand(t, 1, UINT64_MAX), "/item/18446744073709551615?n=18446744073709551615",
	       "${seq} writes all 20 digits of 2^64-1");
	ok(fl_tpl_max_len(t) >= strlen(buf), "max_len (%zu) bounds the longest expansion (%zu)",
	   fl_tpl_max_len(t), strlen(buf));
	ok(!fl_tpl_is_const(t) && !fl_tpl_is_random(t),
	   "a ${seq} template is neither const nor random");
	fl_tpl_free(t);

	t = compile_ok("a$$b$c${seq}$$");
	is_str(expand(t, 1, 7), "a$b$c7$", "'$$' is one '$', a '$' without '{' is literal");
	fl_tpl_free(t);

	t = compile_ok("GET / HTTP/1.1\r\n");
	{
		size_t n = 0;
		const char *c = fl_tpl_const(t, &n);

		ok(fl_tpl_is_const(t) && c && n == 16 && memcmp(c, "GET / HTTP/1.1\r\n", 16) == 0,
		   "a template without variables is one constant (16 bytes)");
	}
	fl_tpl_free(t);
}

static void test_rand(void)
{
	enum { N = 10000, LO = 10, HI = 20, K = HI - LO + 1 };
	struct fl_tpl *t = compile_ok("${rand:10:20}");
	long count[K] = { 0 };
	int in_range = 1;
	double chi = 0, e = (double)N / K;

	for (int i = 1; i <= N; i++) {
		long v = strtol(expand(t, 5, (uint64_t)i), NULL, 10);

		in_range &= v >= LO && v <= HI;
		if (v >= LO && v <= HI)
			count[v - LO]++;
	}
	ok(in_range, "${rand:10:20} stays in [10, 20] over %d requests", N);
	for (int k = 0; k < K; k++)
		chi += (count[k] - e) * (count[k] - e) / e;
	/* 10 degrees of freedom: P(chi-square > 29.59) = 0.001. */
	ok(chi < 29.59,
	   "${rand:10:20} is uniform over %d draws (chi-square %.2f < 29.59, p = 0.001)", N, chi);
	fl_tpl_free(t);

	t = compile_ok("${rand:5:5}|${rand:0:18446744073709551615}");
	is_int(strncmp(expand(t, 1, 1), "5|", 2), 0, "${rand:5:5} is always 5");
	fl_tpl_free(t);
}

static void test_zipf(void)
{
	enum { N = 200000, RANKS = 100 };
	struct fl_tpl *t = compile_ok("${zipf:100:1.0}");
	static long count[RANKS + 1];
	double h = 0, worst = 0;
	int in_range = 1, ordered = 1, within = 1;

	for (int i = 1; i <= N; i++) {
		long v = strtol(expand(t, 9, (uint64_t)i), NULL, 10);

		in_range &= v >= 1 && v <= RANKS;
		if (v >= 1 && v <= RANKS)
			count[v]++;
	}
	ok(in_range, "${zipf:100:1.0} stays in [1, 100] over %d draws", N);
	for (int k = 2; k <= RANKS; k++)
		ordered &= count[1] > count[k];
	ok(ordered, "rank 1 is the most frequent (%ld of %d)", count[1], N);
	for (int k = 1; k <= RANKS; k++)
		h += 1.0 / k;
	/* Ranks 1..20: each count is binomial(N, p_k); allow 4.5 standard
	 * deviations (about 1 in 150000 per rank by chance). */
	for (int k = 1; k <= 20; k++) {
		double p = (1.0 / k) / h, mean = N * p, sd = sqrt(N * p * (1 - p));
		double z = fabs(count[k] - mean) / sd;

		if (z > worst)
			worst = z;
		within &= z <= 4.5;
	}
	ok(within, "ranks 1..20 follow k^-1 / H(100) within 4.5 sd (worst %.2f sd)", worst);
	diag("zipf:100:1.0 over %d draws: rank 1 %.4f (expect %.4f), rank 10 %.4f (expect %.4f)", N,
	     (double)count[1] / N, 1 / h, (double)count[10] / N, 0.1 / h);
	fl_tpl_free(t);

	t = compile_ok("${zipf:1000:2}");
	{
		long one = 0;
		double h2 = 0, p;

		for (int k = 1; k <= 1000; k++)
			h2 += 1.0 / ((double)k * k);
		p = 1 / h2;
		for (int i = 1; i <= N; i++)
			one += strcmp(expand(t, 3, (uint64_t)i), "1") == 0;
		is_double((double)one / N, p, 4.5 * sqrt(p * (1 - p) / N),
			  "${zipf:1000:2}: rank 1 has probability 1/H(1000, 2) = %.4f (4.5 sd)", p);
	}
	fl_tpl_free(t);

	t = compile_ok("${zipf:1:1.5}${zipf:7:0}");
	{
		int good = 1;

		for (int i = 1; i <= 1000; i++) {
			const char *s = expand(t, 1, (uint64_t)i);

			good &= s[0] == '1' && s[1] >= '1' && s[1] <= '7' && s[2] == '\0';
		}
		ok(good, "${zipf:1:S} is always 1; ${zipf:7:0} (S = 0) stays in [1, 7]");
	}
	fl_tpl_free(t);
}

static int is_uuid_v4(const char *s)
{
	if (strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
			return 0;
		}
	}
	return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void test_uuid(void)
{
	enum { N = 2000 };
	static char ids[N][37];
	struct fl_tpl *t = compile_ok("${uuid}");
	int good = 1, dup = 0;

	for (int i = 0; i < N; i++) {
		const char *s = expand(t, 11, (uint64_t)i + 1);

		good &= is_uuid_v4(s);
		snprintf(ids[i], sizeof(ids[i]), "%.36s", s);
	}
	ok(good,
	   "%d ${uuid}s are RFC 4122 version 4: 8-4-4-4-12 lowercase hex, '4' at 15, "
	   "[89ab] at 20 (e.g. %s)",
	   N, ids[0]);
	qsort(ids, N, sizeof(ids[0]), cmp_str);
	for (int i = 1; i < N; i++)
		dup += strcmp(ids[i - 1], ids[i]) == 0;
	is_int(dup, 0, "%d ${uuid}s are all distinct", N);
	fl_tpl_free(t);
}

static void test_replay(void)
{
	struct fl_tpl *t = compile_ok("/u/${uuid}/${rand:0:1000000}/${zipf:1000:1.1}/${seq}");
	static char first[200][128];
	int same = 1, differ = 0, again = 1;

	for (int i = 0; i < 200; i++)
		snprintf(first[i], sizeof(first[i]), "%.127s", expand(t, 42, (uint64_t)i + 1));
	for (int i = 0; i < 200; i++)
		same &= strcmp(first[i], expand(t, 42, (uint64_t)i + 1)) == 0;
	ok(same, "seed 42 expands the same 200 requests twice");
	for (int i = 0; i < 200; i++)
		differ += strcmp(first[i], expand(t, 43, (uint64_t)i + 1)) != 0;
	is_int(differ, 200, "seed 43 gives 200 different requests");
	/* Request 100 alone (a retry) gives the bytes it had in sequence. */
	for (int i = 199; i >= 0; i--)
		again &= strcmp(first[i], expand(t, 42, (uint64_t)i + 1)) == 0;
	ok(again, "each request expands to the same bytes in any order (a retry resends them)");
	fl_tpl_free(t);
}

static void test_errors(void)
{
	static const struct {
		const char *src, *want1, *want2;
	} cases[] = {
		{ "/a/${foo}", "unknown variable '${foo}'", "column 4" },
		{ "/item/${sequence}", "unknown variable '${sequence}'", "column 7" },
		{ "${rand:5:1}", "A must be <= B", "column 1" },
		{ "x${rand:1}", "bad arguments to '${rand:1}'", "column 2" },
		{ "${rand:a:9}", "bad arguments to '${rand:a:9}'", "column 1" },
		{ "${rand:-1:9}", "bad arguments", "column 1" },
		{ "${zipf:0:1}", "bad arguments to '${zipf:0:1}'", "column 1" },
		{ "${zipf:10:-1}", "bad arguments", "column 1" },
		{ "${zipf:10}", "bad arguments", "column 1" },
		{ "ab${seq:1}", "'${seq:1}' at column 3 takes no arguments", "column 3" },
		{ "abc${rand:1:2", "unterminated variable", "column 4" },
		{ "${}", "unknown variable '${}'", "column 1" },
	};
	struct fl_tpl *t;
	struct rs_err err;
	int n = (int)(sizeof(cases) / sizeof(cases[0]));

	for (int i = 0; i < n; i++) {
		int rc;

		t = NULL;
		memset(&err, 0, sizeof(err));
		rc = fl_tpl_compile(&t, cases[i].src, &err);
		ok(rc == -EINVAL && t == NULL && strstr(err.msg, cases[i].want1) &&
		       strstr(err.msg, cases[i].want2),
		   "'%s' is refused: %s", cases[i].src, err.msg);
	}

	/* A failed append leaves what was there. */
	t = compile_ok("/ok/${seq}");
	ok(fl_tpl_append(t, "/x${nope}", &err) == -EINVAL, "appending '/x${nope}' fails");
	is_str(expand(t, 1, 3), "/ok/3", "the template is unchanged after the failed append");
	fl_tpl_free(t);
}

static void test_urls(void)
{
	static const struct {
		const char *url, *host, *path;
		int family;
		unsigned port;
	} good[] = {
		{ "http://127.0.0.1:8080/item/${rand:1:9}", "127.0.0.1:8080", "/item/${rand:1:9}",
		  AF_INET, 8080 },
		{ "http://localhost:1/", "localhost:1", "/", AF_INET, 1 },
		{ "http://10.1.2.3", "10.1.2.3", "/", AF_INET, 80 },
		{ "http://[::1]:9000/a?b=c", "[::1]:9000", "/a?b=c", AF_INET6, 9000 },
	};
	static const struct {
		const char *url, *want;
	} bad[] = {
		{ "https://127.0.0.1/", "only http://" },
		{ "127.0.0.1:80/", "expected http://" },
		{ "http://example.com/", "must be an IP address or localhost" },
		{ "http://127.0.0.1:0/", "port must be a number in 1..65535" },
		{ "http://127.0.0.1:65536/", "port must be a number in 1..65535" },
		{ "http://127.0.0.1:x/", "port must be a number" },
		{ "http://:80/", "host is empty" },
		{ "http://u@127.0.0.1/", "user information" },
		{ "http://127.0.0.1/a#b", "fragments" },
		{ "http://127.0.0.1/a b", "space or control character" },
		{ "http://[::g]/", "not an IPv6 address" },
	};
	struct fl_url u;
	struct rs_err err;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int rc = fl_url_parse(&u, good[i].url, &err);
		unsigned port = u.addr.ss_family == AF_INET
				    ? ntohs(((struct sockaddr_in *)&u.addr)->sin_port)
				    : ntohs(((struct sockaddr_in6 *)&u.addr)->sin6_port);

		ok(rc == 0 && strcmp(u.host, good[i].host) == 0 &&
		       strcmp(u.path, good[i].path) == 0 && u.addr.ss_family == good[i].family &&
		       port == good[i].port,
		   "url '%s': host header '%s', path '%s', port %u", good[i].url, u.host,
		   rc == 0 ? u.path : "?", port);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc;

		memset(&err, 0, sizeof(err));
		rc = fl_url_parse(&u, bad[i].url, &err);
		ok(rc == -EINVAL && strstr(err.msg, bad[i].want), "url '%s' is refused: %s",
		   bad[i].url, err.msg);
	}
}

int main(void)
{
	alarm(60);
	plan(6 + 3 + 5 + 2 + 3 + 14 + 15);
	test_seq_and_literals();
	test_rand();
	test_zipf();
	test_uuid();
	test_replay();
	test_errors();
	test_urls();
	return exit_status();
}
