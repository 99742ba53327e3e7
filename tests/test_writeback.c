// SPDX-License-Identifier: MIT
/* Writeback: stores through shared mappings reach the file (read back with
 * pread(2) on a separate descriptor) on msync, last munmap, object close
 * and engine destroy; the tail of a file not a multiple of the page size. */
#include "harness.h"
#include "inject.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define NPAGES 64

static unsigned char filebuf[NPAGES * PG];

/* Store seed2's pattern into pages [first, first + n) of p. */
static void dirty_pages(unsigned char *p, int first, int n, uint32_t seed2)
{
	for (int i = first; i < first + n; i++)
		h_fill(p + (size_t)i * PG, PG, seed2, (uint64_t)i * PG);
}

/* Pages [first, first + n) as a bit mask. */
static uint64_t range(int first, int n)
{
	uint64_t m = n >= 64 ? ~0ull : ((1ull << n) - 1);

	return m << first;
}

/* The file holds seed2's pattern in the pages of mask (bit i: page i) and
 * its own elsewhere. */
static void check_file(const struct h_file *f, uint64_t mask, uint32_t seed2)
{
	size_t size = f->size;

	CHECK_EQ(h_file_size(f->path), size);
	CHECK_EQ(h_pread(f->path, filebuf, size, 0), size);
	for (size_t pg = 0; pg * PG < size; pg++) {
		size_t off = pg * PG, len = size - off < PG ? size - off : PG;
		int written = pg < 64 && (mask >> pg & 1);
		uint32_t seed = written ? seed2 : f->seed;
		long bad = h_mismatch(filebuf + off, len, seed, off);

		if (bad >= 0) {
			h_fail(__FILE__, __LINE__,
			       "file byte %zu: expected %s data", off + bad,
			       written ? "new" : "old");
			return;
		}
	}
}

TEST(msync_sync_reaches_file)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;
	struct fl_stats s0, s1;

	h_file_create(&f, NPAGES * PG, 31);
	o = h_open(e, &f, O_RDWR);
	p = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	s0 = h_estats(e);
	dirty_pages(p, 8, 10, 131);
	CHECK_EQ(h_estats(e).dirty_pages, 10);
	CHECK_EQ(h_mstats(e, p).dirty_pages, 10);
	CHECK_EQ(fl_msync(e, p, NPAGES * PG, MS_SYNC), 0);
	s1 = h_estats(e);
	CHECK_EQ(s1.dirty_pages, 0);
	CHECK_EQ(h_mstats(e, p).dirty_pages, 0);
	CHECK_GE(s1.pages_written - s0.pages_written, 10);
	CHECK_LE(s1.pages_written - s0.pages_written, NPAGES);
	CHECK_GE(h_mstats(e, p).pages_written, 10);
	CHECK_EQ(s1.writeback_errors, 0);
	check_file(&f, range(8, 10), 131);
	/* the mapping still shows the new data */
	CHECK_EQ(h_mismatch(p + 8 * PG, 10 * PG, 131, 8 * PG), -1);
	CHECK_EQ(h_mismatch(p, 8 * PG, 31, 0), -1);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

TEST(msync_async_reaches_file)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;

	h_file_create(&f, NPAGES * PG, 32);
	o = h_open(e, &f, O_RDWR);
	p = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	dirty_pages(p, 0, 3, 132);
	CHECK_EQ(fl_msync(e, p, NPAGES * PG, MS_ASYNC | MS_INVALIDATE), 0);
	CHECK_EQ(h_estats(e).dirty_pages, 0);
	check_file(&f, range(0, 3), 132);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* After writeback a page is clean again: the next store is a new first
 * store, and the next msync writes the new data. */
TEST(redirty_after_msync)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;
	struct fl_stats s0, s1;

	h_file_create(&f, NPAGES * PG, 33);
	o = h_open(e, &f, O_RDWR);
	p = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	dirty_pages(p, 4, 4, 133);
	CHECK_EQ(fl_msync(e, p, NPAGES * PG, MS_SYNC), 0);
	check_file(&f, range(4, 4), 133);
	s0 = h_estats(e);
	dirty_pages(p, 4, 4, 233);
	s1 = h_estats(e);
	CHECK_EQ(s1.wp_faults - s0.wp_faults, 4);
	CHECK_EQ(s1.dirty_pages, 4);
	CHECK_EQ(fl_msync(e, p, NPAGES * PG, MS_SYNC), 0);
	CHECK_GE(h_estats(e).pages_written - s1.pages_written, 4);
	check_file(&f, range(4, 4), 233);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* msync of part of a mapping writes that part back. */
TEST(msync_range)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;

	h_file_create(&f, NPAGES * PG, 34);
	o = h_open(e, &f, O_RDWR);
	p = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	dirty_pages(p, 2, 1, 134);
	dirty_pages(p, 40, 1, 134);
	CHECK_EQ(fl_msync(e, p + 2 * PG, PG, MS_SYNC), 0);
	CHECK_EQ(h_pread(f.path, filebuf, PG, 2 * PG), PG);
	CHECK_EQ(h_mismatch(filebuf, PG, 134, 2 * PG), -1);
	CHECK_LE(h_estats(e).dirty_pages, 1); /* page 2 is clean now */
	CHECK_EQ(fl_msync(e, p + 40 * PG, 2 * PG, MS_SYNC), 0);
	CHECK_EQ(h_estats(e).dirty_pages, 0);
	check_file(&f, range(2, 1) | range(40, 1), 134);
	CHECK_EQ(h_pread(f.path, filebuf, PG, 40 * PG), PG);
	CHECK_EQ(h_mismatch(filebuf, PG, 134, 40 * PG), -1);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

TEST(munmap_last_mapping_writes_back)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p, *q;
	struct fl_stats s0;

	h_file_create(&f, NPAGES * PG, 35);
	o = h_open(e, &f, O_RDWR);
	p = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	q = h_map(e, 16 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	dirty_pages(p, 20, 5, 135);
	dirty_pages(q, 0, 2, 135);
	s0 = h_estats(e);
	CHECK_EQ(fl_munmap(e, q, 16 * PG), 0);
	CHECK_EQ(fl_munmap(e, p, NPAGES * PG), 0);
	CHECK_GE(h_estats(e).pages_written - s0.pages_written, 7);
	CHECK_EQ(h_estats(e).dirty_pages, 0);
	/* the object is still open: the data must be on disk already */
	check_file(&f, range(0, 2) | range(20, 5), 135);
	CHECK_EQ(h_pread(f.path, filebuf, 5 * PG, 20 * PG), 5 * PG);
	CHECK_EQ(h_mismatch(filebuf, 5 * PG, 135, 20 * PG), -1);
	/* and a new mapping of the open object sees it */
	p = h_map(e, NPAGES * PG, PROT_READ, MAP_SHARED, o, 0);
	CHECK_EQ(h_mismatch(p + 20 * PG, 5 * PG, 135, 20 * PG), -1);
	CHECK_EQ(h_mismatch(p + 2 * PG, 18 * PG, 35, 2 * PG), -1);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* The caller's close comes first, then the last munmap: written back. */
TEST(close_then_munmap_writes_back)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;

	h_file_create(&f, NPAGES * PG, 36);
	o = h_open(e, &f, O_RDWR);
	p = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	CHECK_EQ(fl_object_close(o), 0);
	dirty_pages(p, 30, 6, 136);
	CHECK_EQ(fl_munmap(e, p, NPAGES * PG), 0);
	check_file(&f, range(30, 6), 136);
	CHECK_EQ(h_estats(e).dirty_pages, 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* Dirty pages left when the object is released by fl_object_close. */
TEST(object_close_writes_back)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;

	h_file_create(&f, NPAGES * PG, 37);
	o = h_open(e, &f, O_RDWR);
	p = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	dirty_pages(p, 1, 2, 137);
	CHECK_EQ(fl_munmap(e, p, NPAGES * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	check_file(&f, range(1, 2), 137);
	CHECK_EQ(fl_engine_destroy(e), 0);
	check_file(&f, range(1, 2), 137);
	h_file_remove(&f);
}

/* Nothing unmapped, nothing closed: fl_engine_destroy writes back. */
TEST(engine_destroy_writes_back)
{
	struct h_file f, g;
	fl_engine *e = h_engine(2);
	fl_object *o, *o2;
	unsigned char *p, *q;

	h_file_create(&f, NPAGES * PG, 38);
	h_file_create(&g, NPAGES * PG, 39);
	o = h_open(e, &f, O_RDWR);
	o2 = h_open(e, &g, O_RDWR);
	p = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	q = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o2, 0);
	CHECK_EQ(fl_object_close(o2), 0); /* only the mapping holds o2 */
	dirty_pages(p, 50, 14, 138);
	dirty_pages(q, 0, 64, 139);
	CHECK_EQ(h_estats(e).dirty_pages, 78);
	CHECK_EQ(fl_engine_destroy(e), 0);
	check_file(&f, range(50, 14), 138);
	check_file(&g, range(0, 64), 139);
	h_file_remove(&f);
	h_file_remove(&g);
}

struct wb_ctx {
	unsigned char *p;
};

static void write_stripes(int idx, void *arg)
{
	struct wb_ctx *c = arg;

	for (int pg = idx; pg < NPAGES; pg += 4)
		h_fill(c->p + (size_t)pg * PG, PG, 140, (uint64_t)pg * PG);
}

/* Several threads dirty every page, one msync writes all of it. */
TEST(threads_then_msync)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	struct wb_ctx c;

	h_file_create(&f, NPAGES * PG, 40);
	o = h_open(e, &f, O_RDWR);
	c.p = h_map(e, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	h_run_threads(4, write_stripes, &c);
	CHECK_EQ(h_estats(e).dirty_pages, NPAGES);
	CHECK_EQ(fl_msync(e, c.p, NPAGES * PG, MS_SYNC), 0);
	CHECK_GE(h_estats(e).pages_written, NPAGES);
	check_file(&f, range(0, NPAGES), 140);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* ---- a write-protect fault read before writeback cleans its page ------- */

struct stale_wp {
	int stalled, release;
};

/* On the handler that read the first message: wait until released. */
static void stall_reader(void *arg)
{
	struct stale_wp *c = arg;

	__atomic_store_n(&c->stalled, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&c->release, __ATOMIC_ACQUIRE))
		usleep(1000);
}

static int reader_stalled(void *arg)
{
	return __atomic_load_n(&((struct stale_wp *)arg)->stalled,
			       __ATOMIC_ACQUIRE);
}

/* A thread that stores to the first word of the page once per step. */
struct stepper {
	unsigned char *p;
	int go, done, quit;
};

static void *store_on_each_step(void *arg)
{
	struct stepper *t = arg;

	for (int step = 1;; step++) {
		while (__atomic_load_n(&t->go, __ATOMIC_ACQUIRE) < step)
			if (__atomic_load_n(&t->quit, __ATOMIC_ACQUIRE))
				return NULL;
			else
				usleep(1000);
		__atomic_store_n((uint64_t *)t->p, 0x1110u + (unsigned)step,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&t->done, step, __ATOMIC_RELEASE);
	}
}

static int step_done(void *arg)
{
	struct stepper *t = arg;

	return __atomic_load_n(&t->done, __ATOMIC_ACQUIRE) ==
	       __atomic_load_n(&t->go, __ATOMIC_ACQUIRE);
}

/*
 * Two threads store to one clean page.  The stepper's store faults and
 * the handler that reads its message stalls (as one preempted as its read
 * returns); the main thread's store (word, at byte 8) is served
 * meanwhile, which lets both stores through.  Then msync cleans the page.
 */
static void stale_step(fl_engine *e, struct stepper *t, struct stale_wp *c,
		       uint64_t word)
{
	__atomic_store_n(&c->stalled, 0, __ATOMIC_RELEASE);
	__atomic_store_n(&c->release, 0, __ATOMIC_RELEASE);
	inject_on_fire(INJ_MSGS_READ, stall_reader, c);
	inject_set(INJ_MSGS_READ, 1, 0);
	__atomic_add_fetch(&t->go, 1, __ATOMIC_RELEASE);
	REQUIRE(h_wait_until(reader_stalled, c));
	__atomic_store_n((uint64_t *)(t->p + 8), word, __ATOMIC_RELAXED);
	REQUIRE(h_wait_until(step_done, t));
	CHECK_EQ(h_estats(e).dirty_pages, 1);
	CHECK_EQ(fl_msync(e, t->p, PG, MS_SYNC), 0);
	CHECK_EQ(h_estats(e).dirty_pages, 0);
}

struct stale_wp_end {
	fl_engine *e;
	uint64_t decided; /* wp_faults + wp_stale before the release */
};

static int stale_message_decided(void *arg)
{
	struct stale_wp_end *w = arg;
	struct fl_stats s = h_estats(w->e);

	return s.wp_faults + s.wp_stale > w->decided;
}

/* Let the stalled handler go on, and wait until it has served or
 * dismissed the message it holds.  Returns the stats from before. */
static struct fl_stats release_stale_message(fl_engine *e, struct stale_wp *c)
{
	struct fl_stats s = h_estats(e);
	struct stale_wp_end w = {e, s.wp_faults + s.wp_stale};

	__atomic_store_n(&c->release, 1, __ATOMIC_RELEASE);
	CHECK(h_wait_until(stale_message_decided, &w));
	CHECK_EQ(inject_fired(INJ_MSGS_READ), 1);
	inject_clear();
	return s;
}

static fl_engine *stale_engine(void)
{
	struct fl_config cfg;

	fl_config_init(&cfg);
	cfg.handler_threads = 2;
	cfg.handler_poll_us = -1; /* the other handler reads at once */
	return h_engine_create(&cfg);
}

/* A shared mapping of a new file (seed) whose first page was written
 * (byte 100: mark) and cleaned, so write-protected; the stepper started
 * on that page. */
static fl_object *stale_setup(fl_engine *e, struct h_file *f, uint32_t seed,
			      unsigned char mark, struct stepper *t,
			      pthread_t *tid)
{
	fl_object *o;

	h_file_create(f, 4 * PG, seed);
	o = h_open(e, f, O_RDWR);
	t->p = h_map(e, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	t->p[100] = mark;
	CHECK_EQ(fl_msync(e, t->p, 4 * PG, MS_SYNC), 0);
	REQUIRE(pthread_create(tid, NULL, store_on_each_step, t) == 0);
	return o;
}

/*
 * When the stalled handler goes on, the message it holds is stale: it
 * must not dirty the clean page again (it did when the message was dated
 * after the read: a dirty page after the last msync, with no store since).
 */
TEST(stale_wp_fault_does_not_redirty)
{
	struct stale_wp c = {0};
	struct stepper t = {0};
	fl_engine *e = stale_engine();
	struct h_file f;
	struct fl_stats s;
	pthread_t tid;
	fl_object *o;

	o = stale_setup(e, &f, 43, 0x43, &t, &tid);
	stale_step(e, &t, &c, 0x2222);
	s = release_stale_message(e, &c);
	__atomic_store_n(&t.quit, 1, __ATOMIC_RELEASE);
	pthread_join(tid, NULL);
	CHECK_EQ(h_estats(e).wp_stale, s.wp_stale + 1);
	CHECK_EQ(h_estats(e).wp_faults, s.wp_faults);
	CHECK_EQ(h_estats(e).dirty_pages, 0);
	CHECK_EQ(h_mstats(e, t.p).wp_stale, 1);
	/* Both stores are in the file, and the page still dirties. */
	CHECK_EQ(h_pread(f.path, filebuf, PG, 0), PG);
	CHECK_EQ(*(uint64_t *)filebuf, 0x1111);
	CHECK_EQ(*(uint64_t *)(filebuf + 8), 0x2222);
	CHECK_EQ(filebuf[100], 0x43);
	t.p[200] = 0x44;
	CHECK_EQ(h_estats(e).dirty_pages, 1);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	CHECK_EQ(h_pread(f.path, filebuf, PG, 0), PG);
	CHECK_EQ(filebuf[200], 0x44);
	h_file_remove(&f);
}

/*
 * A thread dismissed on a page that faults there again at once is served
 * whatever its message's date (else cleans in a loop could dismiss it
 * forever).  But if a fault in the same view let the store through after
 * its message was read, it is stale for sure: it must not dirty the page
 * that writeback cleaned meanwhile either.
 */
TEST(stale_wp_fault_again_does_not_redirty)
{
	struct stale_wp c = {0};
	struct stepper t = {0};
	fl_engine *e = stale_engine();
	struct h_file f;
	pthread_t tid;
	fl_object *o;

	o = stale_setup(e, &f, 44, 0x44, &t, &tid);
	for (int round = 0; round < 2; round++) {
		/* Round 0 dismisses the thread's message on the page; in
		 * round 1 its next one there is the one that faults again. */
		struct fl_stats s;

		stale_step(e, &t, &c, 0x2220u + (unsigned)round);
		s = release_stale_message(e, &c);
		CHECK_EQ(h_estats(e).wp_stale, s.wp_stale + 1);
		CHECK_EQ(h_estats(e).dirty_pages, 0);
	}
	__atomic_store_n(&t.quit, 1, __ATOMIC_RELEASE);
	pthread_join(tid, NULL);
	CHECK_EQ(h_pread(f.path, filebuf, PG, 0), PG);
	CHECK_EQ(*(uint64_t *)filebuf, 0x1112);
	CHECK_EQ(*(uint64_t *)(filebuf + 8), 0x2221);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/*
 * A file of 10000 bytes: 2 pages and 1808 bytes.  The bytes of the last
 * page beyond the end read as zeros; stores there are not written back and
 * the file does not grow.
 */
#define TAIL_SIZE 10000

TEST(tail_page_zeros_and_no_extension)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p, *q;
	struct fl_stats s0;

	h_file_create(&f, TAIL_SIZE, 41);
	o = h_open(e, &f, O_RDWR);
	CHECK_EQ(fl_object_size(o), TAIL_SIZE);
	p = h_map(e, 3 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	q = h_map(e, 3 * PG, PROT_READ, MAP_PRIVATE, o, 0);
	CHECK_EQ(h_mismatch(p, TAIL_SIZE, 41, 0), -1);
	CHECK_EQ(h_nonzero(p + TAIL_SIZE, 3 * PG - TAIL_SIZE), -1);
	CHECK_EQ(h_mismatch(q, TAIL_SIZE, 41, 0), -1);
	CHECK_EQ(h_nonzero(q + TAIL_SIZE, 3 * PG - TAIL_SIZE), -1);
	s0 = h_estats(e);
	memset(p + 2 * PG, 0xee, PG); /* also past the end */
	CHECK_EQ(fl_msync(e, p, 3 * PG, MS_SYNC), 0);
	CHECK_GE(h_estats(e).pages_written - s0.pages_written, 1);
	CHECK_EQ(h_file_size(f.path), TAIL_SIZE);
	CHECK_EQ(h_pread(f.path, filebuf, 3 * PG, 0), TAIL_SIZE);
	CHECK_EQ(h_mismatch(filebuf, 2 * PG, 41, 0), -1);
	for (size_t i = 2 * PG; i < TAIL_SIZE; i++)
		if (filebuf[i] != 0xee) {
			h_fail(__FILE__, __LINE__, "file byte %zu is %d", i,
			       filebuf[i]);
			break;
		}
	CHECK_EQ(fl_munmap(e, p, 3 * PG), 0);
	CHECK_EQ(fl_munmap(e, q, 3 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	CHECK_EQ(h_file_size(f.path), TAIL_SIZE);
	h_file_remove(&f);
}

/* A tail page written only past the end and released by munmap. */
TEST(tail_page_write_past_end_only)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;

	h_file_create(&f, PG + 100, 42);
	o = h_open(e, &f, O_RDWR);
	p = h_map(e, 2 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	p[PG + 200] = 0x77;
	CHECK_EQ(p[PG + 200], 0x77);
	CHECK_EQ(h_mismatch(p, PG + 100, 42, 0), -1);
	CHECK_EQ(fl_munmap(e, p, 2 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	CHECK_EQ(h_file_size(f.path), PG + 100);
	CHECK_EQ(h_pread(f.path, filebuf, 2 * PG, 0), PG + 100);
	CHECK_EQ(h_mismatch(filebuf, PG + 100, 42, 0), -1);
	h_file_remove(&f);
}
