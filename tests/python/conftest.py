# SPDX-License-Identifier: MIT
"""pytest set-up for the Python package's tests: the package from the
source tree (python/), the library from FAULTLINE_LIBRARY (set by `make
test-python`) or the build tree; tests that need an engine are skipped,
with the reason, where userfaultfd is not permitted."""

import errno
import os
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))

import faultline  # noqa: E402

MiB = 1 << 20


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "calls(*names): the test needs these library calls; it is deselected "
        "(not skipped) where the library has no such call, since it tests a "
        "part this faultline does not have",
    )


def pytest_collection_modifyitems(config, items):
    from faultline import _lib

    keep, drop = [], []
    for item in items:
        m = item.get_closest_marker("calls")
        missing = m and [n for n in m.args if getattr(_lib, n, None) is None]
        (drop if missing else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def make_engine(**config):
    try:
        return faultline.Engine(**config)
    except OSError as e:
        if e.errno in (errno.EPERM, errno.ENOSYS, errno.ENOTSUP):
            pytest.skip("no engine here: %s (userfaultfd not permitted or not supported)" % e)
        raise


@pytest.fixture
def engine():
    e = make_engine(handler_threads=2)
    yield e
    e.close()


@pytest.fixture
def datafile(tmp_path):
    """make(nbytes, dtype) -> (path, numpy array written there)."""
    np = pytest.importorskip("numpy")

    def make(nbytes, dtype="uint64", seed=1):
        rng = np.random.default_rng(seed)
        dt = np.dtype(dtype)
        if dt.kind == "f":
            a = rng.random(nbytes // dt.itemsize).astype(dt)
        else:
            a = rng.integers(0, 1 << 40, nbytes // dt.itemsize, dtype=dt)
        path = tmp_path / ("data-%d.bin" % seed)
        a.tofile(path)
        return path, a

    return make


def wait_for(cond, what, seconds=30.0):
    """Wait for cond() with a generous bound (no timing decides a test)."""
    import time

    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.001)
