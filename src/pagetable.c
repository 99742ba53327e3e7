/* SPDX-License-Identifier: MIT */
/* The engine's page table for private and anonymous pages. */
#include "pagetable.h"

#include <errno.h>

void pagetable_init(struct pagetable *pt)
{
	pthread_mutex_init(&pt->lock, NULL);
	pt->entries = (struct radix)RADIX_INIT;
	pt->nr_private = 0;
}

void pagetable_destroy(struct pagetable *pt)
{
	radix_clear(&pt->entries, NULL, NULL);
	pthread_mutex_destroy(&pt->lock);
}

enum pte_state pte_get(struct pagetable *pt, uint64_t vpn)
{
	return (enum pte_state)(uintptr_t)radix_lookup(&pt->entries, vpn);
}

int pte_set(struct pagetable *pt, uint64_t vpn, enum pte_state state)
{
	enum pte_state old = pte_get(pt, vpn);

	if (old == state)
		return old;
	if (old == PTE_NONE &&
	    radix_insert(&pt->entries, vpn, (void *)(uintptr_t)state))
		return -1;
	pt->nr_private += (state == PTE_PRIVATE) - (old == PTE_PRIVATE);
	/* Read without the lock by pagetable_next_poisoned: atomic. */
	__atomic_fetch_add(
		&pt->nr_poisoned,
		(uint64_t)((state == PTE_POISON) - (old == PTE_POISON)),
		__ATOMIC_RELAXED);
	if (state == PTE_NONE)
		radix_delete(&pt->entries, vpn);
	else if (old != PTE_NONE)
		radix_replace(&pt->entries, vpn, (void *)(uintptr_t)state);
	return old;
}

uint64_t pagetable_clear(struct pagetable *pt, uint64_t first, uint64_t last)
{
	uint64_t vpn = first, private = 0, poisoned = 0;
	void *entry;

	pagetable_lock(pt);
	while ((entry = radix_next(&pt->entries, &vpn, last))) {
		private += (uintptr_t)entry == PTE_PRIVATE;
		poisoned += (uintptr_t)entry == PTE_POISON;
		radix_delete(&pt->entries, vpn);
		if (vpn++ == last)
			break;
	}
	pt->nr_private -= private;
	__atomic_fetch_sub(&pt->nr_poisoned, poisoned, __ATOMIC_RELAXED);
	pagetable_unlock(pt);
	return private;
}

uint64_t pagetable_next_poisoned(struct pagetable *pt, uint64_t first,
				 uint64_t last)
{
	uint64_t vpn = first, found = UINT64_MAX;
	void *entry;

	if (!__atomic_load_n(&pt->nr_poisoned, __ATOMIC_RELAXED))
		return UINT64_MAX; /* the common case: no lock */
	pagetable_lock(pt);
	while ((entry = radix_next(&pt->entries, &vpn, last))) {
		if ((uintptr_t)entry == PTE_POISON) {
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
		private += (uintptr_t)entry == PTE_PRIVATE;
		if (vpn++ == last)
			break;
	}
	pagetable_unlock(pt);
	return private;
}
