// SPDX-License-Identifier: MIT
/*
 * bench randwrite: random page writes (one word per random page, from a
 * fixed, seeded sequence) to a MAP_SHARED mapping of a file four times the
 * memory limit, then msync(MS_SYNC), no advice.  faultline: a fresh engine
 * every run, the mapping in a group with max a quarter of the file.
 * Baseline: the kernel's mmap of the same file doing the same in a memory
 * cgroup of the same limit (`kernel`).  Caches are dropped before every
 * run.  Each run writes values of its own (the pattern of the offset,
 * mixed with the run's number), and after it the file is read back: the
 * checksum is the number of written words found right.  Each write is
 * timed: the longest is `figure: randwrite-max-fault-ms`.  The process's
 * peak resident memory during a faultline run is printed beside the
 * group's peak.
 */
#define _GNU_SOURCE
#include "bench.h"
#include "../tools/cli_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RANDWRITE_SEED 0x72616e6477726974ULL
#define WRITE_SEQ_SEED 0x9e3779b97f4a7c15ULL

enum { CFG_KERNEL, CFG_FL, NR_CFG };

struct randwrite_ctx {
	uint64_t size, limit, writes;
	size_t page;
	const char *path;
	uint64_t gen; /* the run's number: part of every value it writes */
	int print_stats;
	struct kcg cg;
	/* What a run sends back from the cgroup's child. */
	struct randwrite_back {
		double max_write_s; /* longest single write of the run */
	} back;
	double max_write_s[NR_CFG];   /* longest over all runs */
	double run_max_s[NR_CFG][16]; /* each run's longest (the first 16) */
	unsigned nr_runs[NR_CFG];
	double run_s[NR_CFG][16]; /* each run's time (the first 16) */
	uint64_t rss_before, rss_peak, group_peak; /* worst faultline run */
};

/* The byte offset of the word written by the next write of the sequence. */
static uint64_t next_offset(const struct randwrite_ctx *c, uint64_t *s)
{
	uint64_t r = bench_random(s);
	uint64_t pages = c->size / c->page, words = c->page / 8;

	return ((r % pages) * words + (r >> 40) % words) * 8;
}

/* What run gen writes at byte offset off. */
static uint64_t value_at(uint64_t gen, uint64_t off)
{
	return pattern_word(RANDWRITE_SEED, off / 8) ^
	       (gen * 0xd6e8feb86659fd93ULL);
}

/* The writes, each timed, then msync; *max_write_s the longest write. */
static int do_writes(const struct randwrite_ctx *c, char *p,
		     int (*sync)(void *arg, void *p, size_t len), void *arg,
		     double *max_write_s)
{
	uint64_t s = WRITE_SEQ_SEED, i;
	double longest = 0, t = now_seconds();

	for (i = 0; i < c->writes; i++) {
		uint64_t off = next_offset(c, &s);
		double t1;

		*(volatile uint64_t *)(p + off) = value_at(c->gen, off);
		t1 = now_seconds();
		if (t1 - t > longest)
			longest = t1 - t;
		t = t1;
	}
	*max_write_s = longest;
	if (sync(arg, p, c->size) < 0) {
		cli_error("bench randwrite: msync failed: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Read the file back: how many of the run's writes are there. */
static int verify(const struct randwrite_ctx *c, uint64_t *right)
{
	uint64_t s = WRITE_SEQ_SEED, i, word, n = 0;
	int fd = open(c->path, O_RDONLY);

	if (fd < 0) {
		cli_error("bench randwrite: open %s: %s", c->path,
			  strerror(errno));
		return -1;
	}
	for (i = 0; i < c->writes; i++) {
		uint64_t off = next_offset(c, &s);

		if (pread(fd, &word, 8, (off_t)off) != 8)
			break;
		n += word == value_at(c->gen, off);
	}
	close(fd);
	*right = n;
	return 0;
}

static int kernel_msync(void *arg, void *p, size_t len)
{
	(void)arg;
	return msync(p, len, MS_SYNC);
}

/* In the child, in the cgroup. */
static int kernel_child(void *arg, struct bench_run *out)
{
	struct randwrite_ctx *c = arg;
	double t0 = now_seconds();
	int fd = open(c->path, O_RDWR), ret;
	void *p;

	if (fd < 0) {
		cli_error("bench randwrite: open %s: %s", c->path,
			  strerror(errno));
		return -1;
	}
	p = mmap(NULL, c->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		cli_error("bench randwrite: mmap failed: %s", strerror(errno));
		return -1;
	}
	ret = do_writes(c, p, kernel_msync, NULL, &c->back.max_write_s);
	out->seconds = now_seconds() - t0;
	munmap(p, c->size);
	return ret;
}

static void note_max(struct randwrite_ctx *c, int cfg, double s)
{
	if (c->nr_runs[cfg] < 16)
		c->run_max_s[cfg][c->nr_runs[cfg]++] = s;
	if (s > c->max_write_s[cfg])
		c->max_write_s[cfg] = s;
}

/* A run's time, after note_max counted the run. */
static void note_time(struct randwrite_ctx *c, int cfg, double s)
{
	if (c->nr_runs[cfg] && c->nr_runs[cfg] <= 16)
		c->run_s[cfg][c->nr_runs[cfg] - 1] = s;
}

static int randwrite_kernel(void *arg, struct bench_run *out)
{
	struct randwrite_ctx *c = arg;
	int ret;

	c->gen++;
	ret = kcg_run(&c->cg, kernel_child, c, out, &c->back, sizeof(c->back));
	if (ret == 0)
		ret = verify(c, &out->checksum);
	note_max(c, CFG_KERNEL, c->back.max_write_s);
	note_time(c, CFG_KERNEL, out->seconds);
	return ret;
}

/* The process's resident memory now and at its peak (VmRSS, VmHWM). */
static void process_rss(uint64_t *now, uint64_t *peak)
{
	char line[256];
	unsigned long long kib;
	FILE *f = fopen("/proc/self/status", "r");

	*now = *peak = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmRSS: %llu kB", &kib) == 1)
			*now = kib << 10;
		else if (sscanf(line, "VmHWM: %llu kB", &kib) == 1)
			*peak = kib << 10;
	}
	fclose(f);
}

/* Start the peak resident memory over from now (Linux 4.0 and later). */
static void reset_rss_peak(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY);

	if (fd >= 0) {
		if (write(fd, "5", 1) < 0) { /* not permitted: the old peak */
		}
		close(fd);
	}
}

static int fl_sync(void *arg, void *p, size_t len)
{
	return fl_msync(arg, p, len, MS_SYNC);
}

static int randwrite_faultline_timed(void *arg, fl_engine *engine,
				     struct bench_run *out)
{
	struct randwrite_ctx *c = arg;
	struct fl_group_stats gs;
	uint64_t rss_before, rss_now, rss_peak;
	double t0, longest = 0;
	fl_group *group;
	fl_object *obj;
	void *p;
	int ret;

	reset_rss_peak();
	process_rss(&rss_before, &rss_peak);
	t0 = now_seconds();
	group = bench_group_create(engine, "randwrite", c->limit);
	if (group == NULL)
		return -1;
	obj = fl_object_open(engine, c->path, O_RDWR);
	if (obj == NULL) {
		cli_error("bench randwrite: fl_object_open: %s",
			  strerror(errno));
		return -1;
	}
	p = fl_mmap_group(engine, group, NULL, c->size, PROT_READ | PROT_WRITE,
			  MAP_SHARED, obj, 0);
	if (p == MAP_FAILED) {
		cli_error("bench randwrite: fl_mmap_group failed: %s",
			  strerror(errno));
		fl_object_close(obj);
		return -1;
	}
	ret = do_writes(c, p, fl_sync, engine, &longest);
	out->seconds = now_seconds() - t0;
	note_max(c, CFG_FL, longest);
	process_rss(&rss_now, &rss_peak);
	if (fl_group_stats(group, &gs) == 0 && c->print_stats && ret == 0)
		printf("  # faultline (first run): flushed %llu pages in the "
		       "background, %llu writes throttled for %.1f ms in all, "
		       "longest wait for memory %.1f ms\n",
		       (unsigned long long)gs.pages_flushed,
		       (unsigned long long)gs.throttled, gs.throttle_ns / 1e6,
		       gs.max_mem_wait_ns / 1e6);
	if (rss_peak > c->rss_peak) {
		c->rss_before = rss_before;
		c->rss_peak = rss_peak;
		c->group_peak = gs.peak;
	}
	return bench_end_group_run("randwrite", "faultline", engine, group, obj,
				   p, c->size, &c->print_stats, ret);
}

static int randwrite_faultline(void *arg, struct bench_run *out)
{
	struct randwrite_ctx *c = arg;
	int ret;

	c->gen++;
	ret = bench_on_fresh_engine("randwrite", randwrite_faultline_timed, c,
				    out);
	note_time(c, CFG_FL, out->seconds);
	if (ret == 0)
		ret = verify(c, &out->checksum);
	return ret;
}

static void randwrite_report(const struct randwrite_ctx *c,
			     const struct bench_config *cfg)
{
	char a[32], b[32], d[32], l[32];

	bench_ratio("randwrite", &cfg[CFG_FL], &cfg[CFG_KERNEL]);
	if (cfg[CFG_FL].best > 0)
		bench_figure("randwrite-faultline-writes-per-s",
			     (double)c->writes / cfg[CFG_FL].best);
	bench_figure("randwrite-max-fault-ms", c->max_write_s[CFG_FL] * 1e3);
	if (!cfg[CFG_KERNEL].skipped) {
		/* The spread: run i of each, side by side. */
		printf("  # randwrite/kernel per run (interleaved):");
		for (unsigned r = 0;
		     r < c->nr_runs[CFG_FL] && r < c->nr_runs[CFG_KERNEL]; r++)
			printf(" %.3f", c->run_s[CFG_FL][r] > 0
						? c->run_s[CFG_KERNEL][r] /
							  c->run_s[CFG_FL][r]
						: 0.0);
		printf("\n");
	}
	for (int i = 0; i < NR_CFG; i++) {
		if (cfg[i].skipped)
			continue;
		printf("  # %s: longest single write per run:", cfg[i].name);
		for (unsigned r = 0; r < c->nr_runs[i]; r++)
			printf(" %.1f ms", c->run_max_s[i][r] * 1e3);
		printf("\n");
	}
	printf("  # faultline: process peak resident %s (%s before the run), "
	       "group peak %s, limit %s\n",
	       format_size(c->rss_peak, a, sizeof(a)),
	       format_size(c->rss_before, b, sizeof(b)),
	       format_size(c->group_peak, d, sizeof(d)),
	       format_size(c->limit, l, sizeof(l)));
	bench_target("randwrite/kernel",
		     bench_ratio_value(&cfg[CFG_FL], &cfg[CFG_KERNEL]), 1.0);
	printf("  # target: randwrite-max-fault-ms < 100: %s\n",
	       c->max_write_s[CFG_FL] * 1e3 < 100 ? "met" : "MISSED");
}

int bench_randwrite(const struct bench_opts *o)
{
	struct randwrite_ctx c = {.size = o->size ? o->size : 256ULL << 20,
				  .page = o->page,
				  .print_stats = 1};
	struct bench_config cfg[NR_CFG] = {
		[CFG_KERNEL] = {"kernel", randwrite_kernel, &c, 0, 0, {0}},
		[CFG_FL] = {"faultline", randwrite_faultline, &c, 0, 0, {0}},
	};
	uint64_t pages = c.size / o->page;
	struct tmpdata data;
	char buf[32], lim[32];
	int ret = -1;

	c.limit = bench_quarter_limit(o, c.size);
	/* 0.375 writes per page: more distinct pages (about 0.31 of the
	 * file) than the limit holds, so dirty pages must be written back
	 * before the end. */
	c.writes = pages / 4 + pages / 8;
	if (c.writes == 0)
		c.writes = 1;
	bench_title(o, "randwrite",
		    "random page writes (one word per random page) to a "
		    "MAP_SHARED mapping of a file four times the limit, then "
		    "msync");
	printf("  size %s, memory limit %s (faultline group max; kernel: "
	       "memory cgroup), %llu writes, no advice, caches dropped "
	       "before every run, every write read back\n",
	       format_size(c.size, buf, sizeof(buf)),
	       format_size(c.limit, lim, sizeof(lim)),
	       (unsigned long long)c.writes);
	if (kcg_create(&c.cg, c.limit) < 0)
		cfg[CFG_KERNEL].skipped = 1;
	if (tmpdata_create(&data, o->dir, "bench", c.size, RANDWRITE_SEED) <
	    0) {
		kcg_remove(&c.cg);
		return -1;
	}
	c.path = data.path;
	if (path_is_tmpfs(data.path))
		printf("  %s is on tmpfs, not a disk: no run is cold\n",
		       o->dir);
	if (bench_run_all(o, cfg, NR_CFG, c.writes, 1) == 0) {
		bench_table(cfg, NR_CFG, c.writes, c.writes * o->page);
		randwrite_report(&c, cfg);
		ret = 0;
	}
	tmpdata_remove(&data);
	kcg_remove(&c.cg);
	return ret;
}
