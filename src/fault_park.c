/* SPDX-License-Identifier: MIT */
/*
 * How a fault waits.  Before anything that blocks (a store read, a locked
 * page) a fault drops the map lock and, instead of sleeping in a handler
 * thread, parks: it is copied to the heap with references on what it needs,
 * and handed on.  A store read runs on an I/O thread, which then retries
 * the fault; a fault waiting for a locked page is parked on the page and
 * retried when the page is unlocked.  So a stalled store never stalls the
 * engine, however many faults wait on it.
 *
 * Progress: the kernel lets a retried fault block under mmap_lock so that
 * it finishes.  Here a resumed fault instead holds the page it waited for,
 * or read, until its retry has mapped it (see fault_blocks).  Only the
 * comparison mode (hold_map_lock_for_io) waits with the map lock held.
 */
#include <stdlib.h>
#include <unistd.h>

#include "engine.h"
#include "group.h"
#include "reclaim.h"
#include "fault_priv.h"
#include "object.h"
#include "uffd.h"

#define fault_of(ptr, member)                                                  \
	((struct fault *)((char *)(ptr)-offsetof(struct fault, member)))

void fault_lock(struct fault *f)
{
	map_read_lock(f->e);
	f->locked_at = lockstat_now();
}

void fault_unlock(struct fault *f)
{
	lockstat_record(&f->e->fault_hold, lockstat_now() - f->locked_at);
	map_unlock(f->e);
}

/*
 * Only the comparison mode waits with the map lock held.  Other faults
 * never need to: a resumed fault holds the page it waited for, or read,
 * until its retry has mapped it, so it cannot be undone in between; and
 * waiting under the map lock could deadlock here, where an I/O thread
 * (reclaim, writeback) may itself need the map lock.
 */
static int fault_blocks(const struct fault *f)
{
	return f->e->config.hold_map_lock_for_io;
}

/* The fault, on the heap (made once, then kept), or NULL without memory. */
static struct fault *fault_to_heap(struct fault *f)
{
	struct fault *h;

	if (f->on_heap)
		return f;
	h = malloc(sizeof(*h));
	if (h) {
		*h = *f;
		h->on_heap = 1;
	}
	return h;
}

static void fault_retried(struct fault *f)
{
	f->attempts++;
	count_add(&f->e->stats, retries, 1);
}

enum fault_result fault_run(struct fault *f)
{
	enum fault_result r;

	fault_lock(f);
	for (;;) {
		r = fault_once(f);
		if (r != FAULT_RETRY && r != FAULT_AGAIN)
			break;
		fault_retried(f);
		if (r == FAULT_RETRY)
			fault_lock(f);
	}
	if (r == FAULT_DONE) {
		fault_unlock(f);
		if (f->on_heap)
			free(f);
	}
	return r; /* FAULT_PARKED: f belongs to whoever resumes it */
}

/* The engine went before a parked fault could go on: let its thread go. */
static void fault_cancel(struct fault *f)
{
	uffd_wake(f->e->uffd, f->addr, PAGE_SIZE);
	if (f->parked_page)
		page_put(f->parked_page);
	free(f);
}

static void fault_resume_work(struct fl_engine *e, struct work *w)
{
	struct fault *f = fault_of(w, work);
	struct fl_page *page = f->parked_page;

	/* Held through the retry: reclaim cannot take it before the retry
	 * maps it, so the fault makes progress. */
	f->parked_page = NULL;
	fault_retried(f);
	fault_run(f); /* f may be gone after this */
	page_put(page);
}

static void fault_resume_cancel(struct work *w)
{
	fault_cancel(fault_of(w, work));
}

/* The page may be unlocked: queue the fault (this runs in the unlocker). */
static void fault_page_woken(struct page_waiter *waiter)
{
	struct fault *f = fault_of(waiter, waiter);

	f->work = (struct work){.fn = fault_resume_work,
				.cancel = fault_resume_cancel};
	engine_post_work(f->e, &f->work);
}

enum fault_result fault_wait_page(struct fault *f, struct fl_page *page)
{
	struct fault *h;

	if (fault_blocks(f)) {
		page_wait_clear(page, PG_LOCKED);
		page_put(page);
		return FAULT_AGAIN;
	}
	h = fault_to_heap(f);
	fault_unlock(f);
	if (h) {
		h->parked_page = page;
		h->waiter.wake = fault_page_woken;
		if (page_park(page, PG_LOCKED, &h->waiter) == 0)
			return FAULT_PARKED;
		h->parked_page = NULL;
		if (h != f)
			free(h);
	} else {
		page_wait_clear(page, PG_LOCKED); /* no memory to park */
	}
	page_put(page);
	return FAULT_RETRY;
}

static void fault_read_pages(struct fault *f, struct fl_object *o,
			     uint64_t index, unsigned long count)
{
	if (pagecache_read(o, index, count, index) == 0) {
		f->pages_read += count;
		f->read_object = o;
	} else {
		f->error_object = o;
		f->error_index = index;
	}
}

static void fault_read_work(struct fl_engine *e, struct work *w)
{
	struct fault *f = fault_of(w, work);
	struct fl_object *o = w->object;

	struct fl_page *page;

	fault_read_pages(f, o, w->index, w->count);
	/* The faulting page is held through the retry (see above). */
	page = f->error_object ? NULL : pagecache_get(o, w->index);
	object_put(o);
	fault_retried(f);
	fault_run(f); /* f may be gone after this */
	if (page)
		page_put(page);
}

static void fault_read_cancel(struct work *w)
{
	struct fault *f = fault_of(w, work);

	pagecache_abandon_read(w->object, w->index, w->count);
	object_put(w->object);
	fault_cancel(f);
}

enum fault_result fault_start_read(struct fault *f, struct fl_object *o,
				   uint64_t index, unsigned long count)
{
	struct fault *h;

	if (fault_blocks(f)) {
		fault_read_pages(f, o, index, count);
		return FAULT_AGAIN;
	}
	h = fault_to_heap(f);
	object_get(o);
	fault_unlock(f);
	if (!h) { /* no memory to park: read here, without the lock */
		fault_read_pages(f, o, index, count);
		object_put(o);
		return FAULT_RETRY;
	}
	h->work = (struct work){.fn = fault_read_work,
				.cancel = fault_read_cancel,
				.object = o,
				.index = index,
				.count = count};
	engine_post_work(h->e, &h->work);
	return FAULT_PARKED;
}

/* ---- waiting for memory ------------------------------------------------- */

#define RECLAIM_AT_LEAST 32 /* pages: reclaim in batches, not page by page */

/* Resume a fault that waited for memory; the group is no longer needed. */
static void fault_memory_resume_work(struct fl_engine *e, struct work *w)
{
	struct fault *f = fault_of(w, work);
	struct fl_page *held = f->held_page;

	if (f->wait_start)
		atomic_fetch_add(&f->mem_group->wait_ns,
				 lockstat_now() - f->wait_start);
	atomic_fetch_sub(&f->mem_group->pins, 1);
	f->mem_group = NULL;
	f->wait_start = 0;
	f->held_page = NULL;
	fault_retried(f);
	fault_run(f); /* f may be gone after this */
	if (held)     /* held through the retry, so reclaim leaves it */
		page_put(held);
}

static void fault_memory_cancel(struct work *w)
{
	struct fault *f = fault_of(w, work);

	atomic_fetch_sub(&f->mem_group->pins, 1);
	f->mem_group = NULL;
	if (f->held_page)
		page_put(f->held_page);
	fault_cancel(f);
}

/* Memory may be free now (runs in the uncharging thread): queue it. */
static void fault_memory_woken(struct page_waiter *waiter)
{
	struct fault *f = fault_of(waiter, waiter);

	f->work = (struct work){.fn = fault_memory_resume_work,
				.cancel = fault_memory_cancel};
	engine_post_work(f->e, &f->work);
}

/* Nothing could be reclaimed: the group's policy decides. */
static void fault_oom(struct fault *f)
{
	struct fl_group *g = f->mem_group;

	atomic_fetch_add(&g->oom_events, 1);
	switch (g->policy) {
	case FL_OOM_WAIT:
		f->wait_start = lockstat_now();
		f->waiter.wake = fault_memory_woken;
		if (group_wait(g, f->mem_pages, &f->waiter) == 0)
			return; /* parked until an uncharge or a new max */
		break;
	case FL_OOM_CALLBACK:
		if (g->callback(g, f->mem_pages << PAGE_SHIFT,
				g->callback_arg) != FL_OOM_RETRY)
			f->oom_fail = 1;
		break;
	default:
		f->oom_fail = 1;
	}
	fault_memory_resume_work(f->e, &f->work);
}

#define RECLAIM_TRIES 200 /* 1 ms apart: cache pages busy under I/O */

static void fault_reclaim_work(struct fl_engine *e, struct work *w)
{
	struct fault *f = fault_of(w, work);
	struct fl_group *g = f->mem_group;
	uint64_t want = f->mem_pages > RECLAIM_AT_LEAST ? f->mem_pages
							: RECLAIM_AT_LEAST;

	/*
	 * Pages being read or written are busy, not gone: while the group
	 * has cache pages, keep trying a while (this is an I/O thread; no
	 * handler waits).  With none, only private memory is left: OOM.
	 */
	for (int tries = 0; tries < RECLAIM_TRIES; tries++) {
		if (reclaim_group(g, want) > 0 ||
		    atomic_load(&g->usage) + f->mem_pages <=
			    atomic_load(&g->max)) {
			fault_memory_resume_work(e, w);
			return;
		}
		if (!group_cache_pages(g))
			break;
		usleep(1000);
	}
	/* The run does not fit, but the faulting page alone does: read it
	 * alone rather than declare OOM. */
	if (f->mem_pages > 1 &&
	    atomic_load(&g->usage) + 1 <= atomic_load(&g->max)) {
		f->read_one = 1;
		fault_memory_resume_work(e, w);
		return;
	}
	fault_oom(f);
}

enum fault_result fault_wait_memory(struct fault *f, struct fl_group *over,
				    uint64_t pages)
{
	struct fault *h = fault_to_heap(f);

	fault_unlock(f);
	if (!h) { /* no memory to park: reclaim here, then retry */
		if (f->held_page)
			page_put(f->held_page);
		f->held_page = NULL;
		reclaim_group(over, pages);
		return FAULT_RETRY;
	}
	if (h != f)
		f->held_page = NULL; /* the heap copy holds it now */
	atomic_fetch_add(&over->pins, 1);
	h->mem_group = over;
	h->mem_pages = pages;
	h->work = (struct work){.fn = fault_reclaim_work,
				.cancel = fault_memory_cancel};
	engine_post_work(h->e, &h->work);
	return FAULT_PARKED;
}
