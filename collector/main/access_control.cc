#include "collector/main/access_control.h"

#include <utility>

#include "collector/common/logging.h"
#include "collector/common/status_macros.h"

namespace tracekeep {

AccessControl::AccessControl(const config::Config& config, telemetry::MetricsRegistry* metrics)
    : config_(config), metrics_(metrics) {}

AccessControl::~AccessControl() { reloader_.Stop(); }

absl::StatusOr<security::TokenFile*> AccessControl::OtlpTokens(const std::string& path) {
  if (path.empty()) return nullptr;
  auto it = otlp_tokens_.find(path);
  if (it != otlp_tokens_.end()) return it->second.get();
  TK_ASSIGN_OR_RETURN(auto file, security::TokenFile::Load(path, /*with_roles=*/false));
  security::TokenFile* raw = file.get();
  otlp_tokens_.emplace(path, std::move(file));
  return raw;
}

absl::StatusOr<std::unique_ptr<AccessControl>> AccessControl::Create(
    const config::Config& config, telemetry::MetricsRegistry* metrics) {
  std::unique_ptr<AccessControl> ac(new AccessControl(config, metrics));
  if (config.grpc.enabled) {
    TK_ASSIGN_OR_RETURN(ac->grpc_tokens_, ac->OtlpTokens(config.grpc.auth_token_file));
  }
  if (config.http.enabled) {
    TK_ASSIGN_OR_RETURN(ac->http_tokens_, ac->OtlpTokens(config.http.auth_token_file));
  }
  if (!ac->otlp_tokens_.empty()) {
    ac->client_limits_ =
        std::make_unique<security::ClientLimits>(config.client_limits, Clock::Real());
  }
  if (!config.admin.tokens_file.empty()) {
    TK_ASSIGN_OR_RETURN(ac->admin_tokens_,
                        security::TokenFile::Load(config.admin.tokens_file, /*with_roles=*/true));
  }
  if (config.admin.audit_log) {
    admin::AuditLogOptions audit;
    audit.max_bytes = static_cast<uint64_t>(config.admin.audit_log_max_size_mib) << 20;
    audit.max_files = config.admin.audit_log_max_files;
    TK_ASSIGN_OR_RETURN(ac->audit_, admin::AuditLog::Open(config.data_dir + "/audit.log", audit));
  }

  telemetry::MetricsRegistry& m = *metrics;
  for (const auto& [path, file] : ac->otlp_tokens_) {
    const security::TokenFile* f = file.get();
    std::string listener;
    if (f == ac->grpc_tokens_) listener = "grpc";
    if (f == ac->http_tokens_) listener = listener.empty() ? "http" : "grpc+http";
    for (int r = 0; r < security::kNumAuthFailures; ++r) {
      const auto reason = static_cast<security::AuthFailure>(r);
      m.AddCounter("tracekeep_receiver_auth_failures_total",
                   "OTLP requests refused for their bearer token (UNAUTHENTICATED / 401), by "
                   "listener and reason: missing, malformed (not \"Bearer <token>\"), unknown.",
                   {{"listener", listener}, {"reason", security::AuthFailureName(reason)}},
                   [f, reason] { return static_cast<double>(f->failures(reason)); });
    }
  }
  auto add_reload_series = [&m](const security::TokenFile* f, const std::string& kind) {
    m.AddCounter("tracekeep_token_file_reloads_total",
                 "Token files reloaded after a change or SIGHUP, by kind (otlp, admin).",
                 {{"kind", kind}}, [f] { return static_cast<double>(f->reloads()); });
    m.AddCounter("tracekeep_token_file_reload_failures_total",
                 "Token file reloads that failed (the previous tokens stay in force), by kind.",
                 {{"kind", kind}}, [f] { return static_cast<double>(f->reload_failures()); });
  };
  // One series per kind: the first OTLP file stands for them (they are usually one file).
  if (!ac->otlp_tokens_.empty()) add_reload_series(ac->otlp_tokens_.begin()->second.get(), "otlp");
  if (ac->admin_tokens_ != nullptr) add_reload_series(ac->admin_tokens_.get(), "admin");
  if (ac->audit_ != nullptr) {
    const admin::AuditLog* audit = ac->audit_.get();
    for (int i = 0; i < admin::kNumAuditedMethods; ++i) {
      for (int r = 0; r < admin::kNumAuditResults; ++r) {
        const auto result = static_cast<admin::AuditResult>(r);
        m.AddCounter(
            "tracekeep_admin_audit_events_total",
            "Admin calls that change something, recorded in the audit log, by method "
            "and result (ok, denied, failed).",
            {{"method", admin::kAuditedMethods[i]}, {"result", admin::AuditResultName(result)}},
            [audit, i, result] { return static_cast<double>(audit->events(i, result)); });
      }
    }
    m.AddCounter("tracekeep_admin_audit_write_errors_total",
                 "Audit log lines that could not be written.", {},
                 [audit] { return static_cast<double>(audit->write_errors()); });
    m.AddCounter("tracekeep_admin_audit_log_rotations_total",
                 "Times audit.log reached admin.audit_log_max_size_mib and was rotated.", {},
                 [audit] { return static_cast<double>(audit->rotations()); });
  }
  ac->RegisterClients();
  return ac;
}

void AccessControl::RegisterClients() {
  if (client_limits_ == nullptr) return;
  std::lock_guard<std::mutex> lock(clients_mu_);
  for (const auto& [path, file] : otlp_tokens_) {
    for (const std::string& name : file->Names()) {
      if (!registered_clients_.insert(name).second) continue;
      client_limits_->Register(name);
      const security::ClientCounters* c = client_limits_->CountersOf(name);
      telemetry::MetricsRegistry& m = *metrics_;
      const telemetry::Labels labels = {{"client", name}};
      m.AddCounter("tracekeep_receiver_client_requests_total",
                   "Authenticated OTLP export requests, by client (the token file's name).", labels,
                   [c] { return static_cast<double>(c->requests.load()); });
      m.AddCounter("tracekeep_receiver_client_spans_total",
                   "Spans in authenticated OTLP export requests, by client.", labels,
                   [c] { return static_cast<double>(c->spans.load()); });
      m.AddCounter("tracekeep_receiver_client_bytes_total",
                   "Bytes (decompressed) of authenticated OTLP export requests, by client.", labels,
                   [c] { return static_cast<double>(c->bytes.load()); });
      m.AddCounter("tracekeep_receiver_client_rate_limited_requests_total",
                   "Requests refused because their client was over its client_limits "
                   "(RESOURCE_EXHAUSTED / 429), by client.",
                   labels, [c] { return static_cast<double>(c->refused_requests.load()); });
      m.AddCounter("tracekeep_receiver_client_rate_limited_spans_total",
                   "Spans of requests refused for their client's client_limits, by client.", labels,
                   [c] { return static_cast<double>(c->refused_spans.load()); });
    }
  }
}

receiver::ClientAuthOptions AccessControl::GrpcAuth() const {
  return {grpc_tokens_, grpc_tokens_ != nullptr ? client_limits_.get() : nullptr,
          config_.grpc.auth_client_attribute};
}

receiver::ClientAuthOptions AccessControl::HttpAuth() const {
  return {http_tokens_, http_tokens_ != nullptr ? client_limits_.get() : nullptr,
          config_.http.auth_client_attribute};
}

void AccessControl::ConfigureAdmin(admin::AdminServerOptions* options) const {
  options->tokens = admin_tokens_.get();
  options->certificate_roles = config_.admin.certificate_roles;
  options->audit = audit_.get();
}

void AccessControl::RegisterAdminMetrics(const admin::AdminServer* server) {
  const admin::AdminAuthStats* s = &server->auth_stats();
  metrics_->AddCounter("tracekeep_admin_refused_calls_total",
                       "Admin calls refused: unauthenticated (no or unknown token or "
                       "certificate), permission_denied (role too low for the method).",
                       {{"reason", "unauthenticated"}},
                       [s] { return static_cast<double>(s->unauthenticated.load()); });
  metrics_->AddCounter("tracekeep_admin_refused_calls_total", "", {{"reason", "permission_denied"}},
                       [s] { return static_cast<double>(s->permission_denied.load()); });
}

void AccessControl::StartReloading() {
  if (otlp_tokens_.empty() && admin_tokens_ == nullptr) return;
  reloader_.Start(config_.token_reload_interval, [this] {
    bool changed = false;
    for (const auto& [path, file] : otlp_tokens_) changed |= file->ReloadIfChanged();
    if (admin_tokens_ != nullptr) changed |= admin_tokens_->ReloadIfChanged();
    if (changed) {
      TK_LOG(Info) << "token files reloaded after a change";
      RegisterClients();
    }
  });
}

void AccessControl::ReloadAll() {
  auto reload = [](security::TokenFile* f) {
    absl::Status s = f->Reload();
    if (s.ok()) {
      TK_LOG(Info) << "reloaded token file " << f->path() << " (" << f->Names().size() << " names)";
    } else {
      TK_LOG(Error) << "cannot reload token file (previous tokens stay in force): " << s.message();
    }
  };
  for (const auto& [path, file] : otlp_tokens_) reload(file.get());
  if (admin_tokens_ != nullptr) reload(admin_tokens_.get());
  RegisterClients();
}

}  // namespace tracekeep
