/* `faultline doctor`: what this machine can inject, and why not where it
 * cannot.  Every check only reads, or acts inside a child process that
 * exits at once (the namespace check); nothing is left behind. */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/commands.h"
#include "harness/families.h"
#include "harness/runner.h"

static const char doctor_help[] =
    "usage: faultline doctor\n"
    "\n"
    "Says what this machine can inject and, where it cannot, why and what to do:\n"
    "privileges, netem (sch_netem), FUSE, io_uring, network namespaces, cgroups, and\n"
    "the fault families this build supports.  Changes nothing.  Exit status 0.\n";

static void line(bool ok, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void line(bool ok, const char *what, const char *fmt, ...)
{
	va_list ap;

	printf("  %-20s %-4s ", what, ok ? "yes" : "no");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static bool file_has_word(const char *path, const char *word)
{
	FILE *f = fopen(path, "r");
	char buf[512];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(buf, sizeof(buf), f))
		found = strstr(buf, word) != NULL;
	fclose(f);
	return found;
}

static void check_netem(void)
{
	struct utsname u;
	char path[512];
	struct stat st;

	if (stat("/sys/module/sch_netem", &st) == 0) {
		line(true, "netem", "sch_netem is loaded (or built in)");
		return;
	}
	if (file_has_word("/proc/modules", "sch_netem")) {
		line(true, "netem", "sch_netem is loaded");
		return;
	}
	if (uname(&u) == 0) {
		snprintf(path, sizeof(path), "/lib/modules/%s/modules.builtin", u.release);
		if (file_has_word(path, "sch_netem")) {
			line(true, "netem", "sch_netem is built into this kernel");
			return;
		}
		snprintf(path, sizeof(path), "/lib/modules/%s/modules.dep", u.release);
		if (file_has_word(path, "sch_netem.ko")) {
			line(geteuid() == 0, "netem",
			     "sch_netem is a module of this kernel; it loads on first use%s",
			     geteuid() == 0 ? "" : " (as root: modprobe sch_netem)");
			return;
		}
	}
	line(false, "netem",
	     "this kernel lacks sch_netem (CONFIG_NET_SCH_NETEM); netem experiments need a "
	     "kernel that has it (stock distribution kernels do)");
}

static void check_fuse(void)
{
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);

	if (fd >= 0) {
		close(fd);
		line(true, "FUSE", "/dev/fuse opens read-write (slow-disk faults)");
		return;
	}
	if (errno == ENOENT)
		line(false, "FUSE",
		     "/dev/fuse is missing: load the fuse module (modprobe fuse) or, in a "
		     "container, pass --device /dev/fuse");
	else
		line(false, "FUSE", "cannot open /dev/fuse: %s%s", strerror(errno),
		     errno == EACCES || errno == EPERM ? " (run as root or join group fuse)" : "");
}

static void check_uring(void)
{
	struct io_uring ring;
	int rc = io_uring_queue_init(4, &ring, 0);

	if (rc == 0) {
		io_uring_queue_exit(&ring);
		line(true, "io_uring", "io_uring_setup works (slow-disk delays)");
		return;
	}
	if (rc == -EPERM && file_has_word("/proc/sys/kernel/io_uring_disabled", "2"))
		line(false, "io_uring", "disabled by sysctl kernel.io_uring_disabled=2");
	else if (rc == -ENOSYS)
		line(false, "io_uring",
		     "this kernel has no io_uring (it needs Linux 5.6 or later)");
	else
		line(false, "io_uring", "io_uring_setup failed: %s", strerror(-rc));
}

/* Tries unshare(flags) in a child that exits at once; 0 or the errno. */
static int try_unshare(int flags)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return errno;
	if (pid == 0)
		_exit(unshare(flags) == 0 ? 0 : (errno & 0xff));
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return errno;
	return WIFEXITED(st) ? WEXITSTATUS(st) : EINTR;
}

static void check_netns(void)
{
	int e = try_unshare(CLONE_NEWNET);

	if (e == 0) {
		line(true, "network namespaces", "unshare(CLONE_NEWNET) works");
		return;
	}
	if (try_unshare(CLONE_NEWUSER | CLONE_NEWNET) == 0) {
		line(true, "network namespaces",
		     "inside a user namespace only (unshare -rn): unshare(CLONE_NEWNET) alone "
		     "says %s",
		     strerror(e));
		return;
	}
	line(false, "network namespaces", "unshare(CLONE_NEWNET): %s%s", strerror(e),
	     e == EPERM ? " (run as root, or allow unprivileged user namespaces: sysctl "
			  "kernel.unprivileged_userns_clone=1)"
			: "");
}

static void check_cgroups(void)
{
	FILE *f = fopen("/sys/fs/cgroup/cgroup.controllers", "r");
	char buf[512] = "";

	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
		buf[strcspn(buf, "\n")] = '\0';
		line(true, "cgroups", "v2 at /sys/fs/cgroup (controllers: %s)%s",
		     buf[0] ? buf : "none",
		     access("/sys/fs/cgroup", W_OK) == 0 ? "" : "; not writable by this user");
		return;
	}
	if (file_has_word("/proc/mounts", " cgroup ")) {
		line(true, "cgroups", "v1 hierarchies are mounted");
		return;
	}
	line(false, "cgroups",
	     "no cgroup file system is mounted (mount cgroup2 on /sys/fs/cgroup)");
}

int fl_cmd_doctor(int argc, char **argv)
{
	const struct fl_family *fams;
	size_t n;

	if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		fputs(doctor_help, stdout);
		return FL_EXIT_PASS;
	}
	if (argc > 1) {
		fprintf(stderr, "faultline doctor: no arguments expected (see --help)\n");
		return FL_EXIT_USAGE;
	}
	printf("this machine:\n");
	line(geteuid() == 0, "root", "%s",
	     geteuid() == 0 ? "running as root"
			    : "not root: netem, namespaces and cgroups faults need root (or "
			      "unshare -rn for namespaces)");
	check_netem();
	check_fuse();
	check_uring();
	check_netns();
	check_cgroups();
	printf("\nfault families in this build:\n");
	fams = fl_families(&n);
	for (size_t i = 0; i < n; i++)
		if (fams[i].kind == FL_FAULT)
			line(true, fams[i].name, "no privileges needed; needs %s", fams[i].needs);
	printf("\nprobe families: ");
	for (size_t i = 0, k = 0; i < n; i++)
		if (fams[i].kind == FL_PROBE)
			printf("%s%s", k++ ? ", " : "", fams[i].name);
	printf("\n");
	fflush(stdout);
	return FL_EXIT_PASS;
}
