/* A small TAP (version 13) producer for faultline's tests.
 *
 * Every test program prints a plan, one "ok N - name" / "not ok N - name"
 * line per assertion, "# " diagnostics, and exits non-zero when any
 * assertion failed or the plan was not met, so prove reports it.
 *
 *   plan(3);                        or  ... done_testing();
 *   ok(x == 1, "x is one");
 *   is_int(got, 50, "opens at the 50th failure");
 *   is_double(mean, 0.5, 0.025, "mean within 5%% of midpoint");
 *   is_str(line, "a 1", "golden line");
 *   skip("needs root", 2);          (counts 2 skipped test points)
 *   skip_all("no FUSE: /dev/fuse missing");   (plan 1..0 # SKIP, exit 0)
 *   bail_out("cannot create temp dir");       (Bail out!, exit 255)
 *   return exit_status();
 *
 * Header-only; not thread-safe (assert from the main thread).
 */
#ifndef FAULTLINE_TAP_H
#define FAULTLINE_TAP_H

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap__n;
static int tap__failed;
static int tap__planned = -1;

static inline void tap__name(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static inline void tap__name(const char *fmt, va_list ap)
{
	if (fmt && *fmt) {
		fputs(" - ", stdout);
		vprintf(fmt, ap);
	}
}

static inline void plan(int n)
{
	tap__planned = n;
	printf("1..%d\n", n);
	fflush(stdout);
}

static inline void diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void diag(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("# ", stdout);
	vprintf(fmt, ap);
	fputs("\n", stdout);
	va_end(ap);
	fflush(stdout);
}

static inline int tap__vok(int pass, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static inline int tap__vok(int pass, const char *fmt, va_list ap)
{
	tap__n++;
	if (!pass)
		tap__failed++;
	printf("%sok %d", pass ? "" : "not ", tap__n);
	tap__name(fmt, ap);
	fputs("\n", stdout);
	fflush(stdout);
	return pass;
}

static inline int ok(int pass, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int ok(int pass, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tap__vok(pass, fmt, ap);
	va_end(ap);
	return pass;
}

static inline int is_int(long long got, long long want, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int is_int(long long got, long long want, const char *fmt, ...)
{
	va_list ap;
	int pass = got == want;

	va_start(ap, fmt);
	tap__vok(pass, fmt, ap);
	va_end(ap);
	if (!pass)
		diag("     got: %lld\n#   expected: %lld", got, want);
	return pass;
}

/* Passes when |got - want| <= tol. */
static inline int is_double(double got, double want, double tol, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int is_double(double got, double want, double tol, const char *fmt, ...)
{
	va_list ap;
	int pass = fabs(got - want) <= tol;

	va_start(ap, fmt);
	tap__vok(pass, fmt, ap);
	va_end(ap);
	if (!pass)
		diag("     got: %.9g\n#   expected: %.9g +/- %.9g", got, want, tol);
	return pass;
}

static inline int is_str(const char *got, const char *want, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int is_str(const char *got, const char *want, const char *fmt, ...)
{
	va_list ap;
	int pass = got && want ? strcmp(got, want) == 0 : got == want;

	va_start(ap, fmt);
	tap__vok(pass, fmt, ap);
	va_end(ap);
	if (!pass)
		diag("     got: '%s'\n#   expected: '%s'", got ? got : "(null)",
		     want ? want : "(null)");
	return pass;
}

/* Records `count` skipped test points with a reason naming what is missing. */
static inline void skip(const char *why, int count)
{
	for (int i = 0; i < count; i++) {
		tap__n++;
		printf("ok %d # SKIP %s\n", tap__n, why);
	}
	fflush(stdout);
}

/* The whole program is skipped: prints "1..0 # SKIP why" and exits 0. */
static inline void skip_all(const char *why)
{
	printf("1..0 # SKIP %s\n", why);
	fflush(stdout);
	exit(0);
}

static inline void bail_out(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static inline void bail_out(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("Bail out! ", stdout);
	vprintf(fmt, ap);
	fputs("\n", stdout);
	va_end(ap);
	fflush(stdout);
	exit(255);
}

/* Prints the plan when none was given up front. */
static inline void done_testing(void)
{
	if (tap__planned < 0) {
		tap__planned = tap__n;
		printf("1..%d\n", tap__n);
		fflush(stdout);
	}
}

/* 0 when every assertion passed and the plan was met, else 1. */
static inline int exit_status(void)
{
	if (tap__planned >= 0 && tap__planned != tap__n) {
		diag("planned %d tests but ran %d", tap__planned, tap__n);
		return 1;
	}
	return tap__failed ? 1 : 0;
}

#endif
