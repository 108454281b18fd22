/* Request templates: a string with variables, compiled once into a small
 * program whose expansion does no parsing and no allocation.
 *
 * Variables (anything else after "${" is an error naming it and its column):
 *   ${seq}          the request's sequence number (fl_tpl_ctx.seq), decimal
 *   ${rand:A:B}     a uniform integer in [A, B], 0 <= A <= B < 2^64
 *   ${zipf:N:S}     a rank in [1, N] with P(k) proportional to k^-S
 *                   (N >= 1, 0 <= S <= 100; S = 0 is uniform); rejection-
 *                   inversion sampling (Hoermann and Derflinger), O(1), no table
 *   ${uuid}         a random RFC 4122 version 4 UUID, lowercase
 * "$$" writes one '$'; a '$' not followed by '{' or '$' is literal.
 *
 * Randomness comes from the rs_rng in the expansion context, which
 * fl_tpl_ctx_init seeds from (run seed, sequence number): request k of a run
 * expands to the same bytes whatever the timing, and expanding it again (a
 * retry) gives the same bytes again.
 *
 * A template is built once (not thread-safe while building) and then read
 * only; expansions may run on any thread, each with its own context.
 */
#ifndef FAULTLINE_TEMPLATE_H
#define FAULTLINE_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resilience/err.h"
#include "resilience/rng.h"

struct fl_tpl;

/* Per-expansion state, caller-embedded. */
struct fl_tpl_ctx {
	uint64_t seq;	   /* what ${seq} writes */
	struct rs_rng rng; /* what the random variables draw from */
};

/* Sets ctx->seq = seq and seeds ctx->rng from (seed, seq). */
void fl_tpl_ctx_init(struct fl_tpl_ctx *ctx, uint64_t seed, uint64_t seq);

/* Allocates an empty template (caller-frees with fl_tpl_free).  Returns 0 or
 * -ENOMEM. */
int fl_tpl_new(struct fl_tpl **out, struct rs_err *err) RS_WUR;

/* Frees a template; accepts NULL. */
void fl_tpl_free(struct fl_tpl *t);

/* Appends the template source `src` (NUL-terminated, borrowed: copied in).
 * Returns 0; -EINVAL with a message such as
 *   "unknown variable '${sequence}' at column 7"
 *   "bad arguments to ${rand:A:B} at column 3: A must be <= B (got 9 > 2)"
 * (columns count bytes of src from 1), leaving t unchanged; or -ENOMEM. */
int fl_tpl_append(struct fl_tpl *t, const char *src, struct rs_err *err) RS_WUR;

/* fl_tpl_append for a source that sits at byte col_offset of a longer
 * string the user wrote (a URL's path): columns in messages count from the
 * start of that string. */
int fl_tpl_append_at(struct fl_tpl *t, const char *src, size_t col_offset,
		     struct rs_err *err) RS_WUR;

/* Appends n literal bytes (no variables are recognised).  0 or -ENOMEM. */
int fl_tpl_append_lit(struct fl_tpl *t, const char *s, size_t n, struct rs_err *err) RS_WUR;

/* Compiles one source into a new template: fl_tpl_new + fl_tpl_append. */
int fl_tpl_compile(struct fl_tpl **out, const char *src, struct rs_err *err) RS_WUR;

/* An upper bound on the length of any expansion (bytes, no NUL). */
size_t fl_tpl_max_len(const struct fl_tpl *t);

/* True when the template has no variables: every expansion is the same. */
bool fl_tpl_is_const(const struct fl_tpl *t);

/* When fl_tpl_is_const(t): the constant expansion (borrowed, valid until the
 * template changes or is freed) and its length; otherwise NULL. */
const char *fl_tpl_const(const struct fl_tpl *t, size_t *len);

/* True when some variable draws from ctx->rng (rand, zipf, uuid). */
bool fl_tpl_is_random(const struct fl_tpl *t);

/* Writes one expansion into buf, which must hold fl_tpl_max_len(t) bytes;
 * returns its length (no NUL is written).  Advances ctx->rng.  Never
 * allocates, never fails. */
size_t fl_tpl_expand(const struct fl_tpl *t, struct fl_tpl_ctx *ctx, char *buf);

#endif
