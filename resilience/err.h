/* Error reporting shared by every module of the resilience core.
 *
 * Functions that can fail return 0 or a negative errno (-EINVAL for bad
 * options, -ENOMEM for a failed allocation, -errno of a failed syscall).
 * When the caller passes a struct rs_err, the function writes one lowercase
 * line into it saying what failed, on what, and why, e.g.
 *   "breaker: failure_rate_threshold must be in (0, 1], got 1.5"
 * The caller owns the struct; a NULL pointer means "no message wanted".
 * There is no global error state.
 */
#ifndef RESILIENCE_ERR_H
#define RESILIENCE_ERR_H

#include <stddef.h>

#define RS_WUR		  __attribute__((warn_unused_result))
#define RS_PRINTF(fmt, a) __attribute__((format(printf, fmt, a)))

#define RS_ERR_MSG_MAX	  256

struct rs_err {
	char msg[RS_ERR_MSG_MAX];
};

/* Formats a message into err (truncated to fit); err may be NULL.  Internal
 * to the core, but usable by other faultline modules. */
void rs__err_set(struct rs_err *err, const char *fmt, ...) RS_PRINTF(2, 3);

/* Sets the message and returns -EINVAL, so option checks read as
 * "return rs__einval(err, "breaker: ...", ...);". */
int rs__einval(struct rs_err *err, const char *fmt, ...) RS_PRINTF(2, 3);

/* Sets "<what>: out of memory" and returns -ENOMEM. */
int rs__enomem(struct rs_err *err, const char *what);

#endif
