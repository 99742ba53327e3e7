// SPDX-License-Identifier: MIT
/*
 * bench remote: page reads of an object kept in Redis (default 256 MiB,
 * 64 KiB blocks), in the standalone server of FL_REDIS_URL and, beside
 * it, the cluster of FL_REDIS_CLUSTER_URL.
 *
 *   sequential  one word per 64 bytes of the whole object, in order.
 *               faultline: a fresh engine and store each run, a shared
 *               read-only mapping, no advice (readahead finds the
 *               stream).  direct: plain hiredis, GET of every block in
 *               order, pipelined (64 requests, 4 MiB, kept in flight).
 *               direct-cache: direct, also writing each block into a
 *               memfd of its own, the least any page cache does (a
 *               ratio of its own: what a page cache costs here).  The
 *               CPU seconds of the client and of the server are printed
 *               beside them.
 *   random      one word of each of 8192 random pages (the same pages in
 *               the same order for every configuration).  faultline:
 *               MADV_RANDOM (each fault reads its page alone).  direct:
 *               plain hiredis, one GET of the page's block at a time (as
 *               BENCHMARKS.md's baseline reads the same blocks);
 *               direct-page: one GETRANGE of the page alone at a time,
 *               the same bytes faultline reads (a ratio of its own);
 *               uffd-minimal: the least a userfaultfd server does, one
 *               GETRANGE of the page per fault (bench/uffd_minimal.c):
 *               how near to direct serving faults from user space can
 *               come here.
 *
 * The object is written once before the runs and deleted after.  Without
 * FL_REDIS_URL the scenario says "skipped" and succeeds.
 */
#define _GNU_SOURCE /* memfd_create */
#include "bench.h"
#include "../tools/cli_util.h"
#include "uffd_minimal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifdef FL_HAVE_HIREDIS
#include <hiredis/hiredis.h>

#define REMOTE_SEED   0x72656d6f7465ULL
#define REMOTE_BLOCK  65536u
#define RAND_READS    8192u
#define DIRECT_WINDOW 64u

struct remote_ctx {
	const char *base; /* URL without the prefix */
	char url[512];
	char prefix[64];
	uint64_t size;
	size_t page;
	uint64_t *pages; /* the random reads' page indices */
	unsigned nreads;
	struct fl_redis_stats st; /* of the last faultline run */
	struct fl_stats es;	  /* its engine's */
	double direct_cpu[2];	  /* last direct run: client, server */
	double fl_cpu[2];	  /* last faultline run: process, server */
	double cache_fill;	  /* last direct-cache run: pwrite seconds */
};

/* The word a random read reads in page pg (it moves within the page). */
static uint64_t rand_offset(uint64_t pg, size_t page)
{
	return pg * page + (pg * 64) % page;
}

static uint64_t rand_expected(const struct remote_ctx *c)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < c->nreads; i++)
		sum += pattern_word(REMOTE_SEED,
				    rand_offset(c->pages[i], c->page) / 8);
	return sum;
}

/* ---- plain hiredis ---------------------------------------------------- */

static redisContext *direct_connect(const char *base)
{
	const char *p = strstr(base, "://");
	char host[256];
	const char *colon;
	struct timeval tv = {10, 0};
	redisContext *rc;

	if (!p)
		return NULL;
	p += 3;
	colon = strchr(p, ':');
	if (!colon || (size_t)(colon - p) >= sizeof(host))
		return NULL;
	memcpy(host, p, (size_t)(colon - p));
	host[colon - p] = 0;
	rc = redisConnectWithTimeout(host, atoi(colon + 1), tv);
	if (!rc || rc->err) {
		cli_error("bench remote: cannot connect to %s: %s", base,
			  rc ? rc->errstr : "no memory");
		if (rc)
			redisFree(rc);
		return NULL;
	}
	redisSetTimeout(rc, tv);
	return rc;
}

/* The server's CPU seconds so far (INFO cpu), or -1. */
static double server_cpu(redisContext *rc)
{
	redisReply *r = redisCommand(rc, "INFO cpu");
	double sys = -1, user = -1;
	const char *p;

	if (r && r->type == REDIS_REPLY_STRING) {
		p = strstr(r->str, "used_cpu_sys:");
		if (p)
			sys = atof(p + strlen("used_cpu_sys:"));
		p = strstr(r->str, "used_cpu_user:");
		if (p)
			user = atof(p + strlen("used_cpu_user:"));
	}
	if (r)
		freeReplyObject(r);
	return sys < 0 || user < 0 ? -1 : sys + user;
}

/* CPU seconds so far of a clock: CLOCK_THREAD_CPUTIME_ID (this thread),
 * CLOCK_PROCESS_CPUTIME_ID (the process, the engine's threads with it). */
static double cpu_seconds(clockid_t clock)
{
	struct timespec t;

	clock_gettime(clock, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int cluster_url(const char *base)
{
	return strncmp(base, "redis+cluster://", 16) == 0;
}

/*
 * GET of every block in order, DIRECT_WINDOW kept in flight.  With
 * cache_fd >= 0 (direct-cache) each block is also written there, the
 * time that takes going to c->cache_fill; without (direct), the client's
 * and the server's CPU seconds go to c->direct_cpu (either -1 if
 * unknown).
 */
static int pipelined_get(struct remote_ctx *c, int cache_fd,
			 struct bench_run *out)
{
	uint64_t nblocks = c->size / REMOTE_BLOCK, sent = 0, got = 0;
	double t0 = now_seconds(), c0 = cpu_seconds(CLOCK_THREAD_CPUTIME_ID);
	double s0 = -1, i0;
	redisContext *rc = direct_connect(c->base);
	int ret = 0;

	if (!rc)
		return -1;
	if (cache_fd < 0) {
		i0 = now_seconds();
		s0 = server_cpu(rc); /* not timed */
		t0 += now_seconds() - i0;
	}
	out->checksum = 0;
	c->cache_fill = 0;
	for (; got < nblocks && ret == 0; got++) {
		off_t at = (off_t)(got * REMOTE_BLOCK);
		redisReply *r = NULL; /* hiredis sets it on success only */
		double f0;

		while (sent < nblocks && sent - got < DIRECT_WINDOW)
			redisAppendCommand(rc, "GET %s:%llu", c->prefix,
					   (unsigned long long)sent++);
		if (redisGetReply(rc, (void **)&r) != REDIS_OK ||
		    r->type != REDIS_REPLY_STRING || r->len != REMOTE_BLOCK) {
			cli_error("bench remote: direct GET of block %llu "
				  "failed",
				  (unsigned long long)got);
			ret = -1;
		} else if (cache_fd >= 0) {
			f0 = now_seconds();
			if (pwrite(cache_fd, r->str, REMOTE_BLOCK, at) !=
			    REMOTE_BLOCK) {
				cli_error("bench remote: direct-cache: %s",
					  strerror(errno));
				ret = -1;
			}
			c->cache_fill += now_seconds() - f0;
		}
		if (ret == 0)
			out->checksum += sum_stride64(r->str, r->len);
		if (r)
			freeReplyObject(r);
	}
	out->seconds = now_seconds() - t0;
	if (cache_fd < 0) {
		c->direct_cpu[0] = cpu_seconds(CLOCK_THREAD_CPUTIME_ID) - c0;
		c->direct_cpu[1] = s0 < 0 ? -1 : server_cpu(rc);
		if (c->direct_cpu[1] >= 0)
			c->direct_cpu[1] -= s0;
	}
	redisFree(rc);
	return ret;
}

static int direct_seq(void *arg, struct bench_run *out)
{
	return pipelined_get(arg, -1, out);
}

/*
 * direct-cache: direct's client, but each block it gets is also written
 * into a memfd of its own: a page cache, a new page for every page read,
 * as any design that keeps the data must allocate.  Not a baseline: the
 * least such a design does in one thread, so what a page cache costs
 * here.  The memfd is freed untimed, as faultline's cache is.
 */
static int direct_cache_seq(void *arg, struct bench_run *out)
{
	struct remote_ctx *c = arg;
	int fd = memfd_create("flbench-cache", MFD_CLOEXEC);
	int ret;

	if (fd < 0) {
		cli_error("bench remote: memfd_create: %s", strerror(errno));
		return -1;
	}
	ret = pipelined_get(c, fd, out);
	if (ret == 0) { /* untimed: the cache holds what was read */
		void *m = mmap(NULL, c->size, PROT_READ, MAP_SHARED, fd, 0);

		if (m == MAP_FAILED ||
		    sum_stride64(m, c->size) != out->checksum) {
			cli_error("bench remote: direct-cache: its cache "
				  "does not hold what it read");
			ret = -1;
		}
		if (m != MAP_FAILED)
			munmap(m, c->size);
	}
	close(fd);
	return ret;
}

/* One request at a time: GET of the page's block (whole_block), or
 * GETRANGE of the page alone. */
static int direct_rand_run(struct remote_ctx *c, int whole_block,
			   struct bench_run *out)
{
	double t0 = now_seconds();
	redisContext *rc = direct_connect(c->base);

	if (!rc)
		return -1;
	out->checksum = 0;
	for (unsigned i = 0; i < c->nreads; i++) {
		uint64_t pg = c->pages[i], off = pg * c->page;
		uint64_t block = off / REMOTE_BLOCK, in = off % REMOTE_BLOCK;
		uint64_t at = whole_block ? block * REMOTE_BLOCK : off;
		size_t want = whole_block ? REMOTE_BLOCK : c->page;
		redisReply *r;
		uint64_t w;

		if (whole_block)
			r = redisCommand(rc, "GET %s:%llu", c->prefix,
					 (unsigned long long)block);
		else
			r = redisCommand(
				rc, "GETRANGE %s:%llu %llu %llu", c->prefix,
				(unsigned long long)block,
				(unsigned long long)in,
				(unsigned long long)(in + c->page - 1));
		if (!r || r->type != REDIS_REPLY_STRING || r->len != want) {
			cli_error("bench remote: direct read failed");
			if (r)
				freeReplyObject(r);
			redisFree(rc);
			return -1;
		}
		memcpy(&w, r->str + (rand_offset(pg, c->page) - at), 8);
		out->checksum += w;
		freeReplyObject(r);
	}
	out->seconds = now_seconds() - t0;
	redisFree(rc);
	return 0;
}

static int direct_rand(void *arg, struct bench_run *out)
{
	return direct_rand_run(arg, 1, out);
}

static int direct_rand_page(void *arg, struct bench_run *out)
{
	return direct_rand_run(arg, 0, out);
}

/* ---- uffd-minimal ----------------------------------------------------- */

/* A server's own connection. */
struct minimal_server {
	const struct remote_ctx *c;
	redisContext *rc;
};

static void *minimal_open(void *arg)
{
	struct minimal_server *ms = malloc(sizeof(*ms));

	if (ms) {
		ms->c = arg;
		ms->rc = direct_connect(ms->c->base);
		if (!ms->rc) {
			free(ms);
			ms = NULL;
		}
	}
	return ms;
}

static int minimal_fill(void *state, void *page, uint64_t offset)
{
	struct minimal_server *ms = state;
	size_t len = ms->c->page;
	uint64_t block = offset / REMOTE_BLOCK, in = offset % REMOTE_BLOCK;
	redisReply *r = redisCommand(ms->rc, "GETRANGE %s:%llu %llu %llu",
				     ms->c->prefix, (unsigned long long)block,
				     (unsigned long long)in,
				     (unsigned long long)(in + len - 1));
	int ok = r && r->type == REDIS_REPLY_STRING && r->len == len;

	if (ok)
		memcpy(page, r->str, len);
	if (r)
		freeReplyObject(r);
	return ok ? 0 : -1;
}

static void minimal_close(void *state)
{
	struct minimal_server *ms = state;

	redisFree(ms->rc);
	free(ms);
}

static int minimal_rand(void *arg, struct bench_run *out)
{
	struct remote_ctx *c = arg;
	struct uffd_minimal_source src = {minimal_open, minimal_fill,
					  minimal_close, c};
	double t0 = now_seconds();
	struct uffd_minimal m;
	const char *p;

	p = uffd_minimal_map(&m, c->size, c->page, 1, &src);
	if (!p) {
		cli_error("bench remote: uffd-minimal: %s", strerror(errno));
		return -1;
	}
	out->checksum = 0;
	for (unsigned i = 0; i < c->nreads; i++)
		out->checksum += *(
			const volatile uint64_t *)(p + rand_offset(c->pages[i],
								   c->page));
	out->seconds = now_seconds() - t0;
	if (uffd_minimal_unmap(&m) < 0) {
		cli_error("bench remote: uffd-minimal: a read failed");
		return -1;
	}
	return 0;
}

/* ---- faultline --------------------------------------------------------- */

struct fl_run {
	struct remote_ctx *c;
	int random;
	redisContext *info; /* to ask the server its CPU seconds, or NULL */
};

/* Timed on a fresh engine: open the store, map, read, unmap. */
static int fl_timed(void *arg, fl_engine *e, struct bench_run *out)
{
	struct fl_run *fr = arg;
	struct remote_ctx *c = fr->c;
	double s0 = fr->info ? server_cpu(fr->info) : -1;
	double c0 = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID);
	double t0 = now_seconds();
	struct fl_store *s = fl_store_redis_open(c->url, NULL);
	fl_object *o;
	const char *p;
	int ret = 0;

	if (!s) {
		cli_error("bench remote: fl_store_redis_open %s: %s", c->url,
			  strerror(errno));
		return -1;
	}
	o = fl_object_create(e, s, O_RDONLY);
	if (!o) {
		cli_error("bench remote: fl_object_create: %s",
			  strerror(errno));
		s->ops->destroy(s);
		return -1;
	}
	p = fl_mmap(e, NULL, c->size, PROT_READ, MAP_SHARED, o, 0);
	if (p == MAP_FAILED) {
		cli_error("bench remote: fl_mmap: %s", strerror(errno));
		fl_object_close(o);
		return -1;
	}
	if (fr->random)
		fl_madvise(e, (void *)p, c->size, MADV_RANDOM);
	out->checksum = 0;
	if (!fr->random)
		out->checksum = sum_stride64(p, c->size);
	else
		for (unsigned i = 0; i < c->nreads; i++)
			out->checksum += *(
				const volatile uint64_t *)(p +
							   rand_offset(
								   c->pages[i],
								   c->page));
	out->seconds = now_seconds() - t0;
	c->fl_cpu[0] = cpu_seconds(CLOCK_PROCESS_CPUTIME_ID) - c0;
	c->fl_cpu[1] = s0 < 0 ? -1 : server_cpu(fr->info) - s0;
	fl_store_redis_stats(s, &c->st);
	fl_engine_stats(e, &c->es);
	if (fl_munmap(e, (void *)p, c->size) || fl_object_close(o)) {
		cli_error("bench remote: unmap/close: %s", strerror(errno));
		ret = -1;
	}
	return ret;
}

/* The standalone server's CPU seconds are read beside it (a cluster's
 * are spread over its nodes: not read). */
static int fl_seq(void *arg, struct bench_run *out)
{
	struct remote_ctx *c = arg;
	struct fl_run fr = {c, 0, NULL};
	int ret;

	if (!cluster_url(c->base))
		fr.info = direct_connect(c->base);
	ret = bench_on_fresh_engine("remote", fl_timed, &fr, out);
	if (fr.info)
		redisFree(fr.info);
	return ret;
}

static int fl_rand(void *arg, struct bench_run *out)
{
	struct fl_run fr = {arg, 1, NULL};

	return bench_on_fresh_engine("remote", fl_timed, &fr, out);
}

static void store_summary(const struct remote_ctx *c, const char *row)
{
	printf("  # %s (last run): %llu block commands in %llu round trips "
	       "(%.1f per trip), %llu connections made, %llu reads sent by "
	       "their submitter; engine: %llu store reads (%llu completed on "
	       "the store's threads), mean queue depth %.2f\n",
	       row, (unsigned long long)c->st.commands,
	       (unsigned long long)c->st.round_trips,
	       c->st.round_trips
		       ? (double)c->st.commands / (double)c->st.round_trips
		       : 0.0,
	       (unsigned long long)c->st.connects,
	       (unsigned long long)c->st.reads_sent_at_submit,
	       (unsigned long long)c->es.store_reads,
	       (unsigned long long)c->es.store_reads_inline,
	       c->es.store_reads ? (double)c->es.store_read_depth /
					   (double)c->es.store_reads
				 : 0.0);
}

/*
 * What the sequential rows cost in CPU (last runs).  On a machine of few
 * CPUs this is what bounds a design that fills a page cache: the
 * server's, the client's and the fill's CPU seconds share those CPUs.
 */
static void seq_cpu_summary(const struct remote_ctx *c)
{
	printf("  # CPU seconds (last runs): direct's client %.3f, server "
	       "%.3f; faultline's\n  # process %.3f, server %.3f; "
	       "direct-cache's pwrites into its cache took %.3f s (wall)\n",
	       c->direct_cpu[0], c->direct_cpu[1], c->fl_cpu[0], c->fl_cpu[1],
	       c->cache_fill);
}

/* ---- setup ------------------------------------------------------------ */

/* 1 if nothing answers at base (refused, unreachable, timed out): the
 * scenario is skipped then, as without a URL. */
static int server_absent(const char *base)
{
	char url[600];
	struct fl_store *s;

	snprintf(url, sizeof(url), "%s/flbench-probe-%d", base, (int)getpid());
	s = fl_store_redis_open(url, NULL);
	if (s) {
		s->ops->destroy(s);
		return 0;
	}
	return errno != ENOENT && errno != EINVAL && errno != EPROTO;
}

/* Write the pattern into a new object at base; 0 or -1 (printed). */
static int remote_setup(struct remote_ctx *c, const char *base)
{
	struct fl_redis_options ro = {.create_size = c->size,
				      .exclusive = 1,
				      .block_size = REMOTE_BLOCK};
	size_t chunk = 8u << 20;
	char *buf = malloc(chunk);
	struct fl_store *s;
	uint64_t off;

	c->base = base;
	snprintf(c->prefix, sizeof(c->prefix), "flbench-%d", (int)getpid());
	snprintf(c->url, sizeof(c->url), "%s/%s", base, c->prefix);
	s = buf ? fl_store_redis_open(c->url, &ro) : NULL;
	if (!s) {
		cli_error("bench remote: cannot create %s: %s", c->url,
			  strerror(errno));
		free(buf);
		return -1;
	}
	for (off = 0; off < c->size; off += chunk) {
		size_t n =
			c->size - off < chunk ? (size_t)(c->size - off) : chunk;

		pattern_fill(REMOTE_SEED, buf, n, off);
		if (s->ops->write(s, buf, n, off) != (ssize_t)n) {
			cli_error("bench remote: writing %s: %s", c->url,
				  strerror(errno));
			break;
		}
	}
	s->ops->destroy(s);
	free(buf);
	return off < c->size ? -1 : 0;
}

static void remote_teardown(struct remote_ctx *c)
{
	if (c->base && fl_store_redis_remove(c->url, NULL))
		cli_error("bench remote: could not delete %s: %s", c->url,
			  strerror(errno));
}

static void random_pages(struct remote_ctx *c)
{
	uint64_t s = 0x9e3779b97f4a7c15ULL, pages = c->size / c->page;

	for (unsigned i = 0; i < c->nreads; i++)
		c->pages[i] = bench_random(&s) % pages;
}

/* The cluster's rows: faultline only (the direct baselines are the
 * standalone server's), printed as ratios against those. */
static int remote_cluster(const struct bench_opts *o, struct remote_ctx *sc,
			  struct bench_config *dseq, struct bench_config *drand,
			  uint64_t seq_sum, uint64_t rand_sum)
{
	const char *base = getenv("FL_REDIS_CLUSTER_URL");
	struct remote_ctx c = *sc;
	struct bench_config seq[] = {
		{"faultline-cluster", fl_seq, &c, 0, 0, {0}}};
	struct bench_config rnd[] = {
		{"faultline-cluster", fl_rand, &c, 0, 0, {0}}};
	int ret = -1;

	if (!base || !*base) {
		printf("  cluster: skipped (FL_REDIS_CLUSTER_URL not set)\n");
		return 0;
	}
	if (server_absent(base)) {
		printf("  cluster: skipped (no cluster answers at %s: %s)\n",
		       base, strerror(errno));
		return 0;
	}
	c.base = NULL;
	if (remote_setup(&c, base) == 0 &&
	    bench_run_all(o, seq, 1, seq_sum, 0) == 0) {
		printf("  cluster (%s), sequential:\n", base);
		bench_table(seq, 1, c.size / c.page, c.size);
		store_summary(&c, "faultline-cluster sequential");
		if (bench_run_all(o, rnd, 1, rand_sum, 0) == 0) {
			printf("  cluster, random:\n");
			bench_table(rnd, 1, c.nreads,
				    (uint64_t)c.nreads * c.page);
			store_summary(&c, "faultline-cluster random");
			bench_ratio("remote-cluster-seq", &seq[0], dseq);
			bench_ratio("remote-cluster-rand", &rnd[0], drand);
			ret = 0;
		}
	}
	remote_teardown(&c);
	return ret;
}

int bench_remote(const struct bench_opts *o)
{
	const char *base = getenv("FL_REDIS_URL");
	struct remote_ctx c = {.size = o->size ? o->size : 256ULL << 20,
			       .page = o->page,
			       .nreads = RAND_READS};
	struct bench_config seq[] = {
		{"direct", direct_seq, &c, 0, 0, {0}},
		{"direct-cache", direct_cache_seq, &c, 0, 0, {0}},
		{"faultline", fl_seq, &c, 0, 0, {0}},
	};
	struct bench_config rnd[] = {
		{"direct", direct_rand, &c, 0, 0, {0}},
		{"direct-page", direct_rand_page, &c, 0, 0, {0}},
		{"uffd-minimal", minimal_rand, &c, 0, 0, {0}},
		{"faultline", fl_rand, &c, 0, 0, {0}},
	};
	uint64_t seq_sum, rand_sum;
	char buf[32];
	int ret = -1;

	bench_title(o, "remote", "page reads of an object in Redis");
	if (!base || !*base) {
		printf("  remote: skipped (no Redis server: set FL_REDIS_URL "
		       "and FL_REDIS_CLUSTER_URL,\n  e.g. eval \"$(tests/"
		       "redis-servers.sh start)\")\n");
		return 0;
	}
	if (server_absent(base)) {
		printf("  remote: skipped (no Redis server answers at %s: "
		       "%s)\n",
		       base, strerror(errno));
		return 0;
	}
	if (c.size % REMOTE_BLOCK) {
		cli_error("bench remote: --size must be a multiple of 64K");
		return -1;
	}
	printf("  size %s in %u-byte blocks at %s; %u random reads\n",
	       format_size(c.size, buf, sizeof(buf)), REMOTE_BLOCK, base,
	       c.nreads);
	c.pages = malloc(c.nreads * sizeof(*c.pages));
	if (!c.pages)
		return -1;
	random_pages(&c);
	seq_sum = pattern_sum_stride64(REMOTE_SEED, c.size);
	rand_sum = rand_expected(&c);
	if (remote_setup(&c, base) == 0 &&
	    bench_run_all(o, seq, 3, seq_sum, 0) == 0) {
		printf("  sequential (direct: pipelined GET, %u in flight):\n",
		       DIRECT_WINDOW);
		bench_table(seq, 3, c.size / c.page, c.size);
		store_summary(&c, "faultline sequential");
		seq_cpu_summary(&c);
		if (bench_run_all(o, rnd, 4, rand_sum, 0) == 0)
			ret = 0;
	}
	if (ret == 0) {
		printf("  random (direct: one GET of the page's block at a "
		       "time; direct-page: one\n  GETRANGE of the page at a "
		       "time; uffd-minimal: one GETRANGE a fault; faultline:\n"
		       "  MADV_RANDOM, reads the page):\n");
		bench_table(rnd, 4, c.nreads, (uint64_t)c.nreads * c.page);
		store_summary(&c, "faultline random");
		bench_ratio("remote-seq", &seq[2], &seq[0]);
		bench_target("remote-seq/direct",
			     bench_ratio_value(&seq[2], &seq[0]), 0.8);
		bench_ratio("remote-seq", &seq[2], &seq[1]);
		/* The most a design with a page cache gets here. */
		bench_ratio("remote-seq-direct-cache", &seq[1], &seq[0]);
		bench_ratio("remote-rand", &rnd[3], &rnd[0]);
		bench_target("remote-rand/direct",
			     bench_ratio_value(&rnd[3], &rnd[0]), 0.8);
		bench_ratio("remote-rand", &rnd[3], &rnd[1]);
		bench_ratio("remote-rand", &rnd[3], &rnd[2]);
		/* The most a user-space fault server gets here. */
		bench_ratio("remote-rand-uffd-minimal", &rnd[2], &rnd[0]);
	}
	remote_teardown(&c);
	if (ret == 0)
		ret = remote_cluster(o, &c, &seq[0], &rnd[0], seq_sum,
				     rand_sum);
	free(c.pages);
	return ret;
}

#else /* !FL_HAVE_HIREDIS */

int bench_remote(const struct bench_opts *o)
{
	bench_title(o, "remote", "page reads of an object in Redis");
	printf("  remote: skipped (faultline was built without hiredis)\n");
	return 0;
}

#endif
