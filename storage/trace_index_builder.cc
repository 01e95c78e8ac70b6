#include "storage/trace_index_builder.h"

#include <algorithm>

#include "storage/keys.h"

namespace tracekeep::storage {
namespace {

// OTLP field numbers of the attributes of a Resource and of an InstrumentationScope.
constexpr uint32_t kResourceAttributes = 1;
constexpr uint32_t kScopeAttributes = 3;

bool Earlier(int64_t a, int64_t b) { return keys::KeyTime(a) < keys::KeyTime(b); }

}  // namespace

TraceIndexBuilder::TraceIndexBuilder(AttributeKeys attribute_keys, bool query_indexes)
    : attribute_keys_(std::move(attribute_keys)), query_indexes_(query_indexes) {}

void TraceIndexBuilder::StartBatch() { origin_attributes_.clear(); }

void TraceIndexBuilder::Summary::Add(const SpanRecord& span, bool first) {
  const int64_t duration = std::max<int64_t>(span.end_unix_nanos - span.start_unix_nanos, 0);
  if (first) {
    start = span.start_unix_nanos;
    summary.known = true;
    summary.has_error = span.is_error;
    summary.min_duration_nanos = duration;
    summary.max_duration_nanos = duration;
    return;
  }
  if (Earlier(span.start_unix_nanos, start)) start = span.start_unix_nanos;
  summary.has_error = summary.has_error || span.is_error;
  summary.min_duration_nanos = std::min(summary.min_duration_nanos, duration);
  summary.max_duration_nanos = std::max(summary.max_duration_nanos, duration);
}

const std::vector<std::pair<absl::string_view, std::string>>& TraceIndexBuilder::OriginAttributes(
    const SpanOrigin& origin) {
  auto [it, inserted] = origin_attributes_.try_emplace(&origin);
  if (inserted) {
    ReadAttributes(origin.resource, kResourceAttributes, attribute_keys_, &it->second);
    ReadAttributes(origin.scope, kScopeAttributes, attribute_keys_, &it->second);
  }
  return it->second;
}

void TraceIndexBuilder::Build(const KeptTrace& trace, Put put) {
  static const SpanOrigin* const kNoOrigin = new SpanOrigin();
  services_.clear();
  operations_.clear();
  attributes_.clear();
  service_of_span_.clear();
  parents_.clear();
  edges_.clear();
  const absl::string_view trace_id = trace.trace_id;

  for (const SpanRecord& span : trace.spans) {
    const SpanOrigin& origin = span.origin ? *span.origin : *kNoOrigin;
    const absl::string_view service = origin.service_name;
    {
      auto [it, inserted] = services_.try_emplace(service);
      it->second.Add(span, inserted);
    }
    if (!query_indexes_) continue;

    fields_.attributes.clear();
    fields_.name = {};
    fields_.kind = 0;
    fields_.parent_span_id = {};
    (void)ReadSpanFields(span.span, attribute_keys_, &fields_);  // a broken span: what was read
    {
      auto [it, inserted] = operations_.try_emplace({service, fields_.kind, fields_.name});
      it->second.Add(span, inserted);
    }
    auto add_attribute = [&](absl::string_view key, const std::string& value) {
      auto [it, inserted] = attributes_.try_emplace({service, key, value}, span.start_unix_nanos);
      if (!inserted && Earlier(span.start_unix_nanos, it->second)) {
        it->second = span.start_unix_nanos;
      }
    };
    for (const auto& [key, value] : fields_.attributes) add_attribute(key, value);
    if (!attribute_keys_.empty()) {
      for (const auto& [key, value] : OriginAttributes(origin)) add_attribute(key, value);
    }
    service_of_span_.try_emplace(span.span_id, service);
    if (!fields_.parent_span_id.empty()) parents_.emplace_back(fields_.parent_span_id, service);
  }

  for (const auto& [service, s] : services_) {
    key_.clear();
    keys::AppendServiceIndexKey(service, s.start, trace_id, &key_);
    EncodeIndexSummary(s.summary, &value_);
    put(key_, value_);
  }
  if (!query_indexes_) return;
  for (const auto& [op, s] : operations_) {
    key_ = keys::OperationPrefix(std::get<0>(op), std::get<1>(op), std::get<2>(op));
    keys::AppendIndexSuffix(s.start, trace_id, &key_);
    EncodeIndexSummary(s.summary, &value_);
    put(key_, value_);
  }
  for (const auto& [attribute, start] : attributes_) {
    key_ = keys::AttributePrefix(std::get<0>(attribute), std::get<1>(attribute),
                                 std::get<2>(attribute));
    keys::AppendIndexSuffix(start, trace_id, &key_);
    put(key_, absl::string_view());
  }
  // Calls whose parent span is in this write (as Jaeger's reference stores count them).
  int64_t start = 0;
  bool first = true;
  for (const auto& [parent_id, child_service] : parents_) {
    auto parent = service_of_span_.find(parent_id);
    if (parent == service_of_span_.end()) continue;
    ++edges_[{parent->second, child_service}];
  }
  if (edges_.empty()) return;
  for (const SpanRecord& span : trace.spans) {
    if (first || Earlier(span.start_unix_nanos, start)) start = span.start_unix_nanos;
    first = false;
  }
  std::vector<DependencyEdge> edges;
  edges.reserve(edges_.size());
  for (const auto& [edge, calls] : edges_) {
    edges.push_back(DependencyEdge{std::string(edge.first), std::string(edge.second), calls});
  }
  std::sort(edges.begin(), edges.end(), [](const DependencyEdge& a, const DependencyEdge& b) {
    return std::tie(a.parent, a.child) < std::tie(b.parent, b.child);
  });
  key_.clear();
  key_.push_back(keys::kDependencyIndexTag);
  keys::AppendIndexSuffix(start, trace_id, &key_);
  EncodeDependencies(edges, &value_);
  put(key_, value_);
}

}  // namespace tracekeep::storage
