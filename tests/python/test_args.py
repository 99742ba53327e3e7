# SPDX-License-Identifier: MIT
"""Bad arguments raise (TypeError, ValueError, OSError with errno); none
reaches the C library in a form that could crash the interpreter."""

import errno
import os

import pytest

import faultline
from conftest import MiB, make_engine


def test_engine_settings():
    with pytest.raises(TypeError):
        faultline.Engine(bogus=1)
    with pytest.raises(ValueError):
        faultline.Engine(handler_threads=-1)
    with pytest.raises(ValueError):
        faultline.Engine(readahead_pages=2**40)
    with pytest.raises(TypeError):
        faultline.Engine(io_threads="2")
    with pytest.raises(TypeError):
        faultline.Engine(io_threads=1.5)


def test_open_errors(engine, tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        engine.open(tmp_path / "missing")
    assert info.value.errno == errno.ENOENT
    with pytest.raises(IsADirectoryError):
        engine.open(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OSError) as info:
        engine.open(tmp_path / "fifo")  # not waited on
    assert info.value.errno == errno.EINVAL
    (tmp_path / "f").write_bytes(b"x" * 4096)
    for mode in ("w", "rw", "", None, 1):
        with pytest.raises(ValueError):
            engine.open(tmp_path / "f", mode)
    for source in (1, None, 2.0, object()):
        with pytest.raises(TypeError):
            engine.open(source)
    with pytest.raises(FileNotFoundError):
        faultline.FileStore(tmp_path / "missing")
    with pytest.raises(ValueError):
        faultline.FileStore(tmp_path / "f", "a")


def test_map_errors(engine, tmp_path):
    (tmp_path / "f").write_bytes(b"x" * (16 * 1024))
    (tmp_path / "empty").write_bytes(b"")
    obj = engine.open(tmp_path / "f")
    with pytest.raises(TypeError):
        engine.map(None)  # anonymous memory needs a length
    for length in (0, -1, 2**64):
        with pytest.raises(ValueError):
            engine.map(None, length)
    with pytest.raises(TypeError):
        engine.map(None, "1")
    with pytest.raises(ValueError):
        engine.map(obj, 16 * 1024 + 1)  # beyond the end: would SIGBUS
    with pytest.raises(ValueError):
        engine.map(obj, offset=100)
    with pytest.raises(ValueError):
        engine.map(obj, offset=32 * 1024)
    with pytest.raises(ValueError):
        engine.map(obj, offset=-4096)
    with pytest.raises(ValueError):
        engine.map(None, 4096, offset=4096)
    with pytest.raises(ValueError):
        engine.map(engine.open(tmp_path / "empty"))
    with pytest.raises(TypeError):
        engine.map(42)
    with pytest.raises(FileNotFoundError):
        engine.map(tmp_path / "missing")
    with pytest.raises(ValueError):
        engine.map(None, 4096, group="root")
    ro = engine.open(tmp_path / "f", "r")
    with pytest.raises(PermissionError) as info:
        engine.map(ro, shared=True, writable=True)
    assert info.value.errno == errno.EACCES
    other = make_engine()
    try:
        with pytest.raises(ValueError):
            engine.map(other.open(tmp_path / "f"))
        with pytest.raises(ValueError):
            engine.map(None, 4096, group=other.group("g"))
    finally:
        other.close()
    obj.close()
    with pytest.raises(ValueError):
        engine.map(obj)  # closed
    ro.close()


def test_mapping_errors(engine):
    m = engine.map(None, 2 * 4096)
    for args in ((-1, 1), (0, 2 * 4096 + 1), (2 * 4096 + 1, 0), (1, -1)):
        with pytest.raises(ValueError):
            m.read(*args)
    with pytest.raises(TypeError):
        m.read("0")
    with pytest.raises(ValueError):
        m.write(2 * 4096 - 1, b"ab")
    with pytest.raises(TypeError):
        m.write(0, "text")
    with pytest.raises(TypeError):
        m.readinto(b"immutable")
    for advice in ("bogus", None, 3):
        with pytest.raises(ValueError):
            m.advise(advice)
    with pytest.raises(ValueError):
        m.sync(0, 3 * 4096)
    m.close()
    m.close()  # twice is fine
    for call in (m.sync, m.stats, lambda: m.read(0, 1), lambda: m.write(0, b"x"), lambda: m.advise("random")):
        with pytest.raises(ValueError):
            call()


def test_group_errors(engine):
    for bad in (-1, 2**64):
        with pytest.raises(ValueError):
            engine.group("g", max=bad)
    with pytest.raises(TypeError):
        engine.group("g", high="1")
    with pytest.raises(ValueError):
        engine.group("g", oom="kill")
    with pytest.raises(ValueError):
        engine.group("g", oom="callback")  # not offered (see Group)
    with pytest.raises(TypeError):
        engine.group(7)
    with pytest.raises(ValueError):
        engine.group("g", parent="root")
    g = engine.group("g")
    with pytest.raises(ValueError):
        g.oom = "never"
    with pytest.raises(ValueError):
        g.max = -5
    child = engine.group("child", parent=g)
    with pytest.raises(OSError) as info:
        g.destroy()  # it has a child
    assert info.value.errno == errno.EBUSY
    child.destroy()
    g.destroy()
    g.destroy()  # twice is fine
    with pytest.raises(ValueError):
        g.stats()
    with pytest.raises(ValueError):
        engine.map(None, 4096, group=g)
    with pytest.raises(ValueError):
        engine.root_group.destroy()


def test_store_errors(engine, tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 4096)
    with pytest.raises(TypeError):
        faultline.FaultyStore("not a store")
    inner = faultline.FileStore(tmp_path / "f")
    with pytest.raises(TypeError):
        faultline.FaultyStore(inner, bogus=1)
    with pytest.raises(ValueError):
        faultline.FaultyStore(inner, read_delay_us=-1)
    with pytest.raises(TypeError):
        faultline.FaultyStore(inner, fail_errno="EIO")
    assert inner.alive  # still the caller's after the failures
    store = faultline.FaultyStore(inner)
    with pytest.raises(ValueError):
        faultline.FaultyStore(inner)  # already wrapped
    with pytest.raises(ValueError):
        engine.open(inner)
    with pytest.raises(ValueError):
        store.hold(-1, 1)
    obj = engine.open(store, "r")
    with pytest.raises(ValueError):
        engine.open(store)  # already an object's
    obj.close()
    ro = faultline.FileStore(tmp_path / "f", "r")
    with pytest.raises(PermissionError):
        engine.open(ro, "r+")
    assert ro.alive  # a failed open leaves the store to the caller
    ro.close()
    assert not ro.alive


def test_closed_engine():
    e = make_engine()
    m = e.map(None, 4096)
    e.close()
    e.close()
    for call in (lambda: e.map(None, 4096), e.stats, lambda: e.group("g"), lambda: e.open("/dev/null")):
        with pytest.raises(ValueError):
            call()
    assert m.closed
    assert bytes(memoryview(m)[:4]) == bytes(4)  # the placeholder: zeros
    del m
    with pytest.raises(ValueError):
        e.lock_stats()


def test_big_anonymous_length_fails_cleanly(engine):
    with pytest.raises(OSError) as info:
        engine.map(None, 1 << 62)
    assert info.value.errno == errno.ENOMEM
    m = engine.map(None, MiB)  # the engine goes on
    m.close()


def test_fork_child_leaves_the_parents_engine_alone(engine, tmp_path):
    """A child of fork() sees faultline's ranges unmapped (the library's
    rule): the package refuses calls there and cleans nothing up at exit,
    and the parent's mapping is untouched."""
    m = engine.map(None, 4096)
    m.write(0, b"parent")
    pid = os.fork()
    if pid == 0:  # the child: exit through the finalizers and atexit
        code = 0
        try:
            m.read(0, 1)
            code = 1
        except ValueError:
            pass
        try:
            engine.map(None, 4096)
            code = 1
        except ValueError:
            pass
        engine.close()
        m.close()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert m.read(0, 6) == b"parent"
    m.close()
