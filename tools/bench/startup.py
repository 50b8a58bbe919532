"""Fresh process to first result of `plus1(41)`, proteus installs against llvmlite, in one run.

usage: startup.py LABEL=PYTHON [LABEL=PYTHON ...]   (each PYTHON a venv with a proteus backend;
       llvmlite, if the first one has it, is the peer: parse IR, MCJIT at -O3, call through ctypes)

Per install: a new source each process (clang and LLVM run), and the same source again (a
persistent-cache hit; the cache is warmed first), each process started from nothing. Rounds are
interleaved so machine noise hits everyone alike; medians of 15, and ratios against llvmlite.
"""

import os
import statistics
import subprocess
import sys
import tempfile
import time

ROUNDS = 15
PLUS1 = 'extern "C" int plus1(int x) { return x + 1; }'
PROTEUS = ("import os, proteus\n"
           "m = proteus.compile({source!r} + ({fresh} and ' // %s' % os.urandom(8).hex() or ''))\n"
           "assert m.get_function('plus1', proteus.i32, [proteus.i32])(41) == 42\n")
LLVMLITE = r"""
import ctypes
import llvmlite.binding as llvm
llvm.initialize_native_target(); llvm.initialize_native_asmprinter()
mod = llvm.parse_assembly('define i32 @plus1(i32 %x) {\n  %r = add i32 %x, 1\n  ret i32 %r\n}\n'); mod.verify()
tm = llvm.Target.from_default_triple().create_target_machine(opt=3)
ee = llvm.create_mcjit_compiler(mod, tm); ee.finalize_object()
assert ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int32)(ee.get_function_address("plus1"))(41) == 42
"""


def main(argv):
    installs = dict(arg.split("=", 1) for arg in argv)
    if not installs:
        sys.exit(__doc__)
    cache = tempfile.mkdtemp(prefix="proteus-startup-")
    env = dict(os.environ, PROTEUS_CACHE_DIR=cache)
    runs = {}
    first = next(iter(installs.values()))
    if subprocess.run([first, "-c", "import llvmlite"], capture_output=True).returncode == 0:
        runs["llvmlite IR -> MCJIT"] = (first, LLVMLITE)
    for label, python in installs.items():
        runs[f"{label}: new source"] = (python, PROTEUS.format(source=PLUS1, fresh=True))
        runs[f"{label}: cache hit"] = (python, PROTEUS.format(source=PLUS1, fresh=False))
        subprocess.run([python, "-c", runs[f"{label}: cache hit"][1]], check=True, env=env, cwd=cache)  # warm
    times = {name: [] for name in runs}
    for _ in range(ROUNDS):
        for name, (python, code) in runs.items():
            started = time.perf_counter()
            subprocess.run([python, "-c", code], check=True, capture_output=True, env=env, cwd=cache)
            times[name].append((time.perf_counter() - started) * 1e3)
    peer = statistics.median(times["llvmlite IR -> MCJIT"]) if "llvmlite IR -> MCJIT" in times else None
    for name, samples in times.items():
        median = statistics.median(samples)
        ratio = f"  {median / peer:.2f}x llvmlite" if peer else ""
        print(f"{name:34} {median:7.1f} ms{ratio}")


if __name__ == "__main__":
    main(sys.argv[1:])
