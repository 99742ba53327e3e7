// SPDX-License-Identifier: MIT
/*
 * The trial that decides whether handlers poll while faults read at
 * random (src/random_poll.c), on its own, with made-up times: the share
 * of random reads turns it on and off; not polling is tried first, then
 * polling, and the way with the shorter mean gap between random reads is
 * kept for RP_KEEP epochs, after which both are tried again; a pause
 * longer than RP_GAP_MAX_NS is not counted.
 */
#include "harness.h"
#include "random_poll.h"

#define US 1000u

/* n random reads, gap ns apart, after *now (left at the last). */
static void reads(struct random_poll *rp, uint64_t *now, unsigned n,
		  uint64_t gap)
{
	for (unsigned i = 0; i < n; i++) {
		*now += gap;
		random_poll_note(rp, 1, *now);
	}
}

/* From none, the 11th random read in a row makes them most of the faults
 * (the share passes RP_SHARE_ONE / 2); its gap is the first measured. */
static void become_random(struct random_poll *rp, uint64_t *now)
{
	reads(rp, now, 11, 100 * US);
	REQUIRE(random_poll_skip(rp));
}

/* A new trial whose random reads are most of the faults already. */
static void start_random(struct random_poll *rp, uint64_t *now)
{
	random_poll_init(rp);
	become_random(rp, now);
}

TEST(polling_unless_random_reads_are_most_faults)
{
	struct random_poll rp;
	uint64_t now = 1;
	int skips = 0;

	random_poll_init(&rp);
	CHECK(!random_poll_skip(&rp)); /* nothing seen: poll */
	for (int i = 0; i < 11; i++) {
		skips += random_poll_skip(&rp);
		random_poll_note(&rp, 1, now += 100 * US);
	}
	CHECK_EQ(skips, 0);	      /* ten in a row are not yet most */
	CHECK(random_poll_skip(&rp)); /* the trial begins: not polling */
	for (int i = 0; i < 11; i++)
		random_poll_note(&rp, 0, now += US); /* served at once */
	CHECK(!random_poll_skip(&rp));
	random_poll_destroy(&rp);
}

TEST(the_faster_way_is_kept_then_tried_again)
{
	for (int polling_faster = 0; polling_faster < 2; polling_faster++) {
		struct random_poll rp;
		uint64_t now = 1, off = polling_faster ? 150 : 100,
			 on = polling_faster ? 100 : 150;

		start_random(&rp, &now);
		reads(&rp, &now, RP_EPOCH - 1, off * US);
		CHECK(random_poll_skip(&rp)); /* still trying without */
		reads(&rp, &now, 1, off * US);
		CHECK(!random_poll_skip(&rp)); /* now trying with polling */
		reads(&rp, &now, RP_EPOCH, on * US);
		CHECK_EQ(random_poll_skip(&rp), !polling_faster);
		/* Kept, whatever the gaps now, for RP_KEEP epochs. */
		reads(&rp, &now, RP_KEEP * RP_EPOCH - 1, 10 * US);
		CHECK_EQ(random_poll_skip(&rp), !polling_faster);
		reads(&rp, &now, 1, 10 * US);
		CHECK(random_poll_skip(&rp)); /* tried again: not polling */
		random_poll_destroy(&rp);
	}
}

TEST(pauses_are_not_counted)
{
	struct random_poll rp;
	uint64_t now = 1;

	start_random(&rp, &now);
	/* Without polling: 100 us gaps, and long pauses between some. */
	for (unsigned i = 0; i < RP_EPOCH; i++)
		reads(&rp, &now, 1, i % 2 ? 100 * US : RP_GAP_MAX_NS + 1);
	CHECK(random_poll_skip(&rp)); /* half the gaps: epoch not over */
	reads(&rp, &now, RP_EPOCH / 2 + 1, 100 * US);
	CHECK(!random_poll_skip(&rp));
	/* Polling: 120 us gaps; without was faster (pauses left out). */
	reads(&rp, &now, RP_EPOCH, 120 * US);
	CHECK(random_poll_skip(&rp));
	random_poll_destroy(&rp);
}

TEST(gaps_count_only_between_random_reads)
{
	struct random_poll rp;
	uint64_t now = 1;

	start_random(&rp, &now);
	reads(&rp, &now, RP_EPOCH / 2, 100 * US);
	/* A stretch of faults served at once (a scan), then random again
	 * 5 ms later: the 5 ms is no gap between random reads. */
	for (int i = 0; i < 32; i++)
		random_poll_note(&rp, 0, now += US);
	CHECK(!random_poll_skip(&rp));
	now += 5000 * US;
	become_random(&rp, &now);
	reads(&rp, &now, RP_EPOCH, 100 * US);
	CHECK(!random_poll_skip(&rp)); /* trying with polling now */
	reads(&rp, &now, RP_EPOCH, 110 * US);
	/* Without polling measured 100 us (the 5 ms left out): kept. */
	CHECK(random_poll_skip(&rp));
	random_poll_destroy(&rp);
}
