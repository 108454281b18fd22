/* The prometheus probe family: GET a text exposition, select one series
 * (probes/promparse.h), and yield it as a gauge, a rate or a delta. */
#include "probes/probe.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "probes/http1.h"

struct prom {
	struct fl_prom_selector sel;
	struct fl_http1 *req; /* the scrape in flight, or NULL */
	bool closing;
	uint64_t t_ns; /* now_ns of the sample in flight */
	/* The reference for RATE, INCREASE and DELTA: the last successful raw
	 * value and its time; DELTA's increase so far. */
	bool have_prev;
	double prev;
	uint64_t prev_t_ns;
	double delta;
};

static int prom_open(struct fl_probe_inst *p, struct rs_err *err)
{
	const struct fl_probe_cfg *cfg = fl_probe_config(p);
	struct fl_http1_url u;
	struct prom *st;
	int rc;

	if (!cfg->prometheus.url)
		return rs__einval(err, "prometheus.url is required");
	rc = fl_http1_url_parse(&u, cfg->prometheus.url, err);
	if (rc < 0)
		return rc;
	if (!cfg->prometheus.metric || !*cfg->prometheus.metric)
		return rs__einval(err, "prometheus.metric is required");
	for (const char *const *l = cfg->prometheus.labels; l && l[0]; l += 2)
		if (!l[1])
			return rs__einval(err, "prometheus.labels: '%s' has no value", l[0]);
	if ((unsigned)cfg->prometheus.mode > FL_PROM_INCREASE)
		return rs__einval(err, "prometheus.mode: unknown mode %d",
				  (int)cfg->prometheus.mode);
	if ((unsigned)cfg->prometheus.combine > FL_PROM_MEAN)
		return rs__einval(err, "prometheus.combine: unknown value %d",
				  (int)cfg->prometheus.combine);
	st = calloc(1, sizeof(*st));
	if (!st)
		return rs__enomem(err, "prometheus probe");
	st->sel.metric = cfg->prometheus.metric;
	st->sel.labels = cfg->prometheus.labels;
	st->sel.combine = cfg->prometheus.sum ? FL_PROM_SUM : cfg->prometheus.combine;
	fl__probe_set_priv(p, st);
	return 0;
}

/* Turns the raw value into the sample of the configured mode. */
static void finish(struct fl_probe_inst *p, struct prom *st, double raw)
{
	enum fl_prom_mode mode = fl_probe_config(p)->prometheus.mode;
	double inc;

	if (mode == FL_PROM_GAUGE) {
		fl__probe_done(p, 0, raw, NULL);
		return;
	}
	if (!st->have_prev) {
		st->have_prev = true;
		st->prev = raw;
		st->prev_t_ns = st->t_ns;
		st->delta = 0;
		if (mode == FL_PROM_DELTA)
			fl__probe_done(p, 0, 0, NULL);
		else
			fl__probe_done(p, -ENODATA, 0, "no previous sample: %s needs two",
				       mode == FL_PROM_RATE ? "a rate" : "an increase");
		return;
	}
	if (mode == FL_PROM_RATE && st->t_ns <= st->prev_t_ns) {
		fl__probe_done(p, -ENODATA, 0, "no time elapsed since the previous sample");
		return;
	}
	inc = raw >= st->prev ? raw - st->prev : raw; /* a counter that went down was reset */
	st->delta += inc;
	if (mode == FL_PROM_RATE)
		fl__probe_done(p, 0, inc / ((double)(st->t_ns - st->prev_t_ns) / 1e9), NULL);
	else if (mode == FL_PROM_INCREASE)
		fl__probe_done(p, 0, inc, NULL);
	else
		fl__probe_done(p, 0, st->delta, NULL);
	st->prev = raw;
	st->prev_t_ns = st->t_ns;
}

static void on_scrape(void *ctx, const struct fl_http1_result *r)
{
	struct fl_probe_inst *p = ctx;
	struct prom *st = fl__probe_priv(p);
	const char *url = fl_probe_config(p)->prometheus.url;
	struct fl_prom_match m;
	struct rs_err err = { "" };
	int rc;

	st->req = NULL;
	if (st->closing) {
		free(st);
		fl__probe_family_closed(p);
		return;
	}
	if (r->status < 0) {
		fl__probe_done(p, r->status, 0, "%s", r->why);
		return;
	}
	if (r->status < 200 || r->status > 299) {
		fl__probe_done(p, -EREMOTEIO, 0, "GET %.80s answered %d", url, r->status);
		return;
	}
	rc = fl_prom_select(r->body, r->body_len, &st->sel, &m, &err);
	if (rc < 0) {
		fl__probe_done(p, rc, 0, "%s", err.msg);
		return;
	}
	finish(p, st, m.value);
}

static void prom_sample(struct fl_probe_inst *p, uint64_t now_ns)
{
	struct prom *st = fl__probe_priv(p);
	struct fl_http1_opts o = {
		.url = fl_probe_config(p)->prometheus.url,
		.timeout_ns = fl__probe_timeout_ns(p),
		.body_max = FL_PROBE_BODY_MAX,
	};
	struct rs_err err = { "" };
	int rc;

	st->t_ns = now_ns;
	rc = fl_http1_request(&st->req, fl__probe_env(p)->loop, &o, on_scrape, p, &err);
	if (rc < 0)
		fl__probe_done(p, rc, 0, "%s", err.msg);
}

static void prom_close(struct fl_probe_inst *p)
{
	struct prom *st = fl__probe_priv(p);

	if (st->req) {
		st->closing = true;
		fl_http1_cancel(st->req); /* on_scrape frees and reports closed */
		return;
	}
	free(st);
	fl__probe_family_closed(p);
}

const struct fl_probe_family_ops fl__probe_prometheus_ops = {
	.name = "prometheus",
	.family = FL_PROBE_PROMETHEUS,
	.default_timeout_ns = 1000000000ull,
	.open = prom_open,
	.sample = prom_sample,
	.close = prom_close,
};
