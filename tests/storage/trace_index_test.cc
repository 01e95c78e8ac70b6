// The indexes of the Jaeger query API as RocksDbSpanStore writes and reads them, and the span
// field reader they are built with.
#include "storage/trace_index.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "collector/common/clock.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/common/v1/common.pb.h"
#include "storage/keys.h"
#include "storage/rocksdb_span_store.h"
#include "storage/span_fields.h"
#include "tests/storage/otlp_spans.h"
#include "tests/storage/read_family.h"
#include "tests/storage/test_store.h"

namespace tracekeep::storage {
namespace {

using ::tracekeep::testing::OneTrace;
using ::tracekeep::testing::OtlpOrigin;
using ::tracekeep::testing::OtlpSpan;
using ::tracekeep::testing::SpanSpec;
using ::tracekeep::testing::TestSpanId;
using ::tracekeep::testing::TestTraceId;
namespace common = ::opentelemetry::proto::common::v1;

constexpr int64_t kBase = 1700000000000000000;  // 2023-11-14, in unix nanos
constexpr int64_t kSecond = 1000000000;

std::string Any(const common::AnyValue& v) { return v.SerializeAsString(); }

TEST(AnyValueStringTest, WritesEveryTypeAsJaegerComparesIt) {
  common::AnyValue v;
  v.set_string_value("A-1");
  EXPECT_EQ(AnyValueString(Any(v)), "A-1");
  v.set_bool_value(true);
  EXPECT_EQ(AnyValueString(Any(v)), "true");
  v.set_int_value(-42);
  EXPECT_EQ(AnyValueString(Any(v)), "-42");
  v.set_double_value(12.5);
  EXPECT_EQ(AnyValueString(Any(v)), "12.5");
  v.set_double_value(3);
  EXPECT_EQ(AnyValueString(Any(v)), "3");
  v.set_double_value(1e-7);
  EXPECT_EQ(AnyValueString(Any(v)), "1e-7");
  v.set_double_value(1e21);
  EXPECT_EQ(AnyValueString(Any(v)), "1e+21");
  v.set_bytes_value(std::string("\x00\x01\xfe\xff", 4));
  EXPECT_EQ(AnyValueString(Any(v)), "AAH+/w==");
  common::AnyValue array;
  array.mutable_array_value()->add_values()->set_string_value("red");
  array.mutable_array_value()->add_values()->set_int_value(2);
  EXPECT_EQ(AnyValueString(Any(array)), R"(["red",2])");
  common::AnyValue map;
  auto* kv = map.mutable_kvlist_value()->add_values();
  kv->set_key("z");
  kv->mutable_value()->set_bool_value(false);
  kv = map.mutable_kvlist_value()->add_values();
  kv->set_key("a");
  kv->mutable_value()->set_string_value("q\"");
  EXPECT_EQ(AnyValueString(Any(map)), R"({"a":"q\"","z":false})");  // keys sorted, as Go does
  EXPECT_EQ(AnyValueString(""), "");
}

TEST(SpanFieldsTest, ReadsNameKindParentStatusAndWantedAttributes) {
  const SpanRecord span = OtlpSpan(OtlpOrigin("shop"), SpanSpec(TestTraceId(1), 2)
                                                           .Parent(1)
                                                           .Name("charge")
                                                           .Kind(3)
                                                           .Error()
                                                           .Attribute("order.id", "A-1")
                                                           .Attribute("x", "y")
                                                           .EventAttribute("order.id", "A-2"));
  SpanFields fields;
  ASSERT_TRUE(ReadSpanFields(span.span, {"order.id"}, &fields));
  EXPECT_EQ(fields.name, "charge");
  EXPECT_EQ(fields.kind, 3u);
  EXPECT_EQ(fields.parent_span_id, TestSpanId(1));
  EXPECT_EQ(fields.status_code, kStatusCodeError);
  ASSERT_EQ(fields.attributes.size(), 2u);
  EXPECT_EQ(fields.attributes[0].second, "A-1");
  EXPECT_EQ(fields.attributes[1].second, "A-2");  // from the event
  EXPECT_TRUE(SpanHasAttribute(span.span, "x", "y"));
  EXPECT_TRUE(SpanHasAttribute(span.span, "order.id", "A-2"));
  EXPECT_FALSE(SpanHasAttribute(span.span, "order.id", "A-3"));
  EXPECT_EQ(SpanKindName(3), "client");
  EXPECT_EQ(SpanKindFromName("consumer"), 5);
  EXPECT_EQ(SpanKindFromName("bogus"), -1);
}

TEST(KeysTest, IndexKeysEndWithStartAndTraceId) {
  std::string key = keys::OperationPrefix("shop", 2, "GET /");
  keys::AppendIndexSuffix(kBase, TestTraceId(7), &key);
  ASSERT_TRUE(keys::IsTimedIndexKey(key));
  EXPECT_EQ(keys::IndexKeyStartTime(key), static_cast<uint64_t>(kBase));
  EXPECT_EQ(keys::IndexKeyTraceId(key), TestTraceId(7));
  keys::OperationKeyParts parts;
  ASSERT_TRUE(keys::ParseOperationKey(key, "shop", &parts));
  EXPECT_EQ(parts.kind, 2u);
  EXPECT_EQ(parts.name, "GET /");
  EXPECT_FALSE(keys::IsTimedIndexKey("x123456789012345678901234567890"));
}

class TraceIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    options_.path = dir_.path() + "/db";
    options_.block_cache_mib = 0;
    options_.write_buffer_mib = 4;
    options_.indexed_attributes = {"customer.id"};
    Open();
  }
  void Open() {
    store_.reset();
    auto store = RocksDbSpanStore::Create(options_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  void Put(KeptTraces traces) { ASSERT_TRUE(store_->Consume(std::move(traces)).ok()); }

  std::vector<std::string> Scan(TraceSearch search, size_t limit = 100) {
    std::vector<std::string> ids;
    absl::Status s = store_->ScanTraces(search, [&](const TraceCandidate& c) {
      ids.emplace_back(c.trace_id);
      return ids.size() < limit;
    });
    EXPECT_TRUE(s.ok()) << s;
    return ids;
  }

  TempDir dir_;
  RocksDbOptions options_;
  std::unique_ptr<RocksDbSpanStore> store_;
};

// shop (server "checkout") -> payments (client "charge" and server "charge"); trace n starts at
// kBase + n * step, carries order "A-<n % 2>" on the shop span.
KeptTraces ShopTrace(uint32_t n, int64_t step = kSecond) {
  const SpanOriginPtr shop = OtlpOrigin("shop");
  const SpanOriginPtr payments = OtlpOrigin("payments", {{"customer.id", "C-9"}});
  const std::string id = TestTraceId(n);
  const int64_t start = kBase + n * step;
  return OneTrace(
      id,
      {OtlpSpan(shop, SpanSpec(id, 1)
                          .Name("checkout")
                          .Kind(2)
                          .Start(start)
                          .Duration(100 + n)
                          .Attribute("order.id", "A-" + std::to_string(n % 2))),
       OtlpSpan(shop,
                SpanSpec(id, 2).Parent(1).Name("charge").Kind(3).Start(start + 10).Duration(50)),
       OtlpSpan(payments, SpanSpec(id, 3)
                              .Parent(2)
                              .Name("charge")
                              .Kind(2)
                              .Start(start + 20)
                              .Duration(30)
                              .Error(n == 3))});
}

// Index searches, built without C++20 designated initializers.
TraceSearch Search(const std::string& service) {
  TraceSearch s;
  s.service = service;
  return s;
}
TraceSearch Search(const std::string& service, int64_t min, int64_t max) {
  TraceSearch s = Search(service);
  s.start_min_unix_nanos = min;
  s.start_max_unix_nanos = max;
  return s;
}
TraceSearch ByAttribute(const std::string& service, const std::string& key,
                        const std::string& value) {
  TraceSearch s = Search(service);
  s.attribute = std::make_pair(key, value);
  return s;
}

TEST_F(TraceIndexTest, ListsServicesAndOperationsByKind) {
  for (uint32_t n = 1; n <= 3; ++n) Put(ShopTrace(n));
  auto services = store_->Services();
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_EQ(*services, (std::vector<std::string>{"payments", "shop"}));

  auto all = store_->Operations("shop", std::nullopt);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(*all, (std::vector<OperationEntry>{{"checkout", 2}, {"charge", 3}}));
  auto clients = store_->Operations("shop", 3u);
  ASSERT_TRUE(clients.ok());
  EXPECT_EQ(*clients, (std::vector<OperationEntry>{{"charge", 3}}));
  auto none = store_->Operations("nope", std::nullopt);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST_F(TraceIndexTest, ScansNewestFirstByServiceOperationAndAttribute) {
  for (uint32_t n = 1; n <= 5; ++n) Put(ShopTrace(n));
  TraceSearch by_service = Search("shop");
  EXPECT_EQ(Scan(by_service),
            (std::vector<std::string>{TestTraceId(5), TestTraceId(4), TestTraceId(3),
                                      TestTraceId(2), TestTraceId(1)}));
  EXPECT_EQ(Scan(by_service, 2), (std::vector<std::string>{TestTraceId(5), TestTraceId(4)}));

  TraceSearch window = Search("shop", kBase + 2 * kSecond, kBase + 4 * kSecond);  // inclusive
  EXPECT_EQ(Scan(window),
            (std::vector<std::string>{TestTraceId(4), TestTraceId(3), TestTraceId(2)}));

  TraceSearch order = ByAttribute("shop", "order.id", "A-1");
  EXPECT_EQ(Scan(order),
            (std::vector<std::string>{TestTraceId(5), TestTraceId(3), TestTraceId(1)}));
  TraceSearch order_elsewhere = ByAttribute("payments", "order.id", "A-1");
  EXPECT_TRUE(Scan(order_elsewhere).empty()) << "the order id is on shop's spans only";
  TraceSearch customer = ByAttribute("payments", "customer.id", "C-9");  // from the resource
  EXPECT_EQ(Scan(customer).size(), 5u);
}

TEST_F(TraceIndexTest, SummariesCarryErrorsAndDurations) {
  Put(ShopTrace(3));
  std::vector<IndexSummary> summaries;
  ASSERT_TRUE(store_
                  ->ScanTraces(Search("payments"),
                               [&](const TraceCandidate& c) {
                                 summaries.push_back(c.summary);
                                 return true;
                               })
                  .ok());
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_TRUE(summaries[0].known);
  EXPECT_TRUE(summaries[0].has_error);
  EXPECT_EQ(summaries[0].min_duration_nanos, 30);
  EXPECT_EQ(summaries[0].max_duration_nanos, 30);
  // Searches by operation test the span names' Bloom filter.
  EXPECT_TRUE(summaries[0].MayHaveOperation("charge"));
  EXPECT_FALSE(summaries[0].MayHaveOperation("checkout")) << "shop's, not payments'";
  EXPECT_FALSE(summaries[0].MayHaveOperation("refund"));
  EXPECT_FALSE(IndexSummary().known);
  EXPECT_TRUE(IndexSummary().MayHaveOperation("anything")) << "unknown: cannot rule out";
}

TEST_F(TraceIndexTest, DependenciesCountCallsBetweenServicesInTheWindow) {
  // Calls are kept per minute of the traces' start: one trace a minute.
  for (uint32_t n = 1; n <= 4; ++n) Put(ShopTrace(n, 60 * kSecond));
  auto deps = store_->Dependencies(kBase + 120 * kSecond, kBase + 240 * kSecond);
  ASSERT_TRUE(deps.ok()) << deps.status();
  ASSERT_EQ(deps->size(), 2u);
  EXPECT_EQ((*deps)[0].parent, "shop");
  EXPECT_EQ((*deps)[0].child, "payments");
  EXPECT_EQ((*deps)[0].calls, 3u);
  EXPECT_EQ((*deps)[1].parent, "shop");
  EXPECT_EQ((*deps)[1].child, "shop");
  EXPECT_EQ((*deps)[1].calls, 3u);
  auto empty = store_->Dependencies(kBase + 600 * kSecond, kBase + 1200 * kSecond);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST_F(TraceIndexTest, OperationsAreRecordedOncePerHourNotPerTrace) {
  for (uint32_t n = 1; n <= 20; ++n) Put(ShopTrace(n));  // within one hour
  Put(ShopTrace(4000));                                  // the next hour
  auto ops = store_->Operations("payments", std::nullopt);
  ASSERT_TRUE(ops.ok());
  EXPECT_EQ(*ops, (std::vector<OperationEntry>{{"charge", 2}}));
  store_.reset();
  size_t operation_entries = 0;
  for (const auto& [key, value] : ReadFamily(options_.path, "indexes")) {
    if (key[0] == keys::kOperationIndexTag) ++operation_entries;
  }
  // shop: checkout (server), charge (client); payments: charge (server); in two hours.
  EXPECT_EQ(operation_entries, 6u);
}

TEST_F(TraceIndexTest, IndexesSurviveARestart) {
  Put(ShopTrace(1));
  Open();
  EXPECT_EQ(Scan(ByAttribute("shop", "order.id", "A-1")), std::vector<std::string>{TestTraceId(1)});
  auto services = store_->Services();
  ASSERT_TRUE(services.ok());
  EXPECT_EQ(services->size(), 2u);
}

TEST_F(TraceIndexTest, RetentionExpiresIndexEntriesLikeSpans) {
  FakeClock clock(absl::FromUnixNanos(kBase) + absl::Hours(1));
  store_.reset();
  options_.retention = absl::Hours(24);
  options_.clock = &clock;
  Open();
  Put(ShopTrace(1));
  KeptTraces young = ShopTrace(2);
  for (SpanRecord& s : young[0].spans) {
    s.start_unix_nanos += absl::ToInt64Nanoseconds(absl::Hours(20));
  }
  // The start in the span bytes does not matter to the index: the record's start does.
  Put(std::move(young));
  clock.Advance(absl::Hours(24));  // trace 1: 25 h old; trace 2: 5 h
  ASSERT_TRUE(store_->CompactSpans().ok());
  EXPECT_EQ(Scan(Search("shop")), std::vector<std::string>{TestTraceId(2)});
  EXPECT_EQ(Scan(ByAttribute("shop", "order.id", "A-1")), std::vector<std::string>{});
  auto ops = store_->Operations("shop", std::nullopt);
  ASSERT_TRUE(ops.ok());
  EXPECT_EQ(ops->size(), 2u) << "seen in trace 2's hour";
  auto deps = store_->Dependencies(0, INT64_MAX);
  ASSERT_TRUE(deps.ok());
  ASSERT_EQ(deps->size(), 2u);
  EXPECT_EQ((*deps)[0].calls, 1u) << "only trace 2's calls are left";
}

TEST_F(TraceIndexTest, WithoutQueryIndexesOnlyTheServiceIndexIsWritten) {
  store_.reset();
  options_.query_indexes = false;
  Open();
  Put(ShopTrace(1));
  EXPECT_EQ(Scan(Search("shop")).size(), 1u);
  auto ops = store_->Operations("shop", std::nullopt);
  ASSERT_TRUE(ops.ok());
  EXPECT_TRUE(ops->empty());
  ASSERT_TRUE(store_
                  ->ScanTraces(Search("shop"),
                               [](const TraceCandidate& c) {
                                 EXPECT_TRUE(c.summary.MayHaveOperation("checkout"))
                                     << "names not read: none may be ruled out";
                                 return true;
                               })
                  .ok());
  auto deps = store_->Dependencies(0, INT64_MAX);
  ASSERT_TRUE(deps.ok());
  EXPECT_TRUE(deps->empty());
}

}  // namespace
}  // namespace tracekeep::storage
