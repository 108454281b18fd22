/* The control block: a small versioned file that a process built on the core
 * maps, and that the harness writes to change that process's behaviour while
 * it runs (remove jitter, pause retries, force a breaker open or closed).
 *
 * A process opts in through the environment: RESILIENCE_CONTROL=/path.  A
 * process without the variable gets no control block, and every accessor
 * below treats a NULL block as "normal behaviour" (jitter on, retries not
 * paused, breakers not forced).
 *
 * The file holds one struct rs_control_block in host byte order; it is an
 * interface between processes on one machine, so its layout is fixed for a
 * given version.  Fields that change at run time are 32-bit atomics: readers
 * on hot paths do one relaxed load; writers store and then bump
 * `generation` with release order so an observer can see that something
 * changed.
 *
 * Thread/process safety: any number of readers and writers, in any
 * processes, may use one file at once.  Breaker slots are claimed with a
 * compare-and-swap, so two processes registering names never share a slot.
 */
#ifndef RESILIENCE_CONTROL_H
#define RESILIENCE_CONTROL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "resilience/alloc.h"
#include "resilience/err.h"
#include "resilience/expo.h"

#define RS_CONTROL_ENV	    "RESILIENCE_CONTROL"
#define RS_CONTROL_MAGIC    0x4c54434c52534552ull /* "RESRLCTL" */
#define RS_CONTROL_VERSION  1u
#define RS_CONTROL_BREAKERS 32
#define RS_CONTROL_NAME_MAX 48 /* including the terminating NUL */

enum rs_control_force {
	RS_FORCE_NONE = 0,   /* the breaker follows its own policy */
	RS_FORCE_OPEN = 1,   /* every call is rejected (state forced-open) */
	RS_FORCE_CLOSED = 2, /* every call is admitted, outcomes still counted */
};

enum { RS_SLOT_FREE = 0, RS_SLOT_CLAIMING = 1, RS_SLOT_NAMED = 2 };

struct rs_control_breaker {
	_Atomic uint32_t state; /* RS_SLOT_* */
	_Atomic uint32_t force; /* enum rs_control_force */
	char name[RS_CONTROL_NAME_MAX];
};

struct rs_control_block {
	uint64_t magic;			 /* RS_CONTROL_MAGIC */
	uint32_t version;		 /* RS_CONTROL_VERSION */
	uint32_t size;			 /* sizeof(struct rs_control_block) */
	_Atomic uint32_t jitter_enabled; /* 1 normal; 0 jitter removed */
	_Atomic uint32_t retries_paused; /* 0 normal; 1 no retries at all */
	_Atomic uint64_t generation;	 /* bumped after every write */
	struct rs_control_breaker breakers[RS_CONTROL_BREAKERS];
};

struct rs_control;

enum {
	RS_CONTROL_CREATE = 1, /* create the file with defaults if absent */
	RS_CONTROL_RESET = 2,  /* (with CREATE) rewrite defaults even if present */
};

/* Maps the control file at `path` read-write.  With RS_CONTROL_CREATE a
 * missing file is created (mode 0600) and initialised to defaults.  An
 * existing file must have the right magic, version and size, else -EINVAL
 * with a message naming the path.  Syscall failures return -errno with the
 * path and reason.  On success *out is caller-frees with rs_control_free.
 * `alloc` may be NULL (libc) and is borrowed. */
int rs_control_open(struct rs_control **out, const char *path, int flags,
		    const struct rs_alloc *alloc, struct rs_err *err) RS_WUR;

/* Maps the file named by $RESILIENCE_CONTROL (creating it if absent).  When
 * the variable is unset or empty, sets *out = NULL and returns 0: the
 * process behaves normally. */
int rs_control_from_env(struct rs_control **out, const struct rs_alloc *alloc,
			struct rs_err *err) RS_WUR;

/* Unmaps and frees; accepts NULL. */
void rs_control_free(struct rs_control *c);

/* The mapped block, or NULL for a NULL handle.  Borrowed: valid until
 * rs_control_free.  Hot paths keep this pointer and use the inline readers. */
struct rs_control_block *rs_control_block(struct rs_control *c);

/* The path the handle maps (borrowed), or NULL. */
const char *rs_control_path(const struct rs_control *c);

/* Hot-path readers: one relaxed atomic load; a NULL block reads as normal. */
static inline bool rs_control_jitter_enabled(const struct rs_control_block *b)
{
	return !b || atomic_load_explicit(&((struct rs_control_block *)b)->jitter_enabled,
					  memory_order_relaxed) != 0;
}

static inline bool rs_control_retries_paused(const struct rs_control_block *b)
{
	return b && atomic_load_explicit(&((struct rs_control_block *)b)->retries_paused,
					 memory_order_relaxed) != 0;
}

/* Reads a breaker's force slot (from rs_control_breaker_slot); NULL reads
 * RS_FORCE_NONE. */
static inline enum rs_control_force rs_control_force_read(const _Atomic uint32_t *slot)
{
	return slot ? (enum rs_control_force)atomic_load_explicit((_Atomic uint32_t *)slot,
								  memory_order_relaxed)
		    : RS_FORCE_NONE;
}

/* Finds the slot of breaker `name`, claiming a free one if it has none yet,
 * and returns its force word (borrowed, valid until rs_control_free), or
 * NULL when c is NULL.  -ENOSPC when all RS_CONTROL_BREAKERS slots are taken,
 * -EINVAL for an empty name or one of RS_CONTROL_NAME_MAX bytes or more.
 * A breaker calls this once at construction and keeps the pointer. */
int rs_control_breaker_slot(struct rs_control *c, const char *name, const _Atomic uint32_t **slot,
			    struct rs_err *err) RS_WUR;

/* Writers (the harness side).  Each stores the value, then bumps the
 * generation.  Return the previous value so a fault can restore it. */
bool rs_control_set_jitter(struct rs_control *c, bool enabled);
bool rs_control_set_retries_paused(struct rs_control *c, bool paused);

/* Forces breaker `name` (claiming its slot if needed); *prev receives the
 * previous force (may be NULL).  Same errors as rs_control_breaker_slot. */
int rs_control_force_breaker(struct rs_control *c, const char *name, enum rs_control_force force,
			     enum rs_control_force *prev, struct rs_err *err) RS_WUR;

/* Writes resilience_jitter_enabled{name} and resilience_retries_paused{name}
 * (gauges) for one process's block; a NULL block exports the normal values
 * (jitter 1, paused 0).  `name` labels the process (e.g. "service"). */
void rs_control_expo(struct rs_expo *e, const struct rs_control_block *b, const char *name);

#endif
