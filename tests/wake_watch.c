// SPDX-License-Identifier: MIT
/* Watching wake-ups: see wake_watch.h. */
#include "wake_watch.h"

#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#include "harness.h"

static void watch_wakes(void *arg, unsigned long request, unsigned long call)
{
	struct wake_watch *w = arg;
	const struct uffdio_range *r = NULL;

	if (request == UFFDIO_WAKE)
		r = (const struct uffdio_range *)call;
	else if (request == UFFDIO_CONTINUE &&
		 !(((const struct uffdio_continue *)call)->mode &
		   UFFDIO_CONTINUE_MODE_DONTWAKE))
		r = &((const struct uffdio_continue *)call)->range;
	if (r && w->hole >= r->start && w->hole < r->start + r->len)
		atomic_fetch_or(&w->woken, WOKE_HOLE);
	if (r && w->mapped >= r->start && w->mapped < r->start + r->len)
		atomic_fetch_or(&w->woken, WOKE_MAPPED);
}

void wake_watch_start(struct wake_watch *w, const void *hole,
		      const void *mapped)
{
	w->watch.fn = watch_wakes;
	w->watch.arg = w;
	w->hole = (uintptr_t)hole;
	w->mapped = (uintptr_t)mapped;
	atomic_init(&w->woken, 0);
	inject_watch_ioctl(&w->watch);
}

static int mapped_woken(void *arg)
{
	struct wake_watch *w = arg;

	return atomic_load(&w->woken) & WOKE_MAPPED;
}

int wake_watch_end(struct wake_watch *w)
{
	h_wait_until(mapped_woken, w);
	inject_watch_ioctl(NULL);
	return atomic_load(&w->woken);
}
