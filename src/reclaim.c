/* SPDX-License-Identifier: MIT */
/* LRU lists and reclaim; see reclaim.h. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "engine.h"
#include "group.h"
#include "object.h"
#include "reclaim.h"
#include "swap.h"
#include "writeback.h"

#define RECLAIM_BATCH		 256 /* pages taken off the lists per lock hold */
#define RECLAIM_MIN_EVICT	 32 /* evicted per batch even if fewer wanted */
#define RECLAIM_IDLE_ROUNDS	 8 /* rounds in a row that free nothing: stop */
#define RECLAIM_WRITES_IN_FLIGHT 64 /* dirty runs written at once */
/* After a background reclaim that freed nothing, none for this long. */
#define BACKGROUND_QUIET_NS (10 * 1000 * 1000ull)

/* ---- the lists: circular, doubly linked, head = most recent ------------- */

static void list_push(struct fl_page **head, struct fl_page *p)
{
	if (!*head) {
		p->lru_prev = p->lru_next = p;
	} else {
		p->lru_next = *head;
		p->lru_prev = (*head)->lru_prev;
		p->lru_prev->lru_next = p;
		(*head)->lru_prev = p;
	}
	*head = p;
}

static void list_remove(struct fl_page **head, struct fl_page *p)
{
	if (p->lru_next == p) {
		*head = NULL;
	} else {
		p->lru_prev->lru_next = p->lru_next;
		p->lru_next->lru_prev = p->lru_prev;
		if (*head == p)
			*head = p->lru_next;
	}
	p->lru_prev = p->lru_next = NULL;
}

static struct fl_page *list_tail(struct fl_page *head)
{
	return head ? head->lru_prev : NULL;
}

void lru_init(struct lru *lru)
{
	pthread_mutex_init(&lru->lock, NULL);
	lru->inactive = lru->active = NULL;
	lru->nr_inactive = lru->nr_active = 0;
}

void lru_destroy(struct lru *lru)
{
	pthread_mutex_destroy(&lru->lock);
}

/* Under the lock: take p off whichever list it is on. */
static void lru_unlink(struct lru *lru, struct fl_page *p)
{
	if (page_test(p, PG_ACTIVE)) {
		list_remove(&lru->active, p);
		lru->nr_active--;
	} else {
		list_remove(&lru->inactive, p);
		lru->nr_inactive--;
	}
	page_test_and_clear(p, PG_LRU | PG_ACTIVE);
}

static void lru_push_inactive(struct lru *lru, struct fl_page *p)
{
	list_push(&lru->inactive, p);
	lru->nr_inactive++;
	page_test_and_set(p, PG_LRU);
}

static void lru_push_active(struct lru *lru, struct fl_page *p)
{
	list_push(&lru->active, p);
	lru->nr_active++;
	page_test_and_set(p, PG_LRU | PG_ACTIVE);
}

void lru_add(struct fl_page *p)
{
	struct lru *lru = &p->group->lru;

	pthread_mutex_lock(&lru->lock);
	if (!page_test(p, PG_LRU))
		lru_push_inactive(lru, p);
	pthread_mutex_unlock(&lru->lock);
}

void lru_del(struct fl_page *p)
{
	struct lru *lru;

	if (!p->group)
		return;
	lru = &p->group->lru;
	pthread_mutex_lock(&lru->lock);
	if (page_test(p, PG_LRU))
		lru_unlink(lru, p);
	pthread_mutex_unlock(&lru->lock);
}

void lru_mark_accessed(struct fl_page *p)
{
	struct lru *lru;

	if (!p->group)
		return;
	lru = &p->group->lru;
	pthread_mutex_lock(&lru->lock);
	if (page_test(p, PG_LRU) && page_test(p, PG_UNMAPPED) &&
	    !page_test(p, PG_ACTIVE)) {
		/* Used again after its second chance: it is hot. */
		lru_unlink(lru, p);
		page_test_and_clear(p, PG_UNMAPPED | PG_REFERENCED);
		lru_push_active(lru, p);
	} else {
		page_test_and_set(p, PG_REFERENCED);
	}
	pthread_mutex_unlock(&lru->lock);
}

/* ---- scanning ------------------------------------------------------------ */

/*
 * Whether reclaim for a readahead window must leave p: a page read ahead
 * and not used yet, or one of the stream's own pages between its reader
 * and the window (fault-around may have mapped them, which counts as use,
 * but the reader has not got there).
 */
static int spared_for_readahead(const struct readahead_spare *s,
				const struct fl_page *p, uint32_t fl)
{
	return (fl & PG_READAHEAD) ||
	       (p->object == s->object && p->index >= s->reader &&
		p->index < s->window);
}

/* Pages taken off the lists, each with a reference on it and its object. */
struct reclaim_batch {
	struct fl_page *unmap[RECLAIM_BATCH], *dirty[RECLAIM_BATCH],
		*evict[RECLAIM_BATCH];
	unsigned nr_unmap, nr_dirty, nr_evict, activated;
	unsigned max_evict; /* at most RECLAIM_BATCH */
	unsigned busy;	    /* locked, under writeback, or being read */
	unsigned stuck;	    /* could not be punched out */
	/* Reclaiming for a readahead window: the pages it must leave. */
	const struct readahead_spare *spare;
};

static int take_refs(struct fl_page *p)
{
	if (!object_tryget(p->object))
		return 0; /* the object is going: its pages go with it */
	page_get(p);
	return 1;
}

static void drop_refs(struct fl_page *p)
{
	struct fl_object *o = p->object;

	page_put(p);
	object_put(o);
}

/* Keep the active list no longer than the inactive one. */
static void lru_balance(struct lru *lru)
{
	while (lru->nr_active > lru->nr_inactive) {
		struct fl_page *p = list_tail(lru->active);

		lru_unlink(lru, p);
		page_test_and_clear(p, PG_REFERENCED | PG_UNMAPPED);
		lru_push_inactive(lru, p);
	}
}

/* Decide one inactive page's fate; under the lock. */
static void scan_page(struct lru *lru, struct fl_page *p,
		      struct reclaim_batch *b)
{
	uint32_t fl = atomic_load(&p->flags);

	lru_unlink(lru, p);
	if (b->spare && spared_for_readahead(b->spare, p, fl)) {
		lru_push_inactive(lru, p);
		b->busy++;
	} else if (fl & PG_REFERENCED) { /* used since last looked at */
		page_test_and_clear(p, PG_REFERENCED | PG_UNMAPPED);
		lru_push_active(lru, p);
		b->activated++;
	} else if (!(fl & PG_UNMAPPED) && b->nr_unmap < RECLAIM_BATCH &&
		   take_refs(p)) {
		page_test_and_set(p, PG_UNMAPPED); /* second chance */
		lru_push_inactive(lru, p);
		b->unmap[b->nr_unmap++] = p;
	} else if ((fl & (PG_LOCKED | PG_WRITEBACK)) || !(fl & PG_UPTODATE)) {
		lru_push_inactive(lru, p); /* busy: later */
		b->busy++;
	} else if (fl & PG_DIRTY) {
		lru_push_inactive(lru, p);
		if (b->nr_dirty < RECLAIM_BATCH && take_refs(p))
			b->dirty[b->nr_dirty++] = p;
	} else if (b->nr_evict < b->max_evict && take_refs(p)) {
		b->evict[b->nr_evict++] = p; /* isolated: off the lists */
	} else {
		lru_push_inactive(lru, p);
	}
}

static void scan_lru(struct fl_group *g, struct reclaim_batch *b)
{
	struct lru *lru = &g->lru;

	pthread_mutex_lock(&lru->lock);
	lru_balance(lru);
	for (uint64_t i = 0, n = lru->nr_inactive;
	     i < n && i < 4 * RECLAIM_BATCH; i++) {
		if (b->nr_evict == b->max_evict)
			break;
		scan_page(lru, list_tail(lru->inactive), b);
	}
	atomic_fetch_add(&g->isolated, b->nr_evict);
	pthread_mutex_unlock(&lru->lock);
}

/* ---- acting on what the scan found --------------------------------------- */

/* By object, then index: consecutive pages become runs, one call each. */
static int page_order(const void *a, const void *b)
{
	const struct fl_page *p = *(struct fl_page *const *)a;
	const struct fl_page *q = *(struct fl_page *const *)b;

	if (p->object != q->object)
		return p->object < q->object ? -1 : 1;
	return p->index < q->index ? -1 : p->index > q->index;
}

static unsigned run_length(struct fl_page **v, unsigned i, unsigned n)
{
	unsigned j = i + 1;

	while (j < n && v[j]->object == v[i]->object &&
	       v[j]->index == v[j - 1]->index + 1)
		j++;
	return j - i;
}

/*
 * Take pages [first, last] of o out of every shared view (not the cache).
 * Map lock held.  Private views are left alone: a private copy there must
 * not be touched, and telling one from a cache page is not race-free.
 */
static void unmap_from_views(struct fl_object *o, uint64_t first, uint64_t last)
{
	uint64_t lo, hi;

	for (struct fl_mapping *m = o->mappings; m; m = m->obj_next)
		if (m->kind == MAP_KIND_SHARED &&
		    mapping_clamp(m, first, last, &lo, &hi))
			madvise((void *)mapping_addr(m, lo),
				(hi - lo + 1) << PAGE_SHIFT, MADV_DONTNEED);
}

/* Take pages out of every shared view: a later use shows as a minor fault. */
static void unmap_pages(struct fl_engine *e, struct reclaim_batch *b)
{
	qsort(b->unmap, b->nr_unmap, sizeof(b->unmap[0]), page_order);
	map_read_lock(e);
	for (unsigned i = 0, len; i < b->nr_unmap; i += len) {
		len = run_length(b->unmap, i, b->nr_unmap);
		unmap_from_views(b->unmap[i]->object, b->unmap[i]->index,
				 b->unmap[i + len - 1]->index);
	}
	map_unlock(e);
	for (unsigned i = 0; i < b->nr_unmap; i++)
		drop_refs(b->unmap[i]);
}

/*
 * Write dirty pages the scan found (up to RECLAIM_WRITES_IN_FLIGHT), all
 * in flight at once where the store can (no flush: reclaim needs clean
 * pages, not durable ones), and wait for them: a bounded batch, never a
 * long writeback run.
 */
static uint64_t write_pages(struct fl_group *g, struct reclaim_batch *b)
{
	struct wb_batch wb;
	uint64_t written = 0;

	wb_batch_init(&wb, g->engine);
	qsort(b->dirty, b->nr_dirty, sizeof(b->dirty[0]), page_order);
	/* One wave: at most as many pages as writes in flight, so that a
	 * store without an asynchronous path (written one run at a time)
	 * cannot keep the fault that waits for this reclaim long. */
	writeback_pages(&wb, b->dirty,
			b->nr_dirty < RECLAIM_WRITES_IN_FLIGHT
				? b->nr_dirty
				: RECLAIM_WRITES_IN_FLIGHT,
			RECLAIM_WRITES_IN_FLIGHT);
	wb_batch_wait(&wb, 0);
	wb_batch_destroy(&wb);
	for (unsigned i = 0; i < b->nr_dirty; i++) {
		written += !page_test(b->dirty[i], PG_DIRTY);
		drop_refs(b->dirty[i]);
	}
	atomic_fetch_add(&g->pages_written_back, written);
	return written;
}

/* Dirty pages found but clean ones enough: the flusher writes them. */
static void skip_dirty_pages(struct reclaim_batch *b)
{
	for (unsigned i = 0; i < b->nr_dirty; i++)
		drop_refs(b->dirty[i]);
	b->nr_dirty = 0;
}

static int page_cached(struct fl_object *o, struct fl_page *p)
{
	int cached;

	pthread_rwlock_rdlock(&o->lock);
	cached = radix_lookup(&o->pages, p->index) == p;
	pthread_rwlock_unlock(&o->lock);
	return cached;
}

/* Under the cache lock: whether p, locked by us, can go. */
static int evictable(struct fl_object *o, struct fl_page *p)
{
	uint32_t fl = atomic_load(&p->flags);

	return (fl & PG_UPTODATE) && !(fl & (PG_DIRTY | PG_WRITEBACK)) &&
	       atomic_load(&p->refcount) == 2 && /* the cache's and ours */
	       radix_lookup(&o->pages, p->index) == p;
}

/*
 * Evict a run of isolated pages of one object that nobody uses: punched out
 * of the memfd (out of every view at once) in one call per contiguous part,
 * under the cache lock so that no fault maps them meanwhile.
 */
static uint64_t evict_run(struct fl_page **v, unsigned n, unsigned *stuck)
{
	struct fl_object *o = v[0]->object;
	unsigned char locked[RECLAIM_BATCH], gone[RECLAIM_BATCH];
	uint64_t freed = 0;

	pthread_rwlock_wrlock(&o->lock);
	for (unsigned k = 0; k < n; k++) {
		locked[k] = page_trylock(v[k]);
		gone[k] = locked[k] && evictable(o, v[k]);
	}
	for (unsigned k = 0, j; k < n; k = j) {
		for (j = k; j < n && gone[j]; j++)
			;
		if (j == k) {
			j++;
			continue;
		}
		if (fallocate(o->memfd,
			      FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			      (off_t)(v[k]->index << PAGE_SHIFT),
			      (off_t)((j - k) << PAGE_SHIFT))) {
			/* Still resident: keep the pages and their charge. */
			memset(gone + k, 0, j - k);
			*stuck += j - k;
			continue;
		}
		for (unsigned i = k; i < j; i++) {
			radix_delete(&o->pages, v[i]->index);
			if (page_test(v[i], PG_READAHEAD))
				count_add(&o->engine->stats, readahead_evicted,
					  1);
		}
		atomic_fetch_sub(&o->engine->cached_pages, j - k);
		freed += j - k;
	}
	pthread_rwlock_unlock(&o->lock);
	for (unsigned k = 0; k < n; k++) {
		if (locked[k]) /* waiters find it gone, and read it again */
			page_unlock(v[k]);
		if (gone[k])
			page_put(v[k]); /* the cache's reference */
		else if (page_cached(o, v[k]))
			lru_add(v[k]); /* still cached, but in use */
	}
	return freed;
}

static uint64_t evict_pages(struct fl_group *g, struct reclaim_batch *b)
{
	uint64_t freed = 0;

	qsort(b->evict, b->nr_evict, sizeof(b->evict[0]), page_order);
	for (unsigned i = 0, len; i < b->nr_evict; i += len) {
		len = run_length(b->evict, i, b->nr_evict);
		if (b->evict[i]->object->store)
			freed += evict_run(b->evict + i, len, &b->stuck);
		else /* shared anonymous memory: to swap */
			freed += swap_evict_object_run(b->evict + i, len,
						       &b->stuck);
	}
	/* Counted before the uncharges: whoever sees the usage fall sees the
	 * pages reclaimed too. */
	atomic_fetch_add(&g->pages_reclaimed, freed);
	for (unsigned i = 0; i < b->nr_evict; i++)
		drop_refs(b->evict[i]); /* the last put uncharges */
	atomic_fetch_sub(&g->isolated, b->nr_evict);
	return freed;
}

/*
 * One batch from g's lists, leaving what spare names (NULL: nothing), and
 * evicting about want pages (at least RECLAIM_MIN_EVICT, at most a batch):
 * a whole batch for a fault that needs a few pages would take a small
 * group's whole cache, pages read ahead and not used yet with it, to be
 * read again.  Returns pages freed, *progress if anything moved (a page
 * unmapped, written, activated or freed), and adds to *busy the pages that
 * could not go only because they were busy, to *in_io those of them being
 * read or written, and to *held those taken to be evicted that someone
 * held (a fault mapping them, say).
 */
static uint64_t shrink_group(struct fl_group *g,
			     const struct readahead_spare *spare, uint64_t want,
			     int *progress, uint64_t *busy, uint64_t *in_io,
			     uint64_t *held)
{
	struct reclaim_batch b = {.spare = spare};
	uint64_t freed, held_now;

	b.max_evict = want < RECLAIM_MIN_EVICT ? RECLAIM_MIN_EVICT
		      : want > RECLAIM_BATCH   ? RECLAIM_BATCH
					       : (unsigned)want;

	scan_lru(g, &b);
	unmap_pages(g->engine, &b);
	/* Clean pages first: dirty ones are written here only when the scan
	 * found nothing clean to evict (the flusher writes them otherwise). */
	if (b.nr_evict)
		skip_dirty_pages(&b);
	*progress = b.nr_unmap + b.activated + write_pages(g, &b) > 0;
	freed = evict_pages(g, &b);
	*progress |= freed > 0;
	/* In use now (locked, held, or referenced since last looked at):
	 * a later pass may take them. */
	held_now = b.nr_evict - freed - b.stuck;
	*busy += b.busy + b.activated + held_now;
	*in_io += b.busy;
	*held += held_now;
	return freed;
}

/* ---- reclaim of a subtree -------------------------------------------------
 */

/* The groups within g, pinned so that none goes while reclaim runs. */
static struct fl_group **subtree_pin(struct fl_group *g, unsigned *nr)
{
	struct fl_engine *e = g->engine;
	struct fl_group **v = NULL;
	unsigned n = 0, cap = 0;

	pthread_mutex_lock(&e->groups_lock);
	for (struct fl_group *h = e->groups; h; h = h->next) {
		if (!group_within(h, g))
			continue;
		if (n == cap) {
			struct fl_group **nv;

			cap = cap ? cap * 2 : 8;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv)
				break;
			v = nv;
		}
		atomic_fetch_add(&h->pins, 1);
		v[n++] = h;
	}
	pthread_mutex_unlock(&e->groups_lock);
	*nr = n;
	return v;
}

/* Pages of g and the groups below it that another reclaim has taken off
 * the lists to evict right now (they may stay: wait and look again). */
static uint64_t reclaim_isolated(struct fl_group *g)
{
	struct fl_engine *e = g->engine;
	uint64_t pages = 0;

	pthread_mutex_lock(&e->groups_lock);
	for (struct fl_group *h = e->groups; h; h = h->next)
		if (group_within(h, g))
			pages += atomic_load(&h->isolated);
	pthread_mutex_unlock(&e->groups_lock);
	return pages;
}

/*
 * As reclaim_group, leaving what spare names (reclaim for a readahead
 * window; NULL for any other), and *busy is how many pages it passed over
 * only because they were busy: pages that a later try may free; *io of
 * them were being read or written.
 */
static uint64_t reclaim_group_busy(struct fl_group *g, uint64_t want,
				   const struct readahead_spare *spare,
				   uint64_t *busy, uint64_t *io)
{
	unsigned nr;
	struct fl_group **v;
	uint64_t freed = 0, swept;
	int progress = 1;

	*busy = 0;
	*io = 0;
	fl_assert_may_block(); /* it takes the map lock, writes back */
	swept = swap_cache_sweep(g->engine); /* stale swap-cache pages */
	freed = swept;
	v = subtree_pin(g, &nr);

	/*
	 * Rounds over every group until enough is freed or nothing moves.
	 * A page needs a few rounds (unmapped for its second chance, written
	 * back, then evicted), but rounds that free nothing are bounded: pages
	 * that keep moving without ever going (activated and balanced back,
	 * or dirty with writeback failing) must not keep reclaim spinning.
	 */
	for (unsigned round = 0, idle = 0;
	     freed < want && progress && idle < RECLAIM_IDLE_ROUNDS &&
	     round < 4096;
	     round++) {
		uint64_t before = freed, in_io = 0, held = 0;

		progress = 0;
		for (unsigned i = 0; i < nr && freed < want; i++) {
			int moved;

			freed += shrink_group(v[i], spare, want - freed, &moved,
					      busy, &in_io, &held);
			progress |= moved;
		}
		if (freed == swept && freed < want && !spare &&
		    (round > 0 || !progress) &&
		    in_io + held + reclaim_isolated(g) < want - freed) {
			/* The cache's pages are hot (no cache page went,
			 * even a round after their second chance) or gone:
			 * swap.  While cold cache pages go, anonymous ones
			 * stay (a partial answer: the caller asks again);
			 * so they do while enough cache pages are only
			 * being read, held a moment (a fault mapping them)
			 * or being evicted by another reclaim: evicting
			 * about what is asked, reclaims are many and small,
			 * and one may find the few pages it took held, or
			 * the rest taken by another (the caller tries again
			 * soon).
			 * Not for a readahead window: reading ahead is a
			 * guess, not worth a page written out. */
			uint64_t swapped = swap_reclaim(g, want - freed);

			freed += swapped;
			progress |= swapped > 0;
		}
		idle = freed > before ? 0 : idle + 1;
		*io = in_io;
	}
	if (getenv("FL_DEBUG_RECLAIM"))
		fprintf(stderr, "reclaim %s want %lu freed %lu groups %u\n",
			g->name, (unsigned long)want, (unsigned long)freed, nr);
	for (unsigned i = 0; i < nr; i++)
		atomic_fetch_sub(&v[i]->pins, 1);
	free(v);
	return freed;
}

uint64_t reclaim_group(struct fl_group *g, uint64_t want)
{
	uint64_t busy, io;

	return reclaim_group_busy(g, want, NULL, &busy, &io);
}

enum reclaim_outcome reclaim_try(struct fl_group *g, uint64_t want)
{
	uint64_t busy, io;

	if (reclaim_group_busy(g, want, NULL, &busy, &io))
		return RECLAIM_FREED;
	if (io) /* the last round passed over pages in I/O */
		return RECLAIM_IN_IO;
	/* Pages in the swap cache (written out or read in right now) are
	 * busy too: another reclaim's swap-out frees them in a moment. */
	return busy || reclaim_isolated(g) ||
			       atomic_load(&g->engine->swap.cache_pages)
		       ? RECLAIM_BUSY
		       : RECLAIM_STUCK;
}

uint64_t reclaim_for_readahead(struct fl_group *g, uint64_t want,
			       const struct readahead_spare *spare)
{
	uint64_t busy, io;

	return reclaim_group_busy(g, want, spare, &busy, &io);
}

static void background_work(struct fl_engine *e, struct work *w)
{
	struct fl_group *g = w->arg;
	uint64_t usage = atomic_load(&g->usage);
	uint64_t target = group_background_target(g, RECLAIM_BATCH);

	if (usage > target && reclaim_group(g, usage - target) == 0)
		atomic_store(&g->background_quiet_until,
			     lockstat_now() + BACKGROUND_QUIET_NS);
	atomic_store(&g->background_reclaim, 0);
	atomic_fetch_sub(&g->pins, 1);
	free(w);
}

static void background_cancel(struct work *w)
{
	struct fl_group *g = w->arg;

	atomic_store(&g->background_reclaim, 0);
	atomic_fetch_sub(&g->pins, 1);
	free(w);
}

void reclaim_background(struct fl_group *g)
{
	int idle = 0;
	struct work *w;

	if (!atomic_compare_exchange_strong(&g->background_reclaim, &idle, 1))
		return;
	w = calloc(1, sizeof(*w));
	if (!w) {
		atomic_store(&g->background_reclaim, 0);
		return;
	}
	atomic_fetch_add(&g->pins, 1);
	w->fn = background_work;
	w->cancel = background_cancel;
	w->arg = g;
	threads_post_work(g->engine, w);
}
