// SPDX-License-Identifier: MIT
/*
 * Lock-hold histograms (src/lockstat.c) on their own, no userfaultfd:
 * quantiles land on the upper end of a bucket within 25% of the value (four
 * buckets per power of two), never above the largest value recorded, and
 * reset starts afresh.
 */
#include "harness.h"
#include "lockstat.h"

#include <stdlib.h>

static struct lockstat *new_stat(void)
{
	struct lockstat *ls = calloc(1, sizeof(*ls));

	REQUIRE(ls != NULL);
	return ls;
}

TEST(empty_is_zero)
{
	struct lockstat *ls = new_stat();

	CHECK_EQ(lockstat_quantile(ls, 0.0), 0);
	CHECK_EQ(lockstat_quantile(ls, 0.5), 0);
	CHECK_EQ(lockstat_quantile(ls, 1.0), 0);
	free(ls);
}

TEST(small_values_are_exact)
{
	struct lockstat *ls = new_stat();

	/* 0..3 ns have a bucket each; 4..7 too (the first power of two
	 * with four buckets). */
	for (uint64_t v = 0; v < 8; v++) {
		lockstat_reset(ls);
		lockstat_record(ls, v);
		lockstat_record(ls, 1000);
		CHECK_EQ(lockstat_quantile(ls, 0.0), v);
	}
	free(ls);
}

/* The bucket of v, seen through the quantile of a histogram holding v
 * and one much larger value (so that the max does not cap it). */
static uint64_t bucket_top_of(struct lockstat *ls, uint64_t v)
{
	lockstat_reset(ls);
	lockstat_record(ls, v);
	lockstat_record(ls, v * 8 + 8);
	return lockstat_quantile(ls, 0.0);
}

TEST(quantile_within_a_quarter)
{
	struct lockstat *ls = new_stat();

	/* Every power of two, its neighbours and points between, up to the
	 * histogram's range (2^47 ns). */
	for (unsigned k = 2; k < 44; k++)
		for (uint64_t off = 0; off < 16; off++) {
			uint64_t base = UINT64_C(1) << k;
			uint64_t v = base + off * (base / 16);
			uint64_t top = bucket_top_of(ls, v);

			if (top < v || top > v + v / 4) {
				CHECK_GE(top, v);
				CHECK_LE(top, v + v / 4);
				h_abort_case();
			}
			/* Values one apart share a bucket or sit in
			 * neighbouring ones: the top never goes down. */
			CHECK_GE(bucket_top_of(ls, v + 1), top);
		}
	free(ls);
}

TEST(capped_at_max)
{
	struct lockstat *ls = new_stat();

	/* A lone value: every quantile is the value itself, not its
	 * bucket's upper end. */
	for (uint64_t v = 5; v < (UINT64_C(1) << 40); v = v * 3 + 1) {
		lockstat_reset(ls);
		lockstat_record(ls, v);
		CHECK_EQ(lockstat_quantile(ls, 0.5), v);
		CHECK_EQ(lockstat_quantile(ls, 1.0), v);
		CHECK_EQ(atomic_load(&ls->max_ns), v);
	}
	/* Beyond the last bucket: counted, the max kept exactly, and no
	 * quantile above it. */
	lockstat_reset(ls);
	lockstat_record(ls, UINT64_C(1) << 60);
	CHECK_EQ(atomic_load(&ls->count), 1);
	CHECK_EQ(atomic_load(&ls->max_ns), UINT64_C(1) << 60);
	CHECK_LE(lockstat_quantile(ls, 1.0), UINT64_C(1) << 60);
	CHECK_GT(lockstat_quantile(ls, 1.0), 0);
	free(ls);
}

TEST(quantiles_of_a_distribution)
{
	struct lockstat *ls = new_stat();

	/* 99 holds of 1000 ns and one of 1 ms. */
	for (int i = 0; i < 99; i++)
		lockstat_record(ls, 1000);
	lockstat_record(ls, 1000000);
	CHECK_EQ(atomic_load(&ls->count), 100);
	CHECK_GE(lockstat_quantile(ls, 0.5), 1000);
	CHECK_LE(lockstat_quantile(ls, 0.5), 1250);
	CHECK_LE(lockstat_quantile(ls, 0.98), 1250);
	/* The top 1%: the slow one. */
	CHECK_EQ(lockstat_quantile(ls, 0.99), 1000000);
	CHECK_EQ(lockstat_quantile(ls, 1.0), 1000000);
	/* Quantiles never decrease with q. */
	for (double q = 0.0, prev = 0; q <= 1.0; q += 0.01) {
		double v = (double)lockstat_quantile(ls, q);

		CHECK(v >= prev);
		prev = v;
	}
	free(ls);
}

TEST(reset_starts_afresh)
{
	struct lockstat *ls = new_stat();

	lockstat_record(ls, 123456);
	lockstat_reset(ls);
	CHECK_EQ(atomic_load(&ls->count), 0);
	CHECK_EQ(atomic_load(&ls->max_ns), 0);
	CHECK_EQ(lockstat_quantile(ls, 0.5), 0);
	lockstat_record(ls, 10);
	CHECK_EQ(lockstat_quantile(ls, 0.5), 10);
	free(ls);
}

struct many {
	struct lockstat *ls;
};

static void record_many(int idx, void *arg)
{
	struct many *m = arg;

	for (uint64_t i = 0; i < 50000; i++)
		lockstat_record(m->ls, (i % 1000) + (uint64_t)idx * 1000000);
}

TEST(concurrent_records_all_counted)
{
	struct many m = {new_stat()};

	h_run_threads(4, record_many, &m);
	CHECK_EQ(atomic_load(&m.ls->count), 4 * 50000);
	CHECK_EQ(atomic_load(&m.ls->max_ns), 3 * 1000000 + 999);
	CHECK_EQ(lockstat_quantile(m.ls, 1.0), 3 * 1000000 + 999);
	free(m.ls);
}
