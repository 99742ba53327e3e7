/* SPDX-License-Identifier: MIT */
/*
 * The compressed store: wraps any store (the inner one, which it owns) and
 * keeps each block of block_size bytes of its data compressed there.
 *
 * Layout in the inner store (little-endian; docs/design.md has it too):
 *
 *   [0, 4096)                    superblock: magic "FLCZ", version, block
 *                                header size, block size, algorithm of new
 *                                blocks, logical size (the rest of the
 *                                first stride is unused)
 *   (i + 1) * stride             block i's slot, stride = block_size + 4096:
 *     16-byte header             magic "FLCB", algorithm (0: raw), original
 *                                length, stored length
 *     stored bytes               compressed (or raw) data, zero-padded to
 *                                a page; the rest of the slot is unused
 *
 * A slot whose header is all zeros (never written, or beyond the inner
 * store's end) is a hole: its block reads as zeros.  A block that would
 * not save at least a page by compression is stored raw, so a slot always
 * has room.  The unused tail of a slot is given back through the inner
 * store's discard op where it has one (the file store punches a hole), so
 * a file holds about the compressed size.  Slots start at multiples of the
 * stride, so that over a store of fixed-size blocks (Redis keys) a
 * block_size one page below that size puts each slot in one of them.
 * The original length is how much of the block the data reached when it
 * was written; bytes beyond it read as zeros.
 *
 * Locking: each block is read and written under a rwlock of a table of
 * STRIPES, chosen by block index (read: shared; write, which may be a
 * read-modify-write of a part of the block: exclusive), so that a block
 * is never read half-written and partial writes of one block never lose
 * each other's bytes.  A call holds one stripe at a time.  meta_lock
 * (inside a stripe, never around one) guards the logical size and the
 * superblock.  Statistics are atomic counters.  The inner store is called
 * with one stripe held (for that block's slot) or meta_lock (for the
 * superblock), never both.
 *
 * No submit op: decompressing is CPU work, which belongs on the engine's
 * I/O threads (where reads of a store without submit run), not in a
 * handler thread.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "faultline.h"
#include "pagesize.h"

#define CZ_DEFAULT_BLOCK (64 * 1024)
#define CZ_MAX_BLOCK	 (16UL << 20)
#define CZ_HDR		 16	     /* a block's header */
#define CZ_SB_MAGIC	 0x5a434c46u /* "FLCZ" */
#define CZ_BLK_MAGIC	 0x42434c46u /* "FLCB" */
#define CZ_VERSION	 1
#define CZ_STRIPES	 64
/* The largest logical size: slots' offsets stay below 2^62. */
#define CZ_MAX_SIZE (1ULL << 60)

struct cz_store {
	struct fl_store base;
	struct fl_store *inner;
	int algorithm, level;
	size_t block_size;
	uint64_t stride; /* block_size + PAGE_SIZE */
	pthread_rwlock_t stripes[CZ_STRIPES];
	pthread_mutex_t meta_lock;
	uint64_t size; /* logical size; under meta_lock */
	_Atomic uint64_t blocks_written, blocks_raw, bytes_in, bytes_out,
		bytes_stored, blocks_read, partial_writes, corrupt_blocks;
};

static const struct fl_store_ops cz_ops;

static struct cz_store *to_cz(struct fl_store *s)
{
	return (struct cz_store *)s;
}

/* ---- encoding ----------------------------------------------------------- */

static void put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void put_le64(unsigned char *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

static uint64_t get_le64(const unsigned char *p)
{
	return get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

struct cz_block_hdr {
	int algorithm;	 /* FL_COMPRESS_NONE: stored raw */
	uint32_t orig;	 /* bytes of the block the data covers */
	uint32_t stored; /* bytes after the header */
};

static void block_hdr_put(unsigned char *p, const struct cz_block_hdr *h)
{
	memset(p, 0, CZ_HDR);
	put_le32(p, CZ_BLK_MAGIC);
	p[4] = (unsigned char)h->algorithm;
	put_le32(p + 8, h->orig);
	put_le32(p + 12, h->stored);
}

/* 1: a block, 0: a hole (all zeros), -EIO: neither (corrupt). */
static int block_hdr_get(const struct cz_store *z, const unsigned char *p,
			 struct cz_block_hdr *h)
{
	static const unsigned char zeros[CZ_HDR];

	if (!memcmp(p, zeros, CZ_HDR))
		return 0;
	h->algorithm = p[4];
	h->orig = get_le32(p + 8);
	h->stored = get_le32(p + 12);
	if (get_le32(p) != CZ_BLK_MAGIC || h->algorithm > FL_COMPRESS_LZ4 ||
	    h->orig > z->block_size || h->stored > z->stride - CZ_HDR ||
	    (h->algorithm == FL_COMPRESS_NONE && h->stored != h->orig))
		return -EIO;
	return 1;
}

/* ---- the inner store ---------------------------------------------------- */

static uint64_t slot_off(const struct cz_store *z, uint64_t idx)
{
	return (idx + 1) * z->stride;
}

/* Read len bytes at off from the inner store; what lies beyond its end
 * reads as zeros.  0 or a negative errno. */
static int inner_read(struct cz_store *z, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = z->inner->ops->read(z->inner, (char *)buf + done,
						len - done, off + done);

		if (r < 0)
			return errno ? -errno : -EIO;
		if (r == 0)
			break;
		if ((size_t)r > len - done)
			return -EIO;
		done += (size_t)r;
	}
	memset((char *)buf + done, 0, len - done);
	return 0;
}

static int inner_write(struct cz_store *z, const void *buf, size_t len,
		       uint64_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r =
			z->inner->ops->write(z->inner, (const char *)buf + done,
					     len - done, off + done);

		if (r < 0)
			return errno ? -errno : -EIO;
		if (r == 0 || (size_t)r > len - done)
			return -EIO;
		done += (size_t)r;
	}
	return 0;
}

/* A page-aligned buffer (the inner store may use O_DIRECT). */
static void *cz_buffer(size_t len)
{
	void *p;

	return posix_memalign(&p, PAGE_SIZE, len) ? NULL : p;
}

/* Called with meta_lock held (or before the store is shared). */
static int superblock_write(struct cz_store *z, uint64_t size)
{
	unsigned char *sb = cz_buffer(PAGE_SIZE);
	int err;

	if (!sb)
		return -ENOMEM;
	memset(sb, 0, PAGE_SIZE);
	put_le32(sb, CZ_SB_MAGIC);
	sb[4] = CZ_VERSION;
	sb[6] = CZ_HDR;
	put_le32(sb + 8, (uint32_t)z->block_size);
	sb[12] = (unsigned char)z->algorithm;
	put_le64(sb + 16, size);
	err = inner_write(z, sb, PAGE_SIZE, 0);
	free(sb);
	return err;
}

/* Read the superblock of a store that has one: its block size into
 * *block_size and its logical size into z->size.  -EBADMSG if there is
 * none (the inner store holds something else). */
static int superblock_read(struct cz_store *z, size_t *block_size)
{
	unsigned char *sb = cz_buffer(PAGE_SIZE);
	uint32_t bs;
	int err;

	if (!sb)
		return -ENOMEM;
	err = inner_read(z, sb, PAGE_SIZE, 0);
	if (!err) {
		bs = get_le32(sb + 8);
		if (get_le32(sb) != CZ_SB_MAGIC || sb[4] != CZ_VERSION ||
		    sb[6] != CZ_HDR || bs < PAGE_SIZE || bs > CZ_MAX_BLOCK ||
		    bs % PAGE_SIZE || get_le64(sb + 16) > CZ_MAX_SIZE)
			err = -EBADMSG;
		*block_size = bs;
		z->size = get_le64(sb + 16);
	}
	free(sb);
	return err;
}

/* ---- one block ---------------------------------------------------------- */

/*
 * Fill blk[0..block_size) with block idx (zeros for a hole), reading its
 * slot into slot[0..stride).  Called with the block's stripe held, shared
 * or exclusive.  0 or a negative errno (-EIO for a corrupt block).
 */
static int block_load(struct cz_store *z, uint64_t idx, unsigned char *blk,
		      unsigned char *slot)
{
	struct cz_block_hdr h;
	ssize_t n;
	int err = inner_read(z, slot, z->stride, slot_off(z, idx));

	if (err)
		return err;
	atomic_fetch_add(&z->blocks_read, 1);
	err = block_hdr_get(z, slot, &h);
	if (err <= 0) {
		if (err == 0)
			memset(blk, 0, z->block_size);
		else
			atomic_fetch_add(&z->corrupt_blocks, 1);
		return err;
	}
	n = codec_decompress(h.algorithm, slot + CZ_HDR, h.stored, blk, h.orig);
	if (n < 0) {
		if (n == -EIO)
			atomic_fetch_add(&z->corrupt_blocks, 1);
		return (int)n;
	}
	memset(blk + h.orig, 0, z->block_size - h.orig);
	return 0;
}

/* Release the unused tail of a slot, where the inner store can. */
static void slot_discard_tail(struct cz_store *z, uint64_t idx, size_t used)
{
	int saved = errno;

	if (z->inner->ops->discard && used < z->stride)
		z->inner->ops->discard(z->inner, slot_off(z, idx) + used,
				       z->stride - used);
	errno = saved; /* advice: a failure changes nothing */
}

/*
 * Write block idx: data[0..orig) compressed (raw if that would not save a
 * page), through slot[0..stride).  Called with the block's stripe held
 * exclusive.  0 or a negative errno.
 */
static int block_store(struct cz_store *z, uint64_t idx,
		       const unsigned char *data, size_t orig,
		       unsigned char *slot)
{
	struct cz_block_hdr h = {z->algorithm, (uint32_t)orig, 0};
	size_t raw_used = page_round_up(CZ_HDR + orig), used;
	ssize_t n = -ENOSPC;
	int err;

	if (h.algorithm != FL_COMPRESS_NONE && raw_used > PAGE_SIZE)
		n = codec_compress(h.algorithm, z->level, data, orig,
				   slot + CZ_HDR,
				   raw_used - PAGE_SIZE - CZ_HDR);
	if (n == -ENOSPC) {
		h.algorithm = FL_COMPRESS_NONE;
		memcpy(slot + CZ_HDR, data, orig);
		n = (ssize_t)orig;
	} else if (n < 0) {
		return (int)n;
	}
	h.stored = (uint32_t)n;
	block_hdr_put(slot, &h);
	used = page_round_up(CZ_HDR + h.stored);
	memset(slot + CZ_HDR + h.stored, 0, used - CZ_HDR - h.stored);
	err = inner_write(z, slot, used, slot_off(z, idx));
	if (err)
		return err;
	slot_discard_tail(z, idx, used);
	atomic_fetch_add(&z->blocks_written, 1);
	if (h.algorithm == FL_COMPRESS_NONE)
		atomic_fetch_add(&z->blocks_raw, 1);
	atomic_fetch_add(&z->bytes_in, orig);
	atomic_fetch_add(&z->bytes_out, CZ_HDR + h.stored);
	atomic_fetch_add(&z->bytes_stored, used);
	return 0;
}

static pthread_rwlock_t *stripe(struct cz_store *z, uint64_t idx)
{
	return &z->stripes[idx % CZ_STRIPES];
}

static uint64_t cz_size_now(struct cz_store *z)
{
	uint64_t size;

	pthread_mutex_lock(&z->meta_lock);
	size = z->size;
	pthread_mutex_unlock(&z->meta_lock);
	return size;
}

/* ---- the store's operations --------------------------------------------- */

static ssize_t cz_fail(int err)
{
	errno = -err;
	return -1;
}

static ssize_t cz_read(struct fl_store *s, void *buf, size_t len, uint64_t off)
{
	struct cz_store *z = to_cz(s);
	uint64_t size = cz_size_now(z), end, pos;
	size_t bs = z->block_size;
	unsigned char *slot, *blk;
	int err = 0;

	if (off >= size || !len)
		return 0;
	end = off + (len < size - off ? len : size - off);
	slot = cz_buffer(z->stride);
	blk = malloc(bs);
	if (!slot || !blk)
		err = -ENOMEM;
	for (pos = off; pos < end && !err;) {
		uint64_t idx = pos / bs, start = idx * bs;
		size_t from = pos - start;
		size_t to = end - start < bs ? end - start : bs;
		unsigned char *dst = (unsigned char *)buf + (pos - off);

		pthread_rwlock_rdlock(stripe(z, idx));
		if (from == 0 && to == bs) /* the whole block: no copy */
			err = block_load(z, idx, dst, slot);
		else if (!(err = block_load(z, idx, blk, slot)))
			memcpy(dst, blk + from, to - from);
		pthread_rwlock_unlock(stripe(z, idx));
		pos = start + to;
	}
	free(slot);
	free(blk);
	return err ? cz_fail(err) : (ssize_t)(end - off);
}

/*
 * Write src to bytes [from, to) of block idx, for a write that ends at
 * write_end: copied whole if it covers the block's data, else read,
 * merged and written back.  Called with the block's stripe held
 * exclusive.  0 or a negative errno.
 *
 * Never compressed straight from src: src is the engine's page cache,
 * and a page that writeback cleaned may be stored to again while it is
 * written (the engine lets the store go on, as the kernel does without
 * stable pages; the page is dirty again and written later).  A compressor
 * reads its input more than once (a match is found in one reading, its
 * literals taken in another), and a frame made from changing input can
 * decode to bytes never written, in the block's other, unchanged pages
 * too: pages that are clean and will not be written again.  Compressed
 * from a copy, only the changing page can be torn, and it is rewritten.
 */
static int block_write(struct cz_store *z, uint64_t idx, size_t from, size_t to,
		       const unsigned char *src, uint64_t write_end,
		       unsigned char *slot, unsigned char *blk)
{
	uint64_t start = idx * z->block_size, end = cz_size_now(z);
	size_t orig;
	int err;

	if (end < write_end)
		end = write_end;
	orig = end - start < z->block_size ? end - start : z->block_size;
	if (from == 0 && to >= orig) {
		memcpy(blk, src, orig);
		return block_store(z, idx, blk, orig, slot);
	}
	err = block_load(z, idx, blk, slot);
	if (err)
		return err;
	atomic_fetch_add(&z->partial_writes, 1);
	memcpy(blk + from, src, to - from);
	return block_store(z, idx, blk, orig, slot);
}

/* A write that ends past the logical size extends it (and the
 * superblock says so) before it writes any block: if the blocks then
 * fail, the new range reads as zeros. */
static int size_extend(struct cz_store *z, uint64_t end)
{
	int err = 0;

	pthread_mutex_lock(&z->meta_lock);
	if (end > z->size) {
		err = superblock_write(z, end);
		if (!err)
			z->size = end;
	}
	pthread_mutex_unlock(&z->meta_lock);
	return err;
}

static ssize_t cz_write(struct fl_store *s, const void *buf, size_t len,
			uint64_t off)
{
	struct cz_store *z = to_cz(s);
	size_t bs = z->block_size;
	unsigned char *slot, *blk;
	uint64_t end, pos;
	int err = 0;

	if (!len)
		return 0;
	if (off > CZ_MAX_SIZE || len > CZ_MAX_SIZE - off)
		return cz_fail(-EFBIG);
	end = off + len;
	/* The size first: a block's original length, read from the size
	 * under its stripe, then never shrinks below what an earlier
	 * (extending) write of the block stored. */
	err = size_extend(z, end);
	slot = cz_buffer(z->stride);
	blk = malloc(bs);
	if (!err && (!slot || !blk))
		err = -ENOMEM;
	for (pos = off; pos < end && !err;) {
		uint64_t idx = pos / bs, start = idx * bs;
		size_t from = pos - start;
		size_t to = end - start < bs ? end - start : bs;

		pthread_rwlock_wrlock(stripe(z, idx));
		err = block_write(z, idx, from, to,
				  (const unsigned char *)buf + (pos - off), end,
				  slot, blk);
		pthread_rwlock_unlock(stripe(z, idx));
		pos = start + to;
	}
	free(slot);
	free(blk);
	return err ? cz_fail(err) : (ssize_t)len;
}

static int64_t cz_size(struct fl_store *s)
{
	return (int64_t)cz_size_now(to_cz(s));
}

static int cz_flush(struct fl_store *s)
{
	struct fl_store *in = to_cz(s)->inner;

	return in->ops->flush ? in->ops->flush(in) : 0;
}

static void cz_cancel(struct fl_store *s)
{
	struct fl_store *in = to_cz(s)->inner;

	if (in->ops->cancel)
		in->ops->cancel(in);
}

static void cz_free(struct cz_store *z, unsigned stripes)
{
	for (unsigned i = 0; i < stripes; i++)
		pthread_rwlock_destroy(&z->stripes[i]);
	pthread_mutex_destroy(&z->meta_lock);
	free(z);
}

static void cz_destroy(struct fl_store *s)
{
	struct cz_store *z = to_cz(s);

	z->inner->ops->destroy(z->inner);
	cz_free(z, CZ_STRIPES);
}

static const struct fl_store_ops cz_ops = {
	.read = cz_read,
	.write = cz_write,
	.size = cz_size,
	.flush = cz_flush,
	.destroy = cz_destroy,
	.cancel = cz_cancel,
};

/* ---- making one --------------------------------------------------------- */

static struct cz_store *cz_alloc(void)
{
	struct cz_store *z = calloc(1, sizeof(*z));
	unsigned i;

	if (!z)
		return NULL;
	if (pthread_mutex_init(&z->meta_lock, NULL)) {
		free(z);
		errno = ENOMEM;
		return NULL;
	}
	for (i = 0; i < CZ_STRIPES; i++)
		if (pthread_rwlock_init(&z->stripes[i], NULL))
			break;
	if (i < CZ_STRIPES) {
		cz_free(z, i);
		errno = ENOMEM;
		return NULL;
	}
	return z;
}

/* Format an empty inner store, or read the layout of one that holds a
 * compressed store.  0 or a negative errno. */
static int cz_open_layout(struct cz_store *z, size_t block_size)
{
	int64_t isize = z->inner->ops->size(z->inner);
	size_t stored_bs;
	int err;

	if (isize < 0)
		return errno ? -errno : -EIO;
	if (isize == 0) {
		z->block_size = block_size ? block_size : CZ_DEFAULT_BLOCK;
		z->size = 0;
		/* Fix the format now, where the inner store can be written. */
		return z->base.read_only ? 0 : superblock_write(z, 0);
	}
	err = superblock_read(z, &stored_bs);
	if (err)
		return err;
	if (block_size && block_size != stored_bs)
		return -EINVAL;
	z->block_size = stored_bs;
	return 0;
}

struct fl_store *fl_store_compressed(struct fl_store *inner, int algorithm,
				     int level, size_t block_size)
{
	struct cz_store *z;
	int err;

	if (!inner || !inner->ops || !inner->ops->read || !inner->ops->size ||
	    !inner->ops->destroy || block_size % PAGE_SIZE ||
	    block_size > CZ_MAX_BLOCK) {
		errno = EINVAL;
		return NULL;
	}
	err = codec_check(algorithm, level);
	if (err) {
		errno = -err;
		return NULL;
	}
	z = cz_alloc();
	if (!z)
		return NULL;
	z->base.ops = &cz_ops;
	z->base.read_only = inner->read_only || !inner->ops->write;
	z->inner = inner;
	z->algorithm = algorithm;
	z->level = level;
	err = cz_open_layout(z, block_size);
	if (err) {
		cz_free(z, CZ_STRIPES);
		errno = -err;
		return NULL;
	}
	z->stride = z->block_size + PAGE_SIZE;
	return &z->base;
}

int fl_store_compressed_stats(struct fl_store *store,
			      struct fl_compressed_stats *st)
{
	struct cz_store *z;

	if (!store || store->ops != &cz_ops || !st) {
		errno = EINVAL;
		return -1;
	}
	z = to_cz(store);
	memset(st, 0, sizeof(*st));
	st->block_size = z->block_size;
	st->size = cz_size_now(z);
	st->blocks_written = atomic_load(&z->blocks_written);
	st->blocks_raw = atomic_load(&z->blocks_raw);
	st->bytes_in = atomic_load(&z->bytes_in);
	st->bytes_out = atomic_load(&z->bytes_out);
	st->bytes_stored = atomic_load(&z->bytes_stored);
	st->blocks_read = atomic_load(&z->blocks_read);
	st->partial_writes = atomic_load(&z->partial_writes);
	st->corrupt_blocks = atomic_load(&z->corrupt_blocks);
	return 0;
}
