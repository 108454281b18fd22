/* Target processes: spawn, announce, supervise, stop (target_proc.h). */
#include "harness/target_proc.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "resilience/clock.h"

extern char **environ;

/* Output is consumed inside the read callback that follows the allocation,
 * so one buffer per thread serves every process. */
struct readbuf {
	char b[4096];
};

void fl_tproc_init(struct fl_tproc *p)
{
	memset(p, 0, sizeof(*p));
}

static void noop_closed(void *ctx)
{
	(void)ctx;
}

static void free_strv(char **v)
{
	if (!v)
		return;
	for (char **s = v; *s; s++)
		free(*s);
	free(v);
}

static void release_mem(struct fl_tproc *p)
{
	free_strv(p->argv);
	free_strv(p->env);
	free(p->cwd);
	p->argv = p->env = NULL;
	p->cwd = NULL;
}

static void maybe_finish(struct fl_tproc *p)
{
	void (*cb)(void *);

	if (!p->closing || p->open_handles > 0 || !p->closed)
		return;
	cb = p->closed;
	p->closed = NULL;
	release_mem(p);
	cb(p->closed_ctx);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct fl_tproc *p = h->data;

	p->open_handles--;
	maybe_finish(p);
}

static void close_handle(struct fl_tproc *p, uv_handle_t *h, bool *open)
{
	if (!*open)
		return;
	*open = false;
	if (!uv_is_closing(h))
		uv_close(h, on_handle_closed);
	else
		p->open_handles--;
}

static void announce_result(struct fl_tproc *p, int http, int admin, const char *why)
{
	if (!p->o.announce || p->announce_done)
		return;
	p->announce_done = true;
	if (p->timer_open && !p->stopping)
		uv_timer_stop(&p->timer);
	if (p->o.on_listening)
		p->o.on_listening(p->o.ctx, p, http, admin, why);
}

int fl_tproc_parse_listening(const char *line, int *http_port, int *admin_port)
{
	const char *h, *a;
	char *end;
	long v;

	if (strncmp(line, "listening ", 10) != 0)
		return -EINVAL;
	h = strstr(line, "http=");
	if (!h)
		return -EINVAL;
	h += 5;
	end = strpbrk(h, " \t");
	{
		const char *colon = NULL;

		for (const char *c = h; *c && c != end; c++)
			if (*c == ':')
				colon = c;
		if (!colon)
			return -EINVAL;
		v = strtol(colon + 1, &end, 10);
		if (end == colon + 1 || v <= 0 || v > 65535 ||
		    (*end && *end != ' ' && *end != '\t'))
			return -EINVAL;
		*http_port = (int)v;
	}
	*admin_port = 0;
	a = strstr(line, "admin=");
	if (a) {
		const char *colon = NULL;

		a += 6;
		for (const char *c = a; *c && *c != ' ' && *c != '\t'; c++)
			if (*c == ':')
				colon = c;
		if (!colon)
			return -EINVAL;
		v = strtol(colon + 1, &end, 10);
		if (end == colon + 1 || v <= 0 || v > 65535 ||
		    (*end && *end != ' ' && *end != '\t'))
			return -EINVAL;
		*admin_port = (int)v;
	}
	return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static __thread struct readbuf rb; /* consumed before the next read */

	(void)h;
	(void)suggested;
	*buf = uv_buf_init(rb.b, sizeof(rb.b));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct fl_tproc *p = s->data;

	if (n < 0) {
		uv_read_stop(s);
		p->out_reading = false;
		/* Before the line: the exit (or the timeout) says why, which
		 * is more useful than "closed its output". */
		if (p->o.announce && !p->announce_done && !p->running)
			announce_result(p, 0, 0,
					"closed its standard output before announcing its ports");
		close_handle(p, (uv_handle_t *)&p->out, &p->out_open);
		return;
	}
	if (!p->o.announce || p->announce_done)
		return; /* later output is dropped */
	for (ssize_t i = 0; i < n; i++) {
		char c = buf->base[i];
		int http, admin;

		if (c == '\n') {
			p->line[p->linelen] = '\0';
			if (p->linelen && p->line[p->linelen - 1] == '\r')
				p->line[p->linelen - 1] = '\0';
			if (fl_tproc_parse_listening(p->line, &http, &admin) == 0) {
				p->announced = true;
				announce_result(p, http, admin, NULL);
			} else {
				char why[FL_TPROC_LINE_MAX + 80];

				snprintf(why, sizeof(why),
					 "printed '%.120s' instead of 'listening http=HOST:PORT "
					 "admin=HOST:PORT'",
					 p->line);
				announce_result(p, 0, 0, why);
			}
			return;
		}
		if (p->linelen + 1 < sizeof(p->line))
			p->line[p->linelen++] = c;
	}
}

static void on_timer(uv_timer_t *t)
{
	struct fl_tproc *p = t->data;

	if (p->stopping) {
		if (p->running)
			kill(p->pid, SIGKILL);
		return;
	}
	if (p->o.announce && !p->announce_done) {
		char why[120], d[32];

		snprintf(d, sizeof(d), "%.3gs", (double)p->o.announce_timeout_ns / 1e9);
		snprintf(why, sizeof(why), "did not announce its ports within %s", d);
		announce_result(p, 0, 0, why);
	}
}

static void on_exit_cb(uv_process_t *proc, int64_t status, int term_signal)
{
	struct fl_tproc *p = proc->data;

	p->running = false;
	p->status = status;
	p->term_signal = term_signal;
	if (p->timer_open)
		uv_timer_stop(&p->timer);
	if (p->o.announce && !p->announce_done) {
		char why[120];

		if (term_signal)
			snprintf(why, sizeof(why),
				 "was killed by signal %d before announcing its ports",
				 term_signal);
		else
			snprintf(why, sizeof(why),
				 "exited with status %lld before announcing its ports",
				 (long long)status);
		announce_result(p, 0, 0, why);
	}
	if (p->o.on_exit)
		p->o.on_exit(p->o.ctx, p, status, term_signal, p->stopping);
	close_handle(p, (uv_handle_t *)&p->proc, &p->proc_open);
	if (p->closing) {
		close_handle(p, (uv_handle_t *)&p->out, &p->out_open);
		close_handle(p, (uv_handle_t *)&p->timer, &p->timer_open);
	}
}

static char **dup_strv(const char *const *v, size_t extra_front, size_t *n_out)
{
	size_t n = 0;
	char **r;

	while (v && v[n])
		n++;
	r = calloc(n + extra_front + 1, sizeof(*r));
	if (!r)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		r[extra_front + i] = strdup(v[i]);
		if (!r[extra_front + i]) {
			for (size_t k = 0; k < extra_front + i; k++)
				free(r[k]);
			free(r);
			return NULL;
		}
	}
	if (n_out)
		*n_out = n;
	return r;
}

static bool env_overridden(const char *kv, const char *const *add)
{
	const char *eq = strchr(kv, '=');
	size_t kl = eq ? (size_t)(eq - kv) : strlen(kv);

	for (size_t i = 0; add && add[i]; i++)
		if (strncmp(add[i], kv, kl) == 0 && add[i][kl] == '=')
			return true;
	return false;
}

static char **build_env(const char *const *add)
{
	size_t n = 0, na = 0, k = 0;
	char **r;

	for (char **e = environ; e && *e; e++)
		n++;
	while (add && add[na])
		na++;
	r = calloc(n + na + 1, sizeof(*r));
	if (!r)
		return NULL;
	for (char **e = environ; e && *e; e++) {
		if (env_overridden(*e, add))
			continue;
		if (!(r[k++] = strdup(*e)))
			goto fail;
	}
	for (size_t i = 0; i < na; i++)
		if (!(r[k++] = strdup(add[i])))
			goto fail;
	return r;
fail:
	free_strv(r);
	return NULL;
}

int fl_tproc_start(struct fl_tproc *p, uv_loop_t *loop, const struct fl_tproc_opts *o,
		   struct rs_err *err)
{
	uv_process_options_t po;
	uv_stdio_container_t stdio[3];
	size_t nargv = 0, front = o->shim ? 4 : 0;
	char ppid[24];
	int rc;

	p->o = *o;
	p->loop = loop;
	p->argv = dup_strv(o->argv, front, &nargv);
	p->env = build_env(o->env_add);
	p->cwd = o->cwd ? strdup(o->cwd) : NULL;
	if (!p->argv || !p->env || (o->cwd && !p->cwd) || nargv == 0) {
		rc = nargv == 0 && p->argv ? -EINVAL : -ENOMEM;
		rs__err_set(err, "cannot start the %s: %s", o->role,
			    rc == -EINVAL ? "its command is empty" : "out of memory");
		release_mem(p);
		return rc;
	}
	if (o->shim) {
		snprintf(ppid, sizeof(ppid), "%ld", (long)getpid());
		p->argv[0] = strdup(o->shim);
		p->argv[1] = strdup("__exec");
		p->argv[2] = strdup(ppid);
		p->argv[3] = strdup("--");
		if (!p->argv[0] || !p->argv[1] || !p->argv[2] || !p->argv[3]) {
			rs__err_set(err, "cannot start the %s: out of memory", o->role);
			release_mem(p);
			return -ENOMEM;
		}
	}
	uv_pipe_init(loop, &p->out, 0);
	p->out.data = p;
	p->out_open = true;
	p->open_handles++;
	uv_timer_init(loop, &p->timer);
	p->timer.data = p;
	p->timer_open = true;
	p->open_handles++;

	memset(&po, 0, sizeof(po));
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&p->out;
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = 2;
	po.file = p->argv[0];
	po.args = p->argv;
	po.env = p->env;
	po.cwd = p->cwd;
	po.flags = UV_PROCESS_DETACHED;
	po.stdio_count = 3;
	po.stdio = stdio;
	po.exit_cb = on_exit_cb;
	p->proc.data = p;
	rc = uv_spawn(loop, &p->proc, &po);
	if (rc < 0) {
		rs__err_set(err, "cannot start the %s '%s': %s", o->role, p->argv[front],
			    uv_strerror(rc));
		/* uv_spawn leaves an initialised handle that must be closed;
		 * the memory goes once every handle is closed. */
		p->proc_open = true;
		p->open_handles++;
		p->closing = true;
		p->closed = noop_closed;
		close_handle(p, (uv_handle_t *)&p->proc, &p->proc_open);
		close_handle(p, (uv_handle_t *)&p->out, &p->out_open);
		close_handle(p, (uv_handle_t *)&p->timer, &p->timer_open);
		return rc;
	}
	p->proc_open = true;
	p->open_handles++;
	p->pid = p->proc.pid;
	p->running = true;
	if (uv_read_start((uv_stream_t *)&p->out, on_alloc, on_read) == 0)
		p->out_reading = true;
	if (o->announce)
		uv_timer_start(&p->timer, on_timer, o->announce_timeout_ns / 1000000 + 1, 0);
	return 0;
}

void fl_tproc_stop(struct fl_tproc *p, uint64_t timeout_ns)
{
	if (p->stopping || !p->running)
		return;
	p->stopping = true;
	kill(p->pid, SIGTERM);
	if (p->timer_open) {
		uv_timer_stop(&p->timer);
		uv_timer_start(&p->timer, on_timer, timeout_ns / 1000000 + 1, 0);
	}
}

void fl_tproc_close(struct fl_tproc *p, uint64_t stop_timeout_ns, void (*closed)(void *ctx),
		    void *ctx)
{
	p->closed = closed;
	p->closed_ctx = ctx;
	if (!p->closed)
		p->closed = noop_closed; /* keeps maybe_finish's logic in one place */
	p->closing = true;
	if (p->running) {
		fl_tproc_stop(p, stop_timeout_ns);
		/* The pipe may go now; the timer (SIGKILL) and the process handle
		 * close in on_exit_cb. */
		close_handle(p, (uv_handle_t *)&p->out, &p->out_open);
		return;
	}
	close_handle(p, (uv_handle_t *)&p->proc, &p->proc_open);
	close_handle(p, (uv_handle_t *)&p->out, &p->out_open);
	close_handle(p, (uv_handle_t *)&p->timer, &p->timer_open);
	if (p->open_handles == 0) {
		/* Deferred so that `closed` never runs inside this call. */
		p->open_handles++;
		uv_timer_init(p->loop ? p->loop : uv_default_loop(), &p->timer);
		p->timer.data = p;
		uv_close((uv_handle_t *)&p->timer, on_handle_closed);
	}
}

int fl_tproc_shim_main(int argc, char **argv)
{
	char *end;
	long ppid;

	if (argc < 3 || strcmp(argv[1], "--") != 0) {
		fprintf(stderr,
			"faultline __exec: usage: faultline __exec PPID -- PROGRAM [ARGS]\n");
		return 127;
	}
	ppid = strtol(argv[0], &end, 10);
	if (*end || ppid <= 0) {
		fprintf(stderr, "faultline __exec: bad parent pid '%s'\n", argv[0]);
		return 127;
	}
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0) {
		fprintf(stderr, "faultline __exec: prctl(PR_SET_PDEATHSIG): %s\n", strerror(errno));
		return 127;
	}
	if (getppid() != (pid_t)ppid)
		return 127; /* the harness is already gone */
	execvp(argv[2], argv + 2);
	fprintf(stderr, "faultline: cannot run '%s': %s\n", argv[2], strerror(errno));
	return 127;
}
