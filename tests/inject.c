// SPDX-License-Identifier: MIT
/* Test-only failure injection: the wrappers and their controls; see inject.h.
 * Compiled without FL_INJECT, so the calls here are the real ones. */
#include "inject.h"

#include <errno.h>
#include <linux/userfaultfd.h>
#include <stdatomic.h>
#ifdef FL_HAVE_LIBURING
#include <liburing.h>
#endif

/* Older headers lack these; the values are the kernel's. */
#ifndef _UFFDIO_POISON
#define _UFFDIO_POISON (0x08)
struct uffdio_poison {
	struct uffdio_range range;
	__u64 mode;
	__s64 updated;
};
#endif
#ifndef UFFDIO_POISON
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif
#ifndef UFFDIO_CONTINUE
#error "linux/userfaultfd.h without UFFDIO_CONTINUE"
#endif

struct inject_state {
	_Atomic unsigned long calls; /* since set or cleared */
	_Atomic unsigned long fired;
	_Atomic unsigned long nth; /* 0: disarmed */
	_Atomic int err;
	_Atomic int mode;
	/* Runs on the failing call's thread just before it fails. */
	void (*_Atomic on_fire)(void *arg);
	void *_Atomic on_fire_arg;
};

static struct inject_state points[INJ_NR];

static const struct inject_ioctl_watch *_Atomic ioctl_watch;

static const char *const names[INJ_NR] = {
	[INJ_ALLOC] = "alloc",
	[INJ_MALLOC] = "malloc",
	[INJ_CALLOC] = "calloc",
	[INJ_REALLOC] = "realloc",
	[INJ_STRDUP] = "strdup",
	[INJ_UFFD_API] = "uffd_api",
	[INJ_UFFD_REGISTER] = "uffd_register",
	[INJ_UFFD_UNREGISTER] = "uffd_unregister",
	[INJ_UFFD_COPY] = "uffd_copy",
	[INJ_UFFD_ZEROPAGE] = "uffd_zeropage",
	[INJ_UFFD_CONTINUE] = "uffd_continue",
	[INJ_UFFD_WRITEPROTECT] = "uffd_writeprotect",
	[INJ_UFFD_WAKE] = "uffd_wake",
	[INJ_UFFD_POISON] = "uffd_poison",
	[INJ_IOCTL_OTHER] = "ioctl_other",
	[INJ_FALLOCATE] = "fallocate",
	[INJ_MADVISE] = "madvise",
	[INJ_PTHREAD_CREATE] = "pthread_create",
	[INJ_MMAP] = "mmap",
	[INJ_MEMFD_CREATE] = "memfd_create",
	[INJ_FTRUNCATE] = "ftruncate",
	[INJ_EVENTFD] = "eventfd",
	[INJ_IO_URING_SUBMIT] = "io_uring_submit",
	[INJ_PWRITE] = "pwrite",
	[INJ_MSGS_READ] = "msgs_read",
};

void inject_set_mode(enum inject_point point, unsigned long nth, int err,
		     enum inject_mode mode)
{
	struct inject_state *s = &points[point];

	/* Disarm, restart the count, then arm: a call racing with this sees
	 * either the old setting or the new one from its first call. */
	atomic_store(&s->nth, 0);
	atomic_store(&s->calls, 0);
	atomic_store(&s->fired, 0);
	atomic_store(&s->err, err);
	atomic_store(&s->mode, (int)mode);
	atomic_store(&s->nth, nth);
}

void inject_set(enum inject_point point, unsigned long nth, int err)
{
	inject_set_mode(point, nth, err, INJECT_ONCE);
}

void inject_clear(void)
{
	for (int i = 0; i < INJ_NR; i++) {
		inject_set_mode((enum inject_point)i, 0, 0, INJECT_ONCE);
		inject_on_fire((enum inject_point)i, NULL, NULL);
	}
	inject_watch_ioctl(NULL);
}

void inject_watch_ioctl(const struct inject_ioctl_watch *watch)
{
	atomic_store(&ioctl_watch, watch);
}

void inject_on_fire(enum inject_point point, void (*fn)(void *arg), void *arg)
{
	atomic_store(&points[point].on_fire, NULL);
	atomic_store(&points[point].on_fire_arg, arg);
	atomic_store(&points[point].on_fire, fn);
}

unsigned long inject_calls(enum inject_point point)
{
	return atomic_load(&points[point].calls);
}

unsigned long inject_fired(enum inject_point point)
{
	return atomic_load(&points[point].fired);
}

const char *inject_point_name(enum inject_point point)
{
	return (unsigned)point < INJ_NR ? names[point] : NULL;
}

int inject_point_by_name(const char *name)
{
	for (int i = 0; i < INJ_NR; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

/* Count a call of point; its errno if this call is to fail, else 0. */
static int inject_hit(enum inject_point point)
{
	struct inject_state *s = &points[point];
	unsigned long n = atomic_fetch_add(&s->calls, 1) + 1;
	unsigned long nth = atomic_load(&s->nth);

	if (!nth || n < nth ||
	    (n > nth && atomic_load(&s->mode) == INJECT_ONCE))
		return 0;
	atomic_fetch_add(&s->fired, 1);
	void (*fn)(void *) = atomic_load(&s->on_fire);

	if (fn)
		fn(atomic_load(&s->on_fire_arg));
	return atomic_load(&s->err);
}

void inject_reached(enum inject_point point)
{
	(void)inject_hit(point);
}

/* Allocations count at their own point and at INJ_ALLOC. */
static int inject_alloc_hit(enum inject_point point)
{
	int err = inject_hit(INJ_ALLOC);
	int own = inject_hit(point);

	return err ? err : own;
}

void *inject_malloc(size_t size)
{
	int err = inject_alloc_hit(INJ_MALLOC);

	if (err) {
		errno = err;
		return NULL;
	}
	return malloc(size);
}

void *inject_calloc(size_t n, size_t size)
{
	int err = inject_alloc_hit(INJ_CALLOC);

	if (err) {
		errno = err;
		return NULL;
	}
	return calloc(n, size);
}

void *inject_realloc(void *p, size_t size)
{
	int err = inject_alloc_hit(INJ_REALLOC);

	if (err) {
		errno = err; /* p is left as it was, as realloc does */
		return NULL;
	}
	return realloc(p, size);
}

char *inject_strdup(const char *str)
{
	int err = inject_alloc_hit(INJ_STRDUP);

	if (err) {
		errno = err;
		return NULL;
	}
	return strdup(str);
}

static enum inject_point ioctl_point(unsigned long request)
{
	switch (request) {
	case UFFDIO_API:
		return INJ_UFFD_API;
	case UFFDIO_REGISTER:
		return INJ_UFFD_REGISTER;
	case UFFDIO_UNREGISTER:
		return INJ_UFFD_UNREGISTER;
	case UFFDIO_COPY:
		return INJ_UFFD_COPY;
	case UFFDIO_ZEROPAGE:
		return INJ_UFFD_ZEROPAGE;
	case UFFDIO_CONTINUE:
		return INJ_UFFD_CONTINUE;
	case UFFDIO_WRITEPROTECT:
		return INJ_UFFD_WRITEPROTECT;
	case UFFDIO_WAKE:
		return INJ_UFFD_WAKE;
	case UFFDIO_POISON:
		return INJ_UFFD_POISON;
	default:
		return INJ_IOCTL_OTHER;
	}
}

/* A resolving ioctl that fails reports -errno as its progress. */
static void ioctl_fail_progress(enum inject_point point, unsigned long arg,
				int err)
{
	switch (point) {
	case INJ_UFFD_COPY:
		((struct uffdio_copy *)arg)->copy = -err;
		break;
	case INJ_UFFD_ZEROPAGE:
		((struct uffdio_zeropage *)arg)->zeropage = -err;
		break;
	case INJ_UFFD_CONTINUE:
		((struct uffdio_continue *)arg)->mapped = -err;
		break;
	case INJ_UFFD_POISON:
		((struct uffdio_poison *)arg)->updated = -err;
		break;
	default:
		break;
	}
}

/* Whether point is an ioctl that fills page table entries. */
static int ioctl_resolves(enum inject_point point)
{
	return point == INJ_UFFD_COPY || point == INJ_UFFD_ZEROPAGE ||
	       point == INJ_UFFD_CONTINUE || point == INJ_UFFD_POISON;
}

int inject_ioctl(int fd, unsigned long request, unsigned long arg)
{
	enum inject_point point = ioctl_point(request);
	const struct inject_ioctl_watch *watch = atomic_load(&ioctl_watch);
	int err = inject_hit(point);

	if (watch)
		watch->fn(watch->arg, request, arg);
	if (!err)
		return ioctl(fd, request, arg);
	/*
	 * EEXIST says the range was populated already, by someone else: make
	 * it so (the real call fills it), then say EEXIST as if it had lost
	 * the race.  An EEXIST over an empty range could never happen.
	 */
	if (err == EEXIST && ioctl_resolves(point) &&
	    ioctl(fd, request, arg) < 0)
		return -1; /* a real failure: as it is */
	ioctl_fail_progress(point, arg, err);
	errno = err;
	return -1;
}

int inject_fallocate(int fd, int mode, off_t offset, off_t len)
{
	int err = inject_hit(INJ_FALLOCATE);

	if (err) {
		errno = err;
		return -1;
	}
	return fallocate(fd, mode, offset, len);
}

ssize_t inject_pwrite(int fd, const void *buf, size_t n, off_t off)
{
	int err = inject_hit(INJ_PWRITE);

	if (err) {
		errno = err;
		return -1;
	}
	return pwrite(fd, buf, n, off);
}

int inject_madvise(void *addr, size_t len, int advice)
{
	int err = inject_hit(INJ_MADVISE);

	if (err) {
		errno = err;
		return -1;
	}
	return madvise(addr, len, advice);
}

ssize_t inject_process_madvise(int pidfd, const struct iovec *iov, size_t n,
			       int advice, unsigned flags)
{
	int err = inject_hit(INJ_MADVISE);

	if (err) {
		errno = err;
		return -1;
	}
	return process_madvise(pidfd, iov, n, advice, flags);
}

int inject_pthread_create(pthread_t *thread, const pthread_attr_t *attr,
			  void *(*fn)(void *), void *arg)
{
	int err = inject_hit(INJ_PTHREAD_CREATE);

	return err ? err : pthread_create(thread, attr, fn, arg);
}

void *inject_mmap(void *addr, size_t len, int prot, int flags, int fd,
		  off_t off)
{
	int err = inject_hit(INJ_MMAP);

	if (err) {
		errno = err;
		return MAP_FAILED;
	}
	return mmap(addr, len, prot, flags, fd, off);
}

int inject_memfd_create(const char *name, unsigned flags)
{
	int err = inject_hit(INJ_MEMFD_CREATE);

	if (err) {
		errno = err;
		return -1;
	}
	return memfd_create(name, flags);
}

int inject_ftruncate(int fd, off_t len)
{
	int err = inject_hit(INJ_FTRUNCATE);

	if (err) {
		errno = err;
		return -1;
	}
	return ftruncate(fd, len);
}

int inject_eventfd(unsigned initval, int flags)
{
	int err = inject_hit(INJ_EVENTFD);

	if (err) {
		errno = err;
		return -1;
	}
	return eventfd(initval, flags);
}

int inject_io_uring_submit(struct io_uring *ring)
{
	int err = inject_hit(INJ_IO_URING_SUBMIT);

#ifdef FL_HAVE_LIBURING
	return err ? -err : io_uring_submit(ring);
#else
	(void)ring;
	return err ? -err : -EOPNOTSUPP;
#endif
}
