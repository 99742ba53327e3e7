// SPDX-License-Identifier: MIT
/*
 * bench seqscan: cold sequential read of a whole file, one word per 64
 * bytes, under a memory limit of a quarter of the file.  faultline (a
 * fresh engine and object every run, so its cache is cold too; the mapping
 * in a group with that max) against the kernel's mmap of the same file in
 * a memory cgroup of the same limit and against pread with O_DIRECT in
 * 1 MiB chunks, the most the disk gives.  Caches are dropped before every
 * run.
 */
#define _GNU_SOURCE /* O_DIRECT */
#include "bench.h"
#include "../tools/cli_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SEQSCAN_SEED 0x7365717363616eULL
#define CHUNK	     (1 << 20)

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

/* Time the object's open, its mapping and the scan; the engine's creation
 * and teardown are outside, like process start and exit. */
static int seqscan_faultline_timed(void *arg, fl_engine *engine,
				   struct bench_run *out)
{
	struct seqscan_ctx *c = arg;
	fl_group *group = bench_group_create(engine, "seqscan", c->limit);
	double t0 = now_seconds();
	fl_object *obj;
	int ret = 0;
	void *p;

	if (group == NULL)
		return -1;
	obj = fl_object_open(engine, c->path, O_RDONLY);
	if (obj == NULL) {
		cli_error("bench seqscan: fl_object_open: %s", strerror(errno));
		return -1;
	}
	p = fl_mmap_group(engine, group, NULL, c->size, PROT_READ, MAP_SHARED,
			  obj, 0);
	if (p == MAP_FAILED) {
		cli_error("bench seqscan: fl_mmap failed: %s", strerror(errno));
		fl_object_close(obj);
		return -1;
	}
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
		{"kernel", seqscan_kernel, &c, 0, 0},
		{"odirect", seqscan_odirect, &c, 0, 0},
		{"faultline", seqscan_faultline, &c, 0, 0},
	};
	uint64_t pages = c.size / o->page, expected;
	struct tmpdata data;
	char buf[32], lim[32];
	int ret = -1;

	/* A quarter of the file, in whole pages. */
	c.limit = c.size / 4 / o->page * o->page;
	if (c.limit < o->page)
		c.limit = o->page;
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
		cfg[1].skipped = 1;
	}
	expected = pattern_sum_stride64(SEQSCAN_SEED, c.size);
	if (bench_run_all(o, cfg, 3, expected, 1) == 0) {
		bench_table(cfg, 3, pages, c.size);
		if (!cfg[0].skipped)
			bench_kernel_summary(c.kernel_faults, pages);
		bench_ratio("seqscan", &cfg[2], &cfg[0]);
		bench_ratio("seqscan", &cfg[2], &cfg[1]);
		bench_figure("seqscan-faultline-mib-per-s",
			     (double)c.size / (1 << 20) / cfg[2].best);
		if (cfg[1].best > 0)
			printf("  # target: seqscan >= 0.8x odirect: %s\n",
			       cfg[1].best / cfg[2].best >= 0.8 ? "met"
								: "MISSED");
		ret = 0;
	}
	tmpdata_remove(&data);
	kcg_remove(&c.cg);
	return ret;
}
