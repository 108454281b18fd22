/* `faultline run`: the command line of the runner (runner.h). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/commands.h"
#include "harness/runner.h"

static const char run_help[] =
    "usage: faultline run [options] EXPERIMENT.json\n"
    "\n"
    "Runs an experiment: starts the target, drives load, injects the method's faults at\n"
    "their offsets (and always reverts them), samples the probes and decides every\n"
    "steady-state check and expectation with its measured figure, bound and margin.\n"
    "\n"
    "  --tap                 TAP on stdout (one test point per check and expectation);\n"
    "                        everything else goes to stderr\n"
    "  --journal FILE        write the run's complete journal as one JSON document\n"
    "  --seed N              override the experiment's seed (replays a run)\n"
    "  --var NAME=VALUE      set a variable (repeatable)\n"
    "  --dry-run             validate, check what can be checked, print the timeline;\n"
    "                        start nothing, inject nothing\n"
    "  --state-dir DIR       where journals live (default $FAULTLINE_STATE_DIR,\n"
    "                        $XDG_STATE_HOME/faultline, /var/lib/faultline for root)\n"
    "  --force               run even when an earlier run left faults unreverted\n"
    "  --allow-host HOST     allow URLs on HOST besides loopback (repeatable)\n"
    "  --quiet               no status line or progress messages\n"
    "  --plain-status        plain status lines every 5s even on a terminal\n"
    "  -h, --help            this help\n"
    "\n"
    "Exit status: 0 every check and expectation met; 1 one failed (or the baseline\n"
    "failed, the target died, a fault could not be applied, verified or reverted);\n"
    "2 invalid experiment or usage, a URL that is not on this machine, or faults of an\n"
    "earlier run still unreverted (run `faultline recover`, or --force); 3 stopped by\n"
    "a stop condition or a signal (faults were reverted); 4 this machine or target\n"
    "cannot run the experiment (a capability is missing).\n";

enum {
	OPT_TAP = 256,
	OPT_JOURNAL,
	OPT_SEED,
	OPT_VAR,
	OPT_DRY,
	OPT_STATE,
	OPT_FORCE,
	OPT_ALLOW,
	OPT_QUIET,
	OPT_PLAIN,
};

static const struct option run_options[] = {
	{ "tap", no_argument, NULL, OPT_TAP },
	{ "journal", required_argument, NULL, OPT_JOURNAL },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "var", required_argument, NULL, OPT_VAR },
	{ "dry-run", no_argument, NULL, OPT_DRY },
	{ "state-dir", required_argument, NULL, OPT_STATE },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "allow-host", required_argument, NULL, OPT_ALLOW },
	{ "quiet", no_argument, NULL, OPT_QUIET },
	{ "plain-status", no_argument, NULL, OPT_PLAIN },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int usage_error(const char *msg, const char *arg)
{
	fprintf(stderr, "faultline run: %s", msg);
	if (arg)
		fprintf(stderr, " '%s'", arg);
	fprintf(stderr, " (see faultline run --help)\n");
	return FL_EXIT_USAGE;
}

int fl_cmd_run(int argc, char **argv)
{
	struct fl_run_opts o = { 0 };
	const char **vars = calloc((size_t)argc + 1, sizeof(*vars));
	const char **allow = calloc((size_t)argc + 1, sizeof(*allow));
	char self[PATH_MAX];
	ssize_t n;
	int c, rc;

	if (!vars || !allow) {
		free(vars);
		free(allow);
		fprintf(stderr, "faultline run: out of memory\n");
		return FL_EXIT_FAIL;
	}
	o.vars = vars;
	o.allow_hosts = allow;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", run_options, NULL)) != -1) {
		switch (c) {
		case OPT_TAP:
			o.tap = true;
			break;
		case OPT_JOURNAL:
			o.journal_out = optarg;
			break;
		case OPT_SEED: {
			char *end;

			errno = 0;
			if (optarg[0] < '0' || optarg[0] > '9') {
				rc = usage_error("--seed must be an unsigned integer, got", optarg);
				goto out;
			}
			o.seed = strtoull(optarg, &end, 10);
			if (errno || *end) {
				rc = usage_error(
				    "--seed must be an unsigned integer below 2^64, got", optarg);
				goto out;
			}
			o.seed_set = true;
			break;
		}
		case OPT_VAR:
			if (!strchr(optarg, '=') || optarg[0] == '=') {
				rc = usage_error("--var needs NAME=VALUE, got", optarg);
				goto out;
			}
			vars[o.nvars++] = optarg;
			break;
		case OPT_DRY:
			o.dry_run = true;
			break;
		case OPT_STATE:
			o.state_dir = optarg;
			break;
		case OPT_FORCE:
			o.force = true;
			break;
		case OPT_ALLOW:
			allow[o.nallow++] = optarg;
			break;
		case OPT_QUIET:
			o.status = FL_STATUS_NONE;
			break;
		case OPT_PLAIN:
			if (o.status != FL_STATUS_NONE)
				o.status = FL_STATUS_PLAIN;
			break;
		case 'h':
			fputs(run_help, stdout);
			rc = 0;
			goto out;
		case ':':
			rc = usage_error("this option needs a value:", argv[optind - 1]);
			goto out;
		default:
			rc = usage_error("unknown option", argv[optind - 1]);
			goto out;
		}
	}
	if (optind >= argc) {
		rc = usage_error("missing the experiment file (usage: faultline run [options] "
				 "EXPERIMENT.json)",
				 NULL);
		goto out;
	}
	if (optind + 1 < argc) {
		rc = usage_error("one experiment at a time; unexpected argument", argv[optind + 1]);
		goto out;
	}
	o.experiment = argv[optind];
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		o.shim = self;
	}
	o.exiting = true;
	rc = fl_run(&o);
out:
	free(vars);
	free(allow);
	return rc;
}
