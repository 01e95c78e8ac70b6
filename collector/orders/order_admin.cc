#include "collector/orders/order_admin.h"

#include <algorithm>
#include <string>
#include <vector>

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

absl::StatusOr<OrderQuery> ListOrdersQuery(const admin::v1::ListOrdersRequest& request,
                                           const std::vector<std::string>& states) {
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
  if (!q.state.empty() && std::find(states.begin(), states.end(), q.state) == states.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "state: must be one of ", absl::StrJoin(states, ", "), ", got \"", q.state, "\""));
  }
  if (request.older_than_seconds() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("older_than_seconds: must be >= 0, got ", request.older_than_seconds()));
  }
  q.older_than = absl::Seconds(request.older_than_seconds());
  if (request.page_size() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_size: must be >= 0 (0 = ", kDefaultOrderPageSize, "), got ", request.page_size()));
  }
  q.limit = request.limit();
  q.page_size = static_cast<size_t>(request.page_size());
  // A client that does not page asks for its orders with the limit alone.
  if (q.page_size == 0 && q.limit > 0) q.page_size = std::min(q.limit, kMaxOrderPageSize);
  q.page_token = request.page_token();
  TK_RETURN_IF_ERROR(CheckOrderPageToken(q));
  return q;
}

absl::Status ListOrders(OrderTracker* tracker, Clock* clock,
                        const admin::v1::ListOrdersRequest& request,
                        admin::v1::ListOrdersResponse* response) {
  TK_ASSIGN_OR_RETURN(const OrderQuery q, ListOrdersQuery(request, tracker->config().states));
  TK_ASSIGN_OR_RETURN(OrderPage page, tracker->ListOrders(q));
  for (v1::Order& o : page.orders) *response->add_orders() = std::move(o);
  response->set_next_page_token(std::move(page.next_page_token));
  response->set_total_size(static_cast<int64_t>(page.total_matched));
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
