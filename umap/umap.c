// SPDX-License-Identifier: MIT
/*
 * UMap's regions on faultline: umap, umap_ex, uunmap, umap_flush,
 * umap_prefetch.
 *
 * One engine per process, made with the first region and destroyed with
 * the last (so that the engine's settings, read-ahead and fillers, apply
 * anew to the next one), and one group, "umap", whose max is the UMap
 * buffer: every region's pages are charged to it.  A region is a
 * MAP_SHARED faultline mapping of an object; regions of the same file (and
 * the same access) share the object, hence one page cache.
 *
 * Locking: region_lock (a rwlock) guards the engine, the group, the region
 * list and the object list.  umap, umap_ex and uunmap hold it for writing
 * (they change the lists and may make or destroy the engine);
 * umap_flush, umap_prefetch and the limit updates hold it for reading, so
 * they run concurrently with each other and with faults (which never take
 * it).  It is held across faultline calls, which may write back (uunmap,
 * umap_flush) or read (umap_prefetch): such calls wait for one another,
 * never for faults.
 */
#include "umap_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* An object some regions map; file objects are shared by key. */
struct umap_object {
	struct umap_object *next;
	fl_object *object;
	int is_file; /* keyed by (dev, ino, writable) */
	dev_t dev;
	ino_t ino;
	int writable;		  /* MAP_SHARED stores reach the object */
	unsigned regions;	  /* regions mapping it */
	struct fl_store *wrapper; /* umap_ex's store wrapper, else NULL */
};

struct umap_region {
	struct umap_region *next;
	char *addr;
	size_t length;
	struct umap_object *obj;
};

static pthread_rwlock_t region_lock = PTHREAD_RWLOCK_INITIALIZER;
static fl_engine *engine;
static fl_group *group;
static struct umap_region *regions;
static struct umap_object *objects;

int umap_regions_live(void)
{
	int live;

	pthread_rwlock_rdlock(&region_lock);
	live = engine != NULL;
	pthread_rwlock_unlock(&region_lock);
	return live;
}

/* The group's max and high from the settings.  region_lock held. */
static void group_apply_limits(void)
{
	struct umap_settings s;

	umap_settings_get(&s);
	fl_group_set_max(group, umap_settings_max_bytes(&s));
	fl_group_set_high(group, umap_settings_high_bytes(&s));
}

void umap_regions_limits_changed(void)
{
	pthread_rwlock_rdlock(&region_lock);
	if (group)
		group_apply_limits();
	pthread_rwlock_unlock(&region_lock);
}

/* Make the engine and its group if there are none.  region_lock held for
 * writing.  0, or -1 with errno. */
static int engine_get(void)
{
	struct umap_settings s;
	struct fl_config config;

	if (engine)
		return 0;
	umap_settings_get(&s);
	umap_settings_engine_config(&s, &config);
	engine = fl_engine_create(&config);
	if (!engine)
		return -1;
	group = fl_group_create(engine, NULL, "umap");
	if (!group) {
		int saved = errno;

		fl_engine_destroy(engine);
		engine = NULL;
		errno = saved;
		return -1;
	}
	group_apply_limits();
	return 0;
}

/* Destroy the engine once no region is left.  region_lock held for
 * writing.  0, or -1 with EIO. */
static int engine_put(void)
{
	int rc;

	if (!engine || regions)
		return 0;
	rc = fl_engine_destroy(engine); /* frees the group too */
	engine = NULL;
	group = NULL;
	return rc;
}

/* Drop a region's reference on its object.  region_lock held for
 * writing.  0, or -1 with EIO from the final write-back. */
static int object_put(struct umap_object *o)
{
	struct umap_object **pp;
	int rc;

	if (--o->regions)
		return 0;
	for (pp = &objects; *pp != o; pp = &(*pp)->next)
		;
	*pp = o->next;
	rc = fl_object_close(o->object);
	free(o);
	return rc;
}

static struct umap_object *object_new(fl_object *object)
{
	struct umap_object *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->object = object;
	o->regions = 1;
	o->next = objects;
	objects = o;
	return o;
}

/*
 * The object for fd: the one already open for the same file and access
 * and large enough for the region to end at end, or a new one opened
 * through /proc/self/fd (an object's size is the file's when it was
 * opened: a file grown since is opened anew rather than give SIGBUS past
 * the old end).  region_lock held for writing; the caller's reference is
 * counted in regions.
 */
static struct umap_object *object_for_fd(int fd, uint64_t end)
{
	struct umap_object *o;
	char path[64];
	struct stat st;
	fl_object *object;
	int mode = fcntl(fd, F_GETFL);
	int writable;

	if (mode < 0 || fstat(fd, &st)) {
		errno = EBADF;
		return NULL;
	}
	if ((mode & O_ACCMODE) == O_WRONLY) {
		errno = EACCES; /* pages must be read */
		return NULL;
	}
	writable = (mode & O_ACCMODE) == O_RDWR;
	for (o = objects; o; o = o->next)
		if (o->is_file && o->dev == st.st_dev && o->ino == st.st_ino &&
		    o->writable == writable &&
		    fl_object_size(o->object) >= end) {
			o->regions++;
			return o;
		}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	object = fl_object_open(engine, path, writable ? O_RDWR : O_RDONLY);
	if (!object)
		return NULL;
	o = object_new(object);
	if (!o) {
		fl_object_close(object);
		errno = ENOMEM;
		return NULL;
	}
	o->is_file = 1;
	o->dev = st.st_dev;
	o->ino = st.st_ino;
	o->writable = writable;
	return o;
}

/* A new object owning a wrapper of store.  region_lock held for writing. */
static struct umap_object *object_for_store(struct fl_store *store)
{
	struct fl_store *wrapper;
	struct umap_object *o;
	fl_object *object;

	if (!store->ops || !store->ops->read || !store->ops->size) {
		errno = EINVAL;
		return NULL;
	}
	wrapper = umap_store_wrap(store);
	if (!wrapper)
		return NULL;
	object = fl_object_create(engine, wrapper,
				  wrapper->read_only ? O_RDONLY : O_RDWR);
	if (!object) {
		int saved = errno;

		wrapper->ops->destroy(wrapper); /* not adopted: store kept */
		errno = saved;
		return NULL;
	}
	o = object_new(object);
	if (!o) {
		fl_object_close(object); /* destroys the wrapper, not store */
		errno = ENOMEM;
		return NULL;
	}
	o->wrapper = wrapper;
	o->writable = !wrapper->read_only;
	return o;
}

static int flags_valid(int flags)
{
	int type = flags & (MAP_PRIVATE | MAP_SHARED);

	if (type != MAP_PRIVATE && type != MAP_SHARED)
		return 0;
	return !(flags & ~(MAP_PRIVATE | MAP_SHARED | MAP_FIXED));
}

/* Map a region of an object; region_lock held for writing. */
static void *region_map(void *addr, size_t length, int prot, int flags,
			struct umap_object *o, off_t offset)
{
	struct umap_region *r = calloc(1, sizeof(*r));
	int fl_flags = MAP_SHARED;
	void *p;

	if (!r) {
		errno = ENOMEM;
		return UMAP_FAILED;
	}
	/* A read-only file written to: stores stay in this region. */
	if ((prot & PROT_WRITE) && !o->writable)
		fl_flags = MAP_PRIVATE;
	p = fl_mmap_group(engine, group, addr, length, prot,
			  fl_flags | (flags & MAP_FIXED), o->object, offset);
	if (p == MAP_FAILED) {
		free(r);
		return UMAP_FAILED;
	}
	r->addr = p;
	r->length = length;
	r->obj = o;
	r->next = regions;
	regions = r;
	return p;
}

/* 1 if [addr, addr + length) overlaps a region.  region_lock held. */
static int region_overlaps(void *addr, size_t length)
{
	uintptr_t start = (uintptr_t)addr, end = start + length;
	struct umap_region *r;

	if (end < start)
		return 1; /* wraps: fl_mmap would refuse it anyway */
	for (r = regions; r; r = r->next)
		if (start < (uintptr_t)r->addr + r->length &&
		    (uintptr_t)r->addr < end)
			return 1;
	return 0;
}

/*
 * What umap and umap_ex share: check, make the engine, find or make the
 * object, map.  On failure nothing is left behind: the store of umap_ex
 * is the caller's again (the object is closed before the wrapper adopts
 * it) and the engine is destroyed again if no region needs it.
 */
static void *map_common(void *addr, size_t length, int prot, int flags,
			off_t offset, int fd, struct fl_store *store)
{
	struct umap_object *o;
	void *p = UMAP_FAILED;
	int saved;

	if (!length || !flags_valid(flags)) {
		errno = EINVAL;
		return UMAP_FAILED;
	}
	pthread_rwlock_wrlock(&region_lock);
	if (engine_get())
		goto out;
	if ((flags & MAP_FIXED) && region_overlaps(addr, length)) {
		errno = EINVAL; /* uunmap it first: one region per range */
		goto out;
	}
	o = store ? object_for_store(store)
		  : object_for_fd(fd, (uint64_t)offset + length);
	if (!o)
		goto out;
	p = region_map(addr, length, prot, flags, o, offset);
	if (p == UMAP_FAILED) {
		saved = errno;
		object_put(o);
		errno = saved;
	} else if (o->wrapper) {
		umap_store_adopt(o->wrapper);
	}
out:
	saved = errno;
	if (p == UMAP_FAILED)
		engine_put();
	pthread_rwlock_unlock(&region_lock);
	errno = saved;
	return p;
}

void *umap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
	if (fd < 0) {
		errno = EBADF;
		return UMAP_FAILED;
	}
	return map_common(addr, length, prot, flags, offset, fd, NULL);
}

void *umap_ex(void *addr, size_t length, int prot, int flags, int fd,
	      off_t offset, struct fl_store *store)
{
	(void)fd;
	if (!store) {
		errno = EINVAL;
		return UMAP_FAILED;
	}
	return map_common(addr, length, prot, flags, offset, -1, store);
}

int uunmap(void *addr, size_t length)
{
	struct umap_region **pp, *r;
	int rc, saved;

	(void)length; /* as in UMap: the whole region goes */
	pthread_rwlock_wrlock(&region_lock);
	for (pp = &regions; *pp && (*pp)->addr != (char *)addr;
	     pp = &(*pp)->next)
		;
	r = *pp;
	if (!r) {
		pthread_rwlock_unlock(&region_lock);
		errno = EINVAL;
		return -1;
	}
	*pp = r->next;
	rc = fl_munmap(engine, r->addr, r->length);
	saved = errno;
	if (object_put(r->obj) && !rc)
		rc = -1, saved = errno;
	free(r);
	if (engine_put() && !rc)
		rc = -1, saved = errno;
	pthread_rwlock_unlock(&region_lock);
	errno = saved;
	return rc;
}

int umap_flush(void)
{
	struct umap_region *r;
	int rc = 0, saved = 0;

	pthread_rwlock_rdlock(&region_lock);
	for (r = regions; r; r = r->next)
		if (fl_msync(engine, r->addr, r->length, MS_SYNC)) {
			rc = -1;
			saved = errno;
		}
	pthread_rwlock_unlock(&region_lock);
	if (rc)
		errno = saved;
	return rc;
}

/* Read the UMap pages of [p, p + size) that lie in p's region now.
 * region_lock held. */
static void prefetch_range(char *p, uint64_t size, uint64_t page_size)
{
	struct umap_region *r;
	uint64_t off, first, end;

	for (r = regions; r; r = r->next) {
		if (p < r->addr || p >= r->addr + r->length)
			continue;
		/* Whole UMap pages, counted from the region's start (which
		 * is page aligned, as fl_madvise wants). */
		off = (uint64_t)(p - r->addr);
		first = off / page_size * page_size;
		end = size > r->length - off ? r->length : off + size;
		end = (end + page_size - 1) / page_size * page_size;
		if (end > r->length)
			end = r->length;
		fl_madvise(engine, r->addr + first, (size_t)(end - first),
			   MADV_WILLNEED);
		return;
	}
}

void umap_prefetch(int npages, struct umap_prefetch_item *page_array)
{
	struct umap_settings s;
	int i;

	if (npages <= 0 || !page_array)
		return;
	umap_settings_get(&s);
	pthread_rwlock_rdlock(&region_lock);
	for (i = 0; i < npages; i++)
		prefetch_range(page_array[i].page_base_addr, 1, s.page_size);
	pthread_rwlock_unlock(&region_lock);
}

void umap_fetch_and_pin(char *paddr, uint64_t size)
{
	struct umap_settings s;

	if (!paddr || !size)
		return;
	umap_settings_get(&s);
	pthread_rwlock_rdlock(&region_lock);
	prefetch_range(paddr, size, s.page_size);
	pthread_rwlock_unlock(&region_lock);
}

int umap_has_write_support(void)
{
	return 1;
}

/*
 * At exit, regions still mapped have their dirty pages written back (as
 * uunmap would have); the engine stays, as other threads may still be
 * touching them.  Skipped if another thread holds the lock (a umap in
 * progress): exit must not wait for it.
 */
__attribute__((destructor)) static void umap_at_exit(void)
{
	struct umap_region *r;

	if (pthread_rwlock_tryrdlock(&region_lock))
		return;
	for (r = regions; r; r = r->next)
		fl_msync(engine, r->addr, r->length, MS_SYNC);
	pthread_rwlock_unlock(&region_lock);
}
