// Reads the server's requested retry delay from a gRPC error. The google.rpc protos are not
// compiled on this system (Debian ships libgrpc++_error_details without their headers), so the
// three small messages involved are decoded by hand.
#ifndef TRACEKEEP_COLLECTOR_EXPORTER_RETRY_INFO_H_
#define TRACEKEEP_COLLECTOR_EXPORTER_RETRY_INFO_H_

#include <optional>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tracekeep::exporter {

inline constexpr char kRetryInfoTypeUrl[] = "type.googleapis.com/google.rpc.RetryInfo";

// `status_details` is the serialized google.rpc.Status of the `grpc-status-details-bin` trailer
// (grpc::Status::error_details()). Returns the retry_delay of the first google.rpc.RetryInfo in
// its details, or nullopt when there is none, it is negative, or the bytes do not decode.
std::optional<absl::Duration> RetryDelayFromStatusDetails(absl::string_view status_details);

}  // namespace tracekeep::exporter

#endif  // TRACEKEEP_COLLECTOR_EXPORTER_RETRY_INFO_H_
