#include "collector/orders/span_reader.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "collector/pipeline/otlp_wire.h"
#include "opentelemetry/proto/common/v1/common.pb.h"

namespace tracekeep::orders {
namespace {

namespace common = opentelemetry::proto::common::v1;
using wire::Field;

// Field numbers of the OTLP messages read here (opentelemetry/proto/trace/v1/trace.proto).
constexpr uint32_t kSpanName = 5;
constexpr uint32_t kSpanAttributes = 9;
constexpr uint32_t kSpanEvents = 11;
constexpr uint32_t kSpanStatus = 15;
constexpr uint32_t kEventTime = 1;
constexpr uint32_t kEventName = 2;
constexpr uint32_t kEventAttributes = 3;
constexpr uint32_t kStatusMessage = 2;
constexpr uint32_t kStatusCode = 3;
constexpr uint64_t kStatusCodeError = 2;

double AsDouble(uint64_t bits) {
  double d;
  static_assert(sizeof(d) == sizeof(bits));
  std::memcpy(&d, &bits, sizeof(d));
  return d;
}

// The text of a serialized AnyValue: scalars as the tracker compares them; arrays, maps and
// bytes in protobuf's short text form (rare for order attributes).
std::string ValueText(absl::string_view any) {
  Field f;
  absl::string_view in = any;
  std::string text;
  bool scalar = false;
  while (!in.empty() && wire::NextField(&in, &f)) {
    switch (f.number) {
      case 1:  // string_value
        text = std::string(f.bytes);
        scalar = true;
        break;
      case 2:  // bool_value
        text = f.varint != 0 ? "true" : "false";
        scalar = true;
        break;
      case 3:  // int_value
        text = absl::StrCat(static_cast<int64_t>(f.varint));
        scalar = true;
        break;
      case 4:  // double_value
        text = absl::StrCat(AsDouble(f.varint));
        scalar = true;
        break;
      default:
        scalar = false;
        break;
    }
  }
  if (scalar || any.empty()) return text;
  common::AnyValue v;
  if (!v.ParseFromArray(any.data(), static_cast<int>(any.size()))) return "";
  return v.ShortDebugString();
}

// Reads a KeyValue: its key and the serialized AnyValue.
bool ReadKeyValue(absl::string_view kv, absl::string_view* key, absl::string_view* value) {
  *key = {};
  *value = {};
  return wire::ForEachField(kv, [&](const Field& f) {
    if (f.type != wire::kLengthDelimited) return true;
    if (f.number == 1) *key = f.bytes;
    if (f.number == 2) *value = f.bytes;
    return true;
  });
}

// What a list of attributes says: order id, status, invariants. The id and status point into
// the span's bytes when they are string values (the common case), else into the `*_text` copies.
struct AttributeFacts {
  bool has_order = false;
  absl::string_view order_id;
  absl::string_view status;
  std::string order_id_text;
  std::string status_text;
  std::vector<std::pair<std::string, std::string>> invariants;
};

// The value of a serialized AnyValue holding a short string value, as protobuf writes it (tag
// 0x0a, a one-byte length), without a copy; false for any other form.
bool ShortStringValue(absl::string_view any, absl::string_view* out) {
  if (any.size() < 2 || any[0] != 0x0a || static_cast<uint8_t>(any[1]) >= 0x80) return false;
  const size_t len = static_cast<uint8_t>(any[1]);
  if (len + 2 != any.size()) return false;
  *out = any.substr(2);
  return true;
}

class Attributes {
 public:
  Attributes(const OrdersConfig& config, uint64_t key_lengths)
      : config_(config), key_lengths_(key_lengths) {}

  bool Add(absl::string_view kv, AttributeFacts* out) const {
    absl::string_view key, value;
    // Most attributes are none of the order's: written as protobuf writes them (the key first,
    // shorter than 128 bytes), their key's length alone tells; the value follows the key.
    if (kv.size() >= 2 && kv[0] == 0x0a && static_cast<uint8_t>(kv[1]) < 0x80) {
      const size_t len = static_cast<uint8_t>(kv[1]);
      if (len + 2 > kv.size()) return false;
      if (len < 64 && (key_lengths_ & (uint64_t{1} << len)) == 0) return true;
      absl::string_view rest = kv.substr(len + 2);
      if (rest.size() >= 2 && rest[0] == 0x12 && static_cast<uint8_t>(rest[1]) < 0x80 &&
          static_cast<size_t>(static_cast<uint8_t>(rest[1])) + 2 == rest.size()) {
        key = kv.substr(2, len);
        value = rest.substr(2);
      } else if (!ReadKeyValue(kv, &key, &value)) {
        return false;
      }
    } else if (!ReadKeyValue(kv, &key, &value)) {
      return false;
    }
    if (key == config_.id_attribute) {
      out->has_order = true;
      if (!ShortStringValue(value, &out->order_id)) {
        out->order_id_text = ValueText(value);
        out->order_id = out->order_id_text;
      }
    } else if (key == config_.status_attribute) {
      if (!ShortStringValue(value, &out->status)) {
        out->status_text = ValueText(value);
        out->status = out->status_text;
      }
    } else if (std::find(config_.invariant_attributes.begin(), config_.invariant_attributes.end(),
                         key) != config_.invariant_attributes.end()) {
      out->invariants.emplace_back(std::string(key), ValueText(value));
    }
    return true;
  }

 private:
  const OrdersConfig& config_;
  const uint64_t key_lengths_;
};

OrderFacts* FactsFor(absl::string_view order_id, std::vector<OrderFacts>* facts) {
  for (OrderFacts& f : *facts) {
    if (f.order_id == order_id) return &f;
  }
  OrderFacts& f = facts->emplace_back();
  f.order_id = std::string(order_id);
  return &f;
}

}  // namespace

WireSplitOptions SplitOptionsFor(const OrdersConfig& config) {
  WireSplitOptions o;
  o.key_attribute = config.id_attribute;
  o.read_whole_keys.push_back(config.status_attribute);
  for (const std::string& key : config.invariant_attributes) o.read_whole_keys.push_back(key);
  o.read_whole_event_names.push_back("exception");
  if (!config.status_event.empty()) o.read_whole_event_names.push_back(config.status_event);
  return o;
}

SpanReader::SpanReader(const OrdersConfig& config)
    : config_(config),
      id_key_bit_(AttributeKeyBit(config.id_attribute.data(), config.id_attribute.size())) {
  auto add = [this](const std::string& key) {
    key_lengths_ |= key.size() < 64 ? uint64_t{1} << key.size() : 0;
  };
  add(config.id_attribute);
  add(config.status_attribute);
  for (const std::string& key : config.invariant_attributes) add(key);

  // Keys of 64 bytes and more are never skipped by length.
}

bool SpanReader::MayHaveKey(absl::string_view span) const {
  // glibc's memmem skips ahead by pairs of bytes; a search for the key's first letter stops at
  // every 'o' of the span's bytes.
  return ::memmem(span.data(), span.size(), config_.id_attribute.data(),
                  config_.id_attribute.size()) != nullptr;
}

bool SpanReader::Read(const SpanRecord& record, std::vector<OrderFacts>* out) const {
  // The receivers' filter of attribute keys answers without a look at the span's bytes; spans
  // without it (replayed from the journal) are searched for the key first.
  if ((record.attribute_keys & id_key_bit_) == 0) return false;
  if (record.attribute_keys == kAnyAttributeKey && !MayHaveKey(record.span)) return false;
  if (record.key_size != 0 && !record.is_error &&
      record.key_offset + static_cast<size_t>(record.key_size) <= record.span.size()) {
    // The receiver located the order id and the span says nothing else about the order: its
    // bytes are not read (most spans of an order's trace), unless it names a new order.
    if (!out->empty() && out->back().key_hash == record.key_hash &&
        out->back().order_id.size() == record.key_size) {
      ++out->back().spans;
      return true;
    }
    OrderFacts& f = out->emplace_back();
    f.order_id.assign(record.span, record.key_offset, record.key_size);
    f.key_hash = record.key_hash;
    return true;
  }
  const Attributes attributes(config_, key_lengths_);
  AttributeFacts span_facts;
  absl::string_view name, status_message;
  bool error = false;
  bool exception = false;
  std::vector<absl::string_view> status_events;
  const bool ok = wire::ForEachField(record.span, [&](const Field& f) {
    if (f.type != wire::kLengthDelimited) return true;
    switch (f.number) {
      case kSpanName:
        name = f.bytes;
        return true;
      case kSpanAttributes:
        return attributes.Add(f.bytes, &span_facts);
      case kSpanEvents: {
        absl::string_view event_name;
        if (!wire::ForEachField(f.bytes, [&](const Field& e) {
              if (e.number == kEventName && e.type == wire::kLengthDelimited) event_name = e.bytes;
              return true;
            })) {
          return false;
        }
        if (event_name == "exception") {
          exception = true;
        } else if (!config_.status_event.empty() && event_name == config_.status_event) {
          status_events.push_back(f.bytes);
        }
        return true;
      }
      case kSpanStatus:
        return wire::ForEachField(f.bytes, [&](const Field& s) {
          if (s.number == kStatusMessage && s.type == wire::kLengthDelimited) {
            status_message = s.bytes;
          }
          if (s.number == kStatusCode && s.type == wire::kVarint) {
            error = s.varint == kStatusCodeError;
          }
          return true;
        });
      default:
        return true;
    }
  });
  if (!ok) return false;  // undecodable span bytes name no order
  const bool names_order = span_facts.has_order && !span_facts.order_id.empty();
  if (!names_order && status_events.empty()) return false;
  const bool is_error = error || exception;
  // Most spans of an order's trace only name it: a span that says nothing more about the order
  // named by the span before it adds nothing (the caller links the trace once per order).
  if (names_order && status_events.empty() && span_facts.status.empty() &&
      span_facts.invariants.empty() && !is_error && !out->empty() &&
      out->back().order_id == span_facts.order_id) {
    ++out->back().spans;
    return true;
  }
  std::string error_detail;
  if (error) {
    error_detail = absl::StrCat("span \"", name, "\" has status ERROR");
    if (!status_message.empty()) absl::StrAppend(&error_detail, ": ", status_message);
  } else if (exception) {
    error_detail = absl::StrCat("span \"", name, "\" has an exception event");
  }
  // This span's facts, one entry per order it names, appended to `out`.
  const size_t first = out->size();
  std::vector<OrderFacts> mine;  // only when status events are read (rare)
  auto facts_for = [&](absl::string_view id) -> OrderFacts* {
    if (status_events.empty()) {
      OrderFacts& f = out->emplace_back();
      f.order_id = std::string(id);
      return &f;
    }
    return FactsFor(id, &mine);
  };

  if (names_order) {
    OrderFacts* f = facts_for(span_facts.order_id);
    if (!span_facts.status.empty()) {
      f->states.push_back({std::string(span_facts.status), record.start_unix_nanos});
    }
    f->invariants = std::move(span_facts.invariants);
  }
  for (absl::string_view event : status_events) {
    AttributeFacts ev;
    ev.order_id = span_facts.order_id;
    uint64_t time = 0;
    if (!wire::ForEachField(event, [&](const Field& e) {
          if (e.number == kEventTime && e.type == wire::kFixed64) time = e.varint;
          if (e.number == kEventAttributes && e.type == wire::kLengthDelimited) {
            return attributes.Add(e.bytes, &ev);
          }
          return true;
        })) {
      continue;
    }
    if (ev.order_id.empty()) continue;
    OrderFacts* f = FactsFor(ev.order_id, &mine);
    const int64_t t = time != 0 ? static_cast<int64_t>(time) : record.start_unix_nanos;
    if (!ev.status.empty()) f->states.push_back({std::string(ev.status), t});
    for (auto& inv : ev.invariants) f->invariants.push_back(std::move(inv));
  }
  for (OrderFacts& f : mine) out->push_back(std::move(f));
  if (out->size() == first) return false;
  for (size_t i = first; i < out->size(); ++i) {
    (*out)[i].error = is_error;
    (*out)[i].error_detail = error_detail;
    (*out)[i].key_hash = KeyValueHash((*out)[i].order_id);
  }
  return true;
}

}  // namespace tracekeep::orders
