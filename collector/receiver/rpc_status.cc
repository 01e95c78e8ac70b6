#include "collector/receiver/rpc_status.h"

#include <cstdint>

#include "absl/strings/str_cat.h"

namespace tracekeep::receiver {
namespace {

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutVarintField(int field, uint64_t v, std::string* out) {
  PutVarint(static_cast<uint64_t>(field) << 3, out);  // wire type 0
  PutVarint(v, out);
}

void PutBytesField(int field, absl::string_view bytes, std::string* out) {
  PutVarint((static_cast<uint64_t>(field) << 3) | 2, out);
  PutVarint(bytes.size(), out);
  out->append(bytes.data(), bytes.size());
}

void AppendJsonString(absl::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (const char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[(c >> 4) & 0xf]);
          out->push_back(kHex[c & 0xf]);
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
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
