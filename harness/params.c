/* Parameter specs, diagnostics and the spec-driven reader (see params.h). */
#include "harness/params.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "harness/duration.h"

/* ---- diagnostics ------------------------------------------------------ */

void fl_diag_init(struct fl_diag *d, const char *file)
{
	d->file = file ? file : "-";
	d->count = 0;
}

static void diag_vadd(struct fl_diag *d, uint32_t line, uint32_t col, const char *path,
		      const char *fmt, va_list ap) RS_PRINTF(5, 0);
static void diag_vadd(struct fl_diag *d, uint32_t line, uint32_t col, const char *path,
		      const char *fmt, va_list ap)
{
	struct fl_diag_entry *e;
	size_t used;
	int n;

	if (!d)
		return;
	if (d->count++ >= FL_DIAG_MAX)
		return;
	e = &d->e[d->count - 1];
	e->line = line;
	e->col = col;
	if (line)
		n = snprintf(e->text, sizeof(e->text), "%s:%u:%u: ", d->file, line, col);
	else
		n = snprintf(e->text, sizeof(e->text), "%s: ", d->file);
	used = n > 0 ? (size_t)n : 0;
	if (path && *path && used < sizeof(e->text)) {
		n = snprintf(e->text + used, sizeof(e->text) - used, "%s: ", path);
		used += n > 0 ? (size_t)n : 0;
	}
	if (used < sizeof(e->text))
		vsnprintf(e->text + used, sizeof(e->text) - used, fmt, ap);
}

void fl_diag_add(struct fl_diag *d, uint32_t line, uint32_t col, const char *path, const char *fmt,
		 ...)
{
	va_list ap;

	va_start(ap, fmt);
	diag_vadd(d, line, col, path, fmt, ap);
	va_end(ap);
}

void fl_diag_at(struct fl_diag *d, const struct fl_json *v, bool at_key, const char *path,
		const char *fmt, ...)
{
	uint32_t line = 0, col = 0;
	va_list ap;

	if (v) {
		line = at_key && v->key ? v->key_line : v->line;
		col = at_key && v->key ? v->key_col : v->col;
	}
	va_start(ap, fmt);
	diag_vadd(d, line, col, path, fmt, ap);
	va_end(ap);
}

bool fl_diag_full(const struct fl_diag *d)
{
	return d && d->count >= FL_DIAG_MAX;
}

void fl_diag_sort(struct fl_diag *d)
{
	size_t n = d->count < FL_DIAG_MAX ? d->count : FL_DIAG_MAX;

	/* Insertion sort: at most FL_DIAG_MAX entries, and stable. */
	for (size_t i = 1; i < n; i++) {
		struct fl_diag_entry tmp = d->e[i];
		size_t j = i;

		while (j > 0 && (d->e[j - 1].line > tmp.line ||
				 (d->e[j - 1].line == tmp.line && d->e[j - 1].col > tmp.col))) {
			d->e[j] = d->e[j - 1];
			j--;
		}
		d->e[j] = tmp;
	}
}

size_t fl_diag_print(const struct fl_diag *d, FILE *f)
{
	size_t n = d->count < FL_DIAG_MAX ? d->count : FL_DIAG_MAX;

	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s\n", d->e[i].text);
	if (d->count > n)
		fprintf(f, "%s: %zu more errors not shown\n", d->file, d->count - n);
	return d->count;
}

/* ---- paths ------------------------------------------------------------ */

static bool plain_key(const char *key)
{
	if (!*key)
		return false;
	for (const char *p = key; *p; p++)
		if (!(*p == '_' || *p == '-' || (*p >= '0' && *p <= '9') ||
		      (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
			return false;
	return true;
}

/* Appends n bytes of s to buf (FL_PATH_MAX bytes, NUL-terminated),
 * truncating with "..." when full. */
static void path_append(char *buf, const char *s, size_t n)
{
	size_t used = strlen(buf);

	if (used + n >= FL_PATH_MAX) {
		n = used + 4 < FL_PATH_MAX ? FL_PATH_MAX - 4 - used : 0;
		memcpy(buf + used, s, n);
		memcpy(buf + used + n, "...", 4);
		return;
	}
	memcpy(buf + used, s, n);
	buf[used + n] = '\0';
}

char *fl_path_key(char *buf, const char *parent, const char *key)
{
	size_t klen = strlen(key);

	if (parent != buf) {
		buf[0] = '\0';
		if (parent)
			path_append(buf, parent, strlen(parent));
	}
	if (klen > 64)
		klen = 64;
	if (plain_key(key)) {
		if (buf[0])
			path_append(buf, ".", 1);
		path_append(buf, key, klen);
	} else {
		path_append(buf, "[\"", 2);
		path_append(buf, key, klen);
		path_append(buf, "\"]", 2);
	}
	return buf;
}

char *fl_path_index(char *buf, const char *parent, size_t i)
{
	char num[32];
	int n = snprintf(num, sizeof(num), "[%zu]", i);

	if (parent != buf) {
		buf[0] = '\0';
		if (parent)
			path_append(buf, parent, strlen(parent));
	}
	path_append(buf, num, n > 0 ? (size_t)n : 0);
	return buf;
}

/* ---- specs ------------------------------------------------------------ */

const char *fl_ptype_name(enum fl_ptype t)
{
	switch (t) {
	case FL_PT_STRING:
		return "string";
	case FL_PT_ENUM:
		return "one of";
	case FL_PT_BOOL:
		return "boolean";
	case FL_PT_INT:
		return "integer";
	case FL_PT_UINT64:
		return "unsigned 64-bit integer";
	case FL_PT_NUMBER:
		return "number";
	case FL_PT_DURATION:
		return "duration";
	case FL_PT_FRACTION:
		return "percentage or fraction";
	case FL_PT_BOUND:
		return "number, duration or percentage";
	case FL_PT_REGEX:
		return "regular expression";
	case FL_PT_STRINGS:
		return "array of strings";
	case FL_PT_MAP:
		return "object of strings";
	case FL_PT_OBJECT:
		return "object";
	case FL_PT_ARRAY:
		return "array";
	case FL_PT_ANY:
		return "value";
	}
	return "value";
}

const struct fl_param_spec *fl_obj_spec_find(const struct fl_obj_spec *spec, const char *name)
{
	for (size_t i = 0; i < spec->n; i++)
		if (strcmp(spec->params[i].name, name) == 0)
			return &spec->params[i];
	return NULL;
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), row[65];

	if (la > 64 || lb > 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];

		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best;

			best = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

const char *fl_did_you_mean(const char *word, const char *const *cands, size_t n)
{
	const char *best = NULL;
	size_t best_d = SIZE_MAX, len = strlen(word);

	for (size_t i = 0; i < n; i++) {
		size_t d = edit_distance(word, cands[i]);

		if (d < best_d) {
			best_d = d;
			best = cands[i];
		}
	}
	if (!best || best_d == 0 || best_d > 2 || best_d * 2 >= len)
		return NULL;
	return best;
}

/* ---- values ----------------------------------------------------------- */

const struct fl_pval *fl_params_get(const struct fl_params *p, const char *name)
{
	if (!p || !p->spec || !p->v)
		return NULL;
	for (size_t i = 0; i < p->spec->n; i++)
		if (strcmp(p->spec->params[i].name, name) == 0)
			return &p->v[i];
	return NULL;
}

const char *fl_params_str(const struct fl_params *p, const char *name, const char *dflt)
{
	const struct fl_pval *v = fl_params_get(p, name);

	return v && v->set && v->s ? v->s : dflt;
}

uint64_t fl_params_ns(const struct fl_params *p, const char *name, uint64_t dflt)
{
	const struct fl_pval *v = fl_params_get(p, name);

	return v && v->set ? v->u : dflt;
}

double fl_params_num(const struct fl_params *p, const char *name, double dflt)
{
	const struct fl_pval *v = fl_params_get(p, name);

	return v && v->set ? v->d : dflt;
}

int64_t fl_params_int(const struct fl_params *p, const char *name, int64_t dflt)
{
	const struct fl_pval *v = fl_params_get(p, name);

	return v && v->set ? v->i : dflt;
}

bool fl_params_bool(const struct fl_params *p, const char *name, bool dflt)
{
	const struct fl_pval *v = fl_params_get(p, name);

	return v && v->set ? v->b : dflt;
}

/* ---- reading ---------------------------------------------------------- */

/* Reads a default or bound written as text into out (trusted input: the
 * static tables, checked by the tests). */
static void text_value(const struct fl_param_spec *ps, const char *text, struct fl_pval *out)
{
	char why[8];

	switch (ps->type) {
	case FL_PT_STRING:
	case FL_PT_ENUM:
	case FL_PT_REGEX:
		out->s = text;
		break;
	case FL_PT_BOOL:
		out->b = strcmp(text, "true") == 0;
		break;
	case FL_PT_INT:
		out->i = strtoll(text, NULL, 10);
		out->d = (double)out->i;
		break;
	case FL_PT_UINT64:
		out->u = strtoull(text, NULL, 10);
		break;
	case FL_PT_NUMBER:
		out->d = strtod(text, NULL);
		break;
	case FL_PT_DURATION:
		if (fl_duration_parse(text, &out->u, why, sizeof(why)) != 0)
			out->u = 0;
		break;
	case FL_PT_FRACTION:
	case FL_PT_BOUND:
		if (strchr(text, '%')) {
			if (fl_percent_parse(text, &out->d, why, sizeof(why)) != 0)
				out->d = 0;
		} else if (ps->type == FL_PT_BOUND &&
			   fl_duration_parse(text, &out->u, why, sizeof(why)) == 0) {
			out->d = (double)out->u / 1e9;
		} else {
			out->d = strtod(text, NULL);
		}
		break;
	default:
		break;
	}
}

char *fl_pval_format(const struct fl_param_spec *ps, const struct fl_pval *v, char *buf,
		     size_t size)
{
	if (!size)
		return buf;
	switch (ps->type) {
	case FL_PT_STRING:
	case FL_PT_ENUM:
	case FL_PT_REGEX:
		snprintf(buf, size, "%s", v->s ? v->s : "");
		break;
	case FL_PT_BOOL:
		snprintf(buf, size, "%s", v->b ? "true" : "false");
		break;
	case FL_PT_INT:
		snprintf(buf, size, "%" PRId64, v->i);
		break;
	case FL_PT_UINT64:
		snprintf(buf, size, "%" PRIu64, v->u);
		break;
	case FL_PT_DURATION:
		fl_duration_format(v->u, buf, size);
		break;
	case FL_PT_FRACTION:
		snprintf(buf, size, "%.10g%%", v->d * 100.0);
		break;
	case FL_PT_NUMBER:
	case FL_PT_BOUND:
		snprintf(buf, size, "%.10g", v->d);
		break;
	default:
		snprintf(buf, size, "(%s)", fl_ptype_name(ps->type));
		break;
	}
	return buf;
}

/* Rejects regexes whose compiled form could blow up (nested counted
 * repetitions) before handing them to regcomp: the product of the upper
 * repetition bounds must stay <= 1000, the source <= 512 bytes. */
static int regex_check(const char *re, char *why, size_t why_len)
{
	double product = 1;
	regex_t rx;
	int rc;

	if (strlen(re) > 512) {
		snprintf(why, why_len, "regular expression longer than 512 characters");
		return -EINVAL;
	}
	for (const char *p = re; *p; p++) {
		unsigned long m = 0, n;
		char *end;

		if (*p == '\\' && p[1]) {
			p++;
			continue;
		}
		if (*p != '{' || !(p[1] >= '0' && p[1] <= '9'))
			continue;
		m = strtoul(p + 1, &end, 10);
		n = m;
		if (*end == ',') {
			n = end[1] >= '0' && end[1] <= '9' ? strtoul(end + 1, &end, 10) : m + 1;
			if (*end == ',')
				end++;
		}
		product *= (double)(n > m ? n : m) + 1;
		if (product > 1000) {
			snprintf(why, why_len,
				 "regular expression repetition bounds too large (their product "
				 "must stay under 1000)");
			return -EINVAL;
		}
	}
	rc = regcomp(&rx, re, REG_EXTENDED | REG_NOSUB);
	if (rc != 0) {
		char msg[128];

		regerror(rc, &rx, msg, sizeof(msg));
		if (msg[0] >= 'A' && msg[0] <= 'Z' && !(msg[1] >= 'A' && msg[1] <= 'Z'))
			msg[0] = (char)(msg[0] - 'A' + 'a');
		snprintf(why, why_len, "invalid regular expression: %s", msg);
		return -EINVAL;
	}
	regfree(&rx);
	return 0;
}

/* A JSON string as a C string after substitution.  Reports and returns
 * -EINVAL for a NUL inside or a failed substitution. */
static int read_string(struct fl_reader *r, const struct fl_param_spec *ps, const struct fl_json *v,
		       const char *path, const char **out)
{
	char why[256];
	int rc;

	if (memchr(v->str, '\0', v->len)) {
		fl_diag_at(r->diag, v, false, path, "string contains a NUL character (\\u0000)");
		return -EINVAL;
	}
	*out = v->str;
	if (r->expand && !(ps->flags & FL_P_NOVARS)) {
		why[0] = '\0';
		rc = r->expand(r->expand_ctx, v->str, v->len, ps->flags, out, why, sizeof(why));
		if (rc == -ENOMEM)
			return rc;
		if (rc) {
			fl_diag_at(r->diag, v, false, path, "%s", why);
			return -EINVAL;
		}
	}
	if ((ps->flags & FL_P_NONEMPTY) && !**out) {
		fl_diag_at(r->diag, v, false, path, "must not be empty");
		return -EINVAL;
	}
	return 0;
}

static int type_error(struct fl_reader *r, const struct fl_json *v, const char *path,
		      const char *want)
{
	if (v->type == FL_JSON_NUMBER || v->type == FL_JSON_STRING)
		fl_diag_at(r->diag, v, false, path, "expected %s, got %s %s%.*s%s", want,
			   fl_json_type_name(v->type), v->type == FL_JSON_STRING ? "\"" : "",
			   (int)(v->len > 40 ? 40 : v->len), v->str,
			   v->type == FL_JSON_STRING ? "\"" : "");
	else
		fl_diag_at(r->diag, v, false, path, "expected %s, got %s", want,
			   fl_json_type_name(v->type));
	return -EINVAL;
}

/* Compares a read value with the spec's bounds; reports and returns -EINVAL
 * when outside. */
static int check_bounds(struct fl_reader *r, const struct fl_param_spec *ps,
			const struct fl_json *v, const char *path, const struct fl_pval *val)
{
	struct fl_pval lo = { 0 }, hi = { 0 };
	char got[48];
	bool below = false, above = false;

	if (!ps->min && !ps->max && ps->type != FL_PT_FRACTION)
		return 0;
	if (ps->min)
		text_value(ps, ps->min, &lo);
	if (ps->max)
		text_value(ps, ps->max, &hi);
	switch (ps->type) {
	case FL_PT_INT:
		below = ps->min && val->i < lo.i;
		above = ps->max && val->i > hi.i;
		break;
	case FL_PT_UINT64:
	case FL_PT_DURATION:
		below = ps->min && val->u < lo.u;
		above = ps->max && val->u > hi.u;
		break;
	case FL_PT_FRACTION:
		if (!ps->min)
			lo.d = 0;
		if (!ps->max)
			hi.d = 1;
		below = val->d < lo.d;
		above = val->d > hi.d;
		if (below || above) {
			if (v->type == FL_JSON_STRING)
				fl_diag_at(r->diag, v, false, path,
					   "percentage %.10g%% out of range [%.10g%%, %.10g%%]",
					   val->d * 100, lo.d * 100, hi.d * 100);
			else
				fl_diag_at(
				    r->diag, v, false, path,
				    "fraction %.10g out of range [%.10g, %.10g] (write \"40%%\" "
				    "or 0.4)",
				    val->d, lo.d, hi.d);
			return -EINVAL;
		}
		return 0;
	case FL_PT_NUMBER:
	case FL_PT_BOUND:
		below = ps->min && val->d < lo.d;
		above = ps->max && val->d > hi.d;
		break;
	default:
		return 0;
	}
	if (!below && !above)
		return 0;
	fl_pval_format(ps, val, got, sizeof(got));
	if (below)
		fl_diag_at(r->diag, v, false, path, "%s is below the minimum %s", got, ps->min);
	else
		fl_diag_at(r->diag, v, false, path, "%s is above the maximum %s", got, ps->max);
	return -EINVAL;
}

static int read_duration(struct fl_reader *r, const struct fl_param_spec *ps,
			 const struct fl_json *v, const char *path, uint64_t *ns)
{
	const char *s;
	char why[160];
	int rc;

	if (v->type == FL_JSON_NUMBER) {
		fl_diag_at(r->diag, v, false, path,
			   "a duration must be a string with a unit, got the bare number %.40s "
			   "(write \"%.40ss\" or \"%.40sms\")",
			   v->str, v->str, v->str);
		return -EINVAL;
	}
	if (v->type != FL_JSON_STRING)
		return type_error(r, v, path, "a duration such as \"250ms\" or \"5s\"");
	rc = read_string(r, ps, v, path, &s);
	if (rc)
		return rc;
	if (fl_duration_parse(s, ns, why, sizeof(why)) != 0) {
		fl_diag_at(r->diag, v, false, path, "%s", why);
		return -EINVAL;
	}
	return 0;
}

int fl_param_read_value(struct fl_reader *r, const struct fl_param_spec *ps,
			const struct fl_json *v, const char *path, struct fl_pval *out)
{
	char sub[FL_PATH_MAX], why[160];
	const char **strv;
	const char *s;
	size_t i;
	int rc = 0, bad = 0;

	memset(out, 0, sizeof(*out));
	out->node = v;
	switch (ps->type) {
	case FL_PT_STRING:
	case FL_PT_ENUM:
	case FL_PT_REGEX:
		if (v->type != FL_JSON_STRING)
			return type_error(r, v, path,
					  ps->type == FL_PT_REGEX ? "a regular expression string"
								  : "a string");
		rc = read_string(r, ps, v, path, &out->s);
		if (rc)
			return rc;
		if (ps->type == FL_PT_ENUM) {
			size_t n = 0;
			const char *hint;
			char list[240];
			size_t used = 0;

			while (ps->choices[n])
				n++;
			for (i = 0; i < n; i++)
				if (strcmp(out->s, ps->choices[i]) == 0)
					break;
			if (i < n)
				break;
			list[0] = '\0';
			for (i = 0; i < n && used < sizeof(list); i++) {
				int k = snprintf(list + used, sizeof(list) - used, "%s%s",
						 i ? ", " : "", ps->choices[i]);
				used += k > 0 ? (size_t)k : 0;
			}
			hint = fl_did_you_mean(out->s, ps->choices, n);
			if (hint)
				fl_diag_at(r->diag, v, false, path,
					   "unknown value '%.40s' (did you mean '%s'? one of: %s)",
					   out->s, hint, list);
			else
				fl_diag_at(r->diag, v, false, path,
					   "unknown value '%.40s' (one of: %s)", out->s, list);
			return -EINVAL;
		}
		if (ps->type == FL_PT_REGEX && regex_check(out->s, why, sizeof(why)) != 0) {
			fl_diag_at(r->diag, v, false, path, "%s", why);
			return -EINVAL;
		}
		break;
	case FL_PT_BOOL:
		if (v->type != FL_JSON_BOOL)
			return type_error(r, v, path, "true or false");
		out->b = v->b;
		break;
	case FL_PT_INT:
		if (v->type != FL_JSON_NUMBER)
			return type_error(r, v, path, "a whole number");
		rc = fl_json_i64(v, &out->i);
		if (rc == -EDOM) {
			fl_diag_at(r->diag, v, false, path, "expected a whole number, got %.40s",
				   v->str);
			return -EINVAL;
		}
		if (rc) {
			fl_diag_at(r->diag, v, false, path, "number %.40s out of range", v->str);
			return -EINVAL;
		}
		out->d = (double)out->i;
		break;
	case FL_PT_UINT64:
		if (v->type != FL_JSON_NUMBER)
			return type_error(r, v, path, "a whole number");
		rc = fl_json_u64(v, &out->u);
		if (rc == -EDOM) {
			fl_diag_at(r->diag, v, false, path, "expected a whole number, got %.40s",
				   v->str);
			return -EINVAL;
		}
		if (rc) {
			fl_diag_at(r->diag, v, false, path,
				   "number %.40s out of range [0, 18446744073709551615]", v->str);
			return -EINVAL;
		}
		break;
	case FL_PT_NUMBER:
		if (v->type != FL_JSON_NUMBER)
			return type_error(r, v, path, "a number");
		out->d = v->num;
		break;
	case FL_PT_DURATION:
		rc = read_duration(r, ps, v, path, &out->u);
		if (rc)
			return rc;
		out->d = (double)out->u / 1e9;
		break;
	case FL_PT_FRACTION:
		if (v->type == FL_JSON_NUMBER) {
			out->d = v->num;
			break;
		}
		if (v->type != FL_JSON_STRING)
			return type_error(r, v, path, "a percentage such as \"40%\" or a fraction");
		rc = read_string(r, ps, v, path, &s);
		if (rc)
			return rc;
		if (fl_percent_parse(s, &out->d, why, sizeof(why)) != 0) {
			fl_diag_at(r->diag, v, false, path, "%s", why);
			return -EINVAL;
		}
		break;
	case FL_PT_BOUND:
		if (v->type == FL_JSON_NUMBER) {
			out->d = v->num;
			break;
		}
		if (v->type != FL_JSON_STRING)
			return type_error(r, v, path,
					  "a number, a duration such as \"50ms\" or a percentage");
		rc = read_string(r, ps, v, path, &s);
		if (rc)
			return rc;
		if (s[0] && s[strlen(s) - 1] == '%') {
			if (fl_percent_parse(s, &out->d, why, sizeof(why)) != 0) {
				fl_diag_at(r->diag, v, false, path, "%s", why);
				return -EINVAL;
			}
		} else {
			if (fl_duration_parse(s, &out->u, why, sizeof(why)) != 0) {
				fl_diag_at(r->diag, v, false, path,
					   "%s (a bound is a number, a duration or a percentage)",
					   why);
				return -EINVAL;
			}
			out->d = (double)out->u / 1e9;
		}
		break;
	case FL_PT_STRINGS:
		if (v->type != FL_JSON_ARRAY)
			return type_error(r, v, path, "an array of strings");
		if ((ps->flags & FL_P_NONEMPTY) && v->n == 0) {
			fl_diag_at(r->diag, v, false, path, "must not be empty");
			return -EINVAL;
		}
		strv = fl_arena_alloc(r->arena, (v->n + 1) * sizeof(*strv));
		if (!strv)
			return -ENOMEM;
		i = 0;
		for (const struct fl_json *e = v->child; e; e = e->next, i++) {
			fl_path_index(sub, path, i);
			if (e->type != FL_JSON_STRING) {
				type_error(r, e, sub, "a string");
				bad = 1;
				continue;
			}
			rc = read_string(r, ps, e, sub, &strv[i]);
			if (rc == -ENOMEM)
				return rc;
			bad |= rc != 0;
		}
		if (bad)
			return -EINVAL;
		out->strv = strv;
		out->n = v->n;
		break;
	case FL_PT_MAP:
		if (v->type != FL_JSON_OBJECT)
			return type_error(r, v, path, "an object of strings");
		strv = fl_arena_alloc(r->arena, (2 * v->n + 1) * sizeof(*strv));
		if (!strv)
			return -ENOMEM;
		i = 0;
		for (const struct fl_json *e = v->child; e; e = e->next, i++) {
			fl_path_key(sub, path, e->key);
			strv[2 * i] = e->key;
			if (memchr(e->key, '\0', e->key_len) || e->key_len == 0) {
				fl_diag_at(r->diag, e, true, sub,
					   "keys must be non-empty and NUL-free");
				bad = 1;
				continue;
			}
			if (e->type != FL_JSON_STRING) {
				type_error(r, e, sub, "a string");
				bad = 1;
				continue;
			}
			rc = read_string(
			    r, &(struct fl_param_spec){ .flags = ps->flags & ~FL_P_NONEMPTY }, e,
			    sub, &strv[2 * i + 1]);
			if (rc == -ENOMEM)
				return rc;
			bad |= rc != 0;
		}
		if (bad)
			return -EINVAL;
		out->strv = strv;
		out->n = v->n;
		break;
	case FL_PT_OBJECT:
		if (v->type != FL_JSON_OBJECT)
			return type_error(r, v, path, "an object");
		break;
	case FL_PT_ARRAY:
		if (v->type != FL_JSON_ARRAY)
			return type_error(r, v, path, "an array");
		if ((ps->flags & FL_P_NONEMPTY) && v->n == 0) {
			fl_diag_at(r->diag, v, false, path, "must not be empty");
			return -EINVAL;
		}
		out->n = v->n;
		break;
	case FL_PT_ANY:
		break;
	}
	out->set = true;
	return check_bounds(r, ps, v, path, out);
}

int fl_params_read(struct fl_reader *r, const struct fl_obj_spec *spec, const struct fl_json *obj,
		   const char *path, struct fl_params *out)
{
	const char *names[64];
	char sub[FL_PATH_MAX];
	size_t nnames = 0;
	int bad = 0, rc;

	out->spec = spec;
	out->v = fl_arena_alloc(r->arena, (spec->n + 1) * sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	if (!obj || obj->type != FL_JSON_OBJECT) {
		if (obj)
			type_error(r, obj, path, "an object");
		return -EINVAL;
	}
	for (size_t i = 0; i < spec->n && nnames < 63; i++)
		names[nnames++] = spec->params[i].name;
	if (spec->typed)
		names[nnames++] = "type";
	for (const struct fl_json *m = obj->child; m; m = m->next) {
		const struct fl_param_spec *ps;
		size_t idx;

		fl_path_key(sub, path, m->key);
		if (spec->typed && strcmp(m->key, "type") == 0 && m->key_len == 4)
			continue;
		ps = m->key_len == strlen(m->key) ? fl_obj_spec_find(spec, m->key) : NULL;
		if (!ps) {
			const char *hint;

			bad = 1;
			if (fl_diag_full(r->diag)) {
				fl_diag_at(r->diag, m, true, sub, "unknown key"); /* counted only */
				continue;
			}
			hint = fl_did_you_mean(m->key, names, nnames);

			if (hint) {
				fl_diag_at(r->diag, m, true, sub,
					   "unknown key '%.64s' (did you mean '%s'?)", m->key,
					   hint);
			} else {
				char list[256];
				size_t used = 0;

				list[0] = '\0';
				for (size_t i = 0; i < nnames && used < sizeof(list); i++) {
					int k = snprintf(list + used, sizeof(list) - used, "%s%s",
							 i ? ", " : "", names[i]);
					used += k > 0 ? (size_t)k : 0;
				}
				fl_diag_at(r->diag, m, true, sub, "unknown key '%.64s' (known: %s)",
					   m->key, list);
			}
			bad = 1;
			continue;
		}
		idx = (size_t)(ps - spec->params);
		rc = fl_param_read_value(r, ps, m, sub, &out->v[idx]);
		if (rc == -ENOMEM)
			return rc;
		if (rc) {
			out->v[idx].set = false;
			bad = 1;
		}
	}
	for (size_t i = 0; i < spec->n; i++) {
		const struct fl_param_spec *ps = &spec->params[i];
		struct fl_pval *v = &out->v[i];

		if (v->node)
			continue;
		if (ps->flags & FL_P_REQUIRED) {
			fl_diag_at(r->diag, obj, false, path, "missing required key '%s'",
				   ps->name);
			bad = 1;
		} else if (ps->def) {
			text_value(ps, ps->def, v);
			if (ps->type == FL_PT_DURATION)
				v->d = (double)v->u / 1e9;
			v->set = true;
		}
	}
	return bad ? -EINVAL : 0;
}
