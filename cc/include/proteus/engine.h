// The JIT engine's API, what the Python module (cc/python) builds on. LLVM-free on purpose: the
// engine links LLVM and Clang statically behind it, so no LLVM type or header reaches its users.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace proteus {

// Bad source, invalid IR, undefined symbols, a broken toolchain setting: carries the diagnostics.
class CompileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A setting (a PROTEUS_* variable) whose value cannot be used: the message names it and the fix.
class ConfigError : public CompileError {
 public:
  using CompileError::CompileError;
};

// The GPU runtime (CUDA driver, HIP runtime) is missing or failed: the message carries its error name.
class DeviceError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A compile given up before it finished: its caller was interrupted (the wait hook, below) or the
// process is exiting. The engine stays usable; the abandoned work stops at its next checkpoint.
class CompileCancelled : public CompileError {
 public:
  using CompileError::CompileError;
};

// A compile that ran past CompileRequest::timeout (then cancelled).
class CompileTimeout : public CompileCancelled {
 public:
  using CompileCancelled::CompileCancelled;
};

// Clang or LLVM could not allocate memory during a compile; the engine stays usable.
class CompileOutOfMemory : public CompileError {
 public:
  using CompileError::CompileError;
};

// The persistent cache directory cannot be used safely (wrong owner or permissions).
class CacheError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A name that the compiled module does not define.
class SymbolNotFound : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class CompiledModule;

struct CompileRequest {
  std::string source;  // bytes: C++ text, LLVM IR text, or LLVM bitcode
  std::string source_name = "source.cpp";  // the file name diagnostics show
  std::string frontend = "cpp";            // "cpp" | "llvmir"
  std::vector<std::string> extra_args;     // extra clang (or nvcc) arguments (cpp only)
  bool verify = false;                     // run the IR verifier on the generated IR
  std::string target = "host";             // a registered target: "host", "cuda", "hip" (target_names())
  std::string compiler = "clang";          // "clang" | "nvcc" (cuda only)
  double timeout = 0;                      // seconds; > 0: CompileTimeout past it
  bool internal = false;                   // made by the engine itself (a call thunk): counted apart
  // Host modules whose exported functions and variables this one's code may use (it keeps them alive).
  std::vector<std::shared_ptr<CompiledModule>> link;
};

// Called about every 50 ms by a thread waiting for a compile (on that thread): returning true gives
// up waiting (CompileCancelled). The Python module checks for Ctrl-C this way. Set once.
void set_wait_hook(bool (*hook)());

// A C type of a function's signature as its source declares it (ARCHITECTURE 4, "Signatures").
struct CType {
  char code = 0;               // the call kind (call_thunk letters; 'v' void result); 0: proteus cannot pass it
  char pointee = 0;            // for 'p': the element as a struct-module format letter (d f q Q i I h H b B ?),
                               // 'v' void, '*' another type; 0: not known (LLVM IR), nothing is checked
  bool pointee_const = false;  // the element is const: the buffer may be read-only
  std::string spelling;        // as the source spells it: "const double *"
  // For code 'm', an MLIR memref (pointee: its element): the sizes of its dimensions, -1 for a
  // dynamic one. It takes an array, passed as MLIR's memref descriptor (3 + 2 * rank slots).
  std::vector<int64_t> memref_shape;
};
struct FunctionSignature {
  CType result;
  std::vector<CType> params;
  std::string problem;  // why it cannot be called at all ("it is a member function"), or ""
};
using Signatures = std::map<std::string, FunctionSignature>;  // by symbol name

// The compiled, linked code of one compile() call. Freed (static destructors run, memory
// returned) when the last reference goes.
class CompiledModule {
 public:
  virtual ~CompiledModule() = default;
  // Address of a defined symbol; throws SymbolNotFound naming it.
  virtual uint64_t address(const std::string& name) = 0;
  // Names of the functions the module defines (sorted).
  virtual std::vector<std::string> function_names() const = 0;
  // GPU modules: the device code (CUDA: PTX text; HIP: none), the binary (cubin or AMDGPU code
  // object; empty if only PTX exists), the arch ("sm_90", "gfx90a"), a kernel's runtime handle
  // (loading the module on first use), and launching it on `stream` (0: the default stream) with
  // `params` = one pointer per argument. Runtime errors are DeviceError with the runtime's
  // error name and text; a missing runtime library names it. kernel() is thread-safe and caches
  // the handle per name: callers need not keep it.
  // The module's optimised LLVM IR as text (device IR for GPU modules) and, for host modules, its
  // x86-64/AArch64 assembly; "" where none is kept (specialised host variants keep no IR).
  virtual std::string ir() const { return ""; }
  virtual std::string assembly() const { return ""; }
  virtual std::string ptx() const { return ""; }
  virtual std::string cubin() const { return ""; }
  virtual std::string arch() const { return ""; }
  virtual void* kernel(const std::string& name) { throw SymbolNotFound("'" + name + "': not a GPU module"); }
  virtual void launch(void* /*kernel*/, const unsigned* /*grid*/, const unsigned* /*block*/, unsigned /*shmem*/,
                      void* /*stream*/, void** /*params*/) {
    throw std::runtime_error("not a GPU module");
  }
  // The compiler's warnings for the source, as clang printed them ("" for none; kept in the cache).
  virtual std::string warnings() const { return ""; }
  // The signature of the function `name` as its source declares it, or nullptr if not known.
  virtual const FunctionSignature* signature(const std::string& /*name*/) const { return nullptr; }
  // The variant of `name` that specialize() returns (each kind of module makes its own).
  virtual std::shared_ptr<CompiledModule> variant(const std::string& name, const std::string& /*arg_codes*/,
                                                  const std::vector<std::pair<unsigned, uint64_t>>& /*values*/) {
    throw CompileError("'" + name + "': this module cannot be specialised");
  }
};
// The compile targets this engine has ("host", and "cuda" / "hip" in the GPU backends), and for
// reports what one found (the CUDA toolkit or ROCm root and how, or why none): "" for an unknown name.
std::vector<std::string> target_names();
std::string target_description(const std::string& name);

// Compiles and links for the host CPU. Thread-safe; an identical request made while an earlier
// result is still alive returns that same module (the in-memory cache).
std::shared_ptr<CompiledModule> compile(const CompileRequest& request);

// A variant of function `name` of `base` with the arguments at the given indices replaced by the
// given values (raw 8-byte slots, as call thunks read them) and re-optimised; `arg_codes` is the
// function's argument kinds (see call_thunk). Cached in memory by the caller, on disk here.
// Throws CompileError if the function cannot be specialised.
std::shared_ptr<CompiledModule> specialize(const std::shared_ptr<CompiledModule>& base,
                                                       const std::string& name, const std::string& arg_codes,
                                                       const std::vector<std::pair<unsigned, uint64_t>>& values);

// How the frontend finds headers (ARCHITECTURE 6): for reports and tests.
std::string header_search_description();

// Scalar kinds for call thunks. One letter each: b=i8 i=i32 l=i64 I=u32 L=u64 f=f32 d=f64 p=ptr v=void.
// A thunk calls `fn` with arguments read from 8-byte slots and writes the result to `ret`.
// A C++ exception escaping `fn` is caught in the thunk, which then returns nonzero (else 0); what
// it was is in last_native_exception() on the calling thread.
using CallThunk = int (*)(void* fn, const uint64_t* args, void* ret);
struct NativeException {
  std::string type_name;  // demangled, e.g. "std::runtime_error"
  std::string what;       // what(), for a std::exception
  bool has_what = false;  // false: not derived from std::exception (e.g. `throw 42`)
};
const NativeException& last_native_exception();
// The thunk for a signature "r(args)", e.g. "i(i)" for int(int). Compiled once, kept for the process.
CallThunk call_thunk(const std::string& signature);

// The environment variables the engine reads (ARCHITECTURE 6, "Settings"), for reports and docs,
// and typed reads through one parser per kind (a bad value: ConfigError naming variable and value).
struct Setting {
  std::string name;
  std::string kind;      // "flag" (1/0, true/false, on/off, yes/no), "level" (0-3), "opt-level" (0-3, s, z),
                         // "count", "bytes", "path", "text"
  std::string fallback;  // the default; "" when there is none or it is worked out (see doc)
  std::string doc;
};
const std::vector<Setting>& settings();
bool flag_setting(const char* name);
uint64_t count_setting(const char* name);

// Statistics for this process (tests and benchmarks read them).
struct EngineStats {
  uint64_t frontend_runs = 0;      // compile() calls that ran the compiler (no cache had the result)
  uint64_t compiles = 0;           // compile() calls
  uint64_t internal_compiles = 0;  // what the engine compiles for itself: call thunks, specialised variants
  uint64_t internal_runs = 0;      // ... of those, how many ran the compiler
  uint64_t memory_hits = 0;        // compile() calls served by the in-memory cache
  uint64_t disk_hits = 0;          // persistent-cache lookups (users' and internal) that hit
  uint64_t disk_misses = 0;        // ... that missed and compiled
  uint64_t pch_builds = 0;     // precompiled headers built
  uint64_t pch_uses = 0;       // C++ compiles that used a precompiled header
};
EngineStats engine_stats();

// The persistent object cache (PROTEUS_CACHE_DIR, PROTEUS_USE_STORED_CACHE, PROTEUS_CACHE_MAX_BYTES).
struct CacheInfo {
  bool enabled = false;
  std::string directory;
  uint64_t entries = 0;
  uint64_t bytes = 0;
  uint64_t max_bytes = 0;
};
CacheInfo cache_info();
// Removes every entry; returns how many. Throws CacheError for an unsafe directory.
uint64_t clear_cache();

// The cache chain (PROTEUS_OBJECT_CACHE_CHAIN; ARCHITECTURE 6, "The cache chain"): the levels a
// compile looks its key up in, in order, before compiling. "storage" is the persistent cache
// above; the others (an MPI job's rank 0, an HTTP cache) are made by the Python module through
// the factory it sets. Their entries are the cache's file bytes, checked by the engine as it
// checks its own files: a damaged or foreign entry is a miss.
class SharedCacheLevel {
 public:
  virtual ~SharedCacheLevel() = default;
  // The entry stored under `key`, or nothing: then the caller compiles it and calls store() or,
  // if the compile fails, abandon() (an MPI level makes other ranks wanting `key` wait meanwhile).
  // May throw: the lookup counts as an error and a miss.
  virtual std::optional<std::string> lookup(const std::string& key) = 0;
  virtual void store(const std::string& key, const std::string& entry) = 0;
  virtual void abandon(const std::string& /*key*/) {}
  virtual std::string describe() const { return ""; }  // for reports: the server, the ranks
};
// What a level of the chain may be configured with (read by the engine's settings).
struct SharedLevelOptions {
  double http_timeout_seconds = 5;
  uint64_t http_max_bytes = 0;
  std::string http_header;      // "Name: value", or ""
  std::string mpi_directory;    // mpi-local-lookup's shared directory
  double mpi_timeout_seconds = 300;
};
// Makes the level a chain entry names ("mpi-local-lookup", "http://host:port/prefix", ...);
// throws ConfigError (e.g. mpi4py missing) with the fix.
using SharedLevelFactory = std::unique_ptr<SharedCacheLevel> (*)(const std::string& spec,
                                                                 const SharedLevelOptions& options);
void set_shared_level_factory(SharedLevelFactory factory);
struct CacheLevelInfo {
  std::string name;         // as the chain names it
  std::string description;  // what it is ("" for none yet: made at the first lookup)
  uint64_t hits = 0, misses = 0;
  uint64_t rejected = 0;  // entries it returned that failed the checks (counted as misses too)
  uint64_t errors = 0;    // lookups or stores that failed (a timeout, a server down)
  std::string last_error;
};
// The chain in force (PROTEUS_OBJECT_CACHE_CHAIN; ConfigError for a bad one) and this process's
// counts per level; levels not used yet are listed, not made.
std::vector<CacheLevelInfo> cache_chain_info();

std::string llvm_version();

// How the engine was compiled: "optimized" (-O2 or more with NDEBUG, what release wheels ship) or
// "unoptimized". The same words, prefixed "proteus-build-mode=", are in the binary for checks.
const char* build_mode();

}  // namespace proteus
