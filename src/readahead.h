/* SPDX-License-Identifier: MIT */
/*
 * Readahead, like the kernel's file_ra_state for mmap, kept per mapping:
 * how many pages a fault that misses the cache reads, and reading ahead
 * of a mapping's sequential faults in the background.  A miss of unknown
 * pattern reads around the fault; misses whose read-around pages keep
 * going unused (mmap_miss) make the mapping random: the faulting page
 * alone.  A miss just past the last read is sequential: a window that grows
 * fourfold, and a marked page in it (PG_RA_MARK, which fault-around leaves
 * unmapped) whose fault starts the next window in the background, so a
 * sequential reader runs into pages already read.
 */
#ifndef FL_READAHEAD_H
#define FL_READAHEAD_H

#include <stdint.h>

struct fl_engine;
struct fl_mapping;
struct fl_object;
struct fl_page;
struct ra_run;

/* A fault at index missed the cache: what to read (map lock held). */
void readahead_plan(struct fl_engine *e, struct fl_mapping *m, uint64_t index,
		    struct ra_run *run);
/* The planned run was inserted, n pages from run->first (map lock held);
 * a sequential one queues the next windows. */
void readahead_missed(struct fl_engine *e, struct fl_mapping *m,
		      struct fl_object *o, const struct ra_run *run,
		      unsigned long n);
/*
 * A fault found page (up to date) in the cache: a page read ahead is used,
 * and a marked one starts the next windows in the background.  Map lock
 * held; page referenced by the caller.  Returns 1 if the page had been
 * read ahead and not used before.
 */
int readahead_hit(struct fl_engine *e, struct fl_mapping *m,
		  struct fl_object *o, struct fl_page *page);
/* Whether a fault of m at index is random (advice, or read-around going
 * unused, and no sequential stream there): fault-around then maps the
 * faulting page alone. */
int readahead_random(struct fl_mapping *m, uint64_t index);

#endif /* FL_READAHEAD_H */
