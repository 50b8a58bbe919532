#include "device.h"

#include "llvm/Bitcode/BitcodeReader.h"
#include "llvm/Bitcode/BitcodeWriter.h"
#include "llvm/IR/Module.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

extern char** environ;

namespace proteus {
namespace {

class DeviceModule : public CompiledModule {
 public:
  DeviceModule(const CachedObject& entry, DeviceRuntime& (*runtime)(), DeviceCodegen codegen, std::string key)
      : binary_(entry.object), ptx_(entry.ptx), ir_(entry.bitcode), runtime_(runtime), codegen_(codegen),
        key_(std::move(key)) {
    if (!entry.functions.empty()) {
      arch_ = entry.functions[0];
      kernels_.assign(entry.functions.begin() + 1, entry.functions.end());
    }
  }
  ~DeviceModule() override {
    if (module_) runtime_().unload(module_);
  }
  uint64_t address(const std::string& name) override {
    throw SymbolNotFound("'" + name + "' is in a GPU module: GPU code has no host address; use get_kernel()");
  }
  std::vector<std::string> function_names() const override { return kernels_; }
  std::string ptx() const override { return ptx_; }
  std::string cubin() const override { return binary_; }
  std::string arch() const override { return arch_; }
  void* kernel(const std::string& name) override {
    DeviceRuntime& runtime = runtime_();
    std::lock_guard<std::mutex> lock(mutex_);
    if (!module_) module_ = runtime.load(binary_.empty() ? ptx_ : binary_);  // PTX: the driver JIT-compiles it
    return runtime.function(module_, name);
  }
  void launch(void* kernel, const unsigned* grid, const unsigned* block, unsigned shmem, void* stream,
              void** params) override {
    runtime_().launch(kernel, grid, block, shmem, stream, params);
  }

  // The kernel `name` with the given arguments folded to constants, in a module of its own.
  std::shared_ptr<CompiledModule> variant(const std::string& name, const std::string& arg_codes,
                                          const std::vector<std::pair<unsigned, uint64_t>>& values) {
    if (ir_.empty()) throw CompileError("this GPU module cannot be specialised (compiled by nvcc: no IR)");
    std::string key = variant_key(key_, name, arg_codes, values);
    CachedObject entry = cached_or_produced(key, [&] {
      auto context = std::make_unique<llvm::LLVMContext>();
      auto parsed = llvm::parseBitcodeFile(llvm::MemoryBufferRef(ir_, "device"), *context);
      if (!parsed) throw CompileError("cannot reload the device IR: " + llvm::toString(parsed.takeError()));
      std::unique_ptr<llvm::Module> module = std::move(*parsed);
      llvm::Function* fn = module->getFunction(name);
      if (!fn || fn->isDeclaration()) throw SymbolNotFound("kernel '" + name + "' is not defined in the module's IR");
      fold_arguments(*fn, values);
      for (const char* keep_alive : {"llvm.used", "llvm.compiler.used"})  // e.g. HIP's __hip_cuid_*
        if (auto* gv = module->getNamedGlobal(keep_alive)) gv->eraseFromParent();
      for (llvm::Function& other : *module)  // only this kernel stays; what it does not use goes
        if (&other != fn && !other.isDeclaration()) other.setLinkage(llvm::GlobalValue::InternalLinkage);
      for (bool changed = true; changed;) {
        changed = false;
        for (llvm::Function& f : llvm::make_early_inc_range(*module))
          if (&f != fn && f.hasLocalLinkage() && f.use_empty()) { f.eraseFromParent(); changed = true; }
        for (llvm::GlobalVariable& gv : llvm::make_early_inc_range(module->globals()))
          if (gv.removeDeadConstantUsers(), gv.use_empty()) {  // nothing links to a variant
            gv.eraseFromParent();
            changed = true;
          }
      }
      for (llvm::GlobalVariable& gv : module->globals())  // device globals cannot be shared across modules
        if (!gv.isConstant() && !gv.isDeclaration() && !gv.getName().starts_with("llvm.") &&
            gv.getAddressSpace() != 3 /* shared memory is per block anyway */)
          throw CompileError("kernel '" + name + "' uses the device global '" + gv.getName().str() +
                             "', which a specialised copy could not share");
      return codegen_(*module, arch_);
    });
    return std::make_shared<DeviceModule>(entry, runtime_, codegen_, key);
  }

 private:
  std::string binary_, ptx_, ir_, arch_;
  std::vector<std::string> kernels_;
  DeviceRuntime& (*runtime_)();
  DeviceCodegen codegen_;
  std::string key_;
  std::mutex mutex_;
  void* module_ = nullptr;
};

}  // namespace

std::shared_ptr<CompiledModule> make_device_module(const CachedObject& entry, DeviceRuntime& (*runtime)(),
                                                   DeviceCodegen codegen, const std::string& key) {
  return std::make_shared<DeviceModule>(entry, runtime, codegen, key);
}

CachedObject produce_device(const CompileRequest& request, const LanguageFlags& language, DeviceCodegen codegen,
                            const std::string& arch) {
  auto context = std::make_unique<llvm::LLVMContext>();
  std::unique_ptr<llvm::Module> module =
      request.frontend == "cpp" ? compile_cpp(request, *context, language) : parse_ir_text(request, *context);
  std::string ir;
  {
    llvm::raw_string_ostream os(ir);
    llvm::WriteBitcodeToFile(*module, os);
  }
  CachedObject entry = codegen(*module, arch);
  entry.bitcode = std::move(ir);
  return entry;
}

std::shared_ptr<CompiledModule> device_variant(const std::shared_ptr<CompiledModule>& base, const std::string& name,
                                               const std::string& arg_codes,
                                               const std::vector<std::pair<unsigned, uint64_t>>& values) {
  return static_cast<DeviceModule&>(*base).variant(name, arg_codes, values);  // arch() != "": a DeviceModule
}

TempDir::TempDir() {
  char templ[] = "/tmp/proteus-device.XXXXXX";
  if (!mkdtemp(templ)) throw CompileError("cannot create a temporary directory in /tmp");
  path = templ;
}

TempDir::~TempDir() {
  std::string output;
  run_command({"rm", "-rf", path}, &output);
}

int run_command(const std::vector<std::string>& argv, std::string* output) {
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) return -1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 2);
  posix_spawn_file_actions_addclose(&actions, pipe_fds[0]);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (rc != 0) {
    close(pipe_fds[0]);
    output->append(argv[0] + ": cannot run it\n");
    return -1;
  }
  char buf[4096];
  ssize_t n;
  while ((n = read(pipe_fds[0], buf, sizeof buf)) > 0) output->append(buf, n);
  close(pipe_fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream data;
  data << in.rdbuf();
  return data.str();
}

void write_file_bytes(const std::string& path, const std::string& data) {
  std::ofstream(path, std::ios::binary) << data;
}

bool path_exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::string library_directory() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&library_directory), &info) == 0 || !info.dli_fname) return ".";
  std::string path = info.dli_fname;
  return path.substr(0, path.rfind('/'));
}

}  // namespace proteus
