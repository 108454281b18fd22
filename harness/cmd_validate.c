/* `faultline validate` (see cmd_validate.h). */
#include "harness/cmd_validate.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/duration.h"
#include "harness/experiment.h"

#define EXIT_INVALID 2

static void usage(FILE *f)
{
	fprintf(f,
		"usage: faultline validate [--var NAME=VALUE]... [--no-env] [--plan] [--quiet] "
		"FILE...\n"
		"\n"
		"Checks experiments without running anything.  Exit 0 when every FILE is valid,\n"
		"2 otherwise; errors go to stderr as FILE:LINE:COL: JSON.PATH: reason.\n"
		"\n"
		"  --var NAME=VALUE  set a ${NAME} variable (repeatable; beats the environment)\n"
		"  --no-env          do not read ${NAME} variables from the environment\n"
		"  --plan            print the timeline of each valid experiment\n"
		"  -q, --quiet       print nothing for valid files\n");
}

static bool var_ok(const char *kv)
{
	const char *eq = strchr(kv, '=');

	if (!eq || eq == kv)
		return false;
	for (const char *p = kv; p < eq; p++)
		if (!(*p == '_' || (*p >= '0' && *p <= '9' && p > kv) || (*p >= 'a' && *p <= 'z') ||
		      (*p >= 'A' && *p <= 'Z')))
			return false;
	return true;
}

int fl_cmd_validate(int argc, char **argv)
{
	static const struct option options[] = {
		{ "var", required_argument, NULL, 'v' }, { "no-env", no_argument, NULL, 'E' },
		{ "plan", no_argument, NULL, 'p' },	 { "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },	 { NULL, 0, NULL, 0 },
	};
	struct fl_vars vars = { NULL, 0, false };
	const char **set;
	bool plan = false, quiet = false;
	int c, rc = 0;

	set = calloc((size_t)argc + 1, sizeof(*set));
	if (!set) {
		fprintf(stderr, "faultline validate: out of memory\n");
		return EXIT_INVALID;
	}
	vars.set = set;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":qh", options, NULL)) != -1) {
		switch (c) {
		case 'v':
			if (!var_ok(optarg)) {
				fprintf(
				    stderr,
				    "faultline validate: --var wants NAME=VALUE (NAME: letters, "
				    "digits, '_'), got '%s'\n",
				    optarg);
				rc = EXIT_INVALID;
				goto out;
			}
			set[vars.nset++] = optarg;
			break;
		case 'E':
			vars.no_env = true;
			break;
		case 'p':
			plan = true;
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			goto out;
		case ':':
			fprintf(stderr, "faultline validate: option '%s' needs a value\n",
				argv[optind - 1]);
			rc = EXIT_INVALID;
			goto out;
		default:
			fprintf(stderr, "faultline validate: unknown option '%s'\n",
				argv[optind - 1]);
			usage(stderr);
			rc = EXIT_INVALID;
			goto out;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "faultline validate: no experiment file given\n");
		usage(stderr);
		rc = EXIT_INVALID;
		goto out;
	}
	for (int i = optind; i < argc; i++) {
		struct fl_experiment *x = NULL;
		struct fl_diag diag;
		char len[32];

		fl_diag_init(&diag, argv[i]);
		if (fl_experiment_load(argv[i], &vars, &x, &diag) != 0) {
			fl_diag_print(&diag, stderr);
			rc = EXIT_INVALID;
			continue;
		}
		if (!quiet)
			printf(
			    "%s: valid (%zu action%s, %zu expectation%s, %zu probe%s; runs %s)\n",
			    argv[i], x->nactions, x->nactions == 1 ? "" : "s", x->nexpects,
			    x->nexpects == 1 ? "" : "s", x->nprobes, x->nprobes == 1 ? "" : "s",
			    fl_duration_format(x->end_ns, len, sizeof(len)));
		if (plan)
			fl_experiment_print_plan(x, stdout);
		fl_experiment_free(x);
	}
	fflush(stdout);
out:
	free(set);
	return rc;
}
