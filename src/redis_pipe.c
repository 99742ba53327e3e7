/* SPDX-License-Identifier: MIT */
/*
 * Pipelined batches (see redis_client.h): a round sends the pending
 * commands to their nodes (one connection per node per round), the first
 * SEND_WINDOW of each connection before any reply is read, so that the
 * nodes work at the same time, then reads the replies in order, and sends
 * each connection's next command as one of its replies comes in.  So a
 * node has at most SEND_WINDOW replies of a round to hold: a whole
 * readahead window (128 blocks of 64 KiB) sent at once made the server
 * queue 8 MiB of replies per connection in fresh memory (page faults and
 * cache misses in the server: a sixth more of its CPU time per byte).
 * What a round leaves pending is sent in the next one:
 *
 *   MOVED  the map now points the slot at the new node (and is reloaded
 *          before the next round); the command goes there;
 *   ASK    the command goes to the named node once, after ASKING;
 *   a lost connection (not a timeout) on a connection that was taken
 *          idle from the pool: once more, on a new connection (the server
 *          may have restarted since the connection was made).
 *
 * Every command the store sends is idempotent (GETRANGE, SET, SETRANGE,
 * DEL), so sending one again is safe.  A timeout fails the command
 * (ETIMEDOUT) and closes its connection; any other error reply fails it
 * with EIO.  Rounds are bounded: a command still redirected after
 * MAX_ROUNDS fails with EIO.
 */
#ifdef FL_HAVE_HIREDIS
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "redis_client.h"

#define MAX_ROUNDS  8
#define SEND_WINDOW 32u /* commands a connection has in flight at most */

_Static_assert(REDIS_MAX_NODES <= 64, "a round's nodes are a 64-bit mask");

/* A connection of one round: to node, ok until it fails. */
struct round_conn {
	unsigned node;
	struct redis_conn conn;
	int got;	    /* a connection was taken */
	int used;	    /* a command was appended to it */
	int ok, fresh, err; /* ok: none of its I/O failed */
	unsigned next;	    /* the next of its commands to send: from here */
	unsigned in_flight; /* commands sent, their replies not read yet */
};

/*
 * A round.  An abortable one is on the client's list for redis_exec's
 * whole run; n and each connection's got and conn are then written
 * under abort_lock (redis_client_cancel reads them to shut the
 * connections down), and n goes back to 0, under it, before they are
 * given back.
 */
struct round {
	struct round_conn c[REDIS_MAX_NODES];
	unsigned n;
	struct redis_cmd *cmds; /* the batch */
	const struct redis_hooks *hooks;
	int abortable;
	int nowait;	    /* idle connections only (redis_exec_start) */
	struct round *next; /* on the client's abortable list */
};

/* A batch between redis_exec_start and redis_exec_finish. */
struct redis_exec {
	struct round rd;
	struct redis_client *cl;
	struct redis_cmd *cmds;
	unsigned n;
	unsigned round; /* the round sent, its replies not read yet */
};

/* Tell the caller once that command i is final. */
static void notify(struct round *rd, unsigned i)
{
	struct redis_cmd *c = &rd->cmds[i];

	if (c->pending || c->notified)
		return;
	c->notified = 1;
	if (rd->hooks && rd->hooks->done)
		rd->hooks->done(rd->hooks->arg, i);
}

static void cmd_fail(struct redis_client *cl, struct redis_cmd *cmd, int err)
{
	cmd->err = err;
	cmd->pending = 0;
	atomic_fetch_add(&cl->n.errors, 1);
}

/* The round's connection to node, taken on first use (check ok). */
static struct round_conn *round_conn(struct redis_client *cl, struct round *rd,
				     unsigned node)
{
	struct round_conn *rc;
	unsigned i;

	for (i = 0; i < rd->n; i++)
		if (rd->c[i].node == node)
			return &rd->c[i];
	rc = &rd->c[rd->n];
	rc->node = node;
	rc->fresh = 0;
	rc->got = rd->nowait
			  ? !redis_conn_get_idle(cl, cl->nodes[node], &rc->conn)
			  : !redis_conn_get(cl, cl->nodes[node], &rc->conn,
					    &rc->fresh);
	rc->ok = rc->got;
	rc->err = rc->ok ? 0 : errno;
	if (!rd->abortable) {
		rd->n++;
		return rc;
	}
	/* Published to redis_client_cancel, or, if it came first, shut
	 * down here: either way a cancel ends this connection's wait. */
	pthread_mutex_lock(&cl->abort_lock);
	rd->n++;
	if (rc->got && atomic_load(&cl->cancelled))
		shutdown(rc->conn.ctx->fd, SHUT_RDWR);
	pthread_mutex_unlock(&cl->abort_lock);
	return rc;
}

/* The errno of a failed read or write on ctx: ETIMEDOUT, or EIO. */
static int ctx_errno(redisContext *ctx, int saved)
{
	if (ctx->err == REDIS_ERR_IO &&
	    (saved == EAGAIN || saved == EWOULDBLOCK ||
	     strstr(ctx->errstr, "temporarily unavailable")))
		return ETIMEDOUT;
	return EIO;
}

static void conn_broken(struct redis_client *cl, struct round_conn *rc)
{
	if (rc->ok) {
		rc->err = ctx_errno(rc->conn.ctx, errno);
		if (rc->err == ETIMEDOUT) /* a real wait, not a backoff */
			atomic_fetch_add(&cl->n.timeouts, 1);
	}
	rc->ok = 0;
}

/* A command whose connection failed: once more on a new connection if
 * the old one came from the pool and it did not time out. */
static void cmd_lost(struct redis_client *cl, struct round *rd,
		     struct redis_cmd *c, const struct round_conn *rc)
{
	if (rd->abortable && atomic_load(&cl->cancelled))
		cmd_fail(cl, c, ECANCELED);
	else if (rc->err != ETIMEDOUT && !rc->fresh && !c->retried)
		c->retried = 1;
	else
		cmd_fail(cl, c, rc->err ? rc->err : EIO);
}

/* The node that owns c's key (the only one, standalone). */
static unsigned cmd_node(struct redis_client *cl, const struct redis_cmd *c)
{
	unsigned k = c->key_arg ? c->key_arg : 1;

	if (!cl->cluster)
		return 0;
	return redis_slot_node(cl, redis_key_slot(c->argv[k], c->argvlen[k]));
}

/* Write rc's buffer out (its commands go to the node). */
static void conn_flush(struct redis_client *cl, struct round_conn *rc)
{
	if (rc->ok && redis_conn_flush(rc->conn.ctx) != REDIS_OK)
		conn_broken(cl, rc);
}

/*
 * Append connection k's next commands (in order) until it has
 * SEND_WINDOW in flight; 1 if any was appended (the caller flushes).
 */
static int conn_fill(struct redis_client *cl, struct round *rd, unsigned k,
		     unsigned n)
{
	static const char *asking[] = {"ASKING"};
	static const size_t asking_len[] = {6};
	struct round_conn *rc = &rd->c[k];
	int any = 0;

	for (; rc->ok && rc->next < n && rc->in_flight < SEND_WINDOW;
	     rc->next++) {
		struct redis_cmd *c = &rd->cmds[rc->next];

		if (c->sent != (int)k)
			continue;
		if (c->asking)
			redisAppendCommandArgv(rc->conn.ctx, 1, asking,
					       asking_len);
		redisAppendCommandArgv(rc->conn.ctx, c->argc, c->argv,
				       c->argvlen);
		atomic_fetch_add(&cl->n.commands, 1);
		rc->in_flight++;
		rc->used = any = 1;
	}
	return any;
}

/* Take a connection to every node the pending commands go to; 1 if all
 * were taken. */
static int round_connect(struct redis_client *cl, struct round *rd,
			 struct redis_cmd *cmds, unsigned n)
{
	uint64_t need = 0;
	unsigned i;
	int all = 1;

	for (i = 0; i < n; i++) {
		cmds[i].sent = -1;
		if (!cmds[i].pending)
			continue;
		cmds[i].node = cmds[i].asking ? cmds[i].ask_node
					      : cmd_node(cl, &cmds[i]);
		need |= 1ull << cmds[i].node;
	}
	/* Connections are taken in node order: two batches that each need
	 * two full pools never wait for each other. */
	for (i = 0; i < REDIS_MAX_NODES; i++)
		if (need & (1ull << i))
			all &= round_conn(cl, rd, i)->ok;
	return all;
}

/* Give the pending commands their connections (round_connect took
 * them), and send the first SEND_WINDOW of each. */
static void round_send(struct redis_client *cl, struct round *rd,
		       struct redis_cmd *cmds, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		struct redis_cmd *c = &cmds[i];
		struct round_conn *rc;

		if (!c->pending)
			continue;
		rc = round_conn(cl, rd, c->node);
		if (!rc->ok) {
			if (rc->got) /* broke this round: try again */
				cmd_lost(cl, rd, c, rc);
			else
				cmd_fail(cl, c, rc->err ? rc->err : EIO);
			notify(rd, i);
			continue;
		}
		c->sent = (int)(rc - rd->c);
	}
	/* Every node gets its first commands before any reply is awaited. */
	for (i = 0; i < rd->n; i++)
		if (conn_fill(cl, rd, i, n))
			conn_flush(cl, &rd->c[i]);
	atomic_fetch_add(&cl->n.round_trips, 1);
}

/* A reply (or error) for c: done, failed, or pending again. */
static void cmd_reply(struct redis_client *cl, struct redis_cmd *c,
		      redisReply *r)
{
	unsigned node;
	int kind;

	if (r->type != REDIS_REPLY_ERROR) {
		c->reply = r;
		c->pending = 0;
		return;
	}
	kind = redis_redirect(cl, r->str, c->node, &node);
	freeReplyObject(r);
	if (kind == 1) {
		atomic_fetch_add(&cl->n.moved, 1);
		atomic_store(&cl->slots_stale, 1);
		c->asking = 0;
	} else if (kind == 2) {
		atomic_fetch_add(&cl->n.ask, 1);
		c->asking = 1;
		c->ask_node = node;
	} else {
		cmd_fail(cl, c, EIO);
	}
}

/* The round's connections go back to their pools (or are closed, if
 * they failed); the next round starts with none, and cancel must not
 * touch these any more. */
static void round_release(struct redis_client *cl, struct round *rd)
{
	unsigned i, nconn = rd->n;

	if (rd->abortable)
		pthread_mutex_lock(&cl->abort_lock);
	rd->n = 0;
	if (rd->abortable)
		pthread_mutex_unlock(&cl->abort_lock);
	for (i = 0; i < nconn; i++) {
		struct redis_node *nd = cl->nodes[rd->c[i].node];

		if (!rd->c[i].got)
			continue;
		/* After a cancel it may be shut down: never back to the pool */
		if (rd->c[i].ok &&
		    !(rd->abortable && atomic_load(&cl->cancelled)))
			redis_conn_put(cl, nd, &rd->c[i].conn, rd->c[i].used);
		else
			redis_conn_drop(cl, nd, &rd->c[i].conn,
					rd->c[i].err == ETIMEDOUT);
	}
}

static void round_receive(struct redis_client *cl, struct round *rd,
			  struct redis_cmd *cmds, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		struct redis_cmd *c = &cmds[i];
		struct round_conn *rc;
		redisReply *r = NULL;
		int was_asking = c->asking;

		if (c->sent < 0)
			continue;
		rc = &rd->c[c->sent];
		if (rc->ok && was_asking) { /* ASKING's +OK */
			redis_reply_expect(rc->conn.ctx, NULL);
			if (redis_conn_reply(&rc->conn, (void **)&r) !=
			    REDIS_OK)
				conn_broken(cl, rc);
			else
				freeReplyObject(r);
			c->asking = 0; /* one command only */
		}
		if (rc->ok)
			redis_reply_expect(rc->conn.ctx, c);
		if (rc->ok &&
		    redis_conn_reply(&rc->conn, (void **)&r) != REDIS_OK)
			conn_broken(cl, rc);
		if (!rc->ok) {
			cmd_lost(cl, rd, c, rc);
		} else {
			cmd_reply(cl, c, r);
			/* Half the window free: send as many more at once. */
			if (--rc->in_flight <= SEND_WINDOW / 2 &&
			    conn_fill(cl, rd, (unsigned)c->sent, n))
				conn_flush(cl, rc);
		}
		notify(rd, i);
	}
	round_release(cl, rd);
}

/* An abortable round goes on (on) or off the client's list. */
static void round_list(struct redis_client *cl, struct round *rd, int on)
{
	struct round **p;

	pthread_mutex_lock(&cl->abort_lock);
	if (on) {
		rd->next = cl->abortable;
		cl->abortable = rd;
	} else {
		for (p = &cl->abortable; *p != rd; p = &(*p)->next)
			;
		*p = rd->next;
	}
	pthread_mutex_unlock(&cl->abort_lock);
}

void redis_client_cancel(struct redis_client *cl)
{
	struct round *rd;

	atomic_store(&cl->cancelled, 1);
	pthread_mutex_lock(&cl->abort_lock);
	for (rd = cl->abortable; rd; rd = rd->next)
		for (unsigned i = 0; i < rd->n; i++)
			if (rd->c[i].got) /* its reads and writes return */
				shutdown(rd->c[i].conn.ctx->fd, SHUT_RDWR);
	pthread_mutex_unlock(&cl->abort_lock);
}

/* A batch of n commands, on the client's abortable list if it is one;
 * NULL if no memory. */
static struct redis_exec *exec_new(struct redis_client *cl,
				   struct redis_cmd *cmds, unsigned n,
				   const struct redis_hooks *hooks)
{
	struct redis_exec *x = calloc(1, sizeof(*x));

	for (unsigned i = 0; i < n; i++) {
		cmds[i].reply = NULL;
		cmds[i].err = cmds[i].dst_err = 0;
		cmds[i].pending = 1;
		cmds[i].asking = cmds[i].retried = cmds[i].notified = 0;
	}
	if (!x)
		return NULL;
	*x = (struct redis_exec){.cl = cl, .cmds = cmds, .n = n};
	x->rd.cmds = cmds;
	x->rd.hooks = hooks;
	if (hooks && hooks->abortable) {
		x->rd.abortable = 1;
		round_list(cl, &x->rd, 1);
	}
	return x;
}

/* Send round x->round: its connections taken (round_connect), then its
 * commands. */
static void exec_send(struct redis_exec *x)
{
	round_send(x->cl, &x->rd, x->cmds, x->n);
	if (x->round == 0 && x->rd.hooks && x->rd.hooks->sent)
		x->rd.hooks->sent(x->rd.hooks->arg);
}

/* 1 if the batch stops before round x->round (cancelled); otherwise the
 * round's state is fresh, the slot map reloaded if a MOVED asked. */
static int exec_round_begin(struct redis_exec *x)
{
	struct redis_client *cl = x->cl;

	if (x->rd.abortable && atomic_load(&cl->cancelled))
		return 1;
	if (!x->rd.nowait && cl->cluster && atomic_load(&cl->slots_stale))
		redis_slots_load(cl); /* the MOVED already applied */
	/* n is 0 between rounds (round_release): nothing for cancel to
	 * look at, and no connection of the last round */
	memset(x->rd.c, 0, sizeof(x->rd.c));
	return 0;
}

/* Fail what is still pending, tell the caller of every command not told
 * yet, and free x; returns how many commands failed. */
static unsigned exec_end(struct redis_client *cl, struct redis_exec *x,
			 struct redis_cmd *cmds, unsigned n,
			 const struct redis_hooks *hooks)
{
	int abortable = hooks && hooks->abortable;
	unsigned i, failed = 0;

	if (x && abortable)
		round_list(cl, &x->rd, 0);
	for (i = 0; i < n; i++) {
		if (cmds[i].pending) /* cancelled, redirected too often, or
					no memory */
			cmd_fail(cl, &cmds[i],
				 !x			      ? ENOMEM
				 : abortable && cl->cancelled ? ECANCELED
							      : EIO);
		failed += cmds[i].err != 0;
		if (!cmds[i].notified && hooks && hooks->done)
			hooks->done(hooks->arg, i);
	}
	free(x);
	return failed;
}

struct redis_exec *redis_exec_start(struct redis_client *cl,
				    struct redis_cmd *cmds, unsigned n,
				    const struct redis_hooks *hooks)
{
	struct redis_exec *x = exec_new(cl, cmds, n, hooks);

	if (!x) {
		errno = ENOMEM;
		return NULL;
	}
	x->rd.nowait = 1;
	if ((cl->cluster && atomic_load(&cl->slots_stale)) ||
	    exec_round_begin(x) || !round_connect(cl, &x->rd, cmds, n)) {
		round_release(cl, &x->rd); /* unused: back to the pool */
		if (x->rd.abortable)
			round_list(cl, &x->rd, 0);
		free(x);
		errno = EAGAIN;
		return NULL;
	}
	x->rd.nowait = 0; /* later rounds run where it is finished */
	exec_send(x);
	return x;
}

unsigned redis_exec_finish(struct redis_exec *x)
{
	struct redis_client *cl = x->cl;
	unsigned i, left;

	for (;;) {
		round_receive(cl, &x->rd, x->cmds, x->n);
		for (left = 0, i = 0; i < x->n; i++)
			left += x->cmds[i].pending;
		if (!left || ++x->round >= MAX_ROUNDS || exec_round_begin(x))
			break;
		round_connect(cl, &x->rd, x->cmds, x->n);
		exec_send(x);
	}
	return exec_end(cl, x, x->cmds, x->n, x->rd.hooks);
}

unsigned redis_exec(struct redis_client *cl, struct redis_cmd *cmds, unsigned n,
		    const struct redis_hooks *hooks)
{
	struct redis_exec *x = exec_new(cl, cmds, n, hooks);

	if (!x || !n || exec_round_begin(x))
		return exec_end(cl, x, cmds, n, hooks);
	round_connect(cl, &x->rd, cmds, n);
	exec_send(x);
	return redis_exec_finish(x);
}

#endif /* FL_HAVE_HIREDIS */
