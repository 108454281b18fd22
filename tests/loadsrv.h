/* A tiny HTTP/1.1 server for the load generator's tests, header-only.
 *
 * One thread accepts on 127.0.0.1:0 (the port lands in s->port), one thread
 * per connection reads requests with blocking sockets and answers each with
 * a 13-byte body.  Its behaviour can be changed while it runs (atomics):
 * the status (503 optionally with Retry-After), a delay before every
 * response, a stall window (a request that arrives inside [stall_from_ns,
 * stall_until_ns) is answered at stall_until_ns; CLOCK_MONOTONIC, the clock
 * of uv_hrtime), and closing after every response.  It logs every request's
 * arrival time and path for the tests to inspect.
 *
 *   struct loadsrv s;
 *   if (loadsrv_start(&s) < 0) bail_out(...);
 *   atomic_store(&s.status, 503);
 *   ... s.port ...
 *   loadsrv_stop(&s);       (joins every thread, closes every socket)
 *
 * Not for production: bounded (LOADSRV_MAX_CONNS connections at once, more
 * are closed at accept; LOADSRV_MAX_LOG logged requests), no pipelining beyond what arrives in
 * one buffer, request bodies only by Content-Length.
 */
#ifndef FAULTLINE_LOADSRV_H
#define FAULTLINE_LOADSRV_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LOADSRV_MAX_CONNS 512
#define LOADSRV_MAX_LOG	  65536
#define LOADSRV_PATH_MAX  48

struct loadsrv_hit {
	uint64_t t_ns; /* arrival, CLOCK_MONOTONIC */
	char path[LOADSRV_PATH_MAX];
};

struct loadsrv {
	uint16_t port;
	/* behaviour, changeable at any time */
	_Atomic int status;	    /* default 200 */
	_Atomic int retry_after;    /* add "Retry-After: 1" */
	_Atomic int close_after;    /* "Connection: close" and close */
	_Atomic int close_silently; /* close after the response, not saying so */
	_Atomic uint64_t delay_ns;
	_Atomic uint64_t stall_from_ns;
	_Atomic uint64_t stall_until_ns;
	/* counters */
	_Atomic uint64_t requests;
	_Atomic uint64_t connections;
	/* private */
	int lfd;
	_Atomic int stop;
	pthread_t acceptor;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int fds[LOADSRV_MAX_CONNS]; /* -1: free slot */
	int live;		    /* connection threads running */
	struct loadsrv_hit *log;
	size_t nlog;
};

struct loadsrv__conn {
	struct loadsrv *s;
	int slot;
};

static inline uint64_t loadsrv_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sleeps until `until_ns` or until the server stops. */
static inline void loadsrv__sleep_until(struct loadsrv *s, uint64_t until_ns)
{
	for (;;) {
		uint64_t now = loadsrv_now_ns(), step;
		struct timespec ts;

		if (now >= until_ns || atomic_load(&s->stop))
			return;
		step = until_ns - now;
		if (step > 20000000ull)
			step = 20000000ull;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)step;
		nanosleep(&ts, NULL);
	}
}

static inline const char *loadsrv__reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 404:
		return "Not Found";
	case 429:
		return "Too Many Requests";
	case 500:
		return "Internal Server Error";
	case 503:
		return "Service Unavailable";
	default:
		return "Status";
	}
}

/* Answers one request whose head is buf[0..head_len); returns 0 to go on,
 * -1 to close. */
static inline int loadsrv__answer(struct loadsrv *s, int fd, const char *buf, size_t head_len,
				  uint64_t arrival)
{
	char out[256];
	int status = atomic_load(&s->status), closing = atomic_load(&s->close_after), n;
	uint64_t from = atomic_load(&s->stall_from_ns), until = atomic_load(&s->stall_until_ns);
	uint64_t delay = atomic_load(&s->delay_ns);
	const char *sp1 = memchr(buf, ' ', head_len), *sp2;
	size_t off = 0;

	(void)head_len;
	pthread_mutex_lock(&s->mu);
	if (s->log && s->nlog < LOADSRV_MAX_LOG) {
		struct loadsrv_hit *h = &s->log[s->nlog++];
		size_t plen = 0;

		h->t_ns = arrival;
		if (sp1) {
			sp2 = memchr(sp1 + 1, ' ', head_len - (size_t)(sp1 + 1 - buf));
			plen = sp2 ? (size_t)(sp2 - sp1 - 1) : 0;
		}
		if (plen >= LOADSRV_PATH_MAX)
			plen = LOADSRV_PATH_MAX - 1;
		memcpy(h->path, sp1 ? sp1 + 1 : "", plen);
		h->path[plen] = '\0';
	}
	pthread_mutex_unlock(&s->mu);
	atomic_fetch_add(&s->requests, 1);
	if (arrival >= from && arrival < until)
		loadsrv__sleep_until(s, until);
	if (delay)
		loadsrv__sleep_until(s, loadsrv_now_ns() + delay);
	if (atomic_load(&s->stop))
		return -1;
	n = snprintf(out, sizeof(out),
		     "HTTP/1.1 %d %s\r\nContent-Length: 13\r\n%s%s\r\nhello, world\n", status,
		     loadsrv__reason(status),
		     atomic_load(&s->retry_after) && status == 503 ? "Retry-After: 1\r\n" : "",
		     closing ? "Connection: close\r\n" : "");
	while (off < (size_t)n) {
		ssize_t w = send(fd, out + off, (size_t)n - off, MSG_NOSIGNAL);

		if (w <= 0)
			return -1;
		off += (size_t)w;
	}
	return closing || atomic_load(&s->close_silently) ? -1 : 0;
}

/* Content-Length of a request head (0 when absent). */
static inline size_t loadsrv__content_length(const char *head, size_t len)
{
	for (size_t i = 0; i + 16 < len; i++) {
		if ((i == 0 || head[i - 1] == '\n') &&
		    strncasecmp(head + i, "content-length:", 15) == 0)
			return (size_t)strtoul(head + i + 15, NULL, 10);
	}
	return 0;
}

static inline void *loadsrv__conn_main(void *arg)
{
	struct loadsrv__conn *c = arg;
	struct loadsrv *s = c->s;
	int slot = c->slot, fd = s->fds[slot];
	char buf[16384];
	size_t have = 0;

	free(c);
	while (!atomic_load(&s->stop)) {
		ssize_t r = recv(fd, buf + have, sizeof(buf) - have, 0);
		uint64_t arrival = loadsrv_now_ns();
		char *end;

		if (r <= 0)
			break;
		have += (size_t)r;
		while ((end = memmem(buf, have, "\r\n\r\n", 4)) != NULL) {
			size_t head = (size_t)(end + 4 - buf);
			size_t total = head + loadsrv__content_length(buf, head);

			if (total > sizeof(buf))
				goto out;
			if (total > have)
				break;
			if (loadsrv__answer(s, fd, buf, head, arrival) < 0)
				goto out;
			memmove(buf, buf + total, have - total);
			have -= total;
		}
		if (have == sizeof(buf))
			break;
	}
out:
	pthread_mutex_lock(&s->mu);
	close(fd);
	s->fds[slot] = -1;
	s->live--;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static inline void *loadsrv__accept_main(void *arg)
{
	struct loadsrv *s = arg;

	while (!atomic_load(&s->stop)) {
		struct pollfd p = { .fd = s->lfd, .events = POLLIN };
		struct loadsrv__conn *c;
		pthread_attr_t attr;
		pthread_t t;
		int fd, one = 1, slot = -1;

		if (poll(&p, 1, 20) <= 0)
			continue;
		fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		atomic_fetch_add(&s->connections, 1);
		c = malloc(sizeof(*c));
		pthread_mutex_lock(&s->mu);
		for (int i = 0; i < LOADSRV_MAX_CONNS && slot < 0; i++) {
			if (s->fds[i] < 0)
				slot = i;
		}
		if (!c || slot < 0) {
			pthread_mutex_unlock(&s->mu);
			free(c);
			close(fd);
			continue;
		}
		c->s = s;
		c->slot = slot;
		s->fds[slot] = fd;
		s->live++;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		if (pthread_create(&t, &attr, loadsrv__conn_main, c) != 0) {
			s->fds[slot] = -1;
			s->live--;
			free(c);
			close(fd);
		}
		pthread_attr_destroy(&attr);
		pthread_mutex_unlock(&s->mu);
	}
	return NULL;
}

/* Listens on 127.0.0.1:0 and starts serving.  Returns 0 or -errno. */
static inline int loadsrv_start(struct loadsrv *s)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int one = 1, rc;

	memset(s, 0, sizeof(*s));
	s->status = 200;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	for (int i = 0; i < LOADSRV_MAX_CONNS; i++)
		s->fds[i] = -1;
	s->log = calloc(LOADSRV_MAX_LOG, sizeof(*s->log));
	if (!s->log)
		return -ENOMEM;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->lfd < 0)
		goto fail;
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s->lfd, 1024) < 0 ||
	    getsockname(s->lfd, (struct sockaddr *)&a, &alen) < 0)
		goto fail;
	s->port = ntohs(a.sin_port);
	rc = pthread_create(&s->acceptor, NULL, loadsrv__accept_main, s);
	if (rc != 0) {
		errno = rc;
		goto fail;
	}
	return 0;
fail:
	rc = -errno;
	if (s->lfd >= 0)
		close(s->lfd);
	free(s->log);
	s->log = NULL;
	return rc;
}

/* Stops accepting, closes every connection, joins every thread. */
static inline void loadsrv_stop(struct loadsrv *s)
{
	atomic_store(&s->stop, 1);
	pthread_join(s->acceptor, NULL);
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < LOADSRV_MAX_CONNS; i++) {
		if (s->fds[i] >= 0)
			shutdown(s->fds[i], SHUT_RDWR);
	}
	while (s->live > 0)
		pthread_cond_wait(&s->cv, &s->mu);
	pthread_mutex_unlock(&s->mu);
	close(s->lfd);
	free(s->log);
	s->log = NULL;
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
}

/* Forgets the logged requests and zeroes the counters (between scenarios). */
static inline void loadsrv_clear_log(struct loadsrv *s)
{
	pthread_mutex_lock(&s->mu);
	s->nlog = 0;
	pthread_mutex_unlock(&s->mu);
	atomic_store(&s->requests, 0);
	atomic_store(&s->connections, 0);
}

#endif
