// SPDX-License-Identifier: MIT
/*
 * The Redis client's reply reading (src/redis_reply.c, src/redis_link.c)
 * on its own, no server: a socket pair carries replies written here, in
 * pieces split where the test says.  A bulk string with a destination is
 * parsed by redis_bulk_reply (hiredis's reader never sees it) wherever
 * the reads split it, a nil too; any other reply goes to hiredis, and the
 * replies after it still arrive in order; a bulk string longer than its
 * destination fills the destination only; a bad end and a closed
 * connection are errors.
 */
#define _GNU_SOURCE
#include "harness.h"

#ifdef FL_HAVE_HIREDIS
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "redis_client.h"

struct pair {
	int server; /* the test writes replies here */
	struct redis_conn conn;
};

static void pair_open(struct pair *p)
{
	int sv[2];

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	p->server = sv[0];
	memset(&p->conn, 0, sizeof(p->conn));
	p->conn.ctx = redisConnectFd(sv[1]);
	REQUIRE(p->conn.ctx && !p->conn.ctx->err);
	redis_reply_install(p->conn.ctx);
	p->conn.rbuf = malloc(REDIS_READ_CHUNK);
	REQUIRE(p->conn.rbuf);
}

static void pair_close(struct pair *p)
{
	if (p->server >= 0)
		close(p->server);
	redisFree(p->conn.ctx);
	free(p->conn.rbuf);
}

/* A pair whose server side has written the whole of stream (a literal). */
#define pair_with(p, stream)                                                   \
	do {                                                                   \
		pair_open(p);                                                  \
		put_all((p)->server, stream, sizeof(stream) - 1);              \
	} while (0)

/* The next reply, read for c (NULL: no destination). */
static redisReply *next_reply(struct pair *p, struct redis_cmd *c)
{
	redisReply *r = NULL;

	redis_reply_expect(p->conn.ctx, c);
	if (redis_conn_reply(&p->conn, (void **)&r) != REDIS_OK)
		return NULL;
	return r;
}

static void put_all(int fd, const char *s, size_t n)
{
	while (n) {
		ssize_t w = write(fd, s, n);

		REQUIRE(w > 0);
		s += w;
		n -= (size_t)w;
	}
}

TEST(bulk_nil_and_other_replies_in_order)
{
	static const char stream[] = "$8\r\nABCDEFGH\r\n"
				     "$-1\r\n"
				     "+OK\r\n"
				     "$3\r\nxyz\r\n"
				     "$2\r\nhi\r\n";
	char buf[16] = {0};
	struct redis_cmd c = {.dst = buf, .dst_len = 16, .dst_fd = -1};
	struct pair p;
	redisReply *r;

	pair_with(&p, stream);
	r = next_reply(&p, &c);
	REQUIRE(r);
	CHECK_EQ(r->type, REDIS_REPLY_STRING);
	CHECK_EQ(r->len, 8);
	CHECK(r->str == NULL);
	CHECK(memcmp(buf, "ABCDEFGH", 8) == 0);
	/* Parsed here: hiredis's reader holds none of the stream. */
	CHECK_EQ(p.conn.ctx->reader->len, 0);
	freeReplyObject(r);
	r = next_reply(&p, &c);
	REQUIRE(r);
	CHECK_EQ(r->type, REDIS_REPLY_NIL);
	freeReplyObject(r);
	/* A status where a block was expected: hiredis's. */
	r = next_reply(&p, &c);
	REQUIRE(r);
	CHECK_EQ(r->type, REDIS_REPLY_STATUS);
	CHECK(r->str && strcmp(r->str, "OK") == 0);
	freeReplyObject(r);
	r = next_reply(&p, NULL); /* no destination: a string of its own */
	REQUIRE(r);
	CHECK_EQ(r->type, REDIS_REPLY_STRING);
	CHECK(r->str && strcmp(r->str, "xyz") == 0);
	freeReplyObject(r);
	memset(buf, 0, sizeof(buf));
	r = next_reply(&p, &c); /* after hiredis had the stream */
	REQUIRE(r);
	CHECK_EQ(r->len, 2);
	CHECK(memcmp(buf, "hi", 2) == 0);
	freeReplyObject(r);
	pair_close(&p);
}

TEST(longer_than_the_destination)
{
	static const char stream[] = "$8\r\nABCDEFGH\r\n$1\r\nZ\r\n";
	char buf[8] = {0};
	struct redis_cmd c = {.dst = buf, .dst_len = 4, .dst_fd = -1};
	struct pair p;
	redisReply *r;

	pair_with(&p, stream);
	r = next_reply(&p, &c);
	REQUIRE(r);
	CHECK_EQ(r->len, 4);
	CHECK(memcmp(buf, "ABCD\0\0\0\0", 8) == 0);
	freeReplyObject(r);
	r = next_reply(&p, &c);
	REQUIRE(r);
	CHECK_EQ(r->len, 1);
	CHECK_EQ(buf[0], 'Z');
	freeReplyObject(r);
	pair_close(&p);
}

/* ---- a block split across reads ----------------------------------------- */

#define BLOCK_LEN (3 * PG + 100)

struct writer {
	int server, client;
	const char *s;
	size_t len, split;
};

/* Write s[0, split), wait until the client's read took it all, then write
 * the rest: the client's reads then end at the split, whatever the speed. */
static void *write_split(void *arg)
{
	struct writer *w = arg;
	int queued;

	put_all(w->server, w->s, w->split);
	do {
		REQUIRE(ioctl(w->client, FIONREAD, &queued) == 0);
		if (queued)
			usleep(100);
	} while (queued);
	put_all(w->server, w->s + w->split, w->len - w->split);
	return NULL;
}

/* "$<BLOCK_LEN>\r\n<pattern>\r\n$1\r\nQ\r\n" into s; its length. */
static size_t block_stream(char *s)
{
	size_t n = (size_t)sprintf(s, "$%zu\r\n", (size_t)BLOCK_LEN);

	for (size_t i = 0; i < BLOCK_LEN; i++)
		s[n + i] = (char)h_pattern(7, i);
	n += BLOCK_LEN;
	memcpy(s + n, "\r\n$1\r\nQ\r\n", 9);
	return n + 9;
}

TEST(block_split_anywhere_into_a_file)
{
	static char stream[BLOCK_LEN + 64];
	size_t len = block_stream(stream), splits[32], nsplit = 0;
	int fd = memfd_create("redis-reply", MFD_CLOEXEC);
	char *page = malloc(BLOCK_LEN + PG);

	REQUIRE(fd >= 0 && page);
	for (size_t k = 1; k <= 9; k++)
		splits[nsplit++] = k;  /* in the header */
	splits[nsplit++] = 8 + PG - 1; /* in the data, around pages */
	splits[nsplit++] = 8 + PG;
	splits[nsplit++] = 8 + 2 * PG + 1;
	splits[nsplit++] = len - 9; /* in the CRLF, the next reply */
	splits[nsplit++] = len - 8;
	splits[nsplit++] = len - 1;
	for (size_t i = 0; i < nsplit; i++) {
		struct redis_cmd c = {.dst = page,
				      .dst_len = BLOCK_LEN,
				      .dst_fd = fd,
				      .dst_off = PG};
		struct writer w = {.s = stream, .len = len, .split = splits[i]};
		struct pair p;
		pthread_t t;
		redisReply *r;
		int same = 1;

		REQUIRE(ftruncate(fd, 0) == 0);
		pair_open(&p);
		w.server = p.server;
		w.client = p.conn.ctx->fd;
		REQUIRE(pthread_create(&t, NULL, write_split, &w) == 0);
		r = next_reply(&p, &c);
		CHECK(r && r->len == BLOCK_LEN && !c.dst_err);
		CHECK_EQ(p.conn.ctx->reader->len, 0); /* parsed here */
		freeReplyObject(r);
		REQUIRE(pread(fd, page, BLOCK_LEN, PG) == BLOCK_LEN);
		for (size_t b = 0; b < BLOCK_LEN; b++)
			same &= (unsigned char)page[b] == h_pattern(7, b);
		if (!same)
			h_fail(__FILE__, __LINE__, "split at %zu: wrong bytes",
			       splits[i]);
		r = next_reply(&p, NULL);
		CHECK(r && r->type == REDIS_REPLY_STRING && r->str &&
		      strcmp(r->str, "Q") == 0);
		freeReplyObject(r);
		pthread_join(t, NULL);
		pair_close(&p);
	}
	free(page);
	close(fd);
}

TEST(bad_end_and_closed_connection_are_errors)
{
	char buf[8];
	struct redis_cmd c = {.dst = buf, .dst_len = 8, .dst_fd = -1};
	struct pair p;

	pair_open(&p);
	put_all(p.server, "$4\r\nabcdXY", 10);
	CHECK(next_reply(&p, &c) == NULL);
	CHECK_EQ(p.conn.ctx->err, REDIS_ERR_PROTOCOL);
	pair_close(&p);

	pair_open(&p);
	put_all(p.server, "$8\r\nabc", 7); /* then the server goes */
	close(p.server);
	p.server = -1;
	CHECK(next_reply(&p, &c) == NULL);
	CHECK_EQ(p.conn.ctx->err, REDIS_ERR_EOF);
	pair_close(&p);
}

#else /* !FL_HAVE_HIREDIS */

__attribute__((constructor)) static void need_hiredis(void)
{
	printf("SKIP test_unit_redis_reply: faultline was built without "
	       "hiredis (apt-get install libhiredis-dev)\n");
	exit(77);
}

#endif
