// Call thunks: the JIT-compiled trampolines through which Python calls compiled functions, and the
// C++ exceptions they catch (engine.h: call_thunk, last_native_exception).
#include <cstdlib>
#include <map>
#include <mutex>

#include "internal.h"
#include "llvm/Demangle/Demangle.h"

namespace proteus {
namespace {

// What the last C++ exception caught by a call thunk on this thread was (thunks call this, with
// the exception's mangled type name and, for a std::exception, its what(), before releasing it).
thread_local NativeException caught_exception;

}  // namespace

void exception_caught(const char* mangled_type, const char* what) {
  std::string mangled = mangled_type ? mangled_type : "";
  if (!mangled.empty() && mangled[0] == '*') mangled.erase(0, 1);  // libstdc++'s local-type marker
  char* demangled = llvm::itaniumDemangle(mangled);  // a type's mangling, as in typeid(...).name()
  caught_exception.type_name = demangled ? demangled : mangled.empty() ? "of unknown type" : mangled;
  std::free(demangled);
  caught_exception.has_what = what != nullptr;
  caught_exception.what = what ? what : "";
}

CallThunk call_thunk(const std::string& signature) {
  static std::mutex mutex;
  static std::map<std::string, std::pair<std::shared_ptr<CompiledModule>, CallThunk>> thunks;
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = thunks.find(signature);
    if (it != thunks.end()) return it->second.second;
  }
  auto type_of = [&](char kind) -> std::string {
    switch (kind) {
      case 'b': return "i8";
      case 'i': case 'I': return "i32";
      case 'l': case 'L': return "i64";
      case 'f': return "float";
      case 'd': return "double";
      case 'p': return "ptr";
      case 'v': return "void";
    }
    throw std::invalid_argument("bad call signature '" + signature + "'");
  };
  // i8 is sign-extended by the caller on x86-64 and AArch64 (clang's `signext`).
  auto ext = [](char kind) { return kind == 'b' ? std::string(" signext") : std::string(); };
  if (signature.size() < 3 || signature[1] != '(' || signature.back() != ')')
    throw std::invalid_argument("bad call signature '" + signature + "'");
  char ret = signature[0];
  std::string args = signature.substr(2, signature.size() - 3);
  std::string body, call_args;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string n = std::to_string(i);
    body += "  %p" + n + " = getelementptr inbounds i64, ptr %args, i64 " + n + "\n";
    body += "  %a" + n + " = load " + type_of(args[i]) + ", ptr %p" + n + ", align 8\n";
    call_args += (i ? ", " : "") + type_of(args[i]) + ext(args[i]) + " %a" + n;
  }
  // The call is an invoke: a C++ exception escaping `fn` lands here instead of unwinding into the
  // interpreter (where it would terminate the process). For a std::exception (Itanium ABI: what()
  // is vtable slot 2) its what() is passed on with the type name, copied before the exception is freed.
  std::string call = "invoke" + ext(ret) + " " + type_of(ret) + " %fn(" + call_args + ") to label %done unwind label %threw";
  if (ret == 'v')
    body += "  " + call + "\ndone:\n";
  else
    body += "  %r = " + call + "\ndone:\n  store " + type_of(ret) + " %r, ptr %ret, align 8\n";
  body += "  ret i32 0\n"
          "threw:\n"
          "  %lp = landingpad { ptr, i32 } catch ptr @_ZTISt9exception catch ptr null\n"
          "  %exception = extractvalue { ptr, i32 } %lp, 0\n"
          "  %selector = extractvalue { ptr, i32 } %lp, 1\n"
          "  %std_id = call i32 @llvm.eh.typeid.for.p0(ptr @_ZTISt9exception)\n"
          "  %is_std = icmp eq i32 %selector, %std_id\n"
          "  %object = call ptr @__cxa_begin_catch(ptr %exception)\n"
          "  %type = call ptr @__cxa_current_exception_type()\n"
          "  %name_field = getelementptr inbounds i8, ptr %type, i64 8\n"
          "  %name = load ptr, ptr %name_field\n"
          "  br i1 %is_std, label %std, label %report\n"
          "std:\n"
          "  %vtable = load ptr, ptr %object\n"
          "  %what_slot = getelementptr inbounds ptr, ptr %vtable, i64 2\n"
          "  %what_fn = load ptr, ptr %what_slot\n"
          "  %what_text = call ptr %what_fn(ptr %object)\n"
          "  br label %report\n"
          "report:\n"
          "  %what = phi ptr [ null, %threw ], [ %what_text, %std ]\n"
          "  call void @__proteus_exception_caught(ptr %name, ptr %what)\n"
          "  call void @__cxa_end_catch()\n"
          "  ret i32 1\n";
  CompileRequest request;
  request.frontend = "llvmir";
  request.internal = true;
  request.source_name = "thunk " + signature;
  request.source = "declare i32 @__gxx_personality_v0(...)\n"
                   "declare ptr @__cxa_begin_catch(ptr)\n"
                   "declare void @__cxa_end_catch()\n"
                   "declare ptr @__cxa_current_exception_type()\n"
                   "declare i32 @llvm.eh.typeid.for.p0(ptr)\n"
                   "declare void @__proteus_exception_caught(ptr, ptr)\n"
                   "@_ZTISt9exception = external constant ptr\n"
                   "define i32 @thunk(ptr %fn, ptr %args, ptr %ret) uwtable personality ptr @__gxx_personality_v0 {\n"
                   "entry:\n" + body + "}\n";
  auto module = compile(request);
  auto thunk = reinterpret_cast<CallThunk>(module->address("thunk"));
  std::lock_guard<std::mutex> lock(mutex);
  // Another thread may have compiled the same signature meanwhile: everyone returns the thunk that
  // is kept (ours, if it lost, is freed with `module` when we return).
  auto kept = thunks.emplace(signature, std::make_pair(std::move(module), thunk)).first;
  return kept->second.second;
}

const NativeException& last_native_exception() { return caught_exception; }

}  // namespace proteus
