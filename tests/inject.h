/* SPDX-License-Identifier: MIT */
/*
 * Test-only failure injection.
 *
 * The tests link a second copy of the library, compiled with
 * `-include tests/inject.h -DFL_INJECT`: there, the library's calls to the
 * allocator, the userfaultfd ioctls, fallocate, madvise, pwrite, thread
 * creation, the io_uring submit and the calls that build an engine's or
 * object's kernel resources go through the inject_* wrappers of
 * tests/inject.c, which pass them on to the real call unless a test armed
 * a failure.  The library users get has none of it.
 *
 * A failed call returns what the real one returns on failure: -1 with
 * errno, NULL with errno, MAP_FAILED with errno, or for pthread_create the
 * error number.  For the resolving ioctls (COPY, ZEROPAGE, CONTINUE, POISON)
 * the request's progress field is set to the negated errno too, as the
 * kernel does; their EEXIST ("already populated") is made true first: the
 * real call runs, then EEXIST is returned, as for a lost race.
 *
 * Every call is counted per point, failed or not, so that a test can see
 * how many calls a scenario makes and sweep the nth of them.  All of it is
 * thread-safe.
 */
#ifndef FAULTLINE_TEST_INJECT_H
#define FAULTLINE_TEST_INJECT_H

/* As the library's files define it (an identical redefinition is allowed):
 * the system headers below must see it before anything includes them. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum inject_point {
	INJ_ALLOC, /* any of malloc, calloc, realloc, strdup: counted once */
	INJ_MALLOC,
	INJ_CALLOC,
	INJ_REALLOC,
	INJ_STRDUP,
	INJ_UFFD_API, /* the userfaultfd ioctls, one point each */
	INJ_UFFD_REGISTER,
	INJ_UFFD_UNREGISTER,
	INJ_UFFD_COPY,
	INJ_UFFD_ZEROPAGE,
	INJ_UFFD_CONTINUE,
	INJ_UFFD_WRITEPROTECT,
	INJ_UFFD_WAKE,
	INJ_UFFD_POISON,
	INJ_IOCTL_OTHER, /* any other ioctl */
	INJ_FALLOCATE,
	INJ_MADVISE,
	INJ_PTHREAD_CREATE,
	INJ_MMAP,
	INJ_MEMFD_CREATE,
	INJ_FTRUNCATE,
	INJ_EVENTFD,
	INJ_IO_URING_SUBMIT, /* liburing's io_uring_submit (with liburing) */
	INJ_PWRITE,
	/* Not a call but a place: a handler has read fault messages and not
	 * yet served them.  Nothing fails there; its on_fire hook runs. */
	INJ_MSGS_READ,
	INJ_NR
};

enum inject_mode {
	INJECT_ONCE, /* only the nth call fails */
	INJECT_FROM, /* the nth call and every one after it fail */
};

/*
 * Make the nth call (1: the next) of point from now fail with err, once.
 * Restarts the point's call count.
 */
void inject_set(enum inject_point point, unsigned long nth, int err);
void inject_set_mode(enum inject_point point, unsigned long nth, int err,
		     enum inject_mode mode);
/* The library reached point (a place, not a call): counted, and its
 * on_fire hook runs if this is the nth time. */
void inject_reached(enum inject_point point);
/* Disarm every point and restart every count. */
void inject_clear(void);
/*
 * Call fn(arg) on the thread of each call of point that is made to fail,
 * just before it fails (NULL: none; inject_clear removes it): a test
 * makes something happen at that exact moment, such as a store racing
 * the failing call.
 */
void inject_on_fire(enum inject_point point, void (*fn)(void *arg), void *arg);
/*
 * Watch every ioctl the library makes, failed or not: watch->fn(watch->arg,
 * request, call_arg) runs on the calling thread before the call (NULL: no
 * watch; inject_clear removes it), so that a test sees which ranges were
 * woken or mapped, and when.  A call may still be in its watch after the
 * watch is removed: keep *watch alive until the engine is destroyed.
 */
struct inject_ioctl_watch {
	void (*fn)(void *arg, unsigned long request, unsigned long call_arg);
	void *arg;
};
void inject_watch_ioctl(const struct inject_ioctl_watch *watch);
/* Calls of point since it was last set or cleared (failed ones too). */
unsigned long inject_calls(enum inject_point point);
/* Failures injected at point since it was last set or cleared. */
unsigned long inject_fired(enum inject_point point);
/* "alloc", "uffd_copy", ...; NULL for an unknown point. */
const char *inject_point_name(enum inject_point point);
/* The point named name, or -1. */
int inject_point_by_name(const char *name);

/* The wrappers the library's calls become. */
void *inject_malloc(size_t size);
void *inject_calloc(size_t n, size_t size);
void *inject_realloc(void *p, size_t size);
char *inject_strdup(const char *s);
int inject_ioctl(int fd, unsigned long request, unsigned long arg);
int inject_fallocate(int fd, int mode, off_t offset, off_t len);
int inject_madvise(void *addr, size_t len, int advice);
/* Counted and failed as madvise (the same point: a batch of them). */
ssize_t inject_process_madvise(int pidfd, const struct iovec *iov, size_t n,
			       int advice, unsigned flags);
int inject_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
			  void *(*fn)(void *), void *arg);
void *inject_mmap(void *addr, size_t len, int prot, int flags, int fd,
		  off_t off);
int inject_memfd_create(const char *name, unsigned flags);
int inject_ftruncate(int fd, off_t len);
int inject_eventfd(unsigned initval, int flags);
ssize_t inject_pwrite(int fd, const void *buf, size_t n, off_t off);
/* A failed io_uring_submit returns the negated errno and hands nothing to
 * the kernel: the SQEs stay queued, as when the kernel takes none. */
struct io_uring;
int inject_io_uring_submit(struct io_uring *ring);

#ifdef FL_INJECT
#define malloc(size)		inject_malloc(size)
#define calloc(n, size)		inject_calloc(n, size)
#define realloc(p, size)	inject_realloc(p, size)
#define strdup(s)		inject_strdup(s)
#define ioctl(fd, request, arg) inject_ioctl(fd, request, (unsigned long)(arg))
#define fallocate(fd, m, o, l)	inject_fallocate(fd, m, o, l)
#define madvise(a, l, advice)	inject_madvise(a, l, advice)
#define process_madvise(pfd, iov, n, advice, fl)                               \
	inject_process_madvise(pfd, iov, n, advice, fl)
#define pthread_create(t, a, f, p) inject_pthread_create(t, a, f, p)
#define mmap(a, l, p, fl, fd, o)   inject_mmap(a, l, p, fl, fd, o)
#define memfd_create(name, fl)	   inject_memfd_create(name, fl)
#define ftruncate(fd, len)	   inject_ftruncate(fd, len)
#define pwrite(fd, buf, n, off)	   inject_pwrite(fd, buf, n, off)
#define eventfd(v, fl)		   inject_eventfd(v, fl)
#define io_uring_submit(ring)	   inject_io_uring_submit(ring)
#endif

#endif /* FAULTLINE_TEST_INJECT_H */
