/* End-to-end SLO composition over a chain of services (seed 003, section
 * 17.1): what availability and latency a request sees when it crosses
 * several services, and what each service must promise for an end-to-end
 * target.
 *
 *   serial (every hop in turn):   availability = prod a_i, latency = sum l_i
 *   parallel, all required:       availability = prod a_i, latency = max l_i
 *   parallel, any one suffices:   availability = 1 - prod (1 - a_i),
 *                                 latency = max l_i (the caller waits for
 *                                 every branch; a hedged "first answer wins"
 *                                 call is not modelled)
 *   required per service:         target^(1/N) for N serial services
 *
 * Failures are assumed independent.  Pure functions: no allocation, no
 * state, any thread.  Inputs are borrowed and only read; results are
 * written only on success.
 */
#ifndef RESILIENCE_SLO_H
#define RESILIENCE_SLO_H

#include <stddef.h>
#include <stdint.h>

#include "resilience/err.h"

struct rs_slo_service {
	const char *name;    /* borrowed; may be NULL; only echoed in messages */
	double availability; /* [0, 1] */
	uint64_t latency_ns; /* e.g. the service's p99 */
};

enum rs_slo_need {
	RS_SLO_ALL = 0, /* every branch must succeed */
	RS_SLO_ANY = 1, /* one successful branch suffices */
};

struct rs_slo_result {
	double availability; /* end to end */
	double error_budget; /* 1 - availability */
	uint64_t latency_ns; /* end to end */
};

/* A request that calls the n services one after another.  n > 0; every
 * availability in [0, 1].  -EINVAL naming svcs, n or services[i].availability;
 * -ERANGE when the latency sum overflows uint64_t. */
int rs_slo_serial(const struct rs_slo_service *svcs, size_t n, struct rs_slo_result *out,
		  struct rs_err *err) RS_WUR;

/* A request that fans out to the n services at once and needs all of them
 * (RS_SLO_ALL) or any one (RS_SLO_ANY).  Same validation, plus `need`. */
int rs_slo_parallel(const struct rs_slo_service *svcs, size_t n, enum rs_slo_need need,
		    struct rs_slo_result *out, struct rs_err *err) RS_WUR;

/* The availability each of n serial services needs so that the chain meets
 * `target` end to end: target^(1/n).  target in [0, 1], n > 0, else -EINVAL
 * naming the field. */
int rs_slo_required_availability(double target, size_t n, double *out, struct rs_err *err) RS_WUR;

#endif
