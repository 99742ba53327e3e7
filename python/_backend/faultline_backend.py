# SPDX-License-Identifier: MIT
"""A PEP 517 build backend for the pure-Python faultline package.

It makes a wheel (a zip of faultline/*.py and a .dist-info) from
pyproject.toml's [project] table, with nothing but the standard library,
so that `pip install ./python` works offline.  Editable installs get a
.pth file that points at this directory.
"""

import base64
import hashlib
import os
import re
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "faultline"


def _project():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        text = f.read()
    try:
        import tomllib
    except ImportError:  # Python < 3.11: the two fields needed
        s = text.decode()
        name = re.search(r'^name\s*=\s*"([^"]+)"', s, re.M).group(1)
        version = re.search(r'^version\s*=\s*"([^"]+)"', s, re.M).group(1)
        return {"name": name, "version": version}
    return tomllib.loads(text.decode())["project"]


def _metadata(project):
    lines = [
        "Metadata-Version: 2.1",
        "Name: " + project["name"],
        "Version: " + project["version"],
    ]
    if "description" in project:
        lines.append("Summary: " + project["description"])
    if "requires-python" in project:
        lines.append("Requires-Python: " + project["requires-python"])
    if "license" in project:
        lines.append("License: " + project["license"].get("text", ""))
    for c in project.get("classifiers", []):
        lines.append("Classifier: " + c)
    body = ""
    readme = os.path.join(ROOT, project.get("readme", "README.md"))
    if os.path.exists(readme):
        lines.append("Description-Content-Type: text/markdown")
        with open(readme, encoding="utf-8") as f:
            body = "\n" + f.read()
    return "\n".join(lines) + "\n" + body


def _sources():
    """(path in the wheel, bytes) of every module of the package."""
    pkg = os.path.join(ROOT, PACKAGE)
    for name in sorted(os.listdir(pkg)):
        if name.endswith(".py"):
            with open(os.path.join(pkg, name), "rb") as f:
                yield PACKAGE + "/" + name, f.read()


def _write_wheel(directory, files):
    project = _project()
    dist = "%s-%s" % (project["name"], project["version"])
    info = dist + ".dist-info"
    wheel = dist + "-py3-none-any.whl"
    files = list(files) + [
        (info + "/METADATA", _metadata(project).encode()),
        (
            info + "/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: faultline_backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
    ]
    record = []
    with zipfile.ZipFile(os.path.join(directory, wheel), "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files:
            z.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append("%s,sha256=%s,%d" % (path, digest.decode(), len(data)))
        record.append(info + "/RECORD,,")
        z.writestr(info + "/RECORD", "\n".join(record) + "\n")
    return wheel


def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _write_wheel(wheel_directory, _sources())


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    pth = (ROOT + "\n").encode()
    return _write_wheel(wheel_directory, [(PACKAGE + "_editable.pth", pth)])
