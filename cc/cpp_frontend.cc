// C++ -> LLVM IR with Clang 22 in-process, and the header search of DESIGN 6.
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>

#include "clang/Basic/DiagnosticOptions.h"
#include "clang/CodeGen/CodeGenAction.h"
#include "clang/Driver/CreateInvocationFromArgs.h"
#include "clang/Frontend/CompilerInstance.h"
#include "clang/Frontend/CompilerInvocation.h"
#include "clang/Frontend/TextDiagnosticPrinter.h"
#include "clang/Lex/PreprocessorOptions.h"
#include "internal.h"
#include "llvm/Support/VirtualFileSystem.h"
#include "llvm/Support/raw_ostream.h"

namespace proteus {
namespace {

constexpr int kClangMajor = 22;

struct HeaderSearch {
  std::string driver_path;   // argv[0] for clang's driver: where it starts looking for toolchains
  std::string resource_dir;  // clang's own headers (stddef.h, intrinsics)
  std::string description;
};

bool is_executable(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

bool is_directory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// Runs `binary arg` and returns its stdout (first line), or "" if it fails. Used once per process.
std::string run_for_line(const std::string& binary, const char* arg) {
  std::string quoted = "'";
  for (char c : binary) quoted += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  quoted += "'";
  std::string cmd = quoted + " " + arg + " 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return "";
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, pipe)) out += buf;
  if (pclose(pipe) != 0) return "";
  auto nl = out.find('\n');
  return nl == std::string::npos ? out : out.substr(0, nl);
}

// "clang version 22.1.8 (...)" -> 22; 0 if it is not clang.
int clang_major(const std::string& binary) {
  std::string line = run_for_line(binary, "--version");
  auto pos = line.find("clang version ");
  if (pos == std::string::npos) return 0;
  return std::atoi(line.c_str() + pos + 14);
}

std::string library_dir() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&library_dir), &info) == 0 || !info.dli_fname) return "";
  std::string path = info.dli_fname;
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

// clang's driver finds its resource dir at <real binary dir>/../lib/clang/<major>. If clang 22's
// headers are there, the binary is a clang 22 and we know its resource dir without running it.
std::string resource_dir_beside(const std::string& binary) {
  char real[PATH_MAX];
  if (!realpath(binary.c_str(), real)) return "";
  std::string dir = real;
  dir = dir.substr(0, dir.rfind('/')) + "/../lib/clang/" + std::to_string(kClangMajor);
  if (!realpath(dir.c_str(), real) || !is_directory(std::string(real) + "/include")) return "";
  return real;
}

HeaderSearch from_clang(const std::string& binary, const std::string& resource, const std::string& why) {
  return {binary, resource, why + ": " + binary + " (resource dir " + resource + ")"};
}

HeaderSearch resolve_header_search() {
  const char* env = std::getenv("PROTEUS_CLANGXX_BIN");
  if (env && *env) {
    std::string bin = env;
    if (!is_executable(bin))
      throw CompileError("PROTEUS_CLANGXX_BIN=" + bin +
                         " does not name an executable file; set PROTEUS_CLANGXX_BIN to a clang++ " +
                         std::to_string(kClangMajor) + " binary or unset it");
    int major = clang_major(bin);  // the user named it: ask the binary itself (once per process)
    if (major != kClangMajor)
      throw CompileError("PROTEUS_CLANGXX_BIN=" + bin + " is not clang++ " + std::to_string(kClangMajor) +
                         (major ? " (it is clang " + std::to_string(major) + ")" : " (it does not report a clang version)") +
                         "; set PROTEUS_CLANGXX_BIN to a clang++ " + std::to_string(kClangMajor) + " binary or unset it");
    return from_clang(bin, run_for_line(bin, "-print-resource-dir"), "PROTEUS_CLANGXX_BIN");
  }
  if (const char* path = std::getenv("PATH")) {
    std::string dirs = path;
    for (const char* name : {"clang++-22", "clang++"}) {
      size_t start = 0;
      while (start <= dirs.size()) {
        size_t end = dirs.find(':', start);
        if (end == std::string::npos) end = dirs.size();
        std::string candidate = dirs.substr(start, end - start) + "/" + name;
        if (end > start && is_executable(candidate)) {
          std::string resource = resource_dir_beside(candidate);
          if (!resource.empty()) return from_clang(candidate, resource, "clang++ on PATH");
        }
        start = end + 1;
      }
    }
  }
  std::string bundled = library_dir() + "/clang_resource";
  if (!is_directory(bundled + "/include"))
    throw CompileError("no clang++ " + std::to_string(kClangMajor) +
                       " found (PROTEUS_CLANGXX_BIN is unset, none on PATH) and the bundled clang resource headers "
                       "are missing at " + bundled + "/include; reinstall the Proteus backend wheel or set PROTEUS_CLANGXX_BIN");
  // The driver finds the system's C/C++ headers (GCC installation, /usr/include) on its own.
  return {library_dir() + "/bin/clang++", bundled, "bundled clang resource headers (" + bundled + ") + system headers"};
}

// The search depends only on PROTEUS_CLANGXX_BIN and PATH: probe once per distinct pair.
HeaderSearch cached_header_search() {
  static std::mutex mutex;
  static std::map<std::string, HeaderSearch> cache;
  const char* env = std::getenv("PROTEUS_CLANGXX_BIN");
  const char* path = std::getenv("PATH");
  std::string key = std::string(env ? env : "\x01") + '\0' + (path ? path : "");
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  HeaderSearch found = resolve_header_search();  // throws: not cached, the user may fix it
  cache.emplace(key, found);
  return found;
}

}  // namespace

std::string header_search_description() { return cached_header_search().description; }

std::unique_ptr<llvm::Module> compile_cpp(const CompileRequest& request, llvm::LLVMContext& context) {
  HeaderSearch search = cached_header_search();
  std::vector<std::string> args = {search.driver_path, "-x", "c++", "-std=c++17",
                                   "-O" + std::to_string(opt_level()), "-march=native", "-fPIC",
                                   "-fno-color-diagnostics", "-fmessage-length=0",
                                   "-resource-dir", search.resource_dir};
  args.insert(args.end(), request.extra_args.begin(), request.extra_args.end());
  args.push_back(request.source_name);
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());

  std::string diagnostics;
  llvm::raw_string_ostream diag_stream(diagnostics);
  clang::DiagnosticOptions driver_diag_opts;
  auto driver_diags = clang::CompilerInstance::createDiagnostics(
      *llvm::vfs::getRealFileSystem(), driver_diag_opts,
      new clang::TextDiagnosticPrinter(diag_stream, driver_diag_opts), /*ShouldOwnClient=*/true);
  clang::CreateInvocationOptions options;
  options.Diags = driver_diags;
  std::shared_ptr<clang::CompilerInvocation> invocation = clang::createInvocation(argv, options);
  if (!invocation || driver_diags->hasErrorOccurred())
    throw CompileError("invalid compiler arguments (extra_args):\n" + diagnostics);

  // The source never touches the disk: the main file is an in-memory buffer.
  invocation->getPreprocessorOpts().addRemappedFile(
      request.source_name, llvm::MemoryBuffer::getMemBufferCopy(request.source, request.source_name).release());
  // The driver passes -disable-free (fine for a process that exits); we live on, so free everything.
  invocation->getFrontendOpts().DisableFree = false;
  invocation->getCodeGenOpts().DisableFree = false;

  clang::CompilerInstance compiler(invocation);
  compiler.createVirtualFileSystem();
  compiler.createDiagnostics(new clang::TextDiagnosticPrinter(diag_stream, compiler.getDiagnosticOpts()),
                             /*ShouldOwnClient=*/true);
  compiler.setVerboseOutputStream(llvm::nulls());  // "N errors generated." is in the diagnostics already
  clang::EmitLLVMOnlyAction action(&context);
  bool ok = compiler.ExecuteAction(action);
  if (!ok || compiler.getDiagnostics().hasErrorOccurred()) {
    if (diagnostics.empty()) diagnostics = "the clang frontend failed without diagnostics";
    throw CompileError(diagnostics);
  }
  std::unique_ptr<llvm::Module> module = action.takeModule();
  if (!module) throw CompileError("the clang frontend produced no module:\n" + diagnostics);
  return module;
}

}  // namespace proteus
