/* SPDX-License-Identifier: MIT */
/* Swap-out writes in flight at once; see swap_aio.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/aio_abi.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "pagesize.h"
#include "swap_aio.h"
#include "swap_dev.h"

/* An AIO context, idle in the pool or held by one write. */
struct aio_ctx {
	aio_context_t id;
	struct aio_ctx *next;
};

struct swap_aio {
	int fd;
	pthread_mutex_t lock; /* idle */
	struct aio_ctx *idle;
};

static long sys_io_setup(unsigned nr, aio_context_t *id)
{
	return syscall(SYS_io_setup, nr, id);
}

static long sys_io_destroy(aio_context_t id)
{
	return syscall(SYS_io_destroy, id);
}

static long sys_io_submit(aio_context_t id, long n, struct iocb **cbs)
{
	return syscall(SYS_io_submit, id, n, cbs);
}

static long sys_io_getevents(aio_context_t id, long min, long max,
			     struct io_event *ev)
{
	return syscall(SYS_io_getevents, id, min, max, ev, NULL);
}

static struct aio_ctx *ctx_new(void)
{
	struct aio_ctx *c = calloc(1, sizeof(*c));

	if (c && sys_io_setup(SWAP_WRITE_PAGES_MAX, &c->id) < 0) {
		int err = errno;

		free(c);
		errno = err;
		return NULL;
	}
	return c;
}

/* An idle context, or a new one; NULL with errno. */
static struct aio_ctx *ctx_get(struct swap_aio *a)
{
	struct aio_ctx *c;

	pthread_mutex_lock(&a->lock);
	c = a->idle;
	if (c)
		a->idle = c->next;
	pthread_mutex_unlock(&a->lock);
	return c ? c : ctx_new();
}

static void ctx_put(struct swap_aio *a, struct aio_ctx *c)
{
	pthread_mutex_lock(&a->lock);
	c->next = a->idle;
	a->idle = c;
	pthread_mutex_unlock(&a->lock);
}

static void ctx_free(struct aio_ctx *c)
{
	sys_io_destroy(c->id); /* waits for whatever it still has */
	free(c);
}

struct swap_aio *swap_aio_new(int fd)
{
	struct swap_aio *a = calloc(1, sizeof(*a));
	struct aio_ctx *c = a ? ctx_new() : NULL; /* can we have AIO? */

	if (!c) {
		int err = a ? errno : ENOMEM;

		free(a);
		close(fd);
		errno = err;
		return NULL;
	}
	a->fd = fd;
	a->idle = c;
	pthread_mutex_init(&a->lock, NULL);
	return a;
}

void swap_aio_destroy(struct swap_aio *a)
{
	if (!a)
		return;
	while (a->idle) {
		struct aio_ctx *c = a->idle;

		a->idle = c->next;
		ctx_free(c);
	}
	pthread_mutex_destroy(&a->lock);
	close(a->fd);
	free(a);
}

/* The requests of one write: a run of consecutive slots each. */
struct aio_write {
	struct iocb cb[SWAP_WRITE_PAGES_MAX];
	struct iocb *cbs[SWAP_WRITE_PAGES_MAX];
	struct iovec iov[SWAP_WRITE_PAGES_MAX];
	unsigned first[SWAP_WRITE_PAGES_MAX + 1]; /* run r: pages [first[r],
						     first[r + 1]) */
	unsigned nr;
};

static void plan_runs(struct aio_write *w, int fd, const uint64_t *slots,
		      const void *const *bufs, unsigned n)
{
	w->nr = 0;
	for (unsigned i = 0, j; i < n; i = j) {
		struct iocb *cb = &w->cb[w->nr];

		for (j = i + 1; j < n && slots[j] == slots[j - 1] + 1; j++)
			;
		for (unsigned k = i; k < j; k++)
			w->iov[k] = (struct iovec){(void *)bufs[k], PAGE_SIZE};
		memset(cb, 0, sizeof(*cb));
		cb->aio_fildes = (uint32_t)fd;
		cb->aio_lio_opcode = IOCB_CMD_PWRITEV;
		cb->aio_buf = (uint64_t)(uintptr_t)&w->iov[i];
		cb->aio_nbytes = j - i;
		cb->aio_offset = (int64_t)(slots[i] << PAGE_SHIFT);
		cb->aio_data = w->nr;
		w->cbs[w->nr] = cb;
		w->first[w->nr++] = i;
	}
	w->first[w->nr] = n;
}

/* Submit every run; returns how many were started (the first ones). */
static unsigned submit_runs(aio_context_t id, struct aio_write *w)
{
	unsigned started = 0;

	while (started < w->nr) {
		long got = sys_io_submit(id, w->nr - started, w->cbs + started);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break; /* the rest are not written */
		started += (unsigned)got;
	}
	return started;
}

/* Wait for the started runs, marking the pages of those that went whole.
 * Returns 0, or -1 if the context is no longer fit for use. */
static int reap_runs(aio_context_t id, struct aio_write *w, unsigned started,
		     unsigned char *ok)
{
	struct io_event ev[SWAP_WRITE_PAGES_MAX];
	unsigned left = started;

	while (left) {
		long got = sys_io_getevents(id, left, left, ev);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return -1; /* the caller destroys it: that waits */
		for (long i = 0; i < got; i++) {
			unsigned r = (unsigned)ev[i].data;
			unsigned pages = w->first[r + 1] - w->first[r];

			if (ev[i].res ==
			    (int64_t)((uint64_t)pages << PAGE_SHIFT))
				memset(ok + w->first[r], 1, pages);
		}
		left -= (unsigned)got;
	}
	return 0;
}

int swap_aio_write(struct swap_aio *a, const uint64_t *slots,
		   const void *const *bufs, unsigned n, unsigned char *ok)
{
	struct aio_write *w;
	struct aio_ctx *c;
	unsigned started;

	if (n == 0 || n > SWAP_WRITE_PAGES_MAX) {
		errno = EINVAL;
		return -1;
	}
	w = malloc(sizeof(*w));
	c = w ? ctx_get(a) : NULL;
	if (!c) {
		free(w);
		return -1;
	}
	plan_runs(w, a->fd, slots, bufs, n);
	memset(ok, 0, n);
	started = submit_runs(c->id, w);
	if (started == 0) {
		ctx_put(a, c);
		free(w);
		errno = EAGAIN;
		return -1;
	}
	if (reap_runs(c->id, w, started, ok))
		ctx_free(c); /* waits for what is still in flight */
	else
		ctx_put(a, c);
	free(w);
	return 0;
}
