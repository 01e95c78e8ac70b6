#include "collector/main/daemon.h"

#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <set>
#include <system_error>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "collector/admin/admin_server.h"
#include "collector/common/clock.h"
#include "collector/common/histogram.h"
#include "collector/common/logging.h"
#include "collector/common/status_macros.h"
#include "collector/exporter/otlp_exporter.h"
#include "collector/http/http_server.h"
#include "collector/intake/disk_budget.h"
#include "collector/intake/journaled_intake.h"
#include "collector/intake/kv_decision_log.h"
#include "collector/kafka/kafka_gateway.h"
#include "collector/kafka/kafka_receiver.h"
#include "collector/kafka/order_affinity.h"
#include "collector/kafka/order_records.h"
#include "collector/kafka/topic_config.h"
#include "collector/main/access_control.h"
#include "collector/orders/order_admin.h"
#include "collector/orders/order_tracker.h"
#include "collector/query/jaeger_storage_server.h"
#include "collector/receiver/grpc_receiver.h"
#include "collector/receiver/http_receiver.h"
#include "collector/receiver/receiver_stats.h"
#include "collector/redaction/redacting_intake.h"
#include "collector/sampling/sampler.h"
#include "collector/spanmetrics/span_metrics.h"
#include "collector/telemetry/metrics.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
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

// The span store as the sampler's record of spans handed on before a restart. A stored span was
// queued for export too: the durable export queue is written first (see the sinks in Start()).
class StoredSpans final : public sampling::HandedSpans {
 public:
  explicit StoredSpans(storage::RocksDbSpanStore* store) : store_(store) {}
  absl::StatusOr<std::vector<bool>> Contains(const std::string& trace_id,
                                             const std::vector<SpanRecord>& spans) override {
    return store_->ContainsSpans(trace_id, spans);
  }

 private:
  storage::RocksDbSpanStore* const store_;
};

// Test-only fault point, armed by TRACEKEEP_CRASH_POINT=between_sinks in the environment: the
// first kept batch to reach the second sink kills the process with SIGKILL, after the first sink
// took it. This is the instant between the export queue's write and the store's write of one
// batch, which the e2e tests crash into to check that a restart loses neither.
class KillBeforeSecondSink final : public TraceConsumer {
 public:
  explicit KillBeforeSecondSink(TraceConsumer* next) : next_(next) {}
  absl::Status Consume(KeptTraces&& traces) override {
    TK_LOG(Warning) << "TRACEKEEP_CRASH_POINT=between_sinks: killing the process";
    raise(SIGKILL);
    return next_->Consume(std::move(traces));
  }

 private:
  TraceConsumer* const next_;
};

bool CrashPointArmed(absl::string_view name) {
  const char* value = std::getenv("TRACEKEEP_CRASH_POINT");
  return value != nullptr && name == value;
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
    store_options.query_indexes = config_.jaeger_remote_storage.enabled;
    store_options.indexed_attributes = config_.jaeger_remote_storage.indexed_attributes;
    // order.id is always indexed; a differently named order id attribute is indexed too.
    if (!config_.orders.id_attribute.empty()) {
      store_options.indexed_attributes.push_back(config_.orders.id_attribute);
    }
    TK_ASSIGN_OR_RETURN(rocksdb_, storage::RocksDbSpanStore::Create(store_options));
    store_ = rocksdb_.get();

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
    }
    // With a durable export queue, a kept batch is queued for export before it is stored: the
    // replay after a crash hands on again only spans missing from the store, so a crash between
    // the two writes must leave at worst a span queued twice (delivery is at-least-once), never
    // one stored but not queued. With a queue in memory, the store goes first: its refusal on a
    // full disk (kUnavailable) then leaves the batch untouched for the sampler to offer again.
    if (export_queue_ != nullptr) sinks_.push_back(exporter_.get());
    sinks_.push_back(store_);
    if (exporter_ != nullptr && export_queue_ == nullptr) sinks_.push_back(exporter_.get());
    if (sinks_.size() == 2 && CrashPointArmed("between_sinks")) {
      crash_point_ = std::make_unique<KillBeforeSecondSink>(sinks_[1]);
      sinks_[1] = crash_point_.get();
    }
    fanout_ = std::make_unique<FanOutConsumer>(sinks_);

    sampling::SamplerOptions sampler_options = config_.sampler;
    if (config_.orders.enabled && OrderAffinity()) {
      TK_RETURN_IF_ERROR(StartOrderAffinity());
      sampler_options.hook = order_router_.get();
    } else if (config_.orders.enabled) {
      TK_RETURN_IF_ERROR(StartOrders());
      sampler_options.hook = orders_.get();
    }
    if (config_.persist_decisions) {
      TK_ASSIGN_OR_RETURN(decisions_table_, rocksdb_->OpenTable("decisions"));
      decision_log_ = std::make_unique<intake::KvDecisionLog>(
          decisions_table_.get(),
          config_.sampler.sampled_cache_size + config_.sampler.non_sampled_cache_size);
      handed_spans_ = std::make_unique<StoredSpans>(rocksdb_.get());
      sampler_options.decision_log = decision_log_.get();
      sampler_options.handed_spans = handed_spans_.get();
    }
    TK_ASSIGN_OR_RETURN(sampler_,
                        sampling::Sampler::Create(sampler_options, fanout_.get(), Clock::Real()));
    // Before the shards run and before the journal replays: replayed spans of traces decided
    // before a crash follow those decisions.
    TK_ASSIGN_OR_RETURN(const uint64_t restored, sampler_->LoadDecisions());
    if (restored > 0) TK_LOG(Info) << "sampler: " << restored << " decisions reloaded";
    TK_RETURN_IF_ERROR(sampler_->Start());

    intake_ = sampler_.get();
    const std::string journal_path =
        config_.journal.path.empty() ? config_.data_dir + "/journal" : config_.journal.path;
    if (config_.journal.enabled) {
      storage::JournalOptions journal_options;
      journal_options.path = journal_path;
      journal_options.sync = config_.journal.sync;
      journal_options.recycle_segments = config_.journal.recycle_segments;
      journal_options.drop_cache = config_.journal.drop_held_cache;
      // Under a disk budget, decided segments are deleted: files kept for reuse would count
      // against it (and hold the disk) while nothing is pending.
      if (config_.storage.max_disk_bytes != 0 || config_.storage.min_free_disk_bytes != 0) {
        if (journal_options.recycle_segments != 0) {
          TK_LOG(Info) << "journal: recycle_segments is 0 under storage.max_disk_bytes / "
                          "min_free_disk_bytes (decided segments are deleted)";
        }
        journal_options.recycle_segments = 0;
      }
      TK_ASSIGN_OR_RETURN(journal_, storage::Journal::Open(journal_options));
      // Pending spans' bytes stay in the journal only (before the replay: replayed spans too).
      if (!config_.journal.pending_bytes_in_memory) sampler_->SetSpanBytesReader(journal_.get());
      intake::JournaledIntakeOptions journaled_options;
      // Order traces held as references into the journal keep their entries in it.
      if (orders_) {
        orders::OrderTracker* tracker = orders_.get();
        journaled_options.holds_low_water_mark = [tracker] { return tracker->LowWaterMark(); };
      }
      journaled_intake_ = std::make_unique<intake::JournaledIntake>(
          journaled_options, journal_.get(), sampler_.get(), Clock::Real());
      TK_RETURN_IF_ERROR(journaled_intake_->Recover().status());
      TK_RETURN_IF_ERROR(journaled_intake_->Start());
      intake_ = journaled_intake_.get();
    }
    if (config_.storage.max_disk_bytes != 0 || config_.storage.min_free_disk_bytes != 0) {
      intake::DiskBudgetOptions budget_options;
      budget_options.paths = {store_options.path};
      if (journal_) budget_options.paths.push_back(journal_path);
      budget_options.max_bytes = config_.storage.max_disk_bytes;
      budget_options.min_free_bytes = config_.storage.min_free_disk_bytes;
      TK_ASSIGN_OR_RETURN(disk_budget_, intake::DiskBudgetIntake::Create(budget_options, intake_));
      TK_RETURN_IF_ERROR(disk_budget_->Start());
      intake_ = disk_budget_.get();
    }
    // Request metrics from every span the intake takes, before sampling. In front of the journal:
    // a span is counted when a client's request is accepted, and the replay above (straight into
    // the sampler) does not count it again.
    if (config_.span_metrics.enabled) {
      TK_ASSIGN_OR_RETURN(span_metrics_, spanmetrics::SpanMetrics::Create(config_.span_metrics));
      span_metrics_intake_ =
          std::make_unique<spanmetrics::SpanMetricsIntake>(span_metrics_.get(), intake_);
      intake_ = span_metrics_intake_.get();
    }

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

    TK_ASSIGN_OR_RETURN(access_, AccessControl::Create(config_, &metrics_));
    admin::AdminServerOptions admin_options;
    access_->ConfigureAdmin(&admin_options);
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
    access_->RegisterAdminMetrics(admin_.get());

    if (config_.jaeger_remote_storage.enabled) {
      const config::JaegerRemoteStorageConfig& j = config_.jaeger_remote_storage;
      query::JaegerStorageOptions o;
      o.endpoint = j.endpoint;
      o.tls = j.tls;
      TK_ASSIGN_OR_RETURN(o.allowed_networks,
                          security::NetworkAllowList::Parse(
                              j.allowed_networks, "jaeger_remote_storage.allowed_networks"));
      o.default_search_depth = j.default_search_depth;
      o.max_traces_examined = static_cast<uint64_t>(j.max_traces_examined);
      o.retention = config_.storage.retention;
      TK_ASSIGN_OR_RETURN(jaeger_storage_, query::JaegerStorageServer::Start(
                                               o, rocksdb_.get(), rocksdb_->trace_index()));
      RegisterJaegerStorageMetrics();
    }

    // Receivers last: from here on clients are acknowledged.
    SpanIntake* otlp_intake = intake_;
    if (config_.kafka.enabled && config_.kafka.gateway) {
      TK_RETURN_IF_ERROR(StartKafkaGateway());
      otlp_intake = kafka_gateway_.get();
    }
    // Redaction: one stage in front of whatever the receivers feed, so that nothing unredacted is
    // journaled, stored, queued for export or produced into Kafka. In gateway mode the topic
    // holds redacted spans already: the Kafka receiver then feeds the intake directly.
    kafka_intake_ = intake_;
    if (config_.redaction.enabled()) {
      TK_ASSIGN_OR_RETURN(redactor_, redaction::Redactor::Create(config_.redaction));
      redacting_intake_ =
          std::make_unique<redaction::RedactingIntake>(redactor_.get(), otlp_intake);
      if (otlp_intake == intake_) kafka_intake_ = redacting_intake_.get();
      otlp_intake = redacting_intake_.get();
      RegisterRedactionMetrics();
    }
    if (config_.grpc.enabled) {
      receiver::GrpcReceiverOptions o;
      o.endpoint = config_.grpc.endpoint;
      o.max_recv_msg_size_mib = config_.grpc.max_recv_msg_size_mib;
      o.tls = config_.grpc.tls;
      if (config_.orders.enabled) o.split = orders::SplitOptionsFor(config_.orders);
      o.auth = access_->GrpcAuth();
      auto never_if_zero = [](absl::Duration d) {
        return d == absl::ZeroDuration() ? absl::InfiniteDuration() : d;
      };
      o.max_concurrent_streams = config_.grpc.max_concurrent_streams;
      o.handshake_timeout = config_.grpc.handshake_timeout;
      o.max_connection_idle = never_if_zero(config_.grpc.max_connection_idle);
      o.max_connection_age = never_if_zero(config_.grpc.max_connection_age);
      o.max_connection_age_grace = config_.grpc.max_connection_age_grace;
      o.keepalive_time = config_.grpc.keepalive_time;
      o.keepalive_timeout = config_.grpc.keepalive_timeout;
      o.max_memory_mib = config_.grpc.max_memory_mib;
      TK_ASSIGN_OR_RETURN(
          o.allowed_networks,
          security::NetworkAllowList::Parse(config_.grpc.allowed_networks,
                                            "receivers.otlp.protocols.grpc.allowed_networks"));
      TK_ASSIGN_OR_RETURN(grpc_, receiver::GrpcReceiver::Create(o, otlp_intake, &receiver_stats_));
      TK_RETURN_IF_ERROR(grpc_->Start());
    }
    if (config_.http.enabled) {
      receiver::HttpReceiverOptions o;
      o.endpoint = config_.http.endpoint;
      o.max_request_bytes = static_cast<size_t>(config_.http.max_request_body_size_mib) << 20;
      o.tls = config_.http.tls;
      if (config_.orders.enabled) o.split = orders::SplitOptionsFor(config_.orders);
      o.auth = access_->HttpAuth();
      o.read_timeout = config_.http.read_timeout;
      TK_ASSIGN_OR_RETURN(
          o.allowed_networks,
          security::NetworkAllowList::Parse(config_.http.allowed_networks,
                                            "receivers.otlp.protocols.http.allowed_networks"));
      TK_ASSIGN_OR_RETURN(http_, receiver::HttpReceiver::Create(o, otlp_intake, &receiver_stats_));
      TK_RETURN_IF_ERROR(http_->Start());
    }
    if (config_.kafka.enabled) TK_RETURN_IF_ERROR(StartKafka());
    access_->StartReloading();
    ready_.store(true);
    return absl::OkStatus();
  }

  void Shutdown(absl::Time deadline) {
    if (shut_down_.exchange(true)) return;
    ready_.store(false);
    // A running Drain notices shut_down_ within its poll interval; wait for it to let go of the
    // components before they are destroyed.
    { std::lock_guard<std::mutex> wait_for_drain(drain_mu_); }
    if (grpc_) grpc_->Shutdown(deadline);
    if (http_) http_->Shutdown(deadline);
    if (kafka_gateway_) kafka_gateway_->Shutdown(deadline);
    if (kafka_) kafka_->Shutdown(deadline);  // commits the offsets of durable records
    if (disk_budget_) disk_budget_->Shutdown(deadline);
    // Routing decided traces to their orders' owners is retried until the deadline, no longer.
    if (order_router_) order_router_->Stop(deadline);
    if (sampler_) sampler_->Shutdown(deadline);  // decides what is pending, hands it downstream
    if (journaled_intake_) journaled_intake_->Shutdown(deadline);  // then empties the journal
    // Stops judging the orders of the order topic; commits up to the oldest unresolved order.
    if (order_receiver_) order_receiver_->Shutdown(deadline);
    if (order_producer_) order_producer_->Shutdown(deadline);
    if (order_records_) order_records_->Shutdown(deadline);
    if (orders_) orders_->Shutdown(deadline);  // writes its records; held traces stay held
    if (exporter_) exporter_->Shutdown(deadline);
    if (admin_) admin_->Shutdown(deadline);
    if (access_) access_->StopReloading();
    if (jaeger_storage_) jaeger_storage_->Shutdown(deadline);
    if (telemetry_) telemetry_->Stop();
    order_receiver_.reset();  // feeds the tracker
    order_intake_.reset();
    orders_.reset();
    if (records_producer_) records_producer_->Shutdown(deadline);
    records_producer_.reset();
    order_records_.reset();
    cluster_orders_table_.reset();
    order_tables_.clear();
    sampler_.reset();  // uses the decision log and the store
    handed_spans_.reset();
    decision_log_.reset();
    decisions_table_.reset();
    // The exporter's queue lives in the span store's database: close in this order.
    exporter_.reset();
    export_queue_.reset();
    store_ = nullptr;
    rocksdb_.reset();
  }

  void Reload() {
    if (access_ && !shut_down_.load()) access_->ReloadAll();
  }

  std::map<std::string, std::string> endpoints() const {
    std::map<std::string, std::string> out;
    auto host_of = [](const std::string& endpoint) {
      return endpoint.substr(0, endpoint.rfind(':'));
    };
    if (grpc_) out["otlp_grpc"] = absl::StrCat(host_of(config_.grpc.endpoint), ":", grpc_->port());
    if (http_) out["otlp_http"] = absl::StrCat(host_of(config_.http.endpoint), ":", http_->port());
    if (admin_) out["admin"] = admin_->address();
    if (jaeger_storage_) out["jaeger_remote_storage"] = jaeger_storage_->address();
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
    s->set_traces_dropped(ss.traces_not_sampled.load() + ss.traces_dropped.load());
    s->set_traces_stored(store_ != nullptr ? store_->stats().traces_stored.load() : 0);
    s->set_shards(sampler_->num_shards());
    if (kafka_) {
      admin::v1::KafkaStatus* k = s->mutable_kafka();
      k->set_group_id(config_.kafka.group_id);
      k->set_member_id(kafka_->MemberId());
      k->add_topics(config_.kafka.topic);
      if (!config_.kafka.rekey_topic.empty()) k->add_topics(config_.kafka.rekey_topic);
      if (order_receiver_) k->add_topics(config_.kafka.order_topic);
      k->set_gateway(kafka_gateway_ != nullptr);
      std::vector<kafka::PartitionStatus> partitions = kafka_->Partitions();
      if (order_receiver_) {
        for (kafka::PartitionStatus& p : order_receiver_->Partitions()) {
          partitions.push_back(std::move(p));
        }
      }
      for (const kafka::PartitionStatus& p : partitions) {
        if (!p.assigned) continue;
        admin::v1::KafkaPartition* kp = k->add_partitions();
        kp->set_topic(p.topic);
        kp->set_partition(p.partition);
        kp->set_committed(p.committed);
        kp->set_position(p.position);
        kp->set_lag(p.lag());
      }
      const kafka::KafkaReceiverStats& ks = kafka_->stats();
      k->set_records_consumed(ks.records_consumed.load());
      uint64_t skipped = 0;
      for (const auto& c : ks.records_skipped) skipped += c.load();
      k->set_records_skipped(skipped);
      k->set_rebalances(ks.rebalances.load());
    }
    if (exporter_) {
      s->set_export_endpoint(config_.exporter.endpoint);
      s->set_spans_exported(exporter_->stats().spans_exported.load());
      s->set_export_failures(exporter_->stats().requests_failed.load());
    }
  }
  storage::SpanStore* store() override { return store_; }
  absl::Status GetOrder(const admin::v1::GetOrderRequest& request,
                        admin::v1::GetOrderResponse* response) override {
    if (!orders_) return admin::AdminBackend::GetOrder(request, response);
    response->set_trace_url(config_.ui_trace_url);
    // In a cluster, the record of an order another member owns is read from the records topic.
    if (order_records_ && !request.order_id().empty() &&
        !order_ownership_->Owns(request.order_id())) {
      TK_ASSIGN_OR_RETURN(std::optional<std::string> record,
                          order_records_->Get(request.order_id()));
      if (record.has_value() && response->mutable_order()->ParseFromString(*record)) {
        response->set_now_unix_nanos(absl::ToUnixNanos(absl::Now()));
        return absl::OkStatus();
      }
    }
    return orders::GetOrder(orders_.get(), Clock::Real(), request, response);
  }
  absl::Status ListOrders(const admin::v1::ListOrdersRequest& request,
                          admin::v1::ListOrdersResponse* response) override {
    if (!orders_) return admin::AdminBackend::ListOrders(request, response);
    if (order_records_ == nullptr) {
      return orders::ListOrders(orders_.get(), Clock::Real(), request, response);
    }
    // In a cluster, every member lists every order once: the latest records of all owners, as
    // read from the records topic (a scan: the view keeps no index).
    TK_ASSIGN_OR_RETURN(const orders::OrderQuery q,
                        orders::ListOrdersQuery(request, orders_->config().states));
    const absl::Time now = absl::Now();
    TK_ASSIGN_OR_RETURN(orders::OrderPage page,
                        orders::ListOrderRecords(cluster_orders_table_.get(), q, now));
    for (orders::v1::Order& o : page.orders) *response->add_orders() = std::move(o);
    response->set_next_page_token(std::move(page.next_page_token));
    response->set_total_size(static_cast<int64_t>(page.total_matched));
    response->set_now_unix_nanos(absl::ToUnixNanos(now));
    return absl::OkStatus();
  }
  absl::Status KeepOrder(const admin::v1::KeepOrderRequest& request,
                         admin::v1::KeepOrderResponse* response) override {
    if (!orders_) return admin::AdminBackend::KeepOrder(request, response);
    return orders::KeepOrder(orders_.get(), request, response);
  }

  std::string GetPolicies() override { return config::PoliciesToYaml(sampler_->policies()); }

  absl::StatusOr<int> SetPolicies(const std::string& yaml, bool validate_only) override {
    TK_ASSIGN_OR_RETURN(std::vector<sampling::PolicyConfig> policies,
                        config::ParsePolicies(yaml, "policies"));
    if (!validate_only) {
      TK_RETURN_IF_ERROR(sampler_->SetPolicies(policies));
      RegisterPolicyMetrics();
    }
    return static_cast<int>(policies.size());
  }

  // Intake stops for good: the receivers keep listening but the sampler refuses (UNAVAILABLE /
  // 503); the sampler decides everything pending as on SIGTERM and the journal is emptied; then
  // the export queue is waited for. The process keeps running until it is stopped.
  absl::Status Drain(const admin::v1::DrainRequest& request, admin::v1::DrainResponse* r) override {
    if (request.deadline_seconds() < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "deadline_seconds must be >= 0 (0 = 30 s), got ", request.deadline_seconds()));
    }
    std::lock_guard<std::mutex> lock(drain_mu_);
    if (shut_down_.load()) return absl::FailedPreconditionError("tracekeep is shutting down");
    const absl::Time start = absl::Now();
    const absl::Time deadline =
        start + absl::Seconds(request.deadline_seconds() == 0 ? 30 : request.deadline_seconds());
    const sampling::SamplerStats& ss = sampler_->stats();
    const uint64_t kept_before = sampler_->traces_sampled_total();
    const uint64_t spans_kept_before = sampler_->spans_sampled_total();
    const uint64_t not_kept_before = ss.traces_not_sampled.load() + ss.traces_dropped.load();
    const uint64_t exported_before = exporter_ ? exporter_->stats().spans_exported.load() : 0;
    TK_LOG(Info) << "drain: stopping intake and deciding every pending trace ("
                 << ss.traces_pending.load() << " traces, " << ss.spans_pending.load() << " spans)";
    ready_.store(false);
    if (kafka_gateway_) kafka_gateway_->Shutdown(deadline);  // OTLP stops going into Kafka
    if (order_router_) order_router_->Stop(deadline);        // routing retried until then
    sampler_->Shutdown(deadline);  // refuses from now on; decides and hands on what it holds
    if (journaled_intake_) journaled_intake_->Shutdown(deadline);  // empties the journal
    bool flushed = true;
    if (exporter_) {
      const exporter::ExporterStats& es = exporter_->stats();
      while (es.queue_spans.load() > 0 && absl::Now() < deadline && !shut_down_.load()) {
        absl::SleepFor(absl::Milliseconds(20));
      }
      flushed = es.queue_spans.load() == 0;
      r->set_export_endpoint(config_.exporter.endpoint);
      r->set_spans_exported(es.spans_exported.load() - exported_before);
      r->set_spans_queued(es.queue_spans.load());
      r->set_queue_bytes(es.queue_bytes.load());
    }
    r->set_traces_kept(sampler_->traces_sampled_total() - kept_before);
    r->set_spans_kept(sampler_->spans_sampled_total() - spans_kept_before);
    r->set_traces_not_kept(ss.traces_not_sampled.load() + ss.traces_dropped.load() -
                           not_kept_before);
    r->set_traces_decided(r->traces_kept() + r->traces_not_kept());
    r->set_flushed(flushed);
    r->set_duration_ms(absl::ToInt64Milliseconds(absl::Now() - start));
    TK_LOG(Info) << "drain: " << r->traces_decided() << " traces decided, " << r->traces_kept()
                 << " kept, " << r->spans_exported() << " spans exported, " << r->spans_queued()
                 << " still queued for export" << (flushed ? "" : " (deadline passed)")
                 << "; intake stays closed until the daemon is restarted";
    return absl::OkStatus();
  }

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
  // Registers the counters of every policy not registered yet (policies come and go with
  // SetPolicies; their counters stay, so the series stay monotonic).
  void RegisterPolicyMetrics() {
    std::lock_guard<std::mutex> lock(policy_metrics_mu_);
    telemetry::MetricsRegistry& m = metrics_;
    for (const auto& [name, stats] : sampler_->policy_stats().All()) {
      if (!policy_metrics_.insert(name).second) continue;
      const sampling::PolicyStats* ps = stats;
      const telemetry::Labels policy{{"policy", name}};
      m.AddCounter("tracekeep_sampler_traces_sampled_total",
                   "Traces kept, by the first policy that sampled them.", policy,
                   [ps] { return ps->traces_sampled.load(); });
      m.AddCounter("tracekeep_sampler_spans_sampled_total",
                   "Spans of kept traces, by the first policy that sampled them.", policy,
                   [ps] { return ps->spans_sampled.load(); });
      m.AddCounter("tracekeep_sampler_policy_traces_dropped_total",
                   "Traces dropped, by the drop policy that matched.", policy,
                   [ps] { return ps->traces_dropped.load(); });
      m.AddCounter("tracekeep_sampler_policy_spans_dropped_total",
                   "Spans of traces dropped, by the drop policy that matched.", policy,
                   [ps] { return ps->spans_dropped.load(); });
      m.AddCounter("tracekeep_sampler_policy_evaluations_total",
                   "Traces each policy evaluated, by its own verdict (sampled: it matched).",
                   {{"policy", name}, {"decision", "sampled"}},
                   [ps] { return ps->evaluated_sampled.load(); });
      m.AddCounter("tracekeep_sampler_policy_evaluations_total", "",
                   {{"policy", name}, {"decision", "not_sampled"}},
                   [ps] { return ps->evaluated_not_sampled.load(); });
    }
  }

  // The order tracker over the `orders` and `order_hold` column families of the span store.
  absl::Status StartOrders() {
    storage::RocksDbSpanStore* rocks = rocksdb_.get();
    TK_ASSIGN_OR_RETURN(storage::KvTablePtr orders_table, rocks->OpenTable("orders"));
    TK_ASSIGN_OR_RETURN(storage::KvTablePtr hold_table, rocks->OpenTable("order_hold"));
    TK_ASSIGN_OR_RETURN(storage::KvTablePtr index_table, rocks->OpenTable("order_index"));
    auto& transitions = prometheus::BuildHistogram()
                            .Name("tracekeep_order_transition_seconds")
                            .Help(
                                "Span time between an order's state and the next, by "
                                "transition.")
                            .Register(metrics_.registry());
    orders::OrderTrackerOptions o;
    o.config = config_.orders;
    o.consumer = fanout_.get();
    o.clock = Clock::Real();
    o.orders_table = orders_table.get();
    o.hold_table = hold_table.get();
    o.index_table = index_table.get();
    if (order_ownership_ != nullptr) {
      const kafka::OrderOwnership* ownership = order_ownership_.get();
      o.owns = [ownership](absl::string_view id) { return ownership->Owns(id); };
      kafka::KafkaGateway* records = records_producer_.get();
      std::atomic<uint64_t>* failed = &order_records_unpublished_;
      kafka::OrderRecordsView* view = order_records_.get();
      o.read_shared_record = [view](const std::string& id) { return view->Get(id); };
      o.on_records_written = [records, failed](const std::vector<storage::KvWrite>& written) {
        for (const storage::KvWrite& w : written) {
          // The next write of the record publishes it again; `order get` elsewhere lags meanwhile.
          if (!records->ProduceAsync(w.key, w.value).ok()) failed->fetch_add(1);
        }
      };
    }
    if (config_.journal.enabled) {
      // journal_ is opened after the tracker; holds that point into it start after that.
      o.read_journal = [this](
                           const JournalRef& where,
                           absl::string_view trace_id) -> absl::StatusOr<std::vector<TraceSpans>> {
        if (journal_ == nullptr) return absl::UnavailableError("the journal is not open");
        return journal_->ReadAt(where, trace_id);
      };
      o.read_span_bytes = [this](std::vector<SpanRecord>* spans) -> absl::Status {
        if (journal_ == nullptr) return absl::UnavailableError("the journal is not open");
        return journal_->ReadSpanBytes(spans);
      };
    }
    // One series per allowed transition, made now: an order state arriving costs a lookup in a
    // map that never changes, not a label set built and hashed under the family's lock.
    static const prometheus::Histogram::BucketBoundaries kBuckets = {
        1, 10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 2 * 86400, 3 * 86400, 7 * 86400};
    // By `from`, then `to`: looked up by the tracker's strings as they are, nothing copied.
    using ByTarget = absl::flat_hash_map<std::string, prometheus::Histogram*>;
    auto series = std::make_shared<absl::flat_hash_map<std::string, ByTarget>>();
    for (const orders::TransitionConfig& t : config_.orders.transitions) {
      (*series)[t.from][t.to] = &transitions.Add({{"from", t.from}, {"to", t.to}}, kBuckets);
    }
    o.on_transition = [series](const std::string& from, const std::string& to, double seconds) {
      auto by_from = series->find(from);
      if (by_from == series->end()) return;
      auto it = by_from->second.find(to);
      if (it != by_from->second.end()) it->second->Observe(seconds);
    };
    order_tables_.push_back(std::move(orders_table));
    order_tables_.push_back(std::move(hold_table));
    order_tables_.push_back(std::move(index_table));
    TK_ASSIGN_OR_RETURN(orders_, orders::OrderTracker::Create(o));
    return orders_->Start();
  }

  void RegisterOrderMetrics() {
    telemetry::MetricsRegistry& m = metrics_;
    const orders::OrderStats* os = &orders_->stats();
    const auto& states = orders_->config().states;
    for (size_t i = 0; i < states.size(); ++i) {
      m.AddGauge("tracekeep_orders_in_state", "Active orders by their current state.",
                 {{"state", states[i]}}, [os, i] { return os->in_state[i].load(); });
      m.AddGauge("tracekeep_orders_overdue",
                 "Active orders past the deadline of their current state.", {{"state", states[i]}},
                 [os, i] { return os->overdue[i].load(); });
    }
    for (size_t i = 0; i < sizeof(orders::kAnomalyTypes) / sizeof(orders::kAnomalyTypes[0]); ++i) {
      m.AddCounter("tracekeep_order_anomalies_total", "Orders found anomalous, by anomaly type.",
                   {{"type", orders::kAnomalyTypes[i]}},
                   [os, i] { return os->anomalies[i].load(); });
    }
    m.AddGauge("tracekeep_orders_tracked", "Orders being tracked (seen, not yet resolved).", {},
               [os] { return os->orders_tracked.load(); });
    m.AddGauge("tracekeep_orders_compact",
               "Orders in memory in compact form: no span named them for orders.compact_after.", {},
               [os] { return std::max<int64_t>(0, os->orders_compact.load()); });
    m.AddCounter("tracekeep_orders_started_total", "Orders seen for the first time.", {},
                 [os] { return os->orders_started.load(); });
    m.AddCounter("tracekeep_orders_resolved_total",
                 "Orders resolved: completed healthily or found anomalous.", {},
                 [os] { return os->orders_resolved.load(); });
    m.AddCounter("tracekeep_orders_expired_total",
                 "Orders forgotten after max_order_age without a verdict.", {},
                 [os] { return os->orders_expired.load(); });
    m.AddCounter("tracekeep_order_spans_total", "Spans that named an order.", {},
                 [os] { return os->spans_with_order.load(); });
    m.AddGauge("tracekeep_order_held_traces", "Traces held until their order is resolved.", {},
               [os] { return os->traces_held.load(); });
    m.AddGauge("tracekeep_order_held_bytes", "Bytes of held traces.", {},
               [os] { return os->held_bytes.load(); });
    m.AddCounter("tracekeep_order_traces_kept_total",
                 "Traces kept because of their order (anomaly, baseline or force-keep).", {},
                 [os] { return os->traces_kept.load(); });
    m.AddCounter("tracekeep_order_traces_released_unkept_total",
                 "Held traces released without being kept (healthy order, hold limits).", {},
                 [os] { return os->traces_released_unkept.load(); });
    m.AddGauge("tracekeep_order_held_traces_in_journal",
               "Of the held traces, those held as references into the intake journal (for "
               "orders.hold_in_journal), not yet copied into order_hold.",
               {}, [os] { return os->traces_held_in_journal.load(); });
    m.AddCounter("tracekeep_order_traces_spilled_total",
                 "Held traces copied from the journal into order_hold after "
                 "orders.hold_in_journal.",
                 {}, [os] { return os->traces_spilled.load(); });
    m.AddCounter("tracekeep_order_traces_released_no_space_total",
                 "Held traces of unresolved orders released unkept because the hold space was "
                 "full (orders.max_held_traces / orders.max_held_mib): traces that may have been "
                 "needed.",
                 {}, [os] { return os->traces_released_no_space.load(); });
    m.AddCounter("tracekeep_order_traces_released_hold_time_total",
                 "Held traces released unkept after orders.max_hold_time.", {},
                 [os] { return os->traces_released_hold_time.load(); });
    m.AddCounter("tracekeep_orders_read_only_total",
                 "Orders that named no state within orders.read_only_hold_time (only read): "
                 "resolved READ_ONLY, their held traces released.",
                 {}, [os] { return os->orders_read_only.load(); });
    m.AddCounter("tracekeep_order_events_over_limit_total",
                 "State events and invariant values not recorded because the order already has "
                 "256 of them.",
                 {}, [os] { return os->events_over_limit.load(); });
    m.AddCounter("tracekeep_order_checks_total",
                 "Orders looked at by the periodic check because one of their deadlines, grace "
                 "periods or windows was due.",
                 {}, [os] { return os->orders_checked.load(); });
    m.AddCounter("tracekeep_order_spans_released_unkept_total",
                 "Spans of held traces released without being kept.", {},
                 [os] { return os->spans_released_unkept.load(); });
    m.AddCounter("tracekeep_order_records_deleted_total",
                 "Records of resolved orders deleted after orders.record_retention.", {},
                 [os] { return os->records_purged.load(); });
    m.AddCounter("tracekeep_order_resolved_evicted_total",
                 "Resolved orders dropped from memory beyond orders.max_resolved_in_memory (their "
                 "records stay on disk).",
                 {}, [os] { return os->resolved_evicted.load(); });
    m.AddCounter("tracekeep_order_spans_over_trace_limit_total",
                 "Spans not tracked because their order already links orders.max_traces_per_order "
                 "traces.",
                 {}, [os] { return os->spans_over_trace_limit.load(); });
    m.AddCounter("tracekeep_order_store_errors_total",
                 "Failed RocksDB reads or writes of order records and held traces.", {},
                 [os] { return os->store_errors.load(); });
  }

  void RegisterJaegerStorageMetrics() {
    telemetry::MetricsRegistry& m = metrics_;
    const query::JaegerStorageStats* js = &jaeger_storage_->stats();
    for (int i = 0; i < query::JaegerStorageStats::kMethods; ++i) {
      const telemetry::Labels method{{"method", query::JaegerStorageStats::kMethodNames[i]}};
      m.AddCounter("tracekeep_jaeger_storage_requests_total",
                   "Calls of the Jaeger remote storage API (jaeger.storage.v2), by method.", method,
                   [js, i] { return js->requests[i].load(); });
      m.AddCounter("tracekeep_jaeger_storage_request_errors_total",
                   "Calls of the Jaeger remote storage API answered with an error, by method.",
                   method, [js, i] { return js->failed[i].load(); });
    }
    m.AddCounter("tracekeep_jaeger_storage_traces_returned_total",
                 "Traces streamed to Jaeger by GetTraces and FindTraces.", {},
                 [js] { return js->traces_returned.load(); });
    m.AddCounter("tracekeep_jaeger_storage_spans_returned_total",
                 "Spans streamed to Jaeger by GetTraces and FindTraces.", {},
                 [js] { return js->spans_returned.load(); });
    m.AddCounter("tracekeep_jaeger_storage_chunks_sent_total",
                 "Stream messages sent (a trace over max_chunk_bytes takes several).", {},
                 [js] { return js->chunks_sent.load(); });
    m.AddCounter("tracekeep_jaeger_storage_traces_examined_total",
                 "Traces searches read to check their filters.", {},
                 [js] { return js->traces_examined.load(); });
    m.AddCounter("tracekeep_jaeger_storage_traces_skipped_total",
                 "Traces searches ruled out from their index summary, without reading them.", {},
                 [js] { return js->traces_skipped.load(); });
    m.AddCounter("tracekeep_jaeger_storage_searches_truncated_total",
                 "Searches that stopped after jaeger_remote_storage.max_traces_examined reads.", {},
                 [js] { return js->searches_truncated.load(); });
  }

  // The Kafka receiver feeds the same intake as the OTLP receivers. Its offsets are committed up to
  // records whose spans the sampler decided (kept ones are stored by then, order traces routed),
  // with or without the intake journal: what a member journaled but did not decide is on its disk
  // only, and when it dies for good the partition's new owner must replay it from Kafka.
  absl::Status StartKafka() {
    const config::KafkaReceiverConfig& k = config_.kafka;
    if (k.gateway) {
      // The members produce into the topic themselves: make sure it exists (where the brokers
      // create topics on first use) before subscribing, or the group would wait for the client's
      // next metadata refresh (minutes) to see it.
      TK_RETURN_IF_ERROR(
          kafka::TopicPartitionCount(k.brokers, k.topic, absl::Seconds(30)).status());
    }
    kafka::KafkaReceiverOptions o;
    o.brokers = k.brokers;
    o.topic = k.topic;
    o.group_id = k.group_id;
    o.start_at_earliest = k.initial_offset == "earliest";
    o.session_timeout = k.session_timeout;
    sampling::Sampler* sampler = sampler_.get();
    o.durable_before = [sampler] { return sampler->LowWaterMark(); };
    o.rekey_topic = k.rekey_topic;
    o.on_new_partition = [this](const std::string& topic, int32_t partition) {
      RegisterKafkaPartitionMetrics(kafka_.get(), topic, partition);
    };
    TK_ASSIGN_OR_RETURN(kafka_, kafka::KafkaReceiver::Create(o, kafka_intake_));
    RegisterKafkaMetrics();
    TK_RETURN_IF_ERROR(kafka_->Start());
    if (OrderAffinity()) TK_RETURN_IF_ERROR(StartOrderReceiver());
    return absl::OkStatus();
  }

  bool OrderAffinity() const { return config_.kafka.enabled && !config_.kafka.order_topic.empty(); }

  // Order affinity (collector/kafka/order_affinity.h): the tracker judges only the orders of the
  // order topic's partitions this member is assigned; the sampler's hook routes order traces into
  // that topic.
  absl::Status StartOrderAffinity() {
    const config::KafkaReceiverConfig& k = config_.kafka;
    TK_ASSIGN_OR_RETURN(const int32_t partitions,
                        kafka::TopicPartitionCount(k.brokers, k.order_topic, absl::Seconds(30)));
    order_ownership_ = std::make_unique<kafka::OrderOwnership>(partitions);
    CheckOrderTopicRetention();
    // Every member reads every order's record; the owner publishes it each time it writes it.
    const std::string records_topic =
        k.order_records_topic.empty() ? k.order_topic + ".records" : k.order_records_topic;
    TK_ASSIGN_OR_RETURN(const int32_t record_partitions,
                        kafka::TopicPartitionCount(k.brokers, records_topic, absl::Seconds(30)));
    kafka::KafkaGatewayOptions rp;
    rp.brokers = k.brokers;
    rp.topic = records_topic;
    TK_ASSIGN_OR_RETURN(records_producer_, kafka::KafkaGateway::Create(rp));
    TK_RETURN_IF_ERROR(records_producer_->Start());
    TK_ASSIGN_OR_RETURN(cluster_orders_table_, rocksdb_->OpenTable("cluster_orders"));
    kafka::OrderRecordsViewOptions vo;
    vo.brokers = k.brokers;
    vo.topic = records_topic;
    vo.partitions = record_partitions;
    vo.table = cluster_orders_table_.get();
    TK_ASSIGN_OR_RETURN(order_records_, kafka::OrderRecordsView::Create(vo));
    TK_RETURN_IF_ERROR(order_records_->Start());
    TK_RETURN_IF_ERROR(StartOrders());
    // Orders left unresolved by the last run are rebuilt by their owner (maybe this member) from
    // the order topic, whose offsets were committed only up to the oldest of them.
    const size_t forgotten = orders_->ForgetActive([](const std::string&) { return true; });
    if (forgotten > 0) {
      TK_LOG(Info) << "order affinity: " << forgotten
                   << " unresolved orders of the last run left to their owners";
    }
    kafka::KafkaGatewayOptions g;
    g.brokers = k.brokers;
    g.topic = k.order_topic;
    g.key_by_linked_key = true;
    TK_ASSIGN_OR_RETURN(order_producer_, kafka::KafkaGateway::Create(g));
    TK_RETURN_IF_ERROR(order_producer_->Start());
    kafka::OrderRouter::Options r;
    r.config = config_.orders;
    r.producer = order_producer_.get();
    r.partitions = partitions;
    if (config_.journal.enabled) {
      r.read_span_bytes = [this](std::vector<SpanRecord>* spans) -> absl::Status {
        if (journal_ == nullptr) return absl::UnavailableError("the journal is not open");
        return journal_->ReadSpanBytes(spans);
      };
    }
    order_router_ = std::make_unique<kafka::OrderRouter>(r, &order_affinity_stats_);
    TK_LOG(Info) << "order affinity: order traces go through topic " << k.order_topic << " ("
                 << partitions << " partitions)";
    return absl::OkStatus();
  }

  // The order topic's offsets wait for the oldest unresolved order: Kafka must keep its records
  // at least as long as a trace may be held. Warns (does not refuse to start) when it does not,
  // or when the brokers do not say.
  void CheckOrderTopicRetention() {
    const config::KafkaReceiverConfig& k = config_.kafka;
    const absl::Duration hold = config_.orders.max_hold_time;
    absl::StatusOr<kafka::TopicRetention> retention =
        kafka::DescribeTopicRetention(k.brokers, k.order_topic, absl::Seconds(10));
    if (!retention.ok()) {
      TK_LOG(Warning) << "order affinity: cannot check the retention of order topic "
                      << k.order_topic << " (" << retention.status()
                      << "); make sure its retention.ms is at least orders.max_hold_time ("
                      << absl::FormatDuration(hold) << ")";
      return;
    }
    const std::string problem = kafka::OrderTopicRetentionProblem(k.order_topic, *retention, hold);
    if (!problem.empty()) {
      TK_LOG(Warning) << "order affinity: " << problem;
      return;
    }
    TK_LOG(Info) << "order affinity: order topic " << k.order_topic
                 << " retention.ms=" << retention->retention_ms << " covers orders.max_hold_time ("
                 << absl::FormatDuration(hold) << ")";
  }

  // The order topic's consumer: this member judges the orders of the partitions it is assigned.
  absl::Status StartOrderReceiver() {
    const config::KafkaReceiverConfig& k = config_.kafka;
    order_intake_ = std::make_unique<kafka::OrderOwnerIntake>(orders_.get(), fanout_.get(),
                                                              &order_affinity_stats_);
    kafka::KafkaReceiverOptions o;
    o.brokers = k.brokers;
    o.topic = k.order_topic;
    o.group_id = k.group_id + ".orders";
    // Every routed trace must reach an owner, whenever the group first met.
    o.start_at_earliest = true;
    o.session_timeout = k.session_timeout;
    orders::OrderTracker* tracker = orders_.get();
    o.durable_before = [tracker] { return tracker->OldestOpenArrival(); };
    kafka::OrderOwnership* ownership = order_ownership_.get();
    kafka::OrderAffinityStats* stats = &order_affinity_stats_;
    kafka::OrderRecordsView* view = order_records_.get();
    o.on_assigned = [ownership, view](const std::string& topic, int32_t partition) {
      // The previous owner's last records first: an order it resolved stays resolved here.
      if (!view->WaitCaughtUp(absl::Now() + absl::Seconds(10))) {
        TK_LOG(Warning) << "order affinity: taking " << topic << "/" << partition
                        << " before every published order record was read";
      }
      ownership->Set(partition, true);
    };
    o.on_revoked = [ownership, tracker, stats](const std::string&, int32_t partition) {
      ownership->Set(partition, false);
      const size_t forgotten = tracker->ForgetActive([ownership, partition](const std::string& id) {
        return ownership->PartitionOf(id) == partition;
      });
      stats->orders_forgotten.fetch_add(forgotten, std::memory_order_relaxed);
      if (forgotten > 0) {
        TK_LOG(Info) << "order affinity: " << forgotten << " unresolved orders of partition "
                     << partition << " left to their new owner";
      }
    };
    o.on_new_partition = [this](const std::string& topic, int32_t partition) {
      RegisterKafkaPartitionMetrics(order_receiver_.get(), topic, partition);
    };
    TK_ASSIGN_OR_RETURN(order_receiver_, kafka::KafkaReceiver::Create(o, order_intake_.get()));
    RegisterOrderAffinityMetrics();
    return order_receiver_->Start();
  }

  void RegisterOrderAffinityMetrics() {
    telemetry::MetricsRegistry& m = metrics_;
    const kafka::OrderAffinityStats* s = &order_affinity_stats_;
    const telemetry::Labels topic{{"topic", config_.kafka.order_topic}};
    m.AddCounter("tracekeep_kafka_order_traces_routed_total",
                 "Decided traces that name an order, produced into the order topic (one record "
                 "per order partition) and acknowledged by Kafka.",
                 topic, [s] { return s->traces_routed.load(); });
    m.AddCounter("tracekeep_kafka_order_spans_routed_total", "The spans of those records.", topic,
                 [s] { return s->spans_routed.load(); });
    m.AddCounter("tracekeep_kafka_order_route_retries_total",
                 "Decision batches produced into the order topic again after Kafka refused them.",
                 topic, [s] { return s->route_retries.load(); });
    m.AddCounter("tracekeep_kafka_order_spans_route_dropped_total",
                 "Spans of decided order traces that could not be routed to their order's owner "
                 "(Kafka unavailable until the shutdown deadline, or span bytes unreadable).",
                 topic, [s] { return s->spans_route_dropped.load(); });
    m.AddCounter("tracekeep_kafka_order_traces_received_total",
                 "Routed traces this member took as the owner of their order.", topic,
                 [s] { return s->traces_received.load(); });
    m.AddCounter("tracekeep_kafka_order_spans_received_total", "The spans of those traces.", topic,
                 [s] { return s->spans_received.load(); });
    m.AddCounter("tracekeep_kafka_order_traces_kept_total",
                 "Routed traces kept at once because their order keeps its traces.", topic,
                 [s] { return s->traces_kept.load(); });
    m.AddCounter("tracekeep_kafka_order_traces_held_total",
                 "Routed traces held until their order is resolved.", topic,
                 [s] { return s->traces_held.load(); });
    m.AddCounter("tracekeep_kafka_order_traces_released_total",
                 "Routed traces not kept by the owner: their order is resolved healthy or not "
                 "tracked (their trace owner applied the sampling policies).",
                 topic, [s] { return s->traces_released.load(); });
    m.AddCounter("tracekeep_kafka_order_spans_released_total", "The spans of those traces.", topic,
                 [s] { return s->spans_released.load(); });
    kafka::OrderRecordsView* view = order_records_.get();
    m.AddCounter("tracekeep_kafka_order_records_read_total",
                 "Order records read from the records topic (every member reads every owner's).",
                 {}, [view] { return view->stats().records_read.load(); });
    const std::atomic<uint64_t>* unpublished = &order_records_unpublished_;
    m.AddCounter("tracekeep_kafka_order_records_unpublished_total",
                 "Order records this member (their owner) could not hand to Kafka; published "
                 "again at their next change.",
                 {}, [unpublished] { return unpublished->load(); });
    m.AddCounter("tracekeep_kafka_order_orders_forgotten_total",
                 "Unresolved orders this member stopped judging because their partition of the "
                 "order topic moved to another member (it rebuilds them from the topic).",
                 topic, [s] { return s->orders_forgotten.load(); });
  }

  // Gateway mode: the OTLP receivers' spans go into the topic; acknowledged once Kafka did.
  absl::Status StartKafkaGateway() {
    kafka::KafkaGatewayOptions o;
    o.brokers = config_.kafka.brokers;
    o.topic = config_.kafka.topic;
    TK_ASSIGN_OR_RETURN(kafka_gateway_, kafka::KafkaGateway::Create(o));
    const kafka::KafkaGatewayStats* gs = &kafka_gateway_->stats();
    telemetry::MetricsRegistry& m = metrics_;
    const telemetry::Labels topic{{"topic", config_.kafka.topic}};
    m.AddCounter("tracekeep_kafka_gateway_records_produced_total",
                 "Records (one per trace of a request) Kafka acknowledged in gateway mode.", topic,
                 [gs] { return gs->records_produced.load(); });
    m.AddCounter("tracekeep_kafka_gateway_spans_produced_total",
                 "Spans of the OTLP receivers produced into Kafka and acknowledged.", topic,
                 [gs] { return gs->spans_produced.load(); });
    m.AddCounter("tracekeep_kafka_gateway_produce_errors_total",
                 "Records Kafka did not acknowledge (their request was refused, to be retried).",
                 topic, [gs] { return gs->produce_errors.load(); });
    m.AddCounter("tracekeep_kafka_gateway_requests_refused_total",
                 "OTLP requests refused because Kafka did not take or acknowledge them.", topic,
                 [gs] { return gs->requests_refused.load(); });
    m.AddCounter("tracekeep_kafka_gateway_ack_wait_seconds_total",
                 "Time requests waited for Kafka's acknowledgement, summed (divide by "
                 "tracekeep_kafka_gateway_acked_requests_total for the mean produce latency).",
                 topic, [gs] { return gs->ack_wait_nanos.load() / 1e9; });
    m.AddCounter("tracekeep_kafka_gateway_acked_requests_total",
                 "OTLP requests whose records Kafka all acknowledged.", topic,
                 [gs] { return gs->acked_offers.load(); });
    return kafka_gateway_->Start();
  }

  void RegisterKafkaMetrics() {
    telemetry::MetricsRegistry& m = metrics_;
    const kafka::KafkaReceiverStats* ks = &kafka_->stats();
    const telemetry::Labels topic{{"topic", config_.kafka.topic}};
    m.AddCounter("tracekeep_kafka_records_consumed_total",
                 "Records read from the Kafka topic (skipped ones included).", topic,
                 [ks] { return ks->records_consumed.load(); });
    for (int i = 0; i < static_cast<int>(kafka::SkipReason::kCount); ++i) {
      telemetry::Labels labels = topic;
      labels["reason"] = kafka::SkipReasonName(static_cast<kafka::SkipReason>(i));
      m.AddCounter("tracekeep_kafka_records_skipped_total",
                   "Records skipped, by reason: malformed (not OTLP protobuf), refused (the intake "
                   "refused their spans for good).",
                   labels, [ks, i] { return ks->records_skipped[i].load(); });
    }
    m.AddCounter("tracekeep_kafka_spans_received_total", "Spans in the records read from Kafka.",
                 topic, [ks] { return ks->spans_received.load(); });
    m.AddCounter("tracekeep_kafka_spans_accepted_total",
                 "Spans from Kafka taken by the intake (journal, sampler).", topic,
                 [ks] { return ks->spans_accepted.load(); });
    m.AddCounter("tracekeep_kafka_spans_rejected_total",
                 "Spans from Kafka skipped for an invalid trace or span id.", topic,
                 [ks] { return ks->spans_rejected.load(); });
    m.AddCounter("tracekeep_kafka_intake_waits_total",
                 "Times consumption paused because the intake was over capacity (the record is "
                 "offered again, never dropped).",
                 topic, [ks] { return ks->intake_waits.load(); });
    m.AddCounter("tracekeep_kafka_records_rekeyed_total",
                 "Records not keyed per trace, re-produced one record per trace into "
                 "receivers.kafka.rekey_topic before sampling.",
                 topic, [ks] { return ks->records_rekeyed.load(); });
    m.AddCounter("tracekeep_kafka_spans_rekeyed_total", "The spans of those records.", topic,
                 [ks] { return ks->spans_rekeyed.load(); });
    m.AddCounter("tracekeep_kafka_rebalances_total",
                 "Partition assignments and revocations received from the consumer group.", topic,
                 [ks] { return ks->rebalances.load(); });
    m.AddCounter("tracekeep_kafka_commits_total", "Partition offsets committed.", topic,
                 [ks] { return ks->commits.load(); });
    m.AddCounter("tracekeep_kafka_commit_errors_total", "Partition offset commits that failed.",
                 topic, [ks] { return ks->commit_errors.load(); });
    m.AddCounter("tracekeep_kafka_consume_errors_total",
                 "Errors the Kafka client reported while consuming.", topic,
                 [ks] { return ks->consume_errors.load(); });
  }

  // Called on the Kafka consumer thread the first time this member owns `partition`.
  void RegisterKafkaPartitionMetrics(const kafka::KafkaReceiver* k, const std::string& topic,
                                     int32_t partition) {
    telemetry::MetricsRegistry& m = metrics_;
    const telemetry::Labels labels{{"topic", topic}, {"partition", std::to_string(partition)}};
    m.AddGauge("tracekeep_kafka_consumer_lag",
               "Records of the partition not yet read by this member (high watermark - position); "
               "0 when it does not own the partition.",
               labels, [k, topic, partition] {
                 return static_cast<double>(k->Partition(topic, partition).lag());
               });
    m.AddGauge("tracekeep_kafka_partition_assigned",
               "1 while this member owns the partition, else 0.", labels, [k, topic, partition] {
                 return k->Partition(topic, partition).assigned ? 1.0 : 0.0;
               });
    m.AddGauge("tracekeep_kafka_committed_offset",
               "The partition's last offset committed by this member (-1: none yet).", labels,
               [k, topic, partition] {
                 return static_cast<double>(k->Partition(topic, partition).committed);
               });
    m.AddGauge("tracekeep_kafka_oldest_uncommitted_age_seconds",
               "Age (by its Kafka timestamp) of the oldest record of the partition this member "
               "handled but may not commit yet because its effects are not durable (order topic: "
               "a trace of an unresolved order); 0 when none. Kafka must keep records longer.",
               labels, [k, topic, partition] {
                 const kafka::PartitionStatus p = k->Partition(topic, partition);
                 if (!p.assigned || p.oldest_uncommitted == absl::InfiniteFuture()) return 0.0;
                 return std::max(0.0, absl::ToDoubleSeconds(absl::Now() - p.oldest_uncommitted));
               });
  }

  void RegisterSpanMetrics() {
    telemetry::MetricsRegistry& m = metrics_;
    const spanmetrics::SpanMetrics* sm = span_metrics_.get();
    m.AddExposition([sm](std::string* out) { sm->AppendExposition(out); });
    m.AddGauge("tracekeep_span_metrics_series",
               "Label sets in use by the span metrics (the overflow series included), by metric.",
               {{"metric", "calls"}}, [sm] { return static_cast<double>(sm->series()); });
    m.AddGauge("tracekeep_span_metrics_series", "", {{"metric", "exceptions"}},
               [sm] { return static_cast<double>(sm->exception_series()); });
    m.AddCounter("tracekeep_span_metrics_overflow_total",
                 "Spans (metric=calls) and exception events (metric=exceptions) counted in the "
                 "overflow series because span_metrics.aggregation_cardinality_limit was reached.",
                 {{"metric", "calls"}}, [sm] { return static_cast<double>(sm->overflow_spans()); });
    m.AddCounter("tracekeep_span_metrics_overflow_total", "", {{"metric", "exceptions"}},
                 [sm] { return static_cast<double>(sm->overflow_exceptions()); });
    m.AddCounter("tracekeep_span_metrics_unreadable_spans_total",
                 "Accepted spans left out of the span metrics because their bytes could not be "
                 "read.",
                 {}, [sm] { return static_cast<double>(sm->unreadable_spans()); });
  }

  void RegisterRedactionMetrics() {
    telemetry::MetricsRegistry& m = metrics_;
    const redaction::RedactionStats* rs = &redactor_->stats();
    m.AddCounter("tracekeep_redaction_spans_changed_total",
                 "Spans whose attributes (or their events' and links') the redaction rules "
                 "changed.",
                 {}, [rs] { return static_cast<double>(rs->spans_changed.load()); });
    const std::pair<const char*, const std::atomic<uint64_t>*> actions[] = {
        {"delete", &rs->attributes_deleted},
        {"hash", &rs->attributes_hashed},
        {"mask", &rs->attributes_masked},
        {"blocked_value", &rs->values_blocked}};
    for (const auto& [action, counter] : actions) {
      const std::atomic<uint64_t>* c = counter;
      m.AddCounter("tracekeep_redaction_attributes_total",
                   "Attributes redacted, by action (delete, hash, mask; blocked_value: a value "
                   "changed by blocked_values).",
                   {{"action", action}}, [c] { return static_cast<double>(c->load()); });
    }
    m.AddCounter("tracekeep_redaction_undecodable_total",
                 "Spans, resources or scopes that could not be parsed for redaction (such spans "
                 "are dropped, not written unchecked).",
                 {}, [rs] { return static_cast<double>(rs->undecodable.load()); });
  }

  void RegisterMetrics() {
    if (orders_) RegisterOrderMetrics();
    if (span_metrics_) RegisterSpanMetrics();
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
    m.AddGauge("tracekeep_sampler_bytes_pending",
               "Span bytes of traces waiting for their decision.", {},
               [ss] { return ss->bytes_pending.load(); });
    m.AddCounter("tracekeep_sampler_traces_not_sampled_total",
                 "Traces no policy sampled (dropped).", {},
                 [ss] { return ss->traces_not_sampled.load(); });
    m.AddCounter("tracekeep_sampler_spans_not_sampled_total",
                 "Spans of traces no policy sampled (dropped).", {},
                 [ss] { return ss->spans_not_sampled.load(); });
    m.AddCounter("tracekeep_sampler_traces_dropped_total",
                 "Traces dropped by a drop policy, all drop policies together.", {},
                 [ss] { return ss->traces_dropped.load(); });
    m.AddCounter("tracekeep_sampler_spans_dropped_total",
                 "Spans of traces dropped by a drop policy, all drop policies together.", {},
                 [ss] { return ss->spans_dropped.load(); });
    m.AddCounter("tracekeep_sampler_traces_evicted_total",
                 "Traces decided before their decision_wait because max_pending_traces or "
                 "max_pending_bytes was reached.",
                 {}, [ss] { return ss->traces_evicted.load(); });
    m.AddCounter("tracekeep_sampler_traces_limited_total",
                 "Traces decided early because they reached max_spans_per_trace or "
                 "max_bytes_per_trace.",
                 {}, [ss] { return ss->traces_limited.load(); });
    m.AddCounter("tracekeep_sampler_late_spans_total",
                 "Spans that arrived after their trace was decided, by the decision they "
                 "followed (sampled: sent on; not_sampled: dropped).",
                 {{"decision", "sampled"}}, [ss] { return ss->late_spans_sampled.load(); });
    m.AddCounter("tracekeep_sampler_late_spans_total", "", {{"decision", "not_sampled"}},
                 [ss] { return ss->late_spans_not_sampled.load(); });
    m.AddGauge("tracekeep_sampler_spans_waiting",
               "Kept spans the store could not take yet (disk full), held and offered again.", {},
               [ss] { return static_cast<double>(ss->spans_waiting.load()); });
    m.AddCounter("tracekeep_sampler_spans_retried_total",
                 "Kept spans handed on after waiting for the store.", {},
                 [ss] { return ss->spans_retried.load(); });
    m.AddCounter("tracekeep_sampler_spans_lost_downstream_total",
                 "Kept spans dropped because more than sampler.max_waiting_spans already waited "
                 "(they stay in the journal: a restart replays them).",
                 {}, [ss] { return ss->spans_lost_downstream.load(); });
    m.AddCounter("tracekeep_sampler_spans_unreadable_total",
                 "Kept spans dropped because their bytes, held only in the journal while pending "
                 "(journal.pending_bytes_in_memory: false), could not be read back from it.",
                 {}, [ss] { return ss->spans_unreadable.load(); });
    m.AddCounter("tracekeep_sampler_decisions_restored_total",
                 "Decisions reloaded from the decisions column family at start-up.", {},
                 [ss] { return ss->decisions_restored.load(); });
    m.AddCounter("tracekeep_sampler_decision_log_errors_total",
                 "Polls whose decisions could not be recorded (a restart may decide them again).",
                 {}, [ss] { return ss->decision_log_errors.load(); });
    m.AddCounter("tracekeep_sampler_replayed_spans_skipped_total",
                 "Spans replayed from the journal after a restart that were already stored (and "
                 "queued for export) before it: not handed on twice.",
                 {}, [ss] { return ss->replayed_spans_skipped.load(); });
    m.AddCounter("tracekeep_sampler_evaluation_errors_total",
                 "Traces with span or resource bytes the policies could not decode.", {},
                 [ss] { return ss->evaluation_errors.load(); });
    m.AddCounter("tracekeep_sampler_policy_updates_total",
                 "Policy sets put in force through the admin API.", {},
                 [ss] { return ss->policy_updates.load(); });
    auto histogram = [](const DurationHistogram* h) {
      return [h] {
        telemetry::HistogramValue v;
        v.bounds = h->bounds();
        for (size_t i = 0; i <= v.bounds.size(); ++i) v.counts.push_back(h->bucket(i));
        v.sum = h->sum_seconds();
        return v;
      };
    };
    m.AddHistogram("tracekeep_sampler_late_span_age_seconds",
                   "Time between a trace's decision and the arrival of a late span of it.", {},
                   histogram(&ss->late_span_age));
    m.AddHistogram("tracekeep_sampler_decision_latency_seconds",
                   "Time from a trace's due time to its decision (0 for traces decided early).", {},
                   histogram(&ss->decision_latency));
    RegisterPolicyMetrics();

    if (journal_) {
      const storage::JournalStats* js = &journal_->stats();
      storage::Journal* journal = journal_.get();
      m.AddCounter("tracekeep_journal_batches_appended_total",
                   "Accepted batches written to the intake journal before acknowledging them.", {},
                   [js] { return js->batches_appended.load(); });
      m.AddCounter("tracekeep_journal_bytes_appended_total", "Bytes written to the journal.", {},
                   [js] { return js->bytes_appended.load(); });
      m.AddCounter("tracekeep_journal_append_errors_total",
                   "Journal writes that failed (the request was refused as UNAVAILABLE).", {},
                   [js] { return js->append_errors.load(); });
      m.AddCounter("tracekeep_journal_batches_replayed_total",
                   "Batches replayed from the journal at start-up.", {},
                   [js] { return js->batches_replayed.load(); });
      m.AddCounter("tracekeep_journal_span_bytes_read_back_total",
                   "Bytes of pending spans read back from the journal for a decision (kept "
                   "traces, policies that read attributes).",
                   {}, [js] { return js->span_bytes_read_back.load(); });
      m.AddCounter("tracekeep_journal_read_back_errors_total",
                   "Reads of pending spans' bytes from the journal that failed.", {},
                   [js] { return js->read_back_errors.load(); });
      const intake::JournaledIntake* ji = journaled_intake_.get();
      m.AddGauge(
          "tracekeep_journal_truncated_through_timestamp_seconds",
          "Every journal entry that arrived before this time has been removed: its traces "
          "are decided and what was kept is stored and queued for export.",
          {}, [ji] { return absl::ToDoubleSeconds(ji->truncated_through() - absl::UnixEpoch()); });
      m.AddCounter("tracekeep_journal_segments_recycled_total",
                   "Journal segments written into the file of a truncated segment instead of a "
                   "new file (journal.recycle_segments).",
                   {}, [js] { return js->segments_recycled.load(); });
      m.AddCounter("tracekeep_journal_segments_uncached_total",
                   "Closed journal segments kept only for held order traces, written back and "
                   "dropped from the page cache (journal.drop_held_cache).",
                   {}, [js] { return js->segments_uncached.load(); });
      m.AddGauge("tracekeep_journal_disk_bytes",
                 "Approximate size of the journal, with the files kept for reuse.", {},
                 [journal] { return static_cast<double>(journal->ApproximateDiskBytes()); });
    }

    if (disk_budget_) {
      const intake::DiskBudgetStats* db = &disk_budget_->stats();
      m.AddGauge("tracekeep_disk_budget_used_bytes",
                 "Bytes of tracekeep's RocksDB directories (store and journal), measured every "
                 "second when storage.max_disk_bytes is set.",
                 {}, [db] { return static_cast<double>(db->used_bytes.load()); });
      m.AddGauge("tracekeep_disk_budget_free_bytes",
                 "Free bytes on the file system of the store, measured every second when "
                 "storage.min_free_disk_bytes is set.",
                 {}, [db] { return static_cast<double>(db->free_bytes.load()); });
      m.AddGauge("tracekeep_disk_budget_exceeded",
                 "1 while new data is refused because of the disk budget, else 0.", {},
                 [db] { return db->pressure.load() != 0 ? 1.0 : 0.0; });
      m.AddCounter("tracekeep_disk_budget_spans_refused_total",
                   "Spans refused with RESOURCE_EXHAUSTED because of the disk budget, by limit.",
                   {{"reason", "max_disk_bytes"}},
                   [db] { return db->spans_refused_max_disk_bytes.load(); });
      m.AddCounter("tracekeep_disk_budget_spans_refused_total", "",
                   {{"reason", "min_free_disk_bytes"}},
                   [db] { return db->spans_refused_min_free_bytes.load(); });
    }

    const storage::StoreStats* st = &store_->stats();
    storage::RocksDbSpanStore* store = rocksdb_.get();
    m.AddCounter("tracekeep_storage_traces_stored_total", "Kept traces written to RocksDB.", {},
                 [st] { return st->traces_stored.load(); });
    m.AddCounter("tracekeep_storage_spans_stored_total", "Kept spans written to RocksDB.", {},
                 [st] { return st->spans_stored.load(); });
    m.AddGauge("tracekeep_storage_writable",
               "1 while the database accepts writes; 0 after a failed write (disk full, IO "
               "error) until RocksDB resumed: writes are refused meanwhile (retried every second).",
               {{"db", "store"}}, [store] { return store->writable() ? 1.0 : 0.0; });
    m.AddCounter("tracekeep_storage_write_refusals_total",
                 "Writes refused without being tried because the database had failed a write.",
                 {{"db", "store"}}, [store] { return store->write_refusals(); });
    if (journal_) {
      storage::Journal* journal = journal_.get();
      m.AddGauge("tracekeep_storage_writable", "", {{"db", "journal"}},
                 [journal] { return journal->writable() ? 1.0 : 0.0; });
      m.AddCounter("tracekeep_storage_write_refusals_total", "", {{"db", "journal"}},
                   [journal] { return journal->write_refusals(); });
    }
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

    // Memory RocksDB holds: bounded by storage.write_buffer_mib per column family (times
    // max_write_buffers) and storage.block_cache_mib, not by the spans pending.
    for (const auto& [family, bytes] : store->MemTableBytesPerColumnFamily()) {
      m.AddGauge("tracekeep_storage_memtable_bytes",
                 "Bytes of the RocksDB memtables (active and immutable), by column family.",
                 {{"column_family", family}}, [store, name = family] {
                   for (const auto& [f, b] : store->MemTableBytesPerColumnFamily()) {
                     if (f == name) return static_cast<double>(b);
                   }
                   return 0.0;
                 });
    }
    m.AddGauge("tracekeep_storage_block_cache_bytes", "Bytes in the RocksDB block cache.", {},
               [store] { return static_cast<double>(store->BlockCacheBytes()); });

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
  std::unique_ptr<TraceConsumer> crash_point_;  // wraps sinks_[1] under TRACEKEEP_CRASH_POINT
  std::unique_ptr<FanOutConsumer> fanout_;
  std::vector<storage::KvTablePtr> order_tables_;
  std::unique_ptr<orders::OrderTracker> orders_;
  // Order affinity across members (receivers.kafka.order_topic); null when off.
  kafka::OrderAffinityStats order_affinity_stats_;
  std::unique_ptr<kafka::OrderOwnership> order_ownership_;
  std::unique_ptr<kafka::KafkaGateway> order_producer_;
  std::unique_ptr<kafka::OrderRouter> order_router_;
  std::unique_ptr<kafka::OrderOwnerIntake> order_intake_;
  std::unique_ptr<kafka::KafkaReceiver> order_receiver_;
  std::unique_ptr<kafka::KafkaGateway> records_producer_;  // the owner's records, published
  storage::KvTablePtr cluster_orders_table_;               // every order's record, as read
  std::unique_ptr<kafka::OrderRecordsView> order_records_;
  std::atomic<uint64_t> order_records_unpublished_{0};
  std::unique_ptr<sampling::Sampler> sampler_;
  std::unique_ptr<storage::Journal> journal_;
  std::unique_ptr<intake::JournaledIntake> journaled_intake_;
  std::unique_ptr<intake::DiskBudgetIntake> disk_budget_;
  std::unique_ptr<spanmetrics::SpanMetrics> span_metrics_;
  std::unique_ptr<spanmetrics::SpanMetricsIntake> span_metrics_intake_;
  storage::KvTablePtr decisions_table_;
  std::unique_ptr<intake::KvDecisionLog> decision_log_;
  std::unique_ptr<sampling::HandedSpans> handed_spans_;
  SpanIntake* intake_ = nullptr;  // what the receivers feed: the journal, or the sampler
  std::unique_ptr<redaction::Redactor> redactor_;  // null without redaction rules
  std::unique_ptr<redaction::RedactingIntake> redacting_intake_;
  SpanIntake* kafka_intake_ = nullptr;  // what the Kafka receiver feeds
  std::mutex policy_metrics_mu_;
  std::set<std::string> policy_metrics_;  // policies whose counters are registered
  std::unique_ptr<http::HttpServer> telemetry_;
  std::unique_ptr<AccessControl> access_;  // outlives the receivers and admin_ that use it
  admin::AdminServerPtr admin_;
  std::unique_ptr<query::JaegerStorageServer> jaeger_storage_;
  std::unique_ptr<receiver::GrpcReceiver> grpc_;
  std::unique_ptr<receiver::HttpReceiver> http_;
  std::unique_ptr<kafka::KafkaReceiver> kafka_;
  std::unique_ptr<kafka::KafkaGateway> kafka_gateway_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> shut_down_{false};
  std::mutex drain_mu_;  // held by a running Drain
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
void Daemon::Reload() { impl_->Reload(); }

}  // namespace tracekeep
