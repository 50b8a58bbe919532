"""Crash containment and cancellation (ARCHITECTURE 6): what used to end or hang the process now
raises, and the engine stays usable. Inputs that could still kill the interpreter run in a child."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

import proteus

PLUS1 = 'extern "C" int plus1(int x) { return x + 1; }'
RUNAWAY = "constexpr int spin() { long i = 0; while (true) { ++i; } return 0; } constexpr int x = spin();"
RUNAWAY_FLAGS = ["-fconstexpr-steps=2147483647"]


def still_usable(tag):
    m = proteus.compile(PLUS1 + "\n// %s" % tag)
    assert m.get_function("plus1", proteus.i32, [proteus.i32])(41) == 42


def child(code, timeout=180, **env):
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         timeout=timeout, env=dict(os.environ, PROTEUS_USE_STORED_CACHE="0", **env))
    return res


@pytest.mark.parametrize("frontend,source", [
    ("cpp", 'asm("this is not an instruction !!!"); extern "C" int f() { return 1; }'),
    ("llvmir", 'module asm "bogus %%% instr"\ndefine i32 @f() {\n  ret i32 1\n}\n'),
])
def test_an_llvm_fatal_error_is_a_compile_error(frontend, source):
    """Bad module-level assembly: LLVM used to print it and exit(1) from the compile thread."""
    with pytest.raises(proteus.CompileError, match="inline asm"):
        proteus.compile(source, frontend=frontend)
    still_usable(frontend)


def test_stack_exhaustion_in_the_compiler_is_a_compile_error():
    """200,000 nested parentheses with the nesting limit raised: clang overflows its stack (SIGSEGV)."""
    source = "int x = " + "(" * 200000 + "1" + ")" * 200000 + ";"
    with pytest.raises(proteus.CompileError, match="compiler crashed"):
        proteus.compile(source, extra_args=["-fbracket-depth=1000000"])
    still_usable("stack")


def test_memory_exhaustion_is_a_memory_error():
    """Under an address-space limit a huge initialiser cannot be allocated: MemoryError, and the process goes on."""
    res = child("""
        import resource, proteus
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
        for source in ['extern "C" char big[1ull << 34] = {1};', 'char big[2000000000] = {1, 2, 3};']:
            try:
                proteus.compile(source)
                print("compiled")
            except MemoryError as e:
                print("MemoryError", "out of memory" in str(e))
        m = proteus.compile('extern "C" int plus1(int x) { return x + 1; }')
        print(m.get_function("plus1", proteus.i32, [proteus.i32])(41))
    """)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n")[:3] == ["MemoryError True", "MemoryError True", "42"], res.stdout


def test_a_timeout_cancels_a_runaway_constexpr_evaluation():
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="timeout=0.5"):
        proteus.compile(RUNAWAY, extra_args=RUNAWAY_FLAGS, timeout=0.5)
    assert time.monotonic() - started < 30  # generous: the mechanism, not the speed, is under test
    still_usable("timeout")


def test_a_compile_within_its_timeout_is_unaffected():
    m = proteus.compile(PLUS1 + "\n// within", timeout=120)
    assert m.get_function("plus1", proteus.i32, [proteus.i32])(1) == 2


@pytest.mark.parametrize("bad,error", [(0, ValueError), (-1, ValueError), (float("nan"), ValueError),
                                       (float("inf"), ValueError), ("5", TypeError), (True, TypeError)])
def test_a_bad_timeout_is_rejected(bad, error):
    with pytest.raises(error, match="timeout"):
        proteus.compile(PLUS1, timeout=bad)


def test_ctrl_c_interrupts_a_compile_promptly():
    res = child("""
        import os, signal, threading, time, proteus
        started = time.monotonic()
        threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT)).start()
        try:
            proteus.compile(%r, extra_args=%r)
            print("finished")
        except KeyboardInterrupt:
            print("KeyboardInterrupt", round(time.monotonic() - started - 1.0, 3))
        m = proteus.compile('extern "C" int plus1(int x) { return x + 1; }')
        print(m.get_function("plus1", proteus.i32, [proteus.i32])(41))
    """ % (RUNAWAY, RUNAWAY_FLAGS))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.split()
    assert lines[0] == "KeyboardInterrupt" and lines[2] == "42", res.stdout
    assert float(lines[1]) < 0.5, f"KeyboardInterrupt came {lines[1]} s after Ctrl-C"


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2, 0.5])
def test_interpreter_exit_with_compiles_in_flight(delay):
    """Daemon threads still compiling (one of them a runaway) when the interpreter exits: the process
    ends with its own exit status, without a crash or an abort."""
    res = child("""
        import sys, threading, time, proteus
        def work(source, args):
            try:
                proteus.compile(source, extra_args=args)
            except Exception:
                pass
        for i in range(3):
            src = '#include <map>\\n#include <vector>\\nextern "C" int f%%d() { std::map<int, std::vector<int>> m; return m.size(); }' %% i
            threading.Thread(target=work, args=(src, []), daemon=True).start()
        threading.Thread(target=work, args=(%r, %r), daemon=True).start()
        time.sleep(%r)
        sys.exit(3)
    """ % (RUNAWAY, RUNAWAY_FLAGS, delay), timeout=120)
    assert res.returncode == 3, (res.returncode, res.stderr)
    assert "terminate" not in res.stderr and "Fatal" not in res.stderr, res.stderr


# --- C++ exceptions escaping called functions ------------------------------------------------------

THROWING = textwrap.dedent("""
    #include <stdexcept>
    #include <string>
    struct Custom : std::exception { const char* what() const noexcept override { return "custom what"; } };
    extern "C" int checked(int x) {
        if (x < 0) throw std::invalid_argument("x must not be negative, got " + std::to_string(x));
        return x * 2;
    }
    extern "C" void custom() { throw Custom(); }
    extern "C" double not_std() { throw 42; }
""")


def test_a_cxx_exception_becomes_native_error():
    m = proteus.compile(THROWING)
    checked = m.get_function("checked", proteus.i32, [proteus.i32])
    assert checked(21) == 42
    with pytest.raises(proteus.NativeError) as caught:
        checked(-3)
    assert isinstance(caught.value, RuntimeError)
    assert caught.value.type_name == "std::invalid_argument"
    assert caught.value.what == "x must not be negative, got -3"
    assert "checked()" in str(caught.value) and "std::invalid_argument" in str(caught.value)
    with pytest.raises(proteus.NativeError) as caught:
        m.get_function("custom", None, [])()
    assert (caught.value.type_name, caught.value.what) == ("Custom", "custom what")
    with pytest.raises(proteus.NativeError) as caught:
        m.get_function("not_std", proteus.f64, [])()
    assert (caught.value.type_name, caught.value.what) == ("int", None)
    assert checked(5) == 10  # the module stays usable


def test_native_errors_a_thousand_times_with_flat_memory():
    checked = proteus.compile(THROWING + "\n// loop").get_function("checked", proteus.i32, [proteus.i32])

    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    for _ in range(200):  # warm up
        with pytest.raises(proteus.NativeError):
            checked(-1)
    start = rss_mb()
    for i in range(1000):
        with pytest.raises(proteus.NativeError):
            checked(-i - 1)
    assert rss_mb() - start < 8


def test_a_specialised_function_that_throws():
    m = proteus.compile(THROWING + "\n// specialised")
    checked = m.get_function("checked", proteus.i32, [proteus.i32], specialize=[0])
    assert checked(4) == 8
    with pytest.raises(proteus.NativeError, match="got -4"):
        checked(-4)
