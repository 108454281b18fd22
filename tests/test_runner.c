/* `faultline run` end to end against the real faultline-target: verdicts and
 * exit codes, TAP, the JSON journal, --dry-run, SIGINT mid-fault, a stop
 * condition, a crashed run refused until recovered (and --force), the
 * target dying mid-run, bad input, the blast-radius allowlist, a missing
 * capability.  The experiments are in tests/experiments/.
 *
 * Every faultline child is registered with targetproc's watchdog (SIGKILL
 * and reap on timeout or exit); targets are started by faultline through
 * its PR_SET_PDEATHSIG shim, so they never outlive it. */
#include "tests/tap.h"
#include "tests/targetproc.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/journal.h"
#include "harness/runmap.h"
#include "harness/status.h"
#include "harness/target_proc.h"
#include "reports/tap.h"
#include "resilience/control.h"

static char bin[TARGETPROC_PATH_MAX], build[TARGETPROC_PATH_MAX];
static char tmp[64], data[128], state[128];
static char v_build[300], v_data[200];
static char src_dir[TARGETPROC_PATH_MAX];

struct proc {
	pid_t pid;
	char out[160], err[160]; /* files */
};

/* Starts `faultline ARGS...` with stdout and stderr into files. */
static int start_fl(struct proc *p, const char *const *args)
{
	static int n;
	const char *argv[40];
	size_t k = 0;
	int fo, fe;

	snprintf(p->out, sizeof(p->out), "%s/out-%d", tmp, n);
	snprintf(p->err, sizeof(p->err), "%s/err-%d", tmp, n++);
	fo = open(p->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	fe = open(p->err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fo < 0 || fe < 0)
		bail_out("cannot create output files in %s", tmp);
	argv[k++] = bin;
	while (*args && k < 39)
		argv[k++] = *args++;
	argv[k] = NULL;
	p->pid = fork();
	if (p->pid == 0) {
		dup2(fo, 1);
		dup2(fe, 2);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(fo);
	close(fe);
	if (p->pid < 0)
		bail_out("fork: %s", strerror(errno));
	targetproc__register(p->pid);
	return 0;
}

/* Waits for p (at most timeout_ms, then SIGKILL); its exit code, 128+sig. */
static int wait_fl(struct proc *p, int timeout_ms)
{
	uint64_t end = targetproc_now_ms() + (uint64_t)timeout_ms;
	int st;

	for (;;) {
		pid_t w = waitpid(p->pid, &st, WNOHANG);

		if (w == p->pid)
			break;
		if (targetproc_now_ms() >= end) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &st, 0);
			diag("faultline did not exit within %d ms: killed", timeout_ms);
			break;
		}
		usleep(20000);
	}
	targetproc__unregister(p->pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return strdup("");
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n)
		buf[0] = '\0';
	fclose(f);
	return buf ? buf : strdup("");
}

/* Polls file `path` until it contains `needle` (at most timeout_ms). */
static bool wait_text(const char *path, const char *needle, int timeout_ms)
{
	uint64_t end = targetproc_now_ms() + (uint64_t)timeout_ms;

	do {
		char *s = slurp(path);
		bool found = strstr(s, needle) != NULL;

		free(s);
		if (found)
			return true;
		usleep(20000);
	} while (targetproc_now_ms() < end);
	return false;
}

/* Runs faultline to completion; exit code, output in *out and *err
 * (caller-frees). */
static int run_fl(const char *const *args, int timeout_ms, char **out, char **err)
{
	struct proc p;
	int code;

	start_fl(&p, args);
	code = wait_fl(&p, timeout_ms);
	*out = slurp(p.out);
	*err = slurp(p.err);
	return code;
}

static void exp_path(char *buf, size_t n, const char *name)
{
	snprintf(buf, n, "%s/tests/experiments/%s", src_dir, name);
}

/* The service's jitter_enabled in control block `path`, or -1. */
static int control_jitter(const char *path)
{
	struct rs_control *c = NULL;
	int v;

	if (rs_control_open(&c, path, 0, NULL, NULL) < 0)
		return -1;
	v = rs_control_jitter_enabled(rs_control_block(c)) ? 1 : 0;
	rs_control_free(c);
	return v;
}

/* How many journals the state directory holds; the newest one's path into
 * newest (may be NULL; "" when none).  Run ids sort by start time. */
static size_t journals(char *newest, size_t n)
{
	DIR *d = opendir(state);
	struct dirent *e;
	char best[256] = "";
	size_t count = 0;

	if (newest && n)
		newest[0] = '\0';
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);

		if (l < 7 || strcmp(e->d_name + l - 6, ".jsonl") != 0)
			continue;
		count++;
		if (strcmp(e->d_name, best) > 0)
			snprintf(best, sizeof(best), "%s", e->d_name);
	}
	closedir(d);
	if (newest && best[0])
		snprintf(newest, n, "%s/%s", state, best);
	return count;
}

struct jcount {
	const char *type, *action;
	size_t n;
};

static int count_rec(void *ctx, const struct fl_jrec *rec)
{
	struct jcount *c = ctx;
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(rec->json, "action");

	if (!c->action || (cJSON_IsString(a) && strcmp(a->valuestring, c->action) == 0))
		c->n++;
	return 0;
}

static size_t journal_count(const char *path, const char *type, const char *action)
{
	struct jcount c = { type, action, 0 };

	if (fl_journal_read(path, type, count_rec, &c, NULL, NULL) < 0)
		return 0;
	return c.n;
}

/* The number after `key` in s, or NAN. */
static double number_after(const char *s, const char *key)
{
	const char *p = strstr(s, key);

	return p ? strtod(p + strlen(key), NULL) : NAN;
}

static int pid_after(const char *s, const char *key)
{
	const char *p = strstr(s, key);

	return p ? atoi(p + strlen(key)) : 0;
}

static bool gone(int pid, int timeout_ms)
{
	uint64_t end = targetproc_now_ms() + (uint64_t)timeout_ms;

	if (pid <= 0)
		return false;
	do {
		char path[64];

		snprintf(path, sizeof(path), "/proc/%d", pid);
		if (access(path, F_OK) != 0)
			return true;
		{
			/* A zombie (reaped by init soon) counts as gone. */
			char st[64], *s;
			FILE *f;

			snprintf(path, sizeof(path), "/proc/%d/stat", pid);
			f = fopen(path, "r");
			if (f) {
				s = fgets(st, sizeof(st), f);
				fclose(f);
				if (s && strstr(st, ") Z"))
					return true;
			}
		}
		usleep(20000);
	} while (targetproc_now_ms() < end);
	return false;
}

static bool only_tap(const char *out)
{
	const char *l = out;

	while (*l) {
		if (strncmp(l, "TAP version", 11) && strncmp(l, "1..", 3) && strncmp(l, "ok ", 3) &&
		    strncmp(l, "not ok ", 7) && strncmp(l, "  ", 2) && strncmp(l, "Bail out!", 9) &&
		    strncmp(l, "#", 1))
			return false;
		l = strchr(l, '\n');
		if (!l)
			break;
		l++;
	}
	return true;
}

static void test_pass(void)
{
	char e[512], j[256], *out, *err;
	const char *args[] = { "run", "--tap", "--plain-status", "--journal", j,      "--state-dir",
			       state, "--var", v_build,		 "--var",     v_data, e,
			       NULL };
	cJSON *doc;
	int code, svc, dep;

	exp_path(e, sizeof(e), "jitter-pass.json");
	snprintf(j, sizeof(j), "%s/journal.json", tmp);
	code = run_fl(args, 30000, &out, &err);
	is_int(code, 0, "a passing experiment exits 0");
	ok(strncmp(out, "TAP version 13\n1..6\n", 20) == 0, "TAP stream with a plan of 6 points");
	ok(strstr(out, "ok 3 - jitter off within 1s: measured ") != NULL,
	   "each point carries its measured figure and bound");
	ok(!strstr(out, "not ok"), "every point passes");
	ok(only_tap(out), "nothing but TAP on stdout with --tap");
	if (code != 0 || strstr(out, "not ok"))
		diag("stdout:\n%s\nstderr:\n%s", out, err);
	svc = pid_after(err, "service pid ");
	dep = pid_after(err, "dependency pid ");
	ok(gone(svc, 3000) && gone(dep, 3000), "both target processes are stopped (pids %d, %d)",
	   svc, dep);
	doc = NULL;
	{
		char *s = slurp(j);

		doc = cJSON_Parse(s);
		free(s);
	}
	ok(doc != NULL, "--journal writes valid JSON");
	{
		const cJSON *samples = cJSON_GetObjectItemCaseSensitive(doc, "samples");
		const cJSON *verdicts = cJSON_GetObjectItemCaseSensitive(doc, "verdicts");
		const cJSON *end = cJSON_GetObjectItemCaseSensitive(doc, "end");
		const cJSON *endcode = cJSON_GetObjectItemCaseSensitive(end, "code");

		ok(cJSON_GetArraySize(samples) > 100, "the journal holds every sample (%d)",
		   cJSON_GetArraySize(samples));
		is_int(cJSON_GetArraySize(verdicts), 6, "the journal holds the 6 verdicts");
		ok(cJSON_IsNumber(endcode) && endcode->valueint == 0,
		   "the journal's end record says 0");
	}
	cJSON_Delete(doc);
	{
		char rundir[300], newest[300];

		journals(newest, sizeof(newest));
		snprintf(rundir, sizeof(rundir), "%.*s.d", (int)(strlen(newest) - 6), newest);
		ok(newest[0] && access(rundir, F_OK) != 0,
		   "the run's control-block directory is removed after a clean run");
	}
	free(out);
	free(err);
}

static void test_fail(void)
{
	char e[512], *out, *err;
	const char *args[] = { "run",	"--quiet", "--state-dir", state, "--var",
			       v_build, "--var",   v_data,	  e,	 NULL };
	double m;
	int code;

	exp_path(e, sizeof(e), "fail-expect.json");
	code = run_fl(args, 30000, &out, &err);
	is_int(code, 1, "an expectation that fails exits 1");
	m = number_after(out, "FAIL  throughput below 10/s: measured ");
	ok(m > 150 && m < 250, "the failure shows the measured throughput (%.1f/s at 200/s)", m);
	ok(strstr(out, "bound <= 10/s") && strstr(out, "FAIL: 1 of 4 not met"),
	   "and its bound, and the count of failures");
	if (code != 1)
		diag("stdout:\n%s\nstderr:\n%s", out, err);
	free(out);
	free(err);
}

static void test_dry_run(void)
{
	char e[512], *out, *err;
	const char *args[] = { "run",	"--dry-run", "--state-dir", state, "--var",
			       v_build, "--var",     v_data,	    e,	   NULL };
	size_t before = journals(NULL, 0);
	int code;

	exp_path(e, sizeof(e), "jitter-pass.json");
	code = run_fl(args, 10000, &out, &err);
	is_int(code, 0, "--dry-run exits 0");
	ok(strstr(out, "timeline:") && strstr(out, "1.5s  no-jitter starts (jitter)") &&
	       strstr(out, "end: load stops"),
	   "--dry-run prints the timeline");
	ok(journals(NULL, 0) == before && !strstr(err, "listening"),
	   "--dry-run starts nothing (no journal, no target)");
	free(out);
	free(err);
}

static void test_sigint(void)
{
	char e[512], ctl[200], vctl[220], newest[300], *out, *err;
	const char *args[] = { "run",	"--plain-status", "--state-dir", state, "--var", v_build,
			       "--var", v_data,		  "--var",	 vctl,	e,	 NULL };
	struct proc p;
	bool applied;
	int code;

	exp_path(e, sizeof(e), "jitter-long.json");
	snprintf(ctl, sizeof(ctl), "%s/ctl-sigint", tmp);
	snprintf(vctl, sizeof(vctl), "ctl=%s", ctl);
	start_fl(&p, args);
	applied = wait_text(p.err, "no-jitter applied", 15000);
	ok(applied && control_jitter(ctl) == 0, "mid-fault: the control block has jitter off");
	kill(p.pid, SIGINT);
	usleep(10000);
	kill(p.pid, SIGINT); /* a second one must not skip the revert */
	code = wait_fl(&p, 15000);
	out = slurp(p.out);
	err = slurp(p.err);
	is_int(code, 3, "SIGINT mid-fault exits 3");
	is_int(control_jitter(ctl), 1, "the control block's jitter is back on");
	journals(newest, sizeof(newest));
	is_int((long long)journal_count(newest, "reverted", "no-jitter"), 1,
	       "the journal has the reverted record");
	ok(strstr(out, "interrupted by SIGINT; every fault reverted") != NULL,
	   "the output says it was interrupted and reverted");
	if (code != 3)
		diag("stdout:\n%s\nstderr:\n%s", out, err);
	free(out);
	free(err);
}

static void test_abort(void)
{
	char e[512], ctl[200], vctl[220], newest[300], *out, *err;
	const char *args[] = { "run",	"--quiet", "--state-dir", state, "--var", v_build,
			       "--var", v_data,	   "--var",	  vctl,	 e,	  NULL };
	double ms;
	int code;

	exp_path(e, sizeof(e), "abort.json");
	snprintf(ctl, sizeof(ctl), "%s/ctl-abort", tmp);
	snprintf(vctl, sizeof(vctl), "ctl=%s", ctl);
	code = run_fl(args, 30000, &out, &err);
	is_int(code, 3, "a stop condition that holds exits 3");
	ms = number_after(out, "every fault reverted ");
	ok(ms >= 0 && ms <= 1000,
	   "every fault reverted within 1 s of the condition being met (%.1f ms)", ms);
	is_int(control_jitter(ctl), 1, "the aborted fault is reverted (jitter on)");
	journals(newest, sizeof(newest));
	is_int((long long)journal_count(newest, "reverted", "no-jitter"), 1,
	       "the journal has the reverted record");
	{
		char *j = slurp(newest);

		ok(strstr(j, "\"expectation\":\"abort: jitter gone\"") &&
		       strstr(j, "every fault reverted"),
		   "the journal records the abort verdict with the time to revert");
		free(j);
	}
	if (code != 3)
		diag("stdout:\n%s\nstderr:\n%s", out, err);
	free(out);
	free(err);
}

static void test_refuse_recover(void)
{
	char e[512], q[512], ctl[200], vctl[220], *out, *err;
	const char *long_args[] = {
		"run",	 "--plain-status", "--state-dir", state, "--var", v_build,
		"--var", v_data,	   "--var",	  vctl,	 e,	  NULL
	};
	const char *quick[] = { "run",	 "--quiet", "--state-dir", state, "--var",
				v_build, "--var",   v_data,	   q,	  NULL };
	const char *quick_force[] = { "run",  "--quiet", "--force", "--state-dir",
				      state,  "--var",	 v_build,   "--var",
				      v_data, q,	 NULL };
	const char *rec[] = { "recover", "--state-dir", state, NULL };
	struct proc p;
	int code, svc;

	exp_path(e, sizeof(e), "jitter-long.json");
	exp_path(q, sizeof(q), "quick.json");
	snprintf(ctl, sizeof(ctl), "%s/ctl-kill", tmp);
	snprintf(vctl, sizeof(vctl), "ctl=%s", ctl);
	start_fl(&p, long_args);
	ok(wait_text(p.err, "no-jitter applied", 15000), "a run applies its fault");
	err = slurp(p.err);
	svc = pid_after(err, "service pid ");
	free(err);
	kill(p.pid, SIGKILL);
	wait_fl(&p, 5000);
	ok(gone(svc, 3000), "its target dies with the SIGKILLed harness (pid %d)", svc);
	is_int(control_jitter(ctl), 0, "the fault is left behind (jitter off)");

	code = run_fl(quick, 10000, &out, &err);
	is_int(code, 2, "a run refuses to start over an unrecovered fault");
	ok(strstr(err, "`faultline recover`") != NULL, "and names `faultline recover`");
	free(out);
	free(err);

	code = run_fl(quick_force, 20000, &out, &err);
	is_int(code, 0, "--force runs anyway");
	if (code != 0)
		diag("stdout:\n%s\nstderr:\n%s", out, err);
	free(out);
	free(err);

	code = run_fl(rec, 10000, &out, &err);
	is_int(code, 0, "faultline recover exits 0");
	ok(strstr(out, "reverted jitter") != NULL, "and says what it reverted");
	is_int(control_jitter(ctl), 1, "jitter is on again after recover");
	free(out);
	free(err);

	code = run_fl(quick, 20000, &out, &err);
	is_int(code, 0, "after recover, runs start again");
	free(out);
	free(err);
}

static void test_target_dies(void)
{
	char e[512], ctl[200], vctl[220], *out, *err;
	const char *args[] = { "run",	"--plain-status", "--state-dir", state, "--var", v_build,
			       "--var", v_data,		  "--var",	 vctl,	e,	 NULL };
	struct proc p;
	int code, svc;

	exp_path(e, sizeof(e), "jitter-long.json");
	snprintf(ctl, sizeof(ctl), "%s/ctl-death", tmp);
	snprintf(vctl, sizeof(vctl), "ctl=%s", ctl);
	start_fl(&p, args);
	wait_text(p.err, "no-jitter applied", 15000);
	err = slurp(p.err);
	svc = pid_after(err, "service pid ");
	free(err);
	if (svc > 0)
		kill(svc, SIGKILL);
	code = wait_fl(&p, 15000);
	out = slurp(p.out);
	err = slurp(p.err);
	is_int(code, 1, "the target dying mid-run fails the run (exit 1)");
	ok(strstr(out, "exited unexpectedly: killed by signal 9") != NULL,
	   "with the reason in the output");
	is_int(control_jitter(ctl), 1, "and the fault is reverted anyway");
	if (code != 1)
		diag("stdout:\n%s\nstderr:\n%s", out, err);
	free(out);
	free(err);
}

static void test_input_errors(void)
{
	char e[512], *out, *err;
	const char *bad[] = { "run", "--state-dir", state, e, NULL };
	const char *nofile[] = { "run", NULL };
	const char *badseed[] = { "run", "--seed", "x", e, NULL };
	int code;

	exp_path(e, sizeof(e), "bad-unknown-key.json");
	code = run_fl(bad, 10000, &out, &err);
	is_int(code, 2, "a bad experiment exits 2");
	ok(strstr(err, "bad-unknown-key.json:5:") && strstr(err, "conections"),
	   "naming the file, line and key");
	free(out);
	free(err);
	is_int(run_fl(nofile, 5000, &out, &err), 2, "no experiment file: usage, exit 2");
	free(out);
	free(err);
	is_int(run_fl(badseed, 5000, &out, &err), 2, "a bad --seed: usage, exit 2");
	free(out);
	free(err);

	exp_path(e, sizeof(e), "off-host.json");
	code = run_fl(bad, 10000, &out, &err);
	is_int(code, 2, "a URL off this machine exits 2 before touching anything");
	ok(strstr(err, "http://192.0.2.1:8080") && strstr(err, "--allow-host"),
	   "naming the URL and --allow-host");
	free(out);
	free(err);
}

static void test_baseline_and_capability(void)
{
	char e[512], newest[300], *out, *err;
	const char *args[] = { "run",	"--quiet", "--state-dir", state, "--var",
			       v_build, "--var",   v_data,	  e,	 NULL };
	int code;

	exp_path(e, sizeof(e), "baseline-fail.json");
	code = run_fl(args, 20000, &out, &err);
	is_int(code, 1, "a failing baseline exits 1");
	journals(newest, sizeof(newest));
	ok(strstr(out, "FAIL  baseline: throughput below 1/s") &&
	       journal_count(newest, "undo", NULL) == 0,
	   "before any fault is applied");
	free(out);
	free(err);

	exp_path(e, sizeof(e), "capability.json");
	code = run_fl(args, 20000, &out, &err);
	is_int(code, 4, "a fault the target cannot take exits 4");
	ok(strstr(out, "/admin/capacity") != NULL, "with the prepare step's message");
	free(out);
	free(err);
}

static void test_list_doctor(void)
{
	const char *list[] = { "list", NULL };
	const char *doctor[] = { "doctor", NULL };
	char *out, *err;

	is_int(run_fl(list, 5000, &out, &err), 0, "faultline list exits 0");
	ok(strstr(out, "fault jitter") && strstr(out, "probe client") &&
	       strstr(out, "default flush"),
	   "and lists families with parameters and defaults");
	free(out);
	free(err);
	is_int(run_fl(doctor, 10000, &out, &err), 0, "faultline doctor exits 0");
	ok(strstr(out, "netem") && strstr(out, "io_uring") && strstr(out, "FUSE"),
	   "and reports netem, io_uring and FUSE");
	free(out);
	free(err);
}

/* The pure pieces: the listening line, the allowlist, the status line,
 * the TAP writer. */
static void test_units(void)
{
	struct fl_status_view v = { "method", 12.34,	   30,	 true, 1987, 0.0041,
				    0.002,    "no-jitter", true, 2,    4 };
	struct fl_tap_point pts[2] = {
		{ "p99 under 50ms", true, true, "steady", "<=", 0.0031, 0.05, 0.0469, "s", 1.0, 10,
		  0, NULL },
		{ "amplification", false, true, "holds", "<=", 1.31, 1.12, -0.19, "ratio", 12.5, 40,
		  1, "amplification: \"max\" 1.31" },
	};
	char line[256], *buf = NULL;
	size_t len = 0;
	FILE *f;
	int h = 0, a = 0;

	ok(fl_tproc_parse_listening("listening http=127.0.0.1:8080 admin=127.0.0.1:9090", &h, &a) ==
		   0 &&
	       h == 8080 && a == 9090,
	   "the listening line gives both ports");
	ok(fl_tproc_parse_listening("listening on 8080", &h, &a) < 0, "another line is refused");
	ok(fl_host_is_loopback("127.3.4.5") && fl_host_is_loopback("localhost") &&
	       fl_host_is_loopback("[::1]") && fl_host_is_loopback("::ffff:127.0.0.1") &&
	       !fl_host_is_loopback("10.0.0.1") && !fl_host_is_loopback("example.com") &&
	       !fl_host_is_loopback("128.0.0.1"),
	   "loopback is 127.0.0.0/8, ::1 and localhost only");
	fl_status_format(&v, line, sizeof(line));
	is_str(line,
	       "[method] 12.3s/30s  1987 req/s  p99 4.1ms  err 0.2%  faults: no-jitter  met 2/4",
	       "the status line shows phase, time, rate, p99, errors, faults, met");
	f = open_memstream(&buf, &len);
	ok(f && fl_tap_write(f, pts, 2, NULL) == 0, "the TAP writer writes");
	if (f)
		fclose(f);
	ok(buf && strstr(buf, "TAP version 13\n1..2\nok 1 - p99 under 50ms: measured 3.10ms, "
			      "bound <= 50.0ms, margin 46.9ms\n"),
	   "a passing point: measured figure, bound and margin in the description");
	ok(buf &&
	       strstr(buf, "not ok 2 - amplification: measured 1.31, bound <= 1.12, margin "
			   "-0.19\n  ---\n") &&
	       strstr(buf, "    detail: \"amplification: \\\"max\\\" 1.31\"\n  ...\n"),
	   "a failing point: YAML block with the escaped detail");
	free(buf);
}

int main(void)
{
	const char *b = getenv("FAULTLINE_BUILD"), *t = targetproc_binary();
	const char *init[] = { "--init-data", data, "--items", "100", NULL };
	char *cwd;
	int st;

	if (!b || !t)
		skip_all("FAULTLINE_BUILD does not name a build with faultline-target");
	snprintf(build, sizeof(build), "%s", b);
	snprintf(bin, sizeof(bin), "%s/faultline", b);
	if (access(bin, X_OK) != 0)
		skip_all("no faultline program in $FAULTLINE_BUILD");
	cwd = getcwd(NULL, 0);
	snprintf(src_dir, sizeof(src_dir), "%s", cwd ? cwd : ".");
	free(cwd);
	if (access("tests/experiments/jitter-pass.json", R_OK) != 0)
		skip_all("run from the source tree (tests/experiments/ not found)");
	targetproc_watchdog(240);
	if (targetproc_tmpdir(tmp, sizeof(tmp)) < 0)
		bail_out("cannot create a temporary directory");
	snprintf(data, sizeof(data), "%s/data", tmp);
	snprintf(state, sizeof(state), "%s/state", tmp);
	snprintf(v_build, sizeof(v_build), "build=%s", build);
	snprintf(v_data, sizeof(v_data), "data=%s", data);
	if (targetproc_run(init, NULL, 10000, &st, NULL, 0, NULL, 0) < 0 || st != 0)
		bail_out("faultline-target --init-data failed");

	plan(61);
	test_units();
	test_pass();
	test_fail();
	test_dry_run();
	test_sigint();
	test_abort();
	test_refuse_recover();
	test_target_dies();
	test_input_errors();
	test_baseline_and_capability();
	test_list_doctor();
	return exit_status();
}
