// SPDX-License-Identifier: MIT
/*
 * A page swapped in by a read keeps its slot while swap is at most half
 * full, as the kernel keeps a clean swap-cache page: reclaim drops it again
 * without writing it, and the first store frees the slot first, so that
 * what the store wrote is written at the next eviction and never lost.
 * Anonymous memory and private copies of a file, one thread and several,
 * totals back to zero after unmap.
 */
#include "harness.h"
#include "swap_test.h"
#include "reclaim.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LIMIT_PAGES 64
#define NPAGES	    256
#define SWAP_PAGES  4096 /* so that swap stays less than half full */

struct keep_env {
	fl_engine *e;
	fl_group *g;
	fl_swap *s;
	struct h_file f; /* the private rows' file */
	fl_object *o;	 /* NULL: anonymous */
	unsigned char *p;
	char path[256];
};

static void keep_open(struct keep_env *v, const char *tag, int file,
		      uint64_t swap_pages)
{
	memset(v, 0, sizeof(*v));
	v->e = h_engine(2);
	v->g = fl_group_create(v->e, NULL, tag);
	REQUIRE(v->g != NULL);
	snprintf(v->path, sizeof(v->path), "%s/keep-%s-%d.swap", h_tmpdir(),
		 tag, (int)getpid());
	v->s = fl_swap_file_create(v->e, v->path, swap_pages * PG);
	REQUIRE(v->s != NULL);
	REQUIRE(fl_group_set_swap(v->g, v->s) == 0);
	REQUIRE(fl_group_set_max(v->g, LIMIT_PAGES * PG) == 0);
	if (file) {
		h_file_create(&v->f, NPAGES * PG, 3);
		v->o = h_open(v->e, &v->f, O_RDWR);
	}
	v->p = fl_mmap_group(v->e, v->g, NULL, NPAGES * PG,
			     PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | (file ? 0 : MAP_ANONYMOUS), v->o, 0);
	REQUIRE(v->p != MAP_FAILED);
}

/* Unmap; then nothing is left: no slot, charge, swap usage or cache page. */
static void keep_close(struct keep_env *v)
{
	CHECK_EQ(fl_munmap(v->e, v->p, NPAGES * PG), 0);
	swap_check_totals_zero(v->g, v->s);
	if (v->o) {
		/* The file never saw a private store. */
		unsigned char *buf = malloc(NPAGES * PG);

		REQUIRE(buf != NULL);
		fl_object_close(v->o);
		CHECK_EQ(h_pread(v->f.path, buf, NPAGES * PG, 0), NPAGES * PG);
		CHECK_EQ(h_mismatch(buf, NPAGES * PG, 3, 0), -1);
		free(buf);
		h_file_remove(&v->f);
	}
	CHECK_EQ(fl_group_destroy(v->g), 0);
	CHECK_EQ(fl_engine_destroy(v->e), 0);
	unlink(v->path);
}

/* Every private page of the group out to swap (reclaim of all it holds:
 * the file's cache pages too, so perhaps in more than one pass). */
static void swap_all_out(struct keep_env *v)
{
	struct fl_group_stats gs;

	for (int pass = 0; pass < 8; pass++) {
		REQUIRE(fl_group_stats(v->g, &gs) == 0);
		if (gs.private_pages == 0)
			break;
		reclaim_group(v->g, 2 * NPAGES);
	}
	CHECK_EQ(fl_group_stats(v->g, &gs), 0);
	CHECK_EQ(gs.private_pages, 0);
}

static void stats(struct keep_env *v, struct fl_group_stats *gs,
		  struct fl_swap_stats *st)
{
	REQUIRE(fl_group_stats(v->g, gs) == 0);
	REQUIRE(fl_swap_stats(v->s, st) == 0);
}

/*
 * Write every page, swap them all out, then read them all twice: the first
 * read of each swaps it in and keeps its slot, so every eviction after is
 * clean (nothing written).  Then store to every page and read it all back
 * after another full swap-out: the stores were written, none lost.
 */
static void read_keeps_store_frees(int file)
{
	struct keep_env v;
	struct fl_group_stats gs, gs1;
	struct fl_swap_stats st, st1;

	keep_open(&v, file ? "keepfile" : "keepanon", file, SWAP_PAGES);
	h_fill(v.p, NPAGES * PG, 41, 0);
	swap_all_out(&v);
	stats(&v, &gs1, &st1);
	CHECK_EQ(st1.slots_used, NPAGES);
	/* At least once each (a write window's zeroed page may have gone
	 * out before its store). */
	CHECK_GE(st1.pages_written, NPAGES);

	for (int pass = 0; pass < 2; pass++)
		CHECK_EQ(h_mismatch(v.p, NPAGES * PG, 41, 0), -1);
	stats(&v, &gs, &st);
	CHECK_EQ(st.pages_written, st1.pages_written); /* nothing rewritten */
	CHECK_EQ(gs.swap_outs, gs1.swap_outs);
	/* Each pass evicts about every page again: clean drops only. */
	CHECK_GE(gs.swap_outs_clean, 2 * NPAGES - 3 * LIMIT_PAGES);
	CHECK_GE(gs.swap_ins, 2 * NPAGES - 2 * LIMIT_PAGES);
	/* Every page has its slot still: swapped out, or kept. */
	CHECK_EQ(st.slots_used, NPAGES);
	CHECK_EQ(gs.swap_usage, NPAGES * PG);
	CHECK_LE(gs.usage, LIMIT_PAGES * PG);

	/* A store to each, the last read (resident, their slots kept)
	 * first: the kept slots go before the stores land. */
	CHECK_GT(gs.private_pages, 0);
	for (size_t pg = NPAGES; pg-- > 0;)
		h_fill(v.p + pg * PG, PG, 43, pg * PG);
	swap_all_out(&v);
	stats(&v, &gs, &st);
	CHECK_EQ(st.slots_used, NPAGES);
	CHECK_GE(st.pages_written, st1.pages_written + NPAGES);
	CHECK_EQ(h_mismatch(v.p, NPAGES * PG, 43, 0), -1);
	keep_close(&v);
}

TEST(swap_keep_anon_read_keeps_slot_store_frees_it)
{
	read_keeps_store_frees(0);
}

TEST(swap_keep_private_file_read_keeps_slot_store_frees_it)
{
	read_keeps_store_frees(1);
}

/* Swap more than half full: a read frees the slot, as before. */
TEST(swap_keep_not_when_swap_half_full)
{
	struct keep_env v;
	struct fl_group_stats gs, gs1;
	struct fl_swap_stats st, st1;

	keep_open(&v, "keephalf", 0, NPAGES + NPAGES / 4);
	h_fill(v.p, NPAGES * PG, 45, 0);
	swap_all_out(&v);
	stats(&v, &gs1, &st1);
	CHECK_EQ(h_mismatch(v.p, NPAGES * PG, 45, 0), -1);
	stats(&v, &gs, &st);
	CHECK_EQ(gs.swap_outs_clean, 0);
	CHECK_GT(st.pages_written, st1.pages_written);
	CHECK_EQ(h_mismatch(v.p, NPAGES * PG, 45, 0), -1);
	keep_close(&v);
}

/* MADV_DONTNEED of pages that keep their slots frees the slots. */
TEST(swap_keep_dontneed_frees_kept_slots)
{
	struct keep_env v;
	struct fl_group_stats gs;
	struct fl_swap_stats st;

	keep_open(&v, "keepdn", 0, SWAP_PAGES);
	h_fill(v.p, NPAGES * PG, 47, 0);
	swap_all_out(&v);
	/* The last LIMIT_PAGES / 2 pages read back: resident, slots kept. */
	CHECK_EQ(h_mismatch(v.p + (NPAGES - LIMIT_PAGES / 2) * PG,
			    LIMIT_PAGES / 2 * PG, 47,
			    (NPAGES - LIMIT_PAGES / 2) * PG),
		 -1);
	stats(&v, &gs, &st);
	CHECK_EQ(st.slots_used, NPAGES);
	CHECK_EQ(gs.private_pages, LIMIT_PAGES / 2);
	CHECK_EQ(fl_madvise(v.e, v.p + NPAGES / 2 * PG, NPAGES / 2 * PG,
			    MADV_DONTNEED),
		 0);
	stats(&v, &gs, &st);
	CHECK_EQ(st.slots_used, NPAGES / 2);
	CHECK_EQ(gs.swap_usage, NPAGES / 2 * PG);
	CHECK_EQ(gs.private_pages, 0);
	CHECK_EQ(h_nonzero(v.p + NPAGES / 2 * PG, NPAGES / 2 * PG), -1);
	CHECK_EQ(h_mismatch(v.p, NPAGES / 2 * PG, 47, 0), -1);
	keep_close(&v);
}

/*
 * Four threads, each owning every fourth page, round after round read
 * their pages (swap-ins that keep their slots, dropped clean by reclaim),
 * then read and store a counter in each, in a scrambled order, while the
 * group (a quarter of the pages) swaps all the time: clean drops race the
 * stores that free the slots.  Every counter must be the last one stored.
 */
#define ROUNDS 6

static void counter_check(size_t pg, uint64_t got, uint64_t want)
{
	if (got != want)
		h_fail(__FILE__, __LINE__, "page %zu: counter %llu, want %llu",
		       pg, (unsigned long long)got, (unsigned long long)want);
}

static void counter_rounds(int idx, void *arg)
{
	struct keep_env *v = arg;
	size_t own = NPAGES / 4;

	for (uint64_t round = 0; round < ROUNDS; round++) {
		for (size_t k = 0; k < own; k++) {
			size_t pg = k * 4 + (size_t)idx;
			volatile uint64_t *w =
				(volatile uint64_t *)(v->p + pg * PG);

			counter_check(pg, w[PG / 8 - 1], round * 1000 + pg);
		}
		for (size_t k = 0; k < own; k++) {
			size_t pg =
				((k * 37 + round * 11) % own) * 4 + (size_t)idx;
			volatile uint64_t *w =
				(volatile uint64_t *)(v->p + pg * PG);

			counter_check(pg, w[1], round * 1000 + pg);
			w[1] = (round + 1) * 1000 + pg;
			w[PG / 8 - 1] = w[1];
		}
	}
}

TEST(swap_keep_stores_race_clean_reclaim)
{
	struct keep_env v;
	struct fl_group_stats gs;

	keep_open(&v, "keeprace", 0, SWAP_PAGES);
	for (size_t pg = 0; pg < NPAGES; pg++) {
		uint64_t *w = (uint64_t *)(v.p + pg * PG);

		w[1] = pg;
		w[PG / 8 - 1] = pg;
	}
	h_run_threads(4, counter_rounds, &v);
	for (size_t pg = 0; pg < NPAGES; pg++) {
		uint64_t *w = (uint64_t *)(v.p + pg * PG);

		CHECK_EQ(w[1], ROUNDS * 1000 + pg);
		CHECK_EQ(w[PG / 8 - 1], ROUNDS * 1000 + pg);
	}
	CHECK_EQ(fl_group_stats(v.g, &gs), 0);
	CHECK_GT(gs.swap_outs_clean, 0);
	CHECK_LE(gs.usage, LIMIT_PAGES * PG);
	keep_close(&v);
}

/*
 * Reclaim takes pages that keep their slots before dirty ones: with 16
 * clean pages (read back) and 16 dirty ones (written back in) resident,
 * reclaiming 16 drops the clean ones and writes nothing; the next 16 are
 * the dirty ones, written.  Pages are touched two apart, so that no swap
 * readahead brings in others.
 */
TEST(swap_keep_clean_pages_go_first)
{
	struct keep_env v;
	struct fl_group_stats gs, gs1;
	struct fl_swap_stats st, st1;

	keep_open(&v, "keepfirst", 0, SWAP_PAGES);
	h_fill(v.p, NPAGES * PG, 49, 0);
	swap_all_out(&v);
	for (size_t i = 0; i < 16; i++) {
		size_t pg = 2 * i;

		CHECK_EQ(h_mismatch(v.p + pg * PG, PG, 49, pg * PG), -1);
		h_fill(v.p + (pg + 64) * PG, PG, 51, (pg + 64) * PG);
	}
	stats(&v, &gs1, &st1);
	CHECK_EQ(gs1.private_pages, 32);
	/* The first pass gives the clean pages their second chance. */
	reclaim_group(v.g, 8);
	reclaim_group(v.g, 8);
	stats(&v, &gs, &st);
	CHECK_EQ(gs.private_pages, 16);
	CHECK_EQ(gs.swap_outs_clean - gs1.swap_outs_clean, 16);
	CHECK_EQ(st.pages_written, st1.pages_written);
	reclaim_group(v.g, 16);
	stats(&v, &gs, &st);
	CHECK_EQ(gs.private_pages, 0);
	CHECK_EQ(st.pages_written, st1.pages_written + 16);
	for (size_t i = 0; i < 16; i++) {
		size_t pg = 2 * i;

		CHECK_EQ(h_mismatch(v.p + pg * PG, PG, 49, pg * PG), -1);
		CHECK_EQ(h_mismatch(v.p + (pg + 64) * PG, PG, 51,
				    (pg + 64) * PG),
			 -1);
	}
	keep_close(&v);
}

/*
 * A clean page that comes back after a clean drop is in use: the sweep of
 * clean pages passes it over.  16 pages (A) are read, dropped clean and
 * read again; 16 others (B) are read once.  Reclaiming 16 takes B, and A
 * is still resident (reading it swaps nothing in).
 */
TEST(swap_keep_refaulted_pages_are_not_taken_first)
{
	struct keep_env v;
	struct fl_group_stats gs, gs1;

	keep_open(&v, "keeprefault", 0, SWAP_PAGES);
	h_fill(v.p, NPAGES * PG, 53, 0);
	swap_all_out(&v);
	for (size_t i = 0; i < 16; i++)
		CHECK_EQ(h_mismatch(v.p + 2 * i * PG, PG, 53, 2 * i * PG), -1);
	swap_all_out(&v); /* A dropped clean */
	for (size_t i = 0; i < 16; i++) {
		size_t a = 2 * i, b = 2 * i + 128;

		CHECK_EQ(h_mismatch(v.p + a * PG, PG, 53, a * PG), -1);
		CHECK_EQ(h_mismatch(v.p + b * PG, PG, 53, b * PG), -1);
	}
	REQUIRE(fl_group_stats(v.g, &gs1) == 0);
	CHECK_EQ(gs1.private_pages, 32);
	reclaim_group(v.g, 8);
	reclaim_group(v.g, 8);
	REQUIRE(fl_group_stats(v.g, &gs) == 0);
	CHECK_EQ(gs.private_pages, 16);
	for (size_t i = 0; i < 16; i++)
		CHECK_EQ(h_mismatch(v.p + 2 * i * PG, PG, 53, 2 * i * PG), -1);
	REQUIRE(fl_group_stats(v.g, &gs) == 0);
	CHECK_EQ(gs.swap_ins, gs1.swap_ins); /* A was all there */
	keep_close(&v);
}
