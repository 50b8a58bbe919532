// The cache chain's shared levels are Python (proteus/_cache_levels.py: mpi4py, http.client); this
// makes them the engine's SharedCacheLevel (ARCHITECTURE 6, "The cache chain"). The engine calls
// them from the thread compiling, which released the GIL: each call takes it.
#include "binding.h"
#include "function.h"

namespace proteus_py {
namespace {

// Holds the GIL for a call into a level; none once the interpreter is shutting down.
struct Gil {
  PyGILState_STATE state;
  Gil() {
    if (interpreter_finalizing()) throw std::runtime_error("the Python interpreter is shutting down");
    state = PyGILState_Ensure();
  }
  ~Gil() { PyGILState_Release(state); }
};

// The pending Python exception as a C++ one (and cleared): Ctrl-C cancels the compile waiting,
// anything else is the level's error (a miss for the engine, its text in cache_info()).
[[noreturn]] void throw_python_error(const std::string& what) {
  bool interrupted = PyErr_ExceptionMatches(PyExc_KeyboardInterrupt);
  std::string message = what;
  try {
    py::error_already_set e;
    message += ": " + std::string(e.what());
  } catch (...) {
  }
  PyErr_Clear();
  if (interrupted) throw proteus::CompileCancelled("interrupted while " + what);
  throw std::runtime_error(message);
}

class PythonLevel : public proteus::SharedCacheLevel {
 public:
  PythonLevel(py::object level, std::string spec) : level_(level.release().ptr()), spec_(std::move(spec)) {}
  // The object is kept for the process: the engine's chain outlives the interpreter's objects.
  ~PythonLevel() override = default;

  std::optional<std::string> lookup(const std::string& key) override {
    Gil gil;
    PyObject* found = PyObject_CallMethod(level_, "lookup", "s", key.c_str());
    if (!found) throw_python_error("looking up in " + spec_);
    std::optional<std::string> out;
    if (PyBytes_Check(found)) out.emplace(PyBytes_AS_STRING(found), PyBytes_GET_SIZE(found));
    bool none = found == Py_None;
    Py_DECREF(found);
    if (!out && !none) throw std::runtime_error(spec_ + ": lookup() returned neither bytes nor None");
    return out;
  }
  void store(const std::string& key, const std::string& entry) override {
    call("store", key, &entry);
  }
  void abandon(const std::string& key) override { call("abandon", key, nullptr); }
  std::string describe() const override {
    Gil gil;
    PyObject* text = PyObject_CallMethod(level_, "describe", nullptr);
    std::string out = text && PyUnicode_Check(text) ? PyUnicode_AsUTF8(text) : "";
    Py_XDECREF(text);
    PyErr_Clear();
    return out;
  }

 private:
  void call(const char* method, const std::string& key, const std::string* entry) {
    Gil gil;
    PyObject* result = nullptr;
    if (entry) {
      py::bytes data(entry->data(), entry->size());
      result = PyObject_CallMethod(level_, method, "sO", key.c_str(), data.ptr());
    } else {
      result = PyObject_CallMethod(level_, method, "s", key.c_str());
    }
    if (!result) throw_python_error(std::string(method == std::string("store") ? "storing in " : "releasing in ") + spec_);
    Py_DECREF(result);
  }

  PyObject* level_;
  std::string spec_;
};

std::unique_ptr<proteus::SharedCacheLevel> make_level(const std::string& spec, const proteus::SharedLevelOptions& o) {
  Gil gil;
  try {
    py::dict options;
    options["http_timeout"] = o.http_timeout_seconds;
    options["http_max_bytes"] = o.http_max_bytes;
    options["http_header"] = o.http_header;
    options["mpi_directory"] = o.mpi_directory;
    options["mpi_timeout"] = o.mpi_timeout_seconds;
    py::object level = py::module_::import("proteus._cache_levels").attr("make_level")(spec, options);
    return std::make_unique<PythonLevel>(level, spec);
  } catch (py::error_already_set& e) {
    std::string message = e.what();
    e.restore();
    PyErr_Clear();
    throw proteus::ConfigError("PROTEUS_OBJECT_CACHE_CHAIN: cannot use '" + spec + "': " + message);
  }
}

}  // namespace

void install_cache_levels() { proteus::set_shared_level_factory(make_level); }

py::list cache_levels_info() {
  py::list levels;
  for (const proteus::CacheLevelInfo& level : proteus::cache_chain_info()) {
    py::dict entry;
    entry["name"] = level.name;
    entry["description"] = level.description;
    entry["hits"] = level.hits;
    entry["misses"] = level.misses;
    entry["rejected"] = level.rejected;
    entry["errors"] = level.errors;
    entry["last_error"] = level.last_error.empty() ? py::object(py::none()) : py::object(py::str(level.last_error));
    levels.append(entry);
  }
  return levels;
}

}  // namespace proteus_py
