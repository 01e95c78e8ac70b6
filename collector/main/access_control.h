// The daemon's access control, built once from the config: the OTLP receivers' token files and
// per-client limits, the admin API's tokens, certificate roles and audit log, their reloading
// (periodically and on SIGHUP) and their metrics.
#ifndef TRACEKEEP_COLLECTOR_MAIN_ACCESS_CONTROL_H_
#define TRACEKEEP_COLLECTOR_MAIN_ACCESS_CONTROL_H_

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "collector/admin/admin_server.h"
#include "collector/admin/audit_log.h"
#include "collector/common/periodic_thread.h"
#include "collector/config/config.h"
#include "collector/receiver/export_handler.h"
#include "collector/security/client_limits.h"
#include "collector/security/token_file.h"
#include "collector/telemetry/metrics.h"

namespace tracekeep {

class AccessControl {
 public:
  // Loads every token file and opens the audit log. `metrics` must outlive this.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<AccessControl>> Create(
      const config::Config& config, telemetry::MetricsRegistry* metrics);
  ~AccessControl();

  // What the OTLP receivers check.
  receiver::ClientAuthOptions GrpcAuth() const;
  receiver::ClientAuthOptions HttpAuth() const;
  // Fills the admin server's tokens, certificate roles and audit log.
  void ConfigureAdmin(admin::AdminServerOptions* options) const;
  // Registers the admin server's refusal counters (after it started).
  void RegisterAdminMetrics(const admin::AdminServer* server);

  // Checks token files for changes every config.token_reload_interval.
  void StartReloading();
  void StopReloading() { reloader_.Stop(); }
  // Reloads every token file now (SIGHUP). A file that fails to load keeps its tokens in force.
  void ReloadAll();

 private:
  AccessControl(const config::Config& config, telemetry::MetricsRegistry* metrics);
  absl::StatusOr<security::TokenFile*> OtlpTokens(const std::string& path);
  // Registers the series of clients named in the token files not registered yet.
  void RegisterClients();

  const config::Config& config_;
  telemetry::MetricsRegistry* const metrics_;
  std::map<std::string, std::unique_ptr<security::TokenFile>> otlp_tokens_;  // by path
  security::TokenFile* grpc_tokens_ = nullptr;
  security::TokenFile* http_tokens_ = nullptr;
  std::unique_ptr<security::ClientLimits> client_limits_;
  std::unique_ptr<security::TokenFile> admin_tokens_;
  std::unique_ptr<admin::AuditLog> audit_;
  std::mutex clients_mu_;
  std::set<std::string> registered_clients_;
  PeriodicThread reloader_;
};

}  // namespace tracekeep

#endif  // TRACEKEEP_COLLECTOR_MAIN_ACCESS_CONTROL_H_
