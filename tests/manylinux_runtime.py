"""The engine, linked as the wheels link it (manylinux_2_28), runs on an older glibc.

tests/manylinux/engine_driver is linked by the same macro as the wheels' extensions
(cc/native.bzl). Here it runs on this machine (glibc 2.36) and inside a Debian bullseye root
(glibc 2.31, made once with debootstrap from the machine's configured Debian mirror and kept outside
the repository, in PROTEUS_BULLSEYE_ROOT or /var/cache/proteus-tests/bullseye). In both it checks
every glibc compatibility definition, compiles and calls C++ with <cmath>/<vector>, raises a
compile error as an exception, and hits the persistent cache in a second process.

Why a native driver and not the Python extension: bullseye's Python is 3.9, which no wheel of
ours is built for; the driver runs the same engine code with the same link (docs/ARCHITECTURE.md).
Needs root (chroot); without it the bullseye half skips, except in CI (CI set), where it fails.
"""

import glob
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

BULLSEYE = Path(os.environ.get("PROTEUS_BULLSEYE_ROOT", "/var/cache/proteus-tests/bullseye"))
# Headers for the JIT'd <cmath>/<vector>: libstdc++-10-dev brings GCC 10's C++ and glibc's C headers.
BULLSEYE_PACKAGES = ["libstdc++-10-dev"]
GLIBC_FLOOR = (2, 28)
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"  # the test's own PATH lacks sbin (chroot, debootstrap)


def runfile(pattern: str) -> Path:
    found = sorted(glob.glob(pattern, recursive=True))
    assert found, f"{pattern} is not in the test's runfiles"
    return Path(found[0])


@pytest.fixture(scope="module")
def stage(tmp_path_factory) -> Path:
    """The driver with the clang resource headers beside it, laid out as in a wheel."""
    out = tmp_path_factory.mktemp("stage")
    shutil.copy(runfile("tests/manylinux/engine_driver"), out / "engine_driver")
    resource = runfile("**/lib/clang/*/include/stddef.h").parent
    shutil.copytree(resource, out / "clang_resource" / "include")
    return out


def glibc_versions_needed(path: Path) -> set:
    with open(path, "rb") as f:
        elf = ELFFile(f)
        needed = set()
        for section in elf.iter_sections():
            if isinstance(section, GNUVerNeedSection):
                for _verneed, auxes in section.iter_versions():
                    for aux in auxes:
                        m = re.fullmatch(r"GLIBC_(\d+)\.(\d+)(?:\.\d+)?", aux.name)
                        if m:
                            needed.add((int(m.group(1)), int(m.group(2))))
        return needed


def check_output(cmd, env=None) -> str:
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{cmd} exited {res.returncode}:\n{res.stdout}\n{res.stderr}"
    return res.stdout


def run_driver(prefix: list, driver: str, cache_dir: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/root", "PROTEUS_CACHE_DIR": cache_dir, "LANG": "C"}
    print(check_output(prefix + [driver, "compat"], env))
    first = check_output(prefix + [driver, "jit"], env)
    print(first)
    second = check_output(prefix + [driver, "jit"], env)
    print(second)
    assert "build=optimized" in first
    # The first process compiles (and caches) the good source; the second loads it from the cache.
    # The bad source is a miss in both: failures are not cached.
    assert "disk_hits=0" in first, first
    assert "disk_hits=1" in second, second


def test_driver_needs_nothing_newer_than_glibc_2_28(stage):
    needed = glibc_versions_needed(stage / "engine_driver")
    assert needed and max(needed) <= GLIBC_FLOOR, sorted(needed)


def test_on_this_machine(stage, tmp_path):
    run_driver([], str(stage / "engine_driver"), str(tmp_path / "cache"))


def debian_mirror() -> str:
    """The Debian archive this machine's apt uses (deb822 or one-line sources)."""
    texts = [p.read_text() for p in Path("/etc/apt").glob("sources.list.d/*.sources")]
    for text in texts:
        for stanza in text.split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            if uris and re.search(r"^Suites:.*\b(bookworm|bullseye|trixie)\b", stanza, re.M) \
                    and "security" not in uris.group(1):
                return uris.group(1)
    for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt").glob("sources.list.d/*.list")]:
        if path.exists():
            m = re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(bookworm|bullseye)\s", path.read_text(), re.M)
            if m and "security" not in m.group(1):
                return m.group(1)
    pytest.fail("no Debian mirror in /etc/apt: cannot make the bullseye root")


def unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(reason + " (CI is set: the bullseye run is required)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def bullseye_root() -> Path:
    if os.geteuid() != 0:
        unavailable("the bullseye run needs root (debootstrap, chroot)")
    if (BULLSEYE / ".complete").exists():
        return BULLSEYE
    debootstrap = shutil.which("debootstrap", path=SYSTEM_PATH)
    if not debootstrap:
        unavailable("debootstrap is not installed (./tools/bazel installs it)")
    BULLSEYE.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bullseye.", dir=BULLSEYE.parent))
    try:
        check_output([debootstrap, "--variant=minbase", "--include=" + ",".join(BULLSEYE_PACKAGES),
                      "bullseye", str(work), debian_mirror()],
                     env={"PATH": SYSTEM_PATH, "LANG": "C"})
        (work / ".complete").write_text("debootstrap --variant=minbase bullseye\n")
        shutil.rmtree(BULLSEYE, ignore_errors=True)
        work.rename(BULLSEYE)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return BULLSEYE


def test_the_shipped_extension_loads_its_libraries_on_bullseye(bullseye_root, tmp_path):
    """Bullseye's dynamic loader resolves every library and symbol version the host wheel's extension
    needs (`ld.so --list` fails on a missing GLIBC_/GLIBCXX_ version, as the manylinux_2_36 one did)."""
    import zipfile

    wheel = runfile("backends/host/*-manylinux_2_28_x86_64.whl")
    target = bullseye_root / "opt" / "proteus-wheel"
    shutil.rmtree(target, ignore_errors=True)
    with zipfile.ZipFile(wheel) as zf:
        (name,) = [n for n in zf.namelist() if "/_proteus." in n]
        zf.extract(name, target)
    chroot = [shutil.which("chroot", path=SYSTEM_PATH), str(bullseye_root)]
    out = check_output(chroot + ["/lib64/ld-linux-x86-64.so.2", "--list", "/opt/proteus-wheel/" + name])
    assert "not found" not in out and "libc.so.6" in out, out


def test_in_debian_bullseye(stage, bullseye_root):
    chroot = [shutil.which("chroot", path=SYSTEM_PATH), str(bullseye_root)]
    glibc = check_output(chroot + ["getconf", "GNU_LIBC_VERSION"]).strip()
    assert glibc == "glibc 2.31", glibc
    target = bullseye_root / "opt" / "proteus"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(stage, target)
    shutil.rmtree(bullseye_root / "tmp" / "proteus-cache", ignore_errors=True)
    # Nothing of this machine is visible there: its clang, headers and C++ runtime are bullseye's.
    assert not (bullseye_root / "usr" / "bin" / "clang++-22").exists()
    run_driver(chroot, "/opt/proteus/engine_driver", "/tmp/proteus-cache")
