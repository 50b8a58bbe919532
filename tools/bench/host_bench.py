"""Host backend benchmark: one table of ratios, all measured in this run (not a test).

usage: python tools/bench/host_bench.py      (with proteus-python + the host backend installed,
                                              clang-22 on PATH for the anchors)

Anchors: `clang++-22 -O3 -shared` + ctypes.CDLL (compile-and-load path), ctypes and a C builtin
(call overhead), the same saxpy built AOT with `clang++-22 -O3 -march=native`, and NumPy.
Machines here are noisy: compare the ratios, not the absolute times.
"""

import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import timeit

import numpy as np

import proteus

CLANG = shutil.which("clang++-22") or shutil.which("clang++")
PLUS1 = 'extern "C" int plus1(int x) { return x + 1; }\n'
HEADERS = ('#include <cmath>\n#include <vector>\n'
           'extern "C" double norm(int n) { std::vector<double> v(n, 2.0); double s = 0;'
           ' for (double x : v) s += x * x; return std::sqrt(s); }\n')
SAXPY = ('extern "C" void saxpy(int n, float a, const float* x, float* y)'
         ' { for (int i = 0; i < n; ++i) y[i] = a * x[i] + y[i]; }\n')
REPEATS = 5


def fresh_process(code: str) -> float:
    """Seconds reported by `code` (which prints one float) in a new interpreter; median of REPEATS."""
    times = []
    for _ in range(REPEATS):
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        times.append(float(res.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def proteus_cold(src: str) -> float:
    code = ("import time, proteus\nproteus.i32\nt = time.perf_counter()\n"
            f"proteus.compile({src!r})\nprint(time.perf_counter() - t)")
    return fresh_process(code)


def clang_cold(src: str) -> float:
    code = f"""
import ctypes, subprocess, tempfile, time, os
d = tempfile.mkdtemp()
t = time.perf_counter()
open(os.path.join(d, 'k.cpp'), 'w').write({src!r})
subprocess.run([{CLANG!r}, '-x', 'c++', '-O3', '-shared', '-fPIC', os.path.join(d, 'k.cpp'), '-o', os.path.join(d, 'k.so')], check=True)
ctypes.CDLL(os.path.join(d, 'k.so'))
print(time.perf_counter() - t)
"""
    return fresh_process(code)


def import_time() -> float:
    return fresh_process("import time\nt = time.perf_counter()\nimport proteus\nprint(time.perf_counter() - t)")


def per_call_ns(fn, *args, number=1_000_000) -> float:
    stmt = "fn(" + ", ".join(f"a{i}" for i in range(len(args))) + ")"
    env = {"fn": fn, **{f"a{i}": a for i, a in enumerate(args)}}
    return min(timeit.repeat(stmt, globals=env, number=number, repeat=5)) / number * 1e9


def aot_library(src: str, name: str):
    d = tempfile.mkdtemp()
    cpp, so = os.path.join(d, name + ".cpp"), os.path.join(d, name + ".so")
    with open(cpp, "w") as f:
        f.write(src)
    subprocess.run([CLANG, "-x", "c++", "-O3", "-march=native", "-shared", "-fPIC", cpp, "-o", so], check=True)
    return ctypes.CDLL(so)


def best_seconds(fn, number=20) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number


def main() -> None:
    if not CLANG:
        sys.exit("host_bench: clang++-22 is not on PATH (needed for the anchors)")
    rows = []

    def row(what, ours, anchor, anchor_name, target=None, unit="ms", scale=1e3):
        ratio = ours / anchor
        verdict = "" if target is None else (" met" if ratio <= target else " NOT met")
        t = "" if target is None else f"<= {target}"
        rows.append(f"| {what} | {ours * scale:.3g} {unit} | {anchor_name}: {anchor * scale:.3g} {unit} | "
                    f"{ratio:.3f} | {t}{verdict} |")

    row("W1 cold compile `int plus1(int)`, fresh process", proteus_cold(PLUS1), clang_cold(PLUS1),
        "clang++-22 -O3 -shared + CDLL", 0.15)
    row("W3 cold compile `<cmath>`+`<vector>`, fresh process", proteus_cold(HEADERS), clang_cold(HEADERS),
        "clang++-22 -O3 -shared + CDLL")

    f = proteus.compile(PLUS1).get_function("plus1", restype=proteus.i32, argtypes=[proteus.i32])
    lib = aot_library(PLUS1, "plus1")
    cfn = lib.plus1
    cfn.restype, cfn.argtypes = ctypes.c_int, [ctypes.c_int]
    ours_ns, ctypes_ns, builtin_ns = per_call_ns(f, 41), per_call_ns(cfn, 41), per_call_ns(abs, -41)
    row("call overhead `plus1(41)`", ours_ns, ctypes_ns, "ctypes", 0.12, "ns", 1)
    row("call overhead `plus1(41)`", ours_ns, builtin_ns, "C builtin abs()", None, "ns", 1)

    n = 1_000_000
    x = np.random.default_rng(0).random(n, dtype=np.float32)
    y = np.ones(n, dtype=np.float32)
    jit = proteus.compile(SAXPY).get_function("saxpy", None, [proteus.i32, proteus.f32, proteus.ptr, proteus.ptr])
    aot = aot_library(SAXPY, "saxpy").saxpy
    aot.restype, aot.argtypes = None, [ctypes.c_int, ctypes.c_float, ctypes.c_void_p, ctypes.c_void_p]
    xp, yp = x.ctypes.data, y.ctypes.data
    t_jit = best_seconds(lambda: jit(n, 2.0, x, y))
    t_aot = best_seconds(lambda: aot(n, 2.0, xp, yp))
    t_np = best_seconds(lambda: np.add(np.multiply(x, np.float32(2.0)), y, out=y))
    # time ratio <= 1/0.95 is "throughput >= 0.95x AOT"
    row("W2 saxpy 1e6 floats (time)", t_jit, t_aot, "AOT clang++-22 -O3 -march=native", round(1 / 0.95, 3))
    row("W2 saxpy 1e6 floats (time)", t_jit, t_np, "NumPy a*x+y")
    rows.append(f"| `import proteus` | {import_time() * 1e3:.3g} ms | | | |")

    print(f"proteus {proteus.__version__}, {proteus.active_backend_variant}, LLVM {proteus.backend_info()['llvm_version']}, "
          f"Python {sys.version.split()[0]}; median of {REPEATS} fresh processes / best of 5 repeats\n")
    print("| measurement | proteus | anchor | ratio (proteus / anchor) | target |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
