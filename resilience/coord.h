/* System-wide view of metastability across services, after seed 000's
 * SystemCoordinator, reduced to a pure function: the caller gathers each
 * service's state however it likes (probes, a journal, a shared store) and
 * asks what the system as a whole looks like.
 *
 * The system is metastable when MORE than `threshold` of the services are
 * (strictly: metastable / services > threshold), so with threshold 0.3 and
 * 10 services, 3 metastable services are not enough and 4 are.
 *
 * Nothing allocates, locks or reads the clock; any thread may call, and the
 * inputs are only read.
 */
#ifndef RESILIENCE_COORD_H
#define RESILIENCE_COORD_H

#include <stdbool.h>
#include <stddef.h>

#include "resilience/err.h"

/* One service's state as the caller knows it. */
struct rs_coord_service {
	const char *name;  /* borrowed; may be NULL; only echoed in messages */
	bool metastable;   /* e.g. rs_detector_metastable() of that service */
	double error_rate; /* [0, 1], or NaN when unknown */
	double load;	   /* requests/s (>= 0), or NaN when unknown */
};

struct rs_coord_view {
	bool system_metastable;
	size_t services;	    /* n */
	size_t metastable;	    /* services with the flag set */
	double metastable_fraction; /* metastable / services; 0 when n == 0 */
	size_t listed;		    /* indices written to `which` (<= which_cap) */
	size_t error_known;	    /* services with a known error rate */
	double mean_error_rate;	    /* over those; NaN when none */
	size_t load_known;	    /* services with a known load */
	double total_load;	    /* sum over those; 0 when none */
	double metastable_load;	    /* sum of known load on metastable services */
};

/* Computes the system view of the n services in svcs (borrowed, read only).
 * threshold must be in [0, 1).  The indices (into svcs, ascending) of the
 * first which_cap metastable services are written to which (caller storage;
 * may be NULL when which_cap is 0); view->listed says how many.  n == 0 is
 * a valid, empty, non-metastable system.  Returns 0, or -EINVAL with a
 * message naming the bad field (threshold, svcs, services[i].error_rate,
 * services[i].load, which).  *view is written only on success.  Any thread. */
int rs_coord_evaluate(const struct rs_coord_service *svcs, size_t n, double threshold,
		      size_t *which, size_t which_cap, struct rs_coord_view *view,
		      struct rs_err *err) RS_WUR;

#endif
