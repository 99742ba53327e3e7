// SPDX-License-Identifier: MIT
/*
 * The RETRY protocol: a fault that waits (for a store read, for a locked
 * page) holds neither the map lock nor a handler thread.  Stalls are made
 * by holding the store's reads (fl_store_faulty_hold), never by a timer;
 * every wait for an event is bounded, and only whether the event came is
 * checked, never how long it took.
 */
#define _GNU_SOURCE /* gettid */
#include "harness.h"
#include "wake_watch.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define NPAGES 64

struct held_file {
	struct h_file file;
	struct fl_store *store; /* the faulty store, owned by the object */
	fl_object *object;
	unsigned char *p;
};

static fl_engine *retry_engine(unsigned handlers, int locked)
{
	struct fl_config cfg;
	fl_engine *e;

	fl_config_init(&cfg);
	cfg.handler_threads = handlers;
	cfg.readahead_pages = 1; /* one store read per page: independent */
	cfg.fault_around_pages = 1;
	cfg.hold_map_lock_for_io = locked;
	e = h_engine_create(&cfg);
	return e;
}

static void held_open(struct held_file *h, fl_engine *e, uint32_t seed)
{
	struct fl_store *inner;

	h_file_create(&h->file, NPAGES * PG, seed);
	inner = fl_store_file_open(h->file.path, O_RDONLY);
	REQUIRE(inner != NULL);
	h->store = fl_store_faulty(inner, NULL);
	REQUIRE(h->store != NULL);
	h->object = fl_object_create(e, h->store, O_RDONLY);
	REQUIRE(h->object != NULL);
	h->p = h_map(e, NPAGES * PG, PROT_READ, MAP_SHARED, h->object, 0);
}

static void held_close(struct held_file *h, fl_engine *e)
{
	if (h->p)
		CHECK_EQ(fl_munmap(e, h->p, NPAGES * PG), 0);
	CHECK_EQ(fl_object_close(h->object), 0);
	h_file_remove(&h->file);
}

struct held_goal {
	struct fl_store *store;
	long n;
};

static int held_reached(void *arg)
{
	struct held_goal *g = arg;

	return fl_store_faulty_held(g->store) == g->n;
}

/* Wait (bounded) until n reads are held in the store. */
static int wait_held(struct fl_store *st, long n)
{
	struct held_goal g = {st, n};

	return h_wait_until(held_reached, &g);
}

/* ---- a thread that reads one page, reporting what it saw -------------- */

struct reader {
	pthread_t thread;
	const unsigned char *addr;
	uint32_t seed;
	uint64_t off;
	struct h_sig sig;
	int done, wrong;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	unsigned char v = 0;

	h_try_read(r->addr, &v, &r->sig);
	if (!r->sig.signo && v != h_pattern(r->seed, r->off))
		r->wrong = 1;
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void reader_start(struct reader *r, const unsigned char *base,
			 uint64_t off, uint32_t seed)
{
	*r = (struct reader){.addr = base + off, .seed = seed, .off = off};
	REQUIRE(pthread_create(&r->thread, NULL, reader_main, r) == 0);
}

/* ---- work that must complete while reads are held --------------------- */

struct bystander {
	fl_engine *e;
	struct held_file *same, *other;
	int done;
};

static void *bystander_main(void *arg)
{
	struct bystander *b = arg;
	unsigned char *a = fl_mmap(b->e, NULL, 8 * PG, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);

	if (a == MAP_FAILED) {
		h_fail(__FILE__, __LINE__, "fl_mmap");
	} else {
		a[PG] = 3;
		if (fl_munmap(b->e, a, 8 * PG))
			h_fail(__FILE__, __LINE__, "fl_munmap");
	}
	/* Other pages of the same object, and another object: store reads
	 * that need I/O threads although some are stuck in held reads. */
	for (int pg = 40; pg < 48; pg++) {
		if (h_mismatch(b->same->p + pg * PG, 8, 71, pg * PG) != -1)
			h_fail(__FILE__, __LINE__, "same object page %d", pg);
		if (h_mismatch(b->other->p + pg * PG, 8, 72, pg * PG) != -1)
			h_fail(__FILE__, __LINE__, "other object page %d", pg);
	}
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int flag_set(void *flag)
{
	return __atomic_load_n((int *)flag, __ATOMIC_ACQUIRE);
}

static int wait_done(int *flag)
{
	return h_wait_until(flag_set, flag);
}

/*
 * More faults stall on a held store than there are handler threads: reads
 * of four pages are held, and two more faults wait on one of those pages.
 * Mapping, unmapping and faults elsewhere go on all the same.
 */
TEST(stalled_store_does_not_stall_engine)
{
	fl_engine *e = retry_engine(2, 0);
	struct held_file same = {0}, other = {0};
	struct reader r[6];
	struct bystander b;
	pthread_t bt;

	held_open(&same, e, 71);
	held_open(&other, e, 72);
	CHECK_EQ(fl_store_faulty_hold(same.store, 0, 4 * PG), 0);
	for (int i = 0; i < 4; i++)
		reader_start(&r[i], same.p, i * PG + 9, 71);
	REQUIRE(wait_held(same.store, 4));
	reader_start(&r[4], same.p, 2 * PG + 100, 71); /* wait on page 2 */
	reader_start(&r[5], same.p, 3 * PG + 200, 71); /* and on page 3 */
	b = (struct bystander){e, &same, &other, 0};
	REQUIRE(pthread_create(&bt, NULL, bystander_main, &b) == 0);
	CHECK(wait_done(&b.done));
	CHECK_EQ(fl_store_faulty_held(same.store), 4); /* still held */
	for (int i = 0; i < 6; i++)
		CHECK_EQ(__atomic_load_n(&r[i].done, __ATOMIC_ACQUIRE), 0);
	CHECK_EQ(fl_store_faulty_release(same.store), 0);
	pthread_join(bt, NULL);
	for (int i = 0; i < 6; i++) {
		pthread_join(r[i].thread, NULL);
		CHECK_EQ(r[i].sig.signo, 0);
		CHECK_EQ(r[i].wrong, 0);
	}
	CHECK_EQ(h_estats(e).errors, 0);
	held_close(&same, e);
	held_close(&other, e);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

struct count_goal {
	fl_engine *e;
	uint64_t n;
};

static int pages_read_reached(void *arg)
{
	struct count_goal *g = arg;

	return h_estats(g->e).pages_read >= g->n;
}

/* Wait (bounded) until the engine has read n pages. */
static int wait_pages_read(fl_engine *e, uint64_t n)
{
	struct count_goal g = {e, n};

	h_wait_until(pages_read_reached, &g);
	return h_estats(e).pages_read == n;
}

/* ---- a window's wake-up leaves its holes alone ------------------------- */

/*
 * Fault-around maps the cached pages of a window and wakes the threads
 * waiting there, but not one waiting at a page of the window still being
 * read: woken, it would fault again and park a second record on the page.
 * Records so multiplied without end under load (each resumed one woke the
 * next page's waiter again), until the engine did nothing but wake them.
 */
TEST(fault_around_wakes_only_what_it_maps)
{
	struct fl_config cfg;
	struct held_file h = {0};
	struct wake_watch watch;
	struct reader r;
	fl_engine *e;

	fl_config_init(&cfg);
	cfg.handler_threads = 2;
	cfg.readahead_pages = 1; /* each miss reads its own page */
	cfg.fault_around_pages = 16;
	e = h_engine_create(&cfg);
	held_open(&h, e, 77);
	/* Pages 0-15 but 5 cached, then unmapped (they stay cached). */
	for (int pg = 0; pg < 16; pg++)
		if (pg != 5)
			CHECK_EQ(h_mismatch(h.p + pg * PG, 1, 77, pg * PG), -1);
	CHECK_EQ(fl_madvise(e, h.p, 16 * PG, MADV_DONTNEED), 0);
	/* A thread waits at page 5, whose read is held. */
	CHECK_EQ(fl_store_faulty_hold(h.store, 5 * PG, PG), 0);
	reader_start(&r, h.p, 5 * PG + 9, 77);
	REQUIRE(wait_held(h.store, 1));
	/* A fault at page 0 maps its window, [0, 16) but page 5: page 6's
	 * waiters are woken (maybe after the faulting thread, by a handler
	 * preempted between two wakes), page 5's never. */
	wake_watch_start(&watch, h.p + 5 * PG, h.p + 6 * PG);
	CHECK_EQ(h_mismatch(h.p, 1, 77, 0), -1);
	CHECK_EQ(wake_watch_end(&watch), WOKE_MAPPED);
	CHECK_EQ(fl_store_faulty_held(h.store), 1);
	CHECK_EQ(fl_store_faulty_release(h.store), 0);
	pthread_join(r.thread, NULL);
	CHECK_EQ(r.sig.signo, 0);
	CHECK_EQ(r.wrong, 0);
	CHECK_EQ(h_estats(e).errors, 0);
	held_close(&h, e);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/* Unmap while a fault waits on a held read: the unmap completes without
 * waiting for the read; the faulting thread then finds the range gone. */
TEST(unmap_while_fault_waits)
{
	fl_engine *e = retry_engine(2, 0);
	struct held_file h = {0};
	struct reader r;
	struct fl_stats s;

	held_open(&h, e, 73);
	CHECK_EQ(fl_store_faulty_hold(h.store, 5 * PG, PG), 0);
	reader_start(&r, h.p, 5 * PG + 1, 73);
	REQUIRE(wait_held(h.store, 1));
	CHECK_EQ(fl_munmap(e, h.p, NPAGES * PG), 0);
	h.p = NULL;
	CHECK_EQ(fl_store_faulty_held(h.store), 1); /* the read still waits */
	CHECK_EQ(fl_store_faulty_release(h.store), 0);
	pthread_join(r.thread, NULL);
	CHECK_EQ(r.sig.signo, SIGSEGV);
	/* The read finishes, into the cache, for nobody: wait for it. */
	CHECK(wait_pages_read(e, 1));
	s = h_estats(e);
	CHECK_EQ(s.errors, 0);
	CHECK_EQ(s.pages_read, 1);
	held_close(&h, e);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/* MAP_FIXED replaces the range while a fault waits: the faulting thread
 * then sees the new mapping (anonymous zeros), as with mmap. */
TEST(map_fixed_replace_while_fault_waits)
{
	fl_engine *e = retry_engine(2, 0);
	struct held_file h = {0};
	struct reader r;
	unsigned char *a;

	held_open(&h, e, 74);
	CHECK_EQ(fl_store_faulty_hold(h.store, 7 * PG, PG), 0);
	reader_start(&r, h.p, 7 * PG + 3, 74);
	REQUIRE(wait_held(h.store, 1));
	a = fl_mmap(e, h.p, NPAGES * PG, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, NULL, 0);
	CHECK(a == h.p);
	CHECK_EQ(fl_store_faulty_release(h.store), 0);
	pthread_join(r.thread, NULL);
	CHECK_EQ(r.sig.signo, 0);
	/* It read the anonymous page that now stands there: zero, not the
	 * file's byte (reader checks the pattern, so expect "wrong"). */
	CHECK_EQ(r.wrong, h_pattern(74, 7 * PG + 3) != 0);
	CHECK_EQ(a[7 * PG + 3], 0);
	CHECK_EQ(fl_munmap(e, a, NPAGES * PG), 0);
	h.p = NULL;
	held_close(&h, e);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

static int fault_attempts_reached(void *arg)
{
	struct count_goal *g = arg;
	struct fl_lock_stats ls;

	REQUIRE(fl_engine_lock_stats(g->e, &ls) == 0);
	return ls.fault_holds >= g->n;
}

/* Wait (bounded) until n fault attempts have let go of the map lock. */
static int wait_fault_attempts(fl_engine *e, uint64_t n)
{
	struct count_goal g = {e, n};

	return h_wait_until(fault_attempts_reached, &g);
}

static int retries_reached(void *arg)
{
	struct count_goal *g = arg;

	return h_estats(g->e).retries >= g->n;
}

/* Wait (bounded) until the engine has counted n retries. */
static int wait_retries(fl_engine *e, uint64_t n)
{
	struct count_goal g = {e, n};

	return h_wait_until(retries_reached, &g);
}

/* A fault that reads is retried once; one that waits for the page the
 * first is reading is retried once too; each counts once, as major. */
TEST(retries_and_majors_counted_once)
{
	fl_engine *e = retry_engine(2, 0);
	struct held_file h = {0};
	struct reader r1, r2;
	struct fl_stats s;

	held_open(&h, e, 75);
	CHECK_EQ(fl_store_faulty_hold(h.store, 9 * PG, PG), 0);
	CHECK_EQ(fl_engine_lock_stats_reset(e), 0);
	reader_start(&r1, h.p, 9 * PG + 1, 75);
	REQUIRE(wait_held(h.store, 1));
	reader_start(&r2, h.p, 9 * PG + 2, 75);
	/*
	 * Release the read only once the second fault has found the page
	 * locked and parked: that is its first attempt letting go of the map
	 * lock (the first fault's made the read, and the read is held).  Its
	 * message merely arriving is not enough: a handler delayed between
	 * reading the message and looking at the page would find it mapped,
	 * and the fault would rightly count as nothing.
	 */
	REQUIRE(wait_fault_attempts(e, 2));
	CHECK_EQ(fl_store_faulty_release(h.store), 0);
	pthread_join(r1.thread, NULL);
	pthread_join(r2.thread, NULL);
	CHECK_EQ(r1.wrong + r2.wrong, 0);
	/* A parked fault is counted as retried when it resumes, which may
	 * be after the other fault's resolution has woken its thread. */
	CHECK(wait_retries(e, 2));
	s = h_estats(e);
	CHECK_EQ(s.fault_messages, 2);
	CHECK_EQ(s.major_faults, 2);
	CHECK_EQ(s.minor_faults, 0);
	CHECK_EQ(s.retries, 2);
	CHECK_EQ(s.pages_read, 1);
	CHECK_EQ(h_mstats(e, h.p).major_faults, 2);
	held_close(&h, e);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

static void on_usr1(int sig)
{
	(void)sig;
}

/* Start a reader of page 11, whose read is held, with handler for SIGUSR1
 * (the old action in *old), and wait until its fault let the lock go. */
static void held_reader_start(struct held_file *h, fl_engine *e,
			      struct reader *r, void (*handler)(int),
			      struct sigaction *old, uint32_t seed)
{
	struct sigaction sa = {.sa_handler = handler};

	CHECK_EQ(fl_store_faulty_hold(h->store, 11 * PG, PG), 0);
	REQUIRE(sigaction(SIGUSR1, &sa, old) == 0);
	CHECK_EQ(fl_engine_lock_stats_reset(e), 0);
	reader_start(r, h->p, 11 * PG + 1, seed);
	REQUIRE(wait_held(h->store, 1));
	REQUIRE(wait_fault_attempts(e, 1));
}

/*
 * A signal ends a faulting thread's wait in the kernel: it runs its
 * handler and faults again on the same access, a new message for a page
 * its first fault is still reading.  However often that happens, the
 * access is one fault (major) and, when the read fails, one error and one
 * SIGBUS: the repeats are neither counted, nor parked, nor served (parked,
 * one could resume between the failed read and the poison, read the page
 * again and fail: 2 errors, once in a CI run).
 */
TEST(a_fault_repeated_after_signals_counts_once)
{
	fl_engine *e = retry_engine(2, 0);
	struct held_file h = {0};
	struct fl_store_faults bad = {.fail_offset = 11 * PG,
				      .fail_length = PG};
	struct sigaction old;
	struct reader r;
	struct fl_stats s;

	held_open(&h, e, 76);
	CHECK_EQ(fl_store_faulty_set(h.store, &bad), 0);
	held_reader_start(&h, e, &r, on_usr1, &old, 76);
	for (int i = 1; i <= 3; i++) { /* each repeat is answered */
		REQUIRE(pthread_kill(r.thread, SIGUSR1) == 0);
		REQUIRE(wait_fault_attempts(e, 1 + (uint64_t)i));
	}
	CHECK_EQ(fl_store_faulty_release(h.store), 0);
	pthread_join(r.thread, NULL);
	CHECK_EQ(r.sig.signo, SIGBUS);
	s = h_estats(e);
	CHECK_EQ(s.fault_messages, 4);
	CHECK_EQ(s.retries, 1); /* the first fault's, after its read */
	CHECK_EQ(s.major_faults, 1);
	CHECK_EQ(s.minor_faults, 0);
	CHECK_EQ(s.errors, 1);
	CHECK_EQ(s.pages_read, 0);
	CHECK_EQ(h_mstats(e, h.p).major_faults, 1);
	REQUIRE(sigaction(SIGUSR1, &old, NULL) == 0);
	held_close(&h, e);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

static const volatile unsigned char *handler_addr;
static volatile unsigned char handler_val;
static volatile int handler_done;

static void on_usr1_read(int sig)
{
	(void)sig;
	handler_val = *handler_addr;
	__atomic_store_n(&handler_done, 1, __ATOMIC_RELEASE);
}

static int handler_finished(void *arg)
{
	(void)arg;
	return __atomic_load_n(&handler_done, __ATOMIC_ACQUIRE);
}

/*
 * A signal handler that touches the page its thread is faulting on, through
 * another mapping of the object, makes a fault of the same thread on the
 * same page while its read is in flight, at another address: not a repeat
 * of the first fault (whose wake is for its own address only), but a fault
 * of its own that waits for the read and is served.  Taken for a repeat,
 * it was never woken: the thread hung in its handler.
 */
TEST(a_signal_handler_faulting_the_same_page_elsewhere_is_served)
{
	fl_engine *e = retry_engine(2, 0);
	struct held_file h = {0};
	struct sigaction old;
	struct reader r;
	struct fl_stats s;
	unsigned char *b;

	held_open(&h, e, 79);
	b = h_map(e, NPAGES * PG, PROT_READ, MAP_SHARED, h.object, 0);
	handler_addr = b + 11 * PG + 2;
	handler_done = 0;
	held_reader_start(&h, e, &r, on_usr1_read, &old, 79);
	REQUIRE(pthread_kill(r.thread, SIGUSR1) == 0);
	REQUIRE(wait_fault_attempts(e, 2)); /* the handler's fault */
	CHECK_EQ(fl_store_faulty_release(h.store), 0);
	REQUIRE(h_wait_until(handler_finished, NULL)); /* else it hangs */
	pthread_join(r.thread, NULL);
	CHECK_EQ(r.sig.signo, 0);
	CHECK_EQ(r.wrong, 0);
	CHECK_EQ(handler_val, h_pattern(79, 11 * PG + 2));
	s = h_estats(e);
	/* Both faults waited for the read; the thread's fault at its first
	 * address again, if it came after the page was read and before its
	 * first fault mapped it, is a minor fault of its own. */
	CHECK_EQ(s.major_faults, 2);
	CHECK_LE(s.minor_faults, 1);
	CHECK_EQ(s.errors, 0);
	CHECK_EQ(s.pages_read, 1);
	REQUIRE(sigaction(SIGUSR1, &old, NULL) == 0);
	CHECK_EQ(fl_munmap(e, b, NPAGES * PG), 0);
	held_close(&h, e);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/* Lock statistics count what happened, are ordered, and reset. */
TEST(lock_stats)
{
	fl_engine *e = retry_engine(2, 0);
	struct held_file h = {0};
	struct fl_lock_stats ls;

	held_open(&h, e, 76);
	CHECK_EQ(h_mismatch(h.p, 4 * PG, 76, 0), -1);
	CHECK_EQ(fl_engine_lock_stats(e, &ls), 0);
	CHECK_GE(ls.fault_holds, 4);
	CHECK_GE(ls.map_waits, 1); /* the fl_mmap */
	CHECK_LE(ls.fault_hold_p50_ns, ls.fault_hold_p99_ns);
	CHECK_LE(ls.map_wait_p50_ns, ls.map_wait_p99_ns);
	CHECK_GT(ls.fault_hold_max_ns, 0);
	CHECK_EQ(fl_engine_lock_stats_reset(e), 0);
	CHECK_EQ(fl_engine_lock_stats(e, &ls), 0);
	CHECK_EQ(ls.fault_holds, 0);
	CHECK_EQ(ls.map_waits, 0);
	CHECK_EQ(ls.fault_hold_max_ns, 0);
	CHECK_ERR(fl_engine_lock_stats(NULL, &ls), EINVAL);
	CHECK_ERR(fl_engine_lock_stats(e, NULL), EINVAL);
	CHECK_ERR(fl_engine_lock_stats_reset(NULL), EINVAL);
	held_close(&h, e);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

struct mapper {
	fl_engine *e;
	pid_t tid;
	int done;
};

static void *mapper_main(void *arg)
{
	struct mapper *m = arg;
	void *a;

	__atomic_store_n(&m->tid, gettid(), __ATOMIC_RELEASE);
	a = fl_mmap(m->e, NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS,
		    NULL, 0);

	if (a == MAP_FAILED || fl_munmap(m->e, a, PG))
		h_fail(__FILE__, __LINE__, "map/unmap");
	__atomic_store_n(&m->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int mapper_started(void *arg)
{
	return __atomic_load_n(&((struct mapper *)arg)->tid, __ATOMIC_ACQUIRE);
}

/*
 * The comparison mode keeps the map lock across store reads: a map waits
 * for the held read (the default, above, does not).  What is checked is
 * that the map, once its thread has blocked, had not completed while the
 * read was held.
 */
TEST(locked_mode_holds_map_lock_across_reads)
{
	fl_engine *e = retry_engine(2, 1);
	struct held_file h = {0};
	struct reader r;
	struct mapper m = {e, 0, 0};
	pthread_t mt;

	held_open(&h, e, 77);
	CHECK_EQ(fl_store_faulty_hold(h.store, 3 * PG, PG), 0);
	reader_start(&r, h.p, 3 * PG + 5, 77);
	REQUIRE(wait_held(h.store, 1));
	REQUIRE(pthread_create(&mt, NULL, mapper_main, &m) == 0);
	/* Its thread asleep: in the map lock, as nothing else sleeps there */
	CHECK(h_wait_until(mapper_started, &m));
	CHECK(h_wait_thread_blocked(m.tid));
	CHECK_EQ(__atomic_load_n(&m.done, __ATOMIC_ACQUIRE), 0);
	CHECK_EQ(fl_store_faulty_release(h.store), 0);
	pthread_join(mt, NULL);
	pthread_join(r.thread, NULL);
	CHECK_EQ(m.done, 1);
	CHECK_EQ(r.wrong, 0);
	held_close(&h, e);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/* ---- stress: faults, unmaps, remaps and drops of the same ranges ------- */

/* Each thread goes on for the run's second and at least this many rounds:
 * on a busy machine a thread may get the CPU only after the second. */
#define CHURN_MIN_ROUNDS 50

struct churn {
	fl_engine *e;
	unsigned char *p;
	uint32_t seed;
	double end;
	unsigned long faults, unmaps;
};

static void churn_reader(struct churn *c, unsigned seed)
{
	for (int round = 0;
	     (round < CHURN_MIN_ROUNDS || h_now() < c->end) && !h_failures();
	     round++) {
		unsigned pg = (unsigned)rand_r(&seed) % NPAGES;
		unsigned char v;
		struct h_sig sig;

		/* A range being remapped can be briefly gone: SIGSEGV. */
		if (h_try_read(c->p + pg * PG + 17, &v, &sig) == 0 &&
		    !sig.signo && v != h_pattern(c->seed, pg * PG + 17)) {
			h_fail(__FILE__, __LINE__, "page %u wrong", pg);
			return;
		}
		__atomic_fetch_add(&c->faults, 1, __ATOMIC_RELAXED);
	}
}

static void churn_remapper(struct churn *c, fl_object *o, unsigned seed)
{
	for (int round = 0;
	     (round < CHURN_MIN_ROUNDS || h_now() < c->end) && !h_failures();
	     round++) {
		unsigned pg = (unsigned)rand_r(&seed) % (NPAGES - 8);
		unsigned char *at = c->p + pg * PG;

		if (fl_munmap(c->e, at, 8 * PG) ||
		    fl_mmap(c->e, at, 8 * PG, PROT_READ, MAP_SHARED | MAP_FIXED,
			    o, (off_t)pg * PG) != at)
			h_fail(__FILE__, __LINE__, "remap at page %u", pg);
		if (fl_madvise(c->e, c->p, NPAGES * PG, MADV_DONTNEED))
			h_fail(__FILE__, __LINE__, "MADV_DONTNEED");
		__atomic_fetch_add(&c->unmaps, 1, __ATOMIC_RELAXED);
	}
}

struct churn_args {
	struct churn *c;
	fl_object *o;
};

static void churn_thread(int idx, void *arg)
{
	struct churn_args *a = arg;

	if (idx == 0)
		churn_remapper(a->c, a->o, 1234);
	else
		churn_reader(a->c, (unsigned)idx * 77);
}

TEST(unmap_remap_drop_race_slow_store)
{
	fl_engine *e = retry_engine(2, 0);
	struct held_file h = {0};
	struct fl_store_faults slow = {
		.read_delay_us = 100, .read_jitter_us = 400, .seed = 9};
	struct churn c;
	struct churn_args a;
	struct fl_stats s;

	held_open(&h, e, 78);
	CHECK_EQ(fl_store_faulty_set(h.store, &slow), 0);
	c = (struct churn){e, h.p, 78, h_now() + 1.0, 0, 0};
	a = (struct churn_args){&c, h.object};
	h_run_threads(5, churn_thread, &a);
	CHECK_GT(c.faults, 0);
	CHECK_GT(c.unmaps, 0);
	/* Every page still reads right once the dust settles. */
	CHECK_EQ(h_mismatch(h.p, NPAGES * PG, 78, 0), -1);
	s = h_estats(e);
	CHECK_EQ(s.errors, 0);
	CHECK_EQ(s.dirty_pages, 0);
	CHECK_EQ(s.private_pages, 0);
	held_close(&h, e);
	CHECK_EQ(fl_engine_destroy(e), 0);
}
