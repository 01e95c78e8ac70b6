#include "collector/exporter/retry_info.h"

#include <cstdint>

namespace tracekeep::exporter {
namespace {

// A protobuf wire-format reader over a byte range, just enough for google.rpc.Status
// {1: code, 2: message, 3: repeated Any details}, google.protobuf.Any {1: type_url, 2: value},
// google.rpc.RetryInfo {1: Duration retry_delay} and google.protobuf.Duration
// {1: int64 seconds, 2: int32 nanos}.
class WireReader {
 public:
  explicit WireReader(absl::string_view bytes) : rest_(bytes) {}

  bool done() const { return rest_.empty(); }

  // Reads the next field's number and wire type. False at the end or on malformed input.
  bool NextField(uint32_t* field, uint32_t* wire_type) {
    uint64_t tag;
    if (rest_.empty() || !ReadVarint(&tag)) return false;
    *field = static_cast<uint32_t>(tag >> 3);
    *wire_type = static_cast<uint32_t>(tag & 7);
    return *field != 0;
  }

  bool ReadVarint(uint64_t* value) {
    *value = 0;
    for (int shift = 0; shift < 64 && !rest_.empty(); shift += 7) {
      const auto byte = static_cast<uint8_t>(rest_.front());
      rest_.remove_prefix(1);
      *value |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) return true;
    }
    return false;
  }

  bool ReadBytes(absl::string_view* bytes) {
    uint64_t size;
    if (!ReadVarint(&size) || size > rest_.size()) return false;
    *bytes = rest_.substr(0, size);
    rest_.remove_prefix(size);
    return true;
  }

  // Skips the value of a field of `wire_type`. Groups (3, 4) are not used by these messages.
  bool Skip(uint32_t wire_type) {
    uint64_t ignored_varint;
    absl::string_view ignored_bytes;
    switch (wire_type) {
      case 0:
        return ReadVarint(&ignored_varint);
      case 1:
        return SkipFixed(8);
      case 2:
        return ReadBytes(&ignored_bytes);
      case 5:
        return SkipFixed(4);
      default:
        return false;
    }
  }

 private:
  bool SkipFixed(size_t n) {
    if (rest_.size() < n) return false;
    rest_.remove_prefix(n);
    return true;
  }

  absl::string_view rest_;
};

// Decodes one length-delimited submessage field `want` of `message`, the first one found.
std::optional<absl::string_view> FirstBytesField(absl::string_view message, uint32_t want) {
  WireReader r(message);
  uint32_t field, wire_type;
  while (r.NextField(&field, &wire_type)) {
    if (field == want && wire_type == 2) {
      absl::string_view bytes;
      if (!r.ReadBytes(&bytes)) return std::nullopt;
      return bytes;
    }
    if (!r.Skip(wire_type)) return std::nullopt;
  }
  return std::nullopt;
}

std::optional<absl::Duration> DecodeDuration(absl::string_view duration) {
  WireReader r(duration);
  int64_t seconds = 0;
  int64_t nanos = 0;
  uint32_t field, wire_type;
  while (r.NextField(&field, &wire_type)) {
    uint64_t v;
    if ((field == 1 || field == 2) && wire_type == 0) {
      if (!r.ReadVarint(&v)) return std::nullopt;
      if (field == 1) {
        seconds = static_cast<int64_t>(v);
      } else {
        nanos = static_cast<int32_t>(v);
      }
    } else if (!r.Skip(wire_type)) {
      return std::nullopt;
    }
  }
  if (!r.done()) return std::nullopt;
  const absl::Duration d = absl::Seconds(seconds) + absl::Nanoseconds(nanos);
  if (d < absl::ZeroDuration()) return std::nullopt;
  return d;
}

}  // namespace

std::optional<absl::Duration> RetryDelayFromStatusDetails(absl::string_view status_details) {
  WireReader status(status_details);
  uint32_t field, wire_type;
  while (status.NextField(&field, &wire_type)) {
    if (field != 3 || wire_type != 2) {
      if (!status.Skip(wire_type)) return std::nullopt;
      continue;
    }
    absl::string_view any;
    if (!status.ReadBytes(&any)) return std::nullopt;
    const std::optional<absl::string_view> type_url = FirstBytesField(any, 1);
    if (!type_url.has_value() || *type_url != kRetryInfoTypeUrl) continue;
    // An absent value or retry_delay is an empty message: a zero delay.
    const absl::string_view retry_info = FirstBytesField(any, 2).value_or("");
    return DecodeDuration(FirstBytesField(retry_info, 1).value_or(""));
  }
  return std::nullopt;
}

}  // namespace tracekeep::exporter
