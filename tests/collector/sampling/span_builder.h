// Builds pending traces out of real serialized OTLP spans, for the policy tests.
#ifndef TRACEKEEP_TESTS_COLLECTOR_SAMPLING_SPAN_BUILDER_H_
#define TRACEKEEP_TESTS_COLLECTOR_SAMPLING_SPAN_BUILDER_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "collector/common/ids.h"
#include "collector/sampling/policy.h"
#include "opentelemetry/proto/resource/v1/resource.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"
#include "tests/collector/sampling/test_util.h"

namespace tracekeep::sampling {

namespace otlp = ::opentelemetry::proto;

inline void SetAttr(google::protobuf::RepeatedPtrField<otlp::common::v1::KeyValue>* attrs,
                    const std::string& key, const std::string& value) {
  auto* kv = attrs->Add();
  kv->set_key(key);
  kv->mutable_value()->set_string_value(value);
}
inline void SetAttr(google::protobuf::RepeatedPtrField<otlp::common::v1::KeyValue>* attrs,
                    const std::string& key, int64_t value) {
  auto* kv = attrs->Add();
  kv->set_key(key);
  kv->mutable_value()->set_int_value(value);
}
inline void SetAttr(google::protobuf::RepeatedPtrField<otlp::common::v1::KeyValue>* attrs,
                    const std::string& key, double value) {
  auto* kv = attrs->Add();
  kv->set_key(key);
  kv->mutable_value()->set_double_value(value);
}
inline void SetAttr(google::protobuf::RepeatedPtrField<otlp::common::v1::KeyValue>* attrs,
                    const std::string& key, bool value) {
  auto* kv = attrs->Add();
  kv->set_key(key);
  kv->mutable_value()->set_bool_value(value);
}

// Accumulates spans of one trace; Build() yields the PendingTrace the buffer would hold.
class TraceBuilder {
 public:
  explicit TraceBuilder(int n = 1) {
    trace_.trace_id = TestTraceId(n);
    trace_.hash = TraceIdHash(trace_.trace_id);
    origin_ = std::make_shared<SpanOrigin>();
  }

  // Sets the resource of the spans added from now on.
  TraceBuilder& Resource(const otlp::resource::v1::Resource& resource) {
    auto origin = std::make_shared<SpanOrigin>();
    origin->resource = resource.SerializeAsString();
    origin_ = origin;
    return *this;
  }

  // Adds a span; times in ms from 0.
  TraceBuilder& Add(otlp::trace::v1::Span span, int64_t start_ms = 0, int64_t end_ms = 1) {
    span.set_trace_id(trace_.trace_id);
    span.set_span_id(std::string(8, static_cast<char>(trace_.spans.size() + 1)));
    span.set_start_time_unix_nano(start_ms * 1000000);
    span.set_end_time_unix_nano(end_ms * 1000000);
    SpanRecord& r = trace_.spans.emplace_back();
    r.origin = origin_;
    r.span = span.SerializeAsString();
    r.span_id = span.span_id();
    r.start_unix_nanos = start_ms * 1000000;
    r.end_unix_nanos = end_ms * 1000000;
    r.is_error = span.status().code() == otlp::trace::v1::Status::STATUS_CODE_ERROR;
    r.is_root = span.parent_span_id().empty();
    trace_.has_error |= r.is_error;
    trace_.has_root |= r.is_root;
    trace_.min_start_unix_nanos = std::min(trace_.min_start_unix_nanos, r.start_unix_nanos);
    trace_.max_end_unix_nanos = std::max(trace_.max_end_unix_nanos, r.end_unix_nanos);
    trace_.span_bytes += r.span.size();
    return *this;
  }

  TraceBuilder& Plain(int64_t start_ms = 0, int64_t end_ms = 1) {
    return Add(otlp::trace::v1::Span(), start_ms, end_ms);
  }
  TraceBuilder& WithStatus(otlp::trace::v1::Status::StatusCode code) {
    otlp::trace::v1::Span s;
    s.mutable_status()->set_code(code);
    return Add(std::move(s));
  }
  template <typename V>
  TraceBuilder& WithAttr(const std::string& key, V value) {
    otlp::trace::v1::Span s;
    SetAttr(s.mutable_attributes(), key, value);
    return Add(std::move(s));
  }

  PendingTrace Build() const { return trace_; }

 private:
  PendingTrace trace_;
  SpanOriginPtr origin_;
};

}  // namespace tracekeep::sampling

#endif  // TRACEKEEP_TESTS_COLLECTOR_SAMPLING_SPAN_BUILDER_H_
