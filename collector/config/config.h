// The daemon's configuration: one YAML file -> one typed struct, validated as a whole before
// anything starts. Every field has a default, so an empty file (or no file) is a valid config.
#ifndef TRACEKEEP_COLLECTOR_CONFIG_CONFIG_H_
#define TRACEKEEP_COLLECTOR_CONFIG_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "collector/orders/order_config.h"
#include "collector/redaction/redactor.h"
#include "collector/sampling/sampler.h"
#include "collector/security/access.h"
#include "collector/security/client_limits.h"
#include "collector/security/token_file.h"
#include "collector/spanmetrics/span_metrics.h"

namespace tracekeep::config {

struct GrpcReceiverConfig {
  bool enabled = true;
  std::string endpoint = "0.0.0.0:4317";
  int max_recv_msg_size_mib = 16;
  security::TlsSettings tls;
  std::vector<std::string> allowed_networks;  // CIDRs; empty = everyone
  // auth.token_file: "<client> <token>" lines; when set, requests need a bearer token of it.
  std::string auth_token_file;
  // auth.client_attribute: resource attribute set to the authenticated client's name on every
  // span (needs auth.token_file); "" = none.
  std::string auth_client_attribute;
  // Bounds against hostile clients (receiver::GrpcReceiverOptions); durations of 0 = never.
  int max_concurrent_streams = 100;
  absl::Duration handshake_timeout = absl::Seconds(10);
  absl::Duration max_connection_idle = absl::Minutes(5);        // keepalive.server_parameters
  absl::Duration max_connection_age = absl::Hours(1);           // keepalive.server_parameters
  absl::Duration max_connection_age_grace = absl::Seconds(30);  // keepalive.server_parameters
  absl::Duration keepalive_time = absl::Hours(2);               // keepalive.server_parameters.time
  absl::Duration keepalive_timeout = absl::Seconds(20);         // ...server_parameters.timeout
  int max_memory_mib = 1024;
};

struct HttpReceiverConfig {
  bool enabled = true;
  std::string endpoint = "0.0.0.0:4318";
  int max_request_body_size_mib = 16;
  std::vector<std::string> allowed_networks;
  security::TlsSettings tls;
  std::string auth_token_file;        // as GrpcReceiverConfig::auth_token_file
  std::string auth_client_attribute;  // as GrpcReceiverConfig::auth_client_attribute
  // Headers within this time in total, each body read within it; else the connection closes.
  absl::Duration read_timeout = absl::Seconds(10);
};

// receivers.kafka: consumes OTLP spans from a Kafka topic (collector/kafka/kafka_receiver.h).
struct KafkaReceiverConfig {
  bool enabled = false;
  std::vector<std::string> brokers;  // host:port; required when enabled
  std::string topic = "otlp_spans";
  std::string encoding = "otlp_proto";  // the only one supported
  std::string group_id = "tracekeep";
  std::string initial_offset = "latest";  // or "earliest"
  // Records that are not one trace keyed by its id are re-produced into this topic, one record per
  // trace, before sampling (and the topic is consumed too). "" = off.
  std::string rekey_topic;
  // A member silent this long leaves the group and its partitions move (also how long a
  // member restarted after a crash waits for its old self to be dropped).
  absl::Duration session_timeout = absl::Seconds(45);
  // Gateway mode: the OTLP receivers produce what they accept into the topic (one record per
  // trace) and acknowledge once Kafka did; the sampler is fed from the topic only.
  bool gateway = false;
  // Order affinity across members (collector/kafka/order_affinity.h): traces that name an order
  // are routed, once decided, into this topic keyed by order id; the member assigned an order's
  // partition (consumer group "<group_id>.orders") judges the order and keeps or releases its
  // traces. Needs orders.enabled. "" = off: each member judges the orders it sees by itself.
  std::string order_topic;
  // With order_topic: where each order's owner publishes the order's record (keyed by order id;
  // create it with cleanup.policy=compact) and every member reads them, so that `tracekeepctl
  // order get` answers on any member. "" = "<order_topic>.records".
  std::string order_records_topic;
};

struct StorageConfig {
  std::string path;  // "" = <data_dir>/rocksdb
  bool sync = false;
  int block_cache_mib = 64;
  int write_buffer_mib = 32;
  absl::Duration retention = absl::Hours(24 * 7);  // 0 = forever
  // Disk budget of the intake (see collector/intake/disk_budget.h); 0 = no bound.
  size_t max_disk_bytes = 0;
  size_t min_free_disk_bytes = size_t{256} << 20;
};

struct JournalConfig {
  bool enabled = true;
  std::string path;  // "" = <data_dir>/journal
  bool sync = false;
  // Pending spans keep their bytes in memory as well as in the journal (true), or only in the
  // journal, read back when a decision needs them (false: a pending span then costs ~1/3 of the
  // memory).
  bool pending_bytes_in_memory = false;
  // Truncated segment files kept for reuse by the next segments (see JournalOptions).
  int recycle_segments = 8;
  // Closed segments that only held order traces keep are written back and dropped from the
  // page cache once the sampler has decided them (see JournalOptions::drop_cache).
  bool drop_held_cache = true;
};

struct ExporterConfig {
  std::string endpoint;  // "" = forwarding disabled
  bool insecure = true;
  std::string ca_file;    // TLS: CA that signed the backend's certificate ("" = system roots)
  std::string cert_file;  // TLS client certificate (mutual TLS), optional
  std::string key_file;
  std::map<std::string, std::string> headers;
  std::string compression = "gzip";
  absl::Duration timeout = absl::Seconds(10);
  int send_batch_size = 1024;
  int send_batch_max_size = 2048;
  absl::Duration batch_timeout = absl::Milliseconds(200);
  int64_t queue_size_spans = 100000;
  bool queue_storage_enabled = true;           // durable queue in RocksDB
  int64_t queue_max_bytes = int64_t{1} << 30;  // its disk budget
  bool retry_enabled = true;
  absl::Duration initial_interval = absl::Seconds(1);
  absl::Duration max_interval = absl::Seconds(30);
  absl::Duration max_elapsed_time = absl::Minutes(5);
};

struct TelemetryConfig {
  std::string endpoint = "0.0.0.0:9464";
  std::vector<std::string> allowed_networks;
};

struct AdminConfig {
  std::string endpoint = "127.0.0.1:4320";
  security::TlsSettings tls;
  std::vector<std::string> allowed_networks = {"127.0.0.0/8", "::1/128"};
  std::string auth_token_file;  // "" = no token required; its holder is an operator
  // "<name> <viewer|operator> <token>" lines. "" = none.
  std::string tokens_file;
  // client_certificates: [{subject: "CN=alice,O=ops", role: viewer}]
  std::map<std::string, security::Role> certificate_roles;
  // Record changing calls as JSON lines in <data_dir>/audit.log.
  bool audit_log = true;
  // Rotate audit.log once it would pass this size (MiB; 0 = never), keeping this many rotated
  // files (audit.log.1 ... audit.log.<n>).
  int audit_log_max_size_mib = 100;
  int audit_log_max_files = 10;
};

// The Jaeger remote storage API (collector/query/jaeger_storage_server.h).
struct JaegerRemoteStorageConfig {
  bool enabled = true;  // false also stops writing the indexes only this API reads
  std::string endpoint = "127.0.0.1:17271";
  security::TlsSettings tls;
  std::vector<std::string> allowed_networks = {"127.0.0.0/8", "::1/128"};
  // Attribute keys indexed for searches besides order.id (always indexed).
  std::vector<std::string> indexed_attributes;
  int default_search_depth = 20;
  int64_t max_traces_examined = 10000;
};

struct Config {
  std::string data_dir = "./data";
  std::string log_level = "info";
  GrpcReceiverConfig grpc;
  HttpReceiverConfig http;
  KafkaReceiverConfig kafka;
  sampling::SamplerOptions sampler;  // policies default to sampling::DefaultPolicies()
  // sampler.persist_decisions: record decisions in the store's `decisions` column family and
  // reload them at start-up.
  bool persist_decisions = true;
  StorageConfig storage;
  JournalConfig journal;
  ExporterConfig exporter;
  TelemetryConfig telemetry;
  AdminConfig admin;
  JaegerRemoteStorageConfig jaeger_remote_storage;
  // ui.trace_url: a link into a trace UI, "{trace_id}" replaced by a trace's 32 hex digits;
  // tracekeepctl order get prints it for every kept trace. "" = none.
  std::string ui_trace_url;
  orders::OrdersConfig orders;  // defaults to orders::DefaultOrdersConfig()
  // span_metrics: request metrics from every accepted span, before sampling.
  spanmetrics::SpanMetricsOptions span_metrics;
  // receivers.otlp.client_limits: per-client rates of authenticated OTLP clients.
  security::ClientLimitsOptions client_limits;
  // redaction: attribute rules applied before anything is written. protected_key is set from
  // orders.id_attribute when order tracking is enabled. Default: no rules (the stage is not wired).
  redaction::RedactorOptions redaction;
  // security.token_reload_interval: how often token files are checked for changes (they are
  // also reloaded on SIGHUP).
  absl::Duration token_reload_interval = absl::Seconds(1);
};

// The configuration with every default (what runs without a config file).
Config DefaultConfig();

// Parses and validates YAML text. On failure the status message lists every problem, one per
// line, as "<source>:<line>:<column>: <path>: <what>, got <value>".
[[nodiscard]] absl::StatusOr<Config> ParseConfig(const std::string& yaml,
                                                 const std::string& source = "config");
// Parses a YAML list of policies, the syntax of `sampler.policies` (used by the admin API's
// SetPolicies / ValidatePolicies). Every problem is listed like ParseConfig's, with paths under
// "sampler.policies".
[[nodiscard]] absl::StatusOr<std::vector<sampling::PolicyConfig>> ParsePolicies(
    const std::string& yaml, const std::string& source = "policies");
// Writes policies as YAML that ParsePolicies reads back (only the fields of each policy's type).
std::string PoliciesToYaml(const std::vector<sampling::PolicyConfig>& policies);

// Reads and parses a file.
[[nodiscard]] absl::StatusOr<Config> LoadConfigFile(const std::string& path);

}  // namespace tracekeep::config

#endif  // TRACEKEEP_COLLECTOR_CONFIG_CONFIG_H_
