// SPDX-License-Identifier: MIT
/* Engine life cycle: create/destroy loops without leaks, several engines at
 * once, handler threads from the config and from FAULTLINE_THREADS. */
#define _GNU_SOURCE
#include "harness.h"
#include "engine.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

static unsigned char buf[32 * PG];

/* FAULTLINE_POLL_LOCAL as the suite was started with (make
 * test-local-poller sets it to 1), restored after a test changed it. */
static void restore_poll_local(void)
{
	static char outer[16];
	static int read_once, was_set;

	if (!read_once) {
		const char *v = getenv("FAULTLINE_POLL_LOCAL");

		read_once = 1;
		was_set = v != NULL;
		snprintf(outer, sizeof(outer), "%s", v ? v : "");
	}
	if (was_set)
		setenv("FAULTLINE_POLL_LOCAL", outer, 1);
	else
		unsetenv("FAULTLINE_POLL_LOCAL");
}

/* Whether the suite runs with local polling on (FAULTLINE_POLL_LOCAL=1,
 * make test-local-poller; it is off by default). */
static int poll_local_allowed(void)
{
	const char *v;

	restore_poll_local();
	v = getenv("FAULTLINE_POLL_LOCAL");
	return v && !strcmp(v, "1");
}

/*
 * The first engine of a process starts a thread of its own to probe the
 * idle class, and joins it; a joined thread can still be listed in
 * /proc/self/task for a moment.  Threads are counted after that engine.
 */
static void first_engine_made(void)
{
	static int made;

	if (!made) {
		fl_engine *e = fl_engine_create(NULL);

		REQUIRE(e != NULL);
		CHECK_EQ(fl_engine_destroy(e), 0);
		made = 1;
	}
}

/* Threads the engine adds while it lives, for a given config. */
static int engine_threads(const struct fl_config *cfg)
{
	int before, during;
	fl_engine *e;

	first_engine_made();
	before = h_settle_threads(1);
	e = fl_engine_create(cfg);

	REQUIRE(e != NULL);
	during = h_count_threads();
	CHECK_EQ(fl_engine_destroy(e), 0);
	return during - before;
}

static int threads_with(unsigned n)
{
	struct fl_config cfg;

	fl_config_init(&cfg);
	cfg.handler_threads = n;
	return engine_threads(&cfg);
}

static int threads_with_env(const char *value)
{
	if (value)
		setenv("FAULTLINE_THREADS", value, 1);
	else
		unsetenv("FAULTLINE_THREADS");
	return engine_threads(NULL);
}

TEST(create_destroy_loop)
{
	struct h_file f;
	int fds0, threads0;

	h_file_create(&f, 16 * PG, 101);
	fds0 = h_count_fds();
	threads0 = h_count_threads();
	for (int i = 0; i < 50; i++) {
		fl_engine *e = h_engine(i % 3 + 1);
		fl_object *o = h_open(e, &f, O_RDWR);
		unsigned char *a, *p;

		a = h_map(e, 8 * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
		p = h_map(e, 16 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
		a[i % 8 * PG] = (unsigned char)i;
		CHECK_EQ(a[i % 8 * PG], i);
		CHECK_EQ(p[(size_t)(i % 16) * PG + 1],
			 h_pattern(101, (size_t)(i % 16) * PG + 1));
		/* every other round leaves the object and mappings to
		 * fl_engine_destroy */
		if (i % 2) {
			CHECK_EQ(fl_munmap(e, a, 8 * PG), 0);
			CHECK_EQ(fl_munmap(e, p, 16 * PG), 0);
			CHECK_EQ(fl_object_close(o), 0);
		}
		CHECK_EQ(fl_engine_destroy(e), 0);
		if (h_failures())
			break;
	}
	CHECK_EQ(h_count_fds(), fds0);
	CHECK_EQ(h_settle_threads(threads0), threads0);
	h_file_remove(&f);
}

/* The engine's own threads and descriptors, while it lives, go away. */
TEST(resources_while_alive)
{
	int fds0 = h_count_fds(), threads0 = h_count_threads();
	fl_engine *e = h_engine(2);

	CHECK_GE(h_count_threads(), threads0 + 2);
	CHECK_GE(h_count_fds(), fds0 + 1); /* the userfaultfd at least */
	CHECK_EQ(fl_engine_destroy(e), 0);
}

struct two_ctx {
	fl_engine *e[2];
	unsigned char *p[2]; /* shared file mappings, 128 pages each */
	unsigned char *a[2]; /* anonymous, 64 pages each */
};

static void two_engines_thread(int idx, void *arg)
{
	struct two_ctx *c = arg;
	int k = idx % 2;
	uint32_t seed = 102 + (uint32_t)k;

	for (int pg = idx / 2; pg < 128; pg += 2) {
		if (h_mismatch(c->p[k] + (size_t)pg * PG, PG, seed,
			       (uint64_t)pg * PG) != -1) {
			h_fail(__FILE__, __LINE__, "engine %d page %d wrong", k,
			       pg);
			return;
		}
		if (pg < 64)
			memset(c->a[k] + (size_t)pg * PG, 1 + k, 64);
	}
}

TEST(two_engines_at_once)
{
	struct h_file f[2];
	fl_object *o[2];
	struct two_ctx c;
	struct fl_stats s[2];

	for (int k = 0; k < 2; k++) {
		h_file_create(&f[k], 128 * PG, 102 + (uint32_t)k);
		c.e[k] = h_engine(k + 1);
		o[k] = h_open(c.e[k], &f[k], O_RDWR);
		c.p[k] = h_map(c.e[k], 128 * PG, PROT_READ | PROT_WRITE,
			       MAP_SHARED, o[k], 0);
		c.a[k] = h_map(c.e[k], 64 * PG, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	}
	h_run_threads(4, two_engines_thread, &c);
	for (int k = 0; k < 2; k++) {
		for (int pg = 0; pg < 64; pg++)
			CHECK_EQ(c.a[k][(size_t)pg * PG + 63], 1 + k);
		s[k] = h_estats(c.e[k]);
		CHECK_GE(s[k].pages_read, 128);
		CHECK_EQ(s[k].errors, 0);
	}
	/* each engine counts only its own work */
	CHECK_LE(s[0].pages_read, 128);
	CHECK_LE(s[1].pages_read, 128);
	CHECK_EQ(fl_mapping_stats(c.e[0], c.p[1], &s[0]), -1);
	CHECK_EQ(fl_mapping_stats(c.e[1], c.a[0], &s[1]), -1);
	/* one engine goes, the other keeps serving new faults */
	c.p[0][5] = 0x42;
	CHECK_EQ(fl_engine_destroy(c.e[0]), 0);
	CHECK_EQ(h_pread(f[0].path, &c.a[1][5 * PG], 6, 0), 6);
	CHECK_EQ(c.a[1][5 * PG + 5], 0x42);
	CHECK_EQ(fl_munmap(c.e[1], c.p[1], 128 * PG), 0);
	c.p[1] = h_map(c.e[1], 128 * PG, PROT_READ, MAP_PRIVATE, o[1], 0);
	CHECK_EQ(h_mismatch(c.p[1], 128 * PG, 103, 0), -1);
	CHECK_EQ(fl_object_close(o[1]), 0);
	CHECK_EQ(fl_engine_destroy(c.e[1]), 0);
	h_file_remove(&f[0]);
	h_file_remove(&f[1]);
}

/* config.handler_threads: 1 and 3 both serve faults from many threads,
 * and 3 starts two more threads than 1. */
struct hammer_ctx {
	unsigned char *p;
	int seed;
};

static void hammer_thread(int idx, void *arg)
{
	struct hammer_ctx *c = arg;

	for (int pg = idx; pg < 256; pg += 6)
		if (h_mismatch(c->p + (size_t)pg * PG, PG, c->seed,
			       (uint64_t)pg * PG) != -1) {
			h_fail(__FILE__, __LINE__, "page %d wrong", pg);
			return;
		}
}

static int idle_poll_counted(void *e)
{
	return h_estats(e).polls_idle > 0;
}

/*
 * e's statistics, once a poll in the idle class was counted if wait is
 * set: the first fault served starts one, but on a busy machine its
 * handler may get a CPU again only after the last fault is done.
 */
static struct fl_stats stats_after_idle_poll(fl_engine *e, int wait)
{
	if (wait)
		CHECK(h_wait_until(idle_poll_counted, e));
	return h_estats(e);
}

/*
 * Six threads read every page of f (seed) through an engine made with
 * cfg, each page alone (no fault-around, no readahead): one major fault
 * and one page read per page.  Returns the engine's statistics, read once
 * a poll in the idle class was counted if wait_idle_poll is set.
 */
static struct fl_stats hammer_then(struct fl_config *cfg, struct h_file *f,
				   int seed, int wait_idle_poll)
{
	fl_engine *e;
	fl_object *o;
	struct hammer_ctx c = {.seed = seed};
	struct fl_stats s;

	cfg->fault_around_pages = 1;
	cfg->readahead_pages = 1;
	e = fl_engine_create(cfg);
	REQUIRE(e != NULL);
	o = h_open(e, f, O_RDONLY);
	c.p = h_map(e, 256 * PG, PROT_READ, MAP_SHARED, o, 0);
	h_run_threads(6, hammer_thread, &c);
	s = stats_after_idle_poll(e, wait_idle_poll);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	return s;
}

static struct fl_stats hammer(struct fl_config *cfg, struct h_file *f, int seed)
{
	return hammer_then(cfg, f, seed, 0);
}

/* handler_threads as configured (local polling, which may add handlers,
 * off: see local_polling_on_every_cpu). */
TEST(config_handler_threads)
{
	struct h_file f;
	unsigned counts[2] = {1, 3};
	int d1, d3;

	restore_poll_local(); /* reads the suite's value first */
	setenv("FAULTLINE_POLL_LOCAL", "0", 1);
	h_file_create(&f, 256 * PG, 104);
	for (int i = 0; i < 2; i++) {
		struct fl_config cfg;

		fl_config_init(&cfg);
		cfg.handler_threads = counts[i];
		CHECK_GE(hammer(&cfg, &f, 104).major_faults, 256);
	}
	d1 = threads_with(1);
	d3 = threads_with(3);
	CHECK_GE(d1, 1);
	CHECK_EQ(d3 - d1, 2);
	h_file_remove(&f);
	restore_poll_local();
}

TEST(env_threads_override)
{
	struct fl_config cfg;
	int d1, d3, dbad, ddef;

	restore_poll_local();
	setenv("FAULTLINE_POLL_LOCAL", "0", 1);
	setenv("FAULTLINE_THREADS", "3", 1);
	fl_config_init(&cfg);
	CHECK_EQ(cfg.handler_threads, 3);
	d1 = threads_with_env("1");
	d3 = threads_with_env("3");
	dbad = threads_with_env("abc");
	ddef = threads_with_env(NULL);
	CHECK_GE(d1, 1);
	CHECK_EQ(d3 - d1, 2);
	CHECK_EQ(dbad, ddef); /* malformed: the default */
	/* an explicit config field wins over the default, env or not */
	setenv("FAULTLINE_THREADS", "3", 1);
	CHECK_EQ(threads_with(1), d1);
	unsetenv("FAULTLINE_THREADS");
	restore_poll_local();
}

TEST(config_defaults_and_env)
{
	struct fl_config cfg;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

	unsetenv("FAULTLINE_THREADS");
	unsetenv("FAULTLINE_FAULT_AROUND");
	unsetenv("FAULTLINE_READAHEAD");
	unsetenv("FAULTLINE_ANON_AROUND");
	unsetenv("FAULTLINE_STATS");
	fl_config_init(&cfg);
	CHECK_EQ(cfg.handler_threads, ncpu);
	CHECK_EQ(cfg.fault_around_pages, 4096);
	CHECK_EQ(cfg.readahead_pages, 2048);
	CHECK_EQ(cfg.anon_fault_around_pages, 256);
	CHECK_EQ(cfg.print_stats_at_destroy, 0);
	setenv("FAULTLINE_FAULT_AROUND", "8", 1);
	setenv("FAULTLINE_READAHEAD", "4", 1);
	setenv("FAULTLINE_ANON_AROUND", "2", 1);
	setenv("FAULTLINE_STATS", "1", 1);
	fl_config_init(&cfg);
	CHECK_EQ(cfg.fault_around_pages, 8);
	CHECK_EQ(cfg.readahead_pages, 4);
	CHECK_EQ(cfg.anon_fault_around_pages, 2);
	CHECK(cfg.print_stats_at_destroy);
	setenv("FAULTLINE_READAHEAD", "12x", 1);
	setenv("FAULTLINE_FAULT_AROUND", "", 1);
	fl_config_init(&cfg);
	CHECK_EQ(cfg.readahead_pages, 2048);
	CHECK_EQ(cfg.fault_around_pages, 4096);
	unsetenv("FAULTLINE_FAULT_AROUND");
	unsetenv("FAULTLINE_READAHEAD");
	unsetenv("FAULTLINE_ANON_AROUND");
	unsetenv("FAULTLINE_STATS");
}

/* handler_poll_us: the default, FAULTLINE_POLL_US, and its range. */
TEST(config_handler_poll)
{
	struct fl_config cfg;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	int bad[3] = {-2, 10001, -100};

	unsetenv("FAULTLINE_POLL_US");
	fl_config_init(&cfg);
	CHECK_EQ(cfg.handler_poll_us, ncpu > 1 ? 300 : -1);
	setenv("FAULTLINE_POLL_US", "0", 1);
	fl_config_init(&cfg);
	CHECK_EQ(cfg.handler_poll_us, -1);
	setenv("FAULTLINE_POLL_US", "250", 1);
	fl_config_init(&cfg);
	CHECK_EQ(cfg.handler_poll_us, 250);
	setenv("FAULTLINE_POLL_US", "20000", 1); /* out of range: default */
	fl_config_init(&cfg);
	CHECK_EQ(cfg.handler_poll_us, ncpu > 1 ? 300 : -1);
	unsetenv("FAULTLINE_POLL_US");
	for (int i = 0; i < 3; i++) {
		fl_config_init(&cfg);
		cfg.handler_poll_us = bad[i];
		CHECK_ERR(fl_engine_create(&cfg) == NULL, EINVAL);
	}
}

/*
 * Polling handlers serve everything polling off serves: three handlers
 * (one polls, two park) and six threads of major faults, each page read
 * alone, with a poll longer than the test's gaps (the poller never
 * sleeps while faults come) and with polling off; contents checked, and
 * the engine's threads and descriptors all gone after destroy.
 */
TEST(polling_handlers_serve_everything)
{
	struct h_file f;
	int polls[3] = {10000, 1, -1};
	int fds0 = h_count_fds(), threads0 = h_settle_threads(1);

	h_file_create(&f, 256 * PG, 107);
	for (int i = 0; i < 3; i++) {
		struct fl_config cfg;
		struct fl_stats s;

		fl_config_init(&cfg);
		cfg.handler_threads = 3;
		cfg.handler_poll_us = polls[i];
		s = hammer(&cfg, &f, 107);
		CHECK_EQ(s.major_faults, 256);
		CHECK_EQ(s.pages_read, 256);
		CHECK_GE(s.handler_wakeups, 1); /* the first fault, at least */
		if (polls[i] < 0)
			CHECK_EQ(s.polled_events, 0);
	}
	h_file_remove(&f);
	CHECK_EQ(h_settle_threads(threads0), threads0);
	CHECK_EQ(h_count_fds(), fds0);
}

/* In a thread of its own: may a thread go to SCHED_IDLE and back? */
static void *idle_probe(void *arg)
{
	struct sched_param sp = {0};

	*(int *)arg = !pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) &&
		      !pthread_setschedparam(pthread_self(), SCHED_OTHER, &sp);
	return NULL;
}

static int idle_class_permitted(void)
{
	pthread_t t;
	int ok = 0;

	if (!pthread_create(&t, NULL, idle_probe, &ok))
		pthread_join(t, NULL);
	return ok;
}

/*
 * The poller polls in the idle class where a thread may leave it again
 * (counted in polls_idle), never with FAULTLINE_POLL_IDLE=0 or polling
 * off; faults are served the same either way.
 */
TEST(polling_in_the_idle_class)
{
	struct h_file f;
	int permitted = idle_class_permitted();

	h_file_create(&f, 256 * PG, 108);
	for (int i = 0; i < 3; i++) {
		struct fl_config cfg;
		struct fl_stats s;

		if (i == 1)
			setenv("FAULTLINE_POLL_IDLE", "0", 1);
		fl_config_init(&cfg);
		cfg.handler_threads = 2;
		cfg.handler_poll_us = i == 2 ? -1 : 10000;
		s = hammer_then(&cfg, &f, 108, i == 0 && permitted);
		unsetenv("FAULTLINE_POLL_IDLE");
		CHECK_EQ(s.major_faults, 256);
		if (i == 0 && permitted)
			CHECK_GE(s.polls_idle, 1);
		else
			CHECK_EQ(s.polls_idle, 0);
	}
	if (!permitted)
		printf("  (this process may not leave SCHED_IDLE: the idle "
		       "class was checked unused)\n");
	h_file_remove(&f);
}

/* Spin at normal priority until told to stop. */
static void *cpu_hog(void *arg)
{
	while (!atomic_load((_Atomic int *)arg))
		;
	return NULL;
}

/*
 * Busy CPUs starve an idle-class poller: a spinning thread per online CPU
 * (and one more) in this process while six threads take 256 major faults
 * with a long poll.  Every fault is served with the right contents (the
 * parked handlers take over from a starved poller), the engine's teardown
 * returns while the CPUs are still busy, and its threads are all gone.
 */
TEST(starved_poller_stalls_nobody)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	int threads0 = h_settle_threads(1);
	_Atomic int stop = 0;
	pthread_t hogs[17];
	int nr = 0;
	struct h_file f;
	fl_engine *e;
	fl_object *o;
	struct fl_config cfg;
	struct hammer_ctx c = {.seed = 109};

	h_file_create(&f, 256 * PG, 109);
	fl_config_init(&cfg);
	cfg.handler_threads = 2;
	cfg.handler_poll_us = 10000;
	cfg.fault_around_pages = 1;
	cfg.readahead_pages = 1;
	e = fl_engine_create(&cfg);
	REQUIRE(e != NULL);
	o = h_open(e, &f, O_RDONLY);
	c.p = h_map(e, 256 * PG, PROT_READ, MAP_SHARED, o, 0);
	while (nr < 16 && nr <= cpus &&
	       pthread_create(&hogs[nr], NULL, cpu_hog, &stop) == 0)
		nr++;
	h_run_threads(6, hammer_thread, &c);
	CHECK_EQ(h_estats(e).major_faults, 256);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0); /* the CPUs still busy */
	atomic_store(&stop, 1);
	while (nr)
		pthread_join(hogs[--nr], NULL);
	h_file_remove(&f);
	CHECK_EQ(h_settle_threads(threads0), threads0);
}

/* How many of this process's threads are pinned to each CPU alone
 * (per_cpu[cpu]); returns how many are pinned in all. */
static int pinned_threads(int *per_cpu)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int total = 0;

	REQUIRE(d != NULL);
	memset(per_cpu, 0, CPU_SETSIZE * sizeof(*per_cpu));
	while ((de = readdir(d))) {
		cpu_set_t set;
		int tid = atoi(de->d_name);

		if (tid <= 0 || sched_getaffinity(tid, sizeof(set), &set) ||
		    CPU_COUNT(&set) != 1)
			continue;
		for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
			if (CPU_ISSET(cpu, &set))
				per_cpu[cpu]++;
		total++;
	}
	closedir(d);
	return total;
}

/*
 * Local polling: where the idle class is permitted and the process may run
 * on several CPUs, an engine pins one CPU poller to each of them and keeps
 * one handler more (here over handler_threads 1), and serves 256 major
 * faults from 6 threads right, its CPU pollers reading messages.  With
 * FAULTLINE_POLL_LOCAL=0, or polling off, no thread is pinned, there are
 * handler_threads handlers, and no CPU poller read a message.
 */
TEST(local_polling_on_every_cpu)
{
	static int per_cpu[CPU_SETSIZE];
	int permitted = idle_class_permitted(), cpus, extra[2] = {0, 0};
	int allowed = poll_local_allowed(), possible;
	cpu_set_t set;
	struct h_file f;

	REQUIRE(sched_getaffinity(0, sizeof(set), &set) == 0);
	cpus = CPU_COUNT(&set);
	possible = permitted && cpus >= 2 && cpus <= 64;
	first_engine_made(); /* before threads are counted */
	REQUIRE(pinned_threads(per_cpu) == 0);
	h_file_create(&f, 256 * PG, 110);
	for (int i = 0; i < 3; i++) {
		int on = i == 0 && allowed && possible;
		int before = h_settle_threads(1);
		struct hammer_ctx c = {.seed = 110};
		struct fl_config cfg;
		struct fl_stats s;
		fl_engine *e;
		fl_object *o;

		if (i == 1)
			setenv("FAULTLINE_POLL_LOCAL", "0", 1);
		fl_config_init(&cfg);
		cfg.handler_threads = 1;
		cfg.handler_poll_us = i == 2 ? -1 : 10000;
		cfg.fault_around_pages = 1;
		cfg.readahead_pages = 1;
		e = fl_engine_create(&cfg);
		restore_poll_local();
		REQUIRE(e != NULL);
		if (i < 2)
			extra[i] = h_count_threads() - before;
		CHECK_EQ(pinned_threads(per_cpu), on ? cpus : 0);
		for (int cpu = 0; on && cpu < CPU_SETSIZE; cpu++)
			CHECK_EQ(per_cpu[cpu], CPU_ISSET(cpu, &set) ? 1 : 0);
		o = h_open(e, &f, O_RDONLY);
		c.p = h_map(e, 256 * PG, PROT_READ, MAP_SHARED, o, 0);
		h_run_threads(6, hammer_thread, &c);
		s = stats_after_idle_poll(e, on);
		CHECK_EQ(s.major_faults, 256);
		CHECK_LE(s.local_reads + s.late_reads, s.fault_messages);
		if (on)
			CHECK_GE(s.polls_idle, 1);
		else
			CHECK_EQ(s.local_reads + s.late_reads, 0);
		CHECK_EQ(fl_object_close(o), 0);
		CHECK_EQ(fl_engine_destroy(e), 0);
	}
	/* A CPU poller per CPU and one handler more, against one handler. */
	if (allowed && possible)
		CHECK_EQ(extra[0] - extra[1], cpus);
	else
		printf("  (local polling is off here: FAULTLINE_POLL_LOCAL=1 "
		       "not set, or %d CPUs, or the idle class not "
		       "permitted)\n",
		       cpus);
	h_file_remove(&f);
}

/*
 * One thread faulting (256 first writes to anonymous memory, no store):
 * with local polling, every message a polling handler took was read by a
 * CPU poller and counted as local or late (at least one per event taken
 * while polling); without it, none is counted.  The contents are right
 * either way.
 */
TEST(local_polling_one_faulting_thread)
{
	int possible = idle_class_permitted() && poll_local_allowed();

	for (int i = 0; i < 2; i++) {
		struct fl_config cfg;
		struct fl_stats s;
		unsigned char *p;
		fl_engine *e;

		if (i == 1)
			setenv("FAULTLINE_POLL_LOCAL", "0", 1);
		fl_config_init(&cfg);
		cfg.handler_poll_us = 10000;
		cfg.anon_fault_around_pages = 1;
		e = fl_engine_create(&cfg);
		restore_poll_local();
		REQUIRE(e != NULL);
		p = h_map(e, 256 * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
		for (int k = 0; k < 256; k++)
			p[(size_t)k * PG + k] = (unsigned char)(k + 1);
		for (int k = 0; k < 256; k++)
			CHECK_EQ(p[(size_t)k * PG + k], (unsigned char)(k + 1));
		s = h_estats(e);
		CHECK_EQ(s.zero_fills, 256);
		if (i == 0 && possible)
			CHECK_GE(s.local_reads + s.late_reads, s.polled_events);
		else
			CHECK_EQ(s.local_reads + s.late_reads, 0);
		CHECK_EQ(fl_munmap(e, p, 256 * PG), 0);
		CHECK_EQ(fl_engine_destroy(e), 0);
	}
}

/* Pin the calling thread to cpu (-1: to the CPUs in *all). */
static void pin_self(int cpu, const cpu_set_t *all)
{
	cpu_set_t one;

	CPU_ZERO(&one);
	if (cpu >= 0)
		CPU_SET(cpu, &one);
	REQUIRE(sched_setaffinity(0, sizeof(one), cpu >= 0 ? &one : all) == 0);
}

/* The first n CPUs this thread may run on, in cpus; how many. */
static int allowed_cpus(cpu_set_t *all, int *cpus, int n)
{
	int k = 0;

	REQUIRE(sched_getaffinity(0, sizeof(*all), all) == 0);
	for (int c = 0; c < CPU_SETSIZE && k < n; c++)
		if (CPU_ISSET(c, all))
			cpus[k++] = c;
	return k;
}

/*
 * thread_last_cpu (threads.c), with which the poller finds the CPU of the
 * thread whose fault it serves: a thread pinned to each CPU in turn reads
 * that CPU for itself, through one file kept open; a thread that does not
 * exist reads -1.
 */
TEST(thread_last_cpu_is_where_the_thread_runs)
{
	uint32_t me = (uint32_t)gettid(), fd_tid = 0;
	int cpus[8], n, fd = -1;
	cpu_set_t all;

	n = allowed_cpus(&all, cpus, 8);
	for (int i = 0; i < n; i++) {
		pin_self(cpus[i], &all);
		CHECK_EQ(thread_last_cpu(&fd, &fd_tid, me), cpus[i]);
	}
	pin_self(-1, &all);
	CHECK_EQ(fd_tid, me);
	CHECK_EQ(thread_last_cpu(&fd, &fd_tid, 0x7ffffff0u), -1);
	CHECK_EQ(fd, -1);
}

/* Whether thread tid is one of the kernel's io_uring workers ("iou-wrk-N":
 * their CPUs are the kernel's to choose, and cannot be changed). */
static int io_uring_worker(int tid)
{
	char path[64], comm[32] = "";
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	return n > 4 && strncmp(comm, "iou-", 4) == 0;
}

/* Whether every thread of the process (but the kernel's io_uring workers)
 * may run on all the CPUs in arg. */
static int threads_unpinned(void *arg)
{
	const cpu_set_t *all = arg;
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int ok = 1;

	REQUIRE(d);
	while (ok && (de = readdir(d))) {
		cpu_set_t set;
		int tid = atoi(de->d_name);

		if (tid > 0 && sched_getaffinity(tid, sizeof(set), &set) == 0 &&
		    !io_uring_worker(tid))
			ok = CPU_EQUAL(&set, all);
	}
	closedir(d);
	return ok;
}

/*
 * The poller follows a lone faulting thread to its CPU (threads.c,
 * poller_follow): a thread takes 96 major faults on each CPU it may use
 * in turn (up to 4), pinned there, each fault waiting for a read through
 * the ring; every page reads right, and once polling has ended no thread
 * of the engine is left pinned (the poller's affinity is given back;
 * with local polling on, the CPU pollers stay pinned: not checked).
 * How often the poller moved depends on where the scheduler had put it:
 * noted, not checked.
 */
TEST(poller_follows_a_lone_faulting_thread)
{
	int cpus[4], n;
	struct fl_config cfg;
	struct h_file f;
	struct fl_stats s;
	cpu_set_t all;
	unsigned char *p;
	fl_object *o;
	fl_engine *e;

	n = allowed_cpus(&all, cpus, 4);
	h_file_create(&f, 96 * 4 * PG, 109);
	fl_config_init(&cfg);
	cfg.handler_poll_us = 10000;
	e = fl_engine_create(&cfg);
	REQUIRE(e != NULL);
	o = h_open(e, &f, O_RDONLY);
	p = h_map(e, 96 * 4 * PG, PROT_READ, MAP_SHARED, o, 0);
	CHECK_EQ(fl_madvise(e, p, 96 * 4 * PG, MADV_RANDOM), 0);
	for (int i = 0; i < n; i++) {
		size_t at = (size_t)i * 96 * PG;

		pin_self(cpus[i], &all);
		/* Every other page, backwards: no readahead to find. */
		for (int k = 95; k >= 0; k -= 2)
			CHECK_EQ(h_mismatch(p + at + (size_t)k * PG, PG, 109,
					    at + (size_t)k * PG),
				 -1);
		for (int k = 94; k >= 0; k -= 2)
			CHECK_EQ(h_mismatch(p + at + (size_t)k * PG, PG, 109,
					    at + (size_t)k * PG),
				 -1);
	}
	pin_self(-1, &all);
	s = h_estats(e);
	CHECK_EQ(s.major_faults, (uint64_t)n * 96);
	CHECK_LE(s.poller_moves, s.major_faults);
	if (!poll_local_allowed()) /* CPU pollers stay pinned */
		CHECK(h_wait_until(threads_unpinned, &all));
	h_note("%d CPUs, poller moved %llu times", n,
	       (unsigned long long)s.poller_moves);
	CHECK_EQ(fl_munmap(e, p, 96 * 4 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* Read every other page of p's first pages, backwards: one fault each,
 * no readahead to find; contents checked. */
static void read_every_other_page(const unsigned char *p, unsigned pages,
				  uint32_t seed)
{
	for (int k = (int)pages - 1; k >= 0; k -= 2)
		CHECK_EQ(h_mismatch(p + (size_t)k * PG, PG, seed,
				    (uint64_t)k * PG),
			 -1);
}

/*
 * Polling through random reads is tried both ways (random_poll.c): one
 * thread takes 512 major faults through a MADV_RANDOM mapping, each page
 * read alone, with a poll budget longer than any gap, then faults the
 * same pages, now cached, through a second mapping.  Reading, once most
 * faults are random reads (about the 11th), the first 128 are served
 * without polling: each fault, and each read's completion, wakes a
 * handler that declines to poll (polls_skipped); the next 128 are served
 * polling (none skipped); the faster way is kept for the rest
 * (test_unit_random_poll checks the trial's steps).  So at least 128
 * skipped, each by a handler a fault or a completion woke.  Cached,
 * the share of random reads falls below one half within 16 faults and
 * polling is on whatever the trial found: at most 16 more skipped.
 * Which way was faster depends on the machine: not checked.  Local
 * polling has its own loop: off here.
 */
TEST(polling_through_random_reads_is_tried_both_ways)
{
	struct fl_config cfg;
	struct fl_stats s1, s2;
	struct h_file f;
	unsigned char *p, *q;
	fl_object *o;
	fl_engine *e;

	restore_poll_local(); /* reads the suite's value first */
	setenv("FAULTLINE_POLL_LOCAL", "0", 1);
	h_file_create(&f, 1024 * PG, 111);
	fl_config_init(&cfg);
	cfg.handler_poll_us = 10000;
	cfg.fault_around_pages = 1;
	cfg.readahead_pages = 1;
	e = fl_engine_create(&cfg);
	restore_poll_local();
	REQUIRE(e != NULL);
	o = h_open(e, &f, O_RDONLY);
	p = h_map(e, 1024 * PG, PROT_READ, MAP_SHARED, o, 0);
	CHECK_EQ(fl_madvise(e, p, 1024 * PG, MADV_RANDOM), 0);
	read_every_other_page(p, 1024, 111);
	s1 = h_estats(e);
	CHECK_EQ(s1.major_faults, 512);
	CHECK_EQ(s1.pages_read, 512);
	CHECK_GE(s1.polls_skipped, 128);
	CHECK_GE(s1.handler_wakeups, 128);

	q = h_map(e, 1024 * PG, PROT_READ, MAP_SHARED, o, 0);
	read_every_other_page(q, 1024, 111);
	s2 = h_estats(e);
	CHECK_EQ(s2.major_faults, 512); /* all from the cache */
	CHECK_EQ(s2.pages_read, 512);
	CHECK_GE(s2.fault_messages, s1.fault_messages + 512);
	CHECK_LE(s2.polls_skipped - s1.polls_skipped, 16);
	h_note("reading: %llu skipped, %llu wake-ups; cached: %llu skipped",
	       (unsigned long long)s1.polls_skipped,
	       (unsigned long long)s1.handler_wakeups,
	       (unsigned long long)(s2.polls_skipped - s1.polls_skipped));
	CHECK_EQ(fl_munmap(e, q, 1024 * PG), 0);
	CHECK_EQ(fl_munmap(e, p, 1024 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* FAULTLINE_READAHEAD=1: one page read per major fault. */
TEST(env_readahead_honoured)
{
	struct h_file f;
	fl_engine *e;
	fl_object *o;
	unsigned char *p;
	struct fl_stats s;

	h_file_create(&f, 64 * PG, 105);
	setenv("FAULTLINE_READAHEAD", "1", 1);
	setenv("FAULTLINE_FAULT_AROUND", "1", 1);
	e = fl_engine_create(NULL);
	unsetenv("FAULTLINE_READAHEAD");
	unsetenv("FAULTLINE_FAULT_AROUND");
	REQUIRE(e != NULL);
	o = h_open(e, &f, O_RDONLY);
	p = h_map(e, 64 * PG, PROT_READ, MAP_SHARED, o, 0);
	for (int i = 0; i < 64; i += 8)
		CHECK_EQ(p[(size_t)i * PG + 3], h_pattern(105, i * PG + 3));
	s = h_estats(e);
	CHECK_EQ(s.pages_read, 8);
	CHECK_EQ(s.major_faults, 8);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* fl_stats_print: one "prefix name value" line per counter. */
TEST(stats_print_format)
{
	struct fl_stats s;
	uint64_t *v = (uint64_t *)&s;
	size_t n = sizeof(s) / sizeof(uint64_t);
	char *text = NULL, *line, *save = NULL;
	size_t len = 0;
	unsigned seen = 0, lines = 0;
	FILE *f = open_memstream(&text, &len);

	REQUIRE(f != NULL);
	for (size_t i = 0; i < n; i++)
		v[i] = 1000 + i;
	fl_stats_print(f, "pfx.", &s);
	fclose(f);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char name[64];
		unsigned long long val;

		lines++;
		if (strncmp(line, "pfx.", 4) != 0 ||
		    sscanf(line + 4, "%63s %llu", name, &val) != 2) {
			h_fail(__FILE__, __LINE__, "bad line '%s'", line);
			continue;
		}
		if (val >= 1000 && val < 1000 + n)
			seen |= 1u << (val - 1000);
	}
	CHECK_EQ(lines, n);
	CHECK_EQ(seen, (1u << n) - 1);
	free(text);
}

/* print_stats_at_destroy writes the statistics to stderr. */
TEST(print_stats_at_destroy)
{
	struct fl_config cfg;
	fl_engine *e;
	char path[300], text[8192];
	int fd, saved;
	size_t n;
	unsigned char *a;

	snprintf(path, sizeof(path), "%s/stderr-%d", h_tmpdir(), (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	REQUIRE(fd >= 0);
	fl_config_init(&cfg);
	cfg.print_stats_at_destroy = 1;
	cfg.handler_threads = 1;
	e = fl_engine_create(&cfg);
	REQUIRE(e != NULL);
	a = h_map(e, PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		  NULL, 0);
	a[0] = 1;
	fflush(stderr);
	saved = dup(2);
	REQUIRE(saved >= 0);
	dup2(fd, 2);
	CHECK_EQ(fl_engine_destroy(e), 0);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	memset(text, 0, sizeof(text));
	n = (size_t)pread(fd, text, sizeof(text) - 1, 0);
	close(fd);
	unlink(path);
	CHECK_GT(n, 0);
	CHECK(strstr(text, "zero_fills") != NULL);
	CHECK(strstr(text, "fault") != NULL);
}

/* Everything left to fl_engine_destroy: mappings of every kind, objects
 * open and closed, dirty pages; LeakSanitizer and the harness check that
 * nothing stays. */
TEST(destroy_releases_everything)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o1, *o2;
	unsigned char *p;

	h_file_create(&f, 32 * PG, 106);
	o1 = h_open(e, &f, O_RDWR);
	o2 = h_open(e, &f, O_RDONLY);
	p = h_map(e, 32 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o1, 0);
	memset(p, 1, 4 * PG);
	p = h_map(e, 32 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, o1, 0);
	memset(p + 8 * PG, 2, 4 * PG);
	p = h_map(e, 32 * PG, PROT_READ, MAP_SHARED, o2, 0);
	CHECK_EQ(h_mismatch(p + 10 * PG, PG, 106, 10 * PG), -1);
	p = h_map(e, 32 * PG, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, NULL, 0);
	memset(p, 3, 32 * PG);
	p = h_map(e, 32 * PG, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	memset(p, 4, 32 * PG);
	CHECK_EQ(fl_object_close(o2), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	/* the shared stores were written back, the private ones not */
	CHECK_EQ(h_pread(f.path, buf, 12 * PG, 0), 12 * PG);
	for (size_t i = 0; i < 4 * PG; i++)
		if (buf[i] != 1) {
			h_fail(__FILE__, __LINE__, "file byte %zu is %d", i,
			       buf[i]);
			break;
		}
	CHECK_EQ(h_mismatch(buf + 4 * PG, 8 * PG, 106, 4 * PG), -1);
	h_file_remove(&f);
}

/* fault_messages counts what the handler threads read. */
TEST(fault_messages_counted)
{
	struct fl_config cfg;
	fl_engine *e;
	unsigned char *a;
	struct fl_stats s;

	fl_config_init(&cfg);
	cfg.anon_fault_around_pages = 1;
	cfg.handler_threads = 1;
	e = fl_engine_create(&cfg);
	REQUIRE(e != NULL);
	a = h_map(e, 32 * PG, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	for (int i = 0; i < 32; i++)
		a[(size_t)i * PG] = 1;
	s = h_estats(e);
	CHECK_GE(s.fault_messages, 32);
	CHECK_EQ(s.zero_fills, 32);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

static int cache_empty(void *e)
{
	return h_estats(e).cached_pages == 0;
}

/* Resource totals go back to their baseline: private pages when mappings
 * go, cache pages when objects go. */
TEST(resource_totals_return_to_baseline)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *s, *p, *a;
	struct fl_stats st;

	h_file_create(&f, 64 * PG, 107);
	st = h_estats(e);
	CHECK_EQ(st.cached_pages, 0);
	CHECK_EQ(st.private_pages, 0);
	CHECK_EQ(st.dirty_pages, 0);
	o = h_open(e, &f, O_RDWR);
	s = h_map(e, 64 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	p = h_map(e, 64 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, o, 0);
	a = h_map(e, 32 * PG, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	CHECK_EQ(h_mismatch(s, 64 * PG, 107, 0), -1);
	for (int i = 0; i < 10; i++)
		p[(size_t)i * PG] = 1;
	memset(a, 2, 32 * PG);
	s[0] = 3;
	st = h_estats(e);
	CHECK_GE(st.cached_pages, 64);
	CHECK_GE(st.private_pages, 10 + 32);
	CHECK_EQ(st.dirty_pages, 1);
	CHECK_EQ(h_mstats(e, p).private_pages, 10);
	CHECK_EQ(h_mstats(e, a).private_pages, 32);
	CHECK_EQ(fl_madvise(e, p, 5 * PG, MADV_DONTNEED), 0);
	CHECK_EQ(h_mstats(e, p).private_pages, 5);
	CHECK_EQ(fl_munmap(e, a, 32 * PG), 0);
	CHECK_EQ(fl_munmap(e, p, 64 * PG), 0);
	st = h_estats(e);
	CHECK_EQ(st.private_pages, 0);
	CHECK_GE(st.cached_pages, 64); /* the shared mapping still holds it */
	CHECK_EQ(fl_munmap(e, s, 64 * PG), 0);
	CHECK_EQ(h_estats(e).dirty_pages, 0);
	CHECK_EQ(fl_object_close(o), 0);
	/* The last reference may be an I/O thread's, dropped just after the
	 * fault it resumed woke the reader: the object goes then. */
	CHECK(h_wait_until(cache_empty, e));
	st = h_estats(e);
	CHECK_EQ(st.cached_pages, 0);
	CHECK_EQ(st.private_pages, 0);
	CHECK_EQ(st.dirty_pages, 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* MADV_WILLNEED reads the range into the cache now: later faults are minor
 * and read nothing more. */
TEST(madvise_willneed)
{
	struct h_file f;
	struct fl_config cfg;
	fl_engine *e;
	fl_object *o;
	unsigned char *p;
	struct fl_stats s0, s1;

	fl_config_init(&cfg);
	cfg.handler_threads = 2;
	cfg.readahead_pages = 1;
	e = fl_engine_create(&cfg);
	REQUIRE(e != NULL);
	h_file_create(&f, 64 * PG, 108);
	o = h_open(e, &f, O_RDONLY);
	p = h_map(e, 64 * PG, PROT_READ, MAP_SHARED, o, 0);
	CHECK_EQ(fl_madvise(e, p + 16 * PG, 32 * PG, MADV_WILLNEED), 0);
	s0 = h_estats(e);
	CHECK_GE(s0.pages_read, 32);
	CHECK_GE(s0.cached_pages, 32);
	CHECK_EQ(h_mismatch(p + 16 * PG, 32 * PG, 108, 16 * PG), -1);
	s1 = h_estats(e);
	CHECK_EQ(s1.pages_read, s0.pages_read);
	CHECK_EQ(s1.major_faults, s0.major_faults);
	CHECK_EQ(h_mismatch(p, 64 * PG, 108, 0), -1);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* MADV_RANDOM: each fault maps only its own page. */
TEST(madvise_random)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;
	struct fl_stats s0, s1;

	h_file_create(&f, 64 * PG, 109);
	o = h_open(e, &f, O_RDONLY);
	p = h_map(e, 64 * PG, PROT_READ, MAP_SHARED, o, 0);
	CHECK_EQ(h_mismatch(p, 64 * PG, 109, 0), -1); /* all in the cache */
	CHECK_EQ(fl_madvise(e, p, 64 * PG, MADV_DONTNEED), 0);
	CHECK_EQ(fl_madvise(e, p, 64 * PG, MADV_RANDOM), 0);
	s0 = h_estats(e);
	for (int i = 0; i < 64; i += 4)
		CHECK_EQ(p[(size_t)i * PG + 1], h_pattern(109, i * PG + 1));
	for (int i = 0; i < 64; i += 4)
		CHECK_EQ(p[(size_t)i * PG + 2], h_pattern(109, i * PG + 2));
	s1 = h_estats(e);
	CHECK_EQ(s1.minor_faults - s0.minor_faults, 16);
	CHECK_EQ(s1.pages_read, s0.pages_read);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/*
 * A random fault's window is its page alone, and where the handler's
 * wakes are direct (no polling here) the UFFDIO_CONTINUE that maps it
 * wakes the thread itself.  So everything the fault counts is counted
 * before that ioctl: the thread reads the counters as soon as its access
 * returns, and finds its own fault in them.
 */
TEST(random_fault_counted_before_it_wakes)
{
	struct fl_config cfg;
	struct h_file f;
	fl_engine *e;
	fl_object *o;
	unsigned char *p;

	fl_config_init(&cfg);
	cfg.handler_threads = 2;
	cfg.handler_poll_us = -1;
	e = h_engine_create(&cfg);
	h_file_create(&f, 64 * PG, 110);
	o = h_open(e, &f, O_RDWR);
	p = h_map(e, 64 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	CHECK_EQ(h_mismatch(p, 64 * PG, 110, 0), -1); /* all in the cache */
	CHECK_EQ(fl_madvise(e, p, 64 * PG, MADV_DONTNEED), 0);
	CHECK_EQ(fl_madvise(e, p, 64 * PG, MADV_RANDOM), 0);
	for (int i = 0; i < 64; i++) {
		int pg = (i * 37) % 64;
		struct fl_stats s0 = h_estats(e), m0 = h_mstats(e, p), s1, m1;

		CHECK_EQ(p[(size_t)pg * PG + 7], h_pattern(110, pg * PG + 7));
		s1 = h_estats(e);
		m1 = h_mstats(e, p);
		CHECK_EQ(s1.pages_mapped - s0.pages_mapped, 1);
		CHECK_EQ(m1.pages_mapped - m0.pages_mapped, 1);
		CHECK_EQ(s1.minor_faults - s0.minor_faults, 1);
	}
	/* Mapped write-protected: the first store still faults, once. */
	p[5 * PG] = 0x5a;
	CHECK_EQ(h_estats(e).wp_faults, 1);
	CHECK_EQ(h_estats(e).dirty_pages, 1);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* Child side of fork_child_sees_no_views: what it found, as exit bits. */
#define CHILD_SAW_FILE_VIEW 1
#define CHILD_SAW_ANON_VIEW 2
#define CHILD_SAW_MEMFD	    4

static int mapped(const void *p)
{
	unsigned char vec;

	return !(mincore((void *)p, PG, &vec) && errno == ENOMEM);
}

/* Whether /proc/self/maps names an object's memfd (the engine's view or a
 * shared view). */
static int maps_show_memfd(void)
{
	static char maps[1 << 20];
	size_t n = 0;
	ssize_t got;
	int fd = open("/proc/self/maps", O_RDONLY);

	if (fd < 0)
		return 1;
	while (n < sizeof(maps) - 1 &&
	       (got = read(fd, maps + n, sizeof(maps) - 1 - n)) > 0)
		n += (size_t)got;
	close(fd);
	maps[n] = 0;
	return strstr(maps, "faultline-cache") != NULL;
}

/*
 * A child of fork() inherits no faultline mapping (they are MADV_DONTFORK):
 * nothing would serve its faults or track its stores.  The parent's
 * mappings keep their data and their faults are still served.
 */
TEST(fork_child_sees_no_views)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *s, *a, b;
	int status = -1;
	pid_t pid;

	h_file_create(&f, 8 * PG, 71);
	o = h_open(e, &f, O_RDWR);
	s = h_map(e, 8 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	a = h_map(e, 8 * PG, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	CHECK_EQ(s[5], h_pattern(71, 5));
	a[5] = 9;
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0)
		_exit((mapped(s) ? CHILD_SAW_FILE_VIEW : 0) |
		      (mapped(a) ? CHILD_SAW_ANON_VIEW : 0) |
		      (maps_show_memfd() ? CHILD_SAW_MEMFD : 0));
	REQUIRE(waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
	/* the parent's data, and new faults (pages never touched) */
	CHECK_EQ(s[5], h_pattern(71, 5));
	CHECK_EQ(a[5], 9);
	CHECK_EQ(h_mismatch(s, 8 * PG, 71, 0), -1);
	CHECK_EQ(h_nonzero(a + PG, 7 * PG), -1);
	s[3 * PG] ^= 0xff;
	CHECK_EQ(fl_msync(e, s, 8 * PG, MS_SYNC), 0);
	CHECK_EQ(h_estats(e).errors, 0);
	CHECK_EQ(fl_munmap(e, s, 8 * PG), 0);
	CHECK_EQ(fl_munmap(e, a, 8 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_pread(f.path, &b, 1, 3 * PG);
	CHECK_EQ(b, h_pattern(71, 3 * PG) ^ 0xff);
	h_file_remove(&f);
}
