/* SPDX-License-Identifier: MIT */
/* Event counters, kept per engine and per mapping. */
#ifndef FL_STATS_H
#define FL_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "faultline.h"

struct counters {
	_Atomic uint64_t minor_faults;
	_Atomic uint64_t major_faults;
	_Atomic uint64_t zero_fills;
	_Atomic uint64_t cow_copies;
	_Atomic uint64_t wp_faults;
	_Atomic uint64_t pages_read;
	_Atomic uint64_t pages_written;
	_Atomic uint64_t pages_mapped;
	_Atomic uint64_t errors;
	_Atomic uint64_t writeback_errors;
	_Atomic uint64_t fault_messages;
	_Atomic uint64_t retries;
};

#define count_add(c, field, n)                                                 \
	atomic_fetch_add_explicit(&(c)->field, (n), memory_order_relaxed)

/* Copy counters into the public structure (gauges are the caller's). */
void counters_read(const struct counters *c, struct fl_stats *stats);
/* Start dst as a copy of src (a mapping split keeps its history). */
void counters_copy(struct counters *dst, const struct counters *src);

#endif /* FL_STATS_H */
