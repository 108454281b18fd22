#include "harness/url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int fl_url_parse(struct fl_url *u, const char *s, struct rs_err *err)
{
	const char *p, *host, *host_end, *auth_end;
	char hbuf[FL_URL_HOST_MAX];
	unsigned long port = 80;
	size_t hlen;
	int v6 = 0;

	memset(u, 0, sizeof(*u));
	if (strncmp(s, "http://", 7) != 0) {
		if (strncmp(s, "https://", 8) == 0)
			return rs__einval(err, "url '%s': only http:// is supported", s);
		return rs__einval(err, "url '%s': expected http://HOST:PORT/PATH", s);
	}
	host = s + 7;
	auth_end = host + strcspn(host, "/?#");
	if (*auth_end == '#' || strchr(auth_end, '#'))
		return rs__einval(err, "url '%s': fragments (#) are not supported", s);
	if (memchr(host, '@', (size_t)(auth_end - host)))
		return rs__einval(err, "url '%s': user information (@) is not supported", s);
	if (*host == '[') {
		host_end = memchr(host, ']', (size_t)(auth_end - host));
		if (!host_end)
			return rs__einval(err, "url '%s': unterminated '[' in the host", s);
		host++;
		v6 = 1;
		p = host_end + 1;
	} else {
		host_end = host;
		while (host_end < auth_end && *host_end != ':')
			host_end++;
		p = host_end;
	}
	hlen = (size_t)(host_end - host);
	if (hlen == 0)
		return rs__einval(err, "url '%s': the host is empty", s);
	if (hlen >= sizeof(hbuf))
		return rs__einval(err, "url '%s': the host is too long", s);
	memcpy(hbuf, host, hlen);
	hbuf[hlen] = '\0';
	if (p < auth_end) {
		char *end;

		if (*p != ':')
			return rs__einval(err, "url '%s': unexpected '%c' after the host", s, *p);
		p++;
		if (p == auth_end || *p < '0' || *p > '9')
			return rs__einval(err, "url '%s': the port must be a number in 1..65535",
					  s);
		errno = 0;
		port = strtoul(p, &end, 10);
		if (end != auth_end || errno || port == 0 || port > 65535)
			return rs__einval(err, "url '%s': the port must be a number in 1..65535",
					  s);
	}
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&u->addr;

		if (inet_pton(AF_INET6, hbuf, &a->sin6_addr) != 1)
			return rs__einval(err, "url '%s': '[%s]' is not an IPv6 address", s, hbuf);
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		u->addr_len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&u->addr;

		if (strcmp(hbuf, "localhost") == 0) {
			a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		} else if (inet_pton(AF_INET, hbuf, &a->sin_addr) != 1) {
			return rs__einval(err,
					  "url '%s': host '%s' must be an IP address or localhost "
					  "(names are not resolved)",
					  s, hbuf);
		}
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		u->addr_len = sizeof(*a);
	}
	hlen = (size_t)(auth_end - (s + 7));
	if (hlen >= sizeof(u->host))
		return rs__einval(err, "url '%s': the host is too long", s);
	memcpy(u->host, s + 7, hlen);
	u->host[hlen] = '\0';
	u->path = *auth_end ? auth_end : "/";
	if (*u->path == '?')
		return rs__einval(err, "url '%s': the path must start with '/'", s);
	for (p = u->path; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return rs__einval(
			    err, "url '%s': the path contains a space or control character", s);
	}
	return 0;
}
