#include "storage/rocksdb_span_store.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "collector/common/clock.h"
#include "collector/common/ids.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/status.h"
#include "storage/keys.h"
#include "storage/rocksdb_status.h"
#include "storage/trace_index.h"
#include "tests/storage/read_family.h"
#include "tests/storage/small_fs.h"

namespace tracekeep::storage {
namespace {

constexpr int64_t kBase = 1700000000000000000;  // 2023-11-14, in unix nanos

// A directory made with mkdtemp, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tk_store_XXXXXX").string();
    path_ = mkdtemp(pattern.data()) != nullptr ? pattern : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

SpanOriginPtr MakeOrigin(const std::string& service, const std::string& scope_name) {
  auto origin = std::make_shared<SpanOrigin>();
  // Arbitrary bytes, with 0x00 and 0xff: the store must not interpret them.
  origin->resource = std::string("\x0a\x00res-", 6) + service + "\xff";
  origin->resource_schema_url = "https://opentelemetry.io/schemas/1.21.0";
  origin->scope = std::string("\x0a\x03lib\x00", 6) + scope_name;
  origin->scope_schema_url = "https://opentelemetry.io/schemas/1.20.0/" + scope_name;
  origin->service_name = service;
  return origin;
}

std::string TraceId(uint8_t n) { return std::string(15, '\x70') + static_cast<char>(n); }
std::string SpanId(uint8_t n) { return std::string(7, '\x05') + static_cast<char>(n); }

SpanRecord MakeSpan(const SpanOriginPtr& origin, uint8_t id, int64_t start, int64_t duration,
                    bool error = false, bool root = false) {
  SpanRecord span;
  span.origin = origin;
  span.span_id = SpanId(id);
  span.span = std::string("\x0a\x10span\x00", 7) + std::to_string(id) + std::string(40, '\xfe');
  span.start_unix_nanos = start;
  span.end_unix_nanos = start + duration;
  span.is_error = error;
  span.is_root = root;
  return span;
}

KeptTrace MakeTrace(const std::string& trace_id, std::vector<SpanRecord> spans) {
  KeptTrace trace;
  trace.trace_id = trace_id;
  trace.policy = "test";
  trace.spans = std::move(spans);
  return trace;
}

KeptTraces One(KeptTrace trace) {
  KeptTraces traces;
  traces.push_back(std::move(trace));
  return traces;
}

class RocksDbSpanStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty()) << "mkdtemp failed";
    options_.path = dir_.Sub("db");
    options_.block_cache_mib = 8;
    options_.write_buffer_mib = 4;
    Open();
  }

  void Open() {
    store_.reset();
    auto store = RocksDbSpanStore::Create(options_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(store).value();
  }

  std::vector<std::string> Find(const std::string& service, int64_t start, int64_t end,
                                size_t limit) {
    auto ids =
        store_->FindTraceIds(service, absl::FromUnixNanos(start), absl::FromUnixNanos(end), limit);
    EXPECT_TRUE(ids.ok()) << ids.status();
    return ids.ok() ? *ids : std::vector<std::string>{};
  }

  TempDir dir_;
  RocksDbOptions options_;
  std::unique_ptr<RocksDbSpanStore> store_;
};

void ExpectSameSpan(const SpanRecord& got, const SpanRecord& want) {
  EXPECT_EQ(got.span, want.span);
  EXPECT_EQ(got.span_id, want.span_id);
  EXPECT_EQ(got.start_unix_nanos, want.start_unix_nanos);
  EXPECT_EQ(got.end_unix_nanos, want.end_unix_nanos);
  EXPECT_EQ(got.is_error, want.is_error);
  EXPECT_EQ(got.is_root, want.is_root);
  ASSERT_NE(got.origin, nullptr);
  EXPECT_EQ(got.origin->resource, want.origin->resource);
  EXPECT_EQ(got.origin->resource_schema_url, want.origin->resource_schema_url);
  EXPECT_EQ(got.origin->scope, want.origin->scope);
  EXPECT_EQ(got.origin->scope_schema_url, want.origin->scope_schema_url);
  EXPECT_EQ(got.origin->service_name, want.origin->service_name);
}

TEST_F(RocksDbSpanStoreTest, ReadsBackTwoOriginsByteIdenticalSortedByStartTime) {
  SpanOriginPtr shop = MakeOrigin("shop", "http");
  SpanOriginPtr crm = MakeOrigin("crm", "grpc");
  // Written out of order; spans 3 and 4 start at the same time (ordered by span id).
  std::vector<SpanRecord> spans = {
      MakeSpan(crm, 2, kBase + 300, 50, /*error=*/true),
      MakeSpan(shop, 1, kBase, 1000, false, /*root=*/true),
      MakeSpan(shop, 4, kBase + 200, 10),
      MakeSpan(crm, 3, kBase + 200, 20),
  };
  const std::vector<SpanRecord> want = {spans[1], spans[3], spans[2], spans[0]};
  ASSERT_TRUE(store_->Consume(One(MakeTrace(TraceId(1), spans))).ok());

  auto got = store_->GetTrace(TraceId(1));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(i);
    ExpectSameSpan((*got)[i], want[i]);
  }
  // Spans that had one origin share one origin again.
  EXPECT_EQ((*got)[0].origin, (*got)[2].origin);
  EXPECT_EQ((*got)[1].origin, (*got)[3].origin);
  EXPECT_NE((*got)[0].origin, (*got)[1].origin);
}

TEST_F(RocksDbSpanStoreTest, SecondWriteOfATraceMergesWithTheFirst) {
  SpanOriginPtr shop = MakeOrigin("shop", "http");
  ASSERT_TRUE(store_
                  ->Consume(One(MakeTrace(TraceId(1), {MakeSpan(shop, 1, kBase, 500, false, true),
                                                       MakeSpan(shop, 3, kBase + 300, 10)})))
                  .ok());
  // A late span, from another request (another origin object with the same content).
  SpanOriginPtr shop_again = MakeOrigin("shop", "http");
  ASSERT_TRUE(
      store_->Consume(One(MakeTrace(TraceId(1), {MakeSpan(shop_again, 2, kBase + 100, 10)}))).ok());

  auto got = store_->GetTrace(TraceId(1));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[0].span_id, SpanId(1));
  EXPECT_EQ((*got)[1].span_id, SpanId(2));
  EXPECT_EQ((*got)[2].span_id, SpanId(3));
  EXPECT_EQ((*got)[0].origin, (*got)[1].origin) << "equal origins are shared across writes";
  EXPECT_EQ(store_->stats().traces_stored.load(), 2u);
  EXPECT_EQ(store_->stats().spans_stored.load(), 3u);
}

// A kept trace part is one span group value; parts written later (late spans, a part handed on
// again after a restart, a lone duplicate of its first span) never overwrite it, and every span
// reads back once, in start order.
TEST_F(RocksDbSpanStoreTest, PartsAndDuplicatesOfATraceReadBackOnceInStartOrder) {
  SpanOriginPtr shop = MakeOrigin("shop", "http");
  const std::vector<SpanRecord> first = {MakeSpan(shop, 1, kBase + 10, 500, false, true),
                                         MakeSpan(shop, 3, kBase + 300, 10),
                                         MakeSpan(shop, 5, kBase + 500, 10)};
  ASSERT_TRUE(store_->Consume(One(MakeTrace(TraceId(1), first))).ok());
  // The same first span alone (a client's retry arriving after the decision): a key of its own.
  ASSERT_TRUE(store_->Consume(One(MakeTrace(TraceId(1), {first[0]}))).ok());
  // Late spans, one before every other, and the first part again, in another order.
  ASSERT_TRUE(store_
                  ->Consume(One(MakeTrace(TraceId(1), {MakeSpan(shop, 4, kBase + 400, 10),
                                                       MakeSpan(shop, 0, kBase, 10)})))
                  .ok());
  ASSERT_TRUE(store_->Consume(One(MakeTrace(TraceId(1), {first[2], first[1], first[0]}))).ok());

  auto got = store_->GetTrace(TraceId(1));
  ASSERT_TRUE(got.ok()) << got.status();
  std::vector<std::string> ids;
  for (const SpanRecord& span : *got) ids.emplace_back(span.span_id.view());
  EXPECT_EQ(ids, (std::vector<std::string>{SpanId(0), SpanId(1), SpanId(3), SpanId(4), SpanId(5)}));
  ExpectSameSpan((*got)[1], first[0]);
  ExpectSameSpan((*got)[4], first[2]);

  // The restart check sees every stored span, in a group or alone, and nothing else.
  std::vector<SpanRecord> asked = {first[1], MakeSpan(shop, 9, kBase + 10, 1), first[0],
                                   MakeSpan(shop, 4, kBase + 401, 10)};
  auto there = store_->ContainsSpans(TraceId(1), asked);
  ASSERT_TRUE(there.ok()) << there.status();
  EXPECT_EQ(*there, (std::vector<bool>{true, false, true, false}))
      << "span 9 is not stored; span 4 is, but with another start time";
  auto elsewhere = store_->ContainsSpans(TraceId(2), asked);
  ASSERT_TRUE(elsewhere.ok()) << elsewhere.status();
  EXPECT_EQ(*elsewhere, std::vector<bool>(4, false));
}

// A trace part of more spans than one group holds is split into several groups.
TEST_F(RocksDbSpanStoreTest, ABigTraceIsStoredInSeveralGroups) {
  SpanOriginPtr shop = MakeOrigin("shop", "http");
  std::vector<SpanRecord> spans;
  for (int i = 0; i < 100; ++i) spans.push_back(MakeSpan(shop, i, kBase + 1000 - i, 1));
  ASSERT_TRUE(store_->Consume(One(MakeTrace(TraceId(1), spans))).ok());
  auto got = store_->GetTrace(TraceId(1));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ((*got)[i].span_id, SpanId(99 - i)) << i;
  store_.reset();
  const auto values = ReadFamily(options_.path, "spans");
  EXPECT_EQ(values.size(), 4u) << "32 spans a group at most";
  for (const auto& [key, value] : values) EXPECT_EQ(key.size(), keys::kSpanGroupKeySize);
}

TEST_F(RocksDbSpanStoreTest, UnknownTraceIsNotFoundNamingTheId) {
  ASSERT_TRUE(
      store_->Consume(One(MakeTrace(TraceId(1), {MakeSpan(MakeOrigin("shop", "a"), 1, kBase, 1)})))
          .ok());
  auto got = store_->GetTrace(TraceId(2));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(got.status().message().find(ToHex(TraceId(2))), std::string::npos) << got.status();

  // A trace id sharing 15 of 16 bytes with a stored one does not see its spans.
  auto neighbour = store_->GetTrace(std::string(15, '\x70') + '\x00');
  EXPECT_EQ(neighbour.status().code(), absl::StatusCode::kNotFound);

  auto bad = store_->GetTrace("short");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(RocksDbSpanStoreTest, DataSurvivesCloseAndReopen) {
  SpanOriginPtr shop = MakeOrigin("shop", "http");
  const SpanRecord span = MakeSpan(shop, 1, kBase, 1000, true, true);
  ASSERT_TRUE(store_->Consume(One(MakeTrace(TraceId(1), {span}))).ok());
  Open();  // closes the first store, without an explicit flush: the WAL is replayed

  auto got = store_->GetTrace(TraceId(1));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 1u);
  ExpectSameSpan((*got)[0], span);
  EXPECT_EQ(Find("shop", kBase, kBase + 1, 10), std::vector<std::string>{TraceId(1)});
  EXPECT_EQ(store_->stats().spans_stored.load(), 0u) << "counters are per process";
}

TEST_F(RocksDbSpanStoreTest, FindTraceIdsByServiceAndWindowNewestFirstWithLimit) {
  SpanOriginPtr shop = MakeOrigin("shop", "http");
  SpanOriginPtr crm = MakeOrigin("crm", "http");
  SpanOriginPtr shop_api = MakeOrigin("shop-api", "http");
  KeptTraces traces;
  // Trace n starts at kBase + n*100 in "shop".
  for (uint8_t n = 1; n <= 5; ++n) {
    traces.push_back(MakeTrace(TraceId(n), {MakeSpan(shop, 1, kBase + n * 100, 10)}));
  }
  // Trace 6: crm first, then a shop span at +650; trace 7 is shop-api only.
  traces.push_back(MakeTrace(
      TraceId(6), {MakeSpan(crm, 1, kBase + 600, 100), MakeSpan(shop, 2, kBase + 650, 10)}));
  traces.push_back(MakeTrace(TraceId(7), {MakeSpan(shop_api, 1, kBase + 300, 10)}));
  ASSERT_TRUE(store_->Consume(std::move(traces)).ok());

  // [200, 500): traces 2, 3, 4 newest first; the start is inclusive, the end exclusive.
  EXPECT_EQ(Find("shop", kBase + 200, kBase + 500, 10),
            (std::vector<std::string>{TraceId(4), TraceId(3), TraceId(2)}));
  EXPECT_EQ(Find("shop", kBase + 200, kBase + 500, 2),
            (std::vector<std::string>{TraceId(4), TraceId(3)}));
  EXPECT_EQ(Find("shop", kBase, kBase + 1000, 10),
            (std::vector<std::string>{TraceId(6), TraceId(5), TraceId(4), TraceId(3), TraceId(2),
                                      TraceId(1)}));
  EXPECT_EQ(Find("crm", kBase, kBase + 1000, 10), std::vector<std::string>{TraceId(6)});
  EXPECT_EQ(Find("shop-api", kBase, kBase + 1000, 10), std::vector<std::string>{TraceId(7)});
  EXPECT_TRUE(Find("nobody", kBase, kBase + 1000, 10).empty());
  EXPECT_TRUE(Find("shop", kBase + 700, kBase + 1000, 10).empty());
  EXPECT_TRUE(Find("shop", kBase + 500, kBase + 200, 10).empty());
  EXPECT_TRUE(Find("shop", kBase, kBase + 1000, 0).empty());

  auto all = store_->FindTraceIds("shop", absl::InfinitePast(), absl::InfiniteFuture(), 100);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 6u);
}

TEST_F(RocksDbSpanStoreTest, FindTraceIdsReturnsATraceWrittenTwiceOnce) {
  SpanOriginPtr shop = MakeOrigin("shop", "http");
  ASSERT_TRUE(
      store_->Consume(One(MakeTrace(TraceId(1), {MakeSpan(shop, 1, kBase + 100, 1)}))).ok());
  ASSERT_TRUE(
      store_->Consume(One(MakeTrace(TraceId(2), {MakeSpan(shop, 1, kBase + 200, 1)}))).ok());
  ASSERT_TRUE(
      store_->Consume(One(MakeTrace(TraceId(1), {MakeSpan(shop, 2, kBase + 300, 1)}))).ok());
  EXPECT_EQ(Find("shop", kBase, kBase + 1000, 10),
            (std::vector<std::string>{TraceId(1), TraceId(2)}));
}

TEST_F(RocksDbSpanStoreTest, ServiceNamesWithZeroBytesDoNotLeakIntoOtherServices) {
  const std::string odd("shop\0x", 6);
  ASSERT_TRUE(
      store_
          ->Consume(One(MakeTrace(TraceId(1), {MakeSpan(MakeOrigin(odd, "a"), 1, kBase + 100, 1)})))
          .ok());
  ASSERT_TRUE(store_
                  ->Consume(One(MakeTrace(TraceId(2),
                                          {MakeSpan(MakeOrigin("shop", "a"), 1, kBase + 100, 1)})))
                  .ok());
  EXPECT_EQ(Find("shop", 0, INT64_MAX, 10), std::vector<std::string>{TraceId(2)});
  EXPECT_EQ(Find(odd, 0, INT64_MAX, 10), std::vector<std::string>{TraceId(1)});
}

TEST_F(RocksDbSpanStoreTest, StatsCountStoredAndFailedWrites) {
  SpanOriginPtr shop = MakeOrigin("shop", "http");
  KeptTraces traces;
  traces.push_back(
      MakeTrace(TraceId(1), {MakeSpan(shop, 1, kBase, 1), MakeSpan(shop, 2, kBase, 1)}));
  traces.push_back(MakeTrace(TraceId(2), {MakeSpan(shop, 1, kBase, 1)}));
  ASSERT_TRUE(store_->Consume(std::move(traces)).ok());
  EXPECT_EQ(store_->stats().traces_stored.load(), 2u);
  EXPECT_EQ(store_->stats().spans_stored.load(), 3u);
  EXPECT_EQ(store_->stats().write_errors.load(), 0u);

  // One bad span id fails the whole call: nothing of it is written, every span is counted.
  KeptTraces bad;
  bad.push_back(MakeTrace(TraceId(3), {MakeSpan(shop, 1, kBase, 1)}));
  SpanRecord broken = MakeSpan(shop, 2, kBase, 1);
  broken.span_id = "abc";
  bad.push_back(MakeTrace(TraceId(4), {MakeSpan(shop, 1, kBase, 1), broken}));
  absl::Status s = store_->Consume(std::move(bad));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find(ToHex(TraceId(4))), std::string::npos) << s;
  EXPECT_EQ(store_->stats().write_errors.load(), 1u);
  EXPECT_EQ(store_->stats().spans_failed.load(), 3u);
  EXPECT_EQ(store_->stats().spans_stored.load(), 3u);
  EXPECT_EQ(store_->GetTrace(TraceId(3)).status().code(), absl::StatusCode::kNotFound);

  ASSERT_TRUE(store_->Consume(KeptTraces{}).ok());
  EXPECT_EQ(store_->stats().traces_stored.load(), 2u);
}

TEST_F(RocksDbSpanStoreTest, SpanWithoutOriginReadsBackWithAnEmptyOne) {
  SpanRecord span = MakeSpan(nullptr, 1, kBase, 1);
  ASSERT_TRUE(store_->Consume(One(MakeTrace(TraceId(1), {span}))).ok());
  auto got = store_->GetTrace(TraceId(1));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_NE((*got)[0].origin, nullptr);
  EXPECT_TRUE((*got)[0].origin->resource.empty());
  EXPECT_TRUE((*got)[0].origin->service_name.empty());
  EXPECT_EQ(Find("", kBase, kBase + 1, 10), std::vector<std::string>{TraceId(1)});
}

// Reads the raw column families of a closed store, to check the on-disk layout.

TEST_F(RocksDbSpanStoreTest, OnDiskLayoutStoresEachResourceOnceAndIndexesEarliestStart) {
  // Two scopes of one resource, and a later write with an equal resource from another request.
  SpanOriginPtr http = MakeOrigin("shop", "http");
  SpanOriginPtr db = MakeOrigin("shop", "db");
  SpanOriginPtr crm = MakeOrigin("crm", "http");
  ASSERT_TRUE(store_
                  ->Consume(One(MakeTrace(TraceId(1), {MakeSpan(http, 1, kBase + 50, 100),
                                                       MakeSpan(db, 2, kBase + 60, 10),
                                                       MakeSpan(crm, 3, kBase + 70, 10)})))
                  .ok());
  ASSERT_TRUE(store_
                  ->Consume(One(MakeTrace(
                      TraceId(2), {MakeSpan(MakeOrigin("shop", "http"), 1, kBase + 80, 10)})))
                  .ok());

  auto got = store_->GetTrace(TraceId(1));
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[0].origin->scope, http->scope);
  EXPECT_EQ((*got)[1].origin->scope, db->scope);
  EXPECT_NE((*got)[0].origin, (*got)[1].origin) << "same resource, different scopes";
  store_.reset();

  EXPECT_EQ(ReadFamily(options_.path, "resources").size(), 2u) << "shop and crm, once each";
  // Trace 1's three spans are one group, keyed by its first span; trace 2's one span is alone.
  std::vector<std::string> span_keys;
  for (const auto& [key, value] : ReadFamily(options_.path, "spans")) span_keys.push_back(key);
  ASSERT_EQ(span_keys.size(), 2u);
  EXPECT_EQ(span_keys[0].size(), keys::kSpanGroupKeySize);
  EXPECT_EQ(span_keys[0].substr(0, keys::kSpanKeySize),
            keys::SpanKey(TraceId(1), kBase + 50, SpanId(1)));
  EXPECT_EQ(span_keys[1], keys::SpanKey(TraceId(2), kBase + 80, SpanId(1)));
  std::set<std::string> index_keys;
  for (const auto& [key, value] : ReadFamily(options_.path, "indexes")) {
    if (key[0] != keys::kServiceIndexTag) continue;  // the query indexes: trace_index_test.cc
    EXPECT_TRUE(DecodeIndexSummary(value).known);
    index_keys.insert(key);
  }
  EXPECT_EQ(index_keys,
            (std::set<std::string>{keys::ServiceIndexKey("shop", kBase + 50, TraceId(1)),
                                   keys::ServiceIndexKey("crm", kBase + 70, TraceId(1)),
                                   keys::ServiceIndexKey("shop", kBase + 80, TraceId(2))}));
}

TEST_F(RocksDbSpanStoreTest, DiskBytesAreReportedPerColumnFamily) {
  SpanOriginPtr shop = MakeOrigin("shop", "http");
  KeptTraces traces;
  for (uint8_t n = 1; n <= 50; ++n) {
    traces.push_back(MakeTrace(TraceId(n), {MakeSpan(shop, 1, kBase + n, 10)}));
  }
  ASSERT_TRUE(store_->Consume(std::move(traces)).ok());
  EXPECT_GT(store_->ApproximateDiskBytes(), 0u) << "the WAL holds the batch";
  ASSERT_TRUE(store_->Flush().ok());
  auto per_family = store_->DiskBytesPerColumnFamily();
  ASSERT_GE(per_family.size(), 3u);
  EXPECT_EQ(per_family[0].first, "spans");
  EXPECT_EQ(per_family[1].first, "indexes");
  EXPECT_EQ(per_family[2].first, "resources");
  EXPECT_GT(per_family[0].second, 0u);
  EXPECT_GT(per_family[1].second, 0u);
  EXPECT_GT(per_family[2].second, 0u);
  EXPECT_GE(store_->ApproximateDiskBytes(),
            per_family[0].second + per_family[1].second + per_family[2].second);
}

TEST_F(RocksDbSpanStoreTest, CheckpointOpensAsAStoreWithTheSameData) {
  SpanOriginPtr shop = MakeOrigin("shop", "http");
  const SpanRecord span = MakeSpan(shop, 1, kBase, 1000);
  ASSERT_TRUE(store_->Consume(One(MakeTrace(TraceId(1), {span}))).ok());
  const std::string checkpoint_dir = dir_.Sub("backups/cp1");
  ASSERT_TRUE(store_->Checkpoint(checkpoint_dir).ok());
  // Written after the checkpoint: not in it.
  ASSERT_TRUE(store_->Consume(One(MakeTrace(TraceId(2), {span}))).ok());

  absl::Status again = store_->Checkpoint(checkpoint_dir);
  EXPECT_EQ(again.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(again.message().find(checkpoint_dir), std::string::npos) << again;

  RocksDbOptions copy_options = options_;
  copy_options.path = checkpoint_dir;
  auto copy = RocksDbSpanStore::Create(copy_options);
  ASSERT_TRUE(copy.ok()) << copy.status();
  auto got = (*copy)->GetTrace(TraceId(1));
  ASSERT_TRUE(got.ok()) << got.status();
  ExpectSameSpan((*got)[0], span);
  EXPECT_EQ((*copy)->GetTrace(TraceId(2)).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RocksDbSpanStoreTest, PathUnderARegularFileFailsNamingThePath) {
  const std::string file = dir_.Sub("plain-file");
  std::ofstream(file) << "not a directory";
  RocksDbOptions options;
  options.path = file + "/db";
  auto store = OpenRocksDbSpanStore(options);
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find(options.path), std::string::npos) << store.status();
}

TEST_F(RocksDbSpanStoreTest, SecondOpenOfTheSameDatabaseFailsNamingThePath) {
  auto second = OpenRocksDbSpanStore(options_);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find(options_.path), std::string::npos) << second.status();
  EXPECT_NE(second.status().message().find("lock"), std::string::npos) << second.status();
}

TEST(RocksDbOptionsTest, ValidateNamesTheFieldAndValue) {
  RocksDbOptions options;
  EXPECT_NE(options.Validate().message().find("rocksdb.path"), std::string::npos);
  options.path = "/tmp/x";
  EXPECT_TRUE(options.Validate().ok());
  options.compression = "brotli";
  EXPECT_NE(options.Validate().message().find("\"brotli\""), std::string::npos);
  options.compression = "zstd";
  EXPECT_TRUE(options.Validate().ok()) << options.Validate();
  options.write_buffer_mib = 0;
  EXPECT_NE(options.Validate().message().find("rocksdb.write_buffer_mib must be >= 1, got 0"),
            std::string::npos);
  options.write_buffer_mib = 1;
  options.retention = absl::Seconds(-5);
  EXPECT_NE(options.Validate().message().find("rocksdb.retention must be >= 0, got -5s"),
            std::string::npos);
}

TEST(RocksDbStatusTest, RetryableAndDiskFullErrorsKeepTheirMeaning) {
  EXPECT_TRUE(FromRocksDbStatus(rocksdb::Status::OK(), "x").ok());
  EXPECT_EQ(FromRocksDbStatus(rocksdb::Status::Busy(), "x").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(FromRocksDbStatus(rocksdb::Status::TryAgain(), "x").code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(FromRocksDbStatus(rocksdb::Status::Incomplete(), "x").code(),
            absl::StatusCode::kUnavailable);
  absl::Status full = FromRocksDbStatus(rocksdb::Status::NoSpace("disk full"), "writing to /d");
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(full.message().find("writing to /d: "), std::string::npos) << full;
  EXPECT_NE(full.message().find("disk full"), std::string::npos) << full;
  EXPECT_EQ(FromRocksDbStatus(rocksdb::Status::Corruption("bad block"), "x").code(),
            absl::StatusCode::kInternal);
}

TEST_F(RocksDbSpanStoreTest, ExportQueueKeepsBatchesInOrderAcrossReopenUntilRemoved) {
  SpanOriginPtr shop = MakeOrigin("shop", "http");
  std::vector<SpanRecord> first = {MakeSpan(shop, 1, kBase, 10), MakeSpan(shop, 2, kBase + 1, 10)};
  std::vector<SpanRecord> second = {MakeSpan(shop, 3, kBase + 2, 10)};
  const absl::Time t1 = absl::FromUnixSeconds(1700000000);
  {
    std::unique_ptr<exporter::QueueStore> queue = store_->OpenExportQueue();
    auto bytes = queue->Append(7, t1, first);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    EXPECT_GT(*bytes, first[0].span.size() + first[1].span.size());
    ASSERT_TRUE(queue->Append(300, t1 + absl::Seconds(1), second).ok());
    ASSERT_TRUE(queue->Append(8, t1, second).ok()) << "sequence numbers are the store's keys";
    ASSERT_TRUE(queue->Remove(8).ok());
  }
  Open();  // as after a restart
  std::unique_ptr<exporter::QueueStore> queue = store_->OpenExportQueue();
  auto entries = queue->List();
  ASSERT_TRUE(entries.ok()) << entries.status();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0].seq, 7u) << "big-endian keys list in numeric order";
  EXPECT_EQ((*entries)[0].span_count, 2);
  EXPECT_EQ((*entries)[0].enqueued, t1);
  EXPECT_EQ((*entries)[1].seq, 300u);
  EXPECT_EQ((*entries)[1].span_count, 1);
  auto spans = queue->Read(7);
  ASSERT_TRUE(spans.ok()) << spans.status();
  ASSERT_EQ(spans->size(), 2u);
  ExpectSameSpan((*spans)[0], first[0]);
  ExpectSameSpan((*spans)[1], first[1]);

  ASSERT_TRUE(queue->Remove(7).ok());
  EXPECT_EQ(queue->Read(7).status().code(), absl::StatusCode::kNotFound);
  entries = queue->List();
  ASSERT_TRUE(entries.ok());
  ASSERT_EQ(entries->size(), 1u);
  EXPECT_EQ((*entries)[0].seq, 300u);
  EXPECT_NE(queue->Describe().find("export_queue"), std::string::npos);

  // The queue is its own column family, reported with the others.
  bool found = false;
  for (const auto& [name, bytes] : store_->DiskBytesPerColumnFamily()) {
    found = found || name == "export_queue";
  }
  EXPECT_TRUE(found);
}

TEST_F(RocksDbSpanStoreTest, RetentionExpiresOldSpansAndIndexEntriesAtCompaction) {
  FakeClock clock(absl::FromUnixNanos(kBase) + absl::Hours(1));
  store_.reset();
  options_.retention = absl::Hours(24);
  options_.clock = &clock;
  Open();
  SpanOriginPtr shop = MakeOrigin("shop", "http");
  const std::string old_trace = TraceId(1);
  const std::string young_trace = TraceId(2);
  // A group (two spans) and a single span, both old.
  ASSERT_TRUE(store_
                  ->Consume(One(MakeTrace(
                      old_trace, {MakeSpan(shop, 1, kBase, 10), MakeSpan(shop, 3, kBase + 5, 1)})))
                  .ok());
  ASSERT_TRUE(store_->Consume(One(MakeTrace(old_trace, {MakeSpan(shop, 4, kBase + 6, 1)}))).ok());
  ASSERT_TRUE(store_
                  ->Consume(One(MakeTrace(
                      young_trace,
                      {MakeSpan(shop, 2, kBase + absl::ToInt64Nanoseconds(absl::Hours(20)), 10)})))
                  .ok());
  ASSERT_TRUE(store_->CompactSpans().ok());
  EXPECT_TRUE(store_->GetTrace(old_trace).ok()) << "1 h old with a 24 h retention: kept";
  EXPECT_EQ(Find("shop", kBase - 1, kBase + absl::ToInt64Nanoseconds(absl::Hours(48)), 10).size(),
            2u);

  clock.Advance(absl::Hours(24));  // old trace: 25 h; young one: 5 h
  ASSERT_TRUE(store_->CompactSpans().ok());
  EXPECT_EQ(store_->GetTrace(old_trace).status().code(), absl::StatusCode::kNotFound)
      << "its group and its single span are gone";
  EXPECT_TRUE(store_->GetTrace(young_trace).ok());
  EXPECT_EQ(Find("shop", kBase - 1, kBase + absl::ToInt64Nanoseconds(absl::Hours(48)), 10),
            std::vector<std::string>{young_trace});
}

TEST_F(RocksDbSpanStoreTest, ZeroRetentionKeepsEverything) {
  FakeClock clock(absl::FromUnixNanos(kBase) + absl::Hours(24 * 365 * 10));
  store_.reset();
  options_.clock = &clock;  // retention stays 0
  Open();
  SpanOriginPtr shop = MakeOrigin("shop", "http");
  ASSERT_TRUE(store_->Consume(One(MakeTrace(TraceId(1), {MakeSpan(shop, 1, kBase, 10)}))).ok());
  ASSERT_TRUE(store_->CompactSpans().ok());
  EXPECT_TRUE(store_->GetTrace(TraceId(1)).ok());
}

}  // namespace
}  // namespace tracekeep::storage

namespace tracekeep::storage {
namespace {

// A full disk (a small tmpfs): the write that fails and every later write — spans (kUnavailable:
// the sampler offers them again), the export queue, tables (kResourceExhausted) — are refused
// naming the database, without crashing
// (RocksDB 7.8 aborts on a write after a failed WAL write, see write_guard.h); once space is freed
// and a resume interval has passed, writes succeed again, and everything written before and
// after the failure reads back after a reopen.
TEST(RocksDbSpanStoreFullDiskTest, RefusesWritesWhileFullAndResumesOnceSpaceIsFreed) {
  SmallFs fs;
  if (std::string why = fs.Mount(16); !why.empty()) GTEST_SKIP() << why << " (needs root)";
  FakeClock clock;
  RocksDbOptions options;
  options.path = fs.dir() + "/db";
  options.block_cache_mib = 0;
  options.write_buffer_mib = 1;
  options.clock = &clock;
  SpanOriginPtr shop = MakeOrigin("shop", "http");
  // First offered in a refused write: written with the first write that succeeds.
  SpanOriginPtr crm = MakeOrigin("crm", "http");
  {
    auto store = RocksDbSpanStore::Create(options);
    ASSERT_TRUE(store.ok()) << store.status();
    auto queue = (*store)->OpenExportQueue();
    auto table = (*store)->OpenTable("orders");
    ASSERT_TRUE(table.ok()) << table.status();
    ASSERT_TRUE((*store)->Consume(One(MakeTrace(TraceId(1), {MakeSpan(shop, 1, kBase, 10)}))).ok());
    fs.Fill();

    std::vector<SpanRecord> big;
    for (uint8_t i = 0; i < 64; ++i) {
      big.push_back(MakeSpan(shop, i, kBase, 10));
      big.back().span.append(16 * 1024, 'b');
    }
    absl::Status failed;
    for (int i = 0; i < 100 && failed.ok(); ++i) {
      failed = (*store)->Consume(One(MakeTrace(TraceId(2), big)));
    }
    // kUnavailable: nothing taken, the caller keeps the batch and offers it again later.
    ASSERT_EQ(failed.code(), absl::StatusCode::kUnavailable) << failed;
    EXPECT_NE(failed.message().find(options.path), absl::string_view::npos) << failed;
    EXPECT_FALSE((*store)->writable());

    // Every write path is refused, without being tried.
    const absl::Status spans =
        (*store)->Consume(One(MakeTrace(TraceId(3), {MakeSpan(crm, 3, kBase, 10)})));
    EXPECT_EQ(spans.code(), absl::StatusCode::kUnavailable) << spans;
    EXPECT_NE(spans.message().find("writes refused after a failed write"), absl::string_view::npos)
        << spans;
    EXPECT_EQ(queue->Append(1, absl::UnixEpoch(), {MakeSpan(shop, 4, kBase, 10)}).status().code(),
              absl::StatusCode::kResourceExhausted);
    EXPECT_EQ((*table)->Write({{"o1", "record"}}).code(), absl::StatusCode::kResourceExhausted);
    EXPECT_GE((*store)->write_refusals(), 3u);

    // Still full after the resume interval: still refused.
    clock.Advance(absl::Seconds(1));
    EXPECT_EQ((*store)->Consume(One(MakeTrace(TraceId(3), {MakeSpan(crm, 3, kBase, 10)}))).code(),
              absl::StatusCode::kUnavailable);

    fs.Free();
    clock.Advance(absl::Seconds(1));
    const absl::Status resumed =
        (*store)->Consume(One(MakeTrace(TraceId(5), {MakeSpan(crm, 5, kBase, 10)})));
    ASSERT_TRUE(resumed.ok()) << resumed;
    EXPECT_TRUE((*store)->writable());
    ASSERT_TRUE(queue->Append(2, absl::UnixEpoch(), {MakeSpan(shop, 6, kBase, 10)}).ok());
    ASSERT_TRUE((*table)->Write({{"o1", "record"}}).ok());
    table->reset();
    queue.reset();
  }
  auto reopened = RocksDbSpanStore::Create(options);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  for (uint8_t t : {1, 5}) {
    auto trace = (*reopened)->GetTrace(TraceId(t));
    ASSERT_TRUE(trace.ok()) << "trace " << int{t} << ": " << trace.status();
    ASSERT_EQ(trace->size(), 1u);
    EXPECT_EQ((*trace)[0].origin->resource, (t == 1 ? shop : crm)->resource) << "trace " << int{t};
  }
  EXPECT_EQ((*reopened)->GetTrace(TraceId(3)).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace tracekeep::storage
