// Every environment variable the engine reads, in one table, read through one parser per kind
// (ARCHITECTURE 6, "Settings"). Values are read on each use: tests and users change them between
// compiles. A value that does not parse is a ConfigError naming the variable, the value and what
// is accepted; an unset or empty variable means the default.
#include <strings.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "internal.h"

namespace proteus {
namespace {

const std::vector<Setting>& table() {
  static const std::vector<Setting> settings = {
      {"PROTEUS_CLANGXX_BIN", "path", "", "clang++ 22 whose header search C++ compiles use (else clang++ 22 on PATH, else the bundled headers)"},
      {"PROTEUS_OPT_LEVEL", "opt-level", "3", "optimisation level of the IR: 0, 1, 2, 3, s or z (as clang's -O)"},
      {"PROTEUS_CODEGEN_OPT_LEVEL", "level", "3", "code generator optimisation level: 0, 1, 2 or 3"},
      {"PROTEUS_CACHE_DIR", "path", "", "the persistent cache directory (default $XDG_CACHE_HOME/proteus, else ~/.cache/proteus)"},
      {"PROTEUS_USE_STORED_CACHE", "flag", "1", "0 turns the persistent cache (and precompiled headers) off"},
      {"PROTEUS_CACHE_MAX_BYTES", "bytes", "1073741824", "size bound of the persistent cache in bytes"},
      {"PROTEUS_USE_PCH", "flag", "1", "0 turns automatic precompiled headers off"},
      {"PROTEUS_OBJECT_CACHE_CHAIN", "text", "storage",
       "the cache levels a compile looks up, in order: storage, mpi-local-lookup or mpi-remote-lookup, http://host:port/prefix"},
      {"PROTEUS_HTTP_CACHE_TIMEOUT_MS", "count", "5000", "how long an HTTP cache level waits for its server per request"},
      {"PROTEUS_HTTP_CACHE_MAX_BYTES", "bytes", "268435456", "the largest entry an HTTP cache level reads"},
      {"PROTEUS_HTTP_CACHE_HEADER", "text", "", "a header every HTTP cache request sends, e.g. 'Authorization: Bearer <token>'"},
      {"PROTEUS_MPI_CACHE_DIR", "path", "", "mpi-local-lookup's directory on a filesystem every rank reads (rank 0 writes)"},
      {"PROTEUS_MPI_CACHE_TIMEOUT_MS", "count", "300000",
       "how long a rank waits for rank 0, or for another rank compiling the same key, before compiling itself"},
      {"PROTEUS_SPECIALIZE_ARGS", "flag", "1", "0 turns runtime specialisation off (the generic code runs)"},
      {"PROTEUS_DUMP_LLVM_IR", "flag", "0",
       "1 writes the optimised LLVM IR of each module compile() makes to .proteus-dump/<source>-<key>.ll here"},
      {"PROTEUS_SPECIALIZE_MAX_VARIANTS", "count", "64", "specialised variants kept in memory per function or kernel (at least 1)"},
      {"PROTEUS_CUDA_HOME", "path", "", "the CUDA 12 toolkit for target='cuda' (then CUDA_HOME, CUDA_PATH, else NVIDIA's pip wheels)"},
      {"CUDA_HOME", "path", "", "the CUDA 12 toolkit, after PROTEUS_CUDA_HOME"},
      {"CUDA_PATH", "path", "", "the CUDA 12 toolkit, after CUDA_HOME"},
      {"PROTEUS_CUDA_ARCH", "text", "", "the GPU arch to compile CUDA for, e.g. sm_90 (default: device 0's, else sm_90)"},
      {"PROTEUS_NVCC_BIN", "path", "", "nvcc for compiler='nvcc' (default: nvcc on PATH)"},
      {"PROTEUS_ROCM_PATH", "path", "", "the ROCm root for target='hip' (then ROCM_PATH, else /opt/rocm)"},
      {"ROCM_PATH", "path", "", "the ROCm root, after PROTEUS_ROCM_PATH"},
      {"PROTEUS_HIP_ARCH", "text", "gfx90a", "the AMDGPU arch to compile HIP for"},
  };
  return settings;
}

const Setting& lookup(const char* name) {
  for (const Setting& s : table())
    if (s.name == name) return s;
  throw std::logic_error(std::string("proteus: ") + name + " is not in the settings table");  // a bug of ours
}

// The raw value, or "" when unset or empty (both mean the default).
std::string raw(const Setting& s) {
  const char* v = std::getenv(s.name.c_str());
  return v ? v : "";
}

[[noreturn]] void reject(const Setting& s, const std::string& value, const char* what, const char* accepted) {
  throw ConfigError(s.name + "=" + value + " is not " + what + ": use " + accepted + ", or unset it for the default (" +
                    (s.fallback.empty() ? "none" : s.fallback) + ")");
}

}  // namespace

const std::vector<Setting>& settings() { return table(); }

bool flag_setting(const char* name) {
  const Setting& s = lookup(name);
  std::string v = raw(s);
  if (v.empty()) v = s.fallback;
  for (const char* yes : {"1", "true", "on", "yes"})
    if (strcasecmp(v.c_str(), yes) == 0) return true;
  for (const char* no : {"0", "false", "off", "no"})
    if (strcasecmp(v.c_str(), no) == 0) return false;
  reject(s, v, "a flag", "1/0, true/false, on/off or yes/no");
}

int level_setting(const char* name) {
  const Setting& s = lookup(name);
  std::string v = raw(s);
  if (v.empty()) v = s.fallback;
  bool size_levels = s.kind == "opt-level";  // the IR's level; code generation has no size levels
  if (v.size() == 1 && v[0] >= '0' && v[0] <= '3') return v[0] - '0';
  if (size_levels && (v == "s" || v == "z")) return v == "s" ? kOptSize : kOptMinSize;
  reject(s, v, "an optimisation level", size_levels ? "0, 1, 2, 3, s or z" : "0, 1, 2 or 3");
}

uint64_t count_setting(const char* name) {
  const Setting& s = lookup(name);
  std::string v = raw(s);
  if (v.empty()) v = s.fallback;
  // Digits only: strtoull would take "-1" as 2^64-1 and skip leading blanks.
  char* end = nullptr;
  errno = 0;
  uint64_t n = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || !std::isdigit(static_cast<unsigned char>(v[0])) || *end || errno == ERANGE)
    reject(s, v, s.kind == "bytes" ? "a number of bytes" : "a count",
           s.kind == "bytes" ? "a whole number (e.g. 1073741824 for 1 GiB)" : "a whole number");
  return n;
}

std::string text_setting(const char* name) {
  const Setting& s = lookup(name);
  std::string v = raw(s);
  return v.empty() ? s.fallback : v;
}

}  // namespace proteus
