// SPDX-License-Identifier: MIT
/* Private file mappings: reads share the cache, writes make private copies
 * that nothing else sees and that never reach the file. */
#include "harness.h"

#define NPAGES 64

/* Check the file on disk still holds its pattern. */
static void check_file_unchanged(const struct h_file *f)
{
	static unsigned char buf[NPAGES * PG];

	CHECK_EQ(h_file_size(f->path), f->size);
	CHECK_EQ(h_pread(f->path, buf, f->size, 0), f->size);
	CHECK_EQ(h_mismatch(buf, f->size, f->seed, 0), -1);
}

TEST(reads_do_not_copy)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;
	struct fl_stats s, m;

	h_file_create(&f, NPAGES * PG, 21);
	o = h_open(e, &f, O_RDWR);
	p = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, o, 0);
	CHECK_EQ(h_mismatch(p, NPAGES * PG, 21, 0), -1);
	s = h_estats(e);
	m = h_mstats(e, p);
	CHECK_EQ(s.cow_copies, 0);
	CHECK_EQ(m.cow_copies, 0);
	CHECK_GT(s.major_faults, 0);
	CHECK_GE(s.pages_read, NPAGES);
	CHECK_EQ(s.dirty_pages, 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/*
 * Shared mapping S, private mappings P1 and P2 of one object.  Stores
 * through P1 make copies (cow_copies), invisible to S and P2; pages of P1
 * not copied keep following the cache; the file never changes.
 */
TEST(write_makes_private_copy)
{
	static const int wpages[] = {0, 5, 17, 63};
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *s, *p1, *p2;
	struct fl_stats s0, s1;

	h_file_create(&f, NPAGES * PG, 22);
	o = h_open(e, &f, O_RDWR);
	s = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	p1 = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, o, 0);
	p2 = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, o, 0);
	CHECK_EQ(h_mismatch(s, NPAGES * PG, 22, 0), -1);
	CHECK_EQ(h_mismatch(p1, NPAGES * PG, 22, 0), -1);
	CHECK_EQ(h_mismatch(p2, NPAGES * PG, 22, 0), -1);
	s0 = h_estats(e);
	CHECK_EQ(s0.cow_copies, 0);
	for (size_t i = 0; i < 4; i++)
		memset(p1 + (size_t)wpages[i] * PG + 100, 0xc3, 50);
	s1 = h_estats(e);
	CHECK_EQ(s1.cow_copies - s0.cow_copies, 4);
	CHECK_EQ(h_mstats(e, p1).cow_copies, 4);
	CHECK_EQ(h_mstats(e, p2).cow_copies, 0);
	CHECK_EQ(h_mstats(e, s).cow_copies, 0);
	CHECK_EQ(s1.dirty_pages, 0); /* private copies are not cache pages */
	for (size_t i = 0; i < 4; i++) {
		size_t off = (size_t)wpages[i] * PG;

		CHECK_EQ(p1[off + 100], 0xc3);
		CHECK_EQ(p1[off + 149], 0xc3);
		CHECK_EQ(h_mismatch(p1 + off, 100, 22, off), -1);
		CHECK_EQ(h_mismatch(p1 + off + 150, PG - 150, 22, off + 150),
			 -1);
	}
	CHECK_EQ(h_mismatch(s, NPAGES * PG, 22, 0), -1);
	CHECK_EQ(h_mismatch(p2, NPAGES * PG, 22, 0), -1);

	/* P2 copies the same page on its own, with other data */
	p2[5 * PG + 100] = 0x3c;
	CHECK_EQ(p1[5 * PG + 100], 0xc3);
	CHECK_EQ(s[5 * PG + 100], h_pattern(22, 5 * PG + 100));
	CHECK_EQ(h_estats(e).cow_copies - s0.cow_copies, 5);

	/* a store through S reaches uncopied pages of P1, not copied ones */
	s[9 * PG] = 0x11;
	s[5 * PG + 100] = 0x22;
	CHECK_EQ(p1[9 * PG], 0x11);
	CHECK_EQ(p2[9 * PG], 0x11);
	CHECK_EQ(p1[5 * PG + 100], 0xc3);
	CHECK_EQ(p2[5 * PG + 100], 0x3c);
	s[9 * PG] = h_pattern(22, 9 * PG);
	s[5 * PG + 100] = h_pattern(22, 5 * PG + 100);
	CHECK_EQ(fl_msync(e, s, NPAGES * PG, MS_SYNC), 0);
	CHECK_EQ(h_estats(e).dirty_pages, 0);
	check_file_unchanged(&f);
	CHECK_EQ(fl_munmap(e, p1, NPAGES * PG), 0);
	check_file_unchanged(&f);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	check_file_unchanged(&f);
	h_file_remove(&f);
}

/* A store as the first access to a private page copies the file's data. */
TEST(write_before_read)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;

	h_file_create(&f, NPAGES * PG, 23);
	o = h_open(e, &f, O_RDWR);
	p = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, o, 0);
	p[10 * PG + 7] = 0;
	p[10 * PG + 8] = 1;
	CHECK_EQ(h_estats(e).cow_copies, 1);
	CHECK_EQ(h_mismatch(p + 10 * PG, 7, 23, 10 * PG), -1);
	CHECK_EQ(h_mismatch(p + 10 * PG + 9, PG - 9, 23, 10 * PG + 9), -1);
	CHECK_EQ(p[10 * PG + 7], 0);
	CHECK_EQ(p[10 * PG + 8], 1);
	CHECK_EQ(h_mismatch(p, 10 * PG, 23, 0), -1);
	CHECK_EQ(fl_engine_destroy(e), 0);
	check_file_unchanged(&f);
	h_file_remove(&f);
}

/* A read-only object can be mapped private and writable, like mmap. */
TEST(private_write_of_readonly_object)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;

	h_file_create(&f, 8 * PG, 24);
	o = h_open(e, &f, O_RDONLY);
	p = h_map(e, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, o, 0);
	memset(p, 0x5e, 8 * PG);
	for (size_t i = 0; i < 8 * PG; i += 333)
		CHECK_EQ(p[i], 0x5e);
	CHECK_EQ(fl_munmap(e, p, 8 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	check_file_unchanged(&f);
	h_file_remove(&f);
}

/* MADV_DONTNEED drops the private copies: the pages show the object again */
TEST(dontneed_reverts_to_object)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;

	h_file_create(&f, 16 * PG, 25);
	o = h_open(e, &f, O_RDWR);
	p = h_map(e, 16 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, o, 0);
	memset(p + 2 * PG, 0, 4 * PG);
	CHECK_EQ(h_nonzero(p + 2 * PG, 4 * PG), -1);
	CHECK_EQ(fl_madvise(e, p, 16 * PG, MADV_DONTNEED), 0);
	CHECK_EQ(h_mismatch(p, 16 * PG, 25, 0), -1);
	/* and can be copied again */
	p[3 * PG] = (unsigned char)~h_pattern(25, 3 * PG);
	CHECK_EQ(p[3 * PG], (unsigned char)~h_pattern(25, 3 * PG));
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	check_file_unchanged(&f);
	h_file_remove(&f);
}

struct mix_ctx {
	unsigned char *shared, *priv;
};

/* Threads 0-1 write their own pages of the private mapping; threads 2-3
 * read the shared mapping; nothing written leaks into the shared view. */
static void mix_thread(int idx, void *arg)
{
	struct mix_ctx *c = arg;

	for (int round = 0; round < 4; round++) {
		if (idx < 2) {
			for (int pg = idx; pg < NPAGES; pg += 2)
				memset(c->priv + (size_t)pg * PG + round * 64,
				       0xa0 + idx, 64);
		} else {
			long bad = h_mismatch(c->shared, NPAGES * PG, 26, 0);

			if (bad >= 0) {
				h_fail(__FILE__, __LINE__,
				       "shared view changed at %ld", bad);
				return;
			}
		}
	}
}

TEST(private_writes_concurrent_with_shared_reads)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	struct mix_ctx c;

	h_file_create(&f, NPAGES * PG, 26);
	o = h_open(e, &f, O_RDWR);
	c.shared = h_map(e, NPAGES * PG, PROT_READ, MAP_SHARED, o, 0);
	c.priv = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, o,
		       0);
	h_run_threads(4, mix_thread, &c);
	for (int pg = 0; pg < NPAGES; pg++) {
		size_t off = (size_t)pg * PG;

		for (int i = 0; i < 256; i++)
			if (c.priv[off + (size_t)i] != 0xa0 + pg % 2) {
				h_fail(__FILE__, __LINE__,
				       "private page %d byte %d is %d", pg, i,
				       c.priv[off + (size_t)i]);
				break;
			}
		CHECK_EQ(
			h_mismatch(c.priv + off + 256, PG - 256, 26, off + 256),
			-1);
	}
	CHECK_EQ(h_mismatch(c.shared, NPAGES * PG, 26, 0), -1);
	CHECK_EQ(h_estats(e).cow_copies, NPAGES);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	check_file_unchanged(&f);
	h_file_remove(&f);
}
