"""proteus: JIT-compile C++ and LLVM IR at run time with Clang/LLVM 22 and call or launch the result.

This package is the shim: it finds the installed backend wheels (entry point group
`proteus.backends`), selects one (see `proteus._backend`) and re-exports its native API.
Nothing native is imported until a native name (`proteus.compile`, `proteus.i32`, ...) is used.
"""

from . import _backend
from ._backend import available_backend_variants, available_backends
from ._version import __version__

_SHIM_NAMES = ["available_backends", "available_backend_variants", "active_backend", "active_backend_variant"]
_LAZY = {
    "active_backend": _backend.active_backend,
    "active_backend_variant": _backend.active_backend_variant,
}


def _native_public_names(native) -> list:
    names = getattr(native, "__all__", None)
    if names is None:
        names = [n for n in dir(native) if not n.startswith("_")]
    return list(names)


def __getattr__(name: str):
    if name in _LAZY:
        return _LAZY[name]()
    if name == "__all__":
        try:
            native = _backend.load_native_module()
        except ImportError:  # no usable backend: the names that still work
            return ["available_backends", "available_backend_variants"]
        return list(_SHIM_NAMES) + _native_public_names(native)
    if name.startswith("_"):  # private and probing names (IPython, inspect) never load a backend
        raise AttributeError(f"module 'proteus' has no attribute {name!r}")
    native = _backend.load_native_module()
    try:
        return getattr(native, name)
    except AttributeError:
        raise AttributeError(f"module 'proteus' has no attribute {name!r} (not in the {_backend.active_backend()} backend)") from None


def __dir__():
    names = set(globals()) | set(_SHIM_NAMES)
    if _backend.is_locked():
        names |= set(_native_public_names(_backend.load_native_module()))
    return sorted(names)
