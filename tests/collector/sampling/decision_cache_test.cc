#include "collector/sampling/decision_cache.h"

#include "gtest/gtest.h"

namespace tracekeep::sampling {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1700000000);

TEST(DecisionCacheTest, EvictsTheLeastRecentlyUsed) {
  DecisionCache cache(2);
  cache.Insert("a", {kT0, "errors"});
  cache.Insert("b", {kT0, ""});
  ASSERT_NE(cache.Lookup("a"), nullptr);  // a is now the most recent
  cache.Insert("c", {kT0, ""});
  EXPECT_EQ(cache.Lookup("b"), nullptr);
  ASSERT_NE(cache.Lookup("a"), nullptr);
  EXPECT_EQ(cache.Lookup("a")->policy, "errors");
  EXPECT_NE(cache.Lookup("c"), nullptr);
  EXPECT_EQ(cache.size(), 2u);
}

TEST(DecisionCacheTest, ZeroCapacityRemembersNothing) {
  DecisionCache cache(0);
  cache.Insert("a", {kT0, "x"});
  EXPECT_EQ(cache.Lookup("a"), nullptr);
}

TEST(DecisionCacheTest, ReinsertUpdates) {
  DecisionCache cache(1);
  cache.Insert("a", {kT0, "x"});
  cache.Insert("a", {kT0 + absl::Seconds(1), "y"});
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(cache.Lookup("a")->policy, "y");
}

}  // namespace
}  // namespace tracekeep::sampling
