/* SPDX-License-Identifier: MIT */
/* The engine's page table for private and anonymous pages. */
#include "pagetable.h"

#include <errno.h>

void pagetable_init(struct pagetable *pt)
{
	pthread_mutex_init(&pt->lock, NULL);
	pt->entries = (struct radix)RADIX_INIT;
	pt->nr_private = 0;
	pt->nr_poisoned = 0;
	pt->nr_swap = 0;
	pt->nr_kept = 0;
	pt->swap_dropped = NULL;
}

void pagetable_destroy(struct pagetable *pt)
{
	radix_clear(&pt->entries, NULL, NULL);
	pthread_mutex_destroy(&pt->lock);
}

uint64_t pte_get_raw(struct pagetable *pt, uint64_t vpn)
{
	return (uint64_t)(uintptr_t)radix_lookup(&pt->entries, vpn);
}

enum pte_state pte_get(struct pagetable *pt, uint64_t vpn)
{
	return (enum pte_state)(pte_get_raw(pt, vpn) & PTE_STATE_MASK);
}

/* Keep the counts of entries by state: old replaced by new. */
static void pte_count(struct pagetable *pt, uint64_t old, uint64_t new)
{
	enum pte_state o = old & PTE_STATE_MASK, n = new &PTE_STATE_MASK;

	pt->nr_private += (n == PTE_PRIVATE) - (o == PTE_PRIVATE);
	/* Read without the lock: atomic. */
	__atomic_fetch_add(&pt->nr_poisoned,
			   (uint64_t)((n == PTE_POISON) - (o == PTE_POISON)),
			   __ATOMIC_RELAXED);
	__atomic_fetch_add(&pt->nr_swap,
			   (uint64_t)((n == PTE_SWAP) - (o == PTE_SWAP)),
			   __ATOMIC_RELAXED);
	__atomic_fetch_add(
		&pt->nr_kept,
		(uint64_t)(pte_keeps_slot(new) - pte_keeps_slot(old)),
		__ATOMIC_RELAXED);
}

int pte_set_raw(struct pagetable *pt, uint64_t vpn, uint64_t entry)
{
	uint64_t old = pte_get_raw(pt, vpn);

	if (old == entry)
		return 0;
	if (!old && radix_insert(&pt->entries, vpn, (void *)(uintptr_t)entry))
		return -1;
	pte_count(pt, old, entry);
	if (!entry)
		radix_delete(&pt->entries, vpn);
	else if (old)
		radix_replace(&pt->entries, vpn, (void *)(uintptr_t)entry);
	return 0;
}

int pte_set(struct pagetable *pt, uint64_t vpn, enum pte_state state)
{
	enum pte_state old = pte_get(pt, vpn);

	if (old == state)
		return old;
	if (pte_set_raw(pt, vpn, state))
		return -1;
	return old;
}

uint64_t pagetable_swap_entry(struct pagetable *pt, uint64_t vpn)
{
	uint64_t entry;

	if (!__atomic_load_n(&pt->nr_swap, __ATOMIC_RELAXED))
		return 0; /* the common case: no lock */
	pagetable_lock(pt);
	entry = pte_get_raw(pt, vpn);
	pagetable_unlock(pt);
	return (entry & PTE_STATE_MASK) == PTE_SWAP ? entry : 0;
}

int pagetable_drop_kept_slot(struct pagetable *pt, uint64_t vpn)
{
	uint64_t entry;
	int kept;

	if (!__atomic_load_n(&pt->nr_kept, __ATOMIC_RELAXED))
		return 0; /* the common case: no lock */
	pagetable_lock(pt);
	entry = pte_get_raw(pt, vpn);
	kept = pte_keeps_slot(entry);
	if (kept) {
		if (pt->swap_dropped)
			pt->swap_dropped(pt, entry);
		pte_set_raw(pt, vpn, PTE_PRIVATE | PTE_REFERENCED);
	}
	pagetable_unlock(pt);
	return kept;
}

uint64_t pagetable_clear_swap(struct pagetable *pt, uint64_t first,
			      uint64_t last, uint64_t *swapped)
{
	uint64_t vpn = first, private = 0, swaps = 0;
	void *entry;

	pagetable_lock(pt);
	while ((entry = radix_next(&pt->entries, &vpn, last))) {
		uint64_t value = (uint64_t)(uintptr_t)entry;

		private += (value & PTE_STATE_MASK) == PTE_PRIVATE;
		if ((value & PTE_STATE_MASK) == PTE_SWAP ||
		    pte_keeps_slot(value)) {
			swaps++;
			if (pt->swap_dropped)
				pt->swap_dropped(pt, value);
		}
		pte_count(pt, value, 0);
		radix_delete(&pt->entries, vpn);
		if (vpn++ == last)
			break;
	}
	pagetable_unlock(pt);
	if (swapped)
		*swapped = swaps;
	return private;
}

uint64_t pagetable_clear(struct pagetable *pt, uint64_t first, uint64_t last)
{
	return pagetable_clear_swap(pt, first, last, NULL);
}

uint64_t pagetable_next_poisoned(struct pagetable *pt, uint64_t first,
				 uint64_t last)
{
	uint64_t vpn = first, found = UINT64_MAX;
	void *entry;

	if (!__atomic_load_n(&pt->nr_poisoned, __ATOMIC_RELAXED) &&
	    !__atomic_load_n(&pt->nr_swap, __ATOMIC_RELAXED))
		return UINT64_MAX; /* the common case: no lock */
	pagetable_lock(pt);
	while ((entry = radix_next(&pt->entries, &vpn, last))) {
		uint64_t state = (uintptr_t)entry & PTE_STATE_MASK;

		if (state == PTE_POISON || state == PTE_SWAP) {
			found = vpn;
			break;
		}
		if (vpn++ == last)
			break;
	}
	pagetable_unlock(pt);
	return found;
}

uint64_t pagetable_count_private(struct pagetable *pt, uint64_t first,
				 uint64_t last)
{
	uint64_t vpn = first, private = 0;
	void *entry;

	pagetable_lock(pt);
	while ((entry = radix_next(&pt->entries, &vpn, last))) {
		private += ((uintptr_t)entry & PTE_STATE_MASK) == PTE_PRIVATE;
		if (vpn++ == last)
			break;
	}
	pagetable_unlock(pt);
	return private;
}
