// RocksDbSpanStore::OpenTable: extra column families next to the spans, for the order tracker.
#include <stdlib.h>

#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/rocksdb_span_store.h"

namespace tracekeep::storage {
namespace {

class KvTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "tk_kv_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    Open();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    RocksDbOptions o;
    o.path = dir_ + "/db";
    o.block_cache_mib = 0;
    o.write_buffer_mib = 4;
    store_ = *RocksDbSpanStore::Create(o);
  }
  std::string dir_;
  std::unique_ptr<RocksDbSpanStore> store_;
};

TEST_F(KvTableTest, WritesSurviveReopenAndScansStopAtThePrefix) {
  {
    KvTablePtr t = *store_->OpenTable("orders");
    ASSERT_TRUE(t->Write({{"a\0x", "1", false},
                          {std::string("a\0y", 3), "2", false},
                          {"b", "3", false},
                          {"gone", "", false}})
                    .ok());
    ASSERT_TRUE(t->Write({{"gone", "", true}}).ok());
  }
  store_.reset();
  Open();  // the family now exists on disk and is opened by Create()
  KvTablePtr t = *store_->OpenTable("orders");
  EXPECT_EQ(**t->Get("b"), "3");
  EXPECT_FALSE(t->Get("gone")->has_value());
  std::vector<std::string> values;
  ASSERT_TRUE(t->Scan(std::string("a\0", 2), [&](absl::string_view, absl::string_view v) {
                 values.emplace_back(v);
                 return true;
               }).ok());
  EXPECT_THAT(values, ::testing::ElementsAre("2"));
  // Another table does not see these keys.
  KvTablePtr other = *store_->OpenTable("order_hold");
  EXPECT_FALSE(other->Get("b")->has_value());
}

TEST_F(KvTableTest, ScanFromStartsAtTheFirstKeyNotBelowStartAndStaysInThePrefix) {
  KvTablePtr t = *store_->OpenTable("order_index");
  ASSERT_TRUE(t->Write({{"a/1", "1"}, {"a/2", "2"}, {"a/3", "3"}, {"b/1", "4"}, {"a", "0"}}).ok());
  auto scan = [&](absl::string_view prefix, absl::string_view start) {
    std::vector<std::string> keys;
    EXPECT_TRUE(t->ScanFrom(prefix, start, [&](absl::string_view k, absl::string_view) {
                   keys.emplace_back(k);
                   return true;
                 }).ok());
    return keys;
  };
  EXPECT_THAT(scan("a/", "a/2"), ::testing::ElementsAre("a/2", "a/3"));
  EXPECT_THAT(scan("a/", "a/10"), ::testing::ElementsAre("a/2", "a/3"));     // between keys
  EXPECT_THAT(scan("a/", ""), ::testing::ElementsAre("a/1", "a/2", "a/3"));  // below the prefix
  EXPECT_THAT(scan("a/", "a/4"), ::testing::IsEmpty());
  EXPECT_THAT(scan("a/", "b"), ::testing::IsEmpty());  // past the prefix
}

TEST_F(KvTableTest, WriteWithWritesTwoTablesInOneBatchOfTheSameDatabaseOnly) {
  KvTablePtr orders = *store_->OpenTable("orders");
  KvTablePtr index = *store_->OpenTable("order_index");
  ASSERT_TRUE(index->Write({{"old", "x"}}).ok());
  ASSERT_TRUE(
      orders->WriteWith({{"o1", "record"}}, index.get(), {{"new", "1"}, {"old", "", true}}).ok());
  EXPECT_EQ(**orders->Get("o1"), "record");
  EXPECT_EQ(**index->Get("new"), "1");
  EXPECT_FALSE(index->Get("old")->has_value());
  EXPECT_FALSE(orders->Get("new")->has_value());

  // A table of another database is refused, and nothing is written.
  std::string pattern = (std::filesystem::temp_directory_path() / "tk_kv_XXXXXX").string();
  ASSERT_NE(mkdtemp(pattern.data()), nullptr);
  {
    RocksDbOptions o;
    o.path = pattern + "/db";
    o.block_cache_mib = 0;
    o.write_buffer_mib = 4;
    std::unique_ptr<RocksDbSpanStore> other_store = *RocksDbSpanStore::Create(o);
    KvTablePtr foreign = *other_store->OpenTable("order_index");
    const absl::Status s = orders->WriteWith({{"o2", "record"}}, foreign.get(), {{"k", "v"}});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr("not of the same database"));
    EXPECT_FALSE(orders->Get("o2")->has_value());
    EXPECT_FALSE(foreign->Get("k")->has_value());
  }
  std::filesystem::remove_all(pattern);
}

TEST_F(KvTableTest, TheStoreOwnFamiliesAreReserved) {
  for (const char* name : {"spans", "indexes", "resources", "default", ""}) {
    EXPECT_EQ(store_->OpenTable(name).status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
}

}  // namespace
}  // namespace tracekeep::storage
