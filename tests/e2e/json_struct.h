// Reading tracekeepctl's --json output in end-to-end tests: the output as a protobuf Struct and
// the few accessors the order checks use. One copy for every suite that reads orders.
#ifndef TRACEKEEP_TESTS_E2E_JSON_STRUCT_H_
#define TRACEKEEP_TESTS_E2E_JSON_STRUCT_H_

#include <string>
#include <vector>

#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace tracekeep::e2e {

// The JSON object in `json` (text before its first '{' is skipped); a failed expectation and an
// empty Struct when it does not parse.
inline google::protobuf::Struct ParseJson(const std::string& json) {
  google::protobuf::Struct s;
  const size_t brace = json.find('{');
  EXPECT_TRUE(brace != std::string::npos &&
              google::protobuf::util::JsonStringToMessage(json.substr(brace), &s).ok())
      << json;
  return s;
}

// A string field, "" when absent.
inline std::string Str(const google::protobuf::Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  return it == s.fields().end() ? "" : it->second.string_value();
}

// A list of strings, empty when absent.
inline std::vector<std::string> Strings(const google::protobuf::Struct& s, const std::string& key) {
  std::vector<std::string> out;
  auto it = s.fields().find(key);
  if (it == s.fields().end()) return out;
  for (const google::protobuf::Value& v : it->second.list_value().values()) {
    out.push_back(v.string_value());
  }
  return out;
}

// The anomaly types of an order record (`tracekeepctl --json order get`).
inline std::vector<std::string> AnomalyTypes(const google::protobuf::Struct& order) {
  std::vector<std::string> out;
  auto it = order.fields().find("anomalies");
  if (it == order.fields().end()) return out;
  for (const google::protobuf::Value& v : it->second.list_value().values()) {
    out.push_back(Str(v.struct_value(), "type"));
  }
  return out;
}

}  // namespace tracekeep::e2e

#endif  // TRACEKEEP_TESTS_E2E_JSON_STRUCT_H_
