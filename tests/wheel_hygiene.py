"""Every built wheel passes twine check and check-wheel-contents, has a correct RECORD, carries
the tag auditwheel reports, and stays under a size bound."""

import base64
import csv
import glob
import hashlib
import io
import os
import subprocess
import sys
import zipfile

import pytest
from packaging.utils import parse_wheel_filename

WHEELS = sorted(p for p in glob.glob("**/*.whl", recursive=True)
                if "test_wheelhouse" not in p and "linux_x86_64" not in os.path.basename(p))
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
        res = subprocess.run([sys.executable, "-m", "auditwheel", "show", wheel], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        (tag,) = platform
        assert f'"{tag}"' in res.stdout, res.stdout
        with zipfile.ZipFile(wheel) as zf:
            vendored = [n for n in zf.namelist() if ".libs/" in n]
        assert not any(lib in n for n in vendored for lib in ("libcuda", "libamdhip64", "libcudart")), vendored
