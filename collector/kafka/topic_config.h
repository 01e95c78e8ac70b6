// What a topic's configuration says about how long Kafka keeps its records, read with the admin
// API (DescribeConfigs), and what that means for the order topic.
#ifndef TRACEKEEP_COLLECTOR_KAFKA_TOPIC_CONFIG_H_
#define TRACEKEEP_COLLECTOR_KAFKA_TOPIC_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace tracekeep::kafka {

struct TopicRetention {
  // retention.ms: records older than this may be deleted; -1 = kept forever.
  int64_t retention_ms = -1;
  // retention.bytes: per partition, the oldest segments are deleted beyond it; -1 = unbounded.
  int64_t retention_bytes = -1;
  // cleanup.policy: "delete", "compact" or "compact,delete".
  std::string cleanup_policy = "delete";
};

// Reads `topic`'s retention settings from the brokers (the effective values: the topic's own or
// the broker's defaults). kUnavailable when the brokers do not answer within `timeout`, another
// error when they refuse (e.g. no DescribeConfigs permission).
[[nodiscard]] absl::StatusOr<TopicRetention> DescribeTopicRetention(
    const std::vector<std::string>& brokers, const std::string& topic, absl::Duration timeout,
    const std::map<std::string, std::string>& client_properties = {});

// The order topic's offsets are committed only up to the first record of the oldest unresolved
// order, and a held trace may wait `max_hold_time` (orders.max_hold_time) for its order's
// verdict. If Kafka deletes records sooner, a new owner (after a crash or a rebalance) cannot
// replay them and those held traces are lost. Returns what is wrong, one sentence naming the
// topic and the values, or "" when the retention covers max_hold_time.
std::string OrderTopicRetentionProblem(const std::string& topic, const TopicRetention& retention,
                                       absl::Duration max_hold_time);

}  // namespace tracekeep::kafka

#endif  // TRACEKEEP_COLLECTOR_KAFKA_TOPIC_CONFIG_H_
