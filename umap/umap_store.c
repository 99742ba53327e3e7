// SPDX-License-Identifier: MIT
/*
 * The forwarding store of umap_ex: a region owns the caller's store only
 * once it is mapped.  faultline's object owns its store from
 * fl_object_create on, so a failed fl_mmap after it would destroy the
 * caller's store; the region's object owns this wrapper instead, which
 * destroys the inner store only once adopted.
 *
 * Every op forwards to the inner store, from whichever engine thread
 * calls it; the wrapper adds no state that changes after adoption, so it
 * needs no lock of its own.
 */
#include "umap_int.h"

#include <errno.h>
#include <stdlib.h>

struct umap_store {
	struct fl_store base; /* first: the engine sees this */
	struct fl_store *inner;
	int owned;
};

static struct fl_store *inner_of(struct fl_store *s)
{
	return ((struct umap_store *)s)->inner;
}

static ssize_t fwd_read(struct fl_store *s, void *buf, size_t len, uint64_t off)
{
	struct fl_store *in = inner_of(s);

	return in->ops->read(in, buf, len, off);
}

static ssize_t fwd_write(struct fl_store *s, const void *buf, size_t len,
			 uint64_t off)
{
	struct fl_store *in = inner_of(s);

	if (!in->ops->write) {
		errno = EROFS;
		return -1;
	}
	return in->ops->write(in, buf, len, off);
}

static int64_t fwd_size(struct fl_store *s)
{
	struct fl_store *in = inner_of(s);

	return in->ops->size(in);
}

static int fwd_flush(struct fl_store *s)
{
	struct fl_store *in = inner_of(s);

	return in->ops->flush ? in->ops->flush(in) : 0;
}

static void fwd_cancel(struct fl_store *s)
{
	struct fl_store *in = inner_of(s);

	if (in->ops->cancel)
		in->ops->cancel(in);
}

/* The requests go to the inner store as they are: it completes them with
 * fl_store_io_complete, which knows nothing of the wrapper. */
static int fwd_submit(struct fl_store *s, struct fl_store_io *const *ios,
		      unsigned n)
{
	struct fl_store *in = inner_of(s);

	if (!in->ops->submit) {
		errno = EOPNOTSUPP;
		return -1;
	}
	return in->ops->submit(in, ios, n);
}

static int fwd_discard(struct fl_store *s, uint64_t off, uint64_t len)
{
	struct fl_store *in = inner_of(s);

	if (!in->ops->discard) {
		errno = EOPNOTSUPP;
		return -1;
	}
	return in->ops->discard(in, off, len);
}

static void fwd_destroy(struct fl_store *s)
{
	struct umap_store *w = (struct umap_store *)s;

	if (w->owned && w->inner->ops->destroy)
		w->inner->ops->destroy(w->inner);
	free(w);
}

static const struct fl_store_ops fwd_ops = {
	.read = fwd_read,
	.write = fwd_write,
	.size = fwd_size,
	.flush = fwd_flush,
	.destroy = fwd_destroy,
	.cancel = fwd_cancel,
	.submit = fwd_submit,
	.discard = fwd_discard,
};

struct fl_store *umap_store_wrap(struct fl_store *inner)
{
	struct umap_store *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->base.ops = &fwd_ops;
	w->base.read_only = inner->read_only || !inner->ops->write;
	w->inner = inner;
	return &w->base;
}

void umap_store_adopt(struct fl_store *wrapper)
{
	((struct umap_store *)wrapper)->owned = 1;
}
