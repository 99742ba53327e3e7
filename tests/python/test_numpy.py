# SPDX-License-Identifier: MIT
"""NumPy over faultline mappings: reductions under a group limit, writes
reaching the file, private and anonymous memory, memoryview."""

import errno

import pytest

from conftest import MiB

np = pytest.importorskip("numpy")


def test_reduction_over_four_times_the_group_limit(engine, datafile):
    path, _ = datafile(16 * MiB)
    group = engine.group("quarter", max=4 * MiB, oom="wait")
    m = engine.map(engine.open(path, "r"), writable=False, group=group)
    x = np.frombuffer(m, dtype=np.uint64)
    ref = np.memmap(path, dtype=np.uint64, mode="r")
    assert x.shape == ref.shape
    assert int(x.sum()) == int(ref.sum())
    assert int(x.max()) == int(ref.max())
    assert int((x % 1009).sum()) == int((ref % 1009).sum())
    assert np.array_equal(x[::4099], ref[::4099])
    f = np.frombuffer(m, dtype=np.float64)  # the same bytes, another dtype
    assert np.array_equal(np.isnan(f), np.isnan(np.asarray(ref).view(np.float64)))
    gs = group.stats()
    assert gs.max == 4 * MiB and group.max == 4 * MiB
    assert gs.peak <= 4 * MiB and gs.usage <= 4 * MiB
    assert gs.pages_reclaimed > 0, "16 MiB read through a 4 MiB group must reclaim"
    ms = m.stats()
    assert ms.major_faults > 0 and ms.pages_read >= (16 * MiB) // 4096
    assert ms.errors == 0
    del x, f
    m.close()


def test_numpy_writes_reach_the_file_after_sync(engine, datafile):
    path, a = datafile(4 * MiB)
    m = engine.map(engine.open(path))
    x = np.frombuffer(m, dtype=np.uint64)
    x[::1000] = np.arange(len(x[::1000]), dtype=np.uint64) + 7
    x[-1] = 42
    assert m.stats().dirty_pages > 0
    m.sync()
    st = m.stats()
    assert st.dirty_pages == 0 and st.pages_written > 0
    want = a.copy()
    want[::1000] = np.arange(len(want[::1000]), dtype=np.uint64) + 7
    want[-1] = 42
    assert np.array_equal(np.fromfile(path, dtype=np.uint64), want)
    del x
    m.close()


def test_private_writes_stay_private(engine, datafile):
    path, a = datafile(1 * MiB)
    m = engine.map(engine.open(path), shared=False)
    x = np.frombuffer(m, dtype=np.uint64)
    x[:10] = 0
    assert m.stats().cow_copies > 0
    del x
    m.close()
    assert np.array_equal(np.fromfile(path, dtype=np.uint64), a)


def test_read_only_mapping_never_writes_the_file(engine, datafile):
    path, a = datafile(256 * 1024)
    m = engine.map(path, writable=False)  # a path: opened "r" for the mapping
    assert not m.writable and m.object.mode == "r"
    x = np.frombuffer(m, dtype=np.uint64)
    x[0] += 1  # lands in a private copy: a buffer cannot be made read-only
    with pytest.raises(PermissionError):
        m.write(0, b"x")
    del x
    m.close()
    assert np.array_equal(np.fromfile(path, dtype=np.uint64), a)


def test_anonymous_memory_and_memoryview(engine):
    m = engine.map(None, 3 * MiB + 100)
    assert len(m) == 3 * MiB + 100 and m.object is None
    mv = m.view()  # memoryview(m), cast to "B" so that it can be indexed
    assert mv.nbytes == len(m) and not mv.readonly and mv.format == "B"
    assert memoryview(m).nbytes == len(m)
    assert m.read(0, 4096) == bytes(4096)
    x = np.frombuffer(m, dtype=np.uint8)
    x[5] = 9
    assert mv[5] == 9 and m[5] == 9 and m.read(5, 1) == b"\x09"
    mv[6] = 10
    assert x[6] == 10
    assert m.stats().zero_fills > 0
    w = m.view("Q")
    w[1] = 2**64 - 1
    assert x[8:16].tolist() == [255] * 8
    del mv, w, x
    m.close()


def test_views_outlive_close_and_the_engine(datafile):
    from conftest import make_engine

    path, a = datafile(64 * 1024)
    e = make_engine()
    m = e.map(e.open(path))
    x = np.frombuffer(m, dtype=np.uint64)
    assert x[3] == a[3]
    x[3] = 5
    e.close()  # writes back; x keeps the Mapping, the range stays mapped
    assert np.fromfile(path, dtype=np.uint64)[3] == 5
    assert m.closed and int(x.sum()) == 0  # a closed mapping reads zeros
    with pytest.raises(ValueError):
        m.read(0, 8)
    del x, m  # the last reference: the engine is destroyed now


def test_advise_remove_frees_shared_anonymous_memory(engine):
    m = engine.map(None, 1 * MiB)  # shared anonymous
    m.write(0, b"\x01" * MiB)
    m.advise("remove", 4096, 8192)
    assert m.read(0, 4096) == b"\x01" * 4096
    assert m.read(4096, 8192) == bytes(8192)
    p = engine.map(None, 1 * MiB, shared=False)
    with pytest.raises(OSError) as info:
        p.advise("remove")
    assert info.value.errno == errno.EINVAL
    m.close()
    p.close()
