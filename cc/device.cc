#include "device.h"

#include <map>

#include "llvm/IR/Module.h"

namespace proteus {
namespace {

class DeviceModule : public CompiledModule {
 public:
  DeviceModule(const Artifact& entry, DeviceRuntime& (*runtime)(), DeviceCodegen codegen, std::string key)
      : target_(entry.target), binary_(entry.binary), ptx_(entry.assembly), ir_(entry.bitcode), arch_(entry.arch),
        warnings_(entry.warnings), signatures_(entry.signatures),
        kernels_(entry.entry_points), runtime_(runtime), codegen_(codegen), key_(std::move(key)) {}
  ~DeviceModule() override {
    if (module_) runtime_().unload(module_);
  }
  uint64_t address(const std::string& name) override {
    throw SymbolNotFound("'" + name + "' is in a GPU module: GPU code has no host address; use get_kernel()");
  }
  std::vector<std::string> function_names() const override { return kernels_; }
  std::string ir() const override { return describe_bitcode(ir_, false); }
  std::string ptx() const override { return ptx_; }
  std::string cubin() const override { return binary_; }
  std::string arch() const override { return arch_; }
  std::string warnings() const override { return warnings_; }
  const FunctionSignature* signature(const std::string& name) const override {
    auto it = signatures_.find(name);
    return it == signatures_.end() ? nullptr : &it->second;
  }
  void* kernel(const std::string& name) override {
    DeviceRuntime& runtime = runtime_();
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto known = functions_.find(name); known != functions_.end()) return known->second;
    if (!module_) module_ = runtime.load(binary_.empty() ? ptx_ : binary_);  // PTX: the driver JIT-compiles it
    void* function = runtime.function(module_, name);
    functions_.emplace(name, function);  // valid while the module is loaded: as long as this object
    return function;
  }
  void launch(void* kernel, const unsigned* grid, const unsigned* block, unsigned shmem, void* stream,
              void** params) override {
    runtime_().launch(kernel, grid, block, shmem, stream, params);
  }

  // The kernel `name` with the given arguments folded to constants, in a module of its own.
  std::shared_ptr<CompiledModule> variant(const std::string& name, const std::string& arg_codes,
                                          const std::vector<std::pair<unsigned, uint64_t>>& values) override {
    if (ir_.empty()) throw CompileError("this GPU module cannot be specialised (compiled by nvcc: no IR)");
    std::string key = variant_key(key_, ir_, name, arg_codes, values);
    // Copies, not `this`: the work may outlive this call (run_contained).
    auto work = [ir = ir_, arch = arch_, codegen = codegen_, name, values] {
      auto context = new_context();
      std::unique_ptr<llvm::Module> module = reload_bitcode(ir, *context, "the device IR");
      llvm::Function* fn = module->getFunction(name);
      if (!fn || fn->isDeclaration()) throw SymbolNotFound("kernel '" + name + "' is not defined in the module's IR");
      fold_arguments(*fn, values);
      for (const char* keep_alive : {"llvm.used", "llvm.compiler.used"})  // e.g. HIP's __hip_cuid_*
        if (auto* gv = module->getNamedGlobal(keep_alive)) gv->eraseFromParent();
      for (llvm::Function& other : *module)  // only this kernel stays; what it does not use goes
        if (&other != fn && !other.isDeclaration()) other.setLinkage(llvm::GlobalValue::InternalLinkage);
      erase_unused(*module, fn, /*internal_globals_only=*/false);  // nothing links to a variant
      for (llvm::GlobalVariable& gv : module->globals())  // device globals cannot be shared across modules
        if (!gv.isConstant() && !gv.isDeclaration() && !gv.getName().starts_with("llvm.") &&
            gv.getAddressSpace() != 3 /* shared memory is per block anyway */)
          throw CompileError("kernel '" + name + "' uses the device global '" + gv.getName().str() +
                             "', which a specialised copy could not share");
      return codegen(*module, arch);
    };
    Artifact entry = cached_or_produced(key, target_, work, "specialising kernel '" + name + "'");
    return std::make_shared<DeviceModule>(entry, runtime_, codegen_, key);
  }

 private:
  std::string target_, binary_, ptx_, ir_, arch_, warnings_;
  Signatures signatures_;
  std::vector<std::string> kernels_;
  DeviceRuntime& (*runtime_)();
  DeviceCodegen codegen_;
  std::string key_;
  std::mutex mutex_;
  void* module_ = nullptr;
  std::map<std::string, void*> functions_;  // kernel handles by name
};

}  // namespace

void RuntimeLibrary::open(std::initializer_list<const char*> candidates, const std::string& what_for) {
  std::string errors;
  for (const char* candidate : candidates) {
    if ((handle = dlopen(candidate, RTLD_NOW | RTLD_LOCAL))) {
      name = candidate;
      return;
    }
    errors += std::string("\n  ") + dlerror();
  }
  throw DeviceError("cannot load " + std::string(*candidates.begin()) + " (" + what_for + "):" + errors);
}

void InitialiseOnce::ensure(const std::function<void()>& initialise) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (done_) return;
  if (!failure_.empty()) throw DeviceError(failure_);
  try {
    initialise();
    done_ = true;
  } catch (const std::exception& e) {
    failure_ = e.what();
    throw DeviceError(failure_);
  }
}

std::shared_ptr<CompiledModule> make_device_module(const Artifact& entry, DeviceRuntime& (*runtime)(),
                                                   DeviceCodegen codegen, const std::string& key) {
  return std::make_shared<DeviceModule>(entry, runtime, codegen, key);
}

Artifact produce_device(const CompileRequest& request, const LanguageFlags& language, DeviceCodegen codegen,
                            const std::string& arch) {
  auto context = new_context();
  int64_t started = wall_clock_ns();
  FrontendFindings found;
  std::unique_ptr<llvm::Module> module =
      request.frontend == "cpp"    ? compile_cpp(request, *context, language, &found)
      : request.frontend == "mlir" ? compile_mlir(request, *context, language.device_libraries, &found.signatures)
                                   : parse_ir_text(request, *context);
  std::string ir = keep_bitcode(*module);
  Artifact entry = codegen(*module, arch);
  entry.bitcode = std::move(ir);
  entry.warnings = std::move(found.warnings);
  entry.signatures = std::move(found.signatures);  // the kernels' (and host functions') declarations
  entry.reusable = snapshot_inputs(found.read_files, started, &entry.inputs);
  return entry;
}


}  // namespace proteus
