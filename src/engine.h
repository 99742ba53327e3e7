/* SPDX-License-Identifier: MIT */
/*
 * The engine: one userfaultfd, its handler threads, the address space (the
 * mappings and the map lock), the objects, and the engine's page table.
 */
#ifndef FL_ENGINE_H
#define FL_ENGINE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "debug.h"
#include "faultline.h"
#include "lockstat.h"
#include "map.h"
#include "pagesize.h"
#include "pagetable.h"
#include "random_poll.h"
#include "stats.h"
#include "swap.h"
#include "workqueue.h"

/* The I/O thread pool grows to at most this many threads. */
#define MAX_IO_THREADS 64

/* Wakes handed to a CPU poller, to issue on its CPU (threads.c). */
#define HANDED_WAKES_MAX 32

/* A handler thread's own: its epoll descriptor, the CPU it polls on as a
 * CPU poller (or -1), and the wakes other threads handed it while it
 * polls (open) (threads.c). */
struct handler {
	struct fl_engine *e;
	int ep;
	int cpu;
	int pinned; /* a CPU poller: pinned to cpu now (not in shared mode) */
	pthread_mutex_t wake_lock;
	int wakes_open;
	_Atomic unsigned nr_wakes;
	_Atomic uint64_t handed_at; /* when the first waiting wake came */
	_Atomic uint64_t looked_at; /* its last look while it polls; 0: not */
	struct {
		int uffd;
		uintptr_t start;
		size_t len;
	} wakes[HANDED_WAKES_MAX];
};

struct fl_engine {
	int uffd;
	int stop_fd;	/* eventfd: tells handler threads to exit */
	int pagemap_fd; /* /proc/self/pagemap, or -1 */
	int self_pidfd; /* this process, for process_madvise; or -1 */
	pid_t self_pid; /* the process self_pidfd is for */
	struct fl_config config;
	pthread_mutex_t threads_lock; /* threads, nr_threads, nr_io */
	pthread_t *threads;	      /* handlers first, then I/O threads */
	/* The CPUs the engine's threads may use (a cpu_set_t: the creating
	 * thread's at fl_engine_create), given to each thread started later,
	 * whichever thread starts it (a poller may be pinned then). */
	void *thread_cpus;
	struct handler *handlers; /* one per handler thread */
	unsigned nr_handlers;	  /* handler threads started */
	unsigned nr_threads;
	_Atomic unsigned nr_io;	  /* read unlocked by io_short */
	int stopping;		  /* no thread may start any more */
	_Atomic unsigned io_busy; /* I/O threads running an item */
	struct workqueue work;	  /* store reads and readahead, for I/O */
	struct aio *aio;	  /* asynchronous store reads (aio.c) */
	struct flusher *flusher;  /* background writeback (flusher.c) */
	/* Handler polling (threads.c): 1 while a handler polls; the other
	 * handlers sleep on poll_seq (a futex), bumped when that ends. */
	_Atomic int poller;
	_Atomic uint32_t poll_seq;
	_Atomic int poll_parked; /* handlers sleeping on poll_seq */
	/* poll_beat: bumped by every look of the poller; poll_starved: a
	 * parked handler found it still for POLL_STARVED_NS (the poller is
	 * not getting a CPU), and the others stop parking until it ends;
	 * poll_quit: the engine is stopping. */
	_Atomic uint32_t poll_beat;
	_Atomic int poll_starved;
	_Atomic int poll_quit;
	/* Whether to poll while faults read at random (random_poll.c). */
	struct random_poll random_poll;
	/* Local polling (threads.c): the CPU pollers' count (0: off), how
	 * many poll now, the eventfd that starts them (edge-triggered, never
	 * read), and when any of them last read a message and last found
	 * work (lockstat_now). */
	unsigned nr_cpu_pollers;
	_Atomic int local_pollers;
	/* The last faulting thread seen and when, and until when faults come
	 * from several threads at once (local polling is then off). */
	_Atomic uint32_t last_fault_tid;
	_Atomic uint64_t last_fault_at;
	_Atomic uint64_t shared_until;
	_Atomic unsigned fault_streak; /* faults in a row from that thread */
	/* The poller's open /proc/self/task/TID/stat of the thread it last
	 * followed (threads.c, poller_follow), or -1; only the poller (one
	 * at a time) uses them. */
	int follow_fd;
	uint32_t follow_tid;
	unsigned follow_skip; /* looks before the thread's CPU is read again */
	int poll_start_fd;
	int io_ep; /* the I/O threads' epoll descriptor (threads.c) */
	_Atomic uint64_t poll_last_read;
	_Atomic uint64_t poll_last_found;

	struct lockstat fault_hold; /* faults' map-lock hold times */
	struct lockstat map_wait;   /* map/unmap/protect waits for it */

	/* The address space: faults read it, map/unmap/protect write it. */
	pthread_rwlock_t map_lock;
	struct mapping_set mappings;

	/* What each private or anonymous virtual page holds. */
	struct pagetable pagetable;
	/* Swap devices and the swap cache (swap.c). */
	struct swap_engine swap;

	/* Memory groups: the root, and every group (group.c). */
	pthread_mutex_t groups_lock; /* the list, nr_children, nr_mappings */
	struct fl_group *root_group, *groups;

	pthread_mutex_t objects_lock; /* guards the list of live objects */
	struct fl_object *objects;

	/* Numbers taken by reads of fault messages, writeback's cleans and
	 * faults' lifts of write-protection: orders write-protect messages
	 * against them (see read_messages and fault_dismiss). */
	_Atomic uint64_t msg_batches;
	/*
	 * Write-protect faults dismissed as possibly stale, by thread: the
	 * page (address | low bits of the thread id).  A thread's next fault
	 * on the same page is honoured, so none can be dismissed forever.
	 */
	_Atomic uint64_t dismissed[256];
	_Atomic uint64_t dismissed_batch[256]; /* when */

	struct counters stats;
	_Atomic uint64_t reads_in_flight; /* store reads now (queue depth) */
	/* Faults parked (on a read, a locked page, memory) and not yet done:
	 * threads waiting for work in flight.  Counted after the park, so it
	 * may dip below zero for a moment. */
	_Atomic int64_t faults_parked;
	_Atomic uint64_t dirty_pages;
	_Atomic uint64_t cached_pages;

	void *zero_buffer; /* source of UFFDIO_COPY for zero-filled pages */
};

/*
 * The map lock.  Nothing blocks while holding it (no store I/O, no wait
 * for a page lock or for memory); debug builds count each thread's holds
 * (debug.h) so that the contracts stated on functions are checked.
 */
static inline void map_read_lock(struct fl_engine *e)
{
	pthread_rwlock_rdlock(&e->map_lock);
	map_lock_depth_add(1);
}

/* Map, unmap and protect: how long they wait is recorded. */
static inline void map_write_lock(struct fl_engine *e)
{
	uint64_t t0 = lockstat_now();

	fl_assert(map_lock_depth_get() == 0);
	pthread_rwlock_wrlock(&e->map_lock);
	map_lock_depth_add(1);
	lockstat_record(&e->map_wait, lockstat_now() - t0);
}

static inline void map_unlock(struct fl_engine *e)
{
	fl_assert(map_lock_depth_get() > 0);
	map_lock_depth_add(-1);
	pthread_rwlock_unlock(&e->map_lock);
}

/*
 * Store reads in flight, synchronous and submitted alike: the queue depth
 * a store sees.  A read enters (learning the depth it joins, itself
 * included), is counted before it starts (its completion can run on
 * another thread before the submitter goes on), and leaves when done.
 */
static inline uint64_t store_read_enter(struct fl_engine *e)
{
	return atomic_fetch_add(&e->reads_in_flight, 1) + 1;
}

static inline void store_read_started(struct fl_engine *e, uint64_t depth)
{
	count_add(&e->stats, store_reads, 1);
	count_add(&e->stats, store_read_depth, depth);
}

/* A read counted (store_read_started) that could not be started after all. */
static inline void store_read_unstarted(struct fl_engine *e, uint64_t depth)
{
	count_add(&e->stats, store_reads, (uint64_t)-1);
	count_add(&e->stats, store_read_depth, -depth);
}

static inline void store_read_leave(struct fl_engine *e)
{
	atomic_fetch_sub(&e->reads_in_flight, 1);
}

/* threads.c: the handler and I/O threads, and work for the I/O threads. */
int threads_start(struct fl_engine *e);
/* Stop and join every thread; none starts after.  Work left queued stays. */
void threads_stop(struct fl_engine *e);
/* Queue background work for the I/O threads, adding one if all are busy. */
void threads_post_work(struct fl_engine *e, struct work *work);
/* The calling thread handed work to another thread (an I/O thread, a
 * store's own): what it serves completes elsewhere (threads.c: the poller
 * then does not follow the faulting thread). */
void threads_note_handoff(void);
/*
 * The CPU thread tid of this process last ran on (field 39 of
 * /proc/self/task/TID/stat), or -1.  *fd is that file kept open for
 * *fd_tid (-1: none yet): opened, or reopened for another tid, as needed;
 * the caller closes it.
 */
int thread_last_cpu(int *fd, uint32_t *fd_tid, uint32_t tid);

#endif /* FL_ENGINE_H */
