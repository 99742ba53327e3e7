/* SPDX-License-Identifier: MIT */
/* Lock-hold histograms; see lockstat.h. */
#include "lockstat.h"

void lockstat_record(struct lockstat *ls, uint64_t ns)
{
	unsigned b = ns ? 64 - (unsigned)__builtin_clzll(ns) : 0;
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
		if (seen > target) /* bucket b holds [2^(b-1), 2^b) ns */
			return b ? (UINT64_C(1) << b) - 1 : 0;
	}
	return atomic_load_explicit(&ls->max_ns, memory_order_relaxed);
}

void lockstat_reset(struct lockstat *ls)
{
	for (unsigned b = 0; b < LOCKSTAT_BUCKETS; b++)
		atomic_store_explicit(&ls->bucket[b], 0, memory_order_relaxed);
	atomic_store_explicit(&ls->count, 0, memory_order_relaxed);
	atomic_store_explicit(&ls->max_ns, 0, memory_order_relaxed);
}
