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
 */
#ifdef FL_HAVE_HIREDIS
#define _GNU_SOURCE
#include <errno.h>
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

static void *create_string(const redisReadTask *task, char *str, size_t len)
{
	struct redis_cmd *c = task->privdata;
	redisReply *r;

	if (!task->parent && task->type == REDIS_REPLY_STRING && c && c->dst) {
		r = reply_new(task, REDIS_REPLY_STRING);
		if (!r)
			return NULL;
		r->len = len < c->dst_len ? len : c->dst_len;
		if (c->dst_fd < 0)
			memcpy(c->dst, str, r->len);
		else
			c->dst_err =
				write_at(c->dst_fd, str, r->len, c->dst_off);
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
