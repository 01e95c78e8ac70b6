#include "collector/kafka/topic_config.h"

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

#include <algorithm>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/common/status_macros.h"
#include "collector/kafka/client_conf.h"

namespace tracekeep::kafka {

namespace {

struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
struct OptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* o) const { rd_kafka_AdminOptions_destroy(o); }
};
struct ResourceDeleter {
  void operator()(rd_kafka_ConfigResource_t* r) const { rd_kafka_ConfigResource_destroy(r); }
};

// "604800000 ms (168h)".
std::string Describe(int64_t ms) {
  return absl::StrCat(ms, " ms (", absl::FormatDuration(absl::Milliseconds(ms)), ")");
}

}  // namespace

absl::StatusOr<TopicRetention> DescribeTopicRetention(
    const std::vector<std::string>& brokers, const std::string& topic, absl::Duration timeout,
    const std::map<std::string, std::string>& client_properties) {
  TK_ASSIGN_OR_RETURN(std::unique_ptr<RdKafka::Conf> conf,
                      ClientConf("kafka",
                                 {{"bootstrap.servers", absl::StrJoin(brokers, ",")},
                                  {"client.id", "tracekeep-admin"}},
                                 client_properties));
  std::string error;
  std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), error));
  if (producer == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("kafka: cannot create a client: ", error));
  }
  rd_kafka_t* rk = producer->c_ptr();
  const int ms = static_cast<int>(std::max<int64_t>(100, absl::ToInt64Milliseconds(timeout)));
  std::unique_ptr<rd_kafka_AdminOptions_t, OptionsDeleter> options(
      rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS));
  char errstr[512];
  if (rd_kafka_AdminOptions_set_request_timeout(options.get(), ms, errstr, sizeof(errstr)) !=
      RD_KAFKA_RESP_ERR_NO_ERROR) {
    return absl::InternalError(absl::StrCat("kafka: DescribeConfigs timeout: ", errstr));
  }
  std::unique_ptr<rd_kafka_ConfigResource_t, ResourceDeleter> resource(
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str()));
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue(rd_kafka_queue_new(rk));
  rd_kafka_ConfigResource_t* resources[] = {resource.get()};
  rd_kafka_DescribeConfigs(rk, resources, 1, options.get(), queue.get());
  // The request's own timeout answers first; the margin only guards against a lost event.
  std::unique_ptr<rd_kafka_event_t, EventDeleter> event(
      rd_kafka_queue_poll(queue.get(), ms + 2000));
  if (event == nullptr) {
    return absl::UnavailableError(absl::StrCat("kafka: no answer to DescribeConfigs of topic \"",
                                               topic, "\" within ", ms, " ms"));
  }
  if (rd_kafka_event_error(event.get()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    const rd_kafka_resp_err_t err = rd_kafka_event_error(event.get());
    const std::string message = absl::StrCat("kafka: DescribeConfigs of topic \"", topic,
                                             "\": ", rd_kafka_event_error_string(event.get()));
    return err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR__TRANSPORT
               ? absl::UnavailableError(message)
               : absl::FailedPreconditionError(message);
  }
  const rd_kafka_DescribeConfigs_result_t* result =
      rd_kafka_event_DescribeConfigs_result(event.get());
  size_t count = 0;
  const rd_kafka_ConfigResource_t** described =
      result != nullptr ? rd_kafka_DescribeConfigs_result_resources(result, &count) : nullptr;
  for (size_t i = 0; i < count; ++i) {
    const rd_kafka_ConfigResource_t* r = described[i];
    if (rd_kafka_ConfigResource_error(r) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::FailedPreconditionError(
          absl::StrCat("kafka: DescribeConfigs of topic \"", topic,
                       "\": ", rd_kafka_ConfigResource_error_string(r)));
    }
    TopicRetention out;
    size_t entries = 0;
    const rd_kafka_ConfigEntry_t** configs = rd_kafka_ConfigResource_configs(r, &entries);
    for (size_t j = 0; j < entries; ++j) {
      const char* name = rd_kafka_ConfigEntry_name(configs[j]);
      const char* value = rd_kafka_ConfigEntry_value(configs[j]);
      if (name == nullptr || value == nullptr) continue;
      const absl::string_view n(name);
      if (n == "retention.ms" && !absl::SimpleAtoi(value, &out.retention_ms)) {
        return absl::InternalError(
            absl::StrCat("kafka: topic \"", topic, "\": retention.ms is not a number: ", value));
      }
      if (n == "retention.bytes" && !absl::SimpleAtoi(value, &out.retention_bytes)) {
        return absl::InternalError(
            absl::StrCat("kafka: topic \"", topic, "\": retention.bytes is not a number: ", value));
      }
      if (n == "cleanup.policy") out.cleanup_policy = value;
    }
    return out;
  }
  return absl::InternalError(
      absl::StrCat("kafka: DescribeConfigs of topic \"", topic, "\" described nothing"));
}

std::string OrderTopicRetentionProblem(const std::string& topic, const TopicRetention& retention,
                                       absl::Duration max_hold_time) {
  const std::string consequence =
      "a member taking over one of its partitions cannot replay the traces of the oldest "
      "unresolved orders and their held traces are lost";
  if (!absl::StrContains(retention.cleanup_policy, "delete") &&
      absl::StrContains(retention.cleanup_policy, "compact")) {
    return absl::StrCat("order topic \"", topic, "\" has cleanup.policy=", retention.cleanup_policy,
                        ": compaction keeps only the last record of each order id, so ",
                        consequence, "; use cleanup.policy=delete");
  }
  if (retention.retention_ms >= 0 && absl::Milliseconds(retention.retention_ms) < max_hold_time) {
    return absl::StrCat("order topic \"", topic,
                        "\" keeps records for retention.ms=", Describe(retention.retention_ms),
                        ", less than orders.max_hold_time (", absl::FormatDuration(max_hold_time),
                        "): its offsets wait for the oldest "
                        "unresolved order, and once Kafka deleted its records ",
                        consequence, "; raise retention.ms to at least ",
                        absl::ToInt64Milliseconds(max_hold_time), " or lower orders.max_hold_time");
  }
  if (retention.retention_bytes >= 0) {
    return absl::StrCat("order topic \"", topic,
                        "\" has retention.bytes=", retention.retention_bytes,
                        ": Kafka deletes its oldest records once a partition holds more, "
                        "whatever their age; if that happens within orders.max_hold_time (",
                        absl::FormatDuration(max_hold_time), ") ", consequence,
                        "; prefer retention.bytes=-1 and a retention.ms");
  }
  return "";
}

}  // namespace tracekeep::kafka
