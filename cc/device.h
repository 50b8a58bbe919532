// The device-target seam shared by CUDA and HIP: a GPU runtime opened on first use, the GPU
// module type, and the helpers both compilers use. The targets differ in data and runtime calls.
#pragma once

#include <dlfcn.h>

#include <functional>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <mutex>
#include <string>
#include <vector>

#include "internal.h"
#include "object_cache.h"
#include "target.h"

namespace proteus {

// The CUDA driver or the HIP runtime. Implementations open their library with dlopen the first
// time one of these is called (never at import) and throw DeviceError naming
// the library, the call and the runtime's error text.
class DeviceRuntime {
 public:
  virtual ~DeviceRuntime() = default;
  virtual void* load(const std::string& image) = 0;  // a module handle
  virtual void unload(void* module) = 0;
  virtual void* function(void* module, const std::string& name) = 0;
  virtual void launch(void* function, const unsigned grid[3], const unsigned block[3], unsigned shmem, void* stream,
                      void** params) = 0;
};


// The shared part of opening a GPU runtime: its library by dlopen and its functions by name.
struct RuntimeLibrary {
  void* handle = nullptr;
  std::string name;  // the candidate that loaded
  // Opens the first of `candidates` that loads; else throws naming them and what they are for.
  void open(std::initializer_list<const char*> candidates, const std::string& what_for);
  template <typename Function>
  void bind(Function& slot, const char* symbol) {
    slot = reinterpret_cast<Function>(dlsym(handle, symbol));
    if (!slot) throw DeviceError(name + " lacks " + symbol);
  }
};

// Initialisation that runs once, the first time it is needed; a failure is remembered and every
// later use reports it (a missing driver does not reappear).
class InitialiseOnce {
 public:
  void ensure(const std::function<void()>& initialise);

 private:
  std::mutex mutex_;
  bool done_ = false;
  std::string failure_;
};

// Device IR -> the target's code: an Artifact with arch, binary, entry_points (the kernels) and,
// where the target has one, assembly.
using DeviceCodegen = Artifact (*)(llvm::Module& module, const std::string& arch);

// One device compile: C++ (with the target's language flags) or LLVM IR -> device IR (kept for
// specialisation) -> the target's binary.
Artifact produce_device(const CompileRequest& request, const LanguageFlags& language, DeviceCodegen codegen,
                            const std::string& arch);

// A compiled device module from what its target made (entry.bitcode: the device IR, for
// specialisation); `key` its cache key.
std::shared_ptr<CompiledModule> make_device_module(const Artifact& entry, DeviceRuntime& (*runtime)(),
                                                   DeviceCodegen codegen, const std::string& key);

// A GPU target (target.h): CUDA and HIP are this one class, differing in these functions.
struct DeviceTargetSpec {
  const char* name;                                        // "cuda", "hip"
  std::string (*cache_context)(const CompileRequest&);     // the arch and toolkit that key a compile
  Artifact (*produce)(const CompileRequest&);              // the compile
  DeviceRuntime& (*runtime)();                             // the driver / runtime, opened on first use
  DeviceCodegen codegen;                                   // device IR -> binary (for specialised variants)
  std::string (*description)();                            // what was found, for reports
};

class DeviceTarget : public Target {
 public:
  explicit DeviceTarget(const DeviceTargetSpec& spec) : spec_(spec) {}
  std::string name() const override { return spec_.name; }
  std::string cache_context(const CompileRequest& request) const override { return spec_.cache_context(request); }
  Artifact produce(const CompileRequest& request) const override { return spec_.produce(request); }
  std::shared_ptr<CompiledModule> load(Artifact entry, const std::string& key,
                                       const CompileRequest& /*request*/) const override {
    return make_device_module(entry, spec_.runtime, spec_.codegen, key);
  }
  std::string description() const override { return spec_.description(); }

 private:
  DeviceTargetSpec spec_;
};

}  // namespace proteus
