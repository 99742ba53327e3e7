/* SPDX-License-Identifier: MIT */
/*
 * How a writer is throttled: a fault about to dirty a page of a group
 * above its throttling threshold parks (no map lock, no page lock, no
 * thread) for a short pause held by the flusher (flusher.h), then is
 * retried on an I/O thread; the retry is not paused again.
 */
#include "engine.h"
#include "fault_priv.h"
#include "flusher.h"

#define fault_of(ptr, member)                                                  \
	((struct fault *)((char *)(ptr)-offsetof(struct fault, member)))

static void fault_throttle_resume(struct fl_engine *e, struct work *w)
{
	(void)e;
	fault_resume(fault_of(w, work)); /* f may be gone after this */
}

static void fault_throttle_cancel(struct work *w)
{
	fault_cancel(fault_of(w, work));
}

enum fault_result fault_throttle(struct fault *f, struct fl_group *g,
				 uint64_t pause_ns)
{
	f->throttled = 1;
	fault_unlock(f);
	f->work = (struct work){.fn = fault_throttle_resume,
				.cancel = fault_throttle_cancel};
	flusher_throttle(f->e, g, &f->work, pause_ns);
	return FAULT_PARKED;
}
