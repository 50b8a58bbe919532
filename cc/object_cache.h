// The persistent, cross-process object cache (ARCHITECTURE 6): compiled objects on disk, keyed by a
// hash of everything that changes the code. Entries are written atomically (temp file + rename)
// and verified on read (magic, format, key, length, checksum); anything else is a miss.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "proteus/engine.h"

namespace proteus {

// A file a compile read besides its source (a header, a precompiled header), as it was then.
struct InputFile {
  std::string path;    // absolute
  std::string digest;  // BLAKE3 of the content (32 bytes)
  uint64_t size = 0, device = 0, inode = 0;
  int64_t mtime_ns = 0, ctime_ns = 0;
};

// What a compile made, as the caches keep it (ARCHITECTURE 6, "Artifacts"). Every field means the
// same for every target; `target` says whose it is, and the persistent cache gives an entry only
// to the target that made it.
struct Artifact {
  std::string target;                     // the Target that made it: "host", "cuda", "hip"
  std::string arch;                       // the device it is for ("sm_90", "gfx90a"); "" for the host
  std::string binary;                     // what is loaded: ELF relocatable object (host), cubin (cuda; ""
                                          // without ptxas: the driver compiles `assembly`), code object (hip)
  std::string assembly;                   // the device assembly, where the target has one (cuda: PTX)
  std::vector<std::string> entry_points;  // host: the functions linked eagerly; GPU: the kernels
  std::string bitcode;                    // the IR it was made from (host: optimised; keep_bitcode): variants, Module.ir
  Signatures signatures;                  // the C signatures of its functions and kernels (signatures.cc)
  std::string warnings;                   // the compiler's warnings, replayed on every hit
  std::vector<InputFile> inputs;          // what the compile read: the result is valid while they are unchanged
  bool reusable = true;                   // false: an input changed during the compile; used once, never cached
};

// inputs.cc: recording and checking the files a compile read.
int64_t wall_clock_ns();
// `paths` as they are now, into *out; false if one changed since `started_ns` or cannot be read.
bool snapshot_inputs(const std::vector<std::string>& paths, int64_t started_ns, std::vector<InputFile>* out);
// True while every input has its recorded content (stat first; hashed only when the stat differs).
bool inputs_unchanged(const std::vector<InputFile>& inputs);

class ObjectCache {
 public:
  // The cache this process uses now, or nullptr when PROTEUS_USE_STORED_CACHE=0. Throws
  // CacheError if the directory is unsafe (owned by another user, writable by group/others).
  static ObjectCache* current();

  // The entry stored under the key by `target`; nothing (a miss) for a missing, damaged, foreign
  // or older-format entry, or one another target made.
  std::optional<Artifact> load(const std::string& key_hex, const std::string& target);
  void store(const std::string& key_hex, const Artifact& entry);
  void store_bytes(const std::string& key_hex, const std::string& encoded);  // an encode_entry() result
  CacheInfo info();
  uint64_t clear();
  const std::string& directory() const { return dir_; }

 private:
  explicit ObjectCache(std::string dir, uint64_t max_bytes) : dir_(std::move(dir)), max_bytes_(max_bytes) {}
  std::string path_for(const std::string& key_hex) const;
  // Lists the directory and, over the bound, removes the least recently used entries; the total left.
  uint64_t evict_if_needed();
  void account_store(uint64_t bytes);

  std::string dir_;
  uint64_t max_bytes_;
  std::mutex accounting_mutex_;
  bool listed_ = false;               // this process has listed the directory since it stored
  uint64_t estimated_bytes_ = 0;      // the cache's size: the last listing plus what we stored since
  uint64_t stored_since_listing_ = 0;
};

// An entry as the cache's files hold it (magic, format, key, length, SHA-256 of the payload, the
// payload), and back: nothing for damaged bytes, another format, another key or another target's
// entry. The chain's other levels carry these bytes (cache_chain.cc).
std::string encode_entry(const std::string& key_hex, const Artifact& entry);
std::optional<Artifact> decode_entry(const std::string& data, const std::string& key_hex, const std::string& target);

// cache_chain.cc: one compile's lookup through the cache chain (PROTEUS_OBJECT_CACHE_CHAIN). find()
// tries each level in order; a hit fills the levels that missed before it. After a miss everywhere
// the caller compiles and calls store(), which fills every level; if it never does (the compile
// failed), the destructor gives the shared levels their key back (abandon: other MPI ranks waiting
// for it stop waiting). Throws CacheError (unsafe directory) and ConfigError (a bad chain).
struct ChainLevel;
class ChainLookup {
 public:
  ChainLookup(std::string key, std::string target);
  ~ChainLookup();
  ChainLookup(const ChainLookup&) = delete;
  ChainLookup& operator=(const ChainLookup&) = delete;
  std::optional<Artifact> find();
  void store(const Artifact& entry);

 private:
  void fill(const std::string& encoded);
  std::string key_, target_;
  std::vector<std::shared_ptr<ChainLevel>> asked_;  // the levels that missed, in order
  bool filled_ = false;
};

// Lower-case hex of a SHA-256 digest, and of the SHA-256 of `data`: cache keys and file names.
std::string hex_digest(const std::array<uint8_t, 32>& digest);
std::string sha256_hex(const std::string& data);

// Directory and settings from the environment (each call: tests vary them between processes).
std::string cache_directory_setting();
bool stored_cache_enabled();

}  // namespace proteus
