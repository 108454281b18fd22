/* The jitter fault: remove retry and timer jitter.
 *
 * Target side: the control block each chosen process maps (resilience/
 * control.h): jitter_enabled = 0, optionally retries paused or resumed and
 * a breaker forced.  The block is opened for each operation (never
 * created: the target made it), so a target restarted on the same file is
 * still reached.  Verify reads the block back and the process's
 * resilience_jitter_enabled{name=ROLE} gauge (and
 * resilience_retries_paused{name=ROLE} when retries change).
 *
 * Client side: the load generator's lockstep retries, through the runner's
 * hooks; verify reads them back with is_lockstep.  After a crash there is
 * nothing to undo on that side: the load generator died with the run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "injectors/injector.h"
#include "probes/http1.h"
#include "probes/promparse.h"

#define METRICS_MAX (1u << 20)
#define MAX_SIDES   2

struct side {
	const char *role; /* "service" or "dependency" */
	bool prev_jitter, prev_paused;
	enum rs_control_force prev_force;
};

struct jitter {
	struct side sides[MAX_SIDES];
	size_t nsides;
};

static void sides_init(const struct fl_fault *f, struct jitter *j)
{
	enum fl_fault_role r = f->cfg.jitter.role;

	j->nsides = 0;
	if (!f->cfg.jitter.target)
		return;
	if (r == FL_FAULT_ROLE_DEFAULT || r == FL_FAULT_ROLE_SERVICE || r == FL_FAULT_ROLE_BOTH)
		j->sides[j->nsides++].role = "service";
	if (r == FL_FAULT_ROLE_DEPENDENCY || r == FL_FAULT_ROLE_BOTH)
		j->sides[j->nsides++].role = "dependency";
}

static bool is_service(const struct side *s)
{
	return strcmp(s->role, "service") == 0;
}

static const char *control_of(const struct fl_fault *f, const struct side *s)
{
	return is_service(s) ? f->t.control_path : f->t.dependency_control_path;
}

static const char *metrics_of(const struct fl_fault *f, const struct side *s)
{
	return is_service(s) ? f->t.service_metrics : f->t.dependency_metrics;
}

static bool changes_retries(const struct fl_fault *f)
{
	return f->cfg.jitter.pause_retries || f->cfg.jitter.resume_retries;
}

/* The force word of breaker `name` without claiming a slot (NONE when the
 * block has no such breaker). */
static enum rs_control_force read_force(struct rs_control *c, const char *name)
{
	struct rs_control_block *b = rs_control_block(c);

	for (size_t i = 0; i < RS_CONTROL_BREAKERS; i++) {
		struct rs_control_breaker *k = &b->breakers[i];

		if (atomic_load(&k->state) == RS_SLOT_NAMED &&
		    strncmp(k->name, name, RS_CONTROL_NAME_MAX) == 0)
			return (enum rs_control_force)atomic_load(&k->force);
	}
	return RS_FORCE_NONE;
}

static int open_block(const struct fl_fault *f, const struct side *s, struct rs_control **c,
		      struct rs_err *err)
{
	struct rs_err e = { "" };
	int rc = rs_control_open(c, control_of(f, s), 0, NULL, &e);

	if (rc < 0)
		rs__err_set(err, "jitter fault '%s': the %s's control block: %s", f->cfg.action,
			    s->role, e.msg);
	return rc;
}

/* Reads gauge `metric`{name=role} from the process's metrics endpoint. */
static int read_gauge(const struct fl_fault *f, const struct side *s, const char *metric,
		      double *value, struct rs_err *err)
{
	const char *labels[] = { "name", s->role, NULL };
	struct fl_prom_selector sel = { metric, labels, FL_PROM_ONE, true };
	struct fl_prom_match m;
	struct rs_err e = { "" };
	char what[160];
	char *body = malloc(METRICS_MAX);
	int rc;

	if (!body)
		return rs__enomem(err, "jitter fault: metrics buffer");
	snprintf(what, sizeof(what), "jitter fault '%s': reading the %s's %s", f->cfg.action,
		 s->role, metric);
	rc = fl__http("GET", metrics_of(f, s), fl__timeout(f), body, METRICS_MAX, what, err);
	if (rc == 0) {
		rc = fl_prom_select(body, strlen(body), &sel, &m, &e);
		if (rc < 0)
			rs__err_set(err, "%s from %s: %s", what, metrics_of(f, s), e.msg);
		else
			*value = m.value;
	}
	free(body);
	return rc;
}

static int jit_check(const struct fl_fault *f, struct rs_err *err)
{
	const char *a = f->cfg.action;
	const char *br = f->cfg.jitter.force_breaker;
	int force = f->cfg.jitter.force;

	if (!f->cfg.jitter.target && !f->cfg.jitter.client)
		return rs__einval(err, "jitter fault '%s': neither target nor client side chosen",
				  a);
	if (f->cfg.jitter.pause_retries && f->cfg.jitter.resume_retries)
		return rs__einval(err, "jitter fault '%s': retries cannot be paused and resumed",
				  a);
	if (br && (!br[0] || strlen(br) >= RS_CONTROL_NAME_MAX))
		return rs__einval(err, "jitter fault '%s': breaker name must be 1 to %d bytes", a,
				  RS_CONTROL_NAME_MAX - 1);
	if (br && force != RS_FORCE_OPEN && force != RS_FORCE_CLOSED)
		return rs__einval(err,
				  "jitter fault '%s': forcing breaker '%s' needs force open "
				  "or closed",
				  a, br);
	if (!br && force != RS_FORCE_NONE)
		return rs__einval(err, "jitter fault '%s': force needs a breaker name", a);
	if (!f->cfg.jitter.target && (br || changes_retries(f)))
		return rs__einval(err,
				  "jitter fault '%s': retries and breakers are target-side: "
				  "choose the target side too",
				  a);
	return 0;
}

static int jit_prepare(struct fl_fault *f, struct rs_err *err)
{
	struct jitter *j = f->priv;
	const char *a = f->cfg.action;
	int rc;

	sides_init(f, j);
	for (size_t i = 0; i < j->nsides; i++) {
		struct side *s = &j->sides[i];
		struct rs_control *c = NULL;
		double v;

		if (!control_of(f, s)) {
			rs__err_set(err,
				    "jitter fault '%s': the %s has no control block (faultline "
				    "gives one to the processes it starts; for a target started "
				    "otherwise, run it with " RS_CONTROL_ENV "=FILE and name "
				    "FILE in target%s.control)",
				    a, s->role, is_service(s) ? "" : ".dependency");
			return -ENOENT;
		}
		if ((rc = open_block(f, s, &c, err)) < 0)
			return rc;
		rs_control_free(c);
		if (!metrics_of(f, s)) {
			rs__err_set(err,
				    "jitter fault '%s': the %s has no metrics endpoint, so the "
				    "fault cannot be verified (give target%s.metrics)",
				    a, s->role, is_service(s) ? "" : ".dependency");
			return -ENOENT;
		}
		if ((rc = read_gauge(f, s, "resilience_jitter_enabled", &v, err)) < 0) {
			if (rc == -ENOENT)
				rs__err_set(err,
					    "jitter fault '%s': the %s exports no "
					    "resilience_jitter_enabled{name=\"%s\"} at %s "
					    "(is it built on the core, with " RS_CONTROL_ENV
					    " set?)",
					    a, s->role, s->role, metrics_of(f, s));
			return rc;
		}
	}
	if (f->cfg.jitter.client && (!f->has_hooks || !f->hooks.is_lockstep)) {
		rs__err_set(err,
			    "jitter fault '%s': the client side needs the load generator "
			    "(set_lockstep and is_lockstep hooks)",
			    a);
		return -ENOTSUP;
	}
	return 0;
}

static int jit_snapshot(struct fl_fault *f, struct rs_err *err)
{
	struct jitter *j = f->priv;
	int rc;

	sides_init(f, j);
	for (size_t i = 0; i < j->nsides; i++) {
		struct side *s = &j->sides[i];
		struct rs_control *c = NULL;
		struct rs_control_block *b;

		if ((rc = open_block(f, s, &c, err)) < 0)
			return rc;
		b = rs_control_block(c);
		s->prev_jitter = rs_control_jitter_enabled(b);
		s->prev_paused = rs_control_retries_paused(b);
		s->prev_force = f->cfg.jitter.force_breaker
				    ? read_force(c, f->cfg.jitter.force_breaker)
				    : RS_FORCE_NONE;
		rs_control_free(c);
	}
	return 0;
}

static int jit_undo(struct fl_fault *f, char *buf, size_t cap)
{
	const struct jitter *j = f->priv;
	const char *first = j->nsides ? j->sides[0].role : "service";
	size_t len = 0;

	if (!fl__undo_head(f, first, buf, cap, &len) ||
	    !fl__json_fmt(buf, cap, &len, ",\"client\":%s,\"controls\":[",
			  f->cfg.jitter.client ? "true" : "false"))
		return -ENOSPC;
	for (size_t i = 0; i < j->nsides; i++) {
		const struct side *s = &j->sides[i];
		char who[128];

		if (!fl__json_fmt(buf, cap, &len, "%s{\"role\":\"%s\",\"target\":", i ? "," : "",
				  s->role) ||
		    !fl__json_str(buf, cap, &len, fl__identity(f, s->role, who, sizeof(who))) ||
		    !fl__json_fmt(buf, cap, &len, ",\"path\":") ||
		    !fl__json_str(buf, cap, &len, control_of(f, s)) ||
		    !fl__json_fmt(buf, cap, &len, ",\"jitter\":%s",
				  s->prev_jitter ? "true" : "false"))
			return -ENOSPC;
		if (changes_retries(f) && !fl__json_fmt(buf, cap, &len, ",\"retries_paused\":%s",
							s->prev_paused ? "true" : "false"))
			return -ENOSPC;
		if (f->cfg.jitter.force_breaker &&
		    (!fl__json_fmt(buf, cap, &len, ",\"breaker\":") ||
		     !fl__json_str(buf, cap, &len, f->cfg.jitter.force_breaker) ||
		     !fl__json_fmt(buf, cap, &len, ",\"force\":%d", (int)s->prev_force)))
			return -ENOSPC;
		if (!fl__json_fmt(buf, cap, &len, "}"))
			return -ENOSPC;
	}
	if (!fl__json_fmt(buf, cap, &len, "]}"))
		return -ENOSPC;
	return (int)len;
}

/* Writes the values a side has while the fault holds (on) or had before
 * (off).  Control-block writes cannot fail once the block is open, except
 * claiming a breaker slot. */
static int write_side(struct fl_fault *f, const struct side *s, bool on, struct rs_err *err)
{
	struct rs_control *c = NULL;
	int rc;

	if ((rc = open_block(f, s, &c, err)) < 0)
		return rc;
	(void)rs_control_set_jitter(c, on ? false : s->prev_jitter);
	if (changes_retries(f))
		(void)rs_control_set_retries_paused(c, on ? f->cfg.jitter.pause_retries
							  : s->prev_paused);
	if (f->cfg.jitter.force_breaker) {
		struct rs_err e = { "" };

		rc = rs_control_force_breaker(
		    c, f->cfg.jitter.force_breaker,
		    on ? (enum rs_control_force)f->cfg.jitter.force : s->prev_force, NULL, &e);
		if (rc < 0)
			rs__err_set(err, "jitter fault '%s': forcing breaker '%s' in the %s: %s",
				    f->cfg.action, f->cfg.jitter.force_breaker, s->role, e.msg);
	}
	rs_control_free(c);
	return rc;
}

static int jit_apply(struct fl_fault *f, struct rs_err *err)
{
	struct jitter *j = f->priv;
	int rc;

	for (size_t i = 0; i < j->nsides; i++)
		if ((rc = write_side(f, &j->sides[i], true, err)) < 0) {
			/* Leave nothing half applied: restore the sides done. */
			for (size_t k = 0; k <= i; k++)
				(void)write_side(f, &j->sides[k], false, NULL);
			return rc;
		}
	if (f->cfg.jitter.client)
		f->hooks.set_lockstep(f->hooks.ctx, true, f->cfg.jitter.tick_ns);
	return 0;
}

static int jit_verify(struct fl_fault *f, struct rs_err *err)
{
	struct jitter *j = f->priv;
	const char *a = f->cfg.action;
	int rc;

	for (size_t i = 0; i < j->nsides; i++) {
		const struct side *s = &j->sides[i];
		struct rs_control *c = NULL;
		struct rs_control_block *b;
		bool jit, paused;
		enum rs_control_force force = RS_FORCE_NONE;
		double v;

		if ((rc = open_block(f, s, &c, err)) < 0)
			return rc;
		b = rs_control_block(c);
		jit = rs_control_jitter_enabled(b);
		paused = rs_control_retries_paused(b);
		if (f->cfg.jitter.force_breaker)
			force = read_force(c, f->cfg.jitter.force_breaker);
		rs_control_free(c);
		if (jit || (changes_retries(f) && paused != f->cfg.jitter.pause_retries) ||
		    (f->cfg.jitter.force_breaker && (int)force != f->cfg.jitter.force)) {
			rs__err_set(err,
				    "jitter fault '%s': the %s's control block reads jitter %d, "
				    "retries_paused %d, force %d after apply",
				    a, s->role, jit, paused, (int)force);
			return -EPROTO;
		}
		if ((rc = read_gauge(f, s, "resilience_jitter_enabled", &v, err)) < 0)
			return rc;
		if (v != 0) {
			rs__err_set(err,
				    "jitter fault '%s': the %s's resilience_jitter_enabled reads "
				    "%g, not 0 (does it map %s?)",
				    a, s->role, v, control_of(f, s));
			return -EPROTO;
		}
		if (changes_retries(f)) {
			double want = f->cfg.jitter.pause_retries ? 1 : 0;

			if ((rc = read_gauge(f, s, "resilience_retries_paused", &v, err)) < 0)
				return rc;
			if (v != want) {
				rs__err_set(err,
					    "jitter fault '%s': the %s's "
					    "resilience_retries_paused reads %g, not %g",
					    a, s->role, v, want);
				return -EPROTO;
			}
		}
	}
	if (f->cfg.jitter.client && !f->hooks.is_lockstep(f->hooks.ctx)) {
		rs__err_set(err,
			    "jitter fault '%s': the load generator is not in lockstep after "
			    "apply",
			    a);
		return -EPROTO;
	}
	return 0;
}

static int jit_revert(struct fl_fault *f, struct rs_err *err)
{
	struct jitter *j = f->priv;
	int rc = 0, r;

	/* Every side is tried even when one fails; the first error wins. */
	for (size_t i = j->nsides; i-- > 0;)
		if ((r = write_side(f, &j->sides[i], false, rc ? NULL : err)) < 0 && !rc)
			rc = r;
	if (f->cfg.jitter.client)
		f->hooks.set_lockstep(f->hooks.ctx, false, 0);
	return rc;
}

/* Restores one control entry of an undo record; appends to said. */
static int revert_control(const cJSON *ctl, char *said, size_t cap, size_t *slen,
			  struct rs_err *err)
{
	const cJSON *path = cJSON_GetObjectItemCaseSensitive(ctl, "path");
	const cJSON *target = cJSON_GetObjectItemCaseSensitive(ctl, "target");
	const cJSON *jit = cJSON_GetObjectItemCaseSensitive(ctl, "jitter");
	const cJSON *paused = cJSON_GetObjectItemCaseSensitive(ctl, "retries_paused");
	const cJSON *breaker = cJSON_GetObjectItemCaseSensitive(ctl, "breaker");
	const cJSON *force = cJSON_GetObjectItemCaseSensitive(ctl, "force");
	const char *who = cJSON_IsString(target) ? target->valuestring : "the target";
	struct rs_control *c = NULL;
	struct rs_err e = { "" };
	int rc;

	if (!cJSON_IsString(path) || !cJSON_IsBool(jit) || (paused && !cJSON_IsBool(paused)) ||
	    (breaker && (!cJSON_IsString(breaker) || !cJSON_IsNumber(force))))
		return rs__einval(err, "jitter undo record: a control needs \"path\" and "
				       "\"jitter\" (bool)");
	rc = rs_control_open(&c, path->valuestring, 0, NULL, &e);
	if (rc == -ENOENT) {
		if (said)
			fl__json_fmt(said, cap, slen,
				     "%snothing to undo for jitter on %s: control "
				     "block %s is gone",
				     *slen ? "; " : "", who, path->valuestring);
		return 0;
	}
	if (rc < 0) {
		rs__err_set(err, "reverting jitter on %s: %s", who, e.msg);
		return rc;
	}
	(void)rs_control_set_jitter(c, cJSON_IsTrue(jit));
	if (paused)
		(void)rs_control_set_retries_paused(c, cJSON_IsTrue(paused));
	if (breaker) {
		rc = rs_control_force_breaker(c, breaker->valuestring,
					      (enum rs_control_force)force->valueint, NULL, &e);
		if (rc < 0) {
			rs__err_set(err, "reverting jitter on %s: breaker '%s': %s", who,
				    breaker->valuestring, e.msg);
			rs_control_free(c);
			return rc;
		}
	}
	rs_control_free(c);
	if (said)
		fl__json_fmt(
		    said, cap, slen, "%sreverted jitter on %s (control %s): jitter %s again",
		    *slen ? "; " : "", who, path->valuestring, cJSON_IsTrue(jit) ? "on" : "off");
	return 0;
}

static int jit_revert_undo(const void *undo, char *said, size_t cap, struct rs_err *err)
{
	const cJSON *u = undo;
	const cJSON *controls = cJSON_GetObjectItemCaseSensitive(u, "controls");
	size_t slen = 0;
	int n, rc = 0, r;

	if (!cJSON_IsArray(controls))
		return rs__einval(err, "jitter undo record: no \"controls\" array");
	if (said && cap)
		said[0] = '\0';
	n = cJSON_GetArraySize(controls);
	/* Reverse order, every entry tried; the first error wins. */
	for (int i = n - 1; i >= 0; i--)
		if ((r = revert_control(cJSON_GetArrayItem(controls, i), said, cap, &slen,
					rc ? NULL : err)) < 0 &&
		    !rc)
			rc = r;
	if (said && n == 0)
		fl__json_fmt(said, cap, &slen,
			     "nothing to undo for jitter: client side only (the "
			     "load generator ended with the run)");
	return rc;
}

const struct fl_injector_ops fl__jitter_ops = {
	.family = FL_FAULT_JITTER,
	.name = "jitter",
	.priv_size = sizeof(struct jitter),
	.check = jit_check,
	.prepare = jit_prepare,
	.snapshot = jit_snapshot,
	.undo = jit_undo,
	.apply = jit_apply,
	.verify = jit_verify,
	.revert = jit_revert,
	.revert_undo = jit_revert_undo,
};
