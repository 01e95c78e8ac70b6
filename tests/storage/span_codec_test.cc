#include "storage/span_codec.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace tracekeep::storage::codec {
namespace {

TEST(SpanCodecTest, VarintRoundTripsBoundaries) {
  const std::vector<uint64_t> values = {0,     1,          127,       128,       16383,
                                        16384, UINT32_MAX, INT64_MAX, UINT64_MAX};
  std::string encoded;
  for (uint64_t v : values) PutVarint64(v, &encoded);
  absl::string_view in = encoded;
  for (uint64_t v : values) {
    uint64_t got = 0;
    ASSERT_TRUE(GetVarint64(&in, &got));
    EXPECT_EQ(got, v);
  }
  EXPECT_TRUE(in.empty());

  std::string one_byte;
  PutVarint64(127, &one_byte);
  EXPECT_EQ(one_byte.size(), 1u);
  absl::string_view truncated("\x80\x80", 2);
  uint64_t v = 0;
  EXPECT_FALSE(GetVarint64(&truncated, &v));
}

TEST(SpanCodecTest, LengthPrefixedRejectsLengthPastTheEnd) {
  std::string encoded;
  PutLengthPrefixed(std::string("a\0b", 3), &encoded);
  absl::string_view in = encoded;
  absl::string_view got;
  ASSERT_TRUE(GetLengthPrefixed(&in, &got));
  EXPECT_EQ(got, std::string("a\0b", 3));
  absl::string_view short_input = absl::string_view(encoded).substr(0, 3);
  EXPECT_FALSE(GetLengthPrefixed(&short_input, &got));
}

SpanRecord MakeSpan(int64_t start, int64_t end, bool error, bool root) {
  auto origin = std::make_shared<SpanOrigin>();
  origin->scope = std::string("scope\0bytes", 11);
  origin->scope_schema_url = "https://opentelemetry.io/schemas/1.20.0";
  SpanRecord span;
  span.origin = origin;
  span.span = std::string("\x0a\x10\x00\xff span", 10);
  span.span_id = std::string(8, '\x01');
  span.start_unix_nanos = start;
  span.end_unix_nanos = end;
  span.is_error = error;
  span.is_root = root;
  return span;
}

TEST(SpanCodecTest, SpanValueRoundTripsEveryField) {
  struct Case {
    int64_t start, end;
    bool error, root;
  };
  const std::vector<Case> cases = {{1700000000000000000, 1700000000250000000, true, false},
                                   {1700000000000000000, 1699999999000000000, false, true},
                                   {0, 0, false, false},
                                   {-1, INT64_MAX, true, true},
                                   {INT64_MAX, INT64_MIN, false, false}};
  for (const Case& c : cases) {
    SpanRecord span = MakeSpan(c.start, c.end, c.error, c.root);
    std::string value;
    EncodeSpanValue(span, 0xfedcba9876543210ULL, &value);
    SpanValue decoded;
    ASSERT_TRUE(DecodeSpanValue(value, &decoded).ok());
    EXPECT_EQ(decoded.start_unix_nanos, c.start);
    EXPECT_EQ(decoded.end_unix_nanos, c.end);
    EXPECT_EQ(decoded.is_error, c.error);
    EXPECT_EQ(decoded.is_root, c.root);
    EXPECT_EQ(decoded.resource_ref, 0xfedcba9876543210ULL);
    EXPECT_EQ(decoded.scope, span.origin->scope);
    EXPECT_EQ(decoded.scope_schema_url, span.origin->scope_schema_url);
    EXPECT_EQ(decoded.span, span.span);
  }
}

TEST(SpanCodecTest, SpanValueOverheadIsSmall) {
  SpanRecord span = MakeSpan(1700000000000000000, 1700000000250000000, false, false);
  std::string value;
  EncodeSpanValue(span, 1, &value);
  const size_t payload =
      span.span.size() + span.origin->scope.size() + span.origin->scope_schema_url.size();
  // version, flags, start (9), duration (4), ref (8), three lengths.
  EXPECT_LE(value.size(), payload + 2 + 9 + 5 + 8 + 3);
}

TEST(SpanCodecTest, SpanWithoutOriginEncodesEmptyScope) {
  SpanRecord span = MakeSpan(1, 2, false, false);
  span.origin = nullptr;
  std::string value;
  EncodeSpanValue(span, 0, &value);
  SpanValue decoded;
  ASSERT_TRUE(DecodeSpanValue(value, &decoded).ok());
  EXPECT_TRUE(decoded.scope.empty());
  EXPECT_EQ(decoded.span, span.span);
}

TEST(SpanCodecTest, CorruptSpanValuesAreDataLossNamingTheField) {
  SpanRecord span = MakeSpan(1700000000000000000, 1700000000250000000, false, false);
  std::string value;
  EncodeSpanValue(span, 1, &value);
  SpanValue decoded;
  absl::Status s = DecodeSpanValue(absl::string_view(value).substr(0, value.size() - 1), &decoded);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("span bytes"), std::string::npos) << s;

  s = DecodeSpanValue(absl::string_view(value).substr(0, 20), &decoded);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("resource reference"), std::string::npos) << s;

  std::string future = value;
  future[0] = 9;
  s = DecodeSpanValue(future, &decoded);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("format version 9"), std::string::npos) << s;

  EXPECT_EQ(DecodeSpanValue("", &decoded).code(), absl::StatusCode::kDataLoss);
}

TEST(SpanCodecTest, SpanGroupRoundTripsEverySpanWithItsId) {
  std::vector<SpanRecord> spans = {MakeSpan(1700000000000000000, 1700000000250000000, true, false),
                                   MakeSpan(5, 7, false, true),
                                   MakeSpan(-1, INT64_MAX, true, true)};
  spans[0].span_id = std::string("\x01\x00\x02\x03\x04\x05\x06\x07", 8);
  spans[1].span_id = std::string(8, '\xff');
  spans[2].span_id = std::string(8, '\x00');
  std::string group;
  std::string scratch;
  StartSpanGroup(spans.size(), &group);
  for (size_t i = 0; i < spans.size(); ++i) AppendToSpanGroup(spans[i], 100 + i, &scratch, &group);
  ASSERT_EQ(static_cast<uint8_t>(group[0]), kSpanGroupFormatVersion);

  std::vector<std::pair<std::string, SpanValue>> got;
  ASSERT_TRUE(
      ForEachStoredSpan(group, "key span id", [&](absl::string_view id, const SpanValue& v) {
        got.emplace_back(std::string(id), v);
      }).ok());
  ASSERT_EQ(got.size(), spans.size());
  for (size_t i = 0; i < spans.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got[i].first, spans[i].span_id) << "each span's own id, not the key's";
    EXPECT_EQ(got[i].second.start_unix_nanos, spans[i].start_unix_nanos);
    EXPECT_EQ(got[i].second.end_unix_nanos, spans[i].end_unix_nanos);
    EXPECT_EQ(got[i].second.is_error, spans[i].is_error);
    EXPECT_EQ(got[i].second.is_root, spans[i].is_root);
    EXPECT_EQ(got[i].second.resource_ref, 100 + i);
    EXPECT_EQ(got[i].second.scope, spans[i].origin->scope);
    EXPECT_EQ(got[i].second.span, spans[i].span);
  }

  // A single span value is read as one span with the key's span id.
  std::string single;
  EncodeSpanValue(spans[1], 7, &single);
  got.clear();
  ASSERT_TRUE(ForEachStoredSpan(single, "key span", [&](absl::string_view id, const SpanValue& v) {
                got.emplace_back(std::string(id), v);
              }).ok());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, "key span");
  EXPECT_EQ(got[0].second.span, spans[1].span);
}

TEST(SpanCodecTest, CorruptSpanGroupsAreDataLossNamingTheSpan) {
  std::vector<SpanRecord> spans = {MakeSpan(1, 2, false, false), MakeSpan(3, 4, false, false)};
  std::string group;
  std::string scratch;
  StartSpanGroup(spans.size(), &group);
  for (const SpanRecord& span : spans) AppendToSpanGroup(span, 1, &scratch, &group);
  int calls = 0;
  auto count = [&](absl::string_view, const SpanValue&) { ++calls; };

  absl::Status s =
      ForEachStoredSpan(absl::string_view(group).substr(0, group.size() - 1), "", count);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("value of span 1"), std::string::npos) << s;
  EXPECT_EQ(calls, 1) << "the first span was whole";

  std::string extra = group + "x";
  s = ForEachStoredSpan(extra, "", count);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("1 bytes after its 2 spans"), std::string::npos) << s;

  // A member whose own span value is corrupt: its format version.
  std::string bad_member;
  StartSpanGroup(1, &bad_member);
  PutLengthPrefixed("12345678", &bad_member);
  PutLengthPrefixed(std::string("\x09rest", 5), &bad_member);
  s = ForEachStoredSpan(bad_member, "", count);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("span 0 of 1"), std::string::npos) << s;
  EXPECT_NE(s.message().find("format version 9"), std::string::npos) << s;

  std::string no_count(1, static_cast<char>(kSpanGroupFormatVersion));
  EXPECT_EQ(ForEachStoredSpan(no_count, "", count).code(), absl::StatusCode::kDataLoss);
}

TEST(SpanCodecTest, ResourceValueRoundTrips) {
  SpanOrigin origin;
  origin.resource = "\x0a\x1c\x0a\x0cservice.name\x12\x0c\x0a\x0ashop-api";
  origin.resource_schema_url = "https://opentelemetry.io/schemas/1.21.0";
  origin.scope = "ignored";
  origin.service_name = "shop-api";
  std::string value;
  EncodeResourceValue(origin, &value);
  ResourceValue decoded;
  ASSERT_TRUE(DecodeResourceValue(value, &decoded).ok());
  EXPECT_EQ(decoded.resource, origin.resource);
  EXPECT_EQ(decoded.schema_url, origin.resource_schema_url);
  EXPECT_EQ(decoded.service_name, "shop-api");
  EXPECT_EQ(value.find("ignored"), std::string::npos);

  absl::Status s =
      DecodeResourceValue(absl::string_view(value).substr(0, value.size() - 2), &decoded);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("service name"), std::string::npos) << s;
}

TEST(SpanCodecTest, SpanBatchRoundTripsSpansWithTheirOriginsAndSharesThem) {
  auto shop = std::make_shared<SpanOrigin>();
  shop->resource = std::string("\x0a\x00shop", 6);
  shop->resource_schema_url = "https://opentelemetry.io/schemas/1.21.0";
  shop->scope = "http";
  shop->service_name = "shop-api";
  auto shop_db = std::make_shared<SpanOrigin>(*shop);
  shop_db->scope = "db";  // same resource, other scope
  std::vector<SpanRecord> spans;
  for (int i = 0; i < 4; ++i) {
    SpanRecord& s = spans.emplace_back();
    s.origin = i % 2 == 0 ? shop : shop_db;
    s.span = std::string("\x0a\x10span\x00", 7) + std::to_string(i);
    s.span_id = std::string(7, '\x01') + static_cast<char>(i);
    s.start_unix_nanos = 1700000000000000000 + i;
    s.end_unix_nanos = s.start_unix_nanos + 1000 * i;
    s.is_error = i == 1;
    s.is_root = i == 0;
  }
  spans.emplace_back().span = "no origin";
  spans.back().span_id = std::string(8, '\x09');

  std::string value;
  EncodeSpanBatch(spans, 1700000123000000000, &value);
  SpanBatchValue got;
  ASSERT_TRUE(DecodeSpanBatch(value, &got).ok());
  EXPECT_EQ(got.enqueued_unix_nanos, 1700000123000000000);
  ASSERT_EQ(got.spans.size(), spans.size());
  for (size_t i = 0; i < spans.size(); ++i) {
    const SpanOrigin want = spans[i].origin ? *spans[i].origin : SpanOrigin();
    EXPECT_EQ(got.spans[i].span, spans[i].span);
    EXPECT_EQ(got.spans[i].span_id, spans[i].span_id);
    EXPECT_EQ(got.spans[i].start_unix_nanos, spans[i].start_unix_nanos);
    EXPECT_EQ(got.spans[i].end_unix_nanos, spans[i].end_unix_nanos);
    EXPECT_EQ(got.spans[i].is_error, spans[i].is_error);
    EXPECT_EQ(got.spans[i].is_root, spans[i].is_root);
    ASSERT_NE(got.spans[i].origin, nullptr);
    EXPECT_EQ(got.spans[i].origin->resource, want.resource);
    EXPECT_EQ(got.spans[i].origin->resource_schema_url, want.resource_schema_url);
    EXPECT_EQ(got.spans[i].origin->scope, want.scope);
    EXPECT_EQ(got.spans[i].origin->service_name, want.service_name);
  }
  EXPECT_EQ(got.spans[0].origin, got.spans[2].origin) << "one origin per resource and scope";
  EXPECT_NE(got.spans[0].origin, got.spans[1].origin);
  // The resource is stored once although two scopes use it.
  EXPECT_EQ(value.find("shop-api"), value.rfind("shop-api"));

  int64_t enqueued = 0;
  int64_t count = 0;
  ASSERT_TRUE(DecodeSpanBatchHeader(value, &enqueued, &count).ok());
  EXPECT_EQ(enqueued, 1700000123000000000);
  EXPECT_EQ(count, 5);
}

TEST(SpanCodecTest, CorruptSpanBatchIsDataLossAtEveryTruncation) {
  std::vector<SpanRecord> spans(2);
  spans[0].span = "a";
  spans[0].span_id = std::string(8, '\x01');
  spans[1].span = "b";
  spans[1].span_id = std::string(8, '\x02');
  std::string value;
  EncodeSpanBatch(spans, 5, &value);
  for (size_t n = 0; n < value.size(); ++n) {
    SpanBatchValue got;
    const absl::Status s = DecodeSpanBatch(value.substr(0, n), &got);
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << "truncated to " << n << ": " << s;
  }
}

}  // namespace
}  // namespace tracekeep::storage::codec
