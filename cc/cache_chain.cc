// The cache chain (ARCHITECTURE 6, "The cache chain"): PROTEUS_OBJECT_CACHE_CHAIN names the levels a
// compile looks its key up in, in order. "storage" is this machine's persistent cache; the MPI and
// HTTP levels are made by the Python module's factory (engine.h: SharedCacheLevel). A hit fills the
// levels before it; a compile stores into every level. Whatever a shared level returns is checked as
// the cache checks its own files, so a bad or foreign payload is a miss, never code.
#include <algorithm>
#include <mutex>

#include "internal.h"
#include "object_cache.h"

namespace proteus {

struct ChainLevel {
  std::string name;                          // as the chain names it
  std::unique_ptr<SharedCacheLevel> shared;  // null for "storage" (and until first made)
  CacheLevelInfo counts;
};

namespace {

using Level = ChainLevel;

struct Chain {
  std::mutex mutex;   // the levels and their counts
  std::mutex making;  // held while the factory makes a level
  SharedLevelFactory factory = nullptr;
  std::string spec;  // the setting the levels were made for
  std::vector<std::shared_ptr<Level>> levels;
};
Chain& chain() {
  static Chain* c = new Chain;  // never destroyed: levels may hold Python objects past exit
  return *c;
}

bool is_shared_name(const std::string& name) {
  return name == "mpi-local-lookup" || name == "mpi-remote-lookup" || name.rfind("http://", 0) == 0 ||
         name.rfind("https://", 0) == 0;
}

// The level names of the setting, checked.
std::vector<std::string> parse_chain(const std::string& spec) {
  std::vector<std::string> names;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    std::string name = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    while (!name.empty() && name.front() == ' ') name.erase(0, 1);
    while (!name.empty() && name.back() == ' ') name.pop_back();
    if (name != "storage" && !is_shared_name(name))
      throw ConfigError("PROTEUS_OBJECT_CACHE_CHAIN=" + spec + ": '" + name + "' is not a cache level; use a "
                        "comma-separated list of storage, mpi-local-lookup, mpi-remote-lookup and http://host:port/prefix");
    for (const std::string& seen : names)
      if (seen == name) throw ConfigError("PROTEUS_OBJECT_CACHE_CHAIN=" + spec + " names '" + name + "' twice");
    if ((name == "mpi-local-lookup" || name == "mpi-remote-lookup") &&
        std::count(names.begin(), names.end(), name == "mpi-local-lookup" ? "mpi-remote-lookup" : "mpi-local-lookup"))
      throw ConfigError("PROTEUS_OBJECT_CACHE_CHAIN=" + spec + ": use one of mpi-local-lookup and mpi-remote-lookup");
    names.push_back(name);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return names;
}

SharedLevelOptions level_options() {
  SharedLevelOptions options;
  options.http_timeout_seconds = count_setting("PROTEUS_HTTP_CACHE_TIMEOUT_MS") / 1000.0;
  options.http_max_bytes = count_setting("PROTEUS_HTTP_CACHE_MAX_BYTES");
  options.http_header = text_setting("PROTEUS_HTTP_CACHE_HEADER");
  options.mpi_directory = text_setting("PROTEUS_MPI_CACHE_DIR");
  options.mpi_timeout_seconds = count_setting("PROTEUS_MPI_CACHE_TIMEOUT_MS") / 1000.0;
  return options;
}

// The levels in force: made again when the setting changed (a level keeps its counts while it
// stays in the chain). Shared levels are made here by the factory, on the first lookup (a report
// asks without making them: making an MPI level initialises MPI).
std::vector<std::shared_ptr<Level>> current_levels(bool make_shared_levels = true) {
  std::string spec = text_setting("PROTEUS_OBJECT_CACHE_CHAIN");
  Chain& c = chain();
  std::unique_lock<std::mutex> lock(c.mutex);
  if (spec != c.spec || c.levels.empty()) {
    std::vector<std::string> names = parse_chain(spec);
    std::vector<std::shared_ptr<Level>> levels;
    for (const std::string& name : names) {
      std::shared_ptr<Level> level;
      for (const auto& old : c.levels)
        if (old->name == name) level = old;
      if (!level) {
        level = std::make_shared<Level>();
        level->name = level->counts.name = name;
      }
      levels.push_back(level);
    }
    c.levels = std::move(levels);
    c.spec = spec;
  }
  std::vector<std::shared_ptr<Level>> levels = c.levels;
  SharedLevelFactory factory = c.factory;
  lock.unlock();  // the factory calls into Python (the GIL): never with the chain's lock held
  if (!make_shared_levels) return levels;
  for (const auto& level : levels) {
    if (level->name == "storage") continue;
    std::lock_guard<std::mutex> making(c.making);  // one level object per name, however many threads
    if (level->shared) continue;
    if (!factory)
      throw ConfigError("PROTEUS_OBJECT_CACHE_CHAIN names '" + level->name + "', which this engine cannot make "
                        "without the Python module");
    std::unique_ptr<SharedCacheLevel> made = factory(level->name, level_options());  // ConfigError: no mpi4py
    std::string description = made->describe();
    std::lock_guard<std::mutex> relock(c.mutex);
    level->counts.description = std::move(description);
    level->shared = std::move(made);
  }
  return levels;
}

void count(Level& level, uint64_t CacheLevelInfo::*field, const std::string& error = "") {
  std::lock_guard<std::mutex> lock(chain().mutex);
  ++(level.counts.*field);
  if (!error.empty()) level.counts.last_error = error;
}

}  // namespace

void set_shared_level_factory(SharedLevelFactory factory) {
  std::lock_guard<std::mutex> lock(chain().mutex);
  chain().factory = factory;
}

std::vector<CacheLevelInfo> cache_chain_info() {
  std::vector<std::shared_ptr<Level>> levels = current_levels(/*make_shared_levels=*/false);
  std::lock_guard<std::mutex> lock(chain().mutex);
  std::vector<CacheLevelInfo> out;
  for (const auto& level : levels) {
    out.push_back(level->counts);
    if (level->name == "storage")
      out.back().description = stored_cache_enabled() ? cache_directory_setting() : "off (PROTEUS_USE_STORED_CACHE=0)";
  }
  return out;
}

ChainLookup::ChainLookup(std::string key, std::string target) : key_(std::move(key)), target_(std::move(target)) {}

ChainLookup::~ChainLookup() {
  if (filled_) return;
  for (const auto& level : asked_)  // their lease goes to the next rank that wants the key
    if (level->shared) try {
        level->shared->abandon(key_);
      } catch (...) {
      }
}

std::optional<Artifact> ChainLookup::find() {
  for (const std::shared_ptr<Level>& level : current_levels()) {
    std::optional<Artifact> entry;
    std::string bytes;
    if (level->name == "storage") {
      ObjectCache* cache = ObjectCache::current();  // throws CacheError for an unsafe directory
      if (!cache) continue;                         // PROTEUS_USE_STORED_CACHE=0
      entry = cache->load(key_, target_);
      if (entry && !inputs_unchanged(entry->inputs)) entry.reset();  // stale: compiled again, replaced
    } else {
      std::optional<std::string> found;
      try {
        found = level->shared->lookup(key_);
      } catch (const CompileCancelled&) {
        throw;  // Ctrl-C while waiting for another rank
      } catch (const std::exception& e) {
        count(*level, &CacheLevelInfo::errors, e.what());
      }
      if (found) {
        entry = decode_entry(*found, key_, target_);
        if (!entry) count(*level, &CacheLevelInfo::rejected);
        else if (!inputs_unchanged(entry->inputs)) entry.reset();  // compiled against other headers
        if (entry) bytes = std::move(*found);
      }
    }
    if (!entry) {
      count(*level, &CacheLevelInfo::misses);
      asked_.push_back(level);
      continue;
    }
    count(*level, &CacheLevelInfo::hits);
    if (!asked_.empty()) fill(bytes.empty() ? encode_entry(key_, *entry) : bytes);  // the levels before this one
    filled_ = true;
    return entry;
  }
  return std::nullopt;
}

void ChainLookup::store(const Artifact& entry) { fill(encode_entry(key_, entry)); }

void ChainLookup::fill(const std::string& bytes) {
  filled_ = true;
  for (const auto& level : asked_) {
    if (level->name == "storage") {
      if (ObjectCache* cache = ObjectCache::current()) cache->store_bytes(key_, bytes);
      continue;
    }
    try {
      level->shared->store(key_, bytes);
    } catch (const std::exception& e) {
      count(*level, &CacheLevelInfo::errors, e.what());
    }
  }
}

}  // namespace proteus
