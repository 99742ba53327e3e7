/* SPDX-License-Identifier: MIT */
/*
 * Memory groups: faultline's memory cgroups.  A page is charged to a group
 * in one step when it is created and uncharged when it is freed; a charge
 * counts against the group and every ancestor, and never takes any of them
 * past its max.
 */
#ifndef FL_GROUP_H
#define FL_GROUP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "faultline.h"
#include "page.h"

struct fl_engine;

/* A group's page-cache pages, in recency order (reclaim.c). */
struct lru {
	pthread_mutex_t lock;
	struct fl_page *inactive, *active; /* circular lists: head */
	uint64_t nr_inactive, nr_active;
};

struct fl_group {
	struct fl_engine *engine;
	struct fl_group *parent;
	char *name;
	struct fl_group *next; /* the engine's list of groups */

	_Atomic uint64_t usage; /* pages, with descendants */
	_Atomic uint64_t peak;
	_Atomic uint64_t max, high; /* pages; UINT64_MAX: none */
	_Atomic uint64_t cache_pages, private_pages; /* own */
	_Atomic uint64_t isolated; /* own pages off the lists, being evicted */

	_Atomic uint64_t minor_faults, major_faults;
	_Atomic uint64_t pages_reclaimed, pages_written_back;
	_Atomic uint64_t oom_events, wait_ns;

	/* Swap (swap.c): the device (NULL: the parent's), slots held with
	 * descendants and their limit (pages), pages moved out and in. */
	struct fl_swap *swap;
	_Atomic uint64_t swap_usage, swap_max;
	_Atomic uint64_t swap_ins, swap_outs;
	_Atomic uint64_t swap_outs_clean; /* dropped without a write */
	/* Dirty data (flusher.c): pages dirty and under writeback, with
	 * descendants; the dirty limits in percent of max; what the flusher
	 * wrote, writers throttled and for how long, and the longest a fault
	 * waited for memory. */
	_Atomic uint64_t dirty, writeback;
	_Atomic unsigned dirty_ratio, dirty_bg_ratio;
	_Atomic uint64_t pages_flushed, throttled, throttle_ns;
	_Atomic uint64_t max_mem_wait_ns;

	/* The OOM policy: changed and read under wait_lock. */
	enum fl_oom_policy policy;
	fl_oom_callback callback;
	void *callback_arg;

	unsigned nr_children, nr_mappings; /* under the engine's group lock */
	_Atomic int background_reclaim;	   /* a reclaim above high is queued */
	/* A background reclaim that freed nothing: none is queued again
	 * before this time (lockstat_now; 0: any time), so that a group
	 * with nothing left to reclaim (its swap full) does not keep an I/O
	 * thread scanning after each charge. */
	_Atomic uint64_t background_quiet_until;

	struct lru lru;

	/* Faults waiting for memory (FL_OOM_WAIT), parked. */
	pthread_mutex_t wait_lock;
	struct page_waiter *waiters;
	_Atomic unsigned waiters_nr;
	/* Work or waiters that will use the group later: no destroy. */
	_Atomic unsigned pins;
};

/* Engine life cycle. */
int groups_init(struct fl_engine *e);
void groups_destroy(struct fl_engine *e);
/* Hand every fault waiting for memory on (engine teardown). */
void groups_wake_waiters(struct fl_engine *e);

/*
 * Charge n pages to g and its ancestors: 0, or -1 if that would take one
 * of them past its max (then nothing is charged, and *over is the group
 * that refused).  Never blocks.
 */
int group_try_charge(struct fl_group *g, uint64_t n, struct fl_group **over);
/* Charge although it may exceed a max: pages that already exist. */
void group_force_charge(struct fl_group *g, uint64_t n);
/* Give back n pages; wakes faults waiting for memory in g or above. */
void group_uncharge(struct fl_group *g, uint64_t n);

/* Whether g is ancestor or itself. */
int group_within(const struct fl_group *g, const struct fl_group *ancestor);

/*
 * Park waiter until memory may be available in g (an uncharge in or below
 * g, or a limit raised).  Returns 0 if parked, -1 if room appeared
 * meanwhile for n pages (then waiter is not parked).
 */
int group_wait(struct fl_group *g, uint64_t n, struct page_waiter *waiter);

/* A group's OOM policy, read together (under the group's wait lock). */
struct group_oom {
	enum fl_oom_policy policy;
	fl_oom_callback callback;
	void *arg;
};
struct group_oom group_oom_policy(struct fl_group *g);

/* Usage above high, or past the room a group that can swap keeps below
 * its max (a 64th of max): queue background reclaim (once).  Called after
 * every charge; posts work, never waits. */
void group_check_high(struct fl_group *g);
/* The usage background reclaim brings g down to: high less batch, or
 * twice the swap room below max, whichever is lower. */
uint64_t group_background_target(struct fl_group *g, uint64_t batch);

#endif /* FL_GROUP_H */
