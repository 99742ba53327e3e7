// SPDX-License-Identifier: MIT
/*
 * Swap: devices, groups' swap settings, and private, anonymous and
 * file-private memory several times its group's limit with every byte
 * back; the races of a swap-in (unmap, MADV_DONTNEED, MAP_FIXED, a failed
 * charge) on purpose, with totals checked after a reclaim pass.
 */
#include "harness.h"
#include "swap_test.h"
#include "inject.h"
#include "reclaim.h"
#include "swap.h"
#include "wake_watch.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The library's test hook (swap.h; built in the tests' library). */
extern int (*swap_test_hook)(enum swap_hook_point point, uint64_t slot);

static void swap_path(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "%s/swap-%s-%d", h_tmpdir(), tag, (int)getpid());
}

TEST(swap_api_arguments)
{
	fl_engine *e = h_engine(1);
	char path[256];
	struct fl_swap_stats st;
	struct fl_group_stats gs;
	fl_group *g = fl_group_create(e, NULL, "g");
	fl_swap *s;

	swap_path(path, sizeof(path), "api");
	errno = 0;
	CHECK(fl_swap_file_create(NULL, path, 1 << 20) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(fl_swap_file_create(e, NULL, 1 << 20) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(fl_swap_file_create(e, path, 100) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(fl_swap_file_create(e, "/nonexistent-dir/swap", 1 << 20) == NULL);
	CHECK_EQ(errno, ENOENT);
	errno = 0;
	CHECK(fl_swap_store_create(e, NULL, 1 << 20) == NULL);
	CHECK_EQ(errno, EINVAL);
	CHECK_ERR(fl_swap_stats(NULL, &st), EINVAL);
	CHECK_ERR(fl_group_set_swap(NULL, NULL), EINVAL);
	CHECK_ERR(fl_group_set_swap_max(NULL, 0), EINVAL);

	s = fl_swap_file_create(e, path, (1 << 20) + 100);
	REQUIRE(s != NULL);
	CHECK_EQ(fl_swap_stats(s, &st), 0);
	CHECK_EQ(st.slots, 256);
	CHECK_EQ(st.slots_used, 0);
	CHECK_EQ(st.pages_written, 0);
	CHECK_EQ(fl_group_set_swap(g, s), 0);
	CHECK_EQ(fl_group_set_swap(g, NULL), 0);
	CHECK_EQ(fl_group_set_swap(g, s), 0);
	CHECK_EQ(fl_group_set_swap_max(g, 64 * PG), 0);
	CHECK_EQ(fl_group_stats(g, &gs), 0);
	CHECK_EQ(gs.swap_max, 64 * PG);
	CHECK_EQ(gs.swap_usage, 0);
	CHECK_EQ(gs.swap_ins, 0);
	CHECK_EQ(gs.swap_outs, 0);
	CHECK_EQ(fl_group_stats(fl_group_root(e), &gs), 0);
	CHECK_EQ(gs.swap_max, FL_GROUP_UNLIMITED);

	/* A device of another engine is refused. */
	{
		fl_engine *e2 = h_engine(1);
		char path2[256];
		fl_swap *s2;

		swap_path(path2, sizeof(path2), "api2");
		s2 = fl_swap_file_create(e2, path2, 1 << 20);
		REQUIRE(s2 != NULL);
		CHECK_ERR(fl_group_set_swap(g, s2), EINVAL);
		CHECK_EQ(fl_engine_destroy(e2), 0);
		unlink(path2);
	}
	/* At most 32 devices an engine (this one has one). */
	for (int i = 1; i < 32; i++)
		CHECK(fl_swap_file_create(e, path, 1 << 20) != NULL);
	errno = 0;
	CHECK(fl_swap_file_create(e, path, 1 << 20) == NULL);
	CHECK_EQ(errno, ENOSPC);
	CHECK_EQ(fl_group_destroy(g), 0);
	CHECK_EQ(fl_engine_destroy(e), 0); /* frees the devices */
	CHECK_EQ(h_file_size(path), 0);
	unlink(path);
}

/* An engine with a group of max_pages, swapping to a swap file. */
struct swap_env {
	fl_engine *e;
	fl_group *g;
	fl_swap *s;
	char path[256];
};

static void env_open(struct swap_env *v, const char *tag, uint64_t max_pages,
		     uint64_t swap_pages)
{
	v->e = h_engine(2);
	v->g = fl_group_create(v->e, NULL, tag);
	REQUIRE(v->g != NULL);
	swap_path(v->path, sizeof(v->path), tag);
	v->s = fl_swap_file_create(v->e, v->path, swap_pages * PG);
	REQUIRE(v->s != NULL);
	REQUIRE(fl_group_set_swap(v->g, v->s) == 0);
	REQUIRE(fl_group_set_max(v->g, max_pages * PG) == 0);
}

static int drained(void *arg)
{
	struct swap_env *v = arg;

	return swap_drained(v->g, v->s);
}

static void env_close(struct swap_env *v)
{
	struct fl_swap_stats st;

	/* Stale swap-cache pages are reclaim's to free. */
	h_wait_until(drained, v);

	CHECK_EQ(fl_swap_stats(v->s, &st), 0);
	CHECK_EQ(st.slots_used, 0); /* every slot back */
	CHECK_EQ(fl_group_destroy(v->g), 0);
	CHECK_EQ(fl_engine_destroy(v->e), 0);
	unlink(v->path);
}

/* Write every page of p (npages) with its pattern, then read it all back,
 * twice (the second pass swaps everything in and out again). */
static void write_verify(unsigned char *p, size_t npages, uint32_t seed)
{
	for (size_t i = 0; i < npages; i++)
		h_fill(p + i * PG, PG, seed, i * PG);
	for (int pass = 0; pass < 2; pass++) {
		long bad = h_mismatch(p, npages * PG, seed, 0);

		CHECK_EQ(bad, -1);
	}
}

TEST(swap_anon_four_times_limit)
{
	struct swap_env v;
	size_t npages = 1024;
	unsigned char *p;
	struct fl_group_stats gs;
	struct fl_swap_stats st;

	env_open(&v, "anon4", 256, 4096);
	p = fl_mmap_group(v.e, v.g, NULL, npages * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED);
	write_verify(p, npages, 11);
	CHECK_EQ(fl_group_stats(v.g, &gs), 0);
	CHECK_LE(gs.usage, 256 * PG);
	CHECK_GE(gs.swap_outs, npages - 256);
	CHECK_GE(gs.swap_ins, npages - 256);
	CHECK_EQ(fl_swap_stats(v.s, &st), 0);
	CHECK_GE(st.slots_used, npages - 256);
	CHECK_EQ(gs.swap_usage, st.slots_used * PG);
	CHECK_EQ(st.bytes_stored, st.slots_used * PG);
	CHECK_EQ(fl_munmap(v.e, p, npages * PG), 0);
	CHECK_EQ(fl_group_stats(v.g, &gs), 0);
	CHECK_EQ(gs.usage, 0);
	CHECK_EQ(gs.swap_usage, 0);
	CHECK_EQ(gs.private_pages, 0);
	env_close(&v);
}

/* ---- file-backed private copies and threads ----------------------------- */

TEST(swap_private_file_copies_four_times_limit)
{
	struct swap_env v;
	struct h_file f;
	size_t npages = 1024;
	fl_object *o;
	unsigned char *p;
	struct fl_group_stats gs;

	h_file_create(&f, npages * PG, 5);
	env_open(&v, "priv4", 256, 4096);
	o = h_open(v.e, &f, O_RDWR);
	p = fl_mmap_group(v.e, v.g, NULL, npages * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE, o, 0);
	REQUIRE(p != MAP_FAILED);
	/* Copy every page (a store to each), with other bytes than the file. */
	write_verify(p, npages, 23);
	CHECK_EQ(fl_group_stats(v.g, &gs), 0);
	CHECK_LE(gs.usage, 256 * PG);
	CHECK_GE(gs.swap_outs, npages / 2);
	CHECK_EQ(fl_munmap(v.e, p, npages * PG), 0);
	/* The file never saw the private stores. */
	{
		unsigned char *buf = malloc(npages * PG);

		REQUIRE(buf != NULL);
		CHECK_EQ(h_pread(f.path, buf, npages * PG, 0), npages * PG);
		CHECK_EQ(h_mismatch(buf, npages * PG, 5, 0), -1);
		free(buf);
	}
	fl_object_close(o);
	CHECK_EQ(fl_group_stats(v.g, &gs), 0);
	CHECK_EQ(gs.swap_usage, 0);
	CHECK_EQ(gs.private_pages, 0);
	env_close(&v);
	h_file_remove(&f);
}

struct thread_ctx {
	unsigned char *p;
	size_t npages;
};

/* Thread idx owns pages idx, idx + 4, ...: writes them, then reads them
 * back in a scrambled order (each read may swap another thread's out). */
static void own_pages_rw(int idx, void *arg)
{
	struct thread_ctx *c = arg;

	for (size_t pg = (size_t)idx; pg < c->npages; pg += 4)
		h_fill(c->p + pg * PG, PG, 31, pg * PG);
	for (int round = 0; round < 2; round++)
		for (size_t k = 0; k < c->npages / 4; k++) {
			size_t pg =
				((k * 37) % (c->npages / 4)) * 4 + (size_t)idx;

			if (h_mismatch(c->p + pg * PG, PG, 31, pg * PG) >= 0)
				h_fail(__FILE__, __LINE__,
				       "thread %d: page %zu differs", idx, pg);
		}
}

TEST(swap_anon_four_threads)
{
	struct swap_env v;
	struct thread_ctx c = {.npages = 1024};
	struct fl_group_stats gs;

	env_open(&v, "threads", 128, 4096);
	c.p = fl_mmap_group(v.e, v.g, NULL, c.npages * PG,
			    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			    NULL, 0);
	REQUIRE(c.p != MAP_FAILED);
	h_run_threads(4, own_pages_rw, &c);
	CHECK_EQ(h_mismatch(c.p, c.npages * PG, 31, 0), -1);
	CHECK_EQ(fl_group_stats(v.g, &gs), 0);
	CHECK_LE(gs.usage, 128 * PG);
	CHECK_EQ(fl_munmap(v.e, c.p, c.npages * PG), 0);
	env_close(&v);
}

/* ---- background reclaim, and scattered slots written at once ------------ */

static void check_totals_zero(struct swap_env *v);

struct headroom_ctx {
	fl_group *g;
	uint64_t below; /* bytes */
};

static int usage_below(void *arg)
{
	struct headroom_ctx *c = arg;
	struct fl_group_stats gs;

	return fl_group_stats(c->g, &gs) == 0 && gs.usage <= c->below;
}

struct settled_ctx {
	fl_group *g;
	fl_swap *s;
};

/* The device has counted as written exactly the pages the group counted
 * swapped out: no write is between the two counts (the device counts a
 * write first, so a look during one sees them apart). */
static int swap_counts_settled(void *arg)
{
	struct settled_ctx *c = arg;
	struct fl_group_stats gs;
	struct fl_swap_stats st;

	return fl_group_stats(c->g, &gs) == 0 &&
	       fl_swap_stats(c->s, &st) == 0 &&
	       st.pages_written == gs.swap_outs;
}

/* Each page number of n once, in a seeded random order. */
static void shuffle(uint32_t *o, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		o[i] = (uint32_t)i;
	for (size_t i = n - 1; i > 0; i--) {
		size_t j;
		uint32_t t;

		seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
		j = (size_t)(seed >> 33) % (i + 1);
		t = o[i];
		o[i] = o[j];
		o[j] = t;
	}
}

/*
 * A group of 1024 pages that can swap keeps a 64th of its max free: past
 * that, background reclaim swaps pages out with no fault waiting.  Random
 * writes, reads and rewrites scatter the slots, so that swap-out batches
 * are written as many runs in flight at once; every byte comes back.
 */
TEST(swap_background_keeps_headroom)
{
	struct swap_env v;
	size_t npages = 2048, max = 1024;
	uint32_t *order = malloc(npages * sizeof(*order));
	struct headroom_ctx c;
	struct settled_ctx settled;
	struct fl_group_stats gs;
	struct fl_swap_stats st;
	unsigned char *p;

	REQUIRE(order != NULL);
	env_open(&v, "headroom", max, 4 * npages);
	p = fl_mmap_group(v.e, v.g, NULL, npages * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED);
	for (uint32_t round = 0; round < 2; round++) {
		shuffle(order, npages, 101 + round);
		for (size_t i = 0; i < npages; i++)
			h_fill(p + (size_t)order[i] * PG, PG, 41 + round,
			       (uint64_t)order[i] * PG);
		shuffle(order, npages, 201 + round);
		for (size_t i = 0; i < npages; i++)
			CHECK_EQ(h_mismatch(p + (size_t)order[i] * PG, PG,
					    41 + round,
					    (uint64_t)order[i] * PG),
				 -1);
	}
	/* With nothing faulting, background reclaim has left (or leaves
	 * soon) at least the room it keeps: a 64th of max, 16 pages. */
	c = (struct headroom_ctx){v.g, (max - max / 64) * PG};
	CHECK(h_wait_until(usage_below, &c));
	settled = (struct settled_ctx){v.g, v.s};
	CHECK(h_wait_until(swap_counts_settled, &settled));
	CHECK_EQ(fl_group_stats(v.g, &gs), 0);
	CHECK_GE(gs.swap_outs, npages);
	CHECK_EQ(fl_swap_stats(v.s, &st), 0);
	CHECK_EQ(st.write_errors, 0);
	CHECK_EQ(fl_munmap(v.e, p, npages * PG), 0);
	check_totals_zero(&v);
	free(order);
	env_close(&v);
}

/* Without a device, nothing is swapped: today's behaviour (OOM). */
TEST(swap_none_means_oom)
{
	fl_engine *e = h_engine(2);
	fl_group *g = fl_group_create(e, NULL, "noswap");
	unsigned char *p;
	struct h_sig sig;
	int got = 0;

	REQUIRE(fl_group_set_max(g, 16 * PG) == 0);
	p = fl_mmap_group(e, g, NULL, 64 * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED);
	for (size_t i = 0; i < 64 && !got; i++)
		got = h_try_write(p + i * PG, 1, &sig);
	CHECK_EQ(got, SIGBUS);
	CHECK_EQ(fl_munmap(e, p, 64 * PG), 0);
	CHECK_EQ(fl_group_destroy(g), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/* Cold cache pages go before anonymous ones: a hot anonymous working set
 * survives a cold scan of a file. */
TEST(swap_cold_cache_goes_first)
{
	struct swap_env v;
	struct h_file f;
	size_t anon = 64, file = 1024;
	unsigned char *a, *m;
	struct fl_group_stats gs;
	fl_object *o;
	unsigned long sum = 0;

	h_file_create(&f, file * PG, 9);
	env_open(&v, "balance", 128, 4096);
	a = fl_mmap_group(v.e, v.g, NULL, anon * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(a != MAP_FAILED);
	for (size_t i = 0; i < anon; i++)
		h_fill(a + i * PG, PG, 3, i * PG);
	o = h_open(v.e, &f, O_RDONLY);
	m = fl_mmap_group(v.e, v.g, NULL, file * PG, PROT_READ, MAP_SHARED, o,
			  0);
	REQUIRE(m != MAP_FAILED);
	for (size_t i = 0; i < file * PG; i += PG)
		sum += m[i];
	CHECK_EQ(h_mismatch(a, anon * PG, 3, 0), -1);
	CHECK_EQ(fl_group_stats(v.g, &gs), 0);
	CHECK_EQ(gs.swap_outs, 0);
	CHECK_GT(gs.pages_reclaimed, 0);
	CHECK_GT(sum + 1, 0);
	CHECK_EQ(fl_munmap(v.e, m, file * PG), 0);
	CHECK_EQ(fl_munmap(v.e, a, anon * PG), 0);
	fl_object_close(o);
	env_close(&v);
	h_file_remove(&f);
}

/* ---- races, on purpose (the library's swap hooks) ------------------------ */

static _Atomic int hk_stall = -1, hk_fail = -1, hk_fail_left, hk_pass_left;
static _Atomic int hk_reached, hk_release, hk_punch_pages;

static int hook(enum swap_hook_point point, uint64_t slot)
{
	int want = (int)point;

	(void)slot;
	if (point == SWAP_HOOK_PUNCH_PAGE) { /* only counted */
		atomic_fetch_add(&hk_punch_pages, 1);
		return 0;
	}
	/* The failing point fails fail_count times, after pass_count. */
	if (atomic_load(&hk_fail) == want &&
	    atomic_fetch_sub(&hk_pass_left, 1) <= 0 &&
	    atomic_fetch_sub(&hk_fail_left, 1) > 0)
		return 1;
	if (atomic_compare_exchange_strong(&hk_stall, &want, -1)) {
		double t0 = h_now();

		atomic_store(&hk_reached, 1);
		while (!atomic_load(&hk_release) && h_now() - t0 < 30)
			usleep(1000);
	}
	return 0;
}

static void hooks_arm(int stall, int fail, int fail_count)
{
	atomic_store(&hk_reached, 0);
	atomic_store(&hk_release, 0);
	atomic_store(&hk_punch_pages, 0);
	atomic_store(&hk_fail_left, fail_count);
	atomic_store(&hk_pass_left, 0);
	atomic_store(&hk_fail, fail);
	atomic_store(&hk_stall, stall);
	__atomic_store_n(&swap_test_hook, hook, __ATOMIC_RELEASE);
}

static void hooks_off(void)
{
	atomic_store(&hk_release, 1);
	atomic_store(&hk_stall, -1);
	atomic_store(&hk_fail, -1);
	__atomic_store_n(&swap_test_hook, NULL, __ATOMIC_RELEASE);
}

static int reached(void *arg)
{
	(void)arg;
	return atomic_load(&hk_reached);
}

/* A hole punch dropped its entries and is at a cached page. */
static int punch_at_page(void *arg)
{
	(void)arg;
	return atomic_load(&hk_punch_pages) > 0;
}

struct reader {
	pthread_t thread;
	const unsigned char *p;
	unsigned char val;
	struct h_sig sig;
	int signo;
	_Atomic int done;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	r->signo = h_try_read(r->p, &r->val, &r->sig);
	atomic_store(&r->done, 1);
	return NULL;
}

static int reached_or_done(void *arg)
{
	struct reader *r = arg;

	return atomic_load(&hk_reached) || atomic_load(&r->done);
}

static void reader_start(struct reader *r, const void *p)
{
	r->p = p;
	atomic_store(&r->done, 0);
	REQUIRE(pthread_create(&r->thread, NULL, reader_main, r) == 0);
}

/* An anonymous mapping of 256 pages, written, in a group of 64 pages:
 * its first pages are swapped out. */
static unsigned char *race_setup(struct swap_env *v, const char *tag)
{
	unsigned char *p;

	env_open(v, tag, 64, 1024);
	p = fl_mmap_group(v->e, v->g, NULL, 256 * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED);
	for (size_t i = 0; i < 256; i++)
		h_fill(p + i * PG, PG, 17, i * PG);
	return p;
}

/* After a reclaim pass, nothing is left: no slot, no swap-cache page, no
 * charge, no swap usage. */
static void check_totals_zero(struct swap_env *v)
{
	swap_check_totals_zero(v->g, v->s);
}

/* Swap-in of page 0 stalled between "read and confirmed" and "installed";
 * then op runs; then the fault goes on.  Returns the reader. */
static void race_swapin(struct swap_env *v, unsigned char *p,
			void (*op)(struct swap_env *, unsigned char *),
			struct reader *r)
{
	hooks_arm(SWAP_HOOK_CONFIRMED, -1, 0);
	reader_start(r, p);
	REQUIRE(h_wait_until(reached, NULL));
	op(v, p);
	hooks_off();
	pthread_join(r->thread, NULL);
}

static void op_unmap(struct swap_env *v, unsigned char *p)
{
	CHECK_EQ(fl_munmap(v->e, p, 256 * PG), 0);
}

TEST(swap_race_swapin_vs_munmap)
{
	struct swap_env v;
	unsigned char *p = race_setup(&v, "race-unmap");
	struct reader r;

	race_swapin(&v, p, op_unmap, &r);
	CHECK_EQ(r.signo, SIGSEGV); /* unmapped under it */
	check_totals_zero(&v);
	env_close(&v);
}

static void op_dontneed(struct swap_env *v, unsigned char *p)
{
	CHECK_EQ(fl_madvise(v->e, p, PG, MADV_DONTNEED), 0);
}

TEST(swap_race_swapin_vs_dontneed)
{
	struct swap_env v;
	unsigned char *p = race_setup(&v, "race-dontneed");
	struct reader r;

	race_swapin(&v, p, op_dontneed, &r);
	CHECK_EQ(r.signo, 0);
	CHECK_EQ(r.val, 0); /* advised away: zero */
	CHECK_EQ(h_nonzero(p, PG), -1);
	CHECK_EQ(h_mismatch(p + PG, 255 * PG, 17, PG), -1);
	CHECK_EQ(fl_munmap(v.e, p, 256 * PG), 0);
	check_totals_zero(&v);
	env_close(&v);
}

static void op_fixed(struct swap_env *v, unsigned char *p)
{
	void *q =
		fl_mmap_group(v->e, v->g, p, PG, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, NULL, 0);

	CHECK(q == p);
}

TEST(swap_race_swapin_vs_map_fixed)
{
	struct swap_env v;
	unsigned char *p = race_setup(&v, "race-fixed");
	struct reader r;

	race_swapin(&v, p, op_fixed, &r);
	CHECK_EQ(r.signo, 0);
	CHECK_EQ(r.val, 0); /* the new mapping's page */
	CHECK_EQ(h_mismatch(p + PG, 255 * PG, 17, PG), -1);
	CHECK_EQ(fl_munmap(v.e, p, 256 * PG), 0);
	check_totals_zero(&v);
	env_close(&v);
}

static void op_second_reader(struct swap_env *v, unsigned char *p)
{
	unsigned char val;
	struct h_sig sig;

	(void)v;
	/* The page is in the swap cache, read: this fault installs it. */
	CHECK_EQ(h_try_read(p, &val, &sig), 0);
	CHECK_EQ(val, h_pattern(17, 0));
}

/*
 * A read fault's window of zero pages wakes what it filled, not a page of
 * it being swapped in: that page's waiter, woken, would fault again and
 * park a second record on it (see window_wake_run in fault.c).
 */
TEST(swap_anon_window_leaves_swapin_waiter_asleep)
{
	struct swap_env v;
	unsigned char *p = race_setup(&v, "window-wake");
	struct wake_watch watch;
	struct reader r;

	/* Page 0 is in swap; pages 1-15 are emptied. */
	CHECK_EQ(fl_madvise(v.e, p + PG, 15 * PG, MADV_DONTNEED), 0);
	/* A thread's swap-in of page 0 stalls, read but not installed. */
	hooks_arm(SWAP_HOOK_CONFIRMED, -1, 0);
	reader_start(&r, p);
	REQUIRE(h_wait_until(reached, NULL));
	/* A read of page 1 fills its window, [0, 16) but page 0. */
	wake_watch_start(&watch, p, p + 2 * PG);
	CHECK_EQ(p[PG], 0);
	CHECK_EQ(wake_watch_end(&watch), WOKE_MAPPED);
	hooks_off();
	pthread_join(r.thread, NULL);
	CHECK_EQ(r.signo, 0);
	CHECK_EQ(r.val, h_pattern(17, 0));
	CHECK_EQ(h_nonzero(p + PG, 15 * PG), -1);
	CHECK_EQ(h_mismatch(p + 16 * PG, 240 * PG, 17, 16 * PG), -1);
	CHECK_EQ(fl_munmap(v.e, p, 256 * PG), 0);
	check_totals_zero(&v);
	env_close(&v);
}

TEST(swap_two_faults_read_a_slot_once)
{
	struct swap_env v;
	unsigned char *p = race_setup(&v, "race-twice");
	struct fl_swap_stats before, after;
	struct reader r;

	CHECK_EQ(fl_swap_stats(v.s, &before), 0);
	race_swapin(&v, p, op_second_reader, &r);
	CHECK_EQ(fl_swap_stats(v.s, &after), 0);
	CHECK_EQ(r.signo, 0);
	CHECK_EQ(r.val, h_pattern(17, 0));
	CHECK_EQ(after.pages_read, before.pages_read + 1);
	CHECK_EQ(h_mismatch(p, 256 * PG, 17, 0), -1);
	CHECK_EQ(fl_munmap(v.e, p, 256 * PG), 0);
	check_totals_zero(&v);
	env_close(&v);
}

TEST(swap_failed_charge_leaves_nothing)
{
	struct swap_env v;
	unsigned char *p = race_setup(&v, "race-charge");
	struct fl_group_stats gs;

	/* Each swap-in's charge fails once, then goes through (the fault
	 * waits for memory, reclaim makes room, the retry reads). */
	hooks_arm(-1, SWAP_HOOK_CHARGE, 8);
	CHECK_EQ(h_mismatch(p, 256 * PG, 17, 0), -1);
	hooks_off();
	CHECK_EQ(fl_group_stats(v.g, &gs), 0);
	CHECK_LE(gs.usage, 64 * PG);
	CHECK_EQ(fl_munmap(v.e, p, 256 * PG), 0);
	check_totals_zero(&v);
	env_close(&v);
}

TEST(swap_write_errors_keep_the_data)
{
	struct swap_env v;
	unsigned char *p;
	struct fl_swap_stats st;

	env_open(&v, "werr", 64, 1024);
	p = fl_mmap_group(v.e, v.g, NULL, 256 * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED);
	for (size_t i = 0; i < 64; i++)
		h_fill(p + i * PG, PG, 19, i * PG);
	hooks_arm(-1, SWAP_HOOK_WRITE, 8); /* the first 8 writes fail */
	for (size_t i = 64; i < 256; i++)
		h_fill(p + i * PG, PG, 19, i * PG);
	hooks_off();
	CHECK_EQ(fl_swap_stats(v.s, &st), 0);
	CHECK_GE(st.write_errors, 8);
	CHECK_EQ(h_mismatch(p, 256 * PG, 19, 0), -1);
	CHECK_EQ(fl_munmap(v.e, p, 256 * PG), 0);
	check_totals_zero(&v);
	env_close(&v);
}

TEST(swap_read_error_sigbus_then_served)
{
	struct swap_env v;
	unsigned char *p = race_setup(&v, "rerr");
	unsigned char val;
	struct h_sig sig;

	hooks_arm(-1, SWAP_HOOK_READ, 1);
	CHECK_EQ(h_try_read(p, &val, &sig), SIGBUS);
	hooks_off();
	/* The entry stayed: the next fault reads the slot again. */
	CHECK_EQ(h_try_read(p, &val, &sig), 0);
	CHECK_EQ(val, h_pattern(17, 0));
	CHECK_EQ(h_mismatch(p, 256 * PG, 17, 0), -1);
	CHECK_EQ(fl_munmap(v.e, p, 256 * PG), 0);
	check_totals_zero(&v);
	env_close(&v);
}

/*
 * A batched swap-in of shared anonymous memory that fails part way keeps
 * the pages it read: their slots were given up as each came in, so the
 * cache holds their only copy.  Page 5 faults; the batch around it reads
 * two pages, then fails at the third: the two stay (they were lost, read
 * back as zeros, when the failed batch was abandoned whole), the fault is
 * served, and the rest are read again by their own faults.
 */
TEST(swap_shared_anon_partial_read_keeps_what_it_read)
{
	struct swap_env v;
	size_t npages = 256;
	unsigned char *p, val;
	struct fl_group_stats gs;
	struct h_sig sig;

	env_open(&v, "shpart", 32, 1024);
	p = fl_mmap_group(v.e, v.g, NULL, npages * PG, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED);
	for (size_t i = 0; i < npages; i++)
		h_fill(p + i * PG, PG, 43, i * PG);
	CHECK_EQ(fl_group_stats(v.g, &gs), 0);
	REQUIRE(gs.swap_outs >= 64); /* the first pages went out first */
	hooks_arm(-1, SWAP_HOOK_READ, 1);
	atomic_store(&hk_pass_left, 2);
	CHECK_EQ(h_try_read(p + 5 * PG, &val, &sig), 0);
	CHECK_EQ(val, h_pattern(43, 5 * PG));
	hooks_off();
	CHECK_EQ(h_mismatch(p, npages * PG, 43, 0), -1);
	CHECK_EQ(fl_munmap(v.e, p, npages * PG), 0);
	check_totals_zero(&v);
	env_close(&v);
}

TEST(swap_slot_allocation_fails)
{
	struct swap_env v;
	unsigned char *p;
	struct h_sig sig;
	int got = 0;

	env_open(&v, "allocfail", 64, 1024);
	p = fl_mmap_group(v.e, v.g, NULL, 256 * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED);
	/* No slot can be had: memory and swap both full, so OOM (SIGBUS
	 * under FL_OOM_FAIL), and nothing leaks. */
	hooks_arm(-1, SWAP_HOOK_ALLOC, 1 << 30);
	for (size_t i = 0; i < 256 && !got; i++)
		got = h_try_write(p + i * PG, 1, &sig);
	hooks_off();
	CHECK_EQ(got, SIGBUS);
	CHECK_EQ(fl_munmap(v.e, p, 256 * PG), 0);
	check_totals_zero(&v);
	env_close(&v);
}

TEST(swap_max_limits_swap)
{
	struct swap_env v;
	unsigned char *p;
	struct fl_group_stats gs;
	struct h_sig sig;
	int got = 0;
	size_t i;

	env_open(&v, "swapmax", 64, 1024);
	REQUIRE(fl_group_set_swap_max(v.g, 32 * PG) == 0);
	p = fl_mmap_group(v.e, v.g, NULL, 256 * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED);
	for (i = 0; i < 256 && !got; i++)
		got = h_try_write(p + i * PG, (unsigned char)i, &sig);
	CHECK_EQ(got, SIGBUS); /* neither memory nor swap left */
	CHECK_GE(i, 64 + 32);
	CHECK_EQ(fl_group_stats(v.g, &gs), 0);
	CHECK_LE(gs.swap_usage, 32 * PG);
	CHECK_EQ(fl_munmap(v.e, p, 256 * PG), 0);
	check_totals_zero(&v);
	env_close(&v);
}

/* ---- shared anonymous memory -------------------------------------------- */

TEST(swap_shared_anon_four_times_limit)
{
	struct swap_env v;
	size_t npages = 1024;
	unsigned char *p;
	struct fl_group_stats gs;

	env_open(&v, "shanon", 256, 4096);
	p = fl_mmap_group(v.e, v.g, NULL, npages * PG, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED);
	write_verify(p, npages, 41);
	CHECK_EQ(fl_group_stats(v.g, &gs), 0);
	CHECK_LE(gs.usage, 256 * PG);
	CHECK_GE(gs.swap_outs, npages - 256);
	CHECK_GE(gs.swap_ins, npages - 256);
	/* Read again after a full cycle: everything is still there. */
	CHECK_EQ(h_mismatch(p, npages * PG, 41, 0), -1);
	CHECK_EQ(fl_munmap(v.e, p, npages * PG), 0);
	/* The object goes, and its slots with it, once work in flight
	 * (reclaim, readahead) lets go of it too. */
	check_totals_zero(&v);
	env_close(&v);
}

TEST(swap_shared_anon_threads)
{
	struct swap_env v;
	struct thread_ctx c = {.npages = 1024};

	env_open(&v, "shthreads", 128, 4096);
	c.p = fl_mmap_group(v.e, v.g, NULL, c.npages * PG,
			    PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			    NULL, 0);
	REQUIRE(c.p != MAP_FAILED);
	h_run_threads(4, own_pages_rw, &c);
	CHECK_EQ(h_mismatch(c.p, c.npages * PG, 31, 0), -1);
	CHECK_EQ(fl_munmap(v.e, c.p, c.npages * PG), 0);
	env_close(&v);
}

TEST(swap_madv_remove_shared_anon)
{
	struct swap_env v;
	unsigned char *p, *q;

	env_open(&v, "remove", 64, 1024);
	p = fl_mmap_group(v.e, v.g, NULL, 256 * PG, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED);
	for (size_t i = 0; i < 256; i++)
		h_fill(p + i * PG, PG, 43, i * PG);
	/* A hole over swapped and resident pages alike. */
	CHECK_EQ(fl_madvise(v.e, p, 256 * PG, MADV_REMOVE), 0);
	CHECK_EQ(h_nonzero(p, 256 * PG), -1);
	/* (Zero pages read ahead since may be swapped out again: swap usage
	 * is checked once everything is unmapped.) */
	/* Not for private or store mappings. */
	q = fl_mmap_group(v.e, v.g, NULL, 4 * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(q != MAP_FAILED);
	CHECK_ERR(fl_madvise(v.e, q, 4 * PG, MADV_REMOVE), EINVAL);
	CHECK_EQ(fl_munmap(v.e, q, 4 * PG), 0);
	CHECK_EQ(fl_munmap(v.e, p, 256 * PG), 0);
	check_totals_zero(&v);
	env_close(&v);
}

struct remover {
	pthread_t thread;
	_Atomic pid_t tid;
	struct swap_env *v;
	unsigned char *p;
	int rc;
};

static void *remover_main(void *arg)
{
	struct remover *r = arg;

	atomic_store(&r->tid, (pid_t)syscall(SYS_gettid));
	r->rc = fl_madvise(r->v->e, r->p, PG, MADV_REMOVE);
	return NULL;
}

/* Change (d): a swap-in of shared anonymous memory racing a hole punch.
 * The page is read from its slot and confirmed when the punch drops the
 * entry and waits for the page: the swap-in must make a hole, and leave
 * no slot, no swap-cache page and no charge behind. */
TEST(swap_race_shared_swapin_vs_hole_punch)
{
	struct swap_env v;
	unsigned char *p;
	struct reader rd;
	struct remover rm = {.tid = 0};
	size_t pg;

	env_open(&v, "race-punch", 64, 1024);
	p = fl_mmap_group(v.e, v.g, NULL, 256 * PG, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED);
	/* Each fault reads its own page only: the stall below is that
	 * page's read, not a neighbour's read ahead with it. */
	REQUIRE(fl_madvise(v.e, p, 256 * PG, MADV_RANDOM) == 0);
	for (size_t i = 0; i < 256; i++)
		h_fill(p + i * PG, PG, 47, i * PG);
	/* The first page whose read stalls at the hook is one swapped out
	 * (read-around may have read some back in). */
	for (pg = 0; pg < 256; pg++) {
		hooks_arm(SWAP_HOOK_CONFIRMED, -1, 0);
		reader_start(&rd, p + pg * PG);
		REQUIRE(h_wait_until(reached_or_done, &rd));
		if (atomic_load(&hk_reached))
			break;
		pthread_join(rd.thread, NULL);
	}
	REQUIRE(pg < 256);
	p += pg * PG;
	rm.v = &v;
	rm.p = p;
	REQUIRE(pthread_create(&rm.thread, NULL, remover_main, &rm) == 0);
	/* Its entry is gone once the punch is at the page; then it waits
	 * for the page's lock, which the stalled swap-in holds.  (Its
	 * sleeping alone was not enough: it may sleep on the cache lock
	 * before, while reclaim holds it.) */
	CHECK(h_wait_until(punch_at_page, NULL));
	while (!atomic_load(&rm.tid))
		usleep(100);
	CHECK(h_wait_thread_blocked(atomic_load(&rm.tid))); /* on the page */
	hooks_off();
	pthread_join(rm.thread, NULL);
	pthread_join(rd.thread, NULL);
	CHECK_EQ(rm.rc, 0);
	CHECK_EQ(rd.signo, 0);
	CHECK_EQ(rd.val, 0); /* a hole */
	CHECK_EQ(h_nonzero(p, PG), -1);
	p -= pg * PG;
	CHECK_EQ(h_mismatch(p, pg * PG, 47, 0), -1);
	CHECK_EQ(h_mismatch(p + (pg + 1) * PG, (255 - pg) * PG, 47,
			    (pg + 1) * PG),
		 -1);
	CHECK_EQ(fl_munmap(v.e, p, 256 * PG), 0);
	check_totals_zero(&v);
	env_close(&v);
}

/* A sequential reader of swapped-out memory reads ahead: each read brings
 * several pages, which its fault installs together. */
TEST(swap_sequential_readahead)
{
	struct swap_env v;
	size_t npages = 1024;
	unsigned char *p;
	struct fl_group_stats before, after;

	env_open(&v, "ra", 256, 4096);
	p = fl_mmap_group(v.e, v.g, NULL, npages * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED);
	for (size_t i = 0; i < npages; i++)
		h_fill(p + i * PG, PG, 53, i * PG);
	CHECK_EQ(fl_group_stats(v.g, &before), 0);
	CHECK_EQ(h_mismatch(p, npages * PG, 53, 0), -1);
	CHECK_EQ(fl_group_stats(v.g, &after), 0);
	CHECK_GE(after.swap_ins - before.swap_ins, npages / 2);
	/* Faults that read a slot: a fraction of the pages swapped in. */
	CHECK_LE(after.major_faults - before.major_faults,
		 (after.swap_ins - before.swap_ins) / 2);
	CHECK_EQ(fl_munmap(v.e, p, npages * PG), 0);
	check_totals_zero(&v);
	env_close(&v);
}

/* ---- churn ------------------------------------------------------------------
 */

struct churn_ctx {
	struct swap_env *v;
	unsigned char *p; /* shared by the writers, each its own pages */
	size_t npages;
};

/* Writers: stamp their pages (thread, round) in a scrambled order, and
 * check the stamp of each page before writing the next round's. */
static void churn_writer(int idx, struct churn_ctx *c)
{
	uint32_t *stamp = calloc(c->npages, sizeof(*stamp));
	uint64_t x = 0x9E3779B97F4A7C15ull * (uint64_t)(idx + 1);

	REQUIRE(stamp != NULL);
	for (unsigned round = 1; round <= 3000; round++) {
		size_t pg;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		pg = (size_t)(x % (c->npages / 2)) * 2 + (size_t)idx;
		if (*(uint32_t *)(c->p + pg * PG) != stamp[pg])
			h_fail(__FILE__, __LINE__, "page %zu: %u, not %u", pg,
			       *(uint32_t *)(c->p + pg * PG), stamp[pg]);
		stamp[pg] = round;
		*(uint32_t *)(c->p + pg * PG) = round;
		c->p[pg * PG + PG - 1] = (unsigned char)round;
	}
	free(stamp);
}

/* The churner: maps, fills, checks and unmaps (or advises away) small
 * anonymous mappings in the same group, so that unmaps and
 * MADV_DONTNEED race swap-outs and swap-ins of its pages. */
static void churn_mapper(struct churn_ctx *c)
{
	for (int i = 0; i < 60; i++) {
		size_t n = 32;
		int flags = MAP_ANONYMOUS | (i % 2 ? MAP_SHARED : MAP_PRIVATE);
		unsigned char *q =
			fl_mmap_group(c->v->e, c->v->g, NULL, n * PG,
				      PROT_READ | PROT_WRITE, flags, NULL, 0);

		REQUIRE(q != MAP_FAILED);
		for (size_t k = 0; k < n; k++)
			q[k * PG] = (unsigned char)(k + 1);
		for (size_t k = 0; k < n; k++)
			if (q[k * PG] != (unsigned char)(k + 1))
				h_fail(__FILE__, __LINE__, "churn page %zu", k);
		if (i % 3 == 0)
			CHECK_EQ(fl_madvise(c->v->e, q, n * PG, MADV_DONTNEED),
				 0);
		CHECK_EQ(fl_munmap(c->v->e, q, n * PG), 0);
	}
}

static void churn_thread(int idx, void *arg)
{
	if (idx < 2)
		churn_writer(idx, arg);
	else
		churn_mapper(arg);
}

TEST(swap_churn_unmap_while_swapping)
{
	struct swap_env v;
	struct churn_ctx c = {.v = &v, .npages = 512};

	env_open(&v, "churn", 96, 4096);
	c.p = fl_mmap_group(v.e, v.g, NULL, c.npages * PG,
			    PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			    NULL, 0);
	REQUIRE(c.p != MAP_FAILED);
	h_run_threads(3, churn_thread, &c);
	CHECK_EQ(fl_munmap(v.e, c.p, c.npages * PG), 0);
	check_totals_zero(&v);
	env_close(&v);
}

/* ---- system calls failing (tests/inject.h) --------------------------------
 */

/* UFFDIO_COPY of a swap-in fails once: that fault gets SIGBUS, the entry
 * stays (the data is not lost), the next fault is served. */
TEST(swap_install_copy_fails_once)
{
	struct swap_env v;
	unsigned char *p = race_setup(&v, "copyfail");
	unsigned char val;
	struct h_sig sig;

	inject_set(INJ_UFFD_COPY, 1, ENOMEM);
	CHECK_EQ(h_try_read(p, &val, &sig), SIGBUS);
	inject_clear();
	CHECK_EQ(h_try_read(p, &val, &sig), 0);
	CHECK_EQ(val, h_pattern(17, 0));
	CHECK_EQ(h_mismatch(p, 256 * PG, 17, 0), -1);
	CHECK_EQ(fl_munmap(v.e, p, 256 * PG), 0);
	check_totals_zero(&v);
	env_close(&v);
}

/* Pages cannot be dropped (madvise fails) or write-protected: nothing is
 * swapped out, the group runs out of memory (SIGBUS under FL_OOM_FAIL),
 * and nothing leaks. */
TEST(swap_out_syscalls_fail)
{
	enum inject_point points[] = {INJ_MADVISE, INJ_UFFD_WRITEPROTECT};

	for (size_t k = 0; k < sizeof(points) / sizeof(points[0]); k++) {
		struct swap_env v;
		unsigned char *p;
		struct h_sig sig;
		int got = 0;

		env_open(&v, "sysfail", 64, 1024);
		p = fl_mmap_group(v.e, v.g, NULL, 256 * PG,
				  PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
		REQUIRE(p != MAP_FAILED);
		for (size_t i = 0; i < 32; i++)
			h_fill(p + i * PG, PG, 59, i * PG);
		inject_set_mode(points[k], 1, EIO, INJECT_FROM);
		for (size_t i = 32; i < 256 && !got; i++)
			got = h_try_write(p + i * PG, 1, &sig);
		inject_clear();
		CHECK_EQ(got, SIGBUS);
		CHECK_EQ(h_mismatch(p, 32 * PG, 59, 0), -1);
		CHECK_EQ(fl_munmap(v.e, p, 256 * PG), 0);
		check_totals_zero(&v);
		env_close(&v);
	}
}

/* ---- compressed memory in front of the swap file ------------------------ */

#include "swap_zpool.h"

/* Page i holds i in its first and last words, zeros elsewhere: it
 * compresses well. */
static void stamp_pages(unsigned char *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v = seed * 1000003 + i;

		memcpy(p + i * PG, &v, sizeof(v));
		memcpy(p + i * PG + PG - sizeof(v), &v, sizeof(v));
	}
}

static long stamps_differ(const unsigned char *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v = seed * 1000003 + i, a, b;

		memcpy(&a, p + i * PG, sizeof(a));
		memcpy(&b, p + i * PG + PG - sizeof(b), sizeof(b));
		if (a != v || b != v)
			return (long)i;
	}
	return -1;
}

TEST(swap_compressed_in_front_of_file)
{
	struct swap_env v;
	struct swap_zpool_stats zs;
	struct fl_swap_stats st;
	fl_swap *z;
	unsigned char *p, *q;
	size_t n = 1024;

	env_open(&v, "zpool", 128, 4096);
	errno = 0;
	z = fl_swap_compressed_create(v.e, FL_COMPRESS_LZ4, 1, 64 * PG, v.s);
	if (!z && errno == EOPNOTSUPP)
		z = fl_swap_compressed_create(v.e, FL_COMPRESS_ZSTD, 1, 64 * PG,
					      v.s);
	if (!z && errno == EOPNOTSUPP) {
		h_note("no lz4 or zstd in this build: compressed swap not "
		       "tested");
		env_close(&v);
		return;
	}
	REQUIRE(z != NULL);
	CHECK_ERR(fl_swap_compressed_create(NULL, FL_COMPRESS_LZ4, 1, 64 * PG,
					    NULL) == NULL,
		  EINVAL);
	CHECK_ERR(fl_swap_compressed_create(v.e, FL_COMPRESS_NONE, 1, 64 * PG,
					    NULL) == NULL,
		  EINVAL);
	REQUIRE(fl_group_set_swap(v.g, z) == 0);
	/* Compressible pages stay in the pool; random ones go on to the
	 * file (and so do compressible ones once the pool is full). */
	p = fl_mmap_group(v.e, v.g, NULL, n * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	q = fl_mmap_group(v.e, v.g, NULL, 256 * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED && q != MAP_FAILED);
	stamp_pages(p, n, 7);
	for (size_t i = 0; i < 256; i++)
		h_fill(q + i * PG, PG, 61, i * PG);
	CHECK_EQ(stamps_differ(p, n, 7), -1);
	CHECK_EQ(h_mismatch(q, 256 * PG, 61, 0), -1);
	CHECK_EQ(stamps_differ(p, n, 7), -1);
	REQUIRE(swap_zpool_stats(z, &zs) == 0);
	CHECK_GT(zs.stored, 0);
	CHECK_GT(zs.loaded, 0);
	CHECK_GT(zs.written_next, 0);
	/* Swap-ins are read from the pool or the file (each counted by the
	 * device that had the page, however it was read: at once from the
	 * pool, through the file's asynchronous read, or on an I/O thread). */
	CHECK_GT(zs.read_next, 0);
	CHECK_EQ(fl_swap_stats(z, &st), 0);
	CHECK_EQ(st.read_errors, 0);
	CHECK_EQ(st.pages_read, zs.loaded + zs.read_next);
	CHECK_EQ(fl_swap_stats(v.s, &st), 0);
	CHECK_EQ(st.pages_read, zs.read_next);
	CHECK_EQ(fl_munmap(v.e, p, n * PG), 0);
	CHECK_EQ(fl_munmap(v.e, q, 256 * PG), 0);
	check_totals_zero(&v);
	REQUIRE(swap_zpool_stats(z, &zs) == 0);
	CHECK_EQ(zs.pool_pages, 0);
	CHECK_EQ(fl_swap_stats(z, &st), 0);
	env_close(&v);
}

/* The slot of a swap-in racing fl_munmap stays reserved until the cache
 * lets its page go: swap-outs meanwhile (a small device wraps round at
 * once) must not take it, or a later fault would find the stale page
 * under the same slot. */
TEST(swap_race_orphaned_slot_not_reused)
{
	struct swap_env v;
	unsigned char *p, *q;
	struct reader r;

	env_open(&v, "reuse", 64, 200);
	p = fl_mmap_group(v.e, v.g, NULL, 256 * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED);
	for (size_t i = 0; i < 256; i++)
		h_fill(p + i * PG, PG, 67, i * PG);
	hooks_arm(SWAP_HOOK_CONFIRMED, -1, 0);
	reader_start(&r, p);
	REQUIRE(h_wait_until(reached, NULL));
	CHECK_EQ(fl_munmap(v.e, p, 256 * PG), 0);
	/* The swap-in is still stalled: fill a new mapping through the
	 * device and read it back. */
	q = fl_mmap_group(v.e, v.g, NULL, 256 * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(q != MAP_FAILED);
	for (size_t i = 0; i < 256; i++)
		h_fill(q + i * PG, PG, 71, i * PG);
	for (int pass = 0; pass < 2; pass++)
		CHECK_EQ(h_mismatch(q, 256 * PG, 71, 0), -1);
	hooks_off();
	pthread_join(r.thread, NULL); /* SIGSEGV, or q's page if q took p's
					 addresses */
	CHECK_EQ(fl_munmap(v.e, q, 256 * PG), 0);
	check_totals_zero(&v);
	env_close(&v);
}

/* A group without a device uses its parent's; a parent's swap_max counts
 * its children's slots. */
TEST(swap_hierarchy)
{
	struct swap_env v;
	fl_group *child;
	unsigned char *p;
	struct fl_group_stats cs, ps;
	struct h_sig sig;
	int got = 0;
	size_t i;

	env_open(&v, "parent", 1024, 4096);
	child = fl_group_create(v.e, v.g, "child");
	REQUIRE(child != NULL);
	REQUIRE(fl_group_set_max(child, 64 * PG) == 0);
	REQUIRE(fl_group_set_swap_max(v.g, 100 * PG) == 0);
	p = fl_mmap_group(v.e, child, NULL, 256 * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED);
	for (i = 0; i < 128; i++)
		h_fill(p + i * PG, PG, 73, i * PG);
	CHECK_EQ(h_mismatch(p, 128 * PG, 73, 0), -1);
	CHECK_EQ(fl_group_stats(child, &cs), 0);
	CHECK_EQ(fl_group_stats(v.g, &ps), 0);
	CHECK_GT(cs.swap_outs, 0);
	CHECK_EQ(cs.swap_usage, ps.swap_usage); /* counted in both */
	CHECK_LE(ps.swap_usage, 100 * PG);
	/* Past 64 pages of memory and 100 of swap: OOM. */
	for (; i < 256 && !got; i++)
		got = h_try_write(p + i * PG, 1, &sig);
	CHECK_EQ(got, SIGBUS);
	CHECK_EQ(fl_munmap(v.e, p, 256 * PG), 0);
	check_totals_zero(&v); /* the parent's totals hold the child's */
	CHECK_EQ(fl_group_destroy(child), 0);
	env_close(&v);
}
