/* Helpers for tests that run faultline-target as a child process,
 * header-only.
 *
 *   targetproc_watchdog(60);                   (alarm: kill children, clean up)
 *   if (!targetproc_binary()) skip_all("...");
 *   char dir[64];
 *   targetproc_tmpdir(dir, sizeof(dir));        (removed at exit, also on timeout)
 *   targetproc_run((const char *[]){ "--init-data", dir, "--items", "100", NULL },
 *                  NULL, 5000, &st, NULL, 0, NULL, 0);
 *   struct targetproc dep;
 *   targetproc_start(&dep, (const char *[]){ "--role", "dependency", NULL }, NULL,
 *                    5000, why, sizeof(why));  (waits for "listening ...")
 *   struct targetproc_resp r;
 *   targetproc_get(dep.http_port, "/stock/7", 2000, &r);  r.status, r.body
 *   targetproc_resp_free(&r);
 *   targetproc_stop(&dep, 5000);               (SIGTERM, reap: its exit status)
 *
 * Children:
 *  - the program is $FAULTLINE_BUILD/faultline-target (targetproc_binary
 *    returns NULL when the variable is unset or the file is missing: skip);
 *  - each child gets PR_SET_PDEATHSIG(SIGKILL), so it dies with the test
 *    even when the test itself is killed;
 *  - stdout is a pipe read until the "listening http=H:P admin=H:P" line
 *    (then closed); stderr is inherited, so the child's messages show up in
 *    prove's output;
 *  - every started child is registered; targetproc_cleanup (run at exit,
 *    installed by targetproc_watchdog) SIGKILLs and reaps those still
 *    registered, by pid.  targetproc_stop/_kill reap and unregister.
 *
 * HTTP: targetproc_http opens one connection per request to host:port,
 * sends the request with "Connection: close" and reads the answer until the
 * server closes, all within timeout_ms (connect included); it parses the
 * status line, keeps the header block and the body (malloc'd, NUL-
 * terminated).  Thread-safe (no shared state), so tests may call it from
 * many client threads at once.
 *
 * The watchdog's SIGALRM handler uses async-signal-safe calls only: kill,
 * waitpid, fork + execve of /bin/rm for the temporary directories, write,
 * _exit(255) (TAP reads that as a failure).
 */
#ifndef FAULTLINE_TARGETPROC_H
#define FAULTLINE_TARGETPROC_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TARGETPROC_MAX_CHILDREN 16
#define TARGETPROC_MAX_DIRS	4
#define TARGETPROC_PATH_MAX	256

struct targetproc {
	pid_t pid;	/* 0 once reaped */
	int http_port;	/* from the listening line */
	int admin_port; /* from the listening line */
	char line[256]; /* the listening line, without its newline */
};

/* One HTTP answer; targetproc_resp_free releases it. */
struct targetproc_resp {
	int status;	 /* 100..599, or 0 before a status line was read */
	char *head;	 /* the status line and headers, NUL-terminated (malloc'd) */
	char *body;	 /* the body, NUL-terminated (malloc'd) */
	size_t body_len; /* bytes of body */
};

static pid_t targetproc__pids[TARGETPROC_MAX_CHILDREN];
static char targetproc__dirs[TARGETPROC_MAX_DIRS][TARGETPROC_PATH_MAX];

static inline uint64_t targetproc_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* $FAULTLINE_BUILD/faultline-target when it exists and is executable,
 * else NULL.  Static storage. */
static inline const char *targetproc_binary(void)
{
	static char path[TARGETPROC_PATH_MAX];
	const char *b = getenv("FAULTLINE_BUILD");

	if (!b || !*b)
		return NULL;
	snprintf(path, sizeof(path), "%s/faultline-target", b);
	return access(path, X_OK) == 0 ? path : NULL;
}

static inline void targetproc__register(pid_t pid)
{
	for (int i = 0; i < TARGETPROC_MAX_CHILDREN; i++)
		if (!targetproc__pids[i]) {
			targetproc__pids[i] = pid;
			return;
		}
}

static inline void targetproc__unregister(pid_t pid)
{
	for (int i = 0; i < TARGETPROC_MAX_CHILDREN; i++)
		if (targetproc__pids[i] == pid)
			targetproc__pids[i] = 0;
}

static inline int targetproc__rm(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* Removes dir and everything under it (without following symlinks).  Not
 * for signal handlers. */
static inline void targetproc_rmtree(const char *dir)
{
	nftw(dir, targetproc__rm, 16, FTW_DEPTH | FTW_PHYS);
}

/* SIGKILLs and reaps every registered child and removes every registered
 * directory.  Idempotent; installed with atexit by targetproc_watchdog. */
static inline void targetproc_cleanup(void)
{
	for (int i = 0; i < TARGETPROC_MAX_CHILDREN; i++)
		if (targetproc__pids[i] > 0) {
			kill(targetproc__pids[i], SIGKILL);
			waitpid(targetproc__pids[i], NULL, 0);
			targetproc__pids[i] = 0;
		}
	for (int i = 0; i < TARGETPROC_MAX_DIRS; i++)
		if (targetproc__dirs[i][0]) {
			targetproc_rmtree(targetproc__dirs[i]);
			targetproc__dirs[i][0] = '\0';
		}
}

static inline void targetproc__on_alarm(int sig)
{
	static const char msg[] = "Bail out! watchdog: the test ran out of time\n";
	ssize_t n;

	(void)sig;
	for (int i = 0; i < TARGETPROC_MAX_CHILDREN; i++)
		if (targetproc__pids[i] > 0) {
			kill(targetproc__pids[i], SIGKILL);
			waitpid(targetproc__pids[i], NULL, 0);
		}
	for (int i = 0; i < TARGETPROC_MAX_DIRS; i++)
		if (targetproc__dirs[i][0]) {
			pid_t p = fork();

			if (p == 0) {
				char *const argv[] = { "rm", "-rf", targetproc__dirs[i], NULL };
				char *const envp[] = { NULL };

				execve("/bin/rm", argv, envp);
				_exit(127);
			}
			if (p > 0)
				waitpid(p, NULL, 0);
		}
	n = write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	(void)n;
	_exit(255);
}

/* Arms alarm(seconds) with a handler that kills the registered children,
 * removes the registered directories and exits 255; also installs
 * targetproc_cleanup with atexit (once). */
static inline void targetproc_watchdog(unsigned seconds)
{
	static int installed;
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = targetproc__on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (!installed++)
		atexit(targetproc_cleanup);
	alarm(seconds);
}

/* Creates /tmp/fl-target-XXXXXX into buf and registers it for removal.
 * 0 or -errno. */
static inline int targetproc_tmpdir(char *buf, size_t len)
{
	if (len < 32)
		return -EINVAL;
	snprintf(buf, len, "/tmp/fl-target-XXXXXX");
	if (!mkdtemp(buf))
		return -errno;
	for (int i = 0; i < TARGETPROC_MAX_DIRS; i++)
		if (!targetproc__dirs[i][0]) {
			snprintf(targetproc__dirs[i], sizeof(targetproc__dirs[i]), "%s", buf);
			return 0;
		}
	return 0;
}

/* Forks and execs the binary with args (NULL-terminated, without the
 * program name) and env (NULL or NULL-terminated "K=V" strings added to
 * the environment; "K=" with nothing after it unsets K).  out_fd/err_fd:
 * where the child's stdout/stderr go (-1: inherit).  Returns the pid (> 0)
 * registered for cleanup, or -errno. */
static inline pid_t targetproc__spawn(const char *const *args, const char *const *env, int out_fd,
				      int err_fd)
{
	const char *bin = targetproc_binary();
	const char *argv[64];
	int n = 0;
	pid_t pid;

	if (!bin)
		return -ENOENT;
	argv[n++] = bin;
	for (int i = 0; args && args[i] && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (out_fd >= 0)
			dup2(out_fd, STDOUT_FILENO);
		if (err_fd >= 0)
			dup2(err_fd, STDERR_FILENO);
		for (int i = 0; env && env[i]; i++) {
			const char *eq = strchr(env[i], '=');
			char k[128];

			if (!eq || (size_t)(eq - env[i]) >= sizeof(k))
				continue;
			memcpy(k, env[i], (size_t)(eq - env[i]));
			k[eq - env[i]] = '\0';
			if (eq[1])
				setenv(k, eq + 1, 1);
			else
				unsetenv(k);
		}
		signal(SIGPIPE, SIG_DFL);
		alarm(0);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	targetproc__register(pid);
	return pid;
}

/* Waits up to timeout_ms for p to exit and reaps it.  Returns 0 with
 * *status (waitpid's) set, or -ETIMEDOUT (still running).  */
static inline int targetproc_wait(struct targetproc *p, int timeout_ms, int *status)
{
	uint64_t end = targetproc_now_ms() + (uint64_t)timeout_ms;
	int st = 0;

	if (p->pid <= 0)
		return -ECHILD;
	for (;;) {
		pid_t r = waitpid(p->pid, &st, WNOHANG);

		if (r == p->pid || (r < 0 && errno != EINTR)) {
			targetproc__unregister(p->pid);
			p->pid = 0;
			if (status)
				*status = st;
			return r < 0 ? -ECHILD : 0;
		}
		if (targetproc_now_ms() >= end)
			return -ETIMEDOUT;
		usleep(2000);
	}
}

/* Sends sig to p (by pid).  0 or -errno. */
static inline int targetproc_signal(struct targetproc *p, int sig)
{
	if (p->pid <= 0)
		return -ESRCH;
	return kill(p->pid, sig) < 0 ? -errno : 0;
}

/* SIGKILL and reap (no-op when already reaped). */
static inline void targetproc_kill(struct targetproc *p)
{
	if (p->pid <= 0)
		return;
	kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
	targetproc__unregister(p->pid);
	p->pid = 0;
}

/* SIGTERM, then waits up to timeout_ms; a child still running then is
 * SIGKILLed.  Returns its exit code (0..255), 128 + signal when a signal
 * ended it, or -ETIMEDOUT when it had to be killed. */
static inline int targetproc_stop(struct targetproc *p, int timeout_ms)
{
	int st;

	if (p->pid <= 0)
		return -ECHILD;
	kill(p->pid, SIGTERM);
	if (targetproc_wait(p, timeout_ms, &st) < 0) {
		targetproc_kill(p);
		return -ETIMEDOUT;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The port of a "name=HOST:PORT" token (HOST may be "[v6]"); 0 if none. */
static inline int targetproc__port_of(const char *tok)
{
	const char *end = tok + strcspn(tok, " "), *c = end;

	while (c > tok && c[-1] != ':')
		c--;
	return c > tok ? atoi(c) : 0;
}

/* Starts the binary with args/env (as targetproc__spawn) and waits up to
 * timeout_ms for its "listening http=H:P admin=H:P" line.  Returns 0 with
 * *p filled, or -errno with the reason in why (the child is killed and
 * reaped, e.g. when it exits first with a configuration error). */
static inline int targetproc_start(struct targetproc *p, const char *const *args,
				   const char *const *env, int timeout_ms, char *why, size_t whylen)
{
	uint64_t end = targetproc_now_ms() + (uint64_t)timeout_ms;
	int fds[2], st;
	size_t n = 0;

	memset(p, 0, sizeof(*p));
	if (pipe2(fds, O_CLOEXEC) < 0) {
		snprintf(why, whylen, "pipe: %s", strerror(errno));
		return -errno;
	}
	p->pid = targetproc__spawn(args, env, fds[1], -1);
	close(fds[1]);
	if (p->pid < 0) {
		int rc = (int)p->pid;

		close(fds[0]);
		p->pid = 0;
		snprintf(why, whylen, "cannot start faultline-target: %s", strerror(-rc));
		return rc;
	}
	for (;;) {
		struct pollfd pfd = { fds[0], POLLIN, 0 };
		uint64_t now = targetproc_now_ms();
		ssize_t r;
		char *nl;

		if (now >= end) {
			snprintf(why, whylen, "no listening line within %d ms", timeout_ms);
			break;
		}
		if (poll(&pfd, 1, (int)(end - now)) <= 0)
			continue;
		r = read(fds[0], p->line + n, sizeof(p->line) - 1 - n);
		if (r <= 0) {
			if (r < 0 && errno == EINTR)
				continue;
			if (targetproc_wait(p, 2000, &st) == 0)
				snprintf(why, whylen, "exited (%s %d) before listening",
					 WIFEXITED(st) ? "status" : "signal",
					 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			else
				snprintf(why, whylen, "closed stdout before listening");
			break;
		}
		n += (size_t)r;
		p->line[n] = '\0';
		if ((nl = strchr(p->line, '\n'))) {
			const char *h, *a;

			*nl = '\0';
			h = strstr(p->line, "http=");
			a = strstr(p->line, "admin=");
			if (strncmp(p->line, "listening ", 10) == 0 && h && a) {
				p->http_port = targetproc__port_of(h);
				p->admin_port = targetproc__port_of(a);
			}
			if (p->http_port > 0 && p->admin_port > 0) {
				close(fds[0]);
				return 0;
			}
			snprintf(why, whylen, "unexpected first line '%.200s'", p->line);
			break;
		}
		if (n == sizeof(p->line) - 1) {
			snprintf(why, whylen, "first line too long");
			break;
		}
	}
	close(fds[0]);
	targetproc_kill(p);
	return -EPROTO;
}

/* Runs the binary to completion (args/env as targetproc__spawn),
 * capturing stdout into out and stderr into err (either may be NULL; each
 * truncated to its size, NUL-terminated).  Waits up to timeout_ms, then
 * kills it.  Returns 0 with *status = its exit code (128 + signal when a
 * signal ended it), or -errno (-ETIMEDOUT when it had to be killed). */
static inline int targetproc_run(const char *const *args, const char *const *env, int timeout_ms,
				 int *status, char *out, size_t outlen, char *err, size_t errlen)
{
	uint64_t end = targetproc_now_ms() + (uint64_t)timeout_ms;
	struct targetproc p = { 0 };
	int o[2], e[2], st, eof_o = 0, eof_e = 0;
	size_t no = 0, ne = 0;

	if (pipe2(o, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(e, O_CLOEXEC) < 0) {
		close(o[0]);
		close(o[1]);
		return -errno;
	}
	p.pid = targetproc__spawn(args, env, o[1], e[1]);
	close(o[1]);
	close(e[1]);
	if (p.pid < 0) {
		close(o[0]);
		close(e[0]);
		return (int)p.pid;
	}
	if (out && outlen)
		out[0] = '\0';
	if (err && errlen)
		err[0] = '\0';
	/* Both pipes at once, so a child filling one never blocks. */
	while ((!eof_o || !eof_e) && targetproc_now_ms() < end) {
		struct pollfd pfd[2] = { { eof_o ? -1 : o[0], POLLIN, 0 },
					 { eof_e ? -1 : e[0], POLLIN, 0 } };
		uint64_t now = targetproc_now_ms();

		if (poll(pfd, 2, (int)(end - now)) <= 0)
			continue;
		for (int k = 0; k < 2; k++) {
			char *b = k ? err : out;
			size_t size = k ? errlen : outlen, *n = k ? &ne : &no;
			char sink[4096];
			ssize_t r;

			if (!(pfd[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			if (b && *n + 1 < size)
				r = read(pfd[k].fd, b + *n, size - 1 - *n);
			else
				r = read(pfd[k].fd, sink, sizeof(sink));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				*(k ? &eof_e : &eof_o) = 1;
				continue;
			}
			if (b && *n + 1 < size) {
				*n += (size_t)r;
				b[*n] = '\0';
			}
		}
	}
	close(o[0]);
	close(e[0]);
	{
		uint64_t now = targetproc_now_ms();

		if (targetproc_wait(&p, now < end ? (int)(end - now) : 0, &st) < 0) {
			targetproc_kill(&p);
			return -ETIMEDOUT;
		}
	}
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return 0;
}

static inline void targetproc_resp_free(struct targetproc_resp *r)
{
	free(r->head);
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* The value of header `name` in r (case-insensitive) copied into buf, or
 * NULL when absent. */
static inline const char *targetproc_resp_header(const struct targetproc_resp *r, const char *name,
						 char *buf, size_t len)
{
	size_t nl = strlen(name);
	const char *p = r->head;

	while (p && (p = strstr(p, "\r\n"))) {
		p += 2;
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1, *e = strstr(v, "\r\n");
			size_t vl;

			while (*v == ' ')
				v++;
			vl = e ? (size_t)(e - v) : strlen(v);
			if (vl >= len)
				vl = len - 1;
			memcpy(buf, v, vl);
			buf[vl] = '\0';
			return buf;
		}
	}
	return NULL;
}

/* Connects to host:port within the deadline; returns the fd or -errno. */
static inline int targetproc__connect(const char *host, int port, uint64_t end)
{
	struct sockaddr_in sa;
	int fd, rc, soerr = 0;
	socklen_t sl = sizeof(soerr);
	struct pollfd pfd;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	if (rc < 0 && errno != EINPROGRESS) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (rc < 0) {
		uint64_t now = targetproc_now_ms();

		pfd = (struct pollfd){ fd, POLLOUT, 0 };
		if (now >= end || poll(&pfd, 1, (int)(end - now)) <= 0) {
			close(fd);
			return -ETIMEDOUT;
		}
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		if (soerr) {
			close(fd);
			return -soerr;
		}
	}
	return fd;
}

/* One request over a new connection to host:port (IPv4 literal).
 * extra_headers: NULL or complete lines each ending in "\r\n".  Returns 0
 * with *r filled (free it with targetproc_resp_free), or -errno
 * (-ECONNREFUSED, -ETIMEDOUT, -EPROTO for a malformed answer, -ENOMEM);
 * *r is zeroed on error. */
static inline int targetproc_http(const char *host, int port, const char *method, const char *path,
				  const char *extra_headers, const void *body, size_t body_len,
				  int timeout_ms, struct targetproc_resp *r)
{
	uint64_t end = targetproc_now_ms() + (uint64_t)timeout_ms;
	size_t cap = 16384, n = 0, hl;
	char head[2048], *buf = NULL, *sep, *cl;
	int fd, hn, rc = 0;
	size_t sent = 0, total;

	memset(r, 0, sizeof(*r));
	fd = targetproc__connect(host, port, end);
	if (fd < 0)
		return fd;
	hn = snprintf(head, sizeof(head),
		      "%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n%sContent-Length: "
		      "%zu\r\n\r\n",
		      method, path, host, port, extra_headers ? extra_headers : "", body_len);
	if (hn < 0 || (size_t)hn >= sizeof(head)) {
		close(fd);
		return -EINVAL;
	}
	total = (size_t)hn + body_len;
	while (sent < total) {
		struct pollfd pfd = { fd, POLLOUT, 0 };
		uint64_t now = targetproc_now_ms();
		const char *src =
		    sent < (size_t)hn ? head + sent : (const char *)body + (sent - (size_t)hn);
		size_t len = sent < (size_t)hn ? (size_t)hn - sent : total - sent;
		ssize_t w;

		if (now >= end || poll(&pfd, 1, (int)(end - now)) <= 0) {
			rc = -ETIMEDOUT;
			goto out;
		}
		w = send(fd, src, len, MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (w < 0) {
			rc = -errno;
			goto out;
		}
		sent += (size_t)w;
	}
	if (!(buf = malloc(cap))) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		uint64_t now = targetproc_now_ms();
		ssize_t got;

		if (n + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		if (now >= end || poll(&pfd, 1, (int)(end - now)) <= 0) {
			rc = -ETIMEDOUT;
			goto out;
		}
		got = recv(fd, buf + n, cap - 1 - n, 0);
		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (got < 0) {
			rc = -errno;
			goto out;
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	buf[n] = '\0';
	sep = strstr(buf, "\r\n\r\n");
	if (!sep || sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1) {
		rc = n ? -EPROTO : -ECONNRESET;
		goto out;
	}
	hl = (size_t)(sep - buf) + 2;
	r->head = malloc(hl + 1);
	r->body_len = n - hl - 2;
	r->body = malloc(r->body_len + 1);
	if (!r->head || !r->body) {
		rc = -ENOMEM;
		goto out;
	}
	memcpy(r->head, buf, hl);
	r->head[hl] = '\0';
	memcpy(r->body, sep + 4, r->body_len);
	r->body[r->body_len] = '\0';
	{
		char v[32];

		cl = (char *)targetproc_resp_header(r, "Content-Length", v, sizeof(v));
		if (cl && (size_t)strtoull(cl, NULL, 10) != r->body_len)
			rc = -EPROTO;
	}
out:
	free(buf);
	close(fd);
	if (rc < 0)
		targetproc_resp_free(r);
	return rc;
}

/* GET path from 127.0.0.1:port. */
static inline int targetproc_get(int port, const char *path, int timeout_ms,
				 struct targetproc_resp *r)
{
	return targetproc_http("127.0.0.1", port, "GET", path, NULL, NULL, 0, timeout_ms, r);
}

/* POST path to 127.0.0.1:port with an optional body. */
static inline int targetproc_post(int port, const char *path, const char *extra_headers,
				  const char *body, int timeout_ms, struct targetproc_resp *r)
{
	return targetproc_http("127.0.0.1", port, "POST", path, extra_headers, body,
			       body ? strlen(body) : 0, timeout_ms, r);
}

#endif
