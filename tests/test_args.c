// SPDX-License-Identifier: MIT
/* Bad arguments: each call fails with the errno mmap(2) and friends would
 * give, and leaks nothing (the harness compares fds and threads around
 * every case; LeakSanitizer checks memory in the sanitizer build). */
#include "harness.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#define RW   (PROT_READ | PROT_WRITE)
#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)

struct env {
	struct h_file f;
	fl_engine *e;
	fl_object *rw, *ro;
};

static void env_up(struct env *v)
{
	h_file_create(&v->f, 8 * PG, 91);
	v->e = h_engine(1);
	v->rw = h_open(v->e, &v->f, O_RDWR);
	v->ro = h_open(v->e, &v->f, O_RDONLY);
}

static void env_down(struct env *v)
{
	CHECK_EQ(fl_object_close(v->rw), 0);
	CHECK_EQ(fl_object_close(v->ro), 0);
	CHECK_EQ(fl_engine_destroy(v->e), 0);
	h_file_remove(&v->f);
}

#define MMAP_FAILS(call, err) CHECK_ERR((call) == MAP_FAILED, err)

TEST(mmap_zero_length)
{
	struct env v;

	env_up(&v);
	MMAP_FAILS(fl_mmap(v.e, NULL, 0, RW, ANON, NULL, 0), EINVAL);
	MMAP_FAILS(fl_mmap(v.e, NULL, 0, PROT_READ, MAP_SHARED, v.rw, 0),
		   EINVAL);
	env_down(&v);
}

TEST(mmap_unaligned_offset)
{
	struct env v;

	env_up(&v);
	MMAP_FAILS(fl_mmap(v.e, NULL, PG, PROT_READ, MAP_SHARED, v.rw, 100),
		   EINVAL);
	MMAP_FAILS(fl_mmap(v.e, NULL, PG, PROT_READ, MAP_PRIVATE, v.rw, PG + 1),
		   EINVAL);
	env_down(&v);
}

TEST(mmap_unaligned_fixed_address)
{
	struct env v;
	unsigned char *p;

	env_up(&v);
	p = h_map(v.e, 4 * PG, RW, ANON, NULL, 0);
	MMAP_FAILS(fl_mmap(v.e, p + 10, PG, RW, ANON | MAP_FIXED, NULL, 0),
		   EINVAL);
	p[0] = 1; /* the existing mapping is untouched */
	CHECK_EQ(p[0], 1);
	CHECK_EQ(fl_munmap(v.e, p, 4 * PG), 0);
	env_down(&v);
}

TEST(mmap_shared_and_private)
{
	struct env v;

	env_up(&v);
	MMAP_FAILS(fl_mmap(v.e, NULL, PG, PROT_READ, MAP_SHARED | MAP_PRIVATE,
			   v.rw, 0),
		   EINVAL);
	MMAP_FAILS(fl_mmap(v.e, NULL, PG, PROT_READ, 0, v.rw, 0), EINVAL);
	MMAP_FAILS(fl_mmap(v.e, NULL, PG, RW, MAP_ANONYMOUS, NULL, 0), EINVAL);
	MMAP_FAILS(fl_mmap(v.e, NULL, PG, RW,
			   MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0),
		   EINVAL);
	env_down(&v);
}

TEST(mmap_bad_prot)
{
	struct env v;

	env_up(&v);
	MMAP_FAILS(fl_mmap(v.e, NULL, PG, PROT_READ | PROT_EXEC, ANON, NULL, 0),
		   EINVAL);
	MMAP_FAILS(fl_mmap(v.e, NULL, PG, PROT_EXEC, MAP_PRIVATE, v.rw, 0),
		   EINVAL);
	MMAP_FAILS(fl_mmap(v.e, NULL, PG, 0x100, ANON, NULL, 0), EINVAL);
	env_down(&v);
}

TEST(mmap_file_without_object)
{
	struct env v;

	env_up(&v);
	MMAP_FAILS(fl_mmap(v.e, NULL, PG, PROT_READ, MAP_SHARED, NULL, 0),
		   EBADF);
	MMAP_FAILS(fl_mmap(v.e, NULL, PG, RW, MAP_PRIVATE, NULL, 0), EBADF);
	env_down(&v);
}

TEST(mmap_anonymous_with_object)
{
	struct env v;

	env_up(&v);
	MMAP_FAILS(fl_mmap(v.e, NULL, PG, RW, ANON, v.rw, 0), EINVAL);
	env_down(&v);
}

TEST(mmap_shared_write_readonly_object)
{
	struct env v;
	void *p;

	env_up(&v);
	MMAP_FAILS(fl_mmap(v.e, NULL, PG, RW, MAP_SHARED, v.ro, 0), EACCES);
	MMAP_FAILS(fl_mmap(v.e, NULL, PG, PROT_WRITE, MAP_SHARED, v.ro, 0),
		   EACCES);
	/* allowed: shared read-only, private writable */
	p = fl_mmap(v.e, NULL, PG, PROT_READ, MAP_SHARED, v.ro, 0);
	CHECK(p != MAP_FAILED);
	if (p != MAP_FAILED)
		CHECK_EQ(fl_munmap(v.e, p, PG), 0);
	p = fl_mmap(v.e, NULL, PG, RW, MAP_PRIVATE, v.ro, 0);
	CHECK(p != MAP_FAILED);
	if (p != MAP_FAILED)
		CHECK_EQ(fl_munmap(v.e, p, PG), 0);
	env_down(&v);
}

TEST(mprotect_write_shared_readonly_object)
{
	struct env v;
	unsigned char *p, *q;

	env_up(&v);
	p = h_map(v.e, 4 * PG, PROT_READ, MAP_SHARED, v.ro, 0);
	CHECK_ERR(fl_mprotect(v.e, p, 4 * PG, RW) == -1, EACCES);
	CHECK_ERR(fl_mprotect(v.e, p + PG, PG, PROT_WRITE) == -1, EACCES);
	/* still readable, still read-only */
	CHECK_EQ(h_mismatch(p, 4 * PG, 91, 0), -1);
	CHECK_EQ(h_try_write(p + PG, 0, NULL), SIGSEGV);
	/* PROT_NONE and back to PROT_READ is fine */
	CHECK_EQ(fl_mprotect(v.e, p, 4 * PG, PROT_NONE), 0);
	CHECK_EQ(fl_mprotect(v.e, p, 4 * PG, PROT_READ), 0);
	CHECK_EQ(p[5], h_pattern(91, 5));
	/* a private mapping of it may become writable */
	q = h_map(v.e, 4 * PG, PROT_READ, MAP_PRIVATE, v.ro, 0);
	CHECK_EQ(fl_mprotect(v.e, q, 4 * PG, RW), 0);
	CHECK_EQ(h_try_write(q + PG, 0, NULL), 0);
	CHECK_EQ(fl_munmap(v.e, p, 4 * PG), 0);
	CHECK_EQ(fl_munmap(v.e, q, 4 * PG), 0);
	env_down(&v);
}

TEST(object_open_errors)
{
	struct env v;
	char path[300];

	env_up(&v);
	snprintf(path, sizeof(path), "%s/no-such-file", h_tmpdir());
	CHECK_ERR(fl_object_open(v.e, path, O_RDONLY) == NULL, ENOENT);
	CHECK_ERR(fl_object_open(v.e, h_tmpdir(), O_RDONLY) == NULL, EISDIR);
	CHECK_ERR(fl_object_open(v.e, h_tmpdir(), O_RDWR) == NULL, EISDIR);
	CHECK_ERR(fl_object_open(v.e, v.f.path, O_WRONLY) == NULL, EINVAL);
	CHECK_ERR(fl_object_open(v.e, v.f.path, O_ACCMODE) == NULL, EINVAL);
	CHECK_ERR(fl_object_open(v.e, NULL, O_RDONLY) == NULL, EINVAL);
	CHECK_ERR(fl_object_open(NULL, v.f.path, O_RDONLY) == NULL, EINVAL);
	env_down(&v);
}

TEST(null_engine)
{
	struct fl_stats s;
	char c;

	CHECK_ERR(fl_engine_destroy(NULL) == -1, EINVAL);
	CHECK_ERR(fl_object_close(NULL) == -1, EINVAL);
	MMAP_FAILS(fl_mmap(NULL, NULL, PG, RW, ANON, NULL, 0), EINVAL);
	CHECK_ERR(fl_munmap(NULL, &c, PG) == -1, EINVAL);
	CHECK_ERR(fl_mprotect(NULL, &c, PG, PROT_READ) == -1, EINVAL);
	CHECK_ERR(fl_madvise(NULL, &c, PG, MADV_NORMAL) == -1, EINVAL);
	CHECK_ERR(fl_msync(NULL, &c, PG, MS_SYNC) == -1, EINVAL);
	CHECK_ERR(fl_engine_stats(NULL, &s) == -1, EINVAL);
	CHECK_ERR(fl_mapping_stats(NULL, &c, &s) == -1, EINVAL);
}

TEST(munmap_errors)
{
	struct env v;
	unsigned char *p;

	env_up(&v);
	p = h_map(v.e, 4 * PG, RW, ANON, NULL, 0);
	p[PG] = 3;
	CHECK_ERR(fl_munmap(v.e, p + 1, PG) == -1, EINVAL);
	CHECK_ERR(fl_munmap(v.e, p, 0) == -1, EINVAL);
	CHECK_EQ(p[PG], 3); /* still mapped */
	CHECK_EQ(fl_munmap(v.e, p, 4 * PG), 0);
	env_down(&v);
}

/* Ranges not (wholly) mapped by faultline: ENOMEM; unaligned: EINVAL. */
TEST(range_calls_on_unmapped)
{
	struct env v;
	unsigned char *p, *hole;
	struct fl_stats s;

	env_up(&v);
	p = h_map(v.e, 4 * PG, RW, MAP_SHARED, v.rw, 0);
	hole = h_map(v.e, 4 * PG, RW, ANON, NULL, 0);
	CHECK_EQ(fl_munmap(v.e, hole, 4 * PG), 0);
	CHECK_ERR(fl_mprotect(v.e, hole, PG, PROT_READ) == -1, ENOMEM);
	CHECK_ERR(fl_madvise(v.e, hole, PG, MADV_DONTNEED) == -1, ENOMEM);
	CHECK_ERR(fl_madvise(v.e, hole, PG, MADV_NORMAL) == -1, ENOMEM);
	CHECK_ERR(fl_msync(v.e, hole, PG, MS_SYNC) == -1, ENOMEM);
	CHECK_ERR(fl_mapping_stats(v.e, hole, &s) == -1, EINVAL);
	CHECK_ERR(fl_mapping_stats(v.e, hole + 3 * PG + 5, &s) == -1, EINVAL);
	/* partly mapped: the mapping plus a page beyond it */
	CHECK_ERR(fl_msync(v.e, p, 5 * PG, MS_SYNC) == -1, ENOMEM);
	CHECK_ERR(fl_mprotect(v.e, p + PG, 4 * PG, PROT_READ) == -1, ENOMEM);
	CHECK_ERR(fl_madvise(v.e, p + 3 * PG, 2 * PG, MADV_WILLNEED) == -1,
		  ENOMEM);
	/* unaligned */
	CHECK_ERR(fl_mprotect(v.e, p + 1, PG, PROT_READ) == -1, EINVAL);
	CHECK_ERR(fl_madvise(v.e, p + 1, PG, MADV_NORMAL) == -1, EINVAL);
	CHECK_ERR(fl_msync(v.e, p + 1, PG, MS_SYNC) == -1, EINVAL);
	/* the mapping works and is still writable */
	p[2 * PG] = 0x12;
	CHECK_EQ(p[2 * PG], 0x12);
	CHECK_EQ(fl_mapping_stats(v.e, p + 2 * PG + 7, &s), 0);
	CHECK_EQ(fl_munmap(v.e, p, 4 * PG), 0);
	env_down(&v);
}

TEST(bad_advice_and_flags)
{
	struct env v;
	unsigned char *p;

	env_up(&v);
	p = h_map(v.e, 4 * PG, RW, MAP_SHARED, v.rw, 0);
	CHECK_ERR(fl_madvise(v.e, p, PG, 9999) == -1, EINVAL);
	CHECK_ERR(fl_madvise(v.e, p, PG, -1) == -1, EINVAL);
	CHECK_ERR(fl_msync(v.e, p, PG, 0x1000) == -1, EINVAL);
	CHECK_ERR(fl_mprotect(v.e, p, PG, PROT_EXEC | PROT_READ) == -1, EINVAL);
	CHECK_ERR(fl_mprotect(v.e, p, PG, 0x100) == -1, EINVAL);
	/* the good ones */
	CHECK_EQ(fl_madvise(v.e, p, 4 * PG, MADV_RANDOM), 0);
	CHECK_EQ(fl_madvise(v.e, p, 4 * PG, MADV_SEQUENTIAL), 0);
	CHECK_EQ(fl_madvise(v.e, p, 4 * PG, MADV_WILLNEED), 0);
	CHECK_EQ(fl_madvise(v.e, p, 4 * PG, MADV_NORMAL), 0);
	CHECK_EQ(h_mismatch(p, 4 * PG, 91, 0), -1);
	CHECK_EQ(fl_msync(v.e, p, 4 * PG, MS_SYNC | MS_INVALIDATE), 0);
	CHECK_EQ(fl_munmap(v.e, p, 4 * PG), 0);
	env_down(&v);
}

/* Objects made from stores: EACCES for a read-only store asked O_RDWR; the
 * store stays the caller's. */
TEST(object_create_errors)
{
	struct env v;
	struct fl_store *st;
	fl_object *o;
	char path[300];

	env_up(&v);
	st = fl_store_file_open(v.f.path, O_RDONLY);
	REQUIRE(st != NULL);
	CHECK(st->read_only);
	CHECK_ERR(fl_object_create(v.e, st, O_RDWR) == NULL, EACCES);
	CHECK_ERR(fl_object_create(NULL, st, O_RDONLY) == NULL, EINVAL);
	CHECK_ERR(fl_object_create(v.e, NULL, O_RDONLY) == NULL, EINVAL);
	o = fl_object_create(v.e, st, O_RDONLY);
	CHECK(o != NULL);
	if (o)
		CHECK_EQ(fl_object_close(o), 0);
	else
		st->ops->destroy(st);
	snprintf(path, sizeof(path), "%s/no-such-file", h_tmpdir());
	CHECK_ERR(fl_store_file_open(path, O_RDONLY) == NULL, ENOENT);
	CHECK_ERR(fl_store_file_open(h_tmpdir(), O_RDONLY) == NULL, EISDIR);
	env_down(&v);
}

/* Many failing calls in a row leak nothing: count fds before and after. */
TEST(failures_leak_nothing)
{
	struct env v;
	int fds0, threads0;
	char path[300];

	env_up(&v);
	fds0 = h_count_fds();
	threads0 = h_count_threads();
	snprintf(path, sizeof(path), "%s/no-such-file", h_tmpdir());
	for (int i = 0; i < 200; i++) {
		errno = 0;
		CHECK(fl_object_open(v.e, path, O_RDONLY) == NULL);
		CHECK(fl_object_open(v.e, h_tmpdir(), O_RDONLY) == NULL);
		CHECK(fl_object_open(v.e, v.f.path, O_WRONLY) == NULL);
		CHECK(fl_mmap(v.e, NULL, PG, RW, MAP_SHARED, v.ro, 0) ==
		      MAP_FAILED);
		CHECK(fl_mmap(v.e, NULL, PG, PROT_READ, MAP_SHARED, v.rw,
			      100) == MAP_FAILED);
		CHECK(fl_mmap(v.e, NULL, 0, RW, ANON, NULL, 0) == MAP_FAILED);
		if (h_failures())
			break;
	}
	CHECK_EQ(h_count_fds(), fds0);
	CHECK_EQ(h_count_threads(), threads0);
	env_down(&v);
}

/* A length that wraps around the address space is refused, not a no-op. */
TEST(length_wraps_around)
{
	fl_engine *e = h_engine(1);
	unsigned char *p = h_map(e, 4 * PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);

	CHECK_ERR(fl_munmap(e, p, SIZE_MAX), EINVAL);
	CHECK_ERR(fl_madvise(e, p, SIZE_MAX - 100, MADV_NORMAL), EINVAL);
	/* mprotect(2) and msync(2) say ENOMEM: not all of it is mapped */
	CHECK_ERR(fl_mprotect(e, p, SIZE_MAX, PROT_READ), ENOMEM);
	CHECK_ERR(fl_mprotect(e, p, SIZE_MAX - 3 * PG, PROT_READ), ENOMEM);
	CHECK_ERR(fl_msync(e, p, SIZE_MAX, MS_SYNC), ENOMEM);
	CHECK_ERR(fl_msync(e, p, SIZE_MAX - 3 * PG, MS_SYNC), ENOMEM);
	p[0] = 1; /* still mapped */
	CHECK_EQ(fl_munmap(e, p, 4 * PG), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/* Anonymous memory has no object and no offset: a non-zero offset is
 * EINVAL (mmap(2) says it should be zero), aligned or not. */
TEST(mmap_anonymous_offset)
{
	struct env v;

	env_up(&v);
	MMAP_FAILS(fl_mmap(v.e, NULL, PG, RW, ANON, NULL, PG), EINVAL);
	MMAP_FAILS(fl_mmap(v.e, NULL, PG, RW, MAP_SHARED | MAP_ANONYMOUS, NULL,
			   PG),
		   EINVAL);
	MMAP_FAILS(fl_mmap(v.e, NULL, PG, RW, ANON, NULL, 100), EINVAL);
	MMAP_FAILS(fl_mmap(v.e, NULL, PG, RW, ANON, NULL, -PG), EINVAL);
	env_down(&v);
}

/* Lengths no address space holds are ENOMEM, as with mmap(2), also when
 * rounding up to a page wraps around; nothing is changed by them. */
TEST(mmap_huge_length)
{
	static const size_t huge[] = {(size_t)1 << 62, SIZE_MAX,
				      SIZE_MAX - PG + 1, SIZE_MAX - 3 * PG};
	struct env v;
	unsigned char *p;

	env_up(&v);
	p = h_map(v.e, 4 * PG, RW, ANON, NULL, 0);
	p[PG] = 6;
	for (size_t i = 0; i < sizeof(huge) / sizeof(huge[0]); i++) {
		MMAP_FAILS(fl_mmap(v.e, NULL, huge[i], RW, ANON, NULL, 0),
			   ENOMEM);
		MMAP_FAILS(fl_mmap(v.e, NULL, huge[i], RW,
				   MAP_SHARED | MAP_ANONYMOUS, NULL, 0),
			   ENOMEM);
		MMAP_FAILS(fl_mmap(v.e, NULL, huge[i], PROT_READ, MAP_SHARED,
				   v.rw, 0),
			   ENOMEM);
		MMAP_FAILS(
			fl_mmap(v.e, p, huge[i], RW, ANON | MAP_FIXED, NULL, 0),
			ENOMEM);
	}
	CHECK_EQ(p[PG], 6); /* the mapping MAP_FIXED would have replaced */
	CHECK_EQ(fl_munmap(v.e, p, 4 * PG), 0);
	env_down(&v);
}

/* An offset past the largest file offset (negative, or with the length
 * beyond INT64_MAX) is EOVERFLOW, as with mmap(2); unaligned is EINVAL. */
TEST(mmap_offset_overflow)
{
	const off_t last = INT64_MAX & ~(off_t)(PG - 1);
	struct env v;
	void *p;

	env_up(&v);
	MMAP_FAILS(fl_mmap(v.e, NULL, PG, PROT_READ, MAP_SHARED, v.rw, last),
		   EOVERFLOW);
	MMAP_FAILS(fl_mmap(v.e, NULL, 2 * PG, PROT_READ, MAP_PRIVATE, v.rw,
			   last - PG),
		   EOVERFLOW);
	MMAP_FAILS(fl_mmap(v.e, NULL, PG, PROT_READ, MAP_SHARED, v.rw, -PG),
		   EOVERFLOW);
	MMAP_FAILS(fl_mmap(v.e, NULL, PG, PROT_READ, MAP_SHARED, v.rw, -100),
		   EINVAL);
	/* the last page that fits is fine: it lies beyond the object, so
	 * touching it would raise SIGBUS */
	p = fl_mmap(v.e, NULL, PG, PROT_READ, MAP_SHARED, v.rw, last - PG);
	CHECK(p != MAP_FAILED);
	if (p != MAP_FAILED)
		CHECK_EQ(fl_munmap(v.e, p, PG), 0);
	env_down(&v);
}

/*
 * Two threads racing to close the same object: exactly one close succeeds,
 * the other gets EINVAL, and the object lives on for its mapping (two
 * closes that both succeeded dropped the mapping's reference too: use after
 * free).  The race is a few instructions wide: the two closers go through
 * a batch of objects in lock step, each close starting as the other
 * thread's last one ends, many times over.
 */
#define CLOSE_BATCH  200
#define CLOSE_ROUNDS 10

static ssize_t zero_read(struct fl_store *s, void *buf, size_t len,
			 uint64_t off)
{
	(void)s;
	(void)off;
	memset(buf, 0, len);
	return (ssize_t)len;
}

static int64_t zero_size(struct fl_store *s)
{
	(void)s;
	return 4 * PG;
}

static void zero_destroy(struct fl_store *s)
{
	free(s);
}

static const struct fl_store_ops zero_ops = {
	.read = zero_read, .size = zero_size, .destroy = zero_destroy};

struct closers {
	fl_object *o[CLOSE_BATCH];
	_Atomic int done[CLOSE_BATCH];
	_Atomic int ok, einval;
};

static void closer(int idx, void *arg)
{
	struct closers *c = arg;

	(void)idx;
	for (int i = 0; i < CLOSE_BATCH; i++) {
		if (fl_object_close(c->o[i]) == 0)
			atomic_fetch_add(&c->ok, 1);
		else if (errno == EINVAL)
			atomic_fetch_add(&c->einval, 1);
		atomic_fetch_add(&c->done[i], 1);
		/* Spin, so that the next closes start together; yield now and
		 * then, for a busy machine may have only one of us running. */
		for (unsigned spins = 1; atomic_load(&c->done[i]) < 2; spins++)
			if (spins % 4096 == 0)
				sched_yield();
	}
}

TEST(close_races_close)
{
	fl_engine *e = h_engine(1);
	static struct closers c;
	unsigned char *p[CLOSE_BATCH];

	for (int round = 0; round < CLOSE_ROUNDS && !h_failures(); round++) {
		memset(&c, 0, sizeof(c));
		for (int i = 0; i < CLOSE_BATCH; i++) {
			struct fl_store *st = calloc(1, sizeof(*st));

			REQUIRE(st != NULL);
			st->ops = &zero_ops;
			st->read_only = 1;
			c.o[i] = fl_object_create(e, st, O_RDONLY);
			REQUIRE(c.o[i] != NULL);
			p[i] = h_map(e, 4 * PG, PROT_READ, MAP_SHARED, c.o[i],
				     0);
		}
		h_run_threads(2, closer, &c);
		CHECK_EQ(c.ok, CLOSE_BATCH);
		CHECK_EQ(c.einval, CLOSE_BATCH);
		for (int i = 0; i < CLOSE_BATCH; i++) {
			CHECK_ERR(fl_object_close(c.o[i]) == -1, EINVAL);
			CHECK_EQ(p[i][PG], 0); /* the object is still there */
			CHECK_EQ(fl_munmap(e, p[i], 4 * PG), 0); /* last ref */
		}
	}
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/* A zero length is fine for mprotect, madvise and msync, as for the system
 * calls (not for munmap): nothing is done.  Bad advice or flags are still
 * refused. */
TEST(zero_length_range_calls)
{
	fl_engine *e = h_engine(1);
	unsigned char *p = h_map(e, 4 * PG, RW, ANON, NULL, 0);

	p[PG] = 4;
	CHECK_EQ(fl_mprotect(e, p + PG, 0, PROT_READ), 0);
	CHECK_EQ(fl_madvise(e, p + PG, 0, MADV_DONTNEED), 0);
	CHECK_EQ(fl_msync(e, p + PG, 0, MS_SYNC), 0);
	CHECK_ERR(fl_madvise(e, p + PG, 0, 9999) == -1, EINVAL);
	CHECK_ERR(fl_msync(e, p + PG, 0, MS_SYNC | MS_ASYNC) == -1, EINVAL);
	CHECK_ERR(fl_munmap(e, p + PG, 0) == -1, EINVAL);
	p[PG]++; /* still writable, still there */
	CHECK_EQ(p[PG], 5);
	CHECK_EQ(fl_munmap(e, p, 4 * PG), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/* A store whose size op fails: its errno, or EIO if it set none (was:
 * NULL with errno 0).  The store stays the caller's. */
static int size_errno;

static int64_t failing_size(struct fl_store *st)
{
	(void)st;
	if (size_errno)
		errno = size_errno;
	return -1;
}

static const struct fl_store_ops failing_size_ops = {
	.read = zero_read, .size = failing_size, .destroy = zero_destroy};

TEST(object_create_size_fails)
{
	fl_engine *e = h_engine(1);
	struct fl_store st = {.ops = &failing_size_ops, .read_only = 1};

	size_errno = 0;
	CHECK_ERR(fl_object_create(e, &st, O_RDONLY) == NULL, EIO);
	size_errno = ENXIO;
	CHECK_ERR(fl_object_create(e, &st, O_RDONLY) == NULL, ENXIO);
	CHECK_EQ(fl_engine_destroy(e), 0);
}
