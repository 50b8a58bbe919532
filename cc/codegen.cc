// IR parsing, optimisation, static-constructor lowering and object emission for the host.
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <set>

#include "internal.h"
#include "object_cache.h"
#include "llvm/Bitcode/BitcodeReader.h"
#include "llvm/Bitcode/BitcodeWriter.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/DiagnosticInfo.h"
#include "llvm/IR/DiagnosticPrinter.h"
#include "llvm/IR/IRBuilder.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Verifier.h"
#include "llvm/IRReader/IRReader.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Passes/PassBuilder.h"
#include "llvm/Plugins/PassPlugin.h"
#include "llvm/Support/Compression.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/TargetParser/Host.h"
#include "llvm/TargetParser/SubtargetFeature.h"
#include "llvm/Transforms/Utils/ModuleUtils.h"

namespace proteus {

namespace {

// Backend diagnostics (e.g. bad inline assembly) are collected instead of printed and exiting.
struct CollectingDiagnosticHandler : llvm::DiagnosticHandler {
  std::string* errors;
  explicit CollectingDiagnosticHandler(std::string* out) : errors(out) {}
  bool handleDiagnostics(const llvm::DiagnosticInfo& info) override {
    if (info.getSeverity() == llvm::DS_Error) {
      llvm::raw_string_ostream os(*errors);
      llvm::DiagnosticPrinterRawOStream printer(os);
      info.print(printer);
      os << "\n";
    }
    return true;
  }
};

// An error nobody handled: LLVM's default would print it and exit(1).
struct FailingDiagnosticHandler : llvm::DiagnosticHandler {
  bool handleDiagnostics(const llvm::DiagnosticInfo& info) override {
    if (info.getSeverity() != llvm::DS_Error) return false;  // LLVM prints warnings and notes
    std::string text;
    llvm::raw_string_ostream os(text);
    llvm::DiagnosticPrinterRawOStream printer(os);
    info.print(printer);
    fail_contained("LLVM error: " + text);
  }
};

}  // namespace

std::unique_ptr<llvm::LLVMContext> new_context() {
  auto context = std::make_unique<llvm::LLVMContext>();
  context->setDiagnosticHandler(std::make_unique<FailingDiagnosticHandler>());
  return context;
}


namespace {

std::unique_ptr<llvm::TargetMachine> new_host_target_machine(int level) {
  std::string triple_name = llvm::sys::getProcessTriple();
  llvm::Triple triple(triple_name);
  std::string error;
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target) throw CompileError("no LLVM target for " + triple_name + ": " + error);
  llvm::SubtargetFeatures features;
  for (const auto& [feature, enabled] : llvm::sys::getHostCPUFeatures()) features.AddFeature(feature, enabled);
  llvm::TargetOptions options;
  std::unique_ptr<llvm::TargetMachine> tm(target->createTargetMachine(triple, llvm::sys::getHostCPUName(),
                                                                      features.getString(), options, llvm::Reloc::PIC_,
                                                                      std::nullopt, static_cast<llvm::CodeGenOptLevel>(level)));
  if (!tm) throw CompileError("could not create a target machine for " + triple_name);
  return tm;
}

// Idle host machines, at most a few (one per compile running at once is what gets reused).
struct HostMachinePool {
  static constexpr size_t kKept = 4;
  std::mutex mutex;
  std::vector<std::unique_ptr<llvm::TargetMachine>> idle;
};
HostMachinePool& host_machine_pool() {
  static auto* pool = new HostMachinePool;  // never destroyed: compiles may run during exit
  return *pool;
}

}  // namespace

void ReturnHostMachine::operator()(llvm::TargetMachine* tm) const {
  std::unique_ptr<llvm::TargetMachine> owned(tm);
  HostMachinePool& pool = host_machine_pool();
  std::lock_guard<std::mutex> lock(pool.mutex);
  if (pool.idle.size() < HostMachinePool::kKept) pool.idle.push_back(std::move(owned));
}

HostMachine host_target_machine() {
  int level = codegen_opt_level();
  {
    HostMachinePool& pool = host_machine_pool();
    std::lock_guard<std::mutex> lock(pool.mutex);
    for (auto it = pool.idle.begin(); it != pool.idle.end(); ++it)
      if (static_cast<int>((*it)->getOptLevel()) == level) {
        HostMachine lent((*it).release());
        pool.idle.erase(it);
        return lent;
      }
  }
  return HostMachine(new_host_target_machine(level).release());
}

std::unique_ptr<llvm::Module> parse_ir_text(const CompileRequest& request, llvm::LLVMContext& context) {
  llvm::SMDiagnostic diag;
  auto buffer = llvm::MemoryBuffer::getMemBuffer(request.source, request.source_name, /*RequiresNull=*/false);
  std::unique_ptr<llvm::Module> module = llvm::parseIR(buffer->getMemBufferRef(), diag, context);
  if (!module) {
    std::string text;
    llvm::raw_string_ostream os(text);
    diag.print(request.source_name.c_str(), os, /*ShowColors=*/false);
    throw CompileError(text);
  }
  std::string problems;
  llvm::raw_string_ostream os(problems);
  if (llvm::verifyModule(*module, &os)) throw CompileError("invalid LLVM IR in " + request.source_name + ":\n" + problems);
  return module;
}

std::unique_ptr<llvm::Module> parse_ir(const CompileRequest& request, llvm::LLVMContext& context,
                                       const llvm::TargetMachine& tm) {
  std::unique_ptr<llvm::Module> module = parse_ir_text(request, context);
  adopt_host_target(*module, tm, "LLVM IR in " + request.source_name);
  return module;
}

void adopt_host_target(llvm::Module& module, const llvm::TargetMachine& tm, const std::string& what) {
  if (module.getTargetTriple().empty()) module.setTargetTriple(tm.getTargetTriple());
  if (module.getDataLayoutStr().empty()) module.setDataLayout(tm.createDataLayout());
  if (module.getTargetTriple().getArch() != tm.getTargetTriple().getArch())
    throw CompileError(what + " targets " + module.getTargetTriple().str() + ", not this host (" +
                       tm.getTargetTriple().str() + ")");
}

void optimize(llvm::Module& module, llvm::TargetMachine& tm, int level) {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassInstrumentationCallbacks instrumentation;
  instrumentation.registerBeforeNonSkippedPassCallback([](llvm::StringRef, llvm::Any) { checkpoint(); });
  // As clang tunes its pipeline: unrolling and interleaving from O2, the loop vectoriser at O2, O3
  // and Os, the SLP vectoriser at O2, O3, Os and Oz (levels 4 and 5).
  llvm::PipelineTuningOptions tuning;
  tuning.LoopUnrolling = tuning.LoopInterleaving = level >= 2;
  tuning.LoopVectorization = level >= 2 && level <= 4;
  tuning.SLPVectorization = level >= 2;
  llvm::PassBuilder pb(&tm, tuning, std::nullopt, &instrumentation);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  static const llvm::OptimizationLevel levels[] = {llvm::OptimizationLevel::O0, llvm::OptimizationLevel::O1,
                                                   llvm::OptimizationLevel::O2, llvm::OptimizationLevel::O3,
                                                   llvm::OptimizationLevel::Os, llvm::OptimizationLevel::Oz};
  llvm::ModulePassManager mpm = level == 0 ? pb.buildO0DefaultPipeline(levels[0])
                                           : pb.buildPerModuleDefaultPipeline(levels[level]);
  mpm.run(module, mam);
}

void lower_static_constructors(llvm::Module& module) {
  llvm::LLVMContext& ctx = module.getContext();
  // C++ code reaches __dso_handle PC-relatively (it is hidden in every DSO), so it must live in
  // the module's own memory: define it here; its address identifies the module to __cxa_atexit.
  if (auto* dso = module.getNamedGlobal("__dso_handle"); dso && dso->isDeclaration()) {
    dso->setInitializer(llvm::Constant::getNullValue(dso->getValueType()));
    dso->setLinkage(llvm::GlobalValue::ExternalLinkage);
    dso->setVisibility(llvm::GlobalValue::HiddenVisibility);
  }
  auto* init_type = llvm::FunctionType::get(llvm::Type::getVoidTy(ctx), false);
  auto* init = llvm::Function::Create(init_type, llvm::GlobalValue::ExternalLinkage, kInitFunction, module);
  llvm::IRBuilder<> builder(llvm::BasicBlock::Create(ctx, "entry", init));
  // appendToGlobalCtors order: sorted by priority, stable for equal priorities.
  std::vector<std::pair<uint64_t, llvm::Function*>> ctors;
  // llvm.global_ctors = [N x { i32 priority, ptr function, ptr data }]
  if (auto* gv = module.getNamedGlobal("llvm.global_ctors")) {
    if (auto* entries = llvm::dyn_cast_or_null<llvm::ConstantArray>(gv->getInitializer())) {
      for (const llvm::Use& use : entries->operands()) {
        auto* entry = llvm::dyn_cast<llvm::ConstantStruct>(use.get());
        if (!entry) continue;
        auto* priority = llvm::dyn_cast<llvm::ConstantInt>(entry->getOperand(0));
        auto* fn = llvm::dyn_cast<llvm::Function>(entry->getOperand(1)->stripPointerCasts());
        if (fn) ctors.emplace_back(priority ? priority->getZExtValue() : 65535, fn);
      }
    }
  }
  std::stable_sort(ctors.begin(), ctors.end(), [](auto& a, auto& b) { return a.first < b.first; });
  for (auto& [priority, fn] : ctors) builder.CreateCall(fn);
  builder.CreateRetVoid();
  if (auto* gv = module.getNamedGlobal("llvm.global_ctors")) gv->eraseFromParent();
}

std::string emit_code(llvm::Module& module, llvm::TargetMachine& tm, llvm::CodeGenFileType type) {
  module.setDataLayout(tm.createDataLayout());
  std::string errors;
  std::unique_ptr<llvm::DiagnosticHandler> previous = module.getContext().getDiagnosticHandler();
  module.getContext().setDiagnosticHandler(std::make_unique<CollectingDiagnosticHandler>(&errors));
  llvm::SmallString<0> code;
  llvm::raw_svector_ostream os(code);
  llvm::legacy::PassManager pm;
  if (tm.addPassesToEmitFile(pm, os, nullptr, type))
    throw CompileError("the " + tm.getTargetTriple().str() + " target cannot emit this kind of file");
  pm.run(module);
  module.getContext().setDiagnosticHandler(std::move(previous));  // ours points at `errors`
  if (!errors.empty()) throw CompileError("code generation failed:\n" + errors);
  return code.str().str();
}

// Kept IR is bitcode compressed with zstd (about half the size), after its size as 8 bytes
// little-endian: most modules are never specialised or printed, and it stays in memory and the cache.
constexpr size_t kKeptSizeBytes = 8, kMaxKeptBitcode = size_t(1) << 31;

std::string keep_bitcode(const llvm::Module& module) {
  std::string bitcode;
  {
    llvm::raw_string_ostream os(bitcode);
    llvm::WriteBitcodeToFile(module, os);
  }
  llvm::SmallVector<uint8_t, 0> packed;
  llvm::compression::zstd::compress(llvm::arrayRefFromStringRef(bitcode), packed, /*Level=*/3);
  std::string kept(kKeptSizeBytes, '\0');
  llvm::support::endian::write64le(kept.data(), bitcode.size());
  kept.append(reinterpret_cast<const char*>(packed.data()), packed.size());
  return kept;
}

std::unique_ptr<llvm::Module> reload_bitcode(const std::string& kept, llvm::LLVMContext& context,
                                             const std::string& what) {
  uint64_t size = kept.size() >= kKeptSizeBytes ? llvm::support::endian::read64le(kept.data()) : 0;
  if (size == 0 || size > kMaxKeptBitcode) throw CompileError("cannot reload " + what + ": the kept IR is damaged");
  llvm::SmallVector<uint8_t, 0> bitcode;
  if (auto err = llvm::compression::zstd::decompress(llvm::arrayRefFromStringRef(kept).drop_front(kKeptSizeBytes),
                                                     bitcode, size))
    throw CompileError("cannot reload " + what + ": the kept IR is damaged (" + llvm::toString(std::move(err)) + ")");
  auto parsed = llvm::parseBitcodeFile(llvm::MemoryBufferRef(llvm::toStringRef(bitcode), "kept IR"), context);
  if (!parsed) throw CompileError("cannot reload " + what + ": " + llvm::toString(parsed.takeError()));
  return std::move(*parsed);
}

std::string describe_bitcode(const std::string& bitcode, bool assembly) {
  if (bitcode.empty()) return "";
  return run_contained(
      [bitcode, assembly] {
        auto context = new_context();
        std::unique_ptr<llvm::Module> module = reload_bitcode(bitcode, *context, "the module's IR");
        if (assembly) return emit_code(*module, *host_target_machine(), llvm::CodeGenFileType::AssemblyFile);
        std::string text;
        llvm::raw_string_ostream os(text);
        module->print(os, nullptr);
        return text;
      },
      assembly ? "printing assembly" : "printing IR", 0);
}

std::string device_code(llvm::Module& module, const DeviceMachine& machine, const std::string& arch) {
  {
    static std::mutex mutex;  // LLVM's target registration is not thread-safe
    static std::set<void (*)()>* initialised = new std::set<void (*)()>;
    std::lock_guard<std::mutex> lock(mutex);
    if (initialised->insert(machine.initialise).second) machine.initialise();
  }
  llvm::Triple triple(machine.triple);
  std::string error;
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target) throw CompileError("no " + triple.str() + " target in this LLVM: " + error);
  std::unique_ptr<llvm::TargetMachine> tm(target->createTargetMachine(
      triple, arch, "", llvm::TargetOptions(), machine.relocation, std::nullopt,
      static_cast<llvm::CodeGenOptLevel>(codegen_opt_level())));
  if (!tm) throw CompileError("the " + triple.str() + " target does not know " + arch);
  if (module.getTargetTriple().empty()) module.setTargetTriple(triple);
  if (module.getTargetTriple().getArch() != triple.getArch())
    throw CompileError("LLVM IR for " + std::string(machine.target_option) + " must target " + triple.str() + ", not " +
                       module.getTargetTriple().str());
  module.setDataLayout(tm->createDataLayout());
  optimize(module, *tm, opt_level());
  return emit_code(module, *tm, machine.output);
}

}  // namespace proteus

// Debian's libclangCodeGen is built with Polly "linked into tools": clang's pass pipeline setup
// calls getPollyPluginInfo() for every compile. We do not link Polly (it would add megabytes for
// an optimisation clang only runs under -mllvm -polly), so the plugin registers no passes.
llvm::PassPluginLibraryInfo getPollyPluginInfo() {
  // The hook is used for one thing: clang's own optimisation pipeline gets our checkpoints (contain.cc).
  return {LLVM_PLUGIN_API_VERSION, "Polly (not linked into proteus)", "0", [](llvm::PassBuilder& pb) {
            if (llvm::PassInstrumentationCallbacks* callbacks = pb.getPassInstrumentationCallbacks())
              callbacks->registerBeforeNonSkippedPassCallback([](llvm::StringRef, llvm::Any) { proteus::checkpoint(); });
          }};
}

namespace proteus {

void erase_unused(llvm::Module& module, const llvm::Function* keep, bool internal_globals_only) {
  for (bool changed = true; changed;) {
    changed = false;
    for (llvm::Function& f : llvm::make_early_inc_range(module))
      if (&f != keep && f.hasLocalLinkage() && f.use_empty()) {
        f.eraseFromParent();
        changed = true;
      }
    for (llvm::GlobalVariable& gv : llvm::make_early_inc_range(module.globals())) {
      if (internal_globals_only && !gv.hasLocalLinkage()) continue;
      gv.removeDeadConstantUsers();
      if (gv.use_empty()) {
        gv.eraseFromParent();
        changed = true;
      }
    }
  }
}

void fold_arguments(llvm::Function& fn, const std::vector<std::pair<unsigned, uint64_t>>& values) {
  for (const auto& [index, raw] : values) {
    if (index >= fn.arg_size()) throw CompileError("argument " + std::to_string(index) + " does not exist in '" + fn.getName().str() + "'");
    llvm::Argument* arg = fn.getArg(index);
    llvm::Type* type = arg->getType();
    llvm::Constant* constant = nullptr;
    if (type->isIntegerTy()) {
      constant = llvm::ConstantInt::get(type, raw);
    } else if (type->isFloatTy()) {
      float f;
      std::memcpy(&f, &raw, sizeof f);
      constant = llvm::ConstantFP::get(type, f);
    } else if (type->isDoubleTy()) {
      double d;
      std::memcpy(&d, &raw, sizeof d);
      constant = llvm::ConstantFP::get(type, d);
    } else {
      throw CompileError("argument " + std::to_string(index) + " of '" + fn.getName().str() +
                         "' has an IR type that cannot be specialised");
    }
    arg->replaceAllUsesWith(constant);
  }
}

}  // namespace proteus
