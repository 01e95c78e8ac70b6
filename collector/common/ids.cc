#include "collector/common/ids.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace tracekeep {

bool IsValidId(absl::string_view id, size_t size) {
  if (id.size() != size) return false;
  for (char c : id) {
    if (c != 0) return true;
  }
  return false;
}

std::string ToHex(absl::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    const auto b = static_cast<unsigned char>(bytes[i]);
    out[2 * i] = kDigits[b >> 4];
    out[2 * i + 1] = kDigits[b & 0xf];
  }
  return out;
}

namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

absl::StatusOr<std::string> FromHex(absl::string_view hex, size_t size) {
  if (hex.size() != size * 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", hex, "\" is not ", size * 2, " hex digits (got ", hex.size(), ")"));
  }
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    const int hi = HexValue(hex[2 * i]);
    const int lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", hex, "\" has a non-hex character at position ", 2 * i + (hi < 0 ? 0 : 1)));
    }
    out[i] = static_cast<char>((hi << 4) | lo);
  }
  return out;
}

uint64_t TraceIdHash(absl::string_view trace_id) {
  // The low 8 bytes of a W3C trace id are random; mix them anyway so that non-conforming ids
  // (counters, timestamps) still spread across shards. splitmix64 finalizer over both halves.
  uint64_t hi = 0;
  uint64_t lo = 0;
  if (trace_id.size() >= 16) {
    std::memcpy(&hi, trace_id.data(), 8);
    std::memcpy(&lo, trace_id.data() + 8, 8);
  } else {
    std::memcpy(&lo, trace_id.data(), trace_id.size() < 8 ? trace_id.size() : 8);
  }
  uint64_t z = hi * 0x9e3779b97f4a7c15ULL ^ lo;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace tracekeep
