/* faultline-target: the reference target, one program with two roles.
 *
 *   faultline-target --role service|dependency [--config FILE] [flags]
 *   faultline-target --init-data DIR --items N
 *
 * See target/config.h for the configuration, target/service.h and
 * target/dependency.h for what each role answers.  Once both ports listen
 * it prints exactly one line on stdout, flushed:
 *   listening http=HOST:PORT admin=127.0.0.1:PORT
 * SIGTERM or SIGINT closes the listeners, fails what is in progress and
 * exits 0.  Exit 2: bad usage or configuration (nothing started); 1: a
 * run-time failure (a port in use, io_uring refused...).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "resilience/control.h"
#include "resilience/err.h"
#include "resilience/rng.h"
#include "target/config.h"
#include "target/dependency.h"
#include "target/service.h"

struct run {
	enum fl_target_role role;
	bool closed; /* the role's close callback ran: everything was released */
	struct fl_service *svc;
	struct fl_dependency *dep;
	uv_signal_t sigterm, sigint;
};

/* The content of item-<id>: a few hundred bytes, the same for an id on
 * every run (the tests and the harness may compare it). */
static size_t item_content(uint64_t id, char *buf, size_t size)
{
	struct rs_rng rng;
	size_t n, want = 200 + (size_t)(id % 200);

	rs_rng_seed(&rng, id);
	n = (size_t)snprintf(buf, size, "id: %llu\nname: item %llu\ndata: ", (unsigned long long)id,
			     (unsigned long long)id);
	while (n + 1 < want && n + 1 < size) {
		buf[n] = (char)('a' + rs_rng_below(&rng, 26));
		n++;
		if (n % 64 == 0)
			buf[n - 1] = '\n';
	}
	buf[n++] = '\n';
	return n;
}

static int init_data(const char *dir, uint64_t items)
{
	char path[FL_TARGET_PATH_MAX + 40], buf[512];

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "faultline-target: cannot create '%s': %s\n", dir, strerror(errno));
		return 1;
	}
	for (uint64_t id = 1; id <= items; id++) {
		size_t len = item_content(id, buf, sizeof(buf)), off = 0;
		int fd;

		snprintf(path, sizeof(path), "%s/item-%llu", dir, (unsigned long long)id);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			fprintf(stderr, "faultline-target: cannot create '%s': %s\n", path,
				strerror(errno));
			return 1;
		}
		while (off < len) {
			ssize_t w = write(fd, buf + off, len - off);

			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				fprintf(stderr, "faultline-target: cannot write '%s': %s\n", path,
					strerror(errno));
				close(fd);
				return 1;
			}
			off += (size_t)w;
		}
		if (close(fd) < 0) {
			fprintf(stderr, "faultline-target: cannot write '%s': %s\n", path,
				strerror(errno));
			return 1;
		}
	}
	return 0;
}

static void on_closed(void *ctx)
{
	struct run *r = ctx;

	r->closed = true;
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct run *r = h->data;

	(void)signum;
	/* Closing the role and the signal handles leaves the loop empty. */
	fl_service_close(r->svc, on_closed, r);
	fl_dependency_close(r->dep, on_closed, r);
	r->svc = NULL;
	r->dep = NULL;
	uv_close((uv_handle_t *)&r->sigterm, NULL);
	uv_close((uv_handle_t *)&r->sigint, NULL);
}

static int run(const struct fl_target_config *cfg)
{
	struct rs_err err = { "" };
	struct rs_control *control = NULL;
	struct run r = { .role = cfg->role };
	uv_loop_t loop;
	int rc, port, admin;

	if ((rc = rs_control_from_env(&control, NULL, &err)) < 0) {
		fprintf(stderr, "faultline-target: %s\n", err.msg);
		return 2;
	}
	if ((rc = uv_loop_init(&loop)) < 0) {
		fprintf(stderr, "faultline-target: cannot create the event loop: %s\n",
			uv_strerror(rc));
		rs_control_free(control);
		return 1;
	}
	if (cfg->role == FL_ROLE_SERVICE)
		rc = fl_service_new(&r.svc, &loop, cfg, control, &err);
	else
		rc = fl_dependency_new(&r.dep, &loop, cfg, control, &err);
	if (rc < 0) {
		fprintf(stderr, "faultline-target: %s\n", err.msg);
		uv_run(&loop, UV_RUN_DEFAULT); /* let the partial role close */
		(void)uv_loop_close(&loop);
		rs_control_free(control);
		return rc == -EINVAL ? 2 : 1;
	}
	port = r.svc ? fl_service_port(r.svc) : fl_dependency_port(r.dep);
	admin = r.svc ? fl_service_admin_port(r.svc) : fl_dependency_admin_port(r.dep);

	uv_signal_init(&loop, &r.sigterm);
	uv_signal_init(&loop, &r.sigint);
	r.sigterm.data = r.sigint.data = &r;
	uv_signal_start(&r.sigterm, on_signal, SIGTERM);
	uv_signal_start(&r.sigint, on_signal, SIGINT);

	printf("listening http=%s%s%s:%d admin=127.0.0.1:%d\n", strchr(cfg->host, ':') ? "[" : "",
	       cfg->host, strchr(cfg->host, ':') ? "]" : "", port, admin);
	fflush(stdout);

	(void)uv_run(&loop, UV_RUN_DEFAULT);
	rc = 0;
	/* The loop ends when no handle is active; the role must have released
	 * everything by then, every request answered. */
	if (!r.closed) {
		fprintf(stderr,
			"faultline-target: the %s did not finish closing (a request was "
			"never answered)\n",
			fl_target_role_name(cfg->role));
		rc = 1;
	}
	if (uv_loop_close(&loop) < 0) {
		fprintf(stderr, "faultline-target: handles left open at exit\n");
		rc = 1;
	}
	rs_control_free(control);
	return rc;
}

int main(int argc, char **argv)
{
	static struct fl_target_config cfg; /* large: keep it off the stack */
	struct fl_target_args args;
	struct rs_err err = { "" };

	signal(SIGPIPE, SIG_IGN);
	if (fl_target_args_parse(&args, &cfg, argc, argv, &err) < 0) {
		fprintf(stderr, "faultline-target: %s\n", err.msg);
		return 2;
	}
	switch (args.mode) {
	case FL_MODE_HELP:
		fputs(fl_target_usage(), stdout);
		return 0;
	case FL_MODE_INIT:
		return init_data(args.init_dir, args.items);
	case FL_MODE_CHECK:
		printf("configuration ok: role %s\n", fl_target_role_name(cfg.role));
		return 0;
	case FL_MODE_RUN:
		break;
	}
	return run(&cfg);
}
