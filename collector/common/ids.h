// Trace and span identifiers: validation and hex conversion.
#ifndef TRACEKEEP_COLLECTOR_COMMON_IDS_H_
#define TRACEKEEP_COLLECTOR_COMMON_IDS_H_

#include <cstdint>
#include <string>

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

}  // namespace tracekeep

#endif  // TRACEKEEP_COLLECTOR_COMMON_IDS_H_
