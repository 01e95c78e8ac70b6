// Test doubles and helpers shared by the receiver tests.
#ifndef TRACEKEEP_TESTS_COLLECTOR_RECEIVER_FAKE_INTAKE_H_
#define TRACEKEEP_TESTS_COLLECTOR_RECEIVER_FAKE_INTAKE_H_

#include <zlib.h>

#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "collector/pipeline/consumer.h"
#include "collector/pipeline/otlp_convert.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracekeep::receiver {

// Records every batch offered, or refuses with a preset status.
class FakeIntake final : public SpanIntake {
 public:
  absl::Status Offer(std::vector<TraceSpans>&& traces, int64_t span_count) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++offers_;
    if (!refusal_.ok()) return refusal_;
    spans_ += span_count;
    for (TraceSpans& t : traces) traces_.push_back(std::move(t));
    return absl::OkStatus();
  }
  absl::Status Precheck(int64_t span_count) override {
    std::lock_guard<std::mutex> lock(mu_);
    prechecked_spans_ += span_count;
    return precheck_refusal_;
  }
  // Refuses at Precheck, before the request is decoded.
  void RefuseEarlyWith(absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    precheck_refusal_ = std::move(status);
  }
  int64_t prechecked_spans() {
    std::lock_guard<std::mutex> lock(mu_);
    return prechecked_spans_;
  }
  absl::Status Flush() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!flush_refusal_.ok()) return flush_refusal_;
    ++flushes_;
    flushed_spans_ = spans_;
    return absl::OkStatus();
  }
  void RefuseFlushWith(absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    flush_refusal_ = std::move(status);
  }
  // Successful flushes, and the spans offered before the last of them.
  int flushes() {
    std::lock_guard<std::mutex> lock(mu_);
    return flushes_;
  }
  int64_t flushed_spans() {
    std::lock_guard<std::mutex> lock(mu_);
    return flushed_spans_;
  }
  void RefuseWith(absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    refusal_ = std::move(status);
  }
  std::vector<TraceSpans> traces() {
    std::lock_guard<std::mutex> lock(mu_);
    return traces_;
  }
  int64_t spans() {
    std::lock_guard<std::mutex> lock(mu_);
    return spans_;
  }
  int offers() {
    std::lock_guard<std::mutex> lock(mu_);
    return offers_;
  }

 private:
  std::mutex mu_;
  absl::Status refusal_;
  absl::Status precheck_refusal_;
  absl::Status flush_refusal_;
  int flushes_ = 0;
  int64_t flushed_spans_ = 0;
  int64_t prechecked_spans_ = 0;
  std::vector<TraceSpans> traces_;
  int64_t spans_ = 0;
  int offers_ = 0;
};

inline const std::string kTraceA(16, '\xa1');
inline const std::string kTraceB(16, '\xb2');

inline std::string SpanId(int i) { return std::string(7, '\x00') + static_cast<char>(i); }

// A request from "shop-api" with `valid` spans alternating between two traces, then
// `bad_trace_ids` spans with an all-zero trace id and `bad_span_ids` spans with a short span id.
inline OtlpRequest MakeRequest(int valid, int bad_trace_ids = 0, int bad_span_ids = 0) {
  OtlpRequest request;
  auto* rs = request.add_resource_spans();
  auto* attr = rs->mutable_resource()->add_attributes();
  attr->set_key("service.name");
  attr->mutable_value()->set_string_value("shop-api");
  auto* ss = rs->add_scope_spans();
  ss->mutable_scope()->set_name("test");
  int n = 0;
  for (int i = 0; i < valid; ++i, ++n) {
    auto* span = ss->add_spans();
    span->set_trace_id(i % 2 == 0 ? kTraceA : kTraceB);
    span->set_span_id(SpanId(n + 1));
    span->set_name("op" + std::to_string(i));
    span->set_start_time_unix_nano(1700000000123456789ULL + i);
  }
  for (int i = 0; i < bad_trace_ids; ++i, ++n) {
    auto* span = ss->add_spans();
    span->set_trace_id(std::string(16, '\0'));
    span->set_span_id(SpanId(n + 1));
  }
  for (int i = 0; i < bad_span_ids; ++i, ++n) {
    auto* span = ss->add_spans();
    span->set_trace_id(kTraceA);
    span->set_span_id("abc");
  }
  return request;
}

inline std::string Gzip(const std::string& data) {
  z_stream zs{};
  deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, data.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace tracekeep::receiver

#endif  // TRACEKEEP_TESTS_COLLECTOR_RECEIVER_FAKE_INTAKE_H_
