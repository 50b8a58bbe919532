"""The backend side of the protocol (docs/ARCHITECTURE.md section 3), the same file in every backend wheel.

Bazel installs this file as `proteus_backend_<kind>/__init__.py`; everything that differs
between the backends is data in the `manifest.json` beside it (the variant spec: id, kind,
module, priority, versions, and how to probe the GPU runtime), also written as `_manifest.py`.
"""

import importlib

try:
    from ._manifest import MANIFEST  # manifest.json as Python, written beside it by the build
except ImportError:  # a package with manifest.json alone (the shim tests' fake backends)
    import json
    import os

    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "manifest.json"), encoding="utf-8") as _f:
        MANIFEST = json.load(_f)


# The protocol the shim calls; every other public name is the native module's (below).
PROTOCOL = ("get_backend", "available_variant_specs", "active_variant_spec", "is_runtime_compatible",
            "load_native_module", "available_variants", "active_variant")


def get_backend() -> dict:
    """The entry point (group `proteus.backends`)."""
    return {"kind": MANIFEST["kind"], "module": __name__, "priority": MANIFEST.get("priority", 0)}


def available_variant_specs() -> list:
    return [dict(MANIFEST)]


def active_variant_spec() -> dict:
    return dict(MANIFEST)


def available_variants() -> list:
    """The ids of this backend's variants (upstream's name for them)."""
    return [spec["id"] for spec in available_variant_specs()]


def active_variant() -> str:
    """The id of the variant this backend loads."""
    return active_variant_spec()["id"]


def _runtime_device_count(probe: dict) -> int:
    """Devices reported by the GPU driver library named in the manifest (0 if it cannot load)."""
    import ctypes  # only GPU backends probe: the host backend never imports it

    for name in probe["libraries"]:
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        return 0
    if probe.get("init") and getattr(lib, probe["init"])(0) != 0:
        return 0
    count = ctypes.c_int(0)
    if getattr(lib, probe["device_count"])(ctypes.byref(count)) != 0:
        return 0
    return count.value


def is_runtime_compatible() -> bool:
    """True when this backend can run its targets here: for GPU backends, a driver with a device."""
    probe = MANIFEST.get("runtime_probe")
    if not probe:
        return True
    try:
        return _runtime_device_count(probe) > 0
    except Exception:  # never raises (ARCHITECTURE 3)
        return False


def load_native_module():
    return importlib.import_module(MANIFEST.get("module", __name__ + "._proteus"))


def __getattr__(name: str):
    """The native module's names through the package (`proteus_backend_host.compile`), as upstream's
    backend packages forward them; loads the native module on first use, never for protocol names."""
    if name.startswith("_") or name in PROTOCOL:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(load_native_module(), name)
