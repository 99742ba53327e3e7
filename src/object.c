/* SPDX-License-Identifier: MIT */
/* Objects: life cycle, the memfd behind the page cache, references. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "aio.h"
#include "engine.h"
#include "object.h"
#include "swap.h"

#ifdef FL_INJECT
void (*object_test_hook_dying_put)(void);
#endif

static void engine_link_object(struct fl_engine *e, struct fl_object *o)
{
	pthread_mutex_lock(&e->objects_lock);
	o->engine_next = e->objects;
	if (e->objects)
		e->objects->engine_prev = o;
	e->objects = o;
	pthread_mutex_unlock(&e->objects_lock);
}

static void engine_unlink_object(struct fl_engine *e, struct fl_object *o)
{
	pthread_mutex_lock(&e->objects_lock);
	if (o->engine_prev)
		o->engine_prev->engine_next = o->engine_next;
	else
		e->objects = o->engine_next;
	if (o->engine_next)
		o->engine_next->engine_prev = o->engine_prev;
	pthread_mutex_unlock(&e->objects_lock);
}

/* The memfd holding the pages, and the engine's view of it. */
static int object_open_memfd(struct fl_object *o)
{
	o->memfd = memfd_create("faultline-cache", MFD_CLOEXEC);
	if (o->memfd < 0)
		return -1;
	o->memfd_size = o->nr_pages << PAGE_SHIFT;
	if (ftruncate(o->memfd, (off_t)o->memfd_size))
		return -1;
	if (o->nr_pages == 0)
		return 0;
	o->view = mmap(NULL, o->memfd_size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_NORESERVE, o->memfd, 0);
	if (o->view == MAP_FAILED) {
		o->view = NULL;
		return -1;
	}
	/* A child of fork() gets none of faultline's memory (as the user's
	 * views, see map.c): nothing there would serve it. */
	return madvise(o->view, o->memfd_size, MADV_DONTFORK);
}

static void object_free(struct fl_object *o)
{
	int saved = errno;

	if (o->view)
		munmap(o->view, o->nr_pages << PAGE_SHIFT);
	if (o->memfd >= 0)
		close(o->memfd);
	pthread_rwlock_destroy(&o->lock);
	free(o);
	errno = saved;
}

struct fl_object *object_new(struct fl_engine *e, struct fl_store *store,
			     uint64_t size, int writable)
{
	struct fl_object *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->engine = e;
	o->store = store;
	o->writable = writable;
	o->size = size;
	o->nr_pages = page_round_up(size) >> PAGE_SHIFT;
	o->memfd = -1;
	o->pages = (struct radix)RADIX_INIT;
	o->swap = (struct radix)RADIX_INIT;
	atomic_init(&o->refs, 1);
	atomic_init(&o->nr_dirty, 0);
	atomic_init(&o->wb_errors, 0);
	pthread_rwlock_init(&o->lock, NULL);
	if (object_open_memfd(o)) {
		object_free(o);
		return NULL;
	}
	engine_link_object(e, o);
	return o;
}

/*
 * Release o: write back, then free.  From here the object is dying: a
 * reference its writeback takes (each submitted write holds one) goes back
 * without releasing it again, and object_tryget takes none.  Those
 * references come back just after their writes end (object_put touches
 * nothing after): wait for them before taking anything down.
 */
int object_release(struct fl_object *o)
{
	long held;
	int rc, saved;

	atomic_store(&o->dying, 1);
	held = atomic_load(&o->refs); /* 0, or the handle at engine teardown */
	rc = object_writeback(o, 0, UINT64_MAX);
	saved = errno;
	while (atomic_load(&o->refs) > held)
		sched_yield();

	engine_unlink_object(o->engine, o);
	pagecache_destroy(o);
	swap_object_release(o); /* its swapped-out pages' slots */
	if (o->store && o->store->ops->destroy)
		o->store->ops->destroy(o->store);
	object_free(o);
	errno = saved;
	return rc;
}

static struct fl_object *release_work_object(struct work *w)
{
	return (struct fl_object *)((char *)w -
				    offsetof(struct fl_object, release_work));
}

static void object_release_work(struct fl_engine *e, struct work *w)
{
	(void)e;
	object_release(release_work_object(w));
}

static void object_release_cancel(struct work *w)
{
	object_release(release_work_object(w)); /* engine teardown: here */
}

int object_put(struct fl_object *o)
{
	/*
	 * A dying object's references are its release's writeback's: the
	 * release frees the object as soon as they are back, so giving one
	 * back is the last touch.  (Otherwise o cannot be dying: a release
	 * starts only when the references are gone, as here, or at engine
	 * teardown, when none is in use.)
	 */
	if (atomic_load(&o->dying)) {
		atomic_fetch_sub(&o->refs, 1);
		object_hook_dying_put();
		return 0;
	}
	if (atomic_fetch_sub(&o->refs, 1) != 1)
		return 0;
	atomic_store(&o->dying, 1);
	/*
	 * The last reference went with a store completion, on the thread
	 * that reaps them: the release's writeback would wait there for
	 * completions that only a reaper runs (and would hold up the
	 * others' faults meanwhile).  An I/O thread releases it instead.
	 */
	if (aio_reaping(o->engine)) {
		o->release_work =
			(struct work){.fn = object_release_work,
				      .cancel = object_release_cancel};
		threads_post_work(o->engine, &o->release_work);
		return 0;
	}
	return object_release(o);
}

int object_reserve(struct fl_object *o, uint64_t end)
{
	int rc = 0;

	pthread_rwlock_wrlock(&o->lock);
	if (end > o->memfd_size) {
		rc = ftruncate(o->memfd, (off_t)end);
		if (rc == 0)
			o->memfd_size = end;
	}
	pthread_rwlock_unlock(&o->lock);
	return rc;
}

void object_link_mapping(struct fl_object *o, struct fl_mapping *m)
{
	object_get(o);
	m->obj_prev = NULL;
	m->obj_next = o->mappings;
	if (o->mappings)
		o->mappings->obj_prev = m;
	o->mappings = m;
	o->nr_mappings++;
}

unsigned object_unlink_mapping(struct fl_object *o, struct fl_mapping *m)
{
	if (m->obj_prev)
		m->obj_prev->obj_next = m->obj_next;
	else
		o->mappings = m->obj_next;
	if (m->obj_next)
		m->obj_next->obj_prev = m->obj_prev;
	m->obj_prev = m->obj_next = NULL;
	return --o->nr_mappings;
}

static int object_flags_valid(int flags)
{
	int mode = flags & O_ACCMODE;

	return mode == O_RDONLY || mode == O_RDWR;
}

fl_object *fl_object_create(fl_engine *engine, struct fl_store *store,
			    int flags)
{
	int writable = (flags & O_ACCMODE) == O_RDWR;
	int64_t size;
	struct fl_object *o;

	if (!engine || !store || !store->ops || !store->ops->read ||
	    !store->ops->size || !object_flags_valid(flags) ||
	    (writable && !store->ops->write)) {
		errno = EINVAL;
		return NULL;
	}
	if (writable && store->read_only) {
		errno = EACCES;
		return NULL;
	}
	errno = 0;
	size = store->ops->size(store);
	if (size < 0) {
		if (errno == 0) /* a store that failed without saying why */
			errno = EIO;
		return NULL;
	}
	o = object_new(engine, store, (uint64_t)size, writable);
	if (o)
		o->user_ref = 1;
	return o;
}

fl_object *fl_object_open(fl_engine *engine, const char *path, int flags)
{
	struct fl_store *store;
	struct fl_object *o;

	if (!engine || !path || !object_flags_valid(flags)) {
		errno = EINVAL;
		return NULL;
	}
	store = fl_store_file_open(path, flags & O_ACCMODE);
	if (!store)
		return NULL;
	o = fl_object_create(engine, store, flags);
	if (!o) {
		int saved = errno;

		store->ops->destroy(store);
		errno = saved;
	}
	return o;
}

int fl_object_close(fl_object *o)
{
	if (!o || !atomic_exchange(&o->user_ref, 0)) {
		errno = EINVAL; /* NULL, or the handle was closed already */
		return -1;
	}
	return object_put(o);
}

uint64_t fl_object_size(const fl_object *o)
{
	return o ? o->size : 0;
}
