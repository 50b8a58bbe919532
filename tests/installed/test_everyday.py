"""Everyday features: compiler warnings through `warnings` (README "The API")."""

import warnings

import pytest

import proteus

UNUSED = 'extern "C" int f() { int unused_%s = 1; return 2; }\n'


def test_compiler_warnings_reach_python(tmp_path, monkeypatch):
    monkeypatch.setenv("PROTEUS_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.warns(proteus.CompileWarning, match=r"source.cpp:1:26: warning: unused variable 'unused_a'"):
        m = proteus.compile(UNUSED % "a", extra_args=["-Wall"])
    assert m.get_function("f")() == 2
    assert issubclass(proteus.CompileWarning, UserWarning)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        proteus.compile(UNUSED % "f", extra_args=["-Wall"])
    assert caught[0].filename == __file__  # the line that called compile()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        proteus.compile(UNUSED % "b")  # without -Wall: nothing to say
        proteus.compile(UNUSED % "c", extra_args=["-Wall", "-w"])
    with pytest.raises(proteus.CompileError, match="unused variable 'unused_d'"):
        proteus.compile(UNUSED % "d", extra_args=["-Wall", "-Werror"])


def test_warnings_are_replayed_from_the_persistent_cache(tmp_path):
    import subprocess
    import sys

    code = ("import proteus, warnings\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            f"    proteus.compile({UNUSED % 'e'!r}, extra_args=['-Wall'])\n"
            "print(len(w), proteus.cache_info()['hits'], str(w[0].message).splitlines()[0] if w else '')\n")
    env = {"PROTEUS_CACHE_DIR": str(tmp_path / "cache")}
    import os

    env = dict(os.environ, **env)
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.split()[:2] == ["1", "0"]
    assert second.stdout.split()[:2] == ["1", "1"]  # a hit, and the same warning
    assert "unused variable 'unused_e'" in second.stdout


def test_c_frontend():
    m = proteus.compile("#include <math.h>\n#include <stdbool.h>\n"
                        "double hyp(double a, double b) { return sqrt(a * a + b * b); }\n"
                        "bool even(int v) { return v % 2 == 0; }\n"
                        "int designated(void) { struct { int a, b; } p = {.b = 2, .a = 1}; return p.a + p.b; }\n",
                        frontend="c")
    assert m.get_function("hyp").signature == "double hyp(double, double)"  # C names are not mangled
    assert m.get_function("hyp")(3.0, 4.0) == 5.0
    assert m.get_function("even")(4) == 1 and m.get_function("designated")() == 3
    with pytest.raises(proteus.CompileError, match=r"source.c:1:\d+: error"):
        proteus.compile("int f(void) { return class; }", frontend="c")  # a C++ keyword is not one in C
    assert proteus.compile("int f(void) { int class = 1; return class; }", frontend="c").get_function("f")() == 1
    with pytest.raises(ValueError, match="frontend='c' compiles for the host"):
        proteus.compile("int f(void);", frontend="c", target="cuda")
    with pytest.raises(ValueError, match=r"frontend must be 'cpp', 'llvmir', or 'mlir' \(or 'c' for C17 on the host\)"):
        proteus.compile("int f(void);", frontend="fortran")


def test_a_path_that_names_no_file_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(proteus.CompileError, match=r"no file 'kernels/saxpy.cpp' exists \(from .*\), so the string "
                                                    r"was compiled as source text:\n"):
        proteus.compile("kernels/saxpy.cpp")
    (tmp_path / "kernels").mkdir()
    (tmp_path / "kernels" / "saxpy.cpp").write_text('extern "C" int g() { return 7; }\n')
    assert proteus.compile("kernels/saxpy.cpp").get_function("g")() == 7
    with pytest.raises(proteus.CompileError) as plain:  # text that does not look like a path: the usual error
        proteus.compile("int f() { return x; }")
    assert "no file" not in str(plain.value)


def test_the_report_shows_the_engine(tmp_path):
    import os
    import subprocess
    import sys

    env = dict(os.environ, PROTEUS_CACHE_DIR=str(tmp_path / "cache"), PROTEUS_OPT_LEVEL="2")
    res = subprocess.run([sys.executable, "-m", "proteus"], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert "engine: LLVM 22." in res.stdout and "(optimized), targets host" in res.stdout
    assert "header search: " in res.stdout
    assert f"cache: {tmp_path / 'cache'}, 0 entries, 0 of 1073741824 bytes" in res.stdout
    assert "PROTEUS_OPT_LEVEL=2" in res.stdout and "PROTEUS_CACHE_MAX_BYTES=(default" in res.stdout
    data = subprocess.run([sys.executable, "-m", "proteus", "--json"], capture_output=True, text=True, env=env)
    import json

    engine = json.loads(data.stdout)["engine"]
    assert engine["cache"]["dir"] == str(tmp_path / "cache") and engine["llvm_version"].startswith("22.")
    assert {s["name"] for s in engine["settings"]} >= {"PROTEUS_OPT_LEVEL", "PROTEUS_CACHE_DIR"}


@pytest.mark.parametrize("level", ["s", "z"])
def test_size_optimisation_levels(monkeypatch, level):
    monkeypatch.setenv("PROTEUS_OPT_LEVEL", level)
    source = 'extern "C" long tri(long n) { long t = 0; for (long i = 0; i < n; ++i) t += i; return t; } // %s' % level
    m = proteus.compile(source)
    assert m.get_function("tri")(10) == 45
    attribute = "optsize" if level == "s" else "minsize"
    assert attribute in m.ir  # clang's -Os / -Oz mark the functions so
    monkeypatch.setenv("PROTEUS_OPT_LEVEL", "fast")
    with pytest.raises(proteus.ConfigError, match="PROTEUS_OPT_LEVEL=fast is not an optimisation level: use 0, 1, 2, 3, "
                                                  "s or z"):
        proteus.compile(source + " changed")


def test_counters_tell_user_compiles_from_internal_ones(tmp_path):
    import json
    import os
    import subprocess
    import sys

    code = ("import json, proteus\n"
            "m = proteus.compile('extern \"C\" int sq(int x) { return x * x; }')\n"
            "f = m.get_function('sq', specialize=[0])\n"  # a call thunk
            "f(3); f(4)\n"  # two variants
            "i = proteus.backend_info()\n"
            "print(json.dumps({k: i[k] for k in ('compiles', 'frontend_runs', 'internal_compiles', 'internal_runs')}))\n")
    env = dict(os.environ, PROTEUS_CACHE_DIR=str(tmp_path / "cache"))
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                    check=True).stdout)
    assert out == {"compiles": 1, "frontend_runs": 1, "internal_compiles": 3, "internal_runs": 3}
    again = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                      check=True).stdout)
    assert again == {"compiles": 1, "frontend_runs": 0, "internal_compiles": 3, "internal_runs": 0}  # all cached


def test_dump_llvm_ir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROTEUS_DUMP_LLVM_IR", "1")
    m = proteus.compile('extern "C" int dumped(int x) { return x + 1; }')
    (dump,) = (tmp_path / ".proteus-dump").iterdir()
    assert dump.name.startswith("source.cpp-") and dump.suffix == ".ll"
    assert "define" in dump.read_text() and "@dumped" in dump.read_text() and dump.read_text() == m.ir
    monkeypatch.setenv("PROTEUS_DUMP_LLVM_IR", "perhaps")
    with pytest.raises(proteus.ConfigError, match="PROTEUS_DUMP_LLVM_IR=perhaps"):
        proteus.compile('extern "C" int other(int x) { return x + 2; }')


def test_a_first_result_imports_nothing_it_does_not_need(tmp_path):
    # Start-up cost is mostly imports: discovery reads entry points without importlib.metadata, the
    # manifest is Python (no json), ctypes only for a GPU probe or a ctypes argument, the shim's
    # lock is _thread's (threading pulls in functools and collections).
    import os
    import subprocess
    import sys

    code = ("import sys, proteus\n"
            "m = proteus.compile('extern \"C\" int plus1(int x) { return x + 1; }')\n"
            "assert m.get_function('plus1', proteus.i32, [proteus.i32])(41) == 42\n"
            "print(sorted({'json', 'ctypes', 'importlib.metadata', 'threading'} & set(sys.modules)))\n")
    env = dict(os.environ, PROTEUS_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_release_gil_false_keeps_the_gil_during_the_call():
    import threading

    import numpy as np

    # The native function counts how far a Python thread got while it slept: that thread can only
    # move while the GIL is free.
    sleeper = proteus.compile("#include <unistd.h>\n"
                              'extern "C" long nap(const volatile long* counter, int ms) {\n'
                              "  long start = *counter; usleep(ms * 1000); return *counter - start; }\n")
    counter = np.zeros(1, dtype=np.int64)
    stop = threading.Event()

    def count():
        while not stop.is_set():
            counter[0] += 1

    worker = threading.Thread(target=count)
    worker.start()
    try:
        held = sleeper.get_function("nap", release_gil=False)
        released = sleeper.get_function("nap")
        assert held.release_gil is False and released.release_gil is True
        assert held(counter, 200) == 0  # nothing else ran
        assert released(counter, 200) > 0
    finally:
        stop.set()
        worker.join()


def test_a_cached_get_function_compiles_nothing():
    # A call thunk is made once per signature and process: later get_function calls reuse it.
    m = proteus.compile('extern "C" int twice(int x) { return 2 * x; } // cached get_function')
    assert m.get_function("twice")(4) == 8
    before = proteus.backend_info()["internal_compiles"]
    for _ in range(3):
        assert m.get_function("twice")(5) == 10
    assert proteus.backend_info()["internal_compiles"] == before


def test_driver_warnings_come_with_every_compile(tmp_path, monkeypatch):
    # The driver's work is kept between compiles with the same arguments, but only when it had
    # nothing to say: a driver warning is given by each compile that causes it.
    monkeypatch.setenv("PROTEUS_CACHE_DIR", str(tmp_path / "cache"))
    for name in "gh":
        with pytest.warns(proteus.CompileWarning, match="argument unused during compilation: '-L/nonexistent'"):
            assert proteus.compile(UNUSED % name, extra_args=["-L/nonexistent"]).get_function("f")() == 2
