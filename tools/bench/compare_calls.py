"""Call overhead of `plus1(41)` through proteus, compared across installs in one run.

usage: compare_calls.py LABEL=PYTHON [LABEL=PYTHON ...]   (each PYTHON a venv with a proteus backend)

Rounds are interleaved (A B A B ...), each in a fresh process, so machine noise hits every install
alike; the table gives medians in ns and the ratio to the first install and to ctypes calling the
same compiled function (measured in the same processes). Used for before/after comparisons of a
change (e.g. the wheel of the previous commit against this one); not a test.
"""

import json
import statistics
import subprocess
import sys

ROUNDS = 9

CHILD = r"""
import ctypes, json, timeit, proteus
src = 'extern "C" int plus1(int x) { return x + 1; }'
mod = proteus.compile(src)
f = mod.get_function("plus1", restype=proteus.i32, argtypes=[proteus.i32])
c = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(mod.get_function_address("plus1"))
assert f(41) == 42 == c(41)
def ns(fn):  # as tools/bench/anchors.py measures calls: best of 5 repeats of 300k calls
    return min(timeit.repeat("fn(41)", globals={"fn": fn}, number=300_000, repeat=5)) / 300_000 * 1e9
print(json.dumps({"proteus": ns(f), "ctypes": ns(c),
                  "build": proteus.backend_info().get("build", "unknown (older wheel)")}))
"""


def main(pairs):
    installs = [p.split("=", 1) for p in pairs]
    samples = {label: {"proteus": [], "ctypes": []} for label, _ in installs}
    builds = {}
    for _ in range(ROUNDS):
        for label, python in installs:
            out = json.loads(subprocess.run([python, "-c", CHILD], check=True, capture_output=True, text=True).stdout)
            samples[label]["proteus"].append(out["proteus"])
            samples[label]["ctypes"].append(out["ctypes"])
            builds[label] = out["build"]
    first = statistics.median(samples[installs[0][0]]["proteus"])
    print(f"plus1(41) call overhead, medians of {ROUNDS} interleaved fresh processes\n")
    print("| install | engine build | proteus ns | vs first | ctypes ns (same process) | proteus / ctypes |")
    print("|---|---|---|---|---|---|")
    for label, _ in installs:
        p = statistics.median(samples[label]["proteus"])
        c = statistics.median(samples[label]["ctypes"])
        print(f"| {label} | {builds[label]} | {p:.1f} | {p / first:.2f} | {c:.1f} | {p / c:.2f} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
