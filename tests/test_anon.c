// SPDX-License-Identifier: MIT
/* Anonymous mappings: zero pages, zero fills, writes from many threads. */
#include "harness.h"

#include <stdlib.h>

#define NPAGES	 256
#define NTHREADS 4

TEST(read_untouched_is_zero)
{
	fl_engine *e = h_engine(2);
	unsigned char *p = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	struct fl_stats s;

	CHECK_EQ(h_nonzero(p, NPAGES * PG), -1);
	s = h_estats(e);
	CHECK_GT(s.fault_messages, 0); /* the engine served the faults */
	CHECK_EQ(s.major_faults, 0);
	CHECK_EQ(s.pages_read, 0);
	CHECK_EQ(s.cow_copies, 0);
	CHECK_EQ(s.errors, 0);
	CHECK_EQ(fl_munmap(e, p, NPAGES * PG), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

struct anon_ctx {
	unsigned char *p;
	size_t npages;
};

/* Thread idx owns pages idx, idx + NTHREADS, ...: fill each with the
 * pattern for its offset, so a page landing anywhere else shows. */
static void write_own_pages(int idx, void *arg)
{
	struct anon_ctx *c = arg;

	for (size_t pg = (size_t)idx; pg < c->npages; pg += NTHREADS)
		h_fill(c->p + pg * PG, PG, 7, pg * PG);
}

static void verify_all_pages(int idx, void *arg)
{
	struct anon_ctx *c = arg;
	long bad = h_mismatch(c->p, c->npages * PG, 7, 0);

	if (bad >= 0)
		h_fail(__FILE__, __LINE__, "thread %d: byte %ld differs", idx,
		       bad);
}

static void threads_disjoint_writes(int flags)
{
	fl_engine *e = h_engine(2);
	struct anon_ctx c;
	struct fl_stats s, m;

	c.npages = NPAGES;
	c.p = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE,
		    flags | MAP_ANONYMOUS, NULL, 0);
	h_run_threads(NTHREADS, write_own_pages, &c);
	h_run_threads(NTHREADS, verify_all_pages, &c);
	s = h_estats(e);
	m = h_mstats(e, c.p + 5 * PG);
	/* Every written page had to be zero-filled first. */
	CHECK_GE(s.zero_fills, NPAGES);
	CHECK_GE(m.zero_fills, NPAGES);
	CHECK_EQ(s.pages_read, 0);
	CHECK_EQ(s.major_faults, 0);
	CHECK_EQ(s.errors, 0);
	CHECK_EQ(fl_munmap(e, c.p, NPAGES * PG), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

TEST(private_threads_disjoint_writes)
{
	threads_disjoint_writes(MAP_PRIVATE);
}

TEST(shared_threads_disjoint_writes)
{
	threads_disjoint_writes(MAP_SHARED);
}

/* With a zero-fill batch of 1 page, each written page is one zero fill. */
TEST(zero_fills_counted_exactly)
{
	struct fl_config cfg;
	fl_engine *e;
	unsigned char *p;
	struct fl_stats s0, s1;

	fl_config_init(&cfg);
	cfg.anon_fault_around_pages = 1;
	cfg.handler_threads = 2;
	e = h_engine_create(&cfg);
	p = h_map(e, 64 * PG, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	s0 = h_estats(e);
	for (int i = 0; i < 64; i += 2)
		p[i * PG + 100] = (unsigned char)(i + 1);
	s1 = h_estats(e);
	CHECK_EQ(s1.zero_fills - s0.zero_fills, 32);
	CHECK_EQ(h_mstats(e, p).zero_fills, 32);
	for (int i = 0; i < 64; i++) {
		CHECK_EQ(p[i * PG + 100], i % 2 ? 0 : i + 1);
		CHECK_EQ(p[i * PG], 0);
	}
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/* A page first read (zero page) and then written keeps the write and only
 * that page changes. */
TEST(read_then_write)
{
	for (int shared = 0; shared < 2; shared++) {
		fl_engine *e = h_engine(1);
		unsigned char *p = h_map(e, 32 * PG, PROT_READ | PROT_WRITE,
					 (shared ? MAP_SHARED : MAP_PRIVATE) |
						 MAP_ANONYMOUS,
					 NULL, 0);

		CHECK_EQ(h_nonzero(p, 32 * PG), -1);
		p[3 * PG + 17] = 0x5a;
		p[20 * PG] = 0xa5;
		CHECK_EQ(p[3 * PG + 17], 0x5a);
		CHECK_EQ(p[20 * PG], 0xa5);
		p[3 * PG + 17] = 0;
		p[20 * PG] = 0;
		CHECK_EQ(h_nonzero(p, 32 * PG), -1);
		CHECK_EQ(h_estats(e).errors, 0);
		CHECK_EQ(fl_engine_destroy(e), 0);
	}
}

/* MADV_DONTNEED frees anonymous pages: the next access sees zeros. */
TEST(dontneed_gives_zeros)
{
	fl_engine *e = h_engine(2);
	unsigned char *p = h_map(e, 16 * PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);

	memset(p, 0x77, 16 * PG);
	CHECK_EQ(fl_madvise(e, p + 4 * PG, 4 * PG, MADV_DONTNEED), 0);
	CHECK_EQ(h_nonzero(p + 4 * PG, 4 * PG), -1);
	for (size_t i = 0; i < 16 * PG; i++) {
		if ((i < 4 * PG || i >= 8 * PG) && p[i] != 0x77) {
			h_fail(__FILE__, __LINE__, "byte %zu lost: %d", i,
			       p[i]);
			break;
		}
	}
	/* And the freed pages can be written again. */
	p[5 * PG] = 1;
	CHECK_EQ(p[5 * PG], 1);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/* Several anonymous mappings at once, each keeps its own data. */
TEST(many_mappings)
{
	fl_engine *e = h_engine(2);
	unsigned char *m[8];

	for (int i = 0; i < 8; i++) {
		m[i] = h_map(e, (size_t)(i + 1) * PG, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
		memset(m[i], i + 1, (size_t)(i + 1) * PG);
	}
	for (int i = 0; i < 8; i++)
		for (size_t j = 0; j < (size_t)(i + 1) * PG; j += 511)
			if (m[i][j] != i + 1) {
				h_fail(__FILE__, __LINE__,
				       "mapping %d byte %zu is %d", i, j,
				       m[i][j]);
				break;
			}
	for (int i = 0; i < 8; i += 2)
		CHECK_EQ(fl_munmap(e, m[i], (size_t)(i + 1) * PG), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

struct zero_race {
	unsigned char *p;
	int idx;
};

static void zero_race_thread(int idx, void *arg)
{
	struct zero_race *c = arg;

	if (idx == 0)
		(void)*(volatile unsigned char *)c->p; /* maps the zero page */
	else
		c->p[300 * PG] = 1; /* may land while it is being mapped */
}

/*
 * A store by another thread can land on a zero page while a read fault is
 * still write-protecting it; that page is private all the same, and counts.
 */
TEST(store_racing_zero_page_counts)
{
	struct fl_config cfg;
	fl_engine *e;

	fl_config_init(&cfg);
	cfg.handler_threads = 2;
	cfg.fault_around_pages = 512;
	e = h_engine_create(&cfg);
	for (int round = 0; round < 200 && !h_failures(); round++) {
		struct zero_race c = {0};

		c.p = h_map(e, 512 * PG, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
		h_run_threads(2, zero_race_thread, &c);
		CHECK_EQ(c.p[300 * PG], 1);
		CHECK_GE(h_mstats(e, c.p).private_pages, 1);
		CHECK_EQ(fl_munmap(e, c.p, 512 * PG), 0);
		CHECK_EQ(h_estats(e).private_pages, 0);
	}
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/*
 * Write faults zero-fill one page, unless they move forward in order: then
 * the window grows fourfold each time (1, 4, 16 pages), no further than
 * anon_fault_around_pages.  Memory is spent ahead only of a sequential
 * writer.
 */
TEST(zero_fill_window_grows_only_when_sequential)
{
	struct fl_config cfg;
	fl_engine *e;
	unsigned char *p;

	fl_config_init(&cfg);
	cfg.handler_threads = 2;
	cfg.anon_fault_around_pages = 16;
	e = h_engine_create(&cfg);
	p = h_map(e, 256 * PG, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	p[200 * PG] = 1; /* scattered: one page each */
	p[100 * PG] = 1;
	p[150 * PG] = 1;
	CHECK_EQ(h_mstats(e, p).private_pages, 3);
	for (int pg = 0; pg < 64; pg++) /* in order: 1, then 4, then 16s */
		p[pg * PG] = 2;
	CHECK_EQ(h_mstats(e, p).private_pages, 3 + 64);
	CHECK_EQ(h_mstats(e, p).minor_faults, 3 + 1 + 1 + 1 + 3);
	for (int pg = 0; pg < 64; pg++)
		CHECK_EQ(p[pg * PG], 2);
	CHECK_EQ(fl_engine_destroy(e), 0);
}
