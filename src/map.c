/* SPDX-License-Identifier: MIT */
/*
 * Mappings and the mmap(2) family: fl_mmap, fl_munmap, fl_mprotect,
 * fl_madvise, fl_msync.  Map, unmap and protect take the map lock for
 * writing; none of them holds it across store I/O: writeback of an
 * object whose last mapping went runs after the lock is dropped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine.h"
#include "group.h"
#include "object.h"
#include "uffd.h"

/* ---- the sorted set of mappings ---------------------------------------- */

/* Index of the first mapping that ends after addr. */
static size_t mapping_first_after(const struct mapping_set *set, uintptr_t addr)
{
	size_t lo = 0, hi = set->nr;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (set->v[mid]->end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct fl_mapping *mapping_find(const struct mapping_set *set, uintptr_t addr)
{
	size_t i = mapping_first_after(set, addr);

	if (i < set->nr && set->v[i]->start <= addr)
		return set->v[i];
	return NULL;
}

static int mapping_set_insert(struct mapping_set *set, struct fl_mapping *m)
{
	size_t i;

	if (set->nr == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 16;
		struct fl_mapping **v = realloc(set->v, cap * sizeof(*v));

		if (!v)
			return -1;
		set->v = v;
		set->cap = cap;
	}
	i = mapping_first_after(set, m->start);
	memmove(&set->v[i + 1], &set->v[i], (set->nr - i) * sizeof(*set->v));
	set->v[i] = m;
	set->nr++;
	return 0;
}

static void mapping_set_remove(struct mapping_set *set, size_t i)
{
	memmove(&set->v[i], &set->v[i + 1],
		(set->nr - i - 1) * sizeof(*set->v));
	set->nr--;
}

/* Count m among its group's mappings (delta 1), or no more (-1). */
static void group_add_mapping(struct fl_mapping *m, int delta)
{
	struct fl_engine *e = m->group->engine;

	pthread_mutex_lock(&e->groups_lock);
	m->group->nr_mappings += delta;
	pthread_mutex_unlock(&e->groups_lock);
}

/* Split the mapping at set->v[i] at addr; the upper part is v[i + 1]. */
static int mapping_split(struct mapping_set *set, size_t i, uintptr_t addr)
{
	struct fl_mapping *m = set->v[i], *upper = malloc(sizeof(*upper));

	if (!upper)
		return -1;
	*upper = *m;
	counters_copy(&upper->stats, &m->stats);
	upper->start = addr;
	if (m->object)
		upper->pgoff = mapping_index(m, addr);
	m->end = addr;
	if (mapping_set_insert(set, upper)) {
		m->end = upper->end;
		free(upper);
		return -1;
	}
	if (m->object)
		object_link_mapping(m->object, upper);
	group_add_mapping(upper, 1);
	return 0;
}

/* Split so that no mapping crosses start or end.  -1/ENOMEM. */
static int mapping_split_range(struct mapping_set *set, uintptr_t start,
			       uintptr_t end)
{
	size_t i = mapping_first_after(set, start);

	if (i < set->nr && set->v[i]->start < start &&
	    mapping_split(set, i, start))
		return -1;
	i = mapping_first_after(set, end);
	if (i < set->nr && set->v[i]->start < end && mapping_split(set, i, end))
		return -1;
	return 0;
}

/* Whether [start, end) is wholly covered by mappings. */
static int mapping_covers(const struct mapping_set *set, uintptr_t start,
			  uintptr_t end)
{
	size_t i = mapping_first_after(set, start);

	while (start < end) {
		if (i >= set->nr || set->v[i]->start > start)
			return 0;
		start = set->v[i++]->end;
	}
	return 1;
}

/* ---- groups ------------------------------------------------------------- */

/* Forget [start, end) of m in the page table; its private pages go. */
static void mapping_drop_private(struct fl_engine *e, struct fl_mapping *m,
				 uintptr_t start, uintptr_t end)
{
	uint64_t freed = pagetable_clear(&e->pagetable, start >> PAGE_SHIFT,
					 (end >> PAGE_SHIFT) - 1);

	if (freed) {
		atomic_fetch_sub(&m->group->private_pages, freed);
		group_uncharge(m->group, freed);
	}
}

/* ---- mappings taken down: finished after the map lock is dropped ------ */

/*
 * Mappings removed under the map write lock, linked through obj_next (free
 * once unlinked from their object), so that collecting them can never fail
 * and no object reference is dropped, nor writeback run, under the lock.
 */
struct put_list {
	struct fl_mapping *head;
};

static void put_list_add(struct put_list *list, struct fl_mapping *m)
{
	m->obj_next = list->head;
	list->head = m;
}

/* Drop the mappings' references; write back objects left unmapped. */
static int put_list_finish(struct put_list *list)
{
	int rc = 0;

	while (list->head) {
		struct fl_mapping *m = list->head;
		struct fl_object *o = m->object;

		list->head = m->obj_next;
		free(m);
		if (!o)
			continue;
		if (o->nr_mappings == 0 && object_writeback(o, 0, UINT64_MAX))
			rc = -1;
		if (object_put(o))
			rc = -1;
	}
	if (rc)
		errno = EIO;
	return rc;
}

/* ---- unmapping ---------------------------------------------------------- */

/*
 * Forget the mapping at v[i] and, if real_unmap, unmap its range (else the
 * caller's MAP_FIXED mmap replaces it).  Map write lock held.
 */
static void mapping_remove(struct fl_engine *e, size_t i, int real_unmap,
			   struct put_list *puts)
{
	struct fl_mapping *m = e->mappings.v[i];

	if (real_unmap)
		munmap((void *)m->start, m->end - m->start);
	mapping_drop_private(e, m, m->start, m->end);
	group_add_mapping(m, -1);
	mapping_set_remove(&e->mappings, i);
	if (m->object)
		object_unlink_mapping(m->object, m);
	put_list_add(puts, m);
}

/* Unmap faultline's mappings within [start, end).  Map write lock held. */
static int unmap_range_locked(struct fl_engine *e, uintptr_t start,
			      uintptr_t end, int real_unmap,
			      struct put_list *puts)
{
	size_t i;

	if (mapping_split_range(&e->mappings, start, end))
		return -1;
	i = mapping_first_after(&e->mappings, start);
	while (i < e->mappings.nr && e->mappings.v[i]->start < end)
		mapping_remove(e, i, real_unmap, puts);
	return 0;
}

int fl_munmap(fl_engine *e, void *addr, size_t length)
{
	uintptr_t start = (uintptr_t)addr, end = start + page_round_up(length);
	struct put_list puts = {0};
	int rc, rc2;

	if (!e || (start & ~PAGE_MASK) || length == 0 || end <= start) {
		errno = EINVAL; /* unaligned, empty, or wrapping around */
		return -1;
	}
	map_write_lock(e);
	rc = unmap_range_locked(e, start, end, 1, &puts);
	map_unlock(e);
	/* Threads still asleep on the range re-fault and find it gone. */
	uffd_wake(e->uffd, start, end - start);
	rc2 = put_list_finish(&puts);
	return rc ? rc : rc2;
}

void mappings_destroy(struct fl_engine *e)
{
	struct put_list puts = {0};

	map_write_lock(e);
	while (e->mappings.nr) {
		struct fl_mapping *m = e->mappings.v[0];

		uffd_wake(e->uffd, m->start, m->end - m->start);
		mapping_remove(e, 0, 1, &puts);
	}
	free(e->mappings.v);
	e->mappings = (struct mapping_set){0};
	map_unlock(e);
	put_list_finish(&puts);
}

/* ---- mapping ------------------------------------------------------------ */

#define FL_MAP_FLAGS                                                           \
	(MAP_SHARED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED |                \
	 MAP_FIXED_NOREPLACE | MAP_NORESERVE)

static int mmap_check_args(fl_engine *e, uintptr_t addr, size_t length,
			   int prot, int flags, fl_object *o, off_t offset)
{
	int type = flags & (MAP_SHARED | MAP_PRIVATE);

	if (!e || length == 0 || page_round_up(length) < length ||
	    (prot & ~(PROT_READ | PROT_WRITE)) || (flags & ~FL_MAP_FLAGS) ||
	    (type != MAP_SHARED && type != MAP_PRIVATE) ||
	    ((flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) &&
	     (addr & ~PAGE_MASK)))
		return EINVAL;
	if (flags & MAP_ANONYMOUS)
		return o ? EINVAL : 0;
	if (!o)
		return EBADF;
	if (o->engine != e || offset < 0 || (offset & ~PAGE_MASK) ||
	    (uint64_t)offset + page_round_up(length) < (uint64_t)offset)
		return EINVAL;
	if (type == MAP_SHARED && (prot & PROT_WRITE) && !o->writable)
		return EACCES;
	return 0;
}

/*
 * Create the kernel mapping behind a new faultline mapping.  A fixed one
 * is made inaccessible until it is registered: its address is known, and
 * a thread touching it before registration would be served by the kernel
 * itself (mapping a memfd page mid-read, or putting a page in the memfd
 * behind the page cache's back).
 */
static void *mmap_view(struct fl_mapping *m, uintptr_t addr, size_t len,
		       int flags)
{
	int fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE);
	int prot = fixed ? PROT_NONE : m->prot;

	if (m->kind == MAP_KIND_ANON)
		return mmap((void *)addr, len, prot,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | fixed,
			    -1, 0);
	if (object_reserve(m->object, (m->pgoff << PAGE_SHIFT) + len))
		return MAP_FAILED;
	return mmap((void *)addr, len, prot,
		    (m->kind == MAP_KIND_SHARED ? MAP_SHARED : MAP_PRIVATE) |
			    fixed,
		    m->object->memfd, (off_t)(m->pgoff << PAGE_SHIFT));
}

/* Map, register and insert m.  Map write lock held. */
static int mapping_install(struct fl_engine *e, struct fl_mapping *m,
			   uintptr_t addr, size_t len, int flags)
{
	int fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE);
	void *p = mmap_view(m, addr, len, flags);

	if (p == MAP_FAILED)
		return -1;
	m->start = (uintptr_t)p;
	m->end = m->start + len;
	if (uffd_register(e->uffd, m->start, len,
			  m->kind == MAP_KIND_ANON ? UFFD_MODES_ANON
						   : UFFD_MODES_CACHE) ||
	    (fixed && m->prot != PROT_NONE && mprotect(p, len, m->prot)) ||
	    mapping_set_insert(&e->mappings, m)) {
		int saved = errno;

		munmap(p, len);
		errno = saved;
		return -1;
	}
	if (m->object)
		object_link_mapping(m->object, m);
	group_add_mapping(m, 1);
	return 0;
}

static struct fl_mapping *mapping_new(int prot, int flags, fl_object *o,
				      off_t offset, struct fl_group *g)
{
	struct fl_mapping *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->prot = prot;
	m->group = g;
	m->advice = MADV_NORMAL;
	m->object = o;
	m->pgoff = (uint64_t)offset >> PAGE_SHIFT;
	atomic_init(&m->ra_next, m->pgoff);	 /* reading from the start is */
	atomic_init(&m->ra_trigger, UINT64_MAX); /* sequential at once */
	if (!o)
		m->kind = MAP_KIND_ANON;
	else if (flags & MAP_SHARED)
		m->kind = MAP_KIND_SHARED;
	else
		m->kind = MAP_KIND_PRIVATE;
	return m;
}

/* Under the map write lock: make room (MAP_FIXED), install m.  0 or errno. */
static int mmap_locked(struct fl_engine *e, struct fl_mapping *m,
		       uintptr_t start, size_t len, int flags,
		       struct put_list *puts)
{
	size_t i = mapping_first_after(&e->mappings, start);
	int err;

	if ((flags & MAP_FIXED_NOREPLACE) && i < e->mappings.nr &&
	    e->mappings.v[i]->start < start + len)
		return EEXIST;
	if ((flags & MAP_FIXED) &&
	    unmap_range_locked(e, start, start + len, 0, puts))
		return errno;
	if (mapping_install(e, m, start, len, flags) == 0)
		return 0;
	err = errno;
	/* What MAP_FIXED replaced is forgotten: take it down too. */
	if (flags & MAP_FIXED)
		munmap((void *)start, len);
	return err;
}

void *fl_mmap_group(fl_engine *e, fl_group *g, void *addr, size_t length,
		    int prot, int flags, fl_object *o, off_t offset)
{
	size_t len = page_round_up(length);
	uintptr_t start = (uintptr_t)addr;
	struct put_list puts = {0};
	struct fl_object *anon = NULL;
	struct fl_mapping *m;
	int err = mmap_check_args(e, start, length, prot, flags, o, offset);

	if (!err && g && g->engine != e)
		err = EINVAL;
	if (err) {
		errno = err;
		return MAP_FAILED;
	}
	if ((flags & MAP_ANONYMOUS) && (flags & MAP_SHARED)) {
		/* Shared anonymous memory: an object with no store. */
		anon = o = object_new(e, NULL, len, 1);
		if (!o)
			return MAP_FAILED;
		offset = 0;
	}
	m = mapping_new(prot, flags, o, offset, g ? g : e->root_group);
	if (!m) {
		err = errno;
	} else {
		map_write_lock(e);
		err = mmap_locked(e, m, start, len, flags, &puts);
		map_unlock(e);
	}
	if (!err && (flags & MAP_FIXED)) /* sleepers on what it replaced */
		uffd_wake(e->uffd, m->start, len);
	put_list_finish(&puts);
	if (anon)
		object_put(anon); /* on success, the mapping holds it */
	if (err) {
		free(m);
		errno = err;
		return MAP_FAILED;
	}
	return (void *)m->start;
}

void *fl_mmap(fl_engine *e, void *addr, size_t length, int prot, int flags,
	      fl_object *o, off_t offset)
{
	return fl_mmap_group(e, NULL, addr, length, prot, flags, o, offset);
}

/* ---- protection, advice, sync ----------------------------------------- */

static int range_check(fl_engine *e, void *addr, size_t length,
		       uintptr_t *start, uintptr_t *end)
{
	*start = (uintptr_t)addr;
	*end = *start + page_round_up(length);
	if (!e || (*start & ~PAGE_MASK) || *end < *start ||
	    (length && *end == *start)) { /* length wraps around */
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* 0 if [start, end) is wholly mapped by faultline, else -1 with ENOMEM. */
static int range_mapped(struct fl_engine *e, uintptr_t start, uintptr_t end)
{
	int covered;

	map_read_lock(e);
	covered = mapping_covers(&e->mappings, start, end);
	map_unlock(e);
	if (covered)
		return 0;
	errno = ENOMEM;
	return -1;
}

static int mprotect_allowed(struct fl_engine *e, uintptr_t start, uintptr_t end,
			    int prot)
{
	if (prot & ~(PROT_READ | PROT_WRITE))
		return EINVAL;
	if (!mapping_covers(&e->mappings, start, end))
		return ENOMEM;
	for (size_t i = mapping_first_after(&e->mappings, start);
	     i < e->mappings.nr && e->mappings.v[i]->start < end; i++) {
		struct fl_mapping *m = e->mappings.v[i];

		if (m->kind == MAP_KIND_SHARED && (prot & PROT_WRITE) &&
		    !m->object->writable)
			return EACCES;
	}
	return 0;
}

int fl_mprotect(fl_engine *e, void *addr, size_t length, int prot)
{
	uintptr_t start, end;
	int err;

	if (range_check(e, addr, length, &start, &end))
		return -1;
	map_write_lock(e);
	err = mprotect_allowed(e, start, end, prot);
	if (!err && (mapping_split_range(&e->mappings, start, end) ||
		     mprotect((void *)start, end - start, prot)))
		err = errno;
	for (size_t i = mapping_first_after(&e->mappings, start);
	     !err && i < e->mappings.nr && e->mappings.v[i]->start < end; i++)
		e->mappings.v[i]->prot = prot;
	map_unlock(e);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

/* Drop this range's view: private pages go, the page cache stays. */
static int madvise_dontneed(struct fl_engine *e, uintptr_t start, uintptr_t end)
{
	int rc;

	map_write_lock(e);
	rc = madvise((void *)start, end - start, MADV_DONTNEED);
	for (size_t i = mapping_first_after(&e->mappings, start);
	     rc == 0 && i < e->mappings.nr && e->mappings.v[i]->start < end;
	     i++) {
		struct fl_mapping *m = e->mappings.v[i];

		mapping_drop_private(e, m, m->start > start ? m->start : start,
				     m->end < end ? m->end : end);
	}
	map_unlock(e);
	return rc;
}

static int madvise_set(struct fl_engine *e, uintptr_t start, uintptr_t end,
		       int advice)
{
	int rc;

	map_write_lock(e);
	rc = mapping_split_range(&e->mappings, start, end);
	for (size_t i = mapping_first_after(&e->mappings, start);
	     !rc && i < e->mappings.nr && e->mappings.v[i]->start < end; i++)
		e->mappings.v[i]->advice = advice;
	map_unlock(e);
	return rc;
}

/* An object range to work on after the map lock is dropped. */
struct object_range {
	struct fl_object *object;
	uint64_t first, last;
	struct fl_group *group; /* the mapping's, pinned */
};

/*
 * Collect the object ranges of the file mappings in [start, end), shared
 * only if shared_only, with a reference on each object.  *nr gets the count.
 */
static struct object_range *collect_object_ranges(struct fl_engine *e,
						  uintptr_t start,
						  uintptr_t end,
						  int shared_only, size_t *nr)
{
	struct object_range *r;
	size_t i, n = 0;

	map_read_lock(e);
	i = mapping_first_after(&e->mappings, start);
	r = calloc(e->mappings.nr - i + 1, sizeof(*r));
	for (; r && i < e->mappings.nr && e->mappings.v[i]->start < end; i++) {
		struct fl_mapping *m = e->mappings.v[i];
		uintptr_t lo = m->start > start ? m->start : start;
		uintptr_t hi = m->end < end ? m->end : end;

		if (!m->object || (shared_only && m->kind != MAP_KIND_SHARED))
			continue;
		object_get(m->object);
		atomic_fetch_add(&m->group->pins, 1);
		r[n++] = (struct object_range){m->object, mapping_index(m, lo),
					       mapping_index(m, hi - 1),
					       m->group};
	}
	map_unlock(e);
	*nr = n;
	return r;
}

/* Read [first, last] of o into the page cache, charged to g. */
static void object_readahead(struct fl_object *o, uint64_t first, uint64_t last,
			     unsigned batch, struct fl_group *g)
{
	for (uint64_t i = first; i <= last && i < o->nr_pages;) {
		unsigned long want =
			last - i + 1 < batch ? last - i + 1 : batch;
		struct fl_group *over;
		uint64_t room;
		long n = pagecache_start_read(o, i, want, g, &over, &room);

		if (n == -2) /* advice: it does not reclaim to make room */
			break;
		if (n > 0)
			pagecache_read(o, i, (unsigned long)n, i);
		i += n > 0 ? (uint64_t)n : 1;
	}
}

/* Drop the references collect_object_ranges took. */
static void object_ranges_put(struct object_range *r, size_t nr)
{
	for (size_t i = 0; i < nr; i++) {
		atomic_fetch_sub(&r[i].group->pins, 1);
		object_put(r[i].object);
	}
	free(r);
}

static int madvise_willneed(struct fl_engine *e, uintptr_t start, uintptr_t end)
{
	size_t nr;
	struct object_range *r = collect_object_ranges(e, start, end, 0, &nr);

	if (!r)
		return -1;
	for (size_t i = 0; i < nr; i++)
		object_readahead(r[i].object, r[i].first, r[i].last,
				 e->config.readahead_pages, r[i].group);
	object_ranges_put(r, nr);
	return 0;
}

int fl_madvise(fl_engine *e, void *addr, size_t length, int advice)
{
	uintptr_t start, end;

	if (range_check(e, addr, length, &start, &end))
		return -1;
	if (advice != MADV_NORMAL && advice != MADV_RANDOM &&
	    advice != MADV_SEQUENTIAL && advice != MADV_WILLNEED &&
	    advice != MADV_DONTNEED) {
		errno = EINVAL;
		return -1;
	}
	if (range_mapped(e, start, end))
		return -1;
	switch (advice) {
	case MADV_DONTNEED:
		return madvise_dontneed(e, start, end);
	case MADV_WILLNEED:
		return madvise_willneed(e, start, end);
	default:
		return madvise_set(e, start, end, advice);
	}
}

int fl_msync(fl_engine *e, void *addr, size_t length, int flags)
{
	uintptr_t start, end;
	struct object_range *r;
	size_t nr;
	int rc = 0;

	if (range_check(e, addr, length, &start, &end))
		return -1;
	if ((flags & ~(MS_SYNC | MS_ASYNC | MS_INVALIDATE)) ||
	    ((flags & MS_SYNC) && (flags & MS_ASYNC))) {
		errno = EINVAL;
		return -1;
	}
	if (range_mapped(e, start, end))
		return -1;
	r = collect_object_ranges(e, start, end, 1, &nr);
	if (!r)
		return -1;
	for (size_t i = 0; i < nr; i++)
		if (object_writeback(r[i].object, r[i].first, r[i].last))
			rc = -1;
	object_ranges_put(r, nr);
	if (rc)
		errno = EIO;
	return rc;
}

int fl_mapping_stats(fl_engine *e, const void *addr, struct fl_stats *stats)
{
	struct fl_mapping *m;

	if (!e || !stats) {
		errno = EINVAL;
		return -1;
	}
	map_read_lock(e);
	m = mapping_find(&e->mappings, (uintptr_t)addr);
	if (m) {
		uint64_t last = mapping_index(m, m->end - 1);

		counters_read(&m->stats, stats);
		if (m->kind == MAP_KIND_SHARED)
			stats->dirty_pages = pagecache_count_dirty(
				m->object, m->pgoff, last);
		stats->private_pages = pagetable_count_private(
			&e->pagetable, m->start >> PAGE_SHIFT,
			(m->end >> PAGE_SHIFT) - 1);
	}
	map_unlock(e);
	if (!m) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}
