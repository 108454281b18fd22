/* The journal: writer, reader and export (see journal.h). */
#include "harness/journal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "harness/statedir.h"
#include "injectors/injector.h"
#include "resilience/clock.h"

#define WHY_MAX 400 /* bytes of a sample's "why" kept */

struct fl_journal {
	pthread_mutex_t mu;
	int fd;
	char path[FL_STATE_PATH_MAX];
	char run_id[FL_RUN_ID_MAX];
	struct rs_err err;
	char *buf; /* the record being formatted */
	size_t len, cap;
	bool oom;      /* the record being formatted did not fit: drop it */
	char *pending; /* FL_JOURNAL_BATCH bytes of sample lines */
	size_t npending;
};

/* ---- formatting ----------------------------------------------------------- */

static void jb_grow(struct fl_journal *j, size_t more)
{
	size_t want = j->len + more + 1, cap = j->cap ? j->cap : 4096;
	char *p;

	if (j->oom || want <= j->cap)
		return;
	while (cap < want)
		cap *= 2;
	p = realloc(j->buf, cap);
	if (!p) {
		j->oom = true;
		return;
	}
	j->buf = p;
	j->cap = cap;
}

static void jb_raw(struct fl_journal *j, const char *s, size_t n)
{
	jb_grow(j, n);
	if (j->oom)
		return;
	memcpy(j->buf + j->len, s, n);
	j->len += n;
}

static void jb_lit(struct fl_journal *j, const char *s)
{
	jb_raw(j, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	if (n < len)
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

/* A JSON string of n bytes of s: control characters escaped, invalid
 * UTF-8 bytes written as U+FFFD (the file stays valid JSON). */
static void jb_strn(struct fl_journal *j, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, run;

	jb_raw(j, "\"", 1);
	while (i < n && !j->oom) {
		unsigned char c = u[i];
		char esc[8];
		size_t l;

		/* Copy runs of plain bytes at once. */
		for (run = i;
		     run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\';
		     run++)
			;
		if (run > i) {
			jb_raw(j, s + i, run - i);
			i = run;
			continue;
		}
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			jb_raw(j, esc, 2);
			i++;
		} else if (c < 0x20) {
			if (c == '\n')
				jb_raw(j, "\\n", 2);
			else if (c == '\t')
				jb_raw(j, "\\t", 2);
			else if (c == '\r')
				jb_raw(j, "\\r", 2);
			else {
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				jb_raw(j, esc, 6);
			}
			i++;
		} else if ((l = utf8_len(u + i, n - i)) > 0) {
			jb_raw(j, s + i, l);
			i += l;
		} else {
			jb_raw(j, "\\ufffd", 6);
			i++;
		}
	}
	jb_raw(j, "\"", 1);
}

static void jb_str(struct fl_journal *j, const char *s)
{
	s = s ? s : "";
	jb_strn(j, s, strlen(s));
}

static void jb_u64(struct fl_journal *j, uint64_t v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)v);

	jb_raw(j, num, (size_t)n);
}

static void jb_i64(struct fl_journal *j, long long v)
{
	char num[24];
	int n = snprintf(num, sizeof(num), "%lld", v);

	jb_raw(j, num, (size_t)n);
}

/* The shortest %g that reads back as v; null when not finite. */
static void jb_num(struct fl_journal *j, double v)
{
	char num[40];
	int n = 0;

	if (!isfinite(v)) {
		jb_lit(j, "null");
		return;
	}
	for (int prec = 15; prec <= 17; prec++) {
		n = snprintf(num, sizeof(num), "%.*g", prec, v);
		if (strtod(num, NULL) == v)
			break;
	}
	jb_raw(j, num, (size_t)n);
}

/* ,"key": */
static void jb_key(struct fl_journal *j, const char *key)
{
	jb_raw(j, ",\"", 2);
	jb_lit(j, key);
	jb_raw(j, "\":", 2);
}

static void kstr(struct fl_journal *j, const char *key, const char *s)
{
	jb_key(j, key);
	jb_str(j, s);
}

static void ku64(struct fl_journal *j, const char *key, uint64_t v)
{
	jb_key(j, key);
	jb_u64(j, v);
}

static void knum(struct fl_journal *j, const char *key, double v)
{
	jb_key(j, key);
	jb_num(j, v);
}

static void kbool(struct fl_journal *j, const char *key, bool v)
{
	jb_key(j, key);
	jb_lit(j, v ? "true" : "false");
}

static void rec_begin(struct fl_journal *j, uint64_t t_ns, const char *type)
{
	j->len = 0;
	j->oom = false;
	jb_lit(j, "{\"t\":");
	jb_u64(j, t_ns ? t_ns : rs_now_ns());
	jb_lit(j, ",\"type\":\"");
	jb_lit(j, type);
	jb_raw(j, "\"", 1);
}

/* ---- writing -------------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int fail(struct fl_journal *j, int rc, const char *what)
{
	rs__err_set(&j->err, "journal '%s': cannot %s: %s", j->path, what, strerror(-rc));
	return rc;
}

/* Caller holds mu. */
static int flush_pending(struct fl_journal *j)
{
	int rc;

	if (!j->npending)
		return 0;
	rc = write_all(j->fd, j->pending, j->npending);
	j->npending = 0;
	return rc < 0 ? fail(j, rc, "write samples") : 0;
}

/* Ends the record in buf and writes it (after the pending samples); fsyncs
 * when sync.  Takes and releases mu around the write only: the caller
 * formats under mu too (see the writers). */
static int rec_end(struct fl_journal *j, bool sync)
{
	int rc;

	jb_raw(j, "}\n", 2);
	if (j->oom)
		return fail(j, -ENOMEM, "format a record");
	if ((rc = flush_pending(j)) < 0)
		return rc;
	if ((rc = write_all(j->fd, j->buf, j->len)) < 0)
		return fail(j, rc, "write");
	if (sync && fsync(j->fd) < 0)
		return fail(j, -errno, "fsync");
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int journal_alloc(struct fl_journal **out)
{
	struct fl_journal *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->fd = -1;
	j->pending = malloc(FL_JOURNAL_BATCH);
	if (!j->pending || pthread_mutex_init(&j->mu, NULL) != 0) {
		free(j->pending);
		free(j);
		return -ENOMEM;
	}
	*out = j;
	return 0;
}

static void journal_free(struct fl_journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	pthread_mutex_destroy(&j->mu);
	free(j->pending);
	free(j->buf);
	free(j);
}

static void wall_iso(char *buf, size_t cap, uint64_t *wall_ns)
{
	struct timespec ts;
	struct tm tm;
	char when[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	*wall_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, cap, "%s.%03ldZ", when, ts.tv_nsec / 1000000);
}

int fl_journal_create(struct fl_journal **out, const char *dir, const struct fl_journal_run *run,
		      struct rs_err *err)
{
	struct fl_journal *j = NULL;
	char host[256] = "", wall[48], seed[24];
	uint64_t wall_ns, start = 0;
	int rc;

	*out = NULL;
	if ((rc = fl_statedir_ensure(dir, err)) < 0)
		return rc;
	if ((rc = journal_alloc(&j)) < 0)
		return rs__enomem(err, "journal");
	if (run->run_id) {
		if (strlen(run->run_id) >= sizeof(j->run_id) || !run->run_id[0] ||
		    strchr(run->run_id, '/')) {
			rc = rs__einval(err, "journal: bad run id '%.80s'", run->run_id);
			goto fail;
		}
		snprintf(j->run_id, sizeof(j->run_id), "%s", run->run_id);
	} else if ((rc = fl_run_id_new(j->run_id, sizeof(j->run_id))) < 0) {
		goto fail;
	}
	if ((rc = fl_statedir_journal_path(j->path, sizeof(j->path), dir, j->run_id)) < 0) {
		rs__err_set(err, "journal: path too long in '%.200s'", dir);
		goto fail;
	}
	j->fd = open(j->path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		rc = -errno;
		rs__err_set(err, "cannot create journal '%s': %s", j->path, strerror(-rc));
		goto fail;
	}
	if (flock(j->fd, LOCK_EX | LOCK_NB) < 0) {
		rc = -errno;
		rs__err_set(err, "cannot lock journal '%s': %s", j->path, strerror(-rc));
		goto fail_unlink;
	}

	gethostname(host, sizeof(host) - 1);
	wall_iso(wall, sizeof(wall), &wall_ns);
	snprintf(seed, sizeof(seed), "%llu", (unsigned long long)run->seed);
	fl_proc_start_time(getpid(), &start);
	pthread_mutex_lock(&j->mu);
	rec_begin(j, 0, "run-start");
	kstr(j, "run", j->run_id);
	kstr(j, "wall", wall);
	ku64(j, "wall_ns", wall_ns);
	kstr(j, "seed", seed);
	kstr(j, "experiment", run->experiment);
	jb_key(j, "source");
	if (run->source)
		jb_strn(j, run->source, run->source_len);
	else
		jb_lit(j, "null");
	kstr(j, "host", host);
	kstr(j, "version", run->version);
	jb_key(j, "pid");
	jb_i64(j, (long long)getpid());
	ku64(j, "pid_start", start);
	rc = rec_end(j, true);
	pthread_mutex_unlock(&j->mu);
	if (rc < 0) {
		rs__err_set(err, "%s", j->err.msg);
		goto fail_unlink;
	}
	if ((rc = fsync_dir(dir)) < 0) {
		rs__err_set(err, "journal: cannot fsync directory '%s': %s", dir, strerror(-rc));
		goto fail_unlink;
	}
	*out = j;
	return 0;
fail_unlink:
	unlink(j->path);
fail:
	journal_free(j);
	return rc;
}

int fl_journal_open_append(struct fl_journal **out, const char *path, struct rs_err *err)
{
	struct fl_journal *j = NULL;
	struct stat st;
	char last;
	int rc;

	*out = NULL;
	if ((rc = journal_alloc(&j)) < 0)
		return rs__enomem(err, "journal");
	if (strlen(path) >= sizeof(j->path)) {
		rc = rs__einval(err, "journal: path too long: '%.200s'", path);
		goto fail;
	}
	snprintf(j->path, sizeof(j->path), "%s", path);
	j->fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
	if (j->fd < 0) {
		rc = -errno;
		rs__err_set(err, "cannot open journal '%s': %s", path, strerror(-rc));
		goto fail;
	}
	if (flock(j->fd, LOCK_EX | LOCK_NB) < 0) {
		rc = -errno;
		if (rc == -EWOULDBLOCK)
			rs__err_set(err, "journal '%s' is in use by a running faultline", path);
		else
			rs__err_set(err, "cannot lock journal '%s': %s", path, strerror(-rc));
		goto fail;
	}
	if (fstat(j->fd, &st) < 0) {
		rc = -errno;
		rs__err_set(err, "cannot stat journal '%s': %s", path, strerror(-rc));
		goto fail;
	}
	if (st.st_size > 0) {
		ssize_t r = pread(j->fd, &last, 1, st.st_size - 1);

		if (r == 1 && last != '\n' && (rc = write_all(j->fd, "\n", 1)) < 0) {
			rs__err_set(err, "cannot write journal '%s': %s", path, strerror(-rc));
			goto fail;
		}
	}
	*out = j;
	return 0;
fail:
	journal_free(j);
	return rc;
}

int fl_journal_locked(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_SH | LOCK_NB) < 0)
		rc = errno == EWOULDBLOCK ? 1 : -errno;
	close(fd); /* drops our shared lock, if taken */
	return rc;
}

const char *fl_journal_path(const struct fl_journal *j)
{
	return j->path;
}

const char *fl_journal_run_id(const struct fl_journal *j)
{
	return j->run_id;
}

const char *fl_journal_error(const struct fl_journal *j)
{
	return j->err.msg;
}

int fl_journal_phase(struct fl_journal *j, uint64_t t_ns, const char *phase)
{
	int rc;

	pthread_mutex_lock(&j->mu);
	rec_begin(j, t_ns, "phase");
	kstr(j, "phase", phase);
	rc = rec_end(j, false);
	pthread_mutex_unlock(&j->mu);
	return rc;
}

int fl_journal_sample(struct fl_journal *j, uint64_t t_ns, size_t probe, double value, bool ok,
		      const char *why)
{
	int rc = 0;

	pthread_mutex_lock(&j->mu);
	rec_begin(j, t_ns, "sample");
	ku64(j, "probe", probe);
	knum(j, "value", value);
	kbool(j, "ok", ok);
	if (!ok || why) {
		size_t n = why ? strlen(why) : 0;

		jb_key(j, "why");
		jb_strn(j, why ? why : "", n < WHY_MAX ? n : WHY_MAX);
	}
	jb_raw(j, "}\n", 2);
	if (j->oom) {
		rc = fail(j, -ENOMEM, "format a sample");
	} else if (j->len > FL_JOURNAL_BATCH) {
		/* Larger than a batch (cannot happen with WHY_MAX; kept safe). */
		if ((rc = flush_pending(j)) == 0 && (rc = write_all(j->fd, j->buf, j->len)) < 0)
			rc = fail(j, rc, "write");
	} else {
		if (j->npending + j->len > FL_JOURNAL_BATCH)
			rc = flush_pending(j);
		if (rc == 0) {
			memcpy(j->pending + j->npending, j->buf, j->len);
			j->npending += j->len;
		}
	}
	pthread_mutex_unlock(&j->mu);
	return rc;
}

const char *fl_fault_step_name(enum fl_fault_step s)
{
	switch (s) {
	case FL_STEP_APPLY:
		return "apply";
	case FL_STEP_VERIFY:
		return "verify";
	case FL_STEP_REVERT:
		return "revert";
	case FL_STEP_ERROR:
		break;
	}
	return "error";
}

int fl_journal_fault(struct fl_journal *j, const char *action, const char *family,
		     enum fl_fault_step step, uint64_t start_ns, uint64_t end_ns, const char *error)
{
	int rc;

	pthread_mutex_lock(&j->mu);
	rec_begin(j, end_ns, "fault");
	kstr(j, "action", action);
	kstr(j, "family", family);
	kstr(j, "step", fl_fault_step_name(step));
	ku64(j, "start", start_ns);
	ku64(j, "end", end_ns);
	if (error)
		kstr(j, "error", error);
	rc = rec_end(j, false);
	pthread_mutex_unlock(&j->mu);
	return rc;
}

int fl_journal_undo(struct fl_journal *j, uint64_t t_ns, const char *action, const char *undo_json)
{
	size_t n = undo_json ? strlen(undo_json) : 0;
	int rc;

	/* One object on one line: the journal stays one record a line.  (The
	 * reader skips a record whose object is malformed; recover then says
	 * so.) */
	if (n < 2 || undo_json[0] != '{' || undo_json[n - 1] != '}' || memchr(undo_json, '\n', n)) {
		rs__err_set(&j->err,
			    "journal '%s': the undo record of '%s' is not one JSON object "
			    "on one line",
			    j->path, action ? action : "");
		return -EINVAL;
	}
	pthread_mutex_lock(&j->mu);
	rec_begin(j, t_ns, "undo");
	kstr(j, "action", action);
	kstr(j, "run", j->run_id);
	jb_key(j, "undo");
	jb_raw(j, undo_json, n);
	rc = rec_end(j, true);
	pthread_mutex_unlock(&j->mu);
	return rc;
}

int fl_journal_reverted(struct fl_journal *j, uint64_t t_ns, const char *action, const char *by,
			const char *detail)
{
	int rc;

	pthread_mutex_lock(&j->mu);
	rec_begin(j, t_ns, "reverted");
	kstr(j, "action", action);
	kstr(j, "by", by ? by : "run");
	if (detail)
		kstr(j, "detail", detail);
	rc = rec_end(j, true);
	pthread_mutex_unlock(&j->mu);
	return rc;
}

int fl_journal_recover_failed(struct fl_journal *j, uint64_t t_ns, const char *action,
			      const char *error)
{
	int rc;

	pthread_mutex_lock(&j->mu);
	rec_begin(j, t_ns, "recover");
	kstr(j, "action", action);
	kstr(j, "error", error);
	rc = rec_end(j, true);
	pthread_mutex_unlock(&j->mu);
	return rc;
}

int fl_journal_verdict(struct fl_journal *j, uint64_t t_ns, const char *expectation, bool pass,
		       double measured, double bound, const char *detail)
{
	int rc;

	pthread_mutex_lock(&j->mu);
	rec_begin(j, t_ns, "verdict");
	kstr(j, "expectation", expectation);
	kbool(j, "pass", pass);
	knum(j, "measured", measured);
	knum(j, "bound", bound);
	if (detail)
		kstr(j, "detail", detail);
	rc = rec_end(j, false);
	pthread_mutex_unlock(&j->mu);
	return rc;
}

int fl_journal_end(struct fl_journal *j, uint64_t t_ns, int code, const char *reason)
{
	int rc;

	pthread_mutex_lock(&j->mu);
	rec_begin(j, t_ns, "run-end");
	jb_key(j, "code");
	jb_i64(j, code);
	kstr(j, "reason", reason);
	rc = rec_end(j, true);
	pthread_mutex_unlock(&j->mu);
	return rc;
}

int fl_journal_flush(struct fl_journal *j)
{
	int rc;

	pthread_mutex_lock(&j->mu);
	rc = flush_pending(j);
	pthread_mutex_unlock(&j->mu);
	return rc;
}

int fl_journal_close(struct fl_journal *j, struct rs_err *err)
{
	int rc;

	if (!j)
		return 0;
	pthread_mutex_lock(&j->mu);
	rc = flush_pending(j);
	if (rc == 0 && fsync(j->fd) < 0)
		rc = fail(j, -errno, "fsync");
	if (close(j->fd) < 0 && rc == 0)
		rc = fail(j, -errno, "close");
	j->fd = -1;
	pthread_mutex_unlock(&j->mu);
	if (rc < 0)
		rs__err_set(err, "%s", j->err.msg);
	journal_free(j);
	return rc;
}

/* ---- reading -------------------------------------------------------------- */

/* The type of a line as the writer lays it out ({"t":N,"type":"X"...}):
 * true with *type and *len set, or false when the line is laid out otherwise
 * (then it must be parsed to know). */
static bool quick_type(const char *line, size_t n, const char **type, size_t *len)
{
	size_t i = 5;
	const char *e;

	if (n < 16 || memcmp(line, "{\"t\":", 5) != 0)
		return false;
	while (i < n && line[i] >= '0' && line[i] <= '9')
		i++;
	if (n - i < 10 || memcmp(line + i, ",\"type\":\"", 9) != 0)
		return false;
	i += 9;
	e = memchr(line + i, '"', n - i);
	if (!e)
		return false;
	*type = line + i;
	*len = (size_t)(e - (line + i));
	return true;
}

int fl_journal_read(const char *path, const char *only_type, fl_jrec_fn fn, void *ctx,
		    struct fl_jread_stats *st, struct rs_err *err)
{
	struct fl_jread_stats local;
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t n;
	FILE *f;
	int rc = 0;

	st = st ? st : &local;
	memset(st, 0, sizeof(*st));
	f = fopen(path, "re");
	if (!f) {
		rc = -errno;
		rs__err_set(err, "cannot read journal '%s': %s", path, strerror(-rc));
		return rc;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		bool complete = line[n - 1] == '\n';
		const char *qt;
		size_t qlen;
		cJSON *obj, *t, *type;
		struct fl_jrec rec;

		lineno++;
		if (complete)
			line[--n] = '\0';
		if (n == 0)
			continue;
		/* A cut line is always parsed, so that it is counted. */
		if (only_type && complete && quick_type(line, (size_t)n, &qt, &qlen) &&
		    (qlen != strlen(only_type) || memcmp(qt, only_type, qlen) != 0))
			continue;
		/* The length includes the NUL: cJSON checks for it after the value. */
		obj = cJSON_ParseWithLengthOpts(line, (size_t)n + 1, NULL, true);
		if (!obj || !cJSON_IsObject(obj)) {
			cJSON_Delete(obj);
			if (complete)
				st->bad_lines++;
			else
				st->truncated_tail = true;
			continue;
		}
		type = cJSON_GetObjectItemCaseSensitive(obj, "type");
		t = cJSON_GetObjectItemCaseSensitive(obj, "t");
		rec.type = cJSON_IsString(type) ? type->valuestring : "";
		if (only_type && strcmp(rec.type, only_type) != 0) {
			cJSON_Delete(obj);
			continue;
		}
		rec.t_ns = cJSON_IsNumber(t) && t->valuedouble > 0 ? (uint64_t)t->valuedouble : 0;
		rec.json = obj;
		rec.line = lineno;
		st->records++;
		rc = fn(ctx, &rec);
		cJSON_Delete(obj);
		if (rc)
			break;
	}
	if (rc == 0 && ferror(f)) {
		rc = -EIO;
		rs__err_set(err, "cannot read journal '%s': i/o error", path);
	}
	free(line);
	fclose(f);
	return rc;
}

/* ---- export --------------------------------------------------------------- */

struct export
{
	FILE *out;
	size_t n;	/* items written in the current section */
	bool drop_type; /* remove "type" from each record */
	char *last;	/* the last run-end, printed (for "end") */
};

static int export_item(void *ctx, const struct fl_jrec *rec)
{
	struct export *x = ctx;
	char *s;

	if (x->drop_type)
		cJSON_DeleteItemFromObjectCaseSensitive(rec->json, "type");
	s = cJSON_PrintUnformatted(rec->json);
	if (!s)
		return -ENOMEM;
	fprintf(x->out, "%s%s", x->n++ ? ",\n" : "\n", s);
	cJSON_free(s);
	return 0;
}

static int export_first(void *ctx, const struct fl_jrec *rec)
{
	int rc = export_item(ctx, rec);

	return rc ? rc : 1; /* one is enough */
}

/* Reads every record (so the counts describe the file) and keeps the last
 * run-end. */
static int export_last(void *ctx, const struct fl_jrec *rec)
{
	struct export *x = ctx;
	char *s;

	if (strcmp(rec->type, "run-end") != 0)
		return 0;

	cJSON_DeleteItemFromObjectCaseSensitive(rec->json, "type");
	s = cJSON_PrintUnformatted(rec->json);
	if (!s)
		return -ENOMEM;
	cJSON_free(x->last);
	x->last = s;
	return 0;
}

static int export_fault(void *ctx, const struct fl_jrec *rec)
{
	if (strcmp(rec->type, "fault") && strcmp(rec->type, "undo") &&
	    strcmp(rec->type, "reverted") && strcmp(rec->type, "recover"))
		return 0;
	return export_item(ctx, rec);
}

int fl_journal_export(const char *path, FILE *out, struct rs_err *err)
{
	static const struct {
		const char *key, *type;
	} arrays[] = {
		{ "phases", "phase" },
		{ "samples", "sample" },
		{ "faults", NULL },
		{ "verdicts", "verdict" },
	};
	struct export x = { .out = out };
	struct fl_jread_stats st;
	int rc;

	fputs("{\"run\":", out);
	x.drop_type = true;
	rc = fl_journal_read(path, "run-start", export_first, &x, &st, err);
	if (rc < 0)
		goto fail;
	if (x.n == 0)
		fputs("null", out);
	for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
		fprintf(out, ",\n\"%s\":[", arrays[i].key);
		x.n = 0;
		x.drop_type = arrays[i].type != NULL;
		rc = fl_journal_read(path, arrays[i].type,
				     arrays[i].type ? export_item : export_fault, &x, &st, err);
		if (rc < 0)
			goto fail;
		fputs(x.n ? "\n]" : "]", out);
	}
	rc = fl_journal_read(path, NULL, export_last, &x, &st, err);
	if (rc < 0)
		goto fail;
	fprintf(out, ",\n\"end\":%s", x.last ? x.last : "null");
	cJSON_free(x.last);
	x.last = NULL;
	fputs(",\n\"journal\":{\"path\":", out);
	{
		cJSON *p = cJSON_CreateString(path);
		char *s = p ? cJSON_PrintUnformatted(p) : NULL;

		fputs(s ? s : "null", out);
		cJSON_free(s);
		cJSON_Delete(p);
	}
	fprintf(out, ",\"records\":%zu,\"bad_lines\":%zu,\"truncated_tail\":%s}}\n", st.records,
		st.bad_lines, st.truncated_tail ? "true" : "false");
	if (fflush(out) != 0 || ferror(out)) {
		rs__err_set(err, "journal export of '%s': cannot write the output", path);
		return -EIO;
	}
	return 0;
fail:
	cJSON_free(x.last);
	return rc;
}
