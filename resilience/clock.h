/* Time for the resilience core: CLOCK_MONOTONIC nanoseconds as uint64_t.
 *
 * Core functions never read the clock themselves on their decision paths;
 * they take `now_ns` from the caller, so tests drive time and callers on an
 * event loop can reuse one reading per iteration (libuv's uv_now).
 */
#ifndef RESILIENCE_CLOCK_H
#define RESILIENCE_CLOCK_H

#include <stdint.h>

#define RS_NS_PER_US  1000ull
#define RS_NS_PER_MS  1000000ull
#define RS_NS_PER_SEC 1000000000ull

/* CLOCK_MONOTONIC now, in nanoseconds.  Thread-safe. */
uint64_t rs_now_ns(void);

#endif
