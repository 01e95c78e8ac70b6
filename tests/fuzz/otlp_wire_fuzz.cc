// libFuzzer target: the OTLP protobuf wire reader that splits export requests by trace and
// locates the order id (collector/pipeline/otlp_wire.cc), on arbitrary bytes as a client could
// send them.
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
  // With the order id attribute located (as the daemon splits): a located value lies inside the
  // span's bytes and hashes as recorded.
  tracekeep::WireSplitOptions options;
  options.key_attribute = "order.id";
  auto located = tracekeep::SplitWireRequest(wire, options);
  if (located.ok()) {
    for (const auto& trace : located->traces) {
      for (const auto& span : trace.spans) {
        if (span.key_size == 0) continue;
        if (uint64_t{span.key_offset} + span.key_size > span.span.size()) __builtin_trap();
        const absl::string_view value(span.span.data() + span.key_offset, span.key_size);
        if (tracekeep::KeyValueHash(value) != span.key_hash) __builtin_trap();
      }
    }
  }
  return 0;
}
