// The seam between the engine core (caching, linking: cc/jit.cc) and the compile targets
// (ARCHITECTURE 6, "Targets"). Each target's library registers one Target when it is loaded; the
// core finds it by the request's name and knows no target itself. A backend ships the targets it
// links (cc/BUILD.bazel): a target it lacks is simply not registered.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "object_cache.h"
#include "proteus/engine.h"

namespace proteus {

class Target {
 public:
  virtual ~Target() = default;
  virtual std::string name() const = 0;  // as CompileRequest::target says it: "host", "cuda", "hip"
  // What keys a compile for this target beyond the request (the arch, the toolkit in use).
  virtual std::string cache_context(const CompileRequest& request) const = 0;
  // The compile itself. It runs contained (contain.cc), so it may outlive its caller: it copies what it uses.
  // It need not set `target` in its result: the core stamps it.
  virtual Artifact produce(const CompileRequest& request) const = 0;
  // The module made from a result, fresh or from the cache, stored under `key`, for `request`.
  virtual std::shared_ptr<CompiledModule> load(Artifact entry, const std::string& key,
                                               const CompileRequest& request) const = 0;
  // For reports: what the target found (a toolkit, a ROCm root) or why it found none.
  virtual std::string description() const { return ""; }
};

// Called once per target at static-initialisation time (see each target's file).
bool register_target(const Target& target);
// The registered target of that name, or nullptr.
const Target* find_target(const std::string& name);

}  // namespace proteus
