/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous store I/O.  A store read that a fault (or readahead) needs
 * is submitted to the store (fl_store_ops.submit) instead of being handed
 * to an I/O thread that blocks in read; the store completes it later with
 * fl_store_io_complete, or, for the file store, the engine's io_uring
 * does.  Completions are run by the handler threads, which poll the
 * engine's completion eventfd beside the userfaultfd: they check the
 * data, mark the pages up to date (or handle the error) and resume the
 * fault that waited, on the spot.  A store's own thread may run a read's
 * completion itself instead (aio_complete_here: the Redis store's).
 */
#ifndef FL_AIO_H
#define FL_AIO_H

#include <stdint.h>

#include "faultline.h"

struct fl_engine;
struct fl_object;

/*
 * A store read of the locked, inserted pages [index, index + count) of o.
 * finish(arg, err, cancelled) runs once, on a handler thread (or in
 * fl_engine_destroy, with cancelled set: resume nothing), with the pages
 * up to date and unlocked (err 0: at least must_have was read; a batch
 * that failed is retried for must_have alone, the others abandoned as
 * pagecache_read does) or abandoned (err < 0).
 */
struct store_req {
	struct fl_store_io io; /* what the store sees */
	struct fl_engine *e;
	struct fl_object *o; /* with a reference */
	uint64_t index, must_have;
	unsigned long count;
	uint64_t done; /* bytes read so far */
	ssize_t result;
	/* Completed unstarted by aio_unplug (result -EAGAIN): started
	 * again once, from the completion. */
	int unstarted;
	/* A small ring read lands in bounce, not in the engine's view, and
	 * is written into the memfd when it completes (aio.c, "Bounce
	 * buffers"); bounced: every part of the read went that way. */
	void *bounce;
	int bounced;
	void (*finish)(void *arg, int err, int cancelled);
	void *arg;
	struct store_req *next; /* on the engine's completed list */
	/* A write (writeback.c): the pages are written from the object's
	 * memory (cut to its size), and complete runs instead of the read
	 * completion (on a handler thread, or cancelled in teardown: it
	 * must still end the writeback). */
	int write;
	void (*complete)(struct store_req *req, int cancelled);
};

/* Engine life cycle.  aio_init: 0, or -1 with errno (no memory, no
 * eventfd); a ring that cannot be set up is silently left out. */
int aio_init(struct fl_engine *e);
/* After aio_drain: free what aio_init made. */
void aio_destroy(struct fl_engine *e);
/* 1 if the engine reads file stores through its io_uring (tests ask). */
int aio_has_ring(const struct fl_engine *e);
/* The eventfd the handler threads poll, or -1. */
int aio_fd(const struct fl_engine *e);
/* A handler thread: run every completion that is ready.  No lock held. */
void aio_reap(struct fl_engine *e);
/* A polling handler: the same, unless another thread is reaping (it then
 * returns at once: it would only wait for that one). */
void aio_reap_polling(struct fl_engine *e);
/* 1 if the calling thread is running completions of e (reaping them):
 * what would wait for more completions must not run there. */
int aio_reaping(const struct fl_engine *e);
/* 1 if completions may be ready to reap; no system call, no lock (a
 * polling handler asks it between reads of its userfaultfd). */
int aio_ready(const struct fl_engine *e);
/* fl_engine_destroy, once the handler threads are gone: wait for every
 * request in flight and finish it cancelled. */
void aio_drain(struct fl_engine *e);

/*
 * A store's own thread completes io, as fl_store_io_complete does, but
 * runs a read's completion on the spot when it may: the fault that waited
 * is resumed and mapped there, and no handler thread is woken for it
 * (one wake-up less on the way of every read a fault waits for).  Only
 * for a thread of the store's own, holding no lock of the store's or the
 * engine's, that is not the engine's (not inside submit).  Writes, reads
 * of no object, the comparison mode (hold_map_lock_for_io: a resumed
 * fault may then read from the store, and wait for a connection the
 * store's threads hold) and every completion once aio_stop_here has run
 * go to the handler threads as before.
 */
void aio_complete_here(struct fl_store_io *io, ssize_t result);
/* fl_engine_destroy, before it cancels the stores: wait for completions
 * running in aio_complete_here, and queue every later one. */
void aio_stop_here(struct fl_engine *e);

/* Submit req to its object's store; 0, or a negative errno (none started:
 * the caller reads (or writes) synchronously instead). */
int aio_submit(struct store_req *req);
/*
 * Submit a request that belongs to no object (a swap device's read):
 * req->e, req->io and req->complete are the caller's, req->o is NULL;
 * complete(req, cancelled) runs once, on a handler thread (or cancelled
 * in engine teardown), with req->result as the store gave it.  0, or a
 * negative errno (none started).
 */
int aio_submit_io(struct store_req *req, struct fl_store *s);
/*
 * Complete such a request now with result, without any store: a device
 * that has the data in memory (compressed swap) answers at once.  The
 * completion still runs as aio_submit_io's would (queued, on a handler
 * thread: the caller may hold what complete takes), but with no thread
 * between: the handler that submits reaps it at its next look.
 */
void aio_complete_now(struct store_req *req, ssize_t result);
/* The engine's io_uring, for the file store: start reads and writes
 * (io->write) of fd.  Returns how many of ios were started (a prefix: the
 * others were not, and never will be: the caller serves them), -EAGAIN
 * if none could be (the kernel refused the submit), or -EOPNOTSUPP
 * without a ring. */
int aio_ring_rw(struct fl_store_io *const *ios, unsigned n, int fd);
/* Between aio_plug and aio_unplug, this thread's ring reads are queued
 * and submitted together at aio_unplug (nests); the thread must not wait
 * for them meanwhile.  Writes go at once. */
void aio_plug(void);
void aio_unplug(void);

/*
 * Read the locked, inserted pages [index, index + count) of o through the
 * store's submit; finish(arg, err, cancelled) runs when done (see struct
 * store_req).  No lock held.  Returns 0 if started, or a negative errno
 * with nothing started (-EOPNOTSUPP: the store has no asynchronous path
 * now; -ENOMEM): the caller then reads with pagecache_read.
 */
int pagecache_read_start(struct fl_object *o, uint64_t index,
			 unsigned long count, uint64_t must_have,
			 void (*finish)(void *arg, int err, int cancelled),
			 void *arg);
/* What a completion does with the data (aio.c); frees req. */
void pagecache_read_complete(struct store_req *req, int cancelled);
/* pagecache.c: the locked pages were read: up to date, unlocked.
 * via_view: the read mapped them in the engine's view (see
 * object_view_drop). */
void pagecache_mark_uptodate(struct fl_object *o, uint64_t index,
			     unsigned long count, int via_view);

#endif /* FL_AIO_H */
