/* Replaceable allocation for the resilience core.
 *
 * Every object that allocates takes a `const struct rs_alloc *` in its
 * options (NULL means libc malloc/free).  The allocator is borrowed: it must
 * outlive every object created with it.  Objects allocate only in their
 * constructors (`_new`/`_init`), never on hot paths, so a test can fail the
 * Nth allocation of a constructor and check that it returns -ENOMEM and
 * leaks nothing (the way libuv's uv_replace_allocator and curl's torture
 * mode are used), without any global hook.
 */
#ifndef RESILIENCE_ALLOC_H
#define RESILIENCE_ALLOC_H

#include <stddef.h>

struct rs_alloc {
	/* Returns n bytes aligned for any type, or NULL. */
	void *(*malloc)(void *ctx, size_t n);
	/* Releases a block from malloc; accepts NULL. */
	void (*free)(void *ctx, void *p);
	void *ctx;
};

/* Allocate/free through `a`, or libc when a is NULL.  rs__calloc zeroes and
 * returns NULL on n * size overflow. */
void *rs__malloc(const struct rs_alloc *a, size_t n);
void *rs__calloc(const struct rs_alloc *a, size_t n, size_t size);
void rs__free(const struct rs_alloc *a, void *p);

#endif
