/* `faultline load` as a user runs it: bad options exit 2 with a message
 * naming the option, --json prints a record that parses and adds up, and
 * SIGINT prints what was measured and exits 0.  Runs $FAULTLINE_BUILD/faultline
 * against tests/loadsrv.h on 127.0.0.1. */
#include "tests/tap.h"
#include "tests/loadsrv.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

static char bin[512];
static struct loadsrv srv;
static bool srv_up;
static pid_t child = -1;

struct out {
	int status; /* exit code, or 128 + signal, or -1 when it had to be killed */
	char o[1 << 20];
	char e[8192];
	size_t no, ne;
};

static void cleanup(void)
{
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		child = -1;
	}
	if (srv_up)
		loadsrv_stop(&srv);
	srv_up = false;
}

static void drain(int fd, char *buf, size_t cap, size_t *n, bool *open)
{
	ssize_t r = read(fd, buf + *n, cap - 1 - *n);

	if (r > 0)
		*n += (size_t)r;
	else if (r == 0 || (errno != EINTR && errno != EAGAIN))
		*open = false;
	buf[*n] = '\0';
}

/* Runs faultline with argv (argv[0] is ignored); sends SIGINT after
 * sigint_ms when > 0; kills it after timeout_ms. */
static void run(struct out *r, const char *const *argv, int sigint_ms, int timeout_ms)
{
	int po[2], pe[2], st;
	bool oo = true, eo = true, sent = false;
	uint64_t t0 = loadsrv_now_ns();

	memset(r, 0, offsetof(struct out, o));
	r->o[0] = r->e[0] = '\0';
	r->no = r->ne = 0;
	if (pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0)
		bail_out("pipe: %s", strerror(errno));
	child = fork();
	if (child < 0)
		bail_out("fork: %s", strerror(errno));
	if (child == 0) {
		dup2(po[1], 1);
		dup2(pe[1], 2);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	while (oo || eo) {
		struct pollfd p[2] = { { .fd = oo ? po[0] : -1, .events = POLLIN },
				       { .fd = eo ? pe[0] : -1, .events = POLLIN } };
		int ms = (int)((loadsrv_now_ns() - t0) / 1000000);

		if (sigint_ms > 0 && !sent && ms >= sigint_ms) {
			kill(child, SIGINT);
			sent = true;
		}
		if (ms >= timeout_ms) {
			kill(child, SIGKILL);
			break;
		}
		if (poll(p, 2, 10) <= 0)
			continue;
		if (p[0].revents)
			drain(po[0], r->o, sizeof(r->o), &r->no, &oo);
		if (p[1].revents)
			drain(pe[0], r->e, sizeof(r->e), &r->ne, &eo);
	}
	close(po[0]);
	close(pe[0]);
	waitpid(child, &st, 0);
	child = -1;
	if (oo || eo)
		r->status = -1;
	else
		r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static struct out res;

static void expect_usage_error(const char *what, const char *const *argv, const char *want1,
			       const char *want2)
{
	run(&res, argv, 0, 10000);
	ok(res.status == 2 && strstr(res.e, want1) && strstr(res.e, want2) && res.no == 0,
	   "%s: exit %d, stderr names it: %.*s", what, res.status,
	   (int)(res.ne && res.e[res.ne - 1] == '\n' ? res.ne - 1 : res.ne), res.e);
}

static double num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

int main(void)
{
	const char *b = getenv("FAULTLINE_BUILD");
	char url[128], bad_var[128];

	alarm(90);
	signal(SIGPIPE, SIG_IGN);
	if (!b || !*b)
		skip_all("FAULTLINE_BUILD is not set (run through make test, or export it)");
	snprintf(bin, sizeof(bin), "%s/faultline", b);
	if (access(bin, X_OK) != 0)
		skip_all(
		    "no faultline program at $FAULTLINE_BUILD/faultline (make build/faultline)");
	plan(21);
	if (loadsrv_start(&srv) < 0)
		bail_out("cannot start the test server on 127.0.0.1");
	srv_up = true;
	atexit(cleanup);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/", srv.port);
	snprintf(bad_var, sizeof(bad_var), "http://127.0.0.1:%u/x/${nope}", srv.port);

	{
		const char *a[] = { "faultline", "load", "http://example.com/", NULL };
		expect_usage_error("a host name in the URL", a, "url 'http://example.com/'",
				   "IP address");
	}
	{
		const char *a[] = { "faultline", "load", "https://127.0.0.1/", NULL };
		expect_usage_error("https", a, "url", "only http://");
	}
	{
		const char *a[] = { "faultline", "load", url, "--rate", "0", NULL };
		expect_usage_error("--rate 0", a, "--rate", "> 0");
	}
	{
		const char *a[] = { "faultline", "load", url, "--rate", "-5", NULL };
		expect_usage_error("--rate -5", a, "--rate", "'-5'");
	}
	{
		const char *a[] = { "faultline", "load", bad_var, "-d", "1s", NULL };
		expect_usage_error("an unknown variable in the URL", a, "'${nope}'", "column");
	}
	{
		const char *a[] = { "faultline", "load", url, "-H", "X-Id: ${foo:1}", NULL };
		expect_usage_error("an unknown variable in --header", a, "header 1", "'${foo:1}'");
	}
	{
		const char *a[] = { "faultline", "load", url, "--body", "${rand:9:1}", NULL };
		expect_usage_error("bad arguments in --body", a, "body", "A must be <= B");
	}
	{
		const char *a[] = { "faultline", "load", url, "--duration", "10", NULL };
		expect_usage_error("--duration without a unit", a, "--duration", "'10'");
	}
	{
		const char *a[] = { "faultline", "load", url, "--timeout", "5 s", NULL };
		expect_usage_error("--timeout '5 s'", a, "--timeout", "unit");
	}
	{
		const char *a[] = { "faultline", "load", url, "--timeout", "500us", NULL };
		expect_usage_error("--timeout below 1ms", a, "--timeout", "at least 1ms");
	}
	{
		const char *a[] = { "faultline", "load", url, "--retry-backoff", "jitter", NULL };
		expect_usage_error("--retry-backoff jitter", a, "--retry-backoff", "decorrelated");
	}
	{
		const char *a[] = { "faultline", "load", url, "--frobnicate", NULL };
		expect_usage_error("an unknown option", a, "unknown option", "--frobnicate");
	}
	{
		const char *a[] = { "faultline", "load", NULL };
		expect_usage_error("no URL", a, "missing URL", "usage");
	}
	{
		const char *a[] = { "faultline", "bogus", NULL };
		expect_usage_error("an unknown command", a, "unknown command", "'bogus'");
	}
	{
		const char *a[] = { "faultline", "--version", NULL };

		run(&res, a, 0, 10000);
		ok(res.status == 0 && strncmp(res.o, "faultline ", 10) == 0, "--version: %.*s",
		   (int)strcspn(res.o, "\n"), res.o);
	}
	{
		const char *a[] = { "faultline", "--help", NULL };

		run(&res, a, 0, 10000);
		ok(res.status == 0 && strstr(res.o, "load"), "--help lists the load command");
	}

	/* --json: the record parses and adds up. */
	{
		const char *a[] = { "faultline", "load",   url,	 "--requests", "300",
				    "--rate",	 "1000",   "-c", "4",	       "--interval",
				    "50ms",	 "--json", NULL };
		cJSON *root, *tot, *ivs, *iv;
		double sum = 0, att = 0;
		int n = 0;

		run(&res, a, 0, 30000);
		root = cJSON_ParseWithOpts(res.o, NULL, 1);
		ok(res.status == 0 && root,
		   "--json exits 0 and prints one JSON document (%zu bytes)", res.no);
		tot = cJSON_GetObjectItemCaseSensitive(root, "totals");
		ivs = cJSON_GetObjectItemCaseSensitive(root, "intervals");
		ok(num(tot, "requests") == 300 && num(tot, "successes") == 300 &&
		       num(tot, "attempts") == 300 && num(tot, "failures") == 0,
		   "totals: 300 requests, 300 successes, 300 attempts, 0 failures");
		cJSON_ArrayForEach(iv, ivs)
		{
			sum += num(iv, "requests");
			att += num(iv, "attempts");
			n++;
		}
		ok(n >= 4 && sum == 300 && att == 300,
		   "the %d intervals add up to the totals (%.0f requests, %.0f attempts)", n, sum,
		   att);
		{
			const cJSON *lat = cJSON_GetObjectItemCaseSensitive(tot, "latency");

			ok(num(lat, "count") == 300 && num(lat, "p99_us") > 0 &&
			       num(lat, "p99_us") <= num(lat, "max_us") &&
			       cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(tot, "errors")),
			   "totals carry the latency quantiles (count 300, p99 %.1f us <= max %.1f "
			   "us) "
			   "and errors by kind",
			   num(lat, "p99_us"), num(lat, "max_us"));
		}
		cJSON_Delete(root);
	}

	/* SIGINT mid-run: a summary of what was measured, exit 0. */
	{
		const char *a[] = {
			"faultline", "load", url, "--duration", "60s", "-c", "2", NULL
		};
		uint64_t t0 = loadsrv_now_ns();
		double secs;

		run(&res, a, 700, 20000);
		secs = (double)(loadsrv_now_ns() - t0) / 1e9;
		ok(res.status == 0 && strstr(res.o, "(interrupted)") &&
		       strstr(res.o, "Requests/sec") && strstr(res.o, "p99") && secs < 10,
		   "SIGINT after 0.7 s of a 60 s run: exit %d after %.1f s with the summary",
		   res.status, secs);
		for (char *line = strtok(res.o, "\n"); line; line = strtok(NULL, "\n"))
			diag("%s", line);
	}
	cleanup();
	return exit_status();
}
