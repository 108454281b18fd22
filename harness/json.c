/* A strict JSON reader with source positions (see json.h). */
#include "harness/json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena -------------------------------------------------------------- */

struct fl_arena_chunk {
	struct fl_arena_chunk *next;
	size_t size;
	max_align_t data[];
};

#define ARENA_CHUNK (32u << 10)
#define ARENA_ALIGN (sizeof(max_align_t))

void fl_arena_init(struct fl_arena *a, const struct rs_alloc *alloc)
{
	a->alloc = alloc;
	a->head = NULL;
	a->used = 0;
	a->cap = 0;
}

void *fl_arena_alloc(struct fl_arena *a, size_t n)
{
	struct fl_arena_chunk *c;
	size_t size;
	void *p;

	if (n > SIZE_MAX / 2)
		return NULL;
	n = (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
	if (n == 0)
		n = ARENA_ALIGN;
	if (!a->head || a->cap - a->used < n) {
		size = n > ARENA_CHUNK / 4 ? n : ARENA_CHUNK;
		c = rs__malloc(a->alloc, sizeof(*c) + size);
		if (!c)
			return NULL;
		c->size = size;
		if (a->head && n > ARENA_CHUNK / 4) {
			/* A big block gets a chunk of its own behind the head, so
			 * the head's free space stays usable. */
			c->next = a->head->next;
			a->head->next = c;
			memset(c->data, 0, n);
			return c->data;
		}
		c->next = a->head;
		a->head = c;
		a->used = 0;
		a->cap = size;
	}
	p = (char *)a->head->data + a->used;
	a->used += n;
	memset(p, 0, n);
	return p;
}

char *fl_arena_strndup(struct fl_arena *a, const char *s, size_t n)
{
	char *p = fl_arena_alloc(a, n + 1);

	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

void fl_arena_release(struct fl_arena *a)
{
	struct fl_arena_chunk *c = a->head, *next;

	while (c) {
		next = c->next;
		rs__free(a->alloc, c);
		c = next;
	}
	a->head = NULL;
	a->used = 0;
	a->cap = 0;
}

/* ---- parser state ------------------------------------------------------ */

struct frame {
	const char *key; /* member key, or NULL inside an array */
	size_t key_len;
	size_t index; /* array index */
	bool in;      /* reading a member's or element's value: name it in paths */
};

struct parser {
	const unsigned char *s;
	size_t len, p;
	struct fl_arena *arena;
	struct fl_json_error *err;
	size_t nvalues;
	int depth;
	/* Incremental position: line of the current line, column at col_off. */
	uint32_t line;
	size_t line_start, col_off;
	uint32_t col;
	struct frame frames[FL_JSON_MAX_DEPTH + 1];
};

/* Line and column of byte `at`.  Positions are asked for in increasing
 * order (token starts), so counting forward from the last answer keeps the
 * whole parse linear; an earlier position on the current line (only when
 * reporting an error) is counted from the line start. */
static void position(struct parser *ps, size_t at, uint32_t *line, uint32_t *col)
{
	if (at < ps->col_off) {
		ps->col_off = ps->line_start;
		ps->col = 1;
		if (at < ps->line_start)
			at = ps->line_start;
	}
	for (size_t i = ps->col_off; i < at && i < ps->len; i++)
		if ((ps->s[i] & 0xc0) != 0x80)
			ps->col++;
	ps->col_off = at;
	*line = ps->line;
	*col = ps->col;
}

/* Appends the path of the value being read to buf. */
static void format_path(const struct parser *ps, int depth, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < depth && used < size; i++) {
		const struct frame *f = &ps->frames[i];
		int n;

		if (!f->in)
			continue;
		if (f->key) {
			bool plain = f->key_len > 0;

			for (size_t k = 0; k < f->key_len; k++) {
				unsigned char c = (unsigned char)f->key[k];

				if (!(c == '_' || c == '-' || (c >= '0' && c <= '9') ||
				      (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
					plain = false;
			}
			if (plain)
				n = snprintf(buf + used, size - used, "%s%.*s", used ? "." : "",
					     (int)(f->key_len > 64 ? 64 : f->key_len), f->key);
			else
				n = snprintf(buf + used, size - used, "[\"%.*s\"]",
					     (int)(f->key_len > 64 ? 64 : f->key_len), f->key);
		} else {
			n = snprintf(buf + used, size - used, "[%zu]", f->index);
		}
		if (n < 0)
			break;
		used += (size_t)n;
	}
	if (used >= size && size > 4)
		memcpy(buf + size - 4, "...", 4);
}

static int fail_lc(struct parser *ps, size_t at, uint32_t line, uint32_t col, const char *fmt, ...)
    RS_PRINTF(5, 6);
static int fail_lc(struct parser *ps, size_t at, uint32_t line, uint32_t col, const char *fmt, ...)
{
	va_list ap;

	if (ps->err) {
		ps->err->line = line;
		ps->err->col = col;
		ps->err->offset = at;
		format_path(ps, ps->depth, ps->err->path, sizeof(ps->err->path));
		va_start(ap, fmt);
		vsnprintf(ps->err->msg, sizeof(ps->err->msg), fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int fail(struct parser *ps, size_t at, const char *fmt, ...) RS_PRINTF(3, 4);
static int fail(struct parser *ps, size_t at, const char *fmt, ...)
{
	va_list ap;
	uint32_t line, col;

	position(ps, at, &line, &col);
	if (ps->err) {
		ps->err->line = line;
		ps->err->col = col;
		ps->err->offset = at;
		format_path(ps, ps->depth, ps->err->path, sizeof(ps->err->path));
		va_start(ap, fmt);
		vsnprintf(ps->err->msg, sizeof(ps->err->msg), fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int nomem(struct parser *ps)
{
	if (ps->err) {
		ps->err->line = 0;
		ps->err->col = 0;
		ps->err->offset = ps->p;
		ps->err->path[0] = '\0';
		snprintf(ps->err->msg, sizeof(ps->err->msg), "out of memory");
	}
	return -ENOMEM;
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->len) {
		unsigned char c = ps->s[ps->p];

		if (c == '\n') {
			ps->line++;
			ps->line_start = ps->col_off = ps->p + 1;
			ps->col = 1;
		} else if (c != ' ' && c != '\t' && c != '\r') {
			return;
		}
		ps->p++;
	}
}

/* Length of the valid UTF-8 sequence at s[0..n), 0 when invalid (overlong
 * forms, surrogates and code points above U+10FFFF are invalid); *cp gets
 * the code point. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t v, min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		v = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		v = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		v = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

/* The byte of an invalid UTF-8 sequence to name in the message: the first
 * one that breaks it. */
static size_t utf8_bad_byte(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;

	if (c < 0xc2 || c > 0xf4)
		return 0;
	for (size_t i = 1; i < len && i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return i;
	return 0;
}

static int fail_unexpected(struct parser *ps, const char *expected)
{
	const unsigned char *s = ps->s + ps->p;
	size_t n = ps->len - ps->p;
	uint32_t cp;

	if (n == 0)
		return fail(ps, ps->p, "unexpected end of input, expected %s", expected);
	if (s[0] == '/' && n > 1 && (s[1] == '/' || s[1] == '*'))
		return fail(ps, ps->p, "comments are not allowed in JSON");
	if (s[0] == '\'')
		return fail(ps, ps->p, "strings must use double quotes, not single quotes");
	if (s[0] >= 0x80) {
		if (utf8_seq(s, n, &cp) == 0) {
			size_t bad = utf8_bad_byte(s, n);

			return fail(ps, ps->p + bad, "invalid UTF-8 byte 0x%02x", s[bad]);
		}
		return fail(ps, ps->p, "unexpected character U+%04X, expected %s", (unsigned)cp,
			    expected);
	}
	if (s[0] < 0x20 || s[0] == 0x7f)
		return fail(ps, ps->p, "unexpected byte 0x%02x, expected %s", s[0], expected);
	return fail(ps, ps->p, "unexpected character '%c', expected %s", s[0], expected);
}

static int new_value(struct parser *ps, enum fl_json_type type, size_t at, struct fl_json **out)
{
	struct fl_json *v;

	if (ps->nvalues >= FL_JSON_MAX_VALUES)
		return fail(ps, at, "more than %u values in one document", FL_JSON_MAX_VALUES);
	v = fl_arena_alloc(ps->arena, sizeof(*v));
	if (!v)
		return nomem(ps);
	ps->nvalues++;
	v->type = type;
	v->offset = at;
	position(ps, at, &v->line, &v->col);
	*out = v;
	return 0;
}

static int hex4(const unsigned char *s, uint32_t *out)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		unsigned char c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Reads the string at ps->p (a '"'): decoded into the arena. */
static int parse_string(struct parser *ps, const char **out, size_t *out_len)
{
	const unsigned char *s = ps->s;
	size_t start = ps->p + 1, end = start, o = 0;
	char *buf;

	/* Find the closing quote first: the decoded string is never longer. */
	while (end < ps->len && s[end] != '"') {
		if (s[end] == '\\')
			end++;
		end++;
	}
	if (end >= ps->len)
		return fail(ps, ps->p, "unterminated string");
	buf = fl_arena_alloc(ps->arena, end - start + 1);
	if (!buf)
		return nomem(ps);
	for (size_t i = start; i < end;) {
		unsigned char c = s[i];
		uint32_t cp, lo;
		size_t n;

		if (c == '\\') {
			unsigned char e = s[i + 1];
			static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
			const char *hit = e ? strchr(from, e) : NULL;

			if (hit) {
				buf[o++] = to[hit - from];
				i += 2;
				continue;
			}
			if (e != 'u') {
				if (e >= 0x20 && e < 0x7f)
					return fail(ps, i, "invalid escape '\\%c' in string", e);
				return fail(ps, i, "invalid escape in string");
			}
			if (end - i < 6 || hex4(s + i + 2, &cp) != 0)
				return fail(ps, i,
					    "invalid \\u escape in string (4 hex digits expected)");
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return fail(ps, i, "lone surrogate \\u%04x in string",
					    (unsigned)cp);
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (end - i < 12 || s[i + 6] != '\\' || s[i + 7] != 'u' ||
				    hex4(s + i + 8, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff)
					return fail(ps, i, "lone surrogate \\u%04x in string",
						    (unsigned)cp);
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				i += 6;
			}
			o += put_utf8(buf + o, cp);
			i += 6;
			continue;
		}
		if (c < 0x20) {
			static const char *const names[] = {
				[0x09] = "\\t", [0x0a] = "\\n", [0x0d] = "\\r"
			};
			const char *esc = c < 0x0e ? names[c] : NULL;

			if (esc)
				return fail(ps, i,
					    "control character 0x%02x in string (escape it as %s)",
					    c, esc);
			return fail(ps, i, "control character 0x%02x in string", c);
		}
		if (c < 0x80) {
			buf[o++] = (char)c;
			i++;
			continue;
		}
		n = utf8_seq(s + i, end - i, &cp);
		if (n == 0) {
			size_t bad = utf8_bad_byte(s + i, end - i);

			return fail(ps, i + bad, "invalid UTF-8 byte 0x%02x in string", s[i + bad]);
		}
		memcpy(buf + o, s + i, n);
		o += n;
		i += n;
	}
	buf[o] = '\0';
	*out = buf;
	*out_len = o;
	ps->p = end + 1;
	return 0;
}

static bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int parse_number(struct parser *ps, struct fl_json *v)
{
	const unsigned char *s = ps->s;
	size_t i = ps->p, start = ps->p;
	char *text, *end;

	if (i < ps->len && s[i] == '-')
		i++;
	if (i >= ps->len || !is_digit(s[i]))
		return fail(ps, start, "invalid number: a digit must follow '-'");
	if (s[i] == '0') {
		i++;
		if (i < ps->len && is_digit(s[i]))
			return fail(ps, start, "invalid number: leading zeros are not allowed");
	} else {
		while (i < ps->len && is_digit(s[i]))
			i++;
	}
	if (i < ps->len && s[i] == '.') {
		i++;
		if (i >= ps->len || !is_digit(s[i]))
			return fail(ps, start, "invalid number: a digit must follow '.'");
		while (i < ps->len && is_digit(s[i]))
			i++;
	}
	if (i < ps->len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < ps->len && (s[i] == '+' || s[i] == '-'))
			i++;
		if (i >= ps->len || !is_digit(s[i]))
			return fail(ps, start, "invalid number: the exponent needs digits");
		while (i < ps->len && is_digit(s[i]))
			i++;
	}
	if (i - start > FL_JSON_MAX_NUMBER)
		return fail(ps, start, "number literal longer than %d characters",
			    FL_JSON_MAX_NUMBER);
	text = fl_arena_strndup(ps->arena, (const char *)s + start, i - start);
	if (!text)
		return nomem(ps);
	v->num = strtod(text, &end);
	if (isinf(v->num) || isnan(v->num))
		return fail(ps, start, "number out of range: %s", text);
	v->str = text;
	v->len = i - start;
	ps->p = i;
	return 0;
}

static int literal(struct parser *ps, const char *word)
{
	size_t n = strlen(word), i = ps->p;

	if (ps->len - i >= n && memcmp(ps->s + i, word, n) == 0 &&
	    (ps->len - i == n || !((ps->s[i + n] >= 'a' && ps->s[i + n] <= 'z') ||
				   (ps->s[i + n] >= 'A' && ps->s[i + n] <= 'Z')))) {
		ps->p += n;
		return 0;
	}
	return -1;
}

static int fail_bad_literal(struct parser *ps)
{
	size_t i = ps->p;

	while (i < ps->len && i - ps->p < 32 &&
	       ((ps->s[i] >= 'a' && ps->s[i] <= 'z') || (ps->s[i] >= 'A' && ps->s[i] <= 'Z') ||
		is_digit(ps->s[i]) || ps->s[i] == '_'))
		i++;
	return fail(ps, ps->p,
		    "invalid literal '%.*s' (JSON has true, false, null and quoted strings)",
		    (int)(i - ps->p), (const char *)ps->s + ps->p);
}

static int parse_value(struct parser *ps, struct fl_json **out);

/* Members of large objects are checked for duplicates by sorting. */
static int cmp_member(const void *a, const void *b)
{
	const struct fl_json *x = *(const struct fl_json *const *)a;
	const struct fl_json *y = *(const struct fl_json *const *)b;
	size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int c = memcmp(x->key, y->key, n);

	if (c)
		return c;
	if (x->key_len != y->key_len)
		return x->key_len < y->key_len ? -1 : 1;
	return (x->offset > y->offset) - (x->offset < y->offset);
}

static bool same_key(const struct fl_json *a, const struct fl_json *b)
{
	return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0;
}

static int check_duplicates(struct parser *ps, struct fl_json *obj)
{
	const struct fl_json *dup = NULL, *first = NULL;
	struct fl_json **v;
	size_t i;

	if (obj->n < 2)
		return 0;
	if (obj->n <= 16) {
		for (struct fl_json *a = obj->child; a; a = a->next)
			for (struct fl_json *b = a->next; b; b = b->next)
				if (same_key(a, b) && (!dup || b->offset < dup->offset)) {
					dup = b;
					first = a;
				}
	} else {
		v = rs__calloc(ps->arena->alloc, obj->n, sizeof(*v));
		if (!v)
			return nomem(ps);
		i = 0;
		for (struct fl_json *a = obj->child; a; a = a->next)
			v[i++] = a;
		qsort(v, obj->n, sizeof(*v), cmp_member);
		for (i = 1; i < obj->n; i++) {
			if (same_key(v[i - 1], v[i]) && (!dup || v[i]->offset < dup->offset)) {
				size_t j = i - 1;

				while (j > 0 && same_key(v[j - 1], v[i]))
					j--;
				dup = v[i];
				first = v[j];
			}
		}
		rs__free(ps->arena->alloc, v);
	}
	if (!dup)
		return 0;
	return fail_lc(ps, dup->offset, dup->key_line, dup->key_col,
		       "duplicate key \"%.*s\" (first at %u:%u)",
		       (int)(dup->key_len > 64 ? 64 : dup->key_len), dup->key, first->key_line,
		       first->key_col);
}

static int enter(struct parser *ps, size_t at)
{
	if (ps->depth >= FL_JSON_MAX_DEPTH)
		return fail(ps, at, "nesting deeper than %d levels", FL_JSON_MAX_DEPTH);
	ps->depth++;
	ps->frames[ps->depth - 1].key = NULL;
	ps->frames[ps->depth - 1].index = 0;
	ps->frames[ps->depth - 1].in = false;
	return 0;
}

static int parse_array(struct parser *ps, struct fl_json *v)
{
	struct frame *f;
	struct fl_json **tail = &v->child, *item;
	int rc;

	rc = enter(ps, ps->p);
	if (rc)
		return rc;
	f = &ps->frames[ps->depth - 1];
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->len && ps->s[ps->p] == ']') {
		ps->p++;
		ps->depth--;
		return 0;
	}
	for (;;) {
		f->index = v->n;
		f->in = true;
		rc = parse_value(ps, &item);
		if (rc)
			return rc;
		f->in = false;
		*tail = item;
		tail = &item->next;
		v->n++;
		skip_ws(ps);
		if (ps->p < ps->len && ps->s[ps->p] == ']') {
			ps->p++;
			break;
		}
		if (ps->p >= ps->len || ps->s[ps->p] != ',')
			return fail_unexpected(ps, "',' or ']' after array element");
		ps->p++;
		skip_ws(ps);
		if (ps->p < ps->len && ps->s[ps->p] == ']')
			return fail(ps, ps->p, "trailing comma before ']'");
	}
	ps->depth--;
	return 0;
}

static int parse_object(struct parser *ps, struct fl_json *v)
{
	struct frame *f;
	struct fl_json **tail = &v->child, *item;
	const char *key;
	size_t key_len, key_at;
	uint32_t key_line, key_col;
	int rc;

	rc = enter(ps, ps->p);
	if (rc)
		return rc;
	f = &ps->frames[ps->depth - 1];
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->len && ps->s[ps->p] == '}') {
		ps->p++;
		ps->depth--;
		return 0;
	}
	for (;;) {
		if (ps->p >= ps->len || ps->s[ps->p] != '"') {
			if (ps->p < ps->len &&
			    (ps->s[ps->p] == '_' || (ps->s[ps->p] >= 'a' && ps->s[ps->p] <= 'z') ||
			     (ps->s[ps->p] >= 'A' && ps->s[ps->p] <= 'Z')))
				return fail(ps, ps->p,
					    "object keys must be strings in double quotes");
			return fail_unexpected(ps, "a string key");
		}
		key_at = ps->p;
		position(ps, key_at, &key_line, &key_col);
		rc = parse_string(ps, &key, &key_len);
		if (rc)
			return rc;
		f->key = key;
		f->key_len = key_len;
		f->in = true;
		skip_ws(ps);
		if (ps->p >= ps->len || ps->s[ps->p] != ':')
			return fail_unexpected(ps, "':' after object key");
		ps->p++;
		rc = parse_value(ps, &item);
		if (rc)
			return rc;
		f->in = false;
		item->key = key;
		item->key_len = key_len;
		item->key_line = key_line;
		item->key_col = key_col;
		*tail = item;
		tail = &item->next;
		v->n++;
		skip_ws(ps);
		if (ps->p < ps->len && ps->s[ps->p] == '}') {
			ps->p++;
			break;
		}
		if (ps->p >= ps->len || ps->s[ps->p] != ',')
			return fail_unexpected(ps, "',' or '}' after object member");
		ps->p++;
		skip_ws(ps);
		if (ps->p < ps->len && ps->s[ps->p] == '}')
			return fail(ps, ps->p, "trailing comma before '}'");
	}
	rc = check_duplicates(ps, v);
	ps->depth--;
	return rc;
}

static int parse_value(struct parser *ps, struct fl_json **out)
{
	struct fl_json *v;
	unsigned char c;
	int rc;

	skip_ws(ps);
	if (ps->p >= ps->len)
		return fail(ps, ps->p, "unexpected end of input, expected a value");
	c = ps->s[ps->p];
	switch (c) {
	case '{':
	case '[':
		rc = new_value(ps, c == '{' ? FL_JSON_OBJECT : FL_JSON_ARRAY, ps->p, &v);
		if (rc)
			return rc;
		rc = c == '{' ? parse_object(ps, v) : parse_array(ps, v);
		break;
	case '"':
		rc = new_value(ps, FL_JSON_STRING, ps->p, &v);
		if (rc)
			return rc;
		rc = parse_string(ps, &v->str, &v->len);
		break;
	case 't':
	case 'f':
	case 'n':
		rc = new_value(ps, c == 'n' ? FL_JSON_NULL : FL_JSON_BOOL, ps->p, &v);
		if (rc)
			return rc;
		v->b = c == 't';
		rc = literal(ps, c == 't' ? "true" : c == 'f' ? "false" : "null");
		if (rc)
			rc = fail_bad_literal(ps);
		break;
	default:
		if (c == '-' || is_digit(c)) {
			rc = new_value(ps, FL_JSON_NUMBER, ps->p, &v);
			if (rc)
				return rc;
			rc = parse_number(ps, v);
			break;
		}
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
			return fail_bad_literal(ps);
		if (c == ']' || c == '}')
			return fail(ps, ps->p, "unexpected '%c', expected a value", c);
		return fail_unexpected(ps, "a value");
	}
	if (rc)
		return rc;
	*out = v;
	return 0;
}

int fl_json_parse(const char *buf, size_t len, const struct rs_alloc *alloc,
		  struct fl_json_doc **out, struct fl_json_error *err)
{
	struct fl_arena arena;
	struct fl_json_doc *doc;
	struct parser *ps;
	int rc;

	*out = NULL;
	if (err)
		memset(err, 0, sizeof(*err));
	if (len > FL_JSON_MAX_BYTES) {
		if (err) {
			err->line = 1;
			err->col = 1;
			snprintf(err->msg, sizeof(err->msg), "file larger than %u MiB (%zu bytes)",
				 FL_JSON_MAX_BYTES >> 20, len);
		}
		return -EFBIG;
	}
	fl_arena_init(&arena, alloc);
	ps = rs__calloc(alloc, 1, sizeof(*ps));
	if (!ps) {
		if (err)
			snprintf(err->msg, sizeof(err->msg), "out of memory");
		return -ENOMEM;
	}
	ps->s = (const unsigned char *)buf;
	ps->len = len;
	ps->arena = &arena;
	ps->err = err;
	ps->line = 1;
	ps->col = 1;
	doc = fl_arena_alloc(&arena, sizeof(*doc));
	if (!doc) {
		rc = nomem(ps);
		goto fail;
	}
	if (len == 0) {
		rc = fail(ps, 0, "empty file");
		goto fail;
	}
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		ps->p = ps->col_off = 3;
	skip_ws(ps);
	if (ps->p >= len) {
		rc = fail(ps, ps->p, "no JSON value: the file holds only whitespace");
		goto fail;
	}
	rc = parse_value(ps, &doc->root);
	if (rc)
		goto fail;
	skip_ws(ps);
	if (ps->p < len) {
		rc = fail(ps, ps->p, "trailing data after the JSON value");
		goto fail;
	}
	doc->arena = arena;
	rs__free(alloc, ps);
	*out = doc;
	return 0;
fail:
	rs__free(alloc, ps);
	fl_arena_release(&arena);
	return rc;
}

void fl_json_doc_free(struct fl_json_doc *doc)
{
	struct fl_arena arena;

	if (!doc)
		return;
	arena = doc->arena; /* the document lives in its own arena */
	fl_arena_release(&arena);
}

const struct fl_json *fl_json_get(const struct fl_json *obj, const char *key)
{
	size_t n;

	if (!obj || obj->type != FL_JSON_OBJECT)
		return NULL;
	n = strlen(key);
	for (const struct fl_json *m = obj->child; m; m = m->next)
		if (m->key_len == n && memcmp(m->key, key, n) == 0)
			return m;
	return NULL;
}

const char *fl_json_type_name(enum fl_json_type t)
{
	switch (t) {
	case FL_JSON_NULL:
		return "null";
	case FL_JSON_BOOL:
		return "true or false";
	case FL_JSON_NUMBER:
		return "a number";
	case FL_JSON_STRING:
		return "a string";
	case FL_JSON_ARRAY:
		return "an array";
	case FL_JSON_OBJECT:
		return "an object";
	}
	return "a value";
}

static bool plain_integer(const struct fl_json *v)
{
	return !memchr(v->str, '.', v->len) && !memchr(v->str, 'e', v->len) &&
	       !memchr(v->str, 'E', v->len);
}

int fl_json_u64(const struct fl_json *v, uint64_t *out)
{
	uint64_t x = 0;

	if (!v || v->type != FL_JSON_NUMBER)
		return -EDOM;
	if (!plain_integer(v)) {
		if (v->num != floor(v->num))
			return -EDOM;
		if (v->num < 0 || v->num > 9007199254740992.0)
			return -ERANGE;
		*out = (uint64_t)v->num;
		return 0;
	}
	if (v->str[0] == '-')
		return strcmp(v->str, "-0") == 0 ? (*out = 0, 0) : -ERANGE;
	for (size_t i = 0; i < v->len; i++) {
		unsigned d = (unsigned)(v->str[i] - '0');

		if (x > (UINT64_MAX - d) / 10)
			return -ERANGE;
		x = x * 10 + d;
	}
	*out = x;
	return 0;
}

int fl_json_i64(const struct fl_json *v, int64_t *out)
{
	uint64_t mag = 0;
	bool neg;
	size_t i;

	if (!v || v->type != FL_JSON_NUMBER)
		return -EDOM;
	if (!plain_integer(v)) {
		if (v->num != floor(v->num))
			return -EDOM;
		if (fabs(v->num) > 9007199254740992.0)
			return -ERANGE;
		*out = (int64_t)v->num;
		return 0;
	}
	neg = v->str[0] == '-';
	for (i = neg ? 1 : 0; i < v->len; i++) {
		unsigned d = (unsigned)(v->str[i] - '0');

		if (mag > (UINT64_MAX - d) / 10)
			return -ERANGE;
		mag = mag * 10 + d;
	}
	if (neg ? mag > (uint64_t)INT64_MAX + 1 : mag > (uint64_t)INT64_MAX)
		return -ERANGE;
	*out = neg ? (int64_t)(0 - mag) : (int64_t)mag;
	return 0;
}
