/* SPDX-License-Identifier: MIT */
/*
 * Readahead, shaped like the kernel's for mmap: a fault that misses the
 * cache reads a window of pages at once; when a mapping's faults move
 * through the file in order, the next windows are read in the background by
 * the engine's I/O threads, and each fault that reaches a window read ahead
 * (the trigger) starts one more, so that READAHEAD_DEPTH windows are always
 * in flight ahead of the reader.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "engine.h"
#include "group.h"
#include "object.h"
#include "readahead.h"
#include "reclaim.h"

/* Windows kept in flight ahead of a sequential reader. */
#define READAHEAD_DEPTH 2

/*
 * The most pages a window may have in m's group without readahead
 * evicting its own unused pages: the room the tightest limit above the
 * group leaves for page cache (free, plus the group's own cache pages,
 * which reclaim can free), shared by the window being read and the
 * READAHEAD_DEPTH windows ahead of it.  Racy reads: a hint.
 */
static unsigned readahead_fit(const struct fl_mapping *m, unsigned pages)
{
	uint64_t cache = atomic_load(&m->group->cache_pages);

	for (struct fl_group *g = m->group; g; g = g->parent) {
		uint64_t max = atomic_load(&g->max),
			 usage = atomic_load(&g->usage);
		uint64_t room, fit;

		if (max == UINT64_MAX)
			continue;
		room = (max > usage ? max - usage : 0) + cache;
		fit = room / (READAHEAD_DEPTH + 1);
		if (fit < pages)
			pages = fit ? (unsigned)fit : 1;
	}
	return pages;
}

unsigned readahead_sync_pages(const struct fl_engine *e,
			      const struct fl_mapping *m)
{
	if (m->advice == MADV_RANDOM)
		return 1;
	return readahead_fit(m, e->config.readahead_pages);
}

/* Credit pages read to the mapping that asked, if it is still there. */
static void readahead_count(struct fl_engine *e, struct work *w, long n)
{
	struct fl_mapping *m;

	map_read_lock(e);
	m = mapping_find(&e->mappings, w->addr);
	if (m && m->object == w->object &&
	    mapping_index(m, w->addr) == w->index)
		count_add(&m->stats, pages_read, (uint64_t)n);
	map_unlock(e);
}

static void readahead_work(struct fl_engine *e, struct work *w)
{
	struct fl_group *g = w->arg, *over;
	uint64_t want;
	long n = pagecache_start_read(w->object, w->index, w->count, g, &over,
				      &want);

	if (n == -EDQUOT && reclaim_group(over, want)) /* make room, once */
		n = pagecache_start_read(w->object, w->index, w->count, g,
					 &over, &want);
	/* A failed read drops its pages: a fault there reads them again. */
	if (n > 0 && pagecache_read(w->object, w->index, (unsigned long)n,
				    w->index) == 0)
		readahead_count(e, w, n);
	object_put(w->object);
	atomic_fetch_sub(&g->pins, 1);
	free(w);
}

static void readahead_cancel(struct work *w)
{
	struct fl_group *g = w->arg;

	object_put(w->object);
	atomic_fetch_sub(&g->pins, 1);
	free(w);
}

static void readahead_post(struct fl_engine *e, struct fl_mapping *m,
			   struct fl_object *o, uint64_t index,
			   unsigned long count)
{
	struct work *w;

	if (index >= o->nr_pages || !(w = malloc(sizeof(*w))))
		return; /* readahead is only ever a hint */
	object_get(o);
	atomic_fetch_add(&m->group->pins, 1);
	*w = (struct work){.fn = readahead_work,
			   .arg = m->group,
			   .cancel = readahead_cancel,
			   .object = o,
			   .index = index,
			   .count = count,
			   .addr = m->start +
				   ((index - m->pgoff) << PAGE_SHIFT)};
	threads_post_work(e, w);
}

void readahead_update(struct fl_engine *e, struct fl_mapping *m,
		      struct fl_object *o, uint64_t index, unsigned long count)
{
	unsigned window = readahead_fit(m, e->config.readahead_pages);
	uint64_t next = atomic_load(&m->ra_next);
	uint64_t trigger = atomic_load(&m->ra_trigger);

	if (m->advice == MADV_RANDOM || window < 2)
		return;
	if (count) { /* a miss: [index, index + count) is read now */
		uint64_t end = index + count;

		if (m->advice != MADV_SEQUENTIAL && index != next &&
		    index != trigger) {
			/* Not sequential (yet): remember where this read ends.
			 */
			atomic_store(&m->ra_next, end);
			atomic_store(&m->ra_trigger, UINT64_MAX);
			return;
		}
		/* Handlers may race here: the one that moves ra_next posts. */
		if (!atomic_compare_exchange_strong(
			    &m->ra_next, &next,
			    end + (uint64_t)READAHEAD_DEPTH * window))
			return;
		atomic_store(&m->ra_trigger, end);
		for (int i = 0; i < READAHEAD_DEPTH; i++)
			readahead_post(e, m, o, end + (uint64_t)i * window,
				       window);
		return;
	}
	/* A hit at the trigger: the reader reached the first window read
	 * ahead; keep READAHEAD_DEPTH windows in flight beyond it. */
	if (index != trigger ||
	    !atomic_compare_exchange_strong(&m->ra_trigger, &trigger,
					    index + window))
		return;
	atomic_store(&m->ra_next, next + window);
	readahead_post(e, m, o, next, window);
}
