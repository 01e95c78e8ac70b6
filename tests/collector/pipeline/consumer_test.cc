#include "collector/pipeline/consumer.h"

#include "gtest/gtest.h"

namespace tracekeep {
namespace {

class FixedConsumer final : public TraceConsumer {
 public:
  explicit FixedConsumer(absl::Status answer) : answer_(std::move(answer)) {}
  absl::Status Consume(KeptTraces&& traces) override {
    ++calls;
    if (answer_.ok()) taken = std::move(traces);
    return answer_;
  }
  int calls = 0;
  KeptTraces taken;

 private:
  absl::Status answer_;
};

KeptTraces OneKept() {
  KeptTraces traces(1);
  traces[0].trace_id = std::string(16, '\x01');
  traces[0].spans.resize(2);
  return traces;
}

// The first consumer (the store) refusing with kUnavailable stops the fan-out with the batch
// untouched, so it can be offered again without duplicating it anywhere.
TEST(FanOutConsumerTest, FirstConsumerUnavailableStopsWithTheBatchUntouched) {
  FixedConsumer store(absl::UnavailableError("disk full"));
  FixedConsumer exporter(absl::OkStatus());
  FanOutConsumer fanout({&store, &exporter});
  KeptTraces traces = OneKept();
  EXPECT_EQ(fanout.Consume(std::move(traces)).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(exporter.calls, 0);
  ASSERT_EQ(traces.size(), 1u);
  EXPECT_EQ(traces[0].spans.size(), 2u);
}

TEST(FanOutConsumerTest, LaterConsumerUnavailableIsNotRetryable) {
  FixedConsumer store(absl::OkStatus());
  FixedConsumer exporter(absl::UnavailableError("shutting down"));
  FanOutConsumer fanout({&store, &exporter});
  EXPECT_EQ(fanout.Consume(OneKept()).code(), absl::StatusCode::kAborted)
      << "the store took the batch: offering it again would store it twice";
  EXPECT_EQ(store.taken.size(), 1u);
}

}  // namespace
}  // namespace tracekeep
