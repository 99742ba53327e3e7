/* SPDX-License-Identifier: MIT */
/*
 * The engine's threads.  Handler threads read fault messages from the
 * userfaultfd and serve them, and run the completions of asynchronous
 * store reads (aio.c), resuming the faults that waited for them; I/O
 * threads run the work that may block (synchronous store reads of parked
 * faults, readahead, reclaim), and their pool grows
 * while every one of them is busy, so that a stalled store never stalls
 * the engine.  Every thread runs with all signals blocked: signals are the
 * program's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "aio.h"
#include "engine.h"
#include "fault.h"

#define MSGS_PER_READ 16

/*
 * A handler thread's fault records.  Each message is served in a record
 * allocated before the message was read, so that a fault never needs an
 * allocation to wait: a fault that parks keeps its record (and frees it
 * when done), and the handler allocates another before it reads again.
 * Without memory for any record, the handler reads nothing until it has
 * one: the faults stay queued in the kernel, nothing is held.
 */
struct fault_reserve {
	struct fault *rec[MSGS_PER_READ];
	unsigned nr;
};

/* Refill the reserve; returns how many records it has. */
static unsigned reserve_fill(struct fault_reserve *r)
{
	while (r->nr < MSGS_PER_READ) {
		struct fault *f = fault_alloc();

		if (!f)
			break;
		r->rec[r->nr++] = f;
	}
	return r->nr;
}

static void reserve_free(struct fault_reserve *r)
{
	while (r->nr)
		fault_free(r->rec[--r->nr]);
}

/* Serve the messages read; a record that parked is gone from r. */
static void serve_messages(struct fl_engine *e, struct fault_reserve *r,
			   const struct uffd_msg *msgs, size_t n)
{
	uint64_t batch = atomic_fetch_add(&e->msg_batches, 1) + 1;

	for (size_t i = 0; i < n; i++) {
		if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
			continue; /* reading it was all it needed */
		if (fault_handle(e, &msgs[i], batch, r->rec[r->nr - 1]))
			r->nr--; /* parked: the fault owns the record now */
	}
}

static void *handler_main(void *arg)
{
	struct fl_engine *e = arg;
	/* Store reads complete on the thread that polls their eventfd. */
	struct pollfd pfd[3] = {{.fd = e->uffd, .events = POLLIN},
				{.fd = e->stop_fd, .events = POLLIN},
				{.fd = aio_fd(e), .events = POLLIN}};
	struct uffd_msg msgs[MSGS_PER_READ];
	struct fault_reserve reserve = {.nr = 0};

	for (;;) {
		unsigned have = reserve_fill(&reserve);
		ssize_t n;

		/* Without a record, wait for memory rather than read. */
		if (poll(pfd, 3, have ? -1 : 1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		if (pfd[2].revents & POLLIN)
			aio_reap(e);
		if (!have || !(pfd[0].revents & POLLIN))
			continue;
		n = read(e->uffd, msgs, have * sizeof(msgs[0]));
		if (n < 0)
			continue; /* EAGAIN: another handler took them */
		serve_messages(e, &reserve, msgs, (size_t)n / sizeof(msgs[0]));
	}
	reserve_free(&reserve);
	return NULL;
}

/* I/O threads run store reads (for parked faults, and readahead). */
static void *io_main(void *arg)
{
	struct fl_engine *e = arg;
	struct pollfd pfd[2] = {{.fd = e->work.fd, .events = POLLIN},
				{.fd = e->stop_fd, .events = POLLIN}};

	for (;;) {
		struct work *w;

		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		/* Busy before taking: busy + queued never dips below the
		 * work there is, or the pool could fail to grow. */
		atomic_fetch_add(&e->io_busy, 1);
		w = workqueue_take(&e->work);
		if (w) {
			fl_assert_may_block();
			w->fn(e, w); /* owns w from here */
			fl_assert_may_block();
		}
		atomic_fetch_sub(&e->io_busy, 1);
	}
	return NULL;
}

/* Start one thread, with every signal blocked: they are the program's. */
static int engine_spawn(struct fl_engine *e, void *(*fn)(void *))
{
	sigset_t all, old;
	int rc;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&e->threads[e->nr_threads], NULL, fn, e);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		errno = rc;
		return -1;
	}
	e->nr_threads++;
	return 0;
}

/* More work queued or running than I/O threads to run it. */
static int io_short(struct fl_engine *e)
{
	return atomic_load(&e->io_busy) + atomic_load(&e->work.queued) >
	       atomic_load(&e->nr_io);
}

void threads_post_work(struct fl_engine *e, struct work *w)
{
	workqueue_post(&e->work, w);
	/* A stalled store must not stall the engine: grow while short.  If
	 * a thread cannot be started, the work waits for a running one. */
	if (!io_short(e))
		return;
	pthread_mutex_lock(&e->threads_lock);
	if (!e->stopping && io_short(e) &&
	    atomic_load(&e->nr_io) < MAX_IO_THREADS &&
	    engine_spawn(e, io_main) == 0)
		atomic_fetch_add(&e->nr_io, 1);
	pthread_mutex_unlock(&e->threads_lock);
}

int threads_start(struct fl_engine *e)
{
	unsigned most = e->config.handler_threads + MAX_IO_THREADS;
	int rc = 0;

	e->threads = calloc(most, sizeof(*e->threads));
	if (!e->threads)
		return -1;
	pthread_mutex_lock(&e->threads_lock);
	while (!rc && e->nr_threads < e->config.handler_threads)
		rc = engine_spawn(e, handler_main);
	while (!rc && atomic_load(&e->nr_io) < e->config.io_threads &&
	       !(rc = engine_spawn(e, io_main)))
		atomic_fetch_add(&e->nr_io, 1);
	pthread_mutex_unlock(&e->threads_lock);
	return rc;
}

void threads_stop(struct fl_engine *e)
{
	uint64_t one = 1;
	unsigned n;

	pthread_mutex_lock(&e->threads_lock);
	e->stopping = 1; /* from here, nr_threads cannot grow */
	n = e->nr_threads;
	pthread_mutex_unlock(&e->threads_lock);
	if (n && write(e->stop_fd, &one, sizeof(one)) < 0)
		abort(); /* an eventfd write of 1 cannot fail */
	for (unsigned i = 0; i < n; i++)
		pthread_join(e->threads[i], NULL);
	e->nr_threads = 0;
	atomic_store(&e->nr_io, 0);
	free(e->threads);
	e->threads = NULL;
}
