/* SPDX-License-Identifier: MIT */
/*
 * Compressing a buffer with zstd, lz4 or nothing (see codec.h).
 *
 * zstd wants a context per call in flight; making one costs more than
 * compressing a page, so contexts that calls finish with are kept in a
 * small cache (a stack under one mutex, held only to push or pop) and
 * reused.  The cache keeps at most CTX_CACHE of each kind; the rest are
 * freed.  lz4's fast mode needs no heap state; its HC mode allocates its
 * own per call.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include "codec.h"
#include "faultline.h"

#ifdef FL_HAVE_ZSTD
#include <zstd.h>
#include <zstd_errors.h>
#endif
#ifdef FL_HAVE_LZ4
#include <lz4.h>
#include <lz4hc.h>
#endif

/* Inputs beyond this are refused (lz4 takes int lengths). */
#define CODEC_MAX_LEN (1UL << 30)
#define LZ4_MIN_LEVEL (-65537)

const char *codec_name(int algorithm)
{
	switch (algorithm) {
	case FL_COMPRESS_NONE:
		return "none";
	case FL_COMPRESS_ZSTD:
		return "zstd";
	case FL_COMPRESS_LZ4:
		return "lz4";
	}
	return "?";
}

int codec_check(int algorithm, int level)
{
	switch (algorithm) {
	case FL_COMPRESS_NONE:
		return 0;
	case FL_COMPRESS_ZSTD:
#ifdef FL_HAVE_ZSTD
		return level >= ZSTD_minCLevel() && level <= ZSTD_maxCLevel()
			       ? 0
			       : -EINVAL;
#else
		return -EOPNOTSUPP;
#endif
	case FL_COMPRESS_LZ4:
#ifdef FL_HAVE_LZ4
		return level >= LZ4_MIN_LEVEL && level <= LZ4HC_CLEVEL_MAX
			       ? 0
			       : -EINVAL;
#else
		return -EOPNOTSUPP;
#endif
	}
	return -EINVAL;
}

#ifdef FL_HAVE_ZSTD
#define CTX_CACHE 8

static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static ZSTD_CCtx *cctx_cache[CTX_CACHE];
static ZSTD_DCtx *dctx_cache[CTX_CACHE];
static unsigned nr_cctx, nr_dctx;

/* A compression context from the cache, or a new one (NULL: no memory). */
static ZSTD_CCtx *cctx_get(void)
{
	ZSTD_CCtx *c = NULL;

	pthread_mutex_lock(&ctx_lock);
	if (nr_cctx)
		c = cctx_cache[--nr_cctx];
	pthread_mutex_unlock(&ctx_lock);
	return c ? c : ZSTD_createCCtx();
}

static void cctx_put(ZSTD_CCtx *c)
{
	pthread_mutex_lock(&ctx_lock);
	if (nr_cctx < CTX_CACHE) {
		cctx_cache[nr_cctx++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&ctx_lock);
	ZSTD_freeCCtx(c); /* NULL is fine */
}

static ZSTD_DCtx *dctx_get(void)
{
	ZSTD_DCtx *d = NULL;

	pthread_mutex_lock(&ctx_lock);
	if (nr_dctx)
		d = dctx_cache[--nr_dctx];
	pthread_mutex_unlock(&ctx_lock);
	return d ? d : ZSTD_createDCtx();
}

static void dctx_put(ZSTD_DCtx *d)
{
	pthread_mutex_lock(&ctx_lock);
	if (nr_dctx < CTX_CACHE) {
		dctx_cache[nr_dctx++] = d;
		d = NULL;
	}
	pthread_mutex_unlock(&ctx_lock);
	ZSTD_freeDCtx(d);
}

static ssize_t zstd_compress(int level, const void *src, size_t len, void *dst,
			     size_t cap)
{
	ZSTD_CCtx *c = cctx_get();
	size_t r;

	if (!c)
		return -ENOMEM;
	r = ZSTD_compressCCtx(c, dst, cap, src, len, level);
	cctx_put(c);
	if (!ZSTD_isError(r))
		return (ssize_t)r;
	if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall)
		return -ENOSPC;
	return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? -ENOMEM
								    : -EIO;
}

static ssize_t zstd_decompress(const void *src, size_t len, void *dst,
			       size_t orig_len)
{
	ZSTD_DCtx *d = dctx_get();
	size_t r;

	if (!d)
		return -ENOMEM;
	r = ZSTD_decompressDCtx(d, dst, orig_len, src, len);
	dctx_put(d);
	if (ZSTD_isError(r)) {
		return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation
			       ? -ENOMEM
			       : -EIO;
	}
	return r == orig_len ? (ssize_t)r : -EIO;
}
#endif /* FL_HAVE_ZSTD */

#ifdef FL_HAVE_LZ4
/* lz4 returns 0 when the output does not fit: incompressible into cap. */
static ssize_t lz4_compress(int level, const char *src, size_t len, char *dst,
			    size_t cap)
{
	int icap = cap > INT_MAX ? INT_MAX : (int)cap;
	int r;

	if (level > 0)
		r = LZ4_compress_HC(src, dst, (int)len, icap, level);
	else
		r = LZ4_compress_fast(src, dst, (int)len, icap,
				      level < 0 ? -level : 1);
	return r > 0 ? r : -ENOSPC;
}

static ssize_t lz4_decompress(const char *src, size_t len, char *dst,
			      size_t orig_len)
{
	int r;

	if (len > INT_MAX)
		return -EIO;
	r = LZ4_decompress_safe(src, dst, (int)len, (int)orig_len);
	return r >= 0 && (size_t)r == orig_len ? r : -EIO;
}
#endif /* FL_HAVE_LZ4 */

ssize_t codec_compress(int algorithm, int level, const void *src, size_t len,
		       void *dst, size_t cap)
{
	int err = codec_check(algorithm, level);

	if (err)
		return err;
	if (len > CODEC_MAX_LEN)
		return -EINVAL;
	switch (algorithm) {
#ifdef FL_HAVE_ZSTD
	case FL_COMPRESS_ZSTD:
		return zstd_compress(level, src, len, dst, cap);
#endif
#ifdef FL_HAVE_LZ4
	case FL_COMPRESS_LZ4:
		return lz4_compress(level, src, len, dst, cap);
#endif
	default: /* none */
		if (len > cap)
			return -ENOSPC;
		memcpy(dst, src, len);
		return (ssize_t)len;
	}
}

ssize_t codec_decompress(int algorithm, const void *src, size_t len, void *dst,
			 size_t orig_len)
{
	int err = codec_check(algorithm, 0);

	if (err)
		return err;
	if (orig_len > CODEC_MAX_LEN)
		return -EINVAL;
	switch (algorithm) {
#ifdef FL_HAVE_ZSTD
	case FL_COMPRESS_ZSTD:
		return zstd_decompress(src, len, dst, orig_len);
#endif
#ifdef FL_HAVE_LZ4
	case FL_COMPRESS_LZ4:
		return lz4_decompress(src, len, dst, orig_len);
#endif
	default: /* none */
		if (len != orig_len)
			return -EIO;
		memcpy(dst, src, len);
		return (ssize_t)len;
	}
}
