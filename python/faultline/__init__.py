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
from ._stats import Stats, GroupStats, LockStats, SwapStats, CompressedStats, RedisStats
from ._stores import Store, FileStore, FaultyStore, CompressedStore, RedisStore
from ._mapping import Mapping, FaultError
from ._engine import Engine, Object, Group, Swap

# Group.set_dirty_ratio's defaults (FL_DIRTY_RATIO_DEFAULT and
# FL_DIRTY_BACKGROUND_RATIO_DEFAULT).
DIRTY_RATIO_DEFAULT = 20
DIRTY_BACKGROUND_RATIO_DEFAULT = 10

__version__ = "0.1.0"

__all__ = [
    "Engine",
    "Object",
    "Group",
    "Swap",
    "Mapping",
    "Store",
    "FileStore",
    "FaultyStore",
    "CompressedStore",
    "RedisStore",
    "Stats",
    "GroupStats",
    "LockStats",
    "SwapStats",
    "CompressedStats",
    "RedisStats",
    "DIRTY_RATIO_DEFAULT",
    "DIRTY_BACKGROUND_RATIO_DEFAULT",
    "FaultError",
    "PAGE_SIZE",
    "library_path",
]
