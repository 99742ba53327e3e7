/* SPDX-License-Identifier: MIT */
/* Event counters and their printing. */
#include "stats.h"

#include <inttypes.h>
#include <string.h>

void counters_read(const struct counters *c, struct fl_stats *s)
{
	memset(s, 0, sizeof(*s));
#define READ_COUNTER(name)                                                     \
	s->name = atomic_load_explicit(&c->name, memory_order_relaxed);
	FL_COUNTERS(READ_COUNTER)
#undef READ_COUNTER
}

void counters_copy(struct counters *dst, const struct counters *src)
{
#define COPY_COUNTER(name)                                                     \
	atomic_init(&dst->name,                                                \
		    atomic_load_explicit(&src->name, memory_order_relaxed));
	FL_COUNTERS(COPY_COUNTER)
#undef COPY_COUNTER
}

static void stats_print(FILE *f, const char *prefix, const struct fl_stats *s)
{
	/* Counters, then the gauges, in the order of struct fl_stats. */
	const struct {
		const char *name;
		uint64_t value;
	} rows[] = {
#define COUNTER_ROW(name) {#name, s->name},
		FL_COUNTERS(COUNTER_ROW)
#undef COUNTER_ROW
			{"dirty_pages", s->dirty_pages},
		{"cached_pages", s->cached_pages},
		{"private_pages", s->private_pages},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		fprintf(f, "%s%-18s %" PRIu64 "\n", prefix, rows[i].name,
			rows[i].value);
}

void fl_stats_print(FILE *f, const char *prefix, const struct fl_stats *s)
{
	if (f && s)
		stats_print(f, prefix ? prefix : "", s);
}
