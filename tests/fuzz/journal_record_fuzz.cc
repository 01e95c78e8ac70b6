// libFuzzer target: the intake journal's record decoder (storage/journal.cc), which replays
// whatever a crash left on disk.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "storage/journal.h"
#include "tests/fuzz/seed_spans.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::string record;
  tracekeep::storage::EncodeJournalRecord(tracekeep::fuzz::SeedTraces(), &record);
  tracekeep::fuzz::MaybeWriteSeed("two_traces", record);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view record(reinterpret_cast<const char*>(data), size);
  std::vector<tracekeep::TraceSpans> traces;
  if (tracekeep::storage::DecodeJournalRecord(record, &traces).ok()) {
    // A decoded record encodes and decodes to the same spans.
    std::string again;
    tracekeep::storage::EncodeJournalRecord(traces, &again);
    std::vector<tracekeep::TraceSpans> traces2;
    if (!tracekeep::storage::DecodeJournalRecord(again, &traces2).ok()) __builtin_trap();
    if (traces2.size() != traces.size()) __builtin_trap();
  }
  return 0;
}
