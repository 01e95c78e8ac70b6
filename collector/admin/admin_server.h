// The admin gRPC API of the daemon (proto/tracekeep/admin/v1/admin.proto), used by tracekeepctl.
#ifndef TRACEKEEP_COLLECTOR_ADMIN_ADMIN_SERVER_H_
#define TRACEKEEP_COLLECTOR_ADMIN_ADMIN_SERVER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/admin/audit_log.h"
#include "collector/security/access.h"
#include "collector/security/token_file.h"

namespace tracekeep::admin::v1 {
class GetStatusResponse;
class GetOrderRequest;
class GetOrderResponse;
class ListOrdersRequest;
class ListOrdersResponse;
class KeepOrderRequest;
class KeepOrderResponse;
class CheckpointResponse;
class DrainRequest;
class DrainResponse;
}  // namespace tracekeep::admin::v1

namespace tracekeep::storage {
class SpanStore;
}  // namespace tracekeep::storage

namespace tracekeep::admin {

// What the admin API reads from the running daemon. Implemented by the daemon's wiring; called on
// gRPC threads, concurrently, so every method must be thread-safe.
class AdminBackend {
 public:
  virtual ~AdminBackend() = default;
  // Fills version, uptime, data dir, endpoints and pipeline counters.
  virtual void FillStatus(tracekeep::admin::v1::GetStatusResponse* status) = 0;
  // The store that GetTrace reads, or nullptr when the daemon runs without storage.
  virtual storage::SpanStore* store() = 0;
  // The sampling policies in force, as YAML (the syntax of the config's sampler.policies).
  virtual std::string GetPolicies() = 0;
  // Parses and validates `policies_yaml`; unless `validate_only`, puts it in force. Returns the
  // number of policies; kInvalidArgument lists every problem, one per line, and changes nothing.
  [[nodiscard]] virtual absl::StatusOr<int> SetPolicies(const std::string& policies_yaml,
                                                        bool validate_only) = 0;
  // The orders API. By default order tracking is not enabled (FAILED_PRECONDITION).
  [[nodiscard]] virtual absl::Status GetOrder(const tracekeep::admin::v1::GetOrderRequest& request,
                                              tracekeep::admin::v1::GetOrderResponse* response);
  [[nodiscard]] virtual absl::Status ListOrders(
      const tracekeep::admin::v1::ListOrdersRequest& request,
      tracekeep::admin::v1::ListOrdersResponse* response);
  [[nodiscard]] virtual absl::Status KeepOrder(
      const tracekeep::admin::v1::KeepOrderRequest& request,
      tracekeep::admin::v1::KeepOrderResponse* response);
  // Writes a consistent checkpoint of the database into `dir` (absolute, must not exist) and
  // fills `response`. The default answers FAILED_PRECONDITION (no database to copy).
  [[nodiscard]] virtual absl::Status Checkpoint(const std::string& dir,
                                                tracekeep::admin::v1::CheckpointResponse* response);
  // Stops intake for good, decides every pending trace now, waits until the export queue is
  // flushed or request.deadline_seconds pass, and reports the counts. Blocks the calling gRPC
  // thread for that long. The default answers FAILED_PRECONDITION (nothing to drain).
  [[nodiscard]] virtual absl::Status Drain(const tracekeep::admin::v1::DrainRequest& request,
                                           tracekeep::admin::v1::DrainResponse* response);
};

struct AdminServerOptions {
  // host:port to listen on; port 0 picks a free port (see AdminServer::port()).
  // Default: 127.0.0.1:4320 (loopback only).
  std::string endpoint = "127.0.0.1:4320";
  // Clients outside these networks get PERMISSION_DENIED. Default: empty (everyone who can reach
  // the endpoint).
  security::NetworkAllowList allowed_networks;
  // Who may call, and with which role (viewer: read-only methods; operator: every method).
  // When none of auth_token, tokens and certificate_roles is set, every caller who reaches the
  // endpoint is an operator (the behaviour before roles). Otherwise a caller must present a token
  // (checked first when the call carries one) or a client certificate with a role, else
  // UNAUTHENTICATED; a role too low for the method gets PERMISSION_DENIED.
  //
  // A single token ("authorization: Bearer <auth_token>") whose holder is an operator named
  // "admin". Default: empty.
  std::string auth_token;
  // Tokens with names and roles (security::TokenFile with roles). Not owned. Default: none.
  security::TokenFile* tokens = nullptr;
  // The role of a verified client certificate, by its subject as gRPC gives it (RFC 2253,
  // "CN=alice,O=ops"); needs tls.client_ca_file. Default: none.
  std::map<std::string, security::Role> certificate_roles;
  // Where calls that change something are recorded. Not owned. Default: none.
  AuditLog* audit = nullptr;
  // TLS when tls.cert_file is set; client certificates required when tls.client_ca_file is.
  // Default: plaintext.
  security::TlsSettings tls;
};

// Serves tracekeep.admin.v1.AdminService:
//  - GetStatus: whatever the backend fills in.
//  - GetTrace: every stored span of one trace as a serialized OTLP TracesData, in pages of at
//    most page_size spans and under 3 MiB. INVALID_ARGUMENT for a trace id that is not 32 hex
//    digits, a negative page size or a page token of another trace, NOT_FOUND for an unknown
//    trace, FAILED_PRECONDITION when there is no store.
//  - GetPolicies / SetPolicies / ValidatePolicies: the backend's sampling policies as YAML.
//  - Checkpoint: the backend's Checkpoint. INVALID_ARGUMENT for an empty or relative dir,
//    ALREADY_EXISTS when it exists.
//  - Drain: the backend's Drain.
// Viewer methods: GetStatus, GetTrace, GetPolicies, ValidatePolicies, GetOrder, ListOrders.
// Operator methods: SetPolicies, KeepOrder, Drain, Checkpoint (these are audited).

// Counters of refused admin calls.
struct AdminAuthStats {
  std::atomic<uint64_t> unauthenticated{0};    // no or unknown credentials
  std::atomic<uint64_t> permission_denied{0};  // a role too low for the method
};

// The role `method` needs ("GetStatus", "SetPolicies"...); kOperator for an unknown name.
security::Role RequiredRole(const std::string& method);

class AdminServer {
 public:
  // Binds `options.endpoint` and starts serving. `backend` must outlive the server.
  // Fails with kInvalidArgument for a malformed endpoint, kUnavailable when it cannot be bound.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<AdminServer>> Start(
      const AdminServerOptions& options, AdminBackend* backend);
  // Shuts down immediately if Shutdown() was not called.
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // The port actually bound.
  int port() const;
  // host:port actually bound, e.g. "127.0.0.1:4320".
  std::string address() const;
  // Stops accepting calls, lets running calls finish until `deadline`, then cancels the rest.
  // Idempotent.
  void Shutdown(absl::Time deadline);
  const AdminAuthStats& auth_stats() const;

 private:
  class Impl;
  explicit AdminServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};
using AdminServerPtr = std::unique_ptr<AdminServer>;

}  // namespace tracekeep::admin

#endif  // TRACEKEEP_COLLECTOR_ADMIN_ADMIN_SERVER_H_
