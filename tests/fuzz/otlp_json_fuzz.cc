// libFuzzer target: the OTLP/JSON decoder of the HTTP receiver (collector/receiver/otlp_json.cc),
// deep nesting included.
#include <cstddef>
#include <cstdint>
#include <string>

#include "collector/receiver/otlp_json.h"
#include "google/protobuf/arena.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  google::protobuf::Arena arena;
  auto* request = google::protobuf::Arena::CreateMessage<tracekeep::OtlpRequest>(&arena);
  std::string notes;
  (void)tracekeep::receiver::ParseOtlpJson(
      absl::string_view(reinterpret_cast<const char*>(data), size), request, &notes);
  return 0;
}
