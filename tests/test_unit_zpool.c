// SPDX-License-Identifier: MIT
/*
 * Compressed swap memory (src/swap_zpool.c) on its own, no userfaultfd:
 * its swap_dev_ops driven directly, in front of an in-memory "next"
 * device written here (which can fail its reads and writes on demand) or
 * of none.  Round trips, fall-through of incompressible pages and of pages
 * the full pool cannot take, the pool's byte limit, free giving bytes and
 * slots back, errors of next propagating, and threads.
 */
#include "codec.h"
#include "harness.h"
#include "inject.h"
#include "pagesize.h"
#include "swap_zpool.h"

#include <pthread.h>
#include <stdlib.h>

/* ---- an in-memory next device ------------------------------------------ */

struct memdev {
	struct fl_swap dev;
	pthread_mutex_t lock;
	unsigned char *pages;	   /* nr_slots pages */
	unsigned char *used;	   /* reserved slots */
	unsigned char *written;	   /* slots holding a page */
	int fail_write, fail_read; /* errno to fail with (0: none) */
	unsigned long writes, reads, frees;
};

static struct memdev *to_mem(struct fl_swap *d)
{
	return (struct memdev *)d;
}

static int mem_alloc(struct fl_swap *d, unsigned n, uint64_t *slot)
{
	struct memdev *m = to_mem(d);
	int got = 0;

	pthread_mutex_lock(&m->lock);
	for (uint64_t s = 0; s < d->nr_slots; s++) {
		if (m->used[s])
			continue;
		*slot = s;
		while (got < (int)n && s + (unsigned)got < d->nr_slots &&
		       !m->used[s + (unsigned)got])
			m->used[s + (unsigned)got++] = 1;
		break;
	}
	pthread_mutex_unlock(&m->lock);
	if (!got) {
		errno = ENOSPC;
		return -1;
	}
	return got;
}

static int mem_write(struct fl_swap *d, uint64_t slot, const void *buf,
		     unsigned n)
{
	struct memdev *m = to_mem(d);
	int err = 0;

	pthread_mutex_lock(&m->lock);
	m->writes++;
	for (unsigned i = 0; i < n && !err; i++)
		if (!m->used[slot + i])
			err = EBADF; /* not reserved: the pool's bug */
	if (!err)
		err = m->fail_write;
	if (!err) {
		memcpy(m->pages + slot * PAGE_SIZE, buf, n * PAGE_SIZE);
		memset(m->written + slot, 1, n);
	}
	pthread_mutex_unlock(&m->lock);
	errno = err;
	return err ? -1 : 0;
}

static int mem_read(struct fl_swap *d, uint64_t slot, void *buf, unsigned n)
{
	struct memdev *m = to_mem(d);
	int err = 0;

	pthread_mutex_lock(&m->lock);
	m->reads++;
	for (unsigned i = 0; i < n && !err; i++)
		if (!m->written[slot + i])
			err = ENODATA; /* never written: the pool's bug */
	if (!err)
		err = m->fail_read;
	if (!err)
		memcpy(buf, m->pages + slot * PAGE_SIZE, n * PAGE_SIZE);
	pthread_mutex_unlock(&m->lock);
	errno = err;
	return err ? -1 : 0;
}

static void mem_free(struct fl_swap *d, uint64_t slot, unsigned n)
{
	struct memdev *m = to_mem(d);

	pthread_mutex_lock(&m->lock);
	m->frees++;
	for (unsigned i = 0; i < n; i++) {
		CHECK(m->used[slot + i]);
		m->used[slot + i] = 0;
		m->written[slot + i] = 0;
	}
	pthread_mutex_unlock(&m->lock);
}

static void mem_destroy(struct fl_swap *d)
{
	struct memdev *m = to_mem(d);

	pthread_mutex_destroy(&m->lock);
	free(m->pages);
	free(m->used);
	free(m->written);
	free(m);
}

static const struct swap_dev_ops mem_ops = {
	.alloc = mem_alloc,
	.write = mem_write,
	.read = mem_read,
	.free = mem_free,
	.destroy = mem_destroy,
};

static struct memdev *mem_new(uint64_t nr_slots)
{
	struct memdev *m = calloc(1, sizeof(*m));

	REQUIRE(m != NULL);
	m->pages = malloc(nr_slots * PAGE_SIZE);
	m->used = calloc(nr_slots, 1);
	m->written = calloc(nr_slots, 1);
	REQUIRE(m->pages && m->used && m->written);
	pthread_mutex_init(&m->lock, NULL);
	m->dev.ops = &mem_ops;
	m->dev.kind = "test";
	m->dev.nr_slots = nr_slots;
	return m;
}

static uint64_t mem_in_use(struct memdev *m)
{
	uint64_t n = 0;

	pthread_mutex_lock(&m->lock);
	for (uint64_t s = 0; s < m->dev.nr_slots; s++)
		n += m->used[s];
	pthread_mutex_unlock(&m->lock);
	return n;
}

/* ---- helpers ------------------------------------------------------------ */

/* The algorithm to test with, or skip the case. */
static int some_algorithm(void)
{
	if (codec_check(FL_COMPRESS_LZ4, 0) == 0)
		return FL_COMPRESS_LZ4;
	if (codec_check(FL_COMPRESS_ZSTD, 0) == 0)
		return FL_COMPRESS_ZSTD;
	return -1;
}

#define NEED_ALGORITHM(alg)                                                    \
	int alg = some_algorithm();                                            \
	if (alg < 0) {                                                         \
		h_note("no zstd or lz4 in this build: nothing to test");       \
		return;                                                        \
	}

/* Page k of a test: compressible (mostly one byte, some pattern) or, if
 * random, incompressible.  Seeded by k so every page differs. */
static void page_fill(unsigned char *p, uint64_t k, int random)
{
	if (random) {
		h_fill(p, PAGE_SIZE, (uint32_t)k + 1000, 0);
		return;
	}
	memset(p, (int)(k & 0xFF), PAGE_SIZE);
	h_fill(p + (k % 8) * 256, 64, (uint32_t)k, 0);
}

static int page_check(const unsigned char *p, uint64_t k, int random)
{
	unsigned char want[PAGE_SIZE];

	page_fill(want, k, random);
	return memcmp(p, want, PAGE_SIZE) == 0;
}

static struct fl_swap *zpool(int alg, uint64_t pool, struct fl_swap *next)
{
	struct fl_swap *z = swap_zpool_create(NULL, alg, 0, pool, next);

	REQUIRE(z != NULL);
	return z;
}

static struct swap_zpool_stats zstats(struct fl_swap *z)
{
	struct swap_zpool_stats st;

	REQUIRE(swap_zpool_stats(z, &st) == 0);
	return st;
}

/* ---- cases -------------------------------------------------------------- */

TEST(bad_arguments)
{
	struct swap_zpool_stats st;
	struct memdev *m = mem_new(4);
	int alg = some_algorithm();

	CHECK_ERR(swap_zpool_create(NULL, FL_COMPRESS_NONE, 0, 1 << 20, NULL) ==
			  NULL,
		  EINVAL);
	CHECK_ERR(swap_zpool_create(NULL, 7, 0, 1 << 20, NULL) == NULL, EINVAL);
#ifndef FL_HAVE_ZSTD
	CHECK_ERR(swap_zpool_create(NULL, FL_COMPRESS_ZSTD, 0, 1 << 20, NULL) ==
			  NULL,
		  EOPNOTSUPP);
#endif
#ifndef FL_HAVE_LZ4
	CHECK_ERR(swap_zpool_create(NULL, FL_COMPRESS_LZ4, 0, 1 << 20, NULL) ==
			  NULL,
		  EOPNOTSUPP);
#endif
	CHECK_EQ(swap_zpool_stats(&m->dev, &st), -EINVAL);
	CHECK_EQ(swap_zpool_stats(NULL, &st), -EINVAL);
	if (alg >= 0) {
		struct fl_swap *z;
		uint64_t slot;
		unsigned char page[PAGE_SIZE];

		CHECK_ERR(swap_zpool_create(NULL, alg, 1000, 1 << 20, NULL) ==
				  NULL,
			  EINVAL);
		CHECK_ERR(swap_zpool_create(NULL, alg, 0, PAGE_SIZE - 1,
					    NULL) == NULL,
			  EINVAL);
		z = zpool(alg, 1 << 20, NULL);
		CHECK_EQ(z->nr_slots, (1 << 20) / 64);
		CHECK(strcmp(z->kind, "compressed") == 0);
		CHECK_ERR(z->ops->alloc(z, 0, &slot) == -1, EINVAL);
		CHECK_ERR(z->ops->write(z, z->nr_slots, page, 1) == -1, EINVAL);
		CHECK_ERR(z->ops->read(z, z->nr_slots - 1, page, 2) == -1,
			  EINVAL);
		/* A reserved slot never written holds nothing. */
		REQUIRE(z->ops->alloc(z, 1, &slot) == 1);
		CHECK_ERR(z->ops->read(z, slot, page, 1) == -1, EIO);
		z->ops->free(z, slot, 1);
		CHECK_EQ(z->slots_used, 0);
		z->ops->destroy(z);
	}
	mem_destroy(&m->dev);
}

/* No next device: compressible pages round trip through the pool, which
 * then holds much less than they; free gives every byte and slot back;
 * an incompressible page has nowhere to go (ENOSPC). */
TEST(pool_round_trip)
{
	NEED_ALGORITHM(alg);
	const unsigned n = 64;
	unsigned char *buf = malloc(n * PAGE_SIZE),
		      *back = malloc(n * PAGE_SIZE);
	struct fl_swap *z = zpool(alg, 1 << 20, NULL);
	struct swap_zpool_stats st;
	uint64_t slot, s2;
	int got;

	REQUIRE(buf && back);
	for (unsigned i = 0; i < n; i++)
		page_fill(buf + i * PAGE_SIZE, i, 0);
	got = z->ops->alloc(z, n, &slot);
	CHECK_EQ(got, n); /* an empty pool has them together */
	CHECK_EQ(z->slots_used, n);
	REQUIRE(z->ops->write(z, slot, buf, n) == 0);
	st = zstats(z);
	CHECK_EQ(st.pool_pages, n);
	CHECK_EQ(st.stored, n);
	CHECK_EQ(z->bytes_stored, st.pool_used);
	CHECK_LE(st.compressed_bytes, st.pool_used);
	CHECK_LE(st.pool_used * 4, (uint64_t)n * PAGE_SIZE);
	h_note("%u pages in %llu bytes", n, (unsigned long long)st.pool_used);
	memset(back, 0, n * PAGE_SIZE);
	REQUIRE(z->ops->read(z, slot, back, n) == 0);
	for (unsigned i = 0; i < n; i++)
		CHECK(page_check(back + i * PAGE_SIZE, i, 0));
	/* Reads of any part, in any order. */
	REQUIRE(z->ops->read(z, slot + 10, back, 3) == 0);
	CHECK(page_check(back + 2 * PAGE_SIZE, 12, 0));
	CHECK_EQ(z->pages_written, n);
	CHECK_EQ(z->pages_read, n + 3);

	/* Incompressible, no next: the write fails, nothing kept. */
	REQUIRE(z->ops->alloc(z, 2, &s2) == 2);
	page_fill(buf, 500, 0);
	page_fill(buf + PAGE_SIZE, 501, 1);
	CHECK_ERR(z->ops->write(z, s2, buf, 2) == -1, ENOSPC);
	CHECK_EQ(z->write_errors, 1);
	CHECK_EQ(zstats(z).pool_pages, n);
	CHECK_EQ(zstats(z).rejected_poor, 1);
	z->ops->free(z, s2, 2);

	z->ops->free(z, slot, n);
	st = zstats(z);
	CHECK_EQ(st.pool_pages, 0);
	CHECK_EQ(st.pool_used, 0);
	CHECK_EQ(st.compressed_bytes, 0);
	CHECK_EQ(z->bytes_stored, 0);
	CHECK_EQ(z->slots_used, 0);
	/* Freed slots are handed out again. */
	got = z->ops->alloc(z, 1, &s2);
	CHECK_EQ(got, 1);
	z->ops->free(z, s2, 1);
	z->ops->destroy(z);
	free(buf);
	free(back);
}

/* In front of next: incompressible pages of a run go to next (the rest
 * stay in the pool), reads come from where each page went, free frees
 * both. */
TEST(fall_through_incompressible)
{
	NEED_ALGORITHM(alg);
	const unsigned n = 16;
	struct memdev *m = mem_new(64);
	struct fl_swap *z = zpool(alg, 1 << 20, &m->dev);
	unsigned char *buf = malloc(n * PAGE_SIZE),
		      *back = malloc(n * PAGE_SIZE);
	struct swap_zpool_stats st;
	uint64_t slot;

	REQUIRE(buf && back);
	CHECK_EQ(z->nr_slots, 64);
	/* Pages 3, 4, 5 and 9 are random. */
	for (unsigned i = 0; i < n; i++)
		page_fill(buf + i * PAGE_SIZE, i, (i >= 3 && i <= 5) || i == 9);
	REQUIRE(z->ops->alloc(z, n, &slot) == (int)n);
	CHECK_EQ(mem_in_use(m), n); /* next's slots */
	REQUIRE(z->ops->write(z, slot, buf, n) == 0);
	st = zstats(z);
	CHECK_EQ(st.pool_pages, n - 4);
	CHECK_EQ(st.rejected_poor, 4);
	CHECK_EQ(st.written_next, 4);
	CHECK_EQ(m->writes, 2); /* one run of three, one of one */
	memset(back, 0, n * PAGE_SIZE);
	REQUIRE(z->ops->read(z, slot, back, n) == 0);
	for (unsigned i = 0; i < n; i++)
		CHECK(page_check(back + i * PAGE_SIZE, i,
				 (i >= 3 && i <= 5) || i == 9));
	CHECK_EQ(zstats(z).read_next, 4);
	CHECK_EQ(zstats(z).loaded, n - 4);

	/* Rewriting a slot moves it between tiers cleanly. */
	page_fill(buf, 100, 0);
	REQUIRE(z->ops->write(z, slot + 4, buf, 1) == 0); /* now in pool */
	page_fill(buf, 101, 1);
	REQUIRE(z->ops->write(z, slot + 6, buf, 1) == 0); /* now in next */
	REQUIRE(z->ops->read(z, slot + 4, back, 3) == 0);
	CHECK(page_check(back, 100, 0));
	CHECK(page_check(back + PAGE_SIZE, 5, 1));
	CHECK(page_check(back + 2 * PAGE_SIZE, 101, 1));
	CHECK_EQ(zstats(z).pool_pages, n - 4);

	z->ops->free(z, slot, n);
	CHECK_EQ(mem_in_use(m), 0);
	CHECK_EQ(zstats(z).pool_pages, 0);
	CHECK_EQ(zstats(z).pool_used, 0);
	CHECK_EQ(z->slots_used, 0);
	z->ops->destroy(z);
	mem_destroy(&m->dev);
	free(buf);
	free(back);
}

/* A small pool: it never holds more than its limit, pages it cannot take
 * go to next, everything reads back; freeing makes room again.  Without
 * next, a full pool has no slot (alloc ENOSPC) until pages are freed. */
TEST(pool_limit)
{
	NEED_ALGORITHM(alg);
	const unsigned n = 256;
	const uint64_t limit = 2 * PAGE_SIZE;
	struct memdev *m = mem_new(n);
	struct fl_swap *z = zpool(alg, limit, &m->dev), *y;
	unsigned char page[PAGE_SIZE];
	struct swap_zpool_stats st;
	uint64_t slot, slots[n];
	unsigned kept = 0;

	for (unsigned i = 0; i < n; i++) {
		REQUIRE(z->ops->alloc(z, 1, &slots[i]) == 1);
		page_fill(page, i, 0);
		REQUIRE(z->ops->write(z, slots[i], page, 1) == 0);
		CHECK_LE(zstats(z).pool_used, limit);
	}
	st = zstats(z);
	CHECK_GT(st.pool_pages, 8); /* it does compress */
	CHECK_GT(st.rejected_full, 0);
	CHECK_EQ(st.pool_pages + st.written_next, n);
	CHECK_GE(st.pool_used + 512, limit); /* nearly full */
	h_note("pool of %llu bytes took %llu pages, %llu went on",
	       (unsigned long long)limit, (unsigned long long)st.pool_pages,
	       (unsigned long long)st.written_next);
	for (unsigned i = 0; i < n; i++) {
		REQUIRE(z->ops->read(z, slots[i], page, 1) == 0);
		CHECK(page_check(page, i, 0));
	}
	for (unsigned i = 0; i < n; i++)
		z->ops->free(z, slots[i], 1);
	CHECK_EQ(zstats(z).pool_used, 0);
	CHECK_EQ(mem_in_use(m), 0);
	z->ops->destroy(z);
	mem_destroy(&m->dev);

	/* No next: write until full, then no slot. */
	y = zpool(alg, limit, NULL);
	for (unsigned i = 0; i < n; i++) {
		if (y->ops->alloc(y, 1, &slots[i]) != 1) {
			CHECK_EQ(errno, ENOSPC);
			break;
		}
		page_fill(page, i, 0);
		if (y->ops->write(y, slots[i], page, 1)) {
			CHECK_EQ(errno, ENOSPC);
			y->ops->free(y, slots[i], 1);
			break;
		}
		kept++;
	}
	CHECK_GT(kept, 8);
	CHECK_LE(zstats(y).pool_used, limit);
	CHECK_EQ(zstats(y).pool_pages, kept);
	for (unsigned i = 0; i < kept; i++) {
		REQUIRE(y->ops->read(y, slots[i], page, 1) == 0);
		CHECK(page_check(page, i, 0));
		y->ops->free(y, slots[i], 1);
	}
	CHECK_EQ(zstats(y).pool_used, 0);
	REQUIRE(y->ops->alloc(y, 1, &slot) == 1);
	y->ops->free(y, slot, 1);
	CHECK_EQ(y->slots_used, 0);
	y->ops->destroy(y);
}

/* Errors of next reach the caller; a failed write keeps nothing of its
 * pages in the pool. */
TEST(next_errors_propagate)
{
	NEED_ALGORITHM(alg);
	struct memdev *m = mem_new(8);
	struct fl_swap *z = zpool(alg, 1 << 20, &m->dev);
	unsigned char buf[3 * PAGE_SIZE];
	uint64_t slot;

	REQUIRE(z->ops->alloc(z, 3, &slot) == 3);
	page_fill(buf, 0, 0);
	page_fill(buf + PAGE_SIZE, 1, 1); /* to next */
	page_fill(buf + 2 * PAGE_SIZE, 2, 0);
	m->fail_write = EIO;
	CHECK_ERR(z->ops->write(z, slot, buf, 3) == -1, EIO);
	CHECK_EQ(z->write_errors, 1);
	CHECK_EQ(zstats(z).pool_pages, 0);
	CHECK_EQ(zstats(z).pool_used, 0);
	m->fail_write = 0;
	REQUIRE(z->ops->write(z, slot, buf, 3) == 0);
	m->fail_read = EIO;
	CHECK_ERR(z->ops->read(z, slot, buf, 3) == -1, EIO);
	CHECK_EQ(z->read_errors, 1);
	/* A page in the pool still reads. */
	REQUIRE(z->ops->read(z, slot + 2, buf, 1) == 0);
	CHECK(page_check(buf, 2, 0));
	m->fail_read = 0;
	REQUIRE(z->ops->read(z, slot, buf, 3) == 0);
	CHECK(page_check(buf + PAGE_SIZE, 1, 1));
	/* next full: alloc says so. */
	{
		uint64_t s2;

		REQUIRE(z->ops->alloc(z, 5, &s2) == 5);
		CHECK_ERR(z->ops->alloc(z, 1, &s2) == -1, ENOSPC);
		z->ops->free(z, s2, 5);
	}
	z->ops->free(z, slot, 3);
	CHECK_EQ(mem_in_use(m), 0);
	z->ops->destroy(z);
	mem_destroy(&m->dev);
}

/* Threads each swap their own pages in and out, compressible or not, in
 * front of next: every page comes back, and everything is freed. */
struct thr_arg {
	struct fl_swap *z;
};

static void swapper(int idx, void *arg)
{
	struct thr_arg *ta = arg;
	struct fl_swap *z = ta->z;
	unsigned char buf[4 * PAGE_SIZE], back[4 * PAGE_SIZE];

	for (unsigned round = 0; round < 200; round++) {
		uint64_t k = (uint64_t)idx * 100000 + round * 4, slot;
		int got = z->ops->alloc(z, 4, &slot);

		CHECK_GT(got, 0);
		if (got <= 0)
			return;
		for (int i = 0; i < got; i++)
			page_fill(buf + i * PAGE_SIZE, k + (unsigned)i,
				  (round + (unsigned)i) % 3 == 0);
		CHECK_EQ(z->ops->write(z, slot, buf, (unsigned)got), 0);
		CHECK_EQ(z->ops->read(z, slot, back, (unsigned)got), 0);
		for (int i = 0; i < got; i++)
			CHECK(page_check(back + i * PAGE_SIZE, k + (unsigned)i,
					 (round + (unsigned)i) % 3 == 0));
		z->ops->free(z, slot, (unsigned)got);
	}
}

TEST(threads)
{
	NEED_ALGORITHM(alg);
	struct memdev *m = mem_new(256);
	struct thr_arg ta = {zpool(alg, 64 * PAGE_SIZE, &m->dev)};

	h_run_threads(4, swapper, &ta);
	CHECK_EQ(zstats(ta.z).pool_pages, 0);
	CHECK_EQ(zstats(ta.z).pool_used, 0);
	CHECK_EQ(ta.z->slots_used, 0);
	CHECK_EQ(mem_in_use(m), 0);
	ta.z->ops->destroy(ta.z);
	mem_destroy(&m->dev);
}

/* Each algorithm built in, with a level of its own: a run of mixed pages
 * comes back. */
TEST(each_algorithm)
{
	static const int algs[] = {FL_COMPRESS_ZSTD, FL_COMPRESS_LZ4};
	static const int levels[] = {9, -2};
	unsigned char buf[8 * PAGE_SIZE], back[8 * PAGE_SIZE];

	for (unsigned a = 0; a < 2; a++) {
		struct memdev *m = mem_new(8);
		struct fl_swap *z;
		uint64_t slot;

		if (codec_check(algs[a], 0)) {
			h_note("%s not built in", codec_name(algs[a]));
			mem_destroy(&m->dev);
			continue;
		}
		z = swap_zpool_create(NULL, algs[a], levels[a], 1 << 20,
				      &m->dev);
		REQUIRE(z != NULL);
		for (unsigned i = 0; i < 8; i++)
			page_fill(buf + i * PAGE_SIZE, i, i % 4 == 1);
		REQUIRE(z->ops->alloc(z, 8, &slot) == 8);
		REQUIRE(z->ops->write(z, slot, buf, 8) == 0);
		CHECK_EQ(zstats(z).pool_pages, 6);
		REQUIRE(z->ops->read(z, slot, back, 8) == 0);
		CHECK(memcmp(buf, back, sizeof(buf)) == 0);
		z->ops->free(z, slot, 8);
		z->ops->destroy(z);
		mem_destroy(&m->dev);
	}
}

/* No memory for an entry (or for the tree's node): the page goes to next
 * instead, nothing is lost or leaked; without next the write fails. */
TEST(no_memory_falls_through)
{
	NEED_ALGORITHM(alg);
	struct memdev *m = mem_new(8);
	struct fl_swap *z = zpool(alg, 1 << 20, &m->dev), *y;
	unsigned char buf[2 * PAGE_SIZE], back[2 * PAGE_SIZE];
	uint64_t slot;

	page_fill(buf, 1, 0);
	page_fill(buf + PAGE_SIZE, 2, 0);
	REQUIRE(z->ops->alloc(z, 2, &slot) == 2);
	inject_set(INJ_MALLOC, 1, ENOMEM); /* the first page's entry */
	REQUIRE(z->ops->write(z, slot, buf, 2) == 0);
	inject_clear();
	CHECK_EQ(zstats(z).pool_pages, 1);
	CHECK_EQ(zstats(z).written_next, 1);
	REQUIRE(z->ops->read(z, slot, back, 2) == 0);
	CHECK(memcmp(buf, back, sizeof(buf)) == 0);
	z->ops->free(z, slot, 2);
	CHECK_EQ(zstats(z).pool_used, 0);
	z->ops->destroy(z);
	mem_destroy(&m->dev);

	y = zpool(alg, 1 << 20, NULL);
	REQUIRE(y->ops->alloc(y, 1, &slot) == 1);
	inject_set(INJ_MALLOC, 1, ENOMEM);
	CHECK_ERR(y->ops->write(y, slot, buf, 1) == -1, ENOSPC);
	inject_clear();
	CHECK_EQ(zstats(y).pool_pages, 0);
	y->ops->free(y, slot, 1);
	y->ops->destroy(y);
}
