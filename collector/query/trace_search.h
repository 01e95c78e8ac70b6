// Searching kept traces the way Jaeger's query API expects (the semantics of
// jaeger.storage.v2.TraceReader.FindTraces): a trace matches when one of its spans satisfies every
// filter; results come newest first, at most `limit` of them. One index range is walked (see
// storage::TraceSearch) and each trace it names is read and checked, unless the index entry's
// summary already shows it cannot match.
#ifndef TRACEKEEP_COLLECTOR_QUERY_TRACE_SEARCH_H_
#define TRACEKEEP_COLLECTOR_QUERY_TRACE_SEARCH_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "collector/pipeline/span_batch.h"
#include "storage/span_store.h"
#include "storage/trace_index.h"

namespace tracekeep::query {

struct TraceFilter {
  std::string service;                   // required: the service of the matching span
  std::optional<std::string> operation;  // its name
  // Attributes (key, string form) the span must have: on itself, one of its events, its scope or
  // its resource. The key "error" is not among them: see `error`.
  std::vector<std::pair<std::string, std::string>> tags;
  std::optional<bool> error;         // true: status ERROR; false: any other status
  int64_t start_min_unix_nanos = 0;  // the span's start, inclusive
  int64_t start_max_unix_nanos = INT64_MAX;
  std::optional<int64_t> duration_min_nanos;  // the span's duration, inclusive
  std::optional<int64_t> duration_max_nanos;
  size_t limit = 20;
};

// One matching trace: every stored span of it, and the time it covers.
struct FoundTrace {
  std::string trace_id;
  std::vector<SpanRecord> spans;
  int64_t start_unix_nanos = 0;  // earliest span start
  int64_t end_unix_nanos = 0;    // latest span end
};

struct SearchStats {
  uint64_t traces_examined = 0;  // read from the store and checked
  uint64_t traces_skipped = 0;   // ruled out by their index summary, without a read
  bool truncated = false;        // stopped at max_examined before the index range ended
};

// Whether `span` satisfies every filter of `filter`.
bool SpanMatches(const SpanRecord& span, const TraceFilter& filter);

// Calls `fn` for each matching trace, newest first, until `filter.limit` traces were found, `fn`
// returns false, the index range ends, or `max_examined` traces were read (stats->truncated).
// Traces that disappear between index and read (retention) are skipped.
[[nodiscard]] absl::Status FindTraces(storage::SpanStore& store, storage::TraceIndex& index,
                                      const TraceFilter& filter, uint64_t max_examined,
                                      const std::function<bool(FoundTrace&&)>& fn,
                                      SearchStats* stats);

}  // namespace tracekeep::query

#endif  // TRACEKEEP_COLLECTOR_QUERY_TRACE_SEARCH_H_
