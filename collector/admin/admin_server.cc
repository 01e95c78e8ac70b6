#include "collector/admin/admin_server.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "collector/common/ids.h"
#include "collector/common/logging.h"
#include "collector/common/status_macros.h"
#include "collector/pipeline/otlp_convert.h"
#include "collector/security/grpc_security.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"
#include "storage/span_store.h"
#include "tracekeep/admin/v1/admin.grpc.pb.h"

namespace tracekeep::admin {
namespace {

using security::ToGrpcStatus;

namespace pb = ::tracekeep::admin::v1;

// A GetTrace page stops before this many bytes of spans, resources and scopes: under gRPC's
// default 4 MiB message, with room for the OTLP framing.
constexpr size_t kMaxTracePageBytes = size_t{3} << 20;

// GetTrace page token: version byte, trace id, then the start time and span id of the last span
// returned.
constexpr uint8_t kTraceTokenVersion = 1;
constexpr size_t kTraceTokenHeaderSize = 1 + kTraceIdSize + 8;

std::string TraceToken(const std::string& trace_id, const SpanRecord& last) {
  std::string raw(1, static_cast<char>(kTraceTokenVersion));
  raw.append(trace_id);
  const uint64_t start = static_cast<uint64_t>(last.start_unix_nanos);
  for (int shift = 56; shift >= 0; shift -= 8) raw.push_back(static_cast<char>(start >> shift));
  raw.append(last.span_id.data(), last.span_id.size());
  return absl::WebSafeBase64Escape(raw);
}

// Where the page of `token` starts: after (start, span id).
struct TracePosition {
  int64_t start_unix_nanos = 0;
  std::string span_id;
};

absl::StatusOr<TracePosition> ParseTraceToken(const std::string& token,
                                              const std::string& trace_id) {
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw) || raw.size() < kTraceTokenHeaderSize) {
    constexpr size_t kShown = 40;
    return absl::InvalidArgumentError(
        absl::StrCat("page_token: not a next_page_token of GetTrace, got \"",
                     token.substr(0, kShown), token.size() > kShown ? "...\"" : "\""));
  }
  if (static_cast<uint8_t>(raw[0]) != kTraceTokenVersion) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_token: of another version of tracekeep (token format ", static_cast<int>(raw[0]),
        ", this one reads ", static_cast<int>(kTraceTokenVersion), "); read the trace again"));
  }
  const absl::string_view id = absl::string_view(raw).substr(1, kTraceIdSize);
  if (id != trace_id) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token: issued for trace ", ToHex(id), ", not ", ToHex(trace_id)));
  }
  TracePosition p;
  uint64_t start = 0;
  for (size_t i = 0; i < 8; ++i)
    start = (start << 8) | static_cast<uint8_t>(raw[1 + kTraceIdSize + i]);
  p.start_unix_nanos = static_cast<int64_t>(start);
  p.span_id = raw.substr(kTraceTokenHeaderSize);
  return p;
}

// Reads one page of a trace from `store` into `response`.
absl::Status ReadTrace(storage::SpanStore* store, const pb::GetTraceRequest& request,
                       pb::GetTraceResponse* response) {
  const std::string& trace_id_hex = request.trace_id();
  absl::StatusOr<std::string> trace_id = FromHex(trace_id_hex, kTraceIdSize);
  if (!trace_id.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("trace_id: ", trace_id.status().message()));
  }
  if (!IsValidId(*trace_id, kTraceIdSize)) {
    return absl::InvalidArgumentError(
        absl::StrCat("trace_id: \"", trace_id_hex, "\" is all zero, which no trace has"));
  }
  if (request.page_size() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_size: must be >= 0 (0 = as many spans as fit in 3 MiB), got ", request.page_size()));
  }
  std::optional<TracePosition> after;
  if (!request.page_token().empty()) {
    TK_ASSIGN_OR_RETURN(after, ParseTraceToken(request.page_token(), *trace_id));
  }
  if (store == nullptr) {
    return absl::FailedPreconditionError("trace storage is not enabled in this tracekeep");
  }
  const std::string hex = ToHex(*trace_id);
  absl::StatusOr<std::vector<SpanRecord>> spans = store->GetTrace(*trace_id);
  if (absl::IsNotFound(spans.status())) {
    return absl::NotFoundError(absl::StrCat("trace ", hex, " not found"));
  }
  if (!spans.ok()) {
    return absl::Status(spans.status().code(),
                        absl::StrCat("reading trace ", hex, ": ", spans.status().message()));
  }
  // The store orders spans by start time then span id: the page starts after the token's span.
  auto first = spans->begin();
  if (after.has_value()) {
    first = std::upper_bound(
        spans->begin(), spans->end(), *after, [](const TracePosition& p, const SpanRecord& s) {
          return std::tie(p.start_unix_nanos, p.span_id) < std::tie(s.start_unix_nanos, s.span_id);
        });
  }
  const size_t max_spans =
      request.page_size() > 0 ? static_cast<size_t>(request.page_size()) : spans->size();
  std::vector<const SpanRecord*> records;
  absl::flat_hash_set<const SpanOrigin*> origins;
  size_t bytes = 0;
  for (auto it = first; it != spans->end() && records.size() < max_spans; ++it) {
    size_t size = it->span.size() + 16;
    if (it->origin != nullptr && !origins.contains(it->origin.get())) {
      size += it->origin->resource.size() + it->origin->scope.size() +
              it->origin->resource_schema_url.size() + it->origin->scope_schema_url.size() + 32;
    }
    if (!records.empty() && bytes + size > kMaxTracePageBytes) break;
    bytes += size;
    if (it->origin != nullptr) origins.insert(it->origin.get());
    records.push_back(&*it);
  }
  OtlpRequest otlp;
  BuildRequest(records, &otlp);
  // ExportTraceServiceRequest and TracesData hold the same repeated ResourceSpans field.
  opentelemetry::proto::trace::v1::TracesData traces_data;
  traces_data.mutable_resource_spans()->Swap(otlp.mutable_resource_spans());
  response->set_trace_id(hex);
  response->set_span_count(static_cast<uint32_t>(records.size()));
  response->set_total_size(static_cast<int64_t>(spans->size()));
  if (!records.empty() && records.back() != &spans->back()) {
    response->set_next_page_token(TraceToken(*trace_id, *records.back()));
  }
  if (!traces_data.SerializeToString(response->mutable_traces_data())) {
    return absl::InternalError(absl::StrCat("serializing trace ", hex));
  }
  return absl::OkStatus();
}

absl::Status NoOrders() {
  return absl::FailedPreconditionError("order tracking is not enabled in this tracekeep");
}

}  // namespace

security::Role RequiredRole(const std::string& method) {
  static constexpr const char* kViewerMethods[] = {"GetStatus",        "GetTrace", "GetPolicies",
                                                   "ValidatePolicies", "GetOrder", "ListOrders"};
  for (const char* m : kViewerMethods) {
    if (method == m) return security::Role::kViewer;
  }
  return security::Role::kOperator;
}

namespace {

// Who is calling: resolved from the call's token or client certificate.
struct Caller {
  std::string name;
  std::string via = "none";  // "token", "certificate", "anonymous", "none"
  security::Role role = security::Role::kNone;
  std::string peer;
};

}  // namespace

absl::Status AdminBackend::Checkpoint(const std::string& /*dir*/,
                                      pb::CheckpointResponse* /*response*/) {
  return absl::FailedPreconditionError("this tracekeep has no database to checkpoint");
}

absl::Status AdminBackend::Drain(const pb::DrainRequest& /*request*/,
                                 pb::DrainResponse* /*response*/) {
  return absl::FailedPreconditionError("this tracekeep has no pipeline to drain");
}

namespace {

class AdminServiceImpl final : public pb::AdminService::CallbackService {
 public:
  AdminServiceImpl(AdminBackend* backend, const AdminServerOptions* options)
      : backend_(backend), options_(options) {}

  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* context,
                                      const pb::GetStatusRequest* /*request*/,
                                      pb::GetStatusResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    Caller caller;
    if (!Authorize(context, reactor, "GetStatus", &caller)) return reactor;
    backend_->FillStatus(response);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* GetTrace(grpc::CallbackServerContext* context,
                                     const pb::GetTraceRequest* request,
                                     pb::GetTraceResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    Caller caller;
    if (!Authorize(context, reactor, "GetTrace", &caller)) return reactor;
    const absl::Status status = ReadTrace(backend_->store(), *request, response);
    if (!status.ok() && !absl::IsNotFound(status) && !absl::IsInvalidArgument(status) &&
        !absl::IsFailedPrecondition(status)) {
      TK_LOG(Warning) << "admin GetTrace(" << request->trace_id() << "): " << status;
    }
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  }

  grpc::ServerUnaryReactor* GetPolicies(grpc::CallbackServerContext* context,
                                        const pb::GetPoliciesRequest* /*request*/,
                                        pb::GetPoliciesResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    Caller caller;
    if (!Authorize(context, reactor, "GetPolicies", &caller)) return reactor;
    response->set_policies_yaml(backend_->GetPolicies());
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  grpc::ServerUnaryReactor* SetPolicies(grpc::CallbackServerContext* context,
                                        const pb::SetPoliciesRequest* request,
                                        pb::SetPoliciesResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    Caller caller;
    if (!Authorize(context, reactor, "SetPolicies", &caller)) return reactor;
    const std::string before = options_->audit != nullptr ? backend_->GetPolicies() : "";
    absl::StatusOr<int> n = backend_->SetPolicies(request->policies_yaml(), false);
    if (n.ok()) response->set_policy_count(static_cast<uint32_t>(*n));
    if (options_->audit != nullptr) {
      AuditEvent event = EventOf(caller, "SetPolicies", n.status());
      event.request.emplace_back("policies_bytes", absl::StrCat(request->policies_yaml().size()));
      if (n.ok()) event.policy_diff = LineDiff(before, backend_->GetPolicies());
      options_->audit->Record(event);
    }
    reactor->Finish(ToGrpcStatus(n.status()));
    return reactor;
  }

  grpc::ServerUnaryReactor* ValidatePolicies(grpc::CallbackServerContext* context,
                                             const pb::ValidatePoliciesRequest* request,
                                             pb::ValidatePoliciesResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    Caller caller;
    if (!Authorize(context, reactor, "ValidatePolicies", &caller)) return reactor;
    absl::StatusOr<int> n = backend_->SetPolicies(request->policies_yaml(), true);
    if (n.ok()) response->set_policy_count(static_cast<uint32_t>(*n));
    reactor->Finish(ToGrpcStatus(n.status()));
    return reactor;
  }

  grpc::ServerUnaryReactor* GetOrder(grpc::CallbackServerContext* context,
                                     const pb::GetOrderRequest* request,
                                     pb::GetOrderResponse* response) override {
    return Unary(context, "GetOrder", request, response, &AdminBackend::GetOrder);
  }

  grpc::ServerUnaryReactor* ListOrders(grpc::CallbackServerContext* context,
                                       const pb::ListOrdersRequest* request,
                                       pb::ListOrdersResponse* response) override {
    return Unary(context, "ListOrders", request, response, &AdminBackend::ListOrders);
  }

  grpc::ServerUnaryReactor* KeepOrder(grpc::CallbackServerContext* context,
                                      const pb::KeepOrderRequest* request,
                                      pb::KeepOrderResponse* response) override {
    return Unary(context, "KeepOrder", request, response, &AdminBackend::KeepOrder);
  }

  grpc::ServerUnaryReactor* Checkpoint(grpc::CallbackServerContext* context,
                                       const pb::CheckpointRequest* request,
                                       pb::CheckpointResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    Caller caller;
    if (!Authorize(context, reactor, "Checkpoint", &caller)) return reactor;
    absl::Status status;
    const std::string& dir = request->dir();
    if (dir.empty() || dir[0] != '/') {
      status = absl::InvalidArgumentError(
          absl::StrCat("dir must be an absolute path on the daemon's machine, got \"", dir, "\""));
    } else {
      status = backend_->Checkpoint(dir, response);
    }
    if (status.ok()) {
      TK_LOG(Info) << "admin: checkpoint written to \"" << dir << "\" for " << context->peer();
    } else if (!absl::IsInvalidArgument(status) && !absl::IsAlreadyExists(status)) {
      TK_LOG(Warning) << "admin Checkpoint(" << dir << "): " << status;
    }
    if (options_->audit != nullptr) {
      AuditEvent event = EventOf(caller, "Checkpoint", status);
      event.request.emplace_back("dir", dir);
      options_->audit->Record(event);
    }
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  }

  grpc::ServerUnaryReactor* Drain(grpc::CallbackServerContext* context,
                                  const pb::DrainRequest* request,
                                  pb::DrainResponse* response) override {
    return Unary(context, "Drain", request, response, &AdminBackend::Drain);
  }

 private:
  // Runs one unary call on the backend, once the caller is authorized.
  template <typename Request, typename Response>
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* context, const char* name,
                                  const Request* request, Response* response,
                                  absl::Status (AdminBackend::*method)(const Request&, Response*)) {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    Caller caller;
    if (!Authorize(context, reactor, name, &caller)) return reactor;
    const absl::Status status = (backend_->*method)(*request, response);
    if (!status.ok() && !absl::IsNotFound(status) && !absl::IsInvalidArgument(status) &&
        !absl::IsFailedPrecondition(status)) {
      TK_LOG(Warning) << "admin " << name << ": " << status;
    }
    if (options_->audit != nullptr && RequiredRole(name) == security::Role::kOperator) {
      AuditEvent event = EventOf(caller, name, status);
      AddRequestFields(*request, &event);
      options_->audit->Record(event);
    }
    reactor->Finish(ToGrpcStatus(status));
    return reactor;
  }

  static void AddRequestFields(const pb::KeepOrderRequest& r, AuditEvent* e) {
    e->request.emplace_back("order_id", r.order_id());
  }
  static void AddRequestFields(const pb::DrainRequest& r, AuditEvent* e) {
    e->request.emplace_back("deadline_seconds", absl::StrCat(r.deadline_seconds()));
  }
  template <typename Request>
  static void AddRequestFields(const Request&, AuditEvent*) {}

  static AuditEvent EventOf(const Caller& caller, const std::string& method,
                            const absl::Status& result) {
    AuditEvent e;
    e.time = absl::Now();
    e.method = method;
    e.caller = caller.name;
    e.via = caller.via;
    e.role = security::RoleName(caller.role);
    e.peer = caller.peer;
    e.result = result;
    return e;
  }

  bool auth_configured() const {
    return !options_->auth_token.empty() || options_->tokens != nullptr ||
           !options_->certificate_roles.empty();
  }

  // Who is calling, from the call's token or certificate; kUnauthenticated when neither names a
  // caller (and admin auth is configured).
  absl::Status Identify(const grpc::CallbackServerContext& context, Caller* caller) {
    if (!auth_configured()) {
      caller->via = "anonymous";
      caller->role = security::Role::kOperator;
      return absl::OkStatus();
    }
    const std::string authorization = security::AuthorizationOf(context);
    if (!authorization.empty()) {
      if (!options_->auth_token.empty() &&
          security::BearerTokenMatches(authorization, options_->auth_token)) {
        caller->name = "admin";
        caller->via = "token";
        caller->role = security::Role::kOperator;
        return absl::OkStatus();
      }
      if (options_->tokens != nullptr) {
        absl::StatusOr<security::TokenHolder> holder =
            options_->tokens->Authenticate(authorization);
        if (holder.ok()) {
          caller->name = holder->name;
          caller->via = "token";
          caller->role = holder->role;
          return absl::OkStatus();
        }
      }
      return absl::UnauthenticatedError(
          "wrong admin token (send \"authorization: Bearer <token>\" with a token of the "
          "daemon's admin.auth_token_file or admin.tokens_file)");
    }
    const std::string subject = security::PeerCertificateSubject(context);
    if (!subject.empty()) {
      auto it = options_->certificate_roles.find(subject);
      if (it != options_->certificate_roles.end()) {
        caller->name = subject;
        caller->via = "certificate";
        caller->role = it->second;
        return absl::OkStatus();
      }
      return absl::UnauthenticatedError(
          absl::StrCat("client certificate \"", subject,
                       "\" has no role (admin.client_certificates) and the call has no token"));
    }
    return absl::UnauthenticatedError(
        "missing admin token (send \"authorization: Bearer <token>\")");
  }

  // Checks the caller's address, identity and role for `method`; on refusal finishes the call
  // (auditing it when `method` changes something) and returns false.
  bool Authorize(grpc::CallbackServerContext* context, grpc::ServerUnaryReactor* reactor,
                 const std::string& method, Caller* caller) {
    caller->peer = context->peer();
    absl::Status access = security::CheckCall(*context, options_->allowed_networks, /*token=*/"");
    if (access.ok()) access = Identify(*context, caller);
    if (access.ok()) {
      const security::Role needed = RequiredRole(method);
      if (static_cast<int>(caller->role) >= static_cast<int>(needed)) return true;
      access = absl::PermissionDeniedError(
          absl::StrCat(method, " needs the ", security::RoleName(needed), " role; \"", caller->name,
                       "\" has the ", security::RoleName(caller->role), " role"));
      auth_stats_.permission_denied.fetch_add(1, std::memory_order_relaxed);
    } else if (absl::IsUnauthenticated(access)) {
      auth_stats_.unauthenticated.fetch_add(1, std::memory_order_relaxed);
    }
    TK_LOG(Warning) << "admin: refused " << method << " from " << caller->peer << ": "
                    << access.message();
    if (options_->audit != nullptr && RequiredRole(method) == security::Role::kOperator) {
      options_->audit->Record(EventOf(*caller, method, access));
    }
    reactor->Finish(ToGrpcStatus(access));
    return false;
  }

 public:
  const AdminAuthStats& auth_stats() const { return auth_stats_; }

 private:
  AdminAuthStats auth_stats_;

  AdminBackend* const backend_;
  const AdminServerOptions* const options_;
};

}  // namespace

absl::Status AdminBackend::GetOrder(const pb::GetOrderRequest&, pb::GetOrderResponse*) {
  return NoOrders();
}
absl::Status AdminBackend::ListOrders(const pb::ListOrdersRequest&, pb::ListOrdersResponse*) {
  return NoOrders();
}
absl::Status AdminBackend::KeepOrder(const pb::KeepOrderRequest&, pb::KeepOrderResponse*) {
  return NoOrders();
}

class AdminServer::Impl {
 public:
  Impl(AdminBackend* backend, const AdminServerOptions& options, std::string host)
      : options_(options), service_(backend, &options_), host_(std::move(host)) {}

  absl::Status Start(const std::string& endpoint) {
    grpc::ServerBuilder builder;
    // Without this, a second daemon could bind the same port and silently share the calls.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    TK_ASSIGN_OR_RETURN(auto credentials, security::MakeServerCredentials(options_.tls));
    builder.AddListeningPort(endpoint, credentials, &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port_ == 0) {
      server_.reset();
      return absl::UnavailableError(
          absl::StrCat("admin: cannot listen on ", endpoint, " (address in use or not local?)"));
    }
    return absl::OkStatus();
  }

  int port() const { return port_; }
  const std::string& host() const { return host_; }
  const AdminAuthStats& auth_stats() const { return service_.auth_stats(); }

  void Shutdown(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    if (server_ == nullptr || shut_down_) return;
    shut_down_ = true;
    server_->Shutdown(absl::ToChronoTime(deadline));
    server_->Wait();
  }

 private:
  const AdminServerOptions options_;
  AdminServiceImpl service_;
  const std::string host_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::Start(const AdminServerOptions& options,
                                                                AdminBackend* backend) {
  if (backend == nullptr) return absl::InvalidArgumentError("admin: backend is null");
  std::string host;
  int port = 0;
  TK_RETURN_IF_ERROR(
      security::ParseListenEndpoint("admin endpoint", options.endpoint, &host, &port));
  auto impl = std::make_unique<Impl>(backend, options, std::move(host));
  TK_RETURN_IF_ERROR(impl->Start(options.endpoint));
  TK_LOG(Info) << "admin API listening on " << impl->host() << ":" << impl->port();
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(impl)));
}

AdminServer::AdminServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AdminServer::~AdminServer() { Shutdown(absl::Now()); }

int AdminServer::port() const { return impl_->port(); }

std::string AdminServer::address() const { return absl::StrCat(impl_->host(), ":", impl_->port()); }

void AdminServer::Shutdown(absl::Time deadline) { impl_->Shutdown(deadline); }

const AdminAuthStats& AdminServer::auth_stats() const { return impl_->auth_stats(); }

}  // namespace tracekeep::admin
