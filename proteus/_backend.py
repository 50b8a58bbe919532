"""Backend discovery and selection (docs/ARCHITECTURE.md section 3).

Backends are installed distributions that declare an entry point in the group `proteus.backends`,
named by their kind (`host`, `cuda`, `rocm`), whose value returns `{"kind", "module", "priority"}`.
Discovery reads the entry points once and validates each backend without importing native code;
selection follows the documented order; the first native load locks the choice for the process.
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from _thread import RLock  # threading's own; importing threading costs milliseconds at start-up

try:
    from ._version import __version__
except ImportError:  # loaded by path, outside its package (as upstream's tests do): no version to enforce
    __version__ = None

ENTRY_POINT_GROUP = "proteus.backends"
INDEX_URL = "https://proteus-python.github.io/proteus-python/wheels/simple/"
DISTRIBUTIONS = {
    "host": "proteus-python-backend-host-llvm22",
    "cuda": "proteus-python-backend-cuda12-llvm22",
    "rocm": "proteus-python-backend-rocm72",
}
BACKEND_MODULE_API = ("available_variant_specs", "active_variant_spec", "is_runtime_compatible", "load_native_module")
# A variant spec needs `id` and `kind` (the minimal protocol upstream's backends follow); the other
# keys are optional, and their absence means what VARIANT_SPEC_DEFAULTS says: the backend's module
# and priority (from its entry point), no version requirement (`version` absent: not checked), and
# nothing stated about LLVM, CUDA, ROCm or the platform.
VARIANT_SPEC_REQUIRED = ("id", "kind")
VARIANT_SPEC_DEFAULTS = {"module": None, "llvm_major": None, "cuda_major": None, "rocm_version": None,
                         "platform": None, "priority": None, "version": None}

_lock = RLock()
_backends: list[Backend] | None = None  # discovery result, cached for the process
_locked: tuple[Backend, dict] | None = None  # (backend, variant spec) once a native module is loaded
_native = None


class Backend:
    """One installed backend distribution, healthy (`problem is None`) or not."""

    def __init__(self, kind: str, distribution: str, dist_version: str, entry_point: str):
        self.kind, self.distribution, self.dist_version, self.entry_point = kind, distribution, dist_version, entry_point
        self.priority = 0
        self.module_name = ""
        self.module = None
        self.variants: list = []
        self.problem: str | None = None
        self._compatible: bool | None = None

    def describe(self) -> str:
        return f"{self.distribution} {self.dist_version} (kind {self.kind!r})"

    def is_runtime_compatible(self) -> bool:
        if self._compatible is None:
            try:
                self._compatible = bool(self.module.is_runtime_compatible())
            except Exception:  # the protocol says it never raises; a backend that does is not usable
                self._compatible = False
        return self._compatible

    def active_variant(self) -> dict:
        """The backend's active variant spec, with the defaults of absent keys filled in."""
        spec = self.module.active_variant_spec()
        return next((v for v in self.variants if isinstance(spec, dict) and v["id"] == spec.get("id")), spec)


def no_backend_message() -> str:
    names = ", ".join(f"{dist} ({kind})" for kind, dist in DISTRIBUTIONS.items())
    return (
        "No Proteus backend is installed. Install one of the backend distributions: "
        f"{names}, from the Proteus wheel index, e.g.\n"
        f"    pip install --extra-index-url {INDEX_URL} {DISTRIBUTIONS['host']}"
    )


class EntryPoint:
    """One entry point of the group, and the distribution that declares it."""

    def __init__(self, name: str, value: str, metadata_dir: str):
        self.name, self.value, self.metadata_dir = name, value, metadata_dir

    def distribution(self) -> tuple[str, str]:
        """(Name, Version) from the distribution's METADATA (PKG-INFO for .egg-info)."""
        found = {}
        for file in ("METADATA", "PKG-INFO"):
            try:
                with open(os.path.join(self.metadata_dir, file), encoding="utf-8") as f:
                    for line in f:
                        if not line.strip():
                            break  # the headers end at the first blank line
                        key, _, value = line.partition(":")
                        if key in ("Name", "Version") and key not in found:
                            found[key] = value.strip()
                break
            except OSError:
                continue
        return found.get("Name", "<unknown distribution>"), found.get("Version", "?")

    def load(self):
        module, _, attribute = self.value.split("[", 1)[0].partition(":")  # "module:attr [extras]"
        target = importlib.import_module(module.strip())
        for part in attribute.strip().split(".") if attribute.strip() else []:
            target = getattr(target, part)
        return target


def _entry_points(group: str) -> list[EntryPoint]:
    """The group's entry points of the distributions on sys.path, as importlib.metadata finds them
    (each distribution once, the first on sys.path winning) but without importing it: reading the
    entry_points.txt files directly takes well under a millisecond, the import tens of milliseconds."""
    found, seen = [], set()
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:  # a zip file, a missing directory
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            project = name.rsplit("-", 1)[0] if name.endswith(".dist-info") else name[: -len(".egg-info")].split("-")[0]
            normalized = project.replace("-", "_").replace(".", "_").lower()
            if normalized in seen:
                continue
            seen.add(normalized)
            metadata_dir = os.path.join(entry or ".", name)
            try:
                with open(os.path.join(metadata_dir, "entry_points.txt"), encoding="utf-8") as f:
                    text = f.read()
            except OSError:
                continue
            section = None
            for line in text.splitlines():
                line = line.strip()
                if not line or line.startswith(("#", ";")):
                    continue
                if line.startswith("[") and line.endswith("]"):
                    section = line[1:-1].strip()
                elif section == group and "=" in line:
                    key, _, value = line.partition("=")
                    found.append(EntryPoint(key.strip(), value.strip(), metadata_dir))
    return found


def _validate(ep: EntryPoint) -> Backend:
    distribution, dist_version = ep.distribution()
    backend = Backend(kind=ep.name, distribution=distribution, dist_version=dist_version, entry_point=ep.value)
    try:
        info = ep.load()()
    except Exception as exc:
        backend.problem = f"its entry point {ep.name} = {ep.value} failed: {type(exc).__name__}: {exc}"
        return backend
    if not isinstance(info, dict) or not all(k in info for k in ("kind", "module", "priority")):
        backend.problem = f"its entry point {ep.value} must return a dict with 'kind', 'module' and 'priority'; got {info!r}"
        return backend
    if info["kind"] != ep.name:
        backend.problem = f"its entry point is named {ep.name!r} but reports kind {info['kind']!r}"
        return backend
    backend.priority, backend.module_name = int(info["priority"]), info["module"]
    try:
        backend.module = importlib.import_module(backend.module_name)
    except Exception as exc:
        backend.problem = f"its module {backend.module_name} failed to import: {type(exc).__name__}: {exc}"
        return backend
    missing = [name for name in BACKEND_MODULE_API if not callable(getattr(backend.module, name, None))]
    if missing:
        backend.problem = f"its module {backend.module_name} lacks {', '.join(missing)}"
        return backend
    try:
        specs = list(backend.module.available_variant_specs())
    except Exception as exc:
        backend.problem = f"available_variant_specs() failed: {type(exc).__name__}: {exc}"
        return backend
    for spec in specs:
        absent = [k for k in VARIANT_SPEC_REQUIRED if not isinstance(spec, dict) or k not in spec]
        if absent:
            backend.problem = f"its variant spec {spec.get('id', '?') if isinstance(spec, dict) else spec!r} lacks {', '.join(absent)}"
            return backend
        if spec["kind"] != backend.kind:
            backend.problem = f"its variant {spec['id']!r} is of kind {spec['kind']!r}, not {backend.kind!r}"
            return backend
        version = spec.get("version")
        if version is not None and __version__ is not None and version != __version__:
            backend.problem = (
                f"its version {version} differs from proteus-python {__version__}; "
                f"install matching versions (pip install {backend.distribution}=={__version__})"
            )
            return backend
        defaults = dict(VARIANT_SPEC_DEFAULTS, module=backend.module_name, priority=backend.priority)
        backend.variants.append({**defaults, **spec})
    if not backend.variants:
        backend.problem = "it declares no variants"
    return backend


def discover() -> list[Backend]:
    """All installed backends (healthy and broken), highest priority first. One scan per process."""
    global _backends
    with _lock:
        if _backends is None:
            found = [_validate(ep) for ep in _entry_points(ENTRY_POINT_GROUP)]
            _backends = sorted(found, key=lambda b: (-b.priority, b.kind))
        return _backends


def _healthy() -> list[Backend]:
    return [b for b in discover() if b.problem is None]


def _broken_note() -> str:
    broken = [b for b in discover() if b.problem is not None]
    return "".join(f"\n  broken: {b.describe()}: {b.problem}" for b in broken)


def _broken_error(backend: Backend) -> ImportError:
    return ImportError(f"Proteus backend {backend.describe()} cannot be used: {backend.problem}")


def select(kind: str | None = None, variant: str | None = None) -> tuple[Backend, dict, str]:
    """The backend, variant spec and the rule that chose them. Arguments override the variables."""
    variant = variant or os.environ.get("PROTEUS_BACKEND_VARIANT") or None
    kind = kind or os.environ.get("PROTEUS_BACKEND_KIND") or None
    installed = discover()
    if not installed:
        raise ImportError(no_backend_message())
    if variant:
        for b in installed:
            if b.problem is None and any(v["id"] == variant for v in b.variants):
                return b, next(v for v in b.variants if v["id"] == variant), f"PROTEUS_BACKEND_VARIANT={variant}"
        have = sorted(v["id"] for b in _healthy() for v in b.variants)
        raise ImportError(
            f"PROTEUS_BACKEND_VARIANT={variant!r} matches no installed backend variant; installed variants: {have}"
            + _broken_note()
        )
    if kind:
        for b in installed:
            if b.kind == kind:
                if b.problem is not None:
                    raise _broken_error(b)
                return b, b.active_variant(), f"PROTEUS_BACKEND_KIND={kind}"
        have = sorted(b.kind for b in installed)
        hint = f" (pip install {DISTRIBUTIONS[kind]})" if kind in DISTRIBUTIONS else ""
        raise ImportError(f"PROTEUS_BACKEND_KIND={kind!r} is not installed{hint}; installed kinds: {have}")
    healthy = _healthy()
    if not healthy:
        raise ImportError("No usable Proteus backend is installed." + _broken_note())
    for b in installed:
        if b.problem is not None and any(b.priority >= h.priority for h in healthy):
            warnings.warn(f"skipping Proteus backend {b.describe()}: {b.problem}", RuntimeWarning, stacklevel=3)
    for b in healthy:
        if b.is_runtime_compatible():
            return b, b.active_variant(), f"highest-priority runtime-compatible backend ({b.kind})"
    for b in healthy:
        if b.kind == "host":
            return b, b.active_variant(), "no backend is runtime-compatible; host is installed"
    return healthy[0], healthy[0].active_variant(), "no backend is runtime-compatible; highest priority"


def _check_lock(kind: str | None, variant: str | None) -> tuple[Backend, dict]:
    backend, spec = _locked
    kind = kind or os.environ.get("PROTEUS_BACKEND_KIND") or None
    variant = variant or os.environ.get("PROTEUS_BACKEND_VARIANT") or None
    if (kind and kind != backend.kind) or (variant and variant != spec["id"]):
        wanted = f"variant {variant!r}" if variant and variant != spec["id"] else f"kind {kind!r}"
        raise RuntimeError(
            f"Proteus backend selection is locked to {backend.kind!r} (variant {spec['id']!r}) for this process: "
            f"a native backend is already loaded, so {wanted} cannot be used. Set PROTEUS_BACKEND_KIND / "
            "PROTEUS_BACKEND_VARIANT before the first use of proteus."
        )
    return backend, spec


def resolve(kind: str | None = None, variant: str | None = None) -> tuple[Backend, dict]:
    with _lock:
        if _locked is not None:
            return _check_lock(kind, variant)
        backend, spec, _why = select(kind, variant)
        return backend, spec


def available_backends() -> list[str]:
    """Kinds of the installed, healthy backends, highest priority first."""
    return [b.kind for b in _healthy()]


def available_backend_variants() -> list[str]:
    """Variant ids of the installed, healthy backends, highest priority first."""
    return [v["id"] for b in _healthy() for v in b.variants]


def active_backend(kind: str | None = None, variant: str | None = None) -> str:
    return resolve(kind, variant)[0].kind


def active_backend_variant(kind: str | None = None, variant: str | None = None) -> str:
    return resolve(kind, variant)[1]["id"]


def load_backend_module(kind: str | None = None, variant: str | None = None):
    """The selected backend's Python package (no native code loaded)."""
    return resolve(kind, variant)[0].module


def load_native_module(kind: str | None = None, variant: str | None = None):
    """Loads the selected backend's native module and locks the selection for the process."""
    global _locked, _native
    with _lock:
        if _locked is not None:
            _check_lock(kind, variant)
            return _native
        backend, spec = resolve(kind, variant)
        try:
            native = backend.module.load_native_module()
        except Exception as exc:
            raise ImportError(
                f"Proteus backend {backend.describe()} failed to load its native module {spec['module']}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        _locked, _native = (backend, spec), native
        package = sys.modules.get(__package__ or "")
        if package is not None and getattr(native, "__doc__", None):
            package.__doc__ = native.__doc__  # as upstream: the package's help is the backend's
        return native


def is_locked() -> bool:
    return _locked is not None
