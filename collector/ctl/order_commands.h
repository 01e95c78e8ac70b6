// tracekeepctl's order commands: `order get`, `order keep`, `orders list`, `orders stuck`.
#ifndef TRACEKEEP_COLLECTOR_CTL_ORDER_COMMANDS_H_
#define TRACEKEEP_COLLECTOR_CTL_ORDER_COMMANDS_H_

#include <cstdint>
#include <ostream>
#include <string>

#include "absl/time/time.h"
#include "collector/ctl/ctl.h"

namespace tracekeep::orders::v1 {
class Order;
}  // namespace tracekeep::orders::v1
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

// `tracekeepctl order get <order-id>`: timeline, invariants, anomalies, traces.
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

// Human output, exposed for tests. `now_unix_nanos` is the daemon's clock. With `trace_url`
// (the daemon's ui.trace_url, "{trace_id}" to replace), every kept trace gets its link.
std::string FormatOrder(const tracekeep::orders::v1::Order& order, int64_t now_unix_nanos,
                        const std::string& trace_url = "");
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
