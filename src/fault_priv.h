/* SPDX-License-Identifier: MIT */
/*
 * The fault handler's own structures, shared by fault.c (how a fault is
 * resolved), fault_park.c (how a fault waits without holding the map lock
 * or a thread) and fault_oom.c (how a fault waits for memory).
 *
 * The retry loop, top to bottom:
 *
 *   fault_handle   a handler thread: fill the record, fault_run
 *   fault_run      take the map lock; fault_once until DONE or PARKED
 *   fault_once     one attempt, map lock held on entry; returns
 *       DONE    resolved (mapped, SIGBUS or woken): map lock still held,
 *               fault_run drops it;
 *       RETRY   the map lock was dropped (the fault waited, or found the
 *               world changed): fault_run takes it again and retries;
 *       AGAIN   waited with the map lock held (the comparison mode only):
 *               retried at once, lock still held;
 *       PARKED  the map lock was dropped and the record handed to whoever
 *               resumes it (an I/O thread, a page's or a group's waiters),
 *               which calls fault_resume: fault_run again, on its thread.
 *
 * Debug builds check each result against the thread's map-lock depth.
 */
#ifndef FL_FAULT_PRIV_H
#define FL_FAULT_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "page.h"
#include "workqueue.h"

struct fl_engine;
struct fl_mapping;
struct fl_object;

enum fault_result {
	FAULT_DONE,   /* resolved; the map lock is still held */
	FAULT_RETRY,  /* the map lock was dropped: look up again */
	FAULT_AGAIN,  /* waited with the map lock held: look up again */
	FAULT_PARKED, /* the map lock was dropped and the fault handed on */
};

struct fault {
	struct fl_engine *e;
	uintptr_t addr; /* page aligned */
	int write;	/* a store (and the mapping allows stores) */
	int wp;		/* a store to a write-protected page */
	int major;	/* the first attempt had to read the store */
	unsigned attempts;
	uint64_t batch;	      /* msg_batch begun: before its read */
	uint64_t batch_ended; /* msg_batch ended: after its read */
	uint32_t tid;	      /* the faulting thread */
	int cpu; /* its CPU, if a CPU poller read it there; else -1 */
	unsigned long pages_read;
	const struct fl_object *read_object; /* what pages_read came from */
	/* A store read failed for this page: deliver SIGBUS if still here. */
	const struct fl_object *error_object;
	uint64_t error_index;
	struct fl_mapping *m; /* valid while the map lock is held */

	/* Waiting (fault_park.c, fault_oom.c). */
	uint64_t locked_at;	     /* when this attempt took the map lock */
	struct fl_page *parked_page; /* waited on, with a reference */
	struct page_waiter waiter;   /* on parked_page, or on mem_group */
	struct work work;	     /* a store read, or the resumption */
	/* Waiting for memory: the group at its max (pinned), how much, and
	 * the cache page the fault will copy (held, so reclaim leaves it). */
	struct fl_group *mem_group;
	struct fl_page *held_page;
	uint64_t mem_pages, wait_start;
	int oom_fail;	      /* nothing to reclaim and the policy said fail */
	int signalled;	      /* answered with SIGBUS */
	int read_one;	      /* the group has room for one page, not a run */
	int throttled;	      /* paused once for dirtying over a dirty limit */
	uint64_t mem_wait_t0; /* when this wait for memory began (ns) */
};

/* Debug builds: a record is freed, reused or woken only while nothing
 * else holds it (no list has its waiter, no queue its work); release
 * builds check nothing. */
static inline void fault_check_unowned(const struct fault *f)
{
	fl_assert(waiter_is_idle(&f->waiter));
	fl_assert(!work_is_queued(&f->work));
	(void)f;
}

/* fault.c: one attempt.  Map lock held on entry; see the table above. */
enum fault_result fault_once(struct fault *f);
/* fault.c: SIGBUS for the faulting thread, counted.  Map lock held on
 * entry and return (DONE). */
enum fault_result fault_sigbus(struct fault *f);

/* fault.c: count the fault once, on its first attempt (major: it must
 * wait for a read). */
void fault_count_first(struct fault *f, int major);
/* fault.c: whether the page is already mapped as the fault needs it. */
int fault_is_stale(const struct fault *f);
/* fault.c: queue SIGBUS for the faulting thread itself (no poison). */
void fault_signal_thread(struct fault *f);

/* fault_swap.c: a fault on a swap entry (swap.h).  Map lock held on
 * entry.  Returns DONE (installed, or SIGBUS; lock held), RETRY (lock
 * dropped: the entry changed) or PARKED (lock dropped: reading the slot,
 * waiting for another fault's read, or waiting for memory). */
enum fault_result fault_swapin(struct fault *f, uint64_t entry);

/* fault_park.c */

/* Take / drop the map lock for an attempt (drops record the hold time). */
void fault_lock(struct fault *f);
void fault_unlock(struct fault *f);
/*
 * Attempt until done or parked.  No lock held on entry or return.  Returns
 * FAULT_DONE (the record is the caller's again) or FAULT_PARKED (the record
 * belongs to whoever resumes the fault).
 */
enum fault_result fault_run(struct fault *f);
/*
 * Resume a parked fault on the calling thread (no lock held): run it, and
 * free its record once it is done.
 */
void fault_resume(struct fault *f);
/* A parked fault that will never run (engine teardown): wake its thread,
 * drop what it holds, free it. */
void fault_cancel(struct fault *f);
/*
 * Wait for page, locked by someone else.  Map lock held on entry; the
 * reference on page is consumed.  Returns PARKED (map lock dropped, the
 * fault retried when the page is unlocked), RETRY (map lock dropped, the
 * page was unlocked meanwhile) or AGAIN (comparison mode: waited with the
 * map lock held).
 */
enum fault_result fault_wait_page(struct fault *f, struct fl_page *page);
/*
 * Read the locked, inserted pages [index, index + count) of o, among them
 * must_have, the page the fault needs, then retry.  Map lock held on
 * entry.  Returns PARKED (map lock dropped; an I/O thread reads and
 * retries) or AGAIN (comparison mode: read with the lock held).
 */
enum fault_result fault_start_read(struct fault *f, struct fl_object *o,
				   uint64_t index, unsigned long count,
				   uint64_t must_have);

/* fault_oom.c */

/*
 * Charging pages failed: group over is at its max.  Map lock held on
 * entry; dropped on return, which is always PARKED: an I/O thread
 * reclaims from over, then retries the fault; if nothing could be
 * reclaimed, over's OOM policy decides (fail: SIGBUS on the retry; wait:
 * parked until memory is freed or the limit raised; callback: as it
 * answers).  f->held_page, if set, is held until the retry and then put.
 */
enum fault_result fault_wait_memory(struct fault *f, struct fl_group *over,
				    uint64_t pages);

/* fault_throttle.c */

/*
 * A store would dirty a page of g above its throttling threshold: pause
 * the fault for pause_ns (less if g's dirty pages fall meanwhile; see
 * flusher.h), then retry it.  Map lock held on entry; dropped on return,
 * which is always PARKED.  A fault is paused at most once.
 */
enum fault_result fault_throttle(struct fault *f, struct fl_group *g,
				 uint64_t pause_ns);

#endif /* FL_FAULT_PRIV_H */
