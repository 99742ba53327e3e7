/* SPDX-License-Identifier: MIT */
/*
 * The least a userfaultfd server does for a fault whose page must be
 * read: a bench baseline (`uffd-minimal` rows), not part of faultline.
 */
#ifndef FAULTLINE_BENCH_UFFD_MINIMAL_H
#define FAULTLINE_BENCH_UFFD_MINIMAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define UFFD_MINIMAL_MAX_SERVERS 64

/* Where a server's pages come from. */
struct uffd_minimal_source {
	/* A server's own state (e.g. a connection), or NULL on failure;
	 * NULL open: every server's state is arg. */
	void *(*open)(void *arg);
	/* Fill page (page bytes, page-aligned) with the bytes at offset of
	 * the data; 0, or -1 (the page is left zero: the checksum fails). */
	int (*fill)(void *state, void *page, uint64_t offset);
	void (*close)(void *state); /* may be NULL */
	void *arg;
};

struct uffd_minimal {
	char *base;
	uint64_t size;
	size_t page;
	int uffd, stop_fd;
	unsigned servers;
	const struct uffd_minimal_source *src;
	pthread_t tid[UFFD_MINIMAL_MAX_SERVERS];
	int failed; /* a fill or a copy failed */
};

/*
 * Map size bytes (a multiple of page) of anonymous private memory whose
 * missing pages nservers threads serve from src: each waits for a fault
 * (poll, read), fills a buffer and copies it in (UFFDIO_COPY, which wakes
 * the faulting thread).  No cache, no limit, no bookkeeping.  Returns the
 * mapping, or NULL with errno set.
 */
void *uffd_minimal_map(struct uffd_minimal *m, uint64_t size, size_t page,
		       unsigned nservers,
		       const struct uffd_minimal_source *src);

/* Stop the servers and unmap; returns -1 if any fill or copy failed. */
int uffd_minimal_unmap(struct uffd_minimal *m);

#endif
