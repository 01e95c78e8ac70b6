// Reading OTLP trace requests straight from the protobuf wire format, without building messages:
// the receivers' hot path. A request is validated as protobuf's parser would validate it
// (framing, every nested message of the OTLP schema, UTF-8 of string fields, nesting depth), and
// the fields the pipeline needs are read from the bytes.
#ifndef TRACEKEEP_COLLECTOR_PIPELINE_OTLP_WIRE_H_
#define TRACEKEEP_COLLECTOR_PIPELINE_OTLP_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tracekeep::wire {

enum WireType : uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLengthDelimited = 2,
  kStartGroup = 3,
  kEndGroup = 4,
  kFixed32 = 5,
};

// protobuf's default recursion limit: messages (and groups) nested deeper are refused.
constexpr int kMaxDepth = 100;

// Reads a base-128 varint of at most 10 bytes; false at the end of the input or past 10 bytes.
inline bool ReadVarint(absl::string_view* in, uint64_t* value) {
  uint64_t result = 0;
  for (int shift = 0; shift < 70 && !in->empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>((*in)[0]);
    in->remove_prefix(1);
    if (shift < 64) result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *value = result;
      return true;
    }
  }
  return false;
}

// Bytes of `value` as a base-128 varint.
inline size_t VarintSize(uint64_t value) {
  size_t n = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++n;
  }
  return n;
}

// Appends `value` as a base-128 varint.
inline void PutVarint(uint64_t value, std::string* out) {
  while (value >= 0x80) {
    out->push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out->push_back(static_cast<char>(value));
}

// One field as read from the wire: its number and wire type, and its value: `varint` for
// varints and fixed-width fields (little-endian), `bytes` for length-delimited ones.
struct Field {
  uint32_t number = 0;
  WireType type = kVarint;
  uint64_t varint = 0;
  absl::string_view bytes;
};

// NextField's general case (multi-byte tags and lengths, fixed-width fields, groups).
bool NextFieldSlow(absl::string_view* in, Field* field);

// Reads the next field of a message; skips groups whole (they are unknown fields to OTLP).
// False when the framing is broken: a bad tag (field number 0, wire type 6 or 7, over 5 bytes),
// a truncated value, an unmatched end-group, groups nested deeper than kMaxDepth.
// Inline for the common case of OTLP: a one-byte tag and a one-byte varint or length.
inline bool NextField(absl::string_view* in, Field* field) {
  if (in->size() >= 2) {
    const auto tag = static_cast<uint8_t>((*in)[0]);
    const auto second = static_cast<uint8_t>((*in)[1]);
    if (tag < 0x80 && (tag >> 3) != 0 && second < 0x80) {
      const uint32_t type = tag & 7;
      if (type == kLengthDelimited && second <= in->size() - 2) {
        field->number = tag >> 3;
        field->type = kLengthDelimited;
        field->bytes = absl::string_view(in->data() + 2, second);
        in->remove_prefix(2 + second);
        return true;
      }
      if (type == kVarint) {
        field->number = tag >> 3;
        field->type = kVarint;
        field->varint = second;
        field->bytes = {};
        in->remove_prefix(2);
        return true;
      }
    }
    if (tag < 0x80 && (tag >> 3) != 0 && (tag & 7) == kFixed64 && in->size() >= 9) {
      uint64_t v = 0;
      for (int i = 8; i >= 1; --i) v = (v << 8) | static_cast<uint8_t>((*in)[i]);
      field->number = tag >> 3;
      field->type = kFixed64;
      field->varint = v;
      field->bytes = {};
      in->remove_prefix(9);
      return true;
    }
  }
  return NextFieldSlow(in, field);
}

// Calls `fn(const Field&)` for every field of the message in `in`, in wire order; `fn` returns
// false to stop. False when the framing is broken or `fn` stopped.
template <typename Fn>
bool ForEachField(absl::string_view in, Fn fn) {
  Field f;
  while (!in.empty()) {
    if (!NextField(&in, &f) || !fn(static_cast<const Field&>(f))) return false;
  }
  return true;
}

// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF),
// as protobuf requires of proto3 string fields.
bool IsValidUtf8(absl::string_view s);

// Checks that `wire` is a valid serialized opentelemetry.proto.collector.trace.v1.
// ExportTraceServiceRequest: the inputs protobuf's parser accepts, this accepts. The error
// (kInvalidArgument) names the path of the first defect, e.g.
// "resource_spans[0].scope_spans[1].spans[7].attributes[2].key: invalid UTF-8 at byte 3".
absl::Status CheckExportTraceRequest(absl::string_view wire);

}  // namespace tracekeep::wire

#endif  // TRACEKEEP_COLLECTOR_PIPELINE_OTLP_WIRE_H_
