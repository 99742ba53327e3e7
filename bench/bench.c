// SPDX-License-Identifier: MIT
/*
 * `faultline bench`: argument parsing, scenario dispatch, and what every
 * scenario shares: interleaved best-of-N runs with checked checksums, the
 * table and ratio lines, dropping caches and making engines.
 */
#include "bench.h"
#include "../tools/cli_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct scenario {
	const char *name;
	int (*run)(const struct bench_opts *o);
	unsigned runs; /* default runs: short runs need more to be steady */
	const char *what;
};

static const struct scenario scenarios[] = {
	{"anon", bench_anon, 5,
	 "first touch (a write) of every page of an anonymous mapping\n"
	 "                (default 512M, 5 runs); baseline: kernel"},
	{"minor", bench_minor, 10,
	 "in-order read, one word per page, of pages already in the page\n"
	 "                cache, through a second mapping (default 512M, 10 "
	 "runs);\n"
	 "                baseline: kernel (mmap of a cached file)"},
	{"livelock", bench_livelock, 1,
	 "group B read-faults pages of O (MAP_SHARED, one fault per\n"
	 "                page) while group A (max 1/16 of O, OOM policy "
	 "wait),\n"
	 "                stuck at its limit, waits to copy them "
	 "(MAP_PRIVATE);\n"
	 "                then A's max is raised and A must complete "
	 "(default 16M,\n"
	 "                1 run); B's fault latency with A idle and "
	 "with A stuck"},
	{"seqscan", bench_seqscan, 3,
	 "cold sequential read of a file, one word per 64 bytes, under a\n"
	 "                memory limit of a quarter of the file (default "
	 "1G, 3 runs;\n"
	 "                caches dropped before every run); baselines: "
	 "kernel\n"
	 "                (mmap in a memory cgroup of the same limit), "
	 "odirect\n"
	 "                (O_DIRECT pread, 1 MiB)"},
	{"randread", bench_randread, 3,
	 "random 4 KiB reads, one word per random page (0.375 reads per\n"
	 "                page of the file), under a memory limit of a "
	 "quarter of\n"
	 "                the file; faultline with no advice, and "
	 "faultline-random\n"
	 "                with MADV_RANDOM (default 256M, 3 runs; caches "
	 "dropped\n"
	 "                before every run; a run stops at 5 s and its "
	 "time is\n"
	 "                extrapolated); --threads N: N readers, each its "
	 "own\n"
	 "                sequence (lines named randreadN); baselines: "
	 "kernel and\n"
	 "                kernel-random (mmap, plain and MADV_RANDOM, in a "
	 "memory\n"
	 "                cgroup of the same limit), odirect (O_DIRECT "
	 "pread, N\n"
	 "                threads), uffd-minimal (the least a userfaultfd "
	 "server\n"
	 "                does: a thread per reader, O_DIRECT pread, "
	 "UFFDIO_COPY);\n"
	 "                `all` runs it with 1 and 4 threads"},
	{"randwrite", bench_randwrite, 3,
	 "random page writes, one word per random page (0.375 writes per\n"
	 "                page of the file), to a MAP_SHARED mapping under a "
	 "memory\n"
	 "                limit of a quarter of the file, then msync; no "
	 "advice\n"
	 "                (default 256M, 3 runs; caches dropped before every "
	 "run;\n"
	 "                every write read back); baseline: kernel (mmap in "
	 "a\n"
	 "                memory cgroup of the same limit)"},
	{"mixed", bench_mixed, 3,
	 "one thread scans the file once (one word per 64 bytes) while\n"
	 "                another reads random pages until the scan ends, "
	 "under a\n"
	 "                memory limit of a quarter of the file, no advice "
	 "(default\n"
	 "                512M, 3 runs; caches dropped before every run); "
	 "baseline:\n"
	 "                kernel (mmap in a memory cgroup of the same "
	 "limit)"},
	{"remote", bench_remote, 3,
	 "page reads of an object in Redis (FL_REDIS_URL; beside it the\n"
	 "                cluster of FL_REDIS_CLUSTER_URL; skipped without "
	 "them):\n"
	 "                sequential (one word per 64 bytes) and 8192 "
	 "random pages\n"
	 "                (MADV_RANDOM) of a new engine's mapping "
	 "(default 256M, 3\n"
	 "                runs); baseline: direct (plain hiredis: pipelined "
	 "GETs of\n"
	 "                the blocks, or one GET of the block or GETRANGE "
	 "of the\n"
	 "                page at a time), uffd-minimal (one GETRANGE a "
	 "fault)"},
	{"retry", bench_retry, 3,
	 "map/write/unmap loop of a 16-page anonymous mapping (B, 2 s)\n"
	 "                while A reads random pages through a 10 ms-per-read "
	 "store\n"
	 "                (default 64M, 3 runs); configurations: default, "
	 "locked (map\n"
	 "                lock held across store reads), idle (A not "
	 "running)"},
	{"swap", bench_swap, 1,
	 "random page writes, then random page reads, every page\n"
	 "                checked, of anonymous memory twice its limit "
	 "(default\n"
	 "                256M, limit half of it, 1 run); faultline "
	 "with a swap\n"
	 "                file, and with compressed memory in front of "
	 "it; baseline:\n"
	 "                kernel (anonymous mmap in a memory cgroup of "
	 "the same\n"
	 "                limit, swapping to a swap file the bench makes "
	 "and\n"
	 "                removes)"},
};

#define NR_SCENARIOS (int)(sizeof(scenarios) / sizeof(scenarios[0]))

void bench_usage(FILE *f)
{
	int i;

	fprintf(f, "usage: faultline bench SCENARIO [--size SIZE] [--dir DIR] "
		   "[--runs N]\n"
		   "                       [--threads N]\n\n"
		   "Run a benchmark scenario of BENCHMARKS.md: faultline and "
		   "its baselines\n"
		   "on the same data in the same run, a table row per "
		   "configuration, then\n"
		   "\"ratio: SCENARIO/BASELINE=VALUE\" lines (faultline's "
		   "throughput divided\n"
		   "by the baseline's: higher is better).\n\nscenarios:\n");
	for (i = 0; i < NR_SCENARIOS; i++)
		fprintf(f, "  %-13s %s\n", scenarios[i].name,
			scenarios[i].what);
	fprintf(f, "  %-13s %s\n", "all", "every scenario above, in turn");
	fprintf(f, "\n  --size SIZE   data size, K/M/G suffixes (default: "
		   "per scenario)\n"
		   "  --dir DIR     where to make temporary data files; a "
		   "real disk, not\n"
		   "                tmpfs (default /var/tmp)\n"
		   "  --runs N      runs per configuration, best reported "
		   "(1-100; default:\n                per scenario)\n"
		   "  --threads N   reader threads of randread (1-64; "
		   "default 1; `all`\n"
		   "                runs randread with 1 and with 4)\n");
}

static uint64_t phys_memory(void)
{
	return (uint64_t)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE);
}

static int bench_parse(struct bench_opts *o, int argc, char **argv,
		       const char **scenario)
{
	const char *v, *why;
	int i, r;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			bench_usage(stdout);
			exit(0);
		}
		if ((r = opt_value(argc, argv, &i, "--size", &v)) != 0) {
			if (r < 0)
				return -1;
			why = parse_size(v, &o->size);
			if (why == NULL && (o->size == 0 || o->size % o->page))
				why = "not a non-zero multiple of the page "
				      "size";
			/* Scenarios keep up to two copies in memory. */
			if (why == NULL && o->size > phys_memory() / 3)
				why = "too large for this machine's memory";
			if (why != NULL) {
				cli_error("bench: bad --size '%s': %s", v, why);
				return -1;
			}
		} else if ((r = opt_value(argc, argv, &i, "--dir", &v)) != 0) {
			if (r < 0)
				return -1;
			o->dir = v;
		} else if ((r = opt_value(argc, argv, &i, "--runs", &v)) != 0) {
			if (r < 0)
				return -1;
			if ((why = parse_uint(v, 1, 100, &o->runs)) != NULL) {
				cli_error("bench: bad --runs '%s': %s (1-100)",
					  v, why);
				return -1;
			}
		} else if ((r = opt_value(argc, argv, &i, "--threads", &v)) !=
			   0) {
			if (r < 0)
				return -1;
			if ((why = parse_uint(v, 1, 64, &o->threads)) != NULL) {
				cli_error("bench: bad --threads '%s': %s "
					  "(1-64)",
					  v, why);
				return -1;
			}
		} else if (argv[i][0] == '-' || *scenario != NULL) {
			cli_error("bench: unexpected argument '%s' (see "
				  "faultline bench --help)",
				  argv[i]);
			return -1;
		} else {
			*scenario = argv[i];
		}
	}
	return 0;
}

static int run_scenario(const struct bench_opts *opts, const struct scenario *s,
			int all)
{
	struct bench_opts o = *opts;

	if (o.runs == 0)
		o.runs = s->runs;
	/* `all` runs randread with one reader and with four, as
	 * BENCHMARKS.md asks, unless --threads chose a count. */
	if (all && s->run == bench_randread && o.threads == 0) {
		int ret;

		o.threads = 1;
		alarm(300 + (unsigned)(o.size >> 22));
		ret = s->run(&o);
		fflush(stdout);
		o.threads = 4;
		alarm(300 + (unsigned)(o.size >> 22));
		return s->run(&o) < 0 || ret < 0 ? -1 : 0;
	}
	if (o.threads == 0)
		o.threads = 1;
	/* A hang must not leave data behind; scenarios take well under a
	 * minute at their defaults, so this only fires on a stuck engine. */
	alarm(300 + (unsigned)(o.size >> 22));
	return s->run(&o);
}

static int scenario_selected(const char *name, int i)
{
	return !strcmp(name, "all") || !strcmp(name, scenarios[i].name);
}

int bench_main(int argc, char **argv)
{
	struct bench_opts o = {.dir = "/var/tmp", .runs = 0};
	const char *name = NULL;
	int i, ret = 0, found = 0;

	o.page = (size_t)sysconf(_SC_PAGESIZE);
	if (bench_parse(&o, argc, argv, &name) < 0)
		return 2;
	if (name == NULL) {
		cli_error("bench: which scenario? (anon, minor, livelock, "
			  "seqscan, randread, randwrite, mixed, retry, swap, "
			  "remote or all; see "
			  "faultline bench --help)");
		return 2;
	}
	for (i = 0; i < NR_SCENARIOS; i++)
		found |= scenario_selected(name, i);
	if (!found) {
		cli_error("bench: unknown scenario '%s' (anon, minor, "
			  "livelock, seqscan, randread, randwrite, mixed, "
			  "retry, swap, remote or all)",
			  name);
		return 2;
	}
	/* Without userfaultfd, say so before any data file is written. */
	if (cli_check_engine("bench") < 0)
		return 1;
	cleanup_on_fatal_signals("bench", 0);
	for (i = 0; i < NR_SCENARIOS; i++) {
		if (!scenario_selected(name, i))
			continue;
		if (run_scenario(&o, &scenarios[i], !strcmp(name, "all")) < 0)
			ret = 1;
		fflush(stdout);
	}
	alarm(0);
	return ret;
}

/* ------------------------------------------------------------------------
 * Running and reporting
 * ------------------------------------------------------------------------ */

/*
 * The block devices' totals now: requests and bytes read and written,
 * summed over whole disks (a partition's name is its disk's name and a
 * digit, and a disk whose name ends in a digit has partitions named pN:
 * both are skipped by keeping only entries with a /sys/block directory).
 */
static int disk_totals(struct bench_disk *d)
{
	char line[512], name[64], sys[128];
	unsigned long long rd, rdm, rds, rdt, wr, wrm, wrs;
	FILE *f = fopen("/proc/diskstats", "r");

	memset(d, 0, sizeof(*d));
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line,
			   "%*u %*u %63s %llu %llu %llu %llu %llu %llu %llu",
			   name, &rd, &rdm, &rds, &rdt, &wr, &wrm, &wrs) != 8)
			continue;
		snprintf(sys, sizeof(sys), "/sys/block/%s", name);
		if (access(sys, F_OK) != 0)
			continue;
		d->reads += rd;
		d->read_bytes += rds * 512;
		d->writes += wr;
		d->write_bytes += wrs * 512;
	}
	fclose(f);
	d->valid = 1;
	return 0;
}

/* *d becomes what the devices did since the totals in *d were taken. */
static void disk_since(struct bench_disk *d)
{
	struct bench_disk now;

	if (!d->valid || disk_totals(&now) < 0) {
		d->valid = 0;
		return;
	}
	d->reads = now.reads - d->reads;
	d->read_bytes = now.read_bytes - d->read_bytes;
	d->writes = now.writes - d->writes;
	d->write_bytes = now.write_bytes - d->write_bytes;
}

int bench_run_all(const struct bench_opts *o, struct bench_config *cfg, int n,
		  uint64_t expected, int cold)
{
	unsigned r;
	int i;

	for (i = 0; i < n; i++)
		cfg[i].best = -1;
	for (r = 0; r < o->runs; r++) {
		for (i = 0; i < n; i++) {
			struct bench_run out = {0, 0};

			if (cfg[i].skipped)
				continue;
			if (cold)
				drop_caches();
			if (r == 0)
				disk_totals(&cfg[i].disk);
			if (cfg[i].run(cfg[i].arg, &out) < 0)
				return -1;
			if (r == 0)
				disk_since(&cfg[i].disk);
			if (out.checksum != expected) {
				cli_error("bench: %s run %u: WRONG DATA "
					  "(checksum %016llx, expected "
					  "%016llx)",
					  cfg[i].name, r + 1,
					  (unsigned long long)out.checksum,
					  (unsigned long long)expected);
				return -1;
			}
			if (cfg[i].best < 0 || out.seconds < cfg[i].best)
				cfg[i].best = out.seconds;
		}
	}
	return 0;
}

void bench_title(const struct bench_opts *o, const char *scenario,
		 const char *what)
{
	printf("\nbench %s: %s\n", scenario, what);
	printf("  best of %u run%s per configuration, runs interleaved; "
	       "data checksums verified\n",
	       o->runs, o->runs == 1 ? "" : "s");
}

void bench_table(const struct bench_config *cfg, int n, uint64_t pages,
		 uint64_t bytes)
{
	int i, w = 12;

	/* Wide enough for the longest name ("faultline-random"). */
	for (i = 0; i < n; i++)
		if ((int)strlen(cfg[i].name) > w)
			w = (int)strlen(cfg[i].name);
	printf("  %-*s %10s %10s %10s %10s\n", w, "config", "pages", "seconds",
	       "MiB/s", "us/page");
	for (i = 0; i < n; i++) {
		double s = cfg[i].best;

		if (cfg[i].skipped || s < 0)
			continue;
		printf("  %-*s %10llu %10.4f %10.1f %10.3f\n", w, cfg[i].name,
		       (unsigned long long)pages, s,
		       s > 0 ? (double)bytes / (1 << 20) / s : 0.0,
		       pages ? s * 1e6 / (double)pages : 0.0);
	}
	for (i = 0; i < n; i++) {
		const struct bench_disk *d = &cfg[i].disk;

		if (cfg[i].skipped || cfg[i].best < 0 || !d->valid)
			continue;
		printf("  # disk (%s, first run): %llu reads %.1f MiB, "
		       "%llu writes %.1f MiB\n",
		       cfg[i].name, (unsigned long long)d->reads,
		       d->read_bytes / 1048576.0, (unsigned long long)d->writes,
		       d->write_bytes / 1048576.0);
	}
}

void bench_ratio(const char *scenario, const struct bench_config *fl,
		 const struct bench_config *base)
{
	double r = bench_ratio_value(fl, base);

	if (r < 0)
		return;
	printf("ratio: %s/%s=%.3f\n", scenario, base->name, r);
}

double bench_ratio_value(const struct bench_config *fl,
			 const struct bench_config *base)
{
	if (base->skipped || fl->skipped || fl->best <= 0 || base->best < 0)
		return -1;
	return base->best / fl->best;
}

void bench_target(const char *name, double ratio, double min)
{
	if (ratio < 0)
		return;
	printf("  # target: %s >= %.2f: %s\n", name, min,
	       ratio >= min ? "met" : "MISSED");
}

void bench_figure(const char *name, double value)
{
	printf("figure: %s=%.3f\n", name, value);
}

int drop_caches(void)
{
	static int refused;
	int fd;

	if (refused)
		return -1;
	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd >= 0 && write(fd, "3\n", 2) == 2) {
		close(fd);
		return 0;
	}
	printf("  cannot drop caches (%s): cold runs run warm\n",
	       strerror(errno));
	if (fd >= 0)
		close(fd);
	refused = 1;
	return -1;
}

fl_engine *bench_engine_create(void)
{
	struct fl_config config;
	fl_engine *engine;

	fl_config_init(&config);
	engine = fl_engine_create(&config);
	if (engine == NULL)
		cli_engine_error("bench", errno);
	return engine;
}

/* "  # WHO: fault_messages=... pages_mapped=..." */
static void print_engine_counters(fl_engine *engine, const char *who)
{
	struct fl_stats s;

	if (fl_engine_stats(engine, &s) < 0)
		return;
	printf("  # %s: fault_messages=%llu minor=%llu major=%llu "
	       "zero_fills=%llu pages_read=%llu pages_mapped=%llu\n",
	       who, (unsigned long long)s.fault_messages,
	       (unsigned long long)s.minor_faults,
	       (unsigned long long)s.major_faults,
	       (unsigned long long)s.zero_fills,
	       (unsigned long long)s.pages_read,
	       (unsigned long long)s.pages_mapped);
}

int bench_end_group_run(const char *scenario, const char *row,
			fl_engine *engine, fl_group *group, fl_object *obj,
			void *p, uint64_t size, int *print_stats, int ret)
{
	char label[64];

	if (*print_stats && ret == 0) {
		snprintf(label, sizeof(label), "%s (first run)", row);
		print_engine_counters(engine, label);
		bench_readahead_summary(engine, row, "first run");
		bench_group_summary(group, label);
		*print_stats = 0;
	}
	if (bench_group_check(group, scenario) < 0)
		ret = -1;
	if (fl_munmap(engine, p, size) < 0 || fl_object_close(obj) < 0) {
		cli_error("bench %s: unmap/close failed: %s", scenario,
			  strerror(errno));
		return -1;
	}
	return ret;
}

int bench_on_fresh_engine(const char *scenario,
			  int (*timed)(void *, fl_engine *, struct bench_run *),
			  void *ctx, struct bench_run *out)
{
	fl_engine *engine = bench_engine_create();
	int ret;

	if (engine == NULL)
		return -1;
	ret = timed(ctx, engine, out);
	if (fl_engine_destroy(engine) < 0) {
		cli_error("bench %s: fl_engine_destroy failed: %s", scenario,
			  strerror(errno));
		ret = -1;
	}
	return ret;
}

void bench_engine_summary(fl_engine *engine, const char *label)
{
	char who[96];

	snprintf(who, sizeof(who), "faultline %s", label);
	print_engine_counters(engine, who);
}

void bench_readahead_summary(fl_engine *engine, const char *row,
			     const char *label)
{
	struct fl_stats s;

	if (fl_engine_stats(engine, &s) < 0)
		return;
	printf("  # %s (%s): readahead %llu pages, used %llu, evicted "
	       "unused %llu; store reads %llu, mean queue depth %.2f; "
	       "handler events %llu polled, %llu woke a handler; "
	       "idle-class polls %llu, starved %llu, poller moves %llu, "
	       "skipped (random reads) %llu; "
	       "fault messages read on their CPU %llu, late %llu\n",
	       row, label, (unsigned long long)s.readahead_pages,
	       (unsigned long long)s.readahead_used,
	       (unsigned long long)s.readahead_evicted,
	       (unsigned long long)s.store_reads,
	       s.store_reads
		       ? (double)s.store_read_depth / (double)s.store_reads
		       : 0.0,
	       (unsigned long long)s.polled_events,
	       (unsigned long long)s.handler_wakeups,
	       (unsigned long long)s.polls_idle,
	       (unsigned long long)s.polls_starved,
	       (unsigned long long)s.poller_moves,
	       (unsigned long long)s.polls_skipped,
	       (unsigned long long)s.local_reads,
	       (unsigned long long)s.late_reads);
}

uint64_t process_faults(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (uint64_t)ru.ru_minflt + (uint64_t)ru.ru_majflt;
}

void bench_kernel_summary(uint64_t faults, uint64_t pages)
{
	printf("  # kernel (last run): %llu page faults, %.1f pages per "
	       "fault\n",
	       (unsigned long long)faults,
	       faults ? (double)pages / (double)faults : 0.0);
}

uint64_t sum_stride64(const void *p, size_t len)
{
	const volatile uint64_t *w = p;
	uint64_t sum = 0;
	size_t i;

	for (i = 0; i < len / 8; i += 8)
		sum += w[i];
	return sum;
}

uint64_t pattern_sum_stride64(uint64_t seed, uint64_t len)
{
	uint64_t sum = 0, i;

	for (i = 0; i < len / 8; i += 8)
		sum += pattern_word(seed, i);
	return sum;
}
