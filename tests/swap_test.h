/* SPDX-License-Identifier: MIT */
/* What the swap tests share (test_swap.c, test_swap_keep.c,
 * test_compressed.c). */
#ifndef FAULTLINE_TEST_SWAP_H
#define FAULTLINE_TEST_SWAP_H

#include "faultline.h"
#include "harness.h"
#include "reclaim.h"

/*
 * Whether group g holds nothing any more and device dev no slot and no
 * swap-cache page, after a reclaim pass: the I/O thread that read a page
 * lets it go after the retry, and a reclaim pass frees it once it has (a
 * condition for h_wait_until, through each test's own environment).
 */
static inline int swap_drained(fl_group *g, fl_swap *dev)
{
	struct fl_group_stats gs;
	struct fl_swap_stats st;

	reclaim_group(g, 1);
	fl_group_stats(g, &gs);
	fl_swap_stats(dev, &st);
	return gs.usage == 0 && st.slots_used == 0 && st.cache_pages == 0;
}

struct swap_drained_arg {
	fl_group *g;
	fl_swap *dev;
};

static inline int swap_drained_cond(void *arg)
{
	struct swap_drained_arg *a = arg;

	return swap_drained(a->g, a->dev);
}

/* Once a reclaim pass has freed what it can, nothing is left of g's memory
 * on dev: no charge, no private page, no swap usage, no slot, no stored
 * byte, no swap-cache page. */
static inline void swap_check_totals_zero(fl_group *g, fl_swap *dev)
{
	struct swap_drained_arg a = {g, dev};
	struct fl_group_stats gs;
	struct fl_swap_stats st;

	CHECK(h_wait_until(swap_drained_cond, &a));
	CHECK_EQ(fl_group_stats(g, &gs), 0);
	CHECK_EQ(gs.usage, 0);
	CHECK_EQ(gs.swap_usage, 0);
	CHECK_EQ(gs.private_pages, 0);
	CHECK_EQ(fl_swap_stats(dev, &st), 0);
	CHECK_EQ(st.slots_used, 0);
	CHECK_EQ(st.bytes_stored, 0);
	CHECK_EQ(st.cache_pages, 0);
}

#endif /* FAULTLINE_TEST_SWAP_H */
