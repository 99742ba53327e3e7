/* SPDX-License-Identifier: MIT */
/*
 * Writeback: dirty pages of an object written to its store, for fl_msync,
 * the unmap of an object's last mapping, object release, engine destroy and
 * reclaim.  A run of consecutive dirty pages is cleaned under the map lock
 * (write-protected in every shared view, so that a store racing with
 * writeback faults and re-dirties the page), then written with no lock
 * held.  A page whose write failed stays dirty and the writeback reports
 * EIO; the other pages of its run are written.
 */
#define _GNU_SOURCE
#include <errno.h>

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "aio.h"
#include "deadline.h"
#include "engine.h"
#include "flusher.h"
#include "group.h"
#include "object.h"
#include "uffd.h"
#include "writeback.h"

/* The kernel's fault-around window, in pages (64 KiB). */
#define VIEW_AROUND_PAGES 16
/* Pages I/O may leave mapped in the engine's view of an object before it
 * is emptied (1 MiB). */
#define VIEW_DROP_PAGES 256

/* A writer waiting this long for its writes runs ready completions
 * itself (none may be left to run them: engine teardown). */
#define WB_REAP_AFTER_NS 5000000
/* How often a waiting writer with a tick runs it. */
#define WB_TICK_NS 1000000

/* Runs a foreground writeback (fl_msync...) keeps in flight. */
#define WB_FG_IN_FLIGHT 32

/* Longest run written back in one store write. */
#define WRITEBACK_BATCH 256

int object_mkclean(struct fl_object *o, uint64_t first, uint64_t last)
{
	uint64_t lo, hi;
	int rc = 0;

	/* The next store through each view faults: page_mkwrite. */
	for (struct fl_mapping *m = o->mappings; m; m = m->obj_next)
		if (m->kind == MAP_KIND_SHARED &&
		    mapping_clamp(m, first, last, &lo, &hi) &&
		    uffd_writeprotect(o->engine->uffd, mapping_addr(m, lo),
				      (hi - lo + 1) << PAGE_SHIFT, 1))
			rc = -errno;
	return rc;
}

/*
 * Collect up to WRITEBACK_BATCH dirty pages with consecutive indices from
 * *index on, with a reference each.  No lock held.  Returns how many.
 */
static unsigned wb_gather(struct fl_object *o, uint64_t *index, uint64_t last,
			  struct fl_page **pages)
{
	unsigned n = 0;
	uint64_t i = *index;
	struct fl_page *page;

	pthread_rwlock_rdlock(&o->lock);
	while (n < WRITEBACK_BATCH &&
	       (page = radix_next(&o->pages, &i, last))) {
		if (page_test(page, PG_DIRTY)) {
			if (n && i != *index + n)
				break;
			if (n == 0)
				*index = i;
			page_get(page);
			pages[n++] = page;
		} else if (n) {
			break;
		}
		if (i++ == last)
			break;
	}
	pthread_rwlock_unlock(&o->lock);
	return n;
}

/* Locked pages whose cleaning failed: dirty again, not under writeback. */
static void wb_undo_start(struct fl_object *o, struct fl_page **pages,
			  unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		pagecache_mark_dirty(o, pages[i]);
		writeback_account(pages[i], -1);
		page_clear_and_wake(pages[i], PG_WRITEBACK);
	}
}

/*
 * Lock as many of pages[0..n) as can be locked at once, clear their dirty
 * bits and write-protect them in every view, all under the map lock, so
 * that a store racing with writeback faults and re-dirties the page.
 * Takes and drops the map lock (read) and the page locks; none held on
 * entry or return.  Returns how many pages (a prefix) are now under
 * writeback; 0 means the first page was busy and the caller should wait
 * for it; a negative errno if the views could not be write-protected
 * (then the pages stay dirty and -ret pages were skipped: *skipped).
 */
static int wb_start(struct fl_object *o, struct fl_page **pages, unsigned n,
		    uint64_t index, unsigned *skipped)
{
	unsigned locked = 0;
	uint64_t cleaned = 0;
	int rc = 0;

	map_read_lock(o->engine);
	while (locked < n && page_trylock(pages[locked])) {
		if (page_test(pages[locked], PG_WRITEBACK)) {
			page_unlock(pages[locked]);
			break;
		}
		locked++;
	}
	for (unsigned i = 0; i < locked; i++) {
		pagecache_clear_dirty(o, pages[i]);
		page_test_and_set(pages[i], PG_WRITEBACK);
		writeback_account(pages[i], 1);
	}
	/*
	 * Numbered once the views are protected, the page locks still held:
	 * a message read before has this number or an earlier one
	 * (fault_predates_clean).  So has one whose store a lift's deferred
	 * wake let through just before the protection: it was read before
	 * that wake, and the store is in this writeback.
	 */
	if (locked) {
		rc = object_mkclean(o, index, index + locked - 1);
		cleaned = atomic_fetch_add(&o->engine->msg_batches, 1) + 1;
	}
	for (unsigned i = 0; i < locked; i++)
		atomic_store(&pages[i]->cleaned_batch, cleaned);
	if (rc) /* a view may still be writable: the pages stay dirty */
		wb_undo_start(o, pages, locked);
	map_unlock(o->engine);
	for (unsigned i = 0; i < locked; i++)
		page_unlock(pages[i]);
	*skipped = rc ? locked : 0;
	return rc ? rc : (int)locked;
}

/* Write pages [index, index+n) to the store; the object's size cuts it.
 * No lock held.  0 or a negative errno. */
static int wb_write(struct fl_object *o, uint64_t index, unsigned n)
{
	uint64_t off = index << PAGE_SHIFT, len = (uint64_t)n << PAGE_SHIFT;
	const char *buf = object_page_data(o, index);
	uint64_t done = 0;

	if (off + len > o->size)
		len = o->size - off;
	while (done < len) {
		ssize_t w = o->store->ops->write(o->store, buf + done,
						 len - done, off + done);

		if (w <= 0)
			return w < 0 && errno ? -errno : -EIO;
		done += (uint64_t)w;
	}
	return 0;
}

/* Credit the pages written in [first, last] to the shared views of them. */
static void wb_count_mappings(struct fl_object *o, uint64_t first,
			      uint64_t last)
{
	uint64_t lo, hi;

	map_read_lock(o->engine);
	for (struct fl_mapping *m = o->mappings; m; m = m->obj_next)
		if (m->kind == MAP_KIND_SHARED &&
		    mapping_clamp(m, first, last, &lo, &hi))
			count_add(&m->stats, pages_written, hi - lo + 1);
	map_unlock(o->engine);
}

static void wb_end_run(struct fl_object *o, struct fl_page **pages, unsigned n,
		       uint64_t index, const unsigned char *failed,
		       unsigned nr_failed);

/*
 * Write the run pages[0..n) (under writeback, at index) and end its
 * writeback.  If the run fails as a whole, each page is written on its
 * own, so that one bad page keeps only itself dirty.  Counted (and any
 * error recorded) before a waiter for the pages wakes.  Returns the
 * number of pages that failed.
 */

static unsigned wb_write_run(struct fl_object *o, struct fl_page **pages,
			     unsigned n, uint64_t index)
{
	unsigned char failed[WRITEBACK_BATCH] = {0};
	unsigned nr_failed = 0;

	if (wb_write(o, index, n) < 0) {
		for (unsigned i = 0; i < n; i++) {
			failed[i] = n == 1 || wb_write(o, index + i, 1) < 0;
			nr_failed += failed[i];
		}
	}
	if (nr_failed)
		atomic_fetch_add(&o->wb_errors, 1);
	wb_end_run(o, pages, n, index, failed, nr_failed);
	return nr_failed;
}

/*
 * The end of a run's write: count it, credit the views, make the pages
 * that failed dirty again, end the writeback and wake waiters.  No lock
 * held (takes the map lock for reading).
 */
static void wb_end_run(struct fl_object *o, struct fl_page **pages, unsigned n,
		       uint64_t index, const unsigned char *failed,
		       unsigned nr_failed)
{
	if (nr_failed)
		count_add(&o->engine->stats, writeback_errors, nr_failed);
	count_add(&o->engine->stats, pages_written, n - nr_failed);
	for (unsigned i = 0, j; o->mappings && i < n; i = j) {
		/* Credit each run of pages written. */
		for (j = i; j < n && !failed[j]; j++)
			;
		if (j > i)
			wb_count_mappings(o, index + i, index + j - 1);
		else
			j++;
	}
	object_view_drop(o, index, n, 1);
	for (unsigned i = 0; i < n; i++) {
		if (failed[i])
			pagecache_mark_dirty(o, pages[i]);
		writeback_account(pages[i], -1);
		page_clear_and_wake(pages[i], PG_WRITEBACK);
	}
}

/*
 * Wait for the writes of [first, last] that other threads started (pages
 * under writeback but no longer dirty), as filemap_fdatawait_range does:
 * a writeback must not return before data it found clean is in the store.
 */
static void wb_wait_range(struct fl_object *o, uint64_t first, uint64_t last)
{
	uint64_t index = first;

	for (;;) {
		struct fl_page *page, *busy = NULL;

		pthread_rwlock_rdlock(&o->lock);
		while ((page = radix_next(&o->pages, &index, last))) {
			if (page_test(page, PG_WRITEBACK)) {
				page_get(page);
				busy = page;
				break;
			}
			if (index++ == last)
				break;
		}
		pthread_rwlock_unlock(&o->lock);
		if (!busy)
			return;
		page_wait_clear(busy, PG_WRITEBACK);
		page_put(busy);
		if (index++ == last)
			return;
	}
}

static int wb_submit_run(struct wb_batch *b, struct fl_object *o,
			 struct fl_page **pages, unsigned n, uint64_t index);

/* Write the run under writeback: submitted (up to WB_FG_IN_FLIGHT runs in
 * flight in b) where the store can, else here.  Returns pages that failed
 * here (a submitted run's failures are counted in b). */
static unsigned wb_write_or_submit(struct wb_batch *b, struct fl_object *o,
				   struct fl_page **pages, unsigned n,
				   uint64_t index)
{
	wb_batch_wait(b, WB_FG_IN_FLIGHT - 1);
	if (wb_submit_run(b, o, pages, n, index) == 0)
		return 0;
	return wb_write_run(o, pages, n, index);
}

int object_writeback(struct fl_object *o, uint64_t first, uint64_t last)
{
	struct fl_page *pages[WRITEBACK_BATCH];
	uint64_t index = first, errors = atomic_load(&o->wb_errors);
	int failed = 0, wrote = 0;
	struct wb_batch b;
	unsigned n;

	fl_assert_may_block(); /* it takes the map lock and waits */
	if (!o->store || !o->writable)
		return 0;
	wb_batch_init(&b, o->engine);
	while (index <= last && (n = wb_gather(o, &index, last, pages))) {
		unsigned skipped;
		int started = wb_start(o, pages, n, index, &skipped);

		if (started == 0) {
			/* Busy: wait without the map lock (for our own writes
			 * first: it may be one of them), then look again. */
			wb_batch_wait(&b, 0);
			page_wait_clear(pages[0], PG_LOCKED | PG_WRITEBACK);
		} else if (started < 0) { /* could not clean: left dirty */
			failed = 1;
			index += skipped ? skipped : 1;
		} else {
			failed |= wb_write_or_submit(&b, o, pages,
						     (unsigned)started,
						     index) > 0;
			wrote = 1;
			index += (unsigned)started;
		}
		for (unsigned i = 0; i < n; i++)
			page_put(pages[i]);
	}
	wb_batch_wait(&b, 0);
	failed |= b.failed > 0;
	wb_batch_destroy(&b);
	wb_wait_range(o, first, last);
	if (wrote && o->store->ops->flush && o->store->ops->flush(o->store))
		failed = 1;
	if (failed || atomic_load(&o->wb_errors) != errors) {
		errno = EIO;
		return -1;
	}
	return 0;
}

/* ---- several runs in flight (the flusher, reclaim) ----------------------- */

void object_view_drop(struct fl_object *o, uint64_t index, uint64_t n,
		      int write)
{
	/* The pages the I/O mapped: a write's read fault also maps the
	 * cached neighbours (the kernel's fault-around, 64 KiB). */
	uint64_t around = write ? VIEW_AROUND_PAGES : 0;
	uint64_t add = n + around, mapped, lo, hi;

	if (!o->nr_pages)
		return;
	/*
	 * A large I/O (a readahead window, a writeback run) empties its own
	 * range at once: one zap per window costs one TLB flush per window,
	 * and emptying the whole view instead would also unmap the windows
	 * other threads are still reading into (each of their pages then
	 * faults again, page by page).
	 */
	if (n >= VIEW_DROP_PAGES) {
		lo = index > around ? index - around : 0;
		hi = index + n + around < o->nr_pages ? index + n + around
						      : o->nr_pages;
		madvise(o->view + (lo << PAGE_SHIFT), (hi - lo) << PAGE_SHIFT,
			MADV_DONTNEED);
		return;
	}
	mapped = atomic_fetch_add(&o->view_mapped, add) + add;
	/* Of threads crossing the mark together, one empties the view (the
	 * others' small counts may be lost: a view emptied a little later). */
	if (mapped < VIEW_DROP_PAGES ||
	    atomic_exchange(&o->view_mapped, 0) < VIEW_DROP_PAGES)
		return;
	/* One zap of the whole view, not one (and one TLB shootdown) per
	 * small I/O.  Zapping a page under I/O is harmless: the I/O holds
	 * it, and a later touch maps it again.  A failure leaves the pages
	 * mapped twice: counted, not lost. */
	madvise(o->view, o->nr_pages << PAGE_SHIFT, MADV_DONTNEED);
}

void writeback_account(struct fl_page *page, int delta)
{
	for (struct fl_group *g = page->group; g; g = g->parent)
		atomic_fetch_add(&g->writeback, (uint64_t)(int64_t)delta);
}

void wb_batch_init(struct wb_batch *b, struct fl_engine *e)
{
	b->e = e;
	b->tick = NULL;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->cond, NULL);
	b->in_flight = 0;
	b->written = b->failed = 0;
}

void wb_batch_wait(struct wb_batch *b, unsigned max)
{
	/* With a tick, wake every WB_TICK_NS to run it. */
	uint64_t step = b->tick ? WB_TICK_NS : WB_REAP_AFTER_NS, waited = 0;

	pthread_mutex_lock(&b->lock);
	while (b->in_flight > max) {
		struct timespec ts = deadline_after(CLOCK_REALTIME, step);

		if (pthread_cond_timedwait(&b->cond, &b->lock, &ts) == 0)
			continue;
		waited += step;
		pthread_mutex_unlock(&b->lock);
		if (b->tick)
			b->tick(b->e);
		/* No completion for a while: run what is ready here. */
		if (waited >= WB_REAP_AFTER_NS && b->e->aio) {
			waited = 0;
			aio_reap(b->e);
		}
		pthread_mutex_lock(&b->lock);
	}
	pthread_mutex_unlock(&b->lock);
}

void wb_batch_destroy(struct wb_batch *b)
{
	pthread_cond_destroy(&b->cond);
	pthread_mutex_destroy(&b->lock);
}

/* Pages of b written or failed outside any request. */
static void wb_batch_add(struct wb_batch *b, unsigned written, unsigned failed)
{
	pthread_mutex_lock(&b->lock);
	b->written += written;
	b->failed += failed;
	pthread_mutex_unlock(&b->lock);
}

static void wb_batch_done(struct wb_batch *b, unsigned written, unsigned failed)
{
	pthread_mutex_lock(&b->lock);
	b->in_flight--;
	b->written += written;
	b->failed += failed;
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
}

/* A run submitted to the store: the pages (a reference each), under
 * writeback, and the batch to tell. */
struct wb_async {
	struct store_req req;
	struct wb_batch *batch;
	unsigned n;
	struct fl_page *pages[];
};

static int wb_submit_run(struct wb_batch *b, struct fl_object *o,
			 struct fl_page **pages, unsigned n, uint64_t index);

/* The failed run a: submit each page again alone (a page that cannot be
 * submitted fails at once), then free a.  No lock held. */
static void wb_async_split(struct wb_async *a)
{
	struct fl_object *o = a->req.o;
	unsigned char one = 1;

	for (unsigned i = 0; i < a->n; i++)
		if (wb_submit_run(a->batch, o, a->pages + i, 1,
				  a->req.index + i)) {
			atomic_fetch_add(&o->wb_errors, 1);
			wb_end_run(o, a->pages + i, 1, a->req.index + i, &one,
				   1);
			wb_batch_add(a->batch, 0, 1);
		}
	for (unsigned i = 0; i < a->n; i++)
		page_put(a->pages[i]);
	wb_batch_done(a->batch, 0, 0);
	object_put(o);
	free(a);
}

/*
 * A submitted write completed (on a handler thread, or cancelled in
 * engine teardown: the result stands either way).  A short write goes on
 * from where it stopped; a run that failed is written again page by page
 * (wb_async_split); a page that failed stays dirty, to be written again
 * later (fl_msync reports EIO if it fails then too).  No lock held.
 */
static void wb_async_complete(struct store_req *req, int cancelled)
{
	struct wb_async *a = (struct wb_async *)req;
	struct fl_object *o = req->o;
	uint64_t off = req->index << PAGE_SHIFT;
	uint64_t len = (uint64_t)a->n << PAGE_SHIFT;
	unsigned char failed[WRITEBACK_BATCH];
	unsigned nr_failed = 0;

	if (off + len > o->size) /* the object's end cuts the write */
		len = o->size > off ? o->size - off : 0;
	if (req->result > 0 && (uint64_t)req->result <= len - req->done) {
		req->done += (uint64_t)req->result;
		if (req->done < len && !cancelled && aio_submit(req) == 0)
			return; /* the rest of a short write */
	}
	if (req->done < len)
		nr_failed = a->n;
	/* A run that failed as a whole: each page again on its own, so
	 * that one bad page keeps only itself dirty (as wb_write_run). */
	if (nr_failed > 1 && !cancelled) {
		wb_async_split(a);
		return;
	}
	memset(failed, nr_failed != 0, a->n);
	if (nr_failed) /* a writeback running now reports it (errseq) */
		atomic_fetch_add(&o->wb_errors, 1);
	wb_end_run(o, a->pages, a->n, req->index, failed, nr_failed);
	for (unsigned i = 0; i < a->n; i++)
		page_put(a->pages[i]);
	wb_batch_done(a->batch, a->n - nr_failed, nr_failed);
	object_put(o);
	free(a);
}

/* Engine teardown (the handler threads stop, or have): write at once,
 * rather than wait for completions that only this thread could run. */
static int engine_stopping(struct fl_object *o)
{
	struct fl_engine *e = o->engine;
	int stopping;

	pthread_mutex_lock(&e->threads_lock);
	stopping = e->stopping;
	pthread_mutex_unlock(&e->threads_lock);
	return stopping;
}

/*
 * Submit the run pages[0..n) of o (under writeback, at index) to the
 * store.  0 if started (the completion ends it), or -1: not started (no
 * asynchronous path, no memory), nothing changed.
 */
static int wb_submit_run(struct wb_batch *b, struct fl_object *o,
			 struct fl_page **pages, unsigned n, uint64_t index)
{
	struct wb_async *a;

	if (!o->store->ops->submit || !o->engine->aio || engine_stopping(o))
		return -1;
	a = malloc(sizeof(*a) + n * sizeof(a->pages[0]));
	if (!a)
		return -1;
	a->req = (struct store_req){.e = o->engine,
				    .o = o,
				    .index = index,
				    .count = n,
				    .write = 1,
				    .complete = wb_async_complete};
	a->batch = b;
	a->n = n;
	for (unsigned i = 0; i < n; i++) {
		page_get(pages[i]);
		a->pages[i] = pages[i];
	}
	object_get(o);
	pthread_mutex_lock(&b->lock);
	b->in_flight++;
	pthread_mutex_unlock(&b->lock);
	if (aio_submit(&a->req) == 0)
		return 0;
	pthread_mutex_lock(&b->lock);
	b->in_flight--;
	pthread_mutex_unlock(&b->lock);
	object_put(o);
	for (unsigned i = 0; i < n; i++)
		page_put(pages[i]);
	free(a);
	return -1;
}

/* How many of pages[i..n) make one run: same object, consecutive, at
 * most WRITEBACK_BATCH. */
static unsigned wb_run_length(struct fl_page **pages, unsigned i, unsigned n)
{
	unsigned j = i + 1;

	while (j < n && j - i < WRITEBACK_BATCH &&
	       pages[j]->object == pages[i]->object &&
	       pages[j]->index == pages[j - 1]->index + 1)
		j++;
	return j - i;
}

uint64_t writeback_pages(struct wb_batch *b, struct fl_page **pages, unsigned n,
			 unsigned max_in_flight)
{
	uint64_t started_pages = 0;

	fl_assert_may_block(); /* it takes the map lock, may write */
	for (unsigned i = 0, len; i < n; i += len) {
		struct fl_object *o = pages[i]->object;
		unsigned skipped, nf;
		int started;

		len = wb_run_length(pages, i, n);
		/* A page cleaned or taken meanwhile ends the run there. */
		for (unsigned k = 0; k < len; k++)
			if (!page_test(pages[i + k], PG_DIRTY)) {
				len = k ? k : 1;
				break;
			}
		if (!o->store || !o->writable || !page_test(pages[i], PG_DIRTY))
			continue;
		started =
			wb_start(o, pages + i, len, pages[i]->index, &skipped);
		if (started <= 0) {
			len = 1; /* busy, or its views could not be protected */
			continue;
		}
		len = (unsigned)started;
		started_pages += len;
		wb_batch_wait(b, max_in_flight ? max_in_flight - 1 : 0);
		if (wb_submit_run(b, o, pages + i, len, pages[i]->index) == 0)
			continue;
		/* No asynchronous path: written here (the tick runs between
		 * runs, as while waiting). */
		pthread_mutex_lock(&b->lock);
		b->in_flight++;
		pthread_mutex_unlock(&b->lock);
		nf = wb_write_run(o, pages + i, len, pages[i]->index);
		wb_batch_done(b, len - nf, nf);
		if (b->tick)
			b->tick(b->e);
	}
	return started_pages;
}
