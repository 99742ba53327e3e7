// SPDX-License-Identifier: MIT
/*
 * uffd_zap_ranges (src/uffd.c) on its own, no userfaultfd: ranges of a
 * private anonymous mapping dropped together through process_madvise, one
 * madvise at a time without a pidfd, and what a failure leaves: the ranges
 * before it dropped, the count of them returned, the ones after untouched.
 */
#include "harness.h"
#include "inject.h"
#include "uffd.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#define NPAGES 16

/* A mapping of NPAGES pages, page i filled with i + 1. */
static unsigned char *filled_mapping(void)
{
	unsigned char *p = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	REQUIRE(p != MAP_FAILED);
	for (unsigned i = 0; i < NPAGES; i++)
		memset(p + i * PG, (int)i + 1, PG);
	return p;
}

/* Whether page i holds its data (1), zeros (0), or neither (-1). */
static int page_state(const unsigned char *p, unsigned i)
{
	unsigned char first = p[i * PG];

	for (size_t k = 1; k < PG; k++)
		if (p[i * PG + k] != first)
			return -1;
	return first == 0 ? 0 : first == i + 1 ? 1 : -1;
}

/* Pages 1, 4-5 and 9 as three ranges. */
static void three_ranges(unsigned char *p, struct iovec *iov)
{
	iov[0] = (struct iovec){p + 1 * PG, PG};
	iov[1] = (struct iovec){p + 4 * PG, 2 * PG};
	iov[2] = (struct iovec){p + 9 * PG, PG};
}

static void check_dropped(const unsigned char *p, const unsigned char *drop)
{
	for (unsigned i = 0; i < NPAGES; i++)
		CHECK_EQ(page_state(p, i), drop[i] ? 0 : 1);
}

static void zap_three(int pidfd)
{
	unsigned char *p = filled_mapping();
	unsigned char drop[NPAGES] = {[1] = 1, [4] = 1, [5] = 1, [9] = 1};
	struct iovec iov[3];

	three_ranges(p, iov);
	CHECK_EQ(uffd_zap_ranges(pidfd, iov, 3), 3);
	check_dropped(p, drop);
	munmap(p, NPAGES * PG);
}

/* Through process_madvise: all three dropped, nothing else. */
TEST(zap_ranges_with_pidfd)
{
	int pidfd = uffd_open_self_pidfd();

	if (pidfd < 0) {
		h_note("no pidfd_open here: the madvise path only");
		return;
	}
	zap_three(pidfd);
	close(pidfd);
}

/* Without a pidfd: one madvise per range, the same result. */
TEST(zap_ranges_without_pidfd)
{
	zap_three(-1);
}

/* process_madvise failing (injected) falls back to madvise per range. */
TEST(zap_ranges_batch_refused)
{
	int pidfd = uffd_open_self_pidfd();

	inject_set(INJ_MADVISE, 1, EINVAL);
	zap_three(pidfd);
	inject_clear();
	if (pidfd >= 0)
		close(pidfd);
}

/*
 * A range that cannot be dropped (unmapped: ENOMEM) stops it there: the
 * ranges before it are dropped, counted; the one after keeps its data.
 */
TEST(zap_ranges_stop_at_a_failure)
{
	for (int with_pidfd = 0; with_pidfd < 2; with_pidfd++) {
		int pidfd = with_pidfd ? uffd_open_self_pidfd() : -1;
		unsigned char *p = filled_mapping();
		unsigned char drop[NPAGES] = {[1] = 1};
		struct iovec iov[3];

		three_ranges(p, iov);
		REQUIRE(munmap(p + 4 * PG, 2 * PG) == 0);
		errno = 0;
		CHECK_EQ(uffd_zap_ranges(pidfd, iov, 3), 1);
		CHECK_EQ(errno, ENOMEM);
		for (unsigned i = 0; i < NPAGES; i++)
			if (i != 4 && i != 5)
				CHECK_EQ(page_state(p, i), drop[i] ? 0 : 1);
		munmap(p, NPAGES * PG);
		if (pidfd >= 0)
			close(pidfd);
	}
}
