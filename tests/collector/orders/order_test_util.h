// Builders of OTLP spans that carry order attributes, for the order tracker's tests.
#ifndef TRACEKEEP_TESTS_COLLECTOR_ORDERS_ORDER_TEST_UTIL_H_
#define TRACEKEEP_TESTS_COLLECTOR_ORDERS_ORDER_TEST_UTIL_H_

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "collector/common/ids.h"
#include "collector/pipeline/span_batch.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"
#include "tests/storage/test_store.h"

namespace tracekeep::orders {

// A 16-byte trace id whose last two bytes are `n`.
inline std::string OrderTraceId(int n) {
  std::string id(16, '\x3c');
  id[14] = static_cast<char>(n >> 8);
  id[15] = static_cast<char>(n & 0xff);
  return id;
}

struct TestSpan {
  std::string service;
  std::string order_id;
  std::string status;  // "" = none
  absl::Time time;     // span start
  std::string price;   // "" = none (order.total_price)
  bool error = false;
  bool status_as_event = false;  // record the status as an order.status_changed event
};

inline SpanRecord MakeOrderSpan(const TestSpan& t, int span_n) {
  namespace tr = opentelemetry::proto::trace::v1;
  tr::Span span;
  span.set_name("handler");
  span.set_span_id(std::string(8, static_cast<char>(span_n)));
  span.set_start_time_unix_nano(absl::ToUnixNanos(t.time));
  span.set_end_time_unix_nano(absl::ToUnixNanos(t.time + absl::Milliseconds(5)));
  auto add = [](google::protobuf::RepeatedPtrField<opentelemetry::proto::common::v1::KeyValue>* a,
                const std::string& k, const std::string& v) {
    auto* kv = a->Add();
    kv->set_key(k);
    kv->mutable_value()->set_string_value(v);
  };
  add(span.mutable_attributes(), "order.id", t.order_id);
  if (!t.price.empty()) add(span.mutable_attributes(), "order.total_price", t.price);
  if (!t.status.empty()) {
    if (t.status_as_event) {
      auto* e = span.add_events();
      e->set_name("order.status_changed");
      e->set_time_unix_nano(absl::ToUnixNanos(t.time + absl::Milliseconds(1)));
      add(e->mutable_attributes(), "order.status", t.status);
    } else {
      add(span.mutable_attributes(), "order.status", t.status);
    }
  }
  if (t.error) span.mutable_status()->set_code(tr::Status::STATUS_CODE_ERROR);
  SpanRecord r;
  auto origin = std::make_shared<SpanOrigin>();
  origin->service_name = t.service;
  r.origin = origin;
  r.span = span.SerializeAsString();
  r.span_id = span.span_id();
  r.start_unix_nanos = span.start_time_unix_nano();
  r.end_unix_nanos = span.end_time_unix_nano();
  r.is_error = t.error;
  r.is_root = true;
  return r;
}

inline TraceSpans MakeOrderTrace(int trace_n, const std::vector<TestSpan>& spans) {
  TraceSpans t;
  t.trace_id = OrderTraceId(trace_n);
  t.hash = TraceIdHash(t.trace_id);
  for (size_t i = 0; i < spans.size(); ++i) {
    t.spans.push_back(MakeOrderSpan(spans[i], static_cast<int>(trace_n * 16 + i + 1)));
  }
  return t;
}

// The value of attribute `key` of serialized span bytes, "" when absent.
inline std::string SpanAttribute(const std::string& bytes, const std::string& key) {
  opentelemetry::proto::trace::v1::Span span;
  if (!span.ParseFromString(bytes)) return "<undecodable>";
  std::string value;
  for (const auto& kv : span.attributes()) {
    if (kv.key() == key) value = kv.value().string_value();
  }
  return value;
}

using storage::TempDir;

}  // namespace tracekeep::orders

#endif  // TRACEKEEP_TESTS_COLLECTOR_ORDERS_ORDER_TEST_UTIL_H_
