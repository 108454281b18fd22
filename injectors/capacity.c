/* The capacity fault: scale a target process's worker speed through its
 * admin endpoint (POST /admin/capacity?factor=F), the metastability trigger.
 * Verify reads GET /admin/capacity back; revert restores the factor read
 * just before apply. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "injectors/injector.h"
#include "probes/http1.h"

#define BODY_MAX 512
#define URL_MAX	 512

struct capacity {
	double prev; /* the factor before apply */
};

/* The shortest %g that reads back as v (so 0.3 prints "0.3"). */
static const char *num(double v, char *buf, size_t cap)
{
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, cap, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	return buf;
}

static const char *role_name(const struct fl_fault *f)
{
	return f->cfg.capacity.role == FL_FAULT_ROLE_SERVICE ? "service" : "dependency";
}

static const char *admin_of(const struct fl_fault *f)
{
	return f->cfg.capacity.role == FL_FAULT_ROLE_SERVICE ? f->t.service_admin
							     : f->t.dependency_admin;
}

/* admin + path, without a doubled '/'. */
static int admin_url(char *buf, size_t cap, const char *admin, const char *path)
{
	size_t l = strlen(admin);
	int n;

	while (l > 0 && admin[l - 1] == '/')
		l--;
	n = snprintf(buf, cap, "%.*s%s", (int)l, admin, path);
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* GET or POST on /admin/capacity; *factor gets what the answer says. */
static int call(const char *admin, const char *method, const double *set, uint64_t timeout_ns,
		double *factor, const char *what, struct rs_err *err)
{
	char url[URL_MAX], path[64], body[BODY_MAX], n[32];
	int rc;

	if (set)
		snprintf(path, sizeof(path), "/admin/capacity?factor=%s", num(*set, n, sizeof(n)));
	else
		snprintf(path, sizeof(path), "/admin/capacity");
	if (admin_url(url, sizeof(url), admin, path) < 0)
		return rs__einval(err, "%s: admin url too long", what);
	if ((rc = fl__http(method, url, timeout_ns, body, sizeof(body), what, err)) < 0)
		return rc;
	if (fl__json_number(body, "factor", factor) < 0) {
		rs__err_set(err, "%s: %s %s: no \"factor\" in the answer '%.80s'", what, method,
			    url, body);
		return -EPROTO;
	}
	return 0;
}

static int cap_check(const struct fl_fault *f, struct rs_err *err)
{
	double v = f->cfg.capacity.factor;

	if (!isfinite(v) || v < 0 || v > 1e6)
		return rs__einval(err, "capacity fault '%s': factor must be in [0, 1e6], got %g",
				  f->cfg.action, v);
	if (f->cfg.capacity.role == FL_FAULT_ROLE_BOTH)
		return rs__einval(err, "capacity fault '%s': role must be service or dependency",
				  f->cfg.action);
	return 0;
}

static int cap_prepare(struct fl_fault *f, struct rs_err *err)
{
	char what[160];
	double now;

	snprintf(what, sizeof(what), "capacity fault '%s'", f->cfg.action);
	if (!admin_of(f)) {
		rs__err_set(err,
			    "%s: the %s has no admin endpoint (give target.%sadmin, or let "
			    "faultline start it)",
			    what, role_name(f),
			    f->cfg.capacity.role == FL_FAULT_ROLE_SERVICE ? "" : "dependency.");
		return -ENOENT;
	}
	/* A read: proves the endpoint exists and answers as expected. */
	return call(admin_of(f), "GET", NULL, fl__timeout(f), &now, what, err);
}

static int cap_snapshot(struct fl_fault *f, struct rs_err *err)
{
	struct capacity *c = f->priv;
	char what[160];

	snprintf(what, sizeof(what), "capacity fault '%s': reading the previous factor",
		 f->cfg.action);
	return call(admin_of(f), "GET", NULL, fl__timeout(f), &c->prev, what, err);
}

static int cap_undo(struct fl_fault *f, char *buf, size_t cap)
{
	const struct capacity *c = f->priv;
	char a[32], b[32];
	size_t len = 0;

	if (!fl__undo_head(f, role_name(f), buf, cap, &len) ||
	    !fl__json_fmt(buf, cap, &len, ",\"admin\":") ||
	    !fl__json_str(buf, cap, &len, admin_of(f)) ||
	    !fl__json_fmt(buf, cap, &len, ",\"prev\":{\"factor\":%s},\"factor\":%s}",
			  num(c->prev, a, sizeof(a)), num(f->cfg.capacity.factor, b, sizeof(b))))
		return -ENOSPC;
	return (int)len;
}

static int set_and_check(const char *admin, double want, uint64_t timeout_ns, const char *what,
			 struct rs_err *err)
{
	char a[32], b[32];
	double got;
	int rc;

	if ((rc = call(admin, "POST", &want, timeout_ns, &got, what, err)) < 0)
		return rc;
	if (got != want) {
		rs__err_set(err, "%s: asked for factor %s, the target answered %s", what,
			    num(want, a, sizeof(a)), num(got, b, sizeof(b)));
		return -EPROTO;
	}
	return 0;
}

static int cap_apply(struct fl_fault *f, struct rs_err *err)
{
	char what[160];

	snprintf(what, sizeof(what), "capacity fault '%s': apply", f->cfg.action);
	return set_and_check(admin_of(f), f->cfg.capacity.factor, fl__timeout(f), what, err);
}

static int cap_verify(struct fl_fault *f, struct rs_err *err)
{
	char what[160], a[32], b[32];
	double got;
	int rc;

	snprintf(what, sizeof(what), "capacity fault '%s': verify", f->cfg.action);
	if ((rc = call(admin_of(f), "GET", NULL, fl__timeout(f), &got, what, err)) < 0)
		return rc;
	if (got != f->cfg.capacity.factor) {
		rs__err_set(err, "%s: GET /admin/capacity reads factor %s, not %s", what,
			    num(got, a, sizeof(a)), num(f->cfg.capacity.factor, b, sizeof(b)));
		return -EPROTO;
	}
	return 0;
}

static int cap_revert(struct fl_fault *f, struct rs_err *err)
{
	const struct capacity *c = f->priv;
	char what[160], n[32];

	snprintf(what, sizeof(what), "capacity fault '%s': revert to factor %s", f->cfg.action,
		 num(c->prev, n, sizeof(n)));
	return set_and_check(admin_of(f), c->prev, fl__timeout(f), what, err);
}

static int cap_revert_undo(const void *undo, char *said, size_t cap, struct rs_err *err)
{
	const cJSON *u = undo;
	const cJSON *admin = cJSON_GetObjectItemCaseSensitive(u, "admin");
	const cJSON *prev = cJSON_GetObjectItemCaseSensitive(u, "prev");
	const cJSON *factor = cJSON_GetObjectItemCaseSensitive(prev, "factor");
	const cJSON *target = cJSON_GetObjectItemCaseSensitive(u, "target");
	const cJSON *pid = cJSON_GetObjectItemCaseSensitive(u, "pid");
	const cJSON *start = cJSON_GetObjectItemCaseSensitive(u, "pid_start");
	const char *who = cJSON_IsString(target) ? target->valuestring : "the target";
	char what[256], n[32];
	int rc;

	if (!cJSON_IsString(admin) || !cJSON_IsNumber(factor))
		return rs__einval(err, "capacity undo record: needs \"admin\" and \"prev\": "
				       "{\"factor\"}");
	if (cJSON_IsNumber(pid) && pid->valuedouble > 0 &&
	    !fl_proc_alive((pid_t)pid->valuedouble,
			   cJSON_IsNumber(start) ? (uint64_t)start->valuedouble : 0)) {
		if (said)
			snprintf(said, cap,
				 "nothing to undo for capacity on %s: the process is gone", who);
		return 0;
	}
	snprintf(what, sizeof(what), "reverting capacity on %s", who);
	rc = set_and_check(admin->valuestring, factor->valuedouble, FL_FAULT_TIMEOUT_NS, what, err);
	if (rc == 0 && said)
		snprintf(said, cap, "reverted capacity on %s (admin %s): factor %s again", who,
			 admin->valuestring, num(factor->valuedouble, n, sizeof(n)));
	return rc;
}

const struct fl_injector_ops fl__capacity_ops = {
	.family = FL_FAULT_CAPACITY,
	.name = "capacity",
	.priv_size = sizeof(struct capacity),
	.check = cap_check,
	.prepare = cap_prepare,
	.snapshot = cap_snapshot,
	.undo = cap_undo,
	.apply = cap_apply,
	.verify = cap_verify,
	.revert = cap_revert,
	.revert_undo = cap_revert_undo,
};
