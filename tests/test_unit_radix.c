// SPDX-License-Identifier: MIT
/*
 * The radix tree (src/radix.c) on its own, no userfaultfd: insert, lookup,
 * replace, delete, next, gang lookup and clear, at the edge indices (0, the
 * boundaries between heights, UINT64_MAX) and against a model under a long
 * random sequence of operations; allocation failure through the injection
 * layer leaves the tree as it was.  Every node freed is checked by
 * LeakSanitizer in the sanitizer builds.
 */
#include "harness.h"
#include "inject.h"
#include "radix.h"

#include <stdlib.h>

/* A distinct non-NULL item for each index the tests use. */
#define ITEM_KEY UINT64_C(0xA5A5A5A5A5A5A5A5)
static void *item_of(uint64_t index)
{
	return (void *)(uintptr_t)(index ^ ITEM_KEY);
}

/* Indices at the edges: 0, each height's last index and the next one's
 * first, and the top of the range. */
static size_t edge_indices(uint64_t *out)
{
	size_t n = 0;

	out[n++] = 0;
	out[n++] = 1;
	for (unsigned bits = 6; bits < 64; bits += 6) {
		out[n++] = (UINT64_C(1) << bits) - 1;
		out[n++] = UINT64_C(1) << bits;
	}
	out[n++] = UINT64_C(1) << 63;
	out[n++] = UINT64_MAX - 64;
	out[n++] = UINT64_MAX - 1;
	out[n++] = UINT64_MAX;
	return n;
}

static int is_edge(const uint64_t *idx, size_t n, uint64_t index)
{
	for (size_t i = 0; i < n; i++)
		if (idx[i] == index)
			return 1;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

TEST(empty_tree)
{
	struct radix t = RADIX_INIT;
	uint64_t index = 0, indices[4];
	void *items[4];

	CHECK(radix_lookup(&t, 0) == NULL);
	CHECK(radix_lookup(&t, UINT64_MAX) == NULL);
	CHECK(radix_delete(&t, 0) == NULL);
	CHECK(radix_delete(&t, UINT64_MAX) == NULL);
	CHECK(radix_next(&t, &index, UINT64_MAX) == NULL);
	CHECK_EQ(radix_gang(&t, &index, UINT64_MAX, items, indices, 4), 0);
	radix_clear(&t, NULL, NULL);
	CHECK(t.root == NULL);
	CHECK_EQ(t.height, 0);
	CHECK_EQ(t.count, 0);
}

TEST(zero_then_max_grows_to_full_height)
{
	struct radix t = RADIX_INIT;

	REQUIRE(radix_insert(&t, 0, item_of(0)) == 0);
	CHECK_EQ(t.height, 1);
	REQUIRE(radix_insert(&t, UINT64_MAX, item_of(UINT64_MAX)) == 0);
	CHECK_EQ(t.height, 11); /* 11 levels of 6 bits cover 64 */
	CHECK_EQ(t.count, 2);
	CHECK(radix_lookup(&t, 0) == item_of(0));
	CHECK(radix_lookup(&t, UINT64_MAX) == item_of(UINT64_MAX));
	CHECK(radix_lookup(&t, 1) == NULL);
	CHECK(radix_lookup(&t, UINT64_MAX - 1) == NULL);
	CHECK(radix_delete(&t, UINT64_MAX) == item_of(UINT64_MAX));
	CHECK(radix_lookup(&t, 0) == item_of(0));
	CHECK(radix_delete(&t, 0) == item_of(0));
	/* The last entry gone, the tree is empty again: no node is kept. */
	CHECK(t.root == NULL);
	CHECK_EQ(t.height, 0);
	CHECK_EQ(t.count, 0);
}

TEST(edges_insert_lookup_delete)
{
	struct radix t = RADIX_INIT;
	uint64_t idx[32];
	size_t n = edge_indices(idx);

	for (size_t i = 0; i < n; i++) {
		REQUIRE(radix_insert(&t, idx[i], item_of(idx[i])) == 0);
		CHECK_EQ(t.count, i + 1);
		for (size_t j = 0; j <= i; j++)
			CHECK(radix_lookup(&t, idx[j]) == item_of(idx[j]));
	}
	/* Neighbours of every edge are absent, unless edges themselves. */
	for (size_t i = 0; i < n; i++) {
		if (idx[i] > 0 && !is_edge(idx, n, idx[i] - 1))
			CHECK(radix_lookup(&t, idx[i] - 1) == NULL);
		if (idx[i] < UINT64_MAX && !is_edge(idx, n, idx[i] + 1))
			CHECK(radix_lookup(&t, idx[i] + 1) == NULL);
	}
	/* Delete in an order unlike insertion: odd positions, then even. */
	for (int pass = 1; pass >= 0; pass--)
		for (size_t i = (size_t)pass; i < n; i += 2) {
			CHECK(radix_delete(&t, idx[i]) == item_of(idx[i]));
			CHECK(radix_lookup(&t, idx[i]) == NULL);
			CHECK(radix_delete(&t, idx[i]) == NULL);
		}
	CHECK_EQ(t.count, 0);
	CHECK(t.root == NULL);
}

TEST(duplicate_insert_is_eexist)
{
	struct radix t = RADIX_INIT;

	REQUIRE(radix_insert(&t, 4096, item_of(4096)) == 0);
	CHECK_ERR(radix_insert(&t, 4096, item_of(1)) == -1, EEXIST);
	CHECK(radix_lookup(&t, 4096) == item_of(4096));
	CHECK_EQ(t.count, 1);
	radix_clear(&t, NULL, NULL);
}

TEST(replace_returns_old)
{
	struct radix t = RADIX_INIT;

	REQUIRE(radix_insert(&t, UINT64_MAX, item_of(1)) == 0);
	REQUIRE(radix_insert(&t, 7, item_of(7)) == 0);
	CHECK(radix_replace(&t, UINT64_MAX, item_of(2)) == item_of(1));
	CHECK(radix_lookup(&t, UINT64_MAX) == item_of(2));
	CHECK(radix_replace(&t, 7, item_of(3)) == item_of(7));
	CHECK(radix_lookup(&t, 7) == item_of(3));
	CHECK_EQ(t.count, 2);
	radix_clear(&t, NULL, NULL);
}

TEST(next_walks_in_order_within_bounds)
{
	struct radix t = RADIX_INIT;
	uint64_t idx[32], index;
	size_t n = edge_indices(idx), k;
	void *item;

	for (size_t i = 0; i < n; i++)
		REQUIRE(radix_insert(&t, idx[i], item_of(idx[i])) == 0);
	/* Whole range: every entry, in order, ending at UINT64_MAX. */
	index = 0;
	for (k = 0; (item = radix_next(&t, &index, UINT64_MAX)); k++) {
		REQUIRE(k < n);
		CHECK_EQ(index, idx[k]);
		CHECK(item == item_of(idx[k]));
		if (index == UINT64_MAX)
			break;
		index++;
	}
	CHECK_EQ(k + 1, n);
	/* A range between two entries finds nothing; bounds are inclusive. */
	index = 2;
	CHECK(radix_next(&t, &index, 62) == NULL);
	index = 2;
	CHECK(radix_next(&t, &index, 63) == item_of(63));
	CHECK_EQ(index, 63);
	index = 64;
	CHECK(radix_next(&t, &index, 64) == item_of(64));
	index = UINT64_MAX;
	CHECK(radix_next(&t, &index, UINT64_MAX) == item_of(UINT64_MAX));
	CHECK_EQ(index, UINT64_MAX);
	/* Start after last: nothing. */
	index = 100;
	CHECK(radix_next(&t, &index, 99) == NULL);
	radix_clear(&t, NULL, NULL);
}

/* Collect [first, last] with gang lookups of max at a time. */
static size_t gang_all(const struct radix *t, uint64_t first, uint64_t last,
		       unsigned max, uint64_t *out, size_t cap)
{
	uint64_t index = first, indices[64];
	void *items[64];
	size_t got = 0;
	unsigned n;

	while ((n = radix_gang(t, &index, last, items, indices, max))) {
		for (unsigned i = 0; i < n; i++) {
			CHECK(items[i] == item_of(indices[i]));
			CHECK(indices[i] >= first && indices[i] <= last);
			if (got)
				CHECK_GT(indices[i], out[got - 1]);
			REQUIRE(got < cap);
			out[got++] = indices[i];
		}
		if (indices[n - 1] == last)
			break;
		/* A scan that reached UINT64_MAX leaves *index wrapped to 0
		 * (even when the last entry returned is below it): nothing
		 * remains.  Otherwise *index is past the last returned. */
		if (index == 0)
			break;
		CHECK_GT(index, indices[n - 1]);
	}
	return got;
}

TEST(gang_runs_and_edges)
{
	struct radix t = RADIX_INIT;
	uint64_t idx[32], out[256];
	size_t n = edge_indices(idx), got;

	/* A dense run across a leaf boundary, plus the edges. */
	for (uint64_t i = 100; i < 200; i++)
		REQUIRE(radix_insert(&t, i, item_of(i)) == 0);
	for (size_t i = 0; i < n; i++)
		if (idx[i] < 100 || idx[i] >= 200)
			REQUIRE(radix_insert(&t, idx[i], item_of(idx[i])) == 0);
	for (unsigned max = 1; max <= 64; max = max * 3 + 1) {
		got = gang_all(&t, 0, UINT64_MAX, max, out, 256);
		CHECK_EQ(got, t.count);
		got = gang_all(&t, 150, 170, max, out, 256);
		CHECK_EQ(got, 21);
		CHECK_EQ(out[0], 150);
		got = gang_all(&t, UINT64_MAX - 1, UINT64_MAX, max, out, 256);
		CHECK_EQ(got, 2);
		got = gang_all(&t, 201, 4095, max, out, 256);
		CHECK_EQ(got, 1); /* 4095 */
	}
	radix_clear(&t, NULL, NULL);
}

struct clear_sum {
	uint64_t n, xor_index;
	int wrong_item;
};

static void on_clear(void *item, uint64_t index, void *arg)
{
	struct clear_sum *s = arg;

	s->n++;
	s->xor_index ^= index;
	s->wrong_item |= item != item_of(index);
}

TEST(clear_visits_every_entry_once)
{
	struct radix t = RADIX_INIT;
	uint64_t idx[32], want_xor = 0;
	size_t n = edge_indices(idx);
	struct clear_sum s = {0};

	for (size_t i = 0; i < n; i++) {
		REQUIRE(radix_insert(&t, idx[i], item_of(idx[i])) == 0);
		want_xor ^= idx[i];
	}
	radix_clear(&t, on_clear, &s);
	CHECK_EQ(s.n, n);
	CHECK_EQ(s.xor_index, want_xor);
	CHECK(!s.wrong_item);
	CHECK(t.root == NULL);
	CHECK_EQ(t.count, 0);
	/* Usable again after a clear. */
	REQUIRE(radix_insert(&t, 5, item_of(5)) == 0);
	CHECK(radix_lookup(&t, 5) == item_of(5));
	radix_clear(&t, NULL, NULL);
}

TEST(allocation_failure_leaves_tree_intact)
{
	struct radix t = RADIX_INIT;
	uint64_t idx[32], out[64];
	size_t n = edge_indices(idx), failed = 0;

	REQUIRE(radix_insert(&t, 3, item_of(3)) == 0);
	/* Each allocation an insert makes, failed in turn: growing the
	 * root (UINT64_MAX needs ten new levels) or a node on the way. */
	for (size_t i = 0; i < n; i++) {
		for (unsigned long nth = 1;; nth++) {
			int rc;

			inject_set(INJ_ALLOC, nth, ENOMEM);
			errno = 0;
			rc = radix_insert(&t, idx[i], item_of(idx[i]));
			if (!inject_fired(INJ_ALLOC)) {
				REQUIRE(rc == 0); /* fewer allocations */
				break;
			}
			failed++;
			CHECK_EQ(rc, -1);
			CHECK_EQ(errno, ENOMEM);
			CHECK(radix_lookup(&t, idx[i]) == NULL);
			CHECK(radix_lookup(&t, 3) == item_of(3));
		}
		inject_clear();
		CHECK(radix_lookup(&t, idx[i]) == item_of(idx[i]));
	}
	CHECK_GT(failed, n); /* UINT64_MAX alone needed ten new levels */
	CHECK_EQ(t.count, n + 1);
	CHECK_EQ(gang_all(&t, 0, UINT64_MAX, 64, out, 64), n + 1);
	/* Deleting everything frees every node, also those left empty by
	 * the failed inserts (LeakSanitizer checks). */
	for (size_t i = 0; i < n; i++)
		CHECK(radix_delete(&t, idx[i]) == item_of(idx[i]));
	CHECK(radix_delete(&t, 3) == item_of(3));
	CHECK_EQ(t.count, 0);
	radix_clear(&t, NULL, NULL);
}

/* ---- against a model ----------------------------------------------------- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

/* An index drawn to hit interesting places: small, near a height's
 * boundary, near the top, dense runs, or anywhere. */
static uint64_t random_index(void)
{
	unsigned bits = 6 * (1 + (unsigned)(rng() % 10));

	switch (rng() % 5) {
	case 0:
		return rng() % 300;
	case 1:
		return (UINT64_C(1) << bits) - 3 + rng() % 6;
	case 2:
		return UINT64_MAX - rng() % 300;
	case 3:
		return (rng() % 8) * 4096 + rng() % 130;
	default:
		return rng();
	}
}

#define MODEL_MAX 4096

struct model {
	uint64_t idx[MODEL_MAX];
	size_t n;
};

static long model_find(const struct model *m, uint64_t index)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (m->idx[mid] < index)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < m->n && m->idx[lo] == index ? (long)lo : -(long)lo - 1;
}

static void model_check_range(const struct radix *t, const struct model *m,
			      uint64_t first, uint64_t last)
{
	static uint64_t got[MODEL_MAX];
	long at = model_find(m, first);
	size_t lo = (size_t)(at >= 0 ? at : -at - 1), want = 0;
	size_t n;

	while (lo + want < m->n && m->idx[lo + want] <= last)
		want++;
	n = gang_all(t, first, last, 1 + (unsigned)(rng() % 64), got,
		     MODEL_MAX);
	CHECK_EQ(n, want);
	for (size_t i = 0; i < n && i < want; i++)
		if (got[i] != m->idx[lo + i]) {
			CHECK_EQ(got[i], m->idx[lo + i]);
			break;
		}
	/* radix_next agrees on the first one. */
	if (want) {
		uint64_t index = first;

		CHECK(radix_next(t, &index, last) == item_of(m->idx[lo]));
		CHECK_EQ(index, m->idx[lo]);
	}
}

TEST(random_operations_match_model)
{
	static struct model m;
	struct radix t = RADIX_INIT;

	m.n = 0;
	for (int op = 0; op < 20000; op++) {
		uint64_t index = random_index();
		long at = model_find(&m, index);

		if (at < 0 && m.n < MODEL_MAX && rng() % 3) {
			size_t pos = (size_t)(-at - 1);

			REQUIRE(radix_insert(&t, index, item_of(index)) == 0);
			memmove(&m.idx[pos + 1], &m.idx[pos],
				(m.n - pos) * sizeof(m.idx[0]));
			m.idx[pos] = index;
			m.n++;
		} else if (at >= 0 && rng() % 2) {
			CHECK(radix_delete(&t, index) == item_of(index));
			memmove(&m.idx[at], &m.idx[at + 1],
				(m.n - (size_t)at - 1) * sizeof(m.idx[0]));
			m.n--;
		} else {
			CHECK(radix_lookup(&t, index) ==
			      (at >= 0 ? item_of(index) : NULL));
		}
		CHECK_EQ(t.count, m.n);
		if (op % 500 == 0) {
			uint64_t a = random_index(), b = random_index();

			model_check_range(&t, &m, 0, UINT64_MAX);
			model_check_range(&t, &m, a < b ? a : b, a < b ? b : a);
		}
		if (h_failures())
			h_abort_case();
	}
	/* The model's order is the tree's order. */
	qsort(m.idx, m.n, sizeof(m.idx[0]), cmp_u64);
	model_check_range(&t, &m, 0, UINT64_MAX);
	radix_clear(&t, NULL, NULL);
}
