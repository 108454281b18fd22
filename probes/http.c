/* The http probe family: one request per sample; yields ok (status, body
 * regex, header regexes), the status, the latency or a header's number. */
#include "probes/probe.h"

#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "probes/http1.h"

struct hp {
	struct fl_http1 *req; /* in flight, or NULL */
	bool closing;
	bool has_body_rx;
	regex_t body_rx;
	size_t nhdr;	 /* header regexes compiled */
	regex_t *hdr_rx; /* one per cfg.http.headers pair */
};

static void hp_free(struct hp *st)
{
	if (st->has_body_rx)
		regfree(&st->body_rx);
	for (size_t i = 0; i < st->nhdr; i++)
		regfree(&st->hdr_rx[i]);
	free(st->hdr_rx);
	free(st);
}

static int compile(regex_t *rx, const char *what, const char *re, struct rs_err *err)
{
	char msg[120];
	int rc = regcomp(rx, re, REG_EXTENDED | REG_NOSUB | REG_NEWLINE);

	if (rc == 0)
		return 0;
	regerror(rc, rx, msg, sizeof(msg));
	if (msg[0] >= 'A' && msg[0] <= 'Z')
		msg[0] = (char)(msg[0] - 'A' + 'a');
	return rs__einval(err, "%s: bad regular expression '%.60s': %s", what, re, msg);
}

static int http_open(struct fl_probe_inst *p, struct rs_err *err)
{
	const struct fl_probe_cfg *cfg = fl_probe_config(p);
	struct fl_http1_url u;
	struct hp *st;
	size_t n = 0;
	int rc;

	if (!cfg->http.url)
		return rs__einval(err, "http.url is required");
	rc = fl_http1_url_parse(&u, cfg->http.url, err);
	if (rc < 0)
		return rc;
	if (cfg->http.method) {
		const char *m = cfg->http.method;

		if (!*m || strlen(m) > 16 || strspn(m, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(m))
			return rs__einval(err, "http.method: bad method '%.20s'", m);
	}
	if (cfg->http.expect_status != 0 &&
	    (cfg->http.expect_status < 100 || cfg->http.expect_status > 599))
		return rs__einval(err, "http.expect_status must be 0 or in 100..599, got %d",
				  cfg->http.expect_status);
	if ((unsigned)cfg->http.value > FL_HTTP_HEADER_NUMBER)
		return rs__einval(err, "http.value: unknown value %d", (int)cfg->http.value);
	if (cfg->http.value == FL_HTTP_HEADER_NUMBER && (!cfg->http.header || !*cfg->http.header))
		return rs__einval(err, "http.value header-number needs http.header");
	for (const char *const *h = cfg->http.headers; h && h[0]; h += 2, n++)
		if (!h[1])
			return rs__einval(err, "http.headers: '%s' has no regular expression",
					  h[0]);
	st = calloc(1, sizeof(*st));
	if (!st || (n && !(st->hdr_rx = calloc(n, sizeof(regex_t))))) {
		free(st);
		return rs__enomem(err, "http probe");
	}
	if (cfg->http.body_regex) {
		rc = compile(&st->body_rx, "http.body_regex", cfg->http.body_regex, err);
		if (rc < 0)
			goto fail;
		st->has_body_rx = true;
	}
	for (size_t i = 0; i < n; i++) {
		rc = compile(&st->hdr_rx[i], cfg->http.headers[2 * i], cfg->http.headers[2 * i + 1],
			     err);
		if (rc < 0)
			goto fail;
		st->nhdr++;
	}
	fl__probe_set_priv(p, st);
	return 0;
fail:
	hp_free(st);
	return rc;
}

static void on_response(void *ctx, const struct fl_http1_result *r)
{
	struct fl_probe_inst *p = ctx;
	struct hp *st = fl__probe_priv(p);
	const struct fl_probe_cfg *cfg = fl_probe_config(p);
	bool ok;
	double v;

	st->req = NULL;
	if (st->closing) {
		hp_free(st);
		fl__probe_family_closed(p);
		return;
	}
	if (r->status < 0) {
		fl__probe_done(p, r->status, 0, "%s", r->why);
		return;
	}
	switch (cfg->http.value) {
	case FL_HTTP_STATUS:
		fl__probe_done(p, 0, r->status, NULL);
		return;
	case FL_HTTP_LATENCY_SECONDS:
		fl__probe_done(p, 0, (double)r->dur_ns / 1e9, NULL);
		return;
	case FL_HTTP_HEADER_NUMBER: {
		const char *h = fl_http1_result_header(r, cfg->http.header);

		if (!h)
			fl__probe_done(p, -ENOENT, 0,
				       "no header '%.40s' in the response (status %d)",
				       cfg->http.header, r->status);
		else if (fl__probe_number(h, &v) < 0)
			fl__probe_done(p, -EINVAL, 0, "header '%.40s': '%.40s' is not a number",
				       cfg->http.header, h);
		else
			fl__probe_done(p, 0, v, NULL);
		return;
	}
	case FL_HTTP_OK:
		break;
	}
	ok = cfg->http.expect_status ? r->status == cfg->http.expect_status
				     : r->status >= 200 && r->status <= 299;
	if (ok && st->has_body_rx)
		ok = regexec(&st->body_rx, r->body, 0, NULL, 0) == 0;
	for (size_t i = 0; ok && i < st->nhdr; i++) {
		const char *h = fl_http1_result_header(r, cfg->http.headers[2 * i]);

		ok = h && regexec(&st->hdr_rx[i], h, 0, NULL, 0) == 0;
	}
	fl__probe_done(p, 0, ok ? 1 : 0, NULL);
}

static void http_sample(struct fl_probe_inst *p, uint64_t now_ns)
{
	struct hp *st = fl__probe_priv(p);
	const struct fl_probe_cfg *cfg = fl_probe_config(p);
	struct fl_http1_opts o = {
		.method = cfg->http.method,
		.url = cfg->http.url,
		.body = cfg->http.request_body,
		.body_len = cfg->http.request_body ? strlen(cfg->http.request_body) : 0,
		.content_type = "text/plain",
		.timeout_ns = fl__probe_timeout_ns(p),
		.body_max = FL_PROBE_BODY_MAX,
	};
	struct rs_err err = { "" };
	int rc;

	(void)now_ns;
	rc = fl_http1_request(&st->req, fl__probe_env(p)->loop, &o, on_response, p, &err);
	if (rc < 0)
		fl__probe_done(p, rc, 0, "%s", err.msg);
}

static void http_close(struct fl_probe_inst *p)
{
	struct hp *st = fl__probe_priv(p);

	if (st->req) {
		st->closing = true;
		fl_http1_cancel(st->req); /* on_response frees and reports closed */
		return;
	}
	hp_free(st);
	fl__probe_family_closed(p);
}

const struct fl_probe_family_ops fl__probe_http_ops = {
	.name = "http",
	.family = FL_PROBE_HTTP,
	.default_timeout_ns = 1000000000ull,
	.open = http_open,
	.sample = http_sample,
	.close = http_close,
};
