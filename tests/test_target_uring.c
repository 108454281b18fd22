/* io_uring file I/O on a libuv loop: whole-file reads byte for byte, write
 * + fsync read back, errors through the callback, 1000 concurrent reads on
 * a ring of 8 entries, the size limit, and close with work in flight. */
#include "tests/tap.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "target/uring.h"

static char dir[] = "/tmp/fl-uring-XXXXXX";
static char small_path[256], big_path[256], out_path[256], missing_path[256];

#define NWRITES 50

static void cleanup(void)
{
	char p[300];

	for (int i = 0; i < NWRITES; i++) {
		snprintf(p, sizeof(p), "%s/w%d", dir, i);
		unlink(p);
	}
	unlink(small_path);
	unlink(big_path);
	unlink(out_path);
	rmdir(dir);
}

/* The watchdog: remove the files even when the test hangs. */
static void on_alarm(int sig)
{
	static const char msg[] = "Bail out! test_target_uring: timed out\n";

	(void)sig;
	(void)!write(1, msg, sizeof(msg) - 1);
	cleanup();
	_exit(1);
}

/* One read's outcome. */
struct got {
	int done;
	int res;
	char *data; /* copy of the callback's bytes */
	size_t len;
	int in_call; /* set while the starting call runs: the callback must not see it */
	int sync;    /* the callback ran inside the starting call */
};

static void on_read(int res, const char *data, size_t len, void *ctx)
{
	struct got *g = ctx;

	g->done++;
	g->res = res;
	g->sync |= g->in_call;
	g->len = len;
	free(g->data);
	g->data = NULL;
	if (res >= 0) {
		g->data = malloc(len + 1);
		memcpy(g->data, data, len + 1);
	}
}

static void on_write(int res, void *ctx)
{
	struct got *g = ctx;

	g->done++;
	g->res = res;
	g->sync |= g->in_call;
}

/* Runs the loop until *flag reaches want or 10 s pass (the alarm is the
 * last resort). */
static void run_until(uv_loop_t *loop, int *flag, int want)
{
	uint64_t end = uv_hrtime() + 10ull * 1000000000ull;

	while (*flag < want && uv_hrtime() < end)
		uv_run(loop, UV_RUN_ONCE);
}

static int write_plain(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	int ok_ = fd >= 0 && write(fd, data, len) == (ssize_t)len;

	if (fd >= 0)
		close(fd);
	return ok_;
}

/* 1000 reads sharing one counter. */
struct many {
	int done;
	int right;
	size_t want_len;
	const char *want;
};

static void on_many(int res, const char *data, size_t len, void *ctx)
{
	struct many *m = ctx;

	m->done++;
	if (res == (int)m->want_len && len == m->want_len && memcmp(data, m->want, len) == 0)
		m->right++;
}

static int closed;
static void on_closed(void *ctx)
{
	(void)ctx;
	closed++;
}

int main(void)
{
	static const char small[] = "item 42: a widget\n";
	struct fl_uring *r = NULL;
	struct rs_err err = { "" };
	struct got g = { 0 }, w = { 0 };
	struct many m = { 0 };
	uv_loop_t loop;
	char *big;
	size_t big_len = 200 * 1024 + 17; /* > the 64 KiB first read: the buffer grows */
	int rc, accepted = 0;
	struct got c[20];

	signal(SIGALRM, on_alarm);
	alarm(60);
	if (!mkdtemp(dir))
		bail_out("cannot create a temporary directory: %s", strerror(errno));
	atexit(cleanup);
	snprintf(small_path, sizeof(small_path), "%s/small", dir);
	snprintf(big_path, sizeof(big_path), "%s/big", dir);
	snprintf(out_path, sizeof(out_path), "%s/out", dir);
	snprintf(missing_path, sizeof(missing_path), "%s/missing", dir);
	big = malloc(big_len);
	for (size_t i = 0; i < big_len; i++)
		big[i] = (char)('a' + (i * 7 + i / 251) % 26);
	if (!write_plain(small_path, small, sizeof(small) - 1) ||
	    !write_plain(big_path, big, big_len))
		bail_out("cannot write the test files in %s", dir);

	uv_loop_init(&loop);
	rc = fl_uring_new(&r, &loop, &(struct fl_uring_opts){ .entries = 8 }, &err);
	if (rc < 0) {
		free(big);
		uv_loop_close(&loop);
		diag("%s", err.msg);
		if (strstr(err.msg, "io_uring is unavailable"))
			skip_all(err.msg);
		bail_out("fl_uring_new failed: %s", err.msg);
	}
	plan(22);

	/* A small file, exactly. */
	g.in_call = 1;
	rc = fl_uring_read_file(r, small_path, 0, on_read, &g);
	g.in_call = 0;
	run_until(&loop, &g.done, 1);
	ok(rc == 0 && g.done == 1 && g.res == (int)sizeof(small) - 1 &&
	       g.len == sizeof(small) - 1 && memcmp(g.data, small, g.len) == 0,
	   "a %zu-byte file reads back exactly (res %d)", sizeof(small) - 1, g.res);
	ok(!g.sync, "the callback runs from the loop, not inside fl_uring_read_file");
	ok(g.data && g.data[g.len] == '\0', "the data is NUL-terminated after len bytes");

	/* A file larger than the first read buffer. */
	g.done = 0;
	rc = fl_uring_read_file(r, big_path, 0, on_read, &g);
	run_until(&loop, &g.done, 1);
	ok(rc == 0 && g.res == (int)big_len && g.len == big_len &&
	       memcmp(g.data, big, big_len) == 0,
	   "a %zu-byte file (several reads) reads back byte for byte", big_len);

	/* A missing file: -ENOENT through the callback. */
	g.done = 0;
	g.in_call = 1;
	rc = fl_uring_read_file(r, missing_path, 0, on_read, &g);
	g.in_call = 0;
	run_until(&loop, &g.done, 1);
	ok(rc == 0 && g.done == 1 && g.res == -ENOENT && g.data == NULL,
	   "a missing file reports -ENOENT through the callback (res %d)", g.res);
	ok(!g.sync, "even the error comes from the loop");

	/* Completions that are all waiting when the loop wakes are all
	 * delivered by that one wake-up (the drain takes every CQE). */
	{
		struct got e[8];
		unsigned long long w0;
		int done = 0;

		memset(e, 0, sizeof(e));
		for (int i = 0; i < 8; i++)
			rc |= fl_uring_read_file(r, missing_path, 0, on_read, &e[i]);
		usleep(100 * 1000); /* let all 8 openat completions land */
		w0 = fl_uring_stats(r)->wakeups;
		uv_run(&loop, UV_RUN_ONCE);
		for (int i = 0; i < 8; i++)
			done += e[i].done == 1 && e[i].res == -ENOENT;
		ok(rc == 0 && done == 8 && fl_uring_stats(r)->wakeups == w0 + 1,
		   "8 completions waiting: one wake-up delivers all 8 (%d delivered, %llu "
		   "wake-ups)",
		   done, fl_uring_stats(r)->wakeups - w0);
		/* Whatever is left, if the above failed: e must not outlive them. */
		for (uint64_t end = uv_hrtime() + 2000000000ull; uv_hrtime() < end;) {
			int all = 0;

			for (int i = 0; i < 8; i++)
				all += e[i].done;
			if (all == 8)
				break;
			uv_run(&loop, UV_RUN_NOWAIT);
		}
	}

	/* The size limit. */
	g.done = 0;
	rc = fl_uring_read_file(r, big_path, 1000, on_read, &g);
	run_until(&loop, &g.done, 1);
	ok(rc == 0 && g.res == -EFBIG, "a %zu-byte file over max_bytes 1000 fails with -EFBIG",
	   big_len);
	is_int(fl_uring_read_file(r, small_path, FL_URING_DEFAULT_MAX_READ + 1, on_read, &g),
	       -EINVAL, "max_bytes over the hard limit is refused up front");

	/* Write + fsync, then read back through the ring. */
	w.in_call = 1;
	rc = fl_uring_write_file(r, out_path, big, big_len, on_write, &w);
	w.in_call = 0;
	run_until(&loop, &w.done, 1);
	ok(rc == 0 && w.done == 1 && w.res == 0 && !w.sync,
	   "write + fsync of %zu bytes completes with 0 from the loop (res %d)", big_len, w.res);
	g.done = 0;
	rc = fl_uring_read_file(r, out_path, 0, on_read, &g);
	run_until(&loop, &g.done, 1);
	ok(rc == 0 && g.len == big_len && memcmp(g.data, big, big_len) == 0,
	   "the written file reads back byte for byte");
	w.done = 0;
	rc = fl_uring_write_file(r, out_path, "short", 5, on_write, &w);
	run_until(&loop, &w.done, 1);
	g.done = 0;
	rc |= fl_uring_read_file(r, out_path, 0, on_read, &g);
	run_until(&loop, &g.done, 1);
	ok(rc == 0 && w.res == 0 && g.len == 5 && memcmp(g.data, "short", 5) == 0,
	   "a second write truncates: the file now holds exactly 'short'");
	w.done = 0;
	rc = fl_uring_write_file(r, "/nonexistent-dir-fl/x", "x", 1, on_write, &w);
	run_until(&loop, &w.done, 1);
	ok(rc == 0 && w.res == -ENOENT, "a write into a missing directory reports -ENOENT (%d)",
	   w.res);

	/* 1000 concurrent reads on a ring of 8: all admitted, all complete. */
	m.want = big;
	m.want_len = big_len;
	for (int i = 0; i < 1000; i++)
		accepted += fl_uring_read_file(r, big_path, 0, on_many, &m) == 0;
	is_int(accepted, 1000, "1000 reads accepted at once on an 8-entry ring");
	ok(fl_uring_stats(r)->in_progress <= 8 && fl_uring_stats(r)->waiting >= 992,
	   "at most 8 in progress, the rest wait in the FIFO (%u in progress, %u waiting)",
	   fl_uring_stats(r)->in_progress, fl_uring_stats(r)->waiting);
	run_until(&loop, &m.done, 1000);
	is_int(m.done, 1000, "all 1000 callbacks ran");
	is_int(m.right, 1000, "all 1000 read the full %zu bytes correctly", big_len);
	diag("wake-ups %llu, cqes %llu, queued %llu, sq-full submits %llu",
	     fl_uring_stats(r)->wakeups, fl_uring_stats(r)->cqes, fl_uring_stats(r)->queued,
	     fl_uring_stats(r)->sq_full);
	ok(fl_uring_stats(r)->wakeups < fl_uring_stats(r)->cqes,
	   "wake-ups drain many completions each (%llu wake-ups for %llu cqes)",
	   fl_uring_stats(r)->wakeups, fl_uring_stats(r)->cqes);

	/* 50 concurrent write + fsync pairs: 100 linked requests through an
	 * 8-entry submission queue. */
	{
		struct got ws[NWRITES];
		char p[300];
		int good = 0, done = 0;

		memset(ws, 0, sizeof(ws));
		for (int i = 0; i < NWRITES; i++) {
			snprintf(p, sizeof(p), "%s/w%d", dir, i);
			rc |= fl_uring_write_file(r, p, big + i, 1000 + i, on_write, &ws[i]);
		}
		for (uint64_t end = uv_hrtime() + 10000000000ull;
		     done < NWRITES && uv_hrtime() < end;) {
			uv_run(&loop, UV_RUN_ONCE);
			done = 0;
			for (int i = 0; i < NWRITES; i++)
				done += ws[i].done;
		}
		for (int i = 0; i < NWRITES; i++) {
			struct stat sb;

			snprintf(p, sizeof(p), "%s/w%d", dir, i);
			good += ws[i].done == 1 && ws[i].res == 0 && stat(p, &sb) == 0 &&
				sb.st_size == 1000 + i;
		}
		ok(rc == 0 && good == NWRITES,
		   "%d concurrent writes + fsyncs all complete with the right sizes (%d good)",
		   NWRITES, good);
		diag("submission queue full %llu times during the writes",
		     fl_uring_stats(r)->sq_full);
	}

	/* Close with 20 reads in flight or waiting: every callback runs once,
	 * with a result or -ECANCELED, and nothing leaks (ASan). */
	memset(c, 0, sizeof(c));
	for (int i = 0; i < 20; i++)
		rc |= fl_uring_read_file(r, big_path, 0, on_read, &c[i]);
	fl_uring_close(r, on_closed, NULL);
	{
		int once = 0, canceled = 0;

		for (int i = 0; i < 20; i++) {
			once += c[i].done == 1;
			canceled += c[i].res == -ECANCELED;
			free(c[i].data);
		}
		ok(rc == 0 && once == 20 && canceled >= 12,
		   "close with 20 reads pending: each callback ran once, %d with -ECANCELED",
		   canceled);
	}
	run_until(&loop, &closed, 1);
	is_int(closed, 1, "the close callback ran once the poll handle closed");
	ok(uv_loop_close(&loop) == 0, "no handle left on the loop");

	free(g.data);
	free(big);
	return exit_status();
}
