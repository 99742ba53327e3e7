/* SPDX-License-Identifier: MIT */
/*
 * Swap for shared anonymous memory (objects with no store).  Their pages
 * are page-cache pages like any object's, on their group's LRU lists when
 * the group has a swap device; evicting one writes it to a slot instead of
 * dropping it:
 *
 *   under the cache lock (write), the page locked and unused: copy it into
 *   a swap-cache page (under writeback), record the object's swap entry
 *   (index -> device, slot, and the group charged for the slot), punch it
 *   out of the memfd and the cache; then write the slot with no lock held.
 *
 * Reading such a page is the object's "store read" (pagecache.c calls
 * swap_object_fill for a store-less object): the page, locked in the
 * cache, is filled from the swap-cache page if the slot is still being
 * written, else from the slot; then the entry goes and the slot with it.
 * So the page cache is the swap cache of shared anonymous memory, as in
 * the kernel's shmem: two faults on the page read it once (the second
 * waits for the locked page), and a fault during writeout finds the data.
 *
 * Lock order: cache lock, page-table lock, swap-cache lock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine.h"
#include "group.h"
#include "object.h"
#include "reclaim.h"
#include "swap.h"

#define SWAP_EVICT_CHUNK 64 /* pages moved to the swap cache, then written */

/* An object page's swap entry: the slot, and the group holding it. */
struct object_swap {
	uint64_t entry;
	struct fl_group *group;
};

/* Forget os (taken out of the object's table): the slot goes, or is left
 * to the swap-cache page still using it; the group's usage with it. */
static void object_swap_drop(struct fl_engine *e, struct object_swap *os)
{
	swap_entry_dropped(e, os->entry);
	swap_uncharge(os->group, 1);
	free(os);
}

void swap_object_release(struct fl_object *o)
{
	uint64_t index = 0;
	struct object_swap *os;

	if (!atomic_load(&o->nr_swap))
		return;
	pthread_rwlock_wrlock(&o->lock);
	while ((os = radix_next(&o->swap, &index, UINT64_MAX))) {
		radix_delete(&o->swap, index);
		object_swap_drop(o->engine, os);
		index++;
	}
	atomic_store(&o->nr_swap, 0);
	pthread_rwlock_unlock(&o->lock);
}

/* ---- swap-in: the store read of a store-less object --------------------- */

/* Fill page index (locked in the cache, not up to date) from its slot, or
 * with zeros if it has none.  No lock held.  0 or a negative errno. */
static int fill_page(struct fl_object *o, uint64_t index)
{
	struct fl_engine *e = o->engine;
	char *buf = object_page_data(o, index);
	struct object_swap *os = NULL;
	struct swap_page *sp = NULL;
	struct fl_swap *dev = NULL;
	uint64_t slot = 0;
	int failed;

	if (atomic_load(&o->nr_swap)) {
		pthread_rwlock_rdlock(&o->lock);
		os = radix_lookup(&o->swap, index);
		if (os) {
			dev = swap_entry_dev(e, os->entry);
			slot = swap_entry_slot(os->entry);
			sp = dev ? swap_cache_get(e, dev, slot) : NULL;
		}
		pthread_rwlock_unlock(&o->lock);
	}
	if (!os) /* never swapped: the memfd's zeros */
		return madvise(buf, PAGE_SIZE, MADV_POPULATE_WRITE) ? -errno
								    : 0;
	if (!dev)
		return -EIO;
	if (sp && page_test(&sp->page, PG_UPTODATE)) {
		memcpy(buf, sp->data, PAGE_SIZE); /* still being written */
		failed = 0;
	} else {
		failed = swap_hook(SWAP_HOOK_READ, slot) ||
			 dev->ops->read(dev, slot, buf, 1);
	}
	if (sp)
		page_put(&sp->page);
	if (failed)
		return -EIO; /* the entry stays: a later fault reads again */
	swap_hook(SWAP_HOOK_CONFIRMED, slot);
	/* In the cache now: the entry and its slot go.  Unless a hole punch
	 * took them meanwhile (os is freed then, and no new entry can be
	 * made for the page while it is locked here): then the page is a
	 * hole, zeros, whatever the slot held. */
	pthread_rwlock_wrlock(&o->lock);
	if (radix_lookup(&o->swap, index) == os) {
		radix_delete(&o->swap, index);
		atomic_fetch_sub(&o->nr_swap, 1);
		atomic_fetch_add(&os->group->swap_ins, 1);
		object_swap_drop(e, os);
	} else {
		memset(buf, 0, PAGE_SIZE);
	}
	pthread_rwlock_unlock(&o->lock);
	return 0;
}

/* ---- hole punch (MADV_REMOVE) ------------------------------------------- */

/* Drop the swap entries of [first, last].  Takes the cache lock. */
static void punch_entries(struct fl_object *o, uint64_t first, uint64_t last)
{
	uint64_t index = first;
	struct object_swap *os;

	if (!atomic_load(&o->nr_swap))
		return;
	pthread_rwlock_wrlock(&o->lock);
	while ((os = radix_next(&o->swap, &index, last))) {
		radix_delete(&o->swap, index);
		atomic_fetch_sub(&o->nr_swap, 1);
		object_swap_drop(o->engine, os);
		if (index++ == last)
			break;
	}
	pthread_rwlock_unlock(&o->lock);
}

/* Take page index out of the cache and the memfd, waiting for its lock
 * (a read, an eviction) first.  No lock held on entry. */
static void punch_page(struct fl_object *o, struct fl_page *page)
{
	int gone = 0;

	(void)swap_hook(SWAP_HOOK_PUNCH_PAGE, page->index);
	page_lock(page);
	pthread_rwlock_wrlock(&o->lock);
	if (radix_lookup(&o->pages, page->index) == page) {
		radix_delete(&o->pages, page->index);
		atomic_fetch_sub(&o->engine->cached_pages, 1);
		gone = 1;
	}
	fallocate(o->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		  (off_t)(page->index << PAGE_SHIFT), PAGE_SIZE);
	pthread_rwlock_unlock(&o->lock);
	if (gone)
		lru_del(page);
	page_unlock(page);
	if (gone)
		page_put(page); /* the cache's reference */
	page_put(page);
}

/*
 * Punch the memfd where [first, last] holds no cached page, under the cache
 * lock.  A fault may have brought a page in after punch_page (a hole, read
 * as zeros into the memfd): punched out of the memfd but left in the
 * cache, it could not be mapped (UFFDIO_CONTINUE finds no page), and the
 * fault that tried got SIGBUS.
 */
static int punch_uncached(struct fl_object *o, uint64_t first, uint64_t last)
{
	uint64_t i = first;
	int rc = 0;

	pthread_rwlock_wrlock(&o->lock);
	for (;;) {
		/* The hole runs from i to the next cached page, or to last. */
		uint64_t cached = i;
		int found = radix_next(&o->pages, &cached, last) != NULL;
		uint64_t end = found ? cached : last + 1;

		if (end > i &&
		    fallocate(o->memfd,
			      FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)(i << PAGE_SHIFT),
			      (off_t)((end - i) << PAGE_SHIFT)))
			rc = -1;
		if (!found || cached == last)
			break;
		i = cached + 1;
	}
	pthread_rwlock_unlock(&o->lock);
	return rc;
}

int swap_object_punch(struct fl_object *o, uint64_t first, uint64_t last)
{
	if (last >= o->nr_pages)
		last = o->nr_pages - 1;
	/* Entries first, so that a swap-in in flight finds its entry gone and
	 * makes a hole; then the pages; then the entries evictions made
	 * meanwhile. */
	punch_entries(o, first, last);
	for (uint64_t i = first; i <= last; i++) {
		struct fl_page *page = pagecache_get(o, i);

		if (page)
			punch_page(o, page);
	}
	punch_entries(o, first, last);
	return punch_uncached(o, first, last);
}

int swap_object_fill(struct fl_object *o, uint64_t index, unsigned long count,
		     unsigned long *filled)
{
	for (unsigned long i = 0; i < count; i++) {
		int rc = fill_page(o, index + i);

		if (rc) {
			*filled = i;
			return rc;
		}
	}
	return 0;
}

/* ---- swap-out: eviction of a store-less object's pages ------------------ */

/* Under the cache lock: whether p, locked by us, can go (as reclaim.c). */
static int evictable(struct fl_object *o, struct fl_page *p)
{
	uint32_t fl = atomic_load(&p->flags);

	return (fl & PG_UPTODATE) && !(fl & (PG_DIRTY | PG_WRITEBACK)) &&
	       atomic_load(&p->refcount) == 2 &&
	       radix_lookup(&o->pages, p->index) == p;
}

/*
 * Take page index out of every shared view.  Its stores are not seen
 * (shared anonymous pages are mapped writable): with the page out of every
 * view, no store can land between the copy and the punch.  Faults cannot
 * map it again meanwhile: they need the cache lock or the page lock, both
 * held.  Map lock (read), cache lock and page lock held.  0 or -1.
 */
static int unmap_shared_views(struct fl_object *o, uint64_t index)
{
	uint64_t lo, hi;

	for (struct fl_mapping *m = o->mappings; m; m = m->obj_next)
		if (m->kind == MAP_KIND_SHARED &&
		    mapping_clamp(m, index, index, &lo, &hi) &&
		    madvise((void *)mapping_addr(m, index), PAGE_SIZE,
			    MADV_DONTNEED))
			return -1;
	return 0;
}

/*
 * Move page p (isolated by reclaim, a reference ours) to a swap-cache page
 * and a swap entry, out of the cache and the memfd.  Takes the cache lock.
 * Returns the swap-cache page to write, or NULL if p stays (*no_room set
 * if there is no swap for it, clear if it was only busy).
 */
static struct swap_page *swap_out_object_page(struct fl_object *o,
					      struct fl_page *p, int *no_room)
{
	struct fl_group *g = p->group;
	struct fl_swap *dev = g ? group_swap_dev(g) : NULL;
	struct object_swap *os;
	struct swap_page *sp;
	uint64_t slot;
	int locked = 0;

	*no_room = 1;
	if (!dev || swap_try_charge(g, 1))
		return NULL;
	if (swap_hook(SWAP_HOOK_ALLOC, 0) || dev->ops->alloc(dev, 1, &slot) < 1)
		goto uncharge;
	*no_room = 0; /* what fails now is only busy (or short of memory) */
	sp = swap_page_new(dev, slot);
	os = malloc(sizeof(*os));
	if (!sp || !os)
		goto free;
	os->entry = swap_entry(dev, slot);
	os->group = g;
	map_read_lock(o->engine); /* o's list of mappings */
	pthread_rwlock_wrlock(&o->lock);
	locked = page_trylock(p);
	if (!locked || !evictable(o, p) || unmap_shared_views(o, p->index) ||
	    radix_insert(&o->swap, p->index, os))
		goto unlock;
	memcpy(sp->data, object_page_data(o, p->index), PAGE_SIZE);
	if (fallocate(o->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(p->index << PAGE_SHIFT), PAGE_SIZE)) {
		radix_delete(&o->swap, p->index);
		goto unlock;
	}
	atomic_fetch_add(&o->nr_swap, 1);
	radix_delete(&o->pages, p->index);
	atomic_fetch_sub(&o->engine->cached_pages, 1);
	/* Its charge moves to the swap-cache page: the last put of the
	 * cache page (the caller's) must not give it back. */
	atomic_fetch_sub(&g->cache_pages, 1);
	p->group = NULL;
	sp->charged = g;
	atomic_store(&sp->page.flags, PG_UPTODATE | PG_WRITEBACK);
	page_get(&sp->page); /* the writer's */
	swap_cache_insert(o->engine, sp);
	pthread_rwlock_unlock(&o->lock);
	map_unlock(o->engine);
	page_unlock(p); /* waiters find it gone, and read it again */
	page_put(p);	/* the cache's reference */
	return sp;
unlock:
	pthread_rwlock_unlock(&o->lock);
	map_unlock(o->engine);
	if (locked)
		page_unlock(p);
free:
	free(os);
	if (sp)
		page_put(&sp->page);
	dev->ops->free(dev, slot, 1);
uncharge:
	swap_uncharge(g, 1);
	return NULL;
}

/* Up to SWAP_EVICT_CHUNK pages of swap_evict_object_run. */
static uint64_t evict_chunk(struct fl_object *o, struct fl_page **v, unsigned n,
			    unsigned *stuck)
{
	struct swap_page *sp[SWAP_EVICT_CHUNK] = {NULL};
	struct fl_group *g[SWAP_EVICT_CHUNK];
	unsigned char ok[SWAP_EVICT_CHUNK];
	unsigned nr = 0;
	uint64_t freed = 0;

	/* First every page to the swap cache (memory only), then the writes
	 * together: runs of consecutive slots in one device write. */
	for (unsigned k = 0; k < n; k++) {
		struct fl_page *p = v[k];
		int no_room, cached;

		g[nr] = p->group;
		sp[nr] = swap_out_object_page(o, p, &no_room);
		if (sp[nr]) {
			nr++;
			continue;
		}
		*stuck += (unsigned)no_room; /* else busy: later */
		pthread_rwlock_rdlock(&o->lock);
		cached = radix_lookup(&o->pages, p->index) == p;
		pthread_rwlock_unlock(&o->lock);
		if (cached)
			lru_add(p); /* stays, back on the list */
	}
	swap_write_pages(sp, nr, ok);
	for (unsigned k = 0; k < nr; k++) {
		if (ok[k])
			atomic_fetch_add(&g[k]->swap_outs, 1);
		/* The cache page is gone, its charge moved to the swap-cache
		 * page: given back here, unless a fault uses the page (or it
		 * is the only copy). */
		freed += (uint64_t)swap_cache_write_done(o->engine, sp[k],
							 ok[k]);
	}
	return freed;
}

uint64_t swap_evict_object_run(struct fl_page **v, unsigned n, unsigned *stuck)
{
	uint64_t freed = 0;

	for (unsigned i = 0; i < n; i += SWAP_EVICT_CHUNK)
		freed += evict_chunk(
			v[0]->object, v + i,
			n - i < SWAP_EVICT_CHUNK ? n - i : SWAP_EVICT_CHUNK,
			stuck);
	return freed;
}
