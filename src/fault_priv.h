/* SPDX-License-Identifier: MIT */
/*
 * The fault handler's own structures, shared by fault.c (how a fault is
 * resolved) and fault_park.c (how a fault waits without holding the map
 * lock or a thread).
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
	uint64_t batch; /* when the message was read (engine msg_batches) */
	uint32_t tid;	/* the faulting thread */
	unsigned long pages_read;
	const struct fl_object *read_object; /* what pages_read came from */
	/* A store read failed for this page: deliver SIGBUS if still here. */
	const struct fl_object *error_object;
	uint64_t error_index;
	struct fl_mapping *m; /* valid while the map lock is held */

	/* Waiting (fault_park.c). */
	uint64_t locked_at;	     /* when this attempt took the map lock */
	int on_heap;		     /* parked once: freed when done */
	struct fl_page *parked_page; /* waited on, with a reference */
	struct page_waiter waiter;   /* on parked_page */
	struct work work;	     /* a store read, or the resumption */
	/* Waiting for memory: the group at its max (pinned), how much, and
	 * the cache page the fault will copy (held, so reclaim leaves it). */
	struct fl_group *mem_group;
	struct fl_page *held_page;
	uint64_t mem_pages, wait_start;
	int oom_fail;  /* nothing to reclaim and the policy said fail */
	int signalled; /* answered with SIGBUS */
	int read_one;  /* the group has room for one page, not a run */
};

/* fault.c: one attempt, with the map lock held for reading. */
enum fault_result fault_once(struct fault *f);
/* fault.c: SIGBUS for the faulting thread, counted. */
enum fault_result fault_sigbus(struct fault *f);

/* fault_park.c */
void fault_lock(struct fault *f);
void fault_unlock(struct fault *f);
/* Attempt until done or parked; frees a parked fault when done. */
enum fault_result fault_run(struct fault *f);
/* Wait for page (referenced) to be unlocked; the reference is consumed. */
enum fault_result fault_wait_page(struct fault *f, struct fl_page *page);
/*
 * Charging pages failed: group over is at its max.  Reclaim from it (on an
 * I/O thread), then retry; if nothing could be reclaimed, apply over's OOM
 * policy (fail: SIGBUS on the retry; wait: parked until memory is freed or
 * the limit raised; callback: as it answers).
 */
enum fault_result fault_wait_memory(struct fault *f, struct fl_group *over,
				    uint64_t pages);
/* Read the locked, inserted pages [index, index + count) of o, then retry. */
enum fault_result fault_start_read(struct fault *f, struct fl_object *o,
				   uint64_t index, unsigned long count);

#endif /* FL_FAULT_PRIV_H */
