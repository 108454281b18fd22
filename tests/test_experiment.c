/* Experiments: the strict JSON reader (positions, escapes, numbers, limits,
 * allocation failures), durations and percentages, the model built from
 * experiments/examples/full.json (times, the plan, resolved references,
 * variables), error collection, and the agreement between the validator's
 * tables, experiments/schema.json and experiments/README.md.
 *
 * Reads files under the source tree: run from the repository root (as
 * `make test` does), or with FAULTLINE_BUILD pointing to a build directory
 * inside it. */
#include "tests/tap.h"
#include "tests/srctree.h"
#include "tests/failalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/duration.h"
#include "harness/experiment.h"
#include "harness/families.h"
#include "harness/json.h"
#include "harness/params.h"

static char src[PATH_MAX];
static char tmpdir[] = "/tmp/fl-experiment-XXXXXX";
static char keys_path[PATH_MAX + 16], script_path[PATH_MAX + 16];

static void cleanup(void)
{
	unlink(keys_path);
	unlink(script_path);
	rmdir(tmpdir);
}

/* The source tree: the current directory when it holds experiments/, else
 * the parent of $FAULTLINE_BUILD. */
static void find_src(void)
{
	srctree_find(src, sizeof(src), "experiments/schema.json", false);
}

static char *read_file(const char *rel, size_t *len)
{
	char path[PATH_MAX + 64];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/%s", src, rel);
	f = fopen(path, "rb");
	if (!f)
		bail_out("cannot open %s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
		bail_out("cannot read %s", path);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* ---- the JSON reader ------------------------------------------------------ */

static int parse(const char *s, size_t len, struct fl_json_doc **doc, struct fl_json_error *err)
{
	return fl_json_parse(s, len, NULL, doc, err);
}

static void test_json(void)
{
	const char *pos_doc = "{\n  \"a\": [1, \"\xc3\xa9\", {\"b\": true}]\n}";
	struct fl_json_doc *doc = NULL;
	struct fl_json_error err;
	const struct fl_json *a, *e;
	uint64_t u;
	int64_t i;
	int rc;

	rc = parse(pos_doc, strlen(pos_doc), &doc, &err);
	a = fl_json_get(doc ? doc->root : NULL, "a");
	e = a ? a->child->next : NULL;
	ok(rc == 0 && a && a->key_line == 2 && a->key_col == 3 && a->line == 2 && a->col == 8,
	   "a member knows where its key (2:3) and its value (2:8) start");
	ok(e && e->col == 12 && e->next->col == 17 && e->next->child->key_col == 18 &&
	       e->next->child->col == 23,
	   "columns count characters, not bytes: after \"\xc3\xa9\" the next value is at 2:17, "
	   "true at 2:23");
	fl_json_doc_free(doc);

	{
		const char *s = "\"\\u00e9\\ud83d\\ude00\\n\\t\\\"\\/\"";
		const unsigned char want[] = { 0xc3, 0xa9, 0xf0, 0x9f, 0x98,
					       0x80, '\n', '\t', '"',  '/' };

		rc = parse(s, strlen(s), &doc, &err);
		ok(rc == 0 && doc->root->len == sizeof(want) &&
		       memcmp(doc->root->str, want, sizeof(want)) == 0,
		   "escapes decode: \\u00e9 to 2 bytes, a surrogate pair to U+1F600 in 4 bytes");
		fl_json_doc_free(doc);
	}

	rc = parse("[\"a\\udc00\"]", 12, &doc, &err);
	ok(rc == -EINVAL && err.col == 4 &&
	       strcmp(err.msg, "lone surrogate \\udc00 in string") == 0,
	   "a lone low surrogate is refused where it starts: %s", err.msg);
	rc = parse("[\"\\ud83d\\u0041\"]", 18, &doc, &err);
	ok(rc == -EINVAL && strcmp(err.msg, "lone surrogate \\ud83d in string") == 0,
	   "a high surrogate followed by a non-surrogate is refused: %s", err.msg);

	rc = parse("[18446744073709551615, 18446744073709551616, 1.5, 1e3, -0, "
		   "-9223372036854775808, 9223372036854775808, 1e-999]",
		   strlen("[18446744073709551615, 18446744073709551616, 1.5, 1e3, -0, "
			  "-9223372036854775808, 9223372036854775808, 1e-999]"),
		   &doc, &err);
	if (rc == 0) {
		const struct fl_json *n = doc->root->child;
		int r1 = fl_json_u64(n, &u);
		uint64_t u1 = u;

		ok(r1 == 0 && u1 == UINT64_MAX, "2^64-1 reads exactly as an unsigned integer");
		n = n->next;
		is_int(fl_json_u64(n, &u), -ERANGE, "2^64 is out of range");
		n = n->next;
		is_int(fl_json_u64(n, &u), -EDOM, "1.5 is not a whole number");
		n = n->next;
		ok(fl_json_u64(n, &u) == 0 && u == 1000, "1e3 is the whole number 1000");
		n = n->next;
		ok(fl_json_i64(n, &i) == 0 && i == 0, "-0 is 0");
		n = n->next;
		ok(fl_json_i64(n, &i) == 0 && i == INT64_MIN, "-2^63 reads exactly as int64");
		n = n->next;
		is_int(fl_json_i64(n, &i), -ERANGE, "2^63 does not fit an int64");
		n = n->next;
		ok(n->num == 0, "1e-999 underflows to 0 (accepted)");
		fl_json_doc_free(doc);
	} else {
		skip("the number array did not parse", 8);
	}
	rc = parse("[1e999]", 7, &doc, &err);
	ok(rc == -EINVAL && err.line == 1 && err.col == 2 && strstr(err.msg, "number out of range"),
	   "1e999 is refused at 1:2: %s", err.msg);

	{
		char deep[200];
		int d;

		for (d = 0; d < 64; d++)
			deep[d] = '[';
		for (; d < 128; d++)
			deep[d] = ']';
		rc = parse(deep, 128, &doc, &err);
		ok(rc == 0, "64 levels of nesting are accepted");
		fl_json_doc_free(doc);
		memset(deep, '[', 65);
		memset(deep + 65, ']', 65);
		rc = parse(deep, 130, &doc, &err);
		ok(rc == -EINVAL && err.col == 65 &&
		       strcmp(err.msg, "nesting deeper than 64 levels") == 0,
		   "the 65th level is refused at 1:65");
	}

	{
		/* 1000 distinct keys, then k500 again: found by sorting, located. */
		size_t cap = 1000 * 16 + 64, n = 0;
		char *big = malloc(cap), want[64];
		size_t first_col = 0;

		n += (size_t)snprintf(big + n, cap - n, "{");
		for (int k = 0; k < 1000; k++) {
			if (k == 500)
				first_col = n + 1;
			n += (size_t)snprintf(big + n, cap - n, "\"k%d\":%d,", k, k);
		}
		n += (size_t)snprintf(big + n, cap - n, "\"k500\":0}");
		rc = parse(big, n, &doc, &err);
		snprintf(want, sizeof(want), "duplicate key \"k500\" (first at 1:%zu)", first_col);
		ok(rc == -EINVAL && strcmp(err.msg, want) == 0 && err.col == n - 8,
		   "a duplicate among 1001 keys is found and both places named: %s", err.msg);
		free(big);
	}

	{
		/* The value limit: the root plus 262143 elements is the most. */
		size_t cap = 2u * FL_JSON_MAX_VALUES + 8, n;
		char *arr = malloc(cap);

		arr[0] = '[';
		n = 1;
		for (unsigned k = 0; k < FL_JSON_MAX_VALUES - 1; k++) {
			arr[n++] = '0';
			arr[n++] = ',';
		}
		arr[n - 1] = ']';
		rc = parse(arr, n, &doc, &err);
		ok(rc == 0 && doc->root->n == FL_JSON_MAX_VALUES - 1,
		   "%u values in a document are accepted", FL_JSON_MAX_VALUES);
		fl_json_doc_free(doc);
		arr[n - 1] = ',';
		arr[n++] = '0';
		arr[n++] = ']';
		rc = parse(arr, n, &doc, &err);
		ok(rc == -EINVAL && strstr(err.msg, "more than 262144 values"),
		   "one more is refused: %s", err.msg);
		free(arr);
	}

	rc = fl_json_parse("{}", (size_t)FL_JSON_MAX_BYTES + 1, NULL, &doc, &err);
	ok(rc == -EFBIG && strstr(err.msg, "file larger than 16 MiB"),
	   "input over 16 MiB is refused before reading it: %s", err.msg);

	{
		const char *s = "{\"a\": [1, 2, {\"b\": \"\\u00e9x\"}], \"c\": null, \"d\": false}";
		struct failalloc fa;
		int bad = 0, n;

		for (n = 1;; n++) {
			failalloc_init(&fa, n);
			rc = fl_json_parse(s, strlen(s), &fa.alloc, &doc, &err);
			if (rc == 0)
				break;
			bad |= rc != -ENOMEM || fa.live != 0;
		}
		fl_json_doc_free(doc);
		ok(!bad && fa.live == 0 && n > 1,
		   "parsing survives a failure of each of its %d allocations (-ENOMEM, no leak)",
		   n - 1);
	}
}

/* ---- durations and percentages -------------------------------------------- */

static void test_duration(void)
{
	static const struct {
		const char *s;
		uint64_t ns;
	} good[] = {
		{ "250ms", 250000000ull },
		{ "5s", 5000000000ull },
		{ "1.5s", 1500000000ull },
		{ "2m", 120000000000ull },
		{ "1h", 3600000000000ull },
		{ "1h30m", 5400000000000ull },
		{ "10us", 10000ull },
		{ "10\xc2\xb5s", 10000ull },
		{ ".5s", 500000000ull },
		{ "0s", 0 },
		{ "1.5ns", 1 },
		{ "1m0.25s", 60250000000ull },
	};
	static const char *const bad[] = { "",	  "5",	 "-5s",	 "5sec",	 "s",
					   "5 s", "1.s", "1e3s", "999999999999h" };
	static const struct {
		uint64_t ns;
		const char *s;
	} fmt[] = { { 250000000ull, "250ms" },
		    { 1500000000ull, "1.5s" },
		    { 120000000000ull, "2m" },
		    { 5400000000000ull, "1h30m" },
		    { 0, "0s" },
		    { 1, "1ns" },
		    { 1000001000ull, "1.000001s" } };
	char why[160], buf[32];
	uint64_t ns;
	double f;
	int wrong = 0;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (fl_duration_parse(good[i].s, &ns, why, sizeof(why)) != 0 || ns != good[i].ns) {
			diag("'%s' read as %llu", good[i].s, (unsigned long long)ns);
			wrong++;
		}
	ok(!wrong, "durations read exactly: 250ms, 1.5s, 1h30m, .5s, 1m0.25s, 10µs ...");
	wrong = 0;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (fl_duration_parse(bad[i], &ns, why, sizeof(why)) != -EINVAL) {
			diag("'%s' was accepted", bad[i]);
			wrong++;
		}
	ok(!wrong,
	   "no unit, a negative value, unknown units, spaces, exponents, overflow: refused");
	ok(fl_duration_parse("5", &ns, why, sizeof(why)) == -EINVAL &&
	       strcmp(why, "'5' has no unit (write 5s, 5ms, ...)") == 0,
	   "a number without a unit says how to write it: %s", why);
	wrong = 0;
	for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++)
		if (strcmp(fl_duration_format(fmt[i].ns, buf, sizeof(buf)), fmt[i].s) != 0) {
			diag("%llu formatted as '%s'", (unsigned long long)fmt[i].ns, buf);
			wrong++;
		}
	ok(!wrong, "durations format to their shortest exact text (1.5s, 1h30m, 1.000001s)");
	ok(fl_percent_parse("40%", &f, why, sizeof(why)) == 0 && f == 0.4 &&
	       fl_percent_parse("12.5%", &f, why, sizeof(why)) == 0 && f == 0.125 &&
	       fl_percent_parse("40", &f, why, sizeof(why)) == -EINVAL &&
	       fl_percent_parse("-1%", &f, why, sizeof(why)) == -EINVAL,
	   "percentages: 40%% is 0.4, 12.5%% is 0.125; 40 and -1%% are refused");
}

/* ---- the spec tables -------------------------------------------------------- */

static void test_specs(void)
{
	const struct fl_obj_spec *specs[64];
	size_t n = fl_experiment_specs(specs, 64), checked = 0;
	struct fl_arena arena;
	struct fl_diag d;
	int wrong = 0;
	char known[128];

	fl_arena_init(&arena, NULL);
	fl_diag_init(&d, "default");
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < specs[i]->n; j++) {
			const struct fl_param_spec *ps = &specs[i]->params[j];
			struct fl_reader r = { &d, &arena, NULL, NULL };
			struct fl_json_doc *doc = NULL;
			struct fl_json_error err;
			struct fl_pval v;
			char json[256];
			bool quote = ps->type == FL_PT_STRING || ps->type == FL_PT_ENUM ||
				     ps->type == FL_PT_DURATION || ps->type == FL_PT_REGEX ||
				     ((ps->type == FL_PT_FRACTION || ps->type == FL_PT_BOUND) &&
				      !(ps->def && ps->def[0] >= '0' && ps->def[0] <= '9' &&
					!strpbrk(ps->def, "%smhun")));

			if (!ps->def)
				continue;
			snprintf(json, sizeof(json), "{\"%s\": %s%s%s}", ps->name,
				 quote ? "\"" : "", ps->def, quote ? "\"" : "");
			if (fl_json_parse(json, strlen(json), NULL, &doc, &err) != 0 ||
			    fl_param_read_value(&r, ps, doc->root->child, ps->name, &v) != 0) {
				diag("%s.%s: default %s does not read back", specs[i]->name,
				     ps->name, ps->def);
				wrong++;
			}
			checked++;
			fl_json_doc_free(doc);
		}
	}
	fl_arena_release(&arena);
	ok(!wrong && d.count == 0 && checked > 40,
	   "every one of the %zu defaults in the tables is valid and within its bounds", checked);
	is_str(fl_family_names(FL_FAULT, known, sizeof(known)), "jitter, cache, capacity",
	       "fault families of this issue: jitter, cache, capacity");
	is_str(fl_family_names(FL_PROBE, known, sizeof(known)), "prometheus, http, command, client",
	       "probe families: prometheus, http, command, client");
	{
		static const char *const cands[] = { "seed", "settings", "steady_state" };

		ok(fl_did_you_mean("seeed", cands, 3) &&
		       strcmp(fl_did_you_mean("seeed", cands, 3), "seed") == 0 &&
		       fl_did_you_mean("zzz", cands, 3) == NULL,
		   "typos get a suggestion ('seeed': 'seed'), unrelated words none");
	}
}

/* ---- the model --------------------------------------------------------------- */

#define SEC 1000000000ull

static size_t action_index(const struct fl_experiment *x, const char *name)
{
	for (size_t i = 0; i < x->nactions; i++)
		if (strcmp(x->actions[i].name, name) == 0)
			return i;
	return SIZE_MAX;
}

static const char *var_source(const struct fl_experiment *x, const char *name)
{
	for (size_t i = 0; i < x->nvars; i++)
		if (strcmp(x->vars[i].name, name) == 0)
			return x->vars[i].source;
	return "(unused)";
}

static void test_full_model(void)
{
	const char *set[] = { "run_label=cli" };
	struct fl_vars vars = { set, 1, false };
	struct fl_experiment *x = NULL;
	struct fl_diag d;
	size_t len, repeats = 0, sorted = 1;
	char *buf = read_file("experiments/examples/full.json", &len);
	char ev[64];
	int rc;

	const char *build = getenv("FAULTLINE_BUILD");
	char *saved = build ? strdup(build) : NULL;

	setenv("FAULTLINE_BUILD", "/opt/fl", 1);
	fl_diag_init(&d, "full.json");
	rc = fl_experiment_parse("full.json", buf, len, &vars, NULL, &x, &d);
	if (rc != 0) {
		fl_diag_print(&d, stdout);
		bail_out("experiments/examples/full.json does not validate (%d)", rc);
	}
	ok(x->warmup_ns == 2 * SEC && x->steady_ns == 5 * SEC && x->method_end_ns == 30 * SEC &&
	       x->final_ns == 42 * SEC && x->end_ns == 45 * SEC && x->load.duration_ns == 45 * SEC,
	   "the timeline: warm-up 2s, baseline to 5s, method to 30s, final window 42s..45s");
	ok(x->nactions == 5 && action_index(x, "dep-capacity") == 0 &&
	       action_index(x, "stampede") == 1 && action_index(x, "flush-items") == 2 &&
	       action_index(x, "flush-all") == 3 && action_index(x, "no-jitter") == 4,
	   "actions are sorted by start time");
	ok(x->actions[0].start_ns == 10 * SEC && x->actions[0].end_ns == 20 * SEC &&
	       x->actions[2].start_ns == x->actions[2].end_ns && x->actions[1].repeat_ns == 2 * SEC,
	   "action times: dep-capacity 10s..20s, flush-items instantaneous, stampede every 2s");
	for (size_t i = 0; i < x->nplan; i++) {
		if (x->plan[i].kind == FL_PLAN_ACTION_REPEAT)
			repeats++;
		if (i && x->plan[i].t_ns < x->plan[i - 1].t_ns)
			sorted = 0;
	}
	ok(x->nplan == 15 && repeats == 2 && sorted && x->plan[x->nplan - 1].kind == FL_PLAN_END,
	   "the plan has 15 events in time order, the stampede repeated at 14s and 16s");
	ok(x->nexpects == 11 && x->expects[1].kind == FL_EXP_BECOMES &&
	       x->expects[1].after.kind == FL_EV_EXPECT && x->expects[1].after.index == 0 &&
	       x->expects[1].after.t_ns == FL_T_DYNAMIC,
	   "'breaker closes again' waits for the event of expectation 0 ('breaker opens')");
	ok(x->expects[2].value.ratio &&
	       strcmp(x->probes[x->expects[2].value.probe].name, "client.attempts") == 0 &&
	       strcmp(x->probes[x->expects[2].value.probe2].name, "client.requests") == 0 &&
	       x->expects[2].pred.op == FL_CMP_LE && x->expects[2].pred.value == 1.12 &&
	       x->expects[2].window.from.t_ns == 10 * SEC &&
	       x->expects[2].window.until.t_ns == 20 * SEC,
	   "the amplification bound is attempts/requests <= 1.12 over dep-capacity's 10s..20s");
	ok(x->expects[8].kind == FL_EXP_RECOVERS && x->expects[8].within_ns == 8 * SEC &&
	       x->expects[8].settle_ns == 2 * SEC && x->expects[8].after.t_ns == 30 * SEC,
	   "'back to steady state': within 8s after no-jitter.end (30s), settle 2s");
	is_str(fl_event_format(x, &x->expects[9].second, ev, sizeof(ev)), "dep-capacity.end",
	       "events format back to their names");
	ok(x->steady[0].pred.op == FL_CMP_LE && x->steady[0].pred.value == 0.05 &&
	       strcmp(x->steady[0].name, "p99 under 50ms") == 0 &&
	       x->steady[1].pred.value == 0.01 && x->steady[1].agg == FL_AGG_MEAN,
	   "bounds: \"50ms\" is 0.05 s, \"1%%\" is 0.01; aggregate mean");
	is_str(x->steady[1].name, "client.error_rate <= 1%",
	       "an unnamed check gets a readable name");
	ok(x->load.rate == 500 && x->load.connections == 16 && x->load.retry_attempts == 3 &&
	       x->load.retry_backoff == RS_BACKOFF_DECORRELATED && x->load.budget &&
	       x->load.budget_ratio == 0.1 && x->load.seed == 7 && x->seed == 42 &&
	       x->load.timeout_ns == 250000000ull,
	   "load: 500/s, 16 connections, 3 attempts, decorrelated jitter, budget 10%%, seed 7");
	is_str(x->load.path, "/item/${rand:1:1000}",
	       "template variables stay for the load generator");
	is_str(x->service.url, "http://127.0.0.1:${port}", "late variables stay for the runner");
	is_str(x->service.argv[0], "/opt/fl/faultline-target",
	       "${FAULTLINE_BUILD} comes from the environment over the default");
	is_str(x->load.headers[1], "X-Run: cli", "--var run_label=cli beats the default");
	ok(strcmp(var_source(x, "run_label"), "--var") == 0 &&
	       strcmp(var_source(x, "FAULTLINE_BUILD"), "environment") == 0 &&
	       strcmp(var_source(x, "state_dir"), "default") == 0,
	   "each variable records where its value came from (for the journal)");
	ok(x->dependency.present && x->dependency.announce && x->naborts == 2 &&
	       x->aborts[0].for_ns == 5 * SEC,
	   "the dependency and the abort conditions are in the model");
	fl_experiment_free(x);

	{
		struct failalloc fa;
		int bad = 0, n;

		for (n = 1;; n++) {
			failalloc_init(&fa, n);
			fl_diag_init(&d, "full.json");
			rc = fl_experiment_parse("full.json", buf, len, &vars, &fa.alloc, &x, &d);
			if (rc == 0)
				break;
			bad |= rc != -ENOMEM || fa.live != 0;
		}
		fl_experiment_free(x);
		ok(!bad && fa.live == 0,
		   "loading survives a failure of each of its %d allocations (-ENOMEM, no leak)",
		   n - 1);
	}
	free(buf);
	if (saved)
		setenv("FAULTLINE_BUILD", saved, 1);
	else
		unsetenv("FAULTLINE_BUILD");
	free(saved);
}

static void test_minimal_and_late(void)
{
	struct fl_vars vars = { NULL, 0, true };
	struct fl_experiment *x = NULL;
	struct fl_ports ports = { 8080, 8081, 0, 0 };
	struct rs_err err = { "" };
	struct fl_diag d;
	size_t len;
	char *buf = read_file("experiments/examples/minimal.json", &len), out[64];
	int rc;

	fl_diag_init(&d, "minimal.json");
	rc = fl_experiment_parse("minimal.json", buf, len, &vars, NULL, &x, &d);
	ok(rc == 0 && x->end_ns == 5 * SEC && x->nplan == 2 && x->load.connections == 10 &&
	       x->settings.cadence_ns == 100000000ull,
	   "minimal.json: runs 5s with the defaults (10 connections, 100ms cadence)");
	ok(rc == 0 && strcmp(x->service.url, "http://127.0.0.1:${port}") == 0 &&
	       strcmp(x->service.admin, "http://127.0.0.1:${admin_port}") == 0 &&
	       strcmp(x->load.url, x->service.url) == 0 &&
	       strcmp(x->service.argv[0], "build/faultline-target") == 0,
	   "an announcing command gets url and admin from the announced ports");
	fl_experiment_free(x);
	free(buf);

	rc = fl_expand_late("http://127.0.0.1:${port}/a$${b}", &ports, out, sizeof(out), &err);
	is_str(rc > 0 ? out : err.msg, "http://127.0.0.1:8080/a${b}",
	       "fl_expand_late puts the announced port in and unescapes $$");
	rc = fl_expand_late("http://127.0.0.1:${dependency_port}", &ports, out, sizeof(out), &err);
	ok(rc == -EINVAL && strstr(err.msg, "not known yet"), "an unknown port is an error: %s",
	   err.msg);
	rc = fl_expand_late("http://127.0.0.1:${port}", &ports, out, 10, &err);
	is_int(rc, -ENOSPC, "a buffer too small is -ENOSPC");
}

static void test_errors(void)
{
	static const char three[] =
	    "{\n"
	    "  \"version\": 1, \"title\": \"t\",\n"
	    "  \"target\": { \"url\": \"http://127.0.0.1:1\", \"colour\": 1 },\n"
	    "  \"load\": { \"duration\": 30, \"connections\": 0 }\n"
	    "}\n";
	static const char vars_doc[] = "{\"version\": 1, \"title\": \"${who}\", "
				       "\"variables\": {\"who\": \"default\"}, "
				       "\"target\": {\"url\": \"http://127.0.0.1:1\"}, "
				       "\"load\": {\"duration\": \"1s\"}}";
	const char *set[] = { "who=cli" };
	struct fl_vars no_env = { NULL, 0, true }, env = { NULL, 0, false },
		       cli = { set, 1, false };
	struct fl_experiment *x = NULL;
	struct fl_diag d;
	int rc;

	fl_diag_init(&d, "t.json");
	rc = fl_experiment_parse("t.json", three, strlen(three), &no_env, NULL, &x, &d);
	ok(rc == -EINVAL && d.count == 3 && d.e[0].line == 3 && d.e[1].line == 4 &&
	       d.e[2].line == 4 && d.e[1].col < d.e[2].col,
	   "every error of a file is reported, in file order (3 errors)");
	is_str(d.e[0].text,
	       "t.json:3:44: target.colour: unknown key 'colour' (known: command, url, "
	       "admin, announce, metrics, ready, env, cwd, control, stop_timeout, "
	       "dependency)",
	       "an unknown key names file, line, column, path and the keys that exist");
	ok(strstr(d.e[1].text, "t.json:4:25: load.duration: a duration must be a string") &&
	       strstr(d.e[2].text, "t.json:4:44: load.connections: 0 is below the minimum 1"),
	   "a bare number in a time field and a value below its minimum are located");

	fl_diag_init(&d, "t.json");
	rc = fl_experiment_parse("t.json", vars_doc, strlen(vars_doc), &no_env, NULL, &x, &d);
	ok(rc == 0 && strcmp(x->title, "default") == 0, "a variable falls back to its default");
	fl_experiment_free(x);
	setenv("who", "env", 1);
	rc = fl_experiment_parse("t.json", vars_doc, strlen(vars_doc), &env, NULL, &x, &d);
	ok(rc == 0 && strcmp(x->title, "env") == 0, "the environment beats the default");
	fl_experiment_free(x);
	rc = fl_experiment_parse("t.json", vars_doc, strlen(vars_doc), &cli, NULL, &x, &d);
	ok(rc == 0 && strcmp(x->title, "cli") == 0, "--var beats the environment");
	fl_experiment_free(x);
	unsetenv("who");

	{
		char many[4096];
		size_t n =
		    (size_t)snprintf(many, sizeof(many),
				     "{\"version\": 1, \"title\": \"t\", \"target\": {\"url\": "
				     "\"http://127.0.0.1:1\"}, \"load\": {\"duration\": \"1s\"");

		for (int k = 0; k < 30; k++)
			n += (size_t)snprintf(many + n, sizeof(many) - n, ", \"x%02d\": 1", k);
		n += (size_t)snprintf(many + n, sizeof(many) - n, "}}");
		fl_diag_init(&d, "t.json");
		rc = fl_experiment_parse("t.json", many, n, &no_env, NULL, &x, &d);
		ok(rc == -EINVAL && d.count == 30 && strstr(d.e[FL_DIAG_MAX - 1].text, "load.x19"),
		   "30 errors are counted and the first %d kept", FL_DIAG_MAX);
	}
}

/* ---- docs, schema and validator agree ------------------------------------------------ */

static const char python_check[] =
    "import json, sys\n"
    "try:\n"
    "    import jsonschema\n"
    "except ImportError:\n"
    "    print('skip'); sys.exit(0)\n"
    "schema_path, keys_path, examples, rejects = sys.argv[1], sys.argv[2], sys.argv[3].split(','), "
    "sys.argv[4:]\n"
    "s = json.load(open(schema_path))\n"
    "def res(good, desc, detail=''):\n"
    "    print(('ok' if good else 'not ok') + '\\t' + desc + '\\t' + detail.replace('\\n', ' "
    "')[:400])\n"
    "try:\n"
    "    jsonschema.Draft202012Validator.check_schema(s); res(True, 'schema.json is a valid JSON "
    "Schema draft 2020-12')\n"
    "except Exception as e:\n"
    "    res(False, 'schema.json is a valid JSON Schema draft 2020-12', str(e))\n"
    "v = jsonschema.Draft202012Validator(s)\n"
    "for ex in examples:\n"
    "    errs = list(v.iter_errors(json.load(open(ex))))\n"
    "    res(not errs, 'the schema accepts ' + ex.split('/')[-1], '; '.join(e.json_path + ': ' + "
    "e.message for e in errs[:3]))\n"
    "keys = {}\n"
    "for line in open(keys_path):\n"
    "    o, k = line.rstrip('\\n').split('\\t'); keys.setdefault(o, set()).add(k)\n"
    "defs = s.get('$defs', {})\n"
    "missing = [o + ':' + k for o in keys for k in keys[o] if k not in defs.get(o, "
    "{}).get('properties', {})]\n"
    "res(not missing, 'every key the validator accepts is in the schema', ' "
    "'.join(sorted(missing)))\n"
    "extra = [o + ':' + k for o, d in defs.items() if 'properties' in d for k in d['properties'] "
    "if k not in keys.get(o, set())]\n"
    "res(not extra, 'every key in the schema is one the validator accepts', ' "
    "'.join(sorted(extra)))\n"
    "bad = [f.split('/')[-1] for f in rejects if v.is_valid(json.load(open(f)))]\n"
    "res(not bad, 'the schema also rejects the %d structurally malformed experiments' % "
    "len(rejects), ' '.join(bad))\n";

/* Files of tests/bad-experiments/ whose fault the schema can see. */
static const char *const schema_rejects[] = {
	"duration-bare-number",
	"duration-negative",
	"duration-unknown-unit",
	"duration-without-unit",
	"enum-typo",
	"expectation-no-kind",
	"expectation-two-kinds",
	"fault-param-typo",
	"fraction-out-of-range",
	"integer-with-fraction",
	"missing-target",
	"missing-title",
	"percentage-out-of-range",
	"probe-name-invalid",
	"ratio-three-probes",
	"reserved-variable",
	"seed-negative",
	"target-neither-command-nor-url",
	"two-comparisons",
	"unknown-fault-family",
	"unknown-key-typo",
	"unknown-key",
	"unknown-probe-family",
	"version-2",
	"wrong-type",
	"action-name-invalid",
};

#define PY_CHECKS 6

static void test_schema(void)
{
	const struct fl_obj_spec *specs[64];
	size_t n = fl_experiment_specs(specs, 64);
	char *argv[64], paths[40][PATH_MAX + 64], examples[2 * PATH_MAX + 128];
	char line[1024];
	int pipefd[2], status, got = 0, argc = 0, fd;
	FILE *f;
	pid_t pid;

	if (access("/usr/bin/python3", X_OK) != 0) {
		skip("/usr/bin/python3 missing (apt-get install python3-jsonschema)", PY_CHECKS);
		return;
	}
	f = fopen(keys_path, "w");
	if (!f)
		bail_out("cannot write %s: %s", keys_path, strerror(errno));
	for (size_t i = 0; i < n; i++) {
		if (specs[i]->typed)
			fprintf(f, "%s\ttype\n", specs[i]->name);
		for (size_t j = 0; j < specs[i]->n; j++)
			fprintf(f, "%s\t%s\n", specs[i]->name, specs[i]->params[j].name);
	}
	fclose(f);
	fd = open(script_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, python_check, sizeof(python_check) - 1) < 0)
		bail_out("cannot write %s", script_path);
	close(fd);

	argv[argc++] = "/usr/bin/python3";
	argv[argc++] = script_path;
	snprintf(paths[0], sizeof(paths[0]), "%s/experiments/schema.json", src);
	argv[argc++] = paths[0];
	argv[argc++] = keys_path;
	snprintf(examples, sizeof(examples),
		 "%s/experiments/examples/minimal.json,%s/experiments/examples/full.json", src,
		 src);
	argv[argc++] = examples;
	for (size_t i = 0; i < sizeof(schema_rejects) / sizeof(schema_rejects[0]); i++) {
		snprintf(paths[i + 1], sizeof(paths[i + 1]), "%s/tests/bad-experiments/%s.json",
			 src, schema_rejects[i]);
		argv[argc++] = paths[i + 1];
	}
	argv[argc] = NULL;
	if (pipe(pipefd) != 0)
		bail_out("pipe: %s", strerror(errno));
	pid = fork();
	if (pid == 0) {
		dup2(pipefd[1], STDOUT_FILENO);
		close(pipefd[0]);
		close(pipefd[1]);
		alarm(60);
		execv(argv[0], argv);
		_exit(127);
	}
	close(pipefd[1]);
	f = fdopen(pipefd[0], "r");
	while (f && fgets(line, sizeof(line), f)) {
		char *desc, *detail;

		line[strcspn(line, "\n")] = '\0';
		if (strcmp(line, "skip") == 0) {
			skip("python3-jsonschema is not installed (apt-get install "
			     "python3-jsonschema)",
			     PY_CHECKS);
			got = PY_CHECKS;
			break;
		}
		desc = strchr(line, '\t');
		if (!desc)
			continue;
		*desc++ = '\0';
		detail = strchr(desc, '\t');
		if (detail)
			*detail++ = '\0';
		if (got < PY_CHECKS && !ok(strcmp(line, "ok") == 0, "%s", desc) && detail)
			diag("%s", detail);
		got++;
	}
	if (f)
		fclose(f);
	waitpid(pid, &status, 0);
	for (; got < PY_CHECKS; got++)
		ok(0, "the schema check script did not report (exit status %d)", status);
}

static void test_docs(void)
{
	const struct fl_obj_spec *specs[64];
	size_t n = fl_experiment_specs(specs, 64), len, flen;
	char *readme = read_file("experiments/README.md", &len);
	char *full = read_file("experiments/examples/full.json", &flen);
	int missing = 0, stale = 0, unused = 0;

	for (size_t i = 0; i < n; i++) {
		char marker[128], row[96];
		char *start, *end;

		snprintf(marker, sizeof(marker), "<!-- object: %s -->", specs[i]->name);
		start = strstr(readme, marker);
		if (!start) {
			diag("README has no section '%s'", marker);
			missing++;
			continue;
		}
		start += strlen(marker);
		end = strstr(start, "<!-- object: ");
		if (end)
			*end = '\0';
		if (specs[i]->typed && !strstr(start, "| `type` |")) {
			diag("README section %s lacks `type`", specs[i]->name);
			missing++;
		}
		for (size_t j = 0; j < specs[i]->n; j++) {
			snprintf(row, sizeof(row), "| `%s` |", specs[i]->params[j].name);
			if (!strstr(start, row)) {
				diag("README section %s lacks `%s`", specs[i]->name,
				     specs[i]->params[j].name);
				missing++;
			}
			snprintf(row, sizeof(row), "\"%s\":", specs[i]->params[j].name);
			if (!strstr(full, row)) {
				diag("examples/full.json never uses %s.%s", specs[i]->name,
				     specs[i]->params[j].name);
				unused++;
			}
		}
		/* Rows naming keys the spec does not have are stale documentation. */
		for (char *r = strstr(start, "\n| `"); r; r = strstr(r + 1, "\n| `")) {
			char key[64];
			size_t k = 0;

			r += 4;
			while (r[k] && r[k] != '`' && k < sizeof(key) - 1) {
				key[k] = r[k];
				k++;
			}
			key[k] = '\0';
			if (!fl_obj_spec_find(specs[i], key) &&
			    !(specs[i]->typed && strcmp(key, "type") == 0)) {
				diag("README section %s documents unknown key `%s`", specs[i]->name,
				     key);
				stale++;
			}
		}
		if (end)
			*end = '<';
	}
	ok(!missing, "experiments/README.md documents every key of all %zu objects", n);
	ok(!stale, "experiments/README.md documents no key the validator does not accept");
	ok(!unused, "experiments/examples/full.json uses every key of the format");
	free(readme);
	free(full);
}

int main(void)
{
	plan(69);
	alarm(120);
	find_src();
	if (!mkdtemp(tmpdir))
		bail_out("cannot create a temporary directory: %s", strerror(errno));
	snprintf(keys_path, sizeof(keys_path), "%s/keys", tmpdir);
	snprintf(script_path, sizeof(script_path), "%s/check.py", tmpdir);
	atexit(cleanup);
	test_json();
	test_duration();
	test_specs();
	test_full_model();
	test_minimal_and_late();
	test_errors();
	test_schema();
	test_docs();
	return exit_status();
}
