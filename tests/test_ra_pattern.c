// SPDX-License-Identifier: MIT
/*
 * Readahead finds the access pattern itself, like the kernel's
 * file_ra_state: a random reader without advice reads (nearly) only the
 * pages it touches; a sequential reader's reads run ahead of it in windows
 * started by marked pages; read-around comes back when a random phase turns
 * sequential; the statistics say whether readahead paid.  Everything is
 * decided by counters, never by time.
 */
#include "harness.h"

#define NPAGES 4096 /* 16 MiB */

static fl_engine *ra_engine(void)
{
	return h_engine_cfg(2, 0, 512); /* default fault-around */
}

/* A random page index in [0, n), from a seeded generator. */
static unsigned next_random(uint64_t *state, unsigned n)
{
	*state = *state * 6364136223846793005ull + 1442695040888963407ull;
	return (unsigned)((*state >> 33) % n);
}

TEST(random_reader_without_advice_reads_what_it_touches)
{
	fl_engine *e = ra_engine();
	struct h_file f;
	fl_object *o;
	unsigned char *p;
	uint64_t state = 12345, touched = 0;
	struct fl_stats s;
	static unsigned char seen[NPAGES];

	memset(seen, 0, sizeof(seen));
	h_file_create(&f, NPAGES * PG, 81);
	o = h_open(e, &f, O_RDONLY);
	p = h_map(e, NPAGES * PG, PROT_READ, MAP_SHARED, o, 0);
	for (int i = 0; i < 600; i++) {
		unsigned pg = next_random(&state, NPAGES);

		CHECK_EQ(p[pg * PG + 3], h_pattern(81, pg * PG + 3));
		touched += !seen[pg];
		seen[pg] = 1;
	}
	s = h_mstats(e, p);
	/* Read-around until the pattern is known: a few windows, then only
	 * the pages touched (the kernel's mmap_miss). */
	CHECK_LE(s.pages_read, touched + 40 * 32);
	CHECK_EQ(fl_munmap(e, p, NPAGES * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

TEST(sequential_reader_runs_into_pages_read_ahead)
{
	fl_engine *e = ra_engine();
	struct h_file f;
	fl_object *o;
	unsigned char *p;
	struct fl_stats s;

	h_file_create(&f, NPAGES * PG, 82);
	o = h_open(e, &f, O_RDONLY);
	p = h_map(e, NPAGES * PG, PROT_READ, MAP_SHARED, o, 0);
	CHECK_EQ(h_mismatch(p, NPAGES * PG, 82, 0), -1);
	/* The engine's counts: a mapping is credited with a background
	 * read only after its pages can be seen. */
	s = h_estats(e);
	CHECK_EQ(s.pages_read, NPAGES);
	/* Every page but the first fault's was read ahead, and used; save,
	 * on a busy machine, the first page of each window the reader
	 * overtook before an I/O thread started it (the fault read on from
	 * there itself, and the window was dropped).  A 16 MiB scan in
	 * windows growing to 2 MiB has fewer than 16. */
	CHECK_LE(s.pages_read - s.readahead_pages, 16);
	CHECK_EQ(s.readahead_used, s.readahead_pages);
	CHECK_EQ(h_estats(e).readahead_evicted, 0);
	CHECK_EQ(fl_munmap(e, p, NPAGES * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* No read in flight: with no memory limit, every page in the cache was
 * read, and windows are counted in readahead_pages when they start. */
static int reads_done(void *arg)
{
	struct fl_stats s = h_estats(arg);

	return s.cached_pages == s.pages_read;
}

TEST(read_around_comes_back_after_a_random_phase)
{
	fl_engine *e = ra_engine();
	struct h_file f;
	fl_object *o;
	unsigned char *p;
	uint64_t state = 777, ra0, read0;
	struct fl_stats s;

	h_file_create(&f, NPAGES * PG, 83);
	o = h_open(e, &f, O_RDONLY);
	p = h_map(e, NPAGES * PG, PROT_READ, MAP_SHARED, o, 0);
	for (int i = 0; i < 300; i++) { /* random, in the first half */
		unsigned pg = next_random(&state, NPAGES / 2);

		CHECK_EQ(p[pg * PG], h_pattern(83, pg * PG));
	}
	/* Now sequential through the second half: after a page or two it
	 * is a stream again, read ahead in windows.  (A window of the
	 * random phase may still be in flight: counted once it is read.) */
	REQUIRE(h_wait_until(reads_done, e));
	s = h_estats(e);
	ra0 = s.readahead_pages;
	read0 = s.pages_read;
	CHECK_EQ(h_mismatch(p + NPAGES / 2 * PG, NPAGES / 2 * PG, 83,
			    NPAGES / 2 * PG),
		 -1);
	/* Nearly every page it read was read ahead: only a few faults
	 * waited for their own page (the random phase may have read some
	 * of the second half already). */
	REQUIRE(h_wait_until(reads_done, e));
	s = h_estats(e);
	CHECK_LE((s.pages_read - read0) - (s.readahead_pages - ra0), 8);
	CHECK_GE(s.readahead_pages - ra0, 512);
	CHECK_EQ(fl_munmap(e, p, NPAGES * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}
