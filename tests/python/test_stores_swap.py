# SPDX-License-Identifier: MIT
"""Swap devices, the compressed store, the Redis store and dirty limits,
from Python; each test is skipped where the library lacks the part (or was
built without its optional library), saying why."""

import errno
import os
import shutil
import socket
import subprocess
import time
import uuid

import pytest

import faultline
from conftest import MiB

np = pytest.importorskip("numpy")


# Swap ------------------------------------------------------------------------


def anonymous_four_times_the_limit(engine, device):
    g = engine.group("anon", max=1 * MiB, oom="wait")
    g.swap = device
    assert g.swap is device
    m = engine.map(None, 4 * MiB, shared=False, group=g)
    x = np.frombuffer(m, dtype=np.uint64)
    x[:] = np.arange(len(x), dtype=np.uint64) * 3
    assert np.array_equal(x, np.arange(len(x), dtype=np.uint64) * 3)
    gs = g.stats()
    assert gs.peak <= 1 * MiB
    del x
    m.close()
    return g, gs


@pytest.mark.calls("fl_swap_file_create")
def test_swap_file(engine, tmp_path):
    swap = engine.swap_file(tmp_path / "swap", 16 * MiB)
    g, gs = anonymous_four_times_the_limit(engine, swap)
    st = swap.stats()
    assert st.slots == 16 * MiB // 4096
    assert st.pages_written >= 3 * MiB // 4096 and st.pages_read > 0
    assert st.read_errors == 0 and st.write_errors == 0
    assert gs.swap_outs >= 3 * MiB // 4096 and gs.swap_ins > 0
    # Pages read back keep their slots (swap is far from half full), and
    # reclaim drops them again without writing them.
    assert gs.swap_outs_clean > 0
    assert g.swap_max is None
    g.swap_max = 1 * MiB
    assert g.swap_max == 1 * MiB and g.stats().swap_max == 1 * MiB


@pytest.mark.calls("fl_swap_store_create")
def test_swap_store(engine, tmp_path):
    (tmp_path / "slots").write_bytes(b"")
    store = faultline.FileStore(tmp_path / "slots")
    swap = engine.swap_store(store, 8 * MiB)
    assert store.alive
    with pytest.raises(ValueError):
        engine.open(store)  # the swap device's now
    anonymous_four_times_the_limit(engine, swap)
    assert swap.stats().pages_written > 0


@pytest.mark.calls("fl_swap_file_create")
def test_swap_arguments(engine, tmp_path):
    with pytest.raises(OSError) as info:
        engine.swap_file(tmp_path / "swap", 100)  # below one page
    assert info.value.errno == errno.EINVAL
    with pytest.raises(FileNotFoundError):
        engine.swap_file(tmp_path / "missing" / "swap", MiB)
    with pytest.raises(TypeError):
        engine.swap_store("store", MiB)
    g = engine.group("g")
    with pytest.raises(ValueError):
        g.swap = "device"
    with pytest.raises(ValueError):
        g.swap_max = -1
    (tmp_path / "ro").write_bytes(b"")
    ro = faultline.FileStore(tmp_path / "ro", "r")
    with pytest.raises(OSError):
        engine.swap_store(ro, MiB)  # a read-only store
    assert not ro.alive  # taken over even so, and freed


@pytest.mark.calls("fl_swap_compressed_create")
def test_compressed_swap(engine, tmp_path):
    swap = None
    for algorithm in ("lz4", "zstd"):
        try:
            swap = engine.swap_compressed(algorithm, pool_bytes=8 * MiB)
            break
        except OSError as e:
            if e.errno != errno.EOPNOTSUPP:
                raise
    if swap is None:
        pytest.skip("faultline was built without zstd and lz4")
    anonymous_four_times_the_limit(engine, swap)
    assert swap.stats().pages_written > 0


# The compressed store --------------------------------------------------------


def compressed_over(path, **kw):
    for algorithm in ("zstd", "lz4"):
        try:
            return faultline.CompressedStore(faultline.FileStore(path), algorithm, **kw)
        except OSError as e:
            if e.errno != errno.EOPNOTSUPP:
                raise
    pytest.skip("faultline was built without zstd and lz4")


@pytest.mark.calls("fl_store_compressed")
def test_compressed_store(engine, tmp_path):
    path = tmp_path / "z"
    path.write_bytes(b"")
    store = compressed_over(path, block_size=64 * 1024)
    data = (np.arange(2 * MiB // 8, dtype=np.uint64) // 1000).tobytes()  # compresses well
    assert store.write(0, data) == len(data)
    assert store.size == len(data) and store.read(4096, 8) == data[4096:4104]
    m = engine.map(engine.open(store))
    x = np.frombuffer(m, dtype=np.uint64)
    assert x.tobytes() == data
    x[12345] = 777
    m.sync()
    st = store.stats()
    assert st.block_size == 64 * 1024 and st.bytes_in > 4 * st.bytes_out
    assert os.path.getsize(path) < len(data) // 2 or st.bytes_stored < len(data) // 2
    del x
    m.close()
    # Opened again (any algorithm): the data as written.
    again = compressed_over(path)
    m = engine.map(engine.open(again))
    assert np.frombuffer(m, dtype=np.uint64)[12345] == 777
    m.close()


@pytest.mark.calls("fl_store_compressed")
def test_compressed_store_arguments(engine, tmp_path):
    (tmp_path / "z").write_bytes(b"")
    inner = faultline.FileStore(tmp_path / "z")
    with pytest.raises(ValueError):
        faultline.CompressedStore(inner, "gzip")
    with pytest.raises(OSError) as info:
        faultline.CompressedStore(inner, "none", block_size=1000)
    assert info.value.errno == errno.EINVAL
    assert inner.alive  # left to the caller
    (tmp_path / "junk").write_bytes(b"not a compressed store" * 1000)
    with pytest.raises(OSError) as info:
        faultline.CompressedStore(faultline.FileStore(tmp_path / "junk"), "none")
    assert info.value.errno == errno.EBADMSG


# The Redis store -------------------------------------------------------------


@pytest.fixture
def redis_url(tmp_path):
    server = shutil.which("redis-server")
    if not server:
        pytest.skip("redis-server is not installed (Debian: redis-server)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("redis-server did not start on port %d" % port)
            time.sleep(0.01)
        yield "redis://127.0.0.1:%d/pytest-%s" % (port, uuid.uuid4().hex)
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.calls("fl_store_redis_open")
def test_redis_store(redis_url):
    from conftest import make_engine

    try:
        store = faultline.RedisStore(redis_url, create_size=1 * MiB, block_size=65536, exclusive=True)
    except OSError as e:
        if e.errno == errno.EOPNOTSUPP:
            pytest.skip("faultline was built without hiredis")
        raise
    with make_engine() as e:
        m = e.map(e.open(store))
        x = np.frombuffer(m, dtype=np.uint64)
        assert not x.any()  # a new object reads as zeros
        x[::97] = np.arange(len(x[::97]), dtype=np.uint64) + 1
        m.sync()
        st = store.stats()
        assert st.block_size == 65536 and st.blocks_written > 0 and st.round_trips > 0
        del x
    with pytest.raises(FileExistsError):
        faultline.RedisStore(redis_url, create_size=MiB, exclusive=True)
    with make_engine() as e:
        m = e.map(e.open(faultline.RedisStore(redis_url)))  # the object as it is
        x = np.frombuffer(m, dtype=np.uint64)
        assert np.array_equal(x[::97], np.arange(len(x[::97]), dtype=np.uint64) + 1)
        assert m.read(8, 8) == bytes(8)
        del x
    faultline.RedisStore.remove(redis_url)
    with pytest.raises(FileNotFoundError):
        faultline.RedisStore(redis_url)
    with pytest.raises(FileNotFoundError):
        faultline.RedisStore.remove(redis_url)


@pytest.mark.calls("fl_store_redis_open", "fl_store_compressed")
def test_compressed_store_in_redis(redis_url):
    from conftest import make_engine

    try:
        redis = faultline.RedisStore(redis_url, create=True)  # empty, grown by the writes
    except OSError as e:
        if e.errno == errno.EOPNOTSUPP:
            pytest.skip("faultline was built without hiredis")
        raise
    store = None
    for algorithm in ("zstd", "lz4"):
        try:
            store = faultline.CompressedStore(redis, algorithm)
            break
        except OSError as e:
            if e.errno != errno.EOPNOTSUPP:
                raise
    if store is None:
        pytest.skip("faultline was built without zstd and lz4")
    data = bytes(1 * MiB)
    store.write(0, data)
    with make_engine() as e:
        m = e.map(e.open(store))
        assert m.read(0, len(data)) == data
        m.write(4096, b"in redis, compressed")
        m.sync()
        assert store.stats().bytes_in > store.stats().bytes_out
        assert redis.stats().blocks_written > 0


@pytest.mark.calls("fl_store_redis_open")
def test_redis_arguments(redis_url):
    try:
        faultline.RedisStore.remove(redis_url)
    except OSError as e:
        if e.errno == errno.EOPNOTSUPP:
            pytest.skip("faultline was built without hiredis")
        if e.errno != errno.ENOENT:  # nothing there yet: as expected
            raise
    with pytest.raises(TypeError):
        faultline.RedisStore(redis_url, bogus=1)
    with pytest.raises(TypeError):
        faultline.RedisStore(b"redis://x/y")
    with pytest.raises(ValueError):
        faultline.RedisStore(redis_url, timeout_ms=-1)
    with pytest.raises(OSError) as info:
        faultline.RedisStore("http://nowhere/x")
    assert info.value.errno == errno.EINVAL
    with pytest.raises(FileNotFoundError):
        faultline.RedisStore(redis_url + "-missing")  # no object, no create_size


# Dirty limits ----------------------------------------------------------------


@pytest.mark.calls("fl_group_set_dirty_ratio")
def test_dirty_ratio(engine, datafile):
    g = engine.group("w", max=4 * MiB, oom="wait")
    gs = g.stats()
    pages = 4 * MiB * faultline.DIRTY_RATIO_DEFAULT // 100 // 4096  # whole pages
    assert gs.dirty_limit == pages * 4096
    g.set_dirty_ratio(50, 25)
    gs = g.stats()
    assert gs.dirty_limit == 2 * MiB and gs.dirty_background == 1 * MiB
    for bad in ((10, 20), (0, 0), (101, 50)):
        with pytest.raises(ValueError):
            g.set_dirty_ratio(*bad)
    with pytest.raises(TypeError):
        g.set_dirty_ratio("50", 25)
    path, a = datafile(16 * MiB)
    m = engine.map(engine.open(path), group=g)
    x = np.frombuffer(m, dtype=np.uint64)
    x += 1  # dirties four times the limit
    m.sync()
    gs = g.stats()
    assert gs.peak <= 4 * MiB and gs.pages_written_back + gs.pages_flushed > 0
    assert np.array_equal(np.fromfile(path, dtype=np.uint64), a + 1)
    del x
    m.close()
