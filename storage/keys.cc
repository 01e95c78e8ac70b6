#include "storage/keys.h"

#include <cstring>

namespace tracekeep::storage::keys {

void AppendBigEndian64(uint64_t value, std::string* out) {
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  out->append(buf, sizeof(buf));
}

uint64_t DecodeBigEndian64(const char* p) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<unsigned char>(p[i]);
  return value;
}

void AppendSpanKey(absl::string_view trace_id, int64_t start_unix_nanos, absl::string_view span_id,
                   std::string* out) {
  out->append(trace_id.data(), trace_id.size());
  AppendBigEndian64(KeyTime(start_unix_nanos), out);
  out->append(span_id.data(), span_id.size());
}

std::string SpanKey(absl::string_view trace_id, int64_t start_unix_nanos,
                    absl::string_view span_id) {
  std::string key;
  key.reserve(kSpanKeySize);
  AppendSpanKey(trace_id, start_unix_nanos, span_id, &key);
  return key;
}

void AppendSpanGroupKey(absl::string_view trace_id, int64_t start_unix_nanos,
                        absl::string_view span_id, uint64_t sequence, std::string* out) {
  AppendSpanKey(trace_id, start_unix_nanos, span_id, out);
  AppendBigEndian64(sequence, out);
}

bool ParseSpanKey(absl::string_view key, SpanKeyParts* parts) {
  if (key.size() != kSpanKeySize && key.size() != kSpanGroupKeySize) return false;
  parts->trace_id = key.substr(0, kTraceIdSize);
  parts->start_unix_nanos = static_cast<int64_t>(SpanKeyStartTime(key));
  parts->span_id = key.substr(kTraceIdSize + kTimeSize, kSpanIdSize);
  parts->group = key.size() == kSpanGroupKeySize;
  return true;
}

uint64_t SpanKeyStartTime(absl::string_view key) {
  return DecodeBigEndian64(key.data() + kTraceIdSize);
}

std::string ServiceIndexPrefix(absl::string_view service) {
  std::string prefix;
  prefix.reserve(service.size() + 2);
  prefix.push_back(kServiceIndexTag);
  prefix.append(service.data(), service.size());
  prefix.push_back('\0');
  return prefix;
}

void AppendServiceIndexKey(absl::string_view service, int64_t start_unix_nanos,
                           absl::string_view trace_id, std::string* out) {
  out->push_back(kServiceIndexTag);
  out->append(service.data(), service.size());
  out->push_back('\0');
  AppendBigEndian64(KeyTime(start_unix_nanos), out);
  out->append(trace_id.data(), trace_id.size());
}

std::string ServiceIndexKey(absl::string_view service, int64_t start_unix_nanos,
                            absl::string_view trace_id) {
  std::string key;
  key.reserve(service.size() + 2 + kTimeSize + kTraceIdSize);
  AppendServiceIndexKey(service, start_unix_nanos, trace_id, &key);
  return key;
}

std::string ServiceIndexTimeBound(absl::string_view service, uint64_t key_time) {
  std::string bound = ServiceIndexPrefix(service);
  AppendBigEndian64(key_time, &bound);
  return bound;
}

namespace {
constexpr size_t kServiceIndexSuffixSize = 1 + kTimeSize + kTraceIdSize;  // 0x00 · time · trace
}  // namespace

bool ParseServiceIndexKey(absl::string_view key, ServiceIndexKeyParts* parts) {
  if (key.size() < 1 + kServiceIndexSuffixSize || key[0] != kServiceIndexTag) return false;
  const size_t separator = key.size() - kServiceIndexSuffixSize;
  if (key[separator] != '\0') return false;
  parts->service = key.substr(1, separator - 1);
  parts->start_time = DecodeBigEndian64(key.data() + separator + 1);
  parts->trace_id = key.substr(key.size() - kTraceIdSize);
  return true;
}

uint64_t ServiceIndexKeyStartTime(absl::string_view key) {
  return DecodeBigEndian64(key.data() + key.size() - kTraceIdSize - kTimeSize);
}

void AppendIndexSuffix(int64_t start_unix_nanos, absl::string_view trace_id, std::string* out) {
  AppendBigEndian64(KeyTime(start_unix_nanos), out);
  out->append(trace_id.data(), trace_id.size());
}

bool IsTimedIndexKey(absl::string_view key) {
  if (key.size() < 1 + kIndexSuffixSize) return false;
  switch (key[0]) {
    case kServiceIndexTag:
    case kOperationIndexTag:
    case kAttributeIndexTag:
    case kDependencyIndexTag:
      return true;
    default:
      return false;
  }
}

uint64_t IndexKeyStartTime(absl::string_view key) {
  return DecodeBigEndian64(key.data() + key.size() - kIndexSuffixSize);
}

absl::string_view IndexKeyTraceId(absl::string_view key) {
  return key.substr(key.size() - kTraceIdSize);
}

std::string OperationServicePrefix(absl::string_view service) {
  std::string prefix;
  prefix.reserve(service.size() + 2);
  prefix.push_back(kOperationIndexTag);
  prefix.append(service.data(), service.size());
  prefix.push_back('\0');
  return prefix;
}

std::string OperationKindPrefix(absl::string_view service, uint32_t kind) {
  std::string prefix = OperationServicePrefix(service);
  prefix.push_back(static_cast<char>(kind));
  return prefix;
}

std::string OperationPrefix(absl::string_view service, uint32_t kind, absl::string_view name) {
  std::string prefix = OperationKindPrefix(service, kind);
  prefix.append(name.data(), name.size());
  prefix.push_back('\0');
  return prefix;
}

bool ParseOperationKey(absl::string_view key, absl::string_view service, OperationKeyParts* parts) {
  const size_t head = service.size() + 2;  // 'o' · service · 0x00
  if (key.size() < head + 1 + 1 + kIndexSuffixSize) return false;
  const size_t separator = key.size() - kIndexSuffixSize - 1;
  if (key[separator] != '\0') return false;
  parts->kind = static_cast<uint8_t>(key[head]);
  parts->name = key.substr(head + 1, separator - head - 1);
  return true;
}

std::string AttributePrefix(absl::string_view service, absl::string_view key,
                            absl::string_view value) {
  std::string prefix;
  prefix.reserve(service.size() + key.size() + value.size() + 4);
  prefix.push_back(kAttributeIndexTag);
  prefix.append(service.data(), service.size());
  prefix.push_back('\0');
  prefix.append(key.data(), key.size());
  prefix.push_back('\0');
  prefix.append(value.data(), value.size());
  prefix.push_back('\0');
  return prefix;
}

namespace {

// MurmurHash64A (Austin Appleby, public domain), reading words as little-endian so that the
// value is the same on every machine: resource keys are persisted.
uint64_t LoadLittleEndian64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

uint64_t MurmurHash64A(absl::string_view data, uint64_t seed) {
  constexpr uint64_t m = 0xc6a4a7935bd1e995ULL;
  constexpr int r = 47;
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  const size_t len = data.size();
  uint64_t h = seed ^ (len * m);
  const unsigned char* end = p + (len / 8) * 8;
  for (; p != end; p += 8) {
    uint64_t k = LoadLittleEndian64(p);
    k *= m;
    k ^= k >> r;
    k *= m;
    h ^= k;
    h *= m;
  }
  switch (len & 7) {
    case 7:
      h ^= uint64_t{p[6]} << 48;
      [[fallthrough]];
    case 6:
      h ^= uint64_t{p[5]} << 40;
      [[fallthrough]];
    case 5:
      h ^= uint64_t{p[4]} << 32;
      [[fallthrough]];
    case 4:
      h ^= uint64_t{p[3]} << 24;
      [[fallthrough]];
    case 3:
      h ^= uint64_t{p[2]} << 16;
      [[fallthrough]];
    case 2:
      h ^= uint64_t{p[1]} << 8;
      [[fallthrough]];
    case 1:
      h ^= uint64_t{p[0]};
      h *= m;
  }
  h ^= h >> r;
  h *= m;
  h ^= h >> r;
  return h;
}

}  // namespace

uint64_t ResourceHash(absl::string_view resource, absl::string_view schema_url) {
  // Chained so that ("ab", "c") and ("a", "bc") differ: the length of each part is mixed in.
  return MurmurHash64A(schema_url, MurmurHash64A(resource, 0x74726b6570ULL));
}

std::string ResourceKey(uint64_t hash) {
  std::string key;
  key.reserve(kResourceKeySize);
  AppendBigEndian64(hash, &key);
  return key;
}

}  // namespace tracekeep::storage::keys
