#include "harness/template.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum op_kind { OP_LIT, OP_SEQ, OP_RAND, OP_ZIPF, OP_UUID };

/* One instruction.  Literal bytes live in the template's pool (off, len).
 * rand: [a, b].  zipf: n = a, exponent e and the sampler's constants. */
struct op {
	enum op_kind kind;
	uint32_t off;
	uint32_t len;
	uint64_t a;
	uint64_t b;
	double e;
	double hx1; /* H(1.5) - 1 */
	double hn;  /* H(n + 0.5) */
	double s;   /* 2 - H^-1(H(2.5) - h(2)) */
};

struct fl_tpl {
	struct op *ops;
	size_t nops;
	size_t cap_ops;
	char *lit;
	size_t lit_len;
	size_t lit_cap;
	size_t max_len;
	bool random;
};

#define U64_DIGITS 20
#define UUID_LEN   36

void fl_tpl_ctx_init(struct fl_tpl_ctx *ctx, uint64_t seed, uint64_t seq)
{
	ctx->seq = seq;
	rs_rng_seed(&ctx->rng, seed ^ ((seq + 1) * 0xd1b54a32d192ed03ull));
}

int fl_tpl_new(struct fl_tpl **out, struct rs_err *err)
{
	*out = calloc(1, sizeof(**out));
	if (!*out)
		return rs__enomem(err, "template");
	return 0;
}

void fl_tpl_free(struct fl_tpl *t)
{
	if (!t)
		return;
	free(t->ops);
	free(t->lit);
	free(t);
}

static struct op *push_op(struct fl_tpl *t)
{
	if (t->nops == t->cap_ops) {
		size_t cap = t->cap_ops ? 2 * t->cap_ops : 8;
		struct op *ops = realloc(t->ops, cap * sizeof(*ops));

		if (!ops)
			return NULL;
		t->ops = ops;
		t->cap_ops = cap;
	}
	memset(&t->ops[t->nops], 0, sizeof(t->ops[0]));
	return &t->ops[t->nops++];
}

int fl_tpl_append_lit(struct fl_tpl *t, const char *s, size_t n, struct rs_err *err)
{
	struct op *op;

	if (n == 0)
		return 0;
	if (t->lit_len + n > UINT32_MAX)
		return rs__einval(err, "template: longer than 4 GiB");
	if (t->lit_len + n > t->lit_cap) {
		size_t cap = t->lit_cap ? t->lit_cap : 64;
		char *lit;

		while (cap < t->lit_len + n)
			cap *= 2;
		lit = realloc(t->lit, cap);
		if (!lit)
			return rs__enomem(err, "template");
		t->lit = lit;
		t->lit_cap = cap;
	}
	memcpy(t->lit + t->lit_len, s, n);
	if (t->nops && t->ops[t->nops - 1].kind == OP_LIT &&
	    t->ops[t->nops - 1].off + t->ops[t->nops - 1].len == t->lit_len) {
		t->ops[t->nops - 1].len += (uint32_t)n;
	} else {
		op = push_op(t);
		if (!op)
			return rs__enomem(err, "template");
		op->kind = OP_LIT;
		op->off = (uint32_t)t->lit_len;
		op->len = (uint32_t)n;
	}
	t->lit_len += n;
	t->max_len += n;
	return 0;
}

/* ---- the Zipf sampler (rejection-inversion, Hoermann and Derflinger 1996,
 * as in Apache Commons RNG's RejectionInversionZipfSampler) ---- */

static double helper1(double x)
{
	return fabs(x) > 1e-8 ? log1p(x) / x : 1 - x * (0.5 - x * (1.0 / 3 - 0.25 * x));
}

static double helper2(double x)
{
	return fabs(x) > 1e-8 ? expm1(x) / x : 1 + x * 0.5 * (1 + x * (1.0 / 3) * (1 + 0.25 * x));
}

static double zipf_h_integral(double e, double x)
{
	double log_x = log(x);

	return helper2((1 - e) * log_x) * log_x;
}

static double zipf_h(double e, double x)
{
	return exp(-e * log(x));
}

static double zipf_h_integral_inverse(double e, double x)
{
	double t = x * (1 - e);

	if (t < -1)
		t = -1;
	return exp(helper1(t) * x);
}

static void zipf_setup(struct op *op)
{
	double e = op->e;

	op->hx1 = zipf_h_integral(e, 1.5) - 1;
	op->hn = zipf_h_integral(e, (double)op->a + 0.5);
	op->s = 2 - zipf_h_integral_inverse(e, zipf_h_integral(e, 2.5) - zipf_h(e, 2));
}

static uint64_t zipf_sample(const struct op *op, struct rs_rng *rng)
{
	double n = (double)op->a;

	if (op->e == 0)
		return rs_rng_range(rng, 1, op->a);
	for (;;) {
		double u = op->hn + rs_rng_double(rng) * (op->hx1 - op->hn);
		double x = zipf_h_integral_inverse(op->e, u);
		double k = floor(x + 0.5);

		if (k < 1)
			k = 1;
		else if (k > n)
			k = n;
		if (k - x <= op->s || u >= zipf_h_integral(op->e, k + 0.5) - zipf_h(op->e, k))
			return (uint64_t)k;
	}
}

/* ---- parsing ---- */

/* Strict decimal: digits only, no sign, no overflow. */
static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
	uint64_t v = 0;

	if (n == 0 || n > U64_DIGITS)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static bool parse_double(const char *s, size_t n, double *out)
{
	char buf[64], *end;

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (!((buf[0] >= '0' && buf[0] <= '9') || buf[0] == '.'))
		return false;
	*out = strtod(buf, &end);
	return *end == '\0' && isfinite(*out);
}

/* Splits the inside of ${...} at ':' into at most 4 fields. */
static size_t split_args(const char *s, size_t n, const char **f, size_t *fl)
{
	size_t k = 0;
	const char *start = s;

	for (size_t i = 0; i <= n; i++) {
		if (i == n || s[i] == ':') {
			if (k == 4)
				return 5;
			f[k] = start;
			fl[k] = (size_t)(s + i - start);
			k++;
			start = s + i + 1;
		}
	}
	return k;
}

/* Compiles the variable whose text (between "${" and "}") is s[0..n) at
 * 1-based column col of the source. */
static int compile_var(struct fl_tpl *t, const char *s, size_t n, size_t col, struct rs_err *err)
{
	const char *f[4];
	size_t fl[4], k = split_args(s, n, f, fl);
	int w = (int)(n > 60 ? 60 : n);
	struct op *op;
	uint64_t a = 0, b = 0;
	double e = 0;
	enum op_kind kind;

#define NAME_IS(lit) (fl[0] == sizeof(lit) - 1 && memcmp(f[0], lit, sizeof(lit) - 1) == 0)
	if (NAME_IS("seq") || NAME_IS("uuid")) {
		kind = NAME_IS("seq") ? OP_SEQ : OP_UUID;
		if (k != 1)
			return rs__einval(
			    err, "variable '${%.*s}' at column %zu takes no arguments", w, s, col);
	} else if (NAME_IS("rand")) {
		kind = OP_RAND;
		if (k != 3 || !parse_u64(f[1], fl[1], &a) || !parse_u64(f[2], fl[2], &b))
			return rs__einval(err,
					  "bad arguments to '${%.*s}' at column %zu: expected "
					  "${rand:A:B} with integers 0 <= A <= B",
					  w, s, col);
		if (a > b)
			return rs__einval(
			    err,
			    "bad arguments to '${%.*s}' at column %zu: A must be <= B "
			    "(got %llu > %llu)",
			    w, s, col, (unsigned long long)a, (unsigned long long)b);
	} else if (NAME_IS("zipf")) {
		kind = OP_ZIPF;
		if (k != 3 || !parse_u64(f[1], fl[1], &a) || !parse_double(f[2], fl[2], &e) ||
		    a < 1 || a > (1ull << 53) || e > 100)
			return rs__einval(
			    err,
			    "bad arguments to '${%.*s}' at column %zu: expected "
			    "${zipf:N:S} with an integer N in 1..2^53 and 0 <= S <= 100",
			    w, s, col);
	} else {
		return rs__einval(err,
				  "unknown variable '${%.*s}' at column %zu (known: seq, rand:A:B, "
				  "zipf:N:S, uuid)",
				  w, s, col);
	}
#undef NAME_IS
	op = push_op(t);
	if (!op)
		return rs__enomem(err, "template");
	op->kind = kind;
	op->a = a;
	op->b = b;
	op->e = e;
	if (kind == OP_ZIPF)
		zipf_setup(op);
	t->max_len += kind == OP_UUID ? UUID_LEN : U64_DIGITS;
	if (kind != OP_SEQ)
		t->random = true;
	return 0;
}

int fl_tpl_append(struct fl_tpl *t, const char *src, struct rs_err *err)
{
	return fl_tpl_append_at(t, src, 0, err);
}

int fl_tpl_append_at(struct fl_tpl *t, const char *src, size_t col_offset, struct rs_err *err)
{
	size_t nops = t->nops, lit_len = t->lit_len, max_len = t->max_len;
	uint32_t last_len = nops ? t->ops[nops - 1].len : 0;
	bool random = t->random;
	const char *p = src, *run = src;
	int rc;

	while (*p) {
		if (p[0] != '$' || (p[1] != '{' && p[1] != '$')) {
			p++;
			continue;
		}
		rc = fl_tpl_append_lit(t, run, (size_t)(p - run), err);
		if (rc < 0)
			goto fail;
		if (p[1] == '$') {
			run = p + 1; /* keep the second '$' as the start of the next run */
			p += 2;
			continue;
		}
		{
			const char *close = strchr(p + 2, '}');
			size_t col = col_offset + (size_t)(p - src) + 1;

			if (!close) {
				rc = rs__einval(
				    err, "unterminated variable '%.20s' at column %zu: missing '}'",
				    p, col);
				goto fail;
			}
			rc = compile_var(t, p + 2, (size_t)(close - p - 2), col, err);
			if (rc < 0)
				goto fail;
			p = close + 1;
			run = p;
		}
	}
	rc = fl_tpl_append_lit(t, run, (size_t)(p - run), err);
	if (rc < 0)
		goto fail;
	return 0;
fail:
	t->nops = nops;
	t->lit_len = lit_len;
	t->max_len = max_len;
	t->random = random;
	if (nops)
		t->ops[nops - 1].len = last_len;
	return rc;
}

int fl_tpl_compile(struct fl_tpl **out, const char *src, struct rs_err *err)
{
	int rc = fl_tpl_new(out, err);

	if (rc < 0)
		return rc;
	rc = fl_tpl_append(*out, src, err);
	if (rc < 0) {
		fl_tpl_free(*out);
		*out = NULL;
	}
	return rc;
}

size_t fl_tpl_max_len(const struct fl_tpl *t)
{
	return t->max_len;
}

bool fl_tpl_is_const(const struct fl_tpl *t)
{
	return t->nops == 0 || (t->nops == 1 && t->ops[0].kind == OP_LIT);
}

const char *fl_tpl_const(const struct fl_tpl *t, size_t *len)
{
	if (!fl_tpl_is_const(t))
		return NULL;
	*len = t->lit_len;
	return t->lit ? t->lit : "";
}

bool fl_tpl_is_random(const struct fl_tpl *t)
{
	return t->random;
}

/* ---- expansion ---- */

static size_t put_u64(char *buf, uint64_t v)
{
	char tmp[U64_DIGITS];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (size_t i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
}

static size_t put_uuid(char *buf, struct rs_rng *rng)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[16];
	uint64_t x = rs_rng_next(rng), y = rs_rng_next(rng);
	size_t n = 0;

	for (int i = 0; i < 8; i++) {
		b[i] = (unsigned char)(x >> (8 * i));
		b[8 + i] = (unsigned char)(y >> (8 * i));
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant 10xx */
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			buf[n++] = '-';
		buf[n++] = hex[b[i] >> 4];
		buf[n++] = hex[b[i] & 15];
	}
	return n;
}

size_t fl_tpl_expand(const struct fl_tpl *t, struct fl_tpl_ctx *ctx, char *buf)
{
	size_t n = 0;

	for (size_t i = 0; i < t->nops; i++) {
		const struct op *op = &t->ops[i];

		switch (op->kind) {
		case OP_LIT:
			memcpy(buf + n, t->lit + op->off, op->len);
			n += op->len;
			break;
		case OP_SEQ:
			n += put_u64(buf + n, ctx->seq);
			break;
		case OP_RAND:
			n += put_u64(buf + n, rs_rng_range(&ctx->rng, op->a, op->b));
			break;
		case OP_ZIPF:
			n += put_u64(buf + n, zipf_sample(op, &ctx->rng));
			break;
		case OP_UUID:
			n += put_uuid(buf + n, &ctx->rng);
			break;
		}
	}
	return n;
}
