/* SPDX-License-Identifier: MIT */
/*
 * Redis servers and their connection pools (see redis_client.h).
 *
 * Each node keeps at most max_conns connections, idle ones on a stack.
 * A connection that fails (a lost server, a timeout) is closed and bumps
 * the node's generation: idle connections made before it are closed when
 * taken, so that after a server restarts no stale connection is used.
 * A connect that fails, or a command that times out, starts a backoff
 * (50 ms, doubling to 2 s, ended by the next command that succeeds)
 * during which making a connection fails at once instead of waiting for
 * another timeout: a hung server costs one timeout per backoff, not one
 * per command (writeback retrying a failed run page by page, say).
 * Nothing sleeps for the backoff.  The node's mutex is
 * held only to take or give back a connection, never across I/O.
 */
#ifdef FL_HAVE_HIREDIS
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/sds.h>

#include "redis_client.h"

#define BACKOFF_FIRST_MS 50
#define BACKOFF_MAX_MS	 2000

uint64_t redis_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static struct timeval ms_to_tv(unsigned ms)
{
	struct timeval tv = {.tv_sec = ms / 1000,
			     .tv_usec = (long)(ms % 1000) * 1000};

	return tv;
}

int redis_client_init(struct redis_client *cl, int cluster, unsigned timeout_ms,
		      unsigned max_conns)
{
	memset(cl, 0, sizeof(*cl));
	cl->cluster = cluster;
	cl->timeout_ms = timeout_ms;
	cl->max_conns = max_conns;
	if (pthread_mutex_init(&cl->nodes_lock, NULL))
		return -1;
	if (pthread_rwlock_init(&cl->slots_lock, NULL)) {
		pthread_mutex_destroy(&cl->nodes_lock);
		return -1;
	}
	if (pthread_mutex_init(&cl->refresh_lock, NULL)) {
		pthread_rwlock_destroy(&cl->slots_lock);
		pthread_mutex_destroy(&cl->nodes_lock);
		return -1;
	}
	if (pthread_mutex_init(&cl->abort_lock, NULL)) {
		pthread_mutex_destroy(&cl->refresh_lock);
		pthread_rwlock_destroy(&cl->slots_lock);
		pthread_mutex_destroy(&cl->nodes_lock);
		return -1;
	}
	return 0;
}

static void conn_close(struct redis_client *cl, struct redis_conn *conn)
{
	redisFree(conn->ctx);
	free(conn->rbuf);
	atomic_fetch_sub(&cl->n.connections, 1);
}

void redis_client_fini(struct redis_client *cl)
{
	unsigned i, k;

	for (i = 0; i < atomic_load(&cl->nr_nodes); i++) {
		struct redis_node *nd = cl->nodes[i];

		for (k = 0; k < nd->nidle; k++)
			conn_close(cl, &nd->idle[k]);
		pthread_cond_destroy(&nd->cond);
		pthread_mutex_destroy(&nd->lock);
		free(nd->idle);
		free(nd);
	}
	pthread_mutex_destroy(&cl->abort_lock);
	pthread_mutex_destroy(&cl->refresh_lock);
	pthread_rwlock_destroy(&cl->slots_lock);
	pthread_mutex_destroy(&cl->nodes_lock);
}

static struct redis_node *node_new(const char *host, int port, unsigned max)
{
	struct redis_node *nd = calloc(1, sizeof(*nd));
	pthread_condattr_t attr;

	if (!nd)
		return NULL;
	nd->idle = calloc(max, sizeof(*nd->idle));
	if (!nd->idle)
		goto fail;
	if (pthread_condattr_init(&attr))
		goto fail;
	if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) ||
	    pthread_cond_init(&nd->cond, &attr)) {
		pthread_condattr_destroy(&attr);
		goto fail;
	}
	pthread_condattr_destroy(&attr);
	if (pthread_mutex_init(&nd->lock, NULL)) {
		pthread_cond_destroy(&nd->cond);
		goto fail;
	}
	snprintf(nd->host, sizeof(nd->host), "%s", host);
	nd->port = port;
	return nd;
fail:
	free(nd->idle);
	free(nd);
	errno = ENOMEM;
	return NULL;
}

int redis_node_get(struct redis_client *cl, const char *host, int port)
{
	unsigned i, n;
	int found = -1;

	pthread_mutex_lock(&cl->nodes_lock);
	n = atomic_load(&cl->nr_nodes);
	for (i = 0; i < n && found < 0; i++)
		if (cl->nodes[i]->port == port &&
		    !strcmp(cl->nodes[i]->host, host))
			found = (int)i;
	if (found < 0 && n == REDIS_MAX_NODES)
		errno = ENOSPC;
	else if (found < 0 && strlen(host) >= REDIS_HOST_MAX)
		errno = EINVAL;
	else if (found < 0 &&
		 (cl->nodes[n] = node_new(host, port, cl->max_conns))) {
		found = (int)n;
		/* Published after it is complete: readers index below it. */
		atomic_store(&cl->nr_nodes, n + 1);
	}
	pthread_mutex_unlock(&cl->nodes_lock);
	return found;
}

/* Connect to nd; called with no lock held. */
static redisContext *node_connect(struct redis_client *cl,
				  struct redis_node *nd)
{
	struct timeval tv = ms_to_tv(cl->timeout_ms);
	redisContext *ctx = redisConnectWithTimeout(nd->host, nd->port, tv);

	atomic_fetch_add(&cl->n.connects, 1);
	if (ctx && !ctx->err && redisSetTimeout(ctx, tv) == REDIS_OK) {
		redisEnableKeepAlive(ctx);
		redis_reply_install(ctx);
		atomic_fetch_add(&cl->n.connections, 1);
		return ctx;
	}
	atomic_fetch_add(&cl->n.connect_failures, 1);
	errno = ctx && ctx->err == REDIS_ERR_IO && errno ? errno : ECONNREFUSED;
	if (ctx) {
		int saved = errno;

		redisFree(ctx);
		errno = saved;
	}
	return NULL;
}

/* Called with nd->lock held: the absolute time the timeout ends. */
static struct timespec deadline(unsigned ms)
{
	uint64_t t = redis_now_ns() + (uint64_t)ms * 1000000ull;
	struct timespec ts = {.tv_sec = (time_t)(t / 1000000000ull),
			      .tv_nsec = (long)(t % 1000000000ull)};

	return ts;
}

/* Called with nd->lock held: the node failed (a connect, or a command
 * timed out): no new connection before the backoff (50 ms, doubling to
 * 2 s) has passed.  A command that succeeds ends it (redis_conn_put). */
static void backoff(struct redis_node *nd, int err)
{
	nd->backoff_err = err;
	nd->backoff_ms = nd->backoff_ms ? nd->backoff_ms * 2 : BACKOFF_FIRST_MS;
	if (nd->backoff_ms > BACKOFF_MAX_MS)
		nd->backoff_ms = BACKOFF_MAX_MS;
	nd->retry_at_ns =
		redis_now_ns() + (uint64_t)nd->backoff_ms * 1000000ull;
}

/* Called with nd->lock held: an idle connection of the current
 * generation, closing older ones; 1 if one was found. */
static int take_idle(struct redis_client *cl, struct redis_node *nd,
		     struct redis_conn *conn)
{
	while (nd->nidle) {
		*conn = nd->idle[--nd->nidle];
		if (conn->gen == nd->gen)
			return 1;
		nd->open--;
		conn_close(cl, conn);
	}
	return 0;
}

int redis_conn_get_idle(struct redis_client *cl, struct redis_node *nd,
			struct redis_conn *conn)
{
	int got;

	pthread_mutex_lock(&nd->lock);
	got = take_idle(cl, nd, conn);
	pthread_mutex_unlock(&nd->lock);
	if (!got)
		errno = EAGAIN;
	return got ? 0 : -1;
}

int redis_conn_get(struct redis_client *cl, struct redis_node *nd,
		   struct redis_conn *conn, int *fresh)
{
	struct timespec end = deadline(cl->timeout_ms);
	uint64_t gen;
	int saved;

	pthread_mutex_lock(&nd->lock);
	for (;;) {
		if (take_idle(cl, nd, conn)) {
			pthread_mutex_unlock(&nd->lock);
			*fresh = 0;
			return 0;
		}
		if (nd->open < cl->max_conns)
			break;
		if (pthread_cond_timedwait(&nd->cond, &nd->lock, &end) ==
		    ETIMEDOUT) {
			pthread_mutex_unlock(&nd->lock);
			errno = ETIMEDOUT;
			return -1;
		}
	}
	if (nd->retry_at_ns && redis_now_ns() < nd->retry_at_ns) {
		pthread_mutex_unlock(&nd->lock);
		errno = nd->backoff_err; /* still backing off */
		return -1;
	}
	nd->open++;
	gen = nd->gen;
	pthread_mutex_unlock(&nd->lock);

	conn->ctx = node_connect(cl, nd);
	saved = errno;
	pthread_mutex_lock(&nd->lock);
	if (!conn->ctx) {
		nd->open--;
		backoff(nd, saved);
		pthread_cond_signal(&nd->cond);
	}
	pthread_mutex_unlock(&nd->lock);
	if (!conn->ctx) {
		errno = saved;
		return -1;
	}
	conn->gen = gen;
	conn->rbuf = malloc(REDIS_READ_CHUNK); /* NULL: hiredis reads */
	conn->rpos = conn->rlen = 0;
	*fresh = 1;
	return 0;
}

int redis_conn_flush(redisContext *ctx)
{
	size_t left = sdslen(ctx->obuf);

	/* send, not hiredis's write: MSG_NOSIGNAL keeps SIGPIPE away in one
	 * system call where blocking it took three more per flush. */
	while (left) {
		ssize_t n = send(ctx->fd, ctx->obuf, left, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) { /* as hiredis reports it, errno kept */
			int saved = errno;

			ctx->err = REDIS_ERR_IO;
			snprintf(ctx->errstr, sizeof(ctx->errstr), "%s",
				 strerror(saved));
			errno = saved;
			return REDIS_ERR;
		}
		sdsrange(ctx->obuf, (int)n, -1);
		left -= (size_t)n;
	}
	return REDIS_OK;
}

int redis_conn_read(struct redis_conn *conn)
{
	redisContext *ctx = conn->ctx;
	size_t keep = conn->rlen - conn->rpos;
	ssize_t n;

	memmove(conn->rbuf, conn->rbuf + conn->rpos, keep);
	conn->rpos = 0;
	conn->rlen = keep;
	do
		n = read(ctx->fd, conn->rbuf + keep, REDIS_READ_CHUNK - keep);
	while (n < 0 && errno == EINTR);
	if (n <= 0) { /* as hiredis reports them, errno kept */
		int saved = errno;

		ctx->err = n < 0 ? REDIS_ERR_IO : REDIS_ERR_EOF;
		snprintf(ctx->errstr, sizeof(ctx->errstr), "%s",
			 n < 0 ? strerror(saved)
			       : "Server closed the connection");
		errno = saved;
		return REDIS_ERR;
	}
	conn->rlen += (size_t)n;
	return REDIS_OK;
}

/* Give what conn->rbuf holds to hiredis's reader; REDIS_OK or REDIS_ERR. */
static int conn_feed(struct redis_conn *conn)
{
	redisContext *ctx = conn->ctx;
	size_t at = conn->rpos, n = conn->rlen - conn->rpos;

	conn->rlen = conn->rpos = 0;
	if (n && redisReaderFeed(ctx->reader, conn->rbuf + at, n) != REDIS_OK) {
		ctx->err = ctx->reader->err;
		snprintf(ctx->errstr, sizeof(ctx->errstr), "%s",
			 ctx->reader->errstr);
		return REDIS_ERR;
	}
	return REDIS_OK;
}

/* hiredis's reader holds no byte and no reply in progress. */
static int reader_empty(const redisReader *r)
{
	return r->pos == r->len && r->ridx == -1;
}

int redis_conn_reply(struct redis_conn *conn, void **reply)
{
	redisContext *ctx = conn->ctx;
	struct redis_cmd *c = ctx->reader->privdata;

	if (redis_conn_flush(ctx) != REDIS_OK) /* none to send, usually */
		return REDIS_ERR;
	if (!conn->rbuf)
		return redisGetReply(ctx, reply);
	if (c && c->dst && reader_empty(ctx->reader)) {
		int rc = redis_bulk_reply(conn, c, reply);

		if (rc != 1)
			return rc;
	}
	if (conn_feed(conn) != REDIS_OK ||
	    redisGetReplyFromReader(ctx, reply) != REDIS_OK)
		return REDIS_ERR;
	while (!*reply) {
		if (redis_conn_read(conn) != REDIS_OK ||
		    conn_feed(conn) != REDIS_OK ||
		    redisGetReplyFromReader(ctx, reply) != REDIS_OK)
			return REDIS_ERR;
	}
	return REDIS_OK;
}

void redis_conn_put(struct redis_client *cl, struct redis_node *nd,
		    struct redis_conn *conn, int answered)
{
	pthread_mutex_lock(&nd->lock);
	if (answered) { /* the node is fine */
		nd->backoff_ms = 0;
		nd->retry_at_ns = 0;
	}
	if (conn->gen == nd->gen && nd->nidle < cl->max_conns) {
		nd->idle[nd->nidle++] = *conn;
	} else {
		nd->open--;
		conn_close(cl, conn);
	}
	pthread_cond_signal(&nd->cond);
	pthread_mutex_unlock(&nd->lock);
}

void redis_conn_drop(struct redis_client *cl, struct redis_node *nd,
		     struct redis_conn *conn, int timed_out)
{
	pthread_mutex_lock(&nd->lock);
	nd->open--;
	if (conn->gen == nd->gen)
		nd->gen++;
	if (timed_out)
		backoff(nd, ETIMEDOUT);
	pthread_cond_signal(&nd->cond);
	pthread_mutex_unlock(&nd->lock);
	conn_close(cl, conn);
}

redisReply *redis_node_command(struct redis_client *cl, unsigned node, int argc,
			       const char **argv, const size_t *argvlen)
{
	struct redis_node *nd = cl->nodes[node];
	struct redis_conn conn;
	redisReply *r;
	int fresh;

	if (redis_conn_get(cl, nd, &conn, &fresh))
		return NULL;
	atomic_fetch_add(&cl->n.commands, 1);
	atomic_fetch_add(&cl->n.round_trips, 1);
	redis_reply_expect(conn.ctx, NULL);
	r = NULL;
	if (redisAppendCommandArgv(conn.ctx, argc, argv, argvlen) == REDIS_OK)
		redis_conn_reply(&conn, (void **)&r);
	if (!r) {
		int err = conn.ctx->err == REDIS_ERR_IO && errno ? errno : EIO;

		if (err == EAGAIN || err == EWOULDBLOCK) {
			err = ETIMEDOUT;
			atomic_fetch_add(&cl->n.timeouts, 1);
		}
		redis_conn_drop(cl, nd, &conn, err == ETIMEDOUT);
		atomic_fetch_add(&cl->n.errors, 1);
		errno = err;
		return NULL;
	}
	redis_conn_put(cl, nd, &conn, 1);
	if (r->type == REDIS_REPLY_ERROR) {
		freeReplyObject(r);
		atomic_fetch_add(&cl->n.errors, 1);
		errno = EIO;
		return NULL;
	}
	return r;
}

#endif /* FL_HAVE_HIREDIS */
