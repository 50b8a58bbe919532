// C++ -> LLVM IR with Clang 22 in-process, and the header search of ARCHITECTURE 6.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <atomic>
#include <cerrno>
#include <thread>
#include <cstdlib>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "clang/Basic/DiagnosticOptions.h"
#include "clang/CodeGen/CodeGenAction.h"
#include "clang/Driver/CreateInvocationFromArgs.h"
#include "clang/Frontend/CompilerInstance.h"
#include "clang/Frontend/CompilerInvocation.h"
#include "clang/Frontend/FrontendActions.h"
#include "clang/Frontend/MultiplexConsumer.h"
#include "clang/Frontend/TextDiagnosticPrinter.h"
#include "clang/Frontend/Utils.h"
#include "clang/Lex/PPCallbacks.h"
#include "clang/Lex/Preprocessor.h"
#include "clang/Lex/PreprocessorOptions.h"
#include "internal.h"
#include "object_cache.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SHA256.h"
#include "llvm/Support/VirtualFileSystem.h"
#include "llvm/Support/raw_ostream.h"
#include "llvm/TargetParser/Host.h"

namespace proteus {
namespace {

constexpr int kClangMajor = 22;

struct HeaderSearch {
  std::string driver_path;   // argv[0] for clang's driver: where it starts looking for toolchains
  std::string resource_dir;  // clang's own headers (stddef.h, intrinsics)
  std::string description;
};

// "clang version 22.1.8 (...)" -> 22; 0 if it is not clang.
int clang_major(const std::string& binary) {
  std::string line = first_output_line({binary, "--version"});
  auto pos = line.find("clang version ");
  if (pos == std::string::npos) return 0;
  return std::atoi(line.c_str() + pos + 14);
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
  if (std::string bin = text_setting("PROTEUS_CLANGXX_BIN"); !bin.empty()) {
    if (!is_executable(bin))
      throw ConfigError("PROTEUS_CLANGXX_BIN=" + bin +
                         " does not name an executable file; set PROTEUS_CLANGXX_BIN to a clang++ " +
                         std::to_string(kClangMajor) + " binary or unset it");
    int major = clang_major(bin);  // the user named it: ask the binary itself (once per process)
    if (major != kClangMajor)
      throw ConfigError("PROTEUS_CLANGXX_BIN=" + bin + " is not clang++ " + std::to_string(kClangMajor) +
                         (major ? " (it is clang " + std::to_string(major) + ")" : " (it does not report a clang version)") +
                         "; set PROTEUS_CLANGXX_BIN to a clang++ " + std::to_string(kClangMajor) + " binary or unset it");
    return from_clang(bin, first_output_line({bin, "-print-resource-dir"}), "PROTEUS_CLANGXX_BIN");
  }
  for (const char* name : {"clang++-22", "clang++"}) {
    for (const std::string& candidate : executables_on_path(name)) {
      std::string resource = resource_dir_beside(candidate);
      if (!resource.empty()) return from_clang(candidate, resource, "clang++ on PATH");
    }
  }
  std::string bundled = library_directory() + "/clang_resource";
  if (!is_directory(bundled + "/include"))
    throw CompileError("no clang++ " + std::to_string(kClangMajor) +
                       " found (PROTEUS_CLANGXX_BIN is unset, none on PATH) and the bundled clang resource headers "
                       "are missing at " + bundled + "/include; reinstall the Proteus backend wheel or set PROTEUS_CLANGXX_BIN");
  // The driver finds the system's C/C++ headers (GCC installation, /usr/include) on its own.
  return {library_directory() + "/bin/clang++", bundled, "bundled clang resource headers (" + bundled + ") + system headers"};
}

// The search depends only on PROTEUS_CLANGXX_BIN and PATH: probed once per distinct pair.
HeaderSearch cached_header_search() {
  static EnvironmentCache<HeaderSearch> cache({"PROTEUS_CLANGXX_BIN", "PATH"}, resolve_header_search);
  return cache.get();
}

}  // namespace

std::string header_search_description() { return cached_header_search().description; }

namespace {

std::atomic<uint64_t> pch_builds{0}, pch_uses{0};

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}


bool pch_enabled() {
  return flag_setting("PROTEUS_USE_PCH") && stored_cache_enabled();
}

// What the driver makes of an argument list, kept: running the driver (toolchain and GCC-install
// detection, many stats) is a good part of a small compile. Only clean runs are kept (a driver
// warning must be printed by every compile that causes it), keyed by the arguments and the
// environment variables the driver reads for include paths; a few dozen at most.
class InvocationCache {
 public:
  std::shared_ptr<const clang::CompilerInvocation> find(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto hit = kept_.find(key);
    return hit == kept_.end() ? nullptr : hit->second;
  }
  void keep(const std::string& key, std::shared_ptr<const clang::CompilerInvocation> invocation) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (kept_.size() >= kKept) kept_.clear();
    kept_[key] = std::move(invocation);
  }

 private:
  static constexpr size_t kKept = 32;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const clang::CompilerInvocation>> kept_;
};

InvocationCache& invocation_cache() {
  static auto* cache = new InvocationCache;  // never destroyed: compiles may run during exit
  return *cache;
}

std::string invocation_key(const std::vector<std::string>& args) {
  std::string key;
  for (const char* variable : {"CPATH", "C_INCLUDE_PATH", "CPLUS_INCLUDE_PATH"}) {
    const char* value = getenv(variable);
    key += std::string(variable) + "=" + (value ? value : "") + '\0';
  }
  for (const auto& a : args) key += a + '\0';
  return key;
}

std::shared_ptr<clang::CompilerInvocation> make_invocation(const std::vector<std::string>& args,
                                                           llvm::raw_ostream& diag_stream, const std::string& what) {
  std::string key = invocation_key(args);
  std::shared_ptr<clang::CompilerInvocation> invocation;
  if (auto kept = invocation_cache().find(key)) {
    invocation = std::make_shared<clang::CompilerInvocation>(*kept);  // a deep copy: this compile's own
  } else {
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    std::string driver_output;
    llvm::raw_string_ostream driver_stream(driver_output);
    clang::DiagnosticOptions driver_diag_opts;
    auto driver_diags = clang::CompilerInstance::createDiagnostics(
        *llvm::vfs::getRealFileSystem(), driver_diag_opts,
        new clang::TextDiagnosticPrinter(driver_stream, driver_diag_opts), /*ShouldOwnClient=*/true);
    clang::CreateInvocationOptions options;
    options.Diags = driver_diags;
    invocation = clang::createInvocation(argv, options);
    driver_stream.flush();
    diag_stream << driver_output;
    if (!invocation || driver_diags->hasErrorOccurred()) return nullptr;
    if (driver_output.empty()) invocation_cache().keep(key, std::make_shared<clang::CompilerInvocation>(*invocation));
  }
  // The source never touches the disk: the main file is an in-memory buffer.
  invocation->getPreprocessorOpts().addRemappedFile(args.back(),
                                                    llvm::MemoryBuffer::getMemBufferCopy(what, args.back()).release());
  // The driver passes -disable-free (fine for a process that exits); we live on, so free everything.
  invocation->getFrontendOpts().DisableFree = false;
  invocation->getCodeGenOpts().DisableFree = false;
  return invocation;
}

// The real file system, but only regular files may be opened for reading: an #include (or a PCH)
// that names a FIFO, a device or a socket would block the compile forever (or read without end).
class RegularFilesOnly : public llvm::RTTIExtends<RegularFilesOnly, llvm::vfs::ProxyFileSystem> {
 public:
  static const char ID;
  using RTTIExtends::RTTIExtends;

  llvm::ErrorOr<std::unique_ptr<llvm::vfs::File>> openFileForRead(const llvm::Twine& path) override {
    checkpoint();  // a compile that was given up stops here (contain.cc)
    llvm::ErrorOr<llvm::vfs::Status> status = ProxyFileSystem::status(path);
    if (status && status->getType() != llvm::sys::fs::file_type::regular_file)
      return std::error_code(1, not_regular());  // clang: "cannot open file '...': <message>"
    return ProxyFileSystem::openFileForRead(path);
  }

 private:
  static const std::error_category& not_regular() {
    struct Category : std::error_category {
      const char* name() const noexcept override { return "proteus"; }
      std::string message(int) const override {
        return "not a regular file (FIFOs, devices and sockets are not read: they could block the compile)";
      }
    };
    static const Category category;
    return category;
  }
};
const char RegularFilesOnly::ID = 0;

// Every file the frontend reads besides the main file (an in-memory buffer): included headers,
// system ones too, and those a precompiled header was made from. Cached results record them.
class ReadFiles : public clang::DependencyCollector {
 public:
  explicit ReadFiles(std::string main_file) : main_file_(std::move(main_file)) {}
  bool needSystemDependencies() override { return true; }
  bool sawDependency(llvm::StringRef name, bool, bool, bool is_module_file, bool missing) override {
    return !missing && !is_module_file && name != main_file_ && !name.starts_with("<");
  }

 private:
  std::string main_file_;
};

// A place in the preprocessor where a compile that was given up can stop (contain.cc): every
// macro expansion, so runaway macro expansion is cancellable too.
class Checkpoints : public clang::DependencyCollector {
  struct Callbacks : clang::PPCallbacks {
    void MacroExpands(const clang::Token&, const clang::MacroDefinition&, clang::SourceRange,
                      const clang::MacroArgs*) override {
      checkpoint();
    }
  };

 public:
  void attachToPreprocessor(clang::Preprocessor& preprocessor) override {
    preprocessor.addPPCallbacks(std::make_unique<Callbacks>());
  }
};

// Runs `action`; with `read_files`, appends the absolute paths of the files it read.
bool run_frontend(std::shared_ptr<clang::CompilerInvocation> invocation, clang::FrontendAction& action,
                  llvm::raw_ostream& diag_stream, std::vector<std::string>* read_files = nullptr) {
  std::string main_file =
      invocation->getFrontendOpts().Inputs.empty() ? "" : invocation->getFrontendOpts().Inputs[0].getFile().str();
  clang::CompilerInstance compiler(std::move(invocation));
  compiler.createVirtualFileSystem(llvm::makeIntrusiveRefCnt<RegularFilesOnly>(llvm::vfs::getRealFileSystem()));
  compiler.createDiagnostics(new clang::TextDiagnosticPrinter(diag_stream, compiler.getDiagnosticOpts()),
                             /*ShouldOwnClient=*/true);
  compiler.setVerboseOutputStream(llvm::nulls());  // "N errors generated." is in the diagnostics already
  auto collector = std::make_shared<ReadFiles>(main_file);
  if (read_files) compiler.addDependencyCollector(collector);
  compiler.addDependencyCollector(std::make_shared<Checkpoints>());
  bool ok = compiler.ExecuteAction(action) && !compiler.getDiagnostics().hasErrorOccurred();
  if (read_files) {
    for (const std::string& dependency : collector->getDependencies()) {
      llvm::SmallString<256> path(dependency);
      llvm::sys::fs::make_absolute(path);
      llvm::sys::path::remove_dots(path, /*remove_dot_dot=*/false);
      read_files->push_back(path.str().str());
    }
  }
  return ok;
}

// A file or directory of ours that only we can write, not reached through a symlink.
bool private_to_us(const std::string& path, bool directory) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 && (directory ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) &&
         st.st_uid == geteuid() && !(st.st_mode & 022);
}

// The identity a PCH had when we built it: its key and its exact stat. Kept in "<pch>.id" beside it,
// so a PCH copied, linked or renamed from another prefix, or changed in place (damaged), is not
// used but rebuilt. Empty when `pch` cannot be described.
std::string pch_identity(const std::string& key_hex, const std::string& pch) {
  struct stat st;
  if (lstat(pch.c_str(), &st) != 0) return "";
  std::ostringstream id;
  id << "proteus-pch-v1 " << key_hex << ' ' << st.st_dev << ' ' << st.st_ino << ' ' << st.st_size << ' '
     << st.st_mtim.tv_sec << '.' << st.st_mtim.tv_nsec << ' ' << st.st_ctim.tv_sec << '.' << st.st_ctim.tv_nsec << '\n';
  return id.str();
}

// A precompiled header for `prefix` under the same flags, kept in <cache dir>/pch and shared by
// all processes; "" if none can be made (then we compile without). It is used only if it and its
// directory are private to us and it is the very file we built for this key (pch_identity); clang
// validates it on use (changed headers, flags), and a failed use rebuilds it.
std::string precompiled_header(const std::vector<std::string>& flags, const std::string& prefix,
                               const HeaderSearch& search, bool rebuild) {
  ObjectCache* cache = ObjectCache::current();
  if (!cache) return "";
  std::string key_text = prefix + '\0' + search.description + '\0' + llvm_version() + '\0' + build_version();
  for (const auto& f : flags) key_text += '\0' + f;
  std::string dir = cache->directory() + "/pch";
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return "";
  if (!private_to_us(dir, /*directory=*/true)) return "";  // others could plant PCHs: compile without
  std::string key_hex = sha256_hex(key_text);
  std::string path = dir + "/" + key_hex + ".pch";
  std::string id_path = path + ".id";
  if (!rebuild && private_to_us(path, false) && private_to_us(id_path, false)) {
    std::string expected = pch_identity(key_hex, path);
    if (!expected.empty() && read_file_bytes(id_path) == expected) return path;
  }

  std::string tmp = path + ".tmp." + std::to_string(getpid()) + "." +
                    std::to_string(std::hash<std::thread::id>()(std::this_thread::get_id()));
  std::vector<std::string> args = flags;
  // Instantiate what the headers themselves use while building the PCH, not in every compile.
  args.insert(args.end(), {"-fpch-instantiate-templates", "-x", "c++-header", "-o", tmp, "proteus-pch-prefix.h"});
  std::string ignored;
  llvm::raw_string_ostream diag_stream(ignored);
  auto invocation = make_invocation(args, diag_stream, prefix);
  if (!invocation) return "";
  invocation->getFrontendOpts().OutputFile = tmp;
  invocation->getFrontendOpts().UseTemporary = false;
  clang::GeneratePCHAction action;
  pch_builds++;
  if (!run_frontend(invocation, action, diag_stream)) {
    unlink(tmp.c_str());
    return "";
  }
  chmod(tmp.c_str(), 0600);
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    unlink(tmp.c_str());
    return "";
  }
  // Its identity, written atomically too: until it exists, other processes rebuild rather than trust.
  std::string id = pch_identity(key_hex, path), id_tmp = tmp + ".id";
  write_file_bytes(id_tmp, id);
  chmod(id_tmp.c_str(), 0600);
  if (id.empty() || rename(id_tmp.c_str(), id_path.c_str()) != 0) unlink(id_tmp.c_str());
  return path;
}

}  // namespace

std::string include_prefix(const std::string& source) {
  std::string prefix;
  size_t pos = 0;
  while (pos < source.size()) {
    size_t end = source.find('\n', pos);
    if (end == std::string::npos) end = source.size();
    std::string line = trim(source.substr(pos, end - pos));
    pos = end + 1;
    if (line.empty() || line.rfind("//", 0) == 0) continue;
    if (line.rfind("#include", 0) != 0) break;
    std::string target = trim(line.substr(8));
    if (target.size() < 3 || target.front() != '<' || target.back() != '>') break;
    prefix += "#include " + target + "\n";
  }
  return prefix;
}

uint64_t pch_build_count() { return pch_builds.load(); }
uint64_t pch_use_count() { return pch_uses.load(); }

namespace {
// extra_args that host code must not get: it is called from this process, so another target, data
// layout or calling convention gives silently wrong results; the last group crash clang in-process.
void check_host_flags(const std::vector<std::string>& args) {
  static const char* const kAbiExact[] = {"-m32", "-m16", "-mx32", "-target", "-triple", "-msoft-float", "-mno-sse",
                                          "-mno-sse2", "-mno-x87", "-mno-80387", "-mrtd", "-malign-double",
                                          "-fpack-struct", "-fshort-enums", "-fshort-wchar", "-mno-fp-ret-in-387"};
  static const char* const kAbiPrefix[] = {"--target=", "-target=", "-mabi=", "-mcmodel=", "-mlong-double-",
                                           "-fpack-struct=", "-mregparm="};
  static const char* const kInProcessPrefix[] = {"-Xclang", "-cc1", "-ftime-report", "-fdiagnostics-format", "-###",
                                                 "-print-", "--print-", "-dump"};
  // These make clang print to this process's stdout/stderr instead of compiling.
  static const char* const kPrintsExact[] = {"--help", "-help", "--help-hidden", "--version", "-v"};
  auto starts = [](const std::string& arg, const char* prefix) { return arg.rfind(prefix, 0) == 0; };
  for (const std::string& arg : args) {
    bool abi = std::any_of(std::begin(kAbiExact), std::end(kAbiExact), [&](const char* f) { return arg == f; }) ||
               std::any_of(std::begin(kAbiPrefix), std::end(kAbiPrefix), [&](const char* p) { return starts(arg, p); });
    if (abi)
      throw std::invalid_argument("extra_args: '" + arg + "' changes the target, data layout or calling convention "
                                  "of host code, which must match this process (" + llvm::sys::getProcessTriple() +
                                  "); remove it");
    if (std::any_of(std::begin(kInProcessPrefix), std::end(kInProcessPrefix), [&](const char* p) { return starts(arg, p); }) ||
        std::any_of(std::begin(kPrintsExact), std::end(kPrintsExact), [&](const char* f) { return arg == f; }))
      throw std::invalid_argument("extra_args: '" + arg + "' is not supported by the in-process compiler; remove it");
  }
}
// Clang's IR generation, with more consumers of the AST beside it (the signature collector).
class EmitLLVMWith : public clang::EmitLLVMOnlyAction {
 public:
  EmitLLVMWith(llvm::LLVMContext* context, Signatures* signatures)
      : clang::EmitLLVMOnlyAction(context), signatures_(signatures) {}

 protected:
  std::unique_ptr<clang::ASTConsumer> CreateASTConsumer(clang::CompilerInstance& compiler, llvm::StringRef file) override {
    std::unique_ptr<clang::ASTConsumer> codegen = clang::EmitLLVMOnlyAction::CreateASTConsumer(compiler, file);
    if (!signatures_ || !codegen) return codegen;
    std::vector<std::unique_ptr<clang::ASTConsumer>> consumers;
    consumers.push_back(std::move(codegen));
    consumers.push_back(signature_collector(signatures_));
    return std::make_unique<clang::MultiplexConsumer>(std::move(consumers));
  }

 private:
  Signatures* signatures_;
};

}  // namespace

LanguageFlags c_language() {
  LanguageFlags c;
  c.language = "c";
  c.standard = "-std=c17";
  c.precompiled_headers = false;
  return c;
}

std::unique_ptr<llvm::Module> compile_cpp(const CompileRequest& request, llvm::LLVMContext& context,
                                          const LanguageFlags& language, FrontendFindings* findings) {
  if (language.runs_in_this_process) check_host_flags(request.extra_args);
  HeaderSearch search = cached_header_search();
  std::vector<std::string> flags = {search.driver_path, language.standard, opt_flag(opt_level()),
                                    "-fno-color-diagnostics", "-fmessage-length=0", "-resource-dir", search.resource_dir};
  if (!language.clang_optimises) flags.insert(flags.end(), {"-Xclang", "-disable-llvm-passes"});
  flags.insert(flags.end(), language.target.begin(), language.target.end());
  flags.insert(flags.end(), request.extra_args.begin(), request.extra_args.end());
  std::string prefix = (pch_enabled() && language.precompiled_headers) ? include_prefix(request.source) : "";

  // One frontend run, with the PCH `pch` ("" for none): the module, or nullptr with *diagnostics.
  auto run = [&](const std::string& pch, std::string* diagnostics) -> std::unique_ptr<llvm::Module> {
    std::vector<std::string> args = flags;
    if (!pch.empty()) args.insert(args.end(), {"-include-pch", pch});
    args.insert(args.end(), {"-x", language.language, request.source_name});
    diagnostics->clear();
    llvm::raw_string_ostream diag_stream(*diagnostics);
    auto invocation = make_invocation(args, diag_stream, request.source);
    if (!invocation)
      throw CompileError("the compiler driver rejected the arguments (extra_args, toolkit paths):\n" + *diagnostics);
    Signatures found;
    EmitLLVMWith action(&context, findings ? &found : nullptr);
    std::vector<std::string> read;
    if (!run_frontend(invocation, action, diag_stream, &read)) return nullptr;
    if (findings) {
      findings->read_files = std::move(read);
      findings->signatures = std::move(found);
      findings->warnings = *diagnostics;  // a successful run prints warnings only
    }
    std::unique_ptr<llvm::Module> module = action.takeModule();
    if (!module) throw CompileError("the clang frontend produced no module:\n" + *diagnostics);
    return module;
  };

  std::string diagnostics;
  // With a PCH first (if the source starts with system #includes); a PCH clang rejects is rebuilt
  // once; an error in the user's code is reported from a plain compile, so diagnostics are the usual ones.
  if (!prefix.empty()) {
    for (bool rebuild : {false, true}) {
      std::string pch = precompiled_header(flags, prefix, search, rebuild);
      if (pch.empty()) break;  // no PCH possible here: compile plainly
      if (auto module = run(pch, &diagnostics)) {
        pch_uses++;
        return module;
      }
      bool pch_rejected = diagnostics.find(pch) != std::string::npos ||
                          diagnostics.find("precompiled header") != std::string::npos;
      if (!pch_rejected) break;
    }
  }
  if (auto module = run("", &diagnostics)) return module;
  throw CompileError(diagnostics.empty() ? "the clang frontend failed without diagnostics" : diagnostics);
}

}  // namespace proteus
