/* SPDX-License-Identifier: MIT */
/*
 * How a fault waits.  Before anything that blocks (a store read, a locked
 * page) a fault drops the map lock and, instead of sleeping in a handler
 * thread, parks: its record (allocated before its message was read, so
 * parking never allocates) goes with references on what it needs to
 * whoever resumes it.  A store read runs on an I/O thread, which then
 * retries the fault; a fault waiting for a locked page is parked on the
 * page and retried when the page is unlocked.  So a stalled store never
 * stalls the engine, however many faults wait on it.
 *
 * Progress: the kernel lets a retried fault block under mmap_lock so that
 * it finishes.  Here a resumed fault instead holds the page it waited for,
 * or read, until its retry has mapped it (see fault_blocks).  Only the
 * comparison mode (hold_map_lock_for_io) waits with the map lock held.
 */
#include <pthread.h>
#include <stdlib.h>

#include "aio.h"
#include "engine.h"
#include "fault.h"
#include "fault_priv.h"
#include "object.h"
#include "uffd.h"

#define fault_of(ptr, member)                                                  \
	((struct fault *)((char *)(ptr)-offsetof(struct fault, member)))

/*
 * Records of faults that parked come back here when they are done, and
 * handlers take them before they allocate: records circulate, so that the
 * engine keeps serving faults even when no memory can be allocated.
 */
#define RECORD_POOL_MAX 256

static pthread_mutex_t record_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fault *record_pool; /* linked through their parked_page */
static unsigned record_pool_nr;

struct fault *fault_alloc(void)
{
	struct fault *f;

	pthread_mutex_lock(&record_pool_lock);
	f = record_pool;
	if (f) {
		record_pool = (struct fault *)f->parked_page;
		record_pool_nr--;
		waiter_move(&f->waiter, WAITER_FREE, WAITER_IDLE);
	}
	pthread_mutex_unlock(&record_pool_lock);
	/* malloc, not calloc: tests fail every calloc (radix nodes) and still
	 * expect records.  Zeroed: its waiter idle, its work not queued. */
	if (!f && (f = malloc(sizeof(struct fault))))
		*f = (struct fault){0};
	return f;
}

void fault_free(struct fault *f)
{
	fault_check_unowned(f); /* and not free already (WAITER_FREE) */
	waiter_move(&f->waiter, WAITER_IDLE, WAITER_FREE);
	pthread_mutex_lock(&record_pool_lock);
	if (record_pool_nr < RECORD_POOL_MAX) {
		f->parked_page = (struct fl_page *)record_pool;
		record_pool = f;
		record_pool_nr++;
		f = NULL;
	}
	pthread_mutex_unlock(&record_pool_lock);
	free(f);
}

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

static void fault_retried(struct fault *f)
{
	f->attempts++;
	count_add(&f->e->stats, retries, 1);
}

/* Debug builds: the map lock is held exactly as result r says. */
static void fault_check_result(enum fault_result r, int depth)
{
	int held = r == FAULT_DONE || r == FAULT_AGAIN;

	fl_assert(map_lock_depth_get() == depth + held);
	(void)held;
	(void)depth;
}

enum fault_result fault_run(struct fault *f)
{
	int depth = map_lock_depth_get();
	enum fault_result r;

	fl_assert(depth == 0);
	fault_lock(f);
	for (;;) {
		r = fault_once(f);
		fault_check_result(r, depth);
		if (r == FAULT_DONE || r == FAULT_PARKED)
			break;
		fault_retried(f);
		if (r == FAULT_RETRY)
			fault_lock(f);
	}
	if (r == FAULT_DONE)
		fault_unlock(f);
	return r; /* FAULT_PARKED: f belongs to whoever resumes it */
}

void fault_resume(struct fault *f)
{
	struct fl_engine *e = f->e;

	uffd_wakes_for_cpu(f->cpu); /* its wake, if deferred, is for there */
	fault_retried(f);
	if (fault_run(f) == FAULT_DONE) {
		fault_free(f);
		atomic_fetch_sub(&e->faults_parked, 1);
	}
	uffd_wakes_for_cpu(-1);
}

void fault_cancel(struct fault *f)
{
	atomic_fetch_sub(&f->e->faults_parked, 1);
	uffd_wake(f->e->uffd, f->addr, PAGE_SIZE);
	if (f->parked_page)
		page_put(f->parked_page);
	if (f->held_page)
		page_put(f->held_page);
	fault_free(f);
}

/* ---- waiting for a locked page ------------------------------------------ */

static void fault_resume_work(struct fl_engine *e, struct work *w)
{
	struct fault *f = fault_of(w, work);
	struct fl_page *page = f->parked_page;

	/* Held through the retry: reclaim cannot take it before the retry
	 * maps it, so the fault makes progress. */
	f->parked_page = NULL;
	fault_resume(f); /* f may be gone after this */
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

	fault_check_unowned(f);
	f->work = (struct work){.fn = fault_resume_work,
				.cancel = fault_resume_cancel};
	threads_post_work(f->e, &f->work);
}

enum fault_result fault_wait_page(struct fault *f, struct fl_page *page)
{
	if (fault_blocks(f)) {
		page_wait_clear(page, PG_LOCKED);
		page_put(page);
		return FAULT_AGAIN;
	}
	fault_unlock(f);
	f->parked_page = page;
	f->waiter.wake = fault_page_woken;
	if (page_park(page, PG_LOCKED, &f->waiter) == 0)
		return FAULT_PARKED; /* f may be running elsewhere already */
	/* Unlocked meanwhile: retry here. */
	f->parked_page = NULL;
	page_put(page);
	return FAULT_RETRY;
}

/* ---- waiting for a store read ------------------------------------------- */

/* The read of [index, index + count) for must_have ended with err. */
static void fault_read_noted(struct fault *f, struct fl_object *o,
			     unsigned long count, uint64_t must_have, int err)
{
	if (err == 0) {
		f->pages_read += count;
		f->read_object = o;
	} else {
		f->error_object = o;
		f->error_index = must_have;
	}
}

static void fault_read_pages(struct fault *f, struct fl_object *o,
			     uint64_t index, unsigned long count,
			     uint64_t must_have)
{
	fault_read_noted(f, o, count, must_have,
			 pagecache_read(o, index, count, must_have));
}

/* The read is done: retry the fault on this thread, holding the faulting
 * page through the retry (see above); the object's reference goes. */
static void fault_read_resume(struct fault *f)
{
	struct fl_object *o = f->work.object;
	struct fl_page *page;

	page = f->error_object ? NULL : pagecache_get(o, f->work.must_have);
	object_put(o);
	fault_resume(f); /* f may be gone after this */
	if (page)
		page_put(page);
}

static void fault_read_work(struct fl_engine *e, struct work *w)
{
	struct fault *f = fault_of(w, work);

	fault_read_pages(f, w->object, w->index, w->count, w->must_have);
	fault_read_resume(f);
}

/* An asynchronous read ended: on a handler thread, which resumes the
 * fault, or in engine teardown (cancelled), which cancels it. */
static void fault_read_finished(void *arg, int err, int cancelled)
{
	struct fault *f = arg;

	if (cancelled) {
		object_put(f->work.object);
		fault_cancel(f);
		return;
	}
	fault_read_noted(f, f->work.object, f->work.count, f->work.must_have,
			 err);
	fault_read_resume(f);
}

static void fault_read_cancel(struct work *w)
{
	struct fault *f = fault_of(w, work);

	pagecache_abandon_read(w->object, w->index, w->count);
	object_put(w->object);
	fault_cancel(f);
}

enum fault_result fault_start_read(struct fault *f, struct fl_object *o,
				   uint64_t index, unsigned long count,
				   uint64_t must_have)
{
	if (fault_blocks(f)) {
		fault_read_pages(f, o, index, count, must_have);
		return FAULT_AGAIN;
	}
	object_get(o);
	fault_unlock(f);
	f->work = (struct work){.fn = fault_read_work,
				.cancel = fault_read_cancel,
				.object = o,
				.index = index,
				.count = count,
				.must_have = must_have};
	/* Submitted to the store, the read completes on a handler thread,
	 * which resumes the fault; a store without an asynchronous path
	 * (or refusing now) has it read on an I/O thread instead. */
	if (pagecache_read_start(o, index, count, must_have,
				 fault_read_finished, f) == 0)
		return FAULT_PARKED; /* f may be running elsewhere already */
	threads_post_work(f->e, &f->work);
	return FAULT_PARKED;
}
