// google.rpc.Status bodies for OTLP error responses, written by hand (the proto is not compiled
// on this system; the encoding is three fields).
#ifndef TRACEKEEP_COLLECTOR_RECEIVER_RPC_STATUS_H_
#define TRACEKEEP_COLLECTOR_RECEIVER_RPC_STATUS_H_

#include <string>

#include "absl/strings/string_view.h"

namespace tracekeep::receiver {

inline constexpr char kRetryInfoTypeUrl[] = "type.googleapis.com/google.rpc.RetryInfo";

// Serialized google.rpc.Status{code, message, details}. With retry_after_seconds > 0, details
// holds one google.rpc.RetryInfo{retry_delay} packed in a google.protobuf.Any.
std::string EncodeRpcStatus(int code, absl::string_view message, int retry_after_seconds = 0);

// The same as proto3 JSON: {"code":8,"message":"...","details":[{"@type":"...","retryDelay":"5s"}]}
std::string EncodeRpcStatusJson(int code, absl::string_view message, int retry_after_seconds = 0);

}  // namespace tracekeep::receiver

#endif  // TRACEKEEP_COLLECTOR_RECEIVER_RPC_STATUS_H_
