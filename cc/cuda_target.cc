// target="cuda": the CUDA 12 toolkit, device compiles (clang CUDA -> NVPTX -> PTX -> cubin, or
// nvcc), GPU modules, and the CUDA driver, opened with dlopen when a kernel is first needed.
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>

#include <cuda.h>

#include "device.h"
#include "llvm/Bitcode/BitcodeWriter.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/Target/TargetOptions.h"

extern "C" {
void LLVMInitializeNVPTXTargetInfo();
void LLVMInitializeNVPTXTarget();
void LLVMInitializeNVPTXTargetMC();
void LLVMInitializeNVPTXAsmPrinter();
}

namespace proteus {
namespace {

constexpr int kCudaMajor = 12;
constexpr const char* kDefaultArch = "sm_90";  // no PROTEUS_CUDA_ARCH and no GPU to ask

int cuda_version_of(const std::string& include_dir) {  // CUDA_VERSION in cuda.h, e.g. 12080
  std::string header = read_file_bytes(include_dir + "/cuda.h");
  auto at = header.find("#define CUDA_VERSION ");
  return at == std::string::npos ? 0 : std::atoi(header.c_str() + at + 21);
}

struct Toolkit {
  std::string root;         // a CUDA install layout: bin/ include/ nvvm/libdevice
  std::string description;  // how it was found
};

// NVIDIA's pip wheels split the toolkit (nvidia/cuda_runtime, cuda_nvcc, cuda_cccl, ...); clang
// wants one install tree, so we lay out a private tree of symlinks to them.
std::string toolkit_view_from_wheels(const std::string& nvidia) {
  static std::string made;
  if (!made.empty()) return made;
  char templ[] = "/tmp/proteus-cuda-toolkit.XXXXXX";
  if (!mkdtemp(templ)) throw CompileError("cannot create a directory for the CUDA toolkit view in /tmp");
  std::string view = templ;
  mkdir((view + "/include").c_str(), 0700);
  // A link that cannot be made leaves a part of the view missing: clang then names what it lacks.
  (void)symlink((nvidia + "/cuda_nvcc/bin").c_str(), (view + "/bin").c_str());
  (void)symlink((nvidia + "/cuda_nvcc/nvvm").c_str(), (view + "/nvvm").c_str());
  (void)symlink((nvidia + "/cuda_runtime/lib").c_str(), (view + "/lib64").c_str());
  for (const char* part : {"cuda_runtime", "cuda_cccl", "cuda_nvcc", "curand"}) {
    std::string dir = nvidia + "/" + part + "/include";
    DIR* d = opendir(dir.c_str());
    if (!d) continue;
    while (struct dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      (void)symlink((dir + "/" + e->d_name).c_str(), (view + "/include/" + e->d_name).c_str());
    }
    closedir(d);
  }
  // clang's CUDA wrapper includes curand's device header; without nvidia-curand-cu12 an empty
  // one stands in (the curand device API is then unavailable, everything else works).
  if (!path_exists(view + "/include/curand_mtgp32_kernel.h"))
    std::ofstream(view + "/include/curand_mtgp32_kernel.h") << "// nvidia-curand-cu12 is not installed\n";
  made = view;
  return made;
}

Toolkit resolve_toolkit() {
  for (const char* var : {"PROTEUS_CUDA_HOME", "CUDA_HOME", "CUDA_PATH"}) {
    std::string root = text_setting(var);
    if (root.empty()) continue;
    int version = cuda_version_of(root + "/include");
    if (version / 1000 != kCudaMajor)
      throw CompileError(std::string(var) + "=" + root + " is " +
                         (version ? "CUDA " + std::to_string(version / 1000) + "." + std::to_string(version % 1000 / 10)
                                  : std::string("not a CUDA toolkit (no include/cuda.h)")) +
                         "; this backend needs CUDA " + std::to_string(kCudaMajor) + ": point " + var +
                         " at a CUDA 12 toolkit or unset it to use the pip-installed NVIDIA wheels");
    return {root, std::string(var) + "=" + root};
  }
  // NVIDIA's CUDA 12 wheels installed beside us (pip install <this backend>[toolkit]).
  std::string nvidia = library_directory() + "/../nvidia";
  if (path_exists(nvidia + "/cuda_runtime/include/cuda.h") && path_exists(nvidia + "/cuda_nvcc/nvvm/libdevice")) {
    int version = cuda_version_of(nvidia + "/cuda_runtime/include");
    if (version / 1000 == kCudaMajor) return {toolkit_view_from_wheels(nvidia), "pip-installed NVIDIA CUDA wheels in " + nvidia};
  }
  throw CompileError(
      "no CUDA 12 toolkit found: set PROTEUS_CUDA_HOME (or CUDA_HOME / CUDA_PATH) to a CUDA 12 install, or "
      "pip install '" PROTEUS_TARGET_DISTRIBUTION "[toolkit]' (NVIDIA's nvidia-cuda-runtime-cu12, "
      "nvidia-cuda-nvcc-cu12 and nvidia-cuda-cccl-cu12 wheels)");
}

Toolkit cached_toolkit() {
  static EnvironmentCache<Toolkit> cache({"PROTEUS_CUDA_HOME", "CUDA_HOME", "CUDA_PATH"}, resolve_toolkit);
  return cache.get();
}

// --- the driver ------------------------------------------------------------------------------

// The driver API, typed by cuda.h (CUDA 12), resolved with dlsym: nothing of CUDA is linked.
struct Driver {
  RuntimeLibrary lib;
  decltype(&::cuInit) cuInit;
  decltype(&::cuDeviceGetCount) cuDeviceGetCount;
  decltype(&::cuDeviceGet) cuDeviceGet;
  decltype(&::cuDeviceGetAttribute) cuDeviceGetAttribute;
  decltype(&::cuDevicePrimaryCtxRetain) cuDevicePrimaryCtxRetain;
  decltype(&::cuCtxSetCurrent) cuCtxSetCurrent;
  decltype(&::cuModuleLoadData) cuModuleLoadData;
  decltype(&::cuModuleUnload) cuModuleUnload;
  decltype(&::cuModuleGetFunction) cuModuleGetFunction;
  decltype(&::cuLaunchKernel) cuLaunchKernel;
  decltype(&::cuGetErrorName) cuGetErrorName;
  decltype(&::cuGetErrorString) cuGetErrorString;
  CUcontext context = nullptr;
};

std::string driver_error(const Driver& d, CUresult code, const char* what) {
  const char* name = nullptr;
  const char* text = nullptr;
  if (d.cuGetErrorName) d.cuGetErrorName(code, &name);
  if (d.cuGetErrorString) d.cuGetErrorString(code, &text);
  return std::string("CUDA driver: ") + what + " failed: " + (name ? name : "CUDA error " + std::to_string(code)) +
         (text ? std::string(" (") + text + ")" : "");
}

// Opened at the first kernel use, or at the first CUDA compile without PROTEUS_CUDA_ARCH (cuda_arch
// asks device 0 for its arch, falling back to sm_90 without a driver); never at import or for host code.
Driver& driver_api() {
  static Driver d;
  static InitialiseOnce once;
  once.ensure([] {
    d.lib.open({PROTEUS_RUNTIME_LIBRARIES}, "the NVIDIA driver, needed to run CUDA kernels");  // backends/facts.bzl
    d.lib.bind(d.cuGetErrorName, "cuGetErrorName");
    d.lib.bind(d.cuGetErrorString, "cuGetErrorString");
    d.lib.bind(d.cuInit, "cuInit");
    d.lib.bind(d.cuDeviceGetCount, "cuDeviceGetCount");
    d.lib.bind(d.cuDeviceGet, "cuDeviceGet");
    d.lib.bind(d.cuDeviceGetAttribute, "cuDeviceGetAttribute");
    d.lib.bind(d.cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
    d.lib.bind(d.cuCtxSetCurrent, "cuCtxSetCurrent");
    d.lib.bind(d.cuModuleLoadData, "cuModuleLoadData");
    d.lib.bind(d.cuModuleUnload, "cuModuleUnload");
    d.lib.bind(d.cuModuleGetFunction, "cuModuleGetFunction");
    d.lib.bind(d.cuLaunchKernel, "cuLaunchKernel");
    CUresult rc = d.cuInit(0);
    int count = 0;
    if (rc == 0) rc = d.cuDeviceGetCount(&count);
    if (rc != 0) throw DeviceError(driver_error(d, rc, "cuInit/cuDeviceGetCount"));
    if (count == 0) throw DeviceError("CUDA driver: no CUDA device is present");
    CUdevice device = 0;
    if ((rc = d.cuDeviceGet(&device, 0)) || (rc = d.cuDevicePrimaryCtxRetain(&d.context, device)))
      throw DeviceError(driver_error(d, rc, "cuDevicePrimaryCtxRetain (device 0)"));
  });
  return d;
}

void make_current(Driver& d) {
  if (CUresult rc = d.cuCtxSetCurrent(d.context)) throw DeviceError(driver_error(d, rc, "cuCtxSetCurrent"));
}

// PROTEUS_CUDA_ARCH, else device 0's compute capability (if a driver and GPU are here), else sm_90.
std::string cuda_arch() {
  if (std::string arch = text_setting("PROTEUS_CUDA_ARCH"); !arch.empty()) {
    if (arch.rfind("sm_", 0) != 0 || !std::atoi(arch.c_str() + 3))
      throw ConfigError("PROTEUS_CUDA_ARCH=" + arch + " is not a CUDA arch like sm_90");
    return arch;
  }
  static std::string detected = [] {
    try {
      Driver& d = driver_api();
      int major = 0, minor = 0;
      d.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0);
      d.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, 0);
      if (major) return "sm_" + std::to_string(major) + std::to_string(minor);
    } catch (const std::exception&) {
    }
    return std::string(kDefaultArch);
  }();
  return detected;
}

const DeviceMachine nvptx = {"nvptx64-nvidia-cuda", std::nullopt, "target='cuda'",
                              [] {
                                LLVMInitializeNVPTXTargetInfo();
                                LLVMInitializeNVPTXTarget();
                                LLVMInitializeNVPTXTargetMC();
                                LLVMInitializeNVPTXAsmPrinter();
                              },
                              llvm::CodeGenFileType::AssemblyFile};

// PTX -> cubin with the toolkit's ptxas; "" when there is none (the driver then JIT-compiles PTX).
std::string cubin_for(const std::string& ptx, const std::string& arch, const Toolkit& toolkit) {
  std::string ptxas = toolkit.root + "/bin/ptxas";
  if (!is_executable(ptxas)) return "";
  TempDir tmp;
  write_file_bytes(tmp.path + "/kernel.ptx", ptx);
  std::string output;
  if (run_command({ptxas, "-arch=" + arch, "-O" + std::to_string(std::min(codegen_opt_level(), 3)), tmp.path + "/kernel.ptx",
           "-o", tmp.path + "/kernel.cubin"},
          &output) != 0)
    throw CompileError("ptxas (" + ptxas + ") failed for " + arch + ":\n" + output);
  return read_file_bytes(tmp.path + "/kernel.cubin");
}

std::string nvcc_binary() {
  if (std::string bin = text_setting("PROTEUS_NVCC_BIN"); !bin.empty()) {
    if (!is_executable(bin)) throw ConfigError("PROTEUS_NVCC_BIN=" + bin + " is not an executable nvcc");
    return bin;
  }
  std::vector<std::string> on_path = executables_on_path("nvcc");
  if (!on_path.empty()) return on_path.front();
  throw CompileError("compiler='nvcc' needs nvcc: set PROTEUS_NVCC_BIN to its path or put nvcc on PATH");
}

Artifact compile_with_nvcc(const CompileRequest& request, const std::string& arch) {
  TempDir tmp;
  write_file_bytes(tmp.path + "/kernel.cu", request.source);
  std::vector<std::string> argv = {nvcc_binary(), "-cubin", "-arch=" + arch, "-O3", "-o", tmp.path + "/kernel.cubin"};
  argv.insert(argv.end(), request.extra_args.begin(), request.extra_args.end());
  argv.push_back(tmp.path + "/kernel.cu");
  std::string output;
  if (run_command(argv, &output) != 0) {
    // nvcc names the temp file; show the user's source name instead.
    for (size_t at; (at = output.find(tmp.path + "/kernel.cu")) != std::string::npos;)
      output.replace(at, tmp.path.size() + 10, request.source_name);
    throw CompileError("nvcc failed:\n" + output);
  }
  Artifact entry;
  entry.arch = arch;
  entry.binary = read_file_bytes(tmp.path + "/kernel.cubin");
  return entry;  // no entry_points: nvcc gives no IR to list them from; kernels are found by name
}

}  // namespace

Artifact cuda_codegen(llvm::Module& module, const std::string& arch);  // below

std::string cuda_toolkit_description() {
  try {
    return cached_toolkit().description;
  } catch (const CompileError& e) {
    return std::string("none: ") + e.what();
  }
}

std::string cuda_cache_context(const CompileRequest& request) {
  std::string arch = cuda_arch();
  return arch + '\0' + (request.compiler == "nvcc" ? nvcc_binary() : cached_toolkit().description);
}

// One CUDA compile: the cubin (empty without ptxas), the PTX as its assembly, the device IR.
Artifact produce_cuda(const CompileRequest& request) {
  std::string arch = cuda_arch();
  if (request.compiler == "nvcc") return compile_with_nvcc(request, arch);
  Toolkit toolkit = cached_toolkit();
  LanguageFlags cuda;
  cuda.runs_in_this_process = false;
  cuda.clang_optimises = true;
  cuda.language = "cuda";
  cuda.target = {"--cuda-device-only", "--cuda-gpu-arch=" + arch, "--cuda-path=" + toolkit.root};
  cuda.precompiled_headers = false;
  cuda.device_libraries = {toolkit.root + "/nvvm/libdevice/libdevice.10.bc"};
  return produce_device(request, cuda, cuda_codegen, arch);
}

Artifact cuda_codegen(llvm::Module& module, const std::string& arch) {
  Artifact entry;
  entry.arch = arch;
  entry.assembly = device_code(module, nvptx, arch);
  entry.binary = cubin_for(entry.assembly, arch, cached_toolkit());
  for (size_t at = entry.assembly.find(".entry "); at != std::string::npos; at = entry.assembly.find(".entry ", at + 1)) {
    size_t start = at + 7, end = entry.assembly.find_first_of("( \n", start);
    entry.entry_points.push_back(entry.assembly.substr(start, end - start));  // the kernels
  }
  return entry;
}

class CudaRuntime : public DeviceRuntime {
 public:
  void* load(const std::string& image) override {
    Driver& d = driver_api();
    make_current(d);
    CUmodule module = nullptr;
    if (CUresult rc = d.cuModuleLoadData(&module, image.c_str())) throw DeviceError(driver_error(d, rc, "cuModuleLoadData"));
    return module;
  }
  void unload(void* module) override { driver_api().cuModuleUnload(static_cast<CUmodule>(module)); }
  void* function(void* module, const std::string& name) override {
    Driver& d = driver_api();
    make_current(d);
    CUfunction function = nullptr;
    if (CUresult rc = d.cuModuleGetFunction(&function, static_cast<CUmodule>(module), name.c_str()))
      throw DeviceError(driver_error(d, rc, ("cuModuleGetFunction('" + name + "')").c_str()));
    return reinterpret_cast<void*>(function);
  }
  void launch(void* function, const unsigned grid[3], const unsigned block[3], unsigned shmem, void* stream,
              void** params) override {
    Driver& d = driver_api();
    make_current(d);
    if (CUresult rc = d.cuLaunchKernel(reinterpret_cast<CUfunction>(function), grid[0], grid[1], grid[2], block[0],
                                       block[1], block[2], shmem, reinterpret_cast<CUstream>(stream), params, nullptr))
      throw DeviceError(driver_error(d, rc, "cuLaunchKernel"));
  }
};

DeviceRuntime& cuda_runtime() {
  static CudaRuntime runtime;
  return runtime;
}

// The target="cuda" of this engine (cc/target.h): registered when this library is loaded.
const DeviceTarget cuda_target({"cuda", cuda_cache_context, produce_cuda, cuda_runtime, cuda_codegen, cuda_toolkit_description});
const bool cuda_registered = register_target(cuda_target);

}  // namespace proteus
