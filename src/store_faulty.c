/* SPDX-License-Identifier: MIT */
/*
 * The slow and faulty store: wraps another store and adds latency and
 * injected errors, so that a program (or a test) can see how it behaves on
 * slow or failing storage.
 *
 * Every setting lives under one mutex, which an I/O takes twice: once to
 * count itself, read the settings, draw its jitter and wait out its delay,
 * once when it is done.  It never holds the mutex while it waits (a timed
 * wait on the condition variable) or calls the inner store.  A read
 * touching the held range waits on the condition variable, in the store,
 * until fl_store_faulty_release.  Once cancelled (the cancel op, at engine
 * destroy) nothing waits: holds and delays end at once, and no new one
 * starts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "deadline.h"
#include "faultline.h"

struct faulty_store {
	struct fl_store base;
	struct fl_store *inner;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* hold changed, or an I/O finished */
	struct fl_store_faults faults;
	uint64_t reads, writes;	     /* since the last fl_store_faulty_set */
	uint64_t rng;		     /* jitter state, from faults.seed */
	uint64_t hold_off, hold_len; /* hold_len 0: nothing held */
	uint64_t release_gen;	     /* bumped by each release */
	long held;		     /* reads waiting in the hold */
	long inflight;		     /* reads and writes under way */
	int cancelled;		     /* no hold, no delay any more */
};

static const struct fl_store_ops faulty_store_ops;

static struct faulty_store *to_faulty(struct fl_store *s)
{
	return (struct faulty_store *)s;
}

/* The faulty store behind s, or NULL with EINVAL. */
static struct faulty_store *faulty_get(struct fl_store *s)
{
	if (!s || s->ops != &faulty_store_ops) {
		errno = EINVAL;
		return NULL;
	}
	return to_faulty(s);
}

/* splitmix64: small, good enough for jitter, and any seed works. */
static uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* off + len, saturated: a range may run to the end of the offset space. */
static uint64_t range_end(uint64_t off, uint64_t len)
{
	return len > UINT64_MAX - off ? UINT64_MAX : off + len;
}

static int ranges_touch(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	if (!alen || !blen)
		return 0;
	return a < range_end(b, blen) && b < range_end(a, alen);
}

/* Called with the lock held. */
static uint64_t draw_delay(struct faulty_store *f, uint64_t fixed,
			   uint64_t jitter)
{
	uint64_t r;

	if (!jitter)
		return fixed;
	r = rng_next(&f->rng);
	if (jitter != UINT64_MAX) /* 0..jitter inclusive */
		r %= jitter + 1;
	return r > UINT64_MAX - fixed ? UINT64_MAX : fixed + r;
}

/* Called with the lock held: the Nth (count) I/O, of len bytes at off. */
static int fails(const struct fl_store_faults *ff, uint64_t nth, uint64_t count,
		 uint64_t off, size_t len)
{
	if ((nth && count % nth == 0) ||
	    ranges_touch(off, len, ff->fail_offset, ff->fail_length))
		return ff->fail_errno ? ff->fail_errno : EIO;
	return 0;
}

static int held_here(struct faulty_store *f, uint64_t off, size_t len)
{
	return ranges_touch(off, len, f->hold_off, f->hold_len);
}

/* Called with the lock held.  A release lets every read held before it go,
 * even if a new hold of the same range follows at once. */
static void hold_wait(struct faulty_store *f, uint64_t off, size_t len)
{
	uint64_t gen = f->release_gen;

	if (f->cancelled || !held_here(f, off, len))
		return;
	f->held++;
	while (!f->cancelled && f->release_gen == gen && held_here(f, off, len))
		pthread_cond_wait(&f->cond, &f->lock);
	f->held--;
}

/* Called with the lock held, which the wait drops: wait us microseconds,
 * or less if the store is cancelled meanwhile. */
static void delay_wait(struct faulty_store *f, uint64_t us)
{
	struct timespec end;

	if (!us || f->cancelled)
		return;
	end = deadline_after(CLOCK_MONOTONIC, us * 1000);
	while (!f->cancelled &&
	       pthread_cond_timedwait(&f->cond, &f->lock, &end) != ETIMEDOUT)
		; /* woken by another I/O or a hold change: wait on */
}

/* Keeps errno: it is the inner store's answer to the caller. */
static void io_done(struct faulty_store *f)
{
	int saved = errno;

	pthread_mutex_lock(&f->lock);
	if (--f->inflight == 0)
		pthread_cond_broadcast(&f->cond); /* for destroy */
	pthread_mutex_unlock(&f->lock);
	errno = saved;
}

static ssize_t faulty_read(struct fl_store *s, void *buf, size_t len,
			   uint64_t off)
{
	struct faulty_store *f = to_faulty(s);
	const struct fl_store_faults *ff = &f->faults;
	ssize_t r = -1;
	int err;

	pthread_mutex_lock(&f->lock);
	f->inflight++;
	hold_wait(f, off, len);
	/* Counted after the hold: the settings that apply are those at the
	 * moment the read really goes ahead. */
	err = fails(ff, ff->fail_every_nth_read, ++f->reads, off, len);
	delay_wait(f, draw_delay(f, ff->read_delay_us, ff->read_jitter_us));
	pthread_mutex_unlock(&f->lock);
	if (err)
		errno = err;
	else
		r = f->inner->ops->read(f->inner, buf, len, off);
	io_done(f);
	return r;
}

static ssize_t faulty_write(struct fl_store *s, const void *buf, size_t len,
			    uint64_t off)
{
	struct faulty_store *f = to_faulty(s);
	const struct fl_store_faults *ff = &f->faults;
	ssize_t r = -1;
	int err;

	pthread_mutex_lock(&f->lock);
	f->inflight++;
	err = fails(ff, ff->fail_every_nth_write, ++f->writes, off, len);
	delay_wait(f, draw_delay(f, ff->write_delay_us, ff->write_jitter_us));
	pthread_mutex_unlock(&f->lock);
	if (!f->inner->ops->write) /* only if called past read_only */
		errno = EROFS;
	else if (err)
		errno = err;
	else
		r = f->inner->ops->write(f->inner, buf, len, off);
	io_done(f);
	return r;
}

static int64_t faulty_size(struct fl_store *s)
{
	struct fl_store *in = to_faulty(s)->inner;

	return in->ops->size(in);
}

static int faulty_flush(struct fl_store *s)
{
	struct fl_store *in = to_faulty(s)->inner;

	return in->ops->flush ? in->ops->flush(in) : 0;
}

/*
 * Stop waiting: held reads and delayed I/O go on at once (to the inner
 * store: they can complete), and later ones neither wait in a hold nor
 * sleep.  Injected errors stay.  The inner store is told too.
 */
static void faulty_cancel(struct fl_store *s)
{
	struct faulty_store *f = to_faulty(s);

	pthread_mutex_lock(&f->lock);
	f->cancelled = 1;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	if (f->inner->ops->cancel)
		f->inner->ops->cancel(f->inner);
}

/*
 * Reads and writes still under way at destroy are the caller's bug, but a
 * held one would never end: release the hold, end delays and wait for them
 * all, so that none touches the inner store after it is gone.
 */
static void faulty_destroy(struct fl_store *s)
{
	struct faulty_store *f = to_faulty(s);

	pthread_mutex_lock(&f->lock);
	f->hold_len = 0;
	f->release_gen++;
	f->cancelled = 1;
	pthread_cond_broadcast(&f->cond);
	while (f->inflight)
		pthread_cond_wait(&f->cond, &f->lock);
	pthread_mutex_unlock(&f->lock);
	f->inner->ops->destroy(f->inner);
	pthread_cond_destroy(&f->cond);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

static const struct fl_store_ops faulty_store_ops = {
	.read = faulty_read,
	.write = faulty_write,
	.size = faulty_size,
	.flush = faulty_flush,
	.destroy = faulty_destroy,
	.cancel = faulty_cancel,
};

/* Called with the lock held (or before the store is shared). */
static void faults_apply(struct faulty_store *f,
			 const struct fl_store_faults *faults)
{
	static const struct fl_store_faults none;

	if (!faults)
		faults = &none;
	/* A new seed restarts the jitter; the same seed continues it. */
	if (faults->seed != f->faults.seed)
		f->rng = faults->seed;
	f->faults = *faults;
	f->reads = 0;
	f->writes = 0;
}

/* The lock, and the condition variable on CLOCK_MONOTONIC (delays). */
static int faulty_init_sync(struct faulty_store *f)
{
	pthread_condattr_t attr;
	int rc;

	if (pthread_condattr_init(&attr))
		return -1;
	rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) ||
	     pthread_cond_init(&f->cond, &attr);
	pthread_condattr_destroy(&attr);
	if (rc)
		return -1;
	if (pthread_mutex_init(&f->lock, NULL)) {
		pthread_cond_destroy(&f->cond);
		return -1;
	}
	return 0;
}

struct fl_store *fl_store_faulty(struct fl_store *inner,
				 const struct fl_store_faults *faults)
{
	struct faulty_store *f;

	if (!inner || !inner->ops || !inner->ops->read || !inner->ops->size ||
	    !inner->ops->destroy) {
		errno = EINVAL;
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	if (faulty_init_sync(f)) {
		free(f);
		errno = ENOMEM;
		return NULL;
	}
	f->base.ops = &faulty_store_ops;
	/* A store that cannot write is read-only, whatever it says. */
	f->base.read_only = inner->read_only || !inner->ops->write;
	f->inner = inner;
	faults_apply(f, faults);
	return &f->base;
}

int fl_store_faulty_set(struct fl_store *store,
			const struct fl_store_faults *faults)
{
	struct faulty_store *f = faulty_get(store);

	if (!f)
		return -1;
	pthread_mutex_lock(&f->lock);
	faults_apply(f, faults);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

int fl_store_faulty_hold(struct fl_store *store, uint64_t offset,
			 uint64_t length)
{
	struct faulty_store *f = faulty_get(store);

	if (!f)
		return -1;
	pthread_mutex_lock(&f->lock);
	f->hold_off = offset;
	f->hold_len = length;
	/* Reads held by a previous range that this one misses go on. */
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

int fl_store_faulty_release(struct fl_store *store)
{
	struct faulty_store *f = faulty_get(store);

	if (!f)
		return -1;
	pthread_mutex_lock(&f->lock);
	f->hold_len = 0;
	f->release_gen++;
	pthread_cond_broadcast(&f->cond);
	pthread_mutex_unlock(&f->lock);
	return 0;
}

long fl_store_faulty_held(struct fl_store *store)
{
	struct faulty_store *f = faulty_get(store);
	long n;

	if (!f)
		return -1;
	pthread_mutex_lock(&f->lock);
	n = f->held;
	pthread_mutex_unlock(&f->lock);
	return n;
}
