// The Function object: a CPython type with vectorcall, so a call costs a few conversions and an
// indirect call through a JIT-compiled thunk (no ctypes, no per-call lookups).
#pragma once

#include <Python.h>
#include <pybind11/pybind11.h>

#include <unistd.h>

#include <deque>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proteus/engine.h"
#include "variant_cache.h"

namespace proteus_py {

// True once the interpreter is shutting down (a daemon thread must not take the GIL any more).
inline bool interpreter_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#else
  return _Py_IsFinalizing();
#endif
}

// Runs `fn` with the GIL released, for work that may take long (compiles). A daemon thread that
// comes back while the interpreter shuts down must not take the GIL again: CPython would end the
// thread with pthread_exit, whose unwinding through C++ frames aborts the process. Such a thread
// waits here until the process exits (what Python 3.14 itself does for them).
template <typename Fn>
auto without_gil(Fn&& fn) -> decltype(fn()) {
  struct Reacquire {
    PyThreadState* state;
    ~Reacquire() {
      while (interpreter_finalizing()) pause();
      PyEval_RestoreThread(state);
    }
  } reacquire{PyEval_SaveThread()};
  return fn();
}

// Scalar kind codes, as in proteus::call_thunk signatures.
struct ScalarType {
  char code;         // b i l I L f d p
  const char* name;  // "i32"
};
extern const ScalarType kScalars[8];  // proteus.i8 ... proteus.ptr (arguments.cc)

// What a pointer argument must point to (ARCHITECTURE 4, "Checked pointers"): from the source's
// declaration (proteus::CType) or a typed pointer (proteus.ptr[proteus.f64]).
struct PointerCheck {
  char element = 0;       // the element as a struct-module format letter; 'v' / '*': any; 0: no check at all
  bool writable = false;  // the element is not const: a read-only buffer is refused
  std::string spelling;   // for messages: "double *"
  bool active() const { return element != 0; }
};

// What a function or kernel is called with (arguments.cc): restype/argtypes given as ... take the
// source's declaration, given ones are checked against it; pointers get their pointee's checks.
struct CallTypes {
  pybind11::object restype;          // a Type, or None
  pybind11::list argtypes;           // of Type
  std::string codes;                 // one kind code per argument
  std::vector<PointerCheck> checks;  // per argument (empty: none checked)
  std::string signature;             // as the source declares it, "" if not known
};
CallTypes call_types(const proteus::FunctionSignature* declared, const std::string& name, pybind11::object restype,
                     pybind11::object argtypes, const std::string& where);

struct FunctionSpec {
  std::string name;
  void* address;
  proteus::CallThunk thunk;
  char ret;                   // code, or 'v' for restype=None
  std::string args;           // one code per argument
  PyObject* owner;            // the Module object; kept alive by the Function
  PyObject* restype;          // the proteus.Type (or None) the user gave
  PyObject* argtypes;         // list of proteus.Type
  // Runtime specialisation: the module's code and the argument indices folded to constants.
  std::shared_ptr<proteus::CompiledModule> code;
  std::vector<unsigned> specialize;
  size_t variant_limit = 0;  // the bound of its variant cache (when specialised)
  std::vector<PointerCheck> checks;  // per argument (empty: none checked)
  std::string signature;             // as the source declares it, "" if not known
  bool release_gil = true;           // false: calls keep the GIL (short functions; opt-in)
};

// PROTEUS_SPECIALIZE_MAX_VARIANTS (the bound of a VariantCache); throws proteus::ConfigError for a bad value.
size_t variant_limit();

// One scalar argument (kind code b i l I L f d) into its 8-byte slot, as calls and kernel launches
// pass it: range-checked (OverflowError naming argument `index`); false with a Python error set.
bool convert_scalar(char code, PyObject* obj, uint64_t* slot, Py_ssize_t index);

// Registers proteus.Function in `module`; returns false with a Python error set.
bool add_function_type(PyObject* module);
// A new reference to a Function, or nullptr with a Python error set.
PyObject* make_function(const FunctionSpec& spec);

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
// A pointer argument checked against what it must point to: a buffer (host memory) or an array
// interface object (__array_interface__ / __cuda_array_interface__) must have that element type,
// be C-contiguous, and be writable unless the element is const (TypeError / ValueError naming
// argument `index`); ints, None, data_ptr() objects and ctypes pointers are addresses, passed as they are.
bool checked_pointer_argument(PyObject* obj, Memory memory, const PointerCheck& check, Py_ssize_t index,
                              uint64_t* out, HeldBuffers* held);
// Pointer argument -> address. False with TypeError set if the object is not a pointer source.
// With `held`, a buffer-protocol object's export is kept there until the call is over.
bool pointer_argument(PyObject* obj, Memory memory, uint64_t* out, HeldBuffers* held = nullptr);

}  // namespace proteus_py
