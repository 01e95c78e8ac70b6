// libFuzzer target: the YAML config and policy readers (collector/config/config.cc), as
// `--check-config` and the admin API's SetPolicies run them on text a person or client wrote.
#include <cstddef>
#include <cstdint>
#include <string>

#include "collector/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  (void)tracekeep::config::ParseConfig(text, "fuzz.yaml");
  auto policies = tracekeep::config::ParsePolicies(text, "fuzz-policies.yaml");
  if (policies.ok()) {
    // What GetPolicies prints must read back.
    auto again = tracekeep::config::ParsePolicies(tracekeep::config::PoliciesToYaml(*policies));
    if (!again.ok()) __builtin_trap();
  }
  return 0;
}
