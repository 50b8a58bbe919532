// Python values <-> argument slots, and the checks on pointer arguments (marshal.cc): what calls
// (function.cc) and kernel launches (kernel.cc) share.
#pragma once

#include <Python.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace proteus_py {

// What a pointer argument must point to (ARCHITECTURE 4, "Checked pointers"): from the source's
// declaration (proteus::CType) or a typed pointer (proteus.ptr[proteus.f64]).
struct PointerCheck {
  char element = 0;       // the element as a struct-module format letter; 'v' / '*': any; 0: no check at all
  bool writable = false;  // the element is not const: a read-only buffer is refused
  std::string spelling;   // for messages: "double *"
  // An MLIR memref argument (kind code 'm'): the sizes its type gives (-1: dynamic). It takes an
  // array and fills the memref descriptor's slots (memref_argument).
  bool memref = false;
  std::vector<int64_t> memref_shape;
  bool active() const { return element != 0; }
  size_t slots() const { return memref ? 3 + 2 * memref_shape.size() : 1; }
};

// The slots arguments of kinds `codes` with these checks fill: each memref ('m') takes its
// descriptor's (allocated and aligned pointer, offset, sizes, strides), any other argument one.
struct SlotLayout {
  std::string kinds;           // the thunk's (or kernel's) kind code of every slot
  std::vector<unsigned> first;  // each argument's first slot
};
SlotLayout slot_layout(const std::string& codes, const std::vector<PointerCheck>& checks);

// One scalar argument (kind code b i l I L f d) into its 8-byte slot, as calls and kernel launches
// pass it: range-checked (OverflowError naming argument `index`); false with a Python error set.
bool convert_scalar(char code, PyObject* obj, uint64_t* slot, Py_ssize_t index);

// Buffers exported for the duration of one call. While held, their owner cannot resize or free them
// (a bytearray resized by another thread raises BufferError instead of leaving the compiled code
// writing into freed memory). Released when the holder goes, with the GIL held.
class HeldBuffers {
 public:
  HeldBuffers() = default;
  HeldBuffers(const HeldBuffers&) = delete;
  HeldBuffers& operator=(const HeldBuffers&) = delete;
  ~HeldBuffers();
  // Storage for one more view (a stable address; nothing is allocated for two or fewer), held from
  // keep() on: a view that PyObject_GetBuffer did not fill is simply not kept.
  Py_buffer* slot();
  void keep();
  // A reference to an object whose memory is passed without a buffer export (an exact NumPy array,
  // cc/python/numpy_array.h): it holds off NumPy's resize, which refuses a referenced array.
  void hold(PyObject* obj);

 private:
  Py_buffer inline_[2];
  size_t inline_kept_ = 0, more_kept_ = 0;
  std::unique_ptr<std::deque<Py_buffer>> more_;
  PyObject* objects_[4];
  size_t objects_held_ = 0;
  std::vector<PyObject*> more_objects_;
};

// Where a pointer argument points: host memory (functions) or GPU memory (kernels). The two accept
// the same objects but for the array interface they read (__array_interface__ or
// __cuda_array_interface__); only host pointers take buffer-protocol and ctypes objects.
enum class Memory { host, device };
// The shape of an array a checked pointer argument was read from (none for a plain address).
struct ArrayShape {
  bool known = false;
  std::vector<Py_ssize_t> dims;
};
// A pointer argument checked against what it must point to: a buffer (host memory) or an array
// interface object (__array_interface__ / __cuda_array_interface__) must have that element type,
// be C-contiguous, and be writable unless the element is const (TypeError / ValueError naming
// argument `index`); ints, None, data_ptr() objects and ctypes pointers are addresses, passed as they are.
// With `shape`, an array's shape is reported there (an array interface must then give one).
bool checked_pointer_argument(PyObject* obj, Memory memory, const PointerCheck& check, Py_ssize_t index,
                              uint64_t* out, HeldBuffers* held, ArrayShape* shape = nullptr);
// An array for a memref argument -> its descriptor in check.slots() slots: the data address
// twice, offset 0, the shape, and C-contiguous strides in elements. The array must pass
// checked_pointer_argument's checks and have the memref's rank and static sizes (ValueError).
bool memref_argument(PyObject* obj, Memory memory, const PointerCheck& check, Py_ssize_t index, uint64_t* slots,
                     HeldBuffers* held);
// Pointer argument -> address. False with TypeError set if the object is not a pointer source.
// With `held`, a buffer-protocol object's export is kept there until the call is over.
bool pointer_argument(PyObject* obj, Memory memory, uint64_t* out, HeldBuffers* held = nullptr);

// One argument of kind `code` (a scalar code, or 'p' a host pointer) into its slot.
bool convert(char code, PyObject* obj, uint64_t* slot, Py_ssize_t index, HeldBuffers* held);

// A result slot of kind `code` ('v': None) as a new Python object, or nullptr with an error set.
PyObject* box(char code, uint64_t raw);

}  // namespace proteus_py
