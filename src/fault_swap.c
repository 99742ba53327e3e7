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
#include <stdlib.h>
#include <string.h>

#include "aio.h"
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

/* ---- reading a slot, and readahead -------------------------------------- */

/*
 * Readahead, for a sequential reader only (a fault exactly where the
 * mapping's last swap-in, with what it read ahead, ended): the following
 * pages of the mapping whose entries name the following slots of the same
 * device, none cached, up to SWAP_RA_PAGES in all.  They are charged now
 * (without waiting: none if the group has no room), put in the cache
 * locked and chained on sp, a reference on each the reader's; the fault's
 * retry installs them with its own page.  Map lock and page-table lock
 * held.
 */
static void swap_ra_plan(struct fault *f, struct swap_page *sp, uint64_t vpn)
{
	struct fl_engine *e = f->e;
	struct fl_group *g = f->m->group, *over;
	uint64_t last = (f->m->end >> PAGE_SHIFT) - 1;
	struct swap_page **tail = &sp->ra_next;
	uintptr_t expected =
		atomic_exchange(&f->m->swap_ra_next, f->addr + PAGE_SIZE);
	unsigned n = 0, k;

	if (expected != f->addr)
		return; /* not sequential */
	while (n + 1 < SWAP_RA_PAGES && vpn + n + 1 <= last &&
	       swap_entry_is(pte_get_raw(&e->pagetable, vpn + n + 1), sp->dev,
			     sp->slot + n + 1) &&
	       !swap_cache_find(e, sp->dev, sp->slot + n + 1))
		n++;
	if (n == 0 || group_try_charge(g, n, &over))
		return;
	for (k = 0; k < n; k++) {
		struct swap_page *ra = swap_page_new(sp->dev, sp->slot + k + 1);

		if (!ra)
			break;
		ra->charged = g;
		page_get(&ra->page); /* the reader's */
		swap_cache_insert(e, ra);
		*tail = ra;
		tail = &ra->ra_next;
	}
	if (k < n)
		group_uncharge(g, n - k);
	atomic_store(&f->m->swap_ra_next,
		     f->addr + ((uintptr_t)(k + 1) << PAGE_SHIFT));
}

/* Pages read in one device read: sp and those read ahead with it. */
static unsigned swap_run_pages(const struct swap_page *sp)
{
	unsigned n = 1;

	for (struct swap_page *ra = sp->ra_next; ra; ra = ra->ra_next)
		n++;
	return n;
}

/* Copy a run read into a staging buffer out to its pages. */
static void swap_unstage(struct swap_page *sp, const unsigned char *stage)
{
	unsigned k = 0;

	for (struct swap_page *p = sp; p; p = p->ra_next, k++)
		memcpy(p->data, stage + ((size_t)k << PAGE_SHIFT), PAGE_SIZE);
}

/*
 * The pages read ahead (chained on sp, a reference on each ours) are read
 * with it in one device read, through a staging buffer.  Returns 0, or -1
 * if they were not (then sp alone is read).
 */
static int swap_read_run(struct swap_page *sp)
{
	unsigned n = swap_run_pages(sp);
	unsigned char *stage;
	int rc;

	if (n == 1 ||
	    !(stage = aligned_alloc(PAGE_SIZE, (size_t)n << PAGE_SHIFT)))
		return -1;
	rc = sp->dev->ops->read(sp->dev, sp->slot, stage, n);
	if (rc == 0)
		swap_unstage(sp, stage);
	free(stage);
	return rc;
}

/*
 * The pages read ahead with sp: up to date if ok, else taken out of the
 * cache again (their charge given back: nobody asked for them); unlocked,
 * and our references dropped.  No lock held on entry.
 */
static void swap_ra_done(struct fl_engine *e, struct swap_page *sp, int ok)
{
	struct swap_page *ra = sp->ra_next, *next;

	sp->ra_next = NULL;
	if (!ok && ra) {
		pagetable_lock(&e->pagetable);
		for (struct swap_page *p = ra; p; p = p->ra_next)
			swap_cache_remove(e, p);
		pagetable_unlock(&e->pagetable);
	}
	for (; ra; ra = next) {
		next = ra->ra_next;
		ra->ra_next = NULL;
		if (ok)
			page_test_and_set(&ra->page, PG_UPTODATE);
		else
			ra->read_failed = 1;
		page_unlock(&ra->page);
		if (!ok)
			swap_page_release(ra); /* the cache's reference */
		page_put(&ra->page);
	}
}

/* sp's read is over (failed or not), and so is that of the pages read
 * ahead with it (run: they were read): unlock them all and retry f.  Our
 * reference on sp is held through the retry, so that it is still there to
 * install.  No lock held. */
static void swap_read_finish(struct fl_engine *e, struct fault *f,
			     struct swap_page *sp, int run, int failed)
{
	swap_ra_done(e, sp, run);
	if (failed) {
		sp->read_failed = 1;
	} else {
		page_test_and_set(&sp->page, PG_UPTODATE);
	}
	page_unlock(&sp->page); /* other faults waiting on it go on */
	if (!failed)
		swap_hook(SWAP_HOOK_CONFIRMED, sp->slot);
	fault_resume(f); /* f may be gone after this */
	page_put(&sp->page);
}

static void swap_read_work(struct fl_engine *e, struct work *w)
{
	struct fault *f = fault_of(w, work);
	struct swap_page *sp = w->arg;
	int injected = swap_hook(SWAP_HOOK_READ, sp->slot);
	int run = !injected && swap_read_run(sp) == 0;
	int failed = injected || (!run && sp->dev->ops->read(sp->dev, sp->slot,
							     sp->data, 1));

	if (injected)
		atomic_fetch_add(&sp->dev->read_errors, 1);
	swap_read_finish(e, f, sp, run, failed);
}

static void swap_read_cancel(struct work *w)
{
	struct fault *f = fault_of(w, work);
	struct swap_page *sp = w->arg;

	swap_ra_done(f->e, sp, 0);
	sp->read_failed = 1;
	page_unlock(&sp->page);
	page_put(&sp->page);
	fault_cancel(f);
}

/*
 * A swap-in read submitted to the device's asynchronous path: sp and the
 * pages read ahead with it (n in all) are read in one request, into sp's
 * own page when alone, else into a staging buffer.
 */
struct swap_read_req {
	struct store_req req; /* what the engine's completion sees */
	struct fault *f;
	struct swap_page *sp;
	unsigned char *stage; /* NULL: read into sp->data */
	unsigned n;
};

/* The read completed (on a handler thread), or the engine is going
 * (cancelled).  A failed or short read is done again on an I/O thread,
 * the way a device without the asynchronous path reads. */
static void swap_read_complete(struct store_req *req, int cancelled)
{
	struct swap_read_req *r = (struct swap_read_req *)req;
	struct fault *f = r->f;
	struct swap_page *sp = r->sp;
	int ok = req->result == (ssize_t)r->n << PAGE_SHIFT;

	if (ok && r->stage)
		swap_unstage(sp, r->stage);
	if (ok)
		atomic_fetch_add(&sp->dev->pages_read, r->n);
	free(r->stage);
	free(r);
	if (cancelled)
		swap_read_cancel(&f->work);
	else if (!ok)
		threads_post_work(f->e, &f->work);
	else
		swap_read_finish(f->e, f, sp, 1, 0);
}

/* Submit the read of sp (and of the pages read ahead with it) to its
 * device's asynchronous path; 0, or -1 if nothing was started.  Never
 * where a test hook may stall or fail the read: those run on I/O threads. */
static int swap_read_submit(struct fault *f, struct swap_page *sp)
{
	const struct swap_dev_ops *ops = sp->dev->ops;
	unsigned n = swap_run_pages(sp);
	unsigned char *stage = NULL;
	struct swap_read_req *r;

	if (!ops->read_submit || swap_hooks_armed())
		return -1;
	if (n > 1 &&
	    !(stage = aligned_alloc(PAGE_SIZE, (size_t)n << PAGE_SHIFT)))
		return -1;
	r = malloc(sizeof(*r));
	if (r) {
		*r = (struct swap_read_req){
			.req = {.e = f->e, .complete = swap_read_complete},
			.f = f,
			.sp = sp,
			.stage = stage,
			.n = n};
		if (ops->read_submit(sp->dev, sp->slot,
				     stage ? stage : sp->data, n, &r->req) == 0)
			return 0; /* r may be completed (freed) by now */
	}
	free(stage);
	free(r);
	return -1;
}

/* Read sp (locked, in the cache, a reference ours), then retry: submitted
 * to the device where it can take it (the completion comes back to a
 * handler thread), else on an I/O thread.  Map lock held on entry;
 * returns PARKED with it dropped. */
static enum fault_result fault_swap_read(struct fault *f, struct swap_page *sp)
{
	fault_unlock(f);
	f->work = (struct work){
		.fn = swap_read_work, .cancel = swap_read_cancel, .arg = sp};
	if (swap_read_submit(f, sp) == 0)
		return FAULT_PARKED; /* f may be running elsewhere already */
	threads_post_work(f->e, &f->work);
	return FAULT_PARKED;
}

/* ---- installing a cached page ------------------------------------------- */

/*
 * Install sp's data at addr of m, whose entry is still sp's slot: the page
 * becomes private (charged: sp's charge moves to it), the entry forgotten.
 * For a read (read set), while swap is at most half full, the page is
 * mapped write-protected and keeps the slot and its swap charge (the
 * entry's PTE_SLOT), so that reclaim can drop it again without writing it
 * until a store frees them; otherwise the slot is freed (by the writer, if
 * a writeout still runs).  Wakes nobody.  Map lock and page-table lock
 * held.  0, or -1 if the page could not be placed (the entry and the
 * cache page stay).
 */
static int swap_install_one(struct fl_engine *e, struct fl_mapping *m,
			    uintptr_t addr, struct swap_page *sp, int read)
{
	struct fl_group *g = m->group;
	uint64_t vpn = addr >> PAGE_SHIFT;
	/* Stable under the page-table lock.  A slot still being written, or
	 * whose write failed, does not hold the page's data. */
	int writing = page_test(&sp->page, PG_WRITEBACK);
	int keep = read && !writing && !sp->write_failed &&
		   swap_may_keep_slot(sp->dev, g);
	long mapped = keep ? uffd_copy_wp(e->uffd, e->pagemap_fd, addr,
					  sp->data, PAGE_SIZE)
			   : uffd_copy(e->uffd, e->pagemap_fd, addr, sp->data,
				       PAGE_SIZE);

	if (mapped != 1)
		return -1;
	pte_set_raw(&e->pagetable, vpn,
		    keep ? swap_entry_kept(pte_get_raw(&e->pagetable, vpn))
			 : PTE_PRIVATE | PTE_REFERENCED);
	atomic_fetch_add(&g->private_pages, 1);
	swap_cache_remove(e, sp);
	if (sp->charged != g) { /* made for another group's fault */
		group_force_charge(g, 1);
	} else {
		sp->charged = NULL; /* moved to the private page */
	}
	atomic_fetch_add(&g->swap_ins, 1);
	if (keep)
		return 0; /* the slot is the entry's still */
	if (writing)
		sp->orphan = 1; /* the writer frees the slot when done */
	else
		sp->dev->ops->free(sp->dev, sp->slot, 1);
	swap_uncharge(g, 1);
	return 0;
}

/*
 * Swap fault-around: install the pages read ahead after the fault (up to
 * SWAP_RA_PAGES - 1), while each next page's entry names a slot whose page
 * is in the cache, read, and unused.  Map lock and page-table lock held.
 */
static void swap_around(struct fault *f)
{
	struct fl_engine *e = f->e;
	uintptr_t addr = f->addr + PAGE_SIZE;
	struct swap_page *gone[SWAP_RA_PAGES];
	unsigned n = 0;

	for (; n < SWAP_RA_PAGES - 1 && addr < f->m->end; addr += PAGE_SIZE) {
		uint64_t entry = pte_get_raw(&e->pagetable, addr >> PAGE_SHIFT);
		struct fl_swap *dev;
		struct swap_page *sp;

		if ((entry & PTE_STATE_MASK) != PTE_SWAP)
			break;
		dev = swap_entry_dev(e, entry);
		sp = dev ? swap_cache_find(e, dev, swap_entry_slot(entry))
			 : NULL;
		if (!sp || !page_test(&sp->page, PG_UPTODATE) ||
		    page_test(&sp->page, PG_LOCKED | PG_WRITEBACK) ||
		    atomic_load(&sp->page.refcount) != 1 ||
		    swap_install_one(e, f->m, addr, sp, !f->write))
			break;
		gone[n++] = sp;
	}
	for (unsigned k = 0; k < n; k++)
		swap_page_release(gone[k]); /* the cache's reference */
}

/*
 * Install sp at the fault, then what was read ahead after it.  Map lock
 * and page-table lock held; the page-table lock is dropped.
 */
static enum fault_result fault_swap_install(struct fault *f,
					    struct swap_page *sp)
{
	struct fl_engine *e = f->e;

	fault_count_first(f, 0);
	if (swap_install_one(e, f->m, f->addr, sp, !f->write)) {
		pagetable_unlock(&e->pagetable); /* the entry stays */
		if (fault_is_stale(f)) {
			uffd_wake(e->uffd, f->addr, PAGE_SIZE);
			return FAULT_DONE;
		}
		return fault_swap_sigbus(f);
	}
	swap_around(f);
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
	swap_ra_plan(f, sp, vpn);
	pagetable_unlock(pt);
	fault_count_first(f, 1);
	return fault_swap_read(f, sp);
}
