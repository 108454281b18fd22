#include "resilience/alloc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void *rs__malloc(const struct rs_alloc *a, size_t n)
{
	if (n == 0)
		n = 1;
	return a ? a->malloc(a->ctx, n) : malloc(n);
}

void *rs__calloc(const struct rs_alloc *a, size_t n, size_t size)
{
	size_t total;
	void *p;

	if (size && n > SIZE_MAX / size)
		return NULL;
	total = n * size;
	p = rs__malloc(a, total);
	if (p)
		memset(p, 0, total);
	return p;
}

void rs__free(const struct rs_alloc *a, void *p)
{
	if (!p)
		return;
	if (a)
		a->free(a->ctx, p);
	else
		free(p);
}
