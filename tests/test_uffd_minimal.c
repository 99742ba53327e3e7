// SPDX-License-Identifier: MIT
/*
 * The bench's uffd-minimal baseline (bench/uffd_minimal.c): the least a
 * userfaultfd server does per fault.  Its rows are only worth printing if
 * it serves real faults with the right bytes, from several threads at
 * once, reports a failed read, and leaves nothing behind.
 */
#include "harness.h"
#include "../bench/uffd_minimal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#define PAGE  4096u
#define PAGES 256u

/* A made-up store: each word is its offset, scrambled; fills counted. */
struct pattern {
	int fail_at; /* a page whose fill fails, or -1 */
	_Atomic unsigned fills;
};

static uint64_t word_at(uint64_t off)
{
	return off * 0x9e3779b97f4a7c15ULL + 1;
}

static int pattern_fill(void *state, void *page, uint64_t offset)
{
	struct pattern *p = state;

	p->fills++;
	if (p->fail_at >= 0 && offset == (uint64_t)p->fail_at * PAGE)
		return -1;
	for (unsigned i = 0; i < PAGE / 8; i++)
		((uint64_t *)page)[i] = word_at(offset + i * 8);
	return 0;
}

struct toucher {
	const char *base;
	unsigned first;
	int wrong;
};

/* Every page from first on, in steps of 3 (threads overlap). */
static void *touch_pages(void *arg)
{
	struct toucher *t = arg;

	for (unsigned pg = t->first; pg < PAGES; pg += 3) {
		uint64_t off = (uint64_t)pg * PAGE + (pg % 512) * 8;

		if (*(const volatile uint64_t *)(t->base + off) != word_at(off))
			t->wrong = 1;
	}
	return NULL;
}

static int open_fds(void)
{
	int n = 0;

	for (int fd = 0; fd < 1024; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

TEST(faults_from_several_threads_read_the_right_bytes)
{
	struct pattern pat = {.fail_at = -1};
	struct uffd_minimal_source src = {.fill = pattern_fill, .arg = &pat};
	struct uffd_minimal m;
	struct toucher t[4];
	pthread_t tid[4];
	int fds = open_fds();
	char *p;

	h_require_userfaultfd();
	p = uffd_minimal_map(&m, (uint64_t)PAGES * PAGE, PAGE, 3, &src);
	REQUIRE(p != NULL);
	for (int i = 0; i < 4; i++) {
		t[i] = (struct toucher){.base = p, .first = (unsigned)i % 3};
		REQUIRE(pthread_create(&tid[i], NULL, touch_pages, &t[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(tid[i], NULL);
		CHECK_EQ(t[i].wrong, 0);
	}
	/* Each page filled once, or twice where two threads raced on it. */
	CHECK(pat.fills >= PAGES && pat.fills <= PAGES + PAGES / 3 + 1);
	CHECK_EQ(uffd_minimal_unmap(&m), 0);
	CHECK_EQ(open_fds(), fds);
}

TEST(a_failed_read_is_reported_and_the_thread_not_stuck)
{
	struct pattern pat = {.fail_at = 7};
	struct uffd_minimal_source src = {.fill = pattern_fill, .arg = &pat};
	struct uffd_minimal m;
	char *p;

	h_require_userfaultfd();
	p = uffd_minimal_map(&m, (uint64_t)PAGES * PAGE, PAGE, 1, &src);
	REQUIRE(p != NULL);
	CHECK_EQ(*(volatile uint64_t *)(p + 6 * PAGE), word_at(6 * PAGE));
	(void)*(volatile uint64_t *)(p + 7 * PAGE); /* served, but wrong */
	CHECK_EQ(uffd_minimal_unmap(&m), -1);
}

TEST(bad_server_counts_are_refused)
{
	struct pattern pat = {.fail_at = -1};
	struct uffd_minimal_source src = {.fill = pattern_fill, .arg = &pat};
	struct uffd_minimal m;

	errno = 0;
	CHECK(uffd_minimal_map(&m, PAGE, PAGE, 0, &src) == NULL);
	CHECK_EQ(errno, EINVAL);
	errno = 0;
	CHECK(uffd_minimal_map(&m, PAGE, PAGE, UFFD_MINIMAL_MAX_SERVERS + 1,
			       &src) == NULL);
	CHECK_EQ(errno, EINVAL);
}
