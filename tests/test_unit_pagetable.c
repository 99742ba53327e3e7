// SPDX-License-Identifier: MIT
/*
 * The engine's page table (src/pagetable.c) on its own, no userfaultfd:
 * state transitions and the count of private pages, clearing and counting
 * ranges (also the ends of the 64-bit range), and an entry that cannot be
 * allocated leaving the table as it was.
 */
#include "harness.h"
#include "inject.h"
#include "pagetable.h"

TEST(transitions_and_private_count)
{
	struct pagetable pt;

	pagetable_init(&pt);
	pagetable_lock(&pt);
	CHECK_EQ(pte_get(&pt, 42), PTE_NONE);
	/* Each set returns the previous state. */
	CHECK_EQ(pte_set(&pt, 42, PTE_ZERO), PTE_NONE);
	CHECK_EQ(pte_get(&pt, 42), PTE_ZERO);
	CHECK_EQ(pt.nr_private, 0);
	CHECK_EQ(pte_set(&pt, 42, PTE_PRIVATE), PTE_ZERO);
	CHECK_EQ(pt.nr_private, 1);
	CHECK_EQ(pte_set(&pt, 42, PTE_PRIVATE), PTE_PRIVATE); /* no change */
	CHECK_EQ(pt.nr_private, 1);
	CHECK_EQ(pte_set(&pt, 43, PTE_PRIVATE), PTE_NONE);
	CHECK_EQ(pt.nr_private, 2);
	CHECK_EQ(pte_set(&pt, 42, PTE_ZERO), PTE_PRIVATE);
	CHECK_EQ(pt.nr_private, 1);
	CHECK_EQ(pte_set(&pt, 43, PTE_NONE), PTE_PRIVATE);
	CHECK_EQ(pt.nr_private, 0);
	CHECK_EQ(pte_get(&pt, 43), PTE_NONE);
	CHECK_EQ(pte_set(&pt, 42, PTE_NONE), PTE_ZERO);
	CHECK_EQ(pte_set(&pt, 42, PTE_NONE), PTE_NONE);
	/* PTE_NONE is no entry at all. */
	CHECK_EQ(pt.entries.count, 0);
	pagetable_unlock(&pt);
	pagetable_destroy(&pt);
}

TEST(clear_and_count_ranges)
{
	struct pagetable pt;

	pagetable_init(&pt);
	pagetable_lock(&pt);
	for (uint64_t vpn = 100; vpn < 200; vpn++)
		REQUIRE(pte_set(&pt, vpn, vpn % 2 ? PTE_PRIVATE : PTE_ZERO) ==
			PTE_NONE);
	pagetable_unlock(&pt);
	CHECK_EQ(pt.nr_private, 50);
	CHECK_EQ(pagetable_count_private(&pt, 0, UINT64_MAX), 50);
	CHECK_EQ(pagetable_count_private(&pt, 100, 100), 0);
	CHECK_EQ(pagetable_count_private(&pt, 101, 101), 1);
	CHECK_EQ(pagetable_count_private(&pt, 150, 159), 5);
	CHECK_EQ(pagetable_count_private(&pt, 200, UINT64_MAX), 0);
	/* Clearing returns the private entries it dropped, zero pages too
	 * go, and what is outside the range stays. */
	CHECK_EQ(pagetable_clear(&pt, 150, 159), 5);
	CHECK_EQ(pt.nr_private, 45);
	CHECK_EQ(pagetable_count_private(&pt, 0, UINT64_MAX), 45);
	pagetable_lock(&pt);
	CHECK_EQ(pte_get(&pt, 150), PTE_NONE);
	CHECK_EQ(pte_get(&pt, 149), PTE_PRIVATE);
	CHECK_EQ(pte_get(&pt, 160), PTE_ZERO);
	pagetable_unlock(&pt);
	CHECK_EQ(pt.entries.count, 90);
	CHECK_EQ(pagetable_clear(&pt, 0, UINT64_MAX), 45);
	CHECK_EQ(pt.nr_private, 0);
	CHECK_EQ(pt.entries.count, 0);
	pagetable_destroy(&pt);
}

TEST(ends_of_the_range)
{
	struct pagetable pt;

	pagetable_init(&pt);
	pagetable_lock(&pt);
	REQUIRE(pte_set(&pt, 0, PTE_PRIVATE) == PTE_NONE);
	REQUIRE(pte_set(&pt, UINT64_MAX, PTE_PRIVATE) == PTE_NONE);
	REQUIRE(pte_set(&pt, UINT64_MAX - 1, PTE_ZERO) == PTE_NONE);
	pagetable_unlock(&pt);
	CHECK_EQ(pagetable_count_private(&pt, 0, 0), 1);
	CHECK_EQ(pagetable_count_private(&pt, UINT64_MAX, UINT64_MAX), 1);
	CHECK_EQ(pagetable_count_private(&pt, 1, UINT64_MAX - 1), 0);
	/* A range ending at UINT64_MAX ends (no wrap back to 0). */
	CHECK_EQ(pagetable_clear(&pt, UINT64_MAX - 1, UINT64_MAX), 1);
	pagetable_lock(&pt);
	CHECK_EQ(pte_get(&pt, 0), PTE_PRIVATE);
	CHECK_EQ(pte_get(&pt, UINT64_MAX), PTE_NONE);
	CHECK_EQ(pte_get(&pt, UINT64_MAX - 1), PTE_NONE);
	pagetable_unlock(&pt);
	CHECK_EQ(pagetable_clear(&pt, 0, 0), 1);
	CHECK_EQ(pt.nr_private, 0);
	CHECK_EQ(pt.entries.count, 0);
	pagetable_destroy(&pt);
}

TEST(destroy_frees_entries)
{
	struct pagetable pt;

	/* LeakSanitizer (sanitizer builds) checks that nothing stays. */
	pagetable_init(&pt);
	pagetable_lock(&pt);
	for (uint64_t vpn = 0; vpn < 100000; vpn += 97)
		REQUIRE(pte_set(&pt, vpn << 20, PTE_PRIVATE) == PTE_NONE);
	pagetable_unlock(&pt);
	pagetable_destroy(&pt);
}

TEST(set_without_memory_changes_nothing)
{
	struct pagetable pt;
	unsigned long failures = 0;

	pagetable_init(&pt);
	pagetable_lock(&pt);
	REQUIRE(pte_set(&pt, 1, PTE_PRIVATE) == PTE_NONE);
	/* An entry far away needs new levels and nodes: fail each in turn. */
	for (unsigned long nth = 1;; nth++) {
		int rc;

		inject_set(INJ_ALLOC, nth, ENOMEM);
		errno = 0;
		rc = pte_set(&pt, UINT64_C(1) << 40, PTE_PRIVATE);
		if (!inject_fired(INJ_ALLOC)) {
			CHECK_EQ(rc, PTE_NONE);
			break;
		}
		failures++;
		CHECK_EQ(rc, -1);
		CHECK_EQ(errno, ENOMEM);
		CHECK_EQ(pte_get(&pt, UINT64_C(1) << 40), PTE_NONE);
		CHECK_EQ(pt.nr_private, 1);
		CHECK_EQ(pte_get(&pt, 1), PTE_PRIVATE);
	}
	inject_clear();
	CHECK_GT(failures, 0);
	CHECK_EQ(pt.nr_private, 2);
	/* Changing an entry that exists needs no memory. */
	inject_set_mode(INJ_ALLOC, 1, ENOMEM, INJECT_FROM);
	CHECK_EQ(pte_set(&pt, 1, PTE_ZERO), PTE_PRIVATE);
	CHECK_EQ(pte_set(&pt, 1, PTE_NONE), PTE_ZERO);
	CHECK_EQ(inject_fired(INJ_ALLOC), 0);
	inject_clear();
	CHECK_EQ(pt.nr_private, 1);
	pagetable_unlock(&pt);
	pagetable_destroy(&pt);
}

/* Swap entries: whole 64-bit values, counted, stepped over like poison,
 * and handed to the hook when a clear forgets them. */
static uint64_t dropped[8];
static unsigned nr_dropped;

static void note_dropped(struct pagetable *pt, uint64_t entry)
{
	(void)pt;
	if (nr_dropped < 8)
		dropped[nr_dropped] = entry;
	nr_dropped++;
}

TEST(swap_entries)
{
	struct pagetable pt;
	uint64_t swapped = 99;
	uint64_t e1 = PTE_SWAP | (3ull << 4) | (12345ull << 9);
	uint64_t e2 = PTE_SWAP | (1ull << 4) | ((UINT64_MAX >> 9) << 9);

	pagetable_init(&pt);
	pt.swap_dropped = note_dropped;
	CHECK_EQ(pagetable_swap_entry(&pt, 10), 0); /* none: no lock */
	pagetable_lock(&pt);
	REQUIRE(pte_set(&pt, 10, PTE_PRIVATE) == PTE_NONE);
	REQUIRE(pte_set_raw(&pt, 10, e1) == 0); /* swapped out */
	REQUIRE(pte_set_raw(&pt, 11, e2) == 0);
	REQUIRE(pte_set_raw(&pt, 12, PTE_PRIVATE | PTE_REFERENCED) == 0);
	CHECK_EQ(pte_get(&pt, 10), PTE_SWAP);
	CHECK_EQ(pte_get_raw(&pt, 11), e2);
	CHECK_EQ(pte_get(&pt, 12), PTE_PRIVATE); /* the bit is not a state */
	pagetable_unlock(&pt);
	CHECK_EQ(pt.nr_private, 1);
	CHECK_EQ(pt.nr_swap, 2);
	CHECK_EQ(pagetable_swap_entry(&pt, 10), e1);
	CHECK_EQ(pagetable_swap_entry(&pt, 12), 0);
	/* Fault-around steps over swap entries as over poison. */
	CHECK_EQ(pagetable_next_poisoned(&pt, 0, 100), 10);
	CHECK_EQ(pagetable_next_poisoned(&pt, 12, 100), UINT64_MAX);
	CHECK_EQ(pagetable_count_private(&pt, 0, UINT64_MAX), 1);
	/* A clear hands each swap entry to the hook, once. */
	CHECK_EQ(pagetable_clear_swap(&pt, 11, 12, &swapped), 1);
	CHECK_EQ(swapped, 1);
	CHECK_EQ(nr_dropped, 1);
	CHECK_EQ(dropped[0], e2);
	CHECK_EQ(pagetable_clear(&pt, 0, UINT64_MAX), 0);
	CHECK_EQ(nr_dropped, 2);
	CHECK_EQ(dropped[1], e1);
	CHECK_EQ(pt.nr_swap, 0);
	CHECK_EQ(pt.entries.count, 0);
	pagetable_destroy(&pt);
}

/* A private page that keeps its slot (PTE_SLOT): counted as private and
 * as kept; the drop before a store hands the slot to the hook and leaves a
 * plain private page; a clear hands it over as a swap entry's. */
TEST(kept_slots)
{
	struct pagetable pt;
	uint64_t swapped = 99;
	uint64_t k1 = PTE_PRIVATE | PTE_REFERENCED | PTE_SLOT | (2ull << 4) |
		      (777ull << 9);
	uint64_t k2 = PTE_PRIVATE | PTE_SLOT | (2ull << 4) | (778ull << 9);

	nr_dropped = 0;
	pagetable_init(&pt);
	pt.swap_dropped = note_dropped;
	CHECK_EQ(pagetable_drop_kept_slot(&pt, 20), 0); /* none: no lock */
	pagetable_lock(&pt);
	REQUIRE(pte_set_raw(&pt, 20, k1) == 0);
	REQUIRE(pte_set_raw(&pt, 21, k2) == 0);
	REQUIRE(pte_set(&pt, 22, PTE_PRIVATE) == PTE_NONE);
	CHECK_EQ(pte_get(&pt, 20), PTE_PRIVATE);
	pagetable_unlock(&pt);
	CHECK_EQ(pt.nr_private, 3);
	CHECK_EQ(pt.nr_kept, 2);
	CHECK_EQ(pt.nr_swap, 0);
	CHECK_EQ(pagetable_swap_entry(&pt, 20), 0); /* resident: no fault */
	CHECK_EQ(pagetable_next_poisoned(&pt, 0, 100), UINT64_MAX);
	CHECK_EQ(pagetable_count_private(&pt, 0, UINT64_MAX), 3);
	/* A store: the slot goes to the hook, the page stays private. */
	CHECK_EQ(pagetable_drop_kept_slot(&pt, 20), 1);
	CHECK_EQ(nr_dropped, 1);
	CHECK_EQ(dropped[0], k1);
	CHECK_EQ(pte_get_raw(&pt, 20), PTE_PRIVATE | PTE_REFERENCED);
	CHECK_EQ(pagetable_drop_kept_slot(&pt, 20), 0); /* once */
	CHECK_EQ(pagetable_drop_kept_slot(&pt, 22), 0); /* never kept */
	CHECK_EQ(pt.nr_kept, 1);
	CHECK_EQ(pt.nr_private, 3);
	/* A clear: private pages freed, the kept slot handed over too. */
	CHECK_EQ(pagetable_clear_swap(&pt, 0, UINT64_MAX, &swapped), 3);
	CHECK_EQ(swapped, 1);
	CHECK_EQ(nr_dropped, 2);
	CHECK_EQ(dropped[1], k2);
	CHECK_EQ(pt.nr_kept, 0);
	CHECK_EQ(pt.nr_private, 0);
	CHECK_EQ(pt.entries.count, 0);
	pagetable_destroy(&pt);
}
