#include "collector/ctl/order_commands.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <limits>
#include <map>
#include <sstream>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "collector/common/ids.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"
#include "tracekeep/admin/v1/admin.grpc.pb.h"

namespace tracekeep::ctl {

namespace pb = ::tracekeep::admin::v1;

namespace internal {
// Defined in ctl.cc: the admin stub (TLS per --tls-ca) and a call's deadline and token.
std::unique_ptr<pb::AdminService::Stub> NewStub(const CtlOptions& options);
void SetDeadline(const CtlOptions& options, grpc::ClientContext* context);
grpc::Status FetchTrace(const CtlOptions& options, const std::string& trace_id,
                        opentelemetry::proto::trace::v1::TracesData* data, std::string* problem);
}  // namespace internal

namespace {

namespace ov1 = ::tracekeep::orders::v1;

std::unique_ptr<pb::AdminService::Stub> Stub(const CtlOptions& options) {
  return internal::NewStub(options);
}

void Deadline(const CtlOptions& options, grpc::ClientContext* context) {
  internal::SetDeadline(options, context);
}

// Traces `order get` reads to find the slowest span of each step, at most.
constexpr size_t kMaxStepTraces = 64;

// Orders asked per page: the daemon's maximum.
constexpr size_t kListPageSize = 1000;
// Orders listed without --limit.
constexpr size_t kDefaultListLimit = 100;

size_t ListLimit(const OrderFlags& flags) {
  return flags.limit > 0 ? static_cast<size_t>(flags.limit) : kDefaultListLimit;
}

int Fail(const grpc::Status& s, const CtlOptions& options, std::ostream& err) {
  return ReportAdminError(static_cast<int>(s.error_code()), s.error_message(), options, err);
}

std::string Time(int64_t nanos) {
  if (nanos == 0) return "-";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixNanos(nanos), absl::UTCTimeZone());
}

// "3m 12s", "2h 5m", "4d 1h".
std::string Age(int64_t nanos) {
  int64_t s = std::max<int64_t>(0, nanos / 1000000000);
  if (s >= 86400) return absl::StrCat(s / 86400, "d ", s / 3600 % 24, "h");
  if (s >= 3600) return absl::StrCat(s / 3600, "h ", s / 60 % 60, "m");
  if (s >= 60) return absl::StrCat(s / 60, "m ", s % 60, "s");
  return absl::StrCat(s, "s");
}

// A duration to the millisecond: "340ms", "1.25s", "3m12.5s"; negative ones (clock skew between
// services) keep their sign.
std::string StepDuration(int64_t nanos) {
  return absl::FormatDuration(absl::Trunc(absl::Nanoseconds(nanos), absl::Milliseconds(1)));
}

const char* ResolutionText(ov1::Order::Resolution r) {
  switch (r) {
    case ov1::Order::ACTIVE:
      return "active";
    case ov1::Order::ANOMALOUS:
      return "ANOMALOUS";
    case ov1::Order::HEALTHY_KEPT:
      return "healthy (kept by baseline)";
    case ov1::Order::HEALTHY_RELEASED:
      return "healthy";
    case ov1::Order::EXPIRED:
      return "expired";
    case ov1::Order::READ_ONLY:
      return "read-only";
    default:
      return "?";
  }
}

std::string AnomalyTypes(const ov1::Order& o) {
  std::vector<std::string> t;
  for (const auto& a : o.anomalies()) t.push_back(a.type());
  return t.empty() ? "-" : absl::StrJoin(t, ",");
}

// Rows of equal-width columns, two spaces apart.
std::string Table(const std::vector<std::vector<std::string>>& rows, const std::string& indent) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    width.resize(std::max(width.size(), r.size()));
    for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line = indent;
    for (size_t i = 0; i < r.size(); ++i) {
      absl::StrAppend(&line, r[i]);
      if (i + 1 < r.size()) line.append(width[i] - r[i].size() + 2, ' ');
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

// Rewrites base64 id fields (proto3 JSON of bytes) as hex.
void HexIds(google::protobuf::Value* v) {
  if (v->has_list_value()) {
    for (auto& x : *v->mutable_list_value()->mutable_values()) HexIds(&x);
  } else if (v->has_struct_value()) {
    for (auto& [key, x] : *v->mutable_struct_value()->mutable_fields()) {
      const bool id =
          key == "trace_id" || key == "span_id" || key == "trace_ids" || key == "kept_trace_ids";
      if (id && x.has_string_value()) {
        std::string raw;
        if (absl::Base64Unescape(x.string_value(), &raw)) x.set_string_value(ToHex(raw));
      } else if (id && x.has_list_value()) {
        for (auto& y : *x.mutable_list_value()->mutable_values()) {
          std::string raw;
          if (y.has_string_value() && absl::Base64Unescape(y.string_value(), &raw)) {
            y.set_string_value(ToHex(raw));
          }
        }
      } else {
        HexIds(&x);
      }
    }
  }
}

std::string ToJson(const google::protobuf::Message& m) {
  google::protobuf::util::JsonPrintOptions p;
  p.preserve_proto_field_names = true;
  p.always_print_primitive_fields = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(m, &json, p);
  google::protobuf::Value v;
  if (!google::protobuf::util::JsonStringToMessage(json, &v).ok()) return json;
  HexIds(&v);
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(v, &out);
  return out;
}

std::vector<std::string> ListRow(const ov1::Order& o, int64_t now) {
  return {o.order_id(),
          ResolutionText(o.resolution()),
          o.current_state().empty() ? "-" : o.current_state(),
          o.current_state_unix_nanos() == 0 ? "-" : Age(now - o.current_state_unix_nanos()),
          AnomalyTypes(o),
          absl::StrCat(o.kept_trace_ids_size(), "/", o.trace_ids_size(), " kept"),
          Time(o.last_arrival_unix_nanos())};
}

// Prints a listing as its pages come. Text: the table of Table(), its columns widened as longer
// values come (never narrowed), then "N of M shown" when the listing was cut at its limit.
// JSON: one document, {"orders":[...],"now_unix_nanos":"...","shown":N,"total":M}, written as
// the pages come (the orders as OrderJson prints them).
class ListPrinter {
 public:
  ListPrinter(bool json, std::ostream& out) : json_(json), out_(out) {}

  void Page(const pb::ListOrdersResponse& page, size_t max_orders) {
    now_ = page.now_unix_nanos();
    total_ = std::max<int64_t>(total_, page.total_size());
    const int n = static_cast<int>(std::min<size_t>(page.orders_size(), max_orders));
    if (json_) {
      Open();
      for (int i = 0; i < n; ++i) out_ << (shown_ + i == 0 ? "" : ",") << ToJson(page.orders(i));
    } else {
      std::vector<std::vector<std::string>> rows;
      if (shown_ == 0 && n > 0) {
        rows.push_back(
            {"ORDER", "VERDICT", "STATE", "IN STATE FOR", "ANOMALIES", "TRACES", "LAST SPAN"});
      }
      for (int i = 0; i < n; ++i) rows.push_back(ListRow(page.orders(i), now_));
      for (const auto& r : rows) {
        width_.resize(std::max(width_.size(), r.size()));
        for (size_t i = 0; i < r.size(); ++i) width_[i] = std::max(width_[i], r[i].size());
      }
      for (const auto& r : rows) {
        std::string line;
        for (size_t i = 0; i < r.size(); ++i) {
          absl::StrAppend(&line, r[i]);
          if (i + 1 < r.size()) line.append(width_[i] - r[i].size() + 2, ' ');
        }
        out_ << line << "\n";
      }
    }
    shown_ += static_cast<size_t>(n);
    out_.flush();
  }

  // Ends the listing, which was asked for at most `limit` orders.
  void Finish(size_t limit) {
    const int64_t total = std::max<int64_t>(total_, static_cast<int64_t>(shown_));
    if (json_) {
      Open();
      out_ << "],\"now_unix_nanos\":\"" << now_ << "\",\"shown\":" << shown_
           << ",\"total\":" << total << "}\n";
    } else if (shown_ == 0) {
      out_ << "no matching orders\n";
    } else if (shown_ >= limit && total > static_cast<int64_t>(shown_)) {
      out_ << shown_ << " of " << total << " shown (--limit N shows more)\n";
    }
    out_.flush();
  }

  size_t shown() const { return shown_; }

 private:
  void Open() {
    if (!opened_) out_ << "{\"orders\":[";
    opened_ = true;
  }

  const bool json_;
  std::ostream& out_;
  bool opened_ = false;
  std::vector<size_t> width_;
  size_t shown_ = 0;
  int64_t total_ = 0;
  int64_t now_ = 0;
};

// Follows the pages of a listing of at most `limit` orders, printing each as it comes.
int RunList(const CtlOptions& options, pb::ListOrdersRequest request, size_t limit,
            std::ostream& out, std::ostream& err) {
  request.set_limit(static_cast<uint32_t>(limit));
  request.set_page_size(static_cast<int32_t>(std::min(limit, kListPageSize)));
  auto stub = Stub(options);
  ListPrinter printer(options.json, out);
  for (;;) {
    grpc::ClientContext context;
    Deadline(options, &context);
    pb::ListOrdersResponse response;
    const grpc::Status s = stub->ListOrders(&context, request, &response);
    if (!s.ok()) return Fail(s, options, err);
    printer.Page(response, limit - printer.shown());
    if (response.next_page_token().empty() || printer.shown() >= limit) break;
    if (response.next_page_token() == request.page_token()) {
      err << "tracekeepctl: the daemon answered the same page token twice; listing stopped\n";
      return kExitFailure;
    }
    request.set_page_token(response.next_page_token());
  }
  printer.Finish(limit);
  return kExitOk;
}

}  // namespace

std::string OrderJson(const ov1::Order& order) { return ToJson(order); }

SlowestSpan FindSlowestSpan(const opentelemetry::proto::trace::v1::TracesData& data) {
  SlowestSpan out;
  for (const auto& rs : data.resource_spans()) {
    std::string service;
    for (const auto& kv : rs.resource().attributes()) {
      if (kv.key() == "service.name") service = kv.value().string_value();
    }
    for (const auto& ss : rs.scope_spans()) {
      for (const auto& span : ss.spans()) {
        const int64_t d =
            span.end_time_unix_nano() >= span.start_time_unix_nano()
                ? static_cast<int64_t>(span.end_time_unix_nano() - span.start_time_unix_nano())
                : 0;
        if (!out.stored || d > out.duration_nanos) {
          out.stored = true;
          out.service = service;
          out.name = span.name();
          out.duration_nanos = d;
        }
      }
    }
  }
  return out;
}

std::string FormatOrder(const ov1::Order& o, int64_t now, const std::string& trace_url,
                        const std::map<std::string, SlowestSpan>* slowest) {
  std::string out = absl::StrCat("order ", o.order_id(), "  ", ResolutionText(o.resolution()));
  if (o.anomalies_size() > 0) absl::StrAppend(&out, " (", AnomalyTypes(o), ")");
  if (o.force_keep()) absl::StrAppend(&out, ", force-kept");
  absl::StrAppend(&out, "\n");
  if (!o.current_state().empty()) {
    absl::StrAppend(&out, "current state  ", o.current_state(), " since ",
                    Time(o.current_state_unix_nanos()), " (",
                    Age(now - o.current_state_unix_nanos()), " ago)\n");
  }
  if (o.deadline_unix_nanos() != 0 && o.resolution() == ov1::Order::ACTIVE) {
    absl::StrAppend(&out, "deadline       ", Time(o.deadline_unix_nanos()),
                    now > o.deadline_unix_nanos()
                        ? absl::StrCat(" (overdue by ", Age(now - o.deadline_unix_nanos()), ")")
                        : absl::StrCat(" (in ", Age(o.deadline_unix_nanos() - now), ")"),
                    "\n");
  }
  absl::StrAppend(&out, "first span     ", Time(o.first_arrival_unix_nanos()), ", last span ",
                  Time(o.last_arrival_unix_nanos()), " (arrival)\n");

  std::vector<const ov1::StateEvent*> states;
  for (const auto& e : o.states()) states.push_back(&e);
  std::stable_sort(states.begin(), states.end(), [](const auto* a, const auto* b) {
    return a->time_unix_nanos() < b->time_unix_nanos();
  });
  absl::StrAppend(&out, "\nTimeline (span time)\n");
  std::vector<std::vector<std::string>> rows;
  if (slowest == nullptr) {
    rows.push_back({"STATE", "TIME", "SERVICE", "TRACE"});
  } else {
    rows.push_back({"STATE", "TIME", "TOOK", "SERVICE", "TRACE", "SLOWEST SPAN"});
  }
  for (size_t i = 0; i < states.size(); ++i) {
    const ov1::StateEvent* e = states[i];
    std::vector<std::string> row = {e->state(), Time(e->time_unix_nanos())};
    if (slowest != nullptr) {
      // How long the step into this state took: since the previous state, by span time.
      row.push_back(i == 0 ? "-"
                           : StepDuration(e->time_unix_nanos() - states[i - 1]->time_unix_nanos()));
    }
    row.push_back(e->service().empty() ? "-" : e->service());
    row.push_back(ToHex(e->trace_id()));
    if (slowest != nullptr) {
      auto it = slowest->find(e->trace_id());
      if (it == slowest->end()) {
        row.push_back("-");
      } else if (!it->second.error.empty()) {
        row.push_back(absl::StrCat("unreadable (", it->second.error, ")"));
      } else if (!it->second.stored) {
        row.push_back("trace not stored");
      } else {
        row.push_back(absl::StrCat(it->second.service.empty() ? "-" : it->second.service, "  ",
                                   it->second.name, "  ", StepDuration(it->second.duration_nanos)));
      }
    }
    rows.push_back(std::move(row));
  }
  absl::StrAppend(&out, states.empty() ? "  (no state recorded)\n" : Table(rows, "  "));

  if (o.invariants_size() > 0) {
    absl::StrAppend(&out, "\nInvariants\n");
    rows = {{"ATTRIBUTE", "VALUE", "SERVICE", "TRACE"}};
    for (const auto& v : o.invariants()) {
      rows.push_back({v.key(), v.value(), v.service(), ToHex(v.trace_id())});
    }
    absl::StrAppend(&out, Table(rows, "  "));
  }
  if (o.anomalies_size() > 0) {
    absl::StrAppend(&out, "\nAnomalies\n");
    rows.clear();
    for (const auto& a : o.anomalies()) {
      rows.push_back({a.type(), Time(a.detected_unix_nanos()), a.detail()});
    }
    absl::StrAppend(&out, Table(rows, "  "));
  }
  absl::StrAppend(&out, "\nTraces (", o.trace_ids_size(), ", ", o.kept_trace_ids_size(),
                  " kept; show one with: tracekeepctl trace get <trace>)\n");
  rows.clear();
  for (const auto& t : o.trace_ids()) {
    const bool kept = std::find(o.kept_trace_ids().begin(), o.kept_trace_ids().end(), t) !=
                      o.kept_trace_ids().end();
    std::string where;
    if (kept) {
      where = "kept";
    } else if (o.resolution() == ov1::Order::ACTIVE) {
      where = "held or pending";
    } else {
      where = "not kept";
    }
    std::vector<std::string> row = {ToHex(t), where};
    if (kept && !trace_url.empty()) {
      row.push_back(absl::StrReplaceAll(trace_url, {{"{trace_id}", ToHex(t)}}));
    }
    rows.push_back(std::move(row));
  }
  absl::StrAppend(&out, Table(rows, "  "));
  return out;
}

std::string FormatOrderList(const pb::ListOrdersResponse& list) {
  std::ostringstream out;
  ListPrinter printer(/*json=*/false, out);
  printer.Page(list, static_cast<size_t>(list.orders_size()));
  printer.Finish(std::numeric_limits<size_t>::max());
  return out.str();
}

int RunOrderGet(const CtlOptions& options, const std::string& order_id, std::ostream& out,
                std::ostream& err) {
  auto stub = Stub(options);
  grpc::ClientContext context;
  Deadline(options, &context);
  pb::GetOrderRequest request;
  request.set_order_id(order_id);
  pb::GetOrderResponse response;
  const grpc::Status s = stub->GetOrder(&context, request, &response);
  if (!s.ok()) return Fail(s, options, err);
  if (options.json) {
    out << OrderJson(response.order()) << "\n";
    return kExitOk;
  }
  // The slowest span of each step, from the stored traces that recorded the states.
  std::map<std::string, SlowestSpan> slowest;
  for (const ov1::StateEvent& e : response.order().states()) {
    if (slowest.size() >= kMaxStepTraces || slowest.count(e.trace_id()) > 0) continue;
    SlowestSpan& step = slowest[e.trace_id()];
    opentelemetry::proto::trace::v1::TracesData data;
    std::string problem;
    const grpc::Status t = internal::FetchTrace(options, ToHex(e.trace_id()), &data, &problem);
    if (t.error_code() == grpc::StatusCode::NOT_FOUND) continue;  // not stored
    if (!t.ok()) {
      step.error = t.error_message();
    } else if (!problem.empty()) {
      step.error = problem;
    } else {
      step = FindSlowestSpan(data);
    }
  }
  out << FormatOrder(response.order(), response.now_unix_nanos(), response.trace_url(), &slowest);
  return kExitOk;
}

int RunOrderKeep(const CtlOptions& options, const std::string& order_id, std::ostream& out,
                 std::ostream& err) {
  auto stub = Stub(options);
  grpc::ClientContext context;
  Deadline(options, &context);
  pb::KeepOrderRequest request;
  request.set_order_id(order_id);
  pb::KeepOrderResponse response;
  const grpc::Status s = stub->KeepOrder(&context, request, &response);
  if (!s.ok()) return Fail(s, options, err);
  if (options.json) {
    out << OrderJson(response.order()) << "\n";
  } else {
    out << "order " << order_id << ": every trace is kept ("
        << response.order().kept_trace_ids_size() << " of " << response.order().trace_ids_size()
        << " kept so far)\n";
  }
  return kExitOk;
}

int RunOrdersList(const CtlOptions& options, const OrderFlags& flags, std::ostream& out,
                  std::ostream& err) {
  pb::ListOrdersRequest request;
  request.set_anomalous_only(flags.anomalous);
  request.set_anomaly_type(flags.type);
  if (flags.since > absl::ZeroDuration()) {
    request.set_since_unix_nanos(absl::ToUnixNanos(absl::Now() - flags.since));
  }
  return RunList(options, request, ListLimit(flags), out, err);
}

int RunOrdersStuck(const CtlOptions& options, const OrderFlags& flags, std::ostream& out,
                   std::ostream& err) {
  pb::ListOrdersRequest request;
  request.set_state(flags.state);
  request.set_older_than_seconds(absl::ToInt64Seconds(flags.older_than));
  return RunList(options, request, ListLimit(flags), out, err);
}

}  // namespace tracekeep::ctl
