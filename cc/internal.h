// Internal interfaces between the engine's translation units (LLVM types allowed here).
#pragma once

#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/Module.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Target/TargetMachine.h"
#include "proteus/engine.h"

namespace clang {
class ASTConsumer;
}
namespace llvm::jitlink {
class JITLinkMemoryManager;
}

namespace proteus {

// settings.cc: the other typed reads of the settings table (flag/count ones are in engine.h).
// Optimisation levels are 0-3, and for the IR also these two (clang's -Os and -Oz).
inline constexpr int kOptSize = 4, kOptMinSize = 5;
int level_setting(const char* name);
// The clang flag for a level: "-O2", "-Os", "-Oz".
inline std::string opt_flag(int level) {
  return level == kOptSize ? "-Os" : level == kOptMinSize ? "-Oz" : "-O" + std::to_string(level);
}
std::string text_setting(const char* name);  // the value, else the default ("" for none)
inline int opt_level() { return level_setting("PROTEUS_OPT_LEVEL"); }
inline int codegen_opt_level() { return level_setting("PROTEUS_CODEGEN_OPT_LEVEL"); }

// cpp_frontend.cc: C++ (or CUDA) source -> optimised LLVM module (clang runs -O<opt_level> itself).
struct LanguageFlags {
  std::string language = "c++";       // clang -x
  std::string standard = "-std=c++17";  // the default; extra_args may give another
  std::vector<std::string> target = {"-march=native", "-fPIC"};
  bool precompiled_headers = true;
  // The code runs in this process: extra_args that change its target, data layout or calling
  // convention are rejected (std::invalid_argument naming the flag), as are those that crash clang
  // when it runs in-process.
  bool runs_in_this_process = true;
  // False (the host): clang emits unoptimised IR (-disable-llvm-passes) and the caller runs
  // optimize() once, with a pooled TargetMachine. GPU languages let clang run its own pipeline.
  bool clang_optimises = false;
  // GPU targets: the bitcode libraries (libdevice; OCML, OCKL and its controls) linked into device
  // code lowered from MLIR for the math functions it calls (clang links them itself for C++).
  std::vector<std::string> device_libraries;
};
// What a frontend run found besides the module.
struct FrontendFindings {
  // The absolute paths of the files it read (headers, system ones too; those of a precompiled
  // header it used), for the cache (inputs.cc).
  std::vector<std::string> read_files;
  Signatures signatures;  // of the functions the source defines (signatures.cc); host compiles only
  std::string warnings;   // clang's warning diagnostics, as it prints them; "" for none
};
// The host's C17 (frontend="c"): no precompiled headers (they are made for C++).
LanguageFlags c_language();
// C++ (C, CUDA, HIP) -> LLVM IR, with what it found in *findings (if given).
std::unique_ptr<llvm::Module> compile_cpp(const CompileRequest& request, llvm::LLVMContext& context,
                                          const LanguageFlags& language = LanguageFlags(),
                                          FrontendFindings* findings = nullptr);

// mlir_frontend.cc: MLIR source -> LLVM module, lowered by mlir_pipeline(request.target): for
// "host" the module's functions (their signatures from the MLIR types into *signatures); for
// "cuda"/"hip" its one gpu.module (the kernels' signatures), with `device_libraries` linked.
std::unique_ptr<llvm::Module> compile_mlir(const CompileRequest& request, llvm::LLVMContext& context,
                                           const std::vector<std::string>& device_libraries, Signatures* signatures);
// The MLIR pass pipeline of a target, as text (it keys the cache).
std::string mlir_pipeline(const std::string& target);

// signatures.cc: a clang AST consumer that records the signatures of the externally visible
// functions the main file defines; the signatures of the functions an LLVM IR module defines.
std::unique_ptr<clang::ASTConsumer> signature_collector(Signatures* out);
void ir_signatures(const llvm::Module& module, Signatures* out);
// The call kind proteus passes (engine.h CType::code) for a scalar of this kind and size (0: none),
// and the struct-module format letter of such an element (what NumPy and memoryview report), so a
// buffer's format can be compared with it. Every frontend's signatures use these.
char scalar_code(bool is_float, bool is_signed, uint64_t bits);
char element_format(bool is_float, bool is_signed, uint64_t bits);

// The leading `#include <...>` lines of a source (blank and // comment lines may sit between): the
// part a precompiled header can stand for. "" when the source does not start that way.
std::string include_prefix(const std::string& source);

// Precompiled headers made and used by compile_cpp in this process.
uint64_t pch_build_count();
uint64_t pch_use_count();

// LLVM IR text or bitcode -> verified module (parse_ir: for the host `tm`, its triple and data
// layout filled in when absent, another architecture refused).
std::unique_ptr<llvm::Module> parse_ir_text(const CompileRequest& request, llvm::LLVMContext& context);
std::unique_ptr<llvm::Module> parse_ir(const CompileRequest& request, llvm::LLVMContext& context,
                                       const llvm::TargetMachine& tm);
// A module for the host `tm`: its triple and data layout filled in when absent; CompileError if it
// targets another architecture (`what` names the source in the message).
void adopt_host_target(llvm::Module& module, const llvm::TargetMachine& tm, const std::string& what);

struct Artifact;
// call_thunk.cc: what thunks call with a C++ exception they caught (its mangled type name and,
// for a std::exception, its what()); each module's JITDylib defines it for its code.
void exception_caught(const char* mangled_type, const char* what);

// jit.cc: the cache key of a specialised variant; a result from the persistent cache or `produce`.
std::string variant_key(const std::string& base_key, const std::string& base_ir, const std::string& name,
                        const std::string& arg_codes, const std::vector<std::pair<unsigned, uint64_t>>& values);
// `produce` runs contained (run_contained) and must own what it uses; `what` names it in messages.
// The result carries `target`'s name (the cache gives it back to that target only).
Artifact cached_or_produced(const std::string& key, const std::string& target,
                            const std::function<Artifact()>& produce, const std::string& what);

// jit.cc: a host object linked into the process as a module of its own, resolving against the
// request's link= modules (the host target's load).
std::shared_ptr<CompiledModule> link_host_module(const std::string& key, Artifact entry, const CompileRequest& request);
// jit_memory.cc: the memory host modules are linked into, modules packed into shared pages; nullptr
// where this system refuses its mappings.
std::unique_ptr<llvm::jitlink::JITLinkMemoryManager> packed_jit_memory();
// host_target.cc: the variant of `name` (a function in the kept bitcode of a host module) with the
// given arguments folded to constants, compiled to link against that module.
Artifact produce_host_variant(const std::string& base_bitcode, const std::string& name, const std::string& codes,
                              const std::vector<std::pair<unsigned, uint64_t>>& values);

// codegen.cc
// A context for one compile. An error diagnostic that nothing else handles (LLVM would print it and
// exit the process, e.g. bad module asm met while writing bitcode) ends the compile as CompileError.
std::unique_ptr<llvm::LLVMContext> new_context();
// A TargetMachine for this process's CPU at the codegen level in force, lent for one compile: it
// goes back to a small pool when released (making one, and its CPU subtarget on first use, is a
// good part of a small compile). A compile that crashes never gives its machine back.
struct ReturnHostMachine {
  void operator()(llvm::TargetMachine* tm) const;
};
using HostMachine = std::unique_ptr<llvm::TargetMachine, ReturnHostMachine>;
HostMachine host_target_machine();
void optimize(llvm::Module& module, llvm::TargetMachine& tm, int level);
// Replaces llvm.global_ctors by one function named kInitFunction (run after linking).
void lower_static_constructors(llvm::Module& module);
// The code of `module` for `tm`: an object or assembly (PTX); backend diagnostics become CompileError.
std::string emit_code(llvm::Module& module, llvm::TargetMachine& tm, llvm::CodeGenFileType type);
// How a GPU target's code is generated: the differences between targets are these fields.
struct DeviceMachine {
  const char* triple;                            // "nvptx64-nvidia-cuda"
  std::optional<llvm::Reloc::Model> relocation;  // none: the target's default
  const char* target_option;                     // how the user names it, for messages: "target='cuda'"
  void (*initialise)();                          // registers the LLVM target (run once)
  llvm::CodeGenFileType output;                  // assembly (PTX) or an object
};
// A device module -> its code for `arch`: the module gets the machine's triple if it has none (else
// it must have it) and data layout, is optimised at PROTEUS_OPT_LEVEL, then emitted.
std::string device_code(llvm::Module& module, const DeviceMachine& machine, const std::string& arch);
inline constexpr const char* kInitFunction = "__proteus_module_init";
// A module's IR as it is kept (Artifact::bitcode: compressed bitcode), and back again in `context`
// (CompileError naming `what` if it cannot be).
std::string keep_bitcode(const llvm::Module& module);
std::unique_ptr<llvm::Module> reload_bitcode(const std::string& kept, llvm::LLVMContext& context,
                                             const std::string& what);
// Kept IR -> its text, or (with `assembly`) the host assembly of it. Runs contained; "" for none kept.
std::string describe_bitcode(const std::string& kept, bool assembly);
// Erases, until nothing changes, internal functions other than `keep` and global variables that
// nothing uses (only internal ones if `internal_globals_only`: a host variant links against the
// base module's external globals). Specialised variants keep just what their function reaches.
void erase_unused(llvm::Module& module, const llvm::Function* keep, bool internal_globals_only);
// Replaces the given arguments of `fn` by constants (raw 8-byte slot values, as thunks pass them).
void fold_arguments(llvm::Function& fn, const std::vector<std::pair<unsigned, uint64_t>>& values);

// version.cc: the proteus version this library was built as.
const char* build_version();

// system.cc: files, processes, PATH and where the engine's shared object lives.
bool path_exists(const std::string& path);
bool is_directory(const std::string& path);
bool is_executable(const std::string& path);
std::vector<std::string> executables_on_path(const std::string& name);  // in PATH order
std::string read_file_bytes(const std::string& path);
void write_file_bytes(const std::string& path, const std::string& data);
std::string library_directory();  // of the shared object (or executable) holding the engine
// Runs argv (no shell); returns the exit status, appends stdout+stderr to *output.
int run_command(const std::vector<std::string>& argv, std::string* output);
// The first line argv prints, or "" if it fails.
std::string first_output_line(const std::vector<std::string>& argv);
// A private temporary directory, removed with its contents.
struct TempDir {
  std::string path;
  TempDir();
  ~TempDir();
};

// A setting resolved from environment variables (a toolkit root, the header search): resolved
// once per distinct tuple of their values, so tests and users may change them between compiles.
// A resolution that throws is not cached (the user may fix the setting).
template <typename T>
class EnvironmentCache {
 public:
  EnvironmentCache(std::vector<const char*> variables, T (*resolve)()) : variables_(std::move(variables)), resolve_(resolve) {}
  T get() {
    std::string key;
    for (const char* var : variables_) {
      const char* value = std::getenv(var);
      key += std::string(value ? value : "\x01") + '\0';  // unset differs from empty
    }
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    T found = resolve_();
    cache_.emplace(key, found);
    return found;
  }

 private:
  std::vector<const char*> variables_;
  T (*resolve_)();
  std::mutex mutex_;
  std::map<std::string, T> cache_;
};

// contain.cc (ARCHITECTURE 6, "Containment and cancellation").
// Once per process: LLVM's targets, its fatal-error and allocation-failure handlers, crash recovery.
void install_engine_handlers();
// Runs `work` on a worker thread with a large stack under LLVM's crash recovery: a crash, fatal
// error or allocation failure inside it becomes CompileError / CompileOutOfMemory. The caller
// waits, calling the wait hook every 50 ms; Ctrl-C (the hook) or `timeout_seconds` (> 0) give up
// waiting (CompileCancelled / CompileTimeout) and the worker stops at its next checkpoint. `work`
// must own what it uses: it may outlive this call. `what` ("compiling source.cpp") names it in messages.
void run_contained_job(std::function<void()> work, const std::string& what, double timeout_seconds);
// The same for work with a result: the value `work` returns. The result lives with the work, which
// may outlive a caller that gave up.
template <typename Work>
auto run_contained(Work work, const std::string& what, double timeout_seconds) -> decltype(work()) {
  auto result = std::make_shared<decltype(work())>();
  run_contained_job([result, work = std::move(work)]() mutable { *result = work(); }, what, timeout_seconds);
  return std::move(*result);
}
// Ends the contained work now with CompileError(reason) (outside contained work: throws it). For
// failures deep inside LLVM, where unwinding a C++ exception through its frames is not safe.
[[noreturn]] void fail_contained(const std::string& reason);
// Inside contained work: stops it here if its caller gave up or the process is exiting. Called where
// stopping is safe (no lock held): between passes, on file opens, between frontend stages.
void checkpoint();
// Runs fn on a thread with a large stack (deeply nested code), rethrowing its exception; not contained.
void run_with_large_stack(const std::function<void()>& fn);

}  // namespace proteus
