#include "collector/query/trace_search.h"

#include <algorithm>

#include "storage/span_fields.h"

namespace tracekeep::query {
namespace {

// OTLP field numbers of the attributes of a Resource and of an InstrumentationScope.
constexpr uint32_t kResourceAttributes = 1;
constexpr uint32_t kScopeAttributes = 3;

bool HasTag(const SpanRecord& span, const std::string& key, const std::string& value) {
  if (storage::SpanHasAttribute(span.span, key, value)) return true;
  if (span.origin == nullptr) return false;
  std::string got;
  if (storage::FindAttribute(span.origin->scope, kScopeAttributes, key, &got) && got == value) {
    return true;
  }
  return storage::FindAttribute(span.origin->resource, kResourceAttributes, key, &got) &&
         got == value;
}

// Whether the index summary rules the trace out (it says nothing when not known).
bool RuledOut(const storage::IndexSummary& summary, const TraceFilter& filter) {
  if (!summary.known) return false;
  if (filter.error == true && !summary.has_error) return true;
  if (filter.duration_min_nanos && summary.max_duration_nanos < *filter.duration_min_nanos) {
    return true;
  }
  if (filter.duration_max_nanos && summary.min_duration_nanos > *filter.duration_max_nanos) {
    return true;
  }
  if (filter.operation && !summary.MayHaveOperation(*filter.operation)) return true;
  return false;
}

}  // namespace

bool SpanMatches(const SpanRecord& span, const TraceFilter& filter) {
  const absl::string_view service = span.origin ? span.origin->service_name : "";
  if (service != filter.service) return false;
  if (span.start_unix_nanos < filter.start_min_unix_nanos ||
      span.start_unix_nanos > filter.start_max_unix_nanos) {
    return false;
  }
  const int64_t duration = span.end_unix_nanos - span.start_unix_nanos;
  if (filter.duration_min_nanos && duration < *filter.duration_min_nanos) return false;
  if (filter.duration_max_nanos && duration > *filter.duration_max_nanos) return false;
  if (filter.error.has_value() && span.is_error != *filter.error) return false;
  if (filter.operation.has_value()) {
    storage::SpanFields fields;
    (void)storage::ReadSpanFields(span.span, {}, &fields);
    if (fields.name != *filter.operation) return false;
  }
  for (const auto& [key, value] : filter.tags) {
    if (!HasTag(span, key, value)) return false;
  }
  return true;
}

absl::Status FindTraces(storage::SpanStore& store, storage::TraceIndex& index,
                        const TraceFilter& filter, uint64_t max_examined,
                        const std::function<bool(FoundTrace&&)>& fn, SearchStats* stats) {
  storage::TraceSearch search;
  search.service = filter.service;
  search.start_min_unix_nanos = filter.start_min_unix_nanos;
  search.start_max_unix_nanos = filter.start_max_unix_nanos;
  const storage::AttributeKeys& indexed = index.indexed_attributes();
  for (const auto& tag : filter.tags) {
    if (std::find(indexed.begin(), indexed.end(), tag.first) != indexed.end()) {
      search.attribute = tag;
      break;
    }
  }

  size_t found = 0;
  absl::Status status;
  absl::Status scanned = index.ScanTraces(search, [&](const storage::TraceCandidate& candidate) {
    if (found >= filter.limit) return false;
    if (RuledOut(candidate.summary, filter)) {
      ++stats->traces_skipped;
      return true;
    }
    if (stats->traces_examined >= max_examined) {
      stats->truncated = true;
      return false;
    }
    ++stats->traces_examined;
    absl::StatusOr<std::vector<SpanRecord>> spans = store.GetTrace(candidate.trace_id);
    if (absl::IsNotFound(spans.status())) return true;  // expired since it was indexed
    if (!spans.ok()) {
      status = spans.status();
      return false;
    }
    if (std::none_of(spans->begin(), spans->end(),
                     [&](const SpanRecord& s) { return SpanMatches(s, filter); })) {
      return true;
    }
    FoundTrace trace;
    trace.trace_id.assign(candidate.trace_id.data(), candidate.trace_id.size());
    trace.start_unix_nanos = spans->front().start_unix_nanos;
    trace.end_unix_nanos = spans->front().end_unix_nanos;
    for (const SpanRecord& s : *spans) {
      trace.start_unix_nanos = std::min(trace.start_unix_nanos, s.start_unix_nanos);
      trace.end_unix_nanos = std::max(trace.end_unix_nanos, s.end_unix_nanos);
    }
    trace.spans = *std::move(spans);
    ++found;
    return fn(std::move(trace)) && found < filter.limit;
  });
  if (!status.ok()) return status;
  return scanned;
}

}  // namespace tracekeep::query
