# SPDX-License-Identifier: MIT
"""The package's ctypes structures match include/faultline.h (sizes and
offsets, from a C program built against the header), and every call the
header declares is bound or listed in _lib.NOT_BOUND with a reason."""

import os
import re
import shutil
import subprocess

import pytest

from faultline import _lib
from conftest import ROOT

HEADER = os.path.join(ROOT, "include", "faultline.h")


def compiler():
    cc = shutil.which(os.environ.get("CC", "cc"))
    if not cc or not os.path.exists(HEADER):
        pytest.skip("no C compiler or no include/faultline.h here")
    return cc


def test_struct_layout_matches_the_header(tmp_path):
    cc = compiler()
    lines = ["#include <faultline.h>", "#include <stddef.h>", "#include <stdio.h>", "int main(void) {"]
    want = {}
    with open(HEADER) as f:
        header = f.read()
    for cname, cls in sorted(_lib.STRUCTS.items()):
        if "struct %s {" % cname not in header:
            continue  # of a part this library was built without
        lines.append('printf("%s %%zu\\n", sizeof(struct %s));' % (cname, cname))
        want[cname] = ctypes_sizeof(cls)
        for field, _ in cls._fields_:
            key = "%s.%s" % (cname, field)
            lines.append('printf("%s %%zu\\n", offsetof(struct %s, %s));' % (key, cname, field))
            want[key] = getattr(cls, field).offset
    lines += ["return 0;", "}"]
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines) + "\n")
    exe = tmp_path / "layout"
    subprocess.run([cc, "-I" + os.path.join(ROOT, "include"), str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    got = dict((k, int(v)) for k, v in (line.split() for line in out.splitlines()))
    assert got == want, "ctypes structures in python/faultline/_lib.py differ from the header"


def ctypes_sizeof(cls):
    import ctypes

    return ctypes.sizeof(cls)


def test_every_call_of_the_header_is_bound():
    cc = compiler()
    pre = subprocess.run(
        [cc, "-E", "-P", "-I" + os.path.join(ROOT, "include"), HEADER], check=True, capture_output=True, text=True
    ).stdout
    declared = set(m.group(1) for m in re.finditer(r"\b(fl_[a-z0-9_]+) *\([^*]", pre))
    bound = set(name for name, f in vars(_lib).items() if name.startswith("fl_") and f is not None)
    assert declared, "no fl_ call found in the header"
    missing = declared - bound - set(_lib.NOT_BOUND)
    assert not missing, "calls of faultline.h the Python package does not bind: %s" % sorted(missing)
    stale = (bound | set(_lib.NOT_BOUND)) - declared
    assert not stale, "bound or listed but not in the header: %s" % sorted(stale)
