// What get_function and get_kernel share: checks of argtypes and specialize, and the types a call
// takes from the source's declaration (ARCHITECTURE 4, "Signatures").
#include <algorithm>

#include "binding.h"
#include "function.h"

namespace proteus_py {

const ScalarType kScalars[8] = {{'b', "i8"},  {'i', "i32"}, {'l', "i64"}, {'I', "u32"},
                                {'L', "u64"}, {'f', "f32"}, {'d', "f64"}, {'p', "ptr"}};

namespace {

// What get_function can call, for the message that refuses a signature.
constexpr const char* kCallable =
    "proteus calls functions with a void or scalar result (bool, char, int, long, long long, unsigned, unsigned "
    "long, float, double, enums) and scalar or pointer arguments; structs by value, references, member "
    "functions, variadic functions, short, unsigned char and long double values are not supported (MLIR: index, "
    "i8, i32, i64, f32, f64, !llvm.ptr and memrefs of identity layout, which take arrays)";

py::object type_object(char code) {
  if (code == 'v') return py::none();
  if (code == 'm') code = 'p';  // an MLIR memref: given as a pointer argument, passed as its descriptor
  for (const ScalarType& s : kScalars)
    if (s.code == code) return py::cast(Type{code, s.name});
  throw std::logic_error("no proteus type for a declared kind");
}

std::string type_text(py::handle type) { return type.is_none() ? "None" : py::repr(type).cast<std::string>(); }

// Integers of one size are interchangeable (ctypes-style argtypes often ignore signedness).
char same_size(char code) { return code == 'I' ? 'i' : code == 'L' ? 'l' : code == 'm' ? 'p' : code; }

}  // namespace

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
    if (codes[index] == 'p' || codes[index] == 'm')
      throw py::value_error("cannot specialize argument " + std::to_string(index) + ": it is a pointer (" + ptr_type +
                            "); only scalar arguments can be specialized");
    if (std::find(out.begin(), out.end(), static_cast<unsigned>(index)) == out.end()) out.push_back(index);
  }
  if (!out.empty() && !proteus::flag_setting("PROTEUS_SPECIALIZE_ARGS")) out.clear();
  std::sort(out.begin(), out.end());
  return out;
}

char element_letter(char code) {
  switch (code) {
    case 'b': return 'b';
    case 'i': return 'i';
    case 'l': return 'q';
    case 'I': return 'I';
    case 'L': return 'Q';
    case 'f': return 'f';
    case 'd': return 'd';
  }
  return 0;
}

CallTypes call_types(const proteus::FunctionSignature* declared, const std::string& name, py::object restype,
                     py::object argtypes, const std::string& where) {
  bool restype_declared = restype.is(py::ellipsis()), argtypes_declared = argtypes.is(py::ellipsis());
  if (declared) {
    if (!declared->problem.empty())
      throw py::type_error(where + "'" + name + "' cannot be called: " + declared->problem + "; " + kCallable);
    if (!declared->result.code)
      throw py::type_error(where + "its result type '" + declared->result.spelling + "' is not supported; " + kCallable);
    for (size_t i = 0; i < declared->params.size(); ++i)
      if (!declared->params[i].code)
        throw py::type_error(where + "argument " + std::to_string(i) + " has type '" + declared->params[i].spelling +
                             "', which is not supported; " + kCallable);
  } else if (restype_declared || argtypes_declared) {
    throw py::type_error(where + "the source's declaration of '" + name +
                         "' is not known here (it is not defined in the source itself); give the argument types");
  }
  CallTypes out;
  out.restype = restype_declared ? type_object(declared->result.code) : restype;
  if (argtypes_declared) {
    for (const proteus::CType& param : declared->params) out.argtypes.append(type_object(param.code));
  } else {
    out.argtypes = checked_argtypes(argtypes);
  }
  for (py::handle t : out.argtypes) out.codes += t.cast<Type&>().code;
  char ret = out.restype.is_none() ? 'v' : out.restype.cast<Type&>().code;
  if (declared) {
    if (same_size(ret) != same_size(declared->result.code))
      throw py::type_error(where + "the source declares the result '" + declared->result.spelling +
                           "', but restype is " + type_text(out.restype));
    if (out.codes.size() != declared->params.size())
      throw py::type_error(where + "the source declares " + std::to_string(declared->params.size()) +
                           " arguments, but argtypes give " + std::to_string(out.codes.size()));
    for (size_t i = 0; i < out.codes.size(); ++i)
      if (same_size(out.codes[i]) != same_size(declared->params[i].code))
        throw py::type_error(where + "argument " + std::to_string(i) + " is '" + declared->params[i].spelling +
                             "' in the source, but argtypes give " + type_text(out.argtypes[i]));
  }
  for (size_t i = 0; i < out.codes.size(); ++i) {
    if (out.codes[i] != 'p') continue;
    const Type& given = out.argtypes[i].cast<Type&>();
    PointerCheck check;
    if (declared && declared->params[i].code == 'm') {  // MLIR has no const: the memory may be written
      const proteus::CType& param = declared->params[i];
      if (given.pointee && given.pointee != param.pointee)
        throw py::type_error(where + "argument " + std::to_string(i) + " is '" + param.spelling +
                             "' in the source, but argtypes give " + type_text(out.argtypes[i]));
      out.codes[i] = 'm';
      check = {param.pointee, true, param.spelling, true, param.memref_shape};
    } else if (declared && declared->params[i].pointee) {
      const proteus::CType& param = declared->params[i];
      if (given.pointee && given.pointee != param.pointee && param.pointee != 'v' && param.pointee != '*')
        throw py::type_error(where + "argument " + std::to_string(i) + " is '" + param.spelling +
                             "' in the source, but argtypes give " + type_text(out.argtypes[i]));
      check = {param.pointee, !param.pointee_const, param.spelling};
    } else if (given.pointee) {
      check = {given.pointee, !given.pointee_const, "proteus." + given.name};
    }
    out.checks.resize(out.codes.size());
    out.checks[i] = check;
  }
  if (declared) {
    out.signature = declared->result.spelling + " " + name + "(";
    for (size_t i = 0; i < declared->params.size(); ++i) out.signature += (i ? ", " : "") + declared->params[i].spelling;
    out.signature += ")";
  }
  return out;
}

}  // namespace proteus_py
