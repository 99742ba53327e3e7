// SPDX-License-Identifier: MIT
/*
 * Readahead: a sequential reader finds the next window read in the
 * background; MADV_RANDOM reads only the faulting page.  Waiting for the
 * background read is bounded, and only its arrival is checked, never how
 * long it took.
 */
#include "harness.h"

#include <unistd.h>

#define WINDOW 32
#define NPAGES (8 * WINDOW)

static fl_engine *ra_engine(void)
{
	return h_engine_cfg(2, 1, WINDOW);
}

struct pages_read_goal {
	fl_engine *e;
	const void *mapping; /* NULL: the engine's count */
	uint64_t want;
};

static int pages_read_reached(void *arg)
{
	struct pages_read_goal *g = arg;
	struct fl_stats s =
		g->mapping ? h_mstats(g->e, g->mapping) : h_estats(g->e);

	return s.pages_read >= g->want;
}

/* Wait (bounded) for the engine, or the mapping at addr, to have read at
 * least want pages; returns the count then. */
static uint64_t wait_pages_read(fl_engine *e, const void *addr, uint64_t want)
{
	struct pages_read_goal g = {e, addr, want};

	h_wait_until(pages_read_reached, &g);
	return addr ? h_mstats(e, addr).pages_read : h_estats(e).pages_read;
}

TEST(first_fault_reads_next_window_in_background)
{
	struct h_file f;
	fl_engine *e = ra_engine();
	fl_object *o;
	unsigned char *p;

	h_file_create(&f, NPAGES * PG, 61);
	o = h_open(e, &f, O_RDONLY);
	p = h_map(e, NPAGES * PG, PROT_READ, MAP_SHARED, o, 0);
	CHECK_EQ(h_mismatch(p, 1, 61, 0), -1); /* one fault, at page 0 */
	/* Its own window, then two more without any further fault. */
	CHECK_EQ(wait_pages_read(e, NULL, 3 * WINDOW), 3 * WINDOW);
	CHECK_EQ(h_estats(e).fault_messages, 1);
	/* The reader reaching the first of them starts one more. */
	CHECK_EQ(h_mismatch(p + WINDOW * PG, 1, 61, WINDOW * PG), -1);
	CHECK_EQ(wait_pages_read(e, NULL, 4 * WINDOW), 4 * WINDOW);
	/* Every page is right, and the mapping was credited with them.  A
	 * background read credits the mapping after its pages can be seen,
	 * so the reader can get there first: wait for the credit. */
	CHECK_EQ(h_mismatch(p, NPAGES * PG, 61, 0), -1);
	CHECK_EQ(h_estats(e).pages_read, NPAGES);
	CHECK_EQ(wait_pages_read(e, p, NPAGES), NPAGES);
	CHECK_EQ(fl_munmap(e, p, NPAGES * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

TEST(random_advice_reads_one_page)
{
	struct h_file f;
	fl_engine *e = ra_engine();
	fl_object *o;
	unsigned char *p;

	h_file_create(&f, NPAGES * PG, 62);
	o = h_open(e, &f, O_RDONLY);
	p = h_map(e, NPAGES * PG, PROT_READ, MAP_SHARED, o, 0);
	CHECK_EQ(fl_madvise(e, p, NPAGES * PG, MADV_RANDOM), 0);
	for (int pg = 0; pg < 8; pg++)
		CHECK_EQ(h_mismatch(p + pg * PG, 1, 62, pg * PG), -1);
	usleep(20000); /* room for a (wrong) background read to show */
	CHECK_EQ(h_estats(e).pages_read, 8);
	CHECK_EQ(h_estats(e).major_faults, 8);
	CHECK_EQ(fl_munmap(e, p, NPAGES * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

TEST(unmap_and_destroy_with_readahead_queued)
{
	struct h_file f;

	h_file_create(&f, NPAGES * PG, 63);
	for (int round = 0; round < 20; round++) {
		fl_engine *e = ra_engine();
		fl_object *o = h_open(e, &f, O_RDONLY);
		unsigned char *p =
			h_map(e, NPAGES * PG, PROT_READ, MAP_SHARED, o, 0);

		/* Start readahead, then tear everything down at once. */
		CHECK_EQ(h_mismatch(p + (round % 4) * WINDOW * PG, 1, 63,
				    (round % 4) * WINDOW * PG),
			 -1);
		CHECK_EQ(fl_munmap(e, p, NPAGES * PG), 0);
		CHECK_EQ(fl_object_close(o), 0);
		CHECK_EQ(fl_engine_destroy(e), 0);
	}
	h_file_remove(&f);
}

/*
 * Under a memory limit the windows keep going ahead of the reader: a
 * window that finds the group full makes room from the pages the reader
 * has used and left behind (never from the windows read ahead before it).
 * The reader reads each window through, then waits (bounded) for the
 * window two ahead to arrive; before, once the group was full, that window
 * was dropped for want of room and never came.
 */
TEST(readahead_under_a_limit_makes_room_from_used_pages)
{
	const uint64_t windows = 32, pages = windows * WINDOW;
	fl_engine *e = ra_engine();
	fl_group *g = fl_group_create(e, NULL, "ra");
	struct fl_group_stats gs;
	struct h_file f;
	fl_object *o;
	unsigned char *p;

	REQUIRE(g != NULL);
	REQUIRE(fl_group_set_max(g, 8 * WINDOW * PG) == 0);
	h_file_create(&f, pages * PG, 64);
	o = h_open(e, &f, O_RDONLY);
	p = fl_mmap_group(e, g, NULL, pages * PG, PROT_READ, MAP_SHARED, o, 0);
	REQUIRE(p != MAP_FAILED);
	for (uint64_t k = 0; k < windows; k++) {
		uint64_t want = (k + 3 < windows ? k + 3 : windows) * WINDOW;

		REQUIRE(h_mismatch(p + k * WINDOW * PG, WINDOW * PG, 64,
				   k * WINDOW * PG) == -1);
		REQUIRE(wait_pages_read(e, NULL, want) >= want);
	}
	/* Each page read once, by the first fault's window or in the
	 * background, none evicted before it was used.  (Not counted: how
	 * many faults found a window still being read, which is timing.) */
	CHECK_EQ(h_estats(e).pages_read, pages);
	CHECK_EQ(h_estats(e).readahead_evicted, 0);
	REQUIRE(fl_group_stats(g, &gs) == 0);
	CHECK_LE(gs.peak, 8 * WINDOW * PG);
	CHECK_GE(gs.pages_reclaimed, pages - 8 * WINDOW);
	CHECK_EQ(fl_munmap(e, p, pages * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}
