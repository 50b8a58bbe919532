// The engine core: the process-wide linker of host modules (JITLink), and the caches
// (keys, memory, disk) in front of every target. The targets themselves: host_target.cc and the
// device targets (cc/target.h); call thunks: call_thunk.cc.
#include <dlfcn.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "internal.h"
#include "target.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/ExecutionEngine/JITLink/EHFrameSupport.h"
#include "llvm/ExecutionEngine/JITLink/JITLink.h"
#include "llvm/ExecutionEngine/JITLink/JITLinkMemoryManager.h"
#include "llvm/ExecutionEngine/Orc/SymbolStringPool.h"
#include "llvm/ExecutionEngine/Orc/TargetProcess/RegisterEHFrames.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/Triple.h"

namespace proteus {
namespace {

using namespace llvm::orc;

// What users asked for (compile() calls, and those that ran the compiler) apart from what the engine
// compiles for itself (call thunks, specialised variants): engine.h EngineStats.
std::atomic<uint64_t> frontend_runs{0}, compiles{0}, internal_compiles{0}, internal_runs{0};
std::atomic<uint64_t> memory_hits{0}, disk_hits{0}, disk_misses{0};

// C++ static destructors of JIT'd code register through __cxa_atexit with their module's
// __dso_handle. We define both per module so they run when the module is freed, not at
// process exit (when the code is gone).
std::mutex atexit_mutex;
std::map<void*, std::vector<std::pair<void (*)(void*), void*>>> atexit_by_dso;

int module_cxa_atexit(void (*fn)(void*), void* arg, void* dso) {
  std::lock_guard<std::mutex> lock(atexit_mutex);
  atexit_by_dso[dso].emplace_back(fn, arg);
  return 0;
}

void run_module_destructors(void* dso) {
  std::vector<std::pair<void (*)(void*), void*>> pending;
  {
    std::lock_guard<std::mutex> lock(atexit_mutex);
    auto it = atexit_by_dso.find(dso);
    if (it == atexit_by_dso.end()) return;
    pending = std::move(it->second);
    atexit_by_dso.erase(it);
  }
  for (auto it = pending.rbegin(); it != pending.rend(); ++it) it->first(it->second);
}

// The process-wide linker. Host objects are linked by JITLink directly, without an ORC session: a
// module's externals are resolved against the engine's runtime symbols, the modules it links to and
// the process, and its symbol table is a sorted vector of its own. (An ORC JITDylib per module cost
// ~10 KiB of symbol-table buckets, more than the code: docs/ARCHITECTURE.md "Host linking and JIT
// memory".)
struct Linker {
  std::shared_ptr<SymbolStringPool> strings = std::make_shared<SymbolStringPool>();
  std::unique_ptr<llvm::jitlink::JITLinkMemoryManager> memory;
  // Searched in this order for what no linked module defines: the process's global scope, then the
  // C++ runtime we link (Python loads us RTLD_LOCAL, so it is not in that scope).
  std::vector<void*> libraries;

  static Linker& get() {
    static Linker* instance = [] {
      install_engine_handlers();
      auto linker = new Linker;
      linker->memory = packed_jit_memory();
      if (!linker->memory) {  // this system refuses the pool's mappings: JITLink's page-per-segment manager
        auto memory = llvm::jitlink::InProcessMemoryManager::Create();
        if (!memory) throw CompileError("cannot create the JIT's memory manager: " + llvm::toString(memory.takeError()));
        linker->memory = std::move(*memory);
      }
      linker->libraries.push_back(dlopen(nullptr, RTLD_LAZY));
      for (const char* lib : {"libstdc++.so.6", "libm.so.6", "libgcc_s.so.1"})
        if (void* handle = dlopen(lib, RTLD_LAZY | RTLD_LOCAL)) linker->libraries.push_back(handle);
      return linker;
    }();
    return *instance;
  }

  uint64_t process_symbol(const char* name) const {
    for (void* library : libraries)
      if (void* address = dlsym(library, name)) return reinterpret_cast<uint64_t>(address);
    return 0;
  }
};

// Symbols every host module resolves to the engine: static destructors registered per module,
// and the hook through which a C++ exception escaping a call reports itself.
uint64_t runtime_symbol(llvm::StringRef name) {
  if (name == "__cxa_atexit") return reinterpret_cast<uint64_t>(&module_cxa_atexit);
  if (name == "__proteus_exception_caught") return reinterpret_cast<uint64_t>(&exception_caught);
  return 0;
}

// The host modules alive (as CompiledModule*): a checked downcast without RTTI (host_module_of).
std::mutex live_mutex;
std::set<const CompiledModule*> live_host_modules;

using SymbolTable = std::vector<std::pair<std::string, uint64_t>>;  // sorted by name

uint64_t find_symbol(const SymbolTable& table, llvm::StringRef name) {
  auto it = std::lower_bound(table.begin(), table.end(), name,
                             [](const auto& entry, llvm::StringRef n) { return llvm::StringRef(entry.first) < n; });
  return it != table.end() && it->first == name ? it->second : 0;
}

class JitModule : public CompiledModule, public std::enable_shared_from_this<JitModule> {
 public:
  // `base`: a module whose definitions this one links against (specialised variants use the
  // globals and helper functions of the module they were made from); `links`: modules whose
  // exported symbols its code may use (compile(link=...)). Searched after its own definitions, base
  // first; kept alive by this one, so their code outlives every use of it.
  JitModule(std::shared_ptr<JitModule> base, std::vector<std::shared_ptr<JitModule>> links)
      : base_(std::move(base)), links_(std::move(links)) {
    if (base_) links_.insert(links_.begin(), base_->links_.begin(), base_->links_.end());  // a variant calls what its base calls
    if (base_) links_.insert(links_.begin(), base_);
    std::lock_guard<std::mutex> lock(live_mutex);
    live_host_modules.insert(this);
  }

  ~JitModule() override {
    {
      std::lock_guard<std::mutex> lock(live_mutex);
      live_host_modules.erase(this);
    }
    if (dso_handle_) run_module_destructors(dso_handle_);
    if (eh_frame_size_) llvm::consumeError(deregisterEHFrameSection(eh_frame_, eh_frame_size_));
    if (memory_) llvm::consumeError(Linker::get().memory->deallocate(std::move(memory_)));
  }

  // Links the object now, so unresolved symbols are compile errors, then runs the module's static
  // constructors. `names`: the functions the module defines for callers.
  void link(std::unique_ptr<llvm::MemoryBuffer> object, const std::vector<std::string>& names) {
    Linker& linker = Linker::get();
    auto graph = llvm::jitlink::createLinkGraphFromObject(object->getMemBufferRef(), linker.strings);
    if (!graph) throw CompileError("cannot load the compiled object: " + llvm::toString(graph.takeError()));
    std::string failure;
    bool finished = false;
    // In-process memory and lookups answer at once, so the link completes inside this call.
    llvm::jitlink::link(std::move(*graph), std::make_unique<LinkContext>(*this, failure, finished));
    linker.strings->clearDeadEntries();  // the graph's names: only what the symbol tables hold stays
    if (!failure.empty()) throw CompileError("linking the compiled code failed: " + failure);
    if (!finished) throw CompileError("linking the compiled code did not complete");
    if (eh_frame_size_) {
      if (auto err = registerEHFrameSection(eh_frame_, eh_frame_size_)) {
        eh_frame_size_ = 0;
        throw CompileError("cannot register the module's unwind tables: " + llvm::toString(std::move(err)));
      }
    }
    function_names_ = names;
    std::sort(function_names_.begin(), function_names_.end());
    if (auto init = reinterpret_cast<void (*)()>(find_symbol(exports_, kInitFunction))) init();
  }

  std::string ir() const override { return describe_bitcode(bitcode, false); }
  std::string assembly() const override { return describe_bitcode(bitcode, true); }

  // A variant linked against this module (defined below, with the IR surgery it needs).
  std::shared_ptr<CompiledModule> variant(const std::string& name, const std::string& arg_codes,
                                          const std::vector<std::pair<unsigned, uint64_t>>& values) override;

  uint64_t address(const std::string& name) override {
    uint64_t found = find_symbol(exports_, name);
    if (!found || name == kInitFunction) {
      std::string defined;
      for (const auto& f : function_names_) defined += (defined.empty() ? "" : ", ") + f;
      throw SymbolNotFound("symbol '" + name + "' is not defined by the compiled module (it defines: " +
                           (defined.empty() ? std::string("no functions") : defined) +
                           "); C++ names are mangled unless declared extern \"C\"");
    }
    return found;
  }

  std::vector<std::string> function_names() const override { return function_names_; }

  std::string warnings() const override { return warnings_text; }

  const FunctionSignature* signature(const std::string& name) const override {
    auto it = signatures.find(name);
    return it == signatures.end() ? nullptr : &it->second;
  }

  std::string key;        // the cache key it was compiled under
  std::string bitcode;    // its optimised IR, for runtime specialisation
  Signatures signatures;       // of its functions, as the source declares them
  std::string warnings_text;  // the compiler's warnings

 private:
  // JITLink's side of one link: where externals come from, and what the linked module keeps.
  class LinkContext final : public llvm::jitlink::JITLinkContext {
   public:
    LinkContext(JitModule& module, std::string& failure, bool& finished)
        : JITLinkContext(nullptr), module_(module), failure_(failure), finished_(finished) {}

    llvm::jitlink::JITLinkMemoryManager& getMemoryManager() override { return *Linker::get().memory; }

    void notifyFailed(llvm::Error err) override { failure_ = llvm::toString(std::move(err)); }

    void lookup(const LookupMap& symbols,
                std::unique_ptr<llvm::jitlink::JITLinkAsyncLookupContinuation> next) override {
      llvm::jitlink::AsyncLookupResult found;
      std::string missing;
      for (const auto& [name, flags] : symbols) {
        if (uint64_t address = module_.external_symbol(*name))
          found[name] = {ExecutorAddr(address), llvm::JITSymbolFlags::Exported};
        else if (flags == llvm::jitlink::SymbolLookupFlags::RequiredSymbol)
          missing += (missing.empty() ? "" : ", ") + (*name).str();
      }
      if (!missing.empty())
        next->run(llvm::createStringError(
            "undefined symbols: " + missing +
            " (define them in the source, or pass the modules that define them as link=[...])"));
      else
        next->run(std::move(found));
    }

    // Addresses are final here: the module's symbol table is what the graph defines for others.
    llvm::Error notifyResolved(llvm::jitlink::LinkGraph& graph) override {
      for (llvm::jitlink::Symbol* symbol : graph.defined_symbols()) {
        if (!symbol->hasName()) continue;
        if (*symbol->getName() == "__dso_handle")  // hidden: C++ modules define their own (codegen.cc)
          module_.dso_handle_ = symbol->getAddress().toPtr<void*>();
        else if (symbol->getScope() == llvm::jitlink::Scope::Default)
          module_.exports_.emplace_back((*symbol->getName()).str(), symbol->getAddress().getValue());
      }
      std::sort(module_.exports_.begin(), module_.exports_.end());
      module_.exports_.shrink_to_fit();
      return llvm::Error::success();
    }

    void notifyFinalized(llvm::jitlink::JITLinkMemoryManager::FinalizedAlloc memory) override {
      module_.memory_ = std::move(memory);
      finished_ = true;
    }

    // The unwind tables' place, once laid out, for registering them after the link.
    llvm::Error modifyPassConfig(llvm::jitlink::LinkGraph&, llvm::jitlink::PassConfiguration& config) override {
      config.PostFixupPasses.push_back([this](llvm::jitlink::LinkGraph& graph) {
        if (llvm::jitlink::Section* eh_frame = llvm::jitlink::getEHFrameSection(graph)) {
          llvm::jitlink::SectionRange range(*eh_frame);
          if (!range.empty()) {
            module_.eh_frame_ = range.getStart().toPtr<const void*>();
            module_.eh_frame_size_ = range.getSize();
          }
        }
        return llvm::Error::success();
      });
      return llvm::Error::success();
    }

   private:
    JitModule& module_;
    std::string& failure_;
    bool& finished_;
  };

  // What a symbol this module's code uses but does not define resolves to (0: nothing).
  uint64_t external_symbol(llvm::StringRef name) const {
    if (uint64_t address = runtime_symbol(name)) return address;
    for (const auto& linked : links_)
      if (uint64_t address = find_symbol(linked->exports_, name)) return address;
    return Linker::get().process_symbol(name.str().c_str());
  }

  std::shared_ptr<JitModule> base_;
  std::vector<std::shared_ptr<JitModule>> links_;  // base first
  SymbolTable exports_;                             // its default-visibility definitions
  llvm::jitlink::JITLinkMemoryManager::FinalizedAlloc memory_;
  const void* eh_frame_ = nullptr;
  size_t eh_frame_size_ = 0;
  void* dso_handle_ = nullptr;  // the module's __dso_handle: identifies it to __cxa_atexit
  std::vector<std::string> function_names_;
};

// `module` as a host module, or nullptr if it is not one (a GPU module).
std::shared_ptr<JitModule> host_module_of(const std::shared_ptr<CompiledModule>& module) {
  std::lock_guard<std::mutex> lock(live_mutex);
  if (!module || !live_host_modules.count(module.get())) return nullptr;
  return std::static_pointer_cast<JitModule>(module);
}

// The modules compile(link=...) names, as host modules (CompileError for anything else).
std::vector<std::shared_ptr<JitModule>> linked_modules(const CompileRequest& request) {
  std::vector<std::shared_ptr<JitModule>> links;
  for (const auto& module : request.link) {
    std::shared_ptr<JitModule> host = host_module_of(module);
    if (!host) throw CompileError("link= takes host modules only (GPU code cannot be linked into host code)");
    links.push_back(std::move(host));
  }
  return links;
}

// Everything that changes the generated code: the request, the optimisation levels, the header
// search in use, the CPU the code is tuned for, the LLVM and proteus versions; and, as what its
// symbols resolve to, the modules it links against.
std::string cache_key(const CompileRequest& request, const Target& target) {
  static const std::string host = [] {
    std::string cpu = llvm::sys::getHostCPUName().str();
    for (const auto& [feature, enabled] : llvm::sys::getHostCPUFeatures()) cpu += (enabled ? "+" : "-") + feature.str();
    return llvm::sys::getProcessTriple() + "|" + cpu;
  }();
  llvm::SHA256 hash;
  auto field = [&](const std::string& s) {
    uint64_t n = s.size();
    hash.update(llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t*>(&n), sizeof n));
    hash.update(s);
  };
  field("proteus-object-v3");  // v3: the host runs one pipeline of its own
  field(build_version());
  field(LLVM_VERSION_STRING);
  field(host);
  field(request.frontend);
  field(request.target + "/" + request.compiler);
  field(target.cache_context(request));
  field(request.source);
  field(request.source_name);
  field(std::to_string(request.extra_args.size()));
  for (const auto& a : request.extra_args) field(a);
  field(std::to_string(opt_level()) + "/" + std::to_string(codegen_opt_level()) + "/" + (request.verify ? "v" : ""));
  if (request.frontend == "cpp" || request.frontend == "c") field(header_search_description());
  if (request.frontend == "mlir") field(mlir_pipeline(request.target));
  for (const auto& linked : linked_modules(request)) field("link " + linked->key);
  return hex_digest(hash.final());
}

// PROTEUS_DUMP_LLVM_IR: the module's optimised IR (device IR for GPU modules) as
// .proteus-dump/<source file name>-<key prefix>.ll in the current directory.
void dump_ir(const CompiledModule& module, const std::string& source_name, const std::string& key) {
  std::string name = source_name.substr(source_name.rfind('/') + 1);
  std::string path = ".proteus-dump/" + name + "-" + key.substr(0, 16) + ".ll";
  std::error_code error = llvm::sys::fs::create_directories(".proteus-dump");
  if (!error) {
    llvm::raw_fd_ostream out(path, error);
    if (!error) out << module.ir();
  }
  if (error)
    throw ConfigError("PROTEUS_DUMP_LLVM_IR=1: cannot write " + path + " (" + error.message() +
                      "); run from a writable directory or unset it");
}

// The in-memory cache: a live module for a key, reused while the files its compile read are unchanged.
struct MemoryEntry {
  std::weak_ptr<CompiledModule> module;
  std::shared_ptr<const std::vector<InputFile>> inputs;
  bool reusable = true;
};
std::mutex cache_mutex;
std::unordered_map<std::string, MemoryEntry> memory_cache;

// The compiled result for `key`: from the persistent cache, or from `produce` (then stored).
// `produce` runs contained (run_contained): it must own what it uses.
// The result is stamped with `target`: the persistent cache gives it back to that target only.
Artifact load_or_produce(const std::string& key, const std::string& target, const std::function<Artifact()>& produce,
                         const std::string& what, bool internal, double timeout = 0) {
  ChainLookup lookup(key, target);  // the persistent cache, then the chain's other levels
  if (std::optional<Artifact> entry = lookup.find()) {
    disk_hits++;
    return std::move(*entry);
  }
  disk_misses++;
  (internal ? internal_runs : frontend_runs)++;
  Artifact entry = run_contained(produce, what, timeout);
  entry.target = target;
  if (entry.reusable) lookup.store(entry);
  return entry;
}

// Links a host object into a new module (linking against `base` and `links`, if given).
std::shared_ptr<JitModule> link_module(const std::string& key, Artifact entry, std::shared_ptr<JitModule> base,
                                       std::vector<std::shared_ptr<JitModule>> links = {}) {
  auto jit_module = std::make_shared<JitModule>(std::move(base), std::move(links));
  run_with_large_stack([&] {  // static constructors run here
    jit_module->link(llvm::MemoryBuffer::getMemBufferCopy(entry.binary, "proteus-object"), entry.entry_points);
  });
  jit_module->key = key;
  jit_module->bitcode = std::move(entry.bitcode);
  jit_module->signatures = std::move(entry.signatures);
  jit_module->warnings_text = std::move(entry.warnings);
  return jit_module;
}

std::shared_ptr<CompiledModule> JitModule::variant(const std::string& name, const std::string& arg_codes,
                                                   const std::vector<std::pair<unsigned, uint64_t>>& values) {
  if (bitcode.empty()) throw CompileError("this module cannot be specialised (no IR kept)");
  std::shared_ptr<JitModule> base = shared_from_this();
  std::string key = variant_key(base->key, base->bitcode, name, arg_codes, values);
  Artifact entry = cached_or_produced(
      key, "host", [bitcode = base->bitcode, name, arg_codes, values] {
        return produce_host_variant(bitcode, name, arg_codes, values);
      },
      "specialising '" + name + "'");
  return link_module(key, std::move(entry), base);
}

}  // namespace

Artifact cached_or_produced(const std::string& key, const std::string& target, const std::function<Artifact()>& produce,
                            const std::string& what) {
  internal_compiles++;
  return load_or_produce(key, target, produce, what, /*internal=*/true);
}

std::shared_ptr<CompiledModule> link_host_module(const std::string& key, Artifact entry, const CompileRequest& request) {
  return link_module(key, std::move(entry), nullptr, linked_modules(request));
}

std::shared_ptr<CompiledModule> compile(const CompileRequest& request) {
  if (request.frontend != "cpp" && request.frontend != "c" && request.frontend != "llvmir" && request.frontend != "mlir")
    throw CompileError("frontend must be 'cpp', 'c', 'llvmir' or 'mlir' in this engine, not '" + request.frontend + "'");
  if (!request.link.empty() && request.target != "host")
    throw CompileError("link= is for host code; target='" + request.target + "' modules link nothing");
  if (request.frontend == "c" && request.target != "host")
    throw CompileError("frontend='c' compiles for the host; GPU kernels are written with frontend='cpp'");
  const Target* target = find_target(request.target);
  if (!target) {
    std::string known;
    for (const std::string& name : target_names()) known += (known.empty() ? "'" : ", '") + name + "'";
    throw CompileError("target '" + request.target + "' is not in this engine, which has " + known);
  }
  install_engine_handlers();
  (request.internal ? internal_compiles : compiles)++;
  std::string key = cache_key(request, *target);
  {
    std::shared_ptr<CompiledModule> alive;
    MemoryEntry found;
    {
      std::lock_guard<std::mutex> lock(cache_mutex);
      auto it = memory_cache.find(key);
      if (it != memory_cache.end()) {
        found = it->second;
        alive = found.module.lock();
      }
    }
    if (alive && found.reusable && inputs_unchanged(*found.inputs)) {  // stats outside the lock
      memory_hits++;
      return alive;
    }
  }
  Artifact entry = load_or_produce(
      key, target->name(), [request, target] { return target->produce(request); }, "compiling " + request.source_name,
      request.internal, request.timeout);
  auto inputs = std::make_shared<const std::vector<InputFile>>(entry.inputs);
  bool reusable = entry.reusable;
  std::shared_ptr<CompiledModule> module = target->load(std::move(entry), key, request);
  if (!request.internal && flag_setting("PROTEUS_DUMP_LLVM_IR")) dump_ir(*module, request.source_name, key);
  std::lock_guard<std::mutex> lock(cache_mutex);
  if (memory_cache.size() > 4096) {
    for (auto it = memory_cache.begin(); it != memory_cache.end();)
      it = it->second.module.expired() ? memory_cache.erase(it) : std::next(it);
  }
  memory_cache[key] = {module, std::move(inputs), reusable};
  return module;
}

std::shared_ptr<CompiledModule> specialize(const std::shared_ptr<CompiledModule>& base, const std::string& name,
                                           const std::string& arg_codes,
                                           const std::vector<std::pair<unsigned, uint64_t>>& values) {
  return base->variant(name, arg_codes, values);
}

std::string variant_key(const std::string& base_key, const std::string& base_ir, const std::string& name,
                        const std::string& arg_codes, const std::vector<std::pair<unsigned, uint64_t>>& values) {
  llvm::SHA256 hash;
  // The base's IR, not just its key: a key does not cover the headers the base read, so after a
  // header changes, the recompiled base must not find the variants of the old one.
  std::string header = "proteus-variant-v2|" + base_key + "|" + sha256_hex(base_ir) + "|" + name + "|" + arg_codes;
  hash.update(header);
  for (const auto& [index, raw] : values) {
    uint64_t pair[2] = {index, raw};
    hash.update(llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t*>(pair), sizeof pair));
  }
  hash.update(std::to_string(opt_level()) + "/" + std::to_string(codegen_opt_level()));
  return hex_digest(hash.final());
}

EngineStats engine_stats() {
  EngineStats stats;
  stats.frontend_runs = frontend_runs.load();
  stats.compiles = compiles.load();
  stats.internal_compiles = internal_compiles.load();
  stats.internal_runs = internal_runs.load();
  stats.memory_hits = memory_hits.load();
  stats.disk_hits = disk_hits.load();
  stats.disk_misses = disk_misses.load();
  stats.pch_builds = pch_build_count();
  stats.pch_uses = pch_use_count();
  return stats;
}

std::string llvm_version() { return LLVM_VERSION_STRING; }

}  // namespace proteus
