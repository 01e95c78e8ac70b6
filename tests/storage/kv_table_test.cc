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

TEST_F(KvTableTest, TheStoreOwnFamiliesAreReserved) {
  for (const char* name : {"spans", "indexes", "resources", "default", ""}) {
    EXPECT_EQ(store_->OpenTable(name).status().code(), absl::StatusCode::kInvalidArgument) << name;
  }
}

}  // namespace
}  // namespace tracekeep::storage
