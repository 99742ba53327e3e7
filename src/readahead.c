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

#include "aio.h"
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

static void readahead_free(struct work *w)
{
	struct fl_group *g = w->arg;

	object_put(w->object);
	atomic_fetch_sub(&g->pins, 1);
	free(w);
}

/* A window submitted to the store is done (or cancelled at destroy). */
static void readahead_read_done(void *arg, int err, int cancelled)
{
	struct work *w = arg;

	if (err || cancelled) /* its pages were dropped: no credit */
		readahead_count(w->object->engine, w, -(long)w->count);
	readahead_free(w);
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
			     .mark = w->index,
			     .stream = -1};
	uint64_t want;
	long n = pagecache_start_run(w->object, &run, g, &over, &want);

	/* No room: made by evicting pages the reader has used, never the
	 * windows read ahead and unused (readahead evicting its own
	 * readahead); if there is none, the window is dropped. */
	if (n == -EDQUOT &&
	    reclaim_for_readahead(
		    over, want,
		    &(struct readahead_spare){w->object, w->reader, w->index}))
		n = pagecache_start_run(w->object, &run, g, &over, &want);

	/* A failed read drops its pages: a fault there reads them again.
	 * Submitted where the store can (the window completes on a handler
	 * thread, and this I/O thread goes on), else read here. */
	if (n > 0) {
		count_add(&e->stats, readahead_pages, (uint64_t)n);
		readahead_count(e, w, n);
		w->count = (uint64_t)n;
		if (pagecache_read_start(w->object, run.first, (unsigned long)n,
					 run.first, readahead_read_done,
					 w) == 0)
			return; /* readahead_read_done finishes w */
		if (pagecache_read(w->object, run.first, (unsigned long)n,
				   run.first))
			readahead_count(e, w, -n);
	}
	readahead_free(w);
}

/* Queue a window of count pages at index for an I/O thread; its stream's
 * reader is at page reader. */
static void readahead_post(struct fl_engine *e, struct fl_mapping *m,
			   struct fl_object *o, uint64_t index,
			   unsigned long count, uint64_t reader)
{
	struct work *w;

	if (index >= o->nr_pages || !(w = malloc(sizeof(*w))))
		return; /* readahead is only ever a hint */
	object_get(o);
	atomic_fetch_add(&m->group->pins, 1);
	*w = (struct work){.fn = readahead_work,
			   .arg = m->group,
			   .cancel = readahead_free,
			   .object = o,
			   .index = index,
			   .count = count,
			   .reader = reader,
			   .addr = m->start +
				   ((index - m->pgoff) << PAGE_SHIFT)};
	threads_post_work(e, w);
}

/* The next window of stream st: growing fourfold to the most that fits. */
static unsigned long readahead_next_window(const struct fl_engine *e,
					   const struct fl_mapping *m,
					   struct ra_stream *st)
{
	unsigned long max = readahead_fit(m, e->config.readahead_pages);
	unsigned long w =
		atomic_load_explicit(&st->window, memory_order_relaxed);

	w = w ? w * 4 : RA_INIT_PAGES;
	if (w > max)
		w = max;
	atomic_store_explicit(&st->window, (unsigned)w, memory_order_relaxed);
	return w;
}

/*
 * The stream a miss (or a marked page) at index belongs to: just past
 * where the stream last read, or a little ahead of where its reader last
 * faulted, inside the windows it queued and has not read yet (the reader
 * overtook them).  NULL if none: a random fault elsewhere in the mapping
 * is not taken for the stream.
 */
static struct ra_stream *readahead_stream_at(struct fl_mapping *m,
					     uint64_t index)
{
	for (int i = 0; i < RA_STREAMS; i++) {
		struct ra_stream *st = &m->ra[i];
		uint64_t next = atomic_load(&st->next);
		uint64_t reader = atomic_load(&st->reader);
		unsigned w =
			atomic_load_explicit(&st->window, memory_order_relaxed);

		if (index == next ||
		    (w && index < next && index > reader &&
		     index - reader <= (uint64_t)w * (READAHEAD_DEPTH + 1)))
			return st;
	}
	return NULL;
}

/*
 * A slot for a possible new stream: one that has not started (no window),
 * else the least recently begun.  A random reader's misses so churn only
 * the slots no stream uses, and a scan beside it keeps its own.
 */
static struct ra_stream *readahead_stream_new(struct fl_mapping *m)
{
	unsigned clock = atomic_fetch_add(&m->ra_clock, 1);

	for (int i = 0; i < RA_STREAMS; i++) {
		struct ra_stream *st = &m->ra[(clock + i) % RA_STREAMS];

		if (!atomic_load_explicit(&st->window, memory_order_relaxed))
			return st;
	}
	return &m->ra[clock % RA_STREAMS];
}

int readahead_random(struct fl_mapping *m, uint64_t index)
{
	if (m->advice == MADV_RANDOM)
		return 1;
	return atomic_load_explicit(&m->mmap_miss, memory_order_relaxed) >
		       RA_LOTSAMISS &&
	       !readahead_stream_at(m, index);
}

void readahead_plan(struct fl_engine *e, struct fl_mapping *m, uint64_t index,
		    struct ra_run *run)
{
	struct ra_stream *st;
	unsigned miss;

	*run = ra_run_from(index, 1);
	if (m->advice == MADV_RANDOM)
		return;
	/* Sequential: a window from here, marked halfway so that the reader
	 * starts the next one before it runs out; never behind (those
	 * pages were used). */
	st = readahead_stream_at(m, index);
	if (st || m->advice == MADV_SEQUENTIAL) {
		if (!st)
			st = readahead_stream_new(m);
		run->stream = (int)(st - m->ra);
		run->max = readahead_next_window(e, m, st);
		if (run->max > 1)
			run->mark = index + run->max / 2;
		return;
	}
	/* Unknown or random: read around the fault until read-around pages
	 * keep going unused, then the faulting page alone.  Where the read
	 * ends, a stream may begin. */
	run->stream = (int)(readahead_stream_new(m) - m->ra);
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

/* Queue windows of st from start on, each marked at its first page, until
 * READAHEAD_DEPTH windows are in flight beyond reader (or the end). */
static void readahead_queue(struct fl_engine *e, struct fl_mapping *m,
			    struct fl_object *o, struct ra_stream *st,
			    uint64_t start, uint64_t reader)
{
	for (int i = 0; i < READAHEAD_DEPTH && start < o->nr_pages; i++) {
		unsigned long window = readahead_next_window(e, m, st);

		atomic_store(&st->next, start + window);
		readahead_post(e, m, o, start, window, reader);
		start += window;
		if (start - reader > READAHEAD_DEPTH * window)
			break; /* far enough ahead */
	}
}

void readahead_missed(struct fl_engine *e, struct fl_mapping *m,
		      struct fl_object *o, const struct ra_run *run,
		      unsigned long n)
{
	struct ra_stream *st;
	uint64_t end = run->first + n;

	if (run->stream < 0)
		return;
	st = &m->ra[run->stream];
	if (run->mark == UINT64_MAX) { /* a stream may begin where it ends */
		atomic_store(&st->next, end);
		atomic_store_explicit(&st->window, 0, memory_order_relaxed);
		return;
	}
	/* A sequential miss: the reader waits for this window; queue the
	 * ones after it now. */
	atomic_store(&st->reader, run->index);
	atomic_store(&st->next, end);
	readahead_queue(e, m, o, st, end, run->index);
}

int readahead_hit(struct fl_engine *e, struct fl_mapping *m,
		  struct fl_object *o, struct fl_page *page)
{
	struct ra_stream *st;
	uint64_t next;
	unsigned miss;
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
	/* The reader reached a marked page: its stream goes on.  Keep
	 * READAHEAD_DEPTH windows in flight beyond it. */
	st = readahead_stream_at(m, page->index);
	if (!st) {
		st = readahead_stream_new(m);
		atomic_store(&st->next, page->index + 1);
	}
	atomic_store(&st->reader, page->index);
	next = atomic_load(&st->next);
	readahead_queue(e, m, o, st,
			next > page->index ? next : page->index + 1,
			page->index);
	return used;
}
