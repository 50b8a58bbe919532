// The host target (cc/target.h): C++ or LLVM IR compiled for this process's CPU, and the specialised
// variants of its functions. What it makes, jit.cc links into the process.
#include "internal.h"
#include "object_cache.h"
#include "target.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/Verifier.h"

namespace proteus {
namespace {

// Frontend + optimisation + codegen: the object and the functions to link eagerly.
Artifact produce_host(const CompileRequest& request) {
  auto context = new_context();
  int64_t started = wall_clock_ns();
  FrontendFindings found;
  Artifact entry;
  std::unique_ptr<llvm::Module> module;
  HostMachine tm = host_target_machine();
  bool from_source = request.frontend == "cpp" || request.frontend == "c";
  if (from_source) {
    module = compile_cpp(request, *context, request.frontend == "c" ? c_language() : LanguageFlags(), &found);
    entry.signatures = std::move(found.signatures);
    entry.warnings = std::move(found.warnings);
  } else if (request.frontend == "mlir") {
    module = compile_mlir(request, *context, {}, &entry.signatures);
    adopt_host_target(*module, *tm, "MLIR in " + request.source_name);
  } else {
    module = parse_ir(request, *context, *tm);
  }
  // One pipeline for either frontend (clang leaves C++ unoptimised: LanguageFlags::clang_optimises).
  optimize(*module, *tm, opt_level());
  if (request.frontend == "llvmir") ir_signatures(*module, &entry.signatures);
  if (request.verify) {
    std::string problems;
    llvm::raw_string_ostream os(problems);
    if (llvm::verifyModule(*module, &os)) throw CompileError("the generated LLVM IR is invalid:\n" + problems);
  }
  checkpoint();
  for (const llvm::Function& fn : *module)
    if (!fn.isDeclaration() && !fn.hasLocalLinkage() && !fn.hasAvailableExternallyLinkage())
      entry.entry_points.push_back(fn.getName().str());
  entry.bitcode = keep_bitcode(*module);
  lower_static_constructors(*module);
  checkpoint();
  entry.binary = emit_code(*module, *tm, llvm::CodeGenFileType::ObjectFile);
  entry.reusable = snapshot_inputs(found.read_files, started, &entry.inputs);
  return entry;
}

// The variant of `name` in `base`'s IR with the given arguments replaced by constants. Everything
// else the function uses (other functions, globals) stays the base module's: the variant's module
// declares them and links against the base. Mutable globals with internal linkage cannot be
// shared that way, so a function using them is not specialised (CompileError).
}  // namespace

Artifact produce_host_variant(const std::string& base_bitcode, const std::string& name, const std::string& codes,
                              const std::vector<std::pair<unsigned, uint64_t>>& values) {
  auto context = new_context();
  std::unique_ptr<llvm::Module> module = reload_bitcode(base_bitcode, *context, "the module's IR");
  llvm::Function* fn = module->getFunction(name);
  if (!fn || fn->isDeclaration()) throw SymbolNotFound("function '" + name + "' is not defined in the module's IR");
  if (fn->arg_size() != codes.size())
    throw CompileError("function '" + name + "' takes " + std::to_string(fn->arg_size()) + " arguments, argtypes give " +
                       std::to_string(codes.size()));
  fold_arguments(*fn, values);
  if (auto* ctors = module->getNamedGlobal("llvm.global_ctors")) ctors->eraseFromParent();
  if (auto* dtors = module->getNamedGlobal("llvm.global_dtors")) dtors->eraseFromParent();
  for (llvm::Function& other : *module) {
    if (&other == fn || other.isDeclaration() || other.hasLocalLinkage()) continue;
    other.deleteBody();  // now a declaration, resolved in the base module
    other.setComdat(nullptr);
  }
  // Drop what the variant no longer uses, then only what `fn` reaches is left to check.
  erase_unused(*module, fn, /*internal_globals_only=*/true);
  for (llvm::GlobalVariable& gv : module->globals()) {
    if (gv.isDeclaration() || gv.getName().starts_with("llvm.")) continue;
    if (gv.hasLocalLinkage() && !gv.isConstant())
      throw CompileError("'" + name + "' uses the internal mutable global '" + gv.getName().str() +
                         "', which a specialised copy could not share");
    if (!gv.hasLocalLinkage()) {  // the base module's definition is the one
      gv.setInitializer(nullptr);
      gv.setLinkage(llvm::GlobalValue::ExternalLinkage);
      gv.setComdat(nullptr);
    }
  }
  for (llvm::GlobalAlias& alias : llvm::make_early_inc_range(module->aliases())) {
    if (alias.hasLocalLinkage()) continue;
    auto* decl = new llvm::GlobalVariable(*module, alias.getValueType(), false, llvm::GlobalValue::ExternalLinkage,
                                          nullptr, "");
    decl->takeName(&alias);
    alias.replaceAllUsesWith(decl);
    alias.eraseFromParent();
  }
  // What still refers to `fn` is `fn` itself: recursive calls, or its own address. In this copy they
  // would reach the specialised code with other values than the folded ones (a recursive fib(n - 1)
  // would compute fib(n) again): such a function keeps its generic code.
  if (!fn->use_empty())
    throw CompileError("'" + name + "' calls itself or uses its own address, which a copy with folded arguments "
                       "would get wrong");
  fn->setLinkage(llvm::GlobalValue::ExternalLinkage);
  fn->setComdat(nullptr);
  auto tm = host_target_machine();
  optimize(*module, *tm, opt_level() == 0 ? 2 : opt_level());
  Artifact entry;
  entry.entry_points.push_back(name);
  entry.binary = emit_code(*module, *tm, llvm::CodeGenFileType::ObjectFile);
  return entry;
}

namespace {

// The host: this process's CPU. Its compiles are linked into the process by the JIT above.
class HostTarget : public Target {
 public:
  std::string name() const override { return "host"; }
  std::string cache_context(const CompileRequest&) const override { return ""; }  // the CPU is in every key
  Artifact produce(const CompileRequest& request) const override { return produce_host(request); }
  std::shared_ptr<CompiledModule> load(Artifact entry, const std::string& key,
                                       const CompileRequest& request) const override {
    return link_host_module(key, std::move(entry), request);
  }
};
const HostTarget host_target;
const bool host_registered = register_target(host_target);

}  // namespace
}  // namespace proteus
