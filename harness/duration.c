/* Durations and percentages (see duration.h). */
#include "harness/duration.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct unit {
	const char *name;
	uint64_t ns;
} units[] = {
	/* A unit is the whole run of non-digits after a number. */
	{ "ns", 1ull },		  { "us", 1000ull },
	{ "\xc2\xb5s", 1000ull }, /* µs */
	{ "ms", 1000000ull },	  { "s", 1000000000ull },
	{ "m", 60000000000ull },  { "h", 3600000000000ull },
};

static bool digit(char c)
{
	return c >= '0' && c <= '9';
}

int fl_duration_parse(const char *s, uint64_t *ns, char *why, size_t why_len)
{
	const char *p = s;
	uint64_t total = 0;

	if (!why)
		why_len = 0;
	if (!s || !*s) {
		if (why_len)
			snprintf(why, why_len, "empty duration (write 250ms, 5s, 2m, 1h)");
		return -EINVAL;
	}
	if (*s == '-') {
		if (why_len)
			snprintf(why, why_len, "negative duration '%.40s'", s);
		return -EINVAL;
	}
	while (*p) {
		uint64_t whole = 0, frac_ns = 0, part;
		const char *num = p, *frac = NULL, *u;
		size_t ulen, i;

		if (!digit(*p) && !(*p == '.' && digit(p[1]))) {
			if (why_len)
				snprintf(
				    why, why_len,
				    "invalid duration '%.40s' (write a number with a unit: 250ms, "
				    "5s, 2m, 1h)",
				    s);
			return -EINVAL;
		}
		while (digit(*p)) {
			if (whole > (UINT64_MAX - 9) / 10)
				goto too_long;
			whole = whole * 10 + (uint64_t)(*p - '0');
			p++;
		}
		if (*p == '.') {
			p++;
			frac = p;
			if (!digit(*p)) {
				if (why_len)
					snprintf(
					    why, why_len,
					    "invalid duration '%.40s': a digit must follow '.'", s);
				return -EINVAL;
			}
			while (digit(*p))
				p++;
		}
		u = p;
		while (*p && !digit(*p) && *p != '.')
			p++;
		ulen = (size_t)(p - u);
		if (ulen == 0) {
			if (why_len)
				snprintf(why, why_len,
					 "'%.40s' has no unit (write %.*ss, %.*sms, ...)", s,
					 (int)(u - num > 20 ? 20 : u - num), num,
					 (int)(u - num > 20 ? 20 : u - num), num);
			return -EINVAL;
		}
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strlen(units[i].name) == ulen && memcmp(units[i].name, u, ulen) == 0)
				break;
		if (i == sizeof(units) / sizeof(units[0])) {
			if (why_len)
				snprintf(
				    why, why_len,
				    "unknown unit '%.*s' in '%.40s' (units: ns, us, ms, s, m, h)",
				    (int)(ulen > 20 ? 20 : ulen), u, s);
			return -EINVAL;
		}
		if (whole > FL_DURATION_MAX_NS / units[i].ns)
			goto too_long;
		part = whole * units[i].ns;
		if (frac) {
			uint64_t scale = units[i].ns;

			for (const char *f = frac; digit(*f) && scale >= 10; f++) {
				scale /= 10;
				frac_ns += (uint64_t)(*f - '0') * scale;
			}
		}
		part += frac_ns;
		if (part > FL_DURATION_MAX_NS - total)
			goto too_long;
		total += part;
	}
	*ns = total;
	return 0;
too_long:
	if (why_len)
		snprintf(why, why_len, "duration '%.40s' is too long (at most 146 years)", s);
	return -EINVAL;
}

char *fl_duration_format(uint64_t ns, char *buf, size_t size)
{
	static const struct {
		uint64_t ns;
		const char *name;
	} dec[] = { { 1000000000ull, "s" }, { 1000000ull, "ms" }, { 1000ull, "us" } };
	const uint64_t h = 3600000000000ull, m = 60000000000ull;
	size_t used = 0;

	if (!size)
		return buf;
	buf[0] = '\0';
	if (ns == 0) {
		snprintf(buf, size, "0s");
		return buf;
	}
	if (ns % m == 0) {
		if (ns >= h)
			used = (size_t)snprintf(buf, size, "%lluh", (unsigned long long)(ns / h));
		if (ns % h && used < size)
			snprintf(buf + used, size - used, "%llum",
				 (unsigned long long)((ns % h) / m));
		return buf;
	}
	for (size_t i = 0; i < sizeof(dec) / sizeof(dec[0]); i++) {
		if (ns >= dec[i].ns) {
			uint64_t whole = ns / dec[i].ns, rest = ns % dec[i].ns;
			char frac[24];
			int digits = i == 0 ? 9 : i == 1 ? 6 : 3;
			int end;

			if (!rest) {
				snprintf(buf, size, "%llu%s", (unsigned long long)whole,
					 dec[i].name);
				return buf;
			}
			snprintf(frac, sizeof(frac), "%0*llu", digits, (unsigned long long)rest);
			end = digits;
			while (end > 0 && frac[end - 1] == '0')
				end--;
			frac[end] = '\0';
			snprintf(buf, size, "%llu.%s%s", (unsigned long long)whole, frac,
				 dec[i].name);
			return buf;
		}
	}
	snprintf(buf, size, "%lluns", (unsigned long long)ns);
	return buf;
}

int fl_percent_parse(const char *s, double *fraction, char *why, size_t why_len)
{
	const char *p = s;
	double v;

	if (!why)
		why_len = 0;
	if (!s || !*s) {
		if (why_len)
			snprintf(why, why_len, "empty percentage (write 40%% or the fraction 0.4)");
		return -EINVAL;
	}
	if (*p == '-') {
		if (why_len)
			snprintf(why, why_len, "negative percentage '%.40s'", s);
		return -EINVAL;
	}
	if (!digit(*p) && !(*p == '.' && digit(p[1])))
		goto bad;
	while (digit(*p))
		p++;
	if (*p == '.') {
		p++;
		if (!digit(*p))
			goto bad;
		while (digit(*p))
			p++;
	}
	if (p[0] != '%' || p[1] != '\0' || p - s > 40)
		goto bad;
	v = strtod(s, NULL);
	if (!isfinite(v))
		goto bad;
	*fraction = v / 100.0;
	return 0;
bad:
	if (why_len)
		snprintf(why, why_len,
			 "invalid percentage '%.40s' (write 40%% or the fraction 0.4)", s);
	return -EINVAL;
}
