/* SPDX-License-Identifier: MIT */
/*
 * A Redis object's names and metadata (docs/design.md, "Redis layout"):
 * the URL that names it, and the hash PREFIX:meta that says what it is
 * (format, version, size, block size), created, read and grown here with
 * single commands or atomic scripts.  The blocks themselves are the
 * store's (store_redis.c).  Called with no lock held, from the thread
 * opening the store or writing past its end.
 */
#ifdef FL_HAVE_HIREDIS
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_object.h"

/* Add the node of one "host[:port]" (or "[v6addr]:port") of a URL;
 * an empty host is 127.0.0.1, the port 6379 by default. */
static int add_seed(struct redis_client *cl, const char *p, size_t len)
{
	char host[REDIS_HOST_MAX] = "127.0.0.1", num[8], *num_end;
	const char *end = p + len, *hs = p, *he, *port_s = NULL;
	long port = 6379;

	if (len && *p == '[') {
		const char *close = memchr(p, ']', len);

		if (!close || (close + 1 < end && close[1] != ':'))
			return -1;
		hs = p + 1;
		he = close;
		port_s = close + 1 < end ? close + 2 : NULL;
	} else {
		const char *colon = memrchr(p, ':', len);

		he = colon ? colon : end;
		port_s = colon ? colon + 1 : NULL;
	}
	if (port_s) {
		size_t n = (size_t)(end - port_s);

		if (n == 0 || n >= sizeof(num))
			return -1;
		memcpy(num, port_s, n);
		num[n] = 0;
		port = strtol(num, &num_end, 10);
		if (*num_end || port <= 0 || port > 65535)
			return -1;
	}
	if (he > hs) {
		if ((size_t)(he - hs) >= sizeof(host))
			return -1;
		memcpy(host, hs, (size_t)(he - hs));
		host[he - hs] = 0;
	}
	return redis_node_get(cl, host, (int)port) < 0 ? -1 : 0;
}

int redis_url_parse(struct redis_client *cl, const char *url, char *prefix,
		    int *cluster)
{
	const char *p, *slash, *q;

	if (!strncmp(url, "redis://", 8)) {
		*cluster = 0;
		p = url + 8;
	} else if (!strncmp(url, "redis+cluster://", 16)) {
		*cluster = 1;
		p = url + 16;
	} else {
		return -1;
	}
	slash = strchr(p, '/');
	if (!slash || !slash[1] || strlen(slash + 1) > REDIS_PREFIX_MAX)
		return -1;
	snprintf(prefix, REDIS_PREFIX_MAX + 1, "%s", slash + 1);
	if (!*cluster && memchr(p, ',', (size_t)(slash - p)))
		return -1; /* one server */
	for (; p <= slash; p = q + 1) {
		q = memchr(p, ',', (size_t)(slash - p));
		if (!q)
			q = slash;
		if (q == p && q != slash)
			return -1;
		if (add_seed(cl, p, (size_t)(q - p)))
			return -1;
	}
	return 0;
}

/* Run one command (key argv[key_arg]) routed like a block's: its reply,
 * or NULL with errno. */
static redisReply *command(struct redis_client *cl, int argc, const char **argv,
			   const size_t *argvlen, unsigned key_arg)
{
	struct redis_cmd c;

	memset(&c, 0, sizeof(c));
	c.argc = argc;
	c.key_arg = key_arg;
	memcpy(c.argv, argv, (size_t)argc * sizeof(*argv));
	memcpy(c.argvlen, argvlen, (size_t)argc * sizeof(*argvlen));
	if (redis_exec(cl, &c, 1, NULL)) {
		errno = c.err;
		return NULL;
	}
	return c.reply;
}

/* Create the metadata unless it exists (one atomic script): 1 if created,
 * 0 if it existed, -1 with errno. */
static int meta_create(struct redis_client *cl, const char *key, uint64_t size,
		       uint32_t block)
{
	static const char script[] =
		"if redis.call('exists', KEYS[1]) == 1 then return 0 end "
		"redis.call('hset', KEYS[1], 'format', '" REDIS_FORMAT "', "
		"'version', '" REDIS_VERSION "', 'size', ARGV[1], "
		"'block_size', ARGV[2]) return 1";
	char a1[24], a2[24];
	const char *argv[6] = {"EVAL", script, "1", key, a1, a2};
	size_t argvlen[6] = {4, sizeof(script) - 1, 1, strlen(key)};
	redisReply *r;
	int created;

	argvlen[4] = (size_t)sprintf(a1, "%llu", (unsigned long long)size);
	argvlen[5] = (size_t)sprintf(a2, "%u", block);
	r = command(cl, 6, argv, argvlen, 3);
	if (!r)
		return -1;
	created = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
	freeReplyObject(r);
	return created;
}

/* A decimal field of the metadata, 0 if absent or malformed. */
static uint64_t meta_num(const redisReply *e)
{
	char buf[24], *end;
	unsigned long long v;

	if (e->type != REDIS_REPLY_STRING || e->len == 0 ||
	    e->len >= sizeof(buf))
		return 0;
	memcpy(buf, e->str, e->len);
	buf[e->len] = 0;
	v = strtoull(buf, &end, 10);
	return *end ? 0 : v;
}

int redis_meta_grow(struct redis_client *cl, const char *prefix, uint64_t end,
		    uint64_t *now)
{
	static const char script[] =
		"local s = tonumber(redis.call('hget', KEYS[1], 'size')) "
		"local n = tonumber(ARGV[1]) "
		"if not s then return redis.error_reply('no object') end "
		"if n > s then redis.call('hset', KEYS[1], 'size', ARGV[1]) "
		"return ARGV[1] end return tostring(s)";
	char key[REDIS_KEY_MAX], a1[24];
	const char *argv[5] = {"EVAL", script, "1", key, a1};
	size_t argvlen[5] = {4, sizeof(script) - 1, 1};
	redisReply *r;

	if (end > (1ull << 53)) { /* Lua's numbers are doubles */
		errno = EFBIG;
		return -1;
	}
	argvlen[3] = (size_t)snprintf(key, sizeof(key), "%s:meta", prefix);
	argvlen[4] = (size_t)sprintf(a1, "%llu", (unsigned long long)end);
	r = command(cl, 5, argv, argvlen, 3);
	if (!r)
		return -1;
	*now = r->type == REDIS_REPLY_STRING ? meta_num(r) : 0;
	freeReplyObject(r);
	if (*now < end) {
		errno = EIO;
		return -1;
	}
	return 0;
}

/* Read the metadata into *size and *block; 0, or -1 with errno (ENOENT:
 * none; EPROTO: not a faultline object). */
static int meta_load(struct redis_client *cl, const char *key, uint64_t *size,
		     uint32_t *block)
{
	const char *argv[6] = {"HMGET",	  key,	  "format",
			       "version", "size", "block_size"};
	size_t argvlen[6] = {5, strlen(key), 6, 7, 4, 10};
	redisReply *r = command(cl, 6, argv, argvlen, 1);
	int ret = -1;

	if (!r)
		return -1;
	errno = EPROTO;
	if (r->type != REDIS_REPLY_ARRAY || r->elements != 4)
		goto out;
	if (r->element[0]->type == REDIS_REPLY_NIL) {
		errno = ENOENT;
		goto out;
	}
	if (r->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(r->element[0]->str, REDIS_FORMAT) ||
	    meta_num(r->element[1]) != 1)
		goto out;
	*size = meta_num(r->element[2]);
	*block = (uint32_t)meta_num(r->element[3]);
	if (*block == 0 || *block % 4096 ||
	    meta_num(r->element[3]) > REDIS_MAX_BLOCK)
		goto out;
	ret = 0;
out:
	freeReplyObject(r);
	return ret;
}

int redis_meta_open(struct redis_client *cl, const char *prefix,
		    const struct fl_redis_options *o, uint64_t *size,
		    uint32_t *block)
{
	char key[REDIS_KEY_MAX];
	int created = 0;

	snprintf(key, sizeof(key), "%s:meta", prefix);
	if (o->create_size || o->create) {
		created = meta_create(cl, key, o->create_size,
				      o->block_size ? o->block_size
						    : REDIS_DEFAULT_BLOCK);
		if (created < 0)
			return -1;
		if (!created && o->exclusive) {
			errno = EEXIST;
			return -1;
		}
	}
	return meta_load(cl, key, size, block);
}

#endif /* FL_HAVE_HIREDIS */
