// SPDX-License-Identifier: MIT
/*
 * bench randread: random 4 KiB reads (one word of each of a fixed, seeded
 * sequence of random pages) over a file four times the memory limit.
 * faultline: a fresh engine every run, the mapping in a group with max a
 * quarter of the file, MADV_RANDOM.  Baselines: the kernel's mmap of the
 * same file in a memory cgroup of the same limit, plain (`kernel`, with
 * its read-around) and with MADV_RANDOM (`kernel-random`), and pread of
 * each page on an O_DIRECT descriptor (`odirect`).  Caches are dropped
 * before every run; every word read is summed and the sum checked.
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

#define RANDREAD_SEED 0x72616e6472656164ULL
#define RANDOM_SEED   0x9e3779b97f4a7c15ULL /* the page sequence */
/*
 * Most seconds one run reads for.  The kernel's plain mmap reads around
 * every miss (read_ahead_kb, 8 MiB on some disks), which under the limit
 * makes every read cost milliseconds; a run that reaches the cap stops,
 * its reads so far are checked, and its time is extrapolated to all reads
 * (and said so).
 */
#define RANDREAD_CAP_S 5.0

struct randread_ctx {
	uint64_t size, limit, reads;
	size_t page;
	const char *path;
	int print_stats;
	struct kcg cg;
	/* What a run sends back from the cgroup's child. */
	struct randread_back {
		uint64_t kernel_faults; /* of the last kernel run */
		uint64_t done;		/* reads done before the cap */
	} back;
	int capped[4]; /* configurations that reached the cap */
};

/* The byte offset of the word read by read i of the sequence. */
static uint64_t next_offset(const struct randread_ctx *c, uint64_t *s)
{
	uint64_t r = bench_random(s);
	uint64_t pages = c->size / c->page, words = c->page / 8;

	return ((r % pages) * words + (r >> 40) % words) * 8;
}

static uint64_t expected_sum(const struct randread_ctx *c, uint64_t reads)
{
	uint64_t s = RANDOM_SEED, sum = 0, i;

	for (i = 0; i < reads; i++)
		sum += pattern_word(RANDREAD_SEED, next_offset(c, &s) / 8);
	return sum;
}

/*
 * The reads through a mapping, timed from t0, up to the cap.  A capped run
 * whose reads were right gets the full sequence's checksum and its time
 * extrapolated; a wrong one keeps its own sum, which fails the check.
 */
static void finish_run(struct randread_ctx *c, uint64_t sum, uint64_t i,
		       double t0, struct bench_run *out)
{
	out->seconds = now_seconds() - t0;
	out->checksum = sum;
	c->back.done = i;
	if (i < c->reads) {
		out->seconds *= (double)c->reads / (double)i;
		if (sum == expected_sum(c, i))
			out->checksum = expected_sum(c, c->reads);
	}
}

static void note_cap(struct randread_ctx *c, int cfg)
{
	if (c->back.done < c->reads)
		c->capped[cfg] = 1;
}

/* Stop a run here?  Checked every 64 reads. */
static int at_cap(uint64_t i, double t0)
{
	return i % 64 == 63 && now_seconds() - t0 > RANDREAD_CAP_S;
}

static void read_words(struct randread_ctx *c, const char *p, double t0,
		       struct bench_run *out)
{
	uint64_t s = RANDOM_SEED, sum = 0, i;

	for (i = 0; i < c->reads; i++) {
		sum += *(const volatile uint64_t *)(p + next_offset(c, &s));
		if (at_cap(i, t0)) {
			i++;
			break;
		}
	}
	finish_run(c, sum, i, t0, out);
}

/* In the child, in the cgroup. */
static int kernel_child(struct randread_ctx *c, struct bench_run *out,
			int advice)
{
	uint64_t faults = process_faults();
	double t0 = now_seconds();
	int fd = open(c->path, O_RDONLY);
	void *p;

	if (fd < 0) {
		cli_error("bench randread: open %s: %s", c->path,
			  strerror(errno));
		return -1;
	}
	p = mmap(NULL, c->size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		cli_error("bench randread: mmap failed: %s", strerror(errno));
		return -1;
	}
	if (advice != MADV_NORMAL && madvise(p, c->size, advice) < 0) {
		cli_error("bench randread: madvise failed: %s",
			  strerror(errno));
		munmap(p, c->size);
		return -1;
	}
	read_words(c, p, t0, out);
	c->back.kernel_faults = process_faults() - faults;
	munmap(p, c->size);
	return 0;
}

static int kernel_normal_child(void *arg, struct bench_run *out)
{
	return kernel_child(arg, out, MADV_NORMAL);
}

static int kernel_random_child(void *arg, struct bench_run *out)
{
	return kernel_child(arg, out, MADV_RANDOM);
}

static int randread_kernel(void *arg, struct bench_run *out)
{
	struct randread_ctx *c = arg;
	int ret = kcg_run(&c->cg, kernel_normal_child, c, out, &c->back,
			  sizeof(c->back));

	note_cap(c, 0);
	return ret;
}

static int randread_kernel_random(void *arg, struct bench_run *out)
{
	struct randread_ctx *c = arg;
	int ret = kcg_run(&c->cg, kernel_random_child, c, out, &c->back,
			  sizeof(c->back));

	note_cap(c, 1);
	return ret;
}

static int randread_odirect(void *arg, struct bench_run *out)
{
	struct randread_ctx *c = arg;
	uint64_t s = RANDOM_SEED, sum = 0, i;
	int failed = 0;
	double t0 = now_seconds();
	int fd = open(c->path, O_RDONLY | O_DIRECT);
	void *buf = NULL;

	if (fd < 0 || posix_memalign(&buf, 4096, c->page) != 0) {
		cli_error("bench randread: O_DIRECT open %s: %s", c->path,
			  strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	for (i = 0; i < c->reads; i++) {
		uint64_t off = next_offset(c, &s);
		uint64_t pg = off / c->page * c->page;

		if (pread(fd, buf, c->page, (off_t)pg) != (ssize_t)c->page) {
			cli_error("bench randread: O_DIRECT read failed: %s",
				  strerror(errno));
			failed = 1;
			break;
		}
		sum += *(const uint64_t *)((const char *)buf + (off - pg));
		if (at_cap(i, t0)) {
			i++;
			break;
		}
	}
	finish_run(c, sum, i, t0, out);
	note_cap(c, 2);
	close(fd);
	free(buf);
	return failed ? -1 : 0;
}

static int randread_faultline_timed(void *arg, fl_engine *engine,
				    struct bench_run *out)
{
	struct randread_ctx *c = arg;
	fl_group *group = bench_group_create(engine, "randread", c->limit);
	double t0 = now_seconds();
	fl_object *obj;
	int ret = 0;
	void *p;

	if (group == NULL)
		return -1;
	obj = fl_object_open(engine, c->path, O_RDONLY);
	if (obj == NULL) {
		cli_error("bench randread: fl_object_open: %s",
			  strerror(errno));
		return -1;
	}
	p = fl_mmap_group(engine, group, NULL, c->size, PROT_READ, MAP_SHARED,
			  obj, 0);
	if (p == MAP_FAILED) {
		cli_error("bench randread: fl_mmap_group failed: %s",
			  strerror(errno));
		fl_object_close(obj);
		return -1;
	}
	if (fl_madvise(engine, p, c->size, MADV_RANDOM) < 0) {
		cli_error("bench randread: fl_madvise(MADV_RANDOM) failed: %s",
			  strerror(errno));
		ret = -1;
	}
	if (ret == 0) {
		read_words(c, p, t0, out);
		note_cap(c, 3);
	}
	return bench_end_group_run("randread", engine, group, obj, p, c->size,
				   &c->print_stats, ret);
}

static int randread_faultline(void *arg, struct bench_run *out)
{
	return bench_on_fresh_engine("randread", randread_faultline_timed, arg,
				     out);
}

int bench_randread(const struct bench_opts *o)
{
	struct randread_ctx c = {.size = o->size ? o->size : 256ULL << 20,
				 .page = o->page,
				 .print_stats = 1};
	struct bench_config cfg[] = {
		{"kernel", randread_kernel, &c, 0, 0},
		{"kernel-random", randread_kernel_random, &c, 0, 0},
		{"odirect", randread_odirect, &c, 0, 0},
		{"faultline", randread_faultline, &c, 0, 0},
	};
	uint64_t expected, pages = c.size / o->page;
	struct tmpdata data;
	char buf[32], lim[32];
	int fd, i, ret = -1;

	c.limit = c.size / 4 / o->page * o->page;
	if (c.limit < o->page)
		c.limit = o->page;
	/* 0.375 reads per page: most pages read once, some again, and
	 * more distinct pages (about 0.31 of the file) than the limit
	 * holds. */
	c.reads = pages / 4 + pages / 8;
	if (c.reads == 0)
		c.reads = 1;
	bench_title(o, "randread",
		    "random 4 KiB reads (one word per random page) over a file "
		    "four times the limit");
	printf("  size %s, memory limit %s (faultline group max; kernel: "
	       "memory cgroup), %llu reads, caches dropped before every "
	       "run\n",
	       format_size(c.size, buf, sizeof(buf)),
	       format_size(c.limit, lim, sizeof(lim)),
	       (unsigned long long)c.reads);
	if (kcg_create(&c.cg, c.limit) < 0)
		cfg[0].skipped = cfg[1].skipped = 1;
	if (tmpdata_create(&data, o->dir, "bench", c.size, RANDREAD_SEED) < 0) {
		kcg_remove(&c.cg);
		return -1;
	}
	c.path = data.path;
	if (path_is_tmpfs(data.path))
		printf("  %s is on tmpfs, not a disk: no run is cold\n",
		       o->dir);
	fd = open(data.path, O_RDONLY | O_DIRECT);
	if (fd < 0) {
		printf("  odirect baseline: skipped (O_DIRECT not supported "
		       "in %s)\n",
		       o->dir);
		cfg[2].skipped = 1;
	} else {
		close(fd);
	}
	expected = expected_sum(&c, c.reads);
	if (bench_run_all(o, cfg, 4, expected, 1) == 0) {
		bench_table(cfg, 4, c.reads, c.reads * o->page);
		for (i = 0; i < 4; i++)
			if (c.capped[i])
				printf("  # %s: stopped at the %.0f s cap in "
				       "some run; its time is extrapolated "
				       "from the reads done (checked)\n",
				       cfg[i].name, RANDREAD_CAP_S);
		if (!cfg[0].skipped)
			bench_kernel_summary(c.back.kernel_faults, c.back.done);
		bench_ratio("randread", &cfg[3], &cfg[0]);
		bench_ratio("randread", &cfg[3], &cfg[1]);
		bench_ratio("randread", &cfg[3], &cfg[2]);
		bench_figure("randread-faultline-reads-per-s",
			     (double)c.reads / cfg[3].best);
		ret = 0;
	}
	tmpdata_remove(&data);
	kcg_remove(&c.cg);
	return ret;
}
