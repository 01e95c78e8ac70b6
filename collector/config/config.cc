#include "collector/config/config.h"

#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/common/logging.h"
#include "yaml-cpp/yaml.h"

namespace tracekeep::config {
namespace {

// Collects every problem of a document with its position and path.
class Problems {
 public:
  explicit Problems(std::string source) : source_(std::move(source)) {}
  void Add(const YAML::Node& at, const std::string& path, const std::string& what) {
    const YAML::Mark mark = at.Mark();
    std::string where = source_;
    if (mark.line >= 0) absl::StrAppend(&where, ":", mark.line + 1, ":", mark.column + 1);
    lines_.push_back(absl::StrCat(where, ": ", path, ": ", what));
  }
  bool empty() const { return lines_.empty(); }
  std::string Join() const { return absl::StrJoin(lines_, "\n"); }

 private:
  std::string source_;
  std::vector<std::string> lines_;
};

std::string Child(const std::string& path, const std::string& key) {
  return path.empty() ? key : absl::StrCat(path, ".", key);
}

// Reads the keys of one YAML mapping into fields; every key not read is reported as unknown.
class MapReader {
 public:
  MapReader(const YAML::Node& node, std::string path, Problems* problems)
      : node_(node), path_(std::move(path)), problems_(problems) {
    if (node_ && !node_.IsNull() && !node_.IsMap()) {
      problems_->Add(node_, path_.empty() ? "(top level)" : path_,
                     "must be a mapping of keys to values");
      valid_ = false;
    }
  }

  ~MapReader() {
    if (!valid_ || !node_ || node_.IsNull()) return;
    for (const auto& kv : node_) {
      const std::string key = kv.first.as<std::string>();
      if (read_.count(key) == 0) {
        problems_->Add(kv.first, Child(path_, key),
                       absl::StrCat("unknown key (known keys: ", absl::StrJoin(known_, ", "), ")"));
      }
    }
  }

  // Returns the child node if present, else a null node; records the key as known.
  YAML::Node Get(const std::string& key) {
    if (read_.insert(key).second) known_.push_back(key);
    if (!valid_ || !node_ || node_.IsNull()) return YAML::Node();
    return node_[key];
  }
  std::string PathOf(const std::string& key) const { return Child(path_, key); }
  Problems* problems() { return problems_; }

  void String(const std::string& key, std::string* out) {
    Scalar(
        key,
        [&](const YAML::Node& n) {
          *out = n.Scalar();
          return true;
        },
        "a string");
  }
  void Bool(const std::string& key, bool* out) {
    Scalar(
        key,
        [&](const YAML::Node& n) {
          const std::string& s = n.Scalar();
          if (s == "true")
            *out = true;
          else if (s == "false")
            *out = false;
          else
            return false;
          return true;
        },
        "true or false");
  }
  void Int(const std::string& key, int64_t* out, int64_t min, int64_t max) {
    Scalar(
        key,
        [&](const YAML::Node& n) {
          int64_t v;
          if (!absl::SimpleAtoi(n.Scalar(), &v) || v < min || v > max) return false;
          *out = v;
          return true;
        },
        absl::StrCat("an integer in [", min, ", ", max, "]"));
  }
  void Int(const std::string& key, int* out, int64_t min, int64_t max) {
    int64_t v = *out;
    Int(key, &v, min, max);
    *out = static_cast<int>(v);
  }
  void Size(const std::string& key, size_t* out, int64_t min, int64_t max) {
    int64_t v = static_cast<int64_t>(*out);
    Int(key, &v, min, max);
    *out = static_cast<size_t>(v);
  }
  void Double(const std::string& key, double* out, double min, double max) {
    Scalar(
        key,
        [&](const YAML::Node& n) {
          double v;
          if (!absl::SimpleAtod(n.Scalar(), &v) || !(v >= min && v <= max)) return false;
          *out = v;
          return true;
        },
        absl::StrCat("a number in [", min, ", ", max, "]"));
  }
  void Duration(const std::string& key, absl::Duration* out, absl::Duration min) {
    Scalar(
        key,
        [&](const YAML::Node& n) {
          absl::Duration d;
          if (!absl::ParseDuration(n.Scalar(), &d) || d < min) return false;
          *out = d;
          return true;
        },
        absl::StrCat("a duration like 30s, 500ms or 2m, at least ", absl::FormatDuration(min)));
  }
  void Endpoint(const std::string& key, std::string* out, bool allow_empty = false) {
    Scalar(
        key,
        [&](const YAML::Node& n) {
          const std::string& s = n.Scalar();
          if (s.empty() && allow_empty) {
            out->clear();
            return true;
          }
          const size_t colon = s.rfind(':');
          int port;
          if (colon == std::string::npos || colon == 0 ||
              !absl::SimpleAtoi(s.substr(colon + 1), &port) || port < 0 || port > 65535) {
            return false;
          }
          *out = s;
          return true;
        },
        allow_empty ? "\"\" or host:port with a port in [0, 65535]"
                    : "host:port with a port in [0, 65535]");
  }
  void StringList(const std::string& key, std::vector<std::string>* out) {
    YAML::Node n = Get(key);
    if (!n || n.IsNull()) return;
    if (!n.IsSequence()) {
      problems_->Add(n, PathOf(key), "must be a list of strings");
      return;
    }
    out->clear();
    for (size_t i = 0; i < n.size(); ++i) {
      if (!n[i].IsScalar()) {
        problems_->Add(n[i], absl::StrCat(PathOf(key), "[", i, "]"), "must be a string");
        continue;
      }
      out->push_back(n[i].Scalar());
    }
  }
  void StringMap(const std::string& key, std::map<std::string, std::string>* out) {
    YAML::Node n = Get(key);
    if (!n || n.IsNull()) return;
    if (!n.IsMap()) {
      problems_->Add(n, PathOf(key), "must be a mapping of strings to strings");
      return;
    }
    for (const auto& kv : n) {
      if (!kv.second.IsScalar()) {
        problems_->Add(kv.second, Child(PathOf(key), kv.first.Scalar()), "must be a string");
        continue;
      }
      (*out)[kv.first.Scalar()] = kv.second.Scalar();
    }
  }

 private:
  void Scalar(const std::string& key, const std::function<bool(const YAML::Node&)>& parse,
              const std::string& want) {
    YAML::Node n = Get(key);
    if (!n || n.IsNull()) return;
    if (!n.IsScalar() || !parse(n)) {
      std::string got;
      if (n.IsScalar()) {
        got = absl::StrCat("\"", n.Scalar(), "\"");
      } else {
        got = n.IsSequence() ? "a list" : "a mapping";
      }
      problems_->Add(n, PathOf(key), absl::StrCat("must be ", want, ", got ", got));
    }
  }

  YAML::Node node_;
  std::string path_;
  Problems* problems_;
  bool valid_ = true;
  std::vector<std::string> known_;
  std::set<std::string> read_;
};

void ReadTls(MapReader* parent, const std::string& key, Problems* problems,
             security::TlsSettings* tls) {
  YAML::Node node = parent->Get(key);
  MapReader r(node, parent->PathOf(key), problems);
  r.String("cert_file", &tls->cert_file);
  r.String("key_file", &tls->key_file);
  r.String("client_ca_file", &tls->client_ca_file);
  for (const std::string& p : security::ValidateTls(*tls, parent->PathOf(key))) {
    const size_t colon = p.find(": ");
    problems->Add(node, p.substr(0, colon), p.substr(colon + 2));
  }
}

void ReadNetworks(MapReader* parent, const std::string& key, Problems* problems,
                  std::vector<std::string>* networks) {
  parent->StringList(key, networks);
  auto parsed = security::NetworkAllowList::Parse(*networks, parent->PathOf(key));
  if (!parsed.ok()) {
    const std::string message(parsed.status().message());
    const size_t colon = message.find(": ");
    problems->Add(parent->Get(key), message.substr(0, colon), message.substr(colon + 2));
  }
}

void ReadPolicy(const YAML::Node& node, const std::string& path, Problems* problems,
                sampling::PolicyConfig* policy);

// A token file: must exist and parse (the error names the line, never the token).
void ReadTokenFileKey(MapReader* parent, const std::string& key, bool with_roles,
                      Problems* problems, std::string* path) {
  parent->String(key, path);
  if (path->empty()) return;
  auto file = security::TokenFile::Load(*path, with_roles);
  if (!file.ok())
    problems->Add(parent->Get(key), parent->PathOf(key), std::string(file.status().message()));
}

void ReadReceiverAuth(MapReader* parent, Problems* problems, std::string* token_file,
                      std::string* client_attribute) {
  MapReader a(parent->Get("auth"), parent->PathOf("auth"), problems);
  ReadTokenFileKey(&a, "token_file", /*with_roles=*/false, problems, token_file);
  a.String("client_attribute", client_attribute);
  if (client_attribute->empty()) return;
  if (token_file->empty()) {
    problems->Add(a.Get("client_attribute"), a.PathOf("client_attribute"),
                  absl::StrCat("needs ", a.PathOf("token_file"),
                               " (without tokens there is no client name to put in \"",
                               *client_attribute, "\")"));
  }
  if (client_attribute->size() > 255) {
    problems->Add(a.Get("client_attribute"), a.PathOf("client_attribute"),
                  absl::StrCat("must be at most 255 bytes, got ", client_attribute->size()));
  }
}

void ReadRateLimit(MapReader* r, security::RateLimit* limit) {
  r->Double("spans_per_second", &limit->spans_per_second, 0, 1e12);
  r->Double("bytes_per_second", &limit->bytes_per_second, 0, 1e15);
}

void ReadClientLimits(MapReader* otlp, Problems* problems, security::ClientLimitsOptions* out) {
  MapReader l(otlp->Get("client_limits"), otlp->PathOf("client_limits"), problems);
  {
    MapReader d(l.Get("default"), l.PathOf("default"), problems);
    ReadRateLimit(&d, &out->default_limit);
  }
  YAML::Node clients = l.Get("clients");
  if (!clients || clients.IsNull()) return;
  if (!clients.IsMap()) {
    problems->Add(clients, l.PathOf("clients"), "must be a mapping of client names to limits");
    return;
  }
  for (const auto& kv : clients) {
    const std::string name = kv.first.Scalar();
    MapReader c(kv.second, Child(l.PathOf("clients"), name), problems);
    security::RateLimit limit = out->default_limit;
    ReadRateLimit(&c, &limit);
    out->clients[name] = limit;
  }
}

void ReadCertificateRoles(MapReader* admin, Problems* problems,
                          std::map<std::string, security::Role>* out) {
  YAML::Node list = admin->Get("client_certificates");
  if (!list || list.IsNull()) return;
  const std::string path = admin->PathOf("client_certificates");
  if (!list.IsSequence()) {
    problems->Add(list, path, "must be a list of {subject, role}");
    return;
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = absl::StrCat(path, "[", i, "]");
    MapReader e(list[i], at, problems);
    std::string subject;
    std::string role_name;
    e.String("subject", &subject);
    e.String("role", &role_name);
    security::Role role;
    if (subject.empty()) problems->Add(list[i], Child(at, "subject"), "must not be empty");
    if (!security::ParseRole(role_name, &role)) {
      problems->Add(list[i], Child(at, "role"),
                    absl::StrCat("must be viewer or operator, got \"", role_name, "\""));
      continue;
    }
    if (!subject.empty()) (*out)[subject] = role;
  }
}

// Reads a YAML list of policies (the top-level list or a combinator's sub-policies).
void ReadPolicyList(const YAML::Node& list, const std::string& path, Problems* problems,
                    std::vector<sampling::PolicyConfig>* out) {
  if (!list || list.IsNull()) return;
  if (!list.IsSequence()) {
    problems->Add(list, path, "must be a list of policies");
    return;
  }
  out->clear();
  for (size_t i = 0; i < list.size(); ++i) {
    ReadPolicy(list[i], absl::StrCat(path, "[", i, "]"), problems, &out->emplace_back());
  }
}

void OptionalDouble(MapReader* r, const std::string& key, std::optional<double>* out) {
  YAML::Node n = r->Get(key);
  if (!n || n.IsNull()) return;
  double v = 0;
  r->Double(key, &v, -1e300, 1e300);
  *out = v;
}

void ReadPolicy(const YAML::Node& node, const std::string& path, Problems* problems,
                sampling::PolicyConfig* policy) {
  MapReader r(node, path, problems);
  r.String("name", &policy->name);
  r.String("type", &policy->type);
  {
    MapReader sc(r.Get("status_code"), r.PathOf("status_code"), problems);
    sc.StringList("status_codes", &policy->status_codes);
  }
  {
    MapReader p(r.Get("probabilistic"), r.PathOf("probabilistic"), problems);
    p.Double("sampling_percentage", &policy->sampling_percentage, -1e300, 1e300);
    p.String("hash_salt", &policy->hash_salt);
  }
  {
    MapReader l(r.Get("latency"), r.PathOf("latency"), problems);
    l.Int("threshold_ms", &policy->latency.threshold_ms, INT64_MIN / 2, INT64_MAX / 2000000);
    l.Int("upper_threshold_ms", &policy->latency.upper_threshold_ms, INT64_MIN / 2,
          INT64_MAX / 2000000);
  }
  {
    MapReader a(r.Get("string_attribute"), r.PathOf("string_attribute"), problems);
    a.String("key", &policy->string_attribute.key);
    a.StringList("values", &policy->string_attribute.values);
    a.Bool("enabled_regex_matching", &policy->string_attribute.enabled_regex_matching);
    a.Bool("invert_match", &policy->string_attribute.invert_match);
    a.Int("cache_max_size", &policy->string_attribute.cache_max_size, 0, INT64_MAX / 2);
  }
  {
    MapReader a(r.Get("bytes_limiting"), r.PathOf("bytes_limiting"), problems);
    a.Int("bytes_per_second", &policy->bytes_limiting.bytes_per_second, INT64_MIN / 2,
          INT64_MAX / 2);
    a.Int("burst_capacity", &policy->bytes_limiting.burst_capacity, INT64_MIN / 2, INT64_MAX / 2);
  }
  {
    MapReader a(r.Get("ottl_condition"), r.PathOf("ottl_condition"), problems);
    a.String("error_mode", &policy->ottl_condition.error_mode);
    a.StringList("span", &policy->ottl_condition.span);
    a.StringList("spanevent", &policy->ottl_condition.spanevent);
  }
  {
    MapReader a(r.Get("numeric_attribute"), r.PathOf("numeric_attribute"), problems);
    a.String("key", &policy->numeric_attribute.key);
    OptionalDouble(&a, "min_value", &policy->numeric_attribute.min_value);
    OptionalDouble(&a, "max_value", &policy->numeric_attribute.max_value);
    a.Bool("invert_match", &policy->numeric_attribute.invert_match);
  }
  {
    MapReader a(r.Get("boolean_attribute"), r.PathOf("boolean_attribute"), problems);
    a.String("key", &policy->boolean_attribute.key);
    a.Bool("value", &policy->boolean_attribute.value);
    a.Bool("invert_match", &policy->boolean_attribute.invert_match);
  }
  {
    MapReader a(r.Get("rate_limiting"), r.PathOf("rate_limiting"), problems);
    a.Int("spans_per_second", &policy->spans_per_second, INT64_MIN / 2, INT64_MAX / 2);
  }
  {
    MapReader a(r.Get("span_count"), r.PathOf("span_count"), problems);
    a.Int("min_spans", &policy->span_count.min_spans, INT64_MIN / 2, INT64_MAX / 2);
    a.Int("max_spans", &policy->span_count.max_spans, INT64_MIN / 2, INT64_MAX / 2);
  }
  {
    MapReader a(r.Get("trace_state"), r.PathOf("trace_state"), problems);
    a.String("key", &policy->trace_state.key);
    a.StringList("values", &policy->trace_state.values);
  }
  // Combinators. Each holds its sub-policies under <type>_sub_policy, as in the OpenTelemetry
  // Collector; `not` takes exactly one.
  for (const char* type : {"and", "drop", "not"}) {
    MapReader a(r.Get(type), r.PathOf(type), problems);
    const std::string key = absl::StrCat(type, "_sub_policy");
    YAML::Node subs = a.Get(key);
    if (subs && !subs.IsNull() && policy->type == type) {
      // The Collector's not_sub_policy is one policy, not a list: both are read.
      if (std::string(type) == "not" && subs.IsMap()) {
        policy->sub_policies.clear();
        ReadPolicy(subs, absl::StrCat(a.PathOf(key), "[0]"), problems,
                   &policy->sub_policies.emplace_back());
      } else {
        ReadPolicyList(subs, a.PathOf(key), problems, &policy->sub_policies);
      }
    }
  }
  {
    MapReader a(r.Get("composite"), r.PathOf("composite"), problems);
    sampling::CompositeConfig& c = policy->composite;
    a.Int("max_total_spans_per_second", &c.max_total_spans_per_second, INT64_MIN / 2,
          INT64_MAX / 2);
    a.StringList("policy_order", &c.policy_order);
    YAML::Node subs = a.Get("composite_sub_policy");
    if (subs && !subs.IsNull() && policy->type == "composite") {
      ReadPolicyList(subs, a.PathOf("composite_sub_policy"), problems, &policy->sub_policies);
    }
    YAML::Node alloc = a.Get("rate_allocation");
    if (alloc && !alloc.IsNull()) {
      if (!alloc.IsSequence()) {
        problems->Add(alloc, a.PathOf("rate_allocation"),
                      "must be a list of {policy, percent} mappings");
      } else {
        for (size_t i = 0; i < alloc.size(); ++i) {
          MapReader e(alloc[i], absl::StrCat(a.PathOf("rate_allocation"), "[", i, "]"), problems);
          sampling::RateAllocation& ra = c.rate_allocation.emplace_back();
          e.String("policy", &ra.policy);
          e.Double("percent", &ra.percent, -1e300, 1e300);
        }
      }
    }
  }
}

// Reads `sampler.policies` and adds the semantic problems (positions point at the list).
void ReadPolicies(const YAML::Node& policies, const std::string& path, Problems* problems,
                  std::vector<sampling::PolicyConfig>* out) {
  if (!policies || policies.IsNull()) return;
  if (!policies.IsSequence()) {
    problems->Add(policies, path, "must be a list of policies");
    return;
  }
  ReadPolicyList(policies, path, problems, out);
  for (const std::string& p : sampling::ValidatePolicies(*out, path)) {
    const size_t colon = p.find(": ");
    problems->Add(policies, p.substr(0, colon), p.substr(colon + 2));
  }
}

// The `orders:` section: the order lifecycle (collector/orders/order_config.h).
void ReadOrders(const YAML::Node& node, Problems* problems, orders::OrdersConfig* o) {
  MapReader r(node, "orders", problems);
  r.Bool("enabled", &o->enabled);
  r.String("id_attribute", &o->id_attribute);
  r.String("status_attribute", &o->status_attribute);
  r.String("status_event", &o->status_event);
  r.StringList("states", &o->states);
  YAML::Node transitions = r.Get("transitions");
  if (transitions && !transitions.IsNull()) {
    if (!transitions.IsSequence()) {
      problems->Add(transitions, "orders.transitions", "must be a list of {from, to, deadline}");
    } else {
      o->transitions.clear();
      for (size_t i = 0; i < transitions.size(); ++i) {
        MapReader t(transitions[i], absl::StrCat("orders.transitions[", i, "]"), problems);
        orders::TransitionConfig& x = o->transitions.emplace_back();
        t.String("from", &x.from);
        t.String("to", &x.to);
        t.Duration("deadline", &x.deadline, absl::ZeroDuration());
      }
    }
  }
  r.StringList("terminal_states", &o->terminal_states);
  r.StringList("invariant_attributes", &o->invariant_attributes);
  r.Duration("grace_period", &o->grace_period, absl::ZeroDuration());
  r.Duration("orphan_window", &o->orphan_window, absl::ZeroDuration());
  r.Double("baseline_percentage", &o->baseline_percentage, 0, 100);
  r.Duration("read_only_hold_time", &o->read_only_hold_time, absl::Seconds(1));
  r.Duration("hold_in_journal", &o->hold_in_journal, absl::ZeroDuration());
  r.Duration("max_hold_time", &o->max_hold_time, absl::Seconds(1));
  r.Size("max_held_traces", &o->max_held_traces, 1, int64_t{1} << 40);
  r.Size("max_held_mib", &o->max_held_mib, 1, int64_t{1} << 30);
  r.Size("max_traces_per_order", &o->max_traces_per_order, 1, int64_t{1} << 30);
  r.Duration("max_order_age", &o->max_order_age, absl::Seconds(1));
  r.Duration("resolved_retention", &o->resolved_retention, absl::ZeroDuration());
  r.Size("max_resolved_in_memory", &o->max_resolved_in_memory, 0, int64_t{1} << 40);
  r.Duration("record_retention", &o->record_retention, absl::ZeroDuration());
  r.Duration("check_interval", &o->check_interval, absl::Milliseconds(10));
  r.Duration("compact_after", &o->compact_after, absl::ZeroDuration());
  // Semantic checks (states named by transitions exist, ...); positions point at the section.
  if (node && node.IsMap()) {
    for (const std::string& p : orders::ValidateOrdersConfig(*o, "orders")) {
      const size_t colon = p.find(": ");
      problems->Add(node, p.substr(0, colon), p.substr(colon + 2));
    }
  }
}

// receivers.kafka.
void ReadKafka(MapReader* receivers, Problems* problems, KafkaReceiverConfig* k) {
  const std::string path = receivers->PathOf("kafka");
  MapReader r(receivers->Get("kafka"), path, problems);
  r.Bool("enabled", &k->enabled);
  r.StringList("brokers", &k->brokers);
  for (size_t i = 0; i < k->brokers.size(); ++i) {
    const std::string& b = k->brokers[i];
    const size_t colon = b.rfind(':');
    int port;
    if (colon == std::string::npos || colon == 0 || !absl::SimpleAtoi(b.substr(colon + 1), &port) ||
        port <= 0 || port > 65535) {
      const YAML::Node list = r.Get("brokers");
      problems->Add(list.IsSequence() ? list[i] : list, absl::StrCat(path, ".brokers[", i, "]"),
                    absl::StrCat("must be host:port with a port in [1, 65535], got \"", b, "\""));
    }
  }
  if (k->enabled && k->brokers.empty()) {
    problems->Add(r.Get("brokers"), r.PathOf("brokers"),
                  "must list at least one broker (host:port) when the kafka receiver is enabled");
  }
  r.String("topic", &k->topic);
  if (k->topic.empty()) problems->Add(r.Get("topic"), r.PathOf("topic"), "must not be empty");
  r.String("encoding", &k->encoding);
  if (k->encoding != "otlp_proto") {
    problems->Add(r.Get("encoding"), r.PathOf("encoding"),
                  absl::StrCat("must be otlp_proto (the only encoding tracekeep reads; set "
                               "encoding: otlp_proto on the OpenTelemetry kafka exporter), got \"",
                               k->encoding, "\""));
  }
  r.String("group_id", &k->group_id);
  if (k->group_id.empty()) {
    problems->Add(r.Get("group_id"), r.PathOf("group_id"), "must not be empty");
  }
  r.String("initial_offset", &k->initial_offset);
  if (k->initial_offset != "latest" && k->initial_offset != "earliest") {
    problems->Add(r.Get("initial_offset"), r.PathOf("initial_offset"),
                  absl::StrCat("must be latest or earliest, got \"", k->initial_offset, "\""));
  }
  r.String("rekey_topic", &k->rekey_topic);
  if (!k->rekey_topic.empty() && k->rekey_topic == k->topic) {
    problems->Add(r.Get("rekey_topic"), r.PathOf("rekey_topic"),
                  absl::StrCat("must differ from receivers.kafka.topic, got \"", k->rekey_topic,
                               "\" for both"));
  }
  r.String("order_topic", &k->order_topic);
  if (!k->order_topic.empty() && (k->order_topic == k->topic || k->order_topic == k->rekey_topic)) {
    problems->Add(r.Get("order_topic"), r.PathOf("order_topic"),
                  absl::StrCat("must differ from receivers.kafka.topic and rekey_topic, got \"",
                               k->order_topic, "\""));
  }
  r.String("order_records_topic", &k->order_records_topic);
  if (!k->order_records_topic.empty() &&
      (k->order_records_topic == k->topic || k->order_records_topic == k->rekey_topic ||
       k->order_records_topic == k->order_topic)) {
    problems->Add(r.Get("order_records_topic"), r.PathOf("order_records_topic"),
                  absl::StrCat("must differ from receivers.kafka.topic, rekey_topic and "
                               "order_topic, got \"",
                               k->order_records_topic, "\""));
  }
  r.Duration("session_timeout", &k->session_timeout, absl::Seconds(1));
  r.Bool("gateway", &k->gateway);
  if (k->gateway && !k->enabled) {
    problems->Add(r.Get("gateway"), r.PathOf("gateway"),
                  "needs receivers.kafka.enabled: true (the spans produced into the topic are "
                  "sampled by the members consuming it)");
  }
}

// span_metrics: the keys of the OpenTelemetry spanmetrics connector that tracekeep implements.
void ReadSpanMetrics(const YAML::Node& node, Problems* problems,
                     spanmetrics::SpanMetricsOptions* o) {
  MapReader r(node, "span_metrics", problems);
  r.Bool("enabled", &o->enabled);
  r.String("namespace", &o->metrics_namespace);
  {
    MapReader h(r.Get("histogram"), "span_metrics.histogram", problems);
    h.String("unit", &o->unit);
    MapReader e(h.Get("explicit"), "span_metrics.histogram.explicit", problems);
    std::vector<std::string> buckets;
    e.StringList("buckets", &buckets);
    YAML::Node list = e.Get("buckets");
    if (list && list.IsSequence()) {
      o->buckets.clear();
      for (size_t i = 0; i < buckets.size(); ++i) {
        absl::Duration d;
        if (!absl::ParseDuration(buckets[i], &d)) {
          problems->Add(
              list[i], absl::StrCat("span_metrics.histogram.explicit.buckets[", i, "]"),
              absl::StrCat("must be a duration like 2ms, 100us or 1.5s, got \"", buckets[i], "\""));
        }
        o->buckets.push_back(d);
      }
    }
  }
  YAML::Node dims = r.Get("dimensions");
  if (dims && !dims.IsNull()) {
    if (!dims.IsSequence()) {
      problems->Add(dims, "span_metrics.dimensions", "must be a list of {name, default}");
    } else {
      o->dimensions.clear();
      for (size_t i = 0; i < dims.size(); ++i) {
        MapReader d(dims[i], absl::StrCat("span_metrics.dimensions[", i, "]"), problems);
        spanmetrics::Dimension& x = o->dimensions.emplace_back();
        d.String("name", &x.name);
        YAML::Node def = d.Get("default");
        if (def && !def.IsNull()) {
          std::string v;
          d.String("default", &v);
          x.default_value = v;
        }
      }
    }
  }
  r.Int("aggregation_cardinality_limit", &o->max_series, 0, int64_t{1} << 32);
  {
    MapReader x(r.Get("exceptions"), "span_metrics.exceptions", problems);
    x.Bool("enabled", &o->exceptions);
  }
  if (node && node.IsMap()) {
    for (const std::string& p : spanmetrics::ValidateOptions(*o, "span_metrics")) {
      const size_t colon = p.find(": ");
      problems->Add(node, p.substr(0, colon), p.substr(colon + 2));
    }
  }
}

void ReadRedaction(MapReader* top, Problems* problems, Config* c) {
  redaction::RedactorOptions& x = c->redaction;
  YAML::Node node = top->Get("redaction");
  MapReader r(node, "redaction", problems);
  r.String("hash_salt", &x.hash_salt);
  std::string salt_file;
  r.String("hash_salt_file", &salt_file);
  if (!salt_file.empty()) {
    if (!x.hash_salt.empty()) {
      problems->Add(r.Get("hash_salt_file"), "redaction.hash_salt_file",
                    "set hash_salt or hash_salt_file, not both");
    }
    auto salt = security::ReadTokenFile(salt_file);
    if (!salt.ok()) {
      problems->Add(r.Get("hash_salt_file"), "redaction.hash_salt_file",
                    std::string(salt.status().message()));
    } else {
      x.hash_salt = *salt;
    }
  }
  YAML::Node actions = r.Get("actions");
  if (actions && !actions.IsNull()) {
    if (!actions.IsSequence()) {
      problems->Add(actions, "redaction.actions", "must be a list of {key|pattern, action}");
    } else {
      for (size_t i = 0; i < actions.size(); ++i) {
        const std::string at = absl::StrCat("redaction.actions[", i, "]");
        MapReader a(actions[i], at, problems);
        redaction::AttributeRule rule;
        a.String("key", &rule.key);
        a.String("pattern", &rule.pattern);
        std::string action;
        a.String("action", &action);
        if (!redaction::ParseAction(action, &rule.action)) {
          problems->Add(actions[i], Child(at, "action"),
                        absl::StrCat("must be delete, hash or mask, got \"", action, "\""));
          continue;
        }
        x.actions.push_back(std::move(rule));
      }
    }
  }
  r.StringList("blocked_values", &x.blocked_values);
  std::string blocked_action = "mask";
  r.String("blocked_values_action", &blocked_action);
  if (blocked_action == "hash") {
    x.blocked_values_action = redaction::Action::kHash;
  } else if (blocked_action != "mask") {
    problems->Add(r.Get("blocked_values_action"), "redaction.blocked_values_action",
                  absl::StrCat("must be mask or hash, got \"", blocked_action, "\""));
  }
  r.StringList("ignored_keys", &x.ignored_keys);
  if (c->orders.enabled) x.protected_key = c->orders.id_attribute;
  for (const std::string& p : redaction::Validate(x, "redaction")) {
    const size_t colon = p.find(": ");
    problems->Add(node, p.substr(0, colon), p.substr(colon + 2));
  }
}

void ReadConfig(const YAML::Node& root, Problems* problems, Config* c) {
  MapReader top(root, "", problems);
  top.String("data_dir", &c->data_dir);
  top.String("log_level", &c->log_level);
  YAML::Node log_level = top.Get("log_level");
  LogLevel ignored;
  if (log_level && log_level.IsScalar() && !ParseLogLevel(c->log_level, &ignored)) {
    problems->Add(log_level, "log_level",
                  absl::StrCat("must be debug, info, warn or error, got \"", c->log_level, "\""));
  }
  if (c->data_dir.empty()) problems->Add(top.Get("data_dir"), "data_dir", "must not be empty");
  {
    MapReader receivers(top.Get("receivers"), "receivers", problems);
    MapReader otlp(receivers.Get("otlp"), "receivers.otlp", problems);
    MapReader protocols(otlp.Get("protocols"), "receivers.otlp.protocols", problems);
    {
      MapReader g(protocols.Get("grpc"), "receivers.otlp.protocols.grpc", problems);
      g.Bool("enabled", &c->grpc.enabled);
      g.Endpoint("endpoint", &c->grpc.endpoint);
      g.Int("max_recv_msg_size_mib", &c->grpc.max_recv_msg_size_mib, 1, 1024);
      ReadTls(&g, "tls", problems, &c->grpc.tls);
      ReadNetworks(&g, "allowed_networks", problems, &c->grpc.allowed_networks);
      ReadReceiverAuth(&g, problems, &c->grpc.auth_token_file, &c->grpc.auth_client_attribute);
      g.Int("max_concurrent_streams", &c->grpc.max_concurrent_streams, 1, 1 << 20);
      g.Duration("handshake_timeout", &c->grpc.handshake_timeout, absl::Milliseconds(1));
      g.Int("max_memory_mib", &c->grpc.max_memory_mib, 0, 1 << 20);
      MapReader k(g.Get("keepalive"), g.PathOf("keepalive"), problems);
      MapReader sp(k.Get("server_parameters"), k.PathOf("server_parameters"), problems);
      sp.Duration("max_connection_idle", &c->grpc.max_connection_idle, absl::ZeroDuration());
      sp.Duration("max_connection_age", &c->grpc.max_connection_age, absl::ZeroDuration());
      sp.Duration("max_connection_age_grace", &c->grpc.max_connection_age_grace,
                  absl::Milliseconds(1));
      sp.Duration("time", &c->grpc.keepalive_time, absl::Milliseconds(1));
      sp.Duration("timeout", &c->grpc.keepalive_timeout, absl::Milliseconds(1));
    }
    {
      MapReader h(protocols.Get("http"), "receivers.otlp.protocols.http", problems);
      h.Bool("enabled", &c->http.enabled);
      h.Endpoint("endpoint", &c->http.endpoint);
      h.Int("max_request_body_size_mib", &c->http.max_request_body_size_mib, 1, 1024);
      ReadTls(&h, "tls", problems, &c->http.tls);
      ReadNetworks(&h, "allowed_networks", problems, &c->http.allowed_networks);
      ReadReceiverAuth(&h, problems, &c->http.auth_token_file, &c->http.auth_client_attribute);
      h.Duration("read_timeout", &c->http.read_timeout, absl::Milliseconds(1));
    }
    ReadClientLimits(&otlp, problems, &c->client_limits);
    ReadKafka(&receivers, problems, &c->kafka);
  }
  {
    MapReader s(top.Get("sampler"), "sampler", problems);
    s.Duration("decision_wait", &c->sampler.decision_wait, absl::ZeroDuration());
    s.Int("num_shards", &c->sampler.num_shards, 0, 256);
    s.Size("max_pending_traces", &c->sampler.max_pending_traces, 1, int64_t{1} << 40);
    s.Size("max_queued_spans", &c->sampler.max_queued_spans, 1, int64_t{1} << 40);
    s.Size("max_waiting_spans", &c->sampler.max_waiting_spans, 1, int64_t{1} << 40);
    s.Duration("decision_wait_after_root_received", &c->sampler.decision_wait_after_root_received,
               absl::ZeroDuration());
    s.Duration("max_trace_age", &c->sampler.max_trace_age, absl::ZeroDuration());
    std::string when_full =
        c->sampler.when_full == sampling::WhenFull::kRefuse ? "refuse" : "evict";
    s.String("when_full", &when_full);
    if (when_full == "evict") {
      c->sampler.when_full = sampling::WhenFull::kEvict;
    } else if (when_full == "refuse") {
      c->sampler.when_full = sampling::WhenFull::kRefuse;
    } else {
      problems->Add(s.Get("when_full"), "sampler.when_full",
                    absl::StrCat("must be evict or refuse, got \"", when_full, "\""));
    }
    s.Size("max_pending_bytes", &c->sampler.max_pending_bytes, 0, int64_t{1} << 50);
    s.Size("max_spans_per_trace", &c->sampler.max_spans_per_trace, 0, int64_t{1} << 40);
    s.Size("max_bytes_per_trace", &c->sampler.max_bytes_per_trace, 0, int64_t{1} << 50);
    {
      MapReader d(s.Get("decision_cache"), "sampler.decision_cache", problems);
      d.Size("sampled_cache_size", &c->sampler.sampled_cache_size, 0, int64_t{1} << 32);
      d.Size("non_sampled_cache_size", &c->sampler.non_sampled_cache_size, 0, int64_t{1} << 32);
    }
    s.Bool("dry_run", &c->sampler.dry_run);
    s.Bool("persist_decisions", &c->persist_decisions);
    s.Bool("sample_on_first_match", &c->sampler.sample_on_first_match);
    ReadPolicies(s.Get("policies"), "sampler.policies", problems, &c->sampler.policies);
  }
  {
    MapReader s(top.Get("storage"), "storage", problems);
    s.String("path", &c->storage.path);
    s.Bool("sync", &c->storage.sync);
    s.Int("block_cache_mib", &c->storage.block_cache_mib, 0, 1 << 20);
    s.Int("write_buffer_mib", &c->storage.write_buffer_mib, 1, 1 << 16);
    s.Duration("retention", &c->storage.retention, absl::ZeroDuration());
    s.Size("max_disk_bytes", &c->storage.max_disk_bytes, 0, int64_t{1} << 60);
    s.Size("min_free_disk_bytes", &c->storage.min_free_disk_bytes, 0, int64_t{1} << 60);
  }
  {
    MapReader j(top.Get("journal"), "journal", problems);
    j.Bool("enabled", &c->journal.enabled);
    j.String("path", &c->journal.path);
    j.Bool("sync", &c->journal.sync);
    j.Bool("pending_bytes_in_memory", &c->journal.pending_bytes_in_memory);
    j.Int("recycle_segments", &c->journal.recycle_segments, 0, 1 << 20);
    j.Bool("drop_held_cache", &c->journal.drop_held_cache);
  }
  {
    MapReader exporters(top.Get("exporters"), "exporters", problems);
    MapReader e(exporters.Get("otlp"), "exporters.otlp", problems);
    ExporterConfig& x = c->exporter;
    e.Endpoint("endpoint", &x.endpoint, /*allow_empty=*/true);  // "" disables forwarding
    {
      MapReader tls(e.Get("tls"), "exporters.otlp.tls", problems);
      tls.Bool("insecure", &x.insecure);
      tls.String("ca_file", &x.ca_file);
      tls.String("cert_file", &x.cert_file);
      tls.String("key_file", &x.key_file);
      if (x.cert_file.empty() != x.key_file.empty()) {
        problems->Add(e.Get("tls"), "exporters.otlp.tls",
                      "cert_file and key_file must be set together");
      }
    }
    e.StringMap("headers", &x.headers);
    e.String("compression", &x.compression);
    if (x.compression != "gzip" && x.compression != "none") {
      problems->Add(e.Get("compression"), "exporters.otlp.compression",
                    absl::StrCat("must be gzip or none, got \"", x.compression, "\""));
    }
    e.Duration("timeout", &x.timeout, absl::Milliseconds(1));
    {
      MapReader b(e.Get("batch"), "exporters.otlp.batch", problems);
      b.Int("send_batch_size", &x.send_batch_size, 1, 1 << 20);
      b.Int("send_batch_max_size", &x.send_batch_max_size, 1, 1 << 20);
      b.Duration("timeout", &x.batch_timeout, absl::ZeroDuration());
      if (x.send_batch_max_size < x.send_batch_size) {
        problems->Add(b.Get("send_batch_max_size"), "exporters.otlp.batch.send_batch_max_size",
                      absl::StrCat("must be >= send_batch_size (", x.send_batch_size, "), got ",
                                   x.send_batch_max_size));
      }
    }
    {
      MapReader q(e.Get("sending_queue"), "exporters.otlp.sending_queue", problems);
      q.Int("queue_size_spans", &x.queue_size_spans, 1, int64_t{1} << 40);
      MapReader st(q.Get("storage"), "exporters.otlp.sending_queue.storage", problems);
      st.Bool("enabled", &x.queue_storage_enabled);
      st.Int("max_bytes", &x.queue_max_bytes, 1, int64_t{1} << 50);
    }
    {
      MapReader r(e.Get("retry_on_failure"), "exporters.otlp.retry_on_failure", problems);
      r.Bool("enabled", &x.retry_enabled);
      r.Duration("initial_interval", &x.initial_interval, absl::Milliseconds(1));
      r.Duration("max_interval", &x.max_interval, absl::Milliseconds(1));
      r.Duration("max_elapsed_time", &x.max_elapsed_time, absl::ZeroDuration());
    }
  }
  {
    MapReader t(top.Get("telemetry"), "telemetry", problems);
    t.Endpoint("endpoint", &c->telemetry.endpoint);
    ReadNetworks(&t, "allowed_networks", problems, &c->telemetry.allowed_networks);
  }
  {
    MapReader a(top.Get("admin"), "admin", problems);
    a.Endpoint("endpoint", &c->admin.endpoint);
    ReadTls(&a, "tls", problems, &c->admin.tls);
    ReadNetworks(&a, "allowed_networks", problems, &c->admin.allowed_networks);
    a.String("auth_token_file", &c->admin.auth_token_file);
    if (!c->admin.auth_token_file.empty()) {
      auto token = security::ReadTokenFile(c->admin.auth_token_file);
      if (!token.ok()) {
        problems->Add(a.Get("auth_token_file"), "admin.auth_token_file",
                      std::string(token.status().message()));
      }
    }
    ReadTokenFileKey(&a, "tokens_file", /*with_roles=*/true, problems, &c->admin.tokens_file);
    ReadCertificateRoles(&a, problems, &c->admin.certificate_roles);
    if (!c->admin.certificate_roles.empty() && c->admin.tls.client_ca_file.empty()) {
      problems->Add(a.Get("client_certificates"), "admin.client_certificates",
                    "needs admin.tls.client_ca_file (client certificates are only verified with "
                    "mutual TLS)");
    }
    a.Bool("audit_log", &c->admin.audit_log);
    a.Int("audit_log_max_size_mib", &c->admin.audit_log_max_size_mib, 0, 1 << 20);
    a.Int("audit_log_max_files", &c->admin.audit_log_max_files, 1, 1000);
  }
  {
    MapReader s(top.Get("security"), "security", problems);
    s.Duration("token_reload_interval", &c->token_reload_interval, absl::Milliseconds(10));
  }
  {
    MapReader j(top.Get("jaeger_remote_storage"), "jaeger_remote_storage", problems);
    JaegerRemoteStorageConfig& x = c->jaeger_remote_storage;
    j.Bool("enabled", &x.enabled);
    j.Endpoint("endpoint", &x.endpoint);
    ReadTls(&j, "tls", problems, &x.tls);
    ReadNetworks(&j, "allowed_networks", problems, &x.allowed_networks);
    j.StringList("indexed_attributes", &x.indexed_attributes);
    for (size_t i = 0; i < x.indexed_attributes.size(); ++i) {
      if (x.indexed_attributes[i].empty()) {
        problems->Add(j.Get("indexed_attributes"),
                      absl::StrCat("jaeger_remote_storage.indexed_attributes[", i, "]"),
                      "must not be empty");
      }
    }
    j.Int("default_search_depth", &x.default_search_depth, 1, 100000);
    j.Int("max_traces_examined", &x.max_traces_examined, 1, int64_t{1} << 40);
  }
  {
    MapReader u(top.Get("ui"), "ui", problems);
    u.String("trace_url", &c->ui_trace_url);
    if (!c->ui_trace_url.empty() && c->ui_trace_url.find("{trace_id}") == std::string::npos) {
      problems->Add(u.Get("trace_url"), "ui.trace_url",
                    absl::StrCat("must contain {trace_id}, got \"", c->ui_trace_url, "\""));
    }
  }
  ReadOrders(top.Get("orders"), problems, &c->orders);
  ReadSpanMetrics(top.Get("span_metrics"), problems, &c->span_metrics);
  ReadRedaction(&top, problems, c);
  for (const auto& [protocol, attribute] :
       {std::pair<const char*, const std::string&>{"grpc", c->grpc.auth_client_attribute},
        std::pair<const char*, const std::string&>{"http", c->http.auth_client_attribute}}) {
    if (c->orders.enabled && !attribute.empty() && attribute == c->orders.id_attribute) {
      problems->Add(YAML::Node(),
                    absl::StrCat("receivers.otlp.protocols.", protocol, ".auth.client_attribute"),
                    absl::StrCat("must not be orders.id_attribute \"", attribute,
                                 "\" (the client's own values of it are removed from its spans)"));
    }
  }
  if (c->kafka.enabled && !c->kafka.order_topic.empty() && !c->orders.enabled) {
    problems->Add(YAML::Node(), "receivers.kafka.order_topic",
                  "needs orders.enabled: true (the order topic carries traces to the member that "
                  "judges their order)");
  }
}

}  // namespace

Config DefaultConfig() {
  Config c;
  c.sampler.policies = sampling::DefaultPolicies();
  c.orders = orders::DefaultOrdersConfig();
  return c;
}

absl::StatusOr<Config> ParseConfig(const std::string& yaml, const std::string& source) {
  YAML::Node root;
  try {
    // yaml-cpp reports syntax errors only by exception; this is the edge where it is converted.
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ":", e.mark.line + 1, ":", e.mark.column + 1, ": YAML syntax error: ", e.msg));
  }
  Config c = DefaultConfig();
  Problems problems(source);
  try {
    ReadConfig(root, &problems, &c);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", e.what()));
  }
  if (!problems.empty()) return absl::InvalidArgumentError(problems.Join());
  return c;
}

absl::StatusOr<std::vector<sampling::PolicyConfig>> ParsePolicies(const std::string& yaml,
                                                                  const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ":", e.mark.line + 1, ":", e.mark.column + 1, ": YAML syntax error: ", e.msg));
  }
  std::vector<sampling::PolicyConfig> policies;
  Problems problems(source);
  try {
    if (!root || root.IsNull()) {
      problems.Add(root, "sampler.policies", "must be a list of policies, got nothing");
    } else {
      ReadPolicies(root, "sampler.policies", &problems, &policies);
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": ", e.what()));
  }
  if (!problems.empty()) return absl::InvalidArgumentError(problems.Join());
  return policies;
}

namespace {

void EmitPolicy(const sampling::PolicyConfig& p, YAML::Emitter* out);

void EmitList(const std::vector<sampling::PolicyConfig>& list, YAML::Emitter* out) {
  *out << YAML::BeginSeq;
  for (const auto& p : list) EmitPolicy(p, out);
  *out << YAML::EndSeq;
}

void EmitPolicy(const sampling::PolicyConfig& p, YAML::Emitter* out) {
  YAML::Emitter& e = *out;
  e << YAML::BeginMap << YAML::Key << "name" << YAML::Value << p.name << YAML::Key << "type"
    << YAML::Value << p.type;
  const std::string& t = p.type;
  if (t == "always_sample" || t.empty()) {
    e << YAML::EndMap;
    return;
  }
  e << YAML::Key << t << YAML::Value << YAML::BeginMap;
  if (t == "status_code") {
    e << YAML::Key << "status_codes" << YAML::Value << YAML::Flow << p.status_codes;
  } else if (t == "probabilistic") {
    e << YAML::Key << "sampling_percentage" << YAML::Value << p.sampling_percentage;
    if (!p.hash_salt.empty()) e << YAML::Key << "hash_salt" << YAML::Value << p.hash_salt;
  } else if (t == "latency") {
    e << YAML::Key << "threshold_ms" << YAML::Value << p.latency.threshold_ms;
    if (p.latency.upper_threshold_ms != 0) {
      e << YAML::Key << "upper_threshold_ms" << YAML::Value << p.latency.upper_threshold_ms;
    }
  } else if (t == "string_attribute") {
    const auto& a = p.string_attribute;
    e << YAML::Key << "key" << YAML::Value << a.key << YAML::Key << "values" << YAML::Value
      << YAML::Flow << a.values;
    if (a.enabled_regex_matching) e << YAML::Key << "enabled_regex_matching" << YAML::Value << true;
    if (a.invert_match) e << YAML::Key << "invert_match" << YAML::Value << true;
    if (a.cache_max_size != 0) {
      e << YAML::Key << "cache_max_size" << YAML::Value << a.cache_max_size;
    }
  } else if (t == "bytes_limiting") {
    e << YAML::Key << "bytes_per_second" << YAML::Value << p.bytes_limiting.bytes_per_second;
    if (p.bytes_limiting.burst_capacity != 0) {
      e << YAML::Key << "burst_capacity" << YAML::Value << p.bytes_limiting.burst_capacity;
    }
  } else if (t == "ottl_condition") {
    const auto& o = p.ottl_condition;
    e << YAML::Key << "error_mode" << YAML::Value << o.error_mode;
    if (!o.span.empty()) {
      e << YAML::Key << "span" << YAML::Value << YAML::BeginSeq;
      for (const std::string& c : o.span) e << YAML::DoubleQuoted << c;
      e << YAML::EndSeq;
    }
    if (!o.spanevent.empty()) {
      e << YAML::Key << "spanevent" << YAML::Value << YAML::BeginSeq;
      for (const std::string& c : o.spanevent) e << YAML::DoubleQuoted << c;
      e << YAML::EndSeq;
    }
  } else if (t == "numeric_attribute") {
    const auto& a = p.numeric_attribute;
    e << YAML::Key << "key" << YAML::Value << a.key;
    if (a.min_value) e << YAML::Key << "min_value" << YAML::Value << *a.min_value;
    if (a.max_value) e << YAML::Key << "max_value" << YAML::Value << *a.max_value;
    if (a.invert_match) e << YAML::Key << "invert_match" << YAML::Value << true;
  } else if (t == "boolean_attribute") {
    const auto& a = p.boolean_attribute;
    e << YAML::Key << "key" << YAML::Value << a.key << YAML::Key << "value" << YAML::Value
      << a.value;
    if (a.invert_match) e << YAML::Key << "invert_match" << YAML::Value << true;
  } else if (t == "rate_limiting") {
    e << YAML::Key << "spans_per_second" << YAML::Value << p.spans_per_second;
  } else if (t == "span_count") {
    e << YAML::Key << "min_spans" << YAML::Value << p.span_count.min_spans;
    if (p.span_count.max_spans != 0) {
      e << YAML::Key << "max_spans" << YAML::Value << p.span_count.max_spans;
    }
  } else if (t == "trace_state") {
    e << YAML::Key << "key" << YAML::Value << p.trace_state.key << YAML::Key << "values"
      << YAML::Value << YAML::Flow << p.trace_state.values;
  } else if (t == "and" || t == "drop" || t == "not") {
    e << YAML::Key << absl::StrCat(t, "_sub_policy") << YAML::Value;
    EmitList(p.sub_policies, out);
  } else if (t == "composite") {
    const auto& c = p.composite;
    e << YAML::Key << "max_total_spans_per_second" << YAML::Value << c.max_total_spans_per_second;
    if (!c.policy_order.empty()) {
      e << YAML::Key << "policy_order" << YAML::Value << YAML::Flow << c.policy_order;
    }
    e << YAML::Key << "composite_sub_policy" << YAML::Value;
    EmitList(p.sub_policies, out);
    if (!c.rate_allocation.empty()) {
      e << YAML::Key << "rate_allocation" << YAML::Value << YAML::BeginSeq;
      for (const auto& a : c.rate_allocation) {
        e << YAML::Flow << YAML::BeginMap << YAML::Key << "policy" << YAML::Value << a.policy
          << YAML::Key << "percent" << YAML::Value << a.percent << YAML::EndMap;
      }
      e << YAML::EndSeq;
    }
  }
  e << YAML::EndMap << YAML::EndMap;
}

}  // namespace

std::string PoliciesToYaml(const std::vector<sampling::PolicyConfig>& policies) {
  if (policies.empty()) return "[]\n";
  YAML::Emitter e;
  EmitList(policies, &e);
  return absl::StrCat(e.c_str(), "\n");
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config file \"", path, "\""));
  std::stringstream text;
  text << in.rdbuf();
  return ParseConfig(text.str(), path);
}

}  // namespace tracekeep::config
