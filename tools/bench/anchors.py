"""The anchor benchmark suite (not a test): one markdown table of ratios, all measured in this run.

usage: tools/bench/run.sh          (builds the wheels, makes a venv with them and the anchors)
   or: python tools/bench/anchors.py   (in a venv with proteus + the host backend installed)

Workloads: W1 `int plus1(int)`; W3 a `<cmath>` + `<vector>` function; W2 saxpy on 1e6 floats;
S a batched 3x3 matrix multiply whose size argument is specialised. Systems: proteus (cold,
memory-cache hit, disk-cache hit in a fresh process, with/without PCH), clang++-22 subprocess +
ctypes, cffi (ABI mode), numba (@njit cold, cache=True warm), cppyy (cppdef), llvmlite (IR ->
MCJIT), AOT clang++-22 -O3 -march=native, NumPy. A system that is not installed is reported so.
These machines are noisy: compare ratios within one run, not absolute times across runs.
"""

import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import timeit

import numpy as np

import proteus

CLANGXX = shutil.which("clang++-22") or shutil.which("clang++")
REPEATS = int(os.environ.get("BENCH_REPEATS", "5"))
PLUS1 = 'extern "C" int plus1(int x) { return x + 1; }\n'
W3 = ('#include <cmath>\n#include <vector>\n'
      'extern "C" double norm(int n) { std::vector<double> v(n, 2.0); double s = 0;'
      ' for (double x : v) s += x * x; return std::sqrt(s); }\n')
SAXPY = ('extern "C" void saxpy(int n, float a, const float* x, float* y)'
         ' { for (int i = 0; i < n; ++i) y[i] = a * x[i] + y[i]; }\n')
BATCHED = r'''
extern "C" void batched_matmul(const float* a, const float* b, float* c, int batch, int n) {
  for (int p = 0; p < batch; ++p) {
    const float* A = a + p * n * n; const float* B = b + p * n * n; float* C = c + p * n * n;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) { float s = 0; for (int k = 0; k < n; ++k) s += A[i*n+k] * B[k*n+j]; C[i*n+j] = s; }
  }
}
'''
PLUS1_IR = "define i32 @plus1(i32 %x) {\n  %r = add i32 %x, 1\n  ret i32 %r\n}\n"

TMP = tempfile.mkdtemp(prefix="proteus-bench-")


class Missing(Exception):
    """A system that is not installed here."""


def fresh(code, env=None):
    """Median seconds printed (last line) by `code` in new interpreters."""
    times = []
    for i in range(REPEATS):
        full = dict(os.environ, **(env or {}), BENCH_NONCE=f"{os.getpid()}_{i}_{time.time_ns()}")
        res = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=full)
        if res.returncode != 0:
            if "ModuleNotFoundError" in res.stderr:
                raise Missing(res.stderr.strip().splitlines()[-1])
            raise RuntimeError(res.stderr[-2000:])
        times.append(float(res.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def per_call_ns(fn, *args, number=300_000):
    env = {"fn": fn, **{f"a{i}": a for i, a in enumerate(args)}}
    stmt = "fn(" + ", ".join(f"a{i}" for i in range(len(args))) + ")"
    return min(timeit.repeat(stmt, globals=env, number=number, repeat=REPEATS)) / number * 1e9


def best(fn, number=10):
    return min(timeit.repeat(fn, number=number, repeat=REPEATS)) / number


def aot(src, name, march=True):
    cpp, so = os.path.join(TMP, name + ".cpp"), os.path.join(TMP, name + ".so")
    with open(cpp, "w") as f:
        f.write(src)
    subprocess.run([CLANGXX, "-O3"] + (["-march=native"] if march else []) + ["-shared", "-fPIC", cpp, "-o", so],
                   check=True)
    return so


# --- compile latency, fresh processes ----------------------------------------------------------

PROTEUS_COMPILE = """
    import os, time, proteus
    proteus.i32
    src = {src!r} + "// " + str(time.time_ns()) * {nonce}  # a new source: no object-cache hit
    t = time.perf_counter()
    proteus.compile(src)
    print(time.perf_counter() - t)
"""


def proteus_compile(src, cache_dir, nonce=True, **env):
    return fresh(PROTEUS_COMPILE.format(src=src, nonce=int(nonce)), dict(PROTEUS_CACHE_DIR=cache_dir, **env))


def clang_subprocess(src):
    return fresh(f"""
        import ctypes, os, subprocess, tempfile, time
        d = tempfile.mkdtemp()
        t = time.perf_counter()
        with open(os.path.join(d, "k.cpp"), "w") as f:
            f.write({src!r})
        subprocess.run([{CLANGXX!r}, "-O3", "-shared", "-fPIC", os.path.join(d, "k.cpp"), "-o", os.path.join(d, "k.so")], check=True)
        ctypes.CDLL(os.path.join(d, "k.so"))
        print(time.perf_counter() - t)
    """)


def numba_cold(cache_dir, warm=False):
    code = """
        import time
        import numba
        t = time.perf_counter()
        @numba.njit(cache=%s)
        def plus1(x):
            return x + 1
        plus1(41)
        print(time.perf_counter() - t)
    """ % warm
    script = os.path.join(cache_dir, "numba_plus1.py")
    os.makedirs(cache_dir, exist_ok=True)
    with open(script, "w") as f:
        f.write(textwrap.dedent(code))
    run = f"import runpy, sys; sys.argv = ['x']; runpy.run_path({script!r}, run_name='__main__')"
    if warm:
        fresh(run)  # populate numba's cache next to the script
    return fresh(run)


def cppyy_cppdef(src):
    return fresh(f"""
        import os, time
        import cppyy
        t = time.perf_counter()
        nonce = os.environ["BENCH_NONCE"]
        cppyy.cppdef({src!r}.replace("plus1", "plus1_" + nonce).replace("norm", "norm_" + nonce))
        print(time.perf_counter() - t)
    """)


def llvmlite_mcjit():
    return fresh(f"""
        import time
        import llvmlite.binding as llvm
        llvm.initialize_native_target(); llvm.initialize_native_asmprinter()
        t = time.perf_counter()
        mod = llvm.parse_assembly({PLUS1_IR!r}); mod.verify()
        tm = llvm.Target.from_default_triple().create_target_machine(opt=3)
        ee = llvm.create_mcjit_compiler(mod, tm); ee.finalize_object()
        ee.get_function_address("plus1")
        print(time.perf_counter() - t)
    """)


def import_proteus():
    return fresh("import time\nt = time.perf_counter()\nimport proteus\nprint(time.perf_counter() - t)")


# --- the table ---------------------------------------------------------------------------------

rows = []


def row(workload, metric, system, value, anchor=None, anchor_value=None, target=None, unit="ms", lower_is_better=True):
    scale = {"ms": 1e3, "ns": 1.0, "x": 1.0}[unit]
    shown = f"{value * scale:.3g} {unit}" if value is not None else "not installed"
    ratio, verdict = "", ""
    if value is not None and anchor_value:
        r = value / anchor_value
        ratio = f"{r:.3f}"
        if target is not None:
            ok = r <= target if lower_is_better else r >= target
            verdict = f"{'<=' if lower_is_better else '>='} {target}: {'met' if ok else 'NOT met'}"
    elif target is not None and value is not None and anchor is None:
        ok = value * scale <= target if lower_is_better else value * scale >= target
        verdict = f"{'<=' if lower_is_better else '>='} {target} {unit}: {'met' if ok else 'NOT met'}"
    anchor_text = "" if anchor is None else f"{anchor} ({anchor_value * scale:.3g} {unit})" if anchor_value else anchor
    rows.append(f"| {workload} | {metric} | {system} | {shown} | {anchor_text} | {ratio} | {verdict} |")


def attempt(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except (Missing, ImportError):
        return None


def main():
    if not CLANGXX:
        sys.exit("anchors.py: clang++-22 must be on PATH for the AOT and subprocess anchors")
    cache = os.path.join(TMP, "cache")

    # W1 compile latency
    clang_w1 = clang_subprocess(PLUS1)
    cold_w1 = proteus_compile(PLUS1, cache, PROTEUS_USE_STORED_CACHE="0")
    row("W1 plus1", "compile, fresh process", "proteus cold (no disk cache)", cold_w1, "clang++-22 subprocess + CDLL",
        clang_w1, 0.15)
    proteus_compile(PLUS1, cache, nonce=False)  # fill the disk cache
    disk_w1 = proteus_compile(PLUS1, cache, nonce=False)
    row("W1 plus1", "compile, fresh process", "proteus disk-cache hit", disk_w1, "clang++-22 subprocess + CDLL", clang_w1)
    row("W1 plus1", "compile, fresh process", "proteus disk-cache hit (absolute)", disk_w1, target=3)
    mem = proteus.compile(PLUS1)
    mem_w1 = best(lambda: proteus.compile(PLUS1), number=1000)
    row("W1 plus1", "compile, in process", "proteus memory-cache hit", mem_w1, "clang++-22 subprocess + CDLL", clang_w1)
    row("W1 plus1", "compile, fresh process", "numba @njit cold", attempt(numba_cold, os.path.join(TMP, "nb1")),
        "clang++-22 subprocess + CDLL", clang_w1)
    row("W1 plus1", "compile, fresh process", "numba @njit cache=True warm",
        attempt(numba_cold, os.path.join(TMP, "nb2"), warm=True), "clang++-22 subprocess + CDLL", clang_w1)
    row("W1 plus1", "compile, fresh process", "cppyy cppdef", attempt(cppyy_cppdef, PLUS1),
        "clang++-22 subprocess + CDLL", clang_w1)
    row("W1 plus1", "compile, fresh process", "llvmlite IR -> MCJIT", attempt(llvmlite_mcjit),
        "clang++-22 subprocess + CDLL", clang_w1)

    # W3 compile latency with headers
    clang_w3 = clang_subprocess(W3)
    nopch_w3 = proteus_compile(W3, cache, PROTEUS_USE_PCH="0")
    proteus_compile(W3, cache)  # builds the PCH once
    pch_w3 = proteus_compile(W3, cache)
    row("W3 cmath+vector", "compile, fresh process", "proteus, no PCH", nopch_w3, "clang++-22 subprocess + CDLL", clang_w3)
    row("W3 cmath+vector", "compile, fresh process", "proteus, PCH (warm)", pch_w3, "proteus, no PCH", nopch_w3, 0.35)
    row("W3 cmath+vector", "compile, fresh process", "cppyy cppdef", attempt(cppyy_cppdef, W3),
        "clang++-22 subprocess + CDLL", clang_w3)

    # call overhead
    f = mem.get_function("plus1", restype=proteus.i32, argtypes=[proteus.i32])
    lib = ctypes.CDLL(aot(PLUS1, "plus1"))
    c_plus1 = lib.plus1
    c_plus1.restype, c_plus1.argtypes = ctypes.c_int, [ctypes.c_int]
    ctypes_ns = per_call_ns(c_plus1, 41)
    plain_ns = per_call_ns(f, 41)
    row("W1 plus1", "call overhead", "proteus Function", plain_ns, "ctypes", ctypes_ns, 0.12, "ns")
    fs = mem.get_function("plus1", restype=proteus.i32, argtypes=[proteus.i32], specialize=[0])
    fs(41)  # compiles the variant: what follows are hits
    row("W1 plus1", "call overhead", "proteus specialize=[0], variant hit", per_call_ns(fs, 41), "proteus Function",
        plain_ns, 1.2, "ns")
    row("W1 plus1", "call overhead", "C builtin abs()", per_call_ns(abs, -41), "ctypes", ctypes_ns, unit="ns")
    try:
        import cffi

        ffi = cffi.FFI()
        ffi.cdef("int plus1(int);")
        row("W1 plus1", "call overhead", "cffi ABI mode", per_call_ns(ffi.dlopen(lib._name).plus1, 41), "ctypes",
            ctypes_ns, unit="ns")
    except ImportError:
        row("W1 plus1", "call overhead", "cffi ABI mode", None)
    try:
        import numba

        nb_plus1 = numba.njit(lambda x: x + 1)
        nb_plus1(1)
        row("W1 plus1", "call overhead", "numba @njit", per_call_ns(nb_plus1, 41), "ctypes", ctypes_ns, unit="ns")
    except ImportError:
        row("W1 plus1", "call overhead", "numba @njit", None)
    try:
        import cppyy

        cppyy.cppdef('extern "C" int bench_plus1(int x) { return x + 1; }')
        row("W1 plus1", "call overhead", "cppyy", per_call_ns(cppyy.gbl.bench_plus1, 41), "ctypes", ctypes_ns, unit="ns")
    except ImportError:
        row("W1 plus1", "call overhead", "cppyy", None)

    # W2 throughput
    n = 1_000_000
    x = np.random.default_rng(0).random(n, dtype=np.float32)
    y = np.ones(n, dtype=np.float32)
    jit = proteus.compile(SAXPY).get_function("saxpy", None, [proteus.i32, proteus.f32, proteus.ptr, proteus.ptr])
    aot_saxpy = ctypes.CDLL(aot(SAXPY, "saxpy")).saxpy
    aot_saxpy.restype, aot_saxpy.argtypes = None, [ctypes.c_int, ctypes.c_float, ctypes.c_void_p, ctypes.c_void_p]
    xp, yp = x.ctypes.data, y.ctypes.data
    t_jit = best(lambda: jit(n, 2.0, x, y), 50)
    t_aot = best(lambda: aot_saxpy(n, 2.0, xp, yp), 50)
    # throughput ratio = AOT time / proteus time
    row("W2 saxpy 1e6", "throughput vs AOT", "proteus", t_aot / t_jit, "AOT clang++-22 -O3 -march=native", 1.0,
        0.95, "x", lower_is_better=False)
    t_np = best(lambda: np.add(np.multiply(x, np.float32(2.0)), y, out=y), 50)
    row("W2 saxpy 1e6", "throughput vs NumPy", "proteus", t_np / t_jit, "NumPy a*x+y", 1.0, unit="x",
        lower_is_better=False)
    try:
        import numba

        @numba.njit
        def nb_saxpy(a, x, y):
            for i in range(x.size):
                y[i] = a * x[i] + y[i]

        nb_saxpy(np.float32(2.0), x, y)
        t_nb = best(lambda: nb_saxpy(np.float32(2.0), x, y), 50)
        row("W2 saxpy 1e6", "throughput vs AOT", "numba @njit", t_aot / t_nb, "AOT clang++-22 -O3 -march=native", 1.0,
            unit="x", lower_is_better=False)
    except ImportError:
        row("W2 saxpy 1e6", "throughput vs AOT", "numba @njit", None)

    # S specialization
    batch, size = 20000, 3
    m = proteus.compile(BATCHED)
    args = [proteus.ptr] * 3 + [proteus.i32, proteus.i32]
    gen = m.get_function("batched_matmul", None, args)
    spec = m.get_function("batched_matmul", None, args, specialize=[4])
    rng = np.random.default_rng(2)
    a, b = rng.random((batch, size, size), dtype=np.float32), rng.random((batch, size, size), dtype=np.float32)
    c1, c2 = np.zeros_like(a), np.zeros_like(a)
    gen(a, b, c1, batch, size)
    spec(a, b, c2, batch, size)
    assert np.array_equal(c1, c2), "specialized result differs"
    t_gen = best(lambda: gen(a, b, c1, batch, size), 20)
    t_spec = best(lambda: spec(a, b, c2, batch, size), 20)
    row("S batched 3x3 matmul", "speed-up, identical results", "proteus specialize=[n]", t_gen / t_spec,
        "proteus generic", 1.0, 1.3, "x", lower_is_better=False)

    row("-", "import time", "`import proteus`", import_proteus())

    print(f"proteus {proteus.__version__} ({proteus.active_backend_variant}, LLVM {proteus.backend_info()['llvm_version']}), "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; fresh-process figures are medians of {REPEATS}, "
          f"in-process ones the best of {REPEATS} repeats\n")
    print("| workload | metric | system | value | anchor | ratio | target |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
