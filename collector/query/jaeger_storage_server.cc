#include "collector/query/jaeger_storage_server.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "collector/common/ids.h"
#include "collector/common/logging.h"
#include "collector/common/status_macros.h"
#include "collector/pipeline/otlp_convert.h"
#include "collector/query/trace_search.h"
#include "collector/security/grpc_security.h"
#include "jaeger/storage/v2/dependency_storage.grpc.pb.h"
#include "jaeger/storage/v2/trace_storage.grpc.pb.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"
#include "storage/span_fields.h"

namespace tracekeep::query {

const char* const JaegerStorageStats::kMethodNames[JaegerStorageStats::kMethods] = {
    "GetTraces", "GetServices", "GetOperations", "FindTraces", "FindTraceIDs", "GetDependencies"};

namespace {

using security::ToGrpcStatus;

namespace pb = ::jaeger::storage::v2;
using ::opentelemetry::proto::trace::v1::TracesData;

enum Method { kGetTraces, kGetServices, kGetOperations, kFindTraces, kFindTraceIDs, kGetDeps };

// 0001-01-01T00:00:00Z, which Jaeger sends for an unset time.
constexpr int64_t kZeroTimeSeconds = -62135596800;
constexpr int64_t kMaxSeconds = std::numeric_limits<int64_t>::max() / 1000000000 - 1;

// Unix nanoseconds of a Timestamp, or nothing when it is unset (absent, zero, or Jaeger's
// 0001-01-01). Times before 1970 are clamped to 0 and far future ones to the largest int64.
std::optional<int64_t> TimeOf(bool present, const google::protobuf::Timestamp& t) {
  if (!present || t.seconds() <= kZeroTimeSeconds || (t.seconds() == 0 && t.nanos() == 0)) {
    return std::nullopt;
  }
  if (t.seconds() < 0) return 0;
  if (t.seconds() > kMaxSeconds) return std::numeric_limits<int64_t>::max();
  return t.seconds() * 1000000000 + t.nanos();
}

void SetTimestamp(int64_t unix_nanos, google::protobuf::Timestamp* t) {
  t->set_seconds(unix_nanos / 1000000000);
  t->set_nanos(static_cast<int32_t>(unix_nanos % 1000000000));
}

// Nanoseconds of a Duration, nothing when unset or zero; kInvalidArgument when negative.
absl::StatusOr<std::optional<int64_t>> DurationOf(bool present, const google::protobuf::Duration& d,
                                                  const char* field) {
  if (!present || (d.seconds() == 0 && d.nanos() == 0)) return std::optional<int64_t>();
  if (d.seconds() < 0 || d.nanos() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("query.", field, ": must be >= 0, got ", d.seconds(), "s ", d.nanos(), "ns"));
  }
  if (d.seconds() > kMaxSeconds) return std::optional<int64_t>(std::numeric_limits<int64_t>::max());
  return std::optional<int64_t>(d.seconds() * 1000000000 + d.nanos());
}

// The string form of a query attribute value: jaeger.storage.v2.AnyValue has OTLP's field
// numbers, so its bytes read like an OTLP AnyValue.
std::string ValueString(const pb::AnyValue& value) {
  return storage::AnyValueString(value.SerializeAsString());
}

absl::StatusOr<TraceFilter> ParseQuery(const pb::TraceQueryParameters& q, int default_depth) {
  TraceFilter filter;
  if (q.service_name().empty()) {
    return absl::InvalidArgumentError("query.service_name: required (the service to search)");
  }
  filter.service = q.service_name();
  if (!q.operation_name().empty()) filter.operation = q.operation_name();
  for (int i = 0; i < q.attributes_size(); ++i) {
    const pb::KeyValue& kv = q.attributes(i);
    if (kv.key().empty()) {
      return absl::InvalidArgumentError(absl::StrCat("query.attributes[", i, "]: empty key"));
    }
    std::string value = ValueString(kv.value());
    if (kv.key() == "error") {
      if (value != "true" && value != "false") {
        return absl::InvalidArgumentError(absl::StrCat(
            "query.attributes[", i, "] (error): must be true or false, got \"", value, "\""));
      }
      filter.error = value == "true";
      continue;
    }
    filter.tags.emplace_back(kv.key(), std::move(value));
  }
  const std::optional<int64_t> min = TimeOf(q.has_start_time_min(), q.start_time_min());
  const std::optional<int64_t> max = TimeOf(q.has_start_time_max(), q.start_time_max());
  if (min && max && *max < *min) {
    return absl::InvalidArgumentError(absl::StrCat(
        "query: start_time_max (", absl::FormatTime(absl::FromUnixNanos(*max)),
        ") is before start_time_min (", absl::FormatTime(absl::FromUnixNanos(*min)), ")"));
  }
  if (min) filter.start_min_unix_nanos = *min;
  if (max) filter.start_max_unix_nanos = *max;
  TK_ASSIGN_OR_RETURN(filter.duration_min_nanos,
                      DurationOf(q.has_duration_min(), q.duration_min(), "duration_min"));
  TK_ASSIGN_OR_RETURN(filter.duration_max_nanos,
                      DurationOf(q.has_duration_max(), q.duration_max(), "duration_max"));
  if (filter.duration_min_nanos && filter.duration_max_nanos &&
      *filter.duration_max_nanos < *filter.duration_min_nanos) {
    return absl::InvalidArgumentError(
        absl::StrCat("query: duration_max (", *filter.duration_max_nanos,
                     "ns) is below duration_min (", *filter.duration_min_nanos, "ns)"));
  }
  filter.limit = q.search_depth() > 0 ? static_cast<size_t>(q.search_depth())
                                      : static_cast<size_t>(default_depth);
  return filter;
}

class ReaderBase {
 public:
  ReaderBase(const JaegerStorageOptions* options, storage::SpanStore* store,
             storage::TraceIndex* index, JaegerStorageStats* stats)
      : options_(options), store_(store), index_(index), stats_(stats) {}

 protected:
  // Checks the caller's address; counts the call.
  absl::Status Begin(const grpc::ServerContext& context, Method method) {
    stats_->requests[method].fetch_add(1, std::memory_order_relaxed);
    absl::Status access = security::CheckCall(context, options_->allowed_networks, "");
    if (!access.ok()) {
      TK_LOG(Warning) << "jaeger remote storage: refused " << context.peer() << ": "
                      << access.message();
    }
    return access;
  }

  absl::Time Now() const {
    return (options_->clock != nullptr ? options_->clock : Clock::Real())->Now();
  }

  // The earliest start time still within the retention (0 without retention).
  int64_t RetainedSince() const {
    if (options_->retention <= absl::ZeroDuration()) return 0;
    return std::max<int64_t>(absl::ToUnixNanos(Now() - options_->retention), 0);
  }

  grpc::Status End(Method method, const absl::Status& status) {
    if (!status.ok()) {
      stats_->failed[method].fetch_add(1, std::memory_order_relaxed);
      if (!absl::IsInvalidArgument(status) && !absl::IsPermissionDenied(status) &&
          !absl::IsCancelled(status)) {
        TK_LOG(Warning) << "jaeger remote storage " << JaegerStorageStats::kMethodNames[method]
                        << ": " << status;
      }
    }
    return ToGrpcStatus(status);
  }

  // Writes one trace as consecutive stream messages, each under max_chunk_bytes (a single span
  // larger than that goes alone). kCancelled when the client went away.
  absl::Status WriteTrace(const std::vector<SpanRecord>& spans,
                          grpc::ServerWriter<TracesData>* writer) {
    std::vector<const SpanRecord*> chunk;
    absl::flat_hash_set<const SpanOrigin*> origins;
    size_t bytes = 0;
    auto flush = [&]() -> absl::Status {
      if (chunk.empty()) return absl::OkStatus();
      OtlpRequest otlp;
      BuildRequest(chunk, &otlp);
      // ExportTraceServiceRequest and TracesData hold the same repeated ResourceSpans field.
      TracesData data;
      data.mutable_resource_spans()->Swap(otlp.mutable_resource_spans());
      if (!writer->Write(data)) return absl::CancelledError("the client went away");
      stats_->chunks_sent.fetch_add(1, std::memory_order_relaxed);
      stats_->spans_returned.fetch_add(chunk.size(), std::memory_order_relaxed);
      chunk.clear();
      origins.clear();
      bytes = 0;
      return absl::OkStatus();
    };
    for (const SpanRecord& span : spans) {
      size_t size = span.span.size() + 16;
      const bool new_origin = span.origin != nullptr && !origins.contains(span.origin.get());
      if (new_origin) {
        size += span.origin->resource.size() + span.origin->scope.size() +
                span.origin->resource_schema_url.size() + span.origin->scope_schema_url.size() + 32;
      }
      if (!chunk.empty() && bytes + size > options_->max_chunk_bytes) {
        TK_RETURN_IF_ERROR(flush());
        if (span.origin != nullptr) {
          size = span.span.size() + 16 + span.origin->resource.size() + span.origin->scope.size() +
                 span.origin->resource_schema_url.size() + span.origin->scope_schema_url.size() +
                 32;
        }
      }
      bytes += size;
      if (span.origin != nullptr) origins.insert(span.origin.get());
      chunk.push_back(&span);
    }
    TK_RETURN_IF_ERROR(flush());
    stats_->traces_returned.fetch_add(1, std::memory_order_relaxed);
    return absl::OkStatus();
  }

  const JaegerStorageOptions* const options_;
  storage::SpanStore* const store_;
  storage::TraceIndex* const index_;
  JaegerStorageStats* const stats_;
};

class TraceReaderImpl final : public pb::TraceReader::Service, private ReaderBase {
 public:
  using ReaderBase::ReaderBase;

  grpc::Status GetTraces(grpc::ServerContext* context, const pb::GetTracesRequest* request,
                         grpc::ServerWriter<TracesData>* writer) override {
    absl::Status s = Begin(*context, kGetTraces);
    if (s.ok()) s = DoGetTraces(*request, writer);
    return End(kGetTraces, s);
  }

  grpc::Status GetServices(grpc::ServerContext* context, const pb::GetServicesRequest* /*request*/,
                           pb::GetServicesResponse* response) override {
    absl::Status s = Begin(*context, kGetServices);
    if (s.ok()) {
      absl::StatusOr<std::vector<std::string>> services = index_->Services();
      if (services.ok()) {
        for (std::string& service : *services) response->add_services(std::move(service));
      }
      s = services.status();
    }
    return End(kGetServices, s);
  }

  grpc::Status GetOperations(grpc::ServerContext* context, const pb::GetOperationsRequest* request,
                             pb::GetOperationsResponse* response) override {
    absl::Status s = Begin(*context, kGetOperations);
    if (s.ok()) s = DoGetOperations(*request, response);
    return End(kGetOperations, s);
  }

  grpc::Status FindTraces(grpc::ServerContext* context, const pb::FindTracesRequest* request,
                          grpc::ServerWriter<TracesData>* writer) override {
    absl::Status s = Begin(*context, kFindTraces);
    if (s.ok()) {
      absl::Status write_status;
      s = Search(*request, [&](FoundTrace&& trace) {
        write_status = WriteTrace(trace.spans, writer);
        return write_status.ok();
      });
      if (s.ok()) s = write_status;
    }
    return End(kFindTraces, s);
  }

  grpc::Status FindTraceIDs(grpc::ServerContext* context, const pb::FindTracesRequest* request,
                            pb::FindTraceIDsResponse* response) override {
    absl::Status s = Begin(*context, kFindTraceIDs);
    if (s.ok()) {
      s = Search(*request, [&](FoundTrace&& trace) {
        pb::FoundTraceID* found = response->add_trace_ids();
        found->set_trace_id(trace.trace_id);
        SetTimestamp(trace.start_unix_nanos, found->mutable_start());
        SetTimestamp(trace.end_unix_nanos, found->mutable_end());
        return true;
      });
    }
    return End(kFindTraceIDs, s);
  }

 private:
  absl::Status DoGetTraces(const pb::GetTracesRequest& request,
                           grpc::ServerWriter<TracesData>* writer) {
    for (int i = 0; i < request.query_size(); ++i) {
      const std::string& id = request.query(i).trace_id();
      if (id.size() != kTraceIdSize) {
        return absl::InvalidArgumentError(absl::StrCat("query[", i, "].trace_id: must have ",
                                                       kTraceIdSize, " bytes, got ", id.size()));
      }
    }
    absl::flat_hash_set<std::string> done;
    for (const pb::GetTraceParams& params : request.query()) {
      if (!done.insert(params.trace_id()).second) continue;  // asked twice: sent once
      absl::StatusOr<std::vector<SpanRecord>> spans = store_->GetTrace(params.trace_id());
      if (absl::IsNotFound(spans.status())) continue;
      TK_RETURN_IF_ERROR(spans.status());
      const int64_t since = RetainedSince();
      spans->erase(std::remove_if(spans->begin(), spans->end(),
                                  [&](const SpanRecord& s) { return s.start_unix_nanos < since; }),
                   spans->end());
      if (spans->empty()) continue;  // expired, not yet compacted away
      TK_RETURN_IF_ERROR(WriteTrace(*spans, writer));
    }
    return absl::OkStatus();
  }

  absl::Status DoGetOperations(const pb::GetOperationsRequest& request,
                               pb::GetOperationsResponse* response) {
    if (request.service().empty()) {
      return absl::InvalidArgumentError("service: required");
    }
    std::optional<uint32_t> kind;
    if (!request.span_kind().empty()) {
      const int k = storage::SpanKindFromName(request.span_kind());
      if (k <= 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            "span_kind: must be one of server, client, producer, consumer, internal or empty, "
            "got \"",
            request.span_kind(), "\""));
      }
      kind = static_cast<uint32_t>(k);
    }
    TK_ASSIGN_OR_RETURN(std::vector<storage::OperationEntry> operations,
                        index_->Operations(request.service(), kind));
    for (const storage::OperationEntry& op : operations) {
      pb::Operation* out = response->add_operations();
      out->set_name(op.name);
      out->set_span_kind(std::string(storage::SpanKindName(op.kind)));
    }
    return absl::OkStatus();
  }

  absl::Status Search(const pb::FindTracesRequest& request,
                      const std::function<bool(FoundTrace&&)>& fn) {
    TK_ASSIGN_OR_RETURN(TraceFilter filter,
                        ParseQuery(request.query(), options_->default_search_depth));
    filter.start_min_unix_nanos = std::max(filter.start_min_unix_nanos, RetainedSince());
    SearchStats stats;
    absl::Status s =
        query::FindTraces(*store_, *index_, filter, options_->max_traces_examined, fn, &stats);
    stats_->traces_examined.fetch_add(stats.traces_examined, std::memory_order_relaxed);
    stats_->traces_skipped.fetch_add(stats.traces_skipped, std::memory_order_relaxed);
    if (stats.truncated) {
      stats_->searches_truncated.fetch_add(1, std::memory_order_relaxed);
      TK_LOG(Info) << "jaeger remote storage: a search of service \"" << filter.service
                   << "\" stopped after reading " << stats.traces_examined
                   << " traces (max_traces_examined); index more attributes or narrow the window";
    }
    return s;
  }
};

class DependencyReaderImpl final : public pb::DependencyReader::Service, private ReaderBase {
 public:
  using ReaderBase::ReaderBase;

  grpc::Status GetDependencies(grpc::ServerContext* context,
                               const pb::GetDependenciesRequest* request,
                               pb::GetDependenciesResponse* response) override {
    absl::Status s = Begin(*context, kGetDeps);
    if (s.ok()) s = DoGetDependencies(*request, response);
    return End(kGetDeps, s);
  }

 private:
  absl::Status DoGetDependencies(const pb::GetDependenciesRequest& request,
                                 pb::GetDependenciesResponse* response) {
    const int64_t asked_start =
        TimeOf(request.has_start_time(), request.start_time()).value_or(int64_t{0});
    const int64_t end =
        TimeOf(request.has_end_time(), request.end_time()).value_or(absl::ToUnixNanos(Now()));
    if (end < asked_start) {
      return absl::InvalidArgumentError(absl::StrCat(
          "end_time (", absl::FormatTime(absl::FromUnixNanos(end)), ") is before start_time (",
          absl::FormatTime(absl::FromUnixNanos(asked_start)), ")"));
    }
    const int64_t start = std::max(asked_start, RetainedSince());
    TK_ASSIGN_OR_RETURN(std::vector<storage::DependencyEdge> edges,
                        index_->Dependencies(start, end));
    for (const storage::DependencyEdge& e : edges) {
      pb::Dependency* d = response->add_dependencies();
      d->set_parent(e.parent);
      d->set_child(e.child);
      d->set_call_count(e.calls);
    }
    return absl::OkStatus();
  }
};

}  // namespace

class JaegerStorageServer::Impl {
 public:
  Impl(const JaegerStorageOptions& options, storage::SpanStore* store, storage::TraceIndex* index,
       std::string host)
      : options_(options),
        traces_(&options_, store, index, &stats_),
        dependencies_(&options_, store, index, &stats_),
        host_(std::move(host)) {}

  absl::Status Start() {
    grpc::ServerBuilder builder;
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    TK_ASSIGN_OR_RETURN(auto credentials, security::MakeServerCredentials(options_.tls));
    builder.AddListeningPort(options_.endpoint, credentials, &port_);
    builder.RegisterService(&traces_);
    builder.RegisterService(&dependencies_);
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port_ == 0) {
      server_.reset();
      return absl::UnavailableError(absl::StrCat("jaeger_remote_storage: cannot listen on ",
                                                 options_.endpoint,
                                                 " (address in use or not local?)"));
    }
    return absl::OkStatus();
  }

  int port() const { return port_; }
  const std::string& host() const { return host_; }
  const JaegerStorageStats& stats() const { return stats_; }

  void Shutdown(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    if (server_ == nullptr || shut_down_) return;
    shut_down_ = true;
    server_->Shutdown(absl::ToChronoTime(deadline));
    server_->Wait();
  }

 private:
  const JaegerStorageOptions options_;
  JaegerStorageStats stats_;
  TraceReaderImpl traces_;
  DependencyReaderImpl dependencies_;
  const std::string host_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

absl::StatusOr<std::unique_ptr<JaegerStorageServer>> JaegerStorageServer::Start(
    const JaegerStorageOptions& options, storage::SpanStore* store, storage::TraceIndex* index) {
  if (store == nullptr || index == nullptr) {
    return absl::InvalidArgumentError("jaeger_remote_storage: the store has no trace index");
  }
  std::string host;
  int port = 0;
  TK_RETURN_IF_ERROR(security::ParseListenEndpoint("jaeger_remote_storage.endpoint",
                                                   options.endpoint, &host, &port));
  auto impl = std::make_unique<Impl>(options, store, index, std::move(host));
  TK_RETURN_IF_ERROR(impl->Start());
  TK_LOG(Info) << "jaeger remote storage API (jaeger.storage.v2) listening on " << impl->host()
               << ":" << impl->port();
  return std::unique_ptr<JaegerStorageServer>(new JaegerStorageServer(std::move(impl)));
}

JaegerStorageServer::JaegerStorageServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JaegerStorageServer::~JaegerStorageServer() { Shutdown(absl::Now()); }
int JaegerStorageServer::port() const { return impl_->port(); }
std::string JaegerStorageServer::address() const {
  return absl::StrCat(impl_->host(), ":", impl_->port());
}
const JaegerStorageStats& JaegerStorageServer::stats() const { return impl_->stats(); }
void JaegerStorageServer::Shutdown(absl::Time deadline) { impl_->Shutdown(deadline); }

}  // namespace tracekeep::query
