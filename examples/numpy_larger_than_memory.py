#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""NumPy over a file larger than the memory it may use.

Makes a file of float64 values (256 MiB by default), maps it through
faultline in a memory group whose limit is a quarter of it, and reduces it
with NumPy as if it were in memory: faultline reads pages in as NumPy
touches them and evicts old ones to stay under the limit.  Checks the
results against numpy.memmap (the kernel's mmap), scales a slice in place
through NumPy, writes it back with sync() and checks the file.

    python3 examples/numpy_larger_than_memory.py [--size MiB] [--limit MiB]
"""

import argparse
import os
import sys
import tempfile
import time

# Inside the source tree, use the library built there (`make`) unless told
# otherwise, and the package there if it is not installed (`pip install
# ./python`); an installed faultline finds an installed library itself.
_tree = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
_build = os.path.join(_tree, "build", "libfaultline.so")
if "FAULTLINE_LIBRARY" not in os.environ and os.path.exists(_build):
    os.environ["FAULTLINE_LIBRARY"] = os.path.normpath(_build)

import numpy as np  # noqa: E402

try:
    import faultline
except ModuleNotFoundError:
    sys.path.insert(0, os.path.join(_tree, "python"))
    import faultline

MiB = 1 << 20


def make_file(path, nbytes):
    """Write nbytes of float64 values, 8 MiB at a time."""
    rng = np.random.default_rng(2026)
    with open(path, "wb") as f:
        for start in range(0, nbytes, 8 * MiB):
            rng.random(min(8 * MiB, nbytes - start) // 8).tofile(f)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=256, help="file size in MiB (default 256)")
    ap.add_argument("--limit", type=int, help="group limit in MiB (default: a quarter of the size)")
    ap.add_argument("--dir", default="/var/tmp", help="where to make the file (default /var/tmp)")
    args = ap.parse_args()
    size, limit = args.size * MiB, (args.limit or max(1, args.size // 4)) * MiB

    fd, path = tempfile.mkstemp(prefix="faultline-numpy-", suffix=".bin", dir=args.dir)
    os.close(fd)
    try:
        make_file(path, size)
        try:
            engine = faultline.Engine()
        except OSError as e:
            sys.exit("faultline.Engine: %s (userfaultfd not permitted? see README.md)" % e)
        with engine:
            group = engine.group("numpy", max=limit, oom="wait")
            data = engine.map(engine.open(path), group=group)
            x = np.frombuffer(data, dtype=np.float64)

            t = time.monotonic()
            total, biggest = x.sum(), x.max()
            t = time.monotonic() - t
            g = group.stats()
            print("file %d MiB, group limit %d MiB (%s)" % (size // MiB, limit // MiB, faultline.library_path))
            print("faultline: sum %.6f max %.6f in %.2f s (%.0f MiB/s)" % (total, biggest, t, 2 * size / MiB / t))
            print(
                "  group peak %.1f MiB (never above the limit), %d pages evicted, %d major faults"
                % (g.peak / MiB, g.pages_reclaimed, g.major_faults)
            )

            ref = np.memmap(path, dtype=np.float64, mode="r")
            assert total == ref.sum() and biggest == ref.max(), "results differ from numpy.memmap"
            print("numpy.memmap: the same sum and max")

            # Writes through NumPy land in the file after sync().
            x[: 1 << 20] *= 2
            written = x[: 1 << 20].copy()
            data.sync()
            s = data.stats()
            print("scaled 8 MiB in place: %d pages written back, %d dirty now" % (s.pages_written, s.dirty_pages))
            del ref, x  # views first, then the mapping
            data.close()
        check = np.fromfile(path, dtype=np.float64, count=1 << 20)
        assert np.array_equal(check, written), "the file does not hold what was written"
        print("the file holds the scaled values: ok")
    finally:
        os.unlink(path)


if __name__ == "__main__":
    main()
