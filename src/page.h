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

enum page_flag {
	PG_LOCKED = 1u << 0,
	PG_UPTODATE = 1u << 1,
	PG_DIRTY = 1u << 2,
	PG_WRITEBACK = 1u << 3,
	PG_WAITERS = 1u << 4, /* someone sleeps on this page's flags */
	PG_PARKED = 1u << 5,  /* a parked fault waits on this page */
};

struct fl_page {
	_Atomic uint32_t flags;
	_Atomic uint32_t refcount; /* the cache holds one reference */
	/* Message batch last read when writeback write-protected the page
	 * (64 bits: it must never wrap). */
	_Atomic uint64_t cleaned_batch;
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

struct fl_page *page_alloc(void);
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
};

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
