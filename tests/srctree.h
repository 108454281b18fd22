/* The source tree, for tests that read its files (experiments, corpora):
 * the current directory when it holds `marker`, else the parent of
 * $FAULTLINE_BUILD (make test exports it; the tests may run from anywhere).
 * Header-only, for tests. */
#ifndef FAULTLINE_TESTS_SRCTREE_H
#define FAULTLINE_TESTS_SRCTREE_H

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/tap.h"

/* Writes the tree's path into out (cap bytes): "." (or the absolute
 * current directory when `absolute`) when ./marker is readable, else
 * $FAULTLINE_BUILD's parent when it holds marker.  Bails out otherwise. */
static inline void srctree_find(char *out, size_t cap, const char *marker, bool absolute)
{
	const char *b = getenv("FAULTLINE_BUILD");
	char probe[PATH_MAX + 256];
	char *slash;

	if (access(marker, R_OK) == 0) {
		if (!absolute)
			snprintf(out, cap, ".");
		else if (!getcwd(out, cap))
			bail_out("getcwd: %s", strerror(errno));
		return;
	}
	if (b && strlen(b) < cap) {
		snprintf(out, cap, "%s", b);
		slash = strrchr(out, '/');
		if (slash)
			*slash = '\0';
		snprintf(probe, sizeof(probe), "%s/%s", out, marker);
		if (access(probe, R_OK) == 0)
			return;
	}
	bail_out("cannot find %s in the source tree (run from the repository root, or set "
		 "FAULTLINE_BUILD to its build directory)",
		 marker);
}

#endif
