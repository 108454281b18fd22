/* The URLs `faultline load` accepts: http://HOST[:PORT][/PATH].
 *
 * HOST is an IPv4 literal (127.0.0.1), a bracketed IPv6 literal ([::1]) or
 * `localhost` (read as 127.0.0.1); no name resolution happens, so a run never
 * waits on DNS.  PORT defaults to 80.  PATH (with any query) is kept as
 * written, template variables included (`/item/${rand:1:100}`); it defaults
 * to "/".  No userinfo, no fragment, no https.
 */
#ifndef FAULTLINE_URL_H
#define FAULTLINE_URL_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "resilience/err.h"

#define FL_URL_HOST_MAX 64

struct fl_url {
	struct sockaddr_storage addr; /* where to connect (IPv4 or IPv6) */
	socklen_t addr_len;
	char host[FL_URL_HOST_MAX]; /* the Host header value, "host:port" as written */
	const char *path;	    /* borrowed: points into the parsed string */
};

/* Parses `s` (borrowed; u->path points into it, so it must outlive *u).
 * Returns 0, or -EINVAL with a message saying what is wrong, e.g.
 * "url 'https://x': only http:// is supported".  Any thread. */
int fl_url_parse(struct fl_url *u, const char *s, struct rs_err *err) RS_WUR;

#endif
