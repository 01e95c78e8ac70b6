// Builds the index entries of kept traces (storage/keys.h, storage/trace_index.h) as the span
// store writes them: the entries go into the same WriteBatch as the spans. Per trace: one service
// entry per service (with its summary) and one entry per indexed attribute value; per batch: the
// operations not yet recorded for their hour, and one dependency entry per minute of trace
// starts. Index writes cost memtable inserts at random places, so there are few per span.
#ifndef TRACEKEEP_STORAGE_TRACE_INDEX_BUILDER_H_
#define TRACEKEEP_STORAGE_TRACE_INDEX_BUILDER_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "collector/pipeline/span_batch.h"
#include "storage/span_fields.h"
#include "storage/trace_index.h"

namespace tracekeep::storage {

// What the writes of one store share: which operations were recorded for which hour (so each is
// written about once an hour, not once per trace) and the source of unique dependency keys.
// Thread-safe.
class IndexWriteState {
 public:
  // `nonce`: differs between openings of the store (dependency keys stay unique across restarts).
  explicit IndexWriteState(uint64_t nonce) : nonce_(nonce) {}
  // True the first time `key` (a hash of service, kind, name and hour, in this process) is
  // offered, and again after the memory of recorded operations was reset (it is bounded).
  bool FirstSighting(uint64_t key);
  // A unique 16-byte suffix for a dependency key.
  std::string NextDependencySuffix();

 private:
  static constexpr size_t kMaxRemembered = size_t{1} << 16;
  const uint64_t nonce_;
  std::atomic<uint64_t> sequence_{0};
  absl::Mutex mu_;
  absl::flat_hash_set<uint64_t> recorded_ ABSL_GUARDED_BY(mu_);
};

class TraceIndexBuilder {
 public:
  using Put = absl::FunctionRef<void(absl::string_view key, absl::string_view value)>;

  // `attribute_keys`: the attributes with an 'a' index. `query_indexes`: false writes only the
  // service index ('s'), as tracekeep did before the Jaeger query API. `state` must outlive the
  // builder. One builder per batch (Consume call); it keeps views into the batch's spans.
  TraceIndexBuilder(const AttributeKeys& attribute_keys, bool query_indexes,
                    IndexWriteState* state);

  // Calls `put` for the per-trace index entries of the spans of `trace` (not empty, ids checked).
  void Build(const KeptTrace& trace, Put put);
  // Calls `put` for the per-batch entries (operations, dependencies) of the traces built.
  void Finish(Put put);

 private:
  struct ServiceSummary {
    int64_t start = 0;
    IndexSummary summary;
  };
  // What is read once per origin (resource and scope) of the batch.
  struct OriginInfo {
    uint64_t service_hash = 0;
    // The attributes of the indexed keys on the resource and scope.
    std::vector<std::pair<absl::string_view, std::string>> attributes;
  };
  const OriginInfo& Origin(const SpanOrigin& origin);
  struct Operation {
    absl::string_view service;
    uint32_t kind;
    absl::string_view name;
    int64_t hour;
    absl::string_view trace_id;  // a trace that has it
    uint64_t key;                // for IndexWriteState::FirstSighting
  };

  const AttributeKeys& attribute_keys_;
  const bool query_indexes_;
  IndexWriteState* const state_;
  absl::flat_hash_map<const SpanOrigin*, OriginInfo> origins_;
  // Per batch: the operations (service, kind, name, hour) seen, once each.
  absl::flat_hash_set<uint64_t> operation_keys_;
  std::vector<Operation> operations_;
  // Per batch: (minute, parent service, child service) -> calls.
  absl::flat_hash_map<std::tuple<int64_t, absl::string_view, absl::string_view>, uint64_t> calls_;
  // Per trace, reused.
  absl::flat_hash_map<absl::string_view, ServiceSummary> services_;
  absl::flat_hash_map<std::tuple<absl::string_view, absl::string_view, std::string>, int64_t>
      attributes_;
  absl::flat_hash_map<absl::string_view, absl::string_view> service_of_span_;
  std::vector<std::pair<absl::string_view, absl::string_view>> parents_;  // (parent id, service)
  SpanFields fields_;
  std::string key_;
  std::string value_;
};

}  // namespace tracekeep::storage

#endif  // TRACEKEEP_STORAGE_TRACE_INDEX_BUILDER_H_
