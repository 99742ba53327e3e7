/* SPDX-License-Identifier: MIT */
/* What the swap tests share (test_swap.c, test_swap_keep.c,
 * test_compressed.c). */
#ifndef FAULTLINE_TEST_SWAP_H
#define FAULTLINE_TEST_SWAP_H

#include "faultline.h"
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

#endif /* FAULTLINE_TEST_SWAP_H */
