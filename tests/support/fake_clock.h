// FakeClock: time that only moves when a test says so, for policies (TTL, idle timeout).
#pragma once

#include <atomic>

#include "control/clock.h"

namespace boxd::testing {

class FakeClock : public control::Clock {
 public:
  explicit FakeClock(int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  int64_t nowMs() override { return now_.load(); }
  void advanceMs(int64_t ms) { now_ += ms; }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace boxd::testing
