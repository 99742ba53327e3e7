// SPDX-License-Identifier: MIT
/*
 * Memory groups: the hard limit under concurrent faulting, exact charges,
 * the hierarchy, access-aware eviction, writeback before eviction, each OOM
 * policy, and the livelock of change (a).  Waits for events are bounded;
 * only whether an event came is checked, never how long it took.
 */
#include "harness.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define MB (1024 * 1024)

/* Two handler threads, as on the machines the suite runs on. */
static fl_engine *group_engine(unsigned around, unsigned readahead)
{
	return h_engine_cfg(2, around, readahead);
}

static struct fl_group_stats gstats(fl_group *g)
{
	struct fl_group_stats s;

	REQUIRE(fl_group_stats(g, &s) == 0);
	return s;
}

static fl_group *limited(fl_engine *e, fl_group *parent, const char *name,
			 uint64_t max)
{
	fl_group *g = fl_group_create(e, parent, name);

	REQUIRE(g != NULL);
	REQUIRE(fl_group_set_max(g, max) == 0);
	return g;
}

/* ---- the hard limit ------------------------------------------------------ */

struct limit_ctx {
	fl_engine *e;
	fl_group *g;
	unsigned char *p;
	size_t pages;
	int stop;
	uint64_t worst; /* the highest usage the watcher saw */
};

static void limit_thread(int idx, void *arg)
{
	struct limit_ctx *c = arg;

	if (idx == 0) { /* the watcher */
		while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
			uint64_t u = gstats(c->g).usage;

			if (u > c->worst)
				c->worst = u;
		}
		return;
	}
	for (int pass = 0; pass < 2; pass++)
		for (size_t pg = (size_t)idx; pg < c->pages; pg += 3)
			if (h_mismatch(c->p + pg * PG + 64, 8, 201,
				       pg * PG + 64) != -1) {
				h_fail(__FILE__, __LINE__, "page %zu", pg);
				return;
			}
	if (__atomic_add_fetch(&c->stop, 0, __ATOMIC_ACQ_REL) == 0 && idx == 3)
		__atomic_store_n(&c->stop, 1, __ATOMIC_RELEASE);
}

static int group_empty(void *arg)
{
	return gstats(arg).usage == 0;
}

static int wait_until(int (*cond)(void *), void *arg)
{
	return h_wait_until(cond, arg);
}

/* Charged for its cache pages alone: none is on its way in or out (a
 * window read ahead is charged before its pages exist, and a freed page
 * leaves the cache before its charge goes). */
static int usage_is_cache(void *arg)
{
	struct fl_group_stats s = gstats(arg);

	return s.usage == s.cache_pages * PG;
}

static int group_destroyed(void *arg)
{
	if (fl_group_destroy(arg) == 0)
		return 1;
	if (errno != EBUSY)
		h_fail(__FILE__, __LINE__, "fl_group_destroy: %s",
		       strerror(errno));
	return errno != EBUSY;
}

TEST(hard_limit_under_concurrent_faults)
{
	fl_engine *e = group_engine(16, 16);
	struct h_file f;
	struct limit_ctx c = {.e = e, .pages = 1024};
	struct fl_group_stats s;
	fl_object *o;

	h_file_create(&f, c.pages * PG, 201);
	o = h_open(e, &f, O_RDONLY);
	c.g = limited(e, NULL, "small", 64 * PG);
	c.p = fl_mmap_group(e, c.g, NULL, c.pages * PG, PROT_READ, MAP_SHARED,
			    o, 0);
	REQUIRE(c.p != MAP_FAILED);
	h_run_threads(4, limit_thread, &c);
	s = gstats(c.g);
	CHECK_LE(c.worst, 64 * PG);
	CHECK_LE(s.peak, 64 * PG);
	CHECK_LE(s.usage, 64 * PG);
	CHECK_GT(s.pages_reclaimed, 0);
	CHECK_EQ(s.oom_events, 0);
	CHECK(wait_until(usage_is_cache, c.g));
	CHECK_EQ(fl_munmap(e, c.p, c.pages * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	/* The pages go with the object, once in-flight readahead or
	 * reclaim lets go of it too; the group can go once that work lets
	 * go of it (destroy waits for it only briefly, then says EBUSY). */
	CHECK(wait_until(group_empty, c.g));
	CHECK(wait_until(group_destroyed, c.g));
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* ---- exact charges and the hierarchy --------------------------------------
 */

TEST(charges_are_exact_and_hierarchical)
{
	fl_engine *e = group_engine(1, 1);
	struct h_file f;
	fl_group *parent, *child;
	fl_object *o;
	unsigned char *sp, *pp, *ap;

	h_file_create(&f, 64 * PG, 202);
	o = h_open(e, &f, O_RDONLY);
	parent = limited(e, NULL, "parent", FL_GROUP_UNLIMITED);
	child = limited(e, parent, "child", FL_GROUP_UNLIMITED);
	sp = fl_mmap_group(e, child, NULL, 64 * PG, PROT_READ, MAP_SHARED, o,
			   0);
	pp = fl_mmap_group(e, child, NULL, 64 * PG, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE, o, 0);
	ap = fl_mmap_group(e, parent, NULL, 8 * PG, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(sp != MAP_FAILED && pp != MAP_FAILED && ap != MAP_FAILED);
	CHECK_EQ(h_mismatch(sp, 10 * PG, 202, 0), -1); /* 10 cache pages */
	for (int pg = 0; pg < 5; pg++)
		pp[pg * PG] = 1; /* 5 private copies */
	for (int pg = 0; pg < 3; pg++)
		ap[pg * PG] = 1; /* anonymous: page 0, then a window of 4 */
	CHECK_EQ(gstats(child).cache_pages, 10);
	CHECK_EQ(gstats(child).private_pages, 5);
	CHECK_EQ(gstats(child).usage, 15 * PG);
	CHECK_EQ(gstats(parent).usage,
		 (15 + gstats(parent).private_pages) * PG);
	CHECK_EQ(gstats(parent).private_pages, 4); /* 1, then [0, 4) */
	CHECK_EQ(gstats(fl_group_root(e)).usage, gstats(parent).usage);
	CHECK_ERR(fl_group_destroy(child), EBUSY); /* has mappings */
	CHECK_ERR(fl_group_destroy(parent), EBUSY);
	CHECK_EQ(fl_munmap(e, pp, 64 * PG), 0);
	CHECK_EQ(gstats(child).usage, 10 * PG); /* the copies went */
	CHECK_EQ(fl_madvise(e, ap, 8 * PG, MADV_DONTNEED), 0);
	CHECK_EQ(gstats(parent).private_pages, 0);
	CHECK_EQ(fl_munmap(e, ap, 8 * PG), 0);
	CHECK_EQ(fl_munmap(e, sp, 64 * PG), 0);
	CHECK_ERR(fl_group_destroy(child), EBUSY); /* charged cache pages */
	CHECK_EQ(fl_object_close(o), 0);
	/* The cache pages go with the object, each once the engine lets go
	 * of it: a fault's I/O thread holds the page it read until after it
	 * has woken the faulting thread. */
	CHECK(wait_until(group_empty, child));
	CHECK_EQ(gstats(parent).usage, 0);
	CHECK_EQ(gstats(fl_group_root(e)).usage, 0);
	CHECK_ERR(fl_group_destroy(parent), EBUSY); /* has a child */
	CHECK(wait_until(group_destroyed, child));
	CHECK_EQ(fl_group_destroy(parent), 0);
	CHECK_ERR(fl_group_destroy(fl_group_root(e)), EINVAL);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

TEST(parent_limit_binds_child)
{
	fl_engine *e = group_engine(1, 1);
	struct h_file f;
	fl_group *parent, *child;
	fl_object *o;
	unsigned char *p;

	h_file_create(&f, 256 * PG, 203);
	o = h_open(e, &f, O_RDONLY);
	parent = limited(e, NULL, "parent", 32 * PG);
	child = limited(e, parent, "child", FL_GROUP_UNLIMITED);
	p = fl_mmap_group(e, child, NULL, 256 * PG, PROT_READ, MAP_SHARED, o,
			  0);
	REQUIRE(p != MAP_FAILED);
	CHECK_EQ(h_mismatch(p, 256 * PG, 203, 0), -1);
	CHECK_LE(gstats(parent).peak, 32 * PG);
	CHECK_LE(gstats(child).peak, 32 * PG);
	CHECK_GT(gstats(child).pages_reclaimed, 0);
	CHECK_EQ(fl_munmap(e, p, 256 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0); /* frees the groups too */
	h_file_remove(&f);
}

/* ---- recency: a hot working set survives a cold scan ----------------------
 */

TEST(hot_set_survives_cold_scan)
{
	enum { HOT = 16, COLD = 1024, LIMIT = 64 };
	fl_engine *e = group_engine(1, 1);
	struct h_file f;
	fl_group *g;
	fl_object *o;
	unsigned char *p;
	uint64_t before;

	h_file_create(&f, (HOT + COLD) * PG, 204);
	o = h_open(e, &f, O_RDONLY);
	g = limited(e, NULL, "scan", LIMIT * PG);
	p = fl_mmap_group(e, g, NULL, (HOT + COLD) * PG, PROT_READ, MAP_SHARED,
			  o, 0);
	REQUIRE(p != MAP_FAILED);
	/* The hot pages come first: FIFO eviction would throw them out. */
	for (int pg = 0; pg < COLD; pg++) {
		if (pg % 8 == 0)
			for (int h = 0; h < HOT; h++)
				CHECK_EQ(h_mismatch(p + h * PG, 1, 204, h * PG),
					 -1);
		CHECK_EQ(h_mismatch(p + (HOT + pg) * PG, 1, 204,
				    (uint64_t)(HOT + pg) * PG),
			 -1);
		if (h_failures())
			break;
	}
	CHECK_LE(gstats(g).peak, LIMIT * PG);
	before = h_estats(e).pages_read;
	CHECK_EQ(h_mismatch(p, HOT * PG, 204, 0), -1);
	CHECK_EQ(h_estats(e).pages_read, before); /* still all cached */
	CHECK_GT(gstats(g).pages_reclaimed, COLD - LIMIT);
	CHECK_EQ(fl_munmap(e, p, (HOT + COLD) * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* ---- writeback before eviction, nothing lost ------------------------------
 */

TEST(dirty_pages_written_back_before_eviction)
{
	enum { PAGES = 512, LIMIT = 64 };
	fl_engine *e = group_engine(16, 16);
	struct h_file f;
	fl_group *g;
	fl_object *o;
	unsigned char *p, *buf;

	h_file_create(&f, PAGES * PG, 205);
	o = h_open(e, &f, O_RDWR);
	g = limited(e, NULL, "writer", LIMIT * PG);
	p = fl_mmap_group(e, g, NULL, PAGES * PG, PROT_READ | PROT_WRITE,
			  MAP_SHARED, o, 0);
	REQUIRE(p != MAP_FAILED);
	for (int pg = 0; pg < PAGES; pg++)
		p[pg * PG + 7] = (unsigned char)(pg ^ 0x5a);
	for (int pg = 0; pg < PAGES; pg++) /* read back: some re-read */
		CHECK_EQ(p[pg * PG + 7], (unsigned char)(pg ^ 0x5a));
	CHECK_LE(gstats(g).peak, LIMIT * PG);
	CHECK_GT(gstats(g).pages_written_back, 0);
	CHECK_EQ(fl_msync(e, p, PAGES * PG, MS_SYNC), 0);
	buf = malloc(PAGES * PG);
	REQUIRE(buf != NULL);
	CHECK_EQ(h_pread(f.path, buf, PAGES * PG, 0), PAGES * PG);
	for (int pg = 0; pg < PAGES; pg++) {
		CHECK_EQ(buf[pg * PG + 7], (unsigned char)(pg ^ 0x5a));
		CHECK_EQ(h_mismatch(buf + pg * PG, 7, 205, (uint64_t)pg * PG),
			 -1);
	}
	free(buf);
	CHECK_EQ(fl_munmap(e, p, PAGES * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK(wait_until(group_empty, g));
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* ---- OOM policies ---------------------------------------------------------
 */

TEST(oom_fail_gives_sigbus)
{
	fl_engine *e = group_engine(1, 1);
	fl_group *g = limited(e, NULL, "tiny", 8 * PG);
	unsigned char *p;
	struct h_sig sig;
	int pg;

	p = fl_mmap_group(e, g, NULL, 32 * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED);
	for (pg = 0; pg < 32; pg++)
		if (h_try_write(p + pg * PG, 1, &sig) || sig.signo)
			break;
	CHECK_EQ(pg, 8); /* anonymous memory cannot be reclaimed */
	CHECK_EQ(sig.signo, SIGBUS);
	CHECK(sig.addr == p + 8 * PG);
	CHECK_GE(gstats(g).oom_events, 1);
	CHECK_EQ(gstats(g).usage, 8 * PG);
	CHECK_EQ(h_estats(e).errors, 1);
	CHECK_EQ(p[3 * PG], 1); /* the engine goes on */
	CHECK_EQ(fl_munmap(e, p, 32 * PG), 0);
	CHECK_EQ(gstats(g).usage, 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

struct writer {
	pthread_t thread;
	unsigned char *p;
	int done;
	struct h_sig sig;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	h_try_write(w->p, 7, &w->sig);
	__atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int oom_seen(void *arg)
{
	return gstats(arg).oom_events >= 3; /* every writer got stuck */
}

/*
 * Waiting for memory holds no thread: with more faults stuck in a group
 * than there are handler threads, another group's faults are served; a new
 * max lets the stuck ones finish.
 */
TEST(oom_wait_holds_no_thread)
{
	fl_engine *e = group_engine(1, 1); /* 2 handler threads */
	fl_group *g = limited(e, NULL, "waiter", 4 * PG);
	fl_group *other = fl_group_create(e, NULL, "other");
	struct writer w[3];
	unsigned char *p, *q;

	REQUIRE(other != NULL);
	CHECK_EQ(fl_group_set_oom(g, FL_OOM_WAIT, NULL, NULL), 0);
	p = fl_mmap_group(e, g, NULL, 16 * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	q = fl_mmap_group(e, other, NULL, 64 * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED && q != MAP_FAILED);
	for (int pg = 0; pg < 4; pg++)
		p[pg * PG] = 1;	      /* the group is full */
	for (int i = 0; i < 3; i++) { /* handler threads + 1 stuck faults */
		w[i] = (struct writer){.p = p + (8 + i) * PG};
		REQUIRE(pthread_create(&w[i].thread, NULL, writer_main,
				       &w[i]) == 0);
	}
	CHECK(wait_until(oom_seen, g));
	for (int pg = 0; pg < 64; pg++)
		q[pg * PG] = 2; /* served meanwhile */
	CHECK_EQ(q[63 * PG], 2);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(__atomic_load_n(&w[i].done, __ATOMIC_ACQUIRE), 0);
	CHECK_EQ(fl_group_set_max(g, 16 * PG), 0); /* room: they go on */
	for (int i = 0; i < 3; i++) {
		pthread_join(w[i].thread, NULL);
		CHECK_EQ(w[i].sig.signo, 0);
		CHECK_EQ(p[(8 + i) * PG], 7);
	}
	CHECK_GT(gstats(g).wait_ns, 0);
	CHECK_LE(gstats(g).peak, 16 * PG);
	CHECK_EQ(fl_munmap(e, p, 16 * PG), 0);
	CHECK_EQ(fl_munmap(e, q, 64 * PG), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

struct callback_ctx {
	int calls;
	int raise; /* raise the max and retry, else give up */
};

static enum fl_oom_answer oom_callback(fl_group *g, uint64_t bytes, void *arg)
{
	struct callback_ctx *c = arg;

	__atomic_add_fetch(&c->calls, 1, __ATOMIC_ACQ_REL);
	if (bytes != PG)
		h_fail(__FILE__, __LINE__, "asked for %llu bytes",
		       (unsigned long long)bytes);
	if (!__atomic_load_n(&c->raise, __ATOMIC_ACQUIRE))
		return FL_OOM_GIVE_UP;
	fl_group_set_max(g, 64 * PG);
	return FL_OOM_RETRY;
}

TEST(oom_callback_decides)
{
	fl_engine *e = group_engine(1, 1);
	fl_group *g = limited(e, NULL, "asker", 4 * PG);
	struct callback_ctx c = {0, 0};
	unsigned char *p;
	struct h_sig sig;

	CHECK_EQ(fl_group_set_oom(g, FL_OOM_CALLBACK, oom_callback, &c), 0);
	CHECK_ERR(fl_group_set_oom(g, FL_OOM_CALLBACK, NULL, NULL), EINVAL);
	p = fl_mmap_group(e, g, NULL, 16 * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED);
	for (int pg = 0; pg < 4; pg++)
		p[pg * PG] = 1;
	h_try_write(p + 5 * PG, 2, &sig);
	CHECK_EQ(sig.signo, SIGBUS); /* it gave up */
	CHECK_EQ(__atomic_load_n(&c.calls, __ATOMIC_ACQUIRE), 1);
	__atomic_store_n(&c.raise, 1, __ATOMIC_RELEASE);
	CHECK_EQ(fl_madvise(e, p + 5 * PG, PG, MADV_DONTNEED),
		 0); /* unpoison */
	h_try_write(p + 5 * PG, 3, &sig);
	CHECK_EQ(sig.signo, 0); /* it raised the max */
	CHECK_EQ(__atomic_load_n(&c.calls, __ATOMIC_ACQUIRE), 2);
	CHECK_EQ(p[5 * PG], 3);
	CHECK_EQ(gstats(g).max, 64 * PG);
	CHECK_EQ(fl_munmap(e, p, 16 * PG), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/* ---- the livelock of change (a) -------------------------------------------
 */

struct livelock {
	fl_engine *e;
	unsigned char *shared, *priv;
	fl_group *a;
	int a_done;
	unsigned long b_faults;
};

static void *a_main(void *arg)
{
	struct livelock *l = arg;

	for (int pg = 0; pg < 64; pg++)
		l->priv[pg * PG + 1] = 0xaa; /* private copies, charged to A */
	__atomic_store_n(&l->a_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static int a_stuck(void *arg)
{
	return gstats(arg).oom_events > 0;
}

/*
 * Group A, at its max with policy wait, write-faults a private mapping of
 * O; group B read-faults the same pages of O through a shared mapping.  A's
 * private copies are charged before any page of O is locked, so B keeps
 * completing faults while A is stuck (rounds of them, counted, not timed),
 * and A completes once its max rises.
 */
#define B_ROUNDS 20

TEST(livelock_of_change_a)
{
	fl_engine *e = group_engine(1, 1);
	struct h_file f;
	struct livelock l = {.e = e};
	fl_group *b;
	fl_object *o;
	pthread_t at;

	h_file_create(&f, 64 * PG, 206);
	o = h_open(e, &f, O_RDONLY);
	l.a = limited(e, NULL, "A", 16 * PG);
	b = fl_group_create(e, NULL, "B");
	CHECK_EQ(fl_group_set_oom(l.a, FL_OOM_WAIT, NULL, NULL), 0);
	l.priv = fl_mmap_group(e, l.a, NULL, 64 * PG, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE, o, 0);
	l.shared =
		fl_mmap_group(e, b, NULL, 64 * PG, PROT_READ, MAP_SHARED, o, 0);
	REQUIRE(l.priv != MAP_FAILED && l.shared != MAP_FAILED);
	REQUIRE(pthread_create(&at, NULL, a_main, &l) == 0);
	REQUIRE(wait_until(a_stuck, l.a));
	for (int round = 0; round < B_ROUNDS && !h_failures(); round++) {
		/* B, while A is stuck: every page, then drop them */
		CHECK_EQ(h_mismatch(l.shared, 64 * PG, 206, 0), -1);
		CHECK_EQ(fl_madvise(e, l.shared, 64 * PG, MADV_DONTNEED), 0);
		l.b_faults += 64;
	}
	CHECK_EQ(l.b_faults, B_ROUNDS * 64);
	CHECK_GE(h_mstats(e, l.shared).minor_faults +
			 h_mstats(e, l.shared).major_faults,
		 B_ROUNDS * 64); /* each a fault, served */
	CHECK_EQ(__atomic_load_n(&l.a_done, __ATOMIC_ACQUIRE), 0);
	CHECK_EQ(fl_group_set_max(l.a, FL_GROUP_UNLIMITED), 0);
	pthread_join(at, NULL);
	CHECK_EQ(l.a_done, 1);
	for (int pg = 0; pg < 64; pg++)
		CHECK_EQ(l.priv[pg * PG + 1], 0xaa);
	CHECK_EQ(h_mismatch(l.shared, 64 * PG, 206, 0), -1); /* unchanged */
	CHECK_EQ(fl_munmap(e, l.priv, 64 * PG), 0);
	CHECK_EQ(fl_munmap(e, l.shared, 64 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK(wait_until(group_empty, l.a));
	CHECK(wait_until(group_empty, b));
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* ---- arguments ------------------------------------------------------------
 */

TEST(group_arguments)
{
	fl_engine *e = group_engine(1, 1), *e2 = group_engine(1, 1);
	fl_group *g = fl_group_create(e, NULL, "g");
	struct fl_group_stats s;

	REQUIRE(g != NULL);
	CHECK_ERR(fl_group_create(NULL, NULL, "x") == NULL, EINVAL);
	CHECK_ERR(fl_group_create(e, NULL, NULL) == NULL, EINVAL);
	CHECK_ERR(fl_group_create(e2, g, "x") == NULL, EINVAL);
	CHECK_ERR(fl_group_root(NULL) == NULL, EINVAL);
	CHECK_ERR(fl_group_destroy(NULL), EINVAL);
	CHECK_ERR(fl_group_set_max(NULL, PG), EINVAL);
	CHECK_ERR(fl_group_set_high(NULL, PG), EINVAL);
	CHECK_ERR(fl_group_set_oom(g, (enum fl_oom_policy)7, NULL, NULL),
		  EINVAL);
	CHECK_ERR(fl_group_stats(g, NULL), EINVAL);
	CHECK_ERR(fl_mmap_group(e2, g, NULL, PG, PROT_READ,
				MAP_PRIVATE | MAP_ANONYMOUS, NULL,
				0) == MAP_FAILED,
		  EINVAL);
	CHECK_EQ(fl_group_stats(fl_group_root(e), &s), 0);
	CHECK_EQ(s.max, FL_GROUP_UNLIMITED);
	CHECK(strcmp(fl_group_name(g), "g") == 0);
	CHECK(strcmp(fl_group_name(fl_group_root(e)), "root") == 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	CHECK_EQ(fl_engine_destroy(e2), 0);
}

static int below_high(void *arg)
{
	struct fl_group_stats s = gstats(arg);

	return s.usage <= s.high;
}

/* Above high, reclaim runs in the background; lowering max reclaims now. */
TEST(high_and_lowered_max_reclaim)
{
	fl_engine *e = group_engine(16, 16);
	struct h_file f;
	fl_group *g = fl_group_create(e, NULL, "soft");
	fl_object *o;
	unsigned char *p;

	h_file_create(&f, 256 * PG, 207);
	o = h_open(e, &f, O_RDONLY);
	REQUIRE(g != NULL);
	p = fl_mmap_group(e, g, NULL, 256 * PG, PROT_READ, MAP_SHARED, o, 0);
	REQUIRE(p != MAP_FAILED);
	CHECK_EQ(h_mismatch(p, 256 * PG, 207, 0), -1);
	CHECK_EQ(gstats(g).usage, 256 * PG); /* no limit yet */
	CHECK_EQ(fl_group_set_high(g, 128 * PG), 0);
	CHECK(wait_until(below_high, g));
	CHECK_GT(gstats(g).pages_reclaimed, 0);
	CHECK_EQ(fl_group_set_max(g, 32 * PG), 0);
	CHECK_LE(gstats(g).usage, 32 * PG);
	CHECK_EQ(h_mismatch(p, 256 * PG, 207, 0), -1); /* read back in */
	CHECK_LE(gstats(g).usage, 32 * PG);
	CHECK_EQ(fl_munmap(e, p, 256 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/*
 * Shared anonymous memory has no store to write back to: it is never
 * evicted.  A full group answers with SIGBUS, and no page written before
 * loses its data.
 */
TEST(shared_anonymous_never_evicted)
{
	fl_engine *e = group_engine(1, 1);
	fl_group *g = limited(e, NULL, "shanon", 64 * PG);
	unsigned char *p;
	struct h_sig sig;
	int pg;

	p = fl_mmap_group(e, g, NULL, 256 * PG, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED);
	for (pg = 0; pg < 256; pg++)
		if (h_try_write(p + pg * PG, (unsigned char)(pg | 1), &sig) ||
		    sig.signo)
			break;
	CHECK_EQ(sig.signo, SIGBUS);
	CHECK_EQ(pg, 64);
	for (int i = 0; i < pg; i++)
		CHECK_EQ(p[i * PG], (unsigned char)(i | 1));
	CHECK_EQ(gstats(g).pages_reclaimed, 0);
	CHECK_EQ(fl_munmap(e, p, 256 * PG), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/* An OOM on a store to a mapped page (the zero page here) still reaches
 * the thread as SIGBUS: the page is emptied so that the poison lands. */
TEST(oom_fail_on_write_protect_fault)
{
	fl_engine *e = group_engine(1, 1);
	fl_group *g = limited(e, NULL, "wp", 1 * PG);
	unsigned char *p;
	struct h_sig sig;

	p = fl_mmap_group(e, g, NULL, 4 * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED);
	p[0] = 1;		      /* the group is full */
	CHECK_EQ(p[PG], 0);	      /* the zero page, write-protected */
	h_try_write(p + PG, 2, &sig); /* a write-protect fault: no room */
	CHECK_EQ(sig.signo, SIGBUS);
	CHECK(sig.addr == p + PG);
	CHECK_GE(gstats(g).oom_events, 1);
	CHECK_EQ(p[0], 1);
	CHECK_EQ(fl_munmap(e, p, 4 * PG), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/* A read whose whole window does not fit, with room for the faulting
 * page alone and nothing to reclaim, reads that page: no OOM. */
TEST(read_one_page_when_the_window_does_not_fit)
{
	fl_engine *e = group_engine(1, 16);
	struct h_file f;
	fl_group *g = limited(e, NULL, "narrow", 64 * PG);
	fl_object *o;
	unsigned char *a, *p;

	CHECK_EQ(fl_group_set_oom(g, FL_OOM_WAIT, NULL, NULL), 0);
	h_file_create(&f, 16 * PG, 208);
	o = h_open(e, &f, O_RDONLY);
	a = fl_mmap_group(e, g, NULL, 60 * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	p = fl_mmap_group(e, g, NULL, 16 * PG, PROT_READ, MAP_SHARED, o, 0);
	REQUIRE(a != MAP_FAILED && p != MAP_FAILED);
	CHECK_EQ(fl_madvise(e, a, 60 * PG, MADV_SEQUENTIAL), 0);
	for (int pg = 0; pg < 60; pg++)
		a[pg * PG] = 1; /* 60 of 64 pages: private, not reclaimable */
	CHECK_EQ(gstats(g).usage, 60 * PG);
	CHECK_EQ(h_mismatch(p, 8, 208, 0), -1); /* 16-page window: no room */
	CHECK_LE(gstats(g).usage, 64 * PG);
	CHECK_EQ(gstats(g).oom_events, 0);
	CHECK_EQ(fl_munmap(e, a, 60 * PG), 0);
	CHECK_EQ(fl_munmap(e, p, 16 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}
