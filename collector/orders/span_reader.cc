#include "collector/orders/span_reader.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace tracekeep::orders {
namespace {

namespace common = opentelemetry::proto::common::v1;
namespace trace = opentelemetry::proto::trace::v1;

std::string ValueText(const common::AnyValue& v) {
  switch (v.value_case()) {
    case common::AnyValue::kStringValue:
      return v.string_value();
    case common::AnyValue::kIntValue:
      return absl::StrCat(v.int_value());
    case common::AnyValue::kDoubleValue:
      return absl::StrCat(v.double_value());
    case common::AnyValue::kBoolValue:
      return v.bool_value() ? "true" : "false";
    default:
      return v.ShortDebugString();
  }
}

OrderFacts* FactsFor(const std::string& order_id, std::vector<OrderFacts>* facts) {
  for (OrderFacts& f : *facts) {
    if (f.order_id == order_id) return &f;
  }
  OrderFacts& f = facts->emplace_back();
  f.order_id = order_id;
  return &f;
}

}  // namespace

bool SpanReader::Read(const SpanRecord& record, std::vector<OrderFacts>* out) const {
  if (!absl::StrContains(record.span, config_.id_attribute)) return false;
  trace::Span span;
  if (!span.ParseFromString(record.span)) return false;
  std::vector<OrderFacts> facts;
  std::string order_id, status;
  std::vector<std::pair<std::string, std::string>> invariants;
  for (const common::KeyValue& kv : span.attributes()) {
    if (kv.key() == config_.id_attribute) {
      order_id = ValueText(kv.value());
    } else if (kv.key() == config_.status_attribute) {
      status = ValueText(kv.value());
    } else if (std::find(config_.invariant_attributes.begin(), config_.invariant_attributes.end(),
                         kv.key()) != config_.invariant_attributes.end()) {
      invariants.emplace_back(kv.key(), ValueText(kv.value()));
    }
  }
  bool error = span.status().code() == trace::Status::STATUS_CODE_ERROR;
  std::string error_detail;
  if (error) {
    error_detail = absl::StrCat("span \"", span.name(), "\" has status ERROR");
    if (!span.status().message().empty())
      absl::StrAppend(&error_detail, ": ", span.status().message());
  }
  if (!order_id.empty()) {
    OrderFacts* f = FactsFor(order_id, &facts);
    if (!status.empty()) f->states.push_back({status, record.start_unix_nanos});
    f->invariants = invariants;
  }
  for (const trace::Span::Event& e : span.events()) {
    if (e.name() == "exception") {
      if (!error) error_detail = absl::StrCat("span \"", span.name(), "\" has an exception event");
      error = true;
      continue;
    }
    if (config_.status_event.empty() || e.name() != config_.status_event) continue;
    std::string event_order = order_id, event_status;
    std::vector<std::pair<std::string, std::string>> event_invariants;
    for (const common::KeyValue& kv : e.attributes()) {
      if (kv.key() == config_.id_attribute) {
        event_order = ValueText(kv.value());
      } else if (kv.key() == config_.status_attribute) {
        event_status = ValueText(kv.value());
      } else if (std::find(config_.invariant_attributes.begin(), config_.invariant_attributes.end(),
                           kv.key()) != config_.invariant_attributes.end()) {
        event_invariants.emplace_back(kv.key(), ValueText(kv.value()));
      }
    }
    if (event_order.empty()) continue;
    OrderFacts* f = FactsFor(event_order, &facts);
    const int64_t t = e.time_unix_nano() != 0 ? static_cast<int64_t>(e.time_unix_nano())
                                              : record.start_unix_nanos;
    if (!event_status.empty()) f->states.push_back({event_status, t});
    for (auto& inv : event_invariants) f->invariants.push_back(std::move(inv));
  }
  if (facts.empty()) return false;
  for (OrderFacts& f : facts) {
    f.error = error;
    f.error_detail = error_detail;
    out->push_back(std::move(f));
  }
  return true;
}

void AppendStringAttribute(const std::string& key, const std::string& value, std::string* span) {
  common::KeyValue kv;
  kv.set_key(key);
  kv.mutable_value()->set_string_value(value);
  const std::string bytes = kv.SerializeAsString();
  span->push_back(static_cast<char>((9 << 3) | 2));  // field 9, length-delimited
  uint64_t n = bytes.size();
  while (n >= 0x80) {
    span->push_back(static_cast<char>((n & 0x7f) | 0x80));
    n >>= 7;
  }
  span->push_back(static_cast<char>(n));
  span->append(bytes);
}

}  // namespace tracekeep::orders
