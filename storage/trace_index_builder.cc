#include "storage/trace_index_builder.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "storage/keys.h"

namespace tracekeep::storage {
namespace {

// OTLP field numbers of the attributes of a Resource and of an InstrumentationScope.
constexpr uint32_t kResourceAttributes = 1;
constexpr uint32_t kScopeAttributes = 3;
constexpr int64_t kHourNanos = int64_t{3600} * 1000000000;

bool Earlier(int64_t a, int64_t b) { return keys::KeyTime(a) < keys::KeyTime(b); }

// The start of the bucket of `width` that holds `t` (times before 1970 fall in bucket 0).
int64_t BucketOf(int64_t t, int64_t width) { return t <= 0 ? 0 : t - t % width; }

void AddSpan(const SpanRecord& span, uint64_t name_bits, bool first, int64_t* start,
             IndexSummary* summary) {
  const int64_t duration = std::max<int64_t>(span.end_unix_nanos - span.start_unix_nanos, 0);
  if (first) {
    *start = span.start_unix_nanos;
    summary->known = true;
    summary->has_error = span.is_error;
    summary->min_duration_nanos = duration;
    summary->max_duration_nanos = duration;
    summary->operation_bloom = 0;
  } else {
    if (Earlier(span.start_unix_nanos, *start)) *start = span.start_unix_nanos;
    summary->has_error = summary->has_error || span.is_error;
    summary->min_duration_nanos = std::min(summary->min_duration_nanos, duration);
    summary->max_duration_nanos = std::max(summary->max_duration_nanos, duration);
  }
  summary->operation_bloom |= name_bits;
}

}  // namespace

bool IndexWriteState::FirstSighting(uint64_t key) {
  absl::MutexLock lock(&mu_);
  if (recorded_.size() >= kMaxRemembered) recorded_.clear();
  return recorded_.insert(key).second;
}

std::string IndexWriteState::NextDependencySuffix() {
  std::string suffix;
  keys::AppendBigEndian64(nonce_, &suffix);
  keys::AppendBigEndian64(sequence_.fetch_add(1, std::memory_order_relaxed), &suffix);
  return suffix;
}

TraceIndexBuilder::TraceIndexBuilder(const AttributeKeys& attribute_keys, bool query_indexes,
                                     IndexWriteState* state)
    : attribute_keys_(attribute_keys), query_indexes_(query_indexes), state_(state) {}

const TraceIndexBuilder::OriginInfo& TraceIndexBuilder::Origin(const SpanOrigin& origin) {
  auto [it, inserted] = origins_.try_emplace(&origin);
  if (inserted) {
    it->second.service_hash = keys::ResourceHash(origin.service_name, "service");
    ReadAttributes(origin.resource, kResourceAttributes, attribute_keys_, &it->second.attributes);
    ReadAttributes(origin.scope, kScopeAttributes, attribute_keys_, &it->second.attributes);
  }
  return it->second;
}

void TraceIndexBuilder::Build(const KeptTrace& trace, Put put) {
  static const SpanOrigin* const kNoOrigin = new SpanOrigin();
  services_.clear();
  attributes_.clear();
  service_of_span_.clear();
  parents_.clear();
  const absl::string_view trace_id = trace.trace_id;
  int64_t trace_start = 0;

  for (const SpanRecord& span : trace.spans) {
    const SpanOrigin& origin = span.origin ? *span.origin : *kNoOrigin;
    const absl::string_view service = origin.service_name;
    fields_.attributes.clear();
    fields_.name = {};
    fields_.kind = 0;
    fields_.parent_span_id = {};
    if (query_indexes_) {
      (void)ReadSpanFields(span.span, attribute_keys_, &fields_);  // a broken span: what was read
    }
    // Without the span's name read, the Bloom filter cannot rule any name out: all ones.
    const uint64_t name_hash = query_indexes_ ? IndexSummary::OperationHash(fields_.name) : 0;
    {
      auto [it, inserted] = services_.try_emplace(service);
      AddSpan(span, query_indexes_ ? IndexSummary::BitsOfHash(name_hash) : ~uint64_t{0}, inserted,
              &it->second.start, &it->second.summary);
    }
    if (&span == &trace.spans.front() || Earlier(span.start_unix_nanos, trace_start)) {
      trace_start = span.start_unix_nanos;
    }
    if (!query_indexes_) continue;

    const OriginInfo& info = Origin(origin);
    const int64_t hour = BucketOf(span.start_unix_nanos, kHourNanos);
    const uint64_t op_key = name_hash ^ (info.service_hash * 0x9e3779b97f4a7c15ULL) ^
                            (uint64_t{fields_.kind} << 56) ^
                            (static_cast<uint64_t>(hour) * 0xc2b2ae3d27d4eb4fULL);
    if (operation_keys_.insert(op_key).second) {
      operations_.push_back(Operation{service, fields_.kind, fields_.name, hour, trace_id, op_key});
    }
    auto add_attribute = [&](absl::string_view key, const std::string& value) {
      auto [it, inserted] = attributes_.try_emplace({service, key, value}, span.start_unix_nanos);
      if (!inserted && Earlier(span.start_unix_nanos, it->second)) {
        it->second = span.start_unix_nanos;
      }
    };
    for (const auto& [key, value] : fields_.attributes) add_attribute(key, value);
    for (const auto& [key, value] : info.attributes) add_attribute(key, value);
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
  for (const auto& [attribute, start] : attributes_) {
    key_ = keys::AttributePrefix(std::get<0>(attribute), std::get<1>(attribute),
                                 std::get<2>(attribute));
    keys::AppendIndexSuffix(start, trace_id, &key_);
    put(key_, absl::string_view());
  }
  // Calls whose parent span is in this write (as Jaeger's reference stores count them).
  const int64_t minute = BucketOf(trace_start, kDependencyBucketNanos);
  for (const auto& [parent_id, child_service] : parents_) {
    auto parent = service_of_span_.find(parent_id);
    if (parent != service_of_span_.end()) ++calls_[{minute, parent->second, child_service}];
  }
}

void TraceIndexBuilder::Finish(Put put) {
  if (!query_indexes_) return;
  for (const Operation& op : operations_) {
    if (!state_->FirstSighting(op.key)) continue;
    key_ = keys::OperationPrefix(op.service, op.kind, op.name);
    keys::AppendIndexSuffix(op.hour, op.trace_id, &key_);
    put(key_, absl::string_view());
  }
  // One entry per minute of trace starts in this batch.
  absl::flat_hash_map<int64_t, std::vector<DependencyEdge>> by_minute;
  for (const auto& [call, count] : calls_) {
    const auto& [minute, parent, child] = call;
    by_minute[minute].push_back(DependencyEdge{std::string(parent), std::string(child), count});
  }
  for (auto& [minute, edges] : by_minute) {
    std::sort(edges.begin(), edges.end(), [](const DependencyEdge& a, const DependencyEdge& b) {
      return std::tie(a.parent, a.child) < std::tie(b.parent, b.child);
    });
    key_.clear();
    key_.push_back(keys::kDependencyIndexTag);
    keys::AppendBigEndian64(keys::KeyTime(minute), &key_);
    key_.append(state_->NextDependencySuffix());
    EncodeDependencies(edges, &value_);
    put(key_, value_);
  }
}

}  // namespace tracekeep::storage
