#include "collector/config/config.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tracekeep::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(ConfigTest, EmptyDocumentGivesTheDefaults) {
  auto c = ParseConfig("");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->data_dir, "./data");
  EXPECT_EQ(c->grpc.endpoint, "0.0.0.0:4317");
  EXPECT_EQ(c->http.endpoint, "0.0.0.0:4318");
  EXPECT_EQ(c->admin.endpoint, "127.0.0.1:4320");
  EXPECT_EQ(c->telemetry.endpoint, "0.0.0.0:9464");
  EXPECT_EQ(c->sampler.decision_wait, absl::Seconds(30));
  EXPECT_EQ(c->exporter.endpoint, "");
  ASSERT_EQ(c->sampler.policies.size(), 2u);
  EXPECT_EQ(c->sampler.policies[0].type, "status_code");
  EXPECT_EQ(c->sampler.policies[1].sampling_percentage, 10);
  EXPECT_EQ(c->storage.retention, absl::Hours(24 * 7));
  EXPECT_TRUE(c->exporter.queue_storage_enabled);
  EXPECT_EQ(c->exporter.queue_max_bytes, int64_t{1} << 30);
  EXPECT_EQ(c->storage.max_disk_bytes, 0u);
  EXPECT_EQ(c->storage.min_free_disk_bytes, size_t{256} << 20);
}

TEST(ConfigTest, DurabilityOptionsAreChecked) {
  auto c = ParseConfig(R"(storage: {retention: -1h, max_disk_bytes: -5, min_free_disk_bytes: lots}
exporters:
  otlp:
    sending_queue: {storage: {enabled: maybe, max_bytes: 0, size: 1}}
)",
                       "d.yaml");
  ASSERT_FALSE(c.ok());
  const std::string m(c.status().message());
  EXPECT_THAT(m, HasSubstr("storage.retention: must be a duration"));
  EXPECT_THAT(m, HasSubstr("storage.max_disk_bytes: must be"));
  EXPECT_THAT(m, HasSubstr("-5"));
  EXPECT_THAT(m, HasSubstr("storage.min_free_disk_bytes: must be an integer"));
  EXPECT_THAT(m, HasSubstr("exporters.otlp.sending_queue.storage.enabled: must be true or false, "
                           "got \"maybe\""));
  EXPECT_THAT(m, HasSubstr("exporters.otlp.sending_queue.storage.max_bytes: must be an integer"));
  EXPECT_THAT(m, HasSubstr("exporters.otlp.sending_queue.storage.size: unknown key"));
}

TEST(ConfigTest, JournalRecycleSegmentsDefaultsToEightAndIsChecked) {
  auto defaults = ParseConfig("", "d.yaml");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_EQ(defaults->journal.recycle_segments, 8);
  auto off = ParseConfig("journal: {recycle_segments: 0}", "d.yaml");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(off->journal.recycle_segments, 0);
  auto bad = ParseConfig("journal: {recycle_segments: -2}", "d.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("journal.recycle_segments"));
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("-2"));
}

TEST(ConfigTest, JournalDropHeldCacheDefaultsToOnAndIsChecked) {
  auto defaults = ParseConfig("", "d.yaml");
  ASSERT_TRUE(defaults.ok()) << defaults.status();
  EXPECT_TRUE(defaults->journal.drop_held_cache);
  auto off = ParseConfig("journal: {drop_held_cache: false}", "d.yaml");
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_FALSE(off->journal.drop_held_cache);
  auto bad = ParseConfig("journal: {drop_held_cache: sometimes}", "d.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("journal.drop_held_cache: must be true or false, got \"sometimes\""));
}

TEST(ConfigTest, ReadsEverySection) {
  auto c = ParseConfig(R"(
data_dir: /var/lib/tracekeep
log_level: debug
receivers:
  otlp:
    protocols:
      grpc: {endpoint: "127.0.0.1:0", max_recv_msg_size_mib: 4}
      http: {enabled: false}
sampler:
  decision_wait: 500ms
  num_shards: 3
  max_pending_traces: 1000
  policies:
    - name: errs
      type: status_code
      status_code: {status_codes: [ERROR]}
    - name: few
      type: probabilistic
      probabilistic: {sampling_percentage: 2.5, hash_salt: abc}
storage: {path: /tmp/x, sync: true, retention: 72h}
exporters:
  otlp:
    endpoint: localhost:14317
    headers: {authorization: "Bearer t"}
    sending_queue: {storage: {enabled: false, max_bytes: 4096}}
    batch: {send_batch_size: 10, send_batch_max_size: 20, timeout: 1s}
    retry_on_failure: {initial_interval: 10ms, max_elapsed_time: 0s}
telemetry: {endpoint: "127.0.0.1:0"}
admin: {endpoint: "127.0.0.1:0"}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->data_dir, "/var/lib/tracekeep");
  EXPECT_EQ(c->grpc.endpoint, "127.0.0.1:0");
  EXPECT_EQ(c->grpc.max_recv_msg_size_mib, 4);
  EXPECT_FALSE(c->http.enabled);
  EXPECT_EQ(c->sampler.decision_wait, absl::Milliseconds(500));
  EXPECT_EQ(c->sampler.num_shards, 3);
  ASSERT_EQ(c->sampler.policies.size(), 2u);
  EXPECT_EQ(c->sampler.policies[1].hash_salt, "abc");
  EXPECT_DOUBLE_EQ(c->sampler.policies[1].sampling_percentage, 2.5);
  EXPECT_TRUE(c->storage.sync);
  EXPECT_EQ(c->storage.retention, absl::Hours(72));
  EXPECT_FALSE(c->exporter.queue_storage_enabled);
  EXPECT_EQ(c->exporter.queue_max_bytes, 4096);
  EXPECT_EQ(c->exporter.endpoint, "localhost:14317");
  EXPECT_EQ(c->exporter.headers.at("authorization"), "Bearer t");
  EXPECT_EQ(c->exporter.send_batch_max_size, 20);
  EXPECT_EQ(c->exporter.initial_interval, absl::Milliseconds(10));
  EXPECT_EQ(c->exporter.max_elapsed_time, absl::ZeroDuration());
}

TEST(ConfigTest, ListsEveryProblemWithPositionPathAndValue) {
  auto c = ParseConfig(R"(data_dir: ./d
colour: blue
sampler:
  decision_wait: soon
  num_shards: -1
  policies:
    - name: p
      type: probabilistic
      probabilistic: {sampling_percentage: 300}
    - name: q
      type: magic
exporters:
  otlp:
    endpoint: no-port
    compression: brotli
admin: {endpoint: "127.0.0.1:99999"}
)",
                       "bad.yaml");
  ASSERT_FALSE(c.ok());
  const std::string m(c.status().message());
  EXPECT_THAT(m, HasSubstr("bad.yaml:2:1: colour: unknown key"));
  EXPECT_THAT(m, HasSubstr("bad.yaml:4:18: sampler.decision_wait: must be a duration like 30s"));
  EXPECT_THAT(m, HasSubstr("got \"soon\""));
  EXPECT_THAT(m, HasSubstr("sampler.num_shards: must be an integer in [0, 256], got \"-1\""));
  EXPECT_THAT(m, HasSubstr("sampler.policies[0] (\"p\").probabilistic.sampling_percentage: must "
                           "be in [0, 100], got 300"));
  EXPECT_THAT(m, HasSubstr("sampler.policies[1] (\"q\").type: unknown policy type \"magic\""));
  EXPECT_THAT(m, HasSubstr("exporters.otlp.endpoint: must be \"\" or host:port"));
  EXPECT_THAT(m, HasSubstr("got \"no-port\""));
  EXPECT_THAT(m, HasSubstr("exporters.otlp.compression: must be gzip or none, got \"brotli\""));
  EXPECT_THAT(m, HasSubstr("admin.endpoint: must be host:port"));
  // One line per problem.
  EXPECT_EQ(std::count(m.begin(), m.end(), '\n') + 1, 8) << m;
}

TEST(ConfigTest, SecurityProblemsAreListed) {
  auto c = ParseConfig(R"(receivers:
  otlp:
    protocols:
      grpc: {tls: {key_file: /nonexistent/k.pem}, allowed_networks: [10.0.0.0/8, bogus]}
      http: {tls: {cert_file: a.pem}}
admin: {auth_token_file: /nonexistent/token, allowed_networks: ["::1/129"]}
)");
  ASSERT_FALSE(c.ok());
  const std::string m(c.status().message());
  EXPECT_THAT(m, HasSubstr("receivers.otlp.protocols.grpc.tls.cert_file: must be set when "
                           "key_file or client_ca_file is"));
  EXPECT_THAT(m, HasSubstr("grpc.tls.key_file: cannot read \"/nonexistent/k.pem\""));
  EXPECT_THAT(m, HasSubstr("grpc.allowed_networks[1]: \"bogus\" is not an IP address"));
  EXPECT_THAT(m,
              HasSubstr("receivers.otlp.protocols.http.tls.key_file: must be set with cert_file"));
  EXPECT_THAT(m, HasSubstr("receivers.otlp.protocols.http.tls.cert_file: cannot read \"a.pem\""));
  EXPECT_THAT(m, HasSubstr("admin.auth_token_file: cannot read token file"));
  EXPECT_THAT(m, HasSubstr("admin.allowed_networks[0]: \"::1/129\" has an invalid prefix"));
  EXPECT_EQ(DefaultConfig().admin.allowed_networks,
            (std::vector<std::string>{"127.0.0.0/8", "::1/128"}));
}

TEST(ConfigTest, SyntaxErrorHasAPosition) {
  auto c = ParseConfig("sampler:\n  decision_wait: [1,\n", "x.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("x.yaml:"));
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("YAML syntax error"));
}

TEST(ConfigTest, WrongShapeIsReported) {
  auto c = ParseConfig("sampler: 5\nreceivers: [a]\n");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()),
              HasSubstr("sampler: must be a mapping of keys to values"));
  EXPECT_THAT(std::string(c.status().message()),
              HasSubstr("receivers: must be a mapping of keys to values"));
}

TEST(ConfigTest, MissingFileIsNamed) {
  auto c = LoadConfigFile("/nonexistent/tracekeep.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("/nonexistent/tracekeep.yaml"));
}

}  // namespace
}  // namespace tracekeep::config

namespace tracekeep::config {
namespace {

// The documented example configs must stay valid.
TEST(ConfigTest, JaegerRemoteStorageDefaultsAndOptions) {
  auto defaults = ParseConfig("");
  ASSERT_TRUE(defaults.ok());
  const JaegerRemoteStorageConfig& d = defaults->jaeger_remote_storage;
  EXPECT_TRUE(d.enabled);
  EXPECT_EQ(d.endpoint, "127.0.0.1:17271");
  EXPECT_EQ(d.allowed_networks, (std::vector<std::string>{"127.0.0.0/8", "::1/128"}));
  EXPECT_TRUE(d.indexed_attributes.empty()) << "order.id is indexed without being listed";
  EXPECT_EQ(d.default_search_depth, 20);
  EXPECT_EQ(d.max_traces_examined, 10000);

  auto c = ParseConfig(R"(jaeger_remote_storage:
  enabled: false
  endpoint: "0.0.0.0:17271"
  allowed_networks: [10.0.0.0/8]
  indexed_attributes: [customer.id, http.route]
  default_search_depth: 50
  max_traces_examined: 500
)");
  ASSERT_TRUE(c.ok()) << c.status();
  const JaegerRemoteStorageConfig& j = c->jaeger_remote_storage;
  EXPECT_FALSE(j.enabled);
  EXPECT_EQ(j.endpoint, "0.0.0.0:17271");
  EXPECT_EQ(j.allowed_networks, std::vector<std::string>{"10.0.0.0/8"});
  EXPECT_EQ(j.indexed_attributes, (std::vector<std::string>{"customer.id", "http.route"}));
  EXPECT_EQ(j.default_search_depth, 50);
  EXPECT_EQ(j.max_traces_examined, 500);

  auto bad = ParseConfig(R"(jaeger_remote_storage:
  endpoint: nowhere
  allowed_networks: ["10.0.0.300/8"]
  indexed_attributes: [""]
  default_search_depth: 0
  tls: {cert_file: /nonexistent.pem}
  colour: red
)",
                         "j.yaml");
  ASSERT_FALSE(bad.ok());
  const std::string m(bad.status().message());
  EXPECT_THAT(m, HasSubstr("jaeger_remote_storage.endpoint: must be host:port"));
  EXPECT_THAT(m, HasSubstr("jaeger_remote_storage.allowed_networks[0]"));
  EXPECT_THAT(m, HasSubstr("jaeger_remote_storage.indexed_attributes[0]: must not be empty"));
  EXPECT_THAT(m, HasSubstr("jaeger_remote_storage.default_search_depth: must be an integer"));
  EXPECT_THAT(m, HasSubstr("jaeger_remote_storage.tls"));
  EXPECT_THAT(m, HasSubstr("jaeger_remote_storage.colour: unknown key"));
}

TEST(ConfigTest, UiTraceUrlNeedsThePlaceholder) {
  auto c = ParseConfig("ui: {trace_url: \"http://localhost:16686/trace/{trace_id}\"}");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ui_trace_url, "http://localhost:16686/trace/{trace_id}");
  EXPECT_EQ(ParseConfig("").value().ui_trace_url, "");
  auto bad = ParseConfig("ui: {trace_url: \"http://localhost:16686/trace/\"}");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("ui.trace_url: must contain {trace_id}"));
}

TEST(ConfigTest, DeployExamplesAreValid) {
  for (const char* file : {"/deploy/tracekeep.yaml", "/deploy/tracekeep.compose.yaml"}) {
    auto c = LoadConfigFile(std::string(TRACEKEEP_SOURCE_DIR) + file);
    EXPECT_TRUE(c.ok()) << file << ": " << c.status();
  }
  // The security preset: a policy list for tracekeepctl policies set, and a config snippet.
  std::ifstream in(std::string(TRACEKEEP_SOURCE_DIR) + "/deploy/security/policies.yaml");
  std::stringstream text;
  text << in.rdbuf();
  auto preset = ParsePolicies(text.str(), "deploy/security/policies.yaml");
  ASSERT_TRUE(preset.ok()) << preset.status();
  EXPECT_EQ(preset->size(), 8u);
  auto metrics =
      LoadConfigFile(std::string(TRACEKEEP_SOURCE_DIR) + "/deploy/security/span_metrics.yaml");
  ASSERT_TRUE(metrics.ok()) << metrics.status();
  EXPECT_EQ(metrics->span_metrics.dimensions.size(), 2u);

  auto c = LoadConfigFile(std::string(TRACEKEEP_SOURCE_DIR) + "/deploy/tracekeep.yaml");
  ASSERT_TRUE(c.ok());
  // The example documents the defaults; only the exporter endpoint differs.
  EXPECT_EQ(c->exporter.endpoint, "localhost:14317");
  EXPECT_EQ(c->sampler.policies.size(), DefaultConfig().sampler.policies.size());
  EXPECT_EQ(c->sampler.decision_wait, DefaultConfig().sampler.decision_wait);
  EXPECT_EQ(c->span_metrics.buckets, DefaultConfig().span_metrics.buckets);
  EXPECT_EQ(c->span_metrics.max_series, DefaultConfig().span_metrics.max_series);
  EXPECT_EQ(c->span_metrics.metrics_namespace, DefaultConfig().span_metrics.metrics_namespace);
}

constexpr char kAllPolicies[] = R"(
- name: errors
  type: status_code
  status_code: {status_codes: [ERROR, OK]}
- name: slow
  type: latency
  latency: {threshold_ms: 500, upper_threshold_ms: 9000}
- name: orders
  type: string_attribute
  string_attribute: {key: order.status, values: ["CANCEL.*"], enabled_regex_matching: true, invert_match: true}
- name: pricey
  type: numeric_attribute
  numeric_attribute: {key: order.total_price, min_value: 1000.5}
- name: retried
  type: boolean_attribute
  boolean_attribute: {key: retry, value: true}
- name: base
  type: probabilistic
  probabilistic: {sampling_percentage: 2.5, hash_salt: s}
- name: rl
  type: rate_limiting
  rate_limiting: {spans_per_second: 100}
- name: fat
  type: span_count
  span_count: {min_spans: 2, max_spans: 50}
- name: ts
  type: trace_state
  trace_state: {key: vendor, values: [keep]}
- name: both
  type: and
  and:
    and_sub_policy:
      - {name: e, type: status_code, status_code: {status_codes: [ERROR]}}
      - name: n
        type: not
        not:
          not_sub_policy:
            - {name: s, type: latency, latency: {threshold_ms: 10}}
- name: no-health
  type: drop
  drop:
    drop_sub_policy:
      - {name: h, type: string_attribute, string_attribute: {key: http.route, values: [/healthz]}}
- name: budget
  type: composite
  composite:
    max_total_spans_per_second: 1000
    policy_order: [c2, c1]
    composite_sub_policy:
      - {name: c1, type: always_sample}
      - {name: c2, type: latency, latency: {threshold_ms: 100}}
    rate_allocation:
      - {policy: c2, percent: 60}
      - {policy: c1, percent: 40}
)";

TEST(ConfigTest, ReadsEveryPolicyTypeAndRoundTripsThroughYaml) {
  auto p = ParsePolicies(kAllPolicies);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->size(), 12u);
  EXPECT_EQ((*p)[0].status_codes, (std::vector<std::string>{"ERROR", "OK"}));
  EXPECT_EQ((*p)[1].latency.upper_threshold_ms, 9000);
  EXPECT_TRUE((*p)[2].string_attribute.invert_match);
  EXPECT_EQ((*p)[3].numeric_attribute.min_value, 1000.5);
  EXPECT_FALSE((*p)[3].numeric_attribute.max_value.has_value());
  EXPECT_TRUE((*p)[4].boolean_attribute.value);
  EXPECT_EQ((*p)[6].spans_per_second, 100);
  EXPECT_EQ((*p)[8].trace_state.values, (std::vector<std::string>{"keep"}));
  ASSERT_EQ((*p)[9].sub_policies.size(), 2u);
  EXPECT_EQ((*p)[9].sub_policies[1].sub_policies[0].latency.threshold_ms, 10);
  EXPECT_EQ((*p)[10].sub_policies[0].string_attribute.key, "http.route");
  EXPECT_EQ((*p)[11].composite.rate_allocation[0].percent, 60);
  EXPECT_EQ((*p)[11].composite.policy_order, (std::vector<std::string>{"c2", "c1"}));

  const std::string yaml = PoliciesToYaml(*p);
  auto again = ParsePolicies(yaml);
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << yaml;
  EXPECT_EQ(PoliciesToYaml(*again), yaml);
}

TEST(ConfigTest, PolicyProblemsAreAllListedWithPaths) {
  auto p = ParsePolicies(R"(
- name: slow
  type: latency
  latency: {threshold_ms: -5, lower: 3}
- name: both
  type: and
  and:
    and_sub_policy:
      - {name: x, type: string_attribute, string_attribute: {key: "", values: []}}
)");
  ASSERT_FALSE(p.ok());
  const std::string m(p.status().message());
  EXPECT_THAT(m, HasSubstr("sampler.policies[0].latency.lower: unknown key"));
  EXPECT_THAT(m, HasSubstr("sampler.policies[0] (\"slow\").latency.threshold_ms: must be >= 0, "
                           "got -5"));
  EXPECT_THAT(m, HasSubstr("sampler.policies[1] (\"both\").and.and_sub_policy[0] (\"x\")"
                           ".string_attribute.key: must not be empty"));
  EXPECT_THAT(m, HasSubstr(".string_attribute.values: must list at least one value"));
  EXPECT_FALSE(ParsePolicies("").ok());
  EXPECT_FALSE(ParsePolicies("name: x").ok());
}

TEST(ConfigTest, ReadsTheEngineOptions) {
  auto c = ParseConfig(R"(
sampler:
  decision_wait_after_root_received: 2s
  max_trace_age: 5m
  when_full: refuse
  max_pending_bytes: 1000000000
  max_spans_per_trace: 5000
  max_bytes_per_trace: 1000000
  decision_cache: {sampled_cache_size: 10, non_sampled_cache_size: 0}
  dry_run: true
  sample_on_first_match: true
)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->sampler.decision_wait_after_root_received, absl::Seconds(2));
  EXPECT_EQ(c->sampler.max_trace_age, absl::Minutes(5));
  EXPECT_EQ(c->sampler.when_full, sampling::WhenFull::kRefuse);
  EXPECT_EQ(c->sampler.max_pending_bytes, 1000000000u);
  EXPECT_EQ(c->sampler.max_spans_per_trace, 5000u);
  EXPECT_EQ(c->sampler.max_bytes_per_trace, 1000000u);
  EXPECT_EQ(c->sampler.sampled_cache_size, 10u);
  EXPECT_EQ(c->sampler.non_sampled_cache_size, 0u);
  EXPECT_TRUE(c->sampler.dry_run);
  EXPECT_TRUE(c->sampler.sample_on_first_match);
  auto bad = ParseConfig("sampler: {when_full: block}");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(),
              HasSubstr("sampler.when_full: must be evict or refuse, got \"block\""));
}

TEST(ConfigTest, KafkaReceiverIsOffByDefaultAndReadsItsKeys) {
  auto d = ParseConfig("");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE(d->kafka.enabled);
  EXPECT_EQ(d->kafka.topic, "otlp_spans");
  EXPECT_EQ(d->kafka.encoding, "otlp_proto");
  EXPECT_EQ(d->kafka.group_id, "tracekeep");
  EXPECT_EQ(d->kafka.initial_offset, "latest");

  auto c = ParseConfig(R"(receivers:
  kafka:
    enabled: true
    brokers: ["kafka-1:9092", "kafka-2:9092"]
    topic: spans
    encoding: otlp_proto
    group_id: tk
    initial_offset: earliest
    session_timeout: 10s
    gateway: true
    rekey_topic: spans_by_trace
)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->kafka.enabled);
  EXPECT_THAT(c->kafka.brokers, ::testing::ElementsAre("kafka-1:9092", "kafka-2:9092"));
  EXPECT_EQ(c->kafka.topic, "spans");
  EXPECT_EQ(c->kafka.group_id, "tk");
  EXPECT_EQ(c->kafka.initial_offset, "earliest");
  EXPECT_EQ(c->kafka.session_timeout, absl::Seconds(10));
  EXPECT_TRUE(c->kafka.gateway);
  EXPECT_EQ(c->kafka.rekey_topic, "spans_by_trace");
}

TEST(ConfigTest, KafkaReceiverProblemsAreListed) {
  auto c = ParseConfig(R"(receivers:
  kafka:
    enabled: true
    brokers: ["kafka-1", "kafka-2:9092"]
    encoding: otlp_json
    initial_offset: newest
    rekey_topic: otlp_spans
    partitions: 3
)",
                       "k.yaml");
  ASSERT_FALSE(c.ok());
  const std::string m(c.status().message());
  EXPECT_THAT(m, HasSubstr("k.yaml:4:15: receivers.kafka.brokers[0]: must be host:port with a port "
                           "in [1, 65535], got \"kafka-1\""));
  EXPECT_THAT(m, HasSubstr("receivers.kafka.encoding: must be otlp_proto (the only encoding "
                           "tracekeep reads; set encoding: otlp_proto on the OpenTelemetry kafka "
                           "exporter), got \"otlp_json\""));
  EXPECT_THAT(m, HasSubstr("receivers.kafka.initial_offset: must be latest or earliest, got "
                           "\"newest\""));
  EXPECT_THAT(m, HasSubstr("receivers.kafka.rekey_topic: must differ from receivers.kafka.topic, "
                           "got \"otlp_spans\" for both"));
  EXPECT_THAT(m, HasSubstr("receivers.kafka.partitions: unknown key"));

  auto no_brokers = ParseConfig("receivers: {kafka: {enabled: true}}");
  ASSERT_FALSE(no_brokers.ok());
  EXPECT_THAT(no_brokers.status().message(),
              HasSubstr("receivers.kafka.brokers: must list at least one broker"));

  auto gateway_alone = ParseConfig("receivers: {kafka: {gateway: true}}");
  ASSERT_FALSE(gateway_alone.ok());
  EXPECT_THAT(gateway_alone.status().message(),
              HasSubstr("receivers.kafka.gateway: needs receivers.kafka.enabled: true"));
}

// Policies written for the OpenTelemetry Collector's tail_sampling, keys it has that tracekeep
// did not read before included.
constexpr char kCollectorPolicies[] = R"(
- name: regex
  type: string_attribute
  string_attribute: {key: http.route, values: ["/api/.*"], enabled_regex_matching: true, cache_max_size: 500}
- name: bytes
  type: bytes_limiting
  bytes_limiting: {bytes_per_second: 1048576, burst_capacity: 2097152}
- name: exceptions
  type: ottl_condition
  ottl_condition:
    error_mode: ignore
    span:
      - 'attributes["http.response.status_code"] >= 500 and kind == SPAN_KIND_SERVER'
    spanevent:
      - 'name == "exception" and IsMatch(attributes["exception.type"], "SQL")'
- name: not-health
  type: not
  not:
    not_sub_policy: {name: health, type: string_attribute, string_attribute: {key: http.route, values: [/healthz]}}
)";

TEST(ConfigTest, CollectorPolicyKeysLoadAndRoundTrip) {
  auto p = ParsePolicies(kCollectorPolicies);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->size(), 4u);
  EXPECT_EQ((*p)[0].string_attribute.cache_max_size, 500);
  EXPECT_EQ((*p)[1].bytes_limiting.bytes_per_second, 1048576);
  EXPECT_EQ((*p)[1].bytes_limiting.burst_capacity, 2097152);
  EXPECT_EQ((*p)[2].ottl_condition.error_mode, "ignore");
  EXPECT_EQ((*p)[2].ottl_condition.span.size(), 1u);
  EXPECT_EQ((*p)[2].ottl_condition.spanevent[0],
            R"(name == "exception" and IsMatch(attributes["exception.type"], "SQL"))");
  ASSERT_EQ((*p)[3].sub_policies.size(), 1u);  // the Collector's single not_sub_policy
  EXPECT_EQ((*p)[3].sub_policies[0].name, "health");

  const std::string yaml = PoliciesToYaml(*p);
  auto again = ParsePolicies(yaml);
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << yaml;
  EXPECT_EQ(PoliciesToYaml(*again), yaml);

  auto bad = ParsePolicies(R"(
- name: o
  type: ottl_condition
  ottl_condition: {span: ['attributes["a"] == Concat(["x"], "")']}
)");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("sampler.policies[0] (\"o\").ottl_condition.span[0]: column 20: "
                        "unsupported converter Concat"));
}

TEST(ConfigTest, SpanMetricsDefaultsAndOptions) {
  const auto d = ParseConfig("").value().span_metrics;
  EXPECT_TRUE(d.enabled);
  EXPECT_EQ(d.metrics_namespace, "traces.span.metrics");
  EXPECT_EQ(d.unit, "ms");
  EXPECT_EQ(d.buckets.size(), 16u);
  EXPECT_EQ(d.max_series, 10000);
  EXPECT_TRUE(d.dimensions.empty());

  auto c = ParseConfig(R"(
span_metrics:
  namespace: span.metrics
  histogram:
    unit: s
    explicit: {buckets: [100us, 1ms, 1.5s]}
  dimensions:
    - name: http.route
    - name: db.system
      default: none
  aggregation_cardinality_limit: 50
  exceptions: {enabled: false}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  const auto& o = c->span_metrics;
  EXPECT_EQ(o.metrics_namespace, "span.metrics");
  EXPECT_EQ(o.unit, "s");
  EXPECT_THAT(o.buckets, ::testing::ElementsAre(absl::Microseconds(100), absl::Milliseconds(1),
                                                absl::Milliseconds(1500)));
  ASSERT_EQ(o.dimensions.size(), 2u);
  EXPECT_EQ(o.dimensions[0].name, "http.route");
  EXPECT_FALSE(o.dimensions[0].default_value.has_value());
  EXPECT_EQ(o.dimensions[1].default_value, "none");
  EXPECT_EQ(o.max_series, 50);
  EXPECT_FALSE(o.exceptions);

  auto bad = ParseConfig(R"(
span_metrics:
  histogram: {unit: us, explicit: {buckets: [5ms, 2ms, soon]}}
  dimensions: [{name: service.name}]
  aggregation_cardinality_limit: 0
  dimensions_cache_size: 10
)");
  ASSERT_FALSE(bad.ok());
  const std::string m(bad.status().message());
  EXPECT_THAT(m, HasSubstr("span_metrics.histogram.explicit.buckets[2]: must be a duration"));
  EXPECT_THAT(m, HasSubstr("span_metrics.histogram.unit: must be ms or s, got \"us\""));
  EXPECT_THAT(m, HasSubstr("span_metrics.histogram.explicit.buckets[1]: must be > 0 and greater"));
  EXPECT_THAT(m, HasSubstr("span_metrics.dimensions[0].name: label service_name is already"));
  EXPECT_THAT(m, HasSubstr("span_metrics.aggregation_cardinality_limit: must be >= 1, got 0"));
  EXPECT_THAT(m, HasSubstr("span_metrics.dimensions_cache_size: unknown key"));
}

}  // namespace
}  // namespace tracekeep::config

namespace tracekeep::config {
namespace {

// A temporary file with `text`, removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(const std::string& text) {
    char pattern[] = "/tmp/config_test.XXXXXX";
    const int fd = mkstemp(pattern);
    path_ = pattern;
    FILE* f = fdopen(fd, "w");
    fputs(text.c_str(), f);
    fclose(f);
  }
  ~TempFile() { std::remove(path_.c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(SecurityConfigTest, ReadsTokensLimitsRolesAndRedaction) {
  TempFile otlp("shop-api shop-token-0123456789\n");
  TempFile admin("alice operator alice-token-0123456789\n");
  TempFile salt("pepper-0123456789\n");
  auto c = ParseConfig(absl::StrCat(R"(
receivers:
  otlp:
    protocols:
      grpc: {auth: {token_file: )",
                                    otlp.path(), R"(, client_attribute: tracekeep.client}}
      http: {auth: {token_file: )",
                                    otlp.path(), R"(}}
    client_limits:
      default: {spans_per_second: 1000}
      clients:
        batch-job: {spans_per_second: 50, bytes_per_second: 100000}
admin:
  tokens_file: )",
                                    admin.path(), R"(
  tls: {cert_file: /dev/null, key_file: /dev/null, client_ca_file: /dev/null}
  client_certificates:
    - {subject: "CN=carol", role: viewer}
  audit_log: false
security: {token_reload_interval: 250ms}
redaction:
  hash_salt_file: )",
                                    salt.path(), R"(
  actions:
    - {key: user.email, action: hash}
    - {pattern: "^http\\.request\\.header\\.", action: delete}
    - {key: order.id, action: hash}
  blocked_values: ["\\b\\d{16}\\b"]
  blocked_values_action: hash
  ignored_keys: [support.contact]
)"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->grpc.auth_token_file, otlp.path());
  EXPECT_EQ(c->http.auth_token_file, otlp.path());
  EXPECT_EQ(c->grpc.auth_client_attribute, "tracekeep.client");
  EXPECT_EQ(c->http.auth_client_attribute, "");
  EXPECT_EQ(c->client_limits.default_limit.spans_per_second, 1000);
  EXPECT_EQ(c->client_limits.clients.at("batch-job").spans_per_second, 50);
  EXPECT_EQ(c->client_limits.clients.at("batch-job").bytes_per_second, 100000);
  EXPECT_EQ(c->admin.tokens_file, admin.path());
  EXPECT_EQ(c->admin.certificate_roles.at("CN=carol"), security::Role::kViewer);
  EXPECT_FALSE(c->admin.audit_log);
  EXPECT_EQ(c->token_reload_interval, absl::Milliseconds(250));
  EXPECT_EQ(c->redaction.hash_salt, "pepper-0123456789");
  ASSERT_EQ(c->redaction.actions.size(), 3u);
  EXPECT_EQ(c->redaction.actions[1].pattern, "^http\\.request\\.header\\.");
  EXPECT_EQ(c->redaction.actions[1].action, redaction::Action::kDelete);
  EXPECT_EQ(c->redaction.blocked_values_action, redaction::Action::kHash);
  EXPECT_EQ(c->redaction.protected_key, "order.id");
}

TEST(SecurityConfigTest, DefaultsRequireNothingAndRedactNothing) {
  auto c = ParseConfig("");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->grpc.auth_token_file, "");
  EXPECT_TRUE(c->client_limits.default_limit.unlimited());
  EXPECT_EQ(c->admin.tokens_file, "");
  EXPECT_TRUE(c->admin.audit_log);
  EXPECT_FALSE(c->redaction.enabled());
}

TEST(SecurityConfigTest, ProblemsAreListedWithoutSecrets) {
  TempFile bad("shop-api\nsecret-value-0123456789 x y\n");
  auto c = ParseConfig(absl::StrCat(R"(
receivers:
  otlp:
    protocols:
      grpc: {auth: {token_file: )",
                                    bad.path(), R"(}}
      http: {auth: {token_file: /nonexistent/tokens}}
admin:
  client_certificates: [{subject: "CN=x", role: root}, {subject: "CN=y", role: viewer}]
redaction:
  actions:
    - {key: order.id, action: delete}
    - {pattern: "order", action: mask}
    - {key: a, action: scramble}
  blocked_values: ["("]
)"),
                       "s.yaml");
  ASSERT_FALSE(c.ok());
  const std::string m(c.status().message());
  EXPECT_THAT(m, HasSubstr("receivers.otlp.protocols.grpc.auth.token_file: "));
  EXPECT_THAT(m, HasSubstr(":1: want \"<name> <token>\", got 1 fields"));
  EXPECT_THAT(m, Not(HasSubstr("secret-value")));
  EXPECT_THAT(m,
              HasSubstr("receivers.otlp.protocols.http.auth.token_file: cannot read token file"));
  EXPECT_THAT(m, HasSubstr("admin.client_certificates[0].role: must be viewer or operator"));
  EXPECT_THAT(m, HasSubstr("admin.client_certificates: needs admin.tls.client_ca_file"));
  EXPECT_THAT(m,
              HasSubstr("redaction.actions[0]: would delete the order id attribute \"order.id\""));
  EXPECT_THAT(m, HasSubstr("redaction.actions[1]: would mask the order id attribute"));
  EXPECT_THAT(m, HasSubstr("redaction.actions[2].action: must be delete, hash or mask"));
  EXPECT_THAT(m, HasSubstr("redaction.blocked_values[0]: not a valid RE2 expression"));
}

TEST(SecurityConfigTest, AClientAttributeNeedsTokensAndMustNotBeTheOrderId) {
  TempFile otlp("shop-api shop-token-0123456789\n");
  auto c = ParseConfig(absl::StrCat(R"(
receivers:
  otlp:
    protocols:
      grpc: {auth: {token_file: )",
                                    otlp.path(), R"(, client_attribute: order.id}}
      http: {auth: {client_attribute: tracekeep.client}}
)"),
                       "c.yaml");
  ASSERT_FALSE(c.ok());
  const std::string m(c.status().message());
  EXPECT_THAT(m, HasSubstr("receivers.otlp.protocols.http.auth.client_attribute: needs "
                           "receivers.otlp.protocols.http.auth.token_file (without tokens there "
                           "is no client name to put in \"tracekeep.client\")"));
  EXPECT_THAT(m, HasSubstr("receivers.otlp.protocols.grpc.auth.client_attribute: must not be "
                           "orders.id_attribute \"order.id\""));
}

TEST(ConfigTest, GrpcBoundsAgainstHostileClients) {
  auto defaults = ParseConfig("");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->grpc.max_concurrent_streams, 100);
  EXPECT_EQ(defaults->grpc.handshake_timeout, absl::Seconds(10));
  EXPECT_EQ(defaults->grpc.max_connection_idle, absl::Minutes(5));
  EXPECT_EQ(defaults->grpc.max_connection_age, absl::Hours(1));
  EXPECT_EQ(defaults->grpc.max_memory_mib, 1024);
  auto c = ParseConfig(R"(receivers:
  otlp:
    protocols:
      grpc:
        max_concurrent_streams: 8
        handshake_timeout: 2s
        max_memory_mib: 64
        keepalive:
          server_parameters:
            max_connection_idle: 0s
            max_connection_age: 10m
            max_connection_age_grace: 5s
            time: 1m
            timeout: 3s
)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->grpc.max_concurrent_streams, 8);
  EXPECT_EQ(c->grpc.handshake_timeout, absl::Seconds(2));
  EXPECT_EQ(c->grpc.max_memory_mib, 64);
  EXPECT_EQ(c->grpc.max_connection_idle, absl::ZeroDuration());  // never
  EXPECT_EQ(c->grpc.max_connection_age, absl::Minutes(10));
  EXPECT_EQ(c->grpc.max_connection_age_grace, absl::Seconds(5));
  EXPECT_EQ(c->grpc.keepalive_time, absl::Minutes(1));
  EXPECT_EQ(c->grpc.keepalive_timeout, absl::Seconds(3));
  auto bad = ParseConfig(R"(receivers:
  otlp:
    protocols:
      grpc:
        max_concurrent_streams: 0
        keepalive: {server_parameters: {max_connection_age: -1s, idle: 1s}}
)");
  ASSERT_FALSE(bad.ok());
  const std::string m(bad.status().message());
  EXPECT_THAT(m, HasSubstr("receivers.otlp.protocols.grpc.max_concurrent_streams"));
  EXPECT_THAT(m, HasSubstr("receivers.otlp.protocols.grpc.keepalive.server_parameters."
                           "max_connection_age"));
  EXPECT_THAT(m, HasSubstr("receivers.otlp.protocols.grpc.keepalive.server_parameters.idle"));
}

TEST(SecurityConfigTest, AuditLogRotation) {
  auto defaults = ParseConfig("");
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->admin.audit_log_max_size_mib, 100);
  EXPECT_EQ(defaults->admin.audit_log_max_files, 10);
  auto c = ParseConfig("admin: {audit_log_max_size_mib: 5, audit_log_max_files: 3}\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->admin.audit_log_max_size_mib, 5);
  EXPECT_EQ(c->admin.audit_log_max_files, 3);
  auto bad = ParseConfig("admin: {audit_log_max_size_mib: -1, audit_log_max_files: 0}\n");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("admin.audit_log_max_size_mib"));
  EXPECT_THAT(bad.status().message(), HasSubstr("admin.audit_log_max_files"));
}

TEST(ConfigTest, KafkaOrderTopicsForOrderAffinity) {
  auto c = ParseConfig(R"(receivers:
  kafka:
    enabled: true
    brokers: ["kafka-1:9092"]
    order_topic: tk_orders
    order_records_topic: tk_order_records
)");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->kafka.order_topic, "tk_orders");
  EXPECT_EQ(c->kafka.order_records_topic, "tk_order_records");
  EXPECT_EQ(DefaultConfig().kafka.order_topic, "");  // off: each member judges what it sees

  auto same = ParseConfig(R"(receivers:
  kafka:
    enabled: true
    brokers: ["kafka-1:9092"]
    order_topic: otlp_spans
    order_records_topic: otlp_spans
orders: {enabled: false}
)");
  ASSERT_FALSE(same.ok());
  const std::string m(same.status().message());
  EXPECT_THAT(m, HasSubstr("receivers.kafka.order_topic: must differ from receivers.kafka.topic "
                           "and rekey_topic, got \"otlp_spans\""));
  EXPECT_THAT(m, HasSubstr("receivers.kafka.order_records_topic: must differ from "
                           "receivers.kafka.topic, rekey_topic and order_topic"));
  EXPECT_THAT(m, HasSubstr("receivers.kafka.order_topic: needs orders.enabled: true"));
}

}  // namespace
}  // namespace tracekeep::config
