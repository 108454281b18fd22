/* `faultline list`: every fault and probe family with its parameters, their
 * types, units, defaults and bounds (harness/families.h, params.h). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "harness/commands.h"
#include "harness/families.h"
#include "harness/params.h"
#include "harness/runner.h"

static const char list_help[] =
    "usage: faultline list [faults|probes|FAMILY]\n"
    "\n"
    "Prints every fault and probe family an experiment may use, with each parameter's\n"
    "type, unit, default, bounds and allowed values.  With an argument, only the fault\n"
    "families, only the probe families, or one family.\n";

static void print_param(const struct fl_param_spec *ps)
{
	char extra[512];
	size_t n = 0;
	int k;

#define ADD(...)                                                                                   \
	do {                                                                                       \
		k = snprintf(extra + n, sizeof(extra) - n, __VA_ARGS__);                           \
		if (k > 0 && (size_t)k < sizeof(extra) - n)                                        \
			n += (size_t)k;                                                            \
	} while (0)

	extra[0] = '\0';
	if (ps->flags & FL_P_REQUIRED)
		ADD("required");
	if (ps->def)
		ADD("%sdefault %s", n ? ", " : "", ps->def);
	if (ps->unit)
		ADD("%sin %s", n ? ", " : "", ps->unit);
	if (ps->min && ps->max)
		ADD("%s%s..%s", n ? ", " : "", ps->min, ps->max);
	else if (ps->min)
		ADD("%s>= %s", n ? ", " : "", ps->min);
	else if (ps->max)
		ADD("%s<= %s", n ? ", " : "", ps->max);
	if (ps->choices) {
		ADD("%sone of ", n ? ", " : "");
		for (const char *const *c = ps->choices; *c; c++)
			ADD("%s%s", c == ps->choices ? "" : "|", *c);
	}
#undef ADD
	printf("    %-12s %-24s %s\n", ps->name,
	       ps->type == FL_PT_ENUM ? "choice" : fl_ptype_name(ps->type), ps->help);
	if (extra[0])
		printf("    %-12s %-24s (%s)\n", "", "", extra);
}

static void print_family(const struct fl_family *f)
{
	printf("%s %s: %s\n", f->kind == FL_FAULT ? "fault" : "probe", f->name, f->summary);
	printf("  needs: %s\n", f->needs);
	if (f->kind == FL_FAULT)
		printf("  %s\n", f->flags & FL_FAM_REVERTS
				     ? "holds until reverted: an action needs 'for'"
				 : f->flags & FL_FAM_REPEAT
				     ? "acts at once; with 'for' and 'repeat', again every "
				       "'repeat'"
				     : "acts at once");
	printf("  parameters (besides \"type\": \"%s\"):\n", f->name);
	for (size_t i = 0; i < f->spec->n; i++)
		print_param(&f->spec->params[i]);
	if (f->kind == FL_PROBE && strcmp(f->name, "client") == 0) {
		printf("  shorthand: \"client.<metric>\" wherever a probe is named, e.g. "
		       "\"client.latency_p99\"\n");
	}
	printf("\n");
}

int fl_cmd_list(int argc, char **argv)
{
	const struct fl_family *fams;
	size_t n, shown = 0;
	const char *what = argc > 1 ? argv[1] : NULL;

	if (what && (strcmp(what, "-h") == 0 || strcmp(what, "--help") == 0)) {
		fputs(list_help, stdout);
		return FL_EXIT_PASS;
	}
	if (argc > 2) {
		fprintf(stderr, "faultline list: one argument at most (see --help)\n");
		return FL_EXIT_USAGE;
	}
	fams = fl_families(&n);
	for (size_t i = 0; i < n; i++) {
		const struct fl_family *f = &fams[i];

		if (what && strcmp(what, "faults") == 0 && f->kind != FL_FAULT)
			continue;
		if (what && strcmp(what, "probes") == 0 && f->kind != FL_PROBE)
			continue;
		if (what && strcmp(what, "faults") != 0 && strcmp(what, "probes") != 0 &&
		    strcmp(what, f->name) != 0)
			continue;
		print_family(f);
		shown++;
	}
	if (!shown) {
		char faults[128], probes[128];

		fprintf(stderr, "faultline list: no family '%s' (faults: %s; probes: %s)\n", what,
			fl_family_names(FL_FAULT, faults, sizeof(faults)),
			fl_family_names(FL_PROBE, probes, sizeof(probes)));
		return FL_EXIT_USAGE;
	}
	fflush(stdout);
	return FL_EXIT_PASS;
}
