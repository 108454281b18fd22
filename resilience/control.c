#include "resilience/control.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct rs_control {
	struct rs_control_block *block;
	const struct rs_alloc *alloc;
	char *path;
};

static void block_defaults(struct rs_control_block *b)
{
	memset(b, 0, sizeof(*b));
	b->magic = RS_CONTROL_MAGIC;
	b->version = RS_CONTROL_VERSION;
	b->size = sizeof(*b);
	atomic_store(&b->jitter_enabled, 1);
}

int rs_control_open(struct rs_control **out, const char *path, int flags,
		    const struct rs_alloc *alloc, struct rs_err *err)
{
	struct rs_control *c = NULL;
	struct rs_control_block *b = MAP_FAILED;
	struct stat st;
	size_t len = strlen(path ? path : "");
	int fd = -1, rc;

	*out = NULL;
	if (len == 0)
		return rs__einval(err, "control: path is empty");
	c = rs__calloc(alloc, 1, sizeof(*c));
	if (!c)
		return rs__enomem(err, "control");
	c->alloc = alloc;
	c->path = rs__malloc(alloc, len + 1);
	if (!c->path) {
		rc = rs__enomem(err, "control");
		goto fail;
	}
	memcpy(c->path, path, len + 1);

	fd = open(path, O_RDWR | O_CLOEXEC | ((flags & RS_CONTROL_CREATE) ? O_CREAT : 0), 0600);
	if (fd < 0) {
		rc = -errno;
		rs__err_set(err, "control: cannot open '%s': %s", path, strerror(errno));
		goto fail;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		rs__err_set(err, "control: cannot stat '%s': %s", path, strerror(errno));
		goto fail;
	}
	if (st.st_size == 0 && (flags & RS_CONTROL_CREATE)) {
		if (ftruncate(fd, sizeof(*b)) < 0) {
			rc = -errno;
			rs__err_set(err, "control: cannot size '%s': %s", path, strerror(errno));
			goto fail;
		}
		flags |= RS_CONTROL_RESET;
	} else if ((size_t)st.st_size != sizeof(*b)) {
		rc = rs__einval(err,
				"control: '%s' is %lld bytes, expected %zu (not a control block?)",
				path, (long long)st.st_size, sizeof(*b));
		goto fail;
	}
	b = mmap(NULL, sizeof(*b), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (b == MAP_FAILED) {
		rc = -errno;
		rs__err_set(err, "control: cannot map '%s': %s", path, strerror(errno));
		goto fail;
	}
	if ((flags & RS_CONTROL_CREATE) && (flags & RS_CONTROL_RESET)) {
		block_defaults(b);
	} else if (b->magic != RS_CONTROL_MAGIC || b->version != RS_CONTROL_VERSION ||
		   b->size != sizeof(*b)) {
		rc = rs__einval(
		    err, "control: '%s' has magic %#llx version %u, expected %#llx version %u",
		    path, (unsigned long long)b->magic, b->version,
		    (unsigned long long)RS_CONTROL_MAGIC, RS_CONTROL_VERSION);
		goto fail;
	}
	close(fd);
	c->block = b;
	*out = c;
	return 0;
fail:
	if (b != MAP_FAILED)
		munmap(b, sizeof(*b));
	if (fd >= 0)
		close(fd);
	if (c)
		rs__free(alloc, c->path);
	rs__free(alloc, c);
	return rc;
}

int rs_control_from_env(struct rs_control **out, const struct rs_alloc *alloc, struct rs_err *err)
{
	const char *path = getenv(RS_CONTROL_ENV);

	*out = NULL;
	if (!path || !*path)
		return 0;
	return rs_control_open(out, path, RS_CONTROL_CREATE, alloc, err);
}

void rs_control_free(struct rs_control *c)
{
	if (!c)
		return;
	munmap(c->block, sizeof(*c->block));
	rs__free(c->alloc, c->path);
	rs__free(c->alloc, c);
}

struct rs_control_block *rs_control_block(struct rs_control *c)
{
	return c ? c->block : NULL;
}

const char *rs_control_path(const struct rs_control *c)
{
	return c ? c->path : NULL;
}

static void bump(struct rs_control_block *b)
{
	atomic_fetch_add_explicit(&b->generation, 1, memory_order_release);
}

bool rs_control_set_jitter(struct rs_control *c, bool enabled)
{
	uint32_t prev;

	if (!c)
		return true;
	prev = atomic_exchange(&c->block->jitter_enabled, enabled ? 1u : 0u);
	bump(c->block);
	return prev != 0;
}

bool rs_control_set_retries_paused(struct rs_control *c, bool paused)
{
	uint32_t prev;

	if (!c)
		return false;
	prev = atomic_exchange(&c->block->retries_paused, paused ? 1u : 0u);
	bump(c->block);
	return prev != 0;
}

int rs_control_breaker_slot(struct rs_control *c, const char *name, const _Atomic uint32_t **slot,
			    struct rs_err *err)
{
	size_t len = name ? strlen(name) : 0;

	*slot = NULL;
	if (!c)
		return 0;
	if (len == 0 || len >= RS_CONTROL_NAME_MAX)
		return rs__einval(err, "control: breaker name must be 1 to %d bytes, got %zu",
				  RS_CONTROL_NAME_MAX - 1, len);
	for (int pass = 0; pass < 2; pass++) {
		for (int i = 0; i < RS_CONTROL_BREAKERS; i++) {
			struct rs_control_breaker *s = &c->block->breakers[i];
			uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);

			/* A slot being claimed by another process: wait until it is named. */
			while (st == RS_SLOT_CLAIMING)
				st = atomic_load_explicit(&s->state, memory_order_acquire);
			if (st == RS_SLOT_NAMED && strcmp(s->name, name) == 0) {
				*slot = &s->force;
				return 0;
			}
			/* First pass only looks; the second claims the first free slot. */
			if (pass == 1 && st == RS_SLOT_FREE) {
				uint32_t expect = RS_SLOT_FREE;

				if (!atomic_compare_exchange_strong(&s->state, &expect,
								    RS_SLOT_CLAIMING))
					continue;
				memcpy(s->name, name, len + 1);
				atomic_store(&s->force, RS_FORCE_NONE);
				atomic_store_explicit(&s->state, RS_SLOT_NAMED,
						      memory_order_release);
				bump(c->block);
				*slot = &s->force;
				return 0;
			}
		}
	}
	rs__err_set(err, "control: no free breaker slot for '%s' (all %d in use)", name,
		    RS_CONTROL_BREAKERS);
	return -ENOSPC;
}

int rs_control_force_breaker(struct rs_control *c, const char *name, enum rs_control_force force,
			     enum rs_control_force *prev, struct rs_err *err)
{
	const _Atomic uint32_t *slot;
	uint32_t old;
	int rc;

	if (prev)
		*prev = RS_FORCE_NONE;
	if (force != RS_FORCE_NONE && force != RS_FORCE_OPEN && force != RS_FORCE_CLOSED)
		return rs__einval(err,
				  "control: force for '%s' must be none, open or closed, got %d",
				  name ? name : "", (int)force);
	rc = rs_control_breaker_slot(c, name, &slot, err);
	if (rc < 0 || !slot)
		return rc;
	old = atomic_exchange((_Atomic uint32_t *)slot, (uint32_t)force);
	bump(c->block);
	if (prev)
		*prev = (enum rs_control_force)old;
	return 0;
}

void rs_control_expo(struct rs_expo *e, const struct rs_control_block *b, const char *name)
{
	const char *labels[] = { "name", name, NULL };

	rs_expo_family(e, "resilience_jitter_enabled", RS_EXPO_GAUGE,
		       "1 while retry and timer jitter is on, 0 when the control block removed it");
	rs_expo_sample(e, "resilience_jitter_enabled", labels, rs_control_jitter_enabled(b));
	rs_expo_family(e, "resilience_retries_paused", RS_EXPO_GAUGE,
		       "1 while the control block pauses every retry");
	rs_expo_sample(e, "resilience_retries_paused", labels, rs_control_retries_paused(b));
}
