/* SPDX-License-Identifier: MIT */
/*
 * faultline: a user-space virtual-memory engine.
 *
 * faultline hands out ordinary pointers whose page faults it serves itself,
 * through Linux userfaultfd, the way the kernel's fault path would: a page
 * cache shared by every mapping of an object, page locks, copy-on-write for
 * private mappings, fault-around and batched store reads, writeback of dirty
 * pages, and SIGBUS for faults that cannot be served.
 *
 * Every call that can fail returns -1 (or NULL, or MAP_FAILED) and sets
 * errno, like the system calls it mirrors; a NULL engine, object or stats
 * pointer is EINVAL everywhere.  All calls are thread-safe.
 *
 * Faults that cannot be served (a store read error, a page wholly beyond
 * the end of the object, no memory under FL_OOM_FAIL) reach the faulting
 * thread as one SIGBUS with si_addr set, as with mmap; a system call handed
 * such an address fails with EFAULT.  The page then stays poisoned: later
 * accesses raise SIGBUS without reaching faultline (so `errors` counts each
 * poisoning once) until fl_madvise(MADV_DONTNEED) or fl_munmap of the page
 * clears it.  Only if the kernel refuses faultline's own calls to place
 * the poison is the SIGBUS sent to the thread directly (si_code SI_QUEUE,
 * si_addr still set), for that access alone.
 *
 * Requirements: Linux >= 6.6 with userfaultfd, and permission to use it
 * (root, vm.unprivileged_userfaultfd=1, or read/write access to
 * /dev/userfaultfd).
 */
#ifndef FAULTLINE_H
#define FAULTLINE_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FAULTLINE_VERSION "0.1.0"

typedef struct fl_engine fl_engine;
typedef struct fl_object fl_object;

/* ------------------------------------------------------------------------
 * Engine
 * ------------------------------------------------------------------------ */

/* Engine configuration.  Zero in a field means "the default". */
struct fl_config {
	/* Handler threads serving faults (default: one per online CPU; with
	 * local polling, see handler_poll_us, at least one per CPU of the
	 * process's CPU set and one more). */
	unsigned handler_threads;
	/* Most pages mapped by one fault on pages already in the page cache
	 * (fault-around; default 4096).  The window starts at 16 pages
	 * around the fault and grows fourfold, forward, while a mapping's
	 * faults are sequential.  1 disables fault-around. */
	unsigned fault_around_pages;
	/* Pages read from the store in one batch on a major fault, and per
	 * window read ahead (default 2048, i.e. 8 MiB).  While a mapping's
	 * faults are sequential, two windows are read ahead of the reader
	 * in the background.  1 reads only the faulting page. */
	unsigned readahead_pages;
	/* Most pages zero-filled in one go on a write fault to anonymous
	 * memory (default 256, 1 MiB; at most 512).  A lone write fills one
	 * page; the window grows fourfold (1, 4, 16, 64, 256) while a
	 * mapping's writes move forward in order, so at most this much is
	 * spent (and charged) ahead of a sequential writer.  1 fills only
	 * the faulting page. */
	unsigned anon_fault_around_pages;
	/* Print the engine's statistics to stderr when it is destroyed. */
	int print_stats_at_destroy;
	/* Threads that run store reads for faults and readahead (default
	 * 2; more are started, up to 64, while all are busy, so that a
	 * stalled store never stalls the engine). */
	unsigned io_threads;
	/*
	 * Comparison mode, for the `retry` benchmark only: keep the map lock
	 * across store reads, as the kernel did before it learned to retry
	 * (2010).  Map, unmap and protect then wait for every read in flight.
	 * Never the default.
	 */
	int hold_map_lock_for_io;
	/*
	 * How long a handler thread keeps polling for work before it sleeps,
	 * in microseconds: after it served a fault or a store completion, one
	 * handler at a time (the others sleep) polls the userfaultfd and the
	 * completion ring, so that the next fault, or the read it just
	 * submitted, is taken without a wake-up (each costs tens of
	 * microseconds on a virtual machine).  It stops at once when it finds
	 * itself descheduled (a busy machine).  Where the process may leave
	 * SCHED_IDLE again (CAP_SYS_NICE, or RLIMIT_NICE 20), it polls in that
	 * class: it then runs only on a CPU nobody else wants, and the thread
	 * it wakes stays on its CPU (FAULTLINE_POLL_IDLE=0: never); while
	 * one thread faults alone, the poller moves to that thread's CPU
	 * (counted in poller_moves) so that its wake-up stays there.  There,
	 * with FAULTLINE_POLL_LOCAL=1 (off by default) and 2 to 64 CPUs in
	 * the process's CPU set, a handler is pinned to each CPU and they all
	 * poll (local polling: the poller of the CPU a fault came from reads
	 * it, and wakes its thread there; at least one handler more than
	 * CPUs is started; while faults come from several threads at once,
	 * one handler polls at a time, unpinned); they poll up to 2 ms while
	 * a fault waits for a store read or I/O-thread work.  While most
	 * recent faults (a running average over about 16) waited for a random
	 * read (MADV_RANDOM, or read-around that kept going unused), whether
	 * polling pays depends on the machine, and the engine tries it: 128
	 * such faults served without polling (counted in polls_skipped), 128
	 * polling, and the way under which they came faster is kept for the
	 * next 2048 before both are tried again (docs/design.md, "Polling
	 * through random reads").  0: the default
	 * (300 with more than one CPU online, else never); -1: never poll; at
	 * most 10000.
	 */
	int handler_poll_us;
};

/*
 * Fill *config with the defaults, then apply the environment overrides:
 *   FAULTLINE_THREADS=N        handler threads
 *   FAULTLINE_FAULT_AROUND=N   most fault-around pages
 *   FAULTLINE_READAHEAD=N      store read batch, in pages
 *   FAULTLINE_ANON_AROUND=N    anonymous zero-fill batch, in pages
 *   FAULTLINE_IO_THREADS=N     background readahead threads
 *   FAULTLINE_POLL_US=N        handler polling, in microseconds (0: never)
 *   FAULTLINE_POLL_IDLE=0      poll in the normal scheduling class, not in
 *                              SCHED_IDLE (read at fl_engine_create)
 *   FAULTLINE_POLL_LOCAL=1     local polling: a poller on every CPU, not
 *                              one at a time (read at fl_engine_create)
 *   FAULTLINE_STATS=1          print statistics when the engine is destroyed
 *   FAULTLINE_IO_URING=0       no io_uring: file stores read on I/O threads
 *                              (read at fl_engine_create, not a field)
 * A malformed value is ignored and the default kept.
 */
void fl_config_init(struct fl_config *config);

/*
 * Create an engine: open a userfaultfd and start the handler threads.
 * config may be NULL (defaults plus environment, as fl_config_init).
 * Errors: EPERM (userfaultfd not permitted), ENOSYS (kernel lacks a needed
 * userfaultfd feature), ENOTSUP (a base page size other than 4 KiB),
 * EINVAL (a field out of range), ENOMEM, EMFILE.
 */
fl_engine *fl_engine_create(const struct fl_config *config);

/*
 * Write back every dirty page, unmap every mapping, release every object
 * (also those the caller did not close: their handles become invalid),
 * stop and join the handler threads and free everything.  Returns 0, or -1
 * with errno EIO if some dirty data could not be written back (everything is
 * freed anyway).  EINVAL for a NULL engine.
 */
int fl_engine_destroy(fl_engine *engine);

/* ------------------------------------------------------------------------
 * Stores: where an object's data lives
 * ------------------------------------------------------------------------ */

struct fl_store;
struct fl_store_io;

/*
 * Store operations.  read and write mirror pread(2)/pwrite(2): they return
 * the number of bytes transferred (read returns fewer at the end of the
 * store) or -1 with errno set.  They are the simple, blocking path: read
 * runs on the engine's I/O threads (and in fl_madvise(MADV_WILLNEED)
 * callers), write in whoever writes back (fl_msync, fl_munmap,
 * fl_object_close, fl_engine_destroy callers, I/O threads reclaiming),
 * concurrently, so they must be thread-safe.  submit (below) is the
 * optional asynchronous path.
 * buf, len and off are always multiples of the page size, except that a
 * write of the store's last page is cut to the store's size.
 * A write's buf may change while the write runs: it is the page cache,
 * and a program's store to a page being written is let through (the page
 * is then dirty again and written later, as with the kernel's writeback).
 * A store that reads buf more than once (to compress or checksum it, say)
 * must copy it first, or what it keeps may match no version of the data.
 */
struct fl_store_ops {
	ssize_t (*read)(struct fl_store *store, void *buf, size_t len,
			uint64_t off);
	ssize_t (*write)(struct fl_store *store, const void *buf, size_t len,
			 uint64_t off);
	/* Size of the store in bytes, or -1 with errno. */
	int64_t (*size)(struct fl_store *store);
	/* Optional: make completed writes durable (fsync).  0 or -1. */
	int (*flush)(struct fl_store *store);
	/* Release the store's resources. */
	void (*destroy)(struct fl_store *store);
	/*
	 * Optional: stop waiting.  Reads and writes in progress return as
	 * soon as they can (failing with ECANCELED if they cannot complete),
	 * and later ones do not wait (no hold, no added delay).  Called at
	 * engine destroy before the engine waits for its threads; the store
	 * stays usable for writeback afterwards.
	 */
	void (*cancel)(struct fl_store *store);
	/*
	 * Optional: asynchronous, batched I/O.  Start the n requests of ios
	 * (struct fl_store_io below) and return without waiting for them:
	 * the number started (the first ones of ios, in order), or -1 with
	 * errno if none was (EOPNOTSUPP: not now; the engine then uses read
	 * on one of its I/O threads instead, so a store may refuse any call).
	 * Each started request is completed exactly once with
	 * fl_store_io_complete, from any thread (the store's own, or inside
	 * submit itself).  Called with no engine lock held, from the engine's
	 * handler threads (faults that miss the cache: no fault waits in a
	 * thread for the store) and I/O threads; it must not block for long,
	 * and never for the I/O it starts.  Requests may complete in any
	 * order and overlap in time, which is the point: several faults'
	 * reads are in flight at once.  After cancel, requests still held
	 * must complete soon (with -ECANCELED if they cannot):
	 * fl_engine_destroy waits for every started request.  The engine
	 * submits one range per request: reads of faults and readahead, and
	 * writes (write = 1) of writeback, from the engine's threads (the
	 * flusher, reclaim) and from threads calling fl_msync, fl_munmap or
	 * fl_object_close.  A write that fails is not lost: its pages stay
	 * dirty; a refused one is written with write at once.
	 * A store without submit has every read run by read on an I/O
	 * thread and every write by write.  The file store implements it
	 * with io_uring where the library was built with liburing and the
	 * kernel allows it.
	 */
	int (*submit)(struct fl_store *store, struct fl_store_io *const *ios,
		      unsigned n);
	/*
	 * Optional: the data of [off, off+len) is no longer needed (off and
	 * len are multiples of the page size), so the store may give back
	 * the space it takes.  The store's size does not change; what the
	 * range reads afterwards is the store's choice (the file store
	 * punches a hole with fallocate(FALLOC_FL_PUNCH_HOLE), so it reads
	 * as zeros).  Returns 0, or -1 with errno (EOPNOTSUPP: the store or
	 * its file system cannot); callers take it as advice and go on
	 * either way.  Called like write, concurrently, with no engine lock
	 * held.  The compressed store calls it for the unused tail of each
	 * block it writes; the engine does not call it.
	 */
	int (*discard)(struct fl_store *store, uint64_t off, uint64_t len);
};

/*
 * One asynchronous store request (see fl_store_ops.submit).  The engine
 * owns it and fills it in; it stays valid until completed.  buf, len and
 * off are as for read and write; the store must not touch buf (nor
 * buf_fd) after the completion.
 *
 * buf_fd: for a read, a file that buf is a shared mapping of (the memfd
 * behind the engine's page cache), at buf_fd_off; -1 when there is none.
 * A store that copies data it has received (from a socket, a
 * decompressor) may pwrite it there instead of copying it to buf: the
 * same bytes land in the same pages, and the kernel does not have to map
 * buf's pages (allocate, zero, map and later unmap each) first.
 */
struct fl_store_io {
	int write; /* 0: read into buf; 1: write from buf (writeback) */
	void *buf;
	size_t len;
	uint64_t off;
	void *store_data; /* the store's, between submit and completion */
	int buf_fd;	  /* reads: buf as a file, or -1 */
	uint64_t buf_fd_off;
};

/*
 * Complete a started request: result as read/write return it (bytes
 * transferred, fewer at the end of the store) or a negative errno.  Any
 * thread may call it, once per request, holding no lock the store's
 * submit takes; it only queues the request for one of the engine's
 * handler threads, which checks the data, marks the pages read (or
 * handles the error as for read: SIGBUS for the fault that needed it) and
 * resumes the faults that waited.
 */
void fl_store_io_complete(struct fl_store_io *io, ssize_t result);

/* A store: embed this as the first member of your own store structure. */
struct fl_store {
	const struct fl_store_ops *ops;
	/* Set by the store: 1 if it cannot write (read-only file). */
	int read_only;
};

/*
 * Open a file as a store.  flags: O_RDONLY or O_RDWR (other bits are
 * ignored).  Uses O_DIRECT where the file system allows it, so that
 * faultline's page cache is the only cache of the data; falls back to
 * buffered I/O elsewhere (tmpfs).  Only a regular file can be a store: the
 * type is checked without blocking (a FIFO is not waited on).  Errors: as
 * open(2); EISDIR for a directory, EINVAL for anything else that is not a
 * regular file (a FIFO, a device, a socket) and for bad flags.
 */
struct fl_store *fl_store_file_open(const char *path, int flags);

/* 1 if the file store bypasses the kernel's page cache (O_DIRECT). */
int fl_store_file_is_direct(const struct fl_store *store);

/*
 * A slow and faulty store: wraps another store and adds latency and
 * injected errors, so that a program (or a test) can see how it behaves on
 * slow or failing storage.  Settings can be changed at any time.
 */
struct fl_store_faults {
	uint64_t read_delay_us;	       /* added to every read */
	uint64_t read_jitter_us;       /* plus a random 0..jitter */
	uint64_t write_delay_us;       /* added to every write */
	uint64_t write_jitter_us;      /* plus a random 0..jitter */
	uint64_t fail_every_nth_read;  /* reads N, 2N, ... fail (0: none) */
	uint64_t fail_every_nth_write; /* writes N, 2N, ... fail (0: none) */
	uint64_t fail_offset;	       /* I/O touching [fail_offset, */
	uint64_t fail_length;	       /*  +fail_length) fails (0: none) */
	int fail_errno;		       /* errno of a failure (0: EIO) */
	unsigned seed;		       /* of the jitter */
};

/*
 * Wrap inner (which the wrapper then owns and destroys) with the given
 * faults (NULL: none yet).  Returns NULL with errno on failure, leaving
 * inner to the caller.
 */
struct fl_store *fl_store_faulty(struct fl_store *inner,
				 const struct fl_store_faults *faults);
/* Change the faults of a store made by fl_store_faulty.  EINVAL if not. */
int fl_store_faulty_set(struct fl_store *store,
			const struct fl_store_faults *faults);
/*
 * Hold reads touching [offset, offset+length) of a faulty store: they wait,
 * in the store, until fl_store_faulty_release.  Lets a test stall a read
 * on purpose instead of by a timer.  EINVAL if not a faulty store.
 * A faulty store implements the cancel op: once the engine that owns it is
 * being destroyed, held reads and delays end at once and none starts again
 * (injected errors stay), so fl_engine_destroy never waits for a hold.
 */
int fl_store_faulty_hold(struct fl_store *store, uint64_t offset,
			 uint64_t length);
/* Let every held read go on, and hold no more. */
int fl_store_faulty_release(struct fl_store *store);
/* Reads now waiting in the hold, or -1 with EINVAL. */
long fl_store_faulty_held(struct fl_store *store);

/* ------------------------------------------------------------------------
 * Redis stores: objects kept in Redis, standalone or Redis Cluster
 * ------------------------------------------------------------------------ */

/* Options of fl_store_redis_open.  Zero in a field means "the default". */
struct fl_redis_options {
	/* If no object exists under the URL's prefix, create one of this
	 * many bytes (sparse: every block reads as zeros until written).
	 * 0: open an existing object only (ENOENT if there is none).  An
	 * object that exists is opened as it is, whatever its size. */
	uint64_t create_size;
	/* Create the object if there is none even with create_size 0 (an
	 * empty object, for a store that grows it: fl_store_compressed). */
	int create;
	/* With create or create_size: EEXIST if the object exists. */
	int exclusive;
	/* Block size of an object created here, a multiple of 4096 up to
	 * 64 MiB (default 65536).  An existing object keeps its own. */
	uint32_t block_size;
	/* Open read-only (the store's read_only is set). */
	int read_only;
	/* Timeout of every connect and command, in milliseconds (default
	 * 2000).  A read that times out fails (the fault gets SIGBUS). */
	unsigned timeout_ms;
	/* Most connections to each server (default 4). */
	unsigned connections;
	/* The store's threads running submitted reads (default: one per
	 * connection, at most 4). */
	unsigned io_threads;
};

/*
 * Open an object stored in Redis as a store (for fl_object_create, or a
 * swap device).  url:
 *   redis://HOST[:PORT]/PREFIX                       one server
 *   redis+cluster://HOST[:PORT][,HOST[:PORT]...]/PREFIX   Redis Cluster
 * (PORT default 6379; the cluster's slot map is loaded from the first
 * seed that answers CLUSTER SLOTS).  PREFIX (1 to 200 bytes, anything
 * after the first '/') names the object: its metadata is the hash
 * PREFIX:meta (fields format "faultline-blocks", version 1, size,
 * block_size) and its data the strings PREFIX:0, PREFIX:1, ... one per
 * block (docs/design.md, "Redis layout").  A missing block, or the part
 * of one past its string's end, reads as zeros; a whole block written as
 * zeros is deleted.  A write past the end (never the engine's: a store
 * over this one, such as fl_store_compressed, or a copy) makes the object
 * longer (up to 2^53 bytes: EFBIG beyond); discard deletes the blocks a
 * range covers whole.  In a cluster each key goes to its slot's node: put
 * a hash tag in the prefix ("{obj}") to keep an object on one node, or
 * leave it out to spread its blocks over every node.
 *
 * Reads are submitted (fl_store_ops.submit) to the store's own threads,
 * which send the block commands of a read (a readahead window), or of
 * several small queued reads, in one pipelined round trip and complete
 * each read when its replies are in; writes (writeback) send a run's
 * blocks in one round trip too.  Lost connections are made again; after
 * a connect that fails or a command that times out, a server is not
 * tried again for a backoff (50 ms, doubling to 2 s, until a command
 * succeeds): I/O meanwhile fails at once.  MOVED and ASK are followed.
 * A command that fails or times out fails its read (the fault gets
 * SIGBUS) or write (fl_msync: EIO, the pages stay dirty).  The cancel
 * op (fl_engine_destroy) ends submitted reads at once, also those
 * waiting for a hung server.  opts may be NULL (defaults).  The caller
 * owns the store until fl_object_create takes it (its destroy closes
 * every connection).
 *
 * Errors: EINVAL (a NULL or malformed url, a bad option), ENOENT (no
 * object, and neither create nor create_size), EEXIST (exclusive and it
 * exists), EPROTO (the metadata is not a faultline object's), EIO (the server
 * failed, or a redis+cluster URL names a server that is not a cluster node),
 * ECONNREFUSED, ETIMEDOUT (connect or a command), ENOMEM, EOPNOTSUPP
 * (faultline was built without hiredis).
 */
struct fl_store *fl_store_redis_open(const char *url,
				     const struct fl_redis_options *opts);

/*
 * Delete the object at url (every block key, then its metadata), one
 * pipelined round trip per 512 blocks.  opts: connection settings only
 * (NULL: defaults).  Mappings of it elsewhere then read zeros, or fail
 * once the metadata is gone for stores opened after.  Returns 0, or -1
 * with errno as fl_store_redis_open (ENOENT: no object there) or of the
 * failed deletes (EIO, ETIMEDOUT); a failure may leave part deleted.
 */
int fl_store_redis_remove(const char *url, const struct fl_redis_options *opts);

/* Counters of a Redis store (since it was opened). */
struct fl_redis_stats {
	uint64_t connections;	   /* open now */
	uint64_t connects;	   /* connections made (or tried) */
	uint64_t connect_failures; /* tries that failed */
	uint64_t commands;	   /* commands sent */
	uint64_t round_trips;	   /* pipelined batches sent */
	uint64_t moved, ask;	   /* cluster redirections followed */
	uint64_t slot_refreshes;   /* CLUSTER SLOTS loads */
	uint64_t errors;	   /* commands that failed */
	uint64_t timeouts;	   /* waits for a reply that timed out */
	uint64_t blocks_read, blocks_written; /* block commands that did */
	uint64_t block_size;		      /* of the object */
	/* Submitted reads (of one or two blocks) whose commands the
	 * submitting thread sent itself, a waiting store thread then
	 * reading the replies; the others wait for a store thread to send
	 * them. */
	uint64_t reads_sent_at_submit;
};

/* The counters of a store made by fl_store_redis_open; EINVAL if not. */
int fl_store_redis_stats(struct fl_store *store, struct fl_redis_stats *stats);

/* ------------------------------------------------------------------------
 * Compression
 * ------------------------------------------------------------------------ */

/*
 * Compression algorithms, for fl_store_compressed (and compressed swap
 * memory).  zstd and lz4 are there where the library was built with
 * libzstd and liblz4 (Debian: libzstd-dev, liblz4-dev); asking for one
 * that is not fails with EOPNOTSUPP.  FL_COMPRESS_NONE stores data as it
 * is.  Levels: 0 is the algorithm's default; zstd takes its own range
 * (negative: faster, up to 22: smaller); lz4 takes -65537..-1 (the fast
 * mode with acceleration -level), 0 (the fast mode) and 1..12 (its
 * high-compression levels); a level out of range is EINVAL.
 */
enum fl_compression {
	FL_COMPRESS_NONE = 0,
	FL_COMPRESS_ZSTD = 1,
	FL_COMPRESS_LZ4 = 2,
};

/*
 * A compressed store: wraps inner (which it then owns and destroys) and
 * keeps each block of block_size bytes of its data compressed there with
 * algorithm at level (see enum fl_compression).  A block that would not
 * shrink by at least a page is stored raw, with its original size
 * recorded either way.  Reads and writes may have any offset and length
 * (a write to part of a block reads, merges and rewrites it; writes and
 * reads of one block are serialised); a write past the end extends the
 * store, so a new compressed store is filled by calling its write op
 * before fl_object_create maps it.  size, flush and cancel pass through;
 * unused space in the inner store is given back through its discard op
 * where it has one (the file store's).  The layout in the inner store
 * (docs/design.md) is: a 4 KiB superblock (block size, logical size), then
 * block i at (i + 1) * (block_size + 4096), a 16-byte header (algorithm,
 * original and stored length) and the data.
 *
 * An empty inner store becomes a new compressed store of size 0, block
 * size block_size (0: 64 KiB), formatted at once unless it is read-only;
 * an inner store that holds a compressed store is opened with the block
 * size it was made with (block_size 0, or the same) and any algorithm (it
 * applies to blocks written from now on; each block records its own).
 * Read-only if inner is.  A block that cannot be read or decompressed
 * fails the read with EIO (the inner store's errno if it failed;
 * EOPNOTSUPP for a block compressed with an algorithm this build lacks):
 * a fault that needs it gets SIGBUS, as with any store; a failed write is
 * EIO for fl_msync.  A write reaching past 2^60 bytes fails with EFBIG.
 * Thread-safe.
 *
 * Returns NULL with errno, leaving inner to the caller: EINVAL (NULL or an
 * inner store without read, size or destroy; a block_size that is not a
 * multiple of 4096 or above 16 MiB, or not the one an existing store was
 * made with; an algorithm that does not exist or a level out of its
 * range), EOPNOTSUPP (an algorithm this build lacks), EBADMSG (inner is
 * not empty and holds no compressed store), ENOMEM, or the errno of the
 * inner store's size, read or write.
 */
struct fl_store *fl_store_compressed(struct fl_store *inner, int algorithm,
				     int level, size_t block_size);

/* What a compressed store has done since it was made (or opened). */
struct fl_compressed_stats {
	uint64_t block_size;	 /* bytes of data per block */
	uint64_t size;		 /* the store's (logical) size now */
	uint64_t blocks_written; /* blocks written to the inner store */
	uint64_t blocks_raw;	 /* of those, stored raw (incompressible) */
	uint64_t bytes_in;	 /* data in the blocks written, before */
	uint64_t bytes_out;	 /* and after compression, headers included:
				    bytes_in / bytes_out is the ratio */
	uint64_t bytes_stored;	 /* what they took in the inner store,
				    rounded up to pages */
	uint64_t blocks_read;	 /* blocks read from the inner store */
	uint64_t partial_writes; /* writes of part of a block (read, merged,
				    written back) */
	uint64_t corrupt_blocks; /* blocks found unreadable (EIO) */
};

/*
 * Statistics of a store made by fl_store_compressed.  EINVAL if store is
 * NULL or not a compressed store, or stats is NULL.
 */
int fl_store_compressed_stats(struct fl_store *store,
			      struct fl_compressed_stats *stats);

/* ------------------------------------------------------------------------
 * Objects: what mappings map
 * ------------------------------------------------------------------------ */

/*
 * Open the file at path as an object of engine.  flags: O_RDONLY or O_RDWR.
 * The object's size is the file's size when it is opened.  The returned
 * reference is the caller's; mappings take their own.
 * Errors: as fl_store_file_open (EISDIR, EINVAL for a file that is not a
 * regular one); EINVAL for bad flags or a NULL argument.
 */
fl_object *fl_object_open(fl_engine *engine, const char *path, int flags);

/*
 * Make an object from a store the caller built.  On success the object owns
 * the store (its destroy op runs when the object is released); on failure
 * the store is left to the caller.  flags: O_RDONLY or O_RDWR (EACCES if
 * the store is read-only and O_RDWR is asked).  Errors: EINVAL (a NULL
 * argument, bad flags, a store without read or size, or without write for
 * O_RDWR), EACCES, the errno of a failing size op (EIO if it set none),
 * ENOMEM, EMFILE.
 */
fl_object *fl_object_create(fl_engine *engine, struct fl_store *store,
			    int flags);

/*
 * Drop the caller's reference.  When no reference and no mapping remain,
 * dirty pages are written back and the object is freed.  Returns 0, or -1
 * with EIO if the final writeback failed (the data stays lost to the store
 * but is freed), EINVAL for NULL or a handle already closed while its
 * object lives on (of threads racing to close one handle, exactly one
 * succeeds).  A handle must not be used once its object may be freed.
 */
int fl_object_close(fl_object *object);

/* Size of the object in bytes. */
uint64_t fl_object_size(const fl_object *object);

/* ------------------------------------------------------------------------
 * Mappings: the mmap(2) family
 * ------------------------------------------------------------------------ */

/*
 * Map length bytes of object (from byte offset, a multiple of the page size)
 * or anonymous memory (flags has MAP_ANONYMOUS; object must be NULL and
 * offset 0).
 * prot: PROT_NONE or PROT_READ / PROT_WRITE (PROT_EXEC is refused).
 * flags: exactly one of MAP_SHARED, MAP_PRIVATE, optionally MAP_ANONYMOUS,
 * MAP_FIXED (replace whatever is mapped at addr, which must be page
 * aligned) and MAP_FIXED_NOREPLACE.  Without MAP_FIXED, addr is a hint.
 * MAP_FIXED replaces what was there in one step, as mmap(2) does: a thread
 * touching the range meanwhile sees the old mapping or the new one, never
 * a fault.  A call that fails changes nothing (unless the kernel's mremap
 * unmapped the range before failing, as mmap(2) may).
 *
 * A child of fork() inherits no faultline mapping: it sees their ranges
 * unmapped (as memory marked MADV_DONTFORK), since nothing would serve its
 * faults or track its stores.  The parent's mappings are untouched.  A
 * child must not use the parent's engines (their threads are not there).
 * Do not move or resize a faultline mapping with mremap(2): faultline does
 * not follow it, and accesses to the moved range would never be served.
 *
 * A MAP_SHARED mapping sees and makes the object's page cache: stores are
 * visible at once through every other shared mapping of the object and are
 * written back to the store.  A MAP_PRIVATE mapping reads the page cache
 * without copying it; its first store to a page makes a private copy that
 * nothing else sees.  A page wholly beyond the end of the object raises
 * SIGBUS, as with mmap.
 *
 * Returns the address, or MAP_FAILED with errno: EINVAL (zero length,
 * unaligned offset or fixed address, an offset for anonymous memory, bad
 * flags or prot, an object of another engine), EBADF (object missing for a
 * file mapping), EACCES (MAP_SHARED with PROT_WRITE of a read-only object),
 * ENOMEM (a length or fixed range beyond the address space, or no memory),
 * EOVERFLOW (a negative offset, or offset + length past the largest file
 * offset), EEXIST (MAP_FIXED_NOREPLACE over anything mapped, by faultline
 * or not).
 */
void *fl_mmap(fl_engine *engine, void *addr, size_t length, int prot, int flags,
	      fl_object *object, off_t offset);

/*
 * Unmap [addr, addr+length).  Parts of the range that faultline does not
 * map are left alone; a mapping that straddles an end is split.  When the
 * last mapping of an object goes, its dirty pages are written back.
 * Returns 0, or -1 with EINVAL (unaligned addr, zero length, a length that
 * wraps around), ENOMEM (no memory to split a mapping; nothing unmapped) or
 * EIO (writeback failed; the range is unmapped anyway).
 */
int fl_munmap(fl_engine *engine, void *addr, size_t length);

/*
 * Change the protection of [addr, addr+length), which must be wholly
 * mapped by faultline (ENOMEM otherwise, also for a length that wraps
 * around, as mprotect(2)).  Splits mappings as needed; a zero length does
 * nothing.  EACCES for PROT_WRITE on a shared mapping of a read-only
 * object; EINVAL for unaligned addr or bad prot.
 */
int fl_mprotect(fl_engine *engine, void *addr, size_t length, int prot);

/*
 * Give advice about [addr, addr+length), wholly mapped by faultline
 * (ENOMEM otherwise):
 *   MADV_NORMAL, MADV_SEQUENTIAL   default fault-around and readahead
 *   MADV_RANDOM                    map and read only the faulting page
 *   MADV_WILLNEED                  read the range into the page cache now
 *   MADV_DONTNEED                  drop this mapping's view of the range:
 *                                  private copies and anonymous pages are
 *                                  freed (the next access sees the object,
 *                                  or zeros); the page cache is kept; a
 *                                  page poisoned by SIGBUS faults afresh.
 *   MADV_REMOVE                    shared anonymous memory only: punch a
 *                                  hole (the pages, in memory or swapped
 *                                  out, are freed; the range reads zeros
 *                                  through every mapping).  EINVAL if a
 *                                  private mapping is in the range,
 *                                  EOPNOTSUPP for a mapping of a store.
 * A zero length does nothing.  EINVAL for other advice, an unaligned addr
 * or a length that wraps around (as madvise(2)).
 */
int fl_madvise(fl_engine *engine, void *addr, size_t length, int advice);

/*
 * Write back the dirty pages of the shared mappings in [addr, addr+length).
 * flags: MS_SYNC or MS_ASYNC (both write back before returning), optionally
 * MS_INVALIDATE (accepted, nothing to do: views are always coherent).
 * Returns 0; -1 with EIO if a store write failed (those pages stay dirty
 * and a later msync tries again), ENOMEM if the range is not wholly mapped
 * (also for a length that wraps around, as msync(2)), EINVAL for unaligned
 * addr or bad flags.
 */
int fl_msync(fl_engine *engine, void *addr, size_t length, int flags);

/* ------------------------------------------------------------------------
 * Memory groups: limits on the memory a set of mappings may use
 * ------------------------------------------------------------------------ */

typedef struct fl_group fl_group;

/* No limit. */
#define FL_GROUP_UNLIMITED UINT64_MAX

/* What a fault does when its group is at max and nothing can be reclaimed. */
enum fl_oom_policy {
	FL_OOM_FAIL,	 /* the fault gets SIGBUS (counted as an OOM event) */
	FL_OOM_WAIT,	 /* the fault waits until memory is freed in the group
			    or its max is raised (the kernel's "OOM killer
			    disabled"); it holds no thread while it waits */
	FL_OOM_CALLBACK, /* ask the group's callback */
};

/* The callback's answer. */
enum fl_oom_answer {
	FL_OOM_RETRY,	/* it freed memory or raised a limit: try again */
	FL_OOM_GIVE_UP, /* the fault gets SIGBUS */
};

/*
 * Called, from one of the engine's threads and with no engine lock held,
 * when a fault in group (or a group below it) needs bytes more than group's
 * max allows and nothing more can be reclaimed.  It may call
 * fl_group_set_max, fl_munmap, fl_madvise and the statistics calls.
 */
typedef enum fl_oom_answer (*fl_oom_callback)(fl_group *group,
					      uint64_t bytes_needed, void *arg);

/*
 * The engine's root group: every mapping belongs to it or to a group below
 * it.  Unlimited until fl_group_set_max says otherwise.
 */
fl_group *fl_group_root(fl_engine *engine);

/*
 * A new group below parent (NULL: the root), unlimited, policy FL_OOM_FAIL.
 * name is copied (for statistics).  Groups nest to any depth; a page
 * charged to a group counts against it and every ancestor.
 */
fl_group *fl_group_create(fl_engine *engine, fl_group *parent,
			  const char *name);

/*
 * Free a group.  EBUSY while it has children, mappings, charged memory or
 * swap slots (work in flight that still refers to it, such as readahead, is
 * waited for, briefly); EINVAL for the root or NULL.  fl_engine_destroy frees
 * every group.
 */
int fl_group_destroy(fl_group *group);

/*
 * Hard limit in bytes: the group's usage never exceeds it.  Lowering it
 * below the usage reclaims down to it (what cannot be reclaimed stays);
 * raising it wakes faults waiting for memory.
 */
int fl_group_set_max(fl_group *group, uint64_t bytes);

/* Above high bytes, the engine reclaims from the group in the background. */
int fl_group_set_high(fl_group *group, uint64_t bytes);

/* The OOM policy; callback (with arg) for FL_OOM_CALLBACK only. */
int fl_group_set_oom(fl_group *group, enum fl_oom_policy policy,
		     fl_oom_callback callback, void *arg);

/*
 * Dirty limits of a group, in percent of its max (like the kernel's
 * vm.dirty_ratio and vm.dirty_background_ratio, per memory cgroup).  Above
 * background_ratio of max dirty, the engine's flusher thread writes the
 * group's dirty pages back in the background, in batches with several
 * writes in flight, until they are below it again; above the midpoint of
 * the two, a fault that dirties a page of the group is paused briefly (at
 * most FL_DIRTY_MAX_PAUSE_MS, more the further above: writers that outrun
 * the store are slowed, never stopped), and each fault at most once.
 * Pages under writeback count as dirty for the limits.  A group without a
 * max has no dirty limits (its dirty pages are written by fl_msync, unmap,
 * close and reclaim as before).  Defaults: FL_DIRTY_RATIO_DEFAULT and
 * FL_DIRTY_BACKGROUND_RATIO_DEFAULT.  The limits of every group from the
 * page's own up to the root apply.  Returns 0, or -1 with EINVAL (NULL
 * group, or not 0 < background_ratio <= ratio <= 100).
 */
#define FL_DIRTY_RATIO_DEFAULT		  20
#define FL_DIRTY_BACKGROUND_RATIO_DEFAULT 10
#define FL_DIRTY_MAX_PAUSE_MS		  20
int fl_group_set_dirty_ratio(fl_group *group, unsigned ratio,
			     unsigned background_ratio);

struct fl_group_stats {
	uint64_t usage;		/* bytes charged now, with descendants */
	uint64_t peak;		/* highest usage */
	uint64_t max, high;	/* the limits */
	uint64_t cache_pages;	/* page-cache pages charged now (own) */
	uint64_t private_pages; /* private copies and anonymous pages now
				   (own) */
	uint64_t minor_faults;	/* faults of the group's own mappings */
	uint64_t major_faults;
	uint64_t pages_reclaimed;    /* pages evicted to make room */
	uint64_t pages_written_back; /* dirty pages written to make room (by
					reclaim, or ahead of it by the
					flusher) */
	uint64_t oom_events;	     /* faults that found nothing to reclaim */
	uint64_t wait_ns;	     /* time in waits for memory that ended */
	/* Swap (see fl_group_set_swap). */
	uint64_t swap_usage; /* bytes of swap slots held now, with
				descendants */
	uint64_t swap_max;   /* the swap limit (FL_GROUP_UNLIMITED: none) */
	uint64_t swap_ins;   /* pages of the group's own mappings read back
				from swap */
	uint64_t swap_outs;  /* pages of the group's own mappings written to
				swap */
	/* Dirty data (with descendants): pages dirty now, pages being
	 * written now, and the limits in bytes (FL_GROUP_UNLIMITED without
	 * a max). */
	uint64_t dirty_pages, writeback_pages;
	uint64_t dirty_limit, dirty_background;
	uint64_t pages_flushed; /* of those, by the background flusher */
	uint64_t throttled;	/* faults paused for dirtying over the limit */
	uint64_t throttle_ns;	/* the time they were paused, in all */
	uint64_t max_mem_wait_ns; /* the longest a fault of the group waited
				     for memory (reclaim, OOM wait) */
	uint64_t swap_outs_clean; /* pages of the group's own mappings dropped
				     without a write: swapped in by a read
				     and not written since, their slot kept
				     (not in swap_outs) */
};

int fl_group_stats(fl_group *group, struct fl_group_stats *stats);
/* The group's name (as given to fl_group_create; "root" for the root). */
const char *fl_group_name(const fl_group *group);

/*
 * fl_mmap with the mapping in group (NULL: the root).  Page-cache pages a
 * fault of the mapping brings in are charged to group; so are its private
 * copies and anonymous pages.  EINVAL for a group of another engine.
 */
void *fl_mmap_group(fl_engine *engine, fl_group *group, void *addr,
		    size_t length, int prot, int flags, fl_object *object,
		    off_t offset);

/* ------------------------------------------------------------------------
 * Swap: where private and anonymous pages go when their group is full
 * ------------------------------------------------------------------------ */

/*
 * A swap device: slots of one page each, on a file or another store.
 * Reclaim writes a private copy, an anonymous page or a page of shared
 * anonymous memory of a group that has a device (fl_group_set_swap) to a
 * free slot, records the slot and drops the page; the next fault there
 * reads it back (without holding the map lock or a thread: it waits like a
 * store read; a sequential reader's fault reads the next slots with it) and
 * frees the slot.  A read fault of a private or anonymous page keeps the
 * slot instead while swap is at most half full, the page mapped
 * write-protected: until the first store frees it, reclaim can drop the
 * page again without writing it (swap_outs_clean in fl_group_stats), and
 * takes such pages first.  A device belongs to its engine: fl_engine_destroy
 * frees it (there is no other way to free one); an engine has at most 32.  All
 * swap calls may be made from any thread.
 */
typedef struct fl_swap fl_swap;

/*
 * A swap file at path, created (or truncated) by the call: sparse, grown
 * as slots are written, up to max_bytes (rounded down to whole pages; at
 * least one page).  Written and read with O_DIRECT where the file system
 * allows it.  fl_engine_destroy truncates it to nothing (the file stays:
 * remove it yourself when you like).
 * Errors: EINVAL (NULL engine or path, max_bytes below one page), what
 * open(2) reports for path, ENOMEM, ENOSPC (the engine has 32 devices).
 */
fl_swap *fl_swap_file_create(fl_engine *engine, const char *path,
			     uint64_t max_bytes);

/*
 * A swap device over any store (a file store, a remote store, the faulty
 * store in tests): slot n is the page at offset n * page size.  The device
 * takes the store over: it is destroyed with the engine, also when this
 * call fails.  max_bytes bounds the slots (rounded down to pages, at least
 * one).  Errors: EINVAL (NULL engine or store, a read-only store,
 * max_bytes below one page), ENOMEM, ENOSPC (the engine has 32 devices).
 */
fl_swap *fl_swap_store_create(fl_engine *engine, struct fl_store *store,
			      uint64_t max_bytes);

/*
 * Compressed memory (zswap-like) in front of next (NULL: none), a device of
 * the same engine: pages are compressed with algorithm (FL_COMPRESS_ZSTD or
 * FL_COMPRESS_LZ4) at level into a pool of at most pool_bytes of memory
 * (not charged to any group); a page that does not compress, or finds the
 * pool full, goes to next (without next, the swap-out fails and the page
 * stays in memory).  With next, the device uses next's slots.  Trades CPU
 * for memory without any disk.  Errors: EINVAL (NULL engine, a next of
 * another engine, FL_COMPRESS_NONE or an unknown algorithm, a level out of
 * range, pool_bytes below a page), EOPNOTSUPP (an algorithm this build
 * lacks), ENOMEM, ENOSPC (the engine has 32 devices).
 */
fl_swap *fl_swap_compressed_create(fl_engine *engine, int algorithm, int level,
				   uint64_t pool_bytes, fl_swap *next);

/*
 * The device group's private, anonymous and shared anonymous pages are
 * swapped to; NULL: its parent's (the root's default is none: nothing is
 * swapped, those pages stay in memory).  Reclaim for a group swaps its pages
 * out only once the group's cache pages are hot or gone (the kernel's
 * balance of file and anonymous LRUs).  A group that can swap and whose
 * max is at least 1024 pages keeps a 64th of its max (at most 2048 pages)
 * free: past that, the engine's I/O threads swap its pages out in the
 * background, so that its faults seldom wait for a swap-out.  Pages
 * already swapped stay where they are.  Errors: EINVAL (NULL group, a
 * device of another engine).
 */
int fl_group_set_swap(fl_group *group, fl_swap *swap);

/*
 * The most swap the group and its descendants may hold, in bytes (like
 * memory.swap.max; default FL_GROUP_UNLIMITED).  Lowering it below the
 * usage frees nothing: it stops further swap-outs.  EINVAL for NULL.
 */
int fl_group_set_swap_max(fl_group *group, uint64_t bytes);

struct fl_swap_stats {
	uint64_t slots;		/* capacity, in pages */
	uint64_t slots_used;	/* slots reserved now */
	uint64_t pages_written; /* swap-outs */
	uint64_t pages_read;	/* swap-ins (slot reads) */
	uint64_t bytes_stored;	/* what the slots in use occupy */
	uint64_t write_errors;	/* failed slot writes (pages kept in memory) */
	uint64_t read_errors;	/* failed slot reads (the fault: SIGBUS) */
	uint64_t cache_pages;	/* pages in the engine's swap cache now (being
				   written, read, or left for reclaim) */
};

/* The device's statistics.  EINVAL for NULL. */
int fl_swap_stats(fl_swap *swap, struct fl_swap_stats *stats);

/* ------------------------------------------------------------------------
 * Statistics
 * ------------------------------------------------------------------------ */

/*
 * Statistics.  Counters count events since the engine (or mapping) was
 * made; the fields marked "now" are gauges.  A fault is counted once, when
 * it completes, however often it had to be retried.
 */
struct fl_stats {
	uint64_t minor_faults;	   /* served without reading a store: from the
				      page cache, or anonymous (zero page or
				      zero-filled pages) */
	uint64_t major_faults;	   /* needed a store read first */
	uint64_t zero_fills;	   /* pages of anonymous memory zero-filled */
	uint64_t cow_copies;	   /* private copies made by a first store */
	uint64_t wp_faults;	   /* first stores to clean shared pages (the
				      page_mkwrite point: the page turns dirty) */
	uint64_t pages_read;	   /* pages read from stores */
	uint64_t pages_written;	   /* pages written back to stores; for a
				      mapping, those within its range (a page
				      two shared mappings show counts in both) */
	uint64_t pages_mapped;	   /* pages mapped by fault-around */
	uint64_t dirty_pages;	   /* dirty cache pages now (mapping: within
				      its range, shared mappings only) */
	uint64_t cached_pages;	   /* page-cache pages now (engine only) */
	uint64_t errors;	   /* faults answered with SIGBUS */
	uint64_t writeback_errors; /* pages whose store write failed */
	uint64_t fault_messages;   /* userfaultfd messages handled (engine) */
	uint64_t retries;	   /* fault attempts retried after blocking */
	uint64_t private_pages;	   /* private copies and anonymous pages now */
	/* Readahead: did it pay?  Pages read from a store beyond the page a
	 * fault needed (read-around and windows read ahead), those a fault
	 * then used, and those evicted before any fault used them (engine
	 * only: eviction has no mapping). */
	uint64_t readahead_pages;
	uint64_t readahead_used;
	uint64_t readahead_evicted;
	/* Store reads submitted, and the sum over them of the reads then in
	 * flight in the engine (this one included): their ratio is the mean
	 * queue depth the store saw (engine only). */
	uint64_t store_reads;
	uint64_t store_read_depth;
	/* Handler threads: events (a batch of fault messages, or store
	 * completions) taken while polling, without a wake-up, and those
	 * that woke a sleeping handler (engine only; see handler_poll_us:
	 * polling pays where the first is large beside the second). */
	uint64_t polled_events;
	uint64_t handler_wakeups;
	/* Polling episodes run in the idle scheduling class (see
	 * handler_poll_us), and polling episodes (of either class) ended
	 * because the poller did not get a CPU for a millisecond: the other
	 * handlers then served from their descriptors (engine only). */
	uint64_t polls_idle;
	uint64_t polls_starved;
	/* Local polling (see handler_poll_us): fault messages read by the
	 * CPU poller of the CPU the faulting thread (most likely) ran on,
	 * so that its wake-up stays on that CPU, and those a CPU poller read
	 * otherwise (one it saw waiting for 20 microseconds while no poller
	 * read, or any while it was the only one polling) (engine only). */
	uint64_t local_reads;
	uint64_t late_reads;
	/* Wake-ups of resumed faults (their store read done) that a CPU
	 * poller handed to the poller of the faulting thread's CPU, to wake
	 * it there (engine only). */
	uint64_t handed_wakes;
	/* Times the poller moved to the CPU of the one thread faulting, to
	 * wake it there (see handler_poll_us; engine only). */
	uint64_t poller_moves;
	/* Times a handler did not poll, or stopped polling, because most
	 * recent faults waited for random reads and not polling was being
	 * tried, or had been found the faster (see handler_poll_us; engine
	 * only). */
	uint64_t polls_skipped;
	/* Store reads whose completion ran on the store's own thread as the
	 * data arrived, resuming the fault there: no handler thread was
	 * woken for it (engine only; the Redis store's reads). */
	uint64_t store_reads_inline;
	/* Write-protect faults answered with a wake-up only, as stale: read
	 * before writeback cleaned the page, or before another thread's
	 * fault at the same address let the store through, which it most
	 * likely did already; so they do not dirty a clean page again (a
	 * thread that really waited faults again, and is served). */
	uint64_t wp_stale;
};

/* Statistics of the whole engine (counters since creation). */
int fl_engine_stats(fl_engine *engine, struct fl_stats *stats);

/*
 * Statistics of the mapping that contains addr (EINVAL if none).  Counters
 * of a mapping that was split are kept by each part.  dirty_pages counts the
 * dirty cache pages within the mapping's range of a shared mapping.
 */
int fl_mapping_stats(fl_engine *engine, const void *addr,
		     struct fl_stats *stats);

/*
 * How long the map lock was held by faults, and how long map, unmap and
 * protect waited for it, since the engine was made or the last reset.
 * Quantiles come from a histogram with log-linear buckets, four per power
 * of two (each figure is the upper end of its bucket, so within 25%, and
 * never above the largest value seen).
 */
struct fl_lock_stats {
	uint64_t fault_holds; /* fault attempts that held the lock */
	uint64_t fault_hold_p50_ns, fault_hold_p99_ns, fault_hold_max_ns;
	uint64_t map_waits; /* map/unmap/protect/advise that wrote it */
	uint64_t map_wait_p50_ns, map_wait_p99_ns, map_wait_max_ns;
};

int fl_engine_lock_stats(fl_engine *engine, struct fl_lock_stats *stats);
/* Start the lock statistics afresh (a benchmark's phase, say). */
int fl_engine_lock_stats_reset(fl_engine *engine);

/* Print stats to f, one "name value" per line, each prefixed by prefix. */
void fl_stats_print(FILE *f, const char *prefix, const struct fl_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* FAULTLINE_H */
