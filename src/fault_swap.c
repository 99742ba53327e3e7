/* SPDX-License-Identifier: MIT */
/*
 * A fault on a swap entry (a private or anonymous page swapped out).  It
 * follows the RETRY protocol as a store read does:
 *
 *   the page is in the swap cache, its data valid (being written out, or
 *       read for another fault, or left there): install it now with
 *       UFFDIO_COPY, the swap-cache page's charge moving to the private
 *       page, and free the slot (or leave that to the writer still
 *       writing it);
 *   the page is being read: wait for it (parked on the page, no lock);
 *   nothing cached: charge a new page (before any lock: one step), put it
 *       in the swap cache locked, drop the map lock and read the slot on
 *       an I/O thread, then retry, holding the page through the retry.
 *
 * The retry looks everything up again: an unmap, MADV_DONTNEED or
 * MAP_FIXED meanwhile dropped the entry (the slot goes with the cache
 * page, orphaned), and the cache page is left for reclaim.  A failed
 * charge touches nothing: the fault waits for memory (reclaim may swap
 * other pages out), then retries.
 */
#include <errno.h>
#include <string.h>

#include "engine.h"
#include "fault_priv.h"
#include "group.h"
#include "swap.h"
#include "uffd.h"

#define fault_of(ptr, member)                                                  \
	((struct fault *)((char *)(ptr)-offsetof(struct fault, member)))

/* The swap entry stays (its data may yet be read): SIGBUS by signal, as
 * the poison would take the entry's place.  Map lock held. */
static enum fault_result fault_swap_sigbus(struct fault *f)
{
	f->signalled = 1;
	count_add(&f->e->stats, errors, 1);
	count_add(&f->m->stats, errors, 1);
	fault_signal_thread(f);
	uffd_wake(f->e->uffd, f->addr, PAGE_SIZE);
	return FAULT_DONE;
}

/* ---- reading a slot ----------------------------------------------------- */

static void swap_read_work(struct fl_engine *e, struct work *w)
{
	struct fault *f = fault_of(w, work);
	struct swap_page *sp = w->arg;
	int injected = swap_hook(SWAP_HOOK_READ, sp->slot);
	int failed =
		injected || sp->dev->ops->read(sp->dev, sp->slot, sp->data, 1);

	(void)e;
	if (injected)
		atomic_fetch_add(&sp->dev->read_errors, 1);
	if (failed) {
		sp->read_failed = 1;
	} else {
		page_test_and_set(&sp->page, PG_UPTODATE);
	}
	page_unlock(&sp->page); /* other faults waiting on it go on */
	if (!failed)
		swap_hook(SWAP_HOOK_CONFIRMED, sp->slot);
	/* Held through the retry, so that it is still there to install. */
	fault_resume(f); /* f may be gone after this */
	page_put(&sp->page);
}

static void swap_read_cancel(struct work *w)
{
	struct fault *f = fault_of(w, work);
	struct swap_page *sp = w->arg;

	sp->read_failed = 1;
	page_unlock(&sp->page);
	page_put(&sp->page);
	fault_cancel(f);
}

/* Read sp (locked, in the cache, a reference ours) on an I/O thread, then
 * retry.  Map lock held on entry; returns PARKED with it dropped. */
static enum fault_result fault_swap_read(struct fault *f, struct swap_page *sp)
{
	fault_unlock(f);
	f->work = (struct work){
		.fn = swap_read_work, .cancel = swap_read_cancel, .arg = sp};
	threads_post_work(f->e, &f->work);
	return FAULT_PARKED;
}

/* ---- installing a cached page ------------------------------------------- */

/*
 * Install sp's data at the fault, whose entry is still the slot's: the
 * page becomes private (charged: sp's charge moves to it), the slot is
 * freed (by the writer, if a writeout still runs), the entry forgotten.
 * Map lock and page-table lock held; the page-table lock is dropped.
 */
static enum fault_result fault_swap_install(struct fault *f,
					    struct swap_page *sp)
{
	struct fl_engine *e = f->e;
	struct fl_group *g = f->m->group;
	uint64_t vpn = f->addr >> PAGE_SHIFT;
	int writing;

	fault_count_first(f, 0);
	if (uffd_copy(e->uffd, e->pagemap_fd, f->addr, sp->data, PAGE_SIZE) !=
	    1) {
		pagetable_unlock(&e->pagetable); /* the entry stays */
		if (fault_is_stale(f)) {
			uffd_wake(e->uffd, f->addr, PAGE_SIZE);
			return FAULT_DONE;
		}
		return fault_swap_sigbus(f);
	}
	pte_set_raw(&e->pagetable, vpn, PTE_PRIVATE | PTE_REFERENCED);
	atomic_fetch_add(&g->private_pages, 1);
	swap_cache_remove(e, sp);
	writing = page_test(&sp->page, PG_WRITEBACK); /* stable: pt lock */
	if (sp->charged != g) { /* made for another group's fault */
		group_force_charge(g, 1);
	} else {
		sp->charged = NULL; /* moved to the private page */
	}
	if (writing)
		sp->orphan = 1; /* the writer frees the slot when done */
	else
		sp->dev->ops->free(sp->dev, sp->slot, 1);
	swap_uncharge(g, 1);
	atomic_fetch_add(&g->swap_ins, 1);
	pagetable_unlock(&e->pagetable);
	swap_page_release(sp); /* the cache's reference */
	uffd_wake(e->uffd, f->addr, PAGE_SIZE);
	return FAULT_DONE;
}

/*
 * The slot's page is in the swap cache.  Map lock and page-table lock
 * held; the page-table lock is dropped.  Returns as fault_swapin.
 */
static enum fault_result fault_swap_cached(struct fault *f,
					   struct swap_page *sp)
{
	struct fl_engine *e = f->e;

	if (page_test(&sp->page, PG_UPTODATE))
		return fault_swap_install(f, sp);
	if (sp->read_failed && !page_test(&sp->page, PG_LOCKED)) {
		/* The read failed: this fault gets SIGBUS; the entry stays,
		 * and a later fault reads the slot again. */
		swap_cache_remove(e, sp);
		pagetable_unlock(&e->pagetable);
		swap_page_release(sp);
		fault_count_first(f, 1);
		return fault_swap_sigbus(f);
	}
	/* Being read for another fault: wait for it without the map lock. */
	page_get(&sp->page);
	pagetable_unlock(&e->pagetable);
	fault_count_first(f, 1);
	return fault_wait_page(f, &sp->page);
}

enum fault_result fault_swapin(struct fault *f, uint64_t entry)
{
	struct fl_engine *e = f->e;
	struct pagetable *pt = &e->pagetable;
	struct fl_swap *dev = swap_entry_dev(e, entry);
	uint64_t slot = swap_entry_slot(entry), vpn = f->addr >> PAGE_SHIFT;
	struct fl_group *g = f->m->group, *over = g;
	struct swap_page *sp;

	if (!dev)
		return fault_swap_sigbus(f);
	pagetable_lock(pt);
	if (pte_get_raw(pt, vpn) != entry) { /* swapped in meanwhile */
		pagetable_unlock(pt);
		fault_unlock(f);
		return FAULT_RETRY;
	}
	sp = swap_cache_find(e, dev, slot);
	if (sp)
		return fault_swap_cached(f, sp);
	pagetable_unlock(pt);

	/* A new page: charged now, before any lock, in one step. */
	if (swap_hook(SWAP_HOOK_CHARGE, slot) || group_try_charge(g, 1, &over))
		return fault_wait_memory(f, over, 1);
	sp = swap_page_new(dev, slot);
	if (!sp) {
		group_uncharge(g, 1);
		return fault_swap_sigbus(f);
	}
	sp->charged = g;
	pagetable_lock(pt);
	if (pte_get_raw(pt, vpn) != entry ||
	    swap_cache_find(e, dev, slot)) { /* raced: look again */
		pagetable_unlock(pt);
		swap_page_release(sp);
		fault_unlock(f);
		return FAULT_RETRY;
	}
	page_get(&sp->page); /* the reader's, held through the retry */
	swap_cache_insert(e, sp);
	pagetable_unlock(pt);
	fault_count_first(f, 1);
	return fault_swap_read(f, sp);
}
