/* Fault injectors: jitter, cache and capacity through the ops interface,
 * first on their own (bad configurations, missing capabilities, a control
 * block file, the client hooks), then against a real faultline-target
 * (service + dependency, ephemeral ports, temp data dir, control blocks in
 * temp files): apply, verify, revert, revert again, and revert from the
 * undo record alone, each checked by reading the target back. */
#include "tests/tap.h"
#include "tests/targetproc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "injectors/injector.h"
#include "probes/http1.h"
#include "probes/promparse.h"
#include "resilience/control.h"

#define NS_PER_SEC   1000000000ull
#define TARGET_TESTS 43

static char tmp[64];

struct hooks_state {
	bool on;
	uint64_t tick;
	int calls;
};

static void set_lockstep(void *ctx, bool on, uint64_t tick_ns)
{
	struct hooks_state *h = ctx;

	h->on = on;
	h->tick = tick_ns;
	h->calls++;
}

static bool is_lockstep(void *ctx)
{
	return ((struct hooks_state *)ctx)->on;
}

/* A TCP port nothing listens on (bound then closed). */
static int closed_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0)
		bail_out("cannot find a closed port: %s", strerror(errno));
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static int jitter_of(const char *ctl)
{
	struct rs_control *c = NULL;
	int v;

	if (rs_control_open(&c, ctl, 0, NULL, NULL) < 0)
		return -1;
	v = rs_control_jitter_enabled(rs_control_block(c));
	rs_control_free(c);
	return v;
}

/* GET url and read a number: JSON key, or gauge metric{name=label}. */
static double get_number(const char *url, const char *key, const char *label)
{
	static char body[1 << 20];
	struct rs_err err = { "" };
	int status = 0;
	double v = -1;

	if (fl_http1_request_sync("GET", url, NULL, 2 * NS_PER_SEC, &status, body, sizeof(body),
				  &err) < 0 ||
	    status != 200) {
		diag("GET %s: %d %s", url, status, err.msg);
		return -1;
	}
	if (label) {
		const char *labels[] = { "name", label, NULL };
		struct fl_prom_selector sel = { key, labels, FL_PROM_ONE, true };
		struct fl_prom_match m;

		if (fl_prom_select(body, strlen(body), &sel, &m, &err) == 0)
			v = m.value;
		else
			diag("%s: %s", key, err.msg);
	} else {
		cJSON *o = cJSON_Parse(body);
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(o, key);

		if (cJSON_IsNumber(n))
			v = n->valuedouble;
		cJSON_Delete(o);
	}
	return v;
}

static int post(const char *url)
{
	char body[256];
	int status = 0;

	if (fl_http1_request_sync("POST", url, NULL, 2 * NS_PER_SEC, &status, body, sizeof(body),
				  NULL) < 0)
		return -1;
	return status;
}

/* GETs /item/1..n through the service so the cache holds n entries. */
static void warm(int port, int n)
{
	char url[128], body[2048];
	int status;

	for (int id = 1; id <= n; id++) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/item/%d", port, id);
		if (fl_http1_request_sync("GET", url, NULL, 2 * NS_PER_SEC, &status, body,
					  sizeof(body), NULL) < 0 ||
		    status != 200)
			diag("warming %s: status %d", url, status);
	}
}

/* ---- without a target ------------------------------------------------------ */

static void offline_tests(void)
{
	struct rs_err err = { "" };
	struct fl_fault *f = NULL;
	struct fl_target_info none = { 0 };
	char ctl[128], undo[FL_UNDO_MAX], metrics[96], said[512];
	struct hooks_state hs = { 0 };
	struct fl_client_hooks hooks = { &hs, set_lockstep, is_lockstep };
	struct rs_control *c = NULL;
	uint64_t start = 0;
	int rc, n;
	pid_t child;

	/* Bad configurations are refused at fl_fault_new, naming the field. */
	{
		struct fl_fault_cfg cfg = { .family = FL_FAULT_CAPACITY, .action = "slow" };

		cfg.capacity.factor = -1;
		rc = fl_fault_new(&f, &cfg, &none, NULL, &err);
		ok(rc == -EINVAL && strstr(err.msg, "factor"), "capacity factor -1 refused: %s",
		   err.msg);
		cfg.family = FL_FAULT_CACHE;
		cfg.cache.op = FL_CACHE_FLUSH_PREFIX;
		cfg.cache.prefix = NULL;
		rc = fl_fault_new(&f, &cfg, &none, NULL, &err);
		ok(rc == -EINVAL && strstr(err.msg, "prefix"), "prefix flush without a prefix: %s",
		   err.msg);
		cfg.cache.prefix = "item/1&x=2";
		rc = fl_fault_new(&f, &cfg, &none, NULL, &err);
		ok(rc == -EINVAL, "a prefix that would need URL encoding is refused: %s", err.msg);
		cfg.cache.op = FL_CACHE_EXPIRE;
		cfg.cache.prefix = NULL;
		cfg.cache.expire_in_ns = 3601 * NS_PER_SEC;
		rc = fl_fault_new(&f, &cfg, &none, NULL, &err);
		ok(rc == -EINVAL && strstr(err.msg, "expire_in"), "expire_in above 1h refused: %s",
		   err.msg);
		cfg.cache.expire_in_ns = 1500;
		rc = fl_fault_new(&f, &cfg, &none, NULL, &err);
		ok(rc == -EINVAL && strstr(err.msg, "microseconds"),
		   "expire_in of 1.5 µs refused (the target takes whole µs): %s", err.msg);
		memset(&cfg, 0, sizeof(cfg));
		cfg.family = FL_FAULT_JITTER;
		cfg.action = "nj";
		rc = fl_fault_new(&f, &cfg, &none, NULL, &err);
		ok(rc == -EINVAL && strstr(err.msg, "side"), "jitter with no side: %s", err.msg);
		cfg.jitter.target = true;
		cfg.jitter.force = RS_FORCE_OPEN;
		rc = fl_fault_new(&f, &cfg, &none, NULL, &err);
		ok(rc == -EINVAL && strstr(err.msg, "breaker"), "force without a breaker: %s",
		   err.msg);
	}

	/* Missing capabilities: prepare says what is missing and how to get it. */
	{
		struct fl_fault_cfg cfg = { .family = FL_FAULT_CAPACITY, .action = "slow" };

		cfg.capacity.factor = 0.5;
		rc = fl_fault_new(&f, &cfg, &none, NULL, &err);
		ok(rc == 0, "capacity fault created");
		rc = fl_fault_prepare(f, &err);
		ok(rc == -ENOENT && strstr(err.msg, "admin endpoint"),
		   "capacity prepare without an admin URL: %s", err.msg);
		fl_fault_free(f);
		f = NULL;

		memset(&cfg, 0, sizeof(cfg));
		cfg.family = FL_FAULT_JITTER;
		cfg.action = "nj";
		cfg.jitter.target = true;
		rc = fl_fault_new(&f, &cfg, &none, NULL, &err);
		rc = rc ? rc : fl_fault_prepare(f, &err);
		ok(rc == -ENOENT && strstr(err.msg, RS_CONTROL_ENV),
		   "jitter prepare without a control block names " RS_CONTROL_ENV ": %s", err.msg);
		fl_fault_free(f);
		f = NULL;

		cfg.jitter.target = false;
		cfg.jitter.client = true;
		rc = fl_fault_new(&f, &cfg, &none, NULL, &err);
		rc = rc ? rc : fl_fault_prepare(f, &err);
		ok(rc == -ENOTSUP && strstr(err.msg, "load generator"),
		   "client-side jitter without the load generator's hooks: %s", err.msg);
		fl_fault_free(f);
		f = NULL;
	}

	/* A control block file, no process: undo, apply, revert work on the
	 * file; verify fails because the gauge cannot be read (never a pass). */
	snprintf(ctl, sizeof(ctl), "%s/offline.ctl", tmp);
	if (rs_control_open(&c, ctl, RS_CONTROL_CREATE, NULL, &err) < 0)
		bail_out("cannot create %s: %s", ctl, err.msg);
	rs_control_free(c);
	snprintf(metrics, sizeof(metrics), "http://127.0.0.1:%d/metrics", closed_port());
	{
		struct fl_fault_cfg cfg = { .family = FL_FAULT_JITTER, .action = "no-jitter" };
		struct fl_target_info t = { .control_path = ctl,
					    .service_metrics = metrics,
					    .identity = "test service" };

		cfg.jitter.target = true;
		cfg.jitter.client = true;
		cfg.jitter.tick_ns = 10000000;
		if (fl_fault_new(&f, &cfg, &t, &hooks, &err) < 0)
			bail_out("jitter fault: %s", err.msg);
		ok(fl_fault_revert(f, &err) == 0 && hs.calls == 0,
		   "revert before apply is a no-op");
		n = fl_fault_undo_record(f, undo, sizeof(undo), &err);
		ok(n > 0 && strchr(undo, '\n') == NULL && undo[0] == '{',
		   "undo record is one line of JSON (%d bytes)", n);
		diag("undo: %s", undo);
		{
			cJSON *u = cJSON_Parse(undo);
			const cJSON *ctls = cJSON_GetObjectItemCaseSensitive(u, "controls");
			const cJSON *c0 = cJSON_GetArrayItem(ctls, 0);

			ok(u && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c0, "jitter")) &&
			       strcmp(cJSON_GetObjectItemCaseSensitive(c0, "path")->valuestring,
				      ctl) == 0 &&
			       strcmp(cJSON_GetObjectItemCaseSensitive(u, "family")->valuestring,
				      "jitter") == 0,
			   "undo record names the family, the control path and jitter's previous "
			   "value (on)");
			cJSON_Delete(u);
		}
		rc = fl_fault_apply(f, &err);
		ok(rc == 0 && jitter_of(ctl) == 0, "apply writes jitter 0 into the control block");
		ok(hs.on && hs.tick == 10000000 && hs.calls == 1,
		   "apply switches the load generator to lockstep with the 10ms tick");
		rc = fl_fault_verify(f, &err);
		ok(rc == -ECONNREFUSED && strstr(err.msg, "resilience_jitter_enabled"),
		   "verify fails when the gauge cannot be read: %s", err.msg);
		rc = fl_fault_revert(f, &err);
		ok(rc == 0 && jitter_of(ctl) == 1 && !hs.on, "revert: jitter on, lockstep off");
		rc = fl_fault_revert(f, &err);
		ok(rc == 0 && jitter_of(ctl) == 1 && hs.calls == 2,
		   "a second revert does nothing and succeeds");

		/* The undo record alone reverts, twice. */
		rc = fl_fault_apply(f, &err);
		rc = rc ? rc : fl_fault_revert_undo_msg(undo, said, sizeof(said), &err);
		ok(rc == 0 && jitter_of(ctl) == 1, "revert_undo turns jitter back on: %s", said);
		ok(strstr(said, "reverted jitter on test service (control ") != NULL,
		   "revert_undo says what it did");
		rc = fl_fault_revert_undo(undo, &err);
		ok(rc == 0 && jitter_of(ctl) == 1, "revert_undo again: still on, no error");
		fl_fault_free(f);
		f = NULL;
		unlink(ctl);
		rc = fl_fault_revert_undo_msg(undo, said, sizeof(said), &err);
		ok(rc == 0 && strstr(said, "is gone"),
		   "revert_undo of a control block that is gone: %s", said);
		rc = fl_fault_revert_undo("{\"family\":\"warp\"}", &err);
		ok(rc == -EINVAL && strstr(err.msg, "unknown family"), "unknown family: %s",
		   err.msg);
		rc = fl_fault_revert_undo("{\"family\":", &err);
		ok(rc == -EINVAL, "a cut undo record is refused: %s", err.msg);
	}

	/* Process identity: pid + start time. */
	rc = fl_proc_start_time(getpid(), &start);
	ok(rc == 0 && start > 0, "own start time read from /proc (%llu ticks)",
	   (unsigned long long)start);
	ok(fl_proc_alive(getpid(), start) && !fl_proc_alive(getpid(), start + 1),
	   "alive with the same start time, not with another (pid reuse)");
	child = fork();
	if (child == 0)
		_exit(0);
	waitpid(child, NULL, 0);
	ok(!fl_proc_alive(child, 0), "a reaped child is not alive");
}

/* ---- against faultline-target --------------------------------------------- */

static void target_tests(void)
{
	char data[64], sctl[128], dctl[128], senv[160], denv[160], why[256], depaddr[64];
	char sadmin[64], dadmin[64], smetrics[96], dmetrics[96], url[160], undo[FL_UNDO_MAX];
	char said[512], sident[64], dident[64];
	struct targetproc dep, svc;
	struct rs_err err = { "" };
	struct fl_fault *f = NULL;
	struct fl_target_info t;
	int st = -1, rc;

	if (targetproc_tmpdir(data, sizeof(data)) < 0)
		bail_out("cannot create a data directory");
	if (targetproc_run((const char *[]){ "--init-data", data, "--items", "50", NULL }, NULL,
			   10000, &st, NULL, 0, why, sizeof(why)) < 0 ||
	    st != 0)
		bail_out("faultline-target --init-data failed: %s", why);
	snprintf(sctl, sizeof(sctl), "%s/service.ctl", tmp);
	snprintf(dctl, sizeof(dctl), "%s/dependency.ctl", tmp);
	snprintf(senv, sizeof(senv), RS_CONTROL_ENV "=%s", sctl);
	snprintf(denv, sizeof(denv), RS_CONTROL_ENV "=%s", dctl);
	if (targetproc_start(&dep,
			     (const char *[]){ "--role", "dependency", "--port", "0",
					       "--admin-port", "0", NULL },
			     (const char *[]){ denv, NULL }, 10000, why, sizeof(why)) < 0)
		bail_out("cannot start the dependency: %s", why);
	snprintf(depaddr, sizeof(depaddr), "127.0.0.1:%d", dep.http_port);
	if (targetproc_start(&svc,
			     (const char *[]){ "--role", "service", "--port", "0", "--admin-port",
					       "0", "--data-dir", data, "--dependency", depaddr,
					       NULL },
			     (const char *[]){ senv, NULL }, 10000, why, sizeof(why)) < 0)
		bail_out("cannot start the service: %s", why);
	diag("service: %s; dependency: %s", svc.line, dep.line);
	snprintf(sadmin, sizeof(sadmin), "http://127.0.0.1:%d", svc.admin_port);
	snprintf(dadmin, sizeof(dadmin), "http://127.0.0.1:%d", dep.admin_port);
	snprintf(smetrics, sizeof(smetrics), "http://127.0.0.1:%d/metrics", svc.http_port);
	snprintf(dmetrics, sizeof(dmetrics), "http://127.0.0.1:%d/metrics", dep.http_port);
	snprintf(sident, sizeof(sident), "pid %ld service", (long)svc.pid);
	snprintf(dident, sizeof(dident), "pid %ld dependency", (long)dep.pid);
	t = (struct fl_target_info){ .service_admin = sadmin,
				     .service_metrics = smetrics,
				     .dependency_admin = dadmin,
				     .dependency_metrics = dmetrics,
				     .control_path = sctl,
				     .dependency_control_path = dctl,
				     .identity = sident,
				     .service_pid = svc.pid,
				     .dependency_pid = dep.pid };

	/* jitter on the service */
	{
		struct fl_fault_cfg cfg = { .family = FL_FAULT_JITTER, .action = "no-jitter" };

		cfg.jitter.target = true;
		if (fl_fault_new(&f, &cfg, &t, NULL, &err) < 0)
			bail_out("jitter: %s", err.msg);
		rc = fl_fault_prepare(f, &err);
		ok(rc == 0, "jitter prepare against the target%s%s", rc ? ": " : "",
		   rc ? err.msg : "");
		is_double(get_number(smetrics, "resilience_jitter_enabled", "service"), 1, 0,
			  "before: the service's resilience_jitter_enabled reads 1");
		rc = fl_fault_undo_record(f, undo, sizeof(undo), &err);
		rc = rc < 0 ? rc : fl_fault_apply(f, &err);
		ok(rc == 0, "jitter applied%s%s", rc ? ": " : "", rc ? err.msg : "");
		rc = fl_fault_verify(f, &err);
		ok(rc == 0, "jitter verified%s%s", rc ? ": " : "", rc ? err.msg : "");
		is_double(get_number(smetrics, "resilience_jitter_enabled", "service"), 0, 0,
			  "applied: the gauge reads 0");
		rc = fl_fault_revert(f, &err);
		ok(rc == 0, "jitter reverted");
		is_double(get_number(smetrics, "resilience_jitter_enabled", "service"), 1, 0,
			  "reverted: the gauge reads 1");
		rc = fl_fault_verify(f, &err);
		ok(rc == -EINVAL, "verify after revert is refused (nothing applied)");
		ok(fl_fault_revert(f, &err) == 0 &&
		       get_number(smetrics, "resilience_jitter_enabled", "service") == 1,
		   "revert twice: fine, still 1");
		rc = fl_fault_apply(f, &err);
		ok(rc == 0 && get_number(smetrics, "resilience_jitter_enabled", "service") == 0,
		   "applied again: 0");
		rc = fl_fault_revert_undo_msg(undo, said, sizeof(said), &err);
		ok(rc == 0 && get_number(smetrics, "resilience_jitter_enabled", "service") == 1,
		   "revert_undo from the undo JSON alone: 1 (%s)", said);
		ok(strstr(said, sident) != NULL, "the message names %s", sident);
		ok(fl_fault_revert_undo(undo, &err) == 0 &&
		       get_number(smetrics, "resilience_jitter_enabled", "service") == 1,
		   "revert_undo twice: fine, still 1");
		fl_fault_free(f);
		f = NULL;
	}

	/* a control block the service does not map: the block reads 0, the
	 * gauge still 1, and verify says so */
	{
		struct fl_fault_cfg cfg = { .family = FL_FAULT_JITTER, .action = "wrong-file" };
		struct fl_target_info w = t;
		struct rs_control *c = NULL;
		char other[128];

		snprintf(other, sizeof(other), "%s/other.ctl", tmp);
		if (rs_control_open(&c, other, RS_CONTROL_CREATE, NULL, &err) < 0)
			bail_out("cannot create %s: %s", other, err.msg);
		rs_control_free(c);
		w.control_path = other;
		cfg.jitter.target = true;
		if (fl_fault_new(&f, &cfg, &w, NULL, &err) < 0)
			bail_out("jitter: %s", err.msg);
		rc = fl_fault_apply(f, &err);
		rc = rc ? rc : fl_fault_verify(f, &err);
		ok(rc == -EPROTO && strstr(err.msg, "reads 1, not 0"),
		   "verify fails when the service does not map the block written: %s", err.msg);
		ok(fl_fault_revert(f, &err) == 0, "and it reverts");
		fl_fault_free(f);
		f = NULL;
	}

	/* jitter on both processes, retries paused, breaker forced open */
	{
		struct fl_fault_cfg cfg = { .family = FL_FAULT_JITTER, .action = "lockstep" };
		struct rs_control *c = NULL;

		cfg.jitter.target = true;
		cfg.jitter.role = FL_FAULT_ROLE_BOTH;
		cfg.jitter.pause_retries = true;
		cfg.jitter.force_breaker = "dependency";
		cfg.jitter.force = RS_FORCE_OPEN;
		if (fl_fault_new(&f, &cfg, &t, NULL, &err) < 0)
			bail_out("jitter: %s", err.msg);
		rc = fl_fault_prepare(f, &err);
		rc = rc ? rc : fl_fault_undo_record(f, undo, sizeof(undo), &err) < 0;
		rc = rc ? rc : fl_fault_apply(f, &err);
		rc = rc ? rc : fl_fault_verify(f, &err);
		ok(rc == 0,
		   "jitter on both + retries paused + breaker forced: applied and "
		   "verified%s%s",
		   rc ? ": " : "", rc ? err.msg : "");
		ok(get_number(smetrics, "resilience_retries_paused", "service") == 1 &&
		       get_number(dmetrics, "resilience_jitter_enabled", "dependency") == 0,
		   "service retries paused, dependency jitter 0");
		rc = rs_control_open(&c, sctl, 0, NULL, &err);
		ok(rc == 0 && rs_control_force_read(&rs_control_block(c)->breakers[0].force) ==
				  RS_FORCE_OPEN,
		   "the service's breaker 'dependency' is forced open in its control block");
		rc = fl_fault_revert(f, &err);
		ok(rc == 0 && get_number(smetrics, "resilience_retries_paused", "service") == 0 &&
		       get_number(dmetrics, "resilience_jitter_enabled", "dependency") == 1 &&
		       get_number(smetrics, "resilience_jitter_enabled", "service") == 1 &&
		       rs_control_force_read(&rs_control_block(c)->breakers[0].force) ==
			   RS_FORCE_NONE,
		   "revert restores all: jitter 1 on both, retries running, breaker not forced");
		rc = fl_fault_apply(f, &err);
		rc = rc ? rc : fl_fault_revert_undo(undo, &err);
		ok(rc == 0 && get_number(smetrics, "resilience_retries_paused", "service") == 0 &&
		       get_number(dmetrics, "resilience_jitter_enabled", "dependency") == 1 &&
		       rs_control_force_read(&rs_control_block(c)->breakers[0].force) ==
			   RS_FORCE_NONE,
		   "revert_undo restores all three from the JSON alone");
		rs_control_free(c);
		fl_fault_free(f);
		f = NULL;
	}

	/* capacity */
	{
		struct fl_fault_cfg cfg = { .family = FL_FAULT_CAPACITY, .action = "slow-dep" };
		cJSON *u;

		snprintf(url, sizeof(url), "%s/admin/capacity", dadmin);
		cfg.capacity.factor = 0.3;
		if (fl_fault_new(&f, &cfg, &t, NULL, &err) < 0)
			bail_out("capacity: %s", err.msg);
		rc = fl_fault_prepare(f, &err);
		ok(rc == 0, "capacity prepare%s%s", rc ? ": " : "", rc ? err.msg : "");
		rc = fl_fault_undo_record(f, undo, sizeof(undo), &err);
		u = cJSON_Parse(undo);
		ok(rc > 0 && u &&
		       cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(u, "prev"),
							"factor")
			       ->valuedouble == 1.0 &&
		       cJSON_GetObjectItemCaseSensitive(u, "pid")->valuedouble == dep.pid,
		   "undo record keeps the previous factor 1 and the dependency's pid");
		cJSON_Delete(u);
		rc = fl_fault_apply(f, &err);
		rc = rc ? rc : fl_fault_verify(f, &err);
		ok(rc == 0, "capacity 0.3 applied and verified%s%s", rc ? ": " : "",
		   rc ? err.msg : "");
		is_double(get_number(url, "factor", NULL), 0.3, 0, "GET /admin/capacity reads 0.3");
		ok(fl_fault_revert(f, &err) == 0 && fl_fault_revert(f, &err) == 0,
		   "reverted, twice");
		is_double(get_number(url, "factor", NULL), 1.0, 0, "back to the previous 1.0");
		rc = fl_fault_apply(f, &err);
		snprintf(url, sizeof(url), "%s/admin/capacity?factor=0.5", dadmin);
		post(url);
		snprintf(url, sizeof(url), "%s/admin/capacity", dadmin);
		rc = rc ? rc : fl_fault_verify(f, &err);
		ok(rc == -EPROTO && strstr(err.msg, "0.5"),
		   "verify fails when the factor is not the fault's: %s", err.msg);
		rc = fl_fault_revert_undo_msg(undo, said, sizeof(said), &err);
		ok(rc == 0 && get_number(url, "factor", NULL) == 1.0,
		   "revert_undo restores 1.0 from the JSON alone (%s)", said);
		ok(fl_fault_revert_undo(undo, &err) == 0 && get_number(url, "factor", NULL) == 1.0,
		   "revert_undo twice: still 1.0");
		fl_fault_free(f);
		f = NULL;
	}

	/* cache */
	{
		struct fl_fault_cfg cfg = { .family = FL_FAULT_CACHE, .action = "flush" };
		char cache[96];

		snprintf(cache, sizeof(cache), "%s/admin/cache", sadmin);
		warm(svc.http_port, 20);
		is_double(get_number(cache, "entries", NULL), 20, 0, "warm cache: 20 entries");
		cfg.cache.op = FL_CACHE_FLUSH_ALL;
		if (fl_fault_new(&f, &cfg, &t, NULL, &err) < 0)
			bail_out("cache: %s", err.msg);
		rc = fl_fault_prepare(f, &err);
		rc = rc ? rc : fl_fault_undo_record(f, undo, sizeof(undo), &err) < 0;
		rc = rc ? rc : fl_fault_apply(f, &err);
		rc = rc ? rc : fl_fault_verify(f, &err);
		ok(rc == 0, "flush all applied and verified%s%s", rc ? ": " : "",
		   rc ? err.msg : "");
		is_double(get_number(cache, "entries", NULL), 0, 0, "the cache holds 0 entries");
		ok(strstr(undo, "\"nothing\":true") != NULL,
		   "the undo record says nothing to undo");
		ok(fl_fault_revert(f, &err) == 0 && fl_fault_revert_undo(undo, &err) == 0,
		   "revert and revert_undo are no-ops that succeed");
		/* repeat: apply again on the applied fault */
		warm(svc.http_port, 5);
		rc = fl_fault_apply(f, &err);
		rc = rc ? rc : fl_fault_verify(f, &err);
		ok(rc == 0 && get_number(cache, "entries", NULL) == 0,
		   "a repeat applies and verifies again: 0 entries");
		fl_fault_free(f);
		f = NULL;

		warm(svc.http_port, 20);
		cfg.action = "flush-1x";
		cfg.cache.op = FL_CACHE_FLUSH_PREFIX;
		cfg.cache.prefix = "item/1";
		if (fl_fault_new(&f, &cfg, &t, NULL, &err) < 0)
			bail_out("cache: %s", err.msg);
		rc = fl_fault_apply(f, &err);
		rc = rc ? rc : fl_fault_verify(f, &err);
		ok(rc == 0, "prefix flush applied and verified%s%s", rc ? ": " : "",
		   rc ? err.msg : "");
		is_double(get_number(cache, "entries", NULL), 9, 0,
			  "item/1, item/10..19 gone: 9 of 20 entries left");
		fl_fault_free(f);
		f = NULL;

		cfg.action = "stampede";
		cfg.cache.op = FL_CACHE_EXPIRE;
		cfg.cache.prefix = NULL;
		if (fl_fault_new(&f, &cfg, &t, NULL, &err) < 0)
			bail_out("cache: %s", err.msg);
		{
			double misses = get_number(cache, "misses", NULL);

			rc = fl_fault_apply(f, &err);
			rc = rc ? rc : fl_fault_verify(f, &err);
			ok(rc == 0, "expiry applied and verified%s%s", rc ? ": " : "",
			   rc ? err.msg : "");
			warm(svc.http_port, 9);
			is_double(get_number(cache, "misses", NULL) - misses, 9, 0,
				  "after expiry every lookup misses (9 of 9)");
			rc = fl_fault_verify(f, &err);
			ok(rc == 0, "verify with lookups since: misses moved%s%s", rc ? ": " : "",
			   err.msg);
		}
		fl_fault_free(f);
		f = NULL;

		/* expire_in: the entries stay valid until the instant, then all miss. */
		cfg.action = "stampede-later";
		cfg.cache.expire_in_ns = 300 * NS_PER_SEC / 1000;
		if (fl_fault_new(&f, &cfg, &t, NULL, &err) < 0)
			bail_out("cache: %s", err.msg);
		{
			double misses;

			warm(svc.http_port, 9);
			misses = get_number(cache, "misses", NULL);
			rc = fl_fault_apply(f, &err);
			rc = rc ? rc : fl_fault_verify(f, &err);
			warm(svc.http_port, 9);
			ok(rc == 0 && get_number(cache, "misses", NULL) == misses,
			   "expire_in 300ms applied and verified, entries still hit before the "
			   "instant%s%s",
			   rc ? ": " : "", rc ? err.msg : "");
			usleep(400 * 1000);
			warm(svc.http_port, 9);
			is_double(get_number(cache, "misses", NULL) - misses, 9, 0,
				  "after the instant every lookup misses (9 of 9)");
		}
		fl_fault_free(f);
		f = NULL;
	}

	ok(targetproc_stop(&svc, 5000) == 0 && targetproc_stop(&dep, 5000) == 0,
	   "service and dependency exit 0 on SIGTERM");
}

int main(void)
{
	plan(28 + TARGET_TESTS);
	/* The watchdog kills the children and removes both temporary
	 * directories, also when the test runs out of time. */
	targetproc_watchdog(60);
	if (targetproc_tmpdir(tmp, sizeof(tmp)) < 0)
		bail_out("cannot create a temporary directory: %s", strerror(errno));
	offline_tests();
	if (!targetproc_binary())
		skip("faultline-target not built ($FAULTLINE_BUILD/faultline-target missing)",
		     TARGET_TESTS);
	else
		target_tests();
	return exit_status();
}
