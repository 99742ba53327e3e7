/* SPDX-License-Identifier: MIT */
/*
 * Readahead: how many pages a fault reads from the store, and reading ahead
 * of a mapping's sequential faults in the background, so that the store
 * reads the next window while the program consumes this one.
 */
#ifndef FL_READAHEAD_H
#define FL_READAHEAD_H

#include <stdint.h>

struct fl_engine;
struct fl_mapping;
struct fl_object;
struct work;

/* Pages a fault that misses the cache at index reads at once. */
unsigned readahead_sync_pages(const struct fl_engine *e,
			      const struct fl_mapping *m);

/*
 * A fault at index (a miss that reads count pages from index, or a hit with
 * count 0) may start asynchronous readahead of the next window.  Called
 * with the map lock held.
 */
void readahead_update(struct fl_engine *e, struct fl_mapping *m,
		      struct fl_object *o, uint64_t index, unsigned long count);

#endif /* FL_READAHEAD_H */
