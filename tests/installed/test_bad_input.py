"""Bad input never kills the process: >= 200 broken C++ sources and IR texts, each a Python
exception (or, for input that is valid but defines nothing, a clean lookup error)."""

import os
import random
import resource
import subprocess
import sys

import pytest

import proteus

SYNTAX = [
    "int f( { }", "int f() { return }", "extern \"C\" int f() { return 1 }", "class { ;", "}}}}", "{{{{",
    "int x = ;", "template <typename T> struct S { T t; ", "#if 1\nint x;", "#endif", "#include",
    "#define F(x) x(\nF(", "int main() { for(;;) }", "auto f() -> ;", "namespace { int a", "struct S : {};",
    "int f(int x) { return x +* 2; }", "using namespace;", "enum E { A = };", "static_assert(false, \"boom\");",
    "int f() { goto nowhere; }", "int a[-1];", "void f() { int x = \"string\"; }", "typedef int;",
    "operator+", "int f() { return sizeof(void); }", "char c = 'ab", "const char* s = \"unterminated;",
    "/* unterminated comment", "int f() { return 1; } int f() { return 2; }",
]
UNDEFINED = [
    'extern "C" int missing_%d(); extern "C" int f() { return missing_%d(); }' % (i, i) for i in range(20)
] + [
    'extern int missing_var_%d; extern "C" int g() { return missing_var_%d; }' % (i, i) for i in range(10)
]
TEMPLATES = [
    "template <int N> struct F { static const int v = F<N + 1>::v; }; int x = F<0>::v;",
    "template <int N> struct R { typedef typename R<N - 1>::t t; }; R<100000>::t y;",
    "template <class T> struct A { A<A<T>> a; }; A<int> z;",
    "template <typename... T> struct P {}; template <typename T> using Q = P<T, T, T, T>; Q<Q<Q<Q<Q<Q<Q<int>>>>>>> *q; void f(){ q->x; }",
    "constexpr int f(int n) { return n ? f(n - 1) + 1 : 0; } static_assert(f(1000000) > 0);",
    "constexpr long f() { long s = 0; for (long i = 0; i < (1L << 40); ++i) s += i; return s; } static_assert(f());",
] + ["template <int N> struct T%d { static const int v = T%d<N - 1>::v; }; int y%d = T%d<5>::v;" % (i, i, i, i)
     for i in range(10)]
INCLUDES = ['#include "missing_%d.h"' % i for i in range(10)] + ["#include <no_such_header_%d>" % i for i in range(10)]
IR_BAD = [
    "define i32 @f( {", "define i32 @f() { ret }", "define void @f() { %x = add i32 1 }", "garbage",
    "define i32 @f() {\n  ret i64 0\n}", "declare", "@g = global", "define i32 @f(i32 %x) { %y = add i32 %x, %z\n ret i32 %y }",
    "define void @f() {\nentry:\n  br label %nowhere\n}", "target triple = \"nvptx64-nvidia-cuda\"\ndefine void @f() { ret void }",
    "define i32 @f() {\n  %a = call i32 @undefined_fn()\n  ret i32 %a\n}\ndeclare i32 @undefined_fn()",
] + ["define i32 @f%d() { ret i32 %%bad%d }" % (i, i) for i in range(20)]


def garbage(n, seed):
    rng = random.Random(seed)
    return bytes(rng.randrange(256) for _ in range(n))


def corpus():
    items = [("cpp", s) for s in SYNTAX + UNDEFINED + TEMPLATES + INCLUDES]
    items += [("cpp", "")] + [("cpp", " \n\t")]
    items += [("cpp", garbage(64 + 37 * i, i)) for i in range(40)]
    items += [("llvmir", s) for s in IR_BAD]
    items += [("llvmir", garbage(100 + 11 * i, 1000 + i)) for i in range(30)]
    items += [("llvmir", b"BC\xc0\xde" + garbage(200, 7))]  # bitcode magic, then garbage
    items += [("cpp", "int x%d = ;\n" % i * 3) for i in range(20)]
    return items


def outcome(frontend, source):
    """Either compile raises, or the module defines no usable 'f'. Never anything else."""
    try:
        m = proteus.compile(source, frontend=frontend)
    except (proteus.CompileError, ValueError) as exc:
        return type(exc).__name__
    with pytest.raises(RuntimeError):
        m.get_function("f", proteus.i32, [])
    return "compiled"


def test_corpus_size():
    assert len(corpus()) >= 200


@pytest.mark.parametrize("index", range(len(corpus())))
def test_corpus_entry(index):
    frontend, source = corpus()[index]
    assert outcome(frontend, source) in ("CompileError", "ValueError", "compiled")


def test_ten_megabyte_source():
    source = ("int f_%d(int x) { return x + %d; }\n" * 1) * 0
    line = "// " + "x" * 97 + "\n"
    source = line * (10 * 1024 * 1024 // len(line)) + "int broken( {"
    with pytest.raises(proteus.CompileError):
        proteus.compile(source)


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_memory_does_not_grow_without_bound():
    bad = ["int f( {", '#include "nope.h"', 'extern "C" int u(); extern "C" int f() { return u(); }']
    for i in range(30):  # warm up allocators and caches
        for src in bad:
            outcome("cpp", src + "\n// %d" % i)
    start = rss_mb()
    for i in range(30, 180):
        for src in bad:
            outcome("cpp", src + "\n// %d" % i)
    grown = rss_mb() - start
    assert grown < 64, f"RSS grew by {grown:.1f} MB over 450 failing compiles"


def test_an_include_of_a_fifo_is_an_error_not_a_hang(tmp_path):
    """#include of a FIFO (or any non-regular file) used to block the compile forever."""
    fifo = tmp_path / "pipe.h"
    os.mkfifo(fifo)
    src = '#include "%s"\nextern "C" int f() { return 1; }\n' % fifo
    code = ("import proteus\ntry:\n    proteus.compile(%r)\n"
            "except proteus.CompileError as e:\n    print('CompileError:', e)" % src)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, PROTEUS_CACHE_DIR=str(tmp_path / "cache")))
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("CompileError:") and "pipe.h" in res.stdout, res.stdout
    assert "not a regular file" in res.stdout
