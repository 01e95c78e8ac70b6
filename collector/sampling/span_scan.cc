#include "collector/sampling/span_scan.h"

#include <cstring>

#include "collector/pipeline/otlp_wire.h"

namespace tracekeep::sampling {
namespace {

constexpr int kVarint = 0;
constexpr int kFixed64 = 1;
constexpr int kLengthDelimited = 2;
constexpr int kFixed32 = 5;

// Reads protobuf fields one by one from a byte range.
class Reader {
 public:
  explicit Reader(std::string_view bytes)
      : p_(reinterpret_cast<const uint8_t*>(bytes.data())), end_(p_ + bytes.size()) {}

  bool done() const { return p_ >= end_; }

  bool Varint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) return false;
      const uint8_t b = *p_++;
      result |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) {
        *v = result;
        return true;
      }
    }
    return false;
  }

  // Reads a tag; sets field number and wire type.
  bool Tag(uint32_t* field, int* wire_type) {
    uint64_t tag;
    if (!Varint(&tag)) return false;
    *field = static_cast<uint32_t>(tag >> 3);
    *wire_type = static_cast<int>(tag & 7);
    return *field != 0;
  }

  bool Bytes(std::string_view* out) {
    uint64_t len;
    if (!Varint(&len) || len > static_cast<uint64_t>(end_ - p_)) return false;
    *out = std::string_view(reinterpret_cast<const char*>(p_), len);
    p_ += len;
    return true;
  }

  bool Fixed64(uint64_t* v) {
    if (end_ - p_ < 8) return false;
    std::memcpy(v, p_, 8);  // little-endian hosts only (x86-64, aarch64)
    p_ += 8;
    return true;
  }

  bool Skip(int wire_type) {
    uint64_t ignored;
    std::string_view bytes;
    switch (wire_type) {
      case kVarint:
        return Varint(&ignored);
      case kFixed64:
        return Fixed64(&ignored);
      case kLengthDelimited:
        return Bytes(&bytes);
      case kFixed32:
        if (end_ - p_ < 4) return false;
        p_ += 4;
        return true;
      default:
        return false;  // groups are not used by OTLP
    }
  }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

bool ScanAnyValue(std::string_view bytes, AttributeValue* out) {
  Reader r(bytes);
  while (!r.done()) {
    uint32_t field;
    int wt;
    if (!r.Tag(&field, &wt)) return false;
    uint64_t v;
    if (field == 1 && wt == kLengthDelimited) {
      out->type = AttributeValue::Type::kString;
      if (!r.Bytes(&out->string_value)) return false;
    } else if (field == 2 && wt == kVarint) {
      if (!r.Varint(&v)) return false;
      out->type = AttributeValue::Type::kBool;
      out->bool_value = v != 0;
    } else if (field == 3 && wt == kVarint) {
      if (!r.Varint(&v)) return false;
      out->type = AttributeValue::Type::kInt;
      out->int_value = static_cast<int64_t>(v);
    } else if (field == 4 && wt == kFixed64) {
      if (!r.Fixed64(&v)) return false;
      out->type = AttributeValue::Type::kDouble;
      std::memcpy(&out->double_value, &v, 8);
    } else {
      out->type = AttributeValue::Type::kNone;
      if (!r.Skip(wt)) return false;
    }
  }
  return true;
}

bool ScanKeyValue(std::string_view bytes, std::vector<Attribute>* out) {
  Reader r(bytes);
  Attribute a;
  while (!r.done()) {
    uint32_t field;
    int wt;
    if (!r.Tag(&field, &wt)) return false;
    std::string_view sub;
    if (field == 1 && wt == kLengthDelimited) {
      if (!r.Bytes(&a.key)) return false;
    } else if (field == 2 && wt == kLengthDelimited) {
      if (!r.Bytes(&sub) || !ScanAnyValue(sub, &a.value)) return false;
    } else if (!r.Skip(wt)) {
      return false;
    }
  }
  out->push_back(a);
  return true;
}

bool ScanStatus(std::string_view bytes, int* code) {
  Reader r(bytes);
  while (!r.done()) {
    uint32_t field;
    int wt;
    if (!r.Tag(&field, &wt)) return false;
    if (field == 3 && wt == kVarint) {
      uint64_t v;
      if (!r.Varint(&v)) return false;
      *code = static_cast<int>(v);
    } else if (!r.Skip(wt)) {
      return false;
    }
  }
  return true;
}

using wire::PutVarint;
using wire::VarintSize;

}  // namespace

bool ScanSpan(std::string_view span, SpanFields* out, std::vector<Attribute>* attributes) {
  Reader r(span);
  while (!r.done()) {
    uint32_t field;
    int wt;
    if (!r.Tag(&field, &wt)) return false;
    if (wt != kLengthDelimited || (field != 3 && field != 5 && field != 9 && field != 15)) {
      if (!r.Skip(wt)) return false;
      continue;
    }
    std::string_view sub;
    if (!r.Bytes(&sub)) return false;
    switch (field) {
      case 3:
        out->trace_state = sub;
        break;
      case 5:
        out->name = sub;
        break;
      case 9:
        if (!ScanKeyValue(sub, attributes)) return false;
        break;
      case 15:
        if (!ScanStatus(sub, &out->status_code)) return false;
        break;
    }
  }
  return true;
}

bool ScanSpanKindAndEvents(std::string_view span, int* kind, std::vector<SpanEventFields>* events,
                           std::vector<Attribute>* event_attributes) {
  Reader r(span);
  *kind = 0;
  while (!r.done()) {
    uint32_t field;
    int wt;
    if (!r.Tag(&field, &wt)) return false;
    if (field == 6 && wt == kVarint) {
      uint64_t v;
      if (!r.Varint(&v)) return false;
      *kind = static_cast<int>(v);
      continue;
    }
    if (field != 11 || wt != kLengthDelimited) {
      if (!r.Skip(wt)) return false;
      continue;
    }
    std::string_view event;
    if (!r.Bytes(&event)) return false;
    SpanEventFields e;
    e.attributes_begin = event_attributes->size();
    Reader er(event);  // Span.Event{time_unix_nano = 1; name = 2; attributes = 3; ...}
    while (!er.done()) {
      uint32_t f;
      int t;
      if (!er.Tag(&f, &t)) return false;
      std::string_view sub;
      if (f == 2 && t == kLengthDelimited) {
        if (!er.Bytes(&e.name)) return false;
      } else if (f == 3 && t == kLengthDelimited) {
        if (!er.Bytes(&sub) || !ScanKeyValue(sub, event_attributes)) return false;
      } else if (!er.Skip(t)) {
        return false;
      }
    }
    e.attributes_end = event_attributes->size();
    events->push_back(e);
  }
  return true;
}

bool ScanResourceAttributes(std::string_view resource, std::vector<Attribute>* out) {
  Reader r(resource);
  while (!r.done()) {
    uint32_t field;
    int wt;
    if (!r.Tag(&field, &wt)) return false;
    std::string_view sub;
    if (field == 1 && wt == kLengthDelimited) {
      if (!r.Bytes(&sub) || !ScanKeyValue(sub, out)) return false;
    } else if (!r.Skip(wt)) {
      return false;
    }
  }
  return true;
}

void AppendStringAttribute(std::string_view key, std::string_view value, std::string* span) {
  // KeyValue{key = 1; value = 2: AnyValue{string_value = 1}}
  const size_t any_len = 1 + VarintSize(value.size()) + value.size();
  const size_t kv_len = 1 + VarintSize(key.size()) + key.size() + 1 + VarintSize(any_len) + any_len;
  span->reserve(span->size() + 1 + VarintSize(kv_len) + kv_len);
  span->push_back(static_cast<char>((9 << 3) | kLengthDelimited));
  PutVarint(kv_len, span);
  span->push_back(static_cast<char>((1 << 3) | kLengthDelimited));
  PutVarint(key.size(), span);
  span->append(key.data(), key.size());
  span->push_back(static_cast<char>((2 << 3) | kLengthDelimited));
  PutVarint(any_len, span);
  span->push_back(static_cast<char>((1 << 3) | kLengthDelimited));
  PutVarint(value.size(), span);
  span->append(value.data(), value.size());
}

bool TraceStateValue(std::string_view trace_state, std::string_view key, std::string_view* value) {
  while (!trace_state.empty()) {
    const size_t comma = trace_state.find(',');
    std::string_view member = trace_state.substr(0, comma);
    trace_state =
        comma == std::string_view::npos ? std::string_view() : trace_state.substr(comma + 1);
    while (!member.empty() && (member.front() == ' ' || member.front() == '\t')) {
      member.remove_prefix(1);
    }
    while (!member.empty() && (member.back() == ' ' || member.back() == '\t')) {
      member.remove_suffix(1);
    }
    const size_t eq = member.find('=');
    if (eq == std::string_view::npos) continue;
    if (member.substr(0, eq) == key) {
      *value = member.substr(eq + 1);
      return true;
    }
  }
  return false;
}

}  // namespace tracekeep::sampling
