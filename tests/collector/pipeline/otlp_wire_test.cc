#include "collector/pipeline/otlp_wire.h"

#include <random>
#include <string>
#include <vector>

#include "collector/pipeline/otlp_convert.h"
#include "gmock/gmock.h"
#include "google/protobuf/stubs/logging.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracekeep {
namespace {

namespace otlp_trace = ::opentelemetry::proto::trace::v1;
namespace otlp_common = ::opentelemetry::proto::common::v1;
using ::testing::HasSubstr;

// Random but plausible requests: several resources and scopes, spans of a few traces with
// attributes of every value type (nested arrays and key-value lists), events, links, statuses,
// some invalid ids, some non-ASCII text.
class RequestMaker {
 public:
  explicit RequestMaker(uint64_t seed) : rng_(seed) {}

  std::string Make() {
    OtlpRequest request;
    for (int r = 0, nr = 1 + Below(3); r < nr; ++r) {
      auto* rs = request.add_resource_spans();
      if (Below(4) != 0) {
        AddAttr(rs->mutable_resource()->add_attributes(), "service.name", 0);
        for (int a = 0, na = Below(4); a < na; ++a) {
          AddAttr(rs->mutable_resource()->add_attributes(), Text(), 2);
        }
      }
      if (Below(2)) rs->set_schema_url("https://opentelemetry.io/schemas/1.21.0");
      for (int s = 0, ns = 1 + Below(2); s < ns; ++s) {
        auto* ss = rs->add_scope_spans();
        ss->mutable_scope()->set_name(Text());
        if (Below(2)) ss->mutable_scope()->set_version("1.0");
        if (Below(3) == 0) ss->set_schema_url("https://schema/x");
        for (int i = 0, n = Below(6); i < n; ++i) AddSpan(ss->add_spans());
      }
    }
    return request.SerializeAsString();
  }

  // A copy of `bytes` damaged in one of a few ways.
  std::string Mutate(const std::string& bytes) {
    std::string m = bytes;
    if (m.empty()) return std::string(1, static_cast<char>(Below(256)));
    const size_t at = static_cast<size_t>(Below(static_cast<int>(m.size())));
    switch (Below(5)) {
      case 0:
        m[at] = static_cast<char>(m[at] ^ (1 << Below(8)));
        break;
      case 1:
        m[at] = static_cast<char>(Below(256));
        break;
      case 2:
        m.resize(at);
        break;
      case 3:
        m.insert(at, 1, static_cast<char>(Below(256)));
        break;
      default: {
        const size_t len = std::min<size_t>(m.size() - at, 1 + Below(12));
        m.insert(at, m.substr(at, len));
        break;
      }
    }
    return m;
  }

 private:
  int Below(int n) { return static_cast<int>(rng_() % static_cast<uint64_t>(n)); }
  std::string Text() {
    static const char* kWords[] = {"GET /api/orders", "db.query", "Zürich", "注文", "k", ""};
    return kWords[Below(6)];
  }
  std::string Id(int size) {
    if (Below(20) == 0) return std::string(size, '\0');     // invalid: all zero
    if (Below(20) == 0) return std::string(size - 1, 'x');  // invalid: short
    std::string id(size, '\0');
    id[0] = static_cast<char>(1 + Below(4));  // a few traces per request
    for (int i = 1; i < size; ++i) id[i] = static_cast<char>(Below(256));
    if (size == 16) id.replace(1, 15, std::string(15, 'T'));
    return id;
  }
  void AddValue(otlp_common::AnyValue* v, int depth) {
    switch (Below(depth > 0 ? 7 : 5)) {
      case 0:
        v->set_string_value(Text());
        break;
      case 1:
        v->set_bool_value(Below(2));
        break;
      case 2:
        v->set_int_value(static_cast<int64_t>(rng_()));
        break;
      case 3:
        v->set_double_value(0.5 * Below(1000));
        break;
      case 4:
        v->set_bytes_value(std::string(Below(5), '\xff'));
        break;
      case 5:
        for (int i = 0, n = Below(3); i < n; ++i) {
          AddValue(v->mutable_array_value()->add_values(), depth - 1);
        }
        break;
      default:
        for (int i = 0, n = Below(3); i < n; ++i) {
          AddAttr(v->mutable_kvlist_value()->add_values(), Text(), depth - 1);
        }
        break;
    }
  }
  void AddAttr(otlp_common::KeyValue* kv, const std::string& key, int depth) {
    kv->set_key(key);
    if (key == "service.name") {
      kv->mutable_value()->set_string_value("shop-api");
    } else {
      AddValue(kv->mutable_value(), depth);
    }
  }
  void AddSpan(otlp_trace::Span* span) {
    span->set_trace_id(Id(16));
    span->set_span_id(Id(8));
    if (Below(2)) span->set_parent_span_id(Id(8));
    span->set_name(Text());
    if (Below(3) == 0) span->set_trace_state("k=v");
    span->set_kind(static_cast<otlp_trace::Span::SpanKind>(Below(6)));
    span->set_start_time_unix_nano(rng_());
    span->set_end_time_unix_nano(rng_());
    for (int a = 0, n = Below(5); a < n; ++a) AddAttr(span->add_attributes(), Text(), 2);
    for (int e = 0, n = Below(2); e < n; ++e) {
      auto* ev = span->add_events();
      ev->set_name("exception");
      ev->set_time_unix_nano(rng_());
      AddAttr(ev->add_attributes(), "exception.message", 1);
    }
    if (Below(4) == 0) {
      auto* link = span->add_links();
      link->set_trace_id(Id(16));
      link->set_span_id(Id(8));
      AddAttr(link->add_attributes(), Text(), 1);
    }
    if (Below(2)) {
      span->mutable_status()->set_code(static_cast<otlp_trace::Status::StatusCode>(Below(3)));
      if (Below(2)) span->mutable_status()->set_message(Text());
    }
    if (Below(10) == 0) span->set_flags(0x301);
  }

  std::mt19937_64 rng_;
};

// The protobuf message `bytes` parse to, serialized canonically ("" when `bytes` is empty).
template <typename Message>
std::string Canonical(const std::string& bytes) {
  Message m;
  EXPECT_TRUE(m.ParseFromString(bytes));
  return m.SerializeAsString();
}

std::string HexDump(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

// SplitWireRequest must accept exactly what protobuf's parser accepts, and then produce what
// SplitRequest produces from the parsed message.
void ExpectSameAsProtobuf(const std::string& bytes) {
  OtlpRequest parsed;
  const bool protobuf_ok = parsed.ParseFromString(bytes);
  absl::StatusOr<SplitResult> from_wire = SplitWireRequest(bytes);
  ASSERT_EQ(protobuf_ok, from_wire.ok()) << from_wire.status() << "\n" << HexDump(bytes);
  if (!protobuf_ok) {
    EXPECT_EQ(from_wire.status().code(), absl::StatusCode::kInvalidArgument);
    return;
  }
  const SplitResult expected = SplitRequest(parsed);
  const SplitResult& got = *from_wire;
  EXPECT_EQ(got.accepted_spans, expected.accepted_spans);
  EXPECT_EQ(got.rejected_invalid_trace_id, expected.rejected_invalid_trace_id);
  EXPECT_EQ(got.rejected_invalid_span_id, expected.rejected_invalid_span_id);
  EXPECT_EQ(got.error_message, expected.error_message);
  ASSERT_EQ(got.traces.size(), expected.traces.size());
  for (size_t t = 0; t < got.traces.size(); ++t) {
    const TraceSpans& a = got.traces[t];
    const TraceSpans& b = expected.traces[t];
    EXPECT_EQ(a.trace_id, b.trace_id);
    EXPECT_EQ(a.hash, b.hash);
    ASSERT_EQ(a.spans.size(), b.spans.size());
    for (size_t i = 0; i < a.spans.size(); ++i) {
      const SpanRecord& x = a.spans[i];
      const SpanRecord& y = b.spans[i];
      EXPECT_EQ(Canonical<otlp_trace::Span>(x.span), y.span);  // y: serialized again
      EXPECT_EQ(x.span_id, y.span_id);
      EXPECT_EQ(x.start_unix_nanos, y.start_unix_nanos);
      EXPECT_EQ(x.end_unix_nanos, y.end_unix_nanos);
      EXPECT_EQ(x.is_error, y.is_error);
      EXPECT_EQ(x.is_root, y.is_root);
      EXPECT_EQ(Canonical<opentelemetry::proto::resource::v1::Resource>(x.origin->resource),
                y.origin->resource);
      EXPECT_EQ(Canonical<otlp_common::InstrumentationScope>(x.origin->scope), y.origin->scope);
      EXPECT_EQ(x.origin->resource_schema_url, y.origin->resource_schema_url);
      EXPECT_EQ(x.origin->scope_schema_url, y.origin->scope_schema_url);
      EXPECT_EQ(x.origin->service_name, y.origin->service_name);
    }
  }
}

TEST(OtlpWireTest, AgreesWithProtobufOnRandomRequests) {
  RequestMaker maker(20261124);
  for (int n = 0; n < 300; ++n) {
    SCOPED_TRACE(n);
    ExpectSameAsProtobuf(maker.Make());
    if (HasFatalFailure()) return;
  }
}

// Damaged requests: flipped and replaced bytes, truncations, insertions, repeated ranges. Most
// break the framing or a string's UTF-8; some stay valid with other content (unknown fields,
// merged messages). Either way the two readers must agree.
TEST(OtlpWireTest, AgreesWithProtobufOnDamagedRequests) {
  google::protobuf::LogSilencer quiet;  // protobuf logs every invalid UTF-8 string
  RequestMaker maker(7);
  int refused = 0;
  for (int n = 0; n < 4000; ++n) {
    SCOPED_TRACE(n);
    const std::string bytes = maker.Mutate(maker.Make());
    ExpectSameAsProtobuf(bytes);
    if (HasFatalFailure()) return;
    refused += SplitWireRequest(bytes).ok() ? 0 : 1;
  }
  // Both outcomes occur often enough for the comparison to mean something.
  EXPECT_GT(refused, 400);
  EXPECT_LT(refused, 3600);
}

TEST(OtlpWireTest, NamesThePathOfTheDefect) {
  google::protobuf::LogSilencer quiet;
  OtlpRequest request;
  auto* ss = request.add_resource_spans()->add_scope_spans();
  ss->add_spans()->set_name("fine");
  auto* span = ss->add_spans();
  span->add_attributes()->set_key("ok");
  span->add_attributes()->set_key("bad \xC3\x28 key");  // invalid UTF-8
  absl::StatusOr<SplitResult> result = SplitWireRequest(request.SerializeAsString());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(result.status().message()),
              HasSubstr("resource_spans[0].scope_spans[0].spans[1].attributes[1].key: invalid "
                        "UTF-8"));

  const std::string truncated = request.SerializeAsString().substr(0, 12);
  result = SplitWireRequest(truncated);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("broken protobuf framing"));
}

TEST(OtlpWireTest, UnknownFieldsAndGroupsAreKeptNotRefused) {
  OtlpRequest request;
  auto* span = request.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(std::string(16, '\x01'));
  span->set_span_id(std::string(8, '\x02'));
  std::string bytes = request.SerializeAsString();
  // An unknown group (field 99) at the top level, well formed: protobuf keeps it.
  bytes += std::string("\x9b\x06\x08\x01\x9c\x06", 6);
  ExpectSameAsProtobuf(bytes);
  ASSERT_TRUE(SplitWireRequest(bytes).ok());
  // An end-group without its start is refused by both.
  ExpectSameAsProtobuf(bytes + std::string("\x9c\x06", 2));
}

// The forms of KeyValue the validator checks without its general loop (a short key, then a
// short string, a one-byte bool or int, or a double), with good and bad UTF-8, and the same with
// a field more: each accepted or refused as protobuf does.
TEST(OtlpWireTest, ShortAttributesAgreeWithProtobuf) {
  google::protobuf::LogSilencer quiet;
  auto request_with = [](const std::string& key_value) {
    OtlpRequest request;
    auto* span = request.add_resource_spans()->add_scope_spans()->add_spans();
    span->set_trace_id(std::string(16, '\x01'));
    span->set_span_id(std::string(8, '\x02'));
    std::string bytes = request.SerializeAsString();
    // The span is the innermost message: append attributes (field 9) to it and fix the three
    // lengths around it, all one byte here.
    const std::string field =
        std::string(1, '\x4a') + std::string(1, static_cast<char>(key_value.size())) + key_value;
    bytes += field;
    for (size_t at : {size_t{1}, size_t{3}, size_t{5}}) {
      bytes[at] = static_cast<char>(static_cast<uint8_t>(bytes[at]) + field.size());
    }
    return bytes;
  };
  const std::string good_key = std::string("\x0a\x08order.id", 10);
  const std::string bad_key = std::string("\x0a\x03\xC3\x28x", 5);
  const std::vector<std::string> values = {
      std::string("\x12\x06\x0a\x04ORD1", 8),                           // string
      std::string("\x12\x06\x0a\x04\xC3\x28zz", 8),                     // string, bad UTF-8
      std::string("\x12\x02\x0a\x00", 4),                               // empty string
      std::string("\x12\x02\x10\x01", 4),                               // bool
      std::string("\x12\x02\x18\x7f", 4),                               // int
      std::string("\x12\x09\x21\x00\x00\x00\x00\x00\x00\xf0\x3f", 11),  // double
      std::string("\x12\x03\x18\x80\x01", 5),  // int of two bytes: the general loop
      std::string("\x12\x02\x18\x80", 4),      // int cut short
  };
  // A field more: another key, valid or not (protobuf keeps the last, and checks each).
  const std::vector<std::string> more = {std::string(), std::string("\x0a\x01k", 3),
                                         std::string("\x0a\x01\xff", 3)};
  int accepted = 0;
  for (const std::string& key : {good_key, bad_key}) {
    for (const std::string& value : values) {
      for (const std::string& extra : more) {
        const std::string bytes = request_with(key + value + extra);
        SCOPED_TRACE(HexDump(bytes));
        ExpectSameAsProtobuf(bytes);
        if (HasFatalFailure()) return;
        accepted += SplitWireRequest(bytes).ok() ? 1 : 0;
      }
    }
  }
  // The good key with the six well-formed values, alone or with a valid key more.
  EXPECT_EQ(accepted, 12);
}

TEST(OtlpWireTest, Utf8Validation) {
  EXPECT_TRUE(wire::IsValidUtf8(""));
  EXPECT_TRUE(wire::IsValidUtf8("plain ascii that is longer than eight bytes"));
  EXPECT_TRUE(wire::IsValidUtf8("Zürich 注文 \xF0\x9F\x98\x80"));
  EXPECT_FALSE(wire::IsValidUtf8("\xC0\xAF"));          // overlong
  EXPECT_FALSE(wire::IsValidUtf8("\xE0\x80\xAF"));      // overlong
  EXPECT_FALSE(wire::IsValidUtf8("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(wire::IsValidUtf8("\xF4\x90\x80\x80"));  // past U+10FFFF
  EXPECT_FALSE(wire::IsValidUtf8("abc\xE6\xB3"));       // cut short
  EXPECT_FALSE(wire::IsValidUtf8("\x80"));              // continuation first
}

TEST(OtlpWireTest, NestingBeyondProtobufsLimitIsRefused) {
  google::protobuf::LogSilencer quiet;
  OtlpRequest request;
  auto* kv = request.add_resource_spans()->add_scope_spans()->add_spans()->add_attributes();
  otlp_common::AnyValue* v = kv->mutable_value();
  for (int i = 0; i < 120; ++i) v = v->mutable_array_value()->add_values();
  v->set_int_value(1);
  ExpectSameAsProtobuf(request.SerializeAsString());
  EXPECT_FALSE(SplitWireRequest(request.SerializeAsString()).ok());
}

}  // namespace
}  // namespace tracekeep
