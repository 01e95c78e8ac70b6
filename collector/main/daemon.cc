#include "collector/main/daemon.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "collector/admin/admin_server.h"
#include "collector/common/clock.h"
#include "collector/common/logging.h"
#include "collector/common/status_macros.h"
#include "collector/exporter/otlp_exporter.h"
#include "collector/http/http_server.h"
#include "collector/receiver/grpc_receiver.h"
#include "collector/receiver/http_receiver.h"
#include "collector/receiver/receiver_stats.h"
#include "collector/sampling/sampler.h"
#include "collector/telemetry/metrics.h"
#include "storage/rocksdb_span_store.h"
#include "tracekeep/admin/v1/admin.pb.h"

namespace tracekeep {
namespace {

constexpr char kVersion[] = "0.1.0";

absl::Status MakeDirs(const std::string& path) {
  std::string partial;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || (path[i] == '/' && i > 0)) {
      partial = path.substr(0, i);
      if (mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
        return absl::FailedPreconditionError(
            absl::StrCat("cannot create directory \"", partial, "\": ", std::strerror(errno)));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

class Daemon::Impl final : public admin::AdminBackend {
 public:
  explicit Impl(const config::Config& config) : config_(config), started_at_(absl::Now()) {}

  absl::Status Start() {
    TK_RETURN_IF_ERROR(MakeDirs(config_.data_dir));

    storage::RocksDbOptions store_options;
    store_options.path =
        config_.storage.path.empty() ? config_.data_dir + "/rocksdb" : config_.storage.path;
    store_options.sync = config_.storage.sync;
    store_options.block_cache_mib = config_.storage.block_cache_mib;
    store_options.write_buffer_mib = config_.storage.write_buffer_mib;
    store_options.retention = config_.storage.retention;
    TK_ASSIGN_OR_RETURN(rocksdb_, storage::RocksDbSpanStore::Create(store_options));
    store_ = rocksdb_.get();
    sinks_.push_back(store_);

    if (!config_.exporter.endpoint.empty()) {
      const config::ExporterConfig& e = config_.exporter;
      exporter::OtlpExporterOptions o;
      o.endpoint = e.endpoint;
      o.insecure = e.insecure;
      o.ca_file = e.ca_file;
      o.cert_file = e.cert_file;
      o.key_file = e.key_file;
      o.headers = e.headers;
      o.compression = e.compression;
      o.timeout = e.timeout;
      o.send_batch_size = e.send_batch_size;
      o.send_batch_max_size = e.send_batch_max_size;
      o.batch_timeout = e.batch_timeout;
      o.queue_size_spans = e.queue_size_spans;
      o.queue_max_bytes = e.queue_max_bytes;
      o.retry_enabled = e.retry_enabled;
      o.initial_interval = e.initial_interval;
      o.max_interval = e.max_interval;
      o.max_elapsed_time = e.max_elapsed_time;
      if (e.queue_storage_enabled) export_queue_ = rocksdb_->OpenExportQueue();
      TK_ASSIGN_OR_RETURN(exporter_,
                          exporter::OtlpExporter::Create(o, Clock::Real(), export_queue_.get()));
      TK_RETURN_IF_ERROR(exporter_->Start());
      sinks_.push_back(exporter_.get());
    }
    fanout_ = std::make_unique<FanOutConsumer>(sinks_);

    TK_ASSIGN_OR_RETURN(sampler_,
                        sampling::Sampler::Create(config_.sampler, fanout_.get(), Clock::Real()));
    TK_RETURN_IF_ERROR(sampler_->Start());

    RegisterMetrics();
    http::HttpServerOptions telemetry_options;
    telemetry_options.endpoint = config_.telemetry.endpoint;
    telemetry_options.num_threads = 2;
    TK_ASSIGN_OR_RETURN(telemetry_options.allowed_networks,
                        security::NetworkAllowList::Parse(config_.telemetry.allowed_networks,
                                                          "telemetry.allowed_networks"));
    TK_ASSIGN_OR_RETURN(telemetry_,
                        http::HttpServer::Start(
                            telemetry_options,
                            {{"/metrics",
                              [this](const http::HttpRequest&, http::HttpResponse* r) {
                                r->content_type = "text/plain; version=0.0.4; charset=utf-8";
                                r->body = metrics_.Serialize();
                              }},
                             {"/healthz", [](const http::HttpRequest&,
                                             http::HttpResponse* r) { r->body = "ok\n"; }},
                             {"/readyz", [this](const http::HttpRequest&, http::HttpResponse* r) {
                                if (ready_.load()) {
                                  r->body = "ready\n";
                                } else {
                                  r->status = 503;
                                  r->body = "not ready\n";
                                }
                              }}}));

    admin::AdminServerOptions admin_options;
    admin_options.endpoint = config_.admin.endpoint;
    admin_options.tls = config_.admin.tls;
    TK_ASSIGN_OR_RETURN(admin_options.allowed_networks,
                        security::NetworkAllowList::Parse(config_.admin.allowed_networks,
                                                          "admin.allowed_networks"));
    if (!config_.admin.auth_token_file.empty()) {
      TK_ASSIGN_OR_RETURN(admin_options.auth_token,
                          security::ReadTokenFile(config_.admin.auth_token_file));
    }
    TK_ASSIGN_OR_RETURN(admin_, admin::AdminServer::Start(admin_options, this));

    // Receivers last: from here on clients are acknowledged.
    if (config_.grpc.enabled) {
      receiver::GrpcReceiverOptions o;
      o.endpoint = config_.grpc.endpoint;
      o.max_recv_msg_size_mib = config_.grpc.max_recv_msg_size_mib;
      o.tls = config_.grpc.tls;
      TK_ASSIGN_OR_RETURN(
          o.allowed_networks,
          security::NetworkAllowList::Parse(config_.grpc.allowed_networks,
                                            "receivers.otlp.protocols.grpc.allowed_networks"));
      TK_ASSIGN_OR_RETURN(grpc_,
                          receiver::GrpcReceiver::Create(o, sampler_.get(), &receiver_stats_));
      TK_RETURN_IF_ERROR(grpc_->Start());
    }
    if (config_.http.enabled) {
      receiver::HttpReceiverOptions o;
      o.endpoint = config_.http.endpoint;
      o.max_request_bytes = static_cast<size_t>(config_.http.max_request_body_size_mib) << 20;
      TK_ASSIGN_OR_RETURN(
          o.allowed_networks,
          security::NetworkAllowList::Parse(config_.http.allowed_networks,
                                            "receivers.otlp.protocols.http.allowed_networks"));
      TK_ASSIGN_OR_RETURN(http_,
                          receiver::HttpReceiver::Create(o, sampler_.get(), &receiver_stats_));
      TK_RETURN_IF_ERROR(http_->Start());
    }
    ready_.store(true);
    return absl::OkStatus();
  }

  void Shutdown(absl::Time deadline) {
    if (shut_down_.exchange(true)) return;
    ready_.store(false);
    if (grpc_) grpc_->Shutdown(deadline);
    if (http_) http_->Shutdown(deadline);
    if (sampler_) sampler_->Shutdown(deadline);  // decides what is pending, hands it downstream
    if (exporter_) exporter_->Shutdown(deadline);
    if (admin_) admin_->Shutdown(deadline);
    if (telemetry_) telemetry_->Stop();
    // The exporter's queue lives in the span store's database: close in this order.
    exporter_.reset();
    export_queue_.reset();
    store_ = nullptr;
    rocksdb_.reset();
  }

  std::map<std::string, std::string> endpoints() const {
    std::map<std::string, std::string> out;
    auto host_of = [](const std::string& endpoint) {
      return endpoint.substr(0, endpoint.rfind(':'));
    };
    if (grpc_) out["otlp_grpc"] = absl::StrCat(host_of(config_.grpc.endpoint), ":", grpc_->port());
    if (http_) out["otlp_http"] = absl::StrCat(host_of(config_.http.endpoint), ":", http_->port());
    if (admin_) out["admin"] = admin_->address();
    if (telemetry_) out["telemetry"] = telemetry_->address();
    return out;
  }

  // admin::AdminBackend
  void FillStatus(admin::v1::GetStatusResponse* s) override {
    s->set_version(kVersion);
    s->set_uptime_seconds(absl::ToInt64Seconds(absl::Now() - started_at_));
    s->set_data_dir(config_.data_dir);
    for (const auto& [name, address] : endpoints()) {
      auto* e = s->add_endpoints();
      e->set_name(name);
      e->set_address(address);
    }
    uint64_t received = 0, accepted = 0, refused = 0;
    for (const auto& x : receiver_stats_.SpansReceived()) received += x.value;
    for (const auto& x : receiver_stats_.SpansAccepted()) accepted += x.value;
    for (const auto& x : receiver_stats_.SpansRefused()) refused += x.value;
    s->set_spans_received(received);
    s->set_spans_accepted(accepted);
    s->set_spans_refused(refused);
    const auto& ss = sampler_->stats();
    s->set_traces_pending(ss.traces_pending.load());
    s->set_spans_pending(ss.spans_pending.load());
    s->set_traces_kept(sampler_->traces_sampled_total());
    s->set_traces_dropped(ss.traces_not_sampled.load());
    s->set_traces_stored(store_ != nullptr ? store_->stats().traces_stored.load() : 0);
    s->set_shards(sampler_->num_shards());
    if (exporter_) {
      s->set_export_endpoint(config_.exporter.endpoint);
      s->set_spans_exported(exporter_->stats().spans_exported.load());
      s->set_export_failures(exporter_->stats().requests_failed.load());
    }
  }
  storage::SpanStore* store() override { return store_; }

  absl::Status Checkpoint(const std::string& dir, admin::v1::CheckpointResponse* r) override {
    if (rocksdb_ == nullptr) return admin::AdminBackend::Checkpoint(dir, r);
    const absl::Time start = absl::Now();
    TK_RETURN_IF_ERROR(rocksdb_->Checkpoint(dir));
    uint64_t bytes = 0;
    std::error_code ec;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(dir, ec)) {
      if (entry.is_regular_file(ec)) bytes += entry.file_size(ec);
    }
    r->set_dir(dir);
    r->set_bytes(bytes);
    r->set_duration_ms(absl::ToInt64Milliseconds(absl::Now() - start));
    return absl::OkStatus();
  }

 private:
  void RegisterMetrics() {
    telemetry::MetricsRegistry& m = metrics_;
    m.AddGauge("tracekeep_build_info", "Version of the running tracekeep.", {{"version", kVersion}},
               [] { return 1; });
    auto receiver_series = [&m](const std::string& name, const std::string& help,
                                std::vector<receiver::ReceiverStats::Sample> samples,
                                std::function<uint64_t(size_t)> value) {
      for (size_t i = 0; i < samples.size(); ++i) {
        telemetry::Labels labels{{"transport", samples[i].transport}};
        if (samples[i].reason != nullptr) labels["reason"] = samples[i].reason;
        m.AddCounter(name, help, labels, [value, i] { return static_cast<double>(value(i)); });
      }
    };
    receiver::ReceiverStats* rs = &receiver_stats_;
    receiver_series("tracekeep_receiver_spans_received_total",
                    "Spans in decoded export requests, by transport.", rs->SpansReceived(),
                    [rs](size_t i) { return rs->SpansReceived()[i].value; });
    receiver_series("tracekeep_receiver_spans_accepted_total",
                    "Spans accepted and handed to the sampler, by transport.", rs->SpansAccepted(),
                    [rs](size_t i) { return rs->SpansAccepted()[i].value; });
    receiver_series("tracekeep_receiver_spans_refused_total",
                    "Spans refused, by transport and reason.", rs->SpansRefused(),
                    [rs](size_t i) { return rs->SpansRefused()[i].value; });
    receiver_series("tracekeep_receiver_requests_total", "Export requests, by transport.",
                    rs->Requests(), [rs](size_t i) { return rs->Requests()[i].value; });
    receiver_series("tracekeep_receiver_requests_refused_total",
                    "Export requests refused as a whole, by transport and reason.",
                    rs->RequestsRefused(),
                    [rs](size_t i) { return rs->RequestsRefused()[i].value; });

    const sampling::SamplerStats* ss = &sampler_->stats();
    m.AddGauge("tracekeep_sampler_traces_pending", "Traces waiting for their decision.", {},
               [ss] { return ss->traces_pending.load(); });
    m.AddGauge("tracekeep_sampler_spans_pending", "Spans of traces waiting for their decision.", {},
               [ss] { return ss->spans_pending.load(); });
    m.AddGauge("tracekeep_sampler_queue_spans",
               "Spans accepted but not yet buffered by their shard.", {},
               [ss] { return ss->spans_queued.load(); });
    for (size_t i = 0; i < sampler_->policies().size(); ++i) {
      const std::string& policy = sampler_->policies().name(i);
      m.AddCounter("tracekeep_sampler_traces_sampled_total",
                   "Traces kept, by the first policy that sampled them.", {{"policy", policy}},
                   [ss, i] { return ss->traces_sampled[i].load(); });
      m.AddCounter("tracekeep_sampler_spans_sampled_total",
                   "Spans of kept traces, by the first policy that sampled them.",
                   {{"policy", policy}}, [ss, i] { return ss->spans_sampled[i].load(); });
    }
    m.AddCounter("tracekeep_sampler_traces_not_sampled_total", "Traces dropped by the policies.",
                 {}, [ss] { return ss->traces_not_sampled.load(); });
    m.AddCounter("tracekeep_sampler_spans_not_sampled_total",
                 "Spans of traces dropped by the policies.", {},
                 [ss] { return ss->spans_not_sampled.load(); });
    m.AddCounter("tracekeep_sampler_traces_evicted_total",
                 "Traces decided before their decision_wait because max_pending_traces was "
                 "reached.",
                 {}, [ss] { return ss->traces_evicted.load(); });

    const storage::StoreStats* st = &store_->stats();
    storage::RocksDbSpanStore* store = rocksdb_.get();
    m.AddCounter("tracekeep_storage_traces_stored_total", "Kept traces written to RocksDB.", {},
                 [st] { return st->traces_stored.load(); });
    m.AddCounter("tracekeep_storage_spans_stored_total", "Kept spans written to RocksDB.", {},
                 [st] { return st->spans_stored.load(); });
    m.AddCounter("tracekeep_storage_write_errors_total", "Failed RocksDB writes of kept traces.",
                 {}, [st] { return st->write_errors.load(); });
    m.AddCounter("tracekeep_storage_spans_failed_total",
                 "Kept spans lost because their RocksDB write failed.", {},
                 [st] { return st->spans_failed.load(); });
    // One series per column family (its live SST files; the write-ahead log is not included).
    for (const auto& [family, bytes] : store->DiskBytesPerColumnFamily()) {
      m.AddGauge("tracekeep_storage_disk_bytes",
                 "Size of the live RocksDB SST files, by column family.",
                 {{"column_family", family}}, [store, name = family] {
                   for (const auto& [f, b] : store->DiskBytesPerColumnFamily()) {
                     if (f == name) return static_cast<double>(b);
                   }
                   return 0.0;
                 });
    }

    if (exporter_) {
      const exporter::ExporterStats* es = &exporter_->stats();
      m.AddCounter("tracekeep_exporter_spans_exported_total", "Spans the backend acknowledged.", {},
                   [es] { return es->spans_exported.load(); });
      m.AddCounter("tracekeep_exporter_send_failures_total",
                   "Export attempts that failed (each retry counts).", {},
                   [es] { return es->requests_failed.load(); });
      m.AddGauge("tracekeep_exporter_queue_spans", "Kept spans waiting to be exported.", {},
                 [es] { return es->queue_spans.load(); });
      if (export_queue_ != nullptr) {
        m.AddGauge("tracekeep_exporter_queue_bytes",
                   "Stored bytes of the durable export queue (budget: "
                   "exporters.otlp.sending_queue.storage.max_bytes).",
                   {}, [es] { return es->queue_bytes.load(); });
        m.AddGauge("tracekeep_exporter_queue_batches", "Batches in the durable export queue.", {},
                   [es] { return es->queue_batches.load(); });
        m.AddGauge("tracekeep_exporter_queue_oldest_age_seconds",
                   "Age of the oldest batch in the durable export queue; 0 when empty.", {}, [es] {
                     const int64_t oldest = es->oldest_enqueued_unix_nanos.load();
                     if (oldest == 0) return 0.0;
                     return std::max(
                         0.0, absl::ToDoubleSeconds(absl::Now() - absl::FromUnixNanos(oldest)));
                   });
      }
      for (const auto& [reason, counter] : es->DroppedByReason()) {
        const std::atomic<uint64_t>* c = counter;
        m.AddCounter("tracekeep_exporter_spans_dropped_total",
                     "Kept spans the exporter gave up on, by reason.", {{"reason", reason}},
                     [c] { return c->load(); });
      }
    }
  }

  const config::Config config_;
  const absl::Time started_at_;
  telemetry::MetricsRegistry metrics_;
  receiver::ReceiverStats receiver_stats_;
  std::unique_ptr<storage::RocksDbSpanStore> rocksdb_;
  storage::SpanStore* store_ = nullptr;                 // rocksdb_, as the interface
  std::unique_ptr<exporter::QueueStore> export_queue_;  // in rocksdb_; null when disabled
  std::unique_ptr<exporter::OtlpExporter> exporter_;
  std::vector<TraceConsumer*> sinks_;
  std::unique_ptr<FanOutConsumer> fanout_;
  std::unique_ptr<sampling::Sampler> sampler_;
  std::unique_ptr<http::HttpServer> telemetry_;
  admin::AdminServerPtr admin_;
  std::unique_ptr<receiver::GrpcReceiver> grpc_;
  std::unique_ptr<receiver::HttpReceiver> http_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> shut_down_{false};
};

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(const config::Config& config) {
  auto impl = std::make_unique<Impl>(config);
  absl::Status s = impl->Start();
  if (!s.ok()) {
    impl->Shutdown(absl::Now() + absl::Seconds(5));
    return s;
  }
  return std::unique_ptr<Daemon>(new Daemon(std::move(impl)));
}

Daemon::Daemon(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Daemon::~Daemon() { Shutdown(absl::Now() + absl::Seconds(30)); }

std::map<std::string, std::string> Daemon::endpoints() const { return impl_->endpoints(); }
void Daemon::Shutdown(absl::Time deadline) { impl_->Shutdown(deadline); }

}  // namespace tracekeep
