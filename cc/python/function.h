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

#include "marshal.h"
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

// Registers proteus.Function in `module`; returns false with a Python error set.
bool add_function_type(PyObject* module);
// A new reference to a Function, or nullptr with a Python error set.
PyObject* make_function(const FunctionSpec& spec);

}  // namespace proteus_py
