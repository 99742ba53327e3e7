/* SPDX-License-Identifier: MIT */
/*
 * Swap: the engine's devices, swap entries, the swap cache, swap-out (for
 * reclaim) and the pieces of swap-in the fault path uses (fault_swap.c).
 *
 * A private or anonymous page that was swapped out is a swap entry in the
 * engine page table (pagetable.h: PTE_SWAP with the device and the slot).
 * The entry owns the slot: the slot is freed when the entry goes (the page
 * swapped in, or the range unmapped, advised away or replaced), unless a
 * swap-cache page of the slot still exists; then the page is marked
 * orphaned and the slot goes with it.
 *
 * The swap cache holds the pages being swapped out (written) or in (read),
 * keyed by (device, slot): two faults on one slot read it once, and a
 * fault during writeout finds the page instead of a half-written slot.  A
 * swap-cache page is a struct fl_page (PG_LOCKED while it is read,
 * PG_WRITEBACK while it is written, PG_UPTODATE once its data is valid)
 * followed by its data; the cache holds one reference, faults waiting on it
 * others.  A page is charged when it is created (swap-in: before any lock) or
 * inherits the charge of the page it was swapped out from; the charge moves to
 * the private page it becomes, or is given back when the cache lets it go.  A
 * failed charge never touches a swap-cache page another path made: stale pages
 * (orphaned, or read for a fault that went away) are left for reclaim
 * (swap_cache_sweep).
 *
 * Lock order: map lock, page-table lock, swap-cache lock, group locks.
 * Every insertion into and removal from the cache of a slot an entry owns
 * happens under the page-table lock, so that a fault that finds the entry
 * and no cache page may make one.
 */
#ifndef FL_SWAP_H
#define FL_SWAP_H

#include <pthread.h>
#include <stdint.h>

#include "page.h"
#include "pagesize.h"
#include "swap_dev.h"

struct fl_engine;
struct fl_group;
struct fl_mapping;

#define SWAP_MAX_DEVICES   32
#define SWAP_CACHE_BUCKETS 1024
#define SWAP_RA_PAGES	   8 /* a sequential swap-in reads up to this many */

struct swap_page {
	struct fl_page page; /* first: the last page_put frees the block */
	struct fl_swap *dev;
	uint64_t slot;
	struct fl_group *charged;  /* memory charged for it, or NULL */
	struct swap_page *next;	   /* hash chain */
	struct swap_page *ra_next; /* read ahead with this one (its reader) */
	int orphan;		   /* no entry owns the slot: free it with us */
	int write_failed;	   /* the slot holds nothing: we are the copy */
	int read_failed;	   /* the read failed: the data is not valid */
	unsigned char data[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
};

struct swap_engine {
	pthread_mutex_t lock; /* the devices and the cache */
	struct fl_swap *devs[SWAP_MAX_DEVICES];
	unsigned nr_devs;
	struct swap_page *cache[SWAP_CACHE_BUCKETS];
	_Atomic uint64_t cache_pages;
	_Atomic uint64_t clock;	      /* swap-out's hand: where its last pick
					 stopped (a virtual page number) */
	_Atomic uint64_t clean_clock; /* the hand of swap-out's sweep of
					 pages that keep their slots */
};

void swap_engine_init(struct fl_engine *e);
/* At engine destroy, after every mapping and thread is gone: the cache
 * is emptied (charges given back, orphaned slots freed), then the devices
 * destroyed. */
void swap_engine_destroy(struct fl_engine *e);

/* The device g's pages go to (its own, or the nearest ancestor's). */
struct fl_swap *group_swap_dev(struct fl_group *g);
/* Swap usage: charge n slots to g and its ancestors unless one would pass
 * its swap_max (then -1, nothing charged); give them back. */
int swap_try_charge(struct fl_group *g, uint64_t n);
void swap_uncharge(struct fl_group *g, uint64_t n);

/* Swap entries (page-table values) name a device and a slot. */
uint64_t swap_entry(const struct fl_swap *dev, uint64_t slot);
struct fl_swap *swap_entry_dev(struct fl_engine *e, uint64_t entry);
uint64_t swap_entry_slot(uint64_t entry);
/* A swap entry as the kept slot of a page swapped in (pagetable.h:
 * PTE_PRIVATE | PTE_SLOT, referenced; PTE_REFAULTED if the entry was a
 * clean drop's), and back (a clean drop's: PTE_CLEAN_DROP). */
uint64_t swap_entry_kept(uint64_t entry);
uint64_t swap_entry_of_kept(uint64_t kept);
/* Whether entry (a page-table value) is the swap entry of dev's slot. */
int swap_entry_is(uint64_t entry, const struct fl_swap *dev, uint64_t slot);
/*
 * Whether a page swapped in by a read may keep its slot, so that reclaim
 * can drop it again without a write: while dev and the swap of g and its
 * ancestors are at most half used (the kernel frees a clean swap-cache
 * page's slot once swap is half full: vm_swap_full).
 */
int swap_may_keep_slot(const struct fl_swap *dev, const struct fl_group *g);

/*
 * The page-table hook: an entry was forgotten (unmap, MADV_DONTNEED,
 * MAP_FIXED).  Page-table lock held.  Frees the slot, or orphans the
 * swap-cache page that still uses it (freed now if nobody holds it).
 */
void swap_entry_dropped(struct fl_engine *e, uint64_t entry);

/* The swap cache.  Page-table lock held (see above); takes the cache lock. */
struct swap_page *swap_cache_find(struct fl_engine *e, struct fl_swap *dev,
				  uint64_t slot);
/* The same, with a reference (the caller's to put); cache lock only. */
struct swap_page *swap_cache_get(struct fl_engine *e, struct fl_swap *dev,
				 uint64_t slot);
/* A new page for slot (not in the cache), locked, with no charge. */
struct swap_page *swap_page_new(struct fl_swap *dev, uint64_t slot);
void swap_cache_insert(struct fl_engine *e, struct swap_page *sp);
void swap_cache_remove(struct fl_engine *e, struct swap_page *sp);
/*
 * The writeout of sp ended (ok: the slot holds its data); the writer's
 * reference is dropped.  If nobody else wants the page, the cache lets it
 * go (its memory charge given back): returns 1.  A page a fault installed
 * meanwhile leaves its slot for us to free.  Takes the page-table and
 * cache locks.
 */
int swap_cache_write_done(struct fl_engine *e, struct swap_page *sp, int ok);
/* Out of the cache: give back its charge, free an orphaned slot, drop the
 * cache's reference.  No cache lock needed. */
void swap_page_release(struct swap_page *sp);
/* Free what the cache holds that nobody uses and no entry needs in memory
 * (stale pages; clean pages whose slot holds their data).  Takes the
 * page-table and cache locks.  Returns pages freed. */
uint64_t swap_cache_sweep(struct fl_engine *e);

/*
 * Write the swap-cache pages v[0..n) (under writeback) to their slots, a
 * run of consecutive slots in one device write; ok[i] says which went.
 * No lock held (blocks on the devices).
 */
void swap_write_pages(struct swap_page *const *v, unsigned n,
		      unsigned char *ok);

/*
 * Reclaim up to want private and anonymous pages of g's subtree: write
 * them to their groups' swap devices and drop them.  No lock held (takes
 * the map lock for reading to pick and drop pages, writes without it).
 * Returns pages freed.
 */
uint64_t swap_reclaim(struct fl_group *g, uint64_t want);

/*
 * Shared anonymous memory (swap_object.c).  The store read of a store-less
 * object: fill the locked pages [index, index + count) from their slots,
 * or with zeros, in order; the entries of the pages read go.  No lock held
 * (blocks on the device).  0, or a negative errno with *filled the pages
 * filled before the one that failed (the cache holds their only copy now).
 */
struct fl_object;
struct fl_page;
int swap_object_fill(struct fl_object *o, uint64_t index, unsigned long count,
		     unsigned long *filled);
/*
 * Evict a run of isolated pages of one store-less object (a reference on
 * each is the caller's) to their groups' swap devices.  No lock held.
 * Pages that cannot go are put back on their lists; those with no swap
 * room (no device, a swap_max, a full device) are counted in *stuck.
 * Returns pages freed.
 */
uint64_t swap_evict_object_run(struct fl_page **v, unsigned n, unsigned *stuck);
/*
 * MADV_REMOVE of a store-less object's pages [first, last]: their swap
 * entries (and slots), cache pages and memfd pages go; the range reads as
 * zeros.  No lock held (waits for pages being read or evicted).  0, or -1
 * with errno if the memfd could not be punched.
 */
int swap_object_punch(struct fl_object *o, uint64_t first, uint64_t last);
/* The object is being freed: its swap entries and their slots go. */
void swap_object_release(struct fl_object *o);

/*
 * Test-only hooks (builds with FL_INJECT): called at each point with the
 * slot; a hook returning nonzero makes the step fail (EIO or EDQUOT), and
 * it may stall (sleep, wait for the test) to open a race window.
 */
enum swap_hook_point {
	SWAP_HOOK_ALLOC,      /* slot allocation, at swap-out */
	SWAP_HOOK_CHARGE,     /* the memory charge of a page read in */
	SWAP_HOOK_WRITE,      /* the slot write */
	SWAP_HOOK_READ,	      /* the slot read */
	SWAP_HOOK_CONFIRMED,  /* read and confirmed, not yet installed (no
				 lock held: races with unmap and the like) */
	SWAP_HOOK_PUNCH_PAGE, /* a hole punch, its entries dropped, about to
				 lock a cached page (slot: its index; the
				 hook's result is ignored) */
};
#ifdef FL_INJECT
extern int (*swap_test_hook)(enum swap_hook_point point, uint64_t slot);
static inline int swap_hook(enum swap_hook_point point, uint64_t slot)
{
	int (*hook)(enum swap_hook_point, uint64_t) =
		__atomic_load_n(&swap_test_hook, __ATOMIC_ACQUIRE);

	return hook ? hook(point, slot) : 0;
}
/* 1 while a test's hook is set (it may stall: not in a handler). */
static inline int swap_hooks_armed(void)
{
	return __atomic_load_n(&swap_test_hook, __ATOMIC_ACQUIRE) != NULL;
}
#else
static inline int swap_hook(enum swap_hook_point point, uint64_t slot)
{
	(void)point;
	(void)slot;
	return 0;
}
static inline int swap_hooks_armed(void)
{
	return 0;
}
#endif

#endif /* FL_SWAP_H */
