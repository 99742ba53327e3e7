# SPDX-License-Identifier: MIT
"""The engine, its objects and its memory groups.

Lifetimes: every Mapping, Object and Group holds a reference to its Engine,
so the C engine lives as long as anything made from it.  Engine.close()
closes (writes back) every mapping and object and destroys the C engine at
once if no Mapping object is left; if some are (NumPy arrays still refer to
them), the C engine is destroyed when the last of them goes, so that no
view ever points at memory nobody maps.
"""

import ctypes
import errno
import os
import threading
import weakref

from . import _lib
from . import _stats
from ._mapping import mapping_class, _page_round_up
from . import _stores
from ._stores import Store, open_flags

_CONFIG_FIELDS = tuple(name for name, _ in _lib.Config._fields_)
_OOM = {"fail": _lib.FL_OOM_FAIL, "wait": _lib.FL_OOM_WAIT}


def _check_size(name, value, bits=64, none_ok=False):
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int, not %r" % (name, value))
    if not 0 <= value < 2**bits:
        raise ValueError("%s must be in [0, 2**%d), not %d" % (name, bits, value))
    return value


class _Core:
    """The C engine pointer and whether it was destroyed (shared with the
    finalizer, which must not refer to the Engine)."""

    def __init__(self, ptr):
        self.ptr = ptr
        self.lock = threading.RLock()
        self.destroyed = False
        self.pid = os.getpid()

    @property
    def forked(self):
        """True in a child of fork(): the engine's threads are not there,
        and its mappings are unmapped there (the library's rule), so the
        child must not call it, not even to clean up at exit."""
        return os.getpid() != self.pid

    def destroy(self):
        """fl_engine_destroy once; returns the errno it failed with, or 0."""
        with self.lock:
            if self.destroyed:
                return 0
            self.destroyed = True
            if self.forked:
                return 0
            rc = _lib.fl_engine_destroy(self.ptr)
            return (ctypes.get_errno() or errno.EIO) if rc else 0


class Engine:
    """A faultline engine (fl_engine_create), as a context manager.

    Engine(handler_threads=..., fault_around_pages=..., readahead_pages=...,
    anon_fault_around_pages=..., io_threads=..., print_stats_at_destroy=...,
    hold_map_lock_for_io=..., handler_poll_us=...): the fields of struct
    fl_config (handler_poll_us=-1: never poll); those not
    given keep the defaults and FAULTLINE_* environment overrides.
    OSError(EPERM) where userfaultfd is not permitted.
    """

    def __init__(self, **config):
        c, buf = _lib.padded(_lib.Config)
        _lib.fl_config_init(buf)
        for name, value in config.items():
            if name not in _CONFIG_FIELDS:
                raise TypeError("unknown engine setting %r (known: %s)" % (name, ", ".join(_CONFIG_FIELDS)))
            if isinstance(value, bool):
                value = int(value)
            if name == "handler_poll_us" and value == -1:
                c.handler_poll_us = -1  # never poll
                continue
            setattr(c, name, _check_size(name, value, 31))
        ptr = _lib.check(_lib.fl_engine_create(buf), None)
        self._core = _Core(ptr)
        self._config = {name: getattr(c, name) for name in _CONFIG_FIELDS}
        self._closed = False
        self._live = 0  # Mapping objects alive (real or placeholder)
        self._mappings = weakref.WeakSet()
        self._objects = weakref.WeakSet()
        self._finalizer = weakref.finalize(self, self._core.destroy)
        self.root_group = Group._root(self)

    def __repr__(self):
        return "<faultline.Engine%s>" % (" closed" if self._closed else "")

    @property
    def _ptr(self):
        return self._core.ptr

    @property
    def config(self):
        """The settings the engine was made with (a dict)."""
        return dict(self._config)

    @property
    def closed(self):
        return self._closed

    def _check_usable(self, what):
        if self._core.destroyed:
            raise ValueError("%s: the engine was closed" % what)
        if self._core.forked:
            raise ValueError("%s: the engine belongs to the parent process (fork)" % what)

    def _check_open(self, what):
        if self._closed:
            raise ValueError("%s: the engine was closed" % what)
        self._check_usable(what)

    # Objects ---------------------------------------------------------------

    def open(self, source, mode="r+"):
        """An Object: a file (a path) or a store made by the caller (a
        Store, which the object then owns).  mode "r" or "r+"."""
        self._check_open("open")
        flags = open_flags(mode)
        if isinstance(source, Store):
            ptr = source._take()
            try:
                obj = _lib.check(_lib.fl_object_create(self._ptr, ptr, flags), None)
            except BaseException:
                source._untake()
                raise
            o = Object(self, obj, mode, repr(source), source)
            source._given(o)
            return o
        if isinstance(source, (str, bytes, os.PathLike)):
            path = os.fsencode(source)
            obj = _lib.check(_lib.fl_object_open(self._ptr, path, flags), None)
            return Object(self, obj, mode, repr(os.fsdecode(path)), None)
        raise TypeError("open: a path or a faultline Store, not %r" % (source,))

    # Mappings --------------------------------------------------------------

    def map(self, obj=None, length=None, shared=True, writable=True, group=None, offset=0):
        """Map an Object (or a path, opened for the mapping) or, for obj
        None, anonymous memory of length bytes.  Returns a Mapping.

        length: default the object's size from offset; a mapping may not
        reach beyond the object's end (its pages would raise SIGBUS).
        shared: stores reach the object's page cache (and the file on
        sync); False: private copy-on-write.  writable=False maps the
        object privately: the file is never written (stores through a view
        land in private copies, since a buffer cannot be made read-only
        here).  group: a Group of this engine (default: the root).
        """
        self._check_open("map")
        own = None
        if isinstance(obj, (str, bytes, os.PathLike)):
            own = obj = self.open(obj, "r+" if (shared and writable) else "r")
        try:
            return self._map(obj, length, shared, writable, group, offset)
        finally:
            if own is not None:
                own.close()  # the mapping keeps the object alive

    def _map(self, obj, length, shared, writable, group, offset):
        if group is None:
            group = self.root_group
        if not isinstance(group, Group) or group._engine is not self:
            raise ValueError("group must be a Group of this engine, not %r" % (group,))
        group._check_alive("map")
        _check_size("offset", offset)
        if obj is None:
            if offset:
                raise ValueError("anonymous memory has no offset")
            if length is None:
                raise TypeError("anonymous memory needs a length")
            _check_size("length", length)
            size = None
        elif isinstance(obj, Object):
            if obj._engine is not self:
                raise ValueError("%r belongs to another engine" % (obj,))
            obj._check_open("map")
            size = obj.size
            if offset % _lib.PAGE_SIZE:
                raise ValueError("offset must be a multiple of %d" % _lib.PAGE_SIZE)
            if offset > size:
                raise ValueError("offset %d beyond the object's %d bytes" % (offset, size))
            if length is None:
                length = size - offset
            _check_size("length", length)
            if length > size - offset:
                raise ValueError(
                    "length %d from offset %d goes beyond the object's %d bytes "
                    "(those pages would raise SIGBUS)" % (length, offset, size)
                )
        else:
            raise TypeError("map: an Object, a path or None, not %r" % (obj,))
        if length == 0:
            raise ValueError("cannot map 0 bytes" + ("" if size else " (the object is empty)"))
        flags = _lib.MAP_SHARED if (shared and writable) else _lib.MAP_PRIVATE
        if obj is None:
            flags |= _lib.MAP_ANONYMOUS
        maplen = _page_round_up(length)
        prot = _lib.PROT_READ | _lib.PROT_WRITE
        with self._core.lock:
            self._check_open("map")
            addr = _lib.fl_mmap_group(
                self._ptr, group._ptr, None, maplen, prot, flags, obj._ptr if obj else None, offset
            )
            _lib.check(addr, _lib.MAP_FAILED)
            try:
                m = mapping_class(length).from_address(addr)
                m._setup(self, obj, group, addr, length, maplen, shared and writable, writable)
            except BaseException:
                _lib.fl_munmap(self._ptr, addr, maplen)
                raise
            self._live += 1
            self._mappings.add(m)
            if obj is not None:
                obj._mapped += 1
        return m

    def _closing_mapping(self, m):
        """Mapping.close: write back, then replace the range with anonymous
        memory in one step, so that views left behind read zeros."""
        err = None
        if self._core.forked:
            return  # the parent's: nothing to do here
        if m._shared and m._object is not None and not self._core.destroyed:
            if _lib.fl_msync(self._ptr, m._address, m._maplen, _lib.MS_SYNC):
                e = ctypes.get_errno()
                err = OSError(e, "faultline: writeback at close: " + os.strerror(e))
        with self._core.lock:
            if not self._core.destroyed:
                flags = _lib.MAP_PRIVATE | _lib.MAP_ANONYMOUS | _lib.MAP_FIXED
                prot = _lib.PROT_READ | _lib.PROT_WRITE
                addr = _lib.fl_mmap_group(self._ptr, None, m._address, m._maplen, prot, flags, None, 0)
                if addr == _lib.MAP_FAILED and err is None:
                    e = ctypes.get_errno()
                    # The mapping stays as it was, and is unmapped when
                    # its last reference goes.
                    err = OSError(e, "faultline: cannot close the mapping: " + os.strerror(e))
            if m._object is not None:
                m._object._mapped -= 1
        if err is not None:
            raise err

    def _unmap_at_exit(self, address, length):
        """A Mapping object is gone (no view refers to it): unmap its range
        and, if the engine was closed meanwhile, destroy it with the last."""
        with self._core.lock:
            if not self._core.destroyed and not self._core.forked:
                _lib.fl_munmap(self._ptr, address, length)
            self._live -= 1
            last = self._closed and self._live == 0
        if last:
            self._core.destroy()

    # Swap devices ----------------------------------------------------------

    def swap_file(self, path, max_bytes):
        """A swap file at path, created or truncated (fl_swap_file_create),
        holding up to max_bytes.  Give it to a group (group.swap = ...) to
        swap its private and anonymous pages; it is freed (and the file
        truncated) when the engine is destroyed."""
        fn = _lib.need(_lib.fl_swap_file_create, "swap_file")
        self._check_open("swap_file")
        _check_size("max_bytes", max_bytes)
        ptr = _lib.check(fn(self._ptr, os.fsencode(path), max_bytes), None)
        return Swap(self, ptr, "file %r" % (os.fsdecode(path),))

    def swap_store(self, store, max_bytes):
        """A swap device over a Store (fl_swap_store_create): slot n is the
        page at offset n * 4096.  The engine takes the store over, also
        when the call fails."""
        fn = _lib.need(_lib.fl_swap_store_create, "swap_store")
        self._check_open("swap_store")
        if not isinstance(store, Store):
            raise TypeError("swap_store needs a faultline Store, not %r" % (store,))
        _check_size("max_bytes", max_bytes)
        ptr = store._take()
        try:
            sw = Swap(self, _lib.check(fn(self._ptr, ptr, max_bytes), None), "over %r" % (store,))
        except BaseException:
            store._given(_Gone)  # freed by the failed call
            raise
        store._given(sw)
        return sw

    def swap_compressed(self, algorithm="lz4", level=0, pool_bytes=64 << 20, next=None):
        """Compressed memory in front of next (a Swap or None), like zswap
        (fl_swap_compressed_create): pages are compressed into a pool of at
        most pool_bytes; a full pool or an incompressible page goes on to
        next."""
        fn = _lib.need(_lib.fl_swap_compressed_create, "swap_compressed")
        self._check_open("swap_compressed")
        alg = _stores._algorithm(algorithm)
        if isinstance(level, bool) or not isinstance(level, int) or not -(2**31) <= level < 2**31:
            raise ValueError("level must be an int, not %r" % (level,))
        _check_size("pool_bytes", pool_bytes)
        if next is not None and (not isinstance(next, Swap) or next._engine is not self):
            raise ValueError("next must be a Swap of this engine or None, not %r" % (next,))
        ptr = _lib.check(fn(self._ptr, alg, level, pool_bytes, next._ptr if next else None), None)
        return Swap(self, ptr, "compressed %s in front of %r" % (algorithm, next))

    # Groups and statistics -------------------------------------------------

    def group(self, name="group", parent=None, max=None, high=None, oom=None):
        """A new memory Group below parent (default: the root group)."""
        self._check_open("group")
        return Group(self, name, parent, max, high, oom)

    def stats(self):
        """The engine's statistics (fl_engine_stats), a Stats."""
        self._check_open("stats")
        return _stats.stats(_lib.get_stats(_lib.fl_engine_stats, _lib.Stats, self._ptr))

    def lock_stats(self, reset=False):
        """Map-lock hold and wait times (fl_engine_lock_stats), a LockStats;
        reset=True starts them afresh afterwards."""
        self._check_open("lock_stats")
        s = _lib.get_stats(_lib.fl_engine_lock_stats, _lib.LockStats, self._ptr)
        if reset:
            _lib.check(_lib.fl_engine_lock_stats_reset(self._ptr))
        return _stats.lock_stats(s)

    # Life cycle ------------------------------------------------------------

    def close(self):
        """Close every mapping and object (writing back), then destroy the
        engine; if Mapping objects are still referenced (by NumPy arrays,
        memoryviews), the engine is destroyed when the last goes.  Raises
        the first OSError met (EIO: some data could not be written back);
        everything is closed anyway."""
        if self._closed:
            return
        if self._core.forked:
            self._closed = True  # the parent's engine: leave it alone
            return
        errors = []
        for m in list(self._mappings):
            try:
                m.close()
            except OSError as e:
                errors.append(e)
        for o in list(self._objects):
            try:
                o.close()
            except OSError as e:
                errors.append(e)
        with self._core.lock:
            self._closed = True
            now = self._live == 0
        if now:
            e = self._core.destroy()
            if e:
                errors.append(OSError(e, "fl_engine_destroy: " + os.strerror(e)))
        if errors:
            raise errors[0]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Object:
    """What mappings map: a file or a store (fl_object_open/create)."""

    def __init__(self, engine, ptr, mode, what, store):
        self._engine = engine
        self._ptr = ptr
        self.mode = mode
        self._what = what
        self.store = store  # the Store it was made from, or None
        self._closed = False
        self._mapped = 0  # open mappings of it
        self._size = _lib.fl_object_size(ptr)
        self._finalizer = weakref.finalize(self, _close_object, engine._core, ptr)
        engine._objects.add(self)

    def __repr__(self):
        return "<faultline.Object %s, %d bytes%s>" % (self._what, self._size, ", closed" if self._closed else "")

    @property
    def size(self):
        """The object's size in bytes (when it was opened)."""
        return self._size

    @property
    def closed(self):
        return self._closed

    def _check_open(self, what):
        if self._closed:
            raise ValueError("%s: the object was closed" % what)
        self._engine._check_usable(what)

    def _store_alive(self):
        # fl_object_close frees the object (and its store) once no mapping
        # is left; the engine's destroy frees every object.
        return not self._engine._core.destroyed and (not self._closed or self._mapped > 0)

    def close(self):
        """Drop this handle (fl_object_close).  Mappings keep the object;
        when none is left its dirty pages are written back (OSError EIO if
        that fails)."""
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        with self._engine._core.lock:
            if self._engine._core.destroyed or self._engine._core.forked:
                return
            rc = _lib.fl_object_close(self._ptr)
            e = ctypes.get_errno()
        if rc:
            raise OSError(e, "fl_object_close: " + os.strerror(e))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Gone:
    """The owner of a store a failed call freed."""

    @staticmethod
    def _store_alive():
        return False


class Swap:
    """A swap device (Engine.swap_file, swap_store, swap_compressed),
    owned by its engine and freed with it."""

    def __init__(self, engine, ptr, what):
        self._engine = engine
        self._ptr = ptr
        self._what = what

    def __repr__(self):
        return "<faultline.Swap %s>" % self._what

    def _store_alive(self):
        return not self._engine._core.destroyed

    def stats(self):
        """The device's statistics (fl_swap_stats), a SwapStats."""
        self._engine._check_open("stats")
        return _stats.swap_stats(_lib.get_stats(_lib.fl_swap_stats, _lib.SwapStats, self._ptr))


def _close_object(core, ptr):
    with core.lock:
        if not core.destroyed and not core.forked:
            _lib.fl_object_close(ptr)


class Group:
    """A memory group: a hard limit (max), a background-reclaim threshold
    (high) and an OOM policy ("fail": the fault gets SIGBUS; "wait": it
    waits until memory is freed or max raised) for its mappings.

    The C API's callback policy is not offered: its callback runs on an
    engine thread while the faulting thread, often holding Python's GIL in
    NumPy code, waits for it, which would deadlock.  Likewise, under "wait"
    a thread that faulted holding the GIL stops every Python thread until
    another (C) thread frees memory: raise max before, not during.
    """

    def __init__(self, engine, name, parent, max, high, oom):
        if not isinstance(name, str):
            raise TypeError("group name must be a str, not %r" % (name,))
        if parent is None:
            parent = engine.root_group
        if not isinstance(parent, Group) or parent._engine is not engine:
            raise ValueError("parent must be a Group of this engine, not %r" % (parent,))
        parent._check_alive("group")
        _check_size("max", max, none_ok=True)
        _check_size("high", high, none_ok=True)
        if oom is not None and oom not in _OOM:
            raise ValueError("oom must be 'fail' or 'wait', not %r" % (oom,))
        ptr = _lib.check(_lib.fl_group_create(engine._ptr, parent._ptr, name.encode()), None)
        self._setup(engine, ptr, parent)
        try:
            if max is not None:
                self.max = max
            if high is not None:
                self.high = high
            if oom is not None:
                self.oom = oom
        except BaseException:
            self.destroy()
            raise

    def _setup(self, engine, ptr, parent):
        self._engine = engine
        self._ptr = ptr
        self.parent = parent
        self._destroyed = False
        self._oom = "fail"
        self._swap = None

    @classmethod
    def _root(cls, engine):
        g = cls.__new__(cls)
        g._setup(engine, _lib.check(_lib.fl_group_root(engine._ptr), None), None)
        return g

    def __repr__(self):
        return "<faultline.Group %r%s>" % (self.name, ", destroyed" if self._destroyed else "")

    def _check_alive(self, what):
        if self._destroyed:
            raise ValueError("%s: the group was destroyed" % what)
        self._engine._check_usable(what)

    @property
    def name(self):
        if self._destroyed or self._engine._core.destroyed:
            return "?"
        return _lib.fl_group_name(self._ptr).decode(errors="replace")

    def stats(self):
        """The group's statistics (fl_group_stats), a GroupStats."""
        self._check_alive("stats")
        return _stats.group_stats(_lib.get_stats(_lib.fl_group_stats, _lib.GroupStats, self._ptr))

    @property
    def max(self):
        """The hard limit in bytes, or None (unlimited).  Lowering it below
        the usage reclaims down to it."""
        v = self.stats().max
        return None if v == _lib.FL_GROUP_UNLIMITED else v

    @max.setter
    def max(self, value):
        self._check_alive("max")
        v = _check_size("max", value, none_ok=True)
        _lib.check(_lib.fl_group_set_max(self._ptr, _lib.FL_GROUP_UNLIMITED if v is None else v))

    @property
    def high(self):
        """Above high bytes the engine reclaims in the background; None:
        no such threshold."""
        v = self.stats().high
        return None if v == _lib.FL_GROUP_UNLIMITED else v

    @high.setter
    def high(self, value):
        self._check_alive("high")
        v = _check_size("high", value, none_ok=True)
        _lib.check(_lib.fl_group_set_high(self._ptr, _lib.FL_GROUP_UNLIMITED if v is None else v))

    @property
    def oom(self):
        """The OOM policy: "fail" or "wait"."""
        return self._oom

    @oom.setter
    def oom(self, policy):
        self._check_alive("oom")
        if policy not in _OOM:
            raise ValueError("oom must be 'fail' or 'wait', not %r" % (policy,))
        _lib.check(_lib.fl_group_set_oom(self._ptr, _OOM[policy], None, None))
        self._oom = policy

    @property
    def swap(self):
        """The Swap device the group's private and anonymous pages go to,
        as set here; None: the parent's (the root's default: no swap)."""
        return self._swap

    @swap.setter
    def swap(self, device):
        fn = _lib.need(_lib.fl_group_set_swap, "Group.swap")
        self._check_alive("swap")
        if device is not None and (not isinstance(device, Swap) or device._engine is not self._engine):
            raise ValueError("swap must be a Swap of this engine or None, not %r" % (device,))
        _lib.check(fn(self._ptr, device._ptr if device else None))
        self._swap = device

    @property
    def swap_max(self):
        """The most swap the group and its descendants may hold, in bytes;
        None: unlimited."""
        v = self.stats().swap_max
        return None if v == _lib.FL_GROUP_UNLIMITED else v

    @swap_max.setter
    def swap_max(self, value):
        fn = _lib.need(_lib.fl_group_set_swap_max, "Group.swap_max")
        self._check_alive("swap_max")
        v = _check_size("swap_max", value, none_ok=True)
        _lib.check(fn(self._ptr, _lib.FL_GROUP_UNLIMITED if v is None else v))

    def set_dirty_ratio(self, ratio, background_ratio):
        """Dirty limits in percent of max (fl_group_set_dirty_ratio):
        above background_ratio the flusher writes back in the background,
        above the midpoint to ratio writers are paused briefly.  ValueError
        unless 0 < background_ratio <= ratio <= 100."""
        fn = _lib.need(_lib.fl_group_set_dirty_ratio, "set_dirty_ratio")
        self._check_alive("set_dirty_ratio")
        for name, v in (("ratio", ratio), ("background_ratio", background_ratio)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError("%s must be an int, not %r" % (name, v))
        if not 0 < background_ratio <= ratio <= 100:
            raise ValueError("need 0 < background_ratio <= ratio <= 100, not %r, %r" % (ratio, background_ratio))
        _lib.check(fn(self._ptr, ratio, background_ratio))

    def destroy(self):
        """Free the group (fl_group_destroy): OSError(EBUSY) while it has
        children, mappings or charged memory.  Not the root."""
        if self.parent is None:
            raise ValueError("the root group cannot be destroyed")
        if self._destroyed:
            return
        self._engine._check_usable("destroy")
        _lib.check(_lib.fl_group_destroy(self._ptr))
        self._destroyed = True
