/* SPDX-License-Identifier: MIT */
/*
 * Page descriptors: one per page in an object's page cache.  The state bits
 * mirror the kernel's: the page lock (held while the page is filled from
 * the store and while its dirty state and the views' protection change
 * together), up-to-date, dirty and under-writeback.  Waiting for a bit to
 * clear sleeps on a futex on the flags word.
 */
#ifndef FL_PAGE_H
#define FL_PAGE_H

#include <stdatomic.h>
#include <stdint.h>

#include "debug.h"

enum page_flag {
	PG_LOCKED = 1u << 0,
	PG_UPTODATE = 1u << 1,
	PG_DIRTY = 1u << 2,
	PG_WRITEBACK = 1u << 3,
	PG_WAITERS = 1u << 4, /* someone sleeps on this page's flags */
	PG_PARKED = 1u << 5,  /* a parked fault waits on this page */
	/* Recency (reclaim.c), changed under the group's LRU lock. */
	PG_LRU = 1u << 6,	 /* on one of its group's lists */
	PG_ACTIVE = 1u << 7,	 /* on the active list */
	PG_REFERENCED = 1u << 8, /* faulted on since last looked at */
	PG_UNMAPPED = 1u << 9,	 /* taken out of the views to see if it
				    comes back (its second chance) */
	/* Readahead (readahead.c). */
	PG_READAHEAD = 1u << 10, /* read ahead, not yet used by a fault */
	PG_RA_MARK = 1u << 11,	 /* a fault here starts the next window:
				    fault-around leaves it unmapped */
};

struct fl_group;
struct fl_object;

struct fl_page {
	_Atomic uint32_t flags;
	_Atomic uint32_t refcount; /* the cache holds one reference */
	/* The batch number writeback's last clean of the page took (64
	 * bits: it must never wrap; see fault_predates_clean). */
	_Atomic uint64_t cleaned_batch;
	/* The last lift of the page's write-protection by a fault (at
	 * lifted_addr, a view's address; the batch number taken just
	 * before it).  Under the page lock. */
	uint64_t lifted_batch;
	uintptr_t lifted_addr;
	/* Charged to group at creation, uncharged when freed. */
	struct fl_group *group;
	struct fl_object *object;
	uint64_t index;
	struct fl_page *lru_prev, *lru_next; /* group's LRU list */
	/* The fault that started the page's read, by its thread and address
	 * (0: none, or readahead): a fault of the same thread at the same
	 * address while the read is in flight is that fault again (see
	 * fault_file).  The address costs no memory: calloc hands out 96
	 * bytes for this struct with or without it. */
	_Atomic uint32_t read_tid;
	_Atomic uintptr_t read_addr;
};

static inline int page_test(struct fl_page *page, uint32_t flag)
{
	return (atomic_load(&page->flags) & flag) != 0;
}

/* Set flag; returns whether it was set before. */
static inline int page_test_and_set(struct fl_page *page, uint32_t flag)
{
	return (atomic_fetch_or(&page->flags, flag) & flag) != 0;
}

/* Clear flag; returns whether it was set before.  Does not wake. */
static inline int page_test_and_clear(struct fl_page *page, uint32_t flag)
{
	return (atomic_fetch_and(&page->flags, ~flag) & flag) != 0;
}

static inline int page_trylock(struct fl_page *page)
{
	return !page_test_and_set(page, PG_LOCKED);
}

/* A page of object at index, charged already to group (may be NULL). */
struct fl_page *page_alloc(struct fl_object *object, uint64_t index,
			   struct fl_group *group);
static inline void page_get(struct fl_page *page)
{
	atomic_fetch_add(&page->refcount, 1);
}
void page_put(struct fl_page *page);

/* Sleep until flag is clear. */
void page_wait_clear(struct fl_page *page, uint32_t flag);
/* Clear flag and wake everyone waiting on the page. */
void page_clear_and_wake(struct fl_page *page, uint32_t flag);

void page_lock(struct fl_page *page);

/*
 * A parked waiter: a fault that waits for a page without occupying a
 * thread.  When the flag it waits on may have cleared, wake runs in the
 * clearing thread's context (under no page lock), and must only hand the
 * waiter on (queue it), never block.
 */
struct page_waiter {
	struct page_waiter *next;
	struct fl_page *page;
	void (*wake)(struct page_waiter *waiter);
	int state; /* enum waiter_state, kept by debug builds only */
};

/*
 * Debug builds track who owns a waiter, so that a waiter on two lists at
 * once (its fault owned twice: parked and running, or freed while parked)
 * fails at once where it happens.  (A livelock once taken for the work
 * of one, a waker waking records without end, was most likely records
 * multiplying instead: see window_wake_run in fault.c.)
 *
 *   IDLE    its fault runs, or is queued as work, or is a spare record
 *   PARKED  on a page's bucket (page_park) or a group's list (group_wait)
 *   TAKEN   off the list, in a waker's hands until its wake runs
 *   FREE    its fault record is freed (fault_free): a second free, or a
 *           use before fault_alloc hands it out again, fails
 */
enum waiter_state { WAITER_IDLE, WAITER_PARKED, WAITER_TAKEN, WAITER_FREE };

#ifdef FL_DEBUG
#define waiter_move(w, from, to)                                               \
	do {                                                                   \
		fl_assert((w)->state == (from));                               \
		(w)->state = (to);                                             \
	} while (0)
#define waiter_is_idle(w) ((w)->state == WAITER_IDLE)
#else
#define waiter_move(w, from, to) ((void)(w))
#define waiter_is_idle(w)	 1
#endif

/*
 * Park waiter until flag clears on page.  Returns 0 if parked (wake will
 * run), or -1 if the flag is already clear (wake will not run).
 */
int page_park(struct fl_page *page, uint32_t flag, struct page_waiter *waiter);
static inline void page_unlock(struct fl_page *page)
{
	page_clear_and_wake(page, PG_LOCKED);
}

#endif /* FL_PAGE_H */
