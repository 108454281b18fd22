/* `faultline recover`: revert the faults of runs that never finished
 * (harness/recover.h), say what was done. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "harness/commands.h"
#include "harness/recover.h"
#include "harness/runner.h"
#include "harness/statedir.h"

static const char recover_help[] =
    "usage: faultline recover [--state-dir DIR] [--list]\n"
    "\n"
    "Finds the journals of runs that never finished (the harness crashed or was\n"
    "killed) in the state directory and reverts every fault they left applied, from the\n"
    "undo records written before each fault was applied.  Runs still going are not\n"
    "touched.  Safe to run twice: reverting is idempotent.\n"
    "\n"
    "  --state-dir DIR   the state directory (default $FAULTLINE_STATE_DIR,\n"
    "                    $XDG_STATE_HOME/faultline, /var/lib/faultline for root)\n"
    "  --list            only list what is pending; revert nothing\n"
    "  -h, --help        this help\n"
    "\n"
    "Exit status: 0 nothing left to revert; 1 some fault could not be reverted (the\n"
    "message says why; run recover again once fixed); 2 usage.\n";

static const struct option recover_options[] = {
	{ "state-dir", required_argument, NULL, 's' },
	{ "list", no_argument, NULL, 'l' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int list_pending(const char *dir)
{
	struct fl_recover_list l = { 0 };
	struct rs_err err = { "" };
	size_t pending = 0;

	if (fl_recover_scan(dir, stderr, &l, &err) < 0) {
		fprintf(stderr, "faultline recover: %s\n", err.msg);
		return FL_EXIT_FAIL;
	}
	for (size_t i = 0; i < l.nruns; i++) {
		const struct fl_recover_run *r = &l.runs[i];

		printf("run %s (%s)%s: %zu fault%s to revert\n", r->run_id[0] ? r->run_id : "?",
		       r->path, r->live ? ", still running" : "", r->pending,
		       r->pending == 1 ? "" : "s");
		for (size_t k = 0; k < r->nfaults; k++)
			if (!r->faults[k].nothing)
				printf("  %s (%s)\n", r->faults[k].action, r->faults[k].family);
		pending += r->live ? 0 : r->pending;
	}
	if (!l.nruns)
		printf("nothing to recover in %s\n", dir);
	fl_recover_list_release(&l);
	(void)pending;
	return FL_EXIT_PASS;
}

int fl_cmd_recover(int argc, char **argv)
{
	char dir[FL_STATE_PATH_MAX];
	const char *state = NULL;
	struct fl_recover_summary sum = { 0 };
	struct rs_err err = { "" };
	bool list = false;
	int c, rc;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", recover_options, NULL)) != -1) {
		switch (c) {
		case 's':
			state = optarg;
			break;
		case 'l':
			list = true;
			break;
		case 'h':
			fputs(recover_help, stdout);
			return FL_EXIT_PASS;
		case ':':
			fprintf(stderr, "faultline recover: option '%s' needs a value\n",
				argv[optind - 1]);
			return FL_EXIT_USAGE;
		default:
			fprintf(stderr, "faultline recover: unknown option '%s' (see --help)\n",
				argv[optind - 1]);
			return FL_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "faultline recover: unexpected argument '%s'\n", argv[optind]);
		return FL_EXIT_USAGE;
	}
	if (state) {
		snprintf(dir, sizeof(dir), "%s", state);
	} else if (fl_statedir_path(dir, sizeof(dir), &err) < 0) {
		fprintf(stderr, "faultline recover: cannot find the state directory: %s\n",
			err.msg);
		return FL_EXIT_FAIL;
	}
	if (list)
		return list_pending(dir);
	rc = fl_recover_run(dir, stdout, &sum, &err);
	printf("recover: %zu run%s recovered, %zu fault%s reverted, %zu failed, %zu run%s still "
	       "going (state directory %s)\n",
	       sum.runs, sum.runs == 1 ? "" : "s", sum.reverted, sum.reverted == 1 ? "" : "s",
	       sum.failed, sum.live, sum.live == 1 ? "" : "s", dir);
	fflush(stdout);
	if (rc < 0) {
		fprintf(stderr, "faultline recover: %s\n", err.msg);
		return FL_EXIT_FAIL;
	}
	return FL_EXIT_PASS;
}
