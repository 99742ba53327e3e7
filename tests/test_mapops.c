// SPDX-License-Identifier: MIT
/* munmap and mprotect of parts of mappings (splits), MAP_FIXED. */
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/mman.h>

#define NPAGES 16

static unsigned char buf[NPAGES * PG];

static int segv_at(void *p, int write)
{
	struct h_sig sig;
	int r = write ? h_try_write(p, 1, &sig) : h_try_read(p, NULL, &sig);

	return r == SIGSEGV && (uintptr_t)sig.addr >> 12 == (uintptr_t)p >> 12;
}

/* After the page at p was unmapped (a hole, or the whole mapping): a read
 * there faults, or, if another thread's mmap took the freed range
 * meanwhile (the sanitizers' allocators do, beside the engine's threads),
 * the engine knows no mapping there any more (said, so that a run shows
 * which it was). */
static int unmapped(fl_engine *e, void *p)
{
	struct fl_stats m;

	if (segv_at(p, 0))
		return 1;
	printf("  (%p was mapped again by another thread: checked the engine "
	       "has no mapping there)\n",
	       p);
	return fl_mapping_stats(e, p, &m) == -1 && errno == EINVAL;
}

/* Unmap the middle of an anonymous mapping: the ends keep their data and
 * keep faulting; the hole is gone. */
TEST(partial_munmap_anon)
{
	fl_engine *e = h_engine(2);
	unsigned char *p = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	struct fl_stats m;

	for (int i = 0; i < NPAGES; i += 2)
		memset(p + (size_t)i * PG, i + 1, PG);
	CHECK_EQ(fl_munmap(e, p + 4 * PG, 4 * PG), 0);
	for (int i = 0; i < NPAGES; i++) {
		if (i >= 4 && i < 8) {
			CHECK(unmapped(e, p + (size_t)i * PG));
			continue;
		}
		CHECK_EQ(p[(size_t)i * PG + 10], i % 2 ? 0 : i + 1);
	}
	/* new faults in both parts, on pages never touched */
	p[3 * PG] = 0x33;
	p[11 * PG] = 0x44;
	CHECK_EQ(p[3 * PG], 0x33);
	CHECK_EQ(p[11 * PG], 0x44);
	CHECK_EQ(fl_mapping_stats(e, p + 4 * PG, &m), -1);
	CHECK_EQ(fl_mapping_stats(e, p + 7 * PG, &m), -1);
	CHECK_EQ(fl_mapping_stats(e, p, &m), 0);
	CHECK_EQ(fl_mapping_stats(e, p + 8 * PG, &m), 0);
	/* unmap the first and the last page */
	CHECK_EQ(fl_munmap(e, p, PG), 0);
	CHECK_EQ(fl_munmap(e, p + 15 * PG, PG), 0);
	CHECK(unmapped(e, p));
	CHECK(unmapped(e, p + 15 * PG));
	CHECK_EQ(p[PG], 0);
	CHECK_EQ(p[2 * PG], 3);
	CHECK_EQ(p[14 * PG], 15);
	/* unmap everything, over the holes too */
	CHECK_EQ(fl_munmap(e, p, NPAGES * PG), 0);
	CHECK(unmapped(e, p + 2 * PG));
	CHECK_EQ(fl_munmap(e, p, NPAGES * PG), 0); /* nothing there: fine */
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/* Split a shared file mapping: each part keeps its file offset for reads,
 * stores and writeback. */
TEST(partial_munmap_file)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;

	h_file_create(&f, 32 * PG, 81);
	o = h_open(e, &f, O_RDWR);
	/* map file pages 8..23 */
	p = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o,
		  8 * PG);
	CHECK_EQ(p[0], h_pattern(81, 8 * PG));
	CHECK_EQ(fl_munmap(e, p + 5 * PG, 3 * PG), 0);
	CHECK(unmapped(e, p + 6 * PG));
	/* the tail part, file pages 16..23, untouched so far */
	CHECK_EQ(h_mismatch(p + 8 * PG, 8 * PG, 81, 16 * PG), -1);
	CHECK_EQ(h_mismatch(p, 5 * PG, 81, 8 * PG), -1);
	p[9 * PG] = 0xab; /* file page 17 */
	p[1 * PG] = 0xcd; /* file page 9 */
	CHECK_EQ(fl_msync(e, p + 8 * PG, 8 * PG, MS_SYNC), 0);
	CHECK_EQ(fl_msync(e, p, 5 * PG, MS_SYNC), 0);
	CHECK_EQ(h_pread(f.path, buf, PG, 17 * PG), PG);
	CHECK_EQ(buf[0], 0xab);
	CHECK_EQ(h_mismatch(buf + 1, PG - 1, 81, 17 * PG + 1), -1);
	CHECK_EQ(h_pread(f.path, buf, PG, 9 * PG), PG);
	CHECK_EQ(buf[0], 0xcd);
	CHECK_EQ(h_mismatch(buf + 1, PG - 1, 81, 9 * PG + 1), -1);
	/* nothing else in the file changed */
	CHECK_EQ(h_pread(f.path, buf, 8 * PG, 0), 8 * PG);
	CHECK_EQ(h_mismatch(buf, 8 * PG, 81, 0), -1);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* Make the middle read-only, then inaccessible, then writable again. */
TEST(partial_mprotect_anon)
{
	fl_engine *e = h_engine(2);
	unsigned char *p = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);

	for (int i = 0; i < 8; i++)
		p[(size_t)i * PG] = (unsigned char)(i + 1);
	CHECK_EQ(fl_mprotect(e, p + 2 * PG, 8 * PG, PROT_READ), 0);
	CHECK(segv_at(p + 2 * PG, 1));
	CHECK(segv_at(p + 9 * PG, 1)); /* never touched */
	CHECK_EQ(p[2 * PG], 3);
	CHECK_EQ(p[9 * PG], 0);
	p[PG] = 0x10; /* the parts outside are still writable */
	p[10 * PG] = 0x11;
	CHECK_EQ(p[PG], 0x10);
	CHECK_EQ(p[10 * PG], 0x11);
	CHECK_EQ(fl_mprotect(e, p + 4 * PG, 2 * PG, PROT_NONE), 0);
	CHECK(segv_at(p + 4 * PG, 0));
	CHECK(segv_at(p + 5 * PG, 0));
	CHECK_EQ(p[3 * PG], 4);
	CHECK_EQ(p[6 * PG], 7);
	CHECK_EQ(fl_mprotect(e, p, NPAGES * PG, PROT_READ | PROT_WRITE), 0);
	for (int i = 2; i < 8; i++)
		CHECK_EQ(p[(size_t)i * PG], i + 1);
	p[4 * PG] = 0x20;
	p[9 * PG] = 0x21;
	CHECK_EQ(p[4 * PG], 0x20);
	CHECK_EQ(p[9 * PG], 0x21);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/* mprotect a shared file mapping read-only and back: stores after it are
 * still seen, dirtied and written back. */
TEST(mprotect_shared_file)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;
	struct fl_stats s0;

	h_file_create(&f, NPAGES * PG, 82);
	o = h_open(e, &f, O_RDWR);
	p = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	p[PG] = 1;
	CHECK_EQ(fl_msync(e, p, NPAGES * PG, MS_SYNC), 0);
	CHECK_EQ(fl_mprotect(e, p, 8 * PG, PROT_READ), 0);
	CHECK(segv_at(p + PG, 1));
	CHECK(segv_at(p + 3 * PG, 1));
	CHECK_EQ(p[PG], 1);
	CHECK_EQ(h_mismatch(p + 2 * PG, 6 * PG, 82, 2 * PG), -1);
	CHECK_EQ(fl_mprotect(e, p, 8 * PG, PROT_READ | PROT_WRITE), 0);
	s0 = h_estats(e);
	p[PG] = 2;
	p[3 * PG] = 3;
	CHECK_EQ(h_estats(e).dirty_pages, 2);
	CHECK_EQ(fl_msync(e, p, NPAGES * PG, MS_SYNC), 0);
	CHECK_GE(h_estats(e).pages_written - s0.pages_written, 2);
	CHECK_EQ(h_pread(f.path, buf, NPAGES * PG, 0), NPAGES * PG);
	CHECK_EQ(buf[PG], 2);
	CHECK_EQ(buf[3 * PG], 3);
	CHECK_EQ(h_mismatch(buf, PG, 82, 0), -1);
	CHECK_EQ(h_mismatch(buf + 4 * PG, 12 * PG, 82, 4 * PG), -1);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* MAP_FIXED over part of an existing faultline mapping replaces it. */
TEST(map_fixed_replaces)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p, *q;
	struct fl_stats m;

	h_file_create(&f, 8 * PG, 83);
	o = h_open(e, &f, O_RDONLY);
	p = h_map(e, 6 * PG, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	memset(p, 0x66, 6 * PG);
	q = fl_mmap(e, p + 2 * PG, 2 * PG, PROT_READ, MAP_SHARED | MAP_FIXED, o,
		    4 * PG);
	CHECK(q == p + 2 * PG);
	if (q == p + 2 * PG) {
		CHECK_EQ(h_mismatch(q, 2 * PG, 83, 4 * PG), -1);
		CHECK(segv_at(q, 1)); /* PROT_READ now */
		m = h_mstats(e, q);
		CHECK_GT(m.minor_faults + m.major_faults, 0);
		CHECK_EQ(m.zero_fills, 0);
	}
	for (size_t i = 0; i < 6 * PG; i += 100)
		if ((i < 2 * PG || i >= 4 * PG) && p[i] != 0x66) {
			h_fail(__FILE__, __LINE__, "byte %zu is %d", i, p[i]);
			break;
		}
	/* replace the whole of it with fresh anonymous memory */
	q = fl_mmap(e, p, 6 * PG, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, NULL, 0);
	CHECK(q == p);
	if (q == p)
		CHECK_EQ(h_nonzero(p, 6 * PG), -1);
	CHECK_EQ(fl_munmap(e, p, 6 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* MAP_FIXED_NOREPLACE over a mapping: EEXIST, the old one is intact. */
TEST(map_fixed_noreplace)
{
	fl_engine *e = h_engine(1);
	unsigned char *p = h_map(e, 4 * PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	void *q;

	p[PG] = 9;
	CHECK_ERR(fl_mmap(e, p + PG, PG, PROT_READ,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
			  NULL, 0) == MAP_FAILED,
		  EEXIST);
	CHECK_EQ(p[PG], 9);
	CHECK_EQ(fl_munmap(e, p + 2 * PG, 2 * PG), 0);
	q = fl_mmap(e, p + 2 * PG, 2 * PG, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, NULL, 0);
	CHECK(q == p + 2 * PG);
	if (q == p + 2 * PG) {
		p[3 * PG] = 7;
		CHECK_EQ(p[3 * PG], 7);
	}
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/* MAP_FIXED at an address the program holds with mmap(2). */
TEST(map_fixed_over_plain_memory)
{
	fl_engine *e = h_engine(1);
	unsigned char *r = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *q;

	REQUIRE(r != MAP_FAILED);
	memset(r, 0x55, 4 * PG);
	q = fl_mmap(e, r, 4 * PG, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED, NULL, 0);
	CHECK(q == r);
	if (q == r) {
		CHECK_EQ(h_nonzero(q, 4 * PG), -1);
		q[PG] = 1;
		CHECK_EQ(q[PG], 1);
		CHECK_EQ(h_estats(e).zero_fills > 0, 1);
		CHECK_EQ(fl_munmap(e, q, 4 * PG), 0);
	} else {
		munmap(r, 4 * PG);
	}
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/* Split a mapping into many pieces, then unmap them one by one. */
TEST(many_splits)
{
	fl_engine *e = h_engine(2);
	unsigned char *p = h_map(e, 64 * PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);

	for (int i = 0; i < 64; i++)
		p[(size_t)i * PG] = (unsigned char)i;
	for (int i = 1; i < 64; i += 3)
		CHECK_EQ(fl_mprotect(e, p + (size_t)i * PG, PG, PROT_READ), 0);
	for (int i = 0; i < 64; i++)
		CHECK_EQ(p[(size_t)i * PG], i);
	for (int i = 0; i < 64; i += 2)
		CHECK_EQ(fl_munmap(e, p + (size_t)i * PG, PG), 0);
	for (int i = 1; i < 64; i += 2)
		CHECK_EQ(p[(size_t)i * PG], i);
	CHECK(unmapped(e, p + 10 * PG));
	CHECK_EQ(fl_munmap(e, p, 64 * PG), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/*
 * MADV_DONTNEED drops a file mapping's view; every page must fault back in
 * whatever the access pattern (reads of every 3rd, 5th, 7th page after a
 * first strided pass exercise fault-around over partly populated ranges).
 */
static void dontneed_refault(int flags)
{
	static const int strides[] = {1, 2, 3, 5, 7, 17};
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;

	h_file_create(&f, 256 * PG, 84);
	o = h_open(e, &f, O_RDONLY);
	p = h_map(e, 256 * PG, PROT_READ, flags, o, 0);
	for (size_t i = 0; i < sizeof(strides) / sizeof(strides[0]); i++) {
		for (int round = 0; round < 2; round++) {
			for (int pg = 0; pg < 256; pg += strides[i])
				CHECK_EQ(p[(size_t)pg * PG + 100],
					 h_pattern(84, (size_t)pg * PG + 100));
			CHECK_EQ(fl_madvise(e, p, 256 * PG, MADV_DONTNEED), 0);
		}
		if (h_failures())
			break;
	}
	CHECK_EQ(h_mismatch(p, 256 * PG, 84, 0), -1);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

TEST(dontneed_refault_shared)
{
	dontneed_refault(MAP_SHARED);
}

TEST(dontneed_refault_private)
{
	dontneed_refault(MAP_PRIVATE);
}

/* Whether every byte of p[0..len) reads as byte (SIGSEGV/SIGBUS caught). */
static int reads_as(const unsigned char *p, size_t len, unsigned char byte)
{
	for (size_t i = 0; i < len; i += 512) {
		unsigned char v;

		if (h_try_read(p + i, &v, NULL) != 0 || v != byte)
			return 0;
	}
	return 1;
}

/*
 * A failed MAP_FIXED_NOREPLACE leaves the address space as it was: over
 * memory the program holds with mmap(2), and over another engine's mapping
 * (neither is faultline's to unmap).
 */
TEST(failed_noreplace_keeps_what_is_there)
{
	static const int flags[] = {MAP_FIXED_NOREPLACE,
				    MAP_FIXED_NOREPLACE | MAP_FIXED};
	fl_engine *e = h_engine(1), *other = h_engine(1);
	unsigned char *r = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unsigned char *q = h_map(other, 4 * PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);

	REQUIRE(r != MAP_FAILED);
	memset(r, 0x55, 4 * PG);
	memset(q, 0x77, 4 * PG);
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		int anon = flags[i] | MAP_PRIVATE | MAP_ANONYMOUS;
		int shared = flags[i] | MAP_SHARED | MAP_ANONYMOUS;

		CHECK_ERR(fl_mmap(e, r + PG, 2 * PG, PROT_READ, anon, NULL,
				  0) == MAP_FAILED,
			  EEXIST);
		CHECK_ERR(fl_mmap(e, r, 4 * PG, PROT_READ, shared, NULL, 0) ==
				  MAP_FAILED,
			  EEXIST);
		CHECK_ERR(fl_mmap(e, q + PG, PG, PROT_READ, anon, NULL, 0) ==
				  MAP_FAILED,
			  EEXIST);
		CHECK(reads_as(r, 4 * PG, 0x55));
		CHECK(reads_as(q, 4 * PG, 0x77));
	}
	CHECK_EQ(h_estats(e).fault_messages, 0);
	CHECK_EQ(munmap(r, 4 * PG), 0);
	CHECK_EQ(fl_munmap(other, q, 4 * PG), 0);
	CHECK_EQ(fl_engine_destroy(other), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/*
 * MAP_FIXED with an offset + length past the largest file offset fails
 * with EOVERFLOW, as mmap(2) does, before anything changes: the mappings
 * it would have replaced (faultline's, and plain memory) keep their data.
 */
TEST(map_fixed_overflow_keeps_old_mapping)
{
	struct h_file f;
	fl_engine *e = h_engine(1);
	fl_object *o;
	unsigned char *p, *r;
	const off_t last = INT64_MAX & ~(off_t)(PG - 1);

	h_file_create(&f, 8 * PG, 85);
	o = h_open(e, &f, O_RDONLY);
	p = h_map(e, 4 * PG, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	memset(p, 0x33, 4 * PG);
	r = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(r != MAP_FAILED);
	memset(r, 0x44, 4 * PG);
	CHECK_ERR(fl_mmap(e, p, 2 * PG, PROT_READ, MAP_SHARED | MAP_FIXED, o,
			  last) == MAP_FAILED,
		  EOVERFLOW);
	CHECK_ERR(fl_mmap(e, p + PG, 2 * PG, PROT_READ, MAP_PRIVATE | MAP_FIXED,
			  o, last - PG) == MAP_FAILED,
		  EOVERFLOW);
	CHECK_ERR(fl_mmap(e, r, 4 * PG, PROT_READ, MAP_SHARED | MAP_FIXED, o,
			  last - 2 * PG) == MAP_FAILED,
		  EOVERFLOW);
	CHECK(reads_as(p, 4 * PG, 0x33));
	CHECK(reads_as(r, 4 * PG, 0x44));
	/* the faultline mapping is still faultline's: it can be unmapped */
	CHECK_EQ(fl_munmap(e, p, 4 * PG), 0);
	CHECK_EQ(munmap(r, 4 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/*
 * MAP_FIXED replaces a mapping atomically, as mmap(2) does: a thread
 * reading a page while another replaces the mapping over and over sees
 * the old page or the new one, never a fault.  Odd rounds map file A,
 * even rounds file B (different bytes); the reader checks each byte read
 * is one of the two.
 */
#define SWAP_ROUNDS 2000
#define SWAP_PAGES  4

struct swap_reader {
	unsigned char *p;
	unsigned char a, b; /* the two bytes it may see */
	_Atomic int started, stop;
	unsigned long reads, faults, wrong;
};

static void *swap_reader_main(void *arg)
{
	struct swap_reader *r = arg;

	atomic_store(&r->started, 1);
	while (!atomic_load(&r->stop)) {
		unsigned char v;

		if (h_try_read(r->p + PG + 7, &v, NULL))
			r->faults++;
		else if (v != r->a && v != r->b)
			r->wrong++;
		r->reads++;
	}
	return NULL;
}

static void map_fixed_atomic(int flags)
{
	struct h_file fa, fb;
	fl_engine *e = h_engine(1);
	fl_object *a, *b;
	struct swap_reader r = {0};
	pthread_t t;
	unsigned char *p;
	int failed = 0;

	h_file_create(&fa, SWAP_PAGES * PG, 86);
	h_file_create(&fb, SWAP_PAGES * PG, 87);
	a = h_open(e, &fa, O_RDONLY);
	b = h_open(e, &fb, O_RDONLY);
	r.a = h_pattern(86, PG + 7);
	r.b = h_pattern(87, PG + 7);
	REQUIRE(r.a != r.b);
	p = h_map(e, SWAP_PAGES * PG, PROT_READ, flags, a, 0);
	r.p = p;
	REQUIRE(pthread_create(&t, NULL, swap_reader_main, &r) == 0);
	for (double end = h_now() + 10;
	     !atomic_load(&r.started) && h_now() < end;)
		sched_yield(); /* the reader runs throughout */
	for (int i = 0; i < SWAP_ROUNDS && !failed; i++) {
		fl_object *o = i % 2 ? a : b;

		failed = fl_mmap(e, p, SWAP_PAGES * PG, PROT_READ,
				 flags | MAP_FIXED, o, 0) != p;
	}
	atomic_store(&r.stop, 1);
	pthread_join(t, NULL);
	CHECK(!failed);
	h_note("%lu reads, %lu faults, %lu wrong bytes", r.reads, r.faults,
	       r.wrong);
	CHECK_EQ(r.faults, 0);
	CHECK_EQ(r.wrong, 0);
	CHECK_GT(r.reads, 0);
	CHECK_EQ(h_mismatch(p, SWAP_PAGES * PG, 86, 0), -1); /* A: last */
	CHECK_EQ(fl_munmap(e, p, SWAP_PAGES * PG), 0);
	CHECK_EQ(fl_object_close(a), 0);
	CHECK_EQ(fl_object_close(b), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&fa);
	h_file_remove(&fb);
}

TEST(map_fixed_is_atomic_shared)
{
	map_fixed_atomic(MAP_SHARED);
}

TEST(map_fixed_is_atomic_private)
{
	map_fixed_atomic(MAP_PRIVATE);
}

/*
 * MAP_FIXED while the only handler thread is busy: a thread faults page
 * after page of another mapping (one page per fault, and MADV_DONTNEED now
 * and then so that it never runs out of faults), so the handler is often
 * waiting for the map lock that MAP_FIXED holds while it moves the new view
 * into place.  The move must not wait for that handler (it used to hang).
 */
#define BUSY_PAGES 4096

struct busy_reader {
	unsigned char *p;
	_Atomic int stop;
	unsigned long signals;
};

static void *busy_reader_main(void *arg)
{
	struct busy_reader *r = arg;

	while (!atomic_load(&r->stop))
		for (size_t i = 0; i < BUSY_PAGES && !atomic_load(&r->stop);
		     i++)
			if (h_try_read(r->p + i * PG, NULL, NULL))
				r->signals++;
	return NULL;
}

TEST(map_fixed_while_handler_busy)
{
	fl_engine *e = h_engine_cfg(1, 1, 1);
	struct busy_reader r = {0};
	unsigned char *y;
	pthread_t t;
	int failed = 0;

	r.p = h_map(e, BUSY_PAGES * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
		    NULL, 0);
	y = h_map(e, 4 * PG, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(pthread_create(&t, NULL, busy_reader_main, &r) == 0);
	for (int i = 0; i < 1000 && !failed; i++) {
		failed = fl_mmap(e, y, 4 * PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, NULL,
				 0) != y;
		y[PG] = (unsigned char)i;
		if (i % 64 == 0)
			failed |= fl_madvise(e, r.p, BUSY_PAGES * PG,
					     MADV_DONTNEED) != 0;
	}
	atomic_store(&r.stop, 1);
	pthread_join(t, NULL);
	CHECK(!failed);
	CHECK_EQ(r.signals, 0);
	CHECK_EQ(y[PG], 999 % 256);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/*
 * fl_mmap returns the new mapping's address while another thread unmaps
 * the range as soon as it can: the address must be taken under the map
 * lock, not read from a mapping that may be freed (AddressSanitizer saw
 * the read after the free).
 */
struct unmapper {
	fl_engine *e;
	unsigned char *at;
	_Atomic int stop;
	unsigned long unmaps;
};

static void *unmapper_main(void *arg)
{
	struct unmapper *u = arg;

	while (!atomic_load(&u->stop))
		if (fl_munmap(u->e, u->at, 8 * PG) == 0)
			u->unmaps++;
	return NULL;
}

TEST(mmap_returns_while_unmapped)
{
	fl_engine *e = h_engine(1);
	struct unmapper u = {.e = e};
	unsigned char *at = mmap(NULL, 8 * PG, PROT_NONE,
				 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	pthread_t t;
	int wrong = 0;

	REQUIRE(at != MAP_FAILED);
	u.at = at;
	REQUIRE(pthread_create(&t, NULL, unmapper_main, &u) == 0);
	for (int i = 0; i < 3000; i++)
		wrong += fl_mmap(e, at, 4 * PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, NULL,
				 0) != at;
	atomic_store(&u.stop, 1);
	pthread_join(t, NULL);
	CHECK_EQ(wrong, 0);
	CHECK_GT(u.unmaps, 0);
	CHECK_EQ(fl_munmap(e, at, 8 * PG), 0);
	CHECK_EQ(munmap(at, 8 * PG), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
}
