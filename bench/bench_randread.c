// SPDX-License-Identifier: MIT
/*
 * bench randread: random 4 KiB reads (one word of each of a fixed, seeded
 * sequence of random pages) over a file four times the memory limit.
 * faultline: a fresh engine every run, the mapping in a group with max a
 * quarter of the file, with no advice like the kernel row (`faultline`:
 * the engine must find the pattern itself) and with MADV_RANDOM
 * (`faultline-random`).  Baselines: the kernel's mmap of the same file in
 * a memory cgroup of the same limit, plain (`kernel`, with its
 * read-around) and with MADV_RANDOM (`kernel-random`), and pread of each
 * page on an O_DIRECT descriptor (`odirect`), and the least a userfaultfd
 * server does (`uffd-minimal`: uffd_minimal.c, one server thread per
 * reader, each page read with O_DIRECT): what faultline is measured
 * against, and how near to the kernel serving faults from user space can
 * come at all on this machine.  With --threads N every
 * configuration reads with N threads, each its own sequence of pages over
 * the same mapping (or descriptor).  Caches are dropped before every run;
 * every word read is summed and the sum checked.
 */
#define _GNU_SOURCE /* O_DIRECT */
#include "bench.h"
#include "../tools/cli_util.h"
#include "uffd_minimal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RANDREAD_SEED 0x72616e6472656164ULL
#define RANDOM_SEED   0x9e3779b97f4a7c15ULL /* reader 0's page sequence */
#define MAX_READERS   64
/*
 * Most seconds one run reads for.  The kernel's plain mmap reads around
 * every miss (read_ahead_kb, 8 MiB on some disks), which under the limit
 * makes every read cost milliseconds; a run that reaches the cap stops,
 * its reads so far are checked, and its time is extrapolated to all reads
 * (and said so).
 */
#define RANDREAD_CAP_S 5.0

/* The configurations, in the order of the table. */
enum {
	CFG_KERNEL,
	CFG_KERNEL_RANDOM,
	CFG_ODIRECT,
	CFG_UFFD_MINIMAL,
	CFG_FL,
	CFG_FL_RANDOM,
	NR_CFG
};

struct randread_ctx {
	uint64_t size, limit, reads; /* reads: of all readers together */
	size_t page;
	unsigned threads;
	const char *path;
	int print_stats[NR_CFG];
	struct kcg cg;
	/* What a run sends back from the cgroup's child. */
	struct randread_back {
		uint64_t kernel_faults; /* of the last kernel run */
		uint64_t done;		/* reads done before the cap */
	} back;
	/* The last plain kernel run's page faults and reads done. */
	uint64_t kernel_faults, kernel_done;
	int capped[NR_CFG]; /* configurations that reached the cap */
};

/* One reader thread: its own page sequence over a mapping, or pread on
 * an O_DIRECT descriptor when p is NULL. */
struct reader {
	const struct randread_ctx *c;
	const char *p;
	int fd;
	uint64_t seed, reads, done, sum;
	double t0;
	int failed;
};

/* The byte offset of the word read by the next read of a sequence. */
static uint64_t next_offset(const struct randread_ctx *c, uint64_t *s)
{
	uint64_t r = bench_random(s);
	uint64_t pages = c->size / c->page, words = c->page / 8;

	return ((r % pages) * words + (r >> 40) % words) * 8;
}

/* Reader t's sequence starts from its own seed (never 0). */
static uint64_t reader_seed(unsigned t)
{
	return RANDOM_SEED + 0x632be59bd9b4e019ULL * t;
}

/* Reader t's share of the reads. */
static uint64_t reader_reads(const struct randread_ctx *c, unsigned t)
{
	return c->reads / c->threads + (t < c->reads % c->threads);
}

static uint64_t expected_sum(const struct randread_ctx *c, uint64_t seed,
			     uint64_t reads)
{
	uint64_t s = seed, sum = 0, i;

	for (i = 0; i < reads; i++)
		sum += pattern_word(RANDREAD_SEED, next_offset(c, &s) / 8);
	return sum;
}

static uint64_t expected_total(const struct randread_ctx *c)
{
	uint64_t sum = 0;
	unsigned t;

	for (t = 0; t < c->threads; t++)
		sum += expected_sum(c, reader_seed(t), reader_reads(c, t));
	return sum;
}

/* Stop a run here?  Checked every 64 reads. */
static int at_cap(uint64_t i, double t0)
{
	return i % 64 == 63 && now_seconds() - t0 > RANDREAD_CAP_S;
}

static int read_odirect(struct reader *r, void *buf, uint64_t off,
			uint64_t *word)
{
	size_t page = r->c->page;
	uint64_t pg = off / page * page;

	if (pread(r->fd, buf, page, (off_t)pg) != (ssize_t)page) {
		cli_error("bench randread: O_DIRECT read failed: %s",
			  strerror(errno));
		return -1;
	}
	*word = *(const uint64_t *)((const char *)buf + (off - pg));
	return 0;
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	uint64_t s = r->seed, i, word;
	void *buf = NULL;

	if (r->p == NULL && posix_memalign(&buf, 4096, r->c->page) != 0) {
		r->failed = 1;
		return NULL;
	}
	for (i = 0; i < r->reads; i++) {
		uint64_t off = next_offset(r->c, &s);

		if (r->p != NULL) {
			word = *(const volatile uint64_t *)(r->p + off);
		} else if (read_odirect(r, buf, off, &word) < 0) {
			r->failed = 1;
			break;
		}
		r->sum += word;
		if (at_cap(i, r->t0)) {
			i++;
			break;
		}
	}
	r->done = i;
	free(buf);
	return NULL;
}

/*
 * Run the readers over p (or pread on fd if p is NULL), timed from t0, up
 * to the cap.  A capped run whose reads were right gets the full
 * sequences' checksum and its time extrapolated to all reads; a wrong one
 * keeps its own sum, which fails the check.
 */
static int run_readers(struct randread_ctx *c, const char *p, int fd, double t0,
		       struct bench_run *out)
{
	struct reader r[MAX_READERS];
	pthread_t tid[MAX_READERS];
	uint64_t done = 0, sum = 0;
	unsigned t, started = 0;
	int right = 1, failed = 0;

	for (t = 0; t < c->threads; t++) {
		r[t] = (struct reader){.c = c,
				       .p = p,
				       .fd = fd,
				       .t0 = t0,
				       .seed = reader_seed(t),
				       .reads = reader_reads(c, t)};
		if (t > 0 &&
		    pthread_create(&tid[t], NULL, reader_main, &r[t]) != 0) {
			cli_error("bench randread: pthread_create failed");
			failed = 1;
			break;
		}
		started++;
	}
	if (!failed)
		reader_main(&r[0]);
	for (t = 1; t < started; t++)
		pthread_join(tid[t], NULL);
	out->seconds = now_seconds() - t0;
	for (t = 0; t < started; t++) {
		done += r[t].done;
		sum += r[t].sum;
		failed |= r[t].failed;
		if (r[t].done < r[t].reads &&
		    r[t].sum != expected_sum(c, r[t].seed, r[t].done))
			right = 0;
	}
	out->checksum = sum;
	c->back.done = done;
	if (done < c->reads && done > 0) {
		out->seconds *= (double)c->reads / (double)done;
		if (right)
			out->checksum = expected_total(c);
	}
	return failed ? -1 : 0;
}

static void note_cap(struct randread_ctx *c, int cfg)
{
	if (c->back.done < c->reads)
		c->capped[cfg] = 1;
}

/* In the child, in the cgroup. */
static int kernel_child(struct randread_ctx *c, struct bench_run *out,
			int advice)
{
	uint64_t faults = process_faults();
	double t0 = now_seconds();
	int fd = open(c->path, O_RDONLY), ret;
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
	ret = run_readers(c, p, -1, t0, out);
	c->back.kernel_faults = process_faults() - faults;
	munmap(p, c->size);
	return ret;
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

	note_cap(c, CFG_KERNEL);
	c->kernel_faults = c->back.kernel_faults;
	c->kernel_done = c->back.done;
	return ret;
}

static int randread_kernel_random(void *arg, struct bench_run *out)
{
	struct randread_ctx *c = arg;
	int ret = kcg_run(&c->cg, kernel_random_child, c, out, &c->back,
			  sizeof(c->back));

	note_cap(c, CFG_KERNEL_RANDOM);
	return ret;
}

/* As many reads in flight as the scenario has readers. */
static int randread_odirect(void *arg, struct bench_run *out)
{
	struct randread_ctx *c = arg;
	double t0 = now_seconds();
	int fd = open(c->path, O_RDONLY | O_DIRECT), ret;

	if (fd < 0) {
		cli_error("bench randread: O_DIRECT open %s: %s", c->path,
			  strerror(errno));
		return -1;
	}
	ret = run_readers(c, NULL, fd, t0, out);
	note_cap(c, CFG_ODIRECT);
	close(fd);
	return ret;
}

/* uffd-minimal's source: pages read with O_DIRECT. */
struct file_source {
	int fd;
	size_t page;
};

static int file_fill(void *state, void *page, uint64_t offset)
{
	const struct file_source *f = state;

	return pread(f->fd, page, f->page, (off_t)offset) == (ssize_t)f->page
		       ? 0
		       : -1;
}

/* One server thread per reader, as many reads in flight as readers. */
static int randread_uffd_minimal(void *arg, struct bench_run *out)
{
	struct randread_ctx *c = arg;
	double t0 = now_seconds();
	struct file_source f = {.fd = open(c->path, O_RDONLY | O_DIRECT),
				.page = c->page};
	struct uffd_minimal_source src = {.fill = file_fill, .arg = &f};
	struct uffd_minimal m;
	void *p;
	int ret;

	if (f.fd < 0) {
		cli_error("bench randread: O_DIRECT open %s: %s", c->path,
			  strerror(errno));
		return -1;
	}
	p = uffd_minimal_map(&m, c->size, c->page, c->threads, &src);
	if (p == NULL) {
		cli_error("bench randread: uffd-minimal: %s", strerror(errno));
		close(f.fd);
		return -1;
	}
	ret = run_readers(c, p, -1, t0, out);
	note_cap(c, CFG_UFFD_MINIMAL);
	if (uffd_minimal_unmap(&m) < 0) {
		cli_error("bench randread: uffd-minimal: a read failed");
		ret = -1;
	}
	close(f.fd);
	return ret;
}

/* A faultline run: which row, and the advice it gives (none: 0). */
struct fl_run {
	struct randread_ctx *c;
	int cfg;
	int advice;
};

static int randread_faultline_timed(void *arg, fl_engine *engine,
				    struct bench_run *out)
{
	struct fl_run *f = arg;
	struct randread_ctx *c = f->c;
	const char *row = f->cfg == CFG_FL ? "faultline" : "faultline-random";
	fl_group *group;
	double t0 = now_seconds();
	fl_object *obj;
	int ret = 0;
	void *p = bench_map_in_group(engine, "randread", c->path, c->size,
				     c->limit, &group, &obj);

	if (p == NULL)
		return -1;
	if (f->advice && fl_madvise(engine, p, c->size, f->advice) < 0) {
		cli_error("bench randread: fl_madvise failed: %s",
			  strerror(errno));
		ret = -1;
	}
	if (ret == 0) {
		ret = run_readers(c, p, -1, t0, out);
		note_cap(c, f->cfg);
	}
	return bench_end_group_run("randread", row, engine, group, obj, p,
				   c->size, &c->print_stats[f->cfg], ret);
}

static int randread_faultline(void *arg, struct bench_run *out)
{
	return bench_on_fresh_engine("randread", randread_faultline_timed, arg,
				     out);
}

/* The ratio and figure lines; name is "randread" or "randreadN". */
static void randread_report(const struct randread_ctx *c,
			    const struct bench_config *cfg, const char *name)
{
	char random_name[48], minimal_name[48], figure[80];

	snprintf(random_name, sizeof(random_name), "%s-random", name);
	snprintf(minimal_name, sizeof(minimal_name), "%s-uffd-minimal", name);
	bench_ratio(name, &cfg[CFG_FL], &cfg[CFG_KERNEL]);
	bench_ratio(name, &cfg[CFG_FL], &cfg[CFG_KERNEL_RANDOM]);
	bench_ratio(name, &cfg[CFG_FL], &cfg[CFG_ODIRECT]);
	bench_ratio(name, &cfg[CFG_FL], &cfg[CFG_UFFD_MINIMAL]);
	bench_ratio(random_name, &cfg[CFG_FL_RANDOM], &cfg[CFG_KERNEL_RANDOM]);
	/* The most any engine serving faults from user space gets here. */
	bench_ratio(minimal_name, &cfg[CFG_UFFD_MINIMAL],
		    &cfg[CFG_KERNEL_RANDOM]);
	snprintf(figure, sizeof(figure), "%s-faultline-reads-per-s", name);
	if (cfg[CFG_FL].best > 0)
		bench_figure(figure, (double)c->reads / cfg[CFG_FL].best);
	/* Issue 8's goals, without advice. */
	snprintf(figure, sizeof(figure), "%s/kernel-random", name);
	bench_target(figure,
		     bench_ratio_value(&cfg[CFG_FL], &cfg[CFG_KERNEL_RANDOM]),
		     1.0);
	if (c->threads == 1)
		bench_target("randread/odirect",
			     bench_ratio_value(&cfg[CFG_FL], &cfg[CFG_ODIRECT]),
			     0.85);
}

static int randread_prepare(struct randread_ctx *c, struct bench_config *cfg,
			    const struct bench_opts *o, struct tmpdata *data)
{
	int fd;

	if (kcg_create(&c->cg, c->limit) < 0)
		cfg[CFG_KERNEL].skipped = cfg[CFG_KERNEL_RANDOM].skipped = 1;
	if (tmpdata_create(data, o->dir, "bench", c->size, RANDREAD_SEED) < 0) {
		kcg_remove(&c->cg);
		return -1;
	}
	c->path = data->path;
	if (path_is_tmpfs(data->path))
		printf("  %s is on tmpfs, not a disk: no run is cold\n",
		       o->dir);
	fd = open(data->path, O_RDONLY | O_DIRECT);
	if (fd < 0) {
		printf("  odirect and uffd-minimal baselines: skipped "
		       "(O_DIRECT "
		       "not supported "
		       "in %s)\n",
		       o->dir);
		cfg[CFG_ODIRECT].skipped = 1;
		cfg[CFG_UFFD_MINIMAL].skipped = 1;
	} else {
		close(fd);
	}
	return 0;
}

int bench_randread(const struct bench_opts *o)
{
	struct randread_ctx c = {
		.size = o->size ? o->size : 256ULL << 20,
		.page = o->page,
		.threads = o->threads ? o->threads : 1,
		.print_stats = {[CFG_FL] = 1, [CFG_FL_RANDOM] = 1}};
	struct fl_run plain = {&c, CFG_FL, 0},
		      random = {&c, CFG_FL_RANDOM, MADV_RANDOM};
	struct bench_config cfg[NR_CFG] = {
		[CFG_KERNEL] = {"kernel", randread_kernel, &c, 0, 0, {0}},
		[CFG_KERNEL_RANDOM] = {"kernel-random",
				       randread_kernel_random,
				       &c,
				       0,
				       0,
				       {0}},
		[CFG_ODIRECT] = {"odirect", randread_odirect, &c, 0, 0, {0}},
		[CFG_UFFD_MINIMAL] =
			{"uffd-minimal", randread_uffd_minimal, &c, 0, 0, {0}},
		[CFG_FL] = {"faultline", randread_faultline, &plain, 0, 0, {0}},
		[CFG_FL_RANDOM] = {"faultline-random",
				   randread_faultline,
				   &random,
				   0,
				   0,
				   {0}},
	};
	uint64_t pages = c.size / o->page;
	struct tmpdata data;
	char buf[32], lim[32], name[32];
	int i, ret = -1;

	if (c.threads > 1)
		snprintf(name, sizeof(name), "randread%u", c.threads);
	else
		snprintf(name, sizeof(name), "randread");
	c.limit = bench_quarter_limit(o, c.size);
	/* 0.375 reads per page: most pages read once, some again, and
	 * more distinct pages (about 0.31 of the file) than the limit
	 * holds. */
	c.reads = pages / 4 + pages / 8;
	if (c.reads < c.threads)
		c.reads = c.threads;
	bench_title(o, name,
		    "random 4 KiB reads (one word per random page) over a file "
		    "four times the limit");
	printf("  size %s, memory limit %s (faultline group max; kernel: "
	       "memory cgroup), %llu reads by %u thread%s (each its own "
	       "sequence), caches dropped before every run\n",
	       format_size(c.size, buf, sizeof(buf)),
	       format_size(c.limit, lim, sizeof(lim)),
	       (unsigned long long)c.reads, c.threads,
	       c.threads == 1 ? "" : "s");
	if (randread_prepare(&c, cfg, o, &data) < 0)
		return -1;
	if (bench_run_all(o, cfg, NR_CFG, expected_total(&c), 1) == 0) {
		bench_table(cfg, NR_CFG, c.reads, c.reads * o->page);
		for (i = 0; i < NR_CFG; i++)
			if (c.capped[i])
				printf("  # %s: stopped at the %.0f s cap in "
				       "some run; its time is extrapolated "
				       "from the reads done (checked)\n",
				       cfg[i].name, RANDREAD_CAP_S);
		if (!cfg[CFG_KERNEL].skipped)
			bench_kernel_summary(c.kernel_faults, c.kernel_done);
		randread_report(&c, cfg, name);
		ret = 0;
	}
	tmpdata_remove(&data);
	kcg_remove(&c.cg);
	return ret;
}
