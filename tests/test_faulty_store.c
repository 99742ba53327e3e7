// SPDX-License-Identifier: MIT
/* The slow and faulty store: its operations called directly, then real
 * faults through mappings of objects over it, on an in-memory store built
 * here and on a file store.  Timing never decides a case: delays are only
 * checked for correct data, and a stalled read is stalled by the hold. */
#include "harness.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* ---- an in-memory inner store ----------------------------------------- */

struct mem_store {
	struct fl_store base;
	unsigned char *data;
	size_t size;
	pthread_mutex_t lock;
	unsigned long reads, writes; /* calls that reached this store */
	int *destroyed;
};

static ssize_t mem_read(struct fl_store *st, void *buf, size_t len,
			uint64_t off)
{
	struct mem_store *m = (struct mem_store *)st;
	size_t n;

	pthread_mutex_lock(&m->lock);
	m->reads++;
	n = off >= m->size ? 0 : m->size - off < len ? m->size - off : len;
	memcpy(buf, m->data + off, n);
	pthread_mutex_unlock(&m->lock);
	return (ssize_t)n;
}

static ssize_t mem_write(struct fl_store *st, const void *buf, size_t len,
			 uint64_t off)
{
	struct mem_store *m = (struct mem_store *)st;

	pthread_mutex_lock(&m->lock);
	m->writes++;
	if (off > m->size || len > m->size - off) {
		pthread_mutex_unlock(&m->lock);
		errno = EIO;
		return -1;
	}
	memcpy(m->data + off, buf, len);
	pthread_mutex_unlock(&m->lock);
	return (ssize_t)len;
}

static int64_t mem_size(struct fl_store *st)
{
	return (int64_t)((struct mem_store *)st)->size;
}

static void mem_destroy(struct fl_store *st)
{
	struct mem_store *m = (struct mem_store *)st;

	if (m->destroyed)
		(*m->destroyed)++;
	pthread_mutex_destroy(&m->lock);
	free(m->data);
	free(m);
}

/* No flush: the wrapper must cope with an inner store without one. */
static const struct fl_store_ops mem_ops = {
	.read = mem_read,
	.write = mem_write,
	.size = mem_size,
	.destroy = mem_destroy,
};

static struct mem_store *mem_new(size_t size, uint32_t seed, int *destroyed)
{
	struct mem_store *m = calloc(1, sizeof(*m));

	REQUIRE(m != NULL);
	m->data = malloc(size);
	REQUIRE(m->data != NULL);
	h_fill(m->data, size, seed, 0);
	m->base.ops = &mem_ops;
	m->size = size;
	m->destroyed = destroyed;
	pthread_mutex_init(&m->lock, NULL);
	return m;
}

static unsigned long mem_reads(struct mem_store *m)
{
	unsigned long n;

	pthread_mutex_lock(&m->lock);
	n = m->reads;
	pthread_mutex_unlock(&m->lock);
	return n;
}

/* ---- helpers ---------------------------------------------------------- */

static struct fl_store *faulty(struct fl_store *inner,
			       const struct fl_store_faults *ff)
{
	struct fl_store *st = fl_store_faulty(inner, ff);

	REQUIRE(st != NULL);
	return st;
}

static void set_faults(struct fl_store *st, const struct fl_store_faults *ff)
{
	REQUIRE(fl_store_faulty_set(st, ff) == 0);
}

/* The inner store of a case: in memory, or a file in h_tmpdir(). */
struct inner {
	int file;
	struct h_file f;
	struct mem_store *m;
	int destroyed;
};

static struct fl_store *inner_new(struct inner *in, int file, size_t size,
				  uint32_t seed, int flags)
{
	struct fl_store *st;

	memset(in, 0, sizeof(*in));
	in->file = file;
	if (!file) {
		in->m = mem_new(size, seed, &in->destroyed);
		return &in->m->base;
	}
	h_file_create(&in->f, size, seed);
	st = fl_store_file_open(in->f.path, flags);
	REQUIRE(st != NULL);
	return st;
}

/* Index of the first byte of the inner store's [off, off+len) that is not
 * c, or -1.  Only once the store is written (and, for a file, closed or
 * flushed: the file store writes through, so a pread sees it). */
static long inner_differs(struct inner *in, uint64_t off, size_t len,
			  unsigned char c)
{
	unsigned char *buf = malloc(len);
	long bad = -1;

	REQUIRE(buf != NULL);
	if (in->file) {
		h_pread(in->f.path, buf, len, off);
	} else {
		pthread_mutex_lock(&in->m->lock);
		memcpy(buf, in->m->data + off, len);
		pthread_mutex_unlock(&in->m->lock);
	}
	for (size_t i = 0; i < len && bad < 0; i++)
		if (buf[i] != c)
			bad = (long)i;
	free(buf);
	return bad;
}

static void inner_done(struct inner *in)
{
	if (in->file)
		h_file_remove(&in->f);
	else
		CHECK_EQ(in->destroyed, 1);
}

/* Poll (bounded: H_WAIT_SECONDS) until n reads wait in the hold of st. */
static int wait_held(struct fl_store *st, long n)
{
	double end = h_now() + H_WAIT_SECONDS;

	while (fl_store_faulty_held(st) != n) {
		if (h_now() > end)
			return fl_store_faulty_held(st) == n;
		usleep(1000);
	}
	return 1;
}

/* ---- the operations, called directly ---------------------------------- */

TEST(bad_arguments)
{
	struct fl_store_faults ff = {.fail_every_nth_read = 1};
	struct h_file f;
	struct fl_store *file, *st;
	int destroyed = 0;
	struct mem_store *m = mem_new(4 * PG, 200, &destroyed);
	struct fl_store noops = {0};

	CHECK_ERR(fl_store_faulty(NULL, &ff) == NULL, EINVAL);
	CHECK_ERR(fl_store_faulty(&noops, NULL) == NULL, EINVAL);
	CHECK_ERR(fl_store_faulty_set(NULL, &ff) == -1, EINVAL);
	CHECK_ERR(fl_store_faulty_hold(NULL, 0, PG) == -1, EINVAL);
	CHECK_ERR(fl_store_faulty_release(NULL) == -1, EINVAL);
	CHECK_ERR(fl_store_faulty_held(NULL) == -1, EINVAL);

	/* Stores that are not faulty ones. */
	h_file_create(&f, 4 * PG, 201);
	file = fl_store_file_open(f.path, O_RDONLY);
	REQUIRE(file != NULL);
	CHECK_ERR(fl_store_faulty_set(file, &ff) == -1, EINVAL);
	CHECK_ERR(fl_store_faulty_hold(file, 0, PG) == -1, EINVAL);
	CHECK_ERR(fl_store_faulty_release(file) == -1, EINVAL);
	CHECK_ERR(fl_store_faulty_held(file) == -1, EINVAL);
	CHECK_ERR(fl_store_faulty_set(&m->base, &ff) == -1, EINVAL);
	CHECK_ERR(fl_store_faulty_held(&m->base) == -1, EINVAL);

	/* read_only comes from the inner store; a faulty store of a faulty
	 * store is a faulty store too. */
	st = faulty(file, NULL);
	CHECK_EQ(st->read_only, 1);
	CHECK_EQ(fl_store_faulty_held(st), 0);
	CHECK_EQ(fl_store_faulty_set(st, NULL), 0);
	st = faulty(st, &ff);
	CHECK_EQ(st->read_only, 1);
	CHECK_EQ(st->ops->size(st), 4 * PG);
	CHECK_EQ(st->ops->flush(st), 0);
	st->ops->destroy(st); /* closes the file store's descriptors */
	h_file_remove(&f);

	st = faulty(&m->base, NULL);
	CHECK_EQ(st->read_only, 0);
	CHECK_EQ(st->ops->flush(st), 0); /* the inner store has none */
	st->ops->destroy(st);
	CHECK_EQ(destroyed, 1);
}

TEST(direct_errors)
{
	int destroyed = 0;
	struct mem_store *m = mem_new(8 * PG, 202, &destroyed);
	struct fl_store_faults ff = {.fail_every_nth_read = 3,
				     .fail_every_nth_write = 2,
				     .fail_errno = ENOSPC};
	struct fl_store *st = faulty(&m->base, &ff);
	unsigned char *buf = malloc(4 * PG);
	int fails = 0;

	REQUIRE(buf != NULL);
	for (int i = 1; i <= 9; i++) {
		ssize_t r;

		memset(buf, 0xee, PG);
		errno = 0;
		r = st->ops->read(st, buf, PG, (uint64_t)(i % 8) * PG);
		if (i % 3 == 0) {
			CHECK_EQ(r, -1);
			CHECK_EQ(errno, ENOSPC);
			CHECK_EQ(buf[0], 0xee); /* nothing transferred */
			fails++;
		} else {
			CHECK_EQ(r, PG);
			CHECK_EQ(h_mismatch(buf, PG, 202, (i % 8) * PG), -1);
		}
	}
	CHECK_EQ(fails, 3);
	CHECK_EQ(mem_reads(m), 6);
	memset(buf, 0x5a, PG);
	CHECK_EQ(st->ops->write(st, buf, PG, 0), PG);
	CHECK_ERR(st->ops->write(st, buf, PG, PG) == -1, ENOSPC);
	CHECK_EQ(st->ops->write(st, buf, PG, 2 * PG), PG);
	CHECK_EQ(m->writes, 2);

	/* By offset: an I/O touching [3 PG, 3 PG + 1) fails, default EIO.
	 * Setting the faults restarts the counts. */
	ff = (struct fl_store_faults){.fail_offset = 3 * PG, .fail_length = 1};
	set_faults(st, &ff);
	CHECK_EQ(st->ops->read(st, buf, PG, 2 * PG), PG);
	CHECK_ERR(st->ops->read(st, buf, PG, 3 * PG) == -1, EIO);
	CHECK_EQ(st->ops->read(st, buf, PG, 4 * PG), PG);
	CHECK_ERR(st->ops->read(st, buf, 4 * PG, 0) == -1, EIO);
	CHECK_ERR(st->ops->write(st, buf, 2 * PG, 2 * PG) == -1, EIO);
	CHECK_EQ(st->ops->write(st, buf, PG, 4 * PG), PG);
	/* A range running to the end of the offset space. */
	ff = (struct fl_store_faults){.fail_offset = 6 * PG,
				      .fail_length = UINT64_MAX};
	set_faults(st, &ff);
	CHECK_EQ(st->ops->read(st, buf, PG, 5 * PG), PG);
	CHECK_ERR(st->ops->read(st, buf, PG, 7 * PG) == -1, EIO);
	set_faults(st, NULL);
	CHECK_EQ(st->ops->read(st, buf, 4 * PG, 4 * PG), 4 * PG);
	free(buf);
	st->ops->destroy(st);
	CHECK_EQ(destroyed, 1);
}

/* Every Nth read is counted across all threads: exactly total/N fail. */
struct count_ctx {
	struct fl_store *st;
	unsigned long fails;
};

static void count_reader(int idx, void *arg)
{
	struct count_ctx *c = arg;
	unsigned char buf[64];
	unsigned long fails = 0;

	for (int i = 0; i < 500; i++) {
		ssize_t r = c->st->ops->read(c->st, buf, sizeof(buf),
					     (uint64_t)((idx + i) % 4) * PG);

		if (r < 0)
			fails++;
		else if (h_mismatch(buf, sizeof(buf), 203,
				    (uint64_t)((idx + i) % 4) * PG) != -1)
			h_fail(__FILE__, __LINE__, "read data wrong");
	}
	__atomic_add_fetch(&c->fails, fails, __ATOMIC_SEQ_CST);
}

TEST(direct_nth_across_threads)
{
	int destroyed = 0;
	struct mem_store *m = mem_new(4 * PG, 203, &destroyed);
	struct fl_store_faults ff = {
		.fail_every_nth_read = 7, .read_jitter_us = 20, .seed = 9};
	struct count_ctx c = {faulty(&m->base, &ff), 0};

	h_run_threads(8, count_reader, &c);
	CHECK_EQ(c.fails, 8 * 500 / 7);
	CHECK_EQ(mem_reads(m), 8 * 500 - 8 * 500 / 7);
	c.st->ops->destroy(c.st);
	CHECK_EQ(destroyed, 1);
}

/* A read still held at destroy is the caller's bug; destroy lets it go
 * and waits for it instead of freeing the store under it. */
struct direct_read {
	struct fl_store *st;
	unsigned char buf[PG];
	ssize_t r;
};

static void *direct_reader(void *arg)
{
	struct direct_read *d = arg;

	d->r = d->st->ops->read(d->st, d->buf, PG, 2 * PG);
	return NULL;
}

TEST(direct_hold_and_destroy)
{
	int destroyed = 0;
	struct mem_store *m = mem_new(4 * PG, 204, &destroyed);
	struct direct_read d = {.st = faulty(&m->base, NULL), .r = -2};
	unsigned char buf[PG];
	pthread_t t;

	CHECK_EQ(fl_store_faulty_hold(d.st, 2 * PG + 100, 1), 0);
	/* Reads elsewhere, and writes anywhere, are not held. */
	CHECK_EQ(d.st->ops->read(d.st, buf, PG, PG), PG);
	CHECK_EQ(d.st->ops->write(d.st, buf, PG, PG), PG);
	CHECK_EQ(d.st->ops->write(d.st, buf, PG, 2 * PG), PG);
	REQUIRE(pthread_create(&t, NULL, direct_reader, &d) == 0);
	if (!wait_held(d.st, 1))
		h_fail(__FILE__, __LINE__, "the read was never held");
	d.st->ops->destroy(d.st);
	pthread_join(t, NULL);
	CHECK_EQ(d.r, PG);
	CHECK_EQ(destroyed, 1);
}

/* ---- through mappings ------------------------------------------------- */

/* A read error by offset is a SIGBUS for the faulting thread only; every
 * other page is served, and once the fault is cleared the page reads. */
static void read_error_by_offset(int file)
{
	struct inner in;
	struct fl_store_faults ff = {.fail_offset = 5 * PG + 17,
				     .fail_length = 1};
	struct fl_store *st =
		faulty(inner_new(&in, file, 16 * PG, 210, O_RDONLY), &ff);
	fl_engine *e = h_engine_cfg(2, 1, 1);
	fl_object *o = fl_object_create(e, st, O_RDONLY);
	unsigned char *p, v = 0;
	struct h_sig sig;

	REQUIRE(o != NULL);
	p = h_map(e, 16 * PG, PROT_READ, MAP_SHARED, o, 0);
	CHECK_EQ(h_try_read(p + 5 * PG + 10, NULL, &sig), SIGBUS);
	CHECK((unsigned char *)sig.addr >= p + 5 * PG &&
	      (unsigned char *)sig.addr < p + 6 * PG);
	CHECK_EQ(h_try_read(p + 4 * PG, &v, &sig), 0);
	CHECK_EQ(h_try_read(p + 6 * PG, &v, &sig), 0);
	CHECK_EQ(h_mismatch(p, 5 * PG, 210, 0), -1);
	CHECK_EQ(h_mismatch(p + 6 * PG, 10 * PG, 210, 6 * PG), -1);
	CHECK_GE(h_estats(e).errors, 1);
	/* Poisoned until dropped; then, with the fault cleared, it reads. */
	CHECK_EQ(h_try_read(p + 5 * PG, NULL, &sig), SIGBUS);
	set_faults(st, NULL);
	CHECK_EQ(fl_madvise(e, p + 5 * PG, PG, MADV_DONTNEED), 0);
	CHECK_EQ(h_try_read(p + 5 * PG, &v, &sig), 0);
	CHECK_EQ(h_mismatch(p + 5 * PG, PG, 210, 5 * PG), -1);
	CHECK_EQ(fl_munmap(e, p, 16 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	inner_done(&in);
}

TEST(read_error_by_offset_mem)
{
	read_error_by_offset(0);
}

TEST(read_error_by_offset_file)
{
	read_error_by_offset(1);
}

/*
 * Every third read fails.  With readahead and fault-around off and
 * MADV_RANDOM, each first touch of a page is one store read, so the 3rd,
 * 6th and 9th pages touched raise SIGBUS and the others read right.
 */
static void every_nth_read(int file)
{
	static const int order[9] = {7, 2, 12, 0, 9, 4, 14, 5, 10};
	struct inner in;
	struct fl_store_faults ff = {.fail_every_nth_read = 3};
	struct fl_store *st =
		faulty(inner_new(&in, file, 16 * PG, 211, O_RDONLY), &ff);
	fl_engine *e = h_engine_cfg(2, 1, 1);
	fl_object *o = fl_object_create(e, st, O_RDONLY);
	unsigned char *p, v = 0;
	struct h_sig sig;

	REQUIRE(o != NULL);
	p = h_map(e, 16 * PG, PROT_READ, MAP_SHARED, o, 0);
	CHECK_EQ(fl_madvise(e, p, 16 * PG, MADV_RANDOM), 0);
	for (int i = 0; i < 9; i++) {
		unsigned char *q = p + (size_t)order[i] * PG;
		int r = h_try_read(q + 1, &v, &sig);

		if ((i + 1) % 3 == 0) {
			CHECK_EQ(r, SIGBUS);
		} else {
			CHECK_EQ(r, 0);
			CHECK_EQ(h_mismatch(q, PG, 211, order[i] * PG), -1);
		}
	}
	CHECK_EQ(h_estats(e).errors, 3);
	CHECK_EQ(fl_munmap(e, p, 16 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	inner_done(&in);
}

TEST(every_nth_read_mem)
{
	every_nth_read(0);
}

TEST(every_nth_read_file)
{
	every_nth_read(1);
}

/*
 * A failed store write: msync says EIO and the page stays dirty; once the
 * fault is cleared, msync writes it and the data reaches the inner store.
 */
static void write_error_then_retry(int file)
{
	struct inner in;
	struct fl_store_faults ff = {.fail_offset = 3 * PG, .fail_length = PG};
	struct fl_store *st =
		faulty(inner_new(&in, file, 8 * PG, 212, O_RDWR), NULL);
	fl_engine *e = h_engine_cfg(2, 1, 1);
	fl_object *o = fl_object_create(e, st, O_RDWR);
	unsigned char *p;

	REQUIRE(o != NULL);
	p = h_map(e, 8 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	memset(p + 3 * PG, 0x44, PG);
	set_faults(st, &ff);
	CHECK_ERR(fl_msync(e, p, 8 * PG, MS_SYNC) == -1, EIO);
	CHECK_EQ(h_mstats(e, p).dirty_pages, 1);
	CHECK_GE(h_estats(e).writeback_errors, 1);
	CHECK_EQ(p[3 * PG + 5], 0x44);
	CHECK_NE(inner_differs(&in, 3 * PG, PG, 0x44), -1);
	/* Every write failing: the same. */
	ff = (struct fl_store_faults){.fail_every_nth_write = 1};
	set_faults(st, &ff);
	CHECK_ERR(fl_msync(e, p, 8 * PG, MS_SYNC) == -1, EIO);
	CHECK_EQ(h_mstats(e, p).dirty_pages, 1);
	set_faults(st, NULL);
	CHECK_EQ(fl_msync(e, p, 8 * PG, MS_SYNC), 0);
	CHECK_EQ(h_mstats(e, p).dirty_pages, 0);
	CHECK_EQ(inner_differs(&in, 3 * PG, PG, 0x44), -1);
	CHECK_EQ(fl_munmap(e, p, 8 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	inner_done(&in);
}

TEST(write_error_then_retry_mem)
{
	write_error_then_retry(0);
}

TEST(write_error_then_retry_file)
{
	write_error_then_retry(1);
}

/*
 * The hold: a fault whose store read is held must not stall the engine.
 * While it waits, the same engine maps and unmaps anonymous memory and
 * serves faults on other pages of the object.  A stall shows as the
 * worker not finishing within 10 s; the hold is then released so that the
 * case can end.
 */
struct hold_ctx {
	fl_engine *e;
	struct fl_store *st;
	unsigned char *p;
	uint32_t seed;
	int nheld; /* pages 10, 11, ... are held */
	int done;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

struct held_read {
	struct hold_ctx *c;
	int page;
};

static void *held_reader(void *arg)
{
	struct held_read *r = arg;
	struct hold_ctx *c = r->c;
	size_t off = (size_t)r->page * PG;

	if (h_mismatch(c->p + off, PG, c->seed, off) != -1)
		h_fail(__FILE__, __LINE__, "held page %d read wrong", r->page);
	return NULL;
}

static void hold_work(struct hold_ctx *c)
{
	unsigned char *a;

	a = fl_mmap(c->e, NULL, 8 * PG, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	if (a == MAP_FAILED) {
		h_fail(__FILE__, __LINE__, "fl_mmap failed: %d", errno);
	} else {
		a[PG] = 1;
		if (fl_munmap(c->e, a, 8 * PG) != 0)
			h_fail(__FILE__, __LINE__, "fl_munmap failed");
	}
	for (int pg = 0; pg < 32; pg += 3) {
		if (pg >= 10 && pg < 10 + c->nheld)
			continue;
		if (h_mismatch(c->p + pg * PG, PG, c->seed, pg * PG) != -1)
			h_fail(__FILE__, __LINE__, "page %d wrong", pg);
	}
}

static void *hold_worker(void *arg)
{
	struct hold_ctx *c = arg;

	hold_work(c);
	pthread_mutex_lock(&c->lock);
	c->done = 1;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static int wait_done(struct hold_ctx *c, int seconds)
{
	struct timespec ts;
	int ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	pthread_mutex_lock(&c->lock);
	while (!c->done)
		if (pthread_cond_timedwait(&c->cond, &c->lock, &ts) != 0)
			break;
	ok = c->done;
	pthread_mutex_unlock(&c->lock);
	return ok;
}

/* nheld faults wait on held reads, on an engine of `threads` handlers. */
static void hold_keeps_engine_going(int file, unsigned threads, int nheld)
{
	struct inner in;
	struct hold_ctx c = {.seed = 213, .nheld = nheld};
	struct held_read r[4];
	pthread_t reader[4], worker;
	fl_object *o;

	REQUIRE(nheld >= 1 && nheld <= 4);
	c.st = faulty(inner_new(&in, file, 32 * PG, c.seed, O_RDONLY), NULL);
	c.e = h_engine_cfg(threads, 1, 1);
	o = fl_object_create(c.e, c.st, O_RDONLY);
	REQUIRE(o != NULL);
	pthread_mutex_init(&c.lock, NULL);
	pthread_cond_init(&c.cond, NULL);
	c.p = h_map(c.e, 32 * PG, PROT_READ, MAP_SHARED, o, 0);
	CHECK_EQ(fl_store_faulty_hold(c.st, 10 * PG, (uint64_t)nheld * PG), 0);
	for (int i = 0; i < nheld; i++) {
		r[i] = (struct held_read){&c, 10 + i};
		REQUIRE(pthread_create(&reader[i], NULL, held_reader, &r[i]) ==
			0);
	}
	if (!wait_held(c.st, nheld))
		h_fail(__FILE__, __LINE__, "%ld of %d reads held",
		       fl_store_faulty_held(c.st), nheld);
	REQUIRE(pthread_create(&worker, NULL, hold_worker, &c) == 0);
	if (!wait_done(&c, H_WAIT_SECONDS))
		h_fail(__FILE__, __LINE__,
		       "map/unmap/faults stuck behind a held store read");
	CHECK_EQ(fl_store_faulty_held(c.st), nheld); /* still held meanwhile */
	CHECK_EQ(fl_store_faulty_release(c.st), 0);
	for (int i = 0; i < nheld; i++)
		pthread_join(reader[i], NULL);
	pthread_join(worker, NULL);
	CHECK_EQ(fl_store_faulty_held(c.st), 0);
	CHECK_EQ(h_estats(c.e).errors, 0);
	CHECK_EQ(fl_munmap(c.e, c.p, 32 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(c.e), 0);
	pthread_mutex_destroy(&c.lock);
	pthread_cond_destroy(&c.cond);
	inner_done(&in);
}

TEST(hold_keeps_engine_going_mem)
{
	hold_keeps_engine_going(0, 2, 1);
}

TEST(hold_keeps_engine_going_file)
{
	hold_keeps_engine_going(1, 2, 1);
}

/* The only handler thread is not pinned by held reads, even three. */
TEST(hold_with_one_handler_thread)
{
	hold_keeps_engine_going(0, 1, 3);
}

/*
 * Delays and jitter, on reads and writes, with several threads faulting
 * at once: the data is right (how long it took is not checked).
 */
struct delay_ctx {
	unsigned char *p;
	uint32_t seed;
};

static void delay_reader(int idx, void *arg)
{
	struct delay_ctx *c = arg;

	for (int pg = idx; pg < 32; pg += 4)
		if (h_mismatch(c->p + pg * PG, PG, c->seed, pg * PG) != -1)
			h_fail(__FILE__, __LINE__, "page %d wrong", pg);
}

static void delays(int file)
{
	struct inner in;
	struct fl_store_faults ff = {.read_delay_us = 1000,
				     .read_jitter_us = 2000,
				     .write_delay_us = 500,
				     .write_jitter_us = 500,
				     .seed = 42};
	struct delay_ctx c = {.seed = 214};
	struct fl_store *st =
		faulty(inner_new(&in, file, 32 * PG, c.seed, O_RDWR), &ff);
	fl_engine *e = h_engine_cfg(2, 1, 4);
	fl_object *o = fl_object_create(e, st, O_RDWR);

	REQUIRE(o != NULL);
	c.p = h_map(e, 32 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	h_run_threads(4, delay_reader, &c);
	memset(c.p + 8 * PG, 0x66, 2 * PG);
	CHECK_EQ(fl_msync(e, c.p, 32 * PG, MS_SYNC), 0);
	CHECK_EQ(inner_differs(&in, 8 * PG, 2 * PG, 0x66), -1);
	CHECK_EQ(fl_munmap(e, c.p, 32 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	inner_done(&in);
}

TEST(delays_mem)
{
	delays(0);
}

TEST(delays_file)
{
	delays(1);
}

/*
 * fl_engine_destroy while a fault's read waits in the hold: the engine
 * tells the store to stop waiting (the cancel op) before it waits for its
 * threads, so destroy returns.  Bounded: if destroy has not returned after
 * 10 s, the hold is released so that the case can end, as a failure.  The
 * reader then sees the page or, its mapping gone, SIGSEGV.
 */
struct destroyer {
	fl_engine *e;
	int rc, done;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void *destroyer_main(void *arg)
{
	struct destroyer *d = arg;
	int rc = fl_engine_destroy(d->e);

	pthread_mutex_lock(&d->lock);
	d->rc = rc;
	d->done = 1;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

static int wait_destroyed(struct destroyer *d, int seconds)
{
	struct timespec ts;
	int ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	pthread_mutex_lock(&d->lock);
	while (!d->done)
		if (pthread_cond_timedwait(&d->cond, &d->lock, &ts) != 0)
			break;
	ok = d->done;
	pthread_mutex_unlock(&d->lock);
	return ok;
}

struct probe_read {
	unsigned char *p;
	unsigned char val;
	int signo;
};

static void *probe_reader(void *arg)
{
	struct probe_read *r = arg;

	r->signo = h_try_read(r->p, &r->val, NULL);
	return NULL;
}

static void destroy_while_held(int file)
{
	struct inner in;
	struct fl_store *st =
		faulty(inner_new(&in, file, 32 * PG, 216, O_RDONLY), NULL);
	struct destroyer d = {.e = h_engine_cfg(1, 1, 1)};
	struct probe_read r = {0};
	pthread_t reader, destroyer;
	fl_object *o = fl_object_create(d.e, st, O_RDONLY);

	REQUIRE(o != NULL);
	pthread_mutex_init(&d.lock, NULL);
	pthread_cond_init(&d.cond, NULL);
	r.p = h_map(d.e, 32 * PG, PROT_READ, MAP_SHARED, o, 0);
	r.p += 10 * PG + 5;
	CHECK_EQ(fl_store_faulty_hold(st, 10 * PG, PG), 0);
	REQUIRE(pthread_create(&reader, NULL, probe_reader, &r) == 0);
	REQUIRE(wait_held(st, 1));
	/* the object is left open: destroy releases it, store and all */
	REQUIRE(pthread_create(&destroyer, NULL, destroyer_main, &d) == 0);
	if (!wait_destroyed(&d, H_WAIT_SECONDS)) {
		h_fail(__FILE__, __LINE__,
		       "fl_engine_destroy waits for the held read");
		fl_store_faulty_release(st); /* still there: destroy is stuck */
	}
	pthread_join(destroyer, NULL);
	pthread_join(reader, NULL);
	CHECK_EQ(d.rc, 0);
	CHECK(r.signo == SIGSEGV ||
	      (r.signo == 0 && r.val == h_pattern(216, 10 * PG + 5)));
	pthread_mutex_destroy(&d.lock);
	pthread_cond_destroy(&d.cond);
	inner_done(&in);
}

TEST(destroy_while_read_held_mem)
{
	destroy_while_held(0);
}

TEST(destroy_while_read_held_file)
{
	destroy_while_held(1);
}

/*
 * The cancel op itself: a held read and a delayed write go on at once,
 * and later I/O neither waits in a hold nor sleeps; injected errors stay.
 */
struct direct_io {
	struct fl_store *st;
	void *buf;
	uint64_t off;
	int write;
	ssize_t r;
};

static void *direct_io_main(void *arg)
{
	struct direct_io *io = arg;

	io->r = io->write ? io->st->ops->write(io->st, io->buf, PG, io->off)
			  : io->st->ops->read(io->st, io->buf, PG, io->off);
	return NULL;
}

TEST(cancel_ends_holds_and_delays)
{
	struct inner in;
	struct fl_store_faults ff = {.write_delay_us = 3600ull * 1000000,
				     .fail_offset = 30 * PG,
				     .fail_length = PG};
	struct fl_store *st =
		faulty(inner_new(&in, 0, 32 * PG, 217, O_RDWR), &ff);
	static unsigned char rbuf[PG], wbuf[PG];
	struct direct_io rd = {st, rbuf, 4 * PG, 0, 0};
	struct direct_io wr = {st, wbuf, 8 * PG, 1, 0};
	pthread_t rt, wt;

	REQUIRE(st->ops->cancel != NULL);
	memset(wbuf, 0x5a, PG);
	CHECK_EQ(fl_store_faulty_hold(st, 0, 16 * PG), 0);
	REQUIRE(pthread_create(&rt, NULL, direct_io_main, &rd) == 0);
	REQUIRE(pthread_create(&wt, NULL, direct_io_main, &wr) == 0);
	REQUIRE(wait_held(st, 1));
	st->ops->cancel(st); /* the write sleeps an hour, the read is held */
	pthread_join(rt, NULL);
	pthread_join(wt, NULL);
	CHECK_EQ(rd.r, PG);
	CHECK_EQ(h_mismatch(rbuf, PG, 217, 4 * PG), -1);
	CHECK_EQ(wr.r, PG);
	CHECK_EQ(inner_differs(&in, 8 * PG, PG, 0x5a), -1);
	CHECK_EQ(fl_store_faulty_held(st), 0);
	/* later: no hold, no delay, errors as set */
	CHECK_EQ(fl_store_faulty_hold(st, 0, 32 * PG), 0);
	CHECK_EQ(st->ops->read(st, rbuf, PG, 5 * PG), PG);
	CHECK_EQ(st->ops->write(st, wbuf, PG, 9 * PG), PG);
	CHECK_ERR(st->ops->read(st, rbuf, PG, 30 * PG) == -1, EIO);
	st->ops->destroy(st);
	inner_done(&in);
}
