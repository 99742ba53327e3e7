/* SPDX-License-Identifier: MIT */
/*
 * Lock-hold histograms: how long faults held the map lock and how long
 * map/unmap/protect waited for it.  Log-linear buckets of nanoseconds (four
 * per power of two, so a quantile is within 25%), updated with relaxed
 * atomics: cheap enough for every fault.
 */
#ifndef FL_LOCKSTAT_H
#define FL_LOCKSTAT_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define LOCKSTAT_SUB	 4		     /* buckets per power of two */
#define LOCKSTAT_BUCKETS (48 * LOCKSTAT_SUB) /* to 2^47 ns: 39 hours */

struct lockstat {
	_Atomic uint64_t bucket[LOCKSTAT_BUCKETS];
	_Atomic uint64_t count;
	_Atomic uint64_t max_ns;
};

static inline uint64_t lockstat_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void lockstat_record(struct lockstat *ls, uint64_t ns);
/* The upper end of the bucket holding quantile q (0..1), in ns, at most
 * the largest value recorded. */
uint64_t lockstat_quantile(const struct lockstat *ls, double q);
void lockstat_reset(struct lockstat *ls);

#endif /* FL_LOCKSTAT_H */
