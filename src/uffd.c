/* SPDX-License-Identifier: MIT */
/* userfaultfd: opening, registration and the resolving ioctls. */
#define _GNU_SOURCE /* sched_getcpu */
#include "uffd.h"
#include "pagesize.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

/*
 * Features the fault path relies on; the engine refuses to start without.
 * EVENT_REMAP keeps a view registered when mremap moves it (MAP_FIXED
 * replacement, map.c); every mremap then posts a message that must be read.
 */
#define UFFD_NEEDED_FEATURES                                                   \
	(UFFD_FEATURE_MISSING_SHMEM | UFFD_FEATURE_MINOR_SHMEM |               \
	 UFFD_FEATURE_WP_HUGETLBFS_SHMEM | UFFD_FEATURE_PAGEFAULT_FLAG_WP |    \
	 UFFD_FEATURE_POISON | UFFD_FEATURE_EVENT_REMAP)

static int uffd_open_fd(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	int dev, saved;

	if (fd >= 0 || (errno != EPERM && errno != EACCES))
		return fd;
	/* Unprivileged: the device node may still be open to us. */
	saved = errno;
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		errno = saved;
		return -1;
	}
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	close(dev);
	return fd;
}

int uffd_open(void)
{
	struct uffdio_api api = {.api = UFFD_API};
	int fd = uffd_open_fd();

	if (fd < 0)
		return -1;
	/* Ask which features exist, then enable the ones we need. */
	if (ioctl(fd, UFFDIO_API, &api) < 0)
		goto fail;
	if ((api.features & UFFD_NEEDED_FEATURES) != UFFD_NEEDED_FEATURES) {
		close(fd);
		errno = ENOSYS;
		return -1;
	}
	close(fd);
	/* UFFDIO_API may be called once per descriptor: open a fresh one. */
	fd = uffd_open_fd();
	if (fd < 0)
		return -1;
	api = (struct uffdio_api){.api = UFFD_API,
				  .features = UFFD_NEEDED_FEATURES |
					      UFFD_FEATURE_THREAD_ID};
	if (ioctl(fd, UFFDIO_API, &api) < 0)
		goto fail;
	return fd;
fail : {
	int saved = errno;

	close(fd);
	errno = saved;
}
	return -1;
}

int uffd_register(int uffd, uintptr_t start, size_t len, enum uffd_modes m)
{
	struct uffdio_register reg = {
		.range = {.start = start, .len = len},
		.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
	};

	if (m == UFFD_MODES_CACHE)
		reg.mode |= UFFDIO_REGISTER_MODE_MINOR;
	return ioctl(uffd, UFFDIO_REGISTER, &reg);
}

int uffd_unregister(int uffd, uintptr_t start, size_t len)
{
	struct uffdio_range range = {.start = start, .len = len};

	return ioctl(uffd, UFFDIO_UNREGISTER, &range);
}

int uffd_open_pagemap(void)
{
	return open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
}

#define PM_PRESENT	  (UINT64_C(1) << 63)
#define PM_SWAP		  (UINT64_C(1) << 62)
#define PM_UFFD_WP	  (UINT64_C(1) << 57)
#define PM_MMAP_EXCLUSIVE (UINT64_C(1) << 56)
#define PM_BATCH	  512

/* The first page at or after start, before end, that nothing maps. */
static uintptr_t skip_populated(int pagemap, uintptr_t start, uintptr_t end)
{
	uint64_t entry[PM_BATCH];

	if (pagemap < 0)
		return start;
	while (start < end) {
		size_t n = (end - start) / PAGE_SIZE;
		ssize_t got;

		if (n > PM_BATCH)
			n = PM_BATCH;
		got = pread(pagemap, entry, n * sizeof(entry[0]),
			    (off_t)(start / PAGE_SIZE * sizeof(entry[0])));
		if (got <= 0)
			return start;
		for (size_t i = 0; i < (size_t)got / sizeof(entry[0]); i++) {
			/*
			 * A uffd-wp marker (left where a write-protected page
			 * was zapped) reads as a swap entry, but the ioctls
			 * fill it like an empty entry: it is not populated.
			 */
			uint64_t e = entry[i];
			int populated = (e & PM_PRESENT) ||
					((e & PM_SWAP) && !(e & PM_UFFD_WP));

			if (!populated)
				return start;
			start += PAGE_SIZE;
		}
	}
	return end;
}

int uffd_page_flags(int pagemap, uintptr_t addr)
{
	uint64_t e;

	if (pagemap < 0 ||
	    pread(pagemap, &e, sizeof(e),
		  (off_t)(addr / PAGE_SIZE * sizeof(e))) != sizeof(e))
		return -1;
	if (!(e & PM_PRESENT))
		return e & PM_SWAP && !(e & PM_UFFD_WP) ? UFFD_PAGE_MARKER : 0;
	return UFFD_PAGE_PRESENT | (e & PM_UFFD_WP ? UFFD_PAGE_WP : 0);
}

/* Mark in out[i] whether page i of the range has all of the bits want. */
static long pagemap_match(int pagemap, uintptr_t start, size_t len,
			  uint64_t want, unsigned char *out)
{
	uint64_t entry[PM_BATCH];
	size_t n = len / PAGE_SIZE;
	long found = 0;

	if (pagemap < 0 || n > PM_BATCH ||
	    pread(pagemap, entry, n * sizeof(entry[0]),
		  (off_t)(start / PAGE_SIZE * sizeof(entry[0]))) !=
		    (ssize_t)(n * sizeof(entry[0])))
		return -1;
	for (size_t i = 0; i < n; i++) {
		out[i] = (entry[i] & want) == want;
		found += out[i];
	}
	return found;
}

long uffd_exclusive_pages(int pagemap, uintptr_t start, size_t len,
			  unsigned char *exclusive)
{
	return pagemap_match(pagemap, start, len,
			     PM_PRESENT | PM_MMAP_EXCLUSIVE, exclusive);
}

long uffd_present_pages(int pagemap, uintptr_t start, size_t len,
			unsigned char *present)
{
	return pagemap_match(pagemap, start, len, PM_PRESENT, present);
}

/*
 * Drive one resolving ioctl over a range.  op fills the request for
 * [start, start+len) and runs it, returning the ioctl's result and storing
 * the kernel's progress (bytes, or a negated errno) in *done.
 */
typedef int (*uffd_range_op)(int uffd, uintptr_t start, size_t len,
			     const void *arg, int64_t *done);

static long uffd_resolve_range(int uffd, int pagemap, uintptr_t start,
			       size_t len, const void *arg, size_t arg_step,
			       uffd_range_op op)
{
	uintptr_t end = start + len;
	unsigned again = 0;
	long pages = 0;

	while (start < end) {
		int64_t done = 0;
		int rc = op(uffd, start, end - start, arg, &done);

		if (rc == 0) {
			pages += (long)((end - start) / PAGE_SIZE);
			break;
		}
		if (done > 0) { /* partial progress: go on from there */
			pages += (long)(done / PAGE_SIZE);
			start += (uintptr_t)done;
			if (arg_step)
				arg = (const char *)arg + done;
			continue;
		}
		if (errno == EEXIST || done == -EEXIST) {
			/* Populated already (a racing fault): skip them. */
			uintptr_t next =
				skip_populated(pagemap, start + PAGE_SIZE, end);

			if (arg_step)
				arg = (const char *)arg + (next - start);
			start = next;
			continue;
		}
		if (errno == EAGAIN && ++again < 1000)
			continue; /* an mm change is in flight: try again */
		return pages ? pages : -1;
	}
	return pages;
}

static int continue_op(int uffd, uintptr_t start, size_t len, const void *arg,
		       int64_t *done)
{
	unsigned flags = *(const unsigned *)arg;
	struct uffdio_continue c = {
		.range = {.start = start, .len = len},
		.mode = (flags & UFFD_MAP_WAKE
				 ? 0
				 : UFFDIO_CONTINUE_MODE_DONTWAKE) |
			(flags & UFFD_MAP_WP ? UFFDIO_CONTINUE_MODE_WP : 0),
	};
	int rc = ioctl(uffd, UFFDIO_CONTINUE, &c);

	*done = c.mapped;
	return rc;
}

long uffd_continue(int uffd, int pagemap, uintptr_t start, size_t len,
		   unsigned flags)
{
	return uffd_resolve_range(uffd, pagemap, start, len, &flags, 0,
				  continue_op);
}

static int copy_ioctl(int uffd, uintptr_t start, size_t len, const void *src,
		      __u64 mode, int64_t *done)
{
	struct uffdio_copy c = {
		.dst = start,
		.src = (uintptr_t)src,
		.len = len,
		.mode = UFFDIO_COPY_MODE_DONTWAKE | mode,
	};
	int rc = ioctl(uffd, UFFDIO_COPY, &c);

	*done = c.copy;
	return rc;
}

static int copy_op(int uffd, uintptr_t start, size_t len, const void *arg,
		   int64_t *done)
{
	return copy_ioctl(uffd, start, len, arg, 0, done);
}

long uffd_copy(int uffd, int pagemap, uintptr_t start, const void *src,
	       size_t len)
{
	return uffd_resolve_range(uffd, pagemap, start, len, src, 1, copy_op);
}

static int copy_wp_op(int uffd, uintptr_t start, size_t len, const void *arg,
		      int64_t *done)
{
	return copy_ioctl(uffd, start, len, arg, UFFDIO_COPY_MODE_WP, done);
}

long uffd_copy_wp(int uffd, int pagemap, uintptr_t start, const void *src,
		  size_t len)
{
	return uffd_resolve_range(uffd, pagemap, start, len, src, 1,
				  copy_wp_op);
}

static int zeropage_op(int uffd, uintptr_t start, size_t len, const void *arg,
		       int64_t *done)
{
	struct uffdio_zeropage z = {
		.range = {.start = start, .len = len},
		.mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE,
	};
	int rc = ioctl(uffd, UFFDIO_ZEROPAGE, &z);

	*done = z.zeropage;
	return rc;
}

long uffd_zeropage(int uffd, int pagemap, uintptr_t start, size_t len)
{
	return uffd_resolve_range(uffd, pagemap, start, len, NULL, 0,
				  zeropage_op);
}

/*
 * The wakes a thread holds back between uffd_defer_wakes and
 * uffd_flush_wakes: its uffd_wake calls, and the wakes that unprotecting
 * and poisoning would do (they are then asked not to wake, and the range
 * is noted instead).  A range that does not fit is woken at once.
 */
#define DEFERRED_WAKES_MAX 32

static __thread struct deferred_wakes {
	int on;
	int cpu; /* the CPU the wakes noted now are for; -1: any */
	unsigned nr;
	struct {
		int uffd;
		int cpu;
		struct uffdio_range range;
	} w[DEFERRED_WAKES_MAX];
	uffd_wake_route route;
	void *route_arg;
} deferred = {.cpu = -1};

void uffd_defer_wakes(void)
{
	deferred.on = 1;
}

void uffd_route_wakes(uffd_wake_route route, void *arg)
{
	deferred.route = route;
	deferred.route_arg = arg;
}

void uffd_wakes_for_cpu(int cpu)
{
	deferred.cpu = cpu;
}

int uffd_wakes_direct(void)
{
	return !deferred.on && (deferred.cpu < 0 || !deferred.route);
}

/* Wake range, for cpu (-1: any): through the route if it takes it. */
static int wake_now(int uffd, int cpu, const struct uffdio_range *range)
{
	if (cpu >= 0 && deferred.route && cpu != sched_getcpu() &&
	    !deferred.route(deferred.route_arg, cpu, uffd, range->start,
			    range->len))
		return 0;
	return ioctl(uffd, UFFDIO_WAKE, range);
}

void uffd_flush_wakes(void)
{
	for (unsigned i = 0; i < deferred.nr; i++)
		wake_now(deferred.w[i].uffd, deferred.w[i].cpu,
			 &deferred.w[i].range);
	deferred.nr = 0;
	deferred.on = 0;
}

int uffd_writeprotect(int uffd, uintptr_t start, size_t len, int wp)
{
	struct uffdio_writeprotect w = {
		.range = {.start = start, .len = len},
		.mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP : 0,
	};
	int rc;

	if (!wp && deferred.on)
		w.mode = UFFDIO_WRITEPROTECT_MODE_DONTWAKE; /* at the flush */
	rc = ioctl(uffd, UFFDIO_WRITEPROTECT, &w);

	/* Unprotecting wakes the range, unless it failed (wake anyway) or
	 * the wake is deferred. */
	if (!wp && (rc < 0 || deferred.on))
		uffd_wake(uffd, start, len);
	return rc;
}

int uffd_wake(int uffd, uintptr_t start, size_t len)
{
	struct uffdio_range range = {.start = start, .len = len};

	if (deferred.on && deferred.nr < DEFERRED_WAKES_MAX) {
		deferred.w[deferred.nr].uffd = uffd;
		deferred.w[deferred.nr].cpu = deferred.cpu;
		deferred.w[deferred.nr++].range = range;
		return 0;
	}
	return wake_now(uffd, deferred.cpu, &range);
}

int uffd_poison(int uffd, uintptr_t start, size_t len)
{
	struct uffdio_poison p = {
		.range = {.start = start, .len = len},
		.mode = deferred.on ? UFFDIO_POISON_MODE_DONTWAKE : 0,
	};
	int rc = ioctl(uffd, UFFDIO_POISON, &p);

	if (rc == 0 && deferred.on)
		uffd_wake(uffd, start, len);
	return rc;
}

int uffd_unprotect_quiet(int uffd, uintptr_t start, size_t len)
{
	struct uffdio_writeprotect w = {
		.range = {.start = start, .len = len},
		.mode = UFFDIO_WRITEPROTECT_MODE_DONTWAKE,
	};

	return ioctl(uffd, UFFDIO_WRITEPROTECT, &w);
}

int uffd_open_self_pidfd(void)
{
	return pidfd_open(getpid(), 0); /* close-on-exec, as pidfds are */
}

unsigned uffd_zap_ranges(int pidfd, const struct iovec *iov, unsigned n)
{
	size_t want = 0;
	ssize_t got = -1;
	unsigned done = 0;

	for (unsigned i = 0; i < n; i++)
		want += iov[i].iov_len;
	if (pidfd >= 0 && n > 1)
		got = process_madvise(pidfd, iov, n, MADV_DONTNEED, 0);
	if (got == (ssize_t)want)
		return n;
	/* Refused (an older kernel takes no MADV_DONTNEED here) or stopped
	 * part way: the rest one range at a time. */
	for (size_t left = got > 0 ? (size_t)got : 0;
	     done < n && left >= iov[done].iov_len; done++)
		left -= iov[done].iov_len;
	for (; done < n; done++)
		if (madvise(iov[done].iov_base, iov[done].iov_len,
			    MADV_DONTNEED))
			break;
	return done;
}
