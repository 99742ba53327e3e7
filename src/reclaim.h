/* SPDX-License-Identifier: MIT */
/*
 * Reclaim: each group keeps its page-cache pages on an inactive and an
 * active list.  A page starts inactive.  The scanner gives an inactive page
 * a second chance by taking it out of every user view; if it is used again
 * (a minor fault) before the scanner comes back, it is activated, else it
 * is evicted: written back first if dirty, then punched out of the memfd,
 * which drops it from every view at once.  Private copies and anonymous
 * pages never leave memory (there is no swap yet) and are not on the lists.
 */
#ifndef FL_RECLAIM_H
#define FL_RECLAIM_H

#include <stdint.h>

struct fl_group;
struct fl_page;
struct lru;

void lru_init(struct lru *lru);
void lru_destroy(struct lru *lru);
/* A new page of the cache, charged to its group: onto the inactive list. */
void lru_add(struct fl_page *page);
/* A page leaving the cache. */
void lru_del(struct fl_page *page);
/* A fault used the page: it is referenced; back from a second chance, it
 * is activated. */
void lru_mark_accessed(struct fl_page *page);

/*
 * Reclaim up to want pages from g and the groups below it, without any
 * lock held by the caller (it takes the map lock for reading briefly, page
 * locks briefly, and writes dirty pages back).  Returns pages freed.
 */
uint64_t reclaim_group(struct fl_group *g, uint64_t want);

enum reclaim_outcome {
	RECLAIM_FREED, /* some pages were freed */
	RECLAIM_BUSY,  /* none, but some were only busy for a moment (locked,
			  under writeback, being read, held, used since
			  reclaim last looked, or taken by another reclaim):
			  a try a little later may free them */
	RECLAIM_IN_IO, /* none, but pages are being read or written (locked
			  or under writeback): memory comes back when that
			  I/O ends, however long the machine takes to run it */
	RECLAIM_STUCK, /* none, and what is left cannot be reclaimed (private
			  or shared anonymous memory, dirty pages whose
			  writeback fails, punches that fail) */
};
/* One try of reclaim_group for callers that wait and try again while the
 * outcome is RECLAIM_IN_IO or RECLAIM_BUSY.  Same locking as
 * reclaim_group. */
enum reclaim_outcome reclaim_try(struct fl_group *g, uint64_t want);
/* Queue a reclaim of g down to its high limit, unless one is queued. */
void reclaim_background(struct fl_group *g);
/*
 * As reclaim_group, for a readahead window of object that starts at page
 * window while its reader is at page reader: every page read ahead and not
 * used yet stays, and so do the object's pages in [reader, window).  Room
 * for readahead is made from pages the readers have left behind, never
 * from the windows read ahead before it.
 */
struct readahead_spare {
	const struct fl_object *object;
	uint64_t reader, window;
};
uint64_t reclaim_for_readahead(struct fl_group *g, uint64_t want,
			       const struct readahead_spare *spare);

#endif /* FL_RECLAIM_H */
