/* SPDX-License-Identifier: MIT */
/*
 * The file store.  Reads and writes bypass the kernel's page cache with
 * O_DIRECT where the file system allows it, so faultline's page cache is
 * the only copy of the data in memory.  A write of the file's last,
 * partial page goes through a second, buffered descriptor, because O_DIRECT
 * can only write whole blocks and must not extend the file.  Where the
 * library has io_uring, reads and writeback's writes are also submitted
 * asynchronously through the engine's ring (aio.c), several in flight at
 * once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aio.h"
#include "faultline.h"

#define DIRECT_ALIGN 4096

struct file_store {
	struct fl_store base;
	int fd;		 /* O_DIRECT where possible */
	int buffered_fd; /* for unaligned tails; -1 if fd is buffered */
	int direct;
};

static struct file_store *to_file(struct fl_store *s)
{
	return (struct file_store *)s;
}

static ssize_t file_read(struct fl_store *s, void *buf, size_t len,
			 uint64_t off)
{
	return pread(to_file(s)->fd, buf, len, (off_t)off);
}

#ifdef FL_HAVE_LIBURING
/* Reads and writes go to the engine's io_uring; without one, the engine
 * reads with file_read on an I/O thread and writes with file_write.  A
 * direct write that is not whole blocks (the file's partial last page)
 * is refused here: file_write sends it through the buffered descriptor. */
static int file_submit(struct fl_store *s, struct fl_store_io *const *ios,
		       unsigned n)
{
	struct file_store *f = to_file(s);
	unsigned ok = 0;
	int started;

	while (ok < n && !(ios[ok]->write && f->direct &&
			   (ios[ok]->len & (DIRECT_ALIGN - 1))))
		ok++;
	if (ok == 0) {
		errno = EOPNOTSUPP;
		return -1;
	}
	started = aio_ring_rw(ios, ok, f->fd);
	if (started < 0) {
		errno = -started;
		return -1;
	}
	return started;
}
#endif

static ssize_t file_write(struct fl_store *s, const void *buf, size_t len,
			  uint64_t off)
{
	struct file_store *f = to_file(s);
	size_t aligned = len & ~(size_t)(DIRECT_ALIGN - 1);
	ssize_t done;

	if (!f->direct || aligned == len)
		return pwrite(f->fd, buf, len, (off_t)off);
	if (aligned) /* the whole blocks first; the caller loops for the rest */
		return pwrite(f->fd, buf, aligned, (off_t)off);
	done = pwrite(f->buffered_fd, buf, len, (off_t)off);
	/* Direct reads flush the kernel's cache first: stay coherent. */
	return done;
}

static int64_t file_size(struct fl_store *s)
{
	struct stat st;

	if (fstat(to_file(s)->fd, &st))
		return -1;
	return st.st_size;
}

static int file_flush(struct fl_store *s)
{
	struct file_store *f = to_file(s);

	if (f->buffered_fd >= 0 && fdatasync(f->buffered_fd))
		return -1;
	return fdatasync(f->fd);
}

static void file_destroy(struct fl_store *s)
{
	struct file_store *f = to_file(s);

	close(f->fd);
	if (f->buffered_fd >= 0)
		close(f->buffered_fd);
	free(f);
}

/* Give the range's space back to the file system: a hole, reading zeros. */
static int file_discard(struct fl_store *s, uint64_t off, uint64_t len)
{
	return fallocate(to_file(s)->fd,
			 FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			 (off_t)len);
}

static const struct fl_store_ops file_store_ops = {
	.read = file_read,
	.write = file_write,
	.size = file_size,
	.flush = file_flush,
	.destroy = file_destroy,
	.discard = file_discard,
#ifdef FL_HAVE_LIBURING
	.submit = file_submit,
#endif
};

/* 0 if fd is a regular file; else -1 with EISDIR or EINVAL (a FIFO, a
 * device, a socket: nothing with a size that pages can be read from). */
static int file_check_type(int fd)
{
	struct stat st;

	if (fstat(fd, &st))
		return -1;
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		return -1;
	}
	if (!S_ISREG(st.st_mode)) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/*
 * Open path without blocking: O_NONBLOCK, because open(2) of a FIFO waits
 * for a writer, which a file that is refused anyway must not do.  A
 * regular file whose lease is being broken answers EWOULDBLOCK: it is
 * opened again, waiting as open(2) does.
 */
static int file_open_nonblock(const char *path, int flags)
{
	int fd = open(path, flags | O_NONBLOCK);

	if (fd < 0 && errno == EWOULDBLOCK)
		fd = open(path, flags);
	return fd;
}

/*
 * Open path, with O_DIRECT if the file system takes it; refuse what is not
 * a regular file (see file_check_type) before anything could block on it.
 */
static int file_open_fd(const char *path, int mode, int *direct)
{
	int fd = file_open_nonblock(path, mode | O_CLOEXEC | O_DIRECT);
	int flags;

	*direct = fd >= 0;
	if (fd < 0 && errno == EINVAL) /* tmpfs and friends */
		fd = file_open_nonblock(path, mode | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (file_check_type(fd) || (flags = fcntl(fd, F_GETFL)) < 0 ||
	    fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

struct fl_store *fl_store_file_open(const char *path, int flags)
{
	int mode = flags & O_ACCMODE, saved;
	struct file_store *f;

	if (!path || (mode != O_RDONLY && mode != O_RDWR)) {
		errno = EINVAL;
		return NULL;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->base.ops = &file_store_ops;
	f->base.read_only = mode == O_RDONLY;
	f->buffered_fd = -1;
	f->fd = file_open_fd(path, mode, &f->direct);
	if (f->fd < 0)
		goto fail;
	if (f->direct && mode == O_RDWR) {
		f->buffered_fd = open(path, mode | O_CLOEXEC);
		if (f->buffered_fd < 0)
			goto fail;
	}
	return &f->base;
fail:
	saved = errno;
	if (f->fd >= 0)
		close(f->fd);
	free(f);
	errno = saved;
	return NULL;
}

int fl_store_file_is_direct(const struct fl_store *s)
{
	return s && s->ops == &file_store_ops &&
	       ((const struct file_store *)s)->direct;
}
