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

#include "engine.h"
#include "object.h"
#include "uffd.h"

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
		atomic_store(&pages[i]->cleaned_batch,
			     atomic_load(&o->engine->msg_batches));
	}
	if (locked)
		rc = object_mkclean(o, index, index + locked - 1);
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
	if (nr_failed) {
		atomic_fetch_add(&o->wb_errors, 1);
		count_add(&o->engine->stats, writeback_errors, nr_failed);
	}
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
	for (unsigned i = 0; i < n; i++) {
		if (failed[i])
			pagecache_mark_dirty(o, pages[i]);
		page_clear_and_wake(pages[i], PG_WRITEBACK);
	}
	return nr_failed;
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

int object_writeback(struct fl_object *o, uint64_t first, uint64_t last)
{
	struct fl_page *pages[WRITEBACK_BATCH];
	uint64_t index = first, errors = atomic_load(&o->wb_errors);
	int failed = 0, wrote = 0;
	unsigned n;

	fl_assert_may_block(); /* it takes the map lock and waits */
	if (!o->store || !o->writable)
		return 0;
	while (index <= last && (n = wb_gather(o, &index, last, pages))) {
		unsigned skipped;
		int started = wb_start(o, pages, n, index, &skipped);

		if (started == 0) {
			/* Busy: wait without the map lock, then look again. */
			page_wait_clear(pages[0], PG_LOCKED | PG_WRITEBACK);
		} else if (started < 0) { /* could not clean: left dirty */
			failed = 1;
			index += skipped ? skipped : 1;
		} else {
			failed |= wb_write_run(o, pages, (unsigned)started,
					       index) > 0;
			wrote = 1;
			index += (unsigned)started;
		}
		for (unsigned i = 0; i < n; i++)
			page_put(pages[i]);
	}
	wb_wait_range(o, first, last);
	if (wrote && o->store->ops->flush && o->store->ops->flush(o->store))
		failed = 1;
	if (failed || atomic_load(&o->wb_errors) != errors) {
		errno = EIO;
		return -1;
	}
	return 0;
}
