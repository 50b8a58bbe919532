// target="hip": the ROCm root, device compiles (clang HIP -> AMDGPU object -> code object with lld
// in process), and the HIP runtime, opened with dlopen when a kernel is first needed. Building
// this needs only LLVM 22 (the AMDGPU target and lld); everything of ROCm is found at run time.

#include <cstdlib>
#include <cstring>
#include <mutex>

#include "device.h"
#include "llvm/Bitcode/BitcodeWriter.h"
#include "lld/Common/Driver.h"
#include "llvm/IR/CallingConv.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Target/TargetOptions.h"

LLD_HAS_DRIVER(elf)

extern "C" {
void LLVMInitializeAMDGPUTargetInfo();
void LLVMInitializeAMDGPUTarget();
void LLVMInitializeAMDGPUTargetMC();
void LLVMInitializeAMDGPUAsmPrinter();
void LLVMInitializeAMDGPUAsmParser();  // the device libraries hold inline assembly
}

namespace proteus {
namespace {


struct Rocm {
  std::string root;         // HIP headers at include/hip
  std::string device_libs;  // amdgcn/bitcode (ocml, ockl, oclc_*)
  int code_object_version;  // the newest the device libraries support (6 needs ROCm 6.3+)
  std::string description;
};

Rocm resolve_rocm() {
  std::string root, source;
  for (const char* var : {"PROTEUS_ROCM_PATH", "ROCM_PATH"}) {
    if (std::string v = text_setting(var); !v.empty()) {
      root = v;
      source = var;
      break;
    }
  }
  if (root.empty() && path_exists("/opt/rocm")) root = "/opt/rocm", source = "/opt/rocm";
  if (root.empty())
    throw CompileError("no ROCm found: set PROTEUS_ROCM_PATH or ROCM_PATH to a ROCm install, or install ROCm in /opt/rocm");
  if (!path_exists(root + "/include/hip/hip_runtime.h"))
    throw CompileError(source + "=" + root + " has no include/hip/hip_runtime.h; point PROTEUS_ROCM_PATH (or ROCM_PATH) "
                       "at a ROCm install");
  // ROCm's own layout, its lib/ variant, and Debian's multiarch one.
  for (const char* sub : {"/amdgcn/bitcode", "/lib/amdgcn/bitcode", "/lib/x86_64-linux-gnu/amdgcn/bitcode",
                          "/lib/llvm/lib/clang/amdgcn/bitcode"}) {
    std::string dir = root + sub;
    if (!path_exists(dir + "/ocml.bc")) continue;
    int version = path_exists(dir + "/oclc_abi_version_600.bc") ? 6 : path_exists(dir + "/oclc_abi_version_500.bc") ? 5 : 4;
    return {root, dir, version, source + "=" + root + " (device libraries " + dir + ", code object v" + std::to_string(version) + ")"};
  }
  throw CompileError(source + "=" + root + " has no ROCm device libraries (amdgcn/bitcode/ocml.bc); install rocm-device-libs "
                     "or point PROTEUS_ROCM_PATH (or ROCM_PATH) at a complete ROCm");
}

Rocm cached_rocm() {
  static EnvironmentCache<Rocm> cache({"PROTEUS_ROCM_PATH", "ROCM_PATH"}, resolve_rocm);
  return cache.get();
}

std::string hip_arch() {
  std::string arch = text_setting("PROTEUS_HIP_ARCH");
  if (arch.rfind("gfx", 0) != 0) throw ConfigError("PROTEUS_HIP_ARCH=" + arch + " is not an AMDGPU arch like gfx90a");
  return arch;
}

// gfx9 GPUs run 64-wide wavefronts, gfx10 and later 32 (older HIP headers read this macro).
int wavefront_size(const std::string& arch) { return arch.rfind("gfx9", 0) == 0 ? 64 : 32; }

const DeviceMachine amdgpu = {"amdgcn-amd-amdhsa", llvm::Reloc::PIC_, "target='hip'",
                               [] {
                                 LLVMInitializeAMDGPUTargetInfo();
                                 LLVMInitializeAMDGPUTarget();
                                 LLVMInitializeAMDGPUTargetMC();
                                 LLVMInitializeAMDGPUAsmPrinter();
                                 LLVMInitializeAMDGPUAsmParser();
                               },
                               llvm::CodeGenFileType::ObjectFile};

// The AMDGPU object -> an HSA code object (a shared ELF), linked by lld in this process.
std::string link_code_object(const std::string& object) {
  static std::mutex lld_mutex;  // lld keeps global state: one link at a time
  TempDir tmp;
  write_file_bytes(tmp.path + "/kernel.o", object);
  std::string input = tmp.path + "/kernel.o", out = tmp.path + "/kernel.hsaco";
  std::vector<const char*> args = {"ld.lld", "-shared", "--no-undefined", input.c_str(), "-o", out.c_str()};
  std::string messages;
  llvm::raw_string_ostream os(messages);
  lld::Result result;
  {
    std::lock_guard<std::mutex> lock(lld_mutex);
    result = lld::lldMain(args, os, os, {{lld::Gnu, &lld::elf::link}});
  }
  if (result.retCode != 0) throw CompileError("linking the AMDGPU code object (lld) failed:\n" + messages);
  return read_file_bytes(out);
}

// --- the HIP runtime -------------------------------------------------------------------------

using hipError_t = int;
struct HipApi {
  RuntimeLibrary lib;
  hipError_t (*hipGetDeviceCount)(int*);
  hipError_t (*hipSetDevice)(int);
  hipError_t (*hipModuleLoadData)(void**, const void*);
  hipError_t (*hipModuleUnload)(void*);
  hipError_t (*hipModuleGetFunction)(void**, void*, const char*);
  hipError_t (*hipModuleLaunchKernel)(void*, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, void*,
                                      void**, void**);
  const char* (*hipGetErrorName)(hipError_t);
  const char* (*hipGetErrorString)(hipError_t);
};

std::string hip_error(const HipApi& h, hipError_t code, const std::string& what) {
  const char* name = h.hipGetErrorName ? h.hipGetErrorName(code) : nullptr;
  const char* text = h.hipGetErrorString ? h.hipGetErrorString(code) : nullptr;
  return "HIP runtime (libamdhip64.so): " + what + " failed: " + (name ? name : "hip error " + std::to_string(code)) +
         (text ? std::string(" (") + text + ")" : "");
}

// Opened at the first kernel use, never at import or compile (host use needs no ROCm).
HipApi& hip_api() {
  static HipApi h;
  static InitialiseOnce once;
  once.ensure([] {
    h.lib.open({PROTEUS_RUNTIME_LIBRARIES},  // backends/facts.bzl
               "the HIP runtime of ROCm, needed to run HIP kernels");
    h.lib.bind(h.hipGetErrorName, "hipGetErrorName");
    h.lib.bind(h.hipGetErrorString, "hipGetErrorString");
    h.lib.bind(h.hipGetDeviceCount, "hipGetDeviceCount");
    h.lib.bind(h.hipSetDevice, "hipSetDevice");
    h.lib.bind(h.hipModuleLoadData, "hipModuleLoadData");
    h.lib.bind(h.hipModuleUnload, "hipModuleUnload");
    h.lib.bind(h.hipModuleGetFunction, "hipModuleGetFunction");
    h.lib.bind(h.hipModuleLaunchKernel, "hipModuleLaunchKernel");
    int count = 0;
    if (hipError_t rc = h.hipGetDeviceCount(&count)) throw DeviceError(hip_error(h, rc, "hipGetDeviceCount"));
    if (count == 0) throw DeviceError("HIP runtime (libamdhip64.so): no AMD GPU is present");
    if (hipError_t rc = h.hipSetDevice(0)) throw DeviceError(hip_error(h, rc, "hipSetDevice(0)"));
  });
  return h;
}

class HipRuntime : public DeviceRuntime {
 public:
  void* load(const std::string& image) override {
    HipApi& h = hip_api();
    void* module = nullptr;
    if (hipError_t rc = h.hipModuleLoadData(&module, image.data())) throw DeviceError(hip_error(h, rc, "hipModuleLoadData"));
    return module;
  }
  void unload(void* module) override { hip_api().hipModuleUnload(module); }
  void* function(void* module, const std::string& name) override {
    HipApi& h = hip_api();
    void* function = nullptr;
    if (hipError_t rc = h.hipModuleGetFunction(&function, module, name.c_str()))
      throw DeviceError(hip_error(h, rc, "hipModuleGetFunction('" + name + "')"));
    return function;
  }
  void launch(void* function, const unsigned grid[3], const unsigned block[3], unsigned shmem, void* stream,
              void** params) override {
    HipApi& h = hip_api();
    if (hipError_t rc = h.hipModuleLaunchKernel(function, grid[0], grid[1], grid[2], block[0], block[1], block[2], shmem,
                                                stream, params, nullptr))
      throw DeviceError(hip_error(h, rc, "hipModuleLaunchKernel"));
  }
};

}  // namespace

Artifact hip_codegen(llvm::Module& module, const std::string& arch);  // below

DeviceRuntime& hip_runtime() {
  static HipRuntime runtime;
  return runtime;
}

std::string rocm_description() {
  try {
    return cached_rocm().description;
  } catch (const CompileError& e) {
    return std::string("none: ") + e.what();
  }
}

std::string hip_cache_context(const CompileRequest&) {
  Rocm rocm = cached_rocm();
  return hip_arch() + '\0' + rocm.description;
}

// One HIP compile: the code object, its kernels, the device IR.
Artifact produce_hip(const CompileRequest& request) {
  if (request.compiler == "nvcc") throw CompileError("compiler='nvcc' cannot compile for target='hip'; use compiler='clang'");
  std::string arch = hip_arch();
  Rocm rocm = cached_rocm();
  LanguageFlags hip;
  hip.runs_in_this_process = false;
  hip.clang_optimises = true;
  hip.language = "hip";
  hip.target = {"--cuda-device-only", "--offload-arch=" + arch, "--hip-path=" + rocm.root,
                "--rocm-device-lib-path=" + rocm.device_libs,
                "-mcode-object-version=" + std::to_string(rocm.code_object_version),
                "-D__AMDGCN_WAVEFRONT_SIZE=" + std::to_string(wavefront_size(arch)),
                "-include", "hip/hip_runtime.h"};  // as hipcc does: sources need not include it
  hip.precompiled_headers = false;
  // OCML and OCKL, then the control libraries they read (as clang's HIP driver picks them).
  std::string isa = arch.substr(3, arch.find(':') == std::string::npos ? std::string::npos : arch.find(':') - 3);
  for (const std::string& name : std::initializer_list<std::string>{"ocml", "ockl", "oclc_isa_version_" + isa, "oclc_abi_version_" +
                           std::to_string(rocm.code_object_version * 100), "oclc_finite_only_off",
                           "oclc_unsafe_math_off", "oclc_correctly_rounded_sqrt_on", "oclc_daz_opt_off",
                           std::string("oclc_wavefrontsize64_") + (wavefront_size(arch) == 64 ? "on" : "off")}) {
    std::string path = rocm.device_libs + "/" + name + ".bc";
    if (path_exists(path)) hip.device_libraries.push_back(path);
  }
  return produce_device(request, hip, hip_codegen, arch);
}

Artifact hip_codegen(llvm::Module& module, const std::string& arch) {
  Artifact entry;
  entry.arch = arch;
  for (const llvm::Function& fn : module)
    if (!fn.isDeclaration() && fn.getCallingConv() == llvm::CallingConv::AMDGPU_KERNEL)
      entry.entry_points.push_back(fn.getName().str());
  entry.binary = link_code_object(device_code(module, amdgpu, arch));
  return entry;
}

// The target="hip" of this engine (cc/target.h): registered when this library is loaded.
const DeviceTarget hip_target({"hip", hip_cache_context, produce_hip, hip_runtime, hip_codegen, rocm_description});
const bool hip_registered = register_target(hip_target);

}  // namespace proteus
