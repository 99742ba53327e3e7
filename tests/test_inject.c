// SPDX-License-Identifier: MIT
/*
 * The failure-injection sweep.  For each injection point (tests/inject.h)
 * and each errno the real call can fail with, the nth call from the start
 * of a scenario fails, for n = 1..8 and then powers of two up to the number
 * of calls the scenario makes; a few runs fail every call from the nth on.
 * Each run is a forked child with a time limit, so a crash or a hang is
 * caught and told with its point, n, errno and scenario.
 *
 * Scenarios: a shared file mapping read, written, synced and the file
 * checked; a private mapping with copy-on-write; anonymous memory; a memory
 * group far smaller than its data (reclaim and writeback); a faulty store
 * whose reads fail (SIGBUS); mappings replaced while other threads fault.
 *
 * What a run must show, whatever failed under it: no crash and no hang;
 * every access either returns the right data or gets SIGBUS (SIGSEGV where
 * nothing is mapped); every call that fails returns -1 (NULL, MAP_FAILED)
 * with errno set; fl_engine_destroy returns; no charge is left
 * (FAULTLINE_CHECK_CHARGES=1 aborts), no fd and no thread; nothing leaks
 * (LeakSanitizer, in the sanitizer builds, unless FL_INJECT_LEAK_CHECK=0);
 * data the calls said was written is in the file.
 *
 * One case per injection point.  To repeat one run (the sweep prints the
 * command for each failure):
 *   FL_INJECT=uffd_copy:3:EEXIST[:from] FL_INJECT_SCENARIO=shared \
 *       build/tests/test_inject uffd_copy
 * FL_INJECT_NOFORK=1 (with FL_TEST_NOFORK=1) runs it in-process, for gdb.
 * FL_INJECT_GDB=1 adds the threads' backtraces of a hung run (gdb).
 * FL_INJECT_FULL=1 sweeps every n, not a sample; FL_INJECT_JOBS=N runs N
 * runs at a time (default 2); FL_INJECT_TIMEOUT=seconds per run
 * (default H_WAIT_SECONDS: a run takes well under a second, also under
 * the sanitizers, but a busy machine may delay it by seconds);
 * FL_INJECT_LEAK_CHECK=0: the runs do not check for leaks as they exit.
 */
#define _GNU_SOURCE
#include "harness.h"
#include "inject.h"

#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- errnos ---------------------------------------------------------- */

struct errname {
	int err;
	const char *name;
};

static const struct errname errnames[] = {
	{EAGAIN, "EAGAIN"}, {EEXIST, "EEXIST"}, {ENOMEM, "ENOMEM"},
	{ESRCH, "ESRCH"},   {ENOENT, "ENOENT"}, {EIO, "EIO"},
	{EINTR, "EINTR"},   {EMFILE, "EMFILE"}, {ENOSPC, "ENOSPC"},
	{EINVAL, "EINVAL"},
};

static const char *err_name(int err)
{
	for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
		if (errnames[i].err == err)
			return errnames[i].name;
	return "E?";
}

static int err_by_name(const char *name)
{
	for (size_t i = 0; i < sizeof(errnames) / sizeof(errnames[0]); i++)
		if (strcmp(errnames[i].name, name) == 0)
			return errnames[i].err;
	return atoi(name);
}

/*
 * The errnos each point is failed with: those the real call can return.
 * The resolving ioctls: EAGAIN (an mm change in flight), EEXIST (populated
 * already: tests/inject.c populates it first), ENOMEM, ESRCH (the mm is
 * exiting), ENOENT (the range is no longer registered).  Write-protect: all
 * but EEXIST.  Registration: ENOMEM (a vma split), EINVAL.  UFFDIO_API
 * fails only for a bad request (EINVAL).  UFFDIO_WAKE is not swept: it
 * fails only for a malformed range, never for lack of anything.  The
 * io_uring submit: EAGAIN or ENOMEM (no request or task context could be
 * allocated; the kernel took nothing).
 */
static const int resolve_errs[] = {EAGAIN, EEXIST, ENOMEM, ESRCH, ENOENT, 0};
static const int wp_errs[] = {EAGAIN, ENOMEM, ESRCH, ENOENT, 0};
static const int register_errs[] = {ENOMEM, EINVAL, 0};
static const int inval_errs[] = {EINVAL, 0};
static const int nomem_errs[] = {ENOMEM, 0};
static const int madvise_errs[] = {ENOMEM, EAGAIN, 0};
static const int again_errs[] = {EAGAIN, 0};
static const int io_errs[] = {EIO, ENOMEM, 0};
static const int mfile_errs[] = {EMFILE, 0};
static const int nospc_errs[] = {ENOSPC, 0};
static const int submit_errs[] = {EAGAIN, ENOMEM, 0};

static const int *point_errs(enum inject_point point)
{
	switch (point) {
	case INJ_UFFD_COPY:
	case INJ_UFFD_ZEROPAGE:
	case INJ_UFFD_CONTINUE:
	case INJ_UFFD_POISON:
		return resolve_errs;
	case INJ_UFFD_WRITEPROTECT:
		return wp_errs;
	case INJ_UFFD_REGISTER:
	case INJ_UFFD_UNREGISTER:
		return register_errs;
	case INJ_UFFD_API:
		return inval_errs;
	case INJ_MADVISE:
		return madvise_errs;
	case INJ_PTHREAD_CREATE:
		return again_errs;
	case INJ_FALLOCATE:
		return io_errs;
	case INJ_MEMFD_CREATE:
	case INJ_EVENTFD:
		return mfile_errs;
	case INJ_FTRUNCATE:
		return nospc_errs;
	case INJ_IO_URING_SUBMIT:
		return submit_errs;
	default:
		return nomem_errs;
	}
}

/* For runs where every call from the nth on fails: a lasting shortage
 * (ENOMEM) where the call can have one, not a passing EAGAIN. */
static int lasting_err(const int *errs)
{
	for (int k = 0; errs[k]; k++)
		if (errs[k] == ENOMEM)
			return ENOMEM;
	return errs[0];
}

/* ---- guarded accesses ------------------------------------------------ */

/*
 * Copy between a mapping and memory of our own, catching SIGBUS and
 * SIGSEGV: a page can be evicted and faulted again at any moment, so the
 * whole copy is guarded, not one probe.  Outside a guarded copy the signal
 * kills the run (reported as a crash).
 */
static __thread sigjmp_buf *guard_env;
static __thread volatile int guard_sig;

static void on_guard_signal(int signo, siginfo_t *si, void *uc)
{
	sigjmp_buf *env = guard_env;

	if (env) {
		guard_env = NULL;
		guard_sig = signo;
		siglongjmp(*env, 1);
	}
	signal(signo, SIG_DFL); /* the access runs again and kills us */
}

static void install_guard(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_guard_signal;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);
}

/* 0 if len bytes were copied, else the signal that stopped the copy. */
static __attribute__((noinline)) int guarded_copy(void *dst, const void *src,
						  size_t len)
{
	sigjmp_buf env;

	if (sigsetjmp(env, 1))
		return guard_sig;
	guard_env = &env;
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	for (size_t i = 0; i < len; i++)
		((volatile unsigned char *)dst)[i] =
			((const volatile unsigned char *)src)[i];
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	guard_env = NULL;
	return 0;
}

/* ---- what a run checks --------------------------------------------------- */

/* An API call failed: it must say why. */
#define FAILED_CLEANLY(call)                                                   \
	do {                                                                   \
		if (errno == 0)                                                \
			h_fail(__FILE__, __LINE__, "%s failed with errno 0",   \
			       call);                                          \
	} while (0)

/* A call that returns 0 or -1 with errno; returns whether it succeeded. */
static int ok_or_errno(int rc, const char *call, const char *file, int line)
{
	if (rc == 0)
		return 1;
	if (rc != -1)
		h_fail(file, line, "%s returned %d", call, rc);
	else if (errno == 0)
		h_fail(file, line, "%s failed with errno 0", call);
	return 0;
}

#define OK(call) (errno = 0, ok_or_errno((call), #call, __FILE__, __LINE__))

static fl_engine *engine(void)
{
	struct fl_config c;
	fl_engine *e;

	fl_config_init(&c);
	c.handler_threads = 2;
	c.fault_around_pages = 16;
	c.readahead_pages = 8;
	c.io_threads = 1;
	errno = 0;
	e = fl_engine_create(&c);
	if (!e)
		FAILED_CLEANLY("fl_engine_create");
	return e;
}

static void *map(fl_engine *e, fl_group *g, size_t len, int prot, int flags,
		 fl_object *o)
{
	void *p;

	errno = 0;
	p = fl_mmap_group(e, g, NULL, len, prot, flags, o, 0);
	if (p == MAP_FAILED) {
		FAILED_CLEANLY("fl_mmap");
		return NULL;
	}
	return p;
}

static fl_object *open_file(fl_engine *e, const struct h_file *f)
{
	fl_object *o;

	errno = 0;
	o = fl_object_open(e, f->path, O_RDWR);
	if (!o)
		FAILED_CLEANLY("fl_object_open");
	return o;
}

/*
 * Read len bytes at p (file offset off) and check them against the
 * pattern of seed, or zeros for seed 0.  Returns 0 if read (and checked),
 * else the signal.
 */
static int read_check(const unsigned char *p, size_t len, uint32_t seed,
		      uint64_t off)
{
	unsigned char buf[PG];
	long bad;

	for (size_t done = 0; done < len; done += PG) {
		int sig = guarded_copy(buf, p + done, PG);

		if (sig)
			return sig;
		bad = seed ? h_mismatch(buf, PG, seed, off + done)
			   : h_nonzero(buf, PG);
		if (bad != -1) {
			h_fail(__FILE__, __LINE__,
			       "wrong data at offset %llu: 0x%02x, expected "
			       "0x%02x",
			       (unsigned long long)(off + done + (size_t)bad),
			       buf[bad],
			       seed ? h_pattern(seed, off + done + (size_t)bad)
				    : 0);
			return -1;
		}
	}
	return 0;
}

/* Read one page at p (file offset off) that a write interrupted by a
 * signal may have changed in part: every byte old's or new's.  Returns 0
 * if read (and checked), else the signal. */
static int read_check_torn(const unsigned char *p, uint32_t old, uint32_t new,
			   uint64_t off)
{
	unsigned char buf[PG];
	int sig = guarded_copy(buf, p, PG);

	if (sig)
		return sig;
	for (size_t i = 0; i < PG; i++)
		if (buf[i] != h_pattern(old, off + i) &&
		    buf[i] != h_pattern(new, off + i)) {
			h_fail(__FILE__, __LINE__,
			       "wrong data at offset %llu: 0x%02x, neither old "
			       "0x%02x nor new 0x%02x",
			       (unsigned long long)(off + i), buf[i],
			       h_pattern(old, off + i),
			       h_pattern(new, off + i));
			return -1;
		}
	return 0;
}

/* Write the pattern of seed into one page; 0 or the signal. */
static int write_page(unsigned char *p, uint32_t seed, uint64_t off)
{
	unsigned char buf[PG];

	h_fill(buf, PG, seed, off);
	return guarded_copy(p, buf, PG);
}

/* Every byte of the file is the old pattern or the new one; pages in
 * must_be_new wholly the new one. */
static void check_file(const struct h_file *f, uint32_t old, uint32_t new,
		       const unsigned char *must_be_new)
{
	unsigned char buf[PG];

	for (uint64_t pg = 0; pg < f->size / PG; pg++) {
		REQUIRE(h_pread(f->path, buf, PG, pg * PG) == PG);
		for (size_t i = 0; i < PG; i++) {
			unsigned char o = h_pattern(old, pg * PG + i);
			unsigned char n = h_pattern(new, pg * PG + i);

			if ((must_be_new && must_be_new[pg] && buf[i] != n) ||
			    (buf[i] != o && buf[i] != n)) {
				h_fail(__FILE__, __LINE__,
				       "file page %llu byte %zu: 0x%02x (old "
				       "0x%02x, new 0x%02x%s)",
				       (unsigned long long)pg, i, buf[i], o, n,
				       must_be_new && must_be_new[pg]
					       ? ", written and synced"
					       : "");
				return;
			}
		}
	}
}

/* ---- scenarios --------------------------------------------------------- */

#define FILE_PAGES 32
#define SEED_OLD   71
#define SEED_NEW   72

/* A shared file mapping: read, write every other page, read back, sync;
 * the file holds what was written if every call said so. */
static void sc_shared(void)
{
	unsigned char written[FILE_PAGES] = {0};
	int all_ok = 1;
	struct h_file f;
	fl_engine *e;
	fl_object *o;
	unsigned char *p;

	h_file_create(&f, FILE_PAGES * PG, SEED_OLD);
	if (!(e = engine()))
		goto out;
	if (!(o = open_file(e, &f))) {
		all_ok = 0;
		goto destroy;
	}
	p = map(e, NULL, FILE_PAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED,
		o);
	if (p) {
		for (int pg = 0; pg < FILE_PAGES; pg++)
			read_check(p + pg * PG, PG, SEED_OLD, pg * PG);
		for (int pg = 0; pg < FILE_PAGES; pg += 2)
			written[pg] =
				!write_page(p + pg * PG, SEED_NEW, pg * PG);
		for (int pg = 0; pg < FILE_PAGES; pg++)
			read_check(p + pg * PG, PG,
				   written[pg] ? SEED_NEW : SEED_OLD, pg * PG);
		all_ok &= OK(fl_msync(e, p, FILE_PAGES * PG, MS_SYNC));
		all_ok &= OK(fl_munmap(e, p, FILE_PAGES * PG));
	} else {
		all_ok = 0;
	}
	all_ok &= OK(fl_object_close(o));
destroy:
	all_ok &= OK(fl_engine_destroy(e));
	check_file(&f, SEED_OLD, SEED_NEW, all_ok ? written : NULL);
out:
	h_file_remove(&f);
}

/* A private mapping: stores make copies nobody else sees; the file and a
 * shared view keep the old data. */
static void sc_private(void)
{
	unsigned char written[FILE_PAGES] = {0};
	struct h_file f;
	fl_engine *e;
	fl_object *o;
	unsigned char *p, *s;

	h_file_create(&f, FILE_PAGES * PG, SEED_OLD);
	if (!(e = engine()))
		goto out;
	if (!(o = open_file(e, &f)))
		goto destroy;
	p = map(e, NULL, FILE_PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE,
		o);
	s = map(e, NULL, FILE_PAGES * PG, PROT_READ, MAP_SHARED, o);
	if (p) {
		for (int pg = 0; pg < FILE_PAGES; pg += 3)
			read_check(p + pg * PG, PG, SEED_OLD, pg * PG);
		for (int pg = 0; pg < FILE_PAGES; pg += 2)
			written[pg] =
				!write_page(p + pg * PG, SEED_NEW, pg * PG);
		for (int pg = 0; pg < FILE_PAGES; pg++)
			read_check(p + pg * PG, PG,
				   written[pg] ? SEED_NEW : SEED_OLD, pg * PG);
	}
	if (s)
		for (int pg = 0; pg < FILE_PAGES; pg++)
			read_check(s + pg * PG, PG, SEED_OLD, pg * PG);
	if (p)
		OK(fl_munmap(e, p, FILE_PAGES * PG));
	if (s)
		OK(fl_munmap(e, s, FILE_PAGES * PG));
	OK(fl_object_close(o));
destroy:
	OK(fl_engine_destroy(e));
	check_file(&f, SEED_OLD, SEED_OLD, NULL);
out:
	h_file_remove(&f);
}

#define ANON_PAGES 64

/* Anonymous memory, private and shared: written in order (the fill window
 * grows) and here and there, read back; untouched pages read zeros, and
 * pages dropped with MADV_DONTNEED read zeros again. */
static void sc_anon(void)
{
	static const int flags[2] = {MAP_PRIVATE | MAP_ANONYMOUS,
				     MAP_SHARED | MAP_ANONYMOUS};
	unsigned char written[ANON_PAGES];
	fl_engine *e;

	if (!(e = engine()))
		return;
	for (int k = 0; k < 2; k++) {
		unsigned char *p = map(e, NULL, ANON_PAGES * PG,
				       PROT_READ | PROT_WRITE, flags[k], NULL);

		if (!p)
			continue;
		memset(written, 0, sizeof(written));
		for (int pg = 0; pg < ANON_PAGES / 2; pg++)
			written[pg] =
				!write_page(p + pg * PG, SEED_NEW, pg * PG);
		for (int pg = ANON_PAGES / 2; pg < ANON_PAGES; pg += 5)
			written[pg] =
				!write_page(p + pg * PG, SEED_NEW, pg * PG);
		for (int pg = 0; pg < ANON_PAGES; pg++)
			read_check(p + pg * PG, PG, written[pg] ? SEED_NEW : 0,
				   pg * PG);
		if (OK(fl_madvise(e, p, 8 * PG, MADV_DONTNEED)))
			for (int pg = 0; pg < 8; pg++)
				read_check(p + pg * PG, PG,
					   k == 0 || !written[pg] ? 0
								  : SEED_NEW,
					   pg * PG);
		OK(fl_munmap(e, p, ANON_PAGES * PG));
	}
	OK(fl_engine_destroy(e));
}

#define GROUP_FILE_PAGES 96
#define GROUP_MAX_PAGES	 16

/* A group far smaller than the data it maps: dirty pages are written back
 * to make room, evicted pages are read again, and the file ends up right. */
static void sc_group(void)
{
	unsigned char written[GROUP_FILE_PAGES] = {0};
	int all_ok = 1;
	struct h_file f;
	fl_engine *e;
	fl_object *o;
	fl_group *g;
	unsigned char *p = NULL;

	h_file_create(&f, GROUP_FILE_PAGES * PG, SEED_OLD);
	if (!(e = engine()))
		goto out;
	errno = 0;
	g = fl_group_create(e, NULL, "small");
	if (!g) {
		FAILED_CLEANLY("fl_group_create");
		all_ok = 0;
		goto destroy;
	}
	all_ok &= OK(fl_group_set_max(g, GROUP_MAX_PAGES * PG));
	if (!(o = open_file(e, &f))) {
		all_ok = 0;
		goto destroy;
	}
	p = map(e, g, GROUP_FILE_PAGES * PG, PROT_READ | PROT_WRITE, MAP_SHARED,
		o);
	if (p) {
		for (int pg = 0; pg < GROUP_FILE_PAGES; pg++)
			written[pg] =
				!write_page(p + pg * PG, SEED_NEW, pg * PG);
		/* A write that got SIGBUS may have stored part of its page
		 * first: the flusher can write-protect the page, or reclaim
		 * take it, while the writer is in the middle of it (its next
		 * byte faults, and that fault fails); and the poison goes
		 * with the view when reclaim empties it. */
		for (int pg = 0; pg < GROUP_FILE_PAGES; pg++)
			if (written[pg])
				read_check(p + pg * PG, PG, SEED_NEW, pg * PG);
			else
				read_check_torn(p + pg * PG, SEED_OLD, SEED_NEW,
						pg * PG);
		all_ok &= OK(fl_munmap(e, p, GROUP_FILE_PAGES * PG));
	} else {
		all_ok = 0;
	}
	all_ok &= OK(fl_object_close(o));
destroy:
	all_ok &= OK(fl_engine_destroy(e));
	check_file(&f, SEED_OLD, SEED_NEW, all_ok ? written : NULL);
out:
	h_file_remove(&f);
}

/* A faulty store: reads of one range always fail, and every 5th read
 * fails.  A page reads right or gets SIGBUS, and the failing range always
 * gets SIGBUS. */
static void sc_faulty(void)
{
	struct fl_store_faults ff = {.fail_every_nth_read = 5,
				     .fail_offset = 9 * PG,
				     .fail_length = 2 * PG};
	struct fl_store *file, *st;
	struct h_file f;
	fl_engine *e;
	fl_object *o = NULL;
	unsigned char *p;

	h_file_create(&f, FILE_PAGES * PG, SEED_OLD);
	if (!(e = engine()))
		goto out;
	errno = 0;
	if (!(file = fl_store_file_open(f.path, O_RDONLY))) {
		FAILED_CLEANLY("fl_store_file_open");
		goto destroy;
	}
	errno = 0;
	if (!(st = fl_store_faulty(file, &ff))) {
		FAILED_CLEANLY("fl_store_faulty");
		file->ops->destroy(file);
		goto destroy;
	}
	errno = 0;
	if (!(o = fl_object_create(e, st, O_RDONLY))) {
		FAILED_CLEANLY("fl_object_create");
		st->ops->destroy(st);
		goto destroy;
	}
	p = map(e, NULL, FILE_PAGES * PG, PROT_READ, MAP_SHARED, o);
	if (p) {
		for (int round = 0; round < 2; round++) {
			for (int pg = 0; pg < FILE_PAGES; pg++) {
				int sig = read_check(p + pg * PG, PG, SEED_OLD,
						     pg * PG);

				if (pg >= 9 && pg < 11 && sig != SIGBUS)
					h_fail(__FILE__, __LINE__,
					       "page %d in the failing range: "
					       "signal %d, not SIGBUS",
					       pg, sig);
			}
			/* Drop the view: poisoned pages fault afresh. */
			if (!OK(fl_madvise(e, p, FILE_PAGES * PG,
					   MADV_DONTNEED)))
				break;
		}
		OK(fl_munmap(e, p, FILE_PAGES * PG));
	}
	OK(fl_object_close(o));
destroy:
	OK(fl_engine_destroy(e));
out:
	h_file_remove(&f);
}

/* Mappings replaced (MAP_FIXED: the file, then anonymous memory, then the
 * file again) while two threads fault on them: a read sees the file's
 * data or zeros, page by page, or gets a signal. */
#define CHURN_PAGES 32

struct churn {
	fl_engine *e;
	unsigned char *p;
	int stop, broken;
	unsigned long reads;
};

static void churn_reader(int idx, void *arg)
{
	struct churn *c = arg;
	unsigned char buf[PG];

	/* Until the remapper is done, and bounded whatever happens to it. */
	for (unsigned i = 0; (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE) ||
			      i < CHURN_PAGES) &&
			     i < 200000;
	     i++) {
		unsigned pg = (i * 7 + (unsigned)idx * 13) % CHURN_PAGES;

		if (__atomic_load_n(&c->broken, __ATOMIC_ACQUIRE))
			return; /* the range may be anybody's now */
		if (guarded_copy(buf, c->p + pg * PG, PG))
			continue;
		/* The copy is not atomic: a page replaced during it reads
		 * part file, part zeros, but never anything else. */
		for (size_t b = 0; b < PG; b++)
			if (buf[b] &&
			    buf[b] != h_pattern(SEED_OLD, pg * PG + b)) {
				if (!__atomic_load_n(&c->broken,
						     __ATOMIC_ACQUIRE))
					h_fail(__FILE__, __LINE__,
					       "page %u byte %zu: 0x%02x, "
					       "neither the file's data nor "
					       "zero",
					       pg, b, buf[b]);
				return;
			}
		__atomic_add_fetch(&c->reads, 1, __ATOMIC_RELAXED);
	}
}

static void churn_remapper(struct churn *c, fl_object *o)
{
	for (int round = 0; round < 12; round++) {
		int anon = round % 3 == 1;
		size_t len = (round % 2 ? CHURN_PAGES / 2 : CHURN_PAGES) * PG;
		struct fl_stats st;
		void *q;

		errno = 0;
		q = fl_mmap(c->e, c->p, len, PROT_READ,
			    MAP_FIXED | (anon ? MAP_PRIVATE | MAP_ANONYMOUS
					      : MAP_SHARED),
			    anon ? NULL : o, 0);
		if (q == MAP_FAILED) {
			FAILED_CLEANLY("fl_mmap(MAP_FIXED)");
			/* A failed mmap leaves the address space as it was:
			 * the range is still faultline's.  If not, stop
			 * here, before anyone else can be given the range. */
			if (fl_mapping_stats(c->e, c->p, &st) ||
			    fl_mapping_stats(c->e, c->p + len - PG, &st)) {
				h_fail(__FILE__, __LINE__,
				       "a failed fl_mmap(MAP_FIXED) left the "
				       "range unmapped");
				__atomic_store_n(&c->broken, 1,
						 __ATOMIC_RELEASE);
				return;
			}
		} else if (q != c->p) {
			h_fail(__FILE__, __LINE__, "MAP_FIXED moved");
		}
		/* Let the readers fault on this one before the next (briefly:
		 * readers whose every access gets SIGBUS finish early). */
		for (unsigned long
			     r0 = __atomic_load_n(&c->reads, __ATOMIC_RELAXED),
			     spins = 0;
		     __atomic_load_n(&c->reads, __ATOMIC_RELAXED) < r0 + 8 &&
		     spins < 200;
		     spins++)
			usleep(100);
	}
}

struct churn_arg {
	struct churn *c;
	fl_object *o;
};

static void churn_thread(int idx, void *arg)
{
	struct churn_arg *a = arg;

	if (idx == 0) {
		churn_remapper(a->c, a->o);
		__atomic_store_n(&a->c->stop, 1, __ATOMIC_RELEASE);
	} else {
		churn_reader(idx, a->c);
	}
}

static void sc_remap(void)
{
	struct churn c = {0};
	struct churn_arg a = {&c, NULL};
	struct h_file f;

	h_file_create(&f, CHURN_PAGES * PG, SEED_OLD);
	if (!(c.e = engine()))
		goto out;
	if (!(a.o = open_file(c.e, &f)))
		goto destroy;
	c.p = map(c.e, NULL, CHURN_PAGES * PG, PROT_READ, MAP_SHARED, a.o);
	if (c.p) {
		h_run_threads(3, churn_thread, &a);
		if (!c.broken)
			OK(fl_munmap(c.e, c.p, CHURN_PAGES * PG));
	}
	OK(fl_object_close(a.o));
destroy:
	OK(fl_engine_destroy(c.e));
	check_file(&f, SEED_OLD, SEED_OLD, NULL);
out:
	h_file_remove(&f);
}

struct scenario {
	const char *name;
	void (*run)(void);
};

static const struct scenario scenarios[] = {
	{"shared", sc_shared}, {"private", sc_private}, {"anon", sc_anon},
	{"group", sc_group},   {"faulty", sc_faulty},	{"remap", sc_remap},
};
#define NR_SCENARIOS (int)(sizeof(scenarios) / sizeof(scenarios[0]))

/* ---- one run ------------------------------------------------------------- */

struct inj {
	enum inject_point point;
	unsigned long nth; /* 0: no injection (a baseline run) */
	int err;
	enum inject_mode mode;
};

/* What a run tells its parent, in memory shared with it. */
struct run_result {
	unsigned long calls[INJ_NR];
	unsigned long fired;
	int finished;
};

/* The run itself, in the child (or in-process for a debugger). */
static int run_scenario(const struct scenario *sc, const struct inj *inj,
			struct run_result *res)
{
	int failures0 = h_failures(), fds0, threads0;

	install_guard();
	fds0 = h_count_fds();
	threads0 = h_count_threads();
	inject_clear();
	if (inj->nth)
		inject_set_mode(inj->point, inj->nth, inj->err, inj->mode);
	sc->run();
	res->fired = inject_fired(inj->point);
	for (int i = 0; i < INJ_NR; i++)
		res->calls[i] = inject_calls((enum inject_point)i);
	inject_clear();
	/* fl_engine_destroy returned: every thread joined, every fd closed
	 * (a joined thread can linger in /proc for a moment). */
	CHECK_EQ(h_settle_threads(threads0), threads0);
	CHECK_EQ(h_count_fds(), fds0);
	res->finished = 1;
	return h_failures() - failures0;
}

static const char *mode_suffix(enum inject_mode mode)
{
	return mode == INJECT_FROM ? ":from" : "";
}

static void describe(char *buf, size_t len, const struct scenario *sc,
		     const struct inj *inj)
{
	if (!inj->nth)
		snprintf(buf, len, "scenario %s without injection", sc->name);
	else
		snprintf(buf, len,
			 "FL_INJECT=%s:%lu:%s%s FL_INJECT_SCENARIO=%s",
			 inject_point_name(inj->point), inj->nth,
			 err_name(inj->err), mode_suffix(inj->mode), sc->name);
}

/* Seconds a run may take before it counts as hung: generous, as every
 * wait of the suite (H_WAIT_SECONDS), since a loaded machine (a sanitizer
 * build beside other work) is many times slower; a run takes well under a
 * second when nothing is wrong. */
static int run_timeout(void)
{
	const char *s = getenv("FL_INJECT_TIMEOUT");

	return s && atoi(s) > 0 ? atoi(s) : H_WAIT_SECONDS;
}

static char self_path[PATH_MAX];

/*
 * Whether a run's child checks for leaks as it exits (the sanitizer
 * builds): FL_INJECT_LEAK_CHECK=0 leaves it out.  The check costs a run
 * more than the run itself (0.15 s on a machine where a page fault is
 * dear); make check has one sanitizer build check, as leaks are the
 * code's, not the compiler's.
 */
static int leak_check(void)
{
	const char *s = getenv("FL_INJECT_LEAK_CHECK");

	return !s || strcmp(s, "0") != 0;
}

/* A run in flight. */
struct job {
	pid_t pid;
	const struct scenario *sc;
	struct inj inj;
	struct run_result *res; /* shared with the child */
	char log[256];
	double deadline;
};

static struct job *job_start(struct job *j, struct run_result *shared)
{
	int fd;

	snprintf(j->log, sizeof(j->log), "%s/inject-%d-%p.log", h_tmpdir(),
		 (int)getpid(), (void *)j);
	memset(shared, 0, sizeof(*shared));
	j->res = shared;
	j->deadline = h_now() + run_timeout();
	fflush(stdout);
	fflush(stderr);
	j->pid = fork();
	REQUIRE(j->pid >= 0);
	if (j->pid)
		return j;
	/* The child: its output to the log, shown if the run fails. */
	fd = open(j->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		close(fd);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (run_scenario(j->sc, &j->inj, j->res))
		_exit(3);
	fflush(stdout);
	if (!leak_check())
		_exit(0);
	exit(0); /* LeakSanitizer runs here in the sanitizer builds */
}

/* Print the end of a failed run's log (a sanitizer's report, checks). */
static void show_log(const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");
	int n = 0;

	if (!f)
		return;
	while (fgets(line, sizeof(line), f) && n++ < 150)
		printf("    | %s", line);
	if (n > 150)
		printf("    | ...\n");
	fclose(f);
}

/* FL_INJECT_GDB=1: where a hung run's threads wait, into its log. */
static void backtrace_to_log(const struct job *j)
{
	char cmd[600];

	if (!getenv("FL_INJECT_GDB"))
		return;
	snprintf(cmd, sizeof(cmd),
		 "timeout 60 gdb -p %d -batch -ex 'thread apply all bt' "
		 "2>&1 | grep -E '^(Thread|#)' >> %s",
		 (int)j->pid, j->log);
	if (system(cmd) != 0)
		printf("    (gdb: no backtrace)\n");
}

/* Reap a finished (or overdue) job; 1 if it passed. */
static int job_finish(struct job *j, int status, int timed_out)
{
	char what[200], why[100];
	int ok = 0;

	describe(what, sizeof(what), j->sc, &j->inj);
	if (timed_out)
		snprintf(why, sizeof(why), "hung (no end after %d s)",
			 run_timeout());
	else if (WIFSIGNALED(status))
		snprintf(why, sizeof(why), "crashed: signal %d (%s)",
			 WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (WEXITSTATUS(status) == 3)
		snprintf(why, sizeof(why), "checks failed");
	else if (WEXITSTATUS(status) != 0)
		snprintf(why, sizeof(why),
			 "exit status %d (sanitizer report or leak)",
			 WEXITSTATUS(status));
	else
		ok = 1;
	if (!ok) {
		h_fail(__FILE__, __LINE__, "%s: %s; repeat: %s %s %s", what,
		       why, what, self_path,
		       j->inj.nth ? inject_point_name(j->inj.point) : "");
		show_log(j->log);
	}
	unlink(j->log);
	return ok;
}

/* ---- the sweep ------------------------------------------------------------
 */

/* Enough to tell what is wrong, and a bound on the time hangs take. */
#define MAX_FAILS_PER_POINT    4
#define MAX_FAILS_PER_SCENARIO 2

struct sweep {
	struct job jobs[8];
	struct run_result *shared; /* one per job slot */
	int njobs, running;
	int fails, skipped, sc_fails[NR_SCENARIOS];
};

static int sweep_jobs(void)
{
	const char *s = getenv("FL_INJECT_JOBS");
	int n = s ? atoi(s) : 2;

	return n < 1 ? 1 : n > 8 ? 8 : n;
}

/* Wait for one job to end (or time out); returns its slot. */
static int sweep_reap(struct sweep *sw)
{
	for (;;) {
		for (int i = 0; i < sw->njobs; i++) {
			struct job *j = &sw->jobs[i];
			int status = 0, timed_out = 0;
			pid_t r;

			if (!j->pid)
				continue;
			r = waitpid(j->pid, &status, WNOHANG);
			if (r == 0 && h_now() > j->deadline) {
				backtrace_to_log(j);
				kill(j->pid, SIGKILL);
				waitpid(j->pid, &status, 0);
				timed_out = 1;
			} else if (r != j->pid) {
				continue;
			}
			j->pid = 0;
			sw->running--;
			if (!job_finish(j, status, timed_out)) {
				sw->fails++;
				sw->sc_fails[j->sc - scenarios]++;
			}
			return i;
		}
		usleep(1000);
	}
}

static void sweep_wait_all(struct sweep *sw)
{
	while (sw->running)
		sweep_reap(sw);
}

/* Start a run in a free slot (waiting for one if all are busy). */
static void sweep_run(struct sweep *sw, const struct scenario *sc,
		      const struct inj *inj)
{
	int slot = -1;

	if (sw->fails >= MAX_FAILS_PER_POINT ||
	    sw->sc_fails[sc - scenarios] >= MAX_FAILS_PER_SCENARIO) {
		sw->skipped++;
		return;
	}
	for (int i = 0; i < sw->njobs && slot < 0; i++)
		if (!sw->jobs[i].pid)
			slot = i;
	if (slot < 0)
		slot = sweep_reap(sw);
	sw->jobs[slot].sc = sc;
	sw->jobs[slot].inj = *inj;
	job_start(&sw->jobs[slot], &sw->shared[slot]);
	sw->running++;
}

/* Run alone and wait: a baseline, whose call counts are wanted. */
static int sweep_run_wait(struct sweep *sw, const struct scenario *sc,
			  const struct inj *inj, struct run_result *out)
{
	int slot, fails = sw->fails;

	sweep_wait_all(sw);
	sw->jobs[0].sc = sc;
	sw->jobs[0].inj = *inj;
	job_start(&sw->jobs[0], &sw->shared[0]);
	sw->running++;
	slot = sweep_reap(sw);
	*out = sw->shared[slot];
	return sw->fails == fails && out->finished;
}

/* n = 1..8, then powers of two, then the last call; every n if full. */
static unsigned long next_n(unsigned long n, unsigned long calls, int full)
{
	if (full || n < 8)
		return n + 1;
	if (n * 2 < calls)
		return n * 2;
	return n < calls ? calls : calls + 1;
}

static void sweep_point(enum inject_point point)
{
	const int *errs = point_errs(point);
	int full = getenv("FL_INJECT_FULL") != NULL, nerrs = 0, runs = 0;
	struct sweep sw = {.njobs = sweep_jobs()};

	while (errs[nerrs])
		nerrs++;
	sw.shared =
		mmap(NULL, sizeof(struct run_result) * 8,
		     PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	REQUIRE(sw.shared != MAP_FAILED);
	for (int s = 0; s < NR_SCENARIOS; s++) {
		const struct scenario *sc = &scenarios[s];
		struct inj inj = {.point = point};
		struct run_result base;
		unsigned long calls;

		if (!sweep_run_wait(&sw, sc, &inj, &base))
			continue; /* fails on its own: said so */
		calls = base.calls[point];
		h_note("%s: %lu calls", sc->name, calls);
		/* Every errno at the first calls; beyond, one errno per n,
		 * in turn, so each is met at every depth of the sample. */
		for (unsigned long n = 1; n <= calls;
		     n = next_n(n, calls, full))
			for (int k = 0; k < nerrs; k++) {
				if (n > 2 && !full &&
				    (unsigned long)k !=
					    n % (unsigned long)nerrs)
					continue;
				inj = (struct inj){point, n, errs[k],
						   INJECT_ONCE};
				sweep_run(&sw, sc, &inj);
				runs++;
			}
		/* Every call failing from the first, and from the middle;
		 * not for UFFDIO_POISON, the only way to a SIGBUS: when it
		 * always fails, a fault that cannot be served cannot be
		 * answered at all. */
		for (unsigned long n = 1;
		     n <= calls && point != INJ_UFFD_POISON;
		     n += calls / 2 + 1) {
			inj = (struct inj){point, n, lasting_err(errs),
					   INJECT_FROM};
			sweep_run(&sw, sc, &inj);
			runs++;
		}
	}
	sweep_wait_all(&sw);
	if (sw.skipped)
		h_note("%d failures: %d further runs not made", sw.fails,
		       sw.skipped);
	h_note("%d runs", runs - sw.skipped);
	munmap(sw.shared, sizeof(struct run_result) * 8);
}

/* FL_INJECT=point:n:errno[:from]: one run, shown whole. */
static int one_run(enum inject_point point)
{
	const char *spec = getenv("FL_INJECT"), *scname;
	char name[64], errstr[32] = "ENOMEM", mode[16] = "";
	struct inj inj = {.mode = INJECT_ONCE};
	unsigned long n = 0;
	int found = 0;

	if (!spec)
		return 0;
	if (sscanf(spec, "%63[^:]:%lu:%31[^:]:%15s", name, &n, errstr, mode) <
		    2 ||
	    inject_point_by_name(name) < 0 || n == 0) {
		h_fail(__FILE__, __LINE__,
		       "FL_INJECT=%s: want point:n:errno[:from]", spec);
		return 1;
	}
	if (inject_point_by_name(name) != (int)point)
		return 1; /* another case's point: nothing to do here */
	inj.point = point;
	inj.nth = n;
	inj.err = err_by_name(errstr);
	inj.mode = strcmp(mode, "from") == 0 ? INJECT_FROM : INJECT_ONCE;
	scname = getenv("FL_INJECT_SCENARIO");
	for (int s = 0; s < NR_SCENARIOS; s++) {
		const struct scenario *sc = &scenarios[s];

		if (scname && strcmp(scname, sc->name) != 0)
			continue;
		found = 1;
		h_note("%s:%lu:%s%s on %s", name, n, err_name(inj.err),
		       mode_suffix(inj.mode), sc->name);
		if (getenv("FL_INJECT_NOFORK")) {
			struct run_result res = {0};

			run_scenario(sc, &inj, &res);
			h_note("fired %lu", res.fired);
		} else {
			struct sweep sw = {.njobs = 1};
			struct run_result res;

			sw.shared = mmap(NULL, sizeof(struct run_result),
					 PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
			REQUIRE(sw.shared != MAP_FAILED);
			if (sweep_run_wait(&sw, sc, &inj, &res))
				h_note("passed; fired %lu", res.fired);
			munmap(sw.shared, sizeof(struct run_result));
		}
	}
	if (!found)
		h_fail(__FILE__, __LINE__, "no scenario %s", scname);
	return 1;
}

static void sweep(enum inject_point point)
{
	ssize_t n;

	/* Where no engine can be made, every run would fail cleanly and the
	 * sweep pass with nothing tried: skip, and say why. */
	h_require_userfaultfd();
	n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);

	self_path[n > 0 ? n : 0] = 0;
	/* A charge left behind aborts fl_engine_destroy. */
	setenv("FAULTLINE_CHECK_CHARGES", "1", 1);
	if (!one_run(point))
		sweep_point(point);
}

/*
 * The harness gives a case 30 s unless told otherwise; a point's sweep
 * takes longer under the sanitizers, and each run has its own limit.
 */
__attribute__((constructor)) static void longer_case_timeout(void)
{
	setenv("FL_TEST_TIMEOUT", "600", 0);
}

TEST(alloc)
{
	sweep(INJ_ALLOC);
}

TEST(uffd_api)
{
	sweep(INJ_UFFD_API);
}

TEST(uffd_register)
{
	sweep(INJ_UFFD_REGISTER);
}

TEST(uffd_unregister)
{
	sweep(INJ_UFFD_UNREGISTER);
}

TEST(uffd_copy)
{
	sweep(INJ_UFFD_COPY);
}

TEST(uffd_zeropage)
{
	sweep(INJ_UFFD_ZEROPAGE);
}

TEST(uffd_continue)
{
	sweep(INJ_UFFD_CONTINUE);
}

TEST(uffd_writeprotect)
{
	sweep(INJ_UFFD_WRITEPROTECT);
}

TEST(uffd_poison)
{
	sweep(INJ_UFFD_POISON);
}

TEST(fallocate)
{
	sweep(INJ_FALLOCATE);
}

TEST(madvise)
{
	sweep(INJ_MADVISE);
}

TEST(pthread_create)
{
	sweep(INJ_PTHREAD_CREATE);
}

TEST(mmap)
{
	sweep(INJ_MMAP);
}

TEST(memfd_create)
{
	sweep(INJ_MEMFD_CREATE);
}

TEST(ftruncate)
{
	sweep(INJ_FTRUNCATE);
}

TEST(eventfd)
{
	sweep(INJ_EVENTFD);
}

TEST(io_uring_submit)
{
	sweep(INJ_IO_URING_SUBMIT);
}
