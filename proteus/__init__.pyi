# Type stubs of the public API: the shim's own names and what it re-exports from the selected
# backend's native module (`_proteus`, the same API in every backend). Checked by mypy --strict in
# the installed-wheel tests (tests/installed/typed_program.py).
import os
from typing import Any, Final, Sequence, Union, final

__version__: Final[str]

# --- the shim -------------------------------------------------------------------------------------

def available_backends() -> list[str]:
    """Kinds of the installed backends ("host", "cuda", "rocm"), highest priority first."""

def available_backend_variants() -> list[str]:
    """Variant ids of the installed backends ("host_llvm22", ...)."""

active_backend: str
"""The selected backend's kind; selecting it loads (and locks) the backend."""
active_backend_variant: str
"""The selected backend's variant id."""

# --- types ----------------------------------------------------------------------------------------

@final
class Type:
    """A scalar type for argtypes/restype: proteus.i32, proteus.ptr, ..."""

    @property
    def name(self) -> str: ...
    def __getitem__(self, element: Type) -> Type:
        """proteus.ptr[proteus.f64]: a pointer to such elements (arrays passed for it are checked)."""

i8: Final[Type]
i32: Final[Type]
i64: Final[Type]
u32: Final[Type]
u64: Final[Type]
f32: Final[Type]
f64: Final[Type]
ptr: Final[Type]
const_ptr: Final[Type]

has_cuda: Final[bool]
has_hip: Final[bool]
has_mlir: Final[bool]

class CompileWarning(UserWarning):
    """A compiler warning for the source (e.g. with -Wall): clang's text, through `warnings`."""

class CompileError(RuntimeError):
    """Compilation failed; the message carries the compiler's diagnostics (file:line:col: error: ...)."""

class ConfigError(CompileError, ValueError):
    """A setting (a PROTEUS_* variable) has a value that cannot be used; the message names it and the fix."""

class SymbolNotFoundError(RuntimeError, LookupError):
    """The module defines no such name; the message lists what it defines."""

class CacheError(PermissionError):
    """The persistent cache directory cannot be used safely; the message names it and the fix."""

class DeviceError(RuntimeError):
    """The GPU runtime (CUDA driver, HIP runtime) is missing or failed; the message has its error name."""

class NativeError(RuntimeError):
    """A C++ exception escaped a called function; the module stays usable."""

    type_name: str
    what: str | None

# A pointer argument: an int address, None, or any object exposing memory (NumPy arrays,
# buffers, ctypes objects, data_ptr() / __cuda_array_interface__ objects), checked at call time.
PointerArg = Any
Scalar = Union[int, float]

# --- compiled code --------------------------------------------------------------------------------

@final
class Function:
    """A host function of a Module, callable with the argtypes given to get_function."""

    @property
    def name(self) -> str: ...
    @property
    def restype(self) -> Type | None: ...
    @property
    def release_gil(self) -> bool:
        """Whether calls release the GIL (get_function(..., release_gil=False) keeps it)."""
    @property
    def signature(self) -> str | None:
        """The C signature as the source declares it, e.g. "double f(const double *, long)"."""
    @property
    def argtypes(self) -> list[Type]: ...
    @property
    def address(self) -> int: ...
    @property
    def module(self) -> Module: ...
    @property
    def specialize(self) -> list[int]: ...
    @property
    def variants(self) -> int: ...
    def __call__(self, *args: Scalar | PointerArg) -> Any: ...

@final
class Kernel:
    """A GPU kernel; launch(grid, block, args, shmem=0, stream=None)."""

    @property
    def name(self) -> str: ...
    @property
    def argtypes(self) -> list[Type]: ...
    @property
    def signature(self) -> str | None: ...
    @property
    def handle(self) -> int: ...
    @property
    def specialize(self) -> list[int]: ...
    @property
    def variants(self) -> int: ...
    @property
    def last_variant(self) -> Module | None: ...
    def launch(
        self,
        grid: int | Sequence[int],
        block: int | Sequence[int],
        args: Sequence[Scalar | PointerArg],
        shmem: int = 0,
        stream: int | Any | None = None,
    ) -> None: ...

@final
class Module:
    """Compiled code; get callable functions (host) or kernels (GPU) from it."""

    @property
    def target(self) -> str: ...
    @property
    def functions(self) -> list[str]: ...
    @property
    def ir(self) -> str | None:
        """The optimised LLVM IR as text (device IR for GPU modules), or None where none is kept."""
    @property
    def asm(self) -> str | None:
        """Host modules: the assembly of the compiled code (None for GPU modules: see ptx)."""
    @property
    def ptx(self) -> str | None: ...
    @property
    def cubin(self) -> bytes | None: ...
    @property
    def arch(self) -> str | None: ...
    def get_function_address(self, name: str) -> int: ...
    def get_function(
        self,
        name: str,
        restype: Type | None = ...,
        argtypes: Sequence[Type] = ...,
        specialize: Sequence[int] | None = None,
        *,
        release_gil: bool = True,
    ) -> Function: ...
    def get_kernel(self, name: str, argtypes: Sequence[Type] = ..., specialize: Sequence[int] | None = None) -> Kernel: ...

def compile(
    source: str | bytes | os.PathLike[str],
    frontend: str = "cpp",
    target: str = "host",
    extra_args: Sequence[str] | None = (),
    compiler: str = "clang",
    verify: bool = False,
    *,
    timeout: float | None = None,
    link: Sequence[Module] | None = None,
) -> Module:
    """Compile C++ (frontend='cpp'), C (frontend='c'), LLVM IR/bitcode (frontend='llvmir') or MLIR
    (frontend='mlir'); source is text, bytes or a path.

    timeout: seconds after which a running compile is cancelled (TimeoutError).
    link: host Modules whose exported functions and variables the code may use (kept alive)."""

def backend_info() -> dict[str, Any]:
    """Engine facts and counters for this process (LLVM version, build, header search, compile counts)."""

def cache_info() -> dict[str, Any]:
    """The persistent object cache: directory, entries, bytes, this process's hits and misses, and
    "levels": the cache chain (PROTEUS_OBJECT_CACHE_CHAIN) with each level's counts."""

def clear_cache() -> int:
    """Remove every entry of the persistent object cache; returns how many were removed."""
