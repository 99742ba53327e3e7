/* SPDX-License-Identifier: MIT */
/*
 * Swap-out writes in flight at once: the swap file's pages written by
 * Linux native AIO (io_submit) on an O_DIRECT descriptor, one request per
 * run of consecutive slots, all submitted together and waited for
 * together.  A swap-out batch's slots are scattered once swap-ins have
 * freed slots at random; written one after the other, each would wait for
 * the disk in turn.  No library is needed (the system calls are made
 * directly), so every build has it; where the kernel or the file system
 * refuses (no O_DIRECT, no AIO), the device writes page runs one at a
 * time as before.
 *
 * Locking: any thread may write at once; each write takes an AIO context
 * of its own from a pool (made on demand, kept until destroy), so that
 * one thread never reaps another's completions.  The pool's lock is held
 * only to take and give back a context, never across I/O.
 */
#ifndef FL_SWAP_AIO_H
#define FL_SWAP_AIO_H

#include <stdint.h>

struct swap_aio;

/* A writer over fd (O_DIRECT; the writer owns it and closes it at
 * destroy).  NULL with errno if AIO cannot be had (fd is closed). */
struct swap_aio *swap_aio_new(int fd);
/* After every write has returned. */
void swap_aio_destroy(struct swap_aio *a);

/*
 * Write n pages (n <= SWAP_WRITE_PAGES_MAX), page k from bufs[k]
 * (page-aligned) at offset slots[k] pages, and wait for every write.
 * ok[k] says which were written.  Returns 0, or -1 with errno if nothing
 * was started (no context to be had): the caller writes another way.
 */
int swap_aio_write(struct swap_aio *a, const uint64_t *slots,
		   const void *const *bufs, unsigned n, unsigned char *ok);

#endif /* FL_SWAP_AIO_H */
