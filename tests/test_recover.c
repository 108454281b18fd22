/* Recovery: a run killed with SIGKILL after journaling an undo record and
 * applying the jitter fault is found, reverted (the control block reads
 * jitter on again) and closed, so a second recover does nothing; runs that
 * may still be going are never touched; faults are reverted in reverse
 * order; a revert that fails stays pending. */
#include "tests/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cjson/cJSON.h>

#include "harness/journal.h"
#include "harness/recover.h"
#include "injectors/injector.h"
#include "resilience/control.h"

static char tmp[] = "/tmp/fl-recover-XXXXXX";
static char state[128];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p) < 0 ? -1 : 0;
}

static void cleanup(void)
{
	if (nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		fprintf(stderr, "# cannot remove %s: %s\n", tmp, strerror(errno));
}

static void on_alarm(int sig)
{
	static const char msg[] = "Bail out! watchdog: test_recover ran out of time\n";
	ssize_t n;

	(void)sig;
	n = write(1, msg, sizeof(msg) - 1);
	(void)n;
	_exit(255);
}

static void make_ctl(char *path, size_t cap, const char *name, bool jitter)
{
	struct rs_control *c = NULL;
	struct rs_err err = { "" };

	snprintf(path, cap, "%s/%s", tmp, name);
	if (rs_control_open(&c, path, RS_CONTROL_CREATE | RS_CONTROL_RESET, NULL, &err) < 0)
		bail_out("cannot create %s: %s", path, err.msg);
	(void)rs_control_set_jitter(c, jitter);
	rs_control_free(c);
}

static int jitter_of(const char *ctl)
{
	struct rs_control *c = NULL;
	int v;

	if (rs_control_open(&c, ctl, 0, NULL, NULL) < 0)
		return -1;
	v = rs_control_jitter_enabled(rs_control_block(c));
	rs_control_free(c);
	return v;
}

/* A pid that no process has now, and the start time its process had. */
static pid_t dead_pid(uint64_t *start)
{
	pid_t p = fork();

	if (p == 0)
		_exit(0);
	if (p < 0)
		bail_out("fork: %s", strerror(errno));
	usleep(10000);
	fl_proc_start_time(p, start); /* a zombie still has its stat */
	waitpid(p, NULL, 0);
	return p;
}

static int closed_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
		bail_out("cannot find a closed port: %s", strerror(errno));
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

/* Writes a journal by hand: a run-start for pid/start, then `lines`. */
static void write_journal(const char *name, long pid, uint64_t start, const char *lines)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s.jsonl", state, name);
	f = fopen(path, "w");
	if (!f)
		bail_out("cannot write %s", path);
	fprintf(f,
		"{\"t\":1,\"type\":\"run-start\",\"run\":\"%s\",\"seed\":\"1\",\"pid\":%ld,"
		"\"pid_start\":%llu}\n%s",
		name, pid, (unsigned long long)start, lines);
	fclose(f);
}

/* The undo object of a jitter fault on control block ctl whose previous
 * jitter was prev. */
static char *undo_obj(char *buf, size_t cap, const char *action, const char *ctl, bool prev)
{
	snprintf(
	    buf, cap,
	    "{\"v\":1,\"family\":\"jitter\",\"action\":\"%s\",\"target\":\"hand service\","
	    "\"role\":\"service\",\"pid\":0,\"pid_start\":0,\"client\":false,\"controls\":"
	    "[{\"role\":\"service\",\"target\":\"hand service\",\"path\":\"%s\",\"jitter\":%s}]}",
	    action, ctl, prev ? "true" : "false");
	return buf;
}

/* The same as a journal line. */
static char *jitter_undo(char *buf, size_t cap, const char *action, const char *ctl, bool prev)
{
	char obj[768];

	snprintf(buf, cap, "{\"t\":2,\"type\":\"undo\",\"action\":\"%s\",\"undo\":%s}\n", action,
		 undo_obj(obj, sizeof(obj), action, ctl, prev));
	return buf;
}

/* Runs recover with its report in *out (malloc'd). */
static int recover(struct fl_recover_summary *sum, char **out, struct rs_err *err)
{
	size_t len = 0;
	FILE *f = open_memstream(out, &len);
	int rc = fl_recover_run(state, f, sum, err);

	fclose(f);
	for (const char *l = *out; *l;) {
		size_t n = strcspn(l, "\n");

		diag("recover: %.*s", (int)n, l);
		l += n + (l[n] == '\n');
	}
	return rc;
}

struct find {
	const char *type, *key, *value;
	int n;
};

static int find_rec(void *ctx, const struct fl_jrec *rec)
{
	struct find *f = ctx;
	const cJSON *v;

	if (strcmp(rec->type, f->type) != 0)
		return 0;
	if (f->key) {
		v = cJSON_GetObjectItemCaseSensitive(rec->json, f->key);
		if (!cJSON_IsString(v) || strcmp(v->valuestring, f->value) != 0)
			return 0;
	}
	f->n++;
	return 0;
}

static int count_in(const char *path, const char *type, const char *key, const char *value)
{
	struct find f = { type, key, value, 0 };

	if (fl_journal_read(path, NULL, find_rec, &f, NULL, NULL) < 0)
		return -1;
	return f.n;
}

/* The crashed run: a child journals the undo record, applies the jitter
 * fault, starts writing another record and dies by SIGKILL. */
static pid_t crashed_run(const char *ctl, char *journal, size_t cap)
{
	int fds[2];
	pid_t p;

	if (pipe(fds) < 0)
		bail_out("pipe: %s", strerror(errno));
	p = fork();
	if (p == 0) {
		struct fl_fault_cfg cfg = { .family = FL_FAULT_JITTER, .action = "no-jitter" };
		struct fl_target_info t = { .control_path = ctl, .identity = "test service" };
		struct fl_journal_run run = { .seed = 7, .experiment = "x.json" };
		struct fl_journal *j = NULL;
		struct fl_fault *f = NULL;
		char undo[FL_UNDO_MAX];
		struct rs_err err = { "" };
		int fd;

		close(fds[0]);
		cfg.jitter.target = true;
		if (fl_journal_create(&j, state, &run, &err) < 0 ||
		    fl_fault_new(&f, &cfg, &t, NULL, &err) < 0 ||
		    fl_fault_undo_record(f, undo, sizeof(undo), &err) < 0 ||
		    fl_journal_undo(j, 0, "no-jitter", undo) < 0 || fl_fault_apply(f, &err) < 0 ||
		    fl_journal_sample(j, 0, 0, 1, true, NULL) < 0 || fl_journal_flush(j) < 0)
			_exit(1);
		if (write(fds[1], fl_journal_path(j), strlen(fl_journal_path(j))) < 0)
			_exit(1);
		/* A record cut by the kill. */
		fd = open(fl_journal_path(j), O_WRONLY | O_APPEND);
		if (fd < 0 || write(fd, "{\"t\":99,\"type\":\"fau", 19) != 19)
			_exit(1);
		kill(getpid(), SIGKILL);
		_exit(1);
	}
	close(fds[1]);
	{
		ssize_t n = read(fds[0], journal, cap - 1);

		journal[n > 0 ? n : 0] = '\0';
	}
	close(fds[0]);
	return p;
}

int main(void)
{
	char ctl[192], ctl2[192], ctl3[192], ctl4[192], journal[512], lines[4096], u1[1024],
	    u2[1024];
	struct fl_recover_summary sum;
	struct fl_recover_list list;
	struct rs_err err = { "" };
	struct fl_journal *live = NULL;
	char *report = NULL;
	size_t n = 99;
	uint64_t my_start = 0, dstart = 0;
	pid_t child, dead;
	int rc, status;

	plan(34);
	signal(SIGALRM, on_alarm);
	alarm(30);
	if (!mkdtemp(tmp))
		bail_out("cannot create a temporary directory: %s", strerror(errno));
	atexit(cleanup);
	snprintf(state, sizeof(state), "%s/state", tmp);

	rc = fl_recover_pending(state, &n, &err);
	ok(rc == 0 && n == 0, "a state directory that does not exist: nothing pending");

	/* ---- a run killed after apply ---- */
	make_ctl(ctl, sizeof(ctl), "service.ctl", true);
	child = crashed_run(ctl, journal, sizeof(journal));
	waitpid(child, &status, 0);
	ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && journal[0],
	   "the run was killed by SIGKILL after apply (journal %s)", journal);
	is_int(jitter_of(ctl), 0, "its fault is still applied: the control block reads jitter 0");
	rc = fl_recover_pending(state, &n, &err);
	ok(rc == 0 && n == 1, "pending: 1 unreverted fault (got %zu)", n);
	rc = fl_recover_scan(state, NULL, &list, &err);
	ok(rc == 0 && list.nruns == 1 && !list.runs[0].live && list.runs[0].nfaults == 1 &&
	       !strcmp(list.runs[0].faults[0].family, "jitter") &&
	       !strcmp(list.runs[0].faults[0].action, "no-jitter") && list.runs[0].pid == child,
	   "scan: one unfinished run of pid %ld, not live, with its jitter fault 'no-jitter'",
	   (long)child);
	fl_recover_list_release(&list);

	rc = recover(&sum, &report, &err);
	ok(rc == 0, "recover succeeds%s%s", rc ? ": " : "", rc ? err.msg : "");
	{
		char want[300];

		snprintf(want, sizeof(want),
			 "reverted jitter on test service (control %s): jitter on again\n", ctl);
		ok(strstr(report, want) != NULL, "the report says: %.*s", (int)strlen(want) - 1,
		   want);
	}
	free(report);
	is_int(jitter_of(ctl), 1, "the control block reads jitter 1 again");
	ok(sum.runs == 1 && sum.reverted == 1 && sum.failed == 0 && sum.live == 0,
	   "summary: 1 run recovered, 1 fault reverted");
	rc = fl_recover_pending(state, &n, &err);
	ok(rc == 0 && n == 0, "pending: 0");
	is_int(count_in(journal, "reverted", "by", "recover"), 1,
	       "the journal has a reverted record by recover");
	is_int(count_in(journal, "run-end", "reason", "recovered"), 1,
	       "and a run-end record, reason recovered (after the cut record)");

	make_ctl(ctl, sizeof(ctl), "service.ctl", false); /* someone turns it off again */
	rc = recover(&sum, &report, &err);
	ok(rc == 0 && sum.runs == 0 && sum.reverted == 0 && report[0] == '\0',
	   "a second recover does nothing and says nothing");
	free(report);
	is_int(jitter_of(ctl), 0, "and does not touch the control block again");

	/* ---- a run that may still be going: this process ---- */
	make_ctl(ctl2, sizeof(ctl2), "live.ctl", false);
	{
		struct fl_journal_run run = { .seed = 1 };

		if (fl_journal_create(&live, state, &run, &err) < 0 ||
		    fl_journal_undo(live, 0, "live-jitter",
				    undo_obj(u1, sizeof(u1), "live-jitter", ctl2, true)) < 0)
			bail_out("cannot write the live journal: %s", err.msg);
	}
	rc = fl_recover_pending(state, &n, &err);
	ok(rc == 0 && n == 0, "a live run (this process, lock held) is not pending");
	rc = recover(&sum, &report, &err);
	ok(rc == 0 && sum.live == 1 && strstr(report, "not touched"),
	   "recover skips it and says so");
	free(report);
	is_int(jitter_of(ctl2), 0, "its fault stays applied (jitter 0)");
	fl_recover_list_release(&list);
	ok(fl_journal_close(live, &err) == 0, "its writer closes it without run-end");
	rc = recover(&sum, &report, &err);
	ok(rc == 0 && sum.live == 1 && jitter_of(ctl2) == 0,
	   "unlocked but its pid (this process, same start time) is alive: still untouched");
	free(report);

	/* ---- the same pid with another start time: a reused pid ---- */
	if (fl_proc_start_time(getpid(), &my_start) < 0 || my_start == 0)
		bail_out("cannot read this process's start time");
	make_ctl(ctl3, sizeof(ctl3), "reused.ctl", false);
	write_journal("reused", (long)getpid(), my_start + 12345,
		      jitter_undo(u1, sizeof(u1), "reused", ctl3, true));
	rc = fl_recover_pending(state, &n, &err);
	ok(rc == 0 && n == 1, "a run whose pid was reused (start time differs) is pending");
	rc = recover(&sum, &report, &err);
	ok(rc == 0 && jitter_of(ctl3) == 1 && jitter_of(ctl2) == 0 && sum.reverted == 1,
	   "recover reverts it (jitter 1) and still leaves the live one alone");
	free(report);

	/* ---- two faults on one block: reverse order ---- */
	dead = dead_pid(&dstart);
	make_ctl(ctl4, sizeof(ctl4), "twice.ctl", false);
	snprintf(lines, sizeof(lines), "%s%s", jitter_undo(u1, sizeof(u1), "first", ctl4, true),
		 jitter_undo(u2, sizeof(u2), "second", ctl4, false));
	write_journal("twice", (long)dead, dstart, lines);
	rc = fl_recover_scan(state, NULL, &list, &err);
	{
		size_t live_runs = 0, pending = 0;

		for (size_t i = 0; i < list.nruns; i++) {
			live_runs += list.runs[i].live;
			pending += list.runs[i].live ? 0 : list.runs[i].pending;
		}
		ok(rc == 0 && live_runs == 1 && pending == 2,
		   "scan: the live run, and 2 faults pending in the dead one");
	}
	fl_recover_list_release(&list);
	rc = recover(&sum, &report, &err);
	ok(rc == 0 && sum.reverted == 2, "both reverted");
	ok(strstr(report, "jitter off again") && strstr(report, "jitter on again") &&
	       strstr(report, "jitter off again") < strstr(report, "jitter on again"),
	   "the later fault first (back to off), then the earlier (back to on)");
	free(report);
	is_int(jitter_of(ctl4), 1, "so the block ends as before the first fault: jitter 1");

	/* ---- reverted faults, nothing-to-undo faults, gone targets ---- */
	snprintf(lines, sizeof(lines), "%s{\"t\":3,\"type\":\"reverted\",\"action\":\"done\"}\n",
		 jitter_undo(u1, sizeof(u1), "done", ctl4, false));
	write_journal("matched", (long)dead, dstart, lines);
	snprintf(lines, sizeof(lines),
		 "{\"t\":2,\"type\":\"undo\",\"action\":\"flush\",\"undo\":{\"v\":1,\"family\":"
		 "\"cache\",\"action\":\"flush\",\"target\":\"pid %ld service\",\"op\":\"flush\","
		 "\"nothing\":true}}\n"
		 "{\"t\":3,\"type\":\"undo\",\"action\":\"slow\",\"undo\":{\"v\":1,\"family\":"
		 "\"capacity\",\"action\":\"slow\",\"target\":\"pid %ld dependency\",\"pid\":%ld,"
		 "\"pid_start\":%llu,\"admin\":\"http://127.0.0.1:%d\",\"prev\":{\"factor\":1}}}\n",
		 (long)dead, (long)dead, (long)dead, (unsigned long long)dstart, closed_port());
	write_journal("gone", (long)dead, dstart, lines);
	rc = fl_recover_pending(state, &n, &err);
	ok(rc == 0 && n == 1,
	   "pending: 1 (the capacity fault; the reverted one and the cache flush are not)");
	rc = recover(&sum, &report, &err);
	ok(rc == 0 && sum.runs == 2 && sum.reverted == 1 && sum.failed == 0,
	   "recover closes both runs");
	ok(strstr(report, "nothing to undo for cache flush on pid") &&
	       strstr(report, "nothing to undo for capacity on pid") &&
	       strstr(report, "the process is gone") && strstr(report, "closed, nothing to undo"),
	   "the report says why there was nothing to undo");
	free(report);

	/* ---- a revert that fails stays pending ---- */
	snprintf(lines, sizeof(lines),
		 "{\"t\":3,\"type\":\"undo\",\"action\":\"slow\",\"undo\":{\"v\":1,\"family\":"
		 "\"capacity\",\"action\":\"slow\",\"target\":\"dependency\",\"pid\":0,"
		 "\"admin\":\"http://127.0.0.1:%d\",\"prev\":{\"factor\":1}}}\n",
		 closed_port());
	write_journal("failing", (long)dead, dstart, lines);
	rc = recover(&sum, &report, &err);
	ok(rc == -ECONNREFUSED && strstr(err.msg, "could not revert 'slow' (capacity)"),
	   "a revert that cannot reach its target fails recover: %s", err.msg);
	ok(sum.failed == 1 && sum.runs == 0 && strstr(report, "could not revert") &&
	       strstr(report, "run 'faultline recover' again"),
	   "the report says so and what to do");
	free(report);
	rc = fl_recover_pending(state, &n, &err);
	ok(rc == 0 && n == 1, "the fault is still pending");
	snprintf(journal, sizeof(journal), "%s/failing.jsonl", state);
	ok(count_in(journal, "recover", NULL, NULL) == 1 &&
	       count_in(journal, "run-end", NULL, NULL) == 0,
	   "its journal has a recover record and no run-end");
	rc = recover(&sum, &report, &err);
	ok(rc == -ECONNREFUSED && sum.failed == 1, "a second recover tries again");
	free(report);

	ok(fl_recover_pending(tmp, &n, &err) == 0 && n == 0,
	   "a directory without journals: nothing pending");
	return exit_status();
}
