/* SPDX-License-Identifier: MIT */
/*
 * Swap: the engine's devices, groups' swap settings and usage, swap
 * entries and the swap cache; see swap.h.  Swap-out is in swap_out.c,
 * swap-in in fault_swap.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "group.h"
#include "swap.h"
#include "swap_zpool.h"

#ifdef FL_INJECT
int (*swap_test_hook)(enum swap_hook_point point, uint64_t slot);
#endif

/* The page-table hook (pagetable.h), under the page-table lock. */
static void pagetable_swap_dropped(struct pagetable *pt, uint64_t entry)
{
	struct fl_engine *e =
		(struct fl_engine *)((char *)pt -
				     offsetof(struct fl_engine, pagetable));

	swap_entry_dropped(e, entry);
}

void swap_engine_init(struct fl_engine *e)
{
	pthread_mutex_init(&e->swap.lock, NULL);
	e->pagetable.swap_dropped = pagetable_swap_dropped;
}

void swap_engine_destroy(struct fl_engine *e)
{
	for (unsigned b = 0; b < SWAP_CACHE_BUCKETS; b++) {
		while (e->swap.cache[b]) {
			struct swap_page *sp = e->swap.cache[b];

			e->swap.cache[b] = sp->next;
			atomic_fetch_sub(&e->swap.cache_pages, 1);
			sp->orphan = 1; /* every entry is gone */
			swap_page_release(sp);
		}
	}
	for (unsigned i = 0; i < e->swap.nr_devs; i++)
		e->swap.devs[i]->ops->destroy(e->swap.devs[i]);
	e->swap.nr_devs = 0;
	pthread_mutex_destroy(&e->swap.lock);
}

int swap_dev_register(struct fl_engine *e, struct fl_swap *dev)
{
	int rc = -1;

	pthread_mutex_lock(&e->swap.lock);
	if (e->swap.nr_devs < SWAP_MAX_DEVICES) {
		dev->engine = e;
		dev->id = e->swap.nr_devs;
		e->swap.devs[e->swap.nr_devs] = dev;
		__atomic_store_n(&e->swap.nr_devs, e->swap.nr_devs + 1,
				 __ATOMIC_RELEASE);
		rc = 0;
	}
	pthread_mutex_unlock(&e->swap.lock);
	if (rc) {
		dev->ops->destroy(dev);
		errno = ENOSPC;
	}
	return rc;
}

fl_swap *fl_swap_compressed_create(fl_engine *e, int algorithm, int level,
				   uint64_t pool_bytes, fl_swap *next)
{
	struct fl_swap *dev;

	if (!e || (next && next->engine != e)) {
		errno = EINVAL;
		return NULL;
	}
	dev = swap_zpool_create(e, algorithm, level, pool_bytes, next);
	if (!dev || swap_dev_register(e, dev))
		return NULL; /* errno set; a refused device is destroyed */
	return dev;
}

/* ---- groups ------------------------------------------------------------- */

struct fl_swap *group_swap_dev(struct fl_group *g)
{
	for (; g; g = g->parent) {
		struct fl_swap *dev =
			__atomic_load_n(&g->swap, __ATOMIC_ACQUIRE);

		if (dev)
			return dev;
	}
	return NULL;
}

int swap_try_charge(struct fl_group *g, uint64_t n)
{
	for (struct fl_group *it = g; it; it = it->parent) {
		uint64_t usage = atomic_load(&it->swap_usage);

		do {
			if (usage + n > atomic_load(&it->swap_max)) {
				for (struct fl_group *u = g; u != it;
				     u = u->parent)
					atomic_fetch_sub(&u->swap_usage, n);
				return -1;
			}
		} while (!atomic_compare_exchange_weak(&it->swap_usage, &usage,
						       usage + n));
	}
	return 0;
}

void swap_uncharge(struct fl_group *g, uint64_t n)
{
	for (; g; g = g->parent)
		atomic_fetch_sub(&g->swap_usage, n);
}

int fl_group_set_swap(fl_group *g, fl_swap *swap)
{
	if (!g || (swap && swap->engine != g->engine)) {
		errno = EINVAL;
		return -1;
	}
	__atomic_store_n(&g->swap, swap, __ATOMIC_RELEASE);
	return 0;
}

int fl_group_set_swap_max(fl_group *g, uint64_t bytes)
{
	if (!g) {
		errno = EINVAL;
		return -1;
	}
	atomic_store(&g->swap_max, bytes == FL_GROUP_UNLIMITED
					   ? UINT64_MAX
					   : bytes >> PAGE_SHIFT);
	return 0;
}

int fl_swap_stats(fl_swap *dev, struct fl_swap_stats *st)
{
	if (!dev || !st) {
		errno = EINVAL;
		return -1;
	}
	*st = (struct fl_swap_stats){
		.slots = dev->nr_slots,
		.slots_used = atomic_load(&dev->slots_used),
		.pages_written = atomic_load(&dev->pages_written),
		.pages_read = atomic_load(&dev->pages_read),
		.bytes_stored = atomic_load(&dev->bytes_stored),
		.write_errors = atomic_load(&dev->write_errors),
		.read_errors = atomic_load(&dev->read_errors),
		.cache_pages =
			dev->engine
				? atomic_load(&dev->engine->swap.cache_pages)
				: 0,
	};
	return 0;
}

/* ---- entries ------------------------------------------------------------ */

#define ENTRY_DEV_SHIFT	 4
#define ENTRY_SLOT_SHIFT 9

uint64_t swap_entry(const struct fl_swap *dev, uint64_t slot)
{
	return PTE_SWAP | (uint64_t)dev->id << ENTRY_DEV_SHIFT |
	       slot << ENTRY_SLOT_SHIFT;
}

struct fl_swap *swap_entry_dev(struct fl_engine *e, uint64_t entry)
{
	unsigned id = (entry >> ENTRY_DEV_SHIFT) & (SWAP_MAX_DEVICES - 1);

	/* Devices are only added (under the lock, the slot before the
	 * count): no lock needed to read one an entry names. */
	return id < __atomic_load_n(&e->swap.nr_devs, __ATOMIC_ACQUIRE)
		       ? e->swap.devs[id]
		       : NULL;
}

uint64_t swap_entry_slot(uint64_t entry)
{
	return (entry & ~(PTE_SLOT | PTE_REFAULTED)) >> ENTRY_SLOT_SHIFT;
}

uint64_t swap_entry_kept(uint64_t entry)
{
	return (entry & ~(PTE_STATE_MASK | PTE_CLEAN_DROP)) | PTE_PRIVATE |
	       PTE_REFERENCED | PTE_SLOT |
	       (entry & PTE_CLEAN_DROP ? PTE_REFAULTED : 0);
}

uint64_t swap_entry_of_kept(uint64_t kept)
{
	return (kept &
		~(PTE_STATE_MASK | PTE_REFERENCED | PTE_SLOT | PTE_REFAULTED)) |
	       PTE_SWAP | PTE_CLEAN_DROP;
}

int swap_entry_is(uint64_t entry, const struct fl_swap *dev, uint64_t slot)
{
	return (entry & ~PTE_CLEAN_DROP) == swap_entry(dev, slot);
}

int swap_may_keep_slot(const struct fl_swap *dev, const struct fl_group *g)
{
	if (atomic_load(&dev->slots_used) > dev->nr_slots / 2)
		return 0;
	for (; g; g = g->parent)
		if (atomic_load(&g->swap_usage) > atomic_load(&g->swap_max) / 2)
			return 0;
	return 1;
}

/* ---- the swap cache ----------------------------------------------------- */

static unsigned bucket_of(const struct fl_swap *dev, uint64_t slot)
{
	uint64_t h = (slot * 32 + dev->id) * 0x9E3779B97F4A7C15ull;

	return (unsigned)(h >> 40) % SWAP_CACHE_BUCKETS;
}

/* Under the cache lock. */
static struct swap_page *cache_lookup(struct fl_engine *e,
				      const struct fl_swap *dev, uint64_t slot)
{
	for (struct swap_page *sp = e->swap.cache[bucket_of(dev, slot)]; sp;
	     sp = sp->next)
		if (sp->dev == dev && sp->slot == slot)
			return sp;
	return NULL;
}

struct swap_page *swap_cache_find(struct fl_engine *e, struct fl_swap *dev,
				  uint64_t slot)
{
	struct swap_page *sp;

	pthread_mutex_lock(&e->swap.lock);
	sp = cache_lookup(e, dev, slot);
	pthread_mutex_unlock(&e->swap.lock);
	return sp;
}

struct swap_page *swap_cache_get(struct fl_engine *e, struct fl_swap *dev,
				 uint64_t slot)
{
	struct swap_page *sp;

	pthread_mutex_lock(&e->swap.lock);
	sp = cache_lookup(e, dev, slot);
	if (sp)
		page_get(&sp->page);
	pthread_mutex_unlock(&e->swap.lock);
	return sp;
}

struct swap_page *swap_page_new(struct fl_swap *dev, uint64_t slot)
{
	struct swap_page *sp = aligned_alloc(PAGE_SIZE, sizeof(*sp));

	if (!sp)
		return NULL;
	memset(sp, 0, offsetof(struct swap_page, data));
	atomic_init(&sp->page.flags, PG_LOCKED);
	atomic_init(&sp->page.refcount, 1); /* the cache's, once inserted */
	sp->page.index = slot;
	sp->dev = dev;
	sp->slot = slot;
	return sp;
}

void swap_cache_insert(struct fl_engine *e, struct swap_page *sp)
{
	unsigned b = bucket_of(sp->dev, sp->slot);

	pthread_mutex_lock(&e->swap.lock);
	sp->next = e->swap.cache[b];
	e->swap.cache[b] = sp;
	atomic_fetch_add(&e->swap.cache_pages, 1);
	pthread_mutex_unlock(&e->swap.lock);
}

/* Under the cache lock. */
static void cache_unlink(struct fl_engine *e, struct swap_page *sp)
{
	struct swap_page **pp = &e->swap.cache[bucket_of(sp->dev, sp->slot)];

	while (*pp && *pp != sp)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = sp->next;
		atomic_fetch_sub(&e->swap.cache_pages, 1);
	}
	sp->next = NULL;
}

void swap_cache_remove(struct fl_engine *e, struct swap_page *sp)
{
	pthread_mutex_lock(&e->swap.lock);
	cache_unlink(e, sp);
	pthread_mutex_unlock(&e->swap.lock);
}

void swap_page_release(struct swap_page *sp)
{
	struct fl_engine *e = sp->dev->engine;
	int free_slot;

	if (sp->charged) {
		struct fl_group *g = sp->charged;

		sp->charged = NULL;
		group_uncharge(g, 1);
	}
	/* An orphaned slot still being written is the writer's to free
	 * (swap_cache_write_done), once its write is over: freed now, it
	 * could be handed out and written again under the old write.  The
	 * writer decides under the same lock, so exactly one frees it. */
	pthread_mutex_lock(&e->swap.lock);
	free_slot = sp->orphan && !page_test(&sp->page, PG_WRITEBACK);
	if (free_slot)
		sp->orphan = 0;
	pthread_mutex_unlock(&e->swap.lock);
	if (free_slot)
		sp->dev->ops->free(sp->dev, sp->slot, 1);
	page_put(&sp->page);
}

/* Whether the cache may let sp go now: nobody holds or waits for it, its
 * I/O is done, and its data is not the only copy an entry still needs.
 * Under the cache lock. */
static int cache_may_drop(const struct swap_page *sp)
{
	uint32_t fl = atomic_load(&sp->page.flags);

	return atomic_load(&sp->page.refcount) == 1 &&
	       !(fl & (PG_LOCKED | PG_WRITEBACK)) &&
	       (sp->orphan || !sp->write_failed);
}

int swap_cache_write_done(struct fl_engine *e, struct swap_page *sp, int ok)
{
	int in_cache, drop, free_slot;

	pagetable_lock(&e->pagetable);
	pthread_mutex_lock(&e->swap.lock);
	in_cache = cache_lookup(e, sp->dev, sp->slot) == sp;
	if (!ok)
		sp->write_failed = 1;
	page_test_and_clear(&sp->page, PG_WRITEBACK);
	/* The cache's reference and ours: nobody else wants it. */
	drop = in_cache && atomic_load(&sp->page.refcount) == 2 &&
	       (ok || sp->orphan);
	if (drop)
		cache_unlink(e, sp);
	/* A fault installed it meanwhile and left us the slot. */
	free_slot = !drop && !in_cache && sp->orphan;
	if (free_slot)
		sp->orphan = 0;
	pthread_mutex_unlock(&e->swap.lock);
	pagetable_unlock(&e->pagetable);
	if (drop) {
		swap_page_release(sp);
	} else if (free_slot) {
		sp->dev->ops->free(sp->dev, sp->slot, 1);
	}
	page_put(&sp->page);
	return drop;
}

void swap_entry_dropped(struct fl_engine *e, uint64_t entry)
{
	struct fl_swap *dev = swap_entry_dev(e, entry);
	uint64_t slot = swap_entry_slot(entry);
	struct swap_page *sp;

	if (!dev)
		return;
	pthread_mutex_lock(&e->swap.lock);
	sp = cache_lookup(e, dev, slot);
	if (sp) {
		sp->orphan = 1;
		if (cache_may_drop(sp))
			cache_unlink(e, sp);
		else
			sp = NULL; /* in use: left for reclaim */
	} else {
		dev->ops->free(dev, slot, 1);
	}
	pthread_mutex_unlock(&e->swap.lock);
	if (sp)
		swap_page_release(sp);
}

uint64_t swap_cache_sweep(struct fl_engine *e)
{
	struct swap_page *gone = NULL;
	uint64_t freed = 0;

	if (!atomic_load(&e->swap.cache_pages))
		return 0;
	pagetable_lock(&e->pagetable);
	pthread_mutex_lock(&e->swap.lock);
	for (unsigned b = 0; b < SWAP_CACHE_BUCKETS; b++) {
		for (struct swap_page **pp = &e->swap.cache[b]; *pp;) {
			struct swap_page *sp = *pp;

			if (!cache_may_drop(sp)) {
				pp = &sp->next;
				continue;
			}
			*pp = sp->next;
			atomic_fetch_sub(&e->swap.cache_pages, 1);
			sp->next = gone;
			gone = sp;
		}
	}
	pthread_mutex_unlock(&e->swap.lock);
	pagetable_unlock(&e->pagetable);
	while (gone) {
		struct swap_page *sp = gone;

		gone = sp->next;
		freed += sp->charged != NULL;
		swap_page_release(sp);
	}
	return freed;
}
