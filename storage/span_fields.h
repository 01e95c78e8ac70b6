// Reading the fields the trace indexes need straight from a span's OTLP bytes (no protobuf
// message is built): its name, kind, parent, status, and the attributes of chosen keys on the
// span and its events, each in Jaeger's string form. Used by the span store when it writes index
// entries and by the Jaeger query service when it checks a span against a search.
#ifndef TRACEKEEP_STORAGE_SPAN_FIELDS_H_
#define TRACEKEEP_STORAGE_SPAN_FIELDS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace tracekeep::storage {

// OTLP's Status.StatusCode value for ERROR.
inline constexpr uint64_t kStatusCodeError = 2;

// The value of an OTLP AnyValue (serialized) as a string, the way Jaeger compares search tags
// with attributes (pdata's Value.AsString): strings as they are, "true"/"false", decimal
// integers, doubles in their shortest round-trip form (ES6 number formatting), bytes in standard
// base64, arrays and key-value lists as JSON. An empty AnyValue gives "".
std::string AnyValueString(absl::string_view any_value);

// Keys whose attribute values are read (matched by exact key). Small: a linear search.
using AttributeKeys = std::vector<std::string>;

// The decoded fields of one span. Views point into the span bytes.
struct SpanFields {
  absl::string_view name;
  uint32_t kind = 0;  // OTLP SpanKind: 0 unspecified, 1 internal, 2 server, 3 client, 4
                      // producer, 5 consumer
  absl::string_view parent_span_id;
  uint64_t status_code = 0;
  // (key, string form) of every span and event attribute whose key is one of the wanted keys,
  // span attributes first; a key may repeat (events).
  std::vector<std::pair<absl::string_view, std::string>> attributes;
};

// Reads `span` (a serialized opentelemetry.proto.trace.v1.Span) into `out`, collecting the
// attributes of `keys`. False when the bytes are not a well-framed span (what was read stays).
bool ReadSpanFields(absl::string_view span, const AttributeKeys& keys, SpanFields* out);

// Appends (key, string form) of the attributes of `keys` among the repeated KeyValue field
// `field_number` of `message` (a Resource or an InstrumentationScope: field 1 / 3).
void ReadAttributes(absl::string_view message, uint32_t field_number, const AttributeKeys& keys,
                    std::vector<std::pair<absl::string_view, std::string>>* out);

// The string form of attribute `key` in the repeated KeyValue field `field_number` of `message`;
// false when absent.
bool FindAttribute(absl::string_view message, uint32_t field_number, absl::string_view key,
                   std::string* value);
// The same over a span's own attributes (field 9) and those of its events (field 11, attributes
// 3): true when one of them has `key` with string form `value`.
bool SpanHasAttribute(absl::string_view span, absl::string_view key, absl::string_view value);

// Jaeger's lowercase name of an OTLP span kind ("" for unspecified or unknown) and back (-1 for
// an unknown name).
absl::string_view SpanKindName(uint32_t kind);
int SpanKindFromName(absl::string_view name);

}  // namespace tracekeep::storage

#endif  // TRACEKEEP_STORAGE_SPAN_FIELDS_H_
