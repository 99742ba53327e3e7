/* SPDX-License-Identifier: MIT */
/*
 * Absolute deadlines for the timed waits that take one
 * (pthread_cond_timedwait, pthread_timedjoin_np): now on a clock, plus a
 * delay.
 */
#ifndef FL_DEADLINE_H
#define FL_DEADLINE_H

#include <stdint.h>
#include <time.h>

/* The time ns nanoseconds from now on clock. */
static inline struct timespec deadline_after(clockid_t clock, uint64_t ns)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	ts.tv_sec += (time_t)(ns / 1000000000u);
	ts.tv_nsec += (long)(ns % 1000000000u);
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

#endif /* FL_DEADLINE_H */
