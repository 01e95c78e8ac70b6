// The OTLP/gRPC trace service end-to-end tests make tracekeep forward to: it records, per trace
// id (hex), each forwarded span (hex id) with its tracekeep.order.anomaly value ("" when absent).
#ifndef TRACEKEEP_TESTS_E2E_RECORDING_BACKEND_H_
#define TRACEKEEP_TESTS_E2E_RECORDING_BACKEND_H_

#include <map>
#include <mutex>
#include <string>

#include "collector/common/ids.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace tracekeep::e2e {

class AnomalyRecordingBackend final
    : public opentelemetry::proto::collector::trace::v1::TraceService::Service {
 public:
  grpc::Status Export(
      grpc::ServerContext*,
      const opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest* request,
      opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& rs : request->resource_spans()) {
      for (const auto& ss : rs.scope_spans()) {
        for (const auto& span : ss.spans()) {
          std::string anomaly;
          for (const auto& kv : span.attributes()) {
            if (kv.key() == "tracekeep.order.anomaly") anomaly = kv.value().string_value();
          }
          spans_[ToHex(span.trace_id())][ToHex(span.span_id())] = anomaly;
        }
      }
    }
    return grpc::Status::OK;
  }

  // The spans received of a trace: span id -> anomaly value.
  std::map<std::string, std::string> Spans(const std::string& trace_id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = spans_.find(trace_id);
    return it == spans_.end() ? std::map<std::string, std::string>() : it->second;
  }
  bool Has(const std::string& trace_id, const std::string& span_id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = spans_.find(trace_id);
    return it != spans_.end() && it->second.count(span_id) > 0;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::map<std::string, std::string>> spans_;
};

}  // namespace tracekeep::e2e

#endif  // TRACEKEEP_TESTS_E2E_RECORDING_BACKEND_H_
