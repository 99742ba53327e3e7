# SPDX-License-Identifier: MIT
"""The README's Python example and examples/numpy_larger_than_memory.py
run and do what they say."""

import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT

np = pytest.importorskip("numpy")


def run(args, cwd):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    r = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    if r.returncode != 0 and "Operation not permitted" in r.stderr + r.stdout:
        pytest.skip("userfaultfd not permitted")
    return r


def test_readme_python_example(tmp_path):
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    section = readme.split("## Python and NumPy", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    a = np.arange(1 << 20, dtype=np.float64)
    a.tofile(tmp_path / "data.bin")
    r = run([sys.executable, "-c", code], tmp_path)
    assert r.returncode == 0, r.stderr
    total, peak = r.stdout.split()
    assert float(total) == a.sum() and int(peak) <= 64 << 20
    b = np.fromfile(tmp_path / "data.bin", dtype=np.float64)
    assert np.array_equal(b[:10], a[:10] * 2) and np.array_equal(b[10:], a[10:])


def test_numpy_larger_than_memory_example(tmp_path):
    script = os.path.join(ROOT, "examples", "numpy_larger_than_memory.py")
    r = run([sys.executable, script, "--size", "16", "--dir", str(tmp_path)], tmp_path)
    assert r.returncode == 0, r.stderr
    assert "numpy.memmap: the same sum and max" in r.stdout
    assert "the file holds the scaled values: ok" in r.stdout
    assert not os.listdir(tmp_path)  # its file removed
