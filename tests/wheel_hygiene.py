"""Every built wheel passes twine check and check-wheel-contents, has a correct RECORD, carries
the tag auditwheel reports (manylinux_2_28 for the backends), stays under a size bound, and every
shared object in it is what we mean to ship: optimised, stripped, exporting only its module init
function, RUNPATH at most $ORIGIN, and binding to nothing newer than glibc 2.28 (no shared C++
runtime at all: ours is static and hidden)."""

import base64
import csv
import email.parser
import glob
import hashlib
import io
import os
import re
import subprocess
import sys
import zipfile

import pytest
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection
from packaging.utils import parse_wheel_filename

WHEELS = sorted(p for p in glob.glob("**/*.whl", recursive=True)
                if "test_wheelhouse" not in p and "linux_x86_64" not in os.path.basename(p))
SDISTS = sorted(glob.glob("**/proteus_python-*.tar.gz", recursive=True))
BACKEND_WHEELS = [w for w in WHEELS if "manylinux" in os.path.basename(w)]
MANYLINUX_TAG = "manylinux_2_28_x86_64"
GLIBC_FLOOR = (2, 28)
# What a manylinux_2_28 shared object of ours may need at run time: glibc and the shared unwinder.
ALLOWED_NEEDED = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libgcc_s.so.1",
                  "ld-linux-x86-64.so.2"}
SIZE_BOUND_MB = {"proteus-python": 1, "proteus-python-backend-host-llvm22": 60, "proteus-python-backend-cuda12-llvm22": 60,
                 "proteus-python-backend-rocm72": 80}


def test_wheels_were_built():
    names = {str(parse_wheel_filename(os.path.basename(w))[0]) for w in WHEELS}
    assert {"proteus-python", "proteus-python-backend-host-llvm22", "proteus-python-backend-cuda12-llvm22",
            "proteus-python-backend-rocm72"} <= names, WHEELS


@pytest.mark.parametrize("wheel", WHEELS, ids=os.path.basename)
def test_twine_check(wheel):
    res = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", wheel], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("wheel", WHEELS, ids=os.path.basename)
def test_check_wheel_contents(wheel):
    # W002 (duplicate files) would flag clang's identical wrapper headers; everything else applies.
    res = subprocess.run([sys.executable, "-m", "check_wheel_contents", "--ignore", "W002", wheel],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("wheel", WHEELS, ids=os.path.basename)
def test_record_is_correct(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        record_name = [n for n in names if n.endswith(".dist-info/RECORD")][0]
        rows = list(csv.reader(io.StringIO(zf.read(record_name).decode())))
        listed = {row[0]: row for row in rows}
        assert set(listed) == set(names)
        for name in names:
            if name == record_name:
                continue
            data = zf.read(name)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert listed[name][1] == "sha256=" + digest and int(listed[name][2]) == len(data), name
            assert not name.startswith("/") and ".." not in name.split("/")


@pytest.mark.parametrize("wheel", WHEELS, ids=os.path.basename)
def test_platform_tag_and_size(wheel):
    name, _, _, tags = parse_wheel_filename(os.path.basename(wheel))
    size_mb = os.path.getsize(wheel) / 2**20
    print(f"{os.path.basename(wheel)}: {size_mb:.1f} MB")
    assert size_mb < SIZE_BOUND_MB[str(name)]
    platform = {t.platform for t in tags}
    if platform != {"any"}:
        (tag,) = platform
        shown = auditwheel_show_tag(wheel)
        # auditwheel names the most compatible tag the wheel satisfies: ours may be equal or older.
        assert glibc_of_tag(shown) <= glibc_of_tag(tag), f"auditwheel show: {shown}, the wheel claims {tag}"
        with zipfile.ZipFile(wheel) as zf:
            vendored = [n for n in zf.namelist() if ".libs/" in n]
        assert not any(lib in n for n in vendored for lib in ("libcuda", "libamdhip64", "libcudart")), vendored


def test_backends_were_built():
    assert len(BACKEND_WHEELS) >= 3, WHEELS


def auditwheel_show_tag(wheel) -> str:
    res = subprocess.run([sys.executable, "-m", "auditwheel", "show", wheel], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    m = re.search(r'consistent with the following platform tag: "([^"]+)"', " ".join(res.stdout.split()))
    assert m, res.stdout
    return m.group(1)


def glibc_of_tag(tag: str) -> tuple:
    m = re.fullmatch(r"manylinux_(\d+)_(\d+)_x86_64", tag)
    assert m, f"not a manylinux tag: {tag}"
    return int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize("wheel", BACKEND_WHEELS, ids=os.path.basename)
def test_backend_is_manylinux_2_28(wheel):
    """The published tag, and auditwheel agrees the wheel satisfies it (it may satisfy an older one)."""
    assert os.path.basename(wheel).endswith(f"-{MANYLINUX_TAG}.whl")
    shown = auditwheel_show_tag(wheel)
    print(f"{os.path.basename(wheel)}: auditwheel show: {shown}")
    assert glibc_of_tag(shown) <= GLIBC_FLOOR


def shared_objects(wheel):
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.endswith(".so") or ".so." in name:
                yield name, zf.read(name)


def elf_facts(data: bytes) -> dict:
    elf = ELFFile(io.BytesIO(data))
    dynsym = elf.get_section_by_name(".dynsym")
    facts = {"sections": [s.name for s in elf.iter_sections()], "exported": set(), "needed": set(), "runpath": [],
             "unversioned_undefined": set(), "versions": set()}
    versioned = elf.get_section_by_name(".gnu.version")
    for index, sym in enumerate(dynsym.iter_symbols()):
        if not sym.name:
            continue
        bind, visibility = sym["st_info"]["bind"], sym["st_other"]["visibility"]
        if sym["st_shndx"] != "SHN_UNDEF":
            if bind in ("STB_GLOBAL", "STB_WEAK") and visibility in ("STV_DEFAULT", "STV_PROTECTED"):
                facts["exported"].add(sym.name)
        elif bind != "STB_WEAK":
            ndx = versioned.get_symbol(index)["ndx"] if versioned else "VER_NDX_LOCAL"
            if ndx in ("VER_NDX_LOCAL", "VER_NDX_GLOBAL"):
                facts["unversioned_undefined"].add(sym.name)
    for section in elf.iter_sections():
        if isinstance(section, DynamicSection):
            for tag in section.iter_tags():
                if tag.entry.d_tag == "DT_NEEDED":
                    facts["needed"].add(tag.needed)
                elif tag.entry.d_tag in ("DT_RUNPATH", "DT_RPATH"):
                    facts["runpath"].append(tag.runpath if tag.entry.d_tag == "DT_RUNPATH" else tag.rpath)
        if isinstance(section, GNUVerNeedSection):
            for _verneed, auxes in section.iter_versions():
                facts["versions"].update(aux.name for aux in auxes)
    return facts


@pytest.mark.parametrize("wheel", BACKEND_WHEELS, ids=os.path.basename)
def test_shared_objects_are_release_builds(wheel):
    objects = list(shared_objects(wheel))
    assert [n for n, _ in objects if os.path.basename(n).startswith("_proteus.")], "no extension module"
    for name, data in objects:
        facts = elf_facts(data)
        assert b"proteus-build-mode=optimized" in data and b"proteus-build-mode=unoptimized" not in data, \
            f"{name}: not an optimised build (-c opt: -O2, NDEBUG)"
        assert ".symtab" not in facts["sections"] and not any(s.startswith(".debug") for s in facts["sections"]), \
            f"{name}: not stripped"
        assert facts["exported"] == {"PyInit__proteus"}, f"{name} exports {sorted(facts['exported'])[:20]}"
        assert all(r == "$ORIGIN" for r in facts["runpath"]), f"{name}: RUNPATH {facts['runpath']}"
        assert facts["needed"] <= ALLOWED_NEEDED, f"{name} needs {sorted(facts['needed'] - ALLOWED_NEEDED)}"
        # Only the interpreter's C API may stay unversioned (the interpreter defines it); anything
        # else unversioned would bind to whatever a new glibc offers and fail on an old one.
        stray = {s for s in facts["unversioned_undefined"] if not s.startswith(("Py", "_Py"))}
        assert not stray, f"{name}: unversioned undefined symbols {sorted(stray)}"
        glibc = {tuple(int(x) for x in v[len("GLIBC_"):].split(".")[:2]) for v in facts["versions"]
                 if v.startswith("GLIBC_")}
        assert glibc and max(glibc) <= GLIBC_FLOOR, f"{name} needs glibc {max(glibc)}"
        cxx = sorted(v for v in facts["versions"] if v.startswith(("GLIBCXX_", "CXXABI_")))
        assert not cxx, f"{name} binds to a shared libstdc++: {cxx}"


# --- licenses and metadata ------------------------------------------------------------------------

# notice file -> words its text must contain (the license it carries)
BACKEND_NOTICES = {
    "LICENSE": ["Apache License", "Version 2.0"],
    "LLVM.txt": ["LLVM Exceptions to the Apache 2.0 License", "Apache License"],
    "GCC-runtime.txt": ["GCC RUNTIME LIBRARY EXCEPTION", "GNU GENERAL PUBLIC LICENSE"],
    "glibc.txt": ["GNU LESSER GENERAL PUBLIC LICENSE"],
    "zlib.txt": ["Jean-loup Gailly", "Mark Adler"],
    "zstd.txt": ["BSD", "Facebook"],
    "pybind11.txt": ["Wenzel Jakob"],
}


def metadata_of(text: str):
    return email.parser.Parser().parsestr(text)


def wheel_metadata(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = metadata_of(zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode())
        licenses = {n.split(".dist-info/licenses/", 1)[1]: zf.read(n).decode("utf-8", "replace")
                    for n in names if ".dist-info/licenses/" in n and not n.endswith("/")}
    return meta, licenses


def check_common_metadata(meta, name: str):
    assert meta["Metadata-Version"] == "2.4"
    assert meta["Requires-Python"] == ">=3.10"
    assert meta.get("License") is None, "License-Expression replaces License (PEP 639)"
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {"Source", "Issues", "Documentation", "Wheel index"} <= set(urls), urls
    classifiers = meta.get_all("Classifier")
    versions = [c.rsplit(" ", 1)[1] for c in classifiers if c.startswith("Programming Language :: Python :: 3.")]
    assert versions[:2] == ["3.10", "3.11"] and all(int(v.split(".")[1]) >= 10 for v in versions), versions
    assert "Typing :: Typed" in classifiers and not [c for c in classifiers if c.startswith("License ::")]
    description = meta.get_payload()
    # Each distribution its own short description, not the repository README.
    assert description.lstrip().startswith(f"# {name}\n") and len(description) < 3000, description[:200]
    assert "## Quick start (from a checkout)" not in description


@pytest.mark.parametrize("wheel", WHEELS, ids=os.path.basename)
def test_licenses_and_metadata(wheel):
    name = str(parse_wheel_filename(os.path.basename(wheel))[0])
    meta, licenses = wheel_metadata(wheel)
    check_common_metadata(meta, name)
    assert sorted(meta.get_all("License-File")) == sorted(licenses), "License-File must list .dist-info/licenses/"
    expected = BACKEND_NOTICES if name != "proteus-python" else {"LICENSE": BACKEND_NOTICES["LICENSE"]}
    assert set(licenses) == set(expected)
    for notice, words in expected.items():
        for word in words:
            assert word in licenses[notice], f"{notice} lacks {word!r}"
    expression = meta["License-Expression"]
    if name == "proteus-python":
        assert expression == "Apache-2.0"
    else:
        for part in ["Apache-2.0 WITH LLVM-exception", "GPL-3.0-or-later WITH GCC-exception-3.1", "Zlib",
                     "BSD-3-Clause", "LGPL-2.1-or-later"]:
            assert part in expression, expression
        assert "Operating System :: POSIX :: Linux" in meta.get_all("Classifier")


def test_sdist_license_and_metadata():
    import tarfile

    assert len(SDISTS) == 1, SDISTS
    with tarfile.open(SDISTS[0]) as tf:
        members = {m.name.split("/", 1)[1]: m for m in tf.getmembers()}
        meta = metadata_of(tf.extractfile(members["PKG-INFO"]).read().decode())
        license_text = tf.extractfile(members["LICENSE"]).read().decode()
    check_common_metadata(meta, "proteus-python")
    assert meta.get_all("License-File") == ["LICENSE"] and meta["License-Expression"] == "Apache-2.0"
    assert "Apache License" in license_text
    assert "proteus/py.typed" in members and "proteus/__init__.pyi" in members
