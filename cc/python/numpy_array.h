// NumPy arrays without the buffer protocol: an exact numpy.ndarray is read from its object, as
// NumPy's own inline accessors (PyArray_DATA, PyArray_FLAGS, PyArray_DESCR) read it. Exporting a
// buffer builds a format string, shape and strides per call; this is a few loads. The fields used
// sit at the same offsets in NumPy 1.x and 2.x (NumPy's ABI promise for its public struct prefix).
// No NumPy headers and no NumPy import are needed: the type is recognised by name when first met.
#pragma once

#include <Python.h>

#include <cstring>

namespace proteus_py {

struct NumpyArray {
  void* data;
  bool c_contiguous;
  bool writeable;
  char kind;       // dtype.kind: 'f', 'i', 'u', 'b', ... ('c' complex, 'O' object, ...)
  char type;       // dtype.char: 'd', 'f', 'l', '?', ...
  char byteorder;  // '=', '|', '<' or '>'
  int ndim;
  const Py_ssize_t* shape;
};

namespace numpy_layout {
struct Array {  // the leading fields of NumPy's PyArrayObject_fields
  PyObject_HEAD
  char* data;
  int nd;
  Py_ssize_t* dimensions;
  Py_ssize_t* strides;
  PyObject* base;
  PyObject* descr;
  int flags;
};
struct Descr {  // the leading fields of NumPy's PyArray_Descr
  PyObject_HEAD
  PyTypeObject* typeobj;
  char kind;
  char type;
  char byteorder;
};
constexpr int kCContiguous = 0x0001;  // NPY_ARRAY_C_CONTIGUOUS
constexpr int kWriteable = 0x0400;    // NPY_ARRAY_WRITEABLE
}  // namespace numpy_layout

// True, and *out filled, if `obj` is exactly a numpy.ndarray (a subclass takes the general path).
inline bool numpy_array(PyObject* obj, NumpyArray* out) {
  static PyTypeObject* ndarray = nullptr;  // set when the first one is met; kept for the process
  PyTypeObject* type = Py_TYPE(obj);
  if (type != ndarray) {
    if (ndarray || std::strcmp(type->tp_name, "numpy.ndarray") != 0 ||
        type->tp_basicsize < static_cast<Py_ssize_t>(sizeof(numpy_layout::Array)))
      return false;
    ndarray = reinterpret_cast<PyTypeObject*>(Py_NewRef(reinterpret_cast<PyObject*>(type)));
  }
  const auto* array = reinterpret_cast<const numpy_layout::Array*>(obj);
  const auto* descr = reinterpret_cast<const numpy_layout::Descr*>(array->descr);
  *out = {array->data, (array->flags & numpy_layout::kCContiguous) != 0,
          (array->flags & numpy_layout::kWriteable) != 0, descr->kind, descr->type, descr->byteorder,
          array->nd, array->dimensions};
  return true;
}

}  // namespace proteus_py
