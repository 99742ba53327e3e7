/* SPDX-License-Identifier: MIT */
/*
 * Mappings and the mmap(2) family: fl_mmap, fl_munmap, fl_mprotect,
 * fl_madvise, fl_msync.  Map, unmap and protect take the map lock for
 * writing; none of them holds it across store I/O: writeback of an
 * object whose last mapping went runs after the lock is dropped.
 *
 * Every kernel mapping behind a faultline mapping (a view) is made at an
 * address of the kernel's choosing and registered with userfaultfd before
 * the program can know it.  MAP_FIXED builds the new view elsewhere, then
 * moves it over the target with mremap, which replaces the old mapping in
 * one step: a thread touching the range sees the old mapping or the new
 * one, as with mmap(2), and a MAP_FIXED that fails changes nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

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

/* Make room for extra more mappings in the set.  0, or -1 with ENOMEM. */
static int mapping_set_reserve(struct mapping_set *set, size_t extra)
{
	size_t cap = set->cap ? set->cap : 16;
	struct fl_mapping **v;

	while (cap < set->nr + extra)
		cap *= 2;
	if (cap == set->cap)
		return 0;
	v = realloc(set->v, cap * sizeof(*v));
	if (!v)
		return -1;
	set->v = v;
	set->cap = cap;
	return 0;
}

static int mapping_set_insert(struct mapping_set *set, struct fl_mapping *m)
{
	size_t i;

	if (mapping_set_reserve(set, 1))
		return -1;
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

/* Forget [start, end) of m in the page table; its private pages go, and
 * so do its swapped-out pages' slots. */
static void mapping_drop_private(struct fl_engine *e, struct fl_mapping *m,
				 uintptr_t start, uintptr_t end)
{
	uint64_t swapped;
	uint64_t freed =
		pagetable_clear_swap(&e->pagetable, start >> PAGE_SHIFT,
				     (end >> PAGE_SHIFT) - 1, &swapped);

	if (swapped) /* their slots went with them (swap.c) */
		swap_uncharge(m->group, swapped);
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
 * Forget the mapping at v[i] and, if real_unmap, unmap its range (else a
 * MAP_FIXED mapping has replaced it already).  Map write lock held.
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

/* Take down faultline's mappings within [start, end), which no mapping
 * crosses (mapping_split_range).  Map write lock held. */
static void unmap_split_range_locked(struct fl_engine *e, uintptr_t start,
				     uintptr_t end, int real_unmap,
				     struct put_list *puts)
{
	size_t i = mapping_first_after(&e->mappings, start);

	while (i < e->mappings.nr && e->mappings.v[i]->start < end)
		mapping_remove(e, i, real_unmap, puts);
}

/* Unmap faultline's mappings within [start, end).  Map write lock held. */
static int unmap_range_locked(struct fl_engine *e, uintptr_t start,
			      uintptr_t end, struct put_list *puts)
{
	if (mapping_split_range(&e->mappings, start, end))
		return -1;
	unmap_split_range_locked(e, start, end, 1, puts);
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
	rc = unmap_range_locked(e, start, end, &puts);
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

/*
 * 0, or the errno mmap(2) gives for these arguments, except those the view's
 * own mmap gives (see view_map): ENOMEM for a length no address space holds,
 * EOVERFLOW for an offset + length past the largest file offset.  Nothing
 * is changed before all are checked.
 */
static int mmap_check_args(fl_engine *e, uintptr_t addr, size_t length,
			   int prot, int flags, fl_object *o, off_t offset)
{
	int type = flags & (MAP_SHARED | MAP_PRIVATE);
	uint64_t len = page_round_up(length);

	if (!e || length == 0 || (prot & ~(PROT_READ | PROT_WRITE)) ||
	    (flags & ~FL_MAP_FLAGS) ||
	    (type != MAP_SHARED && type != MAP_PRIVATE) ||
	    ((flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) &&
	     (addr & ~PAGE_MASK)) ||
	    (offset & ~PAGE_MASK))
		return EINVAL;
	if (flags & MAP_ANONYMOUS) {
		if (o || offset) /* anonymous memory has no object, no offset */
			return EINVAL;
	} else if (!o) {
		return EBADF;
	} else if (o->engine != e) {
		return EINVAL;
	}
	/* Rounding up wrapped around, or more than any address space (and
	 * than a memfd for shared anonymous memory) can hold. */
	if (len < length || len > INT64_MAX ||
	    ((flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) && addr + len < addr))
		return ENOMEM;
	if (type == MAP_SHARED && (prot & PROT_WRITE) && o && !o->writable)
		return EACCES;
	return 0;
}

static void munmap_keep_errno(void *p, size_t len)
{
	int saved = errno;

	munmap(p, len);
	errno = saved;
}

/* ---- views: the kernel mappings behind faultline's ---------------------- */

/*
 * Map a view of m's memory, at hint or anywhere, not registered yet.  A view
 * of an object maps its memfd at the mapping's own offset, so the kernel
 * checks length and offset as mmap(2) does for a file: ENOMEM for a length
 * beyond the address space, EOVERFLOW past the largest file offset (the
 * same for a memfd as for any file, MAX_LFS_FILESIZE).
 */
static void *view_map(const struct fl_mapping *m, void *hint, size_t len)
{
	if (m->kind == MAP_KIND_ANON)
		return mmap(hint, len, m->prot,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	return mmap(hint, len, m->prot,
		    m->kind == MAP_KIND_SHARED ? MAP_SHARED : MAP_PRIVATE,
		    m->object->memfd, (off_t)(m->pgoff << PAGE_SHIFT));
}

/*
 * Make the view at p ready to serve faults: the memfd reaches its end (so
 * that faults there come to faultline, which answers SIGBUS), fork() does
 * not pass it on (a child's copy would be unregistered: its stores to a
 * shared mapping never tracked, its faults served by the kernel behind the
 * page cache's back), and it is registered with userfaultfd.  0 or -1.
 */
static int view_arm(struct fl_engine *e, const struct fl_mapping *m, void *p,
		    size_t len)
{
	if (m->object &&
	    object_reserve(m->object, (m->pgoff << PAGE_SHIFT) + len))
		return -1;
	if (madvise(p, len, MADV_DONTFORK))
		return -1;
	return uffd_register(e->uffd, (uintptr_t)p, len,
			     m->kind == MAP_KIND_ANON ? UFFD_MODES_ANON
						      : UFFD_MODES_CACHE);
}

/*
 * A new, armed view of m at hint or anywhere, or MAP_FAILED with errno and
 * nothing left mapped.  Its protection is m's from the start: the program
 * learns the address only when fl_mmap returns it, after registration.
 */
static void *view_create(struct fl_engine *e, const struct fl_mapping *m,
			 void *hint, size_t len)
{
	void *p = view_map(m, hint, len);

	if (p != MAP_FAILED && view_arm(e, m, p, len)) {
		munmap_keep_errno(p, len);
		p = MAP_FAILED;
	}
	return p;
}

/* ---- MAP_FIXED: a whole new view moved over the target in one step ---- */

/* An inaccessible anonymous mapping holding a hole of a MAP_FIXED target. */
struct hole {
	uintptr_t start, end;
};

struct holes {
	struct hole *v;
	size_t nr, cap;
};

/* Take [start, end) with a placeholder if nothing at all is mapped there:
 * 0, EEXIST if something is, or another errno. */
static int placeholder_map(uintptr_t start, uintptr_t end)
{
	void *p = mmap((void *)start, end - start, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
			       MAP_FIXED_NOREPLACE,
		       -1, 0);

	if (p == MAP_FAILED)
		return errno;
	if (p != (void *)start) { /* a kernel without NOREPLACE: a hint */
		munmap(p, end - start);
		return EEXIST;
	}
	return 0;
}

static int holes_add(struct holes *h, uintptr_t start, uintptr_t end)
{
	if (h->nr == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 8;
		struct hole *v = realloc(h->v, cap * sizeof(*v));

		if (!v)
			return ENOMEM;
		h->v = v;
		h->cap = cap;
	}
	h->v[h->nr++] = (struct hole){start, end};
	return 0;
}

/*
 * Fill every hole of [start, end) with a placeholder, recorded in h, so that
 * nothing made before the move (the view, an object's memory, a thread's
 * stack, anything another thread maps) is placed there by the kernel, to be
 * destroyed by the move.  A range is wholly free (one placeholder), wholly
 * mapped (msync finds no hole) or split in two.  0 or errno.
 */
static int holes_fill(uintptr_t start, uintptr_t end, struct holes *h)
{
	uintptr_t mid;
	int err = placeholder_map(start, end);

	if (!err) {
		err = holes_add(h, start, end);
		if (err)
			munmap((void *)start, end - start);
		return err;
	}
	if (err != EEXIST)
		return err;
	if (msync((void *)start, end - start, MS_ASYNC) == 0)
		return 0;
	if (errno != ENOMEM)
		return errno;
	if (end - start == PAGE_SIZE) /* another thread's mmap raced us */
		return 0;
	mid = start + ((end - start) / 2 & PAGE_MASK);
	err = holes_fill(start, mid, h);
	return err ? err : holes_fill(mid, end, h);
}

/* Give the holes back (if unmap, the move did not take them). */
static void holes_done(struct holes *h, int unmap)
{
	for (size_t i = 0; unmap && i < h->nr; i++)
		munmap((void *)h->v[i].start, h->v[i].end - h->v[i].start);
	free(h->v);
}

/* A thread that reads the userfaultfd while view_move waits (see there). */
struct drain {
	struct fl_engine *e;
	int stop_fd; /* eventfd: the move is done */
	_Atomic int stop;
};

static void *drain_main(void *arg)
{
	struct drain *d = arg;
	struct pollfd pfd[2] = {{.fd = d->e->uffd, .events = POLLIN},
				{.fd = d->stop_fd, .events = POLLIN}};
	struct uffd_msg msgs[16];

	while (!atomic_load(&d->stop)) {
		ssize_t n;

		if (poll(pfd, 2, -1) <= 0 || !(pfd[0].revents & POLLIN))
			continue;
		n = read(d->e->uffd, msgs, sizeof(msgs));
		for (ssize_t i = 0; i < n / (ssize_t)sizeof(msgs[0]); i++)
			if (msgs[i].event == UFFD_EVENT_PAGEFAULT)
				uffd_wake(d->e->uffd,
					  msgs[i].arg.pagefault.address &
						  PAGE_MASK,
					  PAGE_SIZE);
	}
	return NULL;
}

/*
 * Move the armed view at from over [to, to+len), replacing whatever is
 * there in one step, as mmap(MAP_FIXED) does: mremap unmaps the target and
 * moves the view under the kernel's mmap lock, so that an access sees the
 * old mapping or the new one, never neither.  The view stays registered
 * (UFFD_FEATURE_EVENT_REMAP), and mremap then waits until its
 * UFFD_EVENT_REMAP message is read.  The caller holds the map write lock,
 * for which every handler thread may be waiting with a fault message in
 * hand, so a thread of this call's own reads the userfaultfd meanwhile and
 * answers the faults it reads with a wake-up: their threads fault again,
 * and are served against the new mapping once the lock is dropped.
 * Map write lock held.  0, or an errno: the view is then still at from.
 */
static int view_move(struct fl_engine *e, void *from, uintptr_t to, size_t len)
{
	struct drain d = {.e = e};
	uint64_t one = 1;
	sigset_t all, old;
	pthread_t thread;
	int err;

	atomic_init(&d.stop, 0);
	d.stop_fd = eventfd(0, EFD_CLOEXEC);
	if (d.stop_fd < 0)
		return errno;
	sigfillset(&all); /* signals are the program's */
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&thread, NULL, drain_main, &d);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		close(d.stop_fd);
		return err == EAGAIN ? ENOMEM : err;
	}
	err = 0;
	if (mremap(from, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, (void *)to) ==
	    MAP_FAILED)
		err = errno;
	atomic_store(&d.stop, 1);
	if (write(d.stop_fd, &one, sizeof(one)) < 0)
		abort(); /* an eventfd write of 1 cannot fail */
	pthread_join(thread, NULL);
	close(d.stop_fd);
	return err;
}

/* ---- installing mappings ------------------------------------------------ */

/* What a new mapping is made of before it is installed. */
struct new_mapping {
	struct fl_mapping *m;
	struct fl_object *anon; /* shared anonymous memory's object */
	void *view;		/* its armed view, or MAP_FAILED */
};

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
	for (int i = 0; i < RA_STREAMS; i++) {
		atomic_init(&m->ra[i].next, i ? UINT64_MAX : m->pgoff);
		atomic_init(&m->ra[i].window, 0);
		atomic_init(&m->ra[i].reader, m->pgoff);
	} /* reading from the start is sequential at once */
	atomic_init(&m->ra_clock, 0);
	atomic_init(&m->mmap_miss, 0);
	if (!o)
		m->kind = MAP_KIND_ANON;
	else if (flags & MAP_SHARED)
		m->kind = MAP_KIND_SHARED;
	else
		m->kind = MAP_KIND_PRIVATE;
	return m;
}

/*
 * Make the mapping (with the object of shared anonymous memory) and its
 * armed view, at hint or anywhere.  0 or errno; nm->anon is set even on
 * failure, for the caller to put once no map lock is held.
 */
static int new_mapping_make(struct fl_engine *e, struct fl_group *g, void *hint,
			    size_t len, int prot, int flags, fl_object *o,
			    off_t offset, struct new_mapping *nm)
{
	*nm = (struct new_mapping){.view = MAP_FAILED};
	if ((flags & MAP_ANONYMOUS) && (flags & MAP_SHARED)) {
		/* Shared anonymous memory: an object with no store. */
		nm->anon = o = object_new(e, NULL, len, 1);
		if (!o)
			return errno;
	}
	nm->m = mapping_new(prot, flags, o, offset, g);
	if (!nm->m)
		return errno;
	nm->view = view_create(e, nm->m, hint, len);
	return nm->view == MAP_FAILED ? errno : 0;
}

/* Count m in, at [start, start+len).  The set has room (reserved). */
static void mapping_add(struct fl_engine *e, struct fl_mapping *m,
			uintptr_t start, size_t len)
{
	m->start = start;
	m->end = start + len;
	mapping_set_insert(&e->mappings, m);
	if (m->object)
		object_link_mapping(m->object, m);
	group_add_mapping(m, 1);
}

/*
 * Whether a faultline mapping in [start, end) lost its kernel view: a
 * failed mremap may have unmapped the target before failing to move.
 */
static int views_lost(struct fl_engine *e, uintptr_t start, uintptr_t end)
{
	unsigned char vec;

	for (size_t i = mapping_first_after(&e->mappings, start);
	     i < e->mappings.nr && e->mappings.v[i]->start < end; i++)
		if (mincore((void *)e->mappings.v[i]->start, PAGE_SIZE, &vec) &&
		    errno == ENOMEM)
			return 1;
	return 0;
}

/* Move nm's view over [start, end), whose holes are held, and install it
 * in place of the faultline mappings there.  Map write lock held. */
static int mmap_fixed_move(struct fl_engine *e, struct new_mapping *nm,
			   uintptr_t start, uintptr_t end,
			   struct put_list *puts)
{
	int err;

	if (mapping_split_range(&e->mappings, start, end) ||
	    mapping_set_reserve(&e->mappings, 1))
		return errno;
	err = view_move(e, nm->view, start, end - start);
	if (err) {
		if (views_lost(e, start, end)) /* as mmap(2) would: gone */
			unmap_split_range_locked(e, start, end, 1, puts);
		return err;
	}
	nm->view = MAP_FAILED; /* it is at start now */
	unmap_split_range_locked(e, start, end, 0, puts);
	mapping_add(e, nm->m, start, end - start);
	return 0;
}

/*
 * MAP_FIXED and MAP_FIXED_NOREPLACE.  First the target's holes are taken by
 * placeholders (MAP_FIXED_NOREPLACE: the whole target, which fails with
 * EEXIST, as mmap(2) does, if anything at all is mapped there), then the
 * mapping and its armed view are made, elsewhere: every step that can fail
 * is done before the target changes.  Then view_move replaces the target in
 * one step and the faultline mappings it replaced are forgotten.  Map write
 * lock held.  0 or errno; on failure the address space is as it was, unless
 * mremap unmapped the target before failing (as mmap(2) may), which is
 * checked.
 */
static int mmap_fixed_locked(struct fl_engine *e, struct fl_group *g,
			     uintptr_t start, size_t len, int prot, int flags,
			     fl_object *o, off_t offset, struct new_mapping *nm,
			     struct put_list *puts)
{
	uintptr_t end = start + len;
	struct holes holes = {0};
	int err;

	*nm = (struct new_mapping){.view = MAP_FAILED};
	if (flags & MAP_FIXED_NOREPLACE) {
		size_t i = mapping_first_after(&e->mappings, start);

		if (i < e->mappings.nr && e->mappings.v[i]->start < end)
			return EEXIST;
		err = placeholder_map(start, end);
		if (!err && (err = holes_add(&holes, start, end)))
			munmap((void *)start, len);
	} else {
		err = holes_fill(start, end, &holes);
	}
	if (!err)
		err = new_mapping_make(e, g, NULL, len, prot, flags, o, offset,
				       nm);
	if (!err)
		err = mmap_fixed_move(e, nm, start, end, puts);
	holes_done(&holes, err != 0);
	return err;
}

void *fl_mmap_group(fl_engine *e, fl_group *g, void *addr, size_t length,
		    int prot, int flags, fl_object *o, off_t offset)
{
	size_t len = page_round_up(length);
	uintptr_t start = (uintptr_t)addr;
	struct put_list puts = {0};
	struct new_mapping nm;
	int err = mmap_check_args(e, start, length, prot, flags, o, offset);

	if (!err && g && g->engine != e)
		err = EINVAL;
	if (err) {
		errno = err;
		return MAP_FAILED;
	}
	if (!g)
		g = e->root_group;
	if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
		map_write_lock(e);
		err = mmap_fixed_locked(e, g, start, len, prot, flags, o,
					offset, &nm, &puts);
		map_unlock(e);
	} else {
		err = new_mapping_make(e, g, addr, len, prot, flags, o, offset,
				       &nm);
		if (!err) {
			map_write_lock(e);
			if (mapping_set_reserve(&e->mappings, 1))
				err = errno;
			else
				mapping_add(e, nm.m, (uintptr_t)nm.view, len);
			map_unlock(e);
		}
		/* Not m->start: m may be unmapped as soon as unlocked. */
		start = (uintptr_t)nm.view;
		if (!err)
			nm.view = MAP_FAILED;
	}
	if (nm.view != MAP_FAILED)
		munmap(nm.view, len);
	if (!err && (flags & MAP_FIXED)) /* sleepers on what it replaced */
		uffd_wake(e->uffd, start, len);
	put_list_finish(&puts);
	if (nm.anon)
		object_put(nm.anon); /* on success, the mapping holds it */
	if (err) {
		free(nm.m);
		errno = err;
		return MAP_FAILED;
	}
	return (void *)start;
}

void *fl_mmap(fl_engine *e, void *addr, size_t length, int prot, int flags,
	      fl_object *o, off_t offset)
{
	return fl_mmap_group(e, NULL, addr, length, prot, flags, o, offset);
}

/* ---- protection, advice, sync ----------------------------------------- */

/*
 * [*start, *end) of a range call: -1 with EINVAL for no engine or an
 * unaligned addr, or with wrap_errno for a length that wraps around the
 * address space (mprotect(2) and msync(2) say ENOMEM, madvise(2) EINVAL).
 */
static int range_check(fl_engine *e, void *addr, size_t length, int wrap_errno,
		       uintptr_t *start, uintptr_t *end)
{
	*start = (uintptr_t)addr;
	*end = *start + page_round_up(length);
	if (!e || (*start & ~PAGE_MASK)) {
		errno = EINVAL;
		return -1;
	}
	if (*end < *start || (length && *end == *start)) {
		errno = wrap_errno;
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

	if (range_check(e, addr, length, ENOMEM, &start, &end))
		return -1;
	if (length == 0) /* as mprotect(2): nothing to do, nothing split */
		return 0;
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

		if (n == -EDQUOT) /* advice: it does not reclaim to make room */
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

/*
 * A hole in shared anonymous memory: its pages, in memory or swapped out,
 * go (as tmpfs punches a hole).  Only MAP_SHARED mappings of objects with
 * no store: EINVAL for a private mapping, EOPNOTSUPP for a store's.
 */
static int madvise_remove(struct fl_engine *e, uintptr_t start, uintptr_t end)
{
	size_t nr, i;
	struct object_range *r;
	int rc = 0;

	map_read_lock(e);
	for (i = mapping_first_after(&e->mappings, start);
	     i < e->mappings.nr && e->mappings.v[i]->start < end; i++) {
		struct fl_mapping *m = e->mappings.v[i];

		if (m->kind != MAP_KIND_SHARED)
			rc = EINVAL;
		else if (m->object->store && !rc)
			rc = EOPNOTSUPP;
	}
	map_unlock(e);
	if (rc) {
		errno = rc;
		return -1;
	}
	r = collect_object_ranges(e, start, end, 1, &nr);
	if (!r)
		return -1;
	for (i = 0; i < nr; i++)
		if (swap_object_punch(r[i].object, r[i].first, r[i].last))
			rc = -1;
	object_ranges_put(r, nr);
	return rc;
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

	if (range_check(e, addr, length, EINVAL, &start, &end))
		return -1;
	if (advice != MADV_NORMAL && advice != MADV_RANDOM &&
	    advice != MADV_SEQUENTIAL && advice != MADV_WILLNEED &&
	    advice != MADV_DONTNEED && advice != MADV_REMOVE) {
		errno = EINVAL;
		return -1;
	}
	if (length == 0) /* as madvise(2): nothing to do, nothing split */
		return 0;
	if (range_mapped(e, start, end))
		return -1;
	switch (advice) {
	case MADV_DONTNEED:
		return madvise_dontneed(e, start, end);
	case MADV_WILLNEED:
		return madvise_willneed(e, start, end);
	case MADV_REMOVE:
		return madvise_remove(e, start, end);
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

	if (e && ((flags & ~(MS_SYNC | MS_ASYNC | MS_INVALIDATE)) ||
		  ((flags & MS_SYNC) && (flags & MS_ASYNC)))) {
		errno = EINVAL; /* before the range, as msync(2) */
		return -1;
	}
	if (range_check(e, addr, length, ENOMEM, &start, &end))
		return -1;
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
