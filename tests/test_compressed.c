// SPDX-License-Identifier: MIT
/*
 * Compression: the codec (src/codec.c) on its own, then the compressed
 * store (fl_store_compressed).  Cases that need no userfaultfd run first.
 */
#include "codec.h"
#include "harness.h"
#include "swap_test.h"
#include "inject.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>

static const int algorithms[] = {FL_COMPRESS_NONE, FL_COMPRESS_ZSTD,
				 FL_COMPRESS_LZ4};
#define NR_ALGORITHMS (sizeof(algorithms) / sizeof(algorithms[0]))

static int built_in(int algorithm)
{
	return codec_check(algorithm, 0) == 0;
}

/* Data that compresses well but not to nothing: words from a small
 * vocabulary, chosen by the pattern of seed. */
static void fill_text(unsigned char *p, size_t len, uint32_t seed, uint64_t off)
{
	static const char *const words[] = {"fault ", "line ",	"page ",
					    "cache ", "store ", "zstd ",
					    "lz4 ",   "block "};
	size_t i = 0;

	while (i < len) {
		const char *w = words[h_pattern(seed, off + i) & 7];

		for (size_t k = 0; w[k] && i < len; k++)
			p[i++] = (unsigned char)w[k];
	}
}

/* ---- the codec -------------------------------------------------------- */

TEST(codec_check_arguments)
{
	CHECK_EQ(codec_check(FL_COMPRESS_NONE, 0), 0);
	CHECK_EQ(codec_check(FL_COMPRESS_NONE, 99), 0);
	CHECK_EQ(codec_check(3, 0), -EINVAL);
	CHECK_EQ(codec_check(-1, 0), -EINVAL);
#ifdef FL_HAVE_ZSTD
	CHECK_EQ(codec_check(FL_COMPRESS_ZSTD, 0), 0);
	CHECK_EQ(codec_check(FL_COMPRESS_ZSTD, 19), 0);
	CHECK_EQ(codec_check(FL_COMPRESS_ZSTD, 1000), -EINVAL);
#else
	CHECK_EQ(codec_check(FL_COMPRESS_ZSTD, 0), -EOPNOTSUPP);
#endif
#ifdef FL_HAVE_LZ4
	CHECK_EQ(codec_check(FL_COMPRESS_LZ4, 0), 0);
	CHECK_EQ(codec_check(FL_COMPRESS_LZ4, 9), 0);
	CHECK_EQ(codec_check(FL_COMPRESS_LZ4, -4), 0);
	CHECK_EQ(codec_check(FL_COMPRESS_LZ4, 13), -EINVAL);
#else
	CHECK_EQ(codec_check(FL_COMPRESS_LZ4, 0), -EOPNOTSUPP);
#endif
	CHECK(strcmp(codec_name(FL_COMPRESS_ZSTD), "zstd") == 0);
	CHECK(strcmp(codec_name(7), "?") == 0);
}

/* Every algorithm built in, at a few levels: compressible data shrinks and
 * comes back; random data does not fit in less than its size (ENOSPC);
 * a corrupt or truncated input, or a wrong length, is EIO. */
TEST(codec_round_trips)
{
	const size_t len = 64 * 1024;
	unsigned char *src = malloc(len), *dst = malloc(2 * len),
		      *back = malloc(len);
	static const int levels[] = {0, 1, -3, 9};

	REQUIRE(src && dst && back);
	for (size_t a = 0; a < NR_ALGORITHMS; a++) {
		int alg = algorithms[a];

		if (!built_in(alg)) {
			h_note("%s not built in", codec_name(alg));
			continue;
		}
		for (size_t l = 0; l < sizeof(levels) / sizeof(levels[0]);
		     l++) {
			ssize_t c, d;

			fill_text(src, len, 1 + (uint32_t)l, 0);
			c = codec_compress(alg, levels[l], src, len, dst,
					   2 * len);
			REQUIRE(c > 0);
			if (alg != FL_COMPRESS_NONE)
				CHECK_LE((size_t)c, len / 2);
			memset(back, 0, len);
			d = codec_decompress(alg, dst, (size_t)c, back, len);
			CHECK_EQ(d, len);
			CHECK(memcmp(src, back, len) == 0);
			/* A wrong original length, a truncated input. */
			CHECK_EQ(codec_decompress(alg, dst, (size_t)c, back,
						  len - 1),
				 -EIO);
			CHECK_EQ(codec_decompress(alg, dst, (size_t)c / 2, back,
						  len),
				 -EIO);
		}
		if (alg == FL_COMPRESS_NONE)
			continue;
		h_fill(src, len, 77, 0); /* random: incompressible */
		CHECK_EQ(codec_compress(alg, 0, src, len, dst, len - len / 8),
			 -ENOSPC);
		/* Garbage is not a compressed block. */
		memset(dst, 0xA5, 512);
		CHECK_EQ(codec_decompress(alg, dst, 512, back, len), -EIO);
	}
	free(src);
	free(dst);
	free(back);
}

/* Contexts are shared by threads: many compress and decompress at once. */
static void codec_worker(int idx, void *arg)
{
	const size_t len = 16 * 1024;
	unsigned char src[16 * 1024], dst[20 * 1024], back[16 * 1024];

	(void)arg;
	for (int i = 0; i < 200; i++) {
		int alg = algorithms[(unsigned)(idx + i) % NR_ALGORITHMS];
		ssize_t c;

		if (!built_in(alg))
			continue;
		fill_text(src, len, (uint32_t)(idx * 1000 + i), 0);
		c = codec_compress(alg, 0, src, len, dst, sizeof(dst));
		CHECK(c > 0);
		if (c <= 0)
			return;
		CHECK_EQ(codec_decompress(alg, dst, (size_t)c, back, len), len);
		CHECK(memcmp(src, back, len) == 0);
	}
}

TEST(codec_threads)
{
	h_run_threads(4, codec_worker, NULL);
}

/* ---- the compressed store, its operations called directly --------------- */

#define BS16 ((size_t)16384)

/* A compressed store over the file at path (created empty by the caller,
 * or holding a compressed store). */
static struct fl_store *cz_open(const char *path, int alg, size_t bs)
{
	struct fl_store *file = fl_store_file_open(path, O_RDWR);
	struct fl_store *z;

	REQUIRE(file != NULL);
	z = fl_store_compressed(file, alg, 0, bs);
	REQUIRE(z != NULL);
	return z;
}

static void st_write(struct fl_store *z, const void *buf, size_t len,
		     uint64_t off)
{
	CHECK_EQ(z->ops->write(z, buf, len, off), len);
}

/* Read [off, off+len) of z and compare it with want. */
static void st_verify(struct fl_store *z, const unsigned char *want, size_t len,
		      uint64_t off)
{
	unsigned char *got = malloc(len + 1);
	ssize_t n;

	REQUIRE(got != NULL);
	n = z->ops->read(z, got, len, off);
	CHECK_EQ(n, len);
	if (n == (ssize_t)len && memcmp(got, want, len)) {
		size_t i = 0;

		while (got[i] == want[i])
			i++;
		size_t from = i & ~(size_t)15;
		int shown = (int)(len - from < 24 ? len - from : 24);

		h_fail(__FILE__, __LINE__,
		       "byte %zu of read at %llu differs: \"%.*s\", want "
		       "\"%.*s\" (from byte %zu)",
		       i, (unsigned long long)off, shown, got + from, shown,
		       want + from, from);
	}
	free(got);
}

static struct fl_compressed_stats cz_stats(struct fl_store *z)
{
	struct fl_compressed_stats st;

	REQUIRE(fl_store_compressed_stats(z, &st) == 0);
	return st;
}

/* Bytes the file at path occupies on disk. */
static uint64_t disk_bytes(const char *path)
{
	struct stat st;

	REQUIRE(stat(path, &st) == 0);
	return (uint64_t)st.st_blocks * 512;
}

TEST(store_bad_arguments)
{
	struct h_file f, g;
	struct fl_store *file, *z, noops = {0};
	struct fl_compressed_stats st;

	h_file_create(&f, 3 * PG, 5); /* not a compressed store */
	file = fl_store_file_open(f.path, O_RDWR);
	REQUIRE(file != NULL);
	CHECK_ERR(fl_store_compressed(NULL, FL_COMPRESS_NONE, 0, 0) == NULL,
		  EINVAL);
	CHECK_ERR(fl_store_compressed(&noops, FL_COMPRESS_NONE, 0, 0) == NULL,
		  EINVAL);
	CHECK_ERR(fl_store_compressed(file, 3, 0, 0) == NULL, EINVAL);
	CHECK_ERR(fl_store_compressed(file, -1, 0, 0) == NULL, EINVAL);
	CHECK_ERR(fl_store_compressed(file, FL_COMPRESS_NONE, 0, 1000) == NULL,
		  EINVAL);
	CHECK_ERR(fl_store_compressed(file, FL_COMPRESS_NONE, 0, 32 << 20) ==
			  NULL,
		  EINVAL);
#ifdef FL_HAVE_ZSTD
	CHECK_ERR(fl_store_compressed(file, FL_COMPRESS_ZSTD, 1000, 0) == NULL,
		  EINVAL);
#else
	CHECK_ERR(fl_store_compressed(file, FL_COMPRESS_ZSTD, 0, 0) == NULL,
		  EOPNOTSUPP);
#endif
#ifndef FL_HAVE_LZ4
	CHECK_ERR(fl_store_compressed(file, FL_COMPRESS_LZ4, 0, 0) == NULL,
		  EOPNOTSUPP);
#endif
	CHECK_ERR(fl_store_compressed(file, FL_COMPRESS_NONE, 0, 0) == NULL,
		  EBADMSG);
	/* Left to the caller, untouched. */
	CHECK_EQ(file->ops->size(file), 3 * PG);
	CHECK_ERR(fl_store_compressed_stats(file, &st) == -1, EINVAL);
	CHECK_ERR(fl_store_compressed_stats(NULL, &st) == -1, EINVAL);
	file->ops->destroy(file);

	/* Reopened with another block size: EINVAL; with 0: its own. */
	h_file_create(&g, 0, 0);
	z = cz_open(g.path, FL_COMPRESS_NONE, BS16);
	CHECK_ERR(fl_store_compressed_stats(z, NULL) == -1, EINVAL);
	z->ops->destroy(z);
	file = fl_store_file_open(g.path, O_RDWR);
	REQUIRE(file != NULL);
	CHECK_ERR(fl_store_compressed(file, FL_COMPRESS_NONE, 0, 2 * BS16) ==
			  NULL,
		  EINVAL);
	z = fl_store_compressed(file, FL_COMPRESS_NONE, 0, 0);
	REQUIRE(z != NULL);
	CHECK_EQ(cz_stats(z).block_size, BS16);
	CHECK_EQ(z->ops->size(z), 0);
	z->ops->destroy(z);
	h_file_remove(&f);
	h_file_remove(&g);
}

/*
 * Writes of any offset and length, against a model: whole blocks, parts
 * of blocks, across blocks, past the end (which extends it, the gap
 * reading as zeros); reads of any range; then the same after a re-open.
 */
TEST(store_round_trips)
{
	const size_t size = 10 * BS16 + 1000;
	unsigned char *model = calloc(1, size), *piece = malloc(size);

	REQUIRE(model && piece);
	for (size_t a = 0; a < NR_ALGORITHMS; a++) {
		int alg = algorithms[a];
		struct fl_store *z;
		struct h_file f;
		static const struct {
			uint64_t off;
			size_t len;
		} w[] = {{0, BS16},
			 {3 * BS16 + 100, 5000},
			 {2 * BS16 - 7, 2 * BS16 + 14},
			 {8 * BS16, 2 * BS16 + 1000}, /* past the end */
			 {5, 1},
			 {6 * BS16, PG}};

		if (!built_in(alg))
			continue;
		memset(model, 0, size);
		h_file_create(&f, 0, 0);
		z = cz_open(f.path, alg, BS16);
		for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
			if (i % 2)
				h_fill(piece, w[i].len, (uint32_t)i, 0);
			else
				fill_text(piece, w[i].len, (uint32_t)i, 0);
			st_write(z, piece, w[i].len, w[i].off);
			memcpy(model + w[i].off, piece, w[i].len);
		}
		CHECK_EQ(z->ops->size(z), size);
		st_verify(z, model, size, 0);
		st_verify(z, model + 4 * BS16 + 3, 3 * BS16, 4 * BS16 + 3);
		st_verify(z, model + size - 10, 10, size - 10);
		CHECK_EQ(z->ops->read(z, piece, PG, size), 0); /* at the end */
		CHECK_EQ(z->ops->read(z, piece, 2 * PG, size - 10), 10);
		CHECK_GT(cz_stats(z).partial_writes, 0);
		z->ops->destroy(z);

		z = cz_open(f.path, alg, 0);
		CHECK_EQ(z->ops->size(z), size);
		st_verify(z, model, size, 0);
		z->ops->destroy(z);
		h_file_remove(&f);
	}
	free(model);
	free(piece);
}

/* Random data is stored raw; compressible data shrinks, and rewriting
 * raw blocks with compressible data gives the disk space back (discard). */
TEST(store_raw_and_ratio)
{
	const size_t size = 64 * BS16;
	unsigned char *data = malloc(size);

	REQUIRE(data != NULL);
	for (size_t a = 1; a < NR_ALGORITHMS; a++) {
		int alg = algorithms[a];
		struct fl_compressed_stats st;
		struct fl_store *z;
		struct h_file f;
		uint64_t raw_disk;

		if (!built_in(alg))
			continue;
		h_file_create(&f, 0, 0);
		z = cz_open(f.path, alg, BS16);
		h_fill(data, size, 9, 0);
		st_write(z, data, size, 0);
		st = cz_stats(z);
		CHECK_EQ(st.blocks_written, 64);
		CHECK_EQ(st.blocks_raw, 64);
		CHECK_EQ(st.bytes_in, size);
		CHECK_GE(st.bytes_out, size);
		st_verify(z, data, size, 0);
		raw_disk = disk_bytes(f.path);
		CHECK_GE(raw_disk, size);

		fill_text(data, size, 10, 0);
		st_write(z, data, size, 0);
		st = cz_stats(z);
		CHECK_EQ(st.blocks_written, 128);
		CHECK_EQ(st.blocks_raw, 64);
		CHECK_LE((st.bytes_out - size - 64 * 16) * 2, size);
		h_note("%s: compressible %llu -> %llu bytes, disk %llu -> %llu",
		       codec_name(alg), (unsigned long long)size,
		       (unsigned long long)(st.bytes_out - (size + 64 * 16)),
		       (unsigned long long)raw_disk,
		       (unsigned long long)disk_bytes(f.path));
		CHECK_LE(disk_bytes(f.path) * 3, raw_disk * 2);
		st_verify(z, data, size, 0);
		z->ops->destroy(z);
		h_file_remove(&f);
	}
	free(data);
}

/* Threads write disjoint pieces of the same blocks at once: each
 * read-modify-write is serialised, none loses another's bytes. */
struct piece_arg {
	struct fl_store *z;
	size_t size;
};

static void piece_writer(int idx, void *arg)
{
	struct piece_arg *pa = arg;
	unsigned char buf[1024];

	for (uint64_t off = (uint64_t)idx * 1024; off < pa->size;
	     off += 4 * 1024) {
		fill_text(buf, sizeof(buf), 33, off);
		CHECK_EQ(pa->z->ops->write(pa->z, buf, sizeof(buf), off),
			 sizeof(buf));
	}
}

TEST(store_threads_partial_blocks)
{
	struct piece_arg pa = {NULL, 8 * BS16};
	unsigned char *want = malloc(pa.size);
	struct h_file f;
	int alg = built_in(FL_COMPRESS_LZ4)    ? FL_COMPRESS_LZ4
		  : built_in(FL_COMPRESS_ZSTD) ? FL_COMPRESS_ZSTD
					       : FL_COMPRESS_NONE;

	REQUIRE(want != NULL);
	h_file_create(&f, 0, 0);
	pa.z = cz_open(f.path, alg, BS16);
	h_run_threads(4, piece_writer, &pa);
	for (uint64_t off = 0; off < pa.size; off += 1024)
		fill_text(want + off, 1024, 33, off);
	CHECK_EQ(pa.z->ops->size(pa.z), pa.size);
	st_verify(pa.z, want, pa.size, 0);
	pa.z->ops->destroy(pa.z);
	free(want);
	h_file_remove(&f);
}

/*
 * A block written while a thread changes one of its pages (a page that
 * writeback cleaned and a store re-dirtied: the engine lets the store go
 * on, as the kernel does without stable pages): the changed page may hold
 * either version of each byte, but the block's other pages must read back
 * exactly.  A compressor reading its input while it changes can emit a
 * match found in one reading with literals from another, and the frame
 * then decodes to bytes in the unchanged pages that were never written.
 */
struct mutate_arg {
	unsigned char *page;
	atomic_int stop;
};

static void *page_mutator(void *arg)
{
	struct mutate_arg *ma = arg;

	for (uint32_t seed = 1; !atomic_load(&ma->stop); seed++)
		fill_text(ma->page, PG, 70 + (seed & 7), 0);
	return NULL;
}

TEST(store_write_of_a_changing_page)
{
	unsigned char *src, *back;

	/* The page changes under the store's reads on purpose: a data race,
	 * which ThreadSanitizer would report. */
	if (H_UNDER_TSAN) {
		h_note("a race on purpose: not run under ThreadSanitizer");
		return;
	}
	src = malloc(BS16);
	back = malloc(BS16);
	REQUIRE(src && back);
	for (size_t a = 0; a < NR_ALGORITHMS; a++) {
		struct mutate_arg ma = {src, 0};
		int alg = algorithms[a], bad = 0, i;
		struct fl_store *z;
		struct h_file f;
		pthread_t t;

		if (!built_in(alg) || alg == FL_COMPRESS_NONE)
			continue;
		fill_text(src, BS16, 71, 0);
		h_file_create(&f, 0, 0);
		z = cz_open(f.path, alg, BS16);
		REQUIRE(pthread_create(&t, NULL, page_mutator, &ma) == 0);
		for (i = 0; i < 400 && !bad; i++) {
			CHECK_EQ(z->ops->write(z, src, BS16, 0), BS16);
			CHECK_EQ(z->ops->read(z, back, BS16, 0), BS16);
			bad = memcmp(back + PG, src + PG, BS16 - PG) != 0;
		}
		atomic_store(&ma.stop, 1);
		pthread_join(t, NULL);
		if (bad)
			h_fail(__FILE__, __LINE__,
			       "%s: write %d of the block changed its stable "
			       "pages",
			       codec_name(alg), i);
		z->ops->destroy(z);
		h_file_remove(&f);
	}
	free(src);
	free(back);
}

/* A block whose header or data is damaged reads as EIO, counted. */
TEST(store_corrupt_block)
{
	const size_t size = 4 * BS16;
	unsigned char *data = malloc(size), junk[64];
	struct fl_store *z;
	struct h_file f;
	char buf[PG];
	int fd;

	REQUIRE(data != NULL);
	h_file_create(&f, 0, 0);
	z = cz_open(f.path, FL_COMPRESS_NONE, BS16);
	fill_text(data, size, 3, 0);
	st_write(z, data, size, 0);
	z->ops->destroy(z);
	/* Block 2's header: a bad magic. */
	fd = open(f.path, O_RDWR);
	REQUIRE(fd >= 0);
	memset(junk, 0x5A, sizeof(junk));
	REQUIRE(pwrite(fd, junk, sizeof(junk), 3 * (BS16 + PG)) == 64);
	close(fd);
	z = cz_open(f.path, FL_COMPRESS_NONE, 0);
	CHECK_ERR(z->ops->read(z, buf, PG, 2 * BS16) == -1, EIO);
	CHECK_EQ(cz_stats(z).corrupt_blocks, 1);
	st_verify(z, data, 2 * BS16, 0);
	st_verify(z, data + 3 * BS16, BS16, 3 * BS16);
	z->ops->destroy(z);
	free(data);
	h_file_remove(&f);
}

/* Each block records its algorithm: a store written with one and
 * re-opened with another reads both kinds of blocks. */
TEST(store_mixed_algorithms)
{
	const size_t size = 4 * BS16;
	unsigned char *data = malloc(size);
	struct fl_store *z;
	struct h_file f;

	REQUIRE(data != NULL);
	if (!built_in(FL_COMPRESS_ZSTD) || !built_in(FL_COMPRESS_LZ4)) {
		h_note("needs zstd and lz4");
		free(data);
		return;
	}
	fill_text(data, size, 70, 0);
	h_file_create(&f, 0, 0);
	z = cz_open(f.path, FL_COMPRESS_ZSTD, BS16);
	st_write(z, data, size, 0);
	z->ops->destroy(z);
	z = cz_open(f.path, FL_COMPRESS_LZ4, 0);
	st_write(z, data + BS16, BS16, BS16); /* block 1 now lz4 */
	CHECK_EQ(cz_stats(z).blocks_raw, 0);
	z->ops->destroy(z);
	z = cz_open(f.path, FL_COMPRESS_NONE, 0);
	st_verify(z, data, size, 0);
	z->ops->destroy(z);
	free(data);
	h_file_remove(&f);
}

/* The file store's discard op punches a hole: the range reads as zeros,
 * the size stays, the disk space goes. */
TEST(file_store_discard)
{
	struct h_file f;
	struct fl_store *file;
	unsigned char *buf = malloc(8 * PG);
	uint64_t before;

	REQUIRE(buf != NULL);
	h_file_create(&f, 8 * PG, 95);
	file = fl_store_file_open(f.path, O_RDWR);
	REQUIRE(file != NULL);
	REQUIRE(file->ops->discard != NULL);
	before = disk_bytes(f.path);
	CHECK_EQ(file->ops->discard(file, 2 * PG, 4 * PG), 0);
	CHECK_EQ(file->ops->size(file), 8 * PG);
	CHECK_LE(disk_bytes(f.path) + 4 * PG, before);
	file->ops->destroy(file);
	h_pread(f.path, buf, 8 * PG, 0);
	CHECK_EQ(h_mismatch(buf, 2 * PG, 95, 0), -1);
	CHECK_EQ(h_nonzero(buf + 2 * PG, 4 * PG), -1);
	CHECK_EQ(h_mismatch(buf + 6 * PG, 2 * PG, 95, 6 * PG), -1);
	free(buf);
	h_file_remove(&f);
}

/* The layout docs/design.md promises, read back from the file itself. */
static uint32_t le32_at(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

TEST(store_layout)
{
	const size_t size = 2 * BS16 + 100;
	unsigned char *data = malloc(size), *raw = malloc(BS16 + PG);
	struct fl_store *z;
	struct h_file f;

	REQUIRE(data && raw);
	h_file_create(&f, 0, 0);
	z = cz_open(f.path, FL_COMPRESS_NONE, BS16);
	h_fill(data, size, 90, 0);
	st_write(z, data, size, 0);
	z->ops->destroy(z);
	h_pread(f.path, raw, PG, 0); /* the superblock */
	CHECK(memcmp(raw, "FLCZ", 4) == 0);
	CHECK_EQ(raw[4], 1);  /* version */
	CHECK_EQ(raw[6], 16); /* block header */
	CHECK_EQ(le32_at(raw + 8), BS16);
	CHECK_EQ(raw[12], FL_COMPRESS_NONE);
	CHECK_EQ(le32_at(raw + 16), size);
	CHECK_EQ(le32_at(raw + 20), 0);
	/* Block 1 at 2 strides: header, then the data, raw. */
	h_pread(f.path, raw, BS16 + PG, 2 * (BS16 + PG));
	CHECK(memcmp(raw, "FLCB", 4) == 0);
	CHECK_EQ(raw[4], FL_COMPRESS_NONE);
	CHECK_EQ(le32_at(raw + 8), BS16);
	CHECK_EQ(le32_at(raw + 12), BS16);
	CHECK(memcmp(raw + 16, data + BS16, BS16) == 0);
	/* Block 2 holds the last 100 bytes only: its original length. */
	h_pread(f.path, raw, PG, 3 * (BS16 + PG));
	CHECK_EQ(le32_at(raw + 8), 100);
	CHECK(memcmp(raw + 16, data + 2 * BS16, 100) == 0);
	free(data);
	free(raw);
	h_file_remove(&f);
}

/* ---- real mappings of compressed stores --------------------------------- */

/* A new compressed file store of size bytes holding text (seed). */
static struct fl_store *cz_filled(struct h_file *f, int alg, size_t bs,
				  size_t size, uint32_t seed)
{
	unsigned char *data = malloc(size);
	struct fl_store *z;

	REQUIRE(data != NULL);
	h_file_create(f, 0, 0);
	z = cz_open(f->path, alg, bs);
	fill_text(data, size, seed, 0);
	st_write(z, data, size, 0);
	free(data);
	return z;
}

/* Compare [p, p+len) with want, reporting the first difference. */
static void verify_bytes(const unsigned char *p, const unsigned char *want,
			 size_t len, const char *what)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != want[i]) {
			h_fail(__FILE__, __LINE__, "%s: byte %zu is %u, not %u",
			       what, i, p[i], want[i]);
			return;
		}
}

/*
 * Shared and private mappings of a compressed file store, with each
 * algorithm: every byte read through the mapping; shared stores written
 * back by msync (pages across block boundaries, single bytes), private
 * stores never; then a re-opened store in a new engine shows exactly the
 * shared writes.
 */
TEST(mapped_shared_private_reopen)
{
	const size_t bs = 64 * 1024, size = 20 * bs + 3 * PG + 123;
	unsigned char *model = malloc(size);

	REQUIRE(model != NULL);
	for (size_t a = 0; a < NR_ALGORITHMS; a++) {
		int alg = algorithms[a];
		struct fl_store *z;
		struct h_file f;
		fl_engine *e;
		fl_object *o;
		unsigned char *sp, *pp;

		if (!built_in(alg))
			continue;
		z = cz_filled(&f, alg, 0, size, 40);
		fill_text(model, size, 40, 0);
		e = h_engine(2);
		o = fl_object_create(e, z, O_RDWR);
		REQUIRE(o != NULL);
		CHECK_EQ(fl_object_size(o), size);
		sp = h_map(e, size, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
		pp = h_map(e, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, o, 0);
		verify_bytes(sp, model, size, "shared, first read");
		verify_bytes(pp, model, size, "private, first read");
		/* Shared writes: a page straddling blocks 3 and 4, a byte in
		 * block 7, random data over block 9, the last partial page. */
		for (size_t i = 0; i < 2 * PG; i++)
			sp[4 * bs - PG + i] = model[4 * bs - PG + i] ^= 0x3C;
		sp[7 * bs + 5] = model[7 * bs + 5] = 'Z';
		h_fill(model + 9 * bs, bs, 41, 0);
		memcpy(sp + 9 * bs, model + 9 * bs, bs);
		sp[size - 1] = model[size - 1] = '!';
		/* Private writes: nobody else sees them. */
		memset(pp + 12 * bs, 0xEE, 3 * PG);
		CHECK_EQ(fl_msync(e, sp, size, MS_SYNC), 0);
		verify_bytes(sp, model, size, "shared after msync");
		CHECK_EQ(pp[12 * bs + 1], 0xEE);
		CHECK_EQ(pp[7 * bs + 5], 'Z'); /* an untouched private page */
		CHECK_EQ(fl_munmap(e, sp, size), 0);
		CHECK_EQ(fl_munmap(e, pp, size), 0);
		CHECK_EQ(fl_object_close(o), 0);
		CHECK_EQ(fl_engine_destroy(e), 0);

		/* Another engine, the store opened afresh. */
		e = h_engine(2);
		z = cz_open(f.path, alg, 0);
		o = fl_object_create(e, z, O_RDONLY);
		REQUIRE(o != NULL);
		CHECK_EQ(fl_object_size(o), size);
		sp = h_map(e, size, PROT_READ, MAP_SHARED, o, 0);
		verify_bytes(sp, model, size, "re-opened");
		CHECK_EQ(fl_munmap(e, sp, size), 0);
		CHECK_EQ(fl_object_close(o), 0);
		CHECK_EQ(fl_engine_destroy(e), 0);
		h_file_remove(&f);
	}
	free(model);
}

/* Threads write interleaved pages of a shared mapping (so each block is
 * written back by several msyncs at once) and everything survives. */
struct mt_arg {
	fl_engine *e;
	unsigned char *p;
	size_t size;
};

static void mt_writer(int idx, void *arg)
{
	struct mt_arg *m = arg;

	for (size_t pg = (size_t)idx; pg * PG < m->size; pg += 4) {
		fill_text(m->p + pg * PG, PG, 50, pg * PG);
		if (pg % 8 == (size_t)idx)
			CHECK_EQ(fl_msync(m->e, m->p, m->size, MS_SYNC), 0);
	}
	CHECK_EQ(fl_msync(m->e, m->p, m->size, MS_SYNC), 0);
}

TEST(mapped_threads_msync)
{
	const size_t size = 32 * BS16;
	unsigned char *want = malloc(size);
	struct mt_arg m = {NULL, NULL, size};
	struct fl_store *z;
	struct h_file f;
	fl_object *o;
	int alg = built_in(FL_COMPRESS_ZSTD) ? FL_COMPRESS_ZSTD
					     : FL_COMPRESS_NONE;

	REQUIRE(want != NULL);
	z = cz_filled(&f, alg, BS16, size, 51);
	m.e = h_engine(2);
	o = fl_object_create(m.e, z, O_RDWR);
	REQUIRE(o != NULL);
	m.p = h_map(m.e, size, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	h_run_threads(4, mt_writer, &m);
	CHECK_EQ(fl_munmap(m.e, m.p, size), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(m.e), 0);
	fill_text(want, size, 50, 0);
	for (size_t pg = 0; pg * PG < size; pg++)
		fill_text(want + pg * PG, PG, 50, pg * PG);
	z = cz_open(f.path, alg, 0);
	st_verify(z, want, size, 0);
	z->ops->destroy(z);
	free(want);
	h_file_remove(&f);
}

/*
 * Errors of the inner store (a faulty store between the compressed store
 * and the file): a read failing in one block's slot gets SIGBUS for pages
 * of that block only; failing writes make msync EIO, the pages stay
 * dirty, and the next msync writes them.
 */
TEST(mapped_inner_errors)
{
	const size_t size = 8 * BS16;
	unsigned char *model = malloc(size);
	struct fl_store_faults ff = {0};
	struct fl_store *faulty, *file, *z;
	struct h_sig sig;
	unsigned char v;
	struct h_file f;
	fl_engine *e;
	fl_object *o;
	unsigned char *p;

	REQUIRE(model != NULL);
	z = cz_filled(&f, FL_COMPRESS_NONE, BS16, size, 60);
	z->ops->destroy(z);
	fill_text(model, size, 60, 0);
	file = fl_store_file_open(f.path, O_RDWR);
	REQUIRE(file != NULL);
	faulty = fl_store_faulty(file, NULL);
	REQUIRE(faulty != NULL);
	z = fl_store_compressed(faulty, FL_COMPRESS_NONE, 0, 0);
	REQUIRE(z != NULL);
	/* Reads of block 5's slot fail. */
	ff.fail_offset = 6 * (BS16 + PG);
	ff.fail_length = PG;
	REQUIRE(fl_store_faulty_set(faulty, &ff) == 0);

	e = h_engine(2);
	o = fl_object_create(e, z, O_RDWR);
	REQUIRE(o != NULL);
	p = h_map(e, size, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	CHECK_EQ(h_try_read(p + 5 * BS16 + 100, &v, &sig), SIGBUS);
	CHECK((unsigned char *)sig.addr >= p + 5 * BS16 &&
	      (unsigned char *)sig.addr < p + 6 * BS16);
	CHECK_EQ(h_try_read(p + 4 * BS16, &v, &sig), 0);
	CHECK_EQ(v, model[4 * BS16]);
	CHECK_EQ(h_try_read(p + 6 * BS16 + PG, &v, &sig), 0);
	CHECK_EQ(v, model[6 * BS16 + PG]);
	CHECK_GE(h_estats(e).errors, 1);

	/* Writes fail: msync EIO, the page stays dirty; then it goes. */
	ff.fail_offset = ff.fail_length = 0;
	ff.fail_every_nth_write = 1;
	REQUIRE(fl_store_faulty_set(faulty, &ff) == 0);
	p[BS16 + 10] = model[BS16 + 10] = 'W';
	CHECK_ERR(fl_msync(e, p, size, MS_SYNC) == -1, EIO);
	CHECK_GE(h_mstats(e, p).dirty_pages, 1);
	REQUIRE(fl_store_faulty_set(faulty, NULL) == 0);
	CHECK_EQ(fl_msync(e, p, size, MS_SYNC), 0);
	CHECK_EQ(h_mstats(e, p).dirty_pages, 0);
	CHECK_EQ(fl_munmap(e, p, size), 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);

	z = cz_open(f.path, FL_COMPRESS_NONE, 0);
	st_verify(z, model, size, 0);
	z->ops->destroy(z);
	free(model);
	h_file_remove(&f);
}

/* No memory: making a compressed store fails with ENOMEM and leaves the
 * inner store to the caller; a read or write without memory for its
 * buffers fails with ENOMEM and changes nothing. */
TEST(store_no_memory)
{
	unsigned char data[2 * PG], back[2 * PG];
	struct fl_store *file, *z;
	struct h_file f;

	h_file_create(&f, 0, 0);
	file = fl_store_file_open(f.path, O_RDWR);
	REQUIRE(file != NULL);
	inject_set(INJ_CALLOC, 1, ENOMEM);
	CHECK_ERR(fl_store_compressed(file, FL_COMPRESS_NONE, 0, 0) == NULL,
		  ENOMEM);
	inject_clear();
	CHECK_EQ(file->ops->size(file), 0); /* untouched, still the caller's */
	z = fl_store_compressed(file, FL_COMPRESS_NONE, 0, BS16);
	REQUIRE(z != NULL);
	fill_text(data, sizeof(data), 80, 0);
	st_write(z, data, sizeof(data), 0);
	inject_set(INJ_MALLOC, 1, ENOMEM);
	CHECK_ERR(z->ops->write(z, back, sizeof(back), 0) == -1, ENOMEM);
	inject_set(INJ_MALLOC, 1, ENOMEM);
	CHECK_ERR(z->ops->read(z, back, sizeof(back), 0) == -1, ENOMEM);
	inject_clear();
	st_verify(z, data, sizeof(data), 0);
	z->ops->destroy(z);
	h_file_remove(&f);
}

/* ---- compressed swap memory through real mappings ----------------------- */

#include "reclaim.h"
#include "swap_zpool.h"

struct zswap_env {
	fl_engine *e;
	fl_group *g;
	fl_swap *file, *z;
	char path[256];
};

static int zswap_drained(void *arg)
{
	struct zswap_env *v = arg;

	return swap_drained(v->g, v->z);
}

/* Anonymous memory four times its group's limit, swapped to compressed
 * memory (with a swap file behind it, or nothing), every byte back: text
 * pages stay in the pool, random ones go on to the file. */
static void zswap_case(int with_file, uint64_t pool)
{
	const size_t npages = 1024;
	struct zswap_env v = {0};
	struct swap_zpool_stats zs;
	struct fl_group_stats gs;
	unsigned char *p;
	int alg = built_in(FL_COMPRESS_LZ4)    ? FL_COMPRESS_LZ4
		  : built_in(FL_COMPRESS_ZSTD) ? FL_COMPRESS_ZSTD
					       : -1;

	if (alg < 0) {
		h_note("no zstd or lz4 in this build");
		return;
	}
	v.e = h_engine(2);
	v.g = fl_group_create(v.e, NULL, "zswap");
	REQUIRE(v.g != NULL);
	if (with_file) {
		snprintf(v.path, sizeof(v.path), "%s/zswap-%d", h_tmpdir(),
			 (int)getpid());
		v.file = fl_swap_file_create(v.e, v.path, 4 * npages * PG);
		REQUIRE(v.file != NULL);
	}
	v.z = fl_swap_compressed_create(v.e, alg, 0, pool, v.file);
	REQUIRE(v.z != NULL);
	REQUIRE(fl_group_set_swap(v.g, v.z) == 0);
	REQUIRE(fl_group_set_max(v.g, 256 * PG) == 0);
	p = fl_mmap_group(v.e, v.g, NULL, npages * PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	REQUIRE(p != MAP_FAILED);
	for (size_t i = 0; i < npages; i++) {
		if (with_file && i % 8 == 3)
			h_fill(p + i * PG, PG, 77, i * PG);
		else
			fill_text(p + i * PG, PG, 78, i * PG);
	}
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < npages; i++) {
			unsigned char want[PG];

			if (with_file && i % 8 == 3)
				h_fill(want, PG, 77, i * PG);
			else
				fill_text(want, PG, 78, i * PG);
			if (memcmp(p + i * PG, want, PG)) {
				h_fail(__FILE__, __LINE__, "page %zu differs",
				       i);
				break;
			}
		}
	CHECK_EQ(fl_group_stats(v.g, &gs), 0);
	CHECK_LE(gs.usage, 256 * PG);
	CHECK_GE(gs.swap_outs, npages - 256);
	REQUIRE(swap_zpool_stats(v.z, &zs) == 0);
	CHECK_GT(zs.stored, 0);
	CHECK_LE(zs.pool_used, pool);
	if (with_file)
		CHECK_GT(zs.written_next, 0);
	h_note("%s: %llu pages in the pool (%llu bytes), %llu sent on",
	       with_file ? "pool + file" : "pool alone",
	       (unsigned long long)zs.pool_pages,
	       (unsigned long long)zs.pool_used,
	       (unsigned long long)zs.written_next);
	CHECK_EQ(fl_munmap(v.e, p, npages * PG), 0);
	CHECK(h_wait_until(zswap_drained, &v));
	REQUIRE(swap_zpool_stats(v.z, &zs) == 0);
	CHECK_EQ(zs.pool_used, 0);
	CHECK_EQ(fl_group_destroy(v.g), 0);
	CHECK_EQ(fl_engine_destroy(v.e), 0);
	if (with_file)
		unlink(v.path);
}

TEST(zswap_alone)
{
	zswap_case(0, 4 << 20);
}

TEST(zswap_pool_then_file)
{
	zswap_case(1, 64 * PG);
}
