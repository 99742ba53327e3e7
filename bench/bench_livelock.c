// SPDX-License-Identifier: MIT
/*
 * bench livelock: the scenario of change (a) in linux-fault-path.md.  An
 * object O; group A (a small max, OOM policy wait) write-faults a
 * MAP_PRIVATE mapping of O, one page after another, until it is stuck at
 * its limit (its private copies cannot be reclaimed); group B (unlimited)
 * read-faults the same pages of O through a MAP_SHARED mapping in a loop,
 * one word per page, MADV_RANDOM (one page per fault) and MADV_DONTNEED
 * between passes so that every read is a fault, timing each fault.  B runs
 * first with A idle, then while A is stuck; then A's max is raised and A
 * must complete.  If the engine held the shared page locked while A waits
 * for memory, B would stall on A's page: a watchdog notices B making no
 * progress, raises A's max so that the run can end, and fails it.
 */
#include "bench.h"
#include "../tools/cli_util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define LL_SEED	       0x6c6976656c6f636bULL /* the data file */
#define LL_A_SEED      0x6c6c2d41ULL	     /* A's private stores */
#define LL_PHASE_S     1.0		     /* B's loop, per phase */
#define LL_STUCK_S     10.0		     /* most A may take to get stuck */
#define LL_STALL_S     2.0  /* B without a completed fault: stalled */
#define LL_FINISH_S    10.0 /* most A may take to finish once raised */
#define LL_QUIET_S     0.2  /* A without progress at its limit: stuck */
#define LL_MAX_SAMPLES (1u << 22)
#define LL_ALARM_S     120 /* the whole scenario, whatever happens */

enum { PH_IDLE, PH_STUCK, NR_PH };

static const char *const ph_names[NR_PH] = {"a-idle", "a-stuck"};

struct ll_phase {
	uint64_t faults; /* B's completed faults in the phase */
	double seconds;
	double p50_us, p99_us, max_us;
};

struct ll_ctx {
	const struct bench_opts *o;
	size_t page;
	uint64_t size, a_max;
	size_t pages;
	fl_engine *engine;
	fl_group *a, *b;
	char *map_a, *map_b;
	uint32_t *lat; /* B's fault latencies in the phase, ns */

	atomic_int b_stop;
	atomic_int b_done;
	atomic_ulong b_faults; /* completed in the phase */
	atomic_ulong b_bad;    /* words read wrong */
	uint64_t b_total;      /* B's reads in every phase of the run */
	int b_error;	       /* fl_madvise failed */

	atomic_ulong a_pages; /* pages A has written */
	atomic_int a_done;
};

static double ns_now(void)
{
	return now_seconds() * 1e9;
}

/* The word of page p that A stamps and B checks. */
static uint64_t probe(const struct ll_ctx *c, size_t p)
{
	return p * c->page + (p * 64) % c->page;
}

/* Thread B: passes over every page of O, one timed fault per page. */
static void *b_thread(void *arg)
{
	struct ll_ctx *c = arg;
	uint64_t n = 0;

	while (!atomic_load(&c->b_stop)) {
		size_t p;

		for (p = 0; p < c->pages && !atomic_load(&c->b_stop); p++) {
			uint64_t off = probe(c, p);
			double t0 = ns_now();
			uint64_t got =
				*(const volatile uint64_t *)(c->map_b + off);
			double dt = ns_now() - t0;

			if (n < LL_MAX_SAMPLES)
				c->lat[n] =
					dt > 4e9 ? 4000000000u : (uint32_t)dt;
			n++;
			atomic_fetch_add(&c->b_faults, 1);
			if (got != pattern_word(LL_SEED, off / 8))
				atomic_fetch_add(&c->b_bad, 1);
		}
		/* Drop B's view (the page cache stays): every read of the
		 * next pass is a fault again. */
		if (fl_madvise(c->engine, c->map_b, c->size, MADV_DONTNEED) <
		    0) {
			c->b_error = errno;
			break;
		}
	}
	atomic_store(&c->b_done, 1);
	return NULL;
}

/* Thread A: a store to every page of its private mapping, in order. */
static void *a_thread(void *arg)
{
	struct ll_ctx *c = arg;
	size_t p;

	for (p = 0; p < c->pages; p++) {
		uint64_t off = probe(c, p);

		*(volatile uint64_t *)(c->map_a + off) =
			pattern_word(LL_A_SEED, off / 8);
		atomic_fetch_add(&c->a_pages, 1);
	}
	atomic_store(&c->a_done, 1);
	return NULL;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static int cmp_u32(const void *x, const void *y)
{
	uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;

	return a < b ? -1 : a > b;
}

static void quantiles(struct ll_ctx *c, uint64_t n, struct ll_phase *ph)
{
	if (n > LL_MAX_SAMPLES)
		n = LL_MAX_SAMPLES;
	if (n == 0)
		return;
	qsort(c->lat, n, sizeof(c->lat[0]), cmp_u32);
	ph->p50_us = c->lat[(n - 1) / 2] / 1000.0;
	ph->p99_us = c->lat[(n - 1) * 99 / 100] / 1000.0;
	ph->max_us = c->lat[n - 1] / 1000.0;
}

/*
 * Run B for LL_PHASE_S, watching it: B stalls if no fault completes for
 * LL_STALL_S.  On a stall, A's max is raised (the only way a broken engine
 * lets B go) and -1 returned after printing.  *stall_s gets B's longest
 * time without progress seen by the watcher.
 */
static int run_b(struct ll_ctx *c, int phase, struct ll_phase *ph,
		 double *stall_s)
{
	double t0, last_t, now;
	unsigned long last = 0, cur;
	pthread_t b;
	int ret = 0;

	atomic_store(&c->b_stop, 0);
	atomic_store(&c->b_done, 0);
	atomic_store(&c->b_faults, 0);
	c->b_error = 0;
	*stall_s = 0;
	errno = pthread_create(&b, NULL, b_thread, c);
	if (errno != 0) {
		cli_error("bench livelock: cannot start thread B: %s",
			  strerror(errno));
		return -1;
	}
	t0 = last_t = now_seconds();
	for (;;) {
		sleep_ms(2);
		now = now_seconds();
		cur = atomic_load(&c->b_faults);
		if (cur != last) {
			last = cur;
			last_t = now;
		} else if (now - last_t > *stall_s) {
			*stall_s = now - last_t;
		}
		if (atomic_load(&c->b_done))
			break;
		if (now - t0 >= LL_PHASE_S)
			break;
		if (now - last_t > LL_STALL_S) {
			cli_error("bench livelock: B STALLED: no fault "
				  "completed for %.1f s (%s, after %lu "
				  "faults); raising A's max to let it go",
				  now - last_t, ph_names[phase], cur);
			fl_group_set_max(c->a, FL_GROUP_UNLIMITED);
			ret = -1;
			break;
		}
	}
	atomic_store(&c->b_stop, 1);
	/* B ends after the fault it is in; a B that never comes back is
	 * left to the scenario's alarm. */
	pthread_join(b, NULL);
	ph->seconds = now_seconds() - t0;
	ph->faults = atomic_load(&c->b_faults);
	c->b_total += ph->faults;
	quantiles(c, ph->faults, ph);
	if (c->b_error) {
		cli_error("bench livelock: fl_madvise(MADV_DONTNEED) of B "
			  "failed: %s",
			  strerror(c->b_error));
		ret = -1;
	}
	if (atomic_load(&c->b_bad)) {
		cli_error("bench livelock: WRONG DATA: %lu words read by B",
			  atomic_load(&c->b_bad));
		ret = -1;
	}
	return ret;
}

/* Wait until A is stuck at its limit: an OOM event, or usage at max, and
 * no page written for LL_QUIET_S.  Returns 0, or -1 after printing. */
static int wait_stuck(struct ll_ctx *c, struct fl_group_stats *st)
{
	double t0 = now_seconds(), last_t = t0;
	unsigned long last = 0, cur;

	for (;;) {
		sleep_ms(5);
		if (fl_group_stats(c->a, st) < 0) {
			cli_error("bench livelock: fl_group_stats(A): %s",
				  strerror(errno));
			return -1;
		}
		cur = atomic_load(&c->a_pages);
		if (cur != last) {
			last = cur;
			last_t = now_seconds();
		}
		if (atomic_load(&c->a_done)) {
			cli_error("bench livelock: A wrote all %zu pages "
				  "without getting stuck (usage %llu, max "
				  "%llu): the limit was not enforced",
				  c->pages, (unsigned long long)st->usage,
				  (unsigned long long)st->max);
			return -1;
		}
		if ((st->oom_events > 0 || st->usage + c->page > st->max) &&
		    now_seconds() - last_t >= LL_QUIET_S)
			return 0;
		if (now_seconds() - t0 > LL_STUCK_S) {
			cli_error("bench livelock: A not stuck after %.0f s "
				  "(%lu pages written, usage %llu, max %llu, "
				  "oom events %llu)",
				  LL_STUCK_S, cur,
				  (unsigned long long)st->usage,
				  (unsigned long long)st->max,
				  (unsigned long long)st->oom_events);
			return -1;
		}
	}
}

/* Every page A wrote shows its store in A's view and not in B's. */
static int verify_views(struct ll_ctx *c)
{
	uint64_t bad_a = 0, bad_b = 0;
	size_t p;

	for (p = 0; p < c->pages; p++) {
		uint64_t off = probe(c, p);
		uint64_t other = p * c->page + (probe(c, p) + 8) % c->page;

		if (*(volatile uint64_t *)(c->map_a + off) !=
			    pattern_word(LL_A_SEED, off / 8) ||
		    *(volatile uint64_t *)(c->map_a + other) !=
			    pattern_word(LL_SEED, other / 8))
			bad_a++;
		if (*(volatile uint64_t *)(c->map_b + off) !=
		    pattern_word(LL_SEED, off / 8))
			bad_b++;
	}
	if (bad_a || bad_b) {
		cli_error("bench livelock: WRONG DATA: %llu pages of A's "
			  "private view, %llu of B's shared view",
			  (unsigned long long)bad_a, (unsigned long long)bad_b);
		return -1;
	}
	return 0;
}

static int setup(struct ll_ctx *c, const char *path)
{
	fl_object *obj;

	c->engine = bench_engine_create();
	if (c->engine == NULL)
		return -1;
	c->a = bench_group_create(c->engine, "A", c->a_max);
	c->b = fl_group_create(c->engine, NULL, "B");
	if (c->a == NULL || c->b == NULL) {
		if (c->b == NULL)
			cli_error("bench livelock: fl_group_create: %s",
				  strerror(errno));
		return -1;
	}
	if (fl_group_set_oom(c->a, FL_OOM_WAIT, NULL, NULL) < 0) {
		cli_error("bench livelock: fl_group_set_oom(A, wait): %s",
			  strerror(errno));
		return -1;
	}
	obj = fl_object_open(c->engine, path, O_RDONLY);
	if (obj == NULL) {
		cli_error("bench livelock: fl_object_open: %s",
			  strerror(errno));
		return -1;
	}
	c->map_b = fl_mmap_group(c->engine, c->b, NULL, c->size, PROT_READ,
				 MAP_SHARED, obj, 0);
	c->map_a = fl_mmap_group(c->engine, c->a, NULL, c->size,
				 PROT_READ | PROT_WRITE, MAP_PRIVATE, obj, 0);
	if (fl_object_close(obj) < 0 || c->map_a == MAP_FAILED ||
	    c->map_b == MAP_FAILED) {
		cli_error("bench livelock: fl_mmap_group: %s", strerror(errno));
		return -1;
	}
	if (fl_madvise(c->engine, c->map_b, c->size, MADV_RANDOM) < 0) {
		cli_error("bench livelock: fl_madvise(MADV_RANDOM): %s",
			  strerror(errno));
		return -1;
	}
	return 0;
}

/* Unmap both views: every group's usage must then be zero. */
static int teardown(struct ll_ctx *c)
{
	struct fl_group_stats sa, sb;
	int ret = 0;

	if ((c->map_a != MAP_FAILED && c->map_a != NULL &&
	     fl_munmap(c->engine, c->map_a, c->size) < 0) ||
	    (c->map_b != MAP_FAILED && c->map_b != NULL &&
	     fl_munmap(c->engine, c->map_b, c->size) < 0)) {
		cli_error("bench livelock: fl_munmap: %s", strerror(errno));
		ret = -1;
	}
	if (c->a && c->b && fl_group_stats(c->a, &sa) == 0 &&
	    fl_group_stats(c->b, &sb) == 0 && (sa.usage || sb.usage)) {
		cli_error("bench livelock: CHARGES LEFT after unmapping "
			  "everything: A %llu bytes, B %llu bytes",
			  (unsigned long long)sa.usage,
			  (unsigned long long)sb.usage);
		ret = -1;
	}
	if (fl_engine_destroy(c->engine) < 0) {
		cli_error("bench livelock: fl_engine_destroy failed: %s",
			  strerror(errno));
		ret = -1;
	}
	c->engine = NULL;
	return ret;
}

/* One run: B idle, A stuck, A released.  Returns 0, or -1 after printing;
 * -2 if A could not be brought back (the engine is left as it is). */
static int ll_run(struct ll_ctx *c, const char *path, struct ll_phase *ph,
		  double *stall_s)
{
	struct fl_group_stats st;
	struct fl_stats ms;
	unsigned long a_at_stuck;
	double t0, stall_idle;
	pthread_t a;
	int ret = -1, started = 0;

	memset(ph, 0, NR_PH * sizeof(*ph));
	atomic_store(&c->a_pages, 0);
	atomic_store(&c->a_done, 0);
	atomic_store(&c->b_bad, 0);
	c->map_a = c->map_b = NULL;
	c->a = c->b = NULL;
	c->b_total = 0;
	if (setup(c, path) < 0)
		goto out;
	/* Bring O into the page cache (charged to B), unmeasured. */
	if (run_b(c, PH_IDLE, &ph[PH_IDLE], &stall_idle) < 0)
		goto out;
	if (run_b(c, PH_IDLE, &ph[PH_IDLE], &stall_idle) < 0)
		goto out;
	errno = pthread_create(&a, NULL, a_thread, c);
	if (errno != 0) {
		cli_error("bench livelock: cannot start thread A: %s",
			  strerror(errno));
		goto out;
	}
	started = 1;
	if (wait_stuck(c, &st) < 0)
		goto release;
	a_at_stuck = atomic_load(&c->a_pages);
	if (run_b(c, PH_STUCK, &ph[PH_STUCK], stall_s) < 0)
		goto release;
	if (fl_group_stats(c->a, &st) == 0 && st.usage > st.max) {
		cli_error("bench livelock: GROUP LIMIT EXCEEDED: A's usage "
			  "%llu, max %llu",
			  (unsigned long long)st.usage,
			  (unsigned long long)st.max);
		goto release;
	}
	if (atomic_load(&c->a_pages) != a_at_stuck)
		printf("  # note: A moved while stuck (%lu -> %lu pages)\n",
		       a_at_stuck, atomic_load(&c->a_pages));
	ret = 0;
	printf("  # A stuck at %lu of %zu pages: usage %llu, max %llu, "
	       "oom events %llu, waited %.3f s\n",
	       a_at_stuck, c->pages, (unsigned long long)st.usage,
	       (unsigned long long)st.max, (unsigned long long)st.oom_events,
	       (double)st.wait_ns / 1e9);
release:
	if (fl_group_set_max(c->a, FL_GROUP_UNLIMITED) < 0) {
		cli_error("bench livelock: raising A's max failed: %s",
			  strerror(errno));
		ret = -1;
	}
	t0 = now_seconds();
	while (!atomic_load(&c->a_done) && now_seconds() - t0 < LL_FINISH_S)
		sleep_ms(2);
	if (!atomic_load(&c->a_done)) {
		cli_error("bench livelock: A DID NOT COMPLETE within %.0f s "
			  "of its max being raised (%lu of %zu pages)",
			  LL_FINISH_S, atomic_load(&c->a_pages), c->pages);
		pthread_detach(a);
		return -2;
	}
	pthread_join(a, NULL);
	started = 0;
	if (ret == 0) {
		double done_s = now_seconds() - t0;

		fl_group_stats(c->a, &st);
		printf("  # A completed %.3f s after its max was raised (A's "
		       "faults waited %.3f s in all)\n",
		       done_s, (double)st.wait_ns / 1e9);
		ret = verify_views(c);
	}
	if (ret == 0 && fl_mapping_stats(c->engine, c->map_b, &ms) == 0)
		printf("  # B: %llu timed reads, %llu faults on its mapping "
		       "(every read a fault)\n",
		       (unsigned long long)c->b_total,
		       (unsigned long long)(ms.minor_faults + ms.major_faults));
out:
	if (started)
		pthread_join(a, NULL);
	if (c->engine && teardown(c) < 0)
		ret = -1;
	return ret;
}

static void print_row(const char *name, const struct ll_phase *ph)
{
	printf("  %-12s %10llu %10.3f %10.1f %10.2f %10.2f %10.1f\n", name,
	       (unsigned long long)ph->faults, ph->seconds,
	       ph->seconds > 0 ? (double)ph->faults / ph->seconds : 0.0,
	       ph->p50_us, ph->p99_us, ph->max_us);
}

int bench_livelock(const struct bench_opts *o)
{
	struct ll_ctx *c = calloc(1, sizeof(*c));
	struct ll_phase ph[NR_PH], worst[NR_PH];
	double stall = 0, worst_stall = 0, ratio, worst_ratio = -1;
	unsigned prev_alarm, run;
	struct tmpdata data;
	char buf[32], lim[32];
	int ret = 0, r = 0;

	if (c == NULL) {
		cli_error("bench livelock: out of memory");
		return -1;
	}
	c->o = o;
	c->page = o->page;
	c->size = o->size ? o->size : 16ULL << 20;
	c->pages = c->size / o->page;
	c->a_max = c->size / 16 / o->page * o->page;
	if (c->a_max < 16 * o->page)
		c->a_max = 16 * o->page;
	bench_title(o, "livelock",
		    "B read-faults pages of O while A, at its limit, waits "
		    "for memory to copy them");
	printf("  size %s (O); A: MAP_PRIVATE stores, max %s, OOM policy "
	       "wait; B: MAP_SHARED reads, unlimited, MADV_RANDOM, "
	       "MADV_DONTNEED between passes; %.0f s per phase\n",
	       format_size(c->size, buf, sizeof(buf)),
	       format_size(c->a_max, lim, sizeof(lim)), LL_PHASE_S);
	c->lat = malloc(LL_MAX_SAMPLES * sizeof(c->lat[0]));
	if (c->lat == NULL) {
		cli_error("bench livelock: out of memory");
		free(c);
		return -1;
	}
	if (tmpdata_create(&data, o->dir, "bench", c->size, LL_SEED) < 0) {
		free(c->lat);
		free(c);
		return -1;
	}
	/* A broken engine must fail, not hang. */
	prev_alarm = alarm(LL_ALARM_S);
	memset(worst, 0, sizeof(worst));
	for (run = 0; run < o->runs; run++) {
		r = ll_run(c, data.path, ph, &stall);
		if (r < 0) {
			ret = -1;
			if (r == -2)
				break; /* A is stuck in an engine we left */
			continue;
		}
		ratio = ph[PH_STUCK].p99_us > 0
				? ph[PH_IDLE].p99_us / ph[PH_STUCK].p99_us
				: 0;
		if (worst_ratio < 0 || ratio < worst_ratio) {
			worst_ratio = ratio;
			memcpy(worst, ph, sizeof(worst));
			worst_stall = stall;
		}
	}
	tmpdata_remove(&data);
	/* A thread left stuck in the engine still uses c: keep it. */
	if (r != -2) {
		free(c->lat);
		free(c);
	}
	alarm(prev_alarm);
	if (ret < 0 || worst_ratio < 0) {
		printf("  livelock: FAILED (see above)\n");
		return -1;
	}
	printf("  (the run with the lowest ratio)\n");
	printf("  %-12s %10s %10s %10s %10s %10s %10s\n", "config", "B-faults",
	       "seconds", "faults/s", "p50-us", "p99-us", "max-us");
	print_row(ph_names[PH_IDLE], &worst[PH_IDLE]);
	print_row(ph_names[PH_STUCK], &worst[PH_STUCK]);
	printf("  # B's longest time without a completed fault while A was "
	       "stuck: %.3f s\n",
	       worst_stall);
	printf("ratio: livelock/idle=%.3f\n", worst_ratio);
	printf("figure: livelock-b-faults-during=%llu\n",
	       (unsigned long long)worst[PH_STUCK].faults);
	printf("  # targets: B's p99 while A is stuck within 2x of A idle: "
	       "%s; B never stalls: %s\n",
	       worst_ratio >= 0.5 ? "met" : "MISSED",
	       worst_stall < 0.1 ? "met" : "MISSED");
	return 0;
}
