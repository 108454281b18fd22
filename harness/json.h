/* A strict RFC 8259 JSON reader that remembers where every value came from.
 *
 * Why not cJSON: an experiment's errors must name the line and column of
 * the offending value, and a duplicate key must be an error (cJSON keeps
 * both silently).  This reader parses a byte buffer into a read-only tree in
 * which every value carries its byte offset, line and column, and refuses
 * anything RFC 8259 does not allow, with a located reason.
 *
 * Fixed limits (each refusal is an error, never a crash or a hang):
 *   FL_JSON_MAX_BYTES    16 MiB of input
 *   FL_JSON_MAX_DEPTH    64 levels of nested arrays/objects
 *   FL_JSON_MAX_VALUES   262144 values in one document
 *   FL_JSON_MAX_NUMBER   256 characters in one number literal
 * Time is linear in the input (duplicate keys are found by sorting the
 * members of large objects, O(n log n) per object), recursion is bounded by
 * the depth limit, and memory by the value limit and the input size.
 *
 * Accepted: exactly one JSON value surrounded by optional whitespace, in
 * UTF-8 (a leading UTF-8 byte order mark is skipped).  Refused, with these
 * reasons among others: "empty file", "invalid UTF-8 byte 0xff",
 * "control character 0x0a in string (escape it as \n)", "lone surrogate
 * \ud800 in string", "duplicate key \"seed\" (first at 3:5)", "nesting
 * deeper than 64 levels", "number out of range", "trailing data after the
 * JSON value", "trailing comma before '}'", "comments are not allowed in
 * JSON".  Numbers that overflow a double (1e999) are errors; numbers that
 * underflow read as 0.
 *
 * Positions: lines count '\n' from 1; columns count characters (UTF-8 code
 * points, a tab is one) from 1.
 *
 * Threads: a document is immutable after fl_json_parse and may be read from
 * any thread; parsing shares no state between calls.
 */
#ifndef FAULTLINE_JSON_H
#define FAULTLINE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resilience/alloc.h"
#include "resilience/err.h"

#define FL_JSON_MAX_BYTES  (16u << 20)
#define FL_JSON_MAX_DEPTH  64
#define FL_JSON_MAX_VALUES (1u << 18)
#define FL_JSON_MAX_NUMBER 256

/* ---- an arena: many small allocations, one release ---------------------- */

struct fl_arena_chunk;

/* Caller-embedded.  Every block comes from `alloc` (NULL = libc, borrowed,
 * must outlive the arena) and lives until fl_arena_release. */
struct fl_arena {
	const struct rs_alloc *alloc;
	struct fl_arena_chunk *head;
	size_t used; /* bytes used in head */
	size_t cap;  /* bytes available in head */
};

void fl_arena_init(struct fl_arena *a, const struct rs_alloc *alloc);

/* n zeroed bytes aligned for any type, or NULL when out of memory. */
void *fl_arena_alloc(struct fl_arena *a, size_t n);

/* A NUL-terminated copy of n bytes of s, or NULL when out of memory. */
char *fl_arena_strndup(struct fl_arena *a, const char *s, size_t n);

/* Frees every block; the arena may be used again afterwards. */
void fl_arena_release(struct fl_arena *a);

/* ---- the tree --------------------------------------------------------- */

enum fl_json_type {
	FL_JSON_NULL,
	FL_JSON_BOOL,
	FL_JSON_NUMBER,
	FL_JSON_STRING,
	FL_JSON_ARRAY,
	FL_JSON_OBJECT,
};

/* One value.  Every pointer in it is owned by the document and valid until
 * fl_json_doc_free. */
struct fl_json {
	enum fl_json_type type;
	uint32_t line, col; /* of the value's first character */
	size_t offset;	    /* its byte offset in the input */

	/* As a member of an object: the decoded key (NUL-terminated; key_len
	 * counts bytes and may include a NUL written as \u0000) and where the
	 * key starts.  NULL for array elements and the root. */
	const char *key;
	size_t key_len;
	uint32_t key_line, key_col;

	struct fl_json *next;  /* next element or member of the parent, or NULL */
	struct fl_json *child; /* arrays/objects: the first element or member */
	size_t n;	       /* arrays/objects: elements or members */

	bool b;		 /* FL_JSON_BOOL */
	double num;	 /* FL_JSON_NUMBER: the value (never inf or nan) */
	const char *str; /* FL_JSON_STRING: decoded, NUL-terminated; NUMBER: the literal */
	size_t len;	 /* bytes of str, excluding the NUL */
};

struct fl_json_doc {
	struct fl_arena arena;
	struct fl_json *root;
};

/* Where and why a parse failed.  path is the JSON path of the value being
 * read ("method[1].fault", "" at the top level). */
struct fl_json_error {
	uint32_t line, col;
	size_t offset;
	char path[160];
	char msg[200];
};

/* Parses len bytes of buf (borrowed; nothing points into it afterwards).
 * Returns 0 with *out set (caller-frees with fl_json_doc_free); -EINVAL with
 * err filled when the input is not acceptable JSON; -EFBIG (err filled) when
 * len exceeds FL_JSON_MAX_BYTES; -ENOMEM.  err may be NULL. */
int fl_json_parse(const char *buf, size_t len, const struct rs_alloc *alloc,
		  struct fl_json_doc **out, struct fl_json_error *err) RS_WUR;

/* Frees a document; accepts NULL. */
void fl_json_doc_free(struct fl_json_doc *doc);

/* The member of object `obj` named key (a C string), or NULL when obj is
 * not an object or has no such member. */
const struct fl_json *fl_json_get(const struct fl_json *obj, const char *key);

/* "an object", "a string", "a number", "true or false", "null", "an array". */
const char *fl_json_type_name(enum fl_json_type t);

/* Reads an integer.  A literal without fraction or exponent is read
 * exactly (any size up to 64 bits); one with a fraction or exponent must be
 * a whole number of magnitude <= 2^53.  Return 0, -EDOM when the value is
 * not a whole number (or not a number), -ERANGE when it does not fit. */
int fl_json_u64(const struct fl_json *v, uint64_t *out) RS_WUR;
int fl_json_i64(const struct fl_json *v, int64_t *out) RS_WUR;

#endif
