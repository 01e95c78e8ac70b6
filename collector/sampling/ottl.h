// The subset of OTTL (the OpenTelemetry Transformation Language) boolean conditions that the
// `ottl_condition` sampling policy accepts, on the `span` and `spanevent` contexts:
//
//   paths      name, kind, status.code, attributes["k"], resource.attributes["k"],
//              start_time_unix_nano, end_time_unix_nano, start_time and end_time (times, ordered
//              among themselves), end_time - start_time (a duration),
//              end_time_unix_nano - start_time_unix_nano (nanoseconds); on spanevent, the
//              event's name and attributes["k"], and span.<any span path> for its span
//   literals   "strings", integers, floats, true, false, nil, STATUS_CODE_*, SPAN_KIND_*,
//              Duration("1.5s")
//   operators  == != < <= > >=, and, or, not, ( )
//   converters IsMatch(value, "RE2 pattern") (a match anywhere, as Go's regexp.MatchString)
//
// Comparisons follow OTTL: values of different types are never equal (== false, != true) and
// never ordered (< <= > >= false); nil equals only nil; ints and floats compare as numbers;
// strings compare bytewise. An attribute that is absent is nil; arrays, maps and bytes compare
// unequal to everything. Anything else (other paths, converters, editors, arithmetic, lists,
// maps) is refused when the condition is parsed, naming the construct and its column.
#ifndef TRACEKEEP_COLLECTOR_SAMPLING_OTTL_H_
#define TRACEKEEP_COLLECTOR_SAMPLING_OTTL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "collector/sampling/span_scan.h"

namespace tracekeep::sampling::ottl {

enum class Context { kSpan, kSpanEvent };

// What a condition reads: a span, its resource, and (spanevent context) one of its events.
struct Input {
  std::string_view span_name;
  int kind = 0;         // opentelemetry.proto.trace.v1.Span.SpanKind
  int status_code = 0;  // kStatusUnset, kStatusOk, kStatusError
  int64_t start_unix_nanos = 0;
  int64_t end_unix_nanos = 0;
  const Attribute* span_attributes = nullptr;
  size_t span_attribute_count = 0;
  const Attribute* resource_attributes = nullptr;
  size_t resource_attribute_count = 0;
  // spanevent context only.
  std::string_view event_name;
  const Attribute* event_attributes = nullptr;
  size_t event_attribute_count = 0;
};

// One parsed condition. Immutable; Evaluate is thread-safe.
class Condition {
 public:
  // Parses `text` for `context`. kInvalidArgument, "column N: <what>", names what is not
  // supported or malformed.
  [[nodiscard]] static absl::StatusOr<Condition> Parse(std::string_view text, Context context);

  bool Evaluate(const Input& input) const;

  Condition(Condition&&) noexcept;
  Condition& operator=(Condition&&) noexcept;
  ~Condition();

  struct Tree;  // the parsed expression (ottl.cc)

 private:
  explicit Condition(std::unique_ptr<Tree> tree);
  std::unique_ptr<Tree> tree_;
};

}  // namespace tracekeep::sampling::ottl

#endif  // TRACEKEEP_COLLECTOR_SAMPLING_OTTL_H_
