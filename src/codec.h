/* SPDX-License-Identifier: MIT */
/*
 * Compressing a buffer: zstd or lz4 (where the library was built with
 * them: FL_HAVE_ZSTD, FL_HAVE_LZ4) or none (a copy).  Used by the
 * compressed store (store_compressed.c) for blocks and by compressed swap
 * memory (swap_zpool.c) for pages.  Stateless for callers and thread-safe:
 * zstd's contexts are kept in a small shared cache, so that a call does
 * not allocate one each time.
 *
 * Levels: 0 is each algorithm's default.  zstd: ZSTD_minCLevel() (fast,
 * negative) to ZSTD_maxCLevel().  lz4: a negative level is the fast mode's
 * acceleration (-1: 1, faster as it goes down, to -65537), 0 the fast mode,
 * 1 to 12 the high-compression (HC) levels.  none: any level.
 *
 * Like the library's other internal calls, these return a negative errno.
 */
#ifndef FL_CODEC_H
#define FL_CODEC_H

#include <stddef.h>
#include <sys/types.h>

/*
 * 0 if algorithm and level can be used here; -EINVAL for an algorithm
 * that does not exist or a level out of its range; -EOPNOTSUPP for an
 * algorithm this build of the library lacks.
 */
int codec_check(int algorithm, int level);

/* "none", "zstd", "lz4", or "?" for an algorithm that does not exist. */
const char *codec_name(int algorithm);

/*
 * Compress src[0..len) into dst[0..cap).  Returns the compressed length,
 * or -ENOSPC if the result does not fit in cap (the data does not
 * compress that well: the caller stores it raw), -ENOMEM, or an error of
 * codec_check.  len must be below 1 GiB.
 */
ssize_t codec_compress(int algorithm, int level, const void *src, size_t len,
		       void *dst, size_t cap);

/*
 * Decompress src[0..len), which codec_compress made from orig_len bytes,
 * into dst[0..orig_len).  Returns orig_len, or -EIO if src is not what
 * codec_compress made of orig_len bytes (corrupt), -ENOMEM, or an error
 * of codec_check.
 */
ssize_t codec_decompress(int algorithm, const void *src, size_t len, void *dst,
			 size_t orig_len);

#endif /* FL_CODEC_H */
