#include "storage/span_codec.h"

#include <map>
#include <memory>
#include <tuple>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace tracekeep::storage::codec {

void PutVarint64(uint64_t value, std::string* out) {
  char buf[10];
  size_t n = 0;
  while (value >= 0x80) {
    buf[n++] = static_cast<char>((value & 0x7f) | 0x80);
    value >>= 7;
  }
  buf[n++] = static_cast<char>(value);
  out->append(buf, n);
}

bool GetVarint64(absl::string_view* input, uint64_t* value) {
  uint64_t result = 0;
  for (size_t i = 0; i < input->size() && i < 10; ++i) {
    const auto byte = static_cast<unsigned char>((*input)[i]);
    result |= uint64_t{byte & 0x7fu} << (7 * i);
    if ((byte & 0x80) == 0) {
      if (i == 9 && byte > 1) return false;  // more than 64 bits
      *value = result;
      input->remove_prefix(i + 1);
      return true;
    }
  }
  return false;
}

void PutLengthPrefixed(absl::string_view bytes, std::string* out) {
  PutVarint64(bytes.size(), out);
  out->append(bytes.data(), bytes.size());
}

bool GetLengthPrefixed(absl::string_view* input, absl::string_view* bytes) {
  uint64_t size = 0;
  if (!GetVarint64(input, &size) || size > input->size()) return false;
  *bytes = input->substr(0, size);
  input->remove_prefix(size);
  return true;
}

namespace {

constexpr uint8_t kFlagError = 1;
constexpr uint8_t kFlagRoot = 2;

uint64_t ZigZag(int64_t v) {
  return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
int64_t UnZigZag(uint64_t v) { return static_cast<int64_t>((v >> 1) ^ (~(v & 1) + 1)); }

const SpanOrigin& EmptyOrigin() {
  static const SpanOrigin* const kEmpty = new SpanOrigin();
  return *kEmpty;
}

absl::Status Truncated(absl::string_view what, absl::string_view field, size_t offset,
                       size_t size) {
  return absl::DataLossError(absl::StrCat(what, " value is corrupt: cannot read ", field,
                                          " at offset ", offset, " of ", size, " bytes"));
}

absl::Status CheckVersion(absl::string_view what, absl::string_view* input, size_t size) {
  if (input->empty()) return Truncated(what, "format version", 0, size);
  const auto version = static_cast<uint8_t>((*input)[0]);
  if (version != kFormatVersion) {
    return absl::DataLossError(absl::StrCat(what, " value has unknown format version ", version,
                                            " (this build reads ", kFormatVersion, ")"));
  }
  input->remove_prefix(1);
  return absl::OkStatus();
}

}  // namespace

void EncodeSpanValue(const SpanRecord& span, uint64_t resource_ref, std::string* out) {
  const SpanOrigin& origin = span.origin ? *span.origin : EmptyOrigin();
  out->clear();
  out->push_back(static_cast<char>(kFormatVersion));
  out->push_back(
      static_cast<char>((span.is_error ? kFlagError : 0) | (span.is_root ? kFlagRoot : 0)));
  PutVarint64(static_cast<uint64_t>(span.start_unix_nanos), out);
  // Wrapping subtraction: defined for any pair of times, undone exactly by the decoder.
  PutVarint64(ZigZag(static_cast<int64_t>(static_cast<uint64_t>(span.end_unix_nanos) -
                                          static_cast<uint64_t>(span.start_unix_nanos))),
              out);
  char ref[8];
  for (int i = 0; i < 8; ++i) ref[i] = static_cast<char>((resource_ref >> (8 * i)) & 0xff);
  out->append(ref, sizeof(ref));
  PutLengthPrefixed(origin.scope, out);
  PutLengthPrefixed(origin.scope_schema_url, out);
  PutLengthPrefixed(span.span, out);
}

absl::Status DecodeSpanValue(absl::string_view value, SpanValue* out) {
  constexpr absl::string_view kWhat = "span";
  absl::string_view in = value;
  auto offset = [&] { return value.size() - in.size(); };
  if (absl::Status s = CheckVersion(kWhat, &in, value.size()); !s.ok()) return s;
  if (in.empty()) return Truncated(kWhat, "flags", offset(), value.size());
  const auto flags = static_cast<uint8_t>(in[0]);
  in.remove_prefix(1);
  out->is_error = (flags & kFlagError) != 0;
  out->is_root = (flags & kFlagRoot) != 0;
  uint64_t start = 0;
  uint64_t duration = 0;
  if (!GetVarint64(&in, &start)) return Truncated(kWhat, "start time", offset(), value.size());
  if (!GetVarint64(&in, &duration)) return Truncated(kWhat, "end time", offset(), value.size());
  out->start_unix_nanos = static_cast<int64_t>(start);
  out->end_unix_nanos = static_cast<int64_t>(start + static_cast<uint64_t>(UnZigZag(duration)));
  if (in.size() < 8) return Truncated(kWhat, "resource reference", offset(), value.size());
  uint64_t ref = 0;
  for (int i = 7; i >= 0; --i) ref = (ref << 8) | static_cast<unsigned char>(in[i]);
  in.remove_prefix(8);
  out->resource_ref = ref;
  if (!GetLengthPrefixed(&in, &out->scope)) {
    return Truncated(kWhat, "scope", offset(), value.size());
  }
  if (!GetLengthPrefixed(&in, &out->scope_schema_url)) {
    return Truncated(kWhat, "scope schema url", offset(), value.size());
  }
  if (!GetLengthPrefixed(&in, &out->span)) {
    return Truncated(kWhat, "span bytes", offset(), value.size());
  }
  return absl::OkStatus();
}

void StartSpanGroup(size_t spans, std::string* out) {
  out->clear();
  out->push_back(static_cast<char>(kSpanGroupFormatVersion));
  PutVarint64(spans, out);
}

void AppendToSpanGroup(const SpanRecord& span, uint64_t resource_ref, std::string* scratch,
                       std::string* out) {
  PutLengthPrefixed(span.span_id, out);
  EncodeSpanValue(span, resource_ref, scratch);
  PutLengthPrefixed(*scratch, out);
}

absl::Status ForEachStoredSpan(
    absl::string_view value, absl::string_view key_span_id,
    absl::FunctionRef<void(absl::string_view span_id, const SpanValue& span)> fn) {
  SpanValue decoded;
  if (value.empty() || static_cast<uint8_t>(value[0]) != kSpanGroupFormatVersion) {
    if (absl::Status s = DecodeSpanValue(value, &decoded); !s.ok()) return s;
    fn(key_span_id, decoded);
    return absl::OkStatus();
  }
  constexpr absl::string_view kWhat = "span group";
  absl::string_view in = value.substr(1);
  auto offset = [&] { return value.size() - in.size(); };
  uint64_t n = 0;
  if (!GetVarint64(&in, &n)) return Truncated(kWhat, "span count", offset(), value.size());
  for (uint64_t i = 0; i < n; ++i) {
    absl::string_view span_id;
    absl::string_view span_value;
    if (!GetLengthPrefixed(&in, &span_id)) {
      return Truncated(kWhat, absl::StrCat("span id of span ", i), offset(), value.size());
    }
    if (!GetLengthPrefixed(&in, &span_value)) {
      return Truncated(kWhat, absl::StrCat("value of span ", i), offset(), value.size());
    }
    if (absl::Status s = DecodeSpanValue(span_value, &decoded); !s.ok()) {
      return absl::DataLossError(
          absl::StrCat("span group value, span ", i, " of ", n, ": ", s.message()));
    }
    fn(span_id, decoded);
  }
  if (!in.empty()) {
    return absl::DataLossError(
        absl::StrCat("span group value is corrupt: ", in.size(), " bytes after its ", n, " spans"));
  }
  return absl::OkStatus();
}

void EncodeResourceValue(const SpanOrigin& origin, std::string* out) {
  out->clear();
  out->push_back(static_cast<char>(kFormatVersion));
  PutLengthPrefixed(origin.resource, out);
  PutLengthPrefixed(origin.resource_schema_url, out);
  PutLengthPrefixed(origin.service_name, out);
}

absl::Status DecodeResourceValue(absl::string_view value, ResourceValue* out) {
  constexpr absl::string_view kWhat = "resource";
  absl::string_view in = value;
  auto offset = [&] { return value.size() - in.size(); };
  if (absl::Status s = CheckVersion(kWhat, &in, value.size()); !s.ok()) return s;
  if (!GetLengthPrefixed(&in, &out->resource)) {
    return Truncated(kWhat, "resource bytes", offset(), value.size());
  }
  if (!GetLengthPrefixed(&in, &out->schema_url)) {
    return Truncated(kWhat, "schema url", offset(), value.size());
  }
  if (!GetLengthPrefixed(&in, &out->service_name)) {
    return Truncated(kWhat, "service name", offset(), value.size());
  }
  return absl::OkStatus();
}

void EncodeSpanBatch(const std::vector<SpanRecord>& spans, int64_t enqueued_unix_nanos,
                     std::string* out) {
  out->clear();
  out->push_back(static_cast<char>(kFormatVersion));
  PutVarint64(static_cast<uint64_t>(enqueued_unix_nanos), out);
  // Resources are stored once per batch; spans refer to them by index.
  absl::flat_hash_map<const SpanOrigin*, uint64_t> index_by_origin;
  std::map<std::pair<absl::string_view, absl::string_view>, uint64_t> index_by_resource;
  std::vector<const SpanOrigin*> resources;
  std::vector<uint64_t> span_resource;
  span_resource.reserve(spans.size());
  for (const SpanRecord& span : spans) {
    const SpanOrigin* origin = span.origin ? span.origin.get() : &EmptyOrigin();
    auto [it, inserted] = index_by_origin.try_emplace(origin, 0);
    if (inserted) {
      auto [r, new_resource] = index_by_resource.try_emplace(
          std::make_pair(absl::string_view(origin->resource),
                         absl::string_view(origin->resource_schema_url)),
          resources.size());
      if (new_resource) resources.push_back(origin);
      it->second = r->second;
    }
    span_resource.push_back(it->second);
  }
  PutVarint64(resources.size(), out);
  std::string value;
  for (const SpanOrigin* origin : resources) {
    EncodeResourceValue(*origin, &value);
    PutLengthPrefixed(value, out);
  }
  PutVarint64(spans.size(), out);
  for (size_t i = 0; i < spans.size(); ++i) {
    PutVarint64(span_resource[i], out);
    PutLengthPrefixed(spans[i].span_id, out);
    EncodeSpanValue(spans[i], /*resource_ref=*/0, &value);
    PutLengthPrefixed(value, out);
  }
}

namespace {

// Reads the version, enqueue time and resources of a batch value.
absl::Status DecodeBatchPrefix(absl::string_view value, absl::string_view* in,
                               int64_t* enqueued_unix_nanos,
                               std::vector<absl::string_view>* resources) {
  constexpr absl::string_view kWhat = "export batch";
  auto offset = [&] { return value.size() - in->size(); };
  if (absl::Status s = CheckVersion(kWhat, in, value.size()); !s.ok()) return s;
  uint64_t enqueued = 0;
  if (!GetVarint64(in, &enqueued)) return Truncated(kWhat, "enqueue time", offset(), value.size());
  *enqueued_unix_nanos = static_cast<int64_t>(enqueued);
  uint64_t num_resources = 0;
  if (!GetVarint64(in, &num_resources) || num_resources > in->size()) {
    return Truncated(kWhat, "resource count", offset(), value.size());
  }
  for (uint64_t i = 0; i < num_resources; ++i) {
    absl::string_view resource;
    if (!GetLengthPrefixed(in, &resource)) {
      return Truncated(kWhat, absl::StrCat("resource ", i), offset(), value.size());
    }
    if (resources != nullptr) resources->push_back(resource);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status DecodeSpanBatchHeader(absl::string_view value, int64_t* enqueued_unix_nanos,
                                   int64_t* span_count) {
  absl::string_view in = value;
  if (absl::Status s = DecodeBatchPrefix(value, &in, enqueued_unix_nanos, nullptr); !s.ok()) {
    return s;
  }
  uint64_t n = 0;
  if (!GetVarint64(&in, &n)) {
    return Truncated("export batch", "span count", value.size() - in.size(), value.size());
  }
  *span_count = static_cast<int64_t>(n);
  return absl::OkStatus();
}

absl::Status DecodeSpanBatch(absl::string_view value, SpanBatchValue* out) {
  constexpr absl::string_view kWhat = "export batch";
  absl::string_view in = value;
  auto offset = [&] { return value.size() - in.size(); };
  std::vector<absl::string_view> resource_values;
  if (absl::Status s = DecodeBatchPrefix(value, &in, &out->enqueued_unix_nanos, &resource_values);
      !s.ok()) {
    return s;
  }
  std::vector<ResourceValue> resources(resource_values.size());
  for (size_t i = 0; i < resource_values.size(); ++i) {
    if (absl::Status s = DecodeResourceValue(resource_values[i], &resources[i]); !s.ok()) {
      return absl::DataLossError(absl::StrCat(kWhat, " resource ", i, ": ", s.message()));
    }
  }
  uint64_t n = 0;
  if (!GetVarint64(&in, &n) || n > in.size()) {
    return Truncated(kWhat, "span count", offset(), value.size());
  }
  out->spans.clear();
  out->spans.reserve(n);
  std::map<std::tuple<uint64_t, absl::string_view, absl::string_view>, SpanOriginPtr> origins;
  for (uint64_t i = 0; i < n; ++i) {
    uint64_t resource = 0;
    absl::string_view span_id;
    absl::string_view span_value;
    if (!GetVarint64(&in, &resource)) {
      return Truncated(kWhat, absl::StrCat("resource index of span ", i), offset(), value.size());
    }
    if (resource >= resources.size()) {
      return absl::DataLossError(absl::StrCat(kWhat, " value is corrupt: span ", i,
                                              " refers to resource ", resource, " of ",
                                              resources.size()));
    }
    if (!GetLengthPrefixed(&in, &span_id)) {
      return Truncated(kWhat, absl::StrCat("span id of span ", i), offset(), value.size());
    }
    if (span_id.size() > SpanIdField::kMaxSize) {
      return absl::DataLossError(absl::StrCat(kWhat, " value is corrupt: span ", i, " has a ",
                                              span_id.size(), "-byte span id"));
    }
    if (!GetLengthPrefixed(&in, &span_value)) {
      return Truncated(kWhat, absl::StrCat("value of span ", i), offset(), value.size());
    }
    SpanValue decoded;
    if (absl::Status s = DecodeSpanValue(span_value, &decoded); !s.ok()) {
      return absl::DataLossError(absl::StrCat(kWhat, " span ", i, ": ", s.message()));
    }
    SpanOriginPtr& origin =
        origins[std::make_tuple(resource, decoded.scope, decoded.scope_schema_url)];
    if (origin == nullptr) {
      auto o = std::make_shared<SpanOrigin>();
      o->resource = std::string(resources[resource].resource);
      o->resource_schema_url = std::string(resources[resource].schema_url);
      o->service_name = std::string(resources[resource].service_name);
      o->scope = std::string(decoded.scope);
      o->scope_schema_url = std::string(decoded.scope_schema_url);
      origin = std::move(o);
    }
    SpanRecord& record = out->spans.emplace_back();
    record.origin = origin;
    record.span = std::string(decoded.span);
    record.span_id = span_id;
    record.start_unix_nanos = decoded.start_unix_nanos;
    record.end_unix_nanos = decoded.end_unix_nanos;
    record.is_error = decoded.is_error;
    record.is_root = decoded.is_root;
  }
  return absl::OkStatus();
}

}  // namespace tracekeep::storage::codec
