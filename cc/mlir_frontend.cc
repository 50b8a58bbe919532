// MLIR source (frontend="mlir") -> LLVM IR with MLIR 22 in-process (ARCHITECTURE 7, "The MLIR
// frontend"). The module is parsed and verified, lowered to the LLVM dialect by one fixed pass
// pipeline per target (its text is part of the cache key), and translated; the LLVM module then
// takes the same path as C++ and LLVM IR. Only the dialects and passes named here are linked.
#include <mutex>

#include "internal.h"
#include "llvm/Bitcode/BitcodeReader.h"
#include "llvm/IR/Module.h"
#include "llvm/Linker/Linker.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVM.h"
#include "mlir/Conversion/GPUToNVVM/GPUToNVVM.h"
#include "mlir/Conversion/IndexToLLVM/IndexToLLVM.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/NVVMToLLVM/NVVMToLLVM.h"
#include "mlir/Conversion/Passes.h"
#include "mlir/Conversion/UBToLLVM/UBToLLVM.h"
#include "mlir/Conversion/VectorToLLVM/ConvertVectorToLLVM.h"
#include "mlir/Dialect/Affine/IR/AffineOps.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlow.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Index/IR/IndexDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/LLVMIR/ROCDLDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/UB/IR/UBOps.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/NVVM/NVVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/ROCDL/ROCDLToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"

namespace proteus {
namespace {

// The lowering of each target. Host: every dialect the module may use to the LLVM dialect. GPU:
// the same inside the one gpu.module, where the GPU dialect's ops (thread ids, barriers, kernel
// functions) become NVVM or ROCDL ones and math functions libdevice / OCML calls.
const char* const kCommonLowering =
    "convert-vector-to-scf,expand-strided-metadata,lower-affine,convert-scf-to-cf";
const char* const kHostLowering =
    "convert-vector-to-llvm,convert-math-to-llvm,convert-math-to-libm,convert-arith-to-llvm,"
    "convert-index-to-llvm,convert-ub-to-llvm,finalize-memref-to-llvm,convert-func-to-llvm,convert-cf-to-llvm,"
    "reconcile-unrealized-casts";

void register_passes() {
  static std::once_flag once;
  std::call_once(once, [] {
    mlir::registerConvertVectorToSCF();
    mlir::memref::registerExpandStridedMetadataPass();
    mlir::registerLowerAffinePass();
    mlir::registerSCFToControlFlowPass();
    mlir::registerConvertVectorToLLVMPass();
    mlir::registerConvertMathToLLVMPass();
    mlir::registerConvertMathToLibmPass();
    mlir::registerArithToLLVMConversionPass();
    mlir::registerConvertIndexToLLVMPass();
    mlir::registerUBToLLVMConversionPass();
    mlir::registerFinalizeMemRefToLLVMConversionPass();
    mlir::registerConvertFuncToLLVMPass();
    mlir::registerConvertControlFlowToLLVMPass();
    mlir::registerReconcileUnrealizedCastsPass();
    mlir::registerConvertGpuOpsToNVVMOps();
    mlir::registerConvertGpuOpsToROCDLOps();
  });
}

// The dialects a module may use, the lowering interfaces the GPU conversions apply, and the
// translations to LLVM IR.
mlir::DialectRegistry dialects() {
  mlir::DialectRegistry registry;
  registry.insert<mlir::affine::AffineDialect, mlir::arith::ArithDialect, mlir::cf::ControlFlowDialect,
                  mlir::func::FuncDialect, mlir::gpu::GPUDialect, mlir::index::IndexDialect,
                  mlir::LLVM::LLVMDialect, mlir::math::MathDialect, mlir::memref::MemRefDialect,
                  mlir::NVVM::NVVMDialect, mlir::ROCDL::ROCDLDialect, mlir::scf::SCFDialect, mlir::ub::UBDialect,
                  mlir::vector::VectorDialect>();
  mlir::arith::registerConvertArithToLLVMInterface(registry);
  mlir::cf::registerConvertControlFlowToLLVMInterface(registry);
  mlir::registerConvertFuncToLLVMInterface(registry);
  mlir::index::registerConvertIndexToLLVMInterface(registry);
  mlir::registerConvertMathToLLVMInterface(registry);
  mlir::registerConvertMemRefToLLVMInterface(registry);
  mlir::ub::registerConvertUBToLLVMInterface(registry);
  mlir::vector::registerConvertVectorToLLVMInterface(registry);
  mlir::registerConvertNVVMToLLVMInterface(registry);
  mlir::NVVM::registerConvertGpuToNVVMInterface(registry);
  mlir::registerBuiltinDialectTranslation(registry);
  mlir::registerLLVMDialectTranslation(registry);
  mlir::registerNVVMDialectTranslation(registry);
  mlir::registerROCDLDialectTranslation(registry);
  return registry;
}

// MLIR's diagnostics for the source, as `file:line:col: error: ...` lines.
class Diagnostics {
 public:
  Diagnostics(llvm::SourceMgr& sources, mlir::MLIRContext& context)
      : stream_(text_), handler_(sources, &context, stream_) {}
  [[noreturn]] void fail(const std::string& what) {
    std::string detail = text();
    throw CompileError(detail.empty() ? what : what + ":\n" + detail);
  }
  std::string text() {
    stream_.flush();
    while (!text_.empty() && text_.back() == '\n') text_.pop_back();
    return text_;
  }

 private:
  std::string text_;
  llvm::raw_string_ostream stream_;
  mlir::SourceMgrDiagnosticHandler handler_;
};

// An MLIR scalar type as signatures.cc's helpers describe one (index is a signed 64-bit integer,
// signless integers are signed); bits 0 for anything else.
struct Scalar {
  bool is_float = false, is_signed = true;
  unsigned bits = 0;
};
Scalar scalar_of(mlir::Type type) {
  if (type.isIndex()) return {false, true, 64};
  if (auto real = mlir::dyn_cast<mlir::FloatType>(type)) return {true, true, real.getWidth()};
  if (auto integer = mlir::dyn_cast<mlir::IntegerType>(type)) return {false, !integer.isUnsigned(), integer.getWidth()};
  return {};
}

// A C type for an MLIR argument or result type, as proteus calls it (engine.h: CType).
CType c_type(mlir::Type type) {
  CType t;
  llvm::raw_string_ostream os(t.spelling);
  type.print(os);
  if (mlir::isa<mlir::LLVM::LLVMPointerType>(type)) {
    t.code = 'p';  // an opaque pointer: nothing known about what it points to
  } else if (auto memref = mlir::dyn_cast<mlir::MemRefType>(type)) {
    // Passed as MLIR's calling convention expands it: allocated and aligned pointers, offset,
    // sizes, strides. Proteus builds them from an array (marshal.cc); only identity layouts,
    // where the array's C-contiguous strides are the ones the code assumes.
    Scalar element = scalar_of(memref.getElementType());
    char letter = !element.is_float && element.bits == 1 ? '?'  // i1: NumPy's bool
                                                         : element_format(element.is_float, element.is_signed, element.bits);
    if (memref.getLayout().isIdentity() && letter && !memref.getMemorySpace()) {
      t.code = 'm';
      t.pointee = letter;
      for (int64_t size : memref.getShape()) t.memref_shape.push_back(mlir::ShapedType::isDynamic(size) ? -1 : size);
    }
  } else {
    Scalar scalar = scalar_of(type);
    t.code = scalar_code(scalar.is_float, scalar.is_signed, scalar.bits);
  }
  return t;
}

void collect_signatures(mlir::Operation* scope, Signatures* out) {
  scope->walk([&](mlir::FunctionOpInterface fn) {
    if (fn.isExternal() || fn.isPrivate()) return;
    mlir::Operation* parent = fn->getParentOp();
    if (parent != scope) return;  // nested symbol tables are not what the module exports
    FunctionSignature signature;
    llvm::ArrayRef<mlir::Type> results = fn.getResultTypes();
    if (results.size() > 1) {
      signature.problem = "it returns " + std::to_string(results.size()) + " results (proteus calls functions of one)";
    } else if (results.empty()) {
      signature.result.code = 'v';
      signature.result.spelling = "void";
    } else {
      signature.result = c_type(results[0]);
      if (signature.result.code == 'm') {
        signature.result.code = 0;
        signature.problem = "it returns a memref (proteus passes memrefs as arguments only)";
      }
    }
    for (mlir::Type type : fn.getArgumentTypes()) signature.params.push_back(c_type(type));
    (*out)[fn.getName().str()] = std::move(signature);
  });
}

// The GPU module a CUDA/HIP compile lowers: the module must be a gpu.container_module holding
// exactly one gpu.module.
mlir::gpu::GPUModuleOp the_gpu_module(mlir::ModuleOp module, const std::string& target) {
  std::vector<mlir::gpu::GPUModuleOp> found;
  for (auto gpu_module : module.getOps<mlir::gpu::GPUModuleOp>()) found.push_back(gpu_module);
  if (found.empty())
    throw CompileError("target='" + target + "' needs MLIR with a gpu.module of gpu.func kernels inside a "
                       "`module attributes {gpu.container_module}`; this module has no gpu.module");
  if (found.size() > 1)
    throw CompileError("target='" + target + "' compiles exactly one gpu.module per module; this one has " +
                       std::to_string(found.size()) + " (@" + found[0].getName().str() + ", @" +
                       found[1].getName().str() + (found.size() > 2 ? ", ..." : "") + "): compile each separately");
  if (!module->hasAttr(mlir::gpu::GPUDialect::getContainerModuleAttrName()))
    throw CompileError("target='" + target + "': the module holding gpu.module @" + found[0].getName().str() +
                       " needs the gpu.container_module attribute (`module attributes {gpu.container_module} {...}`)");
  bool any_kernel = false;
  for (auto fn : found[0].getOps<mlir::gpu::GPUFuncOp>()) any_kernel |= fn.isKernel();
  if (!any_kernel)
    throw CompileError("target='" + target + "': gpu.module @" + found[0].getName().str() +
                       " has no kernel (a `gpu.func @name(...) kernel`)");
  return found[0];
}

// Links the functions `module` calls from the device libraries (libdevice, OCML) into it.
void link_device_libraries(llvm::Module& module, const std::vector<std::string>& libraries) {
  bool calls_library = false;
  for (const llvm::Function& fn : module)
    calls_library |= fn.isDeclaration() && (fn.getName().starts_with("__nv_") || fn.getName().starts_with("__ocml_") ||
                                            fn.getName().starts_with("__ockl_"));
  if (!calls_library) return;
  for (const std::string& path : libraries) {
    auto buffer = llvm::MemoryBuffer::getFile(path);
    if (!buffer) throw CompileError("cannot read the device library " + path + ": " + buffer.getError().message());
    auto library = llvm::parseBitcodeFile((*buffer)->getMemBufferRef(), module.getContext());
    if (!library) throw CompileError("the device library " + path + " is not LLVM bitcode: " +
                                     llvm::toString(library.takeError()));
    (*library)->setTargetTriple(module.getTargetTriple());
    (*library)->setDataLayout(module.getDataLayout());
    if (llvm::Linker::linkModules(module, std::move(*library), llvm::Linker::LinkOnlyNeeded,
                                  [](llvm::Module& linked, const llvm::StringSet<>& names) {
                                    for (const auto& name : names)  // the library's, not the kernels
                                      if (llvm::GlobalValue* gv = linked.getNamedValue(name.getKey()))
                                        if (!gv->isDeclaration()) gv->setLinkage(llvm::GlobalValue::InternalLinkage);
                                  }))
      throw CompileError("cannot link the device library " + path);
  }
}

}  // namespace

// The passes on the top-level module, as mlir-opt's --pass-pipeline="builtin.module(...)" says them.
std::string mlir_pipeline(const std::string& target) {
  if (target == "host") return std::string(kCommonLowering) + "," + kHostLowering;
  const char* gpu = target == "cuda" ? "convert-gpu-to-nvvm" : "convert-gpu-to-rocdl";
  return std::string("gpu.module(") + kCommonLowering + "," + gpu + ",reconcile-unrealized-casts)";
}

std::unique_ptr<llvm::Module> compile_mlir(const CompileRequest& request, llvm::LLVMContext& llvm_context,
                                           const std::vector<std::string>& device_libraries, Signatures* signatures) {
  register_passes();
  mlir::MLIRContext context(dialects(), mlir::MLIRContext::Threading::DISABLED);
  llvm::SourceMgr sources;
  sources.AddNewSourceBuffer(
      llvm::MemoryBuffer::getMemBufferCopy(request.source, request.source_name), llvm::SMLoc());
  Diagnostics diagnostics(sources, context);
  // Parsing verifies the module: invalid MLIR never reaches a pass.
  mlir::OwningOpRef<mlir::ModuleOp> module = mlir::parseSourceFile<mlir::ModuleOp>(sources, &context);
  if (!module) diagnostics.fail("cannot parse the MLIR in " + request.source_name);
  checkpoint();
  bool host = request.target == "host";
  std::vector<std::string> private_functions;  // MLIR's private visibility: internal to the module
  mlir::Operation* lowered = module->getOperation();
  if (host) {
    if (!module->getOps<mlir::gpu::GPUModuleOp>().empty())
      throw CompileError("target='host' compiles func.func functions; this module has a gpu.module: compile it with "
                         "target='cuda' or target='hip'");
    if (signatures) collect_signatures(lowered, signatures);
    for (auto fn : module->getOps<mlir::FunctionOpInterface>())
      if (fn.isPrivate() && !fn.isExternal()) private_functions.push_back(fn.getName().str());
  } else {
    lowered = the_gpu_module(*module, request.target).getOperation();
    if (signatures) collect_signatures(lowered, signatures);  // the kernels'
  }
  mlir::PassManager passes(&context);
  passes.enableVerifier(true);  // after every pass: a lowering problem is an error, not a crash
  std::string pipeline_error;
  llvm::raw_string_ostream pipeline_errors(pipeline_error);
  if (mlir::failed(mlir::parsePassPipeline(mlir_pipeline(request.target), passes, pipeline_errors)))
    throw CompileError("the MLIR pass pipeline is invalid: " + pipeline_error);
  if (mlir::failed(passes.run(*module))) diagnostics.fail("cannot lower the MLIR in " + request.source_name);
  checkpoint();
  // A GPU compile translates the gpu.module's contents: moved into a module of their own.
  mlir::OwningOpRef<mlir::ModuleOp> device;
  mlir::Operation* translated = module->getOperation();
  if (!host) {
    auto gpu_module = mlir::cast<mlir::gpu::GPUModuleOp>(lowered);
    device = mlir::ModuleOp::create(gpu_module.getLoc(), gpu_module.getName());
    device->getBody()->getOperations().splice(device->getBody()->begin(), gpu_module.getBody()->getOperations());
    translated = device->getOperation();
  }
  std::unique_ptr<llvm::Module> result = mlir::translateModuleToLLVMIR(translated, llvm_context, request.source_name);
  if (!result) diagnostics.fail("cannot translate the lowered MLIR in " + request.source_name + " to LLVM IR");
  for (const std::string& name : private_functions)
    if (llvm::Function* fn = result->getFunction(name)) fn->setLinkage(llvm::GlobalValue::InternalLinkage);
  if (!host) link_device_libraries(*result, device_libraries);
  return result;
}

}  // namespace proteus
