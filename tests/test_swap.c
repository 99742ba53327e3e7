// SPDX-License-Identifier: MIT
/*
 * Swap: devices, groups' swap settings, and private, anonymous and
 * file-private memory several times its group's limit with every byte
 * back; the races of a swap-in (unmap, MADV_DONTNEED, MAP_FIXED, a failed
 * charge) on purpose, with totals checked after a reclaim pass.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	CHECK_EQ(fl_group_destroy(g), 0);
	CHECK_EQ(fl_engine_destroy(e), 0); /* frees the device */
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

static void env_close(struct swap_env *v)
{
	struct fl_swap_stats st;

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
