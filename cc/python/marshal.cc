// Python values <-> the 8-byte argument slots of a call or a launch, and the checks on pointer
// arguments (docs/ARCHITECTURE.md 4, "Checked pointers"): what a Function and a Kernel share.
#include "marshal.h"

#include <cstdlib>
#include <cstring>

#include "numpy_array.h"

namespace proteus_py {
namespace {

// 0: absent, 1: found (*out set), -1: error. PyObject_GetOptionalAttr is 3.13+.
int optional_attr(PyObject* obj, PyObject* name, PyObject** out) {
#if PY_VERSION_HEX >= 0x030D0000
  return PyObject_GetOptionalAttr(obj, name, out);
#else
  return _PyObject_LookupAttr(obj, name, out);
#endif
}

// ctypes classes, imported the first time a ctypes object is passed (never on the call path otherwise).
PyObject* ctypes_data_classes = nullptr;     // tuple: any ctypes instance (its memory is the buffer)
PyObject* ctypes_pointer_classes = nullptr;  // tuple: instances whose value is an address
PyObject* str_data_ptr = nullptr;
PyObject* str_array_interface = nullptr;       // host memory
PyObject* str_cuda_array_interface = nullptr;  // device memory (CuPy, Numba, PyTorch)
PyObject* str_data = nullptr;

void intern_attribute_names() {
  if (str_data_ptr) return;
  str_data_ptr = PyUnicode_InternFromString("data_ptr");
  str_array_interface = PyUnicode_InternFromString("__array_interface__");
  str_cuda_array_interface = PyUnicode_InternFromString("__cuda_array_interface__");
  str_data = PyUnicode_InternFromString("data");
}

bool load_ctypes() {
  if (ctypes_data_classes) return true;
  PyObject* ctypes = PyImport_ImportModule("ctypes");
  if (!ctypes) return false;
  auto get = [&](const char* n) { return PyObject_GetAttrString(ctypes, n); };
  ctypes_pointer_classes = Py_BuildValue("(NNNN)", get("_Pointer"), get("c_void_p"), get("c_char_p"), get("c_wchar_p"));
  ctypes_data_classes = Py_BuildValue("(NNNNN)", get("_Pointer"), get("_SimpleCData"), get("Array"), get("Structure"),
                                      get("Union"));
  Py_DECREF(ctypes);
  return ctypes_pointer_classes && ctypes_data_classes;
}

bool from_int_object(PyObject* value, uint64_t* out) {
  unsigned long long u = PyLong_AsUnsignedLongLong(value);
  if (u == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
    PyErr_Clear();
    long long s = PyLong_AsLongLong(value);
    if (s == -1 && PyErr_Occurred()) return false;
    u = static_cast<unsigned long long>(s);
  }
  *out = u;
  return true;
}

bool pointer_type_error(Memory memory) {
  PyErr_SetString(PyExc_TypeError,
                  memory == Memory::host
                      ? "pointer argument must be an int, None, data_ptr() object, __array_interface__ object, "
                        "buffer or ctypes object"
                      : "pointer argument must be an int, None, data_ptr() object, or __cuda_array_interface__ object");
  return false;
}

template <typename T>
bool fits(long long v, long long lo, long long hi, Py_ssize_t index, const char* type) {
  if (v < lo || v > hi) {
    PyErr_Format(PyExc_OverflowError, "argument %zd (%lld) does not fit in proteus.%s", index, v, type);
    return false;
  }
  return true;
}

}  // namespace

bool convert_scalar(char code, PyObject* obj, uint64_t* slot, Py_ssize_t index) {
  switch (code) {
    case 'b': case 'i': case 'l': {
      long long v = PyLong_AsLongLong(obj);
      if (v == -1 && PyErr_Occurred()) return false;
      if (code == 'b' && !fits<int8_t>(v, INT8_MIN, INT8_MAX, index, "i8")) return false;
      if (code == 'i' && !fits<int32_t>(v, INT32_MIN, INT32_MAX, index, "i32")) return false;
      *slot = static_cast<uint64_t>(v);
      return true;
    }
    case 'I': case 'L': {
      unsigned long long v = PyLong_AsUnsignedLongLong(obj);
      if (v == static_cast<unsigned long long>(-1) && PyErr_Occurred()) {
        if (!PyLong_Check(obj) && PyErr_ExceptionMatches(PyExc_TypeError)) {  // __index__ objects (NumPy ints)
          PyErr_Clear();
          PyObject* as_int = PyNumber_Index(obj);
          if (!as_int) return false;
          v = PyLong_AsUnsignedLongLong(as_int);
          Py_DECREF(as_int);
          if (v == static_cast<unsigned long long>(-1) && PyErr_Occurred()) return false;
        } else {
          return false;
        }
      }
      if (code == 'I' && v > UINT32_MAX) {
        PyErr_Format(PyExc_OverflowError, "argument %zd (%llu) does not fit in proteus.u32", index, v);
        return false;
      }
      *slot = v;
      return true;
    }
    case 'f': {
      double d = PyFloat_AsDouble(obj);
      if (d == -1.0 && PyErr_Occurred()) return false;
      float f = static_cast<float>(d);
      *slot = 0;
      std::memcpy(slot, &f, sizeof f);
      return true;
    }
    case 'd': {
      double d = PyFloat_AsDouble(obj);
      if (d == -1.0 && PyErr_Occurred()) return false;
      std::memcpy(slot, &d, sizeof d);
      return true;
    }
  }
  PyErr_SetString(PyExc_SystemError, "proteus: unknown argument kind");
  return false;
}

bool convert(char code, PyObject* obj, uint64_t* slot, Py_ssize_t index, HeldBuffers* held) {
  return code == 'p' ? pointer_argument(obj, Memory::host, slot, held) : convert_scalar(code, obj, slot, index);
}

PyObject* box(char code, uint64_t raw) {
  switch (code) {
    case 'v': Py_RETURN_NONE;
    case 'b': return PyLong_FromLong(static_cast<int8_t>(raw));
    case 'i': return PyLong_FromLong(static_cast<int32_t>(raw));
    case 'l': return PyLong_FromLongLong(static_cast<int64_t>(raw));
    case 'I': return PyLong_FromUnsignedLong(static_cast<uint32_t>(raw));
    case 'L': case 'p': return PyLong_FromUnsignedLongLong(raw);
    case 'f': {
      float f;
      std::memcpy(&f, &raw, sizeof f);
      return PyFloat_FromDouble(f);
    }
    case 'd': {
      double d;
      std::memcpy(&d, &raw, sizeof d);
      return PyFloat_FromDouble(d);
    }
  }
  PyErr_SetString(PyExc_SystemError, "proteus: unknown result kind");
  return nullptr;
}

HeldBuffers::~HeldBuffers() {
  for (size_t i = 0; i < inline_kept_; ++i) PyBuffer_Release(&inline_[i]);
  for (size_t i = 0; i < more_kept_; ++i) PyBuffer_Release(&(*more_)[i]);
  for (size_t i = 0; i < objects_held_; ++i) Py_DECREF(objects_[i]);
  for (PyObject* obj : more_objects_) Py_DECREF(obj);
}

void HeldBuffers::hold(PyObject* obj) {
  Py_INCREF(obj);
  if (objects_held_ < 4)
    objects_[objects_held_++] = obj;
  else
    more_objects_.push_back(obj);
}

Py_buffer* HeldBuffers::slot() {
  if (inline_kept_ < 2) return &inline_[inline_kept_];
  if (!more_) more_ = std::make_unique<std::deque<Py_buffer>>();
  if (more_->size() == more_kept_) more_->emplace_back();
  return &(*more_)[more_kept_];
}

void HeldBuffers::keep() { ++(inline_kept_ < 2 ? inline_kept_ : more_kept_); }

bool pointer_argument(PyObject* obj, Memory memory, uint64_t* out, HeldBuffers* held) {
  if (PyLong_Check(obj)) return from_int_object(obj, out);
  if (obj == Py_None) {
    *out = 0;
    return true;
  }
  NumpyArray array;
  if (memory == Memory::host && held && numpy_array(obj, &array)) {
    *out = reinterpret_cast<uintptr_t>(array.data);
    held->hold(obj);
    return true;
  }
  intern_attribute_names();
  PyObject* method = nullptr;
  if (optional_attr(obj, str_data_ptr, &method) < 0) return false;
  if (method) {
    PyObject* value = PyObject_CallNoArgs(method);
    Py_DECREF(method);
    if (!value) return false;
    bool ok = PyLong_Check(value) ? from_int_object(value, out) : pointer_type_error(memory);
    Py_DECREF(value);
    return ok;
  }
  PyObject* iface = nullptr;
  PyObject* interface_name = memory == Memory::host ? str_array_interface : str_cuda_array_interface;
  if (optional_attr(obj, interface_name, &iface) < 0) return false;
  if (iface) {  // {"data": (address, read_only), ...}; a null address may be None in the CUDA one
    PyObject* data = PyDict_Check(iface) ? PyDict_GetItemWithError(iface, str_data) : nullptr;  // borrowed
    PyObject* address = data && PyTuple_Check(data) && PyTuple_GET_SIZE(data) >= 1 ? PyTuple_GET_ITEM(data, 0) : nullptr;
    bool ok = address && address == Py_None ? (*out = 0, true)
              : address && PyLong_Check(address) ? from_int_object(address, out)
                                                 : false;
    if (!ok && !PyErr_Occurred())
      PyErr_Format(PyExc_TypeError, "pointer argument's %U has no 'data': (address, read_only) tuple", interface_name);
    Py_DECREF(iface);
    return ok;
  }
  if (memory == Memory::host && PyObject_CheckBuffer(obj)) {  // host memory only: never passed to a GPU
    if (!load_ctypes()) return false;
    Py_buffer local;
    Py_buffer* view = held ? held->slot() : &local;
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) != 0) {
      PyErr_Clear();
      if (PyObject_GetBuffer(obj, view, PyBUF_FULL_RO) != 0) return false;
    }
    uint64_t address = reinterpret_cast<uintptr_t>(view->buf);
    if (held)
      held->keep();
    else
      PyBuffer_Release(view);
    int is_pointer = PyObject_IsInstance(obj, ctypes_pointer_classes);
    if (is_pointer < 0) return false;
    // c_void_p / c_char_p / POINTER(T) instances hold an address; their buffer is where it is stored.
    if (is_pointer) std::memcpy(&address, reinterpret_cast<void*>(address), sizeof(void*));
    *out = address;
    return true;
  }
  return pointer_type_error(memory);
}

namespace {

// An element type, as struct-module format letters and NumPy's typestr kinds name it.
struct Element {
  char kind;  // 'i' signed, 'u' unsigned, 'f' float, 'b' bool; 0 unknown
  int size;
};

Element element_of_format(char letter, Py_ssize_t itemsize) {
  switch (letter) {
    case 'b': case 'h': case 'i': case 'l': case 'q': case 'n': return {'i', static_cast<int>(itemsize)};
    case 'c': case 'B': case 'H': case 'I': case 'L': case 'Q': case 'N': return {'u', static_cast<int>(itemsize)};
    case 'e': case 'f': case 'd': return {'f', static_cast<int>(itemsize)};
    case '?': return {'b', 1};
  }
  return {0, 0};
}

// The NumPy name of an element, for messages: "float64".
std::string element_name(Element e) {
  if (e.kind == 'b') return "bool";
  if (e.kind == 0) return "an unknown element type";
  return std::string(e.kind == 'i' ? "int" : e.kind == 'u' ? "uint" : "float") + std::to_string(8 * e.size);
}

// The element one of our format letters stands for (sizes as on x86-64 and AArch64 Linux).
Element wanted_element(char letter) {
  int size = std::strchr("?bB", letter) ? 1 : std::strchr("hH", letter) ? 2 : std::strchr("iIf", letter) ? 4 : 8;
  return element_of_format(letter, size);
}

bool element_matches(char wanted_letter, Element got) {
  if (wanted_letter == 'v' || wanted_letter == '*') return true;
  Element wanted = wanted_element(wanted_letter);
  // char, signed char and unsigned char pointers take any one-byte elements (bytes, uint8 images).
  if (wanted.size == 1 && wanted.kind != 'b') return got.size == 1;
  return wanted.kind == got.kind && wanted.size == got.size;
}

bool argument_error(PyObject* type, const PointerCheck& check, Py_ssize_t index, const std::string& problem) {
  PyErr_Format(type, "argument %zd ('%s') %s", index, check.spelling.c_str(), problem.c_str());
  return false;
}

bool check_element(const PointerCheck& check, Py_ssize_t index, Element got, const char* what) {
  if (element_matches(check.element, got)) return true;
  return argument_error(PyExc_TypeError, check, index,
                        "needs " + element_name(wanted_element(check.element)) + " elements; got " + what + " of " +
                            element_name(got) + " (convert it, e.g. numpy.asarray(a, dtype=...))");
}

bool read_only_error(PyObject* obj, const PointerCheck& check, Py_ssize_t index) {
  return argument_error(PyExc_TypeError, check, index,
                        "is written through, but the " + std::string(Py_TYPE(obj)->tp_name) +
                            " passed is read-only (pass a writable copy, or declare the pointee const)");
}

bool strided_error(const PointerCheck& check, Py_ssize_t index) {
  return argument_error(PyExc_ValueError, check, index,
                        "needs C-contiguous memory; got a strided view (pass numpy.ascontiguousarray(a))");
}

// A NumPy dtype's element (byte order: native or little-endian only; sizes as on LP64 Linux).
Element element_of_numpy(const NumpyArray& a) {
  if (a.byteorder == '>' || !std::strchr("iufb", a.kind)) return {0, 0};
  int size = std::strchr("?bB", a.type) ? 1 : std::strchr("hHe", a.type) ? 2 : std::strchr("iIf", a.type) ? 4
             : a.type == 'g' ? 16 : 8;
  return element_of_format(a.type, size);
}

// An exact NumPy array: checked_buffer's checks, read from the array's own fields.
bool checked_numpy_array(PyObject* obj, const NumpyArray& a, const PointerCheck& check, Py_ssize_t index,
                         uint64_t* out, HeldBuffers* held, ArrayShape* shape) {
  if (check.writable && !a.writeable) return read_only_error(obj, check, index);
  if (!a.c_contiguous) return strided_error(check, index);
  if (!check_element(check, index, element_of_numpy(a), "a buffer")) return false;
  *out = reinterpret_cast<uintptr_t>(a.data);
  held->hold(obj);
  if (shape) *shape = {true, std::vector<Py_ssize_t>(a.shape, a.shape + a.ndim)};
  return true;
}

// A buffer's format string -> its element (byte order: native or little-endian only).
Element element_of_buffer(const Py_buffer& view) {
  const char* format = view.format ? view.format : "B";
  if (*format == '@' || *format == '=' || *format == '<') ++format;
  if (format[0] == 0 || format[1] != 0) return {0, 0};  // big-endian, structured or compound
  return element_of_format(format[0], view.itemsize);
}

// True if `obj` is a ctypes pointer object (its buffer holds an address): loads ctypes if needed.
int is_ctypes_pointer(PyObject* obj) {
  if (!load_ctypes()) return -1;
  return PyObject_IsInstance(obj, ctypes_pointer_classes);
}

bool checked_buffer(PyObject* obj, const PointerCheck& check, Py_ssize_t index, uint64_t* out, HeldBuffers* held,
                    ArrayShape* shape) {
  Py_buffer local;
  Py_buffer* view = held ? held->slot() : &local;
  int flags = PyBUF_STRIDES | PyBUF_FORMAT | (check.writable ? PyBUF_WRITABLE : 0);
  if (PyObject_GetBuffer(obj, view, flags) != 0) {
    if (!check.writable) return false;
    PyErr_Clear();  // read-only (BufferError, or NumPy's ValueError)? ask again without PyBUF_WRITABLE
    if (PyObject_GetBuffer(obj, view, PyBUF_STRIDES | PyBUF_FORMAT) != 0) return false;
    PyBuffer_Release(view);
    return read_only_error(obj, check, index);
  }
  bool ok = true;
  if (!PyBuffer_IsContiguous(view, 'C'))
    ok = strided_error(check, index);
  else
    ok = check_element(check, index, element_of_buffer(*view), "a buffer");
  *out = reinterpret_cast<uintptr_t>(view->buf);
  if (ok && shape)  // PyBUF_STRIDES asks for the shape too (none for a 0-d view)
    *shape = {true, view->ndim ? std::vector<Py_ssize_t>(view->shape, view->shape + view->ndim) : std::vector<Py_ssize_t>()};
  if (ok && held)
    held->keep();
  else
    PyBuffer_Release(view);
  return ok;
}

// An __array_interface__ or __cuda_array_interface__ dict (`name`): typestr, shape, strides, and
// data = (address, read_only); a CUDA address may be None (no memory: nothing to check).
bool checked_array_interface(PyObject* iface, PyObject* name, const PointerCheck& check, Py_ssize_t index,
                             uint64_t* out, ArrayShape* shape) {
  PyObject* data = PyDict_Check(iface) ? PyDict_GetItemString(iface, "data") : nullptr;
  PyObject* typestr = PyDict_Check(iface) ? PyDict_GetItemString(iface, "typestr") : nullptr;
  PyObject* dims = PyDict_Check(iface) ? PyDict_GetItemString(iface, "shape") : nullptr;  // borrowed
  if (!data || !PyTuple_Check(data) || PyTuple_GET_SIZE(data) < 2 ||
      !(PyLong_Check(PyTuple_GET_ITEM(data, 0)) || PyTuple_GET_ITEM(data, 0) == Py_None)) {
    PyErr_Format(PyExc_TypeError, "argument %zd: %U has no 'data': (address, read_only) tuple", index, name);
    return false;
  }
  if (shape && dims && PyTuple_Check(dims)) {  // a tuple of sizes, else no shape is known
    std::vector<Py_ssize_t> sizes;
    bool sized = true;
    for (Py_ssize_t d = 0; sized && d < PyTuple_GET_SIZE(dims); ++d) {
      sizes.push_back(PyLong_AsSsize_t(PyTuple_GET_ITEM(dims, d)));
      sized = sizes.back() >= 0;
    }
    if (sized)
      *shape = {true, std::move(sizes)};
    else
      PyErr_Clear();  // a size that is not a whole number: as if there were no shape
  }
  if (PyTuple_GET_ITEM(data, 0) == Py_None) {
    *out = 0;
    return true;
  }
  if (!typestr || !PyUnicode_Check(typestr)) {
    PyErr_Format(PyExc_TypeError, "argument %zd: %U has no 'typestr' (e.g. '<f8')", index, name);
    return false;
  }
  if (check.writable && PyObject_IsTrue(PyTuple_GET_ITEM(data, 1)))
    return argument_error(PyExc_TypeError, check, index,
                          "is written through, but the array passed is read-only (pass a writable copy, or declare "
                          "the pointee const)");
  const char* text = PyUnicode_AsUTF8(typestr);
  if (!text) return false;
  Element got{0, 0};
  if ((text[0] == '<' || text[0] == '|' || text[0] == '=') && text[1] && text[2])
    got = {text[1] == 'i' ? 'i' : text[1] == 'u' ? 'u' : text[1] == 'f' ? 'f' : text[1] == 'b' ? 'b' : char(0),
           std::atoi(text + 2)};
  PyObject* strides = PyDict_GetItemString(iface, "strides");  // None or absent: C-contiguous
  if (strides && strides != Py_None) {
    Py_ssize_t expected = got.size;
    bool contiguous = dims && PyTuple_Check(dims) && PyTuple_Check(strides) &&
                      PyTuple_GET_SIZE(dims) == PyTuple_GET_SIZE(strides);
    for (Py_ssize_t d = contiguous ? PyTuple_GET_SIZE(dims) - 1 : -1; d >= 0; --d) {
      Py_ssize_t extent = PyLong_AsSsize_t(PyTuple_GET_ITEM(dims, d));
      if (extent > 1 && PyLong_AsSsize_t(PyTuple_GET_ITEM(strides, d)) != expected) contiguous = false;
      expected *= extent;
    }
    if (PyErr_Occurred()) return false;
    if (!contiguous) return strided_error(check, index);
  }
  if (!check_element(check, index, got, "an array")) return false;
  return from_int_object(PyTuple_GET_ITEM(data, 0), out);
}

}  // namespace

bool checked_pointer_argument(PyObject* obj, Memory memory, const PointerCheck& check, Py_ssize_t index,
                              uint64_t* out, HeldBuffers* held, ArrayShape* shape) {
  if (PyLong_Check(obj) || obj == Py_None) return pointer_argument(obj, memory, out, held);  // addresses
  NumpyArray array;
  if (memory == Memory::host && held && numpy_array(obj, &array))
    return checked_numpy_array(obj, array, check, index, out, held, shape);
  if (memory == Memory::host && PyObject_CheckBuffer(obj)) {
    int pointer = is_ctypes_pointer(obj);
    if (pointer < 0) return false;
    if (pointer) return pointer_argument(obj, Memory::host, out, held);  // c_void_p, POINTER(T): an address
    return checked_buffer(obj, check, index, out, held, shape);
  }
  intern_attribute_names();
  PyObject* name = memory == Memory::host ? str_array_interface : str_cuda_array_interface;
  PyObject* iface = nullptr;
  if (optional_attr(obj, name, &iface) < 0) return false;
  if (iface) {
    bool ok = checked_array_interface(iface, name, check, index, out, shape);
    Py_DECREF(iface);
    return ok;
  }
  return pointer_argument(obj, memory, out, held);  // data_ptr() objects, or the usual TypeError
}

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string text = "(";
  for (size_t d = 0; d < shape.size(); ++d)
    text += (d ? ", " : "") + (shape[d] < 0 ? std::string("any") : std::to_string(shape[d]));
  return text + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace

SlotLayout slot_layout(const std::string& codes, const std::vector<PointerCheck>& checks) {
  SlotLayout layout;
  for (size_t i = 0; i < codes.size(); ++i) {
    layout.first.push_back(static_cast<unsigned>(layout.kinds.size()));
    layout.kinds += codes[i] != 'm' ? std::string(1, codes[i]) : "pp" + std::string(checks[i].slots() - 2, 'l');
  }
  return layout;
}

bool memref_argument(PyObject* obj, Memory memory, const PointerCheck& check, Py_ssize_t index, uint64_t* slots,
                     HeldBuffers* held) {
  if (PyLong_Check(obj) || obj == Py_None)  // an address says nothing of the shape
    return argument_error(PyExc_TypeError, check, index,
                          std::string("takes an array (its shape fills the memref); got ") + Py_TYPE(obj)->tp_name);
  uint64_t address = 0;
  ArrayShape array;
  if (!checked_pointer_argument(obj, memory, check, index, &address, held, &array)) return false;
  if (!array.known)  // an address (a ctypes pointer, a data_ptr() object): no shape to fill the memref
    return argument_error(PyExc_TypeError, check, index,
                          std::string("takes an array with a shape; got ") + Py_TYPE(obj)->tp_name);
  const std::vector<Py_ssize_t>& shape = array.dims;
  size_t rank = check.memref_shape.size();
  bool fits = shape.size() == rank;
  for (size_t d = 0; fits && d < rank; ++d) fits = check.memref_shape[d] < 0 || check.memref_shape[d] == shape[d];
  if (!fits) {
    std::vector<int64_t> got(shape.begin(), shape.end());
    return argument_error(PyExc_ValueError, check, index,
                          "needs an array of shape " + shape_text(check.memref_shape) + "; got shape " + shape_text(got));
  }
  slots[0] = slots[1] = address;  // allocated, aligned
  slots[2] = 0;                   // offset
  uint64_t stride = 1;
  for (size_t d = rank; d-- > 0;) {
    slots[3 + d] = static_cast<uint64_t>(shape[d]);
    slots[3 + rank + d] = stride;
    stride *= static_cast<uint64_t>(shape[d]);
  }
  return true;
}

}  // namespace proteus_py
