// SPDX-License-Identifier: MIT
/* System calls handed pointers into unfaulted faultline mappings: the
 * kernel's own accesses fault through the engine as a user's would. */
#define _GNU_SOURCE
#include "harness.h"

#include <stdlib.h>
#include <sys/uio.h>

#define LEN (64 * PG)

static unsigned char buf[LEN];

static int open_file(const struct h_file *f, int flags)
{
	int fd = open(f->path, flags | O_CLOEXEC);

	REQUIRE(fd >= 0);
	return fd;
}

/* read(2) from a file into an unfaulted shared mapping of another file. */
TEST(read_into_shared_mapping)
{
	struct h_file src, dst;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;
	int fd;

	h_file_create(&src, LEN, 61);
	h_file_create(&dst, LEN, 62);
	o = h_open(e, &dst, O_RDWR);
	p = h_map(e, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	fd = open_file(&src, O_RDONLY);
	CHECK_EQ(read(fd, p + PG, LEN - 2 * PG), LEN - 2 * PG);
	close(fd);
	CHECK_EQ(h_mismatch(p, PG, 62, 0), -1);
	CHECK_EQ(h_mismatch(p + PG, LEN - 2 * PG, 61, 0), -1);
	CHECK_EQ(h_mismatch(p + LEN - PG, PG, 62, LEN - PG), -1);
	CHECK_EQ(h_estats(e).dirty_pages, 62);
	CHECK_EQ(fl_msync(e, p, LEN, MS_SYNC), 0);
	CHECK_EQ(h_pread(dst.path, buf, LEN, 0), LEN);
	CHECK_EQ(h_mismatch(buf, PG, 62, 0), -1);
	CHECK_EQ(h_mismatch(buf + PG, LEN - 2 * PG, 61, 0), -1);
	CHECK_EQ(h_mismatch(buf + LEN - PG, PG, 62, LEN - PG), -1);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&src);
	h_file_remove(&dst);
}

/* read(2) into unfaulted anonymous memory, at an unaligned address. */
TEST(read_into_anonymous_mapping)
{
	struct h_file src;
	fl_engine *e = h_engine(2);
	unsigned char *p;
	int fd;

	h_file_create(&src, LEN, 63);
	p = h_map(e, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		  NULL, 0);
	fd = open_file(&src, O_RDONLY);
	CHECK_EQ(read(fd, p + 123, LEN - PG), LEN - PG);
	close(fd);
	CHECK_EQ(h_nonzero(p, 123), -1);
	CHECK_EQ(h_mismatch(p + 123, LEN - PG, 63, 0), -1);
	CHECK_EQ(h_nonzero(p + 123 + LEN - PG, PG - 123), -1);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&src);
}

/* read(2) into a private mapping makes copies; the file does not change */
TEST(read_into_private_mapping)
{
	struct h_file src, dst;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;
	int fd;

	h_file_create(&src, LEN, 64);
	h_file_create(&dst, LEN, 65);
	o = h_open(e, &dst, O_RDWR);
	p = h_map(e, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE, o, 0);
	fd = open_file(&src, O_RDONLY);
	CHECK_EQ(pread(fd, p, 8 * PG, 0), 8 * PG);
	close(fd);
	CHECK_EQ(h_mismatch(p, 8 * PG, 64, 0), -1);
	CHECK_EQ(h_mismatch(p + 8 * PG, LEN - 8 * PG, 65, 8 * PG), -1);
	CHECK_EQ(h_estats(e).cow_copies, 8);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	CHECK_EQ(h_pread(dst.path, buf, LEN, 0), LEN);
	CHECK_EQ(h_mismatch(buf, LEN, 65, 0), -1);
	h_file_remove(&src);
	h_file_remove(&dst);
}

/* write(2) from an unfaulted shared mapping into a pipe. */
TEST(write_from_mapping_to_pipe)
{
	struct h_file f;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;
	int pfd[2];
	size_t got = 0;

	h_file_create(&f, LEN, 66);
	o = h_open(e, &f, O_RDONLY);
	p = h_map(e, LEN, PROT_READ, MAP_PRIVATE, o, 0);
	REQUIRE(pipe(pfd) == 0);
	/* 40000 bytes fit in a default pipe (64 KiB) */
	CHECK_EQ(write(pfd[1], p + 5 * PG + 7, 40000), 40000);
	close(pfd[1]);
	while (got < 40000) {
		ssize_t r = read(pfd[0], buf + got, sizeof(buf) - got);

		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(pfd[0]);
	CHECK_EQ(got, 40000);
	CHECK_EQ(h_mismatch(buf, 40000, 66, 5 * PG + 7), -1);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
}

/* write(2) and writev(2) from unfaulted mappings into files, buffered and
 * O_DIRECT (get_user_pages on the mapping). */
TEST(write_from_mapping_to_file)
{
	struct h_file f, out;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p, *a;
	struct iovec iov[2];
	int fd;

	h_file_create(&f, LEN, 67);
	h_file_create(&out, LEN, 68);
	o = h_open(e, &f, O_RDWR);
	p = h_map(e, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	fd = open_file(&out, O_WRONLY);
	CHECK_EQ(write(fd, p, 16 * PG), 16 * PG);
	close(fd);
	CHECK_EQ(h_pread(out.path, buf, 16 * PG, 0), 16 * PG);
	CHECK_EQ(h_mismatch(buf, 16 * PG, 67, 0), -1);

	/* O_DIRECT from pages nobody touched yet */
	fd = open(out.path, O_WRONLY | O_DIRECT | O_CLOEXEC);
	REQUIRE(fd >= 0);
	CHECK_EQ(pwrite(fd, p + 32 * PG, 16 * PG, 0), 16 * PG);
	close(fd);
	CHECK_EQ(h_pread(out.path, buf, 16 * PG, 0), 16 * PG);
	CHECK_EQ(h_mismatch(buf, 16 * PG, 67, 32 * PG), -1);

	/* writev from anonymous memory and the mapping */
	a = h_map(e, 4 * PG, PROT_READ | PROT_WRITE,
		  MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	iov[0] = (struct iovec){a, 2 * PG};
	iov[1] = (struct iovec){p + 60 * PG, 2 * PG};
	fd = open_file(&out, O_WRONLY);
	CHECK_EQ(writev(fd, iov, 2), 4 * PG);
	close(fd);
	CHECK_EQ(h_pread(out.path, buf, 4 * PG, 0), 4 * PG);
	CHECK_EQ(h_nonzero(buf, 2 * PG), -1);
	CHECK_EQ(h_mismatch(buf + 2 * PG, 2 * PG, 67, 60 * PG), -1);
	CHECK_EQ(h_estats(e).errors, 0);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&f);
	h_file_remove(&out);
}

/* O_DIRECT read(2) into an unfaulted shared mapping, then writeback. */
TEST(direct_read_into_mapping)
{
	struct h_file src, dst;
	fl_engine *e = h_engine(2);
	fl_object *o;
	unsigned char *p;
	int fd;

	h_file_create(&src, LEN, 69);
	h_file_create(&dst, LEN, 70);
	o = h_open(e, &dst, O_RDWR);
	p = h_map(e, LEN, PROT_READ | PROT_WRITE, MAP_SHARED, o, 0);
	fd = open(src.path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	REQUIRE(fd >= 0);
	CHECK_EQ(pread(fd, p + 4 * PG, 8 * PG, 20 * PG), 8 * PG);
	close(fd);
	CHECK_EQ(h_mismatch(p + 4 * PG, 8 * PG, 69, 20 * PG), -1);
	CHECK_EQ(fl_munmap(e, p, LEN), 0);
	CHECK_EQ(h_pread(dst.path, buf, LEN, 0), LEN);
	CHECK_EQ(h_mismatch(buf, 4 * PG, 70, 0), -1);
	CHECK_EQ(h_mismatch(buf + 4 * PG, 8 * PG, 69, 20 * PG), -1);
	CHECK_EQ(h_mismatch(buf + 12 * PG, LEN - 12 * PG, 70, 12 * PG), -1);
	CHECK_EQ(fl_object_close(o), 0);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&src);
	h_file_remove(&dst);
}

/* read(2) into a PROT_READ mapping fails with EFAULT, as with mmap. */
TEST(read_into_readonly_mapping_efault)
{
	struct h_file src;
	fl_engine *e = h_engine(1);
	unsigned char *p;
	int fd;

	h_file_create(&src, 4 * PG, 71);
	p = h_map(e, 4 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, NULL, 0);
	fd = open_file(&src, O_RDONLY);
	CHECK_ERR(read(fd, p, 4 * PG) == -1, EFAULT);
	close(fd);
	CHECK_EQ(h_nonzero(p, 4 * PG), -1);
	CHECK_EQ(fl_engine_destroy(e), 0);
	h_file_remove(&src);
}
