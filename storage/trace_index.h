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

// What a service index entry says about the spans it stands for (those of one service in one
// trace and one write), so that a search skips traces that cannot match without reading them.
struct IndexSummary {
  bool known = false;  // false: an entry without summary (written by tracekeep 0.1)
  bool has_error = false;
  int64_t min_duration_nanos = 0;
  int64_t max_duration_nanos = 0;
  // A 64-bit Bloom filter of the span names (two bits per name); all ones when not known.
  uint64_t operation_bloom = ~uint64_t{0};

  // The bits of `name` in operation_bloom (stable across processes and versions: persisted).
  static uint64_t OperationBits(absl::string_view name) { return BitsOfHash(OperationHash(name)); }
  // The same in two steps: the 64-bit hash of a name, and its two bits.
  static uint64_t OperationHash(absl::string_view name);
  static uint64_t BitsOfHash(uint64_t h) {
    return (uint64_t{1} << (h & 63)) | (uint64_t{1} << ((h >> 6) & 63));
  }
  // False when no span of the entry is named `name`; true when one may be (~5 % false positives
  // with 10 distinct names).
  bool MayHaveOperation(absl::string_view name) const {
    const uint64_t bits = OperationBits(name);
    return (operation_bloom & bits) == bits;
  }
};
// The value of 's' entries: u8 version (2), u8 flags (bit 0 has_error), varint shortest
// duration, varint longest duration (nanoseconds, negative durations as 0), fixed64 (little
// endian) operation_bloom. Version 1 (no Bloom filter) is still read.
void EncodeIndexSummary(const IndexSummary& summary, std::string* out);
// An empty or unknown value gives a summary with known = false.
IndexSummary DecodeIndexSummary(absl::string_view value);

// One trace an index range names.
struct TraceCandidate {
  absl::string_view trace_id;    // 16 bytes
  int64_t start_unix_nanos = 0;  // the entry's start (see keys.h)
  IndexSummary summary;          // of an 'a' entry: not known
};

// Which index range a search walks: the attribute's when set, else the service's (a search by
// operation walks the service's and tests each entry's operation_bloom).
struct TraceSearch {
  std::string service;
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
inline constexpr int64_t kDependencyBucketNanos = int64_t{60} * 1000000000;
void EncodeDependencies(const std::vector<DependencyEdge>& edges, std::string* out);
[[nodiscard]] bool DecodeDependencies(absl::string_view value, std::vector<DependencyEdge>* out);

class TraceIndex {
 public:
  virtual ~TraceIndex() = default;

  // Every service with a stored span, sorted. One seek per service.
  [[nodiscard]] virtual absl::StatusOr<std::vector<std::string>> Services() = 0;
  // The operations (span name and kind) of `service`, sorted by kind then name; only those of
  // `kind` when set. One seek per operation and hour of the retention it was seen in.
  [[nodiscard]] virtual absl::StatusOr<std::vector<OperationEntry>> Operations(
      absl::string_view service, std::optional<uint32_t> kind) = 0;
  // Calls `fn` for each trace the search's index range names, newest entry first, each trace
  // once, until `fn` returns false or the range ends.
  [[nodiscard]] virtual absl::Status ScanTraces(
      const TraceSearch& search, const std::function<bool(const TraceCandidate&)>& fn) = 0;
  // Parent-service -> child-service calls summed over the traces that started in [start, end]
  // (Unix nanoseconds), to the minute: calls are kept per minute of the traces' start, and a
  // minute counts when it starts in [start rounded down to the minute, end]. Sorted by parent
  // then child.
  [[nodiscard]] virtual absl::StatusOr<std::vector<DependencyEdge>> Dependencies(
      int64_t start_unix_nanos, int64_t end_unix_nanos) = 0;
  // The attribute keys with an 'a' index (order.id first).
  virtual const AttributeKeys& indexed_attributes() const = 0;
};

}  // namespace tracekeep::storage

#endif  // TRACEKEEP_STORAGE_TRACE_INDEX_H_
