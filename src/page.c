/* SPDX-License-Identifier: MIT */
/* Page descriptors: allocation, references, the page lock and waits. */
#include "page.h"

#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

struct fl_page *page_alloc(void)
{
	struct fl_page *page = malloc(sizeof(*page));

	if (!page)
		return NULL;
	atomic_init(&page->flags, 0);
	atomic_init(&page->refcount, 1);
	atomic_init(&page->cleaned_batch, 0);
	return page;
}

void page_put(struct fl_page *page)
{
	if (atomic_fetch_sub(&page->refcount, 1) == 1)
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

void page_clear_and_wake(struct fl_page *page, uint32_t flag)
{
	uint32_t old = atomic_fetch_and(&page->flags, ~(flag | PG_WAITERS));

	/* Waiters re-announce themselves if they must sleep again. */
	if (old & PG_WAITERS)
		futex_wake_all(&page->flags);
}

void page_lock(struct fl_page *page)
{
	while (!page_trylock(page))
		page_wait_clear(page, PG_LOCKED);
}
