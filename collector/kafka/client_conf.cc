#include "collector/kafka/client_conf.h"

#include "absl/strings/str_cat.h"

namespace tracekeep::kafka {

absl::StatusOr<std::unique_ptr<RdKafka::Conf>> ClientConf(
    absl::string_view who, std::map<std::string, std::string> defaults,
    const std::map<std::string, std::string>& client_properties) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  for (const auto& [k, v] : client_properties) defaults[k] = v;
  std::string error;
  for (const auto& [k, v] : defaults) {
    if (conf->set(k, v, error) != RdKafka::Conf::CONF_OK) {
      return absl::InvalidArgumentError(
          absl::StrCat(who, ": client property ", k, "=\"", v, "\": ", error));
    }
  }
  return conf;
}

}  // namespace tracekeep::kafka
