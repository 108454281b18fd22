/* The injector registry, fault instances and the helpers the families share
 * (see injector.h). */
#include "injectors/injector.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "probes/http1.h"

static const struct fl_injector_ops *const registry[] = {
	&fl__jitter_ops,
	&fl__cache_ops,
	&fl__capacity_ops,
};

#define NOPS (sizeof(registry) / sizeof(registry[0]))

static const struct fl_injector_ops *ops_for(enum fl_fault_family family)
{
	for (size_t i = 0; i < NOPS; i++)
		if (registry[i]->family == family)
			return registry[i];
	return NULL;
}

const char *fl_fault_family_name(enum fl_fault_family family)
{
	const struct fl_injector_ops *ops = ops_for(family);

	return ops ? ops->name : "unknown";
}

/* ---- instances ------------------------------------------------------------ */

static int dup_str(const char **dst, const char *src)
{
	char *s;

	if (!src) {
		*dst = NULL;
		return 0;
	}
	s = strdup(src);
	if (!s)
		return -ENOMEM;
	*dst = s;
	return 0;
}

/* Every string fl_fault_new copies, for copying and freeing in one place. */
static size_t owned_strings(struct fl_fault *f, const char ***out, size_t cap)
{
	const char **all[16];
	size_t n = 0;

	all[n++] = &f->cfg.action;
	if (f->cfg.family == FL_FAULT_JITTER)
		all[n++] = &f->cfg.jitter.force_breaker;
	if (f->cfg.family == FL_FAULT_CACHE)
		all[n++] = &f->cfg.cache.prefix;
	all[n++] = &f->t.service_admin;
	all[n++] = &f->t.service_metrics;
	all[n++] = &f->t.dependency_admin;
	all[n++] = &f->t.dependency_metrics;
	all[n++] = &f->t.control_path;
	all[n++] = &f->t.dependency_control_path;
	all[n++] = &f->t.identity;
	for (size_t i = 0; i < n && i < cap; i++)
		out[i] = all[i];
	return n;
}

int fl_fault_new(struct fl_fault **out, const struct fl_fault_cfg *cfg,
		 const struct fl_target_info *t, const struct fl_client_hooks *h,
		 struct rs_err *err)
{
	const struct fl_injector_ops *ops = ops_for(cfg->family);
	const char **strs[16];
	struct fl_fault *f;
	size_t n;
	int rc;

	*out = NULL;
	if (!ops)
		return rs__einval(err, "fault: unknown family %d", (int)cfg->family);
	if (!cfg->action || !cfg->action[0])
		return rs__einval(err, "%s fault: an action name is required", ops->name);
	f = calloc(1, sizeof(*f));
	if (!f)
		return rs__enomem(err, "fault");
	f->ops = ops;
	f->cfg = *cfg;
	if (t)
		f->t = *t;
	if (h && h->set_lockstep) {
		f->hooks = *h;
		f->has_hooks = true;
	}
	/* Replace each borrowed string with a copy (NULL first, so that a
	 * failure half way frees only copies). */
	n = owned_strings(f, strs, 16);
	{
		const char *orig[16];

		for (size_t i = 0; i < n; i++) {
			orig[i] = *strs[i];
			*strs[i] = NULL;
		}
		for (size_t i = 0; i < n; i++)
			if (dup_str(strs[i], orig[i]) < 0) {
				fl_fault_free(f);
				return rs__enomem(err, "fault");
			}
	}
	if (ops->priv_size && !(f->priv = calloc(1, ops->priv_size))) {
		fl_fault_free(f);
		return rs__enomem(err, "fault");
	}
	if (f->t.identity)
		snprintf(f->identity, sizeof(f->identity), "%s", f->t.identity);
	else if (f->t.service_pid > 0)
		snprintf(f->identity, sizeof(f->identity), "pid %ld service",
			 (long)f->t.service_pid);
	else
		snprintf(f->identity, sizeof(f->identity), "service");
	if (ops->check && (rc = ops->check(f, err)) < 0) {
		fl_fault_free(f);
		return rc;
	}
	*out = f;
	return 0;
}

void fl_fault_free(struct fl_fault *f)
{
	const char **strs[16];
	size_t n;

	if (!f)
		return;
	n = owned_strings(f, strs, 16);
	for (size_t i = 0; i < n; i++)
		free((char *)*strs[i]);
	free(f->priv);
	free(f);
}

const char *fl_fault_action(const struct fl_fault *f)
{
	return f->cfg.action;
}

enum fl_fault_family fl_fault_family_of(const struct fl_fault *f)
{
	return f->cfg.family;
}

bool fl_fault_applied(const struct fl_fault *f)
{
	return f->applied;
}

int fl_fault_prepare(struct fl_fault *f, struct rs_err *err)
{
	return f->ops->prepare ? f->ops->prepare(f, err) : 0;
}

int fl_fault_undo_record(struct fl_fault *f, char *buf, size_t cap, struct rs_err *err)
{
	int rc;

	/* While applied (a repeat), the values read before the first apply
	 * are still the ones to restore: do not read the fault's own back. */
	if (!f->applied && f->ops->snapshot && (rc = f->ops->snapshot(f, err)) < 0)
		return rc;
	f->snapped = true;
	rc = f->ops->undo(f, buf, cap);
	if (rc == -ENOSPC)
		rs__err_set(err, "%s fault '%s': the undo record does not fit %zu bytes",
			    f->ops->name, f->cfg.action, cap);
	return rc;
}

int fl_fault_apply(struct fl_fault *f, struct rs_err *err)
{
	int rc;

	/* A repeat of an applied fault keeps the values read before the
	 * first apply: those are what revert must restore. */
	if (!f->snapped && !f->applied && f->ops->snapshot && (rc = f->ops->snapshot(f, err)) < 0)
		return rc;
	f->snapped = true;
	if ((rc = f->ops->apply(f, err)) < 0)
		return rc;
	f->applied = true;
	return 0;
}

int fl_fault_verify(struct fl_fault *f, struct rs_err *err)
{
	if (!f->applied)
		return rs__einval(err, "%s fault '%s': verify before apply", f->ops->name,
				  f->cfg.action);
	return f->ops->verify(f, err);
}

int fl_fault_revert(struct fl_fault *f, struct rs_err *err)
{
	int rc;

	if (!f->applied) {
		f->snapped = false;
		return 0;
	}
	if (f->ops->revert && (rc = f->ops->revert(f, err)) < 0)
		return rc;
	f->applied = false;
	f->snapped = false;
	return 0;
}

int fl_fault_revert_undo_msg(const char *undo_json, char *said, size_t said_cap, struct rs_err *err)
{
	cJSON *u = cJSON_Parse(undo_json ? undo_json : "");
	const cJSON *fam;
	int rc = -EINVAL;

	if (said && said_cap)
		said[0] = '\0';
	if (!cJSON_IsObject(u)) {
		rs__err_set(err, "undo record: not a JSON object: '%.80s'",
			    undo_json ? undo_json : "");
		goto out;
	}
	fam = cJSON_GetObjectItemCaseSensitive(u, "family");
	if (!cJSON_IsString(fam)) {
		rs__err_set(err, "undo record: no \"family\"");
		goto out;
	}
	for (size_t i = 0; i < NOPS; i++)
		if (strcmp(registry[i]->name, fam->valuestring) == 0) {
			rc = registry[i]->revert_undo(u, said, said_cap, err);
			goto out;
		}
	rs__err_set(err, "undo record: unknown family '%.40s' (written by a newer faultline?)",
		    fam->valuestring);
out:
	cJSON_Delete(u);
	return rc;
}

int fl_fault_revert_undo(const char *undo_json, struct rs_err *err)
{
	return fl_fault_revert_undo_msg(undo_json, NULL, 0, err);
}

/* ---- process identity ----------------------------------------------------- */

int fl_proc_start_time(pid_t pid, uint64_t *ticks)
{
	char path[64], buf[1024], *p;
	unsigned long long v;
	size_t n;
	FILE *f;

	*ticks = 0;
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name (field 2) may hold spaces and parentheses: fields
	 * are counted after its last ')'.  starttime is field 22. */
	p = strrchr(buf, ')');
	if (!p)
		return -EPROTO;
	p++;
	for (int field = 2; field < 21; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EPROTO;
	}
	if (sscanf(p, " %llu", &v) != 1)
		return -EPROTO;
	*ticks = v;
	return 0;
}

bool fl_proc_alive(pid_t pid, uint64_t start_ticks)
{
	uint64_t now;

	if (pid <= 0)
		return false;
	if (kill(pid, 0) < 0 && errno != EPERM)
		return false;
	if (start_ticks == 0)
		return true;
	if (fl_proc_start_time(pid, &now) < 0)
		return true; /* exists, start time unreadable: assume it is the one */
	return now == start_ticks;
}

/* ---- shared helpers ------------------------------------------------------- */

uint64_t fl__timeout(const struct fl_fault *f)
{
	return f->cfg.timeout_ns ? f->cfg.timeout_ns : FL_FAULT_TIMEOUT_NS;
}

int fl__http(const char *method, const char *url, uint64_t timeout_ns, char *buf, size_t cap,
	     const char *what, struct rs_err *err)
{
	struct rs_err e = { "" };
	int status = 0, rc;

	rc = fl_http1_request_sync(method, url, NULL, timeout_ns, &status, buf, cap, &e);
	if (rc < 0) {
		rs__err_set(err, "%s: %s %s: %s", what, method, url, e.msg);
		return rc;
	}
	if (status != 200) {
		size_t l = strcspn(buf, "\n");

		rs__err_set(err, "%s: %s %s answered %d%s%.*s", what, method, url, status,
			    l ? ": " : "", (int)(l < 100 ? l : 100), buf);
		return -EPROTO;
	}
	return 0;
}

int fl__json_number(const char *body, const char *key, double *out)
{
	cJSON *o = cJSON_Parse(body);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	int rc = -EPROTO;

	if (cJSON_IsNumber(v)) {
		*out = v->valuedouble;
		rc = 0;
	}
	cJSON_Delete(o);
	return rc;
}

bool fl__json_fmt(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*len >= cap)
		return false;
	va_start(ap, fmt);
	n = vsnprintf(buf + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap - *len)
		return false;
	*len += (size_t)n;
	return true;
}

bool fl__json_str(char *buf, size_t cap, size_t *len, const char *s)
{
	if (!fl__json_fmt(buf, cap, len, "\""))
		return false;
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		bool fits;

		if (*p == '"' || *p == '\\')
			fits = fl__json_fmt(buf, cap, len, "\\%c", *p);
		else if (*p < 0x20)
			fits = fl__json_fmt(buf, cap, len, "\\u%04x", *p);
		else
			fits = fl__json_fmt(buf, cap, len, "%c", *p);
		if (!fits)
			return false;
	}
	return fl__json_fmt(buf, cap, len, "\"");
}

const char *fl__identity(const struct fl_fault *f, const char *role, char *buf, size_t cap)
{
	pid_t pid = strcmp(role, "dependency") == 0 ? f->t.dependency_pid : f->t.service_pid;

	if (strcmp(role, "service") == 0 && f->t.identity)
		snprintf(buf, cap, "%s", f->t.identity);
	else if (pid > 0)
		snprintf(buf, cap, "pid %ld %s", (long)pid, role);
	else
		snprintf(buf, cap, "%s", role);
	return buf;
}

bool fl__undo_head(const struct fl_fault *f, const char *role, char *buf, size_t cap, size_t *len)
{
	pid_t pid = strcmp(role, "dependency") == 0 ? f->t.dependency_pid : f->t.service_pid;
	uint64_t start = 0;
	char who[128];

	if (pid > 0)
		fl_proc_start_time(pid, &start);
	return fl__json_fmt(buf, cap, len,
			    "{\"v\":1,\"family\":\"%s\",\"action\":", f->ops->name) &&
	       fl__json_str(buf, cap, len, f->cfg.action) &&
	       fl__json_fmt(buf, cap, len, ",\"target\":") &&
	       fl__json_str(buf, cap, len, fl__identity(f, role, who, sizeof(who))) &&
	       fl__json_fmt(buf, cap, len, ",\"role\":\"%s\",\"pid\":%ld,\"pid_start\":%llu", role,
			    (long)(pid > 0 ? pid : 0), (unsigned long long)start);
}
