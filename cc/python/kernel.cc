// proteus.Kernel (GPU targets): launch argument packing, variant selection, the runtime launch.
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>

#include "binding.h"
#include "function.h"

namespace proteus_py {
namespace {

struct Kernel {
  py::object owner;  // the Module (keeps the code alive)
  std::shared_ptr<proteus::CompiledModule> code;
  std::string name;
  std::string codes;  // argument kinds, as for functions
  SlotLayout slots;  // the kernel's parameters (a memref argument takes its descriptor's)
  py::list argtypes;
  std::vector<PointerCheck> checks;  // per argument, from the declaration or typed pointers (empty: none)
  std::string signature;             // as the source declares it, "" if not known
  // Runtime specialisation: per tuple of values of these arguments, a variant module. The runtime's
  // kernel handles are kept by the modules (CompiledModule::kernel), not here: a launch copies the
  // module's shared_ptr before releasing the GIL, so no other launch can free what it uses.
  std::vector<unsigned> specialize;
  using Variant = std::shared_ptr<proteus::CompiledModule>;
  VariantCache<Variant> variants{variant_limit()};
  bool unspecialisable = false;
  py::object last_variant = py::none();
};

// The module to launch for this launch's values of the specialised arguments: a variant (compiled
// on first use, the least recently used dropped beyond the bound) or the generic one. Called with
// the GIL held; the caller owns the returned reference.
std::shared_ptr<proteus::CompiledModule> select_variant(Kernel& k, const std::vector<uint64_t>& slots) {
  if (k.specialize.empty() || k.unspecialisable) return k.code;
  std::vector<uint64_t> values;
  std::vector<std::pair<unsigned, uint64_t>> constants;
  for (unsigned i : k.specialize) {
    values.push_back(slots[k.slots.first[i]]);
    constants.emplace_back(k.slots.first[i], slots[k.slots.first[i]]);
  }
  Kernel::Variant* variant = k.variants.find(values);
  if (!variant) {
    std::shared_ptr<proteus::CompiledModule> code;
    try {
      code = without_gil([&] { return proteus::specialize(k.code, k.name, k.slots.kinds, constants); });
    } catch (const proteus::CompileCancelled&) {
      throw;  // Ctrl-C: KeyboardInterrupt, not a reason to stop specialising
    } catch (const proteus::CompileError& e) {
      k.unspecialisable = true;
      std::string message = "proteus: cannot specialise kernel '" + k.name + "', launching the generic one: " + e.what();
      if (PyErr_WarnEx(PyExc_RuntimeWarning, message.c_str(), 1) != 0) throw py::error_already_set();
      return k.code;
    }
    variant = &k.variants.insert(values, code);
    Module variant_module;
    variant_module.code = code;
    variant_module.target = py::cast<Module&>(k.owner).target;
    k.last_variant = py::cast(std::move(variant_module));
  }
  return *variant;
}

// grid/block: an int, or a tuple/list of 1 to 3 ints (missing dimensions are 1).
void launch_dims(py::handle value, const char* what, unsigned out[3]) {
  out[0] = out[1] = out[2] = 1;
  if (py::isinstance<py::int_>(value)) {
    out[0] = value.cast<unsigned>();
    return;
  }
  if (!py::isinstance<py::tuple>(value) && !py::isinstance<py::list>(value))
    throw py::type_error(std::string(what) + " must be an int or a tuple/list of 1 to 3 ints");
  py::sequence dims = py::reinterpret_borrow<py::sequence>(value);
  if (dims.size() < 1 || dims.size() > 3)
    throw py::type_error(std::string(what) + " must contain between 1 and 3 dimensions");
  for (size_t i = 0; i < dims.size(); ++i) {
    if (!py::isinstance<py::int_>(dims[i])) throw py::type_error(std::string(what) + " must be an int or a tuple/list of 1 to 3 ints");
    out[i] = dims[i].cast<unsigned>();
  }
}

void* stream_handle(py::handle stream) {
  if (stream.is_none()) return nullptr;
  if (py::isinstance<py::int_>(stream)) return reinterpret_cast<void*>(stream.cast<uintptr_t>());
  for (const char* attr : {"ptr", "cuda_stream", "handle"})  // CuPy, torch, cuda-python streams
    if (py::hasattr(stream, attr)) return reinterpret_cast<void*>(stream.attr(attr).cast<uintptr_t>());
  throw py::type_error("stream must be None, an int (a CUstream), or a stream object with .ptr or .cuda_stream");
}

void launch(Kernel& k, py::handle grid, py::handle block, py::handle args, unsigned shmem, py::handle stream) {
  unsigned g[3], b[3];
  launch_dims(grid, "grid", g);
  launch_dims(block, "block", b);
  if (py::isinstance<py::str>(args) || !py::isinstance<py::sequence>(args))
    throw py::type_error("args must be a tuple or list of kernel arguments");
  py::sequence values = py::reinterpret_borrow<py::sequence>(args);
  if (values.size() != k.codes.size()) throw py::type_error("kernel argument count does not match argtypes");
  std::vector<uint64_t> slots(k.slots.kinds.size());
  std::vector<void*> params(k.slots.kinds.size());
  for (size_t i = 0; i < k.codes.size(); ++i) {
    py::handle v = values[i];
    uint64_t* slot = &slots[k.slots.first[i]];
    Py_ssize_t index = static_cast<Py_ssize_t>(i);
    bool converted = k.codes[i] == 'm' ? memref_argument(v.ptr(), Memory::device, k.checks[i], index, slot, nullptr)
                     : k.codes[i] != 'p' ? convert_scalar(k.codes[i], v.ptr(), slot, index)
                     : !k.checks.empty() && k.checks[i].active()
                         ? checked_pointer_argument(v.ptr(), Memory::device, k.checks[i], index, slot, nullptr)
                         : pointer_argument(v.ptr(), Memory::device, slot);
    if (!converted) throw py::error_already_set();  // as calls convert them
  }
  for (size_t p = 0; p < slots.size(); ++p) params[p] = &slots[p];
  void* s = stream_handle(stream);
  std::shared_ptr<proteus::CompiledModule> code = select_variant(k, slots);  // ours until the launch returns
  const std::string& name = k.name;  // k outlives the call: the caller holds the Kernel
  try {
    without_gil([&] { code->launch(code->kernel(name), g, b, shmem, s, params.data()); });
  } catch (const proteus::SymbolNotFound& e) {
    throw proteus::DeviceError(e.what());  // e.g. get_kernel of a name the GPU module lacks, found at launch
  }
}

}  // namespace

py::object get_kernel(py::object self, const std::string& name, py::object argtypes, py::object specialize) {
  Module& module = self.cast<Module&>();
  if (!is_gpu(module.target)) throw py::value_error("Target is the host, which has no kernels: use get_function()");
  // Types from the declaration of a name the compile did not list among its kernels (nvcc lists
  // none; with argtypes given, the launch reports a missing name).
  std::vector<std::string> kernels = module.code->function_names();
  if (argtypes.is(py::ellipsis()) && !module.code->signature(name) && !kernels.empty() &&
      std::find(kernels.begin(), kernels.end(), name) == kernels.end())
    throw proteus::SymbolNotFound("get_kernel('" + name + "'): the module has no kernel '" + name + "'; its kernels are " +
                                  py::repr(py::cast(kernels)).cast<std::string>());
  Kernel k;
  k.owner = self;
  k.code = module.code;
  k.name = name;
  // Kernels return nothing; their argument types come from the source as functions' do.
  CallTypes types = call_types(module.code->signature(name), name, py::none(), argtypes,
                               "get_kernel('" + name + "'): ");
  k.argtypes = types.argtypes;
  k.codes = types.codes;
  k.checks = std::move(types.checks);
  k.slots = slot_layout(k.codes, k.checks);
  k.signature = std::move(types.signature);
  k.specialize = checked_specialize(specialize, k.codes, "proteus.ptr");
  return py::cast(std::move(k));
}

void add_kernel_type(py::module_& m) {
  py::class_<Kernel>(m, "Kernel", "A GPU kernel; launch(grid, block, args, shmem=0, stream=None).")
      .def_property_readonly("name", [](const Kernel& k) { return k.name; })
      .def_property_readonly("argtypes", [](const Kernel& k) { return py::list(k.argtypes); })
      .def_property_readonly("signature", [](const Kernel& k) -> py::object {
        return k.signature.empty() ? py::object(py::none()) : py::object(py::str(k.signature));
      }, "the kernel's signature as the source declares it, or None")
      .def_property_readonly("handle", [](Kernel& k) {
        std::shared_ptr<proteus::CompiledModule> code = k.code;
        return reinterpret_cast<uintptr_t>(without_gil([&] { return code->kernel(k.name); }));
      }, "the runtime's function handle (CUfunction / hipFunction_t) of the generic kernel; opens the runtime")
      .def_property_readonly("specialize", [](const Kernel& k) { return k.specialize; })
      .def_property_readonly("variants", [](const Kernel& k) { return k.variants.size(); },
                             "how many specialised variants exist now")
      .def_property_readonly("last_variant", [](const Kernel& k) { return k.last_variant; },
                             "the Module of the most recently compiled variant (its ptx/cubin), or None")
      .def("launch", &launch, py::arg("grid"), py::arg("block"), py::arg("args"), py::arg("shmem") = 0,
           py::arg("stream") = py::none())
      .def("__repr__", [](const Kernel& k) {
        return "<proteus.Kernel name=" + py::repr(py::str(k.name)).cast<std::string>() +
               " restype=None argtypes=" + py::repr(k.argtypes).cast<std::string>() + ">";
      });
}

}  // namespace proteus_py
