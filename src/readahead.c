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
#include "stats.h"

/* Windows kept in flight ahead of a sequential reader. */
#define READAHEAD_DEPTH 2
/* Read-around around a fault of unknown pattern (128 KiB, the kernel's
 * default), the first window of a sequential stream, and how many more
 * misses than read-around pages used make a mapping random (the kernel's
 * MMAP_LOTSAMISS is 100; fewer here: faultline's misses cost more). */
#define RA_AROUND_PAGES 32
#define RA_INIT_PAGES	32
#define RA_LOTSAMISS	16

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

/*
 * Credit pages read to the mapping that asked, if it is still there: n
 * pages, or -n to take a credit back.  Credited before the pages can be
 * seen, so that a reader that sees them sees the count too.
 */
static void readahead_count(struct fl_engine *e, struct work *w, long n)
{
	struct fl_mapping *m;

	map_read_lock(e);
	m = mapping_find(&e->mappings, w->addr);
	if (m && m->object == w->object &&
	    mapping_index(m, w->addr) == w->index) {
		if (w->object->store)
			count_add(&m->stats, pages_read, (uint64_t)n);
		else /* shared anonymous memory: zeros */
			count_add(&m->stats, zero_fills, (uint64_t)n);
		count_add(&m->stats, readahead_pages, (uint64_t)n);
	}
	map_unlock(e);
}

static void readahead_work(struct fl_engine *e, struct work *w)
{
	struct fl_group *g = w->arg, *over;
	/* If a fault read the start of the window meanwhile, the reader got
	 * there first and read on itself: the window is dropped (reading
	 * the rest late could read again what the reader used and reclaim
	 * took). */
	struct ra_run run = {.index = w->index,
			     .max = w->count,
			     .demand = UINT64_MAX,
			     .mark = w->index};
	uint64_t want;
	/* No room: the window is dropped, never made room for.  Reclaim
	 * would take the oldest unused pages, which are the windows read
	 * ahead before this one: readahead evicting its own readahead. */
	long n = pagecache_start_run(w->object, &run, g, &over, &want);
	if (n > 0)
		count_add(&e->stats, readahead_pages, (uint64_t)n);
	/* A failed read drops its pages: a fault there reads them again. */
	if (n > 0) {
		readahead_count(e, w, n);
		if (pagecache_read(w->object, run.first, (unsigned long)n,
				   run.first))
			readahead_count(e, w, -n);
	}
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

/* The next window of a sequential stream: growing fourfold to the most
 * that fits. */
static unsigned long readahead_next_window(const struct fl_engine *e,
					   struct fl_mapping *m)
{
	unsigned long max = readahead_fit(m, e->config.readahead_pages);
	unsigned long w =
		atomic_load_explicit(&m->ra_window, memory_order_relaxed);

	w = w ? w * 4 : RA_INIT_PAGES;
	if (w > max)
		w = max;
	atomic_store_explicit(&m->ra_window, (unsigned)w, memory_order_relaxed);
	return w;
}

/* Whether a miss at index falls in the windows a sequential stream has
 * queued and not yet read (the reader overtook them). */
static int readahead_in_stream(const struct fl_mapping *m, uint64_t index,
			       uint64_t next)
{
	unsigned window =
		atomic_load_explicit(&m->ra_window, memory_order_relaxed);

	return window && index < next &&
	       next - index <= (uint64_t)window * (READAHEAD_DEPTH + 2);
}

int readahead_random(const struct fl_mapping *m)
{
	return m->advice == MADV_RANDOM ||
	       atomic_load_explicit(&m->mmap_miss, memory_order_relaxed) >
		       RA_LOTSAMISS;
}

void readahead_plan(struct fl_engine *e, struct fl_mapping *m, uint64_t index,
		    struct ra_run *run)
{
	uint64_t next = atomic_load(&m->ra_next);
	unsigned miss;

	*run = (struct ra_run){
		.index = index, .max = 1, .demand = index, .mark = UINT64_MAX};
	if (m->advice == MADV_RANDOM)
		return;
	/* Sequential: just past the last read, or a reader that caught up
	 * with windows queued and not read yet.  A window from here, marked
	 * halfway so that the reader starts the next one before it runs
	 * out; never behind (those pages were used). */
	if (m->advice == MADV_SEQUENTIAL || index == next ||
	    readahead_in_stream(m, index, next)) {
		atomic_store(&m->mmap_miss, 0);
		run->max = readahead_next_window(e, m);
		if (run->max > 1)
			run->mark = index + run->max / 2;
		return;
	}
	/* Unknown or random: read around the fault until read-around pages
	 * keep going unused, then the faulting page alone. */
	atomic_store_explicit(&m->ra_window, 0, memory_order_relaxed);
	miss = atomic_load_explicit(&m->mmap_miss, memory_order_relaxed);
	if (miss < RA_LOTSAMISS * 10)
		atomic_store_explicit(&m->mmap_miss, miss + 1,
				      memory_order_relaxed);
	if (miss + 1 > RA_LOTSAMISS)
		return;
	run->max = readahead_fit(m, e->config.readahead_pages < RA_AROUND_PAGES
					    ? e->config.readahead_pages
					    : RA_AROUND_PAGES);
	run->before = run->max / 2;
}

void readahead_missed(struct fl_engine *e, struct fl_mapping *m,
		      struct fl_object *o, const struct ra_run *run,
		      unsigned long n)
{
	uint64_t end = run->first + n, next = atomic_load(&m->ra_next);
	unsigned long window;

	if (run->mark == UINT64_MAX) { /* not a new sequential window */
		if (end > next)
			atomic_store(&m->ra_next, end);
		return;
	}
	/* A sequential miss: the reader waits for this window; queue the
	 * ones after it now, each marked at its first page. */
	atomic_store(&m->ra_next, end);
	next = end;
	for (int i = 0; i < READAHEAD_DEPTH && next < o->nr_pages; i++) {
		window = readahead_next_window(e, m);
		atomic_store(&m->ra_next, next + window);
		readahead_post(e, m, o, next, window);
		next += window;
	}
}

int readahead_hit(struct fl_engine *e, struct fl_mapping *m,
		  struct fl_object *o, struct fl_page *page)
{
	unsigned miss;
	uint64_t next, start;
	unsigned long window;
	int used = 0;

	if (page_test(page, PG_READAHEAD) &&
	    page_test_and_clear(page, PG_READAHEAD)) {
		used = 1;
		miss = atomic_load_explicit(&m->mmap_miss,
					    memory_order_relaxed);
		if (miss)
			atomic_store_explicit(&m->mmap_miss, miss - 1,
					      memory_order_relaxed);
	}
	if (!page_test(page, PG_RA_MARK) ||
	    !page_test_and_clear(page, PG_RA_MARK) || m->advice == MADV_RANDOM)
		return used;
	/* The reader reached a marked page: the stream is sequential. Keep
	 * READAHEAD_DEPTH windows in flight beyond it. */
	atomic_store(&m->mmap_miss, 0);
	next = atomic_load(&m->ra_next);
	start = next > page->index ? next : page->index + 1;
	for (int i = 0; i < READAHEAD_DEPTH; i++) {
		window = readahead_next_window(e, m);
		if (start >= o->nr_pages ||
		    !atomic_compare_exchange_strong(&m->ra_next, &next,
						    start + window))
			break; /* the end, or another handler posted it */
		readahead_post(e, m, o, start, window);
		if (start + window - page->index > READAHEAD_DEPTH * window)
			break; /* far enough ahead */
		next = start + window;
		start = next;
	}
	return used;
}
