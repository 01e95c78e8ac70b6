// The orders part of the admin API (GetOrder, ListOrders, KeepOrder) served from an OrderTracker.
#ifndef TRACEKEEP_COLLECTOR_ORDERS_ORDER_ADMIN_H_
#define TRACEKEEP_COLLECTOR_ORDERS_ORDER_ADMIN_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "collector/orders/order_list.h"
#include "collector/orders/order_tracker.h"

namespace tracekeep::admin::v1 {
class GetOrderRequest;
class GetOrderResponse;
class ListOrdersRequest;
class ListOrdersResponse;
class KeepOrderRequest;
class KeepOrderResponse;
}  // namespace tracekeep::admin::v1

namespace tracekeep::orders {

// The query of a ListOrders request; INVALID_ARGUMENT names the field: an unknown anomaly type,
// a state not among `states` (the configured ones), a negative older_than_seconds or page_size,
// a page token not of this listing.
[[nodiscard]] absl::StatusOr<OrderQuery> ListOrdersQuery(
    const admin::v1::ListOrdersRequest& request, const std::vector<std::string>& states);

// INVALID_ARGUMENT for an empty order id or an unknown anomaly type / state, a negative page
// size or a page token not of this listing; NOT_FOUND for an order never seen.
[[nodiscard]] absl::Status GetOrder(OrderTracker* tracker, Clock* clock,
                                    const admin::v1::GetOrderRequest& request,
                                    admin::v1::GetOrderResponse* response);
[[nodiscard]] absl::Status ListOrders(OrderTracker* tracker, Clock* clock,
                                      const admin::v1::ListOrdersRequest& request,
                                      admin::v1::ListOrdersResponse* response);
[[nodiscard]] absl::Status KeepOrder(OrderTracker* tracker,
                                     const admin::v1::KeepOrderRequest& request,
                                     admin::v1::KeepOrderResponse* response);

}  // namespace tracekeep::orders

#endif  // TRACEKEEP_COLLECTOR_ORDERS_ORDER_ADMIN_H_
