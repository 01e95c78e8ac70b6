// Sample spans for the fuzzers' seed inputs (written with TK_FUZZ_WRITE_SEEDS=<dir>).
#ifndef TRACEKEEP_TESTS_FUZZ_SEED_SPANS_H_
#define TRACEKEEP_TESTS_FUZZ_SEED_SPANS_H_

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "collector/pipeline/span_batch.h"

namespace tracekeep::fuzz {

// Two traces of two spans, sharing one origin.
inline std::vector<TraceSpans> SeedTraces() {
  auto origin = std::make_shared<SpanOrigin>();
  origin->resource = std::string("\x0a\x1a\x0a\x0cservice.name\x12\x0a\x0a\x08shop-api", 28);
  origin->scope = std::string("\x0a\x04test", 6);
  origin->service_name = "shop-api";
  std::vector<TraceSpans> traces(2);
  for (int t = 0; t < 2; ++t) {
    traces[t].trace_id = std::string(16, static_cast<char>(t + 1));
    for (int s = 0; s < 2; ++s) {
      SpanRecord r;
      r.origin = origin;
      r.span_id = std::string(8, static_cast<char>(s + 1));
      r.span = std::string("\x2a\x04", 2) + (s == 0 ? "root" : "kid!");
      r.start_unix_nanos = 1700000000000000000 + s;
      r.end_unix_nanos = r.start_unix_nanos + 1000;
      traces[t].spans.push_back(std::move(r));
    }
  }
  return traces;
}

// Writes `bytes` to $TK_FUZZ_WRITE_SEEDS/<name> when that variable is set.
inline void MaybeWriteSeed(const std::string& name, const std::string& bytes) {
  const char* dir = std::getenv("TK_FUZZ_WRITE_SEEDS");
  if (dir == nullptr) return;
  std::ofstream(std::string(dir) + "/" + name, std::ios::binary) << bytes;
}

}  // namespace tracekeep::fuzz

#endif  // TRACEKEEP_TESTS_FUZZ_SEED_SPANS_H_
