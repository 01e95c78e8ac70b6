// Attribute redaction: deletes, hashes or masks span, event, link, scope and resource
// attributes before spans are written anywhere (journal, store, export queue, Kafka).
//
// The rules follow the OpenTelemetry Collector's `attributes` processor (actions by `key` or
// `pattern`, `delete` / `hash`, plus `mask`) and its `redaction` processor (`blocked_values`,
// `ignored_keys`), so rules can be carried over.
#ifndef TRACEKEEP_COLLECTOR_REDACTION_REDACTOR_H_
#define TRACEKEEP_COLLECTOR_REDACTION_REDACTOR_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace google::protobuf {
template <typename T>
class RepeatedPtrField;
}  // namespace google::protobuf

namespace opentelemetry::proto::common::v1 {
class KeyValue;
class AnyValue;
}  // namespace opentelemetry::proto::common::v1

namespace tracekeep::redaction {

enum class Action {
  kDelete,  // the attribute is removed
  kHash,    // the value becomes the lower-case hex SHA-256 of hash_salt + the value (as text)
  kMask,    // the value becomes "****"
};
// "delete", "hash", "mask"; false for anything else.
bool ParseAction(absl::string_view text, Action* action);

// One rule of `actions`: exactly one of key / pattern.
struct AttributeRule {
  std::string key;      // exact attribute key
  std::string pattern;  // RE2, matched anywhere in the key (as the Collector's `pattern`)
  Action action = Action::kDelete;
};

struct RedactorOptions {
  // Applied to every attribute by key, the first matching rule wins. Default: none.
  std::vector<AttributeRule> actions;
  // RE2 patterns of values that must not be kept (card numbers, e-mail addresses): the matching
  // parts of string values (nested arrays and maps included) are replaced by "****" or, with
  // blocked_values_action kHash, by their salted SHA-256. Default: none.
  std::vector<std::string> blocked_values;
  Action blocked_values_action = Action::kMask;  // kMask or kHash
  // Keys whose values blocked_values never touch. Default: none.
  std::vector<std::string> ignored_keys;
  // Salt of every hash (keep it secret: without it, a hash of a guessable value can be
  // recomputed). Default: "".
  std::string hash_salt;
  // The order id attribute: it may be hashed (consistently, so that orders still group) but a
  // rule that would delete or mask it is a configuration error, and blocked_values skip it.
  // Default: "" (none).
  std::string protected_key;

  bool enabled() const { return !actions.empty() || !blocked_values.empty(); }
};

// Every problem of `options`, each prefixed with `path` ("redaction.actions[2].pattern: ...").
std::vector<std::string> Validate(const RedactorOptions& options, const std::string& path);

// Counters, updated once per batch.
struct RedactionStats {
  std::atomic<uint64_t> spans_changed{0};
  std::atomic<uint64_t> attributes_deleted{0};
  std::atomic<uint64_t> attributes_hashed{0};
  std::atomic<uint64_t> attributes_masked{0};
  std::atomic<uint64_t> values_blocked{0};  // values changed by blocked_values
  std::atomic<uint64_t> undecodable{0};     // spans or resources that could not be parsed
};

// Applies the rules to serialized OTLP messages. Thread-safe (const after Create).
class Redactor {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Redactor>> Create(
      const RedactorOptions& options);
  ~Redactor();

  // Redacts a serialized opentelemetry.proto.trace.v1.Span in place (its attributes, events'
  // and links' attributes). Returns false when nothing changed (the bytes are untouched).
  // Bytes that do not parse are replaced by an empty string (and counted): a span that cannot
  // be checked is not written. With exact-key rules only, a span none of whose bytes spell one
  // of the keys is not parsed at all (such bytes are not checked for validity either: they are
  // passed on as the receiver accepted them).
  bool RedactSpan(std::string* span) const;
  // The same for a serialized Resource or InstrumentationScope.
  bool RedactResource(std::string* resource) const;
  bool RedactScope(std::string* scope) const;

  // Redacts one attribute list in place; true when it changed.
  bool RedactAttributes(
      google::protobuf::RepeatedPtrField<opentelemetry::proto::common::v1::KeyValue>* attributes)
      const;

  RedactionStats& stats() const { return stats_; }

 private:
  struct Compiled;
  explicit Redactor(std::unique_ptr<Compiled> compiled);
  // False when no rule can apply to the serialized message `bytes` (checked without parsing it).
  bool MayMatch(absl::string_view bytes) const;
  // The rule for `key`, or nullptr.
  const Action* RuleFor(absl::string_view key) const;
  bool BlockValues(opentelemetry::proto::common::v1::AnyValue* value) const;
  void Hash(opentelemetry::proto::common::v1::AnyValue* value) const;

  std::unique_ptr<Compiled> compiled_;
  mutable RedactionStats stats_;
};

}  // namespace tracekeep::redaction

#endif  // TRACEKEEP_COLLECTOR_REDACTION_REDACTOR_H_
