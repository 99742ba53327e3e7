/* SPDX-License-Identifier: MIT */
/*
 * Objects' page caches: lookup, filling from the store, dirty tracking.
 * Writeback is in writeback.c.  A page's data lives in the object's memfd at
 * the page's offset; its descriptor (struct fl_page) lives in the object's
 * radix tree.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>

#include "aio.h"
#include "engine.h"
#include "flusher.h"
#include "group.h"
#include "object.h"
#include "swap.h"
#include "reclaim.h"
#include "uffd.h"
#include "writeback.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

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

/* Under the cache lock: how many pages just before index are absent, up
 * to max. */
static unsigned long absent_before(struct fl_object *o, uint64_t index,
				   unsigned long max)
{
	unsigned long n = 0;

	while (n < max && index > n && !radix_lookup(&o->pages, index - n - 1))
		n++;
	return n;
}

/* Under the cache lock: take back the first n pages insert_locked made. */
static void uninsert_locked(struct fl_object *o, uint64_t index,
			    unsigned long n)
{
	for (unsigned long i = 0; i < n; i++) {
		struct fl_page *page = radix_delete(&o->pages, index + i);

		lru_del(page);
		page_put(page); /* uncharges it */
	}
}

/*
 * Under the cache lock: n pages from index, charged to g, inserted locked;
 * all but the page the reader needs (run->demand) marked read ahead, and
 * run->mark marked to start the next window.  Returns how many (a prefix:
 * allocation may stop it), or 0 if the prefix would not hold the demanded
 * page.
 */
static unsigned long insert_locked(struct fl_object *o, uint64_t index,
				   unsigned long n, struct fl_group *g,
				   const struct ra_run *run)
{
	unsigned long i;

	for (i = 0; i < n; i++) {
		struct fl_page *page = page_alloc(o, index + i, g);
		uint32_t flags = PG_LOCKED;

		if (!page || radix_insert(&o->pages, index + i, page)) {
			if (page)
				page_put(page); /* uncharges it */
			else
				group_uncharge(g, 1);
			group_uncharge(g, n - i - 1);
			break; /* read the run we have */
		}
		if (index + i != run->demand)
			flags |= PG_READAHEAD;
		else {
			atomic_store(&page->read_tid, run->demand_tid);
			atomic_store(&page->read_addr, run->demand_addr);
		}
		if (index + i == run->mark)
			flags |= PG_RA_MARK;
		atomic_store(&page->flags, flags);
		/* Without a store a page cannot be written back and read
		 * again: it stays, unless it can be swapped out. */
		if (o->store || group_swap_dev(g))
			lru_add(page);
	}
	if (i < n && run->demand != UINT64_MAX && run->demand >= index + i) {
		uninsert_locked(o, index, i); /* the fault's page is not in */
		return 0;
	}
	return i;
}

long pagecache_start_read(struct fl_object *o, uint64_t index,
			  unsigned long max, struct fl_group *g,
			  struct fl_group **over, uint64_t *want)
{
	struct ra_run run = ra_run_from(index, max);

	return pagecache_start_run(o, &run, g, over, want);
}

long pagecache_start_run(struct fl_object *o, struct ra_run *run,
			 struct fl_group *g, struct fl_group **over,
			 uint64_t *want)
{
	uint64_t index = run->index;
	unsigned long n, back;

	pthread_rwlock_wrlock(&o->lock);
	n = absent_run(o, index, run->max);
	if (n == 0) { /* present: another fault read it */
		pthread_rwlock_unlock(&o->lock);
		return 0;
	}
	/* Read-around: the absent pages just before index join the run. */
	back = absent_before(o, index, run->before);
	if (back + n > run->max)
		n = run->max > back ? run->max - back : 1;
	index -= back;
	n += back;
	/*
	 * Charged in one step, before any page exists or is locked.  A full
	 * group reclaims room for the whole run (the caller does, on -EDQUOT),
	 * unless the run is large beside the limit: then the faulting page
	 * alone is read, so that a small group still makes progress.
	 */
	if (group_try_charge(g, n, over)) {
		*want = n;
		if (n > atomic_load(&(*over)->max) / 4) {
			*want = 1;
			if (group_try_charge(g, 1, over)) {
				pthread_rwlock_unlock(&o->lock);
				return -EDQUOT;
			}
			index = run->index; /* the wanted page alone */
			n = 1;
		} else {
			pthread_rwlock_unlock(&o->lock);
			return -EDQUOT; /* reclaim *want, then try again */
		}
	}
	n = insert_locked(o, index, n, g, run);
	pthread_rwlock_unlock(&o->lock);
	if (n == 0)
		return -ENOMEM;
	run->first = index;
	atomic_fetch_add(&o->engine->cached_pages, n);
	group_check_high(g);
	return (long)n;
}

/* Read [index, index+count) from the store into the memfd.  On failure,
 * *kept: the pages from index that must stay all the same (swap-ins of
 * anonymous shared memory that gave their slots up); 0 for a store. */
static int store_read_pages(struct fl_object *o, uint64_t index,
			    unsigned long count, unsigned long *kept)
{
	uint64_t off = index << PAGE_SHIFT, len = count << PAGE_SHIFT;
	uint64_t valid = o->size - off < len ? o->size - off : len, done = 0;
	char *buf = object_page_data(o, index);

	*kept = 0;
	if (!o->store) /* anonymous shared memory: zeros, or swapped out */
		return swap_object_fill(o, index, count, kept);
	while (done < valid) {
		ssize_t r;

		store_read_started(o->engine, store_read_enter(o->engine));
		r = o->store->ops->read(o->store, buf + done, len - done,
					off + done);
		store_read_leave(o->engine);

		if (r < 0)
			return errno ? -errno : -EIO;
		/* Short of the object's end (the store shrank, or lies), or
		 * more than asked: the data cannot be trusted. */
		if (r == 0 || (uint64_t)r > len - done)
			return -EIO;
		done += (uint64_t)r;
	}
	/* Beyond the end of the object: zeros, as mmap, whatever the store
	 * put there. */
	if (valid < len)
		memset(buf + valid, 0, len - valid);
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

void pagecache_mark_uptodate(struct fl_object *o, uint64_t index,
			     unsigned long count, int via_view)
{
	/* Counted before any waiter can see the pages. */
	if (o->store)
		count_add(&o->engine->stats, pages_read, count);
	else
		count_add(&o->engine->stats, zero_fills, count);
	if (o->store && via_view) /* the read is done with the view */
		object_view_drop(o, index, count, 0);
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
	unsigned long kept, unused;
	int err = store_read_pages(o, index, count, &kept);

	if (err == 0) {
		pagecache_mark_uptodate(o, index, count, 1);
		return 0;
	}
	/* Pages swapped in before the failure have no slot left: they stay,
	 * and the rest is read as if the batch had started after them. */
	if (kept) {
		pagecache_mark_uptodate(o, index, kept, 1);
		index += kept;
		count -= kept;
		if (must_have < index) { /* the faulting page is in */
			pagecache_abandon_read(o, index, count);
			return 0;
		}
	}
	/* The batch failed: the faulting page may still be readable alone. */
	if (count > 1 && store_read_pages(o, must_have, 1, &unused) == 0) {
		pagecache_abandon_read(o, index, must_have - index);
		pagecache_abandon_read(o, must_have + 1,
				       index + count - must_have - 1);
		pagecache_mark_uptodate(o, must_have, 1, 1);
		return 0;
	}
	pagecache_abandon_read(o, index, count);
	return err;
}

#define GANG 64

unsigned long
pagecache_for_each_run(struct fl_object *o, uint64_t first, uint64_t last,
		       uint64_t fault_index,
		       void (*fn)(uint64_t, unsigned long, void *), void *arg)
{
	uint64_t index = first, run_start = 0, indices[GANG];
	unsigned long run_len = 0, ra_used = 0;
	void *pages[GANG];
	unsigned n;

	/* The read lock keeps each page in the cache while fn maps it. */
	pthread_rwlock_rdlock(&o->lock);
	while ((n = radix_gang(&o->pages, &index, last, pages, indices,
			       GANG))) {
		for (unsigned i = 0; i < n; i++) {
			struct fl_page *page = pages[i];
			uint32_t flags = atomic_load_explicit(
				&page->flags, memory_order_acquire);
			/* A readahead mark is left for its own fault, which
			 * starts the next window. */
			int mappable = (flags & PG_UPTODATE) &&
				       !(flags & PG_LOCKED) &&
				       (!(flags & PG_RA_MARK) ||
					indices[i] == fault_index);

			if (mappable && (flags & PG_READAHEAD) &&
			    page_test_and_clear(page, PG_READAHEAD))
				ra_used++;

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
	return ra_used;
}

int pagecache_mark_dirty(struct fl_object *o, struct fl_page *page)
{
	if (page_test_and_set(page, PG_DIRTY))
		return 0;
	atomic_fetch_add(&o->nr_dirty, 1);
	atomic_fetch_add(&o->engine->dirty_pages, 1);
	flusher_account_dirty(page, 1);
	return 1;
}

void pagecache_clear_dirty(struct fl_object *o, struct fl_page *page)
{
	if (page_test_and_clear(page, PG_DIRTY)) {
		atomic_fetch_sub(&o->nr_dirty, 1);
		atomic_fetch_sub(&o->engine->dirty_pages, 1);
		flusher_account_dirty(page, -1);
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
