#ifndef TRACEKEEP_TESTS_COLLECTOR_SAMPLING_TEST_UTIL_H_
#define TRACEKEEP_TESTS_COLLECTOR_SAMPLING_TEST_UTIL_H_

#include <mutex>
#include <string>

#include "collector/common/ids.h"
#include "collector/pipeline/consumer.h"

namespace tracekeep::sampling {

// A 16-byte trace id whose last two bytes are `n`.
inline std::string TestTraceId(int n) {
  std::string id(16, '\x5a');
  id[14] = static_cast<char>(n >> 8);
  id[15] = static_cast<char>(n & 0xff);
  return id;
}

inline TraceSpans MakeTrace(int n, int spans, bool error = false) {
  TraceSpans t;
  t.trace_id = TestTraceId(n);
  t.hash = TraceIdHash(t.trace_id);
  auto origin = std::make_shared<SpanOrigin>();
  for (int i = 0; i < spans; ++i) {
    SpanRecord& r = t.spans.emplace_back();
    r.origin = origin;
    r.span = "span-bytes";
    r.span_id = std::string(8, static_cast<char>(i + 1));
    r.start_unix_nanos = 1000 + i;
    r.end_unix_nanos = 2000 + i;
    r.is_error = error && i == 0;
    r.is_root = i == 0;
  }
  return t;
}

// Records every kept trace.
class RecordingConsumer final : public TraceConsumer {
 public:
  absl::Status Consume(KeptTraces&& traces) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& t : traces) kept_.push_back(std::move(t));
    ++batches_;
    return absl::OkStatus();
  }
  KeptTraces kept() {
    std::lock_guard<std::mutex> lock(mu_);
    return kept_;
  }
  // Calls of Consume.
  int batches() {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }

 private:
  std::mutex mu_;
  KeptTraces kept_;
  int batches_ = 0;
};

}  // namespace tracekeep::sampling

#endif  // TRACEKEEP_TESTS_COLLECTOR_SAMPLING_TEST_UTIL_H_
