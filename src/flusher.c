/* SPDX-License-Identifier: MIT */
/*
 * Background writeback and dirty throttling per memory group (flusher.h).
 *
 * Locking: the flusher's lock guards its state (started, stop, kicked) and
 * the list of paused faults; it is never held across writeback, group or
 * object locks.  The thread takes the engine's groups lock and objects
 * lock briefly to pin what it will work on, then writes with no lock held
 * (writeback_pages takes the map lock and page locks briefly).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "engine.h"
#include "flusher.h"
#include "group.h"
#include "object.h"
#include "writeback.h"

#define FLUSH_CHUNK	  128 /* dirty pages gathered per writeback call */
#define FLUSH_IN_FLIGHT	  32  /* write requests in flight at once */
#define FLUSH_MAX_GROUPS  64  /* groups over their threshold per round */
#define FLUSH_MAX_OBJECTS 64  /* objects looked at per group per round */
#define FLUSH_IDLE_NS	  100000000ull /* a round that wrote nothing: wait */
#define PAUSE_MIN_NS	  1000000ull   /* the shortest throttling pause */
#define PAUSE_MAX_NS	  (FL_DIRTY_MAX_PAUSE_MS * 1000000ull)

struct flusher {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* a kick, a new paused fault, or stop */
	pthread_t thread;
	int started;
	_Atomic int stop;
	_Atomic int kicked; /* a group went over its background threshold */
	/* Paused faults' resumptions, linked through next; index: when the
	 * pause ends, must_have: when it began (ns), arg: the group. */
	struct work *paused;
	struct wb_batch batch; /* the flusher's writes in flight */
};

/* ---- limits ---------------------------------------------------------------
 */

/* ratio percent of g's max, in pages (at least 1); UINT64_MAX without. */
static uint64_t group_thresh(struct fl_group *g, unsigned ratio)
{
	uint64_t max = atomic_load(&g->max), t;

	if (max == UINT64_MAX)
		return UINT64_MAX;
	t = max / 100 * ratio + max % 100 * ratio / 100;
	return t ? t : 1;
}

static uint64_t group_bg_thresh(struct fl_group *g)
{
	return group_thresh(g, atomic_load(&g->dirty_bg_ratio));
}

static uint64_t group_dirty_limit(struct fl_group *g)
{
	return group_thresh(g, atomic_load(&g->dirty_ratio));
}

uint64_t flusher_throttle_pause(struct fl_group *g)
{
	uint64_t pause = 0;

	for (; g; g = g->parent) {
		uint64_t limit = group_dirty_limit(g), bg = group_bg_thresh(g);
		uint64_t freerun, d, p;

		if (limit == UINT64_MAX)
			continue;
		/* Dirty and under writeback: what the store still owes. */
		d = atomic_load(&g->dirty) + atomic_load(&g->writeback);
		freerun = bg + (limit - bg) / 2;
		if (d <= freerun)
			continue;
		if (d >= limit)
			p = PAUSE_MAX_NS;
		else
			p = PAUSE_MIN_NS + (PAUSE_MAX_NS - PAUSE_MIN_NS) *
						   (d - freerun) /
						   (limit - freerun);
		if (p > pause)
			pause = p;
	}
	return pause;
}

/* ---- the thread's life ------------------------------------------------------
 */

static void *flusher_main(void *arg);
static void paused_tick(struct fl_engine *e);

int flusher_init(struct fl_engine *e)
{
	struct flusher *fl = calloc(1, sizeof(*fl));
	pthread_condattr_t attr;

	if (!fl)
		return -1;
	pthread_mutex_init(&fl->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&fl->cond, &attr);
	pthread_condattr_destroy(&attr);
	wb_batch_init(&fl->batch, e);
	fl->batch.tick = paused_tick;
	e->flusher = fl;
	return 0;
}

/* Under fl->lock: start the thread if it is not running (all signals
 * blocked in it: signals are the program's).  A failure leaves it for
 * the next kick; reclaim still writes dirty pages meanwhile. */
static void flusher_start_locked(struct fl_engine *e, struct flusher *fl)
{
	sigset_t all, old;

	if (fl->started || fl->stop)
		return;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	fl->started = pthread_create(&fl->thread, NULL, flusher_main, e) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void flusher_kick(struct fl_engine *e)
{
	struct flusher *fl = e->flusher;

	if (!fl || atomic_exchange(&fl->kicked, 1))
		return; /* already kicked: the thread will look */
	pthread_mutex_lock(&fl->lock);
	flusher_start_locked(e, fl);
	pthread_cond_signal(&fl->cond);
	pthread_mutex_unlock(&fl->lock);
}

/* Post the resumption of a paused fault, counting its pause. */
static void paused_release(struct fl_engine *e, struct work *w, uint64_t now)
{
	struct fl_group *g = w->arg;

	atomic_fetch_add(&g->throttle_ns, now - w->must_have);
	atomic_fetch_sub(&g->pins, 1);
	w->next = NULL;
	threads_post_work(e, w);
}

/* Resume the paused faults whose pause is over, or whose group is below
 * the throttling threshold again; returns when the next pause ends (ns),
 * or 0 if none is paused.  No lock held. */
static uint64_t paused_release_due(struct fl_engine *e, int all)
{
	struct flusher *fl = e->flusher;
	struct work *due = NULL, **pp, *w;
	uint64_t now = lockstat_now(), next = 0;

	pthread_mutex_lock(&fl->lock);
	for (pp = &fl->paused; (w = *pp);) {
		if (all || now >= w->index || !flusher_throttle_pause(w->arg)) {
			*pp = w->next;
			w->next = due;
			due = w;
		} else {
			if (!next || w->index < next)
				next = w->index;
			pp = &w->next;
		}
	}
	pthread_mutex_unlock(&fl->lock);
	while ((w = due)) {
		due = w->next;
		paused_release(e, w, now);
	}
	return next;
}

/* While the flusher waits for its writes: pauses still end on time. */
static void paused_tick(struct fl_engine *e)
{
	paused_release_due(e, 0);
}

void flusher_throttle(struct fl_engine *e, struct fl_group *g, struct work *w,
		      uint64_t pause_ns)
{
	struct flusher *fl = e->flusher;
	uint64_t now = lockstat_now();

	atomic_fetch_add(&g->pins, 1);
	atomic_fetch_add(&g->throttled, 1);
	w->arg = g;
	w->must_have = now;
	w->index = now + pause_ns;
	pthread_mutex_lock(&fl->lock);
	flusher_start_locked(e, fl);
	if (!fl->started) { /* no thread to end the pause: none */
		pthread_mutex_unlock(&fl->lock);
		paused_release(e, w, now);
		return;
	}
	w->next = fl->paused;
	fl->paused = w;
	pthread_cond_signal(&fl->cond);
	pthread_mutex_unlock(&fl->lock);
}

void flusher_stop(struct fl_engine *e)
{
	struct flusher *fl = e->flusher;

	if (!fl)
		return;
	pthread_mutex_lock(&fl->lock);
	fl->stop = 1;
	pthread_cond_signal(&fl->cond);
	pthread_mutex_unlock(&fl->lock);
	if (fl->started)
		pthread_join(fl->thread, NULL);
	fl->started = 0;
	paused_release_due(e, 1);
	/* Its writes complete on the handler threads, still running. */
	wb_batch_wait(&fl->batch, 0);
}

void flusher_free(struct fl_engine *e)
{
	struct flusher *fl = e->flusher;

	if (!fl)
		return;
	wb_batch_destroy(&fl->batch);
	pthread_cond_destroy(&fl->cond);
	pthread_mutex_destroy(&fl->lock);
	free(fl);
	e->flusher = NULL;
}

/* ---- accounting
 * ---------------------------------------------------------------
 */

void flusher_account_dirty(struct fl_page *page, int delta)
{
	int over = 0;

	for (struct fl_group *g = page->group; g; g = g->parent) {
		uint64_t d =
			atomic_fetch_add(&g->dirty, (uint64_t)(int64_t)delta) +
			(uint64_t)(int64_t)delta;

		over |= delta > 0 && d > group_bg_thresh(g);
	}
	if (over)
		flusher_kick(page->object->engine);
}

void flusher_group_changed(struct fl_group *g)
{
	if (atomic_load(&g->dirty) > group_bg_thresh(g))
		flusher_kick(g->engine);
}

void flusher_note_mem_wait(struct fl_group *g, uint64_t wait_ns)
{
	uint64_t max = atomic_load(&g->max_mem_wait_ns);

	while (wait_ns > max && !atomic_compare_exchange_weak(
					&g->max_mem_wait_ns, &max, wait_ns))
		;
}

void flusher_group_stats(struct fl_group *g, struct fl_group_stats *s)
{
	uint64_t limit = group_dirty_limit(g), bg = group_bg_thresh(g);

	s->dirty_pages = atomic_load(&g->dirty);
	s->writeback_pages = atomic_load(&g->writeback);
	s->dirty_limit =
		limit == UINT64_MAX ? FL_GROUP_UNLIMITED : limit << PAGE_SHIFT;
	s->dirty_background =
		bg == UINT64_MAX ? FL_GROUP_UNLIMITED : bg << PAGE_SHIFT;
	s->throttled = atomic_load(&g->throttled);
	s->throttle_ns = atomic_load(&g->throttle_ns);
	s->max_mem_wait_ns = atomic_load(&g->max_mem_wait_ns);
}

/* ---- writing a group's dirty pages ----------------------------------------
 */

/* Add to pages[n..max) the dirty pages of g in [first, last] of o that
 * are neither locked nor under writeback, a reference on each; returns
 * the new n.  Cache lock held. */
static unsigned gather_range(struct fl_object *o, struct fl_group *g,
			     uint64_t first, uint64_t last,
			     struct fl_page **pages, unsigned n, unsigned max)
{
	uint64_t index = first;
	struct fl_page *page;

	while (n < max && (page = radix_next(&o->pages, &index, last))) {
		if ((atomic_load(&page->flags) &
		     (PG_DIRTY | PG_WRITEBACK | PG_LOCKED)) == PG_DIRTY &&
		    group_within(page->group, g)) {
			page_get(page);
			pages[n++] = page;
		}
		if (index++ == last)
			break;
	}
	return n;
}

/* Up to max such pages of o from its flush cursor on, wrapping once, in
 * index order within each part; the cursor moves past the last. */
static unsigned gather_dirty(struct fl_object *o, struct fl_group *g,
			     struct fl_page **pages, unsigned max)
{
	uint64_t start = o->wb_cursor < o->nr_pages ? o->wb_cursor : 0;
	unsigned n = 0;

	if (!o->nr_pages)
		return 0;
	pthread_rwlock_rdlock(&o->lock);
	n = gather_range(o, g, start, o->nr_pages - 1, pages, n, max);
	if (start)
		n = gather_range(o, g, 0, start - 1, pages, n, max);
	pthread_rwlock_unlock(&o->lock);
	o->wb_cursor = n ? pages[n - 1]->index + 1 : start;
	return n;
}

/* Objects with dirty pages, each with a reference; returns how many. */
static unsigned dirty_objects(struct fl_engine *e, struct fl_object **v,
			      unsigned max)
{
	unsigned n = 0;

	pthread_mutex_lock(&e->objects_lock);
	for (struct fl_object *o = e->objects; o && n < max; o = o->engine_next)
		if (o->store && o->writable && atomic_load(&o->nr_dirty) &&
		    object_tryget(o))
			v[n++] = o;
	pthread_mutex_unlock(&e->objects_lock);
	return n;
}

/* Write g's dirty pages back until they are down to half its background
 * threshold; returns the pages started. */
static uint64_t flush_group(struct fl_engine *e, struct fl_group *g)
{
	struct flusher *fl = e->flusher;
	struct fl_object *objs[FLUSH_MAX_OBJECTS];
	struct fl_page *pages[FLUSH_CHUNK];
	unsigned nobj = dirty_objects(e, objs, FLUSH_MAX_OBJECTS);
	uint64_t started = 0;

	for (unsigned i = 0; i < nobj; i++) {
		unsigned n;

		while (!fl->stop &&
		       atomic_load(&g->dirty) > group_bg_thresh(g) / 2 &&
		       (n = gather_dirty(objs[i], g, pages, FLUSH_CHUNK))) {
			uint64_t s = writeback_pages(&fl->batch, pages, n,
						     FLUSH_IN_FLIGHT);

			for (unsigned k = 0; k < n; k++)
				page_put(pages[k]);
			started += s;
			/* The whole first: fl_group_stats reads the part
			 * first, so it never sees more flushed than written
			 * back. */
			atomic_fetch_add(&g->pages_written_back, s);
			atomic_fetch_add(&g->pages_flushed, s);
			paused_release_due(e, 0);
			if (!s)
				break; /* all busy: next object */
		}
		object_put(objs[i]);
	}
	return started;
}

/* The groups over their background threshold, pinned. */
static unsigned groups_over(struct fl_engine *e, struct fl_group **v)
{
	unsigned n = 0;

	pthread_mutex_lock(&e->groups_lock);
	for (struct fl_group *g = e->groups; g && n < FLUSH_MAX_GROUPS;
	     g = g->next)
		if (atomic_load(&g->dirty) > group_bg_thresh(g)) {
			atomic_fetch_add(&g->pins, 1);
			v[n++] = g;
		}
	pthread_mutex_unlock(&e->groups_lock);
	return n;
}

/* One round: every group over its threshold.  Returns -1 if none was,
 * 1 if writes were started and some did not fail, else 0. */
static int flush_round(struct fl_engine *e)
{
	struct flusher *fl = e->flusher;
	struct fl_group *v[FLUSH_MAX_GROUPS];
	unsigned n = groups_over(e, v);
	uint64_t written0, started = 0;

	if (!n)
		return -1;
	pthread_mutex_lock(&fl->batch.lock);
	written0 = fl->batch.written;
	pthread_mutex_unlock(&fl->batch.lock);
	for (unsigned i = 0; i < n; i++) {
		started += flush_group(e, v[i]);
		atomic_fetch_sub(&v[i]->pins, 1);
	}
	if (!started)
		return 0;
	/* Wait for the round, to tell progress from a store that fails
	 * every write. */
	wb_batch_wait(&fl->batch, 0);
	pthread_mutex_lock(&fl->batch.lock);
	started = fl->batch.written != written0;
	pthread_mutex_unlock(&fl->batch.lock);
	return started ? 1 : 0;
}

static void timespec_at(struct timespec *ts, uint64_t ns)
{
	ts->tv_sec = (time_t)(ns / 1000000000u);
	ts->tv_nsec = (long)(ns % 1000000000u);
}

/* Under fl->lock: when the next pause ends (ns), or 0 if none. */
static uint64_t paused_next_locked(struct flusher *fl)
{
	uint64_t next = 0;

	for (struct work *w = fl->paused; w; w = w->next)
		if (!next || w->index < next)
			next = w->index;
	return next;
}

static void *flusher_main(void *arg)
{
	struct fl_engine *e = arg;
	struct flusher *fl = e->flusher;
	uint64_t idle_until = 0;

	for (;;) {
		uint64_t now, until;
		struct timespec ts;

		paused_release_due(e, 0);
		now = lockstat_now();
		pthread_mutex_lock(&fl->lock);
		if (fl->stop) {
			pthread_mutex_unlock(&fl->lock);
			break;
		}
		/* Looked at under the lock: a kick or a new pause after this
		 * signals the wait below. */
		if (!atomic_load(&fl->kicked) || now < idle_until) {
			until = paused_next_locked(fl);
			if (idle_until > now && (!until || idle_until < until))
				until = idle_until;
			if (!until) { /* nothing to do until a kick or pause */
				pthread_cond_wait(&fl->cond, &fl->lock);
			} else {
				timespec_at(&ts, until);
				pthread_cond_timedwait(&fl->cond, &fl->lock,
						       &ts);
			}
			pthread_mutex_unlock(&fl->lock);
			continue;
		}
		pthread_mutex_unlock(&fl->lock);
		atomic_store(&fl->kicked, 0);
		switch (flush_round(e)) {
		case 1: /* progress: another round while any group is over */
			atomic_store(&fl->kicked, 1);
			break;
		case 0: /* nothing written (all busy, or the store fails):
			   look again a little later, not in a loop */
			idle_until = lockstat_now() + FLUSH_IDLE_NS;
			atomic_store(&fl->kicked, 1);
			break;
		default: /* no group over its threshold: until a kick */
			break;
		}
	}
	return NULL;
}
