/* SPDX-License-Identifier: MIT */
/*
 * How a fault waits for memory: its group (or an ancestor) refused a
 * charge.  The fault parks and an I/O thread reclaims from the group that
 * refused; if nothing can be reclaimed, that group's OOM policy decides:
 * fail (SIGBUS on the retry), wait (parked on the group, holding no
 * thread, until an uncharge or a new max), or ask the user's callback.
 */
#include <unistd.h>

#include "engine.h"
#include "fault_priv.h"
#include "flusher.h"
#include "group.h"
#include "reclaim.h"

#define fault_of(ptr, member)                                                  \
	((struct fault *)((char *)(ptr)-offsetof(struct fault, member)))

#define RECLAIM_AT_LEAST 32   /* pages: reclaim in batches, not page by page */
#define RECLAIM_TRIES	 200  /* 1 ms apart: cache pages busy under I/O */
#define RECLAIM_IO_TRIES 5000 /* more while pages are in I/O */

/* Resume a fault that waited for memory; the group is no longer needed. */
static void fault_memory_resume_work(struct fl_engine *e, struct work *w)
{
	struct fault *f = fault_of(w, work);
	struct fl_page *held = f->held_page;

	if (f->wait_start)
		atomic_fetch_add(&f->mem_group->wait_ns,
				 lockstat_now() - f->wait_start);
	if (f->mem_wait_t0) /* reclaim and waiting, in all */
		flusher_note_mem_wait(f->mem_group,
				      lockstat_now() - f->mem_wait_t0);
	f->mem_wait_t0 = 0;
	atomic_fetch_sub(&f->mem_group->pins, 1);
	f->mem_group = NULL;
	f->wait_start = 0;
	f->held_page = NULL;
	fault_resume(f); /* f may be gone after this */
	if (held)	 /* held through the retry, so reclaim leaves it */
		page_put(held);
}

static void fault_memory_cancel(struct work *w)
{
	struct fault *f = fault_of(w, work);

	atomic_fetch_sub(&f->mem_group->pins, 1);
	f->mem_group = NULL;
	fault_cancel(f); /* puts held_page */
}

/* Memory may be free now (runs in the uncharging thread): queue it. */
static void fault_memory_woken(struct page_waiter *waiter)
{
	struct fault *f = fault_of(waiter, waiter);

	fault_check_unowned(f);
	f->work = (struct work){.fn = fault_memory_resume_work,
				.cancel = fault_memory_cancel};
	threads_post_work(f->e, &f->work);
}

/*
 * Park f on its group until an uncharge or a new max may have made room.
 * Returns 0 if parked, -1 if there is room already (resume it).
 */
static int fault_park_on_group(struct fault *f)
{
	if (!f->wait_start)
		f->wait_start = lockstat_now();
	f->waiter.wake = fault_memory_woken;
	return group_wait(f->mem_group, f->mem_pages, &f->waiter);
}

/* Nothing could be reclaimed: the group's policy decides. */
static void fault_oom(struct fault *f)
{
	struct fl_group *g = f->mem_group;
	struct group_oom oom = group_oom_policy(g);

	atomic_fetch_add(&g->oom_events, 1);
	switch (oom.policy) {
	case FL_OOM_WAIT:
		if (fault_park_on_group(f) == 0)
			return; /* parked until an uncharge or a new max */
		break;
	case FL_OOM_CALLBACK:
		if (oom.callback(g, f->mem_pages << PAGE_SHIFT, oom.arg) !=
		    FL_OOM_RETRY) {
			f->oom_fail = 1;
			break;
		}
		/* Retry once there is room: an answer of retry that freed
		 * nothing waits for an uncharge or a new max, rather than
		 * ask again at once, forever. */
		if (fault_park_on_group(f) == 0)
			return;
		break;
	default:
		f->oom_fail = 1;
	}
	fault_memory_resume_work(f->e, &f->work);
}

static void fault_reclaim_work(struct fl_engine *e, struct work *w)
{
	struct fault *f = fault_of(w, work);
	struct fl_group *g = f->mem_group;
	uint64_t want = f->mem_pages > RECLAIM_AT_LEAST ? f->mem_pages
							: RECLAIM_AT_LEAST;

	/*
	 * Pages being read or written are busy, not gone: while reclaim
	 * passes over busy pages, keep trying a while (this is an I/O
	 * thread; no handler waits).  With none busy, what is left cannot
	 * be reclaimed (private or shared anonymous memory, pages whose
	 * writeback fails): OOM at once.
	 */
	for (int tries = 0, io_tries = 0; tries < RECLAIM_TRIES; tries++) {
		enum reclaim_outcome r = reclaim_try(g, want);

		if (r == RECLAIM_FREED ||
		    atomic_load(&g->usage) + f->mem_pages <=
			    atomic_load(&g->max)) {
			fault_memory_resume_work(e, w);
			return;
		}
		if (r == RECLAIM_STUCK)
			break;
		usleep(1000);
		/* Pages being read or written (cache pages in I/O, pages in
		 * the swap cache) come back when their I/O ends, however
		 * late a loaded machine runs it, or the device answers
		 * (another reclaim may have taken every page there was to
		 * write): wait for it longer.  Still bounded: the reads may
		 * be queued for I/O threads that are all in here. */
		if ((r == RECLAIM_IN_IO || atomic_load(&e->swap.cache_pages)) &&
		    io_tries++ < RECLAIM_IO_TRIES)
			tries--;
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
	fault_unlock(f);
	atomic_fetch_add(&over->pins, 1);
	f->mem_wait_t0 = lockstat_now();
	f->mem_group = over;
	f->mem_pages = pages;
	f->work = (struct work){.fn = fault_reclaim_work,
				.cancel = fault_memory_cancel};
	threads_post_work(f->e, &f->work);
	return FAULT_PARKED;
}
