/* SPDX-License-Identifier: MIT */
/* Page descriptors: allocation, references, the page lock and waits. */
#include "page.h"
#include "group.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

struct fl_page *page_alloc(struct fl_object *object, uint64_t index,
			   struct fl_group *group)
{
	struct fl_page *page = calloc(1, sizeof(*page));

	if (!page)
		return NULL;
	atomic_init(&page->flags, 0);
	atomic_init(&page->refcount, 1);
	atomic_init(&page->cleaned_batch, 0);
	page->lifted_batch = 0;
	page->lifted_addr = 0;
	page->object = object;
	page->index = index;
	page->group = group;
	if (group)
		atomic_fetch_add(&group->cache_pages, 1);
	return page;
}

/* The last reference: the page is freed, and uncharged (one step). */
void page_put(struct fl_page *page)
{
	if (atomic_fetch_sub(&page->refcount, 1) != 1)
		return;
	if (page->group) {
		atomic_fetch_sub(&page->group->cache_pages, 1);
		group_uncharge(page->group, 1);
	}
	free(page);
}

static void futex_wait(_Atomic uint32_t *word, uint32_t expected)
{
	syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *word)
{
	syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

void page_wait_clear(struct fl_page *page, uint32_t flag)
{
	for (;;) {
		uint32_t flags = atomic_load(&page->flags);

		if (!(flags & flag))
			return;
		/* Announce ourselves, then sleep unless the word changed. */
		if (!(flags & PG_WAITERS) &&
		    !atomic_compare_exchange_strong(&page->flags, &flags,
						    flags | PG_WAITERS))
			continue;
		futex_wait(&page->flags, flags | PG_WAITERS);
	}
}

/* Parked waiters, hashed by page: few, short lists. */
#define PARK_BUCKETS 256

static struct park_bucket {
	pthread_mutex_t lock;
	struct page_waiter *head;
} park_table[PARK_BUCKETS];

static pthread_once_t park_once = PTHREAD_ONCE_INIT;

static void park_table_init(void)
{
	for (int i = 0; i < PARK_BUCKETS; i++)
		pthread_mutex_init(&park_table[i].lock, NULL);
}

static struct park_bucket *park_bucket(const struct fl_page *page)
{
	uintptr_t h = (uintptr_t)page;

	pthread_once(&park_once, park_table_init);
	h ^= h >> 17;
	return &park_table[(h * 0x9E3779B97F4A7C15ull >> 40) % PARK_BUCKETS];
}

int page_park(struct fl_page *page, uint32_t flag, struct page_waiter *w)
{
	struct park_bucket *b = park_bucket(page);

	pthread_mutex_lock(&b->lock);
	/*
	 * Announce, then look: a clearer either saw no PG_PARKED and cleared
	 * the flag first (we see it clear), or sees PG_PARKED and takes
	 * b->lock after us (and finds us on the list).
	 */
	atomic_fetch_or(&page->flags, PG_PARKED);
	if (!page_test(page, flag)) {
		pthread_mutex_unlock(&b->lock);
		return -1;
	}
	waiter_move(w, WAITER_IDLE, WAITER_PARKED);
	w->page = page;
	w->next = b->head;
	b->head = w;
	pthread_mutex_unlock(&b->lock);
	return 0;
}

/* Hand on every waiter parked on page (they look again themselves). */
static void page_wake_parked(struct fl_page *page)
{
	struct park_bucket *b = park_bucket(page);
	struct page_waiter *woken = NULL, **pp;

	pthread_mutex_lock(&b->lock);
	for (pp = &b->head; *pp;) {
		struct page_waiter *w = *pp;

		if (w->page == page) {
			*pp = w->next;
			waiter_move(w, WAITER_PARKED, WAITER_TAKEN);
			w->next = woken;
			woken = w;
		} else {
			pp = &w->next;
		}
	}
	pthread_mutex_unlock(&b->lock);
	while (woken) {
		struct page_waiter *w = woken;

		woken = w->next;
		waiter_move(w, WAITER_TAKEN, WAITER_IDLE);
		w->wake(w);
	}
}

void page_clear_and_wake(struct fl_page *page, uint32_t flag)
{
	uint32_t old = atomic_fetch_and(&page->flags,
					~(flag | PG_WAITERS | PG_PARKED));

	/* Waiters re-announce themselves if they must wait again. */
	if (old & PG_WAITERS)
		futex_wake_all(&page->flags);
	if (old & PG_PARKED)
		page_wake_parked(page);
}

void page_lock(struct fl_page *page)
{
	while (!page_trylock(page))
		page_wait_clear(page, PG_LOCKED);
}
