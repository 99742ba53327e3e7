/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous store I/O (see aio.h): submission, the engine's completion
 * queue and eventfd, the engine's io_uring (where built with liburing and
 * the kernel allows it), and what a read's completion does with the data
 * (a write's is writeback.c's).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#ifdef FL_HAVE_LIBURING
#include <liburing.h>
#endif

#include "aio.h"
#include "engine.h"
#include "object.h"

/*
 * ThreadSanitizer cannot see the kernel hand a request from the thread that
 * submitted it to the ring to the thread that reaps its completion (its
 * fields written before, read and freed after): say so where it looks.
 */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define __SANITIZE_THREAD__ 1
#endif
#endif
#ifdef __SANITIZE_THREAD__
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define hand_over(p)  __tsan_release(p)
#define taken_over(p) __tsan_acquire(p)
#else
#define hand_over(p)  ((void)(p))
#define taken_over(p) ((void)(p))
#endif

#define RING_ENTRIES 256
#define REAP_BATCH   32

struct aio {
	int fd; /* eventfd: completions are ready (ring or list) */
	pthread_mutex_t reap_lock; /* the thread reaping (see reap) */
	pthread_mutex_t done_lock;
	struct store_req *done;		 /* completed by stores, not yet run */
	_Atomic unsigned long in_flight; /* submitted, not yet run */
	pthread_mutex_t bounce_lock;
	void *bounce_free; /* spare bounce buffers, linked through their
			      first word */
	unsigned bounce_nr_free;
#ifdef FL_HAVE_LIBURING
	int have_ring;
	struct io_uring ring;
	pthread_mutex_t sq_lock; /* one submitter at a time */
	/* SQEs may be queued, not submitted: set under sq_lock (sq_note),
	 * read unlocked by reap_ring. */
	_Atomic int sq_queued;
	pthread_mutex_t cq_lock; /* one reaper at a time */
#endif
	/* aio_complete_here: completions running on stores' threads, and
	 * whether they may (cleared by aio_stop_here). */
	_Atomic unsigned here_running;
	_Atomic int here_stopped;
};

static struct store_req *req_of(struct fl_store_io *io)
{
	return (struct store_req *)((char *)io -
				    offsetof(struct store_req, io));
}

/* FAULTLINE_IO_URING=0 turns the ring off (the thread path serves). */
static int ring_wanted(void)
{
	const char *s = getenv("FAULTLINE_IO_URING");

	return !s || strcmp(s, "0") != 0;
}

#ifdef FL_HAVE_LIBURING
/*
 * A read's completion reaches the ring as task work of the thread that
 * submitted it (a handler, mostly), and by default an IPI makes a running
 * submitter take it at once.  The submitters poll (a system call a look)
 * or sleep, interruptibly, so IORING_SETUP_COOP_TASKRUN (no IPI: a sleeper
 * is still woken, a runner takes it at its next kernel entry, a tick at
 * worst) loses no time there and saves the IPI, dear in a VM: with local
 * polling, a random read's completion reached its faulting thread 4-8
 * microseconds sooner on average (ftrace, 1,500 reads; docs/design.md).
 * Linux 5.19 and later; an older kernel refuses the flag.
 */
static int ring_setup(struct io_uring *ring)
{
	if (io_uring_queue_init(RING_ENTRIES, ring,
				IORING_SETUP_COOP_TASKRUN) == 0)
		return 0;
	return io_uring_queue_init(RING_ENTRIES, ring, 0);
}
#endif

static void ring_init(struct aio *a)
{
#ifdef FL_HAVE_LIBURING
	/* An old kernel or a seccomp filter refuses: the thread path. */
	if (!ring_wanted() || ring_setup(&a->ring))
		return;
	if (io_uring_register_eventfd(&a->ring, a->fd)) {
		io_uring_queue_exit(&a->ring);
		return;
	}
	pthread_mutex_init(&a->sq_lock, NULL);
	pthread_mutex_init(&a->cq_lock, NULL);
	a->have_ring = 1;
#else
	(void)a;
	(void)ring_wanted;
#endif
}

int aio_init(struct fl_engine *e)
{
	struct aio *a = calloc(1, sizeof(*a));

	if (!a)
		return -1;
	a->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (a->fd < 0) {
		free(a);
		return -1;
	}
	pthread_mutex_init(&a->done_lock, NULL);
	pthread_mutex_init(&a->reap_lock, NULL);
	pthread_mutex_init(&a->bounce_lock, NULL);
	ring_init(a);
	e->aio = a;
	return 0;
}

void aio_destroy(struct fl_engine *e)
{
	struct aio *a = e->aio;

	if (!a)
		return;
#ifdef FL_HAVE_LIBURING
	if (a->have_ring) {
		io_uring_queue_exit(&a->ring);
		pthread_mutex_destroy(&a->sq_lock);
		pthread_mutex_destroy(&a->cq_lock);
	}
#endif
	while (a->bounce_free) {
		void *b = a->bounce_free;

		a->bounce_free = *(void **)b;
		free(b);
	}
	pthread_mutex_destroy(&a->bounce_lock);
	pthread_mutex_destroy(&a->done_lock);
	pthread_mutex_destroy(&a->reap_lock);
	close(a->fd);
	free(a);
	e->aio = NULL;
}

int aio_has_ring(const struct fl_engine *e)
{
#ifdef FL_HAVE_LIBURING
	return e->aio && e->aio->have_ring;
#else
	(void)e;
	return 0;
#endif
}

int aio_fd(const struct fl_engine *e)
{
	return e->aio ? e->aio->fd : -1;
}

/* ---- submission ---------------------------------------------------------- */

/* Bytes req still has to move: a write stops at the object's end. */
static uint64_t req_left(const struct store_req *req)
{
	uint64_t off = req->index << PAGE_SHIFT;
	uint64_t len = (uint64_t)req->count << PAGE_SHIFT;

	if (req->write && off + len > req->o->size)
		len = req->o->size > off ? req->o->size - off : 0;
	return len - req->done;
}

/* Requests the calling thread put in the engine's ring (aio_ring_rw). */
static __thread unsigned long ring_started;

/* Hand req to store s, counted in flight; 0, or a negative errno (not
 * started: nobody will complete it, and the count is taken back). */
static int submit_one(struct store_req *req, struct fl_store *s)
{
	struct fl_store_io *ios[1] = {&req->io};
	unsigned long ring0 = ring_started;
	int n;

	atomic_fetch_add(&req->e->aio->in_flight, 1);
	errno = 0;
	n = s->ops->submit(s, ios, 1);
	if (ring_started == ring0) /* the store's own threads complete it */
		threads_note_handoff();
	if (n == 1)
		return 0; /* req may be completed (even freed) by now */
	atomic_fetch_sub(&req->e->aio->in_flight, 1);
	return n < 0 && errno ? -errno : -EOPNOTSUPP;
}

int aio_submit(struct store_req *req)
{
	struct fl_engine *e = req->e;
	struct fl_store *s = req->o->store;
	struct fl_object *o = req->o;
	int write = req->write;
	uint64_t at = (req->index << PAGE_SHIFT) + req->done, depth = 0;
	int err;

	req->io = (struct fl_store_io){
		.write = write,
		.buf = object_page_data(req->o, req->index) + req->done,
		.len = req_left(req),
		.off = at,
		/* buf as a file: the view maps the memfd from 0 */
		.buf_fd = write ? -1 : o->memfd,
		.buf_fd_off = at,
	};
	/*
	 * The queue depth this read joins: every store read in flight.  The
	 * read is counted before it is submitted: its completion may run (on
	 * another thread) before submit returns, and the pages it reads must
	 * never be seen counted before the read itself is.
	 */
	if (!write) {
		depth = store_read_enter(e);
		store_read_started(e, depth);
	}
	/* The store must outlive its submit call, which may complete req
	 * (dropping req's reference on the object) before it returns. */
	object_get(o);
	err = submit_one(req, s);
	if (err && !write) {
		store_read_unstarted(e, depth);
		store_read_leave(e);
	}
	object_put(o); /* if not started, req's reference remains */
	return err;
}

/*
 * Bounce buffers.  A ring read of a few pages would map them in the
 * engine's view, which must then be emptied again (object_view_drop): on
 * Linux 6.14 and later that zap also frees the view's emptied page
 * tables, so the next small reads allocate them again, and on a PVM guest
 * the whole-view zap took 1 to 2 ms (after every 256 random reads: about
 * 8 us a read, on the handler's path, traced).  So a read of up to
 * BOUNCE_BYTES into an object's memfd (buf_fd) goes to a spare buffer
 * instead, and its bytes are written into the memfd (pwrite, which makes
 * the cache page without mapping it anywhere) by the thread that reaps
 * it.  Larger reads (readahead windows) still go through the view, which
 * they empty of their own range at once.  Without a spare buffer and no
 * memory for one, a read goes through the view as before.
 */
#define BOUNCE_BYTES	(64u << 10)
#define BOUNCE_KEEP_MAX 16 /* spares kept: 1 MiB at most */

static void bounce_put(struct aio *a, void *b)
{
	pthread_mutex_lock(&a->bounce_lock);
	if (a->bounce_nr_free < BOUNCE_KEEP_MAX) {
		*(void **)b = a->bounce_free;
		a->bounce_free = b;
		a->bounce_nr_free++;
		b = NULL;
	}
	pthread_mutex_unlock(&a->bounce_lock);
	free(b);
}

#ifdef FL_HAVE_LIBURING
static void *bounce_get(struct aio *a)
{
	void *b;

	pthread_mutex_lock(&a->bounce_lock);
	b = a->bounce_free;
	if (b) {
		a->bounce_free = *(void **)b;
		a->bounce_nr_free--;
	}
	pthread_mutex_unlock(&a->bounce_lock);
	if (!b && posix_memalign(&b, 4096, BOUNCE_BYTES))
		b = NULL;
	return b;
}

/* Where a ring read of io goes: a bounce buffer (noted in its request),
 * or io->buf. */
static void *read_buffer(struct aio *a, struct fl_store_io *io)
{
	struct store_req *req = req_of(io);

	req->bounce = NULL;
	/* Only an object's reads: their completion lands the bytes. */
	if (req->o && io->buf_fd >= 0 && io->len <= BOUNCE_BYTES)
		req->bounce = bounce_get(a);
	/* Bounced so far, and this part too (a short read's rest may not). */
	req->bounced = req->bounce && (req->done == 0 || req->bounced);
	return req->bounce ? req->bounce : io->buf;
}

/* A read that was not started after all: its bounce buffer back. */
static void unbounce(struct aio *a, struct store_req *req)
{
	if (req->bounce)
		bounce_put(a, req->bounce);
	req->bounce = NULL;
	req->bounced = 0;
}

#endif

/* Write a completed bounced read's bytes into the memfd (a failure fails
 * the read), and give the buffer back.  Run by the reaper. */
static void bounce_land(struct store_req *req, int cancelled)
{
	void *b = req->bounce;
	ssize_t n;

	if (!b)
		return;
	req->bounce = NULL;
	if (req->result > 0 && !cancelled) {
		n = pwrite(req->io.buf_fd, b, (size_t)req->result,
			   (off_t)req->io.buf_fd_off);
		if (n != req->result)
			req->result = n < 0 ? -errno : -EIO;
	}
	bounce_put(req->e->aio, b);
}

#ifdef FL_HAVE_LIBURING
/* Requests one aio_ring_rw call starts at most. */
#define RING_RW_MAX 32

/* Under sq_lock: note whether SQEs are queued (see sq_queued). */
static void sq_note(struct aio *a)
{
	atomic_store_explicit(&a->sq_queued, io_uring_sq_ready(&a->ring) != 0,
			      memory_order_relaxed);
}

/* An SQE for the next request; under sq_lock.  A full queue is first
 * handed to the kernel (it may hold only stand-ins, see ring_take_back). */
static struct io_uring_sqe *ring_get_sqe(struct io_uring *ring)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (!sqe && io_uring_submit(ring) >= 0)
		sqe = io_uring_get_sqe(ring);
	return sqe;
}

/*
 * Under sq_lock, after a submit of the n SQEs queued from position tail0
 * on: how many of them the kernel took (a prefix: it takes them in order,
 * and stops early when the call fails or it cannot allocate).  Those it
 * did not take become NOPs that post nothing, so that no request is
 * started later, by whichever submit comes next, behind the back of a
 * caller told it was not started (and that nobody may be left to submit
 * it: a parked fault's read would wait forever).  The kernel reads SQEs
 * only in a submit, and every submit holds sq_lock.
 */
static unsigned ring_take_back(struct io_uring *ring,
			       struct io_uring_sqe **sqes, unsigned n,
			       unsigned tail0)
{
	int taken = (int)(IO_URING_READ_ONCE(*ring->sq.khead) - tail0);

	if (taken < 0)
		taken = 0;
	if (taken > (int)n)
		taken = (int)n;
	for (unsigned k = (unsigned)taken; k < n; k++) {
		io_uring_prep_nop(sqes[k]);
		io_uring_sqe_set_flags(sqes[k], IOSQE_CQE_SKIP_SUCCESS);
		io_uring_sqe_set_data(sqes[k], NULL);
	}
	return (unsigned)taken;
}
#endif

#ifdef FL_HAVE_LIBURING
/*
 * Under sq_lock, after a submit of plugged reads: the SQEs the kernel did
 * not take (the submit failed) would wait for whichever submit comes next,
 * and there may be none (the handlers asleep).  Their requests were told
 * started, so they cannot be taken back as ring_take_back does: each SQE
 * becomes a NOP that posts nothing and its request completes now with
 * -EAGAIN, marked unstarted (pagecache_read_complete starts it again).
 * Only reads are ever left queued (writes are submitted at once).
 */
static void ring_strand_fail(struct aio *a)
{
	struct io_uring_sq *sq = &a->ring.sq;
	unsigned head = IO_URING_READ_ONCE(*sq->khead);

	for (unsigned pos = head; pos != sq->sqe_tail; pos++) {
		struct io_uring_sqe *sqe = &sq->sqes[pos & sq->ring_mask];
		struct store_req *req =
			(struct store_req *)(uintptr_t)sqe->user_data;

		if (!req)
			continue; /* a stand-in already */
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_flags(sqe, IOSQE_CQE_SKIP_SUCCESS);
		io_uring_sqe_set_data(sqe, NULL);
		req->unstarted = 1;
		fl_store_io_complete(&req->io, -EAGAIN);
	}
}
#endif

/*
 * Plugging, as the block layer's blk_start_plug: a handler serving a batch
 * of fault messages queues the reads they start and submits them in one
 * io_uring_enter at the end, so that the device is notified once for the
 * batch (a notification is a VM exit: tens of microseconds here) and sees
 * the reads together.  Only reads are held back: a plugged thread may
 * still write back and wait for its writes (an object whose last
 * reference it drops), but never waits for a read; handlers never do.
 */
static __thread unsigned plugged_depth;
static __thread struct aio *plugged_ring; /* has SQEs this thread left */

void aio_plug(void)
{
	plugged_depth++;
}

void aio_unplug(void)
{
#ifdef FL_HAVE_LIBURING
	struct aio *a = plugged_ring;

	if (--plugged_depth || !a)
		return;
	plugged_ring = NULL;
	pthread_mutex_lock(&a->sq_lock);
	while (io_uring_submit(&a->ring) == -EINTR)
		;
	ring_strand_fail(a);
	sq_note(a);
	pthread_mutex_unlock(&a->sq_lock);
#else
	(void)plugged_ring; /* no ring: nothing is ever left queued */
	plugged_depth--;
#endif
}

int aio_submit_io(struct store_req *req, struct fl_store *s)
{
	if (!s->ops->submit)
		return -EOPNOTSUPP;
	req->o = NULL;
	return submit_one(req, s);
}

void aio_complete_now(struct store_req *req, ssize_t result)
{
	req->o = NULL;
	atomic_fetch_add(&req->e->aio->in_flight, 1); /* as submit_one */
	fl_store_io_complete(&req->io, result);
}

#ifdef FL_HAVE_LIBURING
/* Writes are never held back by a plug: a plugged thread may write
 * back (an object released in its hands) and wait for the writes. */
static int reads_only(struct fl_store_io *const *ios, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (ios[i]->write)
			return 0;
	return 1;
}
#endif

int aio_ring_rw(struct fl_store_io *const *ios, unsigned n, int fd)
{
#ifdef FL_HAVE_LIBURING
	struct aio *a = n ? req_of(ios[0])->e->aio : NULL;
	/* Decided before the requests are in the ring: from then on, ios
	 * may be completed and freed by others. */
	int defer = plugged_depth && reads_only(ios, n);
	struct io_uring_sqe *sqes[RING_RW_MAX];
	unsigned i, tail0;

	if (!a || !a->have_ring)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&a->sq_lock);
	tail0 = a->ring.sq.sqe_tail;
	for (i = 0; i < n && i < RING_RW_MAX; i++) {
		struct io_uring_sqe *sqe = ring_get_sqe(&a->ring);

		if (!sqe)
			break;
		if (i == 0) /* the flush above may have moved the tail */
			tail0 = a->ring.sq.sqe_tail - 1;
		if (ios[i]->write)
			io_uring_prep_write(sqe, fd, ios[i]->buf,
					    (unsigned)ios[i]->len, ios[i]->off);
		else
			io_uring_prep_read(sqe, fd, read_buffer(a, ios[i]),
					   (unsigned)ios[i]->len, ios[i]->off);
		io_uring_sqe_set_data(sqe, req_of(ios[i]));
		hand_over(req_of(ios[i]));
		sqes[i] = sqe;
	}
	/* A plugged thread leaves its reads for aio_unplug.  Otherwise they
	 * go now, and those the kernel does not take are taken back. */
	if (i && defer) {
		plugged_ring = a;
	} else if (i) {
		while (io_uring_submit(&a->ring) == -EINTR)
			;
		unsigned taken = ring_take_back(&a->ring, sqes, i, tail0);

		/* Not started: the caller reads them, into the view. */
		for (unsigned k = taken; k < i; k++)
			if (!ios[k]->write)
				unbounce(a, req_of(ios[k]));
		i = taken;
	}
	sq_note(a);
	pthread_mutex_unlock(&a->sq_lock);
	ring_started += i;
	return i ? (int)i : -EAGAIN;
#else
	(void)ios;
	(void)n;
	(void)fd;
	return -EOPNOTSUPP;
#endif
}

void fl_store_io_complete(struct fl_store_io *io, ssize_t result)
{
	struct store_req *req = req_of(io);
	struct aio *a = req->e->aio;
	uint64_t one = 1;

	req->result = result;
	pthread_mutex_lock(&a->done_lock);
	req->next = a->done;
	__atomic_store_n(&a->done, req, __ATOMIC_RELAXED); /* aio_ready */
	pthread_mutex_unlock(&a->done_lock);
	if (write(a->fd, &one, sizeof(one)) < 0)
		abort(); /* an eventfd write of 1 cannot fail */
}

/* ---- completion ---------------------------------------------------------- */

/* The engine whose completions this thread runs now (reaping them, or in
 * aio_complete_here). */
static __thread const struct aio *reaping;

static void req_run(struct fl_engine *e, struct store_req *req, int cancelled)
{
	atomic_fetch_sub(&e->aio->in_flight, 1);
	if (req->write || !req->o) { /* a write, or no object's read */
		req->complete(req, cancelled);
		return;
	}
	store_read_leave(e);
	bounce_land(req, cancelled);
	pagecache_read_complete(req, cancelled);
}

/* Run the completions stores queued; returns how many. */
static unsigned reap_list(struct fl_engine *e, int cancelled)
{
	struct aio *a = e->aio;
	struct store_req *req, *next;
	unsigned n = 0;

	pthread_mutex_lock(&a->done_lock);
	req = a->done;
	__atomic_store_n(&a->done, NULL, __ATOMIC_RELAXED); /* aio_ready */
	pthread_mutex_unlock(&a->done_lock);
	for (; req; req = next, n++) {
		next = req->next;
		req_run(e, req, cancelled);
	}
	return n;
}

/* Run the ring's completions; returns how many. */
static unsigned reap_ring(struct fl_engine *e, int cancelled)
{
#ifdef FL_HAVE_LIBURING
	struct aio *a = e->aio;
	struct io_uring_cqe *cqes[REAP_BATCH];
	struct store_req *reqs[REAP_BATCH];
	unsigned n, total = 0;

	if (!a->have_ring)
		return 0;
	do {
		pthread_mutex_lock(&a->cq_lock);
		n = io_uring_peek_batch_cqe(&a->ring, cqes, REAP_BATCH);
		for (unsigned i = 0; i < n; i++) {
			/* NULL: a request's stand-in (ring_take_back) */
			reqs[i] = io_uring_cqe_get_data(cqes[i]);
			if (reqs[i]) {
				taken_over(reqs[i]);
				reqs[i]->result = cqes[i]->res;
			}
		}
		io_uring_cq_advance(&a->ring, n);
		pthread_mutex_unlock(&a->cq_lock);
		for (unsigned i = 0; i < n; i++)
			if (reqs[i])
				req_run(e, reqs[i], cancelled);
		total += n;
	} while (n == REAP_BATCH);
	/* Plugged reads, and stand-ins a failed submit left (ring_take_back):
	 * only if some may be queued (sq_queued, read unlocked: a stale look
	 * only leaves them to the next reap, or to the plugged thread's own
	 * submit), so that a reap does not wait for a submitter. */
	if (atomic_load_explicit(&a->sq_queued, memory_order_relaxed)) {
		pthread_mutex_lock(&a->sq_lock);
		if (io_uring_sq_ready(&a->ring))
			io_uring_submit(&a->ring);
		sq_note(a);
		pthread_mutex_unlock(&a->sq_lock);
	}
	return total;
#else
	(void)e;
	(void)cancelled;
	return 0;
#endif
}

/*
 * Run every completion that is ready, as the one reaper (reap_lock held:
 * taken, or tried if try is set, returning at once if another thread
 * reaps; that one runs what is ready when it looks, and what completes
 * after its reset signals the eventfd again).
 */
static void reap(struct fl_engine *e, int cancelled, int try)
{
	struct aio *a = e->aio;
	uint64_t v;

	if (try ? pthread_mutex_trylock(&a->reap_lock)
		: pthread_mutex_lock(&a->reap_lock))
		return;
	/* Reset first: a completion after this signals again. */
	if (read(a->fd, &v, sizeof(v)) < 0 && errno != EAGAIN) {
		pthread_mutex_unlock(&a->reap_lock);
		return;
	}
	reaping = a;
	while (reap_list(e, cancelled) + reap_ring(e, cancelled))
		;
	reaping = NULL;
	pthread_mutex_unlock(&a->reap_lock);
}

/* 1 if req's completion may run on the calling store thread. */
static int may_complete_here(const struct store_req *req)
{
	return !req->write && req->o && !reaping &&
	       !req->e->config.hold_map_lock_for_io;
}

void aio_complete_here(struct fl_store_io *io, ssize_t result)
{
	struct store_req *req = req_of(io);
	struct fl_engine *e = req->e;
	struct aio *a = e->aio;

	if (!may_complete_here(req)) {
		fl_store_io_complete(io, result);
		return;
	}
	/* Counted running before stopped is read, and aio_stop_here sets
	 * stopped before it reads running (both sequentially consistent):
	 * one of the two sees the other. */
	atomic_fetch_add(&a->here_running, 1);
	if (atomic_load(&a->here_stopped)) {
		atomic_fetch_sub(&a->here_running, 1);
		fl_store_io_complete(io, result);
		return;
	}
	req->result = result;
	count_add(&e->stats, store_reads_inline, 1);
	reaping = a; /* what would wait for completions goes elsewhere */
	req_run(e, req, 0);
	reaping = NULL;
	atomic_fetch_sub(&a->here_running, 1); /* e may be going after this */
}

void aio_stop_here(struct fl_engine *e)
{
	struct aio *a = e->aio;

	if (!a)
		return;
	atomic_store(&a->here_stopped, 1);
	/* A resumed fault never blocks (it parks): the wait is short. */
	while (atomic_load(&a->here_running))
		sched_yield();
}

int aio_reaping(const struct fl_engine *e)
{
	return e->aio && reaping == e->aio;
}

int aio_ready(const struct fl_engine *e)
{
	struct aio *a = e->aio;

	if (!a || !atomic_load_explicit(&a->in_flight, memory_order_relaxed))
		return 0;
	/* An unlocked peek: a stale answer costs one empty reap or one
	 * more round of polling, and the eventfd stays the authority. */
	if (__atomic_load_n(&a->done, __ATOMIC_RELAXED))
		return 1;
#ifdef FL_HAVE_LIBURING
	/* io_uring_cq_ready, with the head read atomically: the reaper
	 * advances it under cq_lock, which this does not take. */
	if (a->have_ring &&
	    __atomic_load_n(a->ring.cq.ktail, __ATOMIC_ACQUIRE) !=
		    __atomic_load_n(a->ring.cq.khead, __ATOMIC_RELAXED))
		return 1;
#endif
	return 0;
}

void aio_reap(struct fl_engine *e)
{
	fl_assert_may_block();
	reap(e, 0, 0);
}

void aio_reap_polling(struct fl_engine *e)
{
	fl_assert_may_block();
	reap(e, 0, 1);
}

void aio_drain(struct fl_engine *e)
{
	struct aio *a = e->aio;

	if (!a)
		return;
	fl_assert_may_block();
	while (atomic_load(&a->in_flight)) {
		struct pollfd pfd = {.fd = a->fd, .events = POLLIN};

		reap(e, 1, 0);
		if (atomic_load(&a->in_flight))
			poll(&pfd, 1, 100);
	}
}

/*
 * What a completion does with the data, as pagecache_read does it: a
 * short read goes on from where it stopped; a failed batch is retried
 * for the page the reader needs alone, the others abandoned; then
 * finish, and req is freed.  No lock held.
 */
void pagecache_read_complete(struct store_req *req, int cancelled)
{
	struct fl_object *o = req->o;
	uint64_t len = (uint64_t)req->count << PAGE_SHIFT;
	uint64_t off = req->index << PAGE_SHIFT;
	uint64_t valid = o->size - off < len ? o->size - off : len;
	ssize_t r = req->result;
	int err = 0;

	if (req->unstarted && !cancelled) { /* a plugged read never went */
		req->unstarted = 0;
		if (aio_submit(req) == 0)
			return;
	}
	if (r < 0)
		err = (int)r;
	else if (r == 0 || (uint64_t)r > len - req->done)
		err = -EIO; /* short of the object's end, or more than asked */
	else
		req->done += (uint64_t)r;
	if (!err && req->done < valid) { /* a short read: go on */
		if (!cancelled && aio_submit(req) == 0)
			return;
		err = -EIO;
	}
	if (!err) {
		/* Beyond the end of the object: zeros, as mmap. */
		/* The zeros go through the view: a bounced read past the
		 * end maps that page there too, and is counted so. */
		if (valid < len)
			memset(object_page_data(o, req->index) + valid, 0,
			       len - valid);
		pagecache_mark_uptodate(o, req->index, req->count,
					!req->bounced || valid < len);
	} else if (req->count > 1 && !cancelled) {
		/* The batch failed: the faulting page may be readable alone. */
		uint64_t end = req->index + req->count;

		pagecache_abandon_read(o, req->index,
				       req->must_have - req->index);
		pagecache_abandon_read(o, req->must_have + 1,
				       end - req->must_have - 1);
		req->index = req->must_have;
		req->count = 1;
		req->done = 0;
		if (aio_submit(req) == 0)
			return;
		pagecache_abandon_read(o, req->index, 1);
	} else {
		pagecache_abandon_read(o, req->index, req->count);
	}
	req->finish(req->arg, err, cancelled);
	object_put(o);
	free(req);
}

int pagecache_read_start(struct fl_object *o, uint64_t index,
			 unsigned long count, uint64_t must_have,
			 void (*finish)(void *arg, int err, int cancelled),
			 void *arg)
{
	struct fl_engine *e = o->engine;
	struct store_req *req;
	int err;

	if (!o->store || !o->store->ops->submit || !e->aio)
		return -EOPNOTSUPP;
	req = malloc(sizeof(*req));
	if (!req)
		return -ENOMEM;
	*req = (struct store_req){.e = e,
				  .o = o,
				  .index = index,
				  .must_have = must_have,
				  .count = count,
				  .finish = finish,
				  .arg = arg};
	object_get(o);
	err = aio_submit(req);
	if (err) {
		object_put(o);
		free(req);
	}
	return err;
}
