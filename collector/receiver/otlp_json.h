// OTLP/JSON: the protobuf JSON mapping with the OTLP exceptions. traceId, spanId and
// parentSpanId (in spans and in span links) are hex strings, not base64; enums may be integers;
// keys may be lowerCamelCase or the proto field names; unknown fields are ignored.
#ifndef TRACEKEEP_COLLECTOR_RECEIVER_OTLP_JSON_H_
#define TRACEKEEP_COLLECTOR_RECEIVER_OTLP_JSON_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "collector/pipeline/otlp_convert.h"

namespace google::protobuf {
class Message;
}

namespace tracekeep::receiver {

// Parses an OTLP/JSON ExportTraceServiceRequest into `out` (cleared first).
// An id that is not valid hex of the right length does not fail the request: it becomes an
// invalid id so that its span alone is rejected by SplitRequest (an invalid parentSpanId makes
// the span's spanId invalid too), and `id_errors` (if not null) describes the bad values.
// Fails with kInvalidArgument, naming the problem, when the JSON cannot be decoded.
[[nodiscard]] absl::Status ParseOtlpJson(absl::string_view json, OtlpRequest* out,
                                         std::string* id_errors = nullptr);

// The same for any message of the OTLP trace protos (TracesData, Span, ...). Ids are rewritten
// but not post-checked.
[[nodiscard]] absl::Status ParseOtlpJsonMessage(absl::string_view json,
                                                google::protobuf::Message* out,
                                                std::string* id_errors = nullptr);

// Prints `message` as OTLP/JSON: lowerCamelCase keys, hex ids, enums as integers, compact.
[[nodiscard]] absl::StatusOr<std::string> ToOtlpJson(const google::protobuf::Message& message);

// The id rewrites underneath, exposed for tests and benchmarks. They rewrite the string values
// of the keys traceId/trace_id, spanId/span_id and parentSpanId/parent_span_id and copy
// everything else unchanged; they do not validate the JSON (the protobuf parser does).
// Hex -> base64. Bad values become "" ("AA==" for parentSpanId) and are described in
// `id_errors` (if not null). Returns the number of bad values.
int RewriteHexIdsToBase64(absl::string_view json, std::string* out, std::string* id_errors);
// Base64 -> hex.
void RewriteBase64IdsToHex(absl::string_view json, std::string* out);

}  // namespace tracekeep::receiver

#endif  // TRACEKEEP_COLLECTOR_RECEIVER_OTLP_JSON_H_
