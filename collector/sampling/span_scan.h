// A small protobuf wire-format scanner for the OTLP fields that policies read: span name, status,
// trace_state and attributes, and resource attributes. The receiver keeps spans serialized; a
// policy that needs more than ids, times and status decodes it here, once per trace, at decision
// time. Views point into the scanned bytes, which must outlive them.
#ifndef TRACEKEEP_COLLECTOR_SAMPLING_SPAN_SCAN_H_
#define TRACEKEEP_COLLECTOR_SAMPLING_SPAN_SCAN_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tracekeep::sampling {

// An opentelemetry.proto.common.v1.AnyValue of a scalar kind; arrays, maps and bytes are kNone.
struct AttributeValue {
  enum class Type { kNone, kString, kBool, kInt, kDouble };
  Type type = Type::kNone;
  std::string_view string_value;
  bool bool_value = false;
  int64_t int_value = 0;
  double double_value = 0;
};

struct Attribute {
  std::string_view key;
  AttributeValue value;
};

// Span.status.code values (opentelemetry.proto.trace.v1.Status.StatusCode).
inline constexpr int kStatusUnset = 0;
inline constexpr int kStatusOk = 1;
inline constexpr int kStatusError = 2;

struct SpanFields {
  std::string_view name;
  std::string_view trace_state;
  int status_code = kStatusUnset;
};

// Decodes a serialized opentelemetry.proto.trace.v1.Span into `out`, appending its attributes to
// `attributes` (one vector can collect those of many spans). Returns false on malformed input
// (the outputs then hold what was read before the damage).
[[nodiscard]] bool ScanSpan(std::string_view span, SpanFields* out,
                            std::vector<Attribute>* attributes);

// An event of a span: its name and the range [attributes_begin, attributes_end) of its attributes
// in the vector passed to ScanSpanKindAndEvents.
struct SpanEventFields {
  std::string_view name;
  size_t attributes_begin = 0;
  size_t attributes_end = 0;
};

// Reads the kind of a serialized Span and appends its events to `events` (their attributes to
// `event_attributes`). What ottl_condition needs besides ScanSpan. False on malformed input.
[[nodiscard]] bool ScanSpanKindAndEvents(std::string_view span, int* kind,
                                         std::vector<SpanEventFields>* events,
                                         std::vector<Attribute>* event_attributes);

// Decodes the attributes of a serialized opentelemetry.proto.resource.v1.Resource.
[[nodiscard]] bool ScanResourceAttributes(std::string_view resource, std::vector<Attribute>* out);

// Appends a string attribute to a serialized Span. Protobuf merges repeated fields appended to a
// serialized message, so the span gains one entry in `attributes` (field 9) without a re-parse.
void AppendStringAttribute(std::string_view key, std::string_view value, std::string* span);

// Looks `key` up in a W3C tracestate header ("k1=v1,k2=v2"); returns false when absent.
bool TraceStateValue(std::string_view trace_state, std::string_view key, std::string_view* value);

}  // namespace tracekeep::sampling

#endif  // TRACEKEEP_COLLECTOR_SAMPLING_SPAN_SCAN_H_
