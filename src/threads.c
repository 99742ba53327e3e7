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
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "aio.h"
#include "deadline.h"
#include "engine.h"
#include "fault.h"
#include "uffd.h"

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

/*
 * Local polling pays while one thread faults at a time; with several, the
 * CPU pollers contend (for the ring, the cache's locks), each sleeping
 * wait costing a wake-up from another CPU, and a pinned poller cannot
 * follow its CPU's work: four random readers on two CPUs ran 40% slower
 * than with one poller.  So faults from two threads within SHARED_WINDOW_NS
 * of each other turn local polling off for SHARED_HOLD_NS (shared mode:
 * one poller at a time, unpinned, as without local polling).
 */
#define SHARED_WINDOW_NS 1000000ull
#define SHARED_HOLD_NS	 100000000ull

static void note_faulting_thread(struct fl_engine *e, uint32_t tid)
{
	uint64_t now = lockstat_now();
	uint32_t last = atomic_exchange(&e->last_fault_tid, tid);
	uint64_t at = atomic_exchange(&e->last_fault_at, now);

	if (last == tid)
		atomic_fetch_add(&e->fault_streak, 1);
	else
		atomic_store(&e->fault_streak, 1);

	if (last != tid && now - at < SHARED_WINDOW_NS &&
	    atomic_load(&e->shared_until) < now + SHARED_HOLD_NS / 2)
		atomic_store(&e->shared_until, now + SHARED_HOLD_NS);
}

/* Whether the CPU pollers poll (local polling on, and not shared). */
static int local_mode(struct fl_engine *e)
{
	return e->nr_cpu_pollers &&
	       lockstat_now() >= atomic_load(&e->shared_until);
}

/* The batch of the messages this thread read last (read_messages). */
static __thread struct msg_batch read_batch;

/* Serve the messages read (on cpu, as their threads' own CPU, or -1: see
 * fault_handle); a record that parked is gone from r. */
static void serve_messages(struct fl_engine *e, struct fault_reserve *r,
			   const struct uffd_msg *msgs, size_t n, int cpu)
{
	struct msg_batch batch = read_batch;

	aio_plug(); /* the batch's reads go to the device together */
	for (size_t i = 0; i < n; i++) {
		int parked, random;

		if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
			continue; /* reading it was all it needed */
		note_faulting_thread(e, msgs[i].arg.pagefault.feat.ptid);
		parked = fault_handle(e, &msgs[i], &batch, r->rec[r->nr - 1],
				      cpu);
		if (parked)
			r->nr--; /* parked: the fault owns the record now */
		random = parked == FAULT_HANDLE_RANDOM_READ;
		random_poll_note(&e->random_poll, random,
				 random ? lockstat_now() : 0);
	}
	aio_unplug();
}

/*
 * Polling.  Waking a sleeping thread costs tens of microseconds on a
 * virtual machine, and a major fault served by a handler would pay it up
 * to three times (the fault message, the read's completion, the faulting
 * thread's wake-up) where the kernel pays it once.  So after it served
 * something, one handler at a time (the poller) keeps reading the
 * userfaultfd and peeking at the completion ring for handler_poll_us; the
 * other handlers sleep on poll_seq meanwhile, not on the userfaultfd,
 * where every message would wake them for nothing.  A full batch of
 * messages wakes them to help.  Polling ends at once when the poller
 * finds it was descheduled between two looks: the machine is busy, and
 * the CPU is better spent by whoever wanted it.
 *
 * The idle class.  Where the process may leave SCHED_IDLE again, the
 * poller polls in it: it then runs only on a CPU nobody else wants, and
 * the scheduler counts its CPU as idle.  The faulting thread it wakes
 * is placed on that CPU (the one it faulted on, usually, since the
 * poller ran there once the thread blocked) instead of on another, idle
 * one: the wake-up and the next fault stay on one CPU, and waking a
 * halted virtual CPU, the dearest step of a fault on a virtual machine,
 * is gone.  Being preempted by the thread it woke is then what polling
 * is for, not a sign of a busy machine, so it does not end polling.  The
 * poller serves what it finds in the normal class with its wakes held
 * back (uffd_defer_wakes), never holding a lock in the idle class, and
 * wakes the threads from the idle class once it holds nothing.  A
 * poller starved by busy CPUs holds nothing, and stalls the others for
 * at most POLL_STARVED_NS (handler_park).
 *
 * Random reads.  While most faults wait for random reads, whether
 * spinning through the reads pays depends on the machine: random_poll.c
 * tries both ways and handler_poll asks it (random_poll_skip) before it
 * starts and at every look.  Local polling does not ask.
 */
#define POLL_DESCHEDULED_NS 50000
#define POLL_IO_NS	    2000000
#define POLL_STARVED_NS	    1000000
/* The idle class's poller, descheduled by a busy CPU, ends after this long
 * by the clock with nothing found (see handler_poll). */
#define POLL_IDLE_QUIET_NS 50000000

/* A spin-wait hint to the CPU (and to the hypervisor). */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* Wake the handlers sleeping in handler_park. */
static void poll_wake_others(struct fl_engine *e)
{
	atomic_fetch_add(&e->poll_seq, 1);
	if (atomic_load(&e->poll_parked))
		syscall(SYS_futex, &e->poll_seq, FUTEX_WAKE_PRIVATE, INT_MAX,
			NULL, NULL, 0);
}

static unsigned issue_late_handed_wakes(struct fl_engine *e);

/* Whether a handler polls now (the poller, or CPU pollers). */
static int polling(struct fl_engine *e)
{
	return atomic_load(&e->poller) || atomic_load(&e->local_pollers);
}

/*
 * Sleep while another handler polls; 1 if this thread slept.  The
 * sequence is read before the flags: a poller that stops after they were
 * read has bumped it, and the wait returns at once.  A poller that did
 * not look once in POLL_STARVED_NS is not getting a CPU (busy CPUs, or
 * the idle class): the handlers then stop parking, and serve from their
 * descriptors, until it ends.
 */
static int handler_park(struct fl_engine *e)
{
	int slept = 0;

	atomic_fetch_add(&e->poll_parked, 1);
	for (;;) {
		struct timespec wait = {0, POLL_STARVED_NS};
		uint32_t seq = atomic_load(&e->poll_seq);
		uint32_t beat = atomic_load(&e->poll_beat);

		if (!polling(e) || atomic_load(&e->poll_starved))
			break;
		slept = 1;
		if (syscall(SYS_futex, &e->poll_seq, FUTEX_WAIT_PRIVATE, seq,
			    &wait, NULL, 0) == 0 ||
		    errno != ETIMEDOUT)
			break; /* woken: polling ended, or a burst */
		issue_late_handed_wakes(e); /* held by starved CPU pollers */
		if (atomic_load(&e->poll_beat) == beat && polling(e)) {
			atomic_store(&e->poll_starved, 1);
			break;
		}
	}
	atomic_fetch_sub(&e->poll_parked, 1);
	return slept;
}

static pthread_once_t idle_class_once = PTHREAD_ONCE_INIT;
static int idle_class_ok;

/* In a thread of its own: can a thread go to SCHED_IDLE and back? */
static void *idle_class_probe(void *arg)
{
	struct sched_param sp = {0};

	(void)arg;
	idle_class_ok =
		!pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) &&
		!pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
	return NULL;
}

/* Probe once per process, from threads_start: the probe thread is gone
 * before fl_engine_create returns.  Signals are the program's. */
static void idle_class_check(void)
{
	sigset_t all, old;
	pthread_t t;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (!pthread_create(&t, NULL, idle_class_probe, NULL))
		pthread_join(t, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Whether this handler may poll in the idle class: FAULTLINE_POLL_IDLE=0
 * is not set, it runs in the normal class, and leaving the idle class is
 * permitted (RLIMIT_NICE or CAP_SYS_NICE: root, usually). */
static int idle_class_usable(void)
{
	const char *off = getenv("FAULTLINE_POLL_IDLE");
	struct sched_param sp;
	int policy;

	if ((off && !strcmp(off, "0")) ||
	    pthread_getschedparam(pthread_self(), &policy, &sp) ||
	    policy != SCHED_OTHER)
		return 0;
	return idle_class_ok;
}

/* Enter (idle 1) or leave the idle class.  Leaving cannot fail where the
 * probe succeeded. */
static void set_idle_class(int idle)
{
	struct sched_param sp = {0};

	pthread_setschedparam(pthread_self(), idle ? SCHED_IDLE : SCHED_OTHER,
			      &sp);
}

/* Serve messages[0..n) read by the poller (on cpu, as for serve_messages)
 * and the completions if aio is set: in the normal class with its wakes
 * deferred, if it polls idle. */
static void poll_serve(struct fl_engine *e, struct fault_reserve *r,
		       struct uffd_msg *msgs, size_t n, int aio, int idle,
		       int cpu)
{
	if (idle) {
		set_idle_class(0);
		uffd_defer_wakes();
	}
	if (aio)
		aio_reap_polling(e);
	if (n)
		serve_messages(e, r, msgs, n, cpu);
	if (idle) {
		if (!atomic_load(&e->poll_quit))
			set_idle_class(1);
		uffd_flush_wakes();
	}
}

/*
 * Read up to have messages (have > 0) without waiting; how many.  Their
 * batch (read_batch) is dated twice.  begun, before the read: a message
 * read before writeback cleaned its page has a number no later than the
 * clean's (fault_predates_clean), however late this thread serves it.
 * (Dated after the read, a handler preempted as the read returned dated
 * the message after a clean that came meanwhile, and its store, let
 * through long before, dirtied the clean page again.)  ended, a new
 * number once the read returned: a lift numbered later came after the
 * read (fault_lifted_since).
 */
static size_t read_messages(struct fl_engine *e, struct uffd_msg *msgs,
			    unsigned have)
{
	uint64_t begun = atomic_load(&e->msg_batches) + 1;
	ssize_t got = read(e->uffd, msgs, have * sizeof(msgs[0]));

	if (got <= 0)
		return 0;
	read_batch.begun = begun;
	read_batch.ended = atomic_fetch_add(&e->msg_batches, 1) + 1;
#ifdef FL_INJECT
	inject_reached(INJ_MSGS_READ); /* a test may stall the handler here */
#endif
	return (size_t)got / sizeof(msgs[0]);
}

/* Read up to have messages (have > 0) and serve them; returns how many
 * were read (0: none waiting, or another handler took them). */
static size_t read_and_serve(struct fl_engine *e, struct fault_reserve *r,
			     struct uffd_msg *msgs, unsigned have)
{
	size_t n = read_messages(e, msgs, have);

	if (n)
		serve_messages(e, r, msgs, n, -1);
	return n;
}

/* What a poller's look found: n messages read (of have: a full batch
 * wakes the other handlers to help before it is served) and completions
 * if aio is set.  Serves them (as poll_serve); 1 if there was anything. */
static int look_found(struct fl_engine *e, struct fault_reserve *r,
		      struct uffd_msg *msgs, size_t n, unsigned have, int aio,
		      int idle, int cpu)
{
	if (n && n == have)
		poll_wake_others(e); /* a burst: help */
	if (!aio && !n)
		return 0;
	poll_serve(e, r, msgs, n, aio, idle, cpu);
	count_add(&e->stats, polled_events, (uint64_t)aio + (n > 0));
	return 1;
}

static int faults_waiting(struct fl_engine *e);
/* Work the calling thread handed to other threads (threads_note_handoff). */
static __thread unsigned long handoffs;

/* One look of the poller: 1 if it found and served something; *got:
 * the messages it read (in msgs). */
static int poll_look(struct fl_engine *e, struct fault_reserve *r,
		     struct uffd_msg *msgs, unsigned have, int idle,
		     size_t *got)
{
	int aio = aio_ready(e);
	size_t n = have ? read_messages(e, msgs, have) : 0;

	*got = n;
	return look_found(e, r, msgs, n, have, aio, idle, -1);
}

/*
 * Following the faulting thread.  The poller polls in the idle class on
 * whatever CPU it runs on.  A lone thread faulting on another CPU sleeps
 * there while its read is in flight, that CPU halts, and the poller's
 * wake-up of the thread from its own CPU costs about 35 us on these
 * virtual machines (traced: a random 4 KiB read of the file store took
 * 143 us, a plain O_DIRECT pread 104).  So once one thread has faulted
 * FOLLOW_STREAK times in a row (several threads taking turns would drag
 * the poller from CPU to CPU), the poller moves to that thread's CPU (its
 * affinity set to it) and polls there: the wake-up stays on the CPU, and
 * the woken thread preempts the poller at once.  Only for faults whose
 * completions come back to the poller (the ring, or served at once): a
 * store's own threads or the I/O threads, woken onto the CPU the poller
 * took, ran later (a random read from Redis: 98 to 112 us).  Its affinity
 * is given back when polling ends.  The thread's CPU is the last it ran
 * on, from /proc/self/task/TID/stat (the file kept open while the same
 * thread faults: a read of it costs about a microsecond).
 */

int thread_last_cpu(int *fd, uint32_t *fd_tid, uint32_t tid)
{
	char buf[512], *p;
	ssize_t n;
	int field = 2;

	if (*fd < 0 || *fd_tid != tid) {
		if (*fd >= 0)
			close(*fd);
		snprintf(buf, sizeof(buf), "/proc/self/task/%u/stat", tid);
		*fd = open(buf, O_RDONLY | O_CLOEXEC);
		*fd_tid = tid;
		if (*fd < 0)
			return -1;
	}
	n = pread(*fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	/* Field 39 (processor); the name (field 2) may hold anything but
	 * ends at the last ')'. */
	for (p = strrchr(buf, ')'); p && *p; p++)
		if (*p == ' ' && ++field == 39)
			return atoi(p + 1);
	return -1;
}

/* Faults in a row from one thread before the poller follows it. */
#define FOLLOW_STREAK 4
/* Once the poller is on the thread's CPU, batches it serves before it
 * reads where the thread runs again (a read costs about as much as the
 * rest of a minor fault's work; a thread seldom moves). */
#define FOLLOW_RECHECK 16

/* After the poller read msgs[0..n): move it to the CPU of their thread if
 * one thread faults alone and runs elsewhere.  *saved (once *moved is
 * set): the affinity to give back. */
static void poller_follow(struct fl_engine *e, const struct uffd_msg *msgs,
			  size_t n, cpu_set_t *saved, int *moved)
{
	uint32_t tid = 0;
	cpu_set_t one;
	int cpu;

	for (size_t i = 0; i < n; i++) {
		if (msgs[i].event != UFFD_EVENT_PAGEFAULT)
			continue;
		if (tid && msgs[i].arg.pagefault.feat.ptid != tid)
			return; /* several at once */
		tid = msgs[i].arg.pagefault.feat.ptid;
	}
	if (!tid || atomic_load(&e->fault_streak) < FOLLOW_STREAK)
		return;
	if (tid == e->follow_tid && e->follow_skip) {
		e->follow_skip--;
		return;
	}
	cpu = thread_last_cpu(&e->follow_fd, &e->follow_tid, tid);
	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return;
	if (cpu == sched_getcpu()) {
		e->follow_skip = FOLLOW_RECHECK - 1;
		return;
	}
	if (!*moved &&
	    pthread_getaffinity_np(pthread_self(), sizeof(*saved), saved))
		return;
	if (!CPU_ISSET(cpu, saved))
		return; /* not one the engine's threads may use */
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (pthread_setaffinity_np(pthread_self(), sizeof(one), &one))
		return;
	*moved = 1;
	e->follow_skip = FOLLOW_RECHECK - 1;
	count_add(&e->stats, poller_moves, 1);
}

/* Serve faults and completions as they come, without sleeping, until
 * none came for handler_poll_us of polling (or none can be read: no
 * record).  Time the idle class gave away is not polling. */
static void handler_poll(struct fl_engine *e, struct fault_reserve *r,
			 struct uffd_msg *msgs, int may_idle)
{
	uint64_t budget = (uint64_t)e->config.handler_poll_us * 1000u;
	uint64_t now = lockstat_now(), spun = 0, last_found = now;
	int expected = 0, idle = 0, moved = 0;
	cpu_set_t saved;

	if (e->config.handler_poll_us <= 0)
		return;
	if (random_poll_skip(&e->random_poll)) { /* random_poll.c */
		count_add(&e->stats, polls_skipped, 1);
		return;
	}
	if (!atomic_compare_exchange_strong(&e->poller, &expected, 1))
		return;
	e->follow_skip = 0; /* wherever this poller runs, look first */
	if (may_idle && !atomic_load(&e->poll_quit)) {
		/* Counted first: once in the idle class, a busy machine may
		 * not run this thread again for a long while. */
		idle = 1;
		count_add(&e->stats, polls_idle, 1);
		set_idle_class(1);
	}
	/* In the idle class (free to the machine), up to POLL_IO_NS while a
	 * fault waits for work in flight, as the CPU pollers do (see
	 * local_poll). */
	while (spun < (idle && budget < POLL_IO_NS && faults_waiting(e)
			       ? POLL_IO_NS
			       : budget) &&
	       !atomic_load(&e->poll_quit) && !atomic_load(&e->poll_starved)) {
		unsigned have = reserve_fill(r);
		uint64_t before = now;
		unsigned long handed = handoffs;
		size_t got;
		int found = poll_look(e, r, msgs, have, idle, &got);

		/* Only faults whose completions come back to the poller
		 * (the ring, or served at once): another thread's wake-ups
		 * would land on the CPU the poller took. */
		if (idle && got && handoffs == handed)
			poller_follow(e, msgs, got, &saved, &moved);
		atomic_fetch_add(&e->poll_beat, 1);
		if (!have)
			break;
		if (random_poll_skip(&e->random_poll)) { /* reads at random */
			count_add(&e->stats, polls_skipped, 1);
			break;
		}
		now = lockstat_now();
		if (found) {
			spun = 0;
			last_found = now;
		} else if (now - before > POLL_DESCHEDULED_NS) {
			if (!idle)
				break; /* a busy machine */
			/* Time the idle class gave away is not polling, but
			 * a busy CPU gives the poller a look now and then
			 * forever: with nothing found for POLL_IDLE_QUIET_NS
			 * by the clock, it stops (and is unpinned). */
			if (now - last_found > POLL_IDLE_QUIET_NS)
				break;
		} else {
			spun += now - before;
			cpu_relax();
		}
	}
	if (idle)
		set_idle_class(0);
	if (moved) /* free to run anywhere again */
		pthread_setaffinity_np(pthread_self(), sizeof(saved), &saved);
	if (atomic_load(&e->poll_starved))
		count_add(&e->stats, polls_starved, 1);
	atomic_store(&e->poller, 0);
	atomic_store(&e->poll_starved, 0);
	poll_wake_others(e);
}

/*
 * Local polling.  The idle class keeps a woken thread on the poller's CPU
 * only if the poller runs on the CPU the thread faulted on, and one poller
 * cannot be on every CPU: a thread faulting on another CPU leaves it
 * halted, and its wake-up pays the dearest step again.  So with
 * FAULTLINE_POLL_LOCAL=1 (off by default for now: docs/design.md), where
 * the idle class is usable and the process may run on several CPUs, one
 * handler is pinned to each of them (a CPU poller), and all of them poll
 * in the idle class while faults come.
 *
 * Which one reads a message decides where the wake-up goes, and the CPU
 * pollers cannot see whose message waits without reading it.  But the
 * faulting thread ran on its CPU until it blocked, so that CPU's poller
 * was preempted by it: a CPU poller reads at once only if it was
 * preempted since its last look (its involuntary context switches moved),
 * and the fault's own thread is the one it wakes, on that CPU.  A message
 * that waits POLL_LATE_NS with no CPU poller reading (its thread's CPU has
 * no poller, or one starved by a busy CPU) is read by any of them, as is
 * any message when only one of them polls.  The other handlers (at least
 * one) park meanwhile and watch for starvation as with one poller
 * (handler_park); a handler woken by a fault while none polls starts them
 * (poll_start_fd).  Polling ends when no CPU poller found anything for
 * handler_poll_us.
 */
#define POLL_LATE_NS	    20000
#define LOCAL_POLL_MAX_CPUS 64

/* The calling thread's involuntary context switches, or -1. */
static long thread_preemptions(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_THREAD, &ru) ? -1 : ru.ru_nivcsw;
}

static int uffd_readable(int uffd)
{
	struct pollfd pfd = {.fd = uffd, .events = POLLIN};

	return poll(&pfd, 1, 0) == 1;
}

/* What a CPU poller saw at its last look. */
struct local_look_state {
	long preemptions;	/* its involuntary context switches; -1 first */
	uint64_t pending_since; /* when it saw a message waiting; 0: none */
};

/*
 * Whether a CPU poller reads the userfaultfd now (see above); *late is set
 * when it would read a message that is not (likely) its own CPU's: one it
 * saw waiting for POLL_LATE_NS while no poller read anything.
 */
static int local_may_read(struct fl_engine *e, struct local_look_state *st,
			  uint64_t now, int *late)
{
	long preemptions = thread_preemptions();
	int preempted = preemptions != st->preemptions;

	st->preemptions = preemptions;
	*late = 0;
	if (preempted)
		return 1;
	if (!uffd_readable(e->uffd)) {
		st->pending_since = 0;
		return 0;
	}
	if (!st->pending_since)
		st->pending_since = now;
	*late = 1;
	return atomic_load(&e->local_pollers) == 1 ||
	       (now - st->pending_since > POLL_LATE_NS &&
		(int64_t)(now - atomic_load(&e->poll_last_read)) >
			POLL_LATE_NS);
}

/* Start the CPU pollers polling (a handler was woken: faults come). */
static void local_poll_start(struct fl_engine *e)
{
	uint64_t one = 1;

	if ((unsigned)atomic_load(&e->local_pollers) < e->nr_cpu_pollers &&
	    write(e->poll_start_fd, &one, sizeof(one)) < 0)
		abort(); /* an eventfd write of 1 cannot overflow in practice */
}

/* One look of a CPU poller, at now: 1 if it found and served something. */
static int local_look(struct handler *h, struct fault_reserve *r,
		      struct uffd_msg *msgs, unsigned have,
		      struct local_look_state *st, uint64_t now)
{
	struct fl_engine *e = h->e;
	int late, aio = aio_ready(e);
	size_t n = 0;

	if (local_may_read(e, st, now, &late))
		n = read_messages(e, msgs, have);
	if (n) {
		st->pending_since = 0;
		atomic_store(&e->poll_last_read, now);
		if (late)
			count_add(&e->stats, late_reads, n);
		else
			count_add(&e->stats, local_reads, n);
	}
	if (!look_found(e, r, msgs, n, have, aio, 1, late ? -1 : h->cpu))
		return 0;
	atomic_store(&e->poll_last_found, lockstat_now());
	return 1;
}

/*
 * Wakes handed over.  A fault that waited (for a store read, or for
 * memory) is resumed by whichever thread ends the wait: the CPU poller
 * that reaped the read's completion, an I/O thread, a reclaimer.  Its
 * thread waits on its own CPU, and a wake-up from another CPU costs 23 to
 * 46 us (median; waking a CPU that runs an idle-class poller, and one
 * that is halted).  So the wake of a fault read locally (fault_handle's
 * cpu) is handed to that CPU's poller, which issues it from there while
 * it polls (its wakes are open); otherwise it is issued at once.  Every
 * engine thread routes its wakes so (uffd_route_wakes).
 */
static int hand_wake(void *arg, int cpu, int uffd, uintptr_t start, size_t len)
{
	struct fl_engine *e = arg;
	struct handler *h = NULL;
	unsigned n;
	int taken = 0;

	for (unsigned i = 0; i < e->nr_cpu_pollers && !h; i++)
		if (e->handlers[i].cpu == cpu)
			h = &e->handlers[i];
	/* Only to a poller that polls now: one that has not looked for
	 * POLL_LATE_NS is descheduled (its CPU busy), and would hold it. */
	if (!h || (int64_t)(lockstat_now() - atomic_load(&h->looked_at)) >
			  POLL_LATE_NS)
		return -1;
	pthread_mutex_lock(&h->wake_lock);
	n = atomic_load(&h->nr_wakes);
	if (h->wakes_open && n < HANDED_WAKES_MAX) {
		h->wakes[n].uffd = uffd;
		h->wakes[n].start = start;
		h->wakes[n].len = len;
		if (n == 0)
			atomic_store(&h->handed_at, lockstat_now());
		atomic_store(&h->nr_wakes, n + 1);
		taken = 1;
	}
	pthread_mutex_unlock(&h->wake_lock);
	if (!taken)
		return -1;
	count_add(&e->stats, handed_wakes, 1);
	return 0;
}

/* Issue the wakes handed to CPU poller h, and leave its wakes open (it
 * polls), closed, or as they are (open -1); returns how many it issued. */
static unsigned issue_handed_wakes(struct handler *h, int open)
{
	unsigned n;
	__typeof__(h->wakes[0]) w[HANDED_WAKES_MAX];

	pthread_mutex_lock(&h->wake_lock);
	if (open >= 0)
		h->wakes_open = open;
	n = atomic_load(&h->nr_wakes);
	memcpy(w, h->wakes, n * sizeof(w[0]));
	atomic_store(&h->nr_wakes, 0);
	pthread_mutex_unlock(&h->wake_lock);
	for (unsigned i = 0; i < n; i++)
		uffd_wake(w[i].uffd, w[i].start, w[i].len);
	return n;
}

/*
 * Issue the wakes that waited POLL_LATE_NS at any CPU poller: one handed a
 * wake may be descheduled right after (its CPU taken by a busy thread),
 * so the other pollers, and the parked handlers at each look for
 * starvation, issue what it holds too long.  Returns how many.
 */
static unsigned issue_late_handed_wakes(struct fl_engine *e)
{
	unsigned n = 0;

	for (unsigned i = 0; i < e->nr_cpu_pollers; i++) {
		struct handler *o = &e->handlers[i];

		if (atomic_load(&o->nr_wakes) &&
		    (int64_t)(lockstat_now() - atomic_load(&o->handed_at)) >
			    POLL_LATE_NS)
			n += issue_handed_wakes(o, -1);
	}
	return n;
}

/*
 * Faults parked, waiting for work in flight (a store read, the I/O
 * threads): their threads wait, and polling wakes them sooner.  Work that
 * nobody waits for (readahead ahead of a sequential reader, reclaim,
 * writeback) is not a reason to poll on: a scan kept the poller spinning
 * the whole time, and its faults took 10-15% longer on two CPUs.
 */
static int faults_waiting(struct fl_engine *e)
{
	return atomic_load(&e->faults_parked) > 0;
}

/*
 * A CPU poller polls, in the idle class, until it spun handler_poll_us
 * with no CPU poller finding anything (time it was descheduled is not
 * spinning: its CPU ran someone else), or POLL_IO_NS while a fault waits
 * for work in flight (its completions are events on their way: a read
 * slower than the budget must not end polling, and restarting costs the
 * wake-ups polling saves), or the engine stops, or they starve.
 */
static void local_poll(struct handler *h, struct fault_reserve *r,
		       struct uffd_msg *msgs)
{
	struct fl_engine *e = h->e;
	uint64_t budget = (uint64_t)e->config.handler_poll_us * 1000u;
	uint64_t spun = 0, now = lockstat_now(), found_at;
	struct local_look_state st = {.preemptions = -1}; /* first look reads */

	if (atomic_load(&e->poll_quit) || atomic_load(&e->poll_starved))
		return;
	atomic_fetch_add(&e->local_pollers, 1);
	issue_handed_wakes(h, 1);
	count_add(&e->stats, polls_idle, 1); /* first, as handler_poll */
	set_idle_class(1);
	found_at = atomic_load(&e->poll_last_found);
	while (spun < (faults_waiting(e) && budget < POLL_IO_NS ? POLL_IO_NS
								: budget) &&
	       !atomic_load(&e->poll_quit) && !atomic_load(&e->poll_starved)) {
		unsigned have = reserve_fill(r);
		uint64_t before = now;
		int found;

		atomic_fetch_add(&e->poll_beat, 1);
		if (!have)
			break;
		if (!local_mode(e))
			break; /* several threads fault: shared mode */
		now = lockstat_now();
		atomic_store(&h->looked_at, now);
		found = local_look(h, r, msgs, have, &st, now);
		if (atomic_load(&h->nr_wakes) && issue_handed_wakes(h, -1))
			found = 1;
		if (issue_late_handed_wakes(e))
			found = 1;
		now = lockstat_now();
		if (found || atomic_load(&e->poll_last_found) != found_at) {
			found_at = atomic_load(&e->poll_last_found);
			spun = 0;
		} else if (now - before < POLL_DESCHEDULED_NS) {
			spun += now - before;
			cpu_relax();
		}
	}
	atomic_store(&h->looked_at, 0);
	issue_handed_wakes(h, 0);
	set_idle_class(0);
	if (atomic_load(&e->poll_starved))
		count_add(&e->stats, polls_starved, 1);
	if (atomic_fetch_sub(&e->local_pollers, 1) == 1)
		atomic_store(&e->poll_starved, 0);
	poll_wake_others(e);
}

/* The CPUs of the process's affinity (at most max, in cpus): one CPU
 * poller each, or 0 if local polling is off (FAULTLINE_POLL_LOCAL=1 not
 * set: off by default, see docs/design.md; no polling, no idle class, one
 * CPU, or more than max). */
static unsigned local_poll_cpus(const struct fl_engine *e, int *cpus,
				unsigned max)
{
	const char *on = getenv("FAULTLINE_POLL_LOCAL");
	cpu_set_t set;
	unsigned n = 0;

	if (!on || strcmp(on, "1") || e->config.handler_poll_us <= 0 ||
	    !idle_class_usable() || sched_getaffinity(0, sizeof(set), &set) ||
	    CPU_COUNT(&set) < 2 || (unsigned)CPU_COUNT(&set) > max)
		return 0;
	for (int cpu = 0; cpu < CPU_SETSIZE && n < max; cpu++)
		if (CPU_ISSET(cpu, &set))
			cpus[n++] = cpu;
	return n;
}

enum { WOKE_UFFD = 1, WOKE_STOP = 2, WOKE_AIO = 4, WOKE_POLL = 8 };

/* An epoll descriptor watching fds[0..n) for events[i], each reported as
 * bit 1 << i in data.u32; -1 with errno if it cannot be made. */
static int epoll_watching(const int *fds, const uint32_t *events, unsigned n)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);

	for (unsigned i = 0; ep >= 0 && i < n; i++) {
		struct epoll_event ev = {.events = events[i],
					 .data.u32 = 1u << i};

		if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev)) {
			int err = errno;

			close(ep);
			errno = err;
			ep = -1;
		}
	}
	return ep;
}

/*
 * A handler's epoll descriptor: the userfaultfd and the completion eventfd
 * added exclusively, so that an event wakes one sleeping handler, not all;
 * the stop eventfd wakes all; a CPU poller's also has the start eventfd,
 * edge-triggered (each write wakes every CPU poller once; it is never
 * read).  Made before the thread starts (so that an engine's descriptors
 * are all open when fl_engine_create returns).  Returns the descriptor,
 * or -1 with errno.
 */
static int handler_epoll(struct fl_engine *e, int cpu_poller)
{
	int fds[4] = {e->uffd, e->stop_fd, aio_fd(e), e->poll_start_fd};
	uint32_t events[4] = {EPOLLIN | EPOLLEXCLUSIVE, EPOLLIN,
			      EPOLLIN | EPOLLEXCLUSIVE, EPOLLIN | EPOLLET};

	return epoll_watching(fds, events, cpu_poller ? 4 : 3);
}

/* Sleep until an event (at most 1 ms without a record: have is 0);
 * returns the WOKE_ bits of the descriptors that are ready. */
static unsigned handler_wait(int ep, unsigned have)
{
	struct epoll_event ev[4];
	unsigned woke = 0;
	int n = epoll_wait(ep, ev, 4, have ? -1 : 1);

	for (int i = 0; i < n; i++)
		woke |= ev[i].data.u32;
	return woke;
}

/* A CPU poller pinned to its CPU in local mode, free to go anywhere in
 * the process's CPU set (all the CPU pollers' CPUs) in shared mode. */
static void pin_for_mode(struct handler *h, int local)
{
	struct fl_engine *e = h->e;
	cpu_set_t set;

	if (h->cpu < 0 || h->pinned == local)
		return;
	CPU_ZERO(&set);
	if (local)
		CPU_SET(h->cpu, &set);
	else
		for (unsigned i = 0; i < e->nr_cpu_pollers; i++)
			CPU_SET(e->handlers[i].cpu, &set);
	if (!pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
		h->pinned = local;
}

/* After a handler served something: it polls, or (local polling) a CPU
 * poller polls and any other handler starts the CPU pollers. */
static void handler_served(struct handler *h, struct fault_reserve *r,
			   struct uffd_msg *msgs, int may_idle)
{
	struct fl_engine *e = h->e;
	int local = local_mode(e);

	pin_for_mode(h, local);
	if (!local) {
		handler_poll(e, r, msgs, may_idle);
		return;
	}
	local_poll_start(e);
	if (h->cpu >= 0)
		local_poll(h, r, msgs);
}

static void *handler_main(void *arg)
{
	struct handler *h = arg;
	struct fl_engine *e = h->e;
	struct uffd_msg msgs[MSGS_PER_READ];
	struct fault_reserve reserve = {.nr = 0};
	int may_park = 1, may_idle = idle_class_usable();

	if (e->nr_cpu_pollers)
		uffd_route_wakes(hand_wake, e);

	for (;;) {
		unsigned have = reserve_fill(&reserve), woke;
		int served = 0;

		/* After a park, one round on the descriptors: a burst woke
		 * this thread to help.  CPU pollers park in shared mode only.
		 */
		if (may_park && (h->cpu < 0 || !local_mode(e)) &&
		    handler_park(e)) {
			may_park = 0;
			continue;
		}
		may_park = 1;
		/* Without a record, wait for memory rather than read. */
		woke = handler_wait(h->ep, have);
		if (woke & WOKE_STOP)
			break;
		/* Store reads complete on a thread that polls their eventfd. */
		if (woke & WOKE_AIO) {
			aio_reap(e);
			served = 1;
		}
		if (have && (woke & WOKE_UFFD) &&
		    read_and_serve(e, &reserve, msgs, have))
			served = 1;
		if (served) {
			count_add(&e->stats, handler_wakeups, 1);
			handler_served(h, &reserve, msgs, may_idle);
		} else if ((woke & WOKE_POLL) && local_mode(e)) {
			pin_for_mode(h, 1);
			local_poll(h, &reserve, msgs);
		}
	}
	reserve_free(&reserve);
	return NULL;
}

/*
 * The I/O threads' epoll descriptor, one for all of them: the work queue's
 * eventfd, and the stop eventfd.  An epoll descriptor wakes one of the
 * threads waiting on it per event, not all; a woken one that leaves an
 * event ready (the stop, never read; work, until the woken thread has
 * taken its item) wakes the next, so a post may wake a short chain of
 * them, one after another.  With poll on the eventfd, each item posted
 * woke every idle I/O thread at once: a burst of faults resumed at a
 * page's unlock cost about 300 us an item with 70 of them beside a busy
 * CPU.  -1 with errno if it cannot be made.
 */
static int io_epoll(struct fl_engine *e)
{
	int fds[2] = {e->work.fd, e->stop_fd};
	uint32_t events[2] = {EPOLLIN, EPOLLIN};

	return epoll_watching(fds, events, 2);
}

/* Sleep until work is queued (0), or the engine stops or the wait fails
 * (1: the thread ends). */
static int io_wait(struct fl_engine *e)
{
	struct epoll_event ev[2];
	int n = epoll_wait(e->io_ep, ev, 2, -1);

	if (n < 0)
		return errno != EINTR;
	for (int i = 0; i < n; i++)
		if (ev[i].data.u32 == 1u << 1) /* the stop eventfd */
			return 1;
	return 0;
}

/* I/O threads run store reads (for parked faults, and readahead). */
static void *io_main(void *arg)
{
	struct fl_engine *e = arg;

	if (e->nr_cpu_pollers)
		uffd_route_wakes(hand_wake, e);
	for (;;) {
		struct work *w;

		if (io_wait(e))
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

/* Start one thread, with every signal blocked: they are the program's;
 * pinned to cpu from its start unless cpu is -1. */
static int engine_spawn(struct fl_engine *e, void *(*fn)(void *), void *arg,
			int cpu)
{
	pthread_attr_t attr;
	sigset_t all, old;
	cpu_set_t set;
	int rc;

	pthread_attr_init(&attr);
	if (cpu >= 0) {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	} else if (e->thread_cpus) {
		pthread_attr_setaffinity_np(&attr, sizeof(cpu_set_t),
					    e->thread_cpus);
	}
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&e->threads[e->nr_threads], &attr, fn, arg);
	if (rc == EINVAL && cpu >= 0) /* the CPU went meanwhile: unpinned */
		rc = pthread_create(&e->threads[e->nr_threads], NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
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

void threads_note_handoff(void)
{
	handoffs++;
}

void threads_post_work(struct fl_engine *e, struct work *w)
{
	handoffs++;
	workqueue_post(&e->work, w);
	/* A stalled store must not stall the engine: grow while short.  If
	 * a thread cannot be started, the work waits for a running one. */
	if (!io_short(e))
		return;
	pthread_mutex_lock(&e->threads_lock);
	if (!e->stopping && io_short(e) &&
	    atomic_load(&e->nr_io) < MAX_IO_THREADS &&
	    engine_spawn(e, io_main, e, -1) == 0)
		atomic_fetch_add(&e->nr_io, 1);
	pthread_mutex_unlock(&e->threads_lock);
}

int threads_start(struct fl_engine *e)
{
	int cpus[LOCAL_POLL_MAX_CPUS];
	unsigned nr, most;
	int rc = 0;

	pthread_once(&idle_class_once, idle_class_check);
	e->thread_cpus = malloc(sizeof(cpu_set_t));
	if (e->thread_cpus &&
	    sched_getaffinity(0, sizeof(cpu_set_t), e->thread_cpus)) {
		free(e->thread_cpus);
		e->thread_cpus = NULL; /* inherited, as before */
	}
	/* Local polling: a CPU poller for each CPU, and one handler more. */
	e->nr_cpu_pollers = local_poll_cpus(e, cpus, LOCAL_POLL_MAX_CPUS);
	nr = e->config.handler_threads;
	if (e->nr_cpu_pollers && nr < e->nr_cpu_pollers + 1)
		nr = e->nr_cpu_pollers + 1;
	if (e->nr_cpu_pollers) {
		e->poll_start_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (e->poll_start_fd < 0)
			return -1;
	}
	e->io_ep = io_epoll(e);
	if (e->io_ep < 0)
		return -1;
	most = nr + MAX_IO_THREADS;
	e->threads = calloc(most, sizeof(*e->threads));
	e->handlers = calloc(nr, sizeof(*e->handlers));
	if (!e->threads || !e->handlers)
		return -1;
	pthread_mutex_lock(&e->threads_lock);
	while (!rc && e->nr_handlers < nr) {
		struct handler *h = &e->handlers[e->nr_handlers];

		h->e = e;
		pthread_mutex_init(&h->wake_lock, NULL);
		h->cpu = e->nr_handlers < e->nr_cpu_pollers
				 ? cpus[e->nr_handlers]
				 : -1;
		h->pinned = h->cpu >= 0;
		h->ep = handler_epoll(e, h->cpu >= 0);
		rc = h->ep < 0 ? -1 : engine_spawn(e, handler_main, h, h->cpu);
		if (rc && h->ep >= 0)
			close(h->ep);
		if (!rc)
			e->nr_handlers++;
	}
	while (!rc && atomic_load(&e->nr_io) < e->config.io_threads &&
	       !(rc = engine_spawn(e, io_main, e, -1)))
		atomic_fetch_add(&e->nr_io, 1);
	pthread_mutex_unlock(&e->threads_lock);
	return rc;
}

/*
 * Join a handler thread.  A poller in the idle class may be starved by
 * busy CPUs, and may have entered the class just before poll_quit was set:
 * while it has not exited, it is lifted back to the normal class (every
 * millisecond, so that a late entry is lifted too).
 */
static void handler_join(pthread_t t)
{
	for (;;) {
		struct sched_param sp = {0};
		struct timespec until = deadline_after(CLOCK_REALTIME, 1000000);
		int policy;

		if (pthread_timedjoin_np(t, NULL, &until) != ETIMEDOUT)
			return;
		if (!pthread_getschedparam(t, &policy, &sp) &&
		    policy == SCHED_IDLE)
			pthread_setschedparam(t, SCHED_OTHER, &sp);
	}
}

void threads_stop(struct fl_engine *e)
{
	uint64_t one = 1;
	unsigned n;

	pthread_mutex_lock(&e->threads_lock);
	e->stopping = 1; /* from here, nr_threads cannot grow */
	n = e->nr_threads;
	pthread_mutex_unlock(&e->threads_lock);
	atomic_store(&e->poll_quit, 1); /* no poller goes idle again */
	if (n && write(e->stop_fd, &one, sizeof(one)) < 0)
		abort(); /* an eventfd write of 1 cannot fail */
	for (unsigned i = 0; i < n; i++) {
		if (i < e->nr_handlers)
			handler_join(e->threads[i]);
		else
			pthread_join(e->threads[i], NULL);
	}
	/* Handlers are the first threads: their descriptors were made. */
	for (unsigned i = 0; i < e->nr_handlers; i++) {
		close(e->handlers[i].ep);
		pthread_mutex_destroy(&e->handlers[i].wake_lock);
	}
	if (e->poll_start_fd >= 0)
		close(e->poll_start_fd);
	if (e->io_ep >= 0)
		close(e->io_ep);
	e->poll_start_fd = e->io_ep = -1;
	e->nr_handlers = 0;
	e->nr_threads = 0;
	atomic_store(&e->nr_io, 0);
	free(e->threads);
	free(e->handlers);
	free(e->thread_cpus);
	e->threads = NULL;
	e->handlers = NULL;
	e->thread_cpus = NULL;
}
