#include "collector/pipeline/otlp_convert.h"

#include <algorithm>
#include <deque>
#include <unordered_map>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "collector/common/ids.h"
#include "collector/pipeline/otlp_wire.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracekeep {
namespace {

namespace otlp_trace = ::opentelemetry::proto::trace::v1;
constexpr int kMaxDescribedRejects = 3;

std::string ServiceName(const opentelemetry::proto::resource::v1::Resource& resource) {
  for (const auto& kv : resource.attributes()) {
    if (kv.key() == "service.name" && kv.value().has_string_value()) {
      return kv.value().string_value();
    }
  }
  return "";
}

void Describe(SplitResult* result, int64_t* counter, const std::string& what, int r, int s, int i) {
  ++*counter;
  if (result->rejected() > kMaxDescribedRejects) return;
  if (!result->error_message.empty()) absl::StrAppend(&result->error_message, "; ");
  absl::StrAppend(&result->error_message, "resource_spans[", r, "].scope_spans[", s, "].spans[", i,
                  "]: ", what);
}

// The service.name of a serialized Resource: the first attribute with that key whose value
// ends up a string_value, as ServiceName() reads the parsed message. Valid input assumed.
std::string WireServiceName(absl::string_view resource) {
  std::string name;
  wire::ForEachField(resource, [&](const wire::Field& attr) {
    if (attr.number != 1 || attr.type != wire::kLengthDelimited) return true;
    absl::string_view key;
    uint32_t value_case = 0;  // the AnyValue oneof after merging every occurrence of `value`
    absl::string_view string_value;
    wire::ForEachField(attr.bytes, [&](const wire::Field& kv) {
      if (kv.number == 1 && kv.type == wire::kLengthDelimited) key = kv.bytes;
      if (kv.number != 2 || kv.type != wire::kLengthDelimited) return true;
      wire::ForEachField(kv.bytes, [&](const wire::Field& v) {
        static constexpr wire::WireType kTypes[8] = {
            wire::kVarint,  wire::kLengthDelimited, wire::kVarint,          wire::kVarint,
            wire::kFixed64, wire::kLengthDelimited, wire::kLengthDelimited, wire::kLengthDelimited};
        if (v.number >= 1 && v.number <= 7 && v.type == kTypes[v.number]) {
          value_case = v.number;
          if (v.number == 1) string_value = v.bytes;
        }
        return true;
      });
      return true;
    });
    if (key == "service.name" && value_case == 1) {
      name = std::string(string_value);
      return false;  // the first one wins
    }
    return true;
  });
  return name;
}

// The key of a serialized KeyValue: its last field 1, as protobuf merges occurrences.
absl::string_view KeyOf(absl::string_view key_value) {
  // The form every encoder seen writes: the key (0x0a, length), then possibly the value (0x12,
  // length) and nothing else, both lengths under 128. Then the first field is the only key.
  if (key_value.size() >= 2 && key_value[0] == '\x0a' &&
      static_cast<uint8_t>(key_value[1]) < 0x80) {
    const size_t n = static_cast<uint8_t>(key_value[1]);
    if (n + 2 == key_value.size()) return key_value.substr(2, n);
    if (n + 4 <= key_value.size() && key_value[n + 2] == '\x12' &&
        static_cast<uint8_t>(key_value[n + 3]) < 0x80 &&
        n + 4 + static_cast<uint8_t>(key_value[n + 3]) == key_value.size()) {
      return key_value.substr(2, n);
    }
  }
  absl::string_view key;
  wire::ForEachField(key_value, [&key](const wire::Field& f) {
    if (f.number == 1 && f.type == wire::kLengthDelimited) key = f.bytes;
    return true;
  });
  return key;
}

// Appends field `number` holding the length-delimited `size` bytes that follow (tag and length).
void PutLengthPrefix(uint32_t number, size_t size, std::string* out) {
  wire::PutVarint((uint64_t{number} << 3) | wire::kLengthDelimited, out);
  wire::PutVarint(size, out);
}

// The span fields the pipeline reads, from a serialized Span; the last occurrence of a field
// wins and status occurrences merge, as in protobuf. Valid input assumed.
struct WireSpan {
  absl::string_view trace_id, span_id, parent_span_id, name;
  uint64_t start = 0, end = 0, kind = 0, status_code = 0;
  bool error = false;
  uint64_t attribute_keys = 0;
  // The key attribute's string value (see WireSplitOptions); `key_unsure` when an occurrence
  // was not in the plain form (then the span must be read).
  absl::string_view key_value;
  bool key_unsure = false;
  bool has_client_key = false;  // an attribute's key is WantedKey::client_key
};

// The wanted key attribute of ReadWireSpan: its name and AttributeKeyBit.
struct WantedKey {
  absl::string_view name;
  uint64_t bit = 0;
  // WireSplitOptions::read_whole_keys / read_whole_event_names and the OR of their bits.
  const std::vector<std::string>* whole_keys = nullptr;
  const std::vector<std::string>* whole_events = nullptr;
  uint64_t whole_key_bits = 0;
  uint64_t whole_event_bits = 0;
  // ClientAttribute::key; client_bit != 0 when there is one.
  absl::string_view client_key;
  uint64_t client_bit = 0;
};

// Whether `key_value` (a serialized KeyValue whose key's bit is among wanted.whole_key_bits) has
// one of the keys that make its span be read whole; true too when its key is not first.
bool IsWholeKey(absl::string_view key_value, const WantedKey& wanted) {
  if (key_value.size() < 2 || key_value[0] != '\x0a' ||
      static_cast<uint8_t>(key_value[1]) >= 0x80 ||
      static_cast<size_t>(static_cast<uint8_t>(key_value[1])) > key_value.size() - 2) {
    return true;
  }
  const absl::string_view key = key_value.substr(2, static_cast<uint8_t>(key_value[1]));
  for (const std::string& k : *wanted.whole_keys) {
    if (key == k) return true;
  }
  return false;
}

// Looks at an attribute (serialized KeyValue) whose key may be `wanted` (its key's bit is the
// wanted key's): records its string value, or that it is in a form only a full decode reads.
void CaptureKey(absl::string_view key_value, const WantedKey& wanted, WireSpan* out) {
  // The plain form, as every encoder seen writes it: the key (0x0a, length), then the value
  // (0x12, length) holding one string_value (0x0a, length), every length under 128.
  if (key_value.size() < 2 || key_value[0] != '\x0a' ||
      static_cast<uint8_t>(key_value[1]) >= 0x80) {
    out->key_unsure = true;  // the key is not first: it may be the wanted one
    return;
  }
  const size_t n = wanted.name.size();
  if (static_cast<uint8_t>(key_value[1]) != n || key_value.size() < n + 2 ||
      key_value.substr(2, n) != wanted.name) {
    return;  // another key
  }
  const absl::string_view rest = key_value.substr(n + 2);
  if (rest.size() >= 4 && rest[0] == '\x12' && static_cast<uint8_t>(rest[1]) + 2u == rest.size() &&
      rest[2] == '\x0a' && static_cast<uint8_t>(rest[3]) + 4u == rest.size()) {
    out->key_value = rest.substr(4);  // the last occurrence wins, as in a full decode
    return;
  }
  out->key_unsure = true;
}

// Adds the key of a serialized KeyValue to `keys` (AttributeKeyBit). The key is its first field
// in every encoder seen; otherwise any key may be there.
void AddKeyBit(absl::string_view key_value, uint64_t* keys) {
  if (key_value.size() >= 2 && key_value[0] == '\x0a' &&
      static_cast<uint8_t>(key_value[1]) < 0x80 &&
      static_cast<size_t>(key_value[1]) <= key_value.size() - 2) {
    *keys |= AttributeKeyBit(key_value.data() + 2, static_cast<uint8_t>(key_value[1]));
  } else {
    *keys = kAnyAttributeKey;
  }
}

void ReadWireSpan(absl::string_view bytes, const WantedKey& wanted, WireSpan* out) {
  wire::ForEachField(bytes, [out, &wanted](const wire::Field& f) {
    switch (f.number) {
      case 1:
        if (f.type == wire::kLengthDelimited) out->trace_id = f.bytes;
        break;
      case 2:
        if (f.type == wire::kLengthDelimited) out->span_id = f.bytes;
        break;
      case 4:
        if (f.type == wire::kLengthDelimited) out->parent_span_id = f.bytes;
        break;
      case 5:
        if (f.type == wire::kLengthDelimited) out->name = f.bytes;
        break;
      case 6:
        if (f.type == wire::kVarint) out->kind = f.varint;
        break;
      case 7:
        if (f.type == wire::kFixed64) out->start = f.varint;
        break;
      case 8:
        if (f.type == wire::kFixed64) out->end = f.varint;
        break;
      case 9:  // attributes
        if (f.type == wire::kLengthDelimited) {
          uint64_t bit = 0;
          AddKeyBit(f.bytes, &bit);
          out->attribute_keys |= bit;
          if ((bit & wanted.bit) != 0) CaptureKey(f.bytes, wanted, out);
          // Not by the bit: it is the first key field's, and a later one would be the key.
          if (wanted.client_bit != 0 && KeyOf(f.bytes) == wanted.client_key) {
            out->has_client_key = true;
          }
          if ((bit & wanted.whole_key_bits) != 0 && IsWholeKey(f.bytes, wanted)) {
            out->key_unsure = true;
          }
        }
        break;
      case 11:  // events: their names (field 2) and their attributes' keys (field 3)
        if (f.type == wire::kLengthDelimited) {
          wire::ForEachField(f.bytes, [out, &wanted](const wire::Field& ev) {
            if (ev.type != wire::kLengthDelimited) return true;
            if (ev.number == 3) {
              uint64_t bit = 0;
              AddKeyBit(ev.bytes, &bit);
              out->attribute_keys |= bit;
              if ((bit & wanted.whole_key_bits) != 0 && IsWholeKey(ev.bytes, wanted)) {
                out->key_unsure = true;
              }
            }
            if (ev.number == 2) {
              const uint64_t bit = AttributeKeyBit(ev.bytes.data(), ev.bytes.size());
              out->attribute_keys |= bit;
              if ((bit & wanted.whole_event_bits) != 0 &&
                  std::find(wanted.whole_events->begin(), wanted.whole_events->end(), ev.bytes) !=
                      wanted.whole_events->end()) {
                out->key_unsure = true;
              }
            }
            return true;
          });
        }
        break;
      case 15:
        if (f.type == wire::kLengthDelimited) {
          wire::ForEachField(f.bytes, [out](const wire::Field& st) {
            if (st.number == 3 && st.type == wire::kVarint) {
              out->error = static_cast<int32_t>(st.varint) == otlp_trace::Status::STATUS_CODE_ERROR;
              out->status_code = st.varint;
            }
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

}  // namespace

bool CopyWithoutAttribute(absl::string_view message, uint32_t attributes_field,
                          absl::string_view key, std::string* out) {
  // First look: most messages do not have the key, and are not copied.
  bool found = false;
  wire::ForEachField(message, [&](const wire::Field& f) {
    found =
        f.number == attributes_field && f.type == wire::kLengthDelimited && KeyOf(f.bytes) == key;
    return !found;
  });
  if (!found) return false;
  out->reserve(out->size() + message.size());
  absl::string_view in = message;
  wire::Field f;
  while (!in.empty()) {
    const char* begin = in.data();
    if (!wire::NextField(&in, &f)) break;
    if (f.number == attributes_field && f.type == wire::kLengthDelimited && KeyOf(f.bytes) == key) {
      continue;
    }
    out->append(begin, static_cast<size_t>(in.data() - begin));
  }
  return true;
}

std::string StampClientAttribute(absl::string_view resource, ClientAttribute client) {
  std::string out;
  if (!CopyWithoutAttribute(resource, /*Resource.attributes=*/1, client.key, &out)) {
    out.assign(resource.data(), resource.size());
  }
  // KeyValue{key: client.key, value: AnyValue{string_value: client.value}}.
  const size_t any_value = 1 + wire::VarintSize(client.value.size()) + client.value.size();
  const size_t key_value = 1 + wire::VarintSize(client.key.size()) + client.key.size() + 1 +
                           wire::VarintSize(any_value) + any_value;
  PutLengthPrefix(1, key_value, &out);
  PutLengthPrefix(1, client.key.size(), &out);
  out.append(client.key.data(), client.key.size());
  PutLengthPrefix(2, any_value, &out);
  PutLengthPrefix(1, client.value.size(), &out);
  out.append(client.value.data(), client.value.size());
  return out;
}

SplitResult SplitRequest(const OtlpRequest& request, ClientAttribute client) {
  SplitResult result;
  absl::flat_hash_map<std::string, size_t> index;  // trace id -> position in result.traces
  for (int r = 0; r < request.resource_spans_size(); ++r) {
    const auto& rs = request.resource_spans(r);
    std::string resource = rs.resource().SerializeAsString();
    std::string service;
    if (client.key.empty()) {
      service = ServiceName(rs.resource());
    } else {
      resource = StampClientAttribute(resource, client);
      service = WireServiceName(resource);
    }
    for (int s = 0; s < rs.scope_spans_size(); ++s) {
      const auto& ss = rs.scope_spans(s);
      auto origin = std::make_shared<SpanOrigin>();
      origin->resource = resource;
      origin->resource_schema_url = rs.schema_url();
      origin->scope = ss.scope().SerializeAsString();
      origin->scope_schema_url = ss.schema_url();
      origin->service_name = service;
      const SpanOriginPtr shared_origin = std::move(origin);
      for (int i = 0; i < ss.spans_size(); ++i) {
        const otlp_trace::Span& span = ss.spans(i);
        if (!IsValidId(span.trace_id(), kTraceIdSize)) {
          Describe(&result, &result.rejected_invalid_trace_id,
                   absl::StrCat("invalid trace_id \"", ToHex(span.trace_id()), "\" (",
                                span.trace_id().size(), " bytes; want 16, not all zero)"),
                   r, s, i);
          continue;
        }
        if (!IsValidId(span.span_id(), kSpanIdSize)) {
          Describe(&result, &result.rejected_invalid_span_id,
                   absl::StrCat("invalid span_id \"", ToHex(span.span_id()), "\" (",
                                span.span_id().size(), " bytes; want 8, not all zero)"),
                   r, s, i);
          continue;
        }
        auto [it, inserted] = index.try_emplace(span.trace_id(), result.traces.size());
        if (inserted) {
          TraceSpans& t = result.traces.emplace_back();
          t.trace_id = span.trace_id();
          t.hash = TraceIdHash(t.trace_id);
        }
        SpanRecord& rec = result.traces[it->second].spans.emplace_back();
        rec.origin = shared_origin;
        span.SerializeToString(&rec.span);
        if (!client.key.empty()) {
          std::string stripped;
          if (CopyWithoutAttribute(rec.span, /*Span.attributes=*/9, client.key, &stripped)) {
            rec.span = std::move(stripped);
          }
        }
        rec.span_id = span.span_id();
        rec.start_unix_nanos = static_cast<int64_t>(span.start_time_unix_nano());
        rec.end_unix_nanos = static_cast<int64_t>(span.end_time_unix_nano());
        rec.is_error = span.status().code() == otlp_trace::Status::STATUS_CODE_ERROR;
        rec.is_root = span.parent_span_id().empty();
        rec.attribute_keys = 0;
        for (const auto& kv : span.attributes()) {
          rec.attribute_keys |= AttributeKeyBit(kv.key().data(), kv.key().size());
        }
        for (const auto& event : span.events()) {
          rec.attribute_keys |= AttributeKeyBit(event.name().data(), event.name().size());
          for (const auto& kv : event.attributes()) {
            rec.attribute_keys |= AttributeKeyBit(kv.key().data(), kv.key().size());
          }
        }
        ++result.accepted_spans;
      }
    }
  }
  if (result.rejected() > kMaxDescribedRejects) {
    absl::StrAppend(&result.error_message, "; and ", result.rejected() - kMaxDescribedRejects,
                    " more");
  }
  return result;
}

int64_t CountWireSpans(absl::string_view wire) {
  int64_t n = 0;
  wire::ForEachField(wire, [&n](const wire::Field& rs) {
    if (rs.number != 1 || rs.type != wire::kLengthDelimited) return true;
    wire::ForEachField(rs.bytes, [&n](const wire::Field& ss) {
      if (ss.number != 2 || ss.type != wire::kLengthDelimited) return true;
      wire::ForEachField(ss.bytes, [&n](const wire::Field& span) {
        if (span.number == 2 && span.type == wire::kLengthDelimited) ++n;
        return true;
      });
      return true;
    });
    return true;
  });
  return n;
}

// Records reserved for a trace when its first span of a request is read, before this thread
// split any request.
constexpr size_t kFirstSpansPerTrace = 8;
// At most this many (a request of one huge trace and then small ones reserves no more).
constexpr size_t kMaxSpansReserved = 64;
// The mean spans per trace of the last request this thread split (rounded up): a client's
// requests tend to be alike, and a trace whose spans are spread over several resources of a
// request (a gateway's batch) has only part of them when the next trace starts.
thread_local size_t last_spans_per_trace = kFirstSpansPerTrace;
// A trace's records fill jemalloc's size classes well at this size (see SpanRecord::key_size).
static_assert(sizeof(SpanRecord) <= 128, "SpanRecord grew");

absl::StatusOr<SplitResult> SplitWireRequest(absl::string_view wire_bytes,
                                             const WireSplitOptions& options,
                                             ClientAttribute client) {
  if (absl::Status valid = wire::CheckExportTraceRequest(wire_bytes); !valid.ok()) return valid;
  WantedKey wanted;
  if (!options.key_attribute.empty() && options.key_attribute.size() < 0x80) {
    wanted.name = options.key_attribute;
    wanted.bit = AttributeKeyBit(wanted.name.data(), wanted.name.size());
    wanted.whole_keys = &options.read_whole_keys;
    wanted.whole_events = &options.read_whole_event_names;
    for (const std::string& k : options.read_whole_keys) {
      wanted.whole_key_bits |= AttributeKeyBit(k.data(), k.size());
    }
    for (const std::string& e : options.read_whole_event_names) {
      wanted.whole_event_bits |= AttributeKeyBit(e.data(), e.size());
    }
  }
  if (!client.key.empty()) {
    // ReadWireSpan notes the spans that have the client attribute.
    wanted.client_key = client.key;
    wanted.client_bit = AttributeKeyBit(client.key.data(), client.key.size());
  }
  std::deque<std::string> stripped_spans;  // spans rewritten without the client attribute
  SplitResult result;
  absl::flat_hash_map<absl::string_view, size_t> index;  // trace id -> position in result.traces
  int r = -1;
  wire::ForEachField(wire_bytes, [&](const wire::Field& rs_field) {
    if (rs_field.number != 1 || rs_field.type != wire::kLengthDelimited) return true;
    ++r;
    // Resource and schema URL may follow the scope spans: read them first.
    std::string resource;
    absl::string_view resource_schema_url;
    std::vector<absl::string_view> scope_spans;
    wire::ForEachField(rs_field.bytes, [&](const wire::Field& f) {
      if (f.type != wire::kLengthDelimited) return true;
      if (f.number == 1) resource.append(f.bytes.data(), f.bytes.size());
      if (f.number == 2) scope_spans.push_back(f.bytes);
      if (f.number == 3) resource_schema_url = f.bytes;
      return true;
    });
    if (!client.key.empty()) resource = StampClientAttribute(resource, client);
    const std::string service = WireServiceName(resource);
    for (int s = 0; s < static_cast<int>(scope_spans.size()); ++s) {
      auto origin = std::make_shared<SpanOrigin>();
      std::vector<absl::string_view> spans;
      wire::ForEachField(scope_spans[s], [&](const wire::Field& f) {
        if (f.type != wire::kLengthDelimited) return true;
        if (f.number == 1) origin->scope.append(f.bytes.data(), f.bytes.size());
        if (f.number == 2) spans.push_back(f.bytes);
        if (f.number == 3) origin->scope_schema_url = std::string(f.bytes);
        return true;
      });
      origin->resource = resource;
      origin->resource_schema_url = std::string(resource_schema_url);
      origin->service_name = service;
      const SpanOriginPtr shared_origin = std::move(origin);
      for (int i = 0; i < static_cast<int>(spans.size()); ++i) {
        absl::string_view bytes = spans[i];
        WireSpan span;
        ReadWireSpan(bytes, wanted, &span);
        std::string stripped;  // the span without the client's own client attribute
        if (span.has_client_key &&
            CopyWithoutAttribute(bytes, /*Span.attributes=*/9, client.key, &stripped)) {
          // `index` keeps views of trace ids: the bytes must live as long as it does.
          bytes = stripped_spans.emplace_back(std::move(stripped));
          span = WireSpan();
          ReadWireSpan(bytes, wanted, &span);
        }
        if (!IsValidId(span.trace_id, kTraceIdSize)) {
          Describe(&result, &result.rejected_invalid_trace_id,
                   absl::StrCat("invalid trace_id \"", ToHex(span.trace_id), "\" (",
                                span.trace_id.size(), " bytes; want 16, not all zero)"),
                   r, s, i);
          continue;
        }
        if (!IsValidId(span.span_id, kSpanIdSize)) {
          Describe(&result, &result.rejected_invalid_span_id,
                   absl::StrCat("invalid span_id \"", ToHex(span.span_id), "\" (",
                                span.span_id.size(), " bytes; want 8, not all zero)"),
                   r, s, i);
          continue;
        }
        auto [it, inserted] = index.try_emplace(span.trace_id, result.traces.size());
        if (inserted) {
          // A request usually brings several spans of a trace: growing from 1 moved a 10-span
          // trace's records 15 times in 4 reallocations (2 % of the daemon's CPU unpaced).
          // Reserved: the last request's mean, or the previous trace's count when larger. The
          // sampler takes a vector with little unused room as it is, else copies the records.
          const size_t reserve =
              result.traces.empty()
                  ? last_spans_per_trace
                  : std::max(last_spans_per_trace, result.traces.back().spans.size());
          TraceSpans& t = result.traces.emplace_back();
          t.trace_id = std::string(span.trace_id);
          t.hash = TraceIdHash(t.trace_id);
          t.spans.reserve(std::min(reserve, kMaxSpansReserved));
        }
        SpanRecord& rec = result.traces[it->second].spans.emplace_back();
        rec.origin = shared_origin;
        rec.span.assign(bytes.data(), bytes.size());
        rec.span_id = std::string(span.span_id);
        rec.start_unix_nanos = static_cast<int64_t>(span.start);
        rec.end_unix_nanos = static_cast<int64_t>(span.end);
        rec.is_error = span.error;
        rec.is_root = span.parent_span_id.empty();
        rec.attribute_keys = span.attribute_keys;
        if (span.name.size() <= UINT16_MAX && span.kind <= UINT8_MAX &&
            span.status_code <= UINT8_MAX) {
          rec.name_offset =
              span.name.empty() ? 0 : static_cast<uint32_t>(span.name.data() - bytes.data());
          rec.name_size = static_cast<uint16_t>(span.name.size());
          rec.kind = static_cast<uint8_t>(span.kind);
          rec.status_code = static_cast<uint8_t>(span.status_code);
          rec.fields_known = true;
        }
        if (!span.key_unsure && !span.key_value.empty() && span.key_value.size() <= UINT16_MAX) {
          rec.key_offset = static_cast<uint32_t>(span.key_value.data() - bytes.data());
          rec.key_size = static_cast<uint16_t>(span.key_value.size());
          rec.key_hash = KeyValueHash(span.key_value);
        }
        ++result.accepted_spans;
      }
    }
    return true;
  });
  if (!result.traces.empty()) {
    last_spans_per_trace =
        std::clamp<size_t>((static_cast<size_t>(result.accepted_spans) + result.traces.size() - 1) /
                               result.traces.size(),
                           1, kMaxSpansReserved);
  }
  if (result.rejected() > kMaxDescribedRejects) {
    absl::StrAppend(&result.error_message, "; and ", result.rejected() - kMaxDescribedRejects,
                    " more");
  }
  return result;
}

void BuildRequest(const std::vector<const SpanRecord*>& spans, OtlpRequest* out) {
  // Spans that share an origin pointer share one ScopeSpans; origins that share resource bytes
  // share one ResourceSpans.
  std::unordered_map<const SpanOrigin*, otlp_trace::ScopeSpans*> scopes;
  std::unordered_map<std::string, otlp_trace::ResourceSpans*> resources;
  for (const SpanRecord* rec : spans) {
    otlp_trace::ScopeSpans*& ss = scopes[rec->origin.get()];
    if (ss == nullptr) {
      const std::string key =
          absl::StrCat(rec->origin->resource, "\x00", rec->origin->resource_schema_url);
      otlp_trace::ResourceSpans*& rs = resources[key];
      if (rs == nullptr) {
        rs = out->add_resource_spans();
        rs->mutable_resource()->ParseFromString(rec->origin->resource);
        rs->set_schema_url(rec->origin->resource_schema_url);
      }
      ss = rs->add_scope_spans();
      ss->mutable_scope()->ParseFromString(rec->origin->scope);
      ss->set_schema_url(rec->origin->scope_schema_url);
    }
    ss->add_spans()->ParseFromString(rec->span);
  }
}

namespace {

size_t LengthDelimitedSize(size_t len) { return 1 + wire::VarintSize(len) + len; }

void PutLengthDelimited(uint32_t field, size_t len, std::string* out) {
  wire::PutVarint((field << 3) | 2, out);
  wire::PutVarint(len, out);
}

}  // namespace

std::string SerializeWireRequest(const std::vector<const SpanRecord*>& spans) {
  // Grouped as BuildRequest groups them: one ScopeSpans per origin pointer, one ResourceSpans per
  // resource (bytes and schema url), each in order of first appearance.
  struct Scope {
    const SpanOrigin* origin;
    std::vector<const std::string*> spans;
    size_t size = 0;  // of the ScopeSpans message
  };
  struct Resource {
    const SpanOrigin* origin;  // its resource and schema url
    std::vector<size_t> scopes;
    size_t size = 0;  // of the ResourceSpans message
  };
  std::vector<Scope> scopes;
  std::vector<Resource> resources;
  std::unordered_map<const SpanOrigin*, size_t> scope_of;
  std::unordered_map<std::string, size_t> resource_of;
  for (const SpanRecord* rec : spans) {
    auto [it, inserted] = scope_of.try_emplace(rec->origin.get(), scopes.size());
    if (inserted) {
      scopes.push_back(Scope{rec->origin.get(), {}});
      const std::string key =
          absl::StrCat(rec->origin->resource, "\x00", rec->origin->resource_schema_url);
      auto [r, new_resource] = resource_of.try_emplace(key, resources.size());
      if (new_resource) resources.push_back(Resource{rec->origin.get(), {}});
      resources[r->second].scopes.push_back(it->second);
    }
    scopes[it->second].spans.push_back(&rec->span);
  }
  size_t total = 0;
  for (Resource& r : resources) {
    r.size = LengthDelimitedSize(r.origin->resource.size());
    if (!r.origin->resource_schema_url.empty()) {
      r.size += LengthDelimitedSize(r.origin->resource_schema_url.size());
    }
    for (size_t i : r.scopes) {
      Scope& sc = scopes[i];
      sc.size = LengthDelimitedSize(sc.origin->scope.size());
      for (const std::string* span : sc.spans) sc.size += LengthDelimitedSize(span->size());
      if (!sc.origin->scope_schema_url.empty()) {
        sc.size += LengthDelimitedSize(sc.origin->scope_schema_url.size());
      }
      r.size += LengthDelimitedSize(sc.size);
    }
    total += LengthDelimitedSize(r.size);
  }
  std::string out;
  out.reserve(total);
  for (const Resource& r : resources) {
    PutLengthDelimited(1, r.size, &out);  // ExportTraceServiceRequest.resource_spans
    PutLengthDelimited(1, r.origin->resource.size(), &out);  // ResourceSpans.resource
    out.append(r.origin->resource);
    for (size_t i : r.scopes) {
      const Scope& sc = scopes[i];
      PutLengthDelimited(2, sc.size, &out);                  // ResourceSpans.scope_spans
      PutLengthDelimited(1, sc.origin->scope.size(), &out);  // ScopeSpans.scope
      out.append(sc.origin->scope);
      for (const std::string* span : sc.spans) {
        PutLengthDelimited(2, span->size(), &out);  // ScopeSpans.spans
        out.append(*span);
      }
      if (!sc.origin->scope_schema_url.empty()) {
        PutLengthDelimited(3, sc.origin->scope_schema_url.size(), &out);
        out.append(sc.origin->scope_schema_url);
      }
    }
    if (!r.origin->resource_schema_url.empty()) {
      PutLengthDelimited(3, r.origin->resource_schema_url.size(), &out);
      out.append(r.origin->resource_schema_url);
    }
  }
  return out;
}

void BuildRequest(const KeptTraces& traces, OtlpRequest* out) {
  std::vector<const SpanRecord*> spans;
  for (const KeptTrace& t : traces) {
    for (const SpanRecord& rec : t.spans) spans.push_back(&rec);
  }
  BuildRequest(spans, out);
}

}  // namespace tracekeep
