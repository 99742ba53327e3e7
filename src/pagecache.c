/* SPDX-License-Identifier: MIT */
/*
 * Objects' page caches: lookup, filling from the store, dirty tracking and
 * writeback.  A page's data lives in the object's memfd at the page's
 * offset; its descriptor (struct fl_page) lives in the object's radix tree.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>

#include "engine.h"
#include "group.h"
#include "object.h"
#include "reclaim.h"
#include "uffd.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Longest run written back in one store write. */
#define WRITEBACK_BATCH 256

struct fl_page *pagecache_get(struct fl_object *o, uint64_t index)
{
	struct fl_page *page;

	pthread_rwlock_rdlock(&o->lock);
	page = radix_lookup(&o->pages, index);
	if (page)
		page_get(page);
	pthread_rwlock_unlock(&o->lock);
	return page;
}

/* Under the cache lock: how many pages from index are absent, up to max. */
static unsigned long absent_run(struct fl_object *o, uint64_t index,
				unsigned long max)
{
	unsigned long n = 0;

	while (n < max && index + n < o->nr_pages &&
	       !radix_lookup(&o->pages, index + n))
		n++;
	return n;
}

/* Under the cache lock: n pages charged to g, inserted locked. */
static unsigned long insert_locked(struct fl_object *o, uint64_t index,
				   unsigned long n, struct fl_group *g)
{
	unsigned long i;

	for (i = 0; i < n; i++) {
		struct fl_page *page = page_alloc(o, index + i, g);

		if (!page || radix_insert(&o->pages, index + i, page)) {
			if (page)
				page_put(page); /* uncharges it */
			else
				group_uncharge(g, 1);
			group_uncharge(g, n - i - 1);
			break; /* read the run we have */
		}
		atomic_store(&page->flags, PG_LOCKED);
		/* Without a store a page cannot be written back and read
		 * again: like anonymous memory, it stays (no swap yet). */
		if (o->store)
			lru_add(page);
	}
	return i;
}

long pagecache_start_read(struct fl_object *o, uint64_t index,
			  unsigned long max, struct fl_group *g,
			  struct fl_group **over, uint64_t *want)
{
	unsigned long n;

	pthread_rwlock_wrlock(&o->lock);
	n = absent_run(o, index, max);
	if (n == 0) { /* present: another fault read it */
		pthread_rwlock_unlock(&o->lock);
		return 0;
	}
	/*
	 * Charged in one step, before any page exists or is locked.  A full
	 * group reclaims room for the whole run (the caller does, on -2),
	 * unless the run is large beside the limit: then the faulting page
	 * alone is read, so that a small group still makes progress.
	 */
	if (group_try_charge(g, n, over)) {
		*want = n;
		if (n > atomic_load(&(*over)->max) / 4) {
			*want = 1;
			if (group_try_charge(g, 1, over)) {
				pthread_rwlock_unlock(&o->lock);
				return -2;
			}
			n = 1;
		} else {
			pthread_rwlock_unlock(&o->lock);
			return -2; /* reclaim *want pages, then try again */
		}
	}
	n = insert_locked(o, index, n, g);
	pthread_rwlock_unlock(&o->lock);
	if (n == 0) {
		errno = ENOMEM;
		return -1;
	}
	atomic_fetch_add(&o->engine->cached_pages, n);
	group_check_high(g);
	return (long)n;
}

/* Read [index, index+count) from the store into the memfd. */
static int store_read_pages(struct fl_object *o, uint64_t index,
			    unsigned long count)
{
	uint64_t off = index << PAGE_SHIFT, len = count << PAGE_SHIFT;
	uint64_t valid = o->size - off < len ? o->size - off : len, done = 0;
	char *buf = object_page_data(o, index);

	if (!o->store) /* anonymous shared memory: the memfd's zeros */
		return madvise(buf, len, MADV_POPULATE_WRITE);
	while (done < valid) {
		ssize_t r = o->store->ops->read(o->store, buf + done,
						len - done, off + done);

		if (r < 0)
			return -1;
		if (r == 0)
			break; /* the store shrank: the rest reads as zeros */
		done += (uint64_t)r;
	}
	if (done < len) /* beyond the end of the object: zeros, as mmap */
		memset(buf + done, 0, len - done);
	return 0;
}

/* Take failed pages out of the cache so a later fault reads again. */
void pagecache_abandon_read(struct fl_object *o, uint64_t index,
			    unsigned long count)
{
	if (count == 0)
		return;
	/*
	 * A failed read may have left partial data in the memfd: punch it
	 * out while the pages are still locked in the cache, before anyone
	 * woken below can read them in again (and see their data punched).
	 */
	fallocate(o->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		  (off_t)(index << PAGE_SHIFT), (off_t)(count << PAGE_SHIFT));
	pthread_rwlock_wrlock(&o->lock);
	for (unsigned long i = 0; i < count; i++) {
		struct fl_page *page = radix_delete(&o->pages, index + i);

		lru_del(page);
		page_unlock(page);
		page_put(page);
	}
	pthread_rwlock_unlock(&o->lock);
	atomic_fetch_sub(&o->engine->cached_pages, count);
}

static void pagecache_mark_uptodate(struct fl_object *o, uint64_t index,
				    unsigned long count)
{
	/* Counted before any waiter can see the pages. */
	if (o->store)
		count_add(&o->engine->stats, pages_read, count);
	else
		count_add(&o->engine->stats, zero_fills, count);
	pthread_rwlock_rdlock(&o->lock);
	for (unsigned long i = 0; i < count; i++) {
		struct fl_page *page = radix_lookup(&o->pages, index + i);

		page_test_and_set(page, PG_UPTODATE);
		page_unlock(page);
	}
	pthread_rwlock_unlock(&o->lock);
}

int pagecache_read(struct fl_object *o, uint64_t index, unsigned long count,
		   uint64_t must_have)
{
	int saved;

	if (store_read_pages(o, index, count) == 0) {
		pagecache_mark_uptodate(o, index, count);
		return 0;
	}
	saved = errno;
	/* The batch failed: the faulting page may still be readable alone. */
	if (count > 1 && store_read_pages(o, must_have, 1) == 0) {
		pagecache_abandon_read(o, index, must_have - index);
		pagecache_abandon_read(o, must_have + 1,
				       index + count - must_have - 1);
		pagecache_mark_uptodate(o, must_have, 1);
		return 0;
	}
	pagecache_abandon_read(o, index, count);
	errno = saved ? saved : EIO;
	return -1;
}

#define GANG 64

void pagecache_for_each_run(struct fl_object *o, uint64_t first, uint64_t last,
			    void (*fn)(uint64_t, unsigned long, void *),
			    void *arg)
{
	uint64_t index = first, run_start = 0, indices[GANG];
	unsigned long run_len = 0;
	void *pages[GANG];
	unsigned n;

	/* The read lock keeps each page in the cache while fn maps it. */
	pthread_rwlock_rdlock(&o->lock);
	while ((n = radix_gang(&o->pages, &index, last, pages, indices,
			       GANG))) {
		for (unsigned i = 0; i < n; i++) {
			uint32_t flags = atomic_load_explicit(
				&((struct fl_page *)pages[i])->flags,
				memory_order_acquire);
			int mappable =
				(flags & PG_UPTODATE) && !(flags & PG_LOCKED);

			if (run_len &&
			    (!mappable || indices[i] != run_start + run_len)) {
				fn(run_start, run_len, arg);
				run_len = 0;
			}
			if (mappable && run_len++ == 0)
				run_start = indices[i];
		}
		if (index == 0 || index > last)
			break; /* wrapped, or done */
	}
	if (run_len)
		fn(run_start, run_len, arg);
	pthread_rwlock_unlock(&o->lock);
}

int pagecache_mark_dirty(struct fl_object *o, struct fl_page *page)
{
	if (page_test_and_set(page, PG_DIRTY))
		return 0;
	atomic_fetch_add(&o->nr_dirty, 1);
	atomic_fetch_add(&o->engine->dirty_pages, 1);
	return 1;
}

static void pagecache_clear_dirty(struct fl_object *o, struct fl_page *page)
{
	if (page_test_and_clear(page, PG_DIRTY)) {
		atomic_fetch_sub(&o->nr_dirty, 1);
		atomic_fetch_sub(&o->engine->dirty_pages, 1);
	}
}

uint64_t pagecache_count_dirty(struct fl_object *o, uint64_t first,
			       uint64_t last)
{
	uint64_t index = first, dirty = 0;
	struct fl_page *page;

	pthread_rwlock_rdlock(&o->lock);
	while ((page = radix_next(&o->pages, &index, last))) {
		dirty += page_test(page, PG_DIRTY);
		if (index++ == last)
			break;
	}
	pthread_rwlock_unlock(&o->lock);
	return dirty;
}

/*
 * Clamp [first, last] to the object pages m shows, into [*lo, *hi];
 * whether anything is left.
 */
static int mapping_clamp(const struct fl_mapping *m, uint64_t first,
			 uint64_t last, uint64_t *lo, uint64_t *hi)
{
	uint64_t m_last = m->pgoff + ((m->end - m->start) >> PAGE_SHIFT) - 1;

	*lo = first > m->pgoff ? first : m->pgoff;
	*hi = last < m_last ? last : m_last;
	return *lo <= *hi;
}

void object_unmap_range(struct fl_object *o, uint64_t first, uint64_t last)
{
	uint64_t lo, hi;

	for (struct fl_mapping *m = o->mappings; m; m = m->obj_next)
		if (m->kind == MAP_KIND_SHARED &&
		    mapping_clamp(m, first, last, &lo, &hi))
			madvise((void *)mapping_addr(m, lo),
				(hi - lo + 1) << PAGE_SHIFT, MADV_DONTNEED);
}

void object_mkclean(struct fl_object *o, uint64_t first, uint64_t last)
{
	uint64_t lo, hi;

	/* The next store through each view faults: page_mkwrite. */
	for (struct fl_mapping *m = o->mappings; m; m = m->obj_next)
		if (m->kind == MAP_KIND_SHARED &&
		    mapping_clamp(m, first, last, &lo, &hi))
			uffd_writeprotect(o->engine->uffd, mapping_addr(m, lo),
					  (hi - lo + 1) << PAGE_SHIFT, 1);
}

/*
 * Collect up to WRITEBACK_BATCH dirty pages with consecutive indices from
 * *index on, with a reference each.  Returns how many.
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

/*
 * Lock as many of pages[0..n) as can be locked at once, clear their dirty
 * bits and write-protect them in every view, all under the map lock, so
 * that a store racing with writeback faults and re-dirties the page.
 * Returns how many pages (a prefix) are now under writeback; 0 means the
 * first page was busy and the caller should wait for it.
 */
static unsigned wb_start(struct fl_object *o, struct fl_page **pages,
			 unsigned n, uint64_t index)
{
	unsigned locked = 0;

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
		object_mkclean(o, index, index + locked - 1);
	map_unlock(o->engine);
	for (unsigned i = 0; i < locked; i++)
		page_unlock(pages[i]);
	return locked;
}

/* Write pages [index, index+n) to the store; the object's size cuts it. */
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
			return -1;
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

static void wb_end(struct fl_object *o, struct fl_page **pages, unsigned n,
		   uint64_t index, int failed)
{
	/* Counted (and any error recorded) before a waiter for it wakes. */
	if (failed) {
		atomic_fetch_add(&o->wb_errors, 1);
		count_add(&o->engine->stats, writeback_errors, 1);
	} else {
		count_add(&o->engine->stats, pages_written, n);
		if (o->mappings)
			wb_count_mappings(o, index, index + n - 1);
	}
	for (unsigned i = 0; i < n; i++) {
		if (failed)
			pagecache_mark_dirty(o, pages[i]);
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

int object_writeback(struct fl_object *o, uint64_t first, uint64_t last)
{
	struct fl_page *pages[WRITEBACK_BATCH];
	uint64_t index = first, errors = atomic_load(&o->wb_errors);
	int failed = 0, wrote = 0;
	unsigned n;

	if (!o->store || !o->writable)
		return 0;
	while (index <= last && (n = wb_gather(o, &index, last, pages))) {
		unsigned started = wb_start(o, pages, n, index);

		if (started == 0) {
			/* Busy: wait without the map lock, then look again. */
			page_wait_clear(pages[0], PG_LOCKED | PG_WRITEBACK);
		} else {
			int bad = wb_write(o, index, started) < 0;

			wb_end(o, pages, started, index, bad);
			failed |= bad;
			wrote = 1;
			index += started;
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

static void page_free_cb(void *item, uint64_t index, void *arg)
{
	struct fl_object *o = arg;
	struct fl_page *page = item;

	pagecache_clear_dirty(o, page);
	atomic_fetch_sub(&o->engine->cached_pages, 1);
	lru_del(page);
	page_put(page);
}

void pagecache_destroy(struct fl_object *o)
{
	pthread_rwlock_wrlock(&o->lock);
	radix_clear(&o->pages, page_free_cb, o);
	pthread_rwlock_unlock(&o->lock);
}
