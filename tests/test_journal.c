/* The journal: where it lives, what it writes, that undo records are on
 * disk before the call returns, that samples are batched, that the lock
 * tells a live writer, that the reader survives what a crash leaves, and
 * the one-document export. */
#include "tests/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "harness/journal.h"
#include "harness/statedir.h"

static char tmp[] = "/tmp/fl-journal-XXXXXX";

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p) < 0 ? -1 : 0;
}

/* Removes the test's own temporary directory, depth first. */
static void cleanup(void)
{
	if (nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
		fprintf(stderr, "# cannot remove %s: %s\n", tmp, strerror(errno));
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "Bail out! watchdog: test_journal ran out of time\n";
	ssize_t n = write(1, msg, sizeof(msg) - 1);

	(void)n;
	_exit(255);
}

/* The whole file, NUL-terminated, read through a new descriptor. */
static char *slurp(const char *path)
{
	static char buf[1 << 16];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	buf[0] = '\0';
	if (fd < 0)
		return buf;
	n = read(fd, buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(fd);
	return buf;
}

struct tally {
	size_t n, start, phase, sample, fault, undo, reverted, verdict, end, other;
	uint64_t last_t;
	bool ordered;
	cJSON *keep[16]; /* copies of the first records */
};

static int count(void *ctx, const struct fl_jrec *rec)
{
	struct tally *t = ctx;

	if (t->n < 16)
		t->keep[t->n] = cJSON_Duplicate(rec->json, true);
	t->n++;
	if (!strcmp(rec->type, "run-start"))
		t->start++;
	else if (!strcmp(rec->type, "phase"))
		t->phase++;
	else if (!strcmp(rec->type, "sample"))
		t->sample++;
	else if (!strcmp(rec->type, "fault"))
		t->fault++;
	else if (!strcmp(rec->type, "undo"))
		t->undo++;
	else if (!strcmp(rec->type, "reverted"))
		t->reverted++;
	else if (!strcmp(rec->type, "verdict"))
		t->verdict++;
	else if (!strcmp(rec->type, "run-end"))
		t->end++;
	else
		t->other++;
	return 0;
}

static void tally_free(struct tally *t)
{
	for (size_t i = 0; i < 16; i++)
		cJSON_Delete(t->keep[i]);
	memset(t, 0, sizeof(*t));
}

static const cJSON *get(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

static double num(const cJSON *o, const char *k)
{
	const cJSON *v = get(o, k);

	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *gets(const cJSON *o, const char *k)
{
	const cJSON *v = get(o, k);

	return cJSON_IsString(v) ? v->valuestring : "(none)";
}

static void append(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_APPEND);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		bail_out("cannot append to %s", path);
	close(fd);
}

int main(void)
{
	static const char source[] = "{\n  \"title\": \"q\\\"uote\",\n  \"x\": \"\xff\"\n}\n";
	struct fl_journal_run run = { .seed = UINT64_MAX,
				      .experiment = "exp/demo.json",
				      .source = source,
				      .source_len = sizeof(source) - 1,
				      .version = "0.1.0" };
	struct fl_journal *j = NULL, *k = NULL;
	struct fl_jread_stats st;
	struct tally t = { 0 };
	struct rs_err err = { "" };
	char path[FL_STATE_PATH_MAX], dir[256], copy[FL_STATE_PATH_MAX], id1[FL_RUN_ID_MAX],
	    id2[FL_RUN_ID_MAX];
	struct stat sb;
	int rc;

	plan(51);
	signal(SIGALRM, on_alarm);
	alarm(30);
	if (!mkdtemp(tmp))
		bail_out("cannot create a temporary directory: %s", strerror(errno));
	atexit(cleanup);

	/* ---- the state directory ---- */
	setenv(FL_STATEDIR_ENV, "/srv/x", 1);
	rc = fl_statedir_path(path, sizeof(path), &err);
	is_str(rc == 0 ? path : err.msg, "/srv/x", FL_STATEDIR_ENV " wins");
	unsetenv(FL_STATEDIR_ENV);
	setenv("XDG_STATE_HOME", "/home/u/.st", 1);
	rc = fl_statedir_path(path, sizeof(path), &err);
	is_str(rc == 0 ? path : err.msg, "/home/u/.st/faultline", "then $XDG_STATE_HOME/faultline");
	setenv("XDG_STATE_HOME", "relative", 1);
	rc = fl_statedir_path(path, sizeof(path), &err);
	if (geteuid() == 0)
		is_str(rc == 0 ? path : err.msg, "/var/lib/faultline",
		       "a relative XDG_STATE_HOME is ignored; root gets /var/lib/faultline");
	else
		ok(rc == 0 && strstr(path, "/.local/state/faultline"),
		   "a relative XDG_STATE_HOME is ignored; users get ~/.local/state/faultline");
	unsetenv("XDG_STATE_HOME");
	ok(fl_statedir_path(path, 8, &err) == -ENAMETOOLONG, "a path that does not fit: %s",
	   err.msg);

	snprintf(dir, sizeof(dir), "%s/a/b/state", tmp);
	rc = fl_statedir_ensure(dir, &err);
	ok(rc == 0 && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) && (sb.st_mode & 0777) == 0700,
	   "ensure creates the directory and its parents, mode 0700");
	snprintf(path, sizeof(path), "%s/a/b", tmp);
	ok(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0700, "new parents are 0700 too");
	ok(fl_statedir_ensure(dir, &err) == 0, "ensure on an existing directory: fine");
	snprintf(path, sizeof(path), "%s/file", tmp);
	close(open(path, O_CREAT | O_WRONLY, 0600));
	snprintf(copy, sizeof(copy), "%s/file/sub", tmp);
	rc = fl_statedir_ensure(copy, &err);
	ok(rc == -ENOTDIR && strstr(err.msg, "file"), "a file in the way: %s", err.msg);

	ok(fl_run_id_new(id1, sizeof(id1)) == 0 && fl_run_id_new(id2, sizeof(id2)) == 0 &&
	       strcmp(id1, id2) != 0,
	   "two run ids differ: %s %s", id1, id2);
	{
		char want[32];

		snprintf(want, sizeof(want), "-%ld-", (long)getpid());
		ok(strlen(id1) == 16 + strlen(want) + 8 && id1[8] == 'T' && id1[15] == 'Z' &&
		       strstr(id1, want) == id1 + 16,
		   "run id = UTC time, pid, 32 random bits: %s", id1);
	}

	/* ---- writing ---- */
	snprintf(dir, sizeof(dir), "%s/state", tmp);
	rc = fl_journal_create(&j, dir, &run, &err);
	ok(rc == 0, "journal created in a new directory%s%s", rc ? ": " : "", rc ? err.msg : "");
	if (rc)
		bail_out("cannot go on without a journal");
	snprintf(path, sizeof(path), "%s", fl_journal_path(j));
	ok(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600, "journal file is mode 0600");
	{
		char want[FL_STATE_PATH_MAX];

		snprintf(want, sizeof(want), "%s/%s.jsonl", dir, fl_journal_run_id(j));
		is_str(path, want, "named <state dir>/<run id>.jsonl");
	}
	ok(strstr(slurp(path), "\"type\":\"run-start\"") != NULL,
	   "run-start is on disk when create returns");
	run.run_id = fl_journal_run_id(j);
	rc = fl_journal_create(&k, dir, &run, &err);
	ok(rc == -EEXIST, "a second journal with the same run id is refused: %s", err.msg);
	run.run_id = NULL;

	is_int(fl_journal_locked(path), 1, "the journal is locked while its writer has it open");
	rc = fl_journal_open_append(&k, path, &err);
	ok(rc == -EWOULDBLOCK && strstr(err.msg, "in use"),
	   "recover cannot open a live journal: %s", err.msg);

	ok(fl_journal_phase(j, 1000, "warmup") == 0, "phase record");
	ok(fl_journal_sample(j, 2000, 0, 0.25, true, NULL) == 0 &&
	       fl_journal_sample(j, 2100, 1, NAN, false, "connection refused to 127.0.0.1:1") ==
		   0 &&
	       fl_journal_sample(j, 2200, 0, 1e-300, true, NULL) == 0,
	   "three samples");
	ok(strstr(slurp(path), "\"type\":\"sample\"") == NULL,
	   "samples are batched: not in the file yet");
	ok(fl_journal_undo(j, 3000, "no-jitter", "{\"family\":\"jitter\",\"controls\":[]}") == 0,
	   "undo record");
	{
		const char *file = slurp(path);
		const char *s = strstr(file, "\"type\":\"sample\"");
		const char *u = strstr(file, "\"type\":\"undo\"");

		ok(u && strstr(u, "\"undo\":{\"family\":\"jitter\",\"controls\":[]}"),
		   "the undo record is in the file (read from another descriptor) when "
		   "fl_journal_undo returns");
		ok(s && u && s < u, "the batched samples were written before it, in call order");
	}
	rc = fl_journal_undo(j, 0, "bad", "{\"a\":\n1}");
	ok(rc == -EINVAL && strstr(fl_journal_error(j), "one line"),
	   "an undo record on two lines is refused: %s", fl_journal_error(j));
	ok(fl_journal_fault(j, "no-jitter", "jitter", FL_STEP_APPLY, 3000, 3500, NULL) == 0 &&
	       fl_journal_fault(j, "no-jitter", "jitter", FL_STEP_VERIFY, 3500, 4000,
				"gauge reads 1") == 0,
	   "fault records");
	ok(fl_journal_reverted(j, 5000, "no-jitter", "run", NULL) == 0, "reverted record");
	ok(fl_journal_verdict(j, 6000, "breaker opens", true, 0.42, 2, "opened 420ms after") == 0 &&
	       fl_journal_verdict(j, 6100, "never", false, INFINITY, 0, NULL) == 0,
	   "verdict records");
	ok(fl_journal_sample(j, 6500, 2, 7, true, NULL) == 0, "a last sample");
	ok(fl_journal_end(j, 7000, 0, "completed") == 0, "run-end record");
	ok(fl_journal_close(j, &err) == 0, "closed");
	j = NULL;
	is_int(fl_journal_locked(path), 0, "unlocked once closed");

	/* ---- reading ---- */
	rc = fl_journal_read(path, NULL, count, &t, &st, &err);
	ok(rc == 0 && t.n == 13 && st.bad_lines == 0 && !st.truncated_tail,
	   "13 records read back, no bad line");
	ok(t.start == 1 && t.phase == 1 && t.sample == 4 && t.undo == 1 && t.fault == 2 &&
	       t.reverted == 1 && t.verdict == 2 && t.end == 1,
	   "1 run-start, 1 phase, 4 samples, 1 undo, 2 faults, 1 reverted, 2 verdicts, 1 end");
	{
		const cJSON *r0 = t.keep[0], *s1 = t.keep[2], *s2 = t.keep[3], *v = t.keep[9];

		is_str(gets(r0, "seed"), "18446744073709551615",
		       "the seed is exact (a decimal string)");
		is_str(gets(r0, "source"),
		       "{\n  \"title\": \"q\\\"uote\",\n  \"x\": \"\xef\xbf\xbd\"\n}\n",
		       "the experiment's bytes round-trip (the invalid byte as U+FFFD)");
		ok(num(r0, "pid") == getpid() && num(r0, "pid_start") > 0 &&
		       num(r0, "wall_ns") > 1.6e18 && strlen(gets(r0, "wall")) == 24,
		   "run-start has pid, its start time, and the wall clock once (%s)",
		   gets(r0, "wall"));
		ok(num(s1, "t") == 2000 && num(s1, "value") == 0.25 && cJSON_IsTrue(get(s1, "ok")),
		   "sample: t 2000, value 0.25, ok");
		ok(cJSON_IsNull(get(s2, "value")) && cJSON_IsFalse(get(s2, "ok")) &&
		       !strcmp(gets(s2, "why"), "connection refused to 127.0.0.1:1"),
		   "failed sample: value null (NaN), ok false, why kept");
		ok(num(t.keep[4], "value") == 1e-300, "1e-300 round-trips exactly");
		ok(num(v, "measured") == 0.42 && num(v, "bound") == 2 &&
		       cJSON_IsTrue(get(v, "pass")),
		   "verdict: measured 0.42, bound 2, pass");
	}
	tally_free(&t);
	rc = fl_journal_read(path, "sample", count, &t, &st, &err);
	ok(rc == 0 && t.n == 4 && t.sample == 4, "reading only samples: 4");
	tally_free(&t);

	/* ---- what a crash leaves ---- */
	snprintf(copy, sizeof(copy), "%s/crashed.jsonl", dir);
	{
		int in = open(path, O_RDONLY), out = open(copy, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		char buf[65536];
		ssize_t n = read(in, buf, sizeof(buf));
		/* Drop the run-end line, cut a record in the middle instead. */
		char *end = strstr(buf, "{\"t\":7000");

		if (in < 0 || out < 0 || n <= 0 || !end)
			bail_out("cannot copy the journal");
		if (write(out, buf, (size_t)(end - buf)) < 0 ||
		    write(out, "{\"t\":8000,\"type\":\"sam", 21) != 21)
			bail_out("cannot write the copy");
		close(in);
		close(out);
	}
	rc = fl_journal_read(copy, NULL, count, &t, &st, &err);
	ok(rc == 0 && t.n == 12 && st.truncated_tail && st.bad_lines == 0,
	   "a cut last line is ignored and reported as truncated (12 records)");
	tally_free(&t);
	rc = fl_journal_read(copy, "sample", count, &t, &st, &err);
	ok(rc == 0 && t.n == 4 && st.truncated_tail,
	   "also when reading one type (the cut line claims to be a sample)");
	tally_free(&t);
	rc = fl_journal_open_append(&k, copy, &err);
	ok(rc == 0, "open_append on the crashed journal");
	ok(fl_journal_reverted(k, 9000, "no-jitter", "recover", "jitter on again") == 0 &&
	       fl_journal_close(k, &err) == 0,
	   "append a reverted record");
	k = NULL;
	rc = fl_journal_read(copy, NULL, count, &t, &st, &err);
	ok(rc == 0 && t.n == 13 && st.bad_lines == 1 && !st.truncated_tail && t.reverted == 2,
	   "the cut record became one bad line of its own; the appended record reads back");
	tally_free(&t);
	append(copy, "not json at all\n[1,2]\n");
	rc = fl_journal_read(copy, NULL, count, &t, &st, &err);
	ok(rc == 0 && t.n == 13 && st.bad_lines == 3, "garbage lines are skipped and counted (3)");
	tally_free(&t);
	rc = fl_journal_read("/nonexistent/x.jsonl", NULL, count, &t, &st, &err);
	ok(rc == -ENOENT && strstr(err.msg, "/nonexistent/x.jsonl"), "a missing journal: %s",
	   err.msg);

	/* ---- export ---- */
	{
		char *doc = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&doc, &len);
		cJSON *o;

		rc = fl_journal_export(path, f, &err);
		fclose(f);
		o = cJSON_Parse(doc);
		ok(rc == 0 && o, "export is one JSON document (%zu bytes)", len);
		ok(o && cJSON_GetArraySize(get(o, "samples")) == 4 &&
		       cJSON_GetArraySize(get(o, "phases")) == 1 &&
		       cJSON_GetArraySize(get(o, "faults")) == 4 &&
		       cJSON_GetArraySize(get(o, "verdicts")) == 2,
		   "4 samples, 1 phase, 4 fault transitions (apply, verify, undo, reverted), 2 "
		   "verdicts");
		ok(o && !strcmp(gets(get(o, "run"), "seed"), "18446744073709551615") &&
		       !strcmp(gets(get(o, "end"), "reason"), "completed") &&
		       !get(cJSON_GetArrayItem(get(o, "samples"), 0), "type") &&
		       num(get(o, "journal"), "records") == 13,
		   "run, end and journal counts are there; records lose their type");
		cJSON_Delete(o);
		free(doc);
	}
	return exit_status();
}
