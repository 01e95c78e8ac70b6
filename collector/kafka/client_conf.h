// The librdkafka configuration every tracekeep Kafka client starts from.
#ifndef TRACEKEEP_COLLECTOR_KAFKA_CLIENT_CONF_H_
#define TRACEKEEP_COLLECTOR_KAFKA_CLIENT_CONF_H_

#include <librdkafka/rdkafkacpp.h>

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace tracekeep::kafka {

// A global configuration with `defaults`, then the user's `client_properties` on top of them.
// A property librdkafka refuses is an InvalidArgument naming `who` (e.g. "kafka gateway"), the
// property and its value.
[[nodiscard]] absl::StatusOr<std::unique_ptr<RdKafka::Conf>> ClientConf(
    absl::string_view who, std::map<std::string, std::string> defaults,
    const std::map<std::string, std::string>& client_properties);

}  // namespace tracekeep::kafka

#endif  // TRACEKEEP_COLLECTOR_KAFKA_CLIENT_CONF_H_
