/* The runner's mappings from the experiment model (harness/experiment.h,
 * fl_params) onto the typed configurations of probes (probes/probe.h) and
 * injectors (injectors/injector.h), and the blast-radius check.
 *
 * Pure functions: no I/O, no loop.  Strings they produce live in the
 * caller's arena (borrowed by the configuration; fl_probe_open and
 * fl_fault_new copy them).  Any thread.
 */
#ifndef FAULTLINE_RUNMAP_H
#define FAULTLINE_RUNMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "harness/experiment.h"
#include "harness/json.h"
#include "injectors/injector.h"
#include "probes/probe.h"
#include "resilience/err.h"

/* Where the target's processes are, with every late variable resolved
 * (borrowed).  NULL members: that process or endpoint does not exist. */
struct fl_run_where {
	const char *svc_url, *svc_admin, *svc_metrics; /* metrics: the full URL */
	const char *dep_url, *dep_admin, *dep_metrics;
	const struct fl_ports *ports; /* for probe URLs and argv that use late variables */
	const char *exp_dir;	      /* default cwd of command probes, or NULL */
};

/* Fills cfg for probe `p` of the model.  Client probes get the metric
 * "NAME" or "NAME@uncorrected" / "NAME@first" for latency metrics read
 * another way (the runner's client source reads that suffix).  Returns 0,
 * -EINVAL with a message naming the probe (an endpoint the target does not
 * have, a late variable that cannot be resolved), or -ENOMEM. */
int fl_map_probe(const struct fl_probe *p, const struct fl_run_where *w, struct fl_arena *a,
		 struct fl_probe_cfg *cfg, struct rs_err *err) RS_WUR;

/* Fills cfg for action `act` (its fault); load gives the default lockstep
 * tick (load.retry.base).  Returns 0 or -EINVAL (a family this build has no
 * injector for) with a message. */
int fl_map_fault(const struct fl_action *act, const struct fl_load_spec *load,
		 struct fl_fault_cfg *cfg, struct rs_err *err) RS_WUR;

/* True when `host` (as written in a URL: "127.0.0.1", "localhost", "[::1]"
 * or "::1") is a loopback address: 127.0.0.0/8, ::1, ::ffff:127.x.y.z or
 * localhost. */
bool fl_host_is_loopback(const char *host);

/* Writes the host of an http:// URL (without port and brackets) into buf;
 * returns buf, or NULL when url has no host. */
char *fl_url_host(const char *url, char *buf, size_t size);

/* The blast-radius allowlist: every URL the experiment touches (target and
 * dependency url and admin, load.url, probe URLs) must name a loopback host
 * or one of allow[0..nallow).  Late variables are read as port 1 for the
 * check.  Returns 0, or -EPERM with a message naming the JSON field, the URL
 * and how to allow it (--allow-host HOST). */
int fl_check_blast_radius(const struct fl_experiment *x, const char *const *allow, size_t nallow,
			  struct rs_err *err) RS_WUR;

/* True when the client probe metric is a cumulative count (requests,
 * attempts, successes, failures, timeouts): its series is a counter. */
bool fl_client_metric_cumulative(const char *metric);

#endif
