// The C signatures of the functions a compile defines (ARCHITECTURE 4, "Signatures"): from clang's
// AST for C++ (what the declaration says, pointee types and const included), from the function
// types for LLVM IR (no pointee types there). get_function takes them when argtypes are omitted and
// checks explicit ones against them.
#include "clang/AST/ASTConsumer.h"
#include "clang/AST/ASTContext.h"
#include "clang/AST/Decl.h"
#include "clang/AST/DeclCXX.h"
#include "clang/AST/Mangle.h"
#include "clang/Basic/SourceManager.h"
#include "internal.h"
#include "llvm/IR/DerivedTypes.h"

namespace proteus {

char scalar_code(bool is_float, bool is_signed, uint64_t bits) {
  if (is_float) return bits == 32 ? 'f' : bits == 64 ? 'd' : 0;
  if (is_signed) return bits == 8 ? 'b' : bits == 32 ? 'i' : bits == 64 ? 'l' : 0;
  return bits == 32 ? 'I' : bits == 64 ? 'L' : 0;
}

char element_format(bool is_float, bool is_signed, uint64_t bits) {
  if (is_float) return bits == 32 ? 'f' : bits == 64 ? 'd' : 0;
  switch (bits) {
    case 8: return is_signed ? 'b' : 'B';
    case 16: return is_signed ? 'h' : 'H';
    case 32: return is_signed ? 'i' : 'I';
    case 64: return is_signed ? 'q' : 'Q';
  }
  return 0;
}

namespace {

class SignatureCollector : public clang::ASTConsumer {
 public:
  explicit SignatureCollector(Signatures* out) : out_(out) {}

  void Initialize(clang::ASTContext& context) override {
    context_ = &context;
    names_ = std::make_unique<clang::ASTNameGenerator>(context);
  }

  // Top-level declarations parsed in this compile (not those a precompiled header holds).
  bool HandleTopLevelDecl(clang::DeclGroupRef group) override {
    for (clang::Decl* decl : group) visit(decl);
    return true;
  }

 private:
  void visit(clang::Decl* decl) {
    // Only what the main file declares: never walk the headers' namespaces (std holds thousands).
    if (!context_->getSourceManager().isInMainFile(decl->getLocation())) return;
    if (auto* ns = llvm::dyn_cast<clang::NamespaceDecl>(decl)) {
      for (clang::Decl* inner : ns->decls()) visit(inner);
    } else if (auto* linkage = llvm::dyn_cast<clang::LinkageSpecDecl>(decl)) {
      for (clang::Decl* inner : linkage->decls()) visit(inner);
    } else if (auto* fn = llvm::dyn_cast<clang::FunctionDecl>(decl)) {
      add(fn);
    } else if (auto* record = llvm::dyn_cast<clang::CXXRecordDecl>(decl)) {
      for (clang::Decl* inner : record->decls())
        if (auto* method = llvm::dyn_cast<clang::CXXMethodDecl>(inner)) add(method);
    }
  }

  void add(clang::FunctionDecl* fn) {
    if (!fn->doesThisDeclarationHaveABody() || !fn->isExternallyVisible() || fn->isDependentContext()) return;
    FunctionSignature signature;
    signature.result = c_type(fn->getReturnType(), true);
    for (const clang::ParmVarDecl* param : fn->parameters()) signature.params.push_back(c_type(param->getType(), false));
    if (auto* method = llvm::dyn_cast<clang::CXXMethodDecl>(fn); method && method->isInstance())
      signature.problem = "it is a member function (call a free function that calls it)";
    else if (fn->isVariadic())
      signature.problem = "it is variadic (...)";
    (*out_)[names_->getName(fn)] = std::move(signature);
  }

  CType c_type(clang::QualType type, bool result) {
    CType out;
    out.spelling = type.getAsString(context_->getPrintingPolicy());
    clang::QualType canonical = type.getCanonicalType();
    if (canonical->isVoidType()) {
      out.code = result ? 'v' : 0;
      return out;
    }
    if (canonical->isPointerType()) {
      out.code = 'p';
      clang::QualType pointee = canonical->getPointeeType();
      out.pointee_const = pointee.isConstQualified();
      out.pointee = pointee->isVoidType() ? 'v' : element(pointee);
      if (!out.pointee) out.pointee = '*';  // a struct, a pointer: any element, but constness holds
      return out;
    }
    if (canonical->isEnumeralType() || canonical->isBooleanType() || canonical->isRealFloatingType() ||
        canonical->isIntegerType()) {
      if (canonical->isBooleanType()) {
        out.code = 'b';  // a C++ bool is one byte, 0 or 1
      } else {
        uint64_t bits = context_->getTypeSize(canonical);
        out.code = scalar_code(canonical->isRealFloatingType(), canonical->isSignedIntegerOrEnumerationType(), bits);
      }
    }
    return out;  // code 0: references, structs, long double, short...: not callable through proteus
  }

  char element(clang::QualType type) {
    type = type.getCanonicalType();
    if (type->isBooleanType()) return '?';
    if (!type->isRealFloatingType() && !type->isIntegerType()) return 0;
    return element_format(type->isRealFloatingType(), type->isSignedIntegerOrEnumerationType(),
                          context_->getTypeSize(type));
  }

  Signatures* out_;
  clang::ASTContext* context_ = nullptr;
  std::unique_ptr<clang::ASTNameGenerator> names_;
};

}  // namespace

std::unique_ptr<clang::ASTConsumer> signature_collector(Signatures* out) {
  return std::make_unique<SignatureCollector>(out);
}

void ir_signatures(const llvm::Module& module, Signatures* out) {
  auto c_type = [](llvm::Type* type, bool result) {
    CType t;
    llvm::raw_string_ostream os(t.spelling);
    type->print(os);
    if (type->isVoidTy())
      t.code = result ? 'v' : 0;
    else if (type->isPointerTy())
      t.code = 'p';  // pointee 0: IR does not say what it points to, so nothing is checked
    else if (type->isFloatTy() || type->isDoubleTy())
      t.code = scalar_code(true, true, type->isFloatTy() ? 32 : 64);
    else if (type->isIntegerTy())
      t.code = scalar_code(false, true, type->getIntegerBitWidth());  // IR has no signedness: signed
    return t;
  };
  for (const llvm::Function& fn : module) {
    if (fn.isDeclaration() || fn.hasLocalLinkage()) continue;
    FunctionSignature signature;
    signature.result = c_type(fn.getReturnType(), true);
    for (const llvm::Argument& arg : fn.args()) signature.params.push_back(c_type(arg.getType(), false));
    if (fn.isVarArg()) signature.problem = "it is variadic (...)";
    (*out)[fn.getName().str()] = std::move(signature);
  }
}

}  // namespace proteus
