/* SPDX-License-Identifier: MIT */
/*
 * Everything that talks to userfaultfd.  The ioctl wrappers resolve whole
 * ranges: they step over pages that another thread populated first (EEXIST)
 * and continue after partial progress (EAGAIN), so a caller asks once.
 */
#ifndef FL_UFFD_H
#define FL_UFFD_H

#include <linux/userfaultfd.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Newer than Debian 12's kernel headers. */
#ifndef UFFDIO_CONTINUE_MODE_WP
#define UFFDIO_CONTINUE_MODE_WP ((__u64)1 << 1)
#endif
#ifndef UFFD_FEATURE_POISON
#define UFFD_FEATURE_POISON (1 << 14)
#endif
#ifndef UFFDIO_POISON
#define _UFFDIO_POISON 0x08
struct uffdio_poison {
	struct uffdio_range range;
	__u64 mode;
	__s64 updated;
};
#define UFFDIO_POISON _IOWR(UFFDIO, _UFFDIO_POISON, struct uffdio_poison)
#endif
#ifndef UFFDIO_POISON_MODE_DONTWAKE
#define UFFDIO_POISON_MODE_DONTWAKE ((__u64)1 << 0)
#endif

/* What a registration asks to be told about. */
enum uffd_modes {
	UFFD_MODES_ANON = 1,  /* MISSING | WP on private anonymous memory */
	UFFD_MODES_CACHE = 2, /* MISSING | MINOR | WP on a view of a memfd */
};

/*
 * Open /proc/self/pagemap, which the range operations below use to step
 * over pages that are already mapped in one read instead of one ioctl each.
 * Returns -1 if it cannot be read; the operations then skip page by page.
 */
int uffd_open_pagemap(void);

/*
 * What maps the page at addr now: UFFD_PAGE_PRESENT and UFFD_PAGE_WP
 * (write-protected by userfaultfd), or -1 if unknown.  Tells a stale fault
 * message (another thread's fault on the same page was served first and
 * woke this one too) from a live one.
 */
#define UFFD_PAGE_PRESENT 1
#define UFFD_PAGE_WP	  2
/* Not present: a marker other than uffd-wp (the poison, where one was
 * placed). */
#define UFFD_PAGE_MARKER 4
int uffd_page_flags(int pagemap, uintptr_t addr);

/*
 * Mark in exclusive[i] whether page i of [start, start + len) (at most 512
 * pages) is a page of this mapping's own: not the shared zero page, not a
 * cache page.  Returns how many, or -1 if unknown.
 */
long uffd_exclusive_pages(int pagemap, uintptr_t start, size_t len,
			  unsigned char *exclusive);

/* Mark in present[i] whether page i of [start, start + len) (at most 512
 * pages) is mapped.  Returns how many, or -1 if unknown. */
long uffd_present_pages(int pagemap, uintptr_t start, size_t len,
			unsigned char *present);

/* Open a userfaultfd (system call, else /dev/userfaultfd) with our API. */
int uffd_open(void);
int uffd_register(int uffd, uintptr_t start, size_t len, enum uffd_modes m);
int uffd_unregister(int uffd, uintptr_t start, size_t len);

/* How uffd_continue maps. */
enum {
	UFFD_MAP_WP = 1,   /* write-protected: a store to a page faults */
	UFFD_MAP_WAKE = 2, /* wake the threads waiting on the pages mapped */
};
/*
 * Map the memfd pages behind [start, start+len) of a view, as flags say
 * (UFFD_MAP_*; without UFFD_MAP_WAKE nobody is woken).  Populated pages
 * are skipped, and not woken.  Returns the number of pages mapped, or -1
 * with errno (ENOENT: the range is no longer registered; EFAULT: a page
 * is not in the memfd).
 */
long uffd_continue(int uffd, int pagemap, uintptr_t start, size_t len,
		   unsigned flags);
/* Copy len bytes from src into unpopulated pages (skips populated ones). */
long uffd_copy(int uffd, int pagemap, uintptr_t start, const void *src,
	       size_t len);
/* The same, the pages mapped write-protected (a store to one faults). */
long uffd_copy_wp(int uffd, int pagemap, uintptr_t start, const void *src,
		  size_t len);
/* Map the zero page at unpopulated pages of [start, start+len). */
long uffd_zeropage(int uffd, int pagemap, uintptr_t start, size_t len);
/* Write-protect (wp=1, does not wake) or unprotect (wp=0, wakes). */
int uffd_writeprotect(int uffd, uintptr_t start, size_t len, int wp);
/* Wake the threads faulting in [start, start+len) (or, while the calling
 * thread defers its wakes, note the range to wake at the flush). */
int uffd_wake(int uffd, uintptr_t start, size_t len);
/*
 * Hold back the calling thread's wakes (uffd_wake, and those of
 * uffd_writeprotect unprotecting and uffd_poison) until uffd_flush_wakes,
 * which issues them and ends the deferral.  A polling handler serves with
 * its locks held and its normal scheduling class, then wakes the faulting
 * threads once it holds nothing, from the idle class (threads.c).
 */
void uffd_defer_wakes(void);
void uffd_flush_wakes(void);
/* Whether the calling thread's wakes happen at once, from here (neither
 * deferred nor routed to another CPU's poller): a resolving ioctl may
 * then wake its own pages (UFFD_MAP_WAKE), a system call fewer. */
int uffd_wakes_direct(void);
/*
 * Where the calling thread's wakes go.  uffd_wakes_for_cpu names the CPU
 * the wakes from now on are for (a resumed fault's thread's, see
 * fault_handle), or -1 for any; a wake for another CPU than the caller's
 * is offered to the thread's route (set once by uffd_route_wakes, NULL:
 * none), which returns 0 if it took the wake, to issue it on that CPU.
 */
typedef int (*uffd_wake_route)(void *arg, int cpu, int uffd, uintptr_t start,
			       size_t len);
void uffd_route_wakes(uffd_wake_route route, void *arg);
void uffd_wakes_for_cpu(int cpu);
/*
 * Make the next access to [start, start+len) raise SIGBUS; wakes.  Fails
 * with EEXIST if a page (or a uffd-wp marker) is there, waking nobody:
 * the caller must then clear it, or wake.
 */
int uffd_poison(int uffd, uintptr_t start, size_t len);
/* Lift write protection (and uffd-wp markers) without waking anyone. */
int uffd_unprotect_quiet(int uffd, uintptr_t start, size_t len);

/* A pidfd of this process (close-on-exec) for uffd_zap_ranges, or -1. */
int uffd_open_self_pidfd(void);
/*
 * MADV_DONTNEED on each of the n ranges, in order, with one TLB flush for
 * all of them where the kernel can (process_madvise through pidfd, Linux
 * 6.16 and later batch it; pidfd -1 or a kernel that refuses: one madvise
 * per range).  Returns how many ranges, from the first, were dropped; the
 * others (after a failure, errno set) are as a failed madvise leaves them.
 */
unsigned uffd_zap_ranges(int pidfd, const struct iovec *iov, unsigned n);

#endif /* FL_UFFD_H */
