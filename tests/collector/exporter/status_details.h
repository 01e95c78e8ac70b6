// Builds serialized google.rpc.Status trailers (grpc-status-details-bin) for tests, by hand: the
// google.rpc protos are not compiled on this system.
#ifndef TRACEKEEP_TESTS_COLLECTOR_EXPORTER_STATUS_DETAILS_H_
#define TRACEKEEP_TESTS_COLLECTOR_EXPORTER_STATUS_DETAILS_H_

#include <cstdint>
#include <string>

namespace tracekeep::exporter::test_util {

inline void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

inline void PutVarintField(int field, uint64_t v, std::string* out) {
  PutVarint(static_cast<uint64_t>(field) << 3, out);
  PutVarint(v, out);
}

inline void PutBytesField(int field, const std::string& bytes, std::string* out) {
  PutVarint((static_cast<uint64_t>(field) << 3) | 2, out);
  PutVarint(bytes.size(), out);
  out->append(bytes);
}

// google.protobuf.Any{type_url, value}.
inline std::string Any(const std::string& type_url, const std::string& value) {
  std::string any;
  PutBytesField(1, type_url, &any);
  PutBytesField(2, value, &any);
  return any;
}

// google.rpc.RetryInfo{retry_delay: Duration{seconds, nanos}} packed in an Any.
inline std::string RetryInfoAny(int64_t seconds, int32_t nanos) {
  std::string duration;
  if (seconds != 0) PutVarintField(1, static_cast<uint64_t>(seconds), &duration);
  if (nanos != 0) PutVarintField(2, static_cast<uint64_t>(static_cast<int64_t>(nanos)), &duration);
  std::string retry_info;
  PutBytesField(1, duration, &retry_info);
  return Any("type.googleapis.com/google.rpc.RetryInfo", retry_info);
}

// google.rpc.Status{code, message, details}.
inline std::string RpcStatus(int code, const std::string& message,
                             const std::string& detail_any1 = "",
                             const std::string& detail_any2 = "") {
  std::string status;
  PutVarintField(1, static_cast<uint64_t>(code), &status);
  PutBytesField(2, message, &status);
  if (!detail_any1.empty()) PutBytesField(3, detail_any1, &status);
  if (!detail_any2.empty()) PutBytesField(3, detail_any2, &status);
  return status;
}

}  // namespace tracekeep::exporter::test_util

#endif  // TRACEKEEP_TESTS_COLLECTOR_EXPORTER_STATUS_DETAILS_H_
