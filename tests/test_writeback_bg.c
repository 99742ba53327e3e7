// SPDX-License-Identifier: MIT
/*
 * Dirty data under a memory limit: random writes read only their own page
 * (readahead's random detection applies to write faults too).  Everything
 * is decided by counters, never by time.
 */
#include "harness.h"

#define NPAGES 4096 /* 16 MiB */

/* A random page index in [0, n), from a seeded generator. */
static unsigned next_random(uint64_t *state, unsigned n)
{
	*state = *state * 6364136223846793005ull + 1442695040888963407ull;
	return (unsigned)((*state >> 33) % n);
}

TEST(random_writer_without_advice_reads_what_it_touches)
{
	fl_engine *e = h_engine_cfg(2, 0, 512);
	struct h_file f;
	fl_object *o;
	unsigned char *p;
	uint64_t state = 4242, touched = 0;
	struct fl_stats s;
	static unsigned char seen[NPAGES];

	memset(seen, 0, sizeof(seen));
	h_file_create(&f, NPAGES * PG, 91);
	o = h_open(e, &f, O_RDWR);
	p = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	for (int i = 0; i < 600; i++) {
		unsigned pg = next_random(&state, NPAGES);

		p[pg * PG + 5] = (unsigned char)(i + 1); /* a write fault */
		touched += !seen[pg];
		seen[pg] = 1;
	}
	s = h_mstats(e, p);
	/* Read-around until the pattern is known (a few windows of 32),
	 * then only the page each write needs. */
	CHECK_LE(s.pages_read, touched + 40 * 32);
	CHECK_GE(s.pages_read, touched);
	CHECK_EQ(s.dirty_pages, touched);
	CHECK_EQ(fl_msync(e, p, NPAGES * PG, MS_SYNC), 0);
	CHECK_EQ(fl_munmap(e, p, NPAGES * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}
