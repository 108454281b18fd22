/* `faultline validate [--var NAME=VALUE]... [--no-env] [--plan] [--quiet] FILE...`
 *
 * Loads every FILE as an experiment (harness/experiment.h) and prints, for
 * each, either "FILE: valid (...)" on stdout or every error found, one a
 * line, "FILE:LINE:COL: JSON.PATH: reason", on stderr.  "-" reads standard
 * input.  --plan also prints the timeline each valid file would run.
 *
 * Returns the exit code: 0 when every file is a valid experiment; 2 when
 * any is not, cannot be read, or the command line is wrong (DESIGN.md
 * section 7: invalid input or usage).  argv[0] is "validate".  Uses getopt,
 * so it must run on the main thread.
 */
#ifndef FAULTLINE_CMD_VALIDATE_H
#define FAULTLINE_CMD_VALIDATE_H

int fl_cmd_validate(int argc, char **argv);

#endif
