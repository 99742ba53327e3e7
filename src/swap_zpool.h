/* SPDX-License-Identifier: MIT */
/*
 * Compressed swap memory (zswap-like): a swap device (swap_dev.h) that
 * keeps pages compressed in memory, in a pool of at most pool_bytes, in
 * front of another device.  A page goes to the next device when it does
 * not compress (it would keep more than 7/8 of its size) or when the pool
 * has no room for it; with no next device such a write fails with ENOSPC.
 *
 * Slots: with a next device, the pool uses the next device's slots, as
 * zswap does (alloc and free are the next device's; a page kept in the
 * pool leaves its slot there reserved but unwritten), so that a page can
 * fall through at any time without moving.  Without one, it hands out
 * slots of its own, pool_bytes / 64 of them (a page never takes fewer
 * than 64 bytes of the pool).
 *
 * The pool accounts real memory: each page kept is one allocation (its
 * compressed bytes and a small header), counted at the allocator's usable
 * size (malloc_usable_size), not at its nominal size.  The index from slot
 * to allocation (a radix tree) is not counted.
 *
 * Thread-safe: any op from any thread, with no engine lock held.  The
 * device never blocks for I/O itself (compression is CPU work); the next
 * device's ops may.  It does not own next: each device is destroyed by
 * whoever made it (the engine), in any order, once every slot is freed.
 */
#ifndef FL_SWAP_ZPOOL_H
#define FL_SWAP_ZPOOL_H

#include <stdint.h>

#include "swap_dev.h"

/*
 * A compressed pool of at most pool_bytes (>= one page) in front of next
 * (NULL: none), compressing with algorithm (FL_COMPRESS_ZSTD or
 * FL_COMPRESS_LZ4) at level.  e is recorded in the device (may be NULL in
 * unit tests).  Returns NULL with errno: EINVAL (FL_COMPRESS_NONE or an
 * algorithm that does not exist, a level out of range, pool_bytes below a
 * page), EOPNOTSUPP (an algorithm this build lacks), ENOMEM.
 */
struct fl_swap *swap_zpool_create(struct fl_engine *e, int algorithm, int level,
				  uint64_t pool_bytes, struct fl_swap *next);

/* What the pool holds and did (the fl_swap fields count too: bytes_stored
 * is pool_used, pages_written and pages_read count pages of either tier). */
struct swap_zpool_stats {
	uint64_t pool_max;	   /* pool_bytes */
	uint64_t pool_used;	   /* bytes the pool's allocations take now */
	uint64_t pool_pages;	   /* pages kept in the pool now */
	uint64_t compressed_bytes; /* their compressed bytes, without the
				      allocator's overhead */
	uint64_t stored;	   /* pages ever kept in the pool */
	uint64_t loaded;	   /* pages ever read from the pool */
	uint64_t rejected_full;	   /* pages sent on: no room in the pool */
	uint64_t rejected_poor;	   /* pages sent on: did not compress */
	uint64_t written_next;	   /* pages written to next */
	uint64_t read_next;	   /* pages read from next */
};

/* Statistics of a device made by swap_zpool_create: 0, or -EINVAL. */
int swap_zpool_stats(struct fl_swap *dev, struct swap_zpool_stats *st);

#endif /* FL_SWAP_ZPOOL_H */
