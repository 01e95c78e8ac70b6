// tracekeepctl's order commands: `order get`, `order keep`, `orders list`, `orders stuck`.
#ifndef TRACEKEEP_COLLECTOR_CTL_ORDER_COMMANDS_H_
#define TRACEKEEP_COLLECTOR_CTL_ORDER_COMMANDS_H_

#include <cstdint>
#include <map>
#include <ostream>
#include <string>

#include "absl/time/time.h"
#include "collector/ctl/ctl.h"

namespace tracekeep::orders::v1 {
class Order;
}  // namespace tracekeep::orders::v1
namespace opentelemetry::proto::trace::v1 {
class TracesData;
}  // namespace opentelemetry::proto::trace::v1
namespace tracekeep::admin::v1 {
class ListOrdersResponse;
}  // namespace tracekeep::admin::v1

namespace tracekeep::ctl {

// Flags of `orders list` / `orders stuck`.
struct OrderFlags {
  bool anomalous = false;                            // --anomalous
  std::string type;                                  // --type T
  absl::Duration since = absl::ZeroDuration();       // --since D: anomalies of the last D
  std::string state;                                 // --state S
  absl::Duration older_than = absl::ZeroDuration();  // --older-than D
  int limit = 0;                                     // --limit N: at most N orders (0 = 100)
};

// `tracekeepctl order get <order-id>`: timeline (per step: how long it took and its slowest
// span, read from the stored traces), invariants, anomalies, traces.
int RunOrderGet(const CtlOptions& options, const std::string& order_id, std::ostream& out,
                std::ostream& err);
// `tracekeepctl order keep <order-id>`: keep every trace of the order.
int RunOrderKeep(const CtlOptions& options, const std::string& order_id, std::ostream& out,
                 std::ostream& err);
// `tracekeepctl orders list [--anomalous] [--type T] [--since D] [--limit N]`. Both listings
// follow the daemon's pages (1000 orders each) and print each page as it comes: a table whose
// columns widen as longer values come, and "N of M shown" when the listing stopped at --limit;
// with --json one document, {"orders":[...],"now_unix_nanos":"...","shown":N,"total":M}.
int RunOrdersList(const CtlOptions& options, const OrderFlags& flags, std::ostream& out,
                  std::ostream& err);
// `tracekeepctl orders stuck --state S --older-than D [--limit N]`.
int RunOrdersStuck(const CtlOptions& options, const OrderFlags& flags, std::ostream& out,
                   std::ostream& err);

// The longest span of a trace: where the time of an order step went.
struct SlowestSpan {
  bool stored = false;  // false: the trace is not in the store (not kept, or still held)
  std::string error;    // the store could not be read: why (then `stored` is false)
  std::string service;  // resource service.name
  std::string name;
  int64_t duration_nanos = 0;
};
// The span of `data` with the longest end - start (the first of equal ones); stored = false when
// `data` has no span.
SlowestSpan FindSlowestSpan(const opentelemetry::proto::trace::v1::TracesData& data);

// Human output, exposed for tests. `now_unix_nanos` is the daemon's clock. With `trace_url`
// (the daemon's ui.trace_url, "{trace_id}" to replace), every kept trace gets its link. With
// `slowest` (by 16-byte trace id), the timeline shows per step how long it took since the
// previous state and the slowest span of the trace that recorded it.
std::string FormatOrder(const tracekeep::orders::v1::Order& order, int64_t now_unix_nanos,
                        const std::string& trace_url = "",
                        const std::map<std::string, SlowestSpan>* slowest = nullptr);
// One page of a listing as `orders list` prints it.
std::string FormatOrderList(const tracekeep::admin::v1::ListOrdersResponse& list);
// The order as JSON with snake_case names and hex trace and span ids.
std::string OrderJson(const tracekeep::orders::v1::Order& order);

// Reports a failed admin call (gRPC status code and message) like every other command; returns
// the exit code. Defined in ctl.cc.
int ReportAdminError(int grpc_code, const std::string& message, const CtlOptions& options,
                     std::ostream& err);

}  // namespace tracekeep::ctl

#endif  // TRACEKEEP_COLLECTOR_CTL_ORDER_COMMANDS_H_
