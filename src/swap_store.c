/* SPDX-License-Identifier: MIT */
/*
 * A swap device over a store: slot n is the page at offset n * page size of
 * any struct fl_store (a file, a remote store, the faulty store in tests).
 * Slots are handed out from a bitmap, a run of consecutive free slots where
 * possible, searching on from where the last search ended (next-fit), so
 * that pages swapped out together sit together and can be read together.
 * The swap file is this device over a file store of a file the call
 * creates (or truncates): sparse, grown by the writes themselves, read and
 * written with O_DIRECT where the file system allows it.
 *
 * The swap file also writes swap-out batches with several writes in flight
 * (swap_aio.c, over a descriptor of its own), where the file system allows
 * O_DIRECT.
 *
 * Locking: the bitmap is under the device's mutex, held only to search and
 * flip bits (alloc, free); reads and writes go to the store without it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aio.h"
#include "faultline.h"
#include "pagesize.h"
#include "swap_aio.h"
#include "swap_dev.h"

struct swap_store {
	struct fl_swap dev; /* first: the ops see a struct fl_swap */
	struct fl_store *store;
	int truncate_fd;      /* the swap file, emptied at destroy; or -1 */
	struct swap_aio *aio; /* the swap file's batched writes, or NULL */
	pthread_mutex_t lock;
	uint64_t *bitmap; /* a set bit: the slot is reserved */
	uint64_t hint;	  /* where the next search starts */
};

static struct swap_store *to_store(struct fl_swap *dev)
{
	return (struct swap_store *)dev;
}

static int slot_used(const uint64_t *bitmap, uint64_t slot)
{
	return (bitmap[slot / 64] >> (slot % 64)) & 1;
}

static void slots_mark(uint64_t *bitmap, uint64_t slot, unsigned n, int used)
{
	for (uint64_t s = slot; s < slot + n; s++) {
		if (used)
			bitmap[s / 64] |= 1ull << (s % 64);
		else
			bitmap[s / 64] &= ~(1ull << (s % 64));
	}
}

/* The first free slot in [from, end), or end if none; whole words of used
 * slots are stepped over at once.  Under the lock. */
static uint64_t next_free(const uint64_t *bitmap, uint64_t from, uint64_t end)
{
	uint64_t s = from;

	while (s < end) {
		if (s % 64 == 0 && bitmap[s / 64] == UINT64_MAX) {
			s += 64;
			continue;
		}
		if (!slot_used(bitmap, s))
			return s;
		s++;
	}
	return end;
}

/*
 * Next-fit: from the hint to the end, then from the start to the hint, the
 * first free run of n slots; failing that, the longest run seen (at least
 * one slot, if any is free).  Returns its length.  Under the lock.
 */
static unsigned find_run(struct swap_store *d, unsigned n, uint64_t *slot)
{
	uint64_t nr = d->dev.nr_slots, hint = d->hint < nr ? d->hint : 0;
	uint64_t best = 0;
	unsigned best_len = 0;

	for (int pass = 0; pass < 2; pass++) {
		uint64_t s = pass ? 0 : hint, end = pass ? hint : nr;

		while (s < end) {
			uint64_t start = next_free(d->bitmap, s, end);
			unsigned len = 0;

			if (start >= end)
				break;
			while (start + len < nr && len < n &&
			       !slot_used(d->bitmap, start + len))
				len++;
			if (len > best_len) {
				best = start;
				best_len = len;
			}
			if (len == n)
				goto out;
			s = start + len; /* used, or the end */
		}
	}
out:
	*slot = best;
	return best_len;
}

static int store_alloc(struct fl_swap *dev, unsigned n, uint64_t *slot)
{
	struct swap_store *d = to_store(dev);
	unsigned got;

	if (n == 0) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&d->lock);
	got = atomic_load(&dev->slots_used) < dev->nr_slots
		      ? find_run(d, n, slot)
		      : 0;
	if (got) {
		slots_mark(d->bitmap, *slot, got, 1);
		d->hint = *slot + got;
		atomic_fetch_add(&dev->slots_used, got);
		/* A slot of this device takes a page of the store. */
		atomic_fetch_add(&dev->bytes_stored,
				 (uint64_t)got << PAGE_SHIFT);
	}
	pthread_mutex_unlock(&d->lock);
	if (!got) {
		errno = ENOSPC;
		return -1;
	}
	return (int)got;
}

static void store_free(struct fl_swap *dev, uint64_t slot, unsigned n)
{
	struct swap_store *d = to_store(dev);
	unsigned freed = 0;

	pthread_mutex_lock(&d->lock);
	for (uint64_t s = slot; s < slot + n && s < dev->nr_slots; s++) {
		if (!slot_used(d->bitmap, s))
			continue; /* a double free would be a bug: ignore it */
		slots_mark(d->bitmap, s, 1, 0);
		freed++;
	}
	pthread_mutex_unlock(&d->lock);
	atomic_fetch_sub(&dev->slots_used, freed);
	atomic_fetch_sub(&dev->bytes_stored, (uint64_t)freed << PAGE_SHIFT);
}

/* Whole transfers: a store may move fewer bytes than asked. */
static int store_io(struct swap_store *d, int write, void *buf, size_t len,
		    uint64_t off)
{
	while (len) {
		ssize_t n =
			write ? d->store->ops->write(d->store, buf, len, off)
			      : d->store->ops->read(d->store, buf, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || (size_t)n > len) {
			if (n >= 0)
				errno = EIO;
			return -1;
		}
		buf = (char *)buf + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int store_write(struct fl_swap *dev, uint64_t slot, const void *buf,
		       unsigned n)
{
	struct swap_store *d = to_store(dev);

	if (store_io(d, 1, (void *)buf, (size_t)n << PAGE_SHIFT,
		     slot << PAGE_SHIFT)) {
		atomic_fetch_add(&dev->write_errors, 1);
		return -1;
	}
	atomic_fetch_add(&dev->pages_written, n);
	return 0;
}

static int store_write_pages(struct fl_swap *dev, const uint64_t *slots,
			     const void *const *bufs, unsigned n,
			     unsigned char *ok)
{
	struct swap_store *d = to_store(dev);
	unsigned written = 0;

	if (!d->aio) {
		errno = EOPNOTSUPP;
		return -1;
	}
	if (swap_aio_write(d->aio, slots, bufs, n, ok))
		return -1;
	for (unsigned k = 0; k < n; k++)
		written += ok[k];
	atomic_fetch_add(&dev->pages_written, written);
	return 0;
}

static int store_read(struct fl_swap *dev, uint64_t slot, void *buf, unsigned n)
{
	struct swap_store *d = to_store(dev);

	if (store_io(d, 0, buf, (size_t)n << PAGE_SHIFT, slot << PAGE_SHIFT)) {
		atomic_fetch_add(&dev->read_errors, 1);
		return -1;
	}
	atomic_fetch_add(&dev->pages_read, n);
	return 0;
}

/* The store's asynchronous path (the file store's io_uring), if it has
 * one; the caller counts what the completion says. */
static int store_read_submit(struct fl_swap *dev, uint64_t slot, void *buf,
			     unsigned n, struct store_req *req)
{
	struct swap_store *d = to_store(dev);
	int err;

	req->io = (struct fl_store_io){.write = 0,
				       .buf = buf,
				       .len = (size_t)n << PAGE_SHIFT,
				       .off = slot << PAGE_SHIFT,
				       .buf_fd = -1};
	err = aio_submit_io(req, d->store);
	if (err) {
		errno = -err;
		return -1;
	}
	return 0;
}

static void store_destroy(struct fl_swap *dev)
{
	struct swap_store *d = to_store(dev);

	swap_aio_destroy(d->aio);
	if (d->store->ops->cancel)
		d->store->ops->cancel(d->store);
	d->store->ops->destroy(d->store);
	if (d->truncate_fd >= 0) {
		if (ftruncate(d->truncate_fd, 0)) {
			/* nothing more to do: the file keeps its blocks */
		}
		close(d->truncate_fd);
	}
	pthread_mutex_destroy(&d->lock);
	free(d->bitmap);
	free(d);
}

static const struct swap_dev_ops store_ops = {
	.alloc = store_alloc,
	.write = store_write,
	.write_pages = store_write_pages,
	.read = store_read,
	.read_submit = store_read_submit,
	.free = store_free,
	.destroy = store_destroy,
};

/* A device over store (taken over, with truncate_fd and aio: destroyed on
 * failure too). */
static struct fl_swap *swap_store_new(struct fl_engine *e,
				      struct fl_store *store,
				      uint64_t max_bytes, const char *kind,
				      int truncate_fd, struct swap_aio *aio)
{
	uint64_t nr = max_bytes >> PAGE_SHIFT;
	struct swap_store *d = calloc(1, sizeof(*d));

	if (!d || nr == 0 || nr > (UINT64_MAX >> 16) ||
	    !(d->bitmap = calloc((nr + 63) / 64, sizeof(uint64_t)))) {
		int err = d && nr == 0 ? EINVAL : ENOMEM;

		free(d);
		store->ops->destroy(store);
		swap_aio_destroy(aio);
		if (truncate_fd >= 0)
			close(truncate_fd);
		errno = nr == 0 ? EINVAL : err;
		return NULL;
	}
	d->dev.ops = &store_ops;
	d->dev.kind = kind;
	d->dev.nr_slots = nr;
	d->store = store;
	d->truncate_fd = truncate_fd;
	d->aio = aio;
	pthread_mutex_init(&d->lock, NULL);
	if (swap_dev_register(e, &d->dev))
		return NULL; /* destroyed there */
	return &d->dev;
}

fl_swap *fl_swap_store_create(fl_engine *e, struct fl_store *store,
			      uint64_t max_bytes)
{
	if (!store)
		goto inval;
	if (!e || store->read_only || max_bytes < PAGE_SIZE) {
		store->ops->destroy(store);
		goto inval;
	}
	return swap_store_new(e, store, max_bytes, "store", -1, NULL);
inval:
	errno = EINVAL;
	return NULL;
}

fl_swap *fl_swap_file_create(fl_engine *e, const char *path, uint64_t max_bytes)
{
	struct fl_store *store;
	struct swap_aio *aio;
	int fd, direct;

	if (!e || !path || max_bytes < PAGE_SIZE) {
		errno = EINVAL;
		return NULL;
	}
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return NULL;
	store = fl_store_file_open(path, O_RDWR);
	if (!store) {
		int err = errno;

		close(fd);
		errno = err;
		return NULL;
	}
	/* Batched writes, where O_DIRECT and AIO can be had (the store
	 * reads and writes directly then too); without, one run at a time. */
	direct = open(path, O_RDWR | O_DIRECT | O_CLOEXEC);
	aio = direct >= 0 ? swap_aio_new(direct) : NULL;
	return swap_store_new(e, store, max_bytes, "file", fd, aio);
}
