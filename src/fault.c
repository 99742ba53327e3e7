/* SPDX-License-Identifier: MIT */
/*
 * The fault handler.  A fault looks its mapping up under the map lock (read)
 * and resolves there when everything it needs is in memory.  Before anything
 * that blocks (a store read, waiting for a locked page) it takes a reference
 * on what it needs, drops the map lock, does the work and returns
 * FAULT_RETRY; the retry looks everything up again from scratch, because
 * the mapping may have changed meanwhile.  Faults are counted once, when
 * they complete, as major if their first attempt found the page absent.
 *
 * How a fault is resolved (see DESIGN.md for the userfaultfd behaviour):
 *   anonymous read     map the zero page, write-protected
 *   anonymous write    UFFDIO_COPY zeroed pages (a window around the fault)
 *   zero page written  (WP fault) unprotect: the kernel allocates the page
 *   cache page absent  read a batch from the store into the memfd, retry
 *   cache page present UFFDIO_CONTINUE it and its cached neighbours,
 *                      write-protected so the first store is seen
 *   shared write       lock the page, mark it dirty, map it writable
 *   private write      claim a private copy, map the cache page read-only
 *                      without write protection: the kernel copies it
 *   beyond the object  SIGBUS (UFFDIO_POISON), counted
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine.h"
#include "fault.h"
#include "fault_priv.h"
#include "flusher.h"
#include "group.h"
#include "object.h"
#include "readahead.h"
#include "reclaim.h"
#include "swap.h"
#include "uffd.h"

/* The fault-around window around a lone fault, in pages. */
#define AROUND_START_PAGES 16

/* An aligned window of up to max pages around addr, within the mapping. */
static void fault_window(const struct fault *f, unsigned max, uintptr_t *lo,
			 uintptr_t *hi)
{
	uintptr_t span = (uintptr_t)max << PAGE_SHIFT;

	if (f->m->advice == MADV_RANDOM)
		span = PAGE_SIZE;
	*lo = f->addr - (f->addr - f->m->start) % span;
	*hi = *lo + span;
	if (*hi > f->m->end || *hi < *lo)
		*hi = f->m->end;
}

static void fault_count(struct fault *f, size_t field_offset, uint64_t n)
{
	_Atomic uint64_t *engine_counter =
		(_Atomic uint64_t *)((char *)&f->e->stats + field_offset);
	_Atomic uint64_t *mapping_counter =
		(_Atomic uint64_t *)((char *)&f->m->stats + field_offset);

	atomic_fetch_add_explicit(engine_counter, n, memory_order_relaxed);
	atomic_fetch_add_explicit(mapping_counter, n, memory_order_relaxed);
}

#define COUNT(f, field, n) fault_count(f, offsetof(struct counters, field), n)

/*
 * Empty the page table entry at f->addr so that UFFDIO_POISON takes it.
 * It may hold a page (the zero page, a cache page: a write-protect fault,
 * or a page fault-around mapped meanwhile) or a uffd-wp marker (left where
 * a write-protected page was zapped: by eviction, the second chance, or
 * the zap here), and the poison refuses both.  A cache page leaves only
 * this view (it stays in the memfd); a private page is never touched:
 * under the page table lock no claim can make one meanwhile.  Map lock
 * held.  0, or -1 if the page is private.
 */
static int fault_empty_page(struct fault *f)
{
	struct pagetable *pt = &f->e->pagetable;
	uint64_t vpn = f->addr >> PAGE_SHIFT;
	int rc = -1;

	pagetable_lock(pt);
	if (pte_get(pt, vpn) != PTE_PRIVATE) {
		madvise((void *)f->addr, PAGE_SIZE, MADV_DONTNEED);
		uffd_unprotect_quiet(f->e->uffd, f->addr, PAGE_SIZE);
		rc = 0;
	}
	pagetable_unlock(pt);
	return rc;
}

/*
 * Record the poison before placing it, so that from the moment the thread
 * is woken by it no claim (of another fault, say the thread's next one,
 * whose window covers this page) can fill the page, and fault-around
 * never maps over it.  Not over a private page: -1 then (the thread's own
 * page stays).  Map lock held.
 */
static int fault_mark_poison(struct fault *f)
{
	struct pagetable *pt = &f->e->pagetable;
	uint64_t vpn = f->addr >> PAGE_SHIFT;
	int rc = 0;

	pagetable_lock(pt);
	if (pte_get(pt, vpn) == PTE_PRIVATE)
		rc = -1;
	else if (pte_get(pt, vpn) == PTE_SWAP)
		rc = -2; /* its slot stays: the next fault reads it */
	else
		pte_set(pt, vpn, PTE_POISON); /* best effort */
	pagetable_unlock(pt);
	return rc;
}

static void fault_forget_poison(struct fault *f)
{
	struct pagetable *pt = &f->e->pagetable;
	uint64_t vpn = f->addr >> PAGE_SHIFT;

	pagetable_lock(pt);
	if (pte_get(pt, vpn) == PTE_POISON)
		pte_set(pt, vpn, PTE_NONE);
	pagetable_unlock(pt);
}

/*
 * The poison could not be placed (the entry could not be emptied: an ioctl
 * failing): queue SIGBUS for the faulting thread itself, so that it is
 * delivered when the woken thread returns to user space, before it retries
 * the access.  Only the kernel may send BUS_ADRERR to another thread: this
 * one comes as SI_QUEUE, with si_addr set all the same.
 */
void fault_signal_thread(struct fault *f)
{
	siginfo_t info = {.si_signo = SIGBUS, .si_code = SI_QUEUE};

	info.si_addr = (void *)f->addr;
	syscall(SYS_rt_tgsigqueueinfo, getpid(), (pid_t)f->tid, SIGBUS, &info);
}

/*
 * Every mapping kind and every prior state of the entry (never mapped,
 * mapped, evicted, write-protected, the zero page) ends in the poison, so
 * the thread gets exactly one SIGBUS instead of faulting again forever;
 * where the poison cannot be placed, the signal is sent to the thread.
 * Only a private page of the thread's own stops it (then it is woken and
 * finds its page).
 */
enum fault_result fault_sigbus(struct fault *f)
{
	int own;

	f->signalled = 1;
	COUNT(f, errors, 1);
	own = fault_mark_poison(f);
	if (own == -2) { /* swapped out: no poison over the entry */
		fault_signal_thread(f);
		uffd_wake(f->e->uffd, f->addr, PAGE_SIZE);
		return FAULT_DONE;
	}
	if (own) { /* the thread's own page */
		uffd_wake(f->e->uffd, f->addr, PAGE_SIZE);
		return FAULT_DONE;
	}
	for (int tries = 0; tries < 16; tries++) {
		if (uffd_poison(f->e->uffd, f->addr, PAGE_SIZE) == 0)
			return FAULT_DONE; /* it woke the thread */
		if (errno == EAGAIN)
			continue; /* an mm change in flight */
		if (errno != EEXIST)
			break;
		if (fault_empty_page(f)) { /* the thread's own page */
			uffd_wake(f->e->uffd, f->addr, PAGE_SIZE);
			return FAULT_DONE;
		}
	}
	/* Not poisoned after all: a later fault there is served again.  The
	 * signal goes only to a thread still waiting for this page (a stale
	 * message's thread has gone on, and must not get it elsewhere). */
	fault_forget_poison(f);
	if (!fault_is_stale(f))
		fault_signal_thread(f);
	uffd_wake(f->e->uffd, f->addr, PAGE_SIZE);
	return FAULT_DONE;
}

/*
 * A fault is counted once, on its first attempt, as major if it must wait
 * for the page to be read: before anything can wake its thread, so that
 * what the thread reads of the statistics afterwards includes it.
 */
void fault_count_first(struct fault *f, int major)
{
	if (f->attempts)
		return;
	f->major = major;
	if (major) {
		COUNT(f, major_faults, 1);
		atomic_fetch_add(&f->m->group->major_faults, 1);
	} else {
		COUNT(f, minor_faults, 1);
		atomic_fetch_add(&f->m->group->minor_faults, 1);
	}
}

/* Credit the mapping with the pages this fault read (the engine counted
 * them when they were read), if it still shows what they were read from. */
static void fault_done_count(struct fault *f)
{
	if (!f->pages_read || f->m->object != f->read_object)
		return;
	if (f->m->object->store)
		count_add(&f->m->stats, pages_read, f->pages_read);
	else
		count_add(&f->m->stats, zero_fills, f->pages_read);
	f->pages_read = 0;
}

/* ---- private pages ------------------------------------------------------ */

/*
 * Make the page at vpn private (a copy-on-write copy, or an anonymous page
 * from the zero page), charged to the mapping's group before anything is
 * locked or mapped.  Map lock held; takes the page-table lock.  Returns the
 * previous state; -EDQUOT with *over set if the group (or an ancestor) is
 * at its max; -ENOMEM without memory for the entry; -EAGAIN if the page
 * was swapped out meanwhile (retry: the swap-in path takes it).
 */
static int claim_private(struct fault *f, uint64_t vpn, struct fl_group **over)
{
	struct pagetable *pt = &f->e->pagetable;
	struct fl_group *g = f->m->group;
	int old;

	pagetable_lock(pt);
	old = pte_get(pt, vpn);
	if (old == PTE_SWAP) {
		old = -EAGAIN; /* swapped out since the fault looked */
	} else if (old != PTE_PRIVATE) {
		if (group_try_charge(g, 1, over)) {
			old = -EDQUOT;
		} else if (pte_set(pt, vpn, PTE_PRIVATE) < 0) {
			group_uncharge(g, 1);
			old = -ENOMEM;
		} else {
			atomic_fetch_add(&g->private_pages, 1);
		}
	}
	pagetable_unlock(pt);
	return old;
}

/*
 * Undo claim_private (the ioctl that was to make the page failed): the
 * entry goes back to old and the charge is given back.  Map lock held.
 */
static void unclaim_private(struct fault *f, uint64_t vpn, int old)
{
	struct pagetable *pt = &f->e->pagetable;

	pagetable_lock(pt);
	if (pte_get(pt, vpn) == PTE_PRIVATE &&
	    pte_set(pt, vpn, (enum pte_state)old) >= 0) {
		atomic_fetch_sub(&f->m->group->private_pages, 1);
		group_uncharge(f->m->group, 1);
	}
	pagetable_unlock(pt);
}

/* ---- anonymous memory --------------------------------------------------- */

#define ANON_WINDOW_MAX 512

/*
 * A resolving ioctl failed for part of the run [start, start + pages):
 * forget the claims (as state) of the pages it left unmapped, uncharging
 * private ones, so that a later fault claims them again instead of finding
 * them claimed and never filled.  If what is mapped cannot be known, the
 * claims stay.  Map lock held.
 */
static void anon_unclaim_unmapped(struct fault *f, uintptr_t start,
				  size_t pages, enum pte_state state)
{
	struct pagetable *pt = &f->e->pagetable;
	unsigned char present[ANON_WINDOW_MAX];
	uint64_t freed = 0;

	if (uffd_present_pages(f->e->pagemap_fd, start, pages << PAGE_SHIFT,
			       present) < 0)
		return;
	pagetable_lock(pt);
	for (size_t i = 0; i < pages; i++) {
		uint64_t vpn = (start >> PAGE_SHIFT) + i;

		if (present[i] || pte_get(pt, vpn) != state ||
		    pte_keeps_slot(pte_get_raw(pt, vpn)))
			continue;
		pte_set(pt, vpn, PTE_NONE);
		freed += state == PTE_PRIVATE;
	}
	pagetable_unlock(pt);
	if (freed) {
		atomic_fetch_sub(&f->m->group->private_pages, freed);
		group_uncharge(f->m->group, freed);
	}
}

/*
 * Map the zero page over a run, write-protected so that stores are seen.
 * A store by another thread can land between the two ioctls and make a
 * private page unseen: find such pages and record them.  Returns how many.
 * If the protection fails, the zero pages stay mapped unprotected: a later
 * store to one is not seen (its page goes uncounted until unmap), but no
 * store is ever lost, as one that landed would be if the run were dropped.
 */
static long anon_zero_run(struct fault *f, uintptr_t start, size_t pages,
			  int *failed)
{
	struct pagetable *pt = &f->e->pagetable;
	unsigned char written[ANON_WINDOW_MAX];
	size_t len = pages << PAGE_SHIFT;
	long n = uffd_zeropage(f->e->uffd, f->e->pagemap_fd, start, len);

	if (n != (long)pages)
		*failed = 1;
	if (uffd_writeprotect(f->e->uffd, start, len, 1))
		*failed = 1; /* the unmapped pages are unclaimed below */
	if (*failed)
		anon_unclaim_unmapped(f, start, pages, PTE_ZERO);
	n = uffd_exclusive_pages(f->e->pagemap_fd, start, len, written);
	if (n <= 0)
		return 0;
	pagetable_lock(pt);
	for (size_t i = 0; i < pages; i++) {
		if (written[i] && pte_set(pt, (start >> PAGE_SHIFT) + i,
					  PTE_PRIVATE) == PTE_ZERO) {
			/* It exists already: charged even past max. */
			group_force_charge(f->m->group, 1);
			atomic_fetch_add(&f->m->group->private_pages, 1);
		}
	}
	pagetable_unlock(pt);
	return n;
}

/*
 * Claim the unpopulated pages of [lo, hi) as state, private pages charged
 * first (the faulting page alone, if the whole window does not fit).
 * Returns how many were claimed, or -EDQUOT with *over set if not even the
 * faulting page fits; *no_entry is set if there was no memory for the
 * faulting page's entry.
 */
static long anon_claim(struct fault *f, uintptr_t lo, size_t n,
		       enum pte_state state, unsigned char *claimed,
		       struct fl_group **over, int *no_entry)
{
	struct pagetable *pt = &f->e->pagetable;
	struct fl_group *g = f->m->group;
	size_t at = (f->addr - lo) >> PAGE_SHIFT;
	long count = 0;

	pagetable_lock(pt);
	for (size_t i = 0; i < n; i++) {
		claimed[i] = pte_get(pt, (lo >> PAGE_SHIFT) + i) == PTE_NONE;
		count += claimed[i];
	}
	if (state == PTE_PRIVATE && count &&
	    group_try_charge(g, (uint64_t)count, over)) {
		count = claimed[at];
		memset(claimed, 0, n);
		claimed[at] = (unsigned char)count;
		if (count && group_try_charge(g, 1, over)) {
			pagetable_unlock(pt);
			return -EDQUOT;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (claimed[i] &&
		    pte_set(pt, (lo >> PAGE_SHIFT) + i, state) < 0) {
			claimed[i] = 0;
			count--;
			if (i == at)
				*no_entry = 1;
			if (state == PTE_PRIVATE)
				group_uncharge(g, 1);
		}
	}
	if (state == PTE_PRIVATE)
		atomic_fetch_add(&g->private_pages, (uint64_t)count);
	pagetable_unlock(pt);
	return count;
}

/*
 * Waking what a fault's window mapped: each run as it is mapped, but the
 * faulting thread's own run last (the whole window is mapped before it
 * goes on: see fault_around), and its page alone if no run covered it
 * (mapped by another fault, or locked meanwhile: it then faults again).
 * Never the window's holes: a thread waiting at a page that is still
 * being read (or swapped in), woken, would only fault again and park a
 * second record on the page.  Records for one address multiplied so
 * under load (each one resumed woke the next page's waiter again,
 * through its own window) until the engine spent all its time waking
 * them.
 */
struct window_wakes {
	struct fault *f;
	uintptr_t lo, hi; /* the faulting page's run, if mapped */
};

/* [lo, hi) is mapped now: wake it, unless it is the faulting page's. */
static void window_wake_run(struct window_wakes *w, uintptr_t lo, uintptr_t hi)
{
	if (w->f->addr >= lo && w->f->addr < hi) {
		w->lo = lo;
		w->hi = hi;
		return;
	}
	uffd_wake(w->f->e->uffd, lo, hi - lo);
}

/* The window is mapped: wake the faulting thread. */
static void window_wake_fault(const struct window_wakes *w)
{
	if (w->hi > w->lo)
		uffd_wake(w->f->e->uffd, w->lo, w->hi - w->lo);
	else
		uffd_wake(w->f->e->uffd, w->f->addr, PAGE_SIZE);
}

/*
 * Fill [lo, hi): zeroed private pages, or the zero page.  Returns the
 * number of private pages made, or -EDQUOT with *over set (see anon_claim).
 * *failed is set if an ioctl failed (the pages it left are unclaimed).
 * Each run filled is woken (window_wake_run).
 */
static long anon_fill_window(struct fault *f, uintptr_t lo, uintptr_t hi,
			     enum pte_state state, struct fl_group **over,
			     int *failed, struct window_wakes *wakes)
{
	unsigned char claimed[ANON_WINDOW_MAX];
	size_t n = (hi - lo) >> PAGE_SHIFT;
	long filled = 0;
	int no_entry = 0;

	if (anon_claim(f, lo, n, state, claimed, over, &no_entry) < 0)
		return -EDQUOT;
	/* No memory for the faulting page's entry: said as a failure, so
	 * that the caller looks.  Woken with nothing mapped, the thread
	 * would fault again at once, for as long as memory is short.  (An
	 * entry another fault made is not: that fault maps the page, and
	 * wakes.) */
	if (no_entry)
		*failed = 1;
	for (size_t i = 0, j; i < n; i = j) {
		uintptr_t start = lo + (i << PAGE_SHIFT);
		int run_failed = 0;
		long done;

		for (j = i; j < n && claimed[j]; j++)
			;
		if (j == i) {
			j++;
			continue;
		}
		if (state == PTE_PRIVATE) {
			done = uffd_copy(f->e->uffd, f->e->pagemap_fd, start,
					 f->e->zero_buffer,
					 (j - i) << PAGE_SHIFT);
			if (done != (long)(j - i)) {
				run_failed = 1;
				anon_unclaim_unmapped(f, start, j - i,
						      PTE_PRIVATE);
			}
		} else {
			done = anon_zero_run(f, start, j - i, &run_failed);
		}
		filled += done > 0 ? done : 0;
		if (run_failed)
			*failed = 1;
		else
			window_wake_run(wakes, start, lo + (j << PAGE_SHIFT));
	}
	return filled;
}

/*
 * Pages a write fault on anonymous memory zero-fills: one, unless the
 * mapping's write faults move forward in order; then fourfold more each
 * time, up to anon_fault_around_pages.  Memory (charged to the group) is
 * only spent ahead of a program that is seen to need it.
 */
static unsigned anon_window_pages(struct fault *f)
{
	unsigned max = f->e->config.anon_fault_around_pages;
	uintptr_t last =
		atomic_load_explicit(&f->m->last_fault, memory_order_relaxed);
	unsigned pages =
		atomic_load_explicit(&f->m->around_pages, memory_order_relaxed);
	int sequential = pages && f->addr > last &&
			 f->addr - last <= (uintptr_t)pages << PAGE_SHIFT;

	if (f->m->advice == MADV_SEQUENTIAL)
		pages = max;
	else if (sequential && f->m->advice != MADV_RANDOM)
		pages = pages * 4 < max ? pages * 4 : max;
	else
		pages = 1;
	atomic_store_explicit(&f->m->last_fault, f->addr, memory_order_relaxed);
	atomic_store_explicit(&f->m->around_pages, pages, memory_order_relaxed);
	return pages;
}

/*
 * Pages a read fault on anonymous memory maps the zero page over: the
 * fault-around start window (an aligned 16 pages), never more than a
 * zero-fill batch, and at least the faulting page.
 */
static unsigned anon_read_pages(const struct fault *f)
{
	unsigned pages = f->e->config.fault_around_pages;

	if (pages > AROUND_START_PAGES)
		pages = AROUND_START_PAGES;
	return pages ? pages : 1;
}

/*
 * A store to the zero page: the page becomes private (charged first).
 * Map lock held on entry.  Returns DONE (lock held), or PARKED waiting for
 * memory (lock dropped).
 */
static enum fault_result fault_anon_wp(struct fault *f)
{
	struct fl_group *over;
	int old = claim_private(f, f->addr >> PAGE_SHIFT, &over);

	if (old == -EDQUOT)
		return fault_wait_memory(f, over, 1);
	if (old == -EAGAIN) {
		fault_unlock(f);
		return FAULT_RETRY;
	}
	if (old < 0)
		return fault_sigbus(f);
	/* Counted before the ioctl wakes the thread; taken back if it fails. */
	if (old == PTE_ZERO)
		COUNT(f, zero_fills, 1);
	if (uffd_writeprotect(f->e->uffd, f->addr, PAGE_SIZE, 0)) { /* wakes */
		if (old == PTE_ZERO)
			COUNT(f, zero_fills, (uint64_t)-1);
		if (old != PTE_PRIVATE)
			unclaim_private(f, f->addr >> PAGE_SHIFT, old);
		return fault_sigbus(f);
	}
	return FAULT_DONE;
}

/*
 * A fault on private anonymous memory.  Map lock held on entry.  Returns
 * DONE (lock held), or PARKED waiting for memory (lock dropped).  Takes no
 * page lock and no reference: the engine page table (its own lock) says
 * what each page holds.
 */
static enum fault_result fault_anon(struct fault *f)
{
	struct window_wakes wakes = {.f = f};
	struct fl_group *over;
	uintptr_t lo, hi;
	long filled;
	int failed = 0;

	fault_count_first(f, 0);
	if (f->wp && !f->write) { /* stale: the mapping is read-only now */
		uffd_wake(f->e->uffd, f->addr, PAGE_SIZE);
		return FAULT_DONE;
	}
	if (f->wp)
		return fault_anon_wp(f);
	fault_window(f, f->write ? anon_window_pages(f) : anon_read_pages(f),
		     &lo, &hi);
	if (hi - lo > (uintptr_t)ANON_WINDOW_MAX << PAGE_SHIFT) {
		lo = f->addr;
		hi = lo + PAGE_SIZE;
	}
	filled = anon_fill_window(f, lo, hi, f->write ? PTE_PRIVATE : PTE_ZERO,
				  &over, &failed, &wakes);
	if (filled == -EDQUOT)
		return fault_wait_memory(f, over, 1);
	if (failed && !fault_is_stale(f)) /* the faulting page is not there */
		return fault_sigbus(f);
	COUNT(f, zero_fills, (uint64_t)filled);
	window_wake_fault(&wakes);
	return FAULT_DONE;
}

/* ---- the page cache ----------------------------------------------------- */

/* The fault found its page in the cache: readahead learns of it.
 * Returns 1 if this is the first use of a page read ahead. */
static int fault_readahead_hit(struct fault *f, struct fl_object *o,
			       struct fl_page *page)
{
	if (!readahead_hit(f->e, f->m, o, page))
		return 0;
	COUNT(f, readahead_used, 1);
	return 1;
}

/* Set by fault_read when the fault it serves starts a random read (see
 * fault_handle's return); fault_handle clears it first. */
static __thread int started_random_read;

/*
 * The page is absent: insert it (and what follows) locked, charged, and
 * read it from the store on an I/O thread, then retry.  Map lock held on
 * entry.  Returns PARKED (lock dropped: waiting for the read or for
 * memory), RETRY (lock dropped: another fault inserted it first), AGAIN
 * (the comparison mode read it under the lock) or DONE (SIGBUS, lock
 * held).
 */
static enum fault_result fault_read(struct fault *f, struct fl_object *o,
				    uint64_t index)
{
	struct fl_group *over;
	struct ra_run run;
	uint64_t want;
	long n;

	if (f->read_one) /* the group has room for this page alone */
		run = ra_run_from(index, 1);
	else
		readahead_plan(f->e, f->m, index, &run);
	run.demand_tid = f->tid;
	run.demand_addr = f->addr;
	n = pagecache_start_run(o, &run, f->m->group, &over, &want);

	if (n == -EDQUOT) /* the group is full: make room for the run */
		return fault_wait_memory(f, over, want);
	if (n < 0)
		return fault_sigbus(f); /* no memory for descriptors */
	if (n == 0) { /* another fault inserted it meanwhile */
		fault_unlock(f);
		return FAULT_RETRY;
	}
	readahead_missed(f->e, f->m, o, &run, (unsigned long)n);
	if (n > 1)
		COUNT(f, readahead_pages, (uint64_t)n - 1);
	if (readahead_random(f->m, index))
		started_random_read = 1;
	return fault_start_read(f, o, run.first, (unsigned long)n, index);
}

struct around {
	struct fault *f;
	unsigned flags; /* UFFD_MAP_*: write-protected; woken by the ioctl */
	int failed;	/* an ioctl failed: the faulting page may be unmapped */
	int woken;	/* the ioctl mapped the faulting page, and woke it */
	struct window_wakes wakes;
};

/* Map a run of cached pages, stepping over poisoned ones (the poison
 * stays until MADV_DONTNEED or unmap, as with mmap). */
static void fault_around_run(uint64_t index, unsigned long count, void *arg)
{
	struct around *a = arg;
	uintptr_t at = mapping_addr(a->f->m, index);
	uintptr_t end = at + (count << PAGE_SHIFT);

	while (at < end) {
		uint64_t bad = pagetable_next_poisoned(&a->f->e->pagetable,
						       at >> PAGE_SHIFT,
						       (end >> PAGE_SHIFT) - 1);
		uintptr_t stop = bad == UINT64_MAX ? end : bad << PAGE_SHIFT;
		long want = (long)((stop - at) >> PAGE_SHIFT);

		if (want) {
			long n;

			/* Counted first: the ioctl may wake the thread
			 * (UFFD_MAP_WAKE).  What it did not map is taken
			 * back. */
			COUNT(a->f, pages_mapped, (uint64_t)want);
			n = uffd_continue(a->f->e->uffd, a->f->e->pagemap_fd,
					  at, stop - at, a->flags);
			if (n < want)
				COUNT(a->f, pages_mapped,
				      (uint64_t)(n > 0 ? n : 0) -
					      (uint64_t)want);
			else if (a->flags & UFFD_MAP_WAKE)
				a->woken = 1;
			if (n < 0)
				a->failed = 1;
			else /* mapped, here or before (or up to an
			      * ioctl's failure, rarely) */
				window_wake_run(&a->wakes, at, stop);
		}
		at = stop + PAGE_SIZE;
	}
}

/*
 * Map the cached pages of [lo, hi), then wake the threads waiting at the
 * pages mapped (window_wake_run, window_wake_fault).
 * Map lock held; takes the cache lock (read) while mapping, so that no
 * page is removed while it is being mapped.  A window of the faulting
 * page alone (a random fault's) is woken by its UFFDIO_CONTINUE itself,
 * where this thread's wakes are direct: a system call fewer.  Nothing may
 * be counted after that ioctl: the thread may already be looking.
 */
static int fault_around_range(struct fault *f, struct fl_object *o,
			      uintptr_t lo, uintptr_t hi)
{
	struct around a = {
		.f = f, .flags = o->store ? UFFD_MAP_WP : 0, .wakes = {.f = f}};
	uint64_t last = mapping_index(f->m, hi - 1);

	if (last >= o->nr_pages)
		last = o->nr_pages - 1;
	if (hi - lo == PAGE_SIZE && uffd_wakes_direct())
		a.flags |= UFFD_MAP_WAKE;
	if (lo < hi && mapping_index(f->m, lo) <= last) {
		unsigned long used = pagecache_for_each_run(
			o, mapping_index(f->m, lo), last,
			mapping_index(f->m, f->addr), fault_around_run, &a);

		if (used)
			COUNT(f, readahead_used, used);
	}
	if (a.woken)
		return 0;
	if (!a.failed || fault_is_stale(f)) {
		window_wake_fault(&a.wakes);
		return 0;
	}
	return -1; /* the faulting page is not mapped: not woken */
}

/*
 * The fault-around window, as readahead sizes its window: small and aligned
 * around a lone fault; growing fourfold, forward from the fault, while the
 * mapping's faults move forward through what the last window covered.
 */
static unsigned fault_around_pages(struct fault *f, int *sequential)
{
	unsigned max = f->e->config.fault_around_pages;
	uintptr_t last =
		atomic_load_explicit(&f->m->last_fault, memory_order_relaxed);
	unsigned pages =
		atomic_load_explicit(&f->m->around_pages, memory_order_relaxed);

	*sequential = f->m->advice == MADV_SEQUENTIAL ||
		      (pages && f->addr > last &&
		       f->addr - last <= (uintptr_t)pages << PAGE_SHIFT);
	if (readahead_random(f->m, mapping_index(f->m, f->addr)))
		pages = 1; /* random faults: nothing around them is wanted */
	else if (f->m->advice == MADV_SEQUENTIAL)
		pages = max;
	else if (*sequential)
		pages = pages * 4 < max ? pages * 4 : max;
	else
		pages = AROUND_START_PAGES < max ? AROUND_START_PAGES : max;
	atomic_store_explicit(&f->m->last_fault, f->addr, memory_order_relaxed);
	atomic_store_explicit(&f->m->around_pages, pages, memory_order_relaxed);
	return pages;
}

/*
 * Map the cached, up-to-date pages of the window around the fault,
 * write-protected unless the object has no store to write back to, then
 * wake.  The whole window is mapped before the faulting thread goes on:
 * waking it early only brings its next fault to a second handler that maps
 * the same range at the same time, which measured slower than one.
 */
static int fault_around(struct fault *f, struct fl_object *o)
{
	int sequential;
	unsigned pages = fault_around_pages(f, &sequential);
	uintptr_t lo, hi;

	if (!sequential || f->m->advice == MADV_RANDOM) {
		fault_window(f, pages, &lo, &hi);
	} else {
		lo = f->addr;
		hi = f->m->end - lo > (uintptr_t)pages << PAGE_SHIFT
			     ? lo + ((uintptr_t)pages << PAGE_SHIFT)
			     : f->m->end;
	}
	return fault_around_range(f, o, lo, hi);
}

/*
 * Whether a write-protect fault may predate writeback's last protection of
 * the page: read before it, it may be a store that another thread's fault
 * already let through (a wake-up is per page), and must not re-dirty the
 * page.  A thread that really waits just faults again.
 */
static int fault_predates_clean(const struct fault *f, struct fl_page *page)
{
	return f->batch <= atomic_load(&page->cleaned_batch);
}

/*
 * Whether a fault at this very address lifted the page's protection after
 * f's message had been read: that lift's wake, later still, woke f's
 * thread, so the message is stale for sure.  The lift's number is taken
 * before its wake (which a polling handler defers), and the read had
 * ended before the number was taken.  Page lock held.
 */
static int fault_lifted_since(const struct fault *f, struct fl_page *page)
{
	return page->lifted_addr == f->addr &&
	       f->batch_ended <= page->lifted_batch;
}

/*
 * Whether to dismiss a write-protect fault that may be stale (read before
 * writeback last cleaned the page): yes, unless this thread's last
 * dismissed fault was on this very page, a moment ago (then it really
 * waits: it faulted again at once).  One that is stale for sure (lifted
 * since it was read) is always dismissed.  Nobody is dismissed forever,
 * however often writeback cleans the page under it; and serving a thread
 * clears its record, so no old dismissal lets a later stale message
 * through.
 */
#define DISMISS_HORIZON                                                        \
	1024 /* batch numbers (reads, cleans, lifts): a waiting                \
		   thread's next fault comes at once after its wake */

static int fault_dismiss(struct fault *f, int stale, int lifted)
{
	unsigned slot = f->tid % 256;
	uint64_t key = f->addr | (f->tid & (PAGE_SIZE - 1));
	/* Either way: a handler that dated its read before the dismissal may
	 * have read the thread's fault that came after it. */
	int64_t since =
		(int64_t)(f->batch - atomic_load(&f->e->dismissed_batch[slot]));
	int again = atomic_load(&f->e->dismissed[slot]) == key &&
		    since >= -DISMISS_HORIZON && since <= DISMISS_HORIZON;

	if (!lifted && (!stale || again)) {
		/* Served: no dismissal of this thread on this page stands. */
		if (atomic_load(&f->e->dismissed[slot]) == key)
			atomic_store(&f->e->dismissed[slot], 0);
		return 0;
	}
	atomic_store(&f->e->dismissed_batch[slot],
		     atomic_load(&f->e->msg_batches));
	atomic_store(&f->e->dismissed[slot], key);
	return 1;
}

/*
 * The page_mkwrite point: a store to a shared page marks it dirty, under
 * the page lock, and maps it writable in this view.  Map lock held on
 * entry; the reference on page is consumed.  Returns DONE (lock held;
 * page unlocked), or what fault_wait_page returns if the page is locked.
 */
static enum fault_result fault_mkwrite(struct fault *f, struct fl_object *o,
				       struct fl_page *page, int mapped)
{
	int failed;

	if (!page_trylock(page))
		return fault_wait_page(f, page);
	if (mapped && fault_dismiss(f, fault_predates_clean(f, page),
				    fault_lifted_since(f, page))) {
		COUNT(f, wp_stale, 1);
		page_unlock(page);
		page_put(page);
		uffd_wake(f->e->uffd, f->addr, PAGE_SIZE);
		return FAULT_DONE;
	}
	/* Dirtying a clean page above the group's throttling threshold:
	 * the writer pauses a moment first (balance_dirty_pages). */
	if (o->store && !f->throttled && !page_test(page, PG_DIRTY) &&
	    !f->e->config.hold_map_lock_for_io && page->group) {
		uint64_t pause = flusher_throttle_pause(page->group);

		if (pause) {
			enum fault_result r;

			page_unlock(page);
			/* The page's reference keeps its group while the
			 * pause pins it. */
			r = fault_throttle(f, page->group, pause);
			page_put(page);
			return r;
		}
	}
	fault_done_count(f);
	/* Only a clean page's first store counts, however many race. */
	if (o->store && pagecache_mark_dirty(o, page))
		COUNT(f, wp_faults, 1);
	if (mapped) { /* write-protected in this view: lift it (wakes) */
		page->lifted_addr = f->addr;
		page->lifted_batch =
			atomic_fetch_add(&f->e->msg_batches, 1) + 1;
		failed = uffd_writeprotect(f->e->uffd, f->addr, PAGE_SIZE, 0);
	} else {
		failed = uffd_continue(f->e->uffd, f->e->pagemap_fd, f->addr,
				       PAGE_SIZE, 0) < 0;
	}
	page_unlock(page);
	page_put(page);
	if (failed) /* dirty, but not writable here: it cannot go on */
		return fault_sigbus(f);
	return FAULT_DONE;
}

/*
 * A store to a private view: claim a private copy (counted once per page),
 * then let the store through to a read-only mapping of the cache page, so
 * that the kernel copies it.  The copy is charged before any page lock.
 * Map lock held on entry, and a reference on page, which stays the
 * caller's on DONE (lock held) and goes with the fault on PARKED (lock
 * dropped, waiting for memory: held until the retry).
 */
static enum fault_result fault_cow(struct fault *f, int mapped,
				   struct fl_page *page)
{
	struct fl_group *over;
	int old = claim_private(f, f->addr >> PAGE_SHIFT, &over), failed;

	if (old == -EDQUOT) {
		f->held_page = page; /* put by the retry, or the cancel */
		return fault_wait_memory(f, over, 1);
	}
	if (old == -EAGAIN) { /* swapped out meanwhile: the retry reads it */
		fault_unlock(f);
		return FAULT_RETRY;
	}
	if (old < 0)
		return fault_sigbus(f);
	/* Counted before the ioctl wakes the thread; taken back if it fails. */
	if (old == PTE_NONE)
		COUNT(f, cow_copies, 1);
	if (mapped)
		failed = uffd_writeprotect(f->e->uffd, f->addr, PAGE_SIZE, 0);
	else
		failed = uffd_continue(f->e->uffd, f->e->pagemap_fd, f->addr,
				       PAGE_SIZE, 0) < 0;
	if (failed) { /* no copy was made: give its charge back */
		if (old == PTE_NONE)
			COUNT(f, cow_copies, (uint64_t)-1);
		if (old != PTE_PRIVATE)
			unclaim_private(f, f->addr >> PAGE_SHIFT, old);
		return fault_sigbus(f);
	}
	return FAULT_DONE;
}

/*
 * Whether f repeats the fault that started the read of page, still in
 * flight: the same thread at the same address.  A thread waits in its
 * fault until it is served, so that is the same access again: a signal
 * ended the thread's wait, it ran its handler and faulted anew.  That
 * first fault is parked on the read and ends, whatever the read does, in
 * a wake of its address (the page mapped, or poisoned: one SIGBUS; or the
 * mapping gone), which wakes this thread too: the repeat needs nothing,
 * is not counted (the kernel counts a retried fault once) and is not
 * parked.  Parked, it resumed when the read failed and could run before
 * the first fault placed the poison: it read the page again, a second
 * error.  The address matters: a handler may touch the same object page
 * through another mapping, and that fault must be served.
 */
static int fault_repeats_read(const struct fault *f, struct fl_page *page)
{
	return f->tid && atomic_load(&page->read_tid) == f->tid &&
	       atomic_load(&page->read_addr) == f->addr;
}

/*
 * A fault on a view of an object's page cache (shared, private, or shared
 * anonymous memory).  Map lock held on entry.  Returns DONE (lock held),
 * or RETRY, AGAIN or PARKED as the function it waited in says.  Holds a
 * reference on the page while it works on it; none is left on DONE.
 */
static enum fault_result fault_file(struct fault *f)
{
	struct fl_object *o = f->m->object;
	uint64_t index = mapping_index(f->m, f->addr);
	struct fl_page *page;
	int first_use = 0;

	if (index >= o->nr_pages ||
	    (f->error_object == o && f->error_index == index))
		return fault_sigbus(f);
	page = pagecache_get(o, index);
	if (page && page_test(page, PG_UPTODATE))
		first_use = fault_readahead_hit(f, o, page);
	else if (page && fault_repeats_read(f, page)) {
		page_put(page);
		return FAULT_DONE; /* its first fault wakes it */
	}
	/* Anonymous shared memory's pages are zero-filled: minor. */
	fault_count_first(f,
			  (!page || !page_test(page, PG_UPTODATE)) && o->store);
	if (!page || !page_test(page, PG_UPTODATE)) {
		if (page)
			return fault_wait_page(f, page);
		return fault_read(f, o, index);
	}
	/* Used again: the fault that read it, or the first use of a page
	 * read ahead, does not count (a stream's pages are used once). */
	if (!f->major && !first_use)
		lru_mark_accessed(page);
	if (f->write && f->m->kind == MAP_KIND_SHARED) {
		enum fault_result r = fault_mkwrite(f, o, page, f->wp);

		if (r != FAULT_DONE || f->signalled)
			return r; /* waiting (retried, or parked), or SIGBUS */
	} else {
		/* The cache page is held while the copy is charged, so that
		 * reclaim for that charge cannot take the page to be copied. */
		enum fault_result r =
			f->write ? fault_cow(f, f->wp, page) : FAULT_DONE;

		if (r == FAULT_PARKED)
			return r; /* waiting for memory, the page held */
		page_put(page);
		if (r != FAULT_DONE || f->signalled)
			return r;
		fault_done_count(f);
	}
	if (f->wp) /* resolved by lifting the protection; wake it */
		uffd_wake(f->e->uffd, f->addr, PAGE_SIZE);
	else if (fault_around(f, o))
		return fault_sigbus(f); /* the page could not be mapped */
	return FAULT_DONE;
}

/*
 * A fault message is stale when the page is already mapped as the fault
 * needs it: another thread's fault on the same page (or fault-around) was
 * served first, and the wake-up, which is per page, freed this thread too.
 */
int fault_is_stale(const struct fault *f)
{
	int flags = uffd_page_flags(f->e->pagemap_fd, f->addr);

	if (flags < 0)
		return 0; /* unknown: serve it */
	if (f->wp)
		return !(flags & UFFD_PAGE_WP);
	return flags & UFFD_PAGE_PRESENT;
}

/* One attempt, with the map lock held for reading (see fault_priv.h). */
enum fault_result fault_once(struct fault *f)
{
	f->m = mapping_find(&f->e->mappings, f->addr);
	if (!f->m || fault_is_stale(f)) {
		/* Unmapped meanwhile (the re-fault finds nothing: SIGSEGV),
		 * or already served: just let the thread go on.  A fault that
		 * did work before it retried (its read, say) still counts. */
		if (f->m && f->attempts > 0)
			fault_done_count(f);
		uffd_wake(f->e->uffd, f->addr, PAGE_SIZE);
		return FAULT_DONE;
	}
	if (!(f->m->prot & PROT_WRITE))
		f->write = 0; /* a stale message: mprotect came in between */
	/* A poisoned page raises SIGBUS without reaching us.  A message for
	 * one whose poison is still in place was sent before the poison (its
	 * thread faulted there again meanwhile: after a signal, say) and was
	 * answered by it: count nothing, serve nothing.  One that faults here
	 * without the poison was emptied by other means (madvise(2) on it). */
	if (pagetable_next_poisoned(&f->e->pagetable, f->addr >> PAGE_SHIFT,
				    f->addr >> PAGE_SHIFT) != UINT64_MAX) {
		if (uffd_page_flags(f->e->pagemap_fd, f->addr) ==
		    UFFD_PAGE_MARKER) {
			uffd_wake(f->e->uffd, f->addr, PAGE_SIZE);
			return FAULT_DONE;
		}
		fault_forget_poison(f);
	}
	if (f->oom_fail) /* its group's OOM policy said: fail */
		return fault_sigbus(f);
	if (f->m->kind != MAP_KIND_SHARED) { /* swapped out? */
		uint64_t entry = pagetable_swap_entry(&f->e->pagetable,
						      f->addr >> PAGE_SHIFT);

		if (entry)
			return fault_swapin(f, entry);
		/* A store to a page swapped in by a read: its slot no longer
		 * holds what the page will, so it goes now, before the
		 * store is let through (fault_anon_wp, fault_cow). */
		if (f->write && pagetable_drop_kept_slot(&f->e->pagetable,
							 f->addr >> PAGE_SHIFT))
			swap_uncharge(f->m->group, 1);
	}
	if (f->m->kind == MAP_KIND_ANON)
		return fault_anon(f);
	return fault_file(f);
}

int fault_handle(struct fl_engine *e, const struct uffd_msg *msg,
		 const struct msg_batch *batch, struct fault *f, int cpu)
{
	__u64 flags = msg->arg.pagefault.flags;

	fault_check_unowned(f); /* a handler's spare record */
	*f = (struct fault){
		.e = e,
		.addr = (uintptr_t)msg->arg.pagefault.address & PAGE_MASK,
		.write = (flags & UFFD_PAGEFAULT_FLAG_WRITE) != 0,
		.wp = (flags & UFFD_PAGEFAULT_FLAG_WP) != 0,
		.batch = batch->begun,
		.batch_ended = batch->ended,
		.tid = msg->arg.pagefault.feat.ptid,
		.cpu = cpu,
	};
	count_add(&e->stats, fault_messages, 1);
	started_random_read = 0;
	if (fault_run(f) != FAULT_PARKED)
		return 0;
	atomic_fetch_add(&e->faults_parked, 1); /* f may be done already */
	return started_random_read ? FAULT_HANDLE_RANDOM_READ : 1;
}
