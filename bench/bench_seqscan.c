// SPDX-License-Identifier: MIT
/*
 * bench seqscan: cold sequential read of a whole file, one word per 64
 * bytes, under a memory limit of a quarter of the file.  faultline (a
 * fresh engine and object every run, so its cache is cold too; the mapping
 * in a group with that max) against the kernel's mmap of the same file in
 * a memory cgroup of the same limit and against pread with O_DIRECT, the
 * most the disk gives: the better of 1 MiB reads on one thread and 4 MiB
 * reads on four threads (four in flight).  Caches are dropped before every
 * run.
 */
#define _GNU_SOURCE /* O_DIRECT */
#include "bench.h"
#include "../tools/cli_util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SEQSCAN_SEED 0x7365717363616eULL
#define CHUNK	     (1 << 20)
#define CHUNK4	     (4 << 20) /* the parallel O_DIRECT baseline's reads */
#define READERS4     4

struct seqscan_ctx {
	uint64_t size;
	uint64_t limit; /* faultline's group max and the cgroup's limit */
	const char *path;
	int print_stats;	/* print the engine's counters once */
	uint64_t kernel_faults; /* page faults of the last kernel run */
	struct kcg cg;
};

/* In the child, in the cgroup. */
static int seqscan_kernel_child(void *arg, struct bench_run *out)
{
	struct seqscan_ctx *c = arg;
	uint64_t faults = process_faults();
	double t0 = now_seconds();
	int fd = open(c->path, O_RDONLY);
	void *p;

	if (fd < 0) {
		cli_error("bench seqscan: open %s: %s", c->path,
			  strerror(errno));
		return -1;
	}
	p = mmap(NULL, c->size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		cli_error("bench seqscan: mmap failed: %s", strerror(errno));
		return -1;
	}
	out->checksum = sum_stride64(p, c->size);
	out->seconds = now_seconds() - t0;
	c->kernel_faults = process_faults() - faults;
	munmap(p, c->size);
	return 0;
}

static int seqscan_kernel(void *arg, struct bench_run *out)
{
	struct seqscan_ctx *c = arg;

	return kcg_run(&c->cg, seqscan_kernel_child, c, out, &c->kernel_faults,
		       sizeof(c->kernel_faults));
}

static int seqscan_odirect(void *arg, struct bench_run *out)
{
	struct seqscan_ctx *c = arg;
	void *buf = NULL;
	double t0 = now_seconds();
	int fd = open(c->path, O_RDONLY | O_DIRECT);
	uint64_t off;

	if (fd < 0 || posix_memalign(&buf, 4096, CHUNK) != 0) {
		cli_error("bench seqscan: O_DIRECT open %s: %s", c->path,
			  strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	out->checksum = 0;
	for (off = 0; off < c->size; off += CHUNK) {
		size_t n = c->size - off < CHUNK ? c->size - off : CHUNK;

		if (pread(fd, buf, n, (off_t)off) != (ssize_t)n) {
			cli_error("bench seqscan: O_DIRECT read failed: %s",
				  strerror(errno));
			break;
		}
		out->checksum += sum_stride64(buf, n);
	}
	out->seconds = now_seconds() - t0;
	close(fd);
	free(buf);
	return off < c->size ? -1 : 0;
}

/* The parallel O_DIRECT baseline: threads take the next 4 MiB in turn. */
struct odirect4 {
	const struct seqscan_ctx *c;
	int fd;
	atomic_uint_fast64_t next;
	atomic_int failed;
};

static void *odirect4_reader(void *arg)
{
	struct odirect4 *d = arg;
	uint64_t size = d->c->size, off, sum = 0;
	void *buf = NULL;

	if (posix_memalign(&buf, 4096, CHUNK4) != 0) {
		atomic_store(&d->failed, 1);
		return NULL;
	}
	while ((off = atomic_fetch_add(&d->next, CHUNK4)) < size) {
		size_t n = size - off < CHUNK4 ? size - off : CHUNK4;

		if (pread(d->fd, buf, n, (off_t)off) != (ssize_t)n) {
			atomic_store(&d->failed, 1);
			break;
		}
		sum += sum_stride64(buf, n);
	}
	free(buf);
	/* Sums of whole chunks add up in any order. */
	return (void *)(uintptr_t)sum;
}

static int seqscan_odirect4(void *arg, struct bench_run *out)
{
	struct seqscan_ctx *c = arg;
	struct odirect4 d = {.c = c};
	pthread_t tid[READERS4];
	double t0 = now_seconds();
	int i, started = 0;

	d.fd = open(c->path, O_RDONLY | O_DIRECT);
	if (d.fd < 0) {
		cli_error("bench seqscan: O_DIRECT open %s: %s", c->path,
			  strerror(errno));
		return -1;
	}
	for (i = 0; i < READERS4; i++, started++)
		if (pthread_create(&tid[i], NULL, odirect4_reader, &d) != 0) {
			atomic_store(&d.failed, 1);
			break;
		}
	out->checksum = 0;
	for (i = 0; i < started; i++) {
		void *sum;

		pthread_join(tid[i], &sum);
		out->checksum += (uint64_t)(uintptr_t)sum;
	}
	out->seconds = now_seconds() - t0;
	close(d.fd);
	if (atomic_load(&d.failed)) {
		cli_error("bench seqscan: O_DIRECT 4 MiB reads failed");
		return -1;
	}
	return 0;
}

/* Time the object's open, its mapping and the scan; the engine's creation
 * and teardown are outside, like process start and exit. */
static int seqscan_faultline_timed(void *arg, fl_engine *engine,
				   struct bench_run *out)
{
	struct seqscan_ctx *c = arg;
	fl_group *group;
	double t0 = now_seconds();
	fl_object *obj;
	int ret = 0;
	void *p = bench_map_in_group(engine, "seqscan", c->path, c->size,
				     c->limit, &group, &obj);

	if (p == NULL)
		return -1;
	out->checksum = sum_stride64(p, c->size);
	out->seconds = now_seconds() - t0;
	return bench_end_group_run("seqscan", "faultline", engine, group, obj,
				   p, c->size, &c->print_stats, ret);
}

static int seqscan_faultline(void *arg, struct bench_run *out)
{
	return bench_on_fresh_engine("seqscan", seqscan_faultline_timed, arg,
				     out);
}

/* O_DIRECT needs a file system that supports it. */
static int odirect_works(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECT);

	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

int bench_seqscan(const struct bench_opts *o)
{
	struct seqscan_ctx c = {.size = o->size ? o->size : 1ULL << 30,
				.print_stats = 1};
	struct bench_config cfg[] = {
		{"kernel", seqscan_kernel, &c, 0, 0, {0}},
		{"odirect-1M", seqscan_odirect, &c, 0, 0, {0}},
		{"odirect-4x4M", seqscan_odirect4, &c, 0, 0, {0}},
		{"faultline", seqscan_faultline, &c, 0, 0, {0}},
	};
	/* The O_DIRECT baseline: the better of the two ways of reading. */
	struct bench_config odirect = {"odirect", NULL, NULL, 0, -1, {0}};
	uint64_t pages = c.size / o->page, expected;
	struct tmpdata data;
	char buf[32], lim[32];
	int ret = -1;

	c.limit = bench_quarter_limit(o, c.size);
	bench_title(o, "seqscan",
		    "cold sequential read of a file, one word per 64 bytes, "
		    "limit a quarter of it");
	printf("  size %s, memory limit %s (faultline group max; kernel: "
	       "memory cgroup), caches dropped before every run\n",
	       format_size(c.size, buf, sizeof(buf)),
	       format_size(c.limit, lim, sizeof(lim)));
	if (kcg_create(&c.cg, c.limit) < 0)
		cfg[0].skipped = 1;
	if (tmpdata_create(&data, o->dir, "bench", c.size, SEQSCAN_SEED) < 0) {
		kcg_remove(&c.cg);
		return -1;
	}
	c.path = data.path;
	if (path_is_tmpfs(data.path))
		printf("  %s is on tmpfs, not a disk: no run is cold\n",
		       o->dir);
	if (!odirect_works(data.path)) {
		printf("  odirect baseline: skipped (O_DIRECT not supported "
		       "in %s)\n",
		       o->dir);
		cfg[1].skipped = cfg[2].skipped = odirect.skipped = 1;
	}
	expected = pattern_sum_stride64(SEQSCAN_SEED, c.size);
	if (bench_run_all(o, cfg, 4, expected, 1) == 0) {
		bench_table(cfg, 4, pages, c.size);
		if (!cfg[0].skipped)
			bench_kernel_summary(c.kernel_faults, pages);
		odirect.best = cfg[1].best;
		if (cfg[2].best > 0 && cfg[2].best < odirect.best)
			odirect.best = cfg[2].best;
		if (!odirect.skipped)
			printf("  # odirect: the better of odirect-1M and "
			       "odirect-4x4M\n");
		bench_ratio("seqscan", &cfg[3], &cfg[0]);
		bench_ratio("seqscan", &cfg[3], &odirect);
		bench_figure("seqscan-faultline-mib-per-s",
			     (double)c.size / (1 << 20) / cfg[3].best);
		bench_target("seqscan/kernel",
			     bench_ratio_value(&cfg[3], &cfg[0]), 1.0);
		bench_target("seqscan/odirect",
			     bench_ratio_value(&cfg[3], &odirect), 0.95);
		ret = 0;
	}
	tmpdata_remove(&data);
	kcg_remove(&c.cg);
	return ret;
}
