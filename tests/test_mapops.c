// SPDX-License-Identifier: MIT
/* munmap and mprotect of parts of mappings (splits), MAP_FIXED. */
#include "harness.h"

#include <sys/mman.h>

#define NPAGES 16

static unsigned char buf[NPAGES * PG];

static int segv_at(void *p, int write)
{
	struct h_sig sig;
	int r = write ? h_try_write(p, 1, &sig) : h_try_read(p, NULL, &sig);

	return r == SIGSEGV && (uintptr_t)sig.addr >> 12 == (uintptr_t)p >> 12;
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
			CHECK(segv_at(p + (size_t)i * PG, 0));
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
	CHECK(segv_at(p, 0));
	CHECK(segv_at(p + 15 * PG, 0));
	CHECK_EQ(p[PG], 0);
	CHECK_EQ(p[2 * PG], 3);
	CHECK_EQ(p[14 * PG], 15);
	/* unmap everything, over the holes too */
	CHECK_EQ(fl_munmap(e, p, NPAGES * PG), 0);
	CHECK(segv_at(p + 2 * PG, 0));
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
	CHECK(segv_at(p + 6 * PG, 1));
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
	CHECK(segv_at(p + 10 * PG, 0));
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
