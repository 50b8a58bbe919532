"""The host backend wheel installed with the shim: ARCHITECTURE 4 for target='host'."""

import ctypes
import json
import os
import pathlib
import re
import subprocess
import sys
from importlib import metadata

import numpy as np
import pytest

import proteus

PLUS1 = 'extern "C" int plus1(int x) { return x + 1; }'


def run_python(code, env=None):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)


# --- backend loader ---------------------------------------------------------------------------

def test_loader_selects_host():
    assert proteus.available_backends() == ["host"]
    assert proteus.available_backend_variants() == ["host_llvm22"]
    assert proteus.active_backend == "host"
    assert proteus.active_backend_variant == "host_llvm22"


def test_lock_after_native_load():
    code = ("import os, proteus; proteus.compile; os.environ['PROTEUS_BACKEND_KIND'] = 'cuda'\n"
            "try:\n    proteus._backend.load_native_module()\nexcept RuntimeError as e:\n    print(e)")
    res = run_python(code)
    assert "locked" in res.stdout, res.stdout + res.stderr


def test_forcing_a_missing_kind_names_installed_kinds():
    res = run_python("import proteus; proteus.compile", env=dict(os.environ, PROTEUS_BACKEND_KIND="cuda"))
    assert res.returncode != 0 and "ImportError" in res.stderr and "['host']" in res.stderr


def test_wildcard_import():
    ns = {}
    exec("from proteus import *", ns)
    for name in ("compile", "i32", "ptr", "Type", "Function", "Module", "CompileError", "has_cuda",
                 "available_backends", "active_backend"):
        assert name in ns, name
    assert ns["active_backend"] == "host"


# --- wheel layout -----------------------------------------------------------------------------

def test_layout_and_manifest():
    import proteus_backend_host as pkg

    here = pathlib.Path(pkg.__file__).parent
    ext = [p.name for p in here.glob("_proteus.*.so")]
    assert len(ext) == 1, ext
    # One shared object: the engine (LLVM, Clang, a static C++ runtime) is linked into the extension.
    assert not [p.name for p in here.glob("*.so") if not p.name.startswith("_proteus.")]
    assert (here / "clang_resource" / "include" / "stddef.h").is_file()
    manifest = json.loads((here / "manifest.json").read_text())
    assert manifest["id"] == proteus.active_backend_variant == "host_llvm22"
    assert manifest["kind"] == "host" and manifest["priority"] == 10 and manifest["llvm_major"] == 22
    assert manifest["platform"] == "manylinux_2_28_x86_64"
    assert proteus.backend_info()["build"] == "optimized"
    assert manifest["version"] == proteus.__version__ == metadata.version("proteus-python-backend-host-llvm22")
    eps = metadata.entry_points(group="proteus.backends")
    assert [(e.name, e.value) for e in eps] == [("host", "proteus_backend_host:get_backend")]
    requires = metadata.requires("proteus-python-backend-host-llvm22")
    assert requires == [f"proteus-python=={proteus.__version__}"]


# --- cpp smoke --------------------------------------------------------------------------------

def test_plus1_inline_source():
    mod = proteus.compile(PLUS1, frontend="cpp")
    f = mod.get_function("plus1", restype=proteus.i32, argtypes=[proteus.i32])
    assert f(41) == 42
    assert mod.get_function_address("plus1") != 0
    assert repr(f) == "<proteus.Function name='plus1' restype=proteus.i32 argtypes=[proteus.i32]>"


def test_source_from_path_and_pathlike(tmp_path):
    src = tmp_path / "kernel.cpp"
    src.write_text('extern "C" long twice(long x) { return 2 * x; }')
    for source in (str(src), src):
        f = proteus.compile(source).get_function("twice", restype=proteus.i64, argtypes=[proteus.i64])
        assert f(21) == 42


def test_missing_pathlike_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        proteus.compile(tmp_path / "nope.cpp")


def test_all_scalar_types():
    src = r'''
    #include <cstdint>
    extern "C" {
    int8_t  neg8(int8_t x) { return -x; }
    uint32_t u32(uint32_t x) { return x * 2u; }
    uint64_t u64(uint64_t x) { return x + 1; }
    float   half(float x) { return x / 2; }
    double  mix(int a, long b, float c, double d) { return a + b + c + d; }
    void    nothing(void) {}
    }'''
    m = proteus.compile(src)
    assert m.get_function("neg8", proteus.i8, [proteus.i8])(-128 + 1) == 127
    assert m.get_function("u32", proteus.u32, [proteus.u32])(2**31 - 1) == 2**32 - 2
    assert m.get_function("u64", proteus.u64, [proteus.u64])(2**64 - 2) == 2**64 - 1
    assert m.get_function("half", proteus.f32, [proteus.f32])(3.0) == 1.5
    assert m.get_function("mix", proteus.f64, [proteus.i32, proteus.i64, proteus.f32, proteus.f64])(1, 2, 0.5, 0.25) == 3.75
    assert m.get_function("nothing", None, [])() is None
    with pytest.raises(OverflowError):
        m.get_function("neg8", proteus.i8, [proteus.i8])(200)


def test_types_and_flags():
    assert repr(proteus.i32) == "proteus.i32"
    for name in ("i8", "i32", "i64", "u32", "u64", "f32", "f64", "ptr"):
        t = getattr(proteus, name)
        assert isinstance(t, proteus.Type) and repr(t) == f"proteus.{name}"
    assert proteus.has_cuda is False and proteus.has_hip is False and proteus.has_mlir is True
    assert issubclass(proteus.CompileError, RuntimeError)


def test_cxx_runtime_and_headers():
    src = r'''
    #include <cmath>
    #include <vector>
    #include <string>
    #include <stdexcept>
    struct Counter { static int live; Counter() { ++live; } ~Counter() { --live; } };
    int Counter::live = 0;
    static Counter global_counter;  // needs a static constructor
    extern "C" double norm(int n) {
        std::vector<double> v(n, 1.0);
        double s = 0; for (double x : v) s += x * x;
        return std::sqrt(s);
    }
    extern "C" int live() { return Counter::live; }
    extern "C" int catches() {
        try { throw std::runtime_error("x"); } catch (const std::exception& e) { return 7; }
        return 0;
    }'''
    m = proteus.compile(src)
    assert m.get_function("norm", proteus.f64, [proteus.i32])(16) == 4.0
    assert m.get_function("live", proteus.i32, [])() == 1
    assert m.get_function("catches", proteus.i32, [])() == 7


def test_extra_args_reach_the_frontend():
    src = 'extern "C" int value() { return VALUE; }'
    assert proteus.compile(src, extra_args=["-DVALUE=5"]).get_function("value", proteus.i32, [])() == 5
    with pytest.raises(proteus.CompileError, match="VALUE"):
        proteus.compile(src)


def test_memory_cache_returns_the_same_module():
    a = proteus.compile('extern "C" int same() { return 3; }')
    before = proteus.backend_info()["frontend_runs"]
    b = proteus.compile('extern "C" int same() { return 3; }')
    assert proteus.backend_info()["frontend_runs"] == before
    assert a.get_function_address("same") == b.get_function_address("same")


def test_function_keeps_code_alive():
    f = proteus.compile('extern "C" int alive(int x) { return x * 3; }').get_function("alive", proteus.i32, [proteus.i32])
    import gc
    gc.collect()
    assert f(5) == 15


# --- llvmir -----------------------------------------------------------------------------------

IR = """
define i32 @plus1(i32 %x) {
  %r = add i32 %x, 1
  ret i32 %r
}
"""


def test_llvmir_smoke():
    m = proteus.compile(IR, frontend="llvmir")
    assert m.get_function("plus1", proteus.i32, [proteus.i32])(1) == 2


def test_llvmir_bitcode_from_llvmlite():
    llvm = pytest.importorskip("llvmlite.binding")
    bitcode = llvm.parse_assembly(IR).as_bitcode()
    m = proteus.compile(bitcode, frontend="llvmir")
    assert m.get_function("plus1", proteus.i32, [proteus.i32])(41) == 42


def test_llvmir_errors():
    with pytest.raises(proteus.CompileError, match=r"source\.ll:\d+:\d+"):
        proteus.compile("define i32 @f( {", frontend="llvmir")
    with pytest.raises(ValueError, match="LLVMIR frontend does not support compiler='nvcc'"):
        proteus.compile(IR, frontend="llvmir", compiler="nvcc")
    with pytest.raises(ValueError, match="LLVMIR frontend does not support extra_args"):
        proteus.compile(IR, frontend="llvmir", extra_args=["-O1"])


# --- validation (ARCHITECTURE 4) --------------------------------------------------------------------

def test_argument_validation_messages():
    with pytest.raises(ValueError, match=r"frontend must be 'cpp', 'llvmir', or 'mlir'"):
        proteus.compile(PLUS1, frontend="fortran")
    with pytest.raises(ValueError, match=r"compiler must be 'clang' or 'nvcc'"):
        proteus.compile(PLUS1, compiler="gcc")
    with pytest.raises(ValueError, match="MLIR frontend does not support compiler='nvcc'"):
        proteus.compile("", frontend="mlir", compiler="nvcc")
    with pytest.raises(ValueError, match="MLIR frontend does not support extra_args"):
        proteus.compile("", frontend="mlir", extra_args=["-x"])
    assert proteus.compile("", frontend="mlir").functions == []  # an empty module (tests/installed/test_mlir.py)
    for target in ("cuda", "hip"):
        with pytest.raises(ValueError, match="supports 'host'.*install proteus-python-backend"):
            proteus.compile(PLUS1, target=target)
    with pytest.raises(ValueError, match="target must be"):
        proteus.compile(PLUS1, target="tpu")
    assert proteus.compile(PLUS1, target="native").get_function("plus1", proteus.i32, [proteus.i32])(1) == 2
    with pytest.raises(TypeError, match="extra_args must be a list of strings"):
        proteus.compile(PLUS1, extra_args="-O2")


def test_call_validation_messages():
    m = proteus.compile('extern "C" long addr(void* p) { return (long)p; }\n' + PLUS1)
    f = m.get_function("plus1", restype=proteus.i32, argtypes=[proteus.i32])
    with pytest.raises(TypeError, match="function argument count does not match argtypes"):
        f()
    with pytest.raises(TypeError, match="function argument count does not match argtypes"):
        f(1, 2)
    g = m.get_function("addr", proteus.i64, [proteus.ptr])
    with pytest.raises(TypeError, match="pointer argument must be an int, None, data_ptr\\(\\) object, "
                                        "__array_interface__ object, buffer or ctypes object"):
        g("not a pointer")

    class NoAddress:
        __array_interface__ = {"data": ("nowhere", False), "shape": (1,), "typestr": "<i4", "version": 3}

    with pytest.raises(TypeError, match="__array_interface__ has no 'data': \\(address, read_only\\) tuple"):
        g(NoAddress())
    with pytest.raises(RuntimeError, match="'nope'"):
        m.get_function("nope", proteus.i32, [])
    with pytest.raises(RuntimeError, match="'nope'"):
        m.get_function_address("nope")
    with pytest.raises(TypeError, match="argtypes must be a list of proteus types"):
        m.get_function("plus1", proteus.i32, [int])
    with pytest.raises(ValueError, match="get_function"):
        m.get_kernel("plus1", [proteus.i32])


def test_compile_error_carries_diagnostics():
    with pytest.raises(proteus.CompileError) as err:
        proteus.compile('extern "C" int f() {\n  return undeclared_thing;\n}\n')
    assert "source.cpp:2:10" in str(err.value) and "undeclared_thing" in str(err.value)


# --- pointers ---------------------------------------------------------------------------------

POINTERS = r'''
extern "C" void scale(float* x, int n, float a) { for (int i = 0; i < n; ++i) x[i] *= a; }
extern "C" long address(void* p) { return (long)p; }
'''


def test_numpy_pointer():
    m = proteus.compile(POINTERS)
    scale = m.get_function("scale", None, [proteus.ptr, proteus.i32, proteus.f32])
    x = np.arange(8, dtype=np.float32)
    scale(x, x.size, 2.0)
    assert (x == np.arange(8, dtype=np.float32) * 2).all()


def test_ctypes_and_buffer_pointers():
    m = proteus.compile(POINTERS)
    scale = m.get_function("scale", None, [proteus.ptr, proteus.i32, proteus.f32])
    address = m.get_function("address", proteus.i64, [proteus.ptr])
    arr = (ctypes.c_float * 4)(1, 2, 3, 4)
    scale(arr, 4, 10.0)
    assert list(arr) == [10, 20, 30, 40]
    assert address(arr) == ctypes.addressof(arr)
    ptr = ctypes.cast(arr, ctypes.POINTER(ctypes.c_float))
    assert address(ptr) == ctypes.addressof(arr)
    assert address(ctypes.c_void_p(1234)) == 1234
    buf = bytearray(16)
    assert address(buf) == ctypes.addressof(ctypes.c_char.from_buffer(buf))
    assert address(None) == 0 and address(4096) == 4096

    class Tensor:
        def data_ptr(self):
            return 777

    assert address(Tensor()) == 777
    held = np.zeros(3)
    assert address(held) == held.__array_interface__["data"][0]


# --- header search (ARCHITECTURE 6) -----------------------------------------------------------------

def test_invalid_clangxx_bin_is_a_clear_error():
    code = ("import proteus\ntry:\n    proteus.compile('int x;')\nexcept proteus.CompileError as e:\n    print(e)")
    res = run_python(code, env=dict(os.environ, PROTEUS_CLANGXX_BIN="/definitely/missing/clang++"))
    assert res.returncode == 0, res.stderr
    assert "PROTEUS_CLANGXX_BIN" in res.stdout and "/definitely/missing/clang++" in res.stdout


def test_compile_with_no_clang_on_path():
    code = ("import proteus\n"
            "src = '#include <cmath>\\n#include <vector>\\nextern \"C\" int plus1(int x) { std::vector<int> v{x}; return (int)std::sqrt(1.0) + v[0]; }'\n"
            "f = proteus.compile(src, frontend='cpp').get_function('plus1', restype=proteus.i32, argtypes=[proteus.i32])\n"
            "print(f(41), proteus.backend_info()['header_search'])")
    env = {k: v for k, v in os.environ.items() if k != "PROTEUS_CLANGXX_BIN"}
    env["PATH"] = os.path.dirname(sys.executable)
    res = run_python(code, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("42 bundled clang resource headers"), res.stdout


def test_static_destructors_run_when_the_module_is_freed():
    src = r'''
    static int* target = nullptr;
    struct Flag { ~Flag() { if (target) *target = 99; } };
    static Flag flag;  // registered with __cxa_atexit by its constructor
    extern "C" void arm(int* p) { target = p; }
    '''
    import gc

    cell = ctypes.c_int(0)
    m = proteus.compile(src)
    m.get_function("arm", None, [proteus.ptr])(cell)
    assert cell.value == 0
    del m
    gc.collect()
    assert cell.value == 99


def test_get_function_on_a_variable_is_a_type_error():
    mod = proteus.compile('extern "C" int counter = 7;\nextern "C" int next_value() { return ++counter; }')
    with pytest.raises(TypeError, match=r"'counter' is a variable, not a function.*\['next_value'\]"):
        mod.get_function("counter", proteus.i32, [])
    assert mod.get_function_address("counter") != 0  # its address stays available
    assert mod.get_function("next_value", proteus.i32, [])() == 8


@pytest.mark.parametrize("flag", ["-m32", "--target=i686-linux-gnu", "-target", "-mabi=ms", "-fshort-enums",
                                  "-fpack-struct=1", "-mno-sse", "-Xclang", "-ftime-report",
                                  "-fdiagnostics-format=sarif"])
def test_flags_that_break_host_code_are_rejected(flag):
    with pytest.raises(ValueError, match=r"extra_args: '%s'" % re.escape(flag)):
        proteus.compile('extern "C" int f(int x) { return x; }', extra_args=[flag])
    # and the engine carries on
    assert proteus.compile('extern "C" int g(int x) { return x + 1; }').get_function("g", proteus.i32, [proteus.i32])(1) == 2


def test_one_error_hierarchy_importable_from_proteus(tmp_path, monkeypatch):
    """Each engine failure has its own type, which also derives from what earlier releases raised."""
    assert issubclass(proteus.ConfigError, proteus.CompileError) and issubclass(proteus.ConfigError, ValueError)
    assert issubclass(proteus.SymbolNotFoundError, RuntimeError) and issubclass(proteus.SymbolNotFoundError, LookupError)
    assert issubclass(proteus.CacheError, PermissionError) and issubclass(proteus.DeviceError, RuntimeError)
    m = proteus.compile('extern "C" int defined_here() { return 1; }')
    with pytest.raises(proteus.SymbolNotFoundError, match="nope"):
        m.get_function("nope", proteus.i32, [])
    monkeypatch.setenv("PROTEUS_OPT_LEVEL", "9")
    with pytest.raises(proteus.ConfigError, match="PROTEUS_OPT_LEVEL=9"):
        proteus.compile('extern "C" int other() { return 2; }')
    monkeypatch.delenv("PROTEUS_OPT_LEVEL")
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    monkeypatch.setenv("PROTEUS_CACHE_DIR", str(shared))
    with pytest.raises(proteus.CacheError, match="chmod 700"):
        proteus.compile('extern "C" int third() { return 3; }')


def test_settings_table_matches_the_readme():
    """backend_info()["settings"] is the engine's one table of variables; the README documents each."""
    settings = proteus.backend_info()["settings"]
    names = [s["name"] for s in settings]
    assert len(names) == len(set(names)) and all(s["doc"] and s["kind"] for s in settings)
    assert {"PROTEUS_OPT_LEVEL", "PROTEUS_CACHE_MAX_BYTES", "PROTEUS_SPECIALIZE_MAX_VARIANTS"} <= set(names)
    readme = pathlib.Path(os.environ["PROTEUS_README"]).read_text()
    table = readme.split("## Runtime contract and environment variables", 1)[1].split("\n\n", 2)[1]
    documented = set(re.findall(r"`((?:PROTEUS_|CUDA_|ROCM_)[A-Z_]+)`", table))
    shim_only = {"PROTEUS_BACKEND_KIND", "PROTEUS_BACKEND_VARIANT"}
    assert set(names) == documented - shim_only, (set(names) ^ (documented - shim_only))


@pytest.mark.parametrize("name,value", [("PROTEUS_USE_PCH", "maybe"), ("PROTEUS_SPECIALIZE_MAX_VARIANTS", "0"),
                                        ("PROTEUS_CODEGEN_OPT_LEVEL", "fast"), ("PROTEUS_USE_STORED_CACHE", "2")])
def test_every_setting_is_parsed_and_a_bad_value_named(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(proteus.ConfigError, match=f"{name}={value}"):
        m = proteus.compile('#include <cmath>\nextern "C" double sp(double x) { return std::sqrt(x); }\n// ' + name)
        m.get_function("sp", proteus.f64, [proteus.f64], specialize=[0])(4.0)


def test_module_ir_and_asm():
    """Module.ir is the optimised LLVM IR, Module.asm the host assembly of the same code."""
    m = proteus.compile('extern "C" int times3(int x) { return 3 * x; }')
    assert "define" in m.ir and "@times3(" in m.ir and "target triple" in m.ir
    assert "times3:" in m.asm and "ret" in m.asm
    ir_module = proteus.compile("define i32 @seven() {\n  ret i32 7\n}\n", frontend="llvmir")
    assert "ret i32 7" in ir_module.ir and "seven:" in ir_module.asm
