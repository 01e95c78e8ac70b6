// Values of the RocksDB span store: a compact, versioned encoding of a SpanRecord and of the
// resource it refers to. Strings are varint-length-prefixed; integers are varints.
//
//   span value (spans column family), format 1:
//     u8       format version (1)
//     u8       flags: bit 0 is_error, bit 1 is_root
//     varint   start_unix_nanos (as OTLP's unsigned fixed64)
//     varint   zigzag(end_unix_nanos - start_unix_nanos)
//     fixed64  resource reference (little-endian): keys::ResourceHash of resource and schema url
//     lp       scope bytes, lp scope schema url, lp span bytes
//
//   span group value (spans column family, keys::AppendSpanGroupKey), format 2: spans of one
//   trace written together (keys, memtable inserts and index blocks per trace part instead of per
//   span: bench/store_bench.cc, 3.9 -> 2.9 us of CPU and 157 -> 147 bytes on disk per stored span)
//     u8       format version (2)
//     varint   number of spans N, then N times: lp span id, lp span value (above)
//
//   export batch value (export_queue column family), format 1:
//     u8       format version (1)
//     varint   enqueued_unix_nanos (wall clock)
//     varint   number of resources R, then R times: lp resource value (below)
//     varint   number of spans N, then N times: varint resource index (< R), lp span id,
//              lp span value (above, with resource reference 0: the index replaces it)
//
//   resource value (resources column family), format 1:
//     u8       format version (1)
//     lp       resource bytes, lp resource schema url, lp service name
//
// A span value holds everything of its SpanRecord but the origin's resource part, so it decodes
// without its key (the span id is also inside the span bytes).
#ifndef TRACEKEEP_STORAGE_SPAN_CODEC_H_
#define TRACEKEEP_STORAGE_SPAN_CODEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "collector/pipeline/span_batch.h"

namespace tracekeep::storage::codec {

// Varint (LEB128) and length-prefixed strings.
void PutVarint64(uint64_t value, std::string* out);
[[nodiscard]] bool GetVarint64(absl::string_view* input, uint64_t* value);
void PutLengthPrefixed(absl::string_view bytes, std::string* out);
[[nodiscard]] bool GetLengthPrefixed(absl::string_view* input, absl::string_view* bytes);

inline constexpr uint8_t kFormatVersion = 1;
inline constexpr uint8_t kSpanGroupFormatVersion = 2;

// A decoded span value. Views point into the encoded value.
struct SpanValue {
  bool is_error = false;
  bool is_root = false;
  int64_t start_unix_nanos = 0;
  int64_t end_unix_nanos = 0;
  uint64_t resource_ref = 0;
  absl::string_view scope;
  absl::string_view scope_schema_url;
  absl::string_view span;
};

// Replaces `out` with the encoding of `span` (whose origin may be null: empty scope).
void EncodeSpanValue(const SpanRecord& span, uint64_t resource_ref, std::string* out);
// DataLoss naming the field when `value` is truncated or of an unknown format version.
[[nodiscard]] absl::Status DecodeSpanValue(absl::string_view value, SpanValue* out);

// Replaces `out` with the start of a span group value of `spans` spans, each then appended with
// AppendToSpanGroup (`scratch` is a buffer it reuses).
void StartSpanGroup(size_t spans, std::string* out);
void AppendToSpanGroup(const SpanRecord& span, uint64_t resource_ref, std::string* scratch,
                       std::string* out);

// Calls `fn` with the id and the decoded value of every span of a value of the spans column
// family: the one span of a span value (its id is the key's: `key_span_id`), or each span of a
// span group value. DataLoss naming the field (and the group member) when `value` is corrupt or
// of an unknown format version; the spans before it were passed to `fn`.
[[nodiscard]] absl::Status ForEachStoredSpan(
    absl::string_view value, absl::string_view key_span_id,
    absl::FunctionRef<void(absl::string_view span_id, const SpanValue& span)> fn);

// A decoded resource value. Views point into the encoded value.
struct ResourceValue {
  absl::string_view resource;
  absl::string_view schema_url;
  absl::string_view service_name;
};

// Replaces `out` with the encoding of the resource part of `origin`.
void EncodeResourceValue(const SpanOrigin& origin, std::string* out);
[[nodiscard]] absl::Status DecodeResourceValue(absl::string_view value, ResourceValue* out);

// A decoded export batch: spans with their origins rebuilt (spans of one resource, scope and scope
// schema url share one SpanOrigin).
struct SpanBatchValue {
  int64_t enqueued_unix_nanos = 0;
  std::vector<SpanRecord> spans;
};

// Replaces `out` with the encoding of `spans`, enqueued at `enqueued_unix_nanos`.
void EncodeSpanBatch(const std::vector<SpanRecord>& spans, int64_t enqueued_unix_nanos,
                     std::string* out);
// DataLoss naming the field when `value` is truncated, of an unknown format version, or refers to
// a resource it does not hold.
[[nodiscard]] absl::Status DecodeSpanBatch(absl::string_view value, SpanBatchValue* out);
// Reads only the header: enqueue time and span count (the count is after the resources, so they
// are skipped, not decoded).
[[nodiscard]] absl::Status DecodeSpanBatchHeader(absl::string_view value,
                                                 int64_t* enqueued_unix_nanos, int64_t* span_count);

}  // namespace tracekeep::storage::codec

#endif  // TRACEKEEP_STORAGE_SPAN_CODEC_H_
