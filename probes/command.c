/* The command probe family: run argv with uv_spawn (never a shell), capture
 * stdout (bounded), kill the child by its pid with SIGKILL at the timeout,
 * and yield its exit status or a number or match from its output.  The
 * sample ends only after the child has been reaped. */
#include "probes/probe.h"

#include <errno.h>
#include <regex.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "probes/http1.h" /* fl_fmt_duration, fl_strerror_lc */

extern char **environ;

struct cmd;

/* One run of the program; freed when its handles are closed. */
struct run {
	struct cmd *st;
	uv_process_t proc;
	uv_pipe_t out;
	uv_timer_t timer;
	int open_handles;
	bool exited, eof, timed_out, decided;
	int64_t exit_status;
	int term_signal;
	size_t len;	/* bytes kept in buf */
	size_t dropped; /* bytes read past FL_PROBE_CMD_OUT_MAX */
	char buf[FL_PROBE_CMD_OUT_MAX + 1];
	char sink[4096]; /* output past the cap: read and dropped */
};

struct cmd {
	struct fl_probe_inst *p;
	bool has_rx;
	regex_t rx;
	bool closing;
	int runs;	 /* runs whose handles are not all closed yet */
	struct run *cur; /* the run of the sample in flight, or NULL */
};

static void cmd_free(struct cmd *st)
{
	if (st->has_rx)
		regfree(&st->rx);
	free(st);
}

static int cmd_open(struct fl_probe_inst *p, struct rs_err *err)
{
	const struct fl_probe_cfg *cfg = fl_probe_config(p);
	enum fl_cmd_value v = cfg->command.value;
	struct cmd *st;
	int rc;

	if (!cfg->command.argv || !cfg->command.argv[0] || !*cfg->command.argv[0])
		return rs__einval(err, "command.argv needs at least the program");
	if ((unsigned)v > FL_CMD_REGEX_NUMBER)
		return rs__einval(err, "command.value: unknown value %d", (int)v);
	if ((v == FL_CMD_REGEX_MATCH || v == FL_CMD_REGEX_NUMBER) && !cfg->command.regex)
		return rs__einval(err, "command.value %s needs command.regex",
				  v == FL_CMD_REGEX_MATCH ? "regex-match" : "regex-number");
	for (const char *const *e = cfg->command.env; e && *e; e++)
		if (!strchr(*e, '=') || **e == '=')
			return rs__einval(err, "command.env: '%.60s' is not NAME=value", *e);
	st = calloc(1, sizeof(*st));
	if (!st)
		return rs__enomem(err, "command probe");
	st->p = p;
	if (cfg->command.regex && v != FL_CMD_EXIT) {
		char msg[120];

		rc = regcomp(&st->rx, cfg->command.regex, REG_EXTENDED | REG_NEWLINE);
		if (rc != 0) {
			regerror(rc, &st->rx, msg, sizeof(msg));
			if (msg[0] >= 'A' && msg[0] <= 'Z')
				msg[0] = (char)(msg[0] - 'A' + 'a');
			free(st);
			return rs__einval(err, "command.regex: bad regular expression '%.60s': %s",
					  cfg->command.regex, msg);
		}
		st->has_rx = true;
		if ((v == FL_CMD_REGEX_NUMBER || v == FL_CMD_NUMBER) && st->rx.re_nsub < 1) {
			cmd_free(st);
			return rs__einval(
			    err, "command.regex '%.60s' has no group to read the number from",
			    cfg->command.regex);
		}
	}
	fl__probe_set_priv(p, st);
	return 0;
}

/* The sample from a finished run (the child has exited and been reaped). */
static void report(struct fl_probe_inst *p, struct cmd *st, struct run *r)
{
	const struct fl_probe_cfg *cfg = fl_probe_config(p);
	const char *prog = cfg->command.argv[0];
	enum fl_cmd_value v = cfg->command.value;
	regmatch_t m[2];
	double x;
	char d[32];

	if (r->timed_out) {
		fl__probe_done(p, -ETIMEDOUT, 0, "timed out after %s (%.60s killed)",
			       fl_fmt_duration(fl__probe_timeout_ns(p), d, sizeof(d)), prog);
		return;
	}
	if (v == FL_CMD_EXIT) {
		fl__probe_done(p, 0, r->term_signal ? 128 + r->term_signal : (double)r->exit_status,
			       NULL);
		return;
	}
	if (r->term_signal) {
		fl__probe_done(p, -ECHILD, 0, "%.60s killed by signal %d", prog, r->term_signal);
		return;
	}
	if (r->exit_status != 0) {
		fl__probe_done(p, -ECHILD, 0, "%.60s exited with status %d", prog,
			       (int)r->exit_status);
		return;
	}
	r->buf[r->len] = '\0';
	if (v == FL_CMD_REGEX_MATCH) {
		fl__probe_done(p, 0, regexec(&st->rx, r->buf, 0, NULL, 0) == 0 ? 1 : 0, NULL);
		return;
	}
	if (v == FL_CMD_NUMBER && !st->has_rx) {
		if (fl__probe_first_number(r->buf, &x) < 0)
			fl__probe_done(p, -ENOENT, 0, "no number in the output of %.60s", prog);
		else
			fl__probe_done(p, 0, x, NULL);
		return;
	}
	/* REGEX_NUMBER, or NUMBER with a regex: the first group. */
	if (regexec(&st->rx, r->buf, 2, m, 0) != 0 || m[1].rm_so < 0) {
		fl__probe_done(p, -ENOENT, 0, "the output of %.40s does not match '%.40s'", prog,
			       cfg->command.regex);
		return;
	}
	r->buf[m[1].rm_eo] = '\0';
	if (fl__probe_number(r->buf + m[1].rm_so, &x) < 0)
		fl__probe_done(p, -EINVAL, 0, "'%.40s' matched by '%.40s' is not a number",
			       r->buf + m[1].rm_so, cfg->command.regex);
	else
		fl__probe_done(p, 0, x, NULL);
}

static void on_run_closed(uv_handle_t *h)
{
	struct run *r = h->data;
	struct cmd *st = r->st;

	if (--r->open_handles > 0)
		return;
	free(r);
	if (--st->runs == 0 && st->closing) {
		struct fl_probe_inst *p = st->p;

		cmd_free(st);
		fl__probe_family_closed(p);
	}
}

static void run_close(struct run *r)
{
	uv_close((uv_handle_t *)&r->proc, on_run_closed);
	uv_close((uv_handle_t *)&r->out, on_run_closed);
	uv_close((uv_handle_t *)&r->timer, on_run_closed);
}

/* Decides once the child has exited and its output is read (or abandoned). */
static void maybe_decide(struct run *r)
{
	if (r->decided || !r->exited || (!r->eof && !r->timed_out))
		return;
	r->decided = true;
	if (r->st->cur == r)
		r->st->cur = NULL;
	uv_timer_stop(&r->timer);
	if (!r->st->closing)
		report(r->st->p, r->st, r);
	run_close(r);
}

static void on_exit_cb(uv_process_t *proc, int64_t exit_status, int term_signal)
{
	struct run *r = proc->data;

	r->exited = true;
	r->exit_status = exit_status;
	r->term_signal = term_signal;
	maybe_decide(r);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct run *r = h->data;

	(void)suggested;
	if (r->len < FL_PROBE_CMD_OUT_MAX) {
		b->base = r->buf + r->len;
		b->len = FL_PROBE_CMD_OUT_MAX - r->len;
	} else {
		b->base = r->sink;
		b->len = sizeof(r->sink);
	}
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct run *r = s->data;

	if (nread > 0) {
		if (b->base == r->buf + r->len)
			r->len += (size_t)nread;
		else
			r->dropped += (size_t)nread;
	} else if (nread < 0) {
		r->eof = true;
		uv_read_stop(s);
		maybe_decide(r);
	}
}

static void on_timeout(uv_timer_t *t)
{
	struct run *r = t->data;

	r->timed_out = true;
	if (!r->exited)
		uv_process_kill(&r->proc, SIGKILL); /* by its pid; on_exit_cb follows once reaped */
	maybe_decide(r);
}

/* The environment for the child: ours, with cfg's entries added or
 * replacing ours; NULL when there are none (inherit). */
static char **make_env(const char *const *extra, int *rc)
{
	size_t n = 0, k = 0, m = 0;
	char **env;

	*rc = 0;
	if (!extra || !extra[0])
		return NULL;
	while (environ && environ[n])
		n++;
	while (extra[m])
		m++;
	env = calloc(n + m + 1, sizeof(*env));
	if (!env) {
		*rc = -ENOMEM;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		const char *eq = strchr(environ[i], '=');
		size_t nl = eq ? (size_t)(eq - environ[i]) : strlen(environ[i]);
		bool replaced = false;

		for (size_t j = 0; j < m && !replaced; j++)
			replaced = strncmp(extra[j], environ[i], nl) == 0 && extra[j][nl] == '=';
		if (!replaced)
			env[k++] = environ[i];
	}
	for (size_t j = 0; j < m; j++)
		env[k++] = (char *)extra[j];
	env[k] = NULL;
	return env;
}

static void cmd_sample(struct fl_probe_inst *p, uint64_t now_ns)
{
	struct cmd *st = fl__probe_priv(p);
	const struct fl_probe_cfg *cfg = fl_probe_config(p);
	uv_loop_t *loop = fl__probe_env(p)->loop;
	uv_process_options_t o;
	uv_stdio_container_t stdio[3];
	struct run *r;
	char **env;
	int rc;

	(void)now_ns;
	env = make_env(cfg->command.env, &rc);
	r = rc == 0 ? calloc(1, sizeof(*r)) : NULL;
	if (!r) {
		free(env);
		fl__probe_done(p, -ENOMEM, 0, "command probe: out of memory");
		return;
	}
	r->st = st;
	r->proc.data = r->out.data = r->timer.data = r;
	uv_pipe_init(loop, &r->out, 0);
	uv_timer_init(loop, &r->timer);
	memset(&o, 0, sizeof(o));
	memset(stdio, 0, sizeof(stdio));
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&r->out;
	stdio[2].flags = UV_IGNORE;
	o.file = cfg->command.argv[0];
	o.args = (char **)cfg->command.argv;
	o.env = env;
	o.cwd = cfg->command.cwd;
	o.stdio = stdio;
	o.stdio_count = 3;
	o.exit_cb = on_exit_cb;
	rc = uv_spawn(loop, &r->proc, &o); /* the handle must be closed even when this fails */
	free(env);
	r->open_handles = 3;
	st->runs++;
	if (rc < 0) {
		char e[80];

		r->decided = true;
		fl__probe_done(p, rc, 0, "cannot run '%.60s': %s", cfg->command.argv[0],
			       fl_strerror_lc(-rc, e, sizeof(e)));
		run_close(r);
		return;
	}
	st->cur = r;
	uv_read_start((uv_stream_t *)&r->out, on_alloc, on_read);
	uv_timer_start(&r->timer, on_timeout, (fl__probe_timeout_ns(p) + 999999) / 1000000, 0);
}

static void cmd_close(struct fl_probe_inst *p)
{
	struct cmd *st = fl__probe_priv(p);

	struct run *r = st->cur;

	st->closing = true;
	if (r) {
		/* Kill it now; the run closes once the child is reaped. */
		r->timed_out = true;
		if (!r->exited)
			uv_process_kill(&r->proc, SIGKILL);
		maybe_decide(r);
	}
	if (st->runs == 0) {
		cmd_free(st);
		fl__probe_family_closed(p);
	}
}

const struct fl_probe_family_ops fl__probe_command_ops = {
	.name = "command",
	.family = FL_PROBE_COMMAND,
	.default_timeout_ns = 5000000000ull,
	.open = cmd_open,
	.sample = cmd_sample,
	.close = cmd_close,
};
