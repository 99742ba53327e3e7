// SPDX-License-Identifier: MIT
/*
 * Memory-group charging (src/group.c) on its own, no userfaultfd and no
 * engine: group_try_charge, group_force_charge and group_uncharge over a
 * hierarchy of groups made by hand (only what charging reads is set up),
 * refusal at any level leaving nothing charged, peaks, waiters woken by an
 * uncharge, and concurrent charging that never passes a max.
 */
#include "group.h"
#include "harness.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

/* A group as charging sees it: a parent, a max in pages, a wait list. */
static struct fl_group *fake_group(struct fl_group *parent, uint64_t max)
{
	struct fl_group *g = calloc(1, sizeof(*g));

	REQUIRE(g != NULL);
	g->parent = parent;
	atomic_init(&g->max, max);
	atomic_init(&g->high, UINT64_MAX);
	pthread_mutex_init(&g->wait_lock, NULL);
	return g;
}

static void free_group(struct fl_group *g)
{
	pthread_mutex_destroy(&g->wait_lock);
	free(g);
}

static uint64_t usage(struct fl_group *g)
{
	return atomic_load(&g->usage);
}

static uint64_t peak(struct fl_group *g)
{
	return atomic_load(&g->peak);
}

/* root (unlimited) -> a -> b, and root -> c. */
struct tree {
	struct fl_group *root, *a, *b, *c;
};

static struct tree make_tree(void)
{
	struct tree t;

	t.root = fake_group(NULL, UINT64_MAX);
	t.a = fake_group(t.root, UINT64_MAX);
	t.b = fake_group(t.a, UINT64_MAX);
	t.c = fake_group(t.root, UINT64_MAX);
	return t;
}

static void free_tree(struct tree *t)
{
	free_group(t->b);
	free_group(t->a);
	free_group(t->c);
	free_group(t->root);
}

TEST(charge_counts_at_every_level)
{
	struct tree t = make_tree();
	struct fl_group *over = NULL;

	CHECK_EQ(group_try_charge(t.b, 5, &over), 0);
	CHECK_EQ(usage(t.b), 5);
	CHECK_EQ(usage(t.a), 5);
	CHECK_EQ(usage(t.root), 5);
	CHECK_EQ(usage(t.c), 0);
	CHECK_EQ(group_try_charge(t.c, 3, &over), 0);
	CHECK_EQ(usage(t.root), 8);
	CHECK_EQ(usage(t.a), 5);
	CHECK_EQ(peak(t.root), 8);
	CHECK_EQ(peak(t.a), 5);
	CHECK_EQ(peak(t.b), 5);
	CHECK_EQ(peak(t.c), 3);
	CHECK(over == NULL);
	group_uncharge(t.b, 5);
	group_uncharge(t.c, 3);
	CHECK_EQ(usage(t.root), 0);
	CHECK_EQ(usage(t.a), 0);
	/* Peaks are the highest usage, kept after the uncharge. */
	CHECK_EQ(peak(t.root), 8);
	CHECK_EQ(peak(t.b), 5);
	free_tree(&t);
}

TEST(up_to_max_exactly)
{
	struct tree t = make_tree();
	struct fl_group *over = NULL;

	atomic_store(&t.a->max, 10);
	CHECK_EQ(group_try_charge(t.b, 10, &over), 0);
	CHECK_EQ(usage(t.a), 10);
	CHECK_EQ(group_try_charge(t.b, 1, &over), -1);
	CHECK(over == t.a);
	group_uncharge(t.b, 10);
	/* A charge larger than max is refused whole, not in part. */
	CHECK_EQ(group_try_charge(t.b, 11, &over), -1);
	CHECK_EQ(usage(t.b), 0);
	CHECK_EQ(usage(t.a), 0);
	free_tree(&t);
}

TEST(refusal_at_any_level_leaves_nothing_charged)
{
	struct tree t = make_tree();
	struct fl_group *over;

	REQUIRE(group_try_charge(t.b, 8, &over) == 0);
	REQUIRE(group_try_charge(t.c, 2, &over) == 0);
	/* Refused at the parent: b, a and root as they were. */
	atomic_store(&t.a->max, 10);
	over = NULL;
	CHECK_EQ(group_try_charge(t.b, 3, &over), -1);
	CHECK(over == t.a);
	CHECK_EQ(usage(t.b), 8);
	CHECK_EQ(usage(t.a), 8);
	CHECK_EQ(usage(t.root), 10);
	/* Refused at the root, two levels up: the levels below undone. */
	atomic_store(&t.root->max, 11);
	over = NULL;
	CHECK_EQ(group_try_charge(t.b, 2, &over), -1);
	CHECK(over == t.root);
	CHECK_EQ(usage(t.b), 8);
	CHECK_EQ(usage(t.a), 8);
	CHECK_EQ(usage(t.root), 10);
	/* Refused at the group itself. */
	atomic_store(&t.b->max, 8);
	over = NULL;
	CHECK_EQ(group_try_charge(t.b, 1, &over), -1);
	CHECK(over == t.b);
	CHECK_EQ(usage(t.b), 8);
	/* A refused charge leaves no peak behind. */
	CHECK_EQ(peak(t.b), 8);
	CHECK_EQ(peak(t.a), 8);
	CHECK_EQ(peak(t.root), 10);
	/* What fits still goes through. */
	atomic_store(&t.b->max, UINT64_MAX);
	CHECK_EQ(group_try_charge(t.b, 1, &over), 0);
	CHECK_EQ(usage(t.root), 11);
	CHECK_EQ(peak(t.root), 11);
	group_uncharge(t.b, 9);
	group_uncharge(t.c, 2);
	CHECK_EQ(usage(t.root), 0);
	free_tree(&t);
}

TEST(force_charge_may_pass_max)
{
	struct tree t = make_tree();
	struct fl_group *over;

	atomic_store(&t.a->max, 4);
	group_force_charge(t.b, 6);
	CHECK_EQ(usage(t.b), 6);
	CHECK_EQ(usage(t.a), 6);
	CHECK_EQ(usage(t.root), 6);
	CHECK_EQ(peak(t.a), 6);
	/* Over max now: every further charge below a is refused. */
	CHECK_EQ(group_try_charge(t.b, 1, &over), -1);
	CHECK(over == t.a);
	/* Elsewhere the root still has room. */
	CHECK_EQ(group_try_charge(t.c, 1, &over), 0);
	group_uncharge(t.b, 6);
	group_uncharge(t.c, 1);
	CHECK_EQ(usage(t.root), 0);
	free_tree(&t);
}

TEST(within)
{
	struct tree t = make_tree();

	CHECK(group_within(t.b, t.b));
	CHECK(group_within(t.b, t.a));
	CHECK(group_within(t.b, t.root));
	CHECK(!group_within(t.a, t.b));
	CHECK(!group_within(t.b, t.c));
	CHECK(!group_within(t.c, t.a));
	free_tree(&t);
}

struct waiter {
	struct page_waiter w;
	_Atomic int woken;
};

static void on_wake(struct page_waiter *pw)
{
	struct waiter *w = (struct waiter *)pw;

	atomic_fetch_add(&w->woken, 1);
}

TEST(uncharge_wakes_waiters_here_and_above)
{
	struct tree t = make_tree();
	struct waiter wa = {.w.wake = on_wake}, wb = {.w.wake = on_wake};
	struct waiter wc = {.w.wake = on_wake}, room = {.w.wake = on_wake};
	struct fl_group *over;

	/* A fault waits on the group that refused it: a, b and c full. */
	atomic_store(&t.a->max, 4);
	atomic_store(&t.b->max, 4);
	REQUIRE(group_try_charge(t.b, 4, &over) == 0);
	REQUIRE(group_try_charge(t.c, 1, &over) == 0);
	/* Room for 1 in c: not parked, and never woken. */
	CHECK_EQ(group_wait(t.c, 1, &room.w), -1);
	/* a and b are full: both park. */
	CHECK_EQ(group_wait(t.a, 1, &wa.w), 0);
	CHECK_EQ(group_wait(t.b, 1, &wb.w), 0);
	atomic_store(&t.c->max, 1);
	CHECK_EQ(group_wait(t.c, 1, &wc.w), 0);
	CHECK_EQ(atomic_load(&wa.woken) + atomic_load(&wb.woken), 0);
	/* An uncharge in b wakes b's and a's waiters, not c's. */
	group_uncharge(t.b, 1);
	CHECK_EQ(atomic_load(&wb.woken), 1);
	CHECK_EQ(atomic_load(&wa.woken), 1);
	CHECK_EQ(atomic_load(&wc.woken), 0);
	CHECK_EQ(atomic_load(&t.a->waiters_nr), 0);
	CHECK_EQ(atomic_load(&t.b->waiters_nr), 0);
	/* Woken once: a second uncharge finds nobody. */
	group_uncharge(t.b, 1);
	CHECK_EQ(atomic_load(&wb.woken), 1);
	group_uncharge(t.c, 1);
	CHECK_EQ(atomic_load(&wc.woken), 1);
	CHECK_EQ(atomic_load(&room.woken), 0);
	group_uncharge(t.b, 2);
	CHECK_EQ(usage(t.root), 0);
	free_tree(&t);
}

/* ---- concurrent charging ------------------------------------------------- */

#define LEAVES 4
#define ROUNDS 4000

struct race {
	struct fl_group *parent, *leaf[LEAVES];
	_Atomic uint64_t charged, refused, over_seen;
};

static void charge_loop(int idx, void *arg)
{
	struct race *r = arg;
	struct fl_group *leaf = r->leaf[idx], *over;
	uint64_t max = atomic_load(&r->parent->max);

	for (unsigned i = 0; i < ROUNDS; i++) {
		/* 1 to 3 pages, sometimes 5: more than the parent allows,
		 * taken at the leaf and undone when the parent refuses. */
		uint64_t n = i % 11 ? 1 + (i * 7 + (unsigned)idx) % 3 : 5;

		if (group_try_charge(leaf, n, &over)) {
			atomic_fetch_add(&r->refused, 1);
			continue;
		}
		atomic_fetch_add(&r->charged, 1);
		if (atomic_load(&r->parent->usage) > max)
			atomic_fetch_add(&r->over_seen, 1);
		sched_yield(); /* hold it a moment: others meet a full parent */
		group_uncharge(leaf, n);
	}
}

TEST(concurrent_charges_never_pass_max)
{
	struct fl_group *root = fake_group(NULL, UINT64_MAX);
	struct race r = {.parent = fake_group(root, 4)};

	for (int i = 0; i < LEAVES; i++)
		r.leaf[i] = fake_group(r.parent, i % 2 ? 3 : UINT64_MAX);
	h_run_threads(LEAVES, charge_loop, &r);
	CHECK_EQ(atomic_load(&r.over_seen), 0);
	CHECK_LE(peak(r.parent), 4);
	CHECK_GE(peak(r.parent), 1);
	CHECK_EQ(usage(r.parent), 0);
	CHECK_EQ(usage(root), 0);
	for (int i = 0; i < LEAVES; i++) {
		CHECK_EQ(usage(r.leaf[i]), 0);
		CHECK_LE(peak(r.leaf[i]), i % 2 ? 3 : 4);
		free_group(r.leaf[i]);
	}
	CHECK_GT(atomic_load(&r.charged), 0);
	CHECK_GT(atomic_load(&r.refused), 0);
	h_note("%llu charged, %llu refused",
	       (unsigned long long)atomic_load(&r.charged),
	       (unsigned long long)atomic_load(&r.refused));
	free_group(r.parent);
	free_group(root);
}
