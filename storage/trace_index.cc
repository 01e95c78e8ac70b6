#include "storage/trace_index.h"

#include "storage/span_codec.h"

namespace tracekeep::storage {
namespace {
constexpr uint8_t kSummaryVersion = 1;
}  // namespace

void EncodeIndexSummary(const IndexSummary& summary, std::string* out) {
  out->clear();
  out->push_back(static_cast<char>(kSummaryVersion));
  out->push_back(static_cast<char>(summary.has_error ? 1 : 0));
  codec::PutVarint64(static_cast<uint64_t>(std::max<int64_t>(summary.min_duration_nanos, 0)), out);
  codec::PutVarint64(static_cast<uint64_t>(std::max<int64_t>(summary.max_duration_nanos, 0)), out);
}

IndexSummary DecodeIndexSummary(absl::string_view value) {
  IndexSummary summary;
  if (value.size() < 2 || static_cast<uint8_t>(value[0]) != kSummaryVersion) return summary;
  const bool has_error = (value[1] & 1) != 0;
  value.remove_prefix(2);
  uint64_t min = 0;
  uint64_t max = 0;
  if (!codec::GetVarint64(&value, &min) || !codec::GetVarint64(&value, &max)) return summary;
  summary.known = true;
  summary.has_error = has_error;
  summary.min_duration_nanos = static_cast<int64_t>(min);
  summary.max_duration_nanos = static_cast<int64_t>(max);
  return summary;
}

void EncodeDependencies(const std::vector<DependencyEdge>& edges, std::string* out) {
  out->clear();
  codec::PutVarint64(edges.size(), out);
  for (const DependencyEdge& e : edges) {
    codec::PutLengthPrefixed(e.parent, out);
    codec::PutLengthPrefixed(e.child, out);
    codec::PutVarint64(e.calls, out);
  }
}

bool DecodeDependencies(absl::string_view value, std::vector<DependencyEdge>* out) {
  uint64_t n = 0;
  if (!codec::GetVarint64(&value, &n)) return false;
  for (uint64_t i = 0; i < n; ++i) {
    absl::string_view parent;
    absl::string_view child;
    uint64_t calls = 0;
    if (!codec::GetLengthPrefixed(&value, &parent) || !codec::GetLengthPrefixed(&value, &child) ||
        !codec::GetVarint64(&value, &calls)) {
      return false;
    }
    out->push_back(DependencyEdge{std::string(parent), std::string(child), calls});
  }
  return value.empty();
}

}  // namespace tracekeep::storage
