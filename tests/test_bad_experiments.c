/* `faultline validate` on hostile and malformed experiments: every file of
 * tests/bad-experiments/ must be refused with exit 2 and the message that
 * tests/bad-experiments/EXPECTED gives for it (file:line:column: path:
 * reason); files of tens of megabytes, 100000 levels of nesting, a
 * directory, a missing file and a bad command line are refused the same
 * way; the fuzzer's regression inputs in tests/fuzz-regressions/ never
 * crash; the shipped examples validate (exit 0).
 *
 * Each run happens in a child process (fl_cmd_validate called directly,
 * output captured through a pipe, a 10 s alarm), so a crash or a hang
 * fails one test point instead of the program. */
#include "tests/tap.h"
#include "tests/srctree.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/cmd_validate.h"

#define OUT_MAX (64 * 1024)

static char src[PATH_MAX];
static char tmpdir[] = "/tmp/fl-bad-experiments-XXXXXX";
static char big_path[PATH_MAX + 32], deep_path[PATH_MAX + 32], large_path[PATH_MAX + 32];

static void cleanup(void)
{
	unlink(big_path);
	unlink(deep_path);
	unlink(large_path);
	rmdir(tmpdir);
}

/* snprintf that refuses to truncate: test paths are short. */
static void fmt(char *buf, size_t size, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *buf, size_t size, const char *f, ...)
{
	va_list ap;
	int n;

	va_start(ap, f);
	n = vsnprintf(buf, size, f, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		bail_out("path too long: %s", buf);
}

static void find_src(void)
{
	srctree_find(src, sizeof(src), "tests/bad-experiments/EXPECTED", false);
}

struct run {
	int exit_code; /* -1 when killed by a signal */
	int signal;
	char out[OUT_MAX]; /* stdout and stderr, NUL-terminated, truncated */
};

/* Runs `faultline validate ARGS...` in a child process. */
static void validate(struct run *r, int argc, const char *const *args)
{
	char *argv[16];
	int fd[2], status;
	size_t used = 0;
	ssize_t n;
	pid_t pid;

	argv[0] = "validate";
	for (int i = 0; i < argc && i < 14; i++)
		argv[i + 1] = (char *)args[i];
	argv[argc + 1] = NULL;
	if (pipe(fd) != 0)
		bail_out("pipe: %s", strerror(errno));
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		bail_out("fork: %s", strerror(errno));
	if (pid == 0) {
		close(fd[0]);
		dup2(fd[1], STDOUT_FILENO);
		dup2(fd[1], STDERR_FILENO);
		close(fd[1]);
		alarm(10);
		_exit(fl_cmd_validate(argc + 1, argv));
	}
	close(fd[1]);
	for (;;) {
		char sink[4096];

		/* Keep what fits, drain the rest so the child never blocks. */
		if (used < OUT_MAX - 1)
			n = read(fd[0], r->out + used, OUT_MAX - 1 - used);
		else
			n = read(fd[0], sink, sizeof(sink));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (used < OUT_MAX - 1)
			used += (size_t)n;
	}
	r->out[used] = '\0';
	close(fd[0]);
	waitpid(pid, &status, 0);
	r->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	r->signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
}

static int refused_with(const struct run *r, const char *want, const char *what)
{
	int pass = r->exit_code == 2 && strstr(r->out, want) != NULL;

	ok(pass, "%s: exit 2 with \"%s\"", what, want);
	if (!pass) {
		if (r->signal)
			diag("killed by signal %d", r->signal);
		else
			diag("exit %d; output:\n%s", r->exit_code, r->out);
	}
	return pass;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The corpus: EXPECTED lines "FILE<TAB>SUBSTRING".  Returns how many. */
static int run_corpus(void)
{
	static struct run r;
	char path[PATH_MAX + 64], dir[PATH_MAX + 32], line[1024];
	const char *names[256];
	size_t nnames = 0, listed = 0;
	struct dirent *de;
	FILE *f;
	DIR *d;
	int count = 0;

	fmt(dir, sizeof(dir), "%s/tests/bad-experiments", src);
	d = opendir(dir);
	if (!d)
		bail_out("cannot open %s: %s", dir, strerror(errno));
	while ((de = readdir(d)) && nnames < 256)
		if (strlen(de->d_name) > 5 &&
		    strcmp(de->d_name + strlen(de->d_name) - 5, ".json") == 0)
			names[nnames++] = strdup(de->d_name);
	closedir(d);
	qsort(names, nnames, sizeof(names[0]), cmp_str);

	fmt(path, sizeof(path), "%s/EXPECTED", dir);
	f = fopen(path, "r");
	if (!f)
		bail_out("cannot open %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char *tab = strchr(line, '\t'), file[PATH_MAX + 300];
		const char *arg;

		line[strcspn(line, "\n")] = '\0';
		if (!tab || line[0] == '#')
			continue;
		*tab++ = '\0';
		fmt(file, sizeof(file), "%s/%s", dir, line);
		arg = file;
		validate(&r, 1, &arg);
		refused_with(&r, tab, line);
		count++;
		for (size_t i = 0; i < nnames; i++)
			if (names[i] && strcmp(names[i], line) == 0) {
				free((void *)names[i]);
				names[i] = NULL;
				listed++;
			}
	}
	fclose(f);
	ok(count >= 40 && listed == nnames, "EXPECTED lists all %zu files of the corpus (%d lines)",
	   nnames, count);
	for (size_t i = 0; i < nnames; i++)
		if (names[i]) {
			diag("%s has no line in EXPECTED", names[i]);
			free((void *)names[i]);
		}
	return count;
}

static int count_corpus(void)
{
	char path[PATH_MAX + 64], line[1024];
	FILE *f;
	int n = 0;

	fmt(path, sizeof(path), "%s/tests/bad-experiments/EXPECTED", src);
	f = fopen(path, "r");
	if (!f)
		bail_out("cannot open %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (line[0] != '#' && strchr(line, '\t'))
			n++;
	fclose(f);
	return n;
}

static int count_regressions(char names[][NAME_MAX + 1], int max)
{
	char dir[PATH_MAX + 32];
	struct dirent *de;
	DIR *d;
	int n = 0;

	fmt(dir, sizeof(dir), "%s/tests/fuzz-regressions", src);
	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d)) && n < max)
		if (de->d_name[0] != '.' && strcmp(de->d_name, "README.md") != 0)
			fmt(names[n++], NAME_MAX + 1, "%s", de->d_name);
	closedir(d);
	return n;
}

static void write_file(const char *path, const char *head, char fill, size_t n, const char *tail)
{
	static char chunk[1 << 16];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	size_t left = n;

	if (fd < 0)
		bail_out("cannot create %s: %s", path, strerror(errno));
	memset(chunk, fill, sizeof(chunk));
	if (write(fd, head, strlen(head)) < 0)
		bail_out("write %s: %s", path, strerror(errno));
	while (left) {
		size_t k = left < sizeof(chunk) ? left : sizeof(chunk);

		if (write(fd, chunk, k) != (ssize_t)k)
			bail_out("write %s: %s", path, strerror(errno));
		left -= k;
	}
	if (write(fd, tail, strlen(tail)) < 0)
		bail_out("write %s: %s", path, strerror(errno));
	close(fd);
}

int main(void)
{
	static struct run r;
	static char regressions[256][NAME_MAX + 1];
	char path[PATH_MAX + 300], want[PATH_MAX + 128];
	const char *args[4];
	int nreg;

	find_src();
	nreg = count_regressions(regressions, 256);
	plan(count_corpus() + 1 + 4 + 5 + 2 + (nreg ? nreg : 0));
	alarm(600);
	if (!mkdtemp(tmpdir))
		bail_out("cannot create a temporary directory: %s", strerror(errno));
	fmt(big_path, sizeof(big_path), "%s/big.json", tmpdir);
	fmt(large_path, sizeof(large_path), "%s/large.json", tmpdir);
	fmt(deep_path, sizeof(deep_path), "%s/deep.json", tmpdir);
	atexit(cleanup);

	run_corpus();

	/* Tens of megabytes: refused by size before parsing. */
	write_file(big_path, "{\"version\": 1, \"title\": \"", 'x', 40u << 20, "\"}\n");
	args[0] = big_path;
	validate(&r, 1, args);
	refused_with(&r, "big.json: file larger than 16 MiB (", "a 40 MiB file");
	unlink(big_path);

	/* Just under the limit: parsed in full (a 15 MiB string), then refused
	 * as an experiment, within the alarm. */
	write_file(large_path, "{\"version\": 1, \"title\": \"", 'y', 15u << 20, "\"}\n");
	args[0] = large_path;
	validate(&r, 1, args);
	refused_with(&r, "large.json:1:1: missing required key 'target'",
		     "a 15 MiB file is read in full and judged");
	unlink(large_path);

	{
		/* 200000 unknown keys of 60 characters: every one is counted, the
		 * work stays linear (no suggestion is computed past the kept
		 * messages). */
		FILE *f = fopen(large_path, "w");

		if (!f)
			bail_out("cannot create %s: %s", large_path, strerror(errno));
		fprintf(f, "{\"version\": 1, \"title\": \"t\", \"target\": {\"url\": "
			   "\"http://127.0.0.1:1\"}, \"load\": {\"duration\": \"1s\"");
		for (int k = 0; k < 200000; k++)
			fprintf(f, ",\n\"k%059d\": 0", k);
		fprintf(f, "}}\n");
		fclose(f);
		args[0] = large_path;
		validate(&r, 1, args);
		refused_with(&r, "large.json: 199980 more errors not shown",
			     "200000 unknown keys (12 MiB) are all counted");
		unlink(large_path);
	}

	write_file(deep_path, "", '[', 100000, "");
	args[0] = deep_path;
	validate(&r, 1, args);
	refused_with(&r, "deep.json:1:65: ", "100000 levels of nesting");
	unlink(deep_path);

	args[0] = tmpdir;
	validate(&r, 1, args);
	fmt(want, sizeof(want), "%s: cannot read: is a directory", tmpdir);
	refused_with(&r, want, "a directory");

	fmt(path, sizeof(path), "%s/missing.json", tmpdir);
	args[0] = path;
	validate(&r, 1, args);
	fmt(want, sizeof(want), "%s: cannot read: no such file or directory", path);
	refused_with(&r, want, "a missing file");

	validate(&r, 0, args);
	refused_with(&r, "no experiment file given", "no file at all");

	args[0] = "--var";
	args[1] = "1x=2";
	fmt(path, sizeof(path), "%s/experiments/examples/minimal.json", src);
	args[2] = path;
	validate(&r, 3, args);
	refused_with(&r, "--var wants NAME=VALUE", "a malformed --var");

	{
		char *two[2];
		char p2[PATH_MAX + 64];

		fmt(p2, sizeof(p2), "%s/tests/bad-experiments/empty.json", src);
		two[0] = path;
		two[1] = p2;
		validate(&r, 2, (const char *const *)two);
		refused_with(&r, "empty.json:1:1: empty file",
			     "one bad file among good ones makes the whole run exit 2");
	}

	args[0] = path;
	validate(&r, 1, args);
	ok(r.exit_code == 0 && strstr(r.out, "minimal.json: valid"),
	   "experiments/examples/minimal.json is valid (exit 0)");
	if (r.exit_code != 0)
		diag("%s", r.out);
	fmt(path, sizeof(path), "%s/experiments/examples/full.json", src);
	args[0] = path;
	validate(&r, 1, args);
	ok(r.exit_code == 0 && strstr(r.out, "full.json: valid (5 actions, 11 expectations"),
	   "experiments/examples/full.json is valid (exit 0)");
	if (r.exit_code != 0)
		diag("%s", r.out);

	for (int i = 0; i < nreg; i++) {
		fmt(path, sizeof(path), "%s/tests/fuzz-regressions/%s", src, regressions[i]);
		args[0] = "--plan";
		args[1] = path;
		validate(&r, 2, args);
		ok((r.exit_code == 0 || r.exit_code == 2) && !r.signal,
		   "fuzz regression %s: no crash (exit %d)", regressions[i], r.exit_code);
		if (r.signal)
			diag("killed by signal %d:\n%s", r.signal, r.out);
	}
	return exit_status();
}
