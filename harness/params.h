/* Declarative parameter specs, the diagnostics they produce, and the reader
 * that checks a JSON object against a spec.
 *
 * Every object an experiment may contain (the top level, target, load,
 * load.retry, a fault of family "cache", a probe of family "prometheus",
 * ...) is described by one struct fl_obj_spec: its keys, each with a type,
 * unit, default, bounds, allowed values and a line of help.  The same table
 * drives the validator (unknown keys, wrong types, missing keys, bounds),
 * `faultline list`, and the consistency test that keeps
 * experiments/schema.json and experiments/README.md in step with the code.
 *
 * Diagnostics: a struct fl_diag collects up to FL_DIAG_MAX located
 * messages for one file, each "FILE:LINE:COL: PATH: reason", and counts
 * the ones it had to drop.
 *
 * Threads: specs are static and read-only.  A reader context, its diag and
 * its arena belong to one thread at a time.
 */
#ifndef FAULTLINE_PARAMS_H
#define FAULTLINE_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "harness/json.h"
#include "resilience/err.h"

/* ---- diagnostics ------------------------------------------------------ */

#define FL_DIAG_MAX  20
#define FL_DIAG_TEXT 480

struct fl_diag_entry {
	uint32_t line, col; /* 0 when the message has no position */
	char text[FL_DIAG_TEXT];
};

/* Caller-embedded.  `file` is borrowed and names the input in messages. */
struct fl_diag {
	const char *file;
	size_t count; /* messages added, including dropped ones */
	struct fl_diag_entry e[FL_DIAG_MAX];
};

void fl_diag_init(struct fl_diag *d, const char *file);

/* Adds "FILE:LINE:COL: PATH: reason".  line 0 leaves out the position, an
 * empty or NULL path leaves out the path.  Past FL_DIAG_MAX messages only
 * the count grows. */
void fl_diag_add(struct fl_diag *d, uint32_t line, uint32_t col, const char *path, const char *fmt,
		 ...) RS_PRINTF(5, 6);

/* The same, located at a JSON value (at its key when at_key and the value
 * is an object member).  v may be NULL (no position). */
void fl_diag_at(struct fl_diag *d, const struct fl_json *v, bool at_key, const char *path,
		const char *fmt, ...) RS_PRINTF(5, 6);

/* True when no further message would be kept: callers skip costly hints. */
bool fl_diag_full(const struct fl_diag *d);

/* Orders the kept messages by position (stable). */
void fl_diag_sort(struct fl_diag *d);

/* Prints every kept message, one a line, and "FILE: N more errors not
 * shown" when some were dropped.  Returns d->count. */
size_t fl_diag_print(const struct fl_diag *d, FILE *f);

/* ---- paths ------------------------------------------------------------ */

#define FL_PATH_MAX 192

/* Writes parent + ".key" (or "[\"key\"]" for keys that are not plain
 * identifiers; just "key" at the top level) into buf; returns buf. */
char *fl_path_key(char *buf, const char *parent, const char *key);
/* Writes parent + "[i]" into buf; returns buf. */
char *fl_path_index(char *buf, const char *parent, size_t i);

/* ---- specs ------------------------------------------------------------ */

enum fl_ptype {
	FL_PT_STRING,	/* a string */
	FL_PT_ENUM,	/* a string, one of `choices` */
	FL_PT_BOOL,	/* true or false */
	FL_PT_INT,	/* a whole number (int64) */
	FL_PT_UINT64,	/* a whole number 0 .. 2^64-1, read exactly (seeds) */
	FL_PT_NUMBER,	/* any finite number */
	FL_PT_DURATION, /* a string with a unit: "250ms" (duration.h) */
	FL_PT_FRACTION, /* "40%" or a number in [0, 1] */
	FL_PT_BOUND,	/* a number, a duration (read as seconds) or a percentage
			   (read as a fraction): what a probe's value is compared with */
	FL_PT_REGEX,	/* a POSIX extended regular expression */
	FL_PT_STRINGS,	/* an array of strings */
	FL_PT_MAP,	/* an object whose values are strings */
	FL_PT_OBJECT,	/* an object described by `object`; read by the caller */
	FL_PT_ARRAY,	/* an array (of `object` items when set); read by the caller */
	FL_PT_ANY,	/* read by the caller (its help says what it accepts) */
};

enum {
	FL_P_REQUIRED = 1u << 0, /* must be present */
	FL_P_LATE = 1u << 1,	 /* may hold ${port} and the other late variables */
	FL_P_TEMPLATE = 1u << 2, /* a load-generator template: ${seq}, ${rand:A:B}, ... */
	FL_P_NONEMPTY = 1u << 3, /* strings and arrays: at least one character / item */
	FL_P_NOVARS = 1u << 4,	 /* no ${name} substitution (names, references) */
};

struct fl_obj_spec;

struct fl_param_spec {
	const char *name;
	enum fl_ptype type;
	unsigned flags;			  /* FL_P_* */
	const char *def;		  /* the default as it would be written ("100ms", "gauge",
				       "3", "true"), or NULL for none */
	const char *min, *max;		  /* inclusive bounds in the value's syntax, or NULL */
	const char *const *choices;	  /* FL_PT_ENUM: NULL-terminated */
	const char *unit;		  /* for people: "requests/s", "connections"; or NULL */
	const struct fl_obj_spec *object; /* FL_PT_OBJECT / FL_PT_ARRAY items, or NULL */
	const char *help;		  /* one line */
};

struct fl_obj_spec {
	const char *name; /* "load.retry": README section and schema $defs name */
	const char *help;
	const struct fl_param_spec *params;
	size_t n;
	bool typed; /* also has a "type" key naming its family (read by the caller) */
};

/* "duration", "percentage or fraction", "array of strings", ... */
const char *fl_ptype_name(enum fl_ptype t);

/* The spec of key `name`, or NULL. */
const struct fl_param_spec *fl_obj_spec_find(const struct fl_obj_spec *spec, const char *name);

/* The candidate closest to word by edit distance when it is close enough
 * to be a likely typo (distance <= 2, and less than half of word), else NULL. */
const char *fl_did_you_mean(const char *word, const char *const *cands, size_t n);

/* ---- values ----------------------------------------------------------- */

/* One parameter's value.  Pointers are borrowed from the document or the
 * reader's arena. */
struct fl_pval {
	const struct fl_json *node; /* where it was written; NULL when defaulted/absent */
	bool set;		    /* written, or defaulted */
	const char *s;		    /* STRING, ENUM, REGEX (after ${} substitution) */
	int64_t i;		    /* INT */
	uint64_t u;		    /* UINT64; DURATION in ns */
	double d;		    /* NUMBER, FRACTION, BOUND */
	bool b;			    /* BOOL */
	const char *const *strv;    /* STRINGS: n items; MAP: n pairs (key, value) */
	size_t n;
};

/* The values of one object, in spec order (v[i] belongs to spec->params[i]). */
struct fl_params {
	const struct fl_obj_spec *spec;
	struct fl_pval *v;
};

/* The value of key `name`, or NULL when the spec has no such key.  Check
 * ->set to know whether it was written or defaulted. */
const struct fl_pval *fl_params_get(const struct fl_params *p, const char *name);

/* Typed shortcuts: the value, or `dflt` when the key is unknown or unset. */
const char *fl_params_str(const struct fl_params *p, const char *name, const char *dflt);
uint64_t fl_params_ns(const struct fl_params *p, const char *name, uint64_t dflt);
double fl_params_num(const struct fl_params *p, const char *name, double dflt);
int64_t fl_params_int(const struct fl_params *p, const char *name, int64_t dflt);
bool fl_params_bool(const struct fl_params *p, const char *name, bool dflt);

/* ---- reading ---------------------------------------------------------- */

/* Substitutes ${name} variables in s (n bytes, NUL-terminated).  Returns 0
 * with *out set (borrowed: s itself or a string in the reader's arena),
 * -EINVAL with a reason in why, or -ENOMEM.  `flags` are the parameter's
 * FL_P_* flags (late variables and template variables are kept only where
 * the flags allow them). */
typedef int (*fl_expand_fn)(void *ctx, const char *s, size_t n, unsigned flags, const char **out,
			    char *why, size_t why_len);

struct fl_reader {
	struct fl_diag *diag;	/* borrowed: where errors go */
	struct fl_arena *arena; /* borrowed: values live here */
	fl_expand_fn expand;	/* NULL: no substitution */
	void *expand_ctx;
};

/* Checks obj against spec and reads every known key into out->v
 * (allocated in the reader's arena).  Errors (each added to the diag with
 * its path and position): obj not an object, unknown keys (with a "did you
 * mean"), missing required keys, wrong types, bad durations/percentages,
 * values out of [min, max], enum values not in choices, invalid regexes.
 * Keys of type OBJECT/ARRAY/ANY are only type-checked (ANY not at all);
 * their node is left for the caller.  Unset keys with a default get it.
 * Returns 0, -EINVAL when any error was reported (out is still filled as
 * far as possible), or -ENOMEM. */
int fl_params_read(struct fl_reader *r, const struct fl_obj_spec *spec, const struct fl_json *obj,
		   const char *path, struct fl_params *out) RS_WUR;

/* Reads one value of type `ps->type` (as fl_params_read does for a key);
 * for callers that read ANY-typed values.  0, -EINVAL (reported) or -ENOMEM. */
int fl_param_read_value(struct fl_reader *r, const struct fl_param_spec *ps,
			const struct fl_json *v, const char *path, struct fl_pval *out) RS_WUR;

/* Writes a value as it would be written in JSON ("250ms", "40%", "3",
 * "gauge") into buf; returns buf. */
char *fl_pval_format(const struct fl_param_spec *ps, const struct fl_pval *v, char *buf,
		     size_t size);

#endif
