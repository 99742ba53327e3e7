# SPDX-License-Identifier: MIT
"""Mappings: faulting memory that Python code sees through the buffer
protocol.

A Mapping *is* a ctypes array of unsigned bytes placed at the mapping's
address (a class per length, made on demand), so numpy.frombuffer(mapping),
memoryview(mapping) and ctypes' from_buffer see the faulting memory itself,
without a copy, and every view holds a reference to the Mapping: the memory
stays mapped while any view exists.

close() cannot know whether views still exist (NumPy's frombuffer keeps a
plain reference), so it never leaves a view pointing at unmapped memory: it
writes back, then replaces the range in one step (fl_mmap MAP_FIXED) with
private anonymous memory.  A view kept past close() reads zeros and its
stores go nowhere; the range is unmapped when the last reference goes.
"""

import ctypes
import errno
import functools
import os
import struct
import threading
import weakref

from . import _lib
from . import _stats

# ---------------------------------------------------------------------------
# Copying through the kernel: SIGBUS becomes EFAULT
# ---------------------------------------------------------------------------


class FaultError(OSError):
    """A page of a mapping could not be served (a store read error, a page
    beyond the end of the object, no memory under the OOM policy "fail").

    A direct access (NumPy, memoryview, ctypes) to such a page gets SIGBUS,
    which kills the interpreter; Mapping.read, readinto and write make the
    kernel do the copy instead, which then fails with EFAULT, raised as this
    exception.  offset: the first byte, from the start of the mapping, that
    could not be copied."""

    def __init__(self, offset, action):
        super().__init__(
            errno.EFAULT,
            "faultline: the page at offset %d could not be served while %s "
            "(a direct access would have raised SIGBUS)" % (offset, action),
        )
        self.offset = offset


class _Scratch:
    """A pool of memfds the copies pass through (one per concurrent copy)."""

    CHUNK = 4 << 20

    def __init__(self):
        self._free = []
        self._lock = threading.Lock()

    def get(self):
        with self._lock:
            if self._free:
                return self._free.pop()
        return os.memfd_create("faultline-copy", os.MFD_CLOEXEC)

    def put(self, fd):
        os.ftruncate(fd, 0)  # keep no copy of the data
        with self._lock:
            self._free.append(fd)


_scratch = _Scratch()


def _write_out(fd, view, base, action):
    """Write all of view (the mapping's bytes from offset base) to fd at 0,
    raising FaultError where the kernel could not read a page."""
    done = 0
    while done < len(view):
        try:
            n = os.pwrite(fd, view[done:], done)
        except OSError as e:
            if e.errno == errno.EFAULT:
                raise FaultError(base + done, action) from None
            raise
        done += n


def _read_in(fd, view, base, action):
    """Fill view (the mapping's bytes from offset base) from fd at 0."""
    done = 0
    while done < len(view):
        try:
            n = os.preadv(fd, [view[done:]], done)
        except OSError as e:
            if e.errno == errno.EFAULT:
                raise FaultError(base + done, action) from None
            raise
        if n == 0:
            raise OSError(errno.EIO, "faultline: short read of the copy buffer")
        done += n


# ---------------------------------------------------------------------------
# The Mapping type
# ---------------------------------------------------------------------------


def _page_round_up(n):
    return (n + _lib.PAGE_SIZE - 1) & ~(_lib.PAGE_SIZE - 1)


def _offset_range(mapping, offset, length, what):
    """Check an [offset, offset+length) within the mapping; length None:
    to the end."""
    size = mapping._length
    if isinstance(offset, bool) or not isinstance(offset, int):
        raise TypeError("%s: offset must be an int, not %r" % (what, offset))
    if not 0 <= offset <= size:
        raise ValueError("%s: offset %d outside the mapping (0..%d)" % (what, offset, size))
    if length is None:
        length = size - offset
    if isinstance(length, bool) or not isinstance(length, int):
        raise TypeError("%s: length must be an int, not %r" % (what, length))
    if not 0 <= length <= size - offset:
        raise ValueError(
            "%s: length %d from offset %d goes beyond the mapping's %d bytes" % (what, length, offset, size)
        )
    return offset, length


def _release(engine, address, length):
    """Unmap a mapping (or its placeholder) whose Python object is gone."""
    engine._unmap_at_exit(address, length)


class Mapping:
    """A faultline mapping (made by Engine.map).

    It supports the buffer protocol: numpy.frombuffer(m, dtype),
    memoryview(m), len(m), m[i].  Direct accesses to pages that cannot be
    served raise SIGBUS, as with mmap; read(), readinto() and write() raise
    FaultError instead.
    """

    __slots__ = ()
    __hash__ = object.__hash__  # ctypes arrays are unhashable; identity is meant

    # Set by Engine.map on each instance (the class has no __init__: ctypes'
    # from_address makes the instance).
    def _setup(self, engine, obj, group, address, length, maplen, shared, writable):
        self._engine = engine
        self._object = obj
        self._group = group
        self._address = address
        self._length = length
        self._maplen = maplen
        self._shared = shared
        self._writable = writable
        self._closed = False
        self._lock = threading.Lock()
        self._finalizer = weakref.finalize(self, _release, engine, address, maplen)

    def __repr__(self):
        return "<faultline.Mapping %d bytes at 0x%x, %s%s%s>" % (
            self._length,
            self._address,
            "shared" if self._shared else "private",
            "" if self._writable else ", read-only",
            ", closed" if self._closed else "",
        )

    # Attributes ------------------------------------------------------------

    @property
    def address(self):
        """The mapping's address (an int)."""
        return self._address

    @property
    def size(self):
        """The mapping's length in bytes (as len())."""
        return self._length

    @property
    def shared(self):
        return self._shared

    @property
    def writable(self):
        return self._writable

    @property
    def closed(self):
        return self._closed

    @property
    def object(self):
        """The Object mapped, or None for anonymous memory."""
        return self._object

    @property
    def group(self):
        """The Group the mapping is charged to."""
        return self._group

    @property
    def engine(self):
        return self._engine

    def _check_open(self, what):
        if self._closed:
            raise ValueError("%s on a closed mapping" % what)
        self._engine._check_usable(what)

    def _page_span(self, offset, length):
        """[offset, offset+length) widened to whole pages: (address, len)."""
        start = offset & ~(_lib.PAGE_SIZE - 1)
        end = min(_page_round_up(offset + length), self._maplen)
        return self._address + start, end - start

    # Operations ------------------------------------------------------------

    def view(self, format="B"):
        """A memoryview of the whole mapping with the given struct format
        ("B": bytes, "Q": uint64...).  memoryview(mapping) works too, but
        its format is ctypes' "<B", which memoryview cannot index.  Bytes
        past the last whole item are left out."""
        self._check_open("view")
        mv = memoryview(self).cast("B")
        if format == "B":
            return mv
        size = struct.calcsize(format)
        return mv[: len(mv) - len(mv) % size].cast(format)

    def sync(self, offset=0, length=None):
        """Write back the dirty pages of [offset, offset+length) (default:
        all) to the store (fl_msync MS_SYNC).  OSError(EIO) if a store write
        failed; those pages stay dirty and a later sync tries again."""
        self._check_open("sync")
        offset, length = _offset_range(self, offset, length, "sync")
        if length == 0:
            return
        addr, n = self._page_span(offset, length)
        _lib.check(_lib.fl_msync(self._engine._ptr, addr, n, _lib.MS_SYNC))

    flush = sync

    def advise(self, advice, offset=0, length=None):
        """fl_madvise: "normal", "sequential", "random", "willneed" (read
        the range in now), "dontneed" (drop this mapping's view: private
        copies and anonymous pages are freed, the page cache kept) or
        "remove" (shared anonymous memory only: free the pages, in memory
        or swapped out; the range reads zeros)."""
        self._check_open("advise")
        try:
            code = _lib.MADV[advice]
        except (KeyError, TypeError):
            raise ValueError("advice must be one of %s, not %r" % (", ".join(_lib.MADV), advice)) from None
        offset, length = _offset_range(self, offset, length, "advise")
        if length == 0:
            return
        addr, n = self._page_span(offset, length)
        _lib.check(_lib.fl_madvise(self._engine._ptr, addr, n, code))

    def stats(self):
        """The mapping's statistics (fl_mapping_stats), a Stats."""
        self._check_open("stats")
        s = _lib.get_stats(_lib.fl_mapping_stats, _lib.Stats, self._engine._ptr, self._address)
        return _stats.stats(s)

    def read(self, offset=0, size=None):
        """Copy size bytes (default: to the end) from offset into a new
        bytes object.  A page that cannot be served raises FaultError (a
        direct access would get SIGBUS)."""
        buf = bytearray(_offset_range(self, offset, size, "read")[1])
        self.readinto(buf, offset)
        return bytes(buf)

    def readinto(self, buffer, offset=0):
        """Copy len(buffer) bytes from offset into a writable buffer;
        returns the count.  FaultError as read()."""
        self._check_open("readinto")
        dst = memoryview(buffer).cast("B")
        if dst.readonly:
            raise TypeError("readinto needs a writable buffer")
        offset, length = _offset_range(self, offset, len(dst), "readinto")
        src = memoryview(self)
        fd = _scratch.get()
        try:
            for o in range(0, length, _Scratch.CHUNK):
                n = min(_Scratch.CHUNK, length - o)
                _write_out(fd, src[offset + o : offset + o + n], offset + o, "reading")
                got = os.preadv(fd, [dst[o : o + n]], 0)
                if got != n:
                    raise OSError(errno.EIO, "faultline: short read of the copy buffer")
        finally:
            _scratch.put(fd)
        return length

    def write(self, offset, data):
        """Copy data (any bytes-like object) into the mapping at offset;
        returns the count.  A page that cannot be served raises FaultError
        (bytes before it were written).  Not for read-only mappings."""
        self._check_open("write")
        if not self._writable:
            raise PermissionError(errno.EACCES, "write to a read-only mapping")
        src = memoryview(data).cast("B")
        offset, length = _offset_range(self, offset, len(src), "write")
        dst = memoryview(self)
        fd = _scratch.get()
        try:
            for o in range(0, length, _Scratch.CHUNK):
                n = min(_Scratch.CHUNK, length - o)
                os.pwrite(fd, src[o : o + n], 0)
                _read_in(fd, dst[offset + o : offset + o + n], offset + o, "writing")
        finally:
            _scratch.put(fd)
        return length

    def close(self):
        """Write back and unmap.  Views kept past close() see zeros (the
        range is replaced by anonymous memory until the last reference to
        the Mapping goes).  OSError(EIO) if the writeback failed (the
        mapping is closed anyway)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._engine._closing_mapping(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __reduce__(self):
        # ctypes would pickle (and copy.copy would copy) every byte.
        raise TypeError("a faultline Mapping cannot be pickled or copied; copy numpy.frombuffer(m) instead")


@functools.lru_cache(maxsize=256)
def mapping_class(length):
    """The Mapping class of a given length: Mapping's methods over a ctypes
    array of that many unsigned bytes."""
    return type("Mapping", (Mapping, ctypes.c_ubyte * length), {"__module__": "faultline"})
