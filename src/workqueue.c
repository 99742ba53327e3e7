/* SPDX-License-Identifier: MIT */
/* Deferred work for the handler threads; see workqueue.h. */
#include "workqueue.h"

#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#ifdef FL_DEBUG
#define work_set_queued(w, on) ((w)->queued_here = (on))
#else
#define work_set_queued(w, on) ((void)(w))
#endif

int workqueue_init(struct workqueue *wq)
{
	pthread_mutex_init(&wq->lock, NULL);
	wq->head = wq->tail = NULL;
	atomic_init(&wq->queued, 0);
	wq->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);
	if (wq->fd < 0) {
		pthread_mutex_destroy(&wq->lock);
		return -1;
	}
	return 0;
}

void workqueue_destroy(struct workqueue *wq)
{
	if (wq->fd < 0)
		return; /* never made, or destroyed already */
	/* A cancel may queue more work (a fault it wakes): pop each item
	 * under the lock, then cancel it, until none is left. */
	for (;;) {
		struct work *w;

		pthread_mutex_lock(&wq->lock);
		w = wq->head;
		if (w) {
			wq->head = w->next;
			if (!wq->head)
				wq->tail = NULL;
			atomic_fetch_sub(&wq->queued, 1);
			work_set_queued(w, 0);
		}
		pthread_mutex_unlock(&wq->lock);
		if (!w)
			break;
		w->cancel(w);
	}
	close(wq->fd);
	wq->fd = -1;
	pthread_mutex_destroy(&wq->lock);
}

void workqueue_post(struct workqueue *wq, struct work *w)
{
	uint64_t one = 1;

	fl_assert(!work_is_queued(w)); /* one item, posted twice */
	w->next = NULL;
	pthread_mutex_lock(&wq->lock);
	work_set_queued(w, 1);
	if (wq->tail)
		wq->tail->next = w;
	else
		wq->head = w;
	wq->tail = w;
	atomic_fetch_add(&wq->queued, 1);
	pthread_mutex_unlock(&wq->lock);
	if (write(wq->fd, &one, sizeof(one)) != sizeof(one))
		abort(); /* cannot overflow: one count per item */
}

struct work *workqueue_take(struct workqueue *wq)
{
	uint64_t count;
	struct work *w;

	/* The semaphore read claims exactly one item, or fails. */
	if (read(wq->fd, &count, sizeof(count)) != sizeof(count))
		return NULL;
	pthread_mutex_lock(&wq->lock);
	w = wq->head;
	if (w) {
		wq->head = w->next;
		if (!wq->head)
			wq->tail = NULL;
		atomic_fetch_sub(&wq->queued, 1);
		work_set_queued(w, 0);
	}
	pthread_mutex_unlock(&wq->lock);
	return w;
}
