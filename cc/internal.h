// Internal interfaces between libproteus' translation units (LLVM types allowed here).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Target/TargetMachine.h"
#include "proteus/engine.h"

namespace proteus {

// Environment knobs (DESIGN 6), read on each use so tests can vary them per process.
int opt_level();          // PROTEUS_OPT_LEVEL, default 3
int codegen_opt_level();  // PROTEUS_CODEGEN_OPT_LEVEL, default 3

// cpp_frontend.cc: C++ (or CUDA) source -> optimised LLVM module (clang runs -O<opt_level> itself).
struct LanguageFlags {
  std::string language = "c++";  // clang -x
  std::vector<std::string> target = {"-march=native", "-fPIC"};
  bool precompiled_headers = true;
};
std::unique_ptr<llvm::Module> compile_cpp(const CompileRequest& request, llvm::LLVMContext& context,
                                          const LanguageFlags& language = LanguageFlags());
std::string clang_resource_dir();  // of the header search in use

// Precompiled headers made and used by compile_cpp in this process.
uint64_t pch_build_count();
uint64_t pch_use_count();

// LLVM IR text or bitcode -> verified module (parse_ir: for the host, optimised).
std::unique_ptr<llvm::Module> parse_ir_text(const CompileRequest& request, llvm::LLVMContext& context);
std::unique_ptr<llvm::Module> parse_ir(const CompileRequest& request, llvm::LLVMContext& context);

// cuda_target.cc: target="cuda". The cache context (arch, toolkit or nvcc) that keys a CUDA
// compile; the compile itself (cubin in `object`, PTX in `bitcode`, arch in `functions[0]`);
// the GPU module made from its result.
struct CachedObject;
std::string cuda_cache_context(const CompileRequest& request);
CachedObject produce_cuda(const CompileRequest& request);
// hip_target.cc: target="hip", the same pieces.
std::string hip_cache_context(const CompileRequest& request);
CachedObject produce_hip(const CompileRequest& request);

// jit.cc: the cache key of a specialised variant; a result from the persistent cache or `produce`.
std::string variant_key(const std::string& base_key, const std::string& name, const std::string& arg_codes,
                        const std::vector<std::pair<unsigned, uint64_t>>& values);
CachedObject cached_or_produced(const std::string& key, const std::function<CachedObject()>& produce);
// device.cc: a specialised variant of a GPU module's kernel.
std::shared_ptr<CompiledModule> device_variant(const std::shared_ptr<CompiledModule>& base, const std::string& name,
                                               const std::string& arg_codes,
                                               const std::vector<std::pair<unsigned, uint64_t>>& values);

// codegen.cc
std::unique_ptr<llvm::TargetMachine> host_target_machine();
void optimize(llvm::Module& module, llvm::TargetMachine& tm, int level);
// Replaces llvm.global_ctors by one function named kInitFunction (run after linking).
void lower_static_constructors(llvm::Module& module);
// Emits an ELF object; diagnostics of the backend become CompileError.
std::unique_ptr<llvm::MemoryBuffer> emit_object(llvm::Module& module, llvm::TargetMachine& tm);
inline constexpr const char* kInitFunction = "__proteus_module_init";
// Replaces the given arguments of `fn` by constants (raw 8-byte slot values, as thunks pass them).
void fold_arguments(llvm::Function& fn, const std::vector<std::pair<unsigned, uint64_t>>& values);

// version.cc: the proteus version this library was built as.
const char* build_version();

// Reports LLVM fatal errors as exceptions instead of exiting the process.
void install_fatal_error_handlers();
// Runs fn on a thread with a large stack (deeply nested sources), rethrowing its exception.
void run_with_large_stack(const std::function<void()>& fn);

}  // namespace proteus
