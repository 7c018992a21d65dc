// Clock: where the control plane gets time, so policies (TTL, idle timeout) can be tested
// with a fake clock instead of sleeping.
#pragma once

#include <chrono>
#include <cstdint>

namespace boxd::control {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch.
  virtual int64_t nowMs() = 0;
};

class SystemClock : public Clock {
 public:
  int64_t nowMs() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace boxd::control
