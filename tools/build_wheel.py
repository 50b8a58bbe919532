"""Writes one wheel from a JSON spec (see wheel.bzl): deterministic, with a correct RECORD.

usage: build_wheel.py SPEC.json OUT.whl
"""

import base64
import hashlib
import json
import os
import stat
import sys
import zipfile

from packaging.licenses import canonicalize_license_expression
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import parse_tag
from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date zip can hold: no build time leaks in
GENERATOR = "proteus-python tools/build_wheel.py"


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def metadata_text(spec: dict) -> str:
    # Metadata 2.4 (PEP 639): an SPDX License-Expression, and License-File for each text that
    # .dist-info/licenses/ (or the sdist's root) carries. No "License ::" classifier: PEP 639
    # forbids it beside License-Expression.
    lines = [
        "Metadata-Version: 2.4",
        f"Name: {spec['distribution']}",
        f"Version: {spec['version']}",
        f"Summary: {spec['summary']}",
        f"License-Expression: {canonicalize_license_expression(spec['license'])}",
    ]
    lines += [f"License-File: {name}" for name in sorted(spec["license_files"])]
    lines += [f"Classifier: {c}" for c in spec["classifiers"]]
    lines.append(f"Requires-Python: {SpecifierSet(spec['requires_python'])}")
    for label, url in sorted(spec["project_urls"].items()):
        lines.append(f"Project-URL: {label}, {url}")
    for req in spec["requires"]:
        lines.append(f"Requires-Dist: {Requirement(req)}")
    for extra, reqs in sorted(spec["extra_requires"].items()):
        lines.append(f"Provides-Extra: {extra}")
        for req in reqs:
            r = Requirement(req)
            marker = f"({r.marker}) and " if r.marker else ""
            r.marker = None
            lines.append(f'Requires-Dist: {r}; {marker}extra == "{extra}"')
    body = ""
    if spec.get("description_file"):
        lines.append("Description-Content-Type: text/markdown")
        with open(spec["description_file"], encoding="utf-8") as f:
            body = "\n" + f.read()
    return "\n".join(lines) + "\n" + body


def wheel_text(spec: dict) -> str:
    tags = sorted(str(t) for t in parse_tag(f"{spec['python_tag']}-{spec['abi']}-{spec['platform']}"))
    pure = spec["abi"] == "none" and spec["platform"] == "any"
    lines = ["Wheel-Version: 1.0", f"Generator: {GENERATOR}", f"Root-Is-Purelib: {'true' if pure else 'false'}"]
    lines += [f"Tag: {t}" for t in tags]
    return "\n".join(lines) + "\n"


def entry_points_text(spec: dict) -> str:
    out = []
    for group, entries in sorted(spec["entry_points"].items()):
        out.append(f"[{group}]")
        out += sorted(e.replace(" ", "").replace("=", " = ", 1) for e in entries)
        out.append("")
    return "\n".join(out)


def main(spec_path: str, out_path: str) -> None:
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    version = Version(spec["version"])
    name = canonicalize_name(spec["distribution"]).replace("-", "_")
    expected = f"{name}-{version}-{spec['python_tag']}-{spec['abi']}-{spec['platform']}.whl"
    if os.path.basename(out_path) != expected:
        sys.exit(f"build_wheel: declared output {os.path.basename(out_path)} but the normalised name is {expected}")
    parse_wheel_filename(expected)  # raises on a malformed name or tag
    dist_info = f"{name}-{version}.dist-info"

    entries = {}  # archive path -> (bytes, executable)
    for dest, src in spec["files"].items():
        with open(src, "rb") as f:
            entries[dest] = (f.read(), bool(os.stat(src).st_mode & stat.S_IXUSR))
    for license_name, src in spec["license_files"].items():
        with open(src, "rb") as f:
            entries[f"{dist_info}/licenses/{license_name}"] = (f.read(), False)
    entries[f"{dist_info}/METADATA"] = (metadata_text(spec).encode(), False)
    entries[f"{dist_info}/WHEEL"] = (wheel_text(spec).encode(), False)
    if spec["entry_points"]:
        entries[f"{dist_info}/entry_points.txt"] = (entry_points_text(spec).encode(), False)

    record_path = f"{dist_info}/RECORD"
    record = [f"{p},{record_hash(d)},{len(d)}" for p, (d, _) in sorted(entries.items())]
    record.append(f"{record_path},,")
    entries[record_path] = (("\n".join(record) + "\n").encode(), False)

    # dist-info last, as pip and the wheel spec recommend; everything else sorted.
    order = sorted(entries, key=lambda p: (p.startswith(dist_info), p == record_path, p))
    tmp = out_path + ".tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in order:
            data, executable = entries[path]
            info = zipfile.ZipInfo(path, date_time=ZIP_DATE)
            info.external_attr = ((0o755 if executable else 0o644) | stat.S_IFREG) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data, compresslevel=6)
    os.replace(tmp, out_path)


if __name__ == "__main__":
    main(*sys.argv[1:])
