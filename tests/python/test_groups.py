# SPDX-License-Identifier: MIT
"""Memory groups' limits and statistics, engine and lock statistics, seen
from Python."""

import pytest

from conftest import MiB

np = pytest.importorskip("numpy")


def test_group_limits_and_stats(engine, datafile):
    path, _ = datafile(8 * MiB)
    parent = engine.group("parent", max=6 * MiB)
    g = engine.group("child", parent=parent, high=3 * MiB, oom="wait")
    assert g.name == "child" and g.parent is parent and g.oom == "wait"
    assert g.max is None and g.high == 3 * MiB and parent.max == 6 * MiB
    g.max = 4 * MiB
    assert g.max == 4 * MiB and g.stats().max == 4 * MiB
    m = engine.map(engine.open(path), group=g)
    x = np.frombuffer(m, dtype=np.uint64)
    total = int(x.sum())
    assert total == int(np.fromfile(path, dtype=np.uint64).sum())
    gs, ps = g.stats(), parent.stats()
    assert gs.peak <= 4 * MiB and ps.peak <= 6 * MiB
    assert gs.major_faults > 0 and ps.usage >= gs.usage
    g.max = 1 * MiB  # lowering the limit reclaims down to it
    assert g.stats().usage <= 1 * MiB
    g.max = None
    assert g.max is None
    with pytest.raises(OSError) as info:
        g.destroy()  # it has a mapping
    assert info.value.errno == 16  # EBUSY
    del x
    m.close()


def test_engine_and_lock_stats(engine):
    m = engine.map(None, 1 * MiB, shared=False)
    m.write(0, b"\x01" * MiB)
    s = engine.stats()
    assert s.zero_fills >= 256 and s.private_pages >= 256
    assert s.asdict()["zero_fills"] == s.zero_fills
    ls = engine.lock_stats(reset=True)
    assert ls.fault_holds > 0 and ls.fault_hold_max_ns >= ls.fault_hold_p50_ns
    assert engine.lock_stats().fault_holds < ls.fault_holds + 1000
    root = engine.root_group.stats()
    assert root.usage >= MiB and engine.root_group.name == "root"
    m.close()
    assert engine.config["handler_threads"] == 2
