/* The probe object, its life cycle and the family registry (probes/probe.h). */
#include "probes/probe.h"

#include <errno.h>
#include <math.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "probes/http1.h" /* fl_strerror_lc */

struct fl_probe_inst {
	const struct fl_probe_family_ops *ops;
	struct fl_probe_cfg cfg; /* strings live in pool[] */
	const struct fl_probe_env *env;
	void *priv;
	uv_timer_t defer; /* delivers results reached inside ops->sample */
	fl_probe_cb cb;
	void *cb_ctx;
	struct fl_probe_sample pending;
	uint64_t t_ns, start_hr;
	bool busy;	/* a sample was started and its callback is owed */
	bool in_sample; /* inside ops->sample */
	bool stashed;	/* pending waits for the defer timer */
	bool closing, family_closed, defer_closed;
	void (*closed)(void *ctx);
	void *closed_ctx;
	alignas(max_align_t) char pool[];
};

/* ---- the registry ------------------------------------------------------------ */

static const struct fl_probe_family_ops *const families[FL_PROBE_FAMILIES] = {
	[FL_PROBE_PROMETHEUS] = &fl__probe_prometheus_ops,
	[FL_PROBE_HTTP] = &fl__probe_http_ops,
	[FL_PROBE_COMMAND] = &fl__probe_command_ops,
	[FL_PROBE_CLIENT] = &fl__probe_client_ops,
};

const struct fl_probe_family_ops *fl_probe_family_lookup(enum fl_probe_family f)
{
	return (unsigned)f < FL_PROBE_FAMILIES ? families[f] : NULL;
}

int fl_probe_family_by_name(const char *name, enum fl_probe_family *out)
{
	for (int i = 0; name && i < FL_PROBE_FAMILIES; i++)
		if (strcmp(families[i]->name, name) == 0) {
			*out = (enum fl_probe_family)i;
			return 0;
		}
	return -EINVAL;
}

/* ---- copying the configuration ------------------------------------------------ */

/* Counts (base == NULL) or fills one block. */
struct pool {
	char *base;
	size_t len;
};

static void *pool_take(struct pool *pl, size_t n, size_t align)
{
	void *r;

	pl->len = (pl->len + align - 1) / align * align;
	r = pl->base ? pl->base + pl->len : NULL;
	pl->len += n;
	return r;
}

static const char *pool_str(struct pool *pl, const char *s)
{
	size_t n;
	char *d;

	if (!s)
		return NULL;
	n = strlen(s) + 1;
	d = pool_take(pl, n, 1);
	if (d)
		memcpy(d, s, n);
	return d;
}

static const char *const *pool_strv(struct pool *pl, const char *const *v)
{
	const char **d;
	size_t n = 0;

	if (!v)
		return NULL;
	while (v[n])
		n++;
	d = pool_take(pl, (n + 1) * sizeof(*d), alignof(const char *));
	for (size_t i = 0; i < n; i++) {
		const char *s = pool_str(pl, v[i]);

		if (d)
			d[i] = s;
	}
	if (d)
		d[n] = NULL;
	return d;
}

static void copy_cfg(struct pool *pl, struct fl_probe_cfg *dst, const struct fl_probe_cfg *src)
{
	*dst = *src;
	dst->name = pool_str(pl, src->name);
	switch (src->family) {
	case FL_PROBE_PROMETHEUS:
		dst->prometheus.url = pool_str(pl, src->prometheus.url);
		dst->prometheus.metric = pool_str(pl, src->prometheus.metric);
		dst->prometheus.labels = pool_strv(pl, src->prometheus.labels);
		break;
	case FL_PROBE_HTTP:
		dst->http.url = pool_str(pl, src->http.url);
		dst->http.method = pool_str(pl, src->http.method);
		dst->http.request_body = pool_str(pl, src->http.request_body);
		dst->http.body_regex = pool_str(pl, src->http.body_regex);
		dst->http.headers = pool_strv(pl, src->http.headers);
		dst->http.header = pool_str(pl, src->http.header);
		break;
	case FL_PROBE_COMMAND:
		dst->command.argv = pool_strv(pl, src->command.argv);
		dst->command.regex = pool_str(pl, src->command.regex);
		dst->command.env = pool_strv(pl, src->command.env);
		dst->command.cwd = pool_str(pl, src->command.cwd);
		break;
	case FL_PROBE_CLIENT:
		dst->client.metric = pool_str(pl, src->client.metric);
		break;
	case FL_PROBE_FAMILIES:
		break;
	}
}

/* ---- life cycle ------------------------------------------------------------- */

int fl_probe_open(struct fl_probe_inst **out, const struct fl_probe_cfg *cfg,
		  const struct fl_probe_env *env, struct rs_err *err)
{
	const struct fl_probe_family_ops *ops;
	struct fl_probe_inst *p;
	struct pool pl = { NULL, 0 };
	struct fl_probe_cfg scratch;
	int rc;

	*out = NULL;
	if (!cfg || !env || !env->loop)
		return rs__einval(err, "probe: configuration and a loop are required");
	ops = fl_probe_family_lookup(cfg->family);
	if (!ops)
		return rs__einval(err, "probe '%s': unknown family %d", cfg->name ? cfg->name : "?",
				  (int)cfg->family);
	copy_cfg(&pl, &scratch, cfg);
	p = calloc(1, sizeof(*p) + pl.len);
	if (!p)
		return rs__enomem(err, "probe");
	pl.base = p->pool;
	pl.len = 0;
	copy_cfg(&pl, &p->cfg, cfg);
	p->ops = ops;
	p->env = env;
	rc = ops->open(p, err);
	if (rc < 0) {
		if (err) {
			char msg[RS_ERR_MSG_MAX];

			snprintf(msg, sizeof(msg), "%s", err->msg);
			rs__err_set(err, "probe '%s' (%s): %s", cfg->name ? cfg->name : ops->name,
				    ops->name, msg);
		}
		free(p);
		return rc;
	}
	uv_timer_init(env->loop, &p->defer);
	p->defer.data = p;
	*out = p;
	return 0;
}

const struct fl_probe_cfg *fl_probe_config(const struct fl_probe_inst *p)
{
	return &p->cfg;
}

static void deliver(struct fl_probe_inst *p)
{
	struct fl_probe_sample s = p->pending;

	p->busy = false;
	p->stashed = false;
	p->cb(p->cb_ctx, &s);
}

static void on_defer(uv_timer_t *t)
{
	struct fl_probe_inst *p = t->data;

	if (p->stashed && !p->closing)
		deliver(p);
}

int fl_probe_sample(struct fl_probe_inst *p, uint64_t now_ns, fl_probe_cb cb, void *ctx)
{
	if (!p || !cb)
		return -EINVAL;
	if (p->closing)
		return -ECANCELED;
	if (p->busy)
		return -EBUSY;
	p->busy = true;
	p->stashed = false;
	p->cb = cb;
	p->cb_ctx = ctx;
	p->t_ns = now_ns;
	p->start_hr = uv_hrtime();
	p->in_sample = true;
	p->ops->sample(p, now_ns);
	p->in_sample = false;
	return 0;
}

static void fill(struct fl_probe_inst *p, int status, double value, const char *why)
{
	struct fl_probe_sample *s = &p->pending;

	memset(s, 0, sizeof(*s));
	s->t_ns = p->t_ns;
	s->dur_ns = uv_hrtime() - p->start_hr;
	s->status = status > 0 ? -status : status;
	s->value = s->status == 0 ? value : NAN;
	if (s->status != 0 && why && *why)
		snprintf(s->why, sizeof(s->why), "%s", why);
	else if (s->status != 0)
		fl_strerror_lc(-s->status, s->why, sizeof(s->why));
}

void fl__probe_done(struct fl_probe_inst *p, int status, double value, const char *fmt, ...)
{
	char why[FL_PROBE_WHY_MAX] = "";
	va_list ap;

	if (p->closing || !p->busy || p->stashed)
		return;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
	}
	fill(p, status, value, why);
	if (p->in_sample) {
		p->stashed = true;
		uv_timer_start(&p->defer, on_defer, 0, 0);
		return;
	}
	deliver(p);
}

static void maybe_free(struct fl_probe_inst *p)
{
	void (*closed)(void *ctx) = p->closed;
	void *ctx = p->closed_ctx;

	if (!p->family_closed || !p->defer_closed)
		return;
	free(p);
	if (closed)
		closed(ctx);
}

static void on_defer_closed(uv_handle_t *h)
{
	struct fl_probe_inst *p = h->data;

	p->defer_closed = true;
	maybe_free(p);
}

void fl__probe_family_closed(struct fl_probe_inst *p)
{
	p->family_closed = true;
	if (p->closing)
		maybe_free(p);
}

void fl_probe_close(struct fl_probe_inst *p, void (*closed)(void *ctx), void *ctx)
{
	bool owed;

	if (!p || p->closing)
		return;
	owed = p->busy;
	p->closing = true;
	p->closed = closed;
	p->closed_ctx = ctx;
	uv_timer_stop(&p->defer);
	p->ops->close(p);
	if (owed) {
		fill(p, -ECANCELED, 0, "cancelled: the probe is closing");
		p->busy = false;
		p->stashed = false;
		p->cb(p->cb_ctx, &p->pending);
	}
	uv_close((uv_handle_t *)&p->defer, on_defer_closed);
}

/* ---- for family files ----------------------------------------------------------- */

const struct fl_probe_env *fl__probe_env(const struct fl_probe_inst *p)
{
	return p->env;
}

void *fl__probe_priv(const struct fl_probe_inst *p)
{
	return p->priv;
}

void fl__probe_set_priv(struct fl_probe_inst *p, void *priv)
{
	p->priv = priv;
}

uint64_t fl__probe_timeout_ns(const struct fl_probe_inst *p)
{
	return p->cfg.timeout_ns ? p->cfg.timeout_ns : p->ops->default_timeout_ns;
}

static bool digit(char c)
{
	return c >= '0' && c <= '9';
}

int fl__probe_first_number(const char *s, double *v)
{
	for (const char *c = s; *c; c++) {
		bool start =
		    digit(*c) || (*c == '.' && digit(c[1])) ||
		    ((*c == '-' || *c == '+') && (digit(c[1]) || (c[1] == '.' && digit(c[2]))));
		char tok[64];
		size_t n = 0;

		if (!start)
			continue;
		/* Only decimal syntax: "0x1f" reads as 0, never as hex. */
		while (c[n] && n < sizeof(tok) - 1 &&
		       (digit(c[n]) || c[n] == '.' || c[n] == 'e' || c[n] == 'E' ||
			((c[n] == '-' || c[n] == '+') &&
			 (n == 0 || c[n - 1] == 'e' || c[n - 1] == 'E')))) {
			tok[n] = c[n];
			n++;
		}
		tok[n] = '\0';
		*v = strtod(tok, NULL);
		return 0;
	}
	return -ENOENT;
}

int fl__probe_number(const char *s, double *v)
{
	const char *c = s;
	char *end;

	while (*c == ' ' || *c == '\t')
		c++;
	if (!(digit(*c) || *c == '.' || ((*c == '-' || *c == '+') && (digit(c[1]) || c[1] == '.'))))
		return -EINVAL;
	if (strpbrk(c, "xXpP"))
		return -EINVAL;
	*v = strtod(c, &end);
	if (end == c)
		return -EINVAL;
	while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
		end++;
	return *end ? -EINVAL : 0;
}
