"""Runtime specialization: get_function(..., specialize=[i, ...]) (ARCHITECTURE 4)."""

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import proteus

SRC = r'''
extern "C" void batched_matmul(const float* a, const float* b, float* c, int batch, int n) {
  for (int p = 0; p < batch; ++p) {
    const float* A = a + p * n * n; const float* B = b + p * n * n; float* C = c + p * n * n;
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) { float s = 0; for (int k = 0; k < n; ++k) s += A[i*n+k] * B[k*n+j]; C[i*n+j] = s; }
  }
}
int total = 0;
extern "C" int accumulate(int x, int scale) { total += x * scale; return total; }
static int hidden_calls = 0;
extern "C" int counted(int x) { return x + ++hidden_calls; }
extern "C" double affine(double x, double a, float b, long c) { return a * x + b + c; }
'''
ARGS = [proteus.ptr, proteus.ptr, proteus.ptr, proteus.i32, proteus.i32]


@pytest.fixture(scope="module")
def mod():
    return proteus.compile(SRC)


def test_results_identical_to_generic(mod):
    gen = mod.get_function("batched_matmul", None, ARGS)
    spec = mod.get_function("batched_matmul", None, ARGS, specialize=[4])
    assert spec.specialize == [4] and spec.variants == 0
    assert repr(spec).endswith("specialize=[4]>")
    rng = np.random.default_rng(1)
    for n in (2, 3, 5):
        a, b = rng.random((7, n, n), dtype=np.float32), rng.random((7, n, n), dtype=np.float32)
        c1, c2 = np.zeros_like(a), np.zeros_like(a)
        gen(a, b, c1, 7, n)
        spec(a, b, c2, 7, n)
        assert np.array_equal(c1, c2)
    assert spec.variants == 3  # one per distinct n
    spec(a, b, c2, 7, 5)
    assert spec.variants == 3


def test_float_and_several_arguments(mod):
    gen = mod.get_function("affine", proteus.f64, [proteus.f64, proteus.f64, proteus.f32, proteus.i64])
    spec = mod.get_function("affine", proteus.f64, [proteus.f64, proteus.f64, proteus.f32, proteus.i64],
                            specialize=[1, 2, 3])
    for args in [(1.5, 2.0, 0.25, 3), (-2.0, 0.5, -1.5, -7), (1.5, 2.0, 0.25, 3)]:
        assert spec(*args) == gen(*args)
    assert spec.variants == 2


def test_variants_share_the_modules_globals(mod):
    spec = mod.get_function("accumulate", proteus.i32, [proteus.i32, proteus.i32], specialize=[1])
    gen = mod.get_function("accumulate", proteus.i32, [proteus.i32, proteus.i32])
    start = gen(0, 1)
    assert spec(1, 10) == start + 10
    assert gen(1, 1) == start + 11
    assert spec(2, 3) == start + 17


def test_internal_state_falls_back_to_generic_with_a_warning(mod):
    spec = mod.get_function("counted", proteus.i32, [proteus.i32], specialize=[0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, second = spec(10), spec(10)
    assert second == first + 1  # the one generic counter, not a copy
    assert any("cannot specialise 'counted'" in str(w.message) for w in caught)


def test_validation(mod):
    with pytest.raises(ValueError, match="cannot specialize argument 0: it is a pointer"):
        mod.get_function("batched_matmul", None, ARGS, specialize=[0])
    with pytest.raises(ValueError, match="specialize index 9 is out of range for 5 arguments"):
        mod.get_function("batched_matmul", None, ARGS, specialize=[9])
    with pytest.raises(TypeError, match="specialize must be a list of argument indices"):
        mod.get_function("batched_matmul", None, ARGS, specialize="4")


def run_child(code, **env):
    """`code` in a fresh interpreter with `env` added: its output (it must succeed)."""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ, **env))
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_variant_count_is_bounded():
    code = ("import proteus\n"
            "m = proteus.compile('extern \"C\" int f(int x) { return x * 2; }')\n"
            "f = m.get_function('f', proteus.i32, [proteus.i32], specialize=[0])\n"
            "assert all(f(i) == 2 * i for i in range(40))\n"
            "print(f.variants)")
    assert run_child(code, PROTEUS_SPECIALIZE_MAX_VARIANTS="8", PROTEUS_USE_STORED_CACHE="0").strip() == "8"


def test_a_variant_in_flight_outlives_its_eviction():
    # One thread runs variant k=1 for a while (the GIL released) while the main thread makes more
    # variants than the bound of 1: k=1 stays (one over the bound) until its call returns.
    code = ("import threading, proteus\n"
            "m = proteus.compile('extern \"C\" long spin(long k, long n) '\n"
            "                    '{ volatile long s = 0; for (long i = 0; i < n; ++i) s += k; return s; }')\n"
            "f = m.get_function('spin', proteus.i64, [proteus.i64, proteus.i64], specialize=[0])\n"
            "out = {}\n"
            "t = threading.Thread(target=lambda: out.setdefault('r', f(1, 3_000_000_000)))\n"
            "t.start()\n"
            "while f.variants == 0: pass  # k=1 is compiled: its call is starting\n"
            "assert all(f(k, 10) == 10 * k for k in range(2, 5))\n"
            "during = f.variants\n"
            "t.join()\n"
            "assert f(5, 10) == 50\n"
            "print(out['r'], during, f.variants)")
    result, during, after = run_child(code, PROTEUS_SPECIALIZE_MAX_VARIANTS="1", PROTEUS_USE_STORED_CACHE="0").split()
    assert (result, during, after) == ("3000000000", "2", "1")


def test_specialization_can_be_turned_off():
    code = ("import proteus\n"
            "m = proteus.compile('extern \"C\" int f(int x) { return x * 2; }')\n"
            "f = m.get_function('f', proteus.i32, [proteus.i32], specialize=[0])\n"
            "print(f(4), f.specialize, f.variants)")
    assert run_child(code, PROTEUS_SPECIALIZE_ARGS="0").split() == ["8", "[]", "0"]


def test_variants_come_from_the_persistent_cache(tmp_path):
    code = ("import proteus\n"
            "m = proteus.compile('extern \"C\" int f(int x, int k) { int s = 0; for (int i = 0; i < k; ++i) s += x; return s; }')\n"
            "f = m.get_function('f', proteus.i32, [proteus.i32, proteus.i32], specialize=[1])\n"
            "r = f(3, 5)\n"
            "i = proteus.backend_info()\n"
            "print(r, i['frontend_runs'], i['internal_runs'])")
    first, second = (run_child(code, PROTEUS_CACHE_DIR=str(tmp_path)) for _ in range(2))
    assert first.split() == ["15", "1", "2"]  # the module; the call thunk and the variant
    assert second.split() == ["15", "0", "0"]


@pytest.mark.parametrize("source, name", [
    ('extern "C" long fib(long n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); }', "fib"),
    ('typedef long (*op)(long); extern "C" long self_ref(long n) { volatile op me = self_ref; '
     'return n <= 0 ? 0 : 1 + me(n - 1); }', "self_ref"),
])
def test_recursion_keeps_its_meaning(source, name):
    """A variant of a recursive function would send the recursive calls into itself with the folded
    value (fib never returned): such functions keep calling the generic code, with a warning."""
    fn = proteus.compile(source).get_function(name, proteus.i64, [proteus.i64], specialize=[0])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = [fn(n) for n in (10, 20, 10)]
    expected = {"fib": [55, 6765, 55], "self_ref": [10, 20, 10]}[name]
    assert results == expected
    assert any(f"cannot specialise '{name}'" in str(w.message) and "calls itself" in str(w.message) for w in caught)
