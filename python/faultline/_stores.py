# SPDX-License-Identifier: MIT
"""Stores: where an object's data lives (struct fl_store).

A store made here belongs to Python until it is handed on: to an object by
Engine.open(store), or to a wrapper such as FaultyStore(inner).  From then
on its owner frees it, and the Python handle stays usable exactly as long
as the owner keeps it (an object lives while it is open or mapped).
"""

import ctypes
import errno
import os
import threading
import weakref

from . import _lib
from . import _stats

_MODES = {"r": _lib.O_RDONLY, "r+": _lib.O_RDWR}


def open_flags(mode):
    """O_RDONLY or O_RDWR for a mode string ("r" or "r+")."""
    try:
        return _MODES[mode]
    except (KeyError, TypeError):
        raise ValueError("mode must be 'r' or 'r+', not %r" % (mode,)) from None


def _destroy_store(ptr):
    store = ctypes.cast(ptr, ctypes.POINTER(_lib.Store)).contents
    store.ops.contents.destroy(ptr)


class _Handing:
    """The owner of a store being handed on (between _take and _given)."""

    @staticmethod
    def _store_alive():
        return True


class Store:
    """A store: base of FileStore, FaultyStore and the others."""

    def __init__(self, ptr, what):
        self._ptr = ptr
        self._what = what
        self._owner = None  # Object or Store that took it over
        self._lock = threading.Lock()
        self._free = weakref.finalize(self, _destroy_store, ptr)

    def __repr__(self):
        return "<faultline.%s %s%s>" % (
            type(self).__name__,
            self._what,
            "" if self.alive else " (freed)",
        )

    @property
    def alive(self):
        """True while the C store exists (its owner has not freed it)."""
        owner = self._owner
        if owner is None:
            return self._free.alive
        return owner._store_alive()

    def _store_alive(self):
        return self.alive

    def _handle(self):
        """The C pointer, checked to be alive."""
        if not self.alive:
            raise ValueError("%r: the store was freed by its owner" % self)
        return self._ptr

    def _take(self):
        """The pointer, for a new owner; give it back with _untake."""
        with self._lock:
            if self._owner is not None or not self._free.alive:
                raise ValueError("%r already belongs to an object or a store" % self)
            self._free.detach()
            self._owner = _Handing  # until _given names the new owner
            return self._ptr

    def _given(self, owner):
        self._owner = owner

    def _untake(self):
        with self._lock:
            self._owner = None
            self._free = weakref.finalize(self, _destroy_store, self._ptr)

    def close(self):
        """Free a store that was never handed to an object or wrapper."""
        with self._lock:
            if self._owner is None:
                self._free()


class FileStore(Store):
    """A file as a store (fl_store_file_open): mode "r" or "r+"."""

    def __init__(self, path, mode="r+"):
        flags = open_flags(mode)
        path = os.fspath(path)
        ptr = _lib.check(_lib.fl_store_file_open(os.fsencode(path), flags), None)
        super().__init__(ptr, repr(path))
        self.path = path
        self.mode = mode

    @property
    def direct(self):
        """True if the file is read with O_DIRECT (bypassing the kernel's
        page cache)."""
        return bool(_lib.fl_store_file_is_direct(self._handle()))


FAULT_FIELDS = tuple(name for name, _ in _lib.StoreFaults._fields_)


def _faults_struct(settings):
    s, buf = _lib.padded(_lib.StoreFaults)
    s._buf = buf  # what the library is given
    for name, value in settings.items():
        if name not in FAULT_FIELDS:
            raise TypeError("unknown fault setting %r (known: %s)" % (name, ", ".join(FAULT_FIELDS)))
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("%s must be an int, not %r" % (name, value))
        bits = 32 if name in ("fail_errno", "seed") else 64
        if name == "fail_errno":
            if not 0 <= value < 4096:
                raise ValueError("fail_errno must be an errno value, not %d" % value)
        elif not 0 <= value < 2**bits:
            raise ValueError("%s must be in [0, 2**%d), not %d" % (name, bits, value))
        setattr(s, name, value)
    return s


class FaultyStore(Store):
    """A slow and faulty store wrapping another (fl_store_faulty).

    FaultyStore(inner, read_delay_us=..., fail_every_nth_read=...,
    fail_offset=..., fail_length=..., fail_errno=errno.EIO, ...): the
    settings are the fields of struct fl_store_faults, 0 when not given.
    The wrapper owns inner from then on.  set() replaces every setting,
    update() changes those given; hold()/release() stall reads of a range
    until released.
    """

    def __init__(self, inner, **faults):
        if not isinstance(inner, Store):
            raise TypeError("FaultyStore wraps a faultline store, not %r" % (inner,))
        s = _faults_struct(faults)
        ptr = inner._take()
        try:
            ptr = _lib.check(_lib.fl_store_faulty(ptr, s._buf), None)
        except BaseException:
            inner._untake()
            raise
        super().__init__(ptr, "over %r" % (inner,))
        inner._given(self)
        self.inner = inner
        self._faults = {name: getattr(s, name) for name in FAULT_FIELDS}

    @property
    def faults(self):
        """The current settings, as a dict."""
        return dict(self._faults)

    def set(self, **faults):
        """Replace every setting (those not given become 0)."""
        s = _faults_struct(faults)
        _lib.check(_lib.fl_store_faulty_set(self._handle(), s._buf))
        self._faults = {name: getattr(s, name) for name in FAULT_FIELDS}

    def update(self, **changes):
        """Change the settings given, keep the others."""
        self.set(**{**self._faults, **changes})

    def hold(self, offset, length):
        """Hold reads touching [offset, offset+length) until release()."""
        for name, v in (("offset", offset), ("length", length)):
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**64:
                raise ValueError("%s must be an int in [0, 2**64), not %r" % (name, v))
        _lib.check(_lib.fl_store_faulty_hold(self._handle(), offset, length))

    def release(self):
        """Let every held read go on, and hold no more."""
        _lib.check(_lib.fl_store_faulty_release(self._handle()))

    @property
    def held(self):
        """Reads waiting in the hold now."""
        return _lib.check(_lib.fl_store_faulty_held(self._handle()))


def _algorithm(algorithm):
    if isinstance(algorithm, str) and algorithm in _lib.COMPRESSION:
        return _lib.COMPRESSION[algorithm]
    raise ValueError("algorithm must be one of %s, not %r" % (", ".join(_lib.COMPRESSION), algorithm))


def _int(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int, not %r" % (name, value))
    if not lo <= value <= hi:
        raise ValueError("%s must be in [%d, %d], not %d" % (name, lo, hi, value))
    return value


class CompressedStore(Store):
    """A compressed store (fl_store_compressed) over another store, which
    it then owns: each block of block_size bytes (0: 64 KiB) is kept
    compressed with algorithm ("zstd", "lz4" or "none") at level (0: the
    algorithm's default).  OSError(EOPNOTSUPP) for an algorithm the
    library was built without.  An empty inner store becomes a new
    compressed store of size 0: fill it with write() before Engine.open
    maps it; an inner store that holds one is opened as it is."""

    def __init__(self, inner, algorithm="zstd", level=0, block_size=0):
        fn = _lib.need(_lib.fl_store_compressed, "CompressedStore")
        if not isinstance(inner, Store):
            raise TypeError("CompressedStore wraps a faultline store, not %r" % (inner,))
        alg = _algorithm(algorithm)
        _int("level", level, -(2**31), 2**31 - 1)
        _int("block_size", block_size, 0, 2**63)
        ptr = inner._take()
        try:
            ptr = _lib.check(fn(ptr, alg, level, block_size), None)
        except BaseException:
            inner._untake()
            raise
        super().__init__(ptr, "%s over %r" % (algorithm, inner))
        inner._given(self)
        self.inner = inner
        self.algorithm = algorithm

    def stats(self):
        """What the store has done (fl_store_compressed_stats): a
        CompressedStats; bytes_in / bytes_out is the ratio."""
        s = _lib.get_stats(_lib.fl_store_compressed_stats, _lib.CompressedStats, self._handle())
        return _stats.compressed_stats(s)

    @property
    def size(self):
        """The store's (logical) size in bytes."""
        h = self._handle()
        n = ctypes.cast(h, ctypes.POINTER(_lib.Store)).contents.ops.contents.size(h)
        if n < 0:
            e = ctypes.get_errno() or errno.EIO
            raise OSError(e, os.strerror(e))
        return n

    def write(self, offset, data):
        """Write data at offset through the store's write op (any offset
        and length; a write past the end extends the store).  For filling
        a store before it is mapped: once an object maps it, write through
        a mapping instead."""
        _int("offset", offset, 0, 2**63)
        src = memoryview(data).cast("B")
        h = self._handle()
        buf = (ctypes.c_char * len(src)).from_buffer_copy(src)
        n = ctypes.cast(h, ctypes.POINTER(_lib.Store)).contents.ops.contents.write(h, buf, len(src), offset)
        if n < 0:
            e = ctypes.get_errno() or errno.EIO
            raise OSError(e, os.strerror(e))
        return n

    def read(self, offset, size):
        """Read up to size bytes at offset through the store's read op."""
        _int("offset", offset, 0, 2**63)
        _int("size", size, 0, 2**31)
        h = self._handle()
        buf = ctypes.create_string_buffer(size)
        n = ctypes.cast(h, ctypes.POINTER(_lib.Store)).contents.ops.contents.read(h, buf, size, offset)
        if n < 0:
            e = ctypes.get_errno() or errno.EIO
            raise OSError(e, os.strerror(e))
        return buf.raw[:n]


REDIS_OPTIONS = tuple(name for name, _ in _lib.RedisOptions._fields_)


def _redis_args(url, options):
    """(url, struct fl_redis_options) for the C calls."""
    if not isinstance(url, str):
        raise TypeError("url must be a str, not %r" % (url,))
    o, buf = _lib.padded(_lib.RedisOptions)
    for name, value in options.items():
        if name not in REDIS_OPTIONS:
            raise TypeError("unknown Redis option %r (known: %s)" % (name, ", ".join(REDIS_OPTIONS)))
        if isinstance(value, bool):
            value = int(value)
        bits = 64 if name == "create_size" else 31
        setattr(o, name, _int(name, value, 0, 2**bits - 1))
    return url.encode(), buf


class RedisStore(Store):
    """An object kept in Redis (fl_store_redis_open):
    RedisStore("redis://host:port/prefix") or
    "redis+cluster://host:port,host:port/prefix", with the options of
    struct fl_redis_options as keywords (create_size, create, exclusive,
    block_size, read_only, timeout_ms, connections, io_threads).
    OSError(EOPNOTSUPP) where faultline was built without hiredis."""

    def __init__(self, url, **options):
        fn = _lib.need(_lib.fl_store_redis_open, "RedisStore")
        ptr = _lib.check(fn(*_redis_args(url, options)), None)
        super().__init__(ptr, repr(url))
        self.url = url

    @staticmethod
    def remove(url, **options):
        """Delete the object at url, every block and its metadata
        (fl_store_redis_remove); options: the connection settings
        (timeout_ms, connections).  FileNotFoundError if there is none."""
        fn = _lib.need(_lib.fl_store_redis_remove, "RedisStore.remove")
        _lib.check(fn(*_redis_args(url, options)))

    def stats(self):
        """Connection and command counters (fl_store_redis_stats), a
        RedisStats."""
        s = _lib.get_stats(_lib.fl_store_redis_stats, _lib.RedisStats, self._handle())
        return _stats.redis_stats(s)


__all__ = ["Store", "FileStore", "FaultyStore", "CompressedStore", "RedisStore"]
