// The orders part of the admin API (GetOrder, ListOrders, KeepOrder) served from an OrderTracker.
#ifndef TRACEKEEP_COLLECTOR_ORDERS_ORDER_ADMIN_H_
#define TRACEKEEP_COLLECTOR_ORDERS_ORDER_ADMIN_H_

#include "absl/status/status.h"
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

// INVALID_ARGUMENT for an empty order id or an unknown anomaly type / state; NOT_FOUND for an
// order never seen.
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
