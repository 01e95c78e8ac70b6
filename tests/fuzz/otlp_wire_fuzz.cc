// libFuzzer target: the OTLP protobuf wire reader that splits export requests by trace
// (collector/pipeline/otlp_wire.cc), on arbitrary bytes as a client could send them.
#include <cstddef>
#include <cstdint>

#include "collector/pipeline/otlp_convert.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view wire(reinterpret_cast<const char*>(data), size);
  (void)tracekeep::CountWireSpans(wire);
  auto split = tracekeep::SplitWireRequest(wire);
  if (split.ok()) {
    int64_t spans = 0;
    for (const auto& trace : split->traces) spans += static_cast<int64_t>(trace.spans.size());
    if (spans != split->accepted_spans) __builtin_trap();  // the count the receivers report
  }
  return 0;
}
