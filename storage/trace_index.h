// The indexes the Jaeger query API searches (services, operations, traces by service, operation,
// attribute value and time, dependencies), as the span store maintains them while it writes kept
// traces (key layout in storage/keys.h).
#ifndef TRACEKEEP_STORAGE_TRACE_INDEX_H_
#define TRACEKEEP_STORAGE_TRACE_INDEX_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/span_fields.h"

namespace tracekeep::storage {

// What an index entry says about the spans it stands for (those of one service, or of one
// operation, of one trace in one write), so that a search skips traces that cannot match.
struct IndexSummary {
  bool known = false;  // false: an entry without summary (written by tracekeep 0.1)
  bool has_error = false;
  int64_t min_duration_nanos = 0;
  int64_t max_duration_nanos = 0;
};
// The value of 's' and 'o' entries: u8 version (1), u8 flags (bit 0 has_error), varint shortest
// duration, varint longest duration (nanoseconds, negative durations as 0).
void EncodeIndexSummary(const IndexSummary& summary, std::string* out);
// An empty or unknown value gives a summary with known = false.
IndexSummary DecodeIndexSummary(absl::string_view value);

// One trace an index range names.
struct TraceCandidate {
  absl::string_view trace_id;    // 16 bytes
  int64_t start_unix_nanos = 0;  // the entry's start (see keys.h)
  IndexSummary summary;          // of an 'a' entry: not known
};

// Which index range a search walks. Exactly one index is walked: the attribute's when set, else
// the operation's, else the service's.
struct TraceSearch {
  std::string service;
  std::optional<std::string> operation;  // span name, of any kind
  // An indexed attribute key and the string form of its value.
  std::optional<std::pair<std::string, std::string>> attribute;
  // Entries whose start is in [start_min, start_max] (Unix nanoseconds, inclusive).
  int64_t start_min_unix_nanos = 0;
  int64_t start_max_unix_nanos = INT64_MAX;
};

struct OperationEntry {
  std::string name;
  uint32_t kind = 0;  // OTLP SpanKind
  bool operator==(const OperationEntry& o) const { return name == o.name && kind == o.kind; }
};

struct DependencyEdge {
  std::string parent;  // service of the parent span
  std::string child;   // service of the child span
  uint64_t calls = 0;  // child spans
};
// The value of a 'd' entry: varint N, then N times lp parent, lp child, varint calls.
void EncodeDependencies(const std::vector<DependencyEdge>& edges, std::string* out);
[[nodiscard]] bool DecodeDependencies(absl::string_view value, std::vector<DependencyEdge>* out);

class TraceIndex {
 public:
  virtual ~TraceIndex() = default;

  // Every service with a stored span, sorted. One seek per service.
  [[nodiscard]] virtual absl::StatusOr<std::vector<std::string>> Services() = 0;
  // The operations (span name and kind) of `service`, sorted by kind then name; only those of
  // `kind` when set. One seek per operation.
  [[nodiscard]] virtual absl::StatusOr<std::vector<OperationEntry>> Operations(
      absl::string_view service, std::optional<uint32_t> kind) = 0;
  // Calls `fn` for each trace the search's index range names, newest entry first, each trace
  // once, until `fn` returns false or the range ends.
  [[nodiscard]] virtual absl::Status ScanTraces(
      const TraceSearch& search, const std::function<bool(const TraceCandidate&)>& fn) = 0;
  // Parent-service -> child-service calls summed over the entries whose start is in
  // [start, end] (Unix nanoseconds), sorted by parent then child.
  [[nodiscard]] virtual absl::StatusOr<std::vector<DependencyEdge>> Dependencies(
      int64_t start_unix_nanos, int64_t end_unix_nanos) = 0;
  // The attribute keys with an 'a' index (order.id first).
  virtual const AttributeKeys& indexed_attributes() const = 0;
};

}  // namespace tracekeep::storage

#endif  // TRACEKEEP_STORAGE_TRACE_INDEX_H_
