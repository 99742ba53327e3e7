/* SPDX-License-Identifier: MIT */
/*
 * Swap-out: reclaim of private copies and anonymous pages.  For each page
 * chosen, under the map lock (read) and the page-table lock:
 *
 *   1. write-protect it in its view, so that a store from now on faults
 *      (and waits) instead of changing what is being saved;
 *   2. copy it into a new swap-cache page (under writeback, charged with
 *      the private page's charge);
 *   3. drop it from the view (MADV_DONTNEED: the pages of one pick at
 *      once, through process_madvise, so that they cost one TLB flush)
 *      and lift the uffd-wp marker;
 *   4. record the swap entry (device, slot) in the engine page table.
 *
 * Then, with no lock held, the pages are written to their slots; a page
 * nobody wanted meanwhile leaves the cache and its charge is given back.
 * A fault meanwhile finds the page in the swap cache and installs it from
 * there (a store that faulted at step 1 is then let through).  A failed
 * write keeps the page in the cache (charged): it is the only copy.
 *
 * A page swapped in by a read and not written since still has its slot
 * (PTE_SLOT: pagetable.h), which holds its data: it is dropped at once
 * without steps 1, 2 or the write, its entry made a swap entry again
 * (swap_out_clean), as the kernel drops a clean swap-cache page.
 *
 * Which pages: a clock over each mapping's private pages, in the engine
 * page table; a page made or swapped in since reclaim last looked
 * (PTE_REFERENCED) gets a second chance.  Mappings that cannot be read
 * (PROT_NONE) are passed over.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "engine.h"
#include "group.h"
#include "object.h"
#include "swap.h"
#include "uffd.h"

#define SWAP_OUT_BATCH 64
_Static_assert(SWAP_OUT_BATCH <= SWAP_WRITE_PAGES_MAX, "a batch in one call");

struct swap_batch {
	struct swap_page *v[SWAP_OUT_BATCH];
	struct fl_group *group[SWAP_OUT_BATCH];
	unsigned n;
	unsigned clean; /* pages dropped without a write (freed already) */
	int full;	/* a device or a swap_max has no room: stop */
};

#define SWAP_RUN_MAX 16 /* pages a run of steps 1-4 takes at once */

/* Slots, swap usage and swap-cache pages for up to n pages: how many were
 * had (0: no room). */
static unsigned swap_room(struct fl_group *g, struct fl_swap *dev, unsigned n,
			  uint64_t *slot, struct swap_page **sp)
{
	unsigned have;

	for (have = 0; have < n; have++) {
		if (swap_try_charge(g, 1))
			break;
		if (swap_hook(SWAP_HOOK_ALLOC, 0) ||
		    dev->ops->alloc(dev, 1, &slot[have]) < 1) {
			swap_uncharge(g, 1);
			break;
		}
		sp[have] = swap_page_new(dev, slot[have]);
		if (!sp[have]) {
			dev->ops->free(dev, slot[have], 1);
			swap_uncharge(g, 1);
			break;
		}
	}
	return have;
}

/*
 * Steps 1 and 2 for a range of pages taken, one ioctl for the range: the
 * pages of [first, last) of addrs (consecutive addresses) are
 * write-protected and copied into their swap-cache pages.  Map lock (read)
 * and page-table lock held.  0, or -1 if the range stays (nothing
 * changed).
 */
static int swap_out_copy(struct fl_engine *e, const uintptr_t *addrs,
			 unsigned first, unsigned last, struct swap_page **sp)
{
	if (uffd_writeprotect(e->uffd, addrs[first],
			      (size_t)(last - first) << PAGE_SHIFT, 1))
		return -1;
	for (unsigned k = first; k < last; k++)
		memcpy(sp[k]->data, (void *)addrs[k], PAGE_SIZE);
	return 0;
}

/* The pidfd to zap this process's pages through, or -1: never another
 * process's memory (in a child of fork() the pidfd is still the
 * parent's). */
static int own_pidfd(const struct fl_engine *e)
{
	return getpid() == e->self_pid ? e->self_pidfd : -1;
}

/*
 * Step 3 for the nr ranges copied: dropped from the view together (one
 * TLB flush for all where the kernel batches process_madvise: a flush is
 * an IPI to every CPU running the program, dear in a VM), then their
 * uffd-wp markers lifted.  A range that could not be dropped gets its
 * protection back (waking whoever stored meanwhile) and its pages are no
 * longer taken.  Locks as swap_out_copy.
 */
static void swap_out_zap(struct fl_engine *e, const struct iovec *iov,
			 const unsigned *first, unsigned nr,
			 unsigned char *take)
{
	unsigned done = uffd_zap_ranges(own_pidfd(e), iov, nr);

	for (unsigned r = 0; r < nr; r++) {
		uintptr_t start = (uintptr_t)iov[r].iov_base;
		size_t len = iov[r].iov_len;

		if (r < done) {
			uffd_unprotect_quiet(e->uffd, start, len);
			continue;
		}
		uffd_writeprotect(e->uffd, start, len, 0); /* wakes */
		memset(take + first[r], 0, len >> PAGE_SHIFT);
	}
}

/* Which of the n candidates (ascending) are taken: mapped, and private
 * in the engine's page table.  Page-table lock held. */
static void swap_out_taken(struct fl_engine *e, const uintptr_t *addrs,
			   unsigned n, unsigned char *take)
{
	unsigned char present[SWAP_RUN_MAX];

	for (unsigned i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && addrs[j] == addrs[j - 1] + PAGE_SIZE;
		     j++)
			;
		if (uffd_present_pages(e->pagemap_fd, addrs[i],
				       (size_t)(j - i) << PAGE_SHIFT,
				       present + i) < 0)
			memset(present + i, 0, j - i);
	}
	for (unsigned k = 0; k < n; k++) {
		uint64_t entry =
			pte_get_raw(&e->pagetable, addrs[k] >> PAGE_SHIFT);

		/* A kept slot is swap_out_clean's (it has a slot already). */
		take[k] = present[k] &&
			  (entry & PTE_STATE_MASK) == PTE_PRIVATE &&
			  !pte_keeps_slot(entry);
	}
}

/*
 * Swap out the private pages among the n candidates of m (ascending
 * addresses, n <= SWAP_RUN_MAX, and room in b for them): steps 1-4, with
 * each run of consecutive pages write-protected at once and all of them
 * dropped at once.  Map lock (read) held.  Returns how many went to the
 * cache (added to b), or -1 if there is no swap room left.
 */
static int swap_out_pick(struct fl_engine *e, struct fl_mapping *m,
			 struct fl_swap *dev, const uintptr_t *addrs,
			 unsigned n, struct swap_batch *b)
{
	struct pagetable *pt = &e->pagetable;
	struct fl_group *g = m->group;
	struct swap_page *sp[SWAP_RUN_MAX];
	uint64_t slot[SWAP_RUN_MAX];
	unsigned char take[SWAP_RUN_MAX];
	struct iovec iov[SWAP_RUN_MAX];
	unsigned first[SWAP_RUN_MAX], nr = 0;
	int went = 0;

	n = swap_room(g, dev, n, slot, sp);
	if (n == 0)
		return -1;
	/* Fault-around maps cache pages into a private view under the cache
	 * lock (read), past entries it saw as not swapped: exclude it, so
	 * that it never maps the object's page over a private one swapped
	 * out meanwhile. */
	if (m->object)
		pthread_rwlock_wrlock(&m->object->lock);
	pagetable_lock(pt);
	swap_out_taken(e, addrs, n, take);
	for (unsigned i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && take[i] && take[j] &&
				addrs[j] == addrs[j - 1] + PAGE_SIZE;
		     j++)
			;
		if (!take[i])
			continue;
		if (swap_out_copy(e, addrs, i, j, sp)) {
			memset(take + i, 0, j - i);
			continue;
		}
		iov[nr] = (struct iovec){(void *)addrs[i],
					 (size_t)(j - i) << PAGE_SHIFT};
		first[nr++] = i;
	}
	if (nr)
		swap_out_zap(e, iov, first, nr, take);
	for (unsigned k = 0; k < n; k++) {
		if (!take[k])
			continue;
		/* Replaces an entry: no ENOMEM. */
		pte_set_raw(pt, addrs[k] >> PAGE_SHIFT,
			    swap_entry(dev, slot[k]));
		sp[k]->charged = g; /* the private page's charge */
		atomic_store(&sp[k]->page.flags, PG_UPTODATE | PG_WRITEBACK);
		page_get(&sp[k]->page); /* the writer's */
		swap_cache_insert(e, sp[k]);
		b->v[b->n] = sp[k];
		b->group[b->n++] = g;
		went++;
	}
	atomic_fetch_sub(&g->private_pages, (uint64_t)went);
	pagetable_unlock(pt);
	if (m->object)
		pthread_rwlock_unlock(&m->object->lock);
	for (unsigned k = 0; k < n; k++) {
		if (take[k])
			continue;
		page_put(&sp[k]->page);
		dev->ops->free(dev, slot[k], 1);
		swap_uncharge(g, 1);
	}
	return went;
}

/*
 * What a sweep of the clock takes: pages that keep their slots (clean:
 * dropped without a write), or any private page, passing over those
 * referenced since the last look (their bit cleared), or taking them too.
 */
enum pick_mode { PICK_CLEAN, PICK_FIRST, PICK_SECOND };

/* Entries a clean sweep looks at in one reclaim pass, at most: clean pages
 * may be few and far between, and the other sweeps take any page. */
#define CLEAN_SCAN_MAX 4096

/* A kept page for the clean sweep: not one that came back after a clean
 * drop (it is in use: the clock over all pages decides for it). */
static int pte_is_kept(uint64_t value)
{
	return pte_keeps_slot(value) && !(value & PTE_REFAULTED);
}

/*
 * Candidates: up to max private pages in [*vpn, last] as mode says, those
 * referenced since the last look passed over (their bit cleared) unless
 * mode is PICK_SECOND; at most *budget entries looked at (counted down).
 * Takes the page-table lock.  *vpn is left past the last looked at.
 */
static unsigned pick_pages(struct pagetable *pt, uint64_t last, uint64_t *vpn,
			   enum pick_mode mode, uint64_t *budget,
			   uintptr_t *out, unsigned max)
{
	unsigned n = 0;
	void *entry;

	pagetable_lock(pt);
	while (n < max && *vpn <= last && *budget &&
	       (entry = radix_next(&pt->entries, vpn, last))) {
		uint64_t value = (uint64_t)(uintptr_t)entry;

		(*budget)--;
		if ((value & PTE_STATE_MASK) == PTE_PRIVATE &&
		    (mode != PICK_CLEAN || pte_is_kept(value))) {
			if ((value & PTE_REFERENCED) && mode != PICK_SECOND)
				pte_set_raw(pt, *vpn, value & ~PTE_REFERENCED);
			else
				out[n++] = *vpn << PAGE_SHIFT;
		}
		if ((*vpn)++ == last)
			break;
	}
	pagetable_unlock(pt);
	return n;
}

/*
 * Drop those of the n candidates (ascending) whose entries keep a slot:
 * write-protected since they were swapped in, their slots hold their data.
 * They are zapped together (their uffd-wp markers lifted after), their
 * entries made swap entries again and their memory charge given back;
 * nothing is written.  The other candidates are left in rest.  Map lock
 * (read) held.  Returns how many are in rest.
 */
static unsigned swap_out_clean(struct fl_engine *e, struct fl_mapping *m,
			       const uintptr_t *addrs, unsigned n,
			       uintptr_t *rest, struct swap_batch *b)
{
	struct pagetable *pt = &e->pagetable;
	struct iovec iov[SWAP_RUN_MAX];
	unsigned nr = 0, nrest = 0, done;
	uint64_t went = 0;

	if (!__atomic_load_n(&pt->nr_kept, __ATOMIC_RELAXED)) {
		memcpy(rest, addrs, n * sizeof(*addrs));
		return n;
	}
	/* Fault-around must not map the object's page where a private one
	 * was (see swap_out_pick). */
	if (m->object)
		pthread_rwlock_wrlock(&m->object->lock);
	pagetable_lock(pt);
	for (unsigned k = 0; k < n; k++) {
		uint64_t entry = pte_get_raw(pt, addrs[k] >> PAGE_SHIFT);

		if (!pte_keeps_slot(entry))
			rest[nrest++] = addrs[k];
		else if (nr && (uintptr_t)iov[nr - 1].iov_base +
					       iov[nr - 1].iov_len ==
				       addrs[k])
			iov[nr - 1].iov_len += PAGE_SIZE;
		else
			iov[nr++] = (struct iovec){(void *)addrs[k], PAGE_SIZE};
	}
	done = nr ? uffd_zap_ranges(own_pidfd(e), iov, nr) : 0;
	for (unsigned r = 0; r < done; r++) { /* the others stay kept */
		uintptr_t start = (uintptr_t)iov[r].iov_base;

		uffd_unprotect_quiet(e->uffd, start, iov[r].iov_len);
		for (uintptr_t a = start; a < start + iov[r].iov_len;
		     a += PAGE_SIZE, went++)
			pte_set_raw(pt, a >> PAGE_SHIFT,
				    swap_entry_of_kept(
					    pte_get_raw(pt, a >> PAGE_SHIFT)));
	}
	atomic_fetch_sub(&m->group->private_pages, went);
	pagetable_unlock(pt);
	if (m->object)
		pthread_rwlock_unlock(&m->object->lock);
	if (went) {
		group_uncharge(m->group, went);
		atomic_fetch_add(&m->group->swap_outs_clean, went);
		atomic_fetch_add(&m->group->pages_reclaimed, went);
		b->clean += (unsigned)went;
	}
	return nrest;
}

/* Swap out the n candidates (ascending), as many as b still wants (the
 * caller asks only while it wants some).  Map lock (read) held. */
static void swap_out_candidates(struct fl_engine *e, struct fl_mapping *m,
				struct fl_swap *dev, const uintptr_t *addrs,
				unsigned n, uint64_t want, enum pick_mode mode,
				struct swap_batch *b)
{
	uintptr_t dirty[SWAP_RUN_MAX];

	if (n > want - b->n - b->clean)
		n = (unsigned)(want - b->n - b->clean);
	n = swap_out_clean(e, m, addrs, n, dirty, b);
	/* A clean sweep's candidate written to meanwhile waits its turn. */
	if (n && mode != PICK_CLEAN &&
	    swap_out_pick(e, m, dev, dirty, n, b) < 0)
		b->full = 1;
}

/* Whether reclaim for g may swap m's pages, and to which device. */
static struct fl_swap *swappable(struct fl_mapping *m, struct fl_group *g)
{
	if (m->kind == MAP_KIND_SHARED || !(m->prot & PROT_READ) ||
	    !group_within(m->group, g))
		return NULL;
	return group_swap_dev(m->group);
}

/*
 * One sweep of a clock hand (*hand, a virtual page number) round the
 * mappings of g's subtree: from where the hand stopped, once round,
 * taking pages as mode says into b until it has want, or budget entries
 * were looked at.  Map lock (read) held.
 */
static void swap_sweep(struct fl_group *g, _Atomic uint64_t *hand_p,
		       enum pick_mode mode, uint64_t budget, uint64_t want,
		       struct swap_batch *b)
{
	struct fl_engine *e = g->engine;
	size_t nr = e->mappings.nr, i0 = 0;
	uint64_t hand = atomic_load(hand_p);

	while (i0 < nr && (e->mappings.v[i0]->end >> PAGE_SHIFT) <= hand)
		i0++;
	if (i0 == nr)
		i0 = 0;
	for (size_t step = 0;
	     step <= nr && b->n + b->clean < want && !b->full && budget;
	     step++) {
		struct fl_mapping *m = e->mappings.v[(i0 + step) % nr];
		uint64_t vpn = m->start >> PAGE_SHIFT;
		uint64_t last = (m->end >> PAGE_SHIFT) - 1;
		uintptr_t addrs[SWAP_RUN_MAX];
		struct fl_swap *dev = swappable(m, g);
		unsigned got;

		/* The hand's mapping: from the hand on at the first step, up
		 * to it at the last (once round). */
		if (step == 0 && hand > vpn && hand <= last)
			vpn = hand;
		if (step == nr) {
			if (hand <= vpn || hand > last)
				break;
			last = hand - 1;
		}
		if (!dev)
			continue;
		while (b->n + b->clean < want && !b->full &&
		       (got = pick_pages(&e->pagetable, last, &vpn, mode,
					 &budget, addrs, SWAP_RUN_MAX)))
			swap_out_candidates(e, m, dev, addrs, got, want, mode,
					    b);
		atomic_store(hand_p, vpn);
	}
}

/*
 * Fill b from the mappings of g's subtree.  Pages that keep their slots
 * first, with a hand of their own: dropping one costs no write, and which
 * pages are hot is not known (the engine sees faults, not accesses), so
 * the page that is cheaper to lose goes first; a clean page swapped in
 * since the last look still gets its second chance.  Then like a clock:
 * round the address space once passing over pages referenced since the
 * last look, then once taking them too.  Map lock (read) held.
 */
static void swap_pick(struct fl_group *g, uint64_t want, struct swap_batch *b)
{
	struct fl_engine *e = g->engine;

	if (e->mappings.nr == 0)
		return;
	if (__atomic_load_n(&e->pagetable.nr_kept, __ATOMIC_RELAXED))
		swap_sweep(g, &e->swap.clean_clock, PICK_CLEAN, CLEAN_SCAN_MAX,
			   want, b);
	swap_sweep(g, &e->swap.clock, PICK_FIRST, UINT64_MAX, want, b);
	swap_sweep(g, &e->swap.clock, PICK_SECOND, UINT64_MAX, want, b);
}

/* Pages from i on, none of them done, whose slots follow each other on
 * one device. */
static unsigned slot_run(struct swap_page *const *v, const unsigned char *done,
			 unsigned i, unsigned n)
{
	unsigned j = i + 1;

	while (j < n && !done[j] && v[j]->dev == v[i]->dev &&
	       v[j]->slot == v[j - 1]->slot + 1)
		j++;
	return j - i;
}

/*
 * Write the run of len pages of v in one device write through stage
 * (SWAP_OUT_BATCH pages, or NULL: page by page); ok[k] says which went.
 * If the run's write fails, each page is written on its own.
 */
static void write_run(struct swap_page *const *v, unsigned len,
		      unsigned char *stage, unsigned char *ok)
{
	struct fl_swap *dev = v[0]->dev;

	if (len > 1 && stage) {
		for (unsigned k = 0; k < len; k++)
			memcpy(stage + ((size_t)k << PAGE_SHIFT), v[k]->data,
			       PAGE_SIZE);
		if (dev->ops->write(dev, v[0]->slot, stage, len) == 0) {
			memset(ok, 1, len);
			return;
		}
	}
	for (unsigned k = 0; k < len; k++)
		ok[k] = dev->ops->write(dev, v[k]->slot, v[k]->data, 1) == 0;
}

/*
 * The pages of v[0..n) not done yet that are on v[i]'s device, written
 * with its write_pages, several writes in flight (done and ok set for
 * those it wrote).
 */
static void write_in_flight(struct swap_page *const *v, unsigned n, unsigned i,
			    unsigned char *done, unsigned char *ok)
{
	struct fl_swap *dev = v[i]->dev;
	uint64_t slots[SWAP_OUT_BATCH];
	const void *bufs[SWAP_OUT_BATCH];
	unsigned idx[SWAP_OUT_BATCH], nr = 0;
	unsigned char went[SWAP_OUT_BATCH];

	for (unsigned k = i; k < n; k++) {
		if (done[k] || v[k]->dev != dev)
			continue;
		idx[nr] = k;
		slots[nr] = v[k]->slot;
		bufs[nr++] = v[k]->data;
	}
	if (nr == 0 || dev->ops->write_pages(dev, slots, bufs, nr, went))
		return;
	for (unsigned k = 0; k < nr; k++)
		if (went[k])
			done[idx[k]] = ok[idx[k]] = 1;
}

/* swap_write_pages for at most SWAP_OUT_BATCH pages. */
static void write_batch(struct swap_page *const *v, unsigned n,
			unsigned char *ok)
{
	unsigned char done[SWAP_OUT_BATCH] = {0}, *stage = NULL;

	memset(ok, 0, n);
	for (unsigned k = 0; k < n; k++) {
		if (swap_hook(SWAP_HOOK_WRITE, v[k]->slot)) {
			atomic_fetch_add(&v[k]->dev->write_errors, 1);
			done[k] = 1; /* failed */
		}
	}
	/* Devices that can: every page of the device in flight at once. */
	for (unsigned k = 0; k < n; k++) {
		int seen = 0;

		for (unsigned j = 0; j < k && !seen; j++)
			seen = v[j]->dev == v[k]->dev;
		if (!done[k] && !seen && v[k]->dev->ops->write_pages)
			write_in_flight(v, n, k, done, ok);
	}
	/* The others, and what those did not write: run by run. */
	for (unsigned i = 0, len; i < n; i += len) {
		if (done[i]) {
			len = 1;
			continue;
		}
		len = slot_run(v, done, i, n);
		if (len > 1 && !stage)
			stage = aligned_alloc(PAGE_SIZE, (size_t)SWAP_OUT_BATCH
								 << PAGE_SHIFT);
		write_run(v + i, len, stage, ok + i);
	}
	free(stage);
}

void swap_write_pages(struct swap_page *const *v, unsigned n, unsigned char *ok)
{
	for (unsigned i = 0; i < n; i += SWAP_OUT_BATCH)
		write_batch(v + i,
			    n - i < SWAP_OUT_BATCH ? n - i : SWAP_OUT_BATCH,
			    ok + i);
}

uint64_t swap_reclaim(struct fl_group *g, uint64_t want)
{
	struct fl_engine *e = g->engine;
	struct swap_batch b;
	uint64_t freed = swap_cache_sweep(e);
	unsigned char ok[SWAP_OUT_BATCH];

	fl_assert_may_block();
	while (freed < want) {
		b.n = 0;
		b.clean = 0;
		b.full = 0;
		map_read_lock(e);
		swap_pick(g,
			  want - freed < SWAP_OUT_BATCH ? want - freed
							: SWAP_OUT_BATCH,
			  &b);
		map_unlock(e);
		swap_write_pages(b.v, b.n, ok);
		for (unsigned i = 0; i < b.n; i++) {
			if (ok[i])
				atomic_fetch_add(&b.group[i]->swap_outs, 1);
			if (swap_cache_write_done(e, b.v[i], ok[i])) {
				freed++;
				atomic_fetch_add(&b.group[i]->pages_reclaimed,
						 1);
			}
		}
		freed += b.clean;
		if (b.n + b.clean == 0 || b.full)
			break;
	}
	return freed;
}
