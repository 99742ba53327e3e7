/* SPDX-License-Identifier: MIT */
/* Event counters and their printing. */
#include "stats.h"

#include <inttypes.h>
#include <string.h>

#define LOAD(c, f) atomic_load_explicit(&(c)->f, memory_order_relaxed)

void counters_read(const struct counters *c, struct fl_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->minor_faults = LOAD(c, minor_faults);
	s->major_faults = LOAD(c, major_faults);
	s->zero_fills = LOAD(c, zero_fills);
	s->cow_copies = LOAD(c, cow_copies);
	s->wp_faults = LOAD(c, wp_faults);
	s->pages_read = LOAD(c, pages_read);
	s->pages_written = LOAD(c, pages_written);
	s->pages_mapped = LOAD(c, pages_mapped);
	s->errors = LOAD(c, errors);
	s->writeback_errors = LOAD(c, writeback_errors);
	s->fault_messages = LOAD(c, fault_messages);
	s->retries = LOAD(c, retries);
}

void counters_copy(struct counters *dst, const struct counters *src)
{
	struct fl_stats s;

	counters_read(src, &s);
	atomic_init(&dst->minor_faults, s.minor_faults);
	atomic_init(&dst->major_faults, s.major_faults);
	atomic_init(&dst->zero_fills, s.zero_fills);
	atomic_init(&dst->cow_copies, s.cow_copies);
	atomic_init(&dst->wp_faults, s.wp_faults);
	atomic_init(&dst->pages_read, s.pages_read);
	atomic_init(&dst->pages_written, s.pages_written);
	atomic_init(&dst->pages_mapped, s.pages_mapped);
	atomic_init(&dst->errors, s.errors);
	atomic_init(&dst->writeback_errors, s.writeback_errors);
	atomic_init(&dst->fault_messages, s.fault_messages);
	atomic_init(&dst->retries, s.retries);
}

void fl_stats_print(FILE *f, const char *prefix, const struct fl_stats *s)
{
	const struct {
		const char *name;
		uint64_t value;
	} rows[] = {
		{"minor_faults", s->minor_faults},
		{"major_faults", s->major_faults},
		{"zero_fills", s->zero_fills},
		{"cow_copies", s->cow_copies},
		{"wp_faults", s->wp_faults},
		{"pages_read", s->pages_read},
		{"pages_written", s->pages_written},
		{"pages_mapped", s->pages_mapped},
		{"dirty_pages", s->dirty_pages},
		{"cached_pages", s->cached_pages},
		{"errors", s->errors},
		{"writeback_errors", s->writeback_errors},
		{"fault_messages", s->fault_messages},
		{"retries", s->retries},
		{"private_pages", s->private_pages},
	};

	if (!f || !s)
		return;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		fprintf(f, "%s%-18s %" PRIu64 "\n", prefix ? prefix : "",
			rows[i].name, rows[i].value);
}
