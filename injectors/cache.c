/* The cache fault: invalidate the service's cache through its admin
 * endpoint (flush all, flush a prefix, or synchronized expiry), once or at
 * every repeat.  Nothing to revert: a flushed cache refills itself.
 *
 * Verify reads GET /admin/cache ({"entries","hits","misses","expired",
 * "flushed",...}) and compares it with what was read just before the flush.
 * Load may be running, so "size is 0" cannot be the test: every entry
 * inserted after the flush follows a miss, so a flush-all took effect when
 * the cache is now smaller than before, or holds no more entries than the
 * misses since.  See injector.h for each mode's rule. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "injectors/injector.h"
#include "resilience/clock.h"
#include "probes/http1.h"

#define BODY_MAX 1024
#define URL_MAX	 512

struct cache_stats {
	double entries, hits, misses, expired, flushed;
};

struct cache {
	struct cache_stats before; /* read at the start of the last apply */
	double reported;	   /* what the last POST said it flushed/expired */
};

static const char *op_name(enum fl_cache_op op)
{
	switch (op) {
	case FL_CACHE_FLUSH_ALL:
		return "flush";
	case FL_CACHE_FLUSH_PREFIX:
		return "prefix flush";
	case FL_CACHE_EXPIRE:
		break;
	}
	return "expiry";
}

static int admin_url(char *buf, size_t cap, const char *admin, const char *path, const char *arg)
{
	size_t l = strlen(admin);
	int n;

	while (l > 0 && admin[l - 1] == '/')
		l--;
	n = snprintf(buf, cap, "%.*s%s%s", (int)l, admin, path, arg ? arg : "");
	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

static int read_stats(const struct fl_fault *f, struct cache_stats *s, const char *what,
		      struct rs_err *err)
{
	char url[URL_MAX], body[BODY_MAX];
	int rc;

	if (admin_url(url, sizeof(url), f->t.service_admin, "/admin/cache", NULL) < 0)
		return rs__einval(err, "%s: admin url too long", what);
	if ((rc = fl__http("GET", url, fl__timeout(f), body, sizeof(body), what, err)) < 0)
		return rc;
	if (fl__json_number(body, "entries", &s->entries) < 0 ||
	    fl__json_number(body, "hits", &s->hits) < 0 ||
	    fl__json_number(body, "misses", &s->misses) < 0 ||
	    fl__json_number(body, "expired", &s->expired) < 0 ||
	    fl__json_number(body, "flushed", &s->flushed) < 0) {
		rs__err_set(err,
			    "%s: GET %s: expected entries, hits, misses, expired and flushed "
			    "in '%.100s'",
			    what, url, body);
		return -EPROTO;
	}
	return 0;
}

/* A prefix goes into the query as is (the target does not decode): only
 * characters that need no encoding. */
static bool prefix_ok(const char *p)
{
	for (; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("/._~:-", *p)))
			return false;
	return true;
}

static int cache_check(const struct fl_fault *f, struct rs_err *err)
{
	const char *prefix = f->cfg.cache.prefix;

	switch (f->cfg.cache.op) {
	case FL_CACHE_FLUSH_PREFIX:
		if (!prefix || !prefix[0])
			return rs__einval(err, "cache fault '%s': a prefix flush needs a prefix",
					  f->cfg.action);
		if (!prefix_ok(prefix))
			return rs__einval(err,
					  "cache fault '%s': prefix '%.60s' may hold only "
					  "letters, digits and / . _ ~ : -",
					  f->cfg.action, prefix);
		return 0;
	case FL_CACHE_EXPIRE:
		if (f->cfg.cache.expire_in_ns > 3600 * RS_NS_PER_SEC ||
		    f->cfg.cache.expire_in_ns % RS_NS_PER_US)
			return rs__einval(err,
					  "cache fault '%s': expire_in must be whole "
					  "microseconds, at most 1h",
					  f->cfg.action);
		return 0;
	case FL_CACHE_FLUSH_ALL:
		return 0;
	}
	return rs__einval(err, "cache fault '%s': unknown mode %d", f->cfg.action,
			  (int)f->cfg.cache.op);
}

static int cache_prepare(struct fl_fault *f, struct rs_err *err)
{
	struct cache_stats s;
	char what[160];

	snprintf(what, sizeof(what), "cache fault '%s'", f->cfg.action);
	if (!f->t.service_admin) {
		rs__err_set(err,
			    "%s: the service has no admin endpoint (give target.admin, or let "
			    "faultline start the reference target)",
			    what);
		return -ENOENT;
	}
	return read_stats(f, &s, what, err);
}

static int cache_undo(struct fl_fault *f, char *buf, size_t cap)
{
	size_t len = 0;

	if (!fl__undo_head(f, "service", buf, cap, &len) ||
	    !fl__json_fmt(buf, cap, &len, ",\"admin\":") ||
	    !fl__json_str(buf, cap, &len, f->t.service_admin) ||
	    !fl__json_fmt(buf, cap, &len, ",\"op\":\"%s\",\"nothing\":true}",
			  op_name(f->cfg.cache.op)))
		return -ENOSPC;
	return (int)len;
}

static int cache_apply(struct fl_fault *f, struct rs_err *err)
{
	struct cache *c = f->priv;
	char what[160], url[URL_MAX], body[BODY_MAX], arg[160];
	const char *path, *key;
	int rc;

	snprintf(what, sizeof(what), "cache fault '%s': %s", f->cfg.action,
		 op_name(f->cfg.cache.op));
	if ((rc = read_stats(f, &c->before, what, err)) < 0)
		return rc;
	arg[0] = '\0';
	if (f->cfg.cache.op == FL_CACHE_EXPIRE) {
		path = "/admin/cache/expire";
		key = "expired";
		snprintf(arg, sizeof(arg), "?in_us=%llu",
			 (unsigned long long)(f->cfg.cache.expire_in_ns / RS_NS_PER_US));
	} else {
		path = "/admin/cache/flush";
		key = "flushed";
		if (f->cfg.cache.op == FL_CACHE_FLUSH_PREFIX)
			snprintf(arg, sizeof(arg), "?prefix=%s", f->cfg.cache.prefix);
	}
	if (admin_url(url, sizeof(url), f->t.service_admin, path, arg) < 0)
		return rs__einval(err, "%s: admin url too long", what);
	if ((rc = fl__http("POST", url, fl__timeout(f), body, sizeof(body), what, err)) < 0)
		return rc;
	if (fl__json_number(body, key, &c->reported) < 0) {
		rs__err_set(err, "%s: POST %s: no \"%s\" in the answer '%.80s'", what, url, key,
			    body);
		return -EPROTO;
	}
	/* Under load, lookups land between the stats read above and the
	 * expiry; the answer's counters are those of the expiry's instant, so
	 * verify counts only the lookups after it. */
	if (f->cfg.cache.op == FL_CACHE_EXPIRE &&
	    (fl__json_number(body, "hits", &c->before.hits) < 0 ||
	     fl__json_number(body, "misses", &c->before.misses) < 0)) {
		rs__err_set(err, "%s: POST %s: no \"hits\" and \"misses\" in the answer '%.80s'",
			    what, url, body);
		return -EPROTO;
	}
	return 0;
}

static int cache_verify(struct fl_fault *f, struct rs_err *err)
{
	const struct cache *c = f->priv;
	const struct cache_stats *b = &c->before;
	struct cache_stats a;
	char what[160];
	double misses, lookups;
	int rc;

	snprintf(what, sizeof(what), "cache fault '%s': verify %s", f->cfg.action,
		 op_name(f->cfg.cache.op));
	if ((rc = read_stats(f, &a, what, err)) < 0)
		return rc;
	misses = a.misses - b->misses;
	lookups = misses + (a.hits - b->hits);
	if (f->cfg.cache.op == FL_CACHE_EXPIRE) {
		if (b->entries > 0 && c->reported <= 0) {
			rs__err_set(err,
				    "%s: the target expired nothing while holding %.0f entries",
				    what, b->entries);
			return -EPROTO;
		}
		/* With expire_in the entries are still valid now: there is
		 * nothing more to see yet. */
		if (!f->cfg.cache.expire_in_ns && lookups > 0 && misses <= 0) {
			rs__err_set(err, "%s: %.0f lookups since the expiry and no miss", what,
				    lookups);
			return -EPROTO;
		}
		return 0;
	}
	if (a.flushed - b->flushed < c->reported) {
		rs__err_set(err, "%s: the flushed counter moved by %.0f, the flush reported %.0f",
			    what, a.flushed - b->flushed, c->reported);
		return -EPROTO;
	}
	if (f->cfg.cache.op == FL_CACHE_FLUSH_ALL && a.entries > 0 && a.entries >= b->entries &&
	    a.entries > misses) {
		rs__err_set(err,
			    "%s: the cache holds %.0f entries after flushing all (%.0f before, "
			    "%.0f misses since)",
			    what, a.entries, b->entries, misses);
		return -EPROTO;
	}
	return 0;
}

static int cache_revert_undo(const void *undo, char *said, size_t cap, struct rs_err *err)
{
	const cJSON *u = undo;
	const cJSON *target = cJSON_GetObjectItemCaseSensitive(u, "target");
	const cJSON *op = cJSON_GetObjectItemCaseSensitive(u, "op");

	(void)err;
	if (said)
		snprintf(said, cap, "nothing to undo for cache %s on %s",
			 cJSON_IsString(op) ? op->valuestring : "invalidation",
			 cJSON_IsString(target) ? target->valuestring : "the target");
	return 0;
}

const struct fl_injector_ops fl__cache_ops = {
	.family = FL_FAULT_CACHE,
	.name = "cache",
	.priv_size = sizeof(struct cache),
	.check = cache_check,
	.prepare = cache_prepare,
	.snapshot = NULL,
	.undo = cache_undo,
	.apply = cache_apply,
	.verify = cache_verify,
	.revert = NULL,
	.revert_undo = cache_revert_undo,
};
