/* SPDX-License-Identifier: MIT */
/* Lock-hold histograms; see lockstat.h. */
#include "lockstat.h"

/*
 * Values below LOCKSTAT_SUB have a bucket each; above, a value whose top
 * bit is bit k falls in one of LOCKSTAT_SUB buckets by its next two bits.
 */
static unsigned bucket_of(uint64_t ns)
{
	unsigned k;

	if (ns < LOCKSTAT_SUB)
		return (unsigned)ns;
	k = 63 - (unsigned)__builtin_clzll(ns);
	return (k - 1) * LOCKSTAT_SUB + (unsigned)((ns >> (k - 2)) & 3);
}

/* The largest value that falls in bucket b. */
static uint64_t bucket_top(unsigned b)
{
	unsigned k = b / LOCKSTAT_SUB + 1, sub = b % LOCKSTAT_SUB;

	if (b < LOCKSTAT_SUB)
		return b;
	return (UINT64_C(1) << k) + ((uint64_t)(sub + 1) << (k - 2)) - 1;
}

void lockstat_record(struct lockstat *ls, uint64_t ns)
{
	unsigned b = bucket_of(ns);
	uint64_t max = atomic_load_explicit(&ls->max_ns, memory_order_relaxed);

	if (b >= LOCKSTAT_BUCKETS)
		b = LOCKSTAT_BUCKETS - 1;
	atomic_fetch_add_explicit(&ls->bucket[b], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&ls->count, 1, memory_order_relaxed);
	while (ns > max && !atomic_compare_exchange_weak_explicit(
				   &ls->max_ns, &max, ns, memory_order_relaxed,
				   memory_order_relaxed))
		;
}

uint64_t lockstat_quantile(const struct lockstat *ls, double q)
{
	uint64_t total = 0, seen = 0, target;
	uint64_t max = atomic_load_explicit(&ls->max_ns, memory_order_relaxed);

	for (unsigned b = 0; b < LOCKSTAT_BUCKETS; b++)
		total += atomic_load_explicit(&ls->bucket[b],
					      memory_order_relaxed);
	if (total == 0)
		return 0;
	target = (uint64_t)(q * (double)total);
	if (target >= total)
		target = total - 1;
	for (unsigned b = 0; b < LOCKSTAT_BUCKETS; b++) {
		seen += atomic_load_explicit(&ls->bucket[b],
					     memory_order_relaxed);
		if (seen > target)
			return bucket_top(b) < max ? bucket_top(b) : max;
	}
	return max;
}

void lockstat_reset(struct lockstat *ls)
{
	for (unsigned b = 0; b < LOCKSTAT_BUCKETS; b++)
		atomic_store_explicit(&ls->bucket[b], 0, memory_order_relaxed);
	atomic_store_explicit(&ls->count, 0, memory_order_relaxed);
	atomic_store_explicit(&ls->max_ns, 0, memory_order_relaxed);
}
