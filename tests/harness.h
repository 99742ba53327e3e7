/* SPDX-License-Identifier: MIT */
/*
 * A tiny test harness for faultline's suite.
 *
 * Each test_*.c registers cases with TEST(name).  main() (in harness.c) runs
 * every case, or those named on the command line, each in its own forked
 * child with a time limit, so that a crash, a hang or a sanitizer report
 * fails one case and not the whole binary.  Lines printed:
 *   PASS <binary>.<case> (<seconds>s)
 *   FAIL <binary>.<case>: <why>
 *   SUMMARY <binary>: N passed, N failed
 *   SKIP <binary>: <why>   (then exit status 77: see h_engine_create)
 * tests/run.sh counts the PASS, FAIL and SKIP lines.
 *
 * Environment: FL_TEST_TIMEOUT=seconds per case (default 120: generous,
 * as a busy machine may run a case many times slower than an idle one;
 * it only catches hangs), FL_TEST_NOFORK=1 runs cases in-process (for a
 * debugger).
 */
#ifndef FAULTLINE_TEST_HARNESS_H
#define FAULTLINE_TEST_HARNESS_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "faultline.h"

#define PG ((size_t)4096)

/* Whether the tests run under AddressSanitizer or ThreadSanitizer: gcc
 * defines __SANITIZE_ADDRESS__ and __SANITIZE_THREAD__, clang answers
 * __has_feature.  1 or 0. */
#if defined(__SANITIZE_ADDRESS__)
#define H_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define H_UNDER_ASAN 1
#endif
#endif
#ifndef H_UNDER_ASAN
#define H_UNDER_ASAN 0
#endif
#if defined(__SANITIZE_THREAD__)
#define H_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define H_UNDER_TSAN 1
#endif
#endif
#ifndef H_UNDER_TSAN
#define H_UNDER_TSAN 0
#endif

/* ---- registration and checks ------------------------------------------ */

void h_register(const char *name, void (*fn)(void));

#define TEST(name)                                                             \
	static void test_##name(void);                                         \
	__attribute__((constructor)) static void register_##name(void)         \
	{                                                                      \
		h_register(#name, test_##name);                                \
	}                                                                      \
	static void test_##name(void)

/* Record a failure of the running case (thread-safe). */
void h_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* End the running case now, as failed. */
void h_abort_case(void) __attribute__((noreturn));
/* Number of failures recorded so far in the running case. */
int h_failures(void);
/* Print a note for the running case (thread-safe). */
void h_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			h_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);        \
	} while (0)

/* Like CHECK, but ends the case at once: for things the rest depends on. */
#define REQUIRE(cond)                                                          \
	do {                                                                   \
		if (!(cond)) {                                                 \
			h_fail(__FILE__, __LINE__,                             \
			       "REQUIRE(%s) errno=%d (%s)", #cond, errno,      \
			       strerror(errno));                               \
			h_abort_case();                                        \
		}                                                              \
	} while (0)

#define H_CMP(a, op, b)                                                        \
	do {                                                                   \
		unsigned long long h_a_ = (unsigned long long)(a);             \
		unsigned long long h_b_ = (unsigned long long)(b);             \
		if (!(h_a_ op h_b_))                                           \
			h_fail(__FILE__, __LINE__,                             \
			       "CHECK(%s %s %s): %llu vs %llu", #a, #op, #b,   \
			       h_a_, h_b_);                                    \
	} while (0)

#define CHECK_EQ(a, b) H_CMP(a, ==, b)
#define CHECK_NE(a, b) H_CMP(a, !=, b)
#define CHECK_GE(a, b) H_CMP(a, >=, b)
#define CHECK_GT(a, b) H_CMP(a, >, b)
#define CHECK_LE(a, b) H_CMP(a, <=, b)

/*
 * CHECK_ERR(failed, err): the expression `failed` (evaluated once, errno
 * cleared before) must be true and leave errno == err.
 */
#define CHECK_ERR(failed, err)                                                 \
	do {                                                                   \
		errno = 0;                                                     \
		int h_f_ = !!(failed);                                         \
		int h_e_ = errno;                                              \
		if (!h_f_)                                                     \
			h_fail(__FILE__, __LINE__,                             \
			       "%s: expected failure with %s, it succeeded",   \
			       #failed, #err);                                 \
		else if (h_e_ != (err))                                        \
			h_fail(__FILE__, __LINE__,                             \
			       "%s: errno %d (%s), expected %s", #failed,      \
			       h_e_, strerror(h_e_), #err);                    \
	} while (0)

/* ---- data files ------------------------------------------------------- */

/* The byte a seeded test file holds at offset off. */
static inline unsigned char h_pattern(uint32_t seed, uint64_t off)
{
	uint64_t x = (off + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t)seed << 32;

	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ull;
	x ^= x >> 29;
	return (unsigned char)x;
}

struct h_file {
	char path[256];
	uint64_t size;
	uint32_t seed;
};

/* The directory for this binary's files, on a real disk (O_DIRECT works). */
const char *h_tmpdir(void);
/* Create a file of size bytes holding the pattern of seed. */
void h_file_create(struct h_file *f, uint64_t size, uint32_t seed);
void h_file_remove(struct h_file *f);
/* Index of the first byte of p[0..len) that differs from the pattern of
 * seed at file offset off, or -1 if none. */
long h_mismatch(const void *p, size_t len, uint32_t seed, uint64_t off);
/* Index of the first non-zero byte of p[0..len), or -1. */
long h_nonzero(const void *p, size_t len);
/* Fill p[0..len) with the pattern of seed at file offset off. */
void h_fill(void *p, size_t len, uint32_t seed, uint64_t off);
/* pread(2) exactly len bytes (REQUIREs success); returns bytes read. */
size_t h_pread(const char *path, void *buf, size_t len, uint64_t off);
/* Size of the file at path (stat). */
uint64_t h_file_size(const char *path);

/* ---- resources -------------------------------------------------------- */

int h_count_fds(void);
int h_count_threads(void);
/* Wait (up to 10 s) for the thread count to drop to at most want: a joined
 * thread can linger in /proc/self/task for a moment.  Returns the count. */
int h_settle_threads(int want);

/* ---- waiting for events ----------------------------------------------- */

/*
 * How long a case waits for an event that must come (a background read, a
 * fault reaching the engine, a thread blocking): generous, because a busy
 * machine can delay any thread by seconds.  Only whether the event came is
 * ever checked, never how long it took.
 */
#define H_WAIT_SECONDS 30

/* Poll cond(arg) until it is true (1) or H_WAIT_SECONDS pass (0). */
int h_wait_until(int (*cond)(void *), void *arg);
/* Wait until thread tid of this process sleeps (blocked in a lock or a
 * wait, state S or D in /proc): 1, or 0 after H_WAIT_SECONDS. */
int h_wait_thread_blocked(pid_t tid);

/* ---- threads ---------------------------------------------------------- */

/* Run fn(i, arg) for i in [0, n) on n threads and join them. */
void h_run_threads(int n, void (*fn)(int idx, void *arg), void *arg);
double h_now(void);

/* ---- signals ---------------------------------------------------------- */

struct h_sig {
	int signo;  /* 0 if no signal */
	void *addr; /* si_addr */
	int code;   /* si_code */
};

/*
 * Read or write one byte at p in the calling thread, catching SIGBUS and
 * SIGSEGV: returns 0 if the access completed, else the signal number (also
 * in sig->signo with si_addr and si_code).
 */
int h_try_read(const void *p, unsigned char *val, struct h_sig *sig);
int h_try_write(void *p, unsigned char val, struct h_sig *sig);
/* Signals that arrived in a thread that was not probing (should stay 0). */
unsigned long h_stray_signals(void);
/* 1 if the mapping (/proc/self/maps) that holds p names name: whether a
 * range is unmapped, asked so that another mapping placed in the hole
 * since (a thread's, the allocator's) does not count. */
int h_maps_name_at(const void *p, const char *name);

/* ---- faultline helpers ------------------------------------------------ */

/*
 * fl_engine_create(cfg) (cfg may be NULL), REQUIRE-ing success.  If
 * userfaultfd is not permitted here or lacks a feature (EPERM, EACCES,
 * ENOSYS), the whole binary is skipped instead: it prints one line saying
 * why and exits 77, as automake's and liburing's tests do.  Cases that need
 * no engine run first and are reported as usual.
 */
fl_engine *h_engine_create(const struct fl_config *cfg);
/* Skip the binary (as above) unless an engine can be made here. */
void h_require_userfaultfd(void);
/* Create an engine with the given handler threads (0: default). */
fl_engine *h_engine(unsigned threads);
/* An engine with handler threads, fault-around and readahead pages set
 * (0: the default for each). */
fl_engine *h_engine_cfg(unsigned threads, unsigned around, unsigned readahead);
/* fl_object_open / fl_mmap, REQUIRE-ing success. */
fl_object *h_open(fl_engine *e, const struct h_file *f, int flags);
void *h_map(fl_engine *e, size_t len, int prot, int flags, fl_object *obj,
	    off_t off);
/* Statistics, REQUIRE-ing success. */
struct fl_stats h_estats(fl_engine *e);
struct fl_stats h_mstats(fl_engine *e, const void *addr);

#endif /* FAULTLINE_TEST_HARNESS_H */
