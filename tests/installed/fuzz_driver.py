"""A seeded, bounded fuzzer for the engine (ARCHITECTURE 7): mutated C++, LLVM IR, bitcode and MLIR,
random driver flags, and damaged cache entries and precompiled headers.

Every compile must either succeed or raise one of the documented exceptions; no input may end the
process (run this as a child: a crash shows as its exit status, and `--progress` names the input),
hang it, or make a damaged cache serve a wrong result. Prints a JSON summary.

    python fuzz_driver.py --seed 1 --cases 1000 --cache DIR [--progress FILE]
"""

import argparse
import json
import os
import random
import subprocess
import sys
import time

import proteus

ALLOWED = (proteus.CompileError, ValueError, TypeError, MemoryError, TimeoutError)
COMPILE_TIMEOUT = 5.0  # clang's parser can backtrack exponentially (A<A<A<...): such inputs time out

CPP_SEEDS = [
    'extern "C" int f(int x) { return x + 1; }',
    'template <int N> struct Fact { static const long v = N * Fact<N - 1>::v; };\n'
    'template <> struct Fact<0> { static const long v = 1; };\nextern "C" long f() { return Fact<10>::v; }',
    'constexpr int fib(int n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }\n'
    'static_assert(fib(10) == 55);\nextern "C" int f() { return fib(12); }',
    '#define SQ(x) ((x) * (x))\n#define CUBE(x) (SQ(x) * (x))\nextern "C" int f(int a) { return CUBE(a) + SQ(a); }',
    '#include <cmath>\n#include <vector>\nextern "C" double f(double x) { std::vector<double> v(4, x); '
    'double s = 0; for (double d : v) s += std::sqrt(d); return s; }',
    'struct P { int a; double b; };\nstatic P table[] = {{1, 2.0}, {3, 4.0}};\n'
    'extern "C" double f(int i) { return table[i & 1].a + table[i & 1].b; }',
    'extern "C" int f(int x) { int r; asm("leal 1(%1), %0" : "=r"(r) : "r"(x)); return r; }',
    'auto twice = [](auto g, int v) { return g(g(v)); };\nextern "C" int f(int x) { '
    'return twice([](int y) { return y * 3; }, x); }',
    'namespace n { template <typename T> T add(T a, T b) { return a + b; } }\n'
    'extern "C" float f(float x) { return n::add(x, 2.5f); }',
    '#pragma clang loop unroll(full)\nextern "C" void f(int* p, int n) { for (int i = 0; i < n; ++i) p[i] *= 2; }',
]
CPP_TOKENS = [
    "(", ")", "{", "}", "[", "]", "<", ">", ";", ",", "::", "...", "#", "##", "\\", "\n#include <vector>\n",
    "\n#define X X X\n", "template <typename T>", "constexpr ", "operator()", "asm(\"garbage !!\");",
    "__attribute__((", "[[nodiscard]]", "#pragma pack(", "\n#if 1\n", "\n#endif\n", "sizeof(", "decltype(",
    "static_assert(", "\x00", "\xff", "\u00e9", "/*", "*/", "//", "'", '"', "extern \"C\" ", "int ", "auto ",
    "f(f(f(", "new int[1ull << 60]", "throw;", "goto l;", "__builtin_trap();", "__builtin_unreachable();",
]
IR_SEEDS = [
    "define i32 @f(i32 %x) {\n  %y = add i32 %x, 1\n  ret i32 %y\n}\n",
    "@g = global [4 x i32] [i32 1, i32 2, i32 3, i32 4]\ndefine i32 @f(i64 %i) {\n"
    "  %p = getelementptr [4 x i32], ptr @g, i64 0, i64 %i\n  %v = load i32, ptr %p\n  ret i32 %v\n}\n",
    "define double @f(double %x) {\n  %y = call double @llvm.sqrt.f64(double %x)\n  ret double %y\n}\n"
    "declare double @llvm.sqrt.f64(double)\n",
    "define i32 @f(i32 %n) {\nentry:\n  br label %loop\nloop:\n  %i = phi i32 [ 0, %entry ], [ %j, %loop ]\n"
    "  %j = add i32 %i, 1\n  %c = icmp slt i32 %j, %n\n  br i1 %c, label %loop, label %done\ndone:\n  ret i32 %j\n}\n",
    'module asm ".globl marker"\nmodule asm "marker:"\ndefine i32 @f() {\n  ret i32 7\n}\n',
    "define <4 x float> @f(<4 x float> %a, <4 x float> %b) {\n  %c = fmul <4 x float> %a, %b\n"
    "  ret <4 x float> %c\n}\n",
]
IR_TOKENS = ["%", "@", "i32", "ptr", "{", "}", "(", ")", ",", "=", "\n", "ret ", "br ", "label %loop",
             "undef", "poison", "!0", "#0", "module asm \"jmp %%%\"\n", "addrspace(7)", "i1234567", "<9999 x i8>",
             "define void @g() {\n  unreachable\n}\n", "declare i32 @h(...)\n", "musttail call ", "x86_fp80"]
MLIR_SEEDS = [
    "func.func @f(%x: i32) -> i32 {\n  %c1 = arith.constant 1 : i32\n  %y = arith.addi %x, %c1 : i32\n"
    "  return %y : i32\n}\n",
    "func.func @f(%a: memref<?xf64>, %n: index) -> f64 {\n  %c0 = arith.constant 0 : index\n"
    "  %c1 = arith.constant 1 : index\n  %z = arith.constant 0.0 : f64\n"
    "  %r = scf.for %i = %c0 to %n step %c1 iter_args(%s = %z) -> f64 {\n"
    "    %v = memref.load %a[%i] : memref<?xf64>\n    %e = math.exp %v : f64\n    %t = arith.addf %s, %e : f64\n"
    "    scf.yield %t : f64\n  }\n  return %r : f64\n}\n",
    "module {\n  func.func @f(%v: vector<4xf32>) -> f32 {\n"
    "    %r = vector.reduction <add>, %v : vector<4xf32> into f32\n    return %r : f32\n  }\n}\n",
    "func.func @f(%n: i64) -> i64 {\n  %b = memref.alloca() : memref<8xi64>\n  %c3 = arith.constant 3 : index\n"
    "  memref.store %n, %b[%c3] : memref<8xi64>\n  %v = memref.load %b[%c3] : memref<8xi64>\n"
    "  cf.br ^bb1(%v : i64)\n^bb1(%w: i64):\n  return %w : i64\n}\n",
    "llvm.func @f(%x: i32) -> i32 {\n  %0 = llvm.mlir.constant(2 : i32) : i32\n  %1 = llvm.mul %x, %0 : i32\n"
    "  llvm.return %1 : i32\n}\n",
]
MLIR_TOKENS = ["%", "@", "^bb1", ":", "->", "(", ")", "{", "}", "<", ">", "[", "]", "i32", "f64", "index",
               "memref<?x?xf32>", "vector<99999999xf32>", "tensor<4xf32>", "!llvm.ptr", "#map", "affine_map<(d0) -> (d0)>",
               "\"some.op\"() : () -> ()\n", "gpu.module @g {\n}\n", "module attributes {gpu.container_module} {\n",
               "arith.constant 1 : i1\n", "scf.yield\n", "return\n", "loc(\"x\":1:1)", "dense<[1, 2]>",
               "{llvm.emit_c_interface}", "unrealized_conversion_cast", "i99999999", "memref.alloc(%n) : memref<?xf64>\n"]
FLAGS = [
    # ordinary
    "-O0", "-O1", "-O2", "-O3", "-Os", "-std=c++17", "-std=c++20", "-std=c++23", "-DX=1", "-UX", "-Wall", "-Werror",
    "-ffast-math", "-fno-exceptions", "-fno-rtti", "-g", "-w", "-I/nonexistent", "-include", "cstdio",
    # limits raised or lowered
    "-fbracket-depth=100000", "-ftemplate-depth=5", "-ftemplate-depth=100000", "-fconstexpr-depth=1",
    "-fconstexpr-steps=100", "-fmacro-backtrace-limit=0",
    # ones that change the ABI or make clang do something else: rejected or harmless
    "-m32", "--target=i686-linux-gnu", "-mabi=ms", "-Xclang", "-ast-dump", "-###", "-E", "-S", "-c", "-o",
    "/tmp/proteus-fuzz-out", "-fsyntax-only", "-ftime-report", "-fdiagnostics-format=sarif", "-save-temps",
    "-MD", "--help", "-v", "-fmodules", "-x", "c", "-include", "/dev/zero", "-I/dev/null", "-fsanitize=address",
    "-fprofile-generate", "-mllvm", "-debug-pass=Structure", "-fplugin=/nonexistent.so", "-nostdinc++",
]


def mutate(rng, text, tokens, seeds):
    data = text
    for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):  # none: the seed as it is, with random flags
        kind = rng.randrange(7)
        pos = rng.randint(0, len(data))
        if kind == 0 and data:  # replace one character
            data = data[:pos] + chr(rng.randrange(1, 256)) + data[pos + 1:]
        elif kind == 1:  # insert a token
            data = data[:pos] + rng.choice(tokens) + data[pos:]
        elif kind == 2:  # delete a span
            data = data[:pos] + data[pos + rng.randint(1, 40):]
        elif kind == 3:  # duplicate a span
            end = min(len(data), pos + rng.randint(1, 60))
            data = data[:end] + data[pos:end] + data[end:]
        elif kind == 4:  # splice another seed
            other = rng.choice(seeds)
            cut = rng.randint(0, len(other))
            data = data[:pos] + other[cut:]
        elif kind == 5:  # a nesting bomb of bounded size
            token = rng.choice(["(", "{", "[", "f(", "A<", "#if 1\n"])
            data = data[:pos] + token * rng.randint(100, 3000) + data[pos:]
        else:  # truncate
            data = data[:pos]
    return data


def bitcode_seeds():
    """Valid bitcode for the IR seeds, from llvmlite (another LLVM), whose mutations are then fed in."""
    try:
        import llvmlite.binding as llvm
    except ImportError:
        return []
    seeds = []
    for ir in IR_SEEDS:
        try:
            seeds.append(llvm.parse_assembly(ir).as_bitcode())
        except Exception:
            pass
    return seeds


def mutate_bytes(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        kind = rng.randrange(4)
        pos = rng.randrange(len(data)) if data else 0
        if kind == 0 and data:
            data[pos] ^= 1 << rng.randrange(8)
        elif kind == 1 and data:
            data[pos] = rng.randrange(256)
        elif kind == 2:
            del data[pos:pos + rng.randint(1, 64)]
        else:
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(data)


def one_case(rng, bitcode):
    roll = rng.random()
    if roll < 0.55:
        source = mutate(rng, rng.choice(CPP_SEEDS), CPP_TOKENS, CPP_SEEDS)
        flags = [rng.choice(FLAGS) for _ in range(rng.choice([0, 0, 1, 1, 2, 3]))]
        return "cpp", source, flags
    if roll < 0.7 or (roll >= 0.85 and not bitcode):
        return "llvmir", mutate(rng, rng.choice(IR_SEEDS), IR_TOKENS, IR_SEEDS), []
    if roll < 0.85:
        return "mlir", mutate(rng, rng.choice(MLIR_SEEDS), MLIR_TOKENS, MLIR_SEEDS), []
    return "llvmir", mutate_bytes(rng, rng.choice(bitcode)), []


def fuzz_inputs(args, summary):
    rng = random.Random(args.seed)
    bitcode = bitcode_seeds()
    for index in range(args.cases):
        frontend, source, flags = one_case(rng, bitcode)
        if args.progress:
            with open(args.progress, "w") as f:
                json.dump({"case": index, "frontend": frontend, "flags": flags,
                           "source": source if isinstance(source, str) else source.hex()}, f)
        started = time.monotonic()
        try:
            module = proteus.compile(source, frontend=frontend, extra_args=flags or None, timeout=COMPILE_TIMEOUT)
            module.functions  # the module is usable
            summary["compiled"] += 1
        except TimeoutError:
            summary["timeouts"].append({"case": index, "frontend": frontend, "flags": flags,
                                        "source": source[:100] if isinstance(source, str) else "bitcode"})
        except ALLOWED as e:
            summary["errors"][type(e).__name__] = summary["errors"].get(type(e).__name__, 0) + 1
        except BaseException as e:  # anything else is a finding
            summary["unexpected"].append({"case": index, "type": type(e).__name__, "message": str(e)[:300]})
        summary["slowest_s"] = max(summary["slowest_s"], round(time.monotonic() - started, 3))
        summary["inputs"] += 1


# A fresh process compiles these and checks the results: after the cache entries and precompiled
# headers it reads were damaged, every result must still be right.
CHECK = """
import json, sys, proteus
out = []
for k in range(%d):
    src = '#include <vector>\\nextern "C" int f(int x) { std::vector<int> v(3, x); return v[0] + v[2] + %%d; }' %% k
    out.append(proteus.compile(src).get_function("f", proteus.i32, [proteus.i32])(k) == 3 * k)
print(json.dumps(out))
"""


def damage_cache(args, summary):
    rng = random.Random(args.seed + 1)
    env = dict(os.environ, PROTEUS_CACHE_DIR=args.cache)
    check = CHECK % args.cache_entries

    def run_check():
        res = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, env=env, timeout=600,
                             cwd=args.cache)
        if res.returncode != 0:
            summary["crashes"].append({"phase": "damaged cache", "status": res.returncode, "stderr": res.stderr[-2000:]})
            return
        summary["wrong_results"] += json.loads(res.stdout).count(False)

    run_check()  # fills the cache (and the PCH)
    for _ in range(args.cache_rounds):
        files = [os.path.join(root, name) for root, _, names in os.walk(args.cache) for name in names
                 if name.endswith((".pobj", ".pch", ".id"))]
        for path in rng.sample(files, min(len(files), rng.randint(1, 4))):
            with open(path, "rb") as f:
                data = f.read()
            how = rng.randrange(4)
            if how == 3 and len(files) > 1:  # another entry's bytes under this name
                with open(rng.choice(files), "rb") as f:
                    data = f.read()
            elif how == 2:
                data = data[:rng.randrange(len(data) + 1)]
            else:
                data = mutate_bytes(rng, data)
            with open(path, "wb") as f:
                f.write(data)
            summary["damaged_files"] += 1
        run_check()
        summary["cache_rounds"] += 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=20261125)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--cache", required=True, help="the cache directory (made private)")
    parser.add_argument("--cache-entries", type=int, default=6)
    parser.add_argument("--cache-rounds", type=int, default=8)
    parser.add_argument("--progress", help="a file naming the input being tried (read it after a crash)")
    args = parser.parse_args()
    os.makedirs(args.cache, mode=0o700, exist_ok=True)
    os.environ["PROTEUS_CACHE_DIR"] = args.cache
    summary = {"seed": args.seed, "inputs": 0, "compiled": 0, "errors": {}, "timeouts": [], "unexpected": [],
               "slowest_s": 0.0, "damaged_files": 0, "cache_rounds": 0, "wrong_results": 0, "crashes": []}
    started = time.monotonic()
    fuzz_inputs(args, summary)
    damage_cache(args, summary)
    summary["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
