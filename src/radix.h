/* SPDX-License-Identifier: MIT */
/*
 * A sparse map from a 64-bit index to a non-NULL pointer: a radix tree of
 * 64-way nodes that grows in height as larger indices are stored.  Nodes are
 * allocated only when an entry is stored in them, and freed when their last
 * entry goes.  Not thread-safe: callers hold the owner's lock.
 */
#ifndef FL_RADIX_H
#define FL_RADIX_H

#include <stdint.h>

struct radix_node;

struct radix {
	struct radix_node *root;
	unsigned height; /* levels below root; 0 = empty tree */
	uint64_t count;	 /* entries stored */
};

#define RADIX_INIT                                                             \
	{                                                                      \
		NULL, 0, 0                                                     \
	}

void *radix_lookup(const struct radix *tree, uint64_t index);
/* Store item (non-NULL) at index.  -1 with ENOMEM or EEXIST. */
int radix_insert(struct radix *tree, uint64_t index, void *item);
/* Replace the entry at index (which must exist) by item; returns the old. */
void *radix_replace(struct radix *tree, uint64_t index, void *item);
/* Remove and return the entry at index (NULL if none). */
void *radix_delete(struct radix *tree, uint64_t index);
/*
 * Find the first entry at an index >= *index and <= last; store its index
 * in *index and return it, or return NULL if there is none.
 */
void *radix_next(const struct radix *tree, uint64_t *index, uint64_t last);
/*
 * Gang lookup: store up to max entries with indices in [*index, last], in
 * index order, into items[] (and their indices into indices[]).  Returns
 * how many; *index is left just past the last index looked at, which may
 * be beyond the last one returned, and is 0 if that wrapped past
 * UINT64_MAX: a caller that loops stops when *index is 0 or past last.
 */
unsigned radix_gang(const struct radix *tree, uint64_t *index, uint64_t last,
		    void **items, uint64_t *indices, unsigned max);
/* Remove every entry, calling fn on each (fn may be NULL). */
void radix_clear(struct radix *tree,
		 void (*fn)(void *item, uint64_t index, void *arg), void *arg);

#endif /* FL_RADIX_H */
