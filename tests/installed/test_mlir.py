"""frontend="mlir" on the host: MLIR lowered to LLVM IR in process, then the C++/LLVM IR path
(optimisation, JIT, cache, specialisation). memref arguments take NumPy arrays."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

import proteus

SCALAR = """
func.func @axpb(%a: f64, %x: f64, %b: f64) -> f64 {
  %p = arith.mulf %a, %x : f64
  %r = arith.addf %p, %b : f64
  return %r : f64
}
func.func @plus1(%x: i32) -> i32 {
  %c1 = arith.constant 1 : i32
  %y = arith.addi %x, %c1 : i32
  return %y : i32
}
func.func private @helper(%x: i64) -> i64 {
  return %x : i64
}
"""

# A loop over a memref filled from NumPy, math functions, and a write through a 2-D memref.
ARRAYS = """
module {
  func.func @sum_exp(%a: memref<?xf64>) -> f64 {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %n = memref.dim %a, %c0 : memref<?xf64>
    %z = arith.constant 0.0 : f64
    %r = scf.for %i = %c0 to %n step %c1 iter_args(%s = %z) -> f64 {
      %v = memref.load %a[%i] : memref<?xf64>
      %e = math.exp %v : f64
      %q = math.sqrt %e : f64
      %t = arith.addf %s, %q : f64
      scf.yield %t : f64
    }
    return %r : f64
  }
  func.func @scale(%m: memref<?x?xf32>, %k: f32) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %rows = memref.dim %m, %c0 : memref<?x?xf32>
    %cols = memref.dim %m, %c1 : memref<?x?xf32>
    scf.for %i = %c0 to %rows step %c1 {
      scf.for %j = %c0 to %cols step %c1 {
        %v = memref.load %m[%i, %j] : memref<?x?xf32>
        %w = arith.mulf %v, %k : f32
        memref.store %w, %m[%i, %j] : memref<?x?xf32>
      }
    }
    return
  }
  func.func @first4(%a: memref<4xi64>) -> i64 {
    %c0 = arith.constant 0 : index
    %pad = arith.constant 0 : i64
    %v = vector.transfer_read %a[%c0], %pad : memref<4xi64>, vector<4xi64>
    %r = vector.reduction <add>, %v : vector<4xi64> into i64
    return %r : i64
  }
}
"""


def test_has_mlir_and_scalar_functions():
    assert proteus.has_mlir is True
    m = proteus.compile(SCALAR, frontend="mlir")
    assert m.functions == ["axpb", "plus1"]  # private functions are not exported
    axpb = m.get_function("axpb", ...)
    assert axpb.signature == "f64 axpb(f64, f64, f64)"
    assert axpb(2.0, 3.0, 1.0) == 7.0
    assert m.get_function("plus1", proteus.i32, [proteus.i32])(41) == 42
    assert "define" in m.ir and m.asm


def test_memref_arguments_take_numpy_arrays():
    m = proteus.compile(ARRAYS, frontend="mlir", verify=True)
    sum_exp = m.get_function("sum_exp", ...)
    assert sum_exp.signature == "f64 sum_exp(memref<?xf64>)"
    a = np.linspace(0.0, 2.0, 17)
    assert math.isclose(sum_exp(a), float(np.sqrt(np.exp(a)).sum()), rel_tol=1e-12)
    assert sum_exp(np.zeros(0)) == 0.0
    grid = np.arange(12, dtype=np.float32).reshape(3, 4)
    m.get_function("scale", None, [proteus.ptr, proteus.f32])(grid, 0.5)
    assert grid.tolist() == (np.arange(12, dtype=np.float32).reshape(3, 4) * 0.5).tolist()
    first4 = m.get_function("first4", ...)
    assert first4(np.array([1, 2, 3, 4], dtype=np.int64)) == 10
    # The checks: element type, rank, static sizes, contiguity, writability, an array at all.
    with pytest.raises(TypeError, match=r"argument 0 \('memref<\?xf64>'\) needs float64 elements"):
        sum_exp(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError, match=r"needs an array of shape \(any,\); got shape \(2, 2\)"):
        sum_exp(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"needs an array of shape \(4,\); got shape \(3,\)"):
        first4(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="C-contiguous"):
        sum_exp(np.zeros(8)[::2])
    frozen = np.zeros(4, dtype=np.int64)
    frozen.flags.writeable = False
    with pytest.raises(TypeError, match="read-only"):
        first4(frozen)
    with pytest.raises(TypeError, match="takes an array"):
        sum_exp(12345)
    assert sum_exp(memoryview(np.ones(3))) == pytest.approx(3 * math.sqrt(math.e))  # any buffer with a shape


def test_parse_errors_unknown_ops_and_verifier_messages():
    with pytest.raises(proteus.CompileError, match=r"source\.mlir:2:\d+: error: .*") as bad:
        proteus.compile("func.func @f(%x: i32) -> i32 {\n  return %y : i32\n}\n", frontend="mlir")
    assert "cannot parse the MLIR" in str(bad.value)
    with pytest.raises(proteus.CompileError, match=r"source\.mlir:1:\d+: error: .*(unregistered|unknown)"):
        proteus.compile('"nope.op"() : () -> ()\n', frontend="mlir")
    with pytest.raises(proteus.CompileError, match="type of return operand"):
        proteus.compile("func.func @f(%x: i32) -> f32 {\n  return %x : i32\n}\n", frontend="mlir")
    with pytest.raises(proteus.CompileError, match="has a gpu.module: compile it with target='cuda' or target='hip'"):
        proteus.compile("module attributes {gpu.container_module} {\n  gpu.module @k {\n  }\n}\n", frontend="mlir")
    # The frontend's own argument checks come before any compile.
    with pytest.raises(ValueError, match="MLIR frontend does not support extra_args"):
        proteus.compile(SCALAR, frontend="mlir", extra_args=["-O3"])
    with pytest.raises(ValueError, match="MLIR frontend does not support compiler='nvcc'"):
        proteus.compile(SCALAR, frontend="mlir", compiler="nvcc")


def test_missing_symbols_and_unsupported_signatures():
    m = proteus.compile(SCALAR + """
func.func @pair(%x: i32) -> (i32, i32) {
  return %x, %x : i32, i32
}
func.func @make(%n: index) -> memref<?xf64> {
  %m = memref.alloc(%n) : memref<?xf64>
  return %m : memref<?xf64>
}
""", frontend="mlir")
    with pytest.raises(proteus.SymbolNotFoundError, match="nothere"):
        m.get_function("nothere", proteus.i32, [])
    with pytest.raises(TypeError, match="returns 2 results"):
        m.get_function("pair", ...)
    with pytest.raises(TypeError, match="returns a memref"):
        m.get_function("make", ...)
    # A call to a function the module only declares is a link error naming it.
    with pytest.raises(proteus.CompileError, match="undefined_fn"):
        proteus.compile("func.func private @undefined_fn(i32) -> i32\n"
                        "func.func @g(%x: i32) -> i32 {\n  %r = func.call @undefined_fn(%x) : (i32) -> i32\n"
                        "  return %r : i32\n}\n", frontend="mlir").get_function("g", ...)(1)


def test_cache_hits_and_specialisation(tmp_path):
    code = (
        "import proteus, numpy as np\n"
        f"m = proteus.compile({ARRAYS.split('  func.func @scale')[0] + '}' + chr(10)!r}, frontend='mlir')\n"
        "f = m.get_function('sum_exp', ...)\n"
        "print(round(f(np.zeros(4)), 9), proteus.cache_info()['misses'], proteus.cache_info()['hits'])\n")
    env = dict(os.environ, PROTEUS_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    (result, misses, hits), (again, misses_again, hits_again) = (run.stdout.split() for run in runs)
    assert result == again == "4.0"
    assert int(misses) > 0 and hits == "0"  # compiled (the function and its call thunk), stored
    assert misses_again == "0" and hits_again == misses  # the second process reads the first one's objects
    m = proteus.compile("""
func.func @power(%x: f64, %n: i32) -> f64 {
  %c0 = arith.constant 0 : i32
  %c1 = arith.constant 1 : i32
  %one = arith.constant 1.0 : f64
  %r:2 = scf.while (%i = %c0, %acc = %one) : (i32, f64) -> (i32, f64) {
    %go = arith.cmpi slt, %i, %n : i32
    scf.condition(%go) %i, %acc : i32, f64
  } do {
  ^bb0(%j: i32, %a: f64):
    %k = arith.addi %j, %c1 : i32
    %b = arith.mulf %a, %x : f64
    scf.yield %k, %b : i32, f64
  }
  return %r#1 : f64
}
""", frontend="mlir")
    power = m.get_function("power", ..., specialize=[1])
    assert power(2.0, 10) == 1024.0 and power(3.0, 3) == 27.0 and power.variants == 2


def test_specialising_an_argument_after_a_memref():
    # The memref takes five slots (pointers, offset, size, stride): the index after it is still argument 1.
    m = proteus.compile("""
func.func @head_sum(%a: memref<?xi32>, %n: index) -> i32 {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %z = arith.constant 0 : i32
  %r = scf.for %i = %c0 to %n step %c1 iter_args(%s = %z) -> i32 {
    %v = memref.load %a[%i] : memref<?xi32>
    %t = arith.addi %s, %v : i32
    scf.yield %t : i32
  }
  return %r : i32
}
""", frontend="mlir")
    head_sum = m.get_function("head_sum", ..., specialize=[1])
    a = np.arange(1, 11, dtype=np.int32)
    assert [head_sum(a, 10), head_sum(a, 3), head_sum(a, 10)] == [55, 6, 55]
    assert head_sum.variants == 2 and head_sum.specialize == [1]
    with pytest.raises(ValueError, match="cannot specialize argument 0"):
        m.get_function("head_sum", ..., specialize=[0])
