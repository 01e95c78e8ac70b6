// Small helpers for writing JSON by hand (where a message is built without a JSON library).
#ifndef TRACEKEEP_COLLECTOR_COMMON_JSON_H_
#define TRACEKEEP_COLLECTOR_COMMON_JSON_H_

#include <string>

#include "absl/strings/string_view.h"

namespace tracekeep {

// Appends `s` as a JSON string literal: quoted, with ", \ and control characters escaped.
void AppendJsonString(absl::string_view s, std::string* out);

}  // namespace tracekeep

#endif  // TRACEKEEP_COLLECTOR_COMMON_JSON_H_
