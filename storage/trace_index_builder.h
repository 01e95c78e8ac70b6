// Builds the index entries of a kept trace (storage/keys.h, storage/trace_index.h) as the span
// store writes it: the entries go into the same WriteBatch as the spans.
#ifndef TRACEKEEP_STORAGE_TRACE_INDEX_BUILDER_H_
#define TRACEKEEP_STORAGE_TRACE_INDEX_BUILDER_H_

#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/strings/string_view.h"
#include "collector/pipeline/span_batch.h"
#include "storage/span_fields.h"
#include "storage/trace_index.h"

namespace tracekeep::storage {

class TraceIndexBuilder {
 public:
  using Put = absl::FunctionRef<void(absl::string_view key, absl::string_view value)>;

  // `attribute_keys`: the attributes with an 'a' index. `query_indexes`: false writes only the
  // service index ('s'), as tracekeep did before the Jaeger query API.
  TraceIndexBuilder(AttributeKeys attribute_keys, bool query_indexes);

  // Forgets what it cached about the origins of the previous batch (their pointers may be reused).
  void StartBatch();
  // Calls `put` for every index entry of the spans of `trace` (not empty, ids checked).
  void Build(const KeptTrace& trace, Put put);

 private:
  struct Summary {
    int64_t start = 0;
    IndexSummary summary;
    void Add(const SpanRecord& span, bool first);
  };
  // The attributes of the indexed keys on the resource and scope of an origin.
  const std::vector<std::pair<absl::string_view, std::string>>& OriginAttributes(
      const SpanOrigin& origin);

  const AttributeKeys attribute_keys_;
  const bool query_indexes_;
  absl::flat_hash_map<const SpanOrigin*, std::vector<std::pair<absl::string_view, std::string>>>
      origin_attributes_;
  // Reused between traces.
  absl::flat_hash_map<absl::string_view, Summary> services_;
  absl::flat_hash_map<std::tuple<absl::string_view, uint32_t, absl::string_view>, Summary>
      operations_;
  absl::flat_hash_map<std::tuple<absl::string_view, absl::string_view, std::string>, int64_t>
      attributes_;
  absl::flat_hash_map<absl::string_view, absl::string_view> service_of_span_;
  std::vector<std::pair<absl::string_view, absl::string_view>> parents_;  // (parent id, service)
  absl::flat_hash_map<std::pair<absl::string_view, absl::string_view>, uint64_t> edges_;
  SpanFields fields_;
  std::string key_;
  std::string value_;
};

}  // namespace tracekeep::storage

#endif  // TRACEKEEP_STORAGE_TRACE_INDEX_BUILDER_H_
