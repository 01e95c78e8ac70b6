#include "storage/span_fields.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "collector/common/json.h"
#include "collector/pipeline/otlp_wire.h"

namespace tracekeep::storage {
namespace {

using wire::Field;

// OTLP field numbers.
constexpr uint32_t kSpanParentSpanId = 4;
constexpr uint32_t kSpanName = 5;
constexpr uint32_t kSpanKind = 6;
constexpr uint32_t kSpanAttributes = 9;
constexpr uint32_t kSpanEvents = 11;
constexpr uint32_t kSpanStatus = 15;
constexpr uint32_t kEventAttributes = 3;
constexpr uint32_t kStatusCode = 3;
constexpr uint32_t kKeyValueKey = 1;
constexpr uint32_t kKeyValueValue = 2;

double DoubleFromBits(uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, sizeof(d));
  return d;
}

// ES6 number formatting, as Go's encoding/json and pdata's float64AsString write doubles.
void AppendDouble(double d, std::string* out) {
  if (std::isnan(d)) {
    out->append("NaN");
    return;
  }
  if (std::isinf(d)) {
    out->append(d > 0 ? "Infinity" : "-Infinity");
    return;
  }
  char buf[64];
  const double abs = std::fabs(d);
  const bool exponent = abs != 0 && (abs < 1e-6 || abs >= 1e21);
  const auto r = std::to_chars(buf, buf + sizeof(buf), d,
                               exponent ? std::chars_format::scientific : std::chars_format::fixed);
  std::string s(buf, r.ptr);
  if (exponent) {  // "1e-07" -> "1e-7", as Go writes it
    const size_t e = s.find('e');
    if (e != std::string::npos && s.size() - e == 4 && s[e + 1] == '-' && s[e + 2] == '0') {
      s.erase(e + 2, 1);
    }
  }
  out->append(s);
}

void AppendJson(absl::string_view any_value, std::string* out);

// A KeyValueList's or ArrayValue's repeated field 1.
void AppendJsonArray(absl::string_view array, std::string* out) {
  out->push_back('[');
  bool first = true;
  wire::ForEachField(array, [&](const Field& f) {
    if (f.number == 1 && f.type == wire::kLengthDelimited) {
      if (!first) out->push_back(',');
      first = false;
      AppendJson(f.bytes, out);
    }
    return true;
  });
  out->push_back(']');
}

void AppendJsonObject(absl::string_view kvlist, std::string* out) {
  std::map<std::string, absl::string_view> sorted;  // Go's encoding/json sorts map keys
  wire::ForEachField(kvlist, [&](const Field& f) {
    if (f.number != 1 || f.type != wire::kLengthDelimited) return true;
    std::string key;
    absl::string_view value;
    wire::ForEachField(f.bytes, [&](const Field& kv) {
      if (kv.type != wire::kLengthDelimited) return true;
      if (kv.number == kKeyValueKey) key.assign(kv.bytes.data(), kv.bytes.size());
      if (kv.number == kKeyValueValue) value = kv.bytes;
      return true;
    });
    sorted[key] = value;
    return true;
  });
  out->push_back('{');
  bool first = true;
  for (const auto& [key, value] : sorted) {
    if (!first) out->push_back(',');
    first = false;
    AppendJsonString(key, out);
    out->push_back(':');
    AppendJson(value, out);
  }
  out->push_back('}');
}

// One AnyValue as JSON (Go's encoding of pdata's AsRaw()).
void AppendJson(absl::string_view any_value, std::string* out) {
  bool wrote = false;
  Field last;
  wire::ForEachField(any_value, [&](const Field& f) {
    last = f;
    wrote = true;
    return true;
  });
  if (!wrote) {
    out->append("null");
    return;
  }
  switch (last.number) {
    case 1:
      AppendJsonString(last.bytes, out);
      return;
    case 5:
      AppendJsonArray(last.bytes, out);
      return;
    case 6:
      AppendJsonObject(last.bytes, out);
      return;
    case 7:
      out->push_back('"');
      out->append(absl::Base64Escape(last.bytes));
      out->push_back('"');
      return;
    default:
      out->append(AnyValueString(any_value));
  }
}

// The key of a serialized KeyValue. Serializers write the key (field 1) first: then it is read
// without walking the value; otherwise the whole message is read.
absl::string_view KeyOf(absl::string_view kv) {
  if (kv.size() >= 2 && kv[0] == 0x0a && static_cast<uint8_t>(kv[1]) < 0x80 &&
      static_cast<size_t>(kv[1]) + 2 <= kv.size()) {
    return kv.substr(2, static_cast<uint8_t>(kv[1]));
  }
  absl::string_view key;
  wire::ForEachField(kv, [&](const Field& f) {
    if (f.number == kKeyValueKey && f.type == wire::kLengthDelimited) key = f.bytes;
    return true;
  });
  return key;
}

// The value (AnyValue bytes) of a serialized KeyValue.
absl::string_view ValueOf(absl::string_view kv) {
  absl::string_view value;
  wire::ForEachField(kv, [&](const Field& f) {
    if (f.number == kKeyValueValue && f.type == wire::kLengthDelimited) value = f.bytes;
    return true;
  });
  return value;
}

// Calls fn(key, serialized KeyValue) for every KeyValue in repeated field `field_number`.
template <typename Fn>
void ForEachKeyValue(absl::string_view message, uint32_t field_number, Fn fn) {
  wire::ForEachField(message, [&](const Field& f) {
    if (f.number != field_number || f.type != wire::kLengthDelimited) return true;
    return fn(KeyOf(f.bytes), f.bytes);
  });
}

bool IsWanted(absl::string_view key, const AttributeKeys& keys) {
  for (const std::string& k : keys) {
    if (k == key) return true;
  }
  return false;
}

}  // namespace

std::string AnyValueString(absl::string_view any_value) {
  std::string out;
  Field value;
  bool present = false;
  // The last occurrence of a oneof field wins, as in protobuf's parser.
  wire::ForEachField(any_value, [&](const Field& f) {
    if (f.number >= 1 && f.number <= 7) {
      value = f;
      present = true;
    }
    return true;
  });
  if (!present) return out;
  switch (value.number) {
    case 1:
      out.assign(value.bytes.data(), value.bytes.size());
      break;
    case 2:
      out = value.varint != 0 ? "true" : "false";
      break;
    case 3:
      out = absl::StrCat(static_cast<int64_t>(value.varint));
      break;
    case 4:
      AppendDouble(DoubleFromBits(value.varint), &out);
      break;
    case 5:
      AppendJsonArray(value.bytes, &out);
      break;
    case 6:
      AppendJsonObject(value.bytes, &out);
      break;
    case 7:
      out = absl::Base64Escape(value.bytes);
      break;
  }
  return out;
}

void ReadAttributes(absl::string_view message, uint32_t field_number, const AttributeKeys& keys,
                    std::vector<std::pair<absl::string_view, std::string>>* out) {
  if (keys.empty()) return;
  ForEachKeyValue(message, field_number, [&](absl::string_view key, absl::string_view kv) {
    if (IsWanted(key, keys)) out->emplace_back(key, AnyValueString(ValueOf(kv)));
    return true;
  });
}

bool ReadSpanFields(absl::string_view span, const AttributeKeys& keys, SpanFields* out) {
  return wire::ForEachField(span, [&](const Field& f) {
    switch (f.number) {
      case kSpanParentSpanId:
        out->parent_span_id = f.bytes;
        break;
      case kSpanName:
        out->name = f.bytes;
        break;
      case kSpanKind:
        out->kind = static_cast<uint32_t>(f.varint);
        break;
      case kSpanAttributes:
        if (!keys.empty() && f.type == wire::kLengthDelimited) {
          const absl::string_view key = KeyOf(f.bytes);
          if (IsWanted(key, keys)) {
            out->attributes.emplace_back(key, AnyValueString(ValueOf(f.bytes)));
          }
        }
        break;
      case kSpanEvents:
        if (!keys.empty() && f.type == wire::kLengthDelimited) {
          ReadAttributes(f.bytes, kEventAttributes, keys, &out->attributes);
        }
        break;
      case kSpanStatus:
        if (f.type == wire::kLengthDelimited) {
          wire::ForEachField(f.bytes, [&](const Field& s) {
            if (s.number == kStatusCode && s.type == wire::kVarint) out->status_code = s.varint;
            return true;
          });
        }
        break;
      default:
        break;
    }
    return true;
  });
}

bool FindAttribute(absl::string_view message, uint32_t field_number, absl::string_view key,
                   std::string* value) {
  bool found = false;
  ForEachKeyValue(message, field_number, [&](absl::string_view k, absl::string_view kv) {
    if (k != key) return true;
    *value = AnyValueString(ValueOf(kv));
    found = true;
    return false;
  });
  return found;
}

bool SpanHasAttribute(absl::string_view span, absl::string_view key, absl::string_view value) {
  std::string got;
  if (FindAttribute(span, kSpanAttributes, key, &got) && got == value) return true;
  bool found = false;
  wire::ForEachField(span, [&](const Field& f) {
    if (f.number == kSpanEvents && f.type == wire::kLengthDelimited &&
        FindAttribute(f.bytes, kEventAttributes, key, &got) && got == value) {
      found = true;
      return false;
    }
    return true;
  });
  return found;
}

namespace {
constexpr absl::string_view kKindNames[] = {"",       "internal", "server",
                                            "client", "producer", "consumer"};
}  // namespace

absl::string_view SpanKindName(uint32_t kind) {
  return kind < sizeof(kKindNames) / sizeof(kKindNames[0]) ? kKindNames[kind] : "";
}

int SpanKindFromName(absl::string_view name) {
  for (int i = 0; i < 6; ++i) {
    if (kKindNames[i] == name) return i;
  }
  return -1;
}

}  // namespace tracekeep::storage
