/* SPDX-License-Identifier: MIT */
/*
 * Writing sets of dirty pages back with several writes in flight (the
 * flusher and reclaim; fl_msync and the others use object_writeback).
 * Each run of consecutive dirty pages is cleaned as object_writeback
 * cleans it, then submitted to the store (fl_store_ops.submit with
 * write = 1: the file store's io_uring) or, where the store has no
 * asynchronous path, written at once in the calling thread.  A write that
 * fails leaves its pages dirty (and counted in writeback_errors): a later
 * writeback tries again, and fl_msync reports EIO if it fails then too.
 */
#ifndef FL_WRITEBACK_H
#define FL_WRITEBACK_H

#include <pthread.h>
#include <stdint.h>

struct fl_engine;
struct fl_page;

/* The writes one writer has in flight; completions may run on any thread. */
struct wb_batch {
	struct fl_engine *e;
	/* Run about every millisecond while the writer waits for its writes
	 * (NULL: none); no lock held.  The flusher ends pauses in it. */
	void (*tick)(struct fl_engine *e);
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned in_flight;	  /* requests submitted, not yet completed */
	uint64_t written, failed; /* pages, as completions report them */
};

void wb_batch_init(struct wb_batch *b, struct fl_engine *e);
/* Wait until at most max requests are in flight (0: all done: then b may
 * be destroyed).  Completions that no handler thread runs meanwhile (the
 * handlers are busy, or gone in engine teardown) are run here.  No lock
 * held. */
void wb_batch_wait(struct wb_batch *b, unsigned max);
void wb_batch_destroy(struct wb_batch *b);

/*
 * Start writing back pages[0..n): each with a reference held by the
 * caller (and kept: the caller puts it), sorted by object then index, the
 * objects alive while this runs.  Pages no longer dirty, locked or already
 * under writeback are skipped.  At most max_in_flight requests of b are
 * in flight at once (it waits for completions before submitting more).
 * No lock held on entry (takes the map lock and page locks briefly).
 * Returns how many pages it started writing.
 */
uint64_t writeback_pages(struct wb_batch *b, struct fl_page **pages, unsigned n,
			 unsigned max_in_flight);

/*
 * A store read (write 0) or write (1) of n pages of o at index, through
 * the engine's view, is over.  The I/O mapped them in the view: a large
 * I/O (VIEW_DROP_PAGES or more, writeback.c) empties its own range of the
 * view at once; small ones are counted, and once they have mapped
 * VIEW_DROP_PAGES the whole view is emptied (not the cache).  So a cached
 * page is mapped, and counted in the process's resident memory, once per
 * user view, and in the engine's only for a while.  Never blocks.
 */
struct fl_object;
void object_view_drop(struct fl_object *o, uint64_t index, uint64_t n,
		      int write);

/* Pages of a group under writeback now: PG_WRITEBACK set / cleared. */
void writeback_account(struct fl_page *page, int delta);

#endif /* FL_WRITEBACK_H */
