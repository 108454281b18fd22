#include "resilience/clock.h"

#include <time.h>

uint64_t rs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * RS_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}
