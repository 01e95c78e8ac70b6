#include "collector/orders/order_admin.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "collector/common/status_macros.h"
#include "tracekeep/admin/v1/admin.pb.h"

namespace tracekeep::orders {

absl::Status GetOrder(OrderTracker* tracker, Clock* clock,
                      const admin::v1::GetOrderRequest& request,
                      admin::v1::GetOrderResponse* response) {
  if (request.order_id().empty()) return absl::InvalidArgumentError("order_id: must not be empty");
  TK_ASSIGN_OR_RETURN(*response->mutable_order(), tracker->GetOrder(request.order_id()));
  response->set_now_unix_nanos(absl::ToUnixNanos(clock->Now()));
  return absl::OkStatus();
}

absl::Status ListOrders(OrderTracker* tracker, Clock* clock,
                        const admin::v1::ListOrdersRequest& request,
                        admin::v1::ListOrdersResponse* response) {
  OrderQuery q;
  q.anomalous_only = request.anomalous_only();
  q.anomaly_type = request.anomaly_type();
  if (!q.anomaly_type.empty() && std::none_of(std::begin(kAnomalyTypes), std::end(kAnomalyTypes),
                                              [&](const char* t) { return q.anomaly_type == t; })) {
    return absl::InvalidArgumentError(absl::StrCat("anomaly_type: must be one of ",
                                                   absl::StrJoin(kAnomalyTypes, ", "), ", got \"",
                                                   q.anomaly_type, "\""));
  }
  if (request.since_unix_nanos() != 0) q.since = absl::FromUnixNanos(request.since_unix_nanos());
  q.state = request.state();
  const auto& states = tracker->config().states;
  if (!q.state.empty() && std::find(states.begin(), states.end(), q.state) == states.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "state: must be one of ", absl::StrJoin(states, ", "), ", got \"", q.state, "\""));
  }
  q.older_than = absl::Seconds(request.older_than_seconds());
  q.limit = request.limit() == 0 ? 100 : request.limit();
  TK_ASSIGN_OR_RETURN(std::vector<v1::Order> orders, tracker->ListOrders(q));
  for (v1::Order& o : orders) *response->add_orders() = std::move(o);
  response->set_now_unix_nanos(absl::ToUnixNanos(clock->Now()));
  return absl::OkStatus();
}

absl::Status KeepOrder(OrderTracker* tracker, const admin::v1::KeepOrderRequest& request,
                       admin::v1::KeepOrderResponse* response) {
  if (request.order_id().empty()) return absl::InvalidArgumentError("order_id: must not be empty");
  TK_RETURN_IF_ERROR(tracker->ForceKeep(request.order_id()));
  TK_ASSIGN_OR_RETURN(*response->mutable_order(), tracker->GetOrder(request.order_id()));
  return absl::OkStatus();
}

}  // namespace tracekeep::orders
