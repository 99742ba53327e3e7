// SPDX-License-Identifier: MIT
/*
 * `faultline cp SOURCE DEST`: copy an object between a file and a store
 * URL, either way (or file to file, URL to URL), through the stores'
 * own read and write: 8 MiB per call, which the Redis store sends as one
 * pipelined round trip.  A new Redis object gets the source's size; a
 * file destination is created or truncated, and chunks of zeros are left
 * as holes.  A progress line goes to stderr when it is a terminal.
 */
#include "cp.h"
#include "cli_util.h"
#include "store_url.h"

#include <errno.h>
#include <faultline.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CP_CHUNK (8u << 20)

struct cp {
	const char *src_name, *dst_name;
	int force;
	uint32_t block_size;
	struct fl_store *src, *dst; /* dst: NULL for a file */
	int dst_fd;
	uint64_t size;
};

void cp_usage(FILE *f)
{
	fprintf(f,
		"usage: faultline cp [--force] [--block-size SIZE] SOURCE "
		"DEST\n"
		"Copy an object: SOURCE and DEST are each a file or a store "
		"URL,\n"
		"  redis://HOST[:PORT]/PREFIX                  one Redis "
		"server\n"
		"  redis+cluster://HOST[:PORT],.../PREFIX      Redis Cluster "
		"(seeds)\n"
		"A new Redis object gets SOURCE's size; an existing one of "
		"that size is\n"
		"overwritten, one of another size is refused unless --force "
		"(which\n"
		"deletes it first).  A file DEST is created or truncated "
		"(zeros left\n"
		"as holes).  A progress line is shown on a terminal.\n\n"
		"  --force            replace a Redis object of another "
		"size\n"
		"  --block-size SIZE  block size of a new Redis object "
		"(default 64K)\n");
}

static int cp_parse(struct cp *c, int argc, char **argv)
{
	const char *v, *why;
	int i, r, pos = 0;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			cp_usage(stdout);
			exit(0);
		} else if (!strcmp(argv[i], "--force")) {
			c->force = 1;
		} else if ((r = opt_value(argc, argv, &i, "--block-size",
					  &v)) != 0) {
			uint64_t bs;

			if (r < 0)
				return -1;
			why = parse_size(v, &bs);
			if (!why && (bs == 0 || bs % 4096 || bs > (64u << 20)))
				why = "not a multiple of 4K up to 64M";
			if (why) {
				cli_error("cp: bad --block-size '%s': %s", v,
					  why);
				return -1;
			}
			c->block_size = (uint32_t)bs;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			cli_error("cp: unknown option '%s' (see faultline cp "
				  "--help)",
				  argv[i]);
			return -1;
		} else if (pos == 0) {
			c->src_name = argv[i];
			pos++;
		} else if (pos == 1) {
			c->dst_name = argv[i];
			pos++;
		} else {
			cli_error("cp: unexpected argument '%s'", argv[i]);
			return -1;
		}
	}
	if (pos != 2) {
		cli_error("cp: SOURCE and DEST are needed (see faultline cp "
			  "--help)");
		return -1;
	}
	return 0;
}

static int open_source(struct cp *c)
{
	int64_t size;

	c->src = is_store_url(c->src_name)
			 ? fl_store_redis_open(c->src_name, NULL)
			 : fl_store_file_open(c->src_name, O_RDONLY);
	if (!c->src) {
		cli_error("cp: cannot open %s: %s", c->src_name,
			  strerror(errno));
		return -1;
	}
	size = c->src->ops->size(c->src);
	if (size < 0) {
		cli_error("cp: size of %s: %s", c->src_name, strerror(errno));
		return -1;
	}
	c->size = (uint64_t)size;
	return 0;
}

/* A Redis object of c->size at dst_name (replaced with --force). */
static int open_dest_store(struct cp *c)
{
	struct fl_redis_options o = {.create_size = c->size,
				     .block_size = c->block_size};
	int64_t have;

	if (c->size == 0) {
		cli_error("cp: %s is empty: a Redis object has a size",
			  c->src_name);
		return -1;
	}
	c->dst = fl_store_redis_open(c->dst_name, &o);
	if (!c->dst)
		goto fail;
	have = c->dst->ops->size(c->dst);
	if ((uint64_t)have == c->size)
		return 0;
	if (!c->force) {
		cli_error("cp: %s exists with another size (%lld bytes; use "
			  "--force to replace it)",
			  c->dst_name, (long long)have);
		return -1;
	}
	c->dst->ops->destroy(c->dst);
	c->dst = NULL;
	if (fl_store_redis_remove(c->dst_name, NULL))
		goto fail;
	c->dst = fl_store_redis_open(c->dst_name, &o);
	if (c->dst)
		return 0;
fail:
	cli_error("cp: cannot open %s: %s", c->dst_name, strerror(errno));
	return -1;
}

static int open_dest(struct cp *c)
{
	if (is_store_url(c->dst_name))
		return open_dest_store(c);
	c->dst_fd = open(c->dst_name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			 0644);
	if (c->dst_fd < 0 || ftruncate(c->dst_fd, (off_t)c->size)) {
		cli_error("cp: cannot write %s: %s", c->dst_name,
			  strerror(errno));
		return -1;
	}
	return 0;
}

/* Read exactly n bytes at off (the file store may read in pieces; a read
 * is asked for whole pages, as the stores expect). */
static int read_chunk(struct cp *c, char *buf, size_t n, uint64_t off)
{
	size_t done = 0;

	while (done < n) {
		size_t want = (n - done + 4095) & ~(size_t)4095;
		ssize_t r =
			c->src->ops->read(c->src, buf + done, want, off + done);

		if (r <= 0) {
			cli_error("cp: reading %s: %s", c->src_name,
				  r < 0 ? strerror(errno) : "short read");
			return -1;
		}
		done += (size_t)r;
	}
	return 0;
}

static int all_zero(const char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

static int write_chunk(struct cp *c, const char *buf, size_t n, uint64_t off)
{
	size_t done = 0;

	if (c->dst) {
		if (c->dst->ops->write(c->dst, buf, n, off) == (ssize_t)n)
			return 0;
	} else if (all_zero(buf, n)) {
		return 0; /* a hole: the file reads zeros there already */
	} else {
		while (done < n) {
			ssize_t w = pwrite(c->dst_fd, buf + done, n - done,
					   (off_t)(off + done));

			if (w <= 0)
				break;
			done += (size_t)w;
		}
		if (done == n)
			return 0;
	}
	cli_error("cp: writing %s: %s", c->dst_name, strerror(errno));
	return -1;
}

static void progress(const struct cp *c, uint64_t done, double t0, int last)
{
	char a[32], b[32];
	double s = now_seconds() - t0;

	fprintf(stderr, "\r%s / %s (%3.0f%%) %.1f MiB/s%s",
		format_size(done, a, sizeof(a)),
		format_size(c->size, b, sizeof(b)),
		c->size ? 100.0 * (double)done / (double)c->size : 100.0,
		s > 0 ? (double)done / (1 << 20) / s : 0.0,
		last ? "\n" : "   ");
}

static int cp_copy(struct cp *c)
{
	int tty = isatty(2);
	double t0 = now_seconds();
	char *buf = NULL;
	uint64_t off;

	if (posix_memalign((void **)&buf, 4096, CP_CHUNK)) {
		cli_error("cp: out of memory");
		return -1;
	}
	for (off = 0; off < c->size; off += CP_CHUNK) {
		size_t n = c->size - off < CP_CHUNK ? (size_t)(c->size - off)
						    : CP_CHUNK;

		if (read_chunk(c, buf, n, off) || write_chunk(c, buf, n, off))
			break;
		if (tty)
			progress(c, off + n, t0, 0);
	}
	free(buf);
	if (tty)
		progress(c, off < c->size ? off : c->size, t0, 1);
	if (off < c->size)
		return -1;
	if (c->dst_fd >= 0 && fsync(c->dst_fd)) {
		cli_error("cp: fsync %s: %s", c->dst_name, strerror(errno));
		return -1;
	}
	printf("copied %llu bytes from %s to %s in %.3f s\n",
	       (unsigned long long)c->size, c->src_name, c->dst_name,
	       now_seconds() - t0);
	return 0;
}

int cp_main(int argc, char **argv)
{
	struct cp c = {.dst_fd = -1};
	int ret = 1;

	if (cp_parse(&c, argc, argv) < 0)
		return 2;
	if (open_source(&c) == 0 && open_dest(&c) == 0 && cp_copy(&c) == 0)
		ret = 0;
	if (c.src)
		c.src->ops->destroy(c.src);
	if (c.dst)
		c.dst->ops->destroy(c.dst);
	if (c.dst_fd >= 0 && close(c.dst_fd) && ret == 0) {
		cli_error("cp: close %s: %s", c.dst_name, strerror(errno));
		ret = 1;
	}
	return ret;
}
