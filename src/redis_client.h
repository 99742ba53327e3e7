/* SPDX-License-Identifier: MIT */
/*
 * A small Redis client for the Redis store (store_redis.c), standalone or
 * Redis Cluster, on hiredis's blocking API:
 *
 *   redis_link.c     servers (nodes) and a small pool of connections to
 *                    each: connect with a timeout, a timeout on every
 *                    command, reconnect after a failure (with backoff when
 *                    connecting fails or a command times out), a count of
 *                    open connections;
 *   redis_cluster.c  key -> hash slot (CRC16, hash tags), the slot map
 *                    from CLUSTER SLOTS, MOVED/ASK redirections parsed;
 *   redis_reply.c    reply objects; a block's reply parsed here (not by
 *                    hiredis), its bytes copied straight where the command
 *                    wants them;
 *   redis_pipe.c     a batch of commands in one round trip: each command
 *                    goes to the node that owns its key's slot, every
 *                    node's commands are written before any reply is read,
 *                    redirected commands are sent again where they were
 *                    sent to (MOVED also updates the map).
 *
 * Locking: every function here may be called from any thread with no
 * engine lock held; each node's pool has its own mutex (held only to take
 * or give back a connection, never across I/O), the slot map an rwlock.
 * Nothing sleeps except in socket I/O bounded by the timeout, and in
 * waiting (bounded by the timeout too) for a connection when a node's pool
 * is all in use.
 */
#ifndef FL_REDIS_CLIENT_H
#define FL_REDIS_CLIENT_H

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define REDIS_MAX_NODES 64
#define REDIS_SLOTS	16384
#define REDIS_HOST_MAX	256

struct redis_conn {
	redisContext *ctx;
	uint64_t gen;	   /* the node's generation when it was made */
	char *rbuf;	   /* REDIS_READ_CHUNK bytes to read into, or NULL */
	size_t rpos, rlen; /* rbuf[rpos, rlen): read, not yet parsed */
};

/* A connection reads up to this much per read(2) (redis_conn_reply). */
#define REDIS_READ_CHUNK (128u << 10)

/* A server: a standalone one, or a cluster node (master). */
struct redis_node {
	char host[REDIS_HOST_MAX];
	int port;
	pthread_mutex_t lock;
	pthread_cond_t cond;	 /* a connection was given back or closed */
	struct redis_conn *idle; /* max_conns slots */
	unsigned nidle, open;	 /* idle now; open (idle or in use) */
	uint64_t gen;		 /* bumped when a connection fails */
	uint64_t retry_at_ns;	 /* no connect before (backoff) */
	unsigned backoff_ms;	 /* the last backoff; 0 after success */
	int backoff_err;	 /* why: what a try within it fails with */
};

struct redis_counters {
	_Atomic uint64_t connections; /* open now */
	_Atomic uint64_t connects, connect_failures;
	_Atomic uint64_t commands, round_trips;
	_Atomic uint64_t moved, ask, slot_refreshes;
	_Atomic uint64_t errors, timeouts;
};

struct redis_client {
	int cluster;
	unsigned timeout_ms;
	unsigned max_conns;	    /* per node */
	pthread_mutex_t nodes_lock; /* adding a node */
	struct redis_node *nodes[REDIS_MAX_NODES];
	_Atomic unsigned nr_nodes;
	unsigned nr_seeds; /* the first nodes: the URL's */
	pthread_rwlock_t slots_lock;
	uint8_t slot_node[REDIS_SLOTS]; /* cluster: node index per slot */
	_Atomic int slots_stale;	/* a MOVED was seen: reload */
	pthread_mutex_t refresh_lock;	/* one CLUSTER SLOTS at a time */
	/* Abortable batches in flight (redis_pipe.c), and whether the
	 * client was cancelled (redis_client_cancel). */
	pthread_mutex_t abort_lock;
	struct round *abortable;
	_Atomic int cancelled;
	struct redis_counters n;
};

/*
 * One command of a batch: up to 6 arguments, argv[key_arg] its key
 * (key_arg 0 means 1).  The caller fills argc/argv/argvlen (the strings stay
 * the caller's, valid until redis_exec returns); redis_exec sets reply (a
 * non-error reply, the caller frees it with freeReplyObject) or err (an errno:
 * EIO for an error reply or a lost connection, ETIMEDOUT, ECONNREFUSED...).
 */
struct redis_cmd {
	int argc;
	unsigned key_arg;
	const char *argv[6];
	size_t argvlen[6];
	redisReply *reply;
	int err;
	/* Optional: where a bulk string reply goes (dst_len bytes at most);
	 * its reply then has str NULL and len the bytes put there.  With
	 * dst, dst_fd is a file dst is a shared mapping of (at dst_off), or
	 * -1: the bytes are written there with pwrite (no page of dst need
	 * be mapped); a failed write sets dst_err (an errno). */
	void *dst;
	size_t dst_len;
	int dst_fd, dst_err;
	uint64_t dst_off;
	/* redis_exec's own */
	unsigned pending : 1, asking : 1, retried : 1, notified : 1;
	unsigned node;	   /* where it is sent this round */
	unsigned ask_node; /* after ASK */
	int sent;	   /* index of its connection this round, -1: none */
};

/* redis_link.c */
/* Set up cl (cluster or not) with no node; 0 or -1 (ENOMEM). */
int redis_client_init(struct redis_client *cl, int cluster, unsigned timeout_ms,
		      unsigned max_conns);
/* Close every connection and free the nodes. */
void redis_client_fini(struct redis_client *cl);
/* The node host:port (added if new); its index, or -1 (ENOMEM, ENOSPC:
 * too many nodes). */
int redis_node_get(struct redis_client *cl, const char *host, int port);
/* A connection to node (an idle one, or a new one); 0, or -1 with errno
 * (ECONNREFUSED and the like; within the backoff after a failure, at
 * once, the failure's errno; ETIMEDOUT if all max_conns stayed in use
 * for the timeout).  *fresh: 1 if just connected. */
int redis_conn_get(struct redis_client *cl, struct redis_node *node,
		   struct redis_conn *conn, int *fresh);
/* An idle connection to node only: never waits, never connects; 0, or -1
 * with errno EAGAIN. */
int redis_conn_get_idle(struct redis_client *cl, struct redis_node *node,
			struct redis_conn *conn);
/* Give back a healthy connection; answered: a command succeeded on it
 * (which ends the node's backoff), 0 for one taken and not used. */
void redis_conn_put(struct redis_client *cl, struct redis_node *node,
		    struct redis_conn *conn, int answered);
/* Close a connection that failed; idle connections older than it are
 * closed as they are taken (the server may have restarted).  timed_out:
 * a command timed out on it: start (or lengthen) the node's backoff. */
void redis_conn_drop(struct redis_client *cl, struct redis_node *node,
		     struct redis_conn *conn, int timed_out);
/*
 * Write ctx's buffered commands out (send with MSG_NOSIGNAL until all are
 * sent): a connection the server closed, or one redis_client_cancel shut
 * down, fails with EPIPE instead of raising SIGPIPE, which would kill the
 * program.  REDIS_OK, or REDIS_ERR with ctx->err set (REDIS_ERR_IO) and
 * errno kept.
 */
int redis_conn_flush(redisContext *ctx);
/*
 * redisGetReply on a connection of the pool (its commands written out
 * first, with redis_conn_flush), but reading up to
 * REDIS_READ_CHUNK bytes per read(2) into the connection's own buffer
 * (hiredis reads 16 KiB at a time: a 64 KiB block took four system calls,
 * and each read of a socket may send a window update).  Returns REDIS_OK
 * with *reply set, or REDIS_ERR with ctx->err set as hiredis sets it.
 */
int redis_conn_reply(struct redis_conn *conn, void **reply);
/* Read more into conn->rbuf after what is pending there (moved to its
 * start first); REDIS_OK, or REDIS_ERR with ctx->err set as hiredis sets
 * it (errno kept: EAGAIN when the command timed out). */
int redis_conn_read(struct redis_conn *conn);
/* Run one command on node, outside any batch: the reply (the caller
 * frees it), or NULL with errno. */
redisReply *redis_node_command(struct redis_client *cl, unsigned node, int argc,
			       const char **argv, const size_t *argvlen);
uint64_t redis_now_ns(void);

/* redis_reply.c */
/* Build ctx's replies with redis_reply.c's functions (a new connection). */
void redis_reply_install(redisContext *ctx);
/* The next reply read on ctx is c's (NULL: none with a destination). */
void redis_reply_expect(redisContext *ctx, struct redis_cmd *c);
/*
 * The next reply on conn, for c (which has a destination), parsed here
 * instead of by hiredis when it is a bulk string or nil and hiredis's
 * reader holds nothing: the block's bytes go from conn->rbuf to c's
 * destination without passing through hiredis's buffer.  REDIS_OK with
 * *reply set, REDIS_ERR with ctx->err set, or 1: not such a reply (nothing
 * consumed), hiredis is to parse it.
 */
int redis_bulk_reply(struct redis_conn *conn, struct redis_cmd *c,
		     void **reply);

/* redis_cluster.c */
/* The hash slot of a key: CRC16 of the key, or of its hash tag (the part
 * between the first '{' and the next '}', if not empty). */
unsigned redis_key_slot(const char *key, size_t len);
/* Load the slot map with CLUSTER SLOTS from the first node that answers;
 * 0, or -1 with errno.  Called at open, and after MOVED. */
int redis_slots_load(struct redis_client *cl);
/* The node that owns slot. */
unsigned redis_slot_node(struct redis_client *cl, unsigned slot);
/*
 * A redirection error reply ("MOVED 3999 host:port", "ASK ..."): 1 for
 * MOVED, 2 for ASK, with *slot and the target node's index (a host left
 * empty is from's host); 0 if not a redirection (or an unknown node could
 * not be added).  MOVED also points the slot at the node in the map.
 */
int redis_redirect(struct redis_client *cl, const char *err, unsigned from,
		   unsigned *node);

/* redis_pipe.c */
/* What a caller of redis_exec hears about (any hook may be NULL). */
struct redis_hooks {
	/* The first round's commands are all sent: the caller may work
	 * while the replies come. */
	void (*sent)(void *arg);
	/* Command i is final (reply or err set; not touched again). */
	void (*done)(void *arg, unsigned i);
	void *arg;
	/* redis_client_cancel ends this batch at once (its commands fail
	 * with ECANCELED): the store's submitted reads.  Others (writeback)
	 * go on after a cancel. */
	int abortable;
};

/*
 * Run cmds in as few round trips as possible: one when nothing is
 * redirected and no connection fails.  Every command ends with reply or
 * err set.  hooks (may be NULL) are called in the calling thread: done as
 * soon as each command is final, so that a caller can use the first
 * replies while later ones are still coming.  Returns the number of
 * commands that failed.
 */
unsigned redis_exec(struct redis_client *cl, struct redis_cmd *cmds, unsigned n,
		    const struct redis_hooks *hooks);
/*
 * redis_exec in two halves, for a thread that must not wait (a fault
 * handler): redis_exec_start sends the first round's commands, and only
 * if it can without waiting: every connection they need is idle in its
 * pool (none is made or waited for) and the cluster's slot map is not to
 * be reloaded.  NULL, with nothing sent and no hook called, otherwise
 * (errno EAGAIN, or ENOMEM); cmds and hooks must then stay valid until
 * redis_exec_finish, on any thread, reads the replies, runs the later
 * rounds and returns as redis_exec does.
 */
struct redis_exec *redis_exec_start(struct redis_client *cl,
				    struct redis_cmd *cmds, unsigned n,
				    const struct redis_hooks *hooks);
unsigned redis_exec_finish(struct redis_exec *x);
/*
 * Cancel: abortable batches in flight end now (their connections are
 * shut down, so that a wait for a hung server returns), and later ones
 * fail at once with ECANCELED.  Other batches are not touched.
 */
void redis_client_cancel(struct redis_client *cl);

#endif /* FL_REDIS_CLIENT_H */
