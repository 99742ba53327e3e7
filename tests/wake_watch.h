/* SPDX-License-Identifier: MIT */
/*
 * Watching wake-ups (test_retry.c, test_swap.c): whether the engine woke
 * the threads waiting at a page it has not mapped (a hole of a window),
 * and at one it has.  Every UFFDIO_WAKE, and every UFFDIO_CONTINUE that
 * wakes, is seen through inject_watch_ioctl.
 */
#ifndef FAULTLINE_TEST_WAKE_WATCH_H
#define FAULTLINE_TEST_WAKE_WATCH_H

#include <stdatomic.h>
#include <stdint.h>

#include "inject.h"

enum { WOKE_HOLE = 1, WOKE_MAPPED = 2 };

struct wake_watch {
	struct inject_ioctl_watch watch;
	uintptr_t hole;	   /* a page that is not mapped while watched */
	uintptr_t mapped;  /* a page the watched access maps */
	_Atomic int woken; /* WOKE_ bits */
};

/* Watch the wakes of the pages at hole and mapped, from now. */
void wake_watch_start(struct wake_watch *w, const void *hole,
		      const void *mapped);
/*
 * Wait (bounded) until the mapped page's waiters were woken: a handler
 * preempted between two wakes may issue it after the faulting thread
 * returned.  Then stop watching; returns the WOKE_ bits.  *w must live on
 * until the engine is destroyed (inject_watch_ioctl).
 */
int wake_watch_end(struct wake_watch *w);

#endif /* FAULTLINE_TEST_WAKE_WATCH_H */
