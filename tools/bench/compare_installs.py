"""Call and compile costs through proteus, compared across installs in one run.

usage: compare_installs.py LABEL=PYTHON [LABEL=PYTHON ...]   (each PYTHON a venv with a proteus backend)

Rounds are interleaved (A B A B ...), each in a fresh process, so machine noise hits every install
alike. Per install, medians of: a `plus1(41)` call (ns; and ctypes calling the same compiled function
in the same process), a compile of a new small source, and a compile of a new `<cmath>`+`<vector>`
source (ms; persistent cache off, so every compile runs clang and LLVM). Used for before/after
comparisons of a change (e.g. the wheel of the previous commit against this one); not a test.
"""

import json
import os
import statistics
import subprocess
import sys

ROUNDS = 7

CHILD = r"""
import ctypes, json, statistics, time, timeit, proteus
def compile_ms(template, n, tag):
    times = []
    for i in range(n):
        started = time.perf_counter()
        proteus.compile(template % (tag, i))
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)
mod = proteus.compile('extern "C" int plus1(int x) { return x + 1; }')
f = mod.get_function("plus1", restype=proteus.i32, argtypes=[proteus.i32])
c = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(mod.get_function_address("plus1"))
assert f(41) == 42 == c(41)
def ns(fn):  # as tools/bench/anchors.py measures calls: best of 5 repeats of 300k calls
    return min(timeit.repeat("fn(41)", globals={"fn": fn}, number=300_000, repeat=5)) / 300_000 * 1e9
tag = time.time_ns()
print(json.dumps({
    "call_ns": ns(f), "ctypes_ns": ns(c),
    "small_ms": compile_ms('extern "C" int f_%d_%d(int x) { return x + 1; }', 15, tag),
    "headers_ms": compile_ms('#include <cmath>\n#include <vector>\n// %d %d\n'
                             'extern "C" double g(double x) { std::vector<double> v(3, x); return std::sqrt(v[1]); }', 5, tag),
    "build": proteus.backend_info().get("build", "unknown (older wheel)")}))
"""

COLUMNS = ["call_ns", "ctypes_ns", "small_ms", "headers_ms"]


def main(pairs):
    installs = [p.split("=", 1) for p in pairs]
    samples = {label: {k: [] for k in COLUMNS} for label, _ in installs}
    builds = {}
    env = dict(os.environ, PROTEUS_USE_STORED_CACHE="0")
    for _ in range(ROUNDS):
        for label, python in installs:
            run = subprocess.run([python, "-c", CHILD], check=True, capture_output=True, text=True, env=env)
            out = json.loads(run.stdout)
            for k in COLUMNS:
                samples[label][k].append(out[k])
            builds[label] = out["build"]
    median = {label: {k: statistics.median(v) for k, v in s.items()} for label, s in samples.items()}
    first = median[installs[0][0]]
    print(f"medians of {ROUNDS} interleaved fresh processes (persistent cache off)\n")
    print("| install | engine build | plus1 call ns | vs first | ctypes ns | small compile ms | vs first "
          "| <cmath>+<vector> compile ms | vs first |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, _ in installs:
        m = median[label]
        print(f"| {label} | {builds[label]} | {m['call_ns']:.1f} | {m['call_ns'] / first['call_ns']:.2f} "
              f"| {m['ctypes_ns']:.1f} | {m['small_ms']:.2f} | {m['small_ms'] / first['small_ms']:.2f} "
              f"| {m['headers_ms']:.1f} | {m['headers_ms'] / first['headers_ms']:.2f} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
