#include "engine/id_slots.h"

#include <gtest/gtest.h>

#include "common/file_util.h"
#include "support/engine_fixture.h"

namespace boxd::engine {

TEST(IdSlotsTest, SlotsAreExclusiveUntilReleased) {
  std::string dir = testing::makeTempDir("boxd-slots");
  IdSlots slots(dir, 1'000'000'000u, 2);
  ASSERT_TRUE(slots.init().ok());
  auto a = slots.acquire();
  auto b = slots.acquire();
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->slot, b->slot);
  EXPECT_EQ(slots.acquire().status().code(), StatusCode::kResourceExhausted);
  // A second allocator (another engine) sees the same locks.
  IdSlots other(dir, 1'000'000'000u, 2);
  EXPECT_FALSE(other.acquire().ok());
  a->lock.reset();
  auto c = other.acquire();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host_base, 1'000'000'000u + c->slot * kIdsPerSlot);
  (void)removeTree(dir);
}

TEST(IdSlotsTest, RejectsRangesThatReachHostIds) {
  EXPECT_FALSE(IdSlots("/tmp/x-slots", 1000, 4).init().ok());
  EXPECT_FALSE(IdSlots("/tmp/x-slots", 4'100'000'000u, 4096).init().ok());
  EXPECT_EQ(idMapLine(1'000'065'536u), "0 1000065536 65536\n");
}

}  // namespace boxd::engine
