/* SPDX-License-Identifier: MIT */
/*
 * umap/umap.h: LLNL UMap's public C API, served by faultline.
 *
 * Link with -lfaultline-umap.  A program written for UMap builds against
 * this header and runs with faultline's fault path: every region is a
 * faultline mapping of the file (or store), in one engine per process, and
 * every region's pages are charged to one memory group whose limit is the
 * UMap buffer (UMAP_BUFSIZE pages of UMAP_PAGESIZE bytes).  Where the
 * behaviour differs from UMap's, docs/umap.md says how and why.
 *
 * Environment, read once, when the library is first used:
 *   UMAP_PAGESIZE                    UMap page size in bytes, a multiple of
 *                                    the system page size (default: the
 *                                    system page size)
 *   UMAP_BUFSIZE                     UMap pages the buffer may hold: the
 *                                    group's hard limit (default: 90% of
 *                                    free memory)
 *   UMAP_PAGE_FILLERS                threads reading from stores (default:
 *                                    one per CPU; faultline's I/O threads)
 *   UMAP_PAGE_EVICTORS               accepted and reported; faultline's
 *                                    reclaim has no thread count
 *   UMAP_EVICT_HIGH_WATER_THRESHOLD  percent of the buffer above which pages
 *                                    are evicted in the background (90)
 *   UMAP_EVICT_LOW_WATER_THRESHOLD   percent to evict down to (70; accepted
 *                                    and reported, see docs/umap.md)
 *   UMAP_READ_AHEAD                  UMap pages read beyond the faulting
 *                                    one (default 0 = faultline's adaptive
 *                                    readahead, see docs/umap.md)
 * A malformed or out-of-range value is ignored (a warning on stderr) and
 * the default kept.  The umapcfg_set_* calls change the same settings;
 * made before the first region is mapped, they all apply; afterwards only
 * the buffer size and the thresholds do (the others are ignored, with a
 * warning, until every region is unmapped).
 *
 * All calls are thread-safe.  Errors are returned as mmap(2) returns them:
 * UMAP_FAILED or -1 with errno set.
 */
#ifndef FAULTLINE_UMAP_H
#define FAULTLINE_UMAP_H

#include <faultline.h>

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <unistd.h>

/* Flags: one of UMAP_PRIVATE or MAP_SHARED, optionally UMAP_FIXED. */
#define UMAP_PRIVATE MAP_PRIVATE
#define UMAP_FIXED   MAP_FIXED

/* What umap and umap_ex return on failure. */
#define UMAP_FAILED ((void *)-1)

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Map length bytes of the file open as fd, from byte offset (a multiple of
 * the system page size), as a region of memory whose page faults faultline
 * serves; pages read come from the file and dirty pages are written back to
 * it (on umap_flush, uunmap, eviction and at exit), with UMAP_PRIVATE as
 * with MAP_SHARED (as in UMap, where "private" means "not shared with other
 * processes").  Regions of the same file share one page cache, so stores
 * through one are seen at once through the others.  The file is opened
 * anew through /proc/self/fd (O_DIRECT where the file system allows): the
 * caller keeps fd and may close it.  An fd open read-only with PROT_WRITE
 * gives a region whose stores stay in memory (copy-on-write) and never
 * reach the file.
 * addr is a hint, or with UMAP_FIXED the address (page aligned) to map at.
 * length need not be a multiple of the UMap page size.
 * Errors: EINVAL (zero length, bad flags or prot, unaligned offset or fixed
 * address, UMAP_FIXED over another region), EBADF (fd not open), EACCES
 * (fd open write-only), errors of fl_mmap(3) (ENOMEM, EOVERFLOW, ...), and
 * at the first call those of fl_engine_create(3) (EPERM: userfaultfd not
 * permitted; ENOSYS).
 */
void *umap(void *addr, size_t length, int prot, int flags, int fd,
	   off_t offset);

/*
 * Map a region whose pages come from store, a faultline store (see
 * fl_object_create(3)), which the region then owns: its destroy op runs
 * when the region is unmapped.  fd is ignored.  The store is the object
 * mapped: byte x of the region is byte offset + x of the store, and its
 * size op bounds the region as a file's size does.  The store is writable
 * (dirty pages written back) unless it has no write op or is read_only.
 * On failure the store is left to the caller.  Errors: as umap, and EINVAL
 * for a NULL store or a store faultline refuses (fl_object_create(3)).
 * C++ programs use Umap::umap_ex with a Umap::Store, below.
 */
void *umap_ex(void *addr, size_t length, int prot, int flags, int fd,
	      off_t offset, struct fl_store *store);

/*
 * Unmap the region that starts at addr, writing its dirty pages back
 * first.  As in UMap, the whole region goes: length is not used.  Returns
 * 0, or -1 with EINVAL (no region starts at addr) or EIO (a write-back
 * failed; the region is unmapped anyway).
 */
int uunmap(void *addr, size_t length);

/*
 * Write back the dirty pages of every region.  Returns 0, or -1 with EIO
 * if a store write failed (those pages stay dirty).
 */
int umap_flush(void);

struct umap_prefetch_item {
	void *page_base_addr;
};

/*
 * Read the UMap pages that contain each page_base_addr into memory now
 * (MADV_WILLNEED), charged to the buffer.  Addresses outside every region
 * are skipped.
 */
void umap_prefetch(int npages, struct umap_prefetch_item *page_array);

/*
 * Read [paddr, paddr + size) into memory now, like umap_prefetch.  The
 * pages are not pinned: faultline may evict them again under pressure.
 */
void umap_fetch_and_pin(char *paddr, uint64_t size);

/* 1: regions are writable and dirty pages are written back. */
int umap_has_write_support(void);

/* The settings (see the environment above).  Page sizes are in bytes,
 * the buffer in UMap pages, thresholds in percent. */
long umapcfg_get_system_page_size(void);
uint64_t umapcfg_get_umap_page_size(void);
void umapcfg_set_umap_page_size(uint64_t page_size);
uint64_t umapcfg_get_max_pages_in_buffer(void);
void umapcfg_set_max_pages_in_buffer(uint64_t max_pages);
uint64_t umapcfg_get_num_fillers(void);
void umapcfg_set_num_fillers(uint64_t num_fillers);
uint64_t umapcfg_get_num_evictors(void);
void umapcfg_set_num_evictors(uint64_t num_evictors);
uint64_t umapcfg_get_read_ahead(void);
void umapcfg_set_read_ahead(uint64_t num_pages);
int umapcfg_get_evict_high_water_threshold(void);
void umapcfg_set_evict_high_water_threshold(int percent);
int umapcfg_get_evict_low_water_threshold(void);
void umapcfg_set_evict_low_water_threshold(int percent);
/* Accepted and reported; faultline reads every fault message it gets. */
uint64_t umapcfg_get_max_fault_events(void);
void umapcfg_set_max_fault_events(uint64_t max_events);

#ifdef __cplusplus
}

/*
 * C++: UMap's custom stores.  Derive from Umap::Store, implement
 * read_from_store and write_to_store (pread/pwrite-shaped: bytes
 * transferred or -1; called concurrently from faultline's threads, so they
 * must be thread-safe; offsets are offsets in the store, the region
 * starting at offset), and pass it to Umap::umap_ex.  The store stays the
 * caller's: it must outlive the region (until uunmap).
 */
namespace Umap
{
class Store
{
      public:
	virtual ~Store()
	{
	}
	virtual ssize_t read_from_store(char *buf, size_t nb, off_t off) = 0;
	virtual ssize_t write_to_store(char *buf, size_t nb, off_t off) = 0;
	/* UMap's readahead hint: not used by faultline. */
	virtual int predict_offsets(off_t *offsets, off_t off)
	{
		(void)offsets;
		(void)off;
		return 0;
	}
};

/* The faultline store that forwards to a Umap::Store (header-only). */
struct StoreAdapter {
	struct fl_store base;
	Store *store;
	uint64_t size;
};

static inline StoreAdapter *store_adapter(struct fl_store *s)
{
	return reinterpret_cast<StoreAdapter *>(s);
}

static inline ssize_t store_adapter_read(struct fl_store *s, void *buf,
					 size_t len, uint64_t off)
{
	return store_adapter(s)->store->read_from_store(
		static_cast<char *>(buf), len, static_cast<off_t>(off));
}

static inline ssize_t store_adapter_write(struct fl_store *s, const void *buf,
					  size_t len, uint64_t off)
{
	return store_adapter(s)->store->write_to_store(
		static_cast<char *>(const_cast<void *>(buf)), len,
		static_cast<off_t>(off));
}

static inline int64_t store_adapter_size(struct fl_store *s)
{
	return static_cast<int64_t>(store_adapter(s)->size);
}

static inline void store_adapter_destroy(struct fl_store *s)
{
	delete store_adapter(s);
}

/* The ops by name, so that ops faultline adds later stay unset. */
static inline struct fl_store_ops store_adapter_ops()
{
	struct fl_store_ops ops = {};

	ops.read = store_adapter_read;
	ops.write = store_adapter_write;
	ops.size = store_adapter_size;
	ops.destroy = store_adapter_destroy;
	return ops;
}

/*
 * Map a region whose pages come from store (see Umap::Store); the store's
 * size is taken to be offset + length.  Returns UMAP_FAILED with errno as
 * umap_ex above.
 */
static inline void *umap_ex(void *addr, size_t length, int prot, int flags,
			    int fd, off_t offset, Store *store)
{
	static const struct fl_store_ops ops = store_adapter_ops();
	StoreAdapter *a;
	void *p;

	if (!store || offset < 0) {
		errno = EINVAL;
		return UMAP_FAILED;
	}
	a = new StoreAdapter();
	a->base.ops = &ops;
	a->base.read_only = 0;
	a->store = store;
	a->size = static_cast<uint64_t>(offset) + length;
	p = ::umap_ex(addr, length, prot, flags, fd, offset, &a->base);
	if (p == UMAP_FAILED)
		delete a;
	return p;
}
} /* namespace Umap */
#endif /* __cplusplus */

#endif /* FAULTLINE_UMAP_H */
