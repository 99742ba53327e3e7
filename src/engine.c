/* SPDX-License-Identifier: MIT */
/* Engine life cycle, configuration and statistics. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "aio.h"
#include "engine.h"
#include "flusher.h"
#include "group.h"
#include "object.h"
#include "uffd.h"

#define DEFAULT_FAULT_AROUND 4096
#define DEFAULT_READAHEAD    2048
#define DEFAULT_ANON_AROUND  256
#define DEFAULT_IO_THREADS   2
#define MAX_HANDLER_THREADS  1024
#define MAX_BATCH_PAGES	     65536
#define MAX_ANON_AROUND	     512
#define DEFAULT_POLL_US	     300
#define MAX_POLL_US	     10000

/* A positive integer from the environment, or 0 if unset or malformed. */
static unsigned env_unsigned(const char *name)
{
	const char *s = getenv(name);
	char *end;
	unsigned long v;

	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > MAX_BATCH_PAGES || s[0] == '-')
		return 0;
	return (unsigned)v;
}

void fl_config_init(struct fl_config *c)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	const char *s;
	unsigned v;

	if (!c) {
		errno = EINVAL;
		return;
	}
	memset(c, 0, sizeof(*c));
	c->handler_threads = cpus > 0 ? (unsigned)cpus : 1;
	c->fault_around_pages = DEFAULT_FAULT_AROUND;
	c->readahead_pages = DEFAULT_READAHEAD;
	c->anon_fault_around_pages = DEFAULT_ANON_AROUND;
	if ((v = env_unsigned("FAULTLINE_THREADS")) && v <= MAX_HANDLER_THREADS)
		c->handler_threads = v;
	if ((v = env_unsigned("FAULTLINE_FAULT_AROUND")))
		c->fault_around_pages = v;
	if ((v = env_unsigned("FAULTLINE_READAHEAD")))
		c->readahead_pages = v;
	if ((v = env_unsigned("FAULTLINE_ANON_AROUND")) && v <= MAX_ANON_AROUND)
		c->anon_fault_around_pages = v;
	c->io_threads = DEFAULT_IO_THREADS;
	if ((v = env_unsigned("FAULTLINE_IO_THREADS")) && v <= MAX_IO_THREADS)
		c->io_threads = v;
	c->print_stats_at_destroy = env_unsigned("FAULTLINE_STATS") != 0;
	/* Polling only pays where the poller does not take the faulting
	 * thread's CPU. */
	c->handler_poll_us = cpus > 1 ? DEFAULT_POLL_US : -1;
	if ((s = getenv("FAULTLINE_POLL_US")) && !strcmp(s, "0"))
		c->handler_poll_us = -1;
	else if ((v = env_unsigned("FAULTLINE_POLL_US")) && v <= MAX_POLL_US)
		c->handler_poll_us = (int)v;
}

/* Fill in defaults for zero fields and check the rest. */
static int config_resolve(const struct fl_config *in, struct fl_config *out)
{
	struct fl_config defaults;

	fl_config_init(&defaults);
	if (!in) {
		*out = defaults;
		return 0;
	}
	*out = *in;
	if (!out->handler_threads)
		out->handler_threads = defaults.handler_threads;
	if (!out->fault_around_pages)
		out->fault_around_pages = defaults.fault_around_pages;
	if (!out->readahead_pages)
		out->readahead_pages = defaults.readahead_pages;
	if (!out->anon_fault_around_pages)
		out->anon_fault_around_pages = defaults.anon_fault_around_pages;
	if (!out->io_threads)
		out->io_threads = defaults.io_threads;
	if (!out->handler_poll_us)
		out->handler_poll_us = defaults.handler_poll_us;
	if (out->handler_poll_us < -1 || out->handler_poll_us > MAX_POLL_US) {
		errno = EINVAL;
		return -1;
	}
	if (out->handler_threads > MAX_HANDLER_THREADS ||
	    out->fault_around_pages > MAX_BATCH_PAGES ||
	    out->readahead_pages > MAX_BATCH_PAGES ||
	    out->anon_fault_around_pages > MAX_ANON_AROUND ||
	    out->io_threads > MAX_IO_THREADS) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

static void engine_free(struct fl_engine *e)
{
	int saved = errno;

	flusher_stop(e);
	threads_stop(e);
	aio_drain(e);
	aio_destroy(e);
	flusher_free(e);
	if (e->zero_buffer)
		munmap(e->zero_buffer, MAX_ANON_AROUND * PAGE_SIZE);
	if (e->stop_fd >= 0)
		close(e->stop_fd);
	if (e->pagemap_fd >= 0)
		close(e->pagemap_fd);
	if (e->follow_fd >= 0)
		close(e->follow_fd);
	if (e->self_pidfd >= 0)
		close(e->self_pidfd);
	if (e->uffd >= 0)
		close(e->uffd);
	workqueue_destroy(&e->work);
	swap_engine_destroy(e); /* the cache, charged to groups, first */
	if (e->root_group)
		groups_destroy(e);
	pagetable_destroy(&e->pagetable);
	pthread_rwlock_destroy(&e->map_lock);
	pthread_mutex_destroy(&e->objects_lock);
	pthread_mutex_destroy(&e->threads_lock);
	random_poll_destroy(&e->random_poll);
	free(e);
	errno = saved;
}

static void engine_init_locks(struct fl_engine *e)
{
	pthread_rwlockattr_t attr;

	/* Faults are readers; map/unmap must not starve behind them. */
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(
		&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&e->map_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	pthread_mutex_init(&e->objects_lock, NULL);
	pthread_mutex_init(&e->threads_lock, NULL);
	random_poll_init(&e->random_poll);
	pagetable_init(&e->pagetable);
	swap_engine_init(e);
}

fl_engine *fl_engine_create(const struct fl_config *config)
{
	struct fl_engine *e;

	if (sysconf(_SC_PAGESIZE) != (long)PAGE_SIZE) {
		errno = ENOTSUP; /* see pagesize.h */
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->uffd = e->stop_fd = e->pagemap_fd = e->self_pidfd = e->work.fd = -1;
	e->poll_start_fd = e->follow_fd = e->io_ep = -1;
	engine_init_locks(e);
	if (workqueue_init(&e->work) || groups_init(e))
		goto fail;
	if (config_resolve(config, &e->config))
		goto fail;
	e->uffd = uffd_open();
	if (e->uffd < 0)
		goto fail;
	e->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (e->stop_fd < 0)
		goto fail;
	e->pagemap_fd = uffd_open_pagemap();	/* optional: -1 is fine */
	e->self_pidfd = uffd_open_self_pidfd(); /* optional too */
	e->self_pid = getpid();
	if (aio_init(e) || flusher_init(e))
		goto fail;
	/* Never written: reads of it map the kernel's zero page. */
	e->zero_buffer = mmap(NULL, MAX_ANON_AROUND * PAGE_SIZE, PROT_READ,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (e->zero_buffer == MAP_FAILED) {
		e->zero_buffer = NULL;
		goto fail;
	}
	if (threads_start(e))
		goto fail;
	return e;
fail:
	engine_free(e);
	return NULL;
}

int fl_engine_stats(fl_engine *e, struct fl_stats *stats)
{
	if (!e || !stats) {
		errno = EINVAL;
		return -1;
	}
	counters_read(&e->stats, stats);
	stats->dirty_pages = atomic_load(&e->dirty_pages);
	stats->cached_pages = atomic_load(&e->cached_pages);
	pagetable_lock(&e->pagetable);
	stats->private_pages = e->pagetable.nr_private;
	pagetable_unlock(&e->pagetable);
	return 0;
}

int fl_engine_lock_stats(fl_engine *e, struct fl_lock_stats *s)
{
	if (!e || !s) {
		errno = EINVAL;
		return -1;
	}
	*s = (struct fl_lock_stats){
		.fault_holds = atomic_load(&e->fault_hold.count),
		.fault_hold_p50_ns = lockstat_quantile(&e->fault_hold, 0.50),
		.fault_hold_p99_ns = lockstat_quantile(&e->fault_hold, 0.99),
		.fault_hold_max_ns = atomic_load(&e->fault_hold.max_ns),
		.map_waits = atomic_load(&e->map_wait.count),
		.map_wait_p50_ns = lockstat_quantile(&e->map_wait, 0.50),
		.map_wait_p99_ns = lockstat_quantile(&e->map_wait, 0.99),
		.map_wait_max_ns = atomic_load(&e->map_wait.max_ns),
	};
	return 0;
}

int fl_engine_lock_stats_reset(fl_engine *e)
{
	if (!e) {
		errno = EINVAL;
		return -1;
	}
	lockstat_reset(&e->fault_hold);
	lockstat_reset(&e->map_wait);
	return 0;
}

/*
 * With everything freed, nothing may still be charged: a page or a charge
 * leaked.  FAULTLINE_CHECK_CHARGES=1 (the test suite) makes it fatal.
 */
static void check_charges(struct fl_engine *e)
{
	for (struct fl_group *g = e->groups; g; g = g->next) {
		uint64_t usage = atomic_load(&g->usage);

		if (usage == 0 && !atomic_load(&g->cache_pages) &&
		    !atomic_load(&g->private_pages))
			continue;
		fprintf(stderr,
			"faultline: group %s still has %llu pages charged "
			"(%llu cache, %llu private) at engine destroy\n",
			g->name, (unsigned long long)usage,
			(unsigned long long)atomic_load(&g->cache_pages),
			(unsigned long long)atomic_load(&g->private_pages));
		if (getenv("FAULTLINE_CHECK_CHARGES"))
			abort();
	}
}

/* Tell every object's store to stop waiting (fl_store_ops.cancel). */
static void engine_cancel_stores(struct fl_engine *e)
{
	pthread_mutex_lock(&e->objects_lock);
	for (struct fl_object *o = e->objects; o; o = o->engine_next)
		if (o->store && o->store->ops->cancel)
			o->store->ops->cancel(o->store);
	pthread_mutex_unlock(&e->objects_lock);
}

int fl_engine_destroy(fl_engine *e)
{
	int rc = 0;

	if (!e) {
		errno = EINVAL;
		return -1;
	}
	mappings_destroy(e);
	/* Stores stop waiting (a held or stalled read), so that the I/O
	 * threads can finish; then no thread may touch an object freed
	 * below. */
	aio_stop_here(e); /* completions go to the handlers from now */
	engine_cancel_stores(e);
	/* Paused writers resume, and the flusher's writes complete on the
	 * handler threads, before these stop. */
	flusher_stop(e);
	threads_stop(e);
	/* Reads still in flight end here: their faults are cancelled. */
	aio_drain(e);
	groups_wake_waiters(e); /* their faults are cancelled just below */
	workqueue_destroy(&e->work);
	/* Every parked fault was resumed to its end, or cancelled. */
	fl_assert(atomic_load(&e->faults_parked) == 0);
	/* Objects the caller did not close go too: write back, then free. */
	while (e->objects)
		if (object_release(e->objects))
			rc = -1;
	swap_cache_sweep(e); /* what is left is charged: give it back */
	check_charges(e);
	if (e->config.print_stats_at_destroy) {
		struct fl_stats stats;

		fl_engine_stats(e, &stats);
		fl_stats_print(stderr, "faultline: ", &stats);
	}
	engine_free(e);
	if (rc)
		errno = EIO;
	return rc;
}
