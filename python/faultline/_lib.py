# SPDX-License-Identifier: MIT
"""Loading libfaultline.so and declaring its C API for ctypes.

The structures here mirror include/faultline.h field for field; the test
test_layout.py compiles a C program against the header and checks every
size and offset, so that a field added to the header is not missed.
"""

import ctypes
import ctypes.util
import errno
import os

# ---------------------------------------------------------------------------
# Finding the library
# ---------------------------------------------------------------------------

_HERE = os.path.dirname(os.path.abspath(__file__))


def _candidates():
    """Where libfaultline.so may be, in the order tried."""
    env = os.environ.get("FAULTLINE_LIBRARY")
    if env:
        # An explicit choice is the only one: a wrong path must not fall
        # back silently to another build.
        return [env]
    found = [
        # The source tree: python/faultline -> ../../build
        os.path.join(_HERE, "..", "..", "build", "libfaultline.so"),
        # The system's, by soname (ld.so.cache, LD_LIBRARY_PATH).
        "libfaultline.so.0",
    ]
    name = ctypes.util.find_library("faultline")
    if name:
        found.append(name)
    # `make install` puts it in $(PREFIX)/lib, /usr/local/lib by default,
    # which the dynamic loader finds only once ldconfig has run.
    found += ["/usr/local/lib/libfaultline.so.0", "/usr/lib/libfaultline.so.0"]
    return found


def _load():
    tried = []
    for path in _candidates():
        try:
            return ctypes.CDLL(path, use_errno=True), path
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
    raise ImportError(
        "faultline: cannot load libfaultline.so; build it with `make` in "
        "the source tree, install it with `make install`, or set "
        "FAULTLINE_LIBRARY to its path.  Tried: " + "; ".join(tried)
    )


lib, library_path = _load()
libc = ctypes.CDLL(None, use_errno=True)

# ---------------------------------------------------------------------------
# Constants of the header (and of <sys/mman.h>, <fcntl.h>, Linux values)
# ---------------------------------------------------------------------------

PROT_NONE, PROT_READ, PROT_WRITE = 0, 1, 2
MAP_SHARED, MAP_PRIVATE, MAP_FIXED, MAP_ANONYMOUS = 0x01, 0x02, 0x10, 0x20
MS_ASYNC, MS_INVALIDATE, MS_SYNC = 1, 2, 4
MADV = {
    "normal": 0,
    "random": 1,
    "sequential": 2,
    "willneed": 3,
    "dontneed": 4,
    "remove": 9,
}
O_RDONLY, O_RDWR = os.O_RDONLY, os.O_RDWR
MAP_FAILED = ctypes.c_void_p(-1).value
PAGE_SIZE = 4096
FL_GROUP_UNLIMITED = 2**64 - 1
FL_OOM_FAIL, FL_OOM_WAIT, FL_OOM_CALLBACK = 0, 1, 2

u64 = ctypes.c_uint64
uint = ctypes.c_uint
P = ctypes.c_void_p

# ---------------------------------------------------------------------------
# Structures
# ---------------------------------------------------------------------------


class Config(ctypes.Structure):
    _fields_ = [
        ("handler_threads", uint),
        ("fault_around_pages", uint),
        ("readahead_pages", uint),
        ("anon_fault_around_pages", uint),
        ("print_stats_at_destroy", ctypes.c_int),
        ("io_threads", uint),
        ("hold_map_lock_for_io", ctypes.c_int),
        ("handler_poll_us", ctypes.c_int),
    ]


class StoreFaults(ctypes.Structure):
    _fields_ = [
        ("read_delay_us", u64),
        ("read_jitter_us", u64),
        ("write_delay_us", u64),
        ("write_jitter_us", u64),
        ("fail_every_nth_read", u64),
        ("fail_every_nth_write", u64),
        ("fail_offset", u64),
        ("fail_length", u64),
        ("fail_errno", ctypes.c_int),
        ("seed", uint),
    ]


STATS_FIELDS = [
    "minor_faults",
    "major_faults",
    "zero_fills",
    "cow_copies",
    "wp_faults",
    "pages_read",
    "pages_written",
    "pages_mapped",
    "dirty_pages",
    "cached_pages",
    "errors",
    "writeback_errors",
    "fault_messages",
    "retries",
    "private_pages",
    "readahead_pages",
    "readahead_used",
    "readahead_evicted",
    "store_reads",
    "store_read_depth",
    "polled_events",
    "handler_wakeups",
    "polls_idle",
    "polls_starved",
    "local_reads",
    "late_reads",
    "handed_wakes",
    "poller_moves",
    "polls_skipped",
    "store_reads_inline",
    "wp_stale",
]


class Stats(ctypes.Structure):
    _fields_ = [(name, u64) for name in STATS_FIELDS]


GROUP_STATS_FIELDS = [
    "usage",
    "peak",
    "max",
    "high",
    "cache_pages",
    "private_pages",
    "minor_faults",
    "major_faults",
    "pages_reclaimed",
    "pages_written_back",
    "oom_events",
    "wait_ns",
    "swap_usage",
    "swap_max",
    "swap_ins",
    "swap_outs",
    "dirty_pages",
    "writeback_pages",
    "dirty_limit",
    "dirty_background",
    "pages_flushed",
    "throttled",
    "throttle_ns",
    "max_mem_wait_ns",
    "swap_outs_clean",
]


class GroupStats(ctypes.Structure):
    _fields_ = [(name, u64) for name in GROUP_STATS_FIELDS]


LOCK_STATS_FIELDS = [
    "fault_holds",
    "fault_hold_p50_ns",
    "fault_hold_p99_ns",
    "fault_hold_max_ns",
    "map_waits",
    "map_wait_p50_ns",
    "map_wait_p99_ns",
    "map_wait_max_ns",
]


class LockStats(ctypes.Structure):
    _fields_ = [(name, u64) for name in LOCK_STATS_FIELDS]


SWAP_STATS_FIELDS = [
    "slots",
    "slots_used",
    "pages_written",
    "pages_read",
    "bytes_stored",
    "write_errors",
    "read_errors",
    "cache_pages",
]


class SwapStats(ctypes.Structure):
    _fields_ = [(name, u64) for name in SWAP_STATS_FIELDS]


COMPRESSED_STATS_FIELDS = [
    "block_size",
    "size",
    "blocks_written",
    "blocks_raw",
    "bytes_in",
    "bytes_out",
    "bytes_stored",
    "blocks_read",
    "partial_writes",
    "corrupt_blocks",
]


class CompressedStats(ctypes.Structure):
    _fields_ = [(name, u64) for name in COMPRESSED_STATS_FIELDS]


COMPRESSION = {"none": 0, "zstd": 1, "lz4": 2}


class RedisOptions(ctypes.Structure):
    _fields_ = [
        ("create_size", u64),
        ("create", ctypes.c_int),
        ("exclusive", ctypes.c_int),
        ("block_size", ctypes.c_uint32),
        ("read_only", ctypes.c_int),
        ("timeout_ms", uint),
        ("connections", uint),
        ("io_threads", uint),
    ]


REDIS_STATS_FIELDS = [
    "connections",
    "connects",
    "connect_failures",
    "commands",
    "round_trips",
    "moved",
    "ask",
    "slot_refreshes",
    "errors",
    "timeouts",
    "blocks_read",
    "blocks_written",
    "block_size",
    "reads_sent_at_submit",
]


class RedisStats(ctypes.Structure):
    _fields_ = [(name, u64) for name in REDIS_STATS_FIELDS]


# struct fl_store: only its first member (ops) matters here, to reach the
# destroy op of a store the package made but never handed to an object.
class StoreOps(ctypes.Structure):
    _fields_ = [
        ("read", ctypes.CFUNCTYPE(ctypes.c_ssize_t, P, P, ctypes.c_size_t, u64, use_errno=True)),
        ("write", ctypes.CFUNCTYPE(ctypes.c_ssize_t, P, P, ctypes.c_size_t, u64, use_errno=True)),
        ("size", ctypes.CFUNCTYPE(ctypes.c_int64, P, use_errno=True)),
        ("flush", ctypes.c_void_p),
        ("destroy", ctypes.CFUNCTYPE(None, P)),
        ("cancel", ctypes.c_void_p),
        ("submit", ctypes.c_void_p),
        ("discard", ctypes.c_void_p),
    ]


class Store(ctypes.Structure):
    _fields_ = [("ops", ctypes.POINTER(StoreOps)), ("read_only", ctypes.c_int)]


# Every struct the package passes by pointer, by its C name, for the
# layout test.
STRUCTS = {
    "fl_config": Config,
    "fl_store_faults": StoreFaults,
    "fl_stats": Stats,
    "fl_group_stats": GroupStats,
    "fl_lock_stats": LockStats,
    "fl_store_ops": StoreOps,
    "fl_store": Store,
    "fl_swap_stats": SwapStats,
    "fl_compressed_stats": CompressedStats,
    "fl_redis_options": RedisOptions,
    "fl_redis_stats": RedisStats,
}

# ---------------------------------------------------------------------------
# Functions
# ---------------------------------------------------------------------------

C_INT, C_LONG, C_SIZE, C_OFF = ctypes.c_int, ctypes.c_long, ctypes.c_size_t, ctypes.c_long


def _fn(name, restype, *argtypes):
    f = getattr(lib, name)
    f.restype = restype
    f.argtypes = list(argtypes)
    return f


def _opt(name, restype, *argtypes):
    """A call that a library built without it (or older) lacks: None then,
    and the Python API that needs it raises NotImplementedError."""
    try:
        return _fn(name, restype, *argtypes)
    except AttributeError:
        return None


def need(fn, what):
    if fn is None:
        raise NotImplementedError("%s: %s does not have it (an older libfaultline?)" % (what, library_path))
    return fn


fl_config_init = _fn("fl_config_init", None, P)
fl_engine_create = _fn("fl_engine_create", P, P)
fl_engine_destroy = _fn("fl_engine_destroy", C_INT, P)
fl_store_file_open = _fn("fl_store_file_open", P, ctypes.c_char_p, C_INT)
fl_store_file_is_direct = _fn("fl_store_file_is_direct", C_INT, P)
fl_store_faulty = _fn("fl_store_faulty", P, P, P)
fl_store_faulty_set = _fn("fl_store_faulty_set", C_INT, P, P)
fl_store_faulty_hold = _fn("fl_store_faulty_hold", C_INT, P, u64, u64)
fl_store_faulty_release = _fn("fl_store_faulty_release", C_INT, P)
fl_store_faulty_held = _fn("fl_store_faulty_held", C_LONG, P)
fl_object_open = _fn("fl_object_open", P, P, ctypes.c_char_p, C_INT)
fl_object_create = _fn("fl_object_create", P, P, P, C_INT)
fl_object_close = _fn("fl_object_close", C_INT, P)
fl_object_size = _fn("fl_object_size", u64, P)
fl_mmap_group = _fn("fl_mmap_group", P, P, P, P, C_SIZE, C_INT, C_INT, P, C_OFF)
fl_munmap = _fn("fl_munmap", C_INT, P, P, C_SIZE)
fl_madvise = _fn("fl_madvise", C_INT, P, P, C_SIZE, C_INT)
fl_msync = _fn("fl_msync", C_INT, P, P, C_SIZE, C_INT)
fl_group_root = _fn("fl_group_root", P, P)
fl_group_create = _fn("fl_group_create", P, P, P, ctypes.c_char_p)
fl_group_destroy = _fn("fl_group_destroy", C_INT, P)
fl_group_set_max = _fn("fl_group_set_max", C_INT, P, u64)
fl_group_set_high = _fn("fl_group_set_high", C_INT, P, u64)
fl_group_set_oom = _fn("fl_group_set_oom", C_INT, P, C_INT, P, P)
fl_group_stats = _fn("fl_group_stats", C_INT, P, P)
fl_group_name = _fn("fl_group_name", ctypes.c_char_p, P)
fl_engine_stats = _fn("fl_engine_stats", C_INT, P, P)
fl_mapping_stats = _fn("fl_mapping_stats", C_INT, P, P, P)
fl_engine_lock_stats = _fn("fl_engine_lock_stats", C_INT, P, P)
fl_engine_lock_stats_reset = _fn("fl_engine_lock_stats_reset", C_INT, P)

# Swap, compression, Redis and dirty limits: bound where the library has
# them (a build without hiredis still exports fl_store_redis_open, which
# fails with EOPNOTSUPP).
fl_swap_file_create = _opt("fl_swap_file_create", P, P, ctypes.c_char_p, u64)
fl_swap_store_create = _opt("fl_swap_store_create", P, P, P, u64)
fl_swap_compressed_create = _opt("fl_swap_compressed_create", P, P, C_INT, C_INT, u64, P)
fl_group_set_swap = _opt("fl_group_set_swap", C_INT, P, P)
fl_group_set_swap_max = _opt("fl_group_set_swap_max", C_INT, P, u64)
fl_swap_stats = _opt("fl_swap_stats", C_INT, P, P)
fl_store_compressed = _opt("fl_store_compressed", P, P, C_INT, C_INT, C_SIZE)
fl_store_compressed_stats = _opt("fl_store_compressed_stats", C_INT, P, P)
fl_store_redis_open = _opt("fl_store_redis_open", P, ctypes.c_char_p, P)
fl_store_redis_remove = _opt("fl_store_redis_remove", C_INT, ctypes.c_char_p, P)
fl_store_redis_stats = _opt("fl_store_redis_stats", C_INT, P, P)
fl_group_set_dirty_ratio = _opt("fl_group_set_dirty_ratio", C_INT, P, uint, uint)


# Calls of the header the package does not bind, and why (test_layout.py
# checks that every other call is bound).
NOT_BOUND = {
    "fl_mmap": "fl_mmap_group with the root group does the same",
    "fl_mprotect": "a view made writable would SIGSEGV once protected: not offered",
    "fl_store_io_complete": "for stores written in C (asynchronous submit)",
    "fl_stats_print": "the Stats dataclasses print themselves",
}


def padded(cls):
    """A zeroed structure in a buffer larger than it: passed to a library
    whose structure has grown since, the fields this package does not know
    read as 0 (the default) and are not written past.  Returns (the
    structure, the buffer to pass)."""
    buf = ctypes.create_string_buffer(max(4096, 2 * ctypes.sizeof(cls)))
    return cls.from_buffer(buf), buf


def get_stats(fn, cls, *handles):
    """Call a statistics function (fn(*handles, struct *)) and return the
    structure.  The C call writes into a generous zeroed buffer, not into
    an object of exactly cls's size: a library newer than this package,
    whose structure has grown, cannot write past it."""
    buf = ctypes.create_string_buffer(max(4096, 2 * ctypes.sizeof(cls)))
    check(fn(*handles, buf))
    return cls.from_buffer_copy(buf)


def check(result, failed=-1):
    """Raise OSError with the C errno if result is the failure value."""
    if result == failed or (failed is None and not result):
        e = ctypes.get_errno() or errno.EIO
        raise OSError(e, os.strerror(e))
    return result
