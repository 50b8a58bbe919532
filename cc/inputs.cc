// The files a compile read besides its source (headers, a precompiled header): recorded with each
// cached result, which is reused only while every one of them still has the recorded content, as
// ccache's direct mode does (ARCHITECTURE 6). A stat that matches exactly (device, inode, size,
// mtime and ctime to the nanosecond; ctime cannot be set back by users) is trusted; otherwise the
// content is hashed and compared, so a touched but unchanged header costs a hash, not a compile.
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "object_cache.h"
#include "llvm/Support/BLAKE3.h"

namespace proteus {
namespace {

int64_t ns(const struct timespec& t) { return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec; }

// BLAKE3 of a regular file's content, read through `fd`; "" if it cannot be read whole.
std::string content_digest(int fd, uint64_t size) {
  llvm::BLAKE3 hasher;
  std::string buffer(1 << 16, '\0');
  uint64_t seen = 0;
  for (;;) {
    ssize_t n = read(fd, buffer.data(), buffer.size());
    if (n < 0) return "";
    if (n == 0) break;
    hasher.update(llvm::StringRef(buffer.data(), size_t(n)));
    seen += uint64_t(n);
  }
  if (seen != size) return "";  // changed while we read it
  auto digest = hasher.final();
  return std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
}

// The file as it is now (regular files only: a FIFO or device is never opened, so never waited on).
bool describe(const std::string& path, InputFile* out, bool with_digest) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  out->path = path;
  out->size = uint64_t(st.st_size);
  out->device = uint64_t(st.st_dev);
  out->inode = uint64_t(st.st_ino);
  out->mtime_ns = ns(st.st_mtim);
  out->ctime_ns = ns(st.st_ctim);
  if (!with_digest) return true;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return false;
  struct stat again;
  bool same = fstat(fd, &again) == 0 && S_ISREG(again.st_mode) && again.st_ino == st.st_ino;
  out->digest = same ? content_digest(fd, out->size) : "";
  close(fd);
  return !out->digest.empty();
}

bool same_stat(const InputFile& a, const InputFile& b) {
  return a.size == b.size && a.device == b.device && a.inode == b.inode && a.mtime_ns == b.mtime_ns &&
         a.ctime_ns == b.ctime_ns;
}

}  // namespace

int64_t wall_clock_ns() {
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return ns(now);
}

bool snapshot_inputs(const std::vector<std::string>& paths, int64_t started_ns, std::vector<InputFile>* out) {
  out->clear();
  bool reusable = true;
  for (const std::string& path : paths) {
    InputFile file;
    if (!describe(path, &file, /*with_digest=*/true)) {
      reusable = false;  // vanished or unreadable since the compile read it
      continue;
    }
    // Changed at or after the compile started: the compile may have read the older content.
    if (file.mtime_ns >= started_ns || file.ctime_ns >= started_ns) reusable = false;
    out->push_back(std::move(file));
  }
  return reusable;
}

bool inputs_unchanged(const std::vector<InputFile>& inputs) {
  for (const InputFile& recorded : inputs) {
    InputFile now;
    if (!describe(recorded.path, &now, /*with_digest=*/false)) return false;
    if (same_stat(now, recorded)) continue;
    if (now.size != recorded.size || !describe(recorded.path, &now, /*with_digest=*/true) ||
        now.digest != recorded.digest)
      return false;
  }
  return true;
}

}  // namespace proteus
