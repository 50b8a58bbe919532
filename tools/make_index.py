"""Static PEP 503 "simple" indexes for the backend wheels (and the shim), in two channels.

usage: make_index.py DIST_DIR OUT_DIR [--files-url URL]

- OUT_DIR/simple/  the release channel: final versions only;
- OUT_DIR/test/    the prerelease channel: every version (pre-, dev- and final releases).
Each channel has index.html (one link per normalised project name) and <project>/index.html
with one link per file, carrying `#sha256=` and `data-requires-python` (PEP 503, PEP 345).
Files are linked at FILES_URL/<file> (e.g. a GitHub release's download URL); without it they
are copied to OUT_DIR/files/ and linked relatively, which `pip --index-url file://...` can use.
"""

import argparse
import hashlib
import html
import os
import shutil
import sys
import tarfile
import zipfile
from email.parser import Parser

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename


def read_metadata(path: str) -> dict:
    """Name, Version, Requires-Python of a wheel or sdist."""
    if path.endswith(".whl"):
        with zipfile.ZipFile(path) as zf:
            name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            text = zf.read(name).decode()
    else:
        with tarfile.open(path) as tf:
            member = next(m for m in tf.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO"))
            text = tf.extractfile(member).read().decode()
    return dict(Parser().parsestr(text, headersonly=True).items())


def distribution_files(dist_dir: str):
    for name in sorted(os.listdir(dist_dir)):
        path = os.path.join(dist_dir, name)
        if name.endswith(".whl"):
            project, version, _, _ = parse_wheel_filename(name)
        elif name.endswith(".tar.gz"):
            project, version = parse_sdist_filename(name)
        else:
            continue
        yield path, name, str(canonicalize_name(project)), version


def page(title: str, links: list) -> str:
    body = "\n".join(f"    {link}<br/>" for link in links)
    return (f"<!DOCTYPE html>\n<html>\n  <head><meta name=\"pypi:repository-version\" content=\"1.0\">"
            f"<title>{html.escape(title)}</title></head>\n  <body>\n    <h1>{html.escape(title)}</h1>\n{body}\n"
            "  </body>\n</html>\n")


def build(dist_dir: str, out_dir: str, files_url: str | None) -> dict:
    files = list(distribution_files(dist_dir))
    if not files:
        sys.exit(f"make_index: no wheels or sdists in {dist_dir}")
    if files_url is None:
        os.makedirs(os.path.join(out_dir, "files"), exist_ok=True)
        for path, name, _, _ in files:
            shutil.copyfile(path, os.path.join(out_dir, "files", name))
    channels = {"simple": lambda v: not v.is_prerelease and not v.is_devrelease, "test": lambda v: True}
    written = {}
    for channel, admits in channels.items():
        projects = {}
        for path, name, project, version in files:
            if admits(version):
                projects.setdefault(project, []).append((path, name))
        root = os.path.join(out_dir, channel)
        os.makedirs(root, exist_ok=True)
        links = [f'<a href="{p}/">{p}</a>' for p in sorted(projects)]
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write(page("Simple index", links))
        for project, entries in projects.items():
            os.makedirs(os.path.join(root, project), exist_ok=True)
            links = []
            for path, name in sorted(entries, key=lambda e: e[1]):
                with open(path, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
                href = (f"{files_url.rstrip('/')}/{name}" if files_url else f"../../files/{name}")
                requires = read_metadata(path).get("Requires-Python")
                attr = f' data-requires-python="{html.escape(requires)}"' if requires else ""
                links.append(f'<a href="{html.escape(href)}#sha256={digest}"{attr}>{html.escape(name)}</a>')
            with open(os.path.join(root, project, "index.html"), "w") as f:
                f.write(page(f"Links for {project}", links))
        written[channel] = sorted(projects)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dist_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--files-url", help="where the files are served (default: copied next to the index)")
    args = parser.parse_args()
    for channel, projects in build(args.dist_dir, args.out_dir, args.files_url).items():
        print(f"{channel}/: {', '.join(projects) or '(no project)'}")


if __name__ == "__main__":
    main()
