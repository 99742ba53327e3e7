# SPDX-License-Identifier: MIT
"""faultline for Python: mappings whose page faults faultline serves, seen
by NumPy and memoryview without a copy.

    import faultline, numpy
    with faultline.Engine() as engine:
        data = engine.open("data.bin")
        small = engine.group("small", max=64 << 20, oom="wait")
        m = engine.map(data, group=small)
        total = numpy.frombuffer(m, dtype=numpy.float64).sum()

The package is pure Python over libfaultline.so (ctypes); it finds the
library through FAULTLINE_LIBRARY, then the source tree's build/, then the
system's libfaultline.so.0.
"""

from ._lib import library_path, PAGE_SIZE
from ._stats import Stats, GroupStats, LockStats
from ._stores import Store, FileStore, FaultyStore
from ._mapping import Mapping, FaultError
from ._engine import Engine, Object, Group

__version__ = "0.1.0"

__all__ = [
    "Engine",
    "Object",
    "Group",
    "Mapping",
    "Store",
    "FileStore",
    "FaultyStore",
    "Stats",
    "GroupStats",
    "LockStats",
    "FaultError",
    "PAGE_SIZE",
    "library_path",
]
