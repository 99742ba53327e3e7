/* SPDX-License-Identifier: MIT */
/*
 * Background writeback and dirty throttling per memory group, like the
 * kernel's flusher threads and balance_dirty_pages.  Each group counts
 * its dirty pages and pages under writeback (with descendants).  Above a
 * group's background threshold (dirty_bg_ratio percent of max) the
 * engine's flusher thread, started the first time it is needed, writes
 * the group's dirty pages back in batches with several writes in flight
 * (writeback.h), before reclaim needs them.  Above the midpoint between
 * the background threshold and the dirty limit (dirty_ratio percent of
 * max), a fault about to dirty a page is parked for a short pause that
 * grows with how far above it is (at most FL_DIRTY_MAX_PAUSE_MS, once per
 * fault), then retried: writers that outrun the store are slowed a little
 * at a time, never stopped.
 */
#ifndef FL_FLUSHER_H
#define FL_FLUSHER_H

#include <stdint.h>

struct fl_engine;
struct fl_group;
struct fl_group_stats;
struct fl_page;
struct work;

/* Engine life cycle.  flusher_init: 0, or -1 (no memory).  flusher_stop,
 * in fl_engine_destroy while the handler threads still run: releases the
 * paused faults, waits for the flusher's writes, joins its thread. */
int flusher_init(struct fl_engine *e);
void flusher_stop(struct fl_engine *e);
void flusher_free(struct fl_engine *e);

/* A page became dirty (delta 1) or clean (-1): counted in its group and
 * the groups above; the flusher is woken above a background threshold.
 * Never blocks. */
void flusher_account_dirty(struct fl_page *page, int delta);

/* How long a fault about to dirty a page of g should pause, in ns (0: not
 * at all).  Never blocks. */
uint64_t flusher_throttle_pause(struct fl_group *g);
/*
 * Hold work w (a parked fault's resumption) for pause_ns, or until g's
 * dirty pages fall below the throttling threshold, then post it to the I/O
 * threads.  Takes a pin on g until then.  Never blocks.
 */
void flusher_throttle(struct fl_engine *e, struct fl_group *g, struct work *w,
		      uint64_t pause_ns);

/* g's limits changed: wake the flusher if g is over its threshold now. */
void flusher_group_changed(struct fl_group *g);

/* A fault of g waited wait_ns for memory: the longest is kept. */
void flusher_note_mem_wait(struct fl_group *g, uint64_t wait_ns);

/* group.c: the dirty figures of fl_group_stats (but pages_flushed, which
 * it reads itself, before pages_written_back). */
void flusher_group_stats(struct fl_group *g, struct fl_group_stats *s);

#endif /* FL_FLUSHER_H */
