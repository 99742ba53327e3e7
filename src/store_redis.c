/* SPDX-License-Identifier: MIT */
/*
 * The Redis store: an object kept in Redis (one server, or a Redis
 * Cluster) as fixed-size blocks, one string key per block, plus a
 * metadata hash (docs/design.md, "Redis layout"):
 *
 *   PREFIX:meta   HASH  format "faultline-blocks", version "1",
 *                       size (bytes), block_size (bytes)
 *   PREFIX:N      STRING  block N: bytes [N * block_size, +block_size);
 *                         missing, or shorter than a block: zeros.
 *
 * A range is read with one GETRANGE per block it touches, written with
 * SET (a whole block; DEL when it is all zeros, so objects stay sparse)
 * or SETRANGE (part of one); the commands of a range, or of several
 * queued requests, go in one pipelined round trip (redis_pipe.c).
 *
 * Threads: submit (the engine's handler and I/O threads) only queues a
 * request and signals; the store's own threads (io_threads) take what is
 * queued (small requests together, a readahead window alone: take_batch),
 * run it as one batch and complete each request as soon as its own
 * replies are in: a read's completion runs right there (aio_complete_here:
 * the fault it resumes is mapped without waking a handler thread), others
 * go to the engine (fl_store_io_complete).  read and write run in the
 * caller's thread.  Every thread takes a connection from the
 * pool (redis_link.c) for each batch and gives it back.  The queue's
 * mutex is held only to queue and take requests.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "faultline.h"

#ifdef FL_HAVE_HIREDIS
#include "aio.h"
#include "debug.h"
#include "redis_client.h"
#include "redis_object.h"

#define DEFAULT_TIMEOUT_MS 2000u
#define DEFAULT_CONNS	   4u
#define DEFAULT_THREADS	   4u /* at most: one per connection */
#define MAX_THREADS	   16u
#define BATCH_BLOCKS	   512u	       /* most block commands in one batch */
#define SPLIT_BLOCKS	   16u	       /* a batch this large takes no more */
#define POPULATE_MIN	   (64u << 10) /* reads this large are populated */
#define SEND_AT_SUBMIT	   2u	       /* blocks of a read sent at submit */

struct redis_store;
struct started_read;

/*
 * A store thread.  Waiting, it is on the store's idle list; a submitter
 * takes it off (reserved), sends a read's commands itself, and hands it
 * the started read (handoff) to wait for the replies.
 */
struct store_worker {
	struct redis_store *rs;
	pthread_t thread;
	pthread_cond_t cond;
	struct store_worker *next_idle;
	int idle, reserved; /* under the store's qlock, as handoff */
	struct started_read *handoff;
};

struct redis_store {
	struct fl_store base;
	struct redis_client cl;
	char prefix[REDIS_PREFIX_MAX + 1];
	_Atomic uint64_t size; /* grows with writes past the end */
	uint32_t block;
	_Atomic uint64_t blocks_read, blocks_written;
	/* submitted requests, linked through store_data */
	pthread_mutex_t qlock;
	struct fl_store_io *head, *tail;
	int stopping, cancelled; /* under qlock */
	struct store_worker workers[MAX_THREADS];
	struct store_worker *idle; /* waiting, under qlock */
	unsigned nthreads;
	_Atomic uint64_t sent_at_submit;
};

/* One block command's own strings. */
struct blk_args {
	char key[REDIS_KEY_MAX];
	char a1[24], a2[24];
	size_t len; /* bytes of the request in this block */
	size_t at;  /* where they are in the request's buffer */
	int err;    /* the block's outcome, once its reply is in */
};

static const struct fl_store_ops redis_store_ops;

static struct redis_store *to_redis(struct fl_store *s)
{
	return (struct redis_store *)s;
}

/* ---- commands for a range -------------------------------------------- */

/* Bytes of [off, off + len) within an object of size bytes. */
static size_t clip(uint64_t size, uint64_t off, size_t len)
{
	if (off >= size)
		return 0;
	return size - off < len ? (size_t)(size - off) : len;
}

/* Blocks [off, off + len) touches in an object of size bytes. */
static unsigned range_blocks(const struct redis_store *rs, uint64_t size,
			     uint64_t off, size_t len)
{
	size_t n = clip(size, off, len);

	if (!n)
		return 0;
	return (unsigned)((off + n - 1) / rs->block - off / rs->block + 1);
}

static int all_zero(const unsigned char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static void cmd_key(struct redis_store *rs, struct redis_cmd *c,
		    struct blk_args *a, uint64_t block)
{
	int n = snprintf(a->key, sizeof(a->key), "%s:%llu", rs->prefix,
			 (unsigned long long)block);

	c->key_arg = 1;
	c->argv[1] = a->key;
	c->argvlen[1] = (size_t)n;
}

static void cmd_arg(struct redis_cmd *c, int i, const void *p, size_t len)
{
	c->argv[i] = p;
	c->argvlen[i] = len;
}

static void cmd_num(struct redis_cmd *c, int i, char *buf, uint64_t v)
{
	cmd_arg(c, i, buf, (size_t)sprintf(buf, "%llu", (unsigned long long)v));
}

/* The block commands of one request, into c and a (range_blocks of them). */
static unsigned build(struct redis_store *rs, uint64_t size,
		      const struct fl_store_io *io, struct redis_cmd *c,
		      struct blk_args *a)
{
	uint64_t end = io->off + clip(size, io->off, io->len);
	uint64_t b, pos = io->off;
	unsigned n = 0;

	for (b = io->off / rs->block; pos < end; b++, n++) {
		uint64_t bstart = b * rs->block;
		uint64_t bend =
			bstart + rs->block < end ? bstart + rs->block : end;
		const unsigned char *data =
			(const unsigned char *)io->buf + (pos - io->off);
		size_t len = (size_t)(bend - pos);

		cmd_key(rs, &c[n], &a[n], b);
		a[n].len = len;
		a[n].at = (size_t)(pos - io->off);
		if (!io->write) {
			c[n].argc = 4;
			c[n].dst = (char *)io->buf + a[n].at;
			c[n].dst_len = len;
			c[n].dst_fd = io->buf_fd;
			c[n].dst_off = io->buf_fd_off + a[n].at;
			cmd_arg(&c[n], 0, "GETRANGE", 8);
			cmd_num(&c[n], 2, a[n].a1, pos - bstart);
			cmd_num(&c[n], 3, a[n].a2, bend - bstart - 1);
		} else if (pos == bstart &&
			   (len == rs->block || bend == size)) {
			int zero = all_zero(data, len);

			c[n].argc = zero ? 2 : 3;
			cmd_arg(&c[n], 0, zero ? "DEL" : "SET", 3);
			cmd_arg(&c[n], 2, data, len);
		} else {
			c[n].argc = 4;
			cmd_arg(&c[n], 0, "SETRANGE", 8);
			cmd_num(&c[n], 2, a[n].a1, pos - bstart);
			cmd_arg(&c[n], 3, data, len);
		}
		pos = bend;
	}
	return n;
}

/*
 * One block's reply is in: a read's bytes are in the request's buffer
 * (the reader put them there: redis_reply.c; else copy them), zeros past
 * what the server had; free the reply; record the block's outcome in
 * a->err.
 */
static void block_done(const struct fl_store_io *io, struct redis_cmd *c,
		       struct blk_args *a)
{
	redisReply *r = c->reply;
	char *dst = (char *)io->buf + a->at;
	size_t got = 0;

	a->err = c->err ? c->err : c->dst_err;
	if (!a->err && !io->write) {
		if (r->type == REDIS_REPLY_STRING)
			got = r->len < a->len ? r->len : a->len;
		else if (r->type != REDIS_REPLY_NIL)
			a->err = EIO;
		if (!a->err) {
			if (r->str) /* else the reader put it there */
				memcpy(dst, r->str, got);
			memset(dst + got, 0, a->len - got);
		}
	}
	if (r)
		freeReplyObject(r);
	c->reply = NULL;
}

/* The result of one request from its n blocks' outcomes. */
static ssize_t finish(struct redis_store *rs, uint64_t size,
		      const struct fl_store_io *io, const struct blk_args *a,
		      unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (a[i].err)
			return -(ssize_t)(a[i].err == ECANCELED ? ECANCELED
								: EIO);
	atomic_fetch_add(io->write ? &rs->blocks_written : &rs->blocks_read, n);
	return (ssize_t)clip(size, io->off, io->len);
}

/* A batch of requests and where each one's commands are. */
struct batch {
	struct redis_store *rs;
	struct fl_store_io *const *ios;
	ssize_t *results;
	struct redis_cmd *c;
	struct blk_args *a;
	unsigned *first;  /* request r: commands first[r] to first[r + 1] */
	unsigned *left;	  /* commands of each request not final yet */
	unsigned *req_of; /* the request of each command */
	int complete;	  /* complete each request as soon as it is done */
	unsigned n;	  /* requests */
	unsigned total;	  /* commands */
	uint64_t size;	  /* the object's, when the batch began */
	struct redis_hooks hooks;
};

static void request_done(struct batch *b, unsigned r)
{
	unsigned k = b->first[r];

	b->results[r] = finish(b->rs, b->size, b->ios[r], b->a + k,
			       b->first[r + 1] - k);
	if (b->complete) /* on the store's thread, no lock held */
		aio_complete_here(b->ios[r], b->results[r]);
}

/*
 * redis_exec's callback: the commands are on their way.  While the
 * replies come, give the buffers of reads with no file behind them
 * their memory in one call each: copying the replies in would otherwise
 * take a page fault per page (the engine's reads have its memfd behind
 * them, and their replies are written there).  Only a hint: a failure
 * changes nothing.
 */
static void commands_sent(void *arg)
{
	struct batch *b = arg;

	for (unsigned r = 0; r < b->n; r++) /* not those completed (freed) */
		if (b->left[r] && !b->ios[r]->write && b->ios[r]->buf_fd < 0 &&
		    b->ios[r]->len >= POPULATE_MIN)
			madvise(b->ios[r]->buf, b->ios[r]->len,
				MADV_POPULATE_WRITE);
}

/* redis_exec's callback: command k is final. */
static void command_done(void *arg, unsigned k)
{
	struct batch *b = arg;
	unsigned r = b->req_of[k];

	block_done(b->ios[r], &b->c[k], &b->a[k]);
	if (--b->left[r] == 0)
		request_done(b, r);
}

/*
 * Set b up for n requests, their commands built; requests with nothing
 * to ask are done at once.  0, or -1 if there is no memory (nothing done
 * then).  batch_free frees what it holds either way.
 */
static int batch_init(struct batch *b, struct redis_store *rs,
		      struct fl_store_io *const *ios, unsigned n,
		      ssize_t *results, int complete)
{
	unsigned i, total = 0;

	*b = (struct batch){.rs = rs,
			    .ios = ios,
			    .results = results,
			    .complete = complete,
			    .size = atomic_load(&rs->size),
			    .hooks = {.sent = commands_sent,
				      .done = command_done,
				      .arg = b,
				      .abortable = complete}};
	for (i = 0; i < n; i++)
		total += range_blocks(rs, b->size, ios[i]->off, ios[i]->len);
	b->c = calloc(total + 1, sizeof(*b->c));
	b->a = malloc((total + 1) * sizeof(*b->a));
	b->first = malloc((2 * n + 1 + total) * sizeof(unsigned));
	if (!b->c || !b->a || !b->first)
		return -1;
	b->n = n;
	b->left = b->first + n + 1;
	b->req_of = b->left + n;
	for (total = 0, i = 0; i < n; i++) {
		unsigned k =
			build(rs, b->size, ios[i], b->c + total, b->a + total);

		b->first[i] = total;
		b->left[i] = k;
		for (unsigned j = 0; j < k; j++)
			b->req_of[total + j] = i;
		total += k;
	}
	b->first[n] = total;
	b->total = total;
	for (i = 0; i < n; i++) /* nothing to ask: done now */
		if (b->left[i] == 0)
			request_done(b, i);
	return 0;
}

static void batch_free(struct batch *b)
{
	free(b->c);
	free(b->a);
	free(b->first);
}

/*
 * Run n requests as one batch: their commands in one pipelined round
 * trip (more only for redirections); results[i] as read/write return it,
 * or a negative errno.  complete: each request is completed (on this
 * thread, a store thread: aio_complete_here) as soon as its own replies
 * are in, while the batch's later replies are still coming.  No lock
 * held.
 */
static void run_batch(struct redis_store *rs, struct fl_store_io *const *ios,
		      unsigned n, ssize_t *results, int complete)
{
	struct batch b;

	if (batch_init(&b, rs, ios, n, results, complete) == 0) {
		redis_exec(&rs->cl, b.c, b.total, &b.hooks);
	} else {
		for (unsigned i = 0; i < n; i++) {
			results[i] = -ENOMEM;
			if (complete)
				fl_store_io_complete(ios[i], -ENOMEM);
		}
	}
	batch_free(&b);
}

/*
 * A read whose commands the submitting thread sent itself (send_read),
 * handed to a waiting store thread, which reads the replies and
 * completes it (started_read_finish).
 */
struct started_read {
	struct batch b;
	struct fl_store_io *io; /* b.ios points here */
	ssize_t result;
	struct redis_exec *x;
};

/* Send io's commands from this thread, without waiting for anything: a
 * read of 1 to SEND_AT_SUBMIT blocks (so it has commands: none is done
 * here), on an idle connection.  NULL if it cannot (nothing sent, nothing
 * done: queue it as usual). */
static struct started_read *send_read(struct redis_store *rs,
				      struct fl_store_io *io)
{
	struct started_read *sr = malloc(sizeof(*sr));

	if (!sr)
		return NULL;
	sr->io = io;
	fl_assert(range_blocks(rs, atomic_load(&rs->size), io->off, io->len));
	if (batch_init(&sr->b, rs, &sr->io, 1, &sr->result, 1) == 0 &&
	    (sr->x = redis_exec_start(&rs->cl, sr->b.c, sr->b.total,
				      &sr->b.hooks))) {
		atomic_fetch_add(&rs->sent_at_submit, 1);
		return sr;
	}
	batch_free(&sr->b);
	free(sr);
	return NULL;
}

/* On a store thread, no lock held: the replies, and the completion. */
static void started_read_finish(struct started_read *sr)
{
	redis_exec_finish(sr->x);
	batch_free(&sr->b);
	free(sr);
}

/* Make the object at least end bytes long (the metadata, then rs->size);
 * the new bytes read as zeros until written.  0, or -1 with errno. */
static int grow(struct redis_store *rs, uint64_t end)
{
	uint64_t now, cur;

	if (redis_meta_grow(&rs->cl, rs->prefix, end, &now))
		return -1;
	cur = atomic_load(&rs->size);
	while (cur < now && !atomic_compare_exchange_weak(&rs->size, &cur, now))
		;
	return 0;
}

static ssize_t run_one(struct redis_store *rs, int write, void *buf, size_t len,
		       uint64_t off)
{
	struct fl_store_io io = {.write = write,
				 .buf = buf,
				 .len = len,
				 .off = off,
				 .buf_fd = -1};
	struct fl_store_io *ios[1] = {&io};
	ssize_t r;

	/* A write past the end (not the engine's: a store over this one,
	 * fl_store_compressed, or a copy) makes the object longer first. */
	if (write && off + len > atomic_load(&rs->size) && grow(rs, off + len))
		return -1;
	run_batch(rs, ios, 1, &r, 0);
	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

/* ---- store operations -------------------------------------------------- */

static ssize_t redis_read(struct fl_store *s, void *buf, size_t len,
			  uint64_t off)
{
	return run_one(to_redis(s), 0, buf, len, off);
}

static ssize_t redis_write(struct fl_store *s, const void *buf, size_t len,
			   uint64_t off)
{
	return run_one(to_redis(s), 1, (void *)buf, len, off);
}

static int64_t redis_size(struct fl_store *s)
{
	return (int64_t)atomic_load(&to_redis(s)->size);
}

/* Called with qlock held: queue io. */
static void queue_io(struct redis_store *rs, struct fl_store_io *io)
{
	io->store_data = NULL;
	if (rs->tail)
		rs->tail->store_data = io;
	else
		rs->head = io;
	rs->tail = io;
}

/* Called with qlock held: wake a waiting store thread, if any. */
static void wake_idle(struct redis_store *rs)
{
	struct store_worker *w = rs->idle;

	if (w) {
		rs->idle = w->next_idle;
		w->idle = 0;
		pthread_cond_signal(&w->cond);
	}
}

/* A read the submitter may send itself (send_read): alone, of one or two
 * blocks, nothing queued before it, and a store thread waiting to take
 * the replies (taken off the idle list: reserved, returned).  Called with
 * qlock held. */
static struct store_worker *
reserve_for(struct redis_store *rs, struct fl_store_io *const *ios, unsigned n)
{
	struct store_worker *w = rs->idle;
	unsigned blocks;

	if (n != 1 || ios[0]->write || !w || rs->head || rs->cancelled)
		return NULL;
	blocks = range_blocks(rs, atomic_load(&rs->size), ios[0]->off,
			      ios[0]->len);
	if (blocks == 0 || blocks > SEND_AT_SUBMIT)
		return NULL;
	rs->idle = w->next_idle;
	w->idle = 0;
	w->reserved = 1;
	return w;
}

/*
 * Queue the requests for the store's threads; or, for a small read when
 * a thread waits, send its commands here and hand the thread only the
 * wait for the replies: the read reaches the server without waiting for
 * that thread to wake up.  Never waits (the engine's handler threads
 * call it).
 */
static int redis_submit(struct fl_store *s, struct fl_store_io *const *ios,
			unsigned n)
{
	struct redis_store *rs = to_redis(s);
	struct started_read *sr = NULL;
	struct store_worker *w;
	unsigned i;

	pthread_mutex_lock(&rs->qlock);
	if (rs->cancelled) {
		pthread_mutex_unlock(&rs->qlock);
		for (i = 0; i < n; i++)
			fl_store_io_complete(ios[i], -ECANCELED);
		return (int)n;
	}
	w = reserve_for(rs, ios, n);
	if (w) {
		pthread_mutex_unlock(&rs->qlock);
		sr = send_read(rs, ios[0]);
		pthread_mutex_lock(&rs->qlock);
		w->reserved = 0;
		w->handoff = sr;
		pthread_cond_signal(&w->cond);
	}
	for (i = 0; i < n && !sr; i++)
		queue_io(rs, ios[i]);
	if (!w && !sr)
		wake_idle(rs);
	pthread_mutex_unlock(&rs->qlock);
	return (int)n;
}

/*
 * Called with qlock held: take queued requests, up to BATCH_BLOCKS blocks
 * (at least one request); returns how many, in ios.  Once a batch has
 * SPLIT_BLOCKS blocks (a readahead window has 32) it is closed: the next
 * window goes to another thread, on another connection, and each
 * completes as soon as its own replies are in, rather than after the
 * other's.  Small reads (random faults) gather into one round trip.
 */
static unsigned take_batch(struct redis_store *rs, struct fl_store_io **ios,
			   unsigned max)
{
	unsigned n = 0, blocks = 0;

	while (rs->head && n < max) {
		struct fl_store_io *io = rs->head;
		unsigned b = range_blocks(rs, atomic_load(&rs->size), io->off,
					  io->len);

		if (n && (blocks + b > BATCH_BLOCKS || blocks >= SPLIT_BLOCKS))
			break;
		blocks += b;
		rs->head = io->store_data;
		if (!rs->head)
			rs->tail = NULL;
		ios[n++] = io;
	}
	return n;
}

/* Called with qlock held: wait on the idle list until woken (wake_idle,
 * stop_threads), or, reserved, until the submitter hands something over. */
static void worker_wait(struct store_worker *w)
{
	struct redis_store *rs = w->rs;

	if (!w->reserved) {
		w->idle = 1;
		w->next_idle = rs->idle;
		rs->idle = w;
	}
	while (w->idle || w->reserved)
		pthread_cond_wait(&w->cond, &rs->qlock);
}

/*
 * The store's thread: run what is handed to it (a read its submitter
 * sent) or queued (batch by batch), until destroy.  Reserved, it takes
 * nothing queued: it waits for what its submitter hands over, whose
 * connection a queued batch could otherwise wait for.
 */
static void *store_thread(void *arg)
{
	struct store_worker *w = arg;
	struct redis_store *rs = w->rs;
	struct fl_store_io *ios[BATCH_BLOCKS];
	ssize_t results[BATCH_BLOCKS];

	pthread_mutex_lock(&rs->qlock);
	for (;;) {
		struct started_read *sr = w->handoff;
		unsigned n, i;
		int cancelled;

		if (sr) {
			w->handoff = NULL;
			pthread_mutex_unlock(&rs->qlock);
			started_read_finish(sr);
			pthread_mutex_lock(&rs->qlock);
			continue;
		}
		if (!w->reserved && rs->head) {
			n = take_batch(rs, ios, BATCH_BLOCKS);
			cancelled = rs->cancelled;
			if (rs->head) /* more for another thread */
				wake_idle(rs);
			pthread_mutex_unlock(&rs->qlock);
			if (!cancelled)
				run_batch(rs, ios, n, results, 1);
			else
				for (i = 0; i < n; i++)
					fl_store_io_complete(ios[i],
							     -ECANCELED);
			pthread_mutex_lock(&rs->qlock);
			continue;
		}
		if (rs->stopping && !w->reserved)
			break;
		worker_wait(w);
	}
	pthread_mutex_unlock(&rs->qlock);
	return NULL;
}

/* Queued requests complete at once, cancelled, and so do those being
 * read (their connections are shut down: a hung server holds nothing).
 * read and write go on working (the engine still writes back). */
static void redis_cancel(struct fl_store *s)
{
	struct redis_store *rs = to_redis(s);

	pthread_mutex_lock(&rs->qlock);
	rs->cancelled = 1;
	pthread_mutex_unlock(&rs->qlock);
	redis_client_cancel(&rs->cl); /* submitted reads in flight end */
}

static void stop_threads(struct redis_store *rs)
{
	pthread_mutex_lock(&rs->qlock);
	rs->stopping = 1;
	while (rs->idle)
		wake_idle(rs);
	pthread_mutex_unlock(&rs->qlock);
	for (unsigned i = 0; i < rs->nthreads; i++) {
		pthread_join(rs->workers[i].thread, NULL);
		pthread_cond_destroy(&rs->workers[i].cond);
	}
	rs->nthreads = 0;
}

static void store_free(struct redis_store *rs)
{
	stop_threads(rs);
	redis_client_fini(&rs->cl);
	pthread_mutex_destroy(&rs->qlock);
	free(rs);
}

static void redis_destroy(struct fl_store *s)
{
	store_free(to_redis(s));
}

/*
 * The data of [off, off + len) is not needed: DEL the blocks the range
 * covers whole (they read as zeros from then on); parts of blocks are
 * left as they are (a block's string cannot be cut short without being
 * rewritten).  One round trip.  0, or -1 with errno.
 */
static int redis_discard(struct fl_store *s, uint64_t off, uint64_t len)
{
	struct redis_store *rs = to_redis(s);
	uint64_t first = (off + rs->block - 1) / rs->block;
	uint64_t end = (off + len) / rs->block, b;
	struct redis_cmd *c;
	struct blk_args *a;
	unsigned n = 0, failed;

	if (end <= first)
		return 0;
	if (end - first > BATCH_BLOCKS)
		end = first + BATCH_BLOCKS; /* advice: the rest stays */
	c = calloc(end - first, sizeof(*c));
	a = malloc((end - first) * sizeof(*a));
	if (!c || !a) {
		free(c);
		free(a);
		errno = ENOMEM;
		return -1;
	}
	for (b = first; b < end; b++, n++) {
		c[n].argc = 2;
		cmd_arg(&c[n], 0, "DEL", 3);
		cmd_key(rs, &c[n], &a[n], b);
	}
	failed = redis_exec(&rs->cl, c, n, NULL);
	for (unsigned i = 0; i < n; i++)
		if (c[i].reply)
			freeReplyObject(c[i].reply);
	free(c);
	free(a);
	if (failed) {
		errno = EIO;
		return -1;
	}
	return 0;
}

static const struct fl_store_ops redis_store_ops = {
	.read = redis_read,
	.write = redis_write,
	.size = redis_size,
	.destroy = redis_destroy,
	.cancel = redis_cancel,
	.submit = redis_submit,
	.discard = redis_discard,
};

static int options_check(const struct fl_redis_options *o)
{
	return (o->block_size &&
		(o->block_size % 4096 || o->block_size > REDIS_MAX_BLOCK)) ||
	       o->io_threads > MAX_THREADS || o->connections > 1024 ||
	       (o->exclusive && !o->create_size && !o->create);
}

/*
 * The store's threads when the options do not say: one per connection, up
 * to DEFAULT_THREADS, so that as many readahead windows as there are
 * connections are in flight (the server always has one to send) and no
 * thread waits for a connection.  Four rather than two: `bench remote`'s
 * sequential scan, 0.165-0.17 s with two, 0.153-0.163 s with four.
 */
static unsigned default_threads(unsigned connections)
{
	unsigned conns = connections ? connections : DEFAULT_CONNS;

	return conns < DEFAULT_THREADS ? conns : DEFAULT_THREADS;
}

/* Start n store threads, with every signal blocked (they are the
 * program's, as for the engine's threads). */
static int threads_start(struct redis_store *rs, unsigned n)
{
	sigset_t all, old;
	int err = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (rs->nthreads = 0; rs->nthreads < n; rs->nthreads++) {
		struct store_worker *w = &rs->workers[rs->nthreads];

		w->rs = rs;
		pthread_cond_init(&w->cond, NULL);
		err = pthread_create(&w->thread, NULL, store_thread, w);
		if (err) {
			pthread_cond_destroy(&w->cond);
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

static struct redis_store *store_new(const struct fl_redis_options *o)
{
	struct redis_store *rs = calloc(1, sizeof(*rs));

	if (!rs)
		return NULL;
	if (redis_client_init(
		    &rs->cl, 0,
		    o->timeout_ms ? o->timeout_ms : DEFAULT_TIMEOUT_MS,
		    o->connections ? o->connections : DEFAULT_CONNS)) {
		free(rs);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&rs->qlock, NULL);
	rs->base.ops = &redis_store_ops;
	rs->base.read_only = o->read_only != 0;
	return rs;
}

struct fl_store *fl_store_redis_open(const char *url,
				     const struct fl_redis_options *opts)
{
	static const struct fl_redis_options defaults;
	const struct fl_redis_options *o = opts ? opts : &defaults;
	struct redis_store *rs;
	int cluster, saved;
	uint64_t size;

	if (!url || options_check(o)) {
		errno = EINVAL;
		return NULL;
	}
	rs = store_new(o);
	if (!rs)
		return NULL;
	if (redis_url_parse(&rs->cl, url, rs->prefix, &cluster)) {
		if (errno != ENOMEM)
			errno = EINVAL;
		goto fail;
	}
	rs->cl.cluster = cluster;
	rs->cl.nr_seeds = atomic_load(&rs->cl.nr_nodes);
	if (cluster && redis_slots_load(&rs->cl))
		goto fail;
	if (redis_meta_open(&rs->cl, rs->prefix, o, &size, &rs->block))
		goto fail;
	atomic_store(&rs->size, size);
	if (threads_start(rs, o->io_threads ? o->io_threads
					    : default_threads(o->connections)))
		goto fail;
	return &rs->base;
fail:
	saved = errno;
	store_free(rs);
	errno = saved;
	return NULL;
}

int fl_store_redis_stats(struct fl_store *store, struct fl_redis_stats *st)
{
	struct redis_store *rs;
	struct redis_counters *n;

	if (!store || !st || store->ops != &redis_store_ops) {
		errno = EINVAL;
		return -1;
	}
	rs = to_redis(store);
	n = &rs->cl.n;
	*st = (struct fl_redis_stats){
		.connections = atomic_load(&n->connections),
		.connects = atomic_load(&n->connects),
		.connect_failures = atomic_load(&n->connect_failures),
		.commands = atomic_load(&n->commands),
		.round_trips = atomic_load(&n->round_trips),
		.moved = atomic_load(&n->moved),
		.ask = atomic_load(&n->ask),
		.slot_refreshes = atomic_load(&n->slot_refreshes),
		.errors = atomic_load(&n->errors),
		.timeouts = atomic_load(&n->timeouts),
		.blocks_read = atomic_load(&rs->blocks_read),
		.blocks_written = atomic_load(&rs->blocks_written),
		.block_size = rs->block,
		.reads_sent_at_submit = atomic_load(&rs->sent_at_submit),
	};
	return 0;
}

/* DEL every block key of the object, BATCH_BLOCKS per round trip, then
 * its metadata. */
static int remove_keys(struct redis_store *rs)
{
	uint64_t nblocks = (atomic_load(&rs->size) + rs->block - 1) / rs->block;
	uint64_t b = 0;
	struct redis_cmd *c = calloc(BATCH_BLOCKS, sizeof(*c));
	struct blk_args *a = malloc(BATCH_BLOCKS * sizeof(*a));
	unsigned failed = 0;

	if (!c || !a) {
		free(c);
		free(a);
		errno = ENOMEM;
		return -1;
	}
	while (!failed && b <= nblocks) {
		unsigned n = 0;

		for (; n < BATCH_BLOCKS && b <= nblocks; n++, b++) {
			memset(&c[n], 0, sizeof(c[n]));
			c[n].argc = 2;
			cmd_arg(&c[n], 0, "DEL", 3);
			if (b < nblocks) {
				cmd_key(rs, &c[n], &a[n], b);
			} else { /* the metadata last */
				int len = snprintf(a[n].key, sizeof(a[n].key),
						   "%s:meta", rs->prefix);

				cmd_arg(&c[n], 1, a[n].key, (size_t)len);
			}
		}
		failed = redis_exec(&rs->cl, c, n, NULL);
		for (unsigned i = 0; i < n; i++) {
			if (c[i].reply)
				freeReplyObject(c[i].reply);
			if (c[i].err && failed)
				errno = c[i].err;
		}
	}
	free(c);
	free(a);
	return failed ? -1 : 0;
}

int fl_store_redis_remove(const char *url, const struct fl_redis_options *opts)
{
	struct fl_redis_options o = opts ? *opts : (struct fl_redis_options){0};
	struct fl_store *s;
	int ret, saved;

	o.create_size = 0;
	o.exclusive = 0;
	o.read_only = 0;
	o.io_threads = 1;
	s = fl_store_redis_open(url, &o);
	if (!s)
		return -1;
	ret = remove_keys(to_redis(s));
	saved = errno;
	s->ops->destroy(s);
	errno = saved;
	return ret;
}

#else /* no hiredis: the calls exist and say so */

int fl_store_redis_remove(const char *url, const struct fl_redis_options *opts)
{
	(void)url;
	(void)opts;
	errno = EOPNOTSUPP;
	return -1;
}

struct fl_store *fl_store_redis_open(const char *url,
				     const struct fl_redis_options *opts)
{
	(void)url;
	(void)opts;
	errno = EOPNOTSUPP;
	return NULL;
}

int fl_store_redis_stats(struct fl_store *store, struct fl_redis_stats *st)
{
	(void)store;
	(void)st;
	errno = EINVAL;
	return -1;
}

#endif /* FL_HAVE_HIREDIS */
