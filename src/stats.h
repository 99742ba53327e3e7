/* SPDX-License-Identifier: MIT */
/* Event counters, kept per engine and per mapping. */
#ifndef FL_STATS_H
#define FL_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#include "faultline.h"

/* The counters, each named as its field of struct fl_stats. */
#define FL_COUNTERS(X)                                                         \
	X(minor_faults)                                                        \
	X(major_faults)                                                        \
	X(zero_fills)                                                          \
	X(cow_copies)                                                          \
	X(wp_faults)                                                           \
	X(pages_read)                                                          \
	X(pages_written)                                                       \
	X(pages_mapped)                                                        \
	X(errors)                                                              \
	X(writeback_errors)                                                    \
	X(fault_messages)                                                      \
	X(retries)                                                             \
	X(readahead_pages)                                                     \
	X(readahead_used)                                                      \
	X(readahead_evicted)                                                   \
	X(store_reads)                                                         \
	X(store_read_depth)                                                    \
	X(polled_events)                                                       \
	X(handler_wakeups)                                                     \
	X(polls_idle)                                                          \
	X(polls_starved)                                                       \
	X(local_reads)                                                         \
	X(late_reads)                                                          \
	X(handed_wakes)                                                        \
	X(poller_moves)                                                        \
	X(polls_skipped)                                                       \
	X(store_reads_inline)                                                  \
	X(wp_stale)

struct counters {
#define FL_COUNTER_FIELD(name) _Atomic uint64_t name;
	FL_COUNTERS(FL_COUNTER_FIELD)
#undef FL_COUNTER_FIELD
};

#define count_add(c, field, n)                                                 \
	atomic_fetch_add_explicit(&(c)->field, (n), memory_order_relaxed)

/* Copy counters into the public structure (gauges are the caller's). */
void counters_read(const struct counters *c, struct fl_stats *stats);
/* Start dst as a copy of src (a mapping split keeps its history). */
void counters_copy(struct counters *dst, const struct counters *src);

#endif /* FL_STATS_H */
