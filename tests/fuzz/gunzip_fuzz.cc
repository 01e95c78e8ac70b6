// libFuzzer target: the gzip/zlib body decoder of the HTTP receiver with its size bound
// (collector/receiver/http_receiver.cc): never more than the limit, whatever the input.
#include <cstddef>
#include <cstdint>
#include <string>

#include "collector/receiver/http_receiver.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr size_t kLimit = 1 << 20;
  std::string out;
  const absl::Status status = tracekeep::receiver::Gunzip(
      absl::string_view(reinterpret_cast<const char*>(data), size), kLimit, &out);
  if (out.size() > kLimit) __builtin_trap();
  if (!status.ok() && !out.empty()) __builtin_trap();
  return 0;
}
