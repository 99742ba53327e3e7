/* SPDX-License-Identifier: MIT */
/*
 * Swap-out: reclaim of private copies and anonymous pages.  For each page
 * chosen, under the map lock (read) and the page-table lock:
 *
 *   1. write-protect it in its view, so that a store from now on faults
 *      (and waits) instead of changing what is being saved;
 *   2. copy it into a new swap-cache page (under writeback, charged with
 *      the private page's charge);
 *   3. drop it from the view (MADV_DONTNEED) and lift the uffd-wp marker;
 *   4. record the swap entry (device, slot) in the engine page table.
 *
 * Then, with no lock held, the pages are written to their slots; a page
 * nobody wanted meanwhile leaves the cache and its charge is given back.
 * A fault meanwhile finds the page in the swap cache and installs it from
 * there (a store that faulted at step 1 is then let through).  A failed
 * write keeps the page in the cache (charged): it is the only copy.
 *
 * Which pages: a clock over each mapping's private pages, in the engine
 * page table; a page made or swapped in since reclaim last looked
 * (PTE_REFERENCED) gets a second chance.  Mappings that cannot be read
 * (PROT_NONE) are passed over.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "engine.h"
#include "group.h"
#include "swap.h"
#include "uffd.h"

#define SWAP_OUT_BATCH 64

struct swap_batch {
	struct swap_page *v[SWAP_OUT_BATCH];
	struct fl_group *group[SWAP_OUT_BATCH];
	unsigned n;
	int full; /* a device or a swap_max has no room: stop */
};

/*
 * Steps 1-4 for the page at addr of m.  Map lock (read) held.  Returns 1
 * if the page went to the cache (added to b), 0 if it was passed over, -1
 * if there is no swap room left.
 */
static int swap_out_page(struct fl_engine *e, struct fl_mapping *m,
			 struct fl_swap *dev, uintptr_t addr,
			 struct swap_batch *b)
{
	struct pagetable *pt = &e->pagetable;
	struct fl_group *g = m->group;
	uint64_t slot, vpn = addr >> PAGE_SHIFT;
	unsigned char present = 0;
	struct swap_page *sp;

	if (swap_try_charge(g, 1))
		return -1;
	if (swap_hook(SWAP_HOOK_ALLOC, 0) ||
	    dev->ops->alloc(dev, 1, &slot) < 1) {
		swap_uncharge(g, 1);
		return -1;
	}
	sp = swap_page_new(dev, slot);
	if (!sp)
		goto undo;
	pagetable_lock(pt);
	if (pte_get(pt, vpn) != PTE_PRIVATE ||
	    uffd_present_pages(e->pagemap_fd, addr, PAGE_SIZE, &present) != 1 ||
	    !present || uffd_writeprotect(e->uffd, addr, PAGE_SIZE, 1))
		goto unlock;
	memcpy(sp->data, (void *)addr, PAGE_SIZE);
	if (madvise((void *)addr, PAGE_SIZE, MADV_DONTNEED)) {
		uffd_writeprotect(e->uffd, addr, PAGE_SIZE, 0); /* wakes */
		goto unlock;
	}
	uffd_unprotect_quiet(e->uffd, addr, PAGE_SIZE);
	pte_set_raw(pt, vpn, swap_entry(dev, slot)); /* replaces: no ENOMEM */
	atomic_fetch_sub(&g->private_pages, 1);
	sp->charged = g; /* the private page's charge */
	atomic_store(&sp->page.flags, PG_UPTODATE | PG_WRITEBACK);
	page_get(&sp->page); /* the writer's */
	swap_cache_insert(e, sp);
	pagetable_unlock(pt);
	b->v[b->n] = sp;
	b->group[b->n++] = g;
	return 1;
unlock:
	pagetable_unlock(pt);
	page_put(&sp->page);
undo:
	dev->ops->free(dev, slot, 1);
	swap_uncharge(g, 1);
	return 0;
}

/*
 * Candidates of m: up to max private pages from *vpn on, those referenced
 * since the last look passed over (their bit cleared) unless second is
 * set.  Takes the page-table lock.  *vpn is left past the last looked at.
 */
static unsigned pick_pages(struct pagetable *pt, struct fl_mapping *m,
			   uint64_t *vpn, int second, uintptr_t *out,
			   unsigned max)
{
	uint64_t last = (m->end >> PAGE_SHIFT) - 1;
	unsigned n = 0;
	void *entry;

	pagetable_lock(pt);
	while (n < max && *vpn <= last &&
	       (entry = radix_next(&pt->entries, vpn, last))) {
		uint64_t value = (uint64_t)(uintptr_t)entry;

		if ((value & PTE_STATE_MASK) == PTE_PRIVATE) {
			if ((value & PTE_REFERENCED) && !second)
				pte_set_raw(pt, *vpn, PTE_PRIVATE);
			else
				out[n++] = *vpn << PAGE_SHIFT;
		}
		if ((*vpn)++ == last)
			break;
	}
	pagetable_unlock(pt);
	return n;
}

/* Fill b from the mappings of g's subtree.  Map lock (read) held. */
static void swap_pick(struct fl_group *g, uint64_t want, struct swap_batch *b)
{
	struct fl_engine *e = g->engine;

	for (int second = 0; second < 2 && b->n < want && !b->full; second++) {
		for (size_t i = 0;
		     i < e->mappings.nr && b->n < want && !b->full; i++) {
			struct fl_mapping *m = e->mappings.v[i];
			struct fl_swap *dev;
			uint64_t vpn = m->start >> PAGE_SHIFT;
			uintptr_t addrs[16];
			unsigned got;

			if (m->kind == MAP_KIND_SHARED ||
			    !(m->prot & PROT_READ) ||
			    !group_within(m->group, g) ||
			    !(dev = group_swap_dev(m->group)))
				continue;
			while (b->n < want && !b->full &&
			       (got = pick_pages(&e->pagetable, m, &vpn, second,
						 addrs, 16))) {
				for (unsigned k = 0; k < got && b->n < want;
				     k++)
					if (swap_out_page(e, m, dev, addrs[k],
							  b) < 0) {
						b->full = 1;
						break;
					}
			}
		}
	}
}

uint64_t swap_reclaim(struct fl_group *g, uint64_t want)
{
	struct fl_engine *e = g->engine;
	struct swap_batch b;
	uint64_t freed = swap_cache_sweep(e);

	fl_assert_may_block();
	while (freed < want) {
		uint64_t batch_freed = 0;

		b.n = 0;
		b.full = 0;
		map_read_lock(e);
		swap_pick(g,
			  want - freed < SWAP_OUT_BATCH ? want - freed
							: SWAP_OUT_BATCH,
			  &b);
		map_unlock(e);
		for (unsigned i = 0; i < b.n; i++) {
			struct swap_page *sp = b.v[i];
			int injected = swap_hook(SWAP_HOOK_WRITE, sp->slot);
			int ok = !injected &&
				 sp->dev->ops->write(sp->dev, sp->slot,
						     sp->data, 1) == 0;

			if (injected)
				atomic_fetch_add(&sp->dev->write_errors, 1);
			if (ok)
				atomic_fetch_add(&b.group[i]->swap_outs, 1);
			if (swap_cache_write_done(e, sp, ok)) {
				batch_freed++;
				atomic_fetch_add(&b.group[i]->pages_reclaimed,
						 1);
			}
		}
		freed += batch_freed;
		if (b.n == 0 || b.full)
			break;
	}
	return freed;
}
