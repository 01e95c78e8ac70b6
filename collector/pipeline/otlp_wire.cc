#include "collector/pipeline/otlp_wire.h"

#include <array>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace tracekeep::wire {
namespace {

// A tag as protobuf reads it: a varint of at most 5 bytes, truncated to 32 bits; field number 0
// is invalid.
bool ReadTag(absl::string_view* in, uint32_t* tag) {
  uint32_t result = 0;
  for (int i = 0; i < 5 && !in->empty(); ++i) {
    const auto byte = static_cast<uint8_t>((*in)[0]);
    in->remove_prefix(1);
    result |= static_cast<uint32_t>(byte & 0x7f) << (7 * i);
    if ((byte & 0x80) == 0) {
      *tag = result;
      return (result >> 3) != 0;
    }
  }
  return false;
}

bool SkipGroup(absl::string_view* in, uint32_t number, int depth) {
  if (depth > kMaxDepth) return false;
  while (!in->empty()) {
    uint32_t tag = 0;
    if (!ReadTag(in, &tag)) return false;
    const uint32_t n = tag >> 3;
    uint64_t v = 0;
    switch (tag & 7) {
      case kVarint:
        if (!ReadVarint(in, &v)) return false;
        break;
      case kFixed64:
        if (in->size() < 8) return false;
        in->remove_prefix(8);
        break;
      case kFixed32:
        if (in->size() < 4) return false;
        in->remove_prefix(4);
        break;
      case kLengthDelimited:
        if (!ReadVarint(in, &v) || v > in->size()) return false;
        in->remove_prefix(v);
        break;
      case kStartGroup:
        if (!SkipGroup(in, n, depth + 1)) return false;
        break;
      case kEndGroup:
        return n == number;
      default:
        return false;
    }
  }
  return false;  // no end-group
}

}  // namespace

bool NextFieldSlow(absl::string_view* in, Field* field) {
  uint32_t tag = 0;
  if (!ReadTag(in, &tag)) return false;
  field->number = tag >> 3;
  field->type = static_cast<WireType>(tag & 7);
  field->bytes = {};
  switch (field->type) {
    case kVarint:
      return ReadVarint(in, &field->varint);
    case kFixed64:
      if (in->size() < 8) return false;
      field->varint = 0;
      for (int i = 7; i >= 0; --i) {
        field->varint = (field->varint << 8) | static_cast<uint8_t>((*in)[i]);
      }
      in->remove_prefix(8);
      return true;
    case kFixed32:
      if (in->size() < 4) return false;
      field->varint = 0;
      for (int i = 3; i >= 0; --i) {
        field->varint = (field->varint << 8) | static_cast<uint8_t>((*in)[i]);
      }
      in->remove_prefix(4);
      return true;
    case kLengthDelimited: {
      uint64_t n = 0;
      if (!ReadVarint(in, &n) || n > in->size()) return false;
      field->bytes = in->substr(0, n);
      in->remove_prefix(n);
      return true;
    }
    case kStartGroup:
      return SkipGroup(in, field->number, 1);
    default:  // an end-group without its start, or wire type 6, 7
      return false;
  }
}

bool IsValidUtf8(absl::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const uint8_t* const end = p + s.size();
  while (p < end) {
    // ASCII runs, eight bytes at a time.
    while (end - p >= 8) {
      uint64_t word;
      std::memcpy(&word, p, 8);
      if ((word & 0x8080808080808080ull) != 0) break;
      p += 8;
    }
    if (p == end) break;
    const uint8_t c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n = 0;
    uint8_t lo = 0x80, hi = 0xbf;  // bounds of the second byte
    if (c >= 0xc2 && c <= 0xdf) {
      n = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
      n = 2;
      if (c == 0xe0) lo = 0xa0;  // no overlong forms
      if (c == 0xed) hi = 0x9f;  // no surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
      n = 3;
      if (c == 0xf0) lo = 0x90;  // no overlong forms
      if (c == 0xf4) hi = 0x8f;  // nothing past U+10FFFF
    } else {
      return false;
    }
    if (end - p <= n) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (int i = 2; i <= n; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
    }
    p += n + 1;
  }
  return true;
}

namespace {

// The OTLP trace schema, as far as validation goes: for each message, the fields whose content
// protobuf checks (strings: UTF-8; messages: recursively). Other fields and fields of another
// wire type than their declaration's are unknown fields to protobuf: framing only.
enum class Kind : uint8_t { kString, kMessage };

struct Schema;
struct FieldRule {
  uint32_t number;
  Kind kind;
  const char* name;
  const Schema* message;  // for kMessage
  bool repeated;
};
struct Schema {
  const FieldRule* rules;
  size_t count;
};

extern const Schema kAnyValue;
extern const Schema kKeyValue;

constexpr FieldRule kArrayValueRules[] = {{1, Kind::kMessage, "values", &kAnyValue, true}};
const Schema kArrayValue = {kArrayValueRules, 1};
constexpr FieldRule kKeyValueListRules[] = {{1, Kind::kMessage, "values", &kKeyValue, true}};
const Schema kKeyValueList = {kKeyValueListRules, 1};
constexpr FieldRule kAnyValueRules[] = {
    {1, Kind::kString, "string_value", nullptr, false},
    {5, Kind::kMessage, "array_value", &kArrayValue, false},
    {6, Kind::kMessage, "kvlist_value", &kKeyValueList, false},
};
const Schema kAnyValue = {kAnyValueRules, 3};
constexpr FieldRule kKeyValueRules[] = {
    {1, Kind::kString, "key", nullptr, false},
    {2, Kind::kMessage, "value", &kAnyValue, false},
};
const Schema kKeyValue = {kKeyValueRules, 2};

constexpr FieldRule kResourceRules[] = {{1, Kind::kMessage, "attributes", &kKeyValue, true}};
const Schema kResource = {kResourceRules, 1};
constexpr FieldRule kScopeRules[] = {
    {1, Kind::kString, "name", nullptr, false},
    {2, Kind::kString, "version", nullptr, false},
    {3, Kind::kMessage, "attributes", &kKeyValue, true},
};
const Schema kScope = {kScopeRules, 3};

constexpr FieldRule kEventRules[] = {
    {2, Kind::kString, "name", nullptr, false},
    {3, Kind::kMessage, "attributes", &kKeyValue, true},
};
const Schema kEvent = {kEventRules, 2};
constexpr FieldRule kLinkRules[] = {
    {3, Kind::kString, "trace_state", nullptr, false},
    {4, Kind::kMessage, "attributes", &kKeyValue, true},
};
const Schema kLink = {kLinkRules, 2};
constexpr FieldRule kStatusRules[] = {{2, Kind::kString, "message", nullptr, false}};
const Schema kStatus = {kStatusRules, 1};
constexpr FieldRule kSpanRules[] = {
    {3, Kind::kString, "trace_state", nullptr, false},
    {5, Kind::kString, "name", nullptr, false},
    {9, Kind::kMessage, "attributes", &kKeyValue, true},
    {11, Kind::kMessage, "events", &kEvent, true},
    {13, Kind::kMessage, "links", &kLink, true},
    {15, Kind::kMessage, "status", &kStatus, false},
};
const Schema kSpan = {kSpanRules, 6};
constexpr FieldRule kScopeSpansRules[] = {
    {1, Kind::kMessage, "scope", &kScope, false},
    {2, Kind::kMessage, "spans", &kSpan, true},
    {3, Kind::kString, "schema_url", nullptr, false},
};
const Schema kScopeSpans = {kScopeSpansRules, 3};
constexpr FieldRule kResourceSpansRules[] = {
    {1, Kind::kMessage, "resource", &kResource, false},
    {2, Kind::kMessage, "scope_spans", &kScopeSpans, true},
    {3, Kind::kString, "schema_url", nullptr, false},
};
const Schema kResourceSpans = {kResourceSpansRules, 3};
constexpr FieldRule kRequestRules[] = {
    {1, Kind::kMessage, "resource_spans", &kResourceSpans, true}};
const Schema kRequest = {kRequestRules, 1};

bool Check(absl::string_view in, const Schema& schema, int depth, std::string* error);

// Attributes (KeyValue, AnyValue) are most of a request's fields: the same rules as Check()
// with kKeyValue (`any_value` false: 1 key, 2 value) or kAnyValue (1 string_value, 5 array_value,
// 6 kvlist_value), written out for them, without building an error. On false, Check() runs
// again on the message to describe the defect.
// The KeyValue of nearly every attribute, as protobuf writes it: a key shorter than 128 bytes,
// then a value shorter than 128 bytes holding one short string, a one-byte int or bool, or a
// double. Checks it as AttributeOk would, without the general loop: 1 valid, 0 invalid, -1 in
// another form (AttributeOk reads it).
int ShortKeyValueOk(absl::string_view in) {
  const auto* p = reinterpret_cast<const uint8_t*>(in.data());
  const size_t n = in.size();
  if (n < 4 || p[0] != 0x0a || p[1] >= 0x80) return -1;
  const size_t key_size = p[1];
  if (key_size + 4 > n || p[2 + key_size] != 0x12 || p[3 + key_size] >= 0x80) return -1;
  const size_t value_size = p[3 + key_size];
  if (key_size + 4 + value_size != n) return -1;
  const uint8_t* v = p + 4 + key_size;
  const absl::string_view key = in.substr(2, key_size);
  if (value_size >= 2 && v[0] == 0x0a && v[1] < 0x80 && size_t{v[1]} + 2 == value_size) {
    return IsValidUtf8(key) && IsValidUtf8(in.substr(n - v[1]));  // string_value
  }
  if ((value_size == 2 && (v[0] == 0x10 || v[0] == 0x18) && v[1] < 0x80) ||  // bool, int
      (value_size == 9 && v[0] == 0x21)) {                                   // double
    return IsValidUtf8(key);
  }
  return -1;
}

bool AttributeOk(absl::string_view in, int depth, bool any_value) {
  if (depth > kMaxDepth) return false;
  if (!any_value) {
    if (const int ok = ShortKeyValueOk(in); ok >= 0) return ok == 1;
  }
  Field f;
  while (!in.empty()) {
    if (!NextField(&in, &f)) return false;
    if (f.type != kLengthDelimited) continue;
    if (f.number == 1) {
      if (!IsValidUtf8(f.bytes)) return false;
    } else if (!any_value && f.number == 2) {
      if (!AttributeOk(f.bytes, depth + 1, /*any_value=*/true)) return false;
    } else if (any_value && (f.number == 5 || f.number == 6)) {
      std::string ignored;
      if (!Check(f.bytes, f.number == 5 ? kArrayValue : kKeyValueList, depth + 1, &ignored)) {
        return false;
      }
    }
  }
  return true;
}

// Validates one message; on a defect, `error` gets its description, relative to the message.
// The path is built only on the way out of a failure.
bool Check(absl::string_view in, const Schema& schema, int depth, std::string* error) {
  if (depth > kMaxDepth) {
    *error = absl::StrCat("nested deeper than ", kMaxDepth, " messages");
    return false;
  }
  std::array<uint32_t, 16> index{};  // occurrences so far of each repeated field (numbers < 16)
  Field f;
  size_t offset = 0;
  const size_t size = in.size();
  while (!in.empty()) {
    offset = size - in.size();
    if (!NextField(&in, &f)) {
      *error = absl::StrCat("broken protobuf framing at byte ", offset, " of ", size);
      return false;
    }
    if (f.type != kLengthDelimited) continue;
    const FieldRule* rule = nullptr;
    for (size_t i = 0; i < schema.count; ++i) {
      if (schema.rules[i].number == f.number) rule = &schema.rules[i];
    }
    if (rule == nullptr) continue;
    const uint32_t at = rule->repeated && f.number < index.size() ? index[f.number]++ : 0;
    auto where = [&] {
      return rule->repeated ? absl::StrCat(rule->name, "[", at, "]") : std::string(rule->name);
    };
    if (rule->kind == Kind::kString) {
      if (!IsValidUtf8(f.bytes)) {
        *error = absl::StrCat(where(), ": invalid UTF-8 in a string field");
        return false;
      }
    } else if (rule->message == &kKeyValue && AttributeOk(f.bytes, depth + 1, false)) {
      continue;
    } else if (!Check(f.bytes, *rule->message, depth + 1, error)) {
      *error = absl::StrCat(where(), ".", *error);
      return false;
    }
  }
  return true;
}

}  // namespace

absl::Status CheckExportTraceRequest(absl::string_view wire) {
  std::string error;
  if (Check(wire, kRequest, 1, &error)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("not a valid ExportTraceServiceRequest: ", error));
}

}  // namespace tracekeep::wire
