#include "collector/orders/order_list.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "collector/common/status_macros.h"

namespace tracekeep::orders {
namespace {

// Index layout (see order_list.h).
constexpr char kAnyPrefix[] = "a/";
constexpr char kTypePrefix[] = "t/";
constexpr char kVersionKey[] = "v";
constexpr char kIndexVersion[] = "1";
// Entries put by EnsureOrderIndex per write.
constexpr size_t kBuildBatch = 4096;

// Page token: version byte, fingerprint of the query, orders returned so far, matches when the
// listing began, then the position of the last order returned: activity and order id.
constexpr uint8_t kTokenVersion = 1;
constexpr size_t kTokenHeaderSize = 1 + 8 + 8 + 8 + 8;

constexpr uint64_t kSignBit = uint64_t{1} << 63;

void PutBigEndian(uint64_t v, std::string* out) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

// The first 8 bytes of `in`, which must hold them.
uint64_t GetBigEndian(absl::string_view in) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[i]);
  return v;
}

std::string BigEndian(int64_t v) {
  std::string out;
  PutBigEndian(static_cast<uint64_t>(v), &out);
  return out;
}

// An order's activity, by which listings sort it: the latest of its last span's arrival and its
// anomalies' detections (`detected` reads one anomaly's). The one rule for records and for the
// tracker's flat ones.
template <typename Anomalies, typename Detected>
int64_t ActivityOf(int64_t last_arrival_unix_nanos, const Anomalies& anomalies, Detected detected) {
  int64_t t = last_arrival_unix_nanos;
  for (const auto& a : anomalies) t = std::max(t, detected(a));
  return t;
}

int64_t Activity(const v1::Order& o) {
  return ActivityOf(o.last_arrival_unix_nanos(), o.anomalies(),
                    [](const v1::Anomaly& a) { return a.detected_unix_nanos(); });
}

// Whether the order at (a_activity, a_id) is listed before the one at (b_activity, b_id).
bool Before(int64_t a_activity, absl::string_view a_id, int64_t b_activity,
            absl::string_view b_id) {
  return a_activity != b_activity ? a_activity > b_activity : a_id < b_id;
}

std::string TypePrefix(absl::string_view type) {
  return absl::StrCat(kTypePrefix, type, absl::string_view("\0", 1));
}

// Descending activity in bytewise order: the int64 made unsigned (sign bit flipped), inverted.
std::string IndexKey(absl::string_view prefix, int64_t activity, absl::string_view order_id) {
  std::string key(prefix);
  PutBigEndian(~(static_cast<uint64_t>(activity) ^ kSignBit), &key);
  key.append(order_id.data(), order_id.size());
  return key;
}

int64_t IndexKeyActivity(absl::string_view rest) {
  return static_cast<int64_t>(~GetBigEndian(rest) ^ kSignBit);
}

bool Matches(const v1::Order& o, const OrderQuery& q, absl::Time now) {
  if (!q.state.empty()) {
    const bool open = o.resolution() == v1::Order::ACTIVE || o.resolution() == v1::Order::ANOMALOUS;
    if (!open || o.current_state() != q.state) return false;
    if (absl::FromUnixNanos(o.current_state_unix_nanos()) > now - q.older_than) return false;
  }
  if (q.anomalous_only && o.anomalies_size() == 0) return false;
  if (!q.anomaly_type.empty() || q.since != absl::InfinitePast()) {
    // Any of the order's anomalies will do: an order is found under each of its types.
    return std::any_of(o.anomalies().begin(), o.anomalies().end(), [&](const v1::Anomaly& a) {
      return (q.anomaly_type.empty() || a.type() == q.anomaly_type) &&
             absl::FromUnixNanos(a.detected_unix_nanos()) >= q.since;
    });
  }
  return true;
}

// Binds a token to the query that issued it (a stable hash: tokens outlive the process).
uint64_t Fingerprint(const OrderQuery& q) {
  const std::string s =
      absl::StrCat(q.anomalous_only ? 1 : 0, "|", q.anomaly_type.size(), ":", q.anomaly_type, "|",
                   absl::ToUnixNanos(q.since), "|", q.state.size(), ":", q.state, "|",
                   absl::ToInt64Nanoseconds(q.older_than), "|", q.limit);
  uint64_t h = 14695981039346656037ull;  // FNV-1a
  for (const char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ull;
  }
  return h;
}

// Where a page starts.
struct Cursor {
  bool first = true;     // no token: the first page
  size_t returned = 0;   // orders of the previous pages
  size_t total = 0;      // matches when the first page was read
  int64_t activity = 0;  // position of the last order returned
  std::string order_id;
};

absl::StatusOr<Cursor> ParseToken(const OrderQuery& q) {
  Cursor c;
  if (q.page_token.empty()) return c;
  std::string raw;
  if (!absl::WebSafeBase64Unescape(q.page_token, &raw) || raw.size() < kTokenHeaderSize) {
    constexpr size_t kShown = 40;
    return absl::InvalidArgumentError(absl::StrCat(
        "page_token: not a next_page_token of ListOrders, got \"", q.page_token.substr(0, kShown),
        q.page_token.size() > kShown ? "...\"" : "\""));
  }
  const absl::string_view r = raw;
  if (static_cast<uint8_t>(r[0]) != kTokenVersion) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_token: of another version of tracekeep (token format ", static_cast<int>(r[0] & 0xff),
        ", this one reads ", static_cast<int>(kTokenVersion), "); list again from the first page"));
  }
  if (GetBigEndian(r.substr(1)) != Fingerprint(q)) {
    return absl::InvalidArgumentError(
        "page_token: issued for another listing; anomalous_only, anomaly_type, since, state, "
        "older_than and limit must stay those of the first page");
  }
  c.first = false;
  c.returned = GetBigEndian(r.substr(9));
  c.total = GetBigEndian(r.substr(17));
  c.activity = static_cast<int64_t>(GetBigEndian(r.substr(25)));
  c.order_id = std::string(r.substr(kTokenHeaderSize));
  return c;
}

// Orders this page may hold: the page size, within what is left of the limit.
size_t PageSize(const OrderQuery& q, const Cursor& c) {
  size_t n = q.page_size == 0 ? kDefaultOrderPageSize : std::min(q.page_size, kMaxOrderPageSize);
  if (q.limit > 0) n = std::min(n, q.limit > c.returned ? q.limit - c.returned : 0);
  return n;
}

// Sets the token of the next page when `more` orders follow `page` and the limit allows them.
void SetNextToken(const OrderQuery& q, const Cursor& c, bool more, OrderPage* page) {
  if (!more || page->orders.empty()) return;
  const size_t returned = c.returned + page->orders.size();
  if (q.limit > 0 && returned >= q.limit) return;
  const v1::Order& last = page->orders.back();
  std::string raw;
  raw.push_back(static_cast<char>(kTokenVersion));
  PutBigEndian(Fingerprint(q), &raw);
  PutBigEndian(returned, &raw);
  PutBigEndian(page->total_matched, &raw);
  PutBigEndian(static_cast<uint64_t>(Activity(last)), &raw);
  raw.append(last.order_id());
  page->next_page_token = absl::WebSafeBase64Escape(raw);
}

// One scan of `orders`, keeping the best page_size matches after the cursor in a heap.
absl::StatusOr<OrderPage> ScanOrders(storage::KvTable* orders, const OrderQuery& q, const Cursor& c,
                                     absl::Time now) {
  struct Candidate {
    int64_t activity;
    v1::Order order;
  };
  const auto before = [](const Candidate& a, const Candidate& b) {
    return Before(a.activity, a.order.order_id(), b.activity, b.order.order_id());
  };
  const size_t want = PageSize(q, c);
  // A max-heap by listing order: its front is the last of the best orders so far.
  std::vector<Candidate> best;
  best.reserve(want);
  size_t total = 0;
  size_t after = 0;  // matches after the cursor
  TK_RETURN_IF_ERROR(orders->Scan("", [&](absl::string_view, absl::string_view value) {
    v1::Order o;
    if (!o.ParseFromArray(value.data(), static_cast<int>(value.size())) || !Matches(o, q, now)) {
      return true;
    }
    ++total;
    const int64_t activity = Activity(o);
    if (!c.first && !Before(c.activity, c.order_id, activity, o.order_id())) return true;
    ++after;
    if (want == 0) return true;
    if (best.size() == want) {
      const Candidate& last = best.front();
      if (!Before(activity, o.order_id(), last.activity, last.order.order_id())) return true;
      std::pop_heap(best.begin(), best.end(), before);
      best.pop_back();
    }
    best.push_back({activity, std::move(o)});
    std::push_heap(best.begin(), best.end(), before);
    return true;
  }));
  std::sort_heap(best.begin(), best.end(), before);
  OrderPage page;
  page.total_matched = c.first ? total : c.total;
  size_t bytes = 0;
  for (Candidate& candidate : best) {
    const size_t size = candidate.order.ByteSizeLong();
    if (!page.orders.empty() && bytes + size > kMaxOrderPageBytes) break;
    bytes += size;
    page.orders.push_back(std::move(candidate.order));
  }
  SetNextToken(q, c, after > page.orders.size(), &page);
  return page;
}

// Whether the index can answer `q`: a query on anomalies only.
bool IndexAnswers(const OrderQuery& q) {
  return q.state.empty() &&
         (q.anomalous_only || !q.anomaly_type.empty() || q.since != absl::InfinitePast());
}

// Reads the page from the index: the first page counts every match (index entries only), the
// next ones read from the cursor on, as far as the page and one more match.
absl::StatusOr<OrderPage> ReadIndex(storage::KvTable* orders, storage::KvTable* index,
                                    const OrderQuery& q, const Cursor& c, absl::Time now) {
  const std::string prefix =
      q.anomaly_type.empty() ? std::string(kAnyPrefix) : TypePrefix(q.anomaly_type);
  const int64_t since = q.since == absl::InfinitePast() ? std::numeric_limits<int64_t>::min()
                                                        : absl::ToUnixNanos(q.since);
  const size_t want = PageSize(q, c);
  OrderPage page;
  page.total_matched = c.total;
  size_t bytes = 0;
  bool full = want == 0;  // nothing more goes in the page
  bool more = false;      // a match follows the page
  absl::Status error;
  const std::string start = c.first ? prefix : IndexKey(prefix, c.activity, c.order_id);
  TK_RETURN_IF_ERROR(
      index->ScanFrom(prefix, start, [&](absl::string_view key, absl::string_view value) {
        if (key.size() < prefix.size() + 8 || value.size() != 8) return true;  // not an entry
        const int64_t activity = IndexKeyActivity(key.substr(prefix.size()));
        // Anomalies are detected at or before the order's activity: no later entry can match.
        if (activity < since) return false;
        if (static_cast<int64_t>(GetBigEndian(value)) < since) return true;
        const absl::string_view id = key.substr(prefix.size() + 8);
        if (c.first) ++page.total_matched;
        if (!c.first && !Before(c.activity, c.order_id, activity, id)) return true;  // the cursor
        if (full) {
          more = true;
          return c.first;  // the first page counts on
        }
        absl::StatusOr<std::optional<std::string>> stored = orders->Get(id);
        if (!stored.ok()) {
          error = stored.status();
          return false;
        }
        v1::Order o;
        if (!stored->has_value() || !o.ParseFromString(**stored) || Activity(o) != activity ||
            !Matches(o, q, now)) {
          if (c.first) --page.total_matched;  // an entry of a record written since: not a match
          return true;
        }
        const size_t size = o.ByteSizeLong();
        if (!page.orders.empty() && bytes + size > kMaxOrderPageBytes) {
          full = more = true;
          return c.first;
        }
        bytes += size;
        page.orders.push_back(std::move(o));
        full = page.orders.size() == want;
        return true;
      }));
  TK_RETURN_IF_ERROR(error);
  SetNextToken(q, c, more, &page);
  return page;
}

}  // namespace

absl::StatusOr<OrderPage> ListOrderRecords(storage::KvTable* table, const OrderQuery& q,
                                           absl::Time now) {
  TK_ASSIGN_OR_RETURN(const Cursor c, ParseToken(q));
  return ScanOrders(table, q, c, now);
}

absl::Status CheckOrderPageToken(const OrderQuery& q) { return ParseToken(q).status(); }

absl::StatusOr<OrderPage> ListOrderRecords(storage::KvTable* orders, storage::KvTable* index,
                                           const OrderQuery& q, absl::Time now) {
  TK_ASSIGN_OR_RETURN(const Cursor c, ParseToken(q));
  if (index != nullptr && IndexAnswers(q)) {
    TK_ASSIGN_OR_RETURN(const std::optional<std::string> version, index->Get(kVersionKey));
    if (version == kIndexVersion) return ReadIndex(orders, index, q, c, now);
  }
  return ScanOrders(orders, q, c, now);
}

OrderIndexEntries OrderIndexEntriesOf(const v1::Order& order) {
  std::vector<IndexedAnomaly> anomalies;
  anomalies.reserve(order.anomalies_size());
  for (const v1::Anomaly& a : order.anomalies()) {
    anomalies.push_back({a.type(), a.detected_unix_nanos()});
  }
  return OrderIndexEntriesOf(order.order_id(), order.last_arrival_unix_nanos(), anomalies);
}

OrderIndexEntries OrderIndexEntriesOf(absl::string_view order_id, int64_t last_arrival_unix_nanos,
                                      const std::vector<IndexedAnomaly>& anomalies) {
  OrderIndexEntries entries;
  if (anomalies.empty()) return entries;
  const int64_t activity =
      ActivityOf(last_arrival_unix_nanos, anomalies,
                 [](const IndexedAnomaly& a) { return a.detected_unix_nanos; });
  int64_t latest = std::numeric_limits<int64_t>::min();
  std::map<absl::string_view, int64_t> by_type;  // latest detection per type
  for (const IndexedAnomaly& a : anomalies) {
    latest = std::max(latest, a.detected_unix_nanos);
    auto [it, added] = by_type.emplace(a.type, a.detected_unix_nanos);
    if (!added) it->second = std::max(it->second, a.detected_unix_nanos);
  }
  entries.push_back({IndexKey(kAnyPrefix, activity, order_id), BigEndian(latest)});
  for (const auto& [type, detected] : by_type) {
    entries.push_back({IndexKey(TypePrefix(type), activity, order_id), BigEndian(detected)});
  }
  std::sort(entries.begin(), entries.end(),
            [](const storage::KvWrite& a, const storage::KvWrite& b) { return a.key < b.key; });
  return entries;
}

std::vector<storage::KvWrite> OrderIndexWrites(const OrderIndexEntries& before,
                                               const OrderIndexEntries& after) {
  std::vector<storage::KvWrite> writes;
  auto b = before.begin();
  auto a = after.begin();
  while (b != before.end() || a != after.end()) {
    if (a == after.end() || (b != before.end() && b->key < a->key)) {
      writes.push_back({b->key, "", true});
      ++b;
    } else if (b == before.end() || a->key < b->key) {
      writes.push_back(*a);
      ++a;
    } else {
      if (a->value != b->value) writes.push_back(*a);
      ++a;
      ++b;
    }
  }
  return writes;
}

std::vector<storage::KvWrite> OrderIndexWrites(const v1::Order* before, const v1::Order* after) {
  return OrderIndexWrites(before != nullptr ? OrderIndexEntriesOf(*before) : OrderIndexEntries(),
                          after != nullptr ? OrderIndexEntriesOf(*after) : OrderIndexEntries());
}

absl::Status EnsureOrderIndex(storage::KvTable* orders, storage::KvTable* index) {
  TK_ASSIGN_OR_RETURN(const std::optional<std::string> version, index->Get(kVersionKey));
  if (version == kIndexVersion) return absl::OkStatus();
  // Another layout, or a build cut short: start from nothing.
  TK_RETURN_IF_ERROR(index->EraseRange("", "\xff"));
  std::vector<storage::KvWrite> writes;
  absl::Status error;
  TK_RETURN_IF_ERROR(orders->Scan("", [&](absl::string_view, absl::string_view value) {
    v1::Order o;
    if (!o.ParseFromArray(value.data(), static_cast<int>(value.size()))) return true;
    for (storage::KvWrite& w : OrderIndexEntriesOf(o)) writes.push_back(std::move(w));
    if (writes.size() < kBuildBatch) return true;
    error = index->Write(writes);
    writes.clear();
    return error.ok();
  }));
  TK_RETURN_IF_ERROR(error);
  // Last: the index is complete.
  writes.push_back({kVersionKey, kIndexVersion, false});
  return index->Write(writes);
}

}  // namespace tracekeep::orders
