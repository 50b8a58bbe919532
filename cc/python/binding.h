// What the Python module's files share (ARCHITECTURE 4): the Module and Type objects, argument
// checks, and the kernel half. module.cc: compile() and module init; function.cc: proteus.Function
// and argument conversion; kernel.cc: proteus.Kernel; arguments.cc: argtypes/specialize checks.
#pragma once

#include <pybind11/pybind11.h>

#include <memory>
#include <string>
#include <vector>

#include "proteus/engine.h"

namespace proteus_py {
namespace py = pybind11;

// proteus.i32, proteus.ptr, ...: a scalar kind code (see proteus::call_thunk) and its name; typed
// pointers (proteus.ptr[proteus.f64], proteus.const_ptr[...]) also say what they point to.
struct Type {
  char code;
  std::string name;
  char pointee = 0;            // as proteus::CType::pointee; 0: not said
  bool pointee_const = false;  // const_ptr: a read-only buffer will do
};

// proteus.Module: the compiled code and the target it was compiled for.
struct Module {
  std::shared_ptr<proteus::CompiledModule> code;
  std::string target;
};

inline bool is_gpu(const std::string& target) { return target == "cuda" || target == "hip"; }

// arguments.cc: argtypes as a list of Types (TypeError naming what else was given); specialize as
// sorted scalar argument indices ([] when PROTEUS_SPECIALIZE_ARGS is off; ValueError naming a bad index).
py::list checked_argtypes(py::handle argtypes);
std::vector<unsigned> checked_specialize(py::handle specialize, const std::string& codes, const char* ptr_type);

// arguments.cc: the letter a typed pointer to this scalar kind checks elements against (0: none).
char element_letter(char code);

// kernel.cc: Module.get_kernel, and the proteus.Kernel type.
py::object get_kernel(py::object self, const std::string& name, py::object argtypes, py::object specialize);
void add_kernel_type(py::module_& m);

// cache_levels.cc: the engine makes the cache chain's MPI and HTTP levels through Python
// (proteus._cache_levels); cache_info()'s "levels".
void install_cache_levels();
py::list cache_levels_info();

}  // namespace proteus_py
