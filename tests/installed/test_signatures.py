"""Calls that cannot silently go wrong: signatures from the source, explicit types checked against
them, pointer arguments checked against their declared pointee (README "Signatures and checked
pointers")."""

import ctypes

import numpy as np
import pytest

import proteus

SOURCE = r"""
struct S { double x; };
enum Colour { red, green };
extern "C" {
double axpy(double a, const double* x, double* y, long n) {
  for (long i = 0; i < n; ++i) y[i] += a * x[i];
  return y[0];
}
int add(int a, int b) { return a + b; }
void fill(char* p, int n) { for (int i = 0; i < n; ++i) p[i] = 'Z'; }
float total(const float* v, unsigned n) { float t = 0; for (unsigned i = 0; i < n; ++i) t += v[i]; return t; }
long count_set(const bool* flags, long n) { long c = 0; for (long i = 0; i < n; ++i) c += flags[i]; return c; }
bool big(float v) { return v > 10; }
unsigned long next(unsigned long v) { return v + 1; }
int hue(Colour c) { return c == green ? 7 : 3; }
double by_value(S s) { return s.x; }
double by_reference(const S& s) { return s.x; }
short narrow(short v) { return v; }
int sum(int n, ...) { return n; }
void touch(void* p) { *static_cast<char*>(p) = 1; }
}
int mangled(int x) { return 2 * x; }
"""


@pytest.fixture(scope="module")
def module():
    return proteus.compile(SOURCE)


def test_signature_comes_from_the_source(module):
    f = module.get_function("axpy")
    assert f.signature == "double axpy(double, const double *, double *, long)"
    assert f.restype == proteus.f64
    assert f.argtypes == [proteus.f64, proteus.ptr, proteus.ptr, proteus.i64]
    x, y = np.arange(4.0), np.ones(4)
    assert f(2.0, x, y, 4) == 1.0 and list(y) == [1.0, 3.0, 5.0, 7.0]
    assert module.get_function("add")(2, 3) == 5
    assert module.get_function("big")(11.0) == 1 and module.get_function("big")(1.0) == 0
    assert module.get_function("next")(2**64 - 2) == 2**64 - 1
    assert module.get_function("hue")(1) == 7
    assert module.get_function("_Z7mangledi").signature == "int _Z7mangledi(int)"
    assert module.get_function("_Z7mangledi")(21) == 42


def test_explicit_types_keep_working_and_are_checked(module):
    add = module.get_function("add", proteus.i32, [proteus.i32, proteus.i32])
    assert add(2, 3) == 5
    assert module.get_function("add", proteus.u32, [proteus.u32, proteus.i32])(2, 3) == 5  # same size: allowed
    with pytest.raises(TypeError, match=r"the source declares the result 'int', but restype is proteus.f64"):
        module.get_function("add", proteus.f64, [proteus.i32, proteus.i32])
    with pytest.raises(TypeError, match=r"argument 0 is 'int' in the source, but argtypes give proteus.f64"):
        module.get_function("add", proteus.i32, [proteus.f64, proteus.i32])
    with pytest.raises(TypeError, match=r"the source declares 2 arguments, but argtypes give 1"):
        module.get_function("add", proteus.i32, [proteus.i32])
    with pytest.raises(TypeError, match=r"argument 1 is 'const double \*' in the source, but argtypes give "
                                        r"proteus.ptr\[proteus.f32\]"):
        module.get_function("axpy", proteus.f64, [proteus.f64, proteus.ptr[proteus.f32], proteus.ptr, proteus.i64])


@pytest.mark.parametrize("name, what", [
    ("by_value", "argument 0 has type 'S'"),
    ("by_reference", "argument 0 has type 'const S &'"),
    ("narrow", "its result type 'short' is not supported"),
    ("sum", "it is variadic"),
])
def test_unsupported_signatures_are_refused(module, name, what):
    with pytest.raises(TypeError, match="proteus calls functions with a void or scalar result") as caught:
        module.get_function(name)
    assert what in str(caught.value)
    with pytest.raises(TypeError):  # explicit types do not make them callable either
        module.get_function(name, proteus.f64, [proteus.ptr])


def test_arrays_are_checked_before_anything_is_written(module):
    f = module.get_function("axpy")
    x, y = np.arange(4.0), np.ones(4)
    with pytest.raises(TypeError, match=r"argument 1 \('const double \*'\) needs float64 elements; got a buffer of "
                                        r"float32"):
        f(2.0, x.astype(np.float32), y, 4)
    with pytest.raises(TypeError, match=r"argument 2 \('double \*'\) needs float64 elements; got a buffer of int64"):
        f(2.0, x, np.ones(4, dtype=np.int64), 4)
    with pytest.raises(ValueError, match=r"argument 2 \('double \*'\) needs C-contiguous memory"):
        f(2.0, x, np.ones(8)[::2], 4)
    read_only = np.ones(4)
    read_only.flags.writeable = False
    with pytest.raises(TypeError, match=r"argument 2 \('double \*'\) is written through, but the numpy.ndarray "
                                        r"passed is read-only"):
        f(2.0, x, read_only, 4)
    assert list(read_only) == [1.0] * 4 and list(y) == [1.0] * 4
    assert f(1.0, read_only, y, 4) == 2.0  # a const pointee takes read-only memory


def test_bytes_are_never_written_through(module):
    fill = module.get_function("fill")
    data = b"abcd"
    with pytest.raises(TypeError, match=r"argument 0 \('char \*'\) is written through, but the bytes passed is "
                                        r"read-only"):
        fill(data, 1)
    assert data == b"abcd"
    buffer = bytearray(b"abcd")
    fill(buffer, 2)
    assert buffer == bytearray(b"ZZcd")
    fill(np.zeros(4, dtype=np.uint8), 4)  # char pointers take any one-byte elements


def test_other_pointer_sources(module):
    total = module.get_function("total")
    assert total(np.array([1, 2, 3], dtype=np.float32), 3) == 6.0
    assert total((ctypes.c_float * 2)(1.5, 2.5), 2) == 4.0  # ctypes arrays: checked like buffers
    with pytest.raises(TypeError, match="needs float32 elements"):
        total((ctypes.c_double * 2)(1.5, 2.5), 2)
    assert total(np.array([1, 2], dtype=np.float32).ctypes.data, 2) == 3.0  # a bare address: passed as it is
    assert total(None, 0) == 0.0
    assert module.get_function("count_set")(np.array([True, False, True]), 3) == 2
    with pytest.raises(TypeError, match="needs bool elements"):
        module.get_function("count_set")(np.array([1, 0, 1], dtype=np.int32), 3)

    class Interface:  # an __array_interface__ object without the buffer protocol
        def __init__(self, array):
            self.array = array
            self.__array_interface__ = array.__array_interface__

    assert total(Interface(np.array([2, 3], dtype=np.float32)), 2) == 5.0
    with pytest.raises(TypeError, match="needs float32 elements; got an array of float64"):
        total(Interface(np.array([2.0, 3.0])), 2)
    with pytest.raises(ValueError, match="needs C-contiguous memory"):
        total(Interface(np.zeros(8, dtype=np.float32)[::2]), 2)
    touch = module.get_function("touch")  # void *: any element, but written through
    touch(np.zeros(2))
    with pytest.raises(TypeError, match="read-only"):
        touch(b"xy")


def test_typed_pointers_for_llvm_ir():
    ir = proteus.compile("define double @twice(ptr %p) {\n  %v = load double, ptr %p\n  %r = fmul double %v, 2.0\n"
                         "  ret double %r\n}\n", frontend="llvmir")
    twice = ir.get_function("twice")  # IR gives the function type; it says nothing of what ptr points to
    assert twice.signature == "double twice(ptr)" and twice(np.array([4.0])) == 8.0
    typed = ir.get_function("twice", proteus.f64, [proteus.const_ptr[proteus.f64]])
    assert typed(np.array([5.0])) == 10.0
    with pytest.raises(TypeError, match=r"argument 0 \('proteus.const_ptr\[proteus.f64\]'\) needs float64 elements"):
        typed(np.array([5.0], dtype=np.float32))
    writes = ir.get_function("twice", proteus.f64, [proteus.ptr[proteus.f64]])
    frozen = np.ones(1)
    frozen.flags.writeable = False
    with pytest.raises(TypeError, match="read-only"):
        writes(frozen)
    assert repr(proteus.ptr[proteus.i32]) == "proteus.ptr[proteus.i32]"
    assert proteus.ptr[proteus.f64] == proteus.ptr[proteus.f64] and proteus.ptr[proteus.f64] != proteus.ptr
    with pytest.raises(TypeError, match="only proteus.ptr and proteus.const_ptr take an element type"):
        proteus.i32[proteus.f64]
    with pytest.raises(TypeError, match="a scalar type such as proteus.f64"):
        proteus.ptr[proteus.ptr]
