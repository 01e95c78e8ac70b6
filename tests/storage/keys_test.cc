#include "storage/keys.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace tracekeep::storage::keys {
namespace {

const std::string kTraceA(16, '\x0a');
const std::string kTraceB(16, '\x0b');

std::string SpanId(uint8_t last) {
  std::string id(8, '\0');
  id[7] = static_cast<char>(last);
  return id;
}

TEST(KeysTest, BigEndianRoundTripsAndSortsNumerically) {
  const std::vector<uint64_t> values = {0,
                                        1,
                                        255,
                                        256,
                                        65535,
                                        65536,
                                        uint64_t{1} << 40,
                                        (uint64_t{1} << 63) - 1,
                                        uint64_t{1} << 63,
                                        ~uint64_t{0}};
  std::vector<std::string> encoded;
  for (uint64_t v : values) {
    std::string s;
    AppendBigEndian64(v, &s);
    ASSERT_EQ(s.size(), 8u);
    EXPECT_EQ(DecodeBigEndian64(s.data()), v);
    encoded.push_back(s);
  }
  EXPECT_TRUE(std::is_sorted(encoded.begin(), encoded.end()));
}

TEST(KeysTest, SpanKeysOfATraceSortByStartTimeThenSpanId) {
  // Inserted shuffled; 255 and 256 would swap under a little-endian encoding.
  struct Span {
    int64_t start;
    uint8_t id;
  };
  const std::vector<Span> shuffled = {
      {256, 1}, {1700000000000000000, 2}, {255, 9}, {256, 0}, {1, 7}, {256, 3}};
  std::vector<std::string> keys;
  for (const Span& s : shuffled) keys.push_back(SpanKey(kTraceA, s.start, SpanId(s.id)));
  std::sort(keys.begin(), keys.end());
  std::vector<std::pair<int64_t, uint8_t>> order;
  for (const std::string& key : keys) {
    SpanKeyParts parts;
    ASSERT_TRUE(ParseSpanKey(key, &parts));
    EXPECT_EQ(parts.trace_id, kTraceA);
    order.emplace_back(parts.start_unix_nanos, static_cast<uint8_t>(parts.span_id[7]));
  }
  const std::vector<std::pair<int64_t, uint8_t>> want = {
      {1, 7}, {255, 9}, {256, 0}, {256, 1}, {256, 3}, {1700000000000000000, 2}};
  EXPECT_EQ(order, want);
}

TEST(KeysTest, SpanKeyLayoutAndPrefixExtraction) {
  const std::string key = SpanKey(kTraceA, 0x0102030405060708, SpanId(0x42));
  ASSERT_EQ(key.size(), kSpanKeySize);
  EXPECT_EQ(key.substr(0, 16), kTraceA);
  EXPECT_EQ(key.substr(16, 8), std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  EXPECT_EQ(key.substr(24), SpanId(0x42));
  EXPECT_EQ(SpanKeyTraceId(key), kTraceA);
  EXPECT_EQ(SpanKeyStartTime(key), 0x0102030405060708u);

  // Every key of trace A sorts before every key of trace B, whatever the times.
  EXPECT_LT(SpanKey(kTraceA, INT64_MAX, SpanId(0xff)), SpanKey(kTraceB, 0, SpanId(0)));

  SpanKeyParts parts;
  EXPECT_FALSE(ParseSpanKey(key.substr(0, 31), &parts));
  EXPECT_FALSE(ParseSpanKey(key + "x", &parts));
}

TEST(KeysTest, SpanGroupKeyIsTheFirstSpansKeyAndASequence) {
  std::string key;
  AppendSpanGroupKey(kTraceA, 0x0102030405060708, SpanId(0x42), 0x1122334455667788, &key);
  ASSERT_EQ(key.size(), kSpanGroupKeySize);
  EXPECT_EQ(key.substr(0, kSpanKeySize), SpanKey(kTraceA, 0x0102030405060708, SpanId(0x42)));
  EXPECT_EQ(key.substr(kSpanKeySize), std::string("\x11\x22\x33\x44\x55\x66\x77\x88", 8));
  EXPECT_EQ(SpanKeyTraceId(key), kTraceA);
  EXPECT_EQ(SpanKeyStartTime(key), 0x0102030405060708u) << "retention reads it like a span key";
  SpanKeyParts parts;
  ASSERT_TRUE(ParseSpanKey(key, &parts));
  EXPECT_TRUE(parts.group);
  EXPECT_EQ(parts.trace_id, kTraceA);
  EXPECT_EQ(parts.start_unix_nanos, 0x0102030405060708);
  EXPECT_EQ(parts.span_id, SpanId(0x42));
  ASSERT_TRUE(ParseSpanKey(SpanKey(kTraceA, 1, SpanId(1)), &parts));
  EXPECT_FALSE(parts.group);
  EXPECT_FALSE(ParseSpanKey(key.substr(0, 39), &parts));
}

TEST(KeysTest, NegativeStartTimeRoundTripsAndSortsLast) {
  const std::string negative = SpanKey(kTraceA, -5, SpanId(1));
  SpanKeyParts parts;
  ASSERT_TRUE(ParseSpanKey(negative, &parts));
  EXPECT_EQ(parts.start_unix_nanos, -5);
  EXPECT_GT(negative, SpanKey(kTraceA, INT64_MAX, SpanId(1)));
}

TEST(KeysTest, ServiceIndexKeyLayoutAndParse) {
  const std::string key = ServiceIndexKey("shop", 0x10, kTraceB);
  std::string want = "sshop";
  want.push_back('\0');
  want += std::string("\0\0\0\0\0\0\0\x10", 8) + kTraceB;
  EXPECT_EQ(key, want);
  EXPECT_EQ(key.rfind(ServiceIndexPrefix("shop"), 0), 0u);
  EXPECT_NE(ServiceIndexKey("shop-api", 0x10, kTraceB).rfind(ServiceIndexPrefix("shop"), 0), 0u)
      << "the 0x00 separator keeps service \"shop\" from matching \"shop-api\"";

  ServiceIndexKeyParts parts;
  ASSERT_TRUE(ParseServiceIndexKey(key, &parts));
  EXPECT_EQ(parts.service, "shop");
  EXPECT_EQ(parts.start_time, 0x10u);
  EXPECT_EQ(parts.trace_id, kTraceB);
  EXPECT_EQ(ServiceIndexKeyStartTime(key), 0x10u);

  // A service name with a 0x00 byte parses from the end.
  const std::string odd_service("a\0b", 3);
  const std::string odd_key = ServiceIndexKey(odd_service, 7, kTraceA);
  ASSERT_TRUE(ParseServiceIndexKey(odd_key, &parts));
  EXPECT_EQ(parts.service, odd_service);
  EXPECT_EQ(parts.start_time, 7u);

  EXPECT_FALSE(ParseServiceIndexKey("x", &parts));
  EXPECT_FALSE(ParseServiceIndexKey("t" + key.substr(1), &parts));
}

TEST(KeysTest, ServiceIndexTimeBoundsEncloseTheKeysOfTheirRange) {
  const std::string lower = ServiceIndexTimeBound("shop", 100);
  const std::string upper = ServiceIndexTimeBound("shop", 200);
  EXPECT_LE(lower, ServiceIndexKey("shop", 100, kTraceA));  // start inclusive
  EXPECT_LT(ServiceIndexKey("shop", 199, kTraceB), upper);
  EXPECT_GT(ServiceIndexKey("shop", 200, kTraceA), upper);  // end exclusive
  EXPECT_LT(ServiceIndexKey("shop", 99, kTraceB), lower);
  // Keys of one service in time order.
  EXPECT_LT(ServiceIndexKey("shop", 255, kTraceB), ServiceIndexKey("shop", 256, kTraceA));
}

TEST(KeysTest, ResourceHashIsStableAndSeparatesFields) {
  // Resource keys are persisted: the hash must never change across builds.
  EXPECT_EQ(ResourceHash("", ""), ResourceHash("", ""));
  EXPECT_EQ(ResourceHash("resource", "https://opentelemetry.io/schemas/1.21.0"),
            0xe2db4bc8ebc23500ULL)
      << std::hex << ResourceHash("resource", "https://opentelemetry.io/schemas/1.21.0");
  EXPECT_NE(ResourceHash("ab", "c"), ResourceHash("a", "bc"));
  EXPECT_NE(ResourceHash("resource", ""), ResourceHash("resourcf", ""));
  const std::string key = ResourceKey(0x0102030405060708);
  EXPECT_EQ(key, std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
}

}  // namespace
}  // namespace tracekeep::storage::keys
