// Trace and span identifiers: validation and hex conversion.
#ifndef TRACEKEEP_COLLECTOR_COMMON_IDS_H_
#define TRACEKEEP_COLLECTOR_COMMON_IDS_H_

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tracekeep {

inline constexpr size_t kTraceIdSize = 16;
inline constexpr size_t kSpanIdSize = 8;

// True when `id` has `size` bytes and at least one of them is non-zero (the OTLP rule).
bool IsValidId(absl::string_view id, size_t size);

// Lowercase hex of arbitrary bytes.
std::string ToHex(absl::string_view bytes);

// Decodes hex (either case) of exactly `size` bytes. The error names the value.
absl::StatusOr<std::string> FromHex(absl::string_view hex, size_t size);

// A well-mixed 64-bit hash of a trace id, used for sharding and consistent sampling.
uint64_t TraceIdHash(absl::string_view trace_id);

// A trace (N = 16) or span (N = 8) id kept inline: no heap allocation for a copy (a 16-byte
// std::string does not fit its small-string buffer). Ids of another length keep their first N
// bytes and their length (the receivers accept only 16- and 8-byte ids).
template <size_t N>
struct InlineId {
  std::array<char, N> bytes{};
  uint8_t size = 0;

  static InlineId Of(absl::string_view s) {
    InlineId id;
    id.size = static_cast<uint8_t>(s.size() < N ? s.size() : N);
    if (id.size > 0) std::memcpy(id.bytes.data(), s.data(), id.size);
    return id;
  }
  absl::string_view view() const { return absl::string_view(bytes.data(), size); }
  bool operator==(const InlineId& o) const {
    return size == o.size && std::memcmp(bytes.data(), o.bytes.data(), N) == 0;
  }
  bool operator!=(const InlineId& o) const { return !(*this == o); }
  bool operator==(absl::string_view s) const { return view() == s; }
  template <typename H>
  friend H AbslHashValue(H h, const InlineId& id) {
    return H::combine(std::move(h), id.view());
  }
};
using TraceIdBytes = InlineId<kTraceIdSize>;
using SpanIdBytes = InlineId<kSpanIdSize>;

}  // namespace tracekeep

#endif  // TRACEKEEP_COLLECTOR_COMMON_IDS_H_
