#include "resilience/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

static void err_vset(struct rs_err *err, const char *fmt, va_list ap) RS_PRINTF(2, 0);

static void err_vset(struct rs_err *err, const char *fmt, va_list ap)
{
	if (!err)
		return;
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
}

void rs__err_set(struct rs_err *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(err, fmt, ap);
	va_end(ap);
}

int rs__einval(struct rs_err *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	err_vset(err, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int rs__enomem(struct rs_err *err, const char *what)
{
	rs__err_set(err, "%s: out of memory", what);
	return -ENOMEM;
}
