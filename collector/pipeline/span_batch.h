// The units of data that move through the pipeline. The OTLP protobuf is the data model: a span
// is kept as its serialized bytes, with the few fields decisions need decoded beside it.
#ifndef TRACEKEEP_COLLECTOR_PIPELINE_SPAN_BATCH_H_
#define TRACEKEEP_COLLECTOR_PIPELINE_SPAN_BATCH_H_

#include <cstdint>
#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tracekeep {

// The resource and instrumentation scope that a group of spans arrived with. Shared, read-only,
// by every span of that group.
struct SpanOrigin {
  std::string resource;  // serialized opentelemetry.proto.resource.v1.Resource
  std::string resource_schema_url;
  std::string scope;  // serialized opentelemetry.proto.common.v1.InstrumentationScope
  std::string scope_schema_url;
  std::string service_name;  // resource attribute service.name, "" when absent
};
using SpanOriginPtr = std::shared_ptr<const SpanOrigin>;

// The bit of an attribute key in SpanRecord::attribute_keys.
inline uint64_t AttributeKeyBit(const char* key, size_t size) {
  if (size == 0) return 1;
  const auto first = static_cast<uint8_t>(key[0]);
  const auto last = static_cast<uint8_t>(key[size - 1]);
  return uint64_t{1} << ((size * 7 + first + last * 3) & 63);
}
// attribute_keys when nothing is known: any key may be there.
inline constexpr uint64_t kAnyAttributeKey = ~uint64_t{0};

// SpanRecord::key_hash of a key attribute's value (seeded per process: compare within one
// process only).
inline uint64_t KeyValueHash(absl::string_view value) { return absl::HashOf(value); }

// One span: its original bytes plus the decoded fields that sampling, storage and indexing use.
// A span id kept inline in a SpanRecord (a std::string took 32 bytes of every record). The
// receivers accept 8-byte ids only; a longer value keeps its first 8 bytes, so decoders of stored
// bytes check the length before they assign.
class SpanIdField {
 public:
  static constexpr size_t kMaxSize = 8;
  SpanIdField() = default;
  SpanIdField(absl::string_view s) { assign(s.data(), s.size()); }   // NOLINT: like a string
  SpanIdField(const std::string& s) { assign(s.data(), s.size()); }  // NOLINT
  SpanIdField(const char* s) : SpanIdField(absl::string_view(s)) {}  // NOLINT
  SpanIdField& operator=(absl::string_view s) {
    assign(s.data(), s.size());
    return *this;
  }
  SpanIdField& operator=(const std::string& s) {
    assign(s.data(), s.size());
    return *this;
  }
  SpanIdField& operator=(const char* s) { return *this = absl::string_view(s); }
  void assign(const char* data, size_t size) {
    size_ = static_cast<uint8_t>(size < kMaxSize ? size : kMaxSize);
    if (size_ > 0) std::memcpy(bytes_, data, size_);
  }
  operator absl::string_view() const { return absl::string_view(bytes_, size_); }  // NOLINT
  explicit operator std::string() const { return std::string(bytes_, size_); }
  absl::string_view view() const { return absl::string_view(bytes_, size_); }
  const char* data() const { return bytes_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  friend bool operator==(const SpanIdField& a, const SpanIdField& b) {
    return a.view() == b.view();
  }
  friend bool operator!=(const SpanIdField& a, const SpanIdField& b) { return !(a == b); }
  friend bool operator<(const SpanIdField& a, const SpanIdField& b) { return a.view() < b.view(); }
  template <typename H>
  friend H AbslHashValue(H h, const SpanIdField& id) {
    return H::combine(std::move(h), id.view());
  }
  friend std::ostream& operator<<(std::ostream& os, const SpanIdField& id) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (char c : id.view()) os << kHex[(c >> 4) & 0xf] << kHex[c & 0xf];
    return os;
  }

 private:
  char bytes_[kMaxSize] = {};
  uint8_t size_ = 0;
};

struct SpanRecord {
  SpanOriginPtr origin;
  // Serialized opentelemetry.proto.trace.v1.Span. Empty while `in_journal_only`.
  std::string span;
  int64_t start_unix_nanos = 0;
  int64_t end_unix_nanos = 0;
  // Where the intake journal keeps a copy of `span`: the segment, and the offset of the bytes in
  // its file (0: not journaled); journal_size is their length.
  uint64_t journal_offset = 0;
  uint32_t journal_segment = 0;
  uint32_t journal_size = 0;
  // With `fields_known`: where the span's name is in `span` (name_offset, name_size), its kind
  // (Span.SpanKind) and status code (Status.StatusCode), as the protobuf receivers read them.
  uint32_t name_offset = 0;
  // A filter of the keys of the span's attributes and of its events' attributes, and of its
  // events' names: the bits AttributeKeyBit of each (others may be set too). A key or event name
  // whose bit is clear is not there. The receivers fill it; kAnyAttributeKey when unknown.
  uint64_t attribute_keys = kAnyAttributeKey;
  // The value of the span's key attribute (WireSplitOptions::key_attribute, e.g. order.id), when
  // the receiver found it only as a string value: its place in `span` and KeyValueHash of it.
  // key_size == 0: not looked for, not there, longer than 65535 bytes, or in another form (read
  // the span).
  uint64_t key_hash = 0;
  uint32_t key_offset = 0;
  // 16 bits, beside name_size, the span id inline and the 32-bit journal segment: the record is
  // 128 bytes, and a 10-span trace's records take one 1,280-byte allocation (jemalloc's class)
  // instead of 1,536 for 152-byte records.
  uint16_t key_size = 0;
  uint16_t name_size = 0;
  SpanIdField span_id;  // 8 bytes
  uint8_t kind = 0;
  uint8_t status_code = 0;
  bool fields_known = false;  // name_offset, name_size, kind and status_code are filled
  bool is_error = false;      // status.code == STATUS_CODE_ERROR
  bool is_root = false;       // no parent span id
  // `span` was released to save memory while the span is pending: its bytes are only in the
  // journal (see SpanBytesReader).
  bool in_journal_only = false;

  // The span's name when fields_known (a view into `span`).
  absl::string_view name() const { return absl::string_view(span).substr(name_offset, name_size); }

  // Serialized size of the span, whether its bytes are in memory or only in the journal.
  size_t size() const { return in_journal_only ? journal_size : span.size(); }
  // Releases `span` when the journal has a copy (the bytes are read back by SpanBytesReader).
  void ReleaseJournaledBytes() {
    if (journal_offset == 0 || in_journal_only) return;
    journal_size = static_cast<uint32_t>(span.size());
    std::string().swap(span);
    in_journal_only = true;
  }
};

// Whether some span of `spans` has its bytes only in the journal.
inline bool AnyInJournalOnly(const std::vector<SpanRecord>& spans) {
  for (const SpanRecord& s : spans) {
    if (s.in_journal_only) return true;
  }
  return false;
}

// Where the intake journal keeps a durable copy of a batch of spans: the record's segment, offset
// and size. size == 0: not journaled.
struct JournalRef {
  uint64_t segment = 0;
  uint64_t offset = 0;
  uint32_t size = 0;
  // For one trace of the record (0: unknown, the whole record is read): where its spans are in
  // the record, and where the record's resources and scopes end (offsets from the record's
  // start), so that reading the trace back reads those two parts, not the whole request.
  uint32_t origins_end = 0;
  uint32_t trace_offset = 0;
  uint32_t trace_size = 0;
  // The same record (whichever trace of it).
  bool operator==(const JournalRef& o) const {
    return segment == o.segment && offset == o.offset && size == o.size;
  }
};

// Reads back spans that were released from memory while the intake journal keeps them.
class SpanBytesReader {
 public:
  virtual ~SpanBytesReader() = default;
  // Fills `span` of every record of `spans` that is in_journal_only (and clears the flag); the
  // others are left as they are. On an error, the records that could not be read stay
  // in_journal_only and the status says why.
  [[nodiscard]] virtual absl::Status ReadSpanBytes(std::vector<SpanRecord>* spans) = 0;
  // Appends to `out` every span of trace `trace_id` in the journal records `refs` (each record
  // once), with its bytes, times, span id, status flags and resource. The fields the receivers
  // decode beside the bytes (SpanRecord::fields_known, attribute_keys, the key attribute) are
  // not filled. On an error nothing is appended and the status says why.
  [[nodiscard]] virtual absl::Status ReadTraceSpans(const std::vector<JournalRef>& refs,
                                                    absl::string_view trace_id,
                                                    std::vector<SpanRecord>* out) = 0;
};

// Spans of one trace that arrived in one request.
struct TraceSpans {
  std::string trace_id;  // 16 bytes, valid (checked by the receiver)
  uint64_t hash = 0;     // TraceIdHash(trace_id): shard routing and consistent sampling
  std::vector<SpanRecord> spans;
  // When tracekeep accepted these spans (Unix nanoseconds); 0 = when the sampler takes them.
  // Decision timers count from it, and the journal keeps a batch until the traces that arrived
  // with it are decided.
  int64_t arrival_unix_nanos = 0;
  // Replayed from the intake journal after a restart: these spans may have been handed on
  // before the crash (the sampler then skips those already stored).
  bool replayed = false;
  // Business keys (order ids) the sampler's hook linked these spans to; the sampler keeps them
  // with the pending trace and gives them back to the hook at the decision.
  std::vector<std::string> linked_keys;
  // The journal record these spans arrived in (the same for every trace of the request).
  JournalRef journal_ref;
};

// A trace the sampler decided to keep, with every span it buffered.
struct KeptTrace {
  std::string trace_id;
  std::string policy;  // name of the policy that kept it
  std::vector<SpanRecord> spans;
};
using KeptTraces = std::vector<KeptTrace>;

}  // namespace tracekeep

#endif  // TRACEKEEP_COLLECTOR_PIPELINE_SPAN_BATCH_H_
