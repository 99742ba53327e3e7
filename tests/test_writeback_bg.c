// SPDX-License-Identifier: MIT
/*
 * Dirty data under a memory limit: random writes read only their own page
 * (readahead's random detection applies to write faults too).  Everything
 * is decided by counters, never by time.
 */
#include "harness.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/*
 * The engine's own resident memory beyond the pages charged to groups, as
 * README states it: at most 2 MiB plus 1/16 of the memory limit (page
 * descriptors and the cache's tree, about 100 bytes a cached page; thread
 * stacks, the ring; pages mapped in the engine's view for I/O in flight).
 */
#define ENGINE_OVERHEAD_BYTES(limit) ((2u << 20) + (limit) / 16)

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

/* ---- background writeback, throttling, write errors ----------------------
 */

enum { LIMIT = 256, BG = 25, FREERUN = 38 }; /* pages; default 20%/10% */

static struct fl_group_stats gstats(fl_group *g)
{
	struct fl_group_stats s;

	REQUIRE(fl_group_stats(g, &s) == 0);
	return s;
}

static fl_group *limited(fl_engine *e)
{
	fl_group *g = fl_group_create(e, NULL, "dirty");

	REQUIRE(g != NULL);
	REQUIRE(fl_group_set_max(g, LIMIT * PG) == 0);
	return g;
}

/* Store seed2's pattern into page pg of p. */
static void dirty_page(unsigned char *p, unsigned pg, uint32_t seed2)
{
	h_fill(p + (size_t)pg * PG, PG, seed2, (uint64_t)pg * PG);
}

/* Whether page pg of the file holds seed2's pattern. */
static int file_page_new(const char *path, unsigned pg, uint32_t seed2)
{
	static unsigned char buf[PG];

	REQUIRE(h_pread(path, buf, PG, (uint64_t)pg * PG) == PG);
	return h_mismatch(buf, PG, seed2, (uint64_t)pg * PG) < 0;
}

struct dirty_wait {
	fl_group *g;
	uint64_t at_most; /* dirty (and under writeback) pages */
	uint64_t flushed; /* at least */
};

static int dirty_down(void *arg)
{
	struct dirty_wait *w = arg;
	struct fl_group_stats s = gstats(w->g);

	return s.dirty_pages + s.writeback_pages <= w->at_most &&
	       s.pages_flushed >= w->flushed;
}

TEST(dirty_ratio_arguments)
{
	fl_engine *e = h_engine(1);
	fl_group *g = limited(e);
	struct fl_group_stats s = gstats(g);

	CHECK_EQ(s.dirty_limit, LIMIT * 20 / 100 * PG);
	CHECK_EQ(s.dirty_background, BG * PG);
	CHECK_ERR(fl_group_set_dirty_ratio(NULL, 20, 10), EINVAL);
	CHECK_ERR(fl_group_set_dirty_ratio(g, 10, 20), EINVAL);
	CHECK_ERR(fl_group_set_dirty_ratio(g, 101, 10), EINVAL);
	CHECK_ERR(fl_group_set_dirty_ratio(g, 20, 0), EINVAL);
	CHECK_EQ(fl_group_set_dirty_ratio(g, 50, 25), 0);
	s = gstats(g);
	CHECK_EQ(s.dirty_limit, LIMIT * PG / 2);
	CHECK_EQ(s.dirty_background, LIMIT * PG / 4);
	CHECK_EQ(gstats(fl_group_root(e)).dirty_limit, FL_GROUP_UNLIMITED);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

TEST(background_writeback_starts_above_the_background_threshold)
{
	fl_engine *e = h_engine_cfg(2, 1, 1);
	fl_group *g = limited(e);
	struct h_file f;
	fl_object *o;
	unsigned char *p;
	struct fl_group_stats s;
	struct dirty_wait w;
	unsigned written = 0;

	h_file_create(&f, 1024 * PG, 92);
	o = h_open(e, &f, O_RDWR);
	p = fl_mmap_group(e, g, NULL, 1024 * PG, PROT_READ | PROT_WRITE,
			  MAP_SHARED, o, 0);
	REQUIRE(p != MAP_FAILED);
	/* Below the background threshold: nothing is written. */
	for (unsigned pg = 0; pg < BG - 5; pg++)
		dirty_page(p, pg, 192);
	s = gstats(g);
	CHECK_EQ(s.dirty_pages, BG - 5);
	CHECK_EQ(s.pages_flushed, 0);
	CHECK_EQ(s.writeback_pages, 0);
	CHECK_EQ(h_estats(e).pages_written, 0);
	/* Above it: the flusher writes them back, down to below it. */
	for (unsigned pg = BG - 5; pg < 60; pg++)
		dirty_page(p, pg, 192);
	w = (struct dirty_wait){g, BG, 1};
	CHECK(h_wait_until(dirty_down, &w));
	s = gstats(g);
	CHECK_GE(s.pages_written_back, s.pages_flushed);
	/* Pages under writeback then may not be in the file yet. */
	for (unsigned pg = 0; pg < 60; pg++)
		written += file_page_new(f.path, pg, 192);
	CHECK_GE(written, 60 - s.dirty_pages - s.writeback_pages);
	CHECK_EQ(fl_msync(e, p, 1024 * PG, MS_SYNC), 0);
	for (unsigned pg = 0; pg < 60; pg++)
		CHECK(file_page_new(f.path, pg, 192));
	CHECK_EQ(h_mismatch(p + 60 * PG, PG, 92, 60 * PG), -1);
	CHECK_EQ(fl_munmap(e, p, 1024 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

TEST(lowering_the_dirty_ratio_starts_background_writeback)
{
	fl_engine *e = h_engine_cfg(2, 1, 1);
	fl_group *g = limited(e);
	struct h_file f;
	fl_object *o;
	unsigned char *p;
	struct dirty_wait w;

	h_file_create(&f, 256 * PG, 97);
	o = h_open(e, &f, O_RDWR);
	p = fl_mmap_group(e, g, NULL, 256 * PG, PROT_READ | PROT_WRITE,
			  MAP_SHARED, o, 0);
	REQUIRE(p != MAP_FAILED);
	for (unsigned pg = 0; pg < BG - 5; pg++)
		dirty_page(p, pg, 197);
	CHECK_EQ(gstats(g).pages_flushed, 0);
	/* 5 % of 256 pages: 12; the 20 dirty pages are over it now. */
	CHECK_EQ(fl_group_set_dirty_ratio(g, 10, 5), 0);
	w = (struct dirty_wait){g, 12, 1};
	CHECK(h_wait_until(dirty_down, &w));
	CHECK_EQ(fl_msync(e, p, 256 * PG, MS_SYNC), 0);
	for (unsigned pg = 0; pg < BG - 5; pg++)
		CHECK(file_page_new(f.path, pg, 197));
	CHECK_EQ(fl_munmap(e, p, 256 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* An object over a faulty file store (no asynchronous path: the flusher
 * writes on its own thread). */
static fl_object *faulty_object(fl_engine *e, const struct h_file *f,
				struct fl_store **st,
				const struct fl_store_faults *ff)
{
	struct fl_store *inner = fl_store_file_open(f->path, O_RDWR);
	fl_object *o;

	REQUIRE(inner != NULL);
	*st = fl_store_faulty(inner, ff);
	REQUIRE(*st != NULL);
	o = fl_object_create(e, *st, O_RDWR);
	REQUIRE(o != NULL);
	return o;
}

TEST(writers_are_throttled_above_the_limit_and_released_below)
{
	fl_engine *e = h_engine_cfg(2, 1, 1);
	fl_group *g = limited(e);
	struct fl_store_faults ff = {.write_delay_us = 1000};
	struct fl_store *st;
	struct h_file f;
	fl_object *o;
	unsigned char *p;
	struct fl_group_stats s;
	struct dirty_wait w;

	h_file_create(&f, 1024 * PG, 93);
	o = faulty_object(e, &f, &st, &ff);
	p = fl_mmap_group(e, g, NULL, 1024 * PG, PROT_READ | PROT_WRITE,
			  MAP_SHARED, o, 0);
	REQUIRE(p != MAP_FAILED);
	/* Every other page, while the store fails their writes: they stay
	 * dirty, so the writer is paused once it is over the throttling
	 * threshold, however fast the flusher is.  (With slow writes alone,
	 * a busy machine's writer did not always outrun the flusher.)  Then
	 * the store heals, but stays slow. */
	ff.fail_every_nth_write = 1;
	REQUIRE(fl_store_faulty_set(st, &ff) == 0);
	for (unsigned i = 0; i < 120; i++) {
		p[(size_t)i * 2 * PG] = (unsigned char)(i + 1);
		if (ff.fail_every_nth_write && gstats(g).throttled) {
			ff.fail_every_nth_write = 0;
			REQUIRE(fl_store_faulty_set(st, &ff) == 0);
		}
	}
	s = gstats(g);
	CHECK_EQ(ff.fail_every_nth_write, 0);
	CHECK_GT(s.throttled, 0);
	CHECK_GT(s.throttle_ns, 0);
	/* Once the flusher is below the throttling threshold, a writer
	 * goes on unpaused. */
	w = (struct dirty_wait){g, FREERUN - 1, 1};
	CHECK(h_wait_until(dirty_down, &w));
	s = gstats(g);
	p[(size_t)300 * PG] = 1;
	CHECK_EQ(gstats(g).throttled, s.throttled);
	CHECK_EQ(fl_msync(e, p, 1024 * PG, MS_SYNC), 0);
	for (unsigned i = 0; i < 120; i++)
		CHECK_EQ(p[(size_t)i * 2 * PG], (unsigned char)(i + 1));
	CHECK_EQ(gstats(g).dirty_pages, 0);
	CHECK_EQ(fl_munmap(e, p, 1024 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/*
 * A file store with an asynchronous path of its own: submit does each
 * request at once and completes it inline; writes touching the failing
 * range fail.  So the flusher's submitted writes and their errors are
 * tested whether or not the library has io_uring.  While hold_reads is
 * set, reads are kept (in flight) until inline_release_reads.
 */
#define HELD_MAX 16

struct inline_store {
	struct fl_store base;
	struct fl_store *inner;
	_Atomic uint64_t fail_offset, fail_length;
	_Atomic unsigned long submitted_writes;
	pthread_mutex_t lock;
	int hold_reads;
	unsigned nr_held;
	struct fl_store_io *held[HELD_MAX];
};

static struct inline_store *to_inline(struct fl_store *s)
{
	return (struct inline_store *)s;
}

static int inline_fails(struct fl_store *s, size_t len, uint64_t off)
{
	uint64_t fo = atomic_load(&to_inline(s)->fail_offset);
	uint64_t fl = atomic_load(&to_inline(s)->fail_length);

	return fl && off < fo + fl && off + len > fo;
}

static ssize_t inline_read(struct fl_store *s, void *buf, size_t len,
			   uint64_t off)
{
	struct fl_store *in = to_inline(s)->inner;

	return in->ops->read(in, buf, len, off);
}

static ssize_t inline_write(struct fl_store *s, const void *buf, size_t len,
			    uint64_t off)
{
	struct fl_store *in = to_inline(s)->inner;

	if (inline_fails(s, len, off)) {
		errno = EIO;
		return -1;
	}
	return in->ops->write(in, buf, len, off);
}

static int64_t inline_size(struct fl_store *s)
{
	struct fl_store *in = to_inline(s)->inner;

	return in->ops->size(in);
}

static _Atomic unsigned inline_stores_destroyed;

static void inline_destroy(struct fl_store *s)
{
	struct fl_store *in = to_inline(s)->inner;

	atomic_fetch_add(&inline_stores_destroyed, 1);
	in->ops->destroy(in);
	pthread_mutex_destroy(&to_inline(s)->lock);
	free(s);
}

/* A read to keep (hold_reads): 1 if kept. */
static int inline_hold(struct inline_store *st, struct fl_store_io *io)
{
	int held = 0;

	pthread_mutex_lock(&st->lock);
	if (st->hold_reads && st->nr_held < HELD_MAX) {
		st->held[st->nr_held++] = io;
		held = 1;
	}
	pthread_mutex_unlock(&st->lock);
	return held;
}

static unsigned inline_nr_held(struct inline_store *st)
{
	unsigned n;

	pthread_mutex_lock(&st->lock);
	n = st->nr_held;
	pthread_mutex_unlock(&st->lock);
	return n;
}

static int some_read_held(void *arg)
{
	return inline_nr_held(arg) > 0;
}

/* Hold no more reads; do and complete those kept, from this thread. */
static void inline_release_reads(struct inline_store *st)
{
	struct fl_store_io *ios[HELD_MAX];
	unsigned n;

	pthread_mutex_lock(&st->lock);
	st->hold_reads = 0;
	n = st->nr_held;
	memcpy(ios, st->held, n * sizeof(ios[0]));
	st->nr_held = 0;
	pthread_mutex_unlock(&st->lock);
	for (unsigned i = 0; i < n; i++) {
		ssize_t r = inline_read(&st->base, ios[i]->buf, ios[i]->len,
					ios[i]->off);

		fl_store_io_complete(ios[i], r < 0 ? -errno : r);
	}
}

static int inline_submit(struct fl_store *s, struct fl_store_io *const *ios,
			 unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		ssize_t r;

		if (ios[i]->write) {
			atomic_fetch_add(&to_inline(s)->submitted_writes, 1);
			r = inline_write(s, ios[i]->buf, ios[i]->len,
					 ios[i]->off);
		} else if (inline_hold(to_inline(s), ios[i])) {
			continue; /* completed by inline_release_reads */
		} else {
			r = inline_read(s, ios[i]->buf, ios[i]->len,
					ios[i]->off);
		}
		fl_store_io_complete(ios[i], r < 0 ? -errno : r);
	}
	return (int)n;
}

static const struct fl_store_ops inline_ops = {
	.read = inline_read,
	.write = inline_write,
	.size = inline_size,
	.destroy = inline_destroy,
	.submit = inline_submit,
};

static fl_object *inline_object(fl_engine *e, const struct h_file *f,
				struct inline_store **st)
{
	fl_object *o;

	*st = calloc(1, sizeof(**st));
	REQUIRE(*st != NULL);
	(*st)->base.ops = &inline_ops;
	pthread_mutex_init(&(*st)->lock, NULL);
	(*st)->inner = fl_store_file_open(f->path, O_RDWR);
	REQUIRE((*st)->inner != NULL);
	o = fl_object_create(e, &(*st)->base, O_RDWR);
	REQUIRE(o != NULL);
	return o;
}

struct errors_wait {
	fl_engine *e;
	fl_group *g;
	uint64_t errors; /* engine's writeback_errors, at least */
	uint64_t dirty;	 /* the group's dirty pages, at most */
};

static int errors_seen(void *arg)
{
	struct errors_wait *w = arg;
	struct fl_group_stats s = gstats(w->g);

	return h_estats(w->e).writeback_errors >= w->errors &&
	       s.dirty_pages <= w->dirty && s.writeback_pages == 0;
}

/*
 * Dirty 60 pages (over the background threshold) while writes of pages
 * [10, 20) fail: the flusher writes others until the group is below its
 * threshold, the failing ones stay dirty; msync writes the rest and
 * reports EIO for those; once the store is healed, msync writes them.
 * set_fail(arg, 0) heals.
 */
static void check_nothing_lost(fl_engine *e, fl_group *g, fl_object *o,
			       const struct h_file *f,
			       void (*set_fail)(void *arg, int on), void *arg)
{
	unsigned char *p;
	struct errors_wait w = {e, g, 10, BG};
	struct fl_group_stats s;
	unsigned written = 0;

	p = fl_mmap_group(e, g, NULL, 1024 * PG, PROT_READ | PROT_WRITE,
			  MAP_SHARED, o, 0);
	REQUIRE(p != MAP_FAILED);
	/* Read first: the faulty store fails reads of the range too. */
	CHECK_EQ(h_mismatch(p, 60 * PG, f->seed, 0), -1);
	set_fail(arg, 1);
	for (unsigned pg = 0; pg < 60; pg++)
		dirty_page(p, pg, 194);
	if (!h_wait_until(errors_seen, &w)) {
		s = gstats(g);
		h_fail(__FILE__, __LINE__,
		       "errors %llu dirty %llu writeback %llu flushed %llu",
		       (unsigned long long)h_estats(e).writeback_errors,
		       (unsigned long long)s.dirty_pages,
		       (unsigned long long)s.writeback_pages,
		       (unsigned long long)s.pages_flushed);
	}
	/* The flusher wrote all but the failing pages, down to below its
	 * threshold (which dirty pages it left is its choice; it may be
	 * writing more now: counted before the file is read). */
	s = gstats(g);
	for (unsigned pg = 0; pg < 60; pg++) {
		int new = file_page_new(f->path, pg, 194);

		if (pg >= 10 && pg < 20)
			CHECK(!new);
		written += new;
	}
	CHECK_GE(written, 60 - s.dirty_pages - s.writeback_pages);
	CHECK_ERR(fl_msync(e, p, 1024 * PG, MS_SYNC), EIO);
	CHECK_EQ(gstats(g).dirty_pages, 10);
	/* Not lost: still in memory, and written once the store heals. */
	CHECK_EQ(h_mismatch(p, 60 * PG, 194, 0), -1);
	set_fail(arg, 0);
	CHECK_EQ(fl_msync(e, p, 1024 * PG, MS_SYNC), 0);
	CHECK_EQ(gstats(g).dirty_pages, 0);
	for (unsigned pg = 0; pg < 60; pg++)
		CHECK(file_page_new(f->path, pg, 194));
	CHECK_EQ(fl_munmap(e, p, 1024 * PG), 0);
}

static void faulty_set_fail(void *arg, int on)
{
	struct fl_store_faults ff = {.fail_offset = 10 * PG,
				     .fail_length = on ? 10 * PG : 0};

	REQUIRE(fl_store_faulty_set(arg, &ff) == 0);
}

static void inline_set_fail(void *arg, int on)
{
	struct inline_store *st = arg;

	atomic_store(&st->fail_offset, 10 * PG);
	atomic_store(&st->fail_length, on ? 10 * PG : 0);
}

TEST(nothing_dirty_lost_when_background_writes_fail)
{
	fl_engine *e = h_engine_cfg(2, 1, 1);
	fl_group *g = limited(e);
	struct fl_store *st;
	struct h_file f;
	fl_object *o;

	h_file_create(&f, 1024 * PG, 94);
	o = faulty_object(e, &f, &st, NULL);
	check_nothing_lost(e, g, o, &f, faulty_set_fail, st);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

TEST(nothing_dirty_lost_when_submitted_writes_fail)
{
	fl_engine *e = h_engine_cfg(2, 1, 1);
	fl_group *g = limited(e);
	struct inline_store *st;
	struct h_file f;
	fl_object *o;

	h_file_create(&f, 1024 * PG, 95);
	o = inline_object(e, &f, &st);
	check_nothing_lost(e, g, o, &f, inline_set_fail, st);
	/* The flusher's writes went through submit. */
	CHECK_GT(atomic_load(&st->submitted_writes), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/*
 * An object whose writeback failed at munmap still has dirty pages when its
 * last reference goes.  Its release writes them back through submit: each
 * write took a reference on the object (already at none) and gave it back
 * at its completion, which released the object a second time, on the
 * handler thread, in the middle of the first release (a use after free).
 * Now the pages are written, and the engine goes on serving.  The release
 * may come after fl_object_close returns: the engine's own work (the
 * flusher, say) may hold the last reference a moment longer.
 */
static const char *release_path;

static int released_pages_written(void *arg)
{
	(void)arg;
	for (unsigned pg = 8; pg < 24; pg++)
		if (!file_page_new(release_path, pg, 197))
			return 0;
	return 1;
}

TEST(release_with_dirty_pages_writes_them)
{
	fl_engine *e = h_engine_cfg(2, 1, 1);
	struct inline_store *st;
	struct h_file f;
	fl_object *o, *o2;
	unsigned char *p;

	h_file_create(&f, 64 * PG, 96);
	release_path = f.path;
	o = inline_object(e, &f, &st);
	p = h_map(e, 64 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	inline_set_fail(st, 1); /* pages [10, 20) cannot be written */
	for (unsigned pg = 8; pg < 24; pg++)
		dirty_page(p, pg, 197);
	CHECK_ERR(fl_munmap(e, p, 64 * PG), EIO);
	CHECK_EQ(h_estats(e).dirty_pages, 10);
	inline_set_fail(st, 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK(h_wait_until(released_pages_written, NULL));
	/* Still serving: a new object's pages read right. */
	o2 = h_open(e, &f, O_RDONLY);
	p = h_map(e, 64 * PG, PROT_READ, MAP_SHARED, o2, 0);
	CHECK_EQ(h_mismatch(p, 8 * PG, 96, 0), -1);
	CHECK_EQ(fl_munmap(e, p, 64 * PG), 0);
	CHECK_EQ(fl_object_close(o2), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/*
 * A dying object's release frees it as soon as its writeback's references
 * are back, so the put that gives one back must touch the object no more.
 * object_put did (it set o->dying after its decrement): a write into freed
 * memory when the release ran in between, which ThreadSanitizer reported
 * here.  The hook makes such puts pause just after their decrement, but
 * for the closing thread's (the release runs there, mostly), long enough
 * for the release to free the object meanwhile, so that a sanitizer run
 * catches any touch that follows.  Only a pause, never a wait for the
 * release: the release may run on the pausing thread (an I/O thread, if
 * the last reference went elsewhere).  What the test checks does not
 * depend on how long the pause is.
 */
extern void (*object_test_hook_dying_put)(void);
static _Atomic int dying_puts;
static pthread_t closing_thread;

static int object_gone(void *arg)
{
	(void)arg;
	return atomic_load(&inline_stores_destroyed) > 0;
}

static void pause_dying_put(void)
{
	atomic_fetch_add(&dying_puts, 1);
	if (!pthread_equal(pthread_self(), closing_thread))
		usleep(50000);
}

TEST(dying_object_put_touches_nothing_after_its_decrement)
{
	fl_engine *e = h_engine_cfg(2, 1, 1);
	struct inline_store *st;
	struct h_file f;
	unsigned char *p;
	fl_object *o;

	h_file_create(&f, 64 * PG, 95);
	o = inline_object(e, &f, &st);
	p = h_map(e, 64 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	/* One page stays dirty at munmap (writes of [10, 20) fail): the
	 * release writes it back. */
	inline_set_fail(st, 1);
	dirty_page(p, 10, 197);
	CHECK_ERR(fl_munmap(e, p, 64 * PG), EIO);
	CHECK_EQ(h_estats(e).dirty_pages, 1);
	inline_set_fail(st, 0);
	atomic_store(&inline_stores_destroyed, 0);
	closing_thread = pthread_self();
	__atomic_store_n(&object_test_hook_dying_put, pause_dying_put,
			 __ATOMIC_RELEASE);
	CHECK_EQ(fl_object_close(o), 0); /* its release writes it back */
	CHECK(h_wait_until(object_gone, NULL));
	CHECK(file_page_new(f.path, 10, 197));
	CHECK_EQ(fl_engine_destroy(e), 0); /* every paused put returned */
	__atomic_store_n(&object_test_hook_dying_put, NULL, __ATOMIC_RELEASE);
	CHECK(atomic_load(&dying_puts) > 0);
	h_file_remove(&f);
}

/*
 * The last reference goes with a read's completion, on the thread that
 * reaps completions, while the object still has dirty pages (their
 * writeback failed at munmap): its release writes them back through
 * submit and waits for the writes, whose completions only a reaper runs.
 * It deadlocked there (the reaper waiting for itself, every other handler
 * waiting for the reaper's lock); now an I/O thread releases the object.
 * Map A (written, writeback failing) and view B (read, its read held) of
 * one object; both unmapped and the handle closed, the held read is the
 * last reference.
 */
struct held_reader {
	const unsigned char *p;
	int signo;
	unsigned char val;
};

static void *held_reader_main(void *arg)
{
	struct held_reader *r = arg;

	r->signo = h_try_read(r->p, &r->val, NULL);
	return NULL;
}

TEST(release_in_a_completion_goes_to_an_io_thread)
{
	fl_engine *e = h_engine_cfg(2, 1, 1);
	struct inline_store *st;
	struct held_reader r = {0};
	struct h_file f;
	unsigned char *a, *b;
	pthread_t t;
	fl_object *o;

	h_file_create(&f, 64 * PG, 98);
	release_path = f.path;
	o = inline_object(e, &f, &st);
	a = h_map(e, 64 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	b = h_map(e, 64 * PG, PROT_READ, MAP_SHARED, o, 0);
	inline_set_fail(st, 1);
	for (unsigned pg = 8; pg < 24; pg++)
		dirty_page(a, pg, 197);
	pthread_mutex_lock(&st->lock);
	st->hold_reads = 1;
	pthread_mutex_unlock(&st->lock);
	r.p = b + 40 * PG;
	REQUIRE(pthread_create(&t, NULL, held_reader_main, &r) == 0);
	REQUIRE(h_wait_until(some_read_held, st));
	CHECK_EQ(fl_munmap(e, a, 64 * PG), 0); /* b maps the object still */
	CHECK_EQ(fl_object_close(o), 0);
	/* The last view (under the reader's fault) writes back: fails. */
	CHECK_ERR(fl_munmap(e, b, 64 * PG), EIO);
	CHECK_EQ(h_estats(e).dirty_pages, 10);
	inline_set_fail(st, 0);
	inline_release_reads(st); /* its completion drops the last reference */
	CHECK(h_wait_until(released_pages_written, NULL));
	pthread_join(t, NULL); /* its view went first: SIGSEGV, or whatever
				  else was mapped there since */
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* ---- memory honesty --------------------------------------------------------
 */

/* This process's resident memory now and at its peak, bytes. */
static void process_rss(uint64_t *now, uint64_t *peak)
{
	char line[256];
	unsigned long long kib;
	FILE *f = fopen("/proc/self/status", "r");

	*now = *peak = 0;
	REQUIRE(f != NULL);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmRSS: %llu kB", &kib) == 1)
			*now = kib << 10;
		else if (sscanf(line, "VmHWM: %llu kB", &kib) == 1)
			*peak = kib << 10;
	}
	fclose(f);
}

/* Start the peak over from now: 0, or -1 if the kernel does not let us. */
static int reset_rss_peak(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, "5", 1) == 1;
	close(fd);
	return ok ? 0 : -1;
}

TEST(resident_memory_stays_within_the_limit_and_stated_overhead)
{
	enum { MAXP = 2048, FILEP = 8192, WRITES = 6000 };
	fl_engine *e;
	fl_group *g;
	struct h_file f;
	fl_object *o;
	unsigned char *p;
	uint64_t base, peak, now, state = 99;

	h_file_create(&f, FILEP * PG, 96);
	/* The peak from here: the engine's, not earlier cases'. */
	if (reset_rss_peak() < 0) {
		h_note("no /proc/self/clear_refs: peak not measured");
		h_file_remove(&f);
		return;
	}
	process_rss(&base, &peak);
	e = h_engine(2);
	g = fl_group_create(e, NULL, "rss");
	REQUIRE(g != NULL);
	REQUIRE(fl_group_set_max(g, MAXP * PG) == 0);
	o = h_open(e, &f, O_RDWR);
	p = fl_mmap_group(e, g, NULL, FILEP * PG, PROT_READ | PROT_WRITE,
			  MAP_SHARED, o, 0);
	REQUIRE(p != MAP_FAILED);
	/* Random writes and reads over four times the limit: dirty pages
	 * written back, pages evicted, the cache's tree sparse. */
	for (int i = 0; i < WRITES; i++) {
		unsigned pg = next_random(&state, FILEP);

		if (i & 1)
			p[(size_t)pg * PG + 9] = (unsigned char)i;
		else
			CHECK_GE(p[(size_t)pg * PG + 9], 0);
	}
	CHECK_EQ(fl_msync(e, p, FILEP * PG, MS_SYNC), 0);
	process_rss(&now, &peak);
	h_note("resident: base %llu KiB, peak %llu KiB (limit %llu KiB)",
	       (unsigned long long)base >> 10, (unsigned long long)peak >> 10,
	       (unsigned long long)MAXP * PG >> 10);
	/* Sanitizers add shadow memory and redzones: nothing to measure. */
	if (!H_UNDER_ASAN && !H_UNDER_TSAN)
		CHECK_LE(peak - base, (uint64_t)MAXP * PG +
					      ENGINE_OVERHEAD_BYTES(MAXP * PG));
	CHECK_EQ(fl_munmap(e, p, FILEP * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}
