// Stand-ins for a device target this engine is built without (see cc/BUILD.bazel): each
// backend links only the device targets it ships, so the host wheel carries no GPU code
// generator. Built once per target with PROTEUS_ABSENT_CUDA or PROTEUS_ABSENT_HIP.
#include "device.h"

namespace proteus {
namespace {
[[noreturn]] void absent(const char* target) {
  throw CompileError(std::string("this backend is built without the ") + target + " target");
}
}  // namespace

#ifdef PROTEUS_ABSENT_CUDA
std::string cuda_cache_context(const CompileRequest&) { absent("CUDA"); }
CachedObject produce_cuda(const CompileRequest&) { absent("CUDA"); }
DeviceRuntime& cuda_runtime() { absent("CUDA"); }
CachedObject cuda_codegen(llvm::Module&, const std::string&) { absent("CUDA"); }
std::string cuda_toolkit_description() { return "none: this backend has no CUDA target"; }
#endif

#ifdef PROTEUS_ABSENT_HIP
std::string hip_cache_context(const CompileRequest&) { absent("HIP"); }
CachedObject produce_hip(const CompileRequest&) { absent("HIP"); }
DeviceRuntime& hip_runtime() { absent("HIP"); }
CachedObject hip_codegen(llvm::Module&, const std::string&) { absent("HIP"); }
std::string rocm_description() { return "none: this backend has no HIP target"; }
#endif

}  // namespace proteus
