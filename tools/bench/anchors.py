"""The anchor benchmark suite (not a test): one markdown table of ratios, all measured in this run.

usage: tools/bench/run.sh [--json]          (builds the wheels, makes a venv with them and the anchors)
   or: python tools/bench/anchors.py [--json]   (in a venv with proteus + the host backend installed)
--json prints the rows as a JSON list instead of the markdown table.

Workloads: W1 `int plus1(int)`; W3 a `<cmath>` + `<vector>` function; W2 saxpy on 1e6 floats;
S a batched 3x3 matrix multiply whose size argument is specialised; H the hot paths of issue #11
(calls, array arguments, specialised hits, warm compiles, 1,000 functions, memory per module).
Systems: proteus (cold, memory-cache hit, disk-cache hit in a fresh process, with/without PCH),
clang++-22 subprocess + ctypes, cffi (ABI mode, and API mode compiled here with the C compiler),
numba (@njit cold, cache=True warm), cppyy (cppdef), llvmlite (IR -> MCJIT), AOT clang++-22 -O3
-march=native, NumPy. A system that is not installed is reported so.
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


def stmt_ns(stmt, number=300_000, **names):
    """Best ns per run of `stmt` (timeit) with `names` as its globals."""
    return min(timeit.repeat(stmt, globals=names, number=number, repeat=REPEATS)) / number * 1e9


def per_call_ns(fn, *args, number=300_000):
    stmt = "fn(" + ", ".join(f"a{i}" for i in range(len(args))) + ")"
    return stmt_ns(stmt, number, fn=fn, **{f"a{i}": a for i, a in enumerate(args)})


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
    """One result; the ratio is value / anchor_value, the target a bound on the ratio (or, without an
    anchor, on the value in `unit`)."""
    scale = {"ms": 1e3, "ns": 1.0, "x": 1.0, "KiB": 1 / 1024}[unit]
    entry = {"workload": workload, "metric": metric, "system": system, "unit": unit,
             "value": None if value is None else value * scale, "anchor": anchor,
             "anchor_value": None if not anchor_value else anchor_value * scale, "ratio": None,
             "target": target, "lower_is_better": lower_is_better, "met": None}
    if value is not None and anchor_value:
        entry["ratio"] = value / anchor_value
        measured = entry["ratio"]
    else:
        measured = entry["value"] if anchor is None else None
    if target is not None and measured is not None:
        entry["met"] = measured <= target if lower_is_better else measured >= target
    rows.append(entry)


def markdown(entry):
    unit = entry["unit"]
    shown = f"{entry['value']:.3g} {unit}" if entry["value"] is not None else "not installed"
    anchor = entry["anchor"] or ""
    if entry["anchor_value"]:
        anchor += f" ({entry['anchor_value']:.3g} {unit})"
    ratio = "" if entry["ratio"] is None else f"{entry['ratio']:.3f}"
    verdict = ""
    if entry["met"] is not None:
        bound = f"{'<=' if entry['lower_is_better'] else '>='} {entry['target']}"
        verdict = f"{bound}{'' if entry['ratio'] is not None else ' ' + unit}: {'met' if entry['met'] else 'NOT met'}"
    return f"| {entry['workload']} | {entry['metric']} | {entry['system']} | {shown} | {anchor} | {ratio} | {verdict} |"


def attempt(fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except (Missing, ImportError):
        return None


# --- the hot paths (issue #11) ----------------------------------------------------------------------

HOT_C = "int plus1(int x) { return x + 1; }\ndouble first(const double* p) { return p[0]; }\n"
COUNTER = iter(range(10**9))


def unique(prefix):
    return f"{prefix}_{os.getpid()}_{next(COUNTER)}"


def cffi_api():
    """cffi's API mode: HOT_C compiled here into an extension module (needs a C compiler)."""
    import cffi

    ffi = cffi.FFI()
    ffi.cdef("int plus1(int); double first(const double*);")
    ffi.set_source("_bench_cffi_api", HOT_C)
    ffi.compile(tmpdir=TMP, verbose=False)
    sys.path.insert(0, TMP)
    import _bench_cffi_api

    return _bench_cffi_api


def many_functions(count, prefix):
    return "".join(f'extern "C" int {prefix}{i}(int x) {{ return x * {i} + {i % 7}; }}\n' for i in range(count))


MEMORY = """
    import os
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    {setup}
    keep = []
    one(-1); one(-2)  # one-time costs are not the module's
    before = rss()
    for i in range({count}):
        one(i)
    print((rss() - before) / {count})
"""
PROTEUS_MODULE = """
    import proteus
    def one(i):
        m = proteus.compile('extern "C" int plus1(int x) { return x + %d; }' % i)
        keep.append((m, m.get_function("plus1", proteus.i32, [proteus.i32])))
"""
LLVMLITE_MODULE = """
    import llvmlite.binding as llvm
    llvm.initialize_native_target(); llvm.initialize_native_asmprinter()
    # One engine, one module added per function: llvmlite's leanest way to hold many.
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""),
                                        llvm.Target.from_default_triple().create_target_machine(opt=3))
    def one(i):
        name = "plus1_%d" % (i + 10)
        engine.add_module(llvm.parse_assembly(
            'define i32 @%s(i32 %%x) {\\n  %%r = add i32 %%x, 1\\n  ret i32 %%r\\n}\\n' % name))
        engine.finalize_object()
        keep.append(engine.get_function_address(name))
"""


def memory_per_module(setup, count=200):
    code = MEMORY.format(setup=textwrap.indent(textwrap.dedent(setup), "    ").strip(), count=count)
    return fresh(code, {"PROTEUS_USE_STORED_CACHE": "0"})


def hot_paths(mem, f, plain_ns):
    """Issue #11's rows: each against the peer its target names."""
    try:
        api = cffi_api()
    except Exception as e:  # no cffi, or no C compiler
        print(f"cffi API mode unavailable: {e}", file=sys.stderr)
        api = None
    try:
        import cppyy
    except ImportError:
        cppyy = None

    # calls
    api_ns = per_call_ns(api.lib.plus1, 41) if api else None
    row("H call plus1(41)", "per call", "proteus Function", plain_ns, "cffi API mode", api_ns, 0.9, "ns")
    if cppyy:
        cppyy.cppdef('extern "C" int hot_plus1(int x) { return x + 1; }')
        row("H call plus1(41)", "per call", "proteus Function", plain_ns, "cppyy", per_call_ns(cppyy.gbl.hot_plus1, 41),
            0.6, "ns")
    else:
        row("H call plus1(41)", "per call", "cppyy", None)
    # cffi releases the GIL around a call as proteus does by default; cppyy keeps it, as
    # release_gil=False does (the pair costs ~45 ns here).
    keep_gil = mem.get_function("plus1", restype=proteus.i32, argtypes=[proteus.i32], release_gil=False)
    keep_gil_ns = per_call_ns(keep_gil, 41)
    row("H call plus1(41)", "per call", "proteus Function, release_gil=False", keep_gil_ns, "cffi API mode", api_ns,
        0.9, "ns")
    if cppyy:
        row("H call plus1(41)", "per call", "proteus Function, release_gil=False", keep_gil_ns, "cppyy",
            per_call_ns(cppyy.gbl.hot_plus1, 41), 0.6, "ns")

    # one array argument
    arr = np.ones(8)
    first = proteus.compile('extern "C" double first(const double* p) { return p[0]; }')
    first = first.get_function("first", proteus.f64, [proteus.const_ptr])
    assert first(arr) == 1.0
    proteus_arr = per_call_ns(first, arr)
    from_buffer = (stmt_ns("lib.first(ffi.from_buffer('double[]', a))", lib=api.lib, ffi=api.ffi, a=arr)
                   if api else None)
    row("H first(ndarray)", "per call", "proteus Function", proteus_arr, "cffi API from_buffer", from_buffer, 0.35, "ns")
    if cppyy:
        cppyy.cppdef('extern "C" double hot_first(const double* p) { return p[0]; }')
        row("H first(ndarray)", "per call", "proteus Function", proteus_arr, "cppyy",
            per_call_ns(cppyy.gbl.hot_first, arr), unit="ns")

    # specialised hit
    fs = mem.get_function("plus1", restype=proteus.i32, argtypes=[proteus.i32], specialize=[0])
    fs(41)  # compiles the variant: what follows are hits
    row("H call plus1(41)", "per call", "proteus specialize=[0], variant hit", per_call_ns(fs, 41), "proteus Function",
        plain_ns, 1.2, "ns")

    # warm in-process compiles (+ the first call), a new source each time
    def proteus_new(src, name, restype, argtypes, arg):
        def run():
            n = unique(name)
            proteus.compile(src.replace(name, n)).get_function(n, restype, argtypes)(arg)
        return run

    def cppyy_new(src, name, arg):
        def run():
            n = unique("c" + name)
            cppyy.cppdef(src.replace(name, n))
            getattr(cppyy.gbl, n)(arg)
        return run

    for label, src, name, restype, argtypes, arg, target, number in [
        ("H warm compile plus1", PLUS1, "plus1", proteus.i32, [proteus.i32], 41, 0.5, 20),
        ("H warm compile cmath+vector (PCH)", W3, "norm", proteus.f64, [proteus.i32], 8, 0.9, 5),
    ]:
        run = proteus_new(src, name, restype, argtypes, arg)
        run()  # warm: the PCH is built, the compiler initialised
        ours = best(run, number)
        theirs = None
        if cppyy:
            peer = cppyy_new(src, name, arg)
            peer()
            theirs = best(peer, number)
        row(label, "compile + first call", "proteus", ours, "cppyy cppdef", theirs, target)

    def thousand_proteus():
        p = unique("f") + "_"
        proteus.compile(many_functions(1000, p)).get_function(p + "999", proteus.i32, [proteus.i32])(1)

    def thousand_cppyy():
        p = unique("g") + "_"
        cppyy.cppdef(many_functions(1000, p))
        getattr(cppyy.gbl, p + "999")(1)

    row("H 1,000 functions", "compile + first call", "proteus", best(thousand_proteus, 1), "cppyy cppdef",
        best(thousand_cppyy, 1) if cppyy else None, 0.7)

    # memory per live module (fresh processes)
    row("H memory per live module", "RSS growth / module", "proteus", memory_per_module(PROTEUS_MODULE),
        "llvmlite MCJIT", attempt(memory_per_module, LLVMLITE_MODULE), 1.0, "KiB")


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

    hot_paths(mem, f, plain_ns)

    row("-", "import time", "`import proteus`", import_proteus(), target=5)

    machine = (f"proteus {proteus.__version__} ({proteus.active_backend_variant}, LLVM "
               f"{proteus.backend_info()['llvm_version']}), Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    if "--json" in sys.argv[1:]:
        print(json.dumps({"machine": machine, "repeats": REPEATS, "rows": rows}, indent=1))
    else:
        print(f"{machine}; fresh-process figures are medians of {REPEATS}, in-process ones the best of {REPEATS}\n")
        print("| workload | metric | system | value | anchor | ratio | target |")
        print("|---|---|---|---|---|---|---|")
        print("\n".join(markdown(entry) for entry in rows))
    shutil.rmtree(TMP, ignore_errors=True)


if __name__ == "__main__":
    main()
