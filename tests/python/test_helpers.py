# SPDX-License-Identifier: MIT
"""Mapping.read/readinto/write: copies through the kernel, so a page that
cannot be served raises FaultError (EFAULT) instead of killing the
interpreter with SIGBUS; the faulty store's settings."""

import errno
import threading

import pytest

import faultline
from conftest import MiB, wait_for


def test_read_write_round_trip(engine, tmp_path):
    path = tmp_path / "f"
    path.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    m = engine.map(engine.open(path))
    assert m.read(0, 4) == b"\x00\x01\x02\x03"
    assert m.read(1 * MiB - 2) == b"\xfe\xff"
    data = b"faultline" * 100000  # crosses pages and the copy chunks
    assert m.write(1000, data) == len(data)
    assert m.read(1000, len(data)) == data
    buf = bytearray(10)
    assert m.readinto(buf, 1000) == 10 and bytes(buf) == data[:10]
    m.sync()
    assert path.read_bytes()[1000 : 1000 + len(data)] == data
    m.close()


def test_unreadable_page_raises_fault_error(engine, tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"\x07" * (64 * 1024))
    store = faultline.FaultyStore(faultline.FileStore(path), fail_offset=8192, fail_length=4096)
    m = engine.map(engine.open(store), group=engine.group("g"))
    m.advise("random")  # read only the faulting page
    assert m.read(0, 8192) == b"\x07" * 8192
    with pytest.raises(faultline.FaultError) as info:
        m.read(4096, 3 * 4096)
    assert info.value.errno == errno.EFAULT and info.value.offset == 8192
    with pytest.raises(faultline.FaultError):
        m.write(8192 + 10, b"x")
    assert m.read(3 * 4096, 4) == b"\x07" * 4  # the rest goes on being served
    assert m.stats().errors == 1 and engine.stats().errors == 1
    # The poison stays until dontneed; without the failure it then reads.
    store.set()
    with pytest.raises(faultline.FaultError):
        m.read(8192, 1)
    m.advise("dontneed", 8192, 4096)
    assert m.read(8192, 4) == b"\x07" * 4
    m.close()


def test_oom_fail_is_a_fault_error_through_the_helpers(engine):
    g = engine.group("tiny", max=64 * 1024, oom="fail")
    m = engine.map(None, 1 * MiB, group=g)
    with pytest.raises(faultline.FaultError) as info:
        m.write(0, b"\x01" * MiB)
    assert 0 < info.value.offset <= 64 * 1024
    gs = g.stats()
    assert gs.oom_events >= 1 and gs.usage <= 64 * 1024
    m.close()


def test_faulty_store_hold_and_settings(engine, tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"\x05" * (32 * 1024))
    inner = faultline.FileStore(path)
    store = faultline.FaultyStore(inner, read_delay_us=1)
    assert store.faults["read_delay_us"] == 1 and store.held == 0
    store.update(read_delay_us=0, seed=3)
    assert store.faults["seed"] == 3 and store.faults["read_delay_us"] == 0
    obj = engine.open(store)
    assert obj.store is store and store.alive and inner.alive
    m = engine.map(obj)
    m.advise("random")
    store.hold(0, 4096)
    got = []
    t = threading.Thread(target=lambda: got.append(m.read(0, 4)))
    t.start()
    wait_for(lambda: store.held == 1, "the read to reach the hold")
    assert not got
    store.release()
    t.join(60)
    assert got == [b"\x05" * 4]
    m.close()
    obj.close()
    assert not store.alive and not inner.alive  # freed with the object
    with pytest.raises(ValueError):
        store.hold(0, 1)


def test_direct_access_to_an_unservable_page_is_sigbus(tmp_path):
    """Documented, not wished for: NumPy reading a page that cannot be
    served dies of SIGBUS, as with mmap (the helpers above raise)."""
    import os
    import signal
    import subprocess
    import sys

    from conftest import ROOT

    path = tmp_path / "f"
    path.write_bytes(b"\x01" * 8192)
    prog = (
        "import sys, numpy, faultline\n"
        "e = faultline.Engine()\n"
        "s = faultline.FaultyStore(faultline.FileStore(sys.argv[1]), fail_offset=4096, fail_length=4096)\n"
        "m = e.map(e.open(s))\n"
        "print(int(numpy.frombuffer(m, dtype=numpy.uint8)[4096]))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    r = subprocess.run([sys.executable, "-c", prog, str(path)], env=env, capture_output=True, timeout=60)
    if r.returncode == 1 and b"Operation not permitted" in r.stderr:
        pytest.skip("userfaultfd not permitted")
    assert r.returncode == -signal.SIGBUS, r.stderr.decode()
