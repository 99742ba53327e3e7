// SPDX-License-Identifier: MIT
/*
 * bench mixed: one thread scans a file once from start to end (one word per
 * 64 bytes) while another reads one word of random pages of the same file
 * until the scan ends, under a memory limit of a quarter of the file, with
 * no advice.  faultline (a fresh engine every run, the mapping in a group
 * with that max) against the kernel's mmap of the same file doing the same
 * in a memory cgroup of the same limit.  The rates are taken over the
 * scan's time; the ratio compares the sum of both threads' pages per
 * second.  Caches are dropped before every run; both threads' sums are
 * checked against the file's seeded pattern.
 */
#include "bench.h"
#include "../tools/cli_util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MIXED_SEED  0x6d697865642d7363ULL
#define RAND_SEED   0x2545f4914f6cdd1dULL /* the random reader's pages */
#define SCAN_CHUNK  (1u << 20)
#define MIXED_RIGHT 0x600dda7aULL /* a run's checksum when both sums held */
/*
 * Most seconds the scan runs for: under the limit the kernel's read-around
 * for the random reader can evict the scan's pages and slow both threads a
 * lot.  A capped run's rates are taken over the part it did (and said so).
 */
#define MIXED_CAP_S 15.0

enum { CFG_KERNEL, CFG_FL, NR_CFG };

/* What one run did. */
struct mixed_result {
	uint64_t seq_bytes, rand_reads;
	double seconds;
	int capped;
	uint64_t kernel_faults; /* kernel runs only */
};

struct mixed_ctx {
	uint64_t size, limit;
	size_t page;
	const char *path;
	int print_stats;
	struct kcg cg;
	struct mixed_result back;	  /* the last run's, from the child */
	struct mixed_result best[NR_CFG]; /* each configuration's best run */
	double best_time[NR_CFG];	  /* normalised, as bench_run_all's */
	int capped[NR_CFG];
};

/* The two threads of one run over a mapping p. */
struct mixed_run {
	const struct mixed_ctx *c;
	const char *p;
	atomic_int scan_done;
	uint64_t rand_reads, rand_sum;
};

/* The byte offset of the word read by the next random read. */
static uint64_t next_offset(const struct mixed_ctx *c, uint64_t *s)
{
	uint64_t r = bench_random(s);
	uint64_t pages = c->size / c->page, words = c->page / 8;

	return ((r % pages) * words + (r >> 40) % words) * 8;
}

static uint64_t expected_random_sum(const struct mixed_ctx *c, uint64_t reads)
{
	uint64_t s = RAND_SEED, sum = 0, i;

	for (i = 0; i < reads; i++)
		sum += pattern_word(MIXED_SEED, next_offset(c, &s) / 8);
	return sum;
}

static void *random_reader(void *arg)
{
	struct mixed_run *m = arg;
	uint64_t s = RAND_SEED, sum = 0, i = 0;

	while (!atomic_load_explicit(&m->scan_done, memory_order_acquire)) {
		sum += *(const volatile uint64_t *)(m->p +
						    next_offset(m->c, &s));
		i++;
	}
	m->rand_reads = i;
	m->rand_sum = sum;
	return NULL;
}

/*
 * Scan p once in this thread beside a random reader, timed from t0; fill
 * *res, and *out with the time per file's worth of pages (so that a
 * baseline's time over faultline's is the ratio of their page rates) and a
 * checksum that is MIXED_RIGHT if both threads read the right words.
 */
static int run_mixed(struct mixed_ctx *c, const char *p, double t0,
		     struct mixed_result *res, struct bench_run *out)
{
	struct mixed_run m = {.c = c, .p = p};
	uint64_t off, sum = 0, pages;
	pthread_t tid;
	int right;

	memset(res, 0, sizeof(*res));
	if (pthread_create(&tid, NULL, random_reader, &m) != 0) {
		cli_error("bench mixed: pthread_create failed");
		return -1;
	}
	for (off = 0; off < c->size; off += SCAN_CHUNK) {
		uint64_t n =
			c->size - off < SCAN_CHUNK ? c->size - off : SCAN_CHUNK;

		if (now_seconds() - t0 > MIXED_CAP_S) {
			res->capped = 1;
			break;
		}
		sum += sum_stride64(p + off, n);
		res->seq_bytes = off + n;
	}
	atomic_store_explicit(&m.scan_done, 1, memory_order_release);
	pthread_join(tid, NULL);
	res->seconds = now_seconds() - t0;
	res->rand_reads = m.rand_reads;
	/* Checked after the clock stopped. */
	right = sum == pattern_sum_stride64(MIXED_SEED, res->seq_bytes) &&
		m.rand_sum == expected_random_sum(c, m.rand_reads);
	pages = res->seq_bytes / c->page + res->rand_reads;
	out->seconds = res->seconds * (double)(c->size / c->page) /
		       (double)(pages ? pages : 1);
	out->checksum = right ? MIXED_RIGHT : 0;
	return 0;
}

/* Keep the run's figures if it is its configuration's best so far. */
static void keep_best(struct mixed_ctx *c, int cfg,
		      const struct mixed_result *res,
		      const struct bench_run *out)
{
	if (c->best_time[cfg] == 0 || out->seconds < c->best_time[cfg]) {
		c->best_time[cfg] = out->seconds;
		c->best[cfg] = *res;
	}
	c->capped[cfg] |= res->capped;
}

/* In the child, in the cgroup. */
static int mixed_kernel_child(void *arg, struct bench_run *out)
{
	struct mixed_ctx *c = arg;
	uint64_t faults = process_faults();
	double t0 = now_seconds();
	int fd = open(c->path, O_RDONLY), ret;
	void *p;

	if (fd < 0) {
		cli_error("bench mixed: open %s: %s", c->path, strerror(errno));
		return -1;
	}
	p = mmap(NULL, c->size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		cli_error("bench mixed: mmap failed: %s", strerror(errno));
		return -1;
	}
	ret = run_mixed(c, p, t0, &c->back, out);
	c->back.kernel_faults = process_faults() - faults;
	munmap(p, c->size);
	return ret;
}

static int mixed_kernel(void *arg, struct bench_run *out)
{
	struct mixed_ctx *c = arg;
	int ret = kcg_run(&c->cg, mixed_kernel_child, c, out, &c->back,
			  sizeof(c->back));

	if (ret == 0)
		keep_best(c, CFG_KERNEL, &c->back, out);
	return ret;
}

static int mixed_faultline_timed(void *arg, fl_engine *engine,
				 struct bench_run *out)
{
	struct mixed_ctx *c = arg;
	fl_group *group;
	double t0 = now_seconds();
	fl_object *obj;
	int ret;
	void *p = bench_map_in_group(engine, "mixed", c->path, c->size,
				     c->limit, &group, &obj);

	if (p == NULL)
		return -1;
	ret = run_mixed(c, p, t0, &c->back, out);
	if (ret == 0)
		keep_best(c, CFG_FL, &c->back, out);
	return bench_end_group_run("mixed", "faultline", engine, group, obj, p,
				   c->size, &c->print_stats, ret);
}

static int mixed_faultline(void *arg, struct bench_run *out)
{
	return bench_on_fresh_engine("mixed", mixed_faultline_timed, arg, out);
}

static double seq_mib_per_s(const struct mixed_result *r)
{
	return r->seconds > 0 ? (double)r->seq_bytes / (1 << 20) / r->seconds
			      : 0.0;
}

static double rand_per_s(const struct mixed_result *r)
{
	return r->seconds > 0 ? (double)r->rand_reads / r->seconds : 0.0;
}

/* One row per configuration: each thread's rate and their sum in pages. */
static void mixed_table(const struct mixed_ctx *c,
			const struct bench_config *cfg)
{
	int i;

	printf("  %-12s %10s %10s %12s %12s %10s\n", "config", "seconds",
	       "seq MiB/s", "rand reads/s", "pages/s", "rand pages");
	for (i = 0; i < NR_CFG; i++) {
		const struct mixed_result *r = &c->best[i];

		if (cfg[i].skipped || cfg[i].best < 0)
			continue;
		printf("  %-12s %10.3f %10.1f %12.1f %12.1f %10llu\n",
		       cfg[i].name, r->seconds, seq_mib_per_s(r), rand_per_s(r),
		       (double)(r->seq_bytes / c->page + r->rand_reads) /
			       r->seconds,
		       (unsigned long long)r->rand_reads);
		if (c->capped[i])
			printf("  # %s: the scan stopped at the %.0f s cap in "
			       "some run; rates are over the part done\n",
			       cfg[i].name, MIXED_CAP_S);
	}
}

int bench_mixed(const struct bench_opts *o)
{
	struct mixed_ctx c = {.size = o->size ? o->size : 512ULL << 20,
			      .page = o->page,
			      .print_stats = 1};
	struct bench_config cfg[NR_CFG] = {
		[CFG_KERNEL] = {"kernel", mixed_kernel, &c, 0, 0, {0}},
		[CFG_FL] = {"faultline", mixed_faultline, &c, 0, 0, {0}},
	};
	const struct mixed_result *kb = &c.best[CFG_KERNEL];
	struct tmpdata data;
	char buf[32], lim[32];
	int ret = -1;

	c.limit = bench_quarter_limit(o, c.size);
	bench_title(o, "mixed",
		    "a sequential scan and random page reads at once, one "
		    "file, limit a quarter of it");
	printf("  size %s, memory limit %s (faultline group max; kernel: "
	       "memory cgroup), no advice, the random reader runs until the "
	       "scan ends, caches dropped before every run\n",
	       format_size(c.size, buf, sizeof(buf)),
	       format_size(c.limit, lim, sizeof(lim)));
	if (kcg_create(&c.cg, c.limit) < 0)
		cfg[CFG_KERNEL].skipped = 1;
	if (tmpdata_create(&data, o->dir, "bench", c.size, MIXED_SEED) < 0) {
		kcg_remove(&c.cg);
		return -1;
	}
	c.path = data.path;
	if (path_is_tmpfs(data.path))
		printf("  %s is on tmpfs, not a disk: no run is cold\n",
		       o->dir);
	if (bench_run_all(o, cfg, NR_CFG, MIXED_RIGHT, 1) == 0) {
		mixed_table(&c, cfg);
		if (!cfg[CFG_KERNEL].skipped)
			bench_kernel_summary(kb->kernel_faults,
					     kb->seq_bytes / c.page +
						     kb->rand_reads);
		bench_ratio("mixed", &cfg[CFG_FL], &cfg[CFG_KERNEL]);
		bench_figure("mixed-seq-mib-per-s",
			     seq_mib_per_s(&c.best[CFG_FL]));
		bench_figure("mixed-rand-reads-per-s",
			     rand_per_s(&c.best[CFG_FL]));
		bench_target("mixed/kernel",
			     bench_ratio_value(&cfg[CFG_FL], &cfg[CFG_KERNEL]),
			     1.0);
		ret = 0;
	}
	tmpdata_remove(&data);
	kcg_remove(&c.cg);
	return ret;
}
