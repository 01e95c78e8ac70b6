#include "collector/common/ids.h"

#include "gtest/gtest.h"

namespace tracekeep {
namespace {

TEST(IdsTest, ValidIdNeedsSizeAndANonZeroByte) {
  EXPECT_TRUE(IsValidId(std::string("\x00\x01", 2), 2));
  EXPECT_FALSE(IsValidId(std::string(2, '\0'), 2));
  EXPECT_FALSE(IsValidId("abc", 2));
  EXPECT_FALSE(IsValidId("", 16));
}

TEST(IdsTest, HexRoundTrip) {
  const std::string bytes("\x01\xab\xff\x00", 4);
  EXPECT_EQ(ToHex(bytes), "01abff00");
  auto back = FromHex("01ABff00", 4);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, bytes);
}

TEST(IdsTest, FromHexNamesTheBadValue) {
  auto wrong_length = FromHex("abc", 2);
  ASSERT_FALSE(wrong_length.ok());
  EXPECT_NE(wrong_length.status().message().find("\"abc\""), std::string::npos);
  auto bad_char = FromHex("zz00", 2);
  ASSERT_FALSE(bad_char.ok());
  EXPECT_NE(bad_char.status().message().find("position 0"), std::string::npos);
}

TEST(IdsTest, HashSpreadsSequentialIds) {
  // Sequential (non-random) trace ids must still land on both of two shards.
  int buckets[2] = {0, 0};
  for (int i = 0; i < 1000; ++i) {
    std::string id(16, '\0');
    id[15] = static_cast<char>(i & 0xff);
    id[14] = static_cast<char>(i >> 8);
    ++buckets[TraceIdHash(id) % 2];
  }
  EXPECT_GT(buckets[0], 400);
  EXPECT_GT(buckets[1], 400);
}

}  // namespace
}  // namespace tracekeep
