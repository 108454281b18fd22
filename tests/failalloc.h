/* A test allocator for the core's rs_alloc hook: fails the Nth allocation
 * (1-based; 0 never fails) and counts live blocks, so a test can run a
 * constructor with N = 1, 2, ... until it succeeds and check that every
 * failing run returned -ENOMEM with nothing left allocated.
 *
 *   struct failalloc fa;
 *   for (int n = 1;; n++) {
 *           failalloc_init(&fa, n);
 *           rc = rs_x_new(&x, &(struct rs_x_opts){ ..., .alloc = &fa.alloc }, &err);
 *           if (rc == 0) { rs_x_free(x); ok(fa.live == 0, ...); break; }
 *           bad |= rc != -ENOMEM || fa.live != 0;
 *   }
 */
#ifndef FAULTLINE_FAILALLOC_H
#define FAULTLINE_FAILALLOC_H

#include <stdlib.h>

#include "resilience/alloc.h"

struct failalloc {
	struct rs_alloc alloc;
	long fail_at; /* 1-based index of the allocation that fails; 0: none */
	long calls;   /* allocations attempted so far */
	long live;    /* blocks allocated and not yet freed */
};

static inline void *failalloc__malloc(void *ctx, size_t n)
{
	struct failalloc *fa = ctx;
	void *p;

	fa->calls++;
	if (fa->fail_at && fa->calls == fa->fail_at)
		return NULL;
	p = malloc(n);
	if (p)
		fa->live++;
	return p;
}

static inline void failalloc__free(void *ctx, void *p)
{
	struct failalloc *fa = ctx;

	if (p) {
		fa->live--;
		free(p);
	}
}

static inline void failalloc_init(struct failalloc *fa, long fail_at)
{
	fa->alloc.malloc = failalloc__malloc;
	fa->alloc.free = failalloc__free;
	fa->alloc.ctx = fa;
	fa->fail_at = fail_at;
	fa->calls = 0;
	fa->live = 0;
}

#endif
