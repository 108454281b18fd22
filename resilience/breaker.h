/* Circuit breaker.  (Placeholder header: the states below are fixed by
 * DESIGN.md section 6; the breaker's API is being written.) */
#ifndef RESILIENCE_BREAKER_H
#define RESILIENCE_BREAKER_H

/* The numeric values are the resilience_breaker_state gauge's. */
enum rs_breaker_state {
	RS_BREAKER_CLOSED = 0,
	RS_BREAKER_HALF_OPEN = 1,
	RS_BREAKER_OPEN = 2,
	RS_BREAKER_EMERGENCY = 3,
	RS_BREAKER_FORCED_OPEN = 4,
	RS_BREAKER_DISABLED = 5,
};

#endif
