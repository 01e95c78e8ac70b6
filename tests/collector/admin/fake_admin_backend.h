// Test doubles for the admin API: an in-memory SpanStore and an AdminBackend with fixed status
// (and a list of orders to page through).
// Shared by the admin and tracekeepctl tests.
#ifndef TRACEKEEP_TESTS_COLLECTOR_ADMIN_FAKE_ADMIN_BACKEND_H_
#define TRACEKEEP_TESTS_COLLECTOR_ADMIN_FAKE_ADMIN_BACKEND_H_

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "collector/admin/admin_server.h"
#include "collector/common/ids.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"
#include "storage/span_store.h"
#include "tracekeep/admin/v1/admin.pb.h"

namespace tracekeep::testing {

// Keeps kept traces in a map. GetTrace orders spans by start time then span id, as the contract
// says. `fail_reads` makes every read fail with kInternal.
class InMemorySpanStore final : public storage::SpanStore {
 public:
  absl::Status Consume(KeptTraces&& traces) override {
    absl::MutexLock lock(&mu_);
    for (KeptTrace& trace : traces) {
      std::vector<SpanRecord>& spans = traces_[trace.trace_id];
      for (SpanRecord& span : trace.spans) spans.push_back(std::move(span));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<SpanRecord>> GetTrace(absl::string_view trace_id) override {
    absl::MutexLock lock(&mu_);
    if (fail_reads_) return absl::InternalError("disk on fire");
    auto it = traces_.find(std::string(trace_id));
    if (it == traces_.end()) return absl::NotFoundError("no such trace");
    std::vector<SpanRecord> spans = it->second;
    std::sort(spans.begin(), spans.end(), [](const SpanRecord& a, const SpanRecord& b) {
      return std::tie(a.start_unix_nanos, a.span_id) < std::tie(b.start_unix_nanos, b.span_id);
    });
    return spans;
  }
  absl::StatusOr<std::vector<std::string>> FindTraceIds(absl::string_view, absl::Time, absl::Time,
                                                        size_t) override {
    return absl::UnimplementedError("FindTraceIds");
  }
  uint64_t ApproximateDiskBytes() override { return 0; }
  const storage::StoreStats& stats() const override { return stats_; }

  void set_fail_reads(bool fail) {
    absl::MutexLock lock(&mu_);
    fail_reads_ = fail;
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, std::vector<SpanRecord>> traces_ ABSL_GUARDED_BY(mu_);
  bool fail_reads_ ABSL_GUARDED_BY(mu_) = false;
  storage::StoreStats stats_;
};

// Returns `status` (a copy) from FillStatus and `store` (may be null) from store().
class FakeAdminBackend final : public admin::AdminBackend {
 public:
  explicit FakeAdminBackend(storage::SpanStore* store) : store_(store) {}
  void FillStatus(admin::v1::GetStatusResponse* status) override { *status = status_; }
  storage::SpanStore* store() override { return store_; }
  admin::v1::GetStatusResponse& status() { return status_; }
  // Policies: the YAML text last set; text containing "bad" is refused with `problems`.
  std::string GetPolicies() override {
    absl::MutexLock lock(&mu_);
    return policies_;
  }
  absl::StatusOr<int> SetPolicies(const std::string& yaml, bool validate_only) override {
    if (yaml.find("bad") != std::string::npos) {
      return absl::InvalidArgumentError(
          "policies:1:1: first problem\npolicies:2:1: second problem");
    }
    if (!validate_only) {
      absl::MutexLock lock(&mu_);
      policies_ = yaml;
    }
    return 1;
  }
  // Records the directory; answers `checkpoint_status` (OK: 4096 bytes in 7 ms).
  absl::Status Checkpoint(const std::string& dir, admin::v1::CheckpointResponse* r) override {
    absl::MutexLock lock(&mu_);
    checkpoint_dirs_.push_back(dir);
    if (!checkpoint_status_.ok()) return checkpoint_status_;
    r->set_dir(dir);
    r->set_bytes(4096);
    r->set_duration_ms(7);
    return absl::OkStatus();
  }
  void set_checkpoint_status(absl::Status s) {
    absl::MutexLock lock(&mu_);
    checkpoint_status_ = std::move(s);
  }
  std::vector<std::string> checkpoint_dirs() {
    absl::MutexLock lock(&mu_);
    return checkpoint_dirs_;
  }
  // Records the deadline asked for; answers `drain_response`.
  absl::Status Drain(const admin::v1::DrainRequest& request, admin::v1::DrainResponse* r) override {
    absl::MutexLock lock(&mu_);
    drain_deadlines_.push_back(request.deadline_seconds());
    *r = drain_response_;
    return absl::OkStatus();
  }
  void set_drain_response(admin::v1::DrainResponse r) {
    absl::MutexLock lock(&mu_);
    drain_response_ = std::move(r);
  }
  std::vector<int64_t> drain_deadlines() {
    absl::MutexLock lock(&mu_);
    return drain_deadlines_;
  }
  // Orders: ListOrders pages through `orders`, in the order given, as the daemon does (AIP-158):
  // page_size 0 = 100 (min(limit, max) with a limit), at most `max_page_size`; `limit` bounds
  // the listing; total_size counts every order. The token is "page:<offset>". Filters are
  // recorded, not applied.
  void set_orders(std::vector<orders::v1::Order> orders, int64_t now_unix_nanos,
                  int max_page_size = 1000) {
    absl::MutexLock lock(&mu_);
    orders_ = std::move(orders);
    now_unix_nanos_ = now_unix_nanos;
    max_page_size_ = max_page_size;
  }
  absl::Status ListOrders(const admin::v1::ListOrdersRequest& request,
                          admin::v1::ListOrdersResponse* response) override {
    absl::MutexLock lock(&mu_);
    list_requests_.push_back(request);
    const int64_t limit = request.limit();
    int64_t size = request.page_size();
    if (size == 0) size = limit > 0 ? limit : 100;
    size = std::min<int64_t>(size, max_page_size_);
    int64_t offset = 0;
    if (!request.page_token().empty() &&
        (!absl::StartsWith(request.page_token(), "page:") ||
         !absl::SimpleAtoi(request.page_token().substr(5), &offset))) {
      return absl::InvalidArgumentError("page_token: not a token of this listing");
    }
    int64_t end = std::min<int64_t>(offset + size, static_cast<int64_t>(orders_.size()));
    if (limit > 0) end = std::min(end, limit);
    for (int64_t i = offset; i < end; ++i) *response->add_orders() = orders_[i];
    if (end < static_cast<int64_t>(orders_.size()) && (limit == 0 || end < limit)) {
      response->set_next_page_token(absl::StrCat("page:", end));
    }
    response->set_total_size(static_cast<int64_t>(orders_.size()));
    response->set_now_unix_nanos(now_unix_nanos_);
    return absl::OkStatus();
  }
  std::vector<admin::v1::ListOrdersRequest> list_requests() {
    absl::MutexLock lock(&mu_);
    return list_requests_;
  }

 private:
  storage::SpanStore* const store_;
  admin::v1::GetStatusResponse status_;
  absl::Mutex mu_;
  std::string policies_ ABSL_GUARDED_BY(mu_) = "- name: all\n  type: always_sample\n";
  std::vector<std::string> checkpoint_dirs_ ABSL_GUARDED_BY(mu_);
  absl::Status checkpoint_status_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> drain_deadlines_ ABSL_GUARDED_BY(mu_);
  admin::v1::DrainResponse drain_response_ ABSL_GUARDED_BY(mu_);
  std::vector<orders::v1::Order> orders_ ABSL_GUARDED_BY(mu_);
  int64_t now_unix_nanos_ ABSL_GUARDED_BY(mu_) = 0;
  int max_page_size_ ABSL_GUARDED_BY(mu_) = 1000;
  std::vector<admin::v1::ListOrdersRequest> list_requests_ ABSL_GUARDED_BY(mu_);
};

// The status of a small running daemon.
inline admin::v1::GetStatusResponse SampleStatus() {
  admin::v1::GetStatusResponse status;
  status.set_version("0.1.0");
  status.set_uptime_seconds(3725);  // 1h 2m 5s
  status.set_data_dir("/var/lib/tracekeep");
  auto* grpc = status.add_endpoints();
  grpc->set_name("otlp_grpc");
  grpc->set_address("0.0.0.0:4317");
  auto* admin = status.add_endpoints();
  admin->set_name("admin");
  admin->set_address("127.0.0.1:4320");
  status.set_spans_received(1500);
  status.set_spans_accepted(1490);
  status.set_spans_refused(10);
  status.set_traces_pending(7);
  status.set_spans_pending(42);
  status.set_traces_kept(12);
  status.set_traces_dropped(300);
  status.set_traces_stored(12);
  status.set_spans_exported(96);
  status.set_export_failures(1);
  status.set_export_endpoint("localhost:14317");
  status.set_shards(2);
  return status;
}

// Builds a span record with its OTLP bytes. `parent` is "" for a root span.
inline SpanRecord MakeSpan(const SpanOriginPtr& origin, const std::string& trace_id,
                           const std::string& span_id, const std::string& parent,
                           const std::string& name, int64_t start_nanos, int64_t end_nanos,
                           bool error = false) {
  opentelemetry::proto::trace::v1::Span span;
  span.set_trace_id(trace_id);
  span.set_span_id(span_id);
  span.set_parent_span_id(parent);
  span.set_name(name);
  span.set_start_time_unix_nano(static_cast<uint64_t>(start_nanos));
  span.set_end_time_unix_nano(static_cast<uint64_t>(end_nanos));
  if (error) {
    span.mutable_status()->set_code(opentelemetry::proto::trace::v1::Status::STATUS_CODE_ERROR);
    span.mutable_status()->set_message("payment declined");
  }
  SpanRecord record;
  record.origin = origin;
  span.SerializeToString(&record.span);
  record.span_id = span_id;
  record.start_unix_nanos = start_nanos;
  record.end_unix_nanos = end_nanos;
  record.is_error = error;
  record.is_root = parent.empty();
  return record;
}

// An origin with resource attribute service.name = `service` and scope "lib".
inline SpanOriginPtr MakeOrigin(const std::string& service) {
  opentelemetry::proto::resource::v1::Resource resource;
  auto* attr = resource.add_attributes();
  attr->set_key("service.name");
  attr->mutable_value()->set_string_value(service);
  opentelemetry::proto::common::v1::InstrumentationScope scope;
  scope.set_name("lib");
  auto origin = std::make_shared<SpanOrigin>();
  origin->resource = resource.SerializeAsString();
  origin->scope = scope.SerializeAsString();
  origin->service_name = service;
  return origin;
}

}  // namespace tracekeep::testing

#endif  // TRACEKEEP_TESTS_COLLECTOR_ADMIN_FAKE_ADMIN_BACKEND_H_
