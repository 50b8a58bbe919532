// The bounded, least-recently-used cache of specialised variants that Function and Kernel share.
// Pure C++ (no Python): unit-tested on its own (tests/engine/unit_tests.cc).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <list>
#include <map>
#include <utility>
#include <vector>

namespace proteus_py {

// A tuple of argument values, borrowed: what a call looks variants up by, without allocating.
struct ValuesView {
  const uint64_t* data;
  size_t size;
};

// Whether a call in flight runs this variant's code: such a variant is never evicted. A Variant
// type that can be in flight overloads this (found by argument-dependent lookup).
template <typename Variant>
constexpr bool in_flight(const Variant&) {
  return false;
}

// The specialised variants of one Function or Kernel: one per tuple of values of its specialised
// arguments, the least recently used dropped beyond PROTEUS_SPECIALIZE_MAX_VARIANTS (default 64),
// so a value that changes on every call cannot exhaust memory (a variant in flight is dropped
// later: the bound is exceeded by at most the calls in flight). A hit allocates nothing, and a
// hit on the most recent variant (a loop calling with the same values) is one comparison. Not
// thread-safe: the Python module touches it with the GIL held.
template <typename Variant>
class VariantCache {
 public:
  using Values = std::vector<uint64_t>;
  explicit VariantCache(size_t limit) : limit_(limit) {}
  VariantCache(VariantCache&&) = default;
  VariantCache(const VariantCache&) = delete;

  // The variant for `values` (now the most recently used), or nullptr.
  Variant* find(ValuesView values) {
    if (lru_.empty()) return nullptr;
    if (equal(lru_.front().first, values)) return &lru_.front().second;
    auto hit = by_values_.find(values);
    if (hit == by_values_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, hit->second);
    return &hit->second->second;
  }
  Variant* find(const Values& values) { return find(ValuesView{values.data(), values.size()}); }

  // Adds a variant (keeping an existing one: another thread may have made it meanwhile).
  Variant& insert(const Values& values, Variant variant) {
    if (Variant* existing = find(values)) return *existing;
    lru_.emplace_front(values, std::move(variant));
    by_values_[values] = lru_.begin();
    // From the least recent towards, but never reaching, the one just added.
    for (auto it = std::prev(lru_.end()); lru_.size() > limit_ && it != lru_.begin();) {
      auto victim = it--;
      if (in_flight(victim->second)) continue;
      by_values_.erase(victim->first);
      lru_.erase(victim);  // its code is freed once nothing else holds it
    }
    return lru_.front().second;
  }
  size_t size() const { return lru_.size(); }

 private:
  static bool equal(const Values& a, ValuesView b) {
    return a.size() == b.size && std::equal(a.begin(), a.end(), b.data);
  }
  // Orders stored tuples and borrowed ones alike, so that a lookup needs no vector.
  struct Less {
    using is_transparent = void;
    static ValuesView view(const Values& v) { return {v.data(), v.size()}; }
    static ValuesView view(ValuesView v) { return v; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      ValuesView x = view(a), y = view(b);
      return std::lexicographical_compare(x.data, x.data + x.size, y.data, y.data + y.size);
    }
  };

  size_t limit_;
  std::list<std::pair<Values, Variant>> lru_;  // most recent first
  std::map<Values, typename std::list<std::pair<Values, Variant>>::iterator, Less> by_values_;
};

}  // namespace proteus_py
