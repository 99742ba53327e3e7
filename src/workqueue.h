/* SPDX-License-Identifier: MIT */
/*
 * Deferred work for the handler threads: work that no faulting thread has
 * to wait for (asynchronous readahead) is queued here, and a handler thread
 * with no fault to serve takes it.
 */
#ifndef FL_WORKQUEUE_H
#define FL_WORKQUEUE_H

#include <pthread.h>
#include <stdint.h>

struct fl_engine;
struct fl_object;

struct work {
	void (*fn)(struct fl_engine *engine, struct work *work);
	struct fl_object *object; /* with a reference, or NULL */
	uint64_t index, count;
	uintptr_t addr; /* where the mapping that asked showed index */
	struct work *next;
};

struct workqueue {
	pthread_mutex_t lock;
	struct work *head, *tail;
	int fd; /* eventfd in semaphore mode: one count per queued item */
};

int workqueue_init(struct workqueue *wq);
/* Drop what was never run; fn_cancel releases each item's resources. */
void workqueue_destroy(struct workqueue *wq, void (*cancel)(struct work *work));
/* Queue an item (allocated by the caller with malloc; the queue owns it). */
void workqueue_post(struct workqueue *wq, struct work *work);
/* Take one item once poll saw wq->fd readable; NULL if another took it. */
struct work *workqueue_take(struct workqueue *wq);

#endif /* FL_WORKQUEUE_H */
