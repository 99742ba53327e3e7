// SPDX-License-Identifier: MIT
/* Objects over a store built here: the store contract, I/O errors as
 * SIGBUS and EIO, and a store read that blocks without blocking the
 * engine's map lock. */
#include "harness.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct mem_store {
	struct fl_store base;
	unsigned char *data;
	size_t size;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	long fail_read_page; /* a read covering this page fails; -1: none */
	int fail_writes;     /* every write fails with EIO */
	int block_writes;    /* a write waits until released */
	int write_blocked;   /* a write is waiting */
	long block_page;     /* a read covering this page waits; -1: none */
	int blocked;	     /* a read is waiting on block_page */
	int released;
	unsigned long reads, writes, bad_args;
	int *destroyed;
};

static int in_range(long page, uint64_t off, size_t len)
{
	return page >= 0 && (uint64_t)page * PG >= off &&
	       (uint64_t)page * PG < off + len;
}

static ssize_t mem_read(struct fl_store *st, void *buf, size_t len,
			uint64_t off)
{
	struct mem_store *m = (struct mem_store *)st;
	size_t n;

	pthread_mutex_lock(&m->lock);
	m->reads++;
	if (off % PG || len % PG || len == 0)
		m->bad_args++;
	if (in_range(m->block_page, off, len)) {
		m->blocked = 1;
		pthread_cond_broadcast(&m->cond);
		while (!m->released)
			pthread_cond_wait(&m->cond, &m->lock);
	}
	if (in_range(m->fail_read_page, off, len)) {
		pthread_mutex_unlock(&m->lock);
		errno = EIO;
		return -1;
	}
	n = off >= m->size ? 0 : m->size - off < len ? m->size - off : len;
	memcpy(buf, m->data + off, n);
	pthread_mutex_unlock(&m->lock);
	return (ssize_t)n;
}

static ssize_t mem_write(struct fl_store *st, const void *buf, size_t len,
			 uint64_t off)
{
	struct mem_store *m = (struct mem_store *)st;

	pthread_mutex_lock(&m->lock);
	m->writes++;
	if (m->block_writes) {
		m->write_blocked = 1;
		pthread_cond_broadcast(&m->cond);
		while (!m->released)
			pthread_cond_wait(&m->cond, &m->lock);
	}
	/* whole pages, but the store's last page cut to its size */
	if (off % PG || len == 0 || off + len > m->size ||
	    (len % PG && off + len != m->size))
		m->bad_args++;
	if (m->fail_writes || off + len > m->size) {
		pthread_mutex_unlock(&m->lock);
		errno = EIO;
		return -1;
	}
	memcpy(m->data + off, buf, len);
	pthread_mutex_unlock(&m->lock);
	return (ssize_t)len;
}

static int64_t mem_size(struct fl_store *st)
{
	return (int64_t)((struct mem_store *)st)->size;
}

static int mem_flush(struct fl_store *st)
{
	return 0;
}

static void mem_destroy(struct fl_store *st)
{
	struct mem_store *m = (struct mem_store *)st;

	if (m->destroyed)
		(*m->destroyed)++;
	pthread_mutex_destroy(&m->lock);
	pthread_cond_destroy(&m->cond);
	free(m->data);
	free(m);
}

static const struct fl_store_ops mem_ops = {
	.read = mem_read,
	.write = mem_write,
	.size = mem_size,
	.flush = mem_flush,
	.destroy = mem_destroy,
};

static struct mem_store *mem_new(size_t size, uint32_t seed, int *destroyed)
{
	struct mem_store *m = calloc(1, sizeof(*m));

	REQUIRE(m != NULL);
	m->data = malloc(size);
	REQUIRE(m->data != NULL);
	h_fill(m->data, size, seed, 0);
	m->base.ops = &mem_ops;
	m->size = size;
	m->fail_read_page = -1;
	m->block_page = -1;
	m->destroyed = destroyed;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	return m;
}

static void set_int(struct mem_store *m, int *field, int v)
{
	pthread_mutex_lock(&m->lock);
	*field = v;
	pthread_mutex_unlock(&m->lock);
}

static unsigned long get_bad_args(struct mem_store *m)
{
	unsigned long n;

	pthread_mutex_lock(&m->lock);
	n = m->bad_args;
	pthread_mutex_unlock(&m->lock);
	return n;
}

#define SIZE (40 * PG + 100)

TEST(custom_store_roundtrip)
{
	int destroyed = 0;
	struct mem_store *m = mem_new(SIZE, 111, &destroyed);
	fl_engine *e = h_engine(2);
	fl_object *o = fl_object_create(e, &m->base, O_RDWR);
	unsigned char *p, *q;

	REQUIRE(o != NULL);
	CHECK_EQ(fl_object_size(o), SIZE);
	p = h_map(e, 41 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	q = h_map(e, 41 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, o, 0);
	CHECK_EQ(h_mismatch(p, SIZE, 111, 0), -1);
	CHECK_EQ(h_nonzero(p + SIZE, 41 * PG - SIZE), -1);
	CHECK_EQ(h_mismatch(q, SIZE, 111, 0), -1);
	memset(p + 3 * PG, 0x31, PG);
	memset(p + 40 * PG, 0x32, PG); /* the last, partial page */
	memset(q + 7 * PG, 0x33, PG);  /* private: never reaches the store */
	CHECK_EQ(fl_msync(e, p, 41 * PG, MS_SYNC), 0);
	for (size_t i = 0; i < PG; i++)
		if (m->data[3 * PG + i] != 0x31) {
			h_fail(__FILE__, __LINE__, "store byte %zu", i);
			break;
		}
	for (size_t i = 40 * PG; i < SIZE; i++)
		if (m->data[i] != 0x32) {
			h_fail(__FILE__, __LINE__, "store byte %zu", i);
			break;
		}
	CHECK_EQ(h_mismatch(m->data + 4 * PG, 36 * PG, 111, 4 * PG), -1);
	CHECK_EQ(get_bad_args(m), 0);
	CHECK_EQ(fl_munmap(e, q, 41 * PG), 0);
	CHECK_EQ(fl_munmap(e, p, 41 * PG), 0);
	CHECK_EQ(destroyed, 0); /* the caller's reference holds it */
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(destroyed, 1);
	CHECK_EQ(fl_engine_destroy(e), 0);
	CHECK_EQ(destroyed, 1);
}

/* A store read error is a SIGBUS for the faulting thread, counted; the
 * pages around it are served. */
TEST(read_error_sigbus)
{
	int destroyed = 0;
	struct mem_store *m = mem_new(16 * PG, 112, &destroyed);
	fl_engine *e = h_engine_cfg(2, 1, 1);
	fl_object *o = fl_object_create(e, &m->base, O_RDONLY);
	unsigned char *p;
	struct h_sig sig;
	int r;

	REQUIRE(o != NULL);
	m->fail_read_page = 5;
	p = h_map(e, 16 * PG, PROT_READ, MAP_SHARED, o, 0);
	r = h_try_read(p + 5 * PG + 10, NULL, &sig);
	CHECK_EQ(r, SIGBUS);
	CHECK((unsigned char *)sig.addr >= p + 5 * PG &&
	      (unsigned char *)sig.addr < p + 6 * PG);
	CHECK_GE(h_estats(e).errors, 1);
	CHECK_GE(h_mstats(e, p).errors, 1);
	CHECK_EQ(h_mismatch(p + 4 * PG, PG, 112, 4 * PG), -1);
	CHECK_EQ(h_mismatch(p + 6 * PG, PG, 112, 6 * PG), -1);
	CHECK_EQ(h_mismatch(p, 5 * PG, 112, 0), -1);
	CHECK_EQ(h_mismatch(p + 6 * PG, 10 * PG, 112, 6 * PG), -1);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	CHECK_EQ(destroyed, 1);
}

/* With the default readahead, a bad page inside the batch must not fail
 * the fault on a good page (the kernel falls back to reading the page
 * alone). */
TEST(read_error_in_readahead_batch)
{
	int destroyed = 0;
	struct mem_store *m = mem_new(64 * PG, 113, &destroyed);
	fl_engine *e = h_engine(2);
	fl_object *o = fl_object_create(e, &m->base, O_RDONLY);
	unsigned char *p;
	struct h_sig sig;

	REQUIRE(o != NULL);
	m->fail_read_page = 9;
	p = h_map(e, 64 * PG, PROT_READ, MAP_SHARED, o, 0);
	CHECK_EQ(h_try_read(p + 8 * PG, NULL, &sig), 0);
	CHECK_EQ(h_try_read(p + 10 * PG, NULL, &sig), 0);
	CHECK_EQ(h_try_read(p + 9 * PG, NULL, &sig), SIGBUS);
	CHECK_EQ(h_try_read(p, NULL, &sig), 0);
	CHECK_EQ(h_try_read(p + 63 * PG, NULL, &sig), 0);
	if (h_failures() == 0) {
		CHECK_EQ(h_mismatch(p, 9 * PG, 113, 0), -1);
		CHECK_EQ(h_mismatch(p + 10 * PG, 54 * PG, 113, 10 * PG), -1);
	}
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	CHECK_EQ(destroyed, 1);
}

/* A failed store write: msync says EIO, the pages stay dirty, a later
 * msync writes them. */
TEST(write_error_eio_then_retry)
{
	int destroyed = 0;
	struct mem_store *m = mem_new(16 * PG, 114, &destroyed);
	fl_engine *e = h_engine(2);
	fl_object *o = fl_object_create(e, &m->base, O_RDWR);
	unsigned char *p;
	struct fl_stats s;

	REQUIRE(o != NULL);
	p = h_map(e, 16 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	memset(p + 2 * PG, 0x44, 3 * PG);
	set_int(m, &m->fail_writes, 1);
	CHECK_ERR(fl_msync(e, p, 16 * PG, MS_SYNC) == -1, EIO);
	s = h_estats(e);
	CHECK_GE(s.writeback_errors, 1);
	CHECK_EQ(s.dirty_pages, 3);
	CHECK_EQ(h_mstats(e, p).dirty_pages, 3);
	CHECK_EQ(p[3 * PG], 0x44);
	CHECK_ERR(fl_msync(e, p, 16 * PG, MS_SYNC) == -1, EIO);
	set_int(m, &m->fail_writes, 0);
	CHECK_EQ(fl_msync(e, p, 16 * PG, MS_SYNC), 0);
	CHECK_EQ(h_estats(e).dirty_pages, 0);
	for (size_t i = 2 * PG; i < 5 * PG; i++)
		if (m->data[i] != 0x44) {
			h_fail(__FILE__, __LINE__, "store byte %zu", i);
			break;
		}
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/* munmap of the last mapping cannot write back: EIO, unmapped anyway; the
 * data is not dropped, fl_object_close writes it once the store works. */
TEST(write_error_at_munmap_not_dropped)
{
	int destroyed = 0;
	struct mem_store *m = mem_new(8 * PG, 115, &destroyed);
	fl_engine *e = h_engine(2);
	fl_object *o = fl_object_create(e, &m->base, O_RDWR);
	unsigned char *p;

	REQUIRE(o != NULL);
	p = h_map(e, 8 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	p[PG] = 0x55;
	CHECK(h_maps_name_at(p + PG, "faultline-cache"));
	set_int(m, &m->fail_writes, 1);
	CHECK_ERR(fl_munmap(e, p, 8 * PG) == -1, EIO);
	/* Unmapped: the range no longer maps the object's memfd (whatever
	 * else the process has mapped there since). */
	CHECK(!h_maps_name_at(p + PG, "faultline-cache"));
	CHECK_EQ(fl_mapping_stats(e, p, &(struct fl_stats){0}), -1);
	set_int(m, &m->fail_writes, 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(destroyed, 1);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/* Final writeback failing: fl_object_close and fl_engine_destroy say EIO
 * and free everything anyway. */
TEST(write_error_at_close_and_destroy)
{
	int destroyed = 0;
	struct mem_store *m1 = mem_new(8 * PG, 116, &destroyed);
	struct mem_store *m2 = mem_new(8 * PG, 117, &destroyed);
	fl_engine *e = h_engine(2);
	fl_object *o1 = fl_object_create(e, &m1->base, O_RDWR);
	fl_object *o2 = fl_object_create(e, &m2->base, O_RDWR);
	unsigned char *p1, *p2;

	REQUIRE(o1 && o2);
	p1 = h_map(e, 8 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o1, 0);
	p2 = h_map(e, 8 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o2, 0);
	p1[0] = 1;
	p2[0] = 2;
	set_int(m1, &m1->fail_writes, 1);
	set_int(m2, &m2->fail_writes, 1);
	CHECK_ERR(fl_munmap(e, p1, 8 * PG) == -1, EIO);
	CHECK_ERR(fl_object_close(o1) == -1, EIO);
	CHECK_EQ(destroyed, 1);
	CHECK_ERR(fl_engine_destroy(e) == -1, EIO);
	CHECK_EQ(destroyed, 2);
}

/*
 * A store read that blocks must not hold the map lock: while a fault waits
 * on it, another thread maps, faults, protects and unmaps.  A deadlock
 * shows as the helper not finishing within 10 s (then the store is
 * released so the case can end).
 */
struct block_ctx {
	fl_engine *e;
	fl_object *o;
	struct mem_store *m;
	unsigned char *p;
	int done;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void *blocked_reader(void *arg)
{
	struct block_ctx *c = arg;

	if (c->p[10 * PG] != h_pattern(118, 10 * PG))
		h_fail(__FILE__, __LINE__, "blocked page read wrong");
	return NULL;
}

static void *map_worker(void *arg)
{
	struct block_ctx *c = arg;
	unsigned char *a, *q;

	a = fl_mmap(c->e, NULL, 8 * PG, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	if (a == MAP_FAILED) {
		h_fail(__FILE__, __LINE__, "fl_mmap failed");
	} else {
		a[PG] = 1;
		if (fl_mprotect(c->e, a, PG, PROT_READ) != 0)
			h_fail(__FILE__, __LINE__, "fl_mprotect failed");
		if (fl_munmap(c->e, a, 8 * PG) != 0)
			h_fail(__FILE__, __LINE__, "fl_munmap failed");
	}
	/* another page of the same object, and a new mapping of it */
	if (c->p[20 * PG] != h_pattern(118, 20 * PG))
		h_fail(__FILE__, __LINE__, "page 20 wrong");
	q = fl_mmap(c->e, NULL, 4 * PG, PROT_READ, MAP_SHARED, c->o, 24 * PG);
	if (q == MAP_FAILED) {
		h_fail(__FILE__, __LINE__, "second fl_mmap failed");
	} else {
		if (q[5] != h_pattern(118, 24 * PG + 5))
			h_fail(__FILE__, __LINE__, "page 24 wrong");
		fl_munmap(c->e, q, 4 * PG);
	}
	pthread_mutex_lock(&c->lock);
	c->done = 1;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

static int wait_flag(pthread_mutex_t *lock, pthread_cond_t *cond, int *flag,
		     int seconds)
{
	struct timespec ts;
	int ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += seconds;
	pthread_mutex_lock(lock);
	while (!*flag)
		if (pthread_cond_timedwait(cond, lock, &ts) != 0)
			break;
	ok = *flag;
	pthread_mutex_unlock(lock);
	return ok;
}

TEST(blocked_store_read_does_not_block_map_lock)
{
	int destroyed = 0;
	struct block_ctx c = {0};
	pthread_t reader, worker;

	c.m = mem_new(32 * PG, 118, &destroyed);
	c.e = h_engine_cfg(3, 1, 1);
	c.o = fl_object_create(c.e, &c.m->base, O_RDONLY);
	REQUIRE(c.o != NULL);
	pthread_mutex_init(&c.lock, NULL);
	pthread_cond_init(&c.cond, NULL);
	c.p = h_map(c.e, 32 * PG, PROT_READ, MAP_SHARED, c.o, 0);
	/* Under the store's lock, as mem_read reads it: the reader's fault
	 * reaches the I/O thread through the kernel, which ThreadSanitizer
	 * cannot see order anything. */
	pthread_mutex_lock(&c.m->lock);
	c.m->block_page = 10;
	pthread_mutex_unlock(&c.m->lock);
	REQUIRE(pthread_create(&reader, NULL, blocked_reader, &c) == 0);
	if (!wait_flag(&c.m->lock, &c.m->cond, &c.m->blocked, H_WAIT_SECONDS))
		h_fail(__FILE__, __LINE__, "the store read never started");
	REQUIRE(pthread_create(&worker, NULL, map_worker, &c) == 0);
	if (!wait_flag(&c.lock, &c.cond, &c.done, H_WAIT_SECONDS))
		h_fail(__FILE__, __LINE__,
		       "map/fault/unmap stuck behind a blocked store read");
	pthread_mutex_lock(&c.m->lock);
	c.m->released = 1;
	pthread_cond_broadcast(&c.m->cond);
	pthread_mutex_unlock(&c.m->lock);
	pthread_join(reader, NULL);
	pthread_join(worker, NULL);
	CHECK_EQ(h_estats(c.e).errors, 0);
	CHECK_EQ(fl_object_close(c.o), 0);
	CHECK_EQ(fl_engine_destroy(c.e), 0);
	CHECK_EQ(destroyed, 1);
	pthread_mutex_destroy(&c.lock);
	pthread_cond_destroy(&c.cond);
}

/* The file store: O_DIRECT on a real disk, and an object made from it. */
TEST(file_store)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	struct fl_store *st;
	fl_object *o;
	unsigned char *p;

	h_file_create(&f, 8 * PG, 119);
	st = fl_store_file_open(f.path, O_RDWR);
	REQUIRE(st != NULL);
	CHECK_EQ(fl_store_file_is_direct(st), 1);
	CHECK_EQ(st->read_only, 0);
	CHECK_EQ(st->ops->size(st), 8 * PG);
	o = fl_object_create(e, st, O_RDWR);
	REQUIRE(o != NULL);
	p = h_map(e, 8 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	CHECK_EQ(h_mismatch(p, 8 * PG, 119, 0), -1);
	p[0] = (unsigned char)~p[0];
	CHECK_EQ(fl_munmap(e, p, 8 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	{
		unsigned char b;

		CHECK_EQ(h_pread(f.path, &b, 1, 0), 1);
		CHECK_EQ(b, (unsigned char)~h_pattern(119, 0));
	}
	h_file_remove(&f);
}

struct wb_ctx {
	fl_engine *e;
	unsigned char *p;
	int rc, err;
};

static void *msync_thread(void *arg)
{
	struct wb_ctx *c = arg;

	c->rc = fl_msync(c->e, c->p, 4 * PG, MS_SYNC);
	c->err = errno;
	return NULL;
}

/*
 * A second msync that finds the page already cleaned by a first one, whose
 * store write is still in flight, must wait for that write and report its
 * failure: it must not return 0 before the data is in the store.
 */
TEST(msync_waits_for_writeback_in_flight)
{
	struct wb_ctx a, b;
	struct mem_store *m = mem_new(4 * PG, 120, NULL);
	fl_engine *e = h_engine_cfg(2, 1, 1);
	fl_object *o = fl_object_create(e, &m->base, O_RDWR);
	pthread_t ta, tb;
	unsigned char *p;

	REQUIRE(o != NULL);
	p = h_map(e, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	p[0] = 'B';
	set_int(m, &m->block_writes, 1);
	a = b = (struct wb_ctx){e, p, 0, 0};
	REQUIRE(pthread_create(&ta, NULL, msync_thread, &a) == 0);
	REQUIRE(wait_flag(&m->lock, &m->cond, &m->write_blocked,
			  H_WAIT_SECONDS));
	REQUIRE(pthread_create(&tb, NULL, msync_thread, &b) == 0);
	usleep(50000); /* let b find the page clean, under writeback */
	pthread_mutex_lock(&m->lock);
	m->fail_writes = 1;
	m->released = 1;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CHECK_EQ(a.rc, -1);
	CHECK_EQ(a.err, EIO);
	CHECK_EQ(b.rc, -1); /* the write it relied on failed */
	CHECK_EQ(b.err, EIO);
	CHECK_EQ(h_estats(e).dirty_pages, 1); /* kept, not dropped */
	set_int(m, &m->fail_writes, 0);
	CHECK_EQ(fl_msync(e, p, 4 * PG, MS_SYNC), 0);
	CHECK_EQ(m->data[0], 'B');
	CHECK_EQ(fl_munmap(e, p, 4 * PG), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
}

/* In a child, so that a hang is a bounded failure: what opening path as
 * a store and as an object gave, as exit bits (0: both EINVAL). */
static int open_refused_in_child(const char *path, int flags)
{
	int status = -1;
	pid_t pid = fork();

	REQUIRE(pid >= 0);
	if (pid == 0) {
		fl_engine *e;
		int bad = 0;

		alarm(H_WAIT_SECONDS); /* a blocked open(2) ends here: fails */
		errno = 0;
		bad |= fl_store_file_open(path, flags) != NULL ||
		       errno != EINVAL;
		e = fl_engine_create(NULL);
		if (!e)
			_exit(4);
		errno = 0;
		bad |= (fl_object_open(e, path, flags) != NULL ||
			errno != EINVAL)
		       << 1;
		fl_engine_destroy(e);
		_exit(bad);
	}
	REQUIRE(waitpid(pid, &status, 0) == pid);
	if (WIFSIGNALED(status))
		h_note("%s: child killed by signal %d (open blocked?)", path,
		       WTERMSIG(status));
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/*
 * A FIFO, or a character device, is not a file faultline can map: it is
 * refused with EINVAL, and at once (open(2) of a FIFO for reading waits
 * for a writer; nothing here may wait).
 */
TEST(file_store_refuses_fifo_and_devices)
{
	char fifo[300];

	snprintf(fifo, sizeof(fifo), "%s/fifo", h_tmpdir());
	REQUIRE(mkfifo(fifo, 0600) == 0);
	CHECK_EQ(open_refused_in_child(fifo, O_RDONLY), 0);
	CHECK_EQ(open_refused_in_child(fifo, O_RDWR), 0);
	CHECK_EQ(open_refused_in_child("/dev/null", O_RDONLY), 0);
	CHECK_EQ(open_refused_in_child("/dev/zero", O_RDWR), 0);
	CHECK_EQ(unlink(fifo), 0);
}
