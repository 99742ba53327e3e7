/* SPDX-License-Identifier: MIT */
/*
 * Compressed swap memory: see swap_zpool.h.
 *
 * Each page kept in the pool is one heap allocation (struct zentry: the
 * compressed length and bytes), found by slot in a radix tree.
 *
 * Locking: tree_lock (a mutex) guards the tree, the pool's byte count and
 * the own-slot bitmap; it is held for lookups and updates only, never
 * while compressing or calling the next device.  A stripe mutex, chosen by
 * slot, is held around everything that uses or retires one slot's entry
 * (read: lookup and decompress; write: replace; free: delete), so that an
 * entry is never freed while a reader decompresses it.  Order: stripe,
 * then tree_lock; one stripe at a time.  The next device is called with
 * no lock held.  Counters are atomic.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "aio.h"
#include "codec.h"
#include "faultline.h"
#include "pagesize.h"
#include "radix.h"
#include "swap_zpool.h"

/* A page is kept only if it compresses to at most this. */
#define ZPOOL_MAX_STORED (PAGE_SIZE - PAGE_SIZE / 8)
/* Without a next device: one slot per this many bytes of pool. */
#define ZPOOL_BYTES_PER_SLOT 64
#define ZPOOL_MAX_OWN_SLOTS  (1ULL << 26)
#define ZPOOL_STRIPES	     64

struct zentry {
	uint32_t len;
	unsigned char data[];
};

struct zpool {
	struct fl_swap dev;
	struct fl_swap *next;
	int algorithm, level;
	uint64_t pool_max;
	pthread_mutex_t stripes[ZPOOL_STRIPES];
	pthread_mutex_t tree_lock;
	struct radix tree;	   /* slot -> struct zentry */
	uint64_t pool_used;	   /* under tree_lock */
	uint64_t compressed_bytes; /* under tree_lock */
	unsigned long *own_map;	   /* without next: reserved slots */
	uint64_t own_hint;	   /* where the next search starts */
	_Atomic uint64_t stored, loaded, rejected_full, rejected_poor,
		written_next, read_next;
};

static const struct swap_dev_ops zpool_ops;

static struct zpool *to_zpool(struct fl_swap *d)
{
	return (struct zpool *)d;
}

static pthread_mutex_t *stripe(struct zpool *z, uint64_t slot)
{
	return &z->stripes[slot % ZPOOL_STRIPES];
}

static uint64_t entry_bytes(struct zentry *e)
{
	return malloc_usable_size(e);
}

/* ---- own slots (no next device) ------------------------------------------ */

#define BITS (8 * sizeof(unsigned long))

static int own_test(const struct zpool *z, uint64_t i)
{
	return (z->own_map[i / BITS] >> (i % BITS)) & 1;
}

static void own_set(struct zpool *z, uint64_t i, int on)
{
	if (on)
		z->own_map[i / BITS] |= 1UL << (i % BITS);
	else
		z->own_map[i / BITS] &= ~(1UL << (i % BITS));
}

/* Called with tree_lock held: the first free slot at or after from (and
 * below end), or end. */
static uint64_t own_find_free(const struct zpool *z, uint64_t from,
			      uint64_t end)
{
	while (from < end) {
		if (from % BITS == 0 && z->own_map[from / BITS] == ~0UL)
			from += BITS;
		else if (own_test(z, from))
			from++;
		else
			return from;
	}
	return end;
}

/* Called with tree_lock held: reserve up to n free slots together, the
 * first in *slot; how many, or -ENOSPC. */
static int own_alloc(struct zpool *z, unsigned n, uint64_t *slot)
{
	uint64_t nr = z->dev.nr_slots, first;
	unsigned got = 0;

	first = own_find_free(z, z->own_hint, nr);
	if (first == nr) {
		first = own_find_free(z, 0, z->own_hint);
		if (first == z->own_hint)
			return -ENOSPC;
	}
	while (got < n && first + got < nr && !own_test(z, first + got)) {
		own_set(z, first + got, 1);
		got++;
	}
	z->own_hint = first + got;
	*slot = first;
	return (int)got;
}

/* ---- the pool -------------------------------------------------------------
 */

/* Called with slot's stripe held: remove its entry (if any) and give its
 * bytes back.  Returns the entry for the caller to free. */
static struct zentry *pool_take(struct zpool *z, uint64_t slot)
{
	struct zentry *e;

	pthread_mutex_lock(&z->tree_lock);
	e = radix_delete(&z->tree, slot);
	if (e) {
		z->pool_used -= entry_bytes(e);
		z->compressed_bytes -= e->len;
		atomic_fetch_sub(&z->dev.bytes_stored, entry_bytes(e));
	}
	pthread_mutex_unlock(&z->tree_lock);
	return e;
}

/*
 * Keep the page at slot compressed in the pool, replacing what the slot
 * held there.  1 if kept; 0 if it goes on to the next device (it does not
 * compress, the pool is full, no memory), any old entry then removed.
 */
static int pool_store(struct zpool *z, uint64_t slot, const void *page)
{
	unsigned char out[ZPOOL_MAX_STORED];
	struct zentry *e = NULL, *old;
	uint64_t bytes = 0;
	ssize_t n = -ENOMEM; /* counted as "full" */
	int kept = 0;

	/* A full pool: not worth compressing (a racy look is enough). */
	if (atomic_load(&z->dev.bytes_stored) + ZPOOL_BYTES_PER_SLOT <=
	    z->pool_max)
		n = codec_compress(z->algorithm, z->level, page, PAGE_SIZE, out,
				   sizeof(out));
	if (n > 0)
		e = malloc(sizeof(*e) + (size_t)n);
	if (e) {
		e->len = (uint32_t)n;
		memcpy(e->data, out, (size_t)n);
		bytes = entry_bytes(e);
	}
	pthread_mutex_lock(stripe(z, slot));
	old = pool_take(z, slot);
	pthread_mutex_lock(&z->tree_lock);
	if (e && z->pool_used + bytes <= z->pool_max &&
	    radix_insert(&z->tree, slot, e) == 0) {
		z->pool_used += bytes;
		z->compressed_bytes += e->len;
		atomic_fetch_add(&z->dev.bytes_stored, bytes);
		kept = 1;
	}
	pthread_mutex_unlock(&z->tree_lock);
	pthread_mutex_unlock(stripe(z, slot));
	free(old);
	if (kept) {
		atomic_fetch_add(&z->stored, 1);
		return 1;
	}
	free(e);
	if (n > 0 || n == -ENOMEM)
		atomic_fetch_add(&z->rejected_full, 1);
	else
		atomic_fetch_add(&z->rejected_poor, 1);
	return 0;
}

/* Read slot's page from the pool into page: 1 if it was there, 0 if not,
 * or -EIO if it would not decompress. */
static int pool_load(struct zpool *z, uint64_t slot, void *page)
{
	struct zentry *e;
	ssize_t n = 0;

	pthread_mutex_lock(stripe(z, slot));
	pthread_mutex_lock(&z->tree_lock);
	e = radix_lookup(&z->tree, slot);
	pthread_mutex_unlock(&z->tree_lock);
	if (e)
		n = codec_decompress(z->algorithm, e->data, e->len, page,
				     PAGE_SIZE);
	pthread_mutex_unlock(stripe(z, slot));
	if (!e)
		return 0;
	if (n != (ssize_t)PAGE_SIZE)
		return -EIO;
	atomic_fetch_add(&z->loaded, 1);
	return 1;
}

/* Is slot's page in the pool? */
static int pool_has(struct zpool *z, uint64_t slot)
{
	int has;

	pthread_mutex_lock(&z->tree_lock);
	has = radix_lookup(&z->tree, slot) != NULL;
	pthread_mutex_unlock(&z->tree_lock);
	return has;
}

/* ---- the device's operations ----------------------------------------------
 */

static int zpool_fail(int err)
{
	errno = err;
	return -1;
}

static int zpool_alloc(struct fl_swap *d, unsigned n, uint64_t *slot)
{
	struct zpool *z = to_zpool(d);
	int got;

	if (!n)
		return zpool_fail(EINVAL);
	if (z->next) {
		got = z->next->ops->alloc(z->next, n, slot);
		if (got < 0)
			return -1;
	} else {
		pthread_mutex_lock(&z->tree_lock);
		/* A full pool with nowhere to send pages has no slot. */
		got = z->pool_used + ZPOOL_BYTES_PER_SLOT > z->pool_max
			      ? -ENOSPC
			      : own_alloc(z, n, slot);
		pthread_mutex_unlock(&z->tree_lock);
		if (got < 0)
			return zpool_fail(-got);
	}
	atomic_fetch_add(&d->slots_used, (uint64_t)got);
	return got;
}

/* Slots [slot, slot + n) are in range (next's, which may grow, or ours). */
static int zpool_range_ok(struct zpool *z, uint64_t slot, unsigned n)
{
	uint64_t nr = z->next ? z->next->nr_slots : z->dev.nr_slots;

	return n && slot < nr && n <= nr - slot;
}

/* Send pages [i, j) of a write on to the next device.  0 or -errno. */
static int zpool_write_next(struct zpool *z, uint64_t slot, const char *buf,
			    unsigned i, unsigned j)
{
	if (!z->next)
		return -ENOSPC;
	if (z->next->ops->write(z->next, slot + i, buf + (size_t)i * PAGE_SIZE,
				j - i))
		return errno ? -errno : -EIO;
	atomic_fetch_add(&z->written_next, j - i);
	return 0;
}

/*
 * Each page is kept in the pool if it compresses and fits; runs of pages
 * that are not go to the next device in one write each.  On failure no
 * page of the call stays in the pool (the slots hold nothing valid).
 */
static int zpool_write(struct fl_swap *d, uint64_t slot, const void *buf,
		       unsigned n)
{
	struct zpool *z = to_zpool(d);
	const char *p = buf;
	unsigned i = 0, j;
	int err = 0;

	if (!zpool_range_ok(z, slot, n))
		return zpool_fail(EINVAL);
	while (i < n && !err) {
		if (pool_store(z, slot + i, p + (size_t)i * PAGE_SIZE)) {
			i++;
			continue;
		}
		for (j = i + 1; j < n; j++)
			if (pool_store(z, slot + j, p + (size_t)j * PAGE_SIZE))
				break;
		err = zpool_write_next(z, slot, p, i, j);
		i = j + 1; /* j, if below n, was kept */
	}
	if (err) {
		for (i = 0; i < n; i++) {
			pthread_mutex_lock(stripe(z, slot + i));
			free(pool_take(z, slot + i));
			pthread_mutex_unlock(stripe(z, slot + i));
		}
		atomic_fetch_add(&d->write_errors, 1);
		return zpool_fail(-err);
	}
	atomic_fetch_add(&d->pages_written, n);
	return 0;
}

/*
 * Each page is kept in the pool if it compresses and fits; the others go
 * to the next device together, in flight at once (next's write_pages).
 * A page that went nowhere (ok 0) holds nothing valid and is not in the
 * pool (the caller's write for it counts the error, if it fails again). Without
 * a next device that can, -1 with EOPNOTSUPP: the caller uses write.
 */
static int zpool_write_pages(struct fl_swap *d, const uint64_t *slots,
			     const void *const *bufs, unsigned n,
			     unsigned char *ok)
{
	struct zpool *z = to_zpool(d);
	uint64_t next_slots[SWAP_WRITE_PAGES_MAX];
	const void *next_bufs[SWAP_WRITE_PAGES_MAX];
	unsigned char next_ok[SWAP_WRITE_PAGES_MAX];
	unsigned idx[SWAP_WRITE_PAGES_MAX], nr = 0, written = 0;

	if (!z->next || !z->next->ops->write_pages || n > SWAP_WRITE_PAGES_MAX)
		return zpool_fail(EOPNOTSUPP);
	for (unsigned k = 0; k < n; k++) {
		ok[k] = zpool_range_ok(z, slots[k], 1) &&
			pool_store(z, slots[k], bufs[k]);
		if (ok[k] || !zpool_range_ok(z, slots[k], 1))
			continue;
		idx[nr] = k;
		next_slots[nr] = slots[k];
		next_bufs[nr++] = bufs[k];
	}
	if (nr && z->next->ops->write_pages(z->next, next_slots, next_bufs, nr,
					    next_ok))
		memset(next_ok, 0, nr);
	for (unsigned k = 0; k < nr; k++) {
		ok[idx[k]] = next_ok[k];
		atomic_fetch_add(&z->written_next, next_ok[k]);
	}
	for (unsigned k = 0; k < n; k++)
		written += ok[k];
	atomic_fetch_add(&d->pages_written, written);
	return 0;
}

/* Read pages [i, j), none in the pool, from the next device. */
static int zpool_read_next(struct zpool *z, uint64_t slot, char *buf,
			   unsigned i, unsigned j)
{
	if (!z->next)
		return -EIO; /* written nowhere: nothing valid */
	if (z->next->ops->read(z->next, slot + i, buf + (size_t)i * PAGE_SIZE,
			       j - i))
		return errno ? -errno : -EIO;
	atomic_fetch_add(&z->read_next, j - i);
	return 0;
}

static int zpool_read(struct fl_swap *d, uint64_t slot, void *buf, unsigned n)
{
	struct zpool *z = to_zpool(d);
	char *p = buf;
	unsigned i = 0, j;
	int err = 0, r;

	if (!zpool_range_ok(z, slot, n))
		return zpool_fail(EINVAL);
	while (i < n && !err) {
		r = pool_load(z, slot + i, p + (size_t)i * PAGE_SIZE);
		if (r) {
			err = r < 0 ? r : 0;
			i++;
			continue;
		}
		for (j = i + 1; j < n && !pool_has(z, slot + j); j++)
			;
		err = zpool_read_next(z, slot, p, i, j);
		i = j;
	}
	if (err) {
		atomic_fetch_add(&d->read_errors, 1);
		return zpool_fail(-err);
	}
	atomic_fetch_add(&d->pages_read, n);
	return 0;
}

/* A read the next device's read_submit started for us (see below). */
struct zpool_next_read {
	struct store_req req;	 /* the next device's request */
	struct store_req *outer; /* ours, completed with its result */
	struct zpool *z;
	unsigned n;
};

/* The next device's read completed (on a handler thread, or cancelled):
 * counted as zpool_read_next counts a read, then ours completes. */
static void zpool_next_read_done(struct store_req *req, int cancelled)
{
	struct zpool_next_read *r = (struct zpool_next_read *)req;
	struct store_req *outer = r->outer;

	if (req->result == (ssize_t)r->n << PAGE_SHIFT) {
		atomic_fetch_add(&r->z->read_next, r->n);
		atomic_fetch_add(&r->z->next->pages_read, r->n);
	}
	outer->result = req->result;
	free(r);
	outer->complete(outer, cancelled);
}

/*
 * The asynchronous read (swap_dev_ops.read_submit), so that a swap-in
 * never waits for an I/O thread: pages all in the pool are decompressed
 * now (CPU work, a few microseconds a page) and the request completes at
 * once (aio_complete_now: on this handler's next look); pages none of
 * which is in the pool are read by the next device's read_submit.  A run
 * of both kinds (swap-in readahead) is left to read, on an I/O thread.
 * Errors are counted by read, which a failed completion falls back to.
 */
static int zpool_read_submit(struct fl_swap *d, uint64_t slot, void *buf,
			     unsigned n, struct store_req *req)
{
	struct zpool *z = to_zpool(d);
	struct zpool_next_read *r;
	unsigned in = 0;

	if (!zpool_range_ok(z, slot, n))
		return zpool_fail(EINVAL);
	for (unsigned i = 0; i < n; i++)
		in += pool_has(z, slot + i);
	if (in == n) {
		ssize_t result = (ssize_t)n << PAGE_SHIFT;

		for (unsigned i = 0; i < n && result > 0; i++)
			if (pool_load(z, slot + i,
				      (char *)buf + (size_t)i * PAGE_SIZE) <= 0)
				result = -EIO;
		aio_complete_now(req, result);
		return 0;
	}
	if (in || !z->next || !z->next->ops->read_submit)
		return zpool_fail(EOPNOTSUPP);
	r = malloc(sizeof(*r));
	if (!r)
		return zpool_fail(ENOMEM);
	*r = (struct zpool_next_read){
		.req = {.e = req->e, .complete = zpool_next_read_done},
		.outer = req,
		.z = z,
		.n = n};
	if (z->next->ops->read_submit(z->next, slot, buf, n, &r->req) == 0)
		return 0; /* r may be completed (freed) by now */
	free(r);
	return -1;
}

static void zpool_free(struct fl_swap *d, uint64_t slot, unsigned n)
{
	struct zpool *z = to_zpool(d);

	if (!zpool_range_ok(z, slot, n))
		return;
	for (unsigned i = 0; i < n; i++) {
		pthread_mutex_lock(stripe(z, slot + i));
		free(pool_take(z, slot + i));
		pthread_mutex_unlock(stripe(z, slot + i));
	}
	if (z->next) {
		z->next->ops->free(z->next, slot, n);
	} else {
		pthread_mutex_lock(&z->tree_lock);
		for (unsigned i = 0; i < n; i++)
			own_set(z, slot + i, 0);
		pthread_mutex_unlock(&z->tree_lock);
	}
	atomic_fetch_sub(&d->slots_used, n);
}

static void zentry_free(void *item, uint64_t index, void *arg)
{
	free(item);
}

static void zpool_release(struct zpool *z, unsigned stripes)
{
	for (unsigned i = 0; i < stripes; i++)
		pthread_mutex_destroy(&z->stripes[i]);
	pthread_mutex_destroy(&z->tree_lock);
	radix_clear(&z->tree, zentry_free, NULL);
	free(z->own_map);
	free(z);
}

/* Every slot has been freed; entries left (none, unless the caller
 * forgot some) are freed anyway.  next is not ours. */
static void zpool_destroy(struct fl_swap *d)
{
	zpool_release(to_zpool(d), ZPOOL_STRIPES);
}

static const struct swap_dev_ops zpool_ops = {
	.alloc = zpool_alloc,
	.write = zpool_write,
	.write_pages = zpool_write_pages,
	.read = zpool_read,
	.read_submit = zpool_read_submit,
	.free = zpool_free,
	.destroy = zpool_destroy,
};

/* ---- making one ------------------------------------------------------------
 */

static struct zpool *zpool_alloc_struct(void)
{
	struct zpool *z = calloc(1, sizeof(*z));
	unsigned i;

	if (!z)
		return NULL;
	if (pthread_mutex_init(&z->tree_lock, NULL)) {
		free(z);
		errno = ENOMEM;
		return NULL;
	}
	for (i = 0; i < ZPOOL_STRIPES; i++)
		if (pthread_mutex_init(&z->stripes[i], NULL))
			break;
	if (i < ZPOOL_STRIPES) {
		zpool_release(z, i);
		errno = ENOMEM;
		return NULL;
	}
	return z;
}

struct fl_swap *swap_zpool_create(struct fl_engine *e, int algorithm, int level,
				  uint64_t pool_bytes, struct fl_swap *next)
{
	struct zpool *z;
	uint64_t nr;
	int err;

	if (algorithm == FL_COMPRESS_NONE || pool_bytes < PAGE_SIZE ||
	    (next && !next->ops)) {
		errno = EINVAL;
		return NULL;
	}
	err = codec_check(algorithm, level);
	if (err) {
		errno = -err;
		return NULL;
	}
	z = zpool_alloc_struct();
	if (!z)
		return NULL;
	if (next) {
		nr = next->nr_slots;
	} else {
		nr = pool_bytes / ZPOOL_BYTES_PER_SLOT;
		if (nr > ZPOOL_MAX_OWN_SLOTS)
			nr = ZPOOL_MAX_OWN_SLOTS;
		z->own_map = calloc((nr + BITS - 1) / BITS, sizeof(long));
		if (!z->own_map) {
			zpool_release(z, ZPOOL_STRIPES);
			errno = ENOMEM;
			return NULL;
		}
	}
	z->dev.ops = &zpool_ops;
	z->dev.engine = e;
	z->dev.kind = "compressed";
	z->dev.nr_slots = nr;
	z->next = next;
	z->algorithm = algorithm;
	z->level = level;
	z->pool_max = pool_bytes;
	return &z->dev;
}

int swap_zpool_stats(struct fl_swap *d, struct swap_zpool_stats *st)
{
	struct zpool *z;

	if (!d || d->ops != &zpool_ops || !st)
		return -EINVAL;
	z = to_zpool(d);
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&z->tree_lock);
	st->pool_used = z->pool_used;
	st->pool_pages = z->tree.count;
	st->compressed_bytes = z->compressed_bytes;
	pthread_mutex_unlock(&z->tree_lock);
	st->pool_max = z->pool_max;
	st->stored = atomic_load(&z->stored);
	st->loaded = atomic_load(&z->loaded);
	st->rejected_full = atomic_load(&z->rejected_full);
	st->rejected_poor = atomic_load(&z->rejected_poor);
	st->written_next = atomic_load(&z->written_next);
	st->read_next = atomic_load(&z->read_next);
	return 0;
}
