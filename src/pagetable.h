/* SPDX-License-Identifier: MIT */
/*
 * The engine's own page table: what each virtual page of a private or
 * anonymous mapping holds, beyond what the object's page cache says.  Keyed
 * by virtual page number, so splitting a mapping costs nothing; entries are
 * made only when a page is in hand (an empty range costs nothing).
 */
#ifndef FL_PAGETABLE_H
#define FL_PAGETABLE_H

#include <pthread.h>
#include <stdint.h>

#include "radix.h"

enum pte_state {
	PTE_NONE = 0,	 /* nothing: the object's page, or unpopulated */
	PTE_ZERO = 1,	 /* anonymous: the shared zero page, write-protected */
	PTE_PRIVATE = 2, /* a private page: anonymous or a copy-on-write copy */
	PTE_POISON = 3,	 /* poisoned (SIGBUS) until MADV_DONTNEED or unmap:
			    fault-around must not map over it */
	PTE_SWAP = 4,	 /* swapped out: the entry names device and slot
			    (swap.h); fault-around must not map over it */
};

/*
 * An entry is a 64-bit value: the state in the low bits, then for
 * PTE_PRIVATE the referenced bit (swapped in or made since reclaim last
 * looked), for PTE_SWAP the device and slot (swap.c builds them).
 *
 * A PTE_PRIVATE entry with PTE_SLOT also names a device and slot, as a
 * swap entry does: the page was swapped in by a read and is still
 * write-protected, so the slot still holds its data (the kernel's clean
 * swap-cache page).  The entry owns the slot and its swap charge; the
 * first store frees both (pagetable_drop_kept_slot), reclaim drops the
 * page without writing it and makes the entry a swap entry again, marked
 * PTE_CLEAN_DROP.  A page swapped in again from such an entry is in use
 * after all: its kept entry is marked PTE_REFAULTED, and reclaim's sweep
 * of clean pages passes it over (the clock over all pages still takes it).
 */
#define PTE_STATE_MASK 7ull
#define PTE_REFERENCED 8ull
/* Of a PTE_SWAP entry (the bit PTE_REFERENCED is of a private one). */
#define PTE_CLEAN_DROP 8ull
#define PTE_REFAULTED  (1ull << 62)
#define PTE_SLOT       (1ull << 63)

/* Whether entry is a private page that keeps its slot (PTE_SLOT). */
static inline int pte_keeps_slot(uint64_t entry)
{
	return (entry & PTE_STATE_MASK) == PTE_PRIVATE && (entry & PTE_SLOT);
}

struct pagetable {
	pthread_mutex_t lock;
	struct radix entries;
	uint64_t nr_private;  /* PTE_PRIVATE entries */
	uint64_t nr_poisoned; /* PTE_POISON entries (atomic: read unlocked) */
	uint64_t nr_swap;     /* PTE_SWAP entries (atomic: read unlocked) */
	uint64_t nr_kept;     /* PTE_PRIVATE | PTE_SLOT entries (atomic) */
	/* Called, under the lock, for each swap entry a clear forgets. */
	void (*swap_dropped)(struct pagetable *pt, uint64_t entry);
};

void pagetable_init(struct pagetable *pt);
void pagetable_destroy(struct pagetable *pt);

static inline void pagetable_lock(struct pagetable *pt)
{
	pthread_mutex_lock(&pt->lock);
}

static inline void pagetable_unlock(struct pagetable *pt)
{
	pthread_mutex_unlock(&pt->lock);
}

/* Under the lock. */
enum pte_state pte_get(struct pagetable *pt, uint64_t vpn);
/* Under the lock.  Returns the previous state, or -1 with ENOMEM.  Never
 * over a swap entry or a kept slot (the slot would leak): use
 * pte_set_raw. */
int pte_set(struct pagetable *pt, uint64_t vpn, enum pte_state state);
/* Under the lock: the whole entry (0: PTE_NONE). */
uint64_t pte_get_raw(struct pagetable *pt, uint64_t vpn);
/* Under the lock: set the whole entry.  0, or -1 with ENOMEM. */
int pte_set_raw(struct pagetable *pt, uint64_t vpn, uint64_t entry);
/* The swap entry at vpn, or 0 (takes the lock unless none exists). */
uint64_t pagetable_swap_entry(struct pagetable *pt, uint64_t vpn);

/*
 * A store is to be let through to the page at vpn: if its entry keeps a
 * slot (PTE_SLOT), the slot is handed to swap_dropped and the entry left
 * plain PTE_PRIVATE (referenced).  Returns 1 if a slot went (its swap
 * charge is the caller's to give back), else 0.  Takes the lock unless no
 * entry keeps a slot.
 */
int pagetable_drop_kept_slot(struct pagetable *pt, uint64_t vpn);

/*
 * Forget [first, last] (takes the lock).  Returns how many entries were
 * PTE_PRIVATE (pages that were resident and are freed with the range).
 */
uint64_t pagetable_clear(struct pagetable *pt, uint64_t first, uint64_t last);
/* As pagetable_clear; *swapped is how many were swap entries or kept
 * slots (each handed to swap_dropped). */
uint64_t pagetable_clear_swap(struct pagetable *pt, uint64_t first,
			      uint64_t last, uint64_t *swapped);
/* The first PTE_POISON or PTE_SWAP entry in [first, last] (pages that
 * fault-around must not map), or UINT64_MAX (takes the lock unless there
 * is none). */
uint64_t pagetable_next_poisoned(struct pagetable *pt, uint64_t first,
				 uint64_t last);
/* Count PTE_PRIVATE entries in [first, last] (takes the lock). */
uint64_t pagetable_count_private(struct pagetable *pt, uint64_t first,
				 uint64_t last);

#endif /* FL_PAGETABLE_H */
