// The target registry (cc/target.h).
#include "target.h"

#include <map>
#include <mutex>

namespace proteus {
namespace {

// Constructed on first use: targets register from static initialisers of other files.
std::map<std::string, const Target*>& registry() {
  static auto* targets = new std::map<std::string, const Target*>;
  return *targets;
}

}  // namespace

bool register_target(const Target& target) {
  registry()[target.name()] = &target;
  return true;
}

const Target* find_target(const std::string& name) {
  auto it = registry().find(name);
  return it == registry().end() ? nullptr : it->second;
}

std::vector<std::string> target_names() {
  std::vector<std::string> names;
  for (const auto& [name, target] : registry()) names.push_back(name);
  return names;
}

std::string target_description(const std::string& name) {
  const Target* target = find_target(name);
  return target ? target->description() : "";
}

}  // namespace proteus
