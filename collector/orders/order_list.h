// Listing orders for the admin API: which records match a query, in which order, one page at a
// time (AIP-158). Reads the `orders` table (every record is there once the tracker flushed it)
// and, when the tracker keeps it, the `order_index` table of anomalous orders.
//
// Order: most recently active first, where an order's activity is the latest of its last span's
// arrival and its last anomaly's detection; ties by order id (bytewise). A page token carries
// the position (activity and id) of the last order returned, so a page never repeats an order
// of the previous ones, whatever arrived in between.
//
// Cost of a page: without the index (or for a query on `state`), one scan of `orders` that
// keeps only the best page_size matches after the position (memory in proportion to the page).
// With the index, queries on anomalies (anomalous_only, anomaly_type, since) read the index
// entries of the matches (a key and 8 bytes each, to count them) and the records of the page
// only.
#ifndef TRACEKEEP_COLLECTOR_ORDERS_ORDER_LIST_H_
#define TRACEKEEP_COLLECTOR_ORDERS_ORDER_LIST_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "storage/kv_table.h"
#include "tracekeep/orders/v1/order.pb.h"

namespace tracekeep::orders {

// Orders per page when the query does not say (page_size 0), and at most.
inline constexpr size_t kDefaultOrderPageSize = 100;
inline constexpr size_t kMaxOrderPageSize = 1000;
// A page stops before its orders, serialized, pass this many bytes (but holds at least one
// order), so that a page of large records stays well under gRPC's default 4 MiB message limit.
inline constexpr size_t kMaxOrderPageBytes = size_t{2} << 20;

struct OrderQuery {
  bool anomalous_only = false;
  std::string anomaly_type;                 // "" = any; else an anomaly of this type (among others)
  absl::Time since = absl::InfinitePast();  // anomalies detected at or after
  std::string state;  // "" = any; else only active or anomalous orders currently in it
  absl::Duration older_than = absl::ZeroDuration();  // with state: in it for at least this long
  // At most this many orders over all the pages of the listing; 0 = no bound.
  size_t limit = 0;
  // Orders per page: 0 = kDefaultOrderPageSize; more than kMaxOrderPageSize = kMaxOrderPageSize.
  size_t page_size = 0;
  // OrderPage::next_page_token of the previous page; "" = the first page. The filters and the
  // limit must be those of the first page.
  std::string page_token;
};

// One page of a listing.
struct OrderPage {
  std::vector<v1::Order> orders;
  std::string next_page_token;  // "" on the last page (nothing left, or the limit reached)
  // Matches over all pages, regardless of the limit, counted when the first page was read (the
  // next pages repeat it from their token).
  size_t total_matched = 0;
};

// Orders of `table` (the `orders` table) matching `query` at `now`: the page after the query's
// page token. kInvalidArgument, naming page_token, for a token that is not one of this listing.
[[nodiscard]] absl::StatusOr<OrderPage> ListOrderRecords(storage::KvTable* table,
                                                         const OrderQuery& query, absl::Time now);
// OK when the query's page token is "" or one of its listing's; else what
// ListOrderRecords answers (kInvalidArgument naming page_token).
[[nodiscard]] absl::Status CheckOrderPageToken(const OrderQuery& query);
// The same answer, read through `index` (the `order_index` table, kept by the tracker with
// OrderIndexWrites and built by EnsureOrderIndex) for queries on anomalies without a state.
// Falls back to the scan of `orders` when the index is not built.
[[nodiscard]] absl::StatusOr<OrderPage> ListOrderRecords(storage::KvTable* orders,
                                                         storage::KvTable* index,
                                                         const OrderQuery& query, absl::Time now);

// The index of anomalous orders, table `order_index`. For each order with an anomaly, one entry
// under "a/" and one per anomaly type under "t/<TYPE>/", keyed by descending activity then order
// id, valued by the (latest) detection time of the anomalies it stands for. Orders without an
// anomaly have none. The key "v" holds the layout version once the index is complete.

// An order's entries: puts, in key order. Empty for an order without anomalies.
using OrderIndexEntries = std::vector<storage::KvWrite>;
[[nodiscard]] OrderIndexEntries OrderIndexEntriesOf(const v1::Order& order);
// The same from the parts the index reads: the order's id, its last arrival and its anomalies'
// types and detection times (what the tracker has in memory, without building a v1::Order).
struct IndexedAnomaly {
  absl::string_view type;
  int64_t detected_unix_nanos = 0;
};
[[nodiscard]] OrderIndexEntries OrderIndexEntriesOf(absl::string_view order_id,
                                                    int64_t last_arrival_unix_nanos,
                                                    const std::vector<IndexedAnomaly>& anomalies);

// The writes that replace the entries `before` (what the index holds for the order: the entries
// of the record last written) by `after` (of the record now written): deletes of the keys gone,
// puts of the keys new or revalued. Write them with the record, atomically
// (KvTable::WriteWith); none when the order's activity and anomalies did not change.
[[nodiscard]] std::vector<storage::KvWrite> OrderIndexWrites(const OrderIndexEntries& before,
                                                             const OrderIndexEntries& after);
// The same from records; nullptr = no record (a new order, a deleted one).
[[nodiscard]] std::vector<storage::KvWrite> OrderIndexWrites(const v1::Order* before,
                                                             const v1::Order* after);

// Builds `index` from every record of `orders` unless it is complete already (its version key is
// this layout's): call before the tracker writes records. Cost when it builds: one scan of
// `orders`.
[[nodiscard]] absl::Status EnsureOrderIndex(storage::KvTable* orders, storage::KvTable* index);

}  // namespace tracekeep::orders

#endif  // TRACEKEEP_COLLECTOR_ORDERS_ORDER_LIST_H_
