// proteus.Function: a CPython type with vectorcall; arguments go through marshal.cc, the GIL is
// released around the call (unless release_gil=False), specialised variants are picked per call.
#include "function.h"

#include <algorithm>
#include <cstring>

namespace proteus_py {
namespace {

constexpr Py_ssize_t kInlineSlots = 16;

// The specialised variants of one Function: one compiled module per tuple of values of the
// specialised arguments, least recently used evicted beyond the bound. Touched with the GIL held.
struct Variants {
  struct Entry {
    std::shared_ptr<proteus::CompiledModule> module;
    void* address;
    // Calls running this code with the GIL released: counted with the GIL held (no atomics), and
    // an entry in flight is never evicted, so its code outlives every call into it.
    unsigned calls_in_flight = 0;
    friend bool in_flight(const Entry& e) { return e.calls_in_flight != 0; }
  };
  std::shared_ptr<proteus::CompiledModule> base;
  std::vector<unsigned> indices;       // of the specialised arguments
  std::vector<unsigned> slot_indices;  // of their slots (after a memref's descriptor, they differ)
  std::string codes;                   // of the slots, as the compiled function takes them
  bool unspecialisable = false;  // the first attempt failed: calls use the generic function
  VariantCache<Entry> cache;
  explicit Variants(size_t limit) : cache(limit) {}
};


struct FunctionObject {
  PyObject_HEAD
  vectorcallfunc vectorcall;
  void* address;
  proteus::CallThunk thunk;
  char ret;
  bool release_gil;  // false: the call keeps the GIL (get_function(..., release_gil=False))
  Py_ssize_t nargs;
  Py_ssize_t nslots;  // nargs, or more where a memref argument takes its descriptor's
  char* args;         // nargs codes
  PyObject* name;
  PyObject* owner;
  PyObject* restype;
  PyObject* argtypes;
  PyObject* signature;   // str as the source declares it, or None
  Variants* variants;    // nullptr: not specialised
  PointerCheck* checks;  // nargs, or nullptr: no pointer argument is checked
};

PyTypeObject FunctionType;

PyObject* native_error_type = nullptr;

// proteus.NativeError for the C++ exception the call thunk just caught on this thread.
PyObject* raise_native_error(const char* function) {
  const proteus::NativeException& caught = proteus::last_native_exception();
  std::string message = std::string(function) + "() raised the C++ exception " + caught.type_name;
  if (caught.has_what) message += ": " + caught.what;
  PyObject* text = PyUnicode_DecodeUTF8(message.data(), static_cast<Py_ssize_t>(message.size()), "replace");
  PyObject* error = text ? PyObject_CallOneArg(native_error_type, text) : nullptr;
  Py_XDECREF(text);
  if (!error) return nullptr;
  PyObject* type_name = PyUnicode_DecodeUTF8(caught.type_name.data(), caught.type_name.size(), "replace");
  PyObject* what = caught.has_what ? PyUnicode_DecodeUTF8(caught.what.data(), caught.what.size(), "replace")
                                   : Py_NewRef(Py_None);
  if (type_name && what && PyObject_SetAttrString(error, "type_name", type_name) == 0 &&
      PyObject_SetAttrString(error, "what", what) == 0)
    PyErr_SetObject(native_error_type, error);
  Py_XDECREF(type_name);
  Py_XDECREF(what);
  Py_DECREF(error);
  return nullptr;
}

// The variant for this call's values of the specialised arguments, compiled on first use. A hit
// allocates nothing. False: an error is set. *entry stays nullptr when the generic code runs.
bool select_variant(FunctionObject* f, const uint64_t* slots, Variants::Entry** entry) {
  Variants& v = *f->variants;
  uint64_t inline_values[kInlineSlots];
  std::vector<uint64_t> heap_values;
  uint64_t* values = inline_values;
  if (v.indices.size() > kInlineSlots) {
    heap_values.resize(v.indices.size());
    values = heap_values.data();
  }
  for (size_t k = 0; k < v.indices.size(); ++k) values[k] = slots[v.slot_indices[k]];
  if ((*entry = v.cache.find(ValuesView{values, v.indices.size()}))) return true;
  std::vector<std::pair<unsigned, uint64_t>> constants;
  for (size_t k = 0; k < v.indices.size(); ++k) constants.emplace_back(v.slot_indices[k], values[k]);
  std::string name = PyUnicode_AsUTF8(f->name);
  std::shared_ptr<proteus::CompiledModule> module;
  void* variant_address = nullptr;
  std::string failure;
  bool cancelled = false;
  without_gil([&] {
    try {
      module = proteus::specialize(v.base, name, v.codes, constants);
      variant_address = reinterpret_cast<void*>(module->address(name));
    } catch (const proteus::CompileCancelled& e) {
      cancelled = true;  // Ctrl-C: the wait hook left KeyboardInterrupt set
      failure = e.what();
    } catch (const std::exception& e) {
      failure = e.what();
    }
  });
  if (cancelled) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_KeyboardInterrupt, failure.c_str());
    return false;
  }
  if (!module) {  // e.g. the function uses internal mutable state: run the generic code
    v.unspecialisable = true;
    std::string message = "proteus: cannot specialise '" + name + "', calling the generic function: " + failure;
    return PyErr_WarnEx(PyExc_RuntimeWarning, message.c_str(), 1) == 0;
  }
  std::vector<uint64_t> key(values, values + v.indices.size());
  *entry = &v.cache.insert(key, {module, variant_address});
  return true;
}

PyObject* function_vectorcall(PyObject* self, PyObject* const* argv, size_t nargsf, PyObject* kwnames) {
  auto* f = reinterpret_cast<FunctionObject*>(self);
  Py_ssize_t n = PyVectorcall_NARGS(nargsf);
  if (kwnames && PyTuple_GET_SIZE(kwnames)) {
    PyErr_SetString(PyExc_TypeError, "proteus functions take positional arguments only");
    return nullptr;
  }
  if (n != f->nargs) {
    PyErr_SetString(PyExc_TypeError, "function argument count does not match argtypes");
    return nullptr;
  }
  uint64_t inline_slots[kInlineSlots];
  std::vector<uint64_t> heap_slots;
  uint64_t* slots = inline_slots;
  if (f->nslots > kInlineSlots) {
    heap_slots.resize(f->nslots);
    slots = heap_slots.data();
  }
  HeldBuffers held;  // buffer arguments stay exported until the call returns
  for (Py_ssize_t i = 0, k = 0; i < n; ++i, ++k) {
    bool converted;
    if (f->args[i] == 'm') {
      converted = memref_argument(argv[i], Memory::host, f->checks[i], i, &slots[k], &held);
      k += f->checks[i].slots() - 1;
    } else {
      converted = f->checks && f->checks[i].active()
                      ? checked_pointer_argument(argv[i], Memory::host, f->checks[i], i, &slots[k], &held)
                      : convert(f->args[i], argv[i], &slots[k], i, &held);
    }
    if (!converted) return nullptr;
  }
  uint64_t result = 0;
  proteus::CallThunk thunk = f->thunk;
  void* address = f->address;
  Variants::Entry* variant = nullptr;
  if (f->variants && !f->variants->unspecialisable && !select_variant(f, slots, &variant)) return nullptr;
  if (variant) address = variant->address;
  int threw;
  if (f->release_gil) {
    if (variant) ++variant->calls_in_flight;  // another thread may insert (and evict) while this one runs
    Py_BEGIN_ALLOW_THREADS
    threw = thunk(address, slots, &result);
    Py_END_ALLOW_THREADS
    if (variant) --variant->calls_in_flight;
  } else {
    threw = thunk(address, slots, &result);  // with the GIL held nothing else evicts the variant
  }
  if (threw) return raise_native_error(PyUnicode_AsUTF8(f->name));
  return box(f->ret, result);
}

void function_dealloc(PyObject* self) {
  auto* f = reinterpret_cast<FunctionObject*>(self);
  PyObject_GC_UnTrack(self);
  Py_CLEAR(f->name);
  Py_CLEAR(f->owner);
  Py_CLEAR(f->restype);
  Py_CLEAR(f->argtypes);
  Py_CLEAR(f->signature);
  PyMem_Free(f->args);
  delete f->variants;
  delete[] f->checks;
  PyObject_GC_Del(self);
}

int function_traverse(PyObject* self, visitproc visit, void* arg) {
  auto* f = reinterpret_cast<FunctionObject*>(self);
  Py_VISIT(f->owner);
  Py_VISIT(f->restype);
  Py_VISIT(f->argtypes);
  return 0;
}

PyObject* specialize_list(FunctionObject* f) {
  PyObject* list = PyList_New(0);
  if (list && f->variants)
    for (unsigned i : f->variants->indices) {
      PyObject* n = PyLong_FromUnsignedLong(i);
      PyList_Append(list, n);
      Py_XDECREF(n);
    }
  return list;
}

PyObject* function_repr(PyObject* self) {
  auto* f = reinterpret_cast<FunctionObject*>(self);
  if (!f->variants)
    return PyUnicode_FromFormat("<proteus.Function name=%R restype=%R argtypes=%R>", f->name, f->restype, f->argtypes);
  PyObject* spec = specialize_list(f);
  PyObject* text = PyUnicode_FromFormat("<proteus.Function name=%R restype=%R argtypes=%R specialize=%R>", f->name,
                                        f->restype, f->argtypes, spec);
  Py_XDECREF(spec);
  return text;
}

PyObject* get_name(PyObject* self, void*) { return Py_NewRef(reinterpret_cast<FunctionObject*>(self)->name); }
PyObject* get_restype(PyObject* self, void*) { return Py_NewRef(reinterpret_cast<FunctionObject*>(self)->restype); }
PyObject* get_argtypes(PyObject* self, void*) {
  return PySequence_List(reinterpret_cast<FunctionObject*>(self)->argtypes);
}
PyObject* get_release_gil(PyObject* self, void*) {
  return PyBool_FromLong(reinterpret_cast<FunctionObject*>(self)->release_gil);
}
PyObject* get_signature(PyObject* self, void*) {
  return Py_NewRef(reinterpret_cast<FunctionObject*>(self)->signature);
}
PyObject* get_address(PyObject* self, void*) {
  return PyLong_FromVoidPtr(reinterpret_cast<FunctionObject*>(self)->address);
}
PyObject* get_module(PyObject* self, void*) { return Py_NewRef(reinterpret_cast<FunctionObject*>(self)->owner); }
PyObject* get_specialize(PyObject* self, void*) { return specialize_list(reinterpret_cast<FunctionObject*>(self)); }
PyObject* get_variants(PyObject* self, void*) {
  auto* f = reinterpret_cast<FunctionObject*>(self);
  return PyLong_FromSize_t(f->variants ? f->variants->cache.size() : 0);
}

PyGetSetDef function_getset[] = {
    {"name", get_name, nullptr, "the symbol name", nullptr},
    {"restype", get_restype, nullptr, "the result type (None for void)", nullptr},
    {"argtypes", get_argtypes, nullptr, "the argument types", nullptr},
    {"address", get_address, nullptr, "the function's address", nullptr},
    {"release_gil", get_release_gil, nullptr, "whether calls release the GIL (get_function's release_gil)", nullptr},
    {"signature", get_signature, nullptr, "the function's C signature as the source declares it, or None", nullptr},
    {"module", get_module, nullptr, "the Module this function belongs to", nullptr},
    {"specialize", get_specialize, nullptr, "indices of the arguments folded to constants per call", nullptr},
    {"variants", get_variants, nullptr, "how many specialised variants exist now", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

}  // namespace

size_t variant_limit() {
  uint64_t n = proteus::count_setting("PROTEUS_SPECIALIZE_MAX_VARIANTS");
  if (n == 0) throw proteus::ConfigError("PROTEUS_SPECIALIZE_MAX_VARIANTS=0 is not valid: keep at least 1 variant");
  return static_cast<size_t>(n);
}

bool add_function_type(PyObject* module) {
  native_error_type = PyErr_NewExceptionWithDoc(
      "proteus.NativeError",
      "A C++ exception escaped a called function; type_name is its type, what its what() (None if it is "
      "not a std::exception). The module stays usable.",
      PyExc_RuntimeError, nullptr);
  if (!native_error_type || PyModule_AddObject(module, "NativeError", Py_NewRef(native_error_type)) != 0) return false;
  FunctionType.tp_name = "proteus.Function";
  FunctionType.tp_basicsize = sizeof(FunctionObject);
  FunctionType.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL;
  FunctionType.tp_doc = "A compiled host function; call it with Python values converted by its argtypes.";
  FunctionType.tp_dealloc = function_dealloc;
  FunctionType.tp_traverse = function_traverse;
  FunctionType.tp_repr = function_repr;
  FunctionType.tp_call = PyVectorcall_Call;
  FunctionType.tp_vectorcall_offset = offsetof(FunctionObject, vectorcall);
  FunctionType.tp_getset = function_getset;
  if (PyType_Ready(&FunctionType) < 0) return false;
  Py_INCREF(&FunctionType);
  return PyModule_AddObject(module, "Function", reinterpret_cast<PyObject*>(&FunctionType)) == 0;
}

PyObject* make_function(const FunctionSpec& spec) {
  auto* f = PyObject_GC_New(FunctionObject, &FunctionType);
  if (!f) return nullptr;
  f->vectorcall = function_vectorcall;
  f->address = spec.address;
  f->thunk = spec.thunk;
  f->ret = spec.ret;
  f->release_gil = spec.release_gil;
  f->nargs = static_cast<Py_ssize_t>(spec.args.size());
  f->args = static_cast<char*>(PyMem_Malloc(spec.args.size() + 1));
  std::memcpy(f->args, spec.args.c_str(), spec.args.size() + 1);
  f->name = PyUnicode_FromString(spec.name.c_str());
  f->owner = Py_NewRef(spec.owner);
  f->restype = Py_NewRef(spec.restype);
  f->argtypes = Py_NewRef(spec.argtypes);
  f->signature = spec.signature.empty() ? Py_NewRef(Py_None)
                                        : PyUnicode_DecodeUTF8(spec.signature.data(), spec.signature.size(), "replace");
  f->checks = nullptr;
  for (const PointerCheck& check : spec.checks)
    if (check.active()) {
      f->checks = new PointerCheck[spec.checks.size()];
      std::copy(spec.checks.begin(), spec.checks.end(), f->checks);
      break;
    }
  SlotLayout layout = slot_layout(spec.args, spec.checks);
  f->nslots = static_cast<Py_ssize_t>(layout.kinds.size());
  f->variants = nullptr;
  if (!spec.specialize.empty()) {
    f->variants = new Variants(spec.variant_limit);
    f->variants->base = spec.code;
    f->variants->indices = spec.specialize;
    for (unsigned i : spec.specialize) f->variants->slot_indices.push_back(layout.first[i]);
    f->variants->codes = std::move(layout.kinds);
  }
  PyObject_GC_Track(reinterpret_cast<PyObject*>(f));
  return reinterpret_cast<PyObject*>(f);
}

}  // namespace proteus_py
