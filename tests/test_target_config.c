/* faultline-target's configuration: bad files and flags are refused at start
 * with the file, the key path and the reason, exit 2, before anything
 * listens; durations and ratios read as documented; --check accepts a good
 * file; --init-data writes deterministic item files.
 *
 * Runs the built program ($FAULTLINE_BUILD/faultline-target) and calls the
 * parser directly for the duration grammar. */
#include "tests/tap.h"
#include "tests/targetproc.h"

#include "resilience/clock.h"
#include "target/config.h"

static char dir[64];

/* targetproc_run with stdout/stderr captured and their last newline cut. */
static void run(const char *const *args, int *st, char *out, size_t outlen, char *err,
		size_t errlen)
{
	*st = -1;
	if (targetproc_run(args, NULL, 10000, st, out, outlen, err, errlen) < 0)
		bail_out("cannot run faultline-target");
	for (char *p = out; p; p = p == out ? err : NULL) {
		size_t n = strlen(p);

		if (n && p[n - 1] == '\n')
			p[n - 1] = '\0';
	}
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		bail_out("cannot write %s: %s", path, strerror(errno));
}

/* Runs the program with --config FILE (written from json) plus args and
 * checks exit 2 and that stderr names the file and every needle. */
static void refused(const char *name, const char *json, const char *const *extra,
		    const char *const needles[])
{
	char path[128], err[2048], out[512];
	const char *args[16] = { "--role",	"service",  "--dependency",
				 "127.0.0.1:9", "--config", path };
	int n = 6, st = -1, missing = 0;

	snprintf(path, sizeof(path), "%s/%s.json", dir, name);
	write_file(path, json);
	for (int i = 0; extra && extra[i] && n < 15; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	if (targetproc_run(args, NULL, 5000, &st, out, sizeof(out), err, sizeof(err)) < 0) {
		ok(0, "%s: exit 2 (it kept running: the configuration was accepted)", name);
		return;
	}
	for (int i = 0; needles[i]; i++)
		if (!strstr(err, needles[i])) {
			diag("stderr lacks '%s'", needles[i]);
			missing++;
		}
	ok(st == 2 && !strstr(err, "(null)") && strstr(err, path) && !missing && !out[0],
	   "%s: exit 2, nothing listens, stderr names the file, key and reason", name);
	if (st != 2 || missing || !strstr(err, path))
		diag("exit %d, stderr: %s", st, err);
}

static void duration_cases(void)
{
	static const struct {
		const char *s;
		uint64_t ns;
	} good[] = { { "250ms", 250 * RS_NS_PER_MS },
		     { "1.5s", 1500 * RS_NS_PER_MS },
		     { "1m30s", 90 * RS_NS_PER_SEC },
		     { "2h", 7200 * RS_NS_PER_SEC },
		     { "10us", 10 * RS_NS_PER_US },
		     { "0s", 0 },
		     { "7ns", 7 } };
	static const char *const bad[] = { "5", "-5s", "5sec", "", "ms", "1.5", "+1s" };
	char why[200];
	uint64_t ns;
	int wrong = 0;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (fl_target_duration_parse(good[i].s, &ns, why, sizeof(why)) != 0 ||
		    ns != good[i].ns) {
			diag("'%s' -> %llu (%s)", good[i].s, (unsigned long long)ns, why);
			wrong++;
		}
	ok(!wrong, "durations with units read exactly: 250ms, 1.5s, 1m30s, 2h, 10us, 0s, 7ns");
	wrong = 0;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (fl_target_duration_parse(bad[i], &ns, why, sizeof(why)) != -EINVAL || !why[0]) {
			diag("'%s' was accepted", bad[i]);
			wrong++;
		}
	ok(!wrong,
	   "bare numbers, signs, unknown units and empty strings are refused with a reason");
	if (fl_target_duration_parse("5", &ns, why, sizeof(why)) == 0)
		why[0] = '\0';
	ok(strstr(why, "no unit") != NULL, "a bare number says it has no unit ('%s')", why);
}

static void api_cases(void)
{
	struct fl_target_config c;
	struct rs_err err = { "" };
	int rc;
	static const char json[] = "{\"budget\":{\"ratio\":\"40%\"},\"retry\":{\"base\":"
				   "\"25ms\",\"backoff\":\"equal\"},\"defenses\":{\"shed\":false}}";

	fl_target_config_default(&c);
	rc = fl_target_config_apply_json(&c, "t.json", json, sizeof(json) - 1, &err);
	ok(rc == 0 && fabs(c.budget.ratio.ratio - 0.4) < 1e-12 &&
	       c.retry.backoff.base_ns == 25 * RS_NS_PER_MS &&
	       c.retry.backoff.strategy == RS_BACKOFF_EQUAL && !c.defenses.shed &&
	       c.defenses.breaker,
	   "a file sets a percentage ratio, a duration, an enum and one defense, leaving the rest");
	if (rc)
		diag("%s", err.msg);
	rc = fl_target_config_set(&c, "shed.thresholds=[0.2,0.4,0.6]", &err);
	ok(rc == 0 && c.shed.tiers.threshold[1] == 0.4, "--set takes a JSON array");
	rc = fl_target_config_set(&c, "shed.thresholds=[0.2,1.4,0.6]", &err);
	ok(rc == -EINVAL && strstr(err.msg, "shed.thresholds[1]") &&
	       strstr(err.msg, "must be in [0, 1]"),
	   "an element out of range is named by its index: %s", err.msg);
	rc = fl_target_config_set(&c, "workers.service_time=3ms", &err);
	ok(rc == 0 && c.workers.service_time_ns == 3 * RS_NS_PER_MS,
	   "--set reads a bare word as a string (3ms)");
	fl_target_config_default(&c);
	c.role = FL_ROLE_SERVICE;
	ok(fl_target_config_check(&c, &err) == -EINVAL && strstr(err.msg, "dependency.port"),
	   "a service without a dependency port is refused: %s", err.msg);
}

int main(void)
{
	char path[128], out[512], err[2048], a[1024], b[1024], p1[160];
	int st = -1;

	plan(34);
	targetproc_watchdog(60);
	duration_cases();
	api_cases();
	if (!targetproc_binary()) {
		skip("FAULTLINE_BUILD/faultline-target is missing (run through make test)", 26);
		return exit_status();
	}
	if (targetproc_tmpdir(dir, sizeof(dir)) < 0)
		bail_out("cannot create a temporary directory: %s", strerror(errno));

	refused("unknown-key", "{\n  \"retry\": { \"atempts\": 3 }\n}\n", NULL,
		(const char *const[]){ "retry.atempts", "unknown key", "attempts", NULL });
	refused("unknown-section", "{\"retires\": {}}", NULL,
		(const char *const[]){ "retires", "unknown key", NULL });
	refused(
	    "wrong-type", "{\"cache\": {\"capacity\": \"big\"}}", NULL,
	    (const char *const[]){ "cache.capacity", "expected an integer, got a string", NULL });
	refused(
	    "wrong-type-bool", "{\"defenses\": {\"breaker\": 1}}", NULL,
	    (const char *const[]){ "defenses.breaker", "expected a boolean, got a number", NULL });
	refused("wrong-type-section", "{\"retry\": 3}", NULL,
		(const char *const[]){ "retry", "expected an object, got a number", NULL });
	refused("bad-duration", "{\"retry\": {\"base\": \"10\"}}", NULL,
		(const char *const[]){ "retry.base", "has no unit", NULL });
	refused("bare-number-duration", "{\"dependency\": {\"timeout\": 100}}", NULL,
		(const char *const[]){ "dependency.timeout", "expected a duration string", NULL });
	refused("bad-unit", "{\"request\": {\"deadline\": \"5sec\"}}", NULL,
		(const char *const[]){ "request.deadline", "unknown unit 'sec'", NULL });
	refused("bad-ratio", "{\"budget\": {\"ratio\": 1.5}}", NULL,
		(const char *const[]){ "budget.ratio", "must be in [0, 1], got 1.5", NULL });
	refused("bad-percent", "{\"budget\": {\"ratio\": \"150%\"}}", NULL,
		(const char *const[]){ "budget.ratio", "must be in [0, 1], got 1.5", NULL });
	refused("bad-enum", "{\"retry\": {\"backoff\": \"jittery\"}}", NULL,
		(const char *const[]){ "retry.backoff", "unknown value 'jittery'", "decorrelated",
				       NULL });
	refused("malformed", "{\n  \"cache\": {\n    \"ttl\": \"1s\",,\n  }\n}\n", NULL,
		(const char *const[]){ ":3:", "malformed JSON", NULL });
	refused("cross-field", "{\"retry\": {\"base\": \"2s\", \"cap\": \"1s\"}}", NULL,
		(const char *const[]){ "retry.cap", "must be >= retry.base", NULL });
	refused("core-check",
		"{\"breaker\": {\"window\": \"time\", \"window_length\": \"10s\", "
		"\"window_buckets\": 3}}",
		NULL, (const char *const[]){ "breaker", "multiple of window_buckets", NULL });
	refused("port-range", "{\"listen\": {\"port\": 70000}}", NULL,
		(const char *const[]){ "listen.port", "must be in [0, 65535]", NULL });

	/* flags */
	snprintf(path, sizeof(path), "%s/good.json", dir);
	write_file(path, "{\"role\": \"service\", \"dependency\": {\"port\": 9}, \"retry\": "
			 "{\"attempts\": 4}, \"budget\": {\"ratio\": \"20%\"}, \"defenses\": "
			 "{\"jitter\": false}}");
	run((const char *[]){ "--check", "--config", path, NULL }, &st, out, sizeof(out), err,
	    sizeof(err));
	ok(st == 0 && strstr(out, "configuration ok: role service"),
	   "--check accepts a good file and exits 0 (%d)", st);
	run((const char *[]){ "--check", "--config", path, "--set", "budget.ratio=2", NULL }, &st,
	    out, sizeof(out), err, sizeof(err));
	ok(st == 2 && strstr(err, "--set: budget.ratio: must be in [0, 1], got 2"),
	   "a flag is checked like the file and overrides it: %s", err);
	run((const char *[]){ "--check", "--config", path, "--port", "http", NULL }, &st, out,
	    sizeof(out), err, sizeof(err));
	ok(st == 2 && strstr(err, "listen.port: expected an integer, got a string"),
	   "--port with a word is refused: %s", err);
	run((const char *[]){ "--role", "service", "--frobnicate", NULL }, &st, out, sizeof(out),
	    err, sizeof(err));
	ok(st == 2 && strstr(err, "unknown argument '--frobnicate'"),
	   "an unknown flag is refused with exit 2");
	run((const char *[]){ "--port", "0", NULL }, &st, out, sizeof(out), err, sizeof(err));
	ok(st == 2 && strstr(err, "role: not set"), "no role: exit 2 saying so");
	run((const char *[]){ "--role", "service", NULL }, &st, out, sizeof(out), err, sizeof(err));
	ok(st == 2 && strstr(err, "dependency.port: not set"),
	   "a service without a dependency: exit 2 saying so");
	run((const char *[]){ "--config", "/nonexistent/target.json", "--role", "dependency",
			      NULL },
	    &st, out, sizeof(out), err, sizeof(err));
	ok(st == 2 && strstr(err, "/nonexistent/target.json: cannot read"),
	   "a missing file: exit 2 naming it");
	run((const char *[]){ "--help", NULL }, &st, out, sizeof(out), err, sizeof(err));
	ok(st == 0 && strstr(out, "--role service|dependency"), "--help prints the usage, exit 0");

	/* --init-data */
	snprintf(path, sizeof(path), "%s/items", dir);
	run((const char *[]){ "--init-data", path, "--items", "50", NULL }, &st, out, sizeof(out),
	    err, sizeof(err));
	{
		int files = 0, sized = 0;
		struct stat sb;

		for (int id = 1; id <= 51; id++) {
			snprintf(p1, sizeof(p1), "%s/item-%d", path, id);
			if (stat(p1, &sb) == 0) {
				files++;
				sized += sb.st_size >= 100 && sb.st_size <= 1000;
			}
		}
		ok(st == 0 && files == 50 && sized == 50,
		   "--init-data --items 50 writes item-1..item-50, each 100..1000 bytes (%d, %d)",
		   files, sized);
	}
	{
		FILE *f;
		size_t na = 0, nb = 0;

		snprintf(p1, sizeof(p1), "%s/item-42", path);
		f = fopen(p1, "r");
		if (f) {
			na = fread(a, 1, sizeof(a) - 1, f);
			fclose(f);
		}
		a[na] = '\0';
		run((const char *[]){ "--init-data", path, "--items", "50", NULL }, &st, out,
		    sizeof(out), err, sizeof(err));
		f = fopen(p1, "r");
		if (f) {
			nb = fread(b, 1, sizeof(b) - 1, f);
			fclose(f);
		}
		b[nb] = '\0';
		ok(na > 0 && na == nb && memcmp(a, b, na) == 0 && strncmp(a, "id: 42\n", 7) == 0,
		   "item content is deterministic: a second run writes the same bytes");
	}
	run((const char *[]){ "--init-data", path, NULL }, &st, out, sizeof(out), err, sizeof(err));
	ok(st == 2 && strstr(err, "--items"), "--init-data without --items: exit 2");
	return exit_status();
}
