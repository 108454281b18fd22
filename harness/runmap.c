/* Model -> probe and fault configurations; the blast-radius check
 * (runmap.h). */
#include "harness/runmap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Expands late variables of s into the arena; NULL stays NULL. */
static int late(struct fl_arena *a, const char *s, const struct fl_ports *ports, const char **out,
		struct rs_err *err)
{
	char buf[FL_MAX_EXPANDED];
	int n;

	*out = NULL;
	if (!s)
		return 0;
	if (!strstr(s, "${") && !strstr(s, "$$")) {
		*out = s;
		return 0;
	}
	n = fl_expand_late(s, ports, buf, sizeof(buf), err);
	if (n < 0)
		return n == -ENOSPC ? rs__einval(err, "'%.60s' is too long once expanded", s) : n;
	*out = fl_arena_strndup(a, buf, (size_t)n);
	return *out ? 0 : -ENOMEM;
}

/* base (no trailing '/') + path, in the arena. */
static const char *join(struct fl_arena *a, const char *base, const char *path)
{
	size_t bl = strlen(base), pl = strlen(path);
	char *r;

	while (bl && base[bl - 1] == '/')
		bl--;
	r = fl_arena_alloc(a, bl + pl + 2);
	if (!r)
		return NULL;
	memcpy(r, base, bl);
	if (path[0] != '/')
		r[bl++] = '/';
	memcpy(r + bl, path, pl + 1);
	return r;
}

static bool is_dep(const struct fl_params *p)
{
	return strcmp(fl_params_str(p, "role", "service"), "dependency") == 0;
}

static int map_prometheus(const struct fl_probe *mp, const struct fl_run_where *w,
			  struct fl_arena *a, struct fl_probe_cfg *cfg, struct rs_err *err)
{
	const struct fl_params *p = &mp->params;
	const struct fl_pval *labels = fl_params_get(p, "labels");
	const char *mode = fl_params_str(p, "mode", "gauge");
	const char *combine = fl_params_str(p, "combine", "sum");
	const char *url = fl_params_str(p, "url", NULL);
	int rc;

	if (url) {
		if ((rc = late(a, url, w->ports, &cfg->prometheus.url, err)) < 0)
			return rc;
	} else {
		cfg->prometheus.url = is_dep(p) ? w->dep_metrics : w->svc_metrics;
		if (!cfg->prometheus.url)
			return rs__einval(err,
					  "probe '%s': the %s has no metrics endpoint (give the "
					  "probe a url)",
					  mp->name, is_dep(p) ? "dependency" : "service");
	}
	cfg->prometheus.metric = fl_params_str(p, "metric", NULL);
	cfg->prometheus.labels = labels && labels->set && labels->n ? labels->strv : NULL;
	if (strcmp(mode, "rate") == 0)
		cfg->prometheus.mode = FL_PROM_RATE;
	else if (strcmp(mode, "delta") == 0)
		cfg->prometheus.mode = FL_PROM_DELTA; /* since the probe's first sample */
	else
		cfg->prometheus.mode = FL_PROM_GAUGE;
	if (strcmp(combine, "max") == 0)
		cfg->prometheus.combine = FL_PROM_MAX;
	else if (strcmp(combine, "min") == 0)
		cfg->prometheus.combine = FL_PROM_MIN;
	else if (strcmp(combine, "mean") == 0)
		cfg->prometheus.combine = FL_PROM_MEAN;
	else
		cfg->prometheus.combine = FL_PROM_SUM;
	cfg->prometheus.sum = cfg->prometheus.combine == FL_PROM_SUM;
	return 0;
}

static int map_http(const struct fl_probe *mp, const struct fl_run_where *w, struct fl_arena *a,
		    struct fl_probe_cfg *cfg, struct rs_err *err)
{
	const struct fl_params *p = &mp->params;
	const char *url = fl_params_str(p, "url", NULL), *path = fl_params_str(p, "path", NULL);
	const char *value = fl_params_str(p, "value", "ok");
	const struct fl_pval *hdr = fl_params_get(p, "header");
	int rc;

	if (url) {
		if ((rc = late(a, url, w->ports, &cfg->http.url, err)) < 0)
			return rc;
	} else {
		const char *base = is_dep(p) ? w->dep_url : w->svc_url;

		if (!base)
			return rs__einval(err, "probe '%s': the %s has no url", mp->name,
					  is_dep(p) ? "dependency" : "service");
		if (!(cfg->http.url = join(a, base, path ? path : "/")))
			return -ENOMEM;
	}
	cfg->http.method = fl_params_str(p, "method", "GET");
	cfg->http.expect_status = (int)fl_params_int(p, "status", 200);
	cfg->http.body_regex = fl_params_str(p, "body", NULL);
	cfg->http.headers = hdr && hdr->set && hdr->n ? hdr->strv : NULL;
	if (strcmp(value, "status") == 0)
		cfg->http.value = FL_HTTP_STATUS;
	else if (strcmp(value, "latency") == 0)
		cfg->http.value = FL_HTTP_LATENCY_SECONDS;
	else
		cfg->http.value = FL_HTTP_OK;
	return 0;
}

static int map_command(const struct fl_probe *mp, const struct fl_run_where *w, struct fl_arena *a,
		       struct fl_probe_cfg *cfg, struct rs_err *err)
{
	const struct fl_params *p = &mp->params;
	const struct fl_pval *argv = fl_params_get(p, "argv"), *env = fl_params_get(p, "env");
	const char *value = fl_params_str(p, "value", "exit");
	const char **av, **ev = NULL;
	int rc;

	av = fl_arena_alloc(a, (argv->n + 1) * sizeof(*av));
	if (!av)
		return -ENOMEM;
	for (size_t i = 0; i < argv->n; i++)
		if ((rc = late(a, argv->strv[i], w->ports, &av[i], err)) < 0)
			return rc;
	if (env && env->set && env->n) {
		ev = fl_arena_alloc(a, (env->n + 1) * sizeof(*ev));
		if (!ev)
			return -ENOMEM;
		for (size_t i = 0; i < env->n; i++) {
			const char *v;
			char *kv;
			size_t kl = strlen(env->strv[2 * i]), vl;

			if ((rc = late(a, env->strv[2 * i + 1], w->ports, &v, err)) < 0)
				return rc;
			vl = strlen(v);
			if (!(kv = fl_arena_alloc(a, kl + vl + 2)))
				return -ENOMEM;
			memcpy(kv, env->strv[2 * i], kl);
			kv[kl] = '=';
			memcpy(kv + kl + 1, v, vl + 1);
			ev[i] = kv;
		}
	}
	cfg->command.argv = av;
	cfg->command.env = ev;
	cfg->command.regex = fl_params_str(p, "regex", NULL);
	cfg->command.cwd = fl_params_str(p, "cwd", w->exp_dir);
	if (strcmp(value, "number") == 0)
		cfg->command.value = cfg->command.regex ? FL_CMD_REGEX_NUMBER : FL_CMD_NUMBER;
	else if (strcmp(value, "regex") == 0)
		cfg->command.value = FL_CMD_REGEX_MATCH;
	else
		cfg->command.value = FL_CMD_EXIT;
	return 0;
}

static int map_client(const struct fl_probe *mp, struct fl_arena *a, struct fl_probe_cfg *cfg)
{
	const char *metric = fl_params_str(&mp->params, "metric", "");
	const char *lat = fl_params_str(&mp->params, "latency", "corrected");
	char *m;

	if (strncmp(metric, "latency_", 8) != 0 || strcmp(lat, "corrected") == 0) {
		cfg->client.metric = metric;
		return 0;
	}
	m = fl_arena_alloc(a, strlen(metric) + strlen(lat) + 2);
	if (!m)
		return -ENOMEM;
	sprintf(m, "%s@%s", metric, lat);
	cfg->client.metric = m;
	return 0;
}

int fl_map_probe(const struct fl_probe *p, const struct fl_run_where *w, struct fl_arena *a,
		 struct fl_probe_cfg *cfg, struct rs_err *err)
{
	const char *fam = p->family->name;

	memset(cfg, 0, sizeof(*cfg));
	cfg->name = p->name;
	if (fl_params_get(&p->params, "timeout"))
		cfg->timeout_ns = fl_params_ns(&p->params, "timeout", 0);
	if (strcmp(fam, "prometheus") == 0) {
		cfg->family = FL_PROBE_PROMETHEUS;
		return map_prometheus(p, w, a, cfg, err);
	}
	if (strcmp(fam, "http") == 0) {
		cfg->family = FL_PROBE_HTTP;
		return map_http(p, w, a, cfg, err);
	}
	if (strcmp(fam, "command") == 0) {
		cfg->family = FL_PROBE_COMMAND;
		return map_command(p, w, a, cfg, err);
	}
	if (strcmp(fam, "client") == 0) {
		cfg->family = FL_PROBE_CLIENT;
		return map_client(p, a, cfg);
	}
	return rs__einval(err, "probe '%s': this build has no '%s' probe", p->name, fam);
}

static enum fl_fault_role role_of(const char *s)
{
	if (!s)
		return FL_FAULT_ROLE_DEFAULT;
	if (strcmp(s, "service") == 0)
		return FL_FAULT_ROLE_SERVICE;
	if (strcmp(s, "dependency") == 0)
		return FL_FAULT_ROLE_DEPENDENCY;
	if (strcmp(s, "both") == 0)
		return FL_FAULT_ROLE_BOTH;
	return FL_FAULT_ROLE_DEFAULT;
}

int fl_map_fault(const struct fl_action *act, const struct fl_load_spec *load,
		 struct fl_fault_cfg *cfg, struct rs_err *err)
{
	const struct fl_params *p = &act->params;
	const char *fam = act->family->name;

	memset(cfg, 0, sizeof(*cfg));
	cfg->action = act->name;
	if (strcmp(fam, "jitter") == 0) {
		const char *side = fl_params_str(p, "side", "both");
		const char *retries = fl_params_str(p, "retries", "keep");
		const char *force = fl_params_str(p, "force", NULL);

		cfg->family = FL_FAULT_JITTER;
		cfg->jitter.target = strcmp(side, "client") != 0;
		cfg->jitter.client = strcmp(side, "target") != 0;
		cfg->jitter.role = role_of(fl_params_str(p, "role", "service"));
		cfg->jitter.pause_retries = strcmp(retries, "pause") == 0;
		cfg->jitter.resume_retries = strcmp(retries, "resume") == 0;
		cfg->jitter.force_breaker = fl_params_str(p, "breaker", NULL);
		cfg->jitter.force = !force			 ? RS_FORCE_NONE
				    : strcmp(force, "open") == 0 ? RS_FORCE_OPEN
								 : RS_FORCE_CLOSED;
		cfg->jitter.tick_ns = fl_params_ns(p, "tick", load->retry_base_ns);
		return 0;
	}
	if (strcmp(fam, "cache") == 0) {
		const char *mode = fl_params_str(p, "mode", "flush");

		cfg->family = FL_FAULT_CACHE;
		cfg->cache.op = strcmp(mode, "prefix") == 0   ? FL_CACHE_FLUSH_PREFIX
				: strcmp(mode, "expire") == 0 ? FL_CACHE_EXPIRE
							      : FL_CACHE_FLUSH_ALL;
		cfg->cache.prefix = fl_params_str(p, "prefix", NULL);
		cfg->cache.interval_ns = act->repeat_ns;
		cfg->cache.expire_in_ns = fl_params_ns(p, "expire_in", 0);
		return 0;
	}
	if (strcmp(fam, "capacity") == 0) {
		cfg->family = FL_FAULT_CAPACITY;
		cfg->capacity.factor = fl_params_num(p, "factor", 1);
		cfg->capacity.role = role_of(fl_params_str(p, "role", "dependency"));
		return 0;
	}
	return rs__einval(err, "action '%s': this build has no injector for '%s' faults", act->name,
			  fam);
}

bool fl_host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	char h[64];
	size_t n = strlen(host);

	if (n >= sizeof(h))
		return false;
	if (host[0] == '[' && n >= 2 && host[n - 1] == ']') {
		memcpy(h, host + 1, n - 2);
		h[n - 2] = '\0';
	} else {
		memcpy(h, host, n + 1);
	}
	if (strcasecmp(h, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, h, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, h, &a6) == 1) {
		if (IN6_IS_ADDR_LOOPBACK(&a6))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127;
	}
	return false;
}

char *fl_url_host(const char *url, char *buf, size_t size)
{
	const char *h, *e;
	size_t n;

	if (strncmp(url, "http://", 7) != 0 || size == 0)
		return NULL;
	h = url + 7;
	if (*h == '[') {
		e = strchr(h, ']');
		if (!e)
			return NULL;
		h++;
	} else {
		e = h + strcspn(h, ":/?#");
	}
	n = (size_t)(e - h);
	if (n == 0 || n >= size)
		return NULL;
	memcpy(buf, h, n);
	buf[n] = '\0';
	return buf;
}

static int check_url(const char *field, const char *url, const char *const *allow, size_t nallow,
		     struct rs_err *err)
{
	static const struct fl_ports any = { 1, 1, 1, 1 };
	char buf[2048], host[256];
	struct rs_err e2;

	if (!url)
		return 0;
	if (fl_expand_late(url, &any, buf, sizeof(buf), &e2) < 0)
		snprintf(buf, sizeof(buf), "%s", url);
	if (!fl_url_host(buf, host, sizeof(host)))
		return 0; /* not an http URL: the validator reported it */
	if (fl_host_is_loopback(host))
		return 0;
	for (size_t i = 0; i < nallow; i++)
		if (strcasecmp(allow[i], host) == 0)
			return 0;
	rs__err_set(err,
		    "%s: '%.200s' is not on this machine (host '%s' is not a loopback address); "
		    "faultline only touches 127.0.0.0/8, ::1 and localhost unless you pass "
		    "--allow-host %s",
		    field, url, host, host);
	return -EPERM;
}

int fl_check_blast_radius(const struct fl_experiment *x, const char *const *allow, size_t nallow,
			  struct rs_err *err)
{
	int rc = 0;

	if (x->service.present) {
		rc = rc ? rc : check_url("target.url", x->service.url, allow, nallow, err);
		rc = rc ? rc : check_url("target.admin", x->service.admin, allow, nallow, err);
	}
	if (x->dependency.present) {
		rc = rc ? rc
			: check_url("target.dependency.url", x->dependency.url, allow, nallow, err);
		rc = rc ? rc
			: check_url("target.dependency.admin", x->dependency.admin, allow, nallow,
				    err);
	}
	rc = rc ? rc : check_url("load.url", x->load.url, allow, nallow, err);
	for (size_t i = 0; !rc && i < x->nprobes; i++) {
		const char *u = fl_params_str(&x->probes[i].params, "url", NULL);
		char field[160];

		if (!u)
			continue;
		snprintf(field, sizeof(field), "probe '%s' url", x->probes[i].name);
		rc = check_url(field, u, allow, nallow, err);
	}
	return rc;
}

bool fl_client_metric_cumulative(const char *m)
{
	static const char *const cum[] = { "requests", "attempts", "successes", "failures",
					   "timeouts" };

	for (size_t i = 0; i < sizeof(cum) / sizeof(cum[0]); i++)
		if (strcmp(m, cum[i]) == 0)
			return true;
	return false;
}
