// The Function object: a CPython type with vectorcall, so a call costs a few conversions and an
// indirect call through a JIT-compiled thunk (no ctypes, no per-call lookups).
#pragma once

#include <Python.h>

#include <memory>
#include <string>
#include <vector>

#include "proteus/engine.h"

namespace proteus_py {

// Scalar kind codes, as in proteus::call_thunk signatures.
struct ScalarType {
  char code;         // b i l I L f d p
  const char* name;  // "i32"
};

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
};

// Registers proteus.Function in `module`; returns false with a Python error set.
bool add_function_type(PyObject* module);
// A new reference to a Function, or nullptr with a Python error set.
PyObject* make_function(const FunctionSpec& spec);

// Host pointer argument -> address. False with TypeError set if the object is not a pointer source.
bool host_pointer(PyObject* obj, uint64_t* out);

}  // namespace proteus_py
