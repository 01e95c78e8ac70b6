// libFuzzer target: the span store's value codecs (storage/span_codec.cc): span values, span
// group values, resource values and export queue batches, as read back from RocksDB.
#include <cstddef>
#include <cstdint>

#include "storage/span_codec.h"
#include "tests/fuzz/seed_spans.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  namespace codec = tracekeep::storage::codec;
  const auto traces = tracekeep::fuzz::SeedTraces();
  std::string out;
  codec::EncodeSpanValue(traces[0].spans[0], 7, &out);
  tracekeep::fuzz::MaybeWriteSeed("span_value", out);
  std::string scratch;
  codec::StartSpanGroup(traces[0].spans.size(), &out);
  for (const auto& span : traces[0].spans) codec::AppendToSpanGroup(span, 7, &scratch, &out);
  tracekeep::fuzz::MaybeWriteSeed("span_group", out);
  codec::EncodeResourceValue(*traces[0].spans[0].origin, &out);
  tracekeep::fuzz::MaybeWriteSeed("resource_value", out);
  std::vector<tracekeep::SpanRecord> spans = traces[0].spans;
  spans.insert(spans.end(), traces[1].spans.begin(), traces[1].spans.end());
  codec::EncodeSpanBatch(spans, 1700000000000000000, &out);
  tracekeep::fuzz::MaybeWriteSeed("export_batch", out);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace codec = tracekeep::storage::codec;
  const absl::string_view value(reinterpret_cast<const char*>(data), size);
  codec::SpanValue span;
  (void)codec::DecodeSpanValue(value, &span);
  (void)codec::ForEachStoredSpan(
      value, "12345678", [&](absl::string_view, const codec::SpanValue& s) {
        // Decoded views point into the value.
        if (s.span.data() < value.data() || s.span.data() + s.span.size() > value.data() + size) {
          __builtin_trap();
        }
      });
  codec::ResourceValue resource;
  (void)codec::DecodeResourceValue(value, &resource);
  codec::SpanBatchValue batch;
  const bool batch_ok = codec::DecodeSpanBatch(value, &batch).ok();
  int64_t enqueued = 0, count = 0;
  const bool header_ok = codec::DecodeSpanBatchHeader(value, &enqueued, &count).ok();
  if (batch_ok && (!header_ok || count != static_cast<int64_t>(batch.spans.size()))) {
    __builtin_trap();  // the queue's accounting reads only the header
  }
  return 0;
}
