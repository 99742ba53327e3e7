// SPDX-License-Identifier: MIT
/*
 * bench swap: an anonymous working set twice its memory limit.  Every page
 * is written once in a seeded random order (its first half seeded random
 * words, its second half one repeated word, so that it compresses about
 * 2:1), then every page is read once in another random order and checked
 * in full.  Configurations:
 *   kernel               plain anonymous mmap in a memory cgroup of the same
 *                        limit with swap allowed (v2 memory.max with
 *                        memory.swap.max, v1 memory.limit_in_bytes with
 *                        memory.memsw.limit_in_bytes unset), swapping to a
 *                        swap file this bench makes (fallocate, mkswap) and
 *                        turns on only for the kernel's runs;
 *   faultline            an anonymous mapping in a group of the same max
 *                        whose swap device is a swap file;
 *   faultline-compressed the same with compressed memory (lz4, else zstd;
 *                        a pool of a quarter of the limit, which the
 *                        engine does not charge to the group) in front of
 *                        the swap file.
 * A fresh engine every faultline run.  The kernel's swap file never
 * outlives the bench: a guardian process turns it off and removes it
 * whatever ends the bench (error, SIGINT, SIGKILL, the watchdog).
 */
#define _GNU_SOURCE /* pipe2, fallocate */
#include "bench.h"
#include "../tools/cli_util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/swap.h>
#include <sys/wait.h>
#include <unistd.h>

#define SWAP_SEED   0x737761702d62656eULL
#define SWAP_REPEAT 0x5a17c0de00000000ULL /* the repeated half's word */
#define SWAP_RIGHT  0x5a5a600dULL /* a run's checksum: all pages right */
#define ORDER_SEED  0x2545f4914f6cdd1dULL

enum { CFG_KERNEL, CFG_FL, CFG_FL_COMPRESSED, NR_CFG };

/* What one run did. */
struct swap_result {
	double write_s, read_s;
	uint64_t bad_pages;
	uint64_t swap_outs, swap_ins; /* pages */
	uint64_t major_faults;	      /* kernel runs: swap-in faults */
};

/*
 * The kernel's swap file: made once, turned on for each kernel run only
 * (the faultline rows run with no kernel swap), removed at the end.
 */
struct kswap {
	struct tmpdata td; /* td.path: the swap file */
	uint64_t bytes;
	int guard_fd; /* write end of the guardian's pipe; -1: none */
	pid_t guardian;
	int on;
};

struct swap_ctx {
	uint64_t size, limit, pool;
	size_t page;
	uint64_t pages;
	uint32_t *write_order, *read_order; /* page numbers, each once */
	int compressed;			    /* the faultline row being run */
	int print_stats[NR_CFG];
	struct kcg cg;
	struct kswap ks;
	struct tmpdata fl;	  /* td.path: faultline's swap file */
	fl_swap *file_dev, *zdev; /* the run's devices (zdev: compressed) */
	struct swap_result back;  /* the last run's, from the child */
	struct swap_result best[NR_CFG]; /* each configuration's best run */
	double best_time[NR_CFG];
};

/* ------------------------------------------------------------------------
 * The work: random page writes, then random page reads, all verified
 * ------------------------------------------------------------------------ */

static void fill_page(uint64_t *w, uint64_t n, size_t words)
{
	size_t k;

	for (k = 0; k < words / 2; k++)
		w[k] = pattern_word(SWAP_SEED, n * words + k);
	for (; k < words; k++)
		w[k] = SWAP_REPEAT ^ n;
}

static int page_right(const uint64_t *w, uint64_t n, size_t words)
{
	size_t k;

	for (k = 0; k < words / 2; k++)
		if (w[k] != pattern_word(SWAP_SEED, n * words + k))
			return 0;
	for (; k < words; k++)
		if (w[k] != (SWAP_REPEAT ^ n))
			return 0;
	return 1;
}

/* Each page number once, in a seeded random order (Fisher-Yates). */
static uint32_t *random_order(uint64_t pages, uint64_t seed)
{
	uint32_t *o = malloc(pages * sizeof(*o));
	uint64_t i, s = seed;

	if (o == NULL)
		return NULL;
	for (i = 0; i < pages; i++)
		o[i] = (uint32_t)i;
	for (i = pages - 1; i > 0; i--) {
		uint64_t j = bench_random(&s) % (i + 1);
		uint32_t t = o[i];

		o[i] = o[j];
		o[j] = t;
	}
	return o;
}

/* Write every page of p, then read and check every page; timed. */
static void run_swap(const struct swap_ctx *c, char *p, struct swap_result *res,
		     struct bench_run *out)
{
	size_t words = c->page / 8;
	double t0 = now_seconds(), t1;
	uint64_t i;

	memset(res, 0, sizeof(*res));
	for (i = 0; i < c->pages; i++) {
		uint64_t n = c->write_order[i];

		fill_page((uint64_t *)(p + n * c->page), n, words);
	}
	t1 = now_seconds();
	for (i = 0; i < c->pages; i++) {
		uint64_t n = c->read_order[i];

		if (!page_right((const uint64_t *)(p + n * c->page), n, words))
			res->bad_pages++;
	}
	res->read_s = now_seconds() - t1;
	res->write_s = t1 - t0;
	out->seconds = res->write_s + res->read_s;
	out->checksum = res->bad_pages ? res->bad_pages : SWAP_RIGHT;
}

/*
 * A run pages its whole working set through a disk at random: tens of
 * seconds to minutes on a loaded machine.  Each run gets the watchdog's
 * full time (300 s and half a second per MiB), not the scenario as a
 * whole, so that --runs or a larger --size does not trip it.
 */
static void rearm_watchdog(const struct swap_ctx *c)
{
	alarm(300 + (unsigned)(c->size >> 21));
}

static void keep_best(struct swap_ctx *c, int cfg,
		      const struct swap_result *res,
		      const struct bench_run *out)
{
	if (c->best_time[cfg] == 0 || out->seconds < c->best_time[cfg]) {
		c->best_time[cfg] = out->seconds;
		c->best[cfg] = *res;
	}
}

/* ------------------------------------------------------------------------
 * The kernel's swap file
 * ------------------------------------------------------------------------ */

/* What the guardian removes. */
struct guarded {
	const struct tmpdata *swap; /* the kernel's swap file */
	const char *cgdir;	    /* the memory cgroup */
	const struct tmpdata *fl;   /* faultline's swap file */
};

/*
 * The guardian: out of the bench's session (a terminal's SIGINT does not
 * reach it) and ignoring the usual signals, it waits for the pipe to
 * close (kswap_remove, or the bench's end however it came), then turns
 * the swap file off, retrying while a dying kernel child still holds
 * slots, and removes it, and the memory cgroup (which the bench's own
 * cleanup cannot remove while that child lives).  Unless kswap_remove
 * said "done" first (a byte on the pipe: the bench goes on), the bench
 * is gone and faultline's swap file is removed too (after a SIGKILL).
 * Only system calls: it is a fork of a process that may have threads.
 */
static void guardian(int rfd, const struct guarded *g)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE};
	ssize_t n;
	int fd, i;
	char b;

	setsid();
	for (i = 0; i < (int)(sizeof(sigs) / sizeof(sigs[0])); i++)
		signal(sigs[i], SIG_IGN);
	/* Hold none of the bench's files (its standard output's pipe). */
	fd = open("/dev/null", O_RDWR);
	for (i = 0; i < 1024; i++)
		if (i != rfd && i != fd)
			close(i);
	while ((n = read(rfd, &b, 1)) < 0 && errno == EINTR)
		;
	for (i = 0; i < 600; i++) {
		if (swapoff(g->swap->path) == 0 || errno == EINVAL ||
		    errno == ENOENT)
			break;
		usleep(100 * 1000);
	}
	unlink(g->swap->path);
	rmdir(g->swap->dir);
	for (i = 0; i < 100; i++) {
		if (rmdir(g->cgdir) == 0 || errno == ENOENT)
			break;
		usleep(100 * 1000);
	}
	if (n != 1) {
		unlink(g->fl->path);
		rmdir(g->fl->dir);
	}
	_exit(0);
}

static int guardian_start(struct kswap *ks, const struct guarded *g)
{
	int pfd[2];

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	fflush(stdout);
	fflush(stderr);
	ks->guardian = fork();
	if (ks->guardian < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (ks->guardian == 0)
		guardian(pfd[0], g);
	close(pfd[0]);
	ks->guard_fd = pfd[1];
	return 0;
}

/* Run mkswap on path, quietly.  0, or -1 with a reason in why. */
static int run_mkswap(const char *path, char *why, size_t len)
{
	static const char *const where[] = {"/usr/sbin/mkswap", "/sbin/mkswap"};
	int status;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		snprintf(why, len, "fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		size_t i;

		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		for (i = 0; i < sizeof(where) / sizeof(where[0]); i++)
			execl(where[i], "mkswap", path, (char *)NULL);
		execlp("mkswap", "mkswap", path, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
		snprintf(why, len, "mkswap not found");
	else
		snprintf(why, len, "mkswap failed");
	return -1;
}

/* A file of bytes, allocated on the disk (fallocate, else zeros). */
static int allocate_file(const char *path, uint64_t bytes)
{
	static char zeros[1 << 16];
	uint64_t off;
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	if (fd < 0)
		return -1;
	if (fallocate(fd, 0, 0, (off_t)bytes) < 0) {
		for (off = 0; off < bytes; off += sizeof(zeros))
			if (write(fd, zeros, sizeof(zeros)) !=
			    (ssize_t)sizeof(zeros))
				goto fail;
	}
	if (fsync(fd) < 0)
		goto fail;
	return close(fd);
fail:
	if (errno == 0)
		errno = ENOSPC;
	close(fd);
	return -1;
}

static void kswap_remove(struct kswap *ks)
{
	if (ks->on && swapoff(ks->td.path) == 0)
		ks->on = 0;
	tmpdata_remove(&ks->td);
	if (ks->guard_fd >= 0) {
		/* "done": the bench goes on (see guardian). */
		if (write(ks->guard_fd, "d", 1) != 1)
			cli_error("bench swap: guardian: %s", strerror(errno));
		close(ks->guard_fd);
		ks->guard_fd = -1;
		while (waitpid(ks->guardian, NULL, 0) < 0 && errno == EINTR)
			;
	}
}

/*
 * Make a swap file of bytes under dir, with its guardian (which removes
 * the memory cgroup cgdir too, and fl if the bench dies), and check that
 * swapon takes it (turned off again).  0, or -1 with the reason in why
 * (nothing left behind).
 */
static int kswap_create(struct kswap *ks, const char *dir, const char *cgdir,
			const struct tmpdata *fl, uint64_t bytes, char *why,
			size_t len)
{
	struct guarded g = {&ks->td, cgdir, fl};

	memset(ks, 0, sizeof(*ks));
	ks->guard_fd = -1;
	ks->bytes = bytes;
	if (snprintf(ks->td.dir, sizeof(ks->td.dir),
		     "%s/faultline-kswap.XXXXXX",
		     dir) >= (int)sizeof(ks->td.dir) ||
	    mkdtemp(ks->td.dir) == NULL) {
		snprintf(why, len, "cannot make a directory in %s: %s", dir,
			 strerror(errno));
		ks->td.dir[0] = '\0';
		return -1;
	}
	snprintf(ks->td.path, sizeof(ks->td.path), "%s/swapfile", ks->td.dir);
	tmpdata_track(&ks->td);
	if (path_is_tmpfs(ks->td.dir)) {
		snprintf(why, len, "%s is tmpfs: a swap file needs a disk",
			 dir);
		goto fail;
	}
	if (allocate_file(ks->td.path, bytes) < 0) {
		snprintf(why, len, "cannot make a swap file in %s: %s", dir,
			 strerror(errno));
		goto fail;
	}
	if (guardian_start(ks, &g) < 0) {
		snprintf(why, len, "fork: %s", strerror(errno));
		goto fail;
	}
	if (run_mkswap(ks->td.path, why, len) < 0)
		goto fail;
	if (swapon(ks->td.path, 0) < 0) {
		snprintf(why, len, "swapon: %s", strerror(errno));
		goto fail;
	}
	ks->on = 1;
	if (swapoff(ks->td.path) < 0) {
		snprintf(why, len, "swapoff: %s", strerror(errno));
		goto fail;
	}
	ks->on = 0;
	return 0;
fail:
	kswap_remove(ks);
	return -1;
}

/* ------------------------------------------------------------------------
 * The kernel row
 * ------------------------------------------------------------------------ */

/* The system's pages swapped in and out so far (/proc/vmstat). */
static void vmstat_swap(uint64_t *in, uint64_t *out)
{
	FILE *f = fopen("/proc/vmstat", "r");
	char name[64];
	unsigned long long v;

	*in = *out = 0;
	if (f == NULL)
		return;
	while (fscanf(f, "%63s %llu", name, &v) == 2) {
		if (!strcmp(name, "pswpin"))
			*in = v;
		else if (!strcmp(name, "pswpout"))
			*out = v;
	}
	fclose(f);
}

static uint64_t major_faults(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_SELF, &ru) < 0 ? 0 : (uint64_t)ru.ru_majflt;
}

/* In the child, in the cgroup. */
static int swap_kernel_child(void *arg, struct bench_run *out)
{
	struct swap_ctx *c = arg;
	uint64_t in0, out0, in1, out1, maj = major_faults();
	char *p = mmap(NULL, c->size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		cli_error("bench swap: mmap failed: %s", strerror(errno));
		return -1;
	}
	vmstat_swap(&in0, &out0);
	run_swap(c, p, &c->back, out);
	vmstat_swap(&in1, &out1);
	c->back.swap_ins = in1 - in0;
	c->back.swap_outs = out1 - out0;
	c->back.major_faults = major_faults() - maj;
	munmap(p, c->size);
	return 0;
}

static int swap_kernel(void *arg, struct bench_run *out)
{
	struct swap_ctx *c = arg;
	int ret;

	rearm_watchdog(c);
	if (swapon(c->ks.td.path, 0) < 0) {
		cli_error("bench swap: swapon %s: %s", c->ks.td.path,
			  strerror(errno));
		return -1;
	}
	c->ks.on = 1;
	ret = kcg_run(&c->cg, swap_kernel_child, c, out, &c->back,
		      sizeof(c->back));
	if (swapoff(c->ks.td.path) < 0) {
		cli_error("bench swap: swapoff %s: %s", c->ks.td.path,
			  strerror(errno));
		ret = -1;
	} else {
		c->ks.on = 0;
	}
	if (ret == 0)
		keep_best(c, CFG_KERNEL, &c->back, out);
	return ret;
}

/* Allow the cgroup swap: v2 memory.swap.max; v1 leaves memsw unset. */
static int kcg_allow_swap(const struct kcg *cg)
{
	char path[sizeof(cg->td.dir) + 32];
	int fd, ok;

	if (strcmp(cg->limit_file, "memory.max") != 0)
		return 0;
	snprintf(path, sizeof(path), "%s/memory.swap.max", cg->td.dir);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ok = write(fd, "max", 3) == 3;
	close(fd);
	return ok ? 0 : -1;
}

/* Make the cgroup and the swap file; -1 after printing why it is skipped. */
static int kernel_setup(struct swap_ctx *c, const char *dir)
{
	char why[4200], b[32];

	if (kcg_create(&c->cg, c->limit) < 0)
		return -1;
	if (kcg_allow_swap(&c->cg) < 0) {
		printf("  kernel baseline: skipped (cannot set "
		       "memory.swap.max: %s)\n",
		       strerror(errno));
		kcg_remove(&c->cg);
		return -1;
	}
	/*
	 * Twice the working set: the kernel keeps a swapped-in page's slot
	 * (a clean copy, no rewrite at the next eviction) only while its
	 * swap is less than half full, and the baseline should have its
	 * best case.
	 */
	if (kswap_create(&c->ks, dir, c->cg.td.dir, &c->fl, 2 * c->size, why,
			 sizeof(why)) < 0) {
		printf("  kernel baseline: skipped (%s)\n", why);
		kcg_remove(&c->cg);
		return -1;
	}
	printf("  kernel: cgroup %s %s, swap %s; swap file %s (%s, twice the "
	       "working set) made by fallocate and mkswap, on for the "
	       "kernel's runs only\n",
	       strcmp(c->cg.limit_file, "memory.max") ? "v1" : "v2",
	       c->cg.limit_file,
	       strcmp(c->cg.limit_file, "memory.max")
		       ? "unlimited (memory.memsw.limit_in_bytes unset)"
		       : "unlimited (memory.swap.max=max)",
	       c->ks.td.path, format_size(c->ks.bytes, b, sizeof(b)));
	return 0;
}

/* ------------------------------------------------------------------------
 * The faultline rows
 * ------------------------------------------------------------------------ */

static const char *const row_name[NR_CFG] = {"kernel", "faultline",
					     "faultline-compressed"};

#if defined(FL_HAVE_LZ4)
#define SWAP_ALGORITHM FL_COMPRESS_LZ4
#define SWAP_LEVEL     0
#define SWAP_ALG_NAME  "lz4"
#elif defined(FL_HAVE_ZSTD)
#define SWAP_ALGORITHM FL_COMPRESS_ZSTD
#define SWAP_LEVEL     1
#define SWAP_ALG_NAME  "zstd level 1"
#endif

/* The group's swap device: a swap file, with compressed memory in front of
 * it for the compressed row.  NULL after printing why. */
static fl_swap *make_swap(struct swap_ctx *c, fl_engine *engine)
{
	/* As large as the kernel's (twice the working set): both keep a
	 * page's slot after a read swap-in while swap is less than half
	 * full.  Sparse: grown as written. */
	fl_swap *s = fl_swap_file_create(engine, c->fl.path, 2 * c->size);

	c->file_dev = s;
	c->zdev = NULL;

	if (s == NULL) {
		cli_error("bench swap: fl_swap_file_create %s: %s", c->fl.path,
			  strerror(errno));
		return NULL;
	}
#ifdef SWAP_ALGORITHM
	if (c->compressed) {
		s = fl_swap_compressed_create(engine, SWAP_ALGORITHM,
					      SWAP_LEVEL, c->pool, s);
		c->zdev = s;
		if (s == NULL)
			cli_error("bench swap: fl_swap_compressed_create: %s",
				  strerror(errno));
	}
#endif
	return s;
}

/* "  # ROW (first run): WHAT device: ..." from fl_swap_stats. */
static void print_device_stats(fl_swap *dev, size_t page, const char *row,
			       const char *what)
{
	struct fl_swap_stats s;
	char b[32], used[32];

	if (dev == NULL || fl_swap_stats(dev, &s) < 0)
		return;
	printf("  # %s (first run): %s device: pages written %llu read %llu; "
	       "now %s stored in %s of slots; errors %llu+%llu "
	       "(write+read)\n",
	       row, what, (unsigned long long)s.pages_written,
	       (unsigned long long)s.pages_read,
	       format_size(s.bytes_stored, b, sizeof(b)),
	       format_size(s.slots_used * page, used, sizeof(used)),
	       (unsigned long long)s.write_errors,
	       (unsigned long long)s.read_errors);
}

/* Print the row's swap figures of its first run. */
static void print_swap_stats(const struct swap_ctx *c, fl_group *group,
			     const char *row)
{
	struct fl_group_stats s;
	char u[32];

	if (fl_group_stats(group, &s) < 0)
		return;
	printf("  # %s (first run): swap-outs %llu (and %llu dropped clean, "
	       "their slots kept from a read swap-in) swap-ins %llu, swap "
	       "usage at the end %s\n",
	       row, (unsigned long long)s.swap_outs,
	       (unsigned long long)s.swap_outs_clean,
	       (unsigned long long)s.swap_ins,
	       format_size(s.swap_usage, u, sizeof(u)));
	print_device_stats(c->zdev, c->page, row, "compressed");
	print_device_stats(c->file_dev, c->page, row, "file");
}

/* After the run: its swap figures, the first run's summary, the limit. */
static int end_fl_run(struct swap_ctx *c, fl_engine *engine, fl_group *group,
		      struct swap_result *res, int ret)
{
	int cfg = c->compressed ? CFG_FL_COMPRESSED : CFG_FL;
	struct fl_group_stats s;
	char label[64];

	if (fl_group_stats(group, &s) == 0) {
		res->swap_outs = s.swap_outs;
		res->swap_ins = s.swap_ins;
	}
	if (ret == 0 && c->print_stats[cfg]) {
		bench_engine_summary(engine,
				     cfg == CFG_FL ? "(first run)"
						   : "compressed (first run)");
		snprintf(label, sizeof(label), "%s (first run)", row_name[cfg]);
		bench_group_summary(group, label);
		print_swap_stats(c, group, row_name[cfg]);
		c->print_stats[cfg] = 0;
	}
	if (bench_group_check(group, "swap") < 0)
		ret = -1;
	return ret;
}

static int swap_fl_timed(void *arg, fl_engine *engine, struct bench_run *out)
{
	struct swap_ctx *c = arg;
	struct swap_result res;
	fl_group *group = bench_group_create(engine, "swap", c->limit);
	fl_swap *s;
	char *p;
	int ret;

	if (group == NULL || (s = make_swap(c, engine)) == NULL)
		return -1;
	if (fl_group_set_swap(group, s) < 0) {
		cli_error("bench swap: fl_group_set_swap: %s", strerror(errno));
		return -1;
	}
	p = fl_mmap_group(engine, group, NULL, c->size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	if (p == MAP_FAILED) {
		cli_error("bench swap: fl_mmap_group: %s", strerror(errno));
		return -1;
	}
	run_swap(c, p, &res, out);
	ret = end_fl_run(c, engine, group, &res, 0);
	if (fl_munmap(engine, p, c->size) < 0) {
		cli_error("bench swap: fl_munmap: %s", strerror(errno));
		ret = -1;
	}
	if (ret == 0)
		keep_best(c, c->compressed ? CFG_FL_COMPRESSED : CFG_FL, &res,
			  out);
	return ret;
}

/* A run on a fresh engine; its swap file is removed after. */
static int swap_fl_run(struct swap_ctx *c, int compressed,
		       struct bench_run *out)
{
	int ret;

	c->compressed = compressed;
	rearm_watchdog(c);
	ret = bench_on_fresh_engine("swap", swap_fl_timed, c, out);
	if (unlink(c->fl.path) < 0 && errno != ENOENT) {
		cli_error("bench swap: cannot remove %s: %s", c->fl.path,
			  strerror(errno));
		ret = -1;
	}
	return ret;
}

static int swap_fl(void *arg, struct bench_run *out)
{
	return swap_fl_run(arg, 0, out);
}

static int swap_fl_compressed(void *arg, struct bench_run *out)
{
	return swap_fl_run(arg, 1, out);
}

/* Whether this build can run the compressed row, and with what. */
static void faultline_setup(struct swap_ctx *c, struct bench_config *cfg)
{
	char b[32];

	printf("  faultline: swap file %s (twice the working set, as the "
	       "kernel's; sparse, grown as written)\n",
	       format_size(2 * c->size, b, sizeof(b)));
#ifdef SWAP_ALGORITHM
	printf("  faultline-compressed: %s, pool %s (a quarter of the limit, "
	       "not charged to the group) in front of the swap file\n",
	       SWAP_ALG_NAME, format_size(c->pool, b, sizeof(b)));
#else
	printf("  faultline-compressed: skipped (built without lz4 and "
	       "zstd)\n");
	cfg[CFG_FL_COMPRESSED].skipped = 1;
#endif
}

/* ------------------------------------------------------------------------
 * The scenario
 * ------------------------------------------------------------------------ */

static void swap_table(const struct swap_ctx *c, const struct bench_config *cfg)
{
	int i;

	printf("  %-20s %10s %10s %10s %10s %10s %10s\n", "config", "seconds",
	       "write s", "read s", "us/page", "swap-outs", "swap-ins");
	for (i = 0; i < NR_CFG; i++) {
		const struct swap_result *r = &c->best[i];

		if (cfg[i].skipped || cfg[i].best < 0)
			continue;
		printf("  %-20s %10.3f %10.3f %10.3f %10.3f %10llu %10llu\n",
		       cfg[i].name, cfg[i].best, r->write_s, r->read_s,
		       cfg[i].best * 1e6 / (double)c->pages,
		       (unsigned long long)r->swap_outs,
		       (unsigned long long)r->swap_ins);
	}
	if (!cfg[CFG_KERNEL].skipped && cfg[CFG_KERNEL].best >= 0)
		printf("  # kernel (best run): swap-outs and swap-ins from "
		       "/proc/vmstat (pswpout, pswpin), %llu major faults\n",
		       (unsigned long long)c->best[CFG_KERNEL].major_faults);
}

/* A private directory for faultline's swap file, removed at the end. */
static int fl_swapdir_create(struct tmpdata *td, const char *dir)
{
	if (snprintf(td->dir, sizeof(td->dir), "%s/faultline-swap.XXXXXX",
		     dir) >= (int)sizeof(td->dir) ||
	    mkdtemp(td->dir) == NULL) {
		cli_error("bench swap: cannot make a directory in %s: %s", dir,
			  strerror(errno));
		td->dir[0] = '\0';
		return -1;
	}
	snprintf(td->path, sizeof(td->path), "%s/swapfile", td->dir);
	tmpdata_track(td);
	return 0;
}

static void swap_report(struct swap_ctx *c, struct bench_config *cfg)
{
	swap_table(c, cfg);
	bench_ratio("swap", &cfg[CFG_FL], &cfg[CFG_KERNEL]);
	bench_ratio("swap-compressed", &cfg[CFG_FL_COMPRESSED],
		    &cfg[CFG_KERNEL]);
	bench_target("swap/kernel",
		     bench_ratio_value(&cfg[CFG_FL], &cfg[CFG_KERNEL]), 1.0);
}

int bench_swap(const struct bench_opts *o)
{
	struct swap_ctx c = {.size = o->size ? o->size : 256ULL << 20,
			     .page = o->page,
			     .print_stats = {1, 1, 1}};
	struct bench_config cfg[NR_CFG] = {
		[CFG_KERNEL] = {"kernel", swap_kernel, &c, 0, 0, {0}},
		[CFG_FL] = {"faultline", swap_fl, &c, 0, 0, {0}},
		[CFG_FL_COMPRESSED] = {"faultline-compressed",
				       swap_fl_compressed,
				       &c,
				       0,
				       0,
				       {0}},
	};
	char buf[32], lim[32];
	int ret = -1;

	c.limit = c.size / 2 / c.page * c.page;
	if (c.limit == 0)
		c.limit = c.page;
	c.pool = c.limit / 4 / c.page * c.page;
	c.pages = c.size / c.page;
	bench_title(o, "swap",
		    "random page writes then verified random page reads of "
		    "anonymous memory twice the limit");
	printf("  working set %s, memory limit %s (faultline group max; "
	       "kernel: memory cgroup), pages half random, half repeated\n",
	       format_size(c.size, buf, sizeof(buf)),
	       format_size(c.limit, lim, sizeof(lim)));
	c.write_order = random_order(c.pages, ORDER_SEED);
	c.read_order = random_order(c.pages, ORDER_SEED ^ SWAP_SEED);
	if (c.write_order == NULL || c.read_order == NULL) {
		cli_error("bench swap: out of memory");
		goto out;
	}
	if (fl_swapdir_create(&c.fl, o->dir) < 0)
		goto out;
	if (kernel_setup(&c, o->dir) < 0)
		cfg[CFG_KERNEL].skipped = 1;
	faultline_setup(&c, cfg);
	if (bench_run_all(o, cfg, NR_CFG, SWAP_RIGHT, 0) == 0) {
		swap_report(&c, cfg);
		ret = 0;
	}
	if (!cfg[CFG_KERNEL].skipped) {
		kcg_remove(&c.cg);
		kswap_remove(&c.ks);
	}
	tmpdata_remove(&c.fl);
out:
	free(c.write_order);
	free(c.read_order);
	return ret;
}
