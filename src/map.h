/* SPDX-License-Identifier: MIT */
/*
 * Mappings: faultline's vm_area_struct.  The engine keeps them in a set
 * sorted by address, guarded by the map lock.
 */
#ifndef FL_MAP_H
#define FL_MAP_H

#include <stddef.h>
#include <stdint.h>

#include "pagesize.h"
#include "stats.h"

struct fl_engine;
struct fl_object;

/* Sequential streams followed at once per mapping (threads scanning parts
 * of one mapping, a scan beside random reads): readahead.c. */
#define RA_STREAMS 4

struct ra_stream {
	_Atomic uint64_t next;	 /* object page just past its last read */
	_Atomic uint64_t reader; /* where its reader last faulted */
	_Atomic unsigned window; /* its window (0: not started) */
};

enum map_kind {
	MAP_KIND_ANON,	  /* private anonymous memory */
	MAP_KIND_SHARED,  /* shared view of an object's page cache */
	MAP_KIND_PRIVATE, /* private view: cache pages, copies on write */
};

struct fl_mapping {
	uintptr_t start, end; /* [start, end), page aligned */
	int prot;
	int advice; /* MADV_NORMAL, MADV_RANDOM or MADV_SEQUENTIAL */
	enum map_kind kind;
	struct fl_object *object; /* NULL for MAP_KIND_ANON */
	struct fl_group *group;	  /* charged for what its faults bring in */
	uint64_t pgoff;		  /* object page shown at start */
	struct counters stats;
	/* Sequential-fault detection for adaptive fault-around. */
	_Atomic uintptr_t last_fault;
	/* Where a sequential swap-in fault comes next (fault_swap.c). */
	_Atomic uintptr_t swap_ra_next;
	_Atomic unsigned around_pages;
	/* Readahead (readahead.c): the sequential streams, and misses less
	 * read-around pages used (many: the faults are random). */
	struct ra_stream ra[RA_STREAMS];
	_Atomic unsigned ra_clock; /* which slot a new stream takes */
	_Atomic unsigned mmap_miss;
	/* The object's list of mappings (object lock and map lock). */
	struct fl_mapping *obj_prev, *obj_next;
};

/* Object page index shown at addr, which the mapping must contain. */
static inline uint64_t mapping_index(const struct fl_mapping *m, uintptr_t addr)
{
	return m->pgoff + ((addr - m->start) >> PAGE_SHIFT);
}

/* Address showing object page index, which the mapping must show. */
static inline uintptr_t mapping_addr(const struct fl_mapping *m, uint64_t index)
{
	return m->start + ((index - m->pgoff) << PAGE_SHIFT);
}

/*
 * Clamp the object range [first, last] to the pages m shows, into
 * [*lo, *hi]; whether anything is left.
 */
static inline int mapping_clamp(const struct fl_mapping *m, uint64_t first,
				uint64_t last, uint64_t *lo, uint64_t *hi)
{
	uint64_t m_last = m->pgoff + ((m->end - m->start) >> PAGE_SHIFT) - 1;

	*lo = first > m->pgoff ? first : m->pgoff;
	*hi = last < m_last ? last : m_last;
	return *lo <= *hi;
}

struct mapping_set {
	struct fl_mapping **v; /* sorted by start, non-overlapping */
	size_t nr, cap;
};

/* The mapping containing addr, or NULL.  Under the map lock. */
struct fl_mapping *mapping_find(const struct mapping_set *set, uintptr_t addr);

/* Unmap everything (engine teardown); objects are left to the caller. */
void mappings_destroy(struct fl_engine *engine);

#endif /* FL_MAP_H */
