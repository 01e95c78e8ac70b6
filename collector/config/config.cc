#include "collector/config/config.h"

#include <fstream>
#include <functional>
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
    }
    {
      MapReader h(protocols.Get("http"), "receivers.otlp.protocols.http", problems);
      h.Bool("enabled", &c->http.enabled);
      h.Endpoint("endpoint", &c->http.endpoint);
      h.Int("max_request_body_size_mib", &c->http.max_request_body_size_mib, 1, 1024);
      YAML::Node http_tls = h.Get("tls");
      if (http_tls && !http_tls.IsNull()) {
        // civetweb 1.15 as packaged for Debian 12 crashes in its TLS handshake with OpenSSL 3.
        problems->Add(http_tls, "receivers.otlp.protocols.http.tls",
                      "TLS on OTLP/HTTP is not supported yet; use OTLP/gRPC with tls, or "
                      "terminate TLS in a proxy in front of :4318");
      }
      ReadNetworks(&h, "allowed_networks", problems, &c->http.allowed_networks);
    }
  }
  {
    MapReader s(top.Get("sampler"), "sampler", problems);
    s.Duration("decision_wait", &c->sampler.decision_wait, absl::ZeroDuration());
    s.Int("num_shards", &c->sampler.num_shards, 0, 256);
    s.Size("max_pending_traces", &c->sampler.max_pending_traces, 1, int64_t{1} << 40);
    s.Size("max_queued_spans", &c->sampler.max_queued_spans, 1, int64_t{1} << 40);
    YAML::Node policies = s.Get("policies");
    if (policies && !policies.IsNull()) {
      if (!policies.IsSequence()) {
        problems->Add(policies, "sampler.policies", "must be a list of policies");
      } else {
        c->sampler.policies.clear();
        for (size_t i = 0; i < policies.size(); ++i) {
          ReadPolicy(policies[i], absl::StrCat("sampler.policies[", i, "]"), problems,
                     &c->sampler.policies.emplace_back());
        }
        // Semantic checks; positions point at the policy list.
        for (const std::string& p :
             sampling::ValidatePolicies(c->sampler.policies, "sampler.policies")) {
          const size_t colon = p.find(": ");
          problems->Add(policies, p.substr(0, colon), p.substr(colon + 2));
        }
      }
    }
  }
  {
    MapReader s(top.Get("storage"), "storage", problems);
    s.String("path", &c->storage.path);
    s.Bool("sync", &c->storage.sync);
    s.Int("block_cache_mib", &c->storage.block_cache_mib, 0, 1 << 20);
    s.Int("write_buffer_mib", &c->storage.write_buffer_mib, 1, 1 << 16);
    s.Duration("retention", &c->storage.retention, absl::ZeroDuration());
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
  }
}

}  // namespace

Config DefaultConfig() {
  Config c;
  c.sampler.policies = sampling::DefaultPolicies();
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

absl::StatusOr<Config> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config file \"", path, "\""));
  std::stringstream text;
  text << in.rdbuf();
  return ParseConfig(text.str(), path);
}

}  // namespace tracekeep::config
