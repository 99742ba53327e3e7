/* SPDX-License-Identifier: MIT */
/*
 * Reply objects for the Redis client (see redis_client.h): hiredis's
 * reader builds replies with these functions instead of its own, so that
 * a bulk string a command has a destination for (a block read into the
 * engine's page cache) is copied there straight from the reader's buffer,
 * not into a reply of its own first: with pwrite into the memfd behind the
 * page cache where the command has it (the kernel then need not map the
 * pages), else with memcpy.  Such a reply has str NULL and len
 * the bytes copied; every other reply is built as hiredis builds it, and
 * freeReplyObject frees all of them.
 *
 * The destination is the reader's privdata, set (redis_reply_expect)
 * before each reply is read: hiredis hands it to the top-level task of
 * the next reply it starts.  Connections also keep their read buffer
 * between replies (maxbuf 0) instead of freeing it after each large one.
 *
 * Most such replies never reach hiredis: redis_bulk_reply parses a bulk
 * string or nil with a destination itself, from the connection's own
 * buffer, whenever hiredis's reader holds nothing, so that a block's bytes
 * are not first appended to hiredis's buffer and moved down in it.
 */
#ifdef FL_HAVE_HIREDIS
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "redis_client.h"

static redisReply *reply_new(const redisReadTask *task, int type)
{
	redisReply *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->type = type;
	if (task->parent) { /* an array's element */
		redisReply *parent = task->parent->obj;

		parent->element[task->idx] = r;
	}
	return r;
}

/* Write all n bytes of p to fd at off; 0, or an errno. */
static int write_at(int fd, const char *p, size_t n, uint64_t off)
{
	while (n) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? errno : EIO;
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* Put n bytes of a block at byte got of c's destination (what fits;
 * nothing more once a write failed). */
static void bulk_put(struct redis_cmd *c, const char *p, size_t n, size_t got)
{
	if (got >= c->dst_len || c->dst_err)
		return;
	if (n > c->dst_len - got)
		n = c->dst_len - got;
	if (c->dst_fd < 0)
		memcpy((char *)c->dst + got, p, n);
	else
		c->dst_err = write_at(c->dst_fd, p, n, c->dst_off + got);
}

static void *create_string(const redisReadTask *task, char *str, size_t len)
{
	struct redis_cmd *c = task->privdata;
	redisReply *r;

	if (!task->parent && task->type == REDIS_REPLY_STRING && c && c->dst) {
		r = reply_new(task, REDIS_REPLY_STRING);
		if (!r)
			return NULL;
		r->len = len < c->dst_len ? len : c->dst_len;
		c->dst_err = 0;
		bulk_put(c, str, len, 0);
		return r; /* str NULL: the bytes are at c->dst */
	}
	r = reply_new(task, task->type);
	if (!r)
		return NULL;
	r->str = malloc(len + 1);
	if (!r->str) {
		if (task->parent)
			((redisReply *)task->parent->obj)->element[task->idx] =
				NULL;
		free(r);
		return NULL;
	}
	memcpy(r->str, str, len);
	r->str[len] = 0;
	r->len = len;
	return r;
}

static void *create_array(const redisReadTask *task, int elements)
{
	redisReply *r = reply_new(task, REDIS_REPLY_ARRAY);

	if (r && elements > 0) {
		r->element = calloc((size_t)elements, sizeof(*r->element));
		if (!r->element) {
			if (task->parent)
				((redisReply *)task->parent->obj)
					->element[task->idx] = NULL;
			free(r);
			return NULL;
		}
		r->elements = (size_t)elements;
	}
	return r;
}

static void *create_integer(const redisReadTask *task, long long value)
{
	redisReply *r = reply_new(task, REDIS_REPLY_INTEGER);

	if (r)
		r->integer = value;
	return r;
}

static void *create_nil(const redisReadTask *task)
{
	return reply_new(task, REDIS_REPLY_NIL);
}

/* ---- bulk replies parsed here (redis_bulk_reply) ---------------------- */

/* The pieces of a block written while the rest is read (a page). */
#define BULK_PIECE_ALIGN ((size_t)4096)

/* Longest "$<length>\r\n" taken as a bulk string's header. */
#define BULK_HEADER_MAX 24

/* Bytes of conn->rbuf not yet parsed. */
static size_t unparsed(const struct redis_conn *conn)
{
	return conn->rlen - conn->rpos;
}

/*
 * Parse "$<length>\r\n" at conn->rbuf + rpos (reading more while it is
 * incomplete): 0 with *len (-1 for nil) and the header consumed, 1 if
 * what comes is not such a header (nothing consumed), or REDIS_ERR.
 */
static int bulk_header(struct redis_conn *conn, long long *len)
{
	const char *p, *end, *cr;
	long long v = 0;
	int neg;

	for (;;) {
		p = conn->rbuf + conn->rpos;
		end = conn->rbuf + conn->rlen;
		if (p < end && *p != '$')
			return 1;
		cr = p < end ? memchr(p, '\r', (size_t)(end - p)) : NULL;
		if (cr && cr + 1 < end)
			break;
		if (end - p >= BULK_HEADER_MAX)
			return 1;
		if (redis_conn_read(conn) != REDIS_OK)
			return REDIS_ERR;
	}
	if (cr[1] != '\n' || cr - p < 2 || cr - p > BULK_HEADER_MAX - 2)
		return 1;
	neg = p[1] == '-';
	for (p += 1 + neg; p < cr; p++) {
		if (*p < '0' || *p > '9')
			return 1;
		v = v * 10 + (*p - '0');
	}
	if (neg && v != 1)
		return 1;
	*len = neg ? -1 : v;
	conn->rpos = (size_t)(cr + 2 - conn->rbuf);
	return 0;
}

/* A reply of type with len bytes at its command's destination. */
static int bulk_reply_new(redisContext *ctx, int type, size_t len, void **reply)
{
	redisReply *r = calloc(1, sizeof(*r));

	if (!r) {
		ctx->err = REDIS_ERR_OOM;
		snprintf(ctx->errstr, sizeof(ctx->errstr), "Out of memory");
		return REDIS_ERR;
	}
	r->type = type;
	r->len = len;
	*reply = r;
	return REDIS_OK;
}

int redis_bulk_reply(struct redis_conn *conn, struct redis_cmd *c, void **reply)
{
	redisContext *ctx = conn->ctx;
	long long len;
	size_t got = 0;
	int rc = bulk_header(conn, &len);

	if (rc)
		return rc;
	if (len < 0)
		return bulk_reply_new(ctx, REDIS_REPLY_NIL, 0, reply);
	c->dst_err = 0;
	while (got < (size_t)len) {
		size_t rest = (size_t)len - got, n = unparsed(conn);

		/* Whole pages while more is to come: a page written in two
		 * pieces would be zeroed by the first (shmem_write_end). */
		if (n < rest && n < BULK_PIECE_ALIGN) {
			if (redis_conn_read(conn) != REDIS_OK)
				return REDIS_ERR;
			continue;
		}
		n = n >= rest ? rest
			      : ((got + n) & ~(BULK_PIECE_ALIGN - 1)) - got;
		bulk_put(c, conn->rbuf + conn->rpos, n, got);
		conn->rpos += n;
		got += n;
	}
	while (unparsed(conn) < 2)
		if (redis_conn_read(conn) != REDIS_OK)
			return REDIS_ERR;
	if (memcmp(conn->rbuf + conn->rpos, "\r\n", 2)) {
		ctx->err = REDIS_ERR_PROTOCOL;
		snprintf(ctx->errstr, sizeof(ctx->errstr),
			 "bulk string not ended by CRLF");
		return REDIS_ERR;
	}
	conn->rpos += 2;
	return bulk_reply_new(ctx, REDIS_REPLY_STRING,
			      got < c->dst_len ? got : c->dst_len, reply);
}

static redisReplyObjectFunctions reply_functions = {
	.createString = create_string,
	.createArray = create_array,
	.createInteger = create_integer,
	.createNil = create_nil,
	.freeObject = freeReplyObject,
};

void redis_reply_install(redisContext *ctx)
{
	ctx->reader->fn = &reply_functions;
	ctx->reader->maxbuf = 0;
	ctx->reader->privdata = NULL;
}

void redis_reply_expect(redisContext *ctx, struct redis_cmd *c)
{
	ctx->reader->privdata = c;
}

#endif /* FL_HAVE_HIREDIS */
