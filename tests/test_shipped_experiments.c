/* The experiments that ship pass on this machine, and their negative-control
 * twins fail for the reason they exist (issue 4, section 7).
 *
 * Shipped experiments: every experiments/NAME.json except schema.json.  Each
 * must validate (`faultline validate`, exit 0), satisfy
 * experiments/schema.json (python3-jsonschema; skipped when missing), and
 * `faultline run` it must exit 0: every steady-state check and expectation
 * met on this machine.
 *
 * Twins: tests/experiments-negative/TWINS lists, for each shipped
 * experiment, runs of the same file with --var choosing a target
 * configuration that has one defense switched off, and the expectations
 * that defense exists for.  Each twin must exit 1 and report FAIL for every
 * listed expectation, so a twin that fails for another reason (a target
 * that does not start, a failing baseline) fails this test.  Every shipped
 * experiment must have a twin.
 *
 * After every run: the target processes faultline started (their pids are
 * read from its progress lines, "faultline: ROLE pid N: ...") have exited,
 * and the state directory holds no unreverted fault (fl_recover_pending).
 * The verdict lines of every run are printed as TAP diagnostics.
 *
 * Runs happen one at a time from the repository root, with a state directory
 * of their own (/tmp/fl-shipped-XXXXXX, removed at the end) and
 * $FAULTLINE_BUILD made absolute (the experiments start
 * ${FAULTLINE_BUILD}/faultline-target).  Bounded: each run gets RUN_TIMEOUT_S
 * (then SIGTERM, so that faultline reverts and stops its targets, and
 * SIGKILL STOP_GRACE_S later); a watchdog (alarm) covers the whole program,
 * kills the current run and every target pid seen, by pid, and removes the
 * state directory.
 */
#include "tests/tap.h"
#include "tests/srctree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness/recover.h"
#include "resilience/err.h"

#define MAX_EXPS      32
#define MAX_TWINS     64
#define MAX_VARS      4
#define MAX_NAMES     8
#define MAX_PIDS      64
#define OUT_MAX	      (256 * 1024)
#define RUN_TIMEOUT_S 60
#define VALIDATE_S    20
#define STOP_GRACE_S  15
#define LINE_MAX_     1024

struct twin {
	char exp[PATH_MAX];
	char vars[MAX_VARS][128];
	int nvars;
	char names[MAX_NAMES][128]; /* expectations that must fail */
	int nnames;
	int line;
};

struct result {
	int exit_code; /* -1 when a signal ended it */
	int signal;
	bool timed_out;
	char out[OUT_MAX], err[OUT_MAX]; /* NUL-terminated, truncated */
	size_t out_len, err_len;
};

static char root[PATH_MAX];
static char build[PATH_MAX];
static char faultline[PATH_MAX + 16];
static char statedir[] = "/tmp/fl-shipped-XXXXXX";
static bool statedir_made;
static char exps[MAX_EXPS][PATH_MAX];
static int nexps;
static struct twin twins[MAX_TWINS];
static int ntwins;
static struct result res;

/* For the watchdog: the run in progress and every target pid seen. */
static volatile pid_t current;
static volatile pid_t seen[MAX_PIDS];
static volatile int nseen;

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path);
}

static void cleanup(void)
{
	if (statedir_made) {
		nftw(statedir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		statedir_made = false;
	}
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Async-signal-safe: kill the run (SIGTERM first, so that it reverts and
 * stops its targets), then every target seen, by pid; remove the state
 * directory with /bin/rm; exit 255. */
static void on_alarm(int sig)
{
	static const char msg[] = "Bail out! watchdog: the shipped experiments ran out of time\n";
	pid_t p = current;
	ssize_t n;

	(void)sig;
	if (p > 0) {
		kill(p, SIGTERM);
		for (int i = 0; i < 100 && waitpid(p, NULL, WNOHANG) == 0; i++)
			sleep_ms(100);
		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
	}
	for (int i = 0; i < nseen; i++)
		if (seen[i] > 0)
			kill(seen[i], SIGKILL);
	if (statedir_made) {
		pid_t r = fork();

		if (r == 0) {
			char *const argv[] = { "rm", "-rf", statedir, NULL };
			char *const envp[] = { NULL };

			execve("/bin/rm", argv, envp);
			_exit(127);
		}
		if (r > 0)
			waitpid(r, NULL, 0);
	}
	n = write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	(void)n;
	_exit(255);
}

static void find_root(void)
{
	srctree_find(root, sizeof(root), "tests/experiments-negative/TWINS", true);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

static void list_experiments(void)
{
	char dir[PATH_MAX + 16];
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/experiments", root);
	d = opendir(dir);
	if (!d)
		bail_out("cannot open %s: %s", dir, strerror(errno));
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		char path[PATH_MAX * 2];
		struct stat st;

		if (len < 6 || strcmp(e->d_name + len - 5, ".json") != 0 ||
		    strcmp(e->d_name, "schema.json") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (nexps == MAX_EXPS)
			bail_out("more than %d experiments in %s", MAX_EXPS, dir);
		snprintf(exps[nexps++], PATH_MAX, "experiments/%s", e->d_name);
	}
	closedir(d);
	qsort(exps, (size_t)nexps, sizeof(exps[0]), cmp_str);
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Reads TWINS: "EXPERIMENT NAME=VALUE... : EXPECTATION; EXPECTATION...". */
static void read_twins(void)
{
	char path[PATH_MAX + 64], line[LINE_MAX_];
	int lineno = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/tests/experiments-negative/TWINS", root);
	f = fopen(path, "r");
	if (!f)
		bail_out("cannot open %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char *l = trim(line), *colon, *tok, *save = NULL;
		struct twin *t;

		lineno++;
		if (!*l || *l == '#')
			continue;
		if (ntwins == MAX_TWINS)
			bail_out("%s: more than %d twins", path, MAX_TWINS);
		t = &twins[ntwins];
		memset(t, 0, sizeof(*t));
		t->line = lineno;
		colon = strchr(l, ':');
		if (!colon)
			bail_out("%s:%d: no ':' before the expectations", path, lineno);
		*colon++ = '\0';
		for (tok = strtok_r(l, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
			if (!t->exp[0]) {
				snprintf(t->exp, sizeof(t->exp), "%s", tok);
				continue;
			}
			if (!strchr(tok, '=') || t->nvars == MAX_VARS ||
			    strlen(tok) >= sizeof(t->vars[0]))
				bail_out("%s:%d: bad variable '%s'", path, lineno, tok);
			snprintf(t->vars[t->nvars++], sizeof(t->vars[0]), "%s", tok);
		}
		for (tok = strtok_r(colon, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
			char *name = trim(tok);

			if (!*name)
				continue;
			if (t->nnames == MAX_NAMES || strlen(name) >= sizeof(t->names[0]))
				bail_out("%s:%d: too many or too long expectation names", path,
					 lineno);
			snprintf(t->names[t->nnames++], sizeof(t->names[0]), "%s", name);
		}
		if (!t->exp[0] || !t->nvars || !t->nnames)
			bail_out("%s:%d: want EXPERIMENT NAME=VALUE... : EXPECTATION...", path,
				 lineno);
		ntwins++;
	}
	fclose(f);
}

/* Records the target pids of "faultline: ROLE pid N: ..." lines in err. */
static void scan_pids(const char *err, pid_t *pids, int *npids, int max)
{
	const char *l = err;

	*npids = 0;
	while (l && *l) {
		char role[32];
		int pid;

		if (sscanf(l, "faultline: %31s pid %d:", role, &pid) == 2 && pid > 0 &&
		    *npids < max) {
			bool dup = false;

			for (int i = 0; i < *npids; i++)
				dup |= pids[i] == pid;
			if (!dup)
				pids[(*npids)++] = pid;
			if (!dup && nseen < MAX_PIDS)
				seen[nseen++] = pid;
		}
		l = strchr(l, '\n');
		if (l)
			l++;
	}
}

static void append(char *buf, size_t *len, const char *data, size_t n)
{
	size_t room = OUT_MAX - 1 - *len;

	if (n > room)
		n = room;
	memcpy(buf + *len, data, n);
	*len += n;
	buf[*len] = '\0';
}

/* Runs faultline ARGS... from the repository root, capturing stdout and
 * stderr, for at most timeout_s (then SIGTERM, and SIGKILL STOP_GRACE_S
 * later).  Fills res. */
static void run(const char *const *args, int timeout_s)
{
	int out[2], err[2], status = 0;
	const char *argv[32];
	bool out_open = true, err_open = true, exited = false, termed = false;
	time_t deadline = time(NULL) + timeout_s, kill_at = 0;
	int n = 0;
	pid_t pid;

	memset(&res, 0, sizeof(res));
	argv[n++] = faultline;
	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		bail_out("pipe: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		bail_out("fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(out[1], STDOUT_FILENO);
		dup2(err[1], STDERR_FILENO);
		if (chdir(root) < 0)
			_exit(126);
		execv(faultline, (char *const *)argv);
		_exit(127);
	}
	current = pid;
	close(out[1]);
	close(err[1]);
	while (out_open || err_open || !exited) {
		struct pollfd pf[2] = { { out_open ? out[0] : -1, POLLIN, 0 },
					{ err_open ? err[0] : -1, POLLIN, 0 } };
		char buf[4096];
		time_t now;

		if (poll(pf, 2, 100) < 0 && errno != EINTR)
			bail_out("poll: %s", strerror(errno));
		for (int i = 0; i < 2; i++) {
			ssize_t r;

			if (!(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(pf[i].fd, buf, sizeof(buf));
			if (r <= 0) {
				if (r < 0 && errno == EINTR)
					continue;
				if (i == 0)
					out_open = false;
				else
					err_open = false;
				continue;
			}
			if (i == 0) {
				append(res.out, &res.out_len, buf, (size_t)r);
			} else {
				pid_t pids[MAX_PIDS];
				int np;

				append(res.err, &res.err_len, buf, (size_t)r);
				scan_pids(res.err, pids, &np, MAX_PIDS);
			}
		}
		if (!exited && waitpid(pid, &status, WNOHANG) == pid)
			exited = true;
		now = time(NULL);
		if (!exited && !termed && now >= deadline) {
			res.timed_out = true;
			termed = true;
			kill(pid, SIGTERM);
			kill_at = now + STOP_GRACE_S;
		}
		if (!exited && termed && now >= kill_at)
			kill(pid, SIGKILL);
	}
	close(out[0]);
	close(err[0]);
	current = 0;
	res.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	res.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

/* Prints each line of text as a diagnostic. */
static void diag_lines(const char *text, const char *prefix)
{
	const char *l = text;

	while (l && *l) {
		const char *e = strchr(l, '\n');
		int len = e ? (int)(e - l) : (int)strlen(l);

		if (len > 0)
			diag("%s%.*s", prefix, len, l);
		l = e ? e + 1 : NULL;
	}
}

static bool alive(pid_t pid)
{
	char path[64], stat_line[512];
	FILE *f;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return false;
	if (!fgets(stat_line, sizeof(stat_line), f)) {
		fclose(f);
		return false;
	}
	fclose(f);
	/* "PID (comm) S ...": a zombie waits for init; another comm is a reused pid. */
	{
		const char *rp = strrchr(stat_line, ')');

		if (!strstr(stat_line, "(faultline-targ") || !rp || rp[1] != ' ' || rp[2] == 'Z')
			return false;
	}
	return true;
}

/* The run's target processes have exited (waits up to 2 s); any left is
 * killed by pid.  Also: nothing left to recover in the state directory. */
static void check_after(const char *what)
{
	pid_t pids[MAX_PIDS];
	int np, left = 0;
	struct rs_err e = { 0 };
	size_t pending = 0;
	int rc;

	scan_pids(res.err, pids, &np, MAX_PIDS);
	for (int i = 0; i < np; i++) {
		int tries = 0;

		while (alive(pids[i]) && tries++ < 20)
			sleep_ms(100);
		if (alive(pids[i])) {
			left++;
			diag("%s: target pid %d still running: killed", what, (int)pids[i]);
			kill(pids[i], SIGKILL);
		}
	}
	ok(np >= 2 && left == 0, "%s: its %d target processes have exited", what, np);
	rc = fl_recover_pending(statedir, &pending, &e);
	if (!ok(rc == 0 && pending == 0, "%s: no fault left to recover", what))
		diag("fl_recover_pending: %d, %zu pending: %s", rc, pending, e.msg);
}

static void report_run(const char *what)
{
	diag_lines(res.out, "  ");
	if (res.timed_out)
		diag("%s: timed out after %d s", what, RUN_TIMEOUT_S);
}

/* The last lines of stderr, for a run that did not end as expected. */
static void diag_err_tail(void)
{
	const char *p = res.err + res.err_len;
	int lines = 0;

	while (p > res.err && lines < 25)
		if (*--p == '\n')
			lines++;
	diag_lines(p, "stderr: ");
}

/* Validates every shipped experiment against experiments/schema.json with
 * python3-jsonschema; ok[i] is set per file, or *skipped. */
static void schema_check(bool *okv, bool *skipped, char why[][256])
{
	static const char script[] =
	    "import json, sys\n"
	    "try:\n"
	    "    import jsonschema\n"
	    "except ImportError:\n"
	    "    print('skip'); sys.exit(0)\n"
	    "v = jsonschema.Draft202012Validator(json.load(open(sys.argv[1])))\n"
	    "for f in sys.argv[2:]:\n"
	    "    errs = sorted(v.iter_errors(json.load(open(f))), key=lambda e: list(e.path))\n"
	    "    print('ok' if not errs else 'bad\\t%s: %s' % ('/'.join(map(str, "
	    "errs[0].path)), errs[0].message[:160]))\n";
	char schema[PATH_MAX + 32], paths[MAX_EXPS][PATH_MAX * 2], line[LINE_MAX_];
	const char *argv[MAX_EXPS + 5];
	int p[2], argc = 0, i = 0;
	FILE *f;
	pid_t pid;

	*skipped = false;
	if (access("/usr/bin/python3", X_OK) != 0) {
		*skipped = true;
		return;
	}
	snprintf(schema, sizeof(schema), "%s/experiments/schema.json", root);
	argv[argc++] = "/usr/bin/python3";
	argv[argc++] = "-c";
	argv[argc++] = script;
	argv[argc++] = schema;
	for (int k = 0; k < nexps; k++) {
		snprintf(paths[k], sizeof(paths[k]), "%s/%s", root, exps[k]);
		argv[argc++] = paths[k];
	}
	argv[argc] = NULL;
	if (pipe2(p, O_CLOEXEC) < 0)
		bail_out("pipe: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		dup2(p[1], STDOUT_FILENO);
		alarm(VALIDATE_S);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	f = fdopen(p[0], "r");
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, "skip") == 0) {
			*skipped = true;
			break;
		}
		if (i < nexps) {
			const char *tab = strchr(line, '\t');

			okv[i] = strcmp(line, "ok") == 0;
			snprintf(why[i], 256, "%.200s", tab ? tab + 1 : line);
			i++;
		}
	}
	if (f)
		fclose(f);
	else
		close(p[0]);
	waitpid(pid, NULL, 0);
}

static bool has_fail_line(const char *out, const char *name)
{
	char want[192];
	const char *l = out;

	snprintf(want, sizeof(want), "FAIL  %s:", name);
	while (l && *l) {
		const char *s = l;

		while (*s == ' ')
			s++;
		if (strncmp(s, want, strlen(want)) == 0)
			return true;
		l = strchr(l, '\n');
		if (l)
			l++;
	}
	return false;
}

int main(void)
{
	const char *b = getenv("FAULTLINE_BUILD");
	char target[PATH_MAX + 32], why[3 * PATH_MAX];
	bool schema_ok[MAX_EXPS] = { false }, schema_skipped;
	char schema_why[MAX_EXPS][256];
	struct sigaction sa;
	int missing_twin = 0;

	if (!b || !*b)
		skip_all("FAULTLINE_BUILD is not set (the build directory with faultline and "
			 "faultline-target)");
	if (!realpath(b, build)) {
		snprintf(why, sizeof(why), "FAULTLINE_BUILD=%s: %s", b, strerror(errno));
		skip_all(why);
	}
	snprintf(faultline, sizeof(faultline), "%s/faultline", build);
	snprintf(target, sizeof(target), "%s/faultline-target", build);
	if (access(faultline, X_OK) != 0 || access(target, X_OK) != 0) {
		snprintf(why, sizeof(why), "%s or %s is missing (make faultline faultline-target)",
			 faultline, target);
		skip_all(why);
	}
	setenv("FAULTLINE_BUILD", build, 1);
	find_root();
	list_experiments();
	read_twins();
	if (!mkdtemp(statedir))
		bail_out("mkdtemp: %s", strerror(errno));
	statedir_made = true;
	atexit(cleanup);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	alarm((unsigned)((nexps + ntwins) * (RUN_TIMEOUT_S + STOP_GRACE_S) + nexps * VALIDATE_S +
			 60));

	plan(2 + 5 * nexps + 4 * ntwins);
	ok(nexps >= 4, "%d experiments ship in experiments/ (at least 4)", nexps);
	for (int i = 0; i < nexps; i++) {
		bool found = false;

		for (int k = 0; k < ntwins; k++)
			found |= strcmp(twins[k].exp, exps[i]) == 0;
		if (!found) {
			missing_twin++;
			diag("%s has no negative-control twin in tests/experiments-negative/TWINS",
			     exps[i]);
		}
	}
	ok(!missing_twin, "every shipped experiment has a negative-control twin");

	schema_check(schema_ok, &schema_skipped, schema_why);
	for (int i = 0; i < nexps; i++) {
		const char *vargs[] = { "validate", exps[i], NULL };

		run(vargs, VALIDATE_S);
		if (!ok(res.exit_code == 0, "%s: faultline validate accepts it", exps[i]))
			diag_lines(res.err, "");
		if (schema_skipped)
			skip("python3-jsonschema is not installed (apt-get install "
			     "python3-jsonschema)",
			     1);
		else if (!ok(schema_ok[i], "%s: experiments/schema.json accepts it", exps[i]))
			diag("%s", schema_why[i]);
	}

	for (int i = 0; i < nexps; i++) {
		const char *rargs[] = { "run", "--state-dir", statedir, exps[i], NULL };

		diag("faultline run %s", exps[i]);
		run(rargs, RUN_TIMEOUT_S);
		report_run(exps[i]);
		if (!ok(res.exit_code == 0, "%s: passes (exit %d)", exps[i], res.exit_code))
			diag_err_tail();
		check_after(exps[i]);
	}

	for (int k = 0; k < ntwins; k++) {
		const struct twin *t = &twins[k];
		const char *rargs[8 + 2 * MAX_VARS];
		char what[PATH_MAX + 256];
		int n = 0, missing = 0;
		size_t len;

		len = (size_t)snprintf(what, sizeof(what), "twin %s", t->exp);
		for (int v = 0; v < t->nvars && len < sizeof(what); v++)
			len += (size_t)snprintf(what + len, sizeof(what) - len, " --var %s",
						t->vars[v]);
		rargs[n++] = "run";
		rargs[n++] = "--state-dir";
		rargs[n++] = statedir;
		for (int v = 0; v < t->nvars; v++) {
			rargs[n++] = "--var";
			rargs[n++] = t->vars[v];
		}
		rargs[n++] = t->exp;
		rargs[n] = NULL;
		diag("faultline run%s", what + 4);
		run(rargs, RUN_TIMEOUT_S);
		report_run(what);
		if (!ok(res.exit_code == 1, "%s: fails (exit %d, want 1)", what, res.exit_code))
			diag_err_tail();
		for (int m = 0; m < t->nnames; m++)
			if (!has_fail_line(res.out, t->names[m])) {
				missing++;
				diag("%s: no FAIL line for '%s'", what, t->names[m]);
			}
		ok(!missing, "%s: fails what the defense exists for (%d expectations)", what,
		   t->nnames);
		check_after(what);
	}
	return exit_status();
}
