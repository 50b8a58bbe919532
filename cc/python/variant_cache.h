// The bounded, least-recently-used cache of specialised variants that Function and Kernel share.
// Pure C++ (no Python): unit-tested on its own (tests/engine/unit_tests.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <utility>
#include <vector>

namespace proteus_py {

// The specialised variants of one Function or Kernel: one per tuple of values of its specialised
// arguments, the least recently used dropped beyond PROTEUS_SPECIALIZE_MAX_VARIANTS (default 64),
// so a value that changes on every call cannot exhaust memory. Not thread-safe: the Python module
// touches it with the GIL held.
template <typename Variant>
class VariantCache {
 public:
  using Values = std::vector<uint64_t>;
  explicit VariantCache(size_t limit) : limit_(limit) {}
  VariantCache(VariantCache&&) = default;
  VariantCache(const VariantCache&) = delete;

  // The variant for `values` (now the most recently used), or nullptr.
  Variant* find(const Values& values) {
    auto hit = by_values_.find(values);
    if (hit == by_values_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, hit->second);
    return &hit->second->second;
  }
  // Adds a variant (keeping an existing one: another thread may have made it meanwhile).
  Variant& insert(const Values& values, Variant variant) {
    if (Variant* existing = find(values)) return *existing;
    lru_.emplace_front(values, std::move(variant));
    by_values_[values] = lru_.begin();
    while (lru_.size() > limit_) {
      by_values_.erase(lru_.back().first);
      lru_.pop_back();  // its code is freed once nothing in flight holds it
    }
    return lru_.front().second;
  }
  size_t size() const { return lru_.size(); }

 private:
  size_t limit_;
  std::list<std::pair<Values, Variant>> lru_;  // most recent first
  std::map<Values, typename std::list<std::pair<Values, Variant>>::iterator> by_values_;
};

}  // namespace proteus_py
