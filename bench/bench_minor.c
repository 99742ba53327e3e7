// SPDX-License-Identifier: MIT
/*
 * bench minor: read in order, one word per page, pages that are already in
 * the page cache but not mapped by this mapping.  faultline: a first mapping
 * has brought every page of the object into faultline's cache; a second
 * mapping of the same object is read and timed.  kernel: a fresh mmap of the
 * same file, which is in the kernel's page cache.
 */
#include "bench.h"
#include "../tools/cli_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MINOR_SEED 0x6d696e6f72ULL

struct minor_ctx {
	uint64_t size;
	size_t page;
	struct tmpdata data;
	int fd;
	fl_engine *engine;
	fl_object *object;
	void *first; /* faultline's first mapping, which filled the cache */
	uint64_t kernel_faults; /* page faults of the last kernel run */
};

/* The word each page is read at: it moves around so a page that is there
 * but wrong (shifted, or another page) does not sum right. */
static uint64_t probe_offset(uint64_t pg, size_t page)
{
	return pg * page + (pg * 64) % page;
}

static uint64_t read_pages(const char *p, uint64_t size, size_t page)
{
	uint64_t pg, sum = 0;

	for (pg = 0; pg < size / page; pg++)
		sum += *(const volatile uint64_t *)(p + probe_offset(pg, page));
	return sum;
}

static uint64_t expected_sum(uint64_t size, size_t page)
{
	uint64_t pg, sum = 0;

	for (pg = 0; pg < size / page; pg++)
		sum += pattern_word(MINOR_SEED, probe_offset(pg, page) / 8);
	return sum;
}

static int minor_kernel(void *arg, struct bench_run *out)
{
	struct minor_ctx *c = arg;
	uint64_t faults = process_faults();
	double t0 = now_seconds();
	char *p = mmap(NULL, c->size, PROT_READ, MAP_SHARED, c->fd, 0);

	if (p == MAP_FAILED) {
		cli_error("bench minor: mmap failed: %s", strerror(errno));
		return -1;
	}
	out->checksum = read_pages(p, c->size, c->page);
	out->seconds = now_seconds() - t0;
	c->kernel_faults = process_faults() - faults;
	munmap(p, c->size);
	return 0;
}

static int minor_faultline(void *arg, struct bench_run *out)
{
	struct minor_ctx *c = arg;
	double t0 = now_seconds();
	char *p = fl_mmap(c->engine, NULL, c->size, PROT_READ, MAP_SHARED,
			  c->object, 0);

	if (p == MAP_FAILED) {
		cli_error("bench minor: fl_mmap failed: %s", strerror(errno));
		return -1;
	}
	out->checksum = read_pages(p, c->size, c->page);
	out->seconds = now_seconds() - t0;
	if (fl_munmap(c->engine, p, c->size) < 0) {
		cli_error("bench minor: fl_munmap failed: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Fill both caches: the kernel's by reading the file, faultline's through
 * a first mapping that touches every page (and must read it right). */
static int minor_setup(struct minor_ctx *c, uint64_t expected)
{
	char *buf = malloc(1 << 20);

	c->fd = open(c->data.path, O_RDONLY);
	if (c->fd < 0 || buf == NULL) {
		cli_error("bench minor: open %s: %s", c->data.path,
			  strerror(errno));
		free(buf);
		return -1;
	}
	while (read(c->fd, buf, 1 << 20) > 0)
		;
	free(buf);
	c->engine = bench_engine_create();
	if (c->engine == NULL)
		return -1;
	c->object = fl_object_open(c->engine, c->data.path, O_RDONLY);
	if (c->object == NULL) {
		cli_error("bench minor: fl_object_open: %s", strerror(errno));
		return -1;
	}
	c->first = fl_mmap(c->engine, NULL, c->size, PROT_READ, MAP_SHARED,
			   c->object, 0);
	if (c->first == MAP_FAILED) {
		c->first = NULL;
		cli_error("bench minor: fl_mmap failed: %s", strerror(errno));
		return -1;
	}
	if (read_pages(c->first, c->size, c->page) != expected) {
		cli_error("bench minor: WRONG DATA through the first mapping");
		return -1;
	}
	bench_engine_summary(c->engine, "after filling the cache");
	return 0;
}

static int minor_teardown(struct minor_ctx *c)
{
	int ret = 0;

	if (c->first && fl_munmap(c->engine, c->first, c->size) < 0)
		ret = -1;
	if (c->object && fl_object_close(c->object) < 0)
		ret = -1;
	if (c->engine && fl_engine_destroy(c->engine) < 0)
		ret = -1;
	if (ret < 0)
		cli_error("bench minor: teardown failed: %s", strerror(errno));
	if (c->fd >= 0)
		close(c->fd);
	tmpdata_remove(&c->data);
	return ret;
}

int bench_minor(const struct bench_opts *o)
{
	struct minor_ctx c = {.size = o->size ? o->size : 512ULL << 20,
			      .page = o->page,
			      .fd = -1};
	struct bench_config cfg[] = {
		{"kernel", minor_kernel, &c, 0, 0, {0}},
		{"faultline", minor_faultline, &c, 0, 0, {0}},
	};
	uint64_t pages = c.size / c.page, expected;
	char buf[32];
	int ret = -1;

	bench_title(o, "minor",
		    "read in order of cached pages through a new mapping");
	printf("  size %s, one word read per page\n",
	       format_size(c.size, buf, sizeof(buf)));
	if (tmpdata_create(&c.data, o->dir, "bench", c.size, MINOR_SEED) < 0)
		return -1;
	expected = expected_sum(c.size, c.page);
	if (minor_setup(&c, expected) == 0 &&
	    bench_run_all(o, cfg, 2, expected, 0) == 0) {
		bench_table(cfg, 2, pages, c.size);
		bench_kernel_summary(c.kernel_faults, pages);
		bench_engine_summary(c.engine, "(all runs)");
		bench_ratio("minor", &cfg[1], &cfg[0]);
		bench_figure("minor-kernel-us-per-page",
			     cfg[0].best * 1e6 / (double)pages);
		bench_figure("minor-faultline-us-per-page",
			     cfg[1].best * 1e6 / (double)pages);
		ret = 0;
	}
	if (minor_teardown(&c) < 0)
		ret = -1;
	return ret;
}
