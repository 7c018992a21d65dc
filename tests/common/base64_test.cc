#include "common/base64.h"

#include <gtest/gtest.h>

namespace boxd {

TEST(Base64Test, KnownVectors) {
  EXPECT_EQ(base64Encode(""), "");
  EXPECT_EQ(base64Encode("f"), "Zg==");
  EXPECT_EQ(base64Encode("fo"), "Zm8=");
  EXPECT_EQ(base64Encode("foo"), "Zm9v");
  EXPECT_EQ(base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(*base64Decode("Zm9vYg=="), "foob");
}

TEST(Base64Test, EveryByteRoundTrips) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (size_t n = 0; n < all.size(); n += 37) {
    auto back = base64Decode(base64Encode(all.substr(0, n)));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, all.substr(0, n));
  }
}

TEST(Base64Test, RejectsGarbage) {
  EXPECT_FALSE(base64Decode("abc").ok());
  EXPECT_FALSE(base64Decode("ab!d").ok());
  EXPECT_FALSE(base64Decode("a=bc").ok());
  EXPECT_FALSE(base64Decode("ab==cdef").ok());
  EXPECT_EQ(*base64Decode("Zm9v\nYmFy"), "foobar");
}

}  // namespace boxd
