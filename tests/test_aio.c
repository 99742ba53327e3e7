/* SPDX-License-Identifier: MIT */
/*
 * Asynchronous store reads (fl_store_ops.submit): faults submit their reads
 * to the store and the handler threads complete them.  The file store's
 * io_uring path (where built with liburing, unless FAULTLINE_IO_URING=0),
 * and a store of the test's own that completes requests from its own
 * thread, as a remote store would: data, queue depth, errors, teardown.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "harness.h"
#include "inject.h"

struct fl_engine;
/* From the library the tests link (src/aio.c): is the ring in use? */
int aio_has_ring(const struct fl_engine *e);

/* The ring is expected where built with liburing, unless turned off. */
static void check_ring(fl_engine *e)
{
#ifdef FL_HAVE_LIBURING
	const char *s = getenv("FAULTLINE_IO_URING");

	if (s && !strcmp(s, "0"))
		CHECK_EQ(aio_has_ring(e), 0);
	else if (!aio_has_ring(e))
		h_note("io_uring refused here: the I/O-thread path ran");
#else
	CHECK_EQ(aio_has_ring(e), 0);
#endif
}

struct random_read {
	unsigned char *p;
	uint64_t pages, per_thread;
	uint32_t seed;
};

static void random_reader(int idx, void *arg)
{
	struct random_read *rr = arg;
	uint64_t x = (uint64_t)idx * 0x9E3779B97F4A7C15ull + 1;

	for (uint64_t i = 0; i < rr->per_thread; i++) {
		uint64_t pg, off;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		pg = x % rr->pages;
		off = pg * PG + (x >> 32) % PG;
		if (rr->p[off] != h_pattern(rr->seed, off)) {
			h_fail(__FILE__, __LINE__, "thread %d: byte %llu wrong",
			       idx, (unsigned long long)off);
			return;
		}
	}
}

/*
 * Eight threads read random pages of a cold file, one page per read
 * (MADV_RANDOM): every byte checked is right, and the reads overlapped:
 * the mean queue depth the store saw is above 1.
 */
TEST(many_threads_random_pages)
{
	struct h_file f;
	fl_engine *e = h_engine_cfg(2, 1, 1);
	struct random_read rr = {.pages = 4096, .per_thread = 200, .seed = 71};
	struct fl_stats s;
	fl_object *o;

	check_ring(e);
	h_file_create(&f, rr.pages * PG, rr.seed);
	o = h_open(e, &f, O_RDONLY);
	rr.p = h_map(e, rr.pages * PG, PROT_READ, MAP_SHARED, o, 0);
	CHECK_EQ(fl_madvise(e, rr.p, rr.pages * PG, MADV_RANDOM), 0);
	h_run_threads(8, random_reader, &rr);
	CHECK_EQ(h_mismatch(rr.p, rr.pages * PG, rr.seed, 0), -1);
	s = h_estats(e);
	CHECK_EQ(s.errors, 0);
	CHECK_EQ(s.store_reads, s.pages_read);
	CHECK_GE(s.pages_read, rr.pages / 2);
	h_note("%llu reads, mean depth %.2f", (unsigned long long)s.store_reads,
	       (double)s.store_read_depth / (double)s.store_reads);
	CHECK_GT(s.store_read_depth, s.store_reads);
	CHECK_EQ(fl_munmap(e, rr.p, rr.pages * PG), 0);
	fl_object_close(o);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* Readahead windows and fault-around through the async path: a whole file
 * read in order by four threads, each its own quarter. */
static void quarter_reader(int idx, void *arg)
{
	struct random_read *rr = arg;
	uint64_t n = rr->pages / 4 * PG, base = (uint64_t)idx * n;

	if (h_mismatch(rr->p + base, n, rr->seed, base) != -1)
		h_fail(__FILE__, __LINE__, "quarter %d wrong", idx);
}

TEST(sequential_quarters)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	struct random_read rr = {.pages = 8192 + 3, .seed = 72};
	fl_object *o;

	check_ring(e);
	/* Not a whole number of pages: the tail reads short, then zeros. */
	h_file_create(&f, rr.pages * PG - 1000, rr.seed);
	o = h_open(e, &f, O_RDONLY);
	rr.p = h_map(e, rr.pages * PG, PROT_READ, MAP_SHARED, o, 0);
	h_run_threads(4, quarter_reader, &rr);
	CHECK_EQ(h_mismatch(rr.p, rr.pages * PG - 1000, rr.seed, 0), -1);
	CHECK_EQ(h_nonzero(rr.p + rr.pages * PG - 1000, 1000), -1);
	CHECK_EQ(h_estats(e).errors, 0);
	CHECK_EQ(fl_munmap(e, rr.p, rr.pages * PG), 0);
	fl_object_close(o);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/*
 * The file shrinks after the object was opened: a batch that reaches past
 * the new end fails (the store reads 0 bytes short of the object's end),
 * the faulting page is read alone and served, and a page past the new end
 * gets SIGBUS.
 */
TEST(file_shrunk_batch_fails_page_alone_served)
{
	struct h_file f;
	fl_engine *e = h_engine_cfg(1, 1, 64);
	struct h_sig sig;
	struct fl_stats s;
	unsigned char v = 0;
	unsigned char *p;
	fl_object *o;

	check_ring(e);
	h_file_create(&f, 64 * PG, 73);
	o = h_open(e, &f, O_RDONLY);
	p = h_map(e, 64 * PG, PROT_READ, MAP_SHARED, o, 0);
	REQUIRE(truncate(f.path, 32 * PG) == 0);
	CHECK_EQ(h_try_read(p + 5, &v, &sig), 0);
	CHECK_EQ(v, h_pattern(73, 5));
	CHECK_EQ(h_try_read(p + 40 * PG, &v, &sig), SIGBUS);
	CHECK(sig.addr == p + 40 * PG);
	CHECK_EQ(h_try_read(p + 20 * PG + 7, &v, &sig), 0);
	CHECK_EQ(v, h_pattern(73, 20 * PG + 7));
	s = h_estats(e);
	CHECK_EQ(s.errors, 1);
	CHECK_EQ(fl_munmap(e, p, 64 * PG), 0);
	fl_object_close(o);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* ---- a store that completes requests from its own thread -------------- */

/*
 * Serves reads from memory.  Requests are queued by submit and completed
 * by the store's own thread, but only once `batch` of them are pending
 * (or the store was cancelled): so `batch` reads are certainly in flight
 * together.  Reads of [fail_off, fail_off + fail_len) fail with EIO.
 * With in_submit, submit completes the reads itself and then keeps the
 * submitting thread until held_release (at most 10 s).
 */
struct held_store {
	struct fl_store base;
	unsigned char *data;
	uint64_t size, fail_off, fail_len;
	unsigned batch;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fl_store_io *pending[64];
	unsigned nr_pending, submitted;
	int cancelled, stop, in_submit, released;
	pthread_t thread;
};

static struct held_store *to_held(struct fl_store *s)
{
	return (struct held_store *)s;
}

static ssize_t held_do(struct held_store *h, struct fl_store_io *io)
{
	uint64_t n;

	if (io->off < h->fail_off + h->fail_len &&
	    io->off + io->len > h->fail_off)
		return -EIO;
	if (h->cancelled)
		return -ECANCELED;
	if (io->off >= h->size)
		return 0;
	n = h->size - io->off < io->len ? h->size - io->off : io->len;
	memcpy(io->buf, h->data + io->off, n);
	return (ssize_t)n;
}

static ssize_t held_read(struct fl_store *s, void *buf, size_t len,
			 uint64_t off)
{
	struct fl_store_io io = {
		.buf = buf, .len = len, .off = off, .buf_fd = -1};
	ssize_t r = held_do(to_held(s), &io);

	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	return r;
}

static int64_t held_size(struct fl_store *s)
{
	return (int64_t)to_held(s)->size;
}

static void *held_main(void *arg)
{
	struct held_store *h = arg;

	pthread_mutex_lock(&h->lock);
	while (!h->stop) {
		if (h->nr_pending &&
		    (h->nr_pending >= h->batch || h->cancelled)) {
			unsigned n = h->nr_pending;
			struct fl_store_io *ios[64];

			memcpy(ios, h->pending, n * sizeof(ios[0]));
			h->nr_pending = 0;
			pthread_mutex_unlock(&h->lock);
			for (unsigned i = 0; i < n; i++)
				fl_store_io_complete(ios[i],
						     held_do(h, ios[i]));
			pthread_mutex_lock(&h->lock);
			continue;
		}
		pthread_cond_wait(&h->cond, &h->lock);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/* Complete the reads here, then stay until released (or 10 s). */
static int held_submit_inline(struct held_store *h,
			      struct fl_store_io *const *ios, unsigned n)
{
	struct timespec until;

	pthread_mutex_lock(&h->lock);
	h->submitted += n;
	pthread_mutex_unlock(&h->lock);
	for (unsigned i = 0; i < n; i++)
		fl_store_io_complete(ios[i], held_do(h, ios[i]));
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&h->lock);
	while (!h->released &&
	       pthread_cond_timedwait(&h->cond, &h->lock, &until) == 0)
		;
	pthread_mutex_unlock(&h->lock);
	return (int)n;
}

static int held_submit(struct fl_store *s, struct fl_store_io *const *ios,
		       unsigned n)
{
	struct held_store *h = to_held(s);
	unsigned i;

	if (h->in_submit)
		return held_submit_inline(h, ios, n);
	pthread_mutex_lock(&h->lock);
	for (i = 0; i < n && h->nr_pending < 64; i++)
		h->pending[h->nr_pending++] = ios[i];
	h->submitted += i;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
	if (i == 0) {
		errno = EAGAIN;
		return -1;
	}
	return (int)i;
}

static void held_cancel(struct fl_store *s)
{
	struct held_store *h = to_held(s);

	pthread_mutex_lock(&h->lock);
	h->cancelled = 1;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

static void held_destroy(struct fl_store *s)
{
	struct held_store *h = to_held(s);

	pthread_mutex_lock(&h->lock);
	h->stop = 1;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->thread, NULL);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	free(h->data);
	free(h);
}

static const struct fl_store_ops held_ops = {
	.read = held_read,
	.size = held_size,
	.destroy = held_destroy,
	.cancel = held_cancel,
	.submit = held_submit,
};

static struct held_store *held_new(uint64_t size, uint32_t seed, unsigned batch)
{
	struct held_store *h = calloc(1, sizeof(*h));

	REQUIRE(h != NULL);
	h->base.ops = &held_ops;
	h->base.read_only = 1;
	h->size = size;
	h->batch = batch;
	h->data = malloc(size);
	REQUIRE(h->data != NULL);
	h_fill(h->data, size, seed, 0);
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	REQUIRE(pthread_create(&h->thread, NULL, held_main, h) == 0);
	return h;
}

static void held_release(struct held_store *h)
{
	pthread_mutex_lock(&h->lock);
	h->released = 1;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

static unsigned held_submitted(struct held_store *h)
{
	unsigned n;

	pthread_mutex_lock(&h->lock);
	n = h->submitted;
	pthread_mutex_unlock(&h->lock);
	return n;
}

struct page_reader {
	unsigned char *p;
	uint32_t seed;
	int signo[4];
	unsigned char val[4];
};

static void page_reader(int idx, void *arg)
{
	struct page_reader *pr = arg;
	uint64_t off = (uint64_t)idx * 8 * PG + 3;

	pr->signo[idx] = h_try_read(pr->p + off, &pr->val[idx], NULL);
}

/*
 * Four threads fault four pages of a store that completes nothing until it
 * has four requests: the four reads were in flight together (one handler
 * thread submitted them all), depth 1, 2, 3, 4 (mean 2.5), and each thread
 * gets its data.
 */
TEST(store_completes_from_its_thread_depth_four)
{
	fl_engine *e = h_engine_cfg(1, 1, 1);
	struct held_store *h = held_new(32 * PG, 74, 4);
	struct page_reader pr = {.seed = 74};
	struct fl_stats s;
	fl_object *o = fl_object_create(e, &h->base, O_RDONLY);

	REQUIRE(o != NULL);
	pr.p = h_map(e, 32 * PG, PROT_READ, MAP_SHARED, o, 0);
	h_run_threads(4, page_reader, &pr);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(pr.signo[i], 0);
		CHECK_EQ(pr.val[i], h_pattern(74, (uint64_t)i * 8 * PG + 3));
	}
	s = h_estats(e);
	CHECK_EQ(s.store_reads, 4);
	CHECK_EQ(s.store_read_depth, 1 + 2 + 3 + 4);
	CHECK_EQ(s.pages_read, 4);
	CHECK_EQ(held_submitted(h), 4);
	CHECK_EQ(fl_munmap(e, pr.p, 32 * PG), 0);
	fl_object_close(o);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/*
 * A store read is counted before its pages are: the store completes the
 * read inside submit and keeps the submitting handler thread there, while
 * the other handler thread runs the completion and the reader goes on
 * with its page.  Counted only once submit returned, the read was missing
 * from the stats the reader saw (many_threads_random_pages saw 4095 store
 * reads for 4096 pages once, under load).
 */
TEST(store_read_counted_before_its_completion)
{
	fl_engine *e = h_engine_cfg(2, 1, 1);
	struct held_store *h = held_new(32 * PG, 77, 1);
	struct fl_stats s;
	unsigned char v = 0;
	unsigned char *p;
	fl_object *o;

	h->in_submit = 1;
	o = fl_object_create(e, &h->base, O_RDONLY);
	REQUIRE(o != NULL);
	p = h_map(e, 32 * PG, PROT_READ, MAP_SHARED, o, 0);
	CHECK_EQ(fl_madvise(e, p, 32 * PG, MADV_RANDOM), 0);
	CHECK_EQ(h_try_read(p + 5 * PG + 3, &v, NULL), 0);
	CHECK_EQ(v, h_pattern(77, 5 * PG + 3));
	CHECK_EQ(held_submitted(h), 1); /* still inside submit */
	s = h_estats(e);
	CHECK_EQ(s.pages_read, 1);
	CHECK_EQ(s.store_reads, 1);
	CHECK_EQ(s.store_read_depth, 1);
	held_release(h);
	CHECK_EQ(fl_munmap(e, p, 32 * PG), 0);
	fl_object_close(o);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/*
 * An asynchronous read that fails: a batch touching a bad page is retried
 * for the faulting page alone (served); the bad page itself gets SIGBUS,
 * and a later fault there reads again (and fails again).
 */
TEST(async_read_error_sigbus)
{
	fl_engine *e = h_engine_cfg(1, 1, 8);
	struct held_store *h = held_new(32 * PG, 75, 1);
	struct h_sig sig;
	unsigned char v = 0;
	unsigned char *p;
	fl_object *o = fl_object_create(e, &h->base, O_RDONLY);

	REQUIRE(o != NULL);
	h->fail_off = 4 * PG;
	h->fail_len = PG;
	p = h_map(e, 32 * PG, PROT_READ, MAP_SHARED, o, 0);
	CHECK_EQ(h_try_read(p + 1, &v, &sig), 0); /* batch 0..7 fails */
	CHECK_EQ(v, h_pattern(75, 1));
	CHECK_EQ(h_try_read(p + 4 * PG, &v, &sig), SIGBUS);
	CHECK(sig.addr == p + 4 * PG);
	CHECK_EQ(h_try_read(p + 5 * PG + 9, &v, &sig), 0);
	CHECK_EQ(v, h_pattern(75, 5 * PG + 9));
	CHECK_EQ(h_estats(e).errors, 1);
	CHECK_EQ(fl_munmap(e, p, 32 * PG), 0);
	fl_object_close(o);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

struct destroy_probe {
	unsigned char *p;
	unsigned char val;
	int signo;
};

static void *destroy_probe_main(void *arg)
{
	struct destroy_probe *d = arg;

	d->signo = h_try_read(d->p, &d->val, NULL);
	return NULL;
}

static int one_submitted(void *arg)
{
	return held_submitted(arg) >= 1;
}

/*
 * The engine is destroyed while a read is in flight (the store holds it
 * until cancelled): destroy cancels the store, waits for the completion,
 * abandons nothing it should keep and leaks nothing (the suite checks
 * charges at destroy); the reader sees its data or, its mapping gone,
 * SIGSEGV.
 */
TEST(destroy_while_async_read_in_flight)
{
	fl_engine *e = h_engine_cfg(1, 1, 4);
	struct held_store *h = held_new(32 * PG, 76, 1000);
	struct destroy_probe d = {0};
	int fds = h_count_fds();
	pthread_t reader;
	fl_object *o = fl_object_create(e, &h->base, O_RDONLY);

	REQUIRE(o != NULL);
	d.p = h_map(e, 32 * PG, PROT_READ, MAP_SHARED, o, 0);
	d.p += 10 * PG + 5;
	REQUIRE(pthread_create(&reader, NULL, destroy_probe_main, &d) == 0);
	REQUIRE(h_wait_until(one_submitted, h));
	CHECK_EQ(fl_engine_destroy(e), 0); /* the object too, and h */
	pthread_join(reader, NULL);
	CHECK(d.signo == SIGSEGV ||
	      (d.signo == 0 && d.val == h_pattern(76, 10 * PG + 5)));
	CHECK_LE(h_count_fds(), fds);
}

struct racing_reader {
	unsigned char *p;
	uint64_t pages;
	_Atomic int signalled;
};

/* Read random pages until the mapping goes (SIGSEGV), or 100000 reads. */
static void racing_read(int idx, void *arg)
{
	struct racing_reader *rr = arg;
	uint64_t x = (uint64_t)idx * 0x9E3779B97F4A7C15ull + 7;
	unsigned char v;

	for (int i = 0; i < 100000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		if (h_try_read(rr->p + x % rr->pages * PG, &v, NULL)) {
			atomic_fetch_add(&rr->signalled, 1);
			return;
		}
	}
}

struct racing_destroy {
	fl_engine *e;
	struct racing_reader *rr;
};

static int enough_reads(void *arg)
{
	return h_estats(arg).store_reads >= 64;
}

static void *racing_destroyer(void *arg)
{
	struct racing_destroy *d = arg;

	if (!h_wait_until(enough_reads, d->e))
		h_fail(__FILE__, __LINE__, "no store reads");
	CHECK_EQ(fl_engine_destroy(d->e), 0);
	return NULL;
}

/*
 * The file store's reads in flight (through the ring, where there is one)
 * when the engine is destroyed under four random readers: destroy waits
 * for them, every reader ends (its mapping gone: SIGSEGV), and nothing is
 * left charged (checked at destroy) or open.
 */
TEST(destroy_under_random_readers)
{
	struct h_file f;
	fl_engine *e = h_engine_cfg(2, 1, 1);
	struct racing_reader rr = {.pages = 4096};
	struct racing_destroy d = {.e = e, .rr = &rr};
	int fds;
	pthread_t t;
	fl_object *o;

	check_ring(e);
	h_file_create(&f, rr.pages * PG, 77);
	fds = h_count_fds();
	o = h_open(e, &f, O_RDONLY);
	rr.p = h_map(e, rr.pages * PG, PROT_READ, MAP_SHARED, o, 0);
	CHECK_EQ(fl_madvise(e, rr.p, rr.pages * PG, MADV_RANDOM), 0);
	REQUIRE(pthread_create(&t, NULL, racing_destroyer, &d) == 0);
	h_run_threads(4, racing_read, &rr);
	pthread_join(t, NULL);
	h_note("%d of 4 readers ended by the unmap",
	       atomic_load(&rr.signalled));
	CHECK_LE(h_count_fds(), fds);
	h_file_remove(&f);
}

struct ring_probe {
	unsigned char *p;
	unsigned char val;
	int signo;
	atomic_int done;
};

static void *ring_probe_main(void *arg)
{
	struct ring_probe *d = arg;

	d->signo = h_try_read(d->p, &d->val, NULL);
	atomic_store(&d->done, 1);
	return NULL;
}

static int ring_probe_done(void *arg)
{
	return atomic_load(&((struct ring_probe *)arg)->done);
}

/*
 * The ring's submit fails (the kernel takes nothing: no memory) for a
 * fault's read while nothing else is in flight.  The read must not stay
 * queued in the ring for a later submit that may never come (the handler
 * threads asleep, nobody waiting with a timeout): it is served another
 * way, and the faulting thread gets its data.
 */
TEST(read_whose_ring_submit_fails_is_served)
{
	fl_engine *e = h_engine_cfg(1, 1, 1);
	struct ring_probe d = {.signo = -1};
	struct h_file f;
	unsigned char *p;
	fl_object *o;
	pthread_t t;
	int served;

	if (!aio_has_ring(e)) {
		h_note("no io_uring here: no ring submit to fail");
		CHECK_EQ(fl_engine_destroy(e), 0);
		return;
	}
	h_file_create(&f, 4 * PG, 61);
	o = h_open(e, &f, O_RDONLY);
	p = h_map(e, 4 * PG, PROT_READ, MAP_SHARED, o, 0);
	inject_set(INJ_IO_URING_SUBMIT, 1, ENOMEM);
	d.p = p + PG + 7;
	REQUIRE(pthread_create(&t, NULL, ring_probe_main, &d) == 0);
	served = h_wait_until(ring_probe_done, &d);
	CHECK(served);
	if (!served) { /* another read's submit takes the stranded one too */
		unsigned char v;

		h_try_read(p + 3 * PG, &v, NULL);
	}
	pthread_join(t, NULL);
	CHECK_EQ(inject_fired(INJ_IO_URING_SUBMIT), 1);
	inject_clear();
	CHECK_EQ(d.signo, 0);
	CHECK_EQ(d.val, h_pattern(61, PG + 7));
	CHECK_EQ(fl_munmap(e, p, 4 * PG), 0);
	fl_object_close(o);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* 1 if this engine's file reads go through the ring (else a note). */
static int ring_in_use(fl_engine *e)
{
	check_ring(e);
	if (aio_has_ring(e))
		return 1;
	h_note("no ring: the bounce buffers are not used");
	return 0;
}

/*
 * Small ring reads land in bounce buffers and are written into the cache
 * with pwrite, never through the engine's view: 600 random pages (more
 * than twice the 256 small reads after which a view would be emptied)
 * make no madvise at all, one pwrite per page read, and read right.
 */
TEST(small_ring_reads_bypass_the_engines_view)
{
	struct h_file f;
	fl_engine *e = h_engine_cfg(2, 1, 1);
	struct random_read rr = {.pages = 2048, .per_thread = 600, .seed = 77};
	unsigned long madvises, pwrites;
	struct fl_stats s;
	fl_object *o;

	h_file_create(&f, rr.pages * PG, rr.seed);
	o = h_open(e, &f, O_RDONLY);
	rr.p = h_map(e, rr.pages * PG, PROT_READ, MAP_SHARED, o, 0);
	CHECK_EQ(fl_madvise(e, rr.p, rr.pages * PG, MADV_RANDOM), 0);
	madvises = inject_calls(INJ_MADVISE);
	pwrites = inject_calls(INJ_PWRITE);
	random_reader(0, &rr);
	s = h_estats(e);
	CHECK_GE(s.pages_read, 500);
	if (ring_in_use(e)) {
		CHECK_EQ(inject_calls(INJ_MADVISE) - madvises, 0);
		CHECK_EQ(inject_calls(INJ_PWRITE) - pwrites, s.pages_read);
	}
	CHECK_EQ(h_mismatch(rr.p, rr.pages * PG, rr.seed, 0), -1);
	CHECK_EQ(fl_munmap(e, rr.p, rr.pages * PG), 0);
	fl_object_close(o);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/*
 * A bounced read whose bytes cannot be written into the cache (pwrite
 * fails: the memfd is out of space, say) fails like a failed store read:
 * the faulting thread gets SIGBUS, counted; once the page is dropped from
 * the mapping (the SIGBUS stays until then, as with mmap), a fault reads
 * it again and gets the data.
 */
TEST(bounced_read_whose_copy_fails_raises_sigbus)
{
	struct h_file f;
	fl_engine *e = h_engine_cfg(1, 1, 1);
	unsigned char *p, v = 0;
	struct h_sig sig;
	fl_object *o;

	h_file_create(&f, 64 * PG, 78);
	o = h_open(e, &f, O_RDONLY);
	p = h_map(e, 64 * PG, PROT_READ, MAP_SHARED, o, 0);
	CHECK_EQ(fl_madvise(e, p, 64 * PG, MADV_RANDOM), 0);
	if (ring_in_use(e)) {
		inject_set(INJ_PWRITE, 1, ENOSPC);
		CHECK_EQ(h_try_read(p + 9 * PG + 5, &v, &sig), SIGBUS);
		CHECK(sig.addr == p + 9 * PG + 5 || sig.addr == p + 9 * PG);
		CHECK_EQ(inject_fired(INJ_PWRITE), 1);
		inject_clear();
		CHECK_EQ(h_estats(e).errors, 1);
		CHECK_EQ(fl_madvise(e, p + 9 * PG, PG, MADV_DONTNEED), 0);
	}
	CHECK_EQ(h_try_read(p + 9 * PG + 5, &v, &sig), 0);
	CHECK_EQ(v, h_pattern(78, 9 * PG + 5));
	CHECK_EQ(fl_munmap(e, p, 64 * PG), 0);
	fl_object_close(o);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}
