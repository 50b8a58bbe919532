// The memory host modules are linked into (docs/ARCHITECTURE.md "Host linking and JIT memory").
//
// JITLink's own in-process manager gives every segment of every module whole pages: plus1 took two
// 4 KiB mappings for about 100 bytes. Here modules share pages. Code, read-only data and writable
// data each take pages of their own inside one reserved region, so the references between a
// module's segments stay within the x86-64 small code model's +-2 GiB. JITLink lays a module out and
// applies its fixups in a private staging buffer (its "working memory"); finalising copies it into
// place under the pool's lock. Code pages stay executable during that copy, because other modules'
// code on them may be running: they are made writable for the copy only, never writable otherwise.
// The memory is private and anonymous, so a fork()ed child has its own copy (copy-on-write) like
// any other memory, and the pool's lock is taken around fork() so a child never inherits it held.
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "internal.h"
#include "llvm/ExecutionEngine/JITLink/JITLink.h"
#include "llvm/ExecutionEngine/JITLink/JITLinkMemoryManager.h"
#include "llvm/ExecutionEngine/Orc/Shared/AllocationActions.h"
#include "llvm/Support/Alignment.h"
#include "llvm/Support/Memory.h"

namespace proteus {
namespace {

using llvm::jitlink::JITLinkMemoryManager;
using llvm::orc::MemLifetime;
using llvm::orc::MemProt;

constexpr size_t kRegionBytes = size_t(256) << 20;  // address space reserved at a time (not memory)
constexpr size_t kChunkBytes = size_t(64) << 10;    // what a kind of segment takes from a region at a time
constexpr size_t kCacheLine = 64;                   // code and writable data start on their own line

enum Kind { kCode, kConstant, kData, kKinds };

bool has(MemProt prot, MemProt flag) { return static_cast<unsigned>(prot) & static_cast<unsigned>(flag); }

Kind kind_of(MemProt prot) { return has(prot, MemProt::Exec) ? kCode : has(prot, MemProt::Write) ? kData : kConstant; }

int protection(Kind kind) {
  return kind == kCode ? PROT_READ | PROT_EXEC : kind == kData ? PROT_READ | PROT_WRITE : PROT_READ;
}

struct Region {
  char* base = nullptr;
  size_t size = 0;
  size_t carved = 0;                  // bytes from `base` handed to the kinds so far
  std::map<size_t, size_t> free[kKinds];  // offset -> bytes, coalesced
};

struct Placement {  // one segment of one module
  Region* region;
  Kind kind;
  size_t offset, bytes;
  char* address() const { return region->base + offset; }
};

// What a FinalizedAlloc points at.
struct Allocation {
  std::vector<Placement> placements;
  std::vector<llvm::orc::shared::WrapperFunctionCall> dealloc_actions;
};

llvm::Error errno_error(const char* what) {
  return llvm::createStringError(std::string("JIT memory: ") + what + " failed: " + std::strerror(errno));
}

class PackedMemory final : public JITLinkMemoryManager {
 public:
  explicit PackedMemory(size_t page) : page_(page) {}

  // Whether this system lets a page be writable and executable at once for the copy (hardened
  // kernels may not); checked once on a region of its own before any module uses the pool.
  bool usable() {
    std::lock_guard<std::mutex> lock(mutex);
    Region* region = new_region(page_);
    if (!region) return false;
    return mprotect(region->base, page_, PROT_READ | PROT_WRITE | PROT_EXEC) == 0 &&
           mprotect(region->base, page_, PROT_NONE) == 0;
  }

  void allocate(const llvm::jitlink::JITLinkDylib*, llvm::jitlink::LinkGraph& graph,
                OnAllocatedFunction done) override;

  void deallocate(std::vector<FinalizedAlloc> allocations, OnDeallocatedFunction done) override {
    llvm::Error failure = llvm::Error::success();
    for (FinalizedAlloc& finalized : allocations) {
      std::unique_ptr<Allocation> allocation(finalized.release().toPtr<Allocation*>());
      failure = llvm::joinErrors(std::move(failure), llvm::orc::shared::runDeallocActions(allocation->dealloc_actions));
      std::lock_guard<std::mutex> lock(mutex);
      for (const Placement& placement : allocation->placements) release(placement);
    }
    done(std::move(failure));
  }

  // Copies a finalised segment from its staging buffer into place.
  void install(const Placement& where, const char* staged) {
    char* first_page = reinterpret_cast<char*>(llvm::alignDown(reinterpret_cast<uintptr_t>(where.address()), page_));
    size_t span = llvm::alignTo(where.address() + where.bytes - first_page, page_);
    if (where.kind != kData) mprotect(first_page, span, protection(where.kind) | PROT_WRITE);
    std::memcpy(where.address(), staged, where.bytes);
    if (where.kind != kData) mprotect(first_page, span, protection(where.kind));
    if (where.kind == kCode) llvm::sys::Memory::InvalidateInstructionCache(where.address(), where.bytes);
  }

  void release(const Placement& placement) {
    auto& free = placement.region->free[placement.kind];
    size_t start = placement.offset, end = placement.offset + placement.bytes;
    auto next = free.lower_bound(start);
    if (next != free.begin()) {
      auto previous = std::prev(next);
      if (previous->first + previous->second == start) {
        start = previous->first;
        free.erase(previous);
      }
    }
    if (next != free.end() && next->first == end) {
      end += next->second;
      free.erase(next);
    }
    free[start] = end - start;
    // The whole pages of the free range go back to the system (zero when touched again).
    size_t first = llvm::alignTo(start, page_), last = llvm::alignDown(end, page_);
    if (last > first) madvise(placement.region->base + first, last - first, MADV_DONTNEED);
  }

  std::mutex mutex;  // the regions and their free lists; held while a module is copied in

 private:
  Region* new_region(size_t at_least) {
    size_t size = std::max(kRegionBytes, llvm::alignTo(at_least, page_));
    void* base = mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) return nullptr;
    auto region = std::make_unique<Region>();
    region->base = static_cast<char*>(base);
    region->size = size;
    regions_.push_back(std::move(region));
    return regions_.back().get();
  }

  // `bytes` aligned to `align` in the region's pages of `kind`, taking a new chunk if none fits.
  bool place(Region& region, Kind kind, size_t bytes, size_t align, size_t* offset) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto& free = region.free[kind];
      for (auto it = free.begin(); it != free.end(); ++it) {
        size_t start = llvm::alignTo(it->first, align), end = it->first + it->second;
        if (start + bytes > end) continue;
        size_t before = start - it->first, after = end - (start + bytes);
        size_t range_start = it->first;
        free.erase(it);
        if (before) free[range_start] = before;
        if (after) free[start + bytes] = after;
        *offset = start;
        return true;
      }
      size_t chunk = llvm::alignTo(std::max(kChunkBytes, bytes + align), page_);
      if (attempt || region.carved + chunk > region.size) return false;
      if (mprotect(region.base + region.carved, chunk, protection(kind)) != 0) return false;
      Placement carved{&region, kind, region.carved, chunk};
      region.carved += chunk;
      release(carved);
    }
    return false;
  }

  friend class InFlight;
  std::vector<std::unique_ptr<Region>> regions_;
  size_t page_;
};

class InFlight final : public JITLinkMemoryManager::InFlightAlloc {
 public:
  struct Segment {
    Placement where;
    std::unique_ptr<char[]> staged;
  };

  InFlight(PackedMemory& memory, llvm::jitlink::LinkGraph& graph, std::vector<Segment> segments,
           std::vector<std::unique_ptr<char[]>> finalize_only)
      : memory_(memory), graph_(graph), segments_(std::move(segments)), finalize_only_(std::move(finalize_only)) {}

  void finalize(OnFinalizedFunction done) override {
    {
      std::lock_guard<std::mutex> lock(memory_.mutex);
      for (const Segment& segment : segments_) memory_.install(segment.where, segment.staged.get());
    }
    auto dealloc_actions = llvm::orc::shared::runFinalizeActions(graph_.allocActions());
    if (!dealloc_actions) {
      release_all();
      done(dealloc_actions.takeError());
      return;
    }
    auto allocation = std::make_unique<Allocation>();
    for (const Segment& segment : segments_) allocation->placements.push_back(segment.where);
    allocation->dealloc_actions = std::move(*dealloc_actions);
    segments_.clear();
    finalize_only_.clear();
    done(JITLinkMemoryManager::FinalizedAlloc(llvm::orc::ExecutorAddr::fromPtr(allocation.release())));
  }

  void abandon(OnAbandonedFunction done) override {
    release_all();
    done(llvm::Error::success());
  }

 private:
  void release_all() {
    std::lock_guard<std::mutex> lock(memory_.mutex);
    for (const Segment& segment : segments_) memory_.release(segment.where);
    segments_.clear();
  }

  PackedMemory& memory_;
  llvm::jitlink::LinkGraph& graph_;
  std::vector<Segment> segments_;
  std::vector<std::unique_ptr<char[]>> finalize_only_;  // segments needed only while finalising
};

void PackedMemory::allocate(const llvm::jitlink::JITLinkDylib*, llvm::jitlink::LinkGraph& graph,
                            OnAllocatedFunction done) {
  llvm::jitlink::BasicLayout layout(graph);
  std::vector<InFlight::Segment> segments;
  std::vector<std::unique_ptr<char[]>> finalize_only;
  std::vector<llvm::jitlink::BasicLayout::Segment*> standard;
  std::vector<size_t> aligns;
  size_t total = 0;
  for (auto& [group, segment] : layout.segments()) {
    size_t bytes = std::max<size_t>(1, segment.ContentSize + segment.ZeroFillSize);
    if (group.getMemLifetime() == MemLifetime::Finalize) {  // staged only: read by finalize actions
      finalize_only.emplace_back(new char[bytes + segment.Alignment.value()]());
      char* at = reinterpret_cast<char*>(llvm::alignAddr(finalize_only.back().get(), segment.Alignment));
      segment.Addr = llvm::orc::ExecutorAddr::fromPtr(at);
      segment.WorkingMem = at;
      continue;
    }
    MemProt prot = group.getMemProt();
    if (has(prot, MemProt::Write) && has(prot, MemProt::Exec)) {
      done(llvm::createStringError("the object has a section that is both writable and executable, which "
                                   "the JIT does not map; compile without such a section"));
      return;
    }
    Kind kind = kind_of(prot);
    size_t align = std::max<size_t>(segment.Alignment.value(), kind == kConstant ? 16 : kCacheLine);
    segments.push_back({{nullptr, kind, 0, bytes}, std::unique_ptr<char[]>(new char[bytes]())});
    standard.push_back(&segment);
    aligns.push_back(align);
    total += llvm::alignTo(bytes + align, page_);
  }
  {
    std::lock_guard<std::mutex> lock(mutex);
    // Every segment of a module in one region (newest first), so its relative references reach.
    auto fits = [&](Region& region) {
      for (size_t i = 0; i < segments.size(); ++i) {
        Placement& where = segments[i].where;
        where.region = &region;
        if (!place(region, where.kind, where.bytes, aligns[i], &where.offset)) {
          for (size_t j = 0; j < i; ++j) release(segments[j].where);
          return false;
        }
      }
      return true;
    };
    bool placed = false;
    for (auto it = regions_.rbegin(); it != regions_.rend() && !placed; ++it) placed = fits(**it);
    if (!placed) {
      Region* region = new_region(total + kKinds * kChunkBytes);
      if (!region) {
        done(errno_error("reserving address space"));
        return;
      }
      placed = fits(*region);
    }
    if (!placed) {
      done(errno_error("mapping pages"));
      return;
    }
  }
  for (size_t i = 0; i < segments.size(); ++i) {
    standard[i]->Addr = llvm::orc::ExecutorAddr::fromPtr(segments[i].where.address());
    standard[i]->WorkingMem = segments[i].staged.get();
  }
  if (auto err = layout.apply()) {
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& segment : segments) release(segment.where);
    done(std::move(err));
    return;
  }
  done(std::make_unique<InFlight>(*this, graph, std::move(segments), std::move(finalize_only)));
}

PackedMemory* the_pool = nullptr;

}  // namespace

std::unique_ptr<llvm::jitlink::JITLinkMemoryManager> packed_jit_memory() {
  long page = sysconf(_SC_PAGESIZE);
  auto memory = std::make_unique<PackedMemory>(page > 0 ? static_cast<size_t>(page) : 4096);
  if (!memory->usable()) return nullptr;
  the_pool = memory.get();  // one per process (the linker's), alive until exit
  pthread_atfork([] { the_pool->mutex.lock(); }, [] { the_pool->mutex.unlock(); },
                 [] { the_pool->mutex.unlock(); });
  return memory;
}

}  // namespace proteus
