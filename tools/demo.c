// SPDX-License-Identifier: MIT
/*
 * faultline demo: make a data file with a seeded pattern, map it through
 * faultline twice shared and once private (and an anonymous mapping beside
 * it), read and write it from several threads, and check every byte: that
 * shared stores are seen at once through the other shared mapping, that
 * private stores are seen by nobody else, and that msync puts exactly the
 * shared stores into the file.
 *
 * Every expected value is computed from the page index and the stage the
 * demo has reached, so a check never needs a second copy of the data.
 *
 * With --limit, every mapping is in a memory group of that size, with a
 * swap file (beside the data file, removed at once: only the engine holds
 * it), and the file is larger than the limit, so that the page cache is
 * reclaimed (dirty shared pages written back first) while the checks run.
 * Private copies (a quarter of the file's pages, at least half the limit)
 * and the anonymous mapping (twice the limit) are larger than the limit
 * together: they are swapped out and in while the checks run.
 */
#include "demo.h"
#include "store_url.h"
#include "cli_util.h"

#include <faultline.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define DEMO_SEED   0x5eed0001ULL /* the data file */
#define SHARED_SEED 0x5eed0002ULL /* stamps written through shared maps */
#define PRIVATE_SEED                                                           \
	0x5eed0003ULL		  /* stamps written through the private map    \
				   */
#define ANON_SEED   0x5eed0004ULL /* the anonymous mapping */
#define STAMP_BYTES 64		  /* one cache line per stamp */
#define MAX_REPORTS 10		  /* mismatches printed in full */

enum view { VIEW_SHARED, VIEW_PRIVATE };

/* How far the demo has gone: what each view must show depends on it. */
enum stage {
	STAGE_ORIGINAL,	   /* nothing written yet */
	STAGE_SHARED,	   /* shared stamps on pages 1 and 4 (mod 8) */
	STAGE_PRIVATE,	   /* private stamps on pages 2 and 4 (mod 8) */
	STAGE_SHARED_LATE, /* shared stamps on pages 2 (mod 8), after COW */
};

enum phase {
	PHASE_READ,
	PHASE_SHARED_WRITE,
	PHASE_PRIVATE_WRITE,
	PHASE_SHARED_LATE,
	PHASE_VERIFY,
	PHASE_ANON_WRITE,
	PHASE_ANON_VERIFY,
	NR_PHASES
};

static const char *const phase_names[NR_PHASES] = {
	"read and verify every byte through shared map A",
	"shared stores through A, seen at once through B",
	"private stores through P, not seen through A or B",
	"shared stores through B after P's copies, not seen by P",
	"verify every byte through A, B and P",
	"anonymous mapping: first-touch stores",
	"anonymous mapping: verify (another thread's pages)",
};

struct demo {
	unsigned threads;
	uint64_t size;
	uint64_t limit; /* --limit: the group's max; 0: no group */
	const char *parent;
	size_t page;
	size_t pages;
	size_t private_end; /* pages below it get private copies */
	size_t anon_pages;  /* of the anonymous mapping */
	fl_group *group;    /* NULL: the root */
	fl_swap *swap;	    /* --limit: the group's swap file */
	struct tmpdata data;
	const char *store_url; /* --store: the object is there, not a file */
	fl_engine *engine;
	fl_object *object;
	char *map_a;  /* MAP_SHARED */
	char *map_b;  /* MAP_SHARED, same object */
	char *map_p;  /* MAP_PRIVATE, same object */
	char *map_an; /* MAP_ANONYMOUS | MAP_PRIVATE */
	pthread_barrier_t barrier;
	pthread_mutex_t report_lock;
	unsigned reported;
	atomic_ulong failures[NR_PHASES];
	double phase_end[NR_PHASES];
	double start;
};

struct worker {
	struct demo *demo;
	unsigned id;
	size_t first, end; /* page range this thread writes and checks */
	size_t anon_first, anon_end; /* the same, anonymous mapping */
	pthread_t thread;
};

/* ------------------------------------------------------------------------
 * What every byte must be
 * ------------------------------------------------------------------------ */

/*
 * Which pages each step writes, by page index mod 8:
 *   1, 4  a shared stamp through A;
 *   2, 4  then a private stamp through P (page 4's copy holds A's stamp);
 *   2     then a shared stamp through B, which P's copy must not see.
 * Every other page keeps the file's pattern in every view.
 */
static int shared_early_page(size_t p)
{
	return p % 8 == 1 || p % 8 == 4;
}

static int private_page(const struct demo *d, size_t p)
{
	return p < d->private_end && (p % 8 == 2 || p % 8 == 4);
}

/* Only where P has its copy: elsewhere P sees the page cache. */
static int shared_late_page(const struct demo *d, size_t p)
{
	return p < d->private_end && p % 8 == 2;
}

/* Anonymous pages 3 (mod 4) are only read: they must read as zeros. */
static int anon_written_page(size_t p)
{
	return p % 4 != 3;
}

/* Stamps move around within the page; shared in the first half, private in
 * the second, so one never hides the other. */
static size_t shared_stamp(const struct demo *d, size_t p)
{
	return (p % (d->page / 2 / STAMP_BYTES)) * STAMP_BYTES;
}

static size_t private_stamp(const struct demo *d, size_t p)
{
	return d->page / 2 + shared_stamp(d, p);
}

static int in_stamp(size_t in_page, size_t stamp)
{
	return in_page >= stamp && in_page < stamp + STAMP_BYTES;
}

/* The word at byte offset 8 * w of the object, as view sees it at stage. */
static uint64_t expected_word(const struct demo *d, enum view view,
			      enum stage stage, uint64_t w)
{
	size_t p = (size_t)(w * 8 / d->page);
	size_t in = (size_t)(w * 8 % d->page);
	int shared = (stage >= STAGE_SHARED && shared_early_page(p)) ||
		     (stage >= STAGE_SHARED_LATE && shared_late_page(d, p) &&
		      view == VIEW_SHARED);

	if (view == VIEW_PRIVATE && stage >= STAGE_PRIVATE &&
	    private_page(d, p) && in_stamp(in, private_stamp(d, p)))
		return pattern_word(PRIVATE_SEED, w);
	if (shared && in_stamp(in, shared_stamp(d, p)))
		return pattern_word(SHARED_SEED, w);
	return pattern_word(DEMO_SEED, w);
}

static uint64_t expected_anon_word(const struct demo *d, uint64_t w)
{
	size_t p = (size_t)(w * 8 / d->page);

	return anon_written_page(p) ? pattern_word(ANON_SEED, w) : 0;
}

/* ------------------------------------------------------------------------
 * Checking
 * ------------------------------------------------------------------------ */

static void report(struct demo *d, enum phase ph, const char *where,
		   uint64_t off, uint64_t expected, uint64_t got)
{
	atomic_fetch_add(&d->failures[ph], 1);
	pthread_mutex_lock(&d->report_lock);
	if (d->reported++ < MAX_REPORTS)
		fprintf(stderr,
			"demo: MISMATCH in %s at byte offset %#llx (page %llu):"
			" expected %016llx, got %016llx (step: %s)\n",
			where, (unsigned long long)off,
			(unsigned long long)(off / d->page),
			(unsigned long long)expected, (unsigned long long)got,
			phase_names[ph]);
	pthread_mutex_unlock(&d->report_lock);
}

/* Check bytes [from, to) of page p of base against the expected view. */
static int check_range(struct demo *d, enum phase ph, const char *where,
		       const char *base, enum view view, enum stage stage,
		       size_t p, size_t from, size_t to)
{
	uint64_t off;

	for (off = p * d->page + from; off < p * d->page + to; off += 8) {
		uint64_t got = *(const volatile uint64_t *)(base + off);
		uint64_t want = expected_word(d, view, stage, off / 8);

		if (got != want) {
			report(d, ph, where, off, want, got);
			return -1; /* one report per page is enough */
		}
	}
	return 0;
}

static int check_page(struct demo *d, enum phase ph, const char *where,
		      const char *base, enum view view, enum stage stage,
		      size_t p)
{
	return check_range(d, ph, where, base, view, stage, p, 0, d->page);
}

static void write_stamp(struct demo *d, char *base, size_t p, size_t stamp,
			uint64_t seed)
{
	uint64_t off = p * d->page + stamp;
	size_t i;

	for (i = 0; i < STAMP_BYTES; i += 8)
		*(volatile uint64_t *)(base + off + i) =
			pattern_word(seed, (off + i) / 8);
}

/* ------------------------------------------------------------------------
 * The phases, each run by every worker on its own pages
 * ------------------------------------------------------------------------ */

static void phase_read(struct worker *w)
{
	struct demo *d = w->demo;
	size_t p;

	for (p = w->first; p < w->end; p++)
		check_page(d, PHASE_READ, "shared map A", d->map_a, VIEW_SHARED,
			   STAGE_ORIGINAL, p);
}

static void phase_shared_write(struct worker *w)
{
	struct demo *d = w->demo;
	size_t p, s;

	for (p = w->first; p < w->end; p++) {
		if (!shared_early_page(p))
			continue;
		s = shared_stamp(d, p);
		write_stamp(d, d->map_a, p, s, SHARED_SEED);
		/* Coherence: the other shared mapping sees it at once. */
		check_range(d, PHASE_SHARED_WRITE, "shared map B", d->map_b,
			    VIEW_SHARED, STAGE_SHARED, p, s, s + STAMP_BYTES);
	}
}

static void phase_private_write(struct worker *w)
{
	struct demo *d = w->demo;
	enum phase ph = PHASE_PRIVATE_WRITE;
	size_t p, s;

	for (p = w->first; p < w->end; p++) {
		if (!private_page(d, p))
			continue;
		s = private_stamp(d, p);
		write_stamp(d, d->map_p, p, s, PRIVATE_SEED);
		/* Isolation: the private copy has it, nobody else does. */
		check_page(d, ph, "private map P", d->map_p, VIEW_PRIVATE,
			   STAGE_PRIVATE, p);
		check_page(d, ph, "shared map A", d->map_a, VIEW_SHARED,
			   STAGE_PRIVATE, p);
		check_page(d, ph, "shared map B", d->map_b, VIEW_SHARED,
			   STAGE_PRIVATE, p);
	}
}

static void phase_shared_late(struct worker *w)
{
	struct demo *d = w->demo;
	enum phase ph = PHASE_SHARED_LATE;
	size_t p;

	for (p = w->first; p < w->end; p++) {
		if (!shared_late_page(d, p))
			continue;
		write_stamp(d, d->map_b, p, shared_stamp(d, p), SHARED_SEED);
		/* A sees B's store; P's copy was made before it. */
		check_page(d, ph, "shared map A", d->map_a, VIEW_SHARED,
			   STAGE_SHARED_LATE, p);
		check_page(d, ph, "private map P", d->map_p, VIEW_PRIVATE,
			   STAGE_SHARED_LATE, p);
	}
}

static void phase_verify(struct worker *w)
{
	struct demo *d = w->demo;
	enum phase ph = PHASE_VERIFY;
	enum stage st = STAGE_SHARED_LATE;
	size_t p;

	for (p = w->first; p < w->end; p++) {
		check_page(d, ph, "shared map A", d->map_a, VIEW_SHARED, st, p);
		check_page(d, ph, "shared map B", d->map_b, VIEW_SHARED, st, p);
		check_page(d, ph, "private map P", d->map_p, VIEW_PRIVATE, st,
			   p);
	}
}

static void phase_anon_write(struct worker *w)
{
	struct demo *d = w->demo;
	size_t p;

	for (p = w->anon_first; p < w->anon_end; p++)
		if (anon_written_page(p))
			pattern_fill(ANON_SEED, d->map_an + p * d->page,
				     d->page, p * d->page);
}

/* Check the pages of the worker after this one: stores made by another
 * thread must be visible, untouched pages must read as zeros. */
static void phase_anon_verify(struct worker *w, const struct worker *other)
{
	struct demo *d = w->demo;
	uint64_t off, end = other->anon_end * d->page;

	for (off = other->anon_first * d->page; off < end; off += 8) {
		uint64_t got = *(const volatile uint64_t *)(d->map_an + off);
		uint64_t want = expected_anon_word(d, off / 8);

		if (got != want) {
			report(d, PHASE_ANON_VERIFY, "anonymous map", off, want,
			       got);
			off = (off / d->page + 1) * d->page - 8;
		}
	}
}

/* Wait for every worker; the last one in records when the phase ended. */
static void phase_done(struct demo *d, enum phase ph)
{
	if (pthread_barrier_wait(&d->barrier) == PTHREAD_BARRIER_SERIAL_THREAD)
		d->phase_end[ph] = now_seconds();
	/* Everyone must see phase_end before the next phase starts timing. */
	pthread_barrier_wait(&d->barrier);
}

static void *demo_worker(void *arg)
{
	struct worker *w = arg;
	struct demo *d = w->demo;
	const struct worker *next = w - w->id + (w->id + 1) % d->threads;

	phase_read(w);
	phase_done(d, PHASE_READ);
	phase_shared_write(w);
	phase_done(d, PHASE_SHARED_WRITE);
	phase_private_write(w);
	phase_done(d, PHASE_PRIVATE_WRITE);
	phase_shared_late(w);
	phase_done(d, PHASE_SHARED_LATE);
	phase_verify(w);
	phase_done(d, PHASE_VERIFY);
	phase_anon_write(w);
	phase_done(d, PHASE_ANON_WRITE);
	phase_anon_verify(w, next);
	phase_done(d, PHASE_ANON_VERIFY);
	return NULL;
}

/* ------------------------------------------------------------------------
 * Setting up, running, tearing down
 * ------------------------------------------------------------------------ */

static int run_workers(struct demo *d)
{
	struct worker *ws = calloc(d->threads, sizeof(*ws));
	unsigned i;

	if (ws == NULL)
		return -1;
	pthread_barrier_init(&d->barrier, NULL, d->threads);
	d->start = now_seconds();
	for (i = 0; i < d->threads; i++) {
		ws[i].demo = d;
		ws[i].id = i;
		ws[i].first = d->pages * i / d->threads;
		ws[i].end = d->pages * (i + 1) / d->threads;
		ws[i].anon_first = d->anon_pages * i / d->threads;
		ws[i].anon_end = d->anon_pages * (i + 1) / d->threads;
		errno = pthread_create(&ws[i].thread, NULL, demo_worker,
				       &ws[i]);
		if (errno != 0) {
			/* Started workers wait at a barrier that will never
			 * open: clean up and leave at once. */
			cli_error("demo: cannot start a thread: %s",
				  strerror(errno));
			tmpdata_remove(&d->data);
			_exit(1);
		}
	}
	for (i = 0; i < d->threads; i++)
		pthread_join(ws[i].thread, NULL);
	pthread_barrier_destroy(&d->barrier);
	free(ws);
	return 0;
}

static void *map_or_complain(struct demo *d, const char *name, int flags,
			     fl_object *object, uint64_t size)
{
	void *p = fl_mmap_group(d->engine, d->group, NULL, size,
				PROT_READ | PROT_WRITE, flags, object, 0);

	if (p == MAP_FAILED) {
		cli_error("demo: fl_mmap of %s failed: %s", name,
			  strerror(errno));
		return NULL;
	}
	return p;
}

/*
 * The swap file of --limit, beside the data file, sized for every private
 * and anonymous page, and removed at once (the engine keeps it open).
 */
static int demo_swap(struct demo *d)
{
	char path[4096];
	uint64_t bytes = (uint64_t)(d->pages + d->anon_pages) * d->page;

	if (snprintf(path, sizeof(path), "%.4000s.swap", d->data.path) < 0)
		return -1;
	d->swap = fl_swap_file_create(d->engine, path, bytes);
	if (d->swap == NULL) {
		cli_error("demo: fl_swap_file_create %s failed: %s", path,
			  strerror(errno));
		return -1;
	}
	unlink(path);
	if (fl_group_set_swap(d->group, d->swap) < 0) {
		cli_error("demo: fl_group_set_swap failed: %s",
			  strerror(errno));
		return -1;
	}
	return 0;
}

/* The group of --limit: max the limit, policy fail (a fault that cannot
 * get memory gets SIGBUS, which ends the demo as FAILED). */
static int demo_group(struct demo *d)
{
	d->group = fl_group_create(d->engine, NULL, "demo");
	if (d->group == NULL) {
		cli_error("demo: fl_group_create failed: %s", strerror(errno));
		return -1;
	}
	if (fl_group_set_max(d->group, d->limit) < 0) {
		cli_error("demo: fl_group_set_max failed: %s", strerror(errno));
		return -1;
	}
	return demo_swap(d);
}

/* The data file, or the object at --store's URL, as an object. */
static fl_object *demo_object_open(struct demo *d)
{
	struct fl_store *s;
	fl_object *o;

	if (!d->store_url) {
		o = fl_object_open(d->engine, d->data.path, O_RDWR);
		if (!o)
			cli_error("demo: fl_object_open %s failed: %s",
				  d->data.path, strerror(errno));
		return o;
	}
	s = fl_store_redis_open(d->store_url, NULL);
	o = s ? fl_object_create(d->engine, s, O_RDWR) : NULL;
	if (!o) {
		cli_error("demo: cannot open %s: %s", d->store_url,
			  strerror(errno));
		if (s)
			s->ops->destroy(s);
	}
	return o;
}

static int demo_map(struct demo *d)
{
	struct fl_config config;

	fl_config_init(&config);
	d->engine = fl_engine_create(&config);
	if (d->engine == NULL) {
		cli_engine_error("demo", errno);
		return -1;
	}
	d->object = demo_object_open(d);
	if (d->object == NULL)
		return -1;
	if (d->limit && demo_group(d) < 0)
		return -1;
	d->map_a = map_or_complain(d, "shared map A", MAP_SHARED, d->object,
				   d->size);
	d->map_b = map_or_complain(d, "shared map B", MAP_SHARED, d->object,
				   d->size);
	d->map_p = map_or_complain(d, "private map P", MAP_PRIVATE, d->object,
				   d->size);
	d->map_an =
		map_or_complain(d, "anonymous map", MAP_PRIVATE | MAP_ANONYMOUS,
				NULL, (uint64_t)d->anon_pages * d->page);
	if (!d->map_a || !d->map_b || !d->map_p || !d->map_an)
		return -1;
	return 0;
}

/* The data's name: the file's path or the store's URL. */
static const char *demo_data_name(const struct demo *d)
{
	return d->store_url ? d->store_url : d->data.path;
}

/* Read the file with pread(2) (or the store through a store of its
 * own): it must hold exactly the shared stores.
 * Returns the number of wrong pages (1 if the file cannot be read). */
static uint64_t verify_file(struct demo *d, const char *when)
{
	const size_t chunk = 1 << 20;
	uint64_t *buf = malloc(chunk);
	struct fl_store *st = NULL;
	int fd = -1;
	uint64_t off, bad = 0;

	/* A store is read through a store of its own: another client. */
	if (d->store_url)
		st = fl_store_redis_open(d->store_url, NULL);
	else
		fd = open(d->data.path, O_RDONLY);
	if (buf == NULL || (fd < 0 && !st)) {
		cli_error("demo: cannot read %s: %s", demo_data_name(d),
			  strerror(errno));
		free(buf);
		if (fd >= 0)
			close(fd);
		return 1;
	}
	for (off = 0; off < d->size; off += chunk) {
		size_t n = d->size - off < chunk ? d->size - off : chunk;
		size_t i;

		if ((st ? st->ops->read(st, buf, n, off)
			: pread(fd, buf, n, (off_t)off)) != (ssize_t)n) {
			cli_error("demo: short read of %s", demo_data_name(d));
			bad++;
			break;
		}
		for (i = 0; i < n / 8; i++) {
			uint64_t w = off / 8 + i;
			uint64_t want = expected_word(d, VIEW_SHARED,
						      STAGE_SHARED_LATE, w);

			if (buf[i] == want)
				continue;
			if (bad++ < MAX_REPORTS)
				fprintf(stderr,
					"demo: MISMATCH in the data (%s) at "
					"byte offset %#llx (page %llu): "
					"expected %016llx, got %016llx\n",
					when, (unsigned long long)(w * 8),
					(unsigned long long)(w * 8 / d->page),
					(unsigned long long)want,
					(unsigned long long)buf[i]);
			/* One report per page: skip to the next one. */
			i |= d->page / 8 - 1;
		}
	}
	if (st)
		st->ops->destroy(st);
	else
		close(fd);
	free(buf);
	return bad;
}

static void print_mapping_row(FILE *f, struct demo *d, const char *name,
			      void *addr)
{
	struct fl_stats s;

	if (fl_mapping_stats(d->engine, addr, &s) < 0) {
		fprintf(f, "  %-10s (no statistics: %s)\n", name,
			strerror(errno));
		return;
	}
	fprintf(f,
		"  %-10s %8llu %8llu %8llu %8llu %8llu %8llu %8llu %8llu %8llu "
		"%6llu\n",
		name, (unsigned long long)s.minor_faults,
		(unsigned long long)s.major_faults,
		(unsigned long long)s.zero_fills,
		(unsigned long long)s.cow_copies,
		(unsigned long long)s.wp_faults,
		(unsigned long long)s.pages_read,
		(unsigned long long)s.pages_written,
		(unsigned long long)s.pages_mapped,
		(unsigned long long)s.dirty_pages,
		(unsigned long long)s.errors);
}

/* A quantile is the upper end of its power-of-two bucket, which can lie
 * above the largest time recorded: the true quantile is at most both. */
static double lock_us(uint64_t q_ns, uint64_t max_ns)
{
	return (q_ns < max_ns ? q_ns : max_ns) / 1000.0;
}

static void print_lock_row(FILE *f, const char *what, uint64_t count,
			   uint64_t p50, uint64_t p99, uint64_t max)
{
	fprintf(f, "  %-16s %10llu %10.1f %10.1f %10.1f\n", what,
		(unsigned long long)count, lock_us(p50, max), lock_us(p99, max),
		max / 1000.0);
}

/* How long faults held the map lock, and map/unmap waited for it. */
static void print_lock_stats(FILE *f, struct demo *d)
{
	struct fl_lock_stats l;

	fprintf(f, "\nmap-lock statistics (us; quantiles are within a "
		   "factor of two):\n");
	if (fl_engine_lock_stats(d->engine, &l) < 0) {
		fprintf(f, "  (unavailable: %s)\n", strerror(errno));
		return;
	}
	fprintf(f, "  %-16s %10s %10s %10s %10s\n", "", "count", "p50", "p99",
		"max");
	print_lock_row(f, "fault hold", l.fault_holds, l.fault_hold_p50_ns,
		       l.fault_hold_p99_ns, l.fault_hold_max_ns);
	print_lock_row(f, "map/unmap wait", l.map_waits, l.map_wait_p50_ns,
		       l.map_wait_p99_ns, l.map_wait_max_ns);
}

static void print_group_stats(FILE *f, struct demo *d)
{
	struct fl_group_stats g;
	char u[32], p[32], m[32];

	if (d->group == NULL)
		return;
	fprintf(f, "\nmemory group '%s' (--limit):\n", fl_group_name(d->group));
	if (fl_group_stats(d->group, &g) < 0) {
		fprintf(f, "  (unavailable: %s)\n", strerror(errno));
		return;
	}
	fprintf(f, "  usage %s, peak %s, max %s\n",
		format_size(g.usage, u, sizeof(u)),
		format_size(g.peak, p, sizeof(p)),
		format_size(g.max, m, sizeof(m)));
	fprintf(f,
		"  cache_pages %llu private_pages %llu\n"
		"  faults %llu (minor %llu, major %llu)\n"
		"  pages_reclaimed %llu pages_written_back %llu\n"
		"  oom_events %llu wait %.3f s\n"
		"  swap: usage %llu pages, swap_outs %llu (and %llu clean), "
		"swap_ins %llu\n",
		(unsigned long long)g.cache_pages,
		(unsigned long long)g.private_pages,
		(unsigned long long)(g.minor_faults + g.major_faults),
		(unsigned long long)g.minor_faults,
		(unsigned long long)g.major_faults,
		(unsigned long long)g.pages_reclaimed,
		(unsigned long long)g.pages_written_back,
		(unsigned long long)g.oom_events, (double)g.wait_ns / 1e9,
		(unsigned long long)(g.swap_usage / d->page),
		(unsigned long long)g.swap_outs,
		(unsigned long long)g.swap_outs_clean,
		(unsigned long long)g.swap_ins);
}

/* With --limit: usage and peak within max.  Returns 0 or -1 (printed). */
static int check_group(struct demo *d)
{
	struct fl_group_stats g;

	if (d->group == NULL)
		return 0;
	if (fl_group_stats(d->group, &g) < 0) {
		cli_error("demo: fl_group_stats failed: %s", strerror(errno));
		return -1;
	}
	if (g.usage > g.max || g.peak > g.max) {
		cli_error("demo: GROUP LIMIT EXCEEDED: usage %llu, peak %llu, "
			  "max %llu",
			  (unsigned long long)g.usage,
			  (unsigned long long)g.peak,
			  (unsigned long long)g.max);
		return -1;
	}
	if (g.pages_reclaimed == 0)
		printf("  (note: the group reclaimed nothing)\n");
	return 0;
}

static void print_stats(FILE *f, struct demo *d)
{
	struct fl_stats s;

	fprintf(f, "\nper-mapping statistics:\n");
	fprintf(f, "  %-10s %8s %8s %8s %8s %8s %8s %8s %8s %8s %6s\n",
		"mapping", "minor", "major", "zerofill", "cow", "wp", "read",
		"written", "mapped", "dirty", "errors");
	print_mapping_row(f, d, "shared-A", d->map_a);
	print_mapping_row(f, d, "shared-B", d->map_b);
	print_mapping_row(f, d, "private-P", d->map_p);
	print_mapping_row(f, d, "anonymous", d->map_an);
	fprintf(f, "\nengine statistics:\n");
	if (fl_engine_stats(d->engine, &s) == 0)
		fl_stats_print(f, "  ", &s);
	else
		fprintf(f, "  (unavailable: %s)\n", strerror(errno));
	print_lock_stats(f, d);
	print_group_stats(f, d);
}

/*
 * The statistics as they are before teardown, kept as text so they can be
 * printed after the last check: a FILE in memory, read back by the caller
 * (NULL if out of memory).
 */
static char *stats_snapshot(struct demo *d)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		return NULL;
	print_stats(f, d);
	fclose(f);
	return text;
}

static unsigned long total_failures(struct demo *d)
{
	unsigned long n = 0;
	int i;

	for (i = 0; i < NR_PHASES; i++)
		n += atomic_load(&d->failures[i]);
	return n;
}

/* One line of the demo's report: what, ok or FAILED, how long it took. */
static void step_line(const char *what, uint64_t bad, double seconds)
{
	printf("  %-56s %s", what, bad ? "FAILED" : "ok");
	if (bad)
		printf(" (%llu pages wrong)", (unsigned long long)bad);
	printf("  %.3f s\n", seconds);
}

static void print_phases(struct demo *d)
{
	double t = d->start;
	int i;

	for (i = 0; i < NR_PHASES; i++) {
		step_line(phase_names[i], atomic_load(&d->failures[i]),
			  d->phase_end[i] - t);
		t = d->phase_end[i];
	}
}

/* Unmap, close and destroy; every step is checked, none is skipped. */
static int demo_teardown(struct demo *d)
{
	void *maps[] = {d->map_a, d->map_b, d->map_p, d->map_an};
	uint64_t sizes[] = {d->size, d->size, d->size,
			    (uint64_t)d->anon_pages * d->page};
	int ret = 0;
	size_t i;

	for (i = 0; i < 4; i++) {
		if (maps[i] && fl_munmap(d->engine, maps[i], sizes[i]) < 0) {
			cli_error("demo: fl_munmap failed: %s",
				  strerror(errno));
			ret = -1;
		}
	}
	if (d->object && fl_object_close(d->object) < 0) {
		cli_error("demo: fl_object_close failed: %s", strerror(errno));
		ret = -1;
	}
	if (d->engine && fl_engine_destroy(d->engine) < 0) {
		cli_error("demo: fl_engine_destroy failed: %s",
			  strerror(errno));
		ret = -1;
	}
	d->engine = NULL;
	return ret;
}

/* After the threads: msync, check the file, tear down, check it again. */
static int demo_finish(struct demo *d)
{
	double t = now_seconds();
	uint64_t bad;
	char *stats;
	int ok = 1;

	if (fl_msync(d->engine, d->map_a, d->size, MS_SYNC) < 0) {
		cli_error("demo: fl_msync failed: %s", strerror(errno));
		ok = 0;
	}
	step_line("fl_msync of shared map A", !ok, now_seconds() - t);
	t = now_seconds();
	bad = verify_file(d, "after fl_msync");
	step_line(d->store_url ? "read of the store by a second client: "
				 "exactly the shared stores"
			       : "pread of the file: exactly the shared stores",
		  bad, now_seconds() - t);
	if (d->group) {
		t = now_seconds();
		if (check_group(d) < 0)
			ok = 0;
		step_line("memory group: usage and peak within max", !ok,
			  now_seconds() - t);
	}
	stats = stats_snapshot(d);
	t = now_seconds();
	if (demo_teardown(d) < 0)
		ok = 0;
	step_line("unmap all, close the object, destroy the engine", !ok,
		  now_seconds() - t);
	t = now_seconds();
	bad += verify_file(d, "after destroy");
	step_line(d->store_url ? "read of the store after destroy: unchanged"
			       : "pread of the file after destroy: unchanged",
		  bad, now_seconds() - t);
	if (stats)
		fputs(stats, stdout);
	free(stats);
	return ok && bad == 0 ? 0 : -1;
}

static int demo_run(struct demo *d)
{
	int ok;

	if (demo_map(d) < 0)
		return -1;
	printf("\nsteps (%u threads, each on its own pages):\n", d->threads);
	if (run_workers(d) < 0) {
		cli_error("demo: out of memory");
		return -1;
	}
	print_phases(d);
	ok = total_failures(d) == 0;
	if (demo_finish(d) < 0)
		ok = 0;
	return ok ? 0 : -1;
}

/* ------------------------------------------------------------------------
 * Arguments
 * ------------------------------------------------------------------------ */

void demo_usage(FILE *f)
{
	fprintf(f,
		"usage: faultline demo [--threads N] [--size SIZE] [--limit "
		"SIZE]\n"
		"                      [--dir DIR] [--store URL]\n\n"
		"Make a data file with a seeded pattern, map it through "
		"faultline twice\n"
		"MAP_SHARED and once MAP_PRIVATE (plus an anonymous mapping), "
		"read, write\n"
		"and verify every byte from several threads, msync, check the "
		"file with\n"
		"pread(2), print statistics and remove the file.  Prints "
		"\"demo: OK\" and\n"
		"exits 0 when every check passed, exits 1 otherwise.\n\n"
		"  --threads N   worker threads (1-256, default 4)\n"
		"  --size SIZE   data file size, a multiple of the page size; "
		"K, M, G\n"
		"                suffixes (default 64M; with --limit, at least "
		"twice the\n"
		"                limit)\n"
		"  --limit SIZE  put every mapping in a memory group with this "
		"hard limit\n"
		"                (K, M, G; at least 1M, a multiple of the page "
		"size) and\n"
		"                make the data file larger than it, so that "
		"page-cache\n"
		"                pages are reclaimed (dirty ones written back "
		"first) while\n"
		"                the demo verifies; prints the group's "
		"statistics and checks\n"
		"                that its usage never exceeded the limit.  "
		"The group swaps\n"
		"                to a swap file beside the data file: private "
		"copies (a\n"
		"                quarter of the file's pages) and the "
		"anonymous "
		"mapping\n"
		"                (twice the limit) are larger than the limit "
		"together and\n"
		"                are swapped out and back in while the demo "
		"verifies\n"
		"  --dir DIR     where to make the temporary directory "
		"(default /var/tmp)\n"
		"  --store URL   keep the data in a store instead of a file: "
		"a new object\n"
		"                at URL (redis://HOST[:PORT]/PREFIX or\n"
		"                redis+cluster://HOST[:PORT],.../PREFIX; "
		"it must not\n"
		"                exist), checked through a second client "
		"instead of\n"
		"                pread(2), deleted at the end\n");
}

static int demo_parse(struct demo *d, int argc, char **argv)
{
	const char *v, *why;
	int i, r;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			demo_usage(stdout);
			exit(0);
		}
		if ((r = opt_value(argc, argv, &i, "--threads", &v)) != 0) {
			if (r < 0)
				return -1;
			why = parse_uint(v, 1, 256, &d->threads);
			if (why) {
				cli_error("demo: bad --threads '%s': %s "
					  "(1-256)",
					  v, why);
				return -1;
			}
		} else if ((r = opt_value(argc, argv, &i, "--size", &v)) != 0) {
			if (r < 0)
				return -1;
			why = parse_size(v, &d->size);
			if (why) {
				cli_error("demo: bad --size '%s': %s", v, why);
				return -1;
			}
		} else if ((r = opt_value(argc, argv, &i, "--limit", &v)) !=
			   0) {
			if (r < 0)
				return -1;
			why = parse_size(v, &d->limit);
			if (why == NULL && d->limit < (1 << 20))
				why = "too small (at least 1M)";
			if (why == NULL && d->limit % d->page)
				why = "not a multiple of the page size";
			if (why == NULL && d->limit > UINT64_MAX / 4)
				why = "too large";
			if (why) {
				cli_error("demo: bad --limit '%s': %s", v, why);
				return -1;
			}
		} else if ((r = opt_value(argc, argv, &i, "--store", &v)) !=
			   0) {
			if (r < 0)
				return -1;
			if (!is_store_url(v)) {
				cli_error("demo: bad --store '%s': not a store "
					  "URL (redis://HOST:PORT/PREFIX or "
					  "redis+cluster://...)",
					  v);
				return -1;
			}
			d->store_url = v;
		} else if ((r = opt_value(argc, argv, &i, "--dir", &v)) != 0) {
			if (r < 0)
				return -1;
			d->parent = v;
		} else {
			cli_error("demo: unknown argument '%s' (see faultline "
				  "demo --help)",
				  argv[i]);
			return -1;
		}
	}
	return 0;
}

/* Refuse sizes the machine cannot hold: the page cache, private copies and
 * the anonymous mapping together take up to twice the size in memory. */
static int demo_check_size(struct demo *d)
{
	uint64_t mem = (uint64_t)sysconf(_SC_PHYS_PAGES) * d->page;
	struct statvfs vfs;
	char buf[32];

	if (d->size < d->page || d->size % d->page) {
		cli_error("demo: --size must be a non-zero multiple of the "
			  "page size (%zu)",
			  d->page);
		return -1;
	}
	if (d->size > mem / 3) {
		cli_error("demo: data file (--size, or twice --limit) too "
			  "large for this machine's memory (at most %s)",
			  format_size(mem / 3 / d->page * d->page, buf,
				      sizeof(buf)));
		return -1;
	}
	if (statvfs(d->parent, &vfs) == 0 &&
	    d->size > (uint64_t)vfs.f_bavail * vfs.f_frsize) {
		cli_error("demo: not enough free space in %s for %s", d->parent,
			  format_size(d->size, buf, sizeof(buf)));
		return -1;
	}
	return 0;
}

/* The data file, or a new object at --store's URL, with the pattern. */
static int demo_data_create(struct demo *d)
{
	struct fl_redis_options o = {.create_size = d->size, .exclusive = 1};
	struct fl_store *s;
	int ret;

	if (!d->store_url)
		return tmpdata_create(&d->data, d->parent, "demo", d->size,
				      DEMO_SEED);
	s = fl_store_redis_open(d->store_url, &o);
	if (!s) {
		cli_error("demo: cannot create %s: %s%s", d->store_url,
			  strerror(errno),
			  errno == EEXIST ? " (the demo makes a new object)"
					  : "");
		return -1;
	}
	ret = store_fill_pattern("demo", s, DEMO_SEED, d->size);
	s->ops->destroy(s);
	if (ret < 0)
		fl_store_redis_remove(d->store_url, NULL);
	return ret;
}

static void demo_data_remove(struct demo *d)
{
	if (!d->store_url)
		tmpdata_remove(&d->data);
	else if (fl_store_redis_remove(d->store_url, NULL))
		cli_error("demo: could not delete %s: %s", d->store_url,
			  strerror(errno));
}

int demo_main(int argc, char **argv)
{
	struct demo d;
	char buf[32];
	double t0;
	int ret;

	memset(&d, 0, sizeof(d));
	d.threads = 4;
	d.size = 64ULL << 20;
	d.parent = "/var/tmp";
	d.page = (size_t)sysconf(_SC_PAGESIZE);
	pthread_mutex_init(&d.report_lock, NULL);
	if (demo_parse(&d, argc, argv) < 0)
		return 2;
	/* With a limit: data at least twice it, so that reclaim happens. */
	if (d.limit && d.size < 2 * d.limit)
		d.size = 2 * d.limit;
	if (demo_check_size(&d) < 0)
		return 2;
	/* Without userfaultfd, say so before writing anything. */
	if (cli_check_engine("demo") < 0)
		return 1;
	d.pages = d.size / d.page;
	d.private_end = d.pages;
	d.anon_pages = d.pages;
	if (d.limit) {
		/* Private copies: 1/4 of the file's pages (the file is at
		 * least twice the limit); anonymous pages: twice the limit.
		 * Together they are larger than the limit: they swap. */
		d.anon_pages = 2 * d.limit / d.page;
	}
	/* A hang must not leave the data file behind: generous limit. */
	cleanup_on_fatal_signals("demo", 120 + (unsigned)(d.size >> 23));
	t0 = now_seconds();
	if (demo_data_create(&d) < 0)
		return 1;
	printf("faultline demo: %s data %s %s, %u threads, %zu-byte "
	       "pages\n",
	       format_size(d.size, buf, sizeof(buf)),
	       d.store_url ? "object" : "file", demo_data_name(&d), d.threads,
	       d.page);
	printf("  data written%s in %.3f s\n", d.store_url ? "" : " and synced",
	       now_seconds() - t0);
	if (d.limit)
		printf("  memory group: max %s with a swap file (every "
		       "mapping; private stores in the first %zu pages, "
		       "anonymous mapping %zu pages)\n",
		       format_size(d.limit, buf, sizeof(buf)), d.private_end,
		       d.anon_pages);
	t0 = now_seconds();
	ret = demo_run(&d);
	if (d.engine)
		demo_teardown(&d);
	demo_data_remove(&d);
	printf("elapsed: %.3f s (engine create to destroy, with checks)\n",
	       now_seconds() - t0);
	alarm(0);
	if (ret < 0) {
		printf("demo: FAILED\n");
		return 1;
	}
	printf("demo: OK\n");
	return 0;
}
