/* SPDX-License-Identifier: MIT */
/*
 * The engine: one userfaultfd, its handler threads, the address space (the
 * mappings and the map lock), the objects, and the engine's page table.
 */
#ifndef FL_ENGINE_H
#define FL_ENGINE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "faultline.h"
#include "map.h"
#include "pagetable.h"
#include "stats.h"
#include "workqueue.h"

#define PAGE_SIZE  4096UL
#define PAGE_SHIFT 12
#define PAGE_MASK  (~(PAGE_SIZE - 1))

static inline uint64_t page_round_up(uint64_t n)
{
	return (n + PAGE_SIZE - 1) & PAGE_MASK;
}

struct fl_engine {
	int uffd;
	int stop_fd;	/* eventfd: tells handler threads to exit */
	int pagemap_fd; /* /proc/self/pagemap, or -1 */
	struct fl_config config;
	pthread_t *threads;
	unsigned nr_threads;
	struct workqueue work; /* readahead, for handlers with no fault */

	/* The address space: faults read it, map/unmap/protect write it. */
	pthread_rwlock_t map_lock;
	struct mapping_set mappings;

	/* What each private or anonymous virtual page holds. */
	struct pagetable pagetable;

	pthread_mutex_t objects_lock; /* guards the list of live objects */
	struct fl_object *objects;

	/* Batches of fault messages read so far: orders messages against
	 * writeback's write-protection (see fault_mkwrite). */
	_Atomic uint64_t msg_batches;

	struct counters stats;
	_Atomic uint64_t dirty_pages;
	_Atomic uint64_t cached_pages;

	void *zero_buffer; /* source of UFFDIO_COPY for zero-filled pages */
};

static inline void map_read_lock(struct fl_engine *e)
{
	pthread_rwlock_rdlock(&e->map_lock);
}

static inline void map_write_lock(struct fl_engine *e)
{
	pthread_rwlock_wrlock(&e->map_lock);
}

static inline void map_unlock(struct fl_engine *e)
{
	pthread_rwlock_unlock(&e->map_lock);
}

#endif /* FL_ENGINE_H */
