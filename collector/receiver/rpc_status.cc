#include "collector/receiver/rpc_status.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "collector/common/json.h"
#include "collector/pipeline/otlp_wire.h"

namespace tracekeep::receiver {
namespace {

using wire::PutVarint;

void PutVarintField(int field, uint64_t v, std::string* out) {
  PutVarint(static_cast<uint64_t>(field) << 3, out);  // wire type 0
  PutVarint(v, out);
}

void PutBytesField(int field, absl::string_view bytes, std::string* out) {
  PutVarint((static_cast<uint64_t>(field) << 3) | 2, out);
  PutVarint(bytes.size(), out);
  out->append(bytes.data(), bytes.size());
}

}  // namespace

std::string EncodeRpcStatus(int code, absl::string_view message, int retry_after_seconds) {
  std::string out;
  if (code != 0) PutVarintField(1, static_cast<uint64_t>(code), &out);
  if (!message.empty()) PutBytesField(2, message, &out);
  if (retry_after_seconds > 0) {
    std::string duration;
    PutVarintField(1, static_cast<uint64_t>(retry_after_seconds), &duration);  // seconds
    std::string retry_info;
    PutBytesField(1, duration, &retry_info);  // retry_delay
    std::string any;
    PutBytesField(1, kRetryInfoTypeUrl, &any);
    PutBytesField(2, retry_info, &any);
    PutBytesField(3, any, &out);
  }
  return out;
}

std::string EncodeRpcStatusJson(int code, absl::string_view message, int retry_after_seconds) {
  std::string out = absl::StrCat("{\"code\":", code, ",\"message\":");
  AppendJsonString(message, &out);
  if (retry_after_seconds > 0) {
    absl::StrAppend(&out, ",\"details\":[{\"@type\":\"", kRetryInfoTypeUrl, "\",\"retryDelay\":\"",
                    retry_after_seconds, "s\"}]");
  }
  out.push_back('}');
  return out;
}

}  // namespace tracekeep::receiver
