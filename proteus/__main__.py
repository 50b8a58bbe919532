"""`python -m proteus [--json]`: what is installed, what would be selected and why."""

import json
import os
import platform
import sys

from . import _backend
from ._version import __version__

# The shim's own variables; the engine's are in its settings table (backend_info()["settings"]).
SHIM_VARIABLES = ("PROTEUS_BACKEND_KIND", "PROTEUS_BACKEND_VARIANT")


def engine_settings() -> list:
    """The selected backend's settings table with this environment's values, or [] without a backend."""
    try:
        return list(_backend.load_native_module().backend_info()["settings"])
    except Exception:  # no backend, or one that cannot load: the report says so elsewhere
        return []


def report() -> dict:
    backends = []
    for b in _backend.discover():
        entry = {"kind": b.kind, "distribution": b.distribution, "version": b.dist_version,
                 "priority": b.priority, "healthy": b.problem is None}
        if b.problem is None:
            entry["variants"] = [v["id"] for v in b.variants]
            entry["runtime_compatible"] = b.is_runtime_compatible()
        else:
            entry["problem"] = b.problem
        backends.append(entry)
    selection = {}
    try:
        backend, spec, why = _backend.select()
        selection = {"kind": backend.kind, "variant": spec["id"], "reason": why}
    except ImportError as exc:
        selection = {"error": str(exc)}
    return {
        "proteus_version": __version__,
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "backends": backends,
        "selection": selection,
        "environment": {k: os.environ[k] for k in SHIM_VARIABLES if k in os.environ},
        "settings": engine_settings() if "error" not in selection else [],
    }


def main(argv: list) -> int:
    data = report()
    if "--json" in argv:
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    print(f"proteus-python {data['proteus_version']} on Python {data['python']} ({data['executable']})")
    print(f"platform: {data['platform']}")
    print("backends:")
    if not data["backends"]:
        print("  (none installed)")
    for b in data["backends"]:
        if b["healthy"]:
            compat = "runtime-compatible" if b["runtime_compatible"] else "not runtime-compatible here"
            print(f"  {b['kind']:5} {b['distribution']} {b['version']} priority {b['priority']}, "
                  f"variants {', '.join(b['variants'])}, {compat}")
        else:
            print(f"  {b['kind']:5} {b['distribution']} {b['version']}: BROKEN: {b['problem']}")
    sel = data["selection"]
    if "error" in sel:
        print(f"selection: none\n  {sel['error']}")
    else:
        print(f"selection: {sel['kind']} (variant {sel['variant']}), because: {sel['reason']}")
    print("environment:")
    if not data["environment"]:
        print("  (no backend selection variable set)")
    for k, v in sorted(data["environment"].items()):
        print(f"  {k}={v}")
    if data["settings"]:
        print("engine settings (set here, else the default):")
        for setting in data["settings"]:
            shown = setting["value"] if setting["value"] is not None else f"(default {setting['default'] or 'none'})"
            print(f"  {setting['name']}={shown}  - {setting['doc']}")
    return 0


def console_main() -> int:
    return main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(console_main())
