/* libFuzzer entry point: arbitrary bytes through the JSON reader and the
 * experiment validator, as `faultline validate` would see them.  Built by
 * `make check` with clang -fsanitize=fuzzer,address,undefined; any crash,
 * leak or timeout it finds becomes a file in tests/fuzz-regressions/.
 *
 * Deterministic: the environment is not read (no_env) and a fixed --var is
 * passed, so an input replays the same way everywhere.  Every model that
 * loads is also walked (plan and events formatted) so the fuzzer checks
 * that a valid model is consistent, not only that parsing does not crash. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "harness/experiment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const set[] = { "fuzz=1", "FAULTLINE_BUILD=build" };
	const struct fl_vars vars = { set, 2, true };
	struct fl_experiment *x = NULL;
	struct fl_diag diag;
	char buf[128];
	FILE *devnull;

	fl_diag_init(&diag, "fuzz.json");
	if (fl_experiment_parse("fuzz.json", (const char *)data, size, &vars, NULL, &x, &diag) != 0)
		return 0;
	/* A valid model: its plan is sorted and every event names something. */
	for (size_t i = 1; i < x->nplan; i++)
		if (x->plan[i].t_ns < x->plan[i - 1].t_ns)
			__builtin_trap();
	for (size_t i = 0; i < x->nexpects; i++) {
		fl_event_format(x, &x->expects[i].after, buf, sizeof(buf));
		fl_event_format(x, &x->expects[i].window.from, buf, sizeof(buf));
	}
	devnull = fopen("/dev/null", "w");
	if (devnull) {
		fl_experiment_print_plan(x, devnull);
		fclose(devnull);
	}
	fl_experiment_free(x);
	return 0;
}
