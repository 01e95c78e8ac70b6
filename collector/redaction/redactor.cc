#include "collector/redaction/redactor.h"

#include <re2/re2.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "collector/security/token_file.h"
#include "google/protobuf/stubs/logging.h"
#include "opentelemetry/proto/common/v1/common.pb.h"
#include "opentelemetry/proto/resource/v1/resource.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace tracekeep::redaction {
namespace {

namespace otlp_common = ::opentelemetry::proto::common::v1;
namespace otlp_trace = ::opentelemetry::proto::trace::v1;

constexpr char kMask[] = "****";

const char* ActionName(Action a) {
  switch (a) {
    case Action::kDelete:
      return "delete";
    case Action::kHash:
      return "hash";
    case Action::kMask:
      return "mask";
  }
  return "?";
}

// The text a value is hashed as.
std::string ValueText(const otlp_common::AnyValue& v) {
  switch (v.value_case()) {
    case otlp_common::AnyValue::kStringValue:
      return v.string_value();
    case otlp_common::AnyValue::kBoolValue:
      return v.bool_value() ? "true" : "false";
    case otlp_common::AnyValue::kIntValue:
      return absl::StrCat(v.int_value());
    case otlp_common::AnyValue::kDoubleValue:
      return absl::StrCat(v.double_value());
    case otlp_common::AnyValue::kBytesValue:
      return v.bytes_value();
    default:
      return v.SerializeAsString();  // arrays and maps: their encoding
  }
}

// Parses without protobuf's error log: a client sending strings that are not UTF-8 (which
// proto3 refuses to parse) would otherwise write one log line per span (found by
// redaction_fuzz). Such spans are counted in RedactionStats::undecodable instead.
bool QuietParse(const std::string& bytes, google::protobuf::MessageLite* message) {
  google::protobuf::LogSilencer silence;
  return message->ParseFromString(bytes);
}

}  // namespace

bool ParseAction(absl::string_view text, Action* action) {
  if (text == "delete") {
    *action = Action::kDelete;
  } else if (text == "hash") {
    *action = Action::kHash;
  } else if (text == "mask") {
    *action = Action::kMask;
  } else {
    return false;
  }
  return true;
}

std::vector<std::string> Validate(const RedactorOptions& options, const std::string& path) {
  std::vector<std::string> problems;
  for (size_t i = 0; i < options.actions.size(); ++i) {
    const AttributeRule& r = options.actions[i];
    const std::string at = absl::StrCat(path, ".actions[", i, "]");
    if (r.key.empty() == r.pattern.empty()) {
      problems.push_back(absl::StrCat(at, ": set exactly one of key and pattern"));
      continue;
    }
    bool hits_protected = false;
    if (!r.pattern.empty()) {
      RE2 re(r.pattern, RE2::Quiet);
      if (!re.ok()) {
        problems.push_back(absl::StrCat(at, ".pattern: not a valid RE2 expression (", re.error(),
                                        "), got \"", r.pattern, "\""));
        continue;
      }
      hits_protected =
          !options.protected_key.empty() && RE2::PartialMatch(options.protected_key, re);
    } else {
      hits_protected = r.key == options.protected_key;
    }
    if (hits_protected && r.action != Action::kHash) {
      problems.push_back(absl::StrCat(at, ": would ", ActionName(r.action),
                                      " the order id attribute \"", options.protected_key,
                                      "\", which order tracking needs (use action: hash to keep it "
                                      "consistent but unreadable)"));
    }
  }
  for (size_t i = 0; i < options.blocked_values.size(); ++i) {
    RE2 re(options.blocked_values[i], RE2::Quiet);
    if (!re.ok()) {
      problems.push_back(absl::StrCat(path, ".blocked_values[", i,
                                      "]: not a valid RE2 expression (", re.error(), "), got \"",
                                      options.blocked_values[i], "\""));
    } else if (RE2::FullMatch("", re)) {
      problems.push_back(absl::StrCat(path, ".blocked_values[", i,
                                      "]: matches the empty string, got \"",
                                      options.blocked_values[i], "\""));
    }
  }
  if (options.blocked_values_action == Action::kDelete) {
    problems.push_back(absl::StrCat(path, ".blocked_values_action: must be mask or hash"));
  }
  return problems;
}

struct Redactor::Compiled {
  RedactorOptions options;
  absl::flat_hash_map<std::string, Action> by_key;                // first rule of each exact key
  std::vector<std::pair<std::unique_ptr<RE2>, size_t>> patterns;  // with their rule index
  std::vector<size_t> key_rule_index;                             // rule index of by_key
  absl::flat_hash_map<std::string, size_t> key_index;
  std::unique_ptr<RE2> blocked;  // every blocked value, as one alternation
  absl::flat_hash_set<std::string> ignored;
};

absl::StatusOr<std::unique_ptr<Redactor>> Redactor::Create(const RedactorOptions& options) {
  std::vector<std::string> problems = Validate(options, "redaction");
  if (!problems.empty()) {
    std::string joined;
    for (const std::string& p : problems) absl::StrAppend(&joined, joined.empty() ? "" : "\n", p);
    return absl::InvalidArgumentError(joined);
  }
  auto c = std::make_unique<Compiled>();
  c->options = options;
  for (size_t i = 0; i < options.actions.size(); ++i) {
    const AttributeRule& r = options.actions[i];
    if (!r.key.empty()) {
      if (c->key_index.emplace(r.key, i).second) c->by_key.emplace(r.key, r.action);
    } else {
      c->patterns.emplace_back(std::make_unique<RE2>(r.pattern, RE2::Quiet), i);
    }
  }
  if (!options.blocked_values.empty()) {
    std::string alternation;
    for (const std::string& v : options.blocked_values) {
      absl::StrAppend(&alternation, alternation.empty() ? "" : "|", "(?:", v, ")");
    }
    c->blocked = std::make_unique<RE2>(alternation, RE2::Quiet);
    if (!c->blocked->ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("redaction.blocked_values: ", c->blocked->error()));
    }
  }
  for (const std::string& k : options.ignored_keys) c->ignored.insert(k);
  if (!options.protected_key.empty()) c->ignored.insert(options.protected_key);
  return std::unique_ptr<Redactor>(new Redactor(std::move(c)));
}

Redactor::Redactor(std::unique_ptr<Compiled> compiled) : compiled_(std::move(compiled)) {}
Redactor::~Redactor() = default;

const Action* Redactor::RuleFor(absl::string_view key) const {
  // The first rule in config order that matches: an exact key or a pattern.
  const Action* found = nullptr;
  size_t found_index = SIZE_MAX;
  auto k = compiled_->by_key.find(key);
  if (k != compiled_->by_key.end()) {
    found = &k->second;
    found_index = compiled_->key_index.find(key)->second;
  }
  for (const auto& [re, index] : compiled_->patterns) {
    if (index >= found_index) break;
    if (RE2::PartialMatch(re2::StringPiece(key.data(), key.size()), *re)) {
      return &compiled_->options.actions[index].action;
    }
  }
  return found;
}

void Redactor::Hash(otlp_common::AnyValue* value) const {
  const std::string hashed = security::Sha256Hex(compiled_->options.hash_salt, ValueText(*value));
  value->set_string_value(hashed);
}

bool Redactor::BlockValues(otlp_common::AnyValue* value) const {
  switch (value->value_case()) {
    case otlp_common::AnyValue::kStringValue: {
      const std::string& s = value->string_value();
      const RE2& re = *compiled_->blocked;
      re2::StringPiece match;
      if (!re.Match(s, 0, s.size(), RE2::UNANCHORED, &match, 1)) return false;
      std::string out;
      size_t pos = 0;
      while (pos <= s.size() && re.Match(s, pos, s.size(), RE2::UNANCHORED, &match, 1)) {
        const size_t start = static_cast<size_t>(match.data() - s.data());
        out.append(s, pos, start - pos);
        if (compiled_->options.blocked_values_action == Action::kHash) {
          out += security::Sha256Hex(compiled_->options.hash_salt,
                                     absl::string_view(match.data(), match.size()));
        } else {
          out += kMask;
        }
        pos = start + match.size();
        if (match.empty()) {
          if (pos < s.size()) out.push_back(s[pos]);
          ++pos;
        }
      }
      if (pos < s.size()) out.append(s, pos, std::string::npos);
      value->set_string_value(std::move(out));
      return true;
    }
    case otlp_common::AnyValue::kArrayValue: {
      bool changed = false;
      for (auto& v : *value->mutable_array_value()->mutable_values()) changed |= BlockValues(&v);
      return changed;
    }
    case otlp_common::AnyValue::kKvlistValue: {
      bool changed = false;
      for (auto& kv : *value->mutable_kvlist_value()->mutable_values()) {
        if (!compiled_->ignored.contains(kv.key())) changed |= BlockValues(kv.mutable_value());
      }
      return changed;
    }
    default:
      return false;
  }
}

bool Redactor::RedactAttributes(
    google::protobuf::RepeatedPtrField<otlp_common::KeyValue>* attributes) const {
  bool changed = false;
  uint64_t deleted = 0, hashed = 0, masked = 0, blocked = 0;
  int kept = 0;
  const int n = attributes->size();
  for (int i = 0; i < n; ++i) {
    otlp_common::KeyValue* kv = attributes->Mutable(i);
    const Action* action = RuleFor(kv->key());
    if (action != nullptr) {
      changed = true;
      if (*action == Action::kDelete) {
        ++deleted;
        continue;
      }
      if (*action == Action::kHash) {
        Hash(kv->mutable_value());
        ++hashed;
      } else {
        kv->mutable_value()->set_string_value(kMask);
        ++masked;
      }
    } else if (compiled_->blocked != nullptr && !compiled_->ignored.contains(kv->key()) &&
               BlockValues(kv->mutable_value())) {
      changed = true;
      ++blocked;
    }
    if (kept != i) attributes->SwapElements(kept, i);
    ++kept;
  }
  if (kept < n) attributes->DeleteSubrange(kept, n - kept);
  if (changed) {
    stats_.attributes_deleted.fetch_add(deleted, std::memory_order_relaxed);
    stats_.attributes_hashed.fetch_add(hashed, std::memory_order_relaxed);
    stats_.attributes_masked.fetch_add(masked, std::memory_order_relaxed);
    stats_.values_blocked.fetch_add(blocked, std::memory_order_relaxed);
  }
  return changed;
}

bool Redactor::MayMatch(absl::string_view bytes) const {
  // With exact keys only, a key that is not a substring of the serialized message cannot be an
  // attribute key anywhere in it: such messages are left without being parsed.
  if (!compiled_->patterns.empty() || compiled_->blocked != nullptr) return true;
  for (const auto& [key, action] : compiled_->by_key) {
    if (bytes.find(key) != absl::string_view::npos) return true;
  }
  return false;
}

bool Redactor::RedactSpan(std::string* bytes) const {
  if (!MayMatch(*bytes)) return false;
  google::protobuf::Arena arena;
  auto* span = google::protobuf::Arena::CreateMessage<otlp_trace::Span>(&arena);
  if (!QuietParse(*bytes, span)) {
    stats_.undecodable.fetch_add(1, std::memory_order_relaxed);
    bytes->clear();
    return true;
  }
  bool changed = RedactAttributes(span->mutable_attributes());
  for (auto& event : *span->mutable_events())
    changed |= RedactAttributes(event.mutable_attributes());
  for (auto& link : *span->mutable_links()) changed |= RedactAttributes(link.mutable_attributes());
  if (!changed) return false;
  stats_.spans_changed.fetch_add(1, std::memory_order_relaxed);
  span->SerializeToString(bytes);
  return true;
}

bool Redactor::RedactResource(std::string* bytes) const {
  if (!MayMatch(*bytes)) return false;
  opentelemetry::proto::resource::v1::Resource resource;
  if (!QuietParse(*bytes, &resource)) {
    stats_.undecodable.fetch_add(1, std::memory_order_relaxed);
    bytes->clear();
    return true;
  }
  if (!RedactAttributes(resource.mutable_attributes())) return false;
  resource.SerializeToString(bytes);
  return true;
}

bool Redactor::RedactScope(std::string* bytes) const {
  if (!MayMatch(*bytes)) return false;
  otlp_common::InstrumentationScope scope;
  if (!QuietParse(*bytes, &scope)) {
    stats_.undecodable.fetch_add(1, std::memory_order_relaxed);
    bytes->clear();
    return true;
  }
  if (!RedactAttributes(scope.mutable_attributes())) return false;
  scope.SerializeToString(bytes);
  return true;
}

}  // namespace tracekeep::redaction
