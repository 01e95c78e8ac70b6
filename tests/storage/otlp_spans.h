// Span records with real OTLP bytes, for the tests of the trace indexes and the Jaeger query API.
#ifndef TRACEKEEP_TESTS_STORAGE_OTLP_SPANS_H_
#define TRACEKEEP_TESTS_STORAGE_OTLP_SPANS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "collector/pipeline/span_batch.h"
#include "opentelemetry/proto/common/v1/common.pb.h"
#include "opentelemetry/proto/resource/v1/resource.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace tracekeep::testing {

namespace otlp = ::opentelemetry::proto;

inline void AddString(google::protobuf::RepeatedPtrField<otlp::common::v1::KeyValue>* attrs,
                      const std::string& key, const std::string& value) {
  auto* kv = attrs->Add();
  kv->set_key(key);
  kv->mutable_value()->set_string_value(value);
}

// An origin of `service` with resource and scope attributes (key, string value).
inline SpanOriginPtr OtlpOrigin(
    const std::string& service,
    const std::vector<std::pair<std::string, std::string>>& resource_attributes = {},
    const std::vector<std::pair<std::string, std::string>>& scope_attributes = {}) {
  otlp::resource::v1::Resource resource;
  AddString(resource.mutable_attributes(), "service.name", service);
  for (const auto& [k, v] : resource_attributes) AddString(resource.mutable_attributes(), k, v);
  otlp::common::v1::InstrumentationScope scope;
  scope.set_name("tracekeep.test");
  scope.set_version("1.0");
  for (const auto& [k, v] : scope_attributes) AddString(scope.mutable_attributes(), k, v);
  auto origin = std::make_shared<SpanOrigin>();
  origin->resource = resource.SerializeAsString();
  origin->scope = scope.SerializeAsString();
  origin->service_name = service;
  return origin;
}

inline std::string TestTraceId(uint32_t n) {
  std::string id(16, '\x3c');
  for (int i = 0; i < 4; ++i) id[12 + i] = static_cast<char>(n >> (24 - 8 * i));
  return id;
}
inline std::string TestSpanId(uint32_t n) {
  std::string id(8, '\x5a');
  for (int i = 0; i < 4; ++i) id[4 + i] = static_cast<char>(n >> (24 - 8 * i));
  return id;
}

// Built with chained setters: SpanSpec(trace_id, 2).Parent(1).Name("charge").Kind(3).
struct SpanSpec {
  SpanSpec(std::string trace, uint32_t span_number)
      : trace_id(std::move(trace)), span(span_number) {}
  SpanSpec& Parent(uint32_t v) {
    parent = v;
    return *this;
  }
  SpanSpec& Name(std::string v) {
    name = std::move(v);
    return *this;
  }
  SpanSpec& Kind(int v) {
    kind = v;
    return *this;
  }
  SpanSpec& Start(int64_t v) {
    start = v;
    return *this;
  }
  SpanSpec& Duration(int64_t v) {
    duration = v;
    return *this;
  }
  SpanSpec& Error(bool v = true) {
    error = v;
    return *this;
  }
  SpanSpec& Attribute(std::string k, std::string v) {
    attributes.emplace_back(std::move(k), std::move(v));
    return *this;
  }
  SpanSpec& EventAttribute(std::string k, std::string v) {
    event_attributes.emplace_back(std::move(k), std::move(v));
    return *this;
  }
  SpanSpec& Padding(size_t v) {
    padding = v;
    return *this;
  }

  std::string trace_id;
  uint32_t span = 1;
  uint32_t parent = 0;  // 0: root
  std::string name = "op";
  int kind = 2;  // SERVER
  int64_t start = 0;
  int64_t duration = 1000;
  bool error = false;
  std::vector<std::pair<std::string, std::string>> attributes;
  // Events with one string attribute each: (event attribute key, value).
  std::vector<std::pair<std::string, std::string>> event_attributes;
  size_t padding = 0;  // bytes of a "padding" attribute, to make large spans
};

inline SpanRecord OtlpSpan(const SpanOriginPtr& origin, const SpanSpec& spec) {
  otlp::trace::v1::Span span;
  span.set_trace_id(spec.trace_id);
  span.set_span_id(TestSpanId(spec.span));
  if (spec.parent != 0) span.set_parent_span_id(TestSpanId(spec.parent));
  span.set_name(spec.name);
  span.set_kind(static_cast<otlp::trace::v1::Span::SpanKind>(spec.kind));
  span.set_start_time_unix_nano(static_cast<uint64_t>(spec.start));
  span.set_end_time_unix_nano(static_cast<uint64_t>(spec.start + spec.duration));
  for (const auto& [k, v] : spec.attributes) AddString(span.mutable_attributes(), k, v);
  for (const auto& [k, v] : spec.event_attributes) {
    auto* event = span.add_events();
    event->set_name("event");
    event->set_time_unix_nano(static_cast<uint64_t>(spec.start));
    AddString(event->mutable_attributes(), k, v);
  }
  if (spec.padding > 0)
    AddString(span.mutable_attributes(), "padding", std::string(spec.padding, 'p'));
  if (spec.error) span.mutable_status()->set_code(otlp::trace::v1::Status::STATUS_CODE_ERROR);
  SpanRecord record;
  record.origin = origin;
  record.span = span.SerializeAsString();
  record.span_id = span.span_id();
  record.start_unix_nanos = spec.start;
  record.end_unix_nanos = spec.start + spec.duration;
  record.is_error = spec.error;
  record.is_root = spec.parent == 0;
  return record;
}

inline KeptTraces OneTrace(const std::string& trace_id, std::vector<SpanRecord> spans) {
  KeptTraces traces(1);
  traces[0].trace_id = trace_id;
  traces[0].policy = "test";
  traces[0].spans = std::move(spans);
  return traces;
}

}  // namespace tracekeep::testing

#endif  // TRACEKEEP_TESTS_STORAGE_OTLP_SPANS_H_
