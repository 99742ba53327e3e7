// SPDX-License-Identifier: MIT
/*
 * bench anon: first touch (a write) of every page of a large anonymous
 * mapping, faultline against the kernel's own MAP_ANONYMOUS.
 */
#include "bench.h"
#include "../tools/cli_util.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

struct anon_ctx {
	uint64_t size;
	size_t page;
	fl_engine *engine;
};

/* The timed work: one store per page, the page's number plus one. */
static void touch_pages(char *p, uint64_t size, size_t page)
{
	uint64_t off;

	for (off = 0; off < size; off += page)
		*(volatile uint64_t *)(p + off) = off / page + 1;
}

/* Sum what was stored; a page whose last word is not zero (it was not
 * zero-filled) spoils the sum on purpose. */
static uint64_t check_pages(const char *p, uint64_t size, size_t page)
{
	uint64_t off, sum = 0;

	for (off = 0; off < size; off += page) {
		sum += *(const volatile uint64_t *)(p + off);
		if (*(const volatile uint64_t *)(p + off + page - 8) != 0)
			sum += 0xbad;
	}
	return sum;
}

static int anon_kernel(void *arg, struct bench_run *out)
{
	struct anon_ctx *c = arg;
	char *p = mmap(NULL, c->size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	double t0;

	if (p == MAP_FAILED) {
		cli_error("bench anon: mmap failed: %s", strerror(errno));
		return -1;
	}
	t0 = now_seconds();
	touch_pages(p, c->size, c->page);
	out->seconds = now_seconds() - t0;
	out->checksum = check_pages(p, c->size, c->page);
	munmap(p, c->size);
	return 0;
}

static int anon_faultline(void *arg, struct bench_run *out)
{
	struct anon_ctx *c = arg;
	char *p = fl_mmap(c->engine, NULL, c->size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	double t0;

	if (p == MAP_FAILED) {
		cli_error("bench anon: fl_mmap failed: %s", strerror(errno));
		return -1;
	}
	t0 = now_seconds();
	touch_pages(p, c->size, c->page);
	out->seconds = now_seconds() - t0;
	out->checksum = check_pages(p, c->size, c->page);
	if (fl_munmap(c->engine, p, c->size) < 0) {
		cli_error("bench anon: fl_munmap failed: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int bench_anon(const struct bench_opts *o)
{
	struct anon_ctx c = {o->size ? o->size : 512ULL << 20, o->page, NULL};
	struct bench_config cfg[] = {
		{"kernel", anon_kernel, &c, 0, 0, {0}},
		{"faultline", anon_faultline, &c, 0, 0, {0}},
	};
	uint64_t pages = c.size / c.page;
	char buf[32];
	int ret;

	bench_title(o, "anon",
		    "first write of every page of an anonymous mapping");
	printf("  size %s\n", format_size(c.size, buf, sizeof(buf)));
	c.engine = bench_engine_create();
	if (c.engine == NULL)
		return -1;
	/* Each page stores its number plus one: the sum of 1..pages. */
	ret = bench_run_all(o, cfg, 2, pages * (pages + 1) / 2, 0);
	if (ret == 0) {
		bench_table(cfg, 2, pages, c.size);
		bench_engine_summary(c.engine, "(all runs)");
		bench_ratio("anon", &cfg[1], &cfg[0]);
		bench_figure("anon-kernel-us-per-page",
			     cfg[0].best * 1e6 / (double)pages);
		bench_figure("anon-faultline-us-per-page",
			     cfg[1].best * 1e6 / (double)pages);
	}
	if (fl_engine_destroy(c.engine) < 0) {
		cli_error("bench anon: fl_engine_destroy failed: %s",
			  strerror(errno));
		ret = -1;
	}
	return ret;
}
