// SPDX-License-Identifier: MIT
/*
 * Concurrency stress, bounded: a few seconds at most per case.  Time only
 * limits how long a case runs; what it checks is the data, the counters and
 * that every thread finishes.  What a check relies on having happened (an
 * msync while writers write, a round, a churn) is waited for or counted,
 * never assumed from the time: a busy machine may run a thread late.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define NPAGES	    32
#define WRITERS	    4
#define SLOTS	    128 /* 8-byte words per quarter page */
#define RUN_SECONDS 1.0
#define MIN_ROUNDS  2 /* first_store_races and map churn, however slow */

static unsigned char filebuf[NPAGES * PG];

/* A word written by writer t into page pg: recognisable and checkable. */
static uint64_t word(int pg, int t, uint64_t k)
{
	return 0xF1ull << 56 | (uint64_t)pg << 40 | (uint64_t)t << 32 | k;
}

struct stress {
	fl_engine *e;
	unsigned char *a, *b; /* two shared mappings of one object */
	uint32_t seed;
	double end;
	int writers_done;
	int finishing[WRITERS]; /* writer t is storing its final state */
	uint64_t progress[WRITERS];
	unsigned long msyncs, dontneeds;
};

/* Is the word at page pg, quarter t, slot s acceptable right now? */
static int word_ok(struct stress *c, const unsigned char *base, int pg, int t,
		   int s)
{
	size_t off = (size_t)pg * PG + (size_t)t * 1024 + (size_t)s * 8;
	uint64_t w = __atomic_load_n((const uint64_t *)(base + off),
				     __ATOMIC_ACQUIRE);
	uint64_t limit = __atomic_load_n(&c->progress[t], __ATOMIC_ACQUIRE);

	if (__atomic_load_n(&c->finishing[t], __ATOMIC_ACQUIRE))
		return 1;
	if (w >> 56 == 0xF1)
		return (int)(w >> 40 & 0xffff) == pg &&
		       (int)(w >> 32 & 0xff) == t &&
		       (w & 0xffffffff) <= limit + 1;
	return h_mismatch(&w, 8, c->seed, off) == -1;
}

static unsigned long msyncs_done(struct stress *c)
{
	return __atomic_load_n(&c->msyncs, __ATOMIC_ACQUIRE);
}

/*
 * Writers go on for the run's time and until two msyncs have completed
 * since each had dirtied its quarter of every page: then some page was
 * cleaned under the writers, and their final stores dirty it again.
 */
static void writer(struct stress *c, int t)
{
	unsigned char *m = t % 2 ? c->b : c->a;
	unsigned long base = ~0ul; /* msyncs when every page was dirtied */
	uint64_t k = 0;

	while (h_now() < c->end || base == ~0ul || msyncs_done(c) < base + 2) {
		if (k == 3) /* pages k % 3, stepping 3: all of them written */
			base = msyncs_done(c);
		k++;
		__atomic_store_n(&c->progress[t], k, __ATOMIC_RELEASE);
		for (int pg = (int)(k % 3); pg < NPAGES; pg += 3) {
			size_t off = (size_t)pg * PG + (size_t)t * 1024 +
				     (size_t)(k % SLOTS) * 8;

			__atomic_store_n((uint64_t *)(m + off), word(pg, t, k),
					 __ATOMIC_RELEASE);
		}
	}
	/* the final state: this writer's quarter of every page */
	__atomic_store_n(&c->finishing[t], 1, __ATOMIC_RELEASE);
	for (int pg = 0; pg < NPAGES; pg++)
		h_fill(m + (size_t)pg * PG + (size_t)t * 1024, 1024,
		       c->seed + 1 + (uint32_t)t,
		       (uint64_t)pg * PG + (uint64_t)t * 1024);
	__atomic_add_fetch(&c->writers_done, 1, __ATOMIC_RELEASE);
}

static void reader(struct stress *c, int idx)
{
	unsigned char *m = idx % 2 ? c->a : c->b;

	while (__atomic_load_n(&c->writers_done, __ATOMIC_ACQUIRE) < WRITERS) {
		for (int pg = 0; pg < NPAGES; pg++)
			for (int t = 0; t < WRITERS; t++) {
				int s = (pg * 7 + t * 13) % SLOTS;

				if (!word_ok(c, m, pg, t, s)) {
					h_fail(__FILE__, __LINE__,
					       "page %d quarter %d slot %d "
					       "holds a bad word",
					       pg, t, s);
					return;
				}
			}
	}
}

static void syncer(struct stress *c, int use_dontneed)
{
	while (__atomic_load_n(&c->writers_done, __ATOMIC_ACQUIRE) < WRITERS) {
		int flags = msyncs_done(c) % 2 ? MS_SYNC : MS_ASYNC;

		if (fl_msync(c->e, c->a, NPAGES * PG, flags) != 0) {
			h_fail(__FILE__, __LINE__, "fl_msync: %s",
			       strerror(errno));
			break;
		}
		__atomic_add_fetch(&c->msyncs, 1, __ATOMIC_RELEASE);
		if (use_dontneed) {
			size_t pg = c->dontneeds % (NPAGES - 3);

			if (fl_madvise(c->e, c->b + pg * PG, 4 * PG,
				       MADV_DONTNEED) != 0) {
				h_fail(__FILE__, __LINE__, "fl_madvise: %s",
				       strerror(errno));
				break;
			}
			c->dontneeds++;
		}
	}
	/* Failed: the writers wait for msyncs that will not come. */
	if (h_failures())
		__atomic_add_fetch(&c->msyncs, 1ul << 30, __ATOMIC_RELEASE);
}

static int dontneed_mode;

static void stress_thread(int idx, void *arg)
{
	struct stress *c = arg;

	if (idx < WRITERS)
		writer(c, idx);
	else if (idx < WRITERS + 2)
		reader(c, idx);
	else
		syncer(c, dontneed_mode);
}

static void run_stress(int with_dontneed)
{
	struct h_file f;
	struct stress c = {0};
	fl_object *o;
	struct fl_stats s;

	h_file_create(&f, NPAGES * PG, 141);
	c.seed = 141;
	c.e = h_engine(2);
	o = h_open(c.e, &f, O_RDWR);
	c.a = h_map(c.e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	c.b = h_map(c.e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	c.end = h_now() + RUN_SECONDS;
	dontneed_mode = with_dontneed;
	h_run_threads(WRITERS + 3, stress_thread, &c);
	CHECK_GT(c.msyncs, 0);
	if (getenv("FL_TEST_VERBOSE"))
		h_note("%lu msyncs, %lu dontneeds, %llu wp faults, %llu "
		       "pages written, writer 0 at %llu",
		       c.msyncs, c.dontneeds,
		       (unsigned long long)h_estats(c.e).wp_faults,
		       (unsigned long long)h_estats(c.e).pages_written,
		       (unsigned long long)c.progress[0]);
	/* both views agree with the final state */
	for (int pg = 0; pg < NPAGES; pg++)
		for (int t = 0; t < WRITERS; t++) {
			size_t off = (size_t)pg * PG + (size_t)t * 1024;

			CHECK_EQ(h_mismatch(c.a + off, 1024, 142 + (uint32_t)t,
					    off),
				 -1);
			CHECK_EQ(h_mismatch(c.b + off, 1024, 142 + (uint32_t)t,
					    off),
				 -1);
		}
	CHECK_EQ(fl_msync(c.e, c.b, NPAGES * PG, MS_SYNC), 0);
	s = h_estats(c.e);
	CHECK_EQ(s.dirty_pages, 0);
	CHECK_EQ(s.errors, 0);
	CHECK_EQ(s.writeback_errors, 0);
	CHECK_GT(s.wp_faults, NPAGES); /* pages were cleaned and redirtied */
	CHECK_EQ(h_pread(f.path, filebuf, NPAGES * PG, 0), NPAGES * PG);
	for (int pg = 0; pg < NPAGES; pg++)
		for (int t = 0; t < WRITERS; t++) {
			size_t off = (size_t)pg * PG + (size_t)t * 1024;

			if (h_mismatch(filebuf + off, 1024, 142 + (uint32_t)t,
				       off) != -1) {
				h_fail(__FILE__, __LINE__,
				       "file page %d quarter %d", pg, t);
				pg = NPAGES;
				break;
			}
		}
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(c.e), 0);
	h_file_remove(&f);
}

/* Writers on both mappings, readers checking every word, msync looping. */
TEST(writers_readers_msync)
{
	run_stress(0);
}

/* The same, with MADV_DONTNEED dropping one mapping's view meanwhile. */
TEST(writers_readers_msync_dontneed)
{
	run_stress(1);
}

/*
 * Many threads make the first store to the same clean pages at once, shared
 * and private: no store may be lost, a private page is copied once and
 * keeps every thread's byte.
 */
struct race_ctx {
	unsigned char *s, *p;
	int round;
};

static void first_store_racer(int idx, void *arg)
{
	struct race_ctx *c = arg;

	for (int pg = 0; pg < NPAGES; pg++) {
		c->p[(size_t)pg * PG + (size_t)idx] =
			(unsigned char)(0x80 + idx);
		c->s[(size_t)pg * PG + 64 + (size_t)idx] =
			(unsigned char)(0x90 + idx + c->round);
	}
}

TEST(first_store_races)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	struct race_ctx c;
	double end = h_now() + RUN_SECONDS;
	struct fl_stats s;
	int rounds = 0;

	h_file_create(&f, NPAGES * PG, 143);
	o = h_open(e, &f, O_RDWR);
	while ((rounds < MIN_ROUNDS || h_now() < end) && rounds < 50 &&
	       !h_failures()) {
		c.round = rounds;
		c.s = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED,
			    o, 0);
		c.p = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE,
			    o, 0);
		if (rounds % 2) /* half the rounds: pages mapped clean first */
			for (int pg = 0; pg < NPAGES; pg++)
				CHECK_EQ(h_mismatch(c.p + (size_t)pg * PG, 64,
						    143, (size_t)pg * PG),
					 -1);
		h_run_threads(6, first_store_racer, &c);
		for (int pg = 0; pg < NPAGES; pg++) {
			unsigned char *pp = c.p + (size_t)pg * PG;
			unsigned char *sp = c.s + (size_t)pg * PG;

			for (int t = 0; t < 6; t++) {
				CHECK_EQ(pp[t], 0x80 + t);
				CHECK_EQ(sp[64 + t], 0x90 + t + rounds);
			}
			CHECK_EQ(h_mismatch(pp + 6, 58, 143,
					    (size_t)pg * PG + 6),
				 -1);
			CHECK_EQ(h_mismatch(pp + 128, PG - 128, 143,
					    (size_t)pg * PG + 128),
				 -1);
		}
		s = h_mstats(e, c.p);
		CHECK_EQ(s.cow_copies, NPAGES);
		/* one first store per clean page, however many threads race */
		s = h_mstats(e, c.s);
		CHECK_EQ(s.wp_faults, NPAGES);
		CHECK_EQ(s.dirty_pages, NPAGES);
		CHECK_EQ(fl_msync(e, c.s, NPAGES * PG, MS_SYNC), 0);
		/*
		 * A racing first store's write-protect message can still be
		 * queued in the kernel through a whole writeback and re-dirty
		 * a page once (one needless write, never lost data:
		 * docs/design.md).  A second msync leaves nothing dirty.
		 */
		CHECK_LE(h_estats(e).dirty_pages, 2);
		CHECK_EQ(fl_msync(e, c.s, NPAGES * PG, MS_SYNC), 0);
		CHECK_EQ(h_estats(e).dirty_pages, 0);
		CHECK_EQ(fl_munmap(e, c.p, NPAGES * PG), 0);
		CHECK_EQ(fl_munmap(e, c.s, NPAGES * PG), 0);
		CHECK_EQ(h_pread(f.path, filebuf, NPAGES * PG, 0), NPAGES * PG);
		for (int pg = 0; pg < NPAGES; pg++) {
			unsigned char *fp = filebuf + (size_t)pg * PG;

			for (int t = 0; t < 6; t++)
				CHECK_EQ(fp[64 + t], 0x90 + t + rounds);
			CHECK_EQ(h_mismatch(fp, 64, 143, (size_t)pg * PG), -1);
		}
		rounds++;
	}
	CHECK_GT(rounds, 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* One thread maps, touches and unmaps in a loop (the map lock taken for
 * writing) while others fault on a file mapping. */
struct churn_ctx {
	fl_engine *e;
	unsigned char *p;
	int stop;
	int churns;
};

static void churn_thread(int idx, void *arg)
{
	struct churn_ctx *c = arg;

	if (idx == 0) {
		double end = h_now() + RUN_SECONDS;

		while ((c->churns < MIN_ROUNDS || h_now() < end) &&
		       c->churns < 2000) {
			unsigned char *a = fl_mmap(
				c->e, NULL, 4 * PG, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);

			if (a == MAP_FAILED) {
				h_fail(__FILE__, __LINE__, "fl_mmap: %s",
				       strerror(errno));
				break;
			}
			a[PG] = 7;
			if (a[PG] != 7 || a[0] != 0)
				h_fail(__FILE__, __LINE__, "anon data");
			if (fl_munmap(c->e, a, 4 * PG) != 0)
				h_fail(__FILE__, __LINE__, "fl_munmap");
			c->churns++;
		}
		__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
		return;
	}
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		if (fl_madvise(c->e, c->p, 256 * PG, MADV_DONTNEED) != 0)
			h_fail(__FILE__, __LINE__, "fl_madvise");
		for (int pg = idx - 1; pg < 256; pg += 3)
			if (h_mismatch(c->p + (size_t)pg * PG + 100, 16, 144,
				       (uint64_t)pg * PG + 100) != -1) {
				h_fail(__FILE__, __LINE__, "page %d", pg);
				return;
			}
		if (h_failures())
			return;
	}
}

TEST(map_churn_with_faults)
{
	struct h_file f;
	struct churn_ctx c = {0};
	fl_object *o;

	h_file_create(&f, 256 * PG, 144);
	c.e = h_engine(2);
	o = h_open(c.e, &f, O_RDONLY);
	c.p = h_map(c.e, 256 * PG, PROT_READ, MAP_PRIVATE, o, 0);
	h_run_threads(4, churn_thread, &c);
	CHECK_GT(c.churns, 0);
	CHECK_EQ(h_estats(c.e).errors, 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(c.e), 0);
	h_file_remove(&f);
}

/*
 * Engines live and die side by side.  What parked faults use is the
 * process's, not an engine's (the table of waiters parked on pages, the
 * pool of fault records), so each thread here runs engines of its own,
 * round after round, while the others do: shared anonymous memory filled
 * by the kernel's copy from a memfd (faults taken inside read(2), as the
 * Python binding's Mapping.write does), a hole punched in it, a file read
 * through readahead from two threads of the round, and every other
 * engine destroyed with its mapping and object still open.
 */
#define SIDE_ENGINES	3
#define SIDE_ANON_PAGES 256
#define SIDE_FILE_PAGES 512

struct side_ctx {
	struct h_file file;
	double end;
	unsigned long rounds[SIDE_ENGINES];
};

struct side_round {
	const unsigned char *view;
	uint64_t sum[2];
};

/* Half of the file each, in opposite directions: two streams at once. */
static void side_reader(int idx, void *arg)
{
	struct side_round *r = arg;
	uint64_t sum = 0;

	for (int i = 0; i < SIDE_FILE_PAGES / 2; i++) {
		int pg = idx ? SIDE_FILE_PAGES - 1 - i : i;

		sum += r->view[(size_t)pg * PG + (size_t)(pg % 61) * 64];
	}
	r->sum[idx] = sum;
}

static uint64_t side_expected(int idx)
{
	uint64_t sum = 0;

	for (int i = 0; i < SIDE_FILE_PAGES / 2; i++) {
		int pg = idx ? SIDE_FILE_PAGES - 1 - i : i;
		uint64_t off = (uint64_t)pg * PG + (uint64_t)(pg % 61) * 64;

		sum += h_pattern(145, off);
	}
	return sum;
}

/* Fill m (n bytes, seed) with read(2) from a memfd: the kernel's copy
 * takes the faults. */
static void side_fill_by_read(unsigned char *m, size_t n, uint32_t seed)
{
	const size_t chunk_len = 64 * PG;
	unsigned char *chunk = malloc(chunk_len);
	int fd = memfd_create("side", 0);

	REQUIRE(chunk && fd >= 0);
	for (size_t o = 0; o < n; o += chunk_len) {
		size_t len = n - o < chunk_len ? n - o : chunk_len;

		h_fill(chunk, len, seed, o);
		REQUIRE(pwrite(fd, chunk, len, 0) == (ssize_t)len);
		REQUIRE(pread(fd, m + o, len, 0) == (ssize_t)len);
	}
	close(fd);
	free(chunk);
}

static void side_round(struct side_ctx *c, int idx, unsigned long round)
{
	size_t anon_len = SIDE_ANON_PAGES * PG;
	uint32_t seed = 146 + (uint32_t)idx;
	fl_engine *e = h_engine_cfg(2, 0, 32);
	fl_object *o = h_open(e, &c->file, O_RDONLY);
	struct side_round r = {0};
	unsigned char *anon;

	anon = h_map(e, anon_len, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, NULL, 0);
	r.view = h_map(e, SIDE_FILE_PAGES * PG, PROT_READ, MAP_SHARED, o, 0);
	side_fill_by_read(anon, anon_len, seed);
	CHECK_EQ(fl_madvise(e, anon + 8 * PG, 16 * PG, MADV_REMOVE), 0);
	h_run_threads(2, side_reader, &r);
	CHECK_EQ(r.sum[0], side_expected(0));
	CHECK_EQ(r.sum[1], side_expected(1));
	CHECK_EQ(h_mismatch(anon, 8 * PG, seed, 0), -1);
	CHECK_EQ(h_nonzero(anon + 8 * PG, 16 * PG), -1); /* the hole */
	CHECK_EQ(h_mismatch(anon + 24 * PG, anon_len - 24 * PG, seed, 24 * PG),
		 -1);
	CHECK_EQ(h_estats(e).errors, 0);
	if (round % 2 == 0) { /* the tidy way */
		CHECK_EQ(fl_munmap(e, anon, anon_len), 0);
		CHECK_EQ(fl_munmap(e, (void *)r.view, SIDE_FILE_PAGES * PG), 0);
		CHECK_EQ(fl_object_close(o), 0);
	}
	CHECK_EQ(fl_engine_destroy(e), 0); /* and the other: it closes all */
}

static void side_thread(int idx, void *arg)
{
	struct side_ctx *c = arg;

	while (!h_failures() &&
	       (h_now() < c->end || c->rounds[idx] < MIN_ROUNDS))
		side_round(c, idx, c->rounds[idx]++);
}

TEST(engines_live_and_die_side_by_side)
{
	struct side_ctx c = {0};

	h_file_create(&c.file, SIDE_FILE_PAGES * PG, 145);
	c.end = h_now() + RUN_SECONDS;
	h_run_threads(SIDE_ENGINES, side_thread, &c);
	for (int i = 0; i < SIDE_ENGINES; i++)
		CHECK_GE(c.rounds[i], MIN_ROUNDS);
	h_file_remove(&c.file);
}
