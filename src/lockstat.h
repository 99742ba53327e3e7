/* SPDX-License-Identifier: MIT */
/*
 * Lock-hold histograms: how long faults held the map lock and how long
 * map/unmap/protect waited for it.  Power-of-two buckets of nanoseconds,
 * updated with relaxed atomics: cheap enough for every fault.
 */
#ifndef FL_LOCKSTAT_H
#define FL_LOCKSTAT_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define LOCKSTAT_BUCKETS 48 /* up to 2^47 ns: about 39 hours */

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
/* The upper end of the bucket holding quantile q (0..1), in ns. */
uint64_t lockstat_quantile(const struct lockstat *ls, double q);
void lockstat_reset(struct lockstat *ls);

#endif /* FL_LOCKSTAT_H */
