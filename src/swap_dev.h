/* SPDX-License-Identifier: MIT */
/*
 * Swap devices: where evicted anonymous pages and private copies go.  A
 * device hands out slots (one page each) and reads and writes pages by
 * slot.  Devices stack: compressed memory (swap_zpool.c) sits in front of
 * another device and passes down what it cannot keep.  Each kind is a
 * struct fl_swap (public name, opaque to users) with its ops; the fault path,
 * reclaim and the swap cache (swap.c) see only this interface.
 *
 * Locking: every op may be called from any engine thread with no engine
 * lock held (map lock, page locks, group locks: none).  alloc and free
 * never block for I/O; read and write may block (they run on I/O threads
 * or in reclaim, never with a lock held).  A device serialises its own
 * state.
 */
#ifndef FL_SWAP_DEV_H
#define FL_SWAP_DEV_H

#include <stdatomic.h>
#include <stdint.h>

struct fl_engine;
struct fl_swap;
struct store_req;

#define SWAP_WRITE_PAGES_MAX 64 /* pages one write_pages call takes */

struct swap_dev_ops {
	/*
	 * Reserve n consecutive slots (n >= 1), the first in *slot; a device
	 * may reserve fewer when it cannot find n together: returns how many
	 * (>= 1), or -1 with ENOSPC when it has no slot at all.
	 */
	int (*alloc)(struct fl_swap *dev, unsigned n, uint64_t *slot);
	/*
	 * Write n pages from buf (n * page size bytes) to slots [slot,
	 * slot + n), all reserved by alloc.  0, or -1 with errno (EIO...):
	 * the slots stay reserved and hold nothing valid.
	 */
	int (*write)(struct fl_swap *dev, uint64_t slot, const void *buf,
		     unsigned n);
	/*
	 * Optional (NULL: none): write n pages (n <= SWAP_WRITE_PAGES_MAX),
	 * page k from bufs[k] (page-aligned) to slot slots[k] (reserved by
	 * alloc; consecutive slots may go in one request), the writes in
	 * flight at once, and wait for all of them.  ok[k] says which were
	 * written; a page that was not holds nothing valid in its slot (the
	 * caller may try write for it).  0, or -1 with errno if it wrote
	 * nothing and the caller should use write (EOPNOTSUPP, ENOMEM...).
	 */
	int (*write_pages)(struct fl_swap *dev, const uint64_t *slots,
			   const void *const *bufs, unsigned n,
			   unsigned char *ok);
	/* Read n pages of slots [slot, slot + n) into buf.  0 or -1. */
	int (*read)(struct fl_swap *dev, uint64_t slot, void *buf, unsigned n);
	/*
	 * Optional (NULL: none): start that read without waiting, through
	 * the engine's asynchronous path (aio_submit_io): req->e and
	 * req->complete are the caller's, the device fills in req->io (buf
	 * page-aligned), and complete runs later on a handler thread, with
	 * req->result the bytes read or a negative errno.  0, or -1 with
	 * errno if nothing was started (the caller uses read).  Never
	 * blocks: a handler thread calls it.
	 */
	int (*read_submit)(struct fl_swap *dev, uint64_t slot, void *buf,
			   unsigned n, struct store_req *req);
	/* Release n slots from slot (written or not). */
	void (*free)(struct fl_swap *dev, uint64_t slot, unsigned n);
	/* Release everything; every slot has been freed before. */
	void (*destroy)(struct fl_swap *dev);
};

struct fl_swap {
	const struct swap_dev_ops *ops;
	struct fl_engine *engine;
	const char *kind;  /* "file", "store", "compressed" */
	uint64_t nr_slots; /* capacity */
	_Atomic uint64_t slots_used;
	_Atomic uint64_t pages_written, pages_read;
	_Atomic uint64_t bytes_stored; /* what the slots in use occupy */
	_Atomic uint64_t write_errors, read_errors;
	unsigned id; /* the engine's number for it (swap entries name it) */
};

/*
 * Hand a new device to its engine (swap.c), which then owns it: destroyed
 * by fl_engine_destroy, or here at once if the engine has no room for
 * another (then -1 with ENOSPC).  Sets dev->engine and dev->id.
 */
int swap_dev_register(struct fl_engine *e, struct fl_swap *dev);

#endif /* FL_SWAP_DEV_H */
