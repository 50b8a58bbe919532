"""`python -m proteus [--json]`: what is installed, what would be selected and why, and the
selected engine's LLVM, header search, cache and settings."""

import argparse
import json
import os
import platform
import sys

from . import _backend
from ._version import __version__

# The shim's own variables; the engine's are in its settings table (backend_info()["settings"]).
SHIM_VARIABLES = ("PROTEUS_BACKEND_KIND", "PROTEUS_BACKEND_VARIANT")


def engine_report() -> dict:
    """The selected engine's LLVM version, header search, cache and settings (with this environment's
    values), or {} without a backend."""
    try:
        native = _backend.load_native_module()
        info = native.backend_info()
    except Exception:  # no backend, or one that cannot load: the report says so elsewhere
        return {}
    try:
        cache = dict(native.cache_info())
    except Exception as exc:  # e.g. an unsafe cache directory: say why
        cache = {"error": str(exc)}
    return {"llvm_version": info["llvm_version"], "build": info["build"], "targets": list(info["targets"]),
            "header_search": info["header_search"], "cache": cache, "settings": list(info["settings"])}


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
        "engine": engine_report() if "error" not in selection else {},
    }


def main(argv: list) -> int:
    parser = argparse.ArgumentParser(prog="python -m proteus", description=__doc__.splitlines()[0][len("`python -m proteus [--json]`: "):])
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    options = parser.parse_args(argv)  # --help: exit 0; an unknown flag: exit 2 with usage
    data = report()
    if options.json:
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
    engine = data["engine"]
    if engine:
        print(f"engine: LLVM {engine['llvm_version']} ({engine['build']}), targets {', '.join(engine['targets'])}")
        print(f"header search: {engine['header_search']}")
        cache = engine["cache"]
        if "error" in cache:
            print(f"cache: unusable: {cache['error']}")
        elif not cache["enabled"]:
            print("cache: off (PROTEUS_USE_STORED_CACHE=0)")
        else:
            print(f"cache: {cache['dir']}, {cache['entries']} entries, {cache['bytes']} of {cache['max_bytes']} bytes")
        if "chain_error" in cache:
            print(f"cache chain: unusable: {cache['chain_error']}")
        elif "levels" in cache:  # engines before the chain have no levels
            print("cache chain (PROTEUS_OBJECT_CACHE_CHAIN), looked up in this order:")
            for level in cache["levels"]:
                about = f" - {level['description']}" if level["description"] else ""
                print(f"  {level['name']}: {level['hits']} hits, {level['misses']} misses, {level['rejected']} rejected, "
                      f"{level['errors']} errors{about}")
                if level["last_error"]:
                    print(f"    last error: {level['last_error']}")
        print("engine settings (set here, else the default):")
        for setting in engine["settings"]:
            shown = setting["value"] if setting["value"] is not None else f"(default {setting['default'] or 'none'})"
            print(f"  {setting['name']}={shown}  - {setting['doc']}")
    return 0


def console_main() -> int:
    return main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(console_main())
