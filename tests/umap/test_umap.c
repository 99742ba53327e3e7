// SPDX-License-Identifier: MIT
/*
 * A program written against LLNL UMap's documented C API (umap, uunmap,
 * umap_flush, umap_prefetch, umapcfg_*, the UMAP_* environment), built
 * against <umap/umap.h> and linked with libfaultline-umap only.  Output
 * follows the suite's protocol (PASS/FAIL/SKIP/SUMMARY lines, exit 77 to
 * skip), so tests/run.sh runs it with the others.
 *
 * The buffer is set small (UMAP_BUFSIZE) and the files made larger than
 * it, so that pages are evicted, dirty ones written back, while the
 * program reads and writes.
 */
#include <umap/umap.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME	   "test_umap"
#define UPAGE	   16384 /* UMAP_PAGESIZE */
#define BUF_PAGES  64	 /* UMAP_BUFSIZE: a 1 MiB buffer */
#define FILE_BYTES ((size_t)4 << 20)
#define WORDS(n)   ((n) / sizeof(uint64_t))

static int passed, failed, case_failed;
static char dir[] = "/var/tmp/test_umap.XXXXXX";

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond)) {                                                 \
			printf("  %s: %s:%d: CHECK(%s) errno=%d\n", NAME,      \
			       __FILE__, __LINE__, #cond, errno);              \
			case_failed = 1;                                       \
		}                                                              \
	} while (0)

static void run(const char *name, void (*fn)(void))
{
	case_failed = 0;
	fn();
	if (case_failed) {
		printf("FAIL %s.%s\n", NAME, name);
		failed++;
	} else {
		printf("PASS %s.%s\n", NAME, name);
		passed++;
	}
	fflush(stdout);
}

static uint64_t pattern(uint64_t i, uint64_t seed)
{
	return (i + 1) * 0x9e3779b97f4a7c15ULL ^ seed;
}

/* A new file of bytes bytes holding pattern(seed), open O_RDWR. */
static int make_file(const char *name, size_t bytes, uint64_t seed)
{
	char path[256];
	uint64_t *buf = malloc(bytes);
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || !buf) {
		perror(path);
		exit(1);
	}
	for (size_t i = 0; i < WORDS(bytes); i++)
		buf[i] = pattern(i, seed);
	if (pwrite(fd, buf, bytes, 0) != (ssize_t)bytes) {
		perror("pwrite");
		exit(1);
	}
	free(buf);
	return fd;
}

/* 1 if the file holds pattern(seed) in [0, bytes). */
static int file_matches(int fd, size_t bytes, uint64_t seed)
{
	uint64_t *buf = malloc(bytes);
	int ok = buf && pread(fd, buf, bytes, 0) == (ssize_t)bytes;

	for (size_t i = 0; ok && i < WORDS(bytes); i++)
		ok = buf[i] == pattern(i, seed);
	free(buf);
	return ok;
}

static void test_config_from_environment(void)
{
	CHECK(umapcfg_get_system_page_size() == sysconf(_SC_PAGESIZE));
	CHECK(umapcfg_get_umap_page_size() == UPAGE);
	CHECK(umapcfg_get_max_pages_in_buffer() == BUF_PAGES);
	CHECK(umapcfg_get_num_fillers() == 3);
	CHECK(umapcfg_get_num_evictors() == 2);
	CHECK(umapcfg_get_read_ahead() == 1);
	CHECK(umapcfg_get_evict_high_water_threshold() == 80);
	CHECK(umapcfg_get_evict_low_water_threshold() == 60);
	CHECK(umap_has_write_support() == 1);
}

/* Shared memory this process has mapped now, in bytes (the pages of the
 * buffer are shared memory: faultline keeps its page cache in memfds). */
static size_t rss_shmem(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	unsigned long kib = 0;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "RssShmem: %lu kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib * 1024;
}

static void test_read_larger_than_buffer(void)
{
	int fd = make_file("read", FILE_BYTES, 1);
	uint64_t *p = umap(NULL, FILE_BYTES, PROT_READ | PROT_WRITE,
			   UMAP_PRIVATE, fd, 0);
	size_t bad = 0, peak = 0, base = rss_shmem();

	CHECK(p != UMAP_FAILED);
	if (p == UMAP_FAILED)
		return;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < WORDS(FILE_BYTES); i++) {
			bad += p[i] != pattern(i, 1);
			if (i % WORDS(UPAGE) == 0 && rss_shmem() > peak)
				peak = rss_shmem();
		}
	CHECK(bad == 0);
	printf("  %s: shared memory %zu KiB before, peak %zu KiB, buffer "
	       "%d KiB\n",
	       NAME, base / 1024, peak / 1024, BUF_PAGES * UPAGE / 1024);
	/* The buffer's pages may be mapped twice (the region, and the
	 * engine's own view while it reads them in). */
	CHECK(peak <= base + 2 * (size_t)BUF_PAGES * UPAGE);
	CHECK(uunmap(p, FILE_BYTES) == 0);
	close(fd);
}

/* Stores through a region reach the file: evicted pages on the way, the
 * rest at umap_flush. */
static void test_write_and_flush(void)
{
	int fd = make_file("write", FILE_BYTES, 2);
	uint64_t *p = umap(NULL, FILE_BYTES, PROT_READ | PROT_WRITE,
			   UMAP_PRIVATE, fd, 0);

	CHECK(p != UMAP_FAILED);
	if (p == UMAP_FAILED)
		return;
	for (size_t i = 0; i < WORDS(FILE_BYTES); i++)
		p[i] = pattern(i, 3);
	CHECK(umap_flush() == 0);
	CHECK(file_matches(fd, FILE_BYTES, 3));
	/* And uunmap writes back what was stored since. */
	for (size_t i = 0; i < WORDS(FILE_BYTES); i++)
		p[i] = pattern(i, 4);
	CHECK(uunmap(p, FILE_BYTES) == 0);
	CHECK(file_matches(fd, FILE_BYTES, 4));
	close(fd);
}

/* Two regions of one file see each other's stores at once (MAP_SHARED,
 * which UMap itself refuses). */
static void test_two_regions_share(void)
{
	int fd = make_file("share", FILE_BYTES / 4, 5);
	char *a = umap(NULL, FILE_BYTES / 4, PROT_READ | PROT_WRITE, MAP_SHARED,
		       fd, 0);
	char *b = umap(NULL, FILE_BYTES / 4, PROT_READ | PROT_WRITE,
		       UMAP_PRIVATE, fd, 0);

	CHECK(a != UMAP_FAILED && b != UMAP_FAILED && a != b);
	if (a == UMAP_FAILED || b == UMAP_FAILED)
		return;
	for (size_t off = 0; off < FILE_BYTES / 4; off += 4096)
		a[off] = 'x';
	for (size_t off = 0; off < FILE_BYTES / 4; off += 4096)
		CHECK(b[off] == 'x');
	/* UMAP_FIXED over a region: refused (uunmap it first). */
	CHECK(umap(a, 4096, PROT_READ, UMAP_PRIVATE | UMAP_FIXED, fd, 0) ==
		      UMAP_FAILED &&
	      errno == EINVAL);
	CHECK(a[0] == 'x');
	/* The file grown: a region reaching past the old end reads it. */
	CHECK(ftruncate(fd, FILE_BYTES / 2) == 0);
	char *c = umap(NULL, FILE_BYTES / 2, PROT_READ, UMAP_PRIVATE, fd, 0);
	CHECK(c != UMAP_FAILED);
	if (c != UMAP_FAILED) {
		CHECK(c[FILE_BYTES / 2 - 1] == 0);
		CHECK(uunmap(c, 0) == 0);
	}
	CHECK(uunmap(a, 0) == 0);
	CHECK(b[4096] == 'x'); /* b keeps the object alive */
	CHECK(uunmap(b, 0) == 0);
	close(fd);
}

static void test_prefetch(void)
{
	int fd = make_file("prefetch", FILE_BYTES, 6);
	uint64_t *p = umap(NULL, FILE_BYTES, PROT_READ, UMAP_PRIVATE, fd, 0);
	struct umap_prefetch_item items[8];
	size_t bad = 0;

	CHECK(p != UMAP_FAILED);
	if (p == UMAP_FAILED)
		return;
	for (int i = 0; i < 8; i++)
		items[i].page_base_addr = (char *)p + (size_t)i * 3 * UPAGE;
	umap_prefetch(8, items);
	for (int i = 0; i < 8; i++) {
		size_t w = WORDS((size_t)i * 3 * UPAGE);

		bad += p[w] != pattern(w, 6);
	}
	CHECK(bad == 0);
	/* Addresses outside every region are skipped, not fatal. */
	items[0].page_base_addr = &bad;
	umap_prefetch(1, items);
	CHECK(uunmap(p, FILE_BYTES) == 0);
	close(fd);
}

struct reader {
	const uint64_t *p;
	size_t bad;
	int id;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;

	for (size_t i = (size_t)r->id; i < WORDS(FILE_BYTES); i += 61)
		r->bad += r->p[i] != pattern(i, 7);
	return NULL;
}

static void test_threads_read(void)
{
	int fd = make_file("threads", FILE_BYTES, 7);
	uint64_t *p = umap(NULL, FILE_BYTES, PROT_READ, UMAP_PRIVATE, fd, 0);
	struct reader r[4];
	pthread_t t[4];

	CHECK(p != UMAP_FAILED);
	if (p == UMAP_FAILED)
		return;
	for (int i = 0; i < 4; i++) {
		r[i] = (struct reader){.p = p, .id = i * 13};
		CHECK(pthread_create(&t[i], NULL, reader_main, &r[i]) == 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK(r[i].bad == 0);
	}
	CHECK(uunmap(p, FILE_BYTES) == 0);
	close(fd);
}

/* A custom store (umap_ex): pages from a buffer in memory. */
struct mem_store {
	struct fl_store base;
	char *data;
	size_t size;
	int destroyed;
};

static ssize_t mem_read(struct fl_store *s, void *buf, size_t len, uint64_t off)
{
	struct mem_store *m = (struct mem_store *)s;

	if (off >= m->size)
		return 0;
	if (len > m->size - off)
		len = m->size - off;
	memcpy(buf, m->data + off, len);
	return (ssize_t)len;
}

static ssize_t mem_write(struct fl_store *s, const void *buf, size_t len,
			 uint64_t off)
{
	struct mem_store *m = (struct mem_store *)s;

	if (off >= m->size || len > m->size - off) {
		errno = ENOSPC;
		return -1;
	}
	memcpy(m->data + off, buf, len);
	return (ssize_t)len;
}

static int64_t mem_size(struct fl_store *s)
{
	return (int64_t)((struct mem_store *)s)->size;
}

static void mem_destroy(struct fl_store *s)
{
	((struct mem_store *)s)->destroyed = 1;
}

static const struct fl_store_ops mem_ops = {
	.read = mem_read,
	.write = mem_write,
	.size = mem_size,
	.destroy = mem_destroy,
};

static void test_umap_ex_store(void)
{
	size_t size = (size_t)BUF_PAGES * UPAGE * 2;
	struct mem_store m = {
		.base = {.ops = &mem_ops}, .data = malloc(size), .size = size};
	uint64_t *p;
	size_t bad = 0;

	if (!m.data)
		return;
	for (size_t i = 0; i < WORDS(size); i++)
		((uint64_t *)m.data)[i] = pattern(i, 8);
	/* Refused: the store stays the caller's. */
	errno = 0;
	CHECK(umap_ex(NULL, size, PROT_READ, MAP_PRIVATE | MAP_SHARED, -1, 0,
		      &m.base) == UMAP_FAILED &&
	      errno == EINVAL);
	CHECK(umap_ex(NULL, size, PROT_READ, UMAP_PRIVATE, -1, 1, &m.base) ==
		      UMAP_FAILED &&
	      errno == EINVAL);
	CHECK(!m.destroyed);
	p = umap_ex(NULL, size, PROT_READ | PROT_WRITE, UMAP_PRIVATE, -1, 0,
		    &m.base);
	CHECK(p != UMAP_FAILED);
	if (p == UMAP_FAILED)
		goto out;
	for (size_t i = 0; i < WORDS(size); i++) {
		bad += p[i] != pattern(i, 8);
		p[i] = pattern(i, 9);
	}
	CHECK(bad == 0);
	CHECK(umap_flush() == 0);
	bad = 0;
	for (size_t i = 0; i < WORDS(size); i++)
		bad += ((uint64_t *)m.data)[i] != pattern(i, 9);
	CHECK(bad == 0);
	CHECK(uunmap(p, size) == 0);
	CHECK(m.destroyed); /* the region owned it */
out:
	free(m.data);
}

static void test_bad_arguments(void)
{
	int fd = make_file("bad", FILE_BYTES / 16, 10);
	char path[256];
	int wfd;

	errno = 0;
	CHECK(umap(NULL, 0, PROT_READ, UMAP_PRIVATE, fd, 0) == UMAP_FAILED &&
	      errno == EINVAL);
	CHECK(umap(NULL, 4096, PROT_READ, 0, fd, 0) == UMAP_FAILED &&
	      errno == EINVAL);
	CHECK(umap(NULL, 4096, PROT_READ, UMAP_PRIVATE | MAP_ANONYMOUS, fd,
		   0) == UMAP_FAILED &&
	      errno == EINVAL);
	CHECK(umap(NULL, 4096, PROT_READ, UMAP_PRIVATE, -1, 0) == UMAP_FAILED &&
	      errno == EBADF);
	CHECK(umap(NULL, 4096, PROT_READ, UMAP_PRIVATE, 12345, 0) ==
		      UMAP_FAILED &&
	      errno == EBADF);
	CHECK(umap(NULL, 4096, PROT_READ, UMAP_PRIVATE, fd, 100) ==
		      UMAP_FAILED &&
	      errno == EINVAL);
	CHECK(umap((void *)12345, 4096, PROT_READ, UMAP_PRIVATE | UMAP_FIXED,
		   fd, 0) == UMAP_FAILED &&
	      errno == EINVAL);
	snprintf(path, sizeof(path), "%s/bad", dir);
	wfd = open(path, O_WRONLY);
	CHECK(umap(NULL, 4096, PROT_READ, UMAP_PRIVATE, wfd, 0) ==
		      UMAP_FAILED &&
	      errno == EACCES);
	close(wfd);
	CHECK(uunmap(&wfd, 4096) == -1 && errno == EINVAL);
	CHECK(umap_ex(NULL, 4096, PROT_READ, UMAP_PRIVATE, fd, 0, NULL) ==
		      UMAP_FAILED &&
	      errno == EINVAL);
	CHECK(umap_flush() == 0); /* no region: nothing to do */
	close(fd);
}

/* A file opened read-only, mapped writable: stores stay in memory. */
static void test_read_only_file(void)
{
	int fd = make_file("ro", FILE_BYTES / 16, 11);
	char path[256];
	int rfd;
	uint64_t *p;

	snprintf(path, sizeof(path), "%s/ro", dir);
	rfd = open(path, O_RDONLY);
	p = umap(NULL, FILE_BYTES / 16, PROT_READ | PROT_WRITE, UMAP_PRIVATE,
		 rfd, 0);
	CHECK(p != UMAP_FAILED);
	if (p == UMAP_FAILED)
		return;
	CHECK(p[1] == pattern(1, 11));
	p[1] = 42;
	CHECK(p[1] == 42);
	CHECK(umap_flush() == 0);
	CHECK(uunmap(p, 0) == 0);
	CHECK(file_matches(fd, FILE_BYTES / 16, 11));
	close(rfd);
	close(fd);
}

/* The buffer size and thresholds change while regions are mapped; the
 * page size waits until none is. */
static void test_setters(void)
{
	int fd = make_file("set", FILE_BYTES, 12);
	uint64_t *p = umap(NULL, FILE_BYTES, PROT_READ, UMAP_PRIVATE, fd, 0);
	size_t bad = 0;

	CHECK(p != UMAP_FAILED);
	if (p == UMAP_FAILED)
		return;
	umapcfg_set_max_pages_in_buffer(BUF_PAGES / 2);
	CHECK(umapcfg_get_max_pages_in_buffer() == BUF_PAGES / 2);
	umapcfg_set_evict_high_water_threshold(95);
	CHECK(umapcfg_get_evict_high_water_threshold() == 95);
	umapcfg_set_umap_page_size(2 * UPAGE); /* ignored: regions mapped */
	CHECK(umapcfg_get_umap_page_size() == UPAGE);
	for (size_t i = 0; i < WORDS(FILE_BYTES); i++)
		bad += p[i] != pattern(i, 12);
	CHECK(bad == 0);
	CHECK(uunmap(p, FILE_BYTES) == 0);
	umapcfg_set_umap_page_size(2 * UPAGE);
	CHECK(umapcfg_get_umap_page_size() == 2 * UPAGE);
	umapcfg_set_max_pages_in_buffer(BUF_PAGES);
	close(fd);
}

static void cleanup(void)
{
	static const char *names[] = {"read",	 "write", "share", "prefetch",
				      "threads", "bad",	  "ro",	   "set"};
	char path[256];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

int main(void)
{
	int fd;
	void *p;

	/* UMap reads its environment once, at first use. */
	setenv("UMAP_PAGESIZE", "16384", 1);
	setenv("UMAP_BUFSIZE", "64", 1);
	setenv("UMAP_PAGE_FILLERS", "3", 1);
	setenv("UMAP_PAGE_EVICTORS", "2", 1);
	setenv("UMAP_READ_AHEAD", "1", 1);
	setenv("UMAP_EVICT_HIGH_WATER_THRESHOLD", "80", 1);
	setenv("UMAP_EVICT_LOW_WATER_THRESHOLD", "60", 1);
	if (!mkdtemp(dir)) {
		perror(dir);
		return 1;
	}
	atexit(cleanup);
	run("config_from_environment", test_config_from_environment);

	/* Can this process use userfaultfd at all? */
	fd = make_file("read", 4096, 0);
	p = umap(NULL, 4096, PROT_READ, UMAP_PRIVATE, fd, 0);
	if (p == UMAP_FAILED && (errno == EPERM || errno == ENOSYS)) {
		printf("SKIP %s: userfaultfd not permitted or lacking a "
		       "feature (%s)\n",
		       NAME, strerror(errno));
		return 77;
	}
	if (p != UMAP_FAILED)
		uunmap(p, 4096);
	close(fd);

	run("read_larger_than_buffer", test_read_larger_than_buffer);
	run("write_and_flush", test_write_and_flush);
	run("two_regions_share", test_two_regions_share);
	run("prefetch", test_prefetch);
	run("threads_read", test_threads_read);
	run("umap_ex_store", test_umap_ex_store);
	run("bad_arguments", test_bad_arguments);
	run("read_only_file", test_read_only_file);
	run("setters", test_setters);
	printf("SUMMARY %s: %d passed, %d failed\n", NAME, passed, failed);
	return failed ? 1 : 0;
}
