#include "collector/intake/kv_decision_log.h"

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "storage/rocksdb_span_store.h"
#include "tests/storage/test_store.h"

namespace tracekeep::intake {
namespace {

using sampling::DecisionRecord;

std::string Id(int n) {
  return std::string(14, '\x33') + static_cast<char>(n >> 8) + static_cast<char>(n & 0xff);
}

class KvDecisionLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tracekeep-decisions-test-XXXXXX";
    dir_ = mkdtemp(tmpl);
    Open();
  }
  void TearDown() override {
    table_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    table_.reset();
    store_.reset();
    auto store = storage::OpenTestStore(dir_ + "/db");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    auto table = store_->OpenTable("decisions");
    ASSERT_TRUE(table.ok()) << table.status();
    table_ = std::move(*table);
  }
  std::vector<DecisionRecord> LoadAll(KvDecisionLog* log) {
    std::vector<DecisionRecord> out;
    EXPECT_TRUE(log->Load([&](DecisionRecord&& r) { out.push_back(std::move(r)); }).ok());
    return out;
  }

  std::string dir_;
  std::unique_ptr<storage::RocksDbSpanStore> store_;
  storage::KvTablePtr table_;
};

TEST_F(KvDecisionLogTest, RecordsSurviveAReopenOldestFirstWithTheirPolicy) {
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  {
    KvDecisionLog log(table_.get(), 100);
    // Appended out of time order by two shards.
    ASSERT_TRUE(log.Append({{Id(2), t0 + absl::Seconds(2), false, ""}}).ok());
    ASSERT_TRUE(log.Append({{Id(1), t0 + absl::Seconds(1), true, "errors"},
                            {Id(3), t0 + absl::Seconds(3), true, "order:stalled"}})
                    .ok());
  }
  Open();
  KvDecisionLog log(table_.get(), 100);
  const std::vector<DecisionRecord> got = LoadAll(&log);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].trace_id, Id(1));
  EXPECT_TRUE(got[0].kept);
  EXPECT_EQ(got[0].policy, "errors");
  EXPECT_EQ(got[0].decided_at, t0 + absl::Seconds(1));
  EXPECT_EQ(got[1].trace_id, Id(2));
  EXPECT_FALSE(got[1].kept);
  EXPECT_EQ(got[2].policy, "order:stalled");
  EXPECT_EQ(log.stats().records_loaded.load(), 3u);
}

// The table stays bounded: whole seconds are erased from the oldest while the rest still holds
// `capacity` records; the newest decisions are never erased.
TEST_F(KvDecisionLogTest, PrunesTheOldestSecondsBeyondTheCapacity) {
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  KvDecisionLog log(table_.get(), 10);
  int n = 0;
  for (int second = 0; second < 10; ++second) {
    std::vector<DecisionRecord> batch;
    for (int i = 0; i < 5; ++i) {
      batch.push_back(
          {Id(n++), t0 + absl::Seconds(second) + absl::Milliseconds(i), i % 2 == 0, ""});
    }
    ASSERT_TRUE(log.Append(batch).ok());
  }
  const std::vector<DecisionRecord> got = LoadAll(&log);
  ASSERT_GE(got.size(), 10u);
  EXPECT_LE(got.size(), 15u) << "capacity plus at most one second's worth";
  EXPECT_EQ(got.back().trace_id, Id(49)) << "the newest decision is kept";
  EXPECT_EQ(got.front().decided_at, t0 + absl::Seconds(10 - static_cast<int>(got.size()) / 5));
}

// A shard's poll decides at one time: its decisions are one write, one key, and come back
// with their own ids, flags and policies.
TEST_F(KvDecisionLogTest, DecisionsOfOneTimeAreOneKey) {
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  KvDecisionLog log(table_.get(), 0);
  std::vector<DecisionRecord> poll;
  for (int i = 0; i < 300; ++i) {
    poll.push_back({Id(i), t0, i % 3 == 0, i % 3 == 0 ? "errors" : ""});
  }
  ASSERT_TRUE(log.Append(poll).ok());
  ASSERT_TRUE(log.Append({{Id(300), t0 + absl::Milliseconds(1), true, "order:stalled"}}).ok());
  int keys = 0;
  ASSERT_TRUE(table_
                  ->Scan("",
                         [&](absl::string_view, absl::string_view) {
                           ++keys;
                           return true;
                         })
                  .ok());
  EXPECT_EQ(keys, 2);
  const std::vector<DecisionRecord> got = LoadAll(&log);
  ASSERT_EQ(got.size(), 301u);
  for (int i = 0; i < 300; ++i) {
    EXPECT_EQ(got[i].trace_id, Id(i));
    EXPECT_EQ(got[i].kept, i % 3 == 0);
    EXPECT_EQ(got[i].policy, i % 3 == 0 ? "errors" : "");
    EXPECT_EQ(got[i].decided_at, t0);
  }
  EXPECT_EQ(got[300].policy, "order:stalled");
  EXPECT_EQ(log.stats().records_written.load(), 301u);
}

// A data directory written before decisions were grouped (one key per decision) still loads,
// in time order with the groups written after it.
TEST_F(KvDecisionLogTest, DecisionsOfTheFormerFormatStillLoad) {
  const absl::Time t0 = absl::FromUnixSeconds(1700000000);
  auto time_key = [](absl::Time t) {
    const uint64_t v = static_cast<uint64_t>(absl::ToUnixNanos(t)) ^ (uint64_t{1} << 63);
    std::string key;
    for (int b = 7; b >= 0; --b) key.push_back(static_cast<char>(v >> (8 * b)));
    return key;
  };
  ASSERT_TRUE(table_->Write({{time_key(t0) + Id(1), "kerrors"}, {time_key(t0) + Id(2), "d"}}).ok());
  KvDecisionLog log(table_.get(), 100);
  ASSERT_TRUE(log.Append({{Id(3), t0 + absl::Seconds(1), true, "baseline"}}).ok());
  const std::vector<DecisionRecord> got = LoadAll(&log);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].trace_id, Id(1));
  EXPECT_TRUE(got[0].kept);
  EXPECT_EQ(got[0].policy, "errors");
  EXPECT_EQ(got[0].decided_at, t0);
  EXPECT_EQ(got[1].trace_id, Id(2));
  EXPECT_FALSE(got[1].kept);
  EXPECT_EQ(got[2].trace_id, Id(3));
  EXPECT_EQ(got[2].policy, "baseline");
}

}  // namespace
}  // namespace tracekeep::intake
