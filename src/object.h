/* SPDX-License-Identifier: MIT */
/*
 * Objects and their page caches.  An object's pages live in a memfd that
 * faultline owns: the engine fills and reads them through its own view of
 * the memfd, and every user mapping is another view of the same memfd,
 * registered with userfaultfd, so a page filled once is seen by all.
 */
#ifndef FL_OBJECT_H
#define FL_OBJECT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "page.h"
#include "pagesize.h"
#include "radix.h"
#include "workqueue.h"

struct fl_engine;
struct fl_mapping;
struct fl_store;

struct fl_object {
	struct fl_engine *engine;
	struct fl_store *store; /* NULL: anonymous shared memory (zeros) */
	int writable;
	uint64_t size;	   /* bytes */
	uint64_t nr_pages; /* pages holding data: size rounded up */

	int memfd;
	uint64_t memfd_size; /* may exceed nr_pages: faults beyond SIGBUS */
	char *view;	     /* the engine's view of [0, nr_pages) */

	_Atomic long refs; /* caller's handle + mappings + in-flight uses */
	/* Being released (object_put, object_release): a reference its
	 * release takes and gives back (its writeback's) releases nothing
	 * more, and object_tryget takes none. */
	_Atomic int dying;
	struct work release_work; /* a release handed to an I/O thread */
	/* The caller still holds the handle: fl_object_close takes it, once
	 * (an atomic exchange: racing closes, one wins, the others EINVAL). */
	_Atomic int user_ref;

	pthread_rwlock_t lock; /* pages (write: insert/remove), memfd_size */
	struct radix pages;    /* index -> struct fl_page */
	/* A store-less object's pages swapped out: index -> their swap
	 * entries (swap_object.c), under the cache lock. */
	struct radix swap;
	_Atomic uint64_t nr_swap;
	_Atomic uint64_t nr_dirty;
	/* Store writes that failed: a writeback reports EIO if any failed
	 * while it ran, whoever started the write (like errseq_t). */
	_Atomic uint64_t wb_errors;
	/* Where the background flusher looks next (its thread only). */
	uint64_t wb_cursor;
	/* Pages store I/O mapped in the engine's view since it was last
	 * emptied (writeback.c, object_view_drop). */
	_Atomic uint64_t view_mapped;
	/* Every mapping of the object: changed under the map write lock. */
	struct fl_mapping *mappings;
	unsigned nr_mappings;

	struct fl_object *engine_next, *engine_prev;
};

/* Life cycle (object.c). */
struct fl_object *object_new(struct fl_engine *engine, struct fl_store *store,
			     uint64_t size, int writable);
static inline void object_get(struct fl_object *o)
{
	atomic_fetch_add(&o->refs, 1);
}

/* A reference unless the object is already going (its refs reached 0). */
static inline int object_tryget(struct fl_object *o)
{
	long refs = atomic_load(&o->refs);

	while (refs > 0)
		if (atomic_compare_exchange_weak(&o->refs, &refs, refs + 1)) {
			if (!atomic_load(&o->dying))
				return 1;
			/* Its release's writeback holds the object up:
			 * give the reference back (the release waits). */
			atomic_fetch_sub(&o->refs, 1);
			return 0;
		}
	return 0;
}
/* Drop a reference; the last one writes back and frees.  0 or -1/EIO. */
int object_put(struct fl_object *o);

/*
 * Test-only hook (builds with FL_INJECT): object_put has just given back
 * a dying object's reference, after which it touches the object no more
 * (its release may free it at once).  The hook may stall to open that
 * window.
 */
#ifdef FL_INJECT
extern void (*object_test_hook_dying_put)(void);
static inline void object_hook_dying_put(void)
{
	void (*hook)(void) =
		__atomic_load_n(&object_test_hook_dying_put, __ATOMIC_ACQUIRE);

	if (hook)
		hook();
}
#else
static inline void object_hook_dying_put(void)
{
}
#endif
/* Free the object whatever its references (engine teardown). */
int object_release(struct fl_object *o);
/* Make the memfd at least end bytes long, so faults there reach us. */
int object_reserve(struct fl_object *o, uint64_t end);
void object_link_mapping(struct fl_object *o, struct fl_mapping *m);
/* Returns the number of mappings left. */
unsigned object_unlink_mapping(struct fl_object *o, struct fl_mapping *m);

static inline char *object_page_data(struct fl_object *o, uint64_t index)
{
	return o->view + (index << PAGE_SHIFT);
}

/* Page cache (pagecache.c). */

/*
 * Page-cache calls take the object's cache lock themselves, never a page
 * lock unless said, and may be called with the map lock held unless said.
 */

/* Look a page up and take a reference (the caller's to put), or NULL. */
struct fl_page *pagecache_get(struct fl_object *o, uint64_t index);

/*
 * Start reading up to max pages from index: insert locked, not up-to-date
 * pages for the run of absent indices from index (stopping at the first
 * present page or the end of the object), charged to group g in one step
 * first.  Returns the run's length (0 if index is present), -ENOMEM
 * without memory for descriptors, or -EDQUOT if the run does not fit:
 * *over is then the group at its max, and *want the pages to reclaim
 * before trying again.  The caller then calls pagecache_read without
 * holding the map lock.  Any lock but a page lock may be held.
 */
long pagecache_start_read(struct fl_object *o, uint64_t index,
			  unsigned long max, struct fl_group *g,
			  struct fl_group **over, uint64_t *want);

/* A run readahead asks for (readahead.c): index and what may join it. */
struct ra_run {
	uint64_t index;	       /* the page wanted (must be absent) */
	unsigned long before;  /* absent pages just before it that may join */
	unsigned long max;     /* most pages in all */
	uint64_t demand;       /* the page a fault needs, or UINT64_MAX */
	uint32_t demand_tid;   /* that fault's thread (its read_tid), or 0 */
	uintptr_t demand_addr; /* and its address (read_addr) */
	uint64_t mark;	       /* a page to mark PG_RA_MARK, or UINT64_MAX */
	int stream;	       /* the mapping's readahead stream, or -1 */
	uint64_t first;	       /* out: where the inserted run starts */
};

/* A run of up to max pages from index, which a fault needs: nothing
 * before it, nothing marked, no stream. */
static inline struct ra_run ra_run_from(uint64_t index, unsigned long max)
{
	return (struct ra_run){.index = index,
			       .max = max,
			       .demand = index,
			       .mark = UINT64_MAX,
			       .stream = -1};
}

/*
 * As pagecache_start_read, for a run that may start before run->index
 * (read-around); pages other than run->demand are marked PG_READAHEAD.
 * Returns the run's length from run->first, or as pagecache_start_read.
 */
long pagecache_start_run(struct fl_object *o, struct ra_run *run,
			 struct fl_group *g, struct fl_group **over,
			 uint64_t *want);

/*
 * Fill the locked pages [index, index+count) from the store, mark them up
 * to date and unlock them.  If the store fails, the pages are removed
 * (so that a later fault tries again) and a negative errno is returned,
 * unless the page must_have (within the run) could be read on its own.
 * Pages of anonymous shared memory swapped in before a failure stay (up to
 * date): their slots went as they came in.
 * Blocks on the store: no map lock held, except by the comparison mode.
 */
int pagecache_read(struct fl_object *o, uint64_t index, unsigned long count,
		   uint64_t must_have);

/*
 * Call fn for each run of up-to-date, unlocked pages within [first, last]:
 * the pages fault-around may map (a page marked to start the next
 * readahead window is left out, unless it is fault_index).  Runs are
 * maximal.  fn runs with the cache lock held for reading (so no page of
 * the run is removed meanwhile) and must not take it again.  Under no page
 * lock.  Returns how many of the pages were read ahead and not used
 * before: they count as used now.
 */
unsigned long pagecache_for_each_run(struct fl_object *o, uint64_t first,
				     uint64_t last, uint64_t fault_index,
				     void (*fn)(uint64_t index,
						unsigned long count, void *arg),
				     void *arg);

/* Give up a read started by pagecache_start_read that will never run:
 * the pages (locked by the caller's read) are unlocked, removed and put. */
void pagecache_abandon_read(struct fl_object *o, uint64_t index,
			    unsigned long count);

/* Mark a page dirty (the page_mkwrite point, under its page lock; or
 * writeback undoing a clean).  1 if it was clean. */
int pagecache_mark_dirty(struct fl_object *o, struct fl_page *page);

/* Dirty pages in [first, last]. */
uint64_t pagecache_count_dirty(struct fl_object *o, uint64_t first,
			       uint64_t last);

/* Clear a page's dirty bit (and the counts).  Any lock. */
void pagecache_clear_dirty(struct fl_object *o, struct fl_page *page);

/* Writeback (writeback.c). */

/* Write-protect [first, last] in every shared view.  Map lock held.
 * 0, or a negative errno if a view could not be protected. */
int object_mkclean(struct fl_object *o, uint64_t first, uint64_t last);

/*
 * Write the dirty pages in [first, last] back to the store.  Takes the map
 * lock for reading (to write-protect the views), so the caller must not
 * hold it.  Returns 0, or -1 with EIO; pages that failed stay dirty.
 */
int object_writeback(struct fl_object *o, uint64_t first, uint64_t last);

/* Drop every page (object teardown). */
void pagecache_destroy(struct fl_object *o);

#endif /* FL_OBJECT_H */
