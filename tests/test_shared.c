// SPDX-License-Identifier: MIT
/* Shared file mappings: contents, major then minor faults, coherence
 * between mappings and threads, the first store to a clean page. */
#include "harness.h"

#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#define NPAGES 300 /* more than one readahead batch, not a multiple */

struct scan_ctx {
	const unsigned char *p;
	size_t len;
	uint32_t seed;
};

/* Each thread checks a stripe of 16-page chunks, all of them together
 * cover the mapping: faults come from several threads at once. */
static void scan_stripe(int idx, void *arg)
{
	struct scan_ctx *c = arg;
	size_t chunk = 16 * PG;

	for (size_t off = (size_t)idx * chunk; off < c->len; off += 4 * chunk) {
		size_t n = c->len - off < chunk ? c->len - off : chunk;
		long bad = h_mismatch(c->p + off, n, c->seed, off);

		if (bad >= 0) {
			h_fail(__FILE__, __LINE__,
			       "thread %d: byte %zu differs from the file", idx,
			       off + (size_t)bad);
			return;
		}
	}
}

TEST(every_byte_matches_file)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;
	struct fl_stats s, m;
	struct scan_ctx c;

	h_file_create(&f, NPAGES * PG, 11);
	o = h_open(e, &f, O_RDONLY);
	CHECK_EQ(fl_object_size(o), NPAGES * PG);
	p = h_map(e, NPAGES * PG, PROT_READ, MAP_SHARED, o, 0);
	c = (struct scan_ctx){p, NPAGES * PG, 11};
	h_run_threads(4, scan_stripe, &c);
	/* and once more from this thread, now that it is all mapped */
	CHECK_EQ(h_mismatch(p, NPAGES * PG, 11, 0), -1);
	s = h_estats(e);
	m = h_mstats(e, p);
	CHECK_GT(s.major_faults, 0);
	CHECK_GT(m.major_faults, 0);
	CHECK_GE(s.pages_read, NPAGES);
	CHECK_GE(m.pages_read, NPAGES);
	CHECK_GE(s.cached_pages, NPAGES);
	CHECK_EQ(s.errors, 0);
	CHECK_EQ(s.cow_copies, 0);
	CHECK_EQ(s.dirty_pages, 0);
	CHECK_EQ(s.zero_fills, 0);
	CHECK_EQ(fl_munmap(e, p, NPAGES * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* A mapping at a non-zero offset sees the file from that offset. */
TEST(offset_mapping)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;

	h_file_create(&f, 64 * PG, 12);
	o = h_open(e, &f, O_RDONLY);
	p = h_map(e, 20 * PG, PROT_READ, MAP_SHARED, o, 37 * PG);
	CHECK_EQ(h_mismatch(p, 20 * PG, 12, 37 * PG), -1);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* The second mapping of an object finds the pages in its cache. */
TEST(second_mapping_minor_faults)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p, *q;
	struct fl_stats s0, s1, m;

	h_file_create(&f, NPAGES * PG, 13);
	o = h_open(e, &f, O_RDWR);
	p = h_map(e, NPAGES * PG, PROT_READ, MAP_SHARED, o, 0);
	CHECK_EQ(h_mismatch(p, NPAGES * PG, 13, 0), -1);
	s0 = h_estats(e);
	q = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	CHECK_EQ(h_mismatch(q, NPAGES * PG, 13, 0), -1);
	s1 = h_estats(e);
	m = h_mstats(e, q);
	CHECK_EQ(s1.pages_read, s0.pages_read);
	CHECK_EQ(s1.major_faults, s0.major_faults);
	CHECK_GT(s1.minor_faults, s0.minor_faults);
	CHECK_EQ(m.major_faults, 0);
	CHECK_EQ(m.pages_read, 0);
	CHECK_GT(m.minor_faults, 0);
	/* a private mapping, too, reads the cache */
	p = h_map(e, NPAGES * PG, PROT_READ, MAP_PRIVATE, o, 0);
	CHECK_EQ(h_mismatch(p, NPAGES * PG, 13, 0), -1);
	CHECK_EQ(h_estats(e).pages_read, s0.pages_read);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* A store through one shared mapping is visible at once through another. */
TEST(coherence_two_mappings)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *a, *b;

	h_file_create(&f, 64 * PG, 14);
	o = h_open(e, &f, O_RDWR);
	a = h_map(e, 64 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	b = h_map(e, 64 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	CHECK(a != b);
	/* pages mapped in both */
	CHECK_EQ(h_mismatch(a, 32 * PG, 14, 0), -1);
	CHECK_EQ(h_mismatch(b, 32 * PG, 14, 0), -1);
	for (int i = 0; i < 32; i++) {
		a[i * PG + (size_t)i] =
			(unsigned char)~h_pattern(14, i * PG + i);
		CHECK_EQ(b[i * PG + (size_t)i],
			 (unsigned char)~h_pattern(14, i * PG + i));
	}
	/* pages touched by neither before: store in b, read in a */
	for (int i = 32; i < 64; i += 3) {
		b[i * PG + 1] = 0xee;
		CHECK_EQ(a[i * PG + 1], 0xee);
		CHECK_EQ(a[i * PG], h_pattern(14, i * PG));
	}
	/* and one mapping at an offset sees the same bytes */
	unsigned char *c = h_map(e, 8 * PG, PROT_READ, MAP_SHARED, o, 40 * PG);
	for (int i = 40; i < 48; i++)
		CHECK_EQ(c[(size_t)(i - 40) * PG + 1], a[i * PG + 1]);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/*
 * Ping-pong between two threads through two mappings: thread 0 stores
 * round r into mapping A at slot r, thread 1 waits to see it through
 * mapping B and answers in B at slot r + 1; thread 0 waits to see that in A.
 * Slots walk across pages, so many of the stores are first stores.
 */
#define ROUNDS 200

struct pingpong {
	unsigned char *a, *b;
	int stuck;
};

static unsigned char *slot(unsigned char *base, int r)
{
	return base + (size_t)(r % 48) * PG + (size_t)(r / 48) * 8;
}

/* Wait (bounded) for the other thread's answer; yield meanwhile, as on a
 * busy machine that thread may be waiting for this CPU. */
static int wait_for(unsigned char *p, unsigned char v, struct pingpong *pp)
{
	double limit = h_now() + H_WAIT_SECONDS;

	while (__atomic_load_n(p, __ATOMIC_ACQUIRE) != v) {
		if (__atomic_load_n(&pp->stuck, __ATOMIC_RELAXED))
			return 0;
		if (h_now() > limit) {
			__atomic_store_n(&pp->stuck, 1, __ATOMIC_RELAXED);
			return 0;
		}
		sched_yield();
	}
	return 1;
}

static void pingpong_thread(int idx, void *arg)
{
	struct pingpong *pp = arg;
	unsigned char *mine = idx ? pp->b : pp->a;

	for (int r = idx; r < ROUNDS; r += 2) {
		unsigned char v = (unsigned char)(r % 250 + 1);

		if (r > 0 &&
		    !wait_for(slot(mine, r - 1),
			      (unsigned char)((r - 1) % 250 + 1), pp)) {
			h_fail(__FILE__, __LINE__,
			       "thread %d never saw round %d", idx, r - 1);
			return;
		}
		__atomic_store_n(slot(mine, r), v, __ATOMIC_RELEASE);
	}
}

TEST(coherence_across_threads)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	struct pingpong pp = {0};

	/* zero bytes in the slots, so a stale page cannot look like an answer
	 */
	h_file_create(&f, 48 * PG, 15);
	o = h_open(e, &f, O_RDWR);
	pp.a = h_map(e, 48 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	pp.b = h_map(e, 48 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	for (int r = 0; r < ROUNDS; r++)
		*slot(pp.a, r) = 0;
	h_run_threads(2, pingpong_thread, &pp);
	CHECK_EQ(pp.stuck, 0);
	for (int r = 0; r < ROUNDS; r++) {
		CHECK_EQ(*slot(pp.a, r), r % 250 + 1);
		CHECK_EQ(*slot(pp.b, r), r % 250 + 1);
	}
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* The first store to a clean page is seen: a WP fault, a dirty page. */
TEST(first_store_marks_dirty)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;
	struct fl_stats s0, s1, s2, m;

	h_file_create(&f, 32 * PG, 16);
	o = h_open(e, &f, O_RDWR);
	p = h_map(e, 32 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	CHECK_EQ(h_mismatch(p, 32 * PG, 16, 0), -1); /* all clean, mapped */
	s0 = h_estats(e);
	CHECK_EQ(s0.dirty_pages, 0);
	CHECK_EQ(h_mstats(e, p).dirty_pages, 0);
	p[3 * PG + 9] = 0x42;
	s1 = h_estats(e);
	CHECK_EQ(s1.wp_faults - s0.wp_faults, 1);
	CHECK_EQ(s1.dirty_pages, 1);
	CHECK_EQ(h_mstats(e, p).dirty_pages, 1);
	/* a second store to the same page is no new first store */
	p[3 * PG + 10] = 0x43;
	CHECK_EQ(h_estats(e).wp_faults, s1.wp_faults);
	/* four more pages */
	for (int i = 10; i < 14; i++)
		p[i * PG] ^= 0xff;
	s2 = h_estats(e);
	CHECK_EQ(s2.wp_faults - s0.wp_faults, 5);
	CHECK_EQ(s2.dirty_pages, 5);
	m = h_mstats(e, p);
	CHECK_EQ(m.dirty_pages, 5);
	CHECK_GE(m.wp_faults, 5);
	CHECK_EQ(p[3 * PG + 9], 0x42);
	CHECK_EQ(p[3 * PG + 10], 0x43);
	CHECK_EQ(p[11 * PG], (unsigned char)~h_pattern(16, 11 * PG));
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* A store that is the first access to a page also dirties it. */
TEST(store_before_any_read)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;

	h_file_create(&f, 16 * PG, 17);
	o = h_open(e, &f, O_RDWR);
	p = h_map(e, 16 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	p[7 * PG + 5] = 0x99;
	CHECK_EQ(h_estats(e).dirty_pages, 1);
	CHECK_EQ(p[7 * PG + 5], 0x99);
	CHECK_EQ(h_mismatch(p + 7 * PG, 5, 17, 7 * PG), -1);
	CHECK_EQ(h_mismatch(p + 7 * PG + 6, PG - 6, 17, 7 * PG + 6), -1);
	CHECK_EQ(h_mismatch(p, 7 * PG, 17, 0), -1);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* Two objects at once; mappings keep working after the caller's close. */
TEST(two_objects)
{
	struct h_file f, g;
	fl_engine *e = h_engine(2);
	fl_object *o1, *o2;
	unsigned char *p, *q;

	h_file_create(&f, 8 * PG, 18);
	h_file_create(&g, 8 * PG, 19);
	o1 = h_open(e, &f, O_RDONLY);
	o2 = h_open(e, &g, O_RDONLY);
	p = h_map(e, 8 * PG, PROT_READ, MAP_SHARED, o1, 0);
	q = h_map(e, 8 * PG, PROT_READ, MAP_SHARED, o2, 0);
	CHECK_EQ(h_mismatch(p, 8 * PG, 18, 0), -1);
	CHECK_EQ(h_mismatch(q, 8 * PG, 19, 0), -1);
	CHECK_EQ(fl_object_close(o1), 0);
	CHECK_EQ(fl_object_close(o2), 0);
	/* the mappings hold their own references */
	CHECK_EQ(h_mismatch(p, 8 * PG, 18, 0), -1);
	CHECK_EQ(fl_munmap(e, p, 8 * PG), 0);
	CHECK_EQ(fl_munmap(e, q, 8 * PG), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
	h_file_remove(&g);
}
