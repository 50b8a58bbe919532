// The native module `_proteus` (re-exported as `proteus`): types, compile(), Module.
// The same source builds every backend; PROTEUS_HAS_CUDA / PROTEUS_HAS_HIP say which targets exist.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "binding.h"
#include "function.h"
#include "proteus/engine.h"

#ifndef PROTEUS_HAS_CUDA
#define PROTEUS_HAS_CUDA 0
#endif
#ifndef PROTEUS_HAS_HIP
#define PROTEUS_HAS_HIP 0
#endif

namespace py = pybind11;

namespace proteus_py {
namespace {

constexpr bool kHasCuda = PROTEUS_HAS_CUDA;
constexpr bool kHasHip = PROTEUS_HAS_HIP;
constexpr bool kHasMlir = true;  // every backend links the MLIR frontend (cc/mlir_frontend.cc)

// backends/facts.bzl: this backend's distribution, and those that ship the GPU targets.
const char* backend_distribution() { return PROTEUS_DISTRIBUTION; }


// A Module property: what the engine gives, as str or bytes, or None where it has nothing ("").
template <typename PyText>
py::object or_none(const std::string& value) {
  return value.empty() ? py::none() : py::object(PyText(value));
}

// proteus.CompileWarning (made at module init, kept for the process): clang's warnings, through
// Python's warnings.
PyObject* compile_warning = nullptr;

// Diagnostics quote the source, which may be any bytes: decode with replacement, never fail.
void set_error(PyObject* type, const char* what) {
  PyObject* text = PyUnicode_DecodeUTF8(what, static_cast<Py_ssize_t>(strlen(what)), "replace");
  PyErr_SetObject(type, text);
  Py_XDECREF(text);
}


std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw py::value_error("cannot read source file " + path);
  std::ostringstream data;
  data << in.rdbuf();
  return data.str();
}

bool is_regular_file(const std::string& path) {
  if (path.empty() || path.size() > 4096 || path.find('\0') != std::string::npos || path.find('\n') != std::string::npos)
    return false;
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// source: text, bytes, or a path (str naming an existing file, or os.PathLike which must exist).
std::string current_directory() {
  char buffer[4096];
  return getcwd(buffer, sizeof buffer) ? buffer : "the current directory";
}

// One line, no blanks, a source file's extension: a str the user most likely meant as a path.
bool looks_like_path(const std::string& text) {
  if (text.empty() || text.size() > 4096 || text.find_first_of(" \t\r\n") != std::string::npos) return false;
  for (const char* extension : {".cpp", ".cc", ".cxx", ".cu", ".hip", ".ll", ".bc", ".c"}) {
    size_t n = std::strlen(extension);
    if (text.size() > n && text.compare(text.size() - n, n, extension) == 0) return true;
  }
  return false;
}

// The source text and its name; returns true if it is a str that looks like a path but names no
// file (compiled as text, as documented: its errors then say so).
bool resolve_source(py::handle source, proteus::CompileRequest& request, const char* default_name) {
  request.source_name = default_name;
  if (py::isinstance<py::str>(source)) {
    std::string text = source.cast<std::string>();
    if (is_regular_file(text)) {
      request.source = read_file(text);
      request.source_name = text;
      return false;
    }
    bool missing_file = looks_like_path(text);
    request.source = std::move(text);
    return missing_file;
  }
  if (py::isinstance<py::bytes>(source)) {
    request.source = source.cast<std::string>();
    return false;
  }
  if (py::hasattr(source, "__fspath__")) {
    py::object path_obj = py::reinterpret_steal<py::object>(PyOS_FSPath(source.ptr()));
    if (!path_obj) throw py::error_already_set();
    std::string path = py::str(path_obj).cast<std::string>();
    if (!is_regular_file(path)) {
      PyErr_SetObject(PyExc_FileNotFoundError,
                      py::make_tuple(2, "source file does not exist: " + path, path).ptr());
      throw py::error_already_set();
    }
    request.source = read_file(path);
    request.source_name = path;
    return false;
  }
  throw py::type_error("source must be source text (str or bytes) or a path (str or os.PathLike)");
}

std::string supported_targets() {
  std::string s = "'host' (alias 'native')";
  if (kHasCuda) s += ", 'cuda'";
  if (kHasHip) s += ", 'hip'";
  return s;
}

// link=None, or a list/tuple of host Modules.
std::vector<std::shared_ptr<proteus::CompiledModule>> checked_link(py::handle link, const std::string& target) {
  std::vector<std::shared_ptr<proteus::CompiledModule>> modules;
  if (link.is_none()) return modules;
  if (!py::isinstance<py::list>(link) && !py::isinstance<py::tuple>(link))
    throw py::type_error("link must be a list of proteus.Module objects, not " + py::repr(link).cast<std::string>());
  for (py::handle item : link) {
    if (!py::isinstance<Module>(item))
      throw py::type_error("link must be a list of proteus.Module objects; got " + py::repr(item).cast<std::string>());
    const Module& linked = item.cast<const Module&>();
    if (linked.target != "host")
      throw py::value_error("link= takes host modules; this one is for target='" + linked.target + "'");
    modules.push_back(linked.code);
  }
  if (!modules.empty() && target != "host")
    throw py::value_error("link= is for host code; target='" + target + "' modules link nothing");
  return modules;
}

// timeout=None, or seconds > 0.
double checked_timeout(py::handle timeout) {
  if (timeout.is_none()) return 0;
  bool number = (py::isinstance<py::int_>(timeout) || py::isinstance<py::float_>(timeout)) &&
                !py::isinstance<py::bool_>(timeout);
  if (!number)
    throw py::type_error("timeout must be a number of seconds or None, not " + py::repr(timeout).cast<std::string>());
  double seconds = timeout.cast<double>();
  if (!(seconds > 0) || seconds > 1e9)  // also NaN
    throw py::value_error("timeout must be a positive number of seconds (or None for no limit), not " +
                          py::repr(timeout).cast<std::string>());
  return seconds;
}

Module compile(py::handle source, const std::string& frontend, const std::string& target, py::handle extra_args,
               const std::string& compiler, bool verify, py::handle timeout, py::handle link) {
  if (frontend != "cpp" && frontend != "c" && frontend != "llvmir" && frontend != "mlir")
    throw py::value_error("frontend must be 'cpp', 'llvmir', or 'mlir' (or 'c' for C17 on the host)");
  if (compiler != "clang" && compiler != "nvcc") throw py::value_error("compiler must be 'clang' or 'nvcc'");
  std::vector<std::string> args;
  if (!extra_args.is_none()) {
    if (py::isinstance<py::str>(extra_args) || !py::isinstance<py::sequence>(extra_args))
      throw py::type_error("extra_args must be a list of strings");
    for (py::handle a : extra_args) {
      if (!py::isinstance<py::str>(a)) throw py::type_error("extra_args must be a list of strings");
      args.push_back(a.cast<std::string>());
    }
  }
  if (frontend == "c" && compiler == "nvcc") throw py::value_error("C frontend does not support compiler='nvcc'");
  if (frontend == "llvmir" || frontend == "mlir") {
    const char* label = frontend == "llvmir" ? "LLVMIR" : "MLIR";
    if (compiler == "nvcc") throw py::value_error(std::string(label) + " frontend does not support compiler='nvcc'");
    if (!args.empty()) throw py::value_error(std::string(label) + " frontend does not support extra_args");
  }
  std::string resolved = target == "native" ? "host" : target;
  if (resolved != "host" && resolved != "cuda" && resolved != "hip")
    throw py::value_error("target must be 'host' (alias 'native'), 'cuda', or 'hip'; this backend supports " +
                          supported_targets());
  if (frontend == "c" && resolved != "host")
    throw py::value_error("frontend='c' compiles for the host; write GPU kernels with frontend='cpp'");
  if ((resolved == "cuda" && !kHasCuda) || (resolved == "hip" && !kHasHip))
    throw py::value_error("target='" + resolved + "' is not supported by this backend (" + backend_distribution() +
                          "), which supports " + supported_targets() + "; install " +
                          (resolved == "cuda" ? PROTEUS_CUDA_DISTRIBUTION : PROTEUS_HIP_DISTRIBUTION) +
                          " for " + (resolved == "cuda" ? "CUDA" : "HIP") + " kernels");
  if (compiler == "nvcc" && resolved != "cuda") throw py::value_error("compiler='nvcc' requires target='cuda'");

  proteus::CompileRequest request;
  bool missing_file = resolve_source(source, request,
                 frontend == "c"     ? "source.c"
                 : frontend == "mlir" ? "source.mlir"
                 : frontend != "cpp" ? "source.ll"
                 : resolved == "cuda" ? "source.cu"
                 : resolved == "hip"  ? "source.hip"
                                      : "source.cpp");
  request.frontend = frontend;
  request.extra_args = std::move(args);
  request.verify = verify;
  request.target = resolved;
  request.compiler = compiler;
  request.timeout = checked_timeout(timeout);
  request.link = checked_link(link, resolved);
  Module module;
  module.target = resolved;
  try {
    module.code = without_gil([&] { return proteus::compile(request); });
  } catch (const proteus::CompileCancelled&) {  // these are not about the source
    throw;
  } catch (const proteus::CompileOutOfMemory&) {
    throw;
  } catch (const proteus::ConfigError&) {
    throw;
  } catch (const proteus::CompileError& e) {
    if (!missing_file) throw;
    throw proteus::CompileError("no file '" + request.source + "' exists (from " + current_directory() +
                                "), so the string was compiled as source text:\n" + e.what());
  }
  if (std::string warnings = module.code->warnings(); !warnings.empty()) {  // also on cache hits: nothing lost
    py::str text = py::reinterpret_steal<py::str>(PyUnicode_DecodeUTF8(warnings.data(), warnings.size(), "replace"));
    py::module_::import("warnings").attr("warn")(text, py::handle(compile_warning), 1);  // 1: the caller of compile()
  }
  return module;
}

// restype/argtypes given as ... (or omitted) come from the source's declaration; given ones are
// checked against it; pointer arguments get the checks their declared pointee (or a typed pointer) asks for.
py::object get_function(py::object self, const std::string& name, py::object restype, py::object argtypes,
                        py::object specialize, bool release_gil) {
  Module& module = self.cast<Module&>();
  if (is_gpu(module.target))
    throw py::value_error("Target is a GPU model, cannot directly run functions, use launch()");
  if (!restype.is(py::ellipsis()) && !restype.is_none() && !py::isinstance<Type>(restype))
    throw py::type_error("restype must be a proteus type (e.g. proteus.i32) or None");
  std::string where = "get_function('" + name + "'): ";
  void* address = without_gil([&] { return reinterpret_cast<void*>(module.code->address(name)); });
  // A defined symbol that is not a function (a variable) would be "called" into data.
  std::vector<std::string> functions = module.code->function_names();
  if (!std::binary_search(functions.begin(), functions.end(), name))
    throw py::type_error(where + "'" + name + "' is a variable, not a function; the module's functions are " +
                         py::repr(py::cast(functions)).cast<std::string>() +
                         " (get_function_address gives a variable's address)");
  CallTypes types = call_types(module.code->signature(name), name, restype, argtypes, where);
  FunctionSpec spec;
  spec.name = name;
  spec.address = address;
  spec.ret = types.restype.is_none() ? 'v' : types.restype.cast<Type&>().code;
  spec.args = types.codes;
  spec.checks = std::move(types.checks);
  spec.signature = std::move(types.signature);
  spec.specialize = checked_specialize(specialize, spec.args, "proteus.ptr");
  if (!spec.specialize.empty()) spec.variant_limit = variant_limit();
  spec.release_gil = release_gil;
  spec.code = module.code;
  std::string thunk_signature = std::string(1, spec.ret) + "(" + slot_layout(spec.args, spec.checks).kinds + ")";
  spec.thunk = without_gil([&] { return proteus::call_thunk(thunk_signature); });
  spec.owner = self.ptr();
  spec.restype = types.restype.ptr();
  spec.argtypes = types.argtypes.ptr();
  PyObject* function = make_function(spec);
  if (!function) throw py::error_already_set();
  return py::reinterpret_steal<py::object>(function);
}

}  // namespace
}  // namespace proteus_py

namespace proteus_py {
namespace {
// The engine's wait hook: a thread waiting for a compile checks for Ctrl-C (on the main thread,
// Python's SIGINT handler raises KeyboardInterrupt from PyErr_CheckSignals; the error stays set
// for the caller). Never touches a finalizing interpreter.
bool interrupted() {
  if (interpreter_finalizing()) return false;
  PyGILState_STATE state = PyGILState_Ensure();
  bool raised = PyErr_Occurred() == nullptr && PyErr_CheckSignals() != 0;
  PyGILState_Release(state);
  return raised;
}
}  // namespace
}  // namespace proteus_py

PYBIND11_MODULE(_proteus, m) {
  using namespace proteus_py;
  proteus::set_wait_hook(interrupted);
  m.doc() = "Proteus native backend: JIT-compile C++ and LLVM IR with Clang/LLVM 22.";

  // One error hierarchy, converted here once (ARCHITECTURE 4). Each type also derives from the
  // built-in exception earlier releases raised, so existing `except` clauses keep working.
  static py::exception<proteus::CompileError> compile_error(m, "CompileError", PyExc_RuntimeError);
  compile_error.doc() = "Compilation failed; the message carries the compiler's diagnostics.";
  auto new_error = [&](const char* name, const char* doc, py::tuple bases) {
    std::string qualified = std::string(PyModule_GetName(m.ptr())) + "." + name;
    PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases.ptr(), nullptr);
    if (!type) throw py::error_already_set();
    m.attr(name) = py::reinterpret_borrow<py::object>(type);
    return type;  // kept for the process: a strong reference that is never released
  };
  static PyObject* config_error = new_error(
      "ConfigError", "A setting (a PROTEUS_* variable) has a value that cannot be used; the message names it and the fix.",
      py::make_tuple(compile_error, py::handle(PyExc_ValueError)));
  static PyObject* symbol_not_found = new_error(
      "SymbolNotFoundError", "The module defines no such name; the message lists what it defines.",
      py::make_tuple(py::handle(PyExc_RuntimeError), py::handle(PyExc_LookupError)));
  static PyObject* cache_error = new_error(
      "CacheError", "The persistent cache directory cannot be used safely; the message names it and the fix.",
      py::make_tuple(py::handle(PyExc_PermissionError)));
  static PyObject* device_error = new_error(
      "DeviceError", "The GPU runtime (CUDA driver, HIP runtime) is missing or failed; the message has its error name.",
      py::make_tuple(py::handle(PyExc_RuntimeError)));
  compile_warning = new_error(
      "CompileWarning", "A compiler warning for the source (e.g. with -Wall), with clang's text and location.",
      py::make_tuple(py::handle(PyExc_UserWarning)));
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const proteus::CompileTimeout& e) {
      set_error(PyExc_TimeoutError, e.what());
    } catch (const proteus::CompileCancelled& e) {
      if (!PyErr_Occurred()) set_error(PyExc_KeyboardInterrupt, e.what());  // else the hook's KeyboardInterrupt
    } catch (const proteus::CompileOutOfMemory& e) {
      set_error(PyExc_MemoryError, e.what());
    } catch (const proteus::ConfigError& e) {
      set_error(config_error, e.what());
    } catch (const proteus::CompileError& e) {
      set_error(compile_error.ptr(), e.what());
    } catch (const proteus::SymbolNotFound& e) {
      set_error(symbol_not_found, e.what());
    } catch (const proteus::CacheError& e) {
      set_error(cache_error, e.what());
    } catch (const proteus::DeviceError& e) {
      set_error(device_error, e.what());
    }
  });

  py::class_<Type>(m, "Type", "A scalar type for argtypes/restype: proteus.i32, proteus.ptr, ...")
      .def_property_readonly("name", [](const Type& t) { return t.name; })
      .def("__repr__", [](const Type& t) { return "proteus." + t.name; })
      .def("__getitem__", [](const Type& t, const Type& element) {
        if (t.code != 'p' || t.pointee) throw py::type_error("only proteus.ptr and proteus.const_ptr take an element type");
        if (!element_letter(element.code))
          throw py::type_error("the element of a typed pointer is a scalar type such as proteus.f64, not proteus." + element.name);
        return Type{'p', t.name + "[proteus." + element.name + "]", element_letter(element.code), t.pointee_const};
      }, "a pointer to elements of that type: calls check arrays passed for it (element type, C-contiguity, "
         "and for ptr writability)")
      .def("__eq__", [](const Type& a, py::handle b) {
        if (!py::isinstance<Type>(b)) return false;
        const Type& other = b.cast<Type&>();
        return other.code == a.code && other.pointee == a.pointee && other.pointee_const == a.pointee_const;
      })
      .def("__hash__", [](const Type& t) { return py::hash(py::str(t.name)); });
  py::list all_names;
  m.attr("const_ptr") = py::cast(Type{'p', "const_ptr", 0, true});  // a pointer whose pointee is const
  all_names.append("const_ptr");
  for (const ScalarType& s : kScalars) {
    m.attr(s.name) = py::cast(Type{s.code, s.name});
    all_names.append(s.name);
  }

  if (!add_function_type(m.ptr())) throw py::error_already_set();

  add_kernel_type(m);

  py::class_<Module>(m, "Module", "Compiled code; get callable functions (host) or kernels (GPU) from it.")
      .def_property_readonly("target", [](const Module& mod) { return mod.target; })
      .def_property_readonly("functions", [](const Module& mod) { return mod.code->function_names(); },
                             "names of the functions the module defines")
      .def("get_function_address",
           [](const Module& mod, const std::string& name) {
             py::gil_scoped_release unlocked;
             return mod.code->address(name);
           },
           py::arg("name"))
      .def("get_function", &get_function, py::arg("name"), py::arg("restype") = py::ellipsis(),
           py::arg("argtypes") = py::ellipsis(), py::arg("specialize") = py::none(), py::kw_only(),
           py::arg("release_gil") = true,
           "A callable for a host function. restype/argtypes left out (...) are the source's declaration; given "
           "ones are checked against it. Pointer arguments are checked against their declared pointee (element "
           "type, C-contiguity, writability unless const). specialize=[i, ...]: each call runs a variant compiled "
           "for that call's values of those scalar arguments (one per distinct value tuple, cached). "
           "release_gil=False keeps the GIL during calls: cheaper for short functions, but no other Python "
           "thread runs meanwhile (and the function must not call back into Python).")
      .def("get_kernel", &get_kernel, py::arg("name"), py::arg("argtypes") = py::ellipsis(),
           py::arg("specialize") = py::none(),
           "A launchable kernel of a GPU module (the runtime is opened at the first launch). specialize=[i, ...]: "
           "each launch runs a variant compiled for that launch's values of those scalar arguments.")
      .def_property_readonly("ir", [](const Module& mod) {
        return or_none<py::str>(without_gil([&] { return mod.code->ir(); }));  // printing runs contained
      }, "the optimised LLVM IR as text (device IR for GPU modules), or None where none is kept")
      .def_property_readonly("asm", [](const Module& mod) {
        return or_none<py::str>(without_gil([&] { return mod.code->assembly(); }));
      }, "host modules: the assembly of the compiled code (None for GPU modules: see ptx)")
      .def_property_readonly("ptx", [](const Module& mod) { return or_none<py::str>(mod.code->ptx()); },
                             "GPU modules: the PTX (None when compiled by nvcc or for the host)")
      .def_property_readonly("cubin", [](const Module& mod) { return or_none<py::bytes>(mod.code->cubin()); },
                             "GPU modules: the cubin (None if only PTX exists, e.g. without ptxas)")
      .def_property_readonly("arch", [](const Module& mod) { return or_none<py::str>(mod.code->arch()); },
                             "GPU modules: the arch the code was compiled for (e.g. 'sm_90')")
      .def("__repr__", [](const Module& mod) {
        return "<proteus.Module target='" + mod.target + "' functions=" +
               py::repr(py::cast(mod.code->function_names())).cast<std::string>() + ">";
      });

  {
    // A docstring that starts "name(signature)\n--\n\n" gives the builtin a __text_signature__, so
    // inspect.signature(proteus.compile) and help() show the real parameters (pybind11's own
    // signature line is not in that form, hence disabled for this one definition).
    py::options options;
    options.disable_function_signatures();
    m.def("compile", &compile, py::arg("source"), py::arg("frontend") = "cpp", py::arg("target") = "host",
          py::arg("extra_args") = py::list(), py::arg("compiler") = "clang", py::arg("verify") = false,
          py::kw_only(), py::arg("timeout") = py::none(), py::arg("link") = py::none(),
          "compile(source, frontend='cpp', target='host', extra_args=[], compiler='clang', verify=False, *, "
          "timeout=None, link=None)\n--\n\n"
          "Compile source at run time with the in-process Clang/LLVM 22 and return a Module.\n\n"
          "source: C++ (or CUDA/HIP) text, LLVM IR text or bitcode bytes, or the path of a file (a str\n"
          "    naming an existing file, or an os.PathLike, which must exist).\n"
          "frontend: 'cpp' (C++17), 'c' (C17, host only), 'llvmir' or 'mlir'.\n"
          "target: 'host' (alias 'native'), 'cuda' or 'hip' where the backend has that target.\n"
          "extra_args: flags for clang (-D, -I, -std=, -O...), cpp only.\n"
          "compiler: 'clang', or 'nvcc' for target='cuda'.\n"
          "verify: run LLVM's verifier on the generated IR.\n"
          "timeout: seconds; a compile still running then is cancelled and raises TimeoutError.\n"
          "link: host Modules whose exported functions and variables this code may call and use; the\n"
          "    new Module keeps them alive.\n\n"
          "Bad source raises proteus.CompileError carrying the compiler's diagnostics; a compile that\n"
          "runs out of memory raises MemoryError; Ctrl-C interrupts a compile (KeyboardInterrupt).");
  }

  m.def("backend_info", [] {
    proteus::EngineStats stats = proteus::engine_stats();
    py::dict info;
    info["llvm_version"] = proteus::llvm_version();
    info["build"] = proteus::build_mode();
    if (kHasCuda) info["cuda_toolkit"] = proteus::target_description("cuda");
    if (kHasHip) info["rocm"] = proteus::target_description("hip");
    info["targets"] = proteus::target_names();
    info["distribution"] = backend_distribution();
    info["frontend_runs"] = stats.frontend_runs;
    info["compiles"] = stats.compiles;
    info["internal_compiles"] = stats.internal_compiles;
    info["internal_runs"] = stats.internal_runs;
    info["memory_hits"] = stats.memory_hits;
    info["disk_hits"] = stats.disk_hits;
    info["disk_misses"] = stats.disk_misses;
    info["pch_builds"] = stats.pch_builds;
    info["pch_uses"] = stats.pch_uses;
    py::list settings;  // every variable the engine reads, and its value here (None: unset)
    for (const proteus::Setting& s : proteus::settings()) {
      py::dict entry;
      entry["name"] = s.name;
      entry["kind"] = s.kind;
      entry["default"] = s.fallback;
      entry["doc"] = s.doc;
      const char* value = std::getenv(s.name.c_str());
      entry["value"] = value ? py::object(py::str(value)) : py::none();
      settings.append(entry);
    }
    info["settings"] = settings;
    try {
      info["header_search"] = proteus::header_search_description();
    } catch (const proteus::CompileError& e) {
      info["header_search"] = std::string("unavailable: ") + e.what();
    }
    return info;
  }, "Engine facts and counters for this process (LLVM version, header search, compile counts).");

  m.def("cache_info", [] {
    proteus::CacheInfo c = proteus::cache_info();
    proteus::EngineStats stats = proteus::engine_stats();
    py::dict info;
    info["enabled"] = c.enabled;
    info["dir"] = c.directory;
    info["entries"] = c.entries;
    info["bytes"] = c.bytes;
    info["max_bytes"] = c.max_bytes;
    info["hits"] = stats.disk_hits;
    info["misses"] = stats.disk_misses;
    info["memory_hits"] = stats.memory_hits;
    try {
      info["levels"] = cache_levels_info();  // the chain (PROTEUS_OBJECT_CACHE_CHAIN), per level
    } catch (const proteus::ConfigError& e) {
      info["levels"] = py::list();
      info["chain_error"] = std::string(e.what());
    }
    return info;
  }, "The persistent object cache: directory, entries, bytes, this process's hits and misses, and the cache "
     "chain's levels with their hits, misses, rejected entries and errors.");
  m.def("clear_cache", [] { return proteus::clear_cache(); },
        "Remove every entry of the persistent object cache; returns how many were removed.");

  install_cache_levels();
  m.attr("has_cuda") = kHasCuda;
  m.attr("has_hip") = kHasHip;
  m.attr("has_mlir") = kHasMlir;
  for (const char* name : {"Type", "Function", "Kernel", "Module", "CompileError", "CompileWarning", "NativeError",
                           "ConfigError",
                           "SymbolNotFoundError", "CacheError", "DeviceError", "compile", "backend_info", "cache_info",
                           "clear_cache", "has_cuda",
                           "has_hip", "has_mlir"})
    all_names.append(name);
  m.attr("__all__") = all_names;
}
