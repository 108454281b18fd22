/* The registry of fault and probe families: their names, what they do, and
 * the parameters each accepts (harness/params.h specs).
 *
 * It is one static table (families.c): adding a family (netem, rate, proxy,
 * disk, process in later issues) is one entry plus its parameter table.  The
 * validator reads it to check `fault` and `probe` objects, `faultline list`
 * prints it, and the runner finds a family's injector or probe by name.
 *
 * Read-only after compile time; any thread.
 */
#ifndef FAULTLINE_FAMILIES_H
#define FAULTLINE_FAMILIES_H

#include <stdbool.h>
#include <stddef.h>

#include "harness/params.h"

enum fl_family_kind {
	FL_FAULT,
	FL_PROBE,
};

enum {
	/* Fault flags. */
	FL_FAM_INSTANT = 1u << 0, /* acts once and has nothing to revert: an action
				     without `for` (or with `for` + `repeat`) */
	FL_FAM_REVERTS = 1u << 1, /* holds until reverted: an action needs `for` */
	FL_FAM_REPEAT = 1u << 2,  /* may be re-applied every `repeat` while it lasts */
};

struct fl_family {
	const char *name; /* "jitter", "prometheus" */
	enum fl_family_kind kind;
	unsigned flags; /* FL_FAM_* (faults) */
	const char *summary;
	const char *needs;		/* what it needs from the target/machine, for people */
	const struct fl_obj_spec *spec; /* its parameters (the object besides "type") */
	/* Checks that involve several parameters (one of url/path, regex
	 * needed for value "regex", ...), after fl_params_read succeeded.
	 * Reports into r->diag with paths under `path`; returns 0 or -EINVAL.
	 * NULL when there are none. */
	int (*check)(struct fl_reader *r, const struct fl_json *obj, const char *path,
		     const struct fl_params *p);
};

/* Every family, in a fixed order (faults first); *n gets the count. */
const struct fl_family *fl_families(size_t *n);

/* The family `name` of `kind`, or NULL. */
const struct fl_family *fl_family_find(enum fl_family_kind kind, const char *name);

/* "jitter, cache, capacity": the names of one kind, comma-separated, into
 * buf (truncated to size); returns buf. */
char *fl_family_names(enum fl_family_kind kind, char *buf, size_t size);

/* The client probe's metrics (what "client.<metric>" may name),
 * NULL-terminated. */
extern const char *const fl_client_metrics[];

#endif
