/* SPDX-License-Identifier: MIT */
/*
 * `faultline bench`: the scenarios of BENCHMARKS.md, each run beside its
 * baselines in the same process on the same data, printed as a table and
 * "ratio:" lines (faultline's throughput divided by the baseline's).
 */
#ifndef FAULTLINE_BENCH_H
#define FAULTLINE_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <faultline.h>

/* Options shared by every scenario. */
struct bench_opts {
	uint64_t size;	  /* bytes; 0: the scenario's default */
	const char *dir;  /* parent of the temporary data directory */
	unsigned runs;	  /* runs per configuration; the best is reported */
	unsigned threads; /* reader threads (randread); 0: the default */
	size_t page;	  /* the system page size */
};

/* One timed run of one configuration. */
struct bench_run {
	double seconds;
	uint64_t checksum; /* compared with the scenario's expected value */
};

/*
 * A configuration of a scenario: faultline or a baseline.  run does the
 * timed work once and fills *out; it returns 0, or -1 after printing why.
 */
struct bench_config {
	const char *name;
	int (*run)(void *arg, struct bench_run *out);
	void *arg;
	int skipped; /* set (with a printed reason) to leave it out */
	double best; /* fastest run, seconds */
	/* What the block devices did during the first run (/proc/diskstats,
	 * whole disks): requests and bytes each way, and a flag it was read. */
	struct bench_disk {
		uint64_t reads, read_bytes, writes, write_bytes;
		int valid;
	} disk;
};

/* Run `faultline bench` with its own arguments (argv[0] is "bench").
 * Returns the exit status: 0, 1 on a failure, 2 on bad usage. */
int bench_main(int argc, char **argv);

/* Print bench's usage to f. */
void bench_usage(FILE *f);

/* The scenarios.  Each returns 0, or -1 after printing what failed. */
int bench_anon(const struct bench_opts *o);
int bench_minor(const struct bench_opts *o);
int bench_retry(const struct bench_opts *o);
int bench_seqscan(const struct bench_opts *o);
int bench_randread(const struct bench_opts *o);
int bench_livelock(const struct bench_opts *o);
int bench_mixed(const struct bench_opts *o);
int bench_randwrite(const struct bench_opts *o);
int bench_remote(const struct bench_opts *o);
int bench_swap(const struct bench_opts *o);

/*
 * Run every configuration that is not skipped o->runs times, interleaved
 * (one run of each in turn, so drift hits all alike), checking each run's
 * checksum against expected.  cold: drop the caches before every run.
 * Returns 0, or -1 after printing which run failed or was wrong.
 */
int bench_run_all(const struct bench_opts *o, struct bench_config *cfg, int n,
		  uint64_t expected, int cold);

/* Print the table: one row per configuration that ran. */
void bench_table(const struct bench_config *cfg, int n, uint64_t pages,
		 uint64_t bytes);

/* Print "ratio: SCENARIO/BASELINE=VALUE", the baseline's time divided by
 * faultline's for the same work (so: throughput ratio, higher is better). */
void bench_ratio(const char *scenario, const struct bench_config *fl,
		 const struct bench_config *base);

/* Print "  # target: NAME >= MIN: met" (or MISSED), the scenario's goal
 * for a ratio (issue 8); nothing if the ratio was not measured (< 0). */
void bench_target(const char *name, double ratio, double min);

/* A ratio as bench_ratio prints it, or -1 if either side did not run. */
double bench_ratio_value(const struct bench_config *fl,
			 const struct bench_config *base);

/* Print "figure: NAME=VALUE". */
void bench_figure(const char *name, double value);

/* Print the scenario's title line, saying how results are chosen. */
void bench_title(const struct bench_opts *o, const char *scenario,
		 const char *what);

/*
 * Drop the kernel's page cache (sync, then 3 > drop_caches) so the next
 * run reads from the disk.  Returns 0, or -1 if not permitted: the first
 * time it prints that cold runs run warm.
 */
int drop_caches(void);

/* An engine with the default configuration (and FAULTLINE_* overrides). */
fl_engine *bench_engine_create(void);

/*
 * Run timed(ctx, engine, out) on a fresh default engine, destroyed after:
 * a cold run's own engine.  -1 if any part failed (reported as scenario).
 */
int bench_on_fresh_engine(const char *scenario,
			  int (*timed)(void *ctx, fl_engine *engine,
				       struct bench_run *out),
			  void *ctx, struct bench_run *out);

/* Print a one-line summary of the engine's counters ("# faultline: ..."). */
void bench_engine_summary(fl_engine *engine, const char *label);

/*
 * Print whether readahead paid and the queue depth the store saw, from the
 * engine's counters: "  # ROW (LABEL): readahead N pages, used U, evicted
 * unused E; store reads S, mean queue depth D".
 */
void bench_readahead_summary(fl_engine *engine, const char *row,
			     const char *label);

/* Page faults the kernel has counted for this process (minor + major):
 * the kernel baselines' own fault counts, to set beside faultline's. */
uint64_t process_faults(void);

/* Print "  # kernel (last run): N page faults, P pages per fault". */
void bench_kernel_summary(uint64_t faults, uint64_t pages);

/* Sum one 64-bit word per 64 bytes of [p, p+len): one load per cache line,
 * the same work for every configuration of a scan. */
uint64_t sum_stride64(const void *p, size_t len);

/* The same sum, over the seeded pattern of a whole data file. */
uint64_t pattern_sum_stride64(uint64_t seed, uint64_t len);

/* ------------------------------------------------------------------------
 * Memory limits: faultline's groups, and the kernel's memory cgroups
 * ------------------------------------------------------------------------ */

#include "../tools/cli_util.h"

/* Longest a kernel baseline run in a cgroup may take before it is killed. */
#define KCG_TIMEOUT_S 120.0

/* A memory cgroup for kernel baselines (v1 or v2, whichever exists). */
struct kcg {
	struct tmpdata td; /* td.dir: the cgroup's directory */
	const char *limit_file, *procs_file;
	uint64_t limit;
	int ok; /* made, with its limit set */
};

/*
 * Make a memory cgroup faultline-bench-PID with the given limit.  Returns
 * 0, or -1 after printing "kernel baseline: skipped (no cgroup access)".
 * The directory is removed by kcg_remove, and on a fatal signal.
 */
int kcg_create(struct kcg *cg, uint64_t limit);
void kcg_remove(struct kcg *cg);

/*
 * Run fn(arg, out) in a forked child placed in the cgroup first; the
 * child's *out and back_len bytes at back (fields fn set in its copy of
 * the context) come back through a pipe.  Returns fn's result, or -1 after
 * printing why (also when the child takes longer than KCG_TIMEOUT_S).
 */
int kcg_run(struct kcg *cg, int (*fn)(void *arg, struct bench_run *out),
	    void *arg, struct bench_run *out, void *back, size_t back_len);

/* The memory limit of a scenario over size bytes of data: a quarter of
 * it, in whole pages, at least one page. */
uint64_t bench_quarter_limit(const struct bench_opts *o, uint64_t size);

/* A group below the root with max bytes; NULL after printing why. */
fl_group *bench_group_create(fl_engine *engine, const char *name, uint64_t max);

/*
 * Open the file at path and map its first size bytes shared, read-only,
 * in a new group named name with max bytes.  Returns the mapping (and the
 * group and object), or NULL after printing why (nothing left open).
 */
void *bench_map_in_group(fl_engine *engine, const char *name, const char *path,
			 uint64_t size, uint64_t max, fl_group **group,
			 fl_object **obj);

/* Print a group's statistics as one "  # LABEL: ..." line. */
void bench_group_summary(fl_group *group, const char *label);

/* 0 if the group's usage and peak are within its max; -1 after printing. */
int bench_group_check(fl_group *group, const char *what);

/*
 * The end of a timed run of the configuration named row in a group: print
 * the engine's counters, its readahead statistics and the group's counters
 * once (if *print_stats and the run so far succeeded, ret == 0), check the
 * group kept its limit, unmap p and close obj.  Returns ret, or -1 if any
 * of that failed.
 */
int bench_end_group_run(const char *scenario, const char *row,
			fl_engine *engine, fl_group *group, fl_object *obj,
			void *p, uint64_t size, int *print_stats, int ret);

/* Random numbers for access patterns (xorshift64*); *s must not be 0. */
static inline uint64_t bench_random(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545f4914f6cdd1dULL;
}

#endif /* FAULTLINE_BENCH_H */
