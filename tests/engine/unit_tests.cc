// Unit tests of the engine's pure parts (ARCHITECTURE 7): settings parsing, the object-cache file
// format (round trip and corruption), cache-key stability, the variant LRU, the include prefix,
// and containment. Seconds to run; no Python, no wheel. A failed check prints where and exits 1.
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "cc/internal.h"
#include "cc/object_cache.h"
#include "cc/python/variant_cache.h"
#include "proteus/engine.h"

// Every operator new of this process is counted: a test asserts that a path allocates nothing.
static std::atomic<long> allocations{0};
void* operator new(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

int failures = 0;
std::vector<std::pair<const char*, std::function<void()>>>& registry() {
  static std::vector<std::pair<const char*, std::function<void()>>> tests;
  return tests;
}
struct Register {
  Register(const char* name, std::function<void()> fn) { registry().emplace_back(name, std::move(fn)); }
};
#define TEST(name)                                  \
  void name();                                      \
  Register register_##name(#name, name);            \
  void name()
#define CHECK(condition)                                                            \
  do {                                                                              \
    if (!(condition)) {                                                             \
      std::fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #condition); \
      ++failures;                                                                   \
    }                                                                               \
  } while (0)

// The message of the exception `fn` throws as E, or "(nothing thrown)" / "(other exception)".
template <typename E>
std::string thrown(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  } catch (...) {
    return "(other exception)";
  }
  return "(nothing thrown)";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A fresh private directory under Bazel's TEST_TMPDIR (else /tmp).
std::string temp_dir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string templ = std::string(base && *base ? base : "/tmp") + "/proteus-unit.XXXXXX";
  CHECK(mkdtemp(&templ[0]) != nullptr);
  return templ;
}

// --- settings -------------------------------------------------------------------------------------

TEST(flags_take_the_usual_spellings) {
  for (const char* yes : {"1", "true", "ON", "Yes"}) {
    setenv("PROTEUS_USE_PCH", yes, 1);
    CHECK(proteus::flag_setting("PROTEUS_USE_PCH"));
  }
  for (const char* no : {"0", "false", "off", "NO"}) {
    setenv("PROTEUS_USE_PCH", no, 1);
    CHECK(!proteus::flag_setting("PROTEUS_USE_PCH"));
  }
  setenv("PROTEUS_USE_PCH", "", 1);
  CHECK(proteus::flag_setting("PROTEUS_USE_PCH"));  // empty: the default
  setenv("PROTEUS_USE_PCH", "maybe", 1);
  std::string message = thrown<proteus::ConfigError>([] { proteus::flag_setting("PROTEUS_USE_PCH"); });
  CHECK(contains(message, "PROTEUS_USE_PCH=maybe") && contains(message, "1/0"));
  unsetenv("PROTEUS_USE_PCH");
}

TEST(levels_and_counts_reject_anything_else) {
  setenv("PROTEUS_OPT_LEVEL", "2", 1);
  CHECK(proteus::opt_level() == 2);
  for (const char* bad : {"4", "-1", "O2", "22", "S", "fast"}) {
    setenv("PROTEUS_OPT_LEVEL", bad, 1);
    CHECK(contains(thrown<proteus::ConfigError>([] { proteus::opt_level(); }), std::string("PROTEUS_OPT_LEVEL=") + bad));
  }
  setenv("PROTEUS_OPT_LEVEL", "s", 1);
  CHECK(proteus::opt_level() == proteus::kOptSize && proteus::opt_flag(proteus::opt_level()) == "-Os");
  setenv("PROTEUS_OPT_LEVEL", "z", 1);
  CHECK(proteus::opt_level() == proteus::kOptMinSize && proteus::opt_flag(proteus::opt_level()) == "-Oz");
  unsetenv("PROTEUS_OPT_LEVEL");
  CHECK(proteus::opt_level() == 3 && proteus::opt_flag(3) == "-O3");
  setenv("PROTEUS_CODEGEN_OPT_LEVEL", "s", 1);  // code generation has no size levels
  CHECK(contains(thrown<proteus::ConfigError>([] { proteus::codegen_opt_level(); }), "use 0, 1, 2 or 3"));
  unsetenv("PROTEUS_CODEGEN_OPT_LEVEL");
  setenv("PROTEUS_CACHE_MAX_BYTES", "12345", 1);
  CHECK(proteus::count_setting("PROTEUS_CACHE_MAX_BYTES") == 12345);
  for (const char* bad : {"-1", " 5", "1e9", "12MB", "99999999999999999999999"}) {
    setenv("PROTEUS_CACHE_MAX_BYTES", bad, 1);
    CHECK(contains(thrown<proteus::ConfigError>([] { proteus::count_setting("PROTEUS_CACHE_MAX_BYTES"); }),
                   "is not a number of bytes"));
  }
  unsetenv("PROTEUS_CACHE_MAX_BYTES");
  CHECK(proteus::count_setting("PROTEUS_CACHE_MAX_BYTES") == (1ull << 30));
}

TEST(every_setting_is_documented_once) {
  std::vector<std::string> names;
  for (const proteus::Setting& s : proteus::settings()) {
    CHECK(!s.doc.empty() && !s.kind.empty());
    for (const std::string& seen : names) CHECK(seen != s.name);
    names.push_back(s.name);
  }
  CHECK(names.size() >= 15);
}

// --- the object cache file format ------------------------------------------------------------------

proteus::Artifact sample_entry() {
  proteus::Artifact entry;
  entry.target = "cuda";
  entry.arch = "sm_90";
  entry.binary = std::string("\x7f" "ELF object bytes\0with a NUL", 27);
  entry.assembly = ".version 8.0";
  entry.entry_points = {"f", "g"};
  entry.bitcode = "BC\xc0\xde...";
  proteus::FunctionSignature axpy;
  axpy.result = {'v', 0, false, "void"};
  axpy.params = {{'d', 0, false, "double"}, {'p', 'd', true, "const double *"}, {'p', 'd', false, "double *"}};
  entry.signatures["axpy"] = axpy;
  entry.signatures["S::get"].problem = "it is a member function";
  proteus::FunctionSignature scale;  // an MLIR function: a memref's shape round-trips too
  scale.result = {'v', 0, false, "void"};
  scale.params = {{'m', 'f', false, "memref<?x4xf32>", {-1, 4}}, {'f', 0, false, "f32"}};
  entry.signatures["scale"] = scale;
  entry.warnings = "source.cpp:1:5: warning: unused variable 'x'";
  proteus::InputFile header;
  header.path = "/usr/include/stdio.h";
  header.digest = std::string(32, 'd');
  header.size = 1234;
  header.mtime_ns = 42;
  entry.inputs = {header};
  return entry;
}

TEST(cache_entries_round_trip_and_damage_is_a_miss) {
  std::string dir = temp_dir();
  setenv("PROTEUS_CACHE_DIR", dir.c_str(), 1);
  unsetenv("PROTEUS_USE_STORED_CACHE");
  proteus::ObjectCache* cache = proteus::ObjectCache::current();
  CHECK(cache != nullptr);
  std::string key(64, 'a'), other(64, 'b');
  cache->store(key, sample_entry());
  std::optional<proteus::Artifact> loaded = cache->load(key, "cuda");
  proteus::Artifact sample = sample_entry();
  CHECK(loaded && loaded->target == "cuda" && loaded->arch == sample.arch && loaded->binary == sample.binary &&
        loaded->assembly == sample.assembly && loaded->entry_points == sample.entry_points &&
        loaded->bitcode == sample.bitcode && loaded->signatures.size() == 3 && loaded->warnings == sample.warnings);
  const proteus::FunctionSignature& axpy = loaded->signatures.at("axpy");
  CHECK(axpy.result.code == 'v' && axpy.params.size() == 3 && axpy.params[1].pointee == 'd' &&
        axpy.params[1].pointee_const && !axpy.params[2].pointee_const && axpy.params[1].spelling == "const double *");
  CHECK(loaded->signatures.at("S::get").problem == "it is a member function");
  const proteus::FunctionSignature& scale = loaded->signatures.at("scale");
  CHECK(scale.params.size() == 2 && scale.params[0].code == 'm' && scale.params[0].pointee == 'f' &&
        scale.params[0].memref_shape == std::vector<int64_t>({-1, 4}) && scale.params[1].memref_shape.empty());
  CHECK(!cache->load(key, "host"));  // another target's entry is never this one's
  CHECK(loaded && loaded->inputs.size() == 1 && loaded->inputs[0].path == "/usr/include/stdio.h" &&
        loaded->inputs[0].size == 1234 && loaded->inputs[0].mtime_ns == 42);
  std::string path = dir + "/" + key + ".pobj";
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  CHECK(bytes.size() > 100);
  auto write = [&](const std::string& name, const std::string& data) {
    std::ofstream(dir + "/" + name + ".pobj", std::ios::binary | std::ios::trunc) << data;
    chmod((dir + "/" + name + ".pobj").c_str(), 0600);
  };
  std::string flipped = bytes;
  flipped[flipped.size() - 3] ^= 0x20;  // payload byte: the checksum no longer matches
  write(key, flipped);
  CHECK(!cache->load(key, "cuda"));
  write(key, bytes.substr(0, bytes.size() / 2));  // truncated
  CHECK(!cache->load(key, "cuda"));
  write(other, bytes);  // another key's entry under this name
  CHECK(!cache->load(other, "cuda"));
  write(key, "");
  CHECK(!cache->load(key, "cuda"));
  std::string older = bytes;
  older[8] = 4;  // the format before typed artifacts: a miss, not an error
  write(key, older);
  CHECK(!cache->load(key, "cuda"));
  write(key, bytes);  // intact again
  CHECK(cache->load(key, "cuda").has_value());
  CHECK(proteus::clear_cache() == 2);
}

// --- cache keys --------------------------------------------------------------------------------------

TEST(variant_keys_are_stable_and_cover_every_field) {
  auto key = [](std::string base, std::string ir, std::string name, std::string codes, uint64_t value) {
    return proteus::variant_key(base, ir, name, codes, {{1, value}});
  };
  std::string reference = key("base", "ir", "f", "ii", 7);
  CHECK(reference.size() == 64 && reference == key("base", "ir", "f", "ii", 7));
  CHECK(reference != key("base2", "ir", "f", "ii", 7));
  CHECK(reference != key("base", "ir2", "f", "ii", 7));
  CHECK(reference != key("base", "ir", "g", "ii", 7));
  CHECK(reference != key("base", "ir", "f", "il", 7));
  CHECK(reference != key("base", "ir", "f", "ii", 8));
  setenv("PROTEUS_OPT_LEVEL", "1", 1);
  CHECK(reference != key("base", "ir", "f", "ii", 7));
  unsetenv("PROTEUS_OPT_LEVEL");
}

// --- the variant LRU ---------------------------------------------------------------------------------

TEST(variant_cache_keeps_the_most_recently_used) {
  proteus_py::VariantCache<int> cache(2);
  cache.insert({1}, 10);
  cache.insert({2}, 20);
  CHECK(cache.find({1}) && *cache.find({1}) == 10);  // 1 is now the most recent
  cache.insert({3}, 30);                             // evicts 2
  CHECK(cache.size() == 2 && !cache.find({2}) && cache.find({1}) && cache.find({3}));
  CHECK(cache.insert({3}, 99) == 30);  // an existing variant is kept
}

// A variant that a call in flight may be running.
struct BusyVariant {
  int value;
  bool busy;
};
constexpr bool in_flight(const BusyVariant& v) { return v.busy; }

TEST(variant_cache_hits_allocate_nothing) {
  proteus_py::VariantCache<int> cache(4);
  for (uint64_t v = 1; v <= 3; ++v) cache.insert({v, 7}, static_cast<int>(v));
  long before = allocations.load();
  int found = 0;
  for (int round = 0; round < 300; ++round) {
    uint64_t values[2] = {static_cast<uint64_t>(1 + round % 3), 7};  // a new most-recent each time
    for (int again = 0; again < 2; ++again)                          // then the same values again
      if (int* hit = cache.find(proteus_py::ValuesView{values, 2})) found += *hit == static_cast<int>(values[0]);
  }
  CHECK(allocations.load() == before);
  CHECK(found == 600);
  uint64_t absent[2] = {9, 7};
  CHECK(!cache.find(proteus_py::ValuesView{absent, 2}) && allocations.load() == before);
  cache.insert({9, 7}, 9);
  CHECK(allocations.load() > before);  // the counter sees the cache's own allocations
}

TEST(variant_cache_never_evicts_a_variant_in_flight) {
  proteus_py::VariantCache<BusyVariant> cache(1);
  cache.insert({1}, {10, true});
  CHECK(cache.insert({2}, {20, false}).value == 20);  // over the bound while 1 runs
  CHECK(cache.size() == 2 && cache.find({1}) && cache.find({2}));
  cache.find({1})->busy = false;  // its call returned
  CHECK(cache.insert({3}, {30, false}).value == 30);
  CHECK(cache.size() == 1 && cache.find({3}) && !cache.find({1}) && !cache.find({2}));
}

// --- the include prefix (what a precompiled header stands for) ---------------------------------------

TEST(include_prefix_takes_leading_system_includes_only) {
  CHECK(proteus::include_prefix("#include <vector>\n// note\n\n#include <cmath>\nint x;") ==
        "#include <vector>\n#include <cmath>\n");
  CHECK(proteus::include_prefix("  #include <map>  \r\nint y;") == "#include <map>\n");
  CHECK(proteus::include_prefix("#include \"local.h\"\n#include <vector>\n").empty());
  CHECK(proteus::include_prefix("#define X 1\n#include <vector>\n").empty());
  CHECK(proteus::include_prefix("#include <vector>\n#include \"mine.h\"\n#include <map>\n") == "#include <vector>\n");
  CHECK(proteus::include_prefix("").empty());
}

// --- targets -----------------------------------------------------------------------------------------

TEST(only_the_linked_targets_exist_and_an_unknown_one_is_an_error) {
  CHECK(proteus::target_names() == std::vector<std::string>{"host"});  // this test links the host engine
  CHECK(proteus::target_description("cuda").empty());
  proteus::CompileRequest request;
  request.source = "int x;";
  request.target = "cuda";
  std::string message = thrown<proteus::CompileError>([&] { proteus::compile(request); });
  CHECK(contains(message, "target 'cuda' is not in this engine, which has 'host'"));
}

// --- containment -------------------------------------------------------------------------------------

TEST(contained_work_returns_throws_crashes_and_times_out) {
  proteus::Artifact made = proteus::run_contained(
      [] {
        proteus::Artifact entry;
        entry.binary = "made";
        return entry;
      },
      "unit work", 0);
  CHECK(made.binary == "made");
  CHECK(proteus::run_contained([] { return std::string("text"); }, "unit work", 0) == "text");
  CHECK(thrown<proteus::CompileError>([] {
          proteus::run_contained([]() -> proteus::Artifact { throw proteus::CompileError("bad input"); }, "unit work", 0);
        }) == "bad input");
  std::string crash = thrown<proteus::CompileError>([] {
    proteus::run_contained([]() -> proteus::Artifact { raise(SIGSEGV); return {}; }, "crashing work", 0);
  });
  CHECK(contains(crash, "SIGSEGV") && contains(crash, "crashing work"));
  std::string fatal = thrown<proteus::CompileError>([] {
    proteus::run_contained([]() -> proteus::Artifact { proteus::fail_contained("deep failure"); }, "unit work", 0);
  });
  CHECK(fatal == "deep failure (while unit work)");
  std::string late = thrown<proteus::CompileTimeout>([] {
    proteus::run_contained(
        []() -> proteus::Artifact {
          for (;;) {
            proteus::checkpoint();
            usleep(1000);
          }
        },
        "slow work", 0.2);
  });
  CHECK(contains(late, "slow work did not finish within timeout=0.2 s"));
}

}  // namespace

int main() {
  for (auto& [name, fn] : registry()) {
    int before = failures;
    fn();
    std::printf("%s %s\n", failures == before ? "ok  " : "FAIL", name);
  }
  std::printf("%zu tests, %d failed checks\n", registry().size(), failures);
  return failures == 0 ? 0 : 1;
}
