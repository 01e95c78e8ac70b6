#include "collector/pipeline/otlp_convert.h"

#include <sstream>
#include <string>
#include <utility>

#include "collector/pipeline/otlp_wire.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracekeep {
namespace {

namespace otlp_trace = ::opentelemetry::proto::trace::v1;

otlp_trace::Span* AddSpan(otlp_trace::ScopeSpans* ss, const std::string& trace_id,
                          const std::string& span_id) {
  otlp_trace::Span* span = ss->add_spans();
  span->set_trace_id(trace_id);
  span->set_span_id(span_id);
  span->set_name("op");
  return span;
}

TEST(OtlpConvertTest, SplitsByTraceAndRejectsInvalidIdsOnly) {
  OtlpRequest request;
  auto* rs = request.add_resource_spans();
  auto* attr = rs->mutable_resource()->add_attributes();
  attr->set_key("service.name");
  attr->mutable_value()->set_string_value("shop-api");
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("lib");
  const std::string t1(16, '\x01'), t2(16, '\x02');
  AddSpan(ss, t1, std::string(8, '\x01'))
      ->mutable_status()
      ->set_code(otlp_trace::Status::STATUS_CODE_ERROR);
  AddSpan(ss, t2, std::string(8, '\x02'));
  AddSpan(ss, t1, std::string(8, '\x03'))->set_parent_span_id(std::string(8, '\x01'));
  AddSpan(ss, std::string(16, '\0'), std::string(8, '\x04'));  // all-zero trace id
  AddSpan(ss, "short", std::string(8, '\x05'));
  AddSpan(ss, t2, std::string(8, '\0'));  // all-zero span id

  SplitResult result = SplitRequest(request);
  EXPECT_EQ(result.accepted_spans, 3);
  EXPECT_EQ(result.rejected_invalid_trace_id, 2);
  EXPECT_EQ(result.rejected_invalid_span_id, 1);
  EXPECT_NE(
      result.error_message.find("resource_spans[0].scope_spans[0].spans[3]: invalid trace_id"),
      std::string::npos)
      << result.error_message;
  EXPECT_NE(result.error_message.find("spans[5]: invalid span_id"), std::string::npos);
  ASSERT_EQ(result.traces.size(), 2u);
  EXPECT_EQ(result.traces[0].trace_id, t1);
  ASSERT_EQ(result.traces[0].spans.size(), 2u);
  EXPECT_TRUE(result.traces[0].spans[0].is_error);
  EXPECT_TRUE(result.traces[0].spans[0].is_root);
  EXPECT_FALSE(result.traces[0].spans[1].is_root);
  EXPECT_EQ(result.traces[0].spans[0].origin->service_name, "shop-api");
  EXPECT_EQ(result.traces[1].spans.size(), 1u);
}

TEST(OtlpConvertTest, BuildRequestRestoresResourceScopeAndSpans) {
  OtlpRequest request;
  auto* rs = request.add_resource_spans();
  rs->set_schema_url("https://opentelemetry.io/schemas/1.21.0");
  auto* attr = rs->mutable_resource()->add_attributes();
  attr->set_key("service.name");
  attr->mutable_value()->set_string_value("crm-api");
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("lib");
  ss->mutable_scope()->set_version("1.0");
  auto* span = AddSpan(ss, std::string(16, '\x07'), std::string(8, '\x01'));
  auto* ev = span->add_events();
  ev->set_name("exception");
  AddSpan(ss, std::string(16, '\x07'), std::string(8, '\x02'));

  SplitResult split = SplitRequest(request);
  ASSERT_EQ(split.traces.size(), 1u);
  KeptTraces kept(1);
  kept[0].trace_id = split.traces[0].trace_id;
  kept[0].spans = std::move(split.traces[0].spans);
  OtlpRequest rebuilt;
  BuildRequest(kept, &rebuilt);
  EXPECT_EQ(rebuilt.SerializeAsString(), request.SerializeAsString());
}

}  // namespace
}  // namespace tracekeep

namespace tracekeep {
namespace {

namespace otlp_trace = ::opentelemetry::proto::trace::v1;

TEST(OtlpConvertWireTest, KeepsTheClientsOwnSpanBytesIncludingUnknownFields) {
  OtlpRequest request;
  for (int r = 0; r < 2; ++r) {
    auto* rs = request.add_resource_spans();
    rs->mutable_resource()->add_attributes()->set_key("service.name");
    for (int s = 0; s < 2; ++s) {
      auto* ss = rs->add_scope_spans();
      ss->mutable_scope()->set_name("lib");
      for (int i = 0; i < 3; ++i) {
        auto* span = ss->add_spans();
        span->set_trace_id(std::string(16, static_cast<char>(r * 10 + s + 1)));
        span->set_span_id(std::string(8, static_cast<char>(i + 1)));
        span->set_name("op");
        span->set_start_time_unix_nano(1000 + i);
      }
    }
  }
  request.mutable_resource_spans(1)->mutable_scope_spans(0)->mutable_spans(0)->clear_trace_id();
  std::string wire = request.SerializeAsString();

  // The client's bytes of each span, the same records as from the parsed message (the invalid
  // span rejected either way).
  SplitResult parsed = SplitRequest(request);
  absl::StatusOr<SplitResult> sliced = SplitWireRequest(wire);
  ASSERT_TRUE(sliced.ok()) << sliced.status();
  EXPECT_EQ(sliced->accepted_spans, 11);
  EXPECT_EQ(sliced->rejected_invalid_trace_id, 1);
  ASSERT_EQ(sliced->traces.size(), parsed.traces.size());
  for (size_t t = 0; t < parsed.traces.size(); ++t) {
    ASSERT_EQ(sliced->traces[t].spans.size(), parsed.traces[t].spans.size());
    for (size_t i = 0; i < parsed.traces[t].spans.size(); ++i) {
      EXPECT_EQ(sliced->traces[t].spans[i].span, parsed.traces[t].spans[i].span);
      EXPECT_EQ(sliced->traces[t].spans[i].span_id, parsed.traces[t].spans[i].span_id);
    }
  }

  // A field this version does not know (number 1000, a string) survives in the kept bytes.
  OtlpRequest one;
  auto* span = one.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(std::string(16, '\x09'));
  span->set_span_id(std::string(8, '\x09'));
  std::string span_bytes = span->SerializeAsString() + std::string("\xc2\x3e\x03new", 6);
  std::string one_wire;
  {
    // Rebuild the request around the extended span bytes.
    std::string ss = std::string("\x12", 1) + static_cast<char>(span_bytes.size()) + span_bytes;
    std::string rs = std::string("\x12", 1) + static_cast<char>(ss.size()) + ss;
    one_wire = std::string("\x0a", 1) + static_cast<char>(rs.size()) + rs;
  }
  absl::StatusOr<SplitResult> kept = SplitWireRequest(one_wire);
  ASSERT_TRUE(kept.ok()) << kept.status();
  ASSERT_EQ(kept->traces.size(), 1u);
  EXPECT_EQ(kept->traces[0].spans[0].span, span_bytes);

  // Broken framing is refused.
  EXPECT_FALSE(SplitWireRequest(std::string("\x0a\x05\x12", 3)).ok());
}

// Both receivers' paths note the keys of a span's attributes and of its events' attributes, so
// that a component looking for one key (the order tracker) skips spans without it unread.
TEST(OtlpConvertTest, SplitsNoteTheAttributeKeysOfEachSpan) {
  OtlpRequest request;
  auto* ss = request.add_resource_spans()->add_scope_spans();
  auto bit = [](const std::string& key) { return AttributeKeyBit(key.data(), key.size()); };
  otlp_trace::Span* with = AddSpan(ss, std::string(16, '\x01'), std::string(8, '\x01'));
  auto* kv = with->add_attributes();
  kv->set_key("order.id");
  kv->mutable_value()->set_string_value("o-1");
  auto* ev = with->add_events();
  ev->set_name("status");
  kv = ev->add_attributes();
  kv->set_key("order.status");
  kv->mutable_value()->set_string_value("PAID");
  AddSpan(ss, std::string(16, '\x02'), std::string(8, '\x02'));  // no attributes
  const std::string wire = request.SerializeAsString();
  absl::StatusOr<SplitResult> from_wire = SplitWireRequest(wire);
  ASSERT_TRUE(from_wire.ok()) << from_wire.status();
  for (const SplitResult& result : {*from_wire, SplitRequest(request)}) {
    ASSERT_EQ(result.traces.size(), 2u);
    const uint64_t keys = result.traces[0].spans[0].attribute_keys;
    EXPECT_NE(keys, kAnyAttributeKey);
    EXPECT_EQ(keys, bit("order.id") | bit("order.status") | bit("status"));  // event name too
    EXPECT_EQ(result.traces[1].spans[0].attribute_keys, 0u);
  }
  // A record made elsewhere (replayed, built by hand) knows nothing: any key may be there.
  EXPECT_EQ(SpanRecord().attribute_keys, kAnyAttributeKey);
}

// The protobuf receivers note each span's name (as a place in its bytes), kind and status code,
// so that stages after them need not walk the span again.
TEST(OtlpConvertWireTest, NotesNameKindAndStatus) {
  OtlpRequest request;
  auto* ss = request.add_resource_spans()->add_scope_spans();
  otlp_trace::Span* full = AddSpan(ss, std::string(16, '\x01'), std::string(8, '\x01'));
  full->set_name("GET /orders/{id}");
  full->set_kind(otlp_trace::Span::SPAN_KIND_SERVER);
  full->mutable_status()->set_code(otlp_trace::Status::STATUS_CODE_ERROR);
  otlp_trace::Span* bare = AddSpan(ss, std::string(16, '\x02'), std::string(8, '\x02'));
  bare->clear_name();
  const std::string wire = request.SerializeAsString();
  absl::StatusOr<SplitResult> split = SplitWireRequest(wire);
  ASSERT_TRUE(split.ok()) << split.status();
  ASSERT_EQ(split->traces.size(), 2u);
  const SpanRecord& a = split->traces[0].spans[0];
  ASSERT_TRUE(a.fields_known);
  EXPECT_EQ(a.name(), "GET /orders/{id}");
  EXPECT_EQ(a.kind, otlp_trace::Span::SPAN_KIND_SERVER);
  EXPECT_EQ(a.status_code, otlp_trace::Status::STATUS_CODE_ERROR);
  const SpanRecord& b = split->traces[1].spans[0];
  ASSERT_TRUE(b.fields_known);
  EXPECT_EQ(b.name(), "");
  EXPECT_EQ(b.kind, 0);
  EXPECT_EQ(b.status_code, 0);
  EXPECT_FALSE(SpanRecord().fields_known) << "a record made elsewhere knows nothing";
}

// With a key attribute to locate, each span's record points at that attribute's string value in
// its bytes (for the order tracker), unless the value is in a form only a full decode reads.
TEST(OtlpConvertWireTest, LocatesTheKeyAttributesStringValue) {
  OtlpRequest request;
  auto* ss = request.add_resource_spans()->add_scope_spans();
  auto add = [](otlp_trace::Span* span, const std::string& key) {
    auto* kv = span->add_attributes();
    kv->set_key(key);
    return kv->mutable_value();
  };
  otlp_trace::Span* plain = AddSpan(ss, std::string(16, '\x01'), std::string(8, '\x01'));
  add(plain, "http.url")->set_string_value("order.id");  // the bytes mention it: not the key
  add(plain, "order.id")->set_string_value("o-1");
  otlp_trace::Span* twice = AddSpan(ss, std::string(16, '\x02'), std::string(8, '\x02'));
  add(twice, "order.id")->set_string_value("o-2");
  add(twice, "order.id")->set_string_value("o-3");  // the last one wins, as in a full decode
  otlp_trace::Span* number = AddSpan(ss, std::string(16, '\x03'), std::string(8, '\x03'));
  add(number, "order.id")->set_int_value(7);
  otlp_trace::Span* none = AddSpan(ss, std::string(16, '\x04'), std::string(8, '\x04'));
  add(none, "order.idx")->set_string_value("o-4");
  otlp_trace::Span* mixed = AddSpan(ss, std::string(16, '\x05'), std::string(8, '\x05'));
  add(mixed, "order.id")->set_string_value("o-5");
  add(mixed, "order.id")->set_bool_value(true);
  // Longer than a record's 16-bit key_size: not located, so the tracker reads the span whole.
  otlp_trace::Span* huge = AddSpan(ss, std::string(16, '\x06'), std::string(8, '\x06'));
  add(huge, "order.id")->set_string_value(std::string(70000, 'h'));
  const std::string wire = request.SerializeAsString();

  WireSplitOptions options;
  options.key_attribute = "order.id";
  absl::StatusOr<SplitResult> split = SplitWireRequest(wire, options);
  ASSERT_TRUE(split.ok()) << split.status();
  ASSERT_EQ(split->traces.size(), 6u);
  auto located = [&](int t) -> std::string {
    const SpanRecord& r = split->traces[t].spans[0];
    if (r.key_size == 0) return "<none>";
    EXPECT_EQ(r.key_hash, KeyValueHash(r.span.substr(r.key_offset, r.key_size)));
    return r.span.substr(r.key_offset, r.key_size);
  };
  EXPECT_EQ(located(0), "o-1");
  EXPECT_EQ(located(1), "o-3");
  EXPECT_EQ(located(2), "<none>");  // not a string: the tracker reads the span
  EXPECT_EQ(located(3), "<none>");
  EXPECT_EQ(located(4), "<none>");  // a later occurrence is not a string
  EXPECT_EQ(located(5), "<none>");
  absl::StatusOr<SplitResult> without = SplitWireRequest(wire);
  ASSERT_TRUE(without.ok());
  EXPECT_EQ(without->traces[0].spans[0].key_size, 0u) << "nothing to locate by default";
}

// The authenticated client's name goes on every resource of its request, replacing any value the
// client put under that key itself, on the resource or on a span: a client cannot pass for
// another. Spans without the key keep their bytes; a stripped span's fields are read again.
OtlpRequest ForgedRequest() {
  OtlpRequest request;
  auto* rs = request.add_resource_spans();
  auto add = [](auto* message, const std::string& key, const std::string& value) {
    auto* kv = message->add_attributes();
    kv->set_key(key);
    kv->mutable_value()->set_string_value(value);
  };
  add(rs->mutable_resource(), "service.name", "batch");
  add(rs->mutable_resource(), "tracekeep.client", "shop-api");  // forged
  auto* ss = rs->add_scope_spans();
  otlp_trace::Span* forged = AddSpan(ss, std::string(16, '\x01'), std::string(8, '\x01'));
  add(forged, "order.id", "o-1");
  add(forged, "tracekeep.client", "shop-api");  // forged on the span too
  add(forged, "http.route", "/pay");
  forged->set_name("forged-op");
  otlp_trace::Span* honest = AddSpan(ss, std::string(16, '\x01'), std::string(8, '\x02'));
  add(honest, "order.id", "o-1");
  // A second resource without any client attribute of its own.
  AddSpan(request.add_resource_spans()->add_scope_spans(), std::string(16, '\x02'),
          std::string(8, '\x03'));
  return request;
}

// The (last) string value of `key` among the attributes of a message, "<none>" when absent, and
// how many attributes have the key.
template <typename Message>
std::pair<std::string, int> ValueOf(const Message& m, const std::string& key) {
  std::pair<std::string, int> found{"<none>", 0};
  for (const auto& kv : m.attributes()) {
    if (kv.key() != key) continue;
    found.first = kv.value().string_value();
    ++found.second;
  }
  return found;
}

void ExpectStamped(const SplitResult& split, const OtlpRequest& request) {
  ASSERT_EQ(split.traces.size(), 2u);
  ASSERT_EQ(split.traces[0].spans.size(), 2u);
  for (const auto* rec : {&split.traces[0].spans[0], &split.traces[1].spans[0]}) {
    opentelemetry::proto::resource::v1::Resource resource;
    ASSERT_TRUE(resource.ParseFromString(rec->origin->resource));
    EXPECT_EQ(ValueOf(resource, "tracekeep.client"), std::make_pair(std::string("batch-job"), 1));
  }
  EXPECT_EQ(split.traces[0].spans[0].origin->service_name, "batch");
  const SpanRecord& forged = split.traces[0].spans[0];
  otlp_trace::Span span;
  ASSERT_TRUE(span.ParseFromString(forged.span));
  EXPECT_EQ(ValueOf(span, "tracekeep.client").second, 0) << "the forged span attribute is gone";
  EXPECT_EQ(ValueOf(span, "order.id").first, "o-1");
  EXPECT_EQ(ValueOf(span, "http.route").first, "/pay");
  EXPECT_EQ(span.name(), "forged-op");
  const SpanRecord& honest = split.traces[0].spans[1];
  EXPECT_EQ(honest.span, request.resource_spans(0).scope_spans(0).spans(1).SerializeAsString())
      << "a span without the key keeps its bytes";
}

TEST(OtlpConvertWireTest, PutsTheClientsNameOnEveryResourceAndRemovesForgedValues) {
  const OtlpRequest request = ForgedRequest();
  WireSplitOptions options;
  options.key_attribute = "order.id";
  absl::StatusOr<SplitResult> split =
      SplitWireRequest(request.SerializeAsString(), options, {"tracekeep.client", "batch-job"});
  ASSERT_TRUE(split.ok()) << split.status();
  ExpectStamped(*split, request);
  // The stripped span's fields point into its new bytes.
  const SpanRecord& forged = split->traces[0].spans[0];
  ASSERT_TRUE(forged.fields_known);
  EXPECT_EQ(forged.name(), "forged-op");
  ASSERT_EQ(forged.key_size, 3u);
  EXPECT_EQ(forged.span.substr(forged.key_offset, forged.key_size), "o-1");

  // Without a client attribute nothing changes.
  absl::StatusOr<SplitResult> plain = SplitWireRequest(request.SerializeAsString(), options);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->traces[0].spans[0].origin->resource,
            request.resource_spans(0).resource().SerializeAsString());
  EXPECT_EQ(plain->traces[0].spans[0].span,
            request.resource_spans(0).scope_spans(0).spans(0).SerializeAsString());
}

// A forged attribute in a form no SDK writes is removed too: the value before the key, and a
// KeyValue whose key field occurs twice (the last one is the key, as protobuf reads it).
TEST(OtlpConvertWireTest, RemovesForgedValuesInUnusualForms) {
  auto field = [](uint32_t number, const std::string& bytes) {
    std::string out;
    wire::PutVarint((uint64_t{number} << 3) | wire::kLengthDelimited, &out);
    wire::PutVarint(bytes.size(), &out);
    return out + bytes;
  };
  const std::string value = field(2, field(1, "shop-api"));  // KeyValue.value{string_value}
  otlp_trace::Span span;
  span.set_trace_id(std::string(16, '\x01'));
  span.set_span_id(std::string(8, '\x01'));
  span.set_name("op");
  const std::string base = span.SerializeAsString();
  const std::string value_first = base + field(9, value + field(1, "tracekeep.client"));
  const std::string twice = base + field(9, field(1, "x") + value + field(1, "tracekeep.client"));
  const std::string not_it = base + field(9, field(1, "tracekeep.client") + value + field(1, "y"));
  const std::string forms[] = {value_first, twice, not_it};
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(i);
    const std::string request = field(1, field(2, field(2, forms[i])));
    absl::StatusOr<SplitResult> split =
        SplitWireRequest(request, {}, {"tracekeep.client", "batch-job"});
    ASSERT_TRUE(split.ok()) << split.status();
    ASSERT_EQ(split->traces.size(), 1u);
    otlp_trace::Span parsed;
    ASSERT_TRUE(parsed.ParseFromString(split->traces[0].spans[0].span));
    EXPECT_EQ(ValueOf(parsed, "tracekeep.client").second, 0);
    // The last key field names the attribute: "y" here, which stays.
    EXPECT_EQ(ValueOf(parsed, "y").second, i == 2 ? 1 : 0);
  }
}

TEST(OtlpConvertTest, PutsTheClientsNameOnEveryResourceAndRemovesForgedValues) {
  const OtlpRequest request = ForgedRequest();
  ExpectStamped(SplitRequest(request, {"tracekeep.client", "batch-job"}), request);
}

// The client's name may even be the service name: service_name follows the stamped resource.
TEST(OtlpConvertWireTest, AClientAttributeOfServiceNameSetsTheService) {
  const OtlpRequest request = ForgedRequest();
  absl::StatusOr<SplitResult> split =
      SplitWireRequest(request.SerializeAsString(), {}, {"service.name", "batch-job"});
  ASSERT_TRUE(split.ok());
  EXPECT_EQ(split->traces[0].spans[0].origin->service_name, "batch-job");
  EXPECT_EQ(
      SplitRequest(request, {"service.name", "batch-job"}).traces[0].spans[0].origin->service_name,
      "batch-job");
}

// The Kafka record of a trace is written from the span, resource and scope bytes as they are:
// the same request BuildRequest builds, with several resources and scopes, schema urls set or
// not.
// A record keeps its span id inline: 8 bytes, compared and ordered as bytes, printed as hex.
TEST(SpanIdFieldTest, KeepsEightBytesInline) {
  static_assert(sizeof(SpanRecord) == 128, "a 10-span trace's records fill jemalloc's 1,280 class");
  const std::string id("\x00\x01\xfe\xff\x10\x20\x30\x40", 8);
  SpanRecord r;
  EXPECT_TRUE(r.span_id.empty());
  r.span_id = id;
  EXPECT_EQ(r.span_id.size(), 8u);
  EXPECT_EQ(r.span_id.view(), id);
  EXPECT_EQ(std::string(r.span_id), id);
  EXPECT_EQ(r.span_id, SpanIdField(id));
  EXPECT_LT(SpanIdField(std::string(8, '\x01')), SpanIdField(std::string(8, '\x02')));
  std::ostringstream hex;
  hex << r.span_id;
  EXPECT_EQ(hex.str(), "0001feff10203040");
  r.span_id = "abc";  // another length keeps it (the store refuses it by its size)
  EXPECT_EQ(r.span_id.size(), 3u);
  r.span_id = std::string(12, 'z');  // longer: the first 8 bytes (decoders refuse such values)
  EXPECT_EQ(r.span_id.view(), std::string(8, 'z'));
}

TEST(OtlpConvertWireTest, SerializeWireRequestWritesWhatBuildRequestBuilds) {
  OtlpRequest request;
  for (int r = 0; r < 2; ++r) {
    auto* rs = request.add_resource_spans();
    if (r == 0) rs->set_schema_url("https://opentelemetry.io/schemas/1.21.0");
    auto* attr = rs->mutable_resource()->add_attributes();
    attr->set_key("service.name");
    attr->mutable_value()->set_string_value(r == 0 ? "shop-api" : "mes-api");
    for (int sc = 0; sc < 2; ++sc) {
      auto* ss = rs->add_scope_spans();
      if (sc == 1) {
        ss->mutable_scope()->set_name("lib");
        ss->set_schema_url("https://example.com/scope");
      }
      for (int i = 0; i < 3; ++i) {
        AddSpan(ss, std::string(16, static_cast<char>(i % 2 + 1)),
                std::string(7, '\x05') + static_cast<char>(r * 16 + sc * 4 + i + 1));
      }
    }
  }
  absl::StatusOr<SplitResult> split = SplitWireRequest(request.SerializeAsString());
  ASSERT_TRUE(split.ok()) << split.status();
  ASSERT_EQ(split->traces.size(), 2u);
  for (const TraceSpans& t : split->traces) {
    std::vector<const SpanRecord*> spans;
    for (const SpanRecord& s : t.spans) spans.push_back(&s);
    OtlpRequest built;
    BuildRequest(spans, &built);
    OtlpRequest written;
    ASSERT_TRUE(written.ParseFromString(SerializeWireRequest(spans)));
    EXPECT_EQ(written.SerializeAsString(), built.SerializeAsString());
    EXPECT_EQ(written.resource_spans_size(), 2);
  }
  EXPECT_TRUE(SerializeWireRequest({}).empty());
}

}  // namespace
}  // namespace tracekeep
