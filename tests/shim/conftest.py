"""Fixtures for the shim tests: fake backend distributions installed as real distributions.

Each fake backend is laid out in a temporary directory exactly like an installed backend wheel:

    proteus_backend_<kind>/__init__.py      a copy of backends/common/backend_package.py
    proteus_backend_<kind>/manifest.json    the variant spec
    proteus_backend_<kind>/_proteus.py      a pure-Python stand-in for the native module
    <dist_name>-<version>.dist-info/        METADATA + entry_points.txt (group proteus.backends)

Every check runs in a fresh interpreter (`FakeEnv.run_py`), because the shim caches discovery
and locks the selection per process. The interpreter runs with `-S` (no site-packages), so
only the fake distributions and the `proteus` package under test are visible.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import proteus

PROTEUS_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(proteus.__file__)))
SHIM_VERSION = proteus.__version__

DISTRIBUTIONS = {
    "host": "proteus-python-backend-host-llvm22",
    "cuda": "proteus-python-backend-cuda12-llvm22",
    "rocm": "proteus-python-backend-rocm72",
}
PRIORITIES = {"host": 10, "rocm": 20, "cuda": 30}
VARIANT_IDS = {"host": "host-llvm22", "cuda": "cuda12-llvm22", "rocm": "rocm72-llvm22"}
# A probe whose driver library cannot exist: the real is_runtime_compatible() code path says False.
MISSING_PROBE = {
    "libraries": ["libproteus_test_no_such_driver.so.1"],
    "init": "cuInit",
    "device_count": "cuDeviceGetCount",
}

BROKEN_KINDS = (
    "entry_point_raises",  # get_backend() raises
    "package_import_fails",  # importing proteus_backend_<kind> (the entry point target) raises
    "get_backend_missing_key",  # get_backend() lacks 'priority'
    "kind_mismatch",  # entry point name differs from the kind get_backend() reports
    "manifest_missing_key",  # manifest.json lacks 'id'
    "module_lacks_api",  # the backend package lacks is_runtime_compatible
    "native_import_fails",  # the native module _proteus raises ImportError when imported
    "version_mismatch",  # the distribution's version differs from the shim's
)


def find_source(relative: str) -> Path:
    """A file of the repository (e.g. "backends/facts.bzl"), in the source tree or in Bazel runfiles."""
    candidates = [Path(PROTEUS_ROOT) / relative]
    here = Path(__file__).resolve()
    candidates += [p / relative for p in here.parents]
    for var in ("RUNFILES_DIR", "TEST_SRCDIR"):
        if os.environ.get(var):
            base = Path(os.environ[var])
            candidates += [base / "_main" / relative]
            candidates += list(base.glob("*/" + relative))
    for c in candidates:
        if c.is_file():
            return c
    raise FileNotFoundError(relative + " not found; searched: " + ", ".join(map(str, candidates)))


BACKEND_PACKAGE_SOURCE = find_source("backends/common/backend_package.py").read_text(encoding="utf-8")


@pytest.fixture
def backend_facts() -> dict:
    """backends/facts.bzl's BACKENDS (Starlark that is also Python, with struct as a namespace)."""
    scope = {"struct": types.SimpleNamespace}
    exec(find_source("backends/facts.bzl").read_text(encoding="utf-8"), scope)
    return scope["BACKENDS"]


NATIVE_TEMPLATE = '''\
"""Fake native module of the {kind} backend (stands in for the compiled extension)."""
{prelude}
BACKEND_KIND = {kind!r}
LOADS = []  # the shim must import this module once per process


def compile(source, **options):
    return ("compiled-by", BACKEND_KIND, source)


class i32:
    kind = BACKEND_KIND


def has_cuda():
    return BACKEND_KIND == "cuda"


def not_exported():
    return "not in __all__"


__all__ = ["compile", "i32", "has_cuda", "BACKEND_KIND"]
'''


class FakeEnv:
    """A directory of fake installed backend distributions plus a way to run Python against it."""

    def __init__(self, root: Path):
        self.root = root
        self.site = root / "site"
        self.site.mkdir()
        self.cwd = root / "cwd"  # an empty working directory, so sys.path[0] adds nothing
        self.cwd.mkdir()
        self.backends: dict[str, dict] = {}

    def add(
        self,
        kind: str,
        *,
        runtime_compatible: bool | None = None,
        broken: str | None = None,
        version: str | None = None,
        priority: int | None = None,
        variant_id: str | None = None,
        runtime_probe: dict | None = None,
        minimal: bool = False,
    ) -> dict:
        """Installs a fake backend distribution of `kind` and returns a description of it.

        runtime_compatible: None = what the real backend package says (host: no probe -> True;
        cuda/rocm: a probe of a missing driver library -> False); False = a probe of a missing
        library (the real code path); True = the package overrides is_runtime_compatible() -> True.
        broken: one of BROKEN_KINDS.
        minimal: the variant spec has only id and kind (upstream's minimal protocol).
        """
        if broken is not None and broken not in BROKEN_KINDS:
            raise ValueError(f"unknown broken kind {broken!r}")
        dist = DISTRIBUTIONS.get(kind, f"proteus-python-backend-{kind}")
        dist_version = version or SHIM_VERSION
        if broken == "version_mismatch":
            dist_version = "9.9.9"
        package = f"proteus_backend_{kind}"
        manifest = {
            "id": variant_id or VARIANT_IDS.get(kind, f"{kind}-llvm22"),
            "kind": kind,
            "module": f"{package}._proteus",
            "llvm_major": 22,
            "cuda_major": 12 if kind == "cuda" else None,
            "rocm_version": "7.2" if kind == "rocm" else None,
            "platform": "linux_x86_64",
            "priority": PRIORITIES.get(kind, 5) if priority is None else priority,
            "version": dist_version,
        }
        if runtime_probe is not None:
            manifest["runtime_probe"] = runtime_probe
        elif runtime_compatible is False or (runtime_compatible is None and kind != "host"):
            manifest["runtime_probe"] = dict(MISSING_PROBE)
        if broken == "manifest_missing_key":
            del manifest["id"]
        if minimal:  # upstream's minimal protocol: a variant spec of id and kind only
            manifest = {"id": manifest["id"], "kind": kind}

        pkg_dir = self.site / package
        pkg_dir.mkdir()
        init = BACKEND_PACKAGE_SOURCE
        if broken == "package_import_fails":
            init = 'raise ImportError("proteus test: backend package is broken")\n' + init
        if runtime_compatible is True:
            init += "\n\ndef is_runtime_compatible():\n    return True\n"
        if broken == "entry_point_raises":
            init += '\n\ndef get_backend():\n    raise RuntimeError("proteus test: get_backend exploded")\n'
        if broken == "get_backend_missing_key":
            init += '\n\ndef get_backend():\n    return {"kind": MANIFEST["kind"], "module": __name__}\n'
        if broken == "kind_mismatch":
            init += '\n\ndef get_backend():\n    return {"kind": "other", "module": __name__, "priority": MANIFEST["priority"]}\n'
        if broken == "module_lacks_api":
            init += "\n\ndel is_runtime_compatible\n"
        (pkg_dir / "__init__.py").write_text(init, encoding="utf-8")
        (pkg_dir / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        prelude = ""
        if broken == "native_import_fails":
            prelude = 'raise ImportError("proteus test: libLLVM.so.22: cannot open shared object file")\n'
        (pkg_dir / "_proteus.py").write_text(NATIVE_TEMPLATE.format(kind=kind, prelude=prelude), encoding="utf-8")

        dist_info = self.site / f"{dist.replace('-', '_')}-{dist_version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {dist_version}\nSummary: fake Proteus backend for tests\n",
            encoding="utf-8",
        )
        (dist_info / "entry_points.txt").write_text(
            f"[proteus.backends]\n{kind} = {package}:get_backend\n", encoding="utf-8"
        )
        (dist_info / "RECORD").write_text("", encoding="utf-8")
        info = {"kind": kind, "distribution": dist, "version": dist_version, "variant": manifest.get("id"),
                "package": package, "manifest": manifest}
        self.backends[kind] = info
        return info

    def _env(self, env: dict | None) -> dict:
        full = dict(os.environ)
        for var in ("PROTEUS_BACKEND_KIND", "PROTEUS_BACKEND_VARIANT", "PYTHONHOME", "PYTHONSTARTUP"):
            full.pop(var, None)
        full["PYTHONPATH"] = str(self.site) + os.pathsep + PROTEUS_ROOT
        full["PYTHONNOUSERSITE"] = "1"
        full["PYTHONDONTWRITEBYTECODE"] = "1"
        full.update(env or {})
        return full

    def run_py(self, code: str, env: dict | None = None) -> subprocess.CompletedProcess:
        """Runs `python -S -c code` in a fresh interpreter that sees only the fake backends and proteus."""
        return subprocess.run(
            [sys.executable, "-S", "-c", textwrap.dedent(code)],
            cwd=self.cwd, env=self._env(env), capture_output=True, text=True, timeout=60,
        )

    def run_module(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        """Runs `python -S -m proteus ARGS`."""
        return subprocess.run(
            [sys.executable, "-S", "-m", "proteus", *args],
            cwd=self.cwd, env=self._env(env), capture_output=True, text=True, timeout=60,
        )

    def run_json(self, code: str, env: dict | None = None):
        """Runs code that prints one JSON document as its last line of stdout; returns it parsed."""
        r = self.run_py(code, env)
        assert r.returncode == 0, f"subprocess failed ({r.returncode}):\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
        lines = r.stdout.strip().splitlines()
        assert lines, f"no output; stderr:\n{r.stderr}"
        return json.loads(lines[-1])

    def outcome(self, statement: str, env: dict | None = None) -> dict:
        """Runs `import proteus` then `result = <statement>`; returns {"ok", "value"} or {"error", "message"}."""
        code = (
            "import json, proteus\n"
            "try:\n"
            f"    result = {statement}\n"
            "    print(json.dumps({'ok': True, 'value': result if isinstance(result, (str, int, list, type(None))) else repr(result)}))\n"
            "except Exception as exc:\n"
            "    print(json.dumps({'ok': False, 'error': type(exc).__name__, 'message': str(exc)}))\n"
        )
        return self.run_json(code, env)


@pytest.fixture
def fake_env(tmp_path) -> FakeEnv:
    return FakeEnv(tmp_path)


@pytest.fixture
def run_py(fake_env):
    return fake_env.run_py
