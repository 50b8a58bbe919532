"""`python -m proteus [--json]`: what is installed, what would be selected and why."""

import json
import os
import platform
import sys

from . import _backend
from ._version import __version__

TOOLCHAIN_VARIABLES = (
    "PROTEUS_BACKEND_KIND", "PROTEUS_BACKEND_VARIANT", "PROTEUS_CLANGXX_BIN", "PROTEUS_CACHE_DIR",
    "PROTEUS_USE_STORED_CACHE", "PROTEUS_OPT_LEVEL", "PROTEUS_CODEGEN_OPT_LEVEL", "PROTEUS_CUDA_HOME",
    "CUDA_HOME", "CUDA_PATH", "PROTEUS_NVCC_BIN", "PROTEUS_CUDA_ARCH", "PROTEUS_ROCM_PATH", "ROCM_PATH",
    "PROTEUS_HIP_ARCH",
)


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
        "environment": {k: os.environ[k] for k in TOOLCHAIN_VARIABLES if k in os.environ},
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
        print("  (no Proteus or toolchain variables set)")
    for k, v in sorted(data["environment"].items()):
        print(f"  {k}={v}")
    return 0


def console_main() -> int:
    return main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(console_main())
