// Names of box states as they appear in the API, the database and logs.
#include <array>

#include "store/store.h"

namespace boxd::store {
namespace {

struct StateName {
  BoxState state;
  std::string_view name;
};

// Stable wire and storage names: renaming one is a schema migration and an API change.
constexpr std::array<StateName, 8> kStateNames = {{
    {BoxState::kPending, "pending"},
    {BoxState::kStarting, "starting"},
    {BoxState::kReady, "ready"},
    {BoxState::kStopping, "stopping"},
    {BoxState::kStopped, "stopped"},
    {BoxState::kFailed, "failed"},
    {BoxState::kExpired, "expired"},
    {BoxState::kLost, "lost"},
}};

}  // namespace

std::string_view boxStateName(BoxState s) {
  for (const StateName& n : kStateNames) {
    if (n.state == s) return n.name;
  }
  return "unknown";
}

StatusOr<BoxState> parseBoxState(std::string_view name) {
  for (const StateName& n : kStateNames) {
    if (n.name == name) return n.state;
  }
  return invalidArgument("unknown box state \"" + std::string(name) + "\"");
}

bool isTerminal(BoxState s) {
  switch (s) {
    case BoxState::kStopped:
    case BoxState::kFailed:
    case BoxState::kExpired:
    case BoxState::kLost:
      return true;
    case BoxState::kPending:
    case BoxState::kStarting:
    case BoxState::kReady:
    case BoxState::kStopping:
      return false;
  }
  return false;
}

}  // namespace boxd::store
