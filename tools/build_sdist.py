"""Writes the source distribution of a pure-Python wheel from the same JSON spec (see wheel.bzl).

usage: build_sdist.py SPEC.json OUT.tar.gz

The sdist holds PKG-INFO, a pyproject.toml (setuptools) with the same metadata, the description
file and the package files at their wheel paths, so `pip install` of it builds the same wheel.
Deterministic: sorted members, fixed mtime, uid/gid 0, gzip without a timestamp.
"""

import gzip
import io
import json
import os
import sys
import tarfile

from packaging.utils import canonicalize_name
from packaging.version import Version

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_wheel import metadata_text  # noqa: E402  (one METADATA writer for wheel and sdist)

MTIME = 315532800  # 1980-01-01


def toml_string(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid TOML basic string


def pyproject(spec: dict, readme: str | None, packages: list) -> str:
    lines = [
        "[build-system]",
        'requires = ["setuptools>=77"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f"name = {toml_string(spec['distribution'])}",
        f"version = {toml_string(spec['version'])}",
        f"description = {toml_string(spec['summary'])}",
        f"license = {toml_string(spec['license'])}",
        "license-files = [" + ", ".join(toml_string(n) for n in sorted(spec["license_files"])) + "]",
        "classifiers = [" + ", ".join(toml_string(c) for c in spec["classifiers"]) + "]",
        f"requires-python = {toml_string(spec['requires_python'])}",
        "dependencies = [" + ", ".join(toml_string(r) for r in spec["requires"]) + "]",
    ]
    if readme:
        lines.append(f"readme = {toml_string(readme)}")
    if spec["extra_requires"]:
        lines += ["", "[project.optional-dependencies]"]
        lines += [f"{extra} = [" + ", ".join(toml_string(r) for r in reqs) + "]"
                  for extra, reqs in sorted(spec["extra_requires"].items())]
    if spec["project_urls"]:
        lines += ["", "[project.urls]"] + [f"{toml_string(k)} = {toml_string(v)}" for k, v in sorted(spec["project_urls"].items())]
    for group, entries in sorted(spec["entry_points"].items()):
        table = "project.scripts" if group == "console_scripts" else f'project.entry-points.{toml_string(group)}'
        lines += ["", f"[{table}]"]
        for entry in sorted(entries):
            name, value = (p.strip() for p in entry.split("=", 1))
            lines.append(f"{toml_string(name)} = {toml_string(value)}")
    lines += ["", "[tool.setuptools]", "packages = [" + ", ".join(toml_string(p) for p in packages) + "]", ""]
    return "\n".join(lines)


def main(spec_path: str, out_path: str) -> None:
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    if spec["abi"] != "none" or spec["platform"] != "any":
        sys.exit("build_sdist: only pure-Python distributions have an sdist here")
    base = f"{canonicalize_name(spec['distribution']).replace('-', '_')}-{Version(spec['version'])}"
    members = {}
    for dest, src in spec["files"].items():
        with open(src, "rb") as f:
            members[dest] = f.read()
    for license_name, src in spec["license_files"].items():  # at the root, as License-File names them
        with open(src, "rb") as f:
            members[license_name] = f.read()
    readme = None
    if spec.get("description_file"):
        readme = os.path.basename(spec["description_file"])
        with open(spec["description_file"], "rb") as f:
            members[readme] = f.read()
    packages = sorted({p.split("/")[0] for p in spec["files"] if "/" in p})
    members["pyproject.toml"] = pyproject(spec, readme, packages).encode()
    members["PKG-INFO"] = metadata_text(spec).encode()

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for path in sorted(members):
            info = tarfile.TarInfo(f"{base}/{path}")
            info.size, info.mtime, info.mode = len(members[path]), MTIME, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tf.addfile(info, io.BytesIO(members[path]))
    with open(out_path, "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", filename="", mtime=0) as gz:
        gz.write(raw.getvalue())


if __name__ == "__main__":
    main(*sys.argv[1:])
