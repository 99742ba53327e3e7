// SPDX-License-Identifier: MIT
/*
 * Compression: the codec (src/codec.c) on its own, then the compressed
 * store (fl_store_compressed).  Cases that need no userfaultfd run first.
 */
#include "codec.h"
#include "harness.h"

#include <stdlib.h>

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
