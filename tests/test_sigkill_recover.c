/* `faultline run` killed by SIGKILL at random instants, then `faultline
 * recover`: no fault is left behind (issue 4, section 5).
 *
 * Part 1, KILLS kills.  The test starts the target itself (a dependency and
 * a service, each with its own control block, RESILIENCE_CONTROL=<tmp>/
 * ROLE.control) and writes an experiment that points faultline at them
 * (target.url, admin and control): so the target outlives every harness
 * the test kills, and its gauges can be read after each recovery.  The
 * experiment applies, from 100 ms to 2.1 s after load starts, the jitter
 * fault on both sides and both processes, with retries paused and the
 * service's "dependency" breaker forced open (every field of the control
 * block moves), and the cache fault (flush every 100 ms).  Each iteration
 * starts `faultline run`, sends it SIGKILL at an instant drawn from a
 * seeded generator (uniform in [KILL_MIN_MS, KILL_MAX_MS] after the spawn:
 * before, during and after the faults), reaps it, runs `faultline
 * recover`, and asserts:
 *   - recover exits 0;
 *   - both control block files (read with rs_control_open) are back to
 *     normal: jitter on, retries not paused, no breaker forced;
 *   - the gauges agree: resilience_jitter_enabled{name="service"} and
 *     {name="dependency"} are 1, resilience_retries_paused{name="service"}
 *     is 0, and after one request resilience_breaker_state{name=
 *     "dependency"} is not 4 (forced open; the breaker reads a lifted force
 *     on its next call);
 *   - nothing is left pending in the state directory (fl_recover_pending).
 * Across the kills, at least half must have landed while a fault was
 * applied (recover reverted something), or the test proves nothing.
 *
 * Part 2, ORPHAN_KILLS kills, of runs whose experiment lets faultline start
 * the target itself (target.command): after the SIGKILL, the target
 * processes (pids from faultline's "faultline: ROLE pid N:" lines) must be
 * gone within ORPHAN_WAIT_MS (faultline starts them through its shim with
 * PR_SET_PDEATHSIG); any survivor is killed by pid and fails the test.
 * Recover must exit 0 and leave the run's control block files
 * (<state>/<run-id>.d/ROLE.control) normal.
 *
 * Bounded: every faultline process is killed and reaped by pid; recover
 * runs under RECOVER_MS; the watchdog (alarm) kills the run in progress,
 * the survivors seen, the test's own targets, and removes the temporary
 * directory.  Everything lives under /tmp/fl-target-XXXXXX, removed at exit.
 */
#include "tests/tap.h"
#include "tests/targetproc.h"

#include <dirent.h>
#include <limits.h>
#include <stdbool.h>
#include <time.h>

#include "harness/recover.h"
#include "resilience/control.h"
#include "resilience/err.h"

#define KILLS	       20
#define ORPHAN_KILLS   4
#define SEED	       0x5eed4b111ull
#define KILL_MIN_MS    30
#define KILL_MAX_MS    2500
#define ORPHAN_MIN_MS  100
#define ORPHAN_MAX_MS  2500
#define ORPHAN_WAIT_MS 3000
#define RECOVER_MS     20000
#define RUN_MAX_MS     15000
#define WATCHDOG_S     240
#define OUT_MAX	       (64 * 1024)
#define MAX_PIDS       16

static char faultline[PATH_MAX];
static char dir[64];
static char statedir[128], statedir2[128];
static volatile pid_t current;		 /* the faultline run in progress */
static volatile pid_t orphans[MAX_PIDS]; /* target pids of part 2 seen so far */
static volatile int norphans;
static uint64_t rng = SEED;

static void on_alarm(int sig)
{
	if (current > 0) {
		kill(current, SIGKILL);
		waitpid(current, NULL, 0);
	}
	for (int i = 0; i < norphans; i++)
		if (orphans[i] > 0)
			kill(orphans[i], SIGKILL);
	targetproc__on_alarm(sig); /* the test's targets, the directory, exit 255 */
}

static uint64_t next_rand(void)
{
	/* xorshift64*: a fixed sequence for a fixed SEED. */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ull;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		bail_out("cannot write %s: %s", path, strerror(errno));
}

/* Starts faultline ARGS... with stdout and stderr into log. */
static pid_t spawn(const char *const *args, const char *log)
{
	const char *argv[16];
	int n = 0, fd;
	pid_t pid;

	argv[n++] = faultline;
	for (int i = 0; args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		bail_out("cannot create %s: %s", log, strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		bail_out("fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execv(faultline, (char *const *)argv);
		_exit(127);
	}
	close(fd);
	current = pid;
	return pid;
}

/* Waits for pid up to ms; returns its wait status, or -1 when it still
 * runs. */
static int wait_for(pid_t pid, long ms)
{
	uint64_t end = targetproc_now_ms() + (uint64_t)ms;
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return st;
		if (r < 0 && errno != EINTR)
			return 0;
		if (targetproc_now_ms() >= end)
			return -1;
		sleep_ms(2);
	}
}

/* Runs faultline to completion (killed after ms), output into log; returns
 * its exit code (128 + signal). */
static int run_to_end(const char *const *args, const char *log, long ms)
{
	pid_t pid = spawn(args, log);
	int st = wait_for(pid, ms);

	if (st < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	current = 0;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;

	buf[0] = '\0';
	if (f) {
		n = fread(buf, 1, cap - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static void diag_lines(const char *text)
{
	const char *l = text;

	while (l && *l) {
		const char *e = strchr(l, '\n');
		int len = e ? (int)(e - l) : (int)strlen(l);

		if (len > 0)
			diag("  %.*s", len, l);
		l = e ? e + 1 : NULL;
	}
}

static int count_prefix(const char *text, const char *prefix)
{
	const char *l = text;
	int n = 0;

	while (l && *l) {
		n += strncmp(l, prefix, strlen(prefix)) == 0;
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return n;
}

/* Reads a control block file: normal means jitter on, retries not paused
 * and no breaker forced.  Writes what is not normal into why. */
static bool control_normal(const char *path, char *why, size_t cap)
{
	struct rs_control *c = NULL;
	struct rs_err e = { 0 };
	const struct rs_control_block *b;
	bool normal = true;
	size_t len = 0;

	why[0] = '\0';
	if (rs_control_open(&c, path, 0, NULL, &e) < 0) {
		snprintf(why, cap, "%s", e.msg);
		return false;
	}
	b = rs_control_block(c);
	if (!rs_control_jitter_enabled(b)) {
		len += (size_t)snprintf(why + len, cap - len, "%s: jitter off; ", path);
		normal = false;
	}
	if (rs_control_retries_paused(b) && len < cap) {
		len += (size_t)snprintf(why + len, cap - len, "%s: retries paused; ", path);
		normal = false;
	}
	for (int i = 0; i < RS_CONTROL_BREAKERS && len < cap; i++) {
		const struct rs_control_breaker *s = &b->breakers[i];

		if (atomic_load(&((struct rs_control_breaker *)s)->state) != RS_SLOT_NAMED)
			continue;
		if (rs_control_force_read(&s->force) != RS_FORCE_NONE) {
			len += (size_t)snprintf(why + len, cap - len,
						"%s: breaker '%s' forced %u; ", path, s->name,
						(unsigned)rs_control_force_read(&s->force));
			normal = false;
		}
	}
	rs_control_free(c);
	return normal;
}

/* The value of the first exposition line that starts with `series` (name
 * and labels, exactly as written), or NAN. */
static double gauge(int port, const char *series)
{
	struct targetproc_resp r = { 0 };
	double v = NAN;
	const char *l;

	if (targetproc_get(port, "/metrics", 2000, &r) < 0 || r.status != 200) {
		targetproc_resp_free(&r);
		return NAN;
	}
	for (l = r.body; l && *l;) {
		if (strncmp(l, series, strlen(series)) == 0 && l[strlen(series)] == ' ') {
			v = strtod(l + strlen(series) + 1, NULL);
			break;
		}
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	targetproc_resp_free(&r);
	return v;
}

static bool alive(pid_t pid)
{
	char path[64], line[512];
	const char *rp;
	FILE *f;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	/* A zombie waits for its reaper; another command is a reused pid. */
	rp = strrchr(line, ')');
	return strstr(line, "(faultline-targ") && rp && rp[1] == ' ' && rp[2] != 'Z';
}

static void check_recover(const char *what, const char *sd, int rc, const char *out)
{
	size_t pending = 0;
	struct rs_err e = { 0 };
	int prc;

	if (!ok(rc == 0, "%s: faultline recover exits 0 (%d)", what, rc))
		diag_lines(out);
	prc = fl_recover_pending(sd, &pending, &e);
	if (!ok(prc == 0 && pending == 0, "%s: nothing left pending", what))
		diag("fl_recover_pending: %d, %zu pending: %s", prc, pending, e.msg);
}

int main(void)
{
	const char *b = getenv("FAULTLINE_BUILD");
	struct targetproc dep, svc;
	char why[512], path[PATH_MAX], svc_ctl[128], dep_ctl[128], items[128], exp1[128], exp2[128];
	char log[160], depenv[160], svcenv[160], dp[16], text[4096];
	static char out[OUT_MAX];
	int st, during = 0;
	struct sigaction sa;

	if (!b || !*b || !targetproc_binary())
		skip_all("FAULTLINE_BUILD is not set or has no faultline-target");
	snprintf(faultline, sizeof(faultline), "%s/faultline", b);
	if (access(faultline, X_OK) != 0)
		skip_all("$FAULTLINE_BUILD/faultline is missing");
	targetproc_watchdog(WATCHDOG_S);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	if (targetproc_tmpdir(dir, sizeof(dir)) < 0)
		bail_out("cannot create a temporary directory");
	snprintf(items, sizeof(items), "%s/items", dir);
	snprintf(svc_ctl, sizeof(svc_ctl), "%s/service.control", dir);
	snprintf(dep_ctl, sizeof(dep_ctl), "%s/dependency.control", dir);
	snprintf(statedir, sizeof(statedir), "%s/state", dir);
	snprintf(statedir2, sizeof(statedir2), "%s/state2", dir);
	snprintf(exp1, sizeof(exp1), "%s/external.json", dir);
	snprintf(exp2, sizeof(exp2), "%s/started.json", dir);
	if (targetproc_run((const char *[]){ "--init-data", items, "--items", "20", NULL }, NULL,
			   10000, &st, NULL, 0, NULL, 0) < 0 ||
	    st != 0)
		bail_out("faultline-target --init-data %s failed", items);

	snprintf(depenv, sizeof(depenv), "RESILIENCE_CONTROL=%s", dep_ctl);
	snprintf(svcenv, sizeof(svcenv), "RESILIENCE_CONTROL=%s", svc_ctl);
	if (targetproc_start(&dep,
			     (const char *[]){ "--role", "dependency", "--port", "0",
					       "--admin-port", "0", NULL },
			     (const char *[]){ depenv, NULL }, 5000, why, sizeof(why)) < 0)
		bail_out("dependency: %s", why);
	snprintf(dp, sizeof(dp), "127.0.0.1:%d", dep.http_port);
	if (targetproc_start(&svc,
			     (const char *[]){ "--role", "service", "--port", "0", "--admin-port",
					       "0", "--data-dir", items, "--dependency", dp, NULL },
			     (const char *[]){ svcenv, NULL }, 5000, why, sizeof(why)) < 0)
		bail_out("service: %s", why);

	/* The faults of both parts: every control-block field moves. */
	static const char method[] =
	    "  \"method\": [\n"
	    "    { \"name\": \"no-jitter\", \"at\": \"100ms\", \"for\": \"2s\",\n"
	    "      \"fault\": { \"type\": \"jitter\", \"side\": \"both\", \"role\": \"both\",\n"
	    "                 \"retries\": \"pause\", \"breaker\": \"dependency\", \"force\": "
	    "\"open\" } },\n"
	    "    { \"name\": \"flush\", \"at\": \"100ms\", \"for\": \"2s\", \"repeat\": "
	    "\"100ms\",\n"
	    "      \"fault\": { \"type\": \"cache\", \"mode\": \"flush\" } }\n"
	    "  ]\n";
	static const char head[] =
	    "{\n  \"version\": 1, \"title\": \"SIGKILL and recover\", \"seed\": 5,\n"
	    "  \"settings\": { \"cadence\": \"50ms\", \"warmup\": \"100ms\", \"recovery\": "
	    "\"100ms\" },\n"
	    "  \"load\": { \"rate\": 200, \"connections\": 8, \"request\": { \"path\": "
	    "\"/item/$${rand:1:20}\" },\n"
	    "            \"timeout\": \"500ms\", \"retry\": { \"attempts\": 3 } },\n";
	snprintf(text, sizeof(text),
		 "%s  \"target\": { \"url\": \"http://127.0.0.1:%d\", \"admin\": "
		 "\"http://127.0.0.1:%d\",\n"
		 "    \"control\": \"%s\",\n"
		 "    \"dependency\": { \"url\": \"http://127.0.0.1:%d\", \"admin\": "
		 "\"http://127.0.0.1:%d\",\n"
		 "                    \"control\": \"%s\" } },\n%s}\n",
		 head, svc.http_port, svc.admin_port, svc_ctl, dep.http_port, dep.admin_port,
		 dep_ctl, method);
	write_file(exp1, text);
	snprintf(text, sizeof(text),
		 "%s  \"target\": {\n"
		 "    \"command\": [\"%s\", \"--role\", \"service\", \"--port\", \"0\",\n"
		 "                \"--admin-port\", \"0\", \"--data-dir\", \"%s\",\n"
		 "                \"--dependency\", \"127.0.0.1:${dependency_port}\"],\n"
		 "    \"dependency\": { \"command\": [\"%s\", \"--role\", \"dependency\", "
		 "\"--port\", \"0\", \"--admin-port\", \"0\"] } },\n%s}\n",
		 head, targetproc_binary(), items, targetproc_binary(), method);
	write_file(exp2, text);

	plan(KILLS * 5 + 1 + ORPHAN_KILLS * 4);

	/* Part 1: the test's own target, faultline killed at KILLS instants. */
	for (int i = 0; i < KILLS; i++) {
		long at = KILL_MIN_MS + (long)(next_rand() % (KILL_MAX_MS - KILL_MIN_MS + 1));
		const char *rargs[] = { "run", "--quiet", "--state-dir", statedir, exp1, NULL };
		const char *cargs[] = { "recover", "--state-dir", statedir, NULL };
		char what[64], w1[256], w2[256];
		bool blocks;
		double js, jd, ps, bs;
		pid_t pid;
		int rc, reverted;

		snprintf(what, sizeof(what), "kill %d at %ld ms", i + 1, at);
		snprintf(log, sizeof(log), "%s/run.log", dir);
		pid = spawn(rargs, log);
		st = wait_for(pid, at);
		if (st < 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
		} else {
			diag("%s: faultline had already exited (status %d)", what,
			     WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
		}
		current = 0;
		snprintf(log, sizeof(log), "%s/recover.log", dir);
		rc = run_to_end(cargs, log, RECOVER_MS);
		slurp(log, out, sizeof(out));
		reverted = count_prefix(out, "reverted ");
		during += reverted > 0;
		diag("%s: recover reverted %d fault%s", what, reverted, reverted == 1 ? "" : "s");
		check_recover(what, statedir, rc, out);

		blocks = control_normal(svc_ctl, w1, sizeof(w1)) &
			 control_normal(dep_ctl, w2, sizeof(w2));
		if (!ok(blocks, "%s: both control blocks are back to normal", what))
			diag("%s%s", w1, w2);
		js = gauge(svc.http_port, "resilience_jitter_enabled{name=\"service\"}");
		jd = gauge(dep.http_port, "resilience_jitter_enabled{name=\"dependency\"}");
		ps = gauge(svc.http_port, "resilience_retries_paused{name=\"service\"}");
		if (!ok(js == 1 && jd == 1 && ps == 0,
			"%s: resilience_jitter_enabled is 1 on both, retries not paused", what))
			diag("jitter service %g dependency %g, retries paused %g", js, jd, ps);
		{
			struct targetproc_resp r = { 0 };

			targetproc_get(svc.http_port, "/item/1", 2000, &r);
			targetproc_resp_free(&r);
		}
		bs = gauge(svc.http_port, "resilience_breaker_state{name=\"dependency\"}");
		if (!ok(bs >= 0 && bs != 4, "%s: the breaker is not forced open", what))
			diag("resilience_breaker_state{name=\"dependency\"} = %g", bs);
	}
	ok(during >= KILLS / 2, "%d of %d kills landed while a fault was applied (at least %d)",
	   during, KILLS, KILLS / 2);

	/* Part 2: faultline starts the target; its processes must not outlive it. */
	for (int i = 0; i < ORPHAN_KILLS; i++) {
		long at = ORPHAN_MIN_MS + (long)(next_rand() % (ORPHAN_MAX_MS - ORPHAN_MIN_MS + 1));
		const char *rargs[] = { "run", "--state-dir", statedir2, exp2, NULL };
		const char *cargs[] = { "recover", "--state-dir", statedir2, NULL };
		char what[64], w[512];
		pid_t pid, pids[MAX_PIDS];
		int np = 0, left = 0, rc, files = 0;
		bool normal = true;
		const char *l;
		DIR *d;
		struct dirent *e;

		snprintf(what, sizeof(what), "started target, kill %d at %ld ms", i + 1, at);
		snprintf(log, sizeof(log), "%s/run2.log", dir);
		pid = spawn(rargs, log);
		st = wait_for(pid, at);
		if (st < 0) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
		}
		current = 0;
		slurp(log, out, sizeof(out));
		for (l = out; l && *l && np < MAX_PIDS;) {
			char role[32];
			int p;

			if (sscanf(l, "faultline: %31s pid %d:", role, &p) == 2 && p > 0) {
				pids[np++] = p;
				if (norphans < MAX_PIDS)
					orphans[norphans++] = p;
			}
			l = strchr(l, '\n');
			if (l)
				l++;
		}
		for (int k = 0; k < np; k++) {
			uint64_t end = targetproc_now_ms() + ORPHAN_WAIT_MS;

			while (alive(pids[k]) && targetproc_now_ms() < end)
				sleep_ms(20);
			if (alive(pids[k])) {
				left++;
				kill(pids[k], SIGKILL);
				diag("%s: target pid %d outlived faultline: killed", what,
				     (int)pids[k]);
			}
		}
		ok(left == 0, "%s: none of its %d target processes outlived it", what, np);
		snprintf(log, sizeof(log), "%s/recover2.log", dir);
		rc = run_to_end(cargs, log, RECOVER_MS);
		slurp(log, out, sizeof(out));
		diag("%s: recover reverted %d fault%s", what, count_prefix(out, "reverted "),
		     count_prefix(out, "reverted ") == 1 ? "" : "s");
		check_recover(what, statedir2, rc, out);
		w[0] = '\0';
		d = opendir(statedir2);
		while (d && (e = readdir(d))) {
			size_t n = strlen(e->d_name);

			if (n < 3 || strcmp(e->d_name + n - 2, ".d") != 0)
				continue;
			for (int r = 0; r < 2; r++) {
				snprintf(path, sizeof(path), "%s/%s/%s.control", statedir2,
					 e->d_name, r ? "dependency" : "service");
				if (access(path, F_OK) != 0)
					continue;
				files++;
				if (!control_normal(path, why, sizeof(why))) {
					normal = false;
					snprintf(w, sizeof(w), "%s", why);
				}
			}
		}
		if (d)
			closedir(d);
		if (!ok(normal, "%s: the run's %d control block files are normal", what, files))
			diag("%s", w);
	}

	if (targetproc_stop(&svc, 5000) != 0 || targetproc_stop(&dep, 5000) != 0)
		diag("a target did not exit cleanly on SIGTERM");
	return exit_status();
}
