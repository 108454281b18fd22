/* The state directory and run ids (see statedir.h). */
#include "harness/statedir.h"

#include <errno.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int put(char *buf, size_t cap, const char *a, const char *b)
{
	int n = snprintf(buf, cap, "%s%s", a, b);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int fl_statedir_path(char *buf, size_t cap, struct rs_err *err)
{
	const char *v = getenv(FL_STATEDIR_ENV);
	int rc;

	if (v && *v)
		rc = put(buf, cap, v, "");
	else if ((v = getenv("XDG_STATE_HOME")) && v[0] == '/')
		rc = put(buf, cap, v, "/faultline");
	else if (geteuid() == 0)
		rc = put(buf, cap, "/var/lib/faultline", "");
	else {
		const char *home = getenv("HOME");
		struct passwd pw, *res = NULL;
		char pwbuf[1024];

		if ((!home || home[0] != '/') &&
		    getpwuid_r(geteuid(), &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res)
			home = res->pw_dir;
		if (!home || home[0] != '/') {
			rs__err_set(err,
				    "state directory: no HOME and no passwd entry for uid %u "
				    "(set " FL_STATEDIR_ENV ")",
				    (unsigned)geteuid());
			return -ENOENT;
		}
		rc = put(buf, cap, home, "/.local/state/faultline");
	}
	if (rc < 0)
		rs__err_set(err, "state directory: path too long (set " FL_STATEDIR_ENV ")");
	return rc;
}

int fl_statedir_ensure(const char *dir, struct rs_err *err)
{
	char path[FL_STATE_PATH_MAX];
	size_t len = strlen(dir);
	struct stat st;

	if (len == 0 || len >= sizeof(path)) {
		rs__err_set(err, "state directory: bad path '%.200s'", dir);
		return len ? -ENAMETOOLONG : -EINVAL;
	}
	memcpy(path, dir, len + 1);
	/* Every prefix ending before a '/', then the whole path. */
	for (size_t i = 1; i <= len; i++) {
		if (i < len && path[i] != '/')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0700) < 0 && errno != EEXIST) {
			int e = errno;

			rs__err_set(err, "cannot create state directory '%s': %s", path,
				    strerror(e));
			return -e;
		}
		if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
			int e = stat(path, &st) < 0 ? errno : ENOTDIR;

			rs__err_set(err, "cannot create state directory '%s': %s", path,
				    strerror(e));
			return -e;
		}
		if (i < len)
			path[i] = '/';
	}
	return 0;
}

int fl_run_id_new(char *buf, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	uint32_t rnd = 0;
	char when[32];
	int n;

	if (cap < FL_RUN_ID_MAX)
		return -ENOSPC;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm);
	if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
		/* No entropy yet (early boot): time and pid still make it unique
		 * enough for one machine. */
		rnd = (uint32_t)ts.tv_nsec ^ ((uint32_t)getpid() << 16);
	}
	n = snprintf(buf, cap, "%s-%ld-%08x", when, (long)getpid(), (unsigned)rnd);
	return n < 0 || (size_t)n >= cap ? -ENOSPC : 0;
}

int fl_statedir_journal_path(char *buf, size_t cap, const char *dir, const char *run_id)
{
	int n = snprintf(buf, cap, "%s/%s.jsonl", dir, run_id);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}
