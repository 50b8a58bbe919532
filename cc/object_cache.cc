#include "object_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <memory>
#include <mutex>

#include "internal.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/Support/SHA256.h"

namespace proteus {
namespace {

constexpr char kMagic[8] = {'P', 'R', 'O', 'T', 'E', 'U', 'S', 'O'};
// 4: the files the compile read; 5: typed artifacts; 6: signatures, warnings; 7: memref shapes
constexpr uint32_t kFormat = 8;
constexpr const char* kSuffix = ".pobj";

// Entry layout: magic[8] format:u32 key[64 hex] payload_len:u64 sha256(payload)[32] payload
// payload: target arch binary assembly warnings (as string: len:u64 bytes), n_entry_points:u32 (len:u32 name)*,
//          bitcode (string), n_inputs:u32 (len:u32 path, digest[32], size dev ino mtime ctime: u64)*,
//          n_signatures:u32 (name, problem, then per type of result and params: code pointee const:u8
//          spelling n_dims:u32 (size:u64)*; strings as len:u32 bytes; n_params:u32 before the params)*
struct Writer {
  std::string out;
  void u32(uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
  void u64(uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); }
  void bytes(const std::string& s) { out += s; }
};

struct Reader {
  const std::string& in;
  size_t pos = 0;
  bool ok = true;
  bool take(void* dst, size_t n) {
    if (!ok || in.size() - pos < n) return ok = false;
    std::memcpy(dst, in.data() + pos, n);
    pos += n;
    return true;
  }
  uint32_t u32() { uint32_t v = 0; take(&v, 4); return v; }
  uint64_t u64() { uint64_t v = 0; take(&v, 8); return v; }
  std::string bytes(uint64_t n) {
    if (!ok || in.size() - pos < n) { ok = false; return {}; }
    std::string s = in.substr(pos, n);
    pos += n;
    return s;
  }
};

std::string sha256(const std::string& data) {
  auto digest = llvm::SHA256::hash(llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
  return std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
}

std::string unsafe_reason(const struct stat& st) {
  if (st.st_uid != geteuid())
    return "is owned by uid " + std::to_string(st.st_uid) + ", not by this user (uid " + std::to_string(geteuid()) + ")";
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return std::string("is writable by group or others (mode ") + mode + ")";
  }
  return "";
}

void make_private_dirs(const std::string& dir) {
  // Parents as usual (0700 for the ones we create), the cache directory itself 0700.
  for (size_t at = 1; at != std::string::npos;) {
    at = dir.find('/', at + 1);
    std::string part = dir.substr(0, at);
    if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST)
      throw CacheError("cannot create the Proteus cache directory " + dir + " (" + part + ": " + std::strerror(errno) +
                       "); set PROTEUS_CACHE_DIR to a writable directory or PROTEUS_USE_STORED_CACHE=0");
  }
}

// A regular file (no symlink, FIFO or device: never waited on) of at most `limit` bytes, read whole.
bool read_file(const std::string& path, std::string* out, struct stat* st, uint64_t limit) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return false;
  bool ok = fstat(fd, st) == 0 && S_ISREG(st->st_mode) && uint64_t(st->st_size) <= limit;
  if (ok) {
    out->resize(st->st_size);
    size_t done = 0;
    while (done < out->size()) {
      ssize_t n = read(fd, &(*out)[done], out->size() - done);
      if (n <= 0) { ok = false; break; }
      done += n;
    }
  }
  close(fd);
  return ok;
}

}  // namespace

std::string hex_digest(const std::array<uint8_t, 32>& digest) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (uint8_t b : digest) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

std::string sha256_hex(const std::string& data) {
  return hex_digest(llvm::SHA256::hash(llvm::ArrayRef<uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size())));
}

std::string cache_directory_setting() {
  if (std::string dir = text_setting("PROTEUS_CACHE_DIR"); !dir.empty()) return dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::string(xdg) + "/proteus";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.cache/proteus";
}

bool stored_cache_enabled() {
  return flag_setting("PROTEUS_USE_STORED_CACHE");
}

ObjectCache* ObjectCache::current() {
  if (!stored_cache_enabled()) return nullptr;
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<ObjectCache>> caches;  // one per directory setting
  std::string dir = cache_directory_setting();
  uint64_t max_bytes = count_setting("PROTEUS_CACHE_MAX_BYTES");
  std::lock_guard<std::mutex> lock(mutex);
  auto& slot = caches[dir];
  if (!slot) {
    make_private_dirs(dir);
    slot.reset(new ObjectCache(dir, max_bytes));
  }
  slot->max_bytes_ = max_bytes;
  // Checked on every use: loading an object from a directory others can write runs their code.
  struct stat st{};
  if (lstat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) make_private_dirs(dir);  // removed while we run: made again
    if (lstat(dir.c_str(), &st) != 0) st.st_mode = 0;
  }
  if (S_ISLNK(st.st_mode)) {
    // A symlink of ours (only its owner can replace it, even in a sticky /tmp) to a directory that
    // passes the same checks below is followed.
    if (st.st_uid != geteuid())
      throw CacheError("refusing the Proteus cache directory " + dir + ": it is a symlink owned by uid " +
                       std::to_string(st.st_uid) + ", not by this user; set PROTEUS_CACHE_DIR to a directory of yours");
    if (stat(dir.c_str(), &st) != 0) st.st_mode = 0;
  }
  if (!S_ISDIR(st.st_mode))
    throw CacheError("the Proteus cache directory " + dir + " is not a directory; set PROTEUS_CACHE_DIR");
  if (std::string why = unsafe_reason(st); !why.empty())
    throw CacheError("refusing the Proteus cache directory " + dir + ": it " + why +
                     ", so objects loaded from it could run someone else's code. Fix: chmod 700 " + dir +
                     " (as its owner), or set PROTEUS_CACHE_DIR to a private directory, or PROTEUS_USE_STORED_CACHE=0");
  return slot.get();
}

std::string ObjectCache::path_for(const std::string& key_hex) const { return dir_ + "/" + key_hex + kSuffix; }

std::optional<Artifact> ObjectCache::load(const std::string& key_hex, const std::string& target) {
  std::string data;
  struct stat st;
  std::string path = path_for(key_hex);
  // An entry larger than the whole cache may be is not ours to read into memory: a miss.
  if (!read_file(path, &data, &st, max_bytes_) || !unsafe_reason(st).empty()) return std::nullopt;
  std::optional<Artifact> entry = decode_entry(data, key_hex, target);
  // LRU: a hit makes the entry young again.
  if (entry) utimensat(AT_FDCWD, path.c_str(), nullptr, 0);
  return entry;
}

std::optional<Artifact> decode_entry(const std::string& data, const std::string& key_hex, const std::string& target) {
  Reader r{data};
  char magic[8];
  char key[64];
  char checksum[32];
  r.take(magic, 8);
  uint32_t format = r.u32();
  r.take(key, 64);
  uint64_t length = r.u64();
  r.take(checksum, 32);
  if (!r.ok || std::memcmp(magic, kMagic, 8) != 0 || format != kFormat || key_hex.size() != 64 ||
      std::memcmp(key, key_hex.data(), 64) != 0 || length != data.size() - r.pos)
    return std::nullopt;
  std::string payload = data.substr(r.pos);
  if (sha256(payload) != std::string(checksum, 32)) return std::nullopt;
  Reader p{payload};
  Artifact entry;
  for (std::string* field : {&entry.target, &entry.arch, &entry.binary, &entry.assembly, &entry.warnings})
    *field = p.bytes(p.u64());
  uint32_t n = p.u32();
  for (uint32_t i = 0; i < n && p.ok; ++i) entry.entry_points.push_back(p.bytes(p.u32()));
  entry.bitcode = p.bytes(p.u64());
  uint32_t inputs = p.u32();
  for (uint32_t i = 0; i < inputs && p.ok; ++i) {
    InputFile file;
    file.path = p.bytes(p.u32());
    file.digest = p.bytes(32);
    file.size = p.u64();
    file.device = p.u64();
    file.inode = p.u64();
    file.mtime_ns = int64_t(p.u64());
    file.ctime_ns = int64_t(p.u64());
    entry.inputs.push_back(std::move(file));
  }
  auto read_type = [&p] {
    CType type;
    char flags[3] = {0, 0, 0};
    p.take(flags, 3);
    type.code = flags[0];
    type.pointee = flags[1];
    type.pointee_const = flags[2] != 0;
    type.spelling = p.bytes(p.u32());
    uint32_t dims = p.u32();
    for (uint32_t d = 0; d < dims && p.ok; ++d) type.memref_shape.push_back(int64_t(p.u64()));
    return type;
  };
  uint32_t signatures = p.u32();
  for (uint32_t i = 0; i < signatures && p.ok; ++i) {
    std::string name = p.bytes(p.u32());
    FunctionSignature& signature = entry.signatures[name];
    signature.problem = p.bytes(p.u32());
    signature.result = read_type();
    uint32_t params = p.u32();
    for (uint32_t k = 0; k < params && p.ok; ++k) signature.params.push_back(read_type());
  }
  if (!p.ok || p.pos != payload.size() || entry.target != target) return std::nullopt;
  return entry;
}

std::string encode_entry(const std::string& key_hex, const Artifact& entry) {
  Writer payload;
  for (const std::string* field : {&entry.target, &entry.arch, &entry.binary, &entry.assembly, &entry.warnings}) {
    payload.u64(field->size());
    payload.bytes(*field);
  }
  payload.u32(static_cast<uint32_t>(entry.entry_points.size()));
  for (const auto& name : entry.entry_points) {
    payload.u32(static_cast<uint32_t>(name.size()));
    payload.bytes(name);
  }
  payload.u64(entry.bitcode.size());
  payload.bytes(entry.bitcode);
  payload.u32(static_cast<uint32_t>(entry.inputs.size()));
  for (const InputFile& file : entry.inputs) {
    payload.u32(static_cast<uint32_t>(file.path.size()));
    payload.bytes(file.path);
    payload.bytes(file.digest);
    for (uint64_t v : {file.size, file.device, file.inode, uint64_t(file.mtime_ns), uint64_t(file.ctime_ns)}) payload.u64(v);
  }
  auto write_text = [&payload](const std::string& text) {
    payload.u32(static_cast<uint32_t>(text.size()));
    payload.bytes(text);
  };
  auto write_type = [&](const CType& type) {
    payload.bytes(std::string{type.code, type.pointee, static_cast<char>(type.pointee_const)});
    write_text(type.spelling);
    payload.u32(static_cast<uint32_t>(type.memref_shape.size()));
    for (int64_t size : type.memref_shape) payload.u64(uint64_t(size));
  };
  payload.u32(static_cast<uint32_t>(entry.signatures.size()));
  for (const auto& [name, signature] : entry.signatures) {
    write_text(name);
    write_text(signature.problem);
    write_type(signature.result);
    payload.u32(static_cast<uint32_t>(signature.params.size()));
    for (const CType& param : signature.params) write_type(param);
  }
  Writer file;
  file.bytes(std::string(kMagic, 8));
  file.u32(kFormat);
  file.bytes(key_hex);
  file.u64(payload.out.size());
  file.bytes(sha256(payload.out));
  file.bytes(payload.out);
  return std::move(file.out);
}

void ObjectCache::store(const std::string& key_hex, const Artifact& entry) { store_bytes(key_hex, encode_entry(key_hex, entry)); }

void ObjectCache::store_bytes(const std::string& key_hex, const std::string& data) {
  // Same directory, unique name, then rename: readers see the old entry, the new one, or none.
  std::string tmp = dir_ + "/." + key_hex + ".tmp.XXXXXX";
  int fd = mkstemp(&tmp[0]);
  if (fd < 0) return;  // a read-only or full cache only costs speed
  fchmod(fd, 0600);
  size_t done = 0;
  bool ok = true;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n <= 0) { ok = false; break; }
    done += n;
  }
  ok = (close(fd) == 0) && ok;
  if (!ok || rename(tmp.c_str(), path_for(key_hex).c_str()) != 0) {
    unlink(tmp.c_str());
    return;
  }
  account_store(data.size());
}

// The directory is listed only when the bound may be crossed: on the first store of this process,
// when the running estimate (last listing + what we stored since) exceeds the bound, and after we
// have stored a twentieth of the bound (other processes store too). A store thus costs an amortised
// ~20 stat calls however many entries there are, and the cache overshoots its bound by at most a
// twentieth of it per process storing concurrently.
void ObjectCache::account_store(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(accounting_mutex_);
  estimated_bytes_ += bytes;
  stored_since_listing_ += bytes;
  if (listed_ && estimated_bytes_ <= max_bytes_ && stored_since_listing_ < max_bytes_ / 20) return;
  estimated_bytes_ = evict_if_needed();
  stored_since_listing_ = 0;
  listed_ = true;
}

namespace {
struct EntryFile {
  std::string path;  // an object entry, or a precompiled header (its ".id" goes with it)
  uint64_t size;
  struct timespec mtime;
};

constexpr time_t kStaleTemporarySeconds = 3600;  // a temp file this old was left by a killed process

bool ends_with(const std::string& name, const char* suffix) {
  size_t n = std::strlen(suffix);
  return name.size() > n && name.compare(name.size() - n, n, suffix) == 0;
}

// The entries of the cache: objects in `dir`, precompiled headers in `dir`/pch. Temp files that a
// killed process left behind are removed on the way.
std::vector<EntryFile> list_entries(const std::string& dir) {
  std::vector<EntryFile> entries;
  time_t now = time(nullptr);
  for (const auto& [where, suffix] : {std::pair<std::string, const char*>{dir, kSuffix}, {dir + "/pch", ".pch"}}) {
    DIR* d = opendir(where.c_str());
    if (!d) continue;
    while (struct dirent* e = readdir(d)) {
      std::string name = e->d_name;
      std::string path = where + "/" + name;
      struct stat st;
      bool temporary = name.find(".tmp.") != std::string::npos;
      if ((!temporary && !ends_with(name, suffix)) || lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      if (temporary) {
        if (now - st.st_mtime > kStaleTemporarySeconds) unlink(path.c_str());
        continue;
      }
      entries.push_back({path, uint64_t(st.st_size), st.st_mtim});
    }
    closedir(d);
  }
  return entries;
}

bool remove_entry(const EntryFile& e) {
  if (ends_with(e.path, ".pch")) unlink((e.path + ".id").c_str());
  return unlink(e.path.c_str()) == 0;
}
}  // namespace

uint64_t ObjectCache::evict_if_needed() {
  auto entries = list_entries(dir_);
  uint64_t total = 0;
  for (const auto& e : entries) total += e.size;
  if (total <= max_bytes_) return total;
  std::sort(entries.begin(), entries.end(), [](const EntryFile& a, const EntryFile& b) {
    return a.mtime.tv_sec != b.mtime.tv_sec ? a.mtime.tv_sec < b.mtime.tv_sec : a.mtime.tv_nsec < b.mtime.tv_nsec;
  });
  uint64_t target = max_bytes_ - max_bytes_ / 10;  // evict down to 90% so we do not evict on every store
  for (const auto& e : entries) {
    if (total <= target) break;
    if (remove_entry(e)) total -= e.size;
  }
  return total;
}

CacheInfo ObjectCache::info() {
  CacheInfo info;
  info.enabled = true;
  info.directory = dir_;
  info.max_bytes = max_bytes_;
  for (const auto& e : list_entries(dir_)) {
    info.entries++;
    info.bytes += e.size;
  }
  return info;
}

uint64_t ObjectCache::clear() {
  uint64_t removed = 0;
  for (const auto& e : list_entries(dir_)) removed += remove_entry(e);
  return removed;
}

CacheInfo cache_info() {
  ObjectCache* cache = ObjectCache::current();
  if (!cache) {
    CacheInfo off;
    off.directory = cache_directory_setting();
    return off;
  }
  return cache->info();
}

uint64_t clear_cache() {
  ObjectCache* cache = ObjectCache::current();
  return cache ? cache->clear() : 0;
}

}  // namespace proteus
