// The version libproteus was built as (part of every persistent cache key). Its own translation
// unit so that a version change recompiles only this file.
#include "internal.h"

// PROTEUS_VERSION arrives unquoted (-DPROTEUS_VERSION=2026.3.1): a PEP 440 version is one
// preprocessing number, which stringification turns into the literal.
#define PROTEUS_STRINGIFY2(x) #x
#define PROTEUS_STRINGIFY(x) PROTEUS_STRINGIFY2(x)

namespace proteus {
const char* build_version() { return PROTEUS_STRINGIFY(PROTEUS_VERSION); }
}  // namespace proteus
