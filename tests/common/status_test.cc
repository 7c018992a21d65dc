#include <gtest/gtest.h>

#include <cerrno>

#include "common/status.h"

namespace boxd {

TEST(StatusTest, ErrnoMapsToRetryMeaning) {
  EXPECT_EQ(errnoStatus("mount /x", EPERM).code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(errnoStatus("open", ENOENT).code(), StatusCode::kNotFound);
  EXPECT_EQ(errnoStatus("rmdir", EBUSY).code(), StatusCode::kUnavailable);
  EXPECT_EQ(errnoStatus("write", ENOSPC).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(errnoStatus("mount /workspace", EPERM).message(), "mount /workspace: Operation not permitted");
}

TEST(StatusTest, ContextKeepsCode) {
  Status st = notFound("no such box").withContext("delete b-1");
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_EQ(st.toString(), "not_found: delete b-1: no such box");
}

TEST(StatusTest, StatusOrCarriesValueOrError) {
  StatusOr<int> v = 7;
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 7);
  StatusOr<int> e = invalidArgument("bad");
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace boxd
