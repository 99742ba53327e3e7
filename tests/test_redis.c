// SPDX-License-Identifier: MIT
/*
 * The Redis store against real servers: the standalone server and the
 * three-node cluster named by FL_REDIS_URL and FL_REDIS_CLUSTER_URL
 * (tests/redis-servers.sh starts them; .ci/run does), and servers of its
 * own (redis-server on PATH) for the cases that kill, stop or restart
 * one.  Without the servers the binary is skipped (77), unless
 * FL_REQUIRE_REDIS=1 (CI), which makes that a failure.
 *
 * Every object lives under a prefix of its own (pid, case, counter) and
 * is deleted at the end of its case.  The layout is checked with plain
 * hiredis, as another tool would read it.
 */
#include "harness.h"
#include "inject.h"
#include "redis_client.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/prctl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <libgen.h>
#include <sys/wait.h>
#include <time.h>

#ifdef FL_HAVE_HIREDIS
#include <hiredis/hiredis.h>

#define MIB (1024 * 1024ull)

static const char *url_standalone, *url_cluster;

/* Skip (or, with FL_REQUIRE_REDIS=1, fail) the binary before main runs
 * its cases when no server is named. */
__attribute__((constructor)) static void need_servers(void)
{
	const char *req = getenv("FL_REQUIRE_REDIS");

	url_standalone = getenv("FL_REDIS_URL");
	url_cluster = getenv("FL_REDIS_CLUSTER_URL");
	if (url_standalone && *url_standalone && url_cluster && *url_cluster)
		return;
	if (req && !strcmp(req, "1")) {
		printf("FAIL test_redis.servers: FL_REQUIRE_REDIS=1 but "
		       "FL_REDIS_URL or FL_REDIS_CLUSTER_URL is not set\n");
		exit(1);
	}
	printf("SKIP test_redis: no Redis servers (set FL_REDIS_URL and "
	       "FL_REDIS_CLUSTER_URL: eval \"$(tests/redis-servers.sh "
	       "start)\")\n");
	exit(77);
}

/* ---- plain hiredis, to look at what the store wrote -------------------- */

/* host and port of the first server of url ("redis://h:p", or a
 * cluster's list) or of its index-th seed. */
static void url_server(const char *url, int index, char *host, size_t hlen,
		       int *port)
{
	const char *p = strstr(url, "://");
	int i;

	REQUIRE(p);
	p += 3;
	for (i = 0; i < index; i++) {
		p = strchr(p, ',');
		REQUIRE(p);
		p++;
	}
	const char *colon = strchr(p, ':');

	REQUIRE(colon && (size_t)(colon - p) < hlen);
	memcpy(host, p, (size_t)(colon - p));
	host[colon - p] = 0;
	*port = atoi(colon + 1);
}

static redisContext *rc_connect_port(const char *host, int port)
{
	struct timeval tv = {5, 0};
	redisContext *c = redisConnectWithTimeout(host, port, tv);

	REQUIRE(c && !c->err);
	redisSetTimeout(c, tv);
	return c;
}

static redisContext *rc_connect(const char *url, int index)
{
	char host[128];
	int port;

	url_server(url, index, host, sizeof(host), &port);
	return rc_connect_port(host, port);
}

static redisReply *rc_cmd(redisContext *c, const char *fmt, ...)
{
	va_list ap;
	redisReply *r;

	va_start(ap, fmt);
	r = redisvCommand(c, fmt, ap);
	va_end(ap);
	REQUIRE(r);
	return r;
}

/* The node (index into the cluster URL's seeds) that serves key. */
static int cluster_node_of(const char *key)
{
	for (int i = 0; i < 3; i++) {
		redisContext *c = rc_connect(url_cluster, i);
		redisReply *r = rc_cmd(c, "EXISTS %s", key);
		int here = r->type == REDIS_REPLY_INTEGER;

		freeReplyObject(r);
		redisFree(c);
		if (here)
			return i;
	}
	return -1;
}

/* A prefix of this case's own. */
static void make_prefix(char *buf, size_t len, const char *tag)
{
	static int counter;

	snprintf(buf, len, "fltest-%d-%s-%d", (int)getpid(), tag, ++counter);
}

static void make_url(char *buf, size_t len, const char *base,
		     const char *prefix)
{
	snprintf(buf, len, "%s/%s", base, prefix);
}

/* Delete the object's keys (meta and nblocks blocks), on every node. */
static void object_delete(const char *base, const char *prefix,
			  uint64_t nblocks)
{
	int nodes = strstr(base, "cluster") ? 3 : 1;

	for (int i = 0; i < nodes; i++) {
		redisContext *c = rc_connect(base, i);

		/* DEL of a key another node owns answers MOVED: ignored. */
		redisAppendCommand(c, "DEL %s:meta", prefix);
		for (uint64_t b = 0; b < nblocks; b++)
			redisAppendCommand(c, "DEL %s:%llu", prefix,
					   (unsigned long long)b);
		for (uint64_t b = 0; b <= nblocks; b++) {
			void *r;

			if (redisGetReply(c, &r) == REDIS_OK)
				freeReplyObject(r);
		}
		redisFree(c);
	}
}

/* A timeout far above any wait a loaded machine makes, for cases that
 * test no timeout (see open_store); and the options of a store that opens
 * an existing object with it. */
#define PATIENT_MS 30000
static const struct fl_redis_options patient = {.timeout_ms = PATIENT_MS};

static struct fl_store *open_store(const char *base, const char *prefix,
				   uint64_t create, uint32_t block)
{
	/* A timeout far above any wait a loaded machine makes: these cases
	 * test no timeout (those that do set their own), and with the default
	 * 2 s, swap_standalone once failed 78 writes and reads beside a CPU
	 * hog, a stress loop and two sanitizer runs. */
	struct fl_redis_options o = {.create_size = create,
				     .block_size = block,
				     .timeout_ms = PATIENT_MS};
	char url[512];
	struct fl_store *s;

	make_url(url, sizeof(url), base, prefix);
	s = fl_store_redis_open(url, &o);
	REQUIRE(s);
	return s;
}

static struct fl_redis_stats rstats(struct fl_store *s)
{
	struct fl_redis_stats st;

	REQUIRE(fl_store_redis_stats(s, &st) == 0);
	return st;
}

/* Write the pattern of seed over [0, size) through the store itself. */
static void store_fill(struct fl_store *s, uint64_t size, uint32_t seed)
{
	size_t chunk = 1 * MIB;
	unsigned char *buf = malloc(chunk);

	REQUIRE(buf);
	for (uint64_t off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? (size_t)(size - off) : chunk;

		h_fill(buf, n, seed, off);
		REQUIRE(s->ops->write(s, buf, n, off) == (ssize_t)n);
	}
	free(buf);
}

/* ---- cases that need no engine ----------------------------------------- */

TEST(open_errors)
{
	struct fl_redis_options o = {0};
	char prefix[64], url[512];
	struct fl_store *s;

	CHECK_ERR(fl_store_redis_open(NULL, NULL) == NULL, EINVAL);
	CHECK_ERR(fl_store_redis_stats(NULL, NULL) == -1, EINVAL);
	{
		struct h_file f;
		struct fl_store *fs;
		struct fl_redis_stats st;

		h_file_create(&f, PG, 1);
		fs = fl_store_file_open(f.path, O_RDONLY);
		REQUIRE(fs);
		CHECK_ERR(fl_store_redis_stats(fs, &st) == -1, EINVAL);
		fs->ops->destroy(fs);
		h_file_remove(&f);
	}
	CHECK_ERR(fl_store_redis_open("redis://127.0.0.1:1", NULL) == NULL,
		  EINVAL); /* no prefix */
	CHECK_ERR(fl_store_redis_open("http://127.0.0.1/x", NULL) == NULL,
		  EINVAL);
	CHECK_ERR(fl_store_redis_open("redis://a:1,b:2/x", NULL) == NULL,
		  EINVAL); /* one server only */
	CHECK_ERR(fl_store_redis_open("redis://127.0.0.1:99999/x", NULL) ==
			  NULL,
		  EINVAL);
	o.block_size = 1000;
	o.create_size = PG;
	CHECK_ERR(fl_store_redis_open("redis://127.0.0.1/x", &o) == NULL,
		  EINVAL);
	/* Nothing listens on port 1. */
	CHECK_ERR(fl_store_redis_open("redis://127.0.0.1:1/x", NULL) == NULL,
		  ECONNREFUSED);
	/* No object, no create_size. */
	make_prefix(prefix, sizeof(prefix), "none");
	make_url(url, sizeof(url), url_standalone, prefix);
	CHECK_ERR(fl_store_redis_open(url, NULL) == NULL, ENOENT);
	/* exclusive */
	o = (struct fl_redis_options){.create_size = 8 * PG, .exclusive = 1};
	s = fl_store_redis_open(url, &o);
	REQUIRE(s);
	CHECK_ERR(fl_store_redis_open(url, &o) == NULL, EEXIST);
	s->ops->destroy(s);
	/* Not a faultline object. */
	{
		redisContext *c = rc_connect(url_standalone, 0);
		char p2[64], u2[512];

		make_prefix(p2, sizeof(p2), "junk");
		make_url(u2, sizeof(u2), url_standalone, p2);
		freeReplyObject(rc_cmd(c, "HSET %s:meta format other", p2));
		CHECK_ERR(fl_store_redis_open(u2, NULL) == NULL, EPROTO);
		freeReplyObject(rc_cmd(c, "DEL %s:meta", p2));
		redisFree(c);
	}
	/* A standalone server is not a cluster. */
	{
		char u3[512];

		snprintf(u3, sizeof(u3), "redis+cluster://%s/x",
			 strstr(url_standalone, "://") + 3);
		CHECK_ERR(fl_store_redis_open(u3, NULL) == NULL, EIO);
	}
	object_delete(url_standalone, prefix, 0);
}

/* The layout on the server: the meta hash, one key per block, sparse. */
TEST(layout)
{
	uint64_t size = 5 * 65536 + 3 * PG + 100; /* a partial last block */
	unsigned char *buf = malloc(2 * 65536);
	char prefix[64];
	struct fl_store *s;
	redisContext *c;
	redisReply *r;

	REQUIRE(buf);
	make_prefix(prefix, sizeof(prefix), "layout");
	s = open_store(url_standalone, prefix, size, 0);
	CHECK_EQ(s->ops->size(s), size);
	CHECK_EQ(rstats(s).block_size, 65536);
	c = rc_connect(url_standalone, 0);
	r = rc_cmd(c, "HGETALL %s:meta", prefix);
	REQUIRE(r->type == REDIS_REPLY_ARRAY && r->elements == 8);
	for (size_t i = 0; i < 8; i += 2) {
		const char *k = r->element[i]->str, *v = r->element[i + 1]->str;

		if (!strcmp(k, "format"))
			CHECK(!strcmp(v, "faultline-blocks"));
		else if (!strcmp(k, "version"))
			CHECK(!strcmp(v, "1"));
		else if (!strcmp(k, "size"))
			CHECK_EQ(strtoull(v, NULL, 10), size);
		else if (!strcmp(k, "block_size"))
			CHECK(!strcmp(v, "65536"));
		else
			CHECK(!"unknown field");
	}
	freeReplyObject(r);
	/* Sparse: reads zeros, no block key. */
	memset(buf, 0xff, 2 * 65536);
	CHECK_EQ(s->ops->read(s, buf, 2 * 65536, 65536), 2 * 65536);
	CHECK_EQ(h_nonzero(buf, 2 * 65536), -1);
	/* One page in block 2 at offset 8192: a SETRANGE of that page. */
	h_fill(buf, PG, 7, 2 * 65536 + 2 * PG);
	CHECK_EQ(s->ops->write(s, buf, PG, 2 * 65536 + 2 * PG), PG);
	r = rc_cmd(c, "STRLEN %s:2", prefix);
	CHECK_EQ(r->integer, 3 * PG);
	freeReplyObject(r);
	r = rc_cmd(c, "GETRANGE %s:2 8192 8199", prefix);
	CHECK_EQ(r->len, 8);
	CHECK_EQ(h_mismatch(r->str, 8, 7, 2 * 65536 + 2 * PG), -1);
	freeReplyObject(r);
	r = rc_cmd(c, "EXISTS %s:1", prefix);
	CHECK_EQ(r->integer, 0);
	freeReplyObject(r);
	/* Read back across blocks 1-2: zeros, the page, zeros. */
	CHECK_EQ(s->ops->read(s, buf, 2 * 65536, 65536), 2 * 65536);
	CHECK_EQ(h_nonzero(buf, 65536 + 2 * PG), -1);
	CHECK_EQ(h_mismatch(buf + 65536 + 2 * PG, PG, 7, 2 * 65536 + 2 * PG),
		 -1);
	CHECK_EQ(h_nonzero(buf + 65536 + 3 * PG, 65536 - 3 * PG), -1);
	/* A whole block of zeros deletes it. */
	memset(buf, 0, 65536);
	CHECK_EQ(s->ops->write(s, buf, 65536, 2 * 65536), 65536);
	r = rc_cmd(c, "EXISTS %s:2", prefix);
	CHECK_EQ(r->integer, 0);
	freeReplyObject(r);
	/* The last block is cut at the object's end; reads past it: 0. */
	h_fill(buf, 3 * PG + 100, 8, 5 * 65536);
	CHECK_EQ(s->ops->write(s, buf, 3 * PG + 100, 5 * 65536), 3 * PG + 100);
	r = rc_cmd(c, "STRLEN %s:5", prefix);
	CHECK_EQ(r->integer, 3 * PG + 100);
	freeReplyObject(r);
	memset(buf, 0xff, 4 * PG);
	CHECK_EQ(s->ops->read(s, buf, 4 * PG, 5 * 65536), 3 * PG + 100);
	CHECK_EQ(h_mismatch(buf, 3 * PG + 100, 8, 5 * 65536), -1);
	CHECK_EQ(s->ops->read(s, buf, PG, 6 * 65536), 0);
	/* One round trip per call, however many blocks. */
	{
		struct fl_redis_stats a = rstats(s), b;

		CHECK_EQ(s->ops->read(s, buf, 2 * 65536, 0), 2 * 65536);
		b = rstats(s);
		CHECK_EQ(b.round_trips - a.round_trips, 1);
		CHECK_EQ(b.commands - a.commands, 2);
	}
	s->ops->destroy(s);
	/* read_only: a store that cannot be mapped writable. */
	{
		struct fl_redis_options ro = {.read_only = 1};
		char url[512];
		fl_engine *e = h_engine(1);

		make_url(url, sizeof(url), url_standalone, prefix);
		s = fl_store_redis_open(url, &ro);
		REQUIRE(s);
		CHECK_EQ(s->read_only, 1);
		CHECK_ERR(fl_object_create(e, s, O_RDWR) == NULL, EACCES);
		s->ops->destroy(s);
		CHECK_EQ(fl_engine_destroy(e), 0);
	}
	redisFree(c);
	object_delete(url_standalone, prefix, 6);
	free(buf);
}

/* ---- mappings ------------------------------------------------------------ */

struct writers {
	unsigned char *shared;
	size_t pages;
	fl_engine *e;
};

/* Thread i writes the pattern of seed 40 + i into every 4th page from i,
 * through the shared mapping, with an msync every 16 pages. */
static void writer(int i, void *arg)
{
	struct writers *w = arg;

	for (size_t pg = (size_t)i; pg < w->pages; pg += 4) {
		h_fill(w->shared + pg * PG, PG, 40 + (uint32_t)i, pg * PG);
		if (pg % 16 == (size_t)i)
			CHECK_EQ(fl_msync(w->e, w->shared + pg * PG, PG,
					  MS_SYNC),
				 0);
	}
}

static void check_written(const unsigned char *p, size_t pages)
{
	for (size_t pg = 0; pg < pages; pg++)
		if (h_mismatch(p + pg * PG, PG, 40 + (uint32_t)(pg % 4),
			       pg * PG) != -1) {
			h_fail(__FILE__, __LINE__, "page %zu wrong", pg);
			return;
		}
}

/* Shared and private mappings of one object, four writer threads, msync;
 * a second engine (a second machine) sees the shared stores only. */
static void map_and_share(const char *base, const char *tag)
{
	size_t size = 4 * MIB, pages = size / PG;
	char prefix[64], url[512];
	struct fl_store *s, *s2;
	struct writers w;
	fl_engine *e, *e2;
	fl_object *o, *o2;
	unsigned char *sh, *pv, *p2;
	struct fl_redis_stats st;

	make_prefix(prefix, sizeof(prefix), tag);
	s = open_store(base, prefix, size, 0);
	store_fill(s, size, 30);
	e = h_engine(2);
	o = fl_object_create(e, s, O_RDWR);
	REQUIRE(o);
	sh = h_map(e, size, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	pv = h_map(e, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, o, 0);
	/* The private mapping reads the object, then keeps its own copy. */
	CHECK_EQ(h_mismatch(pv, size, 30, 0), -1);
	memset(pv, 0x5a, 8 * PG);
	w = (struct writers){.shared = sh, .pages = pages, .e = e};
	h_run_threads(4, writer, &w);
	CHECK_EQ(fl_msync(e, sh, size, MS_SYNC), 0);
	check_written(sh, pages);
	CHECK_EQ(pv[0], 0x5a);
	CHECK_EQ(pv[8 * PG - 1], 0x5a);
	/* Pages the private mapping did not write show the shared stores. */
	CHECK_EQ(h_mismatch(pv + 9 * PG, PG, 40 + 9 % 4, 9 * PG), -1);
	CHECK_EQ(h_estats(e).writeback_errors, 0);
	st = rstats(s);
	/* Pipelined: many block commands per round trip. */
	CHECK_GT(st.commands, st.round_trips);
	CHECK_LE(st.connections, 4 * (strstr(base, "cluster") ? 3 : 1));
	h_note("%s: %llu commands in %llu round trips, %llu connects", tag,
	       (unsigned long long)st.commands,
	       (unsigned long long)st.round_trips,
	       (unsigned long long)st.connects);

	/* A second engine opens the same URL: the shared stores. */
	make_url(url, sizeof(url), base, prefix);
	s2 = fl_store_redis_open(url, &patient);
	REQUIRE(s2);
	CHECK_EQ(s2->ops->size(s2), size);
	e2 = h_engine(2);
	o2 = fl_object_create(e2, s2, O_RDONLY);
	REQUIRE(o2);
	p2 = h_map(e2, size, PROT_READ, MAP_SHARED, o2, 0);
	check_written(p2, pages);
	CHECK_EQ(h_estats(e2).errors, 0);
	CHECK_EQ(fl_munmap(e2, p2, size), 0);
	CHECK_EQ(fl_object_close(o2), 0);
	CHECK_EQ(fl_engine_destroy(e2), 0);

	CHECK_EQ(fl_munmap(e, sh, size), 0);
	CHECK_EQ(fl_munmap(e, pv, size), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	object_delete(base, prefix, size / 65536);
}

TEST(shared_private_standalone)
{
	map_and_share(url_standalone, "share");
}

TEST(shared_private_cluster)
{
	map_and_share(url_cluster, "cshare");
}

/* A large sparse object: zeros everywhere, one block written. */
TEST(sparse)
{
	size_t size = 256 * MIB;
	char prefix[64];
	struct fl_store *s;
	fl_engine *e;
	fl_object *o;
	unsigned char *p;
	redisContext *c;
	redisReply *r;

	make_prefix(prefix, sizeof(prefix), "sparse");
	s = open_store(url_standalone, prefix, size, 0);
	e = h_engine(2);
	o = fl_object_create(e, s, O_RDWR);
	REQUIRE(o);
	p = h_map(e, size, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	CHECK_EQ(h_nonzero(p + 100 * MIB, 2 * MIB), -1);
	CHECK_EQ(h_nonzero(p + size - 64 * PG, 64 * PG), -1);
	h_fill(p + 7 * MIB, PG, 9, 7 * MIB);
	CHECK_EQ(fl_msync(e, p, size, MS_SYNC), 0);
	CHECK_EQ(fl_munmap(e, p, size), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	/* Only the written block (and the meta) exist on the server. */
	c = rc_connect(url_standalone, 0);
	r = rc_cmd(c, "EXISTS %s:%d", prefix, 7 * 16);
	CHECK_EQ(r->integer, 1);
	freeReplyObject(r);
	r = rc_cmd(c, "EVAL %s 0 %s",
		   "local n = 0 local c = '0' repeat local r = "
		   "redis.call('scan', c, 'match', ARGV[1] .. ':*', 'count', "
		   "1000) c = r[1] n = n + #r[2] until c == '0' return n",
		   prefix);
	CHECK_EQ(r->integer, 2);
	freeReplyObject(r);
	redisFree(c);
	object_delete(url_standalone, prefix, size / 65536);
}

/*
 * The client writes commands while replies come in (SEND_WINDOW), so a
 * write may meet a connection the server closed or that cancel shut
 * down.  That write fails with EPIPE (the connection is dropped, the
 * command failed or retried) and never raises SIGPIPE, whose default
 * action would kill the program: here, on a connection shut down for
 * writing, redis_conn_flush returns an error with errno EPIPE, the process
 * lives, and no SIGPIPE is left pending.
 */
TEST(write_to_a_closed_connection_raises_no_sigpipe)
{
	redisContext *c = rc_connect(url_standalone, 0);
	const char *argv[] = {"PING"};
	size_t len[] = {4};
	sigset_t pending;

	REQUIRE(shutdown(c->fd, SHUT_WR) == 0);
	REQUIRE(redisAppendCommandArgv(c, 1, argv, len) == REDIS_OK);
	errno = 0;
	CHECK_EQ(redis_conn_flush(c), REDIS_ERR);
	CHECK_EQ(errno, EPIPE);
	CHECK_EQ(c->err, REDIS_ERR_IO);
	sigpending(&pending);
	CHECK(!sigismember(&pending, SIGPIPE));
	redisFree(c);
}

struct exec_calls {
	int sent, done;
};

static void exec_sent(void *arg)
{
	((struct exec_calls *)arg)->sent++;
}

static void exec_done(void *arg, unsigned i)
{
	(void)i;
	((struct exec_calls *)arg)->done++;
}

/*
 * redis_exec_start (a send at submit, on a fault handler) never waits:
 * with no idle connection in the pool (none made yet, or its only one
 * taken) it sends nothing, calls no hook and makes no connection
 * (EAGAIN); with one idle it sends, and redis_exec_finish reads the
 * reply; once the client is cancelled it sends nothing.
 */
TEST(exec_start_never_waits)
{
	struct exec_calls calls = {0, 0};
	struct redis_hooks hooks = {.sent = exec_sent,
				    .done = exec_done,
				    .arg = &calls,
				    .abortable = 1};
	struct redis_cmd c = {.argc = 1, .argv = {"PING"}, .argvlen = {4}};
	struct redis_client cl;
	struct redis_conn held;
	struct redis_exec *x;
	char host[128];
	int port, node, fresh;

	url_server(url_standalone, 0, host, sizeof(host), &port);
	REQUIRE(redis_client_init(&cl, 0, PATIENT_MS, 1) == 0);
	node = redis_node_get(&cl, host, port);
	REQUIRE(node >= 0);
	errno = 0;
	CHECK(redis_exec_start(&cl, &c, 1, &hooks) == NULL);
	CHECK_EQ(errno, EAGAIN);
	CHECK_EQ(atomic_load(&cl.n.connects), 0);
	REQUIRE(redis_conn_get(&cl, cl.nodes[node], &held, &fresh) == 0);
	errno = 0;
	CHECK(redis_exec_start(&cl, &c, 1, &hooks) == NULL);
	CHECK_EQ(errno, EAGAIN);
	CHECK_EQ(atomic_load(&cl.n.commands), 0);
	CHECK_EQ(calls.sent + calls.done, 0);
	redis_conn_put(&cl, cl.nodes[node], &held, 0);
	x = redis_exec_start(&cl, &c, 1, &hooks);
	REQUIRE(x);
	CHECK_EQ(calls.sent, 1);
	CHECK_EQ(atomic_load(&cl.n.commands), 1);
	CHECK_EQ(redis_exec_finish(x), 0);
	CHECK_EQ(calls.done, 1);
	CHECK(c.reply && c.reply->type == REDIS_REPLY_STATUS);
	if (c.reply)
		freeReplyObject(c.reply);
	CHECK_EQ(atomic_load(&cl.n.connects), 1);
	redis_client_cancel(&cl);
	CHECK(redis_exec_start(&cl, &c, 1, &hooks) == NULL);
	CHECK_EQ(calls.sent, 1);
	redis_client_fini(&cl);
}

/*
 * A batch of many more commands than a connection keeps in flight
 * (redis_pipe.c's SEND_WINDOW, 32): each connection is sent its next
 * commands as replies come, in one round trip, every reply in its place.
 * 12 MiB in 4 KiB blocks is 3,072 SETs, then as many GETRANGEs, on one
 * node or spread over three.
 */
static void large_batch(const char *base, const char *tag)
{
	size_t size = 12 * MIB;
	unsigned char *buf = malloc(size);
	struct fl_redis_stats st0, st1;
	char prefix[64];
	struct fl_store *s;

	REQUIRE(buf);
	make_prefix(prefix, sizeof(prefix), tag);
	s = open_store(base, prefix, size, PG);
	h_fill(buf, size, 50, 0);
	st0 = rstats(s);
	CHECK_EQ(s->ops->write(s, buf, size, 0), size);
	memset(buf, 0, size);
	CHECK_EQ(s->ops->read(s, buf, size, 0), size);
	st1 = rstats(s);
	CHECK_EQ(h_mismatch(buf, size, 50, 0), -1);
	CHECK_EQ(st1.commands - st0.commands, 2 * size / PG);
	CHECK_EQ(st1.round_trips - st0.round_trips, 2);
	CHECK_EQ(st1.errors, st0.errors);
	s->ops->destroy(s);
	object_delete(base, prefix, size / PG);
	free(buf);
}

TEST(large_batch_standalone)
{
	large_batch(url_standalone, "batch");
}

TEST(large_batch_cluster)
{
	large_batch(url_cluster, "batchc");
}

/*
 * The engine's reads put each block's reply straight into the memfd behind
 * its page cache (pwrite, not through its view).  Such a write failing
 * fails the read as a failed server does: SIGBUS for the fault that needed
 * it, counted; the pages of that read are not kept, so once writes work
 * the same pages read right (the page that SIGBUSed after MADV_DONTNEED,
 * as mmap's poisoned pages).
 */
TEST(page_cache_write_fails)
{
	size_t size = 4 * MIB;
	char prefix[64];
	struct fl_store *s;
	struct h_sig sig;
	fl_engine *e;
	fl_object *o;
	unsigned char *p, v;
	uint64_t err0, read0;

	make_prefix(prefix, sizeof(prefix), "pwrite");
	s = open_store(url_standalone, prefix, size, 0);
	store_fill(s, size, 40);
	e = h_engine(2);
	o = fl_object_create(e, s, O_RDONLY);
	REQUIRE(o);
	p = h_map(e, size, PROT_READ, MAP_SHARED, o, 0);
	err0 = h_estats(e).errors;
	read0 = h_estats(e).pages_read;
	inject_set_mode(INJ_PWRITE, 1, ENOSPC, INJECT_FROM);
	CHECK_EQ(h_try_read(p + MIB, &v, &sig), SIGBUS);
	CHECK_GE(inject_fired(INJ_PWRITE), 1);
	inject_clear();
	CHECK_EQ(h_estats(e).errors, err0 + 1);
	CHECK_EQ(h_estats(e).pages_read, read0);
	CHECK_EQ(h_mismatch(p, MIB, 40, 0), -1);
	CHECK_EQ(h_mismatch(p + MIB + PG, size - MIB - PG, 40, MIB + PG), -1);
	CHECK_EQ(h_try_read(p + MIB, &v, &sig), SIGBUS); /* poisoned */
	CHECK_EQ(fl_madvise(e, p + MIB, PG, MADV_DONTNEED), 0);
	CHECK_EQ(h_mismatch(p + MIB, PG, 40, MIB), -1);
	CHECK_EQ(h_estats(e).pages_read, read0 + size / PG);
	CHECK_EQ(fl_munmap(e, p, size), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	object_delete(url_standalone, prefix, size / 65536);
}

/* A hash tag in the prefix keeps an object on one node; without one its
 * blocks spread over the cluster. */
TEST(cluster_placement)
{
	char prefix[64], tagged[80], key[160];
	struct fl_store *s;
	int nodes[3] = {0}, node = -1, spread = 0;

	make_prefix(prefix, sizeof(prefix), "place");
	snprintf(tagged, sizeof(tagged), "{%s}", prefix);
	s = open_store(url_cluster, tagged, 16 * 65536, 0);
	store_fill(s, 16 * 65536, 80);
	s->ops->destroy(s);
	for (int b = -1; b < 16; b++) {
		int n;

		if (b < 0)
			snprintf(key, sizeof(key), "%s:meta", tagged);
		else
			snprintf(key, sizeof(key), "%s:%d", tagged, b);
		n = cluster_node_of(key);
		CHECK(n >= 0);
		if (node < 0)
			node = n;
		CHECK_EQ(n, node);
	}
	object_delete(url_cluster, tagged, 16);
	s = open_store(url_cluster, prefix, 16 * 65536, 0);
	store_fill(s, 16 * 65536, 80);
	s->ops->destroy(s);
	for (int b = 0; b < 16; b++) {
		snprintf(key, sizeof(key), "%s:%d", prefix, b);
		node = cluster_node_of(key);
		REQUIRE(node >= 0);
		nodes[node]++;
	}
	for (int i = 0; i < 3; i++)
		spread += nodes[i] > 0;
	CHECK_GE(spread, 2);
	object_delete(url_cluster, prefix, 16);
	/* More malformed URLs. */
	CHECK_ERR(fl_store_redis_open("redis+cluster://a:1,,b:2/x", NULL) ==
			  NULL,
		  EINVAL);
	CHECK_ERR(fl_store_redis_open("redis://[::1/x", NULL) == NULL, EINVAL);
	CHECK_ERR(fl_store_redis_open("redis://h:/x", NULL) == NULL, EINVAL);
	CHECK_ERR(fl_store_redis_open("redis://h:12a/x", NULL) == NULL, EINVAL);
}

struct readers {
	const unsigned char *p;
	size_t pages;
};

/* Thread i reads every page from i, stepping by 4, out of order. */
static void reader(int i, void *arg)
{
	struct readers *r = arg;

	for (size_t k = 0; k < r->pages; k += 4) {
		size_t pg = (k * 7919 + (size_t)i) % r->pages;

		if (h_mismatch(r->p + pg * PG, PG, 90, pg * PG) != -1) {
			h_fail(__FILE__, __LINE__, "page %zu wrong", pg);
			return;
		}
	}
}

/* One connection for everything: four threads' faults, two store
 * threads and writeback share it, and nothing deadlocks or mixes up. */
TEST(one_connection)
{
	struct fl_redis_options o = {
		.create_size = 8 * MIB, .connections = 1, .io_threads = 2};
	char prefix[64], url[512];
	struct readers r;
	struct fl_store *s;
	fl_engine *e;
	fl_object *obj;
	unsigned char *p;

	make_prefix(prefix, sizeof(prefix), "onec");
	make_url(url, sizeof(url), url_standalone, prefix);
	s = fl_store_redis_open(url, &o);
	REQUIRE(s);
	store_fill(s, 8 * MIB, 90);
	e = h_engine(2);
	obj = fl_object_create(e, s, O_RDWR);
	REQUIRE(obj);
	p = h_map(e, 8 * MIB, PROT_READ | PROT_WRITE, MAP_SHARED, obj, 0);
	REQUIRE(fl_madvise(e, p, 8 * MIB, MADV_RANDOM) == 0);
	r = (struct readers){p, 8 * MIB / PG};
	h_run_threads(4, reader, &r);
	h_fill(p + 3 * PG, PG, 91, 3 * PG);
	CHECK_EQ(fl_msync(e, p, 8 * MIB, MS_SYNC), 0);
	CHECK_LE(rstats(s).connections, 1);
	CHECK_EQ(rstats(s).connects, 1);
	CHECK_EQ(h_estats(e).errors, 0);
	CHECK_EQ(fl_munmap(e, p, 8 * MIB), 0);
	CHECK_EQ(fl_object_close(obj), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	CHECK_EQ(fl_store_redis_remove(url, NULL), 0);
}

/* A mapping in e of the 16 MiB object of seed 90 (as reader reads it) at
 * url, made and filled first if create is set: its store in *s. */
static unsigned char *inline_map(fl_engine *e, const char *url, int create,
				 struct fl_store **s, fl_object **obj)
{
	struct fl_redis_options o = {.create_size = 16 * MIB};

	*s = fl_store_redis_open(url, create ? &o : &patient);
	REQUIRE(*s);
	if (create)
		store_fill(*s, 16 * MIB, 90);
	*obj = fl_object_create(e, *s, O_RDONLY);
	REQUIRE(*obj);
	return h_map(e, 16 * MIB, PROT_READ, MAP_SHARED, *obj, 0);
}

/* The next page of the second half (which the readers leave alone) read,
 * until one read went out from the submitting thread. */
struct sent_at_submit {
	struct fl_store *s;
	unsigned char *p;
	size_t pg;
};

static int read_sent_at_submit(void *arg)
{
	struct sent_at_submit *t = arg;
	unsigned char *page = t->p + 8 * MIB + t->pg++ % (8 * MIB / PG) * PG;

	if (h_mismatch(page, PG, 90, (size_t)(page - t->p)) != -1)
		h_fail(__FILE__, __LINE__, "page at %zu wrong",
		       (size_t)(page - t->p));
	return rstats(t->s).reads_sent_at_submit > 0;
}

/*
 * A read's completion runs on the store's own thread, which resumes the
 * fault there (aio_complete_here): every store read of random faults is
 * counted so, and the data is right.  Reads are sent by their submitter
 * when a store thread waits (the first one can be: the four threads wait
 * and the pool has the connection that read the metadata).  In the
 * comparison mode (hold_map_lock_for_io) none of either is.
 */
TEST(reads_complete_on_the_store_thread)
{
	for (int locked = 0; locked <= 1; locked++) {
		char prefix[64], url[512];
		struct fl_config cfg;
		struct readers r;
		struct fl_store *s;
		struct fl_stats st;
		fl_object *obj;
		fl_engine *e;
		unsigned char *p;

		fl_config_init(&cfg);
		cfg.hold_map_lock_for_io = locked;
		e = h_engine_create(&cfg);
		make_prefix(prefix, sizeof(prefix), "inl");
		make_url(url, sizeof(url), url_standalone, prefix);
		p = inline_map(e, url, 1, &s, &obj);
		REQUIRE(fl_madvise(e, p, 16 * MIB, MADV_RANDOM) == 0);
		r = (struct readers){p, 8 * MIB / PG};
		h_run_threads(4, reader, &r);
		if (!locked) {
			struct sent_at_submit t = {s, p, 0};

			CHECK(h_wait_until(read_sent_at_submit, &t));
		}
		st = h_estats(e);
		CHECK_EQ(st.errors, 0);
		CHECK(st.store_reads > 0 || locked);
		CHECK_EQ(st.store_reads_inline, locked ? 0 : st.store_reads);
		if (locked)
			CHECK_EQ(rstats(s).reads_sent_at_submit, 0);
		CHECK_EQ(fl_munmap(e, p, 16 * MIB), 0);
		CHECK_EQ(fl_object_close(obj), 0);
		CHECK_EQ(fl_engine_destroy(e), 0);
		CHECK_EQ(fl_store_redis_remove(url, NULL), 0);
	}
}

/*
 * The engine goes while readahead windows its reader did not wait for
 * still complete on the store's threads: teardown waits for those
 * running (aio_stop_here) and cancels the rest.  Sanitizer builds see a
 * completion that outlived the engine.  The object is written once; each
 * round maps it in a new engine.
 */
TEST(destroy_while_reads_complete_on_the_store_thread)
{
	char prefix[64], url[512];
	unsigned long inline_reads = 0;

	make_prefix(prefix, sizeof(prefix), "inld");
	make_url(url, sizeof(url), url_standalone, prefix);
	for (int round = 0; round < 20; round++) {
		fl_engine *e = h_engine(2);
		struct fl_store *s;
		fl_object *obj;
		unsigned char *p = inline_map(e, url, round == 0, &s, &obj);

		/* A sequential start: windows are read ahead of the reader. */
		for (size_t pg = 0; pg < 64 + (size_t)round * 16; pg++)
			if (h_mismatch(p + pg * PG, PG, 90, pg * PG) != -1)
				h_fail(__FILE__, __LINE__, "page %zu wrong",
				       pg);
		inline_reads += h_estats(e).store_reads_inline;
		CHECK_EQ(fl_munmap(e, p, 16 * MIB), 0);
		CHECK_EQ(fl_object_close(obj), 0);
		CHECK_EQ(fl_engine_destroy(e), 0);
	}
	CHECK(inline_reads > 0);
	CHECK_EQ(fl_store_redis_remove(url, NULL), 0);
}

/* ---- compression over Redis --------------------------------------------- */

/* Page pg of the compressible data of seed: one byte value throughout. */
static unsigned char squash_byte(uint32_t seed, size_t pg)
{
	return (unsigned char)(pg * 7 + seed);
}

static void squash_fill(unsigned char *p, size_t len, uint32_t seed,
			size_t first_pg)
{
	for (size_t i = 0; i < len / PG; i++)
		memset(p + i * PG, squash_byte(seed, first_pg + i), PG);
}

static long squash_mismatch(const unsigned char *p, size_t len, uint32_t seed,
			    size_t first_pg)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != squash_byte(seed, first_pg + i / PG))
			return (long)i;
	return -1;
}

/* A compressed store over a Redis object that starts empty and grows
 * (fl_store_compressed writes past its inner store's end); mapped,
 * written, read back by a second engine; Redis holds the compressed
 * bytes only. */
TEST(compressed_over_redis)
{
	struct fl_redis_options ro = {.create = 1, .exclusive = 1};
	size_t size = 4 * MIB, cblock = 60 * 1024; /* stride 64 KiB */
	char prefix[64], url[512];
	struct fl_compressed_stats cs;
	struct fl_store *s, *z;
	unsigned char *buf, *p;
	int alg = FL_COMPRESS_ZSTD;
	fl_engine *e;
	fl_object *o;
	redisContext *c;
	redisReply *r;

	make_prefix(prefix, sizeof(prefix), "cz");
	make_url(url, sizeof(url), url_standalone, prefix);
	s = fl_store_redis_open(url, &ro);
	REQUIRE(s);
	CHECK_EQ(s->ops->size(s), 0);
	z = fl_store_compressed(s, alg, 0, cblock);
	if (!z && errno == EOPNOTSUPP) {
		alg = FL_COMPRESS_LZ4;
		z = fl_store_compressed(s, alg, 0, cblock);
	}
	if (!z && errno == EOPNOTSUPP) {
		h_note("built without zstd and lz4: case not run");
		s->ops->destroy(s);
		CHECK_EQ(fl_store_redis_remove(url, NULL), 0);
		return;
	}
	REQUIRE(z);
	buf = malloc(size);
	REQUIRE(buf);
	squash_fill(buf, size, 3, 0);
	CHECK_EQ(z->ops->write(z, buf, size, 0), size);
	CHECK_GE(s->ops->size(s), PG); /* grown past the superblock */
	e = h_engine(2);
	o = fl_object_create(e, z, O_RDWR);
	REQUIRE(o);
	p = h_map(e, size, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	CHECK_EQ(squash_mismatch(p, size, 3, 0), -1);
	squash_fill(p + MIB, 8 * PG, 4, MIB / PG);
	CHECK_EQ(fl_msync(e, p, size, MS_SYNC), 0);
	CHECK_EQ(fl_store_compressed_stats(z, &cs), 0);
	CHECK_LE(cs.bytes_out * 8, cs.bytes_in);
	h_note("%s: %llu bytes in, %llu out, Redis object %lld bytes",
	       alg == FL_COMPRESS_ZSTD ? "zstd" : "lz4",
	       (unsigned long long)cs.bytes_in,
	       (unsigned long long)cs.bytes_out, (long long)s->ops->size(s));
	CHECK_EQ(fl_munmap(e, p, size), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);

	/* What Redis holds: far less than the data. */
	c = rc_connect(url_standalone, 0);
	r = rc_cmd(c, "EVAL %s 0 %s",
		   "local n = 0 local c = '0' repeat local r = "
		   "redis.call('scan', c, 'match', ARGV[1] .. ':*', 'count', "
		   "1000) c = r[1] for _, k in ipairs(r[2]) do if k ~= ARGV[1] "
		   ".. ':meta' then n = n + redis.call('strlen', k) end end "
		   "until c == '0' return n",
		   prefix);
	CHECK(r->type == REDIS_REPLY_INTEGER);
	CHECK_LE((uint64_t)r->integer * 4, size);
	freeReplyObject(r);
	redisFree(c);

	/* Another machine: the same URL, the same compression. */
	s = fl_store_redis_open(url, &patient);
	REQUIRE(s);
	z = fl_store_compressed(s, alg, 0, 0);
	REQUIRE(z);
	CHECK_EQ(z->ops->size(z), size);
	e = h_engine(2);
	o = fl_object_create(e, z, O_RDONLY);
	REQUIRE(o);
	p = h_map(e, size, PROT_READ, MAP_SHARED, o, 0);
	CHECK_EQ(squash_mismatch(p, MIB, 3, 0), -1);
	CHECK_EQ(squash_mismatch(p + MIB, 8 * PG, 4, MIB / PG), -1);
	CHECK_EQ(squash_mismatch(p + MIB + 8 * PG, size - MIB - 8 * PG, 3,
				 MIB / PG + 8),
		 -1);
	CHECK_EQ(fl_munmap(e, p, size), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	CHECK_EQ(fl_store_redis_remove(url, NULL), 0);
	free(buf);
}

/* ---- a cluster slot resharded while mapped ------------------------------ */

struct reshard {
	fl_engine *e;
	unsigned char *p;
	size_t hot_pages, cold_pages;
	_Atomic int stop;
	_Atomic unsigned rounds;
	unsigned last_seed; /* of the last round msync'ed (the worker's) */
	unsigned wait_for;  /* rounds_past: this many rounds done */
};

/* Each round writes every hot page with the round's seed and msyncs, and
 * reads a few cold pages (store reads) and checks them. */
static void *reshard_worker(void *arg)
{
	struct reshard *r = arg;
	size_t cold = r->hot_pages;

	while (!atomic_load(&r->stop)) {
		unsigned seed = 100 + atomic_load(&r->rounds);

		for (size_t pg = 0; pg < r->hot_pages; pg++)
			h_fill(r->p + pg * PG, PG, seed, pg * PG);
		if (fl_msync(r->e, r->p, r->hot_pages * PG, MS_SYNC)) {
			h_fail(__FILE__, __LINE__, "msync: %s",
			       strerror(errno));
			break;
		}
		r->last_seed = seed;
		for (int i = 0; i < 16 && cold < r->cold_pages; i++, cold++)
			if (h_mismatch(r->p + cold * PG, PG, 30, cold * PG) !=
			    -1) {
				h_fail(__FILE__, __LINE__, "cold page %zu",
				       cold);
				atomic_store(&r->stop, 1);
			}
		atomic_fetch_add(&r->rounds, 1);
	}
	return NULL;
}

static int rounds_past(void *arg)
{
	struct reshard *r = arg;

	return atomic_load(&r->rounds) >= r->wait_for || h_failures();
}

static void node_id(redisContext *c, char *id, size_t len)
{
	redisReply *r = rc_cmd(c, "CLUSTER MYID");

	REQUIRE(r->type == REDIS_REPLY_STRING && r->len < len);
	memcpy(id, r->str, r->len + 1);
	freeReplyObject(r);
}

/* Move slot from seed node src to seed node dst, key by key, as
 * redis-cli --cluster reshard does. */
static void migrate_slot(long long slot, int src, int dst)
{
	redisContext *cs = rc_connect(url_cluster, src);
	redisContext *cd = rc_connect(url_cluster, dst);
	char sid[64], did[64], host[128];
	int dport, moved = 0;
	redisReply *r;

	url_server(url_cluster, dst, host, sizeof(host), &dport);
	node_id(cs, sid, sizeof(sid));
	node_id(cd, did, sizeof(did));
	freeReplyObject(
		rc_cmd(cd, "CLUSTER SETSLOT %lld IMPORTING %s", slot, sid));
	freeReplyObject(
		rc_cmd(cs, "CLUSTER SETSLOT %lld MIGRATING %s", slot, did));
	for (;;) {
		r = rc_cmd(cs, "CLUSTER GETKEYSINSLOT %lld 4", slot);
		REQUIRE(r->type == REDIS_REPLY_ARRAY);
		if (r->elements == 0) {
			freeReplyObject(r);
			break;
		}
		for (size_t i = 0; i < r->elements; i++) {
			redisReply *m = rc_cmd(cs, "MIGRATE %s %d %s 0 5000",
					       host, dport, r->element[i]->str);

			CHECK(m->type != REDIS_REPLY_ERROR);
			freeReplyObject(m);
			moved++;
		}
		freeReplyObject(r);
	}
	for (int n = 0; n < 3; n++) {
		redisContext *c = n == dst ? cd : n == src ? cs : NULL;

		if (!c)
			c = rc_connect(url_cluster, n);
		freeReplyObject(
			rc_cmd(c, "CLUSTER SETSLOT %lld NODE %s", slot, did));
		if (c != cd && c != cs)
			redisFree(c);
	}
	h_note("slot %lld: %d keys moved from node %d to node %d", slot, moved,
	       src, dst);
	redisFree(cs);
	redisFree(cd);
}

static long long key_slot(const char *key)
{
	redisContext *c = rc_connect(url_cluster, 0);
	redisReply *r = rc_cmd(c, "CLUSTER KEYSLOT %s", key);
	long long slot = r->integer;

	freeReplyObject(r);
	redisFree(c);
	return slot;
}

/* Two slots (a block being written, a block not read yet) move to
 * another node while a mapping writes and reads: nothing is lost, and
 * the store followed the redirections. */
TEST(cluster_reshard)
{
	size_t size = 16 * MIB;
	char prefix[64], key[128], url[512];
	struct reshard r = {0};
	struct fl_store *s, *s2;
	fl_engine *e2;
	fl_object *o, *o2;
	unsigned char *p2;
	pthread_t t;
	int blocks[2] = {5, 100};

	make_prefix(prefix, sizeof(prefix), "reshard");
	s = open_store(url_cluster, prefix, size, 0);
	store_fill(s, size, 30);
	r.e = h_engine(2);
	o = fl_object_create(r.e, s, O_RDWR);
	REQUIRE(o);
	r.p = h_map(r.e, size, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	REQUIRE(fl_madvise(r.e, r.p, size, MADV_RANDOM) == 0);
	r.hot_pages = 8 * 16; /* blocks 0-7 */
	r.cold_pages = size / PG;
	r.last_seed = 100;
	REQUIRE(pthread_create(&t, NULL, reshard_worker, &r) == 0);
	for (int i = 0; i < 2; i++) {
		int src;

		snprintf(key, sizeof(key), "%s:%d", prefix, blocks[i]);
		src = cluster_node_of(key);
		REQUIRE(src >= 0);
		migrate_slot(key_slot(key), src, (src + 1) % 3);
	}
	/* A few rounds after the move: the old owner answered MOVED. */
	r.wait_for = atomic_load(&r.rounds) + 3;
	CHECK(h_wait_until(rounds_past, &r));
	atomic_store(&r.stop, 1);
	pthread_join(t, NULL);
	CHECK_EQ(h_mismatch(r.p, r.hot_pages * PG, r.last_seed, 0), -1);
	{
		struct fl_redis_stats st = rstats(s);

		CHECK_GE(st.moved + st.ask, 1);
		CHECK_GE(st.slot_refreshes, 2);
		h_note("moved %llu ask %llu refreshes %llu",
		       (unsigned long long)st.moved, (unsigned long long)st.ask,
		       (unsigned long long)st.slot_refreshes);
	}
	CHECK_EQ(h_estats(r.e).errors, 0);
	/* Another machine reads it all back. */
	make_url(url, sizeof(url), url_cluster, prefix);
	s2 = fl_store_redis_open(url, &patient);
	REQUIRE(s2);
	e2 = h_engine(2);
	o2 = fl_object_create(e2, s2, O_RDONLY);
	REQUIRE(o2);
	p2 = h_map(e2, size, PROT_READ, MAP_SHARED, o2, 0);
	CHECK_EQ(h_mismatch(p2, r.hot_pages * PG, r.last_seed, 0), -1);
	CHECK_EQ(h_mismatch(p2 + r.hot_pages * PG, size - r.hot_pages * PG, 30,
			    r.hot_pages * PG),
		 -1);
	CHECK_EQ(fl_munmap(e2, p2, size), 0);
	CHECK_EQ(fl_object_close(o2), 0);
	CHECK_EQ(fl_engine_destroy(e2), 0);
	CHECK_EQ(fl_munmap(r.e, r.p, size), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(r.e), 0);
	object_delete(url_cluster, prefix, size / 65536);
}

/* An object whose slot is being migrated (IMPORTING on one node,
 * MIGRATING on its owner, keys not moved yet): new keys are created on
 * the importing node after ASK, read back through ASK, then the slot is
 * handed over and the store follows MOVED; nothing lost. */
TEST(cluster_ask_during_migration)
{
	char prefix[64], tagged[80], url[512], key[128], sid[64], did[64];
	struct fl_redis_options ro = {.create_size = 8 * 65536};
	unsigned char *buf = malloc(8 * 65536);
	redisContext *cs, *cd;
	struct fl_redis_stats st;
	struct fl_store *s;
	long long slot;
	int src, dst;

	REQUIRE(buf);
	/* An object whose owner is not the first seed: it imports the slot
	 * (a redirection to node 0 once failed where others worked). */
	do {
		make_prefix(prefix, sizeof(prefix), "ask");
		snprintf(tagged, sizeof(tagged), "{%s}", prefix);
		snprintf(key, sizeof(key), "%s:meta", tagged);
		src = cluster_node_of(key);
		REQUIRE(src >= 0);
	} while (src == 0);
	slot = key_slot(key);
	dst = 0;
	cs = rc_connect(url_cluster, src);
	cd = rc_connect(url_cluster, dst);
	node_id(cs, sid, sizeof(sid));
	node_id(cd, did, sizeof(did));
	freeReplyObject(
		rc_cmd(cd, "CLUSTER SETSLOT %lld IMPORTING %s", slot, sid));
	freeReplyObject(
		rc_cmd(cs, "CLUSTER SETSLOT %lld MIGRATING %s", slot, did));

	make_url(url, sizeof(url), url_cluster, tagged);
	s = fl_store_redis_open(url, &ro); /* the meta: ASK, to dst */
	REQUIRE(s);
	h_fill(buf, 8 * 65536, 95, 0);
	CHECK_EQ(s->ops->write(s, buf, 8 * 65536, 0), 8 * 65536);
	memset(buf, 0, 8 * 65536);
	CHECK_EQ(s->ops->read(s, buf, 8 * 65536, 0), 8 * 65536);
	CHECK_EQ(h_mismatch(buf, 8 * 65536, 95, 0), -1);
	st = rstats(s);
	CHECK_GE(st.ask, 8);
	CHECK_EQ(st.errors, 0);

	/* Hand the slot over (no key left on src: they were all made on
	 * dst); the store's map is now stale: MOVED. */
	for (int n = 0; n < 3; n++) {
		redisContext *c = n == dst ? cd : n == src ? cs : NULL;

		if (!c)
			c = rc_connect(url_cluster, n);
		freeReplyObject(
			rc_cmd(c, "CLUSTER SETSLOT %lld NODE %s", slot, did));
		if (c != cd && c != cs)
			redisFree(c);
	}
	memset(buf, 0, 8 * 65536);
	CHECK_EQ(s->ops->read(s, buf, 8 * 65536, 0), 8 * 65536);
	CHECK_EQ(h_mismatch(buf, 8 * 65536, 95, 0), -1);
	CHECK_GE(rstats(s).moved, 1);
	CHECK_EQ(rstats(s).errors, 0);
	s->ops->destroy(s);
	CHECK_EQ(fl_store_redis_remove(url, NULL), 0);
	redisFree(cs);
	redisFree(cd);
	free(buf);
}

/* ---- a server of this case's own: killed, stopped, failing ----------------
 */

struct own_server {
	char dir[256];
	int port;
	pid_t pid;
	char url[128]; /* redis://127.0.0.1:port */
};

static int own_ping(void *arg)
{
	struct own_server *sv = arg;
	struct timeval tv = {1, 0};
	redisContext *c = redisConnectWithTimeout("127.0.0.1", sv->port, tv);
	redisReply *r = NULL;
	int ok = 0;

	if (c && !c->err) {
		redisSetTimeout(c, tv);
		r = redisCommand(c, "PING");
		ok = r && r->type == REDIS_REPLY_STATUS;
	}
	if (r)
		freeReplyObject(r);
	if (c)
		redisFree(c);
	return ok;
}

/* Up: it answers PING; or its process ended (a port taken meanwhile). */
static int own_up_or_gone(void *arg)
{
	struct own_server *sv = arg;

	return own_ping(sv) || waitpid(sv->pid, NULL, WNOHANG) == sv->pid;
}

/* Fork and exec redis-server on sv->port; 1 once it answers, 0 if it
 * exited (reaped). */
static int own_spawn(struct own_server *sv)
{
	char port[16], log[300];

	snprintf(port, sizeof(port), "%d", sv->port);
	snprintf(log, sizeof(log), "%s/redis.log", sv->dir);
	sv->pid = fork();
	REQUIRE(sv->pid >= 0);
	if (sv->pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(null, 1);
		dup2(null, 2);
		execlp("redis-server", "redis-server", "--port", port, "--bind",
		       "127.0.0.1", "--dir", sv->dir, "--logfile", log,
		       "--save", "", "--appendonly", "yes", "--appendfsync",
		       "always", (char *)NULL);
		_exit(127);
	}
	REQUIRE(h_wait_until(own_up_or_gone, sv));
	if (own_ping(sv))
		return 1;
	sv->pid = 0; /* reaped by own_up_or_gone */
	return 0;
}

/*
 * Start redis-server on sv->port (a new free port if 0), persisting
 * every write (AOF, fsync always) in sv->dir; it dies with this case.
 * Ports are taken below the kernel's ephemeral range (32768 up), so that
 * no outgoing connection holds one; a server that cannot bind its port
 * (another process took it) is started again, on another port if it
 * was new.
 */
static void own_start(struct own_server *sv)
{
	int fixed = sv->port != 0;

	if (!sv->dir[0]) {
		snprintf(sv->dir, sizeof(sv->dir), "%s/redis-%d-XXXXXX",
			 h_tmpdir(), (int)getpid());
		REQUIRE(mkdtemp(sv->dir));
	}
	for (int tries = 0; tries < 10; tries++) {
		if (!fixed) {
			do
				sv->port =
					20000 +
					(int)(h_now() * 1000 + tries) % 12000;
			while (own_ping(sv));
		}
		snprintf(sv->url, sizeof(sv->url), "redis://127.0.0.1:%d",
			 sv->port);
		if (own_spawn(sv))
			return;
		h_note("redis-server on port %d did not start (see "
		       "%s/redis.log)",
		       sv->port, sv->dir);
	}
	REQUIRE(!"redis-server did not start");
}

static void own_kill(struct own_server *sv)
{
	kill(sv->pid, SIGKILL);
	waitpid(sv->pid, NULL, 0);
	sv->pid = 0;
}

static void own_remove(struct own_server *sv)
{
	char cmd[300];

	if (sv->pid)
		own_kill(sv);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sv->dir);
	CHECK_EQ(system(cmd), 0);
}

/* Clients connected to the server, not counting the one asking. */
static long own_clients(struct own_server *sv)
{
	redisContext *c = rc_connect_port("127.0.0.1", sv->port);
	redisReply *r = rc_cmd(c, "CLIENT LIST");
	long n = -1;

	for (const char *p = r->str; (p = strchr(p, '\n')); p++)
		n++; /* one line per client */
	freeReplyObject(r);
	redisFree(c);
	return n;
}

struct msync_arg {
	fl_engine *e;
	void *p;
	size_t len;
};

static int msync_ok(void *arg)
{
	struct msync_arg *m = arg;

	return fl_msync(m->e, m->p, m->len, MS_SYNC) == 0;
}

static int have_redis_server(void)
{
	if (system("command -v redis-server >/dev/null 2>&1") == 0)
		return 1;
	h_note("no redis-server on PATH: case not run");
	CHECK(!getenv("FL_REQUIRE_REDIS"));
	return 0;
}

/* Killed and restarted while mapped: reads SIGBUS while it is down, msync
 * EIO (the pages stay dirty), another store is served meanwhile; after
 * the restart msync succeeds and nothing is lost; no connection leaks. */
TEST(server_killed_and_restarted)
{
	/* A killed server refuses at once: no wait comes near the timeout,
	 * which is long, as open_store's. */
	struct fl_redis_options ro = {.create_size = 2 * MIB,
				      .timeout_ms = PATIENT_MS};
	struct own_server sv = {0};
	struct h_file f;
	char url[256];
	struct fl_store *s;
	fl_engine *e;
	fl_object *o, *fo;
	unsigned char *p, *fp, v;
	struct h_sig sig;
	struct msync_arg m;
	uint64_t err0;

	if (!have_redis_server())
		return;
	own_start(&sv);
	snprintf(url, sizeof(url), "%s/restart", sv.url);
	s = fl_store_redis_open(url, &ro);
	REQUIRE(s);
	store_fill(s, 2 * MIB, 30);
	e = h_engine(2);
	o = fl_object_create(e, s, O_RDWR);
	REQUIRE(o);
	p = h_map(e, 2 * MIB, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	REQUIRE(fl_madvise(e, p, 2 * MIB, MADV_RANDOM) == 0);
	h_file_create(&f, 64 * PG, 33);
	fo = h_open(e, &f, O_RDONLY);
	fp = h_map(e, 64 * PG, PROT_READ, MAP_SHARED, fo, 0);
	CHECK_EQ(h_mismatch(p, 8 * PG, 30, 0), -1); /* cached */
	h_fill(p, 4 * PG, 31, 0);
	CHECK_EQ(fl_msync(e, p, 2 * MIB, MS_SYNC), 0);

	own_kill(&sv);
	err0 = h_estats(e).errors;
	CHECK_EQ(h_try_read(p + MIB, &v, &sig), SIGBUS);
	CHECK_EQ(h_estats(e).errors, err0 + 1);
	h_fill(p + 5 * PG, PG, 32, 5 * PG); /* a cached page: no store I/O */
	CHECK_ERR(fl_msync(e, p, 2 * MIB, MS_SYNC) == -1, EIO);
	CHECK_GE(h_mstats(e, p).dirty_pages, 1);
	CHECK_GE(h_estats(e).writeback_errors, 1);
	/* Another store's faults are served meanwhile. */
	CHECK_EQ(h_mismatch(fp, 64 * PG, 33, 0), -1);

	own_start(&sv); /* the same port and directory: the AOF reloads */
	m = (struct msync_arg){e, p, 2 * MIB};
	CHECK(h_wait_until(msync_ok, &m));
	CHECK_EQ(h_mstats(e, p).dirty_pages, 0);
	/* The poisoned page faults afresh after MADV_DONTNEED. */
	CHECK_EQ(fl_madvise(e, p + MIB, PG, MADV_DONTNEED), 0);
	CHECK_EQ(h_mismatch(p + MIB, PG, 30, MIB), -1);
	CHECK_LE(rstats(s).connections, 4);
	CHECK_GE(own_clients(&sv), 1);
	CHECK_EQ(fl_munmap(e, fp, 64 * PG), 0);
	CHECK_EQ(fl_object_close(fo), 0);
	CHECK_EQ(fl_munmap(e, p, 2 * MIB), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	CHECK_EQ(own_clients(&sv), 0); /* every connection closed */

	/* Nothing lost: a fresh store reads what was written before, during
	 * and after the outage. */
	s = fl_store_redis_open(url, &patient);
	REQUIRE(s);
	{
		unsigned char *buf = malloc(2 * MIB);

		REQUIRE(buf);
		CHECK_EQ(s->ops->read(s, buf, 2 * MIB, 0), 2 * MIB);
		CHECK_EQ(h_mismatch(buf, 4 * PG, 31, 0), -1);
		CHECK_EQ(h_mismatch(buf + 4 * PG, PG, 30, 4 * PG), -1);
		CHECK_EQ(h_mismatch(buf + 5 * PG, PG, 32, 5 * PG), -1);
		CHECK_EQ(h_mismatch(buf + 6 * PG, 2 * MIB - 6 * PG, 30, 6 * PG),
			 -1);
		free(buf);
	}
	s->ops->destroy(s);
	CHECK_EQ(own_clients(&sv), 0);
	h_file_remove(&f);
	own_remove(&sv);
}

/*
 * Read [p, p + len) of e into the page cache while the server is up.  The
 * store's timeout is short (see below), and a loaded machine may make a
 * healthy server miss it: a read that did (SIGBUS, the page poisoned) is
 * dropped and made again.  What it read is the caller's to check.
 */
static void read_in(fl_engine *e, unsigned char *p, size_t len)
{
	for (size_t off = 0; off < len; off += PG) {
		struct h_sig sig;
		unsigned char v;

		while (h_try_read(p + off, &v, &sig) == SIGBUS)
			REQUIRE(fl_madvise(e, p + off, PG, MADV_DONTNEED) == 0);
	}
}

/* A stopped (unresponsive) server: reads SIGBUS after the timeout (1.5 s,
 * so that the case is short; where the server is up, its I/O is made
 * again until done: read_in, msync_ok) and count it; a server refusing
 * writes (maxmemory): msync EIO, pages kept dirty; both recover. */
TEST(server_stopped_and_refusing)
{
	struct fl_redis_options ro = {.create_size = MIB, .timeout_ms = 1500};
	struct own_server sv = {0};
	char url[256];
	struct fl_store *s;
	fl_engine *e;
	fl_object *o;
	unsigned char *p, v;
	struct h_sig sig;
	struct msync_arg m;
	redisContext *c;

	if (!have_redis_server())
		return;
	own_start(&sv);
	snprintf(url, sizeof(url), "%s/stopped", sv.url);
	s = fl_store_redis_open(url, &ro);
	REQUIRE(s);
	store_fill(s, MIB, 30);
	e = h_engine(2);
	o = fl_object_create(e, s, O_RDWR);
	REQUIRE(o);
	p = h_map(e, MIB, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	REQUIRE(fl_madvise(e, p, MIB, MADV_RANDOM) == 0);
	read_in(e, p, PG);
	CHECK_EQ(h_mismatch(p, PG, 30, 0), -1);
	read_in(e, p + 128 * PG, 32 * PG);
	CHECK_EQ(h_mismatch(p + 128 * PG, 32 * PG, 30, 128 * PG), -1);
	kill(sv.pid, SIGSTOP);
	CHECK_EQ(h_try_read(p + 64 * PG, &v, &sig), SIGBUS);
	CHECK_GE(rstats(s).timeouts, 1);
	h_fill(p, PG, 34, 0);
	CHECK_ERR(fl_msync(e, p, PG, MS_SYNC) == -1, EIO);
	/* A failed run is written again page by page: once the server has
	 * timed out, the store fails fast (backoff) rather than wait the
	 * timeout for each of the 32 pages. */
	h_fill(p + 128 * PG, 32 * PG, 36, 128 * PG);
	CHECK_ERR(fl_msync(e, p + 128 * PG, 32 * PG, MS_SYNC) == -1, EIO);
	CHECK_EQ(h_mstats(e, p).dirty_pages, 33);
	CHECK_LE(rstats(s).timeouts, 15);
	kill(sv.pid, SIGCONT);
	m = (struct msync_arg){e, p, MIB};
	CHECK(h_wait_until(msync_ok, &m));

	/* Writes refused: an error reply, not a lost connection. */
	c = rc_connect_port("127.0.0.1", sv.port);
	freeReplyObject(rc_cmd(c, "CONFIG SET maxmemory 1"));
	h_fill(p + PG, PG, 35, PG);
	CHECK_ERR(fl_msync(e, p, MIB, MS_SYNC) == -1, EIO);
	CHECK_EQ(h_mstats(e, p).dirty_pages, 1);
	freeReplyObject(rc_cmd(c, "CONFIG SET maxmemory 0"));
	CHECK(h_wait_until(msync_ok, &m));
	CHECK_EQ(h_mstats(e, p).dirty_pages, 0);
	CHECK_EQ(fl_madvise(e, p + 64 * PG, PG, MADV_DONTNEED), 0);
	read_in(e, p + 64 * PG, PG);
	CHECK_EQ(h_mismatch(p + 64 * PG, PG, 30, 64 * PG), -1);
	CHECK_EQ(h_mismatch(p + 128 * PG, 32 * PG, 36, 128 * PG), -1);
	CHECK_EQ(fl_munmap(e, p, MIB), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	{
		redisReply *r =
			rc_cmd(c, "GETRANGE stopped:0 0 %d", (int)(2 * PG - 1));

		CHECK_EQ(r->len, 2 * PG);
		CHECK_EQ(h_mismatch(r->str, PG, 34, 0), -1);
		CHECK_EQ(h_mismatch(r->str + PG, PG, 35, PG), -1);
		freeReplyObject(r);
	}
	redisFree(c);
	CHECK_EQ(own_clients(&sv), 0);
	own_remove(&sv);
}

struct hung_read {
	unsigned char *p;
	int sig;
};

static void *hung_reader(void *arg)
{
	struct hung_read *h = arg;
	struct h_sig sig;
	unsigned char v;

	h->sig = h_try_read(h->p, &v, &sig);
	return NULL;
}

struct sent_arg {
	struct fl_store *s;
	uint64_t before;
};

static int command_sent(void *arg)
{
	struct sent_arg *a = arg;

	return rstats(a->s).commands > a->before;
}

/* A fault's read is in flight to a hung server (stopped; the timeout is
 * ten minutes): fl_engine_destroy cancels the store, the read ends at
 * once and destroy returns (without the cancel it would wait out the
 * timeout, and the case would time out). */
TEST(destroy_with_a_hung_server)
{
	struct fl_redis_options ro = {.create_size = MIB, .timeout_ms = 600000};
	struct own_server sv = {0};
	struct hung_read h;
	struct sent_arg sa;
	char url[256];
	struct fl_store *s;
	fl_engine *e;
	fl_object *o;
	unsigned char *p;
	pthread_t t;

	if (!have_redis_server())
		return;
	own_start(&sv);
	snprintf(url, sizeof(url), "%s/hung", sv.url);
	s = fl_store_redis_open(url, &ro);
	REQUIRE(s);
	store_fill(s, MIB, 30);
	e = h_engine(2);
	o = fl_object_create(e, s, O_RDONLY);
	REQUIRE(o);
	p = h_map(e, MIB, PROT_READ, MAP_SHARED, o, 0);
	REQUIRE(fl_madvise(e, p, MIB, MADV_RANDOM) == 0);
	CHECK_EQ(fl_object_close(o), 0); /* the mapping keeps it */
	kill(sv.pid, SIGSTOP);
	sa = (struct sent_arg){s, rstats(s).commands};
	h = (struct hung_read){p + 10 * PG, 0};
	REQUIRE(pthread_create(&t, NULL, hung_reader, &h) == 0);
	CHECK(h_wait_until(command_sent, &sa));
	CHECK_EQ(fl_engine_destroy(e), 0);
	pthread_join(t, NULL);
	/* The fault was cancelled; its retry finds the mapping gone. */
	CHECK(h.sig == SIGSEGV || h.sig == SIGBUS);
	kill(sv.pid, SIGCONT);
	own_remove(&sv);
}

/* ---- swap to Redis ----------------------------------------------------- */

/* A group's anonymous memory beyond its max spills to a Redis object (a
 * swap device over the store) and comes back intact. */
static void swap_to(const char *base, const char *tag)
{
	size_t len = 4 * MIB, max = 1 * MIB;
	char prefix[64], url[512];
	struct fl_swap_stats ss;
	struct fl_group_stats gs;
	struct fl_store *s;
	fl_engine *e;
	fl_group *g;
	fl_swap *sw;
	unsigned char *p;

	make_prefix(prefix, sizeof(prefix), tag);
	s = open_store(base, prefix, 2 * len, 0);
	e = h_engine(2);
	g = fl_group_create(e, NULL, "swapped");
	REQUIRE(g);
	REQUIRE(fl_group_set_max(g, max) == 0);
	sw = fl_swap_store_create(e, s, 2 * len); /* owns s from here */
	REQUIRE(sw);
	REQUIRE(fl_group_set_swap(g, sw) == 0);
	p = fl_mmap_group(e, g, NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED);
	for (size_t off = 0; off < len; off += PG)
		h_fill(p + off, PG, 70, off);
	for (size_t off = 0; off < len; off += PG)
		if (h_mismatch(p + off, PG, 70, off) != -1) {
			h_fail(__FILE__, __LINE__, "page at %zu wrong", off);
			break;
		}
	CHECK_EQ(fl_swap_stats(sw, &ss), 0);
	CHECK_GE(ss.pages_written, (len - max) / PG);
	CHECK_GE(ss.pages_read, 1);
	CHECK_EQ(ss.write_errors + ss.read_errors, 0);
	CHECK_EQ(fl_group_stats(g, &gs), 0);
	CHECK_LE(gs.peak, max);
	CHECK_GE(gs.swap_outs, 1);
	{
		struct fl_redis_stats st = rstats(s);

		CHECK_GE(st.blocks_written, 1);
		CHECK_GE(st.blocks_read, 1);
		h_note("%s: %llu swap-outs, %llu swap-ins, %llu block "
		       "writes, %llu block reads",
		       tag, (unsigned long long)ss.pages_written,
		       (unsigned long long)ss.pages_read,
		       (unsigned long long)st.blocks_written,
		       (unsigned long long)st.blocks_read);
	}
	CHECK_EQ(fl_munmap(e, p, len), 0);
	CHECK_EQ(fl_engine_destroy(e), 0); /* frees the device and store */
	make_url(url, sizeof(url), base, prefix);
	CHECK_EQ(fl_store_redis_remove(url, NULL), 0);
}

TEST(swap_standalone)
{
	swap_to(url_standalone, "swap");
}

TEST(swap_cluster)
{
	swap_to(url_cluster, "cswap");
}

/* ---- the program: cp both ways, demo --store ------------------------------
 */

/* Run BUILD/faultline with args (a shell command line); its exit status. */
static int run_program(const char *args)
{
	char exe[1024], cmd[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	REQUIRE(n > 0);
	exe[n] = 0;
	snprintf(cmd, sizeof(cmd), "%s/../faultline %s >/dev/null 2>&1",
		 dirname(exe), args);
	return WEXITSTATUS(system(cmd));
}

TEST(cli_cp_and_demo)
{
	const char *bases[2] = {url_standalone, url_cluster};
	struct h_file f;
	char prefix[64], url[512], args[2048], back[512];
	unsigned char *buf;
	size_t size = 3 * MIB + 100;

	h_file_create(&f, size, 61);
	buf = malloc(size);
	REQUIRE(buf);
	snprintf(back, sizeof(back), "%s.back", f.path);
	for (int i = 0; i < 2; i++) {
		make_prefix(prefix, sizeof(prefix), "cp");
		make_url(url, sizeof(url), bases[i], prefix);
		snprintf(args, sizeof(args), "cp '%s' '%s'", f.path, url);
		CHECK_EQ(run_program(args), 0);
		snprintf(args, sizeof(args), "cp '%s' '%s'", url, back);
		CHECK_EQ(run_program(args), 0);
		CHECK_EQ(h_file_size(back), size);
		h_pread(back, buf, size, 0);
		CHECK_EQ(h_mismatch(buf, size, 61, 0), -1);
		/* Another size is refused without --force. */
		{
			int fd = open(back, O_WRONLY | O_CREAT | O_TRUNC, 0644);

			REQUIRE(fd >= 0 && ftruncate(fd, 2 * PG) == 0);
			close(fd);
		}
		snprintf(args, sizeof(args), "cp '%s' '%s'", back, url);
		CHECK_EQ(run_program(args), 1);
		snprintf(args, sizeof(args), "cp --force '%s' '%s'", back, url);
		CHECK_EQ(run_program(args), 0);
		{
			struct fl_store *s = fl_store_redis_open(url, &patient);

			REQUIRE(s);
			CHECK_EQ(s->ops->size(s), 2 * PG);
			s->ops->destroy(s);
		}
		CHECK_EQ(fl_store_redis_remove(url, NULL), 0);
		CHECK_ERR(fl_store_redis_remove(url, NULL) == -1, ENOENT);
		unlink(back);
		/* The demo on a new object, deleted at the end. */
		make_prefix(prefix, sizeof(prefix), "demo");
		make_url(url, sizeof(url), bases[i], prefix);
		snprintf(args, sizeof(args),
			 "demo --size 4M --threads 2 --store '%s'", url);
		CHECK_EQ(run_program(args), 0);
		CHECK_ERR(fl_store_redis_open(url, NULL) == NULL, ENOENT);
	}
	free(buf);
	h_file_remove(&f);
}

#else /* !FL_HAVE_HIREDIS */

__attribute__((constructor)) static void need_hiredis(void)
{
	printf("SKIP test_redis: faultline was built without hiredis "
	       "(apt-get install libhiredis-dev)\n");
	exit(77);
}

#endif
