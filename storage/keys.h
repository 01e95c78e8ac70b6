// Key layout of the RocksDB span store. Every integer in a key is big-endian so that the byte order
// RocksDB sorts by is the numeric order (after Jaeger's badger spanstore/writer.go).
//
//   column family  key                                                        value
//   spans          trace_id(16) · start_unix_nanos(8) · span_id(8)            span value (codec.h)
//                  trace_id(16) · start_unix_nanos(8) · span_id(8) · sequence(8)
//                                                                             span group value
//   indexes        's' · service_name · 0x00 · start_unix_nanos(8) · trace_id(16)   summary
//                  'a' · service_name · 0x00 · key · 0x00 · value · 0x00 · start(8) · trace_id(16)
//                                                                             empty
//                  'o' · service_name · 0x00 · kind(1) · span_name · 0x00 · hour(8) · trace_id(16)
//                                                                             empty
//                  'd' · minute(8) · nonce(8) · sequence(8)                   dependency calls
//   resources      resource hash(8)                                           resource value
//
// The indexes of the Jaeger query API (collector/query). 's' (one entry per trace, service and
// write) finds the traces of a service by time and lists the services (one seek per service);
// `start` is the earliest start of the service's spans in that write, and the summary
// (trace_index.h) holds whether one of them has status ERROR, their shortest and longest
// durations and a Bloom filter of their names, so that searches by duration, error or operation
// skip traces that cannot match without reading them. 'a' (one entry per trace, service and
// indexed attribute value, e.g. order.id) finds the traces where the value (its string form) is
// on a span of that service, its events, scope or resource. 'o' records that an operation (span
// name) of a span kind was seen in an hour, once per hour (an example trace as suffix): it lists
// the operations. 'd' holds the parent-service -> child-service calls of the traces of one write
// that started in one minute. Index writes are memtable inserts at random places, the costly part
// of a store write: per trace there is one per service and indexed attribute value, per write one
// per new operation-hour and per minute.
// Spans of a trace written together are one span group value, keyed by its first span and a
// sequence number unique to the write (two writes whose first span is the same never overwrite
// each other); a span written alone has a key of its own. A prefix scan over a trace id returns
// its values; the store orders their spans by start time, then span id. A service index scan
// over [start, end) returns trace ids in time order (read backwards for newest first).
//
// Retention: every spans and indexes key carries a time at a fixed offset from one of its ends
// (SpanKeyStartTime, IndexKeyStartTime: every index key ends with start · trace_id), so time-based
// expiry (a compaction filter, or column families per time bucket holding the same keys) decides
// from the key alone, without reading values.
#ifndef TRACEKEEP_STORAGE_KEYS_H_
#define TRACEKEEP_STORAGE_KEYS_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace tracekeep::storage::keys {

inline constexpr size_t kTraceIdSize = 16;
inline constexpr size_t kSpanIdSize = 8;
inline constexpr size_t kTimeSize = 8;
inline constexpr size_t kSpanKeySize = kTraceIdSize + kTimeSize + kSpanIdSize;  // 32
inline constexpr size_t kSpanGroupKeySize = kSpanKeySize + 8;                   // 40
inline constexpr char kServiceIndexTag = 's';
inline constexpr size_t kResourceKeySize = 8;

// Appends `value` as 8 big-endian bytes.
void AppendBigEndian64(uint64_t value, std::string* out);
// Reads 8 big-endian bytes at `p`.
uint64_t DecodeBigEndian64(const char* p);

// Times in keys are OTLP's unsigned fixed64 nanoseconds: the int64 the pipeline carries is cast,
// so a (nonsensical) negative time sorts after every real one and round-trips unchanged.
inline uint64_t KeyTime(int64_t unix_nanos) { return static_cast<uint64_t>(unix_nanos); }

// ---- spans ----

// Appends the spans key. `trace_id` must have 16 bytes and `span_id` 8 (not checked here).
void AppendSpanKey(absl::string_view trace_id, int64_t start_unix_nanos, absl::string_view span_id,
                   std::string* out);
std::string SpanKey(absl::string_view trace_id, int64_t start_unix_nanos,
                    absl::string_view span_id);

// Appends the key of a span group whose first span is the one given.
void AppendSpanGroupKey(absl::string_view trace_id, int64_t start_unix_nanos,
                        absl::string_view span_id, uint64_t sequence, std::string* out);

struct SpanKeyParts {
  absl::string_view trace_id;
  int64_t start_unix_nanos = 0;
  absl::string_view span_id;  // of the group's first span, for a group key
  bool group = false;         // a span group key (kSpanGroupKeySize)
};
// False when `key` is neither a span key nor a span group key (wrong size).
[[nodiscard]] bool ParseSpanKey(absl::string_view key, SpanKeyParts* parts);
// The trace id prefix of a spans key: what a prefix scan (and the prefix bloom filter) uses.
// Requires key.size() >= 16.
inline absl::string_view SpanKeyTraceId(absl::string_view key) {
  return key.substr(0, kTraceIdSize);
}
// The start time of a spans key (of either kind), read without parsing the rest. Requires a
// spans key.
uint64_t SpanKeyStartTime(absl::string_view key);

// ---- indexes: service ----

// 's' · service · 0x00: every index key of `service` starts with it.
std::string ServiceIndexPrefix(absl::string_view service);
// Appends 's' · service · 0x00 · start(8) · trace_id(16).
void AppendServiceIndexKey(absl::string_view service, int64_t start_unix_nanos,
                           absl::string_view trace_id, std::string* out);
std::string ServiceIndexKey(absl::string_view service, int64_t start_unix_nanos,
                            absl::string_view trace_id);
// Prefix · start(8): the first (inclusive) or last (exclusive) key of a time range of a service.
std::string ServiceIndexTimeBound(absl::string_view service, uint64_t key_time);

struct ServiceIndexKeyParts {
  absl::string_view service;
  uint64_t start_time = 0;  // KeyTime of the trace's earliest span of that service in the write
  absl::string_view trace_id;
};
// Parses from the end, so a service name containing 0x00 still parses. False when malformed.
[[nodiscard]] bool ParseServiceIndexKey(absl::string_view key, ServiceIndexKeyParts* parts);
// The start time of a service index key. Requires a well-formed key.
uint64_t ServiceIndexKeyStartTime(absl::string_view key);

// ---- indexes: every kind ----

inline constexpr char kOperationIndexTag = 'o';
inline constexpr char kAttributeIndexTag = 'a';
inline constexpr char kDependencyIndexTag = 'd';
inline constexpr size_t kIndexSuffixSize = kTimeSize + kTraceIdSize;  // start · trace_id

// Appends start(8) · trace_id(16), the suffix of every index key.
void AppendIndexSuffix(int64_t start_unix_nanos, absl::string_view trace_id, std::string* out);
// Whether `key` is an index key of a known kind ('s', 'o', 'a', 'd') long enough for its suffix.
bool IsTimedIndexKey(absl::string_view key);
// The start time and trace id of an index key. Require IsTimedIndexKey(key).
uint64_t IndexKeyStartTime(absl::string_view key);
absl::string_view IndexKeyTraceId(absl::string_view key);

// ---- indexes: operations ----

// 'o' · service · 0x00: every operation entry of `service`.
std::string OperationServicePrefix(absl::string_view service);
// 'o' · service · 0x00 · kind: the operations of one span kind.
std::string OperationKindPrefix(absl::string_view service, uint32_t kind);
// 'o' · service · 0x00 · kind · name · 0x00: the entries of one operation; the index suffix
// follows.
std::string OperationPrefix(absl::string_view service, uint32_t kind, absl::string_view name);

struct OperationKeyParts {
  uint32_t kind = 0;
  absl::string_view name;
};
// Parses an operation key of `service` (whose prefix is OperationServicePrefix(service)). False
// when malformed.
[[nodiscard]] bool ParseOperationKey(absl::string_view key, absl::string_view service,
                                     OperationKeyParts* parts);

// ---- indexes: attributes ----

// 'a' · service · 0x00 · key · 0x00 · value · 0x00; the index suffix follows.
std::string AttributePrefix(absl::string_view service, absl::string_view key,
                            absl::string_view value);

// ---- resources ----

// A stable (across processes and versions) 64-bit hash of a resource and its schema url: the key
// under which the resource is stored once and by which span values refer to it.
uint64_t ResourceHash(absl::string_view resource, absl::string_view schema_url);
std::string ResourceKey(uint64_t hash);

}  // namespace tracekeep::storage::keys

#endif  // TRACEKEEP_STORAGE_KEYS_H_
