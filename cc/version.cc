// The version the engine was built as (part of every persistent cache key). Its own translation
// unit so that a version change recompiles only this file.
#include "internal.h"

// PROTEUS_VERSION arrives unquoted (-DPROTEUS_VERSION=2026.3.1): a PEP 440 version is one
// preprocessing number, which stringification turns into the literal.
#define PROTEUS_STRINGIFY2(x) #x
#define PROTEUS_STRINGIFY(x) PROTEUS_STRINGIFY2(x)

#if defined(__OPTIMIZE__) && defined(NDEBUG)
#define PROTEUS_BUILD_MODE "optimized"
#else
#define PROTEUS_BUILD_MODE "unoptimized"
#endif

namespace proteus {
namespace {
// Kept whole in the binary: tests/wheel_hygiene.py looks for it in every shipped shared object.
constexpr char kBuildModeMarker[] = "proteus-build-mode=" PROTEUS_BUILD_MODE;
}  // namespace

const char* build_version() { return PROTEUS_STRINGIFY(PROTEUS_VERSION); }
const char* build_mode() { return kBuildModeMarker + sizeof("proteus-build-mode=") - 1; }
}  // namespace proteus
