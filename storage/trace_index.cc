#include "storage/trace_index.h"

#include <algorithm>

#include "storage/keys.h"
#include "storage/span_codec.h"

namespace tracekeep::storage {
namespace {
constexpr uint8_t kSummaryVersion1 = 1;  // without operation_bloom
constexpr uint8_t kSummaryVersion = 2;
}  // namespace

uint64_t IndexSummary::OperationHash(absl::string_view name) {
  return keys::ResourceHash(name, "operation");
}

void EncodeIndexSummary(const IndexSummary& summary, std::string* out) {
  out->clear();
  out->push_back(static_cast<char>(kSummaryVersion));
  out->push_back(static_cast<char>(summary.has_error ? 1 : 0));
  codec::PutVarint64(static_cast<uint64_t>(std::max<int64_t>(summary.min_duration_nanos, 0)), out);
  codec::PutVarint64(static_cast<uint64_t>(std::max<int64_t>(summary.max_duration_nanos, 0)), out);
  uint64_t bloom = summary.operation_bloom;
  for (int i = 0; i < 8; ++i, bloom >>= 8) out->push_back(static_cast<char>(bloom & 0xff));
}

IndexSummary DecodeIndexSummary(absl::string_view value) {
  IndexSummary summary;
  if (value.size() < 2) return summary;
  const uint8_t version = static_cast<uint8_t>(value[0]);
  if (version != kSummaryVersion && version != kSummaryVersion1) return summary;
  const bool has_error = (value[1] & 1) != 0;
  value.remove_prefix(2);
  uint64_t min = 0;
  uint64_t max = 0;
  if (!codec::GetVarint64(&value, &min) || !codec::GetVarint64(&value, &max)) return summary;
  uint64_t bloom = ~uint64_t{0};
  if (version == kSummaryVersion) {
    if (value.size() < 8) return summary;
    bloom = 0;
    for (int i = 7; i >= 0; --i) bloom = (bloom << 8) | static_cast<uint8_t>(value[i]);
  }
  summary.known = true;
  summary.has_error = has_error;
  summary.min_duration_nanos = static_cast<int64_t>(min);
  summary.max_duration_nanos = static_cast<int64_t>(max);
  summary.operation_bloom = bloom;
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
