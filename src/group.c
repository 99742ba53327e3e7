/* SPDX-License-Identifier: MIT */
/* Memory groups: hierarchy, one-step charging, limits, waiting for memory. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "flusher.h"
#include "group.h"
#include "reclaim.h"
#include "swap.h"

#define SET_MAX_TRIES 1000 /* 1 ms apart while pages are busy */

/* The room a group that can swap keeps below its max: a 64th of it, within
 * these bounds (pages); smaller groups keep none. */
#define SWAP_HEADROOM_MIN 16
#define SWAP_HEADROOM_MAX 2048

static uint64_t bytes_to_pages(uint64_t bytes)
{
	return bytes == FL_GROUP_UNLIMITED ? UINT64_MAX : bytes >> PAGE_SHIFT;
}

static uint64_t pages_to_bytes(uint64_t pages)
{
	return pages == UINT64_MAX ? FL_GROUP_UNLIMITED : pages << PAGE_SHIFT;
}

static struct fl_group *group_new(struct fl_engine *e, struct fl_group *parent,
				  const char *name)
{
	struct fl_group *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->name = strdup(name);
	if (!g->name) {
		free(g);
		return NULL;
	}
	g->engine = e;
	g->parent = parent;
	atomic_init(&g->max, UINT64_MAX);
	atomic_init(&g->high, UINT64_MAX);
	atomic_init(&g->swap_max, UINT64_MAX);
	g->policy = FL_OOM_FAIL;
	atomic_init(&g->dirty_ratio, FL_DIRTY_RATIO_DEFAULT);
	atomic_init(&g->dirty_bg_ratio, FL_DIRTY_BACKGROUND_RATIO_DEFAULT);
	lru_init(&g->lru);
	pthread_mutex_init(&g->wait_lock, NULL);
	return g;
}

static void group_free(struct fl_group *g)
{
	lru_destroy(&g->lru);
	pthread_mutex_destroy(&g->wait_lock);
	free(g->name);
	free(g);
}

int groups_init(struct fl_engine *e)
{
	pthread_mutex_init(&e->groups_lock, NULL);
	e->root_group = e->groups = group_new(e, NULL, "root");
	return e->root_group ? 0 : -1;
}

void groups_destroy(struct fl_engine *e)
{
	while (e->groups) {
		struct fl_group *next = e->groups->next;

		group_free(e->groups);
		e->groups = next;
	}
	e->root_group = NULL;
	pthread_mutex_destroy(&e->groups_lock);
}

int group_within(const struct fl_group *g, const struct fl_group *ancestor)
{
	for (; g; g = g->parent)
		if (g == ancestor)
			return 1;
	return 0;
}

static void group_note_peak(struct fl_group *g, uint64_t usage)
{
	uint64_t peak = atomic_load(&g->peak);

	while (usage > peak &&
	       !atomic_compare_exchange_weak(&g->peak, &peak, usage))
		;
}

/* Hand on every fault waiting for memory in g; they try again. */
static void group_wake_all(struct fl_group *g);

/* Give back n pages from g up to, not including, stop (NULL: the root),
 * waking faults that wait for memory at each level. */
static void group_uncharge_below(struct fl_group *g, struct fl_group *stop,
				 uint64_t n)
{
	for (struct fl_group *it = g; it != stop; it = it->parent) {
		atomic_fetch_sub(&it->usage, n);
		/* Ordered after the subtraction: see group_wait. */
		if (atomic_load(&it->waiters_nr))
			group_wake_all(it);
	}
}

int group_try_charge(struct fl_group *g, uint64_t n, struct fl_group **over)
{
	for (struct fl_group *it = g; it; it = it->parent) {
		uint64_t usage = atomic_load(&it->usage);

		do {
			if (usage + n > atomic_load(&it->max)) {
				/* Refused here: undo the levels below, waking
				 * whoever saw them full meanwhile. */
				group_uncharge_below(g, it, n);
				*over = it;
				return -1;
			}
		} while (!atomic_compare_exchange_weak(&it->usage, &usage,
						       usage + n));
	}
	/* Peaks only once every level took it: a refused charge leaves none. */
	for (struct fl_group *it = g; it; it = it->parent)
		group_note_peak(it, atomic_load(&it->usage));
	group_check_high(g);
	return 0;
}

void group_force_charge(struct fl_group *g, uint64_t n)
{
	for (struct fl_group *it = g; it; it = it->parent)
		group_note_peak(it, atomic_fetch_add(&it->usage, n) + n);
}

static void group_wake_all(struct fl_group *g)
{
	struct page_waiter *w;

	pthread_mutex_lock(&g->wait_lock);
	w = g->waiters;
	g->waiters = NULL;
	atomic_store(&g->waiters_nr, 0);
	pthread_mutex_unlock(&g->wait_lock);
	while (w) {
		struct page_waiter *next = w->next;

		waiter_move(w, WAITER_PARKED, WAITER_IDLE);
		w->wake(w);
		w = next;
	}
}

void group_uncharge(struct fl_group *g, uint64_t n)
{
	group_uncharge_below(g, NULL, n);
}

struct group_oom group_oom_policy(struct fl_group *g)
{
	struct group_oom oom;

	pthread_mutex_lock(&g->wait_lock);
	oom = (struct group_oom){g->policy, g->callback, g->callback_arg};
	pthread_mutex_unlock(&g->wait_lock);
	return oom;
}

int group_wait(struct fl_group *g, uint64_t n, struct page_waiter *w)
{
	pthread_mutex_lock(&g->wait_lock);
	/*
	 * Announce, then look: an uncharger either subtracted before our
	 * look (we see room) or reads waiters_nr after our increment (and
	 * wakes us, taking wait_lock after we are on the list).
	 */
	atomic_fetch_add(&g->waiters_nr, 1);
	if (atomic_load(&g->usage) + n <= atomic_load(&g->max)) {
		atomic_fetch_sub(&g->waiters_nr, 1);
		pthread_mutex_unlock(&g->wait_lock);
		return -1;
	}
	waiter_move(w, WAITER_IDLE, WAITER_PARKED);
	w->next = g->waiters;
	g->waiters = w;
	pthread_mutex_unlock(&g->wait_lock);
	return 0;
}

/*
 * A group that can swap keeps some room below its max, as the kernel's
 * kswapd keeps free memory above a watermark: past max - headroom,
 * background reclaim (an I/O thread) swaps pages out until the group is
 * back at max - 2 * headroom, so that a fault at the limit seldom has to
 * wait for a swap-out of its own, and the swap-outs overlap the faults'
 * reads.  0: none (no max, no swap device, or a small group).
 */
static uint64_t swap_headroom(struct fl_group *g)
{
	uint64_t max = atomic_load(&g->max), room;

	if (max == UINT64_MAX || max / 64 < SWAP_HEADROOM_MIN)
		return 0;
	room = max / 64 < SWAP_HEADROOM_MAX ? max / 64 : SWAP_HEADROOM_MAX;
	return group_swap_dev(g) ? room : 0;
}

/* Whether g is past where background reclaim starts: high, or the swap
 * headroom's mark below max.  Cheap while usage is not near either. */
static int past_background_mark(struct fl_group *g)
{
	uint64_t usage = atomic_load(&g->usage), max = atomic_load(&g->max);
	uint64_t room;

	if (usage > atomic_load(&g->high))
		return 1;
	if (max == UINT64_MAX || usage + max / 64 <= max)
		return 0; /* not within any headroom of max */
	room = swap_headroom(g);
	return room && usage > max - room;
}

uint64_t group_background_target(struct fl_group *g, uint64_t batch)
{
	uint64_t high = atomic_load(&g->high), room = swap_headroom(g);
	uint64_t target = high > batch ? high - batch : 0;

	if (room && atomic_load(&g->max) - 2 * room < target)
		target = atomic_load(&g->max) - 2 * room;
	return target;
}

void group_check_high(struct fl_group *g)
{
	for (; g; g = g->parent)
		if (past_background_mark(g) &&
		    lockstat_now() >= atomic_load(&g->background_quiet_until))
			reclaim_background(g);
}

void groups_wake_waiters(struct fl_engine *e)
{
	for (struct fl_group *g = e->groups; g; g = g->next)
		group_wake_all(g);
}

/* ---- the public calls --------------------------------------------------- */

fl_group *fl_group_root(fl_engine *e)
{
	if (!e) {
		errno = EINVAL;
		return NULL;
	}
	return e->root_group;
}

fl_group *fl_group_create(fl_engine *e, fl_group *parent, const char *name)
{
	struct fl_group *g;

	if (!e || !name || (parent && parent->engine != e)) {
		errno = EINVAL;
		return NULL;
	}
	if (!parent)
		parent = e->root_group;
	g = group_new(e, parent, name);
	if (!g)
		return NULL;
	pthread_mutex_lock(&e->groups_lock);
	g->next = e->groups;
	e->groups = g;
	parent->nr_children++;
	pthread_mutex_unlock(&e->groups_lock);
	return g;
}

int fl_group_destroy(fl_group *g)
{
	struct fl_engine *e;
	struct fl_group **pp;

	if (!g || !g->parent) {
		errno = EINVAL;
		return -1;
	}
	e = g->engine;
	for (int waited = 0;; waited++) {
		pthread_mutex_lock(&e->groups_lock);
		if (g->nr_children || g->nr_mappings ||
		    atomic_load(&g->usage) || atomic_load(&g->swap_usage)) {
			pthread_mutex_unlock(&e->groups_lock);
			errno = EBUSY;
			return -1;
		}
		if (!atomic_load(&g->pins))
			break; /* with groups_lock held */
		pthread_mutex_unlock(&e->groups_lock);
		/* Work in flight (readahead, reclaim) still refers to it for
		 * a moment: wait a little rather than fail. */
		if (waited == 1000) {
			errno = EBUSY;
			return -1;
		}
		usleep(1000);
	}
	for (pp = &e->groups; *pp != g; pp = &(*pp)->next)
		;
	*pp = g->next;
	g->parent->nr_children--;
	pthread_mutex_unlock(&e->groups_lock);
	group_free(g);
	return 0;
}

int fl_group_set_max(fl_group *g, uint64_t bytes)
{
	uint64_t max = bytes_to_pages(bytes), usage;

	if (!g) {
		errno = EINVAL;
		return -1;
	}
	atomic_store(&g->max, max);
	/* Reclaim down to it.  What cannot go stays; pages that are only busy
	 * for a moment (being read, held by the fault that read them, taken
	 * by another reclaim) are waited for, up to a second. */
	for (int tries = 0;
	     tries < SET_MAX_TRIES && (usage = atomic_load(&g->usage)) > max;
	     tries++) {
		enum reclaim_outcome r = reclaim_try(g, usage - max);

		if (r == RECLAIM_STUCK)
			break;
		if (r == RECLAIM_BUSY || r == RECLAIM_IN_IO)
			usleep(1000);
	}
	group_wake_all(g); /* room, perhaps: waiters look again */
	return 0;
}

int fl_group_set_high(fl_group *g, uint64_t bytes)
{
	if (!g) {
		errno = EINVAL;
		return -1;
	}
	atomic_store(&g->high, bytes_to_pages(bytes));
	atomic_store(&g->background_quiet_until, 0); /* a new mark: look now */
	group_check_high(g);
	return 0;
}

int fl_group_set_dirty_ratio(fl_group *g, unsigned ratio,
			     unsigned background_ratio)
{
	if (!g || !background_ratio || background_ratio > ratio ||
	    ratio > 100) {
		errno = EINVAL;
		return -1;
	}
	atomic_store(&g->dirty_ratio, ratio);
	atomic_store(&g->dirty_bg_ratio, background_ratio);
	flusher_group_changed(g);
	return 0;
}

int fl_group_set_oom(fl_group *g, enum fl_oom_policy policy,
		     fl_oom_callback callback, void *arg)
{
	if (!g ||
	    (policy != FL_OOM_FAIL && policy != FL_OOM_WAIT &&
	     policy != FL_OOM_CALLBACK) ||
	    (policy == FL_OOM_CALLBACK && !callback)) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&g->wait_lock);
	g->policy = policy;
	g->callback = callback;
	g->callback_arg = arg;
	pthread_mutex_unlock(&g->wait_lock);
	group_wake_all(g); /* a waiter under the old policy decides again */
	return 0;
}

int fl_group_stats(fl_group *g, struct fl_group_stats *s)
{
	uint64_t flushed;

	if (!g || !s) {
		errno = EINVAL;
		return -1;
	}
	/* Read before pages_written_back, of which it is a part (the
	 * flusher adds to that first). */
	flushed = atomic_load(&g->pages_flushed);
	*s = (struct fl_group_stats){
		.pages_flushed = flushed,
		.usage = pages_to_bytes(atomic_load(&g->usage)),
		.peak = pages_to_bytes(atomic_load(&g->peak)),
		.max = pages_to_bytes(atomic_load(&g->max)),
		.high = pages_to_bytes(atomic_load(&g->high)),
		.cache_pages = atomic_load(&g->cache_pages),
		.private_pages = atomic_load(&g->private_pages),
		.minor_faults = atomic_load(&g->minor_faults),
		.major_faults = atomic_load(&g->major_faults),
		.pages_reclaimed = atomic_load(&g->pages_reclaimed),
		.pages_written_back = atomic_load(&g->pages_written_back),
		.oom_events = atomic_load(&g->oom_events),
		.wait_ns = atomic_load(&g->wait_ns),
		.swap_usage = pages_to_bytes(atomic_load(&g->swap_usage)),
		.swap_max = pages_to_bytes(atomic_load(&g->swap_max)),
		.swap_ins = atomic_load(&g->swap_ins),
		.swap_outs = atomic_load(&g->swap_outs),
		.swap_outs_clean = atomic_load(&g->swap_outs_clean),
	};
	flusher_group_stats(g, s);
	return 0;
}

const char *fl_group_name(const fl_group *g)
{
	return g ? g->name : NULL;
}
