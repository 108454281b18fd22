/* The control block: another process's writes are seen, slots are claimed
 * once per name, bad files are refused, a process without it is normal. */
#include "tests/tap.h"
#include "tests/failalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "resilience/control.h"

static char dir[] = "/tmp/fl-control-XXXXXX";
static char path[256], bad[256];

static void cleanup(void)
{
	unlink(path);
	unlink(bad);
	rmdir(dir);
}

int main(void)
{
	struct rs_control *c = NULL, *d = NULL;
	struct rs_control_block *b;
	const _Atomic uint32_t *slot = NULL, *again = NULL;
	enum rs_control_force prev;
	struct rs_err err = { "" };
	struct failalloc fa;
	pid_t pid;
	int status, rc, leaks = 0, wrong = 0;
	char name[64];

	plan(24);
	if (!mkdtemp(dir))
		bail_out("cannot create a temporary directory: %s", strerror(errno));
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/control", dir);
	snprintf(bad, sizeof(bad), "%s/bad", dir);

	unsetenv(RS_CONTROL_ENV);
	rc = rs_control_from_env(&c, NULL, &err);
	ok(rc == 0 && c == NULL, "without RESILIENCE_CONTROL there is no block and no error");
	ok(rs_control_jitter_enabled(NULL) && !rs_control_retries_paused(NULL) &&
	       rs_control_force_read(NULL) == RS_FORCE_NONE,
	   "a NULL block reads as normal: jitter on, retries not paused, nothing forced");

	setenv(RS_CONTROL_ENV, path, 1);
	rc = rs_control_from_env(&c, NULL, &err);
	ok(rc == 0 && c != NULL, "RESILIENCE_CONTROL=%s creates and maps the block", path);
	b = rs_control_block(c);
	ok(b && b->magic == RS_CONTROL_MAGIC && b->version == RS_CONTROL_VERSION,
	   "a new block carries the magic and version 1");
	ok(rs_control_jitter_enabled(b) && !rs_control_retries_paused(b),
	   "a new block has jitter on and retries running");
	is_str(rs_control_path(c), path, "the handle remembers its path");

	/* Another process writes; this one must see it through its mapping. */
	pid = fork();
	if (pid == 0) {
		struct rs_control *w;

		if (rs_control_open(&w, path, 0, NULL, NULL) < 0)
			_exit(1);
		rs_control_set_jitter(w, false);
		rs_control_set_retries_paused(w, true);
		if (rs_control_force_breaker(w, "dependency", RS_FORCE_OPEN, NULL, NULL) < 0)
			_exit(2);
		rs_control_free(w);
		_exit(0);
	}
	waitpid(pid, &status, 0);
	is_int(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 0, "a child process wrote the block");
	ok(!rs_control_jitter_enabled(b), "the child's jitter-off is visible here");
	ok(rs_control_retries_paused(b), "the child's retry pause is visible here");
	rc = rs_control_breaker_slot(c, "dependency", &slot, &err);
	ok(rc == 0 && rs_control_force_read(slot) == RS_FORCE_OPEN,
	   "breaker 'dependency' reads forced open through its slot");
	ok(b->generation >= 3, "the generation counted the child's 3 writes (%llu)",
	   (unsigned long long)b->generation);

	ok(rs_control_set_jitter(c, true) == false, "set_jitter returns the previous value (off)");
	rc = rs_control_force_breaker(c, "dependency", RS_FORCE_NONE, &prev, &err);
	ok(rc == 0 && prev == RS_FORCE_OPEN && rs_control_force_read(slot) == RS_FORCE_NONE,
	   "un-forcing returns the previous force (open) and the slot reads none");
	rc = rs_control_breaker_slot(c, "dependency", &again, &err);
	ok(rc == 0 && again == slot, "the same name finds the same slot");

	for (int i = 1; i < RS_CONTROL_BREAKERS; i++) {
		snprintf(name, sizeof(name), "b%d", i);
		wrong += rs_control_breaker_slot(c, name, &again, &err) != 0;
	}
	is_int(wrong, 0, "31 more names fill the %d slots", RS_CONTROL_BREAKERS);
	rc = rs_control_breaker_slot(c, "one-too-many", &again, &err);
	ok(rc == -ENOSPC && strstr(err.msg, "one-too-many"),
	   "the 33rd name gets -ENOSPC naming it (%s)", err.msg);
	rc = rs_control_breaker_slot(c, "", &again, &err);
	ok(rc == -EINVAL && strstr(err.msg, "name"), "an empty name is -EINVAL (%s)", err.msg);
	rc = rs_control_force_breaker(c, "dependency", (enum rs_control_force)7, NULL, &err);
	ok(rc == -EINVAL && strstr(err.msg, "force"), "an unknown force is -EINVAL (%s)", err.msg);

	/* A second mapping of the same file sees the same state. */
	rc = rs_control_open(&d, path, 0, NULL, &err);
	ok(rc == 0 && rs_control_breaker_slot(d, "b5", &again, &err) == 0 && again,
	   "a second handle finds the names the first one claimed");
	rs_control_free(d);

	{
		int fd = open(bad, O_CREAT | O_WRONLY, 0600);

		if (fd < 0 || write(fd, "not a control block", 19) != 19)
			bail_out("cannot write %s", bad);
		close(fd);
	}
	rc = rs_control_open(&d, bad, 0, NULL, &err);
	ok(rc == -EINVAL && strstr(err.msg, bad) && strstr(err.msg, "19 bytes"),
	   "a file of the wrong size is refused, naming it (%s)", err.msg);
	rc = rs_control_open(&d, "/nonexistent/dir/control", RS_CONTROL_CREATE, NULL, &err);
	ok(rc == -ENOENT && strstr(err.msg, "/nonexistent/dir/control"),
	   "an unreachable path gives -ENOENT naming it (%s)", err.msg);
	rc = rs_control_open(&d, "", 0, NULL, &err);
	ok(rc == -EINVAL && strstr(err.msg, "path"), "an empty path is -EINVAL (%s)", err.msg);

	for (int n = 1;; n++) {
		failalloc_init(&fa, n);
		rc = rs_control_open(&d, path, 0, &fa.alloc, &err);
		if (rc == 0) {
			rs_control_free(d);
			leaks += fa.live != 0;
			diag("rs_control_open succeeds from allocation %d on", n);
			break;
		}
		wrong += rc != -ENOMEM;
		leaks += fa.live != 0;
	}
	is_int(wrong, 0, "every failed allocation in rs_control_open returns -ENOMEM");
	is_int(leaks, 0, "and leaks nothing");

	rs_control_free(c);
	rs_control_free(NULL);
	return exit_status();
}
