/* The subcommands of `faultline` (harness/main.c's table).  Each takes
 * argv with argv[0] the subcommand's name, parses its own options with
 * getopt_long (so it must run on the main thread), and returns the exit
 * code (DESIGN.md section 7). */
#ifndef FAULTLINE_COMMANDS_H
#define FAULTLINE_COMMANDS_H

/* faultline run [options] EXPERIMENT.json (cmd_run.c) */
int fl_cmd_run(int argc, char **argv);

/* faultline list: fault and probe families with their parameters (cmd_list.c) */
int fl_cmd_list(int argc, char **argv);

/* faultline doctor: what this machine can inject and why not (cmd_doctor.c) */
int fl_cmd_doctor(int argc, char **argv);

/* faultline recover: revert faults that crashed runs left behind (cmd_recover.c) */
int fl_cmd_recover(int argc, char **argv);

#endif
