/* SPDX-License-Identifier: MIT */
/*
 * Deferred work for the handler threads: work that no faulting thread has
 * to wait for (asynchronous readahead) is queued here, and a handler thread
 * with no fault to serve takes it.
 */
#ifndef FL_WORKQUEUE_H
#define FL_WORKQUEUE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "debug.h"

struct fl_engine;
struct fl_object;

/*
 * A work item.  fn runs it and then owns it (frees it, or hands it on);
 * cancel releases it if the engine goes before it runs.
 */
struct work {
	void (*fn)(struct fl_engine *engine, struct work *work);
	void (*cancel)(struct work *work);
	struct fl_object *object; /* with a reference, or NULL */
	uint64_t index, count;
	uint64_t must_have; /* a fault's read: the page it needs */
	uint64_t reader;    /* a readahead window: where its reader was */
	uintptr_t addr;	    /* where the mapping that asked showed index */
	void *arg;
	struct work *next;
	int queued_here; /* on a workqueue now: kept by debug builds only */
};

#ifdef FL_DEBUG
#define work_is_queued(w) ((w)->queued_here)
#else
#define work_is_queued(w) 0
#endif

struct workqueue {
	pthread_mutex_t lock;
	struct work *head, *tail;
	_Atomic unsigned long queued; /* items waiting to be taken */
	int fd; /* eventfd in semaphore mode: one count per queued item */
};

int workqueue_init(struct workqueue *wq);
/* Release what never ran, with each item's cancel. */
void workqueue_destroy(struct workqueue *wq);
/* Queue an item. */
void workqueue_post(struct workqueue *wq, struct work *work);
/* Take one item once poll saw wq->fd readable; NULL if another took it. */
struct work *workqueue_take(struct workqueue *wq);

#endif /* FL_WORKQUEUE_H */
