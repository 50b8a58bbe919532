// Checks of the argtypes and specialize arguments that get_function and get_kernel share.
#include <algorithm>

#include "binding.h"

namespace proteus_py {

py::list checked_argtypes(py::handle argtypes) {
  if (py::isinstance<py::str>(argtypes) || !py::isinstance<py::sequence>(argtypes))
    throw py::type_error("argtypes must be a list of proteus types (e.g. [proteus.i32, proteus.ptr])");
  py::list out;
  for (py::handle t : argtypes) {
    if (!py::isinstance<Type>(t))
      throw py::type_error("argtypes must be a list of proteus types (e.g. [proteus.i32, proteus.ptr]), got " +
                           py::repr(t).cast<std::string>());
    out.append(t);
  }
  return out;
}

std::vector<unsigned> checked_specialize(py::handle specialize, const std::string& codes, const char* ptr_type) {
  std::vector<unsigned> out;
  if (specialize.is_none()) return out;
  if (py::isinstance<py::str>(specialize) || !py::isinstance<py::sequence>(specialize))
    throw py::type_error("specialize must be a list of argument indices");
  for (py::handle item : specialize) {
    if (!py::isinstance<py::int_>(item)) throw py::type_error("specialize must be a list of argument indices");
    long index = item.cast<long>();
    if (index < 0 || index >= static_cast<long>(codes.size()))
      throw py::value_error("specialize index " + std::to_string(index) + " is out of range for " +
                            std::to_string(codes.size()) + " arguments");
    if (codes[index] == 'p')
      throw py::value_error("cannot specialize argument " + std::to_string(index) + ": it is a pointer (" + ptr_type +
                            "); only scalar arguments can be specialized");
    if (std::find(out.begin(), out.end(), static_cast<unsigned>(index)) == out.end()) out.push_back(index);
  }
  if (!out.empty() && !proteus::flag_setting("PROTEUS_SPECIALIZE_ARGS")) out.clear();
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace proteus_py
