// Conversions between OTLP requests and the pipeline's span records.
#ifndef TRACEKEEP_COLLECTOR_PIPELINE_OTLP_CONVERT_H_
#define TRACEKEEP_COLLECTOR_PIPELINE_OTLP_CONVERT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "collector/pipeline/span_batch.h"

namespace opentelemetry::proto::collector::trace::v1 {
class ExportTraceServiceRequest;
}
namespace opentelemetry::proto::trace::v1 {
class TracesData;
}

namespace tracekeep {

using OtlpRequest = opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;

// The result of splitting a request by trace id.
struct SplitResult {
  std::vector<TraceSpans> traces;  // one entry per distinct trace id in the request
  int64_t accepted_spans = 0;
  int64_t rejected_invalid_trace_id = 0;
  int64_t rejected_invalid_span_id = 0;
  // Describes the first few rejected spans by path and value; empty when nothing was rejected.
  std::string error_message;
  int64_t rejected() const { return rejected_invalid_trace_id + rejected_invalid_span_id; }
};

// The authenticated client of a request, as policies see it: every resource of the request gets
// the string attribute `key` = `value` (the client's name), and any attribute `key` the client
// sent itself, on the resource or on a span, is removed first, so that a client cannot pass for
// another. key "" = nothing is changed.
struct ClientAttribute {
  absl::string_view key;
  absl::string_view value;
};

// Splits a request into per-trace groups of span records (each span serialized again). Spans
// whose trace id or span id is invalid (wrong length or all zero) are counted and described,
// never returned. For OTLP/JSON, which has no protobuf bytes to slice.
SplitResult SplitRequest(const OtlpRequest& request, ClientAttribute client = {});

// The same from the serialized request alone, read straight from the wire format (no protobuf
// message is built; the protobuf receivers' path): each span's bytes are the client's own,
// unknown fields included. The request is first validated as protobuf's parser
// would validate it: kInvalidArgument naming the path of the first defect otherwise. Origins hold
// the client's bytes of the resource and scope (several occurrences of the field concatenated,
// which is how protobuf merges them).
// With options.key_attribute set, each span's SpanRecord::key_offset/key_size/key_hash locate
// the string value of that attribute (the order tracker reads it without walking the span),
// unless the span (or one of its events) also has one of read_whole_keys, or an event named in
// read_whole_event_names: such a span is to be read whole, and key_size stays 0.
struct WireSplitOptions {
  std::string key_attribute;  // "" = none
  std::vector<std::string> read_whole_keys;
  std::vector<std::string> read_whole_event_names;
};
// With client.key set, resources and spans are changed as ClientAttribute says (a span's bytes
// are then the client's minus that attribute; spans without it keep their bytes).
absl::StatusOr<SplitResult> SplitWireRequest(absl::string_view wire,
                                             const WireSplitOptions& options = {},
                                             ClientAttribute client = {});

// A serialized message without its attributes (repeated KeyValue field `attributes_field`) whose
// key is `key`, appended to `out`; false (and `out` unchanged) when it has none. Valid input
// assumed (the request was checked).
bool CopyWithoutAttribute(absl::string_view message, uint32_t attributes_field,
                          absl::string_view key, std::string* out);
// `resource` (a serialized Resource) with client.key set to client.value, as ClientAttribute
// says.
std::string StampClientAttribute(absl::string_view resource, ClientAttribute client);

// The number of spans of a serialized ExportTraceServiceRequest, from its framing only (no
// validation: a damaged request counts what could be framed).
int64_t CountWireSpans(absl::string_view wire);

// Builds one OTLP request from span records, grouping spans by their origin.
void BuildRequest(const std::vector<const SpanRecord*>& spans, OtlpRequest* out);
// The same, for whole traces.
void BuildRequest(const KeptTraces& traces, OtlpRequest* out);
// The serialized request BuildRequest would build, written straight from the bytes of the spans,
// resources and scopes (nothing is parsed): what a Kafka record holds.
std::string SerializeWireRequest(const std::vector<const SpanRecord*>& spans);

}  // namespace tracekeep

#endif  // TRACEKEEP_COLLECTOR_PIPELINE_OTLP_CONVERT_H_
