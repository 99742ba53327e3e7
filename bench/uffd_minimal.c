// SPDX-License-Identifier: MIT
/*
 * A baseline for the scenarios whose faults must wait for a read: the
 * least any userfaultfd server does per fault (its thread wakes for the
 * fault's message, reads the page, copies it in and so wakes the faulting
 * thread).  What it costs above the kernel's own fault path is a floor
 * for every engine that serves faults from user space, faultline included:
 * `uffd-minimal/kernel-random` says how near the kernel such an engine can
 * come on the machine it runs on.
 */
#define _GNU_SOURCE
#include "uffd_minimal.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Copy the filled page in; a page another server copied first is there
 * already (EEXIST): wake the thread that faulted on it. */
static int serve_page(struct uffd_minimal *m, uint64_t addr, void *buf)
{
	struct uffdio_copy copy = {
		.dst = addr, .src = (uint64_t)(uintptr_t)buf, .len = m->page};
	struct uffdio_range range = {.start = addr, .len = m->page};

	if (ioctl(m->uffd, UFFDIO_COPY, &copy) == 0)
		return 0;
	if (errno == EEXIST && ioctl(m->uffd, UFFDIO_WAKE, &range) == 0)
		return 0;
	return -1;
}

static void *server_main(void *arg)
{
	struct uffd_minimal *m = arg;
	const struct uffd_minimal_source *src = m->src;
	struct pollfd pfd[2] = {{.fd = m->uffd, .events = POLLIN},
				{.fd = m->stop_fd, .events = POLLIN}};
	void *state = src->open ? src->open(src->arg) : src->arg, *buf = NULL;

	if (!state || posix_memalign(&buf, m->page, m->page)) {
		m->failed = 1;
		state = NULL;
	}
	for (;;) {
		struct uffd_msg msg;
		uint64_t addr;

		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		if (read(m->uffd, &msg, sizeof(msg)) != sizeof(msg))
			continue; /* another server took it */
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		addr = msg.arg.pagefault.address & ~(uint64_t)(m->page - 1);
		if (!state || src->fill(state, buf, addr - (uintptr_t)m->base))
			m->failed = 1; /* the copy below still wakes it */
		if (serve_page(m, addr, buf ? buf : m->base) < 0)
			m->failed = 1;
	}
	if (state && src->open && src->close)
		src->close(state);
	free(buf);
	return NULL;
}

/* The userfaultfd, registered for the missing pages of m's mapping. */
static int uffd_register(struct uffd_minimal *m)
{
	struct uffdio_api api = {.api = UFFD_API};
	struct uffdio_register reg = {
		.range = {.start = (uintptr_t)m->base, .len = m->size},
		.mode = UFFDIO_REGISTER_MODE_MISSING};

	m->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (m->uffd < 0)
		return -1;
	if (ioctl(m->uffd, UFFDIO_API, &api) == 0 &&
	    ioctl(m->uffd, UFFDIO_REGISTER, &reg) == 0)
		return 0;
	close(m->uffd);
	return -1;
}

void *uffd_minimal_map(struct uffd_minimal *m, uint64_t size, size_t page,
		       unsigned nservers, const struct uffd_minimal_source *src)
{
	int err;

	if (nservers == 0 || nservers > UFFD_MINIMAL_MAX_SERVERS) {
		errno = EINVAL;
		return NULL;
	}
	*m = (struct uffd_minimal){.size = size, .page = page, .src = src};
	m->base = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m->base == MAP_FAILED)
		return NULL;
	m->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (m->stop_fd < 0 || uffd_register(m) < 0)
		goto fail;
	for (; m->servers < nservers; m->servers++)
		if (pthread_create(&m->tid[m->servers], NULL, server_main, m)) {
			errno = EAGAIN;
			uffd_minimal_unmap(m);
			return NULL;
		}
	return m->base;
fail:
	err = errno;
	if (m->stop_fd >= 0)
		close(m->stop_fd);
	munmap(m->base, size);
	errno = err;
	return NULL;
}

int uffd_minimal_unmap(struct uffd_minimal *m)
{
	uint64_t one = 1;

	if (write(m->stop_fd, &one, sizeof(one)) != sizeof(one))
		abort(); /* an eventfd write of 1 cannot fail */
	for (unsigned i = 0; i < m->servers; i++)
		pthread_join(m->tid[i], NULL);
	close(m->uffd);
	close(m->stop_fd);
	munmap(m->base, m->size);
	return m->failed ? -1 : 0;
}
